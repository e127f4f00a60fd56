//! `cargo xtask bench`: builds vipd and the bench runner (release), runs the runner as
//! root and prints its markdown. Results land in `target/bench/` (`results.json`,
//! `results.md`, `failover.svg`).
//!
//! xtask does not link vip-userspace (building it needs bpf-linker, which `setup`
//! installs first); the measuring is all in `vip-bench` (tests crate).

use anyhow::{Result, bail};

use crate::{
    cmd::{cargo, is_root, run, workspace_root},
    load::build_vipd,
};

pub struct BenchArgs {
    pub quick: bool,
    pub only: Option<String>,
    pub repeats: Option<usize>,
}

pub fn bench(args: &BenchArgs) -> Result<()> {
    if !is_root() {
        bail!("the benchmarks load XDP programs and create namespaces: run as root");
    }
    // Release: the daemons are compared, not the debug build's bounds checks.
    let vipd = build_vipd(true)?;
    run(cargo().args([
        "build",
        "--release",
        "--package",
        "vip-tests",
        "--bin",
        "vip-bench",
    ]))?;
    let root = workspace_root();
    let out = root.join("target/bench");
    let mut c = std::process::Command::new(root.join("target/release/vip-bench"));
    c.current_dir(&root)
        .arg("--vipd")
        .arg(&vipd)
        .arg("--out")
        .arg(&out);
    if args.quick {
        c.arg("--quick");
    }
    if let Some(only) = &args.only {
        c.args(["--only", only]);
    }
    if let Some(n) = args.repeats {
        c.args(["--repeats", &n.to_string()]);
    }
    // vip-bench prints the markdown table on stdout when it is done.
    run(&mut c)?;
    eprintln!(
        "\nxtask bench: wrote {0}/results.md, {0}/results.json, {0}/failover.svg",
        out.display()
    );
    Ok(())
}
