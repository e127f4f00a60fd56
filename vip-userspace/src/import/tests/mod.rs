//! The importer on the fixtures in `vip-userspace/tests/import/` (keepalived configurations
//! with the vipd file and the report each must give), on malformed input, on single
//! keywords, and through the entry point the CLI calls. No root, no devices: the vipd
//! files are checked with `Config::parse` against a [`FakeHost`].
//!
//! `VIPD_BLESS=1 cargo test -p vip-userspace --lib import` rewrites the expected files;
//! review the diff before committing it.

mod bounds;
mod cases;
mod cli;
mod coverage;
mod fixtures;
mod malformed;
mod options;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Options, Outcome, keepalived};
use crate::config::{Config, FakeHost};

/// Where the fixtures live.
fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import")
}

/// The lab host of the config tests, plus what the fixtures' scripts need: a shell,
/// programs keepalived finds by path search.
fn host() -> FakeHost {
    FakeHost::lab()
        .dir("/usr/bin", 0o755, 0, 0)
        .file("/bin/sh", 0o755, 0, 0)
        .file("/usr/bin/pidof", 0o755, 0, 0)
        .file("/usr/bin/killall", 0o755, 0, 0)
}

/// keepalived started as `keepalived -i r1` on a host named `fallback-host`.
fn options() -> Options {
    Options {
        config_id: Some("r1".to_owned()),
        router_id: "fallback-host".to_owned(),
    }
}

/// Everything an import printed: errors, then reports, one per line.
fn report_lines(outcome: &Outcome) -> Vec<String> {
    outcome
        .errors
        .iter()
        .map(|e| format!("error: {e}"))
        .chain(outcome.reports.iter().map(ToString::to_string))
        .collect()
}

/// The vipd file must load on the host it was made for.
fn must_load(toml: &str) -> Config {
    match Config::parse(toml, "vipd.toml", &host()) {
        Ok(config) => config,
        Err(e) => panic!("the imported file is rejected:\n{e}\n---\n{toml}"),
    }
}

/// A directory of its own under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vipd-import-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Imports `files` (the first is the main file, `keepalived.conf`) from a temp dir.
fn import(files: &[(&str, &str)]) -> Outcome {
    let dir = TempDir::new("case");
    for (name, text) in files {
        dir.write(name, text);
    }
    keepalived(&dir.path(files[0].0), &options(), &host())
}

/// Imports one main file.
fn import_one(text: &str) -> Outcome {
    import(&[("keepalived.conf", text)])
}

/// The vipd file of an import that must succeed and load.
fn converted(text: &str) -> (String, Vec<String>) {
    let outcome = import_one(text);
    let lines = report_lines(&outcome);
    let Some(toml) = outcome.toml else {
        panic!("import failed:\n{}", lines.join("\n"));
    };
    must_load(&toml);
    (toml, lines)
}

/// A minimal instance around `body`, for tests of single keywords.
fn instance(body: &str) -> String {
    format!(
        "global_defs {{\n    router_id r1\n}}\nvrrp_instance gw {{\n    interface eth0\n    virtual_router_id 51\n{body}\n}}\n"
    )
}
