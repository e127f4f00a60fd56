//! Rules that relate fields to each other and instances to each other, then the typed
//! [`Config`] with defaults filled in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use vip_common::{MAX_GROUPS, MAX_PEERS, MAX_VIPS};

use super::duration;
use super::locate::{Sink, Span};
use super::model::{Config, Family, Global, Instance, Version};
use super::read::{At, Field};
use super::schema::{
    CONTROL_SOCKET_DIR, DEFAULT_ADVERT_INTERVAL, DEFAULT_GARP_INTERVAL, DEFAULT_GARP_REPEAT,
    DEFAULT_PIN_DIR, DEFAULT_PRIORITY, RawConfig, RawGlobal, RawInstance,
};

const CENTISECOND: Duration = Duration::from_millis(10);
// The v3 interval field is 12 bits of centiseconds.
const MAX_V3_INTERVAL: Duration = Duration::from_millis(40_950);
// The v2 interval field is 8 bits of seconds.
const MAX_V2_INTERVAL: Duration = Duration::from_secs(255);

/// Applies every rule; the configuration only when none failed anywhere in the file.
pub(crate) fn validate(raw: RawConfig, sink: &mut Sink<'_>) -> Option<Config> {
    let families: Vec<Option<Family>> = raw
        .instances
        .iter()
        .map(|r| instance_rules(r, sink))
        .collect();
    across_instances(&raw.instances, &families, sink);
    capacity(&raw.instances, sink);
    if !sink.is_empty() {
        return None;
    }
    let global = build_global(raw.global?)?;
    let mut instances = Vec::with_capacity(raw.instances.len());
    for (r, family) in raw.instances.into_iter().zip(families) {
        let span = r.span.clone();
        let path = r.path.clone();
        match family.and_then(|f| build_instance(r, f)) {
            Some(instance) => instances.push(instance),
            // Unreachable when the rules above are complete; a problem beats a panic.
            None => sink.push(
                span,
                path,
                "internal error: instance incomplete after validation",
            ),
        }
    }
    sink.is_empty().then_some(Config { global, instances })
}

/// Checks within one instance; returns its address family when its VIPs decide one.
fn instance_rules(r: &RawInstance, sink: &mut Sink<'_>) -> Option<Family> {
    let version = r.version.or(Version::V3);
    version_rules(r, version, sink);
    let family = vip_rules(r, version, sink);
    peer_rules(r, family, sink);
    if let Some(at) = r.track_interfaces.valid() {
        let path = format!("{}.track_interfaces", r.path);
        duplicates(&at.value, |t| t.name.clone(), &path, sink);
    }
    if let Some(at) = r.track_files.valid() {
        let path = format!("{}.track_files", r.path);
        duplicates(&at.value, |t| t.path.display().to_string(), &path, sink);
    }
    family
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
    let vips = r.vips.valid().map_or(&[][..], |at| &at.value[..]);
    let family = vips.first().map(|v| Family::of(&v.value.addr()));
    let mismatch = vips
        .iter()
        .enumerate()
        .find(|(_, v)| Some(Family::of(&v.value.addr())) != family);
    if let (Some(first), Some((i, vip))) = (family, mismatch) {
        sink.push(
            vip.span.clone(),
            format!("{}.vips[{i}]", r.path),
            format!(
                "{} is {} but the first VIP is {}: one instance serves one address family; \
                 split it into two [[vrrp]] sections with the same vrid, one per family",
                vip.value,
                Family::of(&vip.value.addr()).name(),
                first.name()
            ),
        );
    }
    let first_v6 = vips
        .iter()
        .enumerate()
        .find(|(_, v)| v.value.addr().is_ipv6());
    if let (Some(Version::V2), Some((i, vip))) = (version, first_v6) {
        sink.push(
            vip.span.clone(),
            format!("{}.vips[{i}]", r.path),
            format!(
                "{} is IPv6, which VRRPv2 (RFC 3768) cannot carry: set version = 3",
                vip.value
            ),
        );
    }
    duplicates(vips, |v| v.addr(), &format!("{}.vips", r.path), sink);
    family
}

fn peer_rules(r: &RawInstance, family: Option<Family>, sink: &mut Sink<'_>) {
    for (key, peers) in [
        ("unicast_peers", &r.unicast_peers),
        ("allowed_peers", &r.allowed_peers),
    ] {
        let peers = peers.valid().map_or(&[][..], |at| &at.value[..]);
        let path = format!("{}.{key}", r.path);
        for (i, peer) in peers.iter().enumerate() {
            let fam = Family::of(&peer.value);
            if let Some(family) = family.filter(|f| *f != fam) {
                sink.push(
                    peer.span.clone(),
                    format!("{path}[{i}]"),
                    format!(
                        "{} is {} but this instance's VIPs are {}",
                        peer.value,
                        fam.name(),
                        family.name()
                    ),
                );
            }
        }
        duplicates(peers, |p| *p, &path, sink);
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
    let mut routers: HashMap<(&str, Family, u8), usize> = HashMap::new();
    let mut vips_on_link: HashMap<(&str, IpAddr), usize> = HashMap::new();
    let mut our_vips: HashMap<IpAddr, usize> = HashMap::new();

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
            let key = (ifname, family, vrid.value);
            if let Some(&first) = routers.get(&key) {
                let message = format!(
                    "vrid {} on {ifname} ({}) is already used by {}; a VRID names one virtual \
                     router per interface and family",
                    vrid.value,
                    family.name(),
                    describe(&raws[first], sink)
                );
                sink.push(vrid.span.clone(), format!("{}.vrid", r.path), message);
            } else {
                routers.insert(key, i);
            }
        }
        let vips = r.vips.valid().map_or(&[][..], |at| &at.value[..]);
        for (v, vip) in vips.iter().enumerate() {
            let addr = vip.value.addr();
            if let Some(ifname) = interface {
                match vips_on_link.get(&(ifname, addr)) {
                    Some(&first) if first != i => {
                        let message = format!(
                            "{addr} on {ifname} is already a VIP of {}",
                            describe(&raws[first], sink)
                        );
                        sink.push(vip.span.clone(), format!("{}.vips[{v}]", r.path), message);
                    }
                    Some(_) => {}
                    None => {
                        vips_on_link.insert((ifname, addr), i);
                    }
                }
            }
            our_vips.entry(addr).or_insert(i);
        }
    }

    // After every VIP is known, so a peer may name a VIP of a later instance too.
    for r in raws {
        let peers = r.unicast_peers.valid().map_or(&[][..], |at| &at.value[..]);
        for (p, peer) in peers.iter().enumerate() {
            if let Some(&owner) = our_vips.get(&peer.value) {
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
    }
}

/// The data plane's maps have fixed sizes; a file that would overflow them must fail here,
/// not halfway through writing them.
fn capacity(raws: &[RawInstance], sink: &mut Sink<'_>) {
    let limit = |max: u32| usize::try_from(max).unwrap_or(usize::MAX);
    if let Some(r) = raws.get(limit(MAX_GROUPS)) {
        sink.push(
            r.span.clone(),
            r.path.clone(),
            format!(
                "more than {MAX_GROUPS} instances; the data plane has {MAX_GROUPS} group slots"
            ),
        );
    }
    let mut over = |key: &str, max: u32, lists: &mut dyn Iterator<Item = (&RawInstance, Span)>| {
        if let Some((r, span)) = lists.nth(limit(max)) {
            sink.push(
                span,
                format!("{}.{key}", r.path),
                format!("more than {max} {key} in all; the data plane holds {max}"),
            );
        }
    };
    over(
        "vips",
        MAX_VIPS,
        &mut raws.iter().flat_map(|r| {
            r.vips
                .valid()
                .into_iter()
                .flat_map(move |at| at.value.iter().map(move |v| (r, v.span.clone())))
        }),
    );
    over(
        "allowed_peers",
        MAX_PEERS,
        &mut raws.iter().flat_map(|r| {
            r.allowed_peers
                .valid()
                .into_iter()
                .flat_map(move |at| at.value.iter().map(move |v| (r, v.span.clone())))
        }),
    );
}

fn build_global(g: RawGlobal) -> Option<Global> {
    let router_id = g.router_id.valid()?.value.clone();
    let pin_path = g
        .pin_path
        .or(PathBuf::from(DEFAULT_PIN_DIR).join(&router_id))?;
    let control_socket = g
        .control_socket
        .or(PathBuf::from(CONTROL_SOCKET_DIR).join(format!("{router_id}.sock")))?;
    let metrics = optional(&g.metrics)?;
    Some(Global {
        router_id,
        pin_path,
        control_socket,
        metrics,
    })
}

fn build_instance(r: RawInstance, family: Family) -> Option<Instance> {
    Some(Instance {
        name: r.name.valid()?.value.clone(),
        interface: r.interface.valid()?.value.clone(),
        vrid: r.vrid.valid()?.value,
        priority: r.priority.or(DEFAULT_PRIORITY)?,
        version: r.version.or(Version::V3)?,
        advert_interval: r.advert_interval.or(DEFAULT_ADVERT_INTERVAL)?,
        preempt: r.preempt.or(true)?,
        preempt_delay: r.preempt_delay.or(Duration::ZERO)?,
        accept: r.accept.or(true)?,
        vmac: r.vmac.or(false)?,
        family,
        vips: unwrap_at(r.vips.valid()?.value.clone()),
        unicast_peers: values(&r.unicast_peers)?,
        allowed_peers: values(&r.allowed_peers)?,
        auth_pass: optional(&r.auth_pass)?,
        track_interfaces: values(&r.track_interfaces)?,
        track_scripts: values(&r.track_scripts)?,
        track_files: values(&r.track_files)?,
        notify: optional(&r.notify)?,
        sync_group: optional(&r.sync_group)?,
        garp_repeat: r.garp_repeat.or(DEFAULT_GARP_REPEAT)?,
        garp_interval: r.garp_interval.or(DEFAULT_GARP_INTERVAL)?,
        garp_refresh: Some(r.garp_refresh.or(Duration::ZERO)?).filter(|d| !d.is_zero()),
    })
}

/// An optional list's values, empty when absent, `None` when invalid.
fn values<T: Clone>(list: &Field<Vec<At<T>>>) -> Option<Vec<T>> {
    list.or(Vec::new()).map(unwrap_at)
}

fn unwrap_at<T>(items: Vec<At<T>>) -> Vec<T> {
    items.into_iter().map(|at| at.value).collect()
}

/// `Some(None)` when absent, `Some(Some(v))` when valid, `None` when invalid.
fn optional<T: Clone>(field: &Field<T>) -> Option<Option<T>> {
    match field {
        Field::Absent => Some(None),
        Field::Invalid => None,
        Field::Valid(at) => Some(Some(at.value.clone())),
    }
}
