//! The I/O side of a running group: its data-plane slot, and per member the interface it
//! sends on and the installer of its addresses. What to send and when is decided in
//! `crate::vrrp::group`; this only carries it out.

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use tracing::{debug, warn};
use vip_common::wire::{VRRP_GROUP_V4, VRRP_GROUP_V6};

use super::{
    addresses::{ANNOUNCE_INLINE, Announcement, Installer, send_one},
    iface::Iface,
};
use crate::{
    dataplane::entries::{Devices, answered_on},
    net::{PacketSender, frames},
    vrrp::{Family, group::advert_for, instance::Instance},
};

pub struct MemberIo {
    /// The VRRP interface.
    pub ifindex: u32,
    pub if_mac: [u8; 6],
    pub sender: Arc<PacketSender>,
    /// Every interface the member touches, by name (its VIPs' devices too).
    pub devices: Devices,
    /// Senders of the VIPs' devices, by ifindex (announcements leave where the VIP is).
    pub senders: BTreeMap<u32, Arc<PacketSender>>,
    pub installer: Installer,
    pub sent: u64,
    ident: u16,
}

pub struct GroupIo {
    pub slot: u32,
    /// The count of the slot's release record last acted on (see `execute`).
    pub releases_seen: u64,
    pub members: Vec<MemberIo>,
    /// The members' whole configurations (hooks, routes, script commands: what the core
    /// does not see), by member index.
    pub configs: Vec<crate::config::Instance>,
}

impl MemberIo {
    pub fn new(
        devices: Devices,
        ifindex: u32,
        senders: BTreeMap<u32, Arc<PacketSender>>,
        installer: Installer,
    ) -> Option<MemberIo> {
        let if_mac = devices.values().find(|(i, _)| *i == ifindex)?.1;
        Some(MemberIo {
            ifindex,
            if_mac,
            sender: senders.get(&ifindex)?.clone(),
            devices,
            senders,
            installer,
            sent: 0,
            ident: 0,
        })
    }

    /// The MAC our frames on `mac`'s device come from: the virtual MAC in VMAC mode.
    fn mac_for(&self, cfg: &Instance, mac: [u8; 6]) -> [u8; 6] {
        if cfg.vmac { cfg.vmac_address() } else { mac }
    }

    /// The MAC our adverts come from.
    pub fn send_mac(&self, cfg: &Instance) -> [u8; 6] {
        self.mac_for(cfg, self.if_mac)
    }

    /// Sends one advertisement with `priority` from `src`, multicast or to each unicast
    /// peer; from the interface's own MAC with `own_mac` (a backup's probe), else from
    /// the one adverts come from.
    pub fn send_advert(
        &mut self,
        cfg: &Instance,
        src: IpAddr,
        priority: u8,
        own_mac: bool,
        iface: &mut Iface,
    ) {
        let advert = advert_for(cfg, priority);
        if cfg.unicast_peers.is_empty() {
            let dst = match cfg.identity.family {
                Family::Ipv4 => IpAddr::from(VRRP_GROUP_V4),
                Family::Ipv6 => IpAddr::from(VRRP_GROUP_V6),
            };
            let bytes = match advert.encode(src, dst) {
                Ok(b) => b,
                Err(error) => {
                    warn!(instance = %cfg.name, error = %crate::error_chain(&error), "cannot encode advertisement");
                    return;
                }
            };
            self.ident = self.ident.wrapping_add(1);
            let mac = if own_mac {
                self.if_mac
            } else {
                self.send_mac(cfg)
            };
            let frame = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    frames::vrrp_v4(mac, frames::ipv4_multicast_mac(d), s, d, self.ident, &bytes)
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    frames::vrrp_v6(mac, frames::ipv6_multicast_mac(d), s, d, &bytes)
                }
                _ => return,
            };
            match self.sender.send(&frame) {
                Ok(()) => self.sent += 1,
                Err(error) => {
                    debug!(instance = %cfg.name, error = %crate::error_chain(&error), "advert not sent")
                }
            }
        } else {
            let Some(socket) = iface.socket(cfg.identity.family) else {
                warn!(instance = %cfg.name, "no socket for unicast adverts");
                return;
            };
            for peer in &cfg.unicast_peers {
                let sent = advert
                    .encode(src, *peer)
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        socket
                            .send_unicast(src, *peer, &b)
                            .map_err(|e| crate::error_chain(&e))
                    });
                match sent {
                    Ok(()) => self.sent += 1,
                    Err(error) => {
                        debug!(instance = %cfg.name, %peer, %error, "unicast advert not sent")
                    }
                }
            }
        }
    }

    /// Sends one signed CARP advertisement from `src` to 224.0.0.18 / ff02::12; from the
    /// interface's own MAC with `own_mac` (a backup's probe). Its checksum covers the 36
    /// bytes alone, in both families (no pseudo-header), so it is complete here.
    pub fn send_carp(
        &mut self,
        cfg: &Instance,
        src: IpAddr,
        advert: &crate::vrrp::carp::Advert,
        own_mac: bool,
    ) {
        let bytes = advert.encode();
        let mac = if own_mac {
            self.if_mac
        } else {
            self.send_mac(cfg)
        };
        self.ident = self.ident.wrapping_add(1);
        let frame = match src {
            IpAddr::V4(s) => {
                let d = VRRP_GROUP_V4.into();
                frames::vrrp_v4(mac, frames::ipv4_multicast_mac(d), s, d, self.ident, &bytes)
            }
            IpAddr::V6(s) => {
                let d = VRRP_GROUP_V6.into();
                frames::vrrp_v6(mac, frames::ipv6_multicast_mac(d), s, d, &bytes)
            }
        };
        match self.sender.send(&frame) {
            Ok(()) => self.sent += 1,
            Err(error) => {
                debug!(instance = %cfg.name, error = %crate::error_chain(&error), "CARP advert not sent")
            }
        }
    }

    /// One gratuitous ARP / unsolicited NA for `vip`, or for each of the instance's VIPs,
    /// on each VIP's device. A handful go out at once; thousands are handed to the
    /// addresses thread, paced.
    pub fn announce(
        &self,
        cfg: &Instance,
        vip: Option<IpAddr>,
        paced: &tokio::sync::mpsc::Sender<Announcement>,
    ) {
        let mut by_dev: BTreeMap<u32, ([u8; 6], Vec<IpAddr>)> = BTreeMap::new();
        // Proxy addresses are announced like the VIPs: clients must learn the new MAC.
        for (ifx, mac, addr) in answered_on(cfg, &self.devices) {
            if vip.is_none_or(|x| x == addr) {
                by_dev
                    .entry(ifx)
                    .or_insert_with(|| (self.mac_for(cfg, mac), Vec::new()))
                    .1
                    .push(addr);
            }
        }
        for (ifx, (mac, vips)) in by_dev {
            let Some(sender) = self.senders.get(&ifx) else {
                continue;
            };
            if vips.len() > ANNOUNCE_INLINE {
                let round = Announcement {
                    sender: sender.clone(),
                    mac,
                    vips,
                };
                if paced.try_send(round).is_err() {
                    debug!(instance = %cfg.name, "announcement queue full; round skipped");
                }
                continue;
            }
            for v in vips {
                send_one(sender, mac, v);
            }
        }
    }
}
