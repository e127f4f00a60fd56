//! The load balancer's shell: a thread of its own (never the event loop, DESIGN rule 7)
//! that owns the load balancer's maps, finds each real server's next hop, runs the
//! health checks through [`crate::check::runner`], feeds their results to the pure
//! `lb::health::Pool` of each service, and applies what it decides: a server that goes
//! down or comes back is one table flip (`LbMaps::install_table`), its hooks run, and
//! its `LB_REALS` entry says whether its established flows stay.
//!
//! Which node forwards is not decided here: each service's entry names the data-plane
//! slot of the instance it follows, and the XDP program forwards only while that slot is
//! owned (`vip-ebpf/src/lb.rs`), so a failover moves the services with the VIPs in the
//! same map write. The daemon only tells this thread the slots again after a reload.

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
    net::{IpAddr, SocketAddr, UdpSocket},
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

use futures_util::TryStreamExt;
use netlink_packet_route::{
    AddressFamily,
    link::LinkAttribute,
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState},
    route::{RouteAddress, RouteAttribute, RouteMessage},
};
use rtnetlink::RouteMessageBuilder;
use tokio::sync::mpsc;
use tracing::{info, warn};
use vip_common::LbServiceKey;

use crate::{
    check::runner::{Checker, Job, Report},
    config::{Command, service::ServiceConfig},
    control::status::{LbServerStatus, LbServiceStatus},
    dataplane::lb::LbMaps,
    exec::{self, RunAs},
    lb::{
        health::{Entry, MemberSpec, Output, Pool, PoolSpec, Timing},
        service::{NextHop, Service, entries, real_entry, table},
    },
    vrrp::timing::Time,
};

/// How often unresolved next hops are looked up again and counters read for status.
const TICK: Duration = Duration::from_secs(1);
/// How long after a reload (or a restart) that changed a service a TCP segment of a
/// flow this director never saw follows the table from before it
/// (`vip_common::LB_F_PREVIOUS`): such a flow began before the change, on a director
/// that has since died (a failover at the moment of a reload). Long enough for a
/// takeover (a Master_Down_Interval, 3.6 s at 1 s adverts) and TCP's first few
/// retransmissions after it; short, because a flow begun after the change on another
/// director that was reloaded too, failing over inside it, reaches the old table's
/// server. Health checks do not start it: every director checks the same servers, so
/// their tables change together and a flow's server is the current table's.
const PREVIOUS_TABLE_FOR: Duration = Duration::from_secs(15);
/// How long a hook may run.
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// The running balancer: dropped, it stops its thread (the data plane keeps what was
/// written: a restarted daemon takes it over).
pub struct Balancer {
    slots: mpsc::UnboundedSender<Vec<u32>>,
    reconfigure: mpsc::UnboundedSender<(Vec<ServiceConfig>, Vec<u32>)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    status: Arc<Mutex<Vec<LbServiceStatus>>>,
    thread: Option<thread::JoinHandle<()>>,
    services: Vec<ServiceConfig>,
}

impl Balancer {
    /// Starts the balancer for `services`, service `i` following data-plane slot
    /// `slots[i]` (ignored for `active = "ecmp"`).
    pub fn start(
        lb: LbMaps,
        services: Vec<ServiceConfig>,
        slots: Vec<u32>,
        run_as: RunAs,
    ) -> std::io::Result<Self> {
        let (slot_tx, slot_rx) = mpsc::unbounded_channel();
        let (reconf_tx, reconf_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let status = Arc::new(Mutex::new(Vec::new()));
        let shared = status.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (checker, reports) = Checker::start(run_as)?;
        let configs = services.clone();
        let thread = thread::Builder::new()
            .name("vipd-balancer".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut state = State::new(lb, services, slots, checker, run_as, shared);
                    state.run(reports, slot_rx, reconf_rx, stop_rx).await;
                })
            })?;
        Ok(Self {
            slots: slot_tx,
            reconfigure: reconf_tx,
            stop: Some(stop),
            status,
            thread: Some(thread),
            services: configs,
        })
    }

    /// The services it runs.
    pub fn services(&self) -> &[ServiceConfig] {
        &self.services
    }

    /// After a reload that changed the services: the new ones, following `slots`. The
    /// thread keeps what did not change (health, data-plane ids, so the flows pinned to
    /// a server stay with it) and installs the rest; the loop only sends.
    pub fn reconfigure(&mut self, services: Vec<ServiceConfig>, slots: Vec<u32>) {
        self.services = services.clone();
        let _ = self.reconfigure.send((services, slots));
    }

    /// After a reload: the slots of the instances the services follow.
    pub fn set_slots(&self, slots: Vec<u32>) {
        let _ = self.slots.send(slots);
    }

    /// The services as last seen (refreshed every second and at each change).
    pub fn status(&self) -> Vec<LbServiceStatus> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One real (or sorry) server as the shell knows it.
struct Server {
    id: u16,
    addr: IpAddr,
    port: u16,
    hop: Option<NextHop>,
    generation: u32,
    last_error: Option<String>,
}

struct Svc {
    config: ServiceConfig,
    core: Service,
    id: u32,
    pool: Pool,
    reals: Vec<Server>,
    sorry: Option<Server>,
    /// Whether its entry is in `LB_SERVICES` yet (written once its table is).
    live: bool,
    /// The set of the table last installed, to install one table per change.
    installed: Option<Vec<(Entry, u32)>>,
    /// Until when the half not in use is marked as the table from before the last
    /// reload (`PREVIOUS_TABLE_FOR`).
    previous_until: Option<Time>,
}

struct State {
    lb: LbMaps,
    services: Vec<Svc>,
    /// Bumped by each reconfiguration: a check report from before it is ignored.
    epoch: usize,
    checker: Checker,
    run_as: RunAs,
    status: Arc<Mutex<Vec<LbServiceStatus>>>,
    nl: Option<rtnetlink::Handle>,
}

fn now() -> Time {
    super::clock::now()
}

/// A real's generation: flows pinned to a data-plane id stay only while the same server
/// holds it (a restart that puts another server at that id lets them go).
fn generation(addr: IpAddr, port: u16) -> u32 {
    let mut h = DefaultHasher::new();
    (addr, port).hash(&mut h);
    (h.finish() as u32) | 1
}

/// The services for `configs`, keeping from `previous` every service whose
/// configuration did not change (its health, ids and installed table) and, for the
/// others, the data-plane id each of their servers had (same service, address and
/// port): a flow pinned to a server stays with it.
fn build(configs: Vec<ServiceConfig>, slots: Vec<u32>, previous: Vec<Svc>) -> Vec<Svc> {
    let t = now();
    let mut ids_before: std::collections::HashMap<(LbServiceKey, IpAddr, u16), u16> =
        std::collections::HashMap::new();
    let mut service_ids: std::collections::HashMap<LbServiceKey, u32> =
        std::collections::HashMap::new();
    let mut kept: Vec<Option<Svc>> = Vec::new();
    let mut previous: Vec<Option<Svc>> = previous.into_iter().map(Some).collect();
    for config in &configs {
        let same = previous
            .iter_mut()
            .find(|p| p.as_ref().is_some_and(|p| p.config == *config))
            .and_then(Option::take);
        kept.push(same);
    }
    for p in previous.iter().flatten() {
        let key = p.core.key();
        service_ids.insert(key, p.id);
        for r in p.reals.iter().chain(&p.sorry) {
            ids_before.insert((key, r.addr, r.port), r.id);
        }
    }
    let mut used_reals: std::collections::HashSet<u16> = kept
        .iter()
        .flatten()
        .flat_map(|s| s.reals.iter().chain(&s.sorry).map(|r| r.id))
        .collect();
    let mut used_services: std::collections::HashSet<u32> =
        kept.iter().flatten().map(|s| s.id).collect();
    let mut out = Vec::new();
    for ((config, slot), kept) in configs.into_iter().zip(slots).zip(kept) {
        if let Some(mut s) = kept {
            if s.core.slot != slot {
                s.core.slot = slot;
                s.live = false;
                s.installed = None;
            }
            out.push(s);
            continue;
        }
        let core = config.to_core(slot);
        let key = core.key();
        let id = match service_ids.get(&key) {
            Some(&id) if !used_services.contains(&id) => id,
            // A fresh id: one no earlier service had, where one is free.
            _ => (0..vip_common::MAX_LB_SERVICES)
                .find(|i| !used_services.contains(i) && !service_ids.values().any(|v| v == i))
                .or_else(|| (0..).find(|i| !used_services.contains(i)))
                .expect("ids"),
        };
        used_services.insert(id);
        let mut alloc = |addr: IpAddr, port: u16| {
            let id = match ids_before.get(&(key, addr, port)) {
                Some(&id) if !used_reals.contains(&id) => id,
                _ => (0..=u16::MAX)
                    .find(|i| !used_reals.contains(i) && !ids_before.values().any(|v| v == i))
                    .or_else(|| (0..=u16::MAX).find(|i| !used_reals.contains(i)))
                    .expect("the configuration caps the servers"),
            };
            used_reals.insert(id);
            Server {
                id,
                addr,
                port,
                hop: None,
                generation: generation(addr, port),
                last_error: None,
            }
        };
        let spec = PoolSpec {
            members: core
                .reals
                .iter()
                .map(|r| MemberSpec {
                    weight: r.weight,
                    inhibit_on_failure: r.inhibit_on_failure,
                    timing: r.check.as_ref().map(|c| Timing {
                        interval: c.interval,
                        retry: c.retry,
                        delay_before_retry: c.delay_before_retry,
                    }),
                })
                .collect(),
            has_sorry: core.sorry.is_some(),
            quorum: core.quorum,
            hysteresis: core.hysteresis,
            alpha: core.alpha,
        };
        let reals = core.reals.iter().map(|r| alloc(r.addr, r.port)).collect();
        let sorry = core.sorry.as_ref().map(|r| alloc(r.addr, r.port));
        out.push(Svc {
            pool: Pool::new(&spec, t),
            config,
            core,
            id,
            reals,
            sorry,
            live: false,
            installed: None,
            previous_until: None,
        });
    }
    out
}

impl State {
    fn new(
        lb: LbMaps,
        configs: Vec<ServiceConfig>,
        slots: Vec<u32>,
        checker: Checker,
        run_as: RunAs,
        status: Arc<Mutex<Vec<LbServiceStatus>>>,
    ) -> Self {
        let mut state = Self {
            lb,
            services: Vec::new(),
            checker,
            run_as,
            status,
            nl: None,
            epoch: 0,
        };
        state.services = build(configs, slots, Vec::new());
        state
    }

    async fn run(
        &mut self,
        mut reports: mpsc::UnboundedReceiver<Report>,
        mut slots: mpsc::UnboundedReceiver<Vec<u32>>,
        mut reconfigure: mpsc::UnboundedReceiver<(Vec<ServiceConfig>, Vec<u32>)>,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        match rtnetlink::new_connection() {
            Ok((conn, handle, _)) => {
                tokio::spawn(conn);
                self.nl = Some(handle);
            }
            Err(error) => warn!(%error, "no netlink for the load balancer's next hops"),
        }
        self.forget_stale();
        self.resolve().await;
        self.refresh();
        let mut tick = tokio::time::interval(TICK);
        loop {
            self.poll_checks();
            let wait = self
                .services
                .iter()
                .filter_map(|s| s.pool.poll_at())
                .min()
                .map(|at| at.saturating_duration_since(now()))
                .unwrap_or(TICK)
                .min(TICK);
            tokio::select! {
                _ = &mut stop => break,
                Some(r) = reports.recv() => self.on_report(r),
                Some(s) = slots.recv() => self.on_slots(s),
                Some((configs, slots)) = reconfigure.recv() => {
                    self.epoch += 1;
                    let previous = std::mem::take(&mut self.services);
                    let before: Vec<u16> = previous
                        .iter()
                        .flat_map(|s| s.reals.iter().chain(&s.sorry).map(|r| r.id))
                        .collect();
                    self.services = build(configs, slots, previous);
                    self.retire(&before);
                    info!(services = self.services.len(), "services reconfigured");
                    self.forget_stale();
                    self.resolve().await;
                    self.refresh();
                    self.publish();
                }
                _ = tokio::time::sleep(wait) => {}
                _ = tick.tick() => {
                    self.expire_previous();
                    if self.services.iter().any(|s| {
                        s.reals.iter().chain(&s.sorry).any(|r| r.hop.is_none())
                    }) {
                        self.resolve().await;
                    }
                    self.refresh();
                    self.publish();
                }
            }
        }
    }

    /// Marks down the servers of `before` no service holds any more: the flows pinned
    /// to a server taken out of the configuration follow their service's table.
    fn retire(&mut self, before: &[u16]) {
        let now_used: std::collections::HashSet<u16> = self
            .services
            .iter()
            .flat_map(|s| s.reals.iter().chain(&s.sorry).map(|r| r.id))
            .collect();
        for &id in before.iter().filter(|id| !now_used.contains(id)) {
            if let Ok(mut e) = self.lb.real(id.into()) {
                e.flags = 0;
                if let Err(e) = self.lb.set_real(id.into(), e) {
                    warn!(error = %crate::error_chain(&e), "marking a removed server down");
                }
            }
        }
    }

    /// Service entries an earlier run left that this configuration does not have.
    fn forget_stale(&mut self) {
        let keep: Vec<LbServiceKey> = self
            .services
            .iter()
            .flat_map(|s| entries(std::slice::from_ref(&s.core), &[0], &[0]))
            .map(|(k, _)| k)
            .collect();
        if let Ok(existing) = self.lb.services() {
            for (k, _) in existing {
                if !keep.contains(&k)
                    && let Err(e) = self.lb.remove_service(&k)
                {
                    warn!(error = %crate::error_chain(&e), "removing an earlier service");
                }
            }
        }
    }

    fn poll_checks(&mut self) {
        let t = now();
        let epoch = self.epoch;
        for (si, s) in self.services.iter_mut().enumerate() {
            for out in s.pool.poll(t) {
                if let Output::Check(i) = out
                    && let Some(check) = &s.core.reals[i].check
                {
                    let r = &s.core.reals[i];
                    self.checker.submit(Job {
                        key: (si | (epoch << 32), i),
                        kind: check.kind.clone(),
                        target: SocketAddr::new(r.addr, r.port),
                        timeout: check.timeout,
                    });
                }
            }
        }
    }

    fn on_report(&mut self, r: Report) {
        let (tagged, i) = r.key;
        if tagged >> 32 != self.epoch {
            // About a service as it was before a reconfiguration.
            return;
        }
        let si = tagged & 0xffff_ffff;
        let Some(s) = self.services.get_mut(si) else {
            return;
        };
        if let Some(server) = s.reals.get_mut(i) {
            server.last_error = r.error.clone();
        }
        let outs = s.pool.result(now(), i, r.error.is_none());
        self.apply(si, outs);
    }

    fn apply(&mut self, si: usize, outs: Vec<Output>) {
        let run_as = self.run_as;
        let s = &mut self.services[si];
        for out in outs {
            match out {
                Output::Check(_) | Output::SetChanged => {}
                Output::Up(i) | Output::Down(i) => {
                    let up = matches!(out, Output::Up(_));
                    let server = &s.reals[i];
                    info!(
                        service = %s.config.name,
                        real = %SocketAddr::new(server.addr, server.port),
                        up,
                        error = server.last_error.as_deref().unwrap_or(""),
                        "real server changed state"
                    );
                    let hook = if up {
                        &s.config.reals[i].notify_up
                    } else {
                        &s.config.reals[i].notify_down
                    };
                    spawn_hook(hook, &s.config.name, Some(server), run_as);
                }
                Output::QuorumUp | Output::QuorumDown => {
                    let up = out == Output::QuorumUp;
                    info!(service = %s.config.name, up, "quorum changed");
                    let hook = if up {
                        &s.config.quorum_up
                    } else {
                        &s.config.quorum_down
                    };
                    spawn_hook(hook, &s.config.name, None, run_as);
                }
            }
        }
        self.refresh();
        self.publish();
    }

    fn on_slots(&mut self, slots: Vec<u32>) {
        for (s, slot) in self.services.iter_mut().zip(slots) {
            if s.core.slot != slot {
                s.core.slot = slot;
                s.live = false;
                s.installed = None;
            }
        }
        self.refresh();
    }

    /// Brings the data plane to what the pools say: each service whose set changed gets
    /// its reals' entries and one table flip (a new service: its table, then its
    /// entries). Servers whose next hop is not known yet stay out of the table.
    fn refresh(&mut self) {
        for s in &mut self.services {
            let mut set: Vec<(Entry, u32)> = s.pool.set();
            set.retain(|(e, _)| match e {
                Entry::Member(i) => s.reals[*i].hop.is_some(),
                Entry::Sorry => s.sorry.as_ref().is_some_and(|r| r.hop.is_some()),
            });
            if s.installed.as_ref() == Some(&set) && s.live {
                continue;
            }
            if let Err(e) = install(&mut self.lb, s, &set) {
                warn!(service = %s.config.name, error = %crate::error_chain(&e), "could not update the service's table");
                continue;
            }
            s.installed = Some(set);
        }
    }

    /// Clears the previous-table mark of services whose reload is `PREVIOUS_TABLE_FOR`
    /// old.
    fn expire_previous(&mut self) {
        let t = now();
        for s in &mut self.services {
            if s.previous_until.is_some_and(|until| until <= t) {
                match self.lb.set_previous(&s.core.key(), false) {
                    Ok(()) => s.previous_until = None,
                    Err(e) => {
                        warn!(service = %s.config.name, error = %crate::error_chain(&e), "could not clear the previous table")
                    }
                }
            }
        }
    }

    /// Looks up the next hop of every server that has none yet.
    async fn resolve(&mut self) {
        let Some(nl) = self.nl.clone() else { return };
        for s in &mut self.services {
            for server in s.reals.iter_mut().chain(s.sorry.as_mut()) {
                if server.hop.is_some() {
                    continue;
                }
                match next_hop(&nl, server.addr).await {
                    Ok(Some(hop)) => {
                        info!(service = %s.config.name, real = %server.addr, ifindex = hop.ifindex, "next hop found");
                        server.hop = Some(hop);
                    }
                    Ok(None) => probe(server.addr),
                    Err(e) => {
                        server.last_error = Some(e.clone());
                    }
                }
            }
        }
    }

    fn publish(&mut self) {
        let mut out = Vec::new();
        for s in &self.services {
            let counters = self.lb.service_counters(s.id).unwrap_or_default();
            let servers = s
                .reals
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    server_status(
                        &self.lb,
                        r,
                        s.core.reals[i].weight,
                        s.pool.is_up(i),
                        s.installed
                            .as_ref()
                            .and_then(|set| set.iter().find(|(e, _)| *e == Entry::Member(i)))
                            .map(|(_, w)| *w),
                        false,
                    )
                })
                .chain(s.sorry.iter().map(|r| {
                    let in_table = s
                        .installed
                        .as_ref()
                        .and_then(|set| set.iter().find(|(e, _)| *e == Entry::Sorry))
                        .map(|(_, w)| *w);
                    server_status(&self.lb, r, 1, in_table.is_some(), in_table, true)
                }))
                .collect();
            out.push(LbServiceStatus {
                name: s.config.name.clone(),
                vip: s.config.vip.to_string(),
                port: s.config.port,
                protocol: format!("{:?}", s.config.protocol).to_lowercase(),
                follows: s.config.follows().map(str::to_owned),
                slot: s.core.slot,
                quorum: s.pool.quorum(),
                packets: counters.packets,
                bytes: counters.bytes,
                flows: counters.flows,
                servers,
            });
        }
        if let Ok(mut st) = self.status.lock() {
            *st = out;
        }
    }
}

fn server_status(
    lb: &LbMaps,
    r: &Server,
    weight: u32,
    up: bool,
    in_table: Option<u32>,
    sorry: bool,
) -> LbServerStatus {
    let c = lb.real_counters(r.id.into()).unwrap_or_default();
    LbServerStatus {
        address: r.addr.to_string(),
        port: r.port,
        weight,
        up,
        in_table: in_table.unwrap_or(0),
        resolved: r.hop.is_some(),
        sorry,
        last_error: r.last_error.clone(),
        packets: c.packets,
        bytes: c.bytes,
        flows: c.flows,
    }
}

/// Writes a service's servers and table: `set` is what the table holds.
fn install(lb: &mut LbMaps, s: &mut Svc, set: &[(Entry, u32)]) -> crate::dataplane::Result<()> {
    for (i, server) in s.reals.iter().enumerate() {
        if let Some(hop) = &server.hop {
            let up = s.pool.keeps_flows(i);
            let e = real_entry(s.id, &s.core.reals[i], hop, server.generation, up);
            lb.set_real(server.id.into(), e)?;
        }
    }
    if let (Some(server), Some(real)) = (&s.sorry, &s.core.sorry)
        && let Some(hop) = &server.hop
    {
        let e = real_entry(s.id, real, hop, server.generation, true);
        lb.set_real(server.id.into(), e)?;
    }
    let ids: Vec<u16> = s.reals.iter().map(|r| r.id).collect();
    let t = table(&s.core, set, &ids, s.sorry.as_ref().map(|r| r.id));
    let key = s.core.key();
    let existing = lb.service(&key).filter(|v| v.id == s.id);
    if existing.is_some() && s.live {
        // One flip.
        lb.install_table(&key, &t)?;
    } else {
        // New here (or taken over from an earlier run, or its slot moved): the half not
        // in use, then the entries that point at it.
        let half = existing.map_or(0, |v| (v.table + 1) & 1);
        lb.write_table(s.id, half, &t)?;
        // Taken over from an earlier table of the same service (a reload that changed
        // it, or a restart): that table is the previous one, marked in the same write
        // that flips to the new one.
        if existing.is_some() {
            s.previous_until = Some(now() + PREVIOUS_TABLE_FOR);
        }
        for (k, v) in entries(std::slice::from_ref(&s.core), &[s.id], &[half]) {
            // The per-port marker of a VIP another service may share keeps its flags.
            let v = match lb.service(&k) {
                Some(old) if k.port == 0 && k != key => vip_common::LbService {
                    flags: old.flags | v.flags,
                    ..old
                },
                _ if k == key && existing.is_some() => vip_common::LbService {
                    flags: v.flags | vip_common::LB_F_PREVIOUS,
                    ..v
                },
                _ => v,
            };
            lb.set_service(k, v)?;
        }
        s.live = true;
    }
    Ok(())
}

fn spawn_hook(hook: &Option<Command>, service: &str, server: Option<&Server>, run_as: RunAs) {
    let Some(cmd) = hook else { return };
    let argv = cmd.argv().to_vec();
    let mut env = vec![("VIPD_SERVICE", service.to_owned())];
    if let Some(s) = server {
        env.push(("VIPD_REAL_ADDRESS", s.addr.to_string()));
        env.push(("VIPD_REAL_PORT", s.port.to_string()));
    }
    tokio::spawn(async move {
        let o = exec::run(&argv, &env, run_as, HOOK_TIMEOUT).await;
        if !o.success() {
            warn!(hook = ?argv, outcome = %exec::describe(&o), "a service hook failed");
        }
    });
}

/// Makes the kernel resolve `addr`'s neighbour (or its gateway's): one empty datagram
/// to the discard port, which the server drops.
fn probe(addr: IpAddr) {
    let bind: SocketAddr = match addr {
        IpAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
        IpAddr::V6(_) => "[::]:0".parse().expect("literal"),
    };
    if let Ok(sock) = UdpSocket::bind(bind) {
        let _ = sock.send_to(&[], SocketAddr::new(addr, 9));
    }
}

/// The way to `addr`: its interface, the MAC of the server (on link) or of its gateway,
/// this host's MAC and source address there. `None` while the neighbour is unresolved.
async fn next_hop(nl: &rtnetlink::Handle, addr: IpAddr) -> Result<Option<NextHop>, String> {
    let msg = match addr {
        IpAddr::V4(a) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
            .destination_prefix(a, 32)
            .build(),
        IpAddr::V6(a) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
            .destination_prefix(a, 128)
            .build(),
    };
    let route: RouteMessage = nl
        .route()
        .get(msg)
        .execute()
        .try_next()
        .await
        .map_err(|e| format!("no route to {addr}: {e}"))?
        .ok_or_else(|| format!("no route to {addr}"))?;
    let mut oif = None;
    let mut gateway = None;
    let mut src = None;
    for a in &route.attributes {
        match a {
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(g) => gateway = route_ip(g),
            RouteAttribute::PrefSource(s) => src = route_ip(s),
            _ => {}
        }
    }
    let oif = oif.ok_or_else(|| format!("the route to {addr} names no interface"))?;
    let neighbour = gateway.unwrap_or(addr);
    let link = nl
        .link()
        .get()
        .match_index(oif)
        .execute()
        .try_next()
        .await
        .map_err(|e| format!("reading interface {oif}: {e}"))?
        .ok_or_else(|| format!("no interface {oif}"))?;
    let mut src_mac = None;
    let mut mtu = 1500;
    for a in &link.attributes {
        match a {
            LinkAttribute::Address(m) if m.len() == 6 => {
                src_mac = Some(<[u8; 6]>::try_from(m.as_slice()).expect("6 bytes"))
            }
            LinkAttribute::Mtu(m) => mtu = *m,
            _ => {}
        }
    }
    let src_mac = src_mac.ok_or_else(|| format!("interface {oif} has no MAC address"))?;
    let family = if neighbour.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let mut neighbours = nl.neighbours().get().set_address_family(family).execute();
    while let Some(n) = neighbours
        .try_next()
        .await
        .map_err(|e| format!("reading the neighbour table: {e}"))?
    {
        if n.header.ifindex != oif
            || !matches!(
                n.header.state,
                NeighbourState::Reachable
                    | NeighbourState::Stale
                    | NeighbourState::Delay
                    | NeighbourState::Probe
                    | NeighbourState::Permanent
                    | NeighbourState::Noarp
            )
        {
            continue;
        }
        let mut ip = None;
        let mut mac = None;
        for a in &n.attributes {
            match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                    ip = Some(IpAddr::V4(*a))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                    ip = Some(IpAddr::V6(*a))
                }
                NeighbourAttribute::LinkLayerAddress(m) if m.len() == 6 => {
                    mac = Some(<[u8; 6]>::try_from(m.as_slice()).expect("6 bytes"))
                }
                _ => {}
            }
        }
        if ip == Some(neighbour)
            && let Some(mac) = mac
        {
            return Ok(Some(NextHop {
                ifindex: oif,
                vlan: 0,
                mac,
                src_mac,
                src: src.unwrap_or(match addr {
                    IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                }),
                mtu: mtu.min(u32::from(u16::MAX)) as u16,
            }));
        }
    }
    Ok(None)
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::service::{Active, RealConfig};
    use crate::lb::service::{Method, Protocol};

    fn service(port: u16, reals: &[&str]) -> ServiceConfig {
        ServiceConfig {
            name: format!("s{port}"),
            vip: "192.0.2.60".parse().unwrap(),
            port,
            protocol: Protocol::Tcp,
            method: Method::DirectRouting,
            active: Active::Follow("gw".into()),
            source_hash: false,
            hash_seed: 0,
            quorum: 1,
            hysteresis: 0,
            alpha: false,
            quorum_up: None,
            quorum_down: None,
            sorry: None,
            reals: reals
                .iter()
                .map(|a| RealConfig {
                    address: a.parse().unwrap(),
                    port,
                    weight: 1,
                    inhibit_on_failure: false,
                    notify_up: None,
                    notify_down: None,
                    check: None,
                })
                .collect(),
        }
    }

    fn ids(services: &[Svc]) -> Vec<(u32, Vec<(String, u16)>)> {
        services
            .iter()
            .map(|s| {
                (
                    s.id,
                    s.reals.iter().map(|r| (r.addr.to_string(), r.id)).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn a_reconfiguration_keeps_every_servers_id_and_unchanged_services_whole() {
        let first = build(
            vec![
                service(80, &["192.0.2.21", "192.0.2.22"]),
                service(53, &["192.0.2.31"]),
            ],
            vec![0, 0],
            Vec::new(),
        );
        assert_eq!(
            ids(&first),
            [
                (0, vec![("192.0.2.21".into(), 0), ("192.0.2.22".into(), 1)]),
                (1, vec![("192.0.2.31".into(), 2)])
            ]
        );
        // Port 80 gains a server placed first; port 53 is unchanged; a new service.
        let second = build(
            vec![
                service(443, &["192.0.2.41"]),
                service(80, &["192.0.2.23", "192.0.2.21", "192.0.2.22"]),
                service(53, &["192.0.2.31"]),
            ],
            vec![0, 0, 7],
            first,
        );
        assert_eq!(
            ids(&second),
            [
                (2, vec![("192.0.2.41".into(), 3)]),
                (
                    0,
                    vec![
                        ("192.0.2.23".into(), 4),
                        ("192.0.2.21".into(), 0),
                        ("192.0.2.22".into(), 1)
                    ]
                ),
                (1, vec![("192.0.2.31".into(), 2)])
            ]
        );
        // The unchanged service was kept (its slot moved: reinstalled).
        assert_eq!(second[2].core.slot, 7);
        assert!(!second[2].live);
        // A changed service keeps its id; services taken out free theirs.
        let third = build(vec![service(53, &[])], vec![0], second);
        assert_eq!(ids(&third), [(1, vec![])]);
    }
}
