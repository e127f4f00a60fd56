//! Bounds-checked access to the frame. Every read goes through [`ptr_at`], which proves to
//! the verifier that `offset + size_of::<T>()` lies before `data_end`.

use core::mem::size_of;

use aya_ebpf::programs::XdpContext;
use vip_common::wire::{ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, VLAN_HLEN};

/// A pointer to a `T` at `offset` into the frame, if the whole `T` is inside it.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *mut T)
}

/// Reads a big-endian u16 at `offset`.
#[inline(always)]
pub fn be16_at(ctx: &XdpContext, offset: usize) -> Option<u16> {
    let p = ptr_at::<[u8; 2]>(ctx, offset)?;
    // SAFETY: ptr_at proved the two bytes are inside the frame.
    Some(u16::from_be_bytes(unsafe { *p }))
}

/// The link layer of a frame: where the network header starts and what it is.
pub struct L2 {
    pub ethertype: u16,
    /// Offset of the network header (after at most one VLAN tag).
    pub l3: usize,
}

/// Parses the Ethernet header and at most one 802.1Q / 802.1ad tag. `None` for a frame too
/// short to hold them.
#[inline(always)]
pub fn parse_l2(ctx: &XdpContext) -> Option<L2> {
    let outer = be16_at(ctx, 12)?;
    if outer == ETH_P_8021Q || outer == ETH_P_8021AD {
        let inner = be16_at(ctx, ETH_HLEN + 2)?;
        return Some(L2 {
            ethertype: inner,
            l3: ETH_HLEN + VLAN_HLEN,
        });
    }
    Some(L2 {
        ethertype: outer,
        l3: ETH_HLEN,
    })
}
