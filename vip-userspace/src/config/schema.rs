//! The file format: which keys each table has, their defaults and bounds. Checks of
//! single values live in `values` and `track`; rules that relate fields or instances to
//! each other in `validate`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use toml::Spanned;
use toml::de::DeTable;

use super::locate::{Sink, Span};
use super::model::{TrackFile, TrackInterface, TrackScript, Version};
use super::read::{At, Field, Table, as_array, parse_str};
use super::track::{track_file, track_interface, track_script};
use super::values::{
    AUTH_PASS_LEN, missing_interface, parse_abs_path, parse_auth_pass, parse_ifname,
    parse_listen_addr, parse_name, parse_peer, parse_socket_path, parse_vip,
};

pub(crate) const GLOBAL_KEYS: &[&str] = &["router_id", "pin_path", "control_socket", "metrics"];

pub(crate) const VRRP_KEYS: &[&str] = &[
    "name",
    "interface",
    "vrid",
    "priority",
    "version",
    "advert_interval",
    "preempt",
    "preempt_delay",
    "accept",
    "vmac",
    "vips",
    "unicast_peers",
    "allowed_peers",
    "auth_pass",
    "track_interfaces",
    "track_scripts",
    "track_files",
    "notify",
    "sync_group",
    "garp_repeat",
    "garp_interval",
    "garp_refresh",
];

/// Where the XDP maps are pinned by default (under it, one directory per `router_id`).
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/vipd";
pub(crate) const CONTROL_SOCKET_DIR: &str = "/run/vipd";
pub(crate) const DEFAULT_PRIORITY: u8 = 100;
pub(crate) const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_secs(1);
pub(crate) const DEFAULT_GARP_REPEAT: u32 = 5;
pub(crate) const DEFAULT_GARP_INTERVAL: Duration = Duration::from_millis(10);

const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(3600);
const MAX_GARP_REPEAT: i64 = 100;
const MAX_GARP_INTERVAL: Duration = Duration::from_secs(1);
const MIN_GARP_REFRESH: Duration = Duration::from_secs(1);
const MAX_GARP_REFRESH: Duration = Duration::from_secs(3600);

pub(crate) struct RawGlobal {
    pub(crate) router_id: Field<String>,
    pub(crate) pin_path: Field<PathBuf>,
    pub(crate) control_socket: Field<PathBuf>,
    pub(crate) metrics: Field<SocketAddr>,
}

pub(crate) struct RawInstance {
    pub(crate) span: Span,
    pub(crate) path: String,
    pub(crate) name: Field<String>,
    pub(crate) interface: Field<String>,
    pub(crate) vrid: Field<u8>,
    pub(crate) priority: Field<u8>,
    pub(crate) version: Field<Version>,
    pub(crate) advert_interval: Field<Duration>,
    pub(crate) preempt: Field<bool>,
    pub(crate) preempt_delay: Field<Duration>,
    pub(crate) accept: Field<bool>,
    pub(crate) vmac: Field<bool>,
    pub(crate) vips: Field<Vec<At<IpNet>>>,
    pub(crate) unicast_peers: Field<Vec<At<IpAddr>>>,
    pub(crate) allowed_peers: Field<Vec<At<IpAddr>>>,
    pub(crate) auth_pass: Field<[u8; AUTH_PASS_LEN]>,
    pub(crate) track_interfaces: Field<Vec<At<TrackInterface>>>,
    pub(crate) track_scripts: Field<Vec<At<TrackScript>>>,
    pub(crate) track_files: Field<Vec<At<TrackFile>>>,
    pub(crate) notify: Field<PathBuf>,
    pub(crate) sync_group: Field<String>,
    pub(crate) garp_repeat: Field<u32>,
    pub(crate) garp_interval: Field<Duration>,
    pub(crate) garp_refresh: Field<Duration>,
}

pub(crate) struct RawConfig {
    pub(crate) global: Option<RawGlobal>,
    pub(crate) instances: Vec<RawInstance>,
}

/// Reads the whole document, reporting every field-level problem.
pub(crate) fn decode(
    doc: &Spanned<DeTable<'_>>,
    interface_exists: &dyn Fn(&str) -> bool,
    sink: &mut Sink<'_>,
) -> RawConfig {
    let root = Table::root(doc);
    root.reject_unknown(&["global", "vrrp"], sink);
    let start = doc.span().start..doc.span().start;

    let global = match root.node("global") {
        None => {
            sink.push(start.clone(), "global", "missing required table [global]");
            None
        }
        Some(node) => Table::of(node, "global".into(), sink).map(|t| decode_global(&t, sink)),
    };

    let mut instances = Vec::new();
    match root.node("vrrp") {
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
                    instances.push(decode_instance(&table, interface_exists, sink));
                }
            }
        }
    }
    RawConfig { global, instances }
}

fn decode_global(t: &Table<'_, '_>, sink: &mut Sink<'_>) -> RawGlobal {
    t.reject_unknown(GLOBAL_KEYS, sink);
    t.require("router_id", sink);
    RawGlobal {
        router_id: t.parsed("router_id", sink, parse_name),
        pin_path: t.parsed("pin_path", sink, parse_abs_path),
        control_socket: t.parsed("control_socket", sink, parse_socket_path),
        metrics: t.parsed("metrics", sink, parse_listen_addr),
    }
}

fn decode_instance(
    t: &Table<'_, '_>,
    interface_exists: &dyn Fn(&str) -> bool,
    sink: &mut Sink<'_>,
) -> RawInstance {
    t.reject_unknown(VRRP_KEYS, sink);
    for key in ["name", "interface", "vrid", "vips"] {
        t.require(key, sink);
    }
    if let Some(vips) = t.node("vips")
        && vips.get_ref().as_array().is_some_and(|a| a.is_empty())
    {
        sink.push(
            vips.span(),
            t.path_of("vips"),
            "must list at least one address",
        );
    }
    let interface = t.parsed("interface", sink, parse_ifname);
    // Reported without invalidating the name, so the cross-instance rules still compare
    // instances on a device that is missing right now.
    if let Some(at) = interface.valid()
        && !interface_exists(&at.value)
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
        vips: t.list("vips", sink, |n, p, s| parse_str(n, &p, s, parse_vip)),
        unicast_peers: t.list("unicast_peers", sink, |n, p, s| {
            parse_str(n, &p, s, parse_peer)
        }),
        allowed_peers: t.list("allowed_peers", sink, |n, p, s| {
            parse_str(n, &p, s, parse_peer)
        }),
        auth_pass: t.parsed("auth_pass", sink, parse_auth_pass),
        track_interfaces: t.list("track_interfaces", sink, |n, p, s| {
            track_interface(n, p, interface_exists, s)
        }),
        track_scripts: t.list("track_scripts", sink, track_script),
        track_files: t.list("track_files", sink, track_file),
        notify: t.parsed("notify", sink, parse_abs_path),
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
