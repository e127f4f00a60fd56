//! VMAC acceptance: frames to the virtual MAC of a group this node answers for get the
//! interface's own MAC as destination, so the host accepts them without promiscuous mode
//! or a macvlan. Frames to the VMAC of a group we do not own stay as they are, and the
//! kernel ignores them as addressed to another host.

use aya_ebpf::programs::XdpContext;
use vip_common::{
    VmacKey,
    wire::{VMAC_PREFIX_V4, VMAC_PREFIX_V6},
};

use crate::{
    frame::{EthHdr, L2, ptr_at},
    maps::{Ownership, VMACS, count, ownership},
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
