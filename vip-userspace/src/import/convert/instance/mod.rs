//! `vrrp_instance` blocks, their sync groups, and the `[[vrrp]]` sections they become.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use super::addr::{self, Vip};
use super::global::{count, flag, timer};
use super::track::{self, TrackIf, TrackRef};
use super::values::{int_in, sanitize_name, valid_ifname, valid_name};
use super::{Ctx, Defs, Globals, keywords};
use crate::config::print::{Table, Value, duration, quote};
use crate::import::parse::Node;
use crate::import::report::Loc;

mod tracking;

const CENTISECOND: Duration = Duration::from_millis(10);
const MAX_V3_INTERVAL: Duration = Duration::from_millis(40_950);
const MAX_GARP_REPEAT: u32 = 100;
const MAX_GARP_INTERVAL: Duration = Duration::from_secs(1);
const MAX_GARP_REFRESH: Duration = Duration::from_secs(3600);
const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(3600);
const AUTH_PASS_LEN: usize = 8;

/// One `vrrp_instance` as read.
#[derive(Debug, Default)]
pub(crate) struct Instance {
    /// The name keepalived knows it by (sync groups name it so).
    source_name: String,
    /// Its vipd name (valid and unique once [`unique_names`] ran).
    name: String,
    loc: Option<Loc>,
    /// Position among the top-level blocks.
    index: usize,
    interface: Option<(String, Loc)>,
    vrid: Option<u8>,
    priority: Option<(u8, Loc)>,
    /// `true` for MASTER.
    state: Option<(bool, Loc)>,
    version: Option<(u8, Loc)>,
    advert: Option<(Duration, Loc)>,
    nopreempt: Option<Loc>,
    preempt_delay: Option<(Duration, Loc)>,
    accept: Option<(bool, Loc)>,
    strict: Option<(bool, Loc)>,
    vmac: bool,
    dont_track_primary: bool,
    vips: Vec<Vip>,
    vips_excluded: Vec<Vip>,
    routes: Vec<Value>,
    rules: Vec<Value>,
    unicast_src: Option<(IpAddr, Loc)>,
    peers: Vec<(IpAddr, Loc)>,
    peer_block: Option<Loc>,
    check_unicast_src: bool,
    auth_type: Option<(String, Loc)>,
    auth_pass: Option<(String, Loc)>,
    track_ifs: Vec<TrackIf>,
    track_scripts: Vec<TrackRef>,
    track_files: Vec<TrackRef>,
    notify: Vec<(&'static str, Value)>,
    garp_delay: Option<(Duration, Loc)>,
    garp_repeat: Option<(u32, Loc)>,
    garp_refresh: Option<(Duration, Loc)>,
    garp_refresh_repeat: Option<(u32, Loc)>,
    sync_group: Option<String>,
    sync_tracking_weight: bool,
}

pub(crate) fn read(
    node: &Node,
    index: usize,
    script_user: Option<&str>,
    ctx: &mut Ctx<'_>,
) -> Option<Instance> {
    let Some(name) = node.arg(0) else {
        ctx.log.error(&node.loc, "vrrp_instance: needs a name");
        return None;
    };
    let mut i = Instance {
        source_name: name.to_owned(),
        name: name.to_owned(),
        loc: Some(node.loc.clone()),
        index,
        ..Instance::default()
    };
    for child in node.children() {
        i.keyword(child, script_user, ctx);
    }
    Some(i)
}

impl Instance {
    fn keyword(&mut self, child: &Node, script_user: Option<&str>, ctx: &mut Ctx<'_>) {
        let loc = child.loc.clone();
        let arg = child.arg(0);
        let keyword = child.keyword.as_str();
        let bad = |ctx: &mut Ctx<'_>, expected: &str| {
            ctx.log.error(
                &loc,
                format!(
                    "{keyword}: expected {expected}, found {:?}",
                    arg.unwrap_or("")
                ),
            );
        };
        match keyword {
            "state" => match arg {
                Some("MASTER") => self.state = Some((true, loc)),
                Some("BACKUP") => {
                    if !self.state.as_ref().is_some_and(|(m, _)| *m) {
                        self.state = Some((false, loc));
                    }
                }
                _ => bad(ctx, "MASTER or BACKUP"),
            },
            "interface" => match arg {
                Some(name) if valid_ifname(name) => self.interface = Some((name.to_owned(), loc)),
                _ => bad(
                    ctx,
                    "an interface name (1 to 15 bytes, no '/', ':' or blanks)",
                ),
            },
            "virtual_router_id" => match arg.and_then(|a| int_in(a, 1..=255)) {
                Some(v) => self.vrid = Some(v as u8),
                None => bad(ctx, "a number in 1..=255"),
            },
            "priority" => match arg.and_then(|a| int_in(a, 1..=255)) {
                Some(v) => self.priority = Some((v as u8, loc)),
                None => bad(ctx, "a number in 1..=255"),
            },
            "version" => match arg.and_then(|a| int_in(a, 2..=3)) {
                Some(v) => self.version = Some((v as u8, loc)),
                None => bad(ctx, "2 or 3"),
            },
            "advert_int" => match arg.and_then(super::values::seconds) {
                Some(d) if d >= CENTISECOND && d <= Duration::from_secs(255) => {
                    self.advert = Some((d, loc));
                }
                _ => bad(ctx, "seconds in 0.01..=255"),
            },
            "nopreempt" => self.nopreempt = Some(loc),
            "preempt" => self.nopreempt = None,
            "preempt_delay" => match arg.and_then(super::values::seconds) {
                Some(d) if d <= Duration::from_secs(1000) => self.preempt_delay = Some((d, loc)),
                _ => bad(ctx, "seconds in 0..=1000"),
            },
            "accept" => self.accept = Some((true, loc)),
            "no_accept" => self.accept = Some((false, loc)),
            "strict_mode" => {
                if let Some(on) = flag(child, ctx) {
                    self.strict = Some((on, loc));
                }
            }
            "use_vmac" => {
                self.vmac = true;
                let extra: Vec<&str> = child.args.iter().map(|w| w.text.as_str()).collect();
                if !extra.is_empty() {
                    ctx.log.left_out(
                        &loc,
                        "use_vmac",
                        format!(
                            "{}: vipd creates no macvlan interface; it answers with the standard \
                             virtual MAC 00:00:5e:00:01:VRID on the instance's own interface",
                            extra.join(" ")
                        ),
                    );
                }
            }
            "vmac_xmit_base" => ctx.log.note(
                &loc,
                "vmac_xmit_base",
                "vipd creates no macvlan interface, so adverts always go out on the instance's \
                 own interface",
            ),
            "native_ipv6" => ctx.log.note(
                &loc,
                "native_ipv6",
                "deprecated in keepalived: the VIPs decide the family (IPv6 is always VRRPv3)",
            ),
            "dont_track_primary" => self.dont_track_primary = true,
            "track_interface" => self.track_ifs.extend(track::track_interfaces(child, ctx)),
            "track_script" => self.track_scripts.extend(track::track_refs(child, ctx)),
            "track_file" => self.track_files.extend(track::track_refs(child, ctx)),
            "mcast_src_ip" | "unicast_src_ip" => match arg.and_then(|a| a.parse::<IpAddr>().ok()) {
                Some(a) => self.unicast_src = Some((a, loc)),
                None => bad(ctx, "an IP address"),
            },
            "unicast_peer" => {
                self.peer_block = Some(loc.clone());
                if child.block.is_none() {
                    ctx.log.error(&loc, "unicast_peer: expected '{' after it");
                }
                for line in child.children() {
                    let Ok(addr) = line.keyword.parse::<IpAddr>() else {
                        ctx.log.error(
                            &line.loc,
                            format!("unicast_peer: {:?} is not an IP address", line.keyword),
                        );
                        continue;
                    };
                    let options: Vec<&str> = line.args.iter().map(|w| w.text.as_str()).collect();
                    if !options.is_empty() {
                        // min_ttl / max_ttl also turn on check_unicast_src.
                        self.check_unicast_src = true;
                        ctx.log.left_out(
                            &line.loc,
                            "unicast_peer",
                            format!(
                                "{}: vipd checks no TTL range on unicast adverts (it admits only \
                                 allowed_peers, written from these peers)",
                                options.join(" ")
                            ),
                        );
                    }
                    if self.peers.iter().any(|(a, _)| *a == addr) {
                        ctx.log.note(
                            &line.loc,
                            "unicast_peer",
                            format!("{addr} is listed twice; written once"),
                        );
                        continue;
                    }
                    self.peers.push((addr, line.loc.clone()));
                }
            }
            "check_unicast_src" => self.check_unicast_src = true,
            "unicast_fault_no_peer" => ctx.log.left_out(
                &loc,
                "unicast_fault_no_peer",
                "vipd advertises by multicast when no unicast_peers are listed",
            ),
            "authentication" => {
                if child.block.is_none() {
                    ctx.log.error(&loc, "authentication: expected '{' after it");
                }
                for line in child.children() {
                    match line.keyword.as_str() {
                        "auth_type" => match line.arg(0) {
                            Some(t @ ("PASS" | "AH")) => {
                                self.auth_type = Some((t.to_owned(), line.loc.clone()));
                            }
                            other => ctx.log.error(
                                &line.loc,
                                format!(
                                    "auth_type: expected PASS or AH, found {:?}",
                                    other.unwrap_or("")
                                ),
                            ),
                        },
                        "auth_pass" => match line.arg(0) {
                            Some(p) => self.auth_pass = Some((p.to_owned(), line.loc.clone())),
                            None => ctx.log.error(&line.loc, "auth_pass: needs a password"),
                        },
                        other => ctx
                            .log
                            .left_out(&line.loc, other, "unknown keepalived keyword"),
                    }
                }
            }
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                if child.block.is_none() {
                    ctx.log
                        .error(&loc, format!("{keyword}: expected '{{' after it"));
                }
                for line in child.children() {
                    if let Some(vip) = addr::vip(line, ctx) {
                        if keyword == "virtual_ipaddress" {
                            self.vips.push(vip);
                        } else {
                            self.vips_excluded.push(vip);
                        }
                    }
                }
            }
            "no_virtual_ipaddress" => ctx.log.note(
                &loc,
                "no_virtual_ipaddress",
                "vipd requires at least one VIP; an instance without one is left out",
            ),
            "virtual_routes" | "virtual_rules" => {
                if child.block.is_none() {
                    ctx.log
                        .error(&loc, format!("{keyword}: expected '{{' after it"));
                }
                for line in child.children() {
                    if keyword == "virtual_routes" {
                        self.routes.extend(addr::route(line, ctx));
                    } else {
                        self.rules.extend(addr::rule(line, ctx));
                    }
                }
            }
            k @ ("notify" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop") => {
                let key = track::notify_key(k);
                if let Some(value) = track::hook(child, script_user, ctx) {
                    if self.notify.iter().any(|(existing, _)| *existing == key) {
                        ctx.log.note(
                            &loc,
                            k,
                            "already set above; keepalived keeps the first, so does the import",
                        );
                    } else {
                        self.notify.push((key, value));
                    }
                }
            }
            "garp_master_delay" => self.garp_delay = timer(child, ctx).map(|d| (d, loc)),
            "garp_master_repeat" => self.garp_repeat = count(child, ctx).map(|n| (n, loc)),
            "garp_master_refresh" => self.garp_refresh = timer(child, ctx).map(|d| (d, loc)),
            "garp_master_refresh_repeat" => {
                self.garp_refresh_repeat = count(child, ctx).map(|n| (n, loc));
            }
            "debug" => ctx
                .log
                .note(&loc, "debug", "not implemented in keepalived either"),
            other => match keywords::reason(keywords::INSTANCE, other) {
                Some(reason) => ctx.log.left_out(&loc, other, reason),
                None => ctx.log.left_out(&loc, other, "unknown keepalived keyword"),
            },
        }
    }

    fn loc(&self) -> Loc {
        self.loc.clone().unwrap_or_else(|| Loc {
            file: "?".into(),
            line: 0,
        })
    }

    /// The `[[vrrp]]` section; `None` when the instance cannot be carried over (reported).
    pub(crate) fn finish(self, globals: &Globals, defs: &Defs, ctx: &mut Ctx<'_>) -> Option<Table> {
        let loc = self.loc();
        let what = format!("vrrp_instance {}", self.source_name);
        let Some((interface, _)) = self.interface.clone() else {
            ctx.log.left_out(
                &loc,
                "vrrp_instance",
                format!(
                    "{}: no interface; vipd needs one, so the instance is left out",
                    self.source_name
                ),
            );
            return None;
        };
        let Some(vrid) = self.vrid else {
            ctx.log.left_out(
                &loc,
                "vrrp_instance",
                format!(
                    "{}: no virtual_router_id (keepalived refuses it too); instance left out",
                    self.source_name
                ),
            );
            return None;
        };
        let Some(first) = self.vips.first() else {
            ctx.log.left_out(
                &loc,
                "vrrp_instance",
                format!(
                    "{}: no virtual_ipaddress; a vipd instance advertises at least one address, so \
                     it is left out",
                    self.source_name
                ),
            );
            return None;
        };
        let v6 = first.addr.is_ipv6();
        let family = if v6 { "IPv6" } else { "IPv4" };
        let same_family = |list: &[Vip], key: &str, ctx: &mut Ctx<'_>| -> Vec<Vip> {
            let mut out = Vec::new();
            for vip in list {
                if vip.addr.is_ipv6() == v6 {
                    out.push(vip.clone());
                } else {
                    ctx.log.left_out(
                        &vip.loc,
                        key,
                        format!(
                            "{}: a vipd instance serves one address family and this one's is {family}; \
                             add a second [[vrrp]] section for it",
                            vip.addr
                        ),
                    );
                }
            }
            out
        };
        let vips = same_family(&self.vips, "virtual_ipaddress", ctx);
        let vips_excluded = same_family(&self.vips_excluded, "virtual_ipaddress_excluded", ctx);

        let strict = self
            .strict
            .as_ref()
            .map(|(on, l)| (*on, l.clone()))
            .or_else(|| globals.strict.clone().map(|l| (true, l)))
            .filter(|(on, _)| *on);

        // Version: the instance's, else global vrrp_version, else keepalived's 2; IPv6 is 3.
        let version = match (&self.version, v6) {
            (Some((2, l)), true) => {
                ctx.log.left_out(
                    l,
                    "version",
                    "VRRPv2 (RFC 3768) has no IPv6; vipd runs this IPv6 instance as version 3",
                );
                3
            }
            (Some((v, _)), _) => *v,
            (None, true) => 3,
            (None, false) => globals.vrrp_version.as_ref().map_or(2, |(v, _)| *v),
        };

        // Priority: keepalived derives 255 from state MASTER when none is written.
        let master = self.state.as_ref().is_some_and(|(m, _)| *m);
        let priority = match (&self.priority, &self.state) {
            (Some((p, _)), _) => Some(*p),
            (None, Some((true, l))) => {
                ctx.log.note(
                    l,
                    "state",
                    "MASTER with no priority: keepalived makes the instance the address owner, \
                     so priority = 255",
                );
                Some(255)
            }
            _ => None,
        };
        let owner = priority == Some(255);
        match &self.state {
            Some((true, l)) if !owner => ctx.log.left_out(
                l,
                "state",
                "MASTER is advisory for a non-owner: keepalived still waits for the master-down \
                 timer (only a shorter one after a fault); vipd starts every non-owner as backup",
            ),
            Some((false, l)) if owner => ctx.log.left_out(
                l,
                "state",
                "BACKUP with priority 255: keepalived waits the master-down interval before \
                 taking over; a vipd owner takes over at once (RFC 5798 section 6.4.1)",
            ),
            Some((true, l)) => ctx.log.note(
                l,
                "state",
                "MASTER with priority 255: an owner starts as master in vipd too",
            ),
            Some((false, l)) => ctx.log.note(
                l,
                "state",
                "BACKUP: vipd starts every non-owner as backup too",
            ),
            None => {}
        }

        // Preemption, as vrrp_complete_instance() settles it.
        let mut preempt = true;
        if let Some(l) = &self.nopreempt {
            if owner {
                ctx.log.note(
                    l,
                    "nopreempt",
                    "keepalived ignores it for an address owner (priority 255); so does vipd",
                );
            } else if master {
                ctx.log.note(
                    l,
                    "nopreempt",
                    "keepalived ignores it with state MASTER; so does the import",
                );
            } else {
                preempt = false;
            }
        }
        let mut preempt_delay = None;
        if let Some((d, l)) = &self.preempt_delay {
            if d.is_zero() {
            } else if master {
                ctx.log.note(
                    l,
                    "preempt_delay",
                    "keepalived ignores it with state MASTER; so does the import",
                );
            } else if strict.is_some() {
                ctx.log.note(
                    l,
                    "preempt_delay",
                    "keepalived ignores it in strict mode; so does the import",
                );
            } else if !preempt {
                ctx.log.note(
                    l,
                    "preempt_delay",
                    "keepalived ignores it with nopreempt; so does the import",
                );
            } else {
                preempt_delay = Some((*d).min(MAX_PREEMPT_DELAY));
            }
        }

        // Accept mode: on unless strict mode, always for an owner.
        let accept = match (&self.accept, &strict) {
            (Some((true, l)), Some(_)) if version == 2 && !owner => {
                ctx.log.note(
                    l,
                    "accept",
                    "keepalived turns accept mode off for VRRPv2 in strict mode: accept = false",
                );
                Some(false)
            }
            (Some((a, _)), _) => Some(*a),
            (None, Some(_)) if !owner => Some(false),
            _ => None,
        };

        let advert = self.advert_interval(version, ctx);

        // Authentication: simple password, VRRPv2 only.
        let mut auth_pass = None;
        match (&self.auth_type, &self.auth_pass) {
            (Some((t, l)), _) if t == "AH" => ctx.log.left_out(
                l,
                "auth_type",
                "AH (IPsec authentication header) is not supported by vipd; use allowed_peers",
            ),
            (Some((_, l)), _) if version == 3 => ctx.log.note(
                l,
                "authentication",
                "keepalived ignores authentication with VRRPv3 (RFC 5798 removed it); so does vipd",
            ),
            (Some((_, l)), _) if strict.is_some() => ctx.log.note(
                l,
                "authentication",
                "keepalived ignores authentication in strict mode; so does the import",
            ),
            (Some(_), Some((p, l))) if !p.is_empty() => {
                let mut end = p.len().min(AUTH_PASS_LEN);
                while !p.is_char_boundary(end) {
                    end -= 1;
                }
                if end < p.len() {
                    ctx.log.note(
                        l,
                        "auth_pass",
                        format!(
                            "keepalived uses only the first {AUTH_PASS_LEN} bytes: {:?}",
                            &p[..end]
                        ),
                    );
                }
                auth_pass = Some(p[..end].to_owned());
            }
            (Some((_, l)), _) => ctx.log.note(
                l,
                "authentication",
                "no auth_pass, so keepalived ignores it; so does the import",
            ),
            (None, Some((_, l))) => ctx.log.note(
                l,
                "auth_pass",
                "no auth_type PASS, so keepalived sends no password; so does the import",
            ),
            (None, None) => {}
        }

        // Unicast peers of this family.
        let mut peers = Vec::new();
        for (addr, l) in &self.peers {
            if addr.is_ipv6() == v6 {
                peers.push(addr.to_string());
            } else {
                ctx.log.left_out(
                    l,
                    "unicast_peer",
                    format!("{addr} is not {family}, the family of this instance's VIPs"),
                );
            }
        }
        let unicast_src = match &self.unicast_src {
            Some((a, _)) if a.is_ipv6() == v6 => Some(a.to_string()),
            Some((a, l)) => {
                ctx.log.left_out(
                    l,
                    "unicast_src_ip",
                    format!("{a} is not {family}, the family of this instance's VIPs"),
                );
                None
            }
            None => None,
        };
        let check_src = self.check_unicast_src || globals.check_unicast_src;

        // Tracking, with keepalived's rule: in a sync group (without
        // sync_group_tracking_weight) and for an address owner, weights are ignored.
        let why = if owner {
            Some("an address owner (priority 255)")
        } else if self.sync_group.is_some() && !self.sync_tracking_weight {
            Some("a sync group member (no sync_group_tracking_weight)")
        } else {
            None
        };
        let track_interfaces = self.track_interfaces_out(why, owner, ctx);
        let track_scripts = self.track_scripts_out(defs, why, ctx);
        let track_files = self.track_files_out(defs, why, ctx);

        // Announcements.
        let garp = self.garp(globals, defs, &interface, v6, ctx);

        let mut t = Table::new("[[vrrp]]");
        t.comments.push(format!("from {loc} {what}"));
        t.key("name", Value::str(&self.name));
        t.key("interface", Value::str(&interface));
        t.key("vrid", Value::Int(i64::from(vrid)));
        if let Some(p) = priority {
            t.key("priority", Value::Int(i64::from(p)));
        }
        if version == 2 || self.version.is_some() {
            t.key("version", Value::Int(i64::from(version)));
        }
        if let Some(d) = advert {
            t.key("advert_interval", Value::duration(d));
        }
        if !preempt {
            t.key("preempt", Value::Bool(false));
        }
        if let Some(d) = preempt_delay {
            t.key("preempt_delay", Value::duration(d));
        }
        if let Some(a) = accept {
            t.key("accept", Value::Bool(a));
        }
        if self.vmac {
            t.key("vmac", Value::Bool(true));
        }
        self.check_labels(&vips, &interface, ctx);
        self.check_labels(&vips_excluded, &interface, ctx);
        let label_ok = |v: &Vip| label_fits(v, &interface);
        t.key(
            "vips",
            Value::Array(vips.iter().map(|v| strip_label(v, label_ok(v))).collect()),
        );
        if !vips_excluded.is_empty() {
            t.key(
                "vips_excluded",
                Value::Array(
                    vips_excluded
                        .iter()
                        .map(|v| strip_label(v, label_ok(v)))
                        .collect(),
                ),
            );
        }
        if !self.routes.is_empty() {
            t.key("virtual_routes", Value::Array(self.routes.clone()));
        }
        if !self.rules.is_empty() {
            t.key("virtual_rules", Value::Array(self.rules.clone()));
        }
        if let Some(src) = unicast_src {
            t.key("unicast_src_ip", Value::str(src));
        }
        if !peers.is_empty() {
            t.key("unicast_peers", Value::strs(&peers));
            if check_src {
                t.key("allowed_peers", Value::strs(&peers));
            } else {
                let list: Vec<String> = peers.iter().map(|p| quote(p)).collect();
                t.comment(
                    "keepalived admitted adverts from any source; to drop all but these peers' in XDP:",
                );
                t.comment(format!("allowed_peers = [{}]", list.join(", ")));
            }
        } else if check_src && let Some(l) = &self.peer_block {
            ctx.log.note(
                l,
                "check_unicast_src",
                "no unicast peers to admit; nothing written",
            );
        }
        if let Some(p) = auth_pass {
            t.key("auth_pass", Value::str(p));
        }
        if self.dont_track_primary {
            t.key("dont_track_primary", Value::Bool(true));
        }
        if !track_interfaces.is_empty() {
            t.key("track_interfaces", Value::Array(track_interfaces));
        }
        if !track_scripts.is_empty() {
            t.key("track_scripts", Value::Array(track_scripts));
        }
        if !track_files.is_empty() {
            t.key("track_files", Value::Array(track_files));
        }
        for key in [
            "notify",
            "notify_master",
            "notify_backup",
            "notify_fault",
            "notify_stop",
        ] {
            if let Some((_, v)) = self.notify.iter().find(|(k, _)| *k == key) {
                t.key(key, v.clone());
            }
        }
        if let Some(group) = &self.sync_group {
            t.key("sync_group", Value::str(group));
        }
        for (key, value) in garp {
            t.key(key, value);
        }
        Some(t)
    }

    fn advert_interval(&self, version: u8, ctx: &mut Ctx<'_>) -> Option<Duration> {
        let (d, l) = self.advert.as_ref()?;
        let d = *d;
        if version == 2 {
            if d.subsec_nanos() != 0 {
                let whole = Duration::from_secs(d.as_secs().max(1));
                ctx.log.left_out(
                    l,
                    "advert_int",
                    format!(
                        "{}: VRRPv2 counts whole seconds; written as {}",
                        duration(d),
                        duration(whole)
                    ),
                );
                return Some(whole);
            }
            return Some(d);
        }
        let centis = Duration::from_millis(d.as_millis() as u64 / 10 * 10);
        if centis > MAX_V3_INTERVAL {
            ctx.log.left_out(
                l,
                "advert_int",
                format!(
                    "{}: VRRPv3 carries at most 40.95s; written as 40950ms",
                    duration(d)
                ),
            );
            return Some(MAX_V3_INTERVAL);
        }
        if centis != d {
            ctx.log.note(
                l,
                "advert_int",
                format!(
                    "{}: VRRPv3 carries centiseconds, so keepalived sends {}",
                    duration(d),
                    duration(centis)
                ),
            );
        }
        Some(centis)
    }

    fn check_labels(&self, vips: &[Vip], interface: &str, ctx: &mut Ctx<'_>) {
        for vip in vips {
            if !label_fits(vip, interface) {
                let dev = vip.dev.as_deref().unwrap_or(interface);
                ctx.log.left_out(
                    &vip.loc,
                    "label",
                    format!(
                        "{}: label {} must be {dev} or start with \"{dev}:\" (ifconfig's alias rule, \
                         which vipd enforces); not written",
                        vip.addr,
                        vip.label.as_deref().unwrap_or("")
                    ),
                );
            }
        }
    }
}

fn label_fits(vip: &Vip, interface: &str) -> bool {
    let dev = vip.dev.as_deref().unwrap_or(interface);
    match &vip.label {
        None => true,
        Some(l) => {
            l == dev
                || l.strip_prefix(dev)
                    .is_some_and(|rest| rest.starts_with(':'))
        }
    }
}

/// The VIP's value without its label when the label cannot be written.
fn strip_label(vip: &Vip, label_ok: bool) -> Value {
    match (&vip.value, label_ok) {
        (Value::Inline(pairs), false) => {
            let pairs: Vec<(String, Value)> = pairs
                .iter()
                .filter(|(k, _)| k != "label")
                .cloned()
                .collect();
            if pairs.len() == 1 {
                pairs[0].1.clone()
            } else {
                Value::Inline(pairs)
            }
        }
        (value, _) => value.clone(),
    }
}

/// Applies `vrrp_sync_group`s to their members; returns the `[sync_groups.NAME]` tables.
pub(crate) fn join_sync_groups(
    instances: &mut [Instance],
    defs: &Defs,
    ctx: &mut Ctx<'_>,
) -> Vec<Table> {
    let mut tables = Vec::new();
    let mut names = BTreeSet::new();
    for group in &defs.sync_groups {
        let gloc = group.loc.clone().unwrap_or_else(|| Loc {
            file: ctx.main_file(),
            line: 0,
        });
        let mut name = group.name.clone();
        if !valid_name(&name) {
            name = sanitize_name(&name);
            ctx.log.note(
                &gloc,
                "vrrp_sync_group",
                format!("{:?} is not a vipd name: written as {name:?}", group.name),
            );
        }
        if !names.insert(name.clone()) {
            ctx.log.left_out(
                &gloc,
                "vrrp_sync_group",
                format!("{name} is already defined; this one is left out"),
            );
            continue;
        }
        // Group-level tracking, read once.
        let mut ifs = Vec::new();
        let mut scripts = Vec::new();
        let mut files = Vec::new();
        for node in &group.track_interfaces {
            ifs.extend(track::track_interfaces(node, ctx));
        }
        for node in &group.track_scripts {
            scripts.extend(track::track_refs(node, ctx));
        }
        for node in &group.track_files {
            files.extend(track::track_refs(node, ctx));
        }
        let mut members = 0;
        for (member, loc) in &group.members {
            let Some(instance) = instances.iter_mut().find(|i| i.source_name == *member) else {
                ctx.log.note(
                    loc,
                    "group",
                    format!(
                        "no vrrp_instance {member}, so keepalived ignores it; so does the import"
                    ),
                );
                continue;
            };
            if let Some(other) = &instance.sync_group {
                ctx.log.left_out(
                    loc,
                    "group",
                    format!(
                        "{member} is already in sync group {other}; an instance is in one group"
                    ),
                );
                continue;
            }
            instance.sync_group = Some(name.clone());
            instance.sync_tracking_weight = group.tracking_weight;
            instance.track_ifs.extend(ifs.iter().cloned());
            instance.track_scripts.extend(scripts.iter().cloned());
            instance.track_files.extend(files.iter().cloned());
            members += 1;
        }
        if members == 0 {
            ctx.log.note(
                &gloc,
                "vrrp_sync_group",
                format!("{} has no member instance; nothing written", group.name),
            );
            continue;
        }
        if !group.notify.is_empty() {
            let mut t = Table::named("sync_groups", &name);
            t.comments
                .push(format!("from {gloc} vrrp_sync_group {}", group.name));
            for key in [
                "notify",
                "notify_master",
                "notify_backup",
                "notify_fault",
                "notify_stop",
            ] {
                if let Some((_, v)) = group.notify.iter().find(|(k, _)| *k == key) {
                    t.key(key, v.clone());
                }
            }
            tables.push(t);
        }
    }
    tables
}

/// Makes every instance name a valid, unique vipd name.
pub(crate) fn unique_names(instances: &mut [Instance], ctx: &mut Ctx<'_>) {
    let mut taken = BTreeSet::new();
    for instance in instances.iter_mut() {
        let mut name = if valid_name(&instance.name) {
            instance.name.clone()
        } else {
            sanitize_name(&instance.name)
        };
        let base = name.clone();
        let mut n = 2;
        while taken.contains(&name) {
            let suffix = format!("-{n}");
            let keep = 32 - suffix.len();
            name = format!("{}{suffix}", &base[..base.len().min(keep)]);
            n += 1;
        }
        if name != instance.source_name {
            let loc = instance.loc();
            ctx.log.note(
                &loc,
                "vrrp_instance",
                format!(
                    "{:?} is not a valid or unique vipd name (1 to 32 of A-Z a-z 0-9 _ . -): \
                     written as {name:?}",
                    instance.source_name
                ),
            );
        }
        taken.insert(name.clone());
        instance.name = name;
    }
}
