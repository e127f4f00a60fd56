//! Builds vipd's XDP programs (`vip-ebpf`) for the BPF target from a build script, as
//! aya-build does, but quietly, and only the programs the calling crate embeds:
//! `vip-userspace/build.rs` builds the ones vipd ships, `tests/bench/build.rs` the
//! benchmark's own. Both use one nested target directory, so the BPF `core` is built once.
//!
//! A build script can only show its output through `cargo:warning=` lines, and aya-build
//! 0.2.0 relays everything the nested `cargo build` prints that way: its progress lines
//! (`Compiling vip-ebpf`, `Finished release`) become a page of `warning:` lines on every
//! build, replayed even when nothing was rebuilt, and a real warning drowns in them.
//! Here the nested build's output is sorted instead ([`relay_stderr`]):
//!
//! - compiler diagnostics (warnings and errors of `vip-ebpf`, read from cargo's JSON
//!   messages) are relayed in full, as before;
//! - cargo's own status lines (`Compiling`, `Finished`, `Blocking`, `Updating`, ...) are
//!   dropped: they say nothing that is wrong;
//! - anything else cargo prints on stderr (its own `warning:` and `error:` lines, and
//!   whatever this list does not know) is relayed, so an unknown line is shown rather
//!   than hidden;
//! - when the nested build fails, everything it printed goes to the build script's
//!   stderr, which cargo shows with the failure.
//!
//! A clean build therefore prints no warning at all (`cargo xtask test` checks it), and a
//! warning in the XDP programs still surfaces (`tests/relay.rs` builds a small BPF crate
//! with and without one through [`Nested::run`]).

use std::{
    ffi::OsString,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, anyhow, bail};
use cargo_metadata::{Artifact, CompilerMessage, Message};

/// The toolchain the XDP programs build with (`-Z build-std` needs nightly; `cargo xtask
/// setup` installs it with its `rust-src` component).
pub const TOOLCHAIN: &str = "nightly";

/// Set to `1` or `true`, the build script skips the eBPF build (aya-build's switch, kept
/// with its meaning; the embedded programs are then missing and vipd will not build).
pub const SKIP_VAR: &str = "AYA_BUILD_SKIP";

/// One nested `cargo build` of a BPF crate's binaries.
#[derive(Clone, Debug)]
pub struct Nested {
    /// The package to build (`vip-ebpf`).
    pub package: String,
    /// Its binaries to build; all of them when empty.
    pub bins: Vec<String>,
    /// Its directory; the build runs from there (its workspace's lock file applies).
    pub root_dir: PathBuf,
    /// `bpfel-unknown-none` or `bpfeb-unknown-none`.
    pub target: String,
    /// The host architecture, for the `bpf_target_arch` cfg aya-ebpf reads.
    pub target_arch: String,
    /// Where the nested build keeps its artifacts (never the outer target directory: the
    /// outer cargo holds its lock).
    pub target_dir: PathBuf,
}

/// What a nested build produced and what of its output is worth showing.
#[derive(Debug, Default)]
pub struct Outcome {
    pub success: bool,
    /// Binary name and path of every executable built.
    pub executables: Vec<(String, PathBuf)>,
    /// Lines to relay as `cargo:warning=`: diagnostics and unknown output, no progress.
    pub relayed: Vec<String>,
    /// Everything cargo printed on stderr, for a failure report.
    pub stderr: Vec<String>,
}

impl Nested {
    /// The `cargo build` command (through `rustup run nightly`).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("rustup");
        cmd.args(["run", TOOLCHAIN, "cargo", "build", "--package"])
            .arg(&self.package);
        if self.bins.is_empty() {
            cmd.arg("--bins");
        }
        for bin in &self.bins {
            cmd.args(["--bin", bin]);
        }
        cmd.args(["--release", "--message-format=json", "--color", "never"])
            .args(["--target", &self.target, "-Z", "build-std=core"])
            .arg("--target-dir")
            .arg(&self.target_dir)
            .current_dir(&self.root_dir);
        let mut rustflags = OsString::new();
        for (i, flag) in [
            format!("--cfg=bpf_target_arch=\"{}\"", self.target_arch),
            "-Cdebuginfo=2".to_owned(),
            "-Clink-arg=--btf".to_owned(),
        ]
        .iter()
        .enumerate()
        {
            if i > 0 {
                rustflags.push("\x1f");
            }
            rustflags.push(flag);
        }
        cmd.env("CARGO_ENCODED_RUSTFLAGS", rustflags);
        // The outer cargo's compiler and wrappers are for the host toolchain.
        for key in [
            "RUSTC",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTC_WRAPPER",
            "RUSTFLAGS",
        ] {
            cmd.env_remove(key);
        }
        cmd
    }

    /// Runs the build to completion and sorts its output.
    pub fn run(&self) -> Result<Outcome> {
        let mut cmd = self.command();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(std::result::Result::ok)
                .collect::<Vec<_>>()
        });
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut out = Outcome::default();
        for message in Message::parse_stream(stdout) {
            match message.context("reading cargo's JSON messages")? {
                Message::CompilerArtifact(Artifact {
                    executable: Some(exe),
                    target,
                    ..
                }) => out
                    .executables
                    .push((target.name.clone(), exe.into_std_path_buf())),
                Message::CompilerMessage(CompilerMessage { message, .. }) => {
                    let rendered = message.rendered.unwrap_or(message.message);
                    out.relayed
                        .extend(rendered.trim_end().lines().map(str::to_owned));
                }
                Message::TextLine(line) if !line.trim().is_empty() => out.relayed.push(line),
                _ => {}
            }
        }
        let status = child
            .wait()
            .with_context(|| format!("waiting for {cmd:?}"))?;
        out.stderr = stderr
            .join()
            .map_err(|_| anyhow!("the stderr reader panicked"))?;
        out.relayed.extend(relay_stderr(&out.stderr));
        out.success = status.success();
        Ok(out)
    }
}

/// Cargo's status verbs: the first word of the progress lines it prints on stderr.
const PROGRESS: &[&str] = &[
    "Adding",
    "Blocking",
    "Building",
    "Checking",
    "Compiling",
    "Downgrading",
    "Downloaded",
    "Downloading",
    "Dirty",
    "Finished",
    "Fresh",
    "Locking",
    "Removing",
    "Running",
    "Unpacking",
    "Updating",
    "Upgrading",
    "Waiting",
];

/// Whether a line of cargo's stderr is a progress line (`   Compiling vip-ebpf v0.1.0`).
pub fn is_progress(line: &str) -> bool {
    let line = strip_ansi(line);
    let trimmed = line.trim_start();
    // Cargo right-aligns its status verb: a progress line starts with blanks or the verb.
    let word = trimmed.split_whitespace().next().unwrap_or_default();
    PROGRESS.contains(&word) && trimmed.len() > word.len()
}

/// The lines of the nested cargo's stderr worth relaying: everything but progress and
/// blank lines. Compiler diagnostics arrive as JSON on stdout, not here; what is left
/// here is cargo's own `warning:` / `error:` output (including its "generated 1 warning"
/// summary) and anything unexpected.
pub fn relay_stderr(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !l.trim().is_empty() && !is_progress(l))
        .cloned()
        .collect()
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Where nested builds keep their artifacts: `ebpf` beside the profile directories of the
/// outer target directory (`target/ebpf`), shared by every build script that builds BPF
/// programs; never inside a profile directory, whose lock the outer cargo holds. Found
/// from `OUT_DIR` (`target/<profile>/build/<crate>-<hash>/out`); `OUT_DIR/ebpf-target`
/// when it is laid out otherwise.
pub fn nested_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "build"))
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(|target| target.join("ebpf"))
        .unwrap_or_else(|| out_dir.join("ebpf-target"))
}

/// What `vip-userspace/build.rs` and `tests/bench/build.rs` call: [`build_ebpf`] for the
/// binaries `bins` of the workspace's `vip-ebpf` package, found through the workspace
/// metadata, after checking that bpf-linker is there to link them.
pub fn build_workspace_ebpf(bins: &[&str]) -> Result<()> {
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
    build_ebpf(ebpf.name.as_str(), root.as_std_path(), bins)
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// The build-script entry point: builds the binaries `bins` of `package` (in `root_dir`)
/// for the BPF target of the host's endianness, relays what is worth relaying as
/// `cargo:warning=` lines, and copies them into `OUT_DIR` under their target names.
pub fn build_ebpf(package: &str, root_dir: &Path, bins: &[&str]) -> Result<()> {
    println!("cargo:rerun-if-env-changed={SKIP_VAR}");
    if let Some(skip) = std::env::var_os(SKIP_VAR)
        && (skip == "1" || skip.eq_ignore_ascii_case("true"))
    {
        println!(
            "cargo:warning={SKIP_VAR}={}; skipping the eBPF build",
            skip.display()
        );
        return Ok(());
    }
    // cargo-fuzz builds with `--cfg fuzzing`: its targets feed bytes to parsers and never
    // load a program, so empty stand-ins keep `include_bytes!` whole and save the nested
    // BPF build (25 s of the fuzz step's build on two cores).
    let env = |key: &str| std::env::var(key).map_err(|_| anyhow!("{key} is not set"));
    let out_dir = PathBuf::from(env("OUT_DIR")?);
    if std::env::var_os("CARGO_CFG_FUZZING").is_some() {
        for bin in bins {
            std::fs::write(out_dir.join(bin), [])
                .with_context(|| format!("writing the empty stand-in for {bin}"))?;
        }
        return Ok(());
    }
    // The crate's directory as a whole: its binaries are not what the build-dependency on
    // its library makes cargo watch.
    println!("cargo:rerun-if-changed={}", root_dir.display());
    let target = match env("CARGO_CFG_TARGET_ENDIAN")?.as_str() {
        "little" => "bpfel-unknown-none",
        "big" => "bpfeb-unknown-none",
        other => bail!("unsupported endianness {other}"),
    };
    let mut target_arch = env("CARGO_CFG_TARGET_ARCH")?;
    if target_arch.starts_with("riscv64") {
        target_arch = "riscv64".into();
    }
    let nested = Nested {
        package: package.to_owned(),
        bins: bins.iter().map(|b| (*b).to_owned()).collect(),
        root_dir: root_dir.to_owned(),
        target: target.to_owned(),
        target_arch,
        target_dir: nested_target_dir(&out_dir),
    };
    let outcome = nested.run()?;
    for line in &outcome.relayed {
        println!("cargo:warning={line}");
    }
    if !outcome.success {
        for line in &outcome.stderr {
            eprintln!("{line}");
        }
        bail!("building {package} for {target} failed (its output is above)");
    }
    for bin in bins {
        if !outcome.executables.iter().any(|(name, _)| name == bin) {
            bail!("building {package} for {target} produced no binary {bin}");
        }
    }
    if outcome.executables.is_empty() {
        bail!("building {package} for {target} produced no binary");
    }
    for (name, binary) in outcome.executables {
        let dst = out_dir.join(&name);
        std::fs::copy(&binary, &dst)
            .with_context(|| format!("copying {} to {}", binary.display(), dst.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    /// What the nested build printed on stderr in a fresh clone (recorded from aya-build's
    /// relay): every line is progress, so nothing is relayed.
    #[test]
    fn progress_of_a_clean_build_is_not_relayed() {
        let stderr = lines(
            "    Updating crates.io index\n \
             Downloading crates ...\n  \
             Downloaded aya-ebpf v0.2.1\n    \
             Blocking waiting for file lock on package cache\n   \
             Compiling compiler_builtins v0.1.160\n   \
             Compiling core v0.0.0 (/root/.rustup/toolchains/nightly/lib/rustlib/src/rust/library/core)\n   \
             Compiling vip-common v0.1.0 (/work/vipd/vip-common)\n   \
             Compiling vip-ebpf v0.1.0 (/work/vipd/vip-ebpf)\n    \
             Finished `release` profile [optimized + debuginfo] target(s) in 30.48s\n",
        );
        assert_eq!(relay_stderr(&stderr), Vec::<String>::new());
    }

    #[test]
    fn cargo_warnings_errors_and_unknown_lines_are_relayed() {
        let stderr = lines(
            "   Compiling vip-ebpf v0.1.0 (/work/vipd/vip-ebpf)\n\
             warning: `vip-ebpf` (bin \"vip-xdp\") generated 1 warning\n\
             warning: unused manifest key: package.metadata.foo\n\
             error: could not compile `vip-ebpf` (bin \"vip-xdp\") due to 1 previous error\n\
             \n\
             something cargo never printed before\n\
             Finished\n    \
             Finished `release` profile [optimized] target(s) in 1.00s\n",
        );
        assert_eq!(
            relay_stderr(&stderr),
            vec![
                "warning: `vip-ebpf` (bin \"vip-xdp\") generated 1 warning",
                "warning: unused manifest key: package.metadata.foo",
                "error: could not compile `vip-ebpf` (bin \"vip-xdp\") due to 1 previous error",
                "something cargo never printed before",
                // A bare verb is not a progress line: nothing follows it.
                "Finished",
            ]
        );
    }

    #[test]
    fn coloured_progress_is_recognised() {
        assert!(is_progress(
            "\x1b[1m\x1b[32m   Compiling\x1b[0m vip-ebpf v0.1.0"
        ));
        assert!(!is_progress(
            "\x1b[1m\x1b[33mwarning\x1b[0m: unused variable"
        ));
    }

    #[test]
    fn nested_builds_share_a_directory_beside_the_profiles() {
        let out = Path::new("/w/target/debug/build/vip-userspace-0123/out");
        assert_eq!(nested_target_dir(out), Path::new("/w/target/ebpf"));
        let cross = Path::new("/w/target/x86_64-unknown-linux-gnu/release/build/b-1/out");
        assert_eq!(
            nested_target_dir(cross),
            Path::new("/w/target/x86_64-unknown-linux-gnu/ebpf")
        );
        let odd = Path::new("/elsewhere/out");
        assert_eq!(
            nested_target_dir(odd),
            Path::new("/elsewhere/out/ebpf-target")
        );
    }

    #[test]
    fn the_nested_command_builds_for_bpf_with_btf_on_nightly() {
        let n = Nested {
            package: "vip-ebpf".into(),
            bins: vec!["vip-xdp".into(), "vip-pass".into()],
            root_dir: "/src/vip-ebpf".into(),
            target: "bpfel-unknown-none".into(),
            target_arch: "x86_64".into(),
            target_dir: "/out/ebpf-target".into(),
        };
        let cmd = n.command();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(cmd.get_program(), "rustup");
        assert_eq!(args[..3], ["run", "nightly", "cargo"]);
        for want in ["--release", "--message-format=json", "build-std=core"] {
            assert!(args.iter().any(|a| a == want), "{want} in {args:?}");
        }
        let bins: Vec<&String> = args
            .windows(2)
            .filter(|w| w[0] == "--bin")
            .map(|w| &w[1])
            .collect();
        assert_eq!(bins, ["vip-xdp", "vip-pass"], "only the programs asked for");
        assert!(!args.iter().any(|a| a == "--bins"));
        let flags = cmd
            .get_envs()
            .find(|(k, _)| *k == "CARGO_ENCODED_RUSTFLAGS")
            .and_then(|(_, v)| v)
            .map(|v| v.to_string_lossy().into_owned())
            .expect("rustflags set");
        assert_eq!(
            flags.split('\x1f').collect::<Vec<_>>(),
            [
                "--cfg=bpf_target_arch=\"x86_64\"",
                "-Cdebuginfo=2",
                "-Clink-arg=--btf"
            ]
        );
    }
}
