//! The configuration reader on any bytes (`Config::from_bytes`, what `Config::load` does
//! after reading the file), against the fake host the configuration tests use.
//!
//! Beyond "never panics": a rejected file names at least one problem and every problem
//! (and every warning of an accepted file) points at a line and column inside the file;
//! an accepted file prints (`to_toml_string`) to a file that reads back to an equal
//! configuration and prints the same again.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vipd::config::{Config, FakeHost, Problem};

const FILE: &str = "vipd.toml";

fn host() -> &'static FakeHost {
    static HOST: OnceLock<FakeHost> = OnceLock::new();
    HOST.get_or_init(FakeHost::lab)
}

fn inside(p: &Problem, lines: usize) {
    assert_eq!(p.file, FILE);
    assert!(
        p.line >= 1 && p.line <= lines,
        "{p}: outside the file's {lines} lines"
    );
    assert!(p.col >= 1, "{p}: column 0");
}

fuzz_target!(|bytes: &[u8]| {
    let lines = bytes.iter().filter(|b| **b == b'\n').count() + 1;
    match Config::from_bytes(bytes.to_vec(), FILE, host()) {
        Ok(config) => {
            for w in &config.warnings {
                inside(w, lines);
            }
            let printed = config.to_toml_string();
            let again = Config::parse(&printed, FILE, host())
                .unwrap_or_else(|e| panic!("the printed form is rejected:\n{e}\n---\n{printed}"));
            assert_eq!(again, config, "printed:\n{printed}");
            assert_eq!(again.to_toml_string(), printed);
        }
        Err(e) => {
            assert!(!e.problems.is_empty());
            for p in &e.problems {
                inside(p, lines);
            }
        }
    }
});
