//! Bounds-checked access to the frame. Every read goes through [`ptr_at`], which proves to
//! the verifier that `offset + size_of::<T>()` lies before `data_end`. All header structs
//! are byte arrays (alignment 1), so no access depends on the frame's alignment.

use core::mem::size_of;

use aya_ebpf::{helpers::generated::bpf_xdp_get_buff_len, programs::XdpContext};
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

/// Bytes of the frame's first buffer: everything [`ptr_at`] can reach. A frame is one
/// buffer unless it is longer than a page can hold (jumbo frames) and the program was
/// loaded frags-aware (`#[xdp(frags)]`); then the rest sits in further buffers the
/// program never reads (see [`total_len`]).
#[inline(always)]
pub fn len(ctx: &XdpContext) -> usize {
    ctx.data_end() - ctx.data()
}

/// Bytes of the whole frame, every buffer of a multi-buffer frame included. A helper call:
/// asked only where a frame longer than its first buffer changes the answer.
#[inline(always)]
pub fn total_len(ctx: &XdpContext) -> usize {
    // SAFETY: the helper only reads the context it is given.
    unsafe { bpf_xdp_get_buff_len(ctx.ctx) as usize }
}

/// Whether `end` bytes from the frame's start lie in the frame but beyond its first
/// buffer: what the program cannot read, but must not call truncated either.
#[inline(always)]
pub fn beyond_first_buffer(ctx: &XdpContext, end: usize) -> bool {
    end > len(ctx) && end <= total_len(ctx)
}

#[repr(C)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub ethertype: [u8; 2],
}

/// The link layer of a frame: where the network header starts and what it is.
pub struct L2 {
    pub ethertype: u16,
    /// Offset of the network header (after at most one VLAN tag).
    pub l3: usize,
    /// VLAN ID of the tag, 0 when untagged.
    pub vlan: u16,
    pub dst: [u8; 6],
}

/// Parses the Ethernet header and at most one 802.1Q / 802.1ad tag. `None` for a frame too
/// short to hold them.
#[inline(always)]
pub fn parse_l2(ctx: &XdpContext) -> Option<L2> {
    // SAFETY: ptr_at proved the header is inside the frame.
    let eth = unsafe { &*ptr_at::<EthHdr>(ctx, 0)? };
    let outer = u16::from_be_bytes(eth.ethertype);
    if outer == ETH_P_8021Q || outer == ETH_P_8021AD {
        // SAFETY: as above, for the 4-byte tag.
        let tag = unsafe { &*ptr_at::<[u8; VLAN_HLEN]>(ctx, ETH_HLEN)? };
        return Some(L2 {
            ethertype: u16::from_be_bytes([tag[2], tag[3]]),
            l3: ETH_HLEN + VLAN_HLEN,
            vlan: u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff,
            dst: eth.dst,
        });
    }
    Some(L2 {
        ethertype: outer,
        l3: ETH_HLEN,
        vlan: 0,
        dst: eth.dst,
    })
}

/// Whether a MAC address names one station: the I/G bit (least significant bit of the
/// first octet) clear. A multicast or broadcast source is never a station asking for
/// itself, and an answer to it would go to a whole group.
#[inline(always)]
pub fn is_unicast(mac: &[u8; 6]) -> bool {
    mac[0] & 0x01 == 0
}
