//! FRR vrrpd as a lab router: its own zebra and vrrpd per namespace, talking over sockets in
//! the router's directory, and a macvlan per family carrying the VMAC and the VIPs (zebra
//! protodowns it while the router is backup).
//!
//! State is read from vrrpd's vty socket (`show vrrp json`), without vtysh: the daemon's
//! unix vty takes a NUL-terminated command and ends its answer with three NUL bytes and a
//! status byte.

use std::{
    fmt::Write as _,
    io::{Read, Write},
    net::{Ipv4Addr, Ipv6Addr},
    os::unix::{fs::PermissionsExt, net::UnixStream},
    path::PathBuf,
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use super::{Node, netns, process::Proc, wait_until};

#[derive(Clone, Debug)]
pub struct FrrConfig {
    pub vrid: u8,
    pub priority: u8,
    /// 10 ms steps, 10 ms … 40.95 s.
    pub advert_interval: Duration,
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
    pub preempt: bool,
    pub interface: String,
}

impl Default for FrrConfig {
    fn default() -> Self {
        Self {
            vrid: 51,
            priority: 100,
            advert_interval: Duration::from_secs(1),
            v4: Vec::new(),
            v6: Vec::new(),
            preempt: true,
            interface: "eth0".into(),
        }
    }
}

impl FrrConfig {
    pub fn render(&self) -> Result<String> {
        let ms = self.advert_interval.as_millis();
        if !(10..=40_950).contains(&ms) || !ms.is_multiple_of(10) {
            bail!("advert interval {ms} ms: must be 10..=40950 ms in 10 ms steps");
        }
        if self.v4.is_empty() && self.v6.is_empty() {
            bail!("no VIPs");
        }
        let n = self.vrid;
        let mut c = format!("interface {}\n", self.interface);
        writeln!(c, " vrrp {n} version 3")?;
        writeln!(c, " vrrp {n} priority {}", self.priority)?;
        writeln!(c, " vrrp {n} advertisement-interval {ms}")?;
        if !self.preempt {
            writeln!(c, " no vrrp {n} preempt")?;
        }
        for a in &self.v4 {
            writeln!(c, " vrrp {n} ip {a}")?;
        }
        for a in &self.v6 {
            writeln!(c, " vrrp {n} ipv6 {a}")?;
        }
        Ok(c)
    }

    pub fn vmac4(&self) -> [u8; 6] {
        [0, 0, 0x5e, 0, 1, self.vrid]
    }

    pub fn vmac6(&self) -> [u8; 6] {
        [0, 0, 0x5e, 0, 2, self.vrid]
    }
}

/// zebra + vrrpd in a router namespace.
pub struct Frr {
    pub router: String,
    pub dir: PathBuf,
    pub vrid: u8,
    zebra: Proc,
    vrrpd: Proc,
}

/// What `show vrrp json` says about one family of a VRID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrrStatus {
    /// "Initialize", "Backup" or "Master".
    pub v4: String,
    pub v6: String,
    pub adverts_sent_v4: u64,
}

pub(super) fn start(
    registry: &std::sync::Arc<super::process::Registry>,
    node: &Node,
    dir: PathBuf,
    cfg: &FrrConfig,
) -> Result<Frr> {
    let conf_text = cfg.render()?;
    // The daemons drop to the frr user and create their sockets and pid files here.
    std::fs::create_dir_all(&dir)?;
    let frr = nix::unistd::User::from_name("frr")?.context("no frr user")?;
    let chown = |p: &std::path::Path| nix::unistd::chown(p, Some(frr.uid), Some(frr.gid));
    chown(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;

    let ns = &node.ns;
    let ifc = &cfg.interface;
    // Without arp_ignore the base interface would answer ARP for the VIP (it is a local
    // address) with its own MAC, next to the macvlan's VMAC answer.
    netns::sysctl(ns, &[(&format!("net.ipv4.conf.{ifc}.arp_ignore"), "1")])?;
    let mut macvlans = Vec::new();
    if !cfg.v4.is_empty() {
        macvlans.push((
            format!("vrrp4-{}", cfg.vrid),
            cfg.vmac4(),
            cfg.v4.iter().map(|a| format!("{a}/32")).collect::<Vec<_>>(),
        ));
    }
    if !cfg.v6.is_empty() {
        macvlans.push((
            format!("vrrp6-{}", cfg.vrid),
            cfg.vmac6(),
            cfg.v6.iter().map(|a| format!("{a}/128")).collect(),
        ));
    }
    // A restart on the same node: a killed zebra leaves its macvlan and sockets behind.
    for (name, _, _) in &macvlans {
        if netns::ip(ns, &["link", "show", name]).is_ok() {
            netns::ip(ns, &["link", "del", name])?;
        }
    }
    for f in ["zserv.api", "vrrpd.vty", "zebra.vty"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    for (name, mac, addrs) in &macvlans {
        let mac = super::capture::mac_str(mac);
        netns::ip(
            ns,
            &[
                "link", "add", name, "link", ifc, "address", &mac, "type", "macvlan", "mode",
                "bridge",
            ],
        )?;
        netns::sysctl(ns, &[(&format!("net.ipv6.conf.{name}.accept_dad"), "0")])?;
        for a in addrs {
            netns::ip(ns, &["addr", "add", a, "dev", name, "nodad"])?;
        }
        netns::ip(ns, &["link", "set", name, "up"])?;
    }

    let zconf = dir.join("zebra.conf");
    let vconf = dir.join("vrrpd.conf");
    std::fs::write(&zconf, "")?;
    std::fs::write(&vconf, conf_text)?;
    chown(&zconf)?;
    chown(&vconf)?;
    let d = dir.to_string_lossy().into_owned();
    let zserv = format!("{d}/zserv.api");
    let spawn = |daemon: &str, conf: &PathBuf| -> Result<Proc> {
        let log = std::fs::File::create(dir.join(format!("{daemon}.log")))?;
        let conf = conf.to_string_lossy().into_owned();
        let pid = format!("{d}/{daemon}.pid");
        let bin = format!("/usr/lib/frr/{daemon}");
        let mut cmd = netns::nsenter(
            ns,
            &[
                &bin,
                "-z",
                &zserv,
                "--vty_socket",
                &d,
                "-i",
                &pid,
                "-f",
                &conf,
                "-P",
                "0",
                "--log",
                "stdout",
            ],
        );
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        registry.spawn(&format!("{daemon} {}", node.label), cmd)
    };
    let zebra = spawn("zebra", &zconf)?;
    wait_until(
        &format!("zebra on {} to open its API socket", node.label),
        Duration::from_secs(10),
        Duration::from_millis(10),
        || {
            if !zebra.is_running() {
                bail!("zebra exited");
            }
            Ok(dir.join("zserv.api").exists())
        },
    )?;
    let vrrpd = spawn("vrrpd", &vconf)?;
    let frr = Frr {
        router: node.label.clone(),
        dir: dir.clone(),
        vrid: cfg.vrid,
        zebra,
        vrrpd,
    };
    wait_until(
        &format!("vrrpd on {} to answer on its vty", node.label),
        Duration::from_secs(10),
        Duration::from_millis(20),
        || {
            if !frr.vrrpd.is_running() {
                bail!("vrrpd exited:\n{}", frr.log("vrrpd"));
            }
            Ok(frr.status().is_ok())
        },
    )?;
    Ok(frr)
}

impl Frr {
    /// Runs a show command on vrrpd's vty socket and returns its output.
    pub fn vty(&self, command: &str) -> Result<String> {
        let path = self.dir.join("vrrpd.vty");
        let mut s =
            UnixStream::connect(&path).with_context(|| format!("connect {}", path.display()))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(command.as_bytes())?;
        s.write_all(&[0])?;
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = s.read(&mut buf).context("read vty")?;
            if n == 0 {
                bail!("vty closed before the end marker");
            }
            out.extend_from_slice(&buf[..n]);
            if out.len() >= 4 && out[out.len() - 4..out.len() - 1] == [0, 0, 0] {
                let status = out[out.len() - 1];
                out.truncate(out.len() - 4);
                if status != 0 {
                    bail!(
                        "vty `{command}` status {status}: {}",
                        String::from_utf8_lossy(&out)
                    );
                }
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
        }
    }

    pub fn status(&self) -> Result<FrrStatus> {
        let text = self.vty(&format!("show vrrp interface eth0 {} json", self.vrid))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parse {text}"))?;
        let g = v
            .as_array()
            .and_then(|a| a.iter().find(|g| g["vrid"] == self.vrid))
            .with_context(|| format!("no VRID {} in {text}", self.vrid))?;
        let s = |fam: &str| g[fam]["status"].as_str().unwrap_or("").to_string();
        Ok(FrrStatus {
            v4: s("v4"),
            v6: s("v6"),
            adverts_sent_v4: g["v4"]["stats"]["adverTx"].as_u64().unwrap_or(0),
        })
    }

    /// Waits until the IPv4 instance reports `state` ("Master", "Backup").
    pub fn wait_v4(&self, state: &str, timeout: Duration) -> Result<Duration> {
        wait_until(
            &format!("vrrpd on {} to be {state} (v4)", self.router),
            timeout,
            Duration::from_millis(20),
            || {
                let s = self.status()?;
                if s.v4 == state {
                    Ok(true)
                } else {
                    bail!("{s:?}")
                }
            },
        )
    }

    pub fn log(&self, daemon: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{daemon}.log"))).unwrap_or_default()
    }

    pub fn processes(&self) -> [&Proc; 2] {
        [&self.zebra, &self.vrrpd]
    }

    /// `kill -9` of vrrpd and zebra.
    pub fn kill(&self) -> Result<()> {
        self.vrrpd.kill()?;
        self.zebra.kill().map(drop)
    }

    /// Clean shutdown of vrrpd, then zebra.
    pub fn stop(&self) -> Result<()> {
        self.vrrpd.stop(Signal::SIGTERM, Duration::from_secs(5))?;
        self.zebra
            .stop(Signal::SIGTERM, Duration::from_secs(5))
            .map(drop)
    }
}

/// FRR daemons of the test's choice in a router namespace (e.g. zebra and bgpd), each with
/// its configuration text, talking over sockets in the router's directory.
pub struct FrrDaemons {
    pub router: String,
    pub dir: PathBuf,
    procs: Vec<(String, Proc)>,
}

pub(super) fn start_daemons(
    registry: &std::sync::Arc<super::process::Registry>,
    node: &Node,
    dir: PathBuf,
    daemons: &[(&str, &str)],
) -> Result<FrrDaemons> {
    std::fs::create_dir_all(&dir)?;
    let frr = nix::unistd::User::from_name("frr")?.context("no frr user")?;
    let chown = |p: &std::path::Path| nix::unistd::chown(p, Some(frr.uid), Some(frr.gid));
    chown(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let d = dir.to_string_lossy().into_owned();
    let zserv = format!("{d}/zserv.api");
    let _ = std::fs::remove_file(&zserv);
    let mut procs = Vec::new();
    for (daemon, text) in daemons {
        let conf = dir.join(format!("{daemon}.conf"));
        std::fs::write(&conf, text)?;
        chown(&conf)?;
        let _ = std::fs::remove_file(dir.join(format!("{daemon}.vty")));
        let log = std::fs::File::create(dir.join(format!("{daemon}.log")))?;
        let conf = conf.to_string_lossy().into_owned();
        let pid = format!("{d}/{daemon}.pid");
        let bin = format!("/usr/lib/frr/{daemon}");
        let mut cmd = netns::nsenter(
            &node.ns,
            &[
                &bin,
                "-z",
                &zserv,
                "--vty_socket",
                &d,
                "-i",
                &pid,
                "-f",
                &conf,
                "-P",
                "0",
                "--log",
                "stdout",
            ],
        );
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let p = registry.spawn(&format!("{daemon} {}", node.label), cmd)?;
        let vty = dir.join(format!("{daemon}.vty"));
        wait_until(
            &format!("{daemon} on {} to open its vty", node.label),
            Duration::from_secs(10),
            Duration::from_millis(10),
            || {
                if !p.is_running() {
                    bail!("{daemon} exited");
                }
                Ok(vty.exists() && (*daemon != "zebra" || dir.join("zserv.api").exists()))
            },
        )?;
        procs.push((daemon.to_string(), p));
    }
    Ok(FrrDaemons {
        router: node.label.clone(),
        dir,
        procs,
    })
}

impl FrrDaemons {
    /// `vtysh -c COMMAND` against these daemons; its output.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        let out = std::process::Command::new("vtysh")
            .arg("--vty_socket")
            .arg(&self.dir)
            .args(["-c", command])
            .output()
            .context("running vtysh")?;
        if !out.status.success() {
            bail!(
                "vtysh -c {command:?} on {}: {}{}",
                self.router,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `vtysh -c COMMAND` whose output is JSON.
    pub fn json(&self, command: &str) -> Result<serde_json::Value> {
        let text = self.vtysh(command)?;
        serde_json::from_str(&text).with_context(|| format!("parse {text}"))
    }

    pub fn log(&self, daemon: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{daemon}.log"))).unwrap_or_default()
    }

    pub fn processes(&self) -> impl Iterator<Item = &Proc> {
        self.procs.iter().map(|(_, p)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_vrrpd_interface_block() {
        let cfg = FrrConfig {
            vrid: 7,
            priority: 150,
            advert_interval: Duration::from_millis(100),
            v4: vec![Ipv4Addr::new(192, 0, 2, 1)],
            ..Default::default()
        };
        assert_eq!(
            cfg.render().unwrap(),
            "interface eth0\n vrrp 7 version 3\n vrrp 7 priority 150\n \
             vrrp 7 advertisement-interval 100\n vrrp 7 ip 192.0.2.1\n"
        );
        assert_eq!(cfg.vmac4(), [0, 0, 0x5e, 0, 1, 7]);
    }
}
