//! Moving a running keepalived pair to vipd one node at a time, the way an operator does
//! it: the backup's own keepalived.conf goes through `vipd import keepalived`, keepalived
//! stops there and vipd starts from the result. The master never notices; afterwards the
//! VIPs and routes follow mastership and the notify program gets keepalived's arguments.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Result, ensure};
use nix::sys::signal::Signal;
use vip_tests::{
    lab::{Lab, Node, Proc, wait_until},
    require_root,
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");

/// A keepalived.conf as an edge-router pair would have it: two VRIDs (v3, 100 ms), a track
/// script, a route that follows VI_1, and a notify program.
fn keepalived_conf(router: &str, priority: u8, notify: &Path) -> String {
    format!(
        "global_defs {{\n  router_id {router}\n  vrrp_version 3\n}}\n\n\
         vrrp_script chk_gw {{\n  script \"/bin/true\"\n  interval 1\n  weight -20\n}}\n\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority {priority}\n  advert_int 0.1\n  virtual_ipaddress {{\n    192.0.2.1/24\n  }}\n  \
         virtual_routes {{\n    203.0.113.0/24 via 192.0.2.254\n  }}\n  \
         track_script {{\n    chk_gw\n  }}\n  notify {}\n}}\n\n\
         vrrp_instance VI_2 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 52\n  \
         priority {priority}\n  advert_int 0.1\n  virtual_ipaddress {{\n    192.0.2.2/24\n  }}\n  \
         notify {}\n}}\n",
        notify.display(),
        notify.display()
    )
}

/// A notify program that appends its arguments to `log`: keepalived and vipd alike call it.
fn write_notify(dir: &Path, log: &Path) -> Result<PathBuf> {
    let path = dir.join("notify.sh");
    std::fs::write(
        &path,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", log.display()),
    )?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

struct Node2 {
    dir: PathBuf,
    log: PathBuf,
    conf: PathBuf,
}

fn prepare(lab: &Lab, node: &Node, priority: u8) -> Result<Node2> {
    let dir = lab.scratch(&format!("migrate-{}", node.label))?;
    let log = dir.join("notify.log");
    let notify = write_notify(&dir, &log)?;
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, keepalived_conf(&node.label, priority, &notify))?;
    Ok(Node2 { dir, log, conf })
}

fn keepalived(lab: &Lab, node: &Node, n: &Node2) -> Result<Proc> {
    let d = |f: &str| n.dir.join(f).to_string_lossy().into_owned();
    lab.spawn(
        node,
        &[
            "keepalived",
            "--vrrp",
            "-n",
            "-l",
            "-D",
            "-G",
            "-f",
            &n.conf.to_string_lossy(),
            "-p",
            &d("keepalived.pid"),
            "-r",
            &d("vrrp.pid"),
        ],
    )
}

/// The notify log's lines.
fn notified(n: &Node2) -> Vec<String> {
    std::fs::read_to_string(&n.log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn wait_notified(n: &Node2, line: &str) -> Result<()> {
    wait_until(
        &format!("notify {line:?}"),
        Duration::from_secs(10),
        Duration::from_millis(20),
        || Ok(notified(n).iter().any(|l| l == line)),
    )
    .map(drop)
}

fn has_route(lab: &Lab, node: &Node) -> Result<bool> {
    Ok(lab
        .exec(node, &["ip", "route", "show", "203.0.113.0/24"])?
        .contains("via 192.0.2.254"))
}

fn has_vip(lab: &Lab, node: &Node, vip: &str) -> Result<bool> {
    Ok(lab
        .exec(node, &["ip", "-4", "addr", "show", "dev", "eth0"])?
        .contains(&format!("inet {vip}/24")))
}

#[test]
fn a_keepalived_backup_replaced_by_vipd_from_its_own_file_changes_nothing_and_takes_over()
-> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let (n1, n2) = (
        prepare(&lab, lab.router(1), 100)?,
        prepare(&lab, lab.router(2), 200)?,
    );
    let k1 = keepalived(&lab, lab.router(1), &n1)?;
    let k2 = keepalived(&lab, lab.router(2), &n2)?;
    wait_notified(&n2, "INSTANCE VI_1 MASTER 200")?;
    wait_notified(&n2, "INSTANCE VI_2 MASTER 200")?;
    wait_notified(&n1, "INSTANCE VI_1 BACKUP 100")?;
    ensure!(has_route(&lab, lab.router(2))? && !has_route(&lab, lab.router(1))?);

    // The operator's step: import r1's own file, check it, stop keepalived, start vipd.
    let out = n1.dir.join("vipd.toml");
    let (ok, _, report) = lab.exec_status(
        lab.router(1),
        &[
            VIPD,
            "import",
            "keepalived",
            &n1.conf.to_string_lossy(),
            "-o",
            &out.to_string_lossy(),
        ],
    )?;
    println!("  vipd import: {}", report.trim());
    ensure!(ok, "complete import (status 0): {report}");
    let imported = std::fs::read_to_string(&out)?;
    let mut v = lab.vipd_configured(Path::new(VIPD), lab.router(1), "")?;
    // Everything from the import, with the lab's own pin directory and control socket.
    let global_lines = std::fs::read_to_string(&v.config)?
        .lines()
        .filter(|l| l.starts_with("pin_path") || l.starts_with("control_socket"))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    std::fs::write(
        &v.config,
        imported.replacen("[global]\n", &format!("[global]\n{global_lines}"), 1),
    )?;
    let (ok, _, err) = lab.exec_status(
        lab.router(1),
        &[VIPD, "check", "--config", &v.config.to_string_lossy()],
    )?;
    ensure!(ok, "the imported file passes vipd check: {err}");
    let master_before = notified(&n2).len();
    k1.stop(Signal::SIGTERM, Duration::from_secs(5))?;
    lab.start_vipd(&mut v, &[])?;
    v.wait_state("VI_1", "backup", Duration::from_secs(5))?;
    v.wait_state("VI_2", "backup", Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_secs(1));
    ensure!(
        notified(&n2).len() == master_before,
        "the keepalived master saw no transition: {:?}",
        notified(&n2)
    );
    ensure!(!has_route(&lab, lab.router(1))? && !has_vip(&lab, lab.router(1), "192.0.2.1")?);

    // The keepalived master stops: vipd takes both VIPs and the route, and its notify
    // program hears keepalived's arguments.
    k2.stop(Signal::SIGTERM, Duration::from_secs(5))?;
    v.wait_state("VI_1", "master", Duration::from_secs(3))?;
    v.wait_state("VI_2", "master", Duration::from_secs(3))?;
    wait_notified(&n1, "INSTANCE VI_1 MASTER 100")?;
    wait_notified(&n1, "INSTANCE VI_2 MASTER 100")?;
    wait_until(
        "the route on vipd's master",
        Duration::from_secs(3),
        Duration::from_millis(20),
        || Ok(has_route(&lab, lab.router(1))? && has_vip(&lab, lab.router(1), "192.0.2.1")?),
    )?;
    ensure!(
        !has_route(&lab, lab.router(2))?,
        "keepalived took its route with it"
    );

    // keepalived comes back at 200 and preempts: vipd hands everything back.
    let _k2 = keepalived(&lab, lab.router(2), &n2)?;
    v.wait_state("VI_1", "backup", Duration::from_secs(5))?;
    wait_notified(&n1, "INSTANCE VI_1 BACKUP 100")?;
    wait_until(
        "the route gone from vipd's backup",
        Duration::from_secs(3),
        Duration::from_millis(20),
        || Ok(!has_route(&lab, lab.router(1))?),
    )?;
    println!("  vipd's notify log: {:?}", notified(&n1));
    if !has_route(&lab, lab.router(2))? {
        // keepalived installs its route a moment after its notify.
        wait_until(
            "the route on keepalived again",
            Duration::from_secs(3),
            Duration::from_millis(20),
            || has_route(&lab, lab.router(2)),
        )?;
    }
    Ok(())
}
