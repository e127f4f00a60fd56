//! What start-up, a reload and an interface rebuild do, decided before the daemon touches
//! anything: which preparation runs when ([`Preparations`], with the generation rule), what
//! a new configuration does with each running instance and group ([`plan`], with the
//! `[global]` rule and the per-instance rule of [`super::change`]), which data-plane slot a
//! new group takes ([`choose_slot`]), and whether it resumes a previous run's mastership
//! ([`resumes`], [`start_delay`]).
//!
//! A reload plans per instance: one whose identity is the same is taken on by the running
//! instance (unchanged, or changed in place), inside the running group that becomes its
//! group (an [`Update`] of that group: members kept, moved in from another group, added
//! or taken out, the group's slot unchanged); one whose identity changed is removed and
//! added. A group is stopped whole only when none of its instances carries on in any
//! group, and started anew only when none of its instances ran before (or they all run in
//! groups the new configuration gives to others). [`Plan::report`] says what became of
//! every instance: what `vipd reload --dry-run` prints and `vipd status` keeps.
//!
//! The daemon prepares off its event loop (netlink, the XDP program, map entries) and
//! commits the result on it in one step (docs/architecture.md, "the event loop never
//! waits"); everything it decides on the way is here, pure.
//!
//! The plan works on any member type that gives its name, interface, sync group and the
//! core's view of it, and says what changed that only the shell sees ([`Member`]): the
//! daemon plans with the whole configuration of each instance, tests with the core's
//! [`Instance`].

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    time::Duration,
};

use super::{
    change::{Change, Field, change},
    instance::Instance,
    node::GroupId,
};

/// Why the daemon prepares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    Startup,
    /// SIGHUP: the configuration file is read again.
    Reload,
    /// An interface some instance runs on (re)appeared with a new index: its groups start
    /// again.
    Rebuild {
        interface: String,
    },
}

impl Purpose {
    /// One word, for logs and replays.
    pub fn word(&self) -> &'static str {
        match self {
            Purpose::Startup => "startup",
            Purpose::Reload => "reload",
            Purpose::Rebuild { .. } => "rebuild",
        }
    }
}

/// A preparation for the daemon to run off the loop, against the running groups as of
/// `generation` (see [`super::node::Node::generation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepare {
    pub purpose: Purpose,
    pub generation: u64,
}

/// What becomes of a preparation that came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Commit it now: stop and launch what it says.
    Commit,
    /// The running groups changed while it was prepared: it is queued again, first.
    Redo,
    /// It was refused (a bad file, a changed `[global]`): nothing changes.
    Refused,
}

/// The preparation queue: one preparation at a time, each request queued once, and a
/// result prepared against groups that have changed since is done again. A second
/// SIGHUP while a reload is being prepared therefore costs nothing, and an interface that
/// reappears during a reload is rebuilt against the groups the reload left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preparations {
    preparing: Option<Purpose>,
    waiting: VecDeque<Purpose>,
}

impl Preparations {
    /// Asks for a preparation: returned to be started now when none is under way,
    /// otherwise queued (unless the same one already waits).
    pub fn want(&mut self, purpose: Purpose, generation: u64) -> Option<Prepare> {
        if self.preparing.is_some() {
            if !self.waiting.contains(&purpose) {
                self.waiting.push_back(purpose);
            }
            return None;
        }
        self.preparing = Some(purpose.clone());
        Some(Prepare {
            purpose,
            generation,
        })
    }

    /// A preparation came back, made against `prepared_at`, now that the groups are at
    /// `generation`; `accepted` is false when the daemon refused its configuration.
    pub fn done(&mut self, prepared_at: u64, generation: u64, accepted: bool) -> Verdict {
        let Some(purpose) = self.preparing.take() else {
            // Nothing was asked for: whatever this is, it is not committed.
            return Verdict::Refused;
        };
        if !accepted {
            return Verdict::Refused;
        }
        if prepared_at != generation {
            self.waiting.push_front(purpose);
            return Verdict::Redo;
        }
        Verdict::Commit
    }

    /// The next queued preparation, to start now (after a result was committed or
    /// dropped), made against `generation`.
    pub fn next(&mut self, generation: u64) -> Option<Prepare> {
        if self.preparing.is_some() {
            return None;
        }
        let purpose = self.waiting.pop_front()?;
        self.preparing = Some(purpose.clone());
        Some(Prepare {
            purpose,
            generation,
        })
    }

    /// Whether a preparation is under way.
    pub fn busy(&self) -> bool {
        self.preparing.is_some()
    }
}

/// What the plan needs to know about a group member.
pub trait Member: Clone + PartialEq {
    fn name(&self) -> &str;
    /// The interface it runs VRRP on.
    fn interface(&self) -> &str;
    fn sync_group(&self) -> Option<&str>;
    /// The core's view of it.
    fn core(&self) -> Instance;
    /// The fields that differ from `new` which only the shell sees (the core compares
    /// the rest).
    fn shell_fields(&self, new: &Self) -> Vec<Field>;
}

impl Member for Instance {
    fn name(&self) -> &str {
        &self.name
    }

    fn interface(&self) -> &str {
        &self.identity.interface
    }

    fn sync_group(&self) -> Option<&str> {
        self.sync_group.as_deref()
    }

    fn core(&self) -> Instance {
        self.clone()
    }

    fn shell_fields(&self, _: &Self) -> Vec<Field> {
        Vec::new()
    }
}

/// The groups a configuration asks for: sync groups by name (`sync:NAME`) where their
/// first member stands, lone instances by name, each with its members in file order.
/// Keys are stable across reloads.
pub fn desired_groups<I: Member>(instances: &[I]) -> Vec<(String, Vec<I>)> {
    let mut out: Vec<(String, Vec<I>)> = Vec::new();
    for inst in instances {
        match inst.sync_group() {
            Some(g) => {
                let key = format!("sync:{g}");
                match out.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, members)) => members.push(inst.clone()),
                    None => out.push((key, vec![inst.clone()])),
                }
            }
            None => out.push((inst.name().to_owned(), vec![inst.clone()])),
        }
    }
    out
}

/// A running group, as the plan sees it.
#[derive(Debug, Clone, Copy)]
pub struct Running<'a, I> {
    pub id: GroupId,
    pub key: &'a str,
    pub members: &'a [I],
    /// Its data-plane slot.
    pub slot: u32,
}

/// A group to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start<I> {
    pub key: String,
    pub members: Vec<I>,
    /// The slot of the running group of the same key that stops for it: its entries are
    /// the same, so its pinned state (lease, release record) is found where it was.
    pub slot: Option<u32>,
}

/// A running group that carries on in a new shape: its members kept (changed in place or
/// not), moved in from other running groups, added, or taken out (those of its running
/// members no update names). Its data-plane slot and its state stay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update<I> {
    pub id: GroupId,
    /// Its key from now on (a sync group renamed, a lone instance joined by others).
    pub key: String,
    /// Its members, in the new order.
    pub members: Vec<Incoming<I>>,
}

/// One member of an updated group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming<I> {
    /// Running member `member` of group `from` (this group, or another one: a move
    /// between sync groups), taken on with `cfg` in place; `fields` changed.
    Kept {
        from: GroupId,
        member: usize,
        cfg: I,
        fields: Vec<Field>,
    },
    /// A member that starts afresh in the running group.
    Fresh(I),
}

impl<I: Member> Incoming<I> {
    pub fn cfg(&self) -> &I {
        match self {
            Incoming::Kept { cfg, .. } | Incoming::Fresh(cfg) => cfg,
        }
    }
}

/// What became of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    /// Taken on in place: these fields changed.
    Changed(Vec<Field>),
    /// Stopped and started again, for this reason.
    Restarted(String),
    Added,
    Removed,
}

impl Outcome {
    /// One word, for logs, counts and JSON.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Unchanged => "unchanged",
            Outcome::Changed(_) => "changed",
            Outcome::Restarted(_) => "restarted",
            Outcome::Added => "added",
            Outcome::Removed => "removed",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Unchanged => f.write_str("unchanged"),
            Outcome::Changed(fields) => write!(f, "changed in place: {}", fields.join(", ")),
            Outcome::Restarted(why) => write!(f, "restarted: {why}"),
            Outcome::Added => f.write_str("added"),
            Outcome::Removed => f.write_str("removed"),
        }
    }
}

/// What a preparation does with the running groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<I> {
    /// Running groups left untouched.
    pub keep: Vec<GroupId>,
    /// Running groups that carry on changed (reloads only).
    pub update: Vec<Update<I>>,
    /// Running groups stopped (after the updates took the members they keep).
    pub stop: Vec<GroupId>,
    pub start: Vec<Start<I>>,
    /// Per instance, in the new file's order, then the removed ones: what became of it
    /// (reloads only).
    pub report: Vec<(String, Outcome)>,
}

impl<I> Default for Plan<I> {
    fn default() -> Self {
        Plan {
            keep: Vec::new(),
            update: Vec::new(),
            stop: Vec::new(),
            start: Vec::new(),
            report: Vec::new(),
        }
    }
}

impl<I> Plan<I> {
    /// How many instances had each outcome, in [`Outcome::word`] order: unchanged,
    /// changed, restarted, added, removed.
    pub fn counts(&self) -> [usize; 5] {
        let mut n = [0; 5];
        for (_, o) in &self.report {
            n[match o {
                Outcome::Unchanged => 0,
                Outcome::Changed(_) => 1,
                Outcome::Restarted(_) => 2,
                Outcome::Added => 3,
                Outcome::Removed => 4,
            }] += 1;
        }
        n
    }
}

/// Why a configuration is refused as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `[global]` names the daemon's files, sockets and threads, which a running daemon
    /// cannot move.
    #[error("[global] changed; restart vipd to apply it")]
    GlobalChanged,
}

/// What `purpose` does with the `running` groups to get to the `desired` ones
/// ([`desired_groups`]):
/// - start-up starts everything;
/// - a reload plans per instance (see the module docs and [`super::change`]); a changed
///   `[global]` refuses it whole;
/// - a rebuild of `interface` stops every group with a member on it, keeps the others,
///   and starts every desired group not kept (the rebuilt ones, and any that could not
///   start before).
pub fn plan<I: Member>(
    purpose: &Purpose,
    global_changed: bool,
    running: &[Running<'_, I>],
    desired: Vec<(String, Vec<I>)>,
) -> Result<Plan<I>, Refusal> {
    let mut out = Plan::default();
    match purpose {
        Purpose::Startup => {}
        Purpose::Reload => {
            if global_changed {
                return Err(Refusal::GlobalChanged);
            }
            return Ok(reload(running, desired));
        }
        Purpose::Rebuild { interface } => {
            for r in running {
                if r.members.iter().any(|m| m.interface() == interface) {
                    out.stop.push(r.id);
                } else {
                    out.keep.push(r.id);
                }
            }
        }
    }
    let kept: BTreeSet<&str> = running
        .iter()
        .filter(|r| out.keep.contains(&r.id))
        .map(|r| r.key)
        .collect();
    out.start = desired
        .into_iter()
        .filter(|(k, _)| !kept.contains(k.as_str()))
        .map(|(key, members)| Start {
            slot: running
                .iter()
                .find(|r| r.key == key && out.stop.contains(&r.id))
                .map(|r| r.slot),
            key,
            members,
        })
        .collect();
    Ok(out)
}

/// What became of a desired instance, before groups are settled.
enum Class {
    /// Running as member `member` of running group `group` (an index into `running`).
    Carried {
        group: usize,
        member: usize,
        fields: Vec<Field>,
    },
    Restarted(String),
    Added,
}

/// The reload plan (see the module docs).
fn reload<I: Member>(running: &[Running<'_, I>], desired: Vec<(String, Vec<I>)>) -> Plan<I> {
    let mut at: HashMap<&str, (usize, usize)> = HashMap::new();
    for (g, r) in running.iter().enumerate() {
        for (m, i) in r.members.iter().enumerate() {
            at.insert(i.name(), (g, m));
        }
    }
    let mut classes: Vec<Vec<Class>> = desired
        .iter()
        .map(|(_, members)| {
            members
                .iter()
                .map(|new| match at.get(new.name()) {
                    None => Class::Added,
                    Some(&(group, member)) => {
                        let old = &running[group].members[member];
                        match change(&old.core(), &new.core(), &old.shell_fields(new)) {
                            Change::Unchanged => Class::Carried {
                                group,
                                member,
                                fields: Vec::new(),
                            },
                            Change::InPlace(fields) => Class::Carried {
                                group,
                                member,
                                fields,
                            },
                            Change::Restart(why) => Class::Restarted(why),
                        }
                    }
                })
                .collect()
        })
        .collect();
    // Each desired group carries on in one running group: the one of the same key that
    // holds one of its instances, else the one its first carried instance runs in, as
    // long as no other desired group took it first.
    let mut base: Vec<Option<usize>> = vec![None; desired.len()];
    let mut claimed: BTreeSet<usize> = BTreeSet::new();
    let holds = |d: usize, g: usize, classes: &[Vec<Class>]| {
        classes[d]
            .iter()
            .any(|c| matches!(c, Class::Carried { group, .. } if *group == g))
    };
    for (d, (key, _)) in desired.iter().enumerate() {
        if let Some(g) = running.iter().position(|r| r.key == key.as_str())
            && holds(d, g, &classes)
            && claimed.insert(g)
        {
            base[d] = Some(g);
        }
    }
    for d in 0..desired.len() {
        if base[d].is_some() {
            continue;
        }
        let first = classes[d].iter().find_map(|c| match c {
            Class::Carried { group, .. } if !claimed.contains(group) => Some(*group),
            _ => None,
        });
        if let Some(g) = first {
            claimed.insert(g);
            base[d] = Some(g);
        }
    }
    // A desired group that carries on nowhere starts anew, with a data-plane slot of its
    // own: its instances that ran elsewhere start again with it.
    for (d, (key, _)) in desired.iter().enumerate() {
        if base[d].is_some() {
            continue;
        }
        for c in &mut classes[d] {
            if let Class::Carried { group, .. } = c {
                let from = &running[*group].key;
                *c = Class::Restarted(format!(
                    "moves from group {from} to group {key}, which starts anew with a                      data-plane slot of its own"
                ));
            }
        }
    }

    let mut out = Plan::default();
    let mut carried: BTreeSet<(usize, usize)> = BTreeSet::new();
    for ((d, (key, members)), class) in desired.into_iter().enumerate().zip(classes) {
        for (m, c) in members.iter().zip(&class) {
            let outcome = match c {
                Class::Carried { fields, .. } if fields.is_empty() => Outcome::Unchanged,
                Class::Carried { fields, .. } => Outcome::Changed(fields.clone()),
                Class::Restarted(why) => Outcome::Restarted(why.clone()),
                Class::Added => Outcome::Added,
            };
            out.report.push((m.name().to_owned(), outcome));
            if let Class::Carried { group, member, .. } = c {
                carried.insert((*group, *member));
            }
        }
        let Some(g) = base[d] else {
            out.start.push(Start {
                slot: running
                    .iter()
                    .find(|r| r.key == key.as_str() && !claimed.contains(&index_of(running, r.id)))
                    .map(|r| r.slot),
                key,
                members,
            });
            continue;
        };
        let r = &running[g];
        let untouched = key == r.key
            && members.len() == r.members.len()
            && class.iter().enumerate().all(|(j, c)| {
                matches!(c, Class::Carried { group, member, fields }
                    if *group == g && *member == j && fields.is_empty())
            });
        if untouched {
            out.keep.push(r.id);
            continue;
        }
        let incoming = members
            .into_iter()
            .zip(class)
            .map(|(cfg, c)| match c {
                Class::Carried {
                    group,
                    member,
                    fields,
                } => Incoming::Kept {
                    from: running[group].id,
                    member,
                    cfg,
                    fields,
                },
                Class::Restarted(_) | Class::Added => Incoming::Fresh(cfg),
            })
            .collect();
        out.update.push(Update {
            id: r.id,
            key,
            members: incoming,
        });
    }
    for (g, r) in running.iter().enumerate() {
        if !claimed.contains(&g) {
            out.stop.push(r.id);
        }
        for (m, i) in r.members.iter().enumerate() {
            let named = out.report.iter().any(|(n, _)| n == i.name());
            if !carried.contains(&(g, m)) && !named {
                out.report.push((i.name().to_owned(), Outcome::Removed));
            }
        }
    }
    out
}

fn index_of<I>(running: &[Running<'_, I>], id: GroupId) -> usize {
    running
        .iter()
        .position(|r| r.id == id)
        .unwrap_or(usize::MAX)
}

/// The slot a new group takes, of `slots`: its predecessor's (`reuse`), else one a
/// previous run of the daemon pinned for its members (`previous`, so a restart finds its
/// lease), else the lowest free one; never one in `taken` (every running group's slot
/// stays taken until the commit: a new group's entries must never point at a slot a
/// running group still owns). `None` when all are taken.
pub fn choose_slot(
    reuse: Option<u32>,
    previous: &[u32],
    taken: &BTreeSet<u32>,
    slots: u32,
) -> Option<u32> {
    if reuse.is_some() {
        return reuse;
    }
    previous
        .iter()
        .copied()
        .find(|s| !taken.contains(s) && *s < slots)
        .or_else(|| (0..slots).find(|s| !taken.contains(s)))
}

/// Whether a group starting as master resumes at once: only at start-up, in the slot a
/// previous run pinned for it, while that run's lease there is still live (clients are
/// being answered; a restart within the lease costs them nothing).
pub fn resumes(purpose: &Purpose, previous: &[u32], slot: u32, lease_live: bool) -> bool {
    *purpose == Purpose::Startup && previous.contains(&slot) && lease_live
}

/// How long a new group waits before taking part: keepalived's `vrrp_startup_delay`
/// (`startup_delay`) at start-up, unless it resumes; nothing on reloads and rebuilds.
pub fn start_delay(purpose: &Purpose, startup_delay: Duration, resume: bool) -> Duration {
    if *purpose == Purpose::Startup && !resume {
        startup_delay
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::{
        Family, Version,
        instance::{Identity, Instance},
    };

    fn inst(name: &str, interface: &str, vrid: u8, sync: Option<&str>) -> Instance {
        let mut i = Instance::new(
            name,
            Identity::new(interface, vrid, Family::Ipv4, Version::V3),
        )
        .with_vip(format!("192.0.2.{vrid}").parse().unwrap());
        i.sync_group = sync.map(str::to_owned);
        i
    }

    #[test]
    fn sync_groups_gather_where_their_first_member_stands() {
        let all = [
            inst("a", "eth0", 1, Some("edge")),
            inst("b", "eth0", 2, None),
            inst("c", "eth1", 3, Some("edge")),
        ];
        let groups = desired_groups(&all);
        let keys: Vec<(&str, Vec<&str>)> = groups
            .iter()
            .map(|(k, m)| (k.as_str(), m.iter().map(|i| i.name.as_str()).collect()))
            .collect();
        assert_eq!(keys, [("sync:edge", vec!["a", "c"]), ("b", vec!["b"])]);
    }

    fn running(groups: &[(String, Vec<Instance>)]) -> Vec<Running<'_, Instance>> {
        groups
            .iter()
            .enumerate()
            .map(|(i, (k, m))| Running {
                id: i as GroupId,
                key: k,
                members: m,
                slot: 10 + i as u32,
            })
            .collect()
    }

    fn outcomes<I>(p: &Plan<I>) -> Vec<(&str, String)> {
        p.report
            .iter()
            .map(|(n, o)| (n.as_str(), o.to_string()))
            .collect()
    }

    #[test]
    fn a_reload_keeps_equal_groups_changes_others_in_place_and_stops_removed_ones() {
        let before = desired_groups(&[
            inst("gw", "eth0", 1, None),
            inst("gw2", "eth0", 2, None),
            inst("old", "eth1", 3, None),
        ]);
        let mut changed = inst("gw2", "eth0", 2, None);
        changed.priority = 200;
        let after = desired_groups(&[
            inst("gw", "eth0", 1, None),
            changed.clone(),
            inst("new", "eth1", 4, None),
        ]);
        let p = plan(&Purpose::Reload, false, &running(&before), after).unwrap();
        assert_eq!(p.keep, [0]);
        assert_eq!(p.stop, [2]);
        assert_eq!(
            p.update,
            [Update {
                id: 1,
                key: "gw2".into(),
                members: vec![Incoming::Kept {
                    from: 1,
                    member: 0,
                    cfg: changed,
                    fields: vec!["priority"],
                }],
            }]
        );
        let starts: Vec<(&str, Option<u32>)> =
            p.start.iter().map(|s| (s.key.as_str(), s.slot)).collect();
        assert_eq!(starts, [("new", None)]);
        assert_eq!(
            outcomes(&p),
            [
                ("gw", "unchanged".to_owned()),
                ("gw2", "changed in place: priority".to_owned()),
                ("new", "added".to_owned()),
                ("old", "removed".to_owned()),
            ]
        );
        assert_eq!(p.counts(), [1, 1, 0, 1, 1]);
    }

    #[test]
    fn a_changed_identity_is_a_remove_and_an_add_in_the_same_slot() {
        let before = desired_groups(&[inst("gw", "eth0", 1, None)]);
        let moved = inst("gw", "eth1", 1, None);
        let p = plan(
            &Purpose::Reload,
            false,
            &running(&before),
            desired_groups(&[moved]),
        )
        .unwrap();
        assert_eq!((p.keep.len(), p.update.len()), (0, 0));
        assert_eq!(p.stop, [0]);
        assert_eq!(p.start[0].slot, Some(10), "the same key keeps its slot");
        assert_eq!(
            outcomes(&p),
            [(
                "gw",
                "restarted: interface changed (eth0 → eth1): another virtual router, removed \
                 and added"
                    .to_owned()
            )]
        );
    }

    /// A sync group keeps running through every change of its membership: a member
    /// changed, one added, one taken out, a lone instance moved in with its state. The
    /// lone instance's group is stopped once it has moved out (nothing is left in it).
    #[test]
    fn sync_group_members_change_join_and_leave_in_place() {
        let before = desired_groups(&[
            inst("a", "eth0", 1, Some("edge")),
            inst("b", "eth0", 2, Some("edge")),
            inst("c", "eth1", 3, Some("edge")),
            inst("lone", "eth1", 4, None),
        ]);
        let mut a = inst("a", "eth0", 1, Some("edge"));
        a.priority = 120;
        let after = desired_groups(&[
            a.clone(),
            inst("c", "eth1", 3, Some("edge")),
            inst("lone", "eth1", 4, Some("edge")),
            inst("d", "eth0", 5, Some("edge")),
        ]);
        let p = plan(&Purpose::Reload, false, &running(&before), after).unwrap();
        assert!(p.keep.is_empty() && p.start.is_empty());
        assert_eq!(
            p.stop,
            [1],
            "the lone instance's group: its member moved out"
        );
        let [u] = &p.update[..] else {
            panic!("{:?}", p.update)
        };
        assert_eq!((u.id, u.key.as_str()), (0, "sync:edge"));
        let shape: Vec<String> = u
            .members
            .iter()
            .map(|m| match m {
                Incoming::Kept {
                    from,
                    member,
                    cfg,
                    fields,
                } => format!("{}<-{from}.{member}{fields:?}", cfg.name),
                Incoming::Fresh(cfg) => format!("{} fresh", cfg.name),
            })
            .collect();
        assert_eq!(
            shape,
            [
                "a<-0.0[\"priority\"]",
                "c<-0.2[]",
                "lone<-1.0[\"sync_group\"]",
                "d fresh"
            ]
        );
        assert_eq!(
            outcomes(&p),
            [
                ("a", "changed in place: priority".to_owned()),
                ("c", "unchanged".to_owned()),
                ("lone", "changed in place: sync_group".to_owned()),
                ("d", "added".to_owned()),
                ("b", "removed".to_owned()),
            ]
        );
    }

    /// Two lone instances form a sync group: it carries on in the first one's group
    /// (slot and all), the second moves in with its state.
    #[test]
    fn lone_instances_forming_a_sync_group_carry_on_in_the_first_ones_group() {
        let before = desired_groups(&[inst("x", "eth0", 1, None), inst("y", "eth1", 2, None)]);
        let after = desired_groups(&[
            inst("x", "eth0", 1, Some("pair")),
            inst("y", "eth1", 2, Some("pair")),
        ]);
        let p = plan(&Purpose::Reload, false, &running(&before), after).unwrap();
        assert_eq!(p.stop, [1]);
        assert_eq!(p.update.len(), 1);
        assert_eq!((p.update[0].id, p.update[0].key.as_str()), (0, "sync:pair"));
        assert!(matches!(
            p.update[0].members[1],
            Incoming::Kept {
                from: 1,
                member: 0,
                ..
            }
        ));
    }

    /// Splitting a sync group: one half carries on in the running group; the other half
    /// needs a slot of its own, so it starts anew (and the report says why).
    #[test]
    fn a_sync_group_split_in_two_restarts_the_half_that_needs_a_new_slot() {
        let before = desired_groups(&[
            inst("a", "eth0", 1, Some("edge")),
            inst("b", "eth0", 2, Some("edge")),
        ]);
        let after = desired_groups(&[
            inst("a", "eth0", 1, Some("edge")),
            inst("b", "eth0", 2, None),
        ]);
        let p = plan(&Purpose::Reload, false, &running(&before), after).unwrap();
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.start.len(), 1);
        assert_eq!(p.start[0].key, "b");
        let b = &outcomes(&p)[1];
        assert_eq!(b.0, "b");
        assert!(
            b.1.starts_with("restarted: moves from group sync:edge"),
            "{}",
            b.1
        );
    }

    #[test]
    fn a_reload_that_changes_global_is_refused_whole() {
        let groups = desired_groups(&[inst("gw", "eth0", 1, None)]);
        assert_eq!(
            plan(&Purpose::Reload, true, &running(&groups), groups.clone()),
            Err(Refusal::GlobalChanged)
        );
        // Start-up and rebuilds run the file already loaded.
        assert!(plan(&Purpose::Startup, false, &[], groups).is_ok());
    }

    #[test]
    fn a_rebuild_restarts_the_groups_on_its_interface_and_starts_the_missing_ones() {
        let all = [
            inst("a", "eth0", 1, Some("edge")),
            inst("b", "eth1", 2, None),
            inst("c", "eth2", 3, Some("edge")),
            inst("d", "eth0", 4, None),
        ];
        let desired = desired_groups(&all);
        // "d" could not start before (its interface was gone).
        let was = running(&desired[..2]);
        let p = plan(
            &Purpose::Rebuild {
                interface: "eth0".into(),
            },
            false,
            &was,
            desired.clone(),
        )
        .unwrap();
        assert_eq!(p.stop, [0], "the sync group has a member on eth0");
        assert_eq!(p.keep, [1]);
        let keys: Vec<&str> = p.start.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["sync:edge", "d"]);
        assert_eq!(
            p.start[0].slot,
            Some(10),
            "the restarted group keeps its slot"
        );
    }

    #[test]
    fn startup_starts_everything() {
        let desired = desired_groups(&[inst("a", "eth0", 1, None), inst("b", "eth1", 2, None)]);
        let p = plan(&Purpose::Startup, false, &[], desired).unwrap();
        assert!(p.keep.is_empty() && p.stop.is_empty());
        assert_eq!(p.start.len(), 2);
    }

    #[test]
    fn preparations_run_one_at_a_time_each_once() {
        let mut q = Preparations::default();
        let first = q.want(Purpose::Reload, 0).expect("nothing under way");
        assert_eq!(first.generation, 0);
        assert!(q.busy());
        assert_eq!(q.want(Purpose::Reload, 0), None, "queued");
        assert_eq!(q.want(Purpose::Reload, 0), None, "already queued: dropped");
        let rebuild = Purpose::Rebuild {
            interface: "eth0".into(),
        };
        assert_eq!(q.want(rebuild.clone(), 0), None);
        assert_eq!(q.next(0), None, "the first is still under way");
        assert_eq!(q.done(0, 0, true), Verdict::Commit);
        // The commit changed the groups; what comes next is made against them.
        let second = q.next(3).unwrap();
        assert_eq!((second.purpose, second.generation), (Purpose::Reload, 3));
        assert_eq!(q.done(3, 3, false), Verdict::Refused);
        let third = q.next(3).unwrap();
        assert_eq!(third.purpose, rebuild);
        assert_eq!(q.next(3), None);
    }

    #[test]
    fn a_preparation_made_against_groups_that_changed_is_done_again_first() {
        let mut q = Preparations::default();
        q.want(Purpose::Reload, 4).unwrap();
        q.want(Purpose::Startup, 4);
        assert_eq!(q.done(4, 5, true), Verdict::Redo);
        let again = q.next(5).unwrap();
        assert_eq!(again.purpose, Purpose::Reload, "ahead of what waited");
        assert_eq!(again.generation, 5);
        assert_eq!(q.done(9, 9, true), Verdict::Commit);
        assert_eq!(
            q.done(9, 9, true),
            Verdict::Refused,
            "nothing was asked for"
        );
    }

    #[test]
    fn slots_go_to_the_predecessor_then_the_previous_run_then_the_lowest_free() {
        let taken: BTreeSet<u32> = [0, 1, 5].into();
        assert_eq!(choose_slot(Some(5), &[], &taken, 8), Some(5));
        assert_eq!(choose_slot(None, &[5, 6], &taken, 8), Some(6));
        assert_eq!(choose_slot(None, &[9], &taken, 8), Some(2), "out of range");
        assert_eq!(choose_slot(None, &[], &(0..8).collect(), 8), None);
    }

    #[test]
    fn only_a_startup_in_a_live_pinned_slot_resumes_and_skips_the_startup_delay() {
        let d = Duration::from_secs(30);
        assert!(resumes(&Purpose::Startup, &[3], 3, true));
        assert!(!resumes(&Purpose::Startup, &[3], 3, false), "lease lapsed");
        assert!(!resumes(&Purpose::Startup, &[2], 3, true), "another slot");
        assert!(!resumes(&Purpose::Reload, &[3], 3, true));
        assert_eq!(start_delay(&Purpose::Startup, d, false), d);
        assert_eq!(start_delay(&Purpose::Startup, d, true), Duration::ZERO);
        assert_eq!(start_delay(&Purpose::Reload, d, false), Duration::ZERO);
    }
}
