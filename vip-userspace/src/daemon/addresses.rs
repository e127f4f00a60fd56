//! What the kernel holds for an instance while it is master (the virtual MAC's unicast
//! filter entry, its `virtual_routes` and `virtual_rules`, and its VIP addresses when the
//! core says so: `Output::Install`'s `addresses`), kept in the last wanted state by a
//! task on the `vipd-addresses` thread, and announcements too many to send from the
//! loop. Neither is on the failover path: the XDP program answers as soon as the slot
//! moves.
//!
//! With `announce_host_routes`, each VIP's host route (protocol 112) is one more route
//! here: installed, removed and put back like the `virtual_routes`.
//!
//! While master, routes and rules are checked every [`REAPPLY`] and put back if something
//! (an operator, another daemon) removed them, as keepalived does.
//!
//! A reload that changes a running instance hands its installer the new installation
//! ([`Installer::update`]): while installed, only the difference is touched (what went is
//! removed, what came is added; an address whose options changed is removed and added
//! again), never the rest.

use std::{net::IpAddr, sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tracing::{debug, warn};

use super::clock;
use crate::{
    config::{Instance, Vip},
    dataplane::entries::Devices,
    net::{
        Netlink, PacketSender, frames,
        routes::{Route, Rule},
    },
    worker::Worker,
};

/// What one instance installs as master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    pub instance: String,
    /// The VRRP interface (the VMAC filter entry goes there).
    pub ifindex: u32,
    /// Each VIP with the index of its device (added only when the wish says so).
    pub vips: Vec<(u32, Vip)>,
    pub vmac: Option<[u8; 6]>,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
}

/// How often a master's routes and rules are checked.
pub const REAPPLY: Duration = Duration::from_secs(1);

/// What the kernel should hold for an instance, as the core last said
/// (`Output::Install`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wish {
    pub present: bool,
    /// The VIP addresses too (the owner, or Accept_Mode).
    pub addresses: bool,
}

/// Every VIP of `inst` (`vips` and `vips_excluded`) with the index and MAC of its device.
pub fn vips_on<'a>(
    inst: &'a Instance,
    devs: &'a Devices,
) -> impl Iterator<Item = (u32, [u8; 6], &'a Vip)> + 'a {
    inst.all_vips()
        .filter_map(|v| devs.get(&v.dev).map(|(ifx, mac)| (*ifx, *mac, v)))
}

impl Installation {
    /// Everything `cfg` may install, with its VIPs on their devices (whether they go in
    /// is the core's call, per wish).
    pub fn of(cfg: &Instance, devs: &Devices) -> Installation {
        let ifindex = devs.get(&cfg.interface).map_or(0, |(i, _)| *i);
        let host_routes = cfg.host_routes();
        let routes = cfg
            .virtual_routes
            .iter()
            .chain(&host_routes)
            .map(|r| Route {
                oif: r.dev.as_ref().and_then(|d| devs.get(d)).map(|(i, _)| *i),
                spec: r.clone(),
            })
            .collect();
        Installation {
            instance: cfg.name.clone(),
            ifindex,
            vips: vips_on(cfg, devs)
                .map(|(ifx, _, v)| (ifx, v.clone()))
                .collect(),
            vmac: cfg.vmac.then(|| cfg.vmac_address()),
            routes,
            rules: cfg.virtual_rules.clone(),
        }
    }

    /// Removes everything, now (start-up cleanup of what a previous run left).
    pub async fn remove_all(&self, nl: &Netlink) {
        apply(nl, self, false, true, None).await;
    }
}

/// Adds (`present`) or removes what `what` holds; the VIP addresses only with
/// `addresses`.
async fn apply(
    nl: &Netlink,
    what: &Installation,
    present: bool,
    addresses: bool,
    newer: Option<&watch::Receiver<Wish>>,
) {
    let started = clock::now();
    if !present {
        // Routes and rules may use the addresses (a route's `src`): they go first.
        routes_and_rules(nl, what, false).await;
    }
    let vips = if addresses { &what.vips[..] } else { &[] };
    for (ifindex, vip) in vips {
        // A newer wish overrides the rest of this round.
        if newer.is_some_and(|w| w.has_changed().unwrap_or(false)) {
            return;
        }
        let r = if present {
            nl.add_vip(*ifindex, vip).await
        } else {
            nl.del_address(*ifindex, vip.net.addr(), vip.net.prefix_len())
                .await
        };
        if let Err(error) = r {
            warn!(instance = %what.instance, vip = %vip.net, present, error = %crate::error_chain(&error), "VIP address change failed");
        }
    }
    if let Some(mac) = what.vmac {
        let r = if present {
            nl.fdb_add(what.ifindex, mac).await
        } else {
            nl.fdb_del(what.ifindex, mac).await
        };
        if let Err(error) = r {
            warn!(instance = %what.instance, present, error = %crate::error_chain(&error), "VMAC unicast filter change failed");
        }
    }
    if present {
        routes_and_rules(nl, what, true).await;
    }
    debug!(
        instance = %what.instance,
        present,
        count = vips.len(),
        took_us = clock::now().saturating_duration_since(started).as_micros() as u64,
        "installation reconciled"
    );
}

/// Adds (or removes) every route and rule; returns how many changed.
async fn routes_and_rules(nl: &Netlink, what: &Installation, present: bool) -> usize {
    let mut changed = 0;
    for r in &what.routes {
        let done = if present {
            nl.add_route(r).await
        } else {
            nl.del_route(r).await
        };
        match done {
            Ok(c) => changed += usize::from(c),
            Err(error) => {
                warn!(instance = %what.instance, present, error = %crate::error_chain(&error), "route change failed")
            }
        }
    }
    for r in &what.rules {
        let done = if present {
            nl.add_rule(r).await
        } else {
            nl.del_rule(r).await
        };
        match done {
            Ok(c) => changed += usize::from(c),
            Err(error) => {
                warn!(instance = %what.instance, present, error = %crate::error_chain(&error), "rule change failed")
            }
        }
    }
    changed
}

/// The loop's handle on one instance's installation.
pub struct Installer {
    want: watch::Sender<Wish>,
    what: watch::Sender<Arc<Installation>>,
    task: JoinHandle<()>,
}

impl Installer {
    pub fn start(worker: &Worker, what: Installation) -> Installer {
        let (want, rx) = watch::channel(Wish::default());
        let (what_tx, what_rx) = watch::channel(Arc::new(what));
        let nl = worker.nl.clone();
        let task = worker.spawn(reconcile(nl, what_rx, rx));
        Installer {
            want,
            what: what_tx,
            task,
        }
    }

    /// The kernel should (or should no longer) hold the installation.
    pub fn set(&self, wish: Wish) {
        self.want
            .send_if_modified(|w| std::mem::replace(w, wish) != wish);
    }

    /// A reload changed what the instance installs: while installed, the difference is
    /// carried out (see the module docs).
    pub fn update(&self, what: Installation) {
        self.what.send_if_modified(|w| {
            let changed = **w != what;
            if changed {
                *w = Arc::new(what);
            }
            changed
        });
    }

    /// Stops after carrying out the last wish; the handle finishes when it is done.
    pub fn finish(self) -> JoinHandle<()> {
        drop(self.want);
        self.task
    }
}

/// What is in `a` and not in `b`: an installation of the difference.
fn minus(a: &Installation, b: &Installation, addresses: bool) -> Installation {
    Installation {
        instance: a.instance.clone(),
        ifindex: a.ifindex,
        vips: if addresses {
            a.vips
                .iter()
                .filter(|v| !b.vips.contains(v))
                .cloned()
                .collect()
        } else {
            Vec::new()
        },
        vmac: a.vmac.filter(|_| a.vmac != b.vmac),
        routes: a
            .routes
            .iter()
            .filter(|r| !b.routes.contains(r))
            .cloned()
            .collect(),
        rules: a
            .rules
            .iter()
            .filter(|r| !b.rules.contains(r))
            .cloned()
            .collect(),
    }
}

async fn reconcile(
    nl: Netlink,
    mut what_rx: watch::Receiver<Arc<Installation>>,
    mut want: watch::Receiver<Wish>,
) {
    // What the kernel was given: removal takes back exactly that.
    let mut applied = Wish::default();
    let mut what = what_rx.borrow_and_update().clone();
    loop {
        let watch_routes = !what.routes.is_empty() || !what.rules.is_empty();
        let changed = async {
            tokio::select! {
                r = want.changed() => r.is_err(),
                r = what_rx.changed() => r.is_err() && want.has_changed().is_err(),
            }
        };
        let closed = if applied.present && watch_routes {
            match tokio::time::timeout(REAPPLY, changed).await {
                Ok(closed) => closed,
                Err(_) => {
                    let back = routes_and_rules(&nl, &what, true).await;
                    if back > 0 {
                        warn!(instance = %what.instance, count = back, "routes or rules removed while master: put back");
                    }
                    continue;
                }
            }
        } else {
            changed.await
        };
        // (`changed()` marks the value seen: compare what it holds instead.)
        let new = what_rx.borrow_and_update().clone();
        if !Arc::ptr_eq(&new, &what) {
            if applied.present {
                // Only the difference: what went first (a route may use an address
                // that goes), then what came.
                apply(
                    &nl,
                    &minus(&what, &new, applied.addresses),
                    false,
                    true,
                    None,
                )
                .await;
                apply(
                    &nl,
                    &minus(&new, &what, applied.addresses),
                    true,
                    true,
                    None,
                )
                .await;
                debug!(instance = %new.instance, "installation changed in place");
            }
            what = new;
        }
        let wish = *want.borrow_and_update();
        if wish.present && applied.present && wish.addresses != applied.addresses {
            // Accept_Mode (or the owner's priority) turned on or off while installed: the
            // VIP addresses alone.
            let only = Installation {
                instance: what.instance.clone(),
                ifindex: what.ifindex,
                vips: what.vips.clone(),
                vmac: None,
                routes: Vec::new(),
                rules: Vec::new(),
            };
            apply(&nl, &only, wish.addresses, true, None).await;
            applied.addresses = wish.addresses;
        } else if wish.present != applied.present {
            let addresses = if wish.present {
                wish.addresses
            } else {
                applied.addresses
            };
            apply(
                &nl,
                &what,
                wish.present,
                addresses,
                (!closed).then_some(&want),
            )
            .await;
            applied = Wish {
                present: wish.present,
                addresses,
            };
        }
        if closed {
            return;
        }
    }
}

/// One round of gratuitous ARPs / unsolicited NAs.
pub struct Announcement {
    pub sender: Arc<PacketSender>,
    pub mac: [u8; 6],
    pub vips: Vec<IpAddr>,
}

/// Rounds of more announcements than this leave paced from the addresses thread.
pub const ANNOUNCE_INLINE: usize = 64;

/// Announcements leave at most this many per millisecond. They are multicast or
/// broadcast: every host on the link processes each one, so ten thousand at once would
/// swamp clients (and the switch) just when they must reach the new master.
const ANNOUNCE_PER_MS: usize = 64;

/// Rounds queued for pacing, at most: a burst beyond it is dropped (the XDP program
/// answers anyway; announcements only refresh caches).
const ANNOUNCE_QUEUE: usize = 256;

pub fn announcer(worker: &Worker) -> mpsc::Sender<Announcement> {
    let (tx, mut rx) = mpsc::channel::<Announcement>(ANNOUNCE_QUEUE);
    worker.spawn(async move {
        while let Some(a) = rx.recv().await {
            for chunk in a.vips.chunks(ANNOUNCE_PER_MS) {
                for vip in chunk {
                    send_one(&a.sender, a.mac, *vip);
                }
                if chunk.len() == ANNOUNCE_PER_MS {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    });
    tx
}

pub fn send_one(sender: &PacketSender, mac: [u8; 6], vip: IpAddr) {
    let frame = match vip {
        IpAddr::V4(v) => frames::gratuitous_arp(mac, v),
        IpAddr::V6(v) => frames::unsolicited_na(mac, v),
    };
    if let Err(error) = sender.send(&frame) {
        debug!(%vip, error = %crate::error_chain(&error), "announcement not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every instance keeps one reconciling task for the daemon's lifetime, nearly always
    /// waiting for a wish: its resting size is paid per instance (the scale item of
    /// `tests/bench/results.md` runs 1,020). Measured at 584 bytes (debug build): a
    /// netlink round trip grown into the task's state would multiply that.
    #[tokio::test]
    async fn an_idle_installer_task_stays_small() {
        let nl = Netlink::connect().expect("a netlink socket");
        let what = Installation {
            instance: "v1".into(),
            ifindex: 1,
            vips: Vec::new(),
            vmac: None,
            routes: Vec::new(),
            rules: Vec::new(),
        };
        let (_what_tx, what_rx) = watch::channel(Arc::new(what));
        let (_want_tx, want_rx) = watch::channel(Wish::default());
        let task = reconcile(nl, what_rx, want_rx);
        let size = std::mem::size_of_val(&task);
        eprintln!("reconcile future: {size} bytes");
        assert!(size <= 1024, "the reconciling task rests at {size} bytes");
    }
}
