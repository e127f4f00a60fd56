//! The data plane's configuration-time entries for an instance: its VIPs (pointing at the
//! group's slot), its VRRP admission policy, its allowed peers and its virtual MAC, all
//! from the core's view of the instance (`vrrp::instance::Instance`), so the program
//! admits exactly what `vrrp::admission` admits (`tests/tests/program/admission.rs`
//! holds the two side by side). Written when the daemon prepares a group (or a reload
//! changes a running instance: written again, new ones added), pruned once no running
//! group uses them: never on the failover path, where only the slot changes.

use std::{
    collections::{BTreeMap, HashSet},
    net::IpAddr,
};

use vip_common::{
    FAMILY_F_CARP, FAMILY_IPV4, FAMILY_IPV6, GroupState, HostMacKey, INTERFACE_VRID, POLICY_F_AUTH,
    PeerKey, Policy, PolicyKey, VIP_F_OWNER, VIP_F_VMAC, VipKey, VipValue, VmacKey, VmacValue,
    shared_vip_flags,
};

use crate::{
    dataplane::{self, Maps},
    vrrp::{Family, instance::Instance},
};

fn family_tag(f: Family) -> u8 {
    match f {
        Family::Ipv4 => FAMILY_IPV4,
        Family::Ipv6 => FAMILY_IPV6,
    }
}

fn addr16(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => vip_common::v4_in_16(v4.octets()),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn vip_key_on(ifindex: u32, vlan: u16, vip: IpAddr) -> VipKey {
    match vip {
        IpAddr::V4(a) => VipKey::v4(ifindex, vlan, a.octets()),
        IpAddr::V6(a) => VipKey::v6(ifindex, vlan, a.octets()),
    }
}

/// The address a VIP key stands for.
pub fn key_addr(k: &VipKey) -> IpAddr {
    if k.family == FAMILY_IPV4 {
        IpAddr::from([k.addr[0], k.addr[1], k.addr[2], k.addr[3]])
    } else {
        IpAddr::from(k.addr)
    }
}

pub fn policy_key(ifindex: u32, inst: &Instance) -> PolicyKey {
    policy_key_on(ifindex, 0, inst)
}

/// The family tag of `inst`'s policy and peer keys: a CARP virtual host's are apart from
/// VRRP's (`vip_common::FAMILY_F_CARP`).
fn key_family(inst: &Instance) -> u8 {
    let f = family_tag(inst.identity.family);
    if inst.identity.is_carp() {
        f | FAMILY_F_CARP
    } else {
        f
    }
}

fn policy_key_on(ifindex: u32, vlan: u16, inst: &Instance) -> PolicyKey {
    PolicyKey {
        ifindex,
        vlan,
        family: key_family(inst),
        vrid: inst.identity.vrid,
    }
}

fn peer_key(ifindex: u32, vlan: u16, inst: &Instance, peer: IpAddr) -> PeerKey {
    PeerKey {
        ifindex,
        vlan,
        family: key_family(inst),
        vrid: inst.identity.vrid,
        addr: addr16(peer),
    }
}

fn host_mac_key(ifindex: u32, mac: [u8; 6]) -> HostMacKey {
    HostMacKey {
        ifindex,
        mac,
        _pad: [0; 2],
    }
}

fn vmac_key(ifindex: u32, vlan: u16, inst: &Instance) -> VmacKey {
    VmacKey {
        ifindex,
        vlan,
        mac: inst.vmac_address(),
    }
}

/// The interfaces an instance touches, by name: its VRRP interface and every VIP's
/// device, each with its index and MAC.
pub type Devices = BTreeMap<String, (u32, [u8; 6])>;

/// Upper devices (a bridge, a VLAN, a macvlan, a bond) by index, with the devices the
/// program runs on for them (`dataplane::lower`). A device not in it carries the program
/// itself, untagged.
pub type Lowers = BTreeMap<u32, Vec<dataplane::Lower>>;

/// The (ifindex, VLAN) pairs the program sees `ifindex`'s frames under: where map entries
/// for it are keyed.
pub fn keyed_as(lowers: &Lowers, ifindex: u32) -> Vec<(u32, u16)> {
    match lowers.get(&ifindex) {
        Some(l) => l.iter().map(|l| (l.ifindex, l.vlan)).collect(),
        None => vec![(ifindex, 0)],
    }
}

/// Every address the data plane answers for `inst` (VIPs, then proxy addresses; see
/// [`Instance::answered`]) with the index and MAC of its device.
pub fn answered_on<'a>(
    inst: &'a Instance,
    devs: &'a Devices,
) -> impl Iterator<Item = (u32, [u8; 6], IpAddr)> + 'a {
    inst.answered()
        .filter_map(|(dev, a)| devs.get(dev).map(|(ifx, mac)| (*ifx, *mac, a)))
}

/// Writes every entry of `inst` for group slot `slot`: its VIPs on their devices, and its
/// admission policy, allowed peers and virtual MAC on its VRRP interface `ifindex`; for an
/// upper device, keyed as the devices below it see its frames (`lowers`).
pub fn write(
    maps: &mut Maps,
    ifindex: u32,
    if_mac: [u8; 6],
    devs: &Devices,
    slot: u32,
    inst: &Instance,
    lowers: &Lowers,
) -> dataplane::Result<()> {
    let mut flags = 0;
    if inst.vmac {
        flags |= VIP_F_VMAC;
    }
    if inst.is_owner() {
        flags |= VIP_F_OWNER;
    }
    for (dev_ifindex, dev_mac, addr) in answered_on(inst, devs) {
        let mac = if inst.vmac {
            inst.vmac_address()
        } else {
            dev_mac
        };
        for (ifx, vlan) in keyed_as(lowers, dev_ifindex) {
            maps.add_vip(vip_key_on(ifx, vlan, addr), VipValue { slot, mac, flags })?;
        }
    }
    // A shared VIP: this group's member entry, then the VIP's own entry that sends the
    // program to the members (every member writes the same flags; see
    // `vip_common::VIP_F_SHARED`). Always from the virtual MAC (validation requires it).
    for s in &inst.shared_vips {
        let mac = inst.vmac_address();
        for (ifx, vlan) in keyed_as(lowers, ifindex) {
            let key = vip_key_on(ifx, vlan, s.addr);
            maps.add_vip(
                key.shared_member(s.member),
                VipValue {
                    slot,
                    mac,
                    flags: VIP_F_VMAC,
                },
            )?;
            maps.add_vip(
                key,
                VipValue {
                    slot,
                    mac,
                    flags: shared_vip_flags(s.members),
                },
            )?;
        }
    }
    // The program cannot check CARP's HMAC: for a CARP virtual host it checks only what
    // needs no secret and never releases the slot (docs/carp.md).
    let mut policy = if inst.identity.is_carp() {
        Policy::carp(slot)
    } else {
        Policy::new(inst.identity.version.number(), slot)
    };
    if !inst.admission.allowed_peers.is_empty() {
        policy = policy.with_allowlist();
    }
    if let Some(p) = inst.admission.auth_pass {
        // The program refuses v2 adverts whose password differs (or that carry one when
        // none is configured), exactly as `vrrp::admission` does.
        policy.flags |= POLICY_F_AUTH;
        policy.auth = p;
    }
    for (ifx, vlan) in keyed_as(lowers, ifindex) {
        // Peers before the policy that turns the allowlist on: a reload adding
        // `allowed_peers` to a running instance never drops its peer's adverts in between.
        for peer in &inst.admission.allowed_peers {
            maps.add_peer(peer_key(ifx, vlan, inst, *peer))?;
        }
        maps.set_policy(policy_key_on(ifx, vlan, inst), policy)?;
        if inst.vmac {
            // The host MAC before the VMAC: from the first frame the program readdresses,
            // the tc classifier hands it to the host.
            maps.add_host_mac(host_mac_key(ifx, if_mac))?;
            maps.add_vmac(
                vmac_key(ifx, vlan, inst),
                VmacValue {
                    slot,
                    if_mac,
                    _pad: [0; 2],
                },
            )?;
        }
    }
    Ok(())
}

/// The entries the running groups need, for [`prune`].
#[derive(Debug, Default)]
pub struct InUse {
    vips: HashSet<VipKey>,
    policies: HashSet<PolicyKey>,
    peers: HashSet<PeerKey>,
    vmacs: HashSet<VmacKey>,
    host_macs: HashSet<HostMacKey>,
    slots: HashSet<u32>,
}

impl InUse {
    pub fn add(
        &mut self,
        ifindex: u32,
        devs: &Devices,
        slot: u32,
        inst: &Instance,
        lowers: &Lowers,
    ) {
        self.slots.insert(slot);
        for (dev_ifindex, _, addr) in answered_on(inst, devs) {
            for (ifx, vlan) in keyed_as(lowers, dev_ifindex) {
                self.vips.insert(vip_key_on(ifx, vlan, addr));
            }
        }
        for (ifx, vlan) in keyed_as(lowers, ifindex) {
            for s in &inst.shared_vips {
                let key = vip_key_on(ifx, vlan, s.addr);
                self.vips.insert(key);
                self.vips.insert(key.shared_member(s.member));
            }
            self.policies.insert(policy_key_on(ifx, vlan, inst));
            for p in &inst.admission.allowed_peers {
                self.peers.insert(peer_key(ifx, vlan, inst, *p));
            }
            if inst.vmac {
                self.vmacs.insert(vmac_key(ifx, vlan, inst));
                // The MAC `write` readdresses to: the instance's interface's.
                let if_mac = devs
                    .get(&inst.identity.interface)
                    .map_or([0; 6], |(_, m)| *m);
                self.host_macs.insert(host_mac_key(ifx, if_mac));
            }
        }
    }
}

/// Removes every entry no running group uses (an instance deleted by a reload or while
/// vipd was down, a group that failed to start) and releases slots no group uses.
/// Returns how many entries went.
pub fn prune(maps: &mut Maps, in_use: &InUse) -> usize {
    let mut removed = 0usize;
    for (k, _) in maps.vips().unwrap_or_default() {
        if !in_use.vips.contains(&k) {
            removed += usize::from(maps.remove_vip(&k).is_ok());
        }
    }
    for (k, p) in maps.policies().unwrap_or_default() {
        // Per-interface entries are the interfaces' options, not an instance's.
        if k.vrid == INTERFACE_VRID {
            continue;
        }
        if !in_use.policies.contains(&k) {
            removed += usize::from(maps.remove_policy(&k).is_ok());
            if !in_use.slots.contains(&p.slot) {
                let _ = maps.set_group(p.slot, GroupState::released());
            }
        }
    }
    for k in maps.peers().unwrap_or_default() {
        if !in_use.peers.contains(&k) {
            removed += usize::from(maps.remove_peer(&k).is_ok());
        }
    }
    for (k, _) in maps.vmacs().unwrap_or_default() {
        if !in_use.vmacs.contains(&k) {
            removed += usize::from(maps.remove_vmac(&k).is_ok());
        }
    }
    for k in maps.host_macs().unwrap_or_default() {
        if !in_use.host_macs.contains(&k) {
            removed += usize::from(maps.remove_host_mac(&k).is_ok());
        }
    }
    removed
}

/// The data plane's last release of a slot (see `vip_common::Release`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// How many releases the slot has seen: a change means a new one.
    pub count: u64,
    pub vrid: u8,
    pub src: IpAddr,
    pub priority: u8,
    pub interval: crate::vrrp::Interval,
}

/// Reads slot `slot`'s release record.
pub fn read_release(maps: &Maps, slot: u32) -> Option<Released> {
    let r = maps.release(slot).ok()?;
    let src = if r.family == FAMILY_IPV4 {
        IpAddr::from([r.src[0], r.src[1], r.src[2], r.src[3]])
    } else {
        IpAddr::from(r.src)
    };
    Some(Released {
        count: r.count,
        vrid: r.vrid,
        src,
        priority: r.priority,
        interval: crate::vrrp::Interval::from_centis(r.interval_centis)
            .unwrap_or(crate::vrrp::Interval::DEFAULT),
    })
}

/// Sets each attached interface's foreign-VRRP option (both families, untagged) from the
/// configuration: passing to the kernel is the default and needs no entry.
pub fn write_interface_options(
    maps: &mut Maps,
    attached: &BTreeMap<u32, String>,
    config: &crate::config::Config,
) {
    for (ifindex, name) in attached {
        let drop = config.interface_options(name).foreign_vrrp == crate::config::ForeignVrrp::Drop;
        for family in [FAMILY_IPV4, FAMILY_IPV6] {
            if let Err(e) = maps.set_interface_policy(*ifindex, 0, family, drop) {
                tracing::warn!(interface = %name, error = %crate::error_chain(&e), "could not set the foreign-VRRP option");
            }
        }
    }
}
