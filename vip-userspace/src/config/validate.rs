//! Rules that relate fields to each other and instances to each other, the script checks,
//! the warnings, then the typed [`Config`] with defaults filled in.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use vip_common::{MAX_GROUPS, MAX_PEERS, MAX_VIPS};

use super::command::CommandAt;
use super::duration;
use super::host::Host;
use super::locate::Sink;
use super::model::{
    CarpConfig, CarpSecret, Command, Config, Global, Instance, InterfaceOptions, Notify, SharedVip,
    SyncGroup, TABLE_MAIN,
};
use super::read::{At, Field};
use super::schema::{
    CONTROL_SOCKET_DIR, DEFAULT_ADVERT_INTERVAL, DEFAULT_GARP_INTERVAL, DEFAULT_GARP_REPEAT,
    DEFAULT_PIN_DIR, DEFAULT_PRIORITY, RawConfig, RawGlobal, RawInstance,
};
use super::security::ScriptChecker;
use super::vip::{RawVip, label_fits};
use crate::vrrp::carp::{self, Key};
use crate::vrrp::instance::{CarpSettings, Protocol};
use crate::vrrp::{
    Family, Version,
    instance::{BfdSettings, max_advertised},
};

/// Distinct process patterns the watcher counts (`crate::track::process`).
pub const MAX_TRACKED_PROCESSES: usize = 256;

const CENTISECOND: Duration = Duration::from_millis(10);
// The v3 interval field is 12 bits of centiseconds.
const MAX_V3_INTERVAL: Duration = Duration::from_millis(40_950);
// The v2 interval field is 8 bits of seconds.
const MAX_V2_INTERVAL: Duration = Duration::from_secs(255);

/// Applies every rule; the configuration only when none failed anywhere in the file.
pub(crate) fn validate(raw: RawConfig, host: &dyn Host, sink: &mut Sink<'_>) -> Option<Config> {
    let families: Vec<Option<Family>> = raw
        .instances
        .iter()
        .map(|r| instance_rules(r, sink))
        .collect();
    let secrets: Vec<Option<(CarpSecret, Vec<u8>)>> = raw
        .instances
        .iter()
        .map(|r| carp_secret(r, host, sink))
        .collect();
    across_instances(&raw.instances, &families, sink);
    super::shared::shared_vip_rules(&raw.instances, &families, sink);
    let named: Vec<(String, Option<Family>)> = raw
        .instances
        .iter()
        .zip(&families)
        .filter_map(|(r, f)| Some((r.name.valid()?.value.clone(), *f)))
        .collect();
    super::service::service_rules(&raw.services, &named, sink);
    sync_group_rules(&raw, sink);
    capacity(&raw.instances, sink);
    script_rules(&raw, host, sink);
    if !sink.is_empty() {
        return None;
    }
    warnings(&raw.instances, &families, host, sink);

    let global = build_global(raw.global?)?;
    let mut instances = Vec::with_capacity(raw.instances.len());
    for ((r, family), secret) in raw.instances.iter().zip(families).zip(secrets) {
        match family.and_then(|f| build_instance(r, f, secret)) {
            Some(instance) => instances.push(instance),
            // Unreachable when the rules above are complete; a problem beats a panic.
            None => sink.push(
                r.span.clone(),
                r.path.clone(),
                "internal error: instance incomplete after validation",
            ),
        }
    }
    super::shared::assign_members(&mut instances);
    let interfaces = raw
        .interfaces
        .iter()
        .map(|i| Some((i.name.clone(), i.options?)))
        .collect::<Option<BTreeMap<String, InterfaceOptions>>>()?;
    let mut sync_groups: BTreeMap<String, SyncGroup> = BTreeMap::new();
    for (i, instance) in instances.iter().enumerate() {
        if let Some(group) = &instance.sync_group {
            sync_groups
                .entry(group.clone())
                .or_insert_with(|| SyncGroup {
                    members: Vec::new(),
                    notify: Notify::default(),
                })
                .members
                .push(i);
        }
    }
    for g in &raw.sync_groups {
        let notify = g.notify.build()?;
        sync_groups.get_mut(&g.name)?.notify = notify;
    }
    let services = raw
        .services
        .iter()
        .map(|s| s.service.clone())
        .collect::<Option<Vec<_>>>()?;
    let warnings = sink.take_warnings();
    sink.is_empty().then_some(Config {
        global,
        interfaces,
        sync_groups,
        instances,
        services,
        warnings,
    })
}

/// Checks within one instance; returns its address family when its VIPs decide one.
fn instance_rules(r: &RawInstance, sink: &mut Sink<'_>) -> Option<Family> {
    let carp = is_carp(r);
    let version = if carp {
        carp_rules(r, sink);
        None
    } else {
        let version = r.version.or(Version::V3);
        version_rules(r, version, sink);
        version
    };
    let family = vip_rules(r, version, sink);
    peer_rules(r, family, sink);
    proxy_rules(r, family, sink);
    route_rules(r, family, sink);
    if let Some(at) = r.track_interfaces.valid() {
        let path = format!("{}.track_interfaces", r.path);
        duplicates(&at.value, |t| t.name.clone(), &path, sink);
    }
    if let Some(at) = r.track_files.valid() {
        let path = format!("{}.track_files", r.path);
        duplicates(&at.value, |t| t.path.display().to_string(), &path, sink);
    }
    if let Some(at) = r.track_processes.valid() {
        let path = format!("{}.track_processes", r.path);
        duplicates(&at.value, |t| t.pattern.to_string(), &path, sink);
    }
    family
}

fn is_carp(r: &RawInstance) -> bool {
    r.protocol
        .valid()
        .is_some_and(|at| at.value == Protocol::Carp)
}

/// What a CARP instance may and must set (docs/carp.md), and that a VRRP one sets none
/// of CARP's keys.
fn carp_rules(r: &RawInstance, sink: &mut Sink<'_>) {
    let key = |k: &str| format!("{}.{k}", r.path);
    let refuse = |sink: &mut Sink<'_>, span: &super::locate::Span, k: &str, why: &str| {
        sink.push(span.clone(), key(k), why.to_owned());
    };
    if let Some(at) = r.version.valid() {
        refuse(
            sink,
            &at.span,
            "version",
            "CARP has one version (2): remove version",
        );
    }
    if let Some(at) = r.auth_pass.valid() {
        refuse(
            sink,
            &at.span,
            "auth_pass",
            "CARP authenticates with an HMAC: write passphrase (or passphrase_file) instead",
        );
    }
    if let Some(at) = r.unicast_peers.valid()
        && !at.value.is_empty()
    {
        refuse(
            sink,
            &at.span,
            "unicast_peers",
            "vipd's CARP advertises to 224.0.0.18 / ff02::12 only, as carp(4) and ucarp do",
        );
    }
    if let (Some(a), Some(_)) = (r.advskew.valid(), r.priority.valid()) {
        refuse(
            sink,
            &a.span,
            "advskew",
            "set advskew or priority, not both (priority P is advskew 255 - P)",
        );
    }
    if let (Some(a), Some(_)) = (r.passphrase.valid(), r.passphrase_file.valid()) {
        refuse(
            sink,
            &a.span,
            "passphrase",
            "set passphrase or passphrase_file, not both",
        );
    }
    if let Some(at) = r.advert_interval.valid() {
        let d = at.value;
        if d.subsec_nanos() != 0 || d.is_zero() || d > MAX_V2_INTERVAL {
            sink.push(
                at.span.clone(),
                key("advert_interval"),
                format!(
                    "{} is not a CARP advbase: whole seconds 1s..=255s",
                    duration::format(d)
                ),
            );
        }
    }
}

/// A CARP instance's passphrase: the inline one, or the first line of its file (read now,
/// so a missing or unreadable file is a configuration error naming the field). `None`
/// for VRRP instances and on error (reported); with the key's bytes.
fn carp_secret(
    r: &RawInstance,
    host: &dyn Host,
    sink: &mut Sink<'_>,
) -> Option<(CarpSecret, Vec<u8>)> {
    if !is_carp(r) {
        for k in super::schema::CARP_KEYS {
            let span = match *k {
                "advskew" => r.advskew.valid().map(|a| a.span.clone()),
                "passphrase" => r.passphrase.valid().map(|a| a.span.clone()),
                "passphrase_file" => r.passphrase_file.valid().map(|a| a.span.clone()),
                "dead_ratio" => r.dead_ratio.valid().map(|a| a.span.clone()),
                "replay" => r.replay.valid().map(|a| a.span.clone()),
                "hmac_link_local" => r.hmac_link_local.valid().map(|a| a.span.clone()),
                _ => None,
            };
            if let Some(span) = span {
                sink.push(
                    span,
                    format!("{}.{k}", r.path),
                    format!("{k} is a CARP setting: add protocol = \"carp\", or remove it"),
                );
            }
        }
        return None;
    }
    if let Some(at) = r.passphrase_file.valid() {
        let path = format!("{}.passphrase_file", r.path);
        let text = match host.read_secret(&at.value) {
            Ok(t) => t,
            Err(e) => {
                sink.push(
                    at.span.clone(),
                    path,
                    format!("cannot read {}: {e}", at.value.display()),
                );
                return None;
            }
        };
        if let Err(e) = Key::new(&text) {
            sink.push(
                at.span.clone(),
                path,
                format!("{}: {e}", at.value.display()),
            );
            return None;
        }
        return Some((CarpSecret::File(at.value.clone()), text));
    }
    let inline = r
        .passphrase
        .valid()
        .map_or(String::new(), |a| a.value.clone());
    let bytes = inline.as_bytes().to_vec();
    Some((CarpSecret::Inline(inline), bytes))
}

/// `version` is `None` when it was itself wrong: nothing is judged against a guess.
fn version_rules(r: &RawInstance, version: Option<Version>, sink: &mut Sink<'_>) {
    if let (Some(version), Some(at)) = (version, r.advert_interval.valid())
        && let Err(message) = check_interval(version, at.value)
    {
        sink.push(
            at.span.clone(),
            format!("{}.advert_interval", r.path),
            message,
        );
    }
    if let (Some(Version::V3), Some(at)) = (version, r.auth_pass.valid()) {
        sink.push(
            at.span.clone(),
            format!("{}.auth_pass", r.path),
            "authentication is VRRPv2 only (RFC 5798 removed it): remove auth_pass or set version = 2",
        );
    }
}

/// The family is the first VIP's; one mismatch is reported, not every later address.
fn vip_rules(r: &RawInstance, version: Option<Version>, sink: &mut Sink<'_>) -> Option<Family> {
    let all: Vec<(String, &At<_>)> = r.all_vips().collect();
    let family = r
        .vips
        .valid()
        .and_then(|at| at.value.first())
        .map(|v| Family::of(&v.value.net.addr()));
    let family_of = |v: &At<RawVip>| Family::of(&v.value.net.addr());
    if let Some(first) = family
        && let Some((path, vip)) = all.iter().find(|(_, v)| family_of(v) != first)
    {
        sink.push(
            vip.value.addr_span.clone(),
            vip.value.addr_path(path),
            format!(
                "{} is {} but the first VIP is {}: one instance serves one address family; \
                 split it into two [[vrrp]] sections with the same vrid, one per family",
                vip.value.net,
                family_of(vip).name(),
                first.name()
            ),
        );
    }
    if version == Some(Version::V2)
        && let Some((path, vip)) = all.iter().find(|(_, v)| v.value.net.addr().is_ipv6())
    {
        sink.push(
            vip.value.addr_span.clone(),
            vip.value.addr_path(path),
            format!(
                "{} is IPv6, which VRRPv2 (RFC 3768) cannot carry: set version = 3",
                vip.value.net
            ),
        );
    }
    // No address twice, across both lists.
    let mut seen: HashMap<IpAddr, &str> = HashMap::new();
    for (path, vip) in &all {
        let addr = vip.value.net.addr();
        if let Some(first) = seen.get(&addr) {
            sink.push(
                vip.value.addr_span.clone(),
                vip.value.addr_path(path),
                format!("{addr} is already listed at {first}"),
            );
        } else {
            seen.insert(addr, path);
        }
    }
    // A label names its device, which defaults to the instance's interface.
    let interface = r.interface.valid().map(|at| at.value.as_str());
    for (path, vip) in &all {
        let dev = vip
            .value
            .dev
            .as_ref()
            .map(|d| d.value.as_str())
            .or(interface);
        if let (Some(label), Some(dev)) = (&vip.value.label, dev)
            && !label_fits(&label.value, dev)
        {
            sink.push(
                label.span.clone(),
                format!("{path}.label"),
                format!(
                    "label {:?} must be the device name {dev} or start with \"{dev}:\"",
                    label.value
                ),
            );
        }
    }
    family
}

fn peer_rules(r: &RawInstance, family: Option<Family>, sink: &mut Sink<'_>) {
    let mismatch = |addr: &IpAddr| {
        let fam = Family::of(addr);
        family.filter(|f| *f != fam).map(|family| {
            format!(
                "{addr} is {} but this instance's VIPs are {}",
                fam.name(),
                family.name()
            )
        })
    };
    for (key, peers) in [
        ("unicast_peers", &r.unicast_peers),
        ("allowed_peers", &r.allowed_peers),
    ] {
        let peers = peers.valid().map_or(&[][..], |at| &at.value[..]);
        let path = format!("{}.{key}", r.path);
        for (i, peer) in peers.iter().enumerate() {
            if let Some(message) = mismatch(&peer.value) {
                sink.push(peer.span.clone(), format!("{path}[{i}]"), message);
            }
        }
        duplicates(peers, |p| *p, &path, sink);
    }
    if let Some(at) = r.bfd.valid() {
        for (i, peer) in at.value.peers.iter().enumerate() {
            if let Some(message) = mismatch(peer) {
                sink.push(
                    at.span.clone(),
                    format!("{}.bfd.peers[{i}]", r.path),
                    message,
                );
            }
        }
    }
    if let Some(at) = r.unicast_src_ip.valid()
        && let Some(message) = mismatch(&at.value)
    {
        sink.push(
            at.span.clone(),
            format!("{}.unicast_src_ip", r.path),
            message,
        );
    }
}

/// Proxy addresses: of the instance's family, each once, none also a VIP of it.
fn proxy_rules(r: &RawInstance, family: Option<Family>, sink: &mut Sink<'_>) {
    let proxies = r.proxy_arp.valid().map_or(&[][..], |at| &at.value[..]);
    let path = format!("{}.proxy_arp", r.path);
    let vips: HashMap<IpAddr, String> =
        r.all_vips().map(|(p, v)| (v.value.net.addr(), p)).collect();
    for (i, proxy) in proxies.iter().enumerate() {
        let addr = proxy.value;
        let fam = Family::of(&addr);
        let message = if let Some(family) = family.filter(|f| *f != fam) {
            format!(
                "{addr} is {} but this instance's VIPs are {}: one instance serves one \
                 address family",
                fam.name(),
                family.name()
            )
        } else if let Some(vip) = vips.get(&addr) {
            format!(
                "{addr} is already a VIP at {vip}, which is answered and installed; a proxy \
                 address is one that lives behind this router"
            )
        } else {
            continue;
        };
        sink.push(proxy.span.clone(), format!("{path}[{i}]"), message);
    }
    duplicates(proxies, |p| *p, &path, sink);
}

/// The same destination twice in one table (at the same metric) is one route.
fn route_rules(r: &RawInstance, family: Option<Family>, sink: &mut Sink<'_>) {
    let (Some(family), Some(routes)) = (family, r.virtual_routes.valid()) else {
        return;
    };
    let interface = r.interface.valid().map_or("", |at| at.value.as_str());
    let mut seen: HashMap<(u32, IpNet, Option<u32>), usize> = HashMap::new();
    // The host routes announce_host_routes installs, by the VIP they are for.
    let announced: HashMap<(u32, IpNet, Option<u32>), String> =
        if r.announce_host_routes.valid().is_some_and(|at| at.value) {
            r.all_vips()
                .map(|(p, v)| ((TABLE_MAIN, IpNet::from(v.value.net.addr()), None), p))
                .collect()
        } else {
            HashMap::new()
        };
    for (i, route) in routes.value.iter().enumerate() {
        let built = route.value.build(family, interface);
        let key = (built.table, built.to, built.metric);
        if let Some(vip) = announced.get(&key) {
            sink.push(
                route.span.clone(),
                format!("{}.virtual_routes[{i}]", r.path),
                format!(
                    "announce_host_routes already installs a route to {} in table {} for \
                     {vip}; remove this one or give it a metric",
                    built.to, built.table
                ),
            );
        } else if let Some(first) = seen.get(&key) {
            sink.push(
                route.span.clone(),
                format!("{}.virtual_routes[{i}]", r.path),
                format!(
                    "a route to {} in table {} is already listed at {}.virtual_routes[{first}]",
                    built.to, built.table, r.path
                ),
            );
        } else {
            seen.insert(key, i);
        }
    }
}

fn check_interval(version: Version, d: Duration) -> Result<(), String> {
    let shown = duration::format(d);
    match version {
        Version::V3 if d < CENTISECOND || d > MAX_V3_INTERVAL => Err(format!(
            "{shown} is out of range 10ms..=40.95s for VRRPv3 (12 bits of centiseconds)"
        )),
        Version::V3 if !d.as_nanos().is_multiple_of(CENTISECOND.as_nanos()) => Err(format!(
            "{shown} is not a multiple of 10 ms (VRRPv3 counts centiseconds)"
        )),
        Version::V2 if d.subsec_nanos() != 0 => Err(format!(
            "{shown} is not a whole number of seconds (VRRPv2 counts seconds)"
        )),
        Version::V2 if d.is_zero() || d > MAX_V2_INTERVAL => {
            Err(format!("{shown} is out of range 1s..=255s for VRRPv2"))
        }
        _ => Ok(()),
    }
}

/// Reports every element equal (by `key`) to an earlier one.
fn duplicates<T, K: Eq + std::hash::Hash + std::fmt::Display>(
    items: &[At<T>],
    key: impl Fn(&T) -> K,
    path: &str,
    sink: &mut Sink<'_>,
) {
    let mut seen: HashMap<K, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let k = key(&item.value);
        if let Some(first) = seen.get(&k) {
            sink.push(
                item.span.clone(),
                format!("{path}[{i}]"),
                format!("{k} is already listed at {path}[{first}]"),
            );
        } else {
            seen.insert(k, i);
        }
    }
}

/// "vrrp[0] "gw" (line 5)", for messages that point back at an earlier instance.
fn describe(r: &RawInstance, sink: &Sink<'_>) -> String {
    match r.name.valid() {
        Some(name) => format!(
            "{} {:?} (line {})",
            r.path,
            name.value,
            sink.line_of(&r.span)
        ),
        None => format!("{} (line {})", r.path, sink.line_of(&r.span)),
    }
}

fn across_instances(raws: &[RawInstance], families: &[Option<Family>], sink: &mut Sink<'_>) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut routers: HashMap<(&str, Family, u8, bool), usize> = HashMap::new();
    // Each address with the first instance (and its interface) that has it.
    let mut our_vips: HashMap<IpAddr, (usize, Option<&str>)> = HashMap::new();

    for (i, r) in raws.iter().enumerate() {
        if let Some(name) = r.name.valid() {
            if let Some(&first) = names.get(name.value.as_str()) {
                let message = format!(
                    "name {:?} is already used by {}",
                    name.value,
                    describe(&raws[first], sink)
                );
                sink.push(name.span.clone(), format!("{}.name", r.path), message);
            } else {
                names.insert(&name.value, i);
            }
        }
        let interface = r.interface.valid().map(|at| at.value.as_str());
        if let (Some(ifname), Some(family), Some(vrid)) = (
            interface,
            families.get(i).copied().flatten(),
            r.vrid.valid(),
        ) {
            let key = (ifname, family, vrid.value, is_carp(r));
            if let Some(&first) = routers.get(&key) {
                let message = format!(
                    "vrid {} on {ifname} ({}) is already used by {}; a VRID (a CARP VHID) \
                     names one virtual router per interface, family and protocol",
                    vrid.value,
                    family.name(),
                    describe(&raws[first], sink)
                );
                sink.push(vrid.span.clone(), format!("{}.vrid", r.path), message);
            } else {
                routers.insert(key, i);
            }
        }
        for (path, vip) in r.all_vips() {
            let addr = vip.value.net.addr();
            let (span, path) = (vip.value.addr_span.clone(), vip.value.addr_path(&path));
            match our_vips.get(&addr) {
                None => {
                    our_vips.insert(addr, (i, interface));
                }
                Some(&(first, _)) if first == i => {}
                // The data plane answers for one VIP per interface: a real conflict.
                Some(&(first, Some(other))) if Some(other) == interface => {
                    let message = format!(
                        "{addr} on {other} is already a VIP of {}",
                        describe(&raws[first], sink)
                    );
                    sink.push(span, path, message);
                }
                // keepalived allows it (e.g. two VRIDs on two links); it is rarely meant.
                Some(&(first, other)) => {
                    let message = format!(
                        "{addr} is also a VIP of {} on {}; both instances add it while master, \
                         so make sure they are never master at the same time",
                        describe(&raws[first], sink),
                        other.unwrap_or("another interface")
                    );
                    sink.warn(span, path, message);
                }
            }
        }
    }

    // One BFD session per neighbour and interface serves every instance there, so they
    // must agree on how it runs.
    let mut bfd_timing: HashMap<&str, usize> = HashMap::new();
    for (i, r) in raws.iter().enumerate() {
        let (Some(ifname), Some(at)) = (r.interface.valid(), r.bfd.valid()) else {
            continue;
        };
        let timing = |b: &BfdSettings| (b.interval, b.multiplier, b.echo, b.control_interval);
        match bfd_timing.get(ifname.value.as_str()) {
            None => {
                bfd_timing.insert(&ifname.value, i);
            }
            Some(&first) => {
                let theirs = raws[first].bfd.valid().map(|b| timing(&b.value));
                if theirs != Some(timing(&at.value)) {
                    let message = format!(
                        "bfd interval, multiplier, echo and control_interval differ from {} on \
                         {}; instances on one interface share their BFD sessions, so they \
                         must match",
                        describe(&raws[first], sink),
                        ifname.value
                    );
                    sink.push(at.span.clone(), format!("{}.bfd", r.path), message);
                }
            }
        }
    }

    // Proxy addresses are answered on the instance's interface like VIPs: the data plane
    // holds one answer per address and interface.
    for (i, r) in raws.iter().enumerate() {
        let interface = r.interface.valid().map(|at| at.value.as_str());
        let proxies = r.proxy_arp.valid().map_or(&[][..], |at| &at.value[..]);
        for (p, proxy) in proxies.iter().enumerate() {
            match our_vips.get(&proxy.value) {
                None => {
                    our_vips.insert(proxy.value, (i, interface));
                }
                Some(&(first, Some(other))) if first != i && Some(other) == interface => {
                    let message = format!(
                        "{} on {other} is already answered for by {}",
                        proxy.value,
                        describe(&raws[first], sink)
                    );
                    sink.push(
                        proxy.span.clone(),
                        format!("{}.proxy_arp[{p}]", r.path),
                        message,
                    );
                }
                Some(_) => {}
            }
        }
    }

    // After every VIP is known, so an address may name a VIP of a later instance too.
    let ours = |addr: &IpAddr| our_vips.get(addr).map(|(owner, _)| *owner);
    for r in raws {
        let peers = r.unicast_peers.valid().map_or(&[][..], |at| &at.value[..]);
        for (p, peer) in peers.iter().enumerate() {
            if let Some(owner) = ours(&peer.value) {
                let message = format!(
                    "{} is a VIP of this daemon, in {}; a peer is another router's own address",
                    peer.value,
                    describe(&raws[owner], sink)
                );
                sink.push(
                    peer.span.clone(),
                    format!("{}.unicast_peers[{p}]", r.path),
                    message,
                );
            }
        }
        if let Some(at) = r.unicast_src_ip.valid()
            && let Some(owner) = ours(&at.value)
        {
            let message = format!(
                "{} is a VIP of this daemon, in {}; adverts come from this router's own \
                 address, which stays when the VIPs move",
                at.value,
                describe(&raws[owner], sink)
            );
            sink.push(
                at.span.clone(),
                format!("{}.unicast_src_ip", r.path),
                message,
            );
        }
    }
}

/// A `[sync_groups.NAME]` table configures a group some instance is in.
fn sync_group_rules(raw: &RawConfig, sink: &mut Sink<'_>) {
    for g in &raw.sync_groups {
        let named = raw
            .instances
            .iter()
            .any(|r| r.sync_group.valid().is_some_and(|at| at.value == g.name));
        let undecided = raw
            .instances
            .iter()
            .any(|r| matches!(r.sync_group, Field::Invalid));
        if !named && !undecided && super::values::parse_name(&g.name).is_ok() {
            sink.push(
                g.span.clone(),
                g.path.clone(),
                format!(
                    "no [[vrrp]] instance has sync_group = {:?}; these hooks would never run",
                    g.name
                ),
            );
        }
    }
}

/// The data plane's maps have fixed sizes; a file that would overflow them must fail here,
/// not halfway through writing them.
fn capacity(raws: &[RawInstance], sink: &mut Sink<'_>) {
    let limit = |max: u32| usize::try_from(max).unwrap_or(usize::MAX);
    // The process watcher keeps a count per distinct pattern, however many instances
    // share it.
    let mut patterns = std::collections::BTreeSet::new();
    'processes: for r in raws {
        for (i, at) in r
            .track_processes
            .valid()
            .map_or(&[][..], |at| &at.value[..])
            .iter()
            .enumerate()
        {
            patterns.insert(&at.value.pattern);
            if patterns.len() > MAX_TRACKED_PROCESSES {
                sink.push(
                    at.span.clone(),
                    format!("{}.track_processes[{i}]", r.path),
                    format!("more than {MAX_TRACKED_PROCESSES} different tracked processes in all"),
                );
                break 'processes;
            }
        }
    }
    if let Some(r) = raws.get(limit(MAX_GROUPS)) {
        sink.push(
            r.span.clone(),
            r.path.clone(),
            format!(
                "more than {MAX_GROUPS} instances; the data plane has {MAX_GROUPS} group slots"
            ),
        );
    }
    if let Some((path, vip)) = raws
        .iter()
        .flat_map(RawInstance::all_vips)
        .nth(limit(MAX_VIPS))
    {
        sink.push(
            vip.value.addr_span.clone(),
            vip.value.addr_path(&path),
            format!("more than {MAX_VIPS} VIPs in all; the data plane holds {MAX_VIPS}"),
        );
    } else {
        // Proxy addresses take VIP entries too, after every VIP.
        let vips = raws.iter().flat_map(RawInstance::all_vips).count();
        if let Some((path, span)) =
            raws.iter()
                .flat_map(|r| {
                    r.proxy_arp.valid().into_iter().flat_map(move |at| {
                        at.value.iter().enumerate().map(move |(p, v)| {
                            (format!("{}.proxy_arp[{p}]", r.path), v.span.clone())
                        })
                    })
                })
                .nth(limit(MAX_VIPS).saturating_sub(vips))
        {
            sink.push(
                span,
                path,
                format!(
                    "more than {MAX_VIPS} VIPs and proxy addresses in all; the data plane \
                     holds {MAX_VIPS}"
                ),
            );
        }
    }
    if let Some((r, p, span)) = raws
        .iter()
        .flat_map(|r| {
            r.allowed_peers.valid().into_iter().flat_map(move |at| {
                at.value
                    .iter()
                    .enumerate()
                    .map(move |(p, v)| (r, p, v.span.clone()))
            })
        })
        .nth(limit(MAX_PEERS))
    {
        sink.push(
            span,
            format!("{}.allowed_peers[{p}]", r.path),
            format!("more than {MAX_PEERS} allowed_peers in all; the data plane holds {MAX_PEERS}"),
        );
    }
}

/// Every program vipd would run, with where it is written.
fn commands(raw: &RawConfig) -> Vec<CommandAt> {
    let mut out = Vec::new();
    for r in &raw.instances {
        if let Some(scripts) = r.track_scripts.valid() {
            for (i, entry) in scripts.value.iter().enumerate() {
                out.push(CommandAt {
                    span: entry.value.command_span.clone(),
                    path: format!("{}.track_scripts[{i}].command", r.path),
                    command: entry.value.script.command.clone(),
                });
            }
        }
        out.extend(r.notify.located());
        if let Some(at) = r.bfd.valid()
            && let Some(command) = at.value.notify.clone().and_then(Command::new)
        {
            out.push(CommandAt {
                span: at.span.clone(),
                path: format!("{}.bfd.notify", r.path),
                command,
            });
        }
    }
    for g in &raw.sync_groups {
        out.extend(g.notify.located());
    }
    out
}

/// Script security: see `security`. Skipped while the script user is itself wrong, since
/// who may own the scripts depends on it.
fn script_rules(raw: &RawConfig, host: &dyn Host, sink: &mut Sink<'_>) {
    let user = match raw.global.as_ref().map(|g| &g.script_user) {
        Some(Field::Invalid) => return,
        Some(Field::Valid(at)) => Some(&at.value),
        _ => None,
    };
    let mut checker = ScriptChecker::new(host, user);
    for c in commands(raw) {
        if let Err(message) = checker.check(c.command.program()) {
            sink.push(c.span, c.path, message);
        }
    }
}

/// What loads but is probably not what was meant (only looked for in a valid file).
fn warnings(
    raws: &[RawInstance],
    families: &[Option<Family>],
    host: &dyn Host,
    sink: &mut Sink<'_>,
) {
    if let Some(r) = raws.iter().find(|r| {
        r.track_processes
            .valid()
            .is_some_and(|at| !at.value.is_empty())
    }) && let Some(why) = host.processes_hidden()
    {
        let at = r.track_processes.valid().map(|at| at.span.clone());
        sink.warn(
            at.unwrap_or_else(|| r.span.clone()),
            format!("{}.track_processes", r.path),
            format!(
                "{why}, so processes of other users cannot be counted and vipd will refuse \
                 to start with track_processes; under the packaged unit add a drop-in with \
                 ProtectProc=default (docs/operations.md, \"Tracking processes\")"
            ),
        );
    }
    for (r, family) in raws.iter().zip(families) {
        let allowed = r.allowed_peers.valid().map_or(&[][..], |at| &at.value[..]);
        let peers = r.unicast_peers.valid().map_or(&[][..], |at| &at.value[..]);
        if !is_carp(r) && r.version.or(Version::V3) == Some(Version::V3) && allowed.is_empty() {
            let name = r.name.valid().map_or("", |at| at.value.as_str());
            let whom = if peers.is_empty() {
                "the other routers' addresses"
            } else {
                "the other routers' addresses (the unicast_peers, probably)"
            };
            sink.warn(
                r.span.clone(),
                r.path.clone(),
                format!(
                    "instance {name:?} runs VRRPv3, which has no authentication (RFC 9568 §9), \
                     and sets no allowed_peers: anyone on the link can send advertisements \
                     that take the VIPs or make the master step down; list {whom} in \
                     allowed_peers"
                ),
            );
        }
        if !allowed.is_empty() {
            for (p, peer) in peers.iter().enumerate() {
                if !allowed.iter().any(|a| a.value == peer.value) {
                    sink.warn(
                        peer.span.clone(),
                        format!("{}.unicast_peers[{p}]", r.path),
                        format!(
                            "{} is not in allowed_peers, so the XDP program drops its \
                             advertisements; add it to allowed_peers",
                            peer.value
                        ),
                    );
                }
            }
        }
        // A master answers BFD only from neighbours it has a reason to talk to
        // (docs/architecture.md, "Who may open a session"); a backup is silent, so
        // unless something names it, its sessions come up only after it advertised.
        if let Some(at) = r.bfd.valid()
            && at.value.peers.is_empty()
            && allowed.is_empty()
            && peers.is_empty()
        {
            sink.warn(
                at.span.clone(),
                format!("{}.bfd", r.path),
                "no neighbour named: as master this router answers BFD only from routers it \
                 has heard advertise, which a backup that was never master has not done; name \
                 the other routers in allowed_peers (or bfd.peers)"
                    .to_owned(),
            );
        }
        for (path, vip) in r.all_vips() {
            if let IpNet::V4(net) = vip.value.net
                && net.prefix_len() < 31
            {
                let which = if net.addr() == net.network() {
                    Some("network")
                } else if net.addr() == net.broadcast() {
                    Some("broadcast")
                } else {
                    None
                };
                if let Some(which) = which {
                    sink.warn(
                        vip.value.addr_span.clone(),
                        vip.value.addr_path(&path),
                        format!(
                            "{} is the {which} address of {}, which hosts on that subnet do not \
                             take for a host; use another address or a longer prefix",
                            net.addr(),
                            net.trunc()
                        ),
                    );
                }
            }
        }
        let vips = r.vips.valid().map_or(&[][..], |at| &at.value[..]);
        if *family == Some(Family::Ipv6)
            && let Some(first) = vips.first()
            && !matches!(first.value.net.addr(), IpAddr::V6(a) if a.is_unicast_link_local())
        {
            sink.warn(
                first.value.addr_span.clone(),
                first.value.addr_path(&format!("{}.vips[0]", r.path)),
                format!(
                    "{} is not link-local: RFC 5798 §5.2.9 says the first address of an IPv6 \
                     virtual router SHOULD be its link-local address; list one (e.g. \
                     \"fe80::1\") first",
                    first.value.net.addr()
                ),
            );
        }
        if let Some(family) = family {
            let max = max_advertised(*family);
            if let Some(beyond) = vips.get(max) {
                sink.warn(
                    beyond.value.addr_span.clone(),
                    beyond.value.addr_path(&format!("{}.vips[{max}]", r.path)),
                    format!(
                        "{} addresses in vips, but one {} advertisement carries at most {max}: \
                         the last {} are left out of advertisements; move them to vips_excluded",
                        vips.len(),
                        family.name(),
                        vips.len() - max
                    ),
                );
            }
        }
    }
}

fn build_global(g: RawGlobal) -> Option<Global> {
    let router_id = g.router_id.valid()?.value.clone();
    let pin_path = g
        .pin_path
        .or(PathBuf::from(DEFAULT_PIN_DIR).join(&router_id))?;
    let control_socket = g
        .control_socket
        .or(PathBuf::from(CONTROL_SOCKET_DIR).join(format!("{router_id}.sock")))?;
    Some(Global {
        router_id,
        pin_path,
        control_socket,
        metrics: optional(&g.metrics)?,
        script_user: optional(&g.script_user)?,
        startup_delay: g.startup_delay.or(Duration::ZERO)?,
        realtime_priority: g
            .realtime_priority
            .or(super::schema::DEFAULT_REALTIME_PRIORITY)?,
        control_group: optional(&g.control_group)?,
        admin_group: optional(&g.admin_group)?,
        state_file: optional(&g.state_file)?,
    })
}

fn build_instance(
    r: &RawInstance,
    family: Family,
    secret: Option<(CarpSecret, Vec<u8>)>,
) -> Option<Instance> {
    let interface = r.interface.valid()?.value.clone();
    let vips = |field: &Field<Vec<At<RawVip>>>| {
        values(field).map(|list| list.iter().map(|v| v.build(&interface)).collect())
    };
    let carp = is_carp(r);
    let carp_config = match (carp, secret) {
        (false, _) => None,
        (true, None) => return None,
        (true, Some((secret, bytes))) => {
            // Read and checked by `carp_secret` a moment ago.
            Some(CarpConfig {
                settings: CarpSettings {
                    key: Key::new(&bytes).ok()?,
                    dead_ratio: r.dead_ratio.or(carp::DEAD_RATIO)?,
                    replay: r.replay.or(carp::ReplayMode::Strict)?,
                    hmac_link_local: r.hmac_link_local.or(false)?,
                    demote: 0,
                },
                secret,
            })
        }
    };
    let priority = match r.advskew.valid() {
        Some(at) => carp::priority_for_advskew(at.value),
        None => r.priority.or(DEFAULT_PRIORITY)?,
    };
    Some(Instance {
        name: r.name.valid()?.value.clone(),
        protocol: if carp { Protocol::Carp } else { Protocol::Vrrp },
        carp: carp_config,
        vrid: r.vrid.valid()?.value,
        priority,
        version: if carp {
            Version::V2
        } else {
            r.version.or(Version::V3)?
        },
        advert_interval: r.advert_interval.or(DEFAULT_ADVERT_INTERVAL)?,
        // carp(4)'s and ucarp's default is not to preempt.
        preempt: r.preempt.or(!carp)?,
        preempt_delay: r.preempt_delay.or(Duration::ZERO)?,
        accept: r.accept.or(true)?,
        vmac: r.vmac.or(false)?,
        family,
        vips: vips(&r.vips)?,
        vips_excluded: vips(&r.vips_excluded)?,
        proxy_arp: values(&r.proxy_arp)?,
        // Places among the members are filled in once every instance is built
        // (`shared::assign_members`).
        shared_vips: values(&r.shared_vips)?
            .into_iter()
            .map(|addr| SharedVip {
                addr,
                member: 0,
                members: 0,
            })
            .collect(),
        announce_host_routes: r.announce_host_routes.or(false)?,
        virtual_routes: values(&r.virtual_routes)?
            .iter()
            .map(|route| route.build(family, &interface))
            .collect(),
        virtual_rules: values(&r.virtual_rules)?
            .iter()
            .map(|rule| rule.build(family))
            .collect(),
        unicast_src_ip: optional(&r.unicast_src_ip)?,
        unicast_peers: values(&r.unicast_peers)?,
        allowed_peers: values(&r.allowed_peers)?,
        auth_pass: optional(&r.auth_pass)?,
        dont_track_primary: r.dont_track_primary.or(false)?,
        track_interfaces: values(&r.track_interfaces)?,
        track_scripts: values(&r.track_scripts)?
            .into_iter()
            .map(|entry| entry.script)
            .collect(),
        track_files: values(&r.track_files)?,
        track_processes: values(&r.track_processes)?,
        bfd: optional(&r.bfd)?,
        notify: r.notify.build()?,
        sync_group: optional(&r.sync_group)?,
        garp_repeat: r.garp_repeat.or(DEFAULT_GARP_REPEAT)?,
        garp_interval: r.garp_interval.or(DEFAULT_GARP_INTERVAL)?,
        garp_refresh: Some(r.garp_refresh.or(Duration::ZERO)?).filter(|d| !d.is_zero()),
        interface,
    })
}

/// An optional list's values, empty when absent, `None` when invalid.
fn values<T: Clone>(list: &Field<Vec<At<T>>>) -> Option<Vec<T>> {
    list.or(Vec::new())
        .map(|items| items.into_iter().map(|at| at.value).collect())
}

/// `Some(None)` when absent, `Some(Some(v))` when valid, `None` when invalid.
fn optional<T: Clone>(field: &Field<T>) -> Option<Option<T>> {
    match field {
        Field::Absent => Some(None),
        Field::Invalid => None,
        Field::Valid(at) => Some(Some(at.value.clone())),
    }
}
