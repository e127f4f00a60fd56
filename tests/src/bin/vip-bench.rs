//! `vip-bench`: the benchmark runner `cargo xtask bench` builds and runs as root.
//!
//! ```text
//! vip-bench [--quick] [--only ITEM,ITEM…] [--repeats N] [--vipd PATH] [--out DIR]
//! ```
//! Items: arp, cost, failover, takeover, resilience, scale. Writes `results.json`,
//! `results.md` and `failover.svg` to DIR (default `target/bench`) and prints the
//! markdown. Exits non-zero when an item could not be measured at all; goals missed are
//! results and show as FAIL in the tables.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result, bail};
use vip_tests::bench::{self, ITEMS, Options};

fn parse() -> Result<Options> {
    let mut opts = Options {
        quick: false,
        only: Vec::new(),
        vipd: None,
        out: PathBuf::from("target/bench"),
        repeats: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--only" => {
                for item in value("--only")?.split(',').filter(|s| !s.is_empty()) {
                    if !ITEMS.contains(&item) {
                        bail!("unknown item {item}; items: {}", ITEMS.join(", "));
                    }
                    opts.only.push(item.to_string());
                }
            }
            "--repeats" => opts.repeats = Some(value("--repeats")?.parse()?),
            "--vipd" => opts.vipd = Some(value("--vipd")?.into()),
            "--out" => opts.out = value("--out")?.into(),
            "-h" | "--help" => {
                println!(
                    "vip-bench [--quick] [--only ITEM,…] [--repeats N] [--vipd PATH] [--out DIR]\n\
                     items: {}",
                    ITEMS.join(", ")
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let result = parse().and_then(|opts| bench::run(&opts));
    match result {
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
