//! Building groups from configuration and taking them down: interfaces attached, map
//! entries written (configuration time only: never on the failover path), slots chosen,
//! stale state from an earlier run removed or resumed.

use std::{
    collections::{BTreeSet, HashSet},
    net::IpAddr,
};

use anyhow::{Context as _, Result, anyhow};
use ipnet::IpNet;
use tracing::{info, warn};
use vip_common::{
    FAMILY_IPV4, FAMILY_IPV6, MAX_GROUPS, POLICY_F_ALLOWLIST, POLICY_F_AUTH, PeerKey, Policy,
    PolicyKey, VIP_F_OWNER, VIP_F_VMAC, VipKey, VipValue, VmacKey, VmacValue,
};

use super::{
    Ctx, clock,
    group::{Group, Handover},
    iface::Iface,
    member::{Member, interval_of, remove_addresses},
};
use crate::net::LinkState;
use crate::{
    config::{Config, Instance},
    track::{self, TrackItem},
    vrrp::{Event, Family, Machine, SyncGroup, machine},
};

/// The groups a configuration asks for: sync groups by name, then lone instances, each as
/// (key, member configs). Keys are stable across reloads.
pub fn desired_groups(config: &Config) -> Vec<(String, Vec<Instance>)> {
    let mut out: Vec<(String, Vec<Instance>)> = Vec::new();
    for inst in &config.instances {
        match &inst.sync_group {
            Some(g) => {
                let key = format!("sync:{g}");
                match out.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, members)) => members.push(inst.clone()),
                    None => out.push((key, vec![inst.clone()])),
                }
            }
            None => out.push((format!("instance:{}", inst.name), vec![inst.clone()])),
        }
    }
    out
}

fn family_tag(f: Family) -> u8 {
    match f {
        Family::Ipv4 => FAMILY_IPV4,
        Family::Ipv6 => FAMILY_IPV6,
    }
}

fn addr16(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => vip_common::v4_in_16(v4.octets()),
        IpAddr::V6(v6) => v6.octets(),
    }
}

pub fn vip_key(ifindex: u32, vip: &IpNet) -> VipKey {
    match vip.addr() {
        IpAddr::V4(a) => VipKey::v4(ifindex, 0, a.octets()),
        IpAddr::V6(a) => VipKey::v6(ifindex, 0, a.octets()),
    }
}

pub fn policy_key(ifindex: u32, inst: &Instance) -> PolicyKey {
    PolicyKey {
        ifindex,
        vlan: 0,
        family: family_tag(inst.family),
        vrid: inst.vrid,
    }
}

fn peer_key(ifindex: u32, inst: &Instance, peer: IpAddr) -> PeerKey {
    PeerKey {
        ifindex,
        vlan: 0,
        family: family_tag(inst.family),
        vrid: inst.vrid,
        addr: addr16(peer),
    }
}

/// Attaches the responder to `link` and opens its sender, once per interface.
fn ensure_iface(ctx: &mut Ctx, link: LinkState) -> Result<()> {
    if ctx.ifaces.contains_key(&link.ifindex) {
        return Ok(());
    }
    let mode = ctx
        .dp
        .attach(&link.name, ctx.xdp_mode)
        .with_context(|| format!("attaching the XDP responder to {}", link.name))?;
    info!(interface = %link.name, ?mode, "XDP responder attached");
    ctx.ifaces.insert(link.ifindex, Iface::new(link)?);
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

/// The advert source: the interface's first IPv4 address that is not one of our VIPs, or
/// its link-local IPv6 address (RFC 5798 §5.1.1.1 / §5.1.2.1).
async fn source_address(ctx: &Ctx, ifindex: u32, inst: &Instance) -> Result<IpAddr> {
    let vips: BTreeSet<IpAddr> = inst.vips.iter().map(IpNet::addr).collect();
    let addrs = ctx.nl.addresses(ifindex).await?;
    let found = addrs
        .into_iter()
        .map(|(a, _, _)| a)
        .find(|a| match (inst.family, a) {
            (Family::Ipv4, IpAddr::V4(_)) => !vips.contains(a),
            (Family::Ipv6, IpAddr::V6(v6)) => v6.is_unicast_link_local(),
            _ => false,
        });
    found.ok_or_else(|| {
        anyhow!(
            "instance {}: interface {} has no {} address to send VRRP from",
            inst.name,
            inst.interface,
            match inst.family {
                Family::Ipv4 => "IPv4 (non-VIP)",
                Family::Ipv6 => "link-local IPv6",
            }
        )
    })
}

/// The slot this group used last time (a pinned policy entry of one of its members), if
/// it is free in this run, or the lowest free one.
fn choose_slot(taken: &BTreeSet<u32>, previous: &[u32]) -> Result<u32> {
    if let Some(s) = previous
        .iter()
        .find(|s| !taken.contains(s) && **s < MAX_GROUPS)
    {
        return Ok(*s);
    }
    (0..MAX_GROUPS)
        .find(|s| !taken.contains(s))
        .ok_or_else(|| anyhow!("all {MAX_GROUPS} group slots are in use"))
}

/// Builds a group, writes its map entries and starts it: resumed as master when the
/// pinned lease from a previous run is still live, otherwise after removing anything a
/// previous run left (VIP addresses, VMAC filter, ownership).
pub async fn add_group(
    ctx: &mut Ctx,
    key: String,
    members_cfg: Vec<Instance>,
    taken: &BTreeSet<u32>,
) -> Result<Group> {
    let mut links = Vec::new();
    for inst in &members_cfg {
        let link = ctx
            .nl
            .link(&inst.interface)
            .await
            .with_context(|| format!("instance {}: interface {}", inst.name, inst.interface))?;
        links.push(link);
    }
    let ifindexes: Vec<u32> = links.iter().map(|l| l.ifindex).collect();
    // Slot: reuse what the pinned policy says, so a restart finds its own lease.
    let policies = ctx.dp.maps().policies().unwrap_or_default();
    let previous: Vec<u32> = members_cfg
        .iter()
        .zip(&ifindexes)
        .filter_map(|(inst, ifx)| {
            let k = policy_key(*ifx, inst);
            policies
                .iter()
                .find(|(pk, _)| *pk == k)
                .map(|(_, p)| p.slot)
        })
        .collect();
    let slot = choose_slot(taken, &previous)?;
    let now = clock::now();
    let resume = previous.contains(&slot)
        && ctx
            .dp
            .maps()
            .group(slot)
            .is_ok_and(|g| g.answers(clock::nanos(now)));

    let mut machines = Vec::new();
    let mut members = Vec::new();
    for (inst, ifindex) in members_cfg.into_iter().zip(ifindexes) {
        let src = source_address(ctx, ifindex, &inst).await?;
        let link = links
            .iter()
            .find(|l| l.ifindex == ifindex)
            .cloned()
            .ok_or_else(|| anyhow!("interface {} vanished", inst.interface))?;
        let if_mac = link.mac;
        // Entries before the program: a freshly attached responder never sees this
        // instance's adverts as an unknown VRID.
        write_entries(ctx, ifindex, if_mac, slot, &inst)?;
        ensure_iface(ctx, link)?;
        if inst.vmac && inst.family == Family::Ipv4 {
            keep_arp_off_the_vips(&inst.interface);
        }
        ctx.ifaces
            .get_mut(&ifindex)
            .ok_or_else(|| anyhow!("interface {} vanished", inst.interface))?
            .socket(inst.family, &ctx.inbound)?;
        let mut mc = machine::Config::new(inst.vrid, inst.version, inst.priority, src);
        mc.advert_interval = interval_of(&inst);
        mc.preempt = inst.preempt;
        mc.preempt_delay = inst.preempt_delay;
        mc.accept_mode = inst.accept;
        machines.push(Machine::new(mc).map_err(|e| anyhow!("instance {}: {e}", inst.name))?);
        ctx.next_member_id += 1;
        let mut m = Member::new(
            ctx.next_member_id,
            inst,
            ifindex,
            if_mac,
            src,
            &ctx.background,
        );
        m.track.link_up = ctx.ifaces.get(&ifindex).is_some_and(|i| i.link.up);
        for (i, t) in m.cfg.track_interfaces.iter().enumerate() {
            m.track.interfaces_up[i] = ctx.nl.link(&t.name).await.is_ok_and(|l| l.up);
        }
        for (i, t) in m.cfg.track_files.iter().enumerate() {
            m.track.files[i] = track::file::read(&t.path);
        }
        // Scripts: the first run decides before the instance starts.
        for (i, t) in m.cfg.track_scripts.iter().enumerate() {
            let ok = track::script::run_once(t).await;
            m.track.apply(&TrackItem::Script { index: i, ok });
        }
        members.push(m);
    }

    let mut group = Group {
        key,
        slot,
        sync: SyncGroup::new(machines),
        members,
        owned: resume,
        own_at: None,
        handover: Handover::None,
    };
    if !resume {
        group.release(ctx);
        for m in &group.members {
            remove_addresses(&ctx.nl, m.ifindex, &m.cfg).await;
        }
    }
    start_watchers(ctx, &mut group);
    let now = clock::now();
    for i in 0..group.members.len() {
        // Tracking state known at start goes in before Startup.
        let outcome = group.members[i].track.outcome(&group.members[i].cfg);
        if outcome.fault {
            group.handle(ctx, now, i, Event::Fault);
            group.members[i].applied_fault = true;
        }
        if outcome.priority != group.members[i].cfg.priority {
            group.handle(ctx, now, i, Event::PriorityChanged(outcome.priority));
            group.members[i].applied_priority = outcome.priority;
        }
    }
    let event = if resume {
        Event::Resume
    } else {
        Event::Startup
    };
    if resume {
        info!(group = %group.key, slot, "pinned lease still live: resuming as master");
    }
    for i in 0..group.members.len() {
        group.handle(ctx, now, i, event.clone());
    }
    Ok(group)
}

fn write_entries(
    ctx: &mut Ctx,
    ifindex: u32,
    if_mac: [u8; 6],
    slot: u32,
    inst: &Instance,
) -> Result<()> {
    let maps = ctx.dp.maps_mut();
    let mac = if inst.vmac {
        inst.vmac_address()
    } else {
        if_mac
    };
    let mut flags = 0;
    if inst.vmac {
        flags |= VIP_F_VMAC;
    }
    if inst.is_owner() {
        flags |= VIP_F_OWNER;
    }
    for vip in &inst.vips {
        maps.add_vip(vip_key(ifindex, vip), VipValue { slot, mac, flags })?;
    }
    maps.set_policy(
        policy_key(ifindex, inst),
        Policy {
            version: inst.version.number(),
            flags: if inst.allowed_peers.is_empty() {
                0
            } else {
                POLICY_F_ALLOWLIST
            } | if inst.auth_pass.is_some() {
                POLICY_F_AUTH
            } else {
                0
            },
            _pad: [0; 2],
            slot,
            // The program refuses v2 adverts whose password differs (or that carry one
            // when none is configured), as the daemon does.
            auth: inst.auth_pass.unwrap_or([0; 8]),
        },
    )?;
    for peer in &inst.allowed_peers {
        maps.add_peer(peer_key(ifindex, inst, *peer))?;
    }
    if inst.vmac {
        maps.add_vmac(
            VmacKey {
                ifindex,
                vlan: 0,
                mac: inst.vmac_address(),
            },
            VmacValue {
                slot,
                if_mac,
                _pad: [0; 2],
            },
        )?;
    }
    Ok(())
}

fn start_watchers(ctx: &Ctx, group: &mut Group) {
    for m in &mut group.members {
        for (i, t) in m.cfg.track_scripts.iter().enumerate() {
            m.watchers.push(track::script::spawn(
                m.id,
                i,
                t.clone(),
                ctx.track_tx.clone(),
            ));
        }
        for (i, t) in m.cfg.track_files.iter().enumerate() {
            m.watchers.push(track::file::spawn(
                m.id,
                i,
                t.path.clone(),
                m.track.files[i],
                ctx.track_tx.clone(),
            ));
        }
    }
}

/// Takes a group down now (reload or interface loss): resign if master, release the
/// slot, remove its addresses and map entries.
pub async fn remove_group(ctx: &mut Ctx, mut group: Group) {
    let now = clock::now();
    group.handover = Handover::Done;
    for i in 0..group.members.len() {
        group.handle(ctx, now, i, Event::Shutdown);
    }
    group.release(ctx);
    for m in &mut group.members {
        m.stop();
        remove_addresses(&ctx.nl, m.ifindex, &m.cfg).await;
        remove_entries(ctx, m.ifindex, &m.cfg);
    }
}

fn remove_entries(ctx: &mut Ctx, ifindex: u32, inst: &Instance) {
    let maps = ctx.dp.maps_mut();
    for vip in &inst.vips {
        let _ = maps.remove_vip(&vip_key(ifindex, vip));
    }
    let _ = maps.remove_policy(&policy_key(ifindex, inst));
    for peer in &inst.allowed_peers {
        let _ = maps.remove_peer(&peer_key(ifindex, inst, *peer));
    }
    if inst.vmac {
        let _ = maps.remove_vmac(&VmacKey {
            ifindex,
            vlan: 0,
            mac: inst.vmac_address(),
        });
    }
}

/// Removes pinned entries no configured instance owns (an instance deleted while vipd was
/// down) and releases slots no group uses.
pub fn prune_stale_entries(ctx: &mut Ctx, groups: &[Group]) {
    let mut vips = HashSet::new();
    let mut policies = HashSet::new();
    let mut peers = HashSet::new();
    let mut vmacs = HashSet::new();
    let mut slots = HashSet::new();
    for g in groups {
        slots.insert(g.slot);
        for m in &g.members {
            for v in &m.cfg.vips {
                vips.insert(vip_key(m.ifindex, v));
            }
            policies.insert(policy_key(m.ifindex, &m.cfg));
            for p in &m.cfg.allowed_peers {
                peers.insert(peer_key(m.ifindex, &m.cfg, *p));
            }
            if m.cfg.vmac {
                vmacs.insert((m.ifindex, m.cfg.vmac_address()));
            }
        }
    }
    let maps = ctx.dp.maps_mut();
    let mut removed = 0usize;
    for (k, _) in maps.vips().unwrap_or_default() {
        if !vips.contains(&k) {
            removed += usize::from(maps.remove_vip(&k).is_ok());
        }
    }
    for (k, p) in maps.policies().unwrap_or_default() {
        if !policies.contains(&k) {
            removed += usize::from(maps.remove_policy(&k).is_ok());
            if !slots.contains(&p.slot) {
                let _ = maps.set_group(p.slot, vip_common::GroupState::released());
            }
        }
    }
    for k in maps.peers().unwrap_or_default() {
        if !peers.contains(&k) {
            removed += usize::from(maps.remove_peer(&k).is_ok());
        }
    }
    for (k, _) in maps.vmacs().unwrap_or_default() {
        if !vmacs.contains(&(k.ifindex, k.mac)) {
            removed += usize::from(maps.remove_vmac(&k).is_ok());
        }
    }
    if removed > 0 {
        warn!(
            removed,
            "removed pinned entries no configured instance owns"
        );
    }
}
