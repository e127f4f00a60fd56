//! xdp-filter (xdp-tools, Debian package) on a lab node: another XDP program on the
//! interface vipd runs on, the way an edge router already runs a packet filter.
//!
//! xdp-filter keeps its maps and programs under one bpffs directory for the whole host
//! (`/sys/fs/bpf/xdp-filter`) and takes a host-wide lock file (`/run/xdp-filter.lck`)
//! for every command, so two labs using it at once would share its port list: lab tests
//! that use it run one at a time (`--test-threads=1`), and each command is retried while
//! another holds the lock. The guard unloads it when dropped.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{Lab, Node, netns};

/// xdp-filter's pin directory (fixed by xdp-tools).
pub const PIN_ROOT: &str = "/sys/fs/bpf/xdp-filter";

/// xdp-filter loaded on a node's interface; unloaded on drop.
pub struct XdpFilter {
    ns: String,
    ifname: String,
}

impl Lab {
    /// Loads xdp-filter (native mode, allow policy) on `node`'s interface.
    pub fn xdp_filter(&self, node: &Node) -> Result<XdpFilter> {
        let f = XdpFilter {
            ns: node.ns.clone(),
            ifname: node.ifname.clone(),
        };
        f.run(&["load", "--mode", "native", &node.ifname])?;
        Ok(f)
    }
}

impl XdpFilter {
    /// Runs `xdp-filter ARGS` in the node's namespace; retried for up to 10 s while
    /// another xdp-filter holds its lock.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let mut argv = vec!["xdp-filter"];
        argv.extend_from_slice(args);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = netns::nsenter(&self.ns, &argv).output()?;
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if out.status.success() {
                return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            if stderr.contains("lock") && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            bail!(
                "xdp-filter {args:?} failed ({}): {}",
                out.status,
                stderr.trim()
            );
        }
    }

    /// Drops TCP and UDP to destination `port`.
    pub fn deny_port(&self, port: u16) -> Result<()> {
        self.run(&["port", &port.to_string()]).map(drop)
    }

    /// The id of xdp-filter's program, as pinned by xdp-filter for the interface.
    pub fn program_id(&self) -> Result<u32> {
        let dir = std::path::Path::new(PIN_ROOT)
            .join("programs")
            .join(&self.ifname);
        let entry = std::fs::read_dir(&dir)?
            .flatten()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no program pinned in {}", dir.display()))?;
        let info = aya::programs::ProgramInfo::from_pin(entry.path())?;
        Ok(info.id())
    }
}

impl Drop for XdpFilter {
    fn drop(&mut self) {
        if let Err(e) = self.run(&["unload", &self.ifname]) {
            eprintln!("lab: {e:#}");
        }
    }
}

/// The id and name of the program on `ifname`'s XDP hook in namespace `ns`, as
/// `ip link` reports it.
pub fn hook_program(ns: &str, ifname: &str) -> Result<Option<(u32, String)>> {
    let out = netns::ip(ns, &["-d", "link", "show", ifname])?;
    let Some(rest) = out.split("prog/xdp id ").nth(1) else {
        return Ok(None);
    };
    let mut words = rest.split_whitespace();
    let id: u32 = words.next().unwrap_or_default().parse()?;
    let name = match (words.next(), words.next()) {
        (Some("name"), Some(n)) => n.to_owned(),
        _ => String::new(),
    };
    Ok(Some((id, name)))
}

/// The XDP attach mode `ip link` reports for `ifname` in `ns` (`xdp`, `xdpgeneric`, …),
/// if a program is attached.
pub fn hook_mode(ns: &str, ifname: &str) -> Result<Option<String>> {
    let out = netns::ip(ns, &["-d", "link", "show", ifname])?;
    let first = out.lines().next().unwrap_or_default();
    Ok(["xdpgeneric", "xdpoffload", "xdpmulti", "xdp"]
        .into_iter()
        .find(|m| first.split_whitespace().any(|w| w == *m))
        .map(str::to_owned))
}
