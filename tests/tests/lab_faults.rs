//! Faults (issue 7): crashes and restarts, link flap storms, reloads in the middle of a
//! failover, interfaces vanishing, foreign objects in the pin directory, a full disk for
//! logs, and what keeps working while the daemon is dead.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::Path,
    time::Duration,
};

use nix::sys::signal::Signal;
use vip_tests::lab::{Lab, Method, Vipd};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn instance(priority: u8, interval: &str, extra: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\n\
         advert_interval = \"{interval}\"\nvips = [\"{VIP}/24\"]\n{extra}"
    )
}

fn pair(lab: &Lab, interval: &str) -> anyhow::Result<(Vipd, Vipd)> {
    let r1 = lab.vipd(Path::new(VIPD), lab.router(1), &instance(200, interval, ""))?;
    let r2 = lab.vipd(Path::new(VIPD), lab.router(2), &instance(100, interval, ""))?;
    r1.wait_state("gw", "master", Duration::from_secs(10))?;
    r2.wait_state("gw", "backup", Duration::from_secs(10))?;
    Ok((r1, r2))
}

fn transitions(v: &Vipd) -> u64 {
    v.instance("gw")
        .map(|i| i["transitions"].as_u64().unwrap_or(0))
        .unwrap_or(0)
}

/// Whether `addr` is configured on `node`'s eth0.
fn has_address(lab: &Lab, node: &vip_tests::lab::Node, addr: Ipv4Addr) -> anyhow::Result<bool> {
    let out = lab.exec(node, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"])?;
    Ok(out.contains(&format!(" {addr}/")))
}

/// A counter from the pinned STATS map, read with bpftool as an operator would when the
/// daemon is gone.
fn pinned_counter(v: &Vipd, name: &str) -> anyhow::Result<u64> {
    let out = std::process::Command::new("bpftool")
        .args(["map", "dump", "pinned"])
        .arg(v.pin.join("STATS"))
        .arg("-j")
        .output()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let total = json[0]["formatted"]["values"]
        .as_array()
        .map(|cpus| cpus.iter().filter_map(|c| c["value"][name].as_u64()).sum())
        .unwrap_or(0);
    Ok(total)
}

#[test]
fn killed_master_stops_answering_and_a_restart_removes_its_stale_vip_first() -> anyhow::Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let (mut r1, r2) = pair(&lab, "100ms")?;
    r1.kill()?;
    r2.wait_state("gw", "master", Duration::from_secs(3))?;
    // The crashed daemon left its VIP on the interface, but its program still runs and
    // the lease has lapsed: the kernel is never asked.
    assert!(
        has_address(&lab, lab.router(1), VIP)?,
        "kill -9 leaves the address behind"
    );
    let probe = lab.probe(
        lab.client(),
        Method::Resolve,
        VIP.into(),
        Duration::from_millis(5),
        Duration::from_secs(1),
        &[],
    )?;
    std::thread::sleep(Duration::from_millis(300));
    let run = probe.stop()?;
    assert_eq!(
        run.responders().into_iter().collect::<Vec<_>>(),
        ["r2"],
        "{}",
        run.summary()
    );
    let dropped = pinned_counter(&r1, "lease_expired")?;
    println!("dead r1 dropped {dropped} requests for its stale VIP (lease lapsed)");
    assert!(dropped > 0);
    // Restart without preemption so it stays backup: the stale address must be gone.
    r1.rewrite(&instance(200, "100ms", "preempt = false\n"))?;
    lab.start_vipd(&mut r1, &[])?;
    r1.wait_state("gw", "backup", Duration::from_secs(3))?;
    assert!(
        !has_address(&lab, lab.router(1), VIP)?,
        "stale VIP removed at start"
    );
    assert_eq!(r2.state_of("gw")?, "master");
    Ok(())
}

#[test]
fn a_link_flap_storm_settles_with_one_master() -> anyhow::Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let (r1, r2) = pair(&lab, "10ms")?;
    for i in 0..30u64 {
        lab.set_port(lab.router(1), i % 2 == 1)?;
        std::thread::sleep(Duration::from_millis(5 + (i * 7) % 40));
    }
    lab.set_port(lab.router(1), true)?;
    r1.wait_state("gw", "master", Duration::from_secs(3))?;
    r2.wait_state("gw", "backup", Duration::from_secs(3))?;
    println!(
        "after 30 flaps: r1 {} transitions, r2 {}",
        transitions(&r1),
        transitions(&r2)
    );
    let probe = lab.probe(
        lab.client(),
        Method::Resolve,
        VIP.into(),
        Duration::from_millis(2),
        Duration::from_millis(300),
        &[],
    )?;
    let run = probe.finish()?;
    assert_eq!(run.responders().into_iter().collect::<Vec<_>>(), ["r1"]);
    assert_eq!(run.lost(), 0);
    Ok(())
}

#[test]
fn sighup_in_the_middle_of_a_failover_changes_nothing() -> anyhow::Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let (r1, r2) = pair(&lab, "10ms")?;
    r1.kill()?;
    // Reload the backup while its down timer runs.
    r2.signal(Signal::SIGHUP)?;
    r2.wait_state("gw", "master", Duration::from_secs(2))?;
    r2.signal(Signal::SIGHUP)?;
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(r2.state_of("gw")?, "master");
    assert_eq!(
        transitions(&r2),
        2,
        "initialize→backup→master, nothing more"
    );
    Ok(())
}

#[test]
fn an_interface_removed_under_an_instance_faults_it_and_its_return_restores_it()
-> anyhow::Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(1).build()?;
    let r1 = lab.router(1);
    let make = || -> anyhow::Result<()> {
        lab.exec(
            r1,
            &[
                "ip", "link", "add", "vr0", "type", "veth", "peer", "name", "vr0p",
            ],
        )?;
        lab.exec(r1, &["ip", "addr", "add", "198.51.100.11/24", "dev", "vr0"])?;
        lab.exec(r1, &["ip", "link", "set", "vr0p", "up"])?;
        lab.exec(r1, &["ip", "link", "set", "vr0", "up"])?;
        Ok(())
    };
    make()?;
    let cfg = "[[vrrp]]\nname = \"side\"\ninterface = \"vr0\"\nvrid = 9\npriority = 150\n\
               advert_interval = \"50ms\"\nvips = [\"198.51.100.1/24\"]\n";
    let v = lab.vipd(Path::new(VIPD), r1, cfg)?;
    v.wait_state("side", "master", Duration::from_secs(3))?;
    lab.exec(r1, &["ip", "link", "del", "vr0"])?;
    v.wait_state("side", "fault", Duration::from_secs(3))?;
    assert!(
        v.process().is_some_and(|p| p.is_running()),
        "survives the removal"
    );
    make()?;
    v.wait_state("side", "master", Duration::from_secs(5))?;
    println!("{}", v.status_text()?);
    Ok(())
}

#[test]
fn foreign_objects_in_the_pin_directory_stop_the_start_and_change_nothing() -> anyhow::Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(1).build()?;
    let mut v = lab.vipd_configured(Path::new(VIPD), lab.router(1), &instance(200, "100ms", ""))?;
    std::fs::create_dir_all(&v.pin)?;
    let foreign = v.pin.join("GROUP_STATE");
    let ok = std::process::Command::new("bpftool")
        .args(["map", "create"])
        .arg(&foreign)
        .args([
            "type",
            "array",
            "key",
            "4",
            "value",
            "8",
            "entries",
            "4",
            "name",
            "GROUP_STATE",
        ])
        .status()?;
    assert!(ok.success());
    let err = lab
        .start_vipd(&mut v, &[])
        .expect_err("must refuse to start");
    let log = v.log();
    println!("{log}");
    assert!(log.contains("is not vipd's"), "{err:#}");
    assert!(foreign.exists(), "the foreign map is left alone");
    let xdp = lab.exec(lab.router(1), &["ip", "-j", "link", "show", "eth0"])?;
    assert!(!xdp.contains("\"xdp\""), "nothing attached: {xdp}");
    Ok(())
}

#[test]
fn logging_into_a_full_disk_does_not_stop_the_daemon() -> anyhow::Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(1).client().build()?;
    let v = lab.vipd_configured(Path::new(VIPD), lab.router(1), &instance(200, "50ms", ""))?;
    // Every write to stderr fails with ENOSPC.
    let cmd = format!(
        "exec {} run --config {} 2>/dev/full",
        VIPD,
        v.config.display()
    );
    let _p = lab.spawn(lab.router(1), &["sh", "-c", &cmd])?;
    v.wait_state("gw", "master", Duration::from_secs(5))?;
    let run = lab
        .probe(
            lab.client(),
            Method::Resolve,
            VIP.into(),
            Duration::from_millis(5),
            Duration::from_millis(300),
            &[],
        )?
        .finish()?;
    assert_eq!(run.lost(), 0, "{}", run.summary());
    Ok(())
}

#[test]
fn with_the_daemon_dead_the_hosts_own_traffic_still_flows() -> anyhow::Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(1).client().build()?;
    let r1 = lab.vipd(Path::new(VIPD), lab.router(1), &instance(200, "50ms", ""))?;
    r1.wait_state("gw", "master", Duration::from_secs(3))?;
    r1.kill()?;
    std::thread::sleep(Duration::from_millis(300));
    // The program still runs (pinned) and fails open for everything that is not a VIP.
    let own: IpAddr = lab.router(1).ipv4.into();
    let arp = lab
        .probe(
            lab.client(),
            Method::Resolve,
            own,
            Duration::from_millis(5),
            Duration::from_millis(200),
            &[],
        )?
        .finish()?;
    let ping = lab
        .probe(
            lab.client(),
            Method::Ping,
            own,
            Duration::from_millis(5),
            Duration::from_millis(200),
            &[],
        )?
        .finish()?;
    let vip = lab
        .probe(
            lab.client(),
            Method::Resolve,
            VIP.into(),
            Duration::from_millis(5),
            Duration::from_millis(200),
            &[],
        )?
        .finish()?;
    println!(
        "router's own address: {} / {}",
        arp.summary(),
        ping.summary()
    );
    println!("VIP with the lease lapsed: {}", vip.summary());
    assert_eq!(arp.lost() + ping.lost(), 0);
    assert_eq!(vip.answered(), 0, "no router owns the VIP any more");
    Ok(())
}

#[test]
fn a_master_restarted_within_its_lease_resumes_without_a_gap() -> anyhow::Result<()> {
    vip_tests::require_root();
    for how in ["kill -9", "--keep-on-exit"] {
        let lab = Lab::builder().routers(2).client().build()?;
        let keep: &[&str] = if how == "kill -9" {
            &[]
        } else {
            &["--keep-on-exit"]
        };
        let mut r1 =
            lab.vipd_configured(Path::new(VIPD), lab.router(1), &instance(200, "1s", ""))?;
        lab.start_vipd(&mut r1, keep)?;
        let r2 = lab.vipd(Path::new(VIPD), lab.router(2), &instance(100, "1s", ""))?;
        r1.wait_state("gw", "master", Duration::from_secs(10))?;
        r2.wait_state("gw", "backup", Duration::from_secs(10))?;
        let before = transitions(&r2);
        let probe = lab.probe(
            lab.client(),
            Method::Resolve,
            VIP.into(),
            Duration::from_millis(5),
            Duration::from_secs(4),
            &[],
        )?;
        std::thread::sleep(Duration::from_millis(200));
        if how == "kill -9" {
            r1.kill()?;
        } else {
            // The upgrade path: the old binary exits leaving everything in place.
            r1.stop()?;
        }
        lab.start_vipd(&mut r1, &[])?;
        r1.wait_state("gw", "master", Duration::from_secs(2))?;
        std::thread::sleep(Duration::from_millis(500));
        let run = probe.stop()?;
        let reason = r1.instance("gw")?["last_transition"]["reason"].clone();
        println!("{how}: {} ; r1 {reason}", run.summary());
        assert!(
            reason.as_str().unwrap_or_default().contains("resumed"),
            "{reason}"
        );
        assert_eq!(transitions(&r2), before, "the backup never moved");
        assert_eq!(run.lost(), 0);
        assert!(run.overlaps().is_empty());
    }
    Ok(())
}
