//! Carrying out the BFD side of the core (`crate::vrrp::liveness`): sockets opened for the
//! families and interfaces where instances run BFD, Control packets sent and received,
//! our Echo packets sent through the neighbour's MAC (as the XDP program learned it) and
//! taken back with the kernel's receive timestamp, the data plane told which neighbours'
//! echoes to loop back (and this interface's MAC, the only destination it loops back),
//! and the changes of subscribed sessions logged, counted and handed to the subscribing
//! instances' `bfd.notify` programs. Whether an echo or a Control packet counts is the
//! core's decision; this only reads and writes.
//!
//! docs/architecture.md ("BFD") has the rules the core follows.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
    sync::Arc,
    time::Duration,
};

use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{debug, info, warn};
use vip_common::{BFD_ECHO_PORT, BfdPeerKey, FAMILY_IPV4, FAMILY_IPV6};

use super::{Daemon, clock};
use crate::{
    control::notify::Hook,
    net::{
        bfd_socket::{ControlIn, ControlSocket, EchoFrame, EchoSocket},
        frames,
    },
    vrrp::{
        Family, Time,
        bfd::packet::{BfdState, Control, Diag, Echo},
        liveness::{Neighbour, Output, Subscriber},
    },
};

/// Frames taken from an echo socket per wake-up, at most.
const BATCH: usize = 64;
/// Control packets taken per wake-up, at most: fewer, so a flood of them (nothing a
/// stranger sends opens anything, but each is read and counted) is handled in short
/// turns between timers.
const CONTROL_BATCH: usize = 16;
/// How long a neighbour's MAC, as read from the data plane, is used before it is read
/// again (a neighbour whose NIC changed is followed within this).
const MAC_FRESH: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub enum BfdIn {
    Control(ControlIn),
    Echo { ifindex: u32, frame: EchoFrame },
}

/// Counts of what the daemon's side did, for status and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct BfdIoCounters {
    pub control_sent: u64,
    pub echo_sent: u64,
    /// Echoes not sent: the neighbour's MAC is not known yet.
    pub echo_no_mac: u64,
    pub send_errors: u64,
    /// Control packets that did not decode.
    pub undecodable: u64,
    /// Frames to the Echo port addressed from and to one address that are not in vipd's
    /// echo format (the filter cannot tell them apart).
    pub echo_foreign: u64,
}

pub struct BfdIo {
    to_loop: mpsc::Sender<Vec<BfdIn>>,
    control: BTreeMap<Family, (Arc<ControlSocket>, JoinHandle<()>)>,
    echo: BTreeMap<u32, (Arc<EchoSocket>, JoinHandle<()>)>,
    macs: HashMap<Neighbour, ([u8; 6], Time)>,
    /// Times each subscribed session left Up, by neighbour and diagnostic.
    pub downs: BTreeMap<(Neighbour, &'static str), u64>,
    /// Times sessions nobody here subscribes to left Up, by diagnostic (no series per
    /// neighbour for those).
    pub passive_downs: BTreeMap<&'static str, u64>,
    pub counters: BfdIoCounters,
}

impl Drop for BfdIo {
    fn drop(&mut self) {
        for (_, (_, h)) in std::mem::take(&mut self.control) {
            h.abort();
        }
        for (_, (_, h)) in std::mem::take(&mut self.echo) {
            h.abort();
        }
    }
}

pub fn key(n: &Neighbour) -> BfdPeerKey {
    let (family, addr) = match n.1 {
        IpAddr::V4(a) => (FAMILY_IPV4, vip_common::v4_in_16(a.octets())),
        IpAddr::V6(a) => (FAMILY_IPV6, a.octets()),
    };
    BfdPeerKey {
        ifindex: n.0,
        vlan: 0,
        family,
        _pad: 0,
        addr,
    }
}

/// The word a notify program gets for a state.
pub fn state_word(s: BfdState) -> &'static str {
    match s {
        BfdState::AdminDown => "ADMINDOWN",
        BfdState::Down => "DOWN",
        BfdState::Init => "INIT",
        BfdState::Up => "UP",
    }
}

pub fn diag_word(d: Diag) -> &'static str {
    match d {
        Diag::None => "none",
        Diag::ControlDetectionTimeExpired => "control-detection-time-expired",
        Diag::EchoFunctionFailed => "echo-function-failed",
        Diag::NeighborSignaledDown => "neighbor-signaled-down",
        Diag::ForwardingPlaneReset => "forwarding-plane-reset",
        Diag::PathDown => "path-down",
        Diag::ConcatenatedPathDown => "concatenated-path-down",
        Diag::AdministrativelyDown => "administratively-down",
        Diag::ReverseConcatenatedPathDown => "reverse-concatenated-path-down",
    }
}

impl BfdIo {
    /// What the kernel already delivered to the BFD sockets, taken without waiting (at
    /// most `echoes` echo frames, then `controls` Control packets): read before timers
    /// fire, so a session is never declared down while the echo that proves it alive
    /// sits in a queue. Few Control packets: under a flood of them the rest wait their
    /// turn (their timers are seconds, and BFD tolerates a lost packet by design).
    pub fn queued(&self, echoes: usize, controls: usize) -> Vec<BfdIn> {
        let mut out = Vec::new();
        for (ifindex, (s, _)) in &self.echo {
            while out.len() < echoes {
                match s.try_recv() {
                    Some(frame) => out.push(BfdIn::Echo {
                        ifindex: *ifindex,
                        frame,
                    }),
                    None => break,
                }
            }
        }
        let max = out.len() + controls;
        for (s, _) in self.control.values() {
            while out.len() < max {
                match s.try_recv() {
                    Some(c) => out.push(BfdIn::Control(c)),
                    None => break,
                }
            }
        }
        out
    }

    pub fn active(&self) -> bool {
        !self.echo.is_empty() || !self.control.is_empty()
    }

    pub fn new(to_loop: mpsc::Sender<Vec<BfdIn>>) -> BfdIo {
        BfdIo {
            to_loop,
            control: BTreeMap::new(),
            echo: BTreeMap::new(),
            macs: HashMap::new(),
            downs: BTreeMap::new(),
            passive_downs: BTreeMap::new(),
            counters: BfdIoCounters::default(),
        }
    }

    /// Opens the sockets `families` and `ifindexes` need and closes the rest.
    pub fn want(&mut self, families: &BTreeSet<Family>, ifindexes: &BTreeSet<u32>) {
        self.control.retain(|f, (_, h)| {
            let keep = families.contains(f);
            if !keep {
                h.abort();
            }
            keep
        });
        for f in families {
            if self.control.contains_key(f) {
                continue;
            }
            match ControlSocket::open(*f == Family::Ipv6) {
                Ok(s) => {
                    let s = Arc::new(s);
                    let reader = spawn_control_reader(s.clone(), self.to_loop.clone());
                    info!(
                        family = f.name(),
                        source_port = s.source_port(),
                        "BFD Control socket open"
                    );
                    self.control.insert(*f, (s, reader));
                }
                Err(e) => {
                    warn!(family = f.name(), error = %crate::error_chain(&e), "BFD unavailable for this family")
                }
            }
        }
        self.echo.retain(|ifx, (_, h)| {
            let keep = ifindexes.contains(ifx);
            if !keep {
                h.abort();
            }
            keep
        });
        for ifx in ifindexes {
            if self.echo.contains_key(ifx) {
                continue;
            }
            match EchoSocket::open(*ifx) {
                Ok(s) => {
                    let s = Arc::new(s);
                    let reader = spawn_echo_reader(s.clone(), *ifx, self.to_loop.clone());
                    self.echo.insert(*ifx, (s, reader));
                }
                Err(e) => {
                    warn!(ifindex = ifx, error = %crate::error_chain(&e), "BFD echoes cannot be received here")
                }
            }
        }
    }
}

fn spawn_control_reader(
    s: Arc<ControlSocket>,
    to_loop: mpsc::Sender<Vec<BfdIn>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match s.recv_batch(CONTROL_BATCH).await {
                Ok(batch) => {
                    let batch = batch.into_iter().map(BfdIn::Control).collect();
                    // A full queue drops: BFD tolerates lost packets by design.
                    if to_loop.try_send(batch).is_err() && to_loop.is_closed() {
                        return;
                    }
                }
                Err(e) => {
                    debug!(error = %crate::error_chain(&e), "BFD Control receive failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
}

fn spawn_echo_reader(
    s: Arc<EchoSocket>,
    ifindex: u32,
    to_loop: mpsc::Sender<Vec<BfdIn>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match s.recv_batch(BATCH).await {
                Ok(frames) => {
                    let batch = frames
                        .into_iter()
                        .map(|frame| BfdIn::Echo { ifindex, frame })
                        .collect();
                    if to_loop.try_send(batch).is_err() && to_loop.is_closed() {
                        return;
                    }
                }
                Err(e) => {
                    debug!(ifindex, error = %crate::error_chain(&e), "BFD Echo receive failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
}

impl Daemon {
    /// Opens and closes BFD sockets for what the running groups need.
    pub(super) fn refresh_bfd_sockets(&mut self) {
        let mut families = BTreeSet::new();
        let mut ifindexes = BTreeSet::new();
        for (_, e) in self.node.groups() {
            for (m, ifx) in e.group.members().iter().zip(&e.ifindexes) {
                if m.cfg.bfd.is_some() {
                    families.insert(m.cfg.identity.family);
                    ifindexes.insert(*ifx);
                }
            }
        }
        self.bfd.want(&families, &ifindexes);
    }

    pub(super) fn on_bfd(&mut self, batch: Vec<BfdIn>) {
        let now = clock::now();
        for p in batch {
            let outs = match p {
                BfdIn::Control(c) => match Control::decode(&c.bytes) {
                    Ok(control) => self.node.bfd_control(now, c.ifindex, c.src, c.ttl, control),
                    Err(error) => {
                        // Anyone can send these: counted, and logged only at powers of
                        // two, so a flood costs no log line per packet.
                        self.bfd.counters.undecodable += 1;
                        let n = self.bfd.counters.undecodable;
                        if n.is_power_of_two() {
                            debug!(src = %c.src, error = %crate::error_chain(&error), count = n, "undecodable BFD Control");
                        }
                        continue;
                    }
                },
                BfdIn::Echo { ifindex, frame } => {
                    let Some((src, echo)) = echo_of(&frame.frame) else {
                        self.bfd.counters.echo_foreign += 1;
                        continue;
                    };
                    let arrived = frame.stamp.map_or(now, |s| clock::arrival(s, now));
                    self.node.bfd_echo(now, ifindex, src, echo, arrived)
                }
            };
            self.execute(now, outs);
        }
        self.execute_bfd(now);
    }

    /// Carries out what the sessions asked for.
    pub(super) fn execute_bfd(&mut self, now: Time) {
        for o in self.node.take_bfd() {
            match o {
                Output::Present {
                    neighbour,
                    present,
                    local_disc,
                } => {
                    let k = key(&neighbour);
                    let r = if present {
                        // Without the interface (gone meanwhile) nothing is looped back:
                        // no frame is addressed to an all-zero MAC.
                        let own = self.ifaces.get(&neighbour.0).map_or([0; 6], |i| i.link.mac);
                        self.maps.add_bfd_peer(k, local_disc, own)
                    } else {
                        self.macs_forget(&neighbour);
                        self.maps.remove_bfd_peer(&k)
                    };
                    if let Err(e) = r {
                        warn!(peer = %neighbour.1, error = %crate::error_chain(&e), "could not update the BFD neighbour entry");
                    }
                }
                Output::Control {
                    neighbour,
                    local,
                    packet,
                } => {
                    let Some((s, _)) = self.bfd.control.get(&Family::of(&local)) else {
                        continue;
                    };
                    match s.send(neighbour.0, local, neighbour.1, &packet.encode()) {
                        Ok(()) => self.bfd.counters.control_sent += 1,
                        Err(e) => {
                            self.bfd.counters.send_errors += 1;
                            debug!(peer = %neighbour.1, error = %crate::error_chain(&e), "BFD Control not sent");
                        }
                    }
                }
                Output::Echo {
                    neighbour,
                    local,
                    echo,
                } => self.send_echo(now, neighbour, local, echo),
                Output::EchoPath { neighbour, suspect } => {
                    if suspect {
                        warn!(ifindex = neighbour.0, peer = %neighbour.1, "BFD echoes stopped coming back: path suspect");
                    } else {
                        info!(ifindex = neighbour.0, peer = %neighbour.1, "BFD echoes back: the path was slow, not down");
                    }
                }
                Output::Changed {
                    neighbour,
                    from,
                    to,
                    diag,
                    subscribers,
                } => self.bfd_changed(neighbour, from, to, diag, &subscribers),
            }
        }
    }

    fn macs_forget(&mut self, n: &Neighbour) {
        self.bfd.macs.remove(n);
    }

    fn send_echo(&mut self, now: Time, n: Neighbour, local: IpAddr, echo: Echo) {
        let cached = self
            .bfd
            .macs
            .get(&n)
            .filter(|(_, at)| now.saturating_duration_since(*at) < MAC_FRESH)
            .map(|(m, _)| *m);
        let mac = match cached {
            Some(m) => m,
            None => {
                let m = self
                    .maps
                    .bfd_peer(&key(&n))
                    .map(|p| p.mac)
                    .unwrap_or([0; 6]);
                self.bfd.macs.insert(n, (m, now));
                m
            }
        };
        if mac == [0; 6] {
            self.bfd.counters.echo_no_mac += 1;
            return;
        }
        let (Some(iface), Some((s, _)), Some((sock, _))) = (
            self.ifaces.get(&n.0),
            self.bfd.control.get(&Family::of(&local)),
            self.bfd.echo.get(&n.0),
        ) else {
            return;
        };
        let ports = (s.source_port(), BFD_ECHO_PORT);
        let Some(frame) = frames::udp(iface.link.mac, mac, local, local, ports, &echo.encode())
        else {
            return;
        };
        // The round trip counts from here, not from when the loop decided to send.
        let at = clock::now();
        match sock.send(&frame) {
            Ok(()) => {
                self.bfd.counters.echo_sent += 1;
                self.node.bfd_echo_sent(n, echo.seq, at);
            }
            Err(e) => {
                self.bfd.counters.send_errors += 1;
                debug!(peer = %n.1, error = %crate::error_chain(&e), "BFD Echo not sent");
            }
        }
    }

    fn bfd_changed(
        &mut self,
        n: Neighbour,
        from: BfdState,
        to: BfdState,
        diag: Diag,
        subscribers: &[Subscriber],
    ) {
        // A session kept for the neighbour's sake gets no log line, series or hook of its
        // own: only sessions some instance follows do (the rest are counted together).
        if subscribers.is_empty() {
            if from == BfdState::Up {
                *self.bfd.passive_downs.entry(diag_word(diag)).or_default() += 1;
            }
            debug!(ifindex = n.0, peer = %n.1, %from, %to, diag = diag_word(diag), "BFD session (for the neighbour) changed");
            return;
        }
        let interface = self
            .ifaces
            .get(&n.0)
            .map_or_else(|| n.0.to_string(), |i| i.link.name.clone());
        self.events.publish(crate::control::events::What::Bfd {
            interface: interface.clone(),
            peer: n.1.to_string(),
            from: state_word(from).to_lowercase(),
            to: state_word(to).to_lowercase(),
            diag: diag_word(diag).to_owned(),
        });
        if from == BfdState::Up {
            warn!(%interface, peer = %n.1, %to, diag = diag_word(diag), "BFD session left Up");
            *self.bfd.downs.entry((n, diag_word(diag))).or_default() += 1;
        } else {
            info!(%interface, peer = %n.1, %from, %to, diag = diag_word(diag), "BFD session changed");
        }
        // Each subscribing instance with a notify program hears of it.
        let mut hooks: Vec<(String, Vec<Hook>)> = Vec::new();
        for (id, member) in subscribers {
            let Some(m) = self
                .node
                .get(*id)
                .and_then(|e| e.group.members().get(*member))
            else {
                continue;
            };
            let Some(notify) = m.cfg.bfd.as_ref().and_then(|b| b.notify.as_ref()) else {
                continue;
            };
            let mut argv = notify.clone();
            argv.extend([
                m.cfg.name.clone(),
                n.1.to_string(),
                state_word(to).to_owned(),
                diag_word(diag).to_owned(),
            ]);
            let env = vec![
                ("VIPD_SCOPE", "BFD".to_owned()),
                ("VIPD_NAME", m.cfg.name.clone()),
                ("VIPD_BFD_PEER", n.1.to_string()),
                ("VIPD_BFD_STATE", state_word(to).to_owned()),
                ("VIPD_BFD_DIAG", diag_word(diag).to_owned()),
            ];
            hooks.push((m.cfg.name.clone(), vec![Hook { argv, env }]));
        }
        for (name, h) in hooks {
            self.notifier.queue(&name, h);
        }
    }
}

/// An echo in vipd's format as the AF_PACKET socket saw it, with the address it is from
/// and to: UDP to the echo port, from and to one address, within one hop (the XDP
/// program loops it back untouched, TTL 255; a kernel that forwards it takes one off).
/// Whether it is one of ours (the address, the interface, the nonce) is the core's call.
fn echo_of(frame: &[u8]) -> Option<(IpAddr, Echo)> {
    let p = frames::parse_udp(frame)?;
    if p.dst_port != BFD_ECHO_PORT || p.src != p.dst || p.ttl < 254 {
        return None;
    }
    Some((p.src, Echo::decode(p.payload)?))
}
