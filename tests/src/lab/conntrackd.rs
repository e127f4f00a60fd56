//! conntrackd as a lab daemon: one per router namespace, with its own configuration, lock
//! file, control socket and log in the router's directory (namespaces share the
//! filesystem, so the defaults under /var and /run would collide).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use super::{Node, netns, process::Proc, wait_until};

pub const BIN: &str = "/usr/sbin/conntrackd";

pub struct Conntrackd {
    pub router: String,
    pub ns: String,
    pub config: PathBuf,
    pub log: PathBuf,
    proc: Proc,
}

/// Rewrites a conntrackd.conf written for a real router (lock file, control socket and log
/// at their usual places) so that it runs beside others on one host: those three move into
/// `dir`.
pub fn localise(conf: &str, dir: &Path) -> String {
    conf.lines()
        .map(|line| {
            let t = line.trim_start();
            let indent = &line[..line.len() - t.len()];
            let key = t.split_whitespace().next().unwrap_or("");
            match key {
                "LockFile" => format!("{indent}LockFile {}/conntrackd.lock", dir.display()),
                "LogFile" => format!("{indent}LogFile {}/conntrackd.log", dir.display()),
                "Path" => format!("{indent}Path {}/conntrackd.ctl", dir.display()),
                _ => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

pub(super) fn start(
    registry: &std::sync::Arc<super::process::Registry>,
    node: &Node,
    dir: PathBuf,
    conf: &str,
) -> Result<Conntrackd> {
    std::fs::create_dir_all(&dir)?;
    for f in ["conntrackd.lock", "conntrackd.ctl"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let config = dir.join("conntrackd.conf");
    std::fs::write(&config, localise(conf, &dir))?;
    let out = std::fs::File::create(dir.join("conntrackd.out"))?;
    let cfg = config.to_string_lossy().into_owned();
    let mut cmd = netns::nsenter(&node.ns, &[BIN, "-C", &cfg]);
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let proc = registry.spawn(&format!("conntrackd {}", node.label), cmd)?;
    let c = Conntrackd {
        router: node.label.clone(),
        ns: node.ns.clone(),
        config,
        log: dir.join("conntrackd.log"),
        proc,
    };
    wait_until(
        &format!("conntrackd on {} to answer on its socket", node.label),
        Duration::from_secs(10),
        Duration::from_millis(20),
        || {
            if !c.proc.is_running() {
                bail!("conntrackd exited:\n{}", c.log());
            }
            Ok(c.ctl(&["-s"]).is_ok())
        },
    )?;
    Ok(c)
}

impl Conntrackd {
    /// `conntrackd -C CONF ARGS…` in the router's namespace; its stdout.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        let cfg = self.config.to_string_lossy().into_owned();
        let mut argv = vec![BIN, "-C", cfg.as_str()];
        argv.extend_from_slice(args);
        netns::run(netns::nsenter(&self.ns, &argv))
    }

    /// Entries in the external cache (what the peer sent us).
    pub fn external(&self) -> Result<String> {
        self.ctl(&["-e"])
    }

    pub fn log(&self) -> String {
        let mut s = std::fs::read_to_string(&self.log).unwrap_or_default();
        if let Some(dir) = self.log.parent() {
            s += &std::fs::read_to_string(dir.join("conntrackd.out")).unwrap_or_default();
        }
        s
    }

    pub fn process(&self) -> &Proc {
        &self.proc
    }

    pub fn stop(&self) -> Result<()> {
        self.proc
            .stop(Signal::SIGTERM, Duration::from_secs(5))
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localise_moves_lock_socket_and_log_into_the_directory() {
        let conf = "General {\n\tLogFile on\n\tLockFile /var/lock/conntrack.lock\n\tUNIX {\n\t\tPath /var/run/conntrackd.ctl\n\t}\n}";
        let out = localise(conf, Path::new("/tmp/x"));
        assert_eq!(
            out,
            "General {\n\tLogFile /tmp/x/conntrackd.log\n\tLockFile /tmp/x/conntrackd.lock\n\tUNIX {\n\t\tPath /tmp/x/conntrackd.ctl\n\t}\n}\n"
        );
    }
}
