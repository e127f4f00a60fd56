//! The ceiling of the ARP answer-rate benchmark: the least an XDP program can do to send
//! a frame back where it came from. It swaps the Ethernet addresses and returns `XDP_TX`,
//! touching nothing else, so whatever rate it reaches on the benchmark's veth pair is the
//! path's own limit, and the responder's rate is reported as a fraction of it.
#![no_std]
#![no_main]

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

#[xdp]
pub fn vipd_bench_swap(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    if start + 12 > ctx.data_end() {
        return xdp_action::XDP_PASS;
    }
    let p = start as *mut [u8; 6];
    // SAFETY: the check above proved both 6-byte addresses are inside the frame.
    unsafe {
        let dst = p.read();
        p.write(p.add(1).read());
        p.add(1).write(dst);
    }
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
