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

use crate::config::Instance;

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
    pub fn new(instance: &Instance) -> Self {
        Self {
            link_up: true,
            interfaces_up: vec![true; instance.track_interfaces.len()],
            scripts: vec![ScriptState::Unknown; instance.track_scripts.len()],
            files: vec![None; instance.track_files.len()],
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
    /// interface when it is `name`); `true` when anything changed.
    pub fn set_link(&mut self, instance: &Instance, name: &str, up: bool) -> bool {
        let mut changed = false;
        if instance.interface == name && self.link_up != up {
            self.link_up = up;
            changed = true;
        }
        for (t, state) in instance
            .track_interfaces
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

    pub fn outcome(&self, instance: &Instance) -> Outcome {
        let mut fault = !self.link_up && !instance.dont_track_primary;
        let mut delta: i64 = 0;
        let mut binary = |up: bool, weight: i16| match (up, weight) {
            (false, 0) => fault = true,
            (true, w) if w > 0 => delta += i64::from(w),
            (false, w) if w < 0 => delta += i64::from(w),
            _ => {}
        };
        for (t, up) in instance.track_interfaces.iter().zip(&self.interfaces_up) {
            binary(*up != t.reverse, t.weight);
        }
        for (t, s) in instance.track_scripts.iter().zip(&self.scripts) {
            let ok = match s {
                ScriptState::Unknown => !t.init_fail,
                ScriptState::Ok => true,
                ScriptState::Failing => false,
            };
            binary(ok != t.reverse, t.weight);
        }
        for (t, v) in instance.track_files.iter().zip(&self.files) {
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
        let priority = if instance.is_owner() {
            255
        } else {
            (i64::from(instance.priority).saturating_add(delta)).clamp(1, 254) as u8
        };
        Outcome { fault, priority }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn instance(priority: u8, tracking: &str) -> Instance {
        let text = format!(
            "[global]\nrouter_id = \"r1\"\n\n[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\n\
             vrid = 51\npriority = {priority}\nvips = [\"192.0.2.1/24\"]\n{tracking}"
        );
        let host = crate::config::FakeHost::lab()
            .interface("up0")
            .interface("up1")
            .interface("up2");
        let c = Config::parse(&text, "t.toml", &host).expect("valid test config");
        c.instances.into_iter().next().expect("one instance")
    }

    const TRACKING: &str = "track_interfaces = [{ name = \"up0\", weight = -50 }, { name = \"up1\" }, \
        { name = \"up2\", weight = 20 }]\n\
        track_files = [{ path = \"/run/prio\", weight = 10 }]\n";

    fn outcome(fault: bool, priority: u8) -> Outcome {
        Outcome { fault, priority }
    }

    #[test]
    fn positive_weights_count_while_up_and_negative_ones_while_down() {
        let i = instance(100, TRACKING);
        let mut s = TrackState::new(&i);
        // up2 (+20) is up: keepalived adds a positive weight while the object is up.
        assert_eq!(s.outcome(&i), outcome(false, 120));
        assert!(s.set_link(&i, "up0", false));
        assert_eq!(s.outcome(&i), outcome(false, 70));
        assert!(s.set_link(&i, "up2", false));
        assert_eq!(s.outcome(&i), outcome(false, 50));
        assert!(!s.set_link(&i, "up2", false), "no change, nothing to do");
    }

    #[test]
    fn weight_zero_and_the_vrrp_interface_fault_while_down() {
        let i = instance(100, TRACKING);
        let mut s = TrackState::new(&i);
        s.set_link(&i, "up1", false);
        assert!(s.outcome(&i).fault);
        s.set_link(&i, "up1", true);
        s.set_link(&i, "eth0", false);
        assert!(
            s.outcome(&i).fault,
            "the VRRP interface itself going down faults"
        );
    }

    #[test]
    fn files_add_value_times_weight_and_missing_reads_as_zero() {
        let i = instance(100, TRACKING);
        let mut s = TrackState::new(&i);
        assert!(s.apply(&TrackItem::File {
            index: 0,
            value: Some(3)
        }));
        assert_eq!(s.outcome(&i).priority, 150);
        s.apply(&TrackItem::File {
            index: 0,
            value: Some(100),
        });
        assert_eq!(s.outcome(&i).priority, 254, "non-owners stay below 255");
        s.apply(&TrackItem::File {
            index: 0,
            value: Some(-100),
        });
        assert_eq!(s.outcome(&i).priority, 1, "and above 0");
        s.apply(&TrackItem::File {
            index: 0,
            value: None,
        });
        assert_eq!(s.outcome(&i), outcome(false, 120), "missing reads as 0");
    }

    #[test]
    fn a_weight_zero_file_faults_on_any_non_zero_value() {
        let i = instance(100, "track_files = [{ path = \"/run/f\", weight = 0 }]\n");
        let mut s = TrackState::new(&i);
        assert!(!s.outcome(&i).fault, "missing reads as 0");
        s.apply(&TrackItem::File {
            index: 0,
            value: Some(1),
        });
        assert!(s.outcome(&i).fault);
        s.apply(&TrackItem::File {
            index: 0,
            value: Some(0),
        });
        assert!(!s.outcome(&i).fault);
    }

    #[test]
    fn scripts_count_as_succeeding_until_their_first_result() {
        let i = instance(
            100,
            "track_scripts = [{ command = [\"/bin/check\"], weight = -30 }, \
             { command = [\"/bin/check\"], weight = 5 }]\n",
        );
        let mut s = TrackState::new(&i);
        assert_eq!(s.scripts, vec![ScriptState::Unknown; 2]);
        assert_eq!(s.outcome(&i), outcome(false, 105));
        assert!(s.apply(&TrackItem::Script {
            index: 0,
            ok: false
        }));
        assert!(!s.apply(&TrackItem::Script {
            index: 0,
            ok: false
        }));
        assert_eq!(s.outcome(&i), outcome(false, 75));
        s.apply(&TrackItem::Script {
            index: 1,
            ok: false,
        });
        assert_eq!(s.outcome(&i), outcome(false, 70));
    }

    #[test]
    fn reverse_init_fail_and_dont_track_primary() {
        let i = instance(
            100,
            "dont_track_primary = true
             track_interfaces = [{ name = \"up0\", weight = 30, reverse = true }]
             track_scripts = [{ command = [\"/bin/check\"], weight = -40, init_fail = true }]
             track_files = [{ path = \"/run/f\", weight = 5, reverse = true }]
",
        );
        let mut s = TrackState::new(&i);
        // up0 is up, which `reverse` counts as down: +30 does not apply. The script is not
        // yet known and `init_fail` counts that as failing: -40.
        assert_eq!(s.outcome(&i), outcome(false, 60));
        s.set_link(&i, "up0", false);
        assert_eq!(s.outcome(&i), outcome(false, 90));
        s.apply(&TrackItem::Script { index: 0, ok: true });
        assert_eq!(s.outcome(&i), outcome(false, 130));
        s.apply(&TrackItem::File {
            index: 0,
            value: Some(2),
        });
        assert_eq!(s.outcome(&i), outcome(false, 120), "reversed file: -2 x 5");
        s.set_link(&i, "eth0", false);
        assert!(!s.outcome(&i).fault, "dont_track_primary");
    }

    #[test]
    fn an_owner_keeps_255_unless_faulted() {
        let i = instance(255, TRACKING);
        let mut s = TrackState::new(&i);
        s.set_link(&i, "up0", false);
        assert_eq!(s.outcome(&i), outcome(false, 255));
        s.set_link(&i, "up1", false);
        assert!(s.outcome(&i).fault);
    }
}
