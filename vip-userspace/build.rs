//! Builds the XDP programs vipd ships from `vip-ebpf` (the responder and the pass program)
//! for the BPF target (nightly, `-Z build-std=core`, bpf-linker) and leaves them in
//! OUT_DIR, where `vipd::objects` embeds them. The benchmark's programs are built and
//! embedded by the bench crate (`tests/bench/build.rs`), never shipped. `vip-build`
//! runs that nested build and relays only real warnings, so a clean build prints none.

use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    if which("bpf-linker").is_none() {
        return Err(anyhow!(
            "bpf-linker is not on PATH; run `cargo xtask setup` (it installs bpf-linker 0.10.0 \
             and the nightly rust-src component the XDP program needs)"
        ));
    }
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
        &["vip-xdp", "vip-pass"],
    )
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}
