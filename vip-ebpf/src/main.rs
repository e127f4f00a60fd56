//! vipd's XDP responder. See DESIGN.md: it fails open for everything that is not a VIP.
#![no_std]
#![no_main]

mod frame;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

#[xdp]
pub fn vipd_xdp(ctx: XdpContext) -> u32 {
    match frame::parse_l2(&ctx) {
        // Frames too short for an Ethernet header are not ours to judge.
        None => xdp_action::XDP_PASS,
        Some(_l2) => xdp_action::XDP_PASS,
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
