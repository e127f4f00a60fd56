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
//!   up an instance; one a reload added to a running instance counts for nothing at all
//!   until its first result, so a reload never moves the priority on a guess;
//! - a reload keeps what is known of every item it keeps (matched by interface name, or
//!   by the shell's `key` for scripts and files: [`TrackState::carried`]);
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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackedScript {
    /// What the shell runs, as one string (command, interval, timeout, rise, fall): the
    /// core only compares it, to know the same script across a reload.
    pub key: String,
    pub weight: i16,
    pub reverse: bool,
    /// Count as failing, not succeeding, until the first result.
    pub init_fail: bool,
}

/// A file's integer, weighed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackedFile {
    /// The file's path: the core only compares it, to know the same file across a reload.
    pub key: String,
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
    /// No result yet: counts as succeeding (failing with `init_fail`).
    Unknown,
    /// Added to a running instance by a reload, no result yet: counts for nothing.
    Added,
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

    /// What is known of `old`'s items, carried over to the same items of `new` (a reload
    /// changing a running instance): interfaces by name, scripts and files by key. A new
    /// interface starts up (the daemon feeds its real state with the change), a new
    /// script [`ScriptState::Added`], a new file unread (the daemon feeds what it read).
    pub fn carried(&self, old: &Tracking, new: &Tracking) -> TrackState {
        let interfaces_up = new
            .interfaces
            .iter()
            .map(|t| {
                old.interfaces
                    .iter()
                    .zip(&self.interfaces_up)
                    .find(|(o, _)| o.name == t.name)
                    .is_none_or(|(_, up)| *up)
            })
            .collect();
        let scripts = new
            .scripts
            .iter()
            .map(|t| {
                old.scripts
                    .iter()
                    .zip(&self.scripts)
                    .find(|(o, _)| o.key == t.key)
                    .map_or(ScriptState::Added, |(_, s)| *s)
            })
            .collect();
        let files = new
            .files
            .iter()
            .map(|t| {
                old.files
                    .iter()
                    .zip(&self.files)
                    .find(|(o, _)| o.key == t.key)
                    .and_then(|(_, v)| *v)
            })
            .collect();
        TrackState {
            link_up: self.link_up,
            interfaces_up,
            scripts,
            files,
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
                ScriptState::Added => continue,
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
            key: format!("check{weight}"),
            weight,
            reverse: false,
            init_fail: false,
        }
    }

    fn file(weight: i16) -> TrackedFile {
        TrackedFile {
            key: format!("/run/f{weight}"),
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

    /// A reload that changes a running instance's tracking keeps what is known of the
    /// items it keeps, whatever their new weight or place in the list; an added script
    /// counts for nothing until its first result, even with `init_fail` or a weight of 0.
    #[test]
    fn a_reload_carries_what_is_known_and_added_items_wait_for_their_first_result() {
        let old = Tracking {
            interfaces: vec![interface("up0", -50), interface("gone", -10)],
            scripts: vec![script(-30), script(5)],
            files: vec![file(10)],
            ..Tracking::default()
        };
        let mut s = TrackState::new(&old);
        s.set_link(&old, "eth0", "up0", false);
        s.apply(&TrackItem::Script {
            index: 0,
            ok: false,
        });
        s.apply(&TrackItem::File {
            index: 0,
            value: Some(2),
        });
        assert_eq!(s.outcome(&old, 100), outcome(false, 45));
        // The kept script moves to the end with a new weight; a script that faults and one
        // that fails from the start are added; up0 gets a new weight.
        let new = Tracking {
            interfaces: vec![interface("up0", -20), interface("new0", -5)],
            scripts: vec![
                TrackedScript {
                    init_fail: true,
                    ..script(-60)
                },
                script(0),
                TrackedScript {
                    weight: -10,
                    ..script(-30)
                },
            ],
            files: vec![file(10)],
            ..Tracking::default()
        };
        let c = s.carried(&old, &new);
        assert_eq!(c.interfaces_up, [false, true]);
        assert_eq!(
            c.scripts,
            [ScriptState::Added, ScriptState::Added, ScriptState::Failing]
        );
        assert_eq!(c.files, [Some(2)]);
        // up0 down -20, the kept failing script -10, the file +20; the added ones nothing.
        assert_eq!(c.outcome(&new, 100), outcome(false, 90));
        let mut c = c;
        c.apply(&TrackItem::Script {
            index: 1,
            ok: false,
        });
        assert!(c.outcome(&new, 100).fault, "its first result counts");
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
