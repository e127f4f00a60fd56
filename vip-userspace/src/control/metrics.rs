//! Prometheus metrics, rendered with prometheus-client from the same status snapshot as
//! `vipd status`, so every figure agrees. Rendering happens off the event loop, at most
//! once a second however many scrapers ask ([`CACHE`]); at most [`MAX_CLIENTS`]
//! connections are served at once, the rest refused and counted.
//!
//! The HTTP side is a few lines over a tokio listener rather than a web framework: one
//! read-only GET endpoint does not justify the dependency tree (and its build time).

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, Instant},
};

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};
use tracing::debug;

use super::{Status, socket::Source, status::LAG_BUCKETS_US};

type Labels = Vec<(&'static str, String)>;

const STATES: [&str; 4] = ["initialize", "backup", "master", "fault"];

/// The OpenMetrics text exposition of `status`.
pub fn render(status: &Status) -> String {
    let mut registry = Registry::with_prefix("vipd");
    let state = Family::<Labels, Gauge>::default();
    let priority = Family::<Labels, Gauge>::default();
    let transitions = Family::<Labels, Counter>::default();
    let sent = Family::<Labels, Counter>::default();
    let received = Family::<Labels, Counter>::default();
    let rejected = Family::<Labels, Counter>::default();
    let answering = Family::<Labels, Gauge>::default();
    let probes = Family::<Labels, Counter>::default();
    let probes_answered = Family::<Labels, Counter>::default();
    let lease = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let advskew = Family::<Labels, Gauge>::default();
    let demotion = Family::<Labels, Gauge>::default();
    let forgotten = Family::<Labels, Counter>::default();
    for i in &status.instances {
        // Interface, VRID and family too, so rules can match one virtual router across
        // routers (two masters for one VRID) whatever each router calls its instance.
        let inst = || {
            vec![
                ("instance", i.name.clone()),
                ("interface", i.interface.clone()),
                ("vrid", i.vrid.to_string()),
                ("family", i.family.clone()),
            ]
        };
        for s in STATES {
            let mut l = inst();
            l.push(("state", s.to_owned()));
            state.get_or_create(&l).set(i64::from(i.state == s));
        }
        priority.get_or_create(&inst()).set(i.priority.into());
        transitions.get_or_create(&inst()).inc_by(i.transitions);
        sent.get_or_create(&inst()).inc_by(i.adverts_sent);
        received.get_or_create(&inst()).inc_by(i.adverts_received);
        rejected.get_or_create(&inst()).inc_by(i.adverts_invalid);
        if i.bfd_probes > 0 {
            probes.get_or_create(&inst()).inc_by(i.bfd_probes);
            probes_answered
                .get_or_create(&inst())
                .inc_by(i.bfd_probes_answered);
        }
        if let Some(c) = &i.carp {
            advskew.get_or_create(&inst()).set(c.advskew.into());
            demotion.get_or_create(&inst()).set(c.demote.into());
            forgotten.get_or_create(&inst()).inc_by(c.replay_forgotten);
        }
        if let Some(d) = &i.dataplane {
            answering.get_or_create(&inst()).set(i64::from(d.answering));
            lease
                .get_or_create(&inst())
                .set(d.lease_remaining_ms / 1000.0);
        }
    }
    registry.register(
        "carp_advskew",
        "A CARP instance's advskew in use (255 - its effective priority)",
        advskew,
    );
    registry.register(
        "carp_demotion",
        "The demotion count a CARP instance advertises",
        demotion,
    );
    registry.register(
        "carp_replay_ranges_forgotten",
        "Remembered CARP counter ranges dropped for lack of room (1,024 per instance)",
        forgotten,
    );
    registry.register(
        "dataplane_answering",
        "1 while the XDP program answers for the instance's VIPs (owned slot, live lease)",
        answering,
    );
    registry.register(
        "lease_remaining_seconds",
        "Time left on the slot's lease as the XDP program sees it (0 when not owned)",
        lease,
    );
    let xdp = Family::<Labels, Counter>::default();
    for (reason, v) in &status.xdp {
        xdp.get_or_create(&vec![("reason", reason.clone())])
            .inc_by(*v);
    }
    let conflicts = Family::<Labels, Counter>::default();
    for c in &status.conflicts {
        conflicts
            .get_or_create(&vec![("vip", c.vip.clone()), ("mac", c.mac.clone())])
            .inc_by(c.count);
    }
    registry.register(
        "instance_state",
        "1 for the state each instance is in",
        state,
    );
    registry.register("instance_priority", "Effective VRRP priority", priority);
    registry.register("transitions", "State transitions", transitions);
    registry.register("adverts_sent", "VRRP advertisements sent", sent);
    registry.register("adverts_received", "VRRP advertisements received", received);
    registry.register(
        "adverts_rejected",
        "Advertisements the daemon refused (TTL, version, v2 password, allowlist)",
        rejected,
    );
    registry.register("xdp_packets", "XDP verdicts by reason", xdp);
    registry.register(
        "vip_conflicts",
        "Frames from another MAC claiming an owned VIP",
        conflicts,
    );
    let rejected_by = Family::<Labels, Counter>::default();
    for i in &status.instances {
        for (reason, n) in &i.adverts_rejected {
            rejected_by
                .get_or_create(&vec![
                    ("instance", i.name.clone()),
                    ("reason", reason.clone()),
                ])
                .inc_by(*n);
        }
    }
    registry.register(
        "adverts_rejected_by_reason",
        "Advertisements the daemon refused, by reason (version_mismatch: the other VRRP version for this VRID; carp_hmac, carp_replay: a CARP advert's HMAC or counter)",
        rejected_by,
    );
    let mut lag = Histogram::new(LAG_BUCKETS_US.iter().map(|us| *us as f64 / 1e6));
    lag.observe_many(&status.loop_lag);
    registry.register(
        "loop_lag_seconds",
        "Delay between a timer's deadline and the event loop handling it",
        lag,
    );
    let worst = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    worst.set(status.loop_lag.recent_worst_us as f64 / 1e6);
    registry.register(
        "loop_lag_recent_worst_seconds",
        "Worst loop lag in the last minute or two",
        worst,
    );
    let refused = Family::<Labels, Counter>::default();
    for (listener, n) in &status.connections_refused {
        refused
            .get_or_create(&vec![("listener", listener.clone())])
            .inc_by(*n);
    }
    registry.register(
        "connections_refused",
        "Connections refused because the listener served as many as it takes at once",
        refused,
    );
    let process_count = Family::<Labels, Gauge>::default();
    let process_quorum = Family::<Labels, Gauge>::default();
    for i in &status.instances {
        for t in i.tracking.iter().filter(|t| t.kind == "process") {
            let l = vec![("instance", i.name.clone()), ("process", t.name.clone())];
            process_count
                .get_or_create(&l)
                .set(t.count.unwrap_or(0).into());
            process_quorum.get_or_create(&l).set(i64::from(!t.failing));
        }
    }
    registry.register(
        "track_process_running",
        "Running processes matching a tracked process (track_processes)",
        process_count,
    );
    registry.register(
        "track_process_quorum",
        "1 while a tracked process has its quorum as the weights see it (after fork_delay / terminate_delay)",
        process_quorum,
    );
    if let Some(p) = &status.processes {
        let lost = Counter::<u64, AtomicU64>::default();
        lost.inc_by(p.events_lost);
        registry.register(
            "process_events_lost",
            "Times the kernel dropped process events and /proc was counted again",
            lost,
        );
        let refused = Counter::<u64, AtomicU64>::default();
        refused.inc_by(p.pids_refused);
        registry.register(
            "process_pids_refused",
            "Matching processes left out of the counts because the watcher remembers no more",
            refused,
        );
    }
    let svc_packets = Family::<Labels, Counter>::default();
    let svc_flows = Family::<Labels, Counter>::default();
    let svc_quorum = Family::<Labels, Gauge>::default();
    let real_packets = Family::<Labels, Counter>::default();
    let real_flows = Family::<Labels, Counter>::default();
    let real_up = Family::<Labels, Gauge>::default();
    let real_weight = Family::<Labels, Gauge>::default();
    for v in &status.services {
        let l = vec![("service", v.name.clone())];
        svc_packets.get_or_create(&l).inc_by(v.packets);
        svc_flows.get_or_create(&l).inc_by(v.flows);
        svc_quorum.get_or_create(&l).set(i64::from(v.quorum));
        for r in &v.servers {
            let l = vec![
                ("service", v.name.clone()),
                ("real", format!("{}:{}", r.address, r.port)),
            ];
            real_packets.get_or_create(&l).inc_by(r.packets);
            real_flows.get_or_create(&l).inc_by(r.flows);
            real_up.get_or_create(&l).set(i64::from(r.up));
            real_weight.get_or_create(&l).set(i64::from(r.in_table));
        }
    }
    registry.register(
        "lb_service_packets",
        "Packets a virtual service's XDP director forwarded",
        svc_packets,
    );
    registry.register(
        "lb_service_flows",
        "Flows a virtual service's XDP director pinned to a server",
        svc_flows,
    );
    registry.register(
        "lb_service_quorum",
        "1 while the total weight of a service's servers up reaches its quorum",
        svc_quorum,
    );
    registry.register(
        "lb_real_packets",
        "Packets forwarded to a real server",
        real_packets,
    );
    registry.register("lb_real_flows", "Flows pinned to a real server", real_flows);
    registry.register(
        "lb_real_up",
        "1 while a real server passes its health check",
        real_up,
    );
    registry.register(
        "lb_real_weight",
        "A real server's weight in its service's table now (0: no new flows)",
        real_weight,
    );
    let shared_master = Family::<Labels, Gauge>::default();
    let shared_answers = Family::<Labels, Counter>::default();
    for v in &status.shared_vips {
        for g in &v.groups {
            let l = vec![
                ("vip", v.address.clone()),
                ("interface", v.interface.clone()),
                ("instance", g.instance.clone()),
                ("member", g.member.to_string()),
            ];
            shared_master.get_or_create(&l).set(i64::from(g.master));
            if let Some(n) = g.answers {
                shared_answers.get_or_create(&l).inc_by(n);
            }
        }
    }
    registry.register(
        "shared_vip_group_master",
        "1 while this router masters the member group of a shared VIP (active-active)",
        shared_master,
    );
    registry.register(
        "shared_vip_answers",
        "ARP replies and NAs the XDP program sent for shared VIPs on the member group's behalf (all its shared VIPs)",
        shared_answers,
    );
    let socket_read = Family::<Labels, Counter>::default();
    let socket_dropped = Family::<Labels, Counter>::default();
    let socket_vrids = Family::<Labels, Gauge>::default();
    for v in &status.vrrp_sockets {
        let l = vec![
            ("interface", v.interface.clone()),
            ("family", v.family.clone()),
        ];
        socket_read.get_or_create(&l).inc_by(v.read);
        socket_dropped.get_or_create(&l).inc_by(v.dropped);
        socket_vrids.get_or_create(&l).set(v.vrids.len() as i64);
    }
    registry.register(
        "vrrp_socket_read",
        "VRRP packets read from the interface's raw socket (only VRIDs its filter admits)",
        socket_read,
    );
    registry.register(
        "vrrp_socket_dropped",
        "VRRP packets the kernel dropped because the socket's queue was full (the daemon behind on this socket)",
        socket_dropped,
    );
    registry.register(
        "vrrp_socket_vrids",
        "VRIDs the socket filter admits; VRRP for any other is refused in the kernel (counted as xdp_packets reason=vrrp_foreign)",
        socket_vrids,
    );
    let bfd_up = Family::<Labels, Gauge>::default();
    let bfd_detection = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let bfd_downs = Family::<Labels, Counter>::default();
    for b in &status.bfd {
        let l = || vec![("interface", b.interface.clone()), ("peer", b.peer.clone())];
        bfd_up.get_or_create(&l()).set(i64::from(b.state == "up"));
        bfd_detection
            .get_or_create(&l())
            .set(b.echo_detection_ms.unwrap_or(b.detection_ms) / 1000.0);
        for (reason, n) in &b.downs {
            let mut l = l();
            l.push(("diag", reason.clone()));
            bfd_downs.get_or_create(&l).inc_by(*n);
        }
    }
    registry.register("bfd_session_up", "1 while the BFD session is Up", bfd_up);
    registry.register(
        "bfd_probes",
        "Probe advertisements a backup sent after BFD said its master was gone",
        probes,
    );
    registry.register(
        "bfd_probes_answered",
        "Probes the master answered: BFD downs that were false and moved nothing",
        probes_answered,
    );
    registry.register(
        "bfd_detection_seconds",
        "Time without echoes (or Control packets, without the Echo function) after which the session goes down",
        bfd_detection,
    );
    registry.register(
        "bfd_session_downs",
        "Times the BFD session left Up, by diagnostic",
        bfd_downs,
    );
    // Sessions kept only for their neighbours' sake and what was refused: in aggregate,
    // so no neighbour (let alone a stranger) adds a series.
    let b = &status.bfd_summary;
    let passive = Family::<Labels, Gauge>::default();
    passive
        .get_or_create(&vec![("state", "up".to_owned())])
        .set(b.passive_up as i64);
    passive
        .get_or_create(&vec![("state", "not_up".to_owned())])
        .set(b.passive_sessions.saturating_sub(b.passive_up) as i64);
    registry.register(
        "bfd_passive_sessions",
        "BFD sessions kept for neighbours nobody here follows (a master answering its backups)",
        passive,
    );
    let passive_downs = Family::<Labels, Counter>::default();
    for (diag, n) in &b.passive_downs {
        passive_downs
            .get_or_create(&vec![("diag", diag.clone())])
            .inc_by(*n);
    }
    registry.register(
        "bfd_passive_session_downs",
        "Times sessions kept for neighbours left Up, by diagnostic",
        passive_downs,
    );
    let bfd_packets = Family::<Labels, Counter>::default();
    for (what, n) in &b.counters {
        bfd_packets
            .get_or_create(&vec![("what", what.clone())])
            .inc_by(*n);
    }
    registry.register(
        "bfd_packets",
        "BFD packets taken in (control_received, echo_received) and refused, by reason \
         (unknown_neighbour, unmatched, bad_ttl, refused_cap, refused_rate, echo_not_ours, ...)",
        bfd_packets,
    );
    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}

/// A histogram made from the daemon's already-bucketed loop-lag counts.
#[derive(Debug)]
struct Histogram {
    bounds: Vec<f64>,
    sum: f64,
    count: u64,
    cumulative: Vec<u64>,
}

impl Histogram {
    fn new(bounds: impl Iterator<Item = f64>) -> Self {
        Histogram {
            bounds: bounds.collect(),
            sum: 0.0,
            count: 0,
            cumulative: Vec::new(),
        }
    }

    fn observe_many(&mut self, lag: &super::status::LagStatus) {
        self.sum = lag.sum_seconds;
        self.count = lag.count;
        self.cumulative = lag.buckets.clone();
    }
}

impl prometheus_client::encoding::EncodeMetric for Histogram {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        // prometheus-client wants per-bucket (not cumulative) counts with +Inf last.
        let mut previous = 0;
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(
                self.cumulative
                    .iter()
                    .copied()
                    .chain(std::iter::repeat(self.count)),
            )
            .map(|(b, c)| {
                let n = c.saturating_sub(previous);
                previous = c;
                (b, n)
            })
            .collect();
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.sum, self.count, &buckets, None,
        )
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

/// Concurrent metrics connections served at most; more are refused at once (counted).
pub const MAX_CLIENTS: usize = 32;
/// How long a rendered body is served again before the next scrape renders afresh.
pub const CACHE: Duration = Duration::from_secs(1);
/// A client has this long to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// ... and this long to send the request itself: a scraper sends it at once, so a
/// connection that stays silent is idle and gives its slot back quickly.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

/// The latest rendered body and when it was made.
type Cache = tokio::sync::Mutex<Option<(Instant, String)>>;

/// Serves `GET /metrics` until aborted; `refused` counts connections over
/// [`MAX_CLIENTS`].
pub async fn serve(listener: std::net::TcpListener, source: Source, refused: Arc<AtomicU64>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(error) => {
            tracing::warn!(error = %crate::error_chain(&error), "metrics listener cannot be served");
            return;
        }
    };
    let cache: Arc<Cache> = Arc::default();
    let serve = move |(stream, peer): (TcpStream, SocketAddr)| {
        let (source, cache) = (source.clone(), cache.clone());
        async move {
            if tokio::time::timeout(CLIENT_TIMEOUT, answer(stream, source, cache))
                .await
                .is_err()
            {
                debug!(%peer, "metrics client timed out");
            }
        }
    };
    super::accept::bounded("metrics", MAX_CLIENTS, refused, listener, serve).await;
}

async fn body(source: &Source, cache: &Cache) -> Option<String> {
    let mut c = cache.lock().await;
    if let Some((at, b)) = c.as_ref()
        && at.elapsed() < CACHE
    {
        return Some(b.clone());
    }
    let rendered = render(&source().await?);
    *c = Some((Instant::now(), rendered.clone()));
    Some(rendered)
}

async fn answer(mut stream: TcpStream, source: Source, cache: Arc<Cache>) {
    // Read the request head, at most 8 KiB: only the request line matters.
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    if tokio::time::timeout(REQUEST_TIMEOUT, read_head)
        .await
        .is_err()
    {
        return;
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let response = match (parts.next(), parts.next()) {
        (Some("GET"), Some("/metrics")) => match body(&source, &cache).await {
            Some(b) => http(
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                &b,
            ),
            None => http("503 Service Unavailable", "text/plain", "shutting down\n"),
        },
        (Some("GET"), _) => http("404 Not Found", "text/plain", "try /metrics\n"),
        _ => http("405 Method Not Allowed", "text/plain", "GET only\n"),
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn http(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Connections the kernel queues before the listener takes them: a burst of scrapers
/// (or a flood) is accepted and answered or refused, not left timing out.
const BACKLOG: i32 = 1024;

/// Binds the metrics listener (served later, off the loop).
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::control::InstanceStatus;

    fn status() -> Status {
        Status {
            router_id: "r1".into(),
            pid: 1,
            uptime_ms: 10,
            pin_path: "/sys/fs/bpf/vipd/r1".into(),
            instances: vec![InstanceStatus {
                name: "gw".into(),
                interface: "eth0".into(),
                vrid: 51,
                family: "ipv4".into(),
                version: 3,
                protocol: "vrrp".into(),
                carp: None,
                state: "master".into(),
                priority: 150,
                configured_priority: 200,
                master: Some("192.0.2.11".into()),
                master_adver_interval_ms: 100.0,
                master_down_interval_ms: 321.875,
                last_transition: None,
                transitions: 2,
                adverts_sent: 40,
                adverts_received: 3,
                adverts_invalid: 1,
                adverts_rejected: BTreeMap::from([("version_mismatch".to_owned(), 1)]),
                bfd_probes: 4,
                bfd_probes_answered: 3,
                vips: vec!["192.0.2.1/24".into()],
                vmac: None,
                slot: 0,
                sync_group: None,
                demotion: 0,
                yielding: false,
                tracking: vec![crate::control::TrackStatus {
                    kind: "process".into(),
                    name: "haproxy (quorum 1..=unlimited)".into(),
                    failing: true,
                    weight: -50,
                    state: "no quorum".into(),
                    count: Some(0),
                    pending_ms: None,
                }],
                dataplane: Some(crate::control::status::DataplaneStatus {
                    answering: true,
                    lease_remaining_ms: 30.0,
                }),
            }],
            xdp: BTreeMap::from([
                ("arp_reply".to_owned(), 7),
                ("vrrp_drop_peer".to_owned(), 2),
            ]),
            conflicts: vec![],
            loop_lag: crate::control::status::LagStatus {
                worst_us: 1200,
                recent_worst_us: 1200,
                count: 4,
                sum_seconds: 0.0013,
                buckets: vec![3, 3, 3, 3, 3, 4, 4, 4, 4, 4],
            },
            connections_refused: BTreeMap::from([("metrics".to_owned(), 5)]),
            demotions: Default::default(),
            last_reload: None,
            vrrp_sockets: vec![crate::control::status::VrrpSocketStatus {
                interface: "eth0".into(),
                family: "ipv4".into(),
                reads: "51 (v2, v3)".into(),
                vrids: vec![51],
                filter_error: None,
                read: 12,
                dropped: 3,
            }],
            bfd: vec![crate::control::BfdSessionStatus {
                interface: "eth0".into(),
                peer: "192.0.2.12".into(),
                local: "192.0.2.11".into(),
                state: "up".into(),
                subscribed: true,
                echo: true,
                detection_ms: 3000.0,
                echo_detection_ms: Some(3.0),
                last_down: Some("echo-function-failed".into()),
                last_down_ago_ms: Some(1200),
                downs: BTreeMap::from([("echo-function-failed".to_owned(), 2)]),
                local_discriminator: 7,
                remote_discriminator: 9,
                echo_rtt_worst_ms: Some(0.2),
                stalled_ago_ms: None,
            }],
            bfd_summary: crate::control::BfdSummary {
                passive_sessions: 2,
                passive_up: 1,
                learned_sessions: 0,
                passive_downs: BTreeMap::from([("neighbor-signaled-down".to_owned(), 1)]),
                counters: BTreeMap::from([
                    ("control_received".to_owned(), 12),
                    ("unknown_neighbour".to_owned(), 230),
                    ("echo_suspect".to_owned(), 2),
                    ("echo_restored".to_owned(), 1),
                ]),
            },
            processes: Some(crate::control::status::ProcessWatchStatus {
                pids: 3,
                pids_refused: 1,
                events_lost: 2,
                events: 900,
            }),
            services: vec![crate::control::status::LbServiceStatus {
                name: "web".into(),
                quorum: true,
                packets: 9,
                servers: vec![crate::control::status::LbServerStatus {
                    address: "192.0.2.21".into(),
                    port: 80,
                    up: true,
                    in_table: 2,
                    flows: 4,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            shared_vips: vec![crate::control::status::SharedVipStatus {
                address: "192.0.2.50".into(),
                interface: "eth0".into(),
                members: 2,
                groups: vec![crate::control::status::SharedGroupStatus {
                    member: 1,
                    instance: "gw".into(),
                    vrid: 51,
                    protocol: "vrrp".into(),
                    vmac: "00:00:5e:00:01:33".into(),
                    state: "master".into(),
                    master: true,
                    slot: 0,
                    answering: Some(true),
                    answers: Some(11),
                }],
            }],
        }
    }

    #[test]
    fn snapshot_renders_as_openmetrics_with_every_family() {
        let text = render(&status());
        for line in [
            "vipd_instance_state{instance=\"gw\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\",state=\"master\"} 1",
            "vipd_instance_state{instance=\"gw\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\",state=\"backup\"} 0",
            "vipd_instance_priority{instance=\"gw\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\"} 150",
            "vipd_transitions_total{instance=\"gw\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\"} 2",
            "vipd_adverts_sent_total{instance=\"gw\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\"} 40",
            "vipd_adverts_received_total{instance=\"gw\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\"} 3",
            "vipd_adverts_rejected_total{instance=\"gw\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\"} 1",
            "vipd_xdp_packets_total{reason=\"arp_reply\"} 7",
            "vipd_xdp_packets_total{reason=\"vrrp_drop_peer\"} 2",
            "vipd_adverts_rejected_by_reason_total{instance=\"gw\",reason=\"version_mismatch\"} 1",
            "vipd_loop_lag_seconds_bucket{le=\"0.00005\"} 3",
            "vipd_loop_lag_seconds_count 4",
            "vipd_connections_refused_total{listener=\"metrics\"} 5",
            "vipd_dataplane_answering{instance=\"gw\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\"} 1",
            "vipd_lease_remaining_seconds{instance=\"gw\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\"} 0.03",
            "vipd_bfd_session_up{interface=\"eth0\",peer=\"192.0.2.12\"} 1",
            "vipd_vrrp_socket_read_total{interface=\"eth0\",family=\"ipv4\"} 12",
            "vipd_vrrp_socket_dropped_total{interface=\"eth0\",family=\"ipv4\"} 3",
            "vipd_vrrp_socket_vrids{interface=\"eth0\",family=\"ipv4\"} 1",
            "vipd_bfd_probes_answered_total{instance=\"gw\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\"} 3",
            "vipd_bfd_detection_seconds{interface=\"eth0\",peer=\"192.0.2.12\"} 0.003",
            "vipd_bfd_session_downs_total{interface=\"eth0\",peer=\"192.0.2.12\",diag=\"echo-function-failed\"} 2",
            "vipd_bfd_passive_sessions{state=\"up\"} 1",
            "vipd_bfd_passive_sessions{state=\"not_up\"} 1",
            "vipd_bfd_passive_session_downs_total{diag=\"neighbor-signaled-down\"} 1",
            "vipd_bfd_packets_total{what=\"unknown_neighbour\"} 230",
            "vipd_track_process_running{instance=\"gw\",process=\"haproxy (quorum 1..=unlimited)\"} 0",
            "vipd_track_process_quorum{instance=\"gw\",process=\"haproxy (quorum 1..=unlimited)\"} 0",
            "vipd_process_events_lost_total 2",
            "vipd_process_pids_refused_total 1",
            "vipd_lb_service_packets_total{service=\"web\"} 9",
            "vipd_lb_service_quorum{service=\"web\"} 1",
            "vipd_lb_real_flows_total{service=\"web\",real=\"192.0.2.21:80\"} 4",
            "vipd_lb_real_up{service=\"web\",real=\"192.0.2.21:80\"} 1",
            "vipd_lb_real_weight{service=\"web\",real=\"192.0.2.21:80\"} 2",
            "vipd_shared_vip_group_master{vip=\"192.0.2.50\",interface=\"eth0\",instance=\"gw\",member=\"1\"} 1",
            "vipd_shared_vip_answers_total{vip=\"192.0.2.50\",interface=\"eth0\",instance=\"gw\",member=\"1\"} 11",
            "# EOF",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn a_carp_instance_has_its_skew_demotion_and_refusals_in_metrics_and_status() {
        let mut st = status();
        let i = &mut st.instances[0];
        i.protocol = "carp".into();
        i.carp = Some(crate::control::status::CarpStatus {
            advbase: 1,
            advskew: 105,
            demote: 0,
            replay: "strict".into(),
            refused_auth: 4,
            refused_replay: 2,
            refused_ttl: 0,
            replay_forgotten: 1,
        });
        i.adverts_rejected = [("carp_hmac".to_owned(), 4), ("carp_replay".to_owned(), 2)].into();
        let text = render(&st);
        for line in [
            "vipd_carp_advskew{instance=\"gw\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\"} 105",
            "vipd_carp_demotion{instance=\"gw\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\"} 0",
            "vipd_carp_replay_ranges_forgotten_total{instance=\"gw\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\"} 1",
            "vipd_adverts_rejected_by_reason_total{instance=\"gw\",reason=\"carp_hmac\"} 4",
            "vipd_adverts_rejected_by_reason_total{instance=\"gw\",reason=\"carp_replay\"} 2",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        let status = st.render();
        assert!(
            status.contains("gw (eth0 vhid 51 ipv4 carp): MASTER"),
            "{status}"
        );
        assert!(
            status.contains(
                "carp advbase 1 s advskew 105 demotion 0 replay strict  refused: hmac 4 replay 2 ttl 0  counters forgotten 1"
            ),
            "{status}"
        );
    }

    #[test]
    fn status_text_has_a_line_per_followed_session_and_one_for_the_rest() {
        let text = status().render();
        assert!(
            text.contains(
                "bfd eth0 192.0.2.11 -> 192.0.2.12: UP  detection 3000.0 ms, echo 3.0 ms"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "bfd: 2 session(s) for neighbours (1 up); echo paths suspect 2, slow not down \
                 1; refused unknown_neighbour=230\n"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn http_endpoint_serves_metrics_from_a_cache_and_refuses_other_paths() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let asked = Arc::new(AtomicU64::new(0));
        let counter = asked.clone();
        let source: Source = Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            Box::pin(async { Some(status()) })
        });
        let refused = Arc::new(AtomicU64::new(0));
        let server = tokio::spawn(serve(listener, source, refused.clone()));
        let get = |path: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = get("/metrics").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        assert!(ok.contains("vipd_xdp_packets_total{reason=\"arp_reply\"} 7"));
        for _ in 0..5 {
            assert!(get("/metrics").await.starts_with("HTTP/1.1 200 OK"));
        }
        assert_eq!(
            asked.load(Ordering::Relaxed),
            1,
            "one snapshot a second at most"
        );
        assert!(get("/").await.starts_with("HTTP/1.1 404"));
        // Idle connections fill every slot; the next is refused and counted.
        let mut idle = Vec::new();
        for _ in 0..MAX_CLIENTS {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let mut out = String::new();
        let _ = extra.read_to_string(&mut out).await;
        assert!(out.is_empty(), "refused without an answer: {out}");
        assert!(refused.load(Ordering::Relaxed) >= 1);
        server.abort();
    }
}
