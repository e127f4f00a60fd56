//! Prometheus metrics, rendered with prometheus-client from a status snapshot at each
//! scrape: the daemon loop stays the only owner of state, and every figure agrees with
//! `vipd status`.
//!
//! The HTTP side is a few lines over a tokio listener rather than a web framework: one
//! read-only GET endpoint does not justify the dependency tree (and its build time).

use std::{net::SocketAddr, time::Duration};

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot},
};
use tracing::debug;

use super::{Status, socket::StatusRequest};

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
    for i in &status.instances {
        let inst = || vec![("instance", i.name.clone())];
        for s in STATES {
            let mut l = inst();
            l.push(("state", s.to_owned()));
            state.get_or_create(&l).set(i64::from(i.state == s));
        }
        priority.get_or_create(&inst()).set(i.priority.into());
        transitions.get_or_create(&inst()).inc_by(i.transitions);
        sent.get_or_create(&inst()).inc_by(i.adverts_sent);
        received.get_or_create(&inst()).inc_by(i.adverts_received);
    }
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
    registry.register("xdp_packets", "XDP verdicts by reason", xdp);
    registry.register(
        "vip_conflicts",
        "Frames from another MAC claiming an owned VIP",
        conflicts,
    );
    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}

/// Serves `GET /metrics` on `listener` until the daemon goes away.
pub async fn serve(listener: TcpListener, to_daemon: mpsc::Sender<StatusRequest>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let to_daemon = to_daemon.clone();
        tokio::spawn(async move {
            if tokio::time::timeout(Duration::from_secs(5), answer(stream, to_daemon))
                .await
                .is_err()
            {
                debug!(%peer, "metrics client timed out");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, to_daemon: mpsc::Sender<StatusRequest>) {
    // Read the request head, at most 8 KiB: only the request line matters.
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let response = match (parts.next(), parts.next()) {
        (Some("GET"), Some("/metrics")) => {
            let (tx, rx) = oneshot::channel();
            let body = if to_daemon.send(tx).await.is_ok() {
                rx.await.map(|s| render(&s)).ok()
            } else {
                None
            };
            match body {
                Some(b) => http(
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    &b,
                ),
                None => http("503 Service Unavailable", "text/plain", "shutting down\n"),
            }
        }
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

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

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
                vips: vec!["192.0.2.1/24".into()],
                vmac: None,
                slot: 0,
                sync_group: None,
                tracking: vec![],
            }],
            xdp: BTreeMap::from([
                ("arp_reply".to_owned(), 7),
                ("vrrp_drop_peer".to_owned(), 2),
            ]),
            conflicts: vec![],
        }
    }

    #[test]
    fn snapshot_renders_as_openmetrics_with_every_family() {
        let text = render(&status());
        for line in [
            "vipd_instance_state{instance=\"gw\",state=\"master\"} 1",
            "vipd_instance_state{instance=\"gw\",state=\"backup\"} 0",
            "vipd_instance_priority{instance=\"gw\"} 150",
            "vipd_transitions_total{instance=\"gw\"} 2",
            "vipd_adverts_sent_total{instance=\"gw\"} 40",
            "vipd_adverts_received_total{instance=\"gw\"} 3",
            "vipd_xdp_packets_total{reason=\"arp_reply\"} 7",
            "vipd_xdp_packets_total{reason=\"vrrp_drop_peer\"} 2",
            "# EOF",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[tokio::test]
    async fn http_endpoint_serves_metrics_and_refuses_other_paths() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel::<StatusRequest>(1);
        let daemon = tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                let _ = req.send(status());
            }
        });
        let server = tokio::spawn(serve(listener, tx));
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
        assert!(get("/").await.starts_with("HTTP/1.1 404"));
        server.abort();
        daemon.abort();
    }
}
