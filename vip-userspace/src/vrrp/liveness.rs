//! This node's BFD sessions, who they are for, and who may open one. Pure, like
//! [`super::node`], which owns the one [`Liveness`] and tells its groups what the sessions
//! say.
//!
//! One session per neighbour and interface (RFC 5881 §3: a single-hop session is named by
//! the interface and the address pair), however many instances on that interface care
//! about the neighbour. An instance with `bfd` *subscribes*: to its configured peers, or,
//! without any, to the master it follows while backup. A session is opened for every
//! subscription, and also passively when a neighbour's Control packet arrives on an
//! interface where some instance runs BFD (a master answering its backups) — but only
//! from a neighbour this node has a reason to talk to (docs/architecture.md, "Who may
//! open a session"):
//!
//! - one an instance on the interface names: `bfd.peers`, `unicast_peers`,
//!   `allowed_peers`;
//! - or one heard advertising there (an advertisement the core admitted, see
//!   [`Liveness::heard`]): remembered for [`HEARD_FOR`], at most [`HEARD_MAX`] per
//!   interface, the least recently heard forgotten first.
//!
//! A Control packet from anybody else is counted (`unknown_neighbour`) and dropped:
//! nothing is opened, nothing is sent to it, so the kernel does not even resolve its
//! address. Sessions for neighbours known only from their advertisements are capped at
//! [`LEARNED_SESSIONS_MAX`] per interface and opened at most [`NEW_SESSION_BURST`] at
//! once and one per [`NEW_SESSION_EVERY`] after that; each refusal is counted. A session
//! nobody subscribes to that is not Up for [`NOT_UP_LIMIT`] is closed, and the remote's
//! timers are held within bounds until Up (see [`super::bfd`]).
//!
//! Discriminators and echo nonces come from a ChaCha20 generator the daemon seeds from the
//! operating system's random source ([`Liveness::new`]): a neighbour learns its own
//! session's discriminator and nothing that predicts another's.
//!
//! A session some instance follows that changes state is reported with the hook each
//! following instance's `bfd.notify` runs ([`Output::Notify`]), and its times out of Up
//! are counted with it; one kept only for the neighbour's sake gets neither (counted
//! together, [`Counters::passive_downs`]). Which echo frames count is decided here too
//! ([`Liveness::echo`]): the daemon only parses them.
//!
//! Only sessions somebody here subscribes to send Echo packets: the backup needs to know
//! fast that its master is gone; the master needs nothing fast from its backups, and loops
//! their echoes back in XDP (`BFD_PEERS`). Every session closes (after saying AdminDown)
//! when no instance on its interface runs BFD any more. Deadlines are kept in a heap
//! ([`super::schedule`]): a wake-up touches the sessions that are due, not every session.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::IpAddr,
    time::Duration,
};

use chacha20::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng as _};

use super::instance::BfdSettings;
use super::{
    bfd::{
        self, Params, Session,
        packet::{BfdState, Control, Diag, ECHO_PORT, Echo},
    },
    notify::{Hook, bfd_hook},
    packet::Family,
    schedule::Schedule,
    timing::Time,
};

/// How long a session nobody here subscribes to may stay short of Up before it is closed:
/// longer than two handshakes at the RFC's slow rate take, so a neighbour that is coming
/// up is never cut off.
pub const NOT_UP_LIMIT: Duration = Duration::from_secs(20);
/// How long a neighbour heard advertising counts as one this node talks to.
pub const HEARD_FOR: Duration = Duration::from_secs(600);
/// Advertisement sources remembered per interface.
pub const HEARD_MAX: usize = 32;
/// Sessions per interface for neighbours known only from their advertisements (a named
/// neighbour or one an instance subscribes to does not count).
pub const LEARNED_SESSIONS_MAX: usize = 8;
/// New sessions for neighbours known only from their advertisements: this many at once
/// per interface ...
pub const NEW_SESSION_BURST: u32 = 4;
/// ... then one per this long.
pub const NEW_SESSION_EVERY: Duration = Duration::from_secs(1);

/// A neighbour on an interface: the name of a session.
pub type Neighbour = (u32, IpAddr);

/// An instance (group member) by group id and member index.
pub type Subscriber = (u64, usize);

/// What one instance (group member) wants: sessions on `ifindex` from `local` to `peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The instance's name: its hooks are queued under it and told it.
    pub instance: String,
    pub ifindex: u32,
    /// Our address on the interface: the source of Control packets, and of our echoes.
    pub local: IpAddr,
    pub settings: BfdSettings,
    pub peers: Vec<IpAddr>,
    /// Neighbours the instance's configuration names (`bfd.peers`, `unicast_peers`,
    /// `allowed_peers`): their Control packets may open a session here.
    pub named: Vec<IpAddr>,
}

/// What the daemon carries out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A session exists (`present`) or is gone: the data plane loops back the neighbour's
    /// echoes (and learns its MAC) exactly while it exists.
    Present {
        neighbour: Neighbour,
        present: bool,
        /// This node's discriminator for the session (0 when gone).
        local_disc: u32,
    },
    /// Send a Control packet from `local` to the neighbour.
    Control {
        neighbour: Neighbour,
        local: IpAddr,
        packet: Control,
    },
    /// Send an Echo packet from `local` to `local`, through the neighbour's MAC; report
    /// when it left with [`Liveness::echo_sent`].
    Echo {
        neighbour: Neighbour,
        local: IpAddr,
        echo: Echo,
    },
    /// The echo path of a session some instance follows became suspect (`suspect`) or an
    /// echo came back and cleared it; the session stays Up meanwhile (see
    /// `Session::confirm_window`).
    EchoPath { neighbour: Neighbour, suspect: bool },
    /// A session changed state; `subscribed`: some instance here follows it (a session
    /// kept for the neighbour's sake gets no log line, series or hook of its own).
    Changed {
        neighbour: Neighbour,
        from: BfdState,
        to: BfdState,
        diag: Diag,
        subscribed: bool,
    },
    /// Run `instance`'s `bfd.notify` program: a session it follows changed state (right
    /// after that [`Output::Changed`], one per following instance with a program, in
    /// instance order). An instance's hooks run one at a time, in order.
    Notify { instance: String, hook: Hook },
}

/// A UDP datagram an interface's echo socket took in, as the daemon parsed it out of the
/// frame: whether it is one of our echoes is [`Liveness::echo`]'s call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoIn<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub dst_port: u16,
    /// TTL / hop limit as received.
    pub ttl: u8,
    pub payload: &'a [u8],
}

impl EchoIn<'_> {
    /// In vipd's echo form: to the Echo port, from and to one address (ours), within one
    /// hop (the far end's XDP program loops it back untouched, TTL 255; a kernel that
    /// forwards it takes one off), the payload vipd's echo format.
    fn echo(&self) -> Option<Echo> {
        if self.dst_port != ECHO_PORT || self.src != self.dst || self.ttl < 254 {
            return None;
        }
        Echo::decode(self.payload)
    }
}

/// A session that went Up or left it, as far as the instances following it care: an echo
/// path that became suspect counts as leaving Up (the instances stop holding and start
/// checking), one cleared by a returning echo as going Up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub neighbour: Neighbour,
    pub up: bool,
    /// Why it left Up.
    pub diag: Diag,
    /// The worst echo round trip lately (see `Session::recent_echo_rtt`), at most half
    /// the echo detection time: a probe after a "down" waits twice this, and never longer
    /// than one more detection time. `None` when the path or this host stalled lately
    /// (`Session::stalled_lately`): no quick probe can settle a "down" then.
    pub slow_rtt: Option<Duration>,
}

/// What happened to packets before they reached a session, and to sessions refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub control_received: u64,
    pub echo_received: u64,
    /// Control packets with TTL / hop limit other than 255 (RFC 5881 §5).
    pub bad_ttl: u64,
    /// Control packets that name no session of this neighbour's (an unknown or another
    /// neighbour's discriminator), that name none and do not say Down, or that come where
    /// no instance runs BFD in their family.
    pub unmatched: u64,
    /// Control packets from a neighbour nobody here names and nobody heard advertising:
    /// dropped, nothing opened.
    pub unknown_neighbour: u64,
    /// Sessions not opened: the interface already has [`LEARNED_SESSIONS_MAX`] for
    /// neighbours known only from their advertisements.
    pub refused_cap: u64,
    /// Sessions not opened: more new ones than the rate allows ([`NEW_SESSION_EVERY`]).
    pub refused_rate: u64,
    /// Frames the echo sockets took in that are not in vipd's echo form (see
    /// [`EchoIn`]): their filter wakes them for any UDP to the Echo port.
    pub echo_foreign: u64,
    /// Echoes in vipd's format that are not one of ours: a discriminator of no session,
    /// the wrong nonce, or not from the session's own address on its interface.
    pub echo_not_ours: u64,
    /// Advertisement sources forgotten to make room for a new one ([`HEARD_MAX`]).
    pub heard_evicted: u64,
    /// Sessions nobody subscribes to closed for not coming Up within [`NOT_UP_LIMIT`].
    pub closed_not_up: u64,
    /// Echo paths that became suspect, and how many of those an echo coming back
    /// cleared (a slow path, not a failure).
    pub echo_suspect: u64,
    pub echo_restored: u64,
    /// Times sessions nobody here subscribes to left Up, by diagnostic (indexed like
    /// [`Diag::ALL`]); a subscribed session counts its own ([`Entry::downs`]).
    pub passive_downs: [u64; 9],
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub session: Session,
    pub local: IpAddr,
    /// Some instance here subscribes to this neighbour.
    pub subscribed: bool,
    /// Opened for a neighbour known only from its advertisements (it counts against the
    /// interface's [`LEARNED_SESSIONS_MAX`]).
    learned: bool,
    /// Its key in the schedule.
    id: u64,
    /// Since when the session has not been Up (opened, or left Up); `None` while Up.
    not_up_since: Option<Time>,
    /// Times it left Up while subscribed, by diagnostic (indexed like [`Diag::ALL`]).
    downs: [u64; 9],
}

impl Entry {
    /// Times the session left Up while some instance here followed it, by diagnostic
    /// (those that happened).
    pub fn downs(&self) -> impl Iterator<Item = (Diag, u64)> + '_ {
        Diag::ALL
            .into_iter()
            .zip(self.downs)
            .filter(|(_, n)| *n > 0)
    }

    /// When this entry needs the loop next: the session's timers, and the end of its
    /// time to come Up when nobody subscribes to it.
    fn deadline(&self) -> Option<Time> {
        let close = self
            .not_up_since
            .filter(|_| !self.subscribed)
            .map(|t| t + NOT_UP_LIMIT);
        [self.session.poll_at(), close].into_iter().flatten().min()
    }
}

/// Sessions in aggregate, for status and metrics of the ones nobody here subscribes to
/// (which get no line or series of their own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub passive: usize,
    pub passive_up: usize,
    /// Sessions for neighbours known only from their advertisements.
    pub learned: usize,
}

/// What an interface's instances say about BFD there, and who was heard on it.
#[derive(Debug, Clone)]
struct Interface {
    /// Our address and the settings, per family in which some instance runs BFD here
    /// (settings are the same for every instance on an interface; the configuration
    /// checks it).
    v4: Option<(IpAddr, BfdSettings)>,
    v6: Option<(IpAddr, BfdSettings)>,
    /// Neighbours some instance here names or subscribes to.
    named: HashSet<IpAddr>,
    /// Advertisement sources and when they were last heard.
    heard: HashMap<IpAddr, Time>,
    /// The new-session token bucket.
    tokens: u32,
    refilled: Time,
    /// Open sessions with `learned` set.
    learned: usize,
}

impl Interface {
    fn new(now: Time) -> Interface {
        Interface {
            v4: None,
            v6: None,
            named: HashSet::new(),
            heard: HashMap::new(),
            tokens: NEW_SESSION_BURST,
            refilled: now,
            learned: 0,
        }
    }

    fn speaks(&self, family: Family) -> Option<&(IpAddr, BfdSettings)> {
        match family {
            Family::Ipv4 => self.v4.as_ref(),
            Family::Ipv6 => self.v6.as_ref(),
        }
    }

    fn heard_recently(&self, now: Time, a: IpAddr) -> bool {
        self.heard
            .get(&a)
            .is_some_and(|t| now.saturating_duration_since(*t) < HEARD_FOR)
    }

    /// Takes a token for a new session, if the bucket has one.
    fn take_token(&mut self, now: Time) -> bool {
        let earned =
            now.saturating_duration_since(self.refilled).as_nanos() / NEW_SESSION_EVERY.as_nanos();
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            self.tokens = self.tokens.saturating_add(earned).min(NEW_SESSION_BURST);
            self.refilled = if self.tokens == NEW_SESSION_BURST {
                now
            } else {
                self.refilled + NEW_SESSION_EVERY * earned
            };
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

#[derive(Debug)]
pub struct Liveness {
    rng: ChaCha20Rng,
    sessions: BTreeMap<Neighbour, Entry>,
    by_disc: HashMap<u32, Neighbour>,
    by_id: HashMap<u64, Neighbour>,
    next_id: u64,
    schedule: Schedule,
    subs: BTreeMap<Subscriber, Subscription>,
    interfaces: HashMap<u32, Interface>,
    out: Vec<Output>,
    /// Sessions that went to or from Up since last taken.
    changes: Vec<Change>,
    pub counters: Counters,
    /// Sessions polled so far (tests show a wake-up touches only the due ones).
    #[cfg(test)]
    polled: u64,
}

impl Default for Liveness {
    /// A table whose generator has a fixed seed: for tests. The daemon seeds it from the
    /// operating system ([`Liveness::new`]).
    fn default() -> Liveness {
        Liveness::new([0; 32])
    }
}

fn params(s: &BfdSettings) -> Params {
    Params {
        interval: s.interval,
        detect_mult: s.multiplier,
        echo: s.echo,
        control_interval: s.control_interval,
    }
}

impl Liveness {
    /// `seed` seeds the generator of discriminators and echo nonces: the daemon draws it
    /// from the operating system, so nothing a neighbour sees predicts them, and a
    /// restarted daemon's sessions never look like the old ones (RFC 5880 §6.3).
    pub fn new(seed: [u8; 32]) -> Liveness {
        Liveness {
            rng: ChaCha20Rng::from_seed(seed),
            sessions: BTreeMap::new(),
            by_disc: HashMap::new(),
            by_id: HashMap::new(),
            next_id: 0,
            schedule: Schedule::default(),
            subs: BTreeMap::new(),
            interfaces: HashMap::new(),
            out: Vec::new(),
            changes: Vec::new(),
            counters: Counters::default(),
            #[cfg(test)]
            polled: 0,
        }
    }

    pub fn sessions(&self) -> impl Iterator<Item = (&Neighbour, &Entry)> {
        self.sessions.iter()
    }

    /// Sessions some instance here subscribes to: the ones with a status line, metric
    /// series and notify hooks of their own.
    pub fn subscribed(&self) -> impl Iterator<Item = (&Neighbour, &Entry)> {
        self.sessions.iter().filter(|(_, e)| e.subscribed)
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for e in self.sessions.values() {
            if e.learned {
                s.learned += 1;
            }
            if !e.subscribed {
                s.passive += 1;
                if e.session.state() == BfdState::Up {
                    s.passive_up += 1;
                }
            }
        }
        s
    }

    /// The instances that subscribe to `n`.
    pub fn subscribers(&self, n: &Neighbour) -> Vec<Subscriber> {
        self.subs
            .iter()
            .filter(|(_, s)| s.ifindex == n.0 && s.peers.contains(&n.1))
            .map(|(who, _)| *who)
            .collect()
    }

    pub fn is_up(&self, n: &Neighbour) -> bool {
        self.sessions
            .get(n)
            .is_some_and(|e| e.session.state() == BfdState::Up)
    }

    /// Neighbours on `ifindex` whose sessions are Up.
    pub fn up_on(&self, ifindex: u32) -> Vec<IpAddr> {
        self.sessions
            .range((ifindex, IpAddr::from([0u8; 4]))..)
            .take_while(|((i, _), _)| *i == ifindex)
            .filter(|(_, e)| e.session.state() == BfdState::Up)
            .map(|((_, a), _)| *a)
            .collect()
    }

    /// What the daemon must do, in order.
    pub fn take_output(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    /// Sessions that went Up or left Up since the last call.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// Sets (or with `None` drops) what instance `who` subscribes to, and opens, closes or
    /// retunes sessions to match.
    pub fn subscribe(&mut self, now: Time, who: Subscriber, sub: Option<Subscription>) {
        let old = match sub {
            Some(s) => {
                if self.subs.get(&who) == Some(&s) {
                    return;
                }
                self.subs.insert(who, s)
            }
            None => self.subs.remove(&who),
        };
        let mut touched: Vec<u32> = self.subs.get(&who).map(|s| s.ifindex).into_iter().collect();
        if let Some(o) = old
            && !touched.contains(&o.ifindex)
        {
            touched.push(o.ifindex);
        }
        for ifindex in touched {
            self.reconcile(now, ifindex);
        }
    }

    /// An advertisement from `src` on `ifindex` was admitted: `src` is a VRRP router of
    /// that link, whose Control packets may open a session for [`HEARD_FOR`]. Remembered
    /// only where some instance runs BFD in its family.
    pub fn heard(&mut self, now: Time, ifindex: u32, src: IpAddr) {
        let Some(iface) = self.interfaces.get_mut(&ifindex) else {
            return;
        };
        if iface.speaks(Family::of(&src)).is_none() {
            return;
        }
        if let Some(t) = iface.heard.get_mut(&src) {
            *t = now;
            return;
        }
        if iface.heard.len() >= HEARD_MAX {
            iface
                .heard
                .retain(|_, t| now.saturating_duration_since(*t) < HEARD_FOR);
        }
        if iface.heard.len() >= HEARD_MAX
            && let Some(oldest) = iface.heard.iter().min_by_key(|(_, t)| **t).map(|(a, _)| *a)
        {
            iface.heard.remove(&oldest);
            self.counters.heard_evicted += 1;
        }
        iface.heard.insert(src, now);
    }

    fn reconcile(&mut self, now: Time, ifindex: u32) {
        let on_if: Vec<&Subscription> = self
            .subs
            .values()
            .filter(|s| s.ifindex == ifindex)
            .collect();
        if on_if.is_empty() {
            self.interfaces.remove(&ifindex);
        } else {
            let iface = self
                .interfaces
                .entry(ifindex)
                .or_insert_with(|| Interface::new(now));
            iface.v4 = None;
            iface.v6 = None;
            iface.named.clear();
            for s in &on_if {
                let slot = match Family::of(&s.local) {
                    Family::Ipv4 => &mut iface.v4,
                    Family::Ipv6 => &mut iface.v6,
                };
                slot.get_or_insert_with(|| (s.local, s.settings.clone()));
                iface.named.extend(s.named.iter().chain(&s.peers).copied());
            }
        }
        let wanted: Vec<(IpAddr, IpAddr, BfdSettings)> = on_if
            .iter()
            .flat_map(|s| {
                s.peers
                    .iter()
                    .filter(|p| Family::of(p) == Family::of(&s.local))
                    .map(|p| (*p, s.local, s.settings.clone()))
            })
            .collect();
        for (peer, local, settings) in &wanted {
            if !self.sessions.contains_key(&(ifindex, *peer)) {
                self.open(now, (ifindex, *peer), *local, settings, false);
            }
        }
        let here: Vec<Neighbour> = self
            .sessions
            .range((ifindex, IpAddr::from([0u8; 4]))..)
            .take_while(|((i, _), _)| *i == ifindex)
            .map(|(n, _)| *n)
            .collect();
        for n in here {
            let Some(iface) = self.interfaces.get_mut(&ifindex) else {
                self.close(now, n);
                continue;
            };
            if iface.speaks(Family::of(&n.1)).is_none() {
                self.close(now, n);
                continue;
            }
            let named = iface.named.contains(&n.1);
            let subscribed = wanted.iter().any(|(p, _, _)| *p == n.1);
            let settings = iface.speaks(Family::of(&n.1)).map(|(_, s)| params(s));
            let Some(e) = self.sessions.get_mut(&n) else {
                continue;
            };
            // Named now: no longer counts against the cap for learned neighbours.
            if e.learned && named {
                e.learned = false;
                iface.learned = iface.learned.saturating_sub(1);
            }
            // Settings a reload changed: the session stays Up, a Poll sequence carries
            // the new rates (`Session::retune`).
            if let Some(p) = settings {
                e.session.retune(now, p);
            }
            e.subscribed = subscribed;
            e.session.set_echo(now, subscribed);
            self.schedule.push(e.id, e.deadline());
        }
    }

    fn open(
        &mut self,
        now: Time,
        n: Neighbour,
        local: IpAddr,
        settings: &BfdSettings,
        learned: bool,
    ) {
        let disc = loop {
            let d = self.rng.next_u32();
            if d != 0 && !self.by_disc.contains_key(&d) {
                break d;
            }
        };
        let nonce = self.rng.next_u64();
        let mut session = Session::new(params(settings), disc, nonce, now);
        session.set_echo(now, false);
        let id = self.next_id;
        self.next_id += 1;
        self.by_disc.insert(disc, n);
        self.by_id.insert(id, n);
        if learned && let Some(iface) = self.interfaces.get_mut(&n.0) {
            iface.learned += 1;
        }
        let entry = Entry {
            session,
            local,
            subscribed: false,
            learned,
            id,
            not_up_since: Some(now),
            downs: [0; 9],
        };
        self.schedule.push(id, entry.deadline());
        self.sessions.insert(n, entry);
        self.out.push(Output::Present {
            neighbour: n,
            present: true,
            local_disc: disc,
        });
    }

    /// Takes `n`'s session out of every index.
    fn forget(&mut self, n: Neighbour) -> Option<Entry> {
        let e = self.sessions.remove(&n)?;
        self.by_disc.remove(&e.session.local_disc());
        self.by_id.remove(&e.id);
        if e.learned
            && let Some(iface) = self.interfaces.get_mut(&n.0)
        {
            iface.learned = iface.learned.saturating_sub(1);
        }
        Some(e)
    }

    fn close(&mut self, now: Time, n: Neighbour) {
        let Some(mut e) = self.forget(n) else {
            return;
        };
        // The neighbour hears why before the session goes (RFC 5880 §6.8.16).
        let mut outs = e.session.handle(now, bfd::Input::AdminDown);
        outs.extend(e.session.poll(now));
        self.emit(now, n, e.local, e.subscribed, outs);
        self.out.push(Output::Present {
            neighbour: n,
            present: false,
            local_disc: 0,
        });
    }

    fn emit(
        &mut self,
        now: Time,
        n: Neighbour,
        local: IpAddr,
        subscribed: bool,
        outs: Vec<bfd::Output>,
    ) {
        for o in outs {
            match o {
                bfd::Output::SendControl(packet) => self.out.push(Output::Control {
                    neighbour: n,
                    local,
                    packet,
                }),
                bfd::Output::SendEcho(echo) => self.out.push(Output::Echo {
                    neighbour: n,
                    local,
                    echo,
                }),
                bfd::Output::EchoSuspect | bfd::Output::EchoRestored => {
                    let suspect = o == bfd::Output::EchoSuspect;
                    if suspect {
                        self.counters.echo_suspect += 1;
                    } else {
                        self.counters.echo_restored += 1;
                    }
                    self.changes.push(Change {
                        neighbour: n,
                        up: !suspect,
                        diag: Diag::EchoFunctionFailed,
                        slow_rtt: self.slow_rtt(now, &n),
                    });
                    if subscribed {
                        self.out.push(Output::EchoPath {
                            neighbour: n,
                            suspect,
                        });
                    }
                }
                bfd::Output::Changed { from, to, diag } => {
                    let left_up = from == BfdState::Up;
                    if let Some(e) = self.sessions.get_mut(&n) {
                        if to == BfdState::Up {
                            e.not_up_since = None;
                        } else if left_up {
                            e.not_up_since = Some(now);
                            if subscribed {
                                e.downs[diag as usize] += 1;
                            }
                        }
                    }
                    if left_up && !subscribed {
                        self.counters.passive_downs[diag as usize] += 1;
                    }
                    if (from == BfdState::Up) != (to == BfdState::Up) {
                        self.changes.push(Change {
                            neighbour: n,
                            up: to == BfdState::Up,
                            diag,
                            slow_rtt: self.slow_rtt(now, &n),
                        });
                    }
                    self.out.push(Output::Changed {
                        neighbour: n,
                        from,
                        to,
                        diag,
                        subscribed,
                    });
                    if subscribed {
                        self.notify(n, to, diag);
                    }
                }
            }
        }
    }

    /// The hooks of the instances following `n` that have a `bfd.notify` program: `n`'s
    /// session went to `to` with `diag`. Instances on other interfaces, or following
    /// other neighbours, hear nothing.
    fn notify(&mut self, n: Neighbour, to: BfdState, diag: Diag) {
        for s in self.subs.values() {
            if s.ifindex != n.0 || !s.peers.contains(&n.1) {
                continue;
            }
            if let Some(program) = &s.settings.notify {
                self.out.push(Output::Notify {
                    instance: s.instance.clone(),
                    hook: bfd_hook(program, &s.instance, n.1, to, diag),
                });
            }
        }
    }

    /// The slow round trip a change reports for `n`: see [`Change::slow_rtt`].
    fn slow_rtt(&self, now: Time, n: &Neighbour) -> Option<Duration> {
        let e = self.sessions.get(n)?;
        if e.session.stalled_lately(now) {
            return None;
        }
        Some(
            e.session
                .recent_echo_rtt()
                .min(e.session.echo_detection_limit() / 2),
        )
    }

    /// Feeds `input` to `n`'s session and carries its outputs out.
    fn drive(&mut self, now: Time, n: Neighbour, input: bfd::Input) {
        let Some(e) = self.sessions.get_mut(&n) else {
            return;
        };
        let (local, subscribed) = (e.local, e.subscribed);
        let outs = e.session.handle(now, input);
        self.emit(now, n, local, subscribed, outs);
        if let Some(e) = self.sessions.get(&n) {
            self.schedule.push(e.id, e.deadline());
        }
    }

    /// A Control packet received on `ifindex` from `src` with `ttl` (already decoded).
    pub fn control(&mut self, now: Time, ifindex: u32, src: IpAddr, ttl: u8, c: Control) {
        // RFC 5881 §5: single hop means nobody routed it, which only TTL 255 proves.
        if ttl != 255 {
            self.counters.bad_ttl += 1;
            return;
        }
        let n = if c.your_disc != 0 {
            match self.by_disc.get(&c.your_disc) {
                Some(n) if *n == (ifindex, src) => *n,
                _ => {
                    self.counters.unmatched += 1;
                    return;
                }
            }
        } else {
            (ifindex, src)
        };
        if !self.sessions.contains_key(&n) && !self.may_open(now, n, c.state) {
            return;
        }
        self.counters.control_received += 1;
        self.drive(now, n, bfd::Input::Control(c));
    }

    /// Whether a Control packet saying `state` with Your Discriminator zero opens a
    /// session to `n` (and opens it); counts why not.
    fn may_open(&mut self, now: Time, n: Neighbour, state: BfdState) -> bool {
        let (ifindex, src) = n;
        let Some(iface) = self.interfaces.get_mut(&ifindex) else {
            self.counters.unmatched += 1;
            return false;
        };
        // Only a neighbour starting a session (Down) opens one: a packet that names no
        // session and says Init or Up is discarded by the session anyway (§6.8.6).
        let Some((local, settings)) = iface
            .speaks(Family::of(&src))
            .filter(|_| state == BfdState::Down)
            .cloned()
        else {
            self.counters.unmatched += 1;
            return false;
        };
        let learned = if iface.named.contains(&src) {
            false
        } else if iface.heard_recently(now, src) {
            if iface.learned >= LEARNED_SESSIONS_MAX {
                self.counters.refused_cap += 1;
                return false;
            }
            if !iface.take_token(now) {
                self.counters.refused_rate += 1;
                return false;
            }
            true
        } else {
            self.counters.unknown_neighbour += 1;
            return false;
        };
        self.open(now, n, local, &settings, learned);
        true
    }

    /// A datagram the echo socket of `ifindex` took in, reaching this host at `arrived`
    /// (the kernel's receive timestamp). It counts only in vipd's echo form (see
    /// [`EchoIn`], else `echo_foreign`), and only as the echo of a session on that
    /// interface whose own address it is from, with that session's nonce (else
    /// `echo_not_ours`).
    pub fn echo(&mut self, now: Time, ifindex: u32, frame: EchoIn<'_>, arrived: Time) {
        let Some(echo) = frame.echo() else {
            self.counters.echo_foreign += 1;
            return;
        };
        let src = frame.src;
        let ours = self
            .by_disc
            .get(&echo.disc)
            .filter(|n| n.0 == ifindex)
            .and_then(|n| self.sessions.get(n).map(|e| (*n, e)))
            .filter(|(_, e)| e.local == src && e.session.nonce() == echo.nonce)
            .map(|(n, _)| n);
        let Some(n) = ours else {
            self.counters.echo_not_ours += 1;
            return;
        };
        self.counters.echo_received += 1;
        self.drive(now, n, bfd::Input::Echo { echo, arrived });
    }

    /// Echo `seq` of `n`'s session left at `at` (the daemon's clock right before the
    /// send), which its round trip counts from.
    pub fn echo_sent(&mut self, n: Neighbour, seq: u32, at: Time) {
        if let Some(e) = self.sessions.get_mut(&n) {
            e.session.echo_sent(seq, at);
        }
    }

    pub fn poll_at(&mut self) -> Option<Time> {
        let (sessions, by_id) = (&self.sessions, &self.by_id);
        self.schedule.next(|id| {
            by_id
                .get(&id)
                .and_then(|n| sessions.get(n))
                .and_then(Entry::deadline)
        })
    }

    pub fn poll(&mut self, now: Time) {
        let (sessions, by_id) = (&self.sessions, &self.by_id);
        let due = self.schedule.due(now, |id| {
            by_id
                .get(&id)
                .and_then(|n| sessions.get(n))
                .and_then(Entry::deadline)
        });
        for id in due {
            let Some(&n) = self.by_id.get(&id) else {
                continue;
            };
            let Some(e) = self.sessions.get_mut(&n) else {
                continue;
            };
            let close = !e.subscribed && e.not_up_since.is_some_and(|t| t + NOT_UP_LIMIT <= now);
            if close {
                // Never Up (or not for a long while): nothing to tell the neighbour.
                self.forget(n);
                self.counters.closed_not_up += 1;
                self.out.push(Output::Present {
                    neighbour: n,
                    present: false,
                    local_disc: 0,
                });
                continue;
            }
            let (local, subscribed) = (e.local, e.subscribed);
            #[cfg(test)]
            {
                self.polled += 1;
            }
            let outs = e.session.poll(now);
            self.emit(now, n, local, subscribed, outs);
            if let Some(e) = self.sessions.get(&n) {
                self.schedule.push(e.id, e.deadline());
            }
        }
    }
}

#[cfg(test)]
mod tests;
