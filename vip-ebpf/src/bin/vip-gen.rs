//! The benchmark's traffic generator and reply sink (`cargo xtask bench`, ARP answer rate).
//!
//! `vipd_bench_gen` is run with `BPF_PROG_TEST_RUN` in XDP live-frames mode with the
//! sender's veth as ingress device: every frame it returns `XDP_TX` for is pushed into
//! the peer. The kernel recycles live-frame pages *without* restoring their bytes, and
//! the programs under test on the peer rewrite frames in place (an ARP reply is built in
//! the request's buffer), so the generator copies the whole template from
//! `BENCH_TEMPLATE` into every frame it sends instead of trusting what the page holds.
//!
//! `vipd_bench_sink` is attached to the sender's own veth. It has two jobs: a veth
//! discards frames its peer sends with `XDP_TX` unless it runs an XDP program itself,
//! and it counts what comes back per CPU before dropping it,
//! so replies are counted without an skb ever being built for them.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::{Array, PerCpuArray},
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

/// Frames seen by the sink, per CPU: `[ARP replies, other ARP, anything else, unused]`.
#[btf_map]
static BENCH_SINK: PerCpuArray<[u64; 4], 1> = PerCpuArray::new();

const SINK_ARP_REPLY: usize = 0;
const SINK_ARP_OTHER: usize = 1;
const SINK_OTHER: usize = 2;

#[xdp]
pub fn vipd_bench_gen(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    if start + FRAME_LEN > ctx.data_end() {
        // A run started with the wrong frame size: send nothing rather than garbage.
        return xdp_action::XDP_ABORTED;
    }
    let Some(template) = BENCH_TEMPLATE.get(0) else {
        return xdp_action::XDP_ABORTED;
    };
    let dst = start as *mut u8;
    // SAFETY: the check above proved FRAME_LEN bytes from `start` are inside the frame;
    // unaligned accesses to packet memory are allowed (and the buffer is aligned anyway).
    unsafe {
        for (i, word) in template.iter().take(FRAME_LEN / 8).enumerate() {
            (dst.add(i * 8) as *mut u64).write_unaligned(*word);
        }
        let tail = (template[FRAME_LEN / 8] & 0xffff_ffff) as u32;
        (dst.add(FRAME_LEN / 8 * 8) as *mut u32).write_unaligned(tail);
    }
    xdp_action::XDP_TX
}

#[xdp]
pub fn vipd_bench_sink(ctx: XdpContext) -> u32 {
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
    if let Some(counts) = BENCH_SINK.get_ptr_mut(0) {
        // SAFETY: this CPU's slot of a per-CPU map; XDP runs with migration disabled.
        unsafe {
            let c = &mut (*counts)[slot];
            *c = c.wrapping_add(1);
        }
    }
    xdp_action::XDP_DROP
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
