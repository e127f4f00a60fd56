//! Item 3: what a client sees when the master fails.
//!
//! Lab: r1 (priority 200, master) and r2 (priority 100) run the same implementation for
//! one IPv4 VIP; the client resolves the VIP by ARP every millisecond, each request with
//! its own sender MAC so every answer names its probe. Captures on both routers' bridge
//! ports say which router sent each answer (FRR answers from a shared VMAC, so the
//! answer's MAC alone cannot). After a steady baseline r1 fails in one of three ways:
//! - `link down`: r1's bridge port goes down (r1 loses carrier, nobody hears it);
//! - `kill -9`: every process of r1's implementation is frozen then SIGKILLed;
//! - `SIGTERM`: a clean stop (resign with priority 0);
//! - `kill -9 VRRP child` (keepalived only): the VRRP process alone, which keepalived's
//!   parent respawns, its documented defence against a crash, next to the whole tree.
//!
//! After a crash (either kill -9) the observation goes on for [`STALE_CAP`] after the
//! backup took over, so a stale VIP (the old master still answering) is measured until it
//! ends; one still answering then is shown as "≥ cap", never as a figure equal to a window.
//!
//! Per run: **outage**, the longest run of unanswered probes after the failure;
//! **overlap**, the time probes were answered by both routers (a stale VIP hides an
//! outage behind a split brain, so the two are always reported together); **takeover**,
//! from the failure to the first answer from r2. Implementations alternate within each
//! repeat, the order rotated.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::{
    Goal, Options, Section, master_down, ms,
    routers::{Impl, RouterSpec, State, VipdBinary, start, wait_state},
    stats::{Summary, cell_opt, json_opt},
    svg::{Class, Segment, Timeline},
    verdict::{self, MIN_DECISION_REPEATS, Side, Tolerance, harness, is_harness},
};
use vip_tests::lab::{Kind, Lab, Method, ProbeRun};

const PROBE_EVERY: Duration = Duration::from_millis(1);
/// How long a stale VIP is followed after the takeover (crash rows).
pub const STALE_CAP: Duration = Duration::from_secs(2);
/// The same for the other rows (a link down or a clean stop leaves nothing to answer).
const POST: Duration = Duration::from_millis(500);
const MASTER_PRIORITY: u8 = 200;
const BACKUP_PRIORITY: u8 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    LinkDown,
    Kill9,
    /// keepalived only: `kill -9` of the VRRP child; the parent respawns it.
    Kill9Child,
    Sigterm,
}

impl Failure {
    pub fn name(self) -> &'static str {
        match self {
            Failure::LinkDown => "link down",
            Failure::Kill9 => "kill -9",
            Failure::Kill9Child => "kill -9 VRRP child",
            Failure::Sigterm => "SIGTERM",
        }
    }

    pub fn is_crash(self) -> bool {
        matches!(self, Failure::Kill9 | Failure::Kill9Child)
    }

    /// Whether `imp` can fail this way.
    pub fn applies_to(self, imp: Impl) -> bool {
        self != Failure::Kill9Child || imp == Impl::Keepalived
    }

    /// How long the run goes on after the backup took over.
    pub fn post(self) -> Duration {
        if self.is_crash() { STALE_CAP } else { POST }
    }
}

pub const FAILURES: [Failure; 4] = [
    Failure::LinkDown,
    Failure::Kill9,
    Failure::Kill9Child,
    Failure::Sigterm,
];

#[derive(Clone, Debug)]
pub struct Outcome {
    pub imp: Impl,
    pub interval: Duration,
    pub failure: Failure,
    pub repeat: usize,
    pub outage_ms: f64,
    pub overlap_ms: f64,
    /// `None`: r2 never answered within the window.
    pub takeover_ms: Option<f64>,
    /// From r1's last advertisement on the wire to the failure (negative when that advert
    /// left after the failure began). A backup counts its Master_Down_Interval from that
    /// advert, so a link-down or crash outage is shorter by this much by luck of timing;
    /// adding it back compares implementations as if each had failed right after it.
    pub phase_ms: f64,
    /// Last answer from r1 after the failure (a stale VIP), if any.
    pub stale_ms: Option<f64>,
    /// r1 still answered at the end of the observation: the overlap is at least
    /// `overlap_ms` (the cap), not that figure.
    pub overlap_open: bool,
    pub sent: usize,
    pub lost: usize,
    pub timeline: Timeline,
}

pub fn run(opts: &Options, vipd: &VipdBinary) -> Result<Section> {
    let intervals: Vec<Duration> = if opts.quick {
        vec![Duration::from_millis(10)]
    } else {
        vec![
            Duration::from_secs(1),
            Duration::from_millis(100),
            Duration::from_millis(10),
        ]
    };
    // The decision rows ("never worse than") need MIN_DECISION_REPEATS runs a side. A
    // 1 s row costs ten times a 100 ms one and its figures are the timers themselves
    // (min and max within 20 ms of each other over repeats): it runs once and is judged
    // against its limits only. An explicit --repeats applies to every row.
    let repeats = opts.repeats(MIN_DECISION_REPEATS, 1);
    // With no decision row at 1 s, its baselines would be context only: they are left
    // out to pay for the decision rows' repeats (the full bench stays near 20 minutes).
    let runs_at = |interval: Duration, imp: Impl| {
        imp == Impl::Vipd || interval < Duration::from_secs(1) || opts.repeats.is_some()
    };
    let repeats_at = |interval: Duration| {
        if opts.repeats.is_none() && interval >= Duration::from_secs(1) {
            1
        } else {
            repeats
        }
    };
    // The smoke run (under two minutes in all) exercises the crash paths only.
    let failures: &[Failure] = if opts.quick {
        &[Failure::Kill9, Failure::Kill9Child]
    } else {
        &FAILURES
    };
    let impls = vipd.with(&[Impl::Keepalived, Impl::Frr]);
    let mut outcomes = Vec::new();
    let mut errors = Vec::new();
    let mut tally: BTreeMap<(Key, Impl), Tally> = BTreeMap::new();
    for &interval in &intervals {
        for &failure in failures {
            for repeat in 0..repeats_at(interval) {
                for k in 0..impls.len() {
                    let imp = impls[(k + repeat) % impls.len()];
                    if !failure.applies_to(imp) || !runs_at(interval, imp) {
                        continue;
                    }
                    let t = tally.entry(((interval, failure), imp)).or_default();
                    let what = format!(
                        "{} {} at {:?}, repeat {repeat}",
                        imp.name(),
                        failure.name(),
                        interval
                    );
                    // One retry, for a fault of the harness only (a lost capture, a
                    // crash that resigned); both attempts are reported.
                    let outcome = scenario(imp, interval, failure, repeat, vipd).or_else(|e| {
                        if !is_harness(&e) {
                            return Err(e);
                        }
                        eprintln!("bench failover: {what}: {e:#}; retrying");
                        errors.push(format!("{what} (retried): {e:#}"));
                        t.retried += 1;
                        scenario(imp, interval, failure, repeat, vipd)
                    });
                    match outcome {
                        Ok(o) => {
                            eprintln!(
                                "bench failover: {what}: outage {:.1} ms, overlap {:.1} ms, \
                                 takeover {}",
                                o.outage_ms,
                                o.overlap_ms,
                                o.takeover_ms
                                    .map_or("never".into(), |t| format!("{t:.1} ms"))
                            );
                            outcomes.push(o);
                        }
                        Err(e) => {
                            eprintln!("bench failover: {what}: {e:#}");
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
        &outcomes, &intervals, &impls, vipd, repeats, errors, &tally,
    ))
}

/// Runs of one cell that had to be retried, and that failed (not in the figures).
#[derive(Debug, Default)]
pub struct Tally {
    pub retried: usize,
    pub failed: usize,
    /// Why each failed run failed: the harness's fault or the implementation's.
    pub errors: Vec<anyhow::Error>,
}

fn scenario(
    imp: Impl,
    interval: Duration,
    failure: Failure,
    repeat: usize,
    vipd: &VipdBinary,
) -> Result<Outcome> {
    let lab = Lab::builder()
        .routers(2)
        .client()
        .build()
        .map_err(harness)?;
    let (r1n, r2n, cl) = (lab.router(1), lab.router(2), lab.client());
    let vip: IpAddr = "192.0.2.1".parse()?;
    let mdi = master_down(interval, BACKUP_PRIORITY);
    let settle = mdi * 2 + Duration::from_secs(5);
    let r1 = start(
        imp,
        &lab,
        r1n,
        &RouterSpec::new(MASTER_PRIORITY, interval, vec![vip]),
        vipd,
    )?;
    let r2 = start(
        imp,
        &lab,
        r2n,
        &RouterSpec::new(BACKUP_PRIORITY, interval, vec![vip]),
        vipd,
    )?;
    wait_state(r1.as_ref(), State::Master, settle)?;
    wait_state(r2.as_ref(), State::Backup, settle)?;
    // r1's port also carries its adverts: a crash must not resign (priority 0).
    let cap1 = lab
        .capture_port(r1n, "arp or ip proto 112")
        .map_err(harness)?;
    let cap2 = lab.capture_port(r2n, "arp").map_err(harness)?;
    // Long enough to see at least one of r1's adverts before the failure (the phase).
    let pre = Duration::from_millis(300).max(interval + Duration::from_millis(100));
    let post = failure.post().max(interval / 2);
    let max = pre + mdi * 3 + post + Duration::from_secs(5);
    let probe = lab
        .probe(cl, Method::Resolve, vip, PROBE_EVERY, max, &[])
        .map_err(harness)?;
    std::thread::sleep(pre);
    let t_fail = Instant::now();
    let wall_fail = SystemTime::now();
    match failure {
        Failure::LinkDown => lab.set_port(r1n, false),
        Failure::Kill9 => r1.kill9(),
        Failure::Kill9Child => r1.kill9_vrrp_child(),
        Failure::Sigterm => r1.sigterm(),
    }
    .map_err(harness)?;
    // A respawned keepalived child may take the VIP back before the backup's timer runs
    // out: then the backup never becomes master, which is that defence working.
    let waited = if failure == Failure::Kill9Child {
        let _ = wait_state(
            r2.as_ref(),
            State::Master,
            mdi * 2 + Duration::from_millis(500),
        );
        Ok(Duration::ZERO)
    } else {
        wait_state(r2.as_ref(), State::Master, settle)
    };
    std::thread::sleep(post);
    let t_end = Instant::now();
    let mut run = probe.stop().map_err(harness)?;
    let frames1 = cap1.stop().map_err(harness)?;
    let frames2 = cap2.stop().map_err(harness)?;
    waited.context("the backup never became master")?;
    let is_r1 = |src: IpAddr| src == IpAddr::V4(r1n.ipv4);
    // r1's last advert on the wire: it may fall just after `t_fail` (a link takes a few
    // ms to go down, a resignation is itself an advert), hence signed.
    let last_advert = frames1
        .iter()
        .filter(|f| matches!(f.kind(), Kind::Vrrp { src, .. } if is_r1(src)))
        // A respawned keepalived child advertises again: its old self's last advert is
        // the one before the kill.
        .filter(|f| failure != Failure::Kill9Child || f.at <= wall_fail)
        .map(|f| f.at)
        .max()
        .ok_or_else(|| harness("no advert from r1 seen in the capture"))?;
    let phase = match wall_fail.duration_since(last_advert) {
        Ok(before) => ms(before),
        Err(after) => -ms(after.duration()),
    };
    let resigned = frames1.iter().any(|f| {
        f.at >= wall_fail
            && matches!(f.kind(), Kind::Vrrp { src, priority: 0, .. } if src == IpAddr::V4(r1n.ipv4))
    });
    if resigned && failure.is_crash() && failure != Failure::Kill9Child {
        return Err(harness(format!(
            "r1 sent a priority-0 advert after the {}: not a crash",
            failure.name()
        )));
    }
    run.attribute(&[("r1", &frames1), ("r2", &frames2)]);
    let before: Vec<_> = run.between(run.started, t_fail).collect();
    let answered_before = before.iter().filter(|p| p.answered()).count();
    if before.is_empty() || answered_before * 10 < before.len() * 9 {
        bail!(
            "before the failure only {answered_before} of {} probes were answered",
            before.len()
        );
    }
    if before.iter().any(|p| p.responders().contains("r2")) {
        bail!("r2 answered before the failure: {}", run.summary());
    }
    drop(r1);
    drop(r2);
    let outage = gap_after(&run, t_fail - PROBE_EVERY);
    let takeover = run
        .first_answer_by("r2", t_fail)
        .map(|p| ms(p.sent - t_fail));
    let stale = run
        .last_answer_by("r1", Instant::now())
        .filter(|p| p.sent >= t_fail)
        .map(|p| ms(p.sent - t_fail));
    // Still answering within the last few probes of the window: the overlap goes on past
    // what was observed, so it is reported as at least the cap.
    // Open: some probe of the last 20 ms of the window answered by both routers.
    let overlap_open = failure.is_crash()
        && run
            .between(t_end - Duration::from_millis(20), t_end)
            .any(|p| {
                let who = p.responders();
                who.contains("r1") && who.contains("r2")
            });
    let title = format!(
        "{} · {} · {}",
        interval_name(interval),
        failure.name(),
        imp.name()
    );
    Ok(Outcome {
        imp,
        interval,
        failure,
        repeat,
        outage_ms: ms(outage),
        overlap_ms: ms(run.overlap_total()),
        takeover_ms: takeover,
        phase_ms: phase,
        stale_ms: stale,
        overlap_open,
        sent: run.sent(),
        lost: run.lost(),
        timeline: timeline(&run, t_fail, title, interval, mdi),
    })
}

/// The longest run of unanswered probes among those sent at or after `from`, from the
/// first unanswered probe to the next answered one (or the end of the run).
pub fn gap_after(run: &ProbeRun, from: Instant) -> Duration {
    let probes: Vec<_> = run.probes.iter().filter(|p| p.sent >= from).collect();
    let mut best = Duration::ZERO;
    let mut start: Option<Instant> = None;
    for p in &probes {
        match (p.answered(), start) {
            (false, None) => start = Some(p.sent),
            (true, Some(s)) => {
                best = best.max(p.sent - s);
                start = None;
            }
            _ => {}
        }
    }
    if let (Some(s), Some(last)) = (start, probes.last()) {
        best = best.max(last.sent + run.interval - s);
    }
    best
}

fn timeline(
    run: &ProbeRun,
    t_fail: Instant,
    title: String,
    interval: Duration,
    mdi: Duration,
) -> Timeline {
    let rel = |t: Instant| {
        if t >= t_fail {
            ms(t - t_fail)
        } else {
            -ms(t_fail - t)
        }
    };
    let mut segments: Vec<Segment> = Vec::new();
    for p in &run.probes {
        let who = p.responders();
        let class = match (who.contains("r1"), who.contains("r2")) {
            _ if who.is_empty() => Class::None,
            (true, true) => Class::Both,
            (true, false) => Class::R1,
            (false, true) => Class::R2,
            (false, false) => Class::Unattributed,
        };
        let from = rel(p.sent);
        let to = from + ms(run.interval);
        match segments.last_mut() {
            Some(s) if s.class == class && (from - s.to).abs() < ms(run.interval) * 3.0 => {
                s.to = to
            }
            _ => segments.push(Segment { from, to, class }),
        }
    }
    Timeline {
        group: interval_name(interval),
        title,
        mdi_ms: ms(mdi),
        segments,
    }
}

impl Outcome {
    /// The outage as if r1 had failed right after an advert: for a link down the backup's
    /// wait started at that advert, so the phase adds back; a crash under vipd is bounded
    /// by r1's lease (also counted from its last advert) and a resignation by the skew, so
    /// theirs stand as measured.
    pub fn outage_corrected(&self) -> f64 {
        match self.failure {
            Failure::LinkDown => self.outage_ms + self.phase_ms,
            Failure::Kill9 | Failure::Kill9Child | Failure::Sigterm => self.outage_ms,
        }
    }

    /// From r1's last advert to r2's first answer.
    pub fn takeover_after_advert(&self) -> Option<f64> {
        self.takeover_ms.map(|t| t + self.phase_ms)
    }
}

pub fn interval_name(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

type Key = (Duration, Failure);

fn section(
    outcomes: &[Outcome],
    intervals: &[Duration],
    impls: &[Impl],
    vipd: &VipdBinary,
    repeats: usize,
    errors: Vec<String>,
    tally: &BTreeMap<(Key, Impl), Tally>,
) -> Section {
    let mut by: BTreeMap<(Key, Impl), Vec<&Outcome>> = BTreeMap::new();
    for o in outcomes {
        by.entry(((o.interval, o.failure), o.imp))
            .or_default()
            .push(o);
    }
    let sum = |v: &[&Outcome], f: &dyn Fn(&Outcome) -> Option<f64>| {
        Summary::of(&v.iter().filter_map(|o| f(o)).collect::<Vec<_>>())
    };
    let mut md = format!(
        "Two routers, one IPv4 VIP, r1 priority 200 fails, r2 priority 100 takes over. The \
         client sends an ARP request for the VIP every {} ms. {repeats} repeat(s) per cell, \
         implementations alternating (the 1 s rows: vipd once, judged against its limits only, its figures being the timers themselves). Times in ms, median (min–max). Outage: longest run of \
         unanswered probes after the failure. Overlap: time both routers answered (a stale \
         VIP), followed for {} ms after the takeover in the crash rows ({} ms in the others); \
         \"≥ cap\" when the old master still answered then. Takeover: failure \
         to the first answer from r2; after advert: the same from r1's last advert on the wire \
         (for SIGTERM its resignation), which removes the luck of where in the advert cycle \
         the failure fell (the goals compare link-down outages corrected the same way). MDI: r2's \
         Master_Down_Interval. Retried / failed: runs of the cell that failed once and were \
         run again, and runs that failed twice (not in the figures; listed below).\n\n\
         | interval | failure | MDI | implementation | outage | overlap | takeover | after advert \
         | lost probes | retried / failed |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        PROBE_EVERY.as_millis(),
        STALE_CAP.as_millis(),
        POST.as_millis(),
    );
    let mut cells = Vec::new();
    let mut goals = Vec::new();
    let mut timelines = Vec::new();
    for &interval in intervals {
        let mdi = ms(master_down(interval, BACKUP_PRIORITY));
        for failure in FAILURES {
            let key = (interval, failure);
            if !tally.keys().any(|(k, _)| *k == key) {
                continue;
            }
            for &imp in impls {
                if !failure.applies_to(imp) || !tally.contains_key(&(key, imp)) {
                    continue;
                }
                let v = by.get(&(key, imp)).cloned().unwrap_or_default();
                let (retried, failed) = tally
                    .get(&(key, imp))
                    .map_or((0, 0), |t| (t.retried, t.failed));
                let outage = sum(&v, &|o| Some(o.outage_ms));
                let overlap = sum(&v, &|o| Some(o.overlap_ms));
                let open = v.iter().filter(|o| o.overlap_open).count();
                let overlap_cell = if open == 0 {
                    cell_opt(overlap, 1)
                } else if open == v.len() {
                    format!("≥ {}", STALE_CAP.as_millis())
                } else {
                    format!(
                        "{} ({open} of {} runs ≥ {})",
                        cell_opt(overlap, 1),
                        v.len(),
                        STALE_CAP.as_millis()
                    )
                };
                let takeover = sum(&v, &|o| o.takeover_ms);
                let after_advert = sum(&v, &|o| o.takeover_after_advert());
                let lost = sum(&v, &|o| Some(o.lost as f64));
                md.push_str(&format!(
                    "| {} | {} | {mdi:.1} | {} | {} | {} | {} | {} | {} | {} / {} |\n",
                    interval_name(interval),
                    failure.name(),
                    imp.name(),
                    cell_opt(outage, 1),
                    overlap_cell,
                    cell_opt(takeover, 1),
                    cell_opt(after_advert, 1),
                    cell_opt(lost, 0),
                    retried,
                    failed,
                ));
                cells.push(json!({
                    "interval_ms": ms(interval), "failure": failure.name(),
                    "implementation": imp.name(), "master_down_ms": mdi,
                    "outage_ms": json_opt(outage), "overlap_ms": json_opt(overlap),
                    "takeover_ms": json_opt(takeover),
                    "takeover_after_last_advert_ms": json_opt(after_advert),
                    "lost_probes": json_opt(lost),
                    "overlap_open_runs": open, "overlap_cap_ms": ms(STALE_CAP),
                    "retried": retried, "failed": failed,
                    "runs": v.iter().map(|o| json!({
                        "overlap_open": o.overlap_open,
                        "repeat": o.repeat, "outage_ms": o.outage_ms, "overlap_ms": o.overlap_ms,
                        "takeover_ms": o.takeover_ms, "phase_ms": o.phase_ms,
                        "stale_until_ms": o.stale_ms,
                        "sent": o.sent, "lost": o.lost,
                    })).collect::<Vec<Value>>(),
                }));
                // The run whose outage is the median one stands for the cell in the plot.
                if let Some(o) = median_run(&v) {
                    timelines.push(o.timeline.clone());
                }
            }
            if failure != Failure::Kill9Child {
                goals.extend(cell_goals(&by, tally, key, mdi, impls, vipd));
            }
        }
    }
    if impls.contains(&Impl::Frr) {
        md.push_str(
            "\nFRR vrrpd keeps its timers in whole centiseconds and truncates Skew_Time: at \
             10 ms a priority-100 backup waits 30 ms, not the RFC's 36.1 ms, so its link-down \
             and kill -9 takeovers come earlier by design, not by speed.\n",
        );
    }
    if !errors.is_empty() {
        md.push_str("\nRuns that failed (not in the figures):\n\n");
        for e in &errors {
            md.push_str(&format!("- {}\n", e.lines().next().unwrap_or("")));
        }
    }
    Section {
        id: "failover".into(),
        title: "3. Failover outage and overlap".into(),
        markdown: md,
        json: json!({
            "probe_interval_ms": ms(PROBE_EVERY), "repeats": repeats,
            "implementations": impls.iter().map(|i| i.name()).collect::<Vec<_>>(),
            "cells": cells, "failed_runs": errors,
        }),
        goals,
        timelines,
        ..Default::default()
    }
}

fn median_run<'a>(v: &[&'a Outcome]) -> Option<&'a Outcome> {
    let mut s: Vec<&Outcome> = v.to_vec();
    s.sort_by(|a, b| a.outage_ms.total_cmp(&b.outage_ms));
    s.get(s.len() / 2).copied()
}

/// One implementation's runs of a cell as a verdict side: `f` of each run, and the
/// failed runs filed by cause.
fn side(
    by: &BTreeMap<(Key, Impl), Vec<&Outcome>>,
    tally: &BTreeMap<(Key, Impl), Tally>,
    key: Key,
    imp: Impl,
    f: impl Fn(&Outcome) -> f64,
) -> Side {
    let mut s = Side::samples(
        by.get(&(key, imp))
            .map(|v| v.iter().map(|o| f(o)).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    for e in tally.get(&(key, imp)).map_or(&[][..], |t| &t.errors[..]) {
        s.record_error(e);
    }
    s
}

/// The cell's goals: vipd's outage against each baseline's (decision rows, at intervals
/// under 1 s, where the repeats are), its overlap and its outage against their limits.
fn cell_goals(
    by: &BTreeMap<(Key, Impl), Vec<&Outcome>>,
    tally: &BTreeMap<(Key, Impl), Tally>,
    key: Key,
    mdi: f64,
    impls: &[Impl],
    vipd: &VipdBinary,
) -> Vec<Goal> {
    let (interval, failure) = key;
    let label = format!("failover {} {}", interval_name(interval), failure.name());
    let not_run = (!vipd.ready).then(|| Side::not_run(vipd.why.clone()));
    let vside = |f: fn(&Outcome) -> f64| {
        not_run
            .clone()
            .unwrap_or_else(|| side(by, tally, key, Impl::Vipd, f))
    };
    let what = if failure == Failure::LinkDown {
        "outage + phase"
    } else {
        "outage"
    };
    let outage = vside(Outcome::outage_corrected);
    let mut goals = Vec::new();
    if interval < Duration::from_secs(1) {
        for &base in impls
            .iter()
            .filter(|i| **i != Impl::Vipd && failure.applies_to(**i))
        {
            goals.push(verdict::never_worse(
                &format!("{label}: vipd {what}"),
                base.name(),
                &outage,
                &side(by, tally, key, base, Outcome::outage_corrected),
                // The probe grid quantises both sides by one probe interval.
                Tolerance::abs(ms(PROBE_EVERY), "ms"),
                MIN_DECISION_REPEATS,
            ));
        }
    }
    // An overlap still open at the end of the window counts as its cap, at least.
    goals.push(verdict::at_most(
        &format!("{label}: vipd overlap (both routers answering) ≤ 0 ms"),
        &vside(|o| o.overlap_ms),
        0.0,
        "ms",
    ));
    match failure {
        Failure::LinkDown | Failure::Kill9 | Failure::Kill9Child => goals.push(verdict::at_most(
            &format!(
                "{label}: vipd outage ≤ Master_Down_Interval + 5 ms ({what}, {:.1} ms)",
                mdi + 5.0
            ),
            &outage,
            mdi + 5.0,
            "ms",
        )),
        Failure::Sigterm if interval == Duration::from_millis(10) => goals.push(verdict::at_most(
            &format!("{label}: vipd graceful handover ≤ 4 ms (outage)"),
            &outage,
            4.0,
            "ms",
        )),
        Failure::Sigterm => {}
    }
    goals
}
