//! The field's scenarios end to end, built from the recipes in `docs/recipes.md` (each
//! recipe block is read from the document and used as written; only paths move into the
//! lab and the second router's values are changed as the document says). The lab tests
//! (`tests/lab_scenarios.rs`) check them; the benchmark (`vip-bench`, item 9) reports
//! their figures:
//!
//! - a stateful NAT gateway pair (nftables SNAT to an upstream VIP, conntrackd FTFW on a
//!   dedicated link driven by the sync group's hooks): a TCP stream and a UDP flow from the
//!   client to the server survive a link cut, a kill -9 and a SIGTERM of the master, with
//!   vipd and, as the baseline, keepalived;
//! - a /32 that moves: vipd installs its VIP as a protocol-112 host route while master,
//!   FRR redistributes it over BGP to a third router, which follows the master.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, bail, ensure};

use crate::lab::{
    Conntrackd, EchoServer, Flow, FlowRun, Keepalived, Kind, Lab, Method, Node, Proto, Vipd,
    recipe, wait_until,
};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../dist/conntrackd/primary-backup.sh"
);

/// Where the recipes put things on a real router.
const NFT_CONF: &str = "/etc/nftables.conf";
const CT_CONF: &str = "/etc/conntrackd/conntrackd.conf";
const HOOK: &str = "/usr/local/sbin/primary-backup.sh";

const ECHO_PORT: u16 = 7000;
/// How long each failover (and each return of r1) is watched in a full run.
pub const WATCH: Duration = Duration::from_secs(3);

/// One NAT router's files, moved into the lab.
struct NatRouter {
    nft: PathBuf,
    hook: PathBuf,
    conntrackd: Conntrackd,
}

/// Replaces each `(from, to)` in `text`, failing if `from` is not there (the recipe
/// changed under the test).
fn substitute(text: &str, pairs: &[(&str, &str)]) -> Result<String> {
    let mut out = text.to_owned();
    for (from, to) in pairs {
        ensure!(out.contains(from), "recipe text lacks {from:?}:\n{text}");
        out = out.replace(from, to);
    }
    Ok(out)
}

/// Runs a recipe's shell lines on `node` with the real paths replaced by the lab's.
fn run_commands(lab: &Lab, node: &Node, name: &str, paths: &[(&str, &str)]) -> Result<()> {
    for line in recipe::commands(name)? {
        let mut cmd = line.clone();
        for (from, to) in paths {
            cmd = cmd.replace(from, to);
        }
        // The script path in `install` is relative to the repository.
        cmd = cmd.replace("dist/conntrackd/primary-backup.sh", SCRIPT);
        lab.exec(node, &["sh", "-c", &cmd])
            .with_context(|| format!("recipe {name}: {line}"))?;
    }
    Ok(())
}

/// Firewall, kernel settings, conntrackd and the hook script on r1 or r2.
fn nat_router(lab: &Lab, n: usize) -> Result<NatRouter> {
    let node = lab.router(n);
    let dir = lab.scratch(&format!("nat-{}", node.label))?;
    let nft = dir.join("nftables.conf");
    std::fs::write(&nft, recipe::block("nat/nftables.conf")?)?;
    let hook = dir.join("primary-backup.sh");
    let nft_s = nft.to_string_lossy().into_owned();
    let hook_s = hook.to_string_lossy().into_owned();
    run_commands(lab, node, "nat/setup.sh", &[(NFT_CONF, &nft_s)])?;
    let mut conf = recipe::block("nat/conntrackd.conf")?;
    if n == 2 {
        conf = substitute(
            &conf,
            &[
                ("203.0.113.1", "203.0.113.x"),
                ("203.0.113.2", "203.0.113.1"),
                ("203.0.113.x", "203.0.113.2"),
            ],
        )?;
    }
    // conntrackd itself runs in the foreground under the lab (the recipe's `-d` forks it
    // away); everything else of the install recipe runs as written.
    let conntrackd = lab.conntrackd(node, &conf)?;
    let ct_s = conntrackd.config.to_string_lossy().into_owned();
    for line in recipe::commands("nat/install.sh")? {
        if line.starts_with("conntrackd ") {
            continue;
        }
        let cmd = line
            .replace(HOOK, &hook_s)
            .replace(CT_CONF, &ct_s)
            .replace("dist/conntrackd/primary-backup.sh", SCRIPT);
        lab.exec(node, &["sh", "-c", &cmd])
            .with_context(|| format!("recipe nat/install.sh: {line}"))?;
    }
    Ok(NatRouter {
        nft,
        hook,
        conntrackd,
    })
}

/// The router daemon under test.
enum Gw {
    Vipd(Vipd),
    Keepalived(Keepalived),
}

impl Gw {
    fn wait(&self, state: &str, timeout: Duration) -> Result<Duration> {
        match self {
            Gw::Vipd(v) => {
                let a = v.wait_state("lan", &state.to_lowercase(), timeout)?;
                let b = v.wait_state("wan", &state.to_lowercase(), timeout)?;
                Ok(a.max(b))
            }
            Gw::Keepalived(k) => k.wait_state(state, timeout),
        }
    }

    fn kill(&self) -> Result<()> {
        match self {
            Gw::Vipd(v) => v.kill(),
            Gw::Keepalived(k) => k.kill(),
        }
    }

    fn stop(&self) -> Result<()> {
        match self {
            Gw::Vipd(v) => v.stop(),
            Gw::Keepalived(k) => k.stop(),
        }
    }

    fn log(&self) -> String {
        match self {
            Gw::Vipd(v) => v.log(),
            Gw::Keepalived(k) => k.log(),
        }
    }
}

/// The router daemon of a NAT gateway pair: vipd, or keepalived as the baseline.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
pub enum Daemon {
    Vipd,
    Keepalived,
}

impl Daemon {
    pub fn name(self) -> &'static str {
        match self {
            Daemon::Vipd => "vipd",
            Daemon::Keepalived => "keepalived",
        }
    }
}

fn start_gw(lab: &Lab, vipd: &Path, daemon: Daemon, n: usize, r: &NatRouter) -> Result<Gw> {
    let node = lab.router(n);
    let ct = r.conntrackd.config.to_string_lossy().into_owned();
    let hook = r.hook.to_string_lossy().into_owned();
    match daemon {
        Daemon::Vipd => {
            let text = recipe::block("nat/vipd.toml")?;
            let mut pairs = vec![(HOOK, hook.as_str()), (CT_CONF, ct.as_str())];
            if n == 2 {
                pairs.push(("priority = 200", "priority = 100"));
            }
            let text = substitute(&text, &pairs)?;
            Ok(Gw::Vipd(lab.vipd(vipd, node, &text)?))
        }
        Daemon::Keepalived => {
            let text = recipe::block("nat/keepalived.conf")?;
            let mut pairs = vec![(HOOK, hook.as_str()), (CT_CONF, ct.as_str())];
            if n == 2 {
                pairs.push(("router_id r1", "router_id r2"));
                pairs.push(("priority 200", "priority 100"));
            }
            let text = substitute(&text, &pairs)?;
            Ok(Gw::Keepalived(lab.keepalived_with(
                node,
                &["lan", "wan"],
                |notify| {
                    // The lab's notify script records each instance's state for the test.
                    substitute(
                        &text,
                        &[(
                            "    virtual_ipaddress {",
                            &format!("    notify {}\n    virtual_ipaddress {{", notify.display()),
                        )],
                    )
                },
            )?))
        }
    }
}

fn g(gw: &[Option<Gw>; 2], i: usize) -> &Gw {
    gw[i].as_ref().expect("router daemon running")
}

/// One failover (or return of r1) as the flows saw it.
#[derive(Clone, Debug)]
pub struct Figure {
    /// "link cut of r1", "r1 back after kill -9", ...
    pub what: String,
    /// The longest gap in the TCP and UDP echo streams within the watch of the event.
    pub tcp: Duration,
    pub udp: Duration,
    /// From the event to the new master reporting both instances master.
    pub takeover: Duration,
    /// For r1's failures: from r1's last VRRP advert on its LAN port to the event, ms
    /// (negative when that advert left after it). A backup counts its
    /// Master_Down_Interval from that advert, so a link cut just after one is luckier
    /// than one just before the next (the bench's phase correction). 0 for returns.
    pub phase_ms: f64,
}

/// The failures the NAT gateway goes through, in order (each followed by r1's return).
pub const NAT_FAILURES: [&str; 3] = ["link cut", "kill -9", "SIGTERM"];

/// The stateful NAT gateway pair with `daemon` on both routers (`vipd` is the binary when
/// it is vipd): a TCP stream and a UDP flow through it while r1 fails each way of
/// `kinds` (of [`NAT_FAILURES`]) and comes back, each event watched for `watch`. Fails
/// unless both flows survive every event.
pub fn nat_gateway(
    vipd: &Path,
    daemon: Daemon,
    kinds: &[&str],
    watch: Duration,
) -> Result<Vec<Figure>> {
    let lab = Lab::builder()
        .routers(2)
        .client()
        .wan()
        .sync_link()
        .build()?;
    let routers = [nat_router(&lab, 1)?, nat_router(&lab, 2)?];
    ensure!(routers[0].nft.exists());
    lab.exec(
        lab.client(),
        &["ip", "route", "add", "default", "via", "192.0.2.1"],
    )?;
    let _server = EchoServer::start(&lab.server().ns, ECHO_PORT)?;

    let mut gw = [
        Some(start_gw(&lab, vipd, daemon, 1, &routers[0])?),
        Some(start_gw(&lab, vipd, daemon, 2, &routers[1])?),
    ];
    g(&gw, 0).wait("MASTER", Duration::from_secs(10))?;
    g(&gw, 1).wait("BACKUP", Duration::from_secs(10))?;

    // r1's adverts on its LAN port, for each failure's phase in the advert cycle; started
    // seconds before the first failure, so its last advert before it is on record.
    let adverts = lab.capture_port(lab.router(1), "ip proto 112")?;

    let to: SocketAddr = (lab.server().ipv4, ECHO_PORT).into();
    let max = Duration::from_secs(120);
    let tick = Duration::from_millis(10);
    let tcp = Flow::start(&lab.client().ns, Proto::Tcp, to, tick, max)?;
    let udp = Flow::start(&lab.client().ns, Proto::Udp, to, tick, max)?;

    // Both flows are translated on r1 and known to r2's conntrackd (its external cache).
    wait_until(
        "r2's conntrackd to hold both flows",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let ext = routers[1].conntrackd.external()?;
            let flows = ext
                .lines()
                .filter(|l| l.contains("src=192.0.2.100") && l.contains("dport=7000"))
                .count();
            if flows >= 2 {
                Ok(true)
            } else {
                bail!("external cache:\n{ext}")
            }
        },
    )?;
    for (i, r) in routers.iter().enumerate() {
        let ct = r.conntrackd.config.to_string_lossy().into_owned();
        run_commands(&lab, lab.router(i + 1), "nat/check.sh", &[(CT_CONF, &ct)])?;
    }
    // On r1 the kernel translates both to the upstream VIP (the reply goes to it).
    let table = lab.exec(lab.router(1), &["conntrack", "-L", "-d", "198.51.100.100"])?;
    ensure!(
        table
            .lines()
            .filter(|l| l.contains("dport=7000") && l.contains("dst=198.51.100.1 "))
            .count()
            >= 2,
        "r1's table:\n{table}"
    );

    let mut figures: Vec<(String, Instant, Duration)> = Vec::new();
    let mut failed_at: Vec<(String, SystemTime)> = Vec::new();

    for &kind in kinds {
        let r1 = lab.router(1);
        let at = Instant::now();
        failed_at.push((format!("{kind} of r1"), SystemTime::now()));
        match kind {
            "link cut" => lab.set_port(r1, false)?,
            "kill -9" => g(&gw, 0).kill()?,
            _ => g(&gw, 0).stop()?,
        }
        let took = g(&gw, 1)
            .wait("MASTER", Duration::from_secs(5))
            .with_context(|| format!("r2 takes over after {kind} of r1"))?;
        figures.push((
            format!("{kind} of r1"),
            at,
            at.elapsed().min(took + Duration::from_millis(5)),
        ));
        std::thread::sleep(watch.saturating_sub(at.elapsed()));

        // r1 comes back (link up / restarted as its service manager would) and preempts.
        let back = Instant::now();
        match kind {
            "link cut" => lab.set_port(r1, true)?,
            _ => {
                gw[0] = None;
                gw[0] = Some(start_gw(&lab, vipd, daemon, 1, &routers[0])?);
            }
        }
        g(&gw, 0)
            .wait("MASTER", Duration::from_secs(10))
            .with_context(|| format!("r1 back after {kind}"))?;
        g(&gw, 1).wait("BACKUP", Duration::from_secs(5))?;
        figures.push((format!("r1 back after {kind}"), back, back.elapsed()));
        std::thread::sleep(watch.saturating_sub(back.elapsed()));
    }
    let tcp = tcp.stop()?;
    let udp = udp.stop()?;
    let adverts = adverts.stop()?;
    let r1_ip = std::net::IpAddr::V4(lab.router(1).ipv4);
    let phase_ms = |what: &str| -> f64 {
        let Some((_, wall)) = failed_at.iter().find(|(w, _)| w == what) else {
            return 0.0;
        };
        // r1's last advert on the wire: it may leave just after the event (a link takes a
        // few ms to go down), never 50 ms after it (r1 is back only seconds later).
        let last = adverts
            .iter()
            .filter(|f| matches!(f.kind(), Kind::Vrrp { src, .. } if src == r1_ip))
            .map(|f| f.at)
            .filter(|t| *t <= *wall + Duration::from_millis(50))
            .max();
        match last.map(|t| wall.duration_since(t)) {
            Some(Ok(before)) => before.as_secs_f64() * 1e3,
            Some(Err(after)) => -after.duration().as_secs_f64() * 1e3,
            None => 0.0,
        }
    };
    eprintln!("{daemon:?}: {}", tcp.summary());
    eprintln!("{daemon:?}: {}", udp.summary());
    let out: Vec<Figure> = figures
        .iter()
        .map(|(what, at, takeover)| Figure {
            what: what.clone(),
            tcp: tcp.stall(*at, *at + watch),
            udp: udp.stall(*at, *at + watch),
            takeover: *takeover,
            phase_ms: phase_ms(what),
        })
        .collect();
    let logs = || {
        format!(
            "r1:\n{}\nr2:\n{}\nconntrackd r2:\n{}",
            g(&gw, 0).log(),
            g(&gw, 1).log(),
            routers[1].conntrackd.log()
        )
    };
    ensure!(
        tcp.error.is_none(),
        "the TCP connection broke: {}\n{}",
        tcp.summary(),
        logs()
    );
    ensure!(tcp.in_order(), "TCP echoes out of order: {}", tcp.summary());
    ensure!(tcp.lost() == 0, "TCP lost data: {}", tcp.summary());
    check_recovery(&tcp, &figures)?;
    check_recovery(&udp, &figures)?;
    for f in &out {
        // Each stall ends within the watch window: the connection moved, it did not die.
        ensure!(
            f.tcp < watch && f.udp < watch,
            "{}: flows did not recover: tcp {:?} udp {:?}",
            f.what,
            f.tcp,
            f.udp
        );
    }
    Ok(out)
}

fn check_recovery(run: &FlowRun, figures: &[(String, Instant, Duration)]) -> Result<()> {
    for (what, at, _) in figures {
        ensure!(
            run.echoed_after(*at + Duration::from_millis(1)),
            "{:?} never echoed after {what}",
            run.proto
        );
    }
    Ok(())
}

// ---- a /32 that moves ----

/// How long each move of the /32 is watched (longer than the BGP hold time, 3 s).
pub const ROUTE_WATCH: Duration = Duration::from_secs(5);
const SERVICE: &str = "203.0.113.5";

fn route32_vipd(lab: &Lab, vipd: &Path, n: usize) -> Result<Vipd> {
    let mut text = recipe::block("route32/vipd.toml")?;
    if n == 2 {
        text = substitute(&text, &[("priority = 200", "priority = 100")])?;
    }
    lab.vipd(vipd, lab.router(n), &text)
}

/// The next hop r3 routes the service through, if any.
fn r3_next_hop(lab: &Lab) -> Result<Option<String>> {
    let out = lab.exec(lab.router(3), &["ip", "route", "show", SERVICE])?;
    Ok(out
        .split_whitespace()
        .skip_while(|w| *w != "via")
        .nth(1)
        .map(str::to_owned))
}

/// The peers r3's BGP table has a path to the service from.
fn r3_paths(bgp: &crate::lab::FrrDaemons) -> Result<Vec<String>> {
    let v = bgp.json(&format!("show bgp ipv4 unicast {SERVICE}/32 json"))?;
    Ok(v["paths"]
        .as_array()
        .map(|paths| {
            paths
                .iter()
                .filter_map(|p| p["peer"]["peerId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

fn wait_next_hop(lab: &Lab, via: &str, timeout: Duration) -> Result<Duration> {
    wait_until(
        &format!("r3 to route {SERVICE} via {via}"),
        timeout,
        Duration::from_millis(10),
        || {
            let now = r3_next_hop(lab)?;
            if now.as_deref() == Some(via) {
                Ok(true)
            } else {
                bail!("via {now:?}")
            }
        },
    )
}

fn host_route(lab: &Lab, n: usize) -> Result<String> {
    let mut out = String::new();
    for line in recipe::commands("route32/check.sh")? {
        out += &lab.exec(lab.router(n), &["sh", "-c", &line])?;
    }
    Ok(out)
}

/// One move of the /32 as the third router and the service's users saw it.
#[derive(Clone, Debug)]
pub struct RouteEvent {
    /// "SIGTERM of r1", "r1 back (preempts)", "link cut of r1".
    pub what: String,
    /// From the event to r3 routing the service via the new master.
    pub rerouted: Duration,
    /// The longest time a host behind r3 pinging the service went unanswered, within
    /// [`ROUTE_WATCH`] of the event.
    pub stall: Duration,
}

/// A /32 that moves: vipd announces its VIP as a host route while master, FRR's bgpd on
/// each router redistributes it, a third router follows the master. Fails unless the
/// route follows every move and the old master withdraws.
pub fn route32(vipd: &Path) -> Result<Vec<RouteEvent>> {
    let lab = Lab::builder().routers(3).behind(3).build()?;
    let r1_conf = recipe::block("route32/bgpd-r1.conf")?;
    let r2_conf = substitute(
        &r1_conf,
        &[("bgp router-id 192.0.2.11", "bgp router-id 192.0.2.12")],
    )?;
    let r3_conf = recipe::block("route32/bgpd-r3.conf")?;
    let f1 = lab.frr_daemons(lab.router(1), &[("zebra", ""), ("bgpd", &r1_conf)])?;
    let _f2 = lab.frr_daemons(lab.router(2), &[("zebra", ""), ("bgpd", &r2_conf)])?;
    let f3 = lab.frr_daemons(lab.router(3), &[("zebra", ""), ("bgpd", &r3_conf)])?;

    let mut v1 = route32_vipd(&lab, vipd, 1)?;
    let v2 = route32_vipd(&lab, vipd, 2)?;
    v1.wait_state("svc", "master", Duration::from_secs(5))?;
    v2.wait_state("svc", "backup", Duration::from_secs(5))?;
    let on_master = host_route(&lab, 1)?;
    ensure!(
        on_master.contains("203.0.113.5 dev eth0 scope link"),
        "r1's protocol-112 routes: {on_master:?}"
    );
    ensure!(
        host_route(&lab, 2)?.trim().is_empty(),
        "the backup installs nothing"
    );
    let learned =
        wait_next_hop(&lab, "192.0.2.11", Duration::from_secs(30)).with_context(|| {
            format!(
                "r1 zebra:\n{}\nr1 bgp:\n{}\n{}",
                f1.vtysh("show ip route").unwrap_or_default(),
                f1.vtysh("show bgp ipv4 unicast").unwrap_or_default(),
                f1.log("zebra")
            )
        })?;
    eprintln!("  r3 learned {SERVICE}/32 via r1 {learned:?} after vipd was master");
    for line in recipe::commands("route32/check-r3.sh")? {
        let cmd = line.replace(
            "vtysh ",
            &format!("vtysh --vty_socket {} ", f3.dir.display()),
        );
        let out = lab.exec(lab.router(3), &["sh", "-c", &cmd])?;
        eprintln!("  r3$ {line}\n{}", out.trim_end());
    }
    ensure!(
        r3_paths(&f3)? == ["192.0.2.11"],
        "one path, from the master"
    );

    // The service: the master's own stack answers pings to the VIP (from the VIP).
    let probe = lab.probe(
        lab.node("bh"),
        Method::Ping,
        SERVICE.parse()?,
        Duration::from_millis(10),
        Duration::from_secs(60),
        &[],
    )?;
    std::thread::sleep(Duration::from_millis(500));

    let mut events: Vec<(String, Instant, Duration)> = Vec::new();
    // SIGTERM of the master: it withdraws, r2 announces.
    let at = Instant::now();
    v1.stop()?;
    v2.wait_state("svc", "master", Duration::from_secs(3))?;
    let moved = wait_next_hop(&lab, "192.0.2.12", ROUTE_WATCH)?;
    events.push(("SIGTERM of r1".into(), at, moved));
    ensure!(
        host_route(&lab, 1)?.trim().is_empty(),
        "the old master removed its route"
    );
    wait_until(
        "r3 to hold r2's path only",
        Duration::from_secs(3),
        Duration::from_millis(20),
        || {
            let p = r3_paths(&f3)?;
            if p == ["192.0.2.12"] {
                Ok(true)
            } else {
                bail!("paths from {p:?}")
            }
        },
    )?;
    std::thread::sleep(ROUTE_WATCH.saturating_sub(at.elapsed()));

    // r1 comes back and preempts: r2 withdraws.
    let at = Instant::now();
    lab.start_vipd(&mut v1, &[])?;
    v1.wait_state("svc", "master", Duration::from_secs(5))?;
    let moved = wait_next_hop(&lab, "192.0.2.11", ROUTE_WATCH)?;
    events.push(("r1 back (preempts)".into(), at, moved));
    wait_until(
        "r3 to hold r1's path only",
        Duration::from_secs(3),
        Duration::from_millis(20),
        || {
            let p = r3_paths(&f3)?;
            if p == ["192.0.2.11"] {
                Ok(true)
            } else {
                bail!("paths from {p:?}")
            }
        },
    )?;
    ensure!(
        host_route(&lab, 2)?.trim().is_empty(),
        "r2 removed its route"
    );
    std::thread::sleep(ROUTE_WATCH.saturating_sub(at.elapsed()));

    // r1's link goes: vipd removes the route, but the withdrawal cannot leave r1; r3 keeps
    // r1's (older) path until the BGP hold time drops the session.
    let at = Instant::now();
    lab.set_port(lab.router(1), false)?;
    v2.wait_state("svc", "master", Duration::from_secs(3))?;
    let moved = wait_next_hop(&lab, "192.0.2.12", ROUTE_WATCH)?;
    events.push(("link cut of r1".into(), at, moved));
    std::thread::sleep(ROUTE_WATCH.saturating_sub(at.elapsed()));

    let run = probe.stop()?;
    eprintln!("  {}", run.summary());
    // The longest time without an answer from the last answer before `at`.
    let stall = |at: Instant, to: Instant| -> Duration {
        let mut last = run
            .probes
            .iter()
            .rev()
            .find(|p| p.sent < at && p.answered())
            .map_or(at, |p| p.sent);
        let mut worst = Duration::ZERO;
        for p in run
            .probes
            .iter()
            .filter(|p| p.sent >= at && p.sent <= to && p.answered())
        {
            worst = worst.max(p.sent - last);
            last = p.sent;
        }
        worst.max(to.saturating_duration_since(last))
    };
    let answered_after = |at: Instant| run.probes.iter().any(|p| p.sent > at && p.answered());
    for (what, at, _) in &events {
        ensure!(
            answered_after(*at),
            "the service never answered after {what}"
        );
    }
    let end = run.probes.last().map_or_else(Instant::now, |p| p.sent);
    Ok(events
        .iter()
        .map(|(what, at, moved)| RouteEvent {
            what: what.clone(),
            rerouted: *moved,
            stall: stall(*at, (*at + ROUTE_WATCH).min(end)),
        })
        .collect())
}
