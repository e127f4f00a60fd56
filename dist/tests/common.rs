#![allow(dead_code)] // each test file uses some of these
//! Helpers shared by the dist tests.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The `dist/` directory.
pub fn dist() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh scratch directory for `name` under cargo's per-target temporary directory.
pub fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs a command (which must exist: `cargo xtask setup` installs every tool the tests
/// use) and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{cmd:?} could not start ({e}): run `cargo xtask setup`"))
}

/// stdout and stderr together, for messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The user the package's postinst creates for scripts and hooks (`debian/postinst`).
pub const SCRIPT_USER: &str = "vipd-script";

/// This machine once the package is installed: as it is, plus the script user the
/// postinst creates (unless it exists here already).
pub struct PackagedHost;

impl vipd::config::Host for PackagedHost {
    fn interface_exists(&self, name: &str) -> bool {
        vipd::config::LocalHost.interface_exists(name)
    }

    fn user(&self, name: &str) -> Result<Option<vipd::config::UserIds>, String> {
        match vipd::config::LocalHost.user(name)? {
            None if name == SCRIPT_USER => Ok(Some(vipd::config::UserIds { uid: 999, gid: 999 })),
            found => Ok(found),
        }
    }

    fn group(&self, name: &str) -> Result<Option<u32>, String> {
        vipd::config::LocalHost.group(name)
    }

    fn lstat(&self, path: &Path) -> std::io::Result<vipd::config::FileMeta> {
        vipd::config::LocalHost.lstat(path)
    }

    fn read_link(&self, path: &Path) -> std::io::Result<PathBuf> {
        vipd::config::LocalHost.read_link(path)
    }
}
