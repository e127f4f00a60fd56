//! Item 6: many virtual routers at once: 255 VRIDs on each of 4 interfaces (1,020
//! instances) at 100 ms adverts, one IPv6 VIP each, r1 master (priority 200) and r2
//! backup (priority 100) for all of them.
//!
//! The two routers are joined by four veth pairs `s0`…`s3` of their own (made inside the
//! lab's namespaces, gone with them). Once every VIP is on r1 and none on r2 (counted
//! with `ip -6 addr`, which works the same for both implementations), each router's
//! daemon CPU (% of one core) and resident memory are read over consecutive windows.
//!
//! The implementations alternate like everywhere else: every repeat builds a fresh lab
//! per implementation, the order rotated. CPU is counted on each implementation's behalf
//! beyond the daemons' user + system time: the host's softirq time over the window (the
//! lab runs nothing else, so the adverts' sending and receiving is all of it; per CPU in
//! `/proc/stat`) and, inside that, the run time of the XDP programs attached in the two
//! routers' namespaces (`run_time_ns` with BPF run-time statistics on for the window).
//! Memory is the daemons' proportional set size plus, for vipd, what its BPF maps and
//! program lock (`bytes_memlock` as `bpftool` reports it), shown as separate parts.

use std::{net::IpAddr, process::Stdio, time::Duration};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::{
    Goal, Options, Section,
    procstat::{CpuWindow, rss_kib},
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

#[derive(Clone, Debug)]
struct Window {
    imp: Impl,
    repeat: usize,
    master_cpu: f64,
    backup_cpu: f64,
    master_rss_kib: u64,
    backup_rss_kib: u64,
    /// Host softirq time over the window, % of one core (summed over CPUs).
    softirq: f64,
    /// XDP run time of the programs in both routers' namespaces, % of one core.
    bpf: f64,
    /// Locked BPF memory (maps + program) of the master's and backup's data plane, KiB.
    master_bpf_kib: u64,
    backup_bpf_kib: u64,
}

impl Window {
    fn total_cpu(&self) -> f64 {
        self.master_cpu + self.backup_cpu + self.softirq
    }
    fn master_mem(&self) -> u64 {
        self.master_rss_kib + self.master_bpf_kib
    }
}

pub fn run(opts: &Options, vipd: &VipdBinary) -> Result<Section> {
    let shape = if opts.quick {
        Shape {
            vrids: 8,
            interfaces: 1,
        }
    } else {
        Shape {
            vrids: 255,
            interfaces: 4,
        }
    };
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
    for repeat in 0..repeats {
        for k in 0..impls.len() {
            let imp = impls[(k + repeat) % impls.len()];
            super::procstat::wait_for_quiet(0.3, Duration::from_secs(20));
            match measure(imp, repeat, shape, windows, window, vipd) {
                Ok(mut w) => all.append(&mut w),
                Err(e) => {
                    eprintln!("bench scale: {} repeat {repeat}: {e:#}", imp.name());
                    errors.push(format!("{} repeat {repeat}: {e:#}", imp.name()));
                }
            }
        }
    }
    Ok(section(
        &all, &impls, shape, repeats, windows, window, errors,
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

/// `bytes_memlock` of every map pinned under `dir` plus that of the programs `progs`, KiB.
fn bpf_memlock_kib(dir: &std::path::Path, progs: &[u32]) -> u64 {
    let show = |args: &[&str]| -> u64 {
        std::process::Command::new("bpftool")
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .and_then(|v| v["bytes_memlock"].as_u64())
            .unwrap_or(0)
    };
    let mut bytes = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("link_") || !path.is_file() {
            continue;
        }
        bytes += show(&["-j", "map", "show", "pinned", &path.to_string_lossy()]);
    }
    for id in progs {
        bytes += show(&["-j", "prog", "show", "id", &id.to_string()]);
    }
    bytes / 1024
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
    let total = shape.vrids as usize * shape.interfaces;
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
        let rss = |d: &Daemon| d.pids().iter().map(|p| rss_kib(*p)).sum::<u64>();
        let bpf_mem = |d: &Daemon, progs: &[u32]| d.pin().map_or(0, |p| bpf_memlock_kib(p, progs));
        let win = Window {
            imp,
            repeat,
            master_cpu,
            backup_cpu,
            master_rss_kib: rss(&r1),
            backup_rss_kib: rss(&r2),
            softirq,
            bpf,
            master_bpf_kib: bpf_mem(&r1, &p1),
            backup_bpf_kib: bpf_mem(&r2, &p2),
        };
        eprintln!(
            "bench scale: {} repeat {repeat} window {w}: master {:.1} % CPU {:.1} MiB + {:.2} \
             MiB BPF, backup {:.1} % CPU {:.1} MiB + {:.2} MiB BPF, softirq {:.1} %, XDP {:.2} %",
            imp.name(),
            win.master_cpu,
            win.master_rss_kib as f64 / 1024.0,
            win.master_bpf_kib as f64 / 1024.0,
            win.backup_cpu,
            win.backup_rss_kib as f64 / 1024.0,
            win.backup_bpf_kib as f64 / 1024.0,
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
    shape: Shape,
    repeats: usize,
    windows: usize,
    window: Duration,
    errors: Vec<String>,
) -> Section {
    let of = |imp: Impl, f: fn(&Window) -> f64| -> Vec<f64> {
        all.iter().filter(|w| w.imp == imp).map(f).collect()
    };
    let total = shape.vrids as usize * shape.interfaces;
    let mut md = format!(
        "{} VRIDs × {} interfaces = {total} instances at 100 ms, one IPv6 VIP each; r1 \
         master of all, r2 backup of all. {repeats} repeat(s), each a fresh lab per \
         implementation in rotated order, {windows} window(s) of {:.0} s after convergence \
         each; median (min–max). CPU in % of one core: the daemons' user + system time, the \
         host's softirq time over the window (all CPUs; the lab runs nothing else) and, part \
         of that softirq time, the XDP programs' run time in the routers' namespaces \
         (`run_time_ns`, BPF statistics on). Memory: the daemon's processes as proportional \
         set size (pages a forked child shares with its parent count once) and, as a \
         separate part, the locked memory of its BPF maps and program (`bytes_memlock`).\n\n\
         | implementation | master CPU % | backup CPU % | softirq % | of which XDP % | total CPU % \
         | master RSS MiB | master BPF MiB | master total MiB | backup RSS MiB | backup BPF MiB |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
        shape.vrids,
        shape.interfaces,
        window.as_secs_f64()
    );
    let mut rows = Vec::new();
    for &imp in impls {
        let (mc, bc, mr, br) = (
            Summary::of(&of(imp, |w| w.master_cpu)),
            Summary::of(&of(imp, |w| w.backup_cpu)),
            Summary::of(&of(imp, |w| w.master_rss_kib as f64 / 1024.0)),
            Summary::of(&of(imp, |w| w.backup_rss_kib as f64 / 1024.0)),
        );
        let (sq, xdp, tot) = (
            Summary::of(&of(imp, |w| w.softirq)),
            Summary::of(&of(imp, |w| w.bpf)),
            Summary::of(&of(imp, Window::total_cpu)),
        );
        let (mb, bb, mt) = (
            Summary::of(&of(imp, |w| w.master_bpf_kib as f64 / 1024.0)),
            Summary::of(&of(imp, |w| w.backup_bpf_kib as f64 / 1024.0)),
            Summary::of(&of(imp, |w| w.master_mem() as f64 / 1024.0)),
        );
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            imp.name(),
            cell_opt(mc, 1),
            cell_opt(bc, 1),
            cell_opt(sq, 1),
            cell_opt(xdp, 2),
            cell_opt(tot, 1),
            cell_opt(mr, 1),
            cell_opt(mb, 2),
            cell_opt(mt, 1),
            cell_opt(br, 1),
            cell_opt(bb, 2),
        ));
        rows.push(json!({
            "implementation": imp.name(),
            "master_cpu_percent": json_opt(mc), "backup_cpu_percent": json_opt(bc),
            "softirq_percent": json_opt(sq), "xdp_percent": json_opt(xdp),
            "total_cpu_percent": json_opt(tot),
            "master_rss_mib": json_opt(mr), "backup_rss_mib": json_opt(br),
            "master_bpf_mib": json_opt(mb), "backup_bpf_mib": json_opt(bb),
            "master_total_mib": json_opt(mt),
        }));
    }
    let mut ratios = json!(null);
    let mut goals = Vec::new();
    if impls.contains(&Impl::Vipd) {
        let r = |f: fn(&Window) -> f64| paired_ratio(&of(Impl::Vipd, f), &of(Impl::Keepalived, f));
        let (mc, bc, tc, mm) = (
            r(|w| w.master_cpu),
            r(|w| w.backup_cpu),
            r(Window::total_cpu),
            r(|w| w.master_mem() as f64),
        );
        md.push_str(&format!(
            "\nvipd / keepalived, paired windows: master CPU {}×, backup CPU {}×, total CPU \
             {}×, master memory (process + BPF) {}×.\n",
            cell_opt(mc, 2),
            cell_opt(bc, 2),
            cell_opt(tc, 2),
            cell_opt(mm, 2)
        ));
        ratios = json!({
            "master_cpu": json_opt(mc), "backup_cpu": json_opt(bc),
            "total_cpu": json_opt(tc), "master_memory": json_opt(mm),
        });
        let med = |imp, f: fn(&Window) -> f64| Summary::of(&of(imp, f)).map(|s| s.median);
        let text = "scale: vipd's whole footprint (process + BPF maps) ≤ keepalived's";
        goals.push(
            match (
                med(Impl::Vipd, |w| w.master_mem() as f64 / 1024.0),
                med(Impl::Vipd, |w| w.master_rss_kib as f64 / 1024.0),
                med(Impl::Vipd, |w| w.master_bpf_kib as f64 / 1024.0),
                med(Impl::Keepalived, |w| w.master_mem() as f64 / 1024.0),
            ) {
                (Some(v), Some(vp), Some(vb), Some(k)) => Goal::judged(
                    text,
                    v <= k,
                    format!(
                        "master: vipd {v:.1} MiB ({vp:.1} process + {vb:.2} BPF), keepalived \
                         {k:.1} MiB"
                    ),
                ),
                _ => Goal::unjudged(text, "a variant did not run"),
            },
        );
        let text = "scale: vipd's total CPU (daemons + softirq) ≤ keepalived's";
        goals.push(
            match (
                med(Impl::Vipd, Window::total_cpu),
                med(Impl::Keepalived, Window::total_cpu),
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
            "vrids": shape.vrids, "interfaces": shape.interfaces, "instances": total,
            "advert_interval_ms": 100, "windows": windows, "window_s": window.as_secs_f64(),
            "rows": rows, "vipd_over_keepalived": ratios,
            "repeats": repeats,
            "windows_raw": all.iter().map(|w| json!({
                "implementation": w.imp.name(), "repeat": w.repeat,
                "master_cpu_percent": w.master_cpu,
                "backup_cpu_percent": w.backup_cpu, "master_rss_kib": w.master_rss_kib,
                "backup_rss_kib": w.backup_rss_kib, "softirq_percent": w.softirq,
                "xdp_percent": w.bpf, "master_bpf_kib": w.master_bpf_kib,
                "backup_bpf_kib": w.backup_bpf_kib,
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
