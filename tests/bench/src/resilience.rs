//! Item 5: a 10 ms pair under a forged or invalid VRRP flood.
//!
//! r1 (priority 200, master) and r2 (priority 100) at 10 ms adverts; the attacker sends a
//! bounded, rate-limited flood of adverts for the pair's VRID to the VRRP group:
//! - `bad checksum`: priority 254, corrupted checksum (every router must discard it);
//! - `unknown VRID`: well-formed adverts for a VRID nobody runs (discard, at a CPU cost);
//! - `forged peer`: well-formed priority-254 adverts from the attacker's own address.
//!   RFC 5798 routers accept them (keepalived in multicast mode has no source filter:
//!   its master steps down); vipd is configured with `allowed_peers` = the other router,
//!   so its XDP program drops them before the daemon sees them. keepalived also runs with
//!   its own documented defence, unicast peers and `check_unicast_src`; to reach a router
//!   that no longer listens to the group, this flood alternates the group with unicast
//!   copies addressed to each router.
//!
//! Per flood: **transitions**, state changes on both routers from just before the flood
//! until they are back to r1 master / r2 backup (any is false: no real router failed);
//! **client gap**, the longest run of unanswered ARP probes (1 ms) for the VIP during and
//! just after the flood; **daemon CPU**, both routers' daemon processes over the flood,
//! in % of one core.

use std::{net::IpAddr, time::Duration};

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use super::{
    Options, Section,
    flood::{Flood, Flooder},
    ms,
    procstat::CpuWindow,
    routers::{Impl, Router, RouterSpec, State, VipdBinary, start, wait_state},
    stats::{Summary, cell_opt, json_opt},
    verdict::{self, Side, harness},
};
use vip_tests::{
    lab::{Lab, Method},
    wire::{advert_v3, advert_v3_to},
};

const INTERVAL: Duration = Duration::from_millis(10);
const VRID: u8 = 51;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    BadChecksum,
    UnknownVrid,
    ForgedPeer,
}

const KINDS: [Kind; 3] = [Kind::BadChecksum, Kind::UnknownVrid, Kind::ForgedPeer];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::BadChecksum => "bad checksum",
            Kind::UnknownVrid => "unknown VRID",
            Kind::ForgedPeer => "forged peer (priority 254)",
        }
    }
}

#[derive(Clone, Debug)]
struct Run {
    imp: Impl,
    kind: Kind,
    repeat: usize,
    frames: u64,
    seconds: f64,
    transitions: u64,
    gap_ms: f64,
    overlap_ms: f64,
    cpu_percent: f64,
}

pub fn run(opts: &Options, vipd: &VipdBinary) -> Result<Section> {
    let repeats = opts.repeats(2, 1);
    let (rate, time) = if opts.quick {
        (20_000, Duration::from_millis(500))
    } else {
        (50_000, Duration::from_secs(3))
    };
    let impls = vipd.with(&[Impl::Keepalived, Impl::KeepalivedUnicast]);
    let mut runs = Vec::new();
    let mut errors = Vec::new();
    // vipd's failed pairs, for the verdict: a pair that does not settle is vipd's miss.
    let mut vipd_side = if vipd.ready {
        Side::default()
    } else {
        Side::not_run(vipd.why.clone())
    };
    for repeat in 0..repeats {
        for k in 0..impls.len() {
            let imp = impls[(k + repeat) % impls.len()];
            match pair(imp, repeat, rate, time, vipd, &opts.out) {
                Ok(mut r) => runs.append(&mut r),
                Err(e) => {
                    eprintln!("bench resilience: {} repeat {repeat}: {e:#}", imp.name());
                    errors.push(format!("{} repeat {repeat}: {e:#}", imp.name()));
                    if imp == Impl::Vipd {
                        vipd_side.record_error(&e);
                    }
                }
            }
        }
    }
    vipd_side.samples = runs
        .iter()
        .filter(|r| r.imp == Impl::Vipd)
        .map(|r| r.transitions as f64)
        .collect();
    Ok(section(
        &runs, &impls, &vipd_side, repeats, rate, time, errors,
    ))
}

fn pair(
    imp: Impl,
    repeat: usize,
    rate: u64,
    time: Duration,
    vipd: &VipdBinary,
    out: &std::path::Path,
) -> Result<Vec<Run>> {
    let lab = Lab::builder()
        .routers(2)
        .client()
        .attacker()
        .build()
        .map_err(harness)?;
    let (r1n, r2n, cl, at) = (lab.router(1), lab.router(2), lab.client(), lab.attacker());
    let vip: IpAddr = "192.0.2.1".parse()?;
    let spec = |priority, peer: IpAddr| {
        let mut s = RouterSpec::new(priority, INTERVAL, vec![vip]);
        s.allowed_peers = vec![peer];
        s
    };
    let r1 = start(imp, &lab, r1n, &spec(200, IpAddr::V4(r2n.ipv4)), vipd)?;
    let r2 = start(imp, &lab, r2n, &spec(100, IpAddr::V4(r1n.ipv4)), vipd)?;
    let converged = |timeout| -> Result<()> {
        wait_state(r1.as_ref(), State::Master, timeout)
            .and_then(|_| wait_state(r2.as_ref(), State::Backup, timeout))
            .map(drop)
            .with_context(|| format!("r1's log:\n{}", tail(&r1.log(), 15)))
    };
    converged(Duration::from_secs(10))?;
    let vips = [match vip {
        IpAddr::V4(v) => v,
        IpAddr::V6(_) => unreachable!("IPv4 VIP"),
    }];
    let mut runs = Vec::new();
    for i in 0..KINDS.len() {
        let kind = KINDS[(i + repeat) % KINDS.len()];
        let frame = match kind {
            Kind::BadChecksum => {
                let mut f = advert_v3(at.mac, at.ipv4, VRID, 254, 1, &vips);
                let last = f.len() - 1;
                f[last] ^= 0x5a;
                f
            }
            Kind::UnknownVrid => advert_v3(at.mac, at.ipv4, 99, 254, 1, &vips),
            Kind::ForgedPeer => advert_v3(at.mac, at.ipv4, VRID, 254, 1, &vips),
        };
        let mut frames = vec![frame.clone()];
        if kind == Kind::ForgedPeer {
            for r in [r1n, r2n] {
                frames.push(advert_v3_to(
                    (r.mac, r.ipv4),
                    at.mac,
                    at.ipv4,
                    VRID,
                    254,
                    1,
                    &vips,
                ));
            }
        }
        converged(Duration::from_secs(10))?;
        // Quiet time so nothing from the previous flood is still being handled.
        std::thread::sleep(Duration::from_millis(300));
        let count = |r: &dyn Router| r.transitions();
        let before = count(r1.as_ref())? + count(r2.as_ref())?;
        let mut pids = r1.pids();
        pids.extend(r2.pids());
        let probe = lab.probe(
            cl,
            Method::Resolve,
            vip,
            Duration::from_millis(1),
            time + Duration::from_secs(2),
            &[],
        )?;
        let cpu = CpuWindow::start(pids);
        let sent = Flooder::start(Flood {
            ns: at.ns.clone(),
            ifname: at.ifname.clone(),
            frames,
            rate,
            max_frames: (rate as f64 * time.as_secs_f64()) as u64,
            max_time: time + Duration::from_secs(1),
        })?
        .join()?;
        let cpu_percent = cpu.percent();
        // Long enough for a router that stepped down to come back (Master_Down_Interval).
        std::thread::sleep(Duration::from_millis(300));
        let probe = probe.stop()?;
        converged(Duration::from_secs(10))?;
        let after = count(r1.as_ref())? + count(r2.as_ref())?;
        if after < before {
            bail!("transition count went backwards ({before} → {after})");
        }
        let r = Run {
            imp,
            kind,
            repeat,
            frames: sent.frames,
            seconds: sent.seconds,
            transitions: after - before,
            gap_ms: ms(probe.longest_gap().span),
            overlap_ms: ms(probe.overlap_total()),
            cpu_percent,
        };
        eprintln!(
            "bench resilience: {} {} repeat {repeat}: {} frames in {:.2} s, {} transitions, \
             gap {:.1} ms, overlap {:.1} ms, CPU {:.1} %",
            imp.name(),
            kind.name(),
            r.frames,
            r.seconds,
            r.transitions,
            r.gap_ms,
            r.overlap_ms,
            r.cpu_percent
        );
        runs.push(r);
    }
    // The daemons' own account of the floods, for whoever wants to know why they flapped:
    // the last lines only (a daemon that logs every forged advert writes megabytes).
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs)?;
    for r in [&r1, &r2] {
        let log = r.log();
        let lines: Vec<&str> = log.lines().collect();
        let keep = lines.len().min(400);
        std::fs::write(
            logs.join(format!(
                "resilience-{}-{repeat}-{}.log",
                imp.name(),
                r.node()
            )),
            format!(
                "[{} earlier lines not kept]\n{}\n",
                lines.len() - keep,
                lines[lines.len() - keep..].join("\n")
            ),
        )?;
    }
    Ok(runs)
}

fn section(
    runs: &[Run],
    impls: &[Impl],
    vipd_side: &Side,
    repeats: usize,
    rate: u64,
    time: Duration,
    errors: Vec<String>,
) -> Section {
    let mut md = format!(
        "A 10 ms pair (r1 200 master, r2 100) while the attacker floods the VRRP group with \
         {rate} frames/s for {:.1} s (bounded: {} frames). {repeats} repeat(s), \
         implementations alternating; median (min–max). Transitions: state changes on both \
         routers until they are back to r1 master (every one is false). Client gap: longest \
         run of unanswered ARP probes (every 1 ms). CPU: both routers' daemons, % of one \
         core over the flood.\n\n\
         | flood | implementation | transitions | client gap (ms) | overlap (ms) | daemon CPU (%) |\n\
         |---|---|---|---|---|---|\n",
        time.as_secs_f64(),
        (rate as f64 * time.as_secs_f64()) as u64
    );
    let mut rows = Vec::new();
    for kind in KINDS {
        for &imp in impls {
            let v: Vec<&Run> = runs
                .iter()
                .filter(|r| r.imp == imp && r.kind == kind)
                .collect();
            let s = |f: fn(&Run) -> f64| Summary::of(&v.iter().map(|r| f(r)).collect::<Vec<_>>());
            let (t, g, o, c) = (
                s(|r| r.transitions as f64),
                s(|r| r.gap_ms),
                s(|r| r.overlap_ms),
                s(|r| r.cpu_percent),
            );
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                kind.name(),
                imp.name(),
                cell_opt(t, 0),
                cell_opt(g, 1),
                cell_opt(o, 1),
                cell_opt(c, 1)
            ));
            rows.push(json!({
                "flood": kind.name(), "implementation": imp.name(),
                "transitions": json_opt(t), "client_gap_ms": json_opt(g),
                "overlap_ms": json_opt(o), "daemon_cpu_percent": json_opt(c),
                "runs": v.iter().map(|r| json!({
                    "repeat": r.repeat, "frames": r.frames, "seconds": r.seconds,
                    "transitions": r.transitions, "client_gap_ms": r.gap_ms,
                    "overlap_ms": r.overlap_ms, "daemon_cpu_percent": r.cpu_percent,
                })).collect::<Vec<_>>(),
            }));
        }
    }
    // Per flood run: its transitions, 0 allowed.
    let goal = verdict::at_most(
        &format!(
            "resilience: false transitions of the vipd pair per flood ≤ 0 (every flood, \
             {rate} frames/s, {} ms adverts)",
            INTERVAL.as_millis()
        ),
        vipd_side,
        0.0,
        "transitions",
    );
    if !errors.is_empty() {
        md.push_str("\nRuns that failed (not in the figures):\n\n");
        for e in &errors {
            md.push_str(&format!("- {}\n", e.lines().next().unwrap_or("")));
        }
    }
    Section {
        id: "resilience".into(),
        title: "5. Resilience to forged and invalid VRRP".into(),
        markdown: md,
        json: json!({
            "advert_interval_ms": ms(INTERVAL), "rate_per_s": rate,
            "flood_seconds": time.as_secs_f64(), "repeats": repeats,
            "rows": rows, "failed": errors,
        }),
        goals: vec![goal],
        ..Default::default()
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
