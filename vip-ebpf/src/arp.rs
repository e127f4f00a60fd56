//! ARP for IPv4 VIPs: requests for owned VIPs are answered in place; requests for VIPs
//! this node does not own are dropped so a stale address never makes the kernel answer;
//! anyone else claiming an owned VIP is counted as a conflict.
//!
//! Only a station asking for itself is answered: the Ethernet source must be unicast and
//! be the sender hardware address, so nobody can aim the answer at a third party or a
//! group. The reply is trimmed to the ARP message, whatever padding the request carried.

use aya_ebpf::{bindings::xdp_action, helpers::bpf_xdp_adjust_tail, programs::XdpContext};
use vip_common::{VIP_F_SHARED, VipKey};

use crate::{
    frame::{L2, len, ptr_at, total_len},
    maps::{
        Ownership, count, count_shared, ownership, record_conflict, refuse_unless_answering, vip,
    },
    shared,
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

/// Bytes of the Ethernet/IPv4 ARP message: a reply is exactly the link header and this.
const ARP_LEN: usize = 28;
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

/// Whether the MAC in words `w` names one station: the I/G bit of its first octet clear.
#[inline(always)]
fn is_unicast(w: &[u16; 3]) -> bool {
    w[0].to_ne_bytes()[0] & 0x01 == 0
}

#[inline(always)]
pub fn handle(ctx: &XdpContext, l2: &L2, ifindex: u32) -> u32 {
    let Some(arp) = ptr_at::<ArpIpv4>(ctx, l2.l3) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at proved the ARP body is inside the frame; nothing writes it while
    // this reference lives (the reply re-derives its own).
    let arp = unsafe { &*arp };
    if arp.htype != 1u16.to_be() || arp.ptype != 0x0800u16.to_be() || arp.hlen != 6 || arp.plen != 4
    {
        return xdp_action::XDP_PASS;
    }
    if arp.oper == OP_REQUEST {
        request(ctx, arp, l2, ifindex)
    } else if arp.oper == OP_REPLY {
        let key = VipKey::v4(ifindex, l2.vlan, bytes(arp.spa));
        // For a shared VIP, the member that answers the replied-to station.
        if let Some(v) = vip(&key)
            && let Some(v) = shared::answering(&key, v, u32::from_be_bytes(bytes(arp.tpa)))
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
fn request(ctx: &XdpContext, arp: &ArpIpv4, l2: &L2, ifindex: u32) -> u32 {
    let key = VipKey::v4(ifindex, l2.vlan, bytes(arp.tpa));
    let Some(v) = vip(&key) else {
        return xdp_action::XDP_PASS;
    };
    let shared = v.flags & VIP_F_SHARED != 0;
    let Some(v) = shared::answering(&key, v, u32::from_be_bytes(bytes(arp.spa))) else {
        count(|c| &mut c.vip_not_owned);
        return xdp_action::XDP_DROP;
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
    // SAFETY: ptr_at proved the header is inside the frame.
    let eth = unsafe { &*eth };
    // Dropped, not passed: the kernel would answer it to the sender hardware address.
    if !is_unicast(&eth.src) || eth.src != arp.sha {
        count(|c| &mut c.arp_bad_source);
        return xdp_action::XDP_DROP;
    }
    let (requester_mac, requester_ip, vip) = (arp.sha, arp.spa, arp.tpa);
    // Only padding goes. A request padded past the first buffer of a jumbo frame is
    // passed instead: nothing legitimate sends one, and the kernel, which holds the VIP
    // while this node answers for it, may judge it. Told apart without a helper call on
    // the usual path (a request padded to the Ethernet minimum): on a frame of several
    // buffers the trim takes bytes off the last buffers and leaves the first as it was.
    let want = l2.l3 + ARP_LEN;
    let delta = want as i32 - len(ctx) as i32;
    let whole = if delta == 0 {
        total_len(ctx) == want
    } else {
        // SAFETY: the helper only moves data_end (or frees trailing buffers); every
        // pointer is re-derived below.
        let _ = unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta) };
        len(ctx) == want
    };
    if !whole {
        count(|c| &mut c.multi_buffer_pass);
        return xdp_action::XDP_PASS;
    }
    let (Some(eth), Some(arp)) = (ptr_at::<EthAddrs>(ctx, 0), ptr_at::<ArpIpv4>(ctx, l2.l3)) else {
        // Unreachable (the message was kept); the request is whole, so the kernel may
        // have it.
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at proved both are inside the trimmed frame; they do not overlap.
    let (eth, arp) = unsafe { (&mut *eth, &mut *arp) };
    eth.dst = requester_mac;
    eth.src = mac;
    arp.oper = OP_REPLY;
    arp.tha = requester_mac;
    arp.tpa = requester_ip;
    arp.sha = mac;
    arp.spa = vip;
    count(|c| &mut c.arp_reply);
    if shared {
        count_shared(v.slot);
    }
    xdp_action::XDP_TX
}
