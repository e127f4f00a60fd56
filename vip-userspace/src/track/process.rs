//! Tracked processes (keepalived's `vrrp_track_process`): how many running processes
//! match each pattern, kept current from the kernel's process connector
//! (`track::connector`) on a thread of its own, `vipd-process`, and reported to the event
//! loop as counts. What a count means (quorum, delays, weight) is decided in
//! `crate::vrrp::tracking`.
//!
//! What counts, as in keepalived: processes, not threads (only thread-group leaders), not
//! zombies; matched exactly (never as a pattern) against the kernel's name of the process
//! (`/proc/PID/comm`, the program's file name cut to 15 bytes, or what it set with
//! `prctl(PR_SET_NAME)`), or with `full_command` / `args` against the command line
//! (`argv[0]` and the arguments). A child forked by a counted process counts at once under
//! its parent's patterns; an exec looks at `/proc/PID` again; a rename (`PR_SET_NAME`)
//! carries the new name in the event. `/proc` is scanned once per new pattern, and all of
//! it again (at most once a second) when the kernel reports lost events (`ENOBUFS`), which
//! is counted and logged.
//!
//! Bounds: at most [`MAX_PIDS`] matching processes are remembered (more are counted in
//! `pids_refused` and left out of the counts), at most twice the configuration's limit of
//! patterns are held (those of a configuration being prepared besides the running one),
//! and a burst of events is taken in batches of [`BATCH`], the counts of a batch reported
//! once.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::Read as _,
    os::fd::{AsRawFd, OwnedFd, RawFd},
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow};
use proc_connector::ProcEvent;
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::{mpsc, oneshot, watch},
};
use tracing::{debug, info, warn};

use super::{
    Report,
    connector::{Connector, Read},
};
use crate::{
    config::{MAX_TRACKED_PROCESSES, ProcessPattern},
    vrrp::tracking::{ProcessChange, TrackItem},
};

/// Matching processes remembered at most.
pub const MAX_PIDS: usize = 16_384;
/// Patterns held at most: the running configuration's and a prepared one's.
const MAX_SLOTS: usize = 2 * MAX_TRACKED_PROCESSES;
/// Connector messages taken in before the counts are reported.
pub const BATCH: usize = 256;
/// After lost events, `/proc` is scanned again this long after the first loss (and no
/// more often): a storm that overflows the socket would otherwise keep the thread
/// scanning.
const RESCAN_AFTER: Duration = Duration::from_secs(1);
/// The connector socket's receive buffer grows to this at most after losses.
const MAX_RECV_BUFFER: usize = 4 << 20;

/// What `/proc` says about one live process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub comm: Vec<u8>,
    /// `/proc/PID/cmdline`, cut short after the bytes any pattern needs; `None` when no
    /// pattern looks at it.
    pub cmdline: Option<Vec<u8>>,
}

/// The name and state fields of `/proc/PID/stat`: `PID (COMM) S ...`, where COMM may
/// itself hold parentheses and spaces, so it ends at the last `)`.
pub fn parse_stat(stat: &[u8]) -> Option<(&[u8], u8)> {
    let open = stat.iter().position(|b| *b == b'(')?;
    let close = stat.iter().rposition(|b| *b == b')')?;
    if close < open {
        return None;
    }
    let state = *stat.get(close + 2)?;
    Some((&stat[open + 1..close], state))
}

fn read_bounded(path: &Path, max: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(max.min(4096));
    std::fs::File::open(path)?
        .take(max as u64)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// Looks at process `pid`: `None` when it is gone, a zombie, or hidden from vipd.
/// `cmdline` bytes of its command line are read when non-zero.
pub fn look(pid: u32, cmdline: usize) -> Option<Seen> {
    let dir = Path::new("/proc").join(pid.to_string());
    // The name is at most 15 bytes, so the state follows well within 128 bytes.
    let stat = read_bounded(&dir.join("stat"), 128).ok()?;
    let (comm, state) = parse_stat(&stat)?;
    // Z: zombie, X: dead. keepalived does not count them: they do not run.
    if matches!(state, b'Z' | b'X') {
        return None;
    }
    let comm = comm.to_vec();
    let cmdline = if cmdline > 0 {
        Some(read_bounded(&dir.join("cmdline"), cmdline).ok()?)
    } else {
        None
    };
    Some(Seen { comm, cmdline })
}

/// The arguments in `/proc/PID/cmdline`: each ends with a NUL (the last one too, unless
/// the read was cut short).
pub fn argv_of(cmdline: &[u8]) -> impl Iterator<Item = &[u8]> {
    cmdline
        .strip_suffix(&[0])
        .unwrap_or(cmdline)
        .split(|b| *b == 0)
}

/// Every process id in `/proc` (thread-group leaders only: threads live under
/// `/proc/PID/task`).
fn proc_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Why `/proc` does not show this process every other one: the `hidepid` option of its
/// mount (systemd's `ProtectProc=`), or PID 1 unreadable. `None` when it shows them.
pub fn proc_hidden() -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if let Some(option) = hidepid(&mountinfo) {
        return Some(format!(
            "/proc is mounted with hidepid={option} (systemd's ProtectProc={option})"
        ));
    }
    match std::fs::read("/proc/1/stat") {
        Ok(_) => None,
        Err(e) => Some(format!("/proc/1/stat cannot be read ({e})")),
    }
}

/// The `hidepid=` option of the `/proc` mount in a mountinfo text (the last mount on
/// `/proc`, the one that shows), unless it hides nothing (`off`, `0`).
pub fn hidepid(mountinfo: &str) -> Option<String> {
    let mut option = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.get(4) != Some(&"/proc") || fields.get(dash + 1) != Some(&"proc") {
            continue;
        }
        option = fields
            .get(dash + 3)
            .copied()
            .unwrap_or("")
            .split(',')
            .find_map(|o| o.strip_prefix("hidepid="))
            .filter(|v| !matches!(*v, "off" | "0"))
            .map(str::to_owned);
    }
    option
}

/// One pattern's count.
#[derive(Debug, Clone)]
struct Slot {
    pattern: ProcessPattern,
    count: u32,
}

/// The counts: which remembered process matches which pattern. Pure apart from the
/// [`Seen`]s handed in, so the unit tests feed it events by hand.
#[derive(Debug, Default)]
pub struct Table {
    slots: Vec<Option<Slot>>,
    by_pattern: HashMap<ProcessPattern, usize>,
    /// pid → the slots it counts in (sorted).
    pids: HashMap<u32, Vec<usize>>,
    /// Matching processes left out because [`MAX_PIDS`] were remembered.
    pub refused: u64,
}

/// Per slot, its count before a batch and what changed it last.
pub type Changes = BTreeMap<usize, (u32, ProcessChange)>;

/// Which patterns an observation decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every pattern (a scan, an exec).
    All,
    /// Only those matching the kernel's name (a rename: the command line is unchanged).
    Comm,
}

impl Table {
    pub fn slot(&self, pattern: &ProcessPattern) -> Option<usize> {
        self.by_pattern.get(pattern).copied()
    }

    pub fn count(&self, slot: usize) -> u32 {
        self.slots
            .get(slot)
            .and_then(Option::as_ref)
            .map_or(0, |s| s.count)
    }

    pub fn pattern(&self, slot: usize) -> Option<&ProcessPattern> {
        self.slots.get(slot)?.as_ref().map(|s| &s.pattern)
    }

    pub fn patterns(&self) -> impl Iterator<Item = (usize, &ProcessPattern)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, &s.as_ref()?.pattern)))
    }

    pub fn pids(&self) -> usize {
        self.pids.len()
    }

    /// Command-line bytes the patterns need (0: none looks at it).
    pub fn cmdline_bytes(&self) -> usize {
        self.patterns()
            .map(|(_, p)| p.argv_bytes())
            .max()
            .unwrap_or(0)
    }

    /// A new pattern, counted 0 until scanned; `None` when the table is full.
    pub fn add(&mut self, pattern: ProcessPattern) -> Option<usize> {
        if let Some(slot) = self.slot(&pattern) {
            return Some(slot);
        }
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.slots.len() < MAX_SLOTS => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return None,
        };
        self.by_pattern.insert(pattern.clone(), slot);
        self.slots[slot] = Some(Slot { pattern, count: 0 });
        Some(slot)
    }

    /// Forgets a pattern and its processes.
    pub fn remove(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot).and_then(Option::take) {
            self.by_pattern.remove(&s.pattern);
        }
        self.pids.retain(|_, slots| {
            slots.retain(|s| *s != slot);
            !slots.is_empty()
        });
    }

    fn bump(&mut self, slot: usize, up: bool, cause: ProcessChange, changes: &mut Changes) {
        let Some(s) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let before = s.count;
        s.count = if up {
            before.saturating_add(1)
        } else {
            before.saturating_sub(1)
        };
        changes.entry(slot).or_insert((before, cause)).1 = cause;
    }

    /// Sets `pid`'s slots to `now` (those in `keep` left as they were).
    fn set(
        &mut self,
        pid: u32,
        mut now: Vec<usize>,
        keep: impl Fn(usize) -> bool,
        cause: ProcessChange,
        changes: &mut Changes,
    ) {
        let old = self.pids.get(&pid).cloned().unwrap_or_default();
        now.extend(old.iter().copied().filter(|s| keep(*s)));
        now.sort_unstable();
        now.dedup();
        if now == old {
            return;
        }
        if old.is_empty() && self.pids.len() >= MAX_PIDS {
            self.refused += 1;
            if self.refused.is_power_of_two() {
                warn!(
                    pid,
                    refused = self.refused,
                    max = MAX_PIDS,
                    "too many matching processes to remember; this one is not counted"
                );
            }
            return;
        }
        for s in old.iter().filter(|s| !now.contains(s)) {
            self.bump(*s, false, cause, changes);
        }
        for s in now.iter().filter(|s| !old.contains(s)) {
            self.bump(*s, true, cause, changes);
        }
        if now.is_empty() {
            self.pids.remove(&pid);
        } else {
            self.pids.insert(pid, now);
        }
    }

    /// The slots among `only` that `seen` matches.
    fn matching(&self, seen: &Seen, only: impl Fn(usize) -> bool) -> Vec<usize> {
        self.patterns()
            .filter(|(slot, _)| only(*slot))
            .filter(|(_, p)| {
                p.matches_comm(&seen.comm)
                    || seen
                        .cmdline
                        .as_deref()
                        .is_some_and(|c| p.matches_argv(argv_of(c)))
            })
            .map(|(slot, _)| slot)
            .collect()
    }

    /// `pid` looked like `seen` (`None`: gone or hidden) after an exec, a rename or in a
    /// scan; only the slots in `scope` (and, for a scan, `only`) are decided by it.
    pub fn observe(
        &mut self,
        pid: u32,
        seen: Option<&Seen>,
        scope: Scope,
        only: impl Fn(usize) -> bool,
        cause: ProcessChange,
        changes: &mut Changes,
    ) {
        // Per slot (at most MAX_SLOTS): whether this observation decides it.
        let decided: Vec<bool> = (0..self.slots.len())
            .map(|slot| {
                only(slot)
                    && match scope {
                        Scope::All => self.pattern(slot).is_some(),
                        Scope::Comm => self.pattern(slot).is_some_and(|p| p.argv.is_none()),
                    }
            })
            .collect();
        let decides = |slot: usize| decided.get(slot).copied().unwrap_or(false);
        let now = seen.map_or_else(Vec::new, |seen| self.matching(seen, decides));
        if now.is_empty() && !self.pids.contains_key(&pid) {
            // The common case: a process nobody tracks.
            return;
        }
        self.set(pid, now, |s| !decides(s), cause, changes);
    }

    /// `parent` forked `child`: the child counts wherever its parent does.
    pub fn fork(&mut self, parent: u32, child: u32, changes: &mut Changes) {
        let Some(slots) = self.pids.get(&parent).cloned() else {
            return;
        };
        self.set(child, slots, |_| true, ProcessChange::Fork, changes);
    }

    /// `pid` exited.
    pub fn exit(&mut self, pid: u32, changes: &mut Changes) {
        self.set(pid, Vec::new(), |_| false, ProcessChange::Exit, changes);
    }

    /// Counts the slots in `only` from scratch over `/proc` as `look` shows it.
    pub fn scan(
        &mut self,
        pids: &[u32],
        look: impl Fn(u32) -> Option<Seen>,
        only: impl Fn(usize) -> bool + Copy,
        cause: ProcessChange,
        changes: &mut Changes,
    ) {
        let running: HashSet<u32> = pids.iter().copied().collect();
        // Processes that are gone but whose exit was lost.
        let stale: Vec<u32> = self
            .pids
            .keys()
            .copied()
            .filter(|p| !running.contains(p))
            .collect();
        for pid in stale {
            self.observe(pid, None, Scope::All, only, cause, changes);
        }
        for &pid in pids {
            let seen = look(pid);
            self.observe(pid, seen.as_ref(), Scope::All, only, cause, changes);
        }
    }
}

/// One instance's interest in a pattern: where its counts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub report: Report,
    /// The index into the instance's `track_processes`.
    pub index: usize,
    pub pattern: ProcessPattern,
}

/// Node-wide figures, for `vipd status` and the metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Matching processes remembered now.
    pub pids: AtomicU64,
    /// Matching processes left out (over [`MAX_PIDS`]).
    pub pids_refused: AtomicU64,
    /// Times the kernel dropped process events and `/proc` was scanned again.
    pub lost: AtomicU64,
    /// Connector messages read.
    pub events: AtomicU64,
}

/// A preparation's question: the counts now for these patterns (added and scanned if
/// new).
struct CountRequest {
    patterns: Vec<ProcessPattern>,
    reply: oneshot::Sender<Result<Vec<u32>, String>>,
}

/// Preparations waiting for counts at most (one runs at a time; `vipd check` none).
const COUNT_QUEUE: usize = 4;

/// The running thread's inputs: bounded, and the subscriptions a single value that each
/// commit replaces (only the latest list matters).
#[derive(Clone)]
struct Handle {
    counts: mpsc::Sender<CountRequest>,
    subs: Arc<watch::Sender<Vec<Subscription>>>,
}

enum State {
    Idle {
        inherited: Option<OwnedFd>,
    },
    /// The connector subscribed, the thread not started yet (see [`Processes::open`]).
    Open(Connector),
    Running(Handle),
}

/// The daemon's handle on the watcher thread, started when a configuration first tracks
/// a process.
#[derive(Clone)]
pub struct Processes {
    state: Arc<Mutex<State>>,
    events: mpsc::Sender<(Report, TrackItem)>,
    pub stats: Arc<Stats>,
}

/// Why processes cannot be tracked here, if they cannot: `/proc` hides processes from
/// vipd.
pub fn usable() -> Result<()> {
    match proc_hidden() {
        Some(why) => Err(anyhow!(
            "track_processes cannot count processes: {why}, which hides other users' \
             processes from vipd; under the packaged unit add a drop-in with \
             ProtectProc=default (docs/operations.md, \"Tracking processes\")"
        )),
        None => Ok(()),
    }
}

impl Processes {
    /// `inherited`: a connector socket handed over by whoever started vipd.
    pub fn new(events: mpsc::Sender<(Report, TrackItem)>, inherited: Option<OwnedFd>) -> Self {
        Processes {
            state: Arc::new(Mutex::new(State::Idle { inherited })),
            events,
            stats: Arc::default(),
        }
    }

    /// Checks that processes can be tracked and subscribes to the connector now, before
    /// start-up touches anything; the thread starts with the first count (after the
    /// capabilities are dropped, so it has none but the kept ones).
    pub fn open(&self) -> Result<()> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| anyhow!("process watcher poisoned"))?;
        if let State::Idle { inherited } = &mut *state {
            usable()?;
            let connector = Connector::open(inherited.take()).context("track_processes")?;
            *state = State::Open(connector);
        }
        Ok(())
    }

    /// The watcher's command channel, starting it if needed. Blocks for up to a second
    /// when the kernel does not acknowledge the subscription: call off the loop.
    fn running(&self) -> Result<Handle> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| anyhow!("process watcher poisoned"))?;
        if let State::Running(h) = &*state
            && !h.counts.is_closed()
        {
            return Ok(h.clone());
        }
        let connector = match std::mem::replace(&mut *state, State::Idle { inherited: None }) {
            State::Open(c) => c,
            State::Idle { inherited } => {
                usable()?;
                Connector::open(inherited).context("track_processes")?
            }
            // The thread ended: subscribe afresh.
            State::Running(_) => Connector::open(None).context("track_processes")?,
        };
        let (counts, counts_rx) = mpsc::channel(COUNT_QUEUE);
        let (subs, subs_rx) = watch::channel(Vec::new());
        let events = self.events.clone();
        let stats = self.stats.clone();
        std::thread::Builder::new()
            .name("vipd-process".into())
            .spawn(move || watch_thread(connector, counts_rx, subs_rx, events, stats))
            .context("starting the process watcher")?;
        info!("process watcher started (kernel process connector)");
        let handle = Handle {
            counts,
            subs: Arc::new(subs),
        };
        *state = State::Running(handle.clone());
        Ok(handle)
    }

    /// The current counts of `patterns`, scanning `/proc` for new ones.
    pub async fn counts(&self, patterns: Vec<ProcessPattern>) -> Result<Vec<u32>> {
        let handle = {
            let this = self.clone();
            tokio::task::spawn_blocking(move || this.running()).await??
        };
        let (reply, rx) = oneshot::channel();
        handle
            .counts
            .send(CountRequest { patterns, reply })
            .await
            .map_err(|_| anyhow!("the process watcher stopped"))?;
        rx.await
            .map_err(|_| anyhow!("the process watcher stopped"))?
            .map_err(|e| anyhow!(e))
    }

    /// From now on report to exactly these subscriptions (the running groups').
    pub fn watch(&self, subs: Vec<Subscription>) {
        let Ok(state) = self.state.lock() else {
            return;
        };
        if let State::Running(h) = &*state {
            h.subs.send_replace(subs);
        } else if !subs.is_empty() {
            // A group tracks processes only after its preparation counted them, which
            // starts the watcher.
            warn!("process subscriptions without a process watcher");
        }
    }
}

/// A raw descriptor for `AsyncFd` (the connector keeps the socket).
struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

struct Watcher {
    table: Table,
    subs: HashMap<usize, Vec<(Report, usize)>>,
    events: mpsc::Sender<(Report, TrackItem)>,
    stats: Arc<Stats>,
}

fn watch_thread(
    mut connector: Connector,
    mut counts: mpsc::Receiver<CountRequest>,
    mut subs: watch::Receiver<Vec<Subscription>>,
    events: mpsc::Sender<(Report, TrackItem)>,
    stats: Arc<Stats>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            warn!(%error, "process watcher: no runtime");
            return;
        }
    };
    rt.block_on(async move {
        // SAFETY: the connector owns the descriptor and is dropped after `afd`, which is
        // a local of this future while the connector is captured by it.
        let afd = match unsafe {
            AsyncFd::register_with_interest(Fd(connector.fd()), Interest::READABLE)
        } {
            Ok(a) => a,
            Err(error) => {
                warn!(%error, "process watcher: cannot poll the connector");
                return;
            }
        };
        let mut w = Watcher {
            table: Table::default(),
            subs: HashMap::new(),
            events,
            stats,
        };
        let mut rescan_at: Option<tokio::time::Instant> = None;
        loop {
            let rescan = async {
                match rescan_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                req = counts.recv() => match req {
                    None => return,
                    Some(CountRequest { patterns, reply }) => {
                        let _ = reply.send(w.counts(&patterns));
                    }
                },
                changed = subs.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let list = subs.borrow_and_update().clone();
                    if !w.watch(list).await {
                        return;
                    }
                }
                ready = afd.readable() => {
                    let Ok(mut guard) = ready else { return };
                    let (drained, lost) = w.read_batch(&mut connector).await;
                    if drained {
                        guard.clear_ready();
                    }
                    if lost && rescan_at.is_none() {
                        let n = w.stats.lost.fetch_add(1, Relaxed) + 1;
                        let buffer = connector.grow_buffer(MAX_RECV_BUFFER);
                        warn!(
                            lost = n,
                            receive_buffer = ?buffer,
                            "the kernel dropped process events; /proc is scanned again in 1 s"
                        );
                        rescan_at = Some(tokio::time::Instant::now() + RESCAN_AFTER);
                    }
                    if w.events.is_closed() {
                        return;
                    }
                }
                _ = rescan => {
                    rescan_at = None;
                    if !w.rescan().await {
                        return;
                    }
                }
            }
        }
    });
}

impl Watcher {
    fn publish_stats(&self) {
        self.stats.pids.store(self.table.pids() as u64, Relaxed);
        self.stats.pids_refused.store(self.table.refused, Relaxed);
    }

    /// The counts of `patterns`, scanning for the new ones.
    fn counts(&mut self, patterns: &[ProcessPattern]) -> Result<Vec<u32>, String> {
        self.add(patterns)?;
        Ok(patterns
            .iter()
            .map(|p| self.table.slot(p).map_or(0, |s| self.table.count(s)))
            .collect())
    }

    /// Reports to exactly `subs` from now on; `false` once the daemon's loop is gone.
    async fn watch(&mut self, subs: Vec<Subscription>) -> bool {
        let patterns: Vec<ProcessPattern> = subs.iter().map(|s| s.pattern.clone()).collect();
        if let Err(error) = self.add(&patterns) {
            warn!(%error, "process watcher");
        }
        let old = std::mem::take(&mut self.subs);
        for s in subs {
            if let Some(slot) = self.table.slot(&s.pattern) {
                self.subs.entry(slot).or_default().push((s.report, s.index));
            }
        }
        let unused: Vec<usize> = self
            .table
            .patterns()
            .map(|(s, _)| s)
            .filter(|s| !self.subs.contains_key(s))
            .collect();
        for slot in unused {
            debug!(pattern = ?self.table.pattern(slot), "no longer tracked");
            self.table.remove(slot);
        }
        // A new subscriber hears the count now: it may have moved since its preparation
        // counted.
        let mut fresh = Vec::new();
        for (slot, subs) in &self.subs {
            for sub in subs {
                if !old.get(slot).is_some_and(|o| o.contains(sub)) {
                    fresh.push((*sub, *slot));
                }
            }
        }
        self.publish_stats();
        for ((report, index), slot) in fresh {
            let item = TrackItem::Process {
                index,
                count: self.table.count(slot),
                cause: ProcessChange::Scan,
            };
            if self.events.send((report, item)).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Adds and scans the patterns not held yet.
    fn add(&mut self, patterns: &[ProcessPattern]) -> Result<(), String> {
        let mut new = Vec::new();
        for p in patterns {
            if self.table.slot(p).is_some() {
                continue;
            }
            match self.table.add(p.clone()) {
                Some(slot) => new.push(slot),
                None => return Err(format!("more than {MAX_SLOTS} tracked process patterns")),
            }
        }
        if !new.is_empty() {
            let cmdline = self.table.cmdline_bytes();
            let mut changes = Changes::new();
            self.table.scan(
                &proc_pids(),
                |pid| look(pid, cmdline),
                |s| new.contains(&s),
                ProcessChange::Scan,
                &mut changes,
            );
            for slot in &new {
                info!(
                    pattern = %self.table.pattern(*slot).map(ToString::to_string).unwrap_or_default(),
                    count = self.table.count(*slot),
                    "tracking processes"
                );
            }
            self.publish_stats();
        }
        Ok(())
    }

    /// Takes in up to [`BATCH`] messages; (whether the socket was drained, whether events
    /// were lost).
    async fn read_batch(&mut self, connector: &mut Connector) -> (bool, bool) {
        let cmdline = self.table.cmdline_bytes();
        let mut changes = Changes::new();
        let mut drained = false;
        let mut lost = false;
        for _ in 0..BATCH {
            let event = match connector.read() {
                Ok(Read::Event(e)) => e,
                Ok(Read::Empty) => {
                    drained = true;
                    break;
                }
                Ok(Read::Lost) => {
                    lost = true;
                    continue;
                }
                Ok(Read::Ignored) => continue,
                Err(error) => {
                    warn!(%error, "reading the process connector");
                    drained = true;
                    break;
                }
            };
            self.stats.events.fetch_add(1, Relaxed);
            self.apply(&event, cmdline, &mut changes);
        }
        self.publish_stats();
        self.report(changes).await;
        (drained, lost)
    }

    fn apply(&mut self, event: &ProcEvent, cmdline: usize, changes: &mut Changes) {
        match *event {
            // A thread (child_pid != child_tgid) is not a process.
            ProcEvent::Fork {
                parent_tgid,
                child_pid,
                child_tgid,
                ..
            } if child_pid == child_tgid => self.table.fork(parent_tgid, child_tgid, changes),
            ProcEvent::Exec { pid, tgid, .. } if pid == tgid => {
                let seen = look(pid, cmdline);
                self.table.observe(
                    pid,
                    seen.as_ref(),
                    Scope::All,
                    |_| true,
                    ProcessChange::Renamed,
                    changes,
                );
            }
            ProcEvent::Comm {
                pid, tgid, comm, ..
            } if pid == tgid => {
                let end = comm.iter().position(|b| *b == 0).unwrap_or(comm.len());
                let seen = Seen {
                    comm: comm[..end].to_vec(),
                    cmdline: None,
                };
                self.table.observe(
                    pid,
                    Some(&seen),
                    Scope::Comm,
                    |_| true,
                    ProcessChange::Renamed,
                    changes,
                );
            }
            ProcEvent::Exit { pid, tgid, .. } if pid == tgid => self.table.exit(pid, changes),
            _ => {}
        }
    }

    /// Counts everything again after lost events.
    async fn rescan(&mut self) -> bool {
        let cmdline = self.table.cmdline_bytes();
        let mut changes = Changes::new();
        self.table.scan(
            &proc_pids(),
            |pid| look(pid, cmdline),
            |_| true,
            ProcessChange::Rescan,
            &mut changes,
        );
        info!(
            changed = changes.len(),
            "processes counted again after lost events"
        );
        self.publish_stats();
        self.report(changes).await
    }

    /// Sends each count that moved over the batch to its subscribers.
    async fn report(&mut self, changes: Changes) -> bool {
        for (slot, (before, cause)) in changes {
            let count = self.table.count(slot);
            if count == before {
                continue;
            }
            debug!(
                pattern = %self.table.pattern(slot).map(ToString::to_string).unwrap_or_default(),
                before, count, ?cause, "process count changed"
            );
            for (report, index) in self.subs.get(&slot).cloned().unwrap_or_default() {
                let item = TrackItem::Process {
                    index,
                    count,
                    cause,
                };
                if self.events.send((report, item)).await.is_err() {
                    return false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests;
