//! The interfaces vipd runs VRRP on: the XDP program attached, an AF_PACKET sender, and a
//! VRRP socket per address family whose reader task feeds the daemon loop.

use std::{collections::BTreeMap, sync::Arc};

use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{debug, warn};

use crate::{
    net::{LinkState, PacketSender, Received, VrrpSocket},
    vrrp::Family,
};

/// Packets taken from a socket per wake-up, at most.
const BATCH: usize = 64;

/// A received packet, tagged with where it came from.
#[derive(Debug)]
pub struct Inbound {
    pub ifindex: u32,
    pub packet: Received,
}

pub struct Iface {
    pub link: LinkState,
    pub sender: Arc<PacketSender>,
    sockets: BTreeMap<Family, (Arc<VrrpSocket>, JoinHandle<()>)>,
}

impl Iface {
    pub fn new(link: LinkState) -> crate::net::Result<Self> {
        Ok(Self {
            sender: Arc::new(PacketSender::open(link.ifindex)?),
            link,
            sockets: BTreeMap::new(),
        })
    }

    /// The VRRP socket for `family`, if open.
    pub fn socket(&self, family: Family) -> Option<Arc<VrrpSocket>> {
        self.sockets.get(&family).map(|(s, _)| s.clone())
    }

    /// Opens the VRRP socket for `family` (with its reader task) unless it is open: a
    /// handful of syscalls, done on the loop so the reader runs on the loop's runtime
    /// and wakes it without crossing threads.
    pub fn ensure_socket(
        &mut self,
        family: Family,
        to_loop: &mpsc::Sender<Vec<Inbound>>,
    ) -> crate::net::Result<Arc<VrrpSocket>> {
        if let Some((s, _)) = self.sockets.get(&family) {
            return Ok(s.clone());
        }
        let socket = Arc::new(VrrpSocket::open(
            &self.link.name,
            self.link.ifindex,
            family == Family::Ipv6,
        )?);
        let reader = spawn_reader(socket.clone(), self.link.ifindex, family, to_loop.clone());
        self.sockets.insert(family, (socket.clone(), reader));
        Ok(socket)
    }
}

impl Drop for Iface {
    fn drop(&mut self) {
        for (_, (_, reader)) in std::mem::take(&mut self.sockets) {
            reader.abort();
        }
    }
}

fn spawn_reader(
    socket: Arc<VrrpSocket>,
    ifindex: u32,
    family: Family,
    to_loop: mpsc::Sender<Vec<Inbound>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut dropped: u64 = 0;
        let mut buf = Vec::new();
        loop {
            match socket.recv_batch(&mut buf, BATCH).await {
                Ok(packets) => {
                    let n = packets.len() as u64;
                    let batch = packets
                        .into_iter()
                        .map(|packet| Inbound { ifindex, packet })
                        .collect();
                    // Never block the reader on a busy loop: under a flood the newest
                    // adverts matter no more than the ones already queued.
                    if to_loop.try_send(batch).is_err() {
                        dropped += n;
                        if dropped.is_power_of_two() {
                            warn!(
                                ifindex,
                                ?family,
                                dropped,
                                "VRRP receive queue full, dropping"
                            );
                        }
                        if to_loop.is_closed() {
                            return;
                        }
                    }
                }
                Err(error) => {
                    debug!(ifindex, error = %crate::error_chain(&error), "VRRP socket receive failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    })
}
