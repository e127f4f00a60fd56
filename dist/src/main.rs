//! `vip-dist generate DIR`: the manual pages and shell completions for the Debian package
//! (`cargo xtask package` runs it).

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vip-dist",
    about = "Generate vipd's manual pages and shell completions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write man/*.{5,8} and completions/* under DIR.
    Generate { dir: PathBuf },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Generate { dir } => match vip_dist::generate(&dir) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vip-dist: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
