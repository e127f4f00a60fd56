//! Item 8: failover faster than VRRP timers allow — "vipd + BFD" next to vipd without it
//! and keepalived (docs/architecture.md, "BFD").
//!
//! Two routers at 10 ms adverts, one IPv4 VIP, r1 (priority 200) master. A client pings
//! the VIP every millisecond through its cached neighbour entry, so what is measured is
//! what a host on the LAN feels: the gap from the old master's last reply to the new
//! master's first (after a gratuitous ARP moved the client's entry). Three runs:
//! - **link down**: r1's bridge port goes down. VRRP alone cannot see that before
//!   Master_Down_Interval (36.1 ms at priority 100); with BFD at 1 ms × 3 the backup's
//!   echoes stop coming back after 3 ms. vipd + BFD, vipd and keepalived alternate.
//! - **frozen master**: r1's daemon is stopped (SIGSTOP) for 2 s while its host still
//!   forwards and its XDP program still loops the echoes back: with BFD nothing moves;
//!   without it the backup takes over once the lease and Master_Down_Interval run out.
//! - **load and garbage**: both routers' CPUs busy and the link flooded with random BFD
//!   Control, Echo and raw frames for a minute: no takeover may happen, and every probe
//!   must be answered (by the master's advertisement or the held echoes). Both daemons'
//!   logs are kept next to the results (`bfd-load-r1.log`, `bfd-load-r2.log`).
//!
//! The vipd + BFD routers name each other in `allowed_peers`: a master answers BFD only
//! from routers it knows (docs/architecture.md, "Who may open a session").
//!
//! The steady state of the link-down runs also gives BFD's price: the daemons' CPU with
//! and without it over the same window.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use vip_tests::lab::{Lab, Method, Prober, wait_until};

use super::{
    Goal, Options, Section, master_down, ms,
    procstat::CpuWindow,
    retry_once,
    routers::{
        Impl, Instance, Router, RouterSpec, State, VipdBinary, VipdRouter, start, wait_state,
    },
    stats::{Summary, cell_opt, json_opt},
    verdict::{self, Side, harness},
};

const INTERVAL: Duration = Duration::from_millis(10);
const VIP: &str = "192.0.2.1";
const BFD: &str = "interval = \"1ms\", multiplier = 3";
const MASTER_PRIORITY: u8 = 200;
const BACKUP_PRIORITY: u8 = 100;
const PING_EVERY: Duration = Duration::from_millis(1);
/// Sessions start at one Control packet a second (RFC 5880 §6.8.3).
const SESSION_UP: Duration = Duration::from_secs(10);
/// The goal for the link-down gap with BFD (issue: ≤ 10 ms at 10 ms adverts, 1 ms × 3).
const GOAL_MS: f64 = 10.0;
const FREEZE: Duration = Duration::from_secs(2);
/// How long the CPU load and the garbage flood last in a full run.
const LOAD_FOR: Duration = Duration::from_secs(60);
const GARBAGE_PPS: u32 = 20_000;
/// The steady window over which the daemons' CPU is read before the link goes down.
const STEADY: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    VipdBfd,
    Vipd,
    Keepalived,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::VipdBfd => "vipd + BFD",
            Variant::Vipd => "vipd",
            Variant::Keepalived => "keepalived",
        }
    }
}

const VARIANTS: [Variant; 3] = [Variant::VipdBfd, Variant::Vipd, Variant::Keepalived];

/// A started router: vipd ones keep their handle for status and signals.
enum Started {
    Vipd(Box<VipdRouter>),
    Base(Box<dyn Router>),
}

impl Started {
    fn router(&self) -> &dyn Router {
        match self {
            Started::Vipd(v) => v.as_ref(),
            Started::Base(b) => b.as_ref(),
        }
    }

    fn vipd(&self) -> Result<&VipdRouter> {
        match self {
            Started::Vipd(v) => Ok(v),
            Started::Base(_) => bail!("not vipd"),
        }
    }
}

/// The router at `priority`; with BFD, `other` (the other router) named in
/// `allowed_peers`, so its sessions are answered as master (docs/architecture.md, "Who
/// may open a session").
fn spec(priority: u8, variant: Variant, other: IpAddr) -> Result<RouterSpec> {
    let mut s = RouterSpec::new(priority, INTERVAL, vec![VIP.parse()?]);
    if variant == Variant::VipdBfd {
        s.bfd = Some(BFD.into());
        s.allowed_peers = vec![other];
    }
    Ok(s)
}

/// r1 master and r2 backup of `variant`; with BFD, both sessions Up and r2 echoing.
fn pair(lab: &Lab, variant: Variant, vipd: &VipdBinary) -> Result<(Started, Started)> {
    let settle = master_down(INTERVAL, BACKUP_PRIORITY) * 2 + Duration::from_secs(5);
    let one = |n: usize, priority: u8| -> Result<Started> {
        let node = lab.router(n);
        let spec = spec(priority, variant, IpAddr::V4(lab.router(3 - n).ipv4))?;
        Ok(match variant {
            Variant::Keepalived => Started::Base(start(Impl::Keepalived, lab, node, &spec, vipd)?),
            Variant::Vipd | Variant::VipdBfd => Started::Vipd(Box::new(VipdRouter::start(
                lab,
                node,
                &[Instance::from_spec("g", &spec)],
                vipd,
            )?)),
        })
    };
    let r1 = one(1, MASTER_PRIORITY)?;
    wait_state(r1.router(), State::Master, settle)?;
    let r2 = one(2, BACKUP_PRIORITY)?;
    wait_state(r2.router(), State::Backup, settle)?;
    if variant == Variant::VipdBfd {
        wait_session(r2.vipd()?, &lab.router(1).ipv4.to_string(), "up")?;
        // r1's session to r2 is kept for r2's sake: status counts it, without a line.
        wait_until(
            "r1's session for r2 to be up",
            SESSION_UP,
            Duration::from_millis(20),
            || Ok(r1.vipd()?.status()?["bfd_summary"]["passive_up"].as_u64() >= Some(1)),
        )?;
        let s = session(r2.vipd()?, &lab.router(1).ipv4.to_string())?;
        ensure!(s["echo"] == true, "r2 does not echo: {s}");
    }
    Ok((r1, r2))
}

fn session(v: &VipdRouter, peer: &str) -> Result<Value> {
    let s = v.status()?;
    s["bfd"]
        .as_array()
        .and_then(|a| a.iter().find(|b| b["peer"] == peer))
        .cloned()
        .with_context(|| format!("no BFD session to {peer}: {}", s["bfd"]))
}

fn wait_session(v: &VipdRouter, peer: &str, state: &str) -> Result<Duration> {
    wait_until(
        &format!("the BFD session to {peer} to be {state}"),
        SESSION_UP,
        Duration::from_millis(20),
        || {
            Ok(session(v, peer)
                .map(|s| s["state"] == state)
                .unwrap_or(false))
        },
    )
}

fn instance(v: &VipdRouter) -> Result<Value> {
    v.status()?["instances"]
        .get(0)
        .cloned()
        .context("vipd reports no instance")
}

fn xdp(v: &VipdRouter, counter: &str) -> Result<u64> {
    Ok(v.status()?["xdp"][counter].as_u64().unwrap_or(0))
}

#[derive(Clone, Debug)]
struct LinkDown {
    variant: Variant,
    repeat: usize,
    gap_ms: f64,
    /// Probes the old master answered after the new one started (two routers answering).
    overlap: usize,
    lost: usize,
    /// Why r2 took over, as vipd reports it.
    reason: Option<String>,
    /// Both daemons' CPU over the steady window before the failure, % of one core.
    cpu_percent: f64,
}

/// The client pinging the VIP every [`PING_EVERY`] through its neighbour cache.
fn ping_vip(lab: &Lab) -> Result<Prober> {
    lab.probe(
        lab.client(),
        Method::Ping,
        VIP.parse()?,
        PING_EVERY,
        Duration::from_secs(10),
        &[],
    )
}

fn link_down(lab: &Lab, variant: Variant, repeat: usize, vipd: &VipdBinary) -> Result<LinkDown> {
    let (r1, r2) = pair(lab, variant, vipd)?;
    let mut pids = r1.router().pids();
    pids.extend(r2.router().pids());
    let probe = ping_vip(lab)?;
    // The first pings resolve the VIP; the window after that is the steady state.
    std::thread::sleep(Duration::from_millis(200));
    let cpu = CpuWindow::start(pids);
    std::thread::sleep(STEADY);
    let cpu_percent = cpu.percent();
    let failed_at = Instant::now();
    lab.set_port(lab.router(1), false)?;
    let waited = wait_state(r2.router(), State::Master, Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(300));
    let run = probe.stop()?;
    waited.context("the backup never became master")?;
    let t = run
        .takeover("r1", "r2", failed_at)
        .with_context(|| format!("no takeover seen by the client: {}", run.summary()))?;
    let reason = match &r2 {
        Started::Vipd(v) => instance(v)?["last_transition"]["reason"]
            .as_str()
            .map(str::to_owned),
        Started::Base(_) => None,
    };
    Ok(LinkDown {
        variant,
        repeat,
        gap_ms: ms(t.gap),
        overlap: t.old_answers_after_new,
        lost: run.lost(),
        reason,
        cpu_percent,
    })
}

#[derive(Clone, Debug)]
struct Frozen {
    variant: Variant,
    took_over: bool,
    lost: usize,
    longest_gap_ms: f64,
    /// r1's XDP program looped this many echoes back while its daemon was stopped.
    looped: Option<u64>,
}

fn frozen(lab: &Lab, variant: Variant, vipd: &VipdBinary) -> Result<Frozen> {
    let (r1, r2) = pair(lab, variant, vipd)?;
    let (v1, v2) = (r1.vipd()?, r2.vipd()?);
    let before = v2.transitions()?;
    let probe = ping_vip(lab)?;
    std::thread::sleep(Duration::from_millis(200));
    let reflected = xdp(v1, "bfd_echo_reflected")?;
    v1.signal(Signal::SIGSTOP)?;
    std::thread::sleep(FREEZE);
    v1.signal(Signal::SIGCONT)?;
    // Read once it answers again: the count covers the freeze.
    let looped = xdp(v1, "bfd_echo_reflected")? - reflected;
    std::thread::sleep(Duration::from_millis(300));
    let run = probe.stop()?;
    let took_over = v2.transitions()? != before;
    Ok(Frozen {
        variant,
        took_over,
        lost: run.lost(),
        longest_gap_ms: ms(run.longest_gap().span),
        looped: (variant == Variant::VipdBfd).then_some(looped),
    })
}

#[derive(Clone, Debug)]
struct Load {
    seconds: f64,
    garbage: usize,
    transitions: (u64, u64),
    probes: u64,
    answered: u64,
    session_downs: Value,
}

fn load(lab: &Lab, run_for: Duration, vipd: &VipdBinary, out: &Path) -> Result<Load> {
    let (r1, r2) = pair(lab, Variant::VipdBfd, vipd)?;
    let (v1, v2) = (r1.vipd()?, r2.vipd()?);
    let (t1, t2) = (v1.transitions()?, v2.transitions()?);
    let spinners = lab.spin_cpus(&[lab.router(1), lab.router(2)], 2, run_for)?;
    let inj = lab.injector(lab.attacker())?;
    let start = Instant::now();
    let garbage = inj.bfd_garbage(
        lab.router(2).mac,
        IpAddr::V4(lab.router(1).ipv4),
        IpAddr::V4(lab.router(2).ipv4),
        GARBAGE_PPS,
        run_for,
    );
    let seconds = start.elapsed().as_secs_f64();
    for s in spinners {
        let _ = s.wait(Duration::from_secs(5));
    }
    let i2 = instance(v2)?;
    // Both daemons' logs stay next to the results: every suspect path, probe and
    // transition of the minute, with times, for whoever reads a miss.
    for (name, v) in [("r1", v1), ("r2", v2)] {
        let path = out.join(format!("bfd-load-{name}.log"));
        if let Err(e) = std::fs::write(&path, v.log()) {
            eprintln!("bench bfd: could not keep {}: {e}", path.display());
        }
    }
    Ok(Load {
        seconds,
        garbage,
        transitions: (v1.transitions()? - t1, v2.transitions()? - t2),
        probes: i2["bfd_probes"].as_u64().unwrap_or(0),
        answered: i2["bfd_probes_answered"].as_u64().unwrap_or(0),
        session_downs: session(v2, &lab.router(1).ipv4.to_string())?["downs"].clone(),
    })
}

pub fn run(opts: &Options, vipd: &VipdBinary) -> Result<Section> {
    if !vipd.ready {
        return Ok(Section {
            id: "bfd".into(),
            title: "8. Failover with BFD".into(),
            markdown: format!("Not run: {}\n", vipd.why),
            goals: vec![verdict::at_most(
                "BFD: link-down failover as a client sees it ≤ 10 ms",
                &Side::not_run(vipd.why.clone()),
                GOAL_MS,
                "ms",
            )],
            ..Default::default()
        });
    }
    let repeats = opts.repeats(3, 1);
    let load_for = if opts.quick {
        Duration::from_secs(2)
    } else {
        LOAD_FOR
    };
    let variants = VARIANTS;
    let mut errors = Vec::new();
    let mut tally: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut downs = Vec::new();
    let mut down_errs = Vec::new();
    for repeat in 0..repeats {
        for k in 0..variants.len() {
            let variant = variants[(k + repeat) % variants.len()];
            let what = format!("link down, {}, repeat {repeat}", variant.name());
            let t = tally.entry(variant.name()).or_default();
            let run = retry_once("bfd", &what, &mut errors, t, || {
                let lab = Lab::builder()
                    .routers(2)
                    .client()
                    .build()
                    .map_err(harness)?;
                link_down(&lab, variant, repeat, vipd)
            });
            if let Ok(o) = run.map_err(|e| down_errs.push((variant, e))) {
                eprintln!(
                    "bench bfd: {what}: client gap {:.1} ms{}",
                    o.gap_ms,
                    o.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                );
                downs.push(o);
            }
        }
    }
    let mut freezes = Vec::new();
    let mut frozen_err = None;
    // The smoke run freezes the BFD pair only (the contrast costs a Master_Down takeover).
    let frozen_variants: &[Variant] = if opts.quick {
        &[Variant::VipdBfd]
    } else {
        &[Variant::VipdBfd, Variant::Vipd]
    };
    for &variant in frozen_variants {
        let what = format!("frozen master, {}", variant.name());
        let t = tally.entry("frozen").or_default();
        match retry_once("bfd", &what, &mut errors, t, || {
            let lab = Lab::builder()
                .routers(2)
                .client()
                .build()
                .map_err(harness)?;
            frozen(&lab, variant, vipd)
        }) {
            Ok(o) => {
                eprintln!(
                    "bench bfd: {what}: took over {}, {} pings lost",
                    o.took_over, o.lost
                );
                freezes.push(o);
            }
            Err(e) if variant == Variant::VipdBfd => frozen_err = Some(e),
            Err(_) => {}
        }
    }
    let t = tally.entry("load").or_default();
    let loaded = retry_once("bfd", "load and garbage", &mut errors, t, || {
        let lab = Lab::builder()
            .routers(2)
            .attacker()
            .build()
            .map_err(harness)?;
        load(&lab, load_for, vipd, &opts.out)
    });
    let failed = Failed {
        downs: down_errs,
        frozen: frozen_err,
        load: loaded,
    };
    Ok(section(
        &downs, &freezes, &failed, repeats, load_for, errors, &tally,
    ))
}

/// Runs that failed, kept for the verdicts (harness or implementation).
struct Failed {
    downs: Vec<(Variant, anyhow::Error)>,
    /// vipd + BFD's frozen-master run.
    frozen: Option<anyhow::Error>,
    /// The load-and-garbage run, or why it failed.
    load: Result<Load>,
}

fn section(
    downs: &[LinkDown],
    freezes: &[Frozen],
    failed: &Failed,
    repeats: usize,
    load_for: Duration,
    errors: Vec<String>,
    tally: &BTreeMap<&str, (usize, usize)>,
) -> Section {
    let loaded = failed.load.as_ref().ok();
    let mdi = ms(master_down(INTERVAL, BACKUP_PRIORITY));
    let by = |v: Variant| downs.iter().filter(move |o| o.variant == v);
    let gaps = |v: Variant| Summary::of(&by(v).map(|o| o.gap_ms).collect::<Vec<_>>());
    let cpu = |v: Variant| Summary::of(&by(v).map(|o| o.cpu_percent).collect::<Vec<_>>());
    let mut md = format!(
        "Two routers at {} ms adverts (r2's Master_Down_Interval {mdi:.1} ms), one IPv4 VIP; \
         vipd + BFD runs single-hop BFD at {BFD} with the Echo function (looped back by the \
         master's XDP program). A client pings the VIP every {} ms through its cached \
         neighbour entry. Gap: from the old master's last reply to the new master's first, \
         as the client saw them. {repeats} repeat(s), variants alternating, a fresh lab \
         each; ms, median (min–max). CPU: both daemons over {} s of steady state before the \
         failure, % of one core.\n\n\
         ### Link down\n\n\
         | variant | client gap | lost pings | two answering | takeover reason | daemons' CPU | retried / failed |\n\
         |---|---|---|---|---|---|---|\n",
        INTERVAL.as_millis(),
        PING_EVERY.as_millis(),
        STEADY.as_secs(),
    );
    for v in VARIANTS {
        let runs: Vec<_> = by(v).collect();
        let lost = Summary::of(&runs.iter().map(|o| o.lost as f64).collect::<Vec<_>>());
        let overlap: usize = runs.iter().map(|o| o.overlap).sum();
        let mut reasons: Vec<&str> = runs.iter().filter_map(|o| o.reason.as_deref()).collect();
        reasons.sort();
        reasons.dedup();
        let (retried, failed) = tally.get(v.name()).copied().unwrap_or_default();
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {retried} / {failed} |\n",
            v.name(),
            cell_opt(gaps(v), 1),
            cell_opt(lost, 0),
            if overlap == 0 {
                "never".to_string()
            } else {
                format!("{overlap} probe(s)")
            },
            if reasons.is_empty() {
                "–".to_string()
            } else {
                reasons.join("; ")
            },
            cell_opt(cpu(v), 2),
        ));
    }
    md.push_str(&format!(
        "\n### Frozen master\n\nr1's daemon stopped (SIGSTOP) for {} s, its host forwarding.\n\n\
         | variant | r2 took over | lost pings | longest gap | echoes looped by r1's XDP while frozen |\n\
         |---|---|---|---|---|\n",
        FREEZE.as_secs()
    ));
    for f in freezes {
        md.push_str(&format!(
            "| {} | {} | {} | {:.1} | {} |\n",
            f.variant.name(),
            if f.took_over { "yes" } else { "no" },
            f.lost,
            f.longest_gap_ms,
            f.looped.map_or("–".into(), |n| n.to_string()),
        ));
    }
    md.push_str(&format!(
        "\n### Load and garbage\n\nvipd + BFD, both routers' CPUs spun to 100 % and the link \
         flooded at {GARBAGE_PPS} frames/s with random BFD Control packets (half claiming \
         the master's address), Echo packets claiming either router and random frames, for \
         {} s.\n\n",
        load_for.as_secs()
    ));
    match loaded {
        Some(l) => md.push_str(&format!(
            "| seconds | garbage frames | transitions r1 / r2 | r2's probes / answered | r2's session downs |\n\
             |---|---|---|---|---|\n| {:.1} | {} | {} / {} | {} / {} | {} |\n",
            l.seconds,
            l.garbage,
            l.transitions.0,
            l.transitions.1,
            l.probes,
            l.answered,
            l.session_downs
        )),
        None => md.push_str("Not measured (see the failed runs below).\n"),
    }
    if !errors.is_empty() {
        md.push_str("\nRuns that failed (not in the figures):\n\n");
        for e in &errors {
            md.push_str(&format!("- {}\n", e.lines().next().unwrap_or("")));
        }
    }
    let goals = goals(downs, freezes, failed, load_for, &gaps);
    Section {
        id: "bfd".into(),
        title: "8. Failover with BFD".into(),
        markdown: md,
        json: json!({
            "advert_interval_ms": ms(INTERVAL), "bfd": BFD, "master_down_ms": mdi,
            "repeats": repeats,
            "link_down": VARIANTS.iter().map(|&v| json!({
                "variant": v.name(), "client_gap_ms": json_opt(gaps(v)),
                "daemons_cpu_percent": json_opt(cpu(v)),
                "runs": by(v).map(|o| json!({
                    "repeat": o.repeat, "gap_ms": o.gap_ms, "lost": o.lost,
                    "old_answers_after_new": o.overlap, "reason": o.reason,
                    "cpu_percent": o.cpu_percent,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "frozen": freezes.iter().map(|f| json!({
                "variant": f.variant.name(), "took_over": f.took_over, "lost": f.lost,
                "longest_gap_ms": f.longest_gap_ms, "echoes_looped": f.looped,
            })).collect::<Vec<_>>(),
            "load": loaded.map(|l| json!({
                "seconds": l.seconds, "garbage_frames": l.garbage,
                "transitions": [l.transitions.0, l.transitions.1],
                "probes": l.probes, "probes_answered": l.answered,
                "session_downs": l.session_downs,
            })),
            "failed_runs": errors,
        }),
        goals,
        ..Default::default()
    }
}

fn goals(
    downs: &[LinkDown],
    freezes: &[Frozen],
    failed: &Failed,
    load_for: Duration,
    gaps: &dyn Fn(Variant) -> Option<Summary>,
) -> Vec<Goal> {
    let mut goals = Vec::new();
    let with: Vec<_> = downs
        .iter()
        .filter(|o| o.variant == Variant::VipdBfd)
        .collect();
    let errs = |side: &mut Side| {
        for (_, e) in failed.downs.iter().filter(|(v, _)| *v == Variant::VipdBfd) {
            side.record_error(e);
        }
    };
    let mut gap = Side::default();
    for o in &with {
        if o.reason.as_deref().is_some_and(|r| r.contains("BFD")) {
            gap.samples.push(o.gap_ms);
        } else {
            gap.failed.push(format!(
                "repeat {}: the takeover was not BFD's ({})",
                o.repeat,
                o.reason.as_deref().unwrap_or("no reason logged")
            ));
        }
    }
    errs(&mut gap);
    let median = |v| gaps(v).map_or("–".to_string(), |s| format!("{:.1} ms", s.median));
    let mut g = verdict::at_most(
        &format!(
            "BFD: link-down failover as a client sees it ≤ {GOAL_MS} ms (10 ms adverts, BFD \
             1 ms × 3)"
        ),
        &gap,
        GOAL_MS,
        "ms",
    );
    g.detail.push_str(&format!(
        "; same run without BFD: vipd {} and keepalived {} (medians)",
        median(Variant::Vipd),
        median(Variant::Keepalived)
    ));
    goals.push(g);
    let mut overlap = Side::samples(with.iter().map(|o| o.overlap as f64));
    errs(&mut overlap);
    goals.push(verdict::at_most(
        "BFD: link-down failover, probes answered by both routers ≤ 0",
        &overlap,
        0.0,
        "probe(s)",
    ));
    let text = "BFD: a frozen master (SIGSTOP, host forwarding) is not taken over and \
                loses ≤ 1 ping";
    match (
        freezes.iter().find(|f| f.variant == Variant::VipdBfd),
        &failed.frozen,
    ) {
        (Some(f), _) => goals.push(Goal::judged(
            text,
            !f.took_over && f.lost <= 1,
            format!(
                "{} s frozen: r2 took over {}, {} ping(s) lost, {} echoes looped by XDP; \
                 without BFD: {}",
                FREEZE.as_secs(),
                if f.took_over { "yes" } else { "no" },
                f.lost,
                f.looped.unwrap_or(0),
                freezes.iter().find(|f| f.variant == Variant::Vipd).map_or(
                    "not run".into(),
                    |n| format!(
                        "taken over {}, longest gap {:.1} ms",
                        if n.took_over { "yes" } else { "no" },
                        n.longest_gap_ms
                    )
                ),
            ),
        )),
        (None, err) => {
            let mut side = Side::default();
            if let Some(e) = err {
                side.record_error(e);
            }
            goals.push(verdict::at_most(text, &side, 0.0, ""));
        }
    }
    let text = format!(
        "BFD: zero false takeovers with both CPUs at 100 % and a garbage flood for {} s, \
         every BFD probe answered",
        load_for.as_secs()
    );
    match &failed.load {
        Ok(l) => goals.push(Goal::judged(
            text,
            l.transitions == (0, 0) && l.probes == l.answered,
            format!(
                "transitions r1 {} r2 {}; {} garbage frames; r2 probed {} times, answered {}",
                l.transitions.0, l.transitions.1, l.garbage, l.probes, l.answered
            ),
        )),
        Err(e) => {
            let mut side = Side::default();
            side.record_error(e);
            goals.push(verdict::at_most(&text, &side, 0.0, ""));
        }
    }
    goals
}
