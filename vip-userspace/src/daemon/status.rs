//! The loop's part of a status snapshot: the instances, cheap to copy. The XDP counters
//! and conflict records are read by the control server off the loop (`serve`).

use std::{collections::BTreeMap, net::IpAddr};

use super::{Daemon, clock};
use crate::{
    control::{
        BfdSessionStatus, BfdSummary, InstanceStatus, Status, TrackStatus, TransitionStatus,
        status::{
            DemotionStatus, ProcessWatchStatus, ReloadStatus, SharedGroupStatus, SharedVipStatus,
            VrrpSocketStatus,
        },
    },
    net::link::fmt_mac,
    vrrp::{
        Family, State, admission::Rejection, bfd::packet::Diag, group::Member, notify::diag_word,
        tracking::ScriptState,
    },
};

/// Tracking as the core sees it, named as the configuration names it.
fn tracking(m: &Member, cfg: &crate::config::Instance, now: crate::vrrp::Time) -> Vec<TrackStatus> {
    let mut out = Vec::new();
    let state = |failing: bool| if failing { "failing" } else { "ok" }.to_owned();
    for (t, up) in cfg.track_interfaces.iter().zip(&m.track.interfaces_up) {
        out.push(TrackStatus {
            kind: "interface".into(),
            name: t.name.clone(),
            failing: !up,
            weight: t.weight.into(),
            state: state(!up),
            count: None,
            pending_ms: None,
        });
    }
    for (t, s) in cfg.track_scripts.iter().zip(&m.track.scripts) {
        out.push(TrackStatus {
            kind: "script".into(),
            name: t.command.to_string(),
            failing: *s == ScriptState::Failing,
            weight: t.weight.into(),
            state: match s {
                ScriptState::Unknown | ScriptState::Added => "not yet known".into(),
                ScriptState::Ok => "ok".into(),
                ScriptState::Failing => "failing".into(),
            },
            count: None,
            pending_ms: None,
        });
    }
    for (t, v) in cfg.track_files.iter().zip(&m.track.files) {
        out.push(TrackStatus {
            kind: "file".into(),
            name: match v {
                Some(n) => format!("{} = {n}", t.path.display()),
                None => format!("{} (missing or unreadable: 0)", t.path.display()),
            },
            failing: false,
            weight: t.weight.into(),
            state: "ok".into(),
            count: None,
            pending_ms: None,
        });
    }
    for (t, p) in cfg.track_processes.iter().zip(&m.track.processes) {
        let max = t
            .quorum_max
            .map_or_else(|| "unlimited".to_owned(), |m| m.to_string());
        out.push(TrackStatus {
            kind: "process".into(),
            name: format!("{} (quorum {}..={max})", t.pattern, t.quorum),
            failing: !p.quorum,
            weight: t.weight.into(),
            state: if p.quorum { "ok" } else { "no quorum" }.into(),
            count: Some(p.count),
            pending_ms: p
                .pending
                .map(|at| at.saturating_duration_since(now).as_millis() as u64),
        });
    }
    out
}

pub(super) fn snapshot(d: &Daemon) -> Status {
    let now = clock::now();
    let mut instances = Vec::new();
    let mut shared: BTreeMap<(String, IpAddr), SharedVipStatus> = BTreeMap::new();
    for (id, e) in d.node.groups() {
        let Some(gio) = d.io.get(&id) else {
            continue;
        };
        for (i, m) in e.group.members().iter().enumerate() {
            let (Some(machine), Some(cfg)) = (e.group.machine(i), gio.configs.get(i)) else {
                continue;
            };
            for sv in &m.cfg.shared_vips {
                let entry = shared
                    .entry((m.cfg.identity.interface.clone(), sv.addr))
                    .or_insert_with(|| SharedVipStatus {
                        address: sv.addr.to_string(),
                        interface: m.cfg.identity.interface.clone(),
                        members: sv.members,
                        groups: Vec::new(),
                    });
                entry.groups.push(SharedGroupStatus {
                    member: sv.member,
                    instance: m.cfg.name.clone(),
                    vrid: m.cfg.identity.vrid,
                    protocol: m.cfg.identity.protocol.as_str().to_owned(),
                    vmac: fmt_mac(&m.cfg.vmac_address()),
                    state: machine.state().to_string(),
                    master: machine.state() == State::Master,
                    slot: gio.slot,
                    // The data plane's view: the control server adds it (`serve`).
                    answering: None,
                    answers: None,
                });
            }
            let last_transition = machine
                .last_transition()
                .map(|(at, reason)| TransitionStatus {
                    to: machine.state().to_string(),
                    reason: reason.to_string(),
                    ago_ms: now.saturating_duration_since(*at).as_millis() as u64,
                });
            instances.push(InstanceStatus {
                name: m.cfg.name.clone(),
                interface: m.cfg.identity.interface.clone(),
                vrid: m.cfg.identity.vrid,
                family: match m.cfg.identity.family {
                    Family::Ipv4 => "ipv4".into(),
                    Family::Ipv6 => "ipv6".into(),
                },
                version: m.cfg.identity.version.number(),
                protocol: m.cfg.identity.protocol.as_str().to_owned(),
                carp: m.cfg.carp.as_ref().map(|c| {
                    let rank = machine.rank();
                    crate::control::status::CarpStatus {
                        advbase: rank.advbase,
                        advskew: rank.advskew,
                        demote: rank.demote,
                        replay: match c.replay {
                            crate::vrrp::carp::ReplayMode::Strict => "strict".into(),
                            crate::vrrp::carp::ReplayMode::OpenBsd => "openbsd".into(),
                        },
                        refused_auth: m.carp_counters.auth,
                        refused_replay: m.carp_counters.replay,
                        refused_ttl: m.carp_counters.ttl,
                        replay_forgotten: m.carp_forgotten(),
                    }
                }),
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
                transitions: m.counters.transitions,
                adverts_sent: gio.members.get(i).map_or(0, |x| x.sent),
                adverts_received: m.counters.received,
                adverts_invalid: m.counters.rejected_total()
                    + m.carp_counters.auth
                    + m.carp_counters.replay
                    + m.carp_counters.ttl
                    + m.carp_counters.vhid,
                adverts_rejected: if m.cfg.carp.is_some() {
                    // CARP's own refusals; the metrics export them by reason.
                    [
                        ("carp_hmac", m.carp_counters.auth),
                        ("carp_replay", m.carp_counters.replay),
                        ("ttl", m.carp_counters.ttl),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect()
                } else {
                    Rejection::ALL
                        .iter()
                        .map(|r| (r.label().to_owned(), m.counters.rejected(*r)))
                        .collect()
                },
                bfd_probes: m.counters.bfd_probes,
                bfd_probes_answered: m.counters.bfd_probes_answered,
                vips: cfg
                    .vips
                    .iter()
                    .map(|v| v.net.to_string())
                    .chain(
                        cfg.vips_excluded
                            .iter()
                            .map(|v| format!("{} (excluded)", v.net)),
                    )
                    .collect(),
                vmac: m.cfg.vmac.then(|| fmt_mac(&m.cfg.vmac_address())),
                slot: gio.slot,
                sync_group: m.cfg.sync_group.clone(),
                demotion: m.demotion(),
                yielding: machine.yielding(),
                tracking: tracking(m, cfg, now),
                dataplane: None,
            });
        }
    }
    let live = d.node.liveness();
    let bfd = live
        .subscribed()
        .map(|(n, e)| {
            let s = &e.session;
            let last = s.last_down();
            BfdSessionStatus {
                interface: d
                    .ifaces
                    .get(&n.0)
                    .map_or_else(|| n.0.to_string(), |i| i.link.name.clone()),
                peer: n.1.to_string(),
                local: e.local.to_string(),
                state: s.state().to_string(),
                subscribed: e.subscribed,
                echo: s.sends_echo(),
                detection_ms: s.detection_time().as_secs_f64() * 1000.0,
                echo_detection_ms: s.echo_detection_time().map(|t| t.as_secs_f64() * 1000.0),
                last_down: last.map(|(_, diag)| diag_word(diag).to_owned()),
                last_down_ago_ms: last
                    .map(|(at, _)| now.saturating_duration_since(at).as_millis() as u64),
                downs: e
                    .downs()
                    .map(|(diag, c)| (diag_word(diag).to_owned(), c))
                    .collect(),
                local_discriminator: s.local_disc(),
                remote_discriminator: s.remote_disc(),
                echo_rtt_worst_ms: s
                    .sends_echo()
                    .then(|| s.recent_echo_rtt().as_secs_f64() * 1000.0),
                stalled_ago_ms: s.stalled_ago(now).map(|d| d.as_millis() as u64),
            }
        })
        .collect();
    let vrrp_sockets = d
        .ifaces
        .values()
        .flat_map(|i| {
            i.listeners().map(|l| VrrpSocketStatus {
                interface: i.link.name.clone(),
                family: match l.inbox.family {
                    Family::Ipv4 => "ipv4".into(),
                    Family::Ipv6 => "ipv6".into(),
                },
                reads: l.listening.to_string(),
                vrids: l.listening.vrids.keys().copied().collect(),
                filter_error: l.filter_error.clone(),
                read: l.inbox.read(),
                dropped: l.socket.dropped(),
            })
        })
        .collect();
    let summary = live.summary();
    let (c, io) = (live.counters, d.bfd.counters);
    let bfd_summary = BfdSummary {
        passive_sessions: summary.passive as u64,
        passive_up: summary.passive_up as u64,
        learned_sessions: summary.learned as u64,
        passive_downs: Diag::ALL
            .into_iter()
            .zip(c.passive_downs)
            .filter(|(_, n)| *n > 0)
            .map(|(diag, n)| (diag_word(diag).to_owned(), n))
            .collect(),
        counters: [
            ("control_received", c.control_received),
            ("echo_received", c.echo_received),
            ("bad_ttl", c.bad_ttl),
            ("unmatched", c.unmatched),
            ("unknown_neighbour", c.unknown_neighbour),
            ("refused_cap", c.refused_cap),
            ("refused_rate", c.refused_rate),
            ("echo_not_ours", c.echo_not_ours),
            ("heard_evicted", c.heard_evicted),
            ("closed_not_up", c.closed_not_up),
            ("echo_suspect", c.echo_suspect),
            ("echo_restored", c.echo_restored),
            ("echo_foreign", c.echo_foreign + io.echo_unparsed),
            ("undecodable", io.undecodable),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    };
    Status {
        vrrp_sockets,
        bfd,
        bfd_summary,
        router_id: d.config.global.router_id.clone(),
        pid: std::process::id(),
        uptime_ms: d.started.elapsed().as_millis() as u64,
        pin_path: d.config.global.pin_path.display().to_string(),
        instances,
        xdp: Default::default(),
        conflicts: Vec::new(),
        loop_lag: d.lag.status(),
        connections_refused: Default::default(),
        demotions: {
            let dm = d.node.demotions();
            DemotionStatus {
                node: dm.node,
                sync_groups: dm.sync_groups.clone(),
                instances: dm.instances.clone(),
            }
        },
        last_reload: d.last_reload.as_ref().map(|r| ReloadStatus {
            ago_ms: r.at.elapsed().as_millis() as u64,
            ok: r.ok,
            message: r.message.clone(),
            instances: r.instances.clone(),
        }),
        processes: d
            .config
            .instances
            .iter()
            .any(|i| !i.track_processes.is_empty())
            .then(|| {
                use std::sync::atomic::Ordering::Relaxed;
                let s = &d.processes.stats;
                ProcessWatchStatus {
                    pids: s.pids.load(Relaxed),
                    pids_refused: s.pids_refused.load(Relaxed),
                    events_lost: s.lost.load(Relaxed),
                    events: s.events.load(Relaxed),
                }
            }),
        services: d.balancer.as_ref().map(|b| b.status()).unwrap_or_default(),
        shared_vips: shared
            .into_values()
            .map(|mut v| {
                v.groups.sort_by_key(|g| g.member);
                v
            })
            .collect(),
    }
}
