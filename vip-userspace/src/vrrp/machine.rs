//! The VRRP state machine of one virtual router, with time as an input.
//!
//! Shaped like smoltcp's sockets: [`Machine::handle`] takes `now` and an [`Event`] and
//! returns the [`Action`]s the daemon must carry out, [`Machine::poll`] fires the timers
//! that are due, and [`Machine::poll_at`] says when the next one is, so the daemon sleeps
//! exactly until then. Nothing here sends, sleeps or reads a clock.
//!
//! # States
//! Initialize, Backup and Master follow RFC 9568 §6.4 (RFC 3768 §6.4 for VRRPv2). Fault is
//! a vipd extension modelled on keepalived's FAULT: while a tracked interface or object is
//! down ([`Event::Fault`]), the router takes no part in the election: a master resigns with
//! a priority-0 advertisement, a backup stops its timer, and nothing is sent until
//! [`Event::FaultCleared`], which rejoins exactly as Startup does.
//!
//! # Following RFC 9568 where it differs from RFC 5798
//! RFC 9568 obsoletes RFC 5798; where the two differ this module follows RFC 9568:
//! 1. Terminology: RFC 9568's Active router is called Master here (and `Active_*` timers
//!    `Master_*`), the words operators and keepalived still use; behaviour is unchanged.
//! 2. §6.4.3: a master that receives a lower-priority advertisement (or an equal-priority
//!    one from a lower primary address) discards it **and sends an advertisement at once**
//!    so the sender and learning bridges see the rightful master (change 5 of §1.1).
//!    RFC 5798 only discarded it. vipd does the same for VRRPv2, and also announces its
//!    addresses again ([`Action::SendGratuitous`]): the other master's gratuitous ARPs may
//!    have moved clients' neighbour caches to it, and only the survivor can move them back.
//! 3. §6.4.2 and §6.4.3: whenever Active_Adver_Interval is learned from an advertisement,
//!    **Skew_Time is recomputed** along with Active_Down_Interval (the state-machine errata
//!    folded into RFC 9568, change 3). RFC 5798's Backup text recomputed only the down
//!    interval, leaving a skew from the old interval.
//! 4. §7.1 with erratum 8298: an address owner (priority 255) does not drop received
//!    advertisements; it processes them like any master, so two misconfigured owners
//!    settle by primary address instead of both staying master.
//! 5. §5.2.8 (IPv4 checksum without pseudo-header), errata 8299 / 8301 (zero address
//!    count or interval discarded) and erratum 8300 live in [`super::packet`]; see its docs
//!    for the one deliberate deviation (transmit keeps the RFC 5798 IPv4 checksum form).
//! 6. §6.4.3, a master yielding to a higher-priority (or equal-priority, higher-address)
//!    advertisement transitions to Backup and, unlike the RFC, sends one last advertisement
//!    with its own priority. When two masters meet, the one that hears the other first
//!    yields at once and falls silent, so without this the winner might never see a
//!    lower-priority advertisement, and never re-announce its addresses (item 2) to clients
//!    the loser's gratuitous ARPs had moved. On the wire it is the advertisement the loser
//!    would have sent a moment later had the winner's arrived later; in VMAC mode, where
//!    clients never move, the daemon leaves it out.
//! 7. §7.1 recommends logging a Max Advertise Interval that differs from ours; the machine
//!    accepts it (a v3 backup learns it, as §6.4.2 requires) and the caller logs.
//!
//! # Timers
//! Timer values are [`Duration`]s, exact to the nanosecond: at a 10 ms interval and
//! priority 100, Skew_Time is 6.09375 ms and Master_Down_Interval 36.09375 ms (see
//! [`super::timing`]). VRRPv2 (RFC 3768) never learns the master's interval: its
//! Skew_Time is `(256 − priority) / 256` s and its Master_Down_Interval uses its own
//! whole-second Advertisement_Interval. Deadlines are set from `now` when they are armed,
//! so a daemon that wakes late sends one advertisement, not a burst.
//!
//! # Choices the RFC leaves open
//! - Preempt delay: for `preempt_delay` after Startup (or after a fault clears) a
//!   preempting backup behaves as if Preempt_Mode were false, accepting a lower-priority
//!   master, so a router that just booted lets its routes converge before taking over.
//!   The delay ends by the passing of time, not by an event: `now` is compared with its
//!   end on every advertisement. An address owner (priority 255) always preempts
//!   (RFC 9568 §6.1) and is never delayed.
//! - Tracking ([`Event::PriorityChanged`]) changes the effective priority. Priority 0 is
//!   reserved for resigning and 255 for the owner, so a new priority is kept within
//!   1..=254, or 1..=255 when the configured priority is 255. A master advertises the new
//!   priority at once; a backup uses it from the next advertisement it receives.
//! - An advertisement from our own primary address (a multicast loop-back) is ignored:
//!   answering it would make a master re-assert against itself forever.
//! - A reload changes a running machine in place ([`Machine::reconfigure`]): same VRID,
//!   version and family, any other setting. A master whose interval changed advertises
//!   at once, so its backups learn the new interval before their down timers could run
//!   out on the old one.
//! - An operator's handover ([`Event::Resign`]): a master resigns (priority 0) and
//!   becomes backup, and from then on *yields*: it does not preempt, as if Preempt_Mode
//!   were false, until the operator says otherwise ([`Machine::set_yielding`]). Without
//!   that a preempting master would take the VIPs back one Master_Down_Interval later.
//! - Order of actions: the `Become*` action comes first, so the data plane owns (or
//!   releases) the virtual addresses before they are announced.
//!
//! # CARP
//! A CARP virtual host ([`Config::carp`]) runs through the same machine: the same three
//! states (and Fault), the same timers, the same actions; only "who is better", the
//! timer lengths and what a resignation is differ, and those come from
//! [`super::carp::election`]:
//! - The priority is the skew, `advskew = 255 − priority`; the advert interval is the
//!   advbase (whole seconds). As master it advertises every advbase + advskew/256
//!   ([`Machine::advert_period`]); as backup it waits [`super::carp::master_down`] of its
//!   *own* rank, never one learned from the master ([`Event::CarpAdvert`]).
//! - A verified advertisement ([`Event::CarpAdvert`]; the HMAC and counter are checked
//!   before, in `super::carp::speaker`) is judged by [`super::carp::as_master`] or
//!   [`super::carp::as_backup`]: a backup takes over at once when it preempts, the
//!   master is demoted, bows out, or advertises too rarely ([`Reason::Carp`]).
//! - A resignation ([`Action::SendAdvert`] with priority 0) is CARP's bow-out (advbase
//!   and advskew 255), on which backups take over at once: Skew_Time is zero.
//! - There is no address owner: priority 255 (advskew 0) is only the most preferred.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use thiserror::Error;

use super::carp::{self, AsBackup, AsMaster, Rank, TakeOver};
use super::packet::{Advert, Family, Version};
use super::timing::{Interval, Time, master_down_interval, skew_time};

/// Priority of the router that owns the virtual addresses.
pub const OWNER_PRIORITY: u8 = 255;
/// Priority a master sends when it resigns.
pub const RESIGN_PRIORITY: u8 = 0;

/// The configuration of one virtual router, as the machine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub vrid: u8,
    pub version: Version,
    /// Configured priority, 1..=255 (255 = address owner).
    pub priority: u8,
    /// Advertisement_Interval: how often this router advertises as master.
    pub advert_interval: Interval,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// Accept_Mode: a non-owner master accepts packets addressed to the virtual addresses.
    pub accept_mode: bool,
    /// The interface's primary address (IPv4) or link-local address (IPv6): the source of
    /// our advertisements and our side of the equal-priority tie-break. Its family is the
    /// virtual router's family.
    pub primary_address: IpAddr,
    /// A CARP virtual host: `advert_interval` is its advbase (whole seconds), `priority`
    /// its skew (see the module docs).
    pub carp: Option<CarpTiming>,
}

/// What a CARP virtual host's timers need beyond advbase and advskew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarpTiming {
    /// Master down after `dead_ratio` × advbase + advskew/256.
    pub dead_ratio: u8,
    /// The demotion count advertised and compared (lower wins).
    pub demote: u8,
}

impl Config {
    /// RFC defaults: 1 s interval, preempt on, no preempt delay, accept mode off.
    pub fn new(vrid: u8, version: Version, priority: u8, primary_address: IpAddr) -> Config {
        Config {
            vrid,
            version,
            priority,
            advert_interval: Interval::DEFAULT,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept_mode: false,
            primary_address,
            carp: None,
        }
    }

    pub fn family(&self) -> Family {
        Family::of(&self.primary_address)
    }

    /// Checks what the machine and the wire need; the daemon's config layer reports these
    /// with file and line.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::ZeroVrid);
        }
        if self.priority == RESIGN_PRIORITY {
            return Err(ConfigError::ZeroPriority);
        }
        if self.carp.is_some() {
            return match self.advert_interval.whole_secs() {
                Some(1..=255) => Ok(()),
                _ => Err(ConfigError::CarpAdvbase {
                    interval: self.advert_interval,
                }),
            };
        }
        match self.version {
            Version::V3 => {
                if self.advert_interval.centis() > Interval::V3_MAX_CENTIS {
                    return Err(ConfigError::IntervalTooLong {
                        interval: self.advert_interval,
                    });
                }
            }
            Version::V2 => {
                if self.family() != Family::Ipv4 {
                    return Err(ConfigError::V2NotIpv4);
                }
                if self.advert_interval.whole_secs().is_none() {
                    return Err(ConfigError::V2IntervalNotWholeSeconds {
                        interval: self.advert_interval,
                    });
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("VRID 0 is not allowed (1..=255)")]
    ZeroVrid,
    #[error("priority 0 is reserved for a resigning master (1..=255)")]
    ZeroPriority,
    #[error("VRRPv3 intervals stop at 40.95 s, got {interval}")]
    IntervalTooLong { interval: Interval },
    #[error("VRRPv2 carries whole seconds (1..=255 s), got {interval}")]
    V2IntervalNotWholeSeconds { interval: Interval },
    #[error("VRRPv2 is IPv4 only")]
    V2NotIpv4,
    #[error("VRID, version and family are the virtual router's identity: a running one keeps them")]
    IdentityChanged,
    #[error("a CARP advbase is whole seconds (1..=255 s), got {interval}")]
    CarpAdvbase { interval: Interval },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Initialize,
    Backup,
    Master,
    /// vipd extension: a tracked interface or object is down.
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "initialize",
            State::Backup => "backup",
            State::Master => "master",
            State::Fault => "fault",
        })
    }
}

/// What happened to the virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Startup,
    /// Startup after a restart that found this router's pinned lease still live: it was
    /// master a moment ago and clients are being answered, so it continues as master at
    /// once instead of rejoining as backup (no gap, no flap). Only valid in Initialize.
    Resume,
    Shutdown,
    /// A CARP advertisement for this virtual host whose HMAC and counter were verified
    /// (`super::carp::Speaker::admit`), from `src` with `rank`.
    CarpAdvert {
        src: IpAddr,
        rank: Rank,
    },
    /// A valid advertisement for this VRID (decoded and checked by [`super::packet`]).
    AdvertReceived {
        src: IpAddr,
        priority: u8,
        max_adver_int: Interval,
    },
    /// The data plane stopped answering for this router's addresses on its own, because
    /// it admitted an advertisement from a better master (the XDP program applies the
    /// same admission rules as the daemon, see `super::admission`). As master, the router
    /// becomes backup and follows the sender exactly as if the advertisement had been
    /// received, but unconditionally: the daemon must never claim master while the data
    /// plane is not answering. As backup it is an advertisement like any other.
    Released {
        src: IpAddr,
        priority: u8,
        max_adver_int: Interval,
    },
    /// A failure detector (BFD) says the master at `src` is gone: as its backup, take over
    /// after `within` (a skew scaled to the detector, so the highest-priority backup acts
    /// first) instead of the rest of Master_Down_Interval.
    PeerDown {
        src: IpAddr,
        within: Duration,
    },
    /// Tracking changed the effective priority.
    PriorityChanged(u8),
    /// CARP: the operator's demotion changed. carp(4) carries demotion in its own byte,
    /// which peers compare before the skew (a higher count loses), so a CARP virtual host
    /// advertises it there instead of taking it off its priority; a master says so at
    /// once. Ignored by VRRP, whose demotion lowers the priority.
    CarpDemotion(u8),
    /// A tracked interface or object went down.
    Fault,
    FaultCleared,
    /// Sync group: member `member` became master; follow it.
    SyncMaster {
        member: usize,
    },
    /// Sync group: member `member` left master; leave too.
    SyncBackup {
        member: usize,
    },
    /// Sync group: member `member` faulted; stand down with it.
    SyncFault {
        member: usize,
    },
    /// Sync group: no member is faulted any more.
    SyncFaultCleared,
    /// The operator hands over (`vipd handover`): a master resigns and becomes backup.
    Resign,
}

impl Event {
    /// The event for `advert` received from `src`.
    pub fn advert(src: IpAddr, advert: &Advert) -> Event {
        Event::AdvertReceived {
            src,
            priority: advert.priority,
            max_adver_int: advert.max_adver_int,
        }
    }
}

/// Why a transition happened, for `vipd status` and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Startup,
    OwnerStartup,
    Resumed,
    MasterDownTimerExpired,
    MasterResigned {
        from: IpAddr,
    },
    PreemptedLowerPriority {
        from: IpAddr,
        priority: u8,
    },
    HigherPriority {
        from: IpAddr,
        priority: u8,
    },
    EqualPriorityHigherAddress {
        from: IpAddr,
        priority: u8,
    },
    ReleasedByDataPlane {
        from: IpAddr,
        priority: u8,
    },
    BfdDown {
        from: IpAddr,
    },
    /// CARP: a backup took over at once on `from`'s advertisement.
    Carp {
        from: IpAddr,
        why: TakeOver,
    },
    Shutdown,
    Fault,
    FaultCleared,
    SyncMaster {
        member: usize,
    },
    SyncBackup {
        member: usize,
    },
    SyncFault {
        member: usize,
    },
    SyncFaultCleared,
    HandedOver,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => write!(f, "startup"),
            Reason::OwnerStartup => write!(f, "startup as address owner (priority 255)"),
            Reason::Resumed => write!(f, "restart within the live lease: resumed as master"),
            Reason::MasterDownTimerExpired => write!(f, "master down timer expired"),
            Reason::MasterResigned { from } => {
                write!(f, "priority 0 from master {from}, waited Skew_Time")
            }
            Reason::PreemptedLowerPriority { from, priority } => {
                write!(
                    f,
                    "preempted lower-priority master {from} (priority {priority})"
                )
            }
            Reason::HigherPriority { from, priority } => {
                write!(
                    f,
                    "higher priority advert from {from} (priority {priority})"
                )
            }
            Reason::EqualPriorityHigherAddress { from, priority } => write!(
                f,
                "equal priority advert from higher address {from} (priority {priority})"
            ),
            Reason::ReleasedByDataPlane { from, priority } => {
                write!(f, "the data plane yielded to {from} (priority {priority})")
            }
            Reason::BfdDown { from } => write!(f, "BFD session to master {from} down"),
            Reason::Carp { from, why } => match why {
                TakeOver::Preempt => write!(f, "preempted less preferred CARP master {from}"),
                TakeOver::Demoted => write!(f, "CARP master {from} is demoted"),
                TakeOver::BowOut => write!(f, "CARP master {from} bowed out"),
                TakeOver::TooSlow => write!(
                    f,
                    "CARP master {from} advertises less often than our master-down time"
                ),
            },
            Reason::Shutdown => write!(f, "shutdown"),
            Reason::Fault => write!(f, "fault: tracked interface or object down"),
            Reason::FaultCleared => write!(f, "fault cleared"),
            Reason::SyncMaster { member } => {
                write!(f, "sync group: member {member} became master")
            }
            Reason::SyncBackup { member } => write!(f, "sync group: member {member} left master"),
            Reason::SyncFault { member } => write!(f, "sync group: member {member} faulted"),
            Reason::SyncFaultCleared => write!(f, "sync group: fault cleared"),
            Reason::HandedOver => write!(f, "handed over by the operator (vipd handover)"),
        }
    }
}

/// What the daemon must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority (0 = resign), our configured interval and
    /// addresses, from the primary address to the VRRP group.
    SendAdvert {
        priority: u8,
    },
    /// Announce the virtual addresses: gratuitous ARP (IPv4) / unsolicited NA (IPv6).
    SendGratuitous,
    BecomeMaster {
        reason: Reason,
    },
    BecomeBackup {
        reason: Reason,
    },
    BecomeFault {
        reason: Reason,
    },
    BecomeInitialize {
        reason: Reason,
    },
}

/// The actions of one call: at most three, so a plain `Vec` is cheap enough.
pub type Actions = Vec<Action>;

/// What the Master_Down_Timer's expiry will mean, for the transition's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DownCause {
    Silence,
    Resigned { from: IpAddr },
    Preempting { from: IpAddr, priority: u8 },
    PeerDown { from: IpAddr },
}

/// One virtual router's state machine.
#[derive(Debug, Clone)]
pub struct Machine {
    config: Config,
    state: State,
    priority: u8,
    master_adver_interval: Interval,
    master: Option<IpAddr>,
    adver_timer: Option<Time>,
    down_timer: Option<Time>,
    down_cause: DownCause,
    preempt_hold_until: Option<Time>,
    own_fault: bool,
    /// The sync-group member whose fault holds us down, if any.
    sync_fault: Option<usize>,
    /// Sync-group member: an expired down timer only marks `wants_master`; the group
    /// decides (see [`super::sync`]).
    gated: bool,
    wants_master: bool,
    /// A failure detector (BFD) reports the master alive: Master_Down_Interval running
    /// out on silence does not make this backup master (see `Event::PeerDown`).
    hold: bool,
    /// Handed over by the operator: do not preempt (see the module docs).
    yielding: bool,
    /// CARP: the operator's demotion (`vipd demote`), added to the configured demotion
    /// count in what this router advertises and is compared by (see [`Event::CarpDemotion`]).
    carp_demotion: u8,
    last_transition: Option<(Time, Reason)>,
}

impl Machine {
    pub fn new(config: Config) -> Result<Machine, ConfigError> {
        config.validate()?;
        Ok(Machine {
            priority: config.priority,
            master_adver_interval: config.advert_interval,
            config,
            state: State::Initialize,
            master: None,
            adver_timer: None,
            down_timer: None,
            down_cause: DownCause::Silence,
            preempt_hold_until: None,
            own_fault: false,
            sync_fault: None,
            gated: false,
            wants_master: false,
            hold: false,
            yielding: false,
            carp_demotion: 0,
            last_transition: None,
        })
    }

    /// Takes on a changed configuration without leaving the current state (a reload; see
    /// the module docs). The VRID, version and family are the machine's identity: a
    /// configuration with others is refused (a reload removes and adds such a router).
    /// The configured priority is taken on here; the effective one comes with
    /// [`Event::PriorityChanged`], which the caller sends after tracking looked at it.
    pub fn reconfigure(&mut self, now: Time, config: Config) -> Result<Actions, ConfigError> {
        config.validate()?;
        if config.vrid != self.config.vrid
            || config.version != self.config.version
            || config.family() != self.config.family()
        {
            return Err(ConfigError::IdentityChanged);
        }
        let old = std::mem::replace(&mut self.config, config);
        let mut actions = Actions::new();
        if self.state == State::Master {
            self.master = Some(self.config.primary_address);
        }
        if old.advert_interval != self.config.advert_interval {
            // VRRPv2 never learns the master's interval: ours is the one it uses; a v3
            // master's own is its new one.
            if self.config.version == Version::V2 || self.state == State::Master {
                self.master_adver_interval = self.config.advert_interval;
            }
            if self.state == State::Master {
                actions.push(Action::SendAdvert {
                    priority: self.priority,
                });
                self.adver_timer = Some(now + self.config.advert_interval.as_duration());
            }
        }
        Ok(actions)
    }

    /// Whether the operator's handover holds this router back from preempting.
    pub fn yielding(&self) -> bool {
        self.yielding
    }

    /// Holds this router back from preempting (or lets it preempt again: `vipd promote`).
    pub fn set_yielding(&mut self, yielding: bool) {
        self.yielding = yielding;
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The priority in use: the configured one as changed by tracking.
    pub fn effective_priority(&self) -> u8 {
        self.priority
    }

    /// The current master: ourselves as master, the last accepted sender as backup,
    /// `None` when unknown (before any advertisement, after a resignation).
    pub fn master_address(&self) -> Option<IpAddr> {
        self.master
    }

    /// Master_Adver_Interval (RFC 9568: Active_Adver_Interval): learned from the master in
    /// v3, our own Advertisement_Interval in v2.
    pub fn master_adver_interval(&self) -> Interval {
        self.master_adver_interval
    }

    pub fn skew_time(&self) -> Duration {
        if self.config.carp.is_some() {
            // A CARP bow-out is taken over at once.
            return Duration::ZERO;
        }
        skew_time(
            self.config.version,
            self.priority,
            self.master_adver_interval,
        )
    }

    pub fn master_down_interval(&self) -> Duration {
        if let Some(c) = self.config.carp {
            return carp::master_down(self.rank(), c.dead_ratio);
        }
        master_down_interval(
            self.config.version,
            self.priority,
            self.master_adver_interval,
        )
    }

    /// CARP: what this router advertises and is compared by (its skew from the effective
    /// priority). For VRRP a rank of the same shape, unused.
    pub fn rank(&self) -> Rank {
        Rank {
            demote: self
                .config
                .carp
                .map_or(0, |c| c.demote.saturating_add(self.carp_demotion)),
            advbase: self.config.advert_interval.whole_secs().unwrap_or(1),
            advskew: carp::advskew_for_priority(self.priority),
        }
    }

    /// How often a master advertises: Advertisement_Interval, or for CARP advbase +
    /// advskew/256.
    pub fn advert_period(&self) -> Duration {
        if self.config.carp.is_some() {
            self.rank().interval()
        } else {
            self.config.advert_interval.as_duration()
        }
    }

    fn is_owner(&self) -> bool {
        self.priority == OWNER_PRIORITY && self.config.carp.is_none()
    }

    /// When and why the machine last changed state.
    pub fn last_transition(&self) -> Option<&(Time, Reason)> {
        self.last_transition.as_ref()
    }

    /// Whether the node should accept packets addressed to the virtual addresses
    /// (RFC 9568 §6.4.3: a master that owns them or runs with Accept_Mode).
    pub fn accepts_vip_traffic(&self) -> bool {
        self.state == State::Master
            && ((self.config.priority == OWNER_PRIORITY && self.config.carp.is_none())
                || self.config.accept_mode)
    }

    /// A tracked object of this router is down.
    pub fn has_own_fault(&self) -> bool {
        self.own_fault
    }

    /// A sync-group partner imposed a fault.
    pub fn has_sync_fault(&self) -> bool {
        self.sync_fault.is_some()
    }

    /// Sync-group member whose down timer expired: it would be master, the group decides.
    pub fn wants_master(&self) -> bool {
        self.wants_master
    }

    pub(crate) fn set_gated(&mut self, gated: bool) {
        self.gated = gated;
    }

    /// Whether a failure detector currently vouches for the master (see `hold`).
    pub fn set_hold(&mut self, hold: bool) {
        self.hold = hold;
    }

    /// The next deadline, if any: call [`Machine::poll`] then.
    pub fn poll_at(&self) -> Option<Time> {
        match self.state {
            State::Master => self.adver_timer,
            State::Backup => self.down_timer,
            State::Initialize | State::Fault => None,
        }
    }

    /// Fires the timers due at `now`.
    pub fn poll(&mut self, now: Time) -> Actions {
        let mut actions = Actions::new();
        match self.state {
            State::Master => {
                if self.adver_timer.is_some_and(|t| t <= now) {
                    actions.push(Action::SendAdvert {
                        priority: self.priority,
                    });
                    self.adver_timer = Some(now + self.advert_period());
                }
            }
            State::Backup => {
                if self.down_timer.is_some_and(|t| t <= now) {
                    self.down_timer = None;
                    if self.hold && self.down_cause == DownCause::Silence {
                        // A failure detector still sees the master alive: silence alone
                        // is not enough (a master whose adverts pause, a frozen daemon
                        // whose data plane still forwards).
                        self.down_timer = Some(now + self.master_down_interval());
                    } else if self.gated {
                        self.wants_master = true;
                    } else {
                        let reason = match self.down_cause {
                            DownCause::Silence => Reason::MasterDownTimerExpired,
                            DownCause::Resigned { from } => Reason::MasterResigned { from },
                            DownCause::Preempting { from, priority } => {
                                Reason::PreemptedLowerPriority { from, priority }
                            }
                            DownCause::PeerDown { from } => Reason::BfdDown { from },
                        };
                        self.become_master(now, reason, &mut actions);
                    }
                }
            }
            State::Initialize | State::Fault => {}
        }
        actions
    }

    pub fn handle(&mut self, now: Time, event: Event) -> Actions {
        let mut actions = Actions::new();
        match event {
            Event::Startup => {
                if self.state == State::Initialize {
                    self.join(now, Reason::Startup, &mut actions);
                }
            }
            Event::Resume => {
                if self.state == State::Initialize {
                    if self.own_fault {
                        self.join(now, Reason::Startup, &mut actions);
                    } else {
                        self.become_master(now, Reason::Resumed, &mut actions);
                    }
                }
            }
            Event::Shutdown => self.shutdown(now, &mut actions),
            Event::CarpAdvert { src, rank } => self.carp_advert(now, src, rank, &mut actions),
            Event::AdvertReceived {
                src,
                priority,
                max_adver_int,
            } => self.advert_received(now, src, priority, max_adver_int, &mut actions),
            Event::Released {
                src,
                priority,
                max_adver_int,
            } => match self.state {
                State::Master => {
                    let reason = Reason::ReleasedByDataPlane {
                        from: src,
                        priority,
                    };
                    self.transition(now, State::Backup, reason, &mut actions);
                    self.learn_master(now, src, max_adver_int);
                }
                _ => self.advert_received(now, src, priority, max_adver_int, &mut actions),
            },
            Event::PeerDown { src, within } => {
                if self.state == State::Backup && self.master == Some(src) && !self.wants_master {
                    let at = now + within;
                    if self.down_timer.is_none_or(|t| at < t) {
                        self.down_timer = Some(at);
                    }
                    self.down_cause = DownCause::PeerDown { from: src };
                }
            }
            Event::PriorityChanged(priority) => self.priority_changed(priority, &mut actions),
            Event::CarpDemotion(by) => {
                if self.config.carp.is_some() && self.carp_demotion != by {
                    self.carp_demotion = by;
                    if self.state == State::Master {
                        actions.push(Action::SendAdvert {
                            priority: self.priority,
                        });
                    }
                }
            }
            Event::Fault => {
                self.own_fault = true;
                self.enter_fault(now, Reason::Fault, &mut actions);
            }
            Event::FaultCleared => {
                self.own_fault = false;
                self.leave_fault(now, Reason::FaultCleared, &mut actions);
            }
            Event::SyncFault { member } => {
                self.sync_fault = Some(member);
                self.enter_fault(now, Reason::SyncFault { member }, &mut actions);
            }
            Event::SyncFaultCleared => {
                self.sync_fault = None;
                self.leave_fault(now, Reason::SyncFaultCleared, &mut actions);
            }
            Event::SyncMaster { member } => {
                if self.state == State::Backup {
                    self.become_master(now, Reason::SyncMaster { member }, &mut actions);
                }
            }
            Event::Resign => {
                if self.state == State::Master {
                    self.yielding = true;
                    self.become_backup(now, Reason::HandedOver, &mut actions);
                    actions.push(Action::SendAdvert {
                        priority: RESIGN_PRIORITY,
                    });
                }
            }
            Event::SyncBackup { member } => {
                if self.state == State::Master {
                    // Resign so peers take over after Skew_Time rather than a full
                    // Master_Down_Interval: the whole group is leaving this node.
                    self.become_backup(now, Reason::SyncBackup { member }, &mut actions);
                    actions.push(Action::SendAdvert {
                        priority: RESIGN_PRIORITY,
                    });
                }
            }
        }
        actions
    }

    /// Startup, or rejoining after a fault (RFC 9568 §6.4.1).
    fn join(&mut self, now: Time, reason: Reason, actions: &mut Actions) {
        if self.own_fault {
            self.transition(now, State::Fault, Reason::Fault, actions);
            return;
        }
        if let Some(member) = self.sync_fault {
            self.transition(now, State::Fault, Reason::SyncFault { member }, actions);
            return;
        }
        self.preempt_hold_until =
            (!self.config.preempt_delay.is_zero()).then(|| now + self.config.preempt_delay);
        if self.is_owner() {
            let reason = match reason {
                Reason::Startup => Reason::OwnerStartup,
                other => other,
            };
            self.become_master(now, reason, actions);
        } else {
            self.master_adver_interval = self.config.advert_interval;
            self.master = None;
            self.become_backup(now, reason, actions);
        }
    }

    fn shutdown(&mut self, now: Time, actions: &mut Actions) {
        let was_master = self.state == State::Master;
        if self.state == State::Initialize {
            return;
        }
        self.transition(now, State::Initialize, Reason::Shutdown, actions);
        if was_master {
            actions.push(Action::SendAdvert {
                priority: RESIGN_PRIORITY,
            });
        }
    }

    fn enter_fault(&mut self, now: Time, reason: Reason, actions: &mut Actions) {
        match self.state {
            State::Master => {
                self.transition(now, State::Fault, reason, actions);
                actions.push(Action::SendAdvert {
                    priority: RESIGN_PRIORITY,
                });
            }
            State::Backup => self.transition(now, State::Fault, reason, actions),
            // Initialize remembers the fault for Startup; Fault already is.
            State::Initialize | State::Fault => {}
        }
    }

    fn leave_fault(&mut self, now: Time, reason: Reason, actions: &mut Actions) {
        if self.state == State::Fault && !self.own_fault && self.sync_fault.is_none() {
            self.join(now, reason, actions);
        }
    }

    fn priority_changed(&mut self, requested: u8, actions: &mut Actions) {
        let ceiling = if self.config.priority == OWNER_PRIORITY {
            OWNER_PRIORITY
        } else {
            OWNER_PRIORITY - 1
        };
        let priority = requested.clamp(1, ceiling);
        if priority == self.priority {
            return;
        }
        self.priority = priority;
        if self.state == State::Master {
            actions.push(Action::SendAdvert { priority });
        }
    }

    fn advert_received(
        &mut self,
        now: Time,
        src: IpAddr,
        priority: u8,
        max_adver_int: Interval,
        actions: &mut Actions,
    ) {
        if src == self.config.primary_address || Family::of(&src) != self.config.family() {
            return;
        }
        match self.state {
            State::Backup => self.backup_advert(now, src, priority, max_adver_int),
            State::Master => self.master_advert(now, src, priority, max_adver_int, actions),
            State::Initialize | State::Fault => {}
        }
    }

    /// RFC 9568 §6.4.2, "If an ADVERTISEMENT is received".
    fn backup_advert(&mut self, now: Time, src: IpAddr, priority: u8, interval: Interval) {
        if priority == RESIGN_PRIORITY {
            self.master = None;
            if !self.wants_master {
                self.down_timer = Some(now + self.skew_time());
                self.down_cause = DownCause::Resigned { from: src };
            }
            return;
        }
        if !self.preempts(now) || priority >= self.priority {
            self.learn_master(now, src, interval);
        } else {
            // Discarded: the down timer runs out and we take over.
            self.master = Some(src);
            self.down_cause = DownCause::Preempting {
                from: src,
                priority,
            };
        }
    }

    /// RFC 9568 §6.4.3, "If an ADVERTISEMENT is received".
    fn master_advert(
        &mut self,
        now: Time,
        src: IpAddr,
        priority: u8,
        interval: Interval,
        actions: &mut Actions,
    ) {
        let ours = self.priority;
        if priority == RESIGN_PRIORITY {
            actions.push(Action::SendAdvert { priority: ours });
            self.adver_timer = Some(now + self.advert_period());
            return;
        }
        // IpAddr orders same-family addresses as unsigned integers in network byte order,
        // which is the comparison §6.4.3 asks for.
        let reason = if priority > ours {
            Some(Reason::HigherPriority {
                from: src,
                priority,
            })
        } else if priority == ours && src > self.config.primary_address {
            Some(Reason::EqualPriorityHigherAddress {
                from: src,
                priority,
            })
        } else {
            None
        };
        match reason {
            Some(reason) => {
                self.transition(now, State::Backup, reason, actions);
                self.learn_master(now, src, interval);
                // Two masters met. The winner may not have heard us since the link healed
                // (its advert reached us first), and only a lower-priority advert tells it
                // to announce its addresses again: send the one we were about to send.
                actions.push(Action::SendAdvert { priority: ours });
            }
            None => {
                // Another router was master too (a healed split, a missed advert): its
                // announcements may have moved clients to it, and nothing else moves them
                // back. Advertise at once (RFC 9568) and announce the addresses again.
                actions.push(Action::SendAdvert { priority: ours });
                actions.push(Action::SendGratuitous);
            }
        }
    }

    /// A verified CARP advertisement (carp(4)'s `carp_input`, in
    /// [`super::carp::election`]'s terms).
    fn carp_advert(&mut self, now: Time, src: IpAddr, theirs: Rank, actions: &mut Actions) {
        let Some(timing) = self.config.carp else {
            return;
        };
        if src == self.config.primary_address || Family::of(&src) != self.config.family() {
            return;
        }
        let ours = self.rank();
        match self.state {
            State::Master => {
                match carp::as_master(ours, self.config.primary_address, theirs, src) {
                    AsMaster::StepDown => {
                        let reason = Reason::HigherPriority {
                            from: src,
                            priority: carp::priority_for_advskew(theirs.advskew),
                        };
                        self.transition(now, State::Backup, reason, actions);
                        self.master = Some(src);
                        self.down_cause = DownCause::Silence;
                        self.down_timer = Some(now + self.master_down_interval());
                    }
                    AsMaster::Stay { reassert: true } => {
                        // As for VRRP (item 2): the other master's announcements may have
                        // moved clients; advertise and announce again.
                        actions.push(Action::SendAdvert {
                            priority: self.priority,
                        });
                        actions.push(Action::SendGratuitous);
                        self.adver_timer = Some(now + self.advert_period());
                    }
                    AsMaster::Stay { reassert: false } => {}
                }
            }
            State::Backup => {
                let preempt = self.preempts(now);
                match carp::as_backup(ours, theirs, preempt, timing.dead_ratio) {
                    AsBackup::TakeOver(why) if !self.gated => {
                        self.become_master(now, Reason::Carp { from: src, why }, actions);
                    }
                    AsBackup::TakeOver(_) => {
                        // A sync-group member: the group decides (see `super::sync`).
                        self.master = Some(src);
                        self.wants_master = true;
                        self.down_timer = None;
                    }
                    AsBackup::Wait { master_down } => {
                        self.master = Some(src);
                        self.wants_master = false;
                        self.down_cause = DownCause::Silence;
                        self.down_timer = Some(now + master_down);
                    }
                }
            }
            State::Initialize | State::Fault => {}
        }
    }

    /// Accept `src` as master: v3 learns its interval (recomputing Skew_Time and
    /// Master_Down_Interval, which derive from it), and the down timer restarts.
    fn learn_master(&mut self, now: Time, src: IpAddr, interval: Interval) {
        if self.config.version == Version::V3 {
            self.master_adver_interval = interval;
        }
        self.master = Some(src);
        self.wants_master = false;
        self.down_cause = DownCause::Silence;
        self.down_timer = Some(now + self.master_down_interval());
    }

    fn preempts(&self, now: Time) -> bool {
        if self.yielding {
            return false;
        }
        if self.is_owner() {
            return true;
        }
        let held = self.preempt_hold_until.is_some_and(|until| now < until);
        self.config.preempt && !held
    }

    fn become_master(&mut self, now: Time, reason: Reason, actions: &mut Actions) {
        self.transition(now, State::Master, reason, actions);
        actions.push(Action::SendAdvert {
            priority: self.priority,
        });
        actions.push(Action::SendGratuitous);
        self.adver_timer = Some(now + self.advert_period());
        self.master = Some(self.config.primary_address);
    }

    fn become_backup(&mut self, now: Time, reason: Reason, actions: &mut Actions) {
        self.transition(now, State::Backup, reason, actions);
        self.master = None;
        self.down_cause = DownCause::Silence;
        self.down_timer = Some(now + self.master_down_interval());
    }

    /// Records the state change, clears the timers of the state left, and emits the
    /// `Become*` action.
    fn transition(&mut self, now: Time, to: State, reason: Reason, actions: &mut Actions) {
        self.state = to;
        self.adver_timer = None;
        self.down_timer = None;
        self.wants_master = false;
        if matches!(to, State::Initialize | State::Fault) {
            self.master = None;
        }
        self.last_transition = Some((now, reason.clone()));
        actions.push(match to {
            State::Master => Action::BecomeMaster { reason },
            State::Backup => Action::BecomeBackup { reason },
            State::Fault => Action::BecomeFault { reason },
            State::Initialize => Action::BecomeInitialize { reason },
        });
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod simulation;
