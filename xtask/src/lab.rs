//! `cargo xtask lab`: a namespace lab showing the data plane at work.
//!
//! Placeholder until the daemon lands: it attaches the responder to a veth inside a
//! namespace, shows the program and its pinned maps with bpftool, and cleans up (also on
//! Ctrl-C).

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::{Result, bail};

use crate::{cmd::run, load::build_vipd};

struct Lab {
    ns: String,
    pin: String,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_dir_all(&self.pin);
        eprintln!("lab: removed namespace {} and {}", self.ns, self.pin);
    }
}

pub fn lab() -> Result<()> {
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))?;
    }
    let vipd = build_vipd(false)?;
    let id = std::process::id();
    let lab = Lab {
        ns: format!("vipd-lab-{id}"),
        pin: format!("/sys/fs/bpf/vipd-lab-{id}"),
    };
    let ns = lab.ns.as_str();
    run(Command::new("ip").args(["netns", "add", ns]))?;
    run(Command::new("ip").args([
        "-n", ns, "link", "add", "r1", "type", "veth", "peer", "name", "c1",
    ]))?;
    run(Command::new("ip").args(["-n", ns, "addr", "add", "192.0.2.11/24", "dev", "r1"]))?;
    run(Command::new("ip").args(["-n", ns, "link", "set", "r1", "up"]))?;
    run(Command::new("ip").args(["-n", ns, "link", "set", "c1", "up"]))?;
    let netns = format!("--net=/run/netns/{ns}");
    // nsenter switches only the network namespace; `ip netns exec` would remount /sys and
    // hide the bpffs the maps are pinned on.
    run(Command::new("nsenter")
        .arg(&netns)
        .arg(&vipd)
        .args(["xdp", "attach", "--iface", "r1", "--pin", &lab.pin]))?;
    if interrupted.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    run(Command::new("nsenter")
        .arg(&netns)
        .args(["bpftool", "net", "show", "dev", "r1"]))?;
    for map in ["GROUP_STATE", "STATS"] {
        let path = format!("{}/{map}", lab.pin);
        if std::path::Path::new(&path).exists() {
            run(Command::new("bpftool").args(["map", "dump", "pinned", &path]))?;
        }
    }
    run(Command::new("nsenter")
        .arg(&netns)
        .arg(&vipd)
        .args(["xdp", "detach", "--iface", "r1", "--pin", &lab.pin]))?;
    Ok(())
}
