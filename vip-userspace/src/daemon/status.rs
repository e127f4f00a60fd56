//! The status snapshot of the running daemon.

use std::net::IpAddr;

use vip_common::{Counters, FAMILY_IPV4};

use super::{Daemon, clock};
use crate::{
    control::{InstanceStatus, Status, TransitionStatus, status::ConflictStatus},
    net::link::fmt_mac,
    vrrp::{Family, State},
};

pub(super) fn snapshot(d: &Daemon) -> Status {
    let now = clock::now();
    let mut instances = Vec::new();
    for g in &d.groups {
        for (i, m) in g.members.iter().enumerate() {
            let Some(machine) = g.sync.member(i) else {
                continue;
            };
            let last_transition = machine
                .last_transition()
                .map(|(at, reason)| TransitionStatus {
                    to: machine.state().to_string(),
                    reason: reason.to_string(),
                    ago_ms: now.saturating_duration_since(*at).as_millis() as u64,
                });
            instances.push(InstanceStatus {
                name: m.cfg.name.clone(),
                interface: m.cfg.interface.clone(),
                vrid: m.cfg.vrid,
                family: match m.cfg.family {
                    Family::Ipv4 => "ipv4".into(),
                    Family::Ipv6 => "ipv6".into(),
                },
                version: m.cfg.version.number(),
                state: machine.state().to_string(),
                priority: machine.effective_priority(),
                configured_priority: m.cfg.priority,
                master: match machine.state() {
                    State::Master => Some(m.src.to_string()),
                    _ => machine.master_address().map(|a| a.to_string()),
                },
                master_adver_interval_ms: machine
                    .master_adver_interval()
                    .as_duration()
                    .as_secs_f64()
                    * 1000.0,
                master_down_interval_ms: machine.master_down_interval().as_secs_f64() * 1000.0,
                last_transition,
                transitions: m.transitions,
                adverts_sent: m.sent,
                adverts_received: m.received,
                adverts_invalid: m.invalid,
                vips: m.cfg.vips.iter().map(|v| v.net.to_string()).collect(),
                vmac: m.cfg.vmac.then(|| fmt_mac(&m.cfg.vmac_address())),
                slot: g.slot,
                sync_group: m.cfg.sync_group.clone(),
                tracking: m.track.describe(&m.cfg),
            });
        }
    }
    let counters = d.ctx.dp.maps().counters().unwrap_or_default();
    let xdp = Counters::NAMES
        .iter()
        .zip(counters.values())
        .map(|(n, v)| ((*n).to_owned(), v))
        .collect();
    let now_ns = clock::nanos(now);
    let conflicts = d
        .ctx
        .dp
        .maps()
        .conflicts()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, c)| ConflictStatus {
            vip: if k.family == FAMILY_IPV4 {
                IpAddr::from([k.addr[0], k.addr[1], k.addr[2], k.addr[3]]).to_string()
            } else {
                IpAddr::from(k.addr).to_string()
            },
            mac: fmt_mac(&c.mac),
            count: c.count,
            last_seen_ago_ms: now_ns.saturating_sub(c.last_seen_ns) / 1_000_000,
        })
        .collect();
    Status {
        router_id: d.config.global.router_id.clone(),
        pid: std::process::id(),
        uptime_ms: d.started.elapsed().as_millis() as u64,
        pin_path: d.config.global.pin_path.display().to_string(),
        instances,
        xdp,
        conflicts,
    }
}
