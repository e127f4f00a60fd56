//! Builds the labs' own XDP program from `vip-ebpf` (`vip-decap`, a real server's side
//! of the load balancer's tunnel method) for the BPF target through `vip-build`, into
//! OUT_DIR, where `src/lab/decap.rs` embeds it. vipd's build builds only what it ships.

fn main() -> anyhow::Result<()> {
    vip_build::build_workspace_ebpf(&["vip-decap"])
}
