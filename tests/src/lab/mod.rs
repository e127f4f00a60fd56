//! The namespace lab: a bridge namespace acting as the switch, router namespaces, and
//! optionally a client and an attacker, each joined to the bridge by a veth pair.
//!
//! ```text
//!   r1:eth0 ── p-r1 ┐
//!   r2:eth0 ── p-r2 ├─ br0 (namespace <prefix>-br)
//!   cl:eth0 ── p-cl ┤
//!   at:eth0 ── p-at ┘
//! ```
//!
//! With [`LabBuilder::wan`] the bridge namespace also holds `br1`, an upstream network
//! (198.51.100.0/24) with a server `sv` and every router's `wan0`; with
//! [`LabBuilder::sync_link`] r1 and r2 are joined directly by `sync0` (203.0.113.0/30), a
//! dedicated link for state synchronisation:
//!
//! ```text
//!   r1:wan0 ── w-r1 ┐
//!   r2:wan0 ── w-r2 ├─ br1 (same namespace)        r1:sync0 ──── r2:sync0
//!   sv:eth0 ── p-sv ┘
//! ```
//!
//! Every namespace is named `vt<pid>x<n>-<label>`, so labs of parallel tests never collide
//! and a lab whose test process died (SIGKILL, crash) is recognised and swept by the next
//! `Lab` built on the machine. Everything a lab creates — namespaces, processes, its
//! directory under [`LAB_ROOT`], its pin directory — is removed when it is dropped,
//! panics included.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use vip_tests::lab::{KeepalivedConfig, Lab, Method};
//!
//! let lab = Lab::builder().routers(2).client().build()?;
//! let vip = "192.0.2.1".parse()?;
//! let cfg = |priority| KeepalivedConfig { priority, vips: vec![vip], ..Default::default() };
//! let master = lab.keepalived(lab.router(1), &cfg(200))?;
//! let backup = lab.keepalived(lab.router(2), &cfg(100))?;
//! master.wait_state("MASTER", Duration::from_secs(10))?;
//! let probe = lab.probe(lab.client(), Method::Resolve, vip, Duration::from_millis(2),
//!                       Duration::from_secs(5), &[])?;
//! master.kill()?;
//! backup.wait_state("MASTER", Duration::from_secs(5))?;
//! let run = probe.stop()?;
//! println!("{}", run.summary()); // gap, loss, overlap windows, responders
//! # Ok(()) }
//! ```
//!
//! Every bridge-side veth carries the `vipd_pass` XDP program: a veth discards frames its
//! peer sends with `XDP_TX` unless it runs an XDP program itself (docs/architecture.md, kernel facts).

pub mod attack;
pub mod block;
pub mod capture;
pub mod clients;
pub mod conntrackd;
pub mod decap;
pub mod flow;
pub mod frr;
pub mod keepalived;
pub mod netns;
pub mod probe;
pub mod process;
pub mod recipe;
pub mod ucarp;
pub mod vipd;
pub mod xdp_filter;

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use aya::{
    Ebpf,
    programs::{Xdp, XdpMode},
};

pub use attack::{Injector, TRAFGEN_CPU, advert_v4};

pub use capture::{Capture, Frame, Kind, Mac, mac_str};
pub use conntrackd::Conntrackd;
pub use decap::{Decap, DecapSeen};
pub use flow::{EchoServer, Flow, FlowRun, Proto};
pub use frr::{Frr, FrrConfig, FrrDaemons, FrrStatus};
pub use keepalived::{Keepalived, KeepalivedConfig};
pub use netns::in_netns;
pub use probe::{Method, ProbeRun, Prober, Takeover};
pub use process::Proc;
pub use ucarp::{Ucarp, UcarpConfig};
pub use vipd::{Vipd, release_vipd};
pub use xdp_filter::XdpFilter;

/// Per-lab scratch directories (configs, pid files, sockets, captures) live under here.
pub const LAB_ROOT: &str = "/tmp/vipd-lab";
/// Per-lab pin directories live under here, named like the lab.
pub const BPF_ROOT: &str = "/sys/fs/bpf";
/// The bridge in the bridge namespace.
pub const BRIDGE: &str = "br0";
/// The upstream bridge of [`LabBuilder::wan`], in the bridge namespace.
pub const WAN_BRIDGE: &str = "br1";
/// The routers' interface on the upstream bridge.
pub const WAN_IF: &str = "wan0";
/// The direct link between r1 and r2 of [`LabBuilder::sync_link`].
pub const SYNC_IF: &str = "sync0";

static COUNTER: AtomicU32 = AtomicU32::new(0);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Router,
    Client,
    Attacker,
    /// On the upstream bridge ([`LabBuilder::wan`]).
    Server,
}

/// A namespace on the bridge.
#[derive(Clone, Debug)]
pub struct Node {
    pub role: Role,
    /// `r1`, `r2`, …, `cl`, `at`.
    pub label: String,
    pub ns: String,
    /// The namespace's interface on the bridge.
    pub ifname: String,
    /// Its peer, in the bridge namespace.
    pub port: String,
    pub mac: Mac,
    pub ipv4: Ipv4Addr,
    pub ipv6: Ipv6Addr,
    /// Extra interfaces (e.g. `uplink0`) in this namespace.
    pub extra: Vec<String>,
}

/// Builds a [`Lab`].
#[derive(Clone, Debug, Default)]
pub struct LabBuilder {
    routers: usize,
    client: bool,
    attacker: bool,
    uplinks: Vec<usize>,
    wan: bool,
    sync_link: bool,
    behind: Option<usize>,
}

impl LabBuilder {
    /// A host `bh` behind router `router`: a veth `lan1` on the router at
    /// 198.51.100.1/24, the host at 198.51.100.100/24 with its default route through it.
    pub fn behind(mut self, router: usize) -> Self {
        self.behind = Some(router);
        self
    }

    /// An upstream network on a second bridge: every router gets `wan0` at
    /// 198.51.100.(10+i)/24 and forwards between its links; a server `sv` sits at
    /// 198.51.100.100/24.
    pub fn wan(mut self) -> Self {
        self.wan = true;
        self
    }

    /// r1 and r2 joined by a veth pair `sync0`, 203.0.113.1/30 and 203.0.113.2/30.
    pub fn sync_link(mut self) -> Self {
        self.sync_link = true;
        self
    }

    /// `n` routers, `r1` … `rn`, at 192.0.2.(10+i) and 2001:db8::(10+i).
    pub fn routers(mut self, n: usize) -> Self {
        assert!(n <= 80, "at most 80 routers");
        self.routers = n;
        self
    }

    /// A client `cl` at 192.0.2.100 / 2001:db8::100.
    pub fn client(mut self) -> Self {
        self.client = true;
        self
    }

    /// An attacker `at` at 192.0.2.200 / 2001:db8::200.
    pub fn attacker(mut self) -> Self {
        self.attacker = true;
        self
    }

    /// Router `i` (1-based) gets `uplink0` (198.51.100.(10+i)/24, 2001:db8:1::(10+i)/64), one
    /// end of a veth pair whose other end `uplink0p` stays in the same namespace: a link to
    /// take down for interface-tracking tests.
    pub fn uplink(mut self, router: usize) -> Self {
        self.uplinks.push(router);
        self
    }

    pub fn build(self) -> Result<Lab> {
        Lab::create(self)
    }
}

/// A running lab. Dropping it tears everything down.
pub struct Lab {
    pub prefix: String,
    pub dir: PathBuf,
    pub bridge_ns: String,
    nodes: Vec<Node>,
    namespaces: Vec<String>,
    procs: Arc<process::Registry>,
    pass: Option<Ebpf>,
    /// Bridge ports that belong to no node's eth0 (routers' `wan0`).
    extra_ports: Vec<String>,
    vrrp_drop: Mutex<Option<OwnedFd>>,
    vrrp_blocks: Mutex<HashMap<String, Vec<OwnedFd>>>,
    pin_dir: PathBuf,
}

/// Polls `condition` every `poll` until it returns `Ok(true)` or `timeout` passes. An `Err`
/// from the condition counts as "not yet" and its message ends up in the timeout error, so
/// the failure says what was last seen.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut condition: impl FnMut() -> Result<bool>,
) -> Result<Duration> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        match condition() {
            Ok(true) => return Ok(start.elapsed()),
            Ok(false) => last.clear(),
            Err(e) => last = format!("{e:#}"),
        }
        if start.elapsed() >= timeout {
            if last.is_empty() {
                bail!("timed out after {timeout:?} waiting for {what}");
            }
            bail!("timed out after {timeout:?} waiting for {what}; last: {last}");
        }
        std::thread::sleep(poll);
    }
}

/// Like [`wait_until`], returning the first `Some` the condition produces.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut condition: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let mut out = None;
    wait_until(what, timeout, poll, || {
        out = condition()?;
        Ok(out.is_some())
    })?;
    Ok(out.expect("condition returned Some"))
}

fn parse_prefix(name: &str) -> Option<(i32, &str)> {
    let rest = name.strip_prefix("vt")?;
    let x = rest.find('x')?;
    let pid: i32 = rest[..x].parse().ok()?;
    let end = rest.find('-').unwrap_or(rest.len());
    let n = rest.get(x + 1..end)?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((pid, &name[..2 + end]))
}

/// Removes what labs of dead test processes left behind: processes inside their
/// namespaces, the namespaces, their directories and pin directories. Labs of live
/// processes (parallel tests) are left alone.
pub fn sweep_dead_labs() {
    let dead = |pid: i32| !Path::new(&format!("/proc/{pid}")).exists();
    for name in netns::list() {
        let Some((pid, prefix)) = parse_prefix(&name) else {
            continue;
        };
        if !dead(pid) {
            continue;
        }
        if let Some(ino) = netns::inode(&name) {
            process::in_namespace(ino)
                .into_iter()
                .for_each(process::sigkill);
        }
        // A process can still be on its way in (an nsenter that has opened the namespace's
        // file but not yet entered it): deleting the name would not stop it, so what
        // `leftovers` counts as this lab's by command line goes too.
        naming(prefix).into_iter().for_each(process::sigkill);
        if let Err(e) = netns::delete(&name) {
            eprintln!("lab sweep: {e:#}");
        }
    }
    for root in [LAB_ROOT, BPF_ROOT] {
        let Ok(rd) = std::fs::read_dir(root) else {
            continue;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some((pid, prefix)) = parse_prefix(&name)
                && prefix == name
                && dead(pid)
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Live processes whose command line names lab `prefix`: one of its namespaces or
/// something under its directory.
fn naming(prefix: &str) -> Vec<i32> {
    let mut pids = process::with_cmdline(&format!("{prefix}-"));
    pids.extend(process::with_cmdline(&format!("{LAB_ROOT}/{prefix}/")));
    pids
}

/// What is left of lab `prefix`: namespaces, directories, live processes that mention it.
/// Empty after a clean teardown.
pub fn leftovers(prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let ours = |n: &str| n == prefix || n.starts_with(&format!("{prefix}-"));
    for n in netns::list() {
        if ours(&n) {
            out.push(format!("namespace {n}"));
            if let Some(ino) = netns::inode(&n) {
                for pid in process::in_namespace(ino) {
                    out.push(format!("process {pid} in {n}"));
                }
            }
        }
    }
    for root in [LAB_ROOT, BPF_ROOT] {
        let p = Path::new(root).join(prefix);
        if p.exists() {
            out.push(format!("directory {}", p.display()));
        }
    }
    for pid in naming(prefix) {
        out.push(format!("process {pid}"));
    }
    out
}

impl Lab {
    pub fn builder() -> LabBuilder {
        LabBuilder::default()
    }

    fn create(b: LabBuilder) -> Result<Lab> {
        crate::require_root();
        sweep_dead_labs();
        let prefix = format!(
            "vt{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = Path::new(LAB_ROOT).join(&prefix);
        std::fs::create_dir_all(&dir)?;
        for d in [Path::new(LAB_ROOT), &dir] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
        }
        let mut lab = Lab {
            bridge_ns: format!("{prefix}-br"),
            pin_dir: Path::new(BPF_ROOT).join(&prefix),
            prefix,
            dir,
            nodes: Vec::new(),
            namespaces: Vec::new(),
            procs: Arc::default(),
            pass: None,
            extra_ports: Vec::new(),
            vrrp_drop: Mutex::new(None),
            vrrp_blocks: Mutex::default(),
        };
        // From here on a failure drops `lab`, which removes whatever was made so far.
        lab.setup(&b)?;
        Ok(lab)
    }

    fn setup(&mut self, b: &LabBuilder) -> Result<()> {
        let br = self.bridge_ns.clone();
        netns::add(&br)?;
        self.namespaces.push(br.clone());
        // The switch has no business speaking IPv6 (RS, MLD) onto the segment.
        netns::sysctl(
            &br,
            &[
                ("net.ipv6.conf.all.disable_ipv6", "1"),
                ("net.ipv6.conf.default.disable_ipv6", "1"),
            ],
        )?;
        netns::ip(
            &br,
            &[
                "link",
                "add",
                BRIDGE,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
                "stp_state",
                "0",
            ],
        )?;
        netns::ip(&br, &["link", "set", BRIDGE, "up"])?;

        let mut specs: Vec<(Role, String, u8)> = (1..=b.routers)
            .map(|i| (Role::Router, format!("r{i}"), 10 + i as u8))
            .collect();
        if b.client {
            specs.push((Role::Client, "cl".into(), 100));
        }
        if b.attacker {
            specs.push((Role::Attacker, "at".into(), 200));
        }
        for (role, label, host) in specs {
            let node = self.add_node(role, &label, host)?;
            self.nodes.push(node);
        }
        for &r in &b.uplinks {
            let i = self
                .nodes
                .iter()
                .position(|n| n.label == format!("r{r}"))
                .with_context(|| format!("uplink on router {r}, which does not exist"))?;
            let ns = self.nodes[i].ns.clone();
            netns::ip(
                &ns,
                &[
                    "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink0p",
                ],
            )?;
            netns::ip(
                &ns,
                &[
                    "addr",
                    "add",
                    &format!("198.51.100.{}/24", 10 + r),
                    "dev",
                    "uplink0",
                ],
            )?;
            netns::ip(
                &ns,
                &[
                    "addr",
                    "add",
                    &format!("2001:db8:1::{}/64", 10 + r),
                    "dev",
                    "uplink0",
                    "nodad",
                ],
            )?;
            netns::ip(&ns, &["link", "set", "uplink0p", "up"])?;
            netns::ip(&ns, &["link", "set", "uplink0", "up"])?;
            self.nodes[i].extra.push("uplink0".into());
        }
        if b.wan {
            self.add_wan()?;
        }
        if b.sync_link {
            self.add_sync_link()?;
        }
        if let Some(r) = b.behind {
            self.add_behind(r)?;
        }
        self.attach_pass()
    }

    fn add_wan(&mut self) -> Result<()> {
        let br = self.bridge_ns.clone();
        netns::ip(
            &br,
            &[
                "link",
                "add",
                WAN_BRIDGE,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
                "stp_state",
                "0",
            ],
        )?;
        netns::ip(&br, &["link", "set", WAN_BRIDGE, "up"])?;
        let routers: Vec<(usize, String)> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.role == Role::Router)
            .map(|(i, n)| (i, n.label.clone()))
            .collect();
        for (i, label) in routers {
            let ns = self.nodes[i].ns.clone();
            let port = format!("w-{label}");
            let host: u8 = 10 + label[1..].parse::<u8>()?;
            netns::ip(
                &br,
                &[
                    "link", "add", &port, "type", "veth", "peer", "name", WAN_IF, "netns", &ns,
                ],
            )?;
            netns::ip(&br, &["link", "set", &port, "master", WAN_BRIDGE, "up"])?;
            let mac = mac_str(&[0x02, 0x76, 0x77, 0, 0, host]);
            netns::ip(&ns, &["link", "set", WAN_IF, "address", &mac])?;
            netns::ip(
                &ns,
                &[
                    "addr",
                    "add",
                    &format!("198.51.100.{host}/24"),
                    "dev",
                    WAN_IF,
                ],
            )?;
            netns::ip(&ns, &["link", "set", WAN_IF, "up"])?;
            netns::sysctl(&ns, &[("net.ipv4.ip_forward", "1")])?;
            self.nodes[i].extra.push(WAN_IF.into());
            self.extra_ports.push(port);
        }
        // The server: like any node, on the upstream bridge.
        let ns = format!("{}-sv", self.prefix);
        netns::add(&ns)?;
        self.namespaces.push(ns.clone());
        netns::sysctl(
            &ns,
            &[
                ("net.ipv6.conf.all.accept_dad", "0"),
                ("net.ipv6.conf.default.accept_dad", "0"),
            ],
        )?;
        let port = "p-sv".to_string();
        let mac: Mac = [0x02, 0x76, 0x77, 0, 1, 100];
        netns::ip(
            &br,
            &[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        )?;
        netns::ip(&br, &["link", "set", &port, "master", WAN_BRIDGE, "up"])?;
        let ipv4 = Ipv4Addr::new(198, 51, 100, 100);
        let ipv6 = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0x100);
        netns::ip(&ns, &["link", "set", "eth0", "address", &mac_str(&mac)])?;
        netns::ip(&ns, &["addr", "add", &format!("{ipv4}/24"), "dev", "eth0"])?;
        netns::ip(
            &ns,
            &["addr", "add", &format!("{ipv6}/64"), "dev", "eth0", "nodad"],
        )?;
        netns::ip(&ns, &["link", "set", "eth0", "up"])?;
        self.nodes.push(Node {
            role: Role::Server,
            label: "sv".into(),
            ns,
            ifname: "eth0".into(),
            port,
            mac,
            ipv4,
            ipv6,
            extra: Vec::new(),
        });
        Ok(())
    }

    fn add_behind(&mut self, router: usize) -> Result<()> {
        let rns = self.router(router).ns.clone();
        let ns = format!("{}-bh", self.prefix);
        netns::add(&ns)?;
        self.namespaces.push(ns.clone());
        netns::ip(
            &rns,
            &[
                "link", "add", "lan1", "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        )?;
        netns::ip(&rns, &["addr", "add", "198.51.100.1/24", "dev", "lan1"])?;
        netns::ip(&rns, &["link", "set", "lan1", "up"])?;
        netns::sysctl(&rns, &[("net.ipv4.ip_forward", "1")])?;
        let mac: Mac = [0x02, 0x76, 0x78, 0, 1, 100];
        let ipv4 = Ipv4Addr::new(198, 51, 100, 100);
        netns::ip(&ns, &["link", "set", "eth0", "address", &mac_str(&mac)])?;
        netns::ip(&ns, &["addr", "add", &format!("{ipv4}/24"), "dev", "eth0"])?;
        netns::ip(&ns, &["link", "set", "eth0", "up"])?;
        netns::ip(&ns, &["route", "add", "default", "via", "198.51.100.1"])?;
        let i = self
            .nodes
            .iter()
            .position(|n| n.ns == rns)
            .context("router of the host behind")?;
        self.nodes[i].extra.push("lan1".into());
        self.nodes.push(Node {
            role: Role::Client,
            label: "bh".into(),
            ns,
            ifname: "eth0".into(),
            port: String::new(),
            mac,
            ipv4,
            ipv6: Ipv6Addr::UNSPECIFIED,
            extra: Vec::new(),
        });
        Ok(())
    }

    fn add_sync_link(&mut self) -> Result<()> {
        let (a, b) = (self.router(1).ns.clone(), self.router(2).ns.clone());
        netns::ip(
            &a,
            &[
                "link", "add", SYNC_IF, "type", "veth", "peer", "name", SYNC_IF, "netns", &b,
            ],
        )?;
        for (ns, addr) in [(&a, "203.0.113.1/30"), (&b, "203.0.113.2/30")] {
            netns::ip(ns, &["addr", "add", addr, "dev", SYNC_IF])?;
            netns::ip(ns, &["link", "set", SYNC_IF, "up"])?;
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].label == "r1" || self.nodes[i].label == "r2" {
                self.nodes[i].extra.push(SYNC_IF.into());
            }
        }
        Ok(())
    }

    fn add_node(&mut self, role: Role, label: &str, host: u8) -> Result<Node> {
        let ns = format!("{}-{label}", self.prefix);
        netns::add(&ns)?;
        self.namespaces.push(ns.clone());
        // DAD off before eth0 exists so its addresses (link-local too) work at once.
        netns::sysctl(
            &ns,
            &[
                ("net.ipv6.conf.all.accept_dad", "0"),
                ("net.ipv6.conf.default.accept_dad", "0"),
            ],
        )?;
        let port = format!("p-{label}");
        let mac: Mac = [0x02, 0x76, 0x74, 0, 0, host];
        netns::ip(
            &self.bridge_ns,
            &[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        )?;
        netns::ip(
            &self.bridge_ns,
            &["link", "set", &port, "master", BRIDGE, "up"],
        )?;
        let ipv4 = Ipv4Addr::new(192, 0, 2, host);
        let ipv6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, hex_digits(host as u16));
        netns::ip(&ns, &["link", "set", "eth0", "address", &mac_str(&mac)])?;
        netns::ip(&ns, &["addr", "add", &format!("{ipv4}/24"), "dev", "eth0"])?;
        netns::ip(
            &ns,
            &["addr", "add", &format!("{ipv6}/64"), "dev", "eth0", "nodad"],
        )?;
        netns::ip(&ns, &["link", "set", "eth0", "up"])?;
        Ok(Node {
            role,
            label: label.to_string(),
            ns,
            ifname: "eth0".into(),
            port,
            mac,
            ipv4,
            ipv6,
            extra: Vec::new(),
        })
    }

    fn attach_pass(&mut self) -> Result<()> {
        let mut ebpf = Ebpf::load(::vipd::objects::PASS).context("load the pass object")?;
        let prog: &mut Xdp = ebpf
            .program_mut(vip_common::programs::PASS)
            .context("pass program missing from its object")?
            .try_into()?;
        prog.load().context("load the pass program")?;
        let ports: Vec<String> = self
            .nodes
            .iter()
            .map(|n| n.port.clone())
            .filter(|p| !p.is_empty())
            .chain(self.extra_ports.iter().cloned())
            .collect();
        // The interface names resolve, and the links are created, in the calling thread's
        // namespace: attach from a thread inside the bridge namespace.
        in_netns(&self.bridge_ns, || -> Result<()> {
            for port in &ports {
                prog.attach(port, XdpMode::Driver)
                    .with_context(|| format!("attach XDP pass to {port}"))?;
            }
            Ok(())
        })??;
        self.pass = Some(ebpf);
        Ok(())
    }

    /// The namespace of the bridge (the switch).
    pub fn bridge_ns(&self) -> &str {
        &self.bridge_ns
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node labelled `label` (`r1`, `cl`, …). Panics if there is none.
    pub fn node(&self, label: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.label == label)
            .unwrap_or_else(|| panic!("no node {label} in lab {}", self.prefix))
    }

    /// Router `i`, 1-based like its label.
    pub fn router(&self, i: usize) -> &Node {
        self.node(&format!("r{i}"))
    }

    pub fn routers(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role == Role::Router)
    }

    pub fn client(&self) -> &Node {
        self.node("cl")
    }

    pub fn attacker(&self) -> &Node {
        self.node("at")
    }

    /// The upstream server of [`LabBuilder::wan`].
    pub fn server(&self) -> &Node {
        self.node("sv")
    }

    /// Sets a router's upstream bridge port (`w-rN`) down or up: it loses carrier on
    /// `wan0`.
    pub fn set_wan_port(&self, node: &Node, up: bool) -> Result<()> {
        self.set_link(&self.bridge_ns, &format!("w-{}", node.label), up)
    }

    /// Every node's eth0 MAC mapped to its label, for probe results.
    pub fn mac_names(&self) -> HashMap<Mac, String> {
        self.nodes
            .iter()
            .map(|n| (n.mac, n.label.clone()))
            .collect()
    }

    /// This lab's pin directory under bpffs (created on first use, removed on drop).
    pub fn pin_dir(&self) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.pin_dir)
            .with_context(|| format!("create {}", self.pin_dir.display()))?;
        Ok(self.pin_dir.clone())
    }

    /// A scratch directory for `name` inside this lab's directory.
    pub fn scratch(&self, name: &str) -> Result<PathBuf> {
        let p = self.dir.join(name);
        std::fs::create_dir_all(&p)?;
        Ok(p)
    }

    /// Runs `f` on a thread inside `node`'s namespace (sockets it opens stay there).
    pub fn in_node<T: Send, F: FnOnce() -> T + Send>(&self, node: &Node, f: F) -> Result<T> {
        in_netns(&node.ns, f)
    }

    /// Runs `argv` in `node`'s namespace to completion (stdout returned, failure = error).
    pub fn exec(&self, node: &Node, argv: &[&str]) -> Result<String> {
        netns::run(netns::nsenter(&node.ns, argv))
    }

    /// Runs `argv` in `node`'s namespace to completion: whether it succeeded, its stdout
    /// and its stderr.
    pub fn exec_status(&self, node: &Node, argv: &[&str]) -> Result<(bool, String, String)> {
        let out = netns::nsenter(&node.ns, argv)
            .output()
            .with_context(|| format!("running {argv:?}"))?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// Starts `argv` in namespace `ns` in the background; it is killed when the lab drops.
    pub fn spawn_in(&self, ns: &str, label: &str, argv: &[&str]) -> Result<Proc> {
        let mut cmd = netns::nsenter(ns, argv);
        cmd.stdin(std::process::Stdio::null());
        self.procs.spawn(label, cmd)
    }

    /// Starts `cmd` as given (already wrapped in whatever namespaces it needs); it is
    /// killed when the lab drops.
    pub fn spawn_command(&self, label: &str, mut cmd: std::process::Command) -> Result<Proc> {
        cmd.stdin(std::process::Stdio::null());
        self.procs.spawn(label, cmd)
    }

    pub fn spawn(&self, node: &Node, argv: &[&str]) -> Result<Proc> {
        self.spawn_in(
            &node.ns,
            &format!("{} {}", node.label, argv.join(" ")),
            argv,
        )
    }

    /// Pids of every process the lab started and their descendants, right now.
    pub fn pids(&self) -> Vec<i32> {
        self.procs.pids()
    }

    // ---- link control ----

    fn set_link(&self, ns: &str, ifname: &str, up: bool) -> Result<()> {
        netns::ip(ns, &["link", "set", ifname, if up { "up" } else { "down" }]).map(drop)
    }

    /// Sets the router-side interface (eth0) down or up: the router sees its link go.
    pub fn set_eth0(&self, node: &Node, up: bool) -> Result<()> {
        self.set_link(&node.ns, &node.ifname, up)
    }

    /// Sets the bridge-side port down or up: the router loses carrier too (veth).
    pub fn set_port(&self, node: &Node, up: bool) -> Result<()> {
        self.set_link(&self.bridge_ns, &node.port, up)
    }

    /// Sets any interface in a node's namespace down or up (e.g. `uplink0`).
    pub fn set_iface(&self, node: &Node, ifname: &str, up: bool) -> Result<()> {
        self.set_link(&node.ns, ifname, up)
    }

    /// Takes the node's port off the bridge while every link stays up: the router still
    /// has carrier but hears nobody (split brain).
    pub fn cut(&self, node: &Node) -> Result<()> {
        netns::ip(&self.bridge_ns, &["link", "set", &node.port, "nomaster"]).map(drop)
    }

    /// Puts a cut port back on the bridge.
    pub fn rejoin(&self, node: &Node) -> Result<()> {
        netns::ip(
            &self.bridge_ns,
            &["link", "set", &node.port, "master", BRIDGE, "up"],
        )
        .map(drop)
    }

    /// Drops VRRP adverts (IPv4 and IPv6 groups) to and from `node` on its bridge port;
    /// ARP, ND and unicast still pass.
    pub fn block_vrrp(&self, node: &Node) -> Result<()> {
        let mut prog = self.vrrp_drop.lock().unwrap();
        if prog.is_none() {
            *prog = Some(block::load_vrrp_drop()?);
        }
        let prog = prog.as_ref().unwrap();
        let port = node.port.clone();
        let links = in_netns(&self.bridge_ns, || -> Result<Vec<OwnedFd>> {
            let name = std::ffi::CString::new(port.as_str())?;
            // SAFETY: a NUL-terminated name.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            if ifindex == 0 {
                bail!("no port {port}");
            }
            Ok(vec![
                block::attach_tcx(prog, ifindex, block::BPF_TCX_INGRESS)?,
                block::attach_tcx(prog, ifindex, block::BPF_TCX_EGRESS)?,
            ])
        })??;
        self.vrrp_blocks
            .lock()
            .unwrap()
            .entry(node.label.clone())
            .or_default()
            .extend(links);
        Ok(())
    }

    /// Undoes [`Lab::block_vrrp`].
    pub fn unblock_vrrp(&self, node: &Node) {
        self.vrrp_blocks.lock().unwrap().remove(&node.label);
    }

    /// Blocks VRRP on every router's port: no router hears any other.
    pub fn block_vrrp_all(&self) -> Result<()> {
        for n in self.routers() {
            self.block_vrrp(n)?;
        }
        Ok(())
    }

    pub fn unblock_vrrp_all(&self) {
        self.vrrp_blocks.lock().unwrap().clear();
    }

    // ---- peers, captures, probes ----

    pub fn keepalived(&self, node: &Node, cfg: &KeepalivedConfig) -> Result<Keepalived> {
        keepalived::start(
            &self.procs,
            node,
            self.scratch(&format!("keepalived-{}", node.label))?,
            cfg,
        )
    }

    /// keepalived with a configuration of the test's own: `render` gets the path of the
    /// lab's notify script, which each of `instances` must name in a `notify` line so that
    /// [`Keepalived::wait_state`] sees its states.
    pub fn keepalived_with(
        &self,
        node: &Node,
        instances: &[&str],
        render: impl FnOnce(&Path) -> Result<String>,
    ) -> Result<Keepalived> {
        keepalived::start_with(
            &self.procs,
            node,
            self.scratch(&format!("keepalived-{}", node.label))?,
            instances.iter().map(|s| s.to_string()).collect(),
            true,
            render,
        )
    }

    /// ucarp in `node`'s namespace, advertising from the node's IPv4 address.
    pub fn ucarp(&self, node: &Node, cfg: &UcarpConfig) -> Result<Ucarp> {
        ucarp::start(
            &self.procs,
            node,
            self.scratch(&format!("ucarp-{}", node.label))?,
            cfg,
        )
    }

    /// conntrackd in `node`'s namespace from configuration text `conf` (its lock file,
    /// control socket and log moved into the lab; see [`conntrackd::localise`]).
    pub fn conntrackd(&self, node: &Node, conf: &str) -> Result<Conntrackd> {
        conntrackd::start(
            &self.procs,
            node,
            self.scratch(&format!("conntrackd-{}", node.label))?,
            conf,
        )
    }

    /// FRR daemons with configurations of the test's own, started in order (zebra first),
    /// e.g. `[("zebra", ""), ("bgpd", BGP_CONF)]`.
    pub fn frr_daemons(&self, node: &Node, daemons: &[(&str, &str)]) -> Result<FrrDaemons> {
        frr::start_daemons(
            &self.procs,
            node,
            self.scratch(&format!("frr-{}", node.label))?,
            daemons,
        )
    }

    pub fn frr(&self, node: &Node, cfg: &FrrConfig) -> Result<Frr> {
        frr::start(
            &self.procs,
            node,
            self.scratch(&format!("frr-{}", node.label))?,
            cfg,
        )
    }

    /// Starts tcpdump on `ifname` in namespace `ns` with a BPF `filter` ("" for all) and
    /// returns once it is listening.
    pub fn capture_in(&self, ns: &str, ifname: &str, filter: &str) -> Result<Capture> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.scratch("captures")?.join(format!("{ifname}-{n}.pcap"));
        capture::start(&self.procs, ns, ifname, filter, path)
    }

    /// Captures on `node`'s bridge port (what the node sends and what the bridge hands it).
    pub fn capture_port(&self, node: &Node, filter: &str) -> Result<Capture> {
        self.capture_in(&self.bridge_ns, &node.port, filter)
    }

    /// Starts probing `target` from `from` (usually the client) every `interval` for at most
    /// `max`. `names` adds to [`Lab::mac_names`] (e.g. a VMAC).
    pub fn probe(
        &self,
        from: &Node,
        method: Method,
        target: IpAddr,
        interval: Duration,
        max: Duration,
        names: &[(Mac, &str)],
    ) -> Result<Prober> {
        let mut map = self.mac_names();
        map.extend(names.iter().map(|(m, n)| (*m, n.to_string())));
        Prober::start(probe::Spec {
            ns: from.ns.clone(),
            ifname: from.ifname.clone(),
            method,
            target,
            interval,
            max,
            names: map,
        })
    }
}

/// `0x11` for 11: the v6 host part reads like the v4 one (2001:db8::11 for 192.0.2.11).
fn hex_digits(n: u16) -> u16 {
    u16::from_str_radix(&n.to_string(), 16).unwrap_or(n)
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.procs.kill_all();
        self.vrrp_blocks.lock().unwrap().clear();
        self.vrrp_drop.lock().unwrap().take();
        // Closing the XDP links detaches the pass program.
        self.pass.take();
        for ns in self.namespaces.iter().rev() {
            if let Some(ino) = netns::inode(ns) {
                for p in process::in_namespace(ino) {
                    eprintln!("lab: killing stray process {p} in {ns}");
                    process::sigkill(p);
                }
            }
            if let Err(e) = netns::delete(ns) {
                eprintln!("lab: {e:#}");
            }
        }
        for d in [&self.dir, &self.pin_dir] {
            if d.exists()
                && let Err(e) = std::fs::remove_dir_all(d)
            {
                eprintln!("lab: remove {}: {e}", d.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_lab_names_and_their_prefix() {
        assert_eq!(parse_prefix("vt123x4-r1"), Some((123, "vt123x4")));
        assert_eq!(parse_prefix("vt123x4"), Some((123, "vt123x4")));
        assert_eq!(parse_prefix("vtx4-r1"), None);
        assert_eq!(parse_prefix("vt12x-r1"), None);
        assert_eq!(parse_prefix("other"), None);
    }

    #[test]
    fn v6_host_part_mirrors_the_v4_one() {
        assert_eq!(hex_digits(11), 0x11);
        assert_eq!(hex_digits(100), 0x100);
    }
}
