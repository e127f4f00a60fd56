//! The tracking watchers of running instances (`crate::track`), each under an id of its
//! own: a reload that keeps an instance keeps the watchers of the scripts and files it
//! still tracks (with what their debouncing knows), re-pointed at the group, member and
//! item index the instance has now; only added items get new watchers and only removed
//! ones are stopped. The process watcher (`track::process`) is one for the node: it
//! reports under an id per instance and list of processes, kept while both stay the same.

use std::collections::HashMap;

use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    config::ProcessPattern,
    config::{Instance, TrackScript},
    exec::RunAs,
    track::{Report, TrackItem, process::Subscription},
    vrrp::node::GroupId,
    worker::Worker,
};

/// What a watcher watches, to know it again after a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// A script, by what its watcher runs (`TrackScript::watch_key`).
    Script(String),
    /// A file, by its path.
    File(std::path::PathBuf),
}

struct Watch {
    group: GroupId,
    member: usize,
    item: Item,
    /// The item's index in the instance's `track_scripts` or `track_files`.
    index: usize,
    task: JoinHandle<()>,
}

/// Where a carried instance was and is now, with its new configuration.
pub struct Move<'a> {
    pub from: (GroupId, usize),
    pub to: (GroupId, usize),
    pub cfg: &'a Instance,
}

/// Whose processes a process-watcher id counts.
struct ProcessRoute {
    group: GroupId,
    member: usize,
    /// The instance's name and patterns, to know it again after a reload.
    name: String,
    patterns: Vec<ProcessPattern>,
}

pub struct Watches {
    worker: Worker,
    run_as: RunAs,
    tx: mpsc::Sender<(Report, TrackItem)>,
    next: Report,
    by_id: HashMap<Report, Watch>,
    processes: HashMap<Report, ProcessRoute>,
}

impl Watches {
    pub fn new(worker: Worker, run_as: RunAs, tx: mpsc::Sender<(Report, TrackItem)>) -> Watches {
        Watches {
            worker,
            run_as,
            tx,
            next: 0,
            by_id: HashMap::new(),
            processes: HashMap::new(),
        }
    }

    /// Starts watching every script and file of `cfg`, running as member `at`;
    /// `file_value(index)` is what the core already knows of file `index` (the watcher
    /// reports changes from there).
    pub fn start(
        &mut self,
        at: (GroupId, usize),
        cfg: &Instance,
        file_value: &dyn Fn(usize) -> Option<i64>,
    ) {
        for (index, t) in cfg.track_scripts.iter().enumerate() {
            self.spawn_script(at, index, t);
        }
        for (index, t) in cfg.track_files.iter().enumerate() {
            self.spawn_file(at, index, t.path.clone(), file_value(index));
        }
    }

    fn id(&mut self) -> Report {
        self.next += 1;
        self.next
    }

    fn spawn_script(&mut self, at: (GroupId, usize), index: usize, t: &TrackScript) {
        let id = self.id();
        let key = t.watch_key();
        let task = self.worker.spawn(crate::track::script::watch(
            id,
            index,
            t.clone(),
            self.run_as,
            self.tx.clone(),
        ));
        self.by_id.insert(
            id,
            Watch {
                group: at.0,
                member: at.1,
                item: Item::Script(key),
                index,
                task,
            },
        );
    }

    fn spawn_file(
        &mut self,
        at: (GroupId, usize),
        index: usize,
        path: std::path::PathBuf,
        initial: Option<i64>,
    ) {
        let id = self.id();
        let task = self.worker.spawn(crate::track::file::watch(
            id,
            index,
            path.clone(),
            initial,
            self.tx.clone(),
        ));
        self.by_id.insert(
            id,
            Watch {
                group: at.0,
                member: at.1,
                item: Item::File(path),
                index,
                task,
            },
        );
    }

    /// A reload kept these instances: each keeps the watchers of what it still tracks,
    /// re-pointed; added items are watched, removed ones no longer.
    /// `file_value(to, index)` as for [`Watches::start`].
    pub fn carry(
        &mut self,
        moves: &[Move<'_>],
        file_value: &dyn Fn((GroupId, usize), usize) -> Option<i64>,
    ) {
        // Who had which watchers before any is re-pointed: members may swap places.
        let before: Vec<Vec<Report>> = moves
            .iter()
            .map(|m| {
                self.by_id
                    .iter()
                    .filter(|(_, w)| (w.group, w.member) == m.from)
                    .map(|(id, _)| *id)
                    .collect()
            })
            .collect();
        for (m, mut ids) in moves.iter().zip(before) {
            let items: Vec<(usize, Item)> = m
                .cfg
                .track_scripts
                .iter()
                .map(|t| Item::Script(t.watch_key()))
                .enumerate()
                .chain(
                    m.cfg
                        .track_files
                        .iter()
                        .map(|t| Item::File(t.path.clone()))
                        .enumerate(),
                )
                .collect();
            for (index, item) in items {
                let found = ids
                    .iter()
                    .position(|id| self.by_id.get(id).is_some_and(|w| w.item == item));
                match found {
                    Some(p) => {
                        let id = ids.swap_remove(p);
                        if let Some(w) = self.by_id.get_mut(&id) {
                            (w.group, w.member, w.index) = (m.to.0, m.to.1, index);
                        }
                    }
                    None => match item {
                        Item::Script(_) => {
                            if let Some(t) = m.cfg.track_scripts.get(index) {
                                self.spawn_script(m.to, index, t);
                            }
                        }
                        Item::File(path) => {
                            let value = file_value(m.to, index);
                            self.spawn_file(m.to, index, path, value)
                        }
                    },
                }
            }
            for id in ids {
                if let Some(w) = self.by_id.remove(&id) {
                    w.task.abort();
                }
            }
        }
    }

    /// Stops the watchers of member `member` of `group` (`None`: of every member).
    pub fn stop(&mut self, group: GroupId, member: Option<usize>) {
        self.by_id.retain(|_, w| {
            let hit = w.group == group && member.is_none_or(|m| m == w.member);
            if hit {
                w.task.abort();
            }
            !hit
        });
    }

    /// Stops every watcher.
    pub fn stop_all(&mut self) {
        for (_, w) in self.by_id.drain() {
            w.task.abort();
        }
        self.processes.clear();
    }

    /// The process watcher's subscriptions for the running `members` (where each runs,
    /// its configuration): an instance that tracks the same processes as before keeps its
    /// id, so counts already on their way still reach it wherever it runs now.
    pub fn process_subscriptions<'a>(
        &mut self,
        members: impl IntoIterator<Item = ((GroupId, usize), &'a Instance)>,
    ) -> Vec<Subscription> {
        let mut old = std::mem::take(&mut self.processes);
        let mut subs = Vec::new();
        for ((group, member), cfg) in members {
            if cfg.track_processes.is_empty() {
                continue;
            }
            let patterns: Vec<ProcessPattern> = cfg
                .track_processes
                .iter()
                .map(|t| t.pattern.clone())
                .collect();
            let same = old
                .iter()
                .find(|(_, r)| r.name == cfg.name && r.patterns == patterns)
                .map(|(id, _)| *id);
            let id = match same.and_then(|id| old.remove_entry(&id)) {
                Some((id, _)) => id,
                None => self.id(),
            };
            subs.extend(patterns.iter().enumerate().map(|(index, p)| Subscription {
                report: id,
                index,
                pattern: p.clone(),
            }));
            self.processes.insert(
                id,
                ProcessRoute {
                    group,
                    member,
                    name: cfg.name.clone(),
                    patterns,
                },
            );
        }
        subs
    }

    /// Where report `id` goes now: the group, the member, and the item with its index
    /// as the instance has it today. `None` for a watcher that was stopped.
    pub fn route(&self, id: Report, item: TrackItem) -> Option<(GroupId, usize, TrackItem)> {
        if let Some(r) = self.processes.get(&id) {
            return matches!(item, TrackItem::Process { .. }).then_some((r.group, r.member, item));
        }
        let w = self.by_id.get(&id)?;
        let item = match (item, &w.item) {
            (TrackItem::Script { ok, .. }, Item::Script(_)) => {
                TrackItem::Script { index: w.index, ok }
            }
            (TrackItem::File { value, .. }, Item::File(_)) => TrackItem::File {
                index: w.index,
                value,
            },
            _ => return None,
        };
        Some((w.group, w.member, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, FakeHost};

    /// `gw` (VRID 51) and `gw2` (52) tracking the processes `processes` names.
    fn instances(gw: &str, gw2: &str) -> Vec<Instance> {
        let section = |name: &str, vrid: u8, processes: &str| {
            let track = if processes.is_empty() {
                String::new()
            } else {
                let list: Vec<String> = processes
                    .split(',')
                    .map(|p| format!("{{ name = \"{p}\", weight = -50 }}"))
                    .collect();
                format!("track_processes = [{}]\n", list.join(", "))
            };
            format!(
                "[[vrrp]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {vrid}\n\
                 priority = 100\nvips = [\"192.0.2.{vrid}/24\"]\n\
                 allowed_peers = [\"192.0.2.12\"]\n{track}"
            )
        };
        let text = format!(
            "[global]\nrouter_id = \"r1\"\n\n{}\n{}",
            section("gw", 51, gw),
            section("gw2", 52, gw2)
        );
        Config::parse(&text, "t.toml", &FakeHost::lab())
            .expect("valid")
            .instances
    }

    fn reports(subs: &[Subscription]) -> Vec<Report> {
        let mut r: Vec<Report> = subs.iter().map(|s| s.report).collect();
        r.dedup();
        r
    }

    /// An instance whose processes a reload leaves alone keeps its id wherever it runs
    /// now (counts already on their way still reach it); one whose list changed gets a new
    /// id (a stale count for the old list is dropped); reports are routed to where each
    /// instance runs now, and one for an id no longer subscribed goes nowhere.
    #[test]
    fn process_reports_follow_the_instance_and_its_list() {
        let (tx, _rx) = mpsc::channel(4);
        let worker = Worker::start("test-watch", 0).expect("a worker");
        let mut w = Watches::new(worker, RunAs { ids: None }, tx);
        let before = instances("haproxy", "nginx");
        let subs = w.process_subscriptions([((1, 0), &before[0]), ((1, 1), &before[1])]);
        assert_eq!(subs.len(), 2);
        let ids = reports(&subs);
        assert_eq!(ids.len(), 2);
        let count = |index| TrackItem::Process {
            index,
            count: 1,
            cause: crate::vrrp::tracking::ProcessChange::Fork,
        };
        assert_eq!(w.route(ids[0], count(0)), Some((1, 0, count(0))));

        // gw moves to group 2 with the same list; gw2 tracks one more process.
        let after = instances("haproxy", "nginx,sshd");
        let subs = w.process_subscriptions([((2, 0), &after[0]), ((1, 0), &after[1])]);
        let now = reports(&subs);
        assert_eq!(now[0], ids[0], "gw keeps its id");
        assert_ne!(now[1], ids[1], "gw2's list changed: a new id");
        assert_eq!(w.route(ids[0], count(0)), Some((2, 0, count(0))));
        assert_eq!(w.route(now[1], count(1)), Some((1, 0, count(1))));
        assert_eq!(w.route(ids[1], count(0)), None, "the old list's id is gone");
        // A report of another kind under a process id is not taken for one.
        let script = TrackItem::Script { index: 0, ok: true };
        assert_eq!(w.route(ids[0], script), None);

        // Tracking taken away: nothing subscribed, nothing routed.
        let none = instances("", "");
        assert!(
            w.process_subscriptions([((2, 0), &none[0]), ((1, 0), &none[1])])
                .is_empty()
        );
        assert_eq!(w.route(ids[0], count(0)), None);
    }
}
