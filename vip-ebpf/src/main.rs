//! vipd's XDP responder.
//!
//! It fails open: anything that is not ARP / NS for a configured VIP, and not VRRP, goes
//! to the kernel untouched (DESIGN.md rule 3). It drops only VRRP that fails admission and
//! ARP / NS for configured VIPs this node does not answer for right now.
#![no_std]
#![no_main]

mod arp;
mod csum;
mod frame;
mod maps;
mod ndp;
mod vmac;
mod vrrp;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use vip_common::wire::{ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMPV6, IPPROTO_VRRP};

#[xdp]
pub fn vipd_xdp(ctx: XdpContext) -> u32 {
    let Some(l2) = frame::parse_l2(&ctx) else {
        return xdp_action::XDP_PASS;
    };
    let ifindex = ctx.ingress_ifindex() as u32;
    if vmac::is_vmac(&l2.dst) {
        vmac::accept(&ctx, &l2, ifindex);
    }
    match l2.ethertype {
        ETH_P_ARP => arp::handle(&ctx, &l2, ifindex),
        ETH_P_IP => vrrp::handle_v4(&ctx, &l2, ifindex),
        ETH_P_IPV6 => match next_header(&ctx, &l2) {
            Some(IPPROTO_ICMPV6) => ndp::handle(&ctx, &l2, ifindex),
            Some(IPPROTO_VRRP) => vrrp::handle_v6(&ctx, &l2, ifindex),
            _ => xdp_action::XDP_PASS,
        },
        _ => xdp_action::XDP_PASS,
    }
}

#[inline(always)]
fn next_header(ctx: &XdpContext, l2: &frame::L2) -> Option<u8> {
    let ip = frame::ptr_at::<ndp::Ipv6Hdr>(ctx, l2.l3)?;
    // SAFETY: ptr_at proved the header is inside the frame.
    Some(unsafe { (*ip).nexthdr })
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
