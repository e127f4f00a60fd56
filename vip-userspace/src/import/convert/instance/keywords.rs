//! The `vrrp_instance` block's keyword table, as keepalived's parser installs one handler
//! per keyword (`vrrp_parser.c`): every keyword the importer knows, with the function
//! that reads it, or the note or reason it is reported with. A keyword missing here is
//! reported as unknown.

use std::net::IpAddr;
use std::time::Duration;

use super::super::global::{count, flag, timer};
use super::super::options::{Does, Keyword, left_out, note};
use super::super::routing;
use super::super::track;
use super::super::values::{int_in, seconds, valid_ifname};
use super::super::vip;
use super::{CENTISECOND, Instance};
use crate::import::convert::Ctx;
use crate::import::parse::Node;
use crate::import::report::Loc;

/// What a handler gets besides the instance and the line.
pub(super) struct Reading<'r, 'c> {
    pub(super) ctx: &'r mut Ctx<'c>,
    /// Who scripts and hooks run as (`global_defs script_user`).
    pub(super) script_user: Option<&'r str>,
}

/// Reads one line of the block into the instance.
pub(super) type Read = fn(&mut Instance, &Node, &mut Reading<'_, '_>);

/// A table entry for keywords read by `read`.
const fn handle(names: &'static [&'static str], read: Read) -> Keyword<Read> {
    Keyword {
        names,
        does: Does::Handle(read),
    }
}

/// Reports a value of the wrong shape.
fn bad(node: &Node, ctx: &mut Ctx<'_>, expected: &str) {
    ctx.log.error(
        &node.loc,
        format!(
            "{}: expected {expected}, found {:?}",
            node.keyword,
            node.arg(0).unwrap_or("")
        ),
    );
}

/// The block's keywords.
pub(super) const KEYWORDS: &[Keyword<Read>] = &[
    handle(&["state"], state),
    handle(&["interface"], |i, n, r| match n.arg(0) {
        Some(name) if valid_ifname(name) => i.interface = Some((name.to_owned(), n.loc.clone())),
        _ => bad(
            n,
            r.ctx,
            "an interface name (1 to 15 bytes, no '/', ':' or blanks)",
        ),
    }),
    handle(&["virtual_router_id"], |i, n, r| {
        match n.arg(0).and_then(|a| int_in(a, 1..=255)) {
            Some(v) => i.vrid = Some(v as u8),
            None => bad(n, r.ctx, "a number in 1..=255"),
        }
    }),
    handle(&["priority"], |i, n, r| {
        match n.arg(0).and_then(|a| int_in(a, 1..=255)) {
            Some(v) => i.priority = Some((v as u8, n.loc.clone())),
            None => bad(n, r.ctx, "a number in 1..=255"),
        }
    }),
    handle(&["version"], |i, n, r| {
        match n.arg(0).and_then(|a| int_in(a, 2..=3)) {
            Some(v) => i.version = Some((v as u8, n.loc.clone())),
            None => bad(n, r.ctx, "2 or 3"),
        }
    }),
    handle(&["advert_int"], |i, n, r| {
        match n.arg(0).and_then(seconds) {
            Some(d) if d >= CENTISECOND && d <= Duration::from_secs(255) => {
                i.advert = Some((d, n.loc.clone()));
            }
            _ => bad(n, r.ctx, "seconds in 0.01..=255"),
        }
    }),
    handle(&["nopreempt"], |i, n, _| i.nopreempt = Some(n.loc.clone())),
    handle(&["preempt"], |i, _, _| i.nopreempt = None),
    handle(&["preempt_delay"], |i, n, r| {
        match n.arg(0).and_then(seconds) {
            Some(d) if d <= Duration::from_secs(1000) => i.preempt_delay = Some((d, n.loc.clone())),
            _ => bad(n, r.ctx, "seconds in 0..=1000"),
        }
    }),
    handle(&["accept"], |i, n, _| {
        i.accept = Some((true, n.loc.clone()))
    }),
    handle(&["no_accept"], |i, n, _| {
        i.accept = Some((false, n.loc.clone()))
    }),
    handle(&["strict_mode"], |i, n, r| {
        if let Some(on) = flag(n, r.ctx) {
            i.strict = Some((on, n.loc.clone()));
        }
    }),
    handle(&["use_vmac"], use_vmac),
    note(
        &["vmac_xmit_base"],
        "vipd creates no macvlan interface, so adverts always go out on the instance's \
             own interface",
    ),
    note(
        &["native_ipv6"],
        "deprecated in keepalived: the VIPs decide the family (IPv6 is always VRRPv3)",
    ),
    handle(&["dont_track_primary"], |i, _, _| {
        i.dont_track_primary = true
    }),
    handle(&["track_interface"], |i, n, r| {
        i.track_ifs.extend(track::track_interfaces(n, r.ctx))
    }),
    handle(&["track_script"], |i, n, r| {
        i.track_scripts.extend(track::track_refs(n, r.ctx))
    }),
    handle(&["track_file"], |i, n, r| {
        i.track_files.extend(track::track_refs(n, r.ctx))
    }),
    handle(&["track_process"], |i, n, r| {
        i.track_processes.extend(track::track_refs(n, r.ctx))
    }),
    handle(&["mcast_src_ip", "unicast_src_ip"], |i, n, r| {
        match n.arg(0).and_then(|a| a.parse::<IpAddr>().ok()) {
            Some(a) => i.unicast_src = Some((a, n.loc.clone())),
            None => bad(n, r.ctx, "an IP address"),
        }
    }),
    handle(&["unicast_peer"], unicast_peer),
    handle(&["check_unicast_src"], |i, _, _| i.check_unicast_src = true),
    left_out(
        &["unicast_fault_no_peer"],
        "vipd advertises by multicast when no unicast_peers are listed",
    ),
    handle(&["authentication"], authentication),
    handle(
        &["virtual_ipaddress", "virtual_ipaddress_excluded"],
        |i, n, r| {
            need_block(n, r.ctx);
            for line in n.children() {
                if let Some(v) = vip::vip(line, r.ctx) {
                    if n.keyword == "virtual_ipaddress" {
                        i.vips.push(v);
                    } else {
                        i.vips_excluded.push(v);
                    }
                }
            }
        },
    ),
    note(
        &["no_virtual_ipaddress"],
        "vipd requires at least one VIP; an instance without one is left out",
    ),
    handle(&["virtual_routes"], |i, n, r| {
        need_block(n, r.ctx);
        for line in n.children() {
            i.routes.extend(routing::route(line, r.ctx));
        }
    }),
    handle(&["virtual_rules"], |i, n, r| {
        need_block(n, r.ctx);
        for line in n.children() {
            i.rules.extend(routing::rule(line, r.ctx));
        }
    }),
    handle(
        &[
            "notify",
            "notify_master",
            "notify_backup",
            "notify_fault",
            "notify_stop",
        ],
        notify,
    ),
    handle(&["garp_master_delay"], |i, n, r| {
        i.garp_delay = timer(n, r.ctx).map(|d| (d, n.loc.clone()))
    }),
    handle(&["garp_master_repeat"], |i, n, r| {
        i.garp_repeat = count(n, r.ctx).map(|c| (c, n.loc.clone()))
    }),
    handle(&["garp_master_refresh"], |i, n, r| {
        i.garp_refresh = timer(n, r.ctx).map(|d| (d, n.loc.clone()))
    }),
    handle(&["garp_master_refresh_repeat"], |i, n, r| {
        i.garp_refresh_repeat = count(n, r.ctx).map(|c| (c, n.loc.clone()));
    }),
    note(&["debug"], "not implemented in keepalived either"),
    // What vipd has no equivalent for, with why.
    left_out(&["use_vmac_addr"], "vipd creates no macvlan interfaces"),
    left_out(&["use_ipvlan"], "vipd creates no ipvlan interfaces"),
    left_out(
        &["vrf"],
        "no vipd equivalent (run vipd in the VRF's context)",
    ),
    left_out(&["track_bfd"], "vipd does not speak BFD"),
    left_out(
        &["mcast_dst_ip"],
        "vipd sends to the standard group (224.0.0.18 / ff02::12) or to unicast_peers",
    ),
    left_out(
        &["unicast_ttl"],
        "vipd always sends with TTL / hop limit 255, as RFC 5798 requires",
    ),
    left_out(&["track_src_ip"], "no vipd equivalent"),
    left_out(
        &["old_unicast_checksum"],
        "vipd computes the RFC 5798 checksum only",
    ),
    left_out(
        &["v3_checksum_as_v2"],
        "vipd computes the RFC 5798 checksum only",
    ),
    left_out(
        &["skip_check_adv_addr"],
        "vipd checks every advertisement as RFC 5798 section 7.1 says",
    ),
    left_out(&["lower_prio_no_advert"], "no vipd equivalent"),
    left_out(&["higher_prio_send_advert"], "no vipd equivalent"),
    left_out(&["owner_ignore_adverts"], "no vipd equivalent"),
    left_out(
        &["down_timer_adverts"],
        "vipd uses RFC 5798's 3 intervals plus skew",
    ),
    left_out(&["timer_expired_backup"], "no vipd equivalent"),
    left_out(&["thread_timer_expired"], "no vipd equivalent"),
    left_out(&["kernel_rx_buf_size"], "no vipd equivalent"),
    left_out(
        &["linkbeat_use_polling"],
        "vipd follows link state through netlink only",
    ),
    left_out(
        &["promote_secondaries"],
        "no vipd equivalent; set net.ipv4.conf.IF.promote_secondaries with sysctl",
    ),
    left_out(
        &["lvs_sync_daemon_interface"],
        "out of scope: vipd does not do load balancing",
    ),
    left_out(&["garp_lower_prio_delay"], "no vipd equivalent"),
    left_out(&["garp_lower_prio_repeat"], "no vipd equivalent"),
    left_out(
        &["garp_extra_if"],
        "vipd announces VIPs only on their own devices",
    ),
    left_out(
        &["vmac_garp_intvl"],
        "vipd announces VIPs only on their own devices",
    ),
    left_out(&["smtp_alert"], "vipd sends no e-mail; use a notify hook"),
    left_out(
        &["notify_deleted"],
        "vipd runs notify_stop (STOP) for an instance a reload removes",
    ),
    left_out(&["notify_master_rx_lower_pri"], "no vipd equivalent"),
    left_out(&["notify_priority_changes"], "vipd has no notify FIFO"),
    left_out(
        &["auth_hmac"],
        "keepalived's own HMAC extension: no other implementation speaks it; use allowed_peers",
    ),
];

/// Reports a block keyword written without its block.
fn need_block(node: &Node, ctx: &mut Ctx<'_>) {
    if node.block.is_none() {
        ctx.log.error(
            &node.loc,
            format!("{}: expected '{{' after it", node.keyword),
        );
    }
}

fn state(i: &mut Instance, n: &Node, r: &mut Reading<'_, '_>) {
    let loc = n.loc.clone();
    match n.arg(0) {
        Some("MASTER") => i.state = Some((true, loc)),
        Some("BACKUP") => {
            if !i.state.as_ref().is_some_and(|(m, _)| *m) {
                i.state = Some((false, loc));
            }
        }
        _ => bad(n, r.ctx, "MASTER or BACKUP"),
    }
}

fn use_vmac(i: &mut Instance, n: &Node, r: &mut Reading<'_, '_>) {
    i.vmac = true;
    let extra: Vec<&str> = n.args.iter().map(|w| w.text.as_str()).collect();
    if !extra.is_empty() {
        r.ctx.log.left_out(
            &n.loc,
            "use_vmac",
            format!(
                "{}: vipd creates no macvlan interface; it answers with the standard \
                 virtual MAC 00:00:5e:00:01:VRID on the instance's own interface",
                extra.join(" ")
            ),
        );
    }
}

fn unicast_peer(i: &mut Instance, n: &Node, r: &mut Reading<'_, '_>) {
    let ctx = &mut *r.ctx;
    let loc: Loc = n.loc.clone();
    i.peer_block = Some(loc.clone());
    if n.block.is_none() {
        ctx.log.error(&loc, "unicast_peer: expected '{' after it");
    }
    for line in n.children() {
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
            i.check_unicast_src = true;
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
        if i.peers.iter().any(|(a, _)| *a == addr) {
            ctx.log.note(
                &line.loc,
                "unicast_peer",
                format!("{addr} is listed twice; written once"),
            );
            continue;
        }
        i.peers.push((addr, line.loc.clone()));
    }
}

fn authentication(i: &mut Instance, n: &Node, r: &mut Reading<'_, '_>) {
    let ctx = &mut *r.ctx;
    if n.block.is_none() {
        ctx.log
            .error(&n.loc, "authentication: expected '{' after it");
    }
    for line in n.children() {
        match line.keyword.as_str() {
            "auth_type" => match line.arg(0) {
                Some(t @ ("PASS" | "AH")) => {
                    i.auth_type = Some((t.to_owned(), line.loc.clone()));
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
                Some(p) => i.auth_pass = Some((p.to_owned(), line.loc.clone())),
                None => ctx.log.error(&line.loc, "auth_pass: needs a password"),
            },
            other => ctx
                .log
                .left_out(&line.loc, other, "unknown keepalived keyword"),
        }
    }
}

fn notify(i: &mut Instance, n: &Node, r: &mut Reading<'_, '_>) {
    let k = n.keyword.as_str();
    let key = track::notify_key(k);
    if let Some(value) = track::hook(n, r.script_user, r.ctx) {
        if i.notify.iter().any(|(existing, _)| *existing == key) {
            r.ctx.log.note(
                &n.loc,
                k,
                "already set above; keepalived keeps the first, so does the import",
            );
        } else {
            i.notify.push((key, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::options::Does;
    use super::*;

    /// The fixture coverage test (`import/tests/coverage.rs`) wants every keyword the
    /// importer maps used by some fixture; it knows them from `HANDLED`.
    #[test]
    fn every_handled_keyword_is_in_the_coverage_list() {
        for k in KEYWORDS {
            if let Does::Handle(_) = k.does {
                for name in k.names {
                    assert!(
                        crate::import::convert::HANDLED.contains(name),
                        "{name} is handled but not in HANDLED"
                    );
                }
            }
        }
    }

    #[test]
    fn no_keyword_is_listed_twice() {
        let mut seen = std::collections::BTreeSet::new();
        for k in KEYWORDS {
            for name in k.names {
                assert!(seen.insert(*name), "{name} twice");
            }
        }
    }
}
