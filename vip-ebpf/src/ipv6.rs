//! IPv6: the walk over extension headers to the upper-layer header, so NS, VRRP and BFD
//! are judged where they really start, whatever precedes them.
//!
//! Without the walk, an NS behind a hop-by-hop header would pass to the kernel, which
//! answers it for a stale VIP of a dead daemon; and a VRRP advert behind one would reach
//! the daemon unchecked (its checks are the program's, see `vrrp`).

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use vip_common::wire::{IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_VRRP, VRRP_TTL};

use crate::{
    bfd, csum,
    frame::{L2, beyond_first_buffer, ptr_at},
    lb,
    maps::count,
    ndp, vrrp,
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

const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_DEST: u8 = 60;

/// Extension headers the walk crosses before it gives up. Real traffic carries one or two;
/// eight leaves room for any sane chain and keeps the unrolled walk small for the verifier.
pub const MAX_EXT_HEADERS: usize = 8;

/// The first 8 bytes of any of the walked extension headers (none is shorter): next
/// header, length, and for a routing header its type and Segments Left, for a fragment
/// header its offset.
#[repr(C)]
struct ExtHdr {
    next: u8,
    /// 8-octet units beyond the first 8 (hop-by-hop, routing, destination options);
    /// reserved in a fragment header, which is always 8 bytes.
    len: u8,
    b2: u8,
    b3: u8,
    _rest: [u8; 4],
}

/// Where the upper-layer header of a packet is.
pub struct Upper {
    pub proto: u8,
    /// Offset of the upper-layer header in the frame.
    pub off: usize,
    /// Bytes of extension headers between the IPv6 header and `off`.
    pub ext_len: usize,
    /// A fragment header (first fragment, or an atomic one) was crossed.
    pub fragment: bool,
}

pub enum Walk {
    Upper(Upper),
    /// Nothing to judge: a non-first fragment (what follows is data, not a header), a
    /// routing header with segments left (the packet is on its way elsewhere), a
    /// hop-by-hop header out of place (the kernel discards it), or a frame that ends
    /// inside the chain.
    Opaque,
    /// Still extension headers after [`MAX_EXT_HEADERS`] of them, or in the part of a
    /// jumbo frame past its first buffer, which the program does not read.
    TooDeep,
}

#[inline(always)]
fn is_walked(next: u8) -> bool {
    next == NEXTHDR_HOP
        || next == NEXTHDR_DEST
        || next == NEXTHDR_ROUTING
        || next == NEXTHDR_FRAGMENT
}

/// Walks the extension headers after the IPv6 header at `l3`, whose Next Header is
/// `first`. Every header is bounds-checked before it is read; the loop has a constant
/// bound, so the verifier sees at most [`MAX_EXT_HEADERS`] rounds.
#[inline(always)]
pub fn walk(ctx: &XdpContext, l3: usize, first: u8) -> Walk {
    let start = l3 + IPV6_HLEN;
    let mut next = first;
    let mut off = start;
    let mut fragment = false;
    let mut i = 0;
    while i < MAX_EXT_HEADERS {
        if !is_walked(next) {
            break;
        }
        // RFC 8200 §4.3: hop-by-hop options only right after the IPv6 header.
        if next == NEXTHDR_HOP && i != 0 {
            return Walk::Opaque;
        }
        let Some(h) = ptr_at::<ExtHdr>(ctx, off) else {
            // A chain that runs on past the first buffer of a jumbo frame is as unseen
            // as one past the bound.
            if beyond_first_buffer(ctx, off + 8) {
                return Walk::TooDeep;
            }
            return Walk::Opaque;
        };
        // SAFETY: ptr_at proved the 8 bytes are inside the frame.
        let h = unsafe { &*h };
        if next == NEXTHDR_FRAGMENT {
            if u16::from_be_bytes([h.b2, h.b3]) & 0xfff8 != 0 {
                return Walk::Opaque;
            }
            fragment = true;
            off += 8;
        } else {
            if next == NEXTHDR_ROUTING && h.b3 != 0 {
                return Walk::Opaque;
            }
            off += (h.len as usize + 1) * 8;
        }
        next = h.next;
        i += 1;
    }
    if is_walked(next) {
        return Walk::TooDeep;
    }
    // Every path through the walk reaches the same code with its own known range for
    // `off`, and the verifier would check NDP and VRRP handling once per path (nine
    // depths, with and without a fragment header: past its budget). Forgetting the range
    // makes the paths one state again; the checks below give it back its bounds. (`off`
    // is at most 8 headers of 2 KiB past the IPv6 header: it fits a u16.)
    let off = forget_range(off as u16) as usize;
    if off < start || off > MAX_UPPER_OFFSET {
        return Walk::Opaque;
    }
    Walk::Upper(Upper {
        proto: next,
        off,
        ext_len: off - start,
        fragment,
    })
}

/// An IPv6 packet: NS, VRRP and BFD are judged at their real offset, everything else
/// passes.
#[inline(always)]
pub fn handle<const FRAGS: bool>(ctx: &XdpContext, l2: &L2, ifindex: u32) -> u32 {
    let Some(ip) = ptr_at::<Ipv6Hdr>(ctx, l2.l3) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at proved the header is inside the frame.
    let ip = unsafe { &*ip };
    let walked = match walk(ctx, l2.l3, ip.nexthdr) {
        // The upper-layer header itself past the first buffer: unseen, like a chain too
        // deep. (UPPER_PEEK covers the longest header judged here, an NS.)
        Walk::Upper(up)
            if matches!(up.proto, IPPROTO_ICMPV6 | IPPROTO_VRRP | IPPROTO_UDP)
                && beyond_first_buffer(ctx, up.off + UPPER_PEEK) =>
        {
            Walk::TooDeep
        }
        w => w,
    };
    match walked {
        Walk::Upper(up) if up.proto == IPPROTO_ICMPV6 => ndp::handle(ctx, l2, ifindex, ip, &up),
        Walk::Upper(up) if up.proto == IPPROTO_VRRP => vrrp::handle_v6(ctx, l2, ifindex, ip, &up),
        Walk::Upper(up) if up.proto == IPPROTO_TCP => {
            lb::enter_v6::<FRAGS>(ctx, &ip.daddr, up.proto);
            xdp_action::XDP_PASS
        }
        Walk::Upper(up) if up.proto == IPPROTO_UDP => {
            lb::enter_v6::<FRAGS>(ctx, &ip.daddr, up.proto);
            // Cold for the reason given in `vrrp::handle_v4`: tested after NS and VRRP.
            core::hint::cold_path();
            bfd::handle_v6(ctx, l2, ifindex, ip, &up)
        }
        // The one deliberate exception to failing open: past the bound the program cannot
        // see whether an NS or a VRRP advert hides there, and if it let one through, the
        // kernel of a killed daemon would answer it for a stale VIP (or the daemon would
        // read an advert nobody checked). Only hop limit 255 can hide either: the kernel
        // discards NS with any other (RFC 4861 §7.1.1), and so does VRRP (RFC 5798 §7.1).
        Walk::TooDeep if ip.hop_limit == VRRP_TTL => {
            count(|c| &mut c.ipv6_ext_too_deep);
            xdp_action::XDP_DROP
        }
        _ => xdp_action::XDP_PASS,
    }
}

/// Bytes of the longest upper-layer header the program judges (an NS: type, code,
/// checksum, reserved, target), which must lie in the first buffer.
const UPPER_PEEK: usize = 24;

/// The IPv6 pseudo-header (RFC 8200 §8.1) for an upper-layer payload of `len` bytes.
#[inline(always)]
pub fn pseudo_sum(src: &[u8; 16], dst: &[u8; 16], len: u32, proto: u8) -> u64 {
    let mut sum = csum::add(0, src);
    sum = csum::add(sum, dst);
    sum + len as u64 + proto as u64
}

/// Beyond any frame XDP sees (a page); small enough that an offset below it plus any
/// header stays within the verifier's packet-offset limit (`MAX_PACKET_OFF`, 0xffff).
const MAX_UPPER_OFFSET: usize = 0x3fff;

/// `v`, with nothing the verifier knew of its value: it is written a byte at a time into
/// the middle of a stack slot, which the verifier records as opaque bytes, and read back
/// as a whole. This costs three instructions at run time and affects only how the
/// verifier explores the program, never what the program does.
#[inline(always)]
fn forget_range(v: u16) -> u16 {
    let mut slot = [0u16; 4];
    let bytes = slot.as_mut_ptr() as *mut u8;
    // SAFETY: all three accesses are inside `slot`, the u16 one aligned; volatile so the
    // compiler keeps the round trip it would otherwise fold away.
    unsafe {
        core::ptr::write_volatile(bytes.add(2), v.to_ne_bytes()[0]);
        core::ptr::write_volatile(bytes.add(3), v.to_ne_bytes()[1]);
        core::ptr::read_volatile(slot.as_ptr().add(1))
    }
}
