//! `shared_vips`: active-active addresses. Every instance that lists an address on one
//! interface is a member group of it; the members, ordered by id (VRRP before CARP on the
//! same id), are numbered 0.. and the data plane hands each requester to member
//! `vip_common::shared_member` (docs/operations.md, "Active-active").

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use vip_common::MAX_SHARED_MEMBERS;

use super::locate::{Sink, Span};
use super::model::Instance;
use super::schema::RawInstance;
use crate::vrrp::Family;
use crate::vrrp::instance::Protocol;

/// One member group as written: (interface, id, CARP?) orders them.
struct Written<'a> {
    raw: &'a RawInstance,
    path: String,
    span: Span,
}

fn member_order(r: &RawInstance) -> (u8, bool) {
    (
        r.vrid.valid().map_or(0, |at| at.value),
        r.protocol
            .valid()
            .is_some_and(|at| at.value == Protocol::Carp),
    )
}

fn line(r: &RawInstance, sink: &Sink<'_>) -> String {
    match r.name.valid() {
        Some(n) => format!("{} {:?} (line {})", r.path, n.value, sink.line_of(&r.span)),
        None => format!("{} (line {})", r.path, sink.line_of(&r.span)),
    }
}

/// Per instance: the address is of the instance's family, listed once, and the instance
/// answers from its virtual MAC. Across instances: no shared address is also a VIP or
/// proxy address, at least two and at most [`MAX_SHARED_MEMBERS`] groups share it on an
/// interface.
pub(crate) fn shared_vip_rules(
    raws: &[RawInstance],
    families: &[Option<Family>],
    sink: &mut Sink<'_>,
) {
    let mut answered: HashMap<IpAddr, String> = HashMap::new();
    for r in raws {
        for (path, v) in r.all_vips() {
            answered.entry(v.value.net.addr()).or_insert(path);
        }
        let proxies = r.proxy_arp.valid().map_or(&[][..], |at| &at.value[..]);
        for (p, a) in proxies.iter().enumerate() {
            answered
                .entry(a.value)
                .or_insert(format!("{}.proxy_arp[{p}]", r.path));
        }
    }
    let mut groups: BTreeMap<(String, IpAddr), Vec<Written<'_>>> = BTreeMap::new();
    for (r, family) in raws.iter().zip(families) {
        let Some(list) = r.shared_vips.valid() else {
            continue;
        };
        if list.value.is_empty() {
            continue;
        }
        if !r.vmac.valid().is_some_and(|at| at.value) {
            sink.push(
                list.span.clone(),
                format!("{}.shared_vips", r.path),
                "a shared VIP is answered from each member group's own virtual MAC: set \
                 `vmac = true` in this instance",
            );
        }
        let mut seen: HashMap<IpAddr, usize> = HashMap::new();
        for (i, at) in list.value.iter().enumerate() {
            let path = format!("{}.shared_vips[{i}]", r.path);
            let addr = at.value;
            let fam = Family::of(&addr);
            if let Some(f) = family.filter(|f| *f != fam) {
                sink.push(
                    at.span.clone(),
                    path,
                    format!(
                        "{addr} is {} but this instance's VIPs are {}: one instance serves \
                         one address family",
                        fam.name(),
                        f.name()
                    ),
                );
                continue;
            }
            if let Some(first) = seen.insert(addr, i) {
                sink.push(
                    at.span.clone(),
                    path,
                    format!("{addr} is listed twice (first at shared_vips[{first}])"),
                );
                continue;
            }
            if let Some(other) = answered.get(&addr) {
                sink.push(
                    at.span.clone(),
                    path,
                    format!(
                        "{addr} is also {other}: an address is either one group's or shared \
                         by several"
                    ),
                );
                continue;
            }
            if let Some(interface) = r.interface.valid() {
                groups
                    .entry((interface.value.clone(), addr))
                    .or_default()
                    .push(Written {
                        raw: r,
                        path,
                        span: at.span.clone(),
                    });
            }
        }
    }
    for ((interface, addr), mut members) in groups {
        members.sort_by_key(|w| member_order(w.raw));
        if members.len() < 2 {
            let w = &members[0];
            sink.push(
                w.span.clone(),
                w.path.clone(),
                format!(
                    "{addr} on {interface} is shared by this instance alone: list it in the \
                     shared_vips of every group that serves it (at least two), or make it a VIP"
                ),
            );
        }
        if let Some(w) = members.get(usize::from(MAX_SHARED_MEMBERS)) {
            sink.push(
                w.span.clone(),
                w.path.clone(),
                format!(
                    "{addr} on {interface} is shared by more than {MAX_SHARED_MEMBERS} \
                     groups; the data plane splits one address {MAX_SHARED_MEMBERS} ways at most"
                ),
            );
        }
        for pair in members.windows(2) {
            if member_order(pair[0].raw) == member_order(pair[1].raw) {
                let message = format!(
                    "{addr} on {interface} is shared twice by one group id: {} has it too",
                    line(pair[0].raw, sink)
                );
                sink.push(pair[1].span.clone(), pair[1].path.clone(), message);
            }
        }
    }
}

/// A member's order among a shared VIP's groups (id, then CARP after VRRP) and its
/// index in the instance list.
type Place = ((u8, bool), usize);

/// Fills in each instance's place among the groups sharing each of its shared VIPs.
pub(crate) fn assign_members(instances: &mut [Instance]) {
    let order = |i: &Instance| (i.vrid, i.protocol == Protocol::Carp);
    let mut groups: BTreeMap<(String, IpAddr), Vec<Place>> = BTreeMap::new();
    for (n, inst) in instances.iter().enumerate() {
        for s in &inst.shared_vips {
            groups
                .entry((inst.interface.clone(), s.addr))
                .or_default()
                .push((order(inst), n));
        }
    }
    for ((_, addr), mut members) in groups {
        members.sort();
        let count = members.len().min(usize::from(u8::MAX)) as u8;
        for (place, (_, n)) in members.into_iter().enumerate() {
            for s in instances[n]
                .shared_vips
                .iter_mut()
                .filter(|s| s.addr == addr)
            {
                s.member = place as u8;
                s.members = count;
            }
        }
    }
}
