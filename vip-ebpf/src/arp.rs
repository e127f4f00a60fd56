//! ARP for IPv4 VIPs: requests for owned VIPs are answered in place; requests for VIPs
//! this node does not own are dropped so a stale address never makes the kernel answer;
//! anyone else claiming an owned VIP is counted as a conflict.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use vip_common::VipKey;

use crate::{
    frame::{L2, ptr_at},
    maps::{Ownership, count, ownership, record_conflict, refuse_unless_answering, vip},
};

/// The ARP body in 16-bit words, as it sits in the frame (network byte order). Every
/// field of Ethernet ARP is 2-byte aligned once the frame is (Linux keeps Ethernet frames
/// at least 2-byte aligned), so the reply is written a word at a time: half the
/// instructions of byte copies on the hottest path the program has.
#[repr(C)]
struct ArpIpv4 {
    htype: u16,
    ptype: u16,
    hlen: u8,
    plen: u8,
    oper: u16,
    sha: [u16; 3],
    spa: [u16; 2],
    tha: [u16; 3],
    tpa: [u16; 2],
}

/// The MAC addresses of the Ethernet header, in words like [`ArpIpv4`].
#[repr(C)]
struct EthAddrs {
    dst: [u16; 3],
    src: [u16; 3],
}

const OP_REQUEST: u16 = 1u16.to_be();
const OP_REPLY: u16 = 2u16.to_be();

/// Bytes of a word array, in frame order.
#[inline(always)]
fn bytes<const N: usize, const B: usize>(w: [u16; N]) -> [u8; B] {
    const { assert!(N * 2 == B) };
    // SAFETY: same size (asserted above); every bit pattern is valid for both.
    unsafe { core::mem::transmute_copy(&w) }
}

#[inline(always)]
fn words<const N: usize, const B: usize>(b: [u8; B]) -> [u16; N] {
    const { assert!(N * 2 == B) };
    // SAFETY: as in `bytes`.
    unsafe { core::mem::transmute_copy(&b) }
}

#[inline(always)]
pub fn handle(ctx: &XdpContext, l2: &L2, ifindex: u32) -> u32 {
    let Some(arp) = ptr_at::<ArpIpv4>(ctx, l2.l3) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at proved the ARP body is inside the frame; nothing else aliases it.
    let arp = unsafe { &mut *arp };
    if arp.htype != 1u16.to_be() || arp.ptype != 0x0800u16.to_be() || arp.hlen != 6 || arp.plen != 4
    {
        return xdp_action::XDP_PASS;
    }
    if arp.oper == OP_REQUEST {
        request(ctx, arp, l2, ifindex)
    } else if arp.oper == OP_REPLY {
        let key = VipKey::v4(ifindex, l2.vlan, bytes(arp.spa));
        if let Some(v) = vip(&key)
            && matches!(ownership(v.slot), Ownership::Answering)
            && arp.sha != words(v.mac)
        {
            record_conflict(&key, bytes(arp.sha));
        }
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_PASS
    }
}

#[inline(always)]
fn request(ctx: &XdpContext, arp: &mut ArpIpv4, l2: &L2, ifindex: u32) -> u32 {
    let key = VipKey::v4(ifindex, l2.vlan, bytes(arp.tpa));
    let Some(v) = vip(&key) else {
        return xdp_action::XDP_PASS;
    };
    if let Some(verdict) = refuse_unless_answering(v.slot) {
        return verdict;
    }
    let mac: [u16; 3] = words(v.mac);
    // A gratuitous request announces the sender's binding; it asks nothing.
    if arp.spa == arp.tpa {
        if arp.sha != mac {
            record_conflict(&key, bytes(arp.sha));
        }
        return xdp_action::XDP_PASS;
    }
    let Some(eth) = ptr_at::<EthAddrs>(ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at proved the header is inside the frame; it does not overlap `arp`.
    let eth = unsafe { &mut *eth };
    eth.dst = eth.src;
    eth.src = mac;
    arp.oper = OP_REPLY;
    arp.tha = arp.sha;
    let vip = arp.tpa;
    arp.tpa = arp.spa;
    arp.sha = mac;
    arp.spa = vip;
    count(|c| &mut c.arp_reply);
    xdp_action::XDP_TX
}
