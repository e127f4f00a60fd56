//! `virtual_server` / `real_server` blocks as `[[service]]` tables (docs/operations.md,
//! "Virtual services"): the service follows the `vrrp_instance` whose
//! `virtual_ipaddress` carries its VIP; every scheduler becomes the consistent hash with
//! weights (`sh` and `persistence_timeout` hash the client address alone); `lb_kind`
//! DR and TUN carry over, NAT does not (with its reason); the checkers TCP_CHECK,
//! HTTP_GET / SSL_GET and MISC_CHECK become checks. What cannot be carried is reported
//! at its line.

use std::net::IpAddr;
use std::time::Duration;

use super::Ctx;
use super::global::{count, timer};
use super::track::hook;
use super::values::{boolean, int_in, sanitize_name};
use crate::config::print::{Table, Value};
use crate::import::parse::Node;
use crate::import::script;

/// keepalived's defaults: `delay_loop` 60 s, `connect_timeout` 5 s, `retry` 1 (3 for
/// HTTP_GET), `delay_before_retry` 1 s; written out so the import keeps them (vipd's own
/// defaults check more often).
const KA_DELAY_LOOP: Duration = Duration::from_secs(60);
const KA_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const KA_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(1);

/// Service-level keywords with no vipd equivalent, and why.
const LEFT_OUT: &[(&str, &str)] = &[
    (
        "omega",
        "vipd runs quorum_down when the quorum is lost, not again at shutdown",
    ),
    (
        "ha_suspend",
        "a vipd service is always checked; it forwards only while its instance is master",
    ),
    (
        "ops",
        "vipd pins flows, not datagrams: one-packet scheduling is not carried",
    ),
    (
        "persistence_granularity",
        "vipd hashes the whole client address",
    ),
    (
        "sorry_server_inhibit",
        "the sorry server takes new flows only while the quorum is lost",
    ),
    (
        "virtualhost",
        "write host = \"NAME\" in the service's HTTP check",
    ),
    (
        "lvs_sched_flags",
        "vipd's consistent hash has no scheduler flags",
    ),
    (
        "lb_sched_flags",
        "vipd's consistent hash has no scheduler flags",
    ),
    (
        "mh-fallback",
        "vipd's table never holds a server that is down",
    ),
    ("mh-port", "vipd hashes the 5-tuple (or the client address)"),
    ("ip_family", "the VIP's family is the service's"),
    (
        "smtp_alert",
        "vipd sends no e-mail; use notify_up / notify_down",
    ),
];

/// The vipd name of a service: `vs_ADDRESS_PORT` (dots and colons as `_`).
fn service_name(vip: &IpAddr, port: u16) -> String {
    sanitize_name(&format!("vs_{vip}_{port}"))
}

/// The instance carrying `vip` among `instances` (name, its VIPs), if one does.
pub(crate) fn read(
    node: &Node,
    instances: &[(String, Vec<IpAddr>)],
    script_user: Option<&str>,
    ctx: &mut Ctx<'_>,
) -> Option<Table> {
    let left_out = |ctx: &mut Ctx<'_>, reason: &str| {
        ctx.log.left_out(&node.loc, "virtual_server", reason);
        for child in node.children() {
            if child.keyword == "real_server" {
                ctx.log.left_out(
                    &child.loc,
                    "real_server",
                    "its virtual_server is not carried",
                );
            }
        }
    };
    if matches!(node.arg(0), Some("fwmark" | "group")) {
        left_out(
            ctx,
            "vipd balances an address and port (or every port), not a firewall mark or a \
             virtual_server_group",
        );
        return None;
    }
    let Some(vip) = node.arg(0).and_then(|a| a.parse::<IpAddr>().ok()) else {
        ctx.log.error(
            &node.loc,
            format!(
                "virtual_server: expected an IP address, found {:?}",
                node.arg(0).unwrap_or("")
            ),
        );
        return None;
    };
    let port = match node.arg(1) {
        None => 0,
        Some(p) => match int_in(p, 0..=65_535) {
            Some(p) => p as u16,
            None => {
                ctx.log.error(
                    &node.loc,
                    format!("virtual_server: expected a port, found {p:?}"),
                );
                return None;
            }
        },
    };
    // lb_kind first: a NAT service (keepalived's default) is not carried at all.
    let kind = node
        .children()
        .iter()
        .rev()
        .find(|c| matches!(c.keyword.as_str(), "lb_kind" | "lvs_method"))
        .and_then(|c| c.arg(0));
    if matches!(kind, None | Some("NAT")) {
        left_out(
            ctx,
            &format!(
                "lb_kind NAT{} is not carried: the servers' replies would have to come back \
                 through the director, whose XDP program only sees what arrives; use DR (the \
                 VIP on the servers' loopback) or TUN",
                if kind.is_none() {
                    " (keepalived's default, no lb_kind written)"
                } else {
                    ""
                }
            ),
        );
        return None;
    }
    let follow = instances
        .iter()
        .find(|(_, vips)| vips.contains(&vip))
        .map(|(n, _)| n.clone());
    let Some(follow) = follow else {
        left_out(
            ctx,
            &format!(
                "no vrrp_instance carries {vip} in its virtual_ipaddress: a vipd service \
                 follows the master of the instance that does (or, behind ECMP, every \
                 director: write active = \"ecmp\")"
            ),
        );
        return None;
    };

    let mut t = Table::new("[[service]]");
    t.comments.push(format!(
        "from {} virtual_server {} {}",
        node.loc,
        node.arg(0).unwrap_or(""),
        node.arg(1).unwrap_or("")
    ));
    t.key("name", Value::str(service_name(&vip, port)));
    t.key("vip", Value::str(vip.to_string()));
    t.key("port", Value::Int(i64::from(port)));
    let mut protocol = "tcp";
    let mut method = "dr";
    let mut source_hash = false;
    let mut delay_loop = KA_DELAY_LOOP;
    let mut service_hooks: Vec<(&str, Value)> = Vec::new();
    let mut other: Vec<(&str, Value)> = Vec::new();
    let mut reals = Vec::new();
    let mut defaults = CheckDefaults::default();
    for child in node.children() {
        let k = child.keyword.as_str();
        match k {
            "real_server" => reals.push(child),
            "protocol" => match child.arg(0) {
                Some("TCP") => protocol = "tcp",
                Some("UDP") => protocol = "udp",
                other => ctx.log.left_out(
                    &child.loc,
                    "protocol",
                    format!(
                        "{}: vipd balances TCP and UDP; the service is imported as TCP",
                        other.unwrap_or("")
                    ),
                ),
            },
            "lb_kind" | "lvs_method" => match child.arg(0) {
                Some("DR") => method = "dr",
                Some("TUN") => method = "tunnel",
                other => ctx.log.error(
                    &child.loc,
                    format!(
                        "{k}: expected DR, TUN or NAT, found {:?}",
                        other.unwrap_or("")
                    ),
                ),
            },
            "lb_algo" | "lvs_sched" => match child.arg(0) {
                Some("sh") => {
                    source_hash = true;
                    ctx.log.note(
                        &child.loc,
                        k,
                        "sh: the consistent hash of the client address (hash = \"source\")",
                    );
                }
                Some(a @ ("mh" | "rr" | "wrr")) => ctx.log.note(
                    &child.loc,
                    k,
                    format!(
                        "{a}: the consistent hash (weighted Maglev) of each flow's 5-tuple, \
                         with the servers' weights; every director picks the same server"
                    ),
                ),
                Some(a) => ctx.log.note(
                    &child.loc,
                    k,
                    format!(
                        "{a}: vipd keeps no connection counts; each flow goes by the \
                         consistent hash (weighted Maglev) of its 5-tuple"
                    ),
                ),
                None => ctx.log.error(&child.loc, format!("{k}: needs a scheduler")),
            },
            "persistence_timeout" => {
                source_hash = true;
                ctx.log.note(
                    &child.loc,
                    k,
                    "a client's connections stay on one server by the hash of its address \
                     (hash = \"source\"), without a timeout",
                );
            }
            "delay_loop" => {
                if let Some(d) = timer(child, ctx) {
                    delay_loop = d;
                }
            }
            "connect_timeout" => defaults.timeout = timer(child, ctx),
            "retry" | "nb_get_retry" => defaults.retry = count(child, ctx),
            "delay_before_retry" => defaults.delay_before_retry = timer(child, ctx),
            "quorum" => {
                if let Some(q) = count(child, ctx) {
                    other.push(("quorum", Value::Int(i64::from(q.max(1)))));
                }
            }
            "hysteresis" => {
                if let Some(h) = count(child, ctx) {
                    other.push(("hysteresis", Value::Int(i64::from(h))));
                }
            }
            "alpha" => {
                if boolean(child.arg(0)) == Some(true) {
                    other.push(("alpha", Value::Bool(true)));
                }
            }
            "quorum_up" | "quorum_down" => {
                if let Some(v) = hook(child, script_user, ctx) {
                    service_hooks.push((
                        if k == "quorum_up" {
                            "quorum_up"
                        } else {
                            "quorum_down"
                        },
                        v,
                    ));
                }
            }
            "sorry_server" => match (
                child.arg(0).and_then(|a| a.parse::<IpAddr>().ok()),
                child.arg(1).and_then(|p| int_in(p, 1..=65_535)),
            ) {
                (Some(a), p) => other.push((
                    "sorry_server",
                    Value::Inline(
                        [("address".to_owned(), Value::str(a.to_string()))]
                            .into_iter()
                            .chain(p.map(|p| ("port".to_owned(), Value::Int(p))))
                            .collect(),
                    ),
                )),
                _ => ctx
                    .log
                    .error(&child.loc, "sorry_server: expected an address and a port"),
            },
            _ => match LEFT_OUT.iter().find(|(kw, _)| *kw == k) {
                Some((_, reason)) => ctx.log.left_out(&child.loc, k, *reason),
                None => ctx
                    .log
                    .left_out(&child.loc, k, "unknown keepalived keyword"),
            },
        }
    }
    t.key("protocol", Value::str(protocol));
    t.key("method", Value::str(method));
    t.key("follow", Value::str(follow));
    if source_hash {
        t.key("hash", Value::str("source"));
    }
    for (k, v) in other.into_iter().chain(service_hooks) {
        t.key(k, v);
    }
    let reals: Vec<Value> = reals
        .into_iter()
        .filter_map(|r| real(r, port, delay_loop, &defaults, script_user, ctx))
        .collect();
    if reals.is_empty() {
        ctx.log.left_out(
            &node.loc,
            "virtual_server",
            "no real_server could be carried, and a vipd service needs one",
        );
        return None;
    }
    t.key("real", Value::Array(reals));
    Some(t)
}

/// `connect_timeout`, `retry` and `delay_before_retry` written at the service level
/// (keepalived takes them as the checkers' defaults).
#[derive(Default)]
struct CheckDefaults {
    timeout: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
}

fn real(
    node: &Node,
    vs_port: u16,
    delay_loop: Duration,
    defaults: &CheckDefaults,
    script_user: Option<&str>,
    ctx: &mut Ctx<'_>,
) -> Option<Value> {
    let Some(addr) = node.arg(0).and_then(|a| a.parse::<IpAddr>().ok()) else {
        ctx.log.error(
            &node.loc,
            format!(
                "real_server: expected an IP address, found {:?}",
                node.arg(0).unwrap_or("")
            ),
        );
        return None;
    };
    let mut f: Vec<(String, Value)> = vec![("address".into(), Value::str(addr.to_string()))];
    if let Some(p) = node.arg(1).and_then(|p| int_in(p, 1..=65_535))
        && p != i64::from(vs_port)
    {
        f.push(("port".into(), Value::Int(p)));
    }
    let mut check = None;
    let mut delay_loop = delay_loop;
    for child in node.children() {
        let k = child.keyword.as_str();
        match k {
            "weight" => match child.arg(0).and_then(|w| int_in(w, 0..=65_535)) {
                Some(w) => f.push(("weight".into(), Value::Int(w))),
                None => ctx.log.error(
                    &child.loc,
                    format!(
                        "weight: expected 0..=65535, found {:?}",
                        child.arg(0).unwrap_or("")
                    ),
                ),
            },
            "inhibit_on_failure" => {
                if boolean(child.arg(0)) == Some(true) {
                    f.push(("inhibit_on_failure".into(), Value::Bool(true)));
                }
            }
            "notify_up" | "notify_down" => {
                if let Some(v) = hook(child, script_user, ctx) {
                    f.push((k.into(), v));
                }
            }
            "delay_loop" => {
                if let Some(d) = timer(child, ctx) {
                    delay_loop = d;
                }
            }
            "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" => {
                if check.is_some() {
                    ctx.log.left_out(
                        &child.loc,
                        k,
                        "vipd runs one check per real server; the first is kept",
                    );
                } else {
                    check = Some(child);
                }
            }
            _ => ctx.log.left_out(
                &child.loc,
                k,
                match k {
                    "uthreshold" | "lthreshold" => "vipd keeps no connection counts",
                    "rs_sorry" | "alpha" => "no vipd equivalent for a real server",
                    _ => "unknown keepalived keyword",
                },
            ),
        }
    }
    if let Some(c) = check
        && let Some(v) = checker(c, delay_loop, defaults, ctx)
    {
        f.push(("check".into(), v));
    }
    Some(Value::Inline(f))
}

fn checker(
    node: &Node,
    interval: Duration,
    defaults: &CheckDefaults,
    ctx: &mut Ctx<'_>,
) -> Option<Value> {
    let kind = node.keyword.as_str();
    let mut f: Vec<(String, Value)> = vec![(
        "type".into(),
        Value::str(match kind {
            "TCP_CHECK" => "tcp",
            "HTTP_GET" => "http",
            "SSL_GET" => "https",
            _ => "script",
        }),
    )];
    let mut timeout = defaults.timeout.unwrap_or(KA_CONNECT_TIMEOUT);
    let mut retry = defaults
        .retry
        .unwrap_or(if kind == "TCP_CHECK" || kind == "MISC_CHECK" {
            1
        } else {
            3
        });
    let mut delay = defaults.delay_before_retry.unwrap_or(KA_DELAY_BEFORE_RETRY);
    let mut urls = 0;
    for child in node.children() {
        let k = child.keyword.as_str();
        match k {
            "connect_port" => {
                if let Some(p) = child.arg(0).and_then(|p| int_in(p, 1..=65_535)) {
                    f.push(("port".into(), Value::Int(p)));
                }
            }
            "connect_timeout" | "misc_timeout" => {
                if let Some(d) = timer(child, ctx) {
                    timeout = d;
                }
            }
            "retry" | "nb_get_retry" => {
                if let Some(r) = count(child, ctx) {
                    retry = r;
                }
            }
            "delay_before_retry" => {
                if let Some(d) = timer(child, ctx) {
                    delay = d;
                }
            }
            "misc_path" => match script::line_words(&child.raw) {
                // One string, the command line, split as keepalived splits it (through
                // a shell where it needs one).
                Ok(words) if !words.is_empty() => match script::argv(&words.join(" ")) {
                    Ok(a) if a.needs_shell => f.push((
                        "script".into(),
                        Value::Array(
                            ["/bin/sh", "-c", &words.join(" ")]
                                .into_iter()
                                .map(Value::str)
                                .collect(),
                        ),
                    )),
                    Ok(a) if !a.argv.is_empty() => f.push((
                        "script".into(),
                        Value::Array(a.argv.into_iter().map(Value::str).collect()),
                    )),
                    Ok(_) => ctx.log.error(&child.loc, "misc_path: needs a command"),
                    Err(e) => ctx.log.error(&child.loc, format!("misc_path: {e}")),
                },
                _ => ctx.log.error(&child.loc, "misc_path: needs a command"),
            },
            "url" => {
                urls += 1;
                if urls > 1 {
                    ctx.log.left_out(
                        &child.loc,
                        "url",
                        "vipd's HTTP check fetches one URL; the first is kept",
                    );
                    continue;
                }
                for u in child.children() {
                    match u.keyword.as_str() {
                        "path" => {
                            if let Some(p) = u.arg(0) {
                                f.push(("path".into(), Value::str(p)));
                            }
                        }
                        "digest" => {
                            if let Some(d) = u.arg(0) {
                                f.push(("digest".into(), Value::str(d.to_lowercase())));
                            }
                        }
                        "status_code" => {
                            let codes: Vec<Value> = u
                                .args
                                .iter()
                                .filter_map(|w| int_in(&w.text, 100..=599))
                                .map(Value::Int)
                                .collect();
                            if codes.len() == u.args.len() && !codes.is_empty() {
                                f.push(("status".into(), Value::Array(codes)));
                            } else {
                                ctx.log.left_out(
                                    &u.loc,
                                    "status_code",
                                    "vipd takes status codes one by one (no ranges)",
                                );
                            }
                        }
                        "virtualhost" => {
                            if let Some(h) = u.arg(0) {
                                f.push(("host".into(), Value::str(h)));
                            }
                        }
                        other => {
                            ctx.log
                                .left_out(&u.loc, other, "no vipd equivalent in an HTTP check")
                        }
                    }
                }
            }
            "virtualhost" => {
                if let Some(h) = child.arg(0) {
                    f.push(("host".into(), Value::str(h)));
                }
            }
            other => ctx.log.left_out(
                &child.loc,
                other,
                match other {
                    "bindto" | "bind_port" | "bind_if" | "connect_ip" => {
                        "vipd checks the real server's own address from the host's route"
                    }
                    "misc_dynamic" => "a script's exit code does not set a weight in vipd",
                    "warmup" => "vipd checks every interval from the start",
                    _ => "unknown keepalived keyword",
                },
            ),
        }
    }
    // vipd's bounds.
    let timeout = timeout.clamp(Duration::from_millis(10), Duration::from_secs(300));
    let interval = interval.clamp(Duration::from_millis(100), Duration::from_secs(3600));
    f.push(("interval".into(), Value::duration(interval)));
    f.push(("timeout".into(), Value::duration(timeout)));
    f.push(("retry".into(), Value::Int(i64::from(retry.min(100)))));
    f.push((
        "delay_before_retry".into(),
        Value::duration(delay.max(Duration::from_millis(10))),
    ));
    if kind == "MISC_CHECK" && !f.iter().any(|(k, _)| k == "script") {
        ctx.log.left_out(
            &node.loc,
            kind,
            "MISC_CHECK without misc_path checks nothing",
        );
        return None;
    }
    Some(Value::Inline(f))
}
