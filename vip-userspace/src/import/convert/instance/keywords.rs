//! The `vrrp_instance` block's keyword table, as keepalived's parser installs one handler
//! per keyword (`vrrp_parser.c`): every keyword the importer knows, with the function
//! that reads it, or the note or reason it is reported with. A keyword missing here is
//! reported as unknown.

use std::net::IpAddr;
use std::time::Duration;

use super::super::global::{count, flag, timer};
use super::super::options::{
    Does::{Handle, LeftOut, Note},
    Keyword,
};
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
    Keyword {
        names: &["state"],
        does: Handle(state),
    },
    Keyword {
        names: &["interface"],
        does: Handle(|i, n, r| match n.arg(0) {
            Some(name) if valid_ifname(name) => {
                i.interface = Some((name.to_owned(), n.loc.clone()))
            }
            _ => bad(
                n,
                r.ctx,
                "an interface name (1 to 15 bytes, no '/', ':' or blanks)",
            ),
        }),
    },
    Keyword {
        names: &["virtual_router_id"],
        does: Handle(|i, n, r| match n.arg(0).and_then(|a| int_in(a, 1..=255)) {
            Some(v) => i.vrid = Some(v as u8),
            None => bad(n, r.ctx, "a number in 1..=255"),
        }),
    },
    Keyword {
        names: &["priority"],
        does: Handle(|i, n, r| match n.arg(0).and_then(|a| int_in(a, 1..=255)) {
            Some(v) => i.priority = Some((v as u8, n.loc.clone())),
            None => bad(n, r.ctx, "a number in 1..=255"),
        }),
    },
    Keyword {
        names: &["version"],
        does: Handle(|i, n, r| match n.arg(0).and_then(|a| int_in(a, 2..=3)) {
            Some(v) => i.version = Some((v as u8, n.loc.clone())),
            None => bad(n, r.ctx, "2 or 3"),
        }),
    },
    Keyword {
        names: &["advert_int"],
        does: Handle(|i, n, r| match n.arg(0).and_then(seconds) {
            Some(d) if d >= CENTISECOND && d <= Duration::from_secs(255) => {
                i.advert = Some((d, n.loc.clone()));
            }
            _ => bad(n, r.ctx, "seconds in 0.01..=255"),
        }),
    },
    Keyword {
        names: &["nopreempt"],
        does: Handle(|i, n, _| i.nopreempt = Some(n.loc.clone())),
    },
    Keyword {
        names: &["preempt"],
        does: Handle(|i, _, _| i.nopreempt = None),
    },
    Keyword {
        names: &["preempt_delay"],
        does: Handle(|i, n, r| match n.arg(0).and_then(seconds) {
            Some(d) if d <= Duration::from_secs(1000) => i.preempt_delay = Some((d, n.loc.clone())),
            _ => bad(n, r.ctx, "seconds in 0..=1000"),
        }),
    },
    Keyword {
        names: &["accept"],
        does: Handle(|i, n, _| i.accept = Some((true, n.loc.clone()))),
    },
    Keyword {
        names: &["no_accept"],
        does: Handle(|i, n, _| i.accept = Some((false, n.loc.clone()))),
    },
    Keyword {
        names: &["strict_mode"],
        does: Handle(|i, n, r| {
            if let Some(on) = flag(n, r.ctx) {
                i.strict = Some((on, n.loc.clone()));
            }
        }),
    },
    Keyword {
        names: &["use_vmac"],
        does: Handle(use_vmac),
    },
    Keyword {
        names: &["vmac_xmit_base"],
        does: Note(
            "vipd creates no macvlan interface, so adverts always go out on the instance's \
             own interface",
        ),
    },
    Keyword {
        names: &["native_ipv6"],
        does: Note("deprecated in keepalived: the VIPs decide the family (IPv6 is always VRRPv3)"),
    },
    Keyword {
        names: &["dont_track_primary"],
        does: Handle(|i, _, _| i.dont_track_primary = true),
    },
    Keyword {
        names: &["track_interface"],
        does: Handle(|i, n, r| i.track_ifs.extend(track::track_interfaces(n, r.ctx))),
    },
    Keyword {
        names: &["track_script"],
        does: Handle(|i, n, r| i.track_scripts.extend(track::track_refs(n, r.ctx))),
    },
    Keyword {
        names: &["track_file"],
        does: Handle(|i, n, r| i.track_files.extend(track::track_refs(n, r.ctx))),
    },
    Keyword {
        names: &["mcast_src_ip", "unicast_src_ip"],
        does: Handle(
            |i, n, r| match n.arg(0).and_then(|a| a.parse::<IpAddr>().ok()) {
                Some(a) => i.unicast_src = Some((a, n.loc.clone())),
                None => bad(n, r.ctx, "an IP address"),
            },
        ),
    },
    Keyword {
        names: &["unicast_peer"],
        does: Handle(unicast_peer),
    },
    Keyword {
        names: &["check_unicast_src"],
        does: Handle(|i, _, _| i.check_unicast_src = true),
    },
    Keyword {
        names: &["unicast_fault_no_peer"],
        does: LeftOut("vipd advertises by multicast when no unicast_peers are listed"),
    },
    Keyword {
        names: &["authentication"],
        does: Handle(authentication),
    },
    Keyword {
        names: &["virtual_ipaddress", "virtual_ipaddress_excluded"],
        does: Handle(|i, n, r| {
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
        }),
    },
    Keyword {
        names: &["no_virtual_ipaddress"],
        does: Note("vipd requires at least one VIP; an instance without one is left out"),
    },
    Keyword {
        names: &["virtual_routes"],
        does: Handle(|i, n, r| {
            need_block(n, r.ctx);
            for line in n.children() {
                i.routes.extend(routing::route(line, r.ctx));
            }
        }),
    },
    Keyword {
        names: &["virtual_rules"],
        does: Handle(|i, n, r| {
            need_block(n, r.ctx);
            for line in n.children() {
                i.rules.extend(routing::rule(line, r.ctx));
            }
        }),
    },
    Keyword {
        names: &[
            "notify",
            "notify_master",
            "notify_backup",
            "notify_fault",
            "notify_stop",
        ],
        does: Handle(notify),
    },
    Keyword {
        names: &["garp_master_delay"],
        does: Handle(|i, n, r| i.garp_delay = timer(n, r.ctx).map(|d| (d, n.loc.clone()))),
    },
    Keyword {
        names: &["garp_master_repeat"],
        does: Handle(|i, n, r| i.garp_repeat = count(n, r.ctx).map(|c| (c, n.loc.clone()))),
    },
    Keyword {
        names: &["garp_master_refresh"],
        does: Handle(|i, n, r| i.garp_refresh = timer(n, r.ctx).map(|d| (d, n.loc.clone()))),
    },
    Keyword {
        names: &["garp_master_refresh_repeat"],
        does: Handle(|i, n, r| {
            i.garp_refresh_repeat = count(n, r.ctx).map(|c| (c, n.loc.clone()));
        }),
    },
    Keyword {
        names: &["debug"],
        does: Note("not implemented in keepalived either"),
    },
    // What vipd has no equivalent for, with why.
    Keyword {
        names: &["use_vmac_addr"],
        does: LeftOut("vipd creates no macvlan interfaces"),
    },
    Keyword {
        names: &["use_ipvlan"],
        does: LeftOut("vipd creates no ipvlan interfaces"),
    },
    Keyword {
        names: &["vrf"],
        does: LeftOut("no vipd equivalent (run vipd in the VRF's context)"),
    },
    Keyword {
        names: &["track_process"],
        does: LeftOut("vipd does not track processes; use a track script"),
    },
    Keyword {
        names: &["track_bfd"],
        does: LeftOut("vipd does not speak BFD"),
    },
    Keyword {
        names: &["mcast_dst_ip"],
        does: LeftOut(
            "vipd sends to the standard group (224.0.0.18 / ff02::12) or to unicast_peers",
        ),
    },
    Keyword {
        names: &["unicast_ttl"],
        does: LeftOut("vipd always sends with TTL / hop limit 255, as RFC 5798 requires"),
    },
    Keyword {
        names: &["track_src_ip"],
        does: LeftOut("no vipd equivalent"),
    },
    Keyword {
        names: &["old_unicast_checksum"],
        does: LeftOut("vipd computes the RFC 5798 checksum only"),
    },
    Keyword {
        names: &["v3_checksum_as_v2"],
        does: LeftOut("vipd computes the RFC 5798 checksum only"),
    },
    Keyword {
        names: &["skip_check_adv_addr"],
        does: LeftOut("vipd checks every advertisement as RFC 5798 section 7.1 says"),
    },
    Keyword {
        names: &["lower_prio_no_advert"],
        does: LeftOut("no vipd equivalent"),
    },
    Keyword {
        names: &["higher_prio_send_advert"],
        does: LeftOut("no vipd equivalent"),
    },
    Keyword {
        names: &["owner_ignore_adverts"],
        does: LeftOut("no vipd equivalent"),
    },
    Keyword {
        names: &["down_timer_adverts"],
        does: LeftOut("vipd uses RFC 5798's 3 intervals plus skew"),
    },
    Keyword {
        names: &["timer_expired_backup"],
        does: LeftOut("no vipd equivalent"),
    },
    Keyword {
        names: &["thread_timer_expired"],
        does: LeftOut("no vipd equivalent"),
    },
    Keyword {
        names: &["kernel_rx_buf_size"],
        does: LeftOut("no vipd equivalent"),
    },
    Keyword {
        names: &["linkbeat_use_polling"],
        does: LeftOut("vipd follows link state through netlink only"),
    },
    Keyword {
        names: &["promote_secondaries"],
        does: LeftOut("no vipd equivalent; set net.ipv4.conf.IF.promote_secondaries with sysctl"),
    },
    Keyword {
        names: &["lvs_sync_daemon_interface"],
        does: LeftOut("out of scope: vipd does not do load balancing"),
    },
    Keyword {
        names: &["garp_lower_prio_delay"],
        does: LeftOut("no vipd equivalent"),
    },
    Keyword {
        names: &["garp_lower_prio_repeat"],
        does: LeftOut("no vipd equivalent"),
    },
    Keyword {
        names: &["garp_extra_if"],
        does: LeftOut("vipd announces VIPs only on their own devices"),
    },
    Keyword {
        names: &["vmac_garp_intvl"],
        does: LeftOut("vipd announces VIPs only on their own devices"),
    },
    Keyword {
        names: &["smtp_alert"],
        does: LeftOut("vipd sends no e-mail; use a notify hook"),
    },
    Keyword {
        names: &["notify_deleted"],
        does: LeftOut("vipd runs notify_stop (STOP) for an instance a reload removes"),
    },
    Keyword {
        names: &["notify_master_rx_lower_pri"],
        does: LeftOut("no vipd equivalent"),
    },
    Keyword {
        names: &["notify_priority_changes"],
        does: LeftOut("vipd has no notify FIFO"),
    },
    Keyword {
        names: &["auth_hmac"],
        does: LeftOut(
            "keepalived's own HMAC extension: no other implementation speaks it; use allowed_peers",
        ),
    },
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
