//! Neighbor Solicitation for IPv6 VIPs, answered with a Neighbor Advertisement built in
//! place: Router and Override flags set (RFC 5798 §6.4.2 / §8.2), Solicited set unless the
//! NS came from the unspecified address (a DAD probe, answered to all-nodes per RFC 4861
//! §7.2.4), a target link-layer address option, and a correct ICMPv6 checksum.
//!
//! The NS may sit behind extension headers (`ipv6` finds it); the NA is rebuilt from the
//! IPv6 header on and carries none. Only a station asking for itself is answered: the
//! Ethernet source must be unicast and agree with any source link-layer address option,
//! so nobody can point the answer at a third party or a group.

use aya_ebpf::{bindings::xdp_action, helpers::bpf_xdp_adjust_tail, programs::XdpContext};
use vip_common::{
    VIP_F_SHARED, VipKey,
    wire::{IPPROTO_ICMPV6, VRRP_TTL},
};

use crate::{
    csum,
    frame::{EthHdr, L2, is_unicast, len, ptr_at, total_len},
    ipv6::{IPV6_HLEN, Ipv6Hdr, Upper, pseudo_sum},
    maps::{count, count_shared, refuse_unless_answering, vip},
    shared,
};

#[repr(C)]
struct NsHdr {
    icmp_type: u8,
    code: u8,
    csum: [u8; 2],
    reserved: [u8; 4],
    target: [u8; 16],
}

#[repr(C)]
struct Na {
    icmp_type: u8,
    code: u8,
    csum: [u8; 2],
    flags: [u8; 4],
    target: [u8; 16],
    opt_type: u8,
    opt_len: u8,
    tlla: [u8; 6],
}

/// An NDP option of one 8-octet unit: type, length, and for a link-layer address option
/// on Ethernet the address.
#[repr(C)]
struct NdOpt {
    kind: u8,
    len: u8,
    lladdr: [u8; 6],
}

const NS_LEN: usize = 24;
const NA_LEN: usize = 32;
const ICMPV6_NS: u8 = 135;
const ICMPV6_NA: u8 = 136;
const NA_ROUTER: u8 = 0x80;
const NA_SOLICITED: u8 = 0x40;
const NA_OVERRIDE: u8 = 0x20;
const OPT_SOURCE_LLA: u8 = 1;
const OPT_TARGET_LLA: u8 = 2;
/// Longest NS we checksum: header plus a few options. Longer ones go to the kernel.
const NS_MAX_WORDS: usize = 64;
/// The most options such an NS can hold (each at least 8 bytes).
const NS_MAX_OPTIONS: usize = (NS_MAX_WORDS * 4 - NS_LEN) / 8;
const ALL_NODES: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 0x01];

/// Handles an ICMPv6 message at `up.off`: answers NS for owned VIPs, passes everything
/// else.
#[inline(always)]
pub fn handle(ctx: &XdpContext, l2: &L2, ifindex: u32, ip: &Ipv6Hdr, up: &Upper) -> u32 {
    let Some(ns) = ptr_at::<NsHdr>(ctx, up.off) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at proved the header is inside the frame.
    let ns = unsafe { &*ns };
    // RFC 4861 §7.1.1: hop limit 255 and code 0, or the kernel discards it anyway. A
    // fragment is refused below whatever its hop limit.
    if ns.icmp_type != ICMPV6_NS || ns.code != 0 || (ip.hop_limit != VRRP_TTL && !up.fragment) {
        return xdp_action::XDP_PASS;
    }
    let key = VipKey::v6(ifindex, l2.vlan, ns.target);
    let Some(v) = vip(&key) else {
        return xdp_action::XDP_PASS;
    };
    // RFC 6980: NDP is never fragmented. The kernel discards such an NS too, but an
    // answer from here would be one it never gives.
    if up.fragment {
        count(|c| &mut c.ns_fragment);
        return xdp_action::XDP_DROP;
    }
    let low32 = [ip.saddr[12], ip.saddr[13], ip.saddr[14], ip.saddr[15]];
    let shared = v.flags & VIP_F_SHARED != 0;
    let Some(v) = shared::answering(&key, v, u32::from_be_bytes(low32)) else {
        count(|c| &mut c.vip_not_owned);
        return xdp_action::XDP_DROP;
    };
    if let Some(verdict) = refuse_unless_answering(v.slot) {
        return verdict;
    }
    let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at proved the header is inside the frame.
    let requester_mac = unsafe { (*eth).src };
    // Dropped, not passed: the kernel would answer it for the VIP.
    if !is_unicast(&requester_mac) {
        count(|c| &mut c.ns_bad_source);
        return xdp_action::XDP_DROP;
    }
    // Reaching past the first buffer of a jumbo frame: the options and checksum cannot be
    // read. The kernel, which holds the VIP while this node answers for it, may judge it.
    if total_len(ctx) != len(ctx) {
        count(|c| &mut c.multi_buffer_pass);
        return xdp_action::XDP_PASS;
    }
    // Only a well-formed NS is answered; anything odd is left for the kernel to judge.
    let Some(payload) = (u16::from_be_bytes(ip.payload_len) as usize).checked_sub(up.ext_len)
    else {
        return xdp_action::XDP_PASS;
    };
    if payload < NS_LEN
        || !payload.is_multiple_of(4)
        || payload > NS_MAX_WORDS * 4
        || up.off + payload > len(ctx)
    {
        return xdp_action::XDP_PASS;
    }
    let pseudo = pseudo_sum(&ip.saddr, &ip.daddr, payload as u32, IPPROTO_ICMPV6);
    let Some(sum) = csum::add_frame::<NS_MAX_WORDS>(ctx, pseudo, up.off, payload) else {
        return xdp_action::XDP_PASS;
    };
    if csum::fold(sum) != 0xffff {
        return xdp_action::XDP_PASS;
    }
    let dad = ip.saddr == [0u8; 16];
    match source_lladdr(ctx, up.off + NS_LEN, up.off + payload, &requester_mac) {
        SourceLladdr::Absent => {}
        SourceLladdr::Matches if !dad => {}
        SourceLladdr::Differs => {
            count(|c| &mut c.ns_bad_source);
            return xdp_action::XDP_DROP;
        }
        // Malformed options, or a DAD probe with a source address option (RFC 4861
        // §7.1.1 forbids it): the kernel discards both.
        _ => return xdp_action::XDP_PASS,
    }

    let (dst_ip, dst_mac) = if dad {
        (ALL_NODES, ALL_NODES_MAC)
    } else {
        (ip.saddr, requester_mac)
    };
    let target = ns.target;
    let flags = NA_ROUTER | NA_OVERRIDE | if dad { 0 } else { NA_SOLICITED };

    // From the IPv6 header on: any extension headers of the NS are overwritten.
    let want = l2.l3 + IPV6_HLEN + NA_LEN;
    let delta = want as i32 - len(ctx) as i32;
    // SAFETY: the helper only moves data_end; every pointer is re-derived below.
    if delta != 0 && unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta) } != 0 {
        return xdp_action::XDP_PASS;
    }
    let (Some(eth), Some(ip), Some(na)) = (
        ptr_at::<EthHdr>(ctx, 0),
        ptr_at::<Ipv6Hdr>(ctx, l2.l3),
        ptr_at::<Na>(ctx, l2.l3 + IPV6_HLEN),
    ) else {
        // The tail was already moved: a half-rewritten frame must not reach the stack.
        return xdp_action::XDP_DROP;
    };
    // SAFETY: ptr_at proved each is inside the resized frame; they do not overlap.
    let (eth, ip, na) = unsafe { (&mut *eth, &mut *ip, &mut *na) };
    eth.dst = dst_mac;
    eth.src = v.mac;
    ip.vtc_flow = [0x60, 0, 0, 0];
    ip.payload_len = (NA_LEN as u16).to_be_bytes();
    ip.nexthdr = IPPROTO_ICMPV6;
    ip.hop_limit = VRRP_TTL;
    ip.saddr = target;
    ip.daddr = dst_ip;
    na.icmp_type = ICMPV6_NA;
    na.code = 0;
    na.csum = [0, 0];
    na.flags = [flags, 0, 0, 0];
    na.target = target;
    na.opt_type = OPT_TARGET_LLA;
    na.opt_len = 1;
    na.tlla = v.mac;
    let mut sum = pseudo_sum(&target, &dst_ip, NA_LEN as u32, IPPROTO_ICMPV6);
    sum += u32::from_be_bytes([ICMPV6_NA, 0, 0, 0]) as u64;
    sum += u32::from_be_bytes([flags, 0, 0, 0]) as u64;
    sum = csum::add(sum, &target);
    sum += u32::from_be_bytes([OPT_TARGET_LLA, 1, v.mac[0], v.mac[1]]) as u64;
    sum += u32::from_be_bytes([v.mac[2], v.mac[3], v.mac[4], v.mac[5]]) as u64;
    na.csum = (!csum::fold(sum)).to_be_bytes();
    count(|c| &mut c.ns_reply);
    if shared {
        count_shared(v.slot);
    }
    xdp_action::XDP_TX
}

enum SourceLladdr {
    Absent,
    /// Every source link-layer address option is the Ethernet source.
    Matches,
    /// One is not (or is not an Ethernet address).
    Differs,
    /// An option of length zero or one running past the message (RFC 4861 §4.6).
    Malformed,
}

/// Checks the options between `off` and `end` (already proved inside the frame and at
/// most [`NS_MAX_WORDS`] words long) for source link-layer addresses.
#[inline(always)]
fn source_lladdr(ctx: &XdpContext, mut off: usize, end: usize, eth_src: &[u8; 6]) -> SourceLladdr {
    let mut seen = SourceLladdr::Absent;
    let mut i = 0;
    while i < NS_MAX_OPTIONS {
        if off >= end {
            break;
        }
        let Some(opt) = ptr_at::<NdOpt>(ctx, off) else {
            return SourceLladdr::Malformed;
        };
        // SAFETY: ptr_at proved the option's first 8 bytes are inside the frame.
        let opt = unsafe { &*opt };
        if opt.len == 0 {
            return SourceLladdr::Malformed;
        }
        if opt.kind == OPT_SOURCE_LLA {
            if opt.len != 1 || opt.lladdr != *eth_src {
                return SourceLladdr::Differs;
            }
            seen = SourceLladdr::Matches;
        }
        off += opt.len as usize * 8;
        i += 1;
    }
    if off != end {
        return SourceLladdr::Malformed;
    }
    seen
}
