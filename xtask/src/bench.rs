//! `cargo xtask bench`: builds vipd and the bench runner (`tests/bench`, crate
//! `vip-bench`, release), runs the runner as root and prints its markdown. Results land in
//! `target/bench/` (`results.json`, `results.md`, `failover.svg`).
//!
//! A full run (no `--quick`, no `--only`) also copies `results.md` to
//! `tests/bench/results.md` and regenerates the README's benchmark section from it, so
//! every figure the README shows comes from a run. `cargo xtask test` runs `--quick` as a
//! smoke step into `target/bench-smoke/`: it fails when the harness breaks, never because a
//! goal was missed.
//!
//! xtask does not link vip-userspace (building it needs bpf-linker, which `setup`
//! installs first); the measuring is all in `vip-bench`.

use std::path::PathBuf;

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

/// Builds the runner; returns its path.
fn build_runner() -> Result<PathBuf> {
    run(cargo().args([
        "build",
        "--release",
        "--package",
        "vip-bench",
        "--bin",
        "vip-bench",
    ]))?;
    Ok(workspace_root().join("target/release/vip-bench"))
}

pub fn bench(args: &BenchArgs) -> Result<()> {
    if !is_root() {
        bail!("the benchmarks load XDP programs and create namespaces: run as root");
    }
    let root = workspace_root();
    let out = root.join(if args.quick {
        "target/bench-quick"
    } else {
        "target/bench"
    });
    measure(args, &out)?;
    eprintln!(
        "\nxtask bench: wrote {0}/results.md, {0}/results.json, {0}/failover.svg",
        out.display()
    );
    if !args.quick && args.only.is_none() {
        let kept = root.join("tests/bench/results.md");
        std::fs::copy(out.join("results.md"), &kept)?;
        run(
            std::process::Command::new(root.join("target/release/vip-bench"))
                .current_dir(&root)
                .args(["readme", "--results"])
                .arg(&kept)
                .arg("--readme")
                .arg(root.join("README.md")),
        )?;
        eprintln!(
            "xtask bench: copied results.md to {} and regenerated README.md's table",
            kept.display()
        );
    }
    Ok(())
}

/// The smoke step of `cargo xtask test`: every item once, quickly. Fails only when an
/// item could not be measured (the runner's exit status), not on a missed goal.
pub fn smoke() -> Result<()> {
    let started = std::time::Instant::now();
    measure(
        &BenchArgs {
            quick: true,
            only: None,
            repeats: None,
        },
        &workspace_root().join("target/bench-smoke"),
    )?;
    eprintln!(
        "xtask test: bench smoke took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn measure(args: &BenchArgs, out: &std::path::Path) -> Result<()> {
    // Release: the daemons are compared, not the debug build's bounds checks.
    let vipd = build_vipd(true)?;
    let runner = build_runner()?;
    let root = workspace_root();
    let mut c = std::process::Command::new(runner);
    c.current_dir(&root)
        .arg("--vipd")
        .arg(&vipd)
        .arg("--out")
        .arg(out);
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
    run(&mut c)
}
