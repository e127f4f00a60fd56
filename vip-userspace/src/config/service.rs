//! `[[service]]`: a load-balanced virtual service (a VIP, a port or every port, TCP or
//! UDP), its real servers and their health checks, with keepalived's `virtual_server`
//! / `real_server` / checker keywords where they exist (docs/operations.md, "Virtual
//! services"). Decoded and checked whole here; the core's own types
//! (`lb::service::Service`) are made from it once the daemon knows the data-plane slot
//! of the instance a service follows ([`ServiceConfig::to_core`]).

use std::net::IpAddr;
use std::time::Duration;

use vip_common::{MAX_LB_REALS, MAX_LB_SERVICES};

use super::command::parse_command;
use super::locate::{Sink, Span};
use super::model::Command;
use super::read::{Field, Node, Table, as_array};
use super::values::parse_name;
use crate::lb::service::{Check, CheckKind, Method, Protocol, Real, Service};

pub(crate) const SERVICE_KEYS: &[&str] = &[
    "name",
    "vip",
    "port",
    "protocol",
    "method",
    "follow",
    "active",
    "hash",
    "hash_seed",
    "quorum",
    "hysteresis",
    "alpha",
    "quorum_up",
    "quorum_down",
    "sorry_server",
    "check",
    "real",
];

pub(crate) const REAL_KEYS: &[&str] = &[
    "address",
    "port",
    "weight",
    "inhibit_on_failure",
    "notify_up",
    "notify_down",
    "check",
];

pub(crate) const CHECK_KEYS: &[&str] = &[
    "type",
    "interval",
    "timeout",
    "retry",
    "delay_before_retry",
    "port",
    "path",
    "status",
    "digest",
    "host",
    "script",
];

const SORRY_KEYS: &[&str] = &["address", "port"];

/// keepalived's defaults: `delay_loop` 60 s, `connect_timeout` 5 s, `retry` 1,
/// `delay_before_retry` 1 s. vipd checks more often by default (a director that waits
/// a minute to notice a dead server loses a minute of connections to it).
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
pub(crate) const DEFAULT_RETRY: u32 = 1;
pub(crate) const DEFAULT_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(1);
/// Bounds that keep one service from flooding its servers or hanging forever.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
const MAX_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_RETRY: i64 = 100;
const MAX_WEIGHT: i64 = 65_535;

/// Which node forwards a service's packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Active {
    /// The master of this `[[vrrp]]` instance (by name).
    Follow(String),
    /// Every director at once, behind the upstream router's ECMP (`active = "ecmp"`).
    Ecmp,
}

/// A real server as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealConfig {
    pub address: IpAddr,
    pub port: u16,
    pub weight: u32,
    pub inhibit_on_failure: bool,
    pub notify_up: Option<Command>,
    pub notify_down: Option<Command>,
    pub check: Option<Check>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub name: String,
    pub vip: IpAddr,
    /// 0: every port.
    pub port: u16,
    pub protocol: Protocol,
    pub method: Method,
    pub active: Active,
    /// Hash the client address alone (keepalived's `sh`, `persistence_timeout`).
    pub source_hash: bool,
    pub hash_seed: u32,
    pub quorum: u32,
    pub hysteresis: u32,
    pub alpha: bool,
    pub quorum_up: Option<Command>,
    pub quorum_down: Option<Command>,
    pub sorry: Option<(IpAddr, u16)>,
    pub reals: Vec<RealConfig>,
}

impl ServiceConfig {
    /// The core's service, following data-plane slot `slot` (ignored for ECMP).
    pub fn to_core(&self, slot: u32) -> Service {
        let real = |r: &RealConfig| Real {
            addr: r.address,
            port: r.port,
            weight: r.weight,
            method: self.method,
            inhibit_on_failure: r.inhibit_on_failure,
            check: r.check.clone(),
        };
        Service {
            vip: self.vip,
            port: self.port,
            protocol: self.protocol,
            slot,
            active_active: self.active == Active::Ecmp,
            source_hash: self.source_hash,
            hash_seed: self.hash_seed,
            reals: self.reals.iter().map(real).collect(),
            sorry: self.sorry.map(|(addr, port)| Real {
                addr,
                port,
                weight: 1,
                method: self.method,
                inhibit_on_failure: false,
                check: None,
            }),
            quorum: self.quorum,
            hysteresis: self.hysteresis,
            alpha: self.alpha,
        }
    }

    /// The instance whose mastership this service follows, if any.
    pub fn follows(&self) -> Option<&str> {
        match &self.active {
            Active::Follow(name) => Some(name),
            Active::Ecmp => None,
        }
    }
}

/// A service as read, with what the rules across sections need.
pub(crate) struct RawService {
    pub(crate) span: Span,
    pub(crate) path: String,
    /// Where `follow` is written, for the rule that it names an instance.
    pub(crate) follow_span: Option<Span>,
    pub(crate) service: Option<ServiceConfig>,
}

/// Reads every `[[service]]`.
pub(crate) fn decode_services(node: &Node<'_>, sink: &mut Sink<'_>) -> Vec<RawService> {
    let Some(items) = as_array(node, "service", sink) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(t) = Table::of(item, format!("service[{i}]"), sink) {
            out.push(decode_service(&t, sink));
        }
    }
    out
}

fn decode_service(t: &Table<'_, '_>, sink: &mut Sink<'_>) -> RawService {
    let before = sink.len();
    t.reject_unknown(SERVICE_KEYS, sink);
    for key in ["name", "vip", "port", "real"] {
        t.require(key, sink);
    }
    let name = t.parsed("name", sink, parse_name);
    let vip = t.parsed("vip", sink, |s| {
        s.parse::<IpAddr>()
            .map_err(|_| format!("{s:?} is not an IP address"))
    });
    let port = t.int::<u16>("port", 0..=65_535, sink);
    let protocol = t.parsed("protocol", sink, |s| match s {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        _ => Err(format!("{s:?}: write \"tcp\" or \"udp\"")),
    });
    let method = t.parsed("method", sink, |s| match s {
        "dr" => Ok(Method::DirectRouting),
        "tunnel" => Ok(Method::Tunnel),
        "nat" => Err(
            "\"nat\" is not carried: the servers' replies would have to come back \
                      through the director, whose XDP program only sees what arrives; use \
                      \"dr\" or \"tunnel\""
                .to_owned(),
        ),
        _ => Err(format!(
            "{s:?}: write \"dr\" (direct routing) or \"tunnel\" (IP-in-IP)"
        )),
    });
    let follow = t.parsed("follow", sink, parse_name);
    let active = t.parsed("active", sink, |s| match s {
        "ecmp" => Ok(()),
        _ => Err(format!(
            "{s:?}: the only value is \"ecmp\" (every director forwards, behind the \
             upstream router's ECMP); to forward only while master, write follow = \
             \"INSTANCE\" instead"
        )),
    });
    let active = match (follow.valid(), active.valid()) {
        (Some(f), None) if !matches!(active, Field::Invalid) => {
            Some(Active::Follow(f.value.clone()))
        }
        (None, Some(_)) if !matches!(follow, Field::Invalid) => Some(Active::Ecmp),
        (Some(f), Some(_)) => {
            sink.push(
                f.span.clone(),
                t.path_of("follow"),
                "write either follow (the master of that instance forwards) or active = \
                 \"ecmp\" (every director forwards), not both",
            );
            None
        }
        _ if matches!(follow, Field::Absent) && matches!(active, Field::Absent) => {
            sink.push(
                t.span.clone(),
                t.path_of("follow"),
                "missing required field \"follow\" (the [[vrrp]] instance whose master \
                 forwards) or active = \"ecmp\"",
            );
            None
        }
        _ => None,
    };
    let hash = t.parsed("hash", sink, |s| match s {
        "flow" => Ok(false),
        "source" => Ok(true),
        _ => Err(format!(
            "{s:?}: write \"flow\" (the 5-tuple: keepalived's mh, rr, wrr) or \"source\" \
             (the client address: keepalived's sh)"
        )),
    });
    let hash_seed = t.int::<u32>("hash_seed", 0..=i64::from(u32::MAX), sink);
    let quorum = t.int::<u32>("quorum", 1..=i64::from(u32::MAX), sink);
    let hysteresis = t.int::<u32>("hysteresis", 0..=i64::from(u32::MAX), sink);
    let alpha = t.boolean("alpha", sink);
    let quorum_up = t.value("quorum_up", sink, parse_command);
    let quorum_down = t.value("quorum_down", sink, parse_command);
    let sorry = t.value("sorry_server", sink, |n, p, s| {
        Table::read_inline(n, p.to_owned(), SORRY_KEYS, s, |st, s| {
            st.require("address", s);
            let addr = st.parsed("address", s, parse_addr).valid()?.value;
            let port = st.int::<u16>("port", 0..=65_535, s);
            Some((addr, port.valid().map(|a| a.value)))
        })
    });
    let check = t.value("check", sink, |n, p, s| {
        Table::read_inline(n, p.to_owned(), CHECK_KEYS, s, decode_check)
    });
    let reals = t.list("real", sink, |n, p, s| {
        Table::read_inline(n, p.clone(), REAL_KEYS, s, |rt, s| decode_real(rt, s))
    });

    let follow_span = follow.valid().map(|a| a.span.clone());
    let service = (|| {
        let vip = vip.valid()?.value;
        let port = port.valid()?.value;
        let service_check = check.or_none()?;
        let mut list = Vec::new();
        for (i, r) in reals.valid()?.value.iter().enumerate() {
            let r = &r.value;
            let path = format!("{}[{i}]", t.path_of("real"));
            if r.address.is_ipv4() != vip.is_ipv4() {
                sink.push(
                    t.span.clone(),
                    format!("{path}.address"),
                    format!(
                        "{} and the VIP {vip} are of different families: a service's real \
                         servers carry its own family",
                        r.address
                    ),
                );
            }
            list.push(RealConfig {
                address: r.address,
                port: r.port.unwrap_or(port),
                weight: r.weight,
                inhibit_on_failure: r.inhibit_on_failure,
                notify_up: r.notify_up.clone(),
                notify_down: r.notify_down.clone(),
                check: r.check.clone().or_else(|| service_check.clone()),
            });
        }
        if list.is_empty() {
            sink.push(
                t.span.clone(),
                t.path_of("real"),
                "a service needs at least one [[service.real]]",
            );
        }
        let mut seen = std::collections::HashSet::new();
        for r in &list {
            if !seen.insert((r.address, r.port)) {
                sink.push(
                    t.span.clone(),
                    t.path_of("real"),
                    format!("{}:{} is listed twice", r.address, r.port),
                );
            }
        }
        let sorry = match sorry.or_none()? {
            Some((addr, p)) => {
                if addr.is_ipv4() != vip.is_ipv4() {
                    sink.push(
                        t.span.clone(),
                        t.path_of("sorry_server"),
                        format!("{addr} is not of the VIP's family"),
                    );
                }
                Some((addr, p.unwrap_or(port)))
            }
            None => None,
        };
        Some(ServiceConfig {
            name: name.valid()?.value.clone(),
            vip,
            port,
            protocol: protocol.or(Protocol::Tcp)?,
            method: method.or(Method::DirectRouting)?,
            active: active?,
            source_hash: hash.or(false)?,
            hash_seed: hash_seed.or(0)?,
            quorum: quorum.or(1)?,
            hysteresis: hysteresis.or(0)?,
            alpha: alpha.or(false)?,
            quorum_up: quorum_up.or_none()?,
            quorum_down: quorum_down.or_none()?,
            sorry,
            reals: list,
        })
    })()
    .filter(|_| sink.len() == before);
    RawService {
        span: t.span.clone(),
        path: t.path.clone(),
        follow_span,
        service,
    }
}

trait OrNone<T> {
    fn or_none(&self) -> Option<Option<T>>;
}

impl<T: Clone> OrNone<T> for Field<T> {
    /// `Some(None)` when absent, `None` when wrong.
    fn or_none(&self) -> Option<Option<T>> {
        match self {
            Field::Absent => Some(None),
            Field::Invalid => None,
            Field::Valid(at) => Some(Some(at.value.clone())),
        }
    }
}

fn parse_addr(s: &str) -> Result<IpAddr, String> {
    s.parse::<IpAddr>()
        .map_err(|_| format!("{s:?} is not an IP address"))
}

#[derive(Clone)]
struct RawReal {
    address: IpAddr,
    port: Option<u16>,
    weight: u32,
    inhibit_on_failure: bool,
    notify_up: Option<Command>,
    notify_down: Option<Command>,
    check: Option<Check>,
}

fn decode_real(t: &Table<'_, '_>, sink: &mut Sink<'_>) -> Option<RawReal> {
    t.require("address", sink);
    let address = t.parsed("address", sink, parse_addr);
    let port = t.int::<u16>("port", 1..=65_535, sink);
    let weight = t.int::<u32>("weight", 0..=MAX_WEIGHT, sink);
    let inhibit = t.boolean("inhibit_on_failure", sink);
    let notify_up = t.value("notify_up", sink, parse_command);
    let notify_down = t.value("notify_down", sink, parse_command);
    let check = t.value("check", sink, |n, p, s| {
        Table::read_inline(n, p.to_owned(), CHECK_KEYS, s, decode_check)
    });
    Some(RawReal {
        address: address.valid()?.value,
        port: port.or_none()?,
        weight: weight.or(1)?,
        inhibit_on_failure: inhibit.or(false)?,
        notify_up: notify_up.or_none()?,
        notify_down: notify_down.or_none()?,
        check: check.or_none()?,
    })
}

fn decode_check(t: &Table<'_, '_>, sink: &mut Sink<'_>) -> Option<Check> {
    t.require("type", sink);
    let kind = t.parsed("type", sink, |s| match s {
        "tcp" | "http" | "https" | "script" => Ok(s.to_owned()),
        _ => Err(format!(
            "{s:?}: write \"tcp\" (TCP_CHECK), \"http\" (HTTP_GET), \"https\" (SSL_GET) or \
             \"script\" (MISC_CHECK)"
        )),
    });
    let interval = t.duration_in("interval", MIN_INTERVAL..=MAX_INTERVAL, sink);
    let timeout = t.duration_in("timeout", Duration::from_millis(10)..=MAX_TIMEOUT, sink);
    let retry = t.int::<u32>("retry", 0..=MAX_RETRY, sink);
    let delay = t.duration_in(
        "delay_before_retry",
        Duration::from_millis(10)..=MAX_INTERVAL,
        sink,
    );
    let port = t.int::<u16>("port", 1..=65_535, sink);
    let path = t.parsed("path", sink, |s| {
        if s.starts_with('/') && !s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Ok(s.to_owned())
        } else {
            Err(format!(
                "{s:?}: an HTTP path starts with '/' and has no spaces"
            ))
        }
    });
    let status = t.list("status", sink, |n, p, s| {
        super::read::as_int::<u16>(n, &p, 100..=599, s)
    });
    let digest = t.parsed("digest", sink, |s| {
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>();
        match bytes {
            Some(b) if b.len() == 16 && s.len() == 32 => {
                let mut d = [0u8; 16];
                d.copy_from_slice(&b);
                Ok(d)
            }
            _ => Err(format!(
                "{s:?}: an MD5 digest is 32 hexadecimal digits (genhash prints it)"
            )),
        }
    });
    let host = t.parsed("host", sink, |s| {
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic()) {
            Ok(s.to_owned())
        } else {
            Err(format!("{s:?} is not a host name"))
        }
    });
    let script = t.value("script", sink, parse_command);
    let kind = kind.valid()?.value.clone();
    let only = |key: &str, field_set: bool, sink: &mut Sink<'_>| {
        if field_set {
            sink.push(
                t.span.clone(),
                t.path_of(key),
                format!("{key} is not a key of a {kind:?} check"),
            );
        }
    };
    let http = kind == "http" || kind == "https";
    only("path", !http && path.valid().is_some(), sink);
    only("status", !http && status.valid().is_some(), sink);
    only("digest", !http && digest.valid().is_some(), sink);
    only("host", !http && host.valid().is_some(), sink);
    only("script", kind != "script" && script.valid().is_some(), sink);
    only("port", kind == "script" && port.valid().is_some(), sink);
    let check_kind = match kind.as_str() {
        "tcp" => CheckKind::Tcp {
            port: port.or_none()?,
        },
        "script" => {
            if script.valid().is_none() {
                t.require("script", sink);
                return None;
            }
            CheckKind::Script {
                argv: script.valid()?.value.argv().to_vec(),
            }
        }
        _ => CheckKind::Http {
            port: port.or_none()?,
            tls: kind == "https",
            path: path.or("/".to_owned())?,
            host: host.or_none()?,
            status: status
                .or(Vec::new())?
                .into_iter()
                .map(|a| a.value)
                .collect(),
            digest: digest.or_none()?,
        },
    };
    Some(Check {
        kind: check_kind,
        interval: interval.or(DEFAULT_INTERVAL)?,
        timeout: timeout.or(DEFAULT_TIMEOUT)?,
        retry: retry.or(DEFAULT_RETRY)?,
        delay_before_retry: delay.or(DEFAULT_DELAY_BEFORE_RETRY)?,
    })
}

/// Rules across services and instances: `follow` names an instance that carries the
/// VIP's family; no two services share a (VIP, port, protocol); the data plane's caps.
pub(crate) fn service_rules(
    services: &[RawService],
    instances: &[(String, Option<crate::vrrp::Family>)],
    sink: &mut Sink<'_>,
) {
    let mut keys = std::collections::HashMap::new();
    let mut reals = 0usize;
    let mut names = std::collections::HashSet::new();
    for raw in services {
        let Some(s) = &raw.service else { continue };
        if !names.insert(s.name.clone()) {
            sink.push(
                raw.span.clone(),
                format!("{}.name", raw.path),
                format!("another service is named {:?}", s.name),
            );
        }
        if let Active::Follow(name) = &s.active {
            match instances.iter().find(|(n, _)| n == name) {
                None => sink.push(
                    raw.follow_span.clone().unwrap_or(raw.span.clone()),
                    format!("{}.follow", raw.path),
                    format!("no [[vrrp]] instance is named {name:?}"),
                ),
                Some((_, Some(family))) if *family != crate::vrrp::Family::of(&s.vip) => sink.push(
                    raw.follow_span.clone().unwrap_or(raw.span.clone()),
                    format!("{}.follow", raw.path),
                    format!(
                        "{name:?} is an {} instance and the VIP {} is not: follow an \
                             instance of the VIP's family",
                        family.name(),
                        s.vip
                    ),
                ),
                _ => {}
            }
        }
        let key = (s.vip, s.port, s.protocol);
        if let Some(first) = keys.insert(key, raw.path.clone()) {
            sink.push(
                raw.span.clone(),
                raw.path.clone(),
                format!(
                    "{first} already balances {} port {} over {:?}",
                    s.vip, s.port, s.protocol
                ),
            );
        }
        reals += s.reals.len() + usize::from(s.sorry.is_some());
    }
    if services.len() > MAX_LB_SERVICES as usize {
        sink.push(
            services[MAX_LB_SERVICES as usize].span.clone(),
            "service",
            format!("at most {MAX_LB_SERVICES} services fit the data plane"),
        );
    }
    if reals > MAX_LB_REALS as usize {
        sink.push(
            services[0].span.clone(),
            "service",
            format!(
                "{reals} real and sorry servers over all services; the data plane holds \
                 {MAX_LB_REALS}"
            ),
        );
    }
}
