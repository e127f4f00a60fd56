//! Everything slow that comes before a group runs, done on the worker thread so the loop
//! keeps advertising (docs/architecture.md): reading and validating the configuration,
//! resolving interfaces and their addresses, attaching the XDP program, writing map
//! entries, removing what a previous run left, and reading what tracking already knows.
//! What each step decides (the plan, the slot, resuming, the advert source) is the
//! core's (`crate::vrrp::plan`, `crate::vrrp::source`); the loop then commits the result
//! in one step (`Daemon::commit`).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::PathBuf,
    sync::Arc,
};

use anyhow::{Context as _, Result, anyhow};
use tokio::sync::Mutex;
use tracing::{info, warn};

use super::{addresses::Installation, clock};
use crate::{
    config::{Config, Instance, LocalHost},
    dataplane::{
        Dataplane, ModePreference,
        entries::{self, Devices, answered_on},
    },
    net::{LinkState, Netlink},
    track,
    vrrp::{
        Family,
        group::{Input, MemberSetup},
        instance,
        node::{GroupId, GroupSetup, Launch},
        plan::{self, Incoming, Purpose, Start, choose_slot, desired_groups, resumes, start_delay},
        source::advert_source,
        tracking::{ProcessChange, TrackItem},
    },
};

/// The data-plane program and which interfaces carry it: only the worker touches it.
pub struct Plane {
    pub dp: Dataplane,
    pub mode: ModePreference,
    /// ifindex → name of every interface the responder is attached to.
    pub attached: BTreeMap<u32, String>,
    /// Upper devices in use and the devices the responder runs on for them.
    pub lowers: entries::Lowers,
}

/// A running group, as the preparation needs to know it.
#[derive(Debug, Clone)]
pub struct Running {
    pub id: GroupId,
    pub key: String,
    /// The members' whole configurations, and what the core made of them.
    pub instances: Vec<Instance>,
    pub cores: Vec<instance::Instance>,
    pub slot: u32,
    pub ifindexes: Vec<u32>,
    /// Per member: every interface it touches (see `entries::Devices`).
    pub devices: Vec<Devices>,
}

pub struct Request {
    pub purpose: Purpose,
    /// The loop's group generation when asked: a commit against a different one is stale.
    pub generation: u64,
    pub config_path: PathBuf,
    pub current: Arc<Config>,
    pub running: Vec<Running>,
    /// Counts tracked processes (and starts its watcher the first time).
    pub processes: track::process::Processes,
    /// Whether the load balancer is loaded (vipd started with services).
    pub load_balancer: bool,
}

/// A member ready to run: what the core gets (`setup`, `initial`) and what the shell keeps.
pub struct ReadyMember {
    pub setup: MemberSetup,
    /// What tracking found out before it runs (links down, files read); for a member a
    /// reload keeps, only about what it did not track before.
    pub initial: Vec<Input>,
    /// Its VRRP interface.
    pub link: LinkState,
    /// Every interface it touches.
    pub devices: Devices,
    /// Its whole configuration.
    pub config: Instance,
}

/// A group ready to launch.
pub struct Ready {
    pub launch: Launch,
    pub slot: u32,
    /// Per member: its VRRP interface.
    pub links: Vec<LinkState>,
    /// Per member: every interface it touches.
    pub devices: Vec<Devices>,
    /// Per member: its whole configuration.
    pub configs: Vec<Instance>,
    pub releases_seen: u64,
}

/// A running group's new shape, ready to commit (see `plan::Update`): per member what the
/// plan says (kept from where, or fresh) and what was prepared for it.
pub struct ReadyUpdate {
    pub update: plan::Update<Instance>,
    pub members: Vec<ReadyMember>,
}

pub struct Prepared {
    pub purpose: Purpose,
    pub generation: u64,
    pub config: Arc<Config>,
    pub keep: Vec<GroupId>,
    pub update: Vec<ReadyUpdate>,
    pub stop: Vec<GroupId>,
    pub ready: Vec<Ready>,
    /// Groups that could not be prepared, with why; the others go ahead without them.
    pub failed: Vec<(String, String)>,
    /// What becomes of each instance (reloads).
    pub report: Vec<(String, plan::Outcome)>,
}

pub enum Outcome {
    Ready(Box<Prepared>),
    /// The new configuration is refused; nothing changes.
    Rejected(String),
}

/// Why a configuration cannot be applied by a reload because it brings the first
/// `[[service]]` to a vipd started without any: the load balancer's programs and maps
/// are loaded only at start-up, while vipd still holds the capabilities to load
/// programs (docs/operations.md, "Virtual services"). The whole reload is refused, so
/// nothing changes and no service is half there.
pub fn services_need_restart(
    load_balancer: bool,
    config: &Config,
    path: &std::path::Path,
) -> Option<String> {
    let first = config.services.first()?;
    (!load_balancer).then(|| {
        format!(
            "{}: [[service]] \"{}\": vipd was started without services and loads the load \
             balancer only at start-up; restart vipd (systemctl restart vipd) to add the \
             first service",
            path.display(),
            first.name
        )
    })
}

/// Reads the configuration a preparation runs (the file again for a reload) and plans it
/// against the running groups: the same answer for a reload and its dry run.
pub async fn plan_for(req: &Request) -> Result<(Arc<Config>, plan::Plan<Instance>), String> {
    let config = match req.purpose {
        Purpose::Reload => {
            let path = req.config_path.clone();
            let loaded = tokio::task::spawn_blocking(move || Config::load(&path, &LocalHost)).await;
            match loaded {
                Ok(Ok(c)) => Arc::new(c),
                Ok(Err(e)) => return Err(e.to_string()),
                Err(e) => return Err(format!("reading the configuration: {e}")),
            }
        }
        _ => req.current.clone(),
    };
    if req.purpose == Purpose::Reload
        && let Some(why) = services_need_restart(req.load_balancer, &config, &req.config_path)
    {
        return Err(why);
    }
    let running: Vec<plan::Running<'_, Instance>> = req
        .running
        .iter()
        .map(|r| plan::Running {
            id: r.id,
            key: &r.key,
            members: &r.instances,
            slot: r.slot,
        })
        .collect();
    let global_changed = config.global != req.current.global;
    let desired = desired_groups(&config.instances);
    let plan = plan::plan(&req.purpose, global_changed, &running, desired)
        .map_err(|refusal| refusal.to_string())?;
    Ok((config, plan))
}

pub async fn prepare(req: Request, plane: Arc<Mutex<Plane>>, nl: Netlink) -> Outcome {
    let (config, plan) = match plan_for(&req).await {
        Ok(p) => p,
        Err(e) => return Outcome::Rejected(e),
    };

    let mut plane = plane.lock().await;
    // Slots of every running group stay taken until the commit (see `choose_slot`).
    let mut taken: BTreeSet<u32> = req.running.iter().map(|r| r.slot).collect();
    // Addresses a group that keeps running holds, and those of instances a reload keeps
    // (wherever they move): no leftover removal takes them.
    let kept: BTreeSet<(GroupId, usize)> = plan
        .update
        .iter()
        .flat_map(|u| &u.members)
        .filter_map(|m| match m {
            Incoming::Kept { from, member, .. } => Some((*from, *member)),
            Incoming::Fresh(_) => None,
        })
        .collect();
    let in_use: BTreeSet<(u32, IpAddr)> = req
        .running
        .iter()
        .flat_map(|r| {
            let stopped = plan.stop.contains(&r.id);
            let kept = &kept;
            r.cores
                .iter()
                .zip(&r.devices)
                .enumerate()
                .filter(move |(i, _)| !stopped || kept.contains(&(r.id, *i)))
                .flat_map(|(_, (i, devs))| answered_on(i, devs).map(|(ifx, _, a)| (ifx, a)))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut update = Vec::new();
    let mut failed = Vec::new();
    for u in plan.update {
        let key = u.key.clone();
        match build_update(&mut plane, &nl, &req, u, &in_use).await {
            Ok(r) => update.push(r),
            Err(error) => failed.push((key, format!("{error:#}"))),
        }
    }
    let mut ready = Vec::new();
    for start in plan.start {
        let key = start.key.clone();
        match build(
            &mut plane,
            &nl,
            &req.processes,
            &req.purpose,
            &config,
            start,
            &mut taken,
            &in_use,
        )
        .await
        {
            Ok(r) => ready.push(r),
            Err(error) => failed.push((key, format!("{error:#}"))),
        }
    }
    Outcome::Ready(Box::new(Prepared {
        purpose: req.purpose,
        generation: req.generation,
        config,
        keep: plan.keep,
        update,
        stop: plan.stop,
        ready,
        failed,
        report: plan.report,
    }))
}

/// Everything a member needs before it runs in slot `slot` (see `build`): its devices
/// (the XDP program attached to each), its advert source, its map entries; for a fresh
/// member (`old` is `None`) what a previous run left is removed and what tracking already
/// knows is read; for a kept one (`old`: its running configuration and devices) only what
/// it did not track before. `counts`: its tracked processes counted (`None`: as before,
/// for a kept member whose processes did not change).
#[allow(clippy::too_many_arguments)]
async fn build_member(
    plane: &mut Plane,
    nl: &Netlink,
    inst: &Instance,
    counts: Option<Vec<u32>>,
    index: usize,
    link: &LinkState,
    slot: u32,
    resume: bool,
    in_use: &BTreeSet<(u32, IpAddr)>,
    old: Option<(&Instance, &Devices)>,
) -> Result<ReadyMember> {
    let core = inst.core();
    let mut devs = Devices::new();
    devs.insert(link.name.clone(), (link.ifindex, link.mac));
    let mut dev_links = vec![link.clone()];
    let known = |name: &str| old.and_then(|(_, d)| d.get(name).copied());
    for v in inst.all_vips() {
        if devs.contains_key(&v.dev) {
            continue;
        }
        match known(&v.dev) {
            Some(entry) => {
                devs.insert(v.dev.clone(), entry);
            }
            None => {
                let l = nl
                    .link(&v.dev)
                    .await
                    .with_context(|| format!("instance {}: VIP {} device", inst.name, v.net))?;
                devs.insert(l.name.clone(), (l.ifindex, l.mac));
                dev_links.push(l);
            }
        }
    }
    let addrs: Vec<IpAddr> = nl
        .addresses(link.ifindex)
        .await?
        .into_iter()
        .map(|(a, _, _)| a)
        .collect();
    let src = advert_source(&core, &addrs)?;
    // Routes' devices are only looked up: nothing is attached to them.
    let route_devs: Vec<String> = inst
        .virtual_routes
        .iter()
        .filter_map(|r| r.dev.clone())
        .filter(|d| !devs.contains_key(d))
        .collect();
    for d in route_devs {
        let entry = match known(&d) {
            Some(entry) => entry,
            None => {
                let l = nl
                    .link(&d)
                    .await
                    .with_context(|| format!("instance {}: route device {d}", inst.name))?;
                (l.ifindex, l.mac)
            }
        };
        devs.insert(d, entry);
    }
    for l in &dev_links {
        note_lowers(plane, l)?;
    }
    // Entries before the program: from its first frame it knows this instance's VRID,
    // so none of its adverts is mistaken for another speaker's. A kept instance's are
    // written again (new VIPs and peers added, its policy and slot as now configured);
    // what it no longer uses goes once the commit is done (`Daemon::cleanup`).
    let Plane { dp, lowers, .. } = &mut *plane;
    entries::write(
        dp.maps_mut(),
        link.ifindex,
        link.mac,
        &devs,
        slot,
        &core,
        lowers,
    )
    .with_context(|| format!("instance {}: writing map entries", inst.name))?;
    for l in &dev_links {
        attach_below(plane, l)?;
    }
    if inst.vmac && inst.family == Family::Ipv4 {
        keep_arp_off_the_vips(&inst.interface);
    }
    if !resume && old.is_none() {
        // What a previous run (or another daemon) left on the interfaces goes before
        // anything starts, except addresses a running group still holds; VIP addresses
        // only where a master of this instance would have added them.
        let mut leftover = Installation::of(inst, &devs);
        leftover.vips.retain(|(ifx, v)| {
            core.accepts_vip_traffic() && !in_use.contains(&(*ifx, v.net.addr()))
        });
        leftover.remove_all(nl).await;
    }
    let mut initial = Vec::new();
    if old.is_none() && !link.up {
        initial.push(Input::Link {
            name: link.name.clone(),
            up: false,
        });
    }
    let tracked_before =
        |name: &str| old.is_some_and(|(o, _)| o.track_interfaces.iter().any(|t| t.name == name));
    for t in &inst.track_interfaces {
        if tracked_before(&t.name) {
            continue;
        }
        let up = nl.link(&t.name).await.is_ok_and(|l| l.up);
        if !up {
            initial.push(Input::Link {
                name: t.name.clone(),
                up: false,
            });
        }
    }
    for (i, t) in inst.track_files.iter().enumerate() {
        if old.is_some_and(|(o, _)| o.track_files.iter().any(|f| f.path == t.path)) {
            continue;
        }
        let value = track::file::read(&t.path).await;
        initial.push(Input::Track {
            member: index,
            item: TrackItem::File { index: i, value },
        });
    }
    for (i, count) in counts.into_iter().flatten().enumerate() {
        initial.push(Input::Track {
            member: index,
            item: TrackItem::Process {
                index: i,
                count,
                cause: ProcessChange::Scan,
            },
        });
    }
    Ok(ReadyMember {
        setup: MemberSetup { cfg: core, src },
        initial,
        link: link.clone(),
        devices: devs,
        config: inst.clone(),
    })
}

/// Prepares a running group's new shape: each member kept (from this group or another)
/// or fresh, in the group's slot.
async fn build_update(
    plane: &mut Plane,
    nl: &Netlink,
    req: &Request,
    u: plan::Update<Instance>,
    in_use: &BTreeSet<(u32, IpAddr)>,
) -> Result<ReadyUpdate> {
    let base = req
        .running
        .iter()
        .find(|r| r.id == u.id)
        .ok_or_else(|| anyhow!("group {} is gone", u.key))?;
    let mut members = Vec::new();
    for (index, m) in u.members.iter().enumerate() {
        let inst = m.cfg();
        let ready = match m {
            Incoming::Kept { from, member, .. } => {
                let was = req
                    .running
                    .iter()
                    .find(|r| r.id == *from)
                    .ok_or_else(|| anyhow!("group of instance {} is gone", inst.name))?;
                let (old, devs) = was
                    .instances
                    .get(*member)
                    .zip(was.devices.get(*member))
                    .ok_or_else(|| anyhow!("instance {} is gone", inst.name))?;
                let &(ifindex, mac) = devs
                    .get(&inst.interface)
                    .ok_or_else(|| anyhow!("instance {}: no interface", inst.name))?;
                let link = LinkState {
                    ifindex,
                    name: inst.interface.clone(),
                    mac,
                    up: true,
                };
                let counts = if old.track_processes == inst.track_processes {
                    None
                } else {
                    Some(count_processes(&req.processes, inst).await?)
                };
                build_member(
                    plane,
                    nl,
                    inst,
                    counts,
                    index,
                    &link,
                    base.slot,
                    false,
                    in_use,
                    Some((old, devs)),
                )
                .await?
            }
            Incoming::Fresh(_) => {
                let link = nl.link(&inst.interface).await.with_context(|| {
                    format!("instance {}: interface {}", inst.name, inst.interface)
                })?;
                let counts = count_processes(&req.processes, inst).await?;
                build_member(
                    plane,
                    nl,
                    inst,
                    Some(counts),
                    index,
                    &link,
                    base.slot,
                    false,
                    in_use,
                    None,
                )
                .await?
            }
        };
        members.push(ready);
    }
    Ok(ReadyUpdate { update: u, members })
}

/// Counts `inst`'s tracked processes (none: nothing asked of the watcher).
async fn count_processes(
    processes: &track::process::Processes,
    inst: &Instance,
) -> Result<Vec<u32>> {
    if inst.track_processes.is_empty() {
        return Ok(Vec::new());
    }
    let patterns = inst
        .track_processes
        .iter()
        .map(|t| t.pattern.clone())
        .collect();
    processes
        .counts(patterns)
        .await
        .with_context(|| format!("instance {}", inst.name))
}

#[allow(clippy::too_many_arguments)]
async fn build(
    plane: &mut Plane,
    nl: &Netlink,
    processes: &track::process::Processes,
    purpose: &Purpose,
    config: &Config,
    start: Start<Instance>,
    taken: &mut BTreeSet<u32>,
    in_use: &BTreeSet<(u32, IpAddr)>,
) -> Result<Ready> {
    let Start {
        key,
        members,
        slot: reuse,
    } = start;
    // Counted first: a watcher that cannot start leaves nothing attached.
    let mut process_counts = Vec::with_capacity(members.len());
    for inst in &members {
        process_counts.push(count_processes(processes, inst).await?);
    }
    let mut links = Vec::new();
    for inst in &members {
        let link = nl
            .link(&inst.interface)
            .await
            .with_context(|| format!("instance {}: interface {}", inst.name, inst.interface))?;
        links.push(link);
    }
    for l in &links {
        note_lowers(plane, l)?;
    }
    let cores: Vec<instance::Instance> = members.iter().map(Instance::core).collect();
    // A restart finds its own lease through the slot its pinned policy names.
    let previous: Vec<u32> = if *purpose == Purpose::Startup {
        let policies = plane.dp.maps().policies().unwrap_or_default();
        cores
            .iter()
            .zip(&links)
            .filter_map(|(inst, l)| {
                let (ifx, vlan) = entries::keyed_as(&plane.lowers, l.ifindex)
                    .first()
                    .copied()
                    .unwrap_or((l.ifindex, 0));
                let k = vip_common::PolicyKey {
                    ifindex: ifx,
                    vlan,
                    ..entries::policy_key(ifx, inst)
                };
                policies
                    .iter()
                    .find(|(pk, _)| *pk == k)
                    .map(|(_, p)| p.slot)
            })
            .collect()
    } else {
        Vec::new()
    };
    let slot = choose_slot(reuse, &previous, taken, vip_common::MAX_GROUPS)
        .ok_or_else(|| anyhow!("all {} group slots are in use", vip_common::MAX_GROUPS))?;
    taken.insert(slot);
    let lease_live = previous.contains(&slot) && {
        let now_ns = clock::nanos(clock::now());
        plane.dp.maps().group(slot).is_ok_and(|g| g.answers(now_ns))
    };
    let resume = resumes(purpose, &previous, slot, lease_live);

    let mut setups = Vec::new();
    let mut initial = Vec::new();
    let mut devices = Vec::new();
    for (i, (inst, link)) in members.iter().zip(&links).enumerate() {
        let m = build_member(
            plane,
            nl,
            inst,
            process_counts.get(i).cloned(),
            i,
            link,
            slot,
            resume,
            in_use,
            None,
        )
        .await?;
        setups.push(m.setup);
        initial.extend(m.initial);
        devices.push(m.devices);
    }
    let releases_seen = entries::read_release(plane.dp.maps(), slot).map_or(0, |r| r.count);
    Ok(Ready {
        launch: Launch {
            setup: GroupSetup {
                key,
                ifindexes: links.iter().map(|l| l.ifindex).collect(),
                members: setups,
            },
            initial,
            resume,
            delay: start_delay(purpose, config.global.startup_delay, resume),
        },
        slot,
        links,
        devices,
        configs: members,
        releases_seen,
    })
}

/// Records where the program runs for `link` (itself, or the devices below an upper
/// device: `dataplane::lower`).
fn note_lowers(plane: &mut Plane, link: &LinkState) -> Result<()> {
    let lowers = crate::dataplane::lowers(link.ifindex)
        .with_context(|| format!("finding the devices below {}", link.name))?;
    let itself = lowers.len() == 1 && lowers[0].ifindex == link.ifindex && lowers[0].vlan == 0;
    if itself {
        plane.lowers.remove(&link.ifindex);
    } else {
        if lowers.is_empty() {
            warn!(interface = %link.name, "no device below it yet: nothing is answered until one joins");
        }
        plane.lowers.insert(link.ifindex, lowers);
    }
    Ok(())
}

/// Attaches the responder where it runs for `link` (itself, or every device below it).
pub fn attach_below(plane: &mut Plane, link: &LinkState) -> Result<()> {
    let targets: Vec<(u32, String)> = match plane.lowers.get(&link.ifindex) {
        Some(l) => l.iter().map(|l| (l.ifindex, l.name.clone())).collect(),
        None => vec![(link.ifindex, link.name.clone())],
    };
    for (ifindex, name) in targets {
        if plane.attached.contains_key(&ifindex) {
            continue;
        }
        let mode = plane
            .dp
            .attach(&name, plane.mode)
            .with_context(|| format!("attaching the XDP responder to {name}"))?;
        if name == link.name {
            info!(interface = %name, ?mode, "XDP responder attached");
        } else {
            info!(interface = %name, upper = %link.name, ?mode, "XDP responder attached below an upper device");
        }
        plane.attached.insert(ifindex, name);
    }
    Ok(())
}

/// In VMAC mode the kernel still sends its own frames from the interface MAC. An ARP
/// request it sends with a VIP as sender address would teach every client that MAC for
/// the VIP, undoing VMAC mode; `arp_announce = 2` makes it use its primary address
/// instead (what keepalived's documentation asks operators to set by hand).
fn keep_arp_off_the_vips(ifname: &str) {
    let path = format!("/proc/sys/net/ipv4/conf/{ifname}/arp_announce");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current.trim().parse::<u8>().unwrap_or(0) >= 2 {
        return;
    }
    match std::fs::write(&path, "2") {
        Ok(()) => info!(interface = ifname, "VMAC mode: set arp_announce = 2"),
        Err(error) => {
            warn!(interface = ifname, %error, "VMAC mode: could not set arp_announce = 2")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::FakeHost;

    const GW: &str = "[global]\nrouter_id = \"r1\"\n\n[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\n\
                      priority = 200\nvips = [\"192.0.2.60/32\"]\n";
    const SERVICE: &str = "\n[[service]]\nname = \"echo\"\nvip = \"192.0.2.60\"\nport = 9000\n\
                           follow = \"gw\"\nreal = [{ address = \"192.0.2.13\" }]\n";

    fn config(text: &str) -> Config {
        Config::parse(text, "vipd.toml", &FakeHost::lab()).unwrap()
    }

    #[test]
    fn the_first_service_of_a_node_started_without_any_needs_a_restart() {
        let path = Path::new("/etc/vipd/vipd.toml");
        let with = config(&format!("{GW}{SERVICE}"));
        let why = services_need_restart(false, &with, path).expect("refused");
        assert!(
            why.starts_with("/etc/vipd/vipd.toml: [[service]] \"echo\"")
                && why.contains("restart vipd"),
            "{why}"
        );
        // Loaded at start-up: services come and go by reload.
        assert_eq!(services_need_restart(true, &with, path), None);
        // No service: nothing to refuse.
        assert_eq!(services_need_restart(false, &config(GW), path), None);
    }
}
