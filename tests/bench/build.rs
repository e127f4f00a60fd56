//! Builds the benchmark's XDP programs from `vip-ebpf` (the live-frames generator and its
//! sink, the MAC-swap ceiling, the bare responder) for the BPF target through `vip-build`,
//! into OUT_DIR, where `src/objects.rs` embeds them. vipd's own build builds only what it
//! ships (`vip-userspace/build.rs`).

fn main() -> anyhow::Result<()> {
    vip_build::build_workspace_ebpf(&["vip-gen", "vip-swap", "vip-bare"])
}
