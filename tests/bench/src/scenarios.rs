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

use super::{Goal, Options, Section, ms, retry_once, routers::VipdBinary};

/// Slack when comparing stalls: a flow sends every 10 ms, and TCP's back-off steps make
/// equal failovers differ by a few percent.
const SLACK_MS: f64 = 10.0;
const SLACK_RATIO: f64 = 1.05;

pub fn run(opts: &Options, vipd: &VipdBinary) -> Result<Section> {
    let Some(bin) = vipd.path.as_deref().filter(|_| vipd.ready) else {
        return Ok(Section {
            id: "scenarios".into(),
            title: "9. Scenarios: a NAT gateway and a /32 that moves".into(),
            markdown: format!("Not run: {}\n", vipd.why),
            goals: vec![Goal::unjudged(
                "NAT gateway: vipd's stalls never worse than keepalived's",
                vipd.why.clone(),
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
    let mut errors = Vec::new();
    // Retried and failed runs are listed with the errors below.
    let mut tally = (0, 0);
    let mut nat: BTreeMap<Daemon, Vec<Figure>> = BTreeMap::new();
    for &d in daemons {
        match retry_once(
            "scenarios",
            &format!("NAT gateway, {}", d.name()),
            &mut errors,
            &mut tally,
            || scenarios::nat_gateway(bin, d, kinds, watch),
        ) {
            Some(f) => {
                nat.insert(d, f);
            }
            None => continue,
        }
    }
    let route = if opts.quick {
        None
    } else {
        retry_once("scenarios", "/32 over BGP", &mut errors, &mut tally, || {
            scenarios::route32(bin)
        })
    };
    Ok(section(&nat, route.as_deref(), errors, opts.quick, watch))
}

fn section(
    nat: &BTreeMap<Daemon, Vec<Figure>>,
    route: Option<&[RouteEvent]>,
    errors: Vec<String>,
    quick: bool,
    watch: Duration,
) -> Section {
    let mut md = format!(
        "### Stateful NAT gateway\n\n\
         The recipe of `docs/recipes.md`: two routers masquerade a client LAN towards a \
         server, conntrackd (FTFW on a dedicated link) driven by the sync group's hooks, 100 \
         ms adverts. A TCP stream and a UDP flow echo every 10 ms through the gateway while \
         r1 fails each way and comes back (r1 restarted or its link restored, preempting). \
         Stall: the longest gap in each flow within {} s of the event, ms; new master: from \
         the event until the new master reports both instances master. One run per daemon.\n\n\
         | event | daemon | TCP stall | UDP stall | new master |\n|---|---|---|---|---|\n",
        watch.as_secs_f64()
    );
    let events: Vec<String> = nat
        .values()
        .next()
        .map(|f| f.iter().map(|x| x.what.clone()).collect())
        .unwrap_or_default();
    for what in &events {
        for (d, figures) in nat {
            if let Some(f) = figures.iter().find(|f| &f.what == what) {
                md.push_str(&format!(
                    "| {what} | {} | {:.0} | {:.0} | {:.0} |\n",
                    d.name(),
                    ms(f.tcp),
                    ms(f.udp),
                    ms(f.takeover)
                ));
            }
        }
    }
    let mut goals = Vec::new();
    match (nat.get(&Daemon::Vipd), nat.get(&Daemon::Keepalived)) {
        (Some(v), Some(k)) => {
            for kind in NAT_FAILURES {
                let what = format!("{kind} of r1");
                let (Some(fv), Some(fk)) = (
                    v.iter().find(|f| f.what == what),
                    k.iter().find(|f| f.what == what),
                ) else {
                    continue;
                };
                let no_worse = |a: Duration, b: Duration| ms(a) <= ms(b) * SLACK_RATIO + SLACK_MS;
                goals.push(Goal::judged(
                    format!("NAT gateway {kind}: vipd's TCP and UDP stalls never worse than keepalived's"),
                    no_worse(fv.tcp, fk.tcp) && no_worse(fv.udp, fk.udp),
                    format!(
                        "vipd TCP {:.0} ms, UDP {:.0} ms; keepalived TCP {:.0} ms, UDP {:.0} ms",
                        ms(fv.tcp),
                        ms(fv.udp),
                        ms(fk.tcp),
                        ms(fk.udp)
                    ),
                ));
            }
        }
        _ if quick => {}
        _ => goals.push(Goal::unjudged(
            "NAT gateway: vipd's stalls never worse than keepalived's",
            "a run failed (listed below)",
        )),
    }
    if let Some(events) = route {
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
        let detail = events
            .iter()
            .map(|e| format!("{} {:.0} ms", e.what, ms(e.rerouted)))
            .collect::<Vec<_>>()
            .join(", ");
        // The scenario itself fails unless the old master withdraws each time; here each
        // move must also have completed within its watch window.
        let followed =
            events.len() == 3 && events.iter().all(|e| e.rerouted < scenarios::ROUTE_WATCH);
        goals.push(Goal::judged(
            "/32 over BGP: the route follows every move of the master",
            followed,
            format!("re-routed after {detail}"),
        ));
    } else if !quick {
        goals.push(Goal::unjudged(
            "/32 over BGP: the route follows every move of the master",
            "the run failed (listed below)",
        ));
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
            "nat": nat.iter().map(|(d, f)| json!({
                "daemon": d.name(),
                "events": f.iter().map(|x| json!({
                    "event": x.what, "tcp_stall_ms": ms(x.tcp), "udp_stall_ms": ms(x.udp),
                    "new_master_ms": ms(x.takeover),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "route32": route.map(|r| r.iter().map(|e| json!({
                "event": e.what, "rerouted_ms": ms(e.rerouted), "stall_ms": ms(e.stall),
            })).collect::<Vec<_>>()),
            "failed_runs": errors,
        }),
        goals,
        ..Default::default()
    }
}
