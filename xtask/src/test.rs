//! `cargo xtask test`: the whole suite, as CI runs it.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

use crate::cmd::{cargo, is_root, render, run};

pub fn test(extra: &[String]) -> Result<()> {
    if !is_root() {
        bail!("the program and lab tests load XDP programs and create namespaces: run as root");
    }
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    // What a fresh clone's `cargo build` prints: no warning at all (cargo replays a build
    // script's warnings on every build, so this also sees the nested eBPF build's).
    crate::package::build_quietly(cargo().arg("build"))?;
    // Every member, the fuzz crate too (no default member; its targets must stay as
    // clean): one run checks vip-userspace once, with the `fuzzing` feature the fuzz
    // crate turns on, where two runs checked it twice (50 s more).
    run(cargo().args([
        "clippy",
        "--workspace",
        // Built for the BPF target only; checked for it below.
        "--exclude",
        "vip-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(Command::new("rustup")
        .current_dir(crate::cmd::workspace_root())
        .args([
            "run",
            "nightly",
            "cargo",
            "clippy",
            "--package",
            "vip-ebpf",
            "--bins",
        ])
        .args([
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--release",
        ])
        .args(["--", "-D", "warnings"])
        // The eBPF crate's own target dir: sharing the host one would rebuild core each time.
        .env(
            "CARGO_TARGET_DIR",
            crate::cmd::workspace_root().join("target/ebpf-clippy"),
        ))?;
    // The optimised daemon, before the tests: the package needs it anyway, and the labs
    // whose limits are about vipd's own CPU run it (`lab::release_vipd`).
    run(&mut crate::package::release_vipd())?;
    let mut c = cargo();
    c.args(["test", "--no-fail-fast"]).args(extra);
    // One test at a time: the lab tests measure failovers in milliseconds on two cores,
    // and two labs racing each other for them would measure the machine, not vipd.
    if !extra.iter().any(|a| a == "--") {
        c.arg("--");
    }
    c.arg("--test-threads=1");
    let tests = summarise(c);
    // Then the package, as it installs and purges it on this machine: the guide's install
    // commands, the installed files, unit and pages, a clean removal. The benchmark harness
    // is not compiled into any test: run it briefly so it cannot rot; it fails the suite
    // when an item cannot be measured, never on a missed goal. Then every fuzz target for
    // tens of seconds (docs/fuzzing.md), failing on any finding. All three are skipped
    // with a test-name filter (a focused run) and run even when a test failed, so one run
    // reports everything.
    if !extra.is_empty() {
        return tests;
    }
    let package = crate::package::test().map_err(|p| p.context("the package test failed"));
    let smoke = crate::bench::smoke().map_err(|s| s.context("the benchmark smoke run failed"));
    let fuzz = crate::fuzz::suite().map_err(|f| f.context("the fuzz step failed"));
    let failed: Vec<anyhow::Error> = [tests, package, smoke, fuzz]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    match failed.len() {
        0 => Ok(()),
        1 => Err(failed.into_iter().next().unwrap()),
        _ => Err(anyhow::anyhow!(
            "{}",
            failed
                .iter()
                .map(|e| format!("{e:#}"))
                .collect::<Vec<_>>()
                .join("; and ")
        )),
    }
}

/// Runs `cargo test`, echoing everything, and prints one total over all test binaries.
fn summarise(mut c: Command) -> Result<()> {
    eprintln!("+ {}", render(&c));
    let mut child = c
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", render(&c)))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (mut passed, mut failed, mut ignored, mut binaries) = (0u64, 0u64, 0u64, 0u64);
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            binaries += 1;
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(label), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let n: u64 = n.parse().unwrap_or(0);
                match label {
                    "passed" => passed += n,
                    "failed" => failed += n,
                    "ignored" => ignored += n,
                    _ => {}
                }
            }
        }
    }
    let status = child.wait()?;
    println!(
        "\nxtask test summary: {passed} passed, {failed} failed, {ignored} ignored \
         in {binaries} test binaries"
    );
    if !status.success() || failed > 0 {
        bail!("tests failed ({status})");
    }
    Ok(())
}
