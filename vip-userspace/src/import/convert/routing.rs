//! `virtual_routes` and `virtual_rules` lines, read as keepalived's `alloc_route()` and
//! `alloc_rule()` read them: word by word through the option tables [`ROUTE_OPTIONS`] and
//! [`RULE_OPTIONS`].

use std::net::IpAddr;

use super::Ctx;
use super::options::{Opt, OptionLine, Words, opt, read_options, value};
use super::values::{c_number, prefix, valid_ifname};
use crate::config::print::Value;
use crate::import::parse::Node;
use crate::import::report::Loc;

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

/// One `virtual_routes` line being read.
struct RouteLine {
    shown: String,
    loc: Loc,
    /// `Some(true)`: IPv6.
    family: Option<bool>,
    to: Option<Option<String>>,
    kind: Option<&'static str>,
    pairs: Vec<(String, Value)>,
    via: bool,
    dev: bool,
    onlink: bool,
    no_track: bool,
    protocol_value: Option<Value>,
}

impl OptionLine for RouteLine {
    fn missing_value(&self, option: &str, ctx: &mut Ctx<'_>) {
        ctx.log.error(
            &self.loc,
            format!("virtual route {:?}: {option} needs a value", self.shown),
        );
    }

    /// Anything else is the destination, maybe after `to` and a route type.
    fn other(&mut self, word: &str, w: &mut Words<'_>, ctx: &mut Ctx<'_>) -> Option<()> {
        let mut dest = word;
        if dest == "to" {
            dest = value(self, "to", w, ctx)?;
        }
        if let Some(t) = route_type(dest) {
            match t {
                Ok(t) => self.kind = Some(t),
                Err(t) => {
                    self.leave(
                        ctx,
                        "type",
                        &format!(
                            "{t}: vipd adds unicast, blackhole, unreachable or prohibit routes"
                        ),
                    );
                    return None;
                }
            }
            dest = match w.take() {
                Some(d) => d,
                None => {
                    ctx.log.error(
                        &self.loc,
                        format!("virtual route {:?}: no destination", self.shown),
                    );
                    return None;
                }
            };
        }
        match prefix(dest, self.family) {
            Ok((p, v6)) => {
                if p.is_some() {
                    self.set_family(v6, ctx)?;
                }
                self.to = Some(p);
                Some(())
            }
            Err(message) => {
                ctx.log.error(
                    &self.loc,
                    format!("virtual route {:?}: {message}", self.shown),
                );
                None
            }
        }
    }
}

impl RouteLine {
    /// Reports the route left out because of `what`.
    fn leave(&self, ctx: &mut Ctx<'_>, what: &str, why: &str) {
        ctx.log.left_out(
            &self.loc,
            "virtual_routes",
            format!("route {:?} left out: {what}: {why}", self.shown),
        );
    }

    /// Reports an option of the route vipd has no key for (the route stays).
    fn drop_option(&self, ctx: &mut Ctx<'_>, why: String) {
        ctx.log.left_out(
            &self.loc,
            "virtual_routes",
            format!("route {:?}: {why}", self.shown),
        );
    }

    fn error(&self, ctx: &mut Ctx<'_>, what: String) -> Option<()> {
        ctx.log
            .error(&self.loc, format!("virtual route {:?}: {what}", self.shown));
        None
    }

    /// Records the route's family; `None` (reported) when it mixes IPv4 and IPv6.
    fn set_family(&mut self, v6: bool, ctx: &mut Ctx<'_>) -> Option<()> {
        if self.family.is_some_and(|f| f != v6) {
            ctx.log.error(
                &self.loc,
                format!("virtual route {:?} mixes IPv4 and IPv6", self.shown),
            );
            return None;
        }
        self.family = Some(v6);
        Some(())
    }

    /// An address option (`src`, `via`): its value, parsed, and its family recorded.
    fn address(&mut self, name: &str, v: &str, ctx: &mut Ctx<'_>) -> Option<()> {
        let Ok(a) = v.parse::<IpAddr>() else {
            return self.error(ctx, format!("{name} {v:?} is not an address"));
        };
        self.set_family(a.is_ipv6(), ctx)?;
        self.pairs.push((name.into(), Value::str(v)));
        Some(())
    }
}

/// The options of a route line; any other word is its destination.
const ROUTE_OPTIONS: &[Opt<RouteLine>] = &[
    opt(&["inet", "inet6"], |r, o, _, ctx| {
        r.set_family(o == "inet6", ctx)
    }),
    opt(&["src"], |r, o, w, ctx| {
        let v = value(r, o, w, ctx)?;
        r.address("src", v, ctx)
    }),
    opt(&["via", "gw"], |r, o, w, ctx| {
        let mut v = value(r, o, w, ctx)?;
        if matches!(v, "inet" | "inet6") {
            v = value(r, v, w, ctx)?;
        }
        r.address("via", v, ctx)?;
        r.via = true;
        Some(())
    }),
    opt(&["dev", "oif"], |r, o, w, ctx| {
        let v = value(r, o, w, ctx)?;
        if !valid_ifname(v) {
            return r.error(ctx, format!("dev {v:?} is not an interface name"));
        }
        r.pairs.push(("dev".into(), Value::str(v)));
        r.dev = true;
        Some(())
    }),
    opt(&["table"], |r, o, w, ctx| {
        let v = value(r, o, w, ctx)?;
        let Some(t) = table(v) else {
            return r.error(
                ctx,
                format!("table {v:?}: write its number (vipd takes main, local or 1..=4294967295)"),
            );
        };
        r.pairs.push(("table".into(), t));
        Some(())
    }),
    opt(&["protocol"], |r, o, w, ctx| {
        let v = value(r, o, w, ctx)?;
        let Some(p) = protocol(v) else {
            return r.error(ctx, format!("protocol {v:?}: write its number"));
        };
        r.protocol_value = Some(p);
        Some(())
    }),
    opt(&["scope"], |r, o, w, ctx| {
        let v = value(r, o, w, ctx)?;
        let scope = match v {
            "global" | "universe" | "0" => "global",
            "link" | "253" => "link",
            "host" | "254" => "host",
            other => {
                r.drop_option(
                    ctx,
                    format!("scope {other}: vipd takes global, link or host; the kernel chooses"),
                );
                return Some(());
            }
        };
        r.pairs.push(("scope".into(), Value::str(scope)));
        Some(())
    }),
    opt(&["metric", "priority", "preference"], |r, o, w, ctx| {
        let v = value(r, o, w, ctx)?;
        let Ok(m) = v.parse::<u32>() else {
            return r.error(ctx, format!("{o} {v:?} is not a number"));
        };
        r.pairs.push(("metric".into(), Value::Int(i64::from(m))));
        Some(())
    }),
    opt(&["onlink"], |r, _, _, _| {
        r.onlink = true;
        Some(())
    }),
    opt(&["no_track"], |r, _, _, _| {
        r.no_track = true;
        Some(())
    }),
    opt(&["add", "prepend", "append"], |r, o, _, ctx| {
        r.drop_option(ctx, format!("{o}: vipd adds the route its own way"));
        Some(())
    }),
    opt(&["from"], |r, _, _, ctx| {
        r.leave(ctx, "from", "vipd adds no source-specific routes");
        None
    }),
    opt(&["tos", "dsfield"], |r, o, _, ctx| {
        r.leave(ctx, o, "vipd adds no TOS routes");
        None
    }),
    opt(&["nexthop", "or"], |r, o, _, ctx| {
        r.leave(ctx, o, "vipd adds no multipath routes");
        None
    }),
    opt(&["encap"], |r, o, _, ctx| {
        r.leave(ctx, o, "vipd adds no encapsulating routes");
        None
    }),
    opt(&["vrf"], |r, o, _, ctx| {
        r.leave(ctx, o, "no vipd equivalent; give the VRF's table number");
        None
    }),
    opt(&["as"], |r, o, _, ctx| {
        r.leave(ctx, o, "no vipd equivalent");
        None
    }),
    opt(&["track_group"], |r, _, _, ctx| {
        r.error(ctx, "track_group is for static routes only".into())
    }),
    opt(ROUTE_TUNING, |r, o, w, ctx| {
        if w.peek() == Some("lock") {
            w.take();
        }
        let value = w.take().unwrap_or("");
        r.drop_option(ctx, format!("{o} {value}: no vipd equivalent"));
        Some(())
    }),
];

/// One `virtual_routes` line; `None` when it is left out or an error.
pub(crate) fn route(line: &Node, ctx: &mut Ctx<'_>) -> Option<Value> {
    let words: Vec<&str> = std::iter::once(line.keyword.as_str())
        .chain(line.args.iter().map(|w| w.text.as_str()))
        .collect();
    let mut r = RouteLine {
        shown: line.raw.clone(),
        loc: line.loc.clone(),
        family: None,
        to: None,
        kind: None,
        pairs: Vec::new(),
        via: false,
        dev: false,
        onlink: false,
        no_track: false,
        protocol_value: None,
    };
    read_options(ROUTE_OPTIONS, &mut r, &words, ctx)?;
    let RouteLine {
        shown,
        loc,
        family,
        to,
        kind,
        mut pairs,
        via,
        dev,
        mut onlink,
        no_track,
        protocol_value,
    } = r;
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

/// One `virtual_rules` line being read.
struct RuleLine {
    shown: String,
    loc: Loc,
    family: Option<bool>,
    from: Option<Option<String>>,
    to: Option<Option<String>>,
    pairs: Vec<(String, Value)>,
    action: Option<&'static str>,
    priority: Option<(u32, String)>,
}

impl OptionLine for RuleLine {
    fn missing_value(&self, option: &str, ctx: &mut Ctx<'_>) {
        ctx.log.error(
            &self.loc,
            format!("virtual rule {:?}: {option} needs a value", self.shown),
        );
    }

    fn other(&mut self, word: &str, w: &mut Words<'_>, ctx: &mut Ctx<'_>) -> Option<()> {
        // keepalived reads an unknown option with its value, so one without reads as
        // that first.
        value(self, word, w, ctx)?;
        self.error(ctx, format!("unknown rule option {word:?}"))
    }
}

impl RuleLine {
    fn leave(&self, ctx: &mut Ctx<'_>, what: &str, why: &str) {
        ctx.log.left_out(
            &self.loc,
            "virtual_rules",
            format!("rule {:?} left out: {what}: {why}", self.shown),
        );
    }

    fn error(&self, ctx: &mut Ctx<'_>, what: String) -> Option<()> {
        ctx.log
            .error(&self.loc, format!("virtual rule {:?}: {what}", self.shown));
        None
    }

    /// `from` / `to`: a prefix, its family recorded.
    fn selector(&mut self, v: &str, ctx: &mut Ctx<'_>) -> Option<Option<String>> {
        match prefix(v, self.family) {
            Ok((p, v6)) => {
                if p.is_some() {
                    if self.family.is_some_and(|f| f != v6) {
                        ctx.log.error(
                            &self.loc,
                            format!("virtual rule {:?} mixes IPv4 and IPv6", self.shown),
                        );
                        return None;
                    }
                    self.family = Some(v6);
                }
                Some(p)
            }
            Err(message) => {
                self.error(ctx, message);
                None
            }
        }
    }

    /// A rule's action word: `blackhole`, `unreachable`, `prohibit`, or reported.
    fn action(&mut self, a: &str, ctx: &mut Ctx<'_>) -> Option<()> {
        self.action = Some(match a {
            "blackhole" => "blackhole",
            "unreachable" => "unreachable",
            "prohibit" => "prohibit",
            "goto" | "nop" => {
                self.leave(ctx, a, NO_JUMPS);
                return None;
            }
            other => return self.error(ctx, format!("unknown rule type {other:?}")),
        });
        Some(())
    }
}

const NO_JUMPS: &str = "vipd's rules look up a table, or blackhole, unreachable or prohibit";

/// The options of a rule line; any other word is an error.
const RULE_OPTIONS: &[Opt<RuleLine>] = &[
    opt(&["inet", "inet6"], |r, o, _, _| {
        r.family = Some(o == "inet6");
        Some(())
    }),
    opt(&["from"], |r, o, w, ctx| {
        let v = value(r, o, w, ctx)?;
        r.from = Some(r.selector(v, ctx)?);
        Some(())
    }),
    opt(&["to"], |r, o, w, ctx| {
        let v = value(r, o, w, ctx)?;
        r.to = Some(r.selector(v, ctx)?);
        Some(())
    }),
    opt(&["table", "lookup"], |r, o, w, ctx| {
        let v = value(r, o, w, ctx)?;
        let Some(t) = table(v) else {
            return r.error(
                ctx,
                format!("table {v:?}: write its number (vipd takes main or 1..=4294967295)"),
            );
        };
        r.pairs.push(("table".into(), t));
        r.action = Some("table");
        Some(())
    }),
    opt(&["preference", "order", "priority"], |r, o, w, ctx| {
        let v = value(r, o, w, ctx)?;
        let Some(p) = c_number(v) else {
            return r.error(ctx, format!("{o} {v:?} is not a number"));
        };
        r.priority = Some((p, v.to_owned()));
        Some(())
    }),
    opt(&["fwmark"], |r, o, w, ctx| {
        let v = value(r, o, w, ctx)?;
        let (value_text, mask_text) = match v.split_once('/') {
            Some((a, m)) => (a, Some(m)),
            None => (v, None),
        };
        let shown = match (c_number(value_text), mask_text.map(c_number)) {
            (Some(value), None) => Value::Int(i64::from(value)),
            (Some(value), Some(Some(mask))) => Value::str(format!("{value:#x}/{mask:#x}")),
            _ => return r.error(ctx, format!("fwmark {v:?} is not N or N/MASK")),
        };
        r.pairs.push(("fwmark".into(), shown));
        Some(())
    }),
    opt(&["dev", "iif", "oif"], |r, o, w, ctx| {
        let v = value(r, o, w, ctx)?;
        if !valid_ifname(v) {
            return r.error(ctx, format!("{o} {v:?} is not an interface name"));
        }
        let key = if o == "oif" { "oif" } else { "iif" };
        r.pairs.push((key.into(), Value::str(v)));
        Some(())
    }),
    opt(&["no_track"], |_, _, _, _| Some(())),
    opt(&["protocol"], |r, o, w, ctx| {
        let v = value(r, o, w, ctx)?;
        ctx.log.left_out(
            &r.loc,
            "virtual_rules",
            format!(
                "rule {:?}: protocol {v}: vipd sets no protocol on rules",
                r.shown
            ),
        );
        Some(())
    }),
    opt(&["not"], |r, _, _, ctx| {
        r.leave(ctx, "not", "vipd adds no inverted rules");
        None
    }),
    opt(&["l3mdev"], |r, _, _, ctx| {
        r.leave(ctx, "l3mdev", "no vipd equivalent");
        None
    }),
    opt(
        &[
            "tos",
            "dsfield",
            "realms",
            "suppress_prefixlength",
            "sup_pl",
            "suppress_ifgroup",
            "sup_group",
            "tunnel-id",
            "uidrange",
            "ipproto",
            "sport",
            "dport",
        ],
        |r, o, w, ctx| {
            value(r, o, w, ctx)?;
            r.leave(
                ctx,
                o,
                "vipd's rules match on from, to, iif, oif and fwmark only",
            );
            None
        },
    ),
    opt(&["goto"], |r, o, w, ctx| {
        value(r, o, w, ctx)?;
        r.leave(ctx, o, NO_JUMPS);
        None
    }),
    opt(&["nop"], |r, o, _, ctx| {
        r.leave(ctx, o, NO_JUMPS);
        None
    }),
    opt(&["type"], |r, o, w, ctx| {
        let v = value(r, o, w, ctx)?;
        r.action(v, ctx)
    }),
    opt(&["blackhole", "unreachable", "prohibit"], |r, o, _, ctx| {
        r.action(o, ctx)
    }),
    opt(&["track_group"], |r, o, w, ctx| {
        value(r, o, w, ctx)?;
        r.error(ctx, "track_group is for static rules only".into())
    }),
];

/// One `virtual_rules` line; `None` when it is left out or an error.
pub(crate) fn rule(line: &Node, ctx: &mut Ctx<'_>) -> Option<Value> {
    let words: Vec<&str> = std::iter::once(line.keyword.as_str())
        .chain(line.args.iter().map(|w| w.text.as_str()))
        .collect();
    let mut r = RuleLine {
        shown: line.raw.clone(),
        loc: line.loc.clone(),
        family: None,
        from: None,
        to: None,
        pairs: Vec::new(),
        action: None,
        priority: None,
    };
    read_options(RULE_OPTIONS, &mut r, &words, ctx)?;
    let leave = |ctx: &mut Ctx<'_>, what: &str, why: &str| r.leave(ctx, what, why);
    let RuleLine {
        shown,
        loc,
        family,
        from,
        to,
        pairs,
        action,
        priority,
    } = &r;
    let (family, action) = (*family, *action);
    let priority = priority.as_ref().map(|(p, t)| (*p, t.as_str()));
    let Some(action) = action else {
        ctx.log.note(
            loc,
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
            loc,
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
            loc,
            "virtual_rules",
            format!("rule {shown:?} has no preference: keepalived picks one itself, vipd lets the kernel pick"),
        ),
    }
    if action != "table" {
        out.push(("action".into(), Value::str(action)));
    }
    Some(Value::Inline(out))
}
