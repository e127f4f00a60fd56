//! Loop lag: how late the loop handled a timer, the worst delay between a deadline and
//! the moment the loop acted on it. Every advertisement and lease renewal is such a
//! timer, so this is the figure that shows a stalled loop before a peer does.

use std::time::Duration;

use crate::{
    control::status::{LAG_BUCKETS_US as BUCKETS_US, LagStatus},
    vrrp::Time,
};

/// How long the "recent" worst covers.
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Lag {
    worst: Duration,
    recent: Duration,
    previous: Duration,
    window_start: Option<Time>,
    count: u64,
    sum: Duration,
    buckets: [u64; BUCKETS_US.len() + 1],
}

impl Lag {
    /// A timer due at `deadline` is handled at `now`.
    pub fn record(&mut self, deadline: Time, now: Time) {
        let lag = now.saturating_duration_since(deadline);
        let start = *self.window_start.get_or_insert(now);
        if now.saturating_duration_since(start) >= WINDOW {
            // The "recent" figure covers the current and the previous window.
            self.previous = self.recent;
            self.recent = Duration::ZERO;
            self.window_start = Some(now);
        }
        self.worst = self.worst.max(lag);
        self.recent = self.recent.max(lag);
        self.count += 1;
        self.sum += lag;
        let us = lag.as_micros() as u64;
        let i = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[i] += 1;
    }

    pub fn status(&self) -> LagStatus {
        let mut cumulative = 0;
        LagStatus {
            worst_us: self.worst.as_micros() as u64,
            recent_worst_us: self.recent.max(self.previous).as_micros() as u64,
            count: self.count,
            sum_seconds: self.sum.as_secs_f64(),
            buckets: self
                .buckets
                .iter()
                .map(|b| {
                    cumulative += b;
                    cumulative
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_recent_and_buckets() {
        let mut l = Lag::default();
        let t = |ms: u64| Time::from_millis(ms);
        l.record(t(10), t(10));
        l.record(t(20), t(23));
        let s = l.status();
        assert_eq!(s.worst_us, 3000);
        assert_eq!(s.recent_worst_us, 3000);
        assert_eq!(s.count, 2);
        assert_eq!(s.buckets.first(), Some(&1));
        assert_eq!(s.buckets.last(), Some(&2));
        // Two windows later the 3 ms lag has aged out of "recent" but not of "worst".
        l.record(t(70_000), t(70_000));
        l.record(t(140_000), t(140_000));
        let s = l.status();
        assert_eq!((s.worst_us, s.recent_worst_us), (3000, 0));
    }
}
