//! CARP admission for the virtual hosts vipd runs: only what needs no secret.
//!
//! CARP shares IP protocol 112, the multicast groups and the TTL with VRRP;
//! `vip_common::wire::classify_proto112` tells the two apart by layout, and `vrrp` hands
//! what it calls CARP here. A CARP advertisement is authenticated by an HMAC over the
//! virtual host's addresses and a 64-bit counter, keyed by a passphrase the program does
//! not have: so the program drops only what is malformed (fragment, length, TTL, type,
//! checksum) or from a source outside the allowlist, passes the rest to the daemon, and
//! never releases a slot on a CARP advertisement. A forged or replayed advertisement
//! reaches the daemon, which refuses it; it moves nothing here.
//!
//! CARP for a VHID with no CARP policy on the interface is another speaker's (ucarp on
//! this host, a BSD firewall) and passes untouched, unless the interface asks for
//! foreign protocol-112 traffic to be dropped. CARP and VRRP entries live in separate key
//! spaces (`vip_common::FAMILY_F_CARP`), so VRRP VRID 7 and CARP VHID 7 on one link are
//! two groups.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use vip_common::{
    FAMILY_F_CARP, POLICY_F_ALLOWLIST, POLICY_F_CARP, POLICY_F_DROP_FOREIGN, PeerKey, Policy,
    PolicyKey,
    wire::{
        CARP_AUTHLEN, CARP_LEN, CARP_TYPE_ADVERTISEMENT, Proto112, VRRP_TTL, classify_proto112,
    },
};

use crate::{
    csum,
    frame::ptr_at,
    maps::{PEERS, VRRP_POLICY, count},
};

/// The first four bytes of a protocol-112 message: all [`classify`] reads.
#[repr(C)]
struct Head {
    ver_type: u8,
    id: u8,
    _b2: u8,
    fourth: u8,
}

/// Which protocol the message at `off`, `len` bytes long by its IP header, speaks. A
/// frame too short to show four bytes is left to VRRP's rules (which pass it untouched
/// when they cannot attribute it).
#[inline(always)]
pub fn classify(ctx: &XdpContext, off: usize, len: usize, ipv6: bool) -> Proto112 {
    match ptr_at::<Head>(ctx, off) {
        // SAFETY: ptr_at proved the four bytes are inside the frame.
        Some(h) => unsafe { classify_proto112((*h).ver_type, (*h).fourth, len, ipv6) },
        None => Proto112::Vrrp,
    }
}

/// What a CARP packet's verdict needs from its IP header.
pub struct Ip {
    /// `FAMILY_IPV4` or `FAMILY_IPV6`.
    pub family: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Any fragment (an IPv4 first fragment, an IPv6 fragment header).
    pub fragment: bool,
    /// Source address, IPv4 in the first 4 bytes.
    pub saddr: [u8; 16],
    /// The message length the IP header gives, when it is consistent and inside the
    /// frame.
    pub len: Option<usize>,
}

/// The verdict for a message [`classify`] called CARP, at `off`.
#[inline(always)]
pub fn handle(ctx: &XdpContext, off: usize, ifindex: u32, vlan: u16, ip: &Ip) -> u32 {
    const DROP: u32 = xdp_action::XDP_DROP;
    // Classification proved the first four bytes are in the frame.
    let Some(head) = ptr_at::<Head>(ctx, off) else {
        return foreign(ifindex, vlan, ip.family);
    };
    // SAFETY: ptr_at proved the bytes are inside the frame.
    let vhid = unsafe { (*head).id };
    let Some(policy) = policy(ifindex, vlan, ip.family, vhid) else {
        return foreign(ifindex, vlan, ip.family);
    };
    if ip.fragment {
        count(|c| &mut c.carp_drop_fragment);
        return DROP;
    }
    if ip.len != Some(CARP_LEN) {
        count(|c| &mut c.carp_drop_length);
        return DROP;
    }
    if ip.ttl != VRRP_TTL {
        count(|c| &mut c.carp_drop_ttl);
        return DROP;
    }
    let Some(msg) = ptr_at::<[u8; CARP_LEN]>(ctx, off) else {
        count(|c| &mut c.carp_drop_length);
        return DROP;
    };
    // SAFETY: ptr_at proved the 36 bytes are inside the frame.
    let msg = unsafe { &*msg };
    if msg[0] & 0x0f != CARP_TYPE_ADVERTISEMENT {
        count(|c| &mut c.carp_drop_type);
        return DROP;
    }
    // Implied over IPv4 by the classification, not over IPv6.
    if msg[3] != CARP_AUTHLEN {
        count(|c| &mut c.carp_drop_length);
        return DROP;
    }
    if policy.flags & POLICY_F_ALLOWLIST != 0 {
        let peer = PeerKey {
            ifindex,
            vlan,
            family: ip.family | FAMILY_F_CARP,
            vrid: vhid,
            addr: ip.saddr,
        };
        if PEERS.get_ptr(peer).is_none() {
            count(|c| &mut c.carp_drop_peer);
            return DROP;
        }
    }
    // CARP's checksum covers its 36 bytes alone, over either family: no pseudo-header.
    if csum::fold(csum::add(0, msg)) != 0xffff {
        count(|c| &mut c.carp_drop_checksum);
        return DROP;
    }
    count(|c| &mut c.carp_pass);
    xdp_action::XDP_PASS
}

/// For a version-2 IPv4 message in neither VRRPv2's nor CARP's layout, of an id no VRRP
/// group here has: dropped for its length (`carp_drop_length`) when a CARP group has the
/// id, `None` when none does either.
#[inline(always)]
pub fn malformed(ifindex: u32, vlan: u16, family: u8, id: u8) -> Option<u32> {
    policy(ifindex, vlan, family, id)?;
    count(|c| &mut c.carp_drop_length);
    Some(xdp_action::XDP_DROP)
}

#[inline(always)]
fn policy(ifindex: u32, vlan: u16, family: u8, vhid: u8) -> Option<Policy> {
    let key = PolicyKey::carp(ifindex, vlan, family, vhid);
    // SAFETY: read once, immediately, from the lookup's pointer.
    let policy = VRRP_POLICY.get_ptr(key).map(|p| unsafe { *p })?;
    // Only entries written as CARP policies count under CARP keys.
    (policy.flags & POLICY_F_CARP != 0).then_some(policy)
}

/// CARP of a virtual host not ours: passed untouched (`carp_foreign`), or dropped
/// (`vrrp_drop_vrid`) where the interface's entry asks for foreign VRRP to be dropped.
#[inline(always)]
fn foreign(ifindex: u32, vlan: u16, family: u8) -> u32 {
    let iface = PolicyKey::interface(ifindex, vlan, family);
    // SAFETY: read once, immediately, from the lookup's pointer.
    let flags = VRRP_POLICY
        .get_ptr(iface)
        .map_or(0, |p| unsafe { (*p).flags });
    if flags & POLICY_F_DROP_FOREIGN != 0 {
        count(|c| &mut c.vrrp_drop_vrid);
        xdp_action::XDP_DROP
    } else {
        count(|c| &mut c.carp_foreign);
        xdp_action::XDP_PASS
    }
}
