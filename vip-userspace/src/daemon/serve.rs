//! What runs on the worker thread to serve operators and watch the data plane: the control
//! socket and the metrics listener (bounded, see `crate::control`), and the reader of the
//! XDP program's conflict records. The loop only hands out its instance snapshot and
//! carries out commands (each a map write or a preparation handed to the worker); the
//! counters and conflicts are read, the answers serialised and event streams written,
//! here.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, Result};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;
use vip_common::Counters;

use super::clock;
use crate::{
    control::{
        self,
        events::{Event, Publisher},
        socket::{Access, Backend, BoxFuture, Peer, Reply, Request, Source, ToLoop},
        status::ConflictStatus,
    },
    dataplane::{Maps, entries::key_addr},
    net::link::fmt_mac,
    worker::Worker,
};

/// The control server's way to the loop.
struct ToDaemon {
    to_loop: mpsc::Sender<ToLoop>,
    source: Source,
    events: Publisher,
}

impl Backend for ToDaemon {
    fn status(&self) -> BoxFuture<Option<control::Status>> {
        (self.source)()
    }

    fn command(&self, request: Request, peer: Peer) -> BoxFuture<Option<Reply>> {
        let to_loop = self.to_loop.clone();
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            to_loop
                .send(ToLoop::Command {
                    request,
                    peer,
                    reply,
                })
                .await
                .ok()?;
            rx.await.ok()
        })
    }

    fn events(&self) -> tokio::sync::broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }
}

#[allow(clippy::too_many_arguments)]
pub fn start(
    worker: &Worker,
    control: std::os::unix::net::UnixListener,
    access: Access,
    metrics: Option<std::net::TcpListener>,
    to_loop: mpsc::Sender<ToLoop>,
    events: Publisher,
    pin: &Path,
    conflicts: mpsc::Sender<IpAddr>,
    every: Duration,
) -> Result<()> {
    let maps = Arc::new(
        Maps::open_pinned(pin)
            .with_context(|| format!("opening the pinned maps under {}", pin.display()))?,
    );
    let refused_control = Arc::new(AtomicU64::new(0));
    let refused_metrics = Arc::new(AtomicU64::new(0));
    let source: Source = {
        let (maps, rc, rm, to_loop) = (
            maps.clone(),
            refused_control.clone(),
            refused_metrics.clone(),
            to_loop.clone(),
        );
        Arc::new(move || {
            let (to_loop, maps, rc, rm) = (to_loop.clone(), maps.clone(), rc.clone(), rm.clone());
            Box::pin(async move {
                let (tx, rx) = oneshot::channel();
                to_loop.send(ToLoop::Status(tx)).await.ok()?;
                let mut status = rx.await.ok()?;
                complete(&mut status, &maps);
                status.connections_refused = BTreeMap::from([
                    ("control".to_owned(), rc.load(Ordering::Relaxed)),
                    ("metrics".to_owned(), rm.load(Ordering::Relaxed)),
                ]);
                Some(status)
            })
        })
    };
    let backend = Arc::new(ToDaemon {
        to_loop,
        source: source.clone(),
        events,
    });
    worker.spawn(control::socket::serve(
        control,
        backend,
        access,
        refused_control,
    ));
    if let Some(l) = metrics {
        worker.spawn(control::metrics::serve(l, source, refused_metrics));
    }
    worker.spawn(watch_conflicts(maps, conflicts, every));
    Ok(())
}

/// Adds what the data plane counted to the loop's snapshot.
fn complete(status: &mut control::Status, maps: &Maps) {
    let counters = maps.counters().unwrap_or_default();
    status.xdp = Counters::NAMES
        .iter()
        .zip(counters.values())
        .map(|(n, v)| ((*n).to_owned(), v))
        .collect();
    let now_ns = clock::nanos(clock::now());
    // The program compares leases with the coarse clock; so does this view.
    let coarse_ns = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC_COARSE)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(now_ns);
    for i in &mut status.instances {
        if let Ok(g) = maps.group(i.slot) {
            let answering = g.answers(coarse_ns);
            i.dataplane = Some(control::status::DataplaneStatus {
                answering,
                lease_remaining_ms: if answering {
                    g.lease_deadline_ns.saturating_sub(coarse_ns) as f64 / 1e6
                } else {
                    0.0
                },
            });
        }
    }
    for g in status
        .shared_vips
        .iter_mut()
        .flat_map(|v| v.groups.iter_mut())
    {
        g.answering = maps.group(g.slot).ok().map(|s| s.answers(coarse_ns));
        g.answers = maps.shared_answers(g.slot).ok();
    }
    status.conflicts = maps
        .conflicts()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, c)| ConflictStatus {
            vip: key_addr(&k).to_string(),
            mac: fmt_mac(&c.mac),
            count: c.count,
            last_seen_ago_ms: now_ns.saturating_sub(c.last_seen_ns) / 1_000_000,
        })
        .collect();
}

/// Reads the XDP program's conflict records every `every` and reports the fresh ones
/// (another station claiming a VIP we answer for) to the loop, which re-announces.
async fn watch_conflicts(maps: Arc<Maps>, to_loop: mpsc::Sender<IpAddr>, every: Duration) {
    let mut seen_ns = clock::nanos(clock::now());
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(all) = maps.conflicts() else {
            continue;
        };
        let newest = seen_ns;
        for (k, c) in all {
            if c.last_seen_ns > newest {
                seen_ns = seen_ns.max(c.last_seen_ns);
                warn!(vip = %key_addr(&k), claimed_by = %fmt_mac(&c.mac), "another station claims a VIP");
                if to_loop.try_send(key_addr(&k)).is_err() && to_loop.is_closed() {
                    return;
                }
            }
        }
    }
}
