//! VRRP admission (RFC 5798 §7.1 receive checks that need no state) for the virtual
//! routers vipd runs: drop what fails, pass the rest to the daemon.
//!
//! A packet is first attributed by its VRID. VRRP for a VRID with no policy on the
//! interface belongs to another speaker on the host (keepalived, FRR) and passes to the
//! kernel untouched, unless the interface's entry asks for such VRRP to be dropped; so
//! nothing is dropped before the VRID is known, and a frame too short to show it cannot
//! be attributed. For our own VRIDs, cheap checks come first, so a flood of forged adverts
//! from an unlisted source is dropped before any checksum is computed.
//!
//! These rules are the daemon's too (`vip_common::Policy::admits_v2_auth` is shared): the
//! program releases an owned slot on an advert it admits, so it must admit exactly what
//! the daemon would.
//!
//! CARP shares protocol 112: every packet is first classified by layout
//! (`vip_common::wire::classify_proto112`, which the daemon uses too) and CARP goes to
//! `carp`, which never releases a slot.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use vip_common::{
    FAMILY_IPV4, FAMILY_IPV6, INTERFACE_VRID, POLICY_F_ALLOWLIST, POLICY_F_DROP_FOREIGN, PeerKey,
    Policy, PolicyKey, Release, v4_in_16,
    wire::{IPPROTO_UDP, IPPROTO_VRRP, Proto112, VRRP_TTL},
};

use crate::{
    bfd, carp, csum,
    frame::{L2, beyond_first_buffer, len, ptr_at},
    ipv6::{Ipv6Hdr, Upper, pseudo_sum},
    maps::{PEERS, VRRP_POLICY, count, yield_if_superseded},
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

/// IPv4 fragment offset and More Fragments bits.
pub const IP_OFFSET: u16 = 0x1fff;
pub const IP_MF: u16 = 0x2000;

/// The first two bytes of VRRP: all it takes to attribute a packet to a virtual router.
#[repr(C)]
struct VrrpId {
    _ver_type: u8,
    vrid: u8,
}

#[repr(C)]
struct VrrpHdr {
    ver_type: u8,
    vrid: u8,
    priority: u8,
    count: u8,
    /// v3: 4 reserved bits + 12-bit Max Adver Int (centiseconds); v2: auth type, then
    /// Adver Int (seconds).
    interval: [u8; 2],
    _csum: [u8; 2],
}

const VRRP_HLEN: usize = 8;
/// v2 carries 8 bytes of authentication data after the addresses.
const V2_AUTH_LEN: usize = 8;
/// 8 + 255 × 4 + 8 bytes.
const V4_MAX_WORDS: usize = 259;
/// 8 + 255 × 16 bytes.
const V6_MAX_WORDS: usize = 1022;

/// An IPv4 packet: VRRP is judged, UDP goes to `bfd`, everything else passes.
#[inline(always)]
pub fn handle_v4(ctx: &XdpContext, l2: &L2, ifindex: u32) -> u32 {
    let Some(ip) = ptr_at::<Ipv4Hdr>(ctx, l2.l3) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at proved the header is inside the frame.
    let ip = unsafe { &*ip };
    let ihl = ((ip.ver_ihl & 0x0f) as usize) * 4;
    if ip.ver_ihl >> 4 != 4 || ihl < 20 {
        return xdp_action::XDP_PASS;
    }
    if ip.proto != IPPROTO_VRRP {
        if ip.proto == IPPROTO_UDP {
            // BFD is a few packets a second. Cold, so the compiler tests for UDP after
            // VRRP, not before (it orders the tests by value otherwise), and lays BFD
            // out of the other paths' way.
            core::hint::cold_path();
            return bfd::handle_v4(ctx, l2, ifindex, ip, ihl);
        }
        return xdp_action::XDP_PASS;
    }
    let frag = u16::from_be_bytes(ip.frag);
    // A later fragment holds no VRRP header to attribute it by; its first fragment
    // (dropped below if it is ours) decides whether it is ever reassembled.
    if frag & IP_OFFSET != 0 {
        return xdp_action::XDP_PASS;
    }
    let off = l2.l3 + ihl;
    let tot_len = u16::from_be_bytes(ip.tot_len) as usize;
    let kind = carp::classify(ctx, off, tot_len.saturating_sub(ihl), false);
    if kind == Proto112::Carp {
        let carp_ip = carp::Ip {
            family: FAMILY_IPV4,
            ttl: ip.ttl,
            fragment: frag & IP_MF != 0,
            saddr: v4_in_16(ip.saddr),
            len: (tot_len >= ihl && l2.l3 + tot_len <= len(ctx)).then(|| tot_len - ihl),
        };
        return carp::handle(ctx, off, ifindex, l2.vlan, &carp_ip);
    }
    let policy = match attribute(
        ctx,
        off,
        PolicyKey::interface(ifindex, l2.vlan, FAMILY_IPV4),
        kind == Proto112::Malformed2,
    ) {
        Ok(p) => p,
        Err(verdict) => return verdict,
    };
    // VRRP is never fragmented.
    if frag & IP_MF != 0 {
        count(|c| &mut c.vrrp_drop_fragment);
        return xdp_action::XDP_DROP;
    }
    if tot_len >= ihl + VRRP_HLEN && beyond_first_buffer(ctx, l2.l3 + tot_len) {
        return unread();
    }
    if tot_len < ihl + VRRP_HLEN || l2.l3 + tot_len > len(ctx) {
        count(|c| &mut c.vrrp_drop_length);
        return xdp_action::XDP_DROP;
    }
    if ip.ttl != VRRP_TTL {
        count(|c| &mut c.vrrp_drop_ttl);
        return xdp_action::XDP_DROP;
    }
    let vrrp_len = tot_len - ihl;
    let peer = PeerKey {
        ifindex,
        vlan: l2.vlan,
        family: FAMILY_IPV4,
        vrid: 0,
        addr: v4_in_16(ip.saddr),
    };
    let advert = match admit(ctx, off, vrrp_len, 4, &policy, peer) {
        Ok(a) => a,
        Err(verdict) => return verdict,
    };
    let Some(message) = csum::add_frame_long::<V4_MAX_WORDS>(ctx, 0, off, vrrp_len) else {
        return verdict(None, policy.slot, &advert);
    };
    // v2 sums the message alone. v3 over IPv4 adds the pseudo-header in RFC 5798 (what
    // keepalived and FRR send); RFC 9568 §5.2.8 sums the message alone: accept either.
    if advert.version == 3 {
        let mut pseudo = csum::add(0, &ip.saddr);
        pseudo = csum::add(pseudo, &ip.daddr);
        pseudo += IPPROTO_VRRP as u64 + vrrp_len as u64;
        if csum::fold(message + pseudo) == 0xffff {
            return verdict(Some(message + pseudo), policy.slot, &advert);
        }
    }
    verdict(Some(message), policy.slot, &advert)
}

/// An IPv6 packet whose upper-layer header (at `up.off`, after any extension headers) is
/// VRRP.
#[inline(always)]
pub fn handle_v6(ctx: &XdpContext, l2: &L2, ifindex: u32, ip: &Ipv6Hdr, up: &Upper) -> u32 {
    // The payload length counts the extension headers; VRRP's length is what follows.
    let claimed = (u16::from_be_bytes(ip.payload_len) as usize).checked_sub(up.ext_len);
    if carp::classify(ctx, up.off, claimed.unwrap_or(0), true) == Proto112::Carp {
        let carp_ip = carp::Ip {
            family: FAMILY_IPV6,
            ttl: ip.hop_limit,
            fragment: up.fragment,
            saddr: ip.saddr,
            len: claimed.filter(|&n| up.off + n <= len(ctx)),
        };
        return carp::handle(ctx, up.off, ifindex, l2.vlan, &carp_ip);
    }
    let policy = match attribute(
        ctx,
        up.off,
        PolicyKey::interface(ifindex, l2.vlan, FAMILY_IPV6),
        false,
    ) {
        Ok(p) => p,
        Err(verdict) => return verdict,
    };
    if up.fragment {
        count(|c| &mut c.vrrp_drop_fragment);
        return xdp_action::XDP_DROP;
    }
    if claimed.is_some_and(|n| n >= VRRP_HLEN && beyond_first_buffer(ctx, up.off + n)) {
        return unread();
    }
    let Some(vrrp_len) = claimed.filter(|&n| n >= VRRP_HLEN && up.off + n <= len(ctx)) else {
        count(|c| &mut c.vrrp_drop_length);
        return xdp_action::XDP_DROP;
    };
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
    let advert = match admit(ctx, up.off, vrrp_len, 16, &policy, peer) {
        Ok(a) => a,
        Err(verdict) => return verdict,
    };
    let sum = pseudo_sum(&ip.saddr, &ip.daddr, vrrp_len as u32, IPPROTO_VRRP);
    verdict(
        csum::add_frame_long::<V6_MAX_WORDS>(ctx, sum, up.off, vrrp_len),
        policy.slot,
        &advert,
    )
}

/// An advertisement of ours that goes on past the first buffer of a jumbo frame (some
/// 200 IPv6 addresses or more): the program cannot sum it, so it neither admits nor
/// drops it. It passes to the daemon, whose admission is the same, without releasing a
/// slot here; counted. (Inlined: a second function in `.text` beside the `bpf_loop`
/// callback would need the loader to relocate the callback's address among them.)
#[inline(always)]
fn unread() -> u32 {
    count(|c| &mut c.multi_buffer_pass);
    xdp_action::XDP_PASS
}

/// The policy of the virtual router VRRP at `off` is for, or the verdict for VRRP that is
/// not ours: passed untouched (`vrrp_foreign`), or dropped (`vrrp_drop_vrid`) when the
/// interface's entry (`iface`, keyed by [`INTERFACE_VRID`]) says to drop foreign VRRP.
/// With `or_carp` (a message that may be malformed CARP as well as malformed VRRPv2), a
/// CARP group of the same id, when no VRRP group has it, judges it instead.
#[inline(always)]
fn attribute(
    ctx: &XdpContext,
    off: usize,
    mut iface: PolicyKey,
    or_carp: bool,
) -> Result<Policy, u32> {
    if let Some(id) = ptr_at::<VrrpId>(ctx, off) {
        // SAFETY: ptr_at proved the two bytes are inside the frame.
        let vrid = unsafe { (*id).vrid };
        // VRID 0 is invalid; its key is the interface entry, never a virtual router.
        if vrid != INTERFACE_VRID {
            let key = PolicyKey { vrid, ..iface };
            // SAFETY: read once, immediately, from the lookup's pointer.
            if let Some(policy) = VRRP_POLICY.get_ptr(key).map(|p| unsafe { *p }) {
                return Ok(policy);
            }
            if or_carp
                && let Some(verdict) =
                    carp::malformed(iface.ifindex, iface.vlan, iface.family, vrid)
            {
                return Err(verdict);
            }
        }
    }
    iface.vrid = INTERFACE_VRID;
    // SAFETY: as above.
    let flags = VRRP_POLICY
        .get_ptr(iface)
        .map_or(0, |p| unsafe { (*p).flags });
    if flags & POLICY_F_DROP_FOREIGN != 0 {
        count(|c| &mut c.vrrp_drop_vrid);
        Err(xdp_action::XDP_DROP)
    } else {
        count(|c| &mut c.vrrp_foreign);
        Err(xdp_action::XDP_PASS)
    }
}

/// Version, type, count, length, interval, authentication and allowlist checks of VRRP
/// for one of our virtual routers; counts and returns `Err(verdict)` when the advert is
/// not to be acted on: dropped, or (the other VRRP version from an admitted source)
/// passed for the daemon to report without ever releasing a slot. On success, the advert
/// as a release record would describe it.
#[inline(always)]
fn admit(
    ctx: &XdpContext,
    off: usize,
    vrrp_len: usize,
    addr_len: usize,
    policy: &Policy,
    mut peer: PeerKey,
) -> Result<Release, u32> {
    const DROP: u32 = xdp_action::XDP_DROP;
    let Some(h) = ptr_at::<VrrpHdr>(ctx, off) else {
        count(|c| &mut c.vrrp_drop_length);
        return Err(DROP);
    };
    // SAFETY: ptr_at proved the header is inside the frame.
    let h = unsafe { &*h };
    let version = h.ver_type >> 4;
    if version != 2 && version != 3 {
        count(|c| &mut c.vrrp_drop_version);
        return Err(DROP);
    }
    if h.ver_type & 0x0f != 1 {
        count(|c| &mut c.vrrp_drop_type);
        return Err(DROP);
    }
    // v2 exists only over IPv4 (RFC 3768).
    if version == 2 && addr_len != 4 {
        count(|c| &mut c.vrrp_drop_version);
        return Err(DROP);
    }
    if version != policy.version {
        // A configuration mismatch the daemon reports per instance (and never acts on);
        // an allowlist still keeps unlisted sources from reaching it.
        if policy.flags & POLICY_F_ALLOWLIST != 0 {
            peer.vrid = h.vrid;
            if PEERS.get_ptr(peer).is_none() {
                count(|c| &mut c.vrrp_drop_peer);
                return Err(DROP);
            }
        }
        count(|c| &mut c.vrrp_version_mismatch);
        return Err(xdp_action::XDP_PASS);
    }
    if h.count == 0 {
        count(|c| &mut c.vrrp_drop_count);
        return Err(DROP);
    }
    let auth = if version == 2 { V2_AUTH_LEN } else { 0 };
    if vrrp_len != VRRP_HLEN + h.count as usize * addr_len + auth {
        count(|c| &mut c.vrrp_drop_length);
        return Err(DROP);
    }
    let interval_centis = if version == 3 {
        u16::from_be_bytes(h.interval) & 0x0fff
    } else {
        h.interval[1] as u16 * 100
    };
    // RFC 5798 errata 8299 / 8301: a zero interval would make a backup's timers fire at
    // once, over and over.
    if interval_centis == 0 {
        count(|c| &mut c.vrrp_drop_interval);
        return Err(DROP);
    }
    if version == 2 {
        // After the addresses (the length check above proved it ends the message).
        // Counted from the header, not back from the end: the verifier refuses a read
        // below a packet pointer, which is what `end - 8` compiles to.
        let auth_off = off + VRRP_HLEN + h.count as usize * addr_len;
        let Some(data) = ptr_at::<[u8; V2_AUTH_LEN]>(ctx, auth_off) else {
            count(|c| &mut c.vrrp_drop_length);
            return Err(DROP);
        };
        // SAFETY: ptr_at proved the 8 bytes are inside the frame.
        if !policy.admits_v2_auth(h.interval[0], unsafe { &*data }) {
            count(|c| &mut c.vrrp_drop_auth);
            return Err(DROP);
        }
    }
    if policy.flags & POLICY_F_ALLOWLIST != 0 {
        peer.vrid = h.vrid;
        if PEERS.get_ptr(peer).is_none() {
            count(|c| &mut c.vrrp_drop_peer);
            return Err(DROP);
        }
    }
    Ok(Release {
        count: 0,
        at_ns: 0,
        src: peer.addr,
        family: peer.family,
        vrid: h.vrid,
        priority: h.priority,
        version,
        interval_centis,
        _pad: [0; 10],
    })
}

/// Passes a valid advertisement (after letting it release a superseded slot) or drops
/// and counts an invalid one.
#[inline(always)]
fn verdict(sum: Option<u64>, slot: u32, advert: &Release) -> u32 {
    match sum {
        Some(s) if csum::fold(s) == 0xffff => {
            yield_if_superseded(slot, advert);
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
