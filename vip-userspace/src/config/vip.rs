//! Elements of `vips` and `vips_excluded`: `"ADDR/LEN"`, or a table with the options
//! `ip addr add` takes. Rules that need the instance (the label against the instance's
//! interface, families, duplicates) live in `validate`.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use super::host::Host;
use super::locate::{Sink, Span};
use super::model::{AddrScope, Broadcast, PreferredLifetime, Vip};
use super::read::{At, Field, Node, Table, as_int, parse_str};
use super::values::{parse_interface, parse_vip};

pub(crate) const VIP_KEYS: &[&str] = &[
    "address",
    "dev",
    "label",
    "scope",
    "broadcast",
    "noprefixroute",
    "preferred_lft",
];

// IFNAMSIZ less the terminating NUL, as for device names.
const MAX_LABEL_LEN: usize = 15;

/// A VIP as written: `dev` not yet defaulted, `scope` not yet filled.
#[derive(Debug, Clone)]
pub(crate) struct RawVip {
    pub(crate) net: IpNet,
    /// Where the address itself is written.
    pub(crate) addr_span: Span,
    /// Written as a table, so the address's path ends in `.address`.
    pub(crate) table: bool,
    pub(crate) dev: Option<At<String>>,
    pub(crate) label: Option<At<String>>,
    pub(crate) scope: Option<AddrScope>,
    pub(crate) broadcast: Option<Broadcast>,
    pub(crate) noprefixroute: bool,
    pub(crate) preferred_lft: PreferredLifetime,
}

impl RawVip {
    /// The path problems about the address use: `vips[0]` or `vips[0].address`.
    pub(crate) fn addr_path(&self, element: &str) -> String {
        if self.table {
            format!("{element}.address")
        } else {
            element.to_owned()
        }
    }

    pub(crate) fn build(&self, interface: &str) -> Vip {
        let dev = self.dev.as_ref().map_or(interface, |d| d.value.as_str());
        Vip {
            net: self.net,
            dev: dev.to_owned(),
            label: self.label.as_ref().map(|l| l.value.clone()),
            scope: self
                .scope
                .unwrap_or_else(|| AddrScope::natural(&self.net.addr())),
            broadcast: self.broadcast,
            noprefixroute: self.noprefixroute,
            preferred_lft: self.preferred_lft,
        }
    }
}

/// One element of `vips` / `vips_excluded`; `None` when anything in it is wrong.
pub(crate) fn vip(
    node: &Node<'_>,
    path: String,
    host: &dyn Host,
    sink: &mut Sink<'_>,
) -> Option<RawVip> {
    if node.get_ref().is_str() {
        let net = parse_str(node, &path, sink, parse_vip)?;
        return Some(RawVip {
            net,
            addr_span: node.span(),
            table: false,
            dev: None,
            label: None,
            scope: None,
            broadcast: None,
            noprefixroute: false,
            preferred_lft: PreferredLifetime::Forever,
        });
    }
    if !node.get_ref().is_table() {
        sink.push(
            node.span(),
            &path,
            format!(
                "expected \"ADDR/LEN\" or a table {{ address = \"ADDR/LEN\", ... }}, found {}",
                node.get_ref().type_str()
            ),
        );
        return None;
    }
    let before = sink.len();
    let t = Table::of(node, path, sink)?;
    t.reject_unknown(VIP_KEYS, sink);
    t.require("address", sink);
    let address = t.parsed("address", sink, parse_vip);
    let dev = t.parsed("dev", sink, |d| {
        parse_interface(d, &|n| host.interface_exists(n))
    });
    let label = t.parsed("label", sink, parse_label);
    let scope = t.parsed("scope", sink, |s| match s {
        "global" => Ok(AddrScope::Global),
        "site" => Ok(AddrScope::Site),
        "link" => Ok(AddrScope::Link),
        "host" => Ok(AddrScope::Host),
        _ => Err(format!(
            "{s:?} is not a scope: write \"global\", \"site\", \"link\" or \"host\""
        )),
    });
    let broadcast = t.parsed("broadcast", sink, |b| {
        if b == "+" {
            return Ok(Broadcast::Subnet);
        }
        b.parse::<Ipv4Addr>().map(Broadcast::Addr).map_err(|_| {
            format!("{b:?} is not an IPv4 address or \"+\" (the subnet's broadcast address)")
        })
    });
    let noprefixroute = t.boolean("noprefixroute", sink);
    let preferred_lft = t.value("preferred_lft", sink, |n, p, s| {
        if n.get_ref().as_str() == Some("forever") {
            return Some(PreferredLifetime::Forever);
        }
        if n.get_ref().is_integer() {
            return as_int::<i64>(n, p, 0..=0, s).map(|_| PreferredLifetime::Zero);
        }
        s.push(
            n.span(),
            p,
            "expected 0 (never chosen as a source address) or \"forever\" (the default)",
        );
        None
    });

    if let Some(net) = address.valid().map(|at| at.value) {
        family_rules(&t, net, &label, &scope, &broadcast, &preferred_lft, sink);
    }
    if sink.len() != before {
        return None;
    }
    let address = address.valid()?;
    Some(RawVip {
        net: address.value,
        addr_span: address.span.clone(),
        table: true,
        dev: dev.valid().cloned(),
        label: label.valid().cloned(),
        scope: scope.valid().map(|at| at.value),
        broadcast: broadcast.valid().map(|at| at.value),
        noprefixroute: noprefixroute.or(false)?,
        preferred_lft: preferred_lft.or(PreferredLifetime::Forever)?,
    })
}

/// Options that only one family has, and the IPv6 scope the kernel derives itself.
fn family_rules(
    t: &Table<'_, '_>,
    net: IpNet,
    label: &Field<String>,
    scope: &Field<AddrScope>,
    broadcast: &Field<Broadcast>,
    preferred_lft: &Field<PreferredLifetime>,
    sink: &mut Sink<'_>,
) {
    let addr = net.addr();
    match addr {
        IpAddr::V6(_) => {
            if let Some(at) = label.valid() {
                sink.push(
                    at.span.clone(),
                    t.path_of("label"),
                    "labels are IPv4 only (the kernel keeps no label on IPv6 addresses)",
                );
            }
            if let Some(at) = broadcast.valid() {
                sink.push(
                    at.span.clone(),
                    t.path_of("broadcast"),
                    "IPv6 has no broadcast address",
                );
            }
            let natural = AddrScope::natural(&addr);
            if let Some(at) = scope.valid().filter(|at| at.value != natural) {
                sink.push(
                    at.span.clone(),
                    t.path_of("scope"),
                    format!(
                        "the kernel gives an IPv6 address the scope its prefix implies ({} for \
                         {addr}); remove scope",
                        natural.as_str()
                    ),
                );
            }
        }
        IpAddr::V4(_) => {
            if let Some(at) = preferred_lft
                .valid()
                .filter(|at| at.value == PreferredLifetime::Zero)
            {
                sink.push(
                    at.span.clone(),
                    t.path_of("preferred_lft"),
                    "preferred_lft = 0 is IPv6 only (IPv4 addresses are never deprecated)",
                );
            }
            if let Some(at) = broadcast
                .valid()
                .filter(|at| at.value == Broadcast::Subnet && net.prefix_len() >= 31)
            {
                sink.push(
                    at.span.clone(),
                    t.path_of("broadcast"),
                    format!("a /{} has no broadcast address", net.prefix_len()),
                );
            }
        }
    }
}

/// Linux's rules for an IPv4 address label, short of naming the device (checked once the
/// device is known): at most 15 bytes, no spaces.
fn parse_label(text: &str) -> Result<String, String> {
    let bad = |c: char| c.is_whitespace() || c.is_control() || c == '/';
    if text.is_empty() || text.len() > MAX_LABEL_LEN || text.chars().any(bad) {
        return Err(format!(
            "{text:?} is not a valid label (1 to {MAX_LABEL_LEN} bytes, no '/' or spaces)"
        ));
    }
    Ok(text.to_owned())
}

/// Linux's rule tying a label to its device: the device name itself, or `DEV:anything`.
pub(crate) fn label_fits(label: &str, dev: &str) -> bool {
    label == dev
        || label
            .strip_prefix(dev)
            .is_some_and(|rest| rest.starts_with(':'))
}
