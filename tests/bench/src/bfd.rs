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
//! **keepalived + BFD** runs keepalived 2.2.7's own BFD (its `bfd_instance` blocks, in its
//! BFD child process at `bfd_rt_priority` 1 like its VRRP child) in the link-down,
//! frozen-master and load-and-garbage runs, at the same 1 ms × 3 (`min_rx 1`, `min_tx 1`, `multiplier 3`; the
//! Echo function keepalived does not have). keepalived's `track_bfd` can only move a
//! priority or put an instance in FAULT, never start a takeover (keepalived's
//! `vrrp_handle_bfd_event`, `vrrp_set_effective_priority`: a backup's running
//! Master_Down timer moves by the change in its skew). So the backup gets the one
//! configuration in which BFD speeds its takeover up: base priority 254, `track_bfd` on its
//! session to the master with `weight 154 reverse` (100 while the session is up, 254 the
//! moment it goes down: a skew of 0.08 ms instead of 6.1 ms), and `nopreempt` so that
//! its 254 before the session first comes up does not take the master over. The master
//! runs a `bfd_instance` to the backup so the session has two ends. Freezing it stops
//! all of its keepalived processes (the VRRP and the BFD child with their parent): what
//! "the daemon" is for keepalived.
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
use vip_tests::lab::{KeepalivedConfig, Lab, Method, Prober, wait_until};

use super::{
    Goal, Options, Section, master_down, ms,
    procstat::CpuWindow,
    retry_once,
    routers::{
        Impl, Instance, KEEPALIVED_RT_PRIORITY, Router, RouterSpec, State, VipdBinary, VipdRouter,
        keepalived_config, start, start_keepalived, wait_state,
    },
    stats::{Summary, cell_opt, json_opt},
    verdict::{self, MIN_DECISION_REPEATS, Side, Tolerance, harness},
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
    KeepalivedBfd,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::VipdBfd => "vipd + BFD",
            Variant::Vipd => "vipd",
            Variant::Keepalived => "keepalived",
            Variant::KeepalivedBfd => "keepalived + BFD",
        }
    }
}

const VARIANTS: [Variant; 4] = [
    Variant::VipdBfd,
    Variant::Vipd,
    Variant::Keepalived,
    Variant::KeepalivedBfd,
];
/// keepalived's BFD at vipd's `interval = "1ms", multiplier = 3` (its `min_rx` / `min_tx`
/// are in ms, down to 1).
const KA_BFD_MS: u32 = 1;
const KA_BFD_MULTIPLIER: u8 = 3;
/// keepalived + BFD's backup: priority 254, 154 off while its session to the master is up.
const KA_BACKUP_BASE: u8 = 254;
const KA_BFD_WEIGHT: u8 = KA_BACKUP_BASE - BACKUP_PRIORITY;
/// The `bfd_instance` name each keepalived gives its session to the other router.
const KA_BFD_PEER: &str = "peer";

/// A started router: vipd ones keep their handle for status and signals.
enum Started {
    Vipd(Box<VipdRouter>),
    Base(Box<dyn Router>),
}

/// keepalived with its BFD session to `other` (see the module docs); `backup` gets the
/// tracking that raises its priority when the session goes down.
fn keepalived_bfd_config(
    priority: u8,
    me: IpAddr,
    other: IpAddr,
    backup: bool,
) -> Result<KeepalivedConfig> {
    let spec = RouterSpec::new(
        if backup { KA_BACKUP_BASE } else { priority },
        INTERVAL,
        vec![VIP.parse()?],
    );
    let mut cfg = keepalived_config(&spec);
    cfg.global
        .push(format!("bfd_rt_priority {KEEPALIVED_RT_PRIORITY}"));
    cfg.blocks.push(format!(
        "bfd_instance {KA_BFD_PEER} {{\n    neighbor_ip {other}\n    source_ip {me}\n    \
         min_rx {KA_BFD_MS}\n    min_tx {KA_BFD_MS}\n    multiplier {KA_BFD_MULTIPLIER}\n    \
         vrrp\n}}"
    ));
    if backup {
        cfg.preempt = false;
        cfg.extra.push(format!(
            "track_bfd {{\n        {KA_BFD_PEER} weight {KA_BFD_WEIGHT} reverse\n    }}"
        ));
    }
    Ok(cfg)
}

/// keepalived logs each change of a tracked BFD session (`Tracked BFD instance peer is
/// UP`), also without its detailed log.
fn ka_bfd_up(log: &str) -> bool {
    log.lines()
        .rev()
        .find(|l| l.contains(&format!("Tracked BFD instance {KA_BFD_PEER} is")))
        .is_some_and(|l| l.trim_end().ends_with("UP"))
}

/// What keepalived + BFD's backup logged about the failure: its session going down and the
/// priority change that followed, in order, before it became master.
fn ka_bfd_reason(log: &str) -> String {
    let mut seen = Vec::new();
    for l in log.lines() {
        if l.contains(&format!("Tracked BFD instance {KA_BFD_PEER} is DOWN")) {
            seen.clear();
            seen.push("BFD session down".to_string());
        } else if !seen.is_empty() && l.contains("Changing effective priority") {
            if let Some(i) = l.find("from ") {
                seen.push(format!("priority {}", &l[i + 5..].replace(" to ", " → ")));
            }
        } else if !seen.is_empty() && l.contains("Entering MASTER STATE") {
            seen.push("master".into());
            break;
        }
    }
    if seen.is_empty() {
        "no BFD session down in keepalived's log".into()
    } else {
        seen.join(", ")
    }
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
            Variant::KeepalivedBfd => Started::Base(start_keepalived(
                lab,
                node,
                &keepalived_bfd_config(
                    priority,
                    IpAddr::V4(node.ipv4),
                    IpAddr::V4(lab.router(3 - n).ipv4),
                    n == 2,
                )?,
            )?),
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
    if variant == Variant::KeepalivedBfd {
        wait_until(
            "keepalived on r2 to log its BFD session to r1 up",
            SESSION_UP,
            Duration::from_millis(20),
            || Ok(ka_bfd_up(&r2.router().log())),
        )
        .with_context(|| format!("r2's log:\n{}", r2.router().log()))?;
        // r2 dropped to 100 as the session came up: the pair is as the others are.
        wait_state(r1.router(), State::Master, settle)?;
        wait_state(r2.router(), State::Backup, settle)?;
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
        // keepalived says in its log whether its BFD saw the failure and moved the
        // priority before the takeover.
        Started::Base(b) if variant == Variant::KeepalivedBfd => Some(ka_bfd_reason(&b.log())),
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
    let before = r2.router().transitions()?;
    let probe = ping_vip(lab)?;
    std::thread::sleep(Duration::from_millis(200));
    let reflected = match &r1 {
        Started::Vipd(v1) => Some(xdp(v1, "bfd_echo_reflected")?),
        Started::Base(_) => None,
    };
    // Every process of the daemon: vipd's one, keepalived's parent, VRRP and BFD children.
    let pids = r1.router().pids();
    signal_all(&pids, Signal::SIGSTOP)?;
    std::thread::sleep(FREEZE);
    signal_all(&pids, Signal::SIGCONT)?;
    // Read once it answers again: the count covers the freeze.
    let looped = match (&r1, reflected) {
        (Started::Vipd(v1), Some(before)) => Some(xdp(v1, "bfd_echo_reflected")? - before),
        _ => None,
    };
    std::thread::sleep(Duration::from_millis(300));
    let run = probe.stop()?;
    let took_over = r2.router().transitions()? != before;
    Ok(Frozen {
        variant,
        took_over,
        lost: run.lost(),
        longest_gap_ms: ms(run.longest_gap().span),
        looped: looped.filter(|_| variant == Variant::VipdBfd),
    })
}

fn signal_all(pids: &[i32], sig: Signal) -> Result<()> {
    for &p in pids {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig)
            .with_context(|| format!("{sig} to {p}"))?;
    }
    Ok(())
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

/// Both routers' CPUs spun at 100 % and BFD garbage sent from the attacker to r2 for
/// `run_for`, the same for every implementation: (seconds it took, frames sent).
fn spin_and_flood(lab: &Lab, run_for: Duration) -> Result<(f64, usize)> {
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
    Ok((seconds, garbage))
}

fn load(lab: &Lab, run_for: Duration, vipd: &VipdBinary, out: &Path) -> Result<Load> {
    let (r1, r2) = pair(lab, Variant::VipdBfd, vipd)?;
    let (v1, v2) = (r1.vipd()?, r2.vipd()?);
    let (t1, t2) = (v1.transitions()?, v2.transitions()?);
    let (seconds, garbage) = spin_and_flood(lab, run_for)?;
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

/// keepalived + BFD under the same load and flood: its transitions and how often r2's
/// keepalived logged its BFD session down.
#[derive(Clone, Debug)]
struct KaLoad {
    seconds: f64,
    garbage: usize,
    transitions: (u64, u64),
    session_downs: usize,
}

fn load_keepalived(lab: &Lab, run_for: Duration, vipd: &VipdBinary) -> Result<KaLoad> {
    let (r1, r2) = pair(lab, Variant::KeepalivedBfd, vipd)?;
    let (k1, k2) = (r1.router(), r2.router());
    let (t1, t2) = (k1.transitions()?, k2.transitions()?);
    let downs = |log: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("Tracked BFD instance {KA_BFD_PEER} is DOWN")))
            .count()
    };
    let d0 = downs(&k2.log());
    let (seconds, garbage) = spin_and_flood(lab, run_for)?;
    Ok(KaLoad {
        seconds,
        garbage,
        transitions: (k1.transitions()? - t1, k2.transitions()? - t2),
        session_downs: downs(&k2.log()) - d0,
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
    // Five a side: the comparison with keepalived + BFD is a decision row.
    let repeats = opts.repeats(MIN_DECISION_REPEATS, 1);
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
        &[Variant::VipdBfd, Variant::KeepalivedBfd]
    } else {
        &[Variant::VipdBfd, Variant::Vipd, Variant::KeepalivedBfd]
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
    let t = tally.entry("load, keepalived + BFD").or_default();
    let ka_loaded = retry_once(
        "bfd",
        "load and garbage, keepalived + BFD",
        &mut errors,
        t,
        || {
            let lab = Lab::builder()
                .routers(2)
                .attacker()
                .build()
                .map_err(harness)?;
            load_keepalived(&lab, load_for, vipd)
        },
    );
    let failed = Failed {
        downs: down_errs,
        frozen: frozen_err,
        load: loaded,
        ka_load: ka_loaded.map_err(|e| format!("{e:#}")),
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
    /// The same for keepalived + BFD.
    ka_load: std::result::Result<KaLoad, String>,
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
         master's XDP program); keepalived + BFD runs keepalived's own BFD at \
         min_rx = min_tx = {KA_BFD_MS} ms, multiplier {KA_BFD_MULTIPLIER} (no Echo function), \
         its backup at priority {KA_BACKUP_BASE} with `track_bfd` weight {KA_BFD_WEIGHT} \
         reverse and nopreempt ({BACKUP_PRIORITY} while the session is up, \
         {KA_BACKUP_BASE} once it is down: keepalived's BFD can only change a priority, \
         which moves the backup's Master_Down timer by the change in its skew). A client \
         pings the VIP every {} ms through its cached neighbour entry. Gap: from the old master's last reply to the new master's first, \
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
    md.push_str(&format!(
        "\nkeepalived + BFD under the same load and flood for {} s:\n\n",
        load_for.as_secs()
    ));
    match &failed.ka_load {
        Ok(k) => md.push_str(&format!(
            "| seconds | garbage frames | transitions r1 / r2 | r2's session downs (its log) |\n\
             |---|---|---|---|\n| {:.1} | {} | {} / {} | {} |\n",
            k.seconds, k.garbage, k.transitions.0, k.transitions.1, k.session_downs
        )),
        Err(e) => md.push_str(&format!(
            "Not measured: {}\n",
            e.lines().next().unwrap_or("")
        )),
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
            "load_keepalived_bfd": failed.ka_load.as_ref().ok().map(|k| json!({
                "seconds": k.seconds, "garbage_frames": k.garbage,
                "transitions": [k.transitions.0, k.transitions.1],
                "session_downs": k.session_downs,
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
        "; same run without BFD: vipd {} and keepalived {}; keepalived + BFD {} (medians)",
        median(Variant::Vipd),
        median(Variant::Keepalived),
        median(Variant::KeepalivedBfd)
    ));
    let mut ka = Side::samples(
        downs
            .iter()
            .filter(|o| o.variant == Variant::KeepalivedBfd)
            .map(|o| o.gap_ms),
    );
    for (_, e) in failed
        .downs
        .iter()
        .filter(|(v, _)| *v == Variant::KeepalivedBfd)
    {
        ka.record_error(e);
    }
    let comparison = verdict::never_worse(
        "BFD: link-down client gap, vipd + BFD",
        "keepalived + BFD",
        &gap,
        &ka,
        Tolerance::abs(1.0, "ms"),
        MIN_DECISION_REPEATS,
    );
    goals.push(g);
    goals.push(comparison);
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
    let other = |v: Variant| {
        freezes
            .iter()
            .find(|f| f.variant == v)
            .map_or("not run".into(), |n| {
                format!(
                    "taken over {}, {} ping(s) lost, longest gap {:.1} ms",
                    if n.took_over { "yes" } else { "no" },
                    n.lost,
                    n.longest_gap_ms
                )
            })
    };
    match (
        freezes.iter().find(|f| f.variant == Variant::VipdBfd),
        &failed.frozen,
    ) {
        (Some(f), _) => goals.push(Goal::judged(
            text,
            !f.took_over && f.lost <= 1,
            format!(
                "{} s frozen: r2 took over {}, {} ping(s) lost, {} echoes looped by XDP; \
                 without BFD: {}; keepalived + BFD: {}",
                FREEZE.as_secs(),
                if f.took_over { "yes" } else { "no" },
                f.lost,
                f.looped.unwrap_or(0),
                other(Variant::Vipd),
                other(Variant::KeepalivedBfd),
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
                "transitions r1 {} r2 {}; {} garbage frames; r2 probed {} times, answered {}; \
                 keepalived + BFD in the same conditions: {}",
                l.transitions.0,
                l.transitions.1,
                l.garbage,
                l.probes,
                l.answered,
                match &failed.ka_load {
                    Ok(k) => format!(
                        "transitions r1 {} r2 {}, {} session down(s)",
                        k.transitions.0, k.transitions.1, k.session_downs
                    ),
                    Err(_) => "not measured".into(),
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn render(backup: bool) -> String {
        let cfg = keepalived_bfd_config(
            MASTER_PRIORITY,
            "192.0.2.12".parse().unwrap(),
            "192.0.2.11".parse().unwrap(),
            backup,
        )
        .unwrap();
        cfg.render("r2", &[], std::path::Path::new("/n")).unwrap()
    }

    #[test]
    fn keepalived_bfd_runs_at_vipds_interval_and_multiplier() {
        let text = render(false);
        for needle in [
            "bfd_instance peer {",
            "neighbor_ip 192.0.2.11",
            "source_ip 192.0.2.12",
            "min_rx 1\n",
            "min_tx 1\n",
            "multiplier 3\n",
            "bfd_rt_priority 1",
            "vrrp_rt_priority 1",
            "priority 200",
        ] {
            assert!(text.contains(needle), "{needle} in\n{text}");
        }
        assert!(!text.contains("track_bfd") && !text.contains("nopreempt"));
    }

    #[test]
    fn keepalived_bfd_backup_is_at_100_with_its_session_up_and_254_without() {
        let text = render(true);
        assert!(text.contains("priority 254\n"), "{text}");
        assert!(text.contains("track_bfd {\n        peer weight 154 reverse\n    }"));
        assert!(text.contains("nopreempt"));
        // keepalived: reverse subtracts the weight while up, adds it back when down.
        assert_eq!(
            KA_BACKUP_BASE - KA_BFD_WEIGHT,
            BACKUP_PRIORITY,
            "up: the same priority as the other variants' backup"
        );
    }

    #[test]
    fn keepalived_bfd_reason_follows_the_log_from_session_down_to_master() {
        let log = "(vi4) Entering BACKUP STATE\n\
                   VRRP_Instance(vi4) Tracked BFD instance peer is DOWN\n\
                   (vi4) Changing effective priority from 100 to 254\n\
                   (vi4) Entering MASTER STATE\n";
        assert_eq!(
            ka_bfd_reason(log),
            "BFD session down, priority 100 → 254, master"
        );
        assert_eq!(
            ka_bfd_reason("(vi4) Entering MASTER STATE\n"),
            "no BFD session down in keepalived's log"
        );
    }

    #[test]
    fn the_last_tracked_bfd_line_says_whether_the_session_is_up() {
        let log = "Sun Dec  7 VRRP_Instance(vi4) Tracked BFD instance peer is UP\n";
        assert!(ka_bfd_up(log));
        let later = format!("{log}x VRRP_Instance(vi4) Tracked BFD instance peer is DOWN\n");
        assert!(!ka_bfd_up(&later));
        assert!(!ka_bfd_up("(vi4) Entering BACKUP STATE\n"));
    }
}
