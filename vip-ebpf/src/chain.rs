//! Chaining: where another XDP program held the interface before vipd (a DDoS filter,
//! xdp-filter, a libxdp dispatcher), vipd takes the hook in one atomic replace and hands
//! every frame it passes to that program with a tail call through `CHAIN`. What vipd
//! answers (`XDP_TX`) or drops never reaches it; everything else does, exactly as before
//! vipd came. The daemon fills the entry; an empty entry (vipd alone on the interface)
//! makes the tail call fail and the frame pass to the kernel. See
//! `vip-userspace/src/dataplane/chain.rs` and `docs/operations.md`.

use aya_ebpf::{
    bindings::xdp_action, btf_maps::ProgramArray, macros::btf_map, programs::XdpContext,
};

/// One entry: the program vipd took the interface from. Each loaded copy of the
/// responder has its own; an interface vipd chains pins its copy's map.
#[btf_map]
pub static CHAIN: ProgramArray<1> = ProgramArray::new();

/// The verdict for a frame the responder judged `verdict`: passed frames go on to the
/// chained program when there is one.
#[inline(always)]
pub fn then(ctx: &XdpContext, verdict: u32) -> u32 {
    if verdict == xdp_action::XDP_PASS {
        // SAFETY: on success control never comes back; on failure (no chained program)
        // it returns here and the frame passes.
        unsafe { CHAIN.tail_call(ctx, 0) };
    }
    verdict
}
