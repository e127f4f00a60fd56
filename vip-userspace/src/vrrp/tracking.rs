//! Tracking arithmetic: what an instance's tracked interfaces, scripts and files make of
//! its priority, or whether they put it in FAULT. Pure: the watchers in `crate::track`
//! observe the objects and report [`TrackItem`]s; this decides what they mean.
//!
//! The meaning is keepalived's, so a copied configuration behaves the same
//! (docs/keepalived.md lists every difference):
//! - interfaces and scripts: a positive weight is added while the object is up /
//!   succeeding, a negative weight is added (so subtracted) while it is down / failing,
//!   and weight 0 puts the instance in FAULT while it is down / failing; `reverse` swaps
//!   up and down;
//! - files: the file's integer × weight is added (× −1 with `reverse`); with weight 0 any
//!   non-zero value means FAULT; a missing or unreadable file reads as 0;
//! - a script whose first result has not arrived yet is "not yet known" in `vipd status`
//!   and counts as succeeding (failing with `init_fail`), so a slow first run never holds
//!   up an instance;
//! - the instance's own VRRP interface down faults it, unless `dont_track_primary`;
//! - a non-owner's priority stays within 1..=254; an owner (255) keeps 255.

use super::machine::OWNER_PRIORITY;

/// What an instance tracks, as far as the arithmetic needs it (what the watchers watch,
/// commands and paths, is the shell's). Lists are in configuration order: a
/// [`TrackItem`]'s index points into them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracking {
    /// keepalived's `dont_track_primary`: the VRRP interface's own link state does not
    /// fault the instance.
    pub dont_track_primary: bool,
    pub interfaces: Vec<TrackedInterface>,
    pub scripts: Vec<TrackedScript>,
    pub files: Vec<TrackedFile>,
}

/// An interface: up while the device exists, is up and has carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedInterface {
    pub name: String,
    /// -254..=254; 0 faults the instance while the interface is down.
    pub weight: i16,
    pub reverse: bool,
}

/// A script's result, weighed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedScript {
    pub weight: i16,
    pub reverse: bool,
    /// Count as failing, not succeeding, until the first result.
    pub init_fail: bool,
}

/// A file's integer, weighed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedFile {
    pub weight: i16,
    pub reverse: bool,
}

/// A change a watcher observed, for one member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackItem {
    /// Track script `index` now succeeds (`true`) or fails.
    Script { index: usize, ok: bool },
    /// Track file `index` now holds `value` (`None`: missing, unreadable or not an integer).
    File { index: usize, value: Option<i64> },
}

/// A script's last result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptState {
    /// No result yet: counts as succeeding.
    Unknown,
    Ok,
    Failing,
}

/// What is known about everything an instance tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackState {
    /// The VRRP interface itself.
    pub link_up: bool,
    pub interfaces_up: Vec<bool>,
    pub scripts: Vec<ScriptState>,
    /// `None`: missing or unreadable (reads as 0).
    pub files: Vec<Option<i64>>,
}

/// The verdict of tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub fault: bool,
    pub priority: u8,
}

impl TrackState {
    /// Links up, scripts not yet known, files unread (0), until told otherwise.
    pub fn new(tracking: &Tracking) -> Self {
        Self {
            link_up: true,
            interfaces_up: vec![true; tracking.interfaces.len()],
            scripts: vec![ScriptState::Unknown; tracking.scripts.len()],
            files: vec![None; tracking.files.len()],
        }
    }

    /// Records an observation; `true` when it changed anything.
    pub fn apply(&mut self, item: &TrackItem) -> bool {
        match *item {
            TrackItem::Script { index, ok } => {
                let new = if ok {
                    ScriptState::Ok
                } else {
                    ScriptState::Failing
                };
                self.scripts
                    .get_mut(index)
                    .is_some_and(|s| std::mem::replace(s, new) != new)
            }
            TrackItem::File { index, value } => self
                .files
                .get_mut(index)
                .is_some_and(|f| std::mem::replace(f, value) != value),
        }
    }

    /// Sets the up state of every tracked interface called `name` (and of the VRRP
    /// interface `primary` when it is `name`); `true` when anything changed.
    pub fn set_link(&mut self, tracking: &Tracking, primary: &str, name: &str, up: bool) -> bool {
        let mut changed = false;
        if primary == name && self.link_up != up {
            self.link_up = up;
            changed = true;
        }
        for (t, state) in tracking
            .interfaces
            .iter()
            .zip(self.interfaces_up.iter_mut())
        {
            if t.name == name && *state != up {
                *state = up;
                changed = true;
            }
        }
        changed
    }

    /// What tracking makes of configured `priority` (255: the owner's, which it keeps).
    pub fn outcome(&self, tracking: &Tracking, priority: u8) -> Outcome {
        let mut fault = !self.link_up && !tracking.dont_track_primary;
        let mut delta: i64 = 0;
        let mut binary = |up: bool, weight: i16| match (up, weight) {
            (false, 0) => fault = true,
            (true, w) if w > 0 => delta += i64::from(w),
            (false, w) if w < 0 => delta += i64::from(w),
            _ => {}
        };
        for (t, up) in tracking.interfaces.iter().zip(&self.interfaces_up) {
            binary(*up != t.reverse, t.weight);
        }
        for (t, s) in tracking.scripts.iter().zip(&self.scripts) {
            let ok = match s {
                ScriptState::Unknown => !t.init_fail,
                ScriptState::Ok => true,
                ScriptState::Failing => false,
            };
            binary(ok != t.reverse, t.weight);
        }
        for (t, v) in tracking.files.iter().zip(&self.files) {
            let value = v.unwrap_or(0);
            let value = if t.reverse {
                value.saturating_neg()
            } else {
                value
            };
            if t.weight == 0 {
                fault |= value != 0;
            } else {
                delta = delta.saturating_add(value.saturating_mul(i64::from(t.weight)));
            }
        }
        let priority = if priority == OWNER_PRIORITY {
            OWNER_PRIORITY
        } else {
            (i64::from(priority).saturating_add(delta)).clamp(1, 254) as u8
        };
        Outcome { fault, priority }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interface(name: &str, weight: i16) -> TrackedInterface {
        TrackedInterface {
            name: name.into(),
            weight,
            reverse: false,
        }
    }

    fn script(weight: i16) -> TrackedScript {
        TrackedScript {
            weight,
            reverse: false,
            init_fail: false,
        }
    }

    fn file(weight: i16) -> TrackedFile {
        TrackedFile {
            weight,
            reverse: false,
        }
    }

    /// up0 -50, up1 0 (faults), up2 +20, one file weighted 10.
    fn tracking() -> Tracking {
        Tracking {
            interfaces: vec![
                interface("up0", -50),
                interface("up1", 0),
                interface("up2", 20),
            ],
            files: vec![file(10)],
            ..Tracking::default()
        }
    }

    fn outcome(fault: bool, priority: u8) -> Outcome {
        Outcome { fault, priority }
    }

    #[test]
    fn positive_weights_count_while_up_and_negative_ones_while_down() {
        let t = tracking();
        let mut s = TrackState::new(&t);
        // up2 (+20) is up: keepalived adds a positive weight while the object is up.
        assert_eq!(s.outcome(&t, 100), outcome(false, 120));
        assert!(s.set_link(&t, "eth0", "up0", false));
        assert_eq!(s.outcome(&t, 100), outcome(false, 70));
        assert!(s.set_link(&t, "eth0", "up2", false));
        assert_eq!(s.outcome(&t, 100), outcome(false, 50));
        assert!(
            !s.set_link(&t, "eth0", "up2", false),
            "no change, nothing to do"
        );
    }

    #[test]
    fn weight_zero_and_the_vrrp_interface_fault_while_down() {
        let t = tracking();
        let mut s = TrackState::new(&t);
        s.set_link(&t, "eth0", "up1", false);
        assert!(s.outcome(&t, 100).fault);
        s.set_link(&t, "eth0", "up1", true);
        s.set_link(&t, "eth0", "eth0", false);
        assert!(
            s.outcome(&t, 100).fault,
            "the VRRP interface itself going down faults"
        );
    }

    #[test]
    fn files_add_value_times_weight_and_missing_reads_as_zero() {
        let t = tracking();
        let mut s = TrackState::new(&t);
        assert!(s.apply(&TrackItem::File {
            index: 0,
            value: Some(3)
        }));
        assert_eq!(s.outcome(&t, 100).priority, 150);
        s.apply(&TrackItem::File {
            index: 0,
            value: Some(100),
        });
        assert_eq!(
            s.outcome(&t, 100).priority,
            254,
            "non-owners stay below 255"
        );
        s.apply(&TrackItem::File {
            index: 0,
            value: Some(-100),
        });
        assert_eq!(s.outcome(&t, 100).priority, 1, "and above 0");
        s.apply(&TrackItem::File {
            index: 0,
            value: None,
        });
        assert_eq!(
            s.outcome(&t, 100),
            outcome(false, 120),
            "missing reads as 0"
        );
    }

    #[test]
    fn a_weight_zero_file_faults_on_any_non_zero_value() {
        let t = Tracking {
            files: vec![file(0)],
            ..Tracking::default()
        };
        let mut s = TrackState::new(&t);
        assert!(!s.outcome(&t, 100).fault, "missing reads as 0");
        s.apply(&TrackItem::File {
            index: 0,
            value: Some(1),
        });
        assert!(s.outcome(&t, 100).fault);
        s.apply(&TrackItem::File {
            index: 0,
            value: Some(0),
        });
        assert!(!s.outcome(&t, 100).fault);
    }

    #[test]
    fn scripts_count_as_succeeding_until_their_first_result() {
        let t = Tracking {
            scripts: vec![script(-30), script(5)],
            ..Tracking::default()
        };
        let mut s = TrackState::new(&t);
        assert_eq!(s.scripts, vec![ScriptState::Unknown; 2]);
        assert_eq!(s.outcome(&t, 100), outcome(false, 105));
        assert!(s.apply(&TrackItem::Script {
            index: 0,
            ok: false
        }));
        assert!(!s.apply(&TrackItem::Script {
            index: 0,
            ok: false
        }));
        assert_eq!(s.outcome(&t, 100), outcome(false, 75));
        s.apply(&TrackItem::Script {
            index: 1,
            ok: false,
        });
        assert_eq!(s.outcome(&t, 100), outcome(false, 70));
    }

    #[test]
    fn reverse_init_fail_and_dont_track_primary() {
        let t = Tracking {
            dont_track_primary: true,
            interfaces: vec![TrackedInterface {
                reverse: true,
                ..interface("up0", 30)
            }],
            scripts: vec![TrackedScript {
                init_fail: true,
                ..script(-40)
            }],
            files: vec![TrackedFile {
                reverse: true,
                ..file(5)
            }],
        };
        let mut s = TrackState::new(&t);
        // up0 is up, which `reverse` counts as down: +30 does not apply. The script is not
        // yet known and `init_fail` counts that as failing: -40.
        assert_eq!(s.outcome(&t, 100), outcome(false, 60));
        s.set_link(&t, "eth0", "up0", false);
        assert_eq!(s.outcome(&t, 100), outcome(false, 90));
        s.apply(&TrackItem::Script { index: 0, ok: true });
        assert_eq!(s.outcome(&t, 100), outcome(false, 130));
        s.apply(&TrackItem::File {
            index: 0,
            value: Some(2),
        });
        assert_eq!(
            s.outcome(&t, 100),
            outcome(false, 120),
            "reversed file: -2 x 5"
        );
        s.set_link(&t, "eth0", "eth0", false);
        assert!(!s.outcome(&t, 100).fault, "dont_track_primary");
    }

    #[test]
    fn an_owner_keeps_255_unless_faulted() {
        let t = tracking();
        let mut s = TrackState::new(&t);
        s.set_link(&t, "eth0", "up0", false);
        assert_eq!(s.outcome(&t, 255), outcome(false, 255));
        s.set_link(&t, "eth0", "up1", false);
        assert!(s.outcome(&t, 255).fault);
    }
}
