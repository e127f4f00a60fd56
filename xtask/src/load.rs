//! `load` / `unload`: the data plane alone on a real interface, for operators to try.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cmd::{cargo, run, workspace_root};

/// Builds the `vipd` binary (which embeds the XDP programs) and returns its path.
pub fn build_vipd(release: bool) -> Result<PathBuf> {
    let mut c = cargo();
    c.args(["build", "--package", "vip-userspace", "--bin", "vipd"]);
    if release {
        c.arg("--release");
    }
    run(&mut c)?;
    let profile = if release { "release" } else { "debug" };
    Ok(workspace_root().join("target").join(profile).join("vipd"))
}

pub fn load(iface: &str, pin: &Path) -> Result<()> {
    let vipd = build_vipd(false)?;
    run(std::process::Command::new(&vipd)
        .args(["xdp", "attach", "--iface", iface, "--pin"])
        .arg(pin))?;
    let p = pin.display();
    println!(
        "\nInspect it with:\n  \
         bpftool net show dev {iface}\n  \
         bpftool link show pinned {p}/link_{iface}\n  \
         bpftool link show pinned {p}/tc_{iface}\n  \
         bpftool map dump pinned {p}/VIPS\n  \
         bpftool map dump pinned {p}/GROUP_STATE\n  \
         bpftool map dump pinned {p}/STATS\n\
         Remove it with:\n  cargo xtask unload --iface {iface} --pin {p}"
    );
    Ok(())
}

pub fn unload(iface: &str, pin: &Path) -> Result<()> {
    let vipd = build_vipd(false)?;
    run(std::process::Command::new(&vipd)
        .args(["xdp", "detach", "--iface", iface, "--pin"])
        .arg(pin))
}
