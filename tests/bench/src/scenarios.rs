//! Item 9: the field's scenarios, as their users feel them (`vip_tests::scenarios`, the
//! recipes of `docs/recipes.md`):
//! - a stateful NAT gateway pair (nftables, conntrackd driven by the sync group's hooks):
//!   the stall of a TCP stream and a UDP flow through it per failure kind of the master,
//!   for vipd and for keepalived in its place;
//! - a /32 that moves: vipd announces the VIP as a host route while master, bgpd
//!   redistributes it, a third router follows; the time until it routes via the new
//!   master and the service's stall seen from behind it.

use std::{collections::BTreeMap, time::Duration};

use anyhow::Result;
use serde_json::json;
use vip_tests::scenarios::{self, Daemon, Figure, NAT_FAILURES, RouteEvent};

use super::{
    Options, Section, ms, retry_once,
    routers::VipdBinary,
    stats::{Summary, cell_opt},
    verdict::{self, MIN_DECISION_REPEATS, Side, Tolerance},
};

/// A NAT run's figure of one event.
type Pick = fn(&Figure) -> Duration;

/// The /32's events and their limits (ms): the moves vipd makes itself within an advert
/// cycle or two; a link cut, after which r1's withdrawal cannot leave r1, within the BGP
/// hold time of the recipe (`timers bgp 1 3`) plus the same allowance.
const ROUTE_LIMITS: [(&str, f64, &str); 3] = [
    ("SIGTERM of r1", 500.0, "≤ 500 ms"),
    ("r1 back (preempts)", 500.0, "≤ 500 ms"),
    (
        "link cut of r1",
        3500.0,
        "≤ 3500 ms (BGP hold time 3 s + 500 ms)",
    ),
];

pub fn run(opts: &Options, vipd: &VipdBinary) -> Result<Section> {
    let Some(bin) = vipd.path.as_deref().filter(|_| vipd.ready) else {
        let not_run = Side::not_run(vipd.why.clone());
        return Ok(Section {
            id: "scenarios".into(),
            title: "9. Scenarios: a NAT gateway and a /32 that moves".into(),
            markdown: format!("Not run: {}\n", vipd.why),
            goals: vec![verdict::at_most(
                "NAT gateway: vipd's stalls",
                &not_run,
                0.0,
                "ms",
            )],
            ..Default::default()
        });
    };
    // Each run is a minute of fixed watch windows: one per daemon. The smoke run keeps
    // vipd's NAT run through one kill -9 with shorter windows.
    let (daemons, kinds, watch): (&[Daemon], &[&str], Duration) = if opts.quick {
        (&[Daemon::Vipd], &["kill -9"], Duration::from_millis(1500))
    } else {
        (
            &[Daemon::Vipd, Daemon::Keepalived],
            &NAT_FAILURES,
            scenarios::WATCH,
        )
    };
    // The NAT comparisons are decision rows: MIN_DECISION_REPEATS runs a daemon,
    // alternating.
    let repeats = opts.repeats(MIN_DECISION_REPEATS, 1);
    let mut errors = Vec::new();
    // Retried and failed runs are listed with the errors below.
    let mut tally = (0, 0);
    let mut nat: BTreeMap<Daemon, Vec<Vec<Figure>>> = BTreeMap::new();
    let mut nat_failed: BTreeMap<Daemon, Vec<anyhow::Error>> = BTreeMap::new();
    for repeat in 0..repeats {
        for k in 0..daemons.len() {
            let d = daemons[(k + repeat) % daemons.len()];
            match retry_once(
                "scenarios",
                &format!("NAT gateway, {}, repeat {repeat}", d.name()),
                &mut errors,
                &mut tally,
                || scenarios::nat_gateway(bin, d, kinds, watch),
            ) {
                Ok(f) => nat.entry(d).or_default().push(f),
                Err(e) => nat_failed.entry(d).or_default().push(e),
            }
        }
    }
    let route = (!opts.quick).then(|| {
        retry_once("scenarios", "/32 over BGP", &mut errors, &mut tally, || {
            scenarios::route32(bin)
        })
    });
    Ok(section(
        &nat,
        &nat_failed,
        route.as_ref(),
        errors,
        opts.quick,
        watch,
        repeats,
    ))
}

/// One daemon's figure for `what` over its runs, failed runs filed by cause.
fn nat_side(
    nat: &BTreeMap<Daemon, Vec<Vec<Figure>>>,
    failed: &BTreeMap<Daemon, Vec<anyhow::Error>>,
    d: Daemon,
    what: &str,
    pick: Pick,
) -> Side {
    let mut s = Side::default();
    for run in nat.get(&d).map_or(&[][..], |v| &v[..]) {
        match run.iter().find(|f| f.what == what) {
            // A link cut is corrected for its phase in the advert cycle, as in item 3.
            Some(f) if what.starts_with("link cut") => s.samples.push(ms(pick(f)) + f.phase_ms),
            Some(f) => s.samples.push(ms(pick(f))),
            None => s.failed.push(format!("no \"{what}\" event in the run")),
        }
    }
    for e in failed.get(&d).map_or(&[][..], |v| &v[..]) {
        s.record_error(e);
    }
    s
}

fn section(
    nat: &BTreeMap<Daemon, Vec<Vec<Figure>>>,
    nat_failed: &BTreeMap<Daemon, Vec<anyhow::Error>>,
    route: Option<&Result<Vec<RouteEvent>>>,
    errors: Vec<String>,
    quick: bool,
    watch: Duration,
    repeats: usize,
) -> Section {
    let mut md = format!(
        "### Stateful NAT gateway\n\n\
         The recipe of `docs/recipes.md`: two routers masquerade a client LAN towards a \
         server, conntrackd (FTFW on a dedicated link) driven by the sync group's hooks, 100 \
         ms adverts. A TCP stream and a UDP flow echo every 10 ms through the gateway while \
         r1 fails each way and comes back (r1 restarted or its link restored, preempting). \
         Stall: the longest gap in each flow within {} s of the event, ms; new master: from \
         the event until the new master reports both instances master. {repeats} run(s) \
         per daemon, alternating; median (min–max). A failed run counts against its \
         daemon: the scenario fails unless both flows survive every event. The goals add \
         to a link cut's stalls the time from r1's last advert to the cut (item 3's phase; \
         the table does not).\n\n\
         | event | daemon | TCP stall | UDP stall | new master |\n|---|---|---|---|---|\n",
        watch.as_secs_f64()
    );
    let events: Vec<String> = nat
        .values()
        .flatten()
        .next()
        .map(|f| f.iter().map(|x| x.what.clone()).collect())
        .unwrap_or_default();
    let summary = |d: Daemon, what: &str, pick: Pick| {
        Summary::of(&nat_side(nat, nat_failed, d, what, pick).samples)
    };
    for what in &events {
        for d in nat.keys() {
            md.push_str(&format!(
                "| {what} | {} | {} | {} | {} |\n",
                d.name(),
                cell_opt(summary(*d, what, |f| f.tcp), 0),
                cell_opt(summary(*d, what, |f| f.udp), 0),
                cell_opt(summary(*d, what, |f| f.takeover), 0),
            ));
        }
    }
    let mut goals = Vec::new();
    if !quick {
        // TCP's back-off steps make equal failovers differ by a few percent; a flow sends
        // every 10 ms.
        let tol = Tolerance {
            abs: 10.0,
            rel: 0.05,
            unit: "ms",
        };
        for kind in NAT_FAILURES {
            let what = format!("{kind} of r1");
            let phase = if kind == "link cut" { " + phase" } else { "" };
            for (flow, pick) in [("TCP", (|f: &Figure| f.tcp) as Pick), ("UDP", |f| f.udp)] {
                goals.push(verdict::never_worse(
                    &format!("NAT gateway {kind}: vipd's {flow} stall{phase}"),
                    "keepalived",
                    &nat_side(nat, nat_failed, Daemon::Vipd, &what, pick),
                    &nat_side(nat, nat_failed, Daemon::Keepalived, &what, pick),
                    tol,
                    MIN_DECISION_REPEATS,
                ));
            }
        }
    }
    if let Some(Ok(events)) = route {
        md.push_str(&format!(
            "\n### A /32 that moves\n\n\
             vipd installs its VIP as a protocol-112 host route while master; FRR's bgpd on \
             each router redistributes it; a third router follows the master, and a host \
             behind it pings the service every 10 ms. Re-routed: from the event until the \
             third router routes via the new master; stall: the host's longest time without \
             an answer within {} s of it, ms.\n\n\
             | event | re-routed | service stall |\n|---|---|---|\n",
            scenarios::ROUTE_WATCH.as_secs()
        ));
        for e in events {
            md.push_str(&format!(
                "| {} | {:.0} | {:.0} |\n",
                e.what,
                ms(e.rerouted),
                ms(e.stall)
            ));
        }
    }
    if let Some(route) = route {
        for (what, limit, stated) in ROUTE_LIMITS {
            let mut side = Side::default();
            match route {
                Ok(events) => match events.iter().find(|e| e.what == what) {
                    Some(e) => side.samples.push(ms(e.rerouted)),
                    None => side.failed.push(format!("no \"{what}\" event")),
                },
                // The scenario fails unless the old master withdraws each time.
                Err(e) => side.record_error(e),
            }
            goals.push(verdict::at_most(
                &format!("/32 over BGP, {what}: the route follows the master {stated}"),
                &side,
                limit,
                "ms",
            ));
        }
    }
    if !errors.is_empty() {
        md.push_str("\nRuns that failed (not in the figures):\n\n");
        for e in &errors {
            md.push_str(&format!("- {}\n", e.lines().next().unwrap_or("")));
        }
    }
    Section {
        id: "scenarios".into(),
        title: "9. Scenarios: a NAT gateway and a /32 that moves".into(),
        markdown: md,
        json: json!({
            "repeats": repeats,
            "nat": nat.iter().map(|(d, runs)| json!({
                "daemon": d.name(),
                "runs": runs.iter().map(|f| f.iter().map(|x| json!({
                    "event": x.what, "tcp_stall_ms": ms(x.tcp), "udp_stall_ms": ms(x.udp),
                    "new_master_ms": ms(x.takeover), "phase_ms": x.phase_ms,
                })).collect::<Vec<_>>()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "route32": route.and_then(|r| r.as_ref().ok()).map(|r| r.iter().map(|e| json!({
                "event": e.what, "rerouted_ms": ms(e.rerouted), "stall_ms": ms(e.stall),
            })).collect::<Vec<_>>()),
            "failed_runs": errors,
        }),
        goals,
        ..Default::default()
    }
}
