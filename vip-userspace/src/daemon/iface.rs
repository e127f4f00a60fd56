//! The interfaces vipd runs VRRP on: the XDP program attached, an AF_PACKET sender, and a
//! VRRP socket per address family whose reader task feeds the daemon loop.
//!
//! Each socket has a queue of its own ([`Inbox`]), bounded, which the loop drains in
//! turn, a few packets from each, so a flood on one interface never delays or drops
//! another's adverts. A reader whose queue is full stops reading: the socket's receive
//! buffer fills and the kernel drops the newest packets there (tail drop, no CPU spent
//! in the daemon) and counts them; that count is the socket's `dropped` figure in
//! `vipd status`. What the socket reads at all is its filter's business
//! (`crate::net::vrrp_filter`).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{sync::Notify, task::JoinHandle};
use tracing::{debug, error, info, warn};

use crate::{
    net::{LinkState, PacketSender, Received, VrrpSocket},
    vrrp::{Family, listen::Listen},
};

/// Packets taken from a socket per wake-up, at most.
const BATCH: usize = 64;
/// Packets a socket's queue holds at most (beyond it, the socket's receive buffer).
pub const INBOX: usize = 256;

/// A received packet, tagged with where it came from.
#[derive(Debug)]
pub struct Inbound {
    pub ifindex: u32,
    pub packet: Received,
}

/// The packets one socket read that the loop has not taken yet.
pub struct Inbox {
    pub ifindex: u32,
    pub family: Family,
    queue: Mutex<VecDeque<Received>>,
    /// The loop took packets: the reader may go on.
    room: Notify,
    /// Packets read from the socket (all of them reach the loop).
    read: AtomicU64,
}

impl Inbox {
    fn new(ifindex: u32, family: Family) -> Inbox {
        Inbox {
            ifindex,
            family,
            queue: Mutex::new(VecDeque::with_capacity(INBOX)),
            room: Notify::new(),
            read: AtomicU64::new(0),
        }
    }

    fn free(&self) -> usize {
        INBOX.saturating_sub(self.queue.lock().map_or(INBOX, |q| q.len()))
    }

    /// Moves up to `max` packets to `out`; whether any are left.
    pub fn take(&self, max: usize, out: &mut Vec<Inbound>) -> bool {
        let Ok(mut q) = self.queue.lock() else {
            return false;
        };
        let n = max.min(q.len());
        out.extend(q.drain(..n).map(|packet| Inbound {
            ifindex: self.ifindex,
            packet,
        }));
        if n > 0 {
            self.room.notify_one();
        }
        !q.is_empty()
    }

    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

impl Inbox {
    fn push(&self, packets: Vec<Received>) {
        self.read.fetch_add(packets.len() as u64, Ordering::Relaxed);
        if let Ok(mut q) = self.queue.lock() {
            q.extend(packets);
        }
    }
}

/// One family's socket on an interface, its queue and reader, and what it reads.
pub struct Listener {
    pub socket: Arc<VrrpSocket>,
    pub inbox: Arc<Inbox>,
    reader: JoinHandle<()>,
    /// What the socket's filter admits now.
    pub listening: Listen,
    /// Why the last change of the filter failed (the previous one stays attached).
    pub filter_error: Option<String>,
}

pub struct Iface {
    pub link: LinkState,
    pub sender: Arc<PacketSender>,
    listeners: BTreeMap<Family, Listener>,
}

impl Listener {
    /// Moves what the kernel already holds for this socket into its queue, as far as the
    /// queue has room, without waiting (see `VrrpSocket::recv_pending`).
    pub fn pump(&self, buf: &mut Vec<u8>) {
        let room = self.inbox.free();
        if room == 0 {
            return;
        }
        match self.socket.recv_pending(buf, room) {
            Ok(packets) => self.inbox.push(packets),
            Err(error) => {
                debug!(ifindex = self.inbox.ifindex, error = %crate::error_chain(&error), "VRRP socket receive failed")
            }
        }
    }
}

impl Iface {
    pub fn new(link: LinkState) -> crate::net::Result<Self> {
        Ok(Self {
            sender: Arc::new(PacketSender::open(link.ifindex)?),
            link,
            listeners: BTreeMap::new(),
        })
    }

    /// The VRRP socket for `family`, if open.
    pub fn socket(&self, family: Family) -> Option<Arc<VrrpSocket>> {
        self.listeners.get(&family).map(|l| l.socket.clone())
    }

    pub fn listeners(&self) -> impl Iterator<Item = &Listener> {
        self.listeners.values()
    }

    /// Opens the VRRP socket for `family` (with its queue and reader task) unless it is
    /// open: a handful of syscalls, done on the loop so the reader runs on the loop's
    /// runtime and wakes it without crossing threads. It reads nothing until
    /// [`Iface::listen`] says what.
    pub fn ensure_socket(
        &mut self,
        family: Family,
        doorbell: &Arc<Notify>,
    ) -> crate::net::Result<Arc<VrrpSocket>> {
        if let Some(l) = self.listeners.get(&family) {
            return Ok(l.socket.clone());
        }
        let socket = Arc::new(VrrpSocket::open(
            &self.link.name,
            self.link.ifindex,
            family == Family::Ipv6,
        )?);
        let inbox = Arc::new(Inbox::new(self.link.ifindex, family));
        let reader = spawn_reader(socket.clone(), inbox.clone(), doorbell.clone());
        self.listeners.insert(
            family,
            Listener {
                socket: socket.clone(),
                inbox,
                reader,
                listening: Listen::nothing(family),
                filter_error: None,
            },
        );
        Ok(socket)
    }

    /// Makes each socket's filter admit what `wanted` says for its family (one setsockopt
    /// where it changed). A filter the kernel refuses is an error, logged with its cause;
    /// the socket keeps its previous filter, never none.
    pub fn listen(&mut self, wanted: impl Fn(Family) -> Listen) {
        for (family, l) in &mut self.listeners {
            let want = wanted(*family);
            if want == l.listening && l.filter_error.is_none() {
                continue;
            }
            match l.socket.listen(&want) {
                Ok(()) => {
                    info!(interface = %self.link.name, ?family, vrids = %want, "VRRP socket filter set");
                    l.listening = want;
                    l.filter_error = None;
                }
                Err(e) => {
                    let cause = crate::error_chain(&e);
                    error!(interface = %self.link.name, ?family, wanted = %want, still = %l.listening, error = %cause, "could not change the VRRP socket filter");
                    l.filter_error = Some(cause);
                }
            }
        }
    }
}

impl Drop for Iface {
    fn drop(&mut self) {
        for (_, l) in std::mem::take(&mut self.listeners) {
            l.reader.abort();
        }
    }
}

fn spawn_reader(
    socket: Arc<VrrpSocket>,
    inbox: Arc<Inbox>,
    doorbell: Arc<Notify>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = Vec::new();
        // The kernel's drop count is logged when it reaches 1, 2, 4, 8, ...
        let mut next_warning: u64 = 1;
        loop {
            let free = inbox.free();
            if free == 0 {
                // The loop is behind on this socket: leave the rest in the socket's
                // buffer (the kernel drops and counts what does not fit) until it takes
                // some. Other sockets' queues are untouched.
                inbox.room.notified().await;
                continue;
            }
            match socket.recv_batch(&mut buf, free.min(BATCH)).await {
                Ok(packets) => {
                    inbox.push(packets);
                    doorbell.notify_one();
                    // The count arrives with the packets read after the drops.
                    let dropped = socket.dropped();
                    if dropped >= next_warning {
                        warn!(ifindex = inbox.ifindex, family = ?inbox.family, dropped, "VRRP socket queue full: the kernel dropped packets (the daemon fell behind on this socket)");
                        next_warning = dropped.saturating_add(1).next_power_of_two();
                    }
                }
                Err(error) => {
                    debug!(ifindex = inbox.ifindex, family = ?inbox.family, error = %crate::error_chain(&error), "VRRP socket receive failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    })
}
