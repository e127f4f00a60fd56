//! VMAC acceptance: frames to the virtual MAC of a group this node answers for get the
//! interface's own MAC as destination, so the host accepts them without promiscuous mode
//! or a macvlan. Frames to the VMAC of a group we do not own stay as they are, and the
//! kernel ignores them as addressed to another host.
//!
//! A veth (and anything that runs XDP on an skb it already classified) set the frame's
//! packet type to "another host" before the program ran, and keeps it after the rewrite:
//! IP would drop the frame (`ip -s -s link` counts `otherhost`). The tc ingress
//! classifier [`to_host`] gives such a frame the type "this host" when its destination
//! is a MAC this program readdresses to on that interface (`HOST_MACS`, written with the
//! `VMACS` entries). A frame for the interface's MAC that the device called "another
//! host" can only come from the rewrite: a sender's frame to that MAC is the host's
//! from the start, and one for another station keeps its own destination, so a
//! promiscuous or bridged port never hands the host a stranger's traffic.
//!
//! XDP metadata (`bpf_xdp_adjust_meta`) would mark exactly the rewritten frames, but the
//! kernels vipd is developed on refuse that helper to XDP programs ("program of this
//! type cannot use helper bpf_xdp_adjust_meta#54", docs/architecture.md).

use aya_ebpf::{
    bindings::TC_ACT_UNSPEC,
    programs::{TcContext, XdpContext},
};
use vip_common::{
    HostMacKey, VmacKey,
    wire::{PACKET_HOST, PACKET_OTHERHOST, VMAC_PREFIX_V4, VMAC_PREFIX_V6},
};

use crate::{
    frame::{EthHdr, L2, ptr_at},
    maps::{HOST_MACS, Ownership, VMACS, count, ownership},
};

/// Whether `mac` is a VRRP virtual MAC. Byte by byte with early exits: every frame asks,
/// and a broadcast or ordinary unicast destination is ruled out by its first bytes.
#[inline(always)]
pub fn is_vmac(mac: &[u8; 6]) -> bool {
    mac[0] == VMAC_PREFIX_V4[0]
        && mac[1] == VMAC_PREFIX_V4[1]
        && mac[2] == VMAC_PREFIX_V4[2]
        && mac[3] == VMAC_PREFIX_V4[3]
        && (mac[4] == VMAC_PREFIX_V4[4] || mac[4] == VMAC_PREFIX_V6[4])
}

#[inline(always)]
pub fn accept(ctx: &XdpContext, l2: &L2, ifindex: u32) {
    let key = VmacKey {
        ifindex,
        vlan: l2.vlan,
        mac: l2.dst,
    };
    // SAFETY: read once, immediately, from the lookup's pointer.
    let Some(v) = VMACS.get_ptr(key).map(|p| unsafe { *p }) else {
        return;
    };
    if !matches!(ownership(v.slot), Ownership::Answering) {
        count(|c| &mut c.vmac_not_owned);
        return;
    }
    if let Some(eth) = ptr_at::<EthHdr>(ctx, 0) {
        // SAFETY: ptr_at proved the header is inside the frame.
        unsafe { (*eth).dst = v.if_mac };
        count(|c| &mut c.vmac_accept);
    }
}

/// The tc ingress classifier: a frame the device classified as "for another host" whose
/// destination is a MAC [`accept`] readdresses to on this interface becomes "this host".
/// Everything goes on with `TC_ACT_UNSPEC` (the next tc program, then the stack), never
/// a drop.
#[inline(always)]
pub fn to_host(ctx: &TcContext) -> i32 {
    let skb = ctx.skb.skb;
    // SAFETY: the kernel's `__sk_buff` for this run; plain field reads.
    let (pkt_type, ifindex) = unsafe { ((*skb).pkt_type, (*skb).ifindex) };
    if pkt_type != PACKET_OTHERHOST {
        return TC_ACT_UNSPEC;
    }
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + 6 > end {
        return TC_ACT_UNSPEC;
    }
    // SAFETY: the check above proved the destination MAC lies inside the frame.
    let mac = unsafe { *(data as *const [u8; 6]) };
    let key = HostMacKey {
        ifindex,
        mac,
        _pad: [0; 2],
    };
    if HOST_MACS.get_ptr(key).is_some() && ctx.skb.change_type(PACKET_HOST).is_ok() {
        count(|c| &mut c.vmac_to_host);
    }
    TC_ACT_UNSPEC
}
