//! When a master announces its addresses (gratuitous ARP / unsolicited NA): a burst of
//! `garp_repeat` rounds `garp_interval` apart once it starts answering, then one round
//! every `garp_refresh` while it stays master (RFC 9568 §6.4.1 asks for the burst;
//! keepalived's `garp_master_refresh` for the refresh).

use std::time::Duration;

use super::timing::Time;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub repeat: u32,
    pub interval: Duration,
    pub refresh: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    remaining: u32,
    next: Option<Time>,
}

impl Schedule {
    /// Starts the burst at `at`, unless one is under way: a master re-announcing against
    /// every advert of a conflicting master would otherwise never finish its burst.
    pub fn start(&mut self, at: Time, s: &Settings) {
        if self.remaining > 0 {
            return;
        }
        *self = if s.repeat > 0 {
            Schedule {
                remaining: s.repeat,
                next: Some(at),
            }
        } else {
            Schedule {
                remaining: 0,
                next: s.refresh.map(|r| at + r),
            }
        };
    }

    pub fn cancel(&mut self) {
        *self = Schedule::default();
    }

    pub fn due_at(&self) -> Option<Time> {
        self.next
    }

    /// Whether a round is due at `now`; if so, the next one is scheduled.
    pub fn take_due(&mut self, now: Time, s: &Settings) -> bool {
        if self.next.is_none_or(|t| t > now) {
            return false;
        }
        if self.remaining > 1 {
            self.remaining -= 1;
            self.next = Some(now + s.interval);
        } else {
            self.remaining = 0;
            self.next = s.refresh.map(|r| now + r);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Time {
        Time::from_millis(v)
    }

    #[test]
    fn burst_then_refresh_and_a_second_start_does_not_restart_the_burst() {
        let s = Settings {
            repeat: 3,
            interval: Duration::from_millis(10),
            refresh: Some(Duration::from_secs(1)),
        };
        let mut g = Schedule::default();
        g.start(ms(5), &s);
        assert!(!g.take_due(ms(4), &s));
        assert!(g.take_due(ms(5), &s));
        g.start(ms(6), &s);
        assert_eq!(g.due_at(), Some(ms(15)), "burst under way is kept");
        assert!(g.take_due(ms(15), &s));
        assert!(g.take_due(ms(25), &s));
        assert_eq!(g.due_at(), Some(ms(1025)), "then the refresh");
        assert!(g.take_due(ms(1025), &s));
        assert_eq!(g.due_at(), Some(ms(2025)));
        g.cancel();
        assert_eq!(g.due_at(), None);
    }

    #[test]
    fn without_a_burst_only_the_refresh_runs() {
        let s = Settings {
            repeat: 0,
            interval: Duration::from_millis(10),
            refresh: None,
        };
        let mut g = Schedule::default();
        g.start(ms(0), &s);
        assert_eq!(g.due_at(), None);
    }
}
