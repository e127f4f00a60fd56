//! A real server's side of the load balancer's tunnel method, for the labs only.
//!
//! `method = "tunnel"` sends each packet to its real server inside an outer IPv4 or IPv6
//! header, and the server is expected to take that header off, as the kernel's `ipip` and
//! `ip6tnl` devices do. The kernel the labs run on has neither, so `tests/tests/lab_lb.rs`
//! attaches this program to a server's interface instead: it removes the outer header of
//! IPv4-in-IPv4, IPv6-in-IPv6 (and the two mixed kinds) and passes the inner packet to the
//! server's stack, which delivers it to the VIP on its loopback as if it had come that way.
//! Everything else passes untouched. vipd never loads it.
//!
//! Per CPU in `DECAP_SEEN`: `[outer IPv4 removed, outer IPv6 removed, passed as it was]`,
//! so a test can tell that what its server answered really came through the tunnel.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::PerCpuArray,
    helpers::generated::bpf_xdp_adjust_head,
    macros::{btf_map, xdp},
    programs::XdpContext,
};

#[btf_map]
static DECAP_SEEN: PerCpuArray<[u64; 3], 1> = PerCpuArray::new();

const SEEN_V4: usize = 0;
const SEEN_V6: usize = 1;
const SEEN_OTHER: usize = 2;

const ETH_LEN: usize = 14;
const ETH_P_IP: [u8; 2] = [0x08, 0x00];
const ETH_P_IPV6: [u8; 2] = [0x86, 0xdd];
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;

#[xdp]
pub fn vipd_test_decap(ctx: XdpContext) -> u32 {
    let (slot, verdict) = decap(&ctx);
    if let Some(seen) = DECAP_SEEN.get_ptr_mut(0) {
        // SAFETY: a per-CPU slot of this map, written by this CPU only.
        unsafe { (*seen)[slot] += 1 };
    }
    verdict
}

/// Returns the counter to bump and the verdict.
fn decap(ctx: &XdpContext) -> (usize, u32) {
    let start = ctx.data();
    if start + ETH_LEN + 1 > ctx.data_end() {
        return (SEEN_OTHER, xdp_action::XDP_PASS);
    }
    let b = start as *const u8;
    // SAFETY: the Ethernet header and one byte after it are inside the frame.
    let ethertype = unsafe { [*b.add(12), *b.add(13)] };
    // Each family reads its own fixed offsets under its own bound, so the verifier sees
    // a constant offset at every load.
    let found = if ethertype == ETH_P_IP {
        outer_v4(ctx)
    } else if ethertype == ETH_P_IPV6 {
        outer_v6(ctx)
    } else {
        None
    };
    let Some((outer, inner, slot)) = found else {
        return (SEEN_OTHER, xdp_action::XDP_PASS);
    };
    // SAFETY: the 12 address bytes are inside the frame.
    let macs = unsafe { (b as *const [u8; 12]).read_unaligned() };
    // SAFETY: moves the frame's start forward by the outer header, which is inside it.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, outer) } != 0 {
        return (SEEN_OTHER, xdp_action::XDP_PASS);
    }
    let start = ctx.data();
    if start + ETH_LEN > ctx.data_end() {
        return (SEEN_OTHER, xdp_action::XDP_DROP);
    }
    let p = start as *mut u8;
    // SAFETY: the new Ethernet header's 14 bytes are inside the frame (checked above).
    unsafe {
        (p as *mut [u8; 12]).write_unaligned(macs);
        *p.add(12) = inner[0];
        *p.add(13) = inner[1];
    }
    (slot, xdp_action::XDP_PASS)
}

/// An outer IPv4 header without options carrying IPv4 or IPv6: its length, the inner
/// ethertype and the counter.
fn outer_v4(ctx: &XdpContext) -> Option<(i32, [u8; 2], usize)> {
    let start = ctx.data();
    if start + ETH_LEN + 21 > ctx.data_end() {
        return None;
    }
    let b = start as *const u8;
    // SAFETY: offsets 14, 23 and 34 are inside the 35 bytes checked.
    let (first, proto, inner) = unsafe { (*b.add(14), *b.add(23), *b.add(34) >> 4) };
    Some((20, inner_ethertype(first == 0x45, proto, inner)?, SEEN_V4))
}

/// An outer IPv6 header without extension headers carrying IPv4 or IPv6.
fn outer_v6(ctx: &XdpContext) -> Option<(i32, [u8; 2], usize)> {
    let start = ctx.data();
    if start + ETH_LEN + 41 > ctx.data_end() {
        return None;
    }
    let b = start as *const u8;
    // SAFETY: offsets 14, 20 and 54 are inside the 55 bytes checked.
    let (first, next, inner) = unsafe { (*b.add(14), *b.add(20), *b.add(54) >> 4) };
    Some((40, inner_ethertype(first >> 4 == 6, next, inner)?, SEEN_V6))
}

fn inner_ethertype(outer_ok: bool, next: u8, inner_version: u8) -> Option<[u8; 2]> {
    match (outer_ok, next, inner_version) {
        (true, IPPROTO_IPIP, 4) => Some(ETH_P_IP),
        (true, IPPROTO_IPV6, 6) => Some(ETH_P_IPV6),
        _ => None,
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
