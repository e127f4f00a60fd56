//! `virtual_ipaddress`, `virtual_ipaddress_excluded`, `virtual_routes` and
//! `virtual_rules` lines, read as keepalived's `alloc_ipaddress()`, `alloc_route()` and
//! `alloc_rule()` read them.

use std::net::{IpAddr, Ipv4Addr};

use super::Ctx;
use super::values::valid_ifname;
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

/// `ADDR[/LEN]` as keepalived reads it: the family from a ':' in it, a missing length
/// meaning a host prefix.
fn address(text: &str) -> Result<(IpAddr, u8, bool), String> {
    let (addr_text, len_text) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len_text {
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("{text:?}: the prefix length must be 0..={max}"))?,
        None => max,
    };
    Ok((addr, len, len_text.is_some()))
}

fn usable(addr: &IpAddr) -> Result<(), &'static str> {
    if addr.is_unspecified() {
        Err("is the unspecified address")
    } else if addr.is_multicast() {
        Err("is a multicast address")
    } else if addr.is_loopback() {
        Err("is a loopback address")
    } else {
        Ok(())
    }
}

/// One `virtual_ipaddress` line; `None` when it is an error or keepalived skips it.
pub(crate) fn vip(line: &Node, ctx: &mut Ctx<'_>) -> Option<Vip> {
    let loc = line.loc.clone();
    let (addr, len, _) = match address(&line.keyword) {
        Ok(parsed) => parsed,
        Err(message) => {
            ctx.log.error(&loc, format!("virtual address: {message}"));
            return None;
        }
    };
    if let Err(why) = usable(&addr) {
        ctx.log
            .error(&loc, format!("virtual address: {} {why}", line.keyword));
        return None;
    }
    if len == 0 {
        ctx.log.error(
            &loc,
            format!(
                "virtual address: {}: a /0 prefix would claim every address",
                line.keyword
            ),
        );
        return None;
    }
    let v6 = addr.is_ipv6();
    let mut pairs: Vec<(String, Value)> = Vec::new();
    let mut dev = None;
    let mut label = None;
    let mut scope = None;
    let mut broadcast = None;
    let mut noprefixroute = false;
    let mut preferred: Option<&str> = None;
    let args: Vec<&str> = line.args.iter().map(|w| w.text.as_str()).collect();
    let mut i = 0;
    let shown = &line.keyword;
    while i < args.len() {
        let option = args[i];
        let param = args.get(i + 1).copied();
        let takes = matches!(
            option,
            "dev" | "scope" | "broadcast" | "brd" | "label" | "peer" | "preferred_lft"
        );
        if takes && param.is_none() {
            ctx.log
                .error(&loc, format!("{shown}: {option} needs a value"));
            return None;
        }
        let param = param.unwrap_or_default();
        match option {
            "dev" => {
                if !valid_ifname(param) {
                    ctx.log.error(
                        &loc,
                        format!("{shown}: dev {param:?} is not an interface name"),
                    );
                    return None;
                }
                dev = Some(param.to_owned());
            }
            "scope" => {
                let named = match param {
                    "global" | "universe" | "0" => Some("global"),
                    "site" | "200" => Some("site"),
                    "link" | "253" => Some("link"),
                    "host" | "254" => Some("host"),
                    _ => None,
                };
                match named {
                    _ if v6 => ctx.log.note(
                        &loc,
                        "scope",
                        format!("{shown}: keepalived ignores a scope on an IPv6 address; the kernel derives it"),
                    ),
                    Some(s) => scope = Some(s),
                    None => ctx.log.left_out(
                        &loc,
                        "scope",
                        format!("{shown}: scope {param}: vipd takes global, site, link or host"),
                    ),
                }
            }
            "broadcast" | "brd" => {
                if v6 {
                    ctx.log.note(
                        &loc,
                        option,
                        format!("{shown}: keepalived skips an IPv6 address with a broadcast address; so does the import"),
                    );
                    return None;
                }
                match param {
                    "+" | "-" if len > 30 => ctx.log.note(
                        &loc,
                        option,
                        format!(
                            "{shown}: a /{len} has no broadcast address; keepalived ignores it"
                        ),
                    ),
                    "+" => broadcast = Some("+".to_owned()),
                    "-" => {
                        let IpAddr::V4(a) = addr else { unreachable!() };
                        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                        broadcast = Some(Ipv4Addr::from(u32::from(a) & mask).to_string());
                    }
                    other => {
                        match other.parse::<Ipv4Addr>() {
                            Ok(b) => broadcast = Some(b.to_string()),
                            Err(_) => {
                                ctx.log.error(
                                &loc,
                                format!("{shown}: broadcast {other:?} is not an IPv4 address, + or -"),
                            );
                                return None;
                            }
                        }
                    }
                }
            }
            "label" => {
                if v6 {
                    ctx.log.note(
                        &loc,
                        "label",
                        format!("{shown}: keepalived ignores a label on an IPv6 address"),
                    );
                } else if param.len() >= 16 {
                    ctx.log.note(
                        &loc,
                        "label",
                        format!("{shown}: label {param} is longer than 15 bytes, so keepalived skips the address; so does the import"),
                    );
                    return None;
                } else {
                    label = Some(param.to_owned());
                }
            }
            "peer" => ctx.log.left_out(
                &loc,
                "peer",
                format!("{shown}: vipd adds no point-to-point peer address"),
            ),
            "home" | "-nodad" | "mngtmpaddr" | "autojoin" => ctx.log.left_out(
                &loc,
                option,
                format!("{shown}: no vipd equivalent for this address flag"),
            ),
            "noprefixroute" => noprefixroute = true,
            "no_track" => ctx.log.note(
                &loc,
                "no_track",
                format!(
                    "{shown}: vipd does not watch its VIPs for deletion by hand, as with no_track"
                ),
            ),
            "preferred_lft" => {
                if !v6 {
                    ctx.log.left_out(
                        &loc,
                        "preferred_lft",
                        format!("{shown}: vipd sets preferred_lft on IPv6 addresses only"),
                    );
                } else if param == "forever" || param == "0" {
                    preferred = Some(if param == "0" { "0" } else { "forever" });
                } else {
                    ctx.log.left_out(
                        &loc,
                        "preferred_lft",
                        format!("{shown}: preferred_lft {param}: vipd takes 0 or forever; written as forever"),
                    );
                    preferred = Some("forever");
                }
            }
            "use_vmac" => ctx.log.left_out(
                &loc,
                "use_vmac",
                format!("{shown}: vipd creates no macvlan interface for an address"),
            ),
            other => {
                ctx.log
                    .error(&loc, format!("{shown}: unknown address option {other:?}"));
                return None;
            }
        }
        i += if takes { 2 } else { 1 };
    }
    // keepalived deprecates IPv6 /128 VIPs unless told otherwise.
    if v6 && preferred.is_none() && len == 128 {
        preferred = Some("0");
    }
    if let Some(d) = &dev {
        pairs.push(("dev".into(), Value::str(d)));
    }
    if let Some(l) = &label {
        pairs.push(("label".into(), Value::str(l)));
    }
    if let Some(s) = scope {
        pairs.push(("scope".into(), Value::str(s)));
    }
    if let Some(b) = broadcast {
        pairs.push(("broadcast".into(), Value::str(b)));
    }
    if noprefixroute {
        pairs.push(("noprefixroute".into(), Value::Bool(true)));
    }
    match preferred {
        Some("0") => pairs.push(("preferred_lft".into(), Value::Int(0))),
        Some(p) => pairs.push(("preferred_lft".into(), Value::str(p))),
        None => {}
    }
    let value = if pairs.is_empty() {
        Value::str(shown)
    } else {
        pairs.insert(0, ("address".into(), Value::str(shown)));
        Value::Inline(pairs)
    };
    Some(Vip {
        addr,
        value,
        loc,
        dev,
        label,
    })
}

/// Routing table names iproute2 ships.
fn table(text: &str) -> Option<Value> {
    match text {
        "main" => Some(Value::str("main")),
        "local" => Some(Value::str("local")),
        "default" => Some(Value::Int(253)),
        other => {
            let n: u32 = other.parse().ok()?;
            (n > 0).then_some(Value::Int(i64::from(n)))
        }
    }
}

/// `rt_protos` names iproute2 ships.
fn protocol(text: &str) -> Option<Value> {
    let number = match text {
        "kernel" | "boot" | "static" => return Some(Value::str(text)),
        "redirect" => 1,
        "gated" => 8,
        "ra" => 9,
        "mrt" => 10,
        "zebra" => 11,
        "bird" => 12,
        "dnrouted" => 13,
        "xorp" => 14,
        "ntk" => 15,
        "dhcp" => 16,
        "keepalived" => RTPROT_KEEPALIVED,
        "babel" => 42,
        "openr" => 99,
        "bgp" => 186,
        "isis" => 187,
        "ospf" => 188,
        "rip" => 189,
        "eigrp" => 192,
        other => other.parse::<u8>().ok()?.into(),
    };
    Some(Value::Int(number))
}

/// keepalived marks every route and rule it tracks with its own protocol number.
const RTPROT_KEEPALIVED: i64 = 18;

fn prefix(text: &str, family: Option<bool>) -> Result<(Option<String>, bool), String> {
    // `default`, `any`, `all`: everything, in the route's family.
    if matches!(text, "default" | "any" | "all") {
        return Ok((None, family.unwrap_or(false)));
    }
    if text == "default6" {
        return Ok((None, true));
    }
    let (addr, len, _) = address(text)?;
    let v6 = addr.is_ipv6();
    let net: ipnet::IpNet = ipnet::IpNet::new(addr, len).map_err(|e| e.to_string())?;
    if net.trunc() != net {
        return Err(format!(
            "{text:?} has host bits set; write the prefix {}",
            net.trunc()
        ));
    }
    Ok((Some(text.to_owned()), v6))
}

/// Route options vipd has no key for that only tune the route (the option, with its
/// value, is left out; the route stays).
const ROUTE_TUNING: &[&str] = &[
    "mtu",
    "hoplimit",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "ssthresh",
    "rto_min",
    "initcwnd",
    "initrwnd",
    "congctl",
    "features",
    "quickack",
    "pref",
    "ttl-propagate",
    "fastopen_no_cookie",
    "expires",
    "realms",
];

/// One `virtual_routes` line; `None` when it is left out or an error.
pub(crate) fn route(line: &Node, ctx: &mut Ctx<'_>) -> Option<Value> {
    let loc = line.loc.clone();
    let words: Vec<&str> = std::iter::once(line.keyword.as_str())
        .chain(line.args.iter().map(|w| w.text.as_str()))
        .collect();
    let shown = &line.raw;
    let mut family: Option<bool> = None; // Some(true): IPv6
    let mut to: Option<Option<String>> = None;
    let mut kind: Option<&str> = None;
    let mut pairs: Vec<(String, Value)> = Vec::new();
    let mut via = false;
    let mut dev = false;
    let mut onlink = false;
    let mut no_track = false;
    let mut protocol_value = None;
    let mut i = 0;
    let need = |i: usize, ctx: &mut Ctx<'_>| -> Option<&str> {
        let v = words.get(i + 1).copied();
        if v.is_none() {
            ctx.log.error(
                &loc,
                format!("virtual route {shown:?}: {} needs a value", words[i]),
            );
        }
        v
    };
    let leave = |ctx: &mut Ctx<'_>, what: &str, why: &str| {
        ctx.log.left_out(
            &loc,
            "virtual_routes",
            format!("route {shown:?} left out: {what}: {why}"),
        );
    };
    let set_family = |family: &mut Option<bool>, v6: bool, ctx: &mut Ctx<'_>| -> bool {
        if family.is_some_and(|f| f != v6) {
            ctx.log
                .error(&loc, format!("virtual route {shown:?} mixes IPv4 and IPv6"));
            return false;
        }
        *family = Some(v6);
        true
    };
    while i < words.len() {
        let w = words[i];
        match w {
            "inet" | "inet6" => {
                if !set_family(&mut family, w == "inet6", ctx) {
                    return None;
                }
            }
            "src" => {
                let v = need(i, ctx)?;
                let Ok(a) = v.parse::<IpAddr>() else {
                    ctx.log.error(
                        &loc,
                        format!("virtual route {shown:?}: src {v:?} is not an address"),
                    );
                    return None;
                };
                if !set_family(&mut family, a.is_ipv6(), ctx) {
                    return None;
                }
                pairs.push(("src".into(), Value::str(v)));
                i += 1;
            }
            "via" | "gw" => {
                let mut v = need(i, ctx)?;
                if matches!(v, "inet" | "inet6") {
                    i += 1;
                    v = need(i, ctx)?;
                }
                let Ok(a) = v.parse::<IpAddr>() else {
                    ctx.log.error(
                        &loc,
                        format!("virtual route {shown:?}: via {v:?} is not an address"),
                    );
                    return None;
                };
                if !set_family(&mut family, a.is_ipv6(), ctx) {
                    return None;
                }
                pairs.push(("via".into(), Value::str(v)));
                via = true;
                i += 1;
            }
            "dev" | "oif" => {
                let v = need(i, ctx)?;
                if !valid_ifname(v) {
                    ctx.log.error(
                        &loc,
                        format!("virtual route {shown:?}: dev {v:?} is not an interface name"),
                    );
                    return None;
                }
                pairs.push(("dev".into(), Value::str(v)));
                dev = true;
                i += 1;
            }
            "table" => {
                let v = need(i, ctx)?;
                match table(v) {
                    Some(t) => pairs.push(("table".into(), t)),
                    None => {
                        ctx.log.error(
                            &loc,
                            format!("virtual route {shown:?}: table {v:?}: write its number (vipd takes main, local or 1..=4294967295)"),
                        );
                        return None;
                    }
                }
                i += 1;
            }
            "protocol" => {
                let v = need(i, ctx)?;
                match protocol(v) {
                    Some(p) => protocol_value = Some(p),
                    None => {
                        ctx.log.error(
                            &loc,
                            format!("virtual route {shown:?}: protocol {v:?}: write its number"),
                        );
                        return None;
                    }
                }
                i += 1;
            }
            "scope" => {
                let v = need(i, ctx)?;
                match v {
                    "global" | "universe" | "0" => pairs.push(("scope".into(), Value::str("global"))),
                    "link" | "253" => pairs.push(("scope".into(), Value::str("link"))),
                    "host" | "254" => pairs.push(("scope".into(), Value::str("host"))),
                    other => ctx.log.left_out(
                        &loc,
                        "virtual_routes",
                        format!("route {shown:?}: scope {other}: vipd takes global, link or host; the kernel chooses"),
                    ),
                }
                i += 1;
            }
            "metric" | "priority" | "preference" => {
                let v = need(i, ctx)?;
                match v.parse::<u32>() {
                    Ok(m) => pairs.push(("metric".into(), Value::Int(i64::from(m)))),
                    Err(_) => {
                        ctx.log.error(
                            &loc,
                            format!("virtual route {shown:?}: {w} {v:?} is not a number"),
                        );
                        return None;
                    }
                }
                i += 1;
            }
            "onlink" => onlink = true,
            "no_track" => no_track = true,
            "add" | "prepend" | "append" => ctx.log.left_out(
                &loc,
                "virtual_routes",
                format!("route {shown:?}: {w}: vipd adds the route its own way"),
            ),
            "from" => {
                leave(ctx, "from", "vipd adds no source-specific routes");
                return None;
            }
            "tos" | "dsfield" => {
                leave(ctx, w, "vipd adds no TOS routes");
                return None;
            }
            "nexthop" | "or" => {
                leave(ctx, w, "vipd adds no multipath routes");
                return None;
            }
            "encap" => {
                leave(ctx, w, "vipd adds no encapsulating routes");
                return None;
            }
            "vrf" => {
                leave(ctx, w, "no vipd equivalent; give the VRF's table number");
                return None;
            }
            "as" => {
                leave(ctx, w, "no vipd equivalent");
                return None;
            }
            "track_group" => {
                ctx.log.error(
                    &loc,
                    format!("virtual route {shown:?}: track_group is for static routes only"),
                );
                return None;
            }
            t if ROUTE_TUNING.contains(&t) => {
                let mut skip = 1;
                if words.get(i + 1) == Some(&"lock") {
                    skip += 1;
                }
                let value = words.get(i + skip).copied().unwrap_or("");
                ctx.log.left_out(
                    &loc,
                    "virtual_routes",
                    format!("route {shown:?}: {t} {value}: no vipd equivalent"),
                );
                i += skip;
            }
            _ => {
                let mut dest = w;
                if dest == "to" {
                    i += 1;
                    dest = need(i - 1, ctx)?;
                }
                if let Some(t) = route_type(dest) {
                    match t {
                        Ok(t) => kind = Some(t),
                        Err(t) => {
                            leave(
                                ctx,
                                "type",
                                &format!(
                                    "{t}: vipd adds unicast, blackhole, unreachable or prohibit routes"
                                ),
                            );
                            return None;
                        }
                    }
                    i += 1;
                    dest = match words.get(i) {
                        Some(d) => d,
                        None => {
                            ctx.log
                                .error(&loc, format!("virtual route {shown:?}: no destination"));
                            return None;
                        }
                    };
                }
                match prefix(dest, family) {
                    Ok((p, v6)) => {
                        if p.is_some() && !set_family(&mut family, v6, ctx) {
                            return None;
                        }
                        to = Some(p);
                    }
                    Err(message) => {
                        ctx.log
                            .error(&loc, format!("virtual route {shown:?}: {message}"));
                        return None;
                    }
                }
            }
        }
        i += 1;
    }
    let Some(to) = to else {
        ctx.log
            .error(&loc, format!("virtual route {shown:?}: no destination"));
        return None;
    };
    let v6 = family.unwrap_or(false);
    let to = to.unwrap_or_else(|| {
        // vipd reads "default" in the route's own family when it has addresses; write the
        // family out when it has none, since keepalived then takes IPv4 unless told inet6.
        if via || pairs.iter().any(|(k, _)| k == "src") {
            "default".to_owned()
        } else if v6 {
            "::/0".to_owned()
        } else {
            "0.0.0.0/0".to_owned()
        }
    });
    let kind = kind.unwrap_or("unicast");
    if kind != "unicast" && (via || dev) {
        ctx.log.note(
            &loc,
            "virtual_routes",
            format!(
                "route {shown:?}: a {kind} route goes nowhere, so its via and dev are not written"
            ),
        );
        pairs.retain(|(k, _)| k != "via" && k != "dev");
    }
    if onlink && !via {
        ctx.log.note(
            &loc,
            "virtual_routes",
            format!("route {shown:?}: onlink without via means nothing; not written"),
        );
        onlink = false;
    }
    let protocol_value = match (no_track, protocol_value) {
        (true, Some(p)) => p,
        (_, _) => Value::Int(RTPROT_KEEPALIVED),
    };
    let mut out = vec![("to".to_owned(), Value::str(to))];
    let order = ["via", "dev", "src", "table", "metric"];
    for key in order {
        if let Some((_, v)) = pairs.iter().find(|(k, _)| k == key) {
            out.push((key.to_owned(), v.clone()));
        }
    }
    out.push(("protocol".into(), protocol_value));
    if kind != "unicast" {
        out.push(("type".into(), Value::str(kind)));
    }
    if let Some((_, v)) = pairs.iter().find(|(k, _)| k == "scope") {
        out.push(("scope".into(), v.clone()));
    }
    if onlink {
        out.push(("onlink".into(), Value::Bool(true)));
    }
    Some(Value::Inline(out))
}

/// `Some(Ok(type))` for a type vipd has, `Some(Err(type))` for another route type.
fn route_type(word: &str) -> Option<Result<&'static str, &str>> {
    match word {
        "unicast" => Some(Ok("unicast")),
        "blackhole" => Some(Ok("blackhole")),
        "unreachable" => Some(Ok("unreachable")),
        "prohibit" => Some(Ok("prohibit")),
        "local" | "broadcast" | "anycast" | "multicast" | "throw" | "nat" | "xresolve" => {
            Some(Err(word))
        }
        _ => None,
    }
}

/// `fwmark N[/MASK]` read with C's `strtoul(.., 0)`: 0x hex, leading 0 octal.
fn c_number(text: &str) -> Option<u32> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if text.len() > 1 && text.starts_with('0') {
        u32::from_str_radix(&text[1..], 8).ok()
    } else {
        text.parse().ok()
    }
}

/// One `virtual_rules` line; `None` when it is left out or an error.
pub(crate) fn rule(line: &Node, ctx: &mut Ctx<'_>) -> Option<Value> {
    let loc = line.loc.clone();
    let words: Vec<&str> = std::iter::once(line.keyword.as_str())
        .chain(line.args.iter().map(|w| w.text.as_str()))
        .collect();
    let shown = &line.raw;
    let mut family: Option<bool> = None;
    let mut from: Option<Option<String>> = None;
    let mut to: Option<Option<String>> = None;
    let mut pairs: Vec<(String, Value)> = Vec::new();
    let mut action: Option<&str> = None;
    let mut priority = None;
    let leave = |ctx: &mut Ctx<'_>, what: &str, why: &str| {
        ctx.log.left_out(
            &loc,
            "virtual_rules",
            format!("rule {shown:?} left out: {what}: {why}"),
        );
    };
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let value = words.get(i + 1).copied();
        let needs_value = !matches!(
            w,
            "inet"
                | "inet6"
                | "not"
                | "no_track"
                | "l3mdev"
                | "nop"
                | "blackhole"
                | "unreachable"
                | "prohibit"
        );
        if needs_value && value.is_none() {
            ctx.log
                .error(&loc, format!("virtual rule {shown:?}: {w} needs a value"));
            return None;
        }
        let v = value.unwrap_or_default();
        match w {
            "inet" | "inet6" => family = Some(w == "inet6"),
            "from" | "to" => match prefix(v, family) {
                Ok((p, v6)) => {
                    if p.is_some() {
                        if family.is_some_and(|f| f != v6) {
                            ctx.log
                                .error(&loc, format!("virtual rule {shown:?} mixes IPv4 and IPv6"));
                            return None;
                        }
                        family = Some(v6);
                    }
                    if w == "from" {
                        from = Some(p);
                    } else {
                        to = Some(p);
                    }
                }
                Err(message) => {
                    ctx.log
                        .error(&loc, format!("virtual rule {shown:?}: {message}"));
                    return None;
                }
            },
            "table" | "lookup" => match table(v) {
                Some(t) => {
                    pairs.push(("table".into(), t));
                    action = Some("table");
                }
                None => {
                    ctx.log.error(
                        &loc,
                        format!("virtual rule {shown:?}: table {v:?}: write its number (vipd takes main or 1..=4294967295)"),
                    );
                    return None;
                }
            },
            "preference" | "order" | "priority" => match c_number(v) {
                Some(p) => priority = Some((p, v)),
                None => {
                    ctx.log.error(
                        &loc,
                        format!("virtual rule {shown:?}: {w} {v:?} is not a number"),
                    );
                    return None;
                }
            },
            "fwmark" => {
                let (value_text, mask_text) = match v.split_once('/') {
                    Some((a, m)) => (a, Some(m)),
                    None => (v, None),
                };
                let value = c_number(value_text);
                let mask = mask_text.map(c_number);
                match (value, mask) {
                    (Some(value), None) => {
                        pairs.push(("fwmark".into(), Value::Int(i64::from(value))))
                    }
                    (Some(value), Some(Some(mask))) => {
                        pairs.push(("fwmark".into(), Value::str(format!("{value:#x}/{mask:#x}"))))
                    }
                    _ => {
                        ctx.log.error(
                            &loc,
                            format!("virtual rule {shown:?}: fwmark {v:?} is not N or N/MASK"),
                        );
                        return None;
                    }
                }
            }
            "dev" | "iif" | "oif" => {
                if !valid_ifname(v) {
                    ctx.log.error(
                        &loc,
                        format!("virtual rule {shown:?}: {w} {v:?} is not an interface name"),
                    );
                    return None;
                }
                let key = if w == "oif" { "oif" } else { "iif" };
                pairs.push((key.into(), Value::str(v)));
            }
            "no_track" => {}
            "protocol" => ctx.log.left_out(
                &loc,
                "virtual_rules",
                format!("rule {shown:?}: protocol {v}: vipd sets no protocol on rules"),
            ),
            "not" => {
                leave(ctx, "not", "vipd adds no inverted rules");
                return None;
            }
            "l3mdev" => {
                leave(ctx, "l3mdev", "no vipd equivalent");
                return None;
            }
            "tos"
            | "dsfield"
            | "realms"
            | "suppress_prefixlength"
            | "sup_pl"
            | "suppress_ifgroup"
            | "sup_group"
            | "tunnel-id"
            | "uidrange"
            | "ipproto"
            | "sport"
            | "dport" => {
                leave(
                    ctx,
                    w,
                    "vipd's rules match on from, to, iif, oif and fwmark only",
                );
                return None;
            }
            "goto" | "nop" => {
                leave(
                    ctx,
                    w,
                    "vipd's rules look up a table, or blackhole, unreachable or prohibit",
                );
                return None;
            }
            "type" | "blackhole" | "unreachable" | "prohibit" => {
                let a = if w == "type" { v } else { w };
                match a {
                    "blackhole" | "unreachable" | "prohibit" => action = Some(a),
                    "goto" | "nop" => {
                        leave(
                            ctx,
                            a,
                            "vipd's rules look up a table, or blackhole, unreachable or prohibit",
                        );
                        return None;
                    }
                    other => {
                        ctx.log.error(
                            &loc,
                            format!("virtual rule {shown:?}: unknown rule type {other:?}"),
                        );
                        return None;
                    }
                }
            }
            "track_group" => {
                ctx.log.error(
                    &loc,
                    format!("virtual rule {shown:?}: track_group is for static rules only"),
                );
                return None;
            }
            other => {
                ctx.log.error(
                    &loc,
                    format!("virtual rule {shown:?}: unknown rule option {other:?}"),
                );
                return None;
            }
        }
        i += if needs_value { 2 } else { 1 };
    }
    let Some(action) = action else {
        ctx.log.note(
            &loc,
            "virtual_rules",
            format!("rule {shown:?} has no action, so keepalived ignores it; so does the import"),
        );
        return None;
    };
    let v6 = family.unwrap_or(false);
    let mut out: Vec<(String, Value)> = Vec::new();
    if let Some(Some(f)) = &from {
        out.push(("from".into(), Value::str(f)));
    }
    if let Some(Some(t)) = &to {
        out.push(("to".into(), Value::str(t)));
    }
    for key in ["iif", "oif", "fwmark"] {
        if let Some((_, v)) = pairs.iter().find(|(k, _)| k == key) {
            out.push((key.to_owned(), v.clone()));
        }
    }
    if out.is_empty() {
        // `from all`: vipd wants a selector; the whole family's prefix says the same.
        let all = if v6 { "::/0" } else { "0.0.0.0/0" };
        ctx.log.note(
            &loc,
            "virtual_rules",
            format!("rule {shown:?} matches every packet: written as from = {all:?}"),
        );
        out.push(("from".into(), Value::str(all)));
    }
    if let Some((_, t)) = pairs.iter().find(|(k, _)| k == "table") {
        out.push(("table".into(), t.clone()));
    }
    match priority {
        Some((p, _)) if (1..=32765).contains(&p) => {
            out.push(("priority".into(), Value::Int(i64::from(p))));
        }
        Some((_, text)) => {
            leave(ctx, "priority", &format!("{text}: vipd takes 1..=32765 (0, 32766 and 32767 hold the kernel's own rules)"));
            return None;
        }
        None => ctx.log.note(
            &loc,
            "virtual_rules",
            format!("rule {shown:?} has no preference: keepalived picks one itself, vipd lets the kernel pick"),
        ),
    }
    if action != "table" {
        out.push(("action".into(), Value::str(action)));
    }
    Some(Value::Inline(out))
}
