//! Project tasks: `cargo xtask <setup|build|package|test|fuzz|load|unload|lab|bench>`.

mod bench;
mod cmd;
mod fuzz;
mod lab;
mod load;
mod package;
mod setup;
mod test;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "vipd project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what is missing (nightly rust-src, bpf-linker, cargo-deb, cargo-fuzz,
    /// Debian packages, bpffs).
    Setup,
    /// Build vipd with its embedded XDP programs.
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Build the Debian package: target/debian/vipd_<version>-1_<arch>.deb.
    Package {
        /// Then install it on this machine, check it, remove and purge it, as the
        /// operator's guide says (root; the last step of `cargo xtask test`).
        #[arg(long)]
        test: bool,
    },
    /// fmt check, a build that prints no warning, clippy -D warnings, unit tests,
    /// privileged program and lab tests, the package installed, checked and purged, a
    /// quick benchmark smoke run, and every fuzz target briefly.
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter), after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Fuzz targets (tests/fuzz, docs/fuzzing.md): every one briefly, as `test` does, or
    /// the ones named for longer; a finding fails with its reproducer.
    Fuzz {
        /// Targets to run (default: all of them).
        targets: Vec<String>,
        /// Seconds per target (default: 20, what `cargo xtask test` gives each).
        #[arg(long)]
        seconds: Option<u64>,
        /// Replay this input (a reproducer) through the one target named, and stop.
        #[arg(long)]
        input: Option<PathBuf>,
        /// List the targets.
        #[arg(long)]
        list: bool,
    },
    /// Attach the XDP responder to an interface with its maps pinned.
    Load {
        #[arg(long)]
        iface: String,
        #[arg(long, default_value = "/sys/fs/bpf/vipd")]
        pin: PathBuf,
    },
    /// Detach the responder from an interface and unpin its maps.
    Unload {
        #[arg(long)]
        iface: String,
        #[arg(long, default_value = "/sys/fs/bpf/vipd")]
        pin: PathBuf,
    },
    /// Show vipd working in a namespace lab.
    Lab,
    /// Benchmarks: vipd next to keepalived and FRR; writes target/bench/.
    Bench {
        /// A few seconds per item: checks the machinery, not the machine.
        #[arg(long)]
        quick: bool,
        /// Comma-separated items (see `vip-bench --help`).
        #[arg(long)]
        only: Option<String>,
        /// Repeats per measurement (overrides each item's default).
        #[arg(long)]
        repeats: Option<usize>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `{:#}` prints the cause chain without the backtrace RUST_BACKTRACE would add.
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    setup::setup()?;
    match cli.task {
        Task::Setup => Ok(()),
        Task::Build { release } => load::build_vipd(release).map(|_| ()),
        // The test builds the package itself, with the guide's own command.
        Task::Package { test: true } => package::test(),
        Task::Package { test: false } => package::package().map(|_| ()),
        Task::Test { args } => test::test(&args),
        Task::Fuzz {
            targets,
            seconds,
            input,
            list,
        } => fuzz::fuzz(&fuzz::FuzzArgs {
            targets,
            seconds,
            input,
            list,
        }),
        Task::Load { iface, pin } => load::load(&iface, &pin),
        Task::Unload { iface, pin } => load::unload(&iface, &pin),
        Task::Lab => lab::lab(),
        Task::Bench {
            quick,
            only,
            repeats,
        } => bench::bench(&bench::BenchArgs {
            quick,
            only,
            repeats,
        }),
    }
}
