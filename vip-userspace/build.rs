//! Builds the XDP programs vipd ships from `vip-ebpf` (the responder and the pass program)
//! for the BPF target (nightly, `-Z build-std=core`, bpf-linker) and leaves them in
//! OUT_DIR, where `vipd::objects` embeds them. The benchmark's programs are built and
//! embedded by the bench crate (`tests/bench/build.rs`), never shipped. `vip-build`
//! runs that nested build and relays only real warnings, so a clean build prints none.

fn main() -> anyhow::Result<()> {
    vip_build::build_workspace_ebpf(&["vip-xdp", "vip-pass"])
}
