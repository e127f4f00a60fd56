//! `vrrp_instance` blocks, their sync groups, and the `[[vrrp]]` sections they become.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use super::options::dispatch;
use super::track::{self, TrackIf, TrackRef};
use super::values::{sanitize_name, valid_name};
use super::vip::Vip;
use super::{Ctx, Defs, Globals};
use crate::config::print::{Table, Value, duration, quote};
use crate::import::parse::Node;
use crate::import::report::Loc;

mod keywords;
mod tracking;

use keywords::{KEYWORDS, Reading};

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
    track_processes: Vec<TrackRef>,
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
    /// One line of the block, through the keyword table.
    fn keyword(&mut self, child: &Node, script_user: Option<&str>, ctx: &mut Ctx<'_>) {
        if let Some(read) = dispatch(KEYWORDS, child, ctx) {
            read(self, child, &mut Reading { ctx, script_user });
        }
    }

    fn loc(&self) -> Loc {
        self.loc.clone().unwrap_or_else(|| Loc {
            file: "?".into(),
            line: 0,
        })
    }

    /// The `[[vrrp]]` section; `None` when the instance cannot be carried over (reported).
    /// keepalived's `vrrp_complete_instance()` rules are applied step by step: what vipd
    /// needs, the family, strict mode, version, priority and state, preemption, accept
    /// mode, authentication, peers, tracking, announcements; then the keys are written.
    /// Its vipd name and the addresses of its `virtual_ipaddress` (a `virtual_server`
    /// on one of them follows it).
    pub(crate) fn name_and_vips(&self) -> (String, Vec<IpAddr>) {
        // Those of the first address's family: the others are left out with a report.
        let v4 = self.vips.first().is_some_and(|v| v.addr.is_ipv4());
        let vips = self
            .vips
            .iter()
            .map(|v| v.addr)
            .filter(|a| a.is_ipv4() == v4)
            .collect();
        (self.name.clone(), vips)
    }

    pub(crate) fn finish(self, globals: &Globals, defs: &Defs, ctx: &mut Ctx<'_>) -> Option<Table> {
        let (interface, vrid, v6) = self.required(ctx)?;
        let vips = self.same_family(&self.vips, "virtual_ipaddress", v6, ctx);
        let vips_excluded =
            self.same_family(&self.vips_excluded, "virtual_ipaddress_excluded", v6, ctx);
        let strict = self
            .strict
            .as_ref()
            .map(|(on, l)| (*on, l.clone()))
            .or_else(|| globals.strict.clone().map(|l| (true, l)))
            .filter(|(on, _)| *on)
            .is_some();
        let version = self.version(v6, globals, ctx);
        let priority = self.priority(ctx);
        let owner = priority == Some(255);
        self.report_state(owner, ctx);
        let master = self.state.as_ref().is_some_and(|(m, _)| *m);
        let (preempt, preempt_delay) = self.preemption(owner, master, strict, ctx);
        let accept = self.accept(version, owner, strict, ctx);
        let advert = self.advert_interval(version, ctx);
        let auth_pass = self.auth_pass(version, strict, ctx);
        let (peers, unicast_src) = self.unicast(v6, ctx);
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
        let track_processes = self.track_processes_out(defs, ctx);
        let garp = self.garp(globals, defs, &interface, v6, ctx);

        let mut t = Table::new("[[vrrp]]");
        t.comments.push(format!(
            "from {} vrrp_instance {}",
            self.loc(),
            self.source_name
        ));
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
        self.write_vips(&mut t, &vips, &vips_excluded, &interface, ctx);
        if !self.routes.is_empty() {
            t.key("virtual_routes", Value::Array(self.routes.clone()));
        }
        if !self.rules.is_empty() {
            t.key("virtual_rules", Value::Array(self.rules.clone()));
        }
        if let Some(src) = unicast_src {
            t.key("unicast_src_ip", Value::str(src));
        }
        self.write_peers(&mut t, &peers, check_src, ctx);
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
        if !track_processes.is_empty() {
            t.key("track_processes", Value::Array(track_processes));
        }
        write_hooks(&mut t, &self.notify);
        if let Some(group) = &self.sync_group {
            t.key("sync_group", Value::str(group));
        }
        for (key, value) in garp {
            t.key(key, value);
        }
        Some(t)
    }

    /// The interface, VRID and family (of the first VIP), without which an instance is
    /// left out.
    fn required(&self, ctx: &mut Ctx<'_>) -> Option<(String, u8, bool)> {
        let loc = self.loc();
        let mut missing = |why: &str| {
            ctx.log.left_out(
                &loc,
                "vrrp_instance",
                format!("{}: {why}", self.source_name),
            );
        };
        let Some((interface, _)) = self.interface.clone() else {
            missing("no interface; vipd needs one, so the instance is left out");
            return None;
        };
        let Some(vrid) = self.vrid else {
            missing("no virtual_router_id (keepalived refuses it too); instance left out");
            return None;
        };
        let Some(first) = self.vips.first() else {
            missing(
                "no virtual_ipaddress; a vipd instance advertises at least one address, so \
                 it is left out",
            );
            return None;
        };
        Some((interface, vrid, first.addr.is_ipv6()))
    }

    /// The VIPs of `list` in the instance's family; the others are reported.
    fn same_family(&self, list: &[Vip], key: &str, v6: bool, ctx: &mut Ctx<'_>) -> Vec<Vip> {
        let mut out = Vec::new();
        for vip in list {
            if vip.addr.is_ipv6() == v6 {
                out.push(vip.clone());
            } else {
                ctx.log.left_out(
                    &vip.loc,
                    key,
                    format!(
                        "{}: a vipd instance serves one address family and this one's is {}; \
                         add a second [[vrrp]] section for it",
                        vip.addr,
                        family(v6)
                    ),
                );
            }
        }
        out
    }

    /// The instance's version, else global `vrrp_version`, else keepalived's 2; IPv6 is 3.
    fn version(&self, v6: bool, globals: &Globals, ctx: &mut Ctx<'_>) -> u8 {
        match (&self.version, v6) {
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
        }
    }

    /// The priority written, or 255 (the address owner) that keepalived derives from
    /// `state MASTER` when none is.
    fn priority(&self, ctx: &mut Ctx<'_>) -> Option<u8> {
        match (&self.priority, &self.state) {
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
        }
    }

    /// What `state` means in vipd, which starts every non-owner as backup.
    fn report_state(&self, owner: bool, ctx: &mut Ctx<'_>) {
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
    }

    /// Preemption and its delay, as `vrrp_complete_instance()` settles them.
    fn preemption(
        &self,
        owner: bool,
        master: bool,
        strict: bool,
        ctx: &mut Ctx<'_>,
    ) -> (bool, Option<Duration>) {
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
            let ignored = if d.is_zero() {
                None
            } else if master {
                Some("keepalived ignores it with state MASTER; so does the import")
            } else if strict {
                Some("keepalived ignores it in strict mode; so does the import")
            } else if !preempt {
                Some("keepalived ignores it with nopreempt; so does the import")
            } else {
                preempt_delay = Some((*d).min(MAX_PREEMPT_DELAY));
                None
            };
            if let Some(why) = ignored {
                ctx.log.note(l, "preempt_delay", why);
            }
        }
        (preempt, preempt_delay)
    }

    /// Accept mode: on unless strict mode, always for an owner.
    fn accept(&self, version: u8, owner: bool, strict: bool, ctx: &mut Ctx<'_>) -> Option<bool> {
        match &self.accept {
            Some((true, l)) if strict && version == 2 && !owner => {
                ctx.log.note(
                    l,
                    "accept",
                    "keepalived turns accept mode off for VRRPv2 in strict mode: accept = false",
                );
                Some(false)
            }
            Some((a, _)) => Some(*a),
            None if strict && !owner => Some(false),
            None => None,
        }
    }

    /// The simple password, VRRPv2 only, cut to the 8 bytes keepalived uses.
    fn auth_pass(&self, version: u8, strict: bool, ctx: &mut Ctx<'_>) -> Option<String> {
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
            (Some((_, l)), _) if strict => ctx.log.note(
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
                return Some(p[..end].to_owned());
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
        None
    }

    /// Unicast peers and source of the instance's family; the others are reported.
    fn unicast(&self, v6: bool, ctx: &mut Ctx<'_>) -> (Vec<String>, Option<String>) {
        let family = family(v6);
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
        (peers, unicast_src)
    }

    /// `vips` and `vips_excluded`, each without a label vipd would refuse (reported).
    fn write_vips(
        &self,
        t: &mut Table,
        vips: &[Vip],
        vips_excluded: &[Vip],
        interface: &str,
        ctx: &mut Ctx<'_>,
    ) {
        self.check_labels(vips, interface, ctx);
        self.check_labels(vips_excluded, interface, ctx);
        let shown = |list: &[Vip]| {
            Value::Array(
                list.iter()
                    .map(|v| strip_label(v, label_fits(v, interface)))
                    .collect(),
            )
        };
        t.key("vips", shown(vips));
        if !vips_excluded.is_empty() {
            t.key("vips_excluded", shown(vips_excluded));
        }
    }

    /// `unicast_peers`, and `allowed_peers` when keepalived checked the source
    /// (`check_unicast_src`), else the line to add as a comment.
    fn write_peers(&self, t: &mut Table, peers: &[String], check_src: bool, ctx: &mut Ctx<'_>) {
        if !peers.is_empty() {
            t.key("unicast_peers", Value::strs(peers));
            if check_src {
                t.key("allowed_peers", Value::strs(peers));
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

fn family(v6: bool) -> &'static str {
    if v6 { "IPv6" } else { "IPv4" }
}

/// The notify hooks, in the order the vipd file lists them.
fn write_hooks(t: &mut Table, notify: &[(&'static str, Value)]) {
    for key in [
        "notify",
        "notify_master",
        "notify_backup",
        "notify_fault",
        "notify_stop",
    ] {
        if let Some((_, v)) = notify.iter().find(|(k, _)| *k == key) {
            t.key(key, v.clone());
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
        let mut processes = Vec::new();
        for node in &group.track_interfaces {
            ifs.extend(track::track_interfaces(node, ctx));
        }
        for node in &group.track_scripts {
            scripts.extend(track::track_refs(node, ctx));
        }
        for node in &group.track_files {
            files.extend(track::track_refs(node, ctx));
        }
        for node in &group.track_processes {
            processes.extend(track::track_refs(node, ctx));
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
            instance.track_processes.extend(processes.iter().cloned());
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
            write_hooks(&mut t, &group.notify);
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
