//! Item 7: what users feel — real traffic through the VIP while the master fails.
//!
//! ```text
//!   cl ── br0 ──┬── r1:eth0   r1:svl ──── sv1 ┐
//!               └── r2:eth0   r2:svl ──── sv2 ┴ sv (198.51.100.1 on lo)
//! ```
//! The client routes to a server behind the routers (198.51.100.1, namespace `sv`) via the
//! VIP as its gateway, so its neighbour cache holds the VIP's MAC, learnt once, as a real
//! host's would. The server answers through r2 whatever happens (a fixed return route), so
//! what is measured is the forward path: the client's cached entry pointing at a router
//! that may be dead until a gratuitous ARP moves it. Two streams run at once from before
//! the failure until well after it:
//! - **TCP**: 1 KiB written every millisecond on one connection (TCP_NODELAY); the stall
//!   is the longest gap between arrivals at the server after the failure (retransmission
//!   back-off included: that is what an application sees);
//! - **ICMP**: an echo request every millisecond through the client's own stack; the
//!   outage is the longest run of unanswered requests after the failure.
//!
//! Without the VMAC (vipd, keepalived) the client must be moved by a gratuitous ARP; with
//! it (vipd `vmac`, keepalived `use_vmac`, FRR's vrrpd always) the cached MAC stays right
//! and only the switch must learn where it went. Every failure kind of item 3 except the
//! keepalived-only child kill, 100 ms adverts, implementations alternating.

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, Result, bail};
use serde_json::json;
use vip_tests::lab::{Kind, Lab, Method, netns};

use super::{
    Goal, Options, Section,
    failover::{Failure, Tally, gap_after},
    master_down, ms,
    routers::{Impl, RouterSpec, State, VipdBinary, start, wait_state},
    stats::{Summary, cell_opt, json_opt},
    verdict::{self, MIN_DECISION_REPEATS, Side, Tolerance, harness, is_harness},
};

const INTERVAL: Duration = Duration::from_millis(100);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const PORT: u16 = 5001;
/// Each router's end of its link to the server.
const ROUTER_LINK: &str = "svl";
const EVERY: Duration = Duration::from_millis(1);
const CHUNK: usize = 1024;
/// Traffic before the failure: longer than the neighbour entry's locktime (1 s), which
/// would make the kernel ignore an ARP update that soon after the entry was made.
const PRE: Duration = Duration::from_millis(1500);
/// Observation after the backup took over: several TCP retransmission timeouts.
const POST: Duration = Duration::from_millis(2500);

#[derive(Clone, Debug)]
struct Outcome {
    imp: Impl,
    failure: Failure,
    vmac: bool,
    repeat: usize,
    tcp_stall_ms: f64,
    /// The stream had not resumed by the end of the observation.
    tcp_open: bool,
    /// From r1's last advert on the wire to the failure (item 3's phase).
    phase_ms: f64,
    icmp_outage_ms: f64,
    icmp_lost: usize,
}

type Key = (Failure, bool, Impl);

pub fn run(opts: &Options, vipd: &VipdBinary) -> Result<Section> {
    let (failures, vmacs): (Vec<Failure>, Vec<bool>) = if opts.quick {
        (vec![Failure::LinkDown], vec![true])
    } else {
        (
            vec![Failure::LinkDown, Failure::Kill9, Failure::Sigterm],
            vec![false, true],
        )
    };
    // The decision rows need MIN_DECISION_REPEATS runs a side, in every cell: the VMAC
    // cells too, now that vipd's VMAC traffic reaches the host on a veth (they used to
    // run once, as context, and would be "n/a" for ever).
    let repeats = opts.repeats(MIN_DECISION_REPEATS, 1);
    let impls = vipd.with(&[Impl::Keepalived, Impl::Frr]);
    let mut outcomes = Vec::new();
    let mut errors = Vec::new();
    let mut tally: BTreeMap<Key, Tally> = BTreeMap::new();
    for &vmac in &vmacs {
        for &failure in &failures {
            for repeat in 0..repeats {
                for k in 0..impls.len() {
                    let imp = impls[(k + repeat) % impls.len()];
                    // FRR's vrrpd answers from its macvlan's VMAC only.
                    if imp == Impl::Frr && !vmac {
                        continue;
                    }
                    let what = format!(
                        "{} {}{} repeat {repeat}",
                        imp.name(),
                        failure.name(),
                        if vmac { " (VMAC)" } else { "" }
                    );
                    let t = tally.entry((failure, vmac, imp)).or_default();
                    let o = scenario(imp, failure, vmac, repeat, vipd).or_else(|e| {
                        if !is_harness(&e) {
                            return Err(e);
                        }
                        eprintln!("bench traffic: {what}: {e:#}; retrying");
                        errors.push(format!("{what} (retried): {e:#}"));
                        t.retried += 1;
                        scenario(imp, failure, vmac, repeat, vipd)
                    });
                    match o {
                        Ok(o) => {
                            eprintln!(
                                "bench traffic: {what}: TCP stall {:.1} ms{}, ICMP outage {:.1} ms",
                                o.tcp_stall_ms,
                                if o.tcp_open { " (not resumed)" } else { "" },
                                o.icmp_outage_ms
                            );
                            outcomes.push(o);
                        }
                        Err(e) => {
                            eprintln!("bench traffic: {what}: {e:#}");
                            errors.push(format!("{what}: {e:#}"));
                            t.failed += 1;
                            t.errors.push(e);
                        }
                    }
                }
            }
        }
    }
    Ok(section(
        &outcomes, &failures, &vmacs, &impls, repeats, errors, &tally,
    ))
}

/// The server namespace and its links to both routers; removed on drop.
struct ServerNs {
    ns: String,
}

impl Drop for ServerNs {
    fn drop(&mut self) {
        if let Err(e) = netns::delete(&self.ns) {
            eprintln!("bench traffic: {e:#}");
        }
    }
}

fn server_ns(lab: &Lab) -> Result<ServerNs> {
    let sv = ServerNs {
        ns: format!("{}-sv", lab.prefix),
    };
    netns::add(&sv.ns)?;
    let ns = sv.ns.as_str();
    netns::sysctl(
        ns,
        &[
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
            ("net.ipv6.conf.all.disable_ipv6", "1"),
            ("net.ipv6.conf.default.disable_ipv6", "1"),
        ],
    )?;
    netns::ip(ns, &["link", "set", "lo", "up"])?;
    netns::ip(ns, &["addr", "add", &format!("{SERVER}/32"), "dev", "lo"])?;
    for (i, r) in [lab.router(1), lab.router(2)].into_iter().enumerate() {
        let here = format!("sv{}", i + 1);
        netns::ip(
            ns,
            &[
                "link",
                "add",
                &here,
                "type",
                "veth",
                "peer",
                "name",
                ROUTER_LINK,
                "netns",
                &r.ns,
            ],
        )?;
        netns::ip(ns, &["link", "set", &here, "up"])?;
        netns::ip(&r.ns, &["link", "set", "dev", ROUTER_LINK, "up"])?;
        netns::ip(
            &r.ns,
            &["route", "add", &format!("{SERVER}/32"), "dev", ROUTER_LINK],
        )?;
    }
    // Replies always go back through r2: the return path is not what is measured.
    let r2 = lab.router(2).ipv4.to_string();
    netns::ip(
        ns,
        &[
            "route",
            "add",
            "192.0.2.0/24",
            "via",
            &r2,
            "dev",
            "sv2",
            "onlink",
        ],
    )?;
    Ok(sv)
}

/// Arrival times of the stream at the server.
struct Stream {
    stop: Arc<AtomicBool>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    threads: Vec<std::thread::JoinHandle<Result<()>>>,
}

impl Stream {
    fn start(server_ns: &str, client_ns: &str) -> Result<Stream> {
        let stop = Arc::new(AtomicBool::new(false));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let server = {
            let (stop, arrivals, ns) = (stop.clone(), arrivals.clone(), server_ns.to_string());
            std::thread::spawn(move || -> Result<()> {
                netns::enter_netns(&ns)?;
                let l = TcpListener::bind(SocketAddr::new(IpAddr::V4(SERVER), PORT))?;
                l.set_nonblocking(true)?;
                let _ = ready_tx.send(());
                // Non-blocking, so a client that never connects cannot hang the stop.
                let mut c = loop {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    match l.accept() {
                        Ok((c, _)) => break c,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        Err(e) => return Err(e.into()),
                    }
                };
                c.set_nonblocking(false)?;
                c.set_read_timeout(Some(Duration::from_millis(50)))?;
                let mut buf = vec![0u8; 64 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    match c.read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => arrivals.lock().unwrap().push(Instant::now()),
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(())
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .context("the stream's server never listened")?;
        let client = {
            let (stop, ns) = (stop.clone(), client_ns.to_string());
            std::thread::spawn(move || -> Result<()> {
                netns::enter_netns(&ns)?;
                let mut c = TcpStream::connect_timeout(
                    &SocketAddr::new(IpAddr::V4(SERVER), PORT),
                    Duration::from_secs(3),
                )?;
                c.set_nodelay(true)?;
                c.set_write_timeout(Some(Duration::from_millis(50)))?;
                let chunk = [0x5au8; CHUNK];
                let t0 = Instant::now();
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    match c.write(&chunk) {
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => return Err(e.into()),
                    }
                    n += 1;
                    let next = t0 + EVERY * n;
                    if let Some(d) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    }
                }
                Ok(())
            })
        };
        Ok(Stream {
            stop,
            arrivals,
            threads: vec![server, client],
        })
    }

    fn stop(self) -> Result<Vec<Instant>> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join()
                .map_err(|_| anyhow::anyhow!("a stream thread panicked"))??;
        }
        Ok(std::mem::take(&mut *self.arrivals.lock().unwrap()))
    }
}

/// The longest time without an arrival from `from` to `end`; whether the stream was still
/// stalled at `end`.
fn stall(arrivals: &[Instant], from: Instant, end: Instant) -> (Duration, bool) {
    let mut last = arrivals
        .iter()
        .rev()
        .find(|t| **t <= from)
        .copied()
        .unwrap_or(from);
    let mut worst = Duration::ZERO;
    for &t in arrivals.iter().filter(|t| **t > from) {
        worst = worst.max(t - last);
        last = t;
    }
    let tail = end.saturating_duration_since(last);
    // Quiet at the end for longer than the worst gap: not resumed (or resumed and
    // stalled again, which counts the same).
    let open = tail > Duration::from_millis(100);
    (worst.max(if open { tail } else { Duration::ZERO }), open)
}

fn scenario(
    imp: Impl,
    failure: Failure,
    vmac: bool,
    repeat: usize,
    vipd: &VipdBinary,
) -> Result<Outcome> {
    let lab = Lab::builder()
        .routers(2)
        .client()
        .build()
        .map_err(harness)?;
    let (r1n, r2n, cl) = (lab.router(1), lab.router(2), lab.client());
    for r in [r1n, r2n] {
        netns::sysctl(
            &r.ns,
            &[
                ("net.ipv4.ip_forward", "1"),
                ("net.ipv4.conf.all.rp_filter", "0"),
                ("net.ipv4.conf.default.rp_filter", "0"),
            ],
        )
        .map_err(harness)?;
    }
    let sv = server_ns(&lab).map_err(harness)?;
    let vip: IpAddr = "192.0.2.1".parse()?;
    let spec = |priority| {
        let mut s = RouterSpec::new(priority, INTERVAL, vec![vip]);
        s.vmac = vmac;
        s
    };
    let mdi = master_down(INTERVAL, 100);
    let settle = mdi * 2 + Duration::from_secs(5);
    let r1 = start(imp, &lab, r1n, &spec(200), vipd)?;
    let r2 = start(imp, &lab, r2n, &spec(100), vipd)?;
    wait_state(r1.as_ref(), State::Master, settle)?;
    wait_state(r2.as_ref(), State::Backup, settle)?;
    netns::ip(
        &cl.ns,
        &[
            "route",
            "add",
            &format!("{SERVER}/32"),
            "via",
            &vip.to_string(),
        ],
    )
    .map_err(harness)?;
    // r1's adverts on its port: the phase of the failure in the advert cycle.
    let cap1 = lab.capture_port(r1n, "ip proto 112").map_err(harness)?;
    let stream = Stream::start(&sv.ns, &cl.ns)?;
    let flowing = vip_tests::lab::wait_until(
        "the TCP stream to flow",
        Duration::from_millis(3500),
        Duration::from_millis(10),
        || Ok(!stream.arrivals.lock().unwrap().is_empty()),
    );
    if let Err(e) = flowing {
        let show = |ns: &str, argv: &[&str]| {
            netns::run(netns::nsenter(ns, argv)).unwrap_or_else(|e| format!("{e:#}"))
        };
        let why = format!(
            "{e:#}; {:?}\nclient neighbours:\n{}bridge fdb:\n{}r1 links:\n{}r1 XDP:\n{}",
            stream.stop().err(),
            show(&cl.ns, &["ip", "neigh"]),
            show(&lab.bridge_ns, &["bridge", "fdb", "show", "br", "br0"]),
            show(&r1n.ns, &["ip", "-s", "link"])
                + &show(
                    &r1n.ns,
                    &[
                        "nstat",
                        "-az",
                        "IpInReceives",
                        "IpForwDatagrams",
                        "IpInAddrErrors",
                        "IpExtInNoRoutes",
                        "IpInHdrErrors",
                        "IpInDiscards",
                        "IpExtInCsumErrors",
                        "TcpExtIPReversePathFilter"
                    ]
                )
                + &show(
                    &r1n.ns,
                    &[
                        "sysctl",
                        "net.ipv4.ip_forward",
                        "net.ipv4.conf.eth0.forwarding",
                        "net.ipv4.conf.eth0.rp_filter",
                        "net.ipv4.conf.all.rp_filter",
                        "net.ipv4.conf.eth0.accept_local"
                    ]
                )
                + &show(&sv.ns, &["ip", "-s", "link"]),
            {
                let pin = lab
                    .pin_dir()
                    .map(|d| d.join(&r1n.label))
                    .unwrap_or_default();
                let dump = |m: &str| {
                    std::process::Command::new("bpftool")
                        .args(["map", "dump", "pinned"])
                        .arg(pin.join(m))
                        .output()
                        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                        .unwrap_or_default()
                };
                format!("{}\n{}", dump("VMACS"), dump("STATS"))
            },
        );
        bail!("{why}");
    }
    let max = PRE + settle + POST + Duration::from_secs(1);
    let ping = lab
        .probe(cl, Method::Ping, IpAddr::V4(SERVER), EVERY, max, &[])
        .map_err(harness)?;
    std::thread::sleep(PRE);
    let t_fail = Instant::now();
    let wall_fail = SystemTime::now();
    match failure {
        Failure::LinkDown => lab.set_port(r1n, false),
        Failure::Kill9 => r1.kill9(),
        Failure::Sigterm => r1.sigterm(),
        Failure::Kill9Child => Err(anyhow::anyhow!("not a failure this item runs")),
    }
    .map_err(harness)?;
    let waited = wait_state(r2.as_ref(), State::Master, settle);
    std::thread::sleep(POST);
    let t_end = Instant::now();
    let ping = ping.stop().map_err(harness)?;
    let adverts = cap1.stop().map_err(harness)?;
    let arrivals = stream.stop()?;
    waited.context("the backup never became master")?;
    let before = arrivals.iter().filter(|t| **t < t_fail).count();
    if before < PRE.as_millis() as usize / 4 {
        bail!("the TCP stream barely ran before the failure ({before} arrivals)");
    }
    let pinged: Vec<_> = ping.between(ping.started, t_fail).collect();
    if pinged.is_empty() || pinged.iter().filter(|p| p.answered()).count() * 10 < pinged.len() * 9 {
        bail!(
            "the ping was not answered before the failure: {}",
            ping.summary()
        );
    }
    let (tcp, tcp_open) = stall(&arrivals, t_fail, t_end);
    // As in item 3: a backup counts its Master_Down_Interval from r1's last advert, so
    // a link cut just after one is luckier than one just before the next.
    let last_advert = adverts
        .iter()
        .filter(|f| matches!(f.kind(), Kind::Vrrp { src, .. } if src == IpAddr::V4(r1n.ipv4)))
        .map(|f| f.at)
        .max()
        .ok_or_else(|| harness("no advert from r1 seen in the capture"))?;
    let phase_ms = match wall_fail.duration_since(last_advert) {
        Ok(before) => ms(before),
        Err(after) => -ms(after.duration()),
    };
    drop(lab);
    drop(sv);
    Ok(Outcome {
        imp,
        failure,
        vmac,
        repeat,
        tcp_stall_ms: ms(tcp),
        tcp_open,
        phase_ms,
        icmp_outage_ms: ms(gap_after(&ping, t_fail - EVERY)),
        icmp_lost: ping
            .between(t_fail, t_end)
            .filter(|p| !p.answered())
            .count(),
    })
}

fn section(
    outcomes: &[Outcome],
    failures: &[Failure],
    vmacs: &[bool],
    impls: &[Impl],
    repeats: usize,
    errors: Vec<String>,
    tally: &BTreeMap<Key, Tally>,
) -> Section {
    let mut md = format!(
        "A client streams to a server behind the VIP (its gateway, MAC cached) while r1 \
         fails; r2 takes over. 100 ms adverts, {repeats} repeat(s) per cell, \
         implementations alternating; ms, median (min–max); the \
         goals add to a link cut's figures the time from r1's last advert to the cut, as \
         item 3 does. TCP stall: longest time without data arriving \
         at the server after the failure (1 KiB every ms; retransmission back-off \
         included), \"≥\" when the stream had not resumed {} ms after the takeover. ICMP: \
         longest run of unanswered pings (every ms). Without the VMAC the client moves only \
         on a gratuitous ARP; FRR's vrrpd runs with the VMAC only. Retried / failed as in \
         item 3.\n\n\
         | VMAC | failure | implementation | TCP stall | ICMP outage | lost pings | retried / failed |\n\
         |---|---|---|---|---|---|---|\n",
        POST.as_millis()
    );
    let mut rows = Vec::new();
    let mut goals = Vec::new();
    for &vmac in vmacs {
        for &failure in failures {
            let cell = |imp: Impl| -> Vec<&Outcome> {
                outcomes
                    .iter()
                    .filter(|o| o.imp == imp && o.failure == failure && o.vmac == vmac)
                    .collect()
            };
            for &imp in impls {
                if imp == Impl::Frr && !vmac {
                    continue;
                }
                let v = cell(imp);
                let s = |f: fn(&Outcome) -> f64| {
                    Summary::of(&v.iter().map(|o| f(o)).collect::<Vec<_>>())
                };
                let (tcp, icmp, lost) = (
                    s(|o| o.tcp_stall_ms),
                    s(|o| o.icmp_outage_ms),
                    s(|o| o.icmp_lost as f64),
                );
                let open = v.iter().filter(|o| o.tcp_open).count();
                let tcp_cell = if open > 0 {
                    format!("≥ {} ({open} of {} not resumed)", cell_opt(tcp, 0), v.len())
                } else {
                    cell_opt(tcp, 1)
                };
                let (retried, failed) = tally
                    .get(&(failure, vmac, imp))
                    .map_or((0, 0), |t| (t.retried, t.failed));
                md.push_str(&format!(
                    "| {} | {} | {} | {tcp_cell} | {} | {} | {retried} / {failed} |\n",
                    if vmac { "on" } else { "off" },
                    failure.name(),
                    imp.name(),
                    cell_opt(icmp, 1),
                    cell_opt(lost, 0),
                ));
                rows.push(json!({
                    "vmac": vmac, "failure": failure.name(), "implementation": imp.name(),
                    "tcp_stall_ms": json_opt(tcp), "tcp_not_resumed_runs": open,
                    "icmp_outage_ms": json_opt(icmp), "lost_pings": json_opt(lost),
                    "retried": retried, "failed": failed,
                    "runs": v.iter().map(|o| json!({
                        "repeat": o.repeat, "tcp_stall_ms": o.tcp_stall_ms,
                        "tcp_open": o.tcp_open, "icmp_outage_ms": o.icmp_outage_ms,
                        "lost_pings": o.icmp_lost,
                    })).collect::<Vec<_>>(),
                }));
            }
            goals.extend(cell_goals(outcomes, tally, failure, vmac, impls));
        }
    }
    if !errors.is_empty() {
        md.push_str("\nRuns that failed:\n\n");
        for e in &errors {
            md.push_str(&format!("- {}\n", e.lines().next().unwrap_or("")));
        }
    }
    Section {
        id: "traffic".into(),
        title: "7. What users feel: streams through the VIP".into(),
        markdown: md,
        json: json!({
            "advert_interval_ms": ms(INTERVAL), "repeats": repeats,
            "chunk_bytes": CHUNK, "every_ms": ms(EVERY), "post_ms": ms(POST),
            "rows": rows, "failed_runs": errors,
        }),
        goals,
        ..Default::default()
    }
}

/// A cell's goals: vipd's TCP stall and ICMP outage against each baseline's, two
/// decision rows per baseline, link cuts corrected for their phase as in item 3.
fn cell_goals(
    outcomes: &[Outcome],
    tally: &BTreeMap<Key, Tally>,
    failure: Failure,
    vmac: bool,
    impls: &[Impl],
) -> Vec<Goal> {
    let phase = |o: &Outcome| {
        if failure == Failure::LinkDown {
            o.phase_ms
        } else {
            0.0
        }
    };
    let side = |imp: Impl, f: &dyn Fn(&Outcome) -> f64| {
        let mut s = Side::default();
        for o in outcomes
            .iter()
            .filter(|o| o.imp == imp && o.failure == failure && o.vmac == vmac)
        {
            if o.tcp_open {
                // The stream never resumed: the failover did not happen for it.
                s.failed.push(format!(
                    "repeat {}: the TCP stream had not resumed {} ms after the takeover",
                    o.repeat,
                    POST.as_millis()
                ));
            } else {
                s.samples.push(f(o) + phase(o));
            }
        }
        for e in tally
            .get(&(failure, vmac, imp))
            .map_or(&[][..], |t| &t.errors[..])
        {
            s.record_error(e);
        }
        s
    };
    let label = format!(
        "traffic {}{}",
        failure.name(),
        if vmac { " (VMAC)" } else { "" }
    );
    let what = if failure == Failure::LinkDown {
        " + phase"
    } else {
        ""
    };
    let tcp = |o: &Outcome| o.tcp_stall_ms;
    let icmp = |o: &Outcome| o.icmp_outage_ms;
    let mut goals = Vec::new();
    for b in impls
        .iter()
        .copied()
        .filter(|i| *i != Impl::Vipd && (vmac || *i != Impl::Frr))
    {
        goals.push(verdict::never_worse(
            &format!("{label}: vipd's TCP stall{what}"),
            b.name(),
            &side(Impl::Vipd, &tcp),
            &side(b, &tcp),
            // TCP's back-off steps make equal failovers differ by a few percent.
            Tolerance {
                abs: 2.0,
                rel: 0.05,
                unit: "ms",
            },
            MIN_DECISION_REPEATS,
        ));
        goals.push(verdict::never_worse(
            &format!("{label}: vipd's ping outage{what}"),
            b.name(),
            &side(Impl::Vipd, &icmp),
            &side(b, &icmp),
            // Two ping intervals: the probe grid quantises both sides.
            Tolerance::abs(ms(EVERY) * 2.0, "ms"),
            MIN_DECISION_REPEATS,
        ));
    }
    goals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_is_the_longest_gap_after_the_failure_and_open_if_it_never_ends() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let a = [at(0), at(1), at(2), at(300), at(301), at(302)];
        let (d, open) = stall(&a, at(2), at(303));
        assert_eq!((d, open), (Duration::from_millis(298), false));
        let (d, open) = stall(&a[..3], at(2), at(1000));
        assert!(open && d == Duration::from_millis(998));
    }
}
