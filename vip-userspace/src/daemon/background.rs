//! A low-priority thread for work whose timing does not matter: putting VIP addresses on
//! interfaces. Ten thousand netlink requests are seconds of kernel time spent inside
//! sendmsg; at nice 19 they yield the CPU to the daemon loop, probers and everything
//! else, while the XDP program already answers for the VIPs (the slot moved first).

use std::{net::IpAddr, sync::Arc, time::Duration};

use anyhow::{Context as _, Result, anyhow};
use tokio::{runtime::Handle, sync::mpsc};
use tracing::debug;

use crate::net::{Netlink, PacketSender, frames};

pub struct Background {
    pub handle: Handle,
    /// A netlink connection whose requests are sent from the background thread.
    pub nl: Netlink,
    announcements: mpsc::UnboundedSender<Announcement>,
}

/// One round of gratuitous ARPs / unsolicited NAs.
pub struct Announcement {
    pub sender: Arc<PacketSender>,
    pub mac: [u8; 6],
    pub vips: Vec<IpAddr>,
}

/// Announcements leave at most this many per millisecond. They are multicast or
/// broadcast: every host on the link processes each one, so ten thousand at once would
/// swamp clients (and the switch) just when they must reach the new master.
const ANNOUNCE_PER_MS: usize = 64;

impl Background {
    pub fn start() -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("vipd-addresses".into())
            .spawn(move || {
                // SAFETY: setpriority on this thread's own id; no memory is involved.
                unsafe {
                    libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
                }
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(anyhow!("background runtime: {e}")));
                        return;
                    }
                };
                let nl = rt.block_on(async { Netlink::connect() });
                let _ = tx.send(nl.map(|nl| (rt.handle().clone(), nl)).map_err(Into::into));
                // Serve spawned tasks until the process exits.
                rt.block_on(std::future::pending::<()>());
            })
            .context("starting the background thread")?;
        let (handle, nl) = rx
            .recv()
            .context("the background thread died while starting")??;
        let (announcements, queue) = mpsc::unbounded_channel();
        handle.spawn(announce(queue));
        Ok(Self {
            handle,
            nl,
            announcements,
        })
    }

    /// Queues a round of announcements; rounds go out in order, paced.
    pub fn announce(&self, a: Announcement) {
        let _ = self.announcements.send(a);
    }
}

async fn announce(mut queue: mpsc::UnboundedReceiver<Announcement>) {
    while let Some(a) = queue.recv().await {
        for chunk in a.vips.chunks(ANNOUNCE_PER_MS) {
            for vip in chunk {
                let frame = match vip {
                    IpAddr::V4(v) => frames::gratuitous_arp(a.mac, *v),
                    IpAddr::V6(v) => frames::unsolicited_na(a.mac, *v),
                };
                if let Err(error) = a.sender.send(&frame) {
                    debug!(%error, "announcement not sent");
                }
            }
            if chunk.len() == ANNOUNCE_PER_MS {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}
