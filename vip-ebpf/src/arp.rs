//! ARP for IPv4 VIPs: requests for owned VIPs are answered in place; requests for VIPs
//! this node does not own are dropped so a stale address never makes the kernel answer;
//! anyone else claiming an owned VIP is counted as a conflict.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use vip_common::VipKey;

use crate::{
    frame::{EthHdr, L2, ptr_at},
    maps::{Ownership, count, ownership, record_conflict, refuse_unless_answering, vip},
};

#[repr(C)]
struct ArpIpv4 {
    htype: [u8; 2],
    ptype: [u8; 2],
    hlen: u8,
    plen: u8,
    oper: [u8; 2],
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
}

const OP_REQUEST: [u8; 2] = [0, 1];
const OP_REPLY: [u8; 2] = [0, 2];

#[inline(always)]
pub fn handle(ctx: &XdpContext, l2: &L2, ifindex: u32) -> u32 {
    let Some(arp) = ptr_at::<ArpIpv4>(ctx, l2.l3) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at proved the ARP body is inside the frame; nothing else aliases it.
    let arp = unsafe { &mut *arp };
    if arp.htype != [0, 1] || arp.ptype != [0x08, 0x00] || arp.hlen != 6 || arp.plen != 4 {
        return xdp_action::XDP_PASS;
    }
    if arp.oper == OP_REQUEST {
        request(ctx, arp, l2, ifindex)
    } else if arp.oper == OP_REPLY {
        let key = VipKey::v4(ifindex, l2.vlan, arp.spa);
        if let Some(v) = vip(&key)
            && matches!(ownership(v.slot), Ownership::Answering)
            && arp.sha != v.mac
        {
            record_conflict(&key, arp.sha);
        }
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_PASS
    }
}

#[inline(always)]
fn request(ctx: &XdpContext, arp: &mut ArpIpv4, l2: &L2, ifindex: u32) -> u32 {
    let key = VipKey::v4(ifindex, l2.vlan, arp.tpa);
    let Some(v) = vip(&key) else {
        return xdp_action::XDP_PASS;
    };
    if let Some(verdict) = refuse_unless_answering(v.slot) {
        return verdict;
    }
    // A gratuitous request announces the sender's binding; it asks nothing.
    if arp.spa == arp.tpa {
        if arp.sha != v.mac {
            record_conflict(&key, arp.sha);
        }
        return xdp_action::XDP_PASS;
    }
    let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at proved the header is inside the frame; it does not overlap `arp`.
    let eth = unsafe { &mut *eth };
    eth.dst = eth.src;
    eth.src = v.mac;
    arp.oper = OP_REPLY;
    arp.tha = arp.sha;
    arp.tpa = arp.spa;
    arp.sha = v.mac;
    arp.spa = [key.addr[0], key.addr[1], key.addr[2], key.addr[3]];
    count(|c| &mut c.arp_reply);
    xdp_action::XDP_TX
}
