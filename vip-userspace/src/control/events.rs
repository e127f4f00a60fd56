//! `vipd events`: a stream of JSON lines, one per event (transitions, sync-group
//! transitions, BFD session changes, handovers, reload outcomes, maintenance commands),
//! for operators who would otherwise parse a keepalived notify FIFO.
//!
//! The event loop publishes into a [`tokio::sync::broadcast`] ring of [`CAPACITY`]
//! events: publishing never waits and never fails for a slow reader. Each client reads the
//! ring at its own pace from the control server's thread; one that falls a whole ring
//! behind (or does not take a line within [`WRITE_TIMEOUT`]) is told so in a last line and
//! dropped, so no client can hold the loop or grow memory.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Events held for the slowest client: beyond that it is dropped.
pub const CAPACITY: usize = 256;

/// A client that does not take a line within this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Event streams served at once, of the control socket's clients (the rest of its slots
/// stay for status queries and commands).
pub const MAX_STREAMS: usize = 8;

/// One event, as one JSON line: `{"ts": UNIX seconds, "event": KIND, ...}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// When it happened, seconds since the UNIX epoch.
    pub ts: f64,
    #[serde(flatten)]
    pub what: What,
}

/// One instance's part in a reload (or its dry run).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InstanceChange {
    pub instance: String,
    /// `unchanged`, `changed`, `restarted`, `added` or `removed`.
    pub outcome: String,
    /// The fields changed in place, or why it restarts; empty otherwise.
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum What {
    Transition {
        instance: String,
        from: String,
        to: String,
        priority: u8,
        reason: String,
    },
    SyncTransition {
        sync_group: String,
        to: String,
    },
    /// A planned handover (a stop, or `vipd handover`) ended: the successor heard, or
    /// nobody before the lease ran out.
    Handover {
        group: String,
        successor: Option<String>,
    },
    Bfd {
        interface: String,
        peer: String,
        from: String,
        to: String,
        diag: String,
    },
    Reload {
        ok: bool,
        message: String,
        instances: Vec<InstanceChange>,
    },
    Maintenance {
        command: String,
        uid: u32,
        pid: Option<i32>,
        ok: bool,
        message: String,
    },
}

/// The loop's end: publishing never waits.
#[derive(Debug, Clone)]
pub struct Publisher {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for Publisher {
    fn default() -> Self {
        Publisher {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Publisher {
    /// Publishes `what`, stamped now (to nobody when no client listens).
    pub fn publish(&self, what: What) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let _ = self.tx.send(Arc::new(Event { ts, what }));
    }

    /// A new client's view, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}
