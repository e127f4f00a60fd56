//! Item 6: many virtual routers at once, at three sizes: 1 instance, 100 (25 VRIDs on
//! each of 4 interfaces) and 1,020 (255 VRIDs on each of 4 interfaces), at 100 ms
//! adverts, one IPv6 VIP each, r1 master (priority 200) and r2 backup (priority 100) for
//! all of them.
//!
//! The two routers are joined by veth pairs `s0`…`s3` of their own (made inside the
//! lab's namespaces, gone with them). Once every VIP is on r1 and none on r2 (counted
//! with `ip -6 addr`, which works the same for both implementations), each router's
//! daemon CPU (% of one core) and memory are read over consecutive windows.
//!
//! The implementations alternate like everywhere else: every repeat builds a fresh lab
//! per implementation, the order rotated. CPU is counted on each implementation's behalf
//! beyond the daemons' user + system time: the host's softirq time over the window (the
//! lab runs nothing else, so the adverts' sending and receiving is all of it; per CPU in
//! `/proc/stat`) and, inside that, the run time of the XDP programs attached in the two
//! routers' namespaces (`run_time_ns` with BPF run-time statistics on for the window).
//! Memory is the daemons' proportional set size split into anonymous and file-backed
//! pages (`/proc/PID/smaps_rollup`) plus the locked memory of every BPF map and program
//! the daemon holds, has pinned or attached (`bpfmem.rs`), shown as separate parts; the
//! sizes side by side give what each further instance costs.

use std::{net::IpAddr, process::Stdio, time::Duration};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::{
    Goal, Options, Section,
    bpfmem::{self, BpfObject},
    procstat::{CpuWindow, Smaps},
    routers::{Impl, Instance, Router as _, RouterSpec, VipdBinary, VipdRouter},
    stats::{Summary, cell_opt, json_opt, paired_ratio},
};
use vip_tests::lab::{Lab, Node, Proc, netns, process, wait_until};

const INTERVAL: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug)]
struct Shape {
    vrids: u8,
    interfaces: usize,
}

impl Shape {
    fn instances(&self) -> usize {
        self.vrids as usize * self.interfaces
    }
}

#[derive(Clone, Debug)]
struct Window {
    imp: Impl,
    /// Instances per router in this run.
    instances: usize,
    repeat: usize,
    master_cpu: f64,
    backup_cpu: f64,
    master_mem: Smaps,
    backup_mem: Smaps,
    /// Host softirq time over the window, % of one core (summed over CPUs).
    softirq: f64,
    /// XDP run time of the programs in both routers' namespaces, % of one core.
    bpf: f64,
    /// Every BPF map and program of the master's daemon.
    master_objects: Vec<BpfObject>,
    /// Locked BPF memory (maps + programs) of the backup's daemon, KiB.
    backup_bpf_kib: u64,
}

impl Window {
    fn total_cpu(&self) -> f64 {
        self.master_cpu + self.backup_cpu + self.softirq
    }
    fn master_bpf_kib(&self) -> u64 {
        bpfmem::total_kib(&self.master_objects)
    }
    /// The master's whole footprint: its processes' PSS and its BPF objects, KiB.
    fn master_total_kib(&self) -> u64 {
        self.master_mem.pss + self.master_bpf_kib()
    }
    fn backup_total_kib(&self) -> u64 {
        self.backup_mem.pss + self.backup_bpf_kib
    }
}

fn shapes(quick: bool) -> Vec<Shape> {
    let s = |vrids, interfaces| Shape { vrids, interfaces };
    if quick {
        vec![s(1, 1), s(8, 1)]
    } else {
        vec![s(1, 1), s(25, 4), s(255, 4)]
    }
}

pub fn run(opts: &Options, vipd: &VipdBinary) -> Result<Section> {
    let shapes = shapes(opts.quick);
    let window = if opts.quick {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(4)
    };
    let repeats = opts.repeats(2, 1);
    let windows = if opts.quick { 1 } else { 2 };
    let impls = vipd.with(&[Impl::Keepalived]);
    let mut all = Vec::new();
    let mut errors = Vec::new();
    for &shape in &shapes {
        for repeat in 0..repeats {
            for k in 0..impls.len() {
                let imp = impls[(k + repeat) % impls.len()];
                super::procstat::wait_for_quiet(0.3, Duration::from_secs(20));
                match measure(imp, repeat, shape, windows, window, vipd) {
                    Ok(mut w) => all.append(&mut w),
                    Err(e) => {
                        let n = shape.instances();
                        eprintln!(
                            "bench scale: {} {n} instances repeat {repeat}: {e:#}",
                            imp.name()
                        );
                        errors.push(format!(
                            "{} {n} instances repeat {repeat}: {e:#}",
                            imp.name()
                        ));
                    }
                }
            }
        }
    }
    Ok(section(
        &all, &impls, &shapes, repeats, windows, window, errors,
    ))
}

/// Softirq time of every CPU so far, in seconds (the `softirq` column of `/proc/stat`).
fn softirq_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let ticks = 100.0;
    stat.lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .filter_map(|l| l.split_whitespace().nth(7)?.parse::<f64>().ok())
        .sum::<f64>()
        / ticks
}

/// Ids of the XDP programs attached to interfaces in namespace `ns`.
fn xdp_programs(ns: &str) -> Vec<u32> {
    let Ok(out) = netns::run({
        let mut c = netns::nsenter(ns, &["ip", "-j", "-d", "link", "show"]);
        c.stderr(Stdio::null());
        c
    }) else {
        return Vec::new();
    };
    let Ok(links) = serde_json::from_str::<serde_json::Value>(&out) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    for l in links.as_array().into_iter().flatten() {
        let xdp = &l["xdp"];
        let mut push = |v: &serde_json::Value| {
            if let Some(id) = v["prog"]["id"].as_u64() {
                ids.push(id as u32);
            }
        };
        push(xdp);
        for a in xdp["attached"].as_array().into_iter().flatten() {
            push(a);
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

/// Total run time so far of the programs `ids`.
fn run_time(ids: &[u32]) -> Duration {
    aya::programs::loaded_programs()
        .filter_map(|p| p.ok())
        .filter(|p| ids.contains(&p.id()))
        .map(|p| p.run_time())
        .sum()
}

fn iface(i: usize) -> String {
    format!("s{i}")
}

fn vip(vrid: u8, i: usize) -> IpAddr {
    format!("2001:db8:{:x}::{vrid:x}", 0x100 + i)
        .parse()
        .expect("valid address")
}

fn specs(shape: Shape, priority: u8) -> Vec<Instance> {
    let mut v = Vec::new();
    for i in 0..shape.interfaces {
        for vrid in 1..=shape.vrids {
            let mut s = RouterSpec::new(priority, INTERVAL, vec![vip(vrid, i)]);
            s.vrid = vrid;
            s.interface = iface(i);
            v.push(Instance {
                name: format!("v{vrid}i{i}"),
                spec: s,
            });
        }
    }
    v
}

/// keepalived.conf with one IPv6 instance per (VRID, interface), no notify scripts (a
/// thousand forks per transition would measure fork, not keepalived).
fn keepalived_conf(router_id: &str, instances: &[Instance]) -> String {
    let mut c = format!("global_defs {{\n    router_id {router_id}\n}}\n");
    for i in instances {
        let s = &i.spec;
        c.push_str(&format!(
            "vrrp_instance {} {{\n    state BACKUP\n    interface {}\n    virtual_router_id {}\n    \
             priority {}\n    version 3\n    advert_int {}\n    virtual_ipaddress {{\n",
            i.name,
            s.interface,
            s.vrid,
            s.priority,
            s.interval.as_secs_f64()
        ));
        for v in &s.vips {
            c.push_str(&format!("        {v}/128 dev {}\n", s.interface));
        }
        c.push_str("    }\n}\n");
    }
    c
}

/// A daemon's processes, whatever it is.
enum Daemon {
    Keepalived(Proc),
    Vipd(Box<VipdRouter>),
}

impl Daemon {
    fn pids(&self) -> Vec<i32> {
        match self {
            Daemon::Keepalived(p) => {
                let mut v = vec![p.pid()];
                v.extend(process::descendants(p.pid()));
                v.retain(|p| process::alive(*p));
                v
            }
            Daemon::Vipd(r) => r.pids(),
        }
    }

    /// The data plane's pin directory (vipd only).
    fn pin(&self) -> Option<&std::path::Path> {
        match self {
            Daemon::Keepalived(_) => None,
            Daemon::Vipd(r) => Some(r.pin()),
        }
    }

    fn alive(&self) -> bool {
        match self {
            Daemon::Keepalived(p) => p.is_running(),
            Daemon::Vipd(r) => r.pids().iter().any(|p| process::alive(*p)),
        }
    }
}

fn start(
    imp: Impl,
    lab: &Lab,
    node: &Node,
    instances: &[Instance],
    vipd: &VipdBinary,
) -> Result<Daemon> {
    match imp {
        Impl::Vipd => Ok(Daemon::Vipd(Box::new(VipdRouter::start(
            lab, node, instances, vipd,
        )?))),
        Impl::Keepalived => {
            let dir = lab.scratch(&format!("scale-keepalived-{}", node.label))?;
            let conf = dir.join("keepalived.conf");
            std::fs::write(&conf, keepalived_conf(&node.label, instances))?;
            let script = format!(
                "exec keepalived --vrrp -n -l -f '{}' -p '{}' -r '{}' >'{}' 2>&1",
                conf.display(),
                dir.join("keepalived.pid").display(),
                dir.join("vrrp.pid").display(),
                dir.join("keepalived.log").display()
            );
            Ok(Daemon::Keepalived(lab.spawn(node, &["sh", "-c", &script])?))
        }
        Impl::Frr | Impl::KeepalivedUnicast => bail!("the scale item compares vipd and keepalived"),
    }
}

/// VIPs of this bench configured on `node`'s interfaces.
fn vips_on(node: &Node) -> Result<usize> {
    let out = netns::run({
        let mut c = netns::nsenter(&node.ns, &["ip", "-6", "-o", "addr", "show"]);
        c.stderr(Stdio::null());
        c
    })?;
    Ok(out.lines().filter(|l| l.contains(" 2001:db8:1")).count())
}

fn measure(
    imp: Impl,
    repeat: usize,
    shape: Shape,
    windows: usize,
    window: Duration,
    vipd: &VipdBinary,
) -> Result<Vec<Window>> {
    let lab = Lab::builder().routers(2).build()?;
    let (r1n, r2n) = (lab.router(1), lab.router(2));
    for i in 0..shape.interfaces {
        let name = iface(i);
        netns::ip(
            &r1n.ns,
            &[
                "link", "add", &name, "type", "veth", "peer", "name", &name, "netns", &r2n.ns,
            ],
        )?;
        for n in [r1n, r2n] {
            netns::ip(&n.ns, &["link", "set", &name, "up"])?;
        }
    }
    let total = shape.instances();
    let r1 = start(imp, &lab, r1n, &specs(shape, 200), vipd)?;
    let r2 = start(imp, &lab, r2n, &specs(shape, 100), vipd)?;
    let mut stable = 0;
    wait_until(
        &format!("{total} VIPs on r1 and none on r2"),
        Duration::from_secs(90),
        Duration::from_millis(250),
        || {
            if !r1.alive() || !r2.alive() {
                bail!("a daemon exited");
            }
            let (a, b) = (vips_on(r1n)?, vips_on(r2n)?);
            stable = if a == total && b == 0 { stable + 1 } else { 0 };
            if stable >= 4 {
                Ok(true)
            } else {
                bail!("r1 {a}, r2 {b} of {total}")
            }
        },
    )
    .context("the routers never converged")?;
    std::thread::sleep(Duration::from_secs(1));
    let mut out = Vec::new();
    let (p1, p2) = (xdp_programs(&r1n.ns), xdp_programs(&r2n.ns));
    // Only programs this implementation attached count (the lab attaches none inside
    // router namespaces; keepalived has none).
    let progs: Vec<u32> = p1.iter().chain(&p2).copied().collect();
    for w in 0..windows {
        let stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).ok();
        let bpf0 = run_time(&progs);
        let soft0 = softirq_seconds();
        let t0 = std::time::Instant::now();
        let (c1, c2) = (CpuWindow::start(r1.pids()), CpuWindow::start(r2.pids()));
        std::thread::sleep(window);
        let (master_cpu, backup_cpu) = (c1.percent(), c2.percent());
        let wall = t0.elapsed().as_secs_f64();
        let softirq = (softirq_seconds() - soft0) / wall * 100.0;
        let bpf = if stats.is_some() {
            (run_time(&progs) - bpf0).as_secs_f64() / wall * 100.0
        } else {
            f64::NAN
        };
        drop(stats);
        let master_objects = bpfmem::inventory(&r1.pids(), r1.pin(), &p1);
        let backup_bpf_kib = bpfmem::total_kib(&bpfmem::inventory(&r2.pids(), r2.pin(), &p2));
        let win = Window {
            imp,
            instances: total,
            repeat,
            master_cpu,
            backup_cpu,
            master_mem: Smaps::of_all(&r1.pids()),
            backup_mem: Smaps::of_all(&r2.pids()),
            softirq,
            bpf,
            master_objects,
            backup_bpf_kib,
        };
        let mib = |kib: u64| kib as f64 / 1024.0;
        eprintln!(
            "bench scale: {} {total} instances repeat {repeat} window {w}: master {:.1} % CPU, \
             {:.2} MiB anon + {:.2} MiB file + {:.2} MiB BPF; backup {:.1} % CPU, {:.2} MiB + \
             {:.2} MiB BPF; softirq {:.1} %, XDP {:.2} %",
            imp.name(),
            win.master_cpu,
            mib(win.master_mem.pss_anon),
            mib(win.master_mem.pss_file + win.master_mem.pss_shmem),
            mib(win.master_bpf_kib()),
            win.backup_cpu,
            mib(win.backup_mem.pss),
            mib(win.backup_bpf_kib),
            win.softirq,
            win.bpf,
        );
        out.push(win);
    }
    // Still converged at the end: a measurement of a flapping pair is not one.
    let (a, b) = (vips_on(r1n)?, vips_on(r2n)?);
    if a != total || b != 0 {
        bail!("after the windows r1 has {a} and r2 {b} of {total} VIPs");
    }
    Ok(out)
}

fn section(
    all: &[Window],
    impls: &[Impl],
    shapes: &[Shape],
    repeats: usize,
    windows: usize,
    window: Duration,
    errors: Vec<String>,
) -> Section {
    let of = |imp: Impl, n: usize, f: &dyn Fn(&Window) -> f64| -> Vec<f64> {
        all.iter()
            .filter(|w| w.imp == imp && w.instances == n)
            .map(f)
            .collect()
    };
    let med = |imp, n, f: &dyn Fn(&Window) -> f64| Summary::of(&of(imp, n, f)).map(|s| s.median);
    let mib = |kib: u64| kib as f64 / 1024.0;
    let sizes: Vec<usize> = shapes.iter().map(Shape::instances).collect();
    let smallest = sizes.iter().copied().min().unwrap_or(1);
    let largest = sizes.iter().copied().max().unwrap_or(1);
    let described: Vec<String> = shapes
        .iter()
        .map(|s| {
            format!(
                "{} ({} VRIDs × {} interfaces)",
                s.instances(),
                s.vrids,
                s.interfaces
            )
        })
        .collect();
    let mut md = format!(
        "Instances per router: {}; 100 ms adverts, one IPv6 VIP each; r1 master of all, r2 \
         backup of all. {repeats} repeat(s) per size, each a fresh lab per implementation in \
         rotated order, {windows} window(s) of {:.0} s after convergence each; median \
         (min–max). Memory: the daemon's processes' proportional set size (pages a forked \
         child shares with its parent count once) split into anonymous pages (heap, stacks, \
         private data) and file-backed ones (executable and libraries, shared with any other \
         process mapping them), from `/proc/PID/smaps_rollup`; and, as a separate part, the \
         locked memory (`memlock`, what `bpftool` shows as `bytes_memlock`) of every BPF map \
         and program the daemon holds, pinned or attached (the objects are listed below). \
         \"Per further instance\" is (total at N − total at {smallest}) / (N − {smallest}).\n\n\
         | instances | implementation | master anon MiB | master file MiB | master BPF MiB \
         | master total MiB | per further instance KiB | backup total MiB |\n\
         |---|---|---|---|---|---|---|---|\n",
        described.join(", "),
        window.as_secs_f64()
    );
    let mut rows = Vec::new();
    for &n in &sizes {
        for &imp in impls {
            let s = |f: &dyn Fn(&Window) -> f64| Summary::of(&of(imp, n, f));
            let anon = s(&|w| mib(w.master_mem.pss_anon));
            let file = s(&|w| mib(w.master_mem.pss_file + w.master_mem.pss_shmem));
            let bpf = s(&|w| mib(w.master_bpf_kib()));
            let total = s(&|w| mib(w.master_total_kib()));
            let backup = s(&|w| mib(w.backup_total_kib()));
            let per = match (
                med(imp, n, &|w| w.master_total_kib() as f64),
                med(imp, smallest, &|w| w.master_total_kib() as f64),
            ) {
                (Some(a), Some(b)) if n > smallest => Some((a - b) / (n - smallest) as f64),
                _ => None,
            };
            md.push_str(&format!(
                "| {n} | {} | {} | {} | {} | {} | {} | {} |\n",
                imp.name(),
                cell_opt(anon, 2),
                cell_opt(file, 2),
                cell_opt(bpf, 2),
                cell_opt(total, 2),
                per.map_or_else(|| "–".into(), |p| format!("{p:.1}")),
                cell_opt(backup, 2),
            ));
            rows.push(json!({
                "instances": n, "implementation": imp.name(),
                "master_anon_mib": json_opt(anon), "master_file_mib": json_opt(file),
                "master_bpf_mib": json_opt(bpf), "master_total_mib": json_opt(total),
                "per_further_instance_kib": per, "backup_total_mib": json_opt(backup),
                "master_cpu_percent": json_opt(s(&|w| w.master_cpu)),
                "backup_cpu_percent": json_opt(s(&|w| w.backup_cpu)),
                "softirq_percent": json_opt(s(&|w| w.softirq)),
                "xdp_percent": json_opt(s(&|w| w.bpf)),
                "total_cpu_percent": json_opt(s(&Window::total_cpu)),
            }));
        }
    }
    md.push_str(
        "\nCPU in % of one core: the daemons' user + system time, the host's softirq time over \
         the window (all CPUs; the lab runs nothing else) and, part of that softirq time, the \
         XDP programs' run time in the routers' namespaces (`run_time_ns`, BPF statistics \
         on).\n\n\
         | instances | implementation | master CPU % | backup CPU % | softirq % | of which XDP % \
         | total CPU % |\n|---|---|---|---|---|---|---|\n",
    );
    for &n in &sizes {
        for &imp in impls {
            let s = |f: &dyn Fn(&Window) -> f64| Summary::of(&of(imp, n, f));
            md.push_str(&format!(
                "| {n} | {} | {} | {} | {} | {} | {} |\n",
                imp.name(),
                cell_opt(s(&|w| w.master_cpu), 1),
                cell_opt(s(&|w| w.backup_cpu), 1),
                cell_opt(s(&|w| w.softirq), 1),
                cell_opt(s(&|w| w.bpf), 2),
                cell_opt(s(&Window::total_cpu), 1),
            ));
        }
    }
    // The objects of the last master measured at the largest size, per implementation.
    let mut objects_json = serde_json::Map::new();
    for &imp in impls {
        let Some(w) = all
            .iter()
            .rev()
            .find(|w| w.imp == imp && w.instances == largest)
        else {
            continue;
        };
        objects_json.insert(
            imp.name().into(),
            w.master_objects.iter().map(BpfObject::json).collect(),
        );
        if w.master_objects.is_empty() {
            md.push_str(&format!(
                "\n{}'s master at {largest} instances holds, pins and attaches no BPF map or \
                 program (none among its processes' descriptors): its BPF part is 0.\n",
                imp.name()
            ));
            continue;
        }
        md.push_str(&format!(
            "\n{}'s BPF maps and programs (master, {largest} instances; {:.2} MiB in all):\n\n\
             | kind | name | type | entries | memlock KiB |\n|---|---|---|---|---|\n",
            imp.name(),
            mib(w.master_bpf_kib())
        ));
        for o in &w.master_objects {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {:.1} |\n",
                o.kind,
                if o.name.is_empty() { "–" } else { &o.name },
                o.detail,
                if o.kind == "map" {
                    o.max_entries.to_string()
                } else {
                    "–".into()
                },
                o.memlock_bytes as f64 / 1024.0
            ));
        }
    }
    let mut ratios = serde_json::Map::new();
    let mut goals = Vec::new();
    if impls.contains(&Impl::Vipd) {
        md.push_str("\nvipd / keepalived, paired windows:");
        for &n in &sizes {
            let r = |f: &dyn Fn(&Window) -> f64| {
                paired_ratio(&of(Impl::Vipd, n, f), &of(Impl::Keepalived, n, f))
            };
            let (tc, mm) = (r(&Window::total_cpu), r(&|w| w.master_total_kib() as f64));
            md.push_str(&format!(
                " {n} instances: total CPU {}×, master memory (process + BPF) {}×;",
                cell_opt(tc, 2),
                cell_opt(mm, 2)
            ));
            ratios.insert(
                n.to_string(),
                json!({ "total_cpu": json_opt(tc), "master_memory": json_opt(mm) }),
            );
        }
        md.pop();
        md.push_str(".\n");
        for &n in &sizes {
            let text = format!(
                "scale, {n} instance{}: vipd's whole footprint (process PSS + BPF maps and \
                 programs) ≤ keepalived's",
                if n == 1 { "" } else { "s" }
            );
            let kib = |imp, f: fn(&Window) -> u64| med(imp, n, &|w| f(w) as f64);
            goals.push(
                match (
                    kib(Impl::Vipd, Window::master_total_kib),
                    kib(Impl::Vipd, |w| w.master_mem.pss_anon),
                    kib(Impl::Vipd, |w| {
                        w.master_mem.pss_file + w.master_mem.pss_shmem
                    }),
                    kib(Impl::Vipd, Window::master_bpf_kib),
                    kib(Impl::Keepalived, Window::master_total_kib),
                ) {
                    (Some(v), Some(va), Some(vf), Some(vb), Some(k)) => Goal::judged(
                        text,
                        v <= k,
                        format!(
                            "master: vipd {:.2} MiB ({:.2} anon + {:.2} file + {:.2} BPF), \
                             keepalived {:.2} MiB",
                            v / 1024.0,
                            va / 1024.0,
                            vf / 1024.0,
                            vb / 1024.0,
                            k / 1024.0
                        ),
                    ),
                    _ => Goal::unjudged(text, "a variant did not run"),
                },
            );
        }
        let text = format!(
            "scale, {largest} instances: vipd's total CPU (daemons + softirq) ≤ keepalived's"
        );
        goals.push(
            match (
                med(Impl::Vipd, largest, &Window::total_cpu),
                med(Impl::Keepalived, largest, &Window::total_cpu),
            ) {
                (Some(v), Some(k)) => Goal::judged(
                    text,
                    v <= k,
                    format!("vipd {v:.1} %, keepalived {k:.1} % of one core"),
                ),
                _ => Goal::unjudged(text, "a variant did not run"),
            },
        );
    }
    if !errors.is_empty() {
        md.push_str("\nRuns that failed (not in the figures):\n\n");
        for e in &errors {
            md.push_str(&format!("- {}\n", e.lines().next().unwrap_or("")));
        }
    }
    Section {
        id: "scale".into(),
        title: "6. Scale: CPU and memory".into(),
        markdown: md,
        json: json!({
            "sizes": shapes.iter().map(|s| json!({
                "vrids": s.vrids, "interfaces": s.interfaces, "instances": s.instances(),
            })).collect::<Vec<_>>(),
            "advert_interval_ms": 100, "windows": windows, "window_s": window.as_secs_f64(),
            "rows": rows, "vipd_over_keepalived": ratios, "bpf_objects": objects_json,
            "repeats": repeats,
            "windows_raw": all.iter().map(|w| json!({
                "implementation": w.imp.name(), "instances": w.instances, "repeat": w.repeat,
                "master_cpu_percent": w.master_cpu, "backup_cpu_percent": w.backup_cpu,
                "master_pss_kib": w.master_mem.pss, "master_rss_kib": w.master_mem.rss,
                "master_pss_anon_kib": w.master_mem.pss_anon,
                "master_pss_file_kib": w.master_mem.pss_file,
                "master_pss_shmem_kib": w.master_mem.pss_shmem,
                "backup_pss_kib": w.backup_mem.pss,
                "backup_pss_anon_kib": w.backup_mem.pss_anon,
                "backup_pss_file_kib": w.backup_mem.pss_file,
                "softirq_percent": w.softirq, "xdp_percent": w.bpf,
                "master_bpf_kib": w.master_bpf_kib(), "backup_bpf_kib": w.backup_bpf_kib,
            })).collect::<Vec<_>>(),
            "failed": errors,
        }),
        goals,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_instance_per_vrid_and_interface_with_its_own_vip() {
        let v = specs(
            Shape {
                vrids: 255,
                interfaces: 4,
            },
            200,
        );
        assert_eq!(v.len(), 1020);
        let mut addrs: Vec<IpAddr> = v.iter().map(|i| i.spec.vips[0]).collect();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), 1020);
        assert_eq!(vip(255, 3).to_string(), "2001:db8:103::ff");
        let conf = keepalived_conf("r1", &v[..1]);
        assert!(conf.contains("interface s0\n"));
        assert!(conf.contains("advert_int 0.1\n"));
        assert!(conf.contains("2001:db8:100::1/128 dev s0"));
    }
}
