//! Tracking arithmetic: what an instance's tracked interfaces, scripts, files and
//! processes make of its priority, or whether they put it in FAULT. Pure: the watchers in
//! `crate::track` observe the objects and report [`TrackItem`]s; this decides what they
//! mean, and when (a process's delays are deadlines here: [`TrackState::poll_at`]).
//!
//! The meaning is keepalived's, so a copied configuration behaves the same
//! (docs/keepalived.md lists every difference):
//! - interfaces, scripts and processes: a positive weight is added while the object is up
//!   / succeeding / has its quorum, a negative weight is added (so subtracted) while it is
//!   down / failing / without its quorum, and weight 0 puts the instance in FAULT while it
//!   is down / failing / without its quorum. `reverse` turns the adjustment round, in the
//!   same state (keepalived multiplies the weight by −1): +20 reversed takes 20 off while
//!   up, −20 reversed adds 20 while down; weight 0 reversed faults while up;
//! - files: the file's integer × weight is added (× −1 with `reverse`); with weight 0 any
//!   non-zero value means FAULT; a missing or unreadable file reads as 0;
//! - processes: the watcher counts the running processes that match (not threads, not
//!   zombies); the quorum holds while `quorum <= count <= quorum_max`. A change of that
//!   verdict waits `fork_delay` when a fork caused it and `terminate_delay` when an exit
//!   did (a lost-events rescan: `fork_delay` for a gain, `terminate_delay` for a loss),
//!   and the count going back within the delay cancels it; a change by exec, a rename or
//!   the scan at start counts at once. This is keepalived's `vrrp_track_process`;
//! - a script whose first result has not arrived yet is "not yet known" in `vipd status`
//!   and counts as succeeding (failing with `init_fail`), so a slow first run never holds
//!   up an instance; one a reload added to a running instance counts for nothing at all
//!   until its first result, so a reload never moves the priority on a guess;
//! - a reload keeps what is known of every item it keeps (matched by interface name, or
//!   by the shell's `key` for scripts and files: [`TrackState::carried`]);
//! - the instance's own VRRP interface down faults it, unless `dont_track_primary`;
//! - a non-owner's priority stays within 1..=254; an owner (255) keeps 255.

use std::time::Duration;

use super::{machine::OWNER_PRIORITY, timing::Time};

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
    pub processes: Vec<TrackedProcess>,
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

/// A count of running processes, weighed by whether it makes a quorum (keepalived's
/// `vrrp_track_process`; which processes count is the watcher's, `crate::track::process`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedProcess {
    pub weight: i16,
    pub reverse: bool,
    /// The quorum holds while `quorum <= count <= quorum_max`.
    pub quorum: u32,
    /// [`TrackedProcess::UNLIMITED`] when there is no upper bound.
    pub quorum_max: u32,
    /// How long a change of the quorum a fork caused waits before it counts.
    pub fork_delay: Duration,
    /// How long a change of the quorum an exit caused waits before it counts.
    pub terminate_delay: Duration,
}

impl TrackedProcess {
    pub const UNLIMITED: u32 = u32::MAX;

    fn holds(&self, count: u32) -> bool {
        self.quorum <= count && count <= self.quorum_max
    }

    /// How long a change of the quorum caused by `cause` waits.
    fn delay(&self, cause: ProcessChange, gained: bool) -> Duration {
        match cause {
            ProcessChange::Fork => self.fork_delay,
            ProcessChange::Exit => self.terminate_delay,
            ProcessChange::Rescan if gained => self.fork_delay,
            ProcessChange::Rescan => self.terminate_delay,
            ProcessChange::Scan | ProcessChange::Renamed => Duration::ZERO,
        }
    }
}

/// What changed a process count (its delay depends on it, as in keepalived).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessChange {
    /// The scan of `/proc` when tracking starts: what is running counts at once.
    Scan,
    /// A counted process forked a child (which counts too: same name, same arguments).
    Fork,
    /// A counted process exited.
    Exit,
    /// A process exec'd or was renamed into or out of matching.
    Renamed,
    /// `/proc` scanned again after the kernel dropped process events.
    Rescan,
}

/// A change a watcher observed, for one member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackItem {
    /// Track script `index` now succeeds (`true`) or fails.
    Script { index: usize, ok: bool },
    /// Track file `index` now holds `value` (`None`: missing, unreadable or not an integer).
    File { index: usize, value: Option<i64> },
    /// Tracked process `index` now has `count` matching processes, because of `cause`.
    Process {
        index: usize,
        count: u32,
        cause: ProcessChange,
    },
}

/// What is known about a tracked process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessState {
    /// Matching processes running now (0 until counted).
    pub count: u32,
    /// Whether the quorum holds, as the weights see it: the count's verdict once any
    /// delay has passed.
    pub quorum: bool,
    /// A change of `quorum` waiting out its delay until then.
    pub pending: Option<Time>,
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
    pub processes: Vec<ProcessState>,
}

/// The verdict of tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub fault: bool,
    pub priority: u8,
}

impl TrackState {
    /// Links up, scripts not yet known, files unread (0), no process counted, until told
    /// otherwise.
    pub fn new(tracking: &Tracking) -> Self {
        Self {
            link_up: true,
            interfaces_up: vec![true; tracking.interfaces.len()],
            scripts: vec![ScriptState::Unknown; tracking.scripts.len()],
            files: vec![None; tracking.files.len()],
            processes: tracking
                .processes
                .iter()
                .map(|t| ProcessState {
                    count: 0,
                    quorum: t.holds(0),
                    pending: None,
                })
                .collect(),
        }
    }

    /// What is known of `old`'s items, carried over to the same items of `new` (a reload
    /// changing a running instance): interfaces by name, scripts and files by key. A new
    /// interface starts up (the daemon feeds its real state with the change), a new
    /// script [`ScriptState::Added`], a new file unread (the daemon feeds what it read).
    /// Processes have no key the core sees: their counts carry over when the list is
    /// unchanged, and are counted afresh (as at start) when it changed.
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
        let processes = if old.processes == new.processes {
            self.processes.clone()
        } else {
            TrackState::new(new).processes
        };
        TrackState {
            link_up: self.link_up,
            interfaces_up,
            scripts,
            files,
            processes,
        }
    }

    /// Records an observation made at `now`; `true` when it changed anything (a count
    /// alone included: `vipd status` shows it).
    pub fn apply(&mut self, tracking: &Tracking, now: Time, item: &TrackItem) -> bool {
        match *item {
            TrackItem::Process {
                index,
                count,
                cause,
            } => {
                let (Some(t), Some(s)) =
                    (tracking.processes.get(index), self.processes.get_mut(index))
                else {
                    return false;
                };
                let changed = std::mem::replace(&mut s.count, count) != count;
                let holds = t.holds(count);
                if holds == s.quorum {
                    // Back where it was before the delay ran out: nothing happened.
                    s.pending = None;
                    return changed;
                }
                let delay = t.delay(cause, holds);
                if delay.is_zero() {
                    s.quorum = holds;
                    s.pending = None;
                    return true;
                }
                // A delay already running keeps its deadline (keepalived's timer is set
                // when the quorum is crossed, not on every event after).
                s.pending.get_or_insert(now + delay);
                changed
            }
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

    /// The earliest delayed process verdict.
    pub fn poll_at(&self) -> Option<Time> {
        self.processes.iter().filter_map(|s| s.pending).min()
    }

    /// Settles the delayed verdicts due at `now` on the count as it is then; `true` when
    /// any changed.
    pub fn poll(&mut self, tracking: &Tracking, now: Time) -> bool {
        let mut changed = false;
        for (t, s) in tracking.processes.iter().zip(&mut self.processes) {
            if s.pending.is_some_and(|at| at <= now) {
                s.pending = None;
                let holds = t.holds(s.count);
                changed |= std::mem::replace(&mut s.quorum, holds) != holds;
            }
        }
        changed
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
        // keepalived's weight_multiplier: `reverse` negates the weight, applied in the same
        // state; with weight 0 it faults while up instead of while down.
        let mut binary = |up: bool, weight: i16, reverse: bool| {
            let w = if reverse {
                -i64::from(weight)
            } else {
                i64::from(weight)
            };
            match (up, weight) {
                (up, 0) => fault |= up == reverse,
                (true, x) if x > 0 => delta += w,
                (false, x) if x < 0 => delta += w,
                _ => {}
            }
        };
        for (t, up) in tracking.interfaces.iter().zip(&self.interfaces_up) {
            binary(*up, t.weight, t.reverse);
        }
        for (t, s) in tracking.scripts.iter().zip(&self.scripts) {
            let ok = match s {
                ScriptState::Added => continue,
                ScriptState::Unknown => !t.init_fail,
                ScriptState::Ok => true,
                ScriptState::Failing => false,
            };
            binary(ok, t.weight, t.reverse);
        }
        for (t, s) in tracking.processes.iter().zip(&self.processes) {
            binary(s.quorum, t.weight, t.reverse);
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

    const T0: Time = Time::ZERO;

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
        assert!(s.apply(
            &t,
            T0,
            &TrackItem::File {
                index: 0,
                value: Some(3)
            }
        ));
        assert_eq!(s.outcome(&t, 100).priority, 150);
        s.apply(
            &t,
            T0,
            &TrackItem::File {
                index: 0,
                value: Some(100),
            },
        );
        assert_eq!(
            s.outcome(&t, 100).priority,
            254,
            "non-owners stay below 255"
        );
        s.apply(
            &t,
            T0,
            &TrackItem::File {
                index: 0,
                value: Some(-100),
            },
        );
        assert_eq!(s.outcome(&t, 100).priority, 1, "and above 0");
        s.apply(
            &t,
            T0,
            &TrackItem::File {
                index: 0,
                value: None,
            },
        );
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
        s.apply(
            &t,
            T0,
            &TrackItem::File {
                index: 0,
                value: Some(1),
            },
        );
        assert!(s.outcome(&t, 100).fault);
        s.apply(
            &t,
            T0,
            &TrackItem::File {
                index: 0,
                value: Some(0),
            },
        );
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
        assert!(s.apply(
            &t,
            T0,
            &TrackItem::Script {
                index: 0,
                ok: false
            }
        ));
        assert!(!s.apply(
            &t,
            T0,
            &TrackItem::Script {
                index: 0,
                ok: false
            }
        ));
        assert_eq!(s.outcome(&t, 100), outcome(false, 75));
        s.apply(
            &t,
            T0,
            &TrackItem::Script {
                index: 1,
                ok: false,
            },
        );
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
        s.apply(
            &old,
            T0,
            &TrackItem::Script {
                index: 0,
                ok: false,
            },
        );
        s.apply(
            &old,
            T0,
            &TrackItem::File {
                index: 0,
                value: Some(2),
            },
        );
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
        c.apply(
            &new,
            T0,
            &TrackItem::Script {
                index: 1,
                ok: false,
            },
        );
        assert!(c.outcome(&new, 100).fault, "its first result counts");
    }

    /// Processes have no key the core sees: an unchanged list keeps its counts across a
    /// reload; a changed one starts as at start-up (the daemon counts it before the
    /// change is committed and feeds the count with it).
    #[test]
    fn a_reload_keeps_process_counts_only_for_an_unchanged_list() {
        let old = processes(process(-50));
        let mut s = TrackState::new(&old);
        let fork = TrackItem::Process {
            index: 0,
            count: 2,
            cause: ProcessChange::Scan,
        };
        assert!(s.apply(&old, T0, &fork));
        assert_eq!(s.outcome(&old, 100), outcome(false, 100));
        let same = s.carried(&old, &old.clone());
        assert_eq!(same.processes, s.processes);
        assert_eq!(same.outcome(&old, 100), outcome(false, 100));
        let new = Tracking {
            processes: vec![process(-50), process(-20)],
            ..Tracking::default()
        };
        let fresh = s.carried(&old, &new);
        assert_eq!(fresh.processes, TrackState::new(&new).processes);
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
            ..Tracking::default()
        };
        let mut s = TrackState::new(&t);
        // keepalived multiplies a reversed weight by -1 and applies it in the same state:
        // up0 is up, so +30 reversed takes 30 off. The script is not yet known and
        // `init_fail` counts that as failing: -40.
        assert_eq!(s.outcome(&t, 100), outcome(false, 30));
        s.set_link(&t, "eth0", "up0", false);
        assert_eq!(s.outcome(&t, 100), outcome(false, 60));
        s.apply(&t, T0, &TrackItem::Script { index: 0, ok: true });
        assert_eq!(s.outcome(&t, 100), outcome(false, 100));
        s.apply(
            &t,
            T0,
            &TrackItem::File {
                index: 0,
                value: Some(2),
            },
        );
        assert_eq!(
            s.outcome(&t, 100),
            outcome(false, 90),
            "reversed file: -2 x 5"
        );
        s.set_link(&t, "eth0", "eth0", false);
        assert!(!s.outcome(&t, 100).fault, "dont_track_primary");
    }

    #[test]
    fn a_reversed_negative_weight_adds_while_down_and_weight_zero_faults_while_up() {
        let t = Tracking {
            interfaces: vec![
                TrackedInterface {
                    reverse: true,
                    ..interface("up0", -25)
                },
                TrackedInterface {
                    reverse: true,
                    ..interface("up1", 0)
                },
            ],
            ..Tracking::default()
        };
        let mut s = TrackState::new(&t);
        // up1 is up: reversed weight 0 faults.
        assert_eq!(s.outcome(&t, 100), outcome(true, 100));
        s.set_link(&t, "eth0", "up1", false);
        assert_eq!(s.outcome(&t, 100), outcome(false, 100));
        // up0 down: -25 reversed adds 25.
        s.set_link(&t, "eth0", "up0", false);
        assert_eq!(s.outcome(&t, 100), outcome(false, 125));
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

    fn process(weight: i16) -> TrackedProcess {
        TrackedProcess {
            weight,
            reverse: false,
            quorum: 1,
            quorum_max: TrackedProcess::UNLIMITED,
            fork_delay: Duration::ZERO,
            terminate_delay: Duration::ZERO,
        }
    }

    fn processes(p: TrackedProcess) -> Tracking {
        Tracking {
            processes: vec![p],
            ..Tracking::default()
        }
    }

    fn at(ms: u64) -> Time {
        T0 + Duration::from_millis(ms)
    }

    fn count(count: u32, cause: ProcessChange) -> TrackItem {
        TrackItem::Process {
            index: 0,
            count,
            cause,
        }
    }

    #[test]
    fn a_process_weight_counts_with_the_quorum_as_keepalived_weighs_it() {
        // +20: added while the quorum holds.
        let t = processes(process(20));
        let mut s = TrackState::new(&t);
        assert_eq!(s.outcome(&t, 100), outcome(false, 100), "none running yet");
        assert!(s.apply(&t, T0, &count(1, ProcessChange::Scan)));
        assert_eq!(s.outcome(&t, 100), outcome(false, 120));
        // -20: taken off while it does not.
        let t = processes(process(-20));
        let mut s = TrackState::new(&t);
        assert_eq!(s.outcome(&t, 100), outcome(false, 80));
        s.apply(&t, T0, &count(2, ProcessChange::Renamed));
        assert_eq!(s.outcome(&t, 100), outcome(false, 100));
        // 0: FAULT without the quorum.
        let t = processes(process(0));
        let mut s = TrackState::new(&t);
        assert!(s.outcome(&t, 100).fault);
        s.apply(&t, T0, &count(1, ProcessChange::Scan));
        assert!(!s.outcome(&t, 100).fault);
    }

    #[test]
    fn reverse_negates_a_process_weight_in_the_same_state() {
        let reversed = |w| TrackedProcess {
            reverse: true,
            ..process(w)
        };
        // +20 reversed: 20 off while the quorum holds, nothing without it.
        let t = processes(reversed(20));
        let mut s = TrackState::new(&t);
        assert_eq!(s.outcome(&t, 100), outcome(false, 100));
        s.apply(&t, T0, &count(1, ProcessChange::Scan));
        assert_eq!(s.outcome(&t, 100), outcome(false, 80));
        // -20 reversed: 20 added while it does not hold.
        let t = processes(reversed(-20));
        let mut s = TrackState::new(&t);
        assert_eq!(s.outcome(&t, 100), outcome(false, 120));
        s.apply(&t, T0, &count(1, ProcessChange::Scan));
        assert_eq!(s.outcome(&t, 100), outcome(false, 100));
        // 0 reversed: FAULT while the quorum holds (keepalived's "down when up").
        let t = processes(reversed(0));
        let mut s = TrackState::new(&t);
        assert!(!s.outcome(&t, 100).fault);
        s.apply(&t, T0, &count(1, ProcessChange::Scan));
        assert!(s.outcome(&t, 100).fault);
    }

    #[test]
    fn quorum_and_quorum_max_bound_the_count() {
        let t = processes(TrackedProcess {
            quorum: 2,
            quorum_max: 3,
            ..process(0)
        });
        let mut s = TrackState::new(&t);
        let faults: Vec<bool> = (0..=4)
            .map(|n| {
                s.apply(&t, T0, &count(n, ProcessChange::Renamed));
                s.outcome(&t, 100).fault
            })
            .collect();
        assert_eq!(faults, [true, true, false, false, true]);
        // quorum_max 0 (with quorum 0): the quorum holds only while none runs.
        let t = processes(TrackedProcess {
            quorum: 0,
            quorum_max: 0,
            ..process(0)
        });
        let mut s = TrackState::new(&t);
        assert!(!s.outcome(&t, 100).fault);
        s.apply(&t, T0, &count(1, ProcessChange::Scan));
        assert!(s.outcome(&t, 100).fault);
    }

    #[test]
    fn terminate_delay_holds_a_loss_until_it_runs_out() {
        let t = processes(TrackedProcess {
            terminate_delay: Duration::from_millis(500),
            ..process(-50)
        });
        let mut s = TrackState::new(&t);
        s.apply(&t, T0, &count(1, ProcessChange::Scan));
        assert_eq!(s.outcome(&t, 100).priority, 100);
        assert!(s.apply(&t, at(1000), &count(0, ProcessChange::Exit)));
        assert_eq!(s.outcome(&t, 100).priority, 100, "still within the delay");
        assert_eq!(s.poll_at(), Some(at(1500)));
        // A second exit does not restart the delay.
        s.apply(&t, at(1200), &count(0, ProcessChange::Exit));
        assert_eq!(s.poll_at(), Some(at(1500)));
        assert!(!s.poll(&t, at(1499)));
        assert!(s.poll(&t, at(1500)));
        assert_eq!(s.outcome(&t, 100).priority, 50);
        assert_eq!(s.poll_at(), None);
    }

    #[test]
    fn a_restart_within_terminate_delay_never_counts() {
        let t = processes(TrackedProcess {
            terminate_delay: Duration::from_millis(500),
            ..process(-50)
        });
        let mut s = TrackState::new(&t);
        s.apply(&t, T0, &count(1, ProcessChange::Scan));
        s.apply(&t, at(1000), &count(0, ProcessChange::Exit));
        // The service manager starts it again (fork of the manager, then exec).
        s.apply(&t, at(1100), &count(1, ProcessChange::Renamed));
        assert_eq!(s.poll_at(), None, "the pending loss is cancelled");
        assert!(!s.poll(&t, at(2000)));
        assert_eq!(s.outcome(&t, 100).priority, 100);
    }

    #[test]
    fn fork_delay_holds_a_change_a_fork_caused() {
        // quorum_max 1: a fork that makes two fails, but only after fork_delay, and the
        // child exec'ing something else within it (the usual fork/exec) changes nothing.
        let t = processes(TrackedProcess {
            quorum_max: 1,
            fork_delay: Duration::from_millis(300),
            ..process(0)
        });
        let mut s = TrackState::new(&t);
        s.apply(&t, T0, &count(1, ProcessChange::Scan));
        s.apply(&t, at(10), &count(2, ProcessChange::Fork));
        assert!(!s.outcome(&t, 100).fault);
        assert_eq!(s.poll_at(), Some(at(310)));
        s.apply(&t, at(20), &count(1, ProcessChange::Renamed));
        assert_eq!(s.poll_at(), None);
        assert!(!s.outcome(&t, 100).fault);
        // A fork that stays: FAULT once the delay has passed.
        s.apply(&t, at(400), &count(2, ProcessChange::Fork));
        assert!(!s.poll(&t, at(699)));
        assert!(s.poll(&t, at(700)));
        assert!(s.outcome(&t, 100).fault);
        // terminate_delay is 0 here: the exit back to one process counts at once.
        s.apply(&t, at(800), &count(1, ProcessChange::Exit));
        assert!(!s.outcome(&t, 100).fault);
    }

    #[test]
    fn exec_and_the_start_scan_count_at_once_and_a_rescan_takes_the_delays() {
        let t = processes(TrackedProcess {
            fork_delay: Duration::from_millis(100),
            terminate_delay: Duration::from_millis(200),
            ..process(10)
        });
        let mut s = TrackState::new(&t);
        s.apply(&t, T0, &count(1, ProcessChange::Scan));
        assert_eq!(s.outcome(&t, 100).priority, 110);
        s.apply(&t, at(5), &count(0, ProcessChange::Renamed));
        assert_eq!(s.outcome(&t, 100).priority, 100, "exec'd away: at once");
        s.apply(&t, at(10), &count(1, ProcessChange::Rescan));
        assert_eq!(
            s.poll_at(),
            Some(at(110)),
            "a gain found by a rescan: fork_delay"
        );
        s.poll(&t, at(110));
        assert_eq!(s.outcome(&t, 100).priority, 110);
        s.apply(&t, at(200), &count(0, ProcessChange::Rescan));
        assert_eq!(s.poll_at(), Some(at(400)), "a loss: terminate_delay");
    }

    #[test]
    fn an_owner_keeps_255_with_a_process_weight() {
        let t = processes(process(-50));
        let s = TrackState::new(&t);
        assert_eq!(s.outcome(&t, 255), outcome(false, 255));
    }

    #[test]
    fn a_count_change_alone_is_reported_for_status() {
        let t = processes(process(10));
        let mut s = TrackState::new(&t);
        assert!(s.apply(&t, T0, &count(1, ProcessChange::Scan)));
        assert!(
            s.apply(&t, T0, &count(2, ProcessChange::Fork)),
            "count 1 -> 2"
        );
        assert!(!s.apply(&t, T0, &count(2, ProcessChange::Fork)));
        assert!(
            !s.apply(
                &t,
                T0,
                &TrackItem::Process {
                    index: 7,
                    count: 1,
                    cause: ProcessChange::Scan
                }
            ),
            "no such process"
        );
    }
}
