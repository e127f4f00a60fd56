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
        plan::{self, Purpose, Start, choose_slot, desired_groups, resumes, start_delay},
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

pub struct Prepared {
    pub purpose: Purpose,
    pub generation: u64,
    pub config: Arc<Config>,
    pub keep: Vec<GroupId>,
    pub stop: Vec<GroupId>,
    pub ready: Vec<Ready>,
    /// Groups that could not be prepared, with why; the others go ahead without them.
    pub failed: Vec<(String, String)>,
}

pub enum Outcome {
    Ready(Box<Prepared>),
    /// The new configuration is refused; nothing changes.
    Rejected(String),
}

pub async fn prepare(req: Request, plane: Arc<Mutex<Plane>>, nl: Netlink) -> Outcome {
    let config = match req.purpose {
        Purpose::Reload => {
            let path = req.config_path.clone();
            let loaded = tokio::task::spawn_blocking(move || Config::load(&path, &LocalHost)).await;
            match loaded {
                Ok(Ok(c)) => Arc::new(c),
                Ok(Err(e)) => return Outcome::Rejected(e.to_string()),
                Err(e) => return Outcome::Rejected(format!("reading the configuration: {e}")),
            }
        }
        _ => req.current.clone(),
    };
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
    let plan = match plan::plan(&req.purpose, global_changed, &running, desired) {
        Ok(p) => p,
        Err(refusal) => return Outcome::Rejected(refusal.to_string()),
    };

    let mut plane = plane.lock().await;
    // Slots of every running group stay taken until the commit (see `choose_slot`).
    let mut taken: BTreeSet<u32> = req.running.iter().map(|r| r.slot).collect();
    // Addresses a group that keeps running holds: no leftover removal takes them.
    let in_use: BTreeSet<(u32, IpAddr)> = req
        .running
        .iter()
        .filter(|r| !plan.stop.contains(&r.id))
        .flat_map(|r| {
            r.cores
                .iter()
                .zip(&r.devices)
                .flat_map(|(i, devs)| answered_on(i, devs).map(|(ifx, _, a)| (ifx, a)))
        })
        .collect();
    let mut ready = Vec::new();
    let mut failed = Vec::new();
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
        stop: plan.stop,
        ready,
        failed,
    }))
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
        let counts = if inst.track_processes.is_empty() {
            Vec::new()
        } else {
            let patterns = inst
                .track_processes
                .iter()
                .map(|t| t.pattern.clone())
                .collect();
            processes
                .counts(patterns)
                .await
                .with_context(|| format!("instance {}", inst.name))?
        };
        process_counts.push(counts);
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
    for (i, ((inst, core), link)) in members.iter().zip(cores).zip(&links).enumerate() {
        let mut devs = Devices::new();
        devs.insert(link.name.clone(), (link.ifindex, link.mac));
        let mut dev_links = vec![link.clone()];
        for v in inst.all_vips() {
            if !devs.contains_key(&v.dev) {
                let l = nl
                    .link(&v.dev)
                    .await
                    .with_context(|| format!("instance {}: VIP {} device", inst.name, v.net))?;
                devs.insert(l.name.clone(), (l.ifindex, l.mac));
                dev_links.push(l);
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
            let l = nl
                .link(&d)
                .await
                .with_context(|| format!("instance {}: route device {d}", inst.name))?;
            devs.insert(l.name.clone(), (l.ifindex, l.mac));
        }
        for l in &dev_links {
            note_lowers(plane, l)?;
        }
        // Entries before the program: from its first frame it knows this instance's VRID,
        // so none of its adverts is mistaken for another speaker's.
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
        if !resume {
            // What a previous run (or another daemon) left on the interfaces goes before
            // anything starts, except addresses a running group still holds; VIP
            // addresses only where a master of this instance would have added them.
            let mut leftover = Installation::of(inst, &devs);
            leftover.vips.retain(|(ifx, v)| {
                core.accepts_vip_traffic() && !in_use.contains(&(*ifx, v.net.addr()))
            });
            leftover.remove_all(nl).await;
        }
        if !link.up {
            initial.push(Input::Link {
                name: link.name.clone(),
                up: false,
            });
        }
        for t in &inst.track_interfaces {
            let up = nl.link(&t.name).await.is_ok_and(|l| l.up);
            if !up {
                initial.push(Input::Link {
                    name: t.name.clone(),
                    up: false,
                });
            }
        }
        for (index, t) in inst.track_files.iter().enumerate() {
            let value = track::file::read(&t.path).await;
            initial.push(Input::Track {
                member: i,
                item: TrackItem::File { index, value },
            });
        }
        for (index, count) in process_counts.get(i).into_iter().flatten().enumerate() {
            initial.push(Input::Track {
                member: i,
                item: TrackItem::Process {
                    index,
                    count: *count,
                    cause: ProcessChange::Scan,
                },
            });
        }
        setups.push(MemberSetup { cfg: core, src });
        devices.push(devs);
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
