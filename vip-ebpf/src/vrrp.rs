//! VRRP admission (RFC 5798 §7.1 receive checks that need no state): drop what fails,
//! pass the rest to the daemon. Cheap checks first, so a flood of forged adverts from an
//! unlisted source is dropped before any checksum is computed.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use vip_common::{
    FAMILY_IPV4, FAMILY_IPV6, POLICY_F_ALLOWLIST, PeerKey, PolicyKey, v4_in_16,
    wire::{IPPROTO_VRRP, VRRP_TTL},
};

use crate::{
    csum,
    frame::{L2, len, ptr_at},
    maps::{PEERS, VRRP_POLICY, count, yield_if_superseded},
    ndp::{IPV6_HLEN, Ipv6Hdr, pseudo_sum_proto},
};

#[repr(C)]
pub struct Ipv4Hdr {
    pub ver_ihl: u8,
    pub tos: u8,
    pub tot_len: [u8; 2],
    pub id: [u8; 2],
    pub frag: [u8; 2],
    pub ttl: u8,
    pub proto: u8,
    pub csum: [u8; 2],
    pub saddr: [u8; 4],
    pub daddr: [u8; 4],
}

#[repr(C)]
struct VrrpHdr {
    ver_type: u8,
    vrid: u8,
    priority: u8,
    count: u8,
    /// v3: reserved + Max Adver Int; v2: auth type + Adver Int.
    _interval: [u8; 2],
    _csum: [u8; 2],
}

const VRRP_HLEN: usize = 8;
/// v2 carries 8 bytes of authentication data after the addresses.
const V2_AUTH_LEN: usize = 8;
/// 8 + 255 × 4 + 8 bytes.
const V4_MAX_WORDS: usize = 259;
/// 8 + 255 × 16 bytes.
const V6_MAX_WORDS: usize = 1022;

struct Admitted {
    version: u8,
    priority: u8,
    slot: u32,
}

/// An IPv4 packet: VRRP is judged, everything else passes.
#[inline(always)]
pub fn handle_v4(ctx: &XdpContext, l2: &L2, ifindex: u32) -> u32 {
    let Some(ip) = ptr_at::<Ipv4Hdr>(ctx, l2.l3) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at proved the header is inside the frame.
    let ip = unsafe { &*ip };
    let ihl = ((ip.ver_ihl & 0x0f) as usize) * 4;
    if ip.ver_ihl >> 4 != 4 || ihl < 20 || ip.proto != IPPROTO_VRRP {
        return xdp_action::XDP_PASS;
    }
    let tot_len = u16::from_be_bytes(ip.tot_len) as usize;
    let frag = u16::from_be_bytes(ip.frag);
    // VRRP is never fragmented; a fragment or a length the frame cannot hold is malformed.
    if tot_len < ihl + VRRP_HLEN || l2.l3 + tot_len > len(ctx) || frag & 0x3fff != 0 {
        count(|c| &mut c.vrrp_drop_length);
        return xdp_action::XDP_DROP;
    }
    if ip.ttl != VRRP_TTL {
        count(|c| &mut c.vrrp_drop_ttl);
        return xdp_action::XDP_DROP;
    }
    let off = l2.l3 + ihl;
    let vrrp_len = tot_len - ihl;
    let peer = PeerKey {
        ifindex,
        vlan: l2.vlan,
        family: FAMILY_IPV4,
        vrid: 0,
        addr: v4_in_16(ip.saddr),
    };
    let Ok(admitted) = admit(ctx, off, vrrp_len, 4, peer) else {
        return xdp_action::XDP_DROP;
    };
    let Some(message) = csum::add_frame::<V4_MAX_WORDS>(ctx, 0, off, vrrp_len) else {
        return verdict(None, &admitted);
    };
    // v2 sums the message alone. v3 over IPv4 adds the pseudo-header in RFC 5798 (what
    // keepalived and FRR send); RFC 9568 §5.2.8 sums the message alone: accept either.
    if admitted.version == 3 {
        let mut pseudo = csum::add(0, &ip.saddr);
        pseudo = csum::add(pseudo, &ip.daddr);
        pseudo += IPPROTO_VRRP as u64 + vrrp_len as u64;
        if csum::fold(message + pseudo) == 0xffff {
            return verdict(Some(message + pseudo), &admitted);
        }
    }
    verdict(Some(message), &admitted)
}

/// An IPv6 packet whose next header is VRRP.
#[inline(always)]
pub fn handle_v6(ctx: &XdpContext, l2: &L2, ifindex: u32) -> u32 {
    let Some(ip) = ptr_at::<Ipv6Hdr>(ctx, l2.l3) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at proved the header is inside the frame.
    let ip = unsafe { &*ip };
    if ip.nexthdr != IPPROTO_VRRP {
        return xdp_action::XDP_PASS;
    }
    let vrrp_len = u16::from_be_bytes(ip.payload_len) as usize;
    let off = l2.l3 + IPV6_HLEN;
    if vrrp_len < VRRP_HLEN || off + vrrp_len > len(ctx) {
        count(|c| &mut c.vrrp_drop_length);
        return xdp_action::XDP_DROP;
    }
    if ip.hop_limit != VRRP_TTL {
        count(|c| &mut c.vrrp_drop_ttl);
        return xdp_action::XDP_DROP;
    }
    let peer = PeerKey {
        ifindex,
        vlan: l2.vlan,
        family: FAMILY_IPV6,
        vrid: 0,
        addr: ip.saddr,
    };
    let Ok(admitted) = admit(ctx, off, vrrp_len, 16, peer) else {
        return xdp_action::XDP_DROP;
    };
    let sum = pseudo_sum_proto(&ip.saddr, &ip.daddr, vrrp_len as u32, IPPROTO_VRRP);
    verdict(
        csum::add_frame::<V6_MAX_WORDS>(ctx, sum, off, vrrp_len),
        &admitted,
    )
}

/// Version, type, VRID, length and allowlist checks; counts and returns `Err` on a drop.
#[inline(always)]
fn admit(
    ctx: &XdpContext,
    off: usize,
    vrrp_len: usize,
    addr_len: usize,
    mut peer: PeerKey,
) -> Result<Admitted, ()> {
    let Some(h) = ptr_at::<VrrpHdr>(ctx, off) else {
        count(|c| &mut c.vrrp_drop_length);
        return Err(());
    };
    // SAFETY: ptr_at proved the header is inside the frame.
    let h = unsafe { &*h };
    let version = h.ver_type >> 4;
    if version != 2 && version != 3 {
        count(|c| &mut c.vrrp_drop_version);
        return Err(());
    }
    if h.ver_type & 0x0f != 1 {
        count(|c| &mut c.vrrp_drop_type);
        return Err(());
    }
    let key = PolicyKey {
        ifindex: peer.ifindex,
        vlan: peer.vlan,
        family: peer.family,
        vrid: h.vrid,
    };
    // SAFETY: read once, immediately, from the lookup's pointer.
    let Some(policy) = VRRP_POLICY.get_ptr(key).map(|p| unsafe { *p }) else {
        count(|c| &mut c.vrrp_drop_vrid);
        return Err(());
    };
    // v2 exists only over IPv4 (RFC 3768).
    if version != policy.version || (version == 2 && addr_len != 4) {
        count(|c| &mut c.vrrp_drop_version);
        return Err(());
    }
    let auth = if version == 2 { V2_AUTH_LEN } else { 0 };
    if vrrp_len != VRRP_HLEN + h.count as usize * addr_len + auth || h.count == 0 {
        count(|c| &mut c.vrrp_drop_length);
        return Err(());
    }
    if policy.flags & POLICY_F_ALLOWLIST != 0 {
        peer.vrid = h.vrid;
        if PEERS.get_ptr(peer).is_none() {
            count(|c| &mut c.vrrp_drop_peer);
            return Err(());
        }
    }
    Ok(Admitted {
        version,
        priority: h.priority,
        slot: policy.slot,
    })
}

/// Passes a valid advertisement (after letting it release a superseded slot) or drops
/// and counts an invalid one.
#[inline(always)]
fn verdict(sum: Option<u64>, admitted: &Admitted) -> u32 {
    match sum {
        Some(s) if csum::fold(s) == 0xffff => {
            yield_if_superseded(admitted.slot, admitted.priority);
            count(|c| &mut c.vrrp_pass);
            xdp_action::XDP_PASS
        }
        Some(_) => {
            count(|c| &mut c.vrrp_drop_checksum);
            xdp_action::XDP_DROP
        }
        None => {
            count(|c| &mut c.vrrp_drop_length);
            xdp_action::XDP_DROP
        }
    }
}
