//! The daemon: one task owns every instance and drives the state machines from packets,
//! timers, link events, tracking, signals and control requests. Nothing else mutates
//! state, so there are no locks; slow work (netlink address changes, scripts) runs in
//! helper tasks that report back.

mod background;
mod clock;
mod group;
mod iface;
mod member;
mod schedule;
mod setup;
mod status;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
    time::Instant,
};

use anyhow::{Context as _, Result};
use futures_util::StreamExt as _;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
};
use tracing::{error, info, warn};

use group::Group;
pub use group::TAKEOVER_GUARD;
use iface::{Iface, Inbound};

use crate::{
    config::{Config, LocalHost},
    control::{self, socket::StatusRequest},
    dataplane::{Dataplane, ModePreference},
    net::{LinkEvent, Netlink},
    track::TrackUpdate,
    vrrp::{Advert, Event, Family},
};

/// How often the XDP program's conflict records are read.
const CONFLICT_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

pub struct Options {
    pub config: PathBuf,
    /// Leave program, maps, slots and addresses in place on exit (an upgrade restarts
    /// within the lease and resumes without a gap).
    pub keep_on_exit: bool,
    pub xdp_mode: ModePreference,
}

/// What the groups share: the data plane, netlink, the attached interfaces and the
/// channels helper tasks report on.
pub struct Ctx {
    pub dp: Dataplane,
    pub nl: Netlink,
    pub ifaces: BTreeMap<u32, Iface>,
    pub inbound: mpsc::Sender<Vec<Inbound>>,
    pub track_tx: mpsc::Sender<TrackUpdate>,
    pub xdp_mode: ModePreference,
    pub next_member_id: u64,
    pub background: background::Background,
    /// See `clock::coarse_lag`.
    pub coarse_lag: std::time::Duration,
}

struct Daemon {
    opts: Options,
    config: Config,
    ctx: Ctx,
    groups: Vec<Group>,
    /// (ifindex, family, VRID) → (group, member): where an advert goes, without a scan
    /// over hundreds of instances per packet. Rebuilt whenever groups change.
    index: HashMap<(u32, Family, u8), (usize, usize)>,
    schedule: schedule::Schedule,
    /// When the XDP program's CONFLICTS map is read next, and the newest conflict already
    /// acted on (monotonic ns).
    conflicts_due: crate::vrrp::Time,
    conflicts_seen_ns: u64,
    started: Instant,
}

/// Loads the configuration (nothing is touched if it is invalid), starts, and runs until
/// SIGTERM / SIGINT.
pub async fn run(opts: Options) -> Result<()> {
    let config = Config::load(&opts.config, &LocalHost)?;
    // Claim the control socket first: a second daemon with the same router_id must fail
    // before it touches anything the first one owns.
    let control = control::socket::bind(&config.global.control_socket).await?;
    let metrics = match config.global.metrics {
        Some(addr) => Some(
            control::metrics::bind(addr)
                .await
                .with_context(|| format!("binding metrics on {addr}"))?,
        ),
        None => None,
    };
    let dp = Dataplane::open(&config.global.pin_path).with_context(|| {
        format!(
            "opening the data plane under {}",
            config.global.pin_path.display()
        )
    })?;
    let nl = Netlink::connect()?;
    // Batches of up to 64 packets: the queue holds a few thousand adverts at most.
    let (inbound_tx, inbound_rx) = mpsc::channel(64);
    let (track_tx, track_rx) = mpsc::channel(256);
    let (status_tx, status_rx) = mpsc::channel::<StatusRequest>(16);
    let ctx = Ctx {
        dp,
        nl,
        ifaces: BTreeMap::new(),
        inbound: inbound_tx,
        track_tx,
        xdp_mode: opts.xdp_mode,
        next_member_id: 0,
        background: background::Background::start()?,
        coarse_lag: clock::coarse_lag(),
    };
    let mut d = Daemon {
        opts,
        config,
        ctx,
        groups: Vec::new(),
        index: HashMap::new(),
        schedule: schedule::Schedule::default(),
        conflicts_due: clock::now(),
        conflicts_seen_ns: clock::nanos(clock::now()),
        started: Instant::now(),
    };
    let links = Netlink::link_events()?;
    d.start_groups().await?;
    let control_path = d.config.global.control_socket.clone();
    let server = tokio::spawn(control::socket::serve(control, status_tx.clone()));
    let metrics_server =
        metrics.map(|l| tokio::spawn(control::metrics::serve(l, status_tx.clone())));
    info!(
        router_id = %d.config.global.router_id,
        instances = d.config.instances.len(),
        pin_path = %d.config.global.pin_path.display(),
        control_socket = %control_path.display(),
        "vipd running"
    );
    let result = d.run_loop(inbound_rx, track_rx, status_rx, links).await;
    server.abort();
    if let Some(m) = metrics_server {
        m.abort();
    }
    let _ = std::fs::remove_file(&control_path);
    result
}

impl Daemon {
    async fn start_groups(&mut self) -> Result<()> {
        let mut taken = BTreeSet::new();
        for (key, members) in setup::desired_groups(&self.config) {
            let g = setup::add_group(&mut self.ctx, key, members, &taken).await?;
            taken.insert(g.slot);
            self.groups.push(g);
        }
        setup::prune_stale_entries(&mut self.ctx, &self.groups);
        self.reindex();
        Ok(())
    }

    /// After groups changed (start, reload, rebuild, tracking, links): every lookup
    /// structure from scratch. Rare events; the per-packet paths update incrementally.
    fn reindex(&mut self) {
        self.reschedule();
        self.index = self
            .groups
            .iter()
            .enumerate()
            .flat_map(|(g, group)| {
                group
                    .members
                    .iter()
                    .enumerate()
                    .map(move |(i, m)| ((m.ifindex, m.cfg.family, m.cfg.vrid), (g, i)))
            })
            .collect();
    }

    fn next_deadline(&mut self) -> Option<crate::vrrp::Time> {
        let groups = &self.groups;
        let next = self
            .schedule
            .next(|g| groups.get(g).and_then(Group::next_deadline));
        Some(next.map_or(self.conflicts_due, |t| t.min(self.conflicts_due)))
    }

    /// Another station claiming a VIP we answer for (seen by the XDP program as an ARP
    /// reply or gratuitous ARP from a foreign MAC) gets our binding re-announced, at most
    /// once per check: clients that believed the other station come back. This is what
    /// heals a split brain whose loser stepped down before the winner heard it.
    fn check_conflicts(&mut self, now: crate::vrrp::Time) {
        self.conflicts_due = now + CONFLICT_CHECK;
        let Ok(conflicts) = self.ctx.dp.maps().conflicts() else {
            return;
        };
        let fresh: Vec<_> = conflicts
            .into_iter()
            .filter(|(_, c)| c.last_seen_ns > self.conflicts_seen_ns)
            .collect();
        if fresh.is_empty() {
            return;
        }
        for (key, c) in &fresh {
            self.conflicts_seen_ns = self.conflicts_seen_ns.max(c.last_seen_ns);
            for g in &self.groups {
                if !g.owned {
                    continue;
                }
                for m in &g.members {
                    let claimed = |v: &ipnet::IpNet| setup::vip_key(m.ifindex, v) == *key;
                    if m.cfg.vips.iter().any(|v| claimed(&v.net)) {
                        warn!(
                            instance = %m.cfg.name,
                            claimed_by = %crate::net::link::fmt_mac(&c.mac),
                            "another station claims an owned VIP; re-announcing"
                        );
                        m.announce(&self.ctx, claimed);
                    }
                }
            }
        }
    }

    async fn run_loop(
        &mut self,
        mut inbound: mpsc::Receiver<Vec<Inbound>>,
        mut track: mpsc::Receiver<TrackUpdate>,
        mut status: mpsc::Receiver<StatusRequest>,
        links: impl futures_util::Stream<Item = LinkEvent>,
    ) -> Result<()> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut ticker = clock::Ticker::new()?;
        let mut links = Box::pin(links);
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => self.reload().await,
                r = ticker.sleep_until(deadline) => {
                    r?;
                    self.poll();
                }
                Some(batch) = inbound.recv() => self.on_inbound(batch),
                Some(ev) = links.next() => self.on_link(ev).await,
                Some(u) = track.recv() => self.on_track(u),
                Some(req) = status.recv() => {
                    let _ = req.send(self.status());
                }
            }
        }
        if self.opts.keep_on_exit {
            info!("exiting with program, maps and VIPs left in place (--keep-on-exit)");
            for g in &mut self.groups {
                for m in &mut g.members {
                    m.stop();
                }
            }
            return Ok(());
        }
        self.handover(&mut inbound, &mut ticker).await;
        self.teardown().await;
        Ok(())
    }

    fn poll(&mut self) {
        let now = clock::now();
        let groups = &self.groups;
        let due = self
            .schedule
            .due(now, |g| groups.get(g).and_then(Group::next_deadline));
        for g in due {
            if let Some(group) = self.groups.get_mut(g) {
                group.poll(&mut self.ctx, now);
                self.schedule.push(g, group.next_deadline());
            }
        }
        if self.conflicts_due <= now {
            self.check_conflicts(now);
        }
    }

    fn on_inbound(&mut self, batch: Vec<Inbound>) {
        let now = clock::now();
        for p in batch {
            let r = &p.packet;
            let advert = match Advert::decode(&r.vrrp, r.src, r.dst) {
                Ok(a) => a,
                Err(error) => {
                    tracing::debug!(src = %r.src, %error, "undecodable VRRP");
                    continue;
                }
            };
            if let Some(&(g, i)) = self.index.get(&(p.ifindex, p.family, advert.vrid))
                && let Some(group) = self.groups.get_mut(g)
            {
                group.on_advert(&mut self.ctx, now, i, r.src, r.ttl, &advert);
                self.schedule.push(g, group.next_deadline());
            }
        }
    }

    async fn on_link(&mut self, ev: LinkEvent) {
        let (name, ifindex, up, removed) = match &ev {
            LinkEvent::Changed(l) => (l.name.clone(), l.ifindex, l.up, false),
            LinkEvent::Removed { ifindex, name } => (name.clone(), *ifindex, false, true),
        };
        // An interface we run on that came back with a new index: rebuild its groups.
        if !removed
            && !self.ctx.ifaces.contains_key(&ifindex)
            && self.config.instances.iter().any(|i| i.interface == name)
        {
            self.rebuild_interface(&name).await;
            return;
        }
        if let Some(iface) = self.ctx.ifaces.get_mut(&ifindex) {
            iface.link.up = up;
        }
        if removed {
            warn!(interface = %name, "interface removed");
            self.ctx.ifaces.remove(&ifindex);
        }
        let now = clock::now();
        for g in &mut self.groups {
            for i in 0..g.members.len() {
                let m = &mut g.members[i];
                let mut touched = false;
                if m.ifindex == ifindex {
                    m.track.link_up = up;
                    touched = true;
                }
                for (t, state) in m
                    .cfg
                    .track_interfaces
                    .iter()
                    .zip(m.track.interfaces_up.iter_mut())
                {
                    if t.name == name {
                        *state = up;
                        touched = true;
                    }
                }
                if touched {
                    apply_tracking(&mut self.ctx, g, i, now);
                }
            }
        }
        self.reschedule();
    }

    /// Every group's deadline afresh, after an event that may have touched many.
    fn reschedule(&mut self) {
        self.schedule
            .rebuild(self.groups.iter().map(Group::next_deadline));
    }

    async fn rebuild_interface(&mut self, name: &str) {
        info!(
            interface = name,
            "interface (re)appeared: rebuilding its instances"
        );
        let mut keep = Vec::new();
        for g in std::mem::take(&mut self.groups) {
            if g.members.iter().any(|m| m.cfg.interface == name) {
                setup::remove_group(&mut self.ctx, g).await;
            } else {
                keep.push(g);
            }
        }
        self.ctx.ifaces.retain(|_, i| i.link.name != name);
        self.groups = keep;
        let desired = setup::desired_groups(&self.config);
        self.start_missing(desired).await;
        self.reindex();
    }

    /// Starts every desired group that is not running; returns how many started. A group
    /// that cannot start is logged and skipped: the others must not suffer for it.
    async fn start_missing(
        &mut self,
        desired: Vec<(String, Vec<crate::config::Instance>)>,
    ) -> usize {
        let mut taken: BTreeSet<u32> = self.groups.iter().map(|g| g.slot).collect();
        let mut started = 0;
        for (key, members) in desired {
            if self.groups.iter().any(|g| g.key == key) {
                continue;
            }
            match setup::add_group(&mut self.ctx, key.clone(), members, &taken).await {
                Ok(g) => {
                    taken.insert(g.slot);
                    self.groups.push(g);
                    started += 1;
                }
                Err(error) => {
                    error!(group = %key, error = %format!("{error:#}"), "could not start")
                }
            }
        }
        started
    }

    fn on_track(&mut self, u: TrackUpdate) {
        let now = clock::now();
        for (gi, g) in self.groups.iter_mut().enumerate() {
            if let Some(i) = g.members.iter().position(|m| m.id == u.member) {
                g.members[i].track.apply(&u.item);
                apply_tracking(&mut self.ctx, g, i, now);
                self.schedule.push(gi, g.next_deadline());
                return;
            }
        }
    }

    /// SIGHUP: a new configuration replaces only what changed; a bad one changes nothing.
    async fn reload(&mut self) {
        let new = match Config::load(&self.opts.config, &LocalHost) {
            Ok(c) => c,
            Err(e) => {
                error!("reload rejected, still running the previous configuration:\n{e}");
                return;
            }
        };
        let g_old = &self.config.global;
        let g_new = &new.global;
        if g_old.router_id != g_new.router_id
            || g_old.pin_path != g_new.pin_path
            || g_old.control_socket != g_new.control_socket
            || g_old.metrics != g_new.metrics
        {
            error!("reload rejected: [global] changed; restart vipd to apply it");
            return;
        }
        let desired = setup::desired_groups(&new);
        let mut keep = Vec::new();
        let mut kept = 0;
        for g in std::mem::take(&mut self.groups) {
            let same = desired.iter().any(|(k, members)| {
                *k == g.key
                    && members.len() == g.members.len()
                    && members.iter().zip(&g.members).all(|(a, b)| *a == b.cfg)
            });
            if same {
                kept += 1;
                keep.push(g);
            } else {
                info!(group = %g.key, "configuration changed or removed: stopping");
                setup::remove_group(&mut self.ctx, g).await;
            }
        }
        self.groups = keep;
        let started = self.start_missing(desired).await;
        self.reindex();
        // Interfaces nothing runs on any more lose the program.
        let used: BTreeSet<u32> = self
            .groups
            .iter()
            .flat_map(|g| g.members.iter().map(|m| m.ifindex))
            .collect();
        let unused: Vec<u32> = self
            .ctx
            .ifaces
            .keys()
            .filter(|i| !used.contains(i))
            .copied()
            .collect();
        for ifindex in unused {
            if let Some(iface) = self.ctx.ifaces.remove(&ifindex) {
                let _ = Dataplane::detach(&self.config.global.pin_path, &iface.link.name);
            }
        }
        self.config = new;
        info!(kept, started, "configuration reloaded");
    }

    /// Resign everywhere; keep answering until each new master is heard (bounded).
    async fn handover(
        &mut self,
        inbound: &mut mpsc::Receiver<Vec<Inbound>>,
        ticker: &mut clock::Ticker,
    ) {
        let now = clock::now();
        for g in &mut self.groups {
            g.begin_handover(&mut self.ctx, now);
        }
        self.reschedule();
        let started = Instant::now();
        while self.groups.iter().any(Group::handover_pending) {
            let deadline = self.next_deadline();
            tokio::select! {
                Some(batch) = inbound.recv() => self.on_inbound(batch),
                r = ticker.sleep_until(deadline) => {
                    if r.is_err() { break; }
                    self.poll();
                }
            }
        }
        info!(
            took_ms = started.elapsed().as_millis() as u64,
            "handover complete"
        );
    }

    /// Releases every slot, removes every VIP, then detaches and unpins: in that order, so
    /// no instant exists where a VIP is on an interface with no program guarding it.
    async fn teardown(&mut self) {
        for g in std::mem::take(&mut self.groups) {
            setup::remove_group(&mut self.ctx, g).await;
        }
        let pin = self.config.global.pin_path.clone();
        for (_, iface) in std::mem::take(&mut self.ctx.ifaces) {
            if let Err(e) = Dataplane::detach(&pin, &iface.link.name) {
                warn!(interface = %iface.link.name, error = %e, "detach failed");
            }
        }
        if Dataplane::attached_interfaces(&pin)
            .map(|l| l.is_empty())
            .unwrap_or(false)
            && let Err(e) = Dataplane::unpin_maps(&pin)
        {
            warn!(error = %e, "unpinning maps failed");
        }
        info!("vipd stopped");
    }

    fn status(&self) -> control::Status {
        status::snapshot(self)
    }
}

/// Re-evaluates tracking for member `i` and tells its machine what changed.
fn apply_tracking(ctx: &mut Ctx, g: &mut Group, i: usize, now: crate::vrrp::Time) {
    let outcome = {
        let m = &g.members[i];
        m.track.outcome(&m.cfg)
    };
    let (fault_was, prio_was) = (g.members[i].applied_fault, g.members[i].applied_priority);
    if outcome.priority != prio_was {
        g.members[i].applied_priority = outcome.priority;
        info!(instance = %g.members[i].cfg.name, priority = outcome.priority, "tracking changed priority");
        g.handle(ctx, now, i, Event::PriorityChanged(outcome.priority));
    }
    if outcome.fault != fault_was {
        g.members[i].applied_fault = outcome.fault;
        let event = if outcome.fault {
            Event::Fault
        } else {
            Event::FaultCleared
        };
        g.handle(ctx, now, i, event);
    }
}
