//! Carrying out the BFD side of the core (`crate::vrrp::liveness`): sockets opened for the
//! families and interfaces where instances run BFD, Control packets sent and received,
//! our Echo packets sent through the neighbour's MAC (as the XDP program learned it) and
//! taken back with the kernel's receive timestamp, the data plane told which neighbours'
//! echoes to loop back (and this interface's MAC, the only destination it loops back),
//! session changes logged, and the hooks the core asks for queued. Whether an echo or a
//! Control packet counts, and who hears of a change with which arguments, is the core's
//! decision; this only reads, parses and writes.
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
    net::{
        bfd_socket::{ControlIn, ControlSocket, EchoFrame, EchoSocket},
        frames,
    },
    vrrp::{
        Family, Time,
        bfd::packet::{BfdState, Control, Diag, Echo},
        liveness::{EchoIn, Neighbour, Output},
        notify::{self, diag_word},
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
    /// Frames the echo sockets took in that are not UDP over IPv4 or IPv6 as
    /// `frames::parse_udp` reads them (status counts them with the core's
    /// `echo_foreign`).
    pub echo_unparsed: u64,
}

pub struct BfdIo {
    to_loop: mpsc::Sender<Vec<BfdIn>>,
    control: BTreeMap<Family, (Arc<ControlSocket>, JoinHandle<()>)>,
    echo: BTreeMap<u32, (Arc<EchoSocket>, JoinHandle<()>)>,
    macs: HashMap<Neighbour, ([u8; 6], Time)>,
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
        let (families, ifindexes) = self.node.bfd_sockets();
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
                    let Some(udp) = frames::parse_udp(&frame.frame) else {
                        self.bfd.counters.echo_unparsed += 1;
                        continue;
                    };
                    let echo = EchoIn {
                        src: udp.src,
                        dst: udp.dst,
                        dst_port: udp.dst_port,
                        ttl: udp.ttl,
                        payload: udp.payload,
                    };
                    let arrived = frame.stamp.map_or(now, |s| clock::arrival(s, now));
                    self.node.bfd_echo(now, ifindex, echo, arrived)
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
                    subscribed,
                } => self.log_bfd_change(neighbour, from, to, diag, subscribed),
                Output::Notify { instance, hook } => self.notifier.queue(&instance, vec![hook]),
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

    fn log_bfd_change(
        &self,
        n: Neighbour,
        from: BfdState,
        to: BfdState,
        diag: Diag,
        subscribed: bool,
    ) {
        let diag = diag_word(diag);
        if !subscribed {
            debug!(ifindex = n.0, peer = %n.1, %from, %to, diag, "BFD session (for the neighbour) changed");
            return;
        }
        let interface = self
            .ifaces
            .get(&n.0)
            .map_or_else(|| n.0.to_string(), |i| i.link.name.clone());
        self.events.publish(crate::control::events::What::Bfd {
            interface: interface.clone(),
            peer: n.1.to_string(),
            from: notify::state_word(from).to_lowercase(),
            to: notify::state_word(to).to_lowercase(),
            diag: diag.to_owned(),
        });
        if from == BfdState::Up {
            warn!(%interface, peer = %n.1, %to, diag, "BFD session left Up");
        } else {
            info!(%interface, peer = %n.1, %from, %to, diag, "BFD session changed");
        }
    }
}
