//! The benchmark's traffic generator (`cargo xtask bench`, ARP answer rate).
//!
//! `vipd_bench_gen` is attached to the generator's veth. A few ARP requests are sent into
//! the pair from userspace; from then on every answer that comes back is counted, turned
//! into the next request and sent straight back with `XDP_TX`, so the frames circle
//! between the two ends of the veth at the speed the path takes them, all in the kernel,
//! and userspace is never the bottleneck. (The kernel's own generator, `BPF_PROG_TEST_RUN`
//! with live frames, is refused with EPERM on the machines this project runs on.)
//!
//! The program under test on the peer rewrites frames in place (an ARP reply is built in
//! the request's buffer and trimmed), so every request sent is written whole from
//! `BENCH_TEMPLATE`, never trusted from what came back.
//!
//! The loop is bounded whatever userspace does: it stops re-sending once the coarse clock
//! passes the deadline in `BENCH_LOOP`, or once this CPU has sent the allowance set there.
//! Answers are counted per CPU in `BENCH_SINK` without an skb ever being built for them.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::{Array, PerCpuArray},
    helpers::{bpf_ktime_get_coarse_ns, bpf_xdp_adjust_tail},
    macros::{btf_map, xdp},
    programs::XdpContext,
};

/// Bytes of every generated frame: an ARP request padded to the Ethernet minimum
/// (60 bytes without FCS), as a NIC would deliver it.
const FRAME_LEN: usize = 60;

/// The frame to send, written by userspace before the run. 64 bytes, of which the first
/// `FRAME_LEN` are used; `u64` words so the copy is eight loads and stores, not sixty.
#[btf_map]
static BENCH_TEMPLATE: Array<[u64; 8], 1> = Array::new();

/// `[deadline, cap]`: no frame is re-sent once `CLOCK_MONOTONIC_COARSE` passes the
/// deadline (ns), nor once this CPU's count of frames sent (`SINK_SENT`, never reset)
/// reaches `cap`: userspace sets it to that count at the start of a run plus the run's
/// allowance.
#[btf_map]
static BENCH_LOOP: Array<u64, 2> = Array::new();

/// Per CPU: `[ARP replies, other ARP, anything else, requests sent]`.
#[btf_map]
static BENCH_SINK: PerCpuArray<[u64; 4], 1> = PerCpuArray::new();

const SINK_ARP_REPLY: usize = 0;
const SINK_ARP_OTHER: usize = 1;
const SINK_OTHER: usize = 2;
const SINK_SENT: usize = 3;

#[xdp]
pub fn vipd_bench_gen(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    // Ethertype at 12..14, ARP operation at 20..22.
    let slot = if start + 22 > ctx.data_end() {
        SINK_OTHER
    } else {
        let b = start as *const u8;
        // SAFETY: the check above proved bytes 0..22 are inside the frame.
        let (ethertype, oper) = unsafe { ([*b.add(12), *b.add(13)], [*b.add(20), *b.add(21)]) };
        match (ethertype, oper) {
            ([0x08, 0x06], [0, 2]) => SINK_ARP_REPLY,
            ([0x08, 0x06], _) => SINK_ARP_OTHER,
            _ => SINK_OTHER,
        }
    };
    let Some(counts) = BENCH_SINK.get_ptr_mut(0) else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: this CPU's slot of a per-CPU map; XDP runs with migration disabled.
    let counts = unsafe { &mut *counts };
    counts[slot] = counts[slot].wrapping_add(1);
    // Only ARP goes round: a reply from a responder, or the request itself from the
    // MAC-swap ceiling.
    if slot == SINK_OTHER {
        return xdp_action::XDP_DROP;
    }
    let (Some(deadline), Some(cap)) = (BENCH_LOOP.get(0), BENCH_LOOP.get(1)) else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: no preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if now >= *deadline || counts[SINK_SENT] >= *cap {
        return xdp_action::XDP_DROP;
    }
    // A responder's reply is trimmed to the ARP message (42 bytes): grow it back.
    let len = ctx.data_end() - start;
    if len != FRAME_LEN {
        // SAFETY: the helper only moves data_end; every pointer is re-derived below.
        if unsafe { bpf_xdp_adjust_tail(ctx.ctx, FRAME_LEN as i32 - len as i32) } != 0 {
            return xdp_action::XDP_DROP;
        }
    }
    let start = ctx.data();
    if start + FRAME_LEN > ctx.data_end() {
        return xdp_action::XDP_DROP;
    }
    let Some(template) = BENCH_TEMPLATE.get(0) else {
        return xdp_action::XDP_DROP;
    };
    let dst = start as *mut u8;
    // SAFETY: the check above proved FRAME_LEN bytes from `start` are inside the frame;
    // unaligned accesses to packet memory are allowed.
    unsafe {
        for (i, word) in template.iter().take(FRAME_LEN / 8).enumerate() {
            (dst.add(i * 8) as *mut u64).write_unaligned(*word);
        }
        let tail = (template[FRAME_LEN / 8] & 0xffff_ffff) as u32;
        (dst.add(FRAME_LEN / 8 * 8) as *mut u32).write_unaligned(tail);
    }
    counts[SINK_SENT] = counts[SINK_SENT].wrapping_add(1);
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
