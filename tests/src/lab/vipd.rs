//! Running vipd on a lab node: a generated `[global]` (pin path and control socket inside
//! the lab, so parallel labs never share them), the test's `[[vrrp]]` sections, and state
//! read back through `vipd status --json`, the interface operators use.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use nix::sys::signal::Signal;
use serde_json::Value;

use super::{Lab, Node, Proc, netns, wait_until};

pub struct Vipd {
    pub router: String,
    bin: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub pin: PathBuf,
    log: PathBuf,
    proc: Option<Proc>,
    ns: String,
    /// Hand vipd a process connector socket opened in the initial network namespace.
    proc_events: bool,
}

/// The optimised `vipd` the package ships, built from this tree next to `debug_bin` (the
/// lab's `vipd-under-test`) in the same target directory: `cargo build --release`, a no-op
/// when `cargo xtask test` has built it before the tests. For the few limits that are
/// about the daemon's own CPU time, where the unoptimised debug build would measure the
/// compiler's settings rather than what operators run.
pub fn release_vipd(debug_bin: &Path) -> Result<PathBuf> {
    let target = debug_bin
        .parent()
        .and_then(Path::parent)
        .with_context(|| format!("no target directory above {}", debug_bin.display()))?;
    let mut cargo = std::process::Command::new(env!("CARGO"));
    // The test's own package variables (cargo sets them for the test binary, and OUT_DIR
    // since this crate has a build script) would change ring's build-script fingerprint
    // (`rerun-if-env-changed`) and rebuild the release tree xtask built before the tests;
    // see `forget_package_env` in xtask/src/cmd.rs.
    for (key, _) in std::env::vars_os() {
        if key
            .to_str()
            .is_some_and(|k| k.starts_with("CARGO_PKG_") || k.starts_with("CARGO_MANIFEST_"))
            || key == "CARGO_CRATE_NAME"
            || key == "OUT_DIR"
        {
            cargo.env_remove(key);
        }
    }
    let status = cargo
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--release",
            "--package",
            "vip-userspace",
            "--bin",
            "vipd",
        ])
        .env("CARGO_TARGET_DIR", target)
        .status()
        .context("running cargo build --release")?;
    if !status.success() {
        bail!("cargo build --release --bin vipd failed ({status})");
    }
    Ok(target.join("release").join("vipd"))
}

impl Lab {
    /// Writes a configuration for `node` with `vrrp` as its instance sections and starts
    /// `bin run` in the node's namespace; returns once the control socket answers.
    pub fn vipd(&self, bin: &Path, node: &Node, vrrp: &str) -> Result<Vipd> {
        let mut v = self.vipd_configured(bin, node, vrrp)?;
        self.start_vipd(&mut v, &[])?;
        Ok(v)
    }

    /// The configuration alone, not started (for `check` tests and restarts).
    pub fn vipd_configured(&self, bin: &Path, node: &Node, vrrp: &str) -> Result<Vipd> {
        let dir = self.scratch(&format!("vipd-{}", node.label))?;
        let pin = self.pin_dir()?.join(&node.label);
        let socket = dir.join("vipd.sock");
        let config = dir.join("vipd.toml");
        let text = format!(
            "[global]\nrouter_id = \"{}\"\npin_path = \"{}\"\ncontrol_socket = \"{}\"\n\n{vrrp}",
            node.label,
            pin.display(),
            socket.display()
        );
        std::fs::write(&config, text)?;
        Ok(Vipd {
            router: node.label.clone(),
            bin: bin.to_owned(),
            config,
            socket,
            pin,
            log: dir.join("vipd.log"),
            proc: None,
            ns: node.ns.clone(),
            proc_events: false,
        })
    }

    /// Starts a configured vipd (again).
    pub fn start_vipd(&self, v: &mut Vipd, extra: &[&str]) -> Result<()> {
        self.start_vipd_with_env(v, extra, &[])
    }

    /// Starts a configured vipd with extra environment variables (e.g. systemd's
    /// `NOTIFY_SOCKET`).
    pub fn start_vipd_with_env(
        &self,
        v: &mut Vipd,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<()> {
        self.start_vipd_full(v, &[], extra, env)?;
        v.wait_ready()
    }

    /// Starts a configured vipd through `wrapper` (a command that execs the rest of its
    /// arguments, e.g. `setpriv --bounding-set ... --`), as a service manager would set
    /// up its execution environment.
    pub fn start_vipd_wrapped(&self, v: &mut Vipd, wrapper: &[&str], extra: &[&str]) -> Result<()> {
        self.start_vipd_full(v, wrapper, extra, &[])?;
        v.wait_ready()
    }

    /// Like [`Lab::start_vipd_wrapped`] but returns at once, for a start expected to fail
    /// (wait on [`Vipd::process`] for its exit status).
    pub fn spawn_vipd_wrapped(&self, v: &mut Vipd, wrapper: &[&str], extra: &[&str]) -> Result<()> {
        self.start_vipd_full(v, wrapper, extra, &[])
    }

    fn start_vipd_full(
        &self,
        v: &mut Vipd,
        wrapper: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&v.log)?;
        let bin = v.bin.to_string_lossy().into_owned();
        let cfg = v.config.to_string_lossy().into_owned();
        let mut env = env.to_vec();
        let connector = if v.proc_events {
            env.extend([
                ("LISTEN_PID", "$$"),
                ("LISTEN_FDS", "1"),
                ("LISTEN_FDNAMES", "proc-events"),
            ]);
            Some(connector_socket()?)
        } else {
            None
        };
        let env = &env[..];
        let mut argv = wrapper.to_vec();
        argv.extend([bin.as_str(), "run", "--config", cfg.as_str()]);
        argv.extend_from_slice(extra);
        // A variable whose value is `$$` gets vipd's own pid, as systemd sets
        // WATCHDOG_PID: through a shell that execs vipd, keeping its pid.
        let own_pid: Vec<&str> = env
            .iter()
            .filter(|(_, v)| *v == "$$")
            .map(|(k, _)| *k)
            .collect();
        let script = own_pid
            .iter()
            .map(|k| format!("{k}=$$ "))
            .collect::<String>()
            + "exec \"$0\" \"$@\"";
        if !own_pid.is_empty() {
            argv.splice(0..0, ["/bin/sh", "-c", script.as_str()]);
        }
        let mut cmd = netns::nsenter(&v.ns, &argv);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env("RUST_LOG", "info,vipd=debug")
            .envs(env.iter().copied().filter(|(_, v)| *v != "$$"));
        if let Some(fd) = &connector {
            let raw = std::os::fd::AsRawFd::as_raw_fd(fd);
            // SAFETY: dup2 and fcntl are async-signal-safe and touch only descriptors.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                    if raw == 3 {
                        if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    } else if libc::dup2(raw, 3) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let proc = self.procs.spawn(&format!("vipd {}", v.router), cmd)?;
        // The child has its copy; ours closes here.
        drop(connector);
        v.proc = Some(proc);
        Ok(())
    }
}

/// A `NETLINK_CONNECTOR` socket opened here, in the initial network namespace, where the
/// kernel's process connector lives (a socket opened in a lab namespace reaches none):
/// what vipd is handed as `proc-events` (systemd's socket-passing convention).
fn connector_socket() -> Result<std::os::fd::OwnedFd> {
    const NETLINK_CONNECTOR: i32 = 11;
    // SAFETY: socket(2) returns a new descriptor or -1; nothing else is touched.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_CONNECTOR,
        )
    };
    anyhow::ensure!(
        fd >= 0,
        "opening a connector socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

impl Vipd {
    /// Hand the next starts a process connector socket from the initial network
    /// namespace (`track_processes` in a lab namespace needs it; docs/operations.md).
    pub fn hand_proc_events(&mut self) {
        self.proc_events = true;
    }

    fn wait_ready(&self) -> Result<()> {
        wait_until(
            &format!("vipd on {} to answer on its control socket", self.router),
            Duration::from_secs(15),
            Duration::from_millis(10),
            || {
                if let Some(p) = &self.proc
                    && !p.is_running()
                {
                    bail!("vipd exited:\n{}", self.log());
                }
                Ok(self.status().is_ok())
            },
        )
        .map(drop)
    }

    /// `vipd status --json` as JSON.
    pub fn status(&self) -> Result<Value> {
        let out = std::process::Command::new(&self.bin)
            .args(["status", "--json", "--socket"])
            .arg(&self.socket)
            .output()
            .context("running vipd status")?;
        if !out.status.success() {
            bail!("vipd status: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// Runs `vipd ARGS --socket SOCKET` (a control command: reload, demote, events...)
    /// as root; with `as_user`, through `setpriv` with those options first (e.g.
    /// `["--reuid=nobody", "--regid=nogroup", "--clear-groups"]`).
    pub fn ctl(&self, as_user: &[&str], args: &[&str]) -> Result<std::process::Output> {
        let mut cmd = if as_user.is_empty() {
            std::process::Command::new(&self.bin)
        } else {
            let mut c = std::process::Command::new("setpriv");
            c.args(as_user).arg("--").arg(&self.bin);
            c
        };
        cmd.args(args).arg("--socket").arg(&self.socket);
        cmd.output().context("running a vipd control command")
    }

    /// `vipd reload --json` (`--dry-run` with `dry_run`): the daemon's answer.
    pub fn reload_json(&self, dry_run: bool) -> Result<Value> {
        let mut args = vec!["reload", "--json"];
        if dry_run {
            args.push("--dry-run");
        }
        let out = self.ctl(&[], &args)?;
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "vipd reload answered {} / {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// `vipd status` as operators read it.
    pub fn status_text(&self) -> Result<String> {
        let out = std::process::Command::new(&self.bin)
            .args(["status", "--socket"])
            .arg(&self.socket)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The state of instance `name` ("master", "backup", "fault", "initialize").
    pub fn state_of(&self, name: &str) -> Result<String> {
        let s = self.status()?;
        s["instances"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["name"] == name))
            .and_then(|i| i["state"].as_str().map(str::to_owned))
            .with_context(|| format!("no instance {name} in {s}"))
    }

    pub fn instance(&self, name: &str) -> Result<Value> {
        let s = self.status()?;
        s["instances"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["name"] == name).cloned())
            .with_context(|| format!("no instance {name}"))
    }

    /// XDP counter `name` from the status.
    pub fn xdp(&self, name: &str) -> Result<u64> {
        let s = self.status()?;
        s["xdp"][name]
            .as_u64()
            .with_context(|| format!("no counter {name}"))
    }

    /// XDP counter `name` summed over CPUs, read from the pinned STATS map with bpftool:
    /// works while vipd is dead (after `kill`), when `status` cannot answer.
    pub fn pinned_xdp(&self, name: &str) -> Result<u64> {
        let map = self.pin.join("STATS");
        let out = std::process::Command::new("bpftool")
            .args(["map", "dump", "pinned"])
            .arg(&map)
            .arg("-j")
            .output()
            .context("running bpftool")?;
        if !out.status.success() {
            bail!(
                "bpftool map dump pinned {}: {}",
                map.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let dump: Value = serde_json::from_slice(&out.stdout)?;
        // One entry (key 0); with BTF, "formatted" holds each CPU's counters by name.
        let cpus = dump
            .get(0)
            .and_then(|e| e["formatted"]["values"].as_array())
            .with_context(|| format!("unexpected bpftool dump: {dump}"))?;
        cpus.iter()
            .map(|c| {
                c["value"][name]
                    .as_u64()
                    .with_context(|| format!("no counter {name} in {c}"))
            })
            .sum()
    }

    /// Waits until instance `name` is in `state`; returns how long that took.
    pub fn wait_state(&self, name: &str, state: &str, timeout: Duration) -> Result<Duration> {
        wait_until(
            &format!("vipd {} instance {name} to be {state}", self.router),
            timeout,
            Duration::from_millis(5),
            || {
                if let Some(p) = &self.proc
                    && !p.is_running()
                {
                    bail!("vipd exited:\n{}", self.log());
                }
                let now = self.state_of(name)?;
                if now == state {
                    Ok(true)
                } else {
                    bail!("state {now}")
                }
            },
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How long the log is now: a mark for [`Vipd::wait_log`].
    pub fn log_mark(&self) -> usize {
        self.log().len()
    }

    /// Waits until the log written after `mark` contains `needle`; returns that part,
    /// without terminal colour codes (so `key=value` fields read as written).
    pub fn wait_log(&self, mark: usize, needle: &str, timeout: Duration) -> Result<String> {
        super::wait_for(
            &format!("vipd on {} to log {needle:?}", self.router),
            timeout,
            Duration::from_millis(10),
            || {
                let log = self.log();
                let new = strip_ansi(log.get(mark..).unwrap_or_default());
                Ok(new.contains(needle).then_some(new))
            },
        )
    }

    pub fn process(&self) -> Option<&Proc> {
        self.proc.as_ref()
    }

    pub fn pid(&self) -> Option<i32> {
        self.proc.as_ref().map(Proc::pid)
    }

    /// kill -9: no resignation, no cleanup (program and maps stay pinned).
    pub fn kill(&self) -> Result<()> {
        match &self.proc {
            Some(p) => p.kill().map(drop),
            None => Ok(()),
        }
    }

    /// SIGTERM and wait for a clean exit (bounded).
    pub fn stop(&self) -> Result<()> {
        self.signal_and_wait(Signal::SIGTERM)
    }

    pub fn signal(&self, sig: Signal) -> Result<()> {
        match &self.proc {
            Some(p) => p.signal(sig),
            None => Ok(()),
        }
    }

    pub fn signal_and_wait(&self, sig: Signal) -> Result<()> {
        let Some(p) = &self.proc else { return Ok(()) };
        let (status, clean) = p.stop(sig, Duration::from_secs(10))?;
        if !clean || !status.success() {
            bail!(
                "vipd on {} did not exit cleanly ({status}):\n{}",
                self.router,
                self.log()
            );
        }
        Ok(())
    }

    /// Adds `lines` (keys of `[global]`, each ending in a newline) to the configuration.
    pub fn set_global(&self, lines: &str) -> Result<()> {
        let text = std::fs::read_to_string(&self.config)?;
        let global_end = text.find("\n\n").map(|i| i + 1).unwrap_or(text.len());
        std::fs::write(
            &self.config,
            format!("{}{lines}{}", &text[..global_end], &text[global_end..]),
        )?;
        Ok(())
    }

    /// Rewrites the instance sections (for SIGHUP reload tests).
    pub fn rewrite(&self, vrrp: &str) -> Result<()> {
        let text = std::fs::read_to_string(&self.config)?;
        let global_end = text.find("\n\n").map(|i| i + 2).unwrap_or(text.len());
        std::fs::write(&self.config, format!("{}{vrrp}", &text[..global_end]))?;
        Ok(())
    }
}

/// `text` without ANSI escape sequences (`ESC [ … letter`).
pub fn strip_ansi(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    #[test]
    fn strips_colour_codes_from_log_fields() {
        assert_eq!(
            super::strip_ansi("\x1b[3mkept\x1b[0m\x1b[2m=\x1b[0m1 ok"),
            "kept=1 ok"
        );
    }
}
