//! The daemon: a thin shell around the pure node core (`crate::vrrp::node`). One event
//! loop owns the core and feeds it what happens (packets, timers, link changes, tracking,
//! conflicts, signals, preparations that came back); it carries out the outputs (slot
//! writes, sends, installer wishes, hook queues) and nothing slower than a map write.
//! Everything slow runs on the worker threads (`crate::worker`) and comes back as
//! events: a reload or an interface rebuild is prepared there (`prepare`) when the core
//! says so (`Node::want`) and committed here in one step when the core says so
//! (`Node::prepared`). docs/architecture.md has the whole picture.

mod addresses;
mod balancer;
mod bfd;
mod clock;
mod execute;
mod iface;
mod io;
mod lag;
mod maintain;
mod prepare;
pub mod privileges;
mod serve;
mod status;
mod systemd;
mod watch;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use futures_util::StreamExt as _;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{Mutex, Notify, mpsc},
};
use tracing::{debug, error, info, warn};

use self::{
    addresses::{Announcement, Installation, Installer},
    iface::{Iface, Inbound},
    io::{GroupIo, MemberIo},
    prepare::{Outcome, Plane, Prepared, Request, Running},
};
use crate::{
    config::{Config, LocalHost},
    control::{
        events::Publisher,
        notify::Notifier,
        socket::{Access, Reply, ToLoop},
    },
    dataplane::{Dataplane, Maps, ModePreference, entries},
    exec::RunAs,
    net::{LinkEvent, Netlink},
    track::{Report, TrackItem, process::Processes},
    vrrp::{
        Advert,
        carp::{self, Proto112, classify_proto112},
        group::{Input, Params},
        node::{Arriving, GroupId, Node, Reshape},
        plan::{self, Prepare, Purpose, Verdict},
    },
    worker::Worker,
};

/// When this router takes over from a master that is still alive (it resigned, or we
/// preempt it), it advertises first and starts answering this much later, so the old
/// master has seen the advert and stopped answering: the client sees at most a short gap,
/// never two routers answering at once.
pub const TAKEOVER_GUARD: Duration = Duration::from_micros(1500);

/// How often the XDP program's conflict records are read.
const CONFLICT_CHECK: Duration = Duration::from_millis(250);

pub struct Options {
    pub config: PathBuf,
    /// Leave program, maps, slots and addresses in place on exit (an upgrade restarts
    /// within the lease and resumes without a gap).
    pub keep_on_exit: bool,
    pub xdp_mode: ModePreference,
}

struct Daemon {
    opts: Options,
    config: Arc<Config>,
    node: Node,
    io: HashMap<GroupId, GroupIo>,
    ifaces: BTreeMap<u32, Iface>,
    /// The loop's own handle on the pinned maps: slot writes and release reads.
    maps: Maps,
    plane: Arc<Mutex<Plane>>,
    worker: Worker,
    addresses: Worker,
    announcer: mpsc::Sender<Announcement>,
    notifier: Notifier,
    /// Who scripts and checks run as (`script_user`).
    run_as: RunAs,
    /// Rung by every socket reader that queued packets (see `iface`).
    doorbell: Arc<Notify>,
    /// The receive buffer of [`Daemon::pump_sockets`], kept between timers.
    pump_buf: Vec<u8>,
    /// The tracking watchers, by id (see `watch`).
    watches: watch::Watches,
    /// The process watcher (`track_processes`), shared with preparations.
    processes: Processes,
    prepared_tx: mpsc::Sender<Outcome>,
    lag: lag::Lag,
    started: Instant,
    bfd: bfd::BfdIo,
    /// Event streams' source (`vipd events`).
    events: Publisher,
    /// `vipd reload` clients waiting for the next reload's outcome.
    reload_waiters: Vec<tokio::sync::oneshot::Sender<Reply>>,
    last_reload: Option<maintain::LastReload>,
    /// The load balancer's thread, where services are configured.
    balancer: Option<balancer::Balancer>,
}

/// What the loop waits on besides signals, timers and links.
struct Receivers {
    track: mpsc::Receiver<(Report, TrackItem)>,
    prepared: mpsc::Receiver<Outcome>,
    status: mpsc::Receiver<ToLoop>,
    conflicts: mpsc::Receiver<std::net::IpAddr>,
    bfd: mpsc::Receiver<Vec<bfd::BfdIn>>,
}

/// Raises the soft open-files limit to the hard one: every interface, socket and script
/// pipe is a descriptor, and running out makes scripts fail to start.
fn raise_nofile() {
    if let Ok((soft, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(error) =
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard)
    {
        warn!(%error, soft, hard, "could not raise the open-files limit");
    }
}

/// Loads the configuration (nothing is touched if it is invalid), starts every instance,
/// and runs until SIGTERM / SIGINT.
/// Every interface the configuration attaches the responder to: each instance's and each
/// VIP's device.
fn xdp_interfaces(config: &Config) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for inst in &config.instances {
        names.insert(inst.interface.clone());
        names.extend(inst.all_vips().map(|v| v.dev.clone()));
    }
    names
}

pub async fn run(opts: Options) -> Result<()> {
    let config = Arc::new(Config::load(&opts.config, &LocalHost)?);
    raise_nofile();
    // Process tracking is checked and subscribed before anything is touched: a /proc
    // that hides processes, or no reachable connector, stops start-up here.
    let (track_tx, track_rx) = mpsc::channel(256);
    let processes = Processes::new(track_tx.clone(), crate::track::connector::inherited()?);
    if config
        .instances
        .iter()
        .any(|i| !i.track_processes.is_empty())
    {
        processes.open()?;
    }
    // Claim the control socket first: a second daemon with the same router_id must fail
    // before it touches anything the first one owns.
    let socket_group = config
        .global
        .control_group
        .as_ref()
        .or(config.global.admin_group.as_ref())
        .map(|g| g.gid);
    let control = crate::control::socket::bind_with(&config.global.control_socket, socket_group)?;
    let access = Access {
        admin_gid: config.global.admin_group.as_ref().map(|g| g.gid),
    };
    let metrics = match config.global.metrics {
        Some(addr) => Some(
            crate::control::metrics::bind(addr)
                .with_context(|| format!("binding metrics on {addr}"))?,
        ),
        None => None,
    };
    let pin = config.global.pin_path.clone();
    // The load balancer (programs and megabytes of maps) only where services are
    // configured (docs/operations.md, "Virtual services").
    let mut dp = Dataplane::open_for(&pin, !config.services.is_empty())
        .with_context(|| format!("opening the data plane under {}", pin.display()))?;
    // Interfaces another XDP program holds get their copy of the responder now, while
    // loading programs is still allowed (docs/operations.md, "Other XDP programs").
    for e in dp.prepare_neighbours(xdp_interfaces(&config).iter().map(String::as_str)) {
        warn!(error = %crate::error_chain(&e), "cannot share an interface's XDP hook");
    }
    let maps = Maps::open_pinned(&pin)
        .with_context(|| format!("opening the pinned maps under {}", pin.display()))?;
    // Everything that needed more is done; no other thread exists yet, so every thread
    // started from here on inherits the reduced sets.
    if let Err(error) = privileges::realtime(config.global.realtime_priority) {
        warn!(error = %format!("{error:#}"), "the event loop stays an ordinary thread");
    }
    let keep = privileges::kept(config.global.script_user.is_some());
    privileges::drop_to(&keep).context("dropping capabilities")?;
    info!(kept = ?keep, "capabilities reduced");
    let worker = Worker::start("vipd-worker", 0)?;
    let addresses = Worker::start("vipd-addresses", 19)?;
    let announcer = addresses::announcer(&addresses);
    let run_as = RunAs {
        ids: config.global.script_user.as_ref().map(|u| (u.uid, u.gid)),
    };
    let (prepared_tx, prepared_rx) = mpsc::channel(4);
    let (status_tx, status_rx) = mpsc::channel::<ToLoop>(16);
    let (conflict_tx, conflict_rx) = mpsc::channel(64);
    let (bfd_tx, bfd_rx) = mpsc::channel(256);
    let params = Params {
        clock_lag: clock::coarse_lag(),
        takeover_guard: TAKEOVER_GUARD,
    };
    let mut d = Daemon {
        notifier: Notifier::new(worker.clone(), run_as),
        watches: watch::Watches::new(worker.clone(), run_as, track_tx),
        plane: Arc::new(Mutex::new(Plane {
            dp,
            mode: opts.xdp_mode,
            attached: BTreeMap::new(),
            lowers: BTreeMap::new(),
        })),
        opts,
        config,
        node: Node::new(params),
        io: HashMap::new(),
        ifaces: BTreeMap::new(),
        maps,
        worker,
        addresses,
        announcer,
        run_as,
        doorbell: Arc::new(Notify::new()),
        pump_buf: Vec::new(),
        processes,
        prepared_tx,
        lag: lag::Lag::default(),
        started: Instant::now(),
        bfd: bfd::BfdIo::new(bfd_tx),
        events: Publisher::default(),
        reload_waiters: Vec::new(),
        last_reload: None,
        balancer: None,
    };
    // Demotions a previous run persisted apply from the first advertisement.
    if let Some(path) = &d.config.global.state_file {
        d.node.set_demotions(maintain::load_state(path));
    }
    // BFD discriminators and echo nonces come from the OS random source: unpredictable
    // to anyone on the link, and unlike a previous run's (RFC 5880 §6.3).
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| anyhow::anyhow!("reading the OS random source for BFD: {e}"))?;
    d.node.seed_bfd(seed);
    let links = Netlink::link_events()?;
    // Start-up prepares exactly as a reload does, but the loop has nothing to keep alive
    // yet, so it waits here; a group that cannot start is fatal, as the file said so.
    let startup = d
        .node
        .want(Purpose::Startup)
        .context("start-up is the first preparation")?;
    let first = prepare::prepare(d.request(startup), d.plane.clone(), d.worker.nl.clone()).await;
    match first {
        Outcome::Ready(p) => {
            if !p.failed.is_empty() {
                let why: Vec<String> = p.failed.iter().map(|(k, e)| format!("{k}: {e}")).collect();
                d.teardown().await;
                bail!("could not start: {}", why.join("; "));
            }
            match d.node.prepared(p.generation, true) {
                Verdict::Commit => d.commit(*p),
                other => bail!("start-up preparation came back {other:?}"),
            }
        }
        Outcome::Rejected(e) => bail!("{e}"),
    }
    // The services, once the instances they follow have their slots.
    if !d.config.services.is_empty() {
        let lb = d
            .maps
            .take_lb()
            .context("services are configured but the load balancer's maps are not pinned")?;
        let slots = d.service_slots();
        d.balancer = Some(
            balancer::Balancer::start(lb, d.config.services.clone(), slots, d.run_as)
                .context("starting the load balancer's thread")?,
        );
        info!(services = d.config.services.len(), "services installed");
    }
    serve::start(
        &d.worker,
        control,
        access,
        metrics,
        status_tx,
        d.events.clone(),
        &d.config.global.pin_path,
        conflict_tx,
        CONFLICT_CHECK,
    )?;
    // Loading the program and preparing every instance peaked at tens of MiB, now free
    // (crate::memory); nothing runs yet that a millisecond here could delay.
    let took = crate::memory::release_free_heap();
    crate::memory::release_object_pages();
    debug!(
        took_us = took.as_micros() as u64,
        "free heap returned after start-up"
    );
    systemd::ready(&systemd::summary(&d.status()));
    info!(
        router_id = %d.config.global.router_id,
        instances = d.config.instances.len(),
        pin_path = %d.config.global.pin_path.display(),
        control_socket = %d.config.global.control_socket.display(),
        "vipd running"
    );
    let result = d
        .run_loop(
            Receivers {
                track: track_rx,
                prepared: prepared_rx,
                status: status_rx,
                conflicts: conflict_rx,
                bfd: bfd_rx,
            },
            links,
        )
        .await;
    let _ = std::fs::remove_file(&d.config.global.control_socket);
    result
}

impl Daemon {
    fn running(&self) -> Vec<Running> {
        self.node
            .groups()
            .filter_map(|(id, e)| {
                let io = self.io.get(&id)?;
                Some(Running {
                    id,
                    key: e.key.clone(),
                    instances: io.configs.clone(),
                    cores: e.group.members().iter().map(|m| m.cfg.clone()).collect(),
                    slot: io.slot,
                    ifindexes: e.ifindexes.clone(),
                    devices: io.members.iter().map(|m| m.devices.clone()).collect(),
                })
            })
            .collect()
    }

    /// For each service, the data-plane slot of the instance it follows (0 for ECMP,
    /// where the program does not look at it; and for an instance not running, whose
    /// slot is then never owned).
    fn service_slots(&self) -> Vec<u32> {
        self.slots_for(&self.config.services)
    }

    fn slots_for(&self, services: &[crate::config::service::ServiceConfig]) -> Vec<u32> {
        let running = self.running();
        services
            .iter()
            .map(|s| {
                s.follows()
                    .and_then(|name| {
                        running
                            .iter()
                            .find(|r| r.instances.iter().any(|i| i.name == name))
                    })
                    .map_or(u32::MAX, |r| r.slot)
            })
            .collect()
    }

    fn request(&self, prepare: Prepare) -> Request {
        Request {
            purpose: prepare.purpose,
            generation: prepare.generation,
            config_path: self.opts.config.clone(),
            current: self.config.clone(),
            running: self.running(),
            processes: self.processes.clone(),
            load_balancer: self.balancer.is_some(),
        }
    }

    /// Asks the core for a preparation; starts the one it hands out on the worker.
    fn prepare(&mut self, purpose: Purpose) {
        if let Some(p) = self.node.want(purpose) {
            self.spawn_prepare(p);
        }
    }

    fn spawn_prepare(&mut self, p: Prepare) {
        let req = self.request(p);
        let (plane, nl, tx) = (
            self.plane.clone(),
            self.worker.nl.clone(),
            self.prepared_tx.clone(),
        );
        self.worker.spawn(async move {
            let _ = tx.send(prepare::prepare(req, plane, nl).await).await;
        });
    }

    fn prepared(&mut self, outcome: Outcome) {
        let reload = matches!(&outcome, Outcome::Ready(p) if p.purpose == Purpose::Reload)
            || matches!(outcome, Outcome::Rejected(_));
        match outcome {
            Outcome::Rejected(e) => {
                self.node.prepared(self.node.generation(), false);
                // One line per event (the journal splits lines): the problems joined.
                let problems = e.to_string().lines().collect::<Vec<_>>().join("; ");
                error!(%problems, "reload rejected, still running the previous configuration");
                self.reload_done(Err(&problems));
            }
            Outcome::Ready(p) => match self.node.prepared(p.generation, true) {
                Verdict::Commit => {
                    let report = (p.purpose == Purpose::Reload).then(|| p.report.clone());
                    self.commit(*p);
                    // A load during the preparation (a chained copy) read the embedded
                    // objects again: their pages go, beside the loop. The heap is not
                    // trimmed here: malloc_trim holds the arenas' locks while it walks
                    // them, and the loop allocates (crate::memory).
                    self.worker
                        .spawn(async { crate::memory::release_object_pages() });
                    if let Some(report) = report {
                        self.reload_done(Ok(&report));
                    }
                }
                Verdict::Redo => {
                    info!(
                        purpose = p.purpose.word(),
                        "preparation raced with another change; redoing it"
                    )
                }
                Verdict::Refused => {}
            },
        }
        if reload {
            systemd::ready(&systemd::summary(&self.status()));
        }
        if let Some(next) = self.node.next_preparation() {
            self.spawn_prepare(next);
        }
    }

    /// Applies a preparation in one step: stops what it says, launches what is ready.
    fn commit(&mut self, p: Prepared) {
        let started = Instant::now();
        let now = clock::now();
        for (key, error) in &p.failed {
            error!(group = %key, %error, "could not start");
        }
        self.node.set_interfaces(
            p.config.link_delays(),
            p.config
                .instances
                .iter()
                .map(|i| i.interface.clone())
                .collect(),
        );
        let changed = self.apply_updates(now, p.update);
        let stopped = p.stop.len();
        for id in p.stop {
            let outs = self.node.handle(now, id, Input::Stop);
            self.execute(now, outs);
            self.forget(id);
        }
        let mut launched = 0;
        for ready in p.ready {
            let key = ready.launch.setup.key.clone();
            match self.launch(now, ready) {
                Ok(()) => launched += 1,
                Err(e) => error!(group = %key, error = %format!("{e:#}"), "could not start"),
            }
        }
        self.config = p.config;
        if p.purpose == Purpose::Reload {
            let before = self.node.demotions().clone();
            let names = self
                .config
                .instances
                .iter()
                .map(|i| i.name.clone())
                .collect();
            let syncs = self.config.sync_groups.keys().cloned().collect();
            self.node.forget_demotions(&names, &syncs);
            if *self.node.demotions() != before {
                self.save_state();
            }
        }
        let slots = self.slots_for(&self.config.services);
        if let Some(b) = &mut self.balancer {
            if b.services() != self.config.services.as_slice() {
                b.reconfigure(self.config.services.clone(), slots);
            } else {
                b.set_slots(slots);
            }
        }
        self.refresh_process_watch();
        self.refresh_listening();
        self.refresh_bfd_sockets();
        self.execute_bfd(now);
        self.cleanup();
        let took_us = started.elapsed().as_micros() as u64;
        let started = launched;
        match p.purpose {
            Purpose::Startup => info!(started, took_us, "instances started"),
            Purpose::Reload => {
                let [unchanged, changed_in_place, restarted, added, removed] =
                    plan_counts(&p.report);
                info!(
                    unchanged,
                    changed = changed_in_place,
                    restarted,
                    added,
                    removed,
                    groups_kept = p.keep.len(),
                    groups_changed = changed,
                    groups_started = started,
                    groups_stopped = stopped,
                    took_us,
                    "configuration reloaded"
                );
                for (instance, outcome) in &p.report {
                    if !matches!(outcome, plan::Outcome::Unchanged) {
                        info!(%instance, outcome = %outcome, "reload");
                    }
                }
            }
            Purpose::Rebuild { interface } => {
                info!(%interface, started, stopped, took_us, "interface rebuilt")
            }
        }
    }

    /// The senders of every device a member touches (an interface seen the first time
    /// gets one), with a VRRP socket for `family` on its VRRP interface `ifindex`.
    fn senders(
        &mut self,
        name: &str,
        family: crate::vrrp::Family,
        ifindex: u32,
        devs: &entries::Devices,
    ) -> Result<BTreeMap<u32, Arc<crate::net::PacketSender>>> {
        let mut senders = BTreeMap::new();
        for (dev, (ifx, mac)) in devs {
            let iface = match self.ifaces.entry(*ifx) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(Iface::new(crate::net::LinkState {
                        ifindex: *ifx,
                        name: dev.clone(),
                        mac: *mac,
                        up: true,
                    })?)
                }
            };
            if *ifx == ifindex {
                iface
                    .ensure_socket(family, &self.doorbell)
                    .with_context(|| format!("instance {name}: VRRP socket"))?;
            }
            senders.insert(*ifx, iface.sender.clone());
        }
        Ok(senders)
    }

    /// A new member's I/O: senders, and its installer (installing nothing yet).
    fn member_io(
        &mut self,
        cfg: &crate::config::Instance,
        ifindex: u32,
        devs: &entries::Devices,
    ) -> Result<MemberIo> {
        let senders = self.senders(&cfg.name, cfg.family, ifindex, devs)?;
        let installer = Installer::start(&self.addresses, Installation::of(cfg, devs));
        MemberIo::new(devs.clone(), ifindex, senders, installer)
            .context("the VRRP interface vanished")
    }

    fn launch(&mut self, now: crate::vrrp::Time, ready: prepare::Ready) -> Result<()> {
        let mut members = Vec::new();
        for ((link, devs), cfg) in ready.links.iter().zip(&ready.devices).zip(&ready.configs) {
            members.push(self.member_io(cfg, link.ifindex, devs)?);
        }
        let watch_cfgs = ready.configs;
        let (id, outs) = self
            .node
            .launch(now, ready.launch)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let gio = GroupIo {
            slot: ready.slot,
            releases_seen: ready.releases_seen,
            members,
            configs: watch_cfgs.clone(),
        };
        for (i, cfg) in watch_cfgs.iter().enumerate() {
            let files: Vec<Option<i64>> = self
                .node
                .get(id)
                .and_then(|e| e.group.members().get(i))
                .map(|m| m.track.files.clone())
                .unwrap_or_default();
            self.watches
                .start((id, i), cfg, &|index| files.get(index).copied().flatten());
        }
        self.io.insert(id, gio);
        self.execute(now, outs);
        Ok(())
    }

    /// A reload's changes to running groups, in one step: the members that go are
    /// retired (while the groups still have them), every kept member's I/O follows it to
    /// its place (devices, senders and installation updated to its new configuration,
    /// watchers re-pointed), fresh members get theirs, and the core reshapes the groups.
    /// Returns how many groups changed.
    fn apply_updates(
        &mut self,
        now: crate::vrrp::Time,
        updates: Vec<prepare::ReadyUpdate>,
    ) -> usize {
        if updates.is_empty() {
            return 0;
        }
        let reshapes: Vec<Reshape> = updates
            .iter()
            .map(|u| Reshape {
                id: u.update.id,
                key: u.update.key.clone(),
                members: u
                    .update
                    .members
                    .iter()
                    .zip(&u.members)
                    .map(|(inc, m)| match inc {
                        plan::Incoming::Kept { from, member, .. } => Arriving::Kept {
                            from: *from,
                            member: *member,
                            setup: m.setup.clone(),
                            initial: m.initial.clone(),
                        },
                        plan::Incoming::Fresh(_) => Arriving::Fresh {
                            setup: m.setup.clone(),
                            initial: m.initial.clone(),
                        },
                    })
                    .collect(),
                ifindexes: u.members.iter().map(|m| m.link.ifindex).collect(),
            })
            .collect();
        for (id, which) in self.node.leaving(&reshapes) {
            let outs = self.node.retire(now, id, &which);
            self.execute(now, outs);
            for i in which {
                self.watches.stop(id, Some(i));
            }
        }
        // Every kept member's I/O, from wherever it runs now.
        let bases: BTreeSet<GroupId> = updates.iter().map(|u| u.update.id).collect();
        let carried: BTreeSet<(GroupId, usize)> = updates
            .iter()
            .flat_map(|u| &u.update.members)
            .filter_map(|m| match m {
                plan::Incoming::Kept { from, member, .. } => Some((*from, *member)),
                plan::Incoming::Fresh(_) => None,
            })
            .collect();
        let touched: BTreeSet<GroupId> = bases
            .iter()
            .copied()
            .chain(carried.iter().map(|(g, _)| *g))
            .collect();
        let mut pool: HashMap<(GroupId, usize), MemberIo> = HashMap::new();
        for g in touched {
            let Some(gio) = self.io.get_mut(&g) else {
                continue;
            };
            let members = std::mem::take(&mut gio.members);
            let configs = std::mem::take(&mut gio.configs);
            for (i, (mio, cfg)) in members.into_iter().zip(configs).enumerate() {
                if carried.contains(&(g, i)) {
                    pool.insert((g, i), mio);
                } else if bases.contains(&g) {
                    // Retired: its installer finishes taking back what it installed.
                    self.notifier.forget(&cfg.name);
                    drop(mio.installer.finish());
                } else {
                    gio.members.push(mio);
                    gio.configs.push(cfg);
                }
            }
        }
        let mut moves = Vec::new();
        let mut fresh = Vec::new();
        for u in &updates {
            let mut members = Vec::new();
            let mut configs = Vec::new();
            for (j, (inc, m)) in u.update.members.iter().zip(&u.members).enumerate() {
                let mio = match inc {
                    plan::Incoming::Kept { from, member, .. } => {
                        let Some(mut mio) = pool.remove(&(*from, *member)) else {
                            continue;
                        };
                        match self.senders(&m.config.name, m.config.family, mio.ifindex, &m.devices)
                        {
                            Ok(senders) => mio.senders = senders,
                            Err(e) => {
                                warn!(instance = %m.config.name, error = %format!("{e:#}"), "new devices of a kept instance")
                            }
                        }
                        mio.devices = m.devices.clone();
                        mio.installer
                            .update(Installation::of(&m.config, &m.devices));
                        moves.push((*from, *member, u.update.id, j));
                        Some(mio)
                    }
                    plan::Incoming::Fresh(_) => {
                        match self.member_io(&m.config, m.link.ifindex, &m.devices) {
                            Ok(mio) => {
                                fresh.push((u.update.id, j));
                                Some(mio)
                            }
                            Err(e) => {
                                error!(instance = %m.config.name, error = %format!("{e:#}"), "could not start");
                                None
                            }
                        }
                    }
                };
                if let Some(mio) = mio {
                    members.push(mio);
                    configs.push(m.config.clone());
                }
            }
            if let Some(gio) = self.io.get_mut(&u.update.id) {
                gio.members = members;
                gio.configs = configs;
            }
        }
        let outs = match self.node.reshape(now, reshapes) {
            Ok(outs) => outs,
            Err(e) => {
                error!(error = %e, "reload could not change the running groups");
                Vec::new()
            }
        };
        let cfgs: HashMap<(GroupId, usize), crate::config::Instance> = updates
            .iter()
            .flat_map(|u| {
                u.members
                    .iter()
                    .enumerate()
                    .map(move |(j, m)| ((u.update.id, j), m.config.clone()))
            })
            .collect();
        let file_value = |node: &Node, (g, i): (GroupId, usize), index: usize| {
            node.get(g)
                .and_then(|e| e.group.members().get(i))
                .and_then(|m| m.track.files.get(index).copied().flatten())
        };
        let move_list: Vec<watch::Move<'_>> = moves
            .iter()
            .filter_map(|&(from, member, g, j)| {
                Some(watch::Move {
                    from: (from, member),
                    to: (g, j),
                    cfg: cfgs.get(&(g, j))?,
                })
            })
            .collect();
        let node = &self.node;
        self.watches
            .carry(&move_list, &|at, index| file_value(node, at, index));
        for (g, j) in fresh {
            if let Some(cfg) = cfgs.get(&(g, j)) {
                self.watches
                    .start((g, j), cfg, &|index| file_value(node, (g, j), index));
            }
        }
        self.execute(now, outs);
        updates.len()
    }

    /// Takes a stopped group out; its installers finish removing what they installed.
    fn forget(&mut self, id: GroupId) -> Vec<tokio::task::JoinHandle<()>> {
        self.watches.stop(id, None);
        if let Some(e) = self.node.remove(id) {
            for m in e.group.members() {
                self.notifier.forget(&m.cfg.name);
            }
        }
        self.io
            .remove(&id)
            .map(|mut gio| {
                std::mem::take(&mut gio.members)
                    .into_iter()
                    .map(|m| m.installer.finish())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// After groups changed: entries no group uses go, interfaces no group uses lose the
    /// program (on the worker).
    fn cleanup(&mut self) {
        let used: std::collections::BTreeSet<u32> = self
            .io
            .values()
            .flat_map(|g| g.members.iter())
            .flat_map(|m| m.devices.values().map(|(ifx, _)| *ifx))
            .collect();
        self.ifaces.retain(|ifx, _| used.contains(ifx));
        let running = self.running();
        let plane = self.plane.clone();
        let pin = self.config.global.pin_path.clone();
        let config = self.config.clone();
        self.worker.spawn(async move {
            let mut plane = plane.lock().await;
            tidy(&mut plane, &running, used, &pin, &config);
        });
    }

    /// After a link changed: where an upper device in use gained or lost a device below
    /// it (a bridge port joined or left), the responder follows, and the entries with it
    /// (on the worker; nothing happens where no upper device is in use).
    fn follow_lowers(&mut self) {
        let running = self.running();
        let plane = self.plane.clone();
        let pin = self.config.global.pin_path.clone();
        let config = self.config.clone();
        self.worker.spawn(async move {
            let mut plane = plane.lock().await;
            if plane.lowers.is_empty() {
                return;
            }
            let mut changed = false;
            let uppers: Vec<u32> = plane.lowers.keys().copied().collect();
            for upper in uppers {
                match crate::dataplane::lowers(upper) {
                    Ok(now) if plane.lowers.get(&upper) != Some(&now) => {
                        info!(upper, lowers = ?now.iter().map(|l| &l.name).collect::<Vec<_>>(), "devices below an upper device changed");
                        plane.lowers.insert(upper, now);
                        changed = true;
                    }
                    Ok(_) => {}
                    Err(e) => warn!(upper, error = %e, "finding the devices below an upper device"),
                }
            }
            if !changed {
                return;
            }
            let mut used = std::collections::BTreeSet::new();
            for r in &running {
                for ((inst, ifx), devs) in r.cores.iter().zip(&r.ifindexes).zip(&r.devices) {
                    used.extend(devs.values().map(|(i, _)| *i));
                    let mac = devs
                        .get(&inst.identity.interface)
                        .map_or([0; 6], |(_, m)| *m);
                    let Plane { dp, lowers, .. } = &mut *plane;
                    if let Err(e) =
                        entries::write(dp.maps_mut(), *ifx, mac, devs, r.slot, inst, lowers)
                    {
                        warn!(instance = %inst.name, error = %crate::error_chain(&e), "writing map entries below an upper device");
                    }
                    for (name, (i, m)) in devs {
                        let link = crate::net::LinkState {
                            ifindex: *i,
                            name: name.clone(),
                            mac: *m,
                            up: true,
                        };
                        if let Err(e) = prepare::attach_below(&mut plane, &link) {
                            warn!(error = %format!("{e:#}"), "following an upper device");
                        }
                    }
                }
            }
            tidy(&mut plane, &running, used, &pin, &config);
        });
    }
}

/// Removes the entries no running group uses and the program from interfaces none uses
/// (on the worker, with the plane locked).
fn tidy(
    plane: &mut Plane,
    running: &[Running],
    used: std::collections::BTreeSet<u32>,
    pin: &std::path::Path,
    config: &Config,
) {
    let mut in_use = entries::InUse::default();
    for r in running {
        for ((inst, ifx), devs) in r.cores.iter().zip(&r.ifindexes).zip(&r.devices) {
            in_use.add(*ifx, devs, r.slot, inst, &plane.lowers);
        }
    }
    // Devices below an upper device in use are in use.
    let used: std::collections::BTreeSet<u32> = used
        .iter()
        .flat_map(|u| entries::keyed_as(&plane.lowers, *u))
        .map(|(i, _)| i)
        .chain(used.iter().copied())
        .collect();
    let removed = entries::prune(plane.dp.maps_mut(), &in_use);
    let attached = plane.attached.clone();
    entries::write_interface_options(plane.dp.maps_mut(), &attached, config);
    if removed > 0 {
        info!(removed, "removed map entries no running instance uses");
    }
    let unused: Vec<(u32, String)> = plane
        .attached
        .iter()
        .filter(|(ifx, _)| !used.contains(ifx))
        .map(|(i, n)| (*i, n.clone()))
        .collect();
    for (ifx, name) in unused {
        plane.attached.remove(&ifx);
        for family in [vip_common::FAMILY_IPV4, vip_common::FAMILY_IPV6] {
            let _ = plane
                .dp
                .maps_mut()
                .set_interface_policy(ifx, 0, family, false);
        }
        if let Err(e) = Dataplane::detach(pin, &name) {
            warn!(interface = %name, error = %crate::error_chain(&e), "detach failed");
        }
    }
}

impl Daemon {
    /// Packets taken from each VRRP socket's queue per round: every socket gets its turn
    /// after this many from another.
    const PER_SOCKET: usize = 16;
    /// Packets taken in per drain at most, so a flood of adverts for our VRIDs cannot
    /// hold the timers back: a few hundred microseconds of work before the loop looks at
    /// them again.
    const DRAIN_BUDGET: usize = 256;
    /// How long BFD packets the readers already handed over are taken in before timers
    /// fire, at most: a flood of Control packets must not hold the timers back (the
    /// echoes that matter for the millisecond timers are read straight from their
    /// sockets in `poll` as well).
    const BFD_BEFORE_TIMERS: Duration = Duration::from_micros(250);

    async fn run_loop(
        &mut self,
        rx: Receivers,
        links: impl futures_util::Stream<Item = LinkEvent>,
    ) -> Result<()> {
        let Receivers {
            mut track,
            mut prepared,
            mut status,
            mut conflicts,
            bfd: mut bfd_in,
        } = rx;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut ticker = clock::Ticker::new()?;
        let mut links = Box::pin(links);
        // Petted from this loop, so systemd restarts a stalled loop, not only a dead one.
        let (mut watchdog, watchdog_on) = match systemd::watchdog_interval() {
            Some(every) => (tokio::time::interval(every), true),
            None => (tokio::time::interval(Duration::from_secs(3600)), false),
        };
        let mut last_summary = String::new();
        let doorbell = self.doorbell.clone();
        loop {
            let deadline = self.node.poll_at();
            tokio::select! {
                biased;
                _ = term.recv() => break,
                _ = int.recv() => break,
                r = ticker.sleep_until(deadline) => {
                    r?;
                    // What the readers already handed over is taken in before timers
                    // fire (bounded, so a flood cannot hold the timers back): a timer
                    // must never expire while the packet that proves a peer alive waits
                    // in a queue, which under CPU load is where it waits.
                    let started = Instant::now();
                    while started.elapsed() < Self::BFD_BEFORE_TIMERS {
                        let Ok(batch) = bfd_in.try_recv() else { break };
                        self.on_bfd(batch);
                    }
                    self.pump_sockets();
                    self.drain_inbound();
                    self.poll(deadline);
                }
                _ = doorbell.notified() => self.drain_inbound(),
                Some(batch) = bfd_in.recv() => self.on_bfd(batch),
                _ = hup.recv() => {
                    systemd::reloading();
                    self.prepare(Purpose::Reload);
                }
                _ = watchdog.tick(), if watchdog_on => {
                    let summary = systemd::summary(&self.status());
                    let changed = summary != last_summary;
                    systemd::watchdog(changed.then_some(summary.as_str()));
                    last_summary = summary;
                }
                Some(outcome) = prepared.recv() => self.prepared(outcome),
                Some(ev) = links.next() => self.on_link(ev),
                Some((watch, item)) = track.recv() => self.on_track(watch, item),
                Some(vip) = conflicts.recv() => {
                    let now = clock::now();
                    let outs = self.node.conflict(now, vip);
                    self.execute(now, outs);
                }
                Some(ask) = status.recv() => self.on_control(ask),
            }
        }
        if self.opts.keep_on_exit {
            info!("exiting with program, maps and VIPs left in place (--keep-on-exit)");
            self.watches.stop_all();
            return Ok(());
        }
        systemd::stopping();
        self.handover(&doorbell, &mut ticker).await;
        self.teardown().await;
        Ok(())
    }

    fn poll(&mut self, deadline: Option<crate::vrrp::Time>) {
        if self.bfd.active() {
            let queued = self.bfd.queued(256, 8);
            if !queued.is_empty() {
                self.on_bfd(queued);
            }
        }
        let now = clock::now();
        if let Some(d) = deadline {
            self.lag.record(d, now);
        }
        let outs = self.node.poll(now);
        self.execute(now, outs);
    }

    /// Takes in what the VRRP sockets queued, a few packets from each in turn (see
    /// `iface`), at most [`Self::DRAIN_BUDGET`]; rings again if some are left, so the loop
    /// comes back after its timers.
    fn drain_inbound(&mut self) {
        let inboxes: Vec<_> = self
            .ifaces
            .values()
            .flat_map(|i| i.listeners().map(|l| l.inbox.clone()))
            .collect();
        let mut taken = 0;
        let mut batch = Vec::new();
        loop {
            let mut left = false;
            for inbox in &inboxes {
                left |= inbox.take(Self::PER_SOCKET, &mut batch);
            }
            taken += batch.len();
            self.on_inbound(std::mem::take(&mut batch));
            if !left {
                break;
            }
            if taken >= Self::DRAIN_BUDGET {
                self.doorbell.notify_one();
                break;
            }
        }
    }

    /// Reads what the VRRP sockets already hold into their queues (as far as each has
    /// room) before timers fire: the reader tasks run only when the loop yields, and a
    /// busy loop goes from one drain to its timers without yielding.
    fn pump_sockets(&mut self) {
        for iface in self.ifaces.values() {
            for l in iface.listeners() {
                l.pump(&mut self.pump_buf);
            }
        }
    }

    /// Points the process watcher at the running groups' tracked processes.
    fn refresh_process_watch(&mut self) {
        let members: Vec<((GroupId, usize), &crate::config::Instance)> = self
            .io
            .iter()
            .flat_map(|(id, gio)| {
                gio.configs
                    .iter()
                    .enumerate()
                    .map(move |(member, cfg)| ((*id, member), cfg))
            })
            .collect();
        let subs = self.watches.process_subscriptions(members);
        self.processes.watch(subs);
    }

    /// Sets each VRRP socket's filter to the VRIDs running on its interface now.
    fn refresh_listening(&mut self) {
        let node = &self.node;
        for (ifindex, iface) in &mut self.ifaces {
            iface.listen(|family| node.listening(*ifindex, family));
        }
    }

    fn on_inbound(&mut self, batch: Vec<Inbound>) {
        let now = clock::now();
        for p in batch {
            let r = p.packet;
            // Both protocols arrive on one socket (its filter admits CARP's VHIDs too): tell
            // them apart by layout, as the XDP program does.
            let first = r.vrrp.first().copied().unwrap_or(0);
            let fourth = r.vrrp.get(3).copied().unwrap_or(0);
            if classify_proto112(first, fourth, r.vrrp.len(), r.src.is_ipv6()) == Proto112::Carp {
                match carp::Advert::decode(&r.vrrp) {
                    Ok(advert) => {
                        let outs = self.node.carp_advert(now, p.ifindex, r.src, r.ttl, advert);
                        self.execute(now, outs);
                    }
                    Err(error) => {
                        tracing::debug!(src = %r.src, error = %crate::error_chain(&error), "undecodable CARP")
                    }
                }
                continue;
            }
            match Advert::decode(&r.vrrp, r.src, r.dst) {
                Ok(advert) => {
                    let outs = self.node.advert(now, p.ifindex, r.src, r.ttl, advert);
                    self.execute(now, outs);
                }
                Err(error) => {
                    tracing::debug!(src = %r.src, error = %crate::error_chain(&error), "undecodable VRRP")
                }
            }
        }
    }

    fn on_link(&mut self, ev: LinkEvent) {
        let now = clock::now();
        match ev {
            LinkEvent::Changed(l) => {
                self.follow_lowers();
                if self.node.rebuilds(&l.name, l.ifindex) {
                    // An interface we run on came (back) with a new index.
                    info!(interface = %l.name, "interface (re)appeared: rebuilding its instances");
                    self.prepare(Purpose::Rebuild {
                        interface: l.name.clone(),
                    });
                    return;
                }
                if let Some(iface) = self.ifaces.get_mut(&l.ifindex) {
                    iface.link.up = l.up;
                }
                let outs = self.node.link(now, &l.name, l.up);
                self.execute(now, outs);
            }
            LinkEvent::Removed { ifindex, name } => {
                self.follow_lowers();
                if self.ifaces.remove(&ifindex).is_some() {
                    warn!(interface = %name, "interface removed");
                }
                let outs = self.node.link(now, &name, false);
                self.execute(now, outs);
            }
        }
    }

    fn on_track(&mut self, watch: Report, item: TrackItem) {
        let Some((id, member, item)) = self.watches.route(watch, item) else {
            return;
        };
        let now = clock::now();
        let outs = self.node.handle(now, id, Input::Track { member, item });
        self.execute(now, outs);
    }

    /// Resign everywhere; keep answering until each new master is heard (bounded by the
    /// lease, see `crate::vrrp::group`).
    async fn handover(&mut self, doorbell: &Notify, ticker: &mut clock::Ticker) {
        let now = clock::now();
        let outs = self.node.handle_all(now, Input::Shutdown);
        self.execute(now, outs);
        let started = Instant::now();
        while self.node.handover_pending() {
            let deadline = self.node.poll_at();
            tokio::select! {
                _ = doorbell.notified() => self.drain_inbound(),
                r = ticker.sleep_until(deadline) => {
                    if r.is_err() { break; }
                    self.poll(deadline);
                }
            }
        }
        info!(
            took_ms = started.elapsed().as_millis() as u64,
            "handover complete"
        );
    }

    /// Releases every slot, removes every address, then detaches and unpins: in that
    /// order, so no instant exists where a VIP is on an interface with no program
    /// guarding it.
    async fn teardown(&mut self) {
        let now = clock::now();
        let ids: Vec<GroupId> = self.node.groups().map(|(id, _)| id).collect();
        let mut pending = Vec::new();
        for id in ids {
            let outs = self.node.handle(now, id, Input::Stop);
            self.execute(now, outs);
            pending.extend(self.forget(id));
        }
        // The neighbours hear AdminDown from every session before the sockets close.
        self.execute_bfd(now);
        for h in pending {
            if tokio::time::timeout(Duration::from_secs(10), h)
                .await
                .is_err()
            {
                warn!("removing addresses took longer than 10 s; going on");
            }
        }
        self.ifaces.clear();
        let pin = self.config.global.pin_path.clone();
        let plane = self.plane.clone();
        let done = self.worker.spawn(async move {
            let mut plane = plane.lock().await;
            for (_, name) in std::mem::take(&mut plane.attached) {
                if let Err(e) = Dataplane::detach(&pin, &name) {
                    warn!(interface = %name, error = %crate::error_chain(&e), "detach failed");
                }
            }
            if Dataplane::attached_interfaces(&pin)
                .map(|l| l.is_empty())
                .unwrap_or(false)
                && let Err(e) = Dataplane::unpin_maps(&pin)
            {
                warn!(error = %crate::error_chain(&e), "unpinning maps failed");
            }
        });
        let _ = done.await;
        info!("vipd stopped");
    }

    fn status(&self) -> crate::control::Status {
        status::snapshot(self)
    }
}

/// How many instances a reload left unchanged, changed in place, restarted, added and
/// removed.
fn plan_counts(report: &[(String, plan::Outcome)]) -> [usize; 5] {
    plan::Plan::<()> {
        report: report.to_vec(),
        ..plan::Plan::default()
    }
    .counts()
}
