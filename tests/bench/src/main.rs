//! `vip-bench`: the benchmark runner `cargo xtask bench` builds and runs as root.
//!
//! Writes `results.json`, `results.md` and `failover.svg` to `--out` (default
//! `target/bench`) and prints the markdown. Exits non-zero when an item could not be
//! measured at all; goals missed are results and show as `miss` in the tables.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use vip_bench::{ITEMS, Options, readme};

#[derive(Parser)]
#[command(
    name = "vip-bench",
    about = "vipd next to keepalived and FRR, in namespace labs"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args)]
struct RunArgs {
    /// A few seconds per item: checks the machinery, not the machine.
    #[arg(long)]
    quick: bool,
    /// Comma-separated items to run (all when absent).
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(ITEMS))]
    only: Vec<String>,
    /// Repeats per measurement (overrides each item's default).
    #[arg(long)]
    repeats: Option<usize>,
    /// The vipd binary (without one the vipd variants are left out).
    #[arg(long)]
    vipd: Option<PathBuf>,
    /// Where results.md, results.json and failover.svg go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Rewrites the generated section of a README from a results.md.
    Readme {
        #[arg(long)]
        results: PathBuf,
        #[arg(long)]
        readme: PathBuf,
        /// Only check that the section is what the results generate.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Readme {
        results,
        readme: path,
        check,
    }) = cli.command
    {
        return match readme::update_file(&results, &path, check) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("vip-bench readme: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let a = cli.run;
    let opts = Options {
        quick: a.quick,
        only: a.only,
        vipd: a.vipd,
        out: a.out,
        repeats: a.repeats,
    };
    match vip_bench::run(&opts) {
        Ok(out) => {
            println!("{}", out.markdown);
            if out.failed_items.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "vip-bench: items that could not be measured: {}",
                    out.failed_items.join(", ")
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("vip-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
