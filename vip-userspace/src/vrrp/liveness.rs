//! This node's BFD sessions, and who they are for. Pure, like [`super::node`], which owns
//! the one [`Liveness`] and tells its groups what the sessions say.
//!
//! One session per neighbour and interface (RFC 5881 §3: a single-hop session is named by
//! the interface and the address pair), however many instances on that interface care
//! about the neighbour. An instance with `bfd` *subscribes*: to its configured peers, or,
//! without any, to the master it follows while backup. A session is opened for every
//! subscription, and also passively when a neighbour's Control packet arrives on an
//! interface where some instance runs BFD (a master answering its backups).
//!
//! Only sessions somebody here subscribes to send Echo packets: the backup needs to know
//! fast that its master is gone; the master needs nothing fast from its backups, and
//! loops their echoes back in XDP (`BFD_PEERS`). Sessions nobody subscribes to close once
//! they are down and the neighbour has been quiet for [`QUIET`]; every session closes
//! (after saying AdminDown) when no instance on its interface runs BFD any more.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    time::Duration,
};

use super::instance::BfdSettings;
use super::{
    bfd::{
        self, Params, Session,
        packet::{BfdState, Control, Diag, Echo},
    },
    packet::Family,
    timing::Time,
};

/// How long an unsubscribed session stays after going down while its neighbour is silent.
pub const QUIET: Duration = Duration::from_secs(30);

/// A neighbour on an interface: the name of a session.
pub type Neighbour = (u32, IpAddr);

/// What one instance (group member) wants: sessions on `ifindex` from `local` to `peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub ifindex: u32,
    /// Our address on the interface: the source of Control packets, and of our echoes.
    pub local: IpAddr,
    pub settings: BfdSettings,
    pub peers: Vec<IpAddr>,
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
    /// Send an Echo packet from `local` to `local`, through the neighbour's MAC.
    Echo {
        neighbour: Neighbour,
        local: IpAddr,
        echo: Echo,
    },
    /// A session changed state.
    Changed {
        neighbour: Neighbour,
        from: BfdState,
        to: BfdState,
        diag: Diag,
    },
}

/// A session that went Up or left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub neighbour: Neighbour,
    pub up: bool,
    /// Why it left Up.
    pub diag: Diag,
    /// The worst echo round trip lately (see `Session::recent_echo_rtt`), at most half
    /// the echo detection time: a probe after a "down" waits twice this, and never longer
    /// than one more detection time, whatever one slow echo (a busy start-up) said.
    pub slow_rtt: Duration,
}

/// Packets refused before they reached a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub control_received: u64,
    pub echo_received: u64,
    /// Control packets with TTL / hop limit other than 255 (RFC 5881 §5).
    pub bad_ttl: u64,
    /// Control packets for no session (unknown discriminator, or from a neighbour on an
    /// interface where nothing runs BFD), and echoes that are no session's.
    pub unmatched: u64,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub session: Session,
    pub local: IpAddr,
    /// Some instance here subscribes to this neighbour.
    pub subscribed: bool,
    /// When a Control packet last came from the neighbour (or the session opened).
    pub heard: Time,
}

#[derive(Debug, Clone, Default)]
pub struct Liveness {
    salt: u32,
    sessions: BTreeMap<Neighbour, Entry>,
    by_disc: HashMap<u32, Neighbour>,
    subs: BTreeMap<(u64, usize), Subscription>,
    out: Vec<Output>,
    /// Sessions that went to or from Up since last taken.
    changes: Vec<Change>,
    pub counters: Counters,
}

fn params(s: &BfdSettings) -> Params {
    Params {
        interval: s.interval,
        detect_mult: s.multiplier,
        echo: s.echo,
        control_interval: s.control_interval,
    }
}

/// FNV-1a, for discriminators that differ per neighbour and per daemon run (`salt`).
fn fnv(parts: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for p in parts {
        for b in *p {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

impl Liveness {
    /// `salt` makes this run's discriminators differ from a previous run's, so a neighbour
    /// never mistakes a restarted daemon's session for the old one (RFC 5880 §6.3).
    pub fn new(salt: u32) -> Liveness {
        Liveness {
            salt,
            ..Liveness::default()
        }
    }

    pub fn sessions(&self) -> impl Iterator<Item = (&Neighbour, &Entry)> {
        self.sessions.iter()
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
    pub fn subscribe(&mut self, now: Time, who: (u64, usize), sub: Option<Subscription>) {
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

    /// The subscription that speaks for `ifindex` and `family` (settings are the same for
    /// every instance on an interface; the configuration checks it).
    fn sub_for(&self, ifindex: u32, family: Family) -> Option<&Subscription> {
        self.subs
            .values()
            .find(|s| s.ifindex == ifindex && Family::of(&s.local) == family)
    }

    fn reconcile(&mut self, now: Time, ifindex: u32) {
        let wanted: Vec<(IpAddr, IpAddr, BfdSettings)> = self
            .subs
            .values()
            .filter(|s| s.ifindex == ifindex)
            .flat_map(|s| {
                s.peers
                    .iter()
                    .filter(|p| Family::of(p) == Family::of(&s.local))
                    .map(|p| (*p, s.local, s.settings.clone()))
            })
            .collect();
        for (peer, local, settings) in &wanted {
            if !self.sessions.contains_key(&(ifindex, *peer)) {
                self.open(now, (ifindex, *peer), *local, settings);
            }
        }
        let on_if: Vec<Neighbour> = self
            .sessions
            .keys()
            .filter(|(i, _)| *i == ifindex)
            .copied()
            .collect();
        for n in on_if {
            let family = Family::of(&n.1);
            if self.sub_for(ifindex, family).is_none() {
                self.close(now, n);
                continue;
            }
            let subscribed = wanted.iter().any(|(p, _, _)| *p == n.1);
            let settings = self.sub_for(ifindex, family).map(|s| params(&s.settings));
            if let Some(e) = self.sessions.get_mut(&n) {
                // Settings a reload changed: the session stays Up, a Poll sequence
                // carries the new rates (`Session::retune`).
                if let Some(p) = settings {
                    e.session.retune(now, p);
                }
                e.subscribed = subscribed;
                e.session.set_echo(now, subscribed);
            }
        }
    }

    fn open(&mut self, now: Time, n: Neighbour, local: IpAddr, settings: &BfdSettings) {
        let mut disc = fnv(&[&self.salt.to_be_bytes(), &n.0.to_be_bytes(), &octets(n.1)]) | 1;
        while self.by_disc.contains_key(&disc) {
            disc = disc.wrapping_add(2);
        }
        let mut session = Session::new(params(settings), disc, now);
        session.set_echo(now, false);
        self.by_disc.insert(disc, n);
        self.sessions.insert(
            n,
            Entry {
                session,
                local,
                subscribed: false,
                heard: now,
            },
        );
        self.out.push(Output::Present {
            neighbour: n,
            present: true,
            local_disc: disc,
        });
    }

    fn close(&mut self, now: Time, n: Neighbour) {
        let Some(mut e) = self.sessions.remove(&n) else {
            return;
        };
        // The neighbour hears why before the session goes (RFC 5880 §6.8.16).
        let mut outs = e.session.handle(now, bfd::Input::AdminDown);
        outs.extend(e.session.poll(now));
        self.emit(n, e.local, outs);
        self.by_disc.remove(&e.session.local_disc());
        self.out.push(Output::Present {
            neighbour: n,
            present: false,
            local_disc: 0,
        });
    }

    fn emit(&mut self, n: Neighbour, local: IpAddr, outs: Vec<bfd::Output>) {
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
                bfd::Output::Changed { from, to, diag } => {
                    if (from == BfdState::Up) != (to == BfdState::Up) {
                        let rtt = self.sessions.get(&n).map_or(Duration::ZERO, |e| {
                            e.session
                                .recent_echo_rtt()
                                .min(e.session.echo_detection_limit() / 2)
                        });
                        self.changes.push(Change {
                            neighbour: n,
                            up: to == BfdState::Up,
                            diag,
                            slow_rtt: rtt,
                        });
                    }
                    self.out.push(Output::Changed {
                        neighbour: n,
                        from,
                        to,
                        diag,
                    });
                }
            }
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
        if !self.sessions.contains_key(&n) {
            let Some(sub) = self.sub_for(ifindex, Family::of(&src)).cloned() else {
                self.counters.unmatched += 1;
                return;
            };
            self.open(now, n, sub.local, &sub.settings);
        }
        self.counters.control_received += 1;
        let Some(e) = self.sessions.get_mut(&n) else {
            return;
        };
        e.heard = now;
        let local = e.local;
        let outs = e.session.handle(now, bfd::Input::Control(c));
        self.emit(n, local, outs);
    }

    /// One of our echoes came back on `ifindex`.
    pub fn echo(&mut self, now: Time, ifindex: u32, e: Echo) {
        let Some(n) = self
            .by_disc
            .get(&e.disc)
            .copied()
            .filter(|n| n.0 == ifindex)
        else {
            self.counters.unmatched += 1;
            return;
        };
        self.counters.echo_received += 1;
        if let Some(entry) = self.sessions.get_mut(&n) {
            let local = entry.local;
            let outs = entry.session.handle(now, bfd::Input::Echo(e));
            self.emit(n, local, outs);
        }
    }

    pub fn poll_at(&self) -> Option<Time> {
        let sessions = self.sessions.values().filter_map(|e| e.session.poll_at());
        let prune = self
            .sessions
            .values()
            .filter(|e| Self::prunable(e))
            .map(|e| e.heard + QUIET);
        sessions.chain(prune).min()
    }

    fn prunable(e: &Entry) -> bool {
        !e.subscribed && e.session.state() == BfdState::Down
    }

    pub fn poll(&mut self, now: Time) {
        let due: Vec<Neighbour> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.session.poll_at().is_some_and(|t| t <= now))
            .map(|(n, _)| *n)
            .collect();
        for n in due {
            if let Some(e) = self.sessions.get_mut(&n) {
                let local = e.local;
                let outs = e.session.poll(now);
                self.emit(n, local, outs);
            }
        }
        let quiet: Vec<Neighbour> = self
            .sessions
            .iter()
            .filter(|(_, e)| Self::prunable(e) && e.heard + QUIET <= now)
            .map(|(n, _)| *n)
            .collect();
        for n in quiet {
            // Down already: no AdminDown to say, the neighbour stopped talking.
            if let Some(e) = self.sessions.remove(&n) {
                self.by_disc.remove(&e.session.local_disc());
                self.out.push(Output::Present {
                    neighbour: n,
                    present: false,
                    local_disc: 0,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
