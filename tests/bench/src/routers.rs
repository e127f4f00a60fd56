//! The router implementations a benchmark compares, behind one trait: start one on a lab
//! node with (VRID, priority, interval, VIPs, version), read its state, kill it with
//! `kill -9` or stop it with SIGTERM. vipd is one more variant next to keepalived and FRR.
//!
//! The vipd variant goes through the lab's own vipd starter (`vipd run --config FILE`
//! with the `[[vrrp]]` sections below, state from `vipd status --json`, `instances[].state`
//! = "master" / "backup"). It is used only when the binary given to the bench has a `run`
//! subcommand.

use std::{
    fmt::Write as _,
    net::IpAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use vip_tests::lab::{
    Frr, FrrConfig, Keepalived, KeepalivedConfig, Lab, Node, Vipd, process, wait_until,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Impl {
    Vipd,
    Keepalived,
    /// keepalived with its documented defence against forged adverts: unicast peers
    /// (`unicast_peer` = the spec's `allowed_peers`) and `check_unicast_src`.
    KeepalivedUnicast,
    Frr,
}

impl Impl {
    pub fn name(self) -> &'static str {
        match self {
            Impl::Vipd => "vipd",
            Impl::Keepalived => "keepalived",
            Impl::KeepalivedUnicast => "keepalived (unicast, check_unicast_src)",
            Impl::Frr => "frr",
        }
    }
}

/// The vipd binary the bench was given, and whether its daemon can run yet.
#[derive(Clone, Debug)]
pub struct VipdBinary {
    pub path: Option<PathBuf>,
    pub ready: bool,
    pub why: String,
}

impl VipdBinary {
    /// Checks `vipd --help` lists a `run` subcommand (the daemon is being finished in
    /// parallel; until it lands the vipd variants are reported as not run).
    pub fn probe(path: Option<&Path>) -> VipdBinary {
        let Some(path) = path else {
            return VipdBinary {
                path: None,
                ready: false,
                why: "no vipd binary given (--vipd)".into(),
            };
        };
        let help = Command::new(path).arg("--help").output();
        let (ready, why) = match help {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                let has_run = text
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some("run"));
                if has_run {
                    (true, format!("{} has `run`", path.display()))
                } else {
                    (
                        false,
                        format!(
                            "{} has no `run` subcommand yet: the daemon is not finished",
                            path.display()
                        ),
                    )
                }
            }
            Err(e) => (false, format!("{} does not run: {e}", path.display())),
        };
        VipdBinary {
            path: Some(path.to_owned()),
            ready,
            why,
        }
    }

    pub fn describe(&self) -> String {
        if self.ready {
            format!("vipd variants enabled ({})", self.why)
        } else {
            format!("vipd variants skipped: {}", self.why)
        }
    }

    /// The implementations to compare: vipd first when it can run, then `baselines`.
    pub fn with(&self, baselines: &[Impl]) -> Vec<Impl> {
        let mut v = Vec::new();
        if self.ready {
            v.push(Impl::Vipd);
        }
        v.extend_from_slice(baselines);
        v
    }
}

/// One virtual router as every implementation is configured for it.
#[derive(Clone, Debug)]
pub struct RouterSpec {
    pub vrid: u8,
    pub priority: u8,
    pub interval: Duration,
    /// All of one family.
    pub vips: Vec<IpAddr>,
    pub version: u8,
    pub interface: String,
    /// Sources admitted for this VRID (vipd's `allowed_peers`; keepalived and FRR in
    /// multicast mode have no equivalent and ignore it).
    pub allowed_peers: Vec<IpAddr>,
    /// Answer from the virtual MAC (vipd `vmac = true`, keepalived `use_vmac`). FRR's
    /// vrrpd always does (its macvlan carries the VMAC).
    pub vmac: bool,
    /// vipd's `bfd` inline table body (e.g. `interval = "1ms", multiplier = 3`); the
    /// baselines have no BFD in their VRRP and ignore it.
    pub bfd: Option<String>,
    /// vipd's `shared_vips` (active-active addresses, answered by several groups; needs
    /// `vmac`). The baselines have no equivalent: a spec with any is vipd-only.
    pub shared_vips: Vec<IpAddr>,
}

impl RouterSpec {
    pub fn new(priority: u8, interval: Duration, vips: Vec<IpAddr>) -> RouterSpec {
        RouterSpec {
            vrid: 51,
            priority,
            interval,
            vips,
            version: 3,
            interface: "eth0".into(),
            allowed_peers: Vec::new(),
            vmac: false,
            bfd: None,
            shared_vips: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Master,
    Backup,
    Fault,
    /// Starting, stopped, or something this bench does not distinguish.
    Other,
}

/// A running router implementation on one lab node.
pub trait Router: Send + Sync {
    fn implementation(&self) -> Impl;
    /// The lab node's label (`r1`, …).
    fn node(&self) -> &str;
    fn state(&self) -> Result<State>;
    /// `kill -9` of every process of the implementation (frozen first: no handler runs).
    fn kill9(&self) -> Result<()>;
    /// SIGTERM and wait for a clean exit.
    fn sigterm(&self) -> Result<()>;
    /// `kill -9` of the VRRP process alone, where the implementation has a parent that
    /// respawns it (keepalived); an error elsewhere.
    fn kill9_vrrp_child(&self) -> Result<()> {
        bail!("{} has no respawning parent", self.implementation().name())
    }
    /// Every process of the implementation right now (for CPU and memory).
    fn pids(&self) -> Vec<i32>;
    /// State changes so far, as the implementation itself counts or logs them.
    fn transitions(&self) -> Result<u64>;
    /// The implementation's log, for error messages.
    fn log(&self) -> String;
    /// How often [`wait_state`] may ask: reading a state file is free, spawning `vipd
    /// status` is not, and a poll loop must not tax the router it is watching.
    fn poll_every(&self) -> Duration {
        Duration::from_millis(5)
    }
}

pub fn start(
    imp: Impl,
    lab: &Lab,
    node: &Node,
    spec: &RouterSpec,
    vipd: &VipdBinary,
) -> Result<Box<dyn Router>> {
    if !spec.shared_vips.is_empty() && imp != Impl::Vipd {
        bail!("{} has no shared (active-active) VIPs", imp.name());
    }
    Ok(match imp {
        Impl::Keepalived => Box::new(Ka {
            imp,
            node: node.label.clone(),
            ka: lab.keepalived(node, &keepalived_config(spec))?,
        }),
        Impl::KeepalivedUnicast => {
            if spec.allowed_peers.is_empty() {
                bail!("keepalived in unicast mode needs the spec's allowed_peers");
            }
            let mut cfg = keepalived_config(spec);
            cfg.unicast_peers = spec.allowed_peers.clone();
            cfg.extra.push("check_unicast_src".into());
            Box::new(Ka {
                imp,
                node: node.label.clone(),
                ka: lab.keepalived(node, &cfg)?,
            })
        }
        Impl::Frr => {
            let cfg = FrrConfig {
                vrid: spec.vrid,
                priority: spec.priority,
                advert_interval: spec.interval,
                v4: spec
                    .vips
                    .iter()
                    .filter_map(|a| match a {
                        IpAddr::V4(a) => Some(*a),
                        IpAddr::V6(_) => None,
                    })
                    .collect(),
                v6: spec
                    .vips
                    .iter()
                    .filter_map(|a| match a {
                        IpAddr::V6(a) => Some(*a),
                        IpAddr::V4(_) => None,
                    })
                    .collect(),
                preempt: true,
                interface: spec.interface.clone(),
            };
            if spec.version != 3 {
                bail!("the FRR variant runs VRRPv3 only");
            }
            let v6 = cfg.v4.is_empty();
            Box::new(FrrRouter {
                node: node.label.clone(),
                frr: lab.frr(node, &cfg)?,
                v6,
            })
        }
        Impl::Vipd => Box::new(VipdRouter::start(
            lab,
            node,
            &[Instance::from_spec("g", spec)],
            vipd,
        )?),
    })
}

/// keepalived on `node` with a configuration the caller built (from [`keepalived_config`]
/// plus what an item adds, e.g. BFD instances), behind the same trait.
pub fn start_keepalived(lab: &Lab, node: &Node, cfg: &KeepalivedConfig) -> Result<Box<dyn Router>> {
    Ok(Box::new(Ka {
        imp: Impl::Keepalived,
        node: node.label.clone(),
        ka: lab.keepalived(node, cfg)?,
    }))
}

/// Waits until `r` reports `want`; returns how long that took.
pub fn wait_state(r: &dyn Router, want: State, timeout: Duration) -> Result<Duration> {
    wait_until(
        &format!(
            "{} on {} to be {want:?}",
            r.implementation().name(),
            r.node()
        ),
        timeout,
        r.poll_every(),
        || {
            let s = r.state()?;
            if s == want {
                Ok(true)
            } else {
                bail!("state {s:?}")
            }
        },
    )
    .with_context(|| format!("log:\n{}", tail(&r.log(), 20)))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A crash, not a shutdown: SIGSTOP every process, wait until the kernel reports each one
/// stopped, then SIGKILL them all. SIGSTOP is asynchronous; killing a daemon's parent
/// while a child still runs hands the child its parent-death signal (keepalived's VRRP
/// child then resigns with priority 0, which no crash would do). Callers reap afterwards.
fn freeze_then_kill(pids: &[i32]) {
    use nix::{sys::signal::kill, unistd::Pid};
    for &p in pids {
        let _ = kill(Pid::from_raw(p), Signal::SIGSTOP);
    }
    let stopped = |p: i32| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| {
                s.rfind(')')
                    .and_then(|i| s.get(i + 2..i + 3).map(str::to_owned))
            })
            .is_none_or(|state| state == "T" || state == "t" || state == "Z" || state == "X")
    };
    let _ = wait_until(
        "the daemon's processes to stop",
        Duration::from_secs(1),
        Duration::from_micros(200),
        || Ok(pids.iter().all(|p| stopped(*p))),
    );
    for &p in pids {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
}

fn tree(pid: i32) -> Vec<i32> {
    let mut v = vec![pid];
    v.extend(process::descendants(pid));
    v.retain(|p| process::alive(*p));
    v
}

// ---- keepalived ----

/// More VIPs than this go to `virtual_ipaddress_excluded`: keepalived carries at most 255
/// addresses in an advert (and an advert must fit the MTU); excluded VIPs are added and
/// removed with the state like the others.
const KEEPALIVED_ADVERTISED_VIPS: usize = 20;

pub fn keepalived_config(spec: &RouterSpec) -> KeepalivedConfig {
    let (advertised, excluded) = spec
        .vips
        .split_at(spec.vips.len().min(KEEPALIVED_ADVERTISED_VIPS));
    let mut extra = Vec::new();
    if !excluded.is_empty() {
        extra.push("virtual_ipaddress_excluded {".to_string());
        for v in excluded {
            let len = if v.is_ipv6() { 128 } else { 32 };
            extra.push(format!("    {v}/{len} dev {}", spec.interface));
        }
        extra.push("}".into());
    }
    if spec.vmac {
        extra.push("use_vmac".into());
    }
    KeepalivedConfig {
        vrid: spec.vrid,
        priority: spec.priority,
        version: spec.version,
        advert_interval: spec.interval,
        vips: advertised.to_vec(),
        interface: spec.interface.clone(),
        extra,
        // As its experts run it: the VRRP process at a real-time priority, the one vipd's
        // loop runs at by default (SCHED_RR 1, `docs/operations.md`), and no detailed log.
        global: vec![format!("vrrp_rt_priority {KEEPALIVED_RT_PRIORITY}")],
        detailed_log: false,
        ..Default::default()
    }
}

/// keepalived's `vrrp_rt_priority` in the bench: vipd's default SCHED_RR priority.
pub const KEEPALIVED_RT_PRIORITY: u8 = 1;

struct Ka {
    imp: Impl,
    node: String,
    ka: Keepalived,
}

impl Router for Ka {
    fn implementation(&self) -> Impl {
        self.imp
    }
    fn node(&self) -> &str {
        &self.node
    }
    fn state(&self) -> Result<State> {
        Ok(match self.ka.state().as_deref() {
            Some("MASTER") => State::Master,
            Some("BACKUP") => State::Backup,
            Some("FAULT") => State::Fault,
            _ => State::Other,
        })
    }
    fn kill9(&self) -> Result<()> {
        freeze_then_kill(&self.pids());
        self.ka.kill()
    }
    fn sigterm(&self) -> Result<()> {
        self.ka.stop()
    }
    fn kill9_vrrp_child(&self) -> Result<()> {
        // keepalived writes its VRRP child's pid to `-r FILE` (vrrp.pid in the lab).
        let pid: i32 = std::fs::read_to_string(self.ka.dir.join("vrrp.pid"))
            .context("keepalived's vrrp.pid")?
            .trim()
            .parse()
            .context("keepalived's vrrp.pid")?;
        if !self.pids().contains(&pid) {
            bail!("vrrp.pid names {pid}, not a keepalived process of this router");
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL)?;
        Ok(())
    }
    fn pids(&self) -> Vec<i32> {
        tree(self.ka.process().pid())
    }
    fn transitions(&self) -> Result<u64> {
        Ok(self.ka.transitions().len() as u64)
    }
    fn log(&self) -> String {
        self.ka.log()
    }
}

// ---- FRR ----

struct FrrRouter {
    node: String,
    frr: Frr,
    v6: bool,
}

impl Router for FrrRouter {
    fn implementation(&self) -> Impl {
        Impl::Frr
    }
    fn node(&self) -> &str {
        &self.node
    }
    fn state(&self) -> Result<State> {
        let s = self.frr.status()?;
        Ok(match if self.v6 { s.v6 } else { s.v4 }.as_str() {
            "Master" => State::Master,
            "Backup" => State::Backup,
            _ => State::Other,
        })
    }
    fn kill9(&self) -> Result<()> {
        freeze_then_kill(&self.pids());
        self.frr.kill()
    }
    fn sigterm(&self) -> Result<()> {
        self.frr.stop()
    }
    fn pids(&self) -> Vec<i32> {
        self.frr
            .processes()
            .iter()
            .flat_map(|p| tree(p.pid()))
            .collect()
    }
    fn transitions(&self) -> Result<u64> {
        bail!("FRR transitions are not tracked by this bench")
    }
    fn log(&self) -> String {
        self.frr.log("vrrpd")
    }
}

// ---- vipd ----

/// One `[[vrrp]]` section of a vipd configuration.
#[derive(Clone, Debug)]
pub struct Instance {
    pub name: String,
    pub spec: RouterSpec,
}

impl Instance {
    pub fn from_spec(name: &str, spec: &RouterSpec) -> Instance {
        Instance {
            name: name.into(),
            spec: spec.clone(),
        }
    }
}

/// "10ms", "1s": the duration strings the configuration takes.
fn duration_str(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The `[[vrrp]]` sections of a vipd configuration (the lab's vipd starter writes the
/// `[global]` part: pin path and control socket inside the lab).
pub fn vipd_sections(instances: &[Instance]) -> String {
    let list = |v: &[IpAddr]| {
        v.iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut c = String::new();
    for i in instances {
        let s = &i.spec;
        let _ = writeln!(
            c,
            "[[vrrp]]\nname = \"{}\"\ninterface = \"{}\"\nvrid = {}\npriority = {}\n\
             version = {}\nadvert_interval = \"{}\"\naccept = true\nvips = [{}]",
            i.name,
            s.interface,
            s.vrid,
            s.priority,
            s.version,
            duration_str(s.interval),
            list(&s.vips)
        );
        if !s.allowed_peers.is_empty() {
            let _ = writeln!(c, "allowed_peers = [{}]", list(&s.allowed_peers));
        }
        if s.vmac {
            let _ = writeln!(c, "vmac = true");
        }
        if let Some(bfd) = &s.bfd {
            let _ = writeln!(c, "bfd = {{ {bfd} }}");
        }
        if !s.shared_vips.is_empty() {
            let _ = writeln!(c, "shared_vips = [{}]", list(&s.shared_vips));
        }
        c.push('\n');
    }
    c
}

/// vipd on a lab node, started through the lab's own vipd starter.
pub struct VipdRouter {
    node: String,
    vipd: Vipd,
}

impl VipdRouter {
    /// Starts `vipd run` with `instances` in `node`'s namespace; returns once its control
    /// socket answers.
    pub fn start(
        lab: &Lab,
        node: &Node,
        instances: &[Instance],
        vipd: &VipdBinary,
    ) -> Result<VipdRouter> {
        let bin = match (&vipd.path, vipd.ready) {
            (Some(p), true) => p.clone(),
            _ => bail!("vipd cannot run: {}", vipd.why),
        };
        Ok(VipdRouter {
            node: node.label.clone(),
            vipd: lab.vipd(&bin, node, &vipd_sections(instances))?,
        })
    }

    /// The pin directory of this vipd's maps.
    pub fn pin(&self) -> &Path {
        &self.vipd.pin
    }

    /// `vipd status --json`.
    pub fn status(&self) -> Result<serde_json::Value> {
        self.vipd.status()
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        self.vipd.log()
    }

    /// Signals the daemon (SIGSTOP / SIGCONT to freeze it).
    pub fn signal(&self, sig: Signal) -> Result<()> {
        self.vipd.signal(sig)
    }

    /// Every instance's state, from `vipd status --json`.
    pub fn states(&self) -> Result<Vec<State>> {
        let s = self.vipd.status()?;
        let instances = s["instances"]
            .as_array()
            .context("vipd status has no instances[]")?;
        Ok(instances
            .iter()
            .map(|i| match i["state"].as_str().unwrap_or("") {
                "master" => State::Master,
                "backup" => State::Backup,
                "fault" => State::Fault,
                _ => State::Other,
            })
            .collect())
    }
}

impl Router for VipdRouter {
    fn implementation(&self) -> Impl {
        Impl::Vipd
    }
    fn node(&self) -> &str {
        &self.node
    }
    fn state(&self) -> Result<State> {
        self.states()?
            .first()
            .copied()
            .context("vipd reports no instance")
    }
    fn kill9(&self) -> Result<()> {
        freeze_then_kill(&self.pids());
        self.vipd.kill()
    }
    fn sigterm(&self) -> Result<()> {
        self.vipd.stop()
    }
    fn pids(&self) -> Vec<i32> {
        self.vipd.pid().map(tree).unwrap_or_default()
    }
    fn transitions(&self) -> Result<u64> {
        let s = self.vipd.status()?;
        Ok(s["instances"]
            .as_array()
            .context("vipd status has no instances[]")?
            .iter()
            .filter_map(|i| i["transitions"].as_u64())
            .sum())
    }
    fn log(&self) -> String {
        self.vipd.log()
    }
    fn poll_every(&self) -> Duration {
        Duration::from_millis(50)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vipd_sections_have_the_documented_fields() {
        let mut spec = RouterSpec::new(
            200,
            Duration::from_millis(10),
            vec!["192.0.2.1".parse().unwrap()],
        );
        spec.allowed_peers = vec!["192.0.2.12".parse().unwrap()];
        let text = vipd_sections(&[Instance::from_spec("g", &spec)]);
        for needle in [
            "[[vrrp]]",
            "name = \"g\"",
            "interface = \"eth0\"",
            "vrid = 51",
            "priority = 200",
            "advert_interval = \"10ms\"",
            "accept = true",
            "vips = [\"192.0.2.1\"]",
            "allowed_peers = [\"192.0.2.12\"]",
        ] {
            assert!(text.contains(needle), "{needle} in\n{text}");
        }
        assert_eq!(duration_str(Duration::from_secs(1)), "1s");
        assert_eq!(duration_str(Duration::from_millis(100)), "100ms");
    }

    #[test]
    fn keepalived_advertises_twenty_vips_and_excludes_the_rest() {
        let vips: Vec<IpAddr> = (1..=30)
            .map(|i| format!("2001:db8::1:{i:x}").parse().unwrap())
            .collect();
        let cfg = keepalived_config(&RouterSpec::new(100, Duration::from_millis(100), vips));
        assert_eq!(cfg.vips.len(), 20);
        assert_eq!(cfg.extra.len(), 12);
        assert_eq!(cfg.extra[0], "virtual_ipaddress_excluded {");
    }
}
