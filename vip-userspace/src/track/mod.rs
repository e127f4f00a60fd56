//! Tracking: interfaces, scripts and files that change an instance's priority or put it
//! in FAULT. The arithmetic ([`TrackState::outcome`]) is pure; [`script`] and [`file`]
//! watch their objects in background tasks and report changes to the daemon loop.

pub mod file;
pub mod script;

use crate::config::Instance;

/// A change reported by a watcher, for the member `member` (a daemon-wide id that outlives
/// config reloads, so reports from a watcher of a removed instance are recognisably stale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackUpdate {
    pub member: u64,
    pub item: TrackItem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackItem {
    /// Script `index` now succeeds (`true`) or fails.
    Script { index: usize, ok: bool },
    /// File `index` now holds `value` (`None`: missing or not an integer).
    File { index: usize, value: Option<i64> },
}

/// What is known about everything an instance tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackState {
    /// The VRRP interface itself: down (or gone) always faults the instance.
    pub link_up: bool,
    pub interfaces_up: Vec<bool>,
    pub scripts_ok: Vec<bool>,
    pub files: Vec<Option<i64>>,
}

/// The verdict of tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub fault: bool,
    pub priority: u8,
}

impl TrackState {
    /// Everything healthy until watchers say otherwise, except what is read at start.
    pub fn new(instance: &Instance) -> Self {
        Self {
            link_up: true,
            interfaces_up: vec![true; instance.track_interfaces.len()],
            scripts_ok: vec![true; instance.track_scripts.len()],
            files: vec![Some(0); instance.track_files.len()],
        }
    }

    pub fn apply(&mut self, item: &TrackItem) {
        match *item {
            TrackItem::Script { index, ok } => {
                if let Some(s) = self.scripts_ok.get_mut(index) {
                    *s = ok;
                }
            }
            TrackItem::File { index, value } => {
                if let Some(f) = self.files.get_mut(index) {
                    *f = value;
                }
            }
        }
    }

    /// Weight 0 on a failing object faults; other weights add while failing (files add
    /// value × weight while readable, the weight once while not). A non-owner's priority
    /// stays within 1..=254; an owner keeps 255 (its addresses are its own).
    pub fn outcome(&self, instance: &Instance) -> Outcome {
        // Weights of failing objects; a file that reads adds value × weight instead.
        let mut failing: Vec<i16> = Vec::new();
        let mut delta: i64 = 0;
        for (t, up) in instance.track_interfaces.iter().zip(&self.interfaces_up) {
            if !up {
                failing.push(t.weight);
            }
        }
        for (t, ok) in instance.track_scripts.iter().zip(&self.scripts_ok) {
            if !ok {
                failing.push(t.weight);
            }
        }
        for (t, v) in instance.track_files.iter().zip(&self.files) {
            match v {
                Some(n) => delta = delta.saturating_add(n.saturating_mul(i64::from(t.weight))),
                None => failing.push(t.weight),
            }
        }
        let fault = !self.link_up || failing.contains(&0);
        delta += failing.iter().map(|w| i64::from(*w)).sum::<i64>();
        let priority = if instance.is_owner() {
            255
        } else {
            (i64::from(instance.priority) + delta).clamp(1, 254) as u8
        };
        Outcome { fault, priority }
    }

    /// For `vipd status`: every tracked object with whether it is failing.
    pub fn describe(&self, instance: &Instance) -> Vec<crate::control::TrackStatus> {
        let mut out = Vec::new();
        for (t, up) in instance.track_interfaces.iter().zip(&self.interfaces_up) {
            out.push(crate::control::TrackStatus {
                kind: "interface".into(),
                name: t.name.clone(),
                failing: !up,
                weight: t.weight.into(),
            });
        }
        for (t, ok) in instance.track_scripts.iter().zip(&self.scripts_ok) {
            out.push(crate::control::TrackStatus {
                kind: "script".into(),
                name: t.command.to_string(),
                failing: !ok,
                weight: t.weight.into(),
            });
        }
        for (t, v) in instance.track_files.iter().zip(&self.files) {
            out.push(crate::control::TrackStatus {
                kind: "file".into(),
                name: match v {
                    Some(n) => format!("{} = {n}", t.path.display()),
                    None => t.path.display().to_string(),
                },
                failing: v.is_none(),
                weight: t.weight.into(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, FakeHost};

    fn instance(priority: u8, tracking: &str) -> Instance {
        let text = format!(
            "[global]\nrouter_id = \"r1\"\n\n[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\n\
             vrid = 51\npriority = {priority}\nvips = [\"192.0.2.1/24\"]\n{tracking}"
        );
        let c =
            Config::parse(&text, "t.toml", &FakeHost::any_interface()).expect("valid test config");
        c.instances.into_iter().next().expect("one instance")
    }

    const TRACKING: &str = "track_interfaces = [{ name = \"up0\", weight = -50 }, { name = \"up1\" }]\n\
        track_files = [{ path = \"/run/prio\", weight = 10 }]\n";

    #[test]
    fn healthy_tracking_leaves_the_configured_priority() {
        let i = instance(100, TRACKING);
        let s = TrackState::new(&i);
        assert_eq!(
            s.outcome(&i),
            Outcome {
                fault: false,
                priority: 100
            }
        );
    }

    #[test]
    fn weights_add_while_failing_and_weight_zero_faults() {
        let i = instance(100, TRACKING);
        let mut s = TrackState::new(&i);
        s.interfaces_up[0] = false;
        assert_eq!(
            s.outcome(&i),
            Outcome {
                fault: false,
                priority: 50
            }
        );
        s.interfaces_up[1] = false;
        assert!(s.outcome(&i).fault);
        s.interfaces_up = vec![true, true];
        s.link_up = false;
        assert!(
            s.outcome(&i).fault,
            "the VRRP interface itself going down faults"
        );
    }

    #[test]
    fn files_add_value_times_weight_or_fail_once_and_priority_is_clamped() {
        let i = instance(100, TRACKING);
        let mut s = TrackState::new(&i);
        s.apply(&TrackItem::File {
            index: 0,
            value: Some(3),
        });
        assert_eq!(s.outcome(&i).priority, 130);
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
        assert_eq!(
            s.outcome(&i).priority,
            110,
            "an unreadable file counts its weight once"
        );
    }

    #[test]
    fn an_owner_keeps_255_unless_faulted() {
        let i = instance(255, TRACKING);
        let mut s = TrackState::new(&i);
        s.interfaces_up[0] = false;
        assert_eq!(
            s.outcome(&i),
            Outcome {
                fault: false,
                priority: 255
            }
        );
        s.interfaces_up[1] = false;
        assert!(s.outcome(&i).fault);
    }
}
