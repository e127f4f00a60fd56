//! vipd's XDP responder.
//!
//! It fails open: anything that is not ARP / NS for a configured VIP, not VRRP for a
//! configured virtual router (VRRP or CARP, see `carp`), and not a BFD Echo packet of a configured neighbour (looped
//! back, see `bfd`), goes to the kernel untouched. It drops only VRRP of ours that fails
//! admission (and foreign VRRP where an interface asks), ARP / NS for configured VIPs
//! this node does not answer for right now or that try to aim the answer elsewhere, and
//! IPv6 whose extension headers go deeper than it looks (see `ipv6`). TCP and UDP for a
//! configured load-balanced service go to a real server (see `lb`).
//!
//! It is frags-aware: on a link whose MTU exceeds a page (jumbo frames) a frame can span
//! several buffers, of which it reads only the first (`frame::len`). Everything it
//! judges sits in the first buffer of any real frame; what does not is passed and
//! counted (`multi_buffer_pass`), or for IPv6 headers hidden there, treated like a
//! chain too deep to see. The same code is also built without frags support, for an
//! interface where it hands frames on to a program that lacks it (see `chain`).
#![no_std]
#![no_main]

mod arp;
mod bfd;
mod carp;
mod chain;
mod csum;
mod frame;
mod ipv6;
mod lb;
mod maps;
mod ndp;
mod shared;
mod vmac;
mod vrrp;

use aya_ebpf::{
    bindings::xdp_action,
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use vip_common::wire::{ETH_P_ARP, ETH_P_IP, ETH_P_IPV6};

// `inline(always)` reaches the body aya's macro wraps in the program's entry point: without
// it the entry makes a BPF-to-BPF call into the body (a stack frame and saved registers
// on every frame), which LLVM keeps because the body is large.
#[xdp(frags)]
#[inline(always)]
pub fn vipd_xdp(ctx: XdpContext) -> u32 {
    chain::then(&ctx, respond::<true>(&ctx))
}

/// [`vipd_xdp`] loaded without frags support (kernel program names stop at 15 bytes).
#[xdp]
#[inline(always)]
pub fn vipd_xdp_nofrag(ctx: XdpContext) -> u32 {
    chain::then(&ctx, respond::<false>(&ctx))
}

/// `FRAGS`: whether the calling program is frags-aware. A tail call only reaches a
/// program of the same kind, so each kind has its own load-balancer slot (see `lb`).
#[inline(always)]
fn respond<const FRAGS: bool>(ctx: &XdpContext) -> u32 {
    let Some(l2) = frame::parse_l2(ctx) else {
        return xdp_action::XDP_PASS;
    };
    let ifindex = ctx.ingress_ifindex() as u32;
    if vmac::is_vmac(&l2.dst) {
        vmac::accept(ctx, &l2, ifindex);
    }
    match l2.ethertype {
        ETH_P_ARP => arp::handle(ctx, &l2, ifindex),
        ETH_P_IP => {
            lb::enter_v4::<FRAGS>(ctx, &l2);
            vrrp::handle_v4(ctx, &l2, ifindex)
        }
        ETH_P_IPV6 => ipv6::handle::<FRAGS>(ctx, &l2, ifindex),
        _ => xdp_action::XDP_PASS,
    }
}

/// The load balancer, entered by a tail call from `vipd_xdp` (see `lb`). What it passes
/// goes on to the chained program like the responder's passes: the tail call never
/// comes back to the responder, so it chains itself, through the `CHAIN` of its own
/// loaded copy (the daemon loads one load balancer beside each copy of the responder).
#[xdp(frags)]
pub fn vipd_lb(ctx: XdpContext) -> u32 {
    chain::then(&ctx, lb::run(&ctx))
}

/// [`vipd_lb`] without frags support, entered from `vipd_xdp_nofrag`.
#[xdp]
pub fn vipd_lb_nofrag(ctx: XdpContext) -> u32 {
    chain::then(&ctx, lb::run(&ctx))
}

/// The tc ingress classifier beside the responder: a frame VMAC acceptance readdressed
/// gets the packet type "this host" (see `vmac`).
#[classifier]
pub fn vipd_tc_vmac(ctx: TcContext) -> i32 {
    vmac::to_host(&ctx)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
