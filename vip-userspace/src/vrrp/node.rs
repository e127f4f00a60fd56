//! Every group this node runs, and the lookups that route an event to the right one
//! without a scan: advertisements by (interface, family, VRID), link changes by interface
//! name, conflicts by (interface, address). Pure, like [`super::group`]: the daemon feeds
//! it what it observed and carries out the `(group, output)` pairs it gets back.
//!
//! Also the node's part of start-up, reloads and interface rebuilds: the preparation
//! queue and its generation ([`Node::want`], [`Node::prepared`]; the rules are in
//! [`super::plan`]), and which link events mean an interface must be rebuilt
//! ([`Node::rebuilds`]).
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
    bfd::packet::{Control, Diag, Echo},
    carp,
    group::{Group, Input, MemberSetup, Output, Params},
    listen::Listen,
    liveness::{self, Liveness, Subscription},
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

    /// An echo in vipd's format came back on `ifindex` addressed from and to `src`, at
    /// `arrived` by the kernel's clock; see [`Liveness::echo`] for when it counts.
    pub fn bfd_echo(
        &mut self,
        now: Time,
        ifindex: u32,
        src: IpAddr,
        echo: Echo,
        arrived: Time,
    ) -> Vec<(GroupId, Output)> {
        self.now = Some(now);
        self.liveness.echo(now, ifindex, src, echo, arrived);
        let mut out = Vec::new();
        self.deliver_bfd(now, &mut out);
        out
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
