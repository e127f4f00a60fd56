//! The namespace lab harness proves itself with keepalived and FRR as routers: topology,
//! cleanup, probers, captures, and what a `kill -9` failover really looks like.

use std::{
    net::IpAddr,
    panic::{AssertUnwindSafe, catch_unwind},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, Result};
use vip_tests::{
    lab::{self, FrrConfig, KeepalivedConfig, Kind, Lab, Method, leftovers, netns, process},
    require_root,
};

const VIP: &str = "192.0.2.1";

fn vip() -> IpAddr {
    VIP.parse().unwrap()
}

fn assert_gone(prefix: &str, pids: &[i32]) {
    let left = leftovers(prefix);
    assert!(left.is_empty(), "lab {prefix} left {left:?}");
    let alive: Vec<i32> = pids
        .iter()
        .copied()
        .filter(|&p| process::alive(p))
        .collect();
    assert!(
        alive.is_empty(),
        "lab {prefix}: processes {alive:?} survived"
    );
}

/// Leftovers of a pretend dead test, removed even if the test fails half-way.
struct Stale {
    prefix: String,
    orphan: Option<std::process::Child>,
}

impl Drop for Stale {
    fn drop(&mut self) {
        if let Some(mut c) = self.orphan.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        lab::sweep_dead_labs();
    }
}

/// A lab with a keepalived, a capture still running, a stray child and a pin directory.
fn busy_lab() -> Result<(Lab, Vec<i32>)> {
    let lab = Lab::builder()
        .routers(2)
        .client()
        .attacker()
        .uplink(1)
        .build()?;
    lab.pin_dir()?;
    let cfg = KeepalivedConfig {
        vips: vec![vip()],
        advert_interval: Duration::from_millis(100),
        ..Default::default()
    };
    lab.keepalived(lab.router(1), &cfg)?;
    lab.capture_port(lab.router(1), "")?;
    lab.spawn(lab.client(), &["sleep", "60"])?;
    // nsenter keeps the host's mounts: a daemon in a router namespace sees the pin directory.
    let pins = lab.pin_dir()?;
    lab.exec(lab.router(1), &["test", "-d", &pins.to_string_lossy()])?;
    // A socket opened by in_node belongs to that namespace: routing picks r2's own address.
    let r1_addr = (lab.router(1).ipv4, 9);
    let local = lab.in_node(lab.router(2), || -> std::io::Result<IpAddr> {
        let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
        s.connect(r1_addr)?;
        Ok(s.local_addr()?.ip())
    })??;
    assert_eq!(local, IpAddr::V4(lab.router(2).ipv4));
    let pids = lab.pids();
    assert!(pids.len() >= 4, "keepalived (2), tcpdump, sleep: {pids:?}");
    assert!(!leftovers(&lab.prefix).is_empty());
    Ok((lab, pids))
}

#[test]
fn lab_leaves_nothing_behind_when_dropped_when_panicking_or_when_its_test_died() -> Result<()> {
    require_root();

    let (lab, pids) = busy_lab()?;
    let prefix = lab.prefix.clone();
    drop(lab);
    assert_gone(&prefix, &pids);

    let mut seen = None;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let (lab, pids) = busy_lab().unwrap();
        seen = Some((lab.prefix.clone(), pids));
        panic!("deliberate panic with a live lab");
    }));
    assert!(outcome.is_err());
    let (prefix, pids) = seen.expect("lab was built");
    assert_gone(&prefix, &pids);

    // What a SIGKILLed test leaves: a namespace with a process in it, a directory and a pin
    // directory, all under the pid of a process that no longer exists.
    let mut gone = std::process::Command::new("true").spawn()?;
    let dead_pid = gone.id();
    gone.wait()?;
    let stale = Stale {
        prefix: format!("vt{dead_pid}x0"),
        orphan: None,
    };
    let mut stale = stale;
    let ns = format!("{}-r1", stale.prefix);
    netns::add(&ns)?;
    stale.orphan = Some(netns::nsenter(&ns, &["sleep", "60"]).spawn()?);
    std::fs::create_dir_all(format!("{}/{}", lab::LAB_ROOT, stale.prefix))?;
    std::fs::create_dir_all(format!("{}/{}", lab::BPF_ROOT, stale.prefix))?;
    // Wait for the process to be inside the namespace, not merely started: before nsenter's
    // setns it is a process whose command line names the namespace, which a count of
    // leftovers cannot tell apart, and a sweep run then finds no process in the namespace,
    // deletes it, and leaves nsenter to enter it through the file it already holds open.
    let inside = format!("process {} in {ns}", stale.orphan.as_ref().unwrap().id());
    lab::wait_until(
        "the stale namespace's process to enter it",
        Duration::from_secs(5),
        Duration::from_millis(5),
        || Ok(leftovers(&stale.prefix).contains(&inside)),
    )?;
    let lab = Lab::builder().routers(1).build()?;
    // The sweep killed it; reap it here, as its parent.
    let status = stale.orphan.take().unwrap().wait()?;
    assert!(
        !status.success(),
        "the stale namespace's process was killed"
    );
    assert_gone(&stale.prefix, &[]);
    drop(lab);
    Ok(())
}

#[test]
fn client_reaches_routers_through_the_bridge_and_probers_see_exactly_the_owner() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let (cl, r1, r2) = (lab.client(), lab.router(1), lab.router(2));
    for n in lab.nodes() {
        let port = netns::ip(&lab.bridge_ns, &["link", "show", &n.port])?;
        assert!(
            port.contains("prog/xdp id"),
            "XDP pass program on {}: {port}",
            n.port
        );
    }
    lab.exec(
        cl,
        &[
            "ping",
            "-c",
            "3",
            "-i",
            "0.05",
            "-W",
            "1",
            &r1.ipv4.to_string(),
        ],
    )
    .context("client pings r1")?;
    lab.exec(
        cl,
        &[
            "ping",
            "-6",
            "-c",
            "3",
            "-i",
            "0.05",
            "-W",
            "1",
            &r2.ipv6.to_string(),
        ],
    )
    .context("client pings r2 over IPv6")?;

    let step = Duration::from_millis(2);
    let span = Duration::from_millis(400);
    for (method, target, owner) in [
        (Method::Resolve, IpAddr::V4(r1.ipv4), "r1"),
        (Method::Resolve, IpAddr::V6(r2.ipv6), "r2"),
        (Method::Ping, IpAddr::V4(r2.ipv4), "r2"),
        (Method::Ping, IpAddr::V6(r1.ipv6), "r1"),
    ] {
        let run = lab.probe(cl, method, target, step, span, &[])?.finish()?;
        println!("{}", run.summary());
        assert!(run.sent() >= 150, "{}", run.summary());
        assert_eq!(
            run.responders(),
            [owner.to_string()].into(),
            "{}",
            run.summary()
        );
        assert!(run.overlaps().is_empty(), "{}", run.summary());
        // The first ping may wait for neighbour resolution; nothing else is lost on a bridge.
        assert!(run.lost() <= 2, "{}", run.summary());
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Failure {
    Kill9,
    Sigterm,
}

/// r1 (priority 200) and r2 (100) run keepalived v3 for one VIP; r1's keepalived dies
/// while the client probes the VIP by ARP and by ping.
fn keepalived_failover(interval: Duration, failure: Failure, vip: IpAddr) -> Result<()> {
    let lab = Lab::builder().routers(2).client().build()?;
    let (cl, r1, r2) = (lab.client(), lab.router(1), lab.router(2));
    let cfg = |priority| KeepalivedConfig {
        priority,
        vips: vec![vip],
        advert_interval: interval,
        ..Default::default()
    };
    let ka1 = lab.keepalived(r1, &cfg(200))?;
    let ka2 = lab.keepalived(r2, &cfg(100))?;
    ka1.wait_state("MASTER", Duration::from_secs(10))?;
    ka2.wait_state("BACKUP", Duration::from_secs(10))?;
    // Two keepalived started together may both be master for a moment; the baseline
    // starts once the backup no longer holds the VIP.
    let vip_s = vip.to_string();
    lab::wait_until(
        "keepalived's backup to drop the VIP",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || {
            Ok(!lab
                .exec(r2, &["ip", "addr", "show", "dev", "eth0"])?
                .contains(&format!("{vip_s}/")))
        },
    )?;
    let adverts = lab.capture_port(r2, "ip proto 112 or ip6 proto 112")?;

    let step = Duration::from_millis(2);
    let arp = lab.probe(cl, Method::Resolve, vip, step, Duration::from_secs(8), &[])?;
    let ping = lab.probe(cl, Method::Ping, vip, step, Duration::from_secs(8), &[])?;
    // A steady-state baseline before the failure.
    std::thread::sleep(Duration::from_millis(300));
    let t_fail = Instant::now();
    let wall_fail = SystemTime::now();
    match failure {
        Failure::Kill9 => ka1.kill()?,
        Failure::Sigterm => ka1.stop()?,
    }
    ka2.wait_state("MASTER", Duration::from_secs(5))?;
    // From the notify script's own clock: a clean stop returns only after r2 took over.
    let takeover = ka2
        .transitions()
        .iter()
        .rev()
        .find(|(_, _, state)| state == "MASTER")
        .map(|(at, _, _)| {
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(*at);
            at.duration_since(wall_fail).unwrap_or_default()
        })
        .context("r2 logged no MASTER transition")?;
    // Long enough after takeover for keepalived's gratuitous ARPs and for any overlap to show.
    std::thread::sleep(Duration::from_millis(500));
    let arp = arp.stop()?;
    let ping = ping.stop()?;
    let adverts = adverts.stop()?;

    println!("--- keepalived v3 {vip} {interval:?}, {failure:?} of the master ---");
    println!("ARP/NS: {}", arp.summary());
    println!("ping:   {}", ping.summary());
    let before: Vec<_> = arp.between(arp.started, t_fail).collect();
    assert!(before.len() > 50);
    assert!(
        before
            .iter()
            .all(|p| p.responders() == ["r1".to_string()].into()),
        "before the failure only the master answers ARP"
    );
    let r2_first = arp
        .first_answer_by("r2", t_fail)
        .context("r2 never answered ARP for the VIP")?;
    println!(
        "r2 MASTER (notify) {:.1} ms after the failure; first ARP answer from r2 {:.1} ms after",
        takeover.as_secs_f64() * 1e3,
        (r2_first.sent - t_fail).as_secs_f64() * 1e3
    );
    let last_r1 = arp.last_answer_by("r1", Instant::now());
    let stale_for = last_r1.map(|p| p.sent.saturating_duration_since(t_fail));
    println!(
        "r1 last answered ARP {:.1} ms after the failure",
        stale_for.unwrap_or_default().as_secs_f64() * 1e3
    );
    let gap = arp.longest_gap();
    let overlap = arp.overlap_total();
    println!(
        "ARP gap {:.1} ms ({} probes); overlap {:.1} ms in {} window(s)",
        gap.span.as_secs_f64() * 1e3,
        gap.probes,
        overlap.as_secs_f64() * 1e3,
        arp.overlaps().len()
    );
    let ping_gap = ping.longest_gap();
    let ping_r2 = ping.first_answer_by("r2", t_fail);
    println!(
        "ping gap {:.1} ms ({} probes); first ping answered by r2 {:?} ms after the failure",
        ping_gap.span.as_secs_f64() * 1e3,
        ping_gap.probes,
        ping_r2.map(|p| ((p.sent - t_fail).as_secs_f64() * 1e3).round())
    );
    // An advert already in flight at the failure may still land just after it.
    let settled = wall_fail + interval;
    let r1_adverts: Vec<(SystemTime, u8)> = adverts
        .iter()
        .filter(|f| f.at > wall_fail)
        .filter_map(|f| match f.kind() {
            Kind::Vrrp {
                src_mac, priority, ..
            } if src_mac == r1.mac => Some((f.at, priority)),
            _ => None,
        })
        .collect();
    let resigns = r1_adverts.iter().filter(|(_, p)| *p == 0).count();
    let late = r1_adverts
        .iter()
        .filter(|(at, p)| *p != 0 && *at > settled)
        .count();
    println!("r1 adverts after the failure: {resigns} with priority 0, {late} others");
    assert_eq!(late, 0, "r1 advertises nothing after it died or resigned");

    match failure {
        Failure::Kill9 => {
            // keepalived leaves the VIP on a SIGKILLed master's eth0, so its kernel keeps
            // answering ARP: the client sees no gap while two routers claim the VIP. This is
            // the flaw vipd's XDP ownership check removes.
            assert_eq!(resigns, 0, "a killed master cannot resign");
            assert!(
                stale_for.is_some_and(|d| d > takeover),
                "r1 keeps answering after r2 took over"
            );
            assert!(overlap > Duration::ZERO, "a stale VIP shows as overlap");
        }
        Failure::Sigterm => {
            // A clean stop resigns with priority 0 and removes the VIP: no overlap, and the
            // backup takes over after its skew time instead of the master-down interval.
            assert!(resigns >= 1, "a clean stop sends a priority-0 advert");
            assert!(arp.overlaps().is_empty(), "no overlap after a clean stop");
            assert!(
                takeover < interval * 3,
                "takeover within skew time: {takeover:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn keepalived_kill9_failover_at_100ms_shows_the_stale_vip_as_overlap() -> Result<()> {
    require_root();
    keepalived_failover(Duration::from_millis(100), Failure::Kill9, vip())
}

#[test]
fn keepalived_kill9_failover_over_ipv6_shows_the_stale_vip_as_overlap() -> Result<()> {
    require_root();
    keepalived_failover(
        Duration::from_millis(100),
        Failure::Kill9,
        "2001:db8::1".parse()?,
    )
}

#[test]
fn keepalived_kill9_failover_at_10ms_shows_the_stale_vip_as_overlap() -> Result<()> {
    require_root();
    keepalived_failover(Duration::from_millis(10), Failure::Kill9, vip())
}

#[test]
fn keepalived_clean_stop_at_100ms_hands_over_without_overlap() -> Result<()> {
    require_root();
    keepalived_failover(Duration::from_millis(100), Failure::Sigterm, vip())
}

#[test]
fn frr_vrrpd_becomes_master_answers_arp_with_its_vmac_and_keepalived_backs_it_up() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let (cl, r1, r2) = (lab.client(), lab.router(1), lab.router(2));
    let port1 = lab.capture_port(r1, "arp or vrrp")?;
    let cfg = FrrConfig {
        vrid: 51,
        priority: 200,
        advert_interval: Duration::from_millis(100),
        v4: vec![VIP.parse()?],
        ..Default::default()
    };
    let vmac = cfg.vmac4();
    let frr = lab.frr(r1, &cfg)?;
    let took = frr.wait_v4("Master", Duration::from_secs(10))?;
    println!("FRR vrrpd master after {took:?}");

    let ka = lab.keepalived(
        r2,
        &KeepalivedConfig {
            vrid: 51,
            priority: 100,
            vips: vec![vip()],
            advert_interval: Duration::from_millis(100),
            ..Default::default()
        },
    )?;
    let mut run = lab
        .probe(
            cl,
            Method::Resolve,
            vip(),
            Duration::from_millis(2),
            Duration::from_millis(600),
            &[(vmac, "vmac51")],
        )?
        .finish()?;
    let frames = port1.stop()?;
    println!("{}", run.summary());
    assert_eq!(run.responders(), ["vmac51".to_string()].into());
    assert!(run.lost() <= 2, "{}", run.summary());
    // The VMAC alone cannot say which router answered: the capture on r1's port can.
    let matched = run.attribute(&[("r1", &frames)]);
    assert!(
        matched as f64 >= run.answered() as f64 * 0.95,
        "{matched} of {}",
        run.answered()
    );
    assert_eq!(run.responders(), ["r1".to_string()].into());

    let adverts: Vec<Kind> = frames
        .iter()
        .map(|f| f.kind())
        .filter(|k| matches!(k, Kind::Vrrp { .. }))
        .collect();
    assert!(
        adverts.iter().any(|k| matches!(k, Kind::Vrrp { src_mac, vrid: 51, priority: 200, version: 3, interval: 10, ttl: 255, .. } if *src_mac == vmac)),
        "FRR adverts from the VMAC with priority 200, 100 ms: {adverts:?}"
    );
    assert_eq!(
        ka.state().as_deref(),
        Some("BACKUP"),
        "keepalived defers to FRR's higher priority"
    );
    assert_eq!(frr.status()?.v4, "Master");
    Ok(())
}

#[test]
fn link_controls_split_heal_and_fault_a_keepalived_pair() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().uplink(1).build()?;
    let (cl, r1, r2) = (lab.client(), lab.router(1), lab.router(2));
    let cfg = |priority, track: &[&str]| KeepalivedConfig {
        priority,
        vips: vec![vip()],
        advert_interval: Duration::from_millis(100),
        track_interfaces: track.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let ka1 = lab.keepalived(r1, &cfg(200, &["uplink0"]))?;
    let ka2 = lab.keepalived(r2, &cfg(100, &[]))?;
    // Generous: keepalived settles in well under a second, but this runs on two busy
    // cores beside the rest of the suite.
    let t = Duration::from_secs(10);
    let settled = |master: &lab::Keepalived, other: &str| -> Result<()> {
        master.wait_state("MASTER", t)?;
        (if master.router == "r1" { &ka2 } else { &ka1 }).wait_state(other, t)?;
        Ok(())
    };
    settled(&ka1, "BACKUP")?;

    // With adverts dropped on the bridge both claim the VIP: every probe gets two answers.
    lab.block_vrrp_all()?;
    ka2.wait_state("MASTER", t)?;
    assert_eq!(ka1.state().as_deref(), Some("MASTER"));
    let split = lab
        .probe(
            cl,
            Method::Resolve,
            vip(),
            Duration::from_millis(2),
            Duration::from_millis(200),
            &[],
        )?
        .finish()?;
    println!("split brain: {}", split.summary());
    assert!(
        split.overlap_total() >= Duration::from_millis(150),
        "{}",
        split.summary()
    );
    lab.unblock_vrrp_all();
    settled(&ka1, "BACKUP")?;

    // Tracking: r1's uplink fails, r1 goes FAULT and r2 takes over; it comes back and preempts.
    lab.set_iface(r1, "uplink0", false)?;
    ka1.wait_state("FAULT", t)?;
    settled(&ka2, "FAULT")?;
    lab.set_iface(r1, "uplink0", true)?;
    settled(&ka1, "BACKUP")?;

    // The bridge port going down takes r1's carrier with it (veth).
    lab.set_port(r1, false)?;
    ka1.wait_state("FAULT", t)?;
    assert!(
        lab.exec(r1, &["ip", "link", "show", "eth0"])?
            .contains("NO-CARRIER")
    );
    lab.set_port(r1, true)?;
    settled(&ka1, "BACKUP")?;
    lab.set_eth0(r1, false)?;
    ka1.wait_state("FAULT", t)?;
    lab.set_eth0(r1, true)?;
    settled(&ka1, "BACKUP")?;

    // Cut off the bridge r1 keeps its carrier, hears nobody and nobody reaches it.
    lab.cut(r1)?;
    ka2.wait_state("MASTER", t)?;
    assert_eq!(ka1.state().as_deref(), Some("MASTER"));
    let cut = lab
        .probe(
            cl,
            Method::Resolve,
            IpAddr::V4(r1.ipv4),
            Duration::from_millis(2),
            Duration::from_millis(100),
            &[],
        )?
        .finish()?;
    assert_eq!(cut.answered(), 0, "{}", cut.summary());
    lab.rejoin(r1)?;
    settled(&ka1, "BACKUP")?;
    let back = lab
        .probe(
            cl,
            Method::Resolve,
            IpAddr::V4(r1.ipv4),
            Duration::from_millis(2),
            Duration::from_millis(100),
            &[],
        )?
        .finish()?;
    assert_eq!(
        back.responders(),
        ["r1".to_string()].into(),
        "{}",
        back.summary()
    );
    Ok(())
}
