//! Network namespaces: create, enter, run commands in, delete.
//!
//! Commands that need bpffs go through `nsenter --net=…` rather than `ip netns exec`: the
//! latter remounts `/sys` in a private mount namespace, which hides `/sys/fs/bpf` where vipd
//! pins its maps.

use std::{
    fs::File,
    os::fd::AsFd,
    path::PathBuf,
    process::{Command, Output},
};

use anyhow::{Context, Result, anyhow, bail};
use nix::sched::{CloneFlags, setns};

/// Where `ip netns` keeps its namespace handles.
pub const NETNS_DIR: &str = "/run/netns";

pub fn ns_path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

/// Moves the calling thread into namespace `name`. Only for threads the harness owns and
/// that never go back (probers); use [`in_netns`] otherwise.
pub fn enter_netns(name: &str) -> Result<()> {
    let file = File::open(ns_path(name)).with_context(|| format!("open netns {name}"))?;
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET).with_context(|| format!("setns into {name}"))
}

/// Runs `f` on a fresh thread that has joined namespace `name`, so the caller's own thread
/// never changes namespace. Sockets `f` creates stay bound to `name` wherever they are used
/// afterwards.
pub fn in_netns<T: Send, F: FnOnce() -> T + Send>(name: &str, f: F) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| -> Result<T> {
            enter_netns(name)?;
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow!("closure panicked inside netns {name}"))?
    })
}

/// A command that runs `argv` inside namespace `ns` (network namespace only: it keeps the
/// host's mounts, so bpffs is visible).
pub fn nsenter(ns: &str, argv: &[&str]) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", ns_path(ns).display()))
        .arg("--")
        .args(argv);
    cmd
}

/// Runs a command to completion; a non-zero exit is an error that carries its stderr.
pub fn run(mut cmd: Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().with_context(|| format!("spawn {shown}"))?;
    if !status.success() {
        bail!(
            "{shown} failed ({status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

/// `ip -n NS args…`.
pub fn ip(ns: &str, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("ip");
    cmd.arg("-n").arg(ns).args(args);
    run(cmd)
}

/// Sets `key=value` sysctls inside `ns` (network sysctls are per namespace).
pub fn sysctl(ns: &str, settings: &[(&str, &str)]) -> Result<()> {
    let mut argv = vec!["sysctl".to_string(), "-q".to_string(), "-w".to_string()];
    argv.extend(settings.iter().map(|(k, v)| format!("{k}={v}")));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    run(nsenter(ns, &argv)).map(drop)
}

pub fn add(name: &str) -> Result<()> {
    run({
        let mut c = Command::new("ip");
        c.args(["netns", "add", name]);
        c
    })?;
    ip(name, &["link", "set", "lo", "up"]).map(drop)
}

pub fn delete(name: &str) -> Result<()> {
    run({
        let mut c = Command::new("ip");
        c.args(["netns", "del", name]);
        c
    })
    .map(drop)
}

/// Names of all namespaces under `/run/netns`.
pub fn list() -> Vec<String> {
    std::fs::read_dir(NETNS_DIR)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The nsfs inode of a namespace handle, to find which processes live inside it.
pub fn inode(name: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(ns_path(name)).ok().map(|m| m.ino())
}
