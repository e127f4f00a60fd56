//! One configured instance at run time: its addresses, sockets, counters, announcements
//! and tracking, around the state machine the group owns.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use tokio::{sync::watch, task::JoinHandle};
use tracing::{debug, warn};
use vip_common::wire::{VRRP_GROUP_V4, VRRP_GROUP_V6};

use super::{
    Ctx,
    background::{Announcement, Background},
    clock,
};
use crate::{
    config::Instance,
    net::{Netlink, frames},
    track::TrackState,
    vrrp::{Advert, Family, Interval, Time, Version, packet::Auth},
};

/// Rounds of more announcements than this go out paced from the background thread.
const ANNOUNCE_INLINE: usize = 64;

/// Gratuitous ARP / unsolicited NA schedule: a burst on becoming master, then a refresh.
#[derive(Debug, Default)]
pub struct Garp {
    remaining: u32,
    next: Option<Time>,
}

pub struct Member {
    /// Daemon-wide id (tracking reports carry it).
    pub id: u64,
    pub cfg: Instance,
    pub ifindex: u32,
    pub if_mac: [u8; 6],
    /// Source of our adverts and our side of the tie-break.
    pub src: IpAddr,
    pub track: TrackState,
    /// What tracking last told the machine.
    pub applied_fault: bool,
    pub applied_priority: u8,
    pub watchers: Vec<JoinHandle<()>>,
    addresses: watch::Sender<bool>,
    address_task: JoinHandle<()>,
    pub sent: u64,
    pub received: u64,
    pub invalid: u64,
    pub transitions: u64,
    pub garp: Garp,
    ident: u16,
}

impl Member {
    pub fn new(
        id: u64,
        cfg: Instance,
        ifindex: u32,
        if_mac: [u8; 6],
        src: IpAddr,
        background: &Background,
    ) -> Self {
        let (addresses, rx) = watch::channel(false);
        let address_task = background.handle.spawn(reconcile_addresses(
            background.nl.clone(),
            ifindex,
            installed_vips(&cfg),
            vmac_of(&cfg),
            rx,
        ));
        Self {
            id,
            track: TrackState::new(&cfg),
            applied_fault: false,
            applied_priority: cfg.priority,
            cfg,
            ifindex,
            if_mac,
            src,
            watchers: Vec::new(),
            addresses,
            address_task,
            sent: 0,
            received: 0,
            invalid: 0,
            transitions: 0,
            garp: Garp::default(),
            ident: 0,
        }
    }

    pub fn interval(&self) -> Interval {
        interval_of(&self.cfg)
    }

    /// The MAC our frames come from: the virtual MAC in VMAC mode.
    pub fn send_mac(&self) -> [u8; 6] {
        if self.cfg.vmac {
            self.cfg.vmac_address()
        } else {
            self.if_mac
        }
    }

    /// The kernel should (or should no longer) accept traffic for the VIPs.
    pub fn want_addresses(&self, present: bool) {
        let _ = self.addresses.send(present);
    }

    /// Sends one advertisement with `priority`, multicast or to each unicast peer.
    pub fn send_advert(&mut self, ctx: &mut Ctx, priority: u8) {
        let addresses: Vec<IpAddr> = self
            .cfg
            .vips
            .iter()
            .map(|v| v.net.addr())
            .take(advertised_limit(self.cfg.family))
            .collect();
        let advert = match self.cfg.version {
            Version::V3 => Advert::v3(self.cfg.vrid, priority, self.interval(), addresses),
            Version::V2 => {
                let auth = match self.cfg.auth_pass {
                    Some(p) => Auth::simple_text(trim_zeros(&p)).unwrap_or(Auth::NONE),
                    None => Auth::NONE,
                };
                Advert::v2(self.cfg.vrid, priority, self.interval(), addresses, auth)
            }
        };
        let Some(iface) = ctx.ifaces.get_mut(&self.ifindex) else {
            return;
        };
        if self.cfg.unicast_peers.is_empty() {
            let dst = group_address(self.cfg.family);
            let bytes = match advert.encode(self.src, dst) {
                Ok(b) => b,
                Err(error) => {
                    warn!(instance = %self.cfg.name, %error, "cannot encode advertisement");
                    return;
                }
            };
            self.ident = self.ident.wrapping_add(1);
            let frame = match (self.src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => frames::vrrp_v4(
                    self.send_mac(),
                    frames::ipv4_multicast_mac(d),
                    s,
                    d,
                    self.ident,
                    &bytes,
                ),
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    frames::vrrp_v6(self.send_mac(), frames::ipv6_multicast_mac(d), s, d, &bytes)
                }
                _ => return,
            };
            match iface.sender.send(&frame) {
                Ok(()) => self.sent += 1,
                Err(error) => debug!(instance = %self.cfg.name, %error, "advert not sent"),
            }
        } else {
            let family = self.cfg.family;
            let socket = match iface.socket(family, &ctx.inbound) {
                Ok(s) => s,
                Err(error) => {
                    warn!(instance = %self.cfg.name, %error, "no socket for unicast adverts");
                    return;
                }
            };
            for peer in &self.cfg.unicast_peers {
                match advert
                    .encode(self.src, *peer)
                    .map_err(|e| e.to_string())
                    .and_then(|b| socket.send_unicast(*peer, &b).map_err(|e| e.to_string()))
                {
                    Ok(()) => self.sent += 1,
                    Err(error) => {
                        debug!(instance = %self.cfg.name, %peer, %error, "unicast advert not sent")
                    }
                }
            }
        }
    }

    /// Starts the announcement burst at `at`, unless one is already under way (a master
    /// re-announcing against every advert of a conflicting master would never finish).
    pub fn schedule_garp(&mut self, at: Time) {
        if self.garp.remaining > 0 {
            return;
        }
        if self.cfg.garp_repeat > 0 {
            self.garp = Garp {
                remaining: self.cfg.garp_repeat,
                next: Some(at),
            };
        } else {
            self.garp = Garp {
                remaining: 0,
                next: self.cfg.garp_refresh.map(|r| at + r),
            };
        }
    }

    pub fn cancel_garp(&mut self) {
        self.garp = Garp::default();
    }

    pub fn garp_due(&self) -> Option<Time> {
        self.garp.next
    }

    /// Sends one round of announcements if due and schedules the next.
    pub fn poll_garp(&mut self, ctx: &Ctx, now: Time) {
        let Some(next) = self.garp.next else {
            return;
        };
        if next > now {
            return;
        }
        self.announce(ctx, |_| true);
        if self.garp.remaining > 1 {
            self.garp.remaining -= 1;
            self.garp.next = Some(now + self.cfg.garp_interval);
        } else {
            self.garp.remaining = 0;
            self.garp.next = self.cfg.garp_refresh.map(|r| now + r);
        }
    }

    /// One gratuitous ARP / unsolicited NA for each VIP `which` selects. A handful go out
    /// at once from the loop; thousands are handed to the background thread, where tens
    /// of thousands of sends cannot starve the loop or anything else on the machine (the
    /// XDP program already answers for every VIP; announcements only refresh caches).
    pub fn announce(&self, ctx: &Ctx, which: impl Fn(&IpNet) -> bool) {
        let Some(iface) = ctx.ifaces.get(&self.ifindex) else {
            return;
        };
        let vips: Vec<IpAddr> = self
            .cfg
            .vips
            .iter()
            .filter(|v| which(&v.net))
            .map(|v| v.net.addr())
            .collect();
        let mac = self.send_mac();
        if vips.len() > ANNOUNCE_INLINE {
            ctx.background.announce(Announcement {
                sender: iface.sender.clone(),
                mac,
                vips,
            });
            return;
        }
        for vip in vips {
            let frame = match vip {
                IpAddr::V4(a) => frames::gratuitous_arp(mac, a),
                IpAddr::V6(a) => frames::unsolicited_na(mac, a),
            };
            if let Err(error) = iface.sender.send(&frame) {
                debug!(instance = %self.cfg.name, %error, "announcement not sent");
            }
        }
    }

    /// Stops background work; the caller removes addresses itself when it must wait.
    pub fn stop(&mut self) {
        for w in self.watchers.drain(..) {
            w.abort();
        }
        self.address_task.abort();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many VIPs an advertisement lists: the count field is 8 bits, and the packet must
/// fit a 1500-byte MTU (IPv6: 40 + 8 + 16n). Peers only log a list that differs from
/// theirs (RFC 5798 §7.1 makes the check optional), and every VIP is still answered for:
/// the list is informative, the group slot is what moves the VIPs.
pub fn advertised_limit(family: Family) -> usize {
    match family {
        Family::Ipv4 => 255,
        Family::Ipv6 => (1500 - 40 - 8) / 16,
    }
}

pub fn interval_of(cfg: &Instance) -> Interval {
    let centis = (cfg.advert_interval.as_millis() / 10).clamp(1, u16::MAX as u128) as u16;
    Interval::from_centis(centis).unwrap_or(Interval::DEFAULT)
}

/// The password bytes of a zero-padded VRRPv2 auth field.
pub fn trim_zeros(p: &[u8; 8]) -> &[u8] {
    let end = p.iter().position(|b| *b == 0).unwrap_or(8);
    &p[..end]
}

pub fn group_address(family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::from(VRRP_GROUP_V4)),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::from(VRRP_GROUP_V6)),
    }
}

/// The VIPs the kernel gets on master: all of them with Accept_Mode (or as owner, whose
/// addresses they are), none otherwise (the XDP program still answers ARP / NS, so traffic
/// through the router flows; traffic to the VIP itself is not accepted, RFC 5798 §6.1).
pub fn installed_vips(cfg: &Instance) -> Vec<IpNet> {
    if cfg.accept || cfg.is_owner() {
        cfg.vips.iter().map(|v| v.net).collect()
    } else {
        Vec::new()
    }
}

fn vmac_of(cfg: &Instance) -> Option<[u8; 6]> {
    cfg.vmac.then(|| cfg.vmac_address())
}

/// Removes every configured VIP (and the VMAC filter entry) from the interface now.
pub async fn remove_addresses(nl: &Netlink, ifindex: u32, cfg: &Instance) {
    for vip in cfg.vips.iter().map(|v| v.net) {
        if let Err(error) = nl.del_address(ifindex, vip.addr(), vip.prefix_len()).await {
            warn!(instance = %cfg.name, %vip, %error, "could not remove VIP");
        }
    }
    if let Some(mac) = vmac_of(cfg) {
        let _ = nl.fdb_del(ifindex, mac).await;
    }
}

/// Keeps the interface's VIP addresses (and VMAC filter entry) in the last wanted state,
/// on the background thread: adding 10,000 addresses must not delay an advertisement.
async fn reconcile_addresses(
    nl: Netlink,
    ifindex: u32,
    vips: Vec<IpNet>,
    vmac: Option<[u8; 6]>,
    mut want: watch::Receiver<bool>,
) {
    {
        while want.changed().await.is_ok() {
            let present = *want.borrow_and_update();
            let started = clock::now();
            for vip in &vips {
                // A newer wish overrides the rest of this round.
                if want.has_changed().unwrap_or(true) {
                    break;
                }
                let r = if present {
                    nl.add_address(ifindex, vip.addr(), vip.prefix_len()).await
                } else {
                    nl.del_address(ifindex, vip.addr(), vip.prefix_len()).await
                };
                if let Err(error) = r {
                    warn!(%vip, present, %error, "VIP address change failed");
                }
            }
            if let Some(mac) = vmac {
                let r = if present {
                    nl.fdb_add(ifindex, mac).await
                } else {
                    nl.fdb_del(ifindex, mac).await
                };
                if let Err(error) = r {
                    warn!(present, %error, "VMAC unicast filter change failed");
                }
            }
            debug!(
                ifindex,
                present,
                count = vips.len(),
                took_us = clock::now().saturating_duration_since(started).as_micros() as u64,
                "VIP addresses reconciled"
            );
        }
    }
}
