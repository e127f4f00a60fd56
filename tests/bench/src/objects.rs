//! The benchmark's own XDP programs, built from `vip-ebpf` by this crate's `build.rs` and
//! embedded here only: vipd never loads them, and its binary does not carry them.

/// `vipd_bench_gen`, the ARP generator: attached to the generator's veth, it counts
/// what comes back (`BENCH_SINK`) and turns each answer into the next request
/// (`BENCH_TEMPLATE`), within the deadline and cap in `BENCH_LOOP`.
pub static GENERATOR: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vip-gen"));

/// `vipd_bench_swap`: swaps the Ethernet addresses and returns `XDP_TX` (the ceiling).
pub static MAC_SWAP: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vip-swap"));

/// `vipd_bench_bare`: the responder's ARP answer without maps, counters or lease, for
/// the one VIP and MAC set in its `BARE_VIP` / `BARE_MAC` globals at load.
pub static BARE: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vip-bare"));

pub const GENERATOR_PROGRAM: &str = "vipd_bench_gen";
pub const MAC_SWAP_PROGRAM: &str = "vipd_bench_swap";
pub const BARE_PROGRAM: &str = "vipd_bench_bare";
pub const BARE_VIP: &str = "BARE_VIP";
pub const BARE_MAC: &str = "BARE_MAC";
pub const TEMPLATE_MAP: &str = "BENCH_TEMPLATE";
pub const SINK_MAP: &str = "BENCH_SINK";
pub const LOOP_MAP: &str = "BENCH_LOOP";
/// Length of every generated frame (an ARP request padded to 60 bytes).
pub const FRAME_LEN: usize = 60;
/// Slots of `BENCH_SINK`.
pub const SINK_ARP_REPLY: usize = 0;
pub const SINK_ARP_OTHER: usize = 1;
pub const SINK_OTHER: usize = 2;
pub const SINK_SENT: usize = 3;
