//! One group of instances that fail over together (a sync group, or one instance alone)
//! and everything this node decides for it beyond the RFC state machine: which
//! advertisements count, what tracking does to priority, when this node starts and stops
//! answering (the data-plane slot and its lease), make-before-break handover, the
//! takeover guard, announcements, and which addresses the kernel holds.
//!
//! Pure, like [`super::machine`]: [`Group::handle`] takes `now` and an [`Input`] and
//! returns [`Output`]s for the daemon to carry out, [`Group::poll`] fires what is due and
//! [`Group::poll_at`] says when that is. The daemon (`crate::daemon`) only executes the
//! outputs: map writes, sockets, netlink, hooks. docs/architecture.md describes the
//! split; `tests/conformance/` replays recorded input streams against expected outputs.
//!
//! # What each state means for the data plane
//! - A group *answers* (its slot is owned) while any member is master. Ownership is a
//!   lease: every write of the slot says "until now + our Master_Down_Interval", and each
//!   advertisement we send renews it, so a dead daemon stops answering no later than a
//!   backup takes over.
//! - Taking over from a master that is still alive (it resigned, or we preempt it) waits
//!   [`Params::takeover_guard`] after our first advertisement, so the old master has seen
//!   it and stopped answering: a client may see a short gap, never two routers answering.
//! - The data plane also releases the slot on its own the moment it admits an
//!   advertisement from a better master ([`Input::Released`] tells us); the group then
//!   leaves master through the state machine, never by silently owning the slot again.
//! - Leaving master releases the slot and removes the addresses, except during a planned
//!   handover ([`Input::Shutdown`], and the operator's [`Input::Handover`]): the slot
//!   stays owned (flagged "resigning") until the successor's first advertisement, which
//!   the data plane acts on at line rate.
//!
//! # A reload changes a running group in place
//! [`Group::reshape`] takes the group's new members: each one kept (with its machine,
//! tracking and counters, and its new configuration), moved in from another group, or
//! started afresh; [`Group::retire`] first stops the members that go. Nothing of the
//! group's own (the slot, its lease, a handover) is touched, and a kept member never leaves
//! its state for the change itself (`super::change` says which changes qualify):
//! - a new priority, weight or tracked item: the effective priority is worked out again
//!   and a master advertises it at once; if it now loses, the election decides, and the
//!   data plane keeps answering until the winner's first advertisement (the slot's
//!   `yield_above` follows the new priority with that advertisement);
//! - a new interval: a master advertises at once (`Machine::reconfigure`);
//! - new VIPs or proxy addresses: announced on their own (`garp_repeat` rounds) while
//!   master; the others are not announced again; the data plane's entries and the
//!   kernel's addresses are the shell's, per address;
//! - Accept_Mode or owner priority turned on or off while master: the kernel gets or loses
//!   the VIP addresses ([`Output::Install`] again with the new `addresses`);
//! - a member moved in from another group in another state follows this group's: into
//!   master if the group answers, out of it (resigning) if it does not.
//!
//! # Maintenance
//! [`Input::Demotion`] lowers a member's effective priority by the operator's demotion
//! (after tracking); [`Input::Handover`] hands a master group over make-before-break
//! and holds its members back from preempting until [`Input::Yield`] releases them.
//!
//! # CARP members
//! A CARP member ([`Instance::carp`]) has a [`carp::Speaker`]: every received
//! advertisement goes through its VHID, HMAC and counter checks before the machine sees
//! it, and a refusal is counted ([`CarpCounters`]) and reported ([`Output::CarpRefused`])
//! without touching any state. Its advertisements leave signed as
//! [`Output::CarpAdvert`]. The data plane never releases a CARP group's slot itself
//! (it cannot check the HMAC), so only this group, after verifying, moves it.

use std::{net::IpAddr, time::Duration};

use super::{
    admission::{Rejection, admit},
    announce,
    bfd::packet::Diag,
    carp,
    instance::Instance,
    machine::{self, Action, Event, Reason, State},
    packet::{Advert, Auth, Family, Version},
    sync::{MemberAction, SyncGroup},
    timing::{Interval, Time, master_down_interval},
    tracking::{Outcome, TrackItem, TrackState},
};

/// Timing choices the daemon makes for every group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params {
    /// Taken off every lease: the data plane reads a coarse clock that lags by up to a
    /// tick, and the lease must never outlive our Master_Down_Interval.
    pub clock_lag: Duration,
    /// See the module docs.
    pub takeover_guard: Duration,
}

/// What the daemon found out about one member before it starts: its configuration and the
/// address it sends advertisements from (its side of the equal-priority tie-break).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSetup {
    pub cfg: Instance,
    pub src: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Start every member: as master at once when `resume` (a previous run's lease on the
    /// slot is still live, so clients are being answered), otherwise as the RFC says,
    /// after `delay` (keepalived's `vrrp_startup_delay`: routing converging after boot).
    /// Tracking already known goes in before it.
    Start { resume: bool, delay: Duration },
    /// A decoded advertisement for member `member`, received from `src` with `ttl`.
    Advert {
        member: usize,
        src: IpAddr,
        ttl: u8,
        advert: Advert,
    },
    /// A decoded CARP advertisement for member `member` (a CARP virtual host), received
    /// from `src` with `ttl`; not yet verified.
    CarpAdvert {
        member: usize,
        src: IpAddr,
        ttl: u8,
        advert: carp::Advert,
    },
    /// A tracked script or file of member `member` changed.
    Track { member: usize, item: TrackItem },
    /// Interface `name` (the VRRP interface or a tracked one) went up or down.
    Link { name: String, up: bool },
    /// Another station claimed `vip` (an ARP reply or gratuitous ARP from a foreign MAC).
    Conflict { vip: IpAddr },
    /// The data plane released the slot on an advertisement it admitted.
    Released {
        vrid: u8,
        src: IpAddr,
        priority: u8,
        interval: Interval,
    },
    /// Planned stop (SIGTERM): resign, keep answering until a successor is heard.
    Shutdown,
    /// The operator hands the group over now (`vipd handover`): resign, keep answering
    /// until a successor is heard, and carry on as backup, not preempting (every member
    /// yields) until [`Input::Yield`] says otherwise.
    Handover,
    /// Member `member` yields (does not preempt) or no longer does (`vipd promote`).
    Yield { member: usize, yielding: bool },
    /// The operator's demotion of member `member` (its instance's, its sync group's and
    /// the node's together) is now `by`: taken off its priority after tracking.
    Demotion { member: usize, by: u8 },
    /// Stop now (removed by a reload, interface gone): resign and let go at once.
    Stop,
    /// The BFD session to `peer` on member `member`'s interface went Up (`up`) or left
    /// Up (for `diag`). See [`super::liveness`] for the sessions and
    /// `docs/architecture.md` ("BFD") for what a backup does with it.
    Bfd {
        member: usize,
        peer: IpAddr,
        up: bool,
        diag: Diag,
        /// The session's worst echo round trip lately: how long to wait for the master
        /// to answer a probe before believing it gone. `None` when the path (or this
        /// host) stalled lately: a "down" then proves nothing a probe could settle
        /// quickly, so the hold ends and Master_Down_Interval decides, as without BFD.
        slow_rtt: Option<Duration>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write the slot: answer until `until` (the lease), stop on an advertisement above
    /// `yield_above`, and during a planned handover (`resigning`) on the successor's first.
    Own {
        until: Time,
        yield_above: u8,
        resigning: bool,
    },
    /// Write the slot: stop answering.
    Release,
    /// Send an advertisement for `member` with `priority` (0 resigns); see
    /// [`advert_for`] for its contents.
    Advert { member: usize, priority: u8 },
    /// Announce `member`'s addresses (gratuitous ARP / unsolicited NA): `vip` alone, or
    /// all of them when `None`.
    Announce { member: usize, vip: Option<IpAddr> },
    /// The kernel should hold (`present`) or no longer hold what `member` installs as
    /// master: the virtual MAC's unicast filter entry, its routes and rules, and, where
    /// `addresses` says so (a master that accepts traffic for its VIPs: the owner, or
    /// Accept_Mode; `Machine::accepts_vip_traffic`), the VIP addresses themselves.
    Install {
        member: usize,
        present: bool,
        addresses: bool,
    },
    /// `member` changed state.
    Transition {
        member: usize,
        from: State,
        to: State,
        priority: u8,
        reason: Reason,
    },
    /// An advertisement for `member` was refused (and counted).
    Rejected {
        member: usize,
        src: IpAddr,
        reason: Rejection,
    },
    /// A planned handover ended: the successor was heard, or nobody was (`None`) before
    /// the lease ran out.
    HandoverDone { successor: Option<IpAddr> },
    /// A sync group as a whole changed state (keepalived's group notify): FAULT when a
    /// member faults, MASTER when all are master, STOP when all stopped, else BACKUP.
    SyncTransition { to: State },
    /// A backup checks whether its master is alive after BFD said it is not: one
    /// advertisement for `member` with `priority`, from the interface's own MAC (never
    /// the virtual MAC, which would move to this port on learning bridges). A live master
    /// answers it at once (RFC 9568 §6.4.3).
    Probe { member: usize, priority: u8 },
    /// Send CARP member `member`'s advertisement, signed (a bow-out when its rank is
    /// [`carp::Rank::BOW_OUT`]); from the interface's own MAC with `own_mac` (a probe).
    CarpAdvert {
        member: usize,
        advert: carp::Advert,
        own_mac: bool,
    },
    /// A CARP advertisement for `member` was refused (and counted); nothing changed.
    CarpRefused {
        member: usize,
        src: IpAddr,
        reason: CarpRefusal,
    },
}

/// Why a CARP advertisement was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarpRefusal {
    /// TTL / hop limit other than 255.
    Ttl { ttl: u8 },
    /// The speaker's VHID, HMAC or counter check.
    Refused(carp::Refused),
}

impl std::fmt::Display for CarpRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CarpRefusal::Ttl { ttl } => write!(f, "TTL {ttl}, not 255"),
            CarpRefusal::Refused(r) => write!(f, "{r}"),
        }
    }
}

/// A CARP member's refusals, for status and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CarpCounters {
    pub ttl: u64,
    /// Wrong passphrase or other addresses (or a forgery).
    pub auth: u64,
    /// Replayed or repeated counters (or our own advertisement come back).
    pub replay: u64,
    pub vhid: u64,
}

/// Per-member counters for status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub received: u64,
    /// Indexed like [`Rejection::ALL`].
    pub rejected: [u64; 4],
    pub transitions: u64,
    /// Probes sent after a BFD "down" of the master, and how many the master answered.
    pub bfd_probes: u64,
    pub bfd_probes_answered: u64,
}

impl Counters {
    pub fn rejected(&self, r: Rejection) -> u64 {
        self.rejected[r as usize]
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub cfg: Instance,
    pub src: IpAddr,
    pub track: TrackState,
    pub counters: Counters,
    /// What tracking last told the machine.
    applied: Outcome,
    announce: announce::Schedule,
    /// What the kernel was told to hold: `Some(addresses)` while installed.
    installed: Option<bool>,
    /// The state last reported in an [`Output::Transition`].
    state: State,
    /// Neighbours on the member's interface whose BFD sessions are Up (with `bfd` only).
    bfd_up: Vec<IpAddr>,
    /// Double-checking a BFD "down" of the master before taking over.
    probe: Option<Probe>,
    /// The operator's demotion, taken off the priority tracking gives.
    demotion: u8,
    /// Announcements of addresses a reload added while master, and which.
    fresh: announce::Schedule,
    fresh_vips: Vec<IpAddr>,
    /// CARP members: signs ours and verifies theirs.
    speaker: Option<carp::Speaker>,
    pub carp_counters: CarpCounters,
}

/// A backup's check that its master is gone after its BFD session went down: a probe
/// advertisement after the skew, then `window` for the master to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    master: IpAddr,
    send_at: Time,
    /// Set once sent: when, unanswered, the backup takes over.
    until: Option<Time>,
    window: Duration,
}

impl Probe {
    fn due_at(&self) -> Time {
        self.until.unwrap_or(self.send_at)
    }
}

impl Member {
    fn new(MemberSetup { cfg, src }: MemberSetup) -> Member {
        Member {
            applied: Outcome {
                fault: false,
                priority: cfg.priority,
            },
            track: TrackState::new(&cfg.tracking),
            counters: Counters::default(),
            announce: announce::Schedule::default(),
            installed: None,
            state: State::Initialize,
            bfd_up: Vec::new(),
            probe: None,
            demotion: 0,
            speaker: speaker_for(&cfg, 0),
            carp_counters: CarpCounters::default(),
            fresh: announce::Schedule::default(),
            fresh_vips: Vec::new(),
            cfg,
            src,
        }
    }

    /// The operator's demotion in force.
    pub fn demotion(&self) -> u8 {
        self.demotion
    }

    fn cancel_announcements(&mut self) {
        self.announce.cancel();
        self.fresh.cancel();
        self.fresh_vips.clear();
    }

    /// CARP: remembered counter ranges forgotten for lack of room.
    pub fn carp_forgotten(&self) -> u64 {
        self.speaker.as_ref().map_or(0, carp::Speaker::forgotten)
    }

    /// Whether `vip` is one of the addresses this member answers for: a VIP or a proxy
    /// address.
    fn owns_vip(&self, vip: IpAddr) -> bool {
        self.cfg.answered().any(|(_, a)| a == vip)
    }

    /// Neighbours whose BFD sessions are Up.
    pub fn bfd_up(&self) -> &[IpAddr] {
        &self.bfd_up
    }

    /// How long after its master's session went down this backup takes over: a share of
    /// the BFD interval that shrinks with priority, so of several backups whose sessions
    /// fail together the best acts first and its advertisement settles the rest before
    /// their takeover guard runs out.
    pub fn bfd_skew(&self, priority: u8) -> Duration {
        self.cfg.bfd.as_ref().map_or(Duration::ZERO, |b| {
            b.interval * (256 - u32::from(priority)) / 256
        })
    }
}

/// A planned handover in progress (SIGTERM as master, or the operator's while running).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handover {
    None,
    /// Resigned; answering until a new master advertises or `until`. `live`: the
    /// operator's, after which the group carries on; otherwise a shutdown's.
    Waiting {
        until: Time,
        live: bool,
    },
    Done,
}

/// A member of a reshaped group (see [`Group::reshape`]).
#[derive(Debug, Clone)]
pub enum Incoming {
    /// A running member (of this group or another) with its state, taking on `setup`;
    /// `initial` is what the shell found out about tracked objects it did not track
    /// before (links, files), fed before the change is applied.
    Kept {
        machine: Box<machine::Machine>,
        member: Box<Member>,
        setup: MemberSetup,
        initial: Vec<Input>,
    },
    /// A member starting afresh, with what tracking already knows.
    Fresh {
        setup: MemberSetup,
        initial: Vec<Input>,
    },
}

#[derive(Debug, Clone)]
pub struct Group {
    params: Params,
    sync: SyncGroup,
    members: Vec<Member>,
    /// Our view of the slot: answering.
    owned: bool,
    /// A takeover waiting out the guard.
    own_at: Option<Time>,
    /// When the slot was last written as owned (one write per instant is enough).
    owned_written: Option<Time>,
    /// The slot was last written as released: another release would change nothing.
    released_written: bool,
    /// The lease last written.
    lease_until: Option<Time>,
    handover: Handover,
    /// The sync group's state as last reported; `None` for a lone instance.
    aggregate: Option<State>,
    /// A start waiting out its delay.
    start_at: Option<Time>,
}

/// The advertisement `cfg` sends with `priority`: it lists `vips` (as many as one packet
/// carries, see `Instance::advertised_vips`), never `vips_excluded`. Peers only log a
/// list that differs from theirs (RFC 5798 §7.1 makes the check optional); every VIP is
/// answered for either way.
pub fn advert_for(cfg: &Instance, priority: u8) -> Advert {
    let addresses = cfg.advertised_vips().iter().map(|v| v.addr).collect();
    let interval = cfg.advert_interval;
    let vrid = cfg.identity.vrid;
    match cfg.identity.version {
        Version::V3 => Advert::v3(vrid, priority, interval, addresses),
        Version::V2 => {
            let auth = cfg
                .admission
                .auth_pass
                .map(|data| Auth {
                    auth_type: super::packet::AuthType::SimpleText,
                    data,
                })
                .unwrap_or(Auth::NONE);
            Advert::v2(vrid, priority, interval, addresses, auth)
        }
    }
}

fn machine_config(cfg: &Instance, src: IpAddr) -> machine::Config {
    let id = &cfg.identity;
    let mut mc = machine::Config::new(id.vrid, id.version, cfg.priority, src);
    mc.advert_interval = cfg.advert_interval;
    mc.preempt = cfg.preempt;
    mc.preempt_delay = cfg.preempt_delay;
    mc.accept_mode = cfg.accept;
    mc.carp = cfg.carp.as_ref().map(|c| machine::CarpTiming {
        dead_ratio: c.dead_ratio,
        demote: c.demote,
    });
    mc
}

/// The speaker of a CARP instance, its own counter starting at `counter`: every VIP of
/// the instance is in the HMAC.
fn speaker_for(cfg: &Instance, counter: u64) -> Option<carp::Speaker> {
    let c = cfg.carp.as_ref()?;
    Some(carp::Speaker::new(
        cfg.identity.vrid,
        authenticator(cfg)?,
        carp::ReplayGuard::new(c.replay, counter),
    ))
}

/// What signs and checks a CARP instance's advertisements: its key over its addresses.
fn authenticator(cfg: &Instance) -> Option<carp::Authenticator> {
    let c = cfg.carp.as_ref()?;
    let host = carp::VirtualHost::new(cfg.identity.vrid, cfg.all_vips().map(|v| v.addr));
    let form = if c.hmac_link_local {
        carp::LinkLocal::With
    } else {
        carp::LinkLocal::Without
    };
    Some(carp::Authenticator::new(&c.key, &host, form))
}

/// A CARP master's lease: the master-down time of a backup of its advbase with the best
/// skew (0), `dead_ratio` × advbase. A CARP backup waits by its *own* skew, and one
/// ranked above a non-preempting master takes over sooner than the master's own
/// master-down time would say; with the skew left out, a dead master's data plane has
/// stopped answering by then. At least two advbases (more than the longest interval
/// between two advertisements, advbase + 255/256 s) so a live master's lease never lapses
/// between them; with `dead_ratio` 1, which leaves no such margin, `own` (the master's
/// own master-down time).
fn carp_lease(rank: carp::Rank, dead_ratio: u8, own: Duration) -> Duration {
    if dead_ratio < 2 {
        return own;
    }
    carp::master_down(carp::Rank { advskew: 0, ..rank }, dead_ratio)
}

impl Group {
    pub fn new(members: Vec<MemberSetup>, params: Params) -> Result<Group, machine::ConfigError> {
        let mut machines = Vec::with_capacity(members.len());
        let mut out = Vec::with_capacity(members.len());
        for setup in members {
            machines.push(machine::Machine::new(machine_config(
                &setup.cfg, setup.src,
            ))?);
            out.push(Member::new(setup));
        }
        let aggregate = out
            .first()
            .and_then(|m| m.cfg.sync_group.as_ref())
            .map(|_| State::Initialize);
        Ok(Group {
            start_at: None,
            aggregate,
            params,
            sync: SyncGroup::new(machines),
            members: out,
            owned: false,
            own_at: None,
            owned_written: None,
            released_written: false,
            lease_until: None,
            handover: Handover::None,
        })
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Member `i`'s machine and state, to carry into another group (a reload moving an
    /// instance between sync groups); see [`Incoming::Kept`].
    pub fn carry(&self, i: usize) -> Option<(Box<machine::Machine>, Box<Member>)> {
        Some((
            Box::new(self.sync.member(i)?.clone()),
            Box::new(self.members.get(i)?.clone()),
        ))
    }

    /// Takes members `which` (sorted) out silently: they moved to another group with their
    /// state (see [`Group::carry`]).
    pub fn drop_members(&mut self, which: &[usize]) {
        let keep: Vec<bool> = (0..self.members.len())
            .map(|i| which.binary_search(&i).is_err())
            .collect();
        let sync = std::mem::replace(&mut self.sync, SyncGroup::new(Vec::new()));
        let machines = sync
            .into_members()
            .into_iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(m, _)| m)
            .collect();
        self.sync = SyncGroup::new(machines);
        let mut i = 0;
        self.members.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }

    /// Stops the members `which` (a reload taking them out) before [`Group::reshape`]
    /// drops them: each resigns if it was master and the kernel loses what it installed;
    /// the other members do not move, and the slot is released only if no member is left
    /// answering.
    pub fn retire(&mut self, now: Time, which: &[usize]) -> Vec<Output> {
        let mut out = Vec::new();
        for &i in which {
            let actions = self.sync.handle(now, i, Event::Shutdown);
            self.execute(now, actions, &mut out);
            if let Some(m) = self.members.get_mut(i) {
                m.cancel_announcements();
            }
            self.install(i, false, &mut out);
        }
        if !self.any_master() && !self.handover_pending() {
            self.release(&mut out);
        }
        out
    }

    /// Takes on a reload's new shape (see the module docs): `incoming` in the new order.
    /// The group's own state (slot, lease, handover) stays; members not in `incoming` are
    /// gone (retire them first).
    pub fn reshape(
        &mut self,
        now: Time,
        incoming: Vec<Incoming>,
    ) -> Result<Vec<Output>, machine::ConfigError> {
        enum Then {
            Update(Box<MemberSetup>, Vec<Input>),
            Start(Vec<Input>),
        }
        let mut machines = Vec::with_capacity(incoming.len());
        let mut members = Vec::with_capacity(incoming.len());
        let mut then = Vec::with_capacity(incoming.len());
        for inc in incoming {
            match inc {
                Incoming::Kept {
                    machine,
                    member,
                    setup,
                    initial,
                } => {
                    machines.push(*machine);
                    members.push(*member);
                    then.push(Then::Update(Box::new(setup), initial));
                }
                Incoming::Fresh { setup, initial } => {
                    machines.push(machine::Machine::new(machine_config(
                        &setup.cfg, setup.src,
                    ))?);
                    members.push(Member::new(setup));
                    then.push(Then::Start(initial));
                }
            }
        }
        let started = self.start_at.is_none() && self.handover == Handover::None;
        let lease = self.lease_len();
        // Moved-in and fresh members hold back with the group after an operator's
        // handover.
        let yielding = self.yielding();
        self.sync = SyncGroup::new(machines);
        self.members = members;
        let mut out = Vec::new();
        // A sync group formed or renamed by the reload reports from here on, from the state
        // it is in (nothing moved to announce).
        self.aggregate = self
            .members
            .first()
            .and_then(|m| m.cfg.sync_group.as_ref())
            .map(|_| self.aggregate_state());
        for (i, t) in then.into_iter().enumerate() {
            match t {
                Then::Update(setup, initial) => {
                    self.update_member(now, i, *setup, initial, &mut out)?
                }
                Then::Start(initial) => {
                    if yielding && let Some(m) = self.sync.member_mut(i) {
                        m.set_yielding(true);
                    }
                    for input in initial {
                        self.track_input(now, i, input);
                    }
                    if started {
                        self.apply_tracking(now, i, &mut out);
                        let actions = self.sync.handle(now, i, Event::Startup);
                        self.execute(now, actions, &mut out);
                    }
                }
            }
        }
        self.follow_group(now, &mut out);
        self.shorten_lease(now, lease, &mut out);
        self.announce_due(now, &mut out);
        self.report_aggregate(&mut out);
        self.update_hold();
        Ok(out)
    }

    /// A tracking observation of member `i` (a link or a tracked item), recorded without
    /// acting on it yet.
    fn track_input(&mut self, now: Time, i: usize, input: Input) {
        let Some(m) = self.members.get_mut(i) else {
            return;
        };
        match input {
            Input::Track { item, .. } => {
                m.track.apply(&m.cfg.tracking, now, &item);
            }
            Input::Link { name, up } => {
                m.track
                    .set_link(&m.cfg.tracking, &m.cfg.identity.interface, &name, up);
            }
            _ => {}
        }
    }

    /// Member `i` (kept by a reload) takes on `setup` without leaving its state.
    fn update_member(
        &mut self,
        now: Time,
        i: usize,
        setup: MemberSetup,
        initial: Vec<Input>,
        out: &mut Vec<Output>,
    ) -> Result<(), machine::ConfigError> {
        let config = machine_config(&setup.cfg, setup.src);
        let actions = match self.sync.member_mut(i) {
            Some(m) => m.reconfigure(now, config)?,
            None => return Ok(()),
        };
        let Some(m) = self.members.get_mut(i) else {
            return Ok(());
        };
        let old = std::mem::replace(&mut m.cfg, setup.cfg);
        m.src = setup.src;
        // A CARP advertisement's HMAC covers the addresses (a change of the CARP settings
        // themselves restarts the instance, `super::change`): new ones sign and verify
        // from the next advertisement on; the replay memory and our counter carry on.
        if let (Some(speaker), Some(auth)) = (m.speaker.as_mut(), authenticator(&m.cfg)) {
            speaker.rekey(auth);
        }
        m.track = m.track.carried(&old.tracking, &m.cfg.tracking);
        let before: Vec<IpAddr> = old.answered().map(|(_, a)| a).collect();
        let added: Vec<IpAddr> = m
            .cfg
            .answered()
            .map(|(_, a)| a)
            .filter(|a| !before.contains(a))
            .collect();
        if m.cfg.bfd.is_none() {
            m.bfd_up.clear();
            m.probe = None;
        }
        let actions = actions
            .into_iter()
            .map(|action| MemberAction { member: i, action })
            .collect();
        self.execute(now, actions, out);
        for input in initial {
            self.track_input(now, i, input);
        }
        self.apply_tracking(now, i, out);
        if self.state(i) == State::Master && self.owned && self.own_at.is_none() {
            self.install(i, true, out);
        }
        if self.owned
            && self.state(i) == State::Master
            && !added.is_empty()
            && let Some(m) = self.members.get_mut(i)
        {
            m.fresh_vips = added;
            m.fresh.cancel();
            let burst = announce::Settings {
                refresh: None,
                ..m.cfg.announce
            };
            m.fresh.start(now, &burst);
        }
        Ok(())
    }

    /// Members whose state is not the group's (moved in by a reload) follow it: into
    /// master while the group answers, out of it otherwise.
    fn follow_group(&mut self, now: Time, out: &mut Vec<Output>) {
        let answering = self.owned || self.own_at.is_some();
        let leader = (0..self.members.len()).find(|&i| self.state(i) == State::Master);
        for i in 0..self.members.len() {
            let event = match (answering, self.state(i), leader) {
                (true, State::Backup, Some(l)) => Event::SyncMaster { member: l },
                (false, State::Master, _) => Event::SyncBackup { member: i },
                _ => continue,
            };
            let actions = self.sync.handle(now, i, event);
            self.execute(now, actions, out);
        }
    }

    /// The state a sync group reports: FAULT when a member faults, MASTER when all are
    /// master, INITIALIZE when none started, else BACKUP.
    fn aggregate_state(&self) -> State {
        let states: Vec<State> = (0..self.members.len()).map(|i| self.state(i)).collect();
        if states.contains(&State::Fault) {
            State::Fault
        } else if states.iter().all(|s| *s == State::Master) {
            State::Master
        } else if states.iter().all(|s| *s == State::Initialize) {
            State::Initialize
        } else {
            State::Backup
        }
    }

    /// Starts CARP member `member`'s own counter at `counter` (drawn at random by the
    /// node, so a restarted vipd does not repeat its last run's counters). Before start.
    pub fn seed_carp(&mut self, member: usize, counter: u64) {
        if let Some(m) = self.members.get_mut(member) {
            m.speaker = speaker_for(&m.cfg, counter);
        }
    }

    pub fn machine(&self, member: usize) -> Option<&machine::Machine> {
        self.sync.member(member)
    }

    /// Whether this node answers for the group's addresses.
    pub fn owned(&self) -> bool {
        self.owned
    }

    pub fn handover_pending(&self) -> bool {
        matches!(self.handover, Handover::Waiting { .. })
    }

    /// The lease written with each advertisement: our own Master_Down_Interval, the
    /// longest of the members'. A backup's is at least as long (its priority is lower, its
    /// skew larger), so a dead master's lease lapses no later than a backup takes over.
    pub fn lease_len(&self) -> Duration {
        self.members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                if let (Some(c), Some(x)) = (&m.cfg.carp, self.sync.member(i)) {
                    return carp_lease(x.rank(), c.dead_ratio, x.master_down_interval());
                }
                let prio = self
                    .sync
                    .member(i)
                    .map_or(m.cfg.priority, |x| x.effective_priority());
                master_down_interval(m.cfg.identity.version, prio, m.cfg.advert_interval)
            })
            .max()
            .unwrap_or(Duration::from_secs(3))
    }

    /// The earliest moment the group needs attention.
    pub fn poll_at(&self) -> Option<Time> {
        let handover = match self.handover {
            Handover::Waiting { until, .. } => Some(until),
            _ => None,
        };
        let announcements = self
            .members
            .iter()
            .flat_map(|m| [m.announce.due_at(), m.fresh.due_at()])
            .flatten()
            .min();
        let probes = self
            .members
            .iter()
            .filter_map(|m| m.probe.map(|p| p.due_at()))
            .min();
        let tracking = self.members.iter().filter_map(|m| m.track.poll_at()).min();
        [
            self.sync.poll_at(),
            self.own_at,
            handover,
            announcements,
            self.start_at,
            probes,
            tracking,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle(&mut self, now: Time, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        let lease = self.lease_len();
        match input {
            Input::Start { resume, delay } => {
                if resume || delay.is_zero() {
                    self.start(now, resume, &mut out);
                } else {
                    // Nothing of a previous run is trusted meanwhile.
                    self.release(&mut out);
                    self.start_at = Some(now + delay);
                }
            }
            Input::Advert {
                member,
                src,
                ttl,
                advert,
            } => self.advert(now, member, src, ttl, &advert, &mut out),
            Input::CarpAdvert {
                member,
                src,
                ttl,
                advert,
            } => self.carp_advert(now, member, src, ttl, &advert, &mut out),
            Input::Track { member, item } => {
                if let Some(m) = self.members.get_mut(member)
                    && m.track.apply(&m.cfg.tracking, now, &item)
                {
                    self.apply_tracking(now, member, &mut out);
                }
            }
            Input::Link { name, up } => {
                for i in 0..self.members.len() {
                    let m = &mut self.members[i];
                    if m.track
                        .set_link(&m.cfg.tracking, &m.cfg.identity.interface, &name, up)
                    {
                        self.apply_tracking(now, i, &mut out);
                    }
                }
            }
            Input::Conflict { vip } => {
                if self.owned {
                    for (i, m) in self.members.iter().enumerate() {
                        if m.owns_vip(vip) {
                            out.push(Output::Announce {
                                member: i,
                                vip: Some(vip),
                            });
                        }
                    }
                }
            }
            Input::Released {
                vrid,
                src,
                priority,
                interval,
            } => self.released(now, vrid, src, priority, interval, &mut out),
            Input::Shutdown => self.shutdown(now, &mut out),
            Input::Stop => self.stop(now, &mut out),
            Input::Handover => self.hand_over(now, &mut out),
            Input::Yield { member, yielding } => {
                if let Some(m) = self.sync.member_mut(member) {
                    m.set_yielding(yielding);
                }
            }
            Input::Demotion { member, by } => {
                if let Some(m) = self.members.get_mut(member)
                    && std::mem::replace(&mut m.demotion, by) != by
                {
                    // CARP advertises demotion in its own byte (`Event::CarpDemotion`);
                    // VRRP takes it off the priority.
                    if m.cfg.carp.is_some() {
                        let actions = self.sync.handle(now, member, Event::CarpDemotion(by));
                        self.execute(now, actions, &mut out);
                    } else {
                        self.apply_tracking(now, member, &mut out);
                    }
                }
            }
            Input::Bfd {
                member,
                peer,
                up,
                diag,
                slow_rtt,
            } => self.bfd(now, member, peer, up, diag, slow_rtt),
        }
        self.shorten_lease(now, lease, &mut out);
        self.announce_due(now, &mut out);
        self.report_aggregate(&mut out);
        self.update_hold();
        out
    }

    /// The lease never outlives Master_Down_Interval: when a member's priority rose or its
    /// interval shrank (a reload, a promotion, tracking) and nothing renewed the slot
    /// since, it is written again with the shorter lease.
    fn shorten_lease(&mut self, now: Time, before: Duration, out: &mut Vec<Output>) {
        let lease = self.lease_len().saturating_sub(self.params.clock_lag);
        if self.owned
            && self.own_at.is_none()
            && self.lease_len() < before
            && self.lease_until.is_some_and(|t| t > now + lease)
        {
            self.own(now, out);
        }
    }

    /// A BFD session changed. A backup whose session to its master left Up because the
    /// path or the master's host failed (the echoes stopped coming back, or the master
    /// said so) double-checks before it takes over: after its skew it sends a probe
    /// advertisement, which a live master answers at once, and takes over only if no
    /// answer comes within the probe window (the takeover guard, longer while echoes have
    /// been slow). A false "down" (a loaded host late with the echoes) thus ends with the
    /// master's answer, without a transition and never with two routers answering.
    /// Control packets that stopped while echoes did not mean the master's daemon
    /// stopped, which is what advert silence already says: the hold ends and
    /// Master_Down_Interval decides, exactly as without BFD, so the old master's lease has
    /// lapsed before anyone takes over.
    fn bfd(
        &mut self,
        now: Time,
        i: usize,
        peer: IpAddr,
        up: bool,
        diag: Diag,
        slow_rtt: Option<Duration>,
    ) {
        let guard = self.params.takeover_guard;
        let Some(m) = self.members.get_mut(i) else {
            return;
        };
        if m.cfg.bfd.is_none() || Family::of(&peer) != m.cfg.identity.family {
            return;
        }
        m.bfd_up.retain(|p| *p != peer);
        if up {
            m.bfd_up.push(peer);
            // The session is back (an echo came back while the path was suspect, or
            // the session came Up): the master's host and the path work. A probe sent
            // meanwhile counts as answered.
            if let Some(p) = m.probe.filter(|p| p.master == peer) {
                m.probe = None;
                if p.until.is_some() {
                    m.counters.bfd_probes_answered += 1;
                }
            }
            return;
        }
        let Some(machine) = self.sync.member(i) else {
            return;
        };
        let path_failed = diag != Diag::ControlDetectionTimeExpired;
        if path_failed
            && machine.state() == State::Backup
            && machine.master_address() == Some(peer)
            && m.probe.is_none()
            && let Some(slow_rtt) = slow_rtt
        {
            let skew = m.bfd_skew(machine.effective_priority());
            // Never longer than plain VRRP would take.
            let window = guard.max(slow_rtt * 2).min(machine.master_down_interval());
            m.probe = Some(Probe {
                master: peer,
                send_at: now + skew,
                until: None,
                window,
            });
        }
    }

    /// Sends due probes and takes over where one went unanswered.
    fn run_probes(&mut self, now: Time, out: &mut Vec<Output>) {
        for i in 0..self.members.len() {
            let Some(p) = self.members[i].probe else {
                continue;
            };
            let Some(machine) = self.sync.member(i) else {
                continue;
            };
            // Things moved on without us: a new master, a fault, a transition.
            if machine.state() != State::Backup || machine.master_address() != Some(p.master) {
                self.members[i].probe = None;
                continue;
            }
            match p.until {
                None if p.send_at <= now => {
                    self.members[i].counters.bfd_probes += 1;
                    let priority = machine.effective_priority();
                    let rank = machine.rank();
                    match self.members[i].speaker.as_mut() {
                        Some(speaker) => out.push(Output::CarpAdvert {
                            member: i,
                            advert: speaker.advertise(rank),
                            own_mac: true,
                        }),
                        None => out.push(Output::Probe {
                            member: i,
                            priority,
                        }),
                    }
                    self.members[i].probe = Some(Probe {
                        until: Some(now + p.window),
                        ..p
                    });
                }
                Some(until) if until <= now => {
                    self.members[i].probe = None;
                    let event = Event::PeerDown {
                        src: p.master,
                        within: Duration::ZERO,
                    };
                    let actions = self.sync.handle(now, i, event);
                    self.execute(now, actions, out);
                }
                _ => {}
            }
        }
    }

    /// A backup holds (silence alone does not make it master) while its BFD session to
    /// the master it follows is Up.
    fn update_hold(&mut self) {
        for i in 0..self.members.len() {
            if self.members[i].cfg.bfd.is_none() {
                continue;
            }
            let master = self.sync.member(i).and_then(|m| m.master_address());
            let hold = master.is_some_and(|a| self.members[i].bfd_up.contains(&a));
            self.sync.set_hold(i, hold);
        }
    }

    fn report_aggregate(&mut self, out: &mut Vec<Output>) {
        let Some(last) = self.aggregate else {
            return;
        };
        let now = self.aggregate_state();
        if now != last {
            self.aggregate = Some(now);
            out.push(Output::SyncTransition { to: now });
        }
    }

    pub fn poll(&mut self, now: Time) -> Vec<Output> {
        let mut out = Vec::new();
        if self.start_at.is_some_and(|t| t <= now) && self.handover == Handover::None {
            self.start_at = None;
            self.start(now, false, &mut out);
        }
        if self.own_at.is_some_and(|t| t <= now) {
            self.own(now, &mut out);
            for i in 0..self.members.len() {
                if self.state(i) == State::Master {
                    self.install(i, true, &mut out);
                }
            }
        }
        if let Handover::Waiting { until, .. } = self.handover
            && until <= now
        {
            self.finish_handover(None, &mut out);
        }
        self.run_probes(now, &mut out);
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            if m.track.poll(&m.cfg.tracking, now) {
                self.apply_tracking(now, i, &mut out);
            }
        }
        let actions = self.sync.poll(now);
        self.execute(now, actions, &mut out);
        self.announce_due(now, &mut out);
        self.report_aggregate(&mut out);
        self.update_hold();
        out
    }

    fn state(&self, i: usize) -> State {
        self.sync.member(i).map_or(State::Initialize, |m| m.state())
    }

    fn start(&mut self, now: Time, resume: bool, out: &mut Vec<Output>) {
        self.owned = resume;
        if !resume {
            // Whatever a previous run left in the slot is not ours to trust.
            self.release(out);
        }
        // What tracking already knows goes in first, so the machines start with it.
        for i in 0..self.members.len() {
            self.apply_tracking(now, i, out);
        }
        let event = if resume {
            Event::Resume
        } else {
            Event::Startup
        };
        for i in 0..self.members.len() {
            let actions = self.sync.handle(now, i, event.clone());
            self.execute(now, actions, out);
        }
    }

    fn advert(
        &mut self,
        now: Time,
        i: usize,
        src: IpAddr,
        ttl: u8,
        advert: &Advert,
        out: &mut Vec<Output>,
    ) {
        let Some(m) = self.members.get_mut(i) else {
            return;
        };
        if let Err(reason) = admit(m.cfg.identity.version, &m.cfg.admission, src, ttl, advert) {
            m.counters.rejected[reason as usize] += 1;
            out.push(Output::Rejected {
                member: i,
                src,
                reason,
            });
            return;
        }
        m.counters.received += 1;
        // The master answered a probe (or simply advertised): it is alive. One yielding
        // to us (a lower priority) is leaving, so the probe runs out and we take over.
        if let Some(p) = m.probe
            && p.master == src
            && advert.priority
                >= self
                    .sync
                    .member(i)
                    .map_or(u8::MAX, |x| x.effective_priority())
        {
            m.probe = None;
            if p.until.is_some() {
                m.counters.bfd_probes_answered += 1;
            }
        }
        match self.handover {
            Handover::Waiting { live, .. } => {
                if src != m.src && advert.priority > 0 {
                    self.finish_handover(Some(src), out);
                }
                // After the operator's handover the group carries on as backup: it
                // follows the successor like any master.
                if live {
                    let actions = self.sync.handle(now, i, Event::advert(src, advert));
                    self.execute(now, actions, out);
                }
            }
            Handover::None => {
                let actions = self.sync.handle(now, i, Event::advert(src, advert));
                self.execute(now, actions, out);
            }
            Handover::Done => {}
        }
    }

    /// A CARP advertisement: the speaker's checks first (a refusal changes nothing but a
    /// counter), then the same handover and BFD-probe handling as a VRRP one, then the
    /// machine.
    fn carp_advert(
        &mut self,
        now: Time,
        i: usize,
        src: IpAddr,
        ttl: u8,
        advert: &carp::Advert,
        out: &mut Vec<Output>,
    ) {
        let Some(m) = self.members.get_mut(i) else {
            return;
        };
        let Some(speaker) = m.speaker.as_mut() else {
            return;
        };
        let admitted = if ttl != vip_common::wire::VRRP_TTL {
            Err(CarpRefusal::Ttl { ttl })
        } else {
            speaker.admit(advert).map_err(CarpRefusal::Refused)
        };
        let admitted = match admitted {
            Ok(a) => a,
            Err(reason) => {
                let c = &mut m.carp_counters;
                match reason {
                    CarpRefusal::Ttl { .. } => c.ttl += 1,
                    CarpRefusal::Refused(carp::Refused::OtherVhid { .. }) => c.vhid += 1,
                    CarpRefusal::Refused(carp::Refused::Auth(_)) => c.auth += 1,
                    CarpRefusal::Refused(carp::Refused::Replay(_)) => c.replay += 1,
                }
                out.push(Output::CarpRefused {
                    member: i,
                    src,
                    reason,
                });
                return;
            }
        };
        m.counters.received += 1;
        let rank = admitted.rank;
        let ours = self.sync.member(i).map_or(rank, machine::Machine::rank);
        if let Some(p) = m.probe
            && p.master == src
            && rank.preference(&ours) != std::cmp::Ordering::Greater
        {
            m.probe = None;
            if p.until.is_some() {
                m.counters.bfd_probes_answered += 1;
            }
        }
        match self.handover {
            Handover::Waiting { .. } => {
                if src != m.src && !rank.is_bow_out() {
                    self.finish_handover(Some(src), out);
                }
            }
            Handover::None => {
                let actions = self.sync.handle(now, i, Event::CarpAdvert { src, rank });
                self.execute(now, actions, out);
            }
            Handover::Done => {}
        }
    }

    fn released(
        &mut self,
        now: Time,
        vrid: u8,
        src: IpAddr,
        priority: u8,
        interval: Interval,
        out: &mut Vec<Output>,
    ) {
        if let Handover::Waiting { live, .. } = self.handover {
            self.finish_handover(Some(src), out);
            if !live {
                return;
            }
        }
        if !self.owned && self.own_at.is_none() {
            return;
        }
        // The data plane already stopped answering; only the machines are left to agree.
        self.owned = false;
        self.own_at = None;
        self.owned_written = None;
        let i = self
            .members
            .iter()
            .position(|m| m.cfg.identity.vrid == vrid)
            .unwrap_or(0);
        let event = Event::Released {
            src,
            priority,
            max_adver_int: interval,
        };
        let actions = self.sync.handle(now, i, event);
        self.execute(now, actions, out);
    }

    fn shutdown(&mut self, now: Time, out: &mut Vec<Output>) {
        if let Handover::Waiting { until, live: true } = self.handover {
            // The operator's handover under way becomes the shutdown's: same wait.
            self.handover = Handover::Waiting { until, live: false };
            let actions = self.sync.handle_all(now, Event::Shutdown);
            self.execute(now, actions, out);
            return;
        }
        if self.handover != Handover::None {
            return;
        }
        self.start_at = None;
        if self.owned || self.own_at.is_some() {
            self.handover = Handover::Waiting {
                until: now + self.lease_len(),
                live: false,
            };
            // Cover the whole wait: no more advertisements will renew the lease.
            self.own(now, out);
        } else {
            self.handover = Handover::Done;
        }
        let actions = self.sync.handle_all(now, Event::Shutdown);
        self.execute(now, actions, out);
    }

    fn stop(&mut self, now: Time, out: &mut Vec<Output>) {
        self.handover = Handover::Done;
        self.start_at = None;
        let actions = self.sync.handle_all(now, Event::Shutdown);
        self.execute(now, actions, out);
        self.release(out);
        for i in 0..self.members.len() {
            self.members[i].cancel_announcements();
            self.install(i, false, out);
        }
    }

    /// The operator's handover: like a shutdown's, but the group carries on as backup and
    /// its members yield until promoted. Nothing happens unless it answers.
    fn hand_over(&mut self, now: Time, out: &mut Vec<Output>) {
        if self.handover != Handover::None || !(self.owned || self.own_at.is_some()) {
            return;
        }
        self.handover = Handover::Waiting {
            until: now + self.lease_len(),
            live: true,
        };
        // Cover the whole wait, flagged resigning: the successor's first advertisement
        // releases the slot in the data plane.
        self.own(now, out);
        let actions = self.sync.handle_all(now, Event::Resign);
        self.execute(now, actions, out);
        for i in 0..self.members.len() {
            if let Some(m) = self.sync.member_mut(i) {
                m.set_yielding(true);
            }
        }
    }

    fn finish_handover(&mut self, successor: Option<IpAddr>, out: &mut Vec<Output>) {
        let live = matches!(self.handover, Handover::Waiting { live: true, .. });
        self.handover = if live { Handover::None } else { Handover::Done };
        out.push(Output::HandoverDone { successor });
        self.release(out);
        for i in 0..self.members.len() {
            if live && self.state(i) == State::Master {
                continue;
            }
            self.members[i].cancel_announcements();
            self.install(i, false, out);
        }
    }

    /// Whether the operator handed this group over and it holds back (every member
    /// yields).
    pub fn yielding(&self) -> bool {
        !self.members.is_empty() && self.sync.members().iter().all(|m| m.yielding())
    }

    /// Re-evaluates member `i`'s tracking and tells its machine what changed.
    fn apply_tracking(&mut self, now: Time, i: usize, out: &mut Vec<Output>) {
        let Some(m) = self.members.get_mut(i) else {
            return;
        };
        let mut outcome = m.track.outcome(&m.cfg.tracking, m.cfg.priority);
        if m.cfg.carp.is_none() {
            outcome.priority = outcome.priority.saturating_sub(m.demotion).max(1);
        }
        let applied = std::mem::replace(&mut m.applied, outcome);
        if outcome.priority != applied.priority {
            let actions = self
                .sync
                .handle(now, i, Event::PriorityChanged(outcome.priority));
            self.execute(now, actions, out);
        }
        if outcome.fault != applied.fault {
            let event = if outcome.fault {
                Event::Fault
            } else {
                Event::FaultCleared
            };
            let actions = self.sync.handle(now, i, event);
            self.execute(now, actions, out);
        }
    }

    fn own(&mut self, now: Time, out: &mut Vec<Output>) {
        let lease = self.lease_len().saturating_sub(self.params.clock_lag);
        let yield_above = self
            .sync
            .members()
            .iter()
            .map(|m| m.effective_priority())
            .max()
            .unwrap_or(u8::MAX);
        out.push(Output::Own {
            until: now + lease,
            yield_above,
            resigning: self.handover_pending(),
        });
        self.lease_until = Some(now + lease);
        self.owned = true;
        self.own_at = None;
        self.owned_written = Some(now);
        self.released_written = false;
    }

    fn release(&mut self, out: &mut Vec<Output>) {
        self.own_at = None;
        self.owned = false;
        self.owned_written = None;
        if !std::mem::replace(&mut self.released_written, true) {
            out.push(Output::Release);
        }
    }

    /// The kernel's part of mastership: whether the VIP addresses go with it is the
    /// machine's rule (RFC 9568 §6.4.3), decided when they are installed and undone with
    /// them.
    fn install(&mut self, i: usize, present: bool, out: &mut Vec<Output>) {
        let accepts = self.sync.member(i).is_some_and(|x| x.accepts_vip_traffic());
        let Some(m) = self.members.get_mut(i) else {
            return;
        };
        match (m.installed, present) {
            (None, true) => {
                m.installed = Some(accepts);
                out.push(Output::Install {
                    member: i,
                    present,
                    addresses: accepts,
                });
            }
            // A reload turned Accept_Mode (or the owner's priority) on or off.
            (Some(addresses), true) if addresses != accepts => {
                m.installed = Some(accepts);
                out.push(Output::Install {
                    member: i,
                    present,
                    addresses: accepts,
                });
            }
            (Some(addresses), false) => {
                m.installed = None;
                out.push(Output::Install {
                    member: i,
                    present,
                    addresses,
                });
            }
            _ => {}
        }
    }

    fn any_master(&self) -> bool {
        self.sync
            .members()
            .iter()
            .any(|m| m.state() == State::Master)
    }

    /// Turns the machines' actions into outputs.
    fn execute(&mut self, now: Time, actions: Vec<MemberAction>, out: &mut Vec<Output>) {
        for MemberAction { member: i, action } in actions {
            match action {
                Action::BecomeMaster { reason } => {
                    let alive_elsewhere = matches!(
                        reason,
                        Reason::MasterResigned { .. }
                            | Reason::PreemptedLowerPriority { .. }
                            | Reason::Carp {
                                why: carp::TakeOver::Preempt
                                    | carp::TakeOver::Demoted
                                    | carp::TakeOver::BowOut,
                                ..
                            }
                    );
                    self.transitioned(i, State::Master, reason, out);
                    if let Handover::Waiting { live: true, .. } = self.handover {
                        // Nobody took over from the operator's handover: carry on as
                        // master, the slot no longer flagged resigning.
                        self.handover = Handover::None;
                        if self.owned {
                            self.own(now, out);
                        }
                    }
                    if self.handover != Handover::None {
                        // Shutting down: nothing may start answering now.
                    } else if self.owned || self.own_at.is_some() {
                        // A sync-group sibling already took (or is taking) the slot.
                    } else if alive_elsewhere && !self.params.takeover_guard.is_zero() {
                        self.own_at = Some(now + self.params.takeover_guard);
                    } else {
                        self.own(now, out);
                    }
                    if self.owned && self.own_at.is_none() {
                        self.install(i, true, out);
                    }
                }
                // The state each action entered, not the machine's state now: a sync group
                // may already have moved the member on (one joining as backup that follows
                // a master sibling at once).
                Action::BecomeBackup { reason } => self.left_master(i, State::Backup, reason, out),
                Action::BecomeFault { reason } => self.left_master(i, State::Fault, reason, out),
                Action::BecomeInitialize { reason } => {
                    self.left_master(i, State::Initialize, reason, out)
                }
                Action::SendAdvert { priority } => {
                    // A backup advertising with a real priority is a master that just
                    // yielded to another (machine docs, item 6). That advert only matters
                    // to clients' caches; in VMAC mode it would pull the VMAC to this
                    // port on learning bridges, so it is left out.
                    let yielded = priority > 0 && self.state(i) == State::Backup;
                    let vmac = self.members.get(i).is_some_and(|m| m.cfg.vmac);
                    let rank = match self.sync.member(i) {
                        _ if priority == 0 => carp::Rank::BOW_OUT,
                        Some(x) => x.rank(),
                        None => carp::Rank::BOW_OUT,
                    };
                    if let Some(speaker) = self.members.get_mut(i).and_then(|m| m.speaker.as_mut())
                    {
                        // CARP: the machine sends no "yielded" advert for it.
                        out.push(Output::CarpAdvert {
                            member: i,
                            advert: speaker.advertise(rank),
                            own_mac: false,
                        });
                    } else if !(yielded && vmac) {
                        out.push(Output::Advert {
                            member: i,
                            priority,
                        });
                    }
                    // Every advertisement as master renews the lease.
                    if priority > 0 && self.owned && self.owned_written != Some(now) {
                        self.own(now, out);
                    }
                }
                Action::SendGratuitous => {
                    let at = self.own_at.unwrap_or(now);
                    if let Some(m) = self.members.get_mut(i) {
                        m.announce.start(at, &m.cfg.announce);
                    }
                }
            }
        }
    }

    /// Member `i` entered `to`, a state that does not answer.
    fn left_master(&mut self, i: usize, to: State, reason: Reason, out: &mut Vec<Output>) {
        self.transitioned(i, to, reason, out);
        if let Some(m) = self.members.get_mut(i) {
            m.cancel_announcements();
        }
        // During a planned handover the slot and addresses stay until a new master is
        // heard (make before break); see `finish_handover`.
        if !self.handover_pending() {
            if !self.any_master() {
                self.release(out);
            }
            self.install(i, false, out);
        }
    }

    fn transitioned(&mut self, i: usize, to: State, reason: Reason, out: &mut Vec<Output>) {
        let priority = self.sync.member(i).map_or(0, |m| m.effective_priority());
        let Some(m) = self.members.get_mut(i) else {
            return;
        };
        m.counters.transitions += 1;
        let from = std::mem::replace(&mut m.state, to);
        out.push(Output::Transition {
            member: i,
            from,
            to,
            priority,
            reason,
        });
    }

    /// Announcement rounds that are due, while answering: all addresses, or those a
    /// reload added (their own burst, no refresh: the regular one covers them).
    fn announce_due(&mut self, now: Time, out: &mut Vec<Output>) {
        if !self.owned {
            return;
        }
        for (i, m) in self.members.iter_mut().enumerate() {
            if m.announce.take_due(now, &m.cfg.announce) {
                out.push(Output::Announce {
                    member: i,
                    vip: None,
                });
            }
            let burst = announce::Settings {
                refresh: None,
                ..m.cfg.announce
            };
            if m.fresh.take_due(now, &burst) {
                for vip in &m.fresh_vips {
                    out.push(Output::Announce {
                        member: i,
                        vip: Some(*vip),
                    });
                }
                if m.fresh.due_at().is_none() {
                    m.fresh_vips.clear();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
