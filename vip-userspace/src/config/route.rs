//! Elements of `virtual_routes` and `virtual_rules`: inline tables with the options `ip
//! route` and `ip rule` take. Everything is checked within the element; the instance only
//! supplies defaults (its family for `"default"` and address-less rules, its interface as
//! a route's `dev`).

use std::net::IpAddr;

use ipnet::IpNet;

use super::host::Host;
use super::locate::Sink;
use super::model::{
    Fwmark, RTPROT_BOOT, RTPROT_KERNEL, RTPROT_STATIC, RTPROT_VIPD, RouteScope, RouteType,
    RuleAction, TABLE_LOCAL, TABLE_MAIN, VirtualRoute, VirtualRule,
};
use super::read::{At, Field, Node, Table, as_int};
use super::values::{parse_interface, parse_prefix, parse_unicast_addr};
use crate::vrrp::Family;

pub(crate) const ROUTE_KEYS: &[&str] = &[
    "to", "via", "dev", "src", "table", "metric", "protocol", "type", "scope", "onlink",
];

pub(crate) const RULE_KEYS: &[&str] = &[
    "from", "to", "iif", "oif", "fwmark", "table", "priority", "action",
];

const MAX_RULE_PRIORITY: i64 = 32765;

/// A route as written: `to` still `None` for `"default"`, `dev` not yet defaulted.
#[derive(Debug, Clone)]
pub(crate) struct RawRoute {
    pub(crate) to: Option<IpNet>,
    pub(crate) via: Option<IpAddr>,
    pub(crate) dev: Option<String>,
    pub(crate) src: Option<IpAddr>,
    pub(crate) table: u32,
    pub(crate) metric: Option<u32>,
    pub(crate) protocol: u8,
    pub(crate) kind: RouteType,
    pub(crate) scope: Option<RouteScope>,
    pub(crate) onlink: bool,
}

impl RawRoute {
    /// The family its own addresses give it, if they give one.
    fn own_family(&self) -> Option<Family> {
        self.to
            .map(|n| n.addr())
            .or(self.via)
            .or(self.src)
            .map(|a| Family::of(&a))
    }

    pub(crate) fn build(&self, family: Family, interface: &str) -> VirtualRoute {
        let family = self.own_family().unwrap_or(family);
        let to = self.to.unwrap_or(match family {
            Family::Ipv4 => IpNet::V4(Default::default()),
            Family::Ipv6 => IpNet::V6(Default::default()),
        });
        let link_local_via = matches!(self.via, Some(IpAddr::V6(v)) if v.is_unicast_link_local());
        let dev = match &self.dev {
            Some(dev) => Some(dev.clone()),
            None if self.kind == RouteType::Unicast && (self.via.is_none() || link_local_via) => {
                Some(interface.to_owned())
            }
            None => None,
        };
        VirtualRoute {
            to,
            via: self.via,
            dev,
            src: self.src,
            table: self.table,
            metric: self.metric,
            protocol: self.protocol,
            kind: self.kind,
            scope: self.scope,
            onlink: self.onlink,
        }
    }
}

/// A routing table: 1..=2^32-1, or "main" / "local".
fn table_of(node: &Node<'_>, path: &str, sink: &mut Sink<'_>) -> Option<u32> {
    match node.get_ref().as_str() {
        Some("main") => Some(TABLE_MAIN),
        Some("local") => Some(TABLE_LOCAL),
        Some(other) => {
            sink.push(
                node.span(),
                path,
                format!(
                    "{other:?} is not a table: write a number 1..={}, \"main\" ({TABLE_MAIN}) or \
                     \"local\" ({TABLE_LOCAL})",
                    u32::MAX
                ),
            );
            None
        }
        None => as_int(node, path, 1..=i64::from(u32::MAX), sink),
    }
}

/// Keyword values of an option, for `parsed`.
fn keyword<T: Copy>(text: &str, what: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<String> = choices.iter().map(|(n, _)| format!("{n:?}")).collect();
            format!("{text:?} is not {what}: write one of {}", names.join(", "))
        })
}

/// Reports an address whose family differs from `family`'s.
fn same_family(
    t: &Table<'_, '_>,
    key: &str,
    field: &Field<IpAddr>,
    family: Option<(Family, &str)>,
    sink: &mut Sink<'_>,
) {
    if let (Some(at), Some((family, from))) = (field.valid(), family) {
        let fam = Family::of(&at.value);
        if fam != family {
            sink.push(
                at.span.clone(),
                t.path_of(key),
                format!(
                    "{} is {} but {from} is {}: one route or rule has one address family",
                    at.value,
                    fam.name(),
                    family.name()
                ),
            );
        }
    }
}

pub(crate) fn route(
    node: &Node<'_>,
    path: String,
    host: &dyn Host,
    sink: &mut Sink<'_>,
) -> Option<RawRoute> {
    Table::read_inline(node, path, ROUTE_KEYS, sink, |t, s| {
        t.require("to", s);
        let to = t.parsed("to", s, |text| {
            if text == "default" {
                Ok(None)
            } else {
                parse_prefix(text).map(Some)
            }
        });
        let via = t.parsed("via", s, parse_unicast_addr);
        let dev = t.parsed("dev", s, |d| {
            parse_interface(d, &|n| host.interface_exists(n))
        });
        let src = t.parsed("src", s, parse_unicast_addr);
        let table = t.value("table", s, table_of);
        let metric = t.int("metric", 0..=i64::from(u32::MAX), s);
        let protocol = t.value("protocol", s, |n, p, s| match n.get_ref().as_str() {
            Some(name) => keyword(
                name,
                "a route protocol",
                &[
                    ("kernel", RTPROT_KERNEL),
                    ("boot", RTPROT_BOOT),
                    ("static", RTPROT_STATIC),
                    ("vipd", RTPROT_VIPD),
                ],
            )
            .map_err(|m| s.push(n.span(), p, format!("{m}, or a number 0..=255")))
            .ok(),
            None => as_int(n, p, 0..=255, s),
        });
        let kind = t.parsed("type", s, |k| {
            keyword(
                k,
                "a route type",
                &[
                    ("unicast", RouteType::Unicast),
                    ("blackhole", RouteType::Blackhole),
                    ("unreachable", RouteType::Unreachable),
                    ("prohibit", RouteType::Prohibit),
                ],
            )
        });
        let scope = t.parsed("scope", s, |k| {
            keyword(
                k,
                "a route scope",
                &[
                    ("global", RouteScope::Global),
                    ("link", RouteScope::Link),
                    ("host", RouteScope::Host),
                ],
            )
        });
        let onlink = t.boolean("onlink", s);

        // One family: the first address written decides, the others must agree.
        let to_family = to
            .valid()
            .and_then(|at| at.value)
            .map(|n| (Family::of(&n.addr()), "to"));
        let via_family = via.valid().map(|at| (Family::of(&at.value), "via"));
        same_family(t, "via", &via, to_family, s);
        same_family(t, "src", &src, to_family.or(via_family), s);

        let kind_value = kind.or(RouteType::Unicast)?;
        if kind_value != RouteType::Unicast {
            for (key, span) in [
                ("via", via.valid().map(|at| at.span.clone())),
                ("dev", dev.valid().map(|at| at.span.clone())),
            ] {
                if let Some(span) = span {
                    s.push(
                        span,
                        t.path_of(key),
                        format!(
                            "a {} route goes nowhere, so it takes no {key}; remove it",
                            kind_value.as_str()
                        ),
                    );
                }
            }
        }
        if let Some(at) = onlink.valid().filter(|at| at.value)
            && via.valid().is_none()
        {
            s.push(
                at.span.clone(),
                t.path_of("onlink"),
                "onlink says the next hop is on the link: it needs via",
            );
        }
        Some(RawRoute {
            to: to.valid()?.value,
            via: optional(&via)?,
            dev: optional(&dev)?,
            src: optional(&src)?,
            table: table.or(TABLE_MAIN)?,
            metric: optional(&metric)?,
            protocol: protocol.or(RTPROT_STATIC)?,
            kind: kind_value,
            scope: optional(&scope)?,
            onlink: onlink.or(false)?,
        })
    })
}

/// A rule as written; its family is settled when the instance's is known.
#[derive(Debug, Clone)]
pub(crate) struct RawRule {
    pub(crate) from: Option<IpNet>,
    pub(crate) to: Option<IpNet>,
    pub(crate) iif: Option<String>,
    pub(crate) oif: Option<String>,
    pub(crate) fwmark: Option<Fwmark>,
    pub(crate) table: Option<u32>,
    pub(crate) priority: Option<u32>,
    pub(crate) action: RuleAction,
}

impl RawRule {
    pub(crate) fn build(&self, family: Family) -> VirtualRule {
        let family = self
            .from
            .or(self.to)
            .map_or(family, |n| Family::of(&n.addr()));
        VirtualRule {
            family,
            from: self.from,
            to: self.to,
            iif: self.iif.clone(),
            oif: self.oif.clone(),
            fwmark: self.fwmark,
            table: self.table,
            priority: self.priority,
            action: self.action,
        }
    }
}

/// `N` or `N/MASK`, each decimal or `0x` hex, as `ip rule` writes them.
fn parse_fwmark(text: &str) -> Result<Fwmark, String> {
    let number = |part: &str| {
        let part = part.trim();
        match part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => part.parse::<u32>().ok(),
        }
    };
    let (value, mask) = match text.split_once('/') {
        Some((v, m)) => (number(v), number(m)),
        None => (number(text), Some(u32::MAX)),
    };
    match (value, mask) {
        (Some(value), Some(mask)) => Ok(Fwmark { value, mask }),
        _ => Err(format!(
            "{text:?} is not a firewall mark: write N or \"N/MASK\", each 0..={} or 0x hex",
            u32::MAX
        )),
    }
}

pub(crate) fn rule(
    node: &Node<'_>,
    path: String,
    host: &dyn Host,
    sink: &mut Sink<'_>,
) -> Option<RawRule> {
    Table::read_inline(node, path, RULE_KEYS, sink, |t, s| {
        let from = t.parsed("from", s, parse_prefix);
        let to = t.parsed("to", s, parse_prefix);
        let iif = t.parsed("iif", s, |d| {
            parse_interface(d, &|n| host.interface_exists(n))
        });
        let oif = t.parsed("oif", s, |d| {
            parse_interface(d, &|n| host.interface_exists(n))
        });
        let fwmark = t.value("fwmark", s, |n, p, s| match n.get_ref().as_str() {
            Some(text) => parse_fwmark(text).map_err(|m| s.push(n.span(), p, m)).ok(),
            None => as_int(n, p, 0..=i64::from(u32::MAX), s).map(|value| Fwmark {
                value,
                mask: u32::MAX,
            }),
        });
        let table = t.value("table", s, table_of);
        let priority = t.parsed_int("priority", s, |v| {
            u32::try_from(v)
                .ok()
                .filter(|v| (1..=MAX_RULE_PRIORITY).contains(&i64::from(*v)))
                .ok_or_else(|| {
                    format!(
                        "{v} is out of range 1..={MAX_RULE_PRIORITY} (0, 32766 and 32767 hold \
                         the kernel's own rules)"
                    )
                })
        });
        let action = t.parsed("action", s, |a| {
            keyword(
                a,
                "a rule action",
                &[
                    ("table", RuleAction::Table),
                    ("blackhole", RuleAction::Blackhole),
                    ("unreachable", RuleAction::Unreachable),
                    ("prohibit", RuleAction::Prohibit),
                ],
            )
        });

        if matches!(from, Field::Absent)
            && matches!(to, Field::Absent)
            && matches!(iif, Field::Absent)
            && matches!(oif, Field::Absent)
            && matches!(fwmark, Field::Absent)
        {
            s.push(
                t.span.clone(),
                t.path.clone(),
                "a rule needs at least one of from, to, iif, oif, fwmark: one that matches \
                 everything would take all traffic",
            );
        }
        if let (Some(f), Some(at)) = (from.valid(), to.valid()) {
            let (ff, tf) = (Family::of(&f.value.addr()), Family::of(&at.value.addr()));
            if ff != tf {
                s.push(
                    at.span.clone(),
                    t.path_of("to"),
                    format!(
                        "{} is {} but from is {}: one route or rule has one address family",
                        at.value,
                        tf.name(),
                        ff.name()
                    ),
                );
            }
        }
        let action_value = action.or(RuleAction::Table)?;
        match (action_value, &table) {
            (RuleAction::Table, Field::Absent) => s.push(
                t.span.clone(),
                t.path_of("table"),
                "missing required field \"table\" (the table to look up; or set action)",
            ),
            (RuleAction::Table, _) | (_, Field::Absent) | (_, Field::Invalid) => {}
            (other, Field::Valid(at)) => s.push(
                at.span.clone(),
                t.path_of("table"),
                format!("a {} rule looks up no table; remove table", other.as_str()),
            ),
        }
        Some(RawRule {
            from: optional(&from)?,
            to: optional(&to)?,
            iif: optional(&iif)?,
            oif: optional(&oif)?,
            fwmark: optional(&fwmark)?,
            table: optional(&table)?,
            priority: optional(&priority)?,
            action: action_value,
        })
    })
}

/// `Some(None)` when absent, `Some(Some(v))` when valid, `None` when invalid.
fn optional<T: Clone>(field: &Field<T>) -> Option<Option<T>> {
    match field {
        Field::Absent => Some(None),
        Field::Invalid => None,
        Field::Valid(At { value, .. }) => Some(Some(value.clone())),
    }
}
