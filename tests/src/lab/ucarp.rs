//! ucarp (the Debian package, CARP on Linux) as a lab router: one process per namespace,
//! with up and down scripts that add or remove the virtual address and record every
//! state change in the router's directory.
//!
//! ucarp speaks IPv4 only and manages one address (`--addr`); it answers for that
//! address from the interface's own MAC (its up script adds the address to the
//! interface), while its advertisements leave from a MAC of its own making (see
//! `docs/carp.md`).

use std::{
    fmt::Write as _, net::Ipv4Addr, os::unix::fs::PermissionsExt, path::PathBuf, process::Stdio,
    time::Duration,
};

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use super::{Node, netns, process::Proc, wait_until};

#[derive(Clone, Debug)]
pub struct UcarpConfig {
    /// `--vhid`, 1..=255.
    pub vhid: u8,
    /// `--pass`: at most 19 bytes (ucarp refuses longer ones).
    pub pass: String,
    /// `--addr`: the one virtual address.
    pub addr: Ipv4Addr,
    /// Prefix length the up script adds the address with.
    pub prefix_len: u8,
    /// `--advbase`, whole seconds.
    pub advbase: u8,
    /// `--advskew`: 0 (best) to 255.
    pub advskew: u8,
    /// `--preempt`.
    pub preempt: bool,
    /// `--deadratio` (ucarp's default is 3).
    pub dead_ratio: Option<u32>,
    /// `--shutdown`: run the down script on SIGTERM when master.
    pub shutdown: bool,
    pub interface: String,
    /// More arguments, verbatim.
    pub extra: Vec<String>,
}

impl Default for UcarpConfig {
    fn default() -> Self {
        Self {
            vhid: 7,
            pass: "lab-carp-pass".into(),
            addr: Ipv4Addr::new(192, 0, 2, 70),
            prefix_len: 32,
            advbase: 1,
            advskew: 0,
            preempt: false,
            dead_ratio: None,
            shutdown: true,
            interface: "eth0".into(),
            extra: Vec::new(),
        }
    }
}

impl UcarpConfig {
    pub fn validate(&self) -> Result<()> {
        if self.vhid == 0 {
            bail!("vhid 0");
        }
        if self.pass.is_empty() || self.pass.len() > 19 {
            bail!(
                "ucarp takes a password of 1 to 19 bytes, got {}",
                self.pass.len()
            );
        }
        if self.advbase == 0 && self.advskew == 0 {
            bail!("ucarp refuses advbase 0 with advskew 0");
        }
        Ok(())
    }

    /// ucarp's command line for a router whose own address is `src`.
    pub fn argv(&self, src: Ipv4Addr, up: &str, down: &str) -> Result<Vec<String>> {
        self.validate()?;
        let mut a: Vec<String> = vec![
            "ucarp".into(),
            format!("--interface={}", self.interface),
            format!("--srcip={src}"),
            format!("--vhid={}", self.vhid),
            format!("--pass={}", self.pass),
            format!("--addr={}", self.addr),
            format!("--advbase={}", self.advbase),
            format!("--advskew={}", self.advskew),
            format!("--upscript={up}"),
            format!("--downscript={down}"),
            // Logs to stdout / stderr only (the lab keeps them), never to syslog.
            "--facility=none".into(),
        ];
        if self.preempt {
            a.push("--preempt".into());
        }
        if self.shutdown {
            a.push("--shutdown".into());
        }
        if let Some(r) = self.dead_ratio {
            a.push(format!("--deadratio={r}"));
        }
        a.extend(self.extra.iter().cloned());
        Ok(a)
    }
}

/// A ucarp running in a router namespace.
pub struct Ucarp {
    pub router: String,
    pub dir: PathBuf,
    proc: Proc,
}

pub(super) fn start(
    registry: &std::sync::Arc<super::process::Registry>,
    node: &Node,
    dir: PathBuf,
    cfg: &UcarpConfig,
) -> Result<Ucarp> {
    std::fs::create_dir_all(&dir)?;
    // A restart on the same node reuses the directory: the last run's state would make
    // this one look ready before it has said anything.
    for name in ["state", "transitions"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    // ucarp runs the scripts as `SCRIPT INTERFACE ADDR [XPARAM]`. The transition log is
    // written before the state file, so a state seen there is already in the log; the
    // rename keeps readers from seeing a half-written state.
    let script = |state: &str, ip_cmd: &str| {
        let mut s = String::from("#!/bin/sh\n");
        let _ = writeln!(s, "d={}", dir.display());
        let _ = writeln!(
            s,
            "ip addr {ip_cmd} \"$2/{}\" dev \"$1\" 2>/dev/null",
            cfg.prefix_len
        );
        let _ = writeln!(s, "echo \"$(date +%s.%N) {state}\" >> \"$d/transitions\"");
        let _ = writeln!(
            s,
            "echo {state} > \"$d/state.tmp\" && mv \"$d/state.tmp\" \"$d/state\""
        );
        s
    };
    let up = dir.join("up.sh");
    let down = dir.join("down.sh");
    std::fs::write(&up, script("MASTER", "add"))?;
    std::fs::write(&down, script("BACKUP", "del"))?;
    for p in [&up, &down] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    }
    let argv = cfg.argv(node.ipv4, &up.to_string_lossy(), &down.to_string_lossy())?;
    std::fs::write(dir.join("argv"), argv.join("\n"))?;
    let log = std::fs::File::create(dir.join("ucarp.log"))?;
    let argv_ref: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut cmd = netns::nsenter(&node.ns, &argv_ref);
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let proc = registry.spawn(&format!("ucarp {}", node.label), cmd)?;
    let u = Ucarp {
        router: node.label.clone(),
        dir,
        proc,
    };
    // Ready once it has said its first state: ucarp starts as backup and runs the down
    // script at once (unless --neutral).
    wait_until(
        &format!("ucarp on {} to report a state", node.label),
        Duration::from_secs(10),
        Duration::from_millis(10),
        || {
            if !u.proc.is_running() {
                bail!("ucarp exited:\n{}", u.log());
            }
            Ok(u.state().is_some())
        },
    )?;
    Ok(u)
}

impl Ucarp {
    /// MASTER or BACKUP, as the scripts last recorded.
    pub fn state(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("state"))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Waits until ucarp is in `state`; returns how long that took.
    pub fn wait_state(&self, state: &str, timeout: Duration) -> Result<Duration> {
        wait_until(
            &format!("ucarp on {} to be {state}", self.router),
            timeout,
            Duration::from_millis(5),
            || {
                if !self.proc.is_running() {
                    bail!("ucarp exited:\n{}", self.log());
                }
                let s = self.state();
                if s.as_deref() == Some(state) {
                    Ok(true)
                } else {
                    bail!("state {s:?}")
                }
            },
        )
    }

    /// Every transition so far: (wall-clock seconds, state).
    pub fn transitions(&self) -> Vec<(f64, String)> {
        std::fs::read_to_string(self.dir.join("transitions"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((it.next()?.parse().ok()?, it.next()?.to_string()))
            })
            .collect()
    }

    /// ucarp's log so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("ucarp.log")).unwrap_or_default()
    }

    pub fn process(&self) -> &Proc {
        &self.proc
    }

    /// `kill -9`: no down script, the address stays on the interface.
    pub fn kill(&self) -> Result<()> {
        self.proc.kill().map(drop)
    }

    /// SIGTERM: with `shutdown` set, a master runs its down script, then ucarp exits.
    pub fn stop(&self) -> Result<()> {
        let (_, clean) = self.proc.stop(Signal::SIGTERM, Duration::from_secs(5))?;
        if !clean {
            bail!("ucarp on {} ignored SIGTERM", self.router);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_spells_every_option_long() {
        let cfg = UcarpConfig {
            preempt: true,
            dead_ratio: Some(4),
            ..Default::default()
        };
        let argv = cfg
            .argv(Ipv4Addr::new(192, 0, 2, 11), "/u", "/d")
            .unwrap()
            .join(" ");
        assert!(argv.starts_with("ucarp --interface=eth0 --srcip=192.0.2.11 --vhid=7 "));
        assert!(argv.contains("--addr=192.0.2.70 --advbase=1 --advskew=0"));
        assert!(argv.contains("--preempt --shutdown --deadratio=4"));
    }

    #[test]
    fn refuses_what_ucarp_refuses() {
        let long = UcarpConfig {
            pass: "x".repeat(20),
            ..Default::default()
        };
        assert!(long.validate().is_err());
        let zero = UcarpConfig {
            advbase: 0,
            advskew: 0,
            ..Default::default()
        };
        assert!(zero.validate().is_err());
    }
}
