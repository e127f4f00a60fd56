//! Neighbor Solicitation for IPv6 VIPs, answered with a Neighbor Advertisement built in
//! place: Router and Override flags set (RFC 5798 §6.4.2 / §8.2), Solicited set unless the
//! NS came from the unspecified address (a DAD probe, answered to all-nodes per RFC 4861
//! §7.2.4), a target link-layer address option, and a correct ICMPv6 checksum.

use aya_ebpf::{bindings::xdp_action, helpers::bpf_xdp_adjust_tail, programs::XdpContext};
use vip_common::{
    VipKey,
    wire::{IPPROTO_ICMPV6, VRRP_TTL},
};

use crate::{
    csum,
    frame::{EthHdr, L2, len, ptr_at},
    maps::{count, refuse_unless_answering, vip},
};

#[repr(C)]
pub struct Ipv6Hdr {
    pub vtc_flow: [u8; 4],
    pub payload_len: [u8; 2],
    pub nexthdr: u8,
    pub hop_limit: u8,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

pub const IPV6_HLEN: usize = 40;

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

const NA_LEN: usize = 32;
const ICMPV6_NS: u8 = 135;
const ICMPV6_NA: u8 = 136;
const NA_ROUTER: u8 = 0x80;
const NA_SOLICITED: u8 = 0x40;
const NA_OVERRIDE: u8 = 0x20;
const OPT_TARGET_LLA: u8 = 2;
/// Longest NS we checksum: header plus a few options. Longer ones go to the kernel.
const NS_MAX_WORDS: usize = 64;
const ALL_NODES: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 0x01];

/// Handles an ICMPv6 packet: answers NS for owned VIPs, passes everything else.
#[inline(always)]
pub fn handle(ctx: &XdpContext, l2: &L2, ifindex: u32) -> u32 {
    let Some(ip) = ptr_at::<Ipv6Hdr>(ctx, l2.l3) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at proved the header is inside the frame.
    let ip = unsafe { &*ip };
    let Some(ns) = ptr_at::<NsHdr>(ctx, l2.l3 + IPV6_HLEN) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: as above.
    let ns = unsafe { &*ns };
    // RFC 4861 §7.1.1: hop limit 255 and code 0, or the kernel discards it anyway.
    if ip.nexthdr != IPPROTO_ICMPV6
        || ns.icmp_type != ICMPV6_NS
        || ns.code != 0
        || ip.hop_limit != VRRP_TTL
    {
        return xdp_action::XDP_PASS;
    }
    let key = VipKey::v6(ifindex, l2.vlan, ns.target);
    let Some(v) = vip(&key) else {
        return xdp_action::XDP_PASS;
    };
    if let Some(verdict) = refuse_unless_answering(v.slot) {
        return verdict;
    }
    // Only a well-formed NS is answered; anything odd is left for the kernel to judge.
    let payload = u16::from_be_bytes(ip.payload_len) as usize;
    if payload < 24
        || !payload.is_multiple_of(4)
        || payload > NS_MAX_WORDS * 4
        || l2.l3 + IPV6_HLEN + payload > len(ctx)
    {
        return xdp_action::XDP_PASS;
    }
    let pseudo = pseudo_sum(&ip.saddr, &ip.daddr, payload as u32);
    let Some(sum) = csum::add_frame::<NS_MAX_WORDS>(ctx, pseudo, l2.l3 + IPV6_HLEN, payload) else {
        return xdp_action::XDP_PASS;
    };
    if csum::fold(sum) != 0xffff {
        return xdp_action::XDP_PASS;
    }

    let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at proved the header is inside the frame.
    let requester_mac = unsafe { (*eth).src };
    let dad = ip.saddr == [0u8; 16];
    let (dst_ip, dst_mac) = if dad {
        (ALL_NODES, ALL_NODES_MAC)
    } else {
        (ip.saddr, requester_mac)
    };
    let target = ns.target;
    let flags = NA_ROUTER | NA_OVERRIDE | if dad { 0 } else { NA_SOLICITED };

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
    let mut sum = pseudo_sum(&target, &dst_ip, NA_LEN as u32);
    sum += u32::from_be_bytes([ICMPV6_NA, 0, 0, 0]) as u64;
    sum += u32::from_be_bytes([flags, 0, 0, 0]) as u64;
    sum = csum::add(sum, &target);
    sum += u32::from_be_bytes([OPT_TARGET_LLA, 1, v.mac[0], v.mac[1]]) as u64;
    sum += u32::from_be_bytes([v.mac[2], v.mac[3], v.mac[4], v.mac[5]]) as u64;
    na.csum = (!csum::fold(sum)).to_be_bytes();
    count(|c| &mut c.ns_reply);
    xdp_action::XDP_TX
}

/// The IPv6 pseudo-header (RFC 8200 §8.1) for an ICMPv6 or VRRP payload of `len` bytes.
#[inline(always)]
pub fn pseudo_sum(src: &[u8; 16], dst: &[u8; 16], len: u32) -> u64 {
    pseudo_sum_proto(src, dst, len, IPPROTO_ICMPV6)
}

#[inline(always)]
pub fn pseudo_sum_proto(src: &[u8; 16], dst: &[u8; 16], len: u32, proto: u8) -> u64 {
    let mut sum = csum::add(0, src);
    sum = csum::add(sum, dst);
    sum + len as u64 + proto as u64
}
