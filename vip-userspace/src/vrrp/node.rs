//! Every group this node runs, and the lookups that route an event to the right one
//! without a scan: advertisements by (interface, family, VRID), link changes by interface
//! name, conflicts by (interface, address). Pure, like [`super::group`]: the daemon feeds
//! it what it observed and carries out the `(group, output)` pairs it gets back.
//!
//! Also the node's part of start-up, reloads and interface rebuilds: the preparation
//! queue and its generation ([`Node::want`], [`Node::prepared`]; the rules are in
//! [`super::plan`]), a reload's changes to running groups ([`Node::retire`] then
//! [`Node::reshape`]), and which link events mean an interface must be rebuilt
//! ([`Node::rebuilds`]).
//!
//! And the operator's maintenance commands: demotions by instance, sync group or the
//! whole node, kept here so they outlive the groups a reload reshapes ([`Node::demote`],
//! [`Node::promote`]; like CARP's demotion counter), and handing a group over now
//! ([`Node::handover`]).
//!
//! Everything that fires in one call comes out in a fixed order (groups by id, damped
//! links by name), so a replay of the same inputs gives the same outputs.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
    time::Duration,
};

use chacha20::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng as _};

use super::{
    bfd::packet::{Control, Diag},
    carp,
    group::{Group, Incoming, Input, MemberSetup, Output, Params},
    listen::Listen,
    liveness::{self, EchoIn, Liveness, Subscription},
    machine::{ConfigError, State},
    packet::{Advert, Family},
    plan::{Preparations, Prepare, Purpose, Verdict},
    schedule::Schedule,
    timing::Time,
};

/// A group's identity for as long as it runs. Never reused, so a report about a group that
/// a reload has since replaced is recognisably stale.
pub type GroupId = u64;

/// A group and where its members run.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The sync group's name as `sync:NAME`, or the instance name for a group of one.
    pub key: String,
    pub group: Group,
    /// Member `i` runs on interface `ifindexes[i]`.
    pub ifindexes: Vec<u32>,
}

/// What the daemon resolved for a group before adding it.
#[derive(Debug, Clone)]
pub struct GroupSetup {
    pub key: String,
    pub members: Vec<MemberSetup>,
    pub ifindexes: Vec<u32>,
}

/// A group to start: what the daemon resolved, what tracking already knows (fed before
/// it starts), whether a previous run's lease on its slot is still live, and how long to
/// wait before taking part (the start-up delay; zero on reloads).
#[derive(Debug, Clone)]
pub struct Launch {
    pub setup: GroupSetup,
    pub initial: Vec<Input>,
    pub resume: bool,
    pub delay: std::time::Duration,
}

/// A running group's new shape after a reload (see `plan::Update`), with what the shell
/// resolved for it.
#[derive(Debug, Clone)]
pub struct Reshape {
    pub id: GroupId,
    pub key: String,
    /// Its members in the new order.
    pub members: Vec<Arriving>,
    /// Member `i` runs on interface `ifindexes[i]`.
    pub ifindexes: Vec<u32>,
}

/// One member of a reshaped group.
#[derive(Debug, Clone)]
pub enum Arriving {
    /// Running member `member` of group `from`, taking on `setup` in place; `initial`:
    /// what the shell found out about links and files it newly tracks.
    Kept {
        from: GroupId,
        member: usize,
        setup: MemberSetup,
        initial: Vec<Input>,
    },
    /// A member starting afresh, with what tracking already knows.
    Fresh {
        setup: MemberSetup,
        initial: Vec<Input>,
    },
}

/// Who an operator's maintenance command is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Node,
    SyncGroup(String),
    Instance(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Node => f.write_str("the node"),
            Target::SyncGroup(g) => write!(f, "sync group {g}"),
            Target::Instance(i) => write!(f, "instance {i}"),
        }
    }
}

/// The most a demotion takes off: a priority never goes below 1.
pub const MAX_DEMOTION: u8 = 254;

/// The operator's demotions (`vipd demote`): the node's, each sync group's, each
/// instance's. An instance's effective priority loses all three that apply to it, after
/// tracking (never below 1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demotions {
    pub node: u8,
    pub sync_groups: BTreeMap<String, u8>,
    pub instances: BTreeMap<String, u8>,
}

impl Demotions {
    /// What instance `name` (of sync group `sync`) loses.
    pub fn of(&self, name: &str, sync: Option<&str>) -> u8 {
        let group = sync.and_then(|g| self.sync_groups.get(g)).copied();
        let own = self.instances.get(name).copied();
        let total =
            u16::from(self.node) + u16::from(group.unwrap_or(0)) + u16::from(own.unwrap_or(0));
        total.min(u16::from(MAX_DEMOTION)) as u8
    }

    /// The counter of `target`.
    pub fn get(&self, target: &Target) -> u8 {
        match target {
            Target::Node => self.node,
            Target::SyncGroup(g) => self.sync_groups.get(g).copied().unwrap_or(0),
            Target::Instance(i) => self.instances.get(i).copied().unwrap_or(0),
        }
    }

    fn set(&mut self, target: &Target, value: u8) {
        match target {
            Target::Node => self.node = value,
            Target::SyncGroup(g) if value == 0 => {
                self.sync_groups.remove(g);
            }
            Target::SyncGroup(g) => {
                self.sync_groups.insert(g.clone(), value);
            }
            Target::Instance(i) if value == 0 => {
                self.instances.remove(i);
            }
            Target::Instance(i) => {
                self.instances.insert(i.clone(), value);
            }
        }
    }

    /// Forgets instances and sync groups no longer configured (a reload).
    pub fn retain(&mut self, instances: &BTreeSet<String>, sync_groups: &BTreeSet<String>) {
        self.instances.retain(|k, _| instances.contains(k));
        self.sync_groups.retain(|k, _| sync_groups.contains(k));
    }
}

/// Why a maintenance command changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaintenanceError {
    #[error("no instance {0:?} runs here")]
    UnknownInstance(String),
    #[error("no sync group {0:?} runs here")]
    UnknownSyncGroup(String),
    #[error("{0} is not master here: nothing to hand over")]
    NotMaster(String),
    #[error("a demotion is 1..={MAX_DEMOTION}")]
    Amount,
}

#[derive(Debug, Default)]
pub struct Node {
    params: Params,
    groups: BTreeMap<GroupId, Entry>,
    next_id: GroupId,
    adverts: HashMap<(u32, Family, u8), (GroupId, usize)>,
    /// CARP virtual hosts by (interface, family, VHID): apart from VRRP's, as VRRP VRID 7
    /// and CARP VHID 7 are unrelated.
    carp_adverts: HashMap<(u32, Family, u8), (GroupId, usize)>,
    /// Draws each CARP member's first counter; seeded with the BFD seed by the daemon.
    counters: Option<ChaCha20Rng>,
    links: HashMap<String, Vec<GroupId>>,
    /// Every answered address (VIPs and proxy addresses), by address alone: a VIP's
    /// device need not be the VRRP interface.
    vips: HashMap<IpAddr, Vec<GroupId>>,
    schedule: Schedule,
    /// Flap damping: how long a link change must last before groups hear of it, by
    /// interface name (up delay, down delay).
    link_delays: BTreeMap<String, (Duration, Duration)>,
    /// The link state groups last heard, by interface name (absent: up).
    links_applied: HashMap<String, bool>,
    /// Link changes waiting out their delay: the new state and when it applies. Ordered,
    /// so two that expire in one tick apply in the same order every time.
    links_pending: BTreeMap<String, (bool, Time)>,
    /// The VRRP interface of every configured instance, running or not (one whose
    /// interface was missing waits for it to appear).
    configured: BTreeSet<String>,
    /// Bumped whenever a group is added or taken out: a preparation made against an
    /// older value is stale.
    generation: u64,
    preparations: Preparations,
    /// BFD sessions, and the members with `bfd` by interface (who hears of them).
    liveness: Liveness,
    bfd_members: HashMap<u32, Vec<(GroupId, usize)>>,
    /// The latest `now` any call brought: a removal (which takes none) closes sessions
    /// with it.
    now: Option<Time>,
    demotions: Demotions,
}

impl Node {
    pub fn new(params: Params) -> Node {
        Node {
            params,
            ..Node::default()
        }
    }

    /// Seeds the generator of this run's BFD discriminators and echo nonces (before any
    /// group is added): the daemon draws `seed` from the operating system.
    pub fn seed_bfd(&mut self, seed: [u8; 32]) {
        self.liveness = Liveness::new(seed);
        // Another stream of the same seed: CARP counters must not repeat across runs.
        let mut counters = ChaCha20Rng::from_seed(seed);
        counters.set_stream(1);
        self.counters = Some(counters);
    }

    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    /// BFD packets to send and session changes, for the daemon to carry out.
    pub fn take_bfd(&mut self) -> Vec<liveness::Output> {
        self.liveness.take_output()
    }

    pub fn groups(&self) -> impl Iterator<Item = (GroupId, &Entry)> {
        self.groups.iter().map(|(id, e)| (*id, e))
    }

    pub fn get(&self, id: GroupId) -> Option<&Entry> {
        self.groups.get(&id)
    }

    pub fn by_key(&self, key: &str) -> Option<GroupId> {
        self.groups
            .iter()
            .find(|(_, e)| e.key == key)
            .map(|(id, _)| *id)
    }

    /// Adds a group, not yet started (feed it what tracking already knows, then
    /// [`Input::Start`]).
    pub fn add(&mut self, setup: GroupSetup) -> Result<GroupId, ConfigError> {
        let mut group = Group::new(setup.members, self.params)?;
        let rng = self
            .counters
            .get_or_insert_with(|| ChaCha20Rng::from_seed([0; 32]));
        for i in 0..group.members().len() {
            if group.members()[i].cfg.carp.is_some() {
                group.seed_carp(i, rng.next_u64());
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.generation += 1;
        self.groups.insert(
            id,
            Entry {
                key: setup.key,
                group,
                ifindexes: setup.ifindexes,
            },
        );
        self.reindex();
        Ok(id)
    }

    /// Adds and starts a group: the one sequence used at start-up, by reloads and by
    /// interface rebuilds.
    pub fn launch(
        &mut self,
        now: Time,
        launch: Launch,
    ) -> Result<(GroupId, Vec<(GroupId, Output)>), ConfigError> {
        // Every interface the group looks at is up unless the launch says otherwise.
        for m in &launch.setup.members {
            let names = std::iter::once(&m.cfg.identity.interface)
                .chain(m.cfg.tracking.interfaces.iter().map(|t| &t.name));
            for name in names {
                self.links_applied.insert(name.clone(), true);
            }
        }
        for input in &launch.initial {
            if let Input::Link { name, up } = input {
                self.links_applied.insert(name.clone(), *up);
            }
        }
        let id = self.add(launch.setup)?;
        let mut out = Vec::new();
        for input in launch.initial {
            out.extend(self.handle(now, id, input));
        }
        // Sessions another instance on the interface already has Up count for this one.
        let known: Vec<(usize, IpAddr)> = self
            .groups
            .get(&id)
            .map(|e| {
                e.group
                    .members()
                    .iter()
                    .zip(&e.ifindexes)
                    .enumerate()
                    .filter(|(_, (m, _))| m.cfg.bfd.is_some())
                    .flat_map(|(i, (_, ifx))| {
                        self.liveness.up_on(*ifx).into_iter().map(move |p| (i, p))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (member, peer) in known {
            out.extend(self.handle(
                now,
                id,
                Input::Bfd {
                    member,
                    peer,
                    up: true,
                    diag: Diag::None,
                    slow_rtt: Some(Duration::ZERO),
                },
            ));
        }
        out.extend(self.apply_demotions(now, id));
        out.extend(self.handle(
            now,
            id,
            Input::Start {
                resume: launch.resume,
                delay: launch.delay,
            },
        ));
        Ok((id, out))
    }

    /// Stops group `id` at once and takes it out; its last outputs (resignation, release,
    /// addresses removed) are for the daemon to carry out with the returned entry.
    pub fn stop(&mut self, now: Time, id: GroupId) -> Option<(Entry, Vec<(GroupId, Output)>)> {
        let out = self.handle(now, id, Input::Stop);
        Some((self.remove(id)?, out))
    }

    /// Takes a group out (stop it first).
    pub fn remove(&mut self, id: GroupId) -> Option<Entry> {
        let e = self.groups.remove(&id)?;
        self.generation += 1;
        if let Some(now) = self.now {
            for i in 0..e.group.members().len() {
                self.liveness.subscribe(now, (id, i), None);
            }
            // Changes here concern only the group that is gone.
            self.liveness.take_changes();
        }
        self.reindex();
        Some(e)
    }

    /// Members of the reshaped groups that no reshape keeps (removed by the reload, or
    /// restarted): [`Node::retire`] them, then [`Node::reshape`].
    pub fn leaving(&self, reshapes: &[Reshape]) -> Vec<(GroupId, Vec<usize>)> {
        reshapes
            .iter()
            .filter_map(|r| {
                let e = self.groups.get(&r.id)?;
                let gone: Vec<usize> = (0..e.group.members().len())
                    .filter(|&i| {
                        !reshapes.iter().flat_map(|x| &x.members).any(|a| {
                            matches!(a, Arriving::Kept { from, member, .. }
                                if *from == r.id && *member == i)
                        })
                    })
                    .collect();
                (!gone.is_empty()).then_some((r.id, gone))
            })
            .collect()
    }

    /// Stops members `which` of group `id` (see [`Group::retire`]); their outputs are for
    /// the daemon to carry out while the group still has them.
    pub fn retire(&mut self, now: Time, id: GroupId, which: &[usize]) -> Vec<(GroupId, Output)> {
        self.now = Some(now);
        let Some(e) = self.groups.get_mut(&id) else {
            return Vec::new();
        };
        let out = e.group.retire(now, which);
        self.schedule.push(id, e.group.poll_at());
        out.into_iter().map(|o| (id, o)).collect()
    }

    /// Gives running groups a reload's new shapes (retire the leaving members first).
    /// Members moved in from groups no reshape names leave those groups silently (their
    /// state goes with them); those groups are then stopped by the reload.
    pub fn reshape(
        &mut self,
        now: Time,
        reshapes: Vec<Reshape>,
    ) -> Result<Vec<(GroupId, Output)>, ConfigError> {
        self.now = Some(now);
        let reshaped: BTreeSet<GroupId> = reshapes.iter().map(|r| r.id).collect();
        let mut carried = HashMap::new();
        let mut moved_out: BTreeMap<GroupId, Vec<usize>> = BTreeMap::new();
        let mut before: BTreeMap<GroupId, usize> = BTreeMap::new();
        for r in &reshapes {
            for a in &r.members {
                if let Arriving::Kept { from, member, .. } = a {
                    let state = self.groups.get(from).and_then(|e| e.group.carry(*member));
                    if let Some(state) = state {
                        carried.insert((*from, *member), state);
                        if !reshaped.contains(from) {
                            moved_out.entry(*from).or_default().push(*member);
                        }
                    }
                }
            }
        }
        for (&id, e) in &self.groups {
            if reshaped.contains(&id) || moved_out.contains_key(&id) {
                before.insert(id, e.group.members().len());
            }
        }
        let mut out = Vec::new();
        for r in reshapes {
            let incoming: Vec<Incoming> = r
                .members
                .into_iter()
                .filter_map(|a| match a {
                    Arriving::Kept {
                        from,
                        member,
                        setup,
                        initial,
                    } => {
                        let (machine, member) = carried.remove(&(from, member))?;
                        Some(Incoming::Kept {
                            machine,
                            member,
                            setup,
                            initial,
                        })
                    }
                    Arriving::Fresh { setup, initial } => Some(Incoming::Fresh { setup, initial }),
                })
                .collect();
            for i in &incoming {
                let (Incoming::Kept { setup, initial, .. } | Incoming::Fresh { setup, initial }) =
                    i;
                let names = std::iter::once(&setup.cfg.identity.interface)
                    .chain(setup.cfg.tracking.interfaces.iter().map(|t| &t.name));
                for name in names {
                    self.links_applied.entry(name.clone()).or_insert(true);
                }
                for input in initial {
                    if let Input::Link { name, up } = input {
                        self.links_applied.insert(name.clone(), *up);
                    }
                }
            }
            let Some(e) = self.groups.get_mut(&r.id) else {
                continue;
            };
            let outs = e.group.reshape(now, incoming)?;
            e.key = r.key;
            e.ifindexes = r.ifindexes;
            out.extend(outs.into_iter().map(|o| (r.id, o)));
        }
        for (id, mut gone) in moved_out {
            if let Some(e) = self.groups.get_mut(&id) {
                gone.sort_unstable();
                gone.dedup();
                e.group.drop_members(&gone);
                for i in gone.into_iter().rev() {
                    if i < e.ifindexes.len() {
                        e.ifindexes.remove(i);
                    }
                }
            }
        }
        self.generation += 1;
        self.reindex();
        for (id, len) in before {
            out.extend(self.apply_demotions(now, id));
            self.follow(now, id);
            let now_len = self.groups.get(&id).map_or(0, |e| e.group.members().len());
            let with_bfd: Vec<bool> = self.groups.get(&id).map_or(Vec::new(), |e| {
                e.group
                    .members()
                    .iter()
                    .map(|m| m.cfg.bfd.is_some())
                    .collect()
            });
            for i in 0..len.max(now_len) {
                if !with_bfd.get(i).copied().unwrap_or(false) {
                    self.liveness.subscribe(now, (id, i), None);
                }
            }
            if let Some(e) = self.groups.get(&id) {
                self.schedule.push(id, e.group.poll_at());
            }
        }
        self.deliver_bfd(now, &mut out);
        Ok(out)
    }

    /// The operator's demotions in force.
    pub fn demotions(&self) -> &Demotions {
        &self.demotions
    }

    /// Demotions a previous run left (its state file), before any group starts.
    pub fn set_demotions(&mut self, demotions: Demotions) {
        self.demotions = demotions;
    }

    /// After a reload: forgets demotions of instances and sync groups no longer
    /// configured.
    pub fn forget_demotions(&mut self, instances: &BTreeSet<String>, syncs: &BTreeSet<String>) {
        self.demotions.retain(instances, syncs);
    }

    /// Feeds every member of group `id` its demotion.
    fn apply_demotions(&mut self, now: Time, id: GroupId) -> Vec<(GroupId, Output)> {
        let Some(e) = self.groups.get(&id) else {
            return Vec::new();
        };
        let wanted: Vec<(usize, u8)> = e
            .group
            .members()
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let by = self.demotions.of(&m.cfg.name, m.cfg.sync_group.as_deref());
                (i, by)
            })
            .filter(|(i, by)| e.group.members()[*i].demotion() != *by)
            .collect();
        wanted
            .into_iter()
            .flat_map(|(member, by)| self.handle(now, id, Input::Demotion { member, by }))
            .collect()
    }

    /// The groups `target` names, or why none.
    fn targets(&self, target: &Target) -> Result<Vec<GroupId>, MaintenanceError> {
        let ids: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, e)| {
                e.group.members().iter().any(|m| match target {
                    Target::Node => true,
                    Target::SyncGroup(g) => m.cfg.sync_group.as_deref() == Some(g.as_str()),
                    Target::Instance(i) => m.cfg.name == *i,
                })
            })
            .map(|(id, _)| *id)
            .collect();
        match target {
            Target::SyncGroup(g) if ids.is_empty() => {
                Err(MaintenanceError::UnknownSyncGroup(g.clone()))
            }
            Target::Instance(i) if ids.is_empty() => {
                Err(MaintenanceError::UnknownInstance(i.clone()))
            }
            _ => Ok(ids),
        }
    }

    /// `vipd demote`: adds `by` to `target`'s demotion (up to [`MAX_DEMOTION`]).
    pub fn demote(
        &mut self,
        now: Time,
        target: &Target,
        by: u8,
    ) -> Result<Vec<(GroupId, Output)>, MaintenanceError> {
        if by == 0 || by > MAX_DEMOTION {
            return Err(MaintenanceError::Amount);
        }
        let ids = self.targets(target)?;
        let value = self
            .demotions
            .get(target)
            .saturating_add(by)
            .min(MAX_DEMOTION);
        self.demotions.set(target, value);
        Ok(ids
            .into_iter()
            .flat_map(|id| self.apply_demotions(now, id))
            .collect())
    }

    /// `vipd promote`: takes `by` (everything with `None`) off `target`'s demotion, and
    /// lets the members it names preempt again after a handover.
    pub fn promote(
        &mut self,
        now: Time,
        target: &Target,
        by: Option<u8>,
    ) -> Result<Vec<(GroupId, Output)>, MaintenanceError> {
        let ids = self.targets(target)?;
        let value = by.map_or(0, |b| self.demotions.get(target).saturating_sub(b));
        self.demotions.set(target, value);
        let mut out = Vec::new();
        for id in ids {
            let members: Vec<usize> = self.groups.get(&id).map_or(Vec::new(), |e| {
                e.group
                    .members()
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| match target {
                        Target::Instance(i) => m.cfg.name == *i,
                        _ => true,
                    })
                    .map(|(i, _)| i)
                    .collect()
            });
            for member in members {
                out.extend(self.handle(
                    now,
                    id,
                    Input::Yield {
                        member,
                        yielding: false,
                    },
                ));
            }
            out.extend(self.apply_demotions(now, id));
        }
        Ok(out)
    }

    /// `vipd handover`: every group `target` names that answers here hands over now,
    /// make-before-break, and holds back until promoted.
    pub fn handover(
        &mut self,
        now: Time,
        target: &Target,
    ) -> Result<Vec<(GroupId, Output)>, MaintenanceError> {
        let ids: Vec<GroupId> = self
            .targets(target)?
            .into_iter()
            .filter(|id| self.groups.get(id).is_some_and(|e| e.group.owned()))
            .collect();
        if ids.is_empty() {
            return Err(MaintenanceError::NotMaster(target.to_string()));
        }
        Ok(ids
            .into_iter()
            .flat_map(|id| self.handle(now, id, Input::Handover))
            .collect())
    }

    fn reindex(&mut self) {
        self.adverts.clear();
        self.carp_adverts.clear();
        self.links.clear();
        self.vips.clear();
        self.bfd_members.clear();
        for (&id, e) in &self.groups {
            for (i, (m, &ifindex)) in e.group.members().iter().zip(&e.ifindexes).enumerate() {
                if m.cfg.bfd.is_some() {
                    self.bfd_members.entry(ifindex).or_default().push((id, i));
                }
                let key = (ifindex, m.cfg.identity.family, m.cfg.identity.vrid);
                if m.cfg.identity.is_carp() {
                    self.carp_adverts.insert(key, (id, i));
                } else {
                    self.adverts.insert(key, (id, i));
                }
                let names = std::iter::once(&m.cfg.identity.interface)
                    .chain(m.cfg.tracking.interfaces.iter().map(|t| &t.name));
                for name in names {
                    let ids = self.links.entry(name.clone()).or_default();
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                // Proxy addresses too: the data plane records conflicts for whatever it
                // answers, and a claimed proxy address is announced again like a VIP.
                for (_, addr) in m.cfg.answered() {
                    let ids = self.vips.entry(addr).or_default();
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
        }
        let groups = &self.groups;
        self.schedule
            .rebuild(groups.iter().map(|(id, e)| (*id, e.group.poll_at())));
    }

    /// Feeds `input` to group `id`.
    pub fn handle(&mut self, now: Time, id: GroupId, input: Input) -> Vec<(GroupId, Output)> {
        self.now = Some(now);
        let Some(e) = self.groups.get_mut(&id) else {
            return Vec::new();
        };
        let mut out: Vec<(GroupId, Output)> = e
            .group
            .handle(now, input)
            .into_iter()
            .map(|o| (id, o))
            .collect();
        self.schedule.push(id, e.group.poll_at());
        self.follow(now, id);
        self.deliver_bfd(now, &mut out);
        out
    }

    /// Updates what group `id`'s members subscribe to: configured peers, or the master
    /// each follows as backup.
    fn follow(&mut self, now: Time, id: GroupId) {
        let Some(e) = self.groups.get(&id) else {
            return;
        };
        let mut subs = Vec::new();
        for (i, (m, &ifindex)) in e.group.members().iter().zip(&e.ifindexes).enumerate() {
            let Some(settings) = &m.cfg.bfd else {
                continue;
            };
            let peers = if !settings.peers.is_empty() {
                settings.peers.clone()
            } else {
                e.group
                    .machine(i)
                    .filter(|x| x.state() == State::Backup)
                    .and_then(|x| x.master_address())
                    .filter(|a| *a != m.src)
                    .into_iter()
                    .collect()
            };
            // The neighbours the instance names may open sessions here (a master
            // answering its backups); anyone else must have been heard advertising.
            let named = settings
                .peers
                .iter()
                .chain(&m.cfg.unicast_peers)
                .chain(&m.cfg.admission.allowed_peers)
                .copied()
                .collect();
            subs.push((
                i,
                Subscription {
                    instance: m.cfg.name.clone(),
                    ifindex,
                    local: m.src,
                    settings: settings.clone(),
                    peers,
                    named,
                },
            ));
        }
        for (i, sub) in subs {
            self.liveness.subscribe(now, (id, i), Some(sub));
        }
    }

    /// Tells the members on each interface which sessions went to or from Up.
    fn deliver_bfd(&mut self, now: Time, out: &mut Vec<(GroupId, Output)>) {
        for c in self.liveness.take_changes() {
            let (ifindex, peer) = c.neighbour;
            let members = self.bfd_members.get(&ifindex).cloned().unwrap_or_default();
            for (id, member) in members {
                if let Some(e) = self.groups.get_mut(&id) {
                    let input = Input::Bfd {
                        member,
                        peer,
                        up: c.up,
                        diag: c.diag,
                        slow_rtt: c.slow_rtt,
                    };
                    out.extend(e.group.handle(now, input).into_iter().map(|o| (id, o)));
                    self.schedule.push(id, e.group.poll_at());
                }
            }
        }
    }

    /// A BFD Control packet received on `ifindex` from `src` with `ttl`.
    pub fn bfd_control(
        &mut self,
        now: Time,
        ifindex: u32,
        src: IpAddr,
        ttl: u8,
        control: Control,
    ) -> Vec<(GroupId, Output)> {
        self.now = Some(now);
        self.liveness.control(now, ifindex, src, ttl, control);
        let mut out = Vec::new();
        self.deliver_bfd(now, &mut out);
        out
    }

    /// A datagram the echo socket of `ifindex` took in, at `arrived` by the kernel's
    /// clock; see [`Liveness::echo`] for when it counts.
    pub fn bfd_echo(
        &mut self,
        now: Time,
        ifindex: u32,
        frame: EchoIn<'_>,
        arrived: Time,
    ) -> Vec<(GroupId, Output)> {
        self.now = Some(now);
        self.liveness.echo(now, ifindex, frame, arrived);
        let mut out = Vec::new();
        self.deliver_bfd(now, &mut out);
        out
    }

    /// Where BFD sockets are needed: the families (Control sockets) and interfaces (echo
    /// sockets) of the running instances with `bfd`.
    pub fn bfd_sockets(&self) -> (BTreeSet<Family>, BTreeSet<u32>) {
        let families = self
            .bfd_members
            .values()
            .flatten()
            .filter_map(|(id, i)| self.groups.get(id)?.group.members().get(*i))
            .map(|m| m.cfg.identity.family)
            .collect();
        (families, self.bfd_members.keys().copied().collect())
    }

    /// Echo `seq` to `neighbour` left at `at`.
    pub fn bfd_echo_sent(&mut self, neighbour: liveness::Neighbour, seq: u32, at: Time) {
        self.liveness.echo_sent(neighbour, seq, at);
    }

    /// Feeds `input` to every group.
    pub fn handle_all(&mut self, now: Time, input: Input) -> Vec<(GroupId, Output)> {
        let ids: Vec<GroupId> = self.groups.keys().copied().collect();
        ids.into_iter()
            .flat_map(|id| self.handle(now, id, input.clone()))
            .collect()
    }

    /// An advertisement received on `ifindex`; ignored when no instance runs its VRID
    /// there (another VRRP speaker's on a shared link).
    pub fn advert(
        &mut self,
        now: Time,
        ifindex: u32,
        src: IpAddr,
        ttl: u8,
        advert: Advert,
    ) -> Vec<(GroupId, Output)> {
        let key = (ifindex, Family::of(&src), advert.vrid);
        let Some(&(id, member)) = self.adverts.get(&key) else {
            return Vec::new();
        };
        let out = self.handle(
            now,
            id,
            Input::Advert {
                member,
                src,
                ttl,
                advert,
            },
        );
        // An admitted advertisement makes its source a router this node talks BFD to.
        let refused = out.iter().any(|(g, o)| {
            *g == id && matches!(o, Output::Rejected { member: m, .. } if *m == member)
        });
        if !refused && self.bfd_members.contains_key(&ifindex) {
            self.liveness.heard(now, ifindex, src);
        }
        out
    }

    /// A CARP advertisement received on `ifindex`; ignored when no CARP virtual host of
    /// its VHID runs there (another CARP speaker's, such as a ucarp on this host).
    pub fn carp_advert(
        &mut self,
        now: Time,
        ifindex: u32,
        src: IpAddr,
        ttl: u8,
        advert: carp::Advert,
    ) -> Vec<(GroupId, Output)> {
        let key = (ifindex, Family::of(&src), advert.vhid);
        let Some(&(id, member)) = self.carp_adverts.get(&key) else {
            return Vec::new();
        };
        let out = self.handle(
            now,
            id,
            Input::CarpAdvert {
                member,
                src,
                ttl,
                advert,
            },
        );
        // Only a verified advertisement makes its source a router to talk BFD to.
        let refused = out.iter().any(|(g, o)| {
            *g == id && matches!(o, Output::CarpRefused { member: m, .. } if *m == member)
        });
        if !refused && self.bfd_members.contains_key(&ifindex) {
            self.liveness.heard(now, ifindex, src);
        }
        out
    }

    /// What the VRRP socket of `family` on `ifindex` must let through: the VRIDs of the
    /// instances running there (see `listen`).
    pub fn listening(&self, ifindex: u32, family: Family) -> Listen {
        Listen::of(
            family,
            self.groups.values().flat_map(|e| {
                e.group
                    .members()
                    .iter()
                    .zip(&e.ifindexes)
                    .filter(move |(_, ifx)| **ifx == ifindex)
                    .map(|(m, _)| &m.cfg)
            }),
        )
    }

    /// What the configuration says about interfaces: how long a change of each must
    /// last before it counts (flap damping), and which ones instances run VRRP on
    /// (whether or not they run yet).
    pub fn set_interfaces(
        &mut self,
        delays: BTreeMap<String, (Duration, Duration)>,
        configured: BTreeSet<String>,
    ) {
        self.link_delays = delays;
        self.configured = configured;
    }

    /// Whether interface `name`, seen with index `ifindex`, must be rebuilt: some
    /// configured instance runs VRRP on it and no running group runs on that index (it
    /// came back with a new index, or was missing when its instances were prepared).
    pub fn rebuilds(&self, name: &str, ifindex: u32) -> bool {
        self.configured.contains(name)
            && !self.groups.values().any(|e| e.ifindexes.contains(&ifindex))
    }

    /// Changes whenever a group is added or taken out.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Asks for a preparation (see [`super::plan::Preparations`]): returned when the
    /// daemon should start it now, `None` when it waits for the one under way.
    pub fn want(&mut self, purpose: Purpose) -> Option<Prepare> {
        self.preparations.want(purpose, self.generation)
    }

    /// A preparation made against `generation` came back (`accepted`: its configuration
    /// was read and valid). On [`Verdict::Commit`] the daemon commits it, then asks
    /// [`Node::next_preparation`].
    pub fn prepared(&mut self, generation: u64, accepted: bool) -> Verdict {
        self.preparations
            .done(generation, self.generation, accepted)
    }

    /// The preparation to start next, if one waits and none is under way.
    pub fn next_preparation(&mut self) -> Option<Prepare> {
        self.preparations.next(self.generation)
    }

    /// Interface `name` went up or down: groups hear of it once it has lasted the
    /// interface's up or down delay (at once without one). A change back within the
    /// delay cancels it.
    pub fn link(&mut self, now: Time, name: &str, up: bool) -> Vec<(GroupId, Output)> {
        let applied = self.links_applied.get(name).copied().unwrap_or(true);
        if up == applied {
            self.links_pending.remove(name);
            return Vec::new();
        }
        let delay = self
            .link_delays
            .get(name)
            .map_or(Duration::ZERO, |(u, d)| if up { *u } else { *d });
        if delay.is_zero() {
            self.links_pending.remove(name);
            return self.apply_link(now, name, up);
        }
        if self.links_pending.get(name).is_none_or(|(p, _)| *p != up) {
            self.links_pending
                .insert(name.to_owned(), (up, now + delay));
        }
        Vec::new()
    }

    fn apply_link(&mut self, now: Time, name: &str, up: bool) -> Vec<(GroupId, Output)> {
        self.links_applied.insert(name.to_owned(), up);
        let ids = self.links.get(name).cloned().unwrap_or_default();
        let input = Input::Link {
            name: name.to_owned(),
            up,
        };
        ids.into_iter()
            .flat_map(|id| self.handle(now, id, input.clone()))
            .collect()
    }

    /// Another station claimed `vip`.
    pub fn conflict(&mut self, now: Time, vip: IpAddr) -> Vec<(GroupId, Output)> {
        let ids = self.vips.get(&vip).cloned().unwrap_or_default();
        ids.into_iter()
            .flat_map(|id| self.handle(now, id, Input::Conflict { vip }))
            .collect()
    }

    /// The earliest deadline of any group or damped link change.
    pub fn poll_at(&mut self) -> Option<Time> {
        let groups = &self.groups;
        let group = self
            .schedule
            .next(|id| groups.get(&id).and_then(|e| e.group.poll_at()));
        let link = self.links_pending.values().map(|(_, t)| *t).min();
        group
            .into_iter()
            .chain(link)
            .chain(self.liveness.poll_at())
            .min()
    }

    /// Fires what is due at `now` in every group.
    pub fn poll(&mut self, now: Time) -> Vec<(GroupId, Output)> {
        self.now = Some(now);
        let due: Vec<(String, bool)> = self
            .links_pending
            .iter()
            .filter(|(_, (_, t))| *t <= now)
            .map(|(n, (up, _))| (n.clone(), *up))
            .collect();
        let mut out = Vec::new();
        for (name, up) in due {
            self.links_pending.remove(&name);
            out.extend(self.apply_link(now, &name, up));
        }
        let groups = &self.groups;
        let due = self
            .schedule
            .due(now, |id| groups.get(&id).and_then(|e| e.group.poll_at()));
        for id in due {
            if let Some(e) = self.groups.get_mut(&id) {
                out.extend(e.group.poll(now).into_iter().map(|o| (id, o)));
                self.schedule.push(id, e.group.poll_at());
                self.follow(now, id);
            }
        }
        // Sessions after groups: a takeover just made stops its session's echoes first.
        self.liveness.poll(now);
        self.deliver_bfd(now, &mut out);
        out
    }

    pub fn handover_pending(&self) -> bool {
        self.groups.values().any(|e| e.group.handover_pending())
    }
}
