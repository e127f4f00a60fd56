//! `cargo xtask fuzz`: the coverage-guided fuzz targets in `tests/fuzz/` (cargo-fuzz,
//! libFuzzer; docs/fuzzing.md).
//!
//! Every target is built once on nightly (`cargo fuzz build`, into `target/fuzz/`) and
//! each binary is then run by itself for a while: the committed seeds
//! (`tests/fuzz/seeds/TARGET/`) are read, new inputs go to a scratch corpus under
//! `target/fuzz/corpus/TARGET/` (kept between runs, never in the repository), and a
//! crash, a timeout or running out of memory leaves its input under
//! `target/fuzz/artifacts/TARGET/`. `cargo xtask test` runs every target briefly and fails
//! on any finding, printing the reproducer and the command that replays it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::cmd::{output, render, run, workspace_root};

/// What `cargo xtask test` gives each target: tens of seconds, about 2 minutes for the
/// twelve targets on two cores (two at a time).
pub const SUITE_SECONDS: u64 = 20;

/// One input taking longer than this is a finding (a parser stuck on its input).
const TIMEOUT_SECONDS: u64 = 10;

/// Memory beyond this is a finding (an expansion without a cap).
const RSS_LIMIT_MB: u64 = 2048;

/// Inputs up to this size: four times the largest seed, enough for the longest frame a
/// socket hands over (BFD reads 512 bytes, echoes 256) and for configuration files.
const MAX_LEN: usize = 16384;

const FUZZ_DIR: &str = "tests/fuzz";
const HOST: &str = "x86_64-unknown-linux-gnu";

/// Command-line options of `cargo xtask fuzz`.
pub struct FuzzArgs {
    pub targets: Vec<String>,
    pub seconds: Option<u64>,
    pub input: Option<PathBuf>,
    pub list: bool,
}

fn fuzz_dir() -> PathBuf {
    workspace_root().join(FUZZ_DIR)
}

fn target_dir() -> PathBuf {
    workspace_root().join("target/fuzz")
}

/// `cargo fuzz` on the nightly toolchain (libFuzzer's instrumentation needs it).
fn cargo_fuzz(subcommand: &str) -> Command {
    let mut c = Command::new("rustup");
    c.current_dir(workspace_root())
        .args(["run", "nightly", "cargo", "fuzz", subcommand])
        .arg("--fuzz-dir")
        .arg(fuzz_dir());
    c
}

/// The targets, as `tests/fuzz/Cargo.toml` lists them.
pub fn targets() -> Result<Vec<String>> {
    let listed = output(&mut cargo_fuzz("list"))
        .context("`cargo fuzz list` failed (run `cargo xtask setup`)")?;
    let targets: Vec<String> = listed.lines().map(|l| l.trim().to_owned()).collect();
    if targets.is_empty() {
        bail!("{FUZZ_DIR}/Cargo.toml lists no fuzz target");
    }
    Ok(targets)
}

/// Builds every target: release with debug assertions and overflow checks, no
/// sanitizer (the targets are safe Rust: AddressSanitizer would halve the executions and
/// find nothing the bounds checks do not). Sixteen codegen units, not cargo-fuzz's one:
/// two cold builds back to back took 3 min 53 s and 4 min 42 s on two cores (whole runs
/// vary by as much), and in 20 s runs the targets executed about as many inputs (config
/// 48,560 against 38,421, vrrp_ipv4 14 % fewer).
pub fn build() -> Result<()> {
    run(cargo_fuzz("build")
        .args([
            "--sanitizer",
            "none",
            "--debug-assertions",
            "--codegen-units",
            "16",
            "--target-dir",
        ])
        .arg(target_dir()))
}

fn binary(target: &str) -> PathBuf {
    target_dir().join(HOST).join("release").join(target)
}

/// How one target's run went.
struct Outcome {
    seconds: f64,
    /// libFuzzer's last status line (`#N DONE cov: ... ft: ... corp: ...`).
    summary: String,
    log: PathBuf,
    reproducer: Option<PathBuf>,
    success: bool,
}

/// Runs `target` for `seconds` from its seeds and scratch corpus.
fn fuzz_one(target: &str, seconds: u64) -> Result<Outcome> {
    let root = target_dir();
    let corpus = root.join("corpus").join(target);
    let artifacts = root.join("artifacts").join(target);
    let logs = root.join("logs");
    for d in [&corpus, &artifacts, &logs] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let seeds = fuzz_dir().join("seeds").join(target);
    let log = logs.join(format!("{target}.log"));
    let mut c = Command::new(binary(target));
    // New inputs go to the first directory: the scratch corpus, never the seeds.
    c.arg(&corpus);
    if seeds.is_dir() {
        c.arg(&seeds);
    }
    c.arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={TIMEOUT_SECONDS}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-max_len={MAX_LEN}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    eprintln!("+ {}", render(&c));
    let started = Instant::now();
    let status = c
        .status()
        .with_context(|| format!("starting {} (build it first)", binary(target).display()))?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    Ok(Outcome {
        seconds: started.elapsed().as_secs_f64(),
        summary: text
            .lines()
            .rev()
            .find(|l| l.starts_with('#') && l.contains("cov:"))
            .unwrap_or("(no status line)")
            .to_owned(),
        reproducer: reproducer(&text),
        log,
        success: status.success(),
    })
}

/// The input libFuzzer saved for what it found (`Test unit written to PATH`).
fn reproducer(log: &str) -> Option<PathBuf> {
    log.lines()
        .filter_map(|l| l.split_once("Test unit written to "))
        .map(|(_, p)| PathBuf::from(p.trim()))
        .next_back()
}

/// Prints what a failed run found and how to replay it.
fn report_finding(target: &str, o: &Outcome) {
    let text = std::fs::read_to_string(&o.log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    eprintln!("\n---- fuzz target {target} found a problem ----");
    // The panic and its message (not the stack: the replay shows it), or else libFuzzer's
    // own last words (a timeout, running out of memory).
    let shown: Vec<&str> = match lines.iter().position(|l| l.contains("panicked at")) {
        Some(start) => lines[start..]
            .iter()
            .copied()
            .take_while(|l| !l.starts_with("stack backtrace:"))
            .take(40)
            .collect(),
        None => {
            let quiet: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| !(l.starts_with('#') && l.contains("cov:")))
                .collect();
            quiet[quiet.len().saturating_sub(30)..].to_vec()
        }
    };
    for l in &shown {
        eprintln!("{l}");
    }
    if let Some(summary) = lines.iter().find(|l| l.starts_with("SUMMARY:"))
        && !shown.contains(summary)
    {
        eprintln!("{summary}");
    }
    eprintln!("---- whole log: {}", o.log.display());
    match &o.reproducer {
        Some(r) => {
            eprintln!("reproducer: {}", r.display());
            eprintln!(
                "replay it:  cargo xtask fuzz {target} --input {}",
                r.display()
            );
            eprintln!(
                "or:         cargo +nightly fuzz run --fuzz-dir {FUZZ_DIR} --sanitizer none {target} {}",
                r.display()
            );
        }
        None => eprintln!("libFuzzer saved no reproducer (see the log)"),
    }
}

/// Runs every target (or the given ones) for `seconds` each; fails on any finding.
pub fn fuzz_targets(names: &[String], seconds: u64) -> Result<()> {
    build()?;
    let all = targets()?;
    let chosen: Vec<String> = if names.is_empty() {
        all
    } else {
        for n in names {
            if !all.contains(n) {
                bail!("no fuzz target {n}; there are: {}", all.join(", "));
            }
        }
        names.to_vec()
    };
    let started = Instant::now();
    // One target per CPU at a time: each libFuzzer run is single-threaded, so on two
    // cores two targets get their full time in half the wall clock.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let queue = std::sync::Mutex::new(chosen.iter());
    let failed = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    while let Some(t) = { queue.lock().unwrap().next() } {
                        let o = fuzz_one(t, seconds)?;
                        eprintln!(
                            "fuzz {t}: {:.0} s, {} {}",
                            o.seconds,
                            o.summary,
                            if o.success { "ok" } else { "FOUND A PROBLEM" }
                        );
                        if !o.success {
                            let mut failed = failed.lock().unwrap();
                            report_finding(t, &o);
                            failed.push(t.clone());
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a fuzz worker panicked")?;
        }
        Ok(())
    })?;
    let mut failed = failed.into_inner().unwrap();
    failed.sort();
    eprintln!(
        "\nxtask fuzz: {} targets, {} s each, {:.0} s in all; {} found a problem",
        chosen.len(),
        seconds,
        started.elapsed().as_secs_f64(),
        failed.len()
    );
    if !failed.is_empty() {
        bail!("fuzzing found problems in {}", failed.join(", "));
    }
    Ok(())
}

/// Replays one saved input through `target` (a reproducer, or any file).
pub fn replay(target: &str, input: &Path) -> Result<()> {
    build()?;
    let mut c = Command::new(binary(target));
    c.arg(input).env("RUST_BACKTRACE", "1");
    run(&mut c)
}

/// `cargo xtask fuzz`.
pub fn fuzz(args: &FuzzArgs) -> Result<()> {
    if args.list {
        for t in targets()? {
            println!("{t}");
        }
        return Ok(());
    }
    if let Some(input) = &args.input {
        let [target] = args.targets.as_slice() else {
            bail!("--input replays one target: name it");
        };
        return replay(target, input);
    }
    fuzz_targets(&args.targets, args.seconds.unwrap_or(SUITE_SECONDS))
}

/// The step of `cargo xtask test`: every target for [`SUITE_SECONDS`].
pub fn suite() -> Result<()> {
    let started = Instant::now();
    let r = fuzz_targets(&[], SUITE_SECONDS);
    eprintln!(
        "xtask fuzz: the fuzz step took {:?}",
        Duration::from_secs(started.elapsed().as_secs())
    );
    r
}
