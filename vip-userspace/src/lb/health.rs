//! Real servers' health, and what the service's table holds because of it: pure, with
//! keepalived's checker semantics (`check_api.c` / `ipwrapper.c` behaviour as its manual
//! describes it):
//!
//! - A server that is up and fails a check is retried `retry` times,
//!   `delay_before_retry` apart, before it is declared down; one good check brings a
//!   down server up at once. A down server is checked every `interval` (no retries).
//! - `alpha`: servers start down and come up on their first good check; otherwise they
//!   start up.
//! - A server that is down leaves the table, and the flows pinned to it follow the
//!   table; with `inhibit_on_failure` it stays with weight 0 instead: no new flows,
//!   established ones stay.
//! - Quorum: the total weight of the servers up. It is gained when the total reaches
//!   `quorum + hysteresis`, and lost when it drops below `quorum - hysteresis` (or to
//!   0); each change runs the `quorum_up` / `quorum_down` hook. While it is lost, a
//!   configured sorry server is the table's only server (keepalived adds the sorry
//!   server and takes the remaining servers out).
//!
//! Time is an input: `poll(now)` says which checks are due, `poll_at()` when the next
//! one is, `result(now, …)` takes a check's outcome. The outputs say what changed; the
//! shell rebuilds the service's table once per [`Output::SetChanged`].

use std::time::Duration;

use crate::vrrp::timing::Time;

/// A server's check timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub interval: Duration,
    pub retry: u32,
    pub delay_before_retry: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberSpec {
    pub weight: u32,
    pub inhibit_on_failure: bool,
    /// `None`: the server has no check and is always up.
    pub timing: Option<Timing>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    pub members: Vec<MemberSpec>,
    pub has_sorry: bool,
    pub quorum: u32,
    pub hysteresis: u32,
    pub alpha: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Run member `.0`'s check now and report it with [`Pool::result`].
    Check(usize),
    /// Member `.0` came up (its `notify_up`).
    Up(usize),
    /// Member `.0` went down (its `notify_down`).
    Down(usize),
    QuorumUp,
    QuorumDown,
    /// The table's weighted set ([`Pool::set`]) changed: rebuild the table once.
    SetChanged,
}

/// Who holds a place in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Member(usize),
    Sorry,
}

#[derive(Debug, Clone)]
struct Member {
    spec: MemberSpec,
    up: bool,
    /// Consecutive failures while up.
    failures: u32,
    next_check: Option<Time>,
    in_flight: bool,
}

#[derive(Debug, Clone)]
pub struct Pool {
    members: Vec<Member>,
    has_sorry: bool,
    quorum: u32,
    hysteresis: u32,
    quorum_up: bool,
}

impl Pool {
    /// Every checked member's first check is due at `now`.
    pub fn new(spec: &PoolSpec, now: Time) -> Self {
        let members = spec
            .members
            .iter()
            .map(|m| Member {
                spec: *m,
                up: m.timing.is_none() || !spec.alpha,
                failures: 0,
                next_check: m.timing.map(|_| now),
                in_flight: false,
            })
            .collect();
        let mut pool = Self {
            members,
            has_sorry: spec.has_sorry,
            quorum: spec.quorum,
            hysteresis: spec.hysteresis,
            quorum_up: false,
        };
        // The state at start is taken as it is: no hook runs for it.
        pool.quorum_up = pool.weight_up() >= pool.quorum.max(1);
        pool
    }

    /// Checks due at `now`, each marked under way until its result comes.
    pub fn poll(&mut self, now: Time) -> Vec<Output> {
        let mut out = Vec::new();
        for (i, m) in self.members.iter_mut().enumerate() {
            if !m.in_flight && m.next_check.is_some_and(|t| t <= now) {
                m.in_flight = true;
                out.push(Output::Check(i));
            }
        }
        out
    }

    /// When the next check is due (`None`: no member is checked, or every check is
    /// under way).
    pub fn poll_at(&self) -> Option<Time> {
        self.members
            .iter()
            .filter(|m| !m.in_flight)
            .filter_map(|m| m.next_check)
            .min()
    }

    /// Member `i`'s check finished at `now`, good or not.
    pub fn result(&mut self, now: Time, i: usize, ok: bool) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(m) = self.members.get_mut(i) else {
            return out;
        };
        let Some(timing) = m.spec.timing else {
            return out;
        };
        let before = self.set();
        let m = &mut self.members[i];
        m.in_flight = false;
        if ok {
            m.failures = 0;
            m.next_check = Some(now + timing.interval);
            if !m.up {
                m.up = true;
                out.push(Output::Up(i));
            }
        } else if m.up {
            m.failures += 1;
            if m.failures > timing.retry {
                m.up = false;
                m.failures = 0;
                m.next_check = Some(now + timing.interval);
                out.push(Output::Down(i));
            } else {
                m.next_check = Some(now + timing.delay_before_retry);
            }
        } else {
            m.next_check = Some(now + timing.interval);
        }
        self.update_quorum(&mut out);
        if self.set() != before {
            out.push(Output::SetChanged);
        }
        out
    }

    fn weight_up(&self) -> u32 {
        self.members
            .iter()
            .filter(|m| m.up)
            .map(|m| m.spec.weight)
            .sum()
    }

    fn update_quorum(&mut self, out: &mut Vec<Output>) {
        let sum = self.weight_up();
        let up_at = self.quorum.saturating_add(self.hysteresis);
        let down_below = self.quorum.saturating_sub(self.hysteresis);
        if !self.quorum_up && (sum >= up_at.max(1)) {
            self.quorum_up = true;
            out.push(Output::QuorumUp);
        } else if self.quorum_up && (sum == 0 || sum < down_below) {
            self.quorum_up = false;
            out.push(Output::QuorumDown);
        }
    }

    /// What the table holds now, with weights: the sorry server alone while the quorum
    /// is lost (if there is one); otherwise every member up with its weight and every
    /// down member with `inhibit_on_failure` at weight 0.
    pub fn set(&self) -> Vec<(Entry, u32)> {
        if !self.quorum_up && self.has_sorry {
            return vec![(Entry::Sorry, 1)];
        }
        self.members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| match (m.up, m.spec.inhibit_on_failure) {
                (true, _) => Some((Entry::Member(i), m.spec.weight)),
                (false, true) => Some((Entry::Member(i), 0)),
                (false, false) => None,
            })
            .collect()
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.members.get(i).is_some_and(|m| m.up)
    }

    /// Whether flows already pinned to member `i` stay with it: while it is up, or
    /// down but inhibited (weight 0) rather than removed.
    pub fn keeps_flows(&self, i: usize) -> bool {
        self.members
            .get(i)
            .is_some_and(|m| m.up || m.spec.inhibit_on_failure)
    }

    pub fn quorum(&self) -> bool {
        self.quorum_up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        interval: Duration::from_secs(5),
        retry: 2,
        delay_before_retry: Duration::from_secs(1),
    };

    fn at(s: u64) -> Time {
        Time::from_millis(s * 1000)
    }

    fn member(weight: u32) -> MemberSpec {
        MemberSpec {
            weight,
            inhibit_on_failure: false,
            timing: Some(T),
        }
    }

    fn pool(members: Vec<MemberSpec>) -> PoolSpec {
        PoolSpec {
            members,
            has_sorry: false,
            quorum: 1,
            hysteresis: 0,
            alpha: false,
        }
    }

    /// Runs member `i`'s check at `now` with outcome `ok`.
    fn check(p: &mut Pool, now: Time, i: usize, ok: bool) -> Vec<Output> {
        let due = p.poll(now);
        assert!(
            due.contains(&Output::Check(i)),
            "check {i} not due at {now}: {due:?}"
        );
        p.result(now, i, ok)
    }

    #[test]
    fn checks_are_due_at_start_then_every_interval() {
        let mut p = Pool::new(&pool(vec![member(1), member(1)]), at(0));
        assert_eq!(p.poll_at(), Some(at(0)));
        assert_eq!(p.poll(at(0)), vec![Output::Check(0), Output::Check(1)]);
        assert_eq!(p.poll_at(), None, "both under way");
        assert!(p.poll(at(100)).is_empty(), "never twice at once");
        assert!(p.result(at(0), 0, true).is_empty());
        assert_eq!(p.poll_at(), Some(at(5)));
    }

    #[test]
    fn an_up_server_goes_down_after_retry_failures_delay_before_retry_apart() {
        let mut p = Pool::new(&pool(vec![member(1), member(1)]), at(0));
        p.poll(at(0));
        p.result(at(0), 1, true);
        p.result(at(0), 0, true);
        // Interval, then retries one second apart: down on the third failure (retry 2).
        assert!(check(&mut p, at(5), 0, false).is_empty());
        assert_eq!(p.poll_at(), Some(at(6)));
        assert!(check(&mut p, at(6), 0, false).is_empty());
        assert!(p.is_up(0));
        let out = check(&mut p, at(7), 0, false);
        assert_eq!(out, vec![Output::Down(0), Output::SetChanged]);
        assert!(!p.is_up(0) && !p.keeps_flows(0));
        assert_eq!(p.set(), vec![(Entry::Member(1), 1)]);
        // A down server is checked every interval, and one good check brings it back.
        assert_eq!(p.poll_at(), Some(at(12)));
        assert!(check(&mut p, at(12), 0, false).is_empty());
        assert_eq!(p.poll_at(), Some(at(17)));
        let out = check(&mut p, at(17), 0, true);
        assert_eq!(out, vec![Output::Up(0), Output::SetChanged]);
    }

    #[test]
    fn a_good_check_between_failures_starts_the_count_again() {
        let mut p = Pool::new(&pool(vec![member(1)]), at(0));
        p.poll(at(0));
        p.result(at(0), 0, true);
        check(&mut p, at(5), 0, false);
        check(&mut p, at(6), 0, false);
        check(&mut p, at(7), 0, true);
        check(&mut p, at(12), 0, false);
        check(&mut p, at(13), 0, false);
        assert!(p.is_up(0));
    }

    #[test]
    fn alpha_starts_servers_down_until_their_first_good_check() {
        let spec = PoolSpec {
            alpha: true,
            ..pool(vec![member(1), member(2)])
        };
        let mut p = Pool::new(&spec, at(0));
        assert!(p.set().is_empty());
        assert!(!p.quorum());
        p.poll(at(0));
        let out = p.result(at(0), 1, true);
        assert_eq!(
            out,
            vec![Output::Up(1), Output::QuorumUp, Output::SetChanged]
        );
        assert_eq!(p.set(), vec![(Entry::Member(1), 2)]);
    }

    #[test]
    fn inhibit_on_failure_keeps_the_server_at_weight_zero_with_its_flows() {
        let spec = pool(vec![
            MemberSpec {
                inhibit_on_failure: true,
                ..member(3)
            },
            member(1),
        ]);
        let mut p = Pool::new(&spec, at(0));
        p.poll(at(0));
        p.result(at(0), 1, true);
        let mut out = p.result(at(0), 0, false);
        out.extend(check(&mut p, at(1), 0, false));
        out.extend(check(&mut p, at(2), 0, false));
        assert_eq!(out, vec![Output::Down(0), Output::SetChanged]);
        assert_eq!(p.set(), vec![(Entry::Member(0), 0), (Entry::Member(1), 1)]);
        assert!(p.keeps_flows(0));
    }

    #[test]
    fn quorum_has_hysteresis_and_the_sorry_server_stands_in_while_it_is_lost() {
        // Weights 2, 2, 2; quorum 4, hysteresis 1: lost below 3, gained at 5.
        let spec = PoolSpec {
            has_sorry: true,
            quorum: 4,
            hysteresis: 1,
            ..pool(vec![
                MemberSpec {
                    timing: Some(Timing { retry: 0, ..T }),
                    ..member(2)
                };
                3
            ])
        };
        let mut p = Pool::new(&spec, at(0));
        assert!(p.quorum());
        p.poll(at(0));
        p.result(at(0), 0, true);
        p.result(at(0), 1, true);
        // 6 → 4: still at least 3, quorum kept.
        let out = p.result(at(0), 2, false);
        assert_eq!(out, vec![Output::Down(2), Output::SetChanged]);
        assert!(p.quorum());
        // 4 → 2: below 3, lost; the sorry server alone.
        assert_eq!(
            p.poll(at(5)),
            vec![Output::Check(0), Output::Check(1), Output::Check(2)]
        );
        assert!(p.result(at(5), 0, true).is_empty());
        assert!(p.result(at(5), 2, false).is_empty());
        let out = p.result(at(5), 1, false);
        assert_eq!(
            out,
            vec![Output::Down(1), Output::QuorumDown, Output::SetChanged]
        );
        assert_eq!(p.set(), vec![(Entry::Sorry, 1)]);
        // 2 → 4: not yet 5, still lost (and the table stays the sorry server's).
        assert_eq!(p.poll(at(10)).len(), 3);
        assert!(p.result(at(10), 0, true).is_empty());
        let out = p.result(at(10), 1, true);
        assert_eq!(out, vec![Output::Up(1)]);
        assert!(!p.quorum());
        // 4 → 6: gained.
        let out = p.result(at(10), 2, true);
        assert_eq!(
            out,
            vec![Output::Up(2), Output::QuorumUp, Output::SetChanged]
        );
        assert_eq!(p.set().len(), 3);
    }

    #[test]
    fn a_server_without_a_check_is_always_up_and_never_checked() {
        let spec = pool(vec![MemberSpec {
            timing: None,
            ..member(1)
        }]);
        let mut p = Pool::new(&spec, at(0));
        assert_eq!(p.poll_at(), None);
        assert!(p.poll(at(1000)).is_empty());
        assert!(p.result(at(1), 0, false).is_empty());
        assert_eq!(p.set(), vec![(Entry::Member(0), 1)]);
    }
}
