//! The second reference of the ARP answer-rate benchmark: the same ARP answer as the
//! responder's (same checks on the request, same trim, same reply bytes) with no map, no
//! counter, no lease and no VLAN: it answers for the one address userspace sets in
//! `BARE_VIP` before loading, from `BARE_MAC`. The responder's rate over this one is what
//! its maps, counters and ownership cost; the MAC-swap ceiling is the path's own limit.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_xdp_adjust_tail, macros::xdp, programs::XdpContext,
};

/// The VIP, as its 4 octets in a `u32` in frame order (set by the loader).
#[unsafe(no_mangle)]
static BARE_VIP: u32 = 0;
/// The answering MAC as three 16-bit words in frame order (set by the loader).
#[unsafe(no_mangle)]
static BARE_MAC: [u16; 3] = [0; 3];

#[repr(C)]
struct Frame {
    dst: [u16; 3],
    src: [u16; 3],
    ethertype: u16,
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

const LEN: usize = core::mem::size_of::<Frame>();

#[inline(always)]
fn frame(ctx: &XdpContext) -> Option<*mut Frame> {
    let (start, end) = (ctx.data(), ctx.data_end());
    (start + LEN <= end).then_some(start as *mut Frame)
}

#[xdp]
pub fn vipd_bench_bare(ctx: XdpContext) -> u32 {
    let Some(f) = frame(&ctx) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: `frame` proved the whole header is inside the packet.
    let f = unsafe { &*f };
    // SAFETY: read-only globals, set before load.
    let (vip, mac) = unsafe {
        (
            core::ptr::read_volatile(&BARE_VIP),
            core::ptr::read_volatile(&BARE_MAC),
        )
    };
    let tpa = u32::from(f.tpa[0]) | (u32::from(f.tpa[1]) << 16);
    if f.ethertype != 0x0806u16.to_be()
        || f.htype != 1u16.to_be()
        || f.ptype != 0x0800u16.to_be()
        || f.hlen != 6
        || f.plen != 4
        || f.oper != 1u16.to_be()
        || tpa != vip
        || f.spa == f.tpa
    {
        return xdp_action::XDP_PASS;
    }
    if f.src[0].to_ne_bytes()[0] & 1 != 0 || f.src != f.sha {
        return xdp_action::XDP_DROP;
    }
    let (requester_mac, requester_ip, target) = (f.sha, f.spa, f.tpa);
    let delta = LEN as i32 - (ctx.data_end() - ctx.data()) as i32;
    if delta != 0 {
        // SAFETY: only moves data_end; the pointer is re-derived below.
        let _ = unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta) };
    }
    let Some(f) = frame(&ctx) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: as above, for the trimmed frame.
    let f = unsafe { &mut *f };
    f.dst = requester_mac;
    f.src = mac;
    f.oper = 2u16.to_be();
    f.tha = requester_mac;
    f.tpa = requester_ip;
    f.sha = mac;
    f.spa = target;
    xdp_action::XDP_TX
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
