//! `cargo xtask bench`: vipd next to its baselines, measured in the same run on the same
//! machine, alternating, with min / median / max over repeats and ratios as the headline.
//!
//! | item | module | what |
//! |---|---|---|
//! | 1 | [`arp_rate`] | ARP answers/s over a veth: XDP responder vs kernel vs MAC-swap ceiling |
//! | 2 | [`cost`] | ns per frame in `BPF_PROG_TEST_RUN` for each verdict |
//! | 3 | [`failover`] | client outage and overlap on link down, kill -9, SIGTERM |
//! | 4 | [`takeover`] | takeover time vs number of VIPs |
//! | 5 | [`resilience`] | forged / invalid VRRP floods against a 10 ms pair |
//! | 6 | [`scale`] | 255 VRIDs × 4 interfaces: CPU (daemons, softirq, XDP) and memory (process, BPF) |
//! | 7 | [`traffic`] | TCP and ICMP streams through the VIP while the master fails, VMAC off and on |
//! | 8 | [`bfd`] | "vipd + BFD": link-down failover, a frozen master, load and garbage |
//! | 9 | [`scenarios`] | a NAT gateway's flows per failure kind (vs keepalived), a /32 over BGP |
//! | 10 | [`lb_rate`] | new flows/s through a load-balancing director: vipd's XDP vs nftables jhash DNAT |
//! | 11 | [`lb_failover`] | connections through a director's kill -9: vipd's pair vs keepalived + nftables |
//! | 12 | [`active_active`] | each client's outage when one of two routers fails: a shared VIP vs one master (vipd, keepalived) |
//!
//! Every item builds its own namespaces (the lab harness, or a private veth pair for the
//! ARP rate) and removes them when it ends, panics included. Every flood is bounded in
//! frames and time. Results land in `target/bench/` as `results.json`, `results.md` and
//! `failover.svg`.

pub mod active_active;
pub mod arp_rate;
pub mod bfd;
pub mod bpfmem;
pub mod cost;
pub mod failover;
pub mod flood;
pub mod lb_failover;
pub mod lb_rate;
pub mod objects;
pub mod procstat;
pub mod readme;
pub mod report;
pub mod resilience;
pub mod routers;
pub mod scale;
pub mod scenarios;
pub mod stats;
pub mod svg;
pub mod sweep;
pub mod takeover;
pub mod traffic;
pub mod verdict;

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use serde_json::Value;

/// The items, in the order they run and are reported.
pub const ITEMS: [&str; 12] = [
    "arp",
    "cost",
    "failover",
    "takeover",
    "resilience",
    "scale",
    "traffic",
    "bfd",
    "scenarios",
    "lb",
    "lb-failover",
    "active-active",
];

#[derive(Clone, Debug)]
pub struct Options {
    /// A few seconds per item: checks the machinery, not the machine.
    pub quick: bool,
    /// Items to run (all when empty).
    pub only: Vec<String>,
    /// The vipd binary; `None` or one without `run` leaves the vipd variants out.
    pub vipd: Option<PathBuf>,
    pub out: PathBuf,
    /// Overrides every item's repeat count.
    pub repeats: Option<usize>,
}

impl Options {
    pub fn repeats(&self, full: usize, quick: usize) -> usize {
        self.repeats
            .unwrap_or(if self.quick { quick } else { full })
            .max(1)
    }

    pub fn wants(&self, item: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == item)
    }
}

/// A goal from the issue and whether this run met it.
#[derive(Clone, Debug)]
pub struct Goal {
    pub text: String,
    /// `None`: could not be judged (a variant did not run); the reason is in `detail`.
    pub met: Option<bool>,
    pub detail: String,
}

impl Goal {
    pub fn judged(text: impl Into<String>, met: bool, detail: impl Into<String>) -> Goal {
        Goal {
            text: text.into(),
            met: Some(met),
            detail: detail.into(),
        }
    }

    pub fn unjudged(text: impl Into<String>, why: impl Into<String>) -> Goal {
        Goal {
            text: text.into(),
            met: None,
            detail: why.into(),
        }
    }

    pub fn mark(&self) -> &'static str {
        match self.met {
            Some(true) => "pass",
            Some(false) => "miss",
            None => "n/a",
        }
    }
}

/// What one item produced.
#[derive(Clone, Debug, Default)]
pub struct Section {
    pub id: String,
    pub title: String,
    /// Markdown: how it was measured and the tables.
    pub markdown: String,
    pub json: Value,
    pub goals: Vec<Goal>,
    /// Failover timelines for the SVG (item 3 only).
    pub timelines: Vec<svg::Timeline>,
    pub seconds: f64,
    pub error: Option<String>,
}

static SCRATCH: AtomicU32 = AtomicU32::new(9000);

/// A namespace / pin-directory prefix the lab harness recognises (`vt<pid>x<n>`), so a
/// bench killed half-way is swept by the next lab like a dead test's leftovers. Numbered
/// from 9000 to stay clear of the labs' own counter.
pub fn scratch_prefix() -> String {
    format!(
        "vt{}x{}",
        std::process::id(),
        SCRATCH.fetch_add(1, Ordering::Relaxed)
    )
}

/// What a run produced: the markdown, and the items that could not be measured at all
/// (goals missed are results, not failures; an item that errored is).
pub struct Outcome {
    pub markdown: String,
    pub failed_items: Vec<String>,
}

/// Runs the selected items and writes the three output files.
pub fn run(opts: &Options) -> anyhow::Result<Outcome> {
    vip_tests::require_root();
    std::fs::create_dir_all(&opts.out)?;
    let vipd = routers::VipdBinary::probe(opts.vipd.as_deref());
    eprintln!("bench: {}", vipd.describe());
    let started = Instant::now();
    let mut sections = Vec::new();
    for item in ITEMS.iter().filter(|i| opts.wants(i)) {
        eprintln!("bench: --- {item} ---");
        // Whatever ran before (a previous item's namespaces being torn down) settles first.
        procstat::wait_for_quiet(0.5, Duration::from_secs(10));
        let t0 = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match *item {
            "arp" => arp_rate::run(opts),
            "cost" => cost::run(opts),
            "failover" => failover::run(opts, &vipd),
            "takeover" => takeover::run(opts, &vipd),
            "resilience" => resilience::run(opts, &vipd),
            "scale" => scale::run(opts, &vipd),
            "traffic" => traffic::run(opts, &vipd),
            "bfd" => bfd::run(opts, &vipd),
            "scenarios" => scenarios::run(opts, &vipd),
            "lb" => lb_rate::run(opts),
            "lb-failover" => lb_failover::run(opts, &vipd),
            "active-active" => active_active::run(opts, &vipd),
            _ => unreachable!("item list and dispatch agree"),
        }));
        let mut section = match outcome {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => failed(item, format!("{e:#}")),
            Err(p) => failed(
                item,
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into()),
            ),
        };
        section.seconds = t0.elapsed().as_secs_f64();
        if let Some(e) = &section.error {
            eprintln!("bench: {item} failed: {e}");
        }
        eprintln!("bench: {item} took {:.1} s", section.seconds);
        sections.push(section);
    }
    let total = started.elapsed();
    let md = report::markdown(&sections, opts, &vipd, total);
    std::fs::write(opts.out.join("results.md"), &md)?;
    let json = report::json(&sections, opts, &vipd, total);
    std::fs::write(
        opts.out.join("results.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    let timelines: Vec<&svg::Timeline> = sections.iter().flat_map(|s| &s.timelines).collect();
    std::fs::write(opts.out.join("failover.svg"), svg::render(&timelines))?;
    Ok(Outcome {
        markdown: md,
        failed_items: sections
            .iter()
            .filter(|s| s.error.is_some())
            .map(|s| s.id.clone())
            .collect(),
    })
}

fn failed(item: &str, error: String) -> Section {
    Section {
        id: item.to_string(),
        title: item.to_string(),
        error: Some(error),
        ..Default::default()
    }
}

/// One attempt at a measurement and, when the harness failed it ([`verdict::HarnessFault`]),
/// one retry: a lost capture or a slow lab is not the implementation's doing, but a run
/// in which the implementation itself did not do the thing is never retried away. Every
/// failure goes to `errors` (and the log, under `item`) and counts in `tally` as
/// (retried, failed); the last error is returned for the goal's verdict.
pub fn retry_once<T>(
    item: &str,
    what: &str,
    errors: &mut Vec<String>,
    tally: &mut (usize, usize),
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let first = f().or_else(|e| {
        if !verdict::is_harness(&e) {
            return Err(e);
        }
        eprintln!("bench {item}: {what}: {e:#}; retrying");
        errors.push(format!("{what} (retried): {e:#}"));
        tally.0 += 1;
        f()
    });
    first.inspect_err(|e| {
        eprintln!("bench {item}: {what}: {e:#}");
        errors.push(format!("{what}: {e:#}"));
        tally.1 += 1;
    })
}

/// Milliseconds as f64, the unit of every time in the tables.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// RFC 5798 Master_Down_Interval of a backup with `priority` for `interval`.
pub fn master_down(interval: Duration, priority: u8) -> Duration {
    let skew = interval * (256 - priority as u32) / 256;
    interval * 3 + skew
}
