//! Which group needs the loop next, without asking every group on every event: with a
//! thousand instances, a scan per advertisement received would be most of the daemon's
//! work. A min-heap of (deadline, group) with lazy deletion: an entry whose group's
//! deadline has since moved is dropped when it reaches the top.

use std::{cmp::Reverse, collections::BinaryHeap};

use super::timing::Time;

#[derive(Debug, Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(Time, u64)>>,
}

impl Schedule {
    /// Records group `g`'s (new) deadline.
    pub fn push(&mut self, g: u64, at: Option<Time>) {
        if let Some(t) = at {
            self.heap.push(Reverse((t, g)));
        }
    }

    /// Starts over from every group's deadline (after groups were added or removed).
    pub fn rebuild(&mut self, deadlines: impl Iterator<Item = (u64, Option<Time>)>) {
        self.heap.clear();
        for (g, at) in deadlines {
            self.push(g, at);
        }
    }

    /// The earliest deadline still current; `current(g)` is group `g`'s deadline now.
    pub fn next(&mut self, current: impl Fn(u64) -> Option<Time>) -> Option<Time> {
        while let Some(&Reverse((t, g))) = self.heap.peek() {
            if current(g) == Some(t) {
                return Some(t);
            }
            self.heap.pop();
        }
        None
    }

    /// The groups due at `now`, each once, taken off the heap (push them again after
    /// polling them).
    pub fn due(&mut self, now: Time, current: impl Fn(u64) -> Option<Time>) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(&Reverse((t, g))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            if current(g) == Some(t) && !out.contains(&g) {
                out.push(g);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Time {
        Time::from_millis(ms)
    }

    #[test]
    fn stale_entries_are_skipped_and_each_due_group_comes_once() {
        let mut deadlines = [Some(t(30)), Some(t(10)), None];
        let mut s = Schedule::default();
        s.rebuild(
            deadlines
                .iter()
                .copied()
                .enumerate()
                .map(|(g, d)| (g as u64, d)),
        );
        let at = |d: &[Option<Time>; 3], g: u64| d[g as usize];
        assert_eq!(s.next(|g| at(&deadlines, g)), Some(t(10)));
        // Group 1 moved later; its old entry must not count.
        deadlines[1] = Some(t(50));
        s.push(1, deadlines[1]);
        s.push(1, deadlines[1]);
        assert_eq!(s.next(|g| at(&deadlines, g)), Some(t(30)));
        assert_eq!(s.due(t(100), |g| at(&deadlines, g)), vec![0, 1]);
        assert_eq!(s.next(|g| at(&deadlines, g)), None);
    }
}
