//! Builds the benchmark's XDP programs from `vip-ebpf` (the live-frames generator and its
//! sink, the MAC-swap ceiling, the bare responder) for the BPF target through `vip-build`,
//! into OUT_DIR, where `src/objects.rs` embeds them. vipd's own build builds only what it
//! ships (`vip-userspace/build.rs`).

use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("reading the workspace metadata")?;
    let ebpf = metadata
        .packages
        .into_iter()
        .find(|p| p.name.as_str() == "vip-ebpf")
        .ok_or_else(|| anyhow!("the vip-ebpf package is not in the workspace"))?;
    let root = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", ebpf.manifest_path))?;
    vip_build::build_ebpf(
        ebpf.name.as_str(),
        root.as_std_path(),
        &["vip-gen", "vip-swap", "vip-bare"],
    )
}
