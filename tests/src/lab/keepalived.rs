//! keepalived as a lab router: one process tree per namespace with its own config, pid
//! files and a notify script that records every state change in the router's directory.

use std::{
    fmt::Write as _,
    net::IpAddr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use super::{Node, netns, process::Proc, wait_until};

#[derive(Clone, Debug)]
pub struct KeepalivedConfig {
    pub vrid: u8,
    pub priority: u8,
    /// 2 or 3.
    pub version: u8,
    /// v3: 10 ms steps from 10 ms; v2: whole seconds.
    pub advert_interval: Duration,
    /// VIPs, either family; one instance per family is generated (keepalived does not mix
    /// families in an instance). Added as /32 or /128 on `interface`.
    pub vips: Vec<IpAddr>,
    /// v2 simple password authentication (at most 8 characters).
    pub auth_pass: Option<String>,
    /// Unicast peers instead of the multicast group.
    pub unicast_peers: Vec<IpAddr>,
    pub preempt: bool,
    pub interface: String,
    /// Interfaces whose failure makes this router FAULT.
    pub track_interfaces: Vec<String>,
    /// Extra lines for each `vrrp_instance` block, verbatim.
    pub extra: Vec<String>,
    /// Extra lines for `global_defs`, verbatim (the bench's `vrrp_rt_priority`).
    pub global: Vec<String>,
    /// Top-level blocks after `global_defs`, verbatim (`bfd_instance NAME { … }`).
    pub blocks: Vec<String>,
    /// keepalived's `-D` (detailed log): the labs read it when a test fails; the bench
    /// runs keepalived as its experts would, without it.
    pub detailed_log: bool,
}

impl Default for KeepalivedConfig {
    fn default() -> Self {
        Self {
            vrid: 51,
            priority: 100,
            version: 3,
            advert_interval: Duration::from_secs(1),
            vips: Vec::new(),
            auth_pass: None,
            unicast_peers: Vec::new(),
            preempt: true,
            interface: "eth0".into(),
            track_interfaces: Vec::new(),
            extra: Vec::new(),
            global: Vec::new(),
            blocks: Vec::new(),
            detailed_log: true,
        }
    }
}

/// Instance names in the generated config.
pub const INSTANCE_V4: &str = "vi4";
pub const INSTANCE_V6: &str = "vi6";

impl KeepalivedConfig {
    pub fn validate(&self) -> Result<()> {
        let ms = self.advert_interval.as_millis();
        match self.version {
            3 if !(10..=40_950).contains(&ms) || !ms.is_multiple_of(10) => {
                bail!("v3 advert interval {ms} ms: must be 10..=40950 ms in 10 ms steps")
            }
            2 if ms < 1000 || !ms.is_multiple_of(1000) => {
                bail!("v2 advert interval {ms} ms: must be whole seconds")
            }
            2 if self.vips.iter().any(IpAddr::is_ipv6) => bail!("VRRPv2 has no IPv6"),
            2 | 3 => {}
            v => bail!("VRRP version {v}"),
        }
        if self.vrid == 0 {
            bail!("VRID 0");
        }
        if self.vips.is_empty() {
            bail!("no VIPs");
        }
        if self.auth_pass.as_ref().is_some_and(|p| p.len() > 8) {
            bail!("auth_pass longer than 8 characters");
        }
        Ok(())
    }

    /// The keepalived.conf text for a router whose own addresses are `me`.
    pub fn render(&self, router_id: &str, me: &[IpAddr], notify: &Path) -> Result<String> {
        self.validate()?;
        let mut c = String::new();
        writeln!(
            c,
            "global_defs {{\n    router_id {router_id}\n    script_user root"
        )?;
        for line in &self.global {
            writeln!(c, "    {line}")?;
        }
        writeln!(c, "}}")?;
        for line in &self.blocks {
            writeln!(c, "{line}")?;
        }
        for v6 in [false, true] {
            let vips: Vec<&IpAddr> = self.vips.iter().filter(|a| a.is_ipv6() == v6).collect();
            if vips.is_empty() {
                continue;
            }
            let name = if v6 { INSTANCE_V6 } else { INSTANCE_V4 };
            let secs = self.advert_interval.as_secs_f64();
            writeln!(c, "vrrp_instance {name} {{")?;
            writeln!(c, "    state BACKUP")?;
            writeln!(c, "    interface {}", self.interface)?;
            writeln!(c, "    virtual_router_id {}", self.vrid)?;
            writeln!(c, "    priority {}", self.priority)?;
            writeln!(c, "    version {}", self.version)?;
            writeln!(c, "    advert_int {secs}")?;
            if !self.preempt {
                writeln!(c, "    nopreempt")?;
            }
            if let Some(pass) = &self.auth_pass {
                writeln!(
                    c,
                    "    authentication {{\n        auth_type PASS\n        auth_pass {pass}\n    }}"
                )?;
            }
            let peers: Vec<&IpAddr> = self
                .unicast_peers
                .iter()
                .filter(|a| a.is_ipv6() == v6)
                .collect();
            if !peers.is_empty() {
                if let Some(src) = me.iter().find(|a| a.is_ipv6() == v6) {
                    writeln!(c, "    unicast_src_ip {src}")?;
                }
                writeln!(c, "    unicast_peer {{")?;
                for p in peers {
                    writeln!(c, "        {p}")?;
                }
                writeln!(c, "    }}")?;
            }
            writeln!(c, "    virtual_ipaddress {{")?;
            for v in vips {
                let len = if v6 { 128 } else { 32 };
                writeln!(c, "        {v}/{len} dev {}", self.interface)?;
            }
            writeln!(c, "    }}")?;
            if !self.track_interfaces.is_empty() {
                writeln!(c, "    track_interface {{")?;
                for t in &self.track_interfaces {
                    writeln!(c, "        {t}")?;
                }
                writeln!(c, "    }}")?;
            }
            for line in &self.extra {
                writeln!(c, "    {line}")?;
            }
            writeln!(c, "    notify {}", notify.display())?;
            writeln!(c, "}}")?;
        }
        Ok(c)
    }
}

/// A keepalived running in a router namespace.
pub struct Keepalived {
    pub router: String,
    pub dir: PathBuf,
    proc: Proc,
    instances: Vec<String>,
}

pub(super) fn start(
    registry: &std::sync::Arc<super::process::Registry>,
    node: &Node,
    dir: PathBuf,
    cfg: &KeepalivedConfig,
) -> Result<Keepalived> {
    let me = [IpAddr::V4(node.ipv4), IpAddr::V6(node.ipv6)];
    let mut instances = Vec::new();
    if cfg.vips.iter().any(IpAddr::is_ipv4) {
        instances.push(INSTANCE_V4.to_owned());
    }
    if cfg.vips.iter().any(IpAddr::is_ipv6) {
        instances.push(INSTANCE_V6.to_owned());
    }
    cfg.validate()?;
    start_with(registry, node, dir, instances, cfg.detailed_log, |notify| {
        cfg.render(&node.label, &me, notify)
    })
}

/// Starts keepalived with a configuration `render` writes around the path of the lab's
/// state-recording notify script (which each of `instances` must name in its `notify`).
pub(super) fn start_with(
    registry: &std::sync::Arc<super::process::Registry>,
    node: &Node,
    dir: PathBuf,
    instances: Vec<String>,
    detailed_log: bool,
    render: impl FnOnce(&Path) -> Result<String>,
) -> Result<Keepalived> {
    std::fs::create_dir_all(&dir)?;
    // A restart on the same node reuses the directory: its predecessor's state files would
    // make this one look ready (and in that state) before it has said anything, and its pid
    // files make keepalived refuse to start ("daemon is already running") while a killed
    // child is still a zombie waiting for init to reap it.
    for e in std::fs::read_dir(&dir)?.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("state.") || name.ends_with(".pid") {
            std::fs::remove_file(e.path())?;
        }
    }
    let notify = dir.join("notify.sh");
    // `$2` is the instance, `$3` the new state; the rename keeps readers from seeing a
    // half-written file, the log keeps every transition with its wall-clock time and is
    // written first, so a state seen in the state file is already in the log.
    std::fs::write(
        &notify,
        format!(
            "#!/bin/sh\nd={dir}\necho \"$(date +%s.%N) $2 $3\" >> \"$d/transitions\"\n\
             echo \"$3\" > \"$d/state.$2.tmp\" && mv \"$d/state.$2.tmp\" \"$d/state.$2\"\n",
            dir = dir.display()
        ),
    )?;
    std::fs::set_permissions(&notify, std::fs::Permissions::from_mode(0o755))?;
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, render(&notify)?)?;
    let log = std::fs::File::create(dir.join("keepalived.log"))?;
    let conf_s = conf.to_string_lossy().into_owned();
    let pid = dir.join("keepalived.pid").to_string_lossy().into_owned();
    let vrrp_pid = dir.join("vrrp.pid").to_string_lossy().into_owned();
    // `--vrrp` leaves the BFD child on (keepalived starts it when the configuration has
    // a `bfd_instance`); its pid file is per router like the others, not every router's
    // `/run/keepalived_bfd.pid`.
    let bfd_pid = dir.join("bfd.pid").to_string_lossy().into_owned();
    let mut argv = vec!["keepalived", "--vrrp", "-n", "-l"];
    if detailed_log {
        argv.push("-D");
    }
    argv.extend([
        "-G", "-f", &conf_s, "-p", &pid, "-r", &vrrp_pid, "-b", &bfd_pid,
    ]);
    let mut cmd = netns::nsenter(&node.ns, &argv);
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let proc = registry.spawn(&format!("keepalived {}", node.label), cmd)?;
    let ka = Keepalived {
        router: node.label.clone(),
        dir,
        proc,
        instances,
    };
    // Ready once every instance has reported its first state.
    wait_until(
        &format!("keepalived on {} to report a state", node.label),
        Duration::from_secs(10),
        Duration::from_millis(10),
        || {
            if !ka.proc.is_running() {
                bail!("keepalived exited:\n{}", ka.log());
            }
            Ok(ka.instances.iter().all(|i| ka.state_of(i).is_some()))
        },
    )?;
    Ok(ka)
}

impl Keepalived {
    /// State of the first instance (IPv4 if it has IPv4 VIPs): MASTER, BACKUP, FAULT, STOP.
    pub fn state(&self) -> Option<String> {
        self.state_of(&self.instances[0])
    }

    pub fn state_of(&self, instance: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(format!("state.{instance}")))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Waits until every instance is in `state`; returns how long that took.
    pub fn wait_state(&self, state: &str, timeout: Duration) -> Result<Duration> {
        wait_until(
            &format!("keepalived on {} to be {state}", self.router),
            timeout,
            Duration::from_millis(5),
            || {
                let states: Vec<Option<String>> =
                    self.instances.iter().map(|i| self.state_of(i)).collect();
                if states.iter().all(|s| s.as_deref() == Some(state)) {
                    Ok(true)
                } else {
                    bail!("states {states:?}")
                }
            },
        )
    }

    /// Every transition so far: (wall-clock seconds, instance, state).
    pub fn transitions(&self) -> Vec<(f64, String, String)> {
        std::fs::read_to_string(self.dir.join("transitions"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((
                    it.next()?.parse().ok()?,
                    it.next()?.to_string(),
                    it.next()?.to_string(),
                ))
            })
            .collect()
    }

    /// keepalived's console log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("keepalived.log")).unwrap_or_default()
    }

    pub fn process(&self) -> &Proc {
        &self.proc
    }

    /// `kill -9` of every keepalived process of this router: no priority-0 advert, and the
    /// VIPs stay on the interface.
    pub fn kill(&self) -> Result<()> {
        self.proc.kill().map(drop)
    }

    /// A clean shutdown (SIGTERM): keepalived resigns with priority 0 and removes its VIPs.
    pub fn stop(&self) -> Result<()> {
        let (_, clean) = self.proc.stop(Signal::SIGTERM, Duration::from_secs(5))?;
        if !clean {
            bail!("keepalived on {} ignored SIGTERM", self.router);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_instance_per_family_with_fractional_interval() {
        let cfg = KeepalivedConfig {
            vips: vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
            advert_interval: Duration::from_millis(100),
            preempt: false,
            ..Default::default()
        };
        let me = ["192.0.2.11".parse().unwrap()];
        let text = cfg.render("r1", &me, Path::new("/x/notify.sh")).unwrap();
        assert!(text.contains("vrrp_instance vi4 {"));
        assert!(text.contains("vrrp_instance vi6 {"));
        assert!(text.contains("advert_int 0.1\n"));
        assert!(text.contains("192.0.2.1/32 dev eth0"));
        assert!(text.contains("2001:db8::1/128 dev eth0"));
        assert!(text.contains("nopreempt"));
    }

    #[test]
    fn renders_top_level_blocks_between_global_defs_and_the_instances() {
        let cfg = KeepalivedConfig {
            vips: vec!["192.0.2.1".parse().unwrap()],
            blocks: vec!["bfd_instance r2 {\n    neighbor_ip 192.0.2.12\n}".into()],
            ..Default::default()
        };
        let text = cfg.render("r1", &[], Path::new("/n")).unwrap();
        let (g, b, v) = (
            text.find("global_defs").unwrap(),
            text.find("bfd_instance r2 {").unwrap(),
            text.find("vrrp_instance vi4").unwrap(),
        );
        assert!(g < b && b < v, "{text}");
    }

    #[test]
    fn rejects_v2_with_subsecond_interval_or_ipv6() {
        let mut cfg = KeepalivedConfig {
            version: 2,
            vips: vec!["192.0.2.1".parse().unwrap()],
            advert_interval: Duration::from_millis(100),
            ..Default::default()
        };
        assert!(cfg.render("r1", &[], Path::new("/n")).is_err());
        cfg.advert_interval = Duration::from_secs(1);
        cfg.vips.push("2001:db8::1".parse().unwrap());
        assert!(cfg.render("r1", &[], Path::new("/n")).is_err());
    }
}
