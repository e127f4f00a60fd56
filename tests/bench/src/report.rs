//! `results.md` and `results.json`.

use std::{fmt::Write as _, time::Duration};

use serde_json::{Value, json};

use super::{Options, Section, routers::VipdBinary};

fn machine() -> (String, usize) {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    (kernel, cpus)
}

fn keepalived_version() -> String {
    std::process::Command::new("keepalived")
        .arg("--version")
        .output()
        .map(|o| {
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            all.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

pub fn markdown(
    sections: &[Section],
    opts: &Options,
    vipd: &VipdBinary,
    total: Duration,
) -> String {
    let (kernel, cpus) = machine();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# vipd benchmarks\n\n{} run in {:.0} s on Linux {kernel}, {cpus} CPU(s); baseline {}.\n\
         {}.\n\nRatios are the headline, absolute numbers context: every item runs vipd and \
         its baseline in the same run on the same lab, alternating.\n\n\
         Scheduling: vipd's event loop runs SCHED_RR at priority 1 (its default \
         `realtime_priority`); keepalived runs as its experts would, with `vrrp_rt_priority \
         {}` (the same) and without `-D`; FRR's daemons run at normal priority \
         (SCHED_OTHER), as the lab starts them. Verdicts (`tests/bench/src/verdict.rs`): \
         \"miss\" whenever vipd did not do the thing; \"n/a\" only for a fault of the \
         harness or a comparison with no baseline run, with its cause; \"never worse \
         than\" rows decide on ranges over at least {} runs a side, with the tolerance in \
         the goal's text.\n",
        if opts.quick { "Quick (smoke)" } else { "Full" },
        total.as_secs_f64(),
        keepalived_version(),
        vipd.describe(),
        super::routers::KEEPALIVED_RT_PRIORITY,
        super::verdict::MIN_DECISION_REPEATS,
    );
    let goals: Vec<_> = sections.iter().flat_map(|s| &s.goals).collect();
    if !goals.is_empty() {
        md.push_str("## Goals\n\n| goal | result | detail |\n|---|---|---|\n");
        for g in goals {
            let _ = writeln!(md, "| {} | {} | {} |", g.text, g.mark(), g.detail);
        }
        md.push('\n');
    }
    for s in sections {
        let _ = writeln!(md, "## {}\n", s.title);
        if let Some(e) = &s.error {
            let _ = writeln!(md, "**Failed:** {e}\n");
        }
        md.push_str(&s.markdown);
        let _ = writeln!(md, "\n_{:.0} s_\n", s.seconds);
    }
    if sections.iter().any(|s| !s.timelines.is_empty()) {
        md.push_str("Failover timelines: `failover.svg`.\n");
    }
    md
}

pub fn json(sections: &[Section], opts: &Options, vipd: &VipdBinary, total: Duration) -> Value {
    let (kernel, cpus) = machine();
    let mut items = serde_json::Map::new();
    for s in sections {
        items.insert(
            s.id.clone(),
            json!({
                "title": s.title, "seconds": s.seconds, "error": s.error, "results": s.json,
                "goals": s.goals.iter().map(|g| json!({
                    "goal": g.text, "met": g.met, "detail": g.detail,
                })).collect::<Vec<_>>(),
            }),
        );
    }
    json!({
        "quick": opts.quick,
        "kernel": kernel,
        "cpus": cpus,
        "keepalived": keepalived_version(),
        "vipd": { "path": vipd.path, "ran": vipd.ready, "note": vipd.why },
        "total_seconds": total.as_secs_f64(),
        "items": items,
    })
}
