//! keepalived's tree turned into vipd's tables.
//!
//! Every keyword either becomes the vipd key with the same meaning (defaults where the two
//! differ are written out: VRRP version 2, a script's 1 s interval, an IPv6 /128 VIP's
//! `preferred_lft 0`, a route's `proto keepalived`), or is reported: left out when
//! keepalived would do something the vipd file does not, a note when the file does the
//! same thing said differently (including settings keepalived itself ignores, such as a
//! weighted track script in a sync group). Values of the wrong shape are errors.
//!
//! The rules keepalived applies after reading (`vrrp_complete_instance()`) are applied
//! here too, so the result does what keepalived would have done with the same file:
//! a priority derived from `state MASTER`, `nopreempt` cleared for an initial MASTER or an
//! address owner, accept mode off under `vrrp_strict`, weights dropped in sync groups.

mod global;
mod instance;
pub(crate) mod keywords;
mod options;
mod routing;
mod service;
mod track;
pub(crate) mod values;
mod vip;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::parse::Node;
use super::report::{Loc, Log};
use crate::config::Host;
use crate::config::print::{Table, Value};

pub(crate) use global::Globals;
use instance::Instance;
use track::{ScriptDef, TrackFileDef, TrackProcessDef};

/// What the conversion needs beyond the tree.
pub(crate) struct Ctx<'a> {
    pub(crate) host: &'a dyn Host,
    pub(crate) log: &'a mut Log,
    /// The main file's directory: relative paths in reports are below it.
    pub(crate) root: PathBuf,
    /// The main file as reports name it.
    pub(crate) main: std::sync::Arc<str>,
}

impl Ctx<'_> {
    pub(crate) fn main_file(&self) -> std::sync::Arc<str> {
        self.main.clone()
    }

    /// The directory of the file a line is in (for relative script paths).
    pub(crate) fn dir_of(&self, loc: &Loc) -> PathBuf {
        let file = Path::new(&*loc.file);
        let file = if file.is_absolute() {
            file.to_path_buf()
        } else {
            self.root.join(file)
        };
        file.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

/// A sync group as read: its members' names and its hooks.
#[derive(Debug, Default)]
pub(crate) struct SyncGroupDef {
    pub(crate) name: String,
    pub(crate) loc: Option<Loc>,
    pub(crate) members: Vec<(String, Loc)>,
    pub(crate) notify: Vec<(&'static str, Value)>,
    /// keepalived's `sync_group_tracking_weight` (or the older `global_tracking`):
    /// members keep their tracking weights.
    pub(crate) tracking_weight: bool,
    /// Group-level tracking, applied to every member.
    pub(crate) track_interfaces: Vec<Node>,
    pub(crate) track_scripts: Vec<Node>,
    pub(crate) track_files: Vec<Node>,
    pub(crate) track_processes: Vec<Node>,
}

/// Everything defined at the top level, by name.
#[derive(Default)]
pub(crate) struct Defs {
    pub(crate) scripts: BTreeMap<String, ScriptDef>,
    pub(crate) track_files: BTreeMap<String, TrackFileDef>,
    pub(crate) track_processes: BTreeMap<String, TrackProcessDef>,
    pub(crate) sync_groups: Vec<SyncGroupDef>,
    /// `garp_group` intervals per interface: (garp_interval, gna_interval).
    pub(crate) garp_groups: BTreeMap<String, GarpGroup>,
    /// `interface_up_down_delays`: (down, up) per interface.
    pub(crate) link_delays: Vec<(String, std::time::Duration, std::time::Duration, Loc)>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct GarpGroup {
    pub(crate) garp_interval: Option<(std::time::Duration, Loc)>,
    pub(crate) gna_interval: Option<(std::time::Duration, Loc)>,
    /// Shared by several interfaces (keepalived paces them together).
    pub(crate) shared: bool,
}

/// The vipd tables, in file order.
pub(crate) struct Converted {
    pub(crate) tables: Vec<Table>,
}

pub(crate) fn convert(top: &[Node], ctx: &mut Ctx<'_>, fallback_router_id: &str) -> Converted {
    // global_defs first: the script user and the defaults apply wherever it stands.
    let mut globals = Globals::default();
    for node in top.iter().filter(|n| n.keyword == "global_defs") {
        if let Some(block) = need_block(node, ctx) {
            globals.read(node, block, ctx);
        }
    }
    let script_user = globals.script_user(ctx);
    let user = script_user.as_deref();

    let mut defs = Defs::default();
    let mut instance_nodes: Vec<(usize, &Node)> = Vec::new();
    let mut service_nodes: Vec<&Node> = Vec::new();
    for (index, node) in top.iter().enumerate() {
        match node.keyword.as_str() {
            "global_defs" => {}
            "vrrp_instance" => {
                if need_block(node, ctx).is_some() {
                    instance_nodes.push((index, node));
                }
            }
            "vrrp_script" => {
                if let Some(block) = need_block(node, ctx) {
                    track::script_def(node, block, index, &mut defs, ctx);
                }
            }
            "track_file" | "vrrp_track_file" => {
                if let Some(block) = need_block(node, ctx) {
                    track::track_file_def(node, block, index, &mut defs, ctx);
                }
            }
            "vrrp_track_process" => {
                if let Some(block) = need_block(node, ctx) {
                    track::track_process_def(node, block, index, &mut defs, ctx);
                }
            }
            "vrrp_sync_group" => {
                if let Some(block) = need_block(node, ctx) {
                    sync_group_def(node, block, user, &mut defs, ctx);
                }
            }
            "garp_group" => {
                if let Some(block) = need_block(node, ctx) {
                    garp_group(node, block, &mut defs, ctx);
                }
            }
            "interface_up_down_delays" => {
                if let Some(block) = need_block(node, ctx) {
                    link_delays(block, &mut defs, ctx);
                }
            }
            "virtual_server" => {
                if need_block(node, ctx).is_some() {
                    service_nodes.push(node);
                }
            }
            other => match keywords::reason(keywords::TOP_LEVEL, other) {
                Some(reason) => ctx.log.left_out(&node.loc, other, reason),
                None => ctx
                    .log
                    .left_out(&node.loc, other, "unknown keepalived keyword"),
            },
        }
    }
    for def in defs.scripts.values_mut() {
        track::prepare_script(def, user, ctx);
    }

    let mut instances: Vec<Instance> = Vec::new();
    for (index, node) in instance_nodes {
        if let Some(instance) = instance::read(node, index, user, ctx) {
            instances.push(instance);
        }
    }
    let groups = instance::join_sync_groups(&mut instances, &defs, ctx);
    instance::unique_names(&mut instances, ctx);
    let carried: Vec<(String, Vec<std::net::IpAddr>)> =
        instances.iter().map(|i| i.name_and_vips()).collect();
    let services: Vec<Table> = service_nodes
        .into_iter()
        .filter_map(|n| service::read(n, &carried, user, ctx))
        .collect();

    let mut tables = vec![globals.table(ctx, fallback_router_id, user)];
    tables.extend(interface_tables(&defs));
    tables.extend(groups);
    tables.extend(
        instances
            .into_iter()
            .filter_map(|i| i.finish(&globals, &defs, ctx)),
    );
    tables.extend(services);
    Converted { tables }
}

/// The block of a keyword that must have one.
fn need_block<'n>(node: &'n Node, ctx: &mut Ctx<'_>) -> Option<&'n [Node]> {
    match &node.block {
        Some(block) => Some(block),
        None => {
            ctx.log.error(
                &node.loc,
                format!("{}: expected '{{' after it", node.keyword),
            );
            None
        }
    }
}

fn sync_group_def(
    node: &Node,
    block: &[Node],
    script_user: Option<&str>,
    defs: &mut Defs,
    ctx: &mut Ctx<'_>,
) {
    let Some(name) = node.arg(0) else {
        return ctx.log.error(&node.loc, "vrrp_sync_group: needs a name");
    };
    let mut group = SyncGroupDef {
        name: name.to_owned(),
        loc: Some(node.loc.clone()),
        ..SyncGroupDef::default()
    };
    for child in block {
        match child.keyword.as_str() {
            "group" => {
                if child.block.is_none() {
                    ctx.log.error(&child.loc, "group: expected '{' after it");
                }
                for word in child.block_words() {
                    group.members.push((word.text, word.loc));
                }
            }
            k @ ("notify" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop") => {
                let key = track::notify_key(k);
                if let Some(value) = track::hook(child, script_user, ctx) {
                    group.notify.retain(|(existing, _)| *existing != key);
                    group.notify.push((key, value));
                }
            }
            "sync_group_tracking_weight" => group.tracking_weight = true,
            "global_tracking" => {
                group.tracking_weight = true;
                ctx.log.note(
                    &child.loc,
                    "global_tracking",
                    "deprecated in keepalived for sync_group_tracking_weight: members keep \
                     their tracking weights",
                );
            }
            "track_interface" => group.track_interfaces.push(child.clone()),
            "track_script" => group.track_scripts.push(child.clone()),
            "track_file" => group.track_files.push(child.clone()),
            "track_process" => group.track_processes.push(child.clone()),
            "track_bfd" => ctx
                .log
                .left_out(&child.loc, "track_bfd", "vipd does not speak BFD"),
            "smtp_alert" => ctx.log.left_out(
                &child.loc,
                "smtp_alert",
                "vipd sends no e-mail; use a notify hook",
            ),
            "notify_priority_changes" => ctx.log.left_out(
                &child.loc,
                "notify_priority_changes",
                "vipd has no notify FIFO",
            ),
            "notify_deleted" => ctx.log.left_out(
                &child.loc,
                "notify_deleted",
                "vipd runs notify_stop (STOP) for an instance a reload removes",
            ),
            other => ctx
                .log
                .left_out(&child.loc, other, "unknown keepalived keyword"),
        }
    }
    // Group-level tracking is applied to the members, checked there.
    defs.sync_groups.push(group);
}

fn garp_group(node: &Node, block: &[Node], defs: &mut Defs, ctx: &mut Ctx<'_>) {
    let mut group = GarpGroup::default();
    let mut interfaces: Vec<String> = Vec::new();
    for child in block {
        match child.keyword.as_str() {
            k @ ("garp_interval" | "gna_interval") => {
                let Some(d) = child.arg(0).and_then(values::seconds) else {
                    ctx.log.error(
                        &child.loc,
                        format!(
                            "{k}: expected seconds, e.g. 0.001, found {:?}",
                            child.arg(0).unwrap_or("")
                        ),
                    );
                    continue;
                };
                let slot = if k == "garp_interval" {
                    &mut group.garp_interval
                } else {
                    &mut group.gna_interval
                };
                *slot = Some((d, child.loc.clone()));
            }
            "interface" => interfaces.extend(child.arg(0).map(str::to_owned)),
            "interfaces" => {
                interfaces.extend(child.block_words().into_iter().map(|w| w.text));
            }
            other => ctx
                .log
                .left_out(&child.loc, other, "unknown keepalived keyword"),
        }
    }
    if interfaces.is_empty() {
        ctx.log.left_out(
            &node.loc,
            "garp_group",
            "names no interface, so it applies to none",
        );
    }
    group.shared = interfaces.len() > 1;
    for name in interfaces {
        defs.garp_groups.insert(name, group.clone());
    }
}

fn link_delays(block: &[Node], defs: &mut Defs, ctx: &mut Ctx<'_>) {
    const MAX: std::time::Duration = std::time::Duration::from_secs(255);
    for line in block {
        let name = line.keyword.clone();
        let down = line.arg(0).and_then(values::seconds);
        let up = match line.arg(1) {
            Some(text) => values::seconds(text),
            None => down,
        };
        match (down, up) {
            (Some(down), Some(up)) if down <= MAX && up <= MAX && values::valid_ifname(&name) => {
                // keepalived keeps the last delays given for an interface (a second
                // `interface_up_down_delays` block, or `global_defs` twice); one
                // `[interfaces.NAME]` table each, or the file would not be TOML.
                if let Some(i) = defs.link_delays.iter().position(|(n, ..)| *n == name) {
                    let (_, _, _, earlier) = defs.link_delays.remove(i);
                    ctx.log.note(
                        &line.loc,
                        "interface_up_down_delays",
                        format!("{name} given again (first at {earlier}): the last delays are kept"),
                    );
                }
                defs.link_delays.push((name, down, up, line.loc.clone()));
            }
            _ => ctx.log.error(
                &line.loc,
                format!(
                    "interface_up_down_delays: expected `IFNAME DOWN_DELAY [UP_DELAY]` in seconds (at most 255), found {:?}",
                    line.raw
                ),
            ),
        }
    }
}

/// `[interfaces.NAME]` for `interface_up_down_delays`.
fn interface_tables(defs: &Defs) -> Vec<Table> {
    defs.link_delays
        .iter()
        .map(|(name, down, up, loc)| {
            let mut t = Table::named("interfaces", name);
            t.comments
                .push(format!("from {loc} interface_up_down_delays {name}"));
            t.key("up_delay", Value::duration(*up));
            t.key("down_delay", Value::duration(*down));
            t
        })
        .collect()
}

/// Every keepalived keyword and option the importer maps to vipd (rather than only
/// reporting it): the coverage test wants each used by a fixture.
#[cfg(test)]
pub(crate) const HANDLED: &[&str] = &[
    // structure
    "include",
    "global_defs",
    "vrrp_instance",
    "vrrp_script",
    "track_file",
    "vrrp_track_file",
    "vrrp_track_process",
    "vrrp_sync_group",
    "garp_group",
    "interface_up_down_delays",
    // global_defs
    "router_id",
    "vrrp_version",
    "vrrp_startup_delay",
    "script_user",
    "enable_script_security",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_repeat",
    "vrrp_garp_master_refresh",
    "vrrp_garp_master_refresh_repeat",
    "vrrp_garp_interval",
    "vrrp_gna_interval",
    "vrrp_strict",
    "vrrp_check_unicast_src",
    // vrrp_instance
    "state",
    "interface",
    "virtual_router_id",
    "priority",
    "version",
    "advert_int",
    "nopreempt",
    "preempt",
    "preempt_delay",
    "accept",
    "no_accept",
    "strict_mode",
    "use_vmac",
    "vmac_xmit_base",
    "native_ipv6",
    "dont_track_primary",
    "track_interface",
    "track_script",
    "mcast_src_ip",
    "unicast_src_ip",
    "unicast_peer",
    "check_unicast_src",
    "authentication",
    "auth_type",
    "auth_pass",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "virtual_routes",
    "virtual_rules",
    "notify",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "debug",
    // vrrp_script and track_file
    "script",
    "interval",
    "timeout",
    "weight",
    "reverse",
    "noreverse",
    "rise",
    "fall",
    "user",
    "init_fail",
    "file",
    "init_file",
    // vrrp_track_process
    "track_process",
    "process",
    "param_match",
    "full_command",
    "quorum",
    "quorum_max",
    "delay",
    "fork_delay",
    "terminate_delay",
    // vrrp_sync_group
    "group",
    "sync_group_tracking_weight",
    "global_tracking",
    // garp_group
    "garp_interval",
    "gna_interval",
    "interfaces",
    // virtual_ipaddress options
    "dev",
    "label",
    "scope",
    "brd",
    "broadcast",
    "noprefixroute",
    "preferred_lft",
    "no_track",
    // virtual_routes options
    "to",
    "via",
    "gw",
    "src",
    "table",
    "metric",
    "protocol",
    "blackhole",
    "unreachable",
    "prohibit",
    "onlink",
    "inet6",
    "default",
    // virtual_rules options
    "from",
    "iif",
    "oif",
    "fwmark",
    "preference",
    "lookup",
];
