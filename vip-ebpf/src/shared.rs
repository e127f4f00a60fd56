//! Shared VIPs (active-active): one address served by several groups, each answering the
//! requesters `vip_common::shared_member` hands it, from its own virtual MAC, and only
//! on the router that masters that group. A router that does not master the chosen group
//! stays silent (the ARP / NS is dropped like one for any VIP it does not own), so
//! exactly one router answers each client, and a failover moves that client with its
//! group: the same virtual MAC, answered from the new master.
//!
//! An ordinary VIP costs one flag test here; a shared one a second lookup, of the
//! member's entry in `VIPS` (keyed `VipKey::shared_member`). That lookup bypasses the
//! per-CPU cache, which keeps the VIP's own entry.

use vip_common::{VIP_F_SHARED, VIP_SHARED_MEMBERS_SHIFT, VipKey, VipValue, shared_member};

use crate::maps::VIPS;

/// The entry that answers `requester_low32` (the last four bytes of the requester's
/// address, big-endian) for the VIP `key` whose entry is `v`: `v` itself unless it is
/// shared, else the chosen member's entry; `None` when that member has no entry (its
/// group did not start): a request is then dropped and counted as not owned, like one
/// for a group this node does not master.
#[inline(always)]
pub fn answering(key: &VipKey, v: VipValue, requester_low32: u32) -> Option<VipValue> {
    if v.flags & VIP_F_SHARED == 0 {
        return Some(v);
    }
    member(key, v, requester_low32)
}

#[inline(always)]
fn member(key: &VipKey, v: VipValue, requester_low32: u32) -> Option<VipValue> {
    let members = (v.flags >> VIP_SHARED_MEMBERS_SHIFT) as u8;
    let index = shared_member(requester_low32, members);
    let mut k = *key;
    k.member = index.wrapping_add(1);
    // SAFETY: the pointer comes from the map lookup and is read once, immediately.
    VIPS.get_ptr(k).map(|p| unsafe { *p })
}
