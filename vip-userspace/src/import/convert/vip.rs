//! `virtual_ipaddress` and `virtual_ipaddress_excluded` lines, read as keepalived's
//! `alloc_ipaddress()` reads them: the address, then its options from [`OPTIONS`].

use std::net::{IpAddr, Ipv4Addr};

use super::Ctx;
use super::options::{Opt, OptionLine, Words, opt, read_options, value};
use super::values::{address, usable, valid_ifname};
use crate::config::print::Value;
use crate::import::parse::Node;
use crate::import::report::Loc;

/// A VIP and the table or string it becomes.
#[derive(Debug, Clone)]
pub(crate) struct Vip {
    pub(crate) addr: IpAddr,
    pub(crate) value: Value,
    pub(crate) loc: Loc,
    /// `dev` as written, and `label`, checked once the instance's interface is known.
    pub(crate) dev: Option<String>,
    pub(crate) label: Option<String>,
}

/// One address line being read.
struct Line {
    shown: String,
    loc: Loc,
    addr: IpAddr,
    len: u8,
    v6: bool,
    dev: Option<String>,
    label: Option<String>,
    scope: Option<&'static str>,
    broadcast: Option<String>,
    noprefixroute: bool,
    preferred: Option<&'static str>,
}

impl OptionLine for Line {
    fn missing_value(&self, option: &str, ctx: &mut Ctx<'_>) {
        ctx.log
            .error(&self.loc, format!("{}: {option} needs a value", self.shown));
    }

    fn other(&mut self, word: &str, _: &mut Words<'_>, ctx: &mut Ctx<'_>) -> Option<()> {
        ctx.log.error(
            &self.loc,
            format!("{}: unknown address option {word:?}", self.shown),
        );
        None
    }
}

impl Line {
    fn left_out(&self, ctx: &mut Ctx<'_>, option: &str, why: String) {
        ctx.log
            .left_out(&self.loc, option, format!("{}: {why}", self.shown));
    }

    fn note(&self, ctx: &mut Ctx<'_>, option: &str, why: String) {
        ctx.log
            .note(&self.loc, option, format!("{}: {why}", self.shown));
    }
}

/// The options of an address line; any other word is an error.
const OPTIONS: &[Opt<Line>] = &[
    opt(&["dev"], dev),
    opt(&["scope"], scope),
    opt(&["broadcast", "brd"], broadcast),
    opt(&["label"], label),
    opt(&["peer"], peer),
    opt(&["home", "-nodad", "mngtmpaddr", "autojoin"], address_flag),
    opt(&["noprefixroute"], noprefixroute),
    opt(&["no_track"], no_track),
    opt(&["preferred_lft"], preferred_lft),
    opt(&["use_vmac"], use_vmac),
];

fn dev(l: &mut Line, option: &str, w: &mut Words<'_>, ctx: &mut Ctx<'_>) -> Option<()> {
    let param = value(l, option, w, ctx)?;
    if !valid_ifname(param) {
        ctx.log.error(
            &l.loc,
            format!("{}: dev {param:?} is not an interface name", l.shown),
        );
        return None;
    }
    l.dev = Some(param.to_owned());
    Some(())
}

fn scope(l: &mut Line, option: &str, w: &mut Words<'_>, ctx: &mut Ctx<'_>) -> Option<()> {
    let param = value(l, option, w, ctx)?;
    let named = match param {
        "global" | "universe" | "0" => Some("global"),
        "site" | "200" => Some("site"),
        "link" | "253" => Some("link"),
        "host" | "254" => Some("host"),
        _ => None,
    };
    match named {
        _ if l.v6 => l.note(
            ctx,
            "scope",
            "keepalived ignores a scope on an IPv6 address; the kernel derives it".into(),
        ),
        Some(s) => l.scope = Some(s),
        None => l.left_out(
            ctx,
            "scope",
            format!("scope {param}: vipd takes global, site, link or host"),
        ),
    }
    Some(())
}

fn broadcast(l: &mut Line, option: &str, w: &mut Words<'_>, ctx: &mut Ctx<'_>) -> Option<()> {
    let param = value(l, option, w, ctx)?;
    if l.v6 {
        l.note(
            ctx,
            option,
            "keepalived skips an IPv6 address with a broadcast address; so does the import".into(),
        );
        return None;
    }
    let len = l.len;
    match param {
        "+" | "-" if len > 30 => l.note(
            ctx,
            option,
            format!("a /{len} has no broadcast address; keepalived ignores it"),
        ),
        "+" => l.broadcast = Some("+".to_owned()),
        "-" => {
            let IpAddr::V4(a) = l.addr else {
                return None;
            };
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            l.broadcast = Some(Ipv4Addr::from(u32::from(a) & mask).to_string());
        }
        other => match other.parse::<Ipv4Addr>() {
            Ok(b) => l.broadcast = Some(b.to_string()),
            Err(_) => {
                ctx.log.error(
                    &l.loc,
                    format!(
                        "{}: broadcast {other:?} is not an IPv4 address, + or -",
                        l.shown
                    ),
                );
                return None;
            }
        },
    }
    Some(())
}

fn label(l: &mut Line, option: &str, w: &mut Words<'_>, ctx: &mut Ctx<'_>) -> Option<()> {
    let param = value(l, option, w, ctx)?;
    if l.v6 {
        l.note(
            ctx,
            "label",
            "keepalived ignores a label on an IPv6 address".into(),
        );
    } else if param.len() >= 16 {
        l.note(
            ctx,
            "label",
            format!(
                "label {param} is longer than 15 bytes, so keepalived skips the address; so does the import"
            ),
        );
        return None;
    } else {
        l.label = Some(param.to_owned());
    }
    Some(())
}

fn peer(l: &mut Line, option: &str, w: &mut Words<'_>, ctx: &mut Ctx<'_>) -> Option<()> {
    value(l, option, w, ctx)?;
    l.left_out(
        ctx,
        "peer",
        "vipd adds no point-to-point peer address".into(),
    );
    Some(())
}

fn address_flag(l: &mut Line, option: &str, _: &mut Words<'_>, ctx: &mut Ctx<'_>) -> Option<()> {
    l.left_out(
        ctx,
        option,
        "no vipd equivalent for this address flag".into(),
    );
    Some(())
}

fn noprefixroute(l: &mut Line, _: &str, _: &mut Words<'_>, _: &mut Ctx<'_>) -> Option<()> {
    l.noprefixroute = true;
    Some(())
}

fn no_track(l: &mut Line, _: &str, _: &mut Words<'_>, ctx: &mut Ctx<'_>) -> Option<()> {
    l.note(
        ctx,
        "no_track",
        "vipd does not watch its VIPs for deletion by hand, as with no_track".into(),
    );
    Some(())
}

fn preferred_lft(l: &mut Line, option: &str, w: &mut Words<'_>, ctx: &mut Ctx<'_>) -> Option<()> {
    let param = value(l, option, w, ctx)?;
    if !l.v6 {
        l.left_out(
            ctx,
            "preferred_lft",
            "vipd sets preferred_lft on IPv6 addresses only".into(),
        );
    } else if param == "forever" || param == "0" {
        l.preferred = Some(if param == "0" { "0" } else { "forever" });
    } else {
        l.left_out(
            ctx,
            "preferred_lft",
            format!("preferred_lft {param}: vipd takes 0 or forever; written as forever"),
        );
        l.preferred = Some("forever");
    }
    Some(())
}

fn use_vmac(l: &mut Line, _: &str, _: &mut Words<'_>, ctx: &mut Ctx<'_>) -> Option<()> {
    l.left_out(
        ctx,
        "use_vmac",
        "vipd creates no macvlan interface for an address".into(),
    );
    Some(())
}

/// One `virtual_ipaddress` line; `None` when it is an error or keepalived skips it.
pub(crate) fn vip(node: &Node, ctx: &mut Ctx<'_>) -> Option<Vip> {
    let loc = node.loc.clone();
    let (addr, len, _) = match address(&node.keyword) {
        Ok(parsed) => parsed,
        Err(message) => {
            ctx.log.error(&loc, format!("virtual address: {message}"));
            return None;
        }
    };
    if let Err(why) = usable(&addr) {
        ctx.log
            .error(&loc, format!("virtual address: {} {why}", node.keyword));
        return None;
    }
    if len == 0 {
        ctx.log.error(
            &loc,
            format!(
                "virtual address: {}: a /0 prefix would claim every address",
                node.keyword
            ),
        );
        return None;
    }
    let mut l = Line {
        shown: node.keyword.clone(),
        loc,
        addr,
        len,
        v6: addr.is_ipv6(),
        dev: None,
        label: None,
        scope: None,
        broadcast: None,
        noprefixroute: false,
        preferred: None,
    };
    let args: Vec<&str> = node.args.iter().map(|w| w.text.as_str()).collect();
    read_options(OPTIONS, &mut l, &args, ctx)?;
    // keepalived deprecates IPv6 /128 VIPs unless told otherwise.
    if l.v6 && l.preferred.is_none() && len == 128 {
        l.preferred = Some("0");
    }
    let mut pairs: Vec<(String, Value)> = Vec::new();
    if let Some(d) = &l.dev {
        pairs.push(("dev".into(), Value::str(d)));
    }
    if let Some(label) = &l.label {
        pairs.push(("label".into(), Value::str(label)));
    }
    if let Some(s) = l.scope {
        pairs.push(("scope".into(), Value::str(s)));
    }
    if let Some(b) = &l.broadcast {
        pairs.push(("broadcast".into(), Value::str(b)));
    }
    if l.noprefixroute {
        pairs.push(("noprefixroute".into(), Value::Bool(true)));
    }
    match l.preferred {
        Some("0") => pairs.push(("preferred_lft".into(), Value::Int(0))),
        Some(p) => pairs.push(("preferred_lft".into(), Value::str(p))),
        None => {}
    }
    let value = if pairs.is_empty() {
        Value::str(&l.shown)
    } else {
        pairs.insert(0, ("address".into(), Value::str(&l.shown)));
        Value::Inline(pairs)
    };
    Some(Vip {
        addr,
        value,
        loc: l.loc,
        dev: l.dev,
        label: l.label,
    })
}
