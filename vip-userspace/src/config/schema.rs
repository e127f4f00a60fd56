//! The file format: which keys each table has, their defaults and bounds. Checks of
//! single values live in `values`, `vip`, `route`, `command` and `track`; rules that
//! relate fields or instances to each other in `validate`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;
use toml::de::DeTable;

use super::command::{NOTIFY_KEYS, RawNotify};
use super::host::Host;
use super::locate::{Sink, Span};
use super::model::{
    ForeignVrrp, GroupRef, InterfaceOptions, ScriptUser, TrackFile, TrackInterface, TrackProcess,
};
use super::read::{At, Field, Table, as_array, parse_str};
use super::route::{RawRoute, RawRule, route, rule};
use super::track::{ScriptEntry, track_file, track_interface, track_process, track_script};
use super::values::{
    AUTH_PASS_LEN, missing_interface, parse_abs_path, parse_auth_pass, parse_ifname,
    parse_listen_addr, parse_name, parse_peer, parse_proxy_addr, parse_socket_path,
    parse_unicast_addr, parse_user_name,
};
use super::vip::{RawVip, vip};
use crate::vrrp::{
    Version,
    carp::ReplayMode,
    instance::{BfdSettings, Protocol},
};

pub(crate) const ROOT_KEYS: &[&str] = &["global", "interfaces", "sync_groups", "vrrp", "service"];

pub(crate) const GLOBAL_KEYS: &[&str] = &[
    "router_id",
    "pin_path",
    "control_socket",
    "metrics",
    "script_user",
    "startup_delay",
    "realtime_priority",
    "control_group",
    "admin_group",
    "state_file",
];

pub(crate) const INTERFACE_KEYS: &[&str] = &["foreign_vrrp", "up_delay", "down_delay"];

pub(crate) const VRRP_KEYS: &[&str] = &[
    "name",
    "protocol",
    "interface",
    "vrid",
    "priority",
    "advskew",
    "version",
    "advert_interval",
    "preempt",
    "preempt_delay",
    "accept",
    "vmac",
    "vips",
    "vips_excluded",
    "proxy_arp",
    "shared_vips",
    "announce_host_routes",
    "virtual_routes",
    "virtual_rules",
    "unicast_src_ip",
    "unicast_peers",
    "allowed_peers",
    "auth_pass",
    "dont_track_primary",
    "track_interfaces",
    "track_scripts",
    "track_files",
    "track_processes",
    "bfd",
    "notify",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "sync_group",
    "garp_repeat",
    "garp_interval",
    "garp_refresh",
    "passphrase",
    "passphrase_file",
    "dead_ratio",
    "replay",
    "hmac_link_local",
];

/// The keys only a CARP instance takes (docs/carp.md).
pub(crate) const CARP_KEYS: &[&str] = &[
    "advskew",
    "passphrase",
    "passphrase_file",
    "dead_ratio",
    "replay",
    "hmac_link_local",
];

/// Where the XDP maps are pinned by default (under it, one directory per `router_id`).
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/vipd";
pub(crate) const CONTROL_SOCKET_DIR: &str = "/run/vipd";
pub(crate) const DEFAULT_PRIORITY: u8 = 100;
pub(crate) const DEFAULT_REALTIME_PRIORITY: u8 = 1;
pub(crate) const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_secs(1);
pub(crate) const DEFAULT_GARP_REPEAT: u32 = 5;
pub(crate) const DEFAULT_GARP_INTERVAL: Duration = Duration::from_millis(10);

const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(3600);
const MAX_STARTUP_DELAY: Duration = Duration::from_secs(3600);
const MAX_LINK_DELAY: Duration = Duration::from_secs(3600);
const MAX_GARP_REPEAT: i64 = 100;
const MAX_GARP_INTERVAL: Duration = Duration::from_secs(1);
const MIN_GARP_REFRESH: Duration = Duration::from_secs(1);
const MAX_GARP_REFRESH: Duration = Duration::from_secs(3600);

pub(crate) struct RawGlobal {
    pub(crate) router_id: Field<String>,
    pub(crate) pin_path: Field<PathBuf>,
    pub(crate) control_socket: Field<PathBuf>,
    pub(crate) metrics: Field<SocketAddr>,
    /// Invalid also when the name is fine but no such user exists.
    pub(crate) script_user: Field<ScriptUser>,
    pub(crate) startup_delay: Field<Duration>,
    pub(crate) realtime_priority: Field<u8>,
    /// Invalid also when the name is fine but no such group exists.
    pub(crate) control_group: Field<GroupRef>,
    pub(crate) admin_group: Field<GroupRef>,
    pub(crate) state_file: Field<PathBuf>,
}

/// One `[interfaces.NAME]` table.
pub(crate) struct RawInterface {
    pub(crate) name: String,
    /// `None` when anything in the table was wrong.
    pub(crate) options: Option<InterfaceOptions>,
}

/// One `[sync_groups.NAME]` table.
pub(crate) struct RawSyncGroup {
    pub(crate) name: String,
    /// Where NAME is written.
    pub(crate) span: Span,
    pub(crate) path: String,
    pub(crate) notify: RawNotify,
}

pub(crate) struct RawInstance {
    pub(crate) span: Span,
    pub(crate) path: String,
    pub(crate) name: Field<String>,
    pub(crate) protocol: Field<Protocol>,
    pub(crate) advskew: Field<u8>,
    /// Checked against what CARP's key takes (`vrrp::carp::Key`).
    pub(crate) passphrase: Field<String>,
    pub(crate) passphrase_file: Field<PathBuf>,
    pub(crate) dead_ratio: Field<u8>,
    pub(crate) replay: Field<ReplayMode>,
    pub(crate) hmac_link_local: Field<bool>,
    pub(crate) interface: Field<String>,
    pub(crate) vrid: Field<u8>,
    pub(crate) priority: Field<u8>,
    pub(crate) version: Field<Version>,
    pub(crate) advert_interval: Field<Duration>,
    pub(crate) preempt: Field<bool>,
    pub(crate) preempt_delay: Field<Duration>,
    pub(crate) accept: Field<bool>,
    pub(crate) vmac: Field<bool>,
    pub(crate) vips: Field<Vec<At<RawVip>>>,
    pub(crate) vips_excluded: Field<Vec<At<RawVip>>>,
    /// Addresses behind this router answered (ARP / NS) while master, never installed.
    pub(crate) proxy_arp: Field<Vec<At<IpAddr>>>,
    /// Shared VIPs (active-active) this instance is one member group of.
    pub(crate) shared_vips: Field<Vec<At<IpAddr>>>,
    pub(crate) announce_host_routes: Field<bool>,
    pub(crate) virtual_routes: Field<Vec<At<RawRoute>>>,
    pub(crate) virtual_rules: Field<Vec<At<RawRule>>>,
    pub(crate) unicast_src_ip: Field<IpAddr>,
    pub(crate) unicast_peers: Field<Vec<At<IpAddr>>>,
    pub(crate) allowed_peers: Field<Vec<At<IpAddr>>>,
    pub(crate) auth_pass: Field<[u8; AUTH_PASS_LEN]>,
    pub(crate) dont_track_primary: Field<bool>,
    pub(crate) track_interfaces: Field<Vec<At<TrackInterface>>>,
    pub(crate) track_scripts: Field<Vec<At<ScriptEntry>>>,
    pub(crate) track_files: Field<Vec<At<TrackFile>>>,
    pub(crate) track_processes: Field<Vec<At<TrackProcess>>>,
    pub(crate) bfd: Field<BfdSettings>,
    pub(crate) notify: RawNotify,
    pub(crate) sync_group: Field<String>,
    pub(crate) garp_repeat: Field<u32>,
    pub(crate) garp_interval: Field<Duration>,
    pub(crate) garp_refresh: Field<Duration>,
}

impl RawInstance {
    /// Every VIP read correctly, `vips` first, each with its path (`vips[i]`).
    pub(crate) fn all_vips(&self) -> impl Iterator<Item = (String, &At<RawVip>)> {
        [("vips", &self.vips), ("vips_excluded", &self.vips_excluded)]
            .into_iter()
            .flat_map(move |(key, field)| {
                let list = field.valid().map_or(&[][..], |at| &at.value[..]);
                list.iter()
                    .enumerate()
                    .map(move |(i, v)| (format!("{}.{key}[{i}]", self.path), v))
            })
    }
}

pub(crate) struct RawConfig {
    pub(crate) global: Option<RawGlobal>,
    pub(crate) interfaces: Vec<RawInterface>,
    pub(crate) sync_groups: Vec<RawSyncGroup>,
    pub(crate) instances: Vec<RawInstance>,
    pub(crate) services: Vec<super::service::RawService>,
}

/// Reads the whole document, reporting every field-level problem.
pub(crate) fn decode(
    doc: &Spanned<DeTable<'_>>,
    host: &dyn Host,
    sink: &mut Sink<'_>,
) -> RawConfig {
    let root = Table::root(doc);
    root.reject_unknown(ROOT_KEYS, sink);
    let start = doc.span().start..doc.span().start;

    let global = match root.node("global") {
        None => {
            sink.push(start.clone(), "global", "missing required table [global]");
            None
        }
        Some(node) => Table::of(node, "global".into(), sink).map(|t| decode_global(&t, host, sink)),
    };
    let interfaces = root
        .node("interfaces")
        .and_then(|node| Table::of(node, "interfaces".into(), sink))
        .map(|t| decode_interfaces(&t, host, sink))
        .unwrap_or_default();
    let sync_groups = root
        .node("sync_groups")
        .and_then(|node| Table::of(node, "sync_groups".into(), sink))
        .map(|t| decode_sync_groups(&t, sink))
        .unwrap_or_default();

    let services = root
        .node("service")
        .map(|node| super::service::decode_services(node, sink))
        .unwrap_or_default();
    let mut instances = Vec::new();
    match root.node("vrrp") {
        // A director behind ECMP alone needs no VRRP.
        None if !services.is_empty() => {}
        None => sink.push(
            start,
            "vrrp",
            "no [[vrrp]] instance: vipd would have nothing to do",
        ),
        Some(node) if node.get_ref().is_table() => sink.push(
            node.span(),
            "vrrp",
            "write [[vrrp]] (an array of tables, one per instance), not [vrrp]",
        ),
        Some(node) => {
            let items = as_array(node, "vrrp", sink).unwrap_or_default();
            if items.is_empty() && node.get_ref().is_array() {
                sink.push(
                    node.span(),
                    "vrrp",
                    "no [[vrrp]] instance: vipd would have nothing to do",
                );
            }
            for (i, item) in items.iter().enumerate() {
                if let Some(table) = Table::of(item, format!("vrrp[{i}]"), sink) {
                    instances.push(decode_instance(&table, host, sink));
                }
            }
        }
    }
    RawConfig {
        global,
        interfaces,
        sync_groups,
        instances,
        services,
    }
}

fn decode_global(t: &Table<'_, '_>, host: &dyn Host, sink: &mut Sink<'_>) -> RawGlobal {
    t.reject_unknown(GLOBAL_KEYS, sink);
    t.require("router_id", sink);
    RawGlobal {
        router_id: t.parsed("router_id", sink, parse_name),
        pin_path: t.parsed("pin_path", sink, parse_abs_path),
        control_socket: t.parsed("control_socket", sink, parse_socket_path),
        metrics: t.parsed("metrics", sink, parse_listen_addr),
        script_user: t.parsed("script_user", sink, |name| {
            let name = parse_user_name(name)?;
            match host.user(&name)? {
                Some(ids) => Ok(ScriptUser {
                    name,
                    uid: ids.uid,
                    gid: ids.gid,
                }),
                None => Err(format!("user {name:?} does not exist")),
            }
        }),
        startup_delay: t.duration_in("startup_delay", Duration::ZERO..=MAX_STARTUP_DELAY, sink),
        realtime_priority: t.int("realtime_priority", 0..=99, sink),
        control_group: t.parsed("control_group", sink, |name| group(host, name)),
        admin_group: t.parsed("admin_group", sink, |name| group(host, name)),
        state_file: t.parsed("state_file", sink, parse_abs_path),
    }
}

/// A group name that exists on this host, with its gid.
fn group(host: &dyn Host, name: &str) -> Result<GroupRef, String> {
    let name = parse_user_name(name).map_err(|e| e.replace("user name", "group name"))?;
    match host.group(&name)? {
        Some(gid) => Ok(GroupRef { name, gid }),
        None => Err(format!("group {name:?} does not exist")),
    }
}

fn decode_interfaces(t: &Table<'_, '_>, host: &dyn Host, sink: &mut Sink<'_>) -> Vec<RawInterface> {
    let mut out = Vec::new();
    for (name, key_span, node) in t.entries() {
        let path = t.path_of(name);
        let before = sink.len();
        match parse_ifname(name) {
            Ok(_) if !host.interface_exists(name) => {
                sink.push(key_span.clone(), &path, missing_interface(name));
            }
            Ok(_) => {}
            Err(message) => sink.push(key_span.clone(), &path, message),
        }
        let Some(table) = Table::of(node, path, sink) else {
            continue;
        };
        table.reject_unknown(INTERFACE_KEYS, sink);
        let foreign_vrrp = table.parsed("foreign_vrrp", sink, |v| match v {
            "pass" => Ok(ForeignVrrp::Pass),
            "drop" => Ok(ForeignVrrp::Drop),
            _ => Err(format!(
                "{v:?}: write \"pass\" (to the kernel, for keepalived or FRR) or \"drop\""
            )),
        });
        let up_delay = table.duration_in("up_delay", Duration::ZERO..=MAX_LINK_DELAY, sink);
        let down_delay = table.duration_in("down_delay", Duration::ZERO..=MAX_LINK_DELAY, sink);
        let options = (|| {
            Some(InterfaceOptions {
                foreign_vrrp: foreign_vrrp.or(ForeignVrrp::Pass)?,
                up_delay: up_delay.or(Duration::ZERO)?,
                down_delay: down_delay.or(Duration::ZERO)?,
            })
        })()
        .filter(|_| sink.len() == before);
        out.push(RawInterface {
            name: name.to_owned(),
            options,
        });
    }
    out
}

fn decode_sync_groups(t: &Table<'_, '_>, sink: &mut Sink<'_>) -> Vec<RawSyncGroup> {
    let mut out = Vec::new();
    for (name, key_span, node) in t.entries() {
        let path = t.path_of(name);
        if let Err(message) = parse_name(name) {
            sink.push(key_span.clone(), &path, message);
        }
        let Some(table) = Table::of(node, path.clone(), sink) else {
            continue;
        };
        table.reject_unknown(NOTIFY_KEYS, sink);
        out.push(RawSyncGroup {
            name: name.to_owned(),
            span: key_span,
            path,
            notify: RawNotify::decode(&table, sink),
        });
    }
    out
}

fn decode_instance(t: &Table<'_, '_>, host: &dyn Host, sink: &mut Sink<'_>) -> RawInstance {
    t.reject_unknown(VRRP_KEYS, sink);
    let has_excluded = t
        .node("vips_excluded")
        .and_then(|n| n.get_ref().as_array())
        .is_some_and(|a| !a.is_empty());
    let move_one = "an advertisement carries at least one address; move one from vips_excluded";
    for key in ["name", "interface", "vrid"] {
        t.require(key, sink);
    }
    match t.node("vips") {
        None if has_excluded => sink.push(
            t.span.clone(),
            t.path_of("vips"),
            format!("missing required field \"vips\": {move_one}"),
        ),
        None => {
            t.require("vips", sink);
        }
        Some(vips) if vips.get_ref().as_array().is_some_and(|a| a.is_empty()) => sink.push(
            vips.span(),
            t.path_of("vips"),
            if has_excluded {
                format!("must list at least one address: {move_one}")
            } else {
                "must list at least one address".to_owned()
            },
        ),
        Some(_) => {}
    }
    let interface = t.parsed("interface", sink, parse_ifname);
    // Reported without invalidating the name, so the cross-instance rules still compare
    // instances on a device that is missing right now.
    if let Some(at) = interface.valid()
        && !host.interface_exists(&at.value)
    {
        sink.push(
            at.span.clone(),
            t.path_of("interface"),
            missing_interface(&at.value),
        );
    }
    RawInstance {
        span: t.span.clone(),
        path: t.path.clone(),
        name: t.parsed("name", sink, parse_name),
        protocol: t.parsed("protocol", sink, |v| match v {
            "vrrp" => Ok(Protocol::Vrrp),
            "carp" => Ok(Protocol::Carp),
            _ => Err(format!("{v:?}: write \"vrrp\" or \"carp\"")),
        }),
        advskew: t.int("advskew", 0..=254, sink),
        passphrase: t.parsed("passphrase", sink, |v| {
            crate::vrrp::carp::Key::new(v.as_bytes())
                .map(|_| v.to_owned())
                .map_err(|e| e.to_string())
        }),
        passphrase_file: t.parsed("passphrase_file", sink, parse_abs_path),
        dead_ratio: t.int("dead_ratio", 1..=255, sink),
        replay: t.parsed("replay", sink, |v| match v {
            "strict" => Ok(ReplayMode::Strict),
            "openbsd" => Ok(ReplayMode::OpenBsd),
            _ => Err(format!(
                "{v:?}: write \"strict\" (FreeBSD, pfSense, OPNsense, ucarp) or \"openbsd\""
            )),
        }),
        hmac_link_local: t.boolean("hmac_link_local", sink),
        interface,
        vrid: t.int("vrid", 1..=255, sink),
        priority: t.int("priority", 1..=255, sink),
        version: t.parsed_int("version", sink, |v| match v {
            2 => Ok(Version::V2),
            3 => Ok(Version::V3),
            _ => Err(format!(
                "version {v} does not exist: write 3 (RFC 5798) or 2 (RFC 3768)"
            )),
        }),
        advert_interval: t.duration("advert_interval", sink),
        preempt: t.boolean("preempt", sink),
        preempt_delay: t.duration_in("preempt_delay", Duration::ZERO..=MAX_PREEMPT_DELAY, sink),
        accept: t.boolean("accept", sink),
        vmac: t.boolean("vmac", sink),
        vips: t.list("vips", sink, |n, p, s| vip(n, p, host, s)),
        vips_excluded: t.list("vips_excluded", sink, |n, p, s| vip(n, p, host, s)),
        proxy_arp: t.list("proxy_arp", sink, |n, p, s| {
            parse_str(n, &p, s, parse_proxy_addr)
        }),
        shared_vips: t.list("shared_vips", sink, |n, p, s| {
            parse_str(n, &p, s, parse_proxy_addr)
        }),
        announce_host_routes: t.boolean("announce_host_routes", sink),
        virtual_routes: t.list("virtual_routes", sink, |n, p, s| route(n, p, host, s)),
        virtual_rules: t.list("virtual_rules", sink, |n, p, s| rule(n, p, host, s)),
        unicast_src_ip: t.parsed("unicast_src_ip", sink, parse_unicast_addr),
        unicast_peers: t.list("unicast_peers", sink, |n, p, s| {
            parse_str(n, &p, s, parse_peer)
        }),
        allowed_peers: t.list("allowed_peers", sink, |n, p, s| {
            parse_str(n, &p, s, parse_peer)
        }),
        auth_pass: t.parsed("auth_pass", sink, parse_auth_pass),
        dont_track_primary: t.boolean("dont_track_primary", sink),
        track_interfaces: t.list("track_interfaces", sink, |n, p, s| {
            track_interface(n, p, host, s)
        }),
        track_scripts: t.list("track_scripts", sink, track_script),
        track_files: t.list("track_files", sink, track_file),
        track_processes: t.list("track_processes", sink, track_process),
        bfd: t.value("bfd", sink, |n, p, s| super::bfd::bfd(n, p.to_owned(), s)),
        notify: RawNotify::decode(t, sink),
        sync_group: t.parsed("sync_group", sink, parse_name),
        garp_repeat: t.int("garp_repeat", 0..=MAX_GARP_REPEAT, sink),
        garp_interval: t.duration_in("garp_interval", Duration::ZERO..=MAX_GARP_INTERVAL, sink),
        garp_refresh: t.parsed_duration("garp_refresh", sink, |d| {
            if d.is_zero() || (MIN_GARP_REFRESH..=MAX_GARP_REFRESH).contains(&d) {
                Ok(d)
            } else {
                Err(format!(
                    "{} is out of range: \"0s\" (off) or 1s..=1h",
                    super::duration::format(d)
                ))
            }
        }),
    }
}
