//! The status snapshot: one serializable value that `vipd status`, the metrics endpoint
//! and tests all read, so they never disagree.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub router_id: String,
    pub pid: u32,
    pub uptime_ms: u64,
    pub pin_path: String,
    pub instances: Vec<InstanceStatus>,
    /// XDP verdict counters summed over CPUs, by name.
    pub xdp: BTreeMap<String, u64>,
    pub conflicts: Vec<ConflictStatus>,
    /// How late the event loop handled its timers (see `crate::daemon::LagStatus`).
    #[serde(default)]
    pub loop_lag: LagStatus,
    /// Connections refused because the control socket or the metrics listener already
    /// served as many as it takes at once.
    #[serde(default)]
    pub connections_refused: BTreeMap<String, u64>,
    /// BFD sessions some instance here subscribes to, one per neighbour and interface.
    #[serde(default)]
    pub bfd: Vec<BfdSessionStatus>,
    /// The raw VRRP sockets, one per interface and family.
    #[serde(default)]
    pub vrrp_sockets: Vec<VrrpSocketStatus>,
    /// The operator's demotions (`vipd demote`), by what they were given to.
    #[serde(default)]
    pub demotions: DemotionStatus,
    /// The last reload (SIGHUP or `vipd reload`) and what it did.
    #[serde(default)]
    pub last_reload: Option<ReloadStatus>,
    /// BFD in aggregate: the sessions kept only for their neighbours' sake (a master
    /// answering its backups), which get no entry of their own, and what was refused.
    #[serde(default)]
    pub bfd_summary: BfdSummary,
    /// The process watcher, while some instance tracks processes.
    #[serde(default)]
    pub processes: Option<ProcessWatchStatus>,
    /// Load-balanced services (`[[service]]`), with their servers.
    #[serde(default)]
    pub services: Vec<LbServiceStatus>,
    /// Shared VIPs (active-active) with the member groups configured here.
    #[serde(default)]
    pub shared_vips: Vec<SharedVipStatus>,
}

/// A shared VIP (active-active, `shared_vips`): answered for each requester by the member
/// group its address picks (`vip_common::shared_member`), on the router mastering it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SharedVipStatus {
    pub address: String,
    pub interface: String,
    /// How many groups share it: what the requesters' addresses are taken modulo.
    pub members: u8,
    /// The member groups configured on this router, by member number.
    pub groups: Vec<SharedGroupStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SharedGroupStatus {
    /// Its number among the members: it answers the requesters whose address modulo
    /// `members` is this.
    pub member: u8,
    pub instance: String,
    pub vrid: u8,
    pub protocol: String,
    /// The virtual MAC its answers carry.
    pub vmac: String,
    /// The instance's state here.
    pub state: String,
    /// This router masters the group (its state is master).
    pub master: bool,
    pub slot: u32,
    /// Whether this router's data plane answers for the group now (owned slot, live
    /// lease); `None` when the slot could not be read.
    pub answering: Option<bool>,
    /// ARP replies and NAs this router's data plane sent for the shared VIP on the
    /// group's behalf (all its shared VIPs, all CPUs; since the maps were created).
    pub answers: Option<u64>,
}

/// A virtual service: what forwards it and what it forwarded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct LbServiceStatus {
    pub name: String,
    pub vip: String,
    /// 0: every port.
    pub port: u16,
    pub protocol: String,
    /// The instance whose master forwards; `None`: every director (ECMP).
    pub follows: Option<String>,
    /// That instance's data-plane slot.
    pub slot: u32,
    /// Whether the total weight of the servers up reaches the quorum.
    pub quorum: bool,
    /// Forwarded by this node's XDP program (all CPUs).
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
    pub servers: Vec<LbServerStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct LbServerStatus {
    pub address: String,
    pub port: u16,
    pub weight: u32,
    /// What its health check says.
    pub up: bool,
    /// Its weight in the table now (0: no new flows).
    pub in_table: u32,
    /// Whether its next hop (interface and MAC) is known.
    pub resolved: bool,
    pub sorry: bool,
    pub last_error: Option<String>,
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
}

/// The operator's demotions: the node's, each sync group's, each instance's (only those
/// not 0).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct DemotionStatus {
    pub node: u8,
    pub sync_groups: BTreeMap<String, u8>,
    pub instances: BTreeMap<String, u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReloadStatus {
    pub ago_ms: u64,
    /// Applied (`true`), or refused with the previous configuration running on.
    pub ok: bool,
    pub message: String,
    /// What became of each instance (empty when refused).
    pub instances: Vec<crate::control::events::InstanceChange>,
}

/// The process watcher (`track_processes`), node-wide.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ProcessWatchStatus {
    /// Matching processes remembered now.
    pub pids: u64,
    /// Matching processes left out of the counts (more than the watcher remembers).
    pub pids_refused: u64,
    /// Times the kernel dropped process events and `/proc` was counted again.
    pub events_lost: u64,
    /// Process events read.
    pub events: u64,
}

/// One raw VRRP socket: what its filter lets the daemon read, and its queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct VrrpSocketStatus {
    pub interface: String,
    pub family: String,
    /// The VRIDs the socket filter admits, with their versions (`51 (v2, v3)`), or
    /// `nothing`. Everything else is refused in the kernel and never read: VRRP for
    /// VRIDs this node does not run is counted by the XDP program as `vrrp_foreign`
    /// (node-wide, every interface) before it reaches the socket.
    pub reads: String,
    pub vrids: Vec<u8>,
    /// Why the last change of the filter failed: the socket still has the filter before
    /// it (`reads`), never none.
    pub filter_error: Option<String>,
    /// Packets read from the socket.
    pub read: u64,
    /// Packets the kernel dropped because the socket's queue was full: the daemon fell
    /// behind on this socket alone (other sockets have queues of their own).
    pub dropped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct BfdSummary {
    /// Sessions nobody here subscribes to, and how many of them are Up.
    pub passive_sessions: u64,
    pub passive_up: u64,
    /// Sessions for neighbours known only from their advertisements (capped per
    /// interface).
    pub learned_sessions: u64,
    /// Times those sessions left Up, by diagnostic.
    pub passive_downs: BTreeMap<String, u64>,
    /// Packets taken in (`control_received`, `echo_received`) and everything refused, by
    /// reason: `unknown_neighbour` (a Control packet from nobody named or heard
    /// advertising), `unmatched`, `bad_ttl`, `refused_cap`, `refused_rate`,
    /// `echo_not_ours` (wrong nonce, source or interface), `echo_foreign`, `undecodable`,
    /// `heard_evicted`, `closed_not_up`.
    pub counters: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct BfdSessionStatus {
    pub interface: String,
    pub peer: String,
    pub local: String,
    /// `up`, `init`, `down` or `admin-down`.
    pub state: String,
    /// Some instance here follows this neighbour (it sends echoes and acts on the state);
    /// otherwise the session is kept for the neighbour's sake.
    pub subscribed: bool,
    pub echo: bool,
    /// Control packet detection time, as negotiated.
    pub detection_ms: f64,
    /// The Echo function's detection time, while it runs.
    pub echo_detection_ms: Option<f64>,
    /// Why the session last left Up, and how long ago.
    pub last_down: Option<String>,
    pub last_down_ago_ms: Option<u64>,
    /// Times the session left Up, by reason.
    pub downs: BTreeMap<String, u64>,
    pub local_discriminator: u32,
    pub remote_discriminator: u32,
    /// The slowest echo round trip of the last one to two seconds, from the send to the
    /// kernel's receive timestamp (absent without echoes).
    #[serde(default)]
    pub echo_rtt_worst_ms: Option<f64>,
    /// How long ago the path or this host last stalled (an echo held up for most of a
    /// detection time), while that is remembered (60 s): meanwhile a failed echo path
    /// leads to a takeover in VRRP's own time, not BFD's.
    #[serde(default)]
    pub stalled_ago_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    /// The VRID, or a CARP instance's VHID.
    pub vrid: u8,
    pub family: String,
    pub version: u8,
    /// `vrrp` or `carp` (absent from older daemons' answers: `vrrp`).
    #[serde(default = "vrrp")]
    pub protocol: String,
    /// A CARP instance's rank and refusals.
    #[serde(default)]
    pub carp: Option<CarpStatus>,
    pub state: String,
    pub priority: u8,
    pub configured_priority: u8,
    pub master: Option<String>,
    pub master_adver_interval_ms: f64,
    pub master_down_interval_ms: f64,
    pub last_transition: Option<TransitionStatus>,
    pub transitions: u64,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    /// Adverts for this instance that failed the daemon's own checks (TTL, version, v2
    /// password, allowlist) and were ignored. Absent from older daemons' answers.
    #[serde(default)]
    pub adverts_invalid: u64,
    /// `adverts_invalid` by reason (`ttl`, `version_mismatch`, `auth`, `peer`).
    #[serde(default)]
    pub adverts_rejected: BTreeMap<String, u64>,
    /// Probes sent after BFD said the master was gone, and how many it answered (each
    /// answered one was a false "down" that moved nothing).
    #[serde(default)]
    pub bfd_probes: u64,
    #[serde(default)]
    pub bfd_probes_answered: u64,
    pub vips: Vec<String>,
    pub vmac: Option<String>,
    pub slot: u32,
    pub sync_group: Option<String>,
    /// What the operator's demotions take off its priority, together.
    #[serde(default)]
    pub demotion: u8,
    /// Handed over by the operator: it does not preempt until promoted.
    #[serde(default)]
    pub yielding: bool,
    pub tracking: Vec<TrackStatus>,
    /// What the XDP program holds for the instance's slot, read off the loop: the data
    /// plane's own view, to compare with `state` (they agree by construction).
    #[serde(default)]
    pub dataplane: Option<DataplaneStatus>,
}

fn vrrp() -> String {
    "vrrp".to_owned()
}

/// What `vipd status` shows of a CARP instance beyond what every instance has.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CarpStatus {
    /// Seconds.
    pub advbase: u8,
    /// The skew in use: 255 − the effective priority.
    pub advskew: u8,
    /// The demotion count advertised.
    pub demote: u8,
    pub replay: String,
    /// Refused for a bad HMAC (wrong passphrase, other addresses, a forgery).
    pub refused_auth: u64,
    /// Refused for a counter seen before (a replay).
    pub refused_replay: u64,
    pub refused_ttl: u64,
    /// Remembered counter ranges forgotten for lack of room.
    pub replay_forgotten: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataplaneStatus {
    /// Owned and within its lease: the program answers for the VIPs.
    pub answering: bool,
    /// Lease left, milliseconds (0 when not owned or lapsed).
    pub lease_remaining_ms: f64,
}

/// Upper bounds of the loop-lag histogram buckets, in microseconds (then +Inf).
pub const LAG_BUCKETS_US: [u64; 9] = [50, 100, 250, 500, 1_000, 2_000, 2_500, 10_000, 100_000];

/// How late the event loop handled its timers: the worst delay between a timer's deadline
/// and the moment the loop acted on it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LagStatus {
    /// Worst since the daemon started, microseconds.
    pub worst_us: u64,
    /// Worst in the last minute or two, microseconds.
    pub recent_worst_us: u64,
    /// Timers handled.
    pub count: u64,
    /// Sum of all lags, seconds.
    pub sum_seconds: f64,
    /// Cumulative counts per bucket of [`LAG_BUCKETS_US`], then +Inf.
    pub buckets: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TransitionStatus {
    pub to: String,
    pub reason: String,
    pub ago_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrackStatus {
    pub kind: String,
    pub name: String,
    pub failing: bool,
    pub weight: i32,
    /// `ok`, `failing`, or `not yet known` (a script before its first result); for a
    /// process `ok` or `no quorum`.
    #[serde(default)]
    pub state: String,
    /// A tracked process: the matching processes running now.
    #[serde(default)]
    pub count: Option<u32>,
    /// A tracked process: a change of its quorum waiting out fork_delay or
    /// terminate_delay, due in this many milliseconds.
    #[serde(default)]
    pub pending_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConflictStatus {
    pub vip: String,
    pub mac: String,
    pub count: u64,
    pub last_seen_ago_ms: u64,
}

impl Status {
    /// The human-readable form `vipd status` prints.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "vipd {} (pid {}, up {}s, maps {})",
            self.router_id,
            self.pid,
            self.uptime_ms / 1000,
            self.pin_path
        );
        for i in &self.instances {
            let kind = if i.carp.is_some() {
                format!("vhid {} {} carp", i.vrid, i.family)
            } else {
                format!("vrid {} {} v{}", i.vrid, i.family, i.version)
            };
            let _ = writeln!(
                s,
                "\n{} ({} {}): {} priority {}/{}",
                i.name,
                i.interface,
                kind,
                i.state.to_uppercase(),
                i.priority,
                i.configured_priority
            );
            if let Some(c) = &i.carp {
                let _ = writeln!(
                    s,
                    "  carp advbase {} s advskew {} demotion {} replay {}  refused: hmac {} replay {} ttl {}  counters forgotten {}",
                    c.advbase,
                    c.advskew,
                    c.demote,
                    c.replay,
                    c.refused_auth,
                    c.refused_replay,
                    c.refused_ttl,
                    c.replay_forgotten
                );
            }
            let _ = writeln!(
                s,
                "  master {}  interval {} ms  master down {:.3} ms",
                i.master.as_deref().unwrap_or("-"),
                i.master_adver_interval_ms,
                i.master_down_interval_ms
            );
            if let Some(t) = &i.last_transition {
                let _ = writeln!(
                    s,
                    "  last transition to {} {:.1}s ago: {}",
                    t.to,
                    t.ago_ms as f64 / 1000.0,
                    t.reason
                );
            }
            let _ = writeln!(
                s,
                "  adverts sent {} received {} rejected {}  transitions {}  slot {}{}{}",
                i.adverts_sent,
                i.adverts_received,
                i.adverts_invalid,
                i.transitions,
                i.slot,
                i.vmac
                    .as_ref()
                    .map(|m| format!("  vmac {m}"))
                    .unwrap_or_default(),
                i.sync_group
                    .as_ref()
                    .map(|g| format!("  sync group {g}"))
                    .unwrap_or_default(),
            );
            let mismatch = i
                .adverts_rejected
                .get("version_mismatch")
                .copied()
                .unwrap_or(0);
            if mismatch > 0 {
                let _ = writeln!(
                    s,
                    "  VERSION MISMATCH: {mismatch} adverts of the other VRRP version for vrid {} (this instance runs v{})",
                    i.vrid, i.version
                );
            }
            if i.demotion > 0 {
                let _ = writeln!(
                    s,
                    "  demoted by {} (vipd demote; vipd promote takes it back)",
                    i.demotion
                );
            }
            if i.yielding {
                let _ = writeln!(s, "  handed over: does not preempt until `vipd promote`");
            }
            if i.bfd_probes > 0 {
                let _ = writeln!(
                    s,
                    "  bfd probes {} (answered by the master: {})",
                    i.bfd_probes, i.bfd_probes_answered
                );
            }
            if let Some(d) = &i.dataplane {
                let _ = writeln!(
                    s,
                    "  xdp {}{}",
                    if d.answering {
                        "answering"
                    } else {
                        "not answering"
                    },
                    if d.answering {
                        format!(", lease {:.1} ms left", d.lease_remaining_ms)
                    } else {
                        String::new()
                    }
                );
            }
            let _ = writeln!(s, "  vips {}", i.vips.join(" "));
            for t in &i.tracking {
                let state = if t.state.is_empty() {
                    if t.failing { "failing" } else { "ok" }
                } else {
                    t.state.as_str()
                };
                let count = t
                    .count
                    .map(|n| format!(", {n} running"))
                    .unwrap_or_default();
                let pending = t
                    .pending_ms
                    .map(|ms| format!(", changing in {ms} ms"))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "  track {} {}: {}{count}{pending} (weight {})",
                    t.kind,
                    t.name,
                    state.to_uppercase(),
                    t.weight
                );
            }
        }
        for v in &self.shared_vips {
            let _ = writeln!(
                s,
                "\nshared {} on {}: {} groups, each requester answered by member (address mod {})",
                v.address, v.interface, v.members, v.members
            );
            for g in &v.groups {
                let answers = g
                    .answers
                    .map(|n| format!(", {n} answers"))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "  member {} {} ({} {}, {}): {}{}{answers}",
                    g.member,
                    g.instance,
                    g.protocol,
                    g.vrid,
                    g.vmac,
                    if g.master {
                        "MASTER here".to_owned()
                    } else {
                        g.state.clone()
                    },
                    match g.answering {
                        Some(true) => ", answering",
                        Some(false) if g.master => ", NOT ANSWERING",
                        _ => "",
                    },
                );
            }
        }
        let d = &self.demotions;
        if d.node > 0 || !d.sync_groups.is_empty() || !d.instances.is_empty() {
            let mut parts = Vec::new();
            if d.node > 0 {
                parts.push(format!("node {}", d.node));
            }
            parts.extend(
                d.sync_groups
                    .iter()
                    .map(|(g, v)| format!("sync group {g} {v}")),
            );
            parts.extend(d.instances.iter().map(|(i, v)| format!("{i} {v}")));
            let _ = writeln!(s, "\ndemotions: {}", parts.join(", "));
        }
        if let Some(r) = &self.last_reload {
            let _ = writeln!(
                s,
                "\nlast reload {:.1}s ago: {}",
                r.ago_ms as f64 / 1000.0,
                r.message
            );
            for c in r.instances.iter().filter(|c| c.outcome != "unchanged") {
                let detail = if c.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", c.detail)
                };
                let _ = writeln!(s, "  {} {}{}", c.instance, c.outcome, detail);
            }
        }
        let moved: Vec<String> = self
            .xdp
            .iter()
            .filter(|(_, v)| **v != 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(
            s,
            "\nxdp: {}",
            if moved.is_empty() {
                "no packets counted".into()
            } else {
                moved.join(" ")
            }
        );
        let _ = writeln!(
            s,
            "loop lag: worst {:.3} ms, last minute {:.3} ms",
            self.loop_lag.worst_us as f64 / 1000.0,
            self.loop_lag.recent_worst_us as f64 / 1000.0
        );
        for b in &self.bfd {
            let _ = writeln!(
                s,
                "bfd {} {} -> {}: {}{}  detection {:.1} ms{}{}{}{}",
                b.interface,
                b.local,
                b.peer,
                b.state.to_uppercase(),
                if b.subscribed {
                    ""
                } else {
                    " (for the neighbour)"
                },
                b.detection_ms,
                b.echo_detection_ms
                    .map(|e| format!(", echo {e:.1} ms"))
                    .unwrap_or_default(),
                match (&b.last_down, b.last_down_ago_ms) {
                    (Some(d), Some(ago)) =>
                        format!("  last down {:.1}s ago: {d}", ago as f64 / 1000.0),
                    _ => String::new(),
                },
                {
                    let n: u64 = b.downs.values().sum();
                    if n > 0 {
                        format!("  downs {n}")
                    } else {
                        String::new()
                    }
                },
                b.stalled_ago_ms
                    .map(|ago| format!(
                        "  stalled {:.1}s ago: takeover in VRRP's time",
                        ago as f64 / 1000.0
                    ))
                    .unwrap_or_default()
            );
        }
        for v in &self.vrrp_sockets {
            let _ = writeln!(
                s,
                "vrrp socket {} {}: reads vrids {}  read {}  dropped (queue full) {}{}",
                v.interface,
                v.family,
                v.reads,
                v.read,
                v.dropped,
                v.filter_error
                    .as_ref()
                    .map(|e| format!("  FILTER NOT UPDATED: {e}"))
                    .unwrap_or_default()
            );
        }
        if !self.vrrp_sockets.is_empty() {
            let _ = writeln!(
                s,
                "foreign vrrp (other VRIDs, refused by the socket filters, never read): {}",
                self.xdp.get("vrrp_foreign").copied().unwrap_or(0)
            );
        }
        let b = &self.bfd_summary;
        let count = |k: &str| b.counters.get(k).copied().unwrap_or(0);
        const TAKEN: [&str; 4] = [
            "control_received",
            "echo_received",
            "echo_suspect",
            "echo_restored",
        ];
        let refused: Vec<String> = b
            .counters
            .iter()
            .filter(|(k, v)| **v != 0 && !TAKEN.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let suspect = count("echo_suspect");
        if b.passive_sessions > 0 || suspect > 0 || !refused.is_empty() {
            let _ = writeln!(
                s,
                "bfd: {} session(s) for neighbours ({} up){}{}",
                b.passive_sessions,
                b.passive_up,
                if suspect > 0 {
                    format!(
                        "; echo paths suspect {suspect}, slow not down {}",
                        count("echo_restored")
                    )
                } else {
                    String::new()
                },
                if refused.is_empty() {
                    String::new()
                } else {
                    format!("; refused {}", refused.join(" "))
                }
            );
        }
        if let Some(p) = &self.processes {
            let _ = writeln!(
                s,
                "processes: {} matching remembered, {} left out, {} events read, lost events {} times (counted again)",
                p.pids, p.pids_refused, p.events, p.events_lost
            );
        }
        for v in &self.services {
            let _ = writeln!(
                s,
                "service {}: {} port {} {}, {}, quorum {}, {} packets, {} flows",
                v.name,
                v.vip,
                v.port,
                v.protocol,
                match &v.follows {
                    Some(i) => format!("follows {i} (slot {})", v.slot),
                    None => "ecmp".to_owned(),
                },
                if v.quorum { "up" } else { "lost" },
                v.packets,
                v.flows
            );
            for r in &v.servers {
                let _ = writeln!(
                    s,
                    "  {}{} {}:{} weight {} (in table {}), {}packets {}, flows {}{}",
                    if r.sorry { "sorry " } else { "" },
                    if r.up { "up" } else { "down" },
                    r.address,
                    r.port,
                    r.weight,
                    r.in_table,
                    if r.resolved {
                        ""
                    } else {
                        "next hop unresolved, "
                    },
                    r.packets,
                    r.flows,
                    r.last_error
                        .as_ref()
                        .map(|e| format!(", last check: {e}"))
                        .unwrap_or_default()
                );
            }
        }
        for c in &self.conflicts {
            let _ = writeln!(
                s,
                "conflict: {} claimed by {} ({} times, last {:.1}s ago)",
                c.vip,
                c.mac,
                c.count,
                c.last_seen_ago_ms as f64 / 1000.0
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_vrrp_socket_shows_what_it_reads_and_the_foreign_vrrp_refused() {
        let status = Status {
            router_id: "r1".into(),
            pid: 1,
            uptime_ms: 1,
            pin_path: String::new(),
            instances: vec![],
            xdp: BTreeMap::from([("vrrp_foreign".to_owned(), 4_996_864)]),
            conflicts: vec![],
            loop_lag: LagStatus::default(),
            connections_refused: BTreeMap::new(),
            bfd: vec![],
            demotions: DemotionStatus::default(),
            last_reload: None,
            bfd_summary: BfdSummary::default(),
            vrrp_sockets: vec![VrrpSocketStatus {
                interface: "eth0".into(),
                family: "ipv4".into(),
                reads: "51 (v2, v3)".into(),
                vrids: vec![51],
                filter_error: Some("attaching the VRRP socket filter: out of memory".into()),
                read: 7,
                dropped: 2,
            }],
            processes: None,
            services: vec![],
            shared_vips: vec![],
        };
        let text = status.render();
        for line in [
            "vrrp socket eth0 ipv4: reads vrids 51 (v2, v3)  read 7  dropped (queue full) 2  FILTER NOT UPDATED: attaching the VRRP socket filter: out of memory",
            "foreign vrrp (other VRIDs, refused by the socket filters, never read): 4996864",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn services_show_their_servers_state_weight_and_counters() {
        let mut status: Status =
            serde_json::from_str(r#"{"router_id":"r1","pid":1,"uptime_ms":1,"pin_path":"","instances":[],"xdp":{},"conflicts":[]}"#)
                .expect("an answer without services still reads");
        assert!(status.services.is_empty());
        status.services = vec![LbServiceStatus {
            name: "web".into(),
            vip: "192.0.2.60".into(),
            port: 80,
            protocol: "tcp".into(),
            follows: Some("gw".into()),
            slot: 3,
            quorum: true,
            packets: 10,
            bytes: 1000,
            flows: 2,
            servers: vec![
                LbServerStatus {
                    address: "192.0.2.21".into(),
                    port: 80,
                    weight: 2,
                    up: true,
                    in_table: 2,
                    resolved: true,
                    packets: 10,
                    flows: 2,
                    ..Default::default()
                },
                LbServerStatus {
                    address: "192.0.2.22".into(),
                    port: 80,
                    weight: 1,
                    last_error: Some("connecting to 192.0.2.22:80".into()),
                    ..Default::default()
                },
            ],
        }];
        let text = status.render();
        for line in [
            "service web: 192.0.2.60 port 80 tcp, follows gw (slot 3), quorum up, 10 packets, 2 flows",
            "  up 192.0.2.21:80 weight 2 (in table 2), packets 10, flows 2",
            "  down 192.0.2.22:80 weight 1 (in table 0), next hop unresolved, packets 0, flows 0, last check: connecting to 192.0.2.22:80",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn a_shared_vip_shows_its_groups_which_this_router_masters_and_their_answers() {
        let mut status: Status =
            serde_json::from_str(r#"{"router_id":"r1","pid":1,"uptime_ms":1,"pin_path":"","instances":[],"xdp":{},"conflicts":[]}"#)
                .expect("an answer without shared VIPs still reads");
        assert!(status.shared_vips.is_empty());
        let group = |member: u8, name: &str, master: bool, answering, answers| SharedGroupStatus {
            member,
            instance: name.into(),
            vrid: 61 + member,
            protocol: "vrrp".into(),
            vmac: format!("00:00:5e:00:01:{:02x}", 61 + member),
            state: if master { "master" } else { "backup" }.into(),
            master,
            slot: u32::from(member),
            answering,
            answers,
        };
        status.shared_vips = vec![SharedVipStatus {
            address: "192.0.2.50".into(),
            interface: "eth0".into(),
            members: 3,
            groups: vec![
                group(0, "g1", true, Some(true), Some(1500)),
                group(1, "g2", false, Some(false), Some(0)),
                group(2, "g3", true, Some(false), None),
            ],
        }];
        let text = status.render();
        for line in [
            "shared 192.0.2.50 on eth0: 3 groups, each requester answered by member (address mod 3)",
            "  member 0 g1 (vrrp 61, 00:00:5e:00:01:3d): MASTER here, answering, 1500 answers",
            "  member 1 g2 (vrrp 62, 00:00:5e:00:01:3e): backup, 0 answers",
            "  member 2 g3 (vrrp 63, 00:00:5e:00:01:3f): MASTER here, NOT ANSWERING",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn a_tracked_process_shows_its_count_and_a_pending_change() {
        let mut status: Status =
            serde_json::from_str(r#"{"router_id":"r1","pid":1,"uptime_ms":1,"pin_path":"","instances":[],"xdp":{},"conflicts":[]}"#)
                .expect("older answers still read");
        status.processes = Some(ProcessWatchStatus {
            pids: 2,
            pids_refused: 0,
            events_lost: 1,
            events: 40,
        });
        let track = TrackStatus {
            kind: "process".into(),
            name: "haproxy (quorum 1..=unlimited)".into(),
            failing: false,
            weight: -50,
            state: "ok".into(),
            count: Some(0),
            pending_ms: Some(120),
        };
        let text = status.render();
        assert!(
            text.contains("processes: 2 matching remembered, 0 left out, 40 events read, lost events 1 times (counted again)"),
            "{text}"
        );
        let mut i: InstanceStatus = serde_json::from_value(serde_json::json!({
            "name": "gw", "interface": "eth0", "vrid": 51, "family": "ipv4", "version": 3,
            "state": "master", "priority": 150, "configured_priority": 150, "master": null,
            "master_adver_interval_ms": 1000.0, "master_down_interval_ms": 3414.0,
            "last_transition": null, "transitions": 1, "adverts_sent": 1,
            "adverts_received": 0, "vips": [], "vmac": null, "slot": 0, "sync_group": null,
            "tracking": []
        }))
        .unwrap();
        i.tracking.push(track);
        status.instances.push(i);
        let text = status.render();
        assert!(
            text.contains("  track process haproxy (quorum 1..=unlimited): OK, 0 running, changing in 120 ms (weight -50)"),
            "{text}"
        );
    }
}
