//! Routes and policy rules a master installs (keepalived's `virtual_routes` and
//! `virtual_rules`), through rtnetlink. Messages are built field by field so every option
//! of the configuration reaches the kernel as `ip route` / `ip rule` would send it.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::{
    AddressFamily,
    route::{
        RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteProtocol, RouteScope,
        RouteType,
    },
    rule::{RuleAction, RuleAttribute, RuleMessage},
};

use super::{Netlink, Result, link::errno, nl_err};
use crate::config::{RouteType as CfgRouteType, VirtualRoute, VirtualRule};

/// A route with its devices resolved to indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub spec: VirtualRoute,
    pub oif: Option<u32>,
}

/// A rule as configured (interfaces go by name in rules).
pub type Rule = VirtualRule;

fn family(a: &IpAddr) -> AddressFamily {
    match a {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn route_address(a: IpAddr) -> RouteAddress {
    match a {
        IpAddr::V4(v) => RouteAddress::Inet(v),
        IpAddr::V6(v) => RouteAddress::Inet6(v),
    }
}

/// The table's header byte: the id itself when it fits, else "see the attribute".
fn table_byte(table: u32) -> u8 {
    u8::try_from(table).unwrap_or(0)
}

fn route_message(r: &Route) -> RouteMessage {
    let s = &r.spec;
    let mut m = RouteMessage::default();
    m.header.address_family = family(&s.to.addr());
    m.header.destination_prefix_length = s.to.prefix_len();
    m.header.table = table_byte(s.table);
    m.header.protocol = RouteProtocol::from(s.protocol);
    m.header.kind = RouteType::from(s.kind.number());
    // `ip route`'s default: a unicast route without a gateway is on the link.
    let scope = s.scope.map(|x| x.number()).unwrap_or(
        if s.kind == CfgRouteType::Unicast && s.via.is_none() {
            253
        } else {
            0
        },
    );
    m.header.scope = RouteScope::from(scope);
    if s.onlink {
        m.header.flags |= RouteFlags::Onlink;
    }
    if s.to.prefix_len() > 0 {
        m.attributes
            .push(RouteAttribute::Destination(route_address(s.to.addr())));
    }
    m.attributes.push(RouteAttribute::Table(s.table));
    if let Some(via) = s.via {
        m.attributes
            .push(RouteAttribute::Gateway(route_address(via)));
    }
    if let Some(oif) = r.oif {
        m.attributes.push(RouteAttribute::Oif(oif));
    }
    if let Some(src) = s.src {
        m.attributes
            .push(RouteAttribute::PrefSource(route_address(src)));
    }
    if let Some(metric) = s.metric {
        m.attributes.push(RouteAttribute::Priority(metric));
    }
    m
}

fn rule_message(r: &Rule) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = match r.family {
        crate::vrrp::Family::Ipv4 => AddressFamily::Inet,
        crate::vrrp::Family::Ipv6 => AddressFamily::Inet6,
    };
    m.header.action = RuleAction::from(r.action.number());
    if let Some(t) = r.table {
        m.header.table = table_byte(t);
        m.attributes.push(RuleAttribute::Table(t));
    }
    if let Some(from) = r.from {
        m.header.src_len = from.prefix_len();
        m.attributes.push(RuleAttribute::Source(from.addr()));
    }
    if let Some(to) = r.to {
        m.header.dst_len = to.prefix_len();
        m.attributes.push(RuleAttribute::Destination(to.addr()));
    }
    if let Some(iif) = &r.iif {
        m.attributes.push(RuleAttribute::Iifname(iif.clone()));
    }
    if let Some(oif) = &r.oif {
        m.attributes.push(RuleAttribute::Oifname(oif.clone()));
    }
    if let Some(mark) = r.fwmark {
        m.attributes.push(RuleAttribute::FwMark(mark.value));
        m.attributes.push(RuleAttribute::FwMask(mark.mask));
    }
    if let Some(p) = r.priority {
        m.attributes.push(RuleAttribute::Priority(p));
    }
    m
}

fn describe_route(r: &Route) -> String {
    let s = &r.spec;
    let mut d = format!("{} {}", s.kind.as_str(), s.to);
    if let Some(v) = s.via {
        d += &format!(" via {v}");
    }
    d + &format!(" table {}", s.table)
}

fn describe_rule(r: &Rule) -> String {
    let net = |n: &Option<IpNet>| n.map_or("all".to_owned(), |n| n.to_string());
    format!(
        "from {} to {} {} table {}",
        net(&r.from),
        net(&r.to),
        r.action.as_str(),
        r.table.map_or("-".into(), |t| t.to_string())
    )
}

impl Netlink {
    /// Adds a route; `Ok(false)` if it was already there.
    pub async fn add_route(&self, r: &Route) -> Result<bool> {
        match self.handle().route().add(route_message(r)).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(nl_err(format!("adding route {}", describe_route(r)))(e)),
        }
    }

    /// Removes a route; `Ok(false)` if it was not there.
    pub async fn del_route(&self, r: &Route) -> Result<bool> {
        match self.handle().route().del(route_message(r)).execute().await {
            Ok(()) => Ok(true),
            Err(e) if matches!(errno(&e), Some(libc::ESRCH | libc::ENOENT)) => Ok(false),
            Err(e) => Err(nl_err(format!("removing route {}", describe_route(r)))(e)),
        }
    }

    /// Adds a rule; `Ok(false)` if the kernel already had an identical one.
    pub async fn add_rule(&self, r: &Rule) -> Result<bool> {
        let mut req = self.handle().rule().add();
        *req.message_mut() = rule_message(r);
        match req.execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(nl_err(format!("adding rule {}", describe_rule(r)))(e)),
        }
    }

    /// Removes a rule; `Ok(false)` if it was not there.
    pub async fn del_rule(&self, r: &Rule) -> Result<bool> {
        match self.handle().rule().del(rule_message(r)).execute().await {
            Ok(()) => Ok(true),
            Err(e) if matches!(errno(&e), Some(libc::ENOENT | libc::ESRCH)) => Ok(false),
            Err(e) => Err(nl_err(format!("removing rule {}", describe_rule(r)))(e)),
        }
    }
}
