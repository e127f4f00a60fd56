//! Item 6: many virtual routers at once: 255 VRIDs on each of 4 interfaces (1,020
//! instances) at 100 ms adverts, one IPv6 VIP each, r1 master (priority 200) and r2
//! backup (priority 100) for all of them.
//!
//! The two routers are joined by four veth pairs `s0`…`s3` of their own (made inside the
//! lab's namespaces, gone with them). Once every VIP is on r1 and none on r2 (counted
//! with `ip -6 addr`, which works the same for both implementations), each router's
//! daemon CPU (% of one core) and resident memory are read over consecutive windows.

use std::{net::IpAddr, process::Stdio, time::Duration};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::{
    Options, Section,
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
    master_cpu: f64,
    backup_cpu: f64,
    master_rss_kib: u64,
    backup_rss_kib: u64,
}

pub fn run(opts: &Options, vipd: &VipdBinary) -> Result<Section> {
    let shape = if opts.quick {
        Shape {
            vrids: 16,
            interfaces: 2,
        }
    } else {
        Shape {
            vrids: 255,
            interfaces: 4,
        }
    };
    let windows = opts.repeats(3, 1);
    let window = if opts.quick {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let impls = vipd.with(&[Impl::Keepalived]);
    let mut all = Vec::new();
    let mut errors = Vec::new();
    for &imp in &impls {
        match measure(imp, shape, windows, window, vipd) {
            Ok(mut w) => all.append(&mut w),
            Err(e) => {
                eprintln!("bench scale: {}: {e:#}", imp.name());
                errors.push(format!("{}: {e:#}", imp.name()));
            }
        }
    }
    Ok(section(&all, &impls, shape, windows, window, errors))
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
        Impl::Frr => bail!("the scale item compares vipd and keepalived"),
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
    for w in 0..windows {
        let (c1, c2) = (CpuWindow::start(r1.pids()), CpuWindow::start(r2.pids()));
        std::thread::sleep(window);
        let rss = |d: &Daemon| d.pids().iter().map(|p| rss_kib(*p)).sum::<u64>();
        let win = Window {
            imp,
            master_cpu: c1.percent(),
            backup_cpu: c2.percent(),
            master_rss_kib: rss(&r1),
            backup_rss_kib: rss(&r2),
        };
        eprintln!(
            "bench scale: {} window {w}: master {:.1} % CPU {:.1} MiB, backup {:.1} % CPU \
             {:.1} MiB",
            imp.name(),
            win.master_cpu,
            win.master_rss_kib as f64 / 1024.0,
            win.backup_cpu,
            win.backup_rss_kib as f64 / 1024.0
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
         master of all, r2 backup of all. {windows} window(s) of {:.0} s after convergence; \
         median (min–max). CPU in % of one core; RSS summed over the daemon's processes as \
         proportional set size (pages a forked child shares with its parent count once).\n\n\
         | implementation | master CPU % | backup CPU % | master RSS MiB | backup RSS MiB |\n\
         |---|---|---|---|---|\n",
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
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            imp.name(),
            cell_opt(mc, 1),
            cell_opt(bc, 1),
            cell_opt(mr, 1),
            cell_opt(br, 1)
        ));
        rows.push(json!({
            "implementation": imp.name(),
            "master_cpu_percent": json_opt(mc), "backup_cpu_percent": json_opt(bc),
            "master_rss_mib": json_opt(mr), "backup_rss_mib": json_opt(br),
        }));
    }
    let mut ratios = json!(null);
    if impls.contains(&Impl::Vipd) {
        let r = |f: fn(&Window) -> f64| paired_ratio(&of(Impl::Vipd, f), &of(Impl::Keepalived, f));
        let (mc, bc, mr, br) = (
            r(|w| w.master_cpu),
            r(|w| w.backup_cpu),
            r(|w| w.master_rss_kib as f64),
            r(|w| w.backup_rss_kib as f64),
        );
        md.push_str(&format!(
            "| vipd / keepalived | {}× | {}× | {}× | {}× |\n",
            cell_opt(mc, 2),
            cell_opt(bc, 2),
            cell_opt(mr, 2),
            cell_opt(br, 2)
        ));
        ratios = json!({
            "master_cpu": json_opt(mc), "backup_cpu": json_opt(bc),
            "master_rss": json_opt(mr), "backup_rss": json_opt(br),
        });
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
            "windows_raw": all.iter().map(|w| json!({
                "implementation": w.imp.name(), "master_cpu_percent": w.master_cpu,
                "backup_cpu_percent": w.backup_cpu, "master_rss_kib": w.master_rss_kib,
                "backup_rss_kib": w.backup_rss_kib,
            })).collect::<Vec<_>>(),
            "failed": errors,
        }),
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
