//! What a reload does to one running instance, decided before anything is touched: left
//! alone, changed in place (and which fields), or restarted (and why). The same decision
//! serves the reload and its dry run (`vipd reload --dry-run`), so the two never disagree.
//!
//! The rule: an instance is the virtual router its [`Identity`] names (interface, VRID,
//! family, version, protocol). Whatever else changes is taken on by the running instance without
//! leaving its state: priority and tracking (the next advertisement carries the new
//! effective priority; if it now loses, the ordinary election and preemption rules
//! decide, make-before-break through the data plane's yield), the advertisement interval,
//! VIPs and proxy addresses (new ones announced, removed ones withdrawn, the others
//! untouched), admission, preemption, Accept_Mode, announcements, BFD settings, sync-group
//! membership, and everything only the shell carries out (routes, rules, hooks, VIP
//! options). A changed identity is a remove plus an add. Three more fields restart the
//! instance, each for its reason in [`RESTARTS`]. `super::group` carries each in-place
//! field out (`Group::reshape`); docs/operations.md lists them for operators.

use super::instance::{Identity, Instance};

/// A field of an instance, named as the configuration file names it.
pub type Field = &'static str;

/// Fields that restart an instance although its identity is the same, with why.
pub const RESTARTS: &[(Field, &str)] = &[
    (
        "vmac",
        "the MAC address clients reach the VIPs at changes; a restart announces the new one",
    ),
    (
        "unicast_src_ip",
        "the advertisements' source (this router's side of the tie-break, and what the \
         peers admit) changes",
    ),
    (
        "carp",
        "CARP's passphrase, replay mode, HMAC form, dead ratio or demotion change: its \
         advertisements are signed and judged afresh from the restart on",
    ),
];

/// What a reload does with one instance that runs before and after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Unchanged,
    /// Taken on by the running instance, which keeps its state: these fields changed.
    InPlace(Vec<Field>),
    /// Stopped and started again, for this reason.
    Restart(String),
}

/// Why two identities are two virtual routers: the first field that differs, with its
/// old and new values; `None` when they are the same router.
pub fn identity_change(old: &Identity, new: &Identity) -> Option<String> {
    // Destructured so a field added to the identity cannot be forgotten here.
    let Identity {
        interface,
        vrid,
        family,
        version,
        protocol,
    } = old;
    let differs = [
        (
            "interface",
            *interface != new.interface,
            interface.clone(),
            new.interface.clone(),
        ),
        (
            "vrid",
            *vrid != new.vrid,
            vrid.to_string(),
            new.vrid.to_string(),
        ),
        (
            "family",
            *family != new.family,
            family.name().to_owned(),
            new.family.name().to_owned(),
        ),
        (
            "version",
            *version != new.version,
            version.number().to_string(),
            new.version.number().to_string(),
        ),
        (
            "protocol",
            *protocol != new.protocol,
            protocol.as_str().to_owned(),
            new.protocol.as_str().to_owned(),
        ),
    ];
    differs
        .into_iter()
        .find(|(_, d, _, _)| *d)
        .map(|(field, _, from, to)| {
            format!("{field} changed ({from} → {to}): another virtual router, removed and added")
        })
}

/// The fields the core sees that differ between `old` and `new` (same name; identity and
/// name are not fields here), in configuration order.
pub fn core_fields(old: &Instance, new: &Instance) -> Vec<Field> {
    // Destructured so a field added to the instance cannot be forgotten here.
    let Instance {
        name: _,
        identity: _,
        priority,
        advert_interval,
        preempt,
        preempt_delay,
        accept,
        vmac,
        vips,
        vips_excluded,
        proxy_arp,
        shared_vips,
        unicast_src_ip,
        unicast_peers,
        admission,
        tracking,
        announce,
        bfd,
        sync_group,
        carp,
    } = old;
    let checks: [(Field, bool); 25] = [
        ("priority", *priority != new.priority),
        ("advert_interval", *advert_interval != new.advert_interval),
        ("preempt", *preempt != new.preempt),
        ("preempt_delay", *preempt_delay != new.preempt_delay),
        ("accept", *accept != new.accept),
        ("vmac", *vmac != new.vmac),
        ("vips", *vips != new.vips),
        ("vips_excluded", *vips_excluded != new.vips_excluded),
        ("proxy_arp", *proxy_arp != new.proxy_arp),
        ("shared_vips", *shared_vips != new.shared_vips),
        ("unicast_src_ip", *unicast_src_ip != new.unicast_src_ip),
        ("unicast_peers", *unicast_peers != new.unicast_peers),
        (
            "allowed_peers",
            admission.allowed_peers != new.admission.allowed_peers,
        ),
        ("auth_pass", admission.auth_pass != new.admission.auth_pass),
        (
            "dont_track_primary",
            tracking.dont_track_primary != new.tracking.dont_track_primary,
        ),
        (
            "track_interfaces",
            tracking.interfaces != new.tracking.interfaces,
        ),
        ("track_scripts", tracking.scripts != new.tracking.scripts),
        ("track_files", tracking.files != new.tracking.files),
        (
            "track_processes",
            tracking.processes != new.tracking.processes,
        ),
        ("garp_repeat", announce.repeat != new.announce.repeat),
        ("garp_interval", announce.interval != new.announce.interval),
        ("garp_refresh", announce.refresh != new.announce.refresh),
        ("bfd", *bfd != new.bfd),
        ("sync_group", *sync_group != new.sync_group),
        ("carp", *carp != new.carp),
    ];
    checks
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(f, _)| f)
        .collect()
}

/// What a reload does with an instance running as `old` and configured as `new`, given
/// `shell`: the fields only the shell sees that differ (routes, rules, hooks, VIP options;
/// see `config::Instance::shell_fields`).
pub fn change(old: &Instance, new: &Instance, shell: &[Field]) -> Change {
    if let Some(why) = identity_change(&old.identity, &new.identity) {
        return Change::Restart(why);
    }
    let mut fields = core_fields(old, new);
    for f in shell {
        if !fields.contains(f) {
            fields.push(f);
        }
    }
    if let Some((field, why)) = RESTARTS.iter().find(|(f, _)| fields.contains(f)) {
        return Change::Restart(format!("{field} changed: {why}"));
    }
    if fields.is_empty() {
        Change::Unchanged
    } else {
        Change::InPlace(fields)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::vrrp::{
        Family, Interval, Version,
        instance::BfdSettings,
        tracking::{TrackedFile, TrackedProcess, TrackedScript},
    };

    fn gw() -> Instance {
        Instance::new("gw", Identity::new("eth0", 51, Family::Ipv4, Version::V3))
            .with_vip("192.0.2.1".parse().unwrap())
    }

    #[test]
    fn the_same_instance_is_unchanged() {
        assert_eq!(change(&gw(), &gw(), &[]), Change::Unchanged);
    }

    #[test]
    fn every_field_but_the_identity_is_taken_on_in_place() {
        let mut new = gw().with_vip("192.0.2.2".parse().unwrap());
        new.priority = 90;
        new.advert_interval = Interval::from_centis(2).unwrap();
        new.preempt = false;
        new.preempt_delay = Duration::from_secs(1);
        new.accept = false;
        new.proxy_arp.push("203.0.113.9".parse().unwrap());
        new.unicast_peers.push("192.0.2.12".parse().unwrap());
        new.admission
            .allowed_peers
            .push("192.0.2.12".parse().unwrap());
        new.tracking.dont_track_primary = true;
        new.tracking.scripts.push(TrackedScript {
            key: "/bin/check".into(),
            weight: -10,
            ..TrackedScript::default()
        });
        new.tracking.files.push(TrackedFile {
            key: "/run/f".into(),
            weight: 1,
            reverse: false,
        });
        new.tracking.processes.push(TrackedProcess {
            weight: -50,
            reverse: false,
            quorum: 1,
            quorum_max: TrackedProcess::UNLIMITED,
            fork_delay: Duration::ZERO,
            terminate_delay: Duration::ZERO,
        });
        new.announce.repeat = 2;
        new.announce.refresh = Some(Duration::from_secs(60));
        new.bfd = Some(BfdSettings {
            peers: vec![],
            interval: Duration::from_millis(3),
            multiplier: 3,
            echo: true,
            control_interval: Duration::from_secs(1),
            notify: None,
        });
        new.sync_group = Some("edge".into());
        let Change::InPlace(fields) = change(&gw(), &new, &["virtual_routes", "notify"]) else {
            panic!("in place")
        };
        assert_eq!(
            fields,
            [
                "priority",
                "advert_interval",
                "preempt",
                "preempt_delay",
                "accept",
                "vips",
                "proxy_arp",
                "unicast_peers",
                "allowed_peers",
                "dont_track_primary",
                "track_scripts",
                "track_files",
                "track_processes",
                "garp_repeat",
                "garp_refresh",
                "bfd",
                "sync_group",
                "virtual_routes",
                "notify",
            ]
        );
        // What only the shell sees is a change too.
        assert_eq!(
            change(&gw(), &gw(), &["virtual_rules"]),
            Change::InPlace(vec!["virtual_rules"])
        );
    }

    #[test]
    fn another_identity_is_another_virtual_router() {
        for (new, field) in [
            (
                Identity::new("eth1", 51, Family::Ipv4, Version::V3),
                "interface",
            ),
            (Identity::new("eth0", 52, Family::Ipv4, Version::V3), "vrid"),
            (
                Identity::new("eth0", 51, Family::Ipv6, Version::V3),
                "family",
            ),
            (
                Identity::new("eth0", 51, Family::Ipv4, Version::V2),
                "version",
            ),
            (
                Identity {
                    protocol: crate::vrrp::instance::Protocol::Carp,
                    ..Identity::new("eth0", 51, Family::Ipv4, Version::V3)
                },
                "protocol",
            ),
        ] {
            let mut i = gw();
            i.identity = new;
            i.priority = 10;
            match change(&gw(), &i, &[]) {
                Change::Restart(why) => assert!(why.starts_with(field), "{why}"),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_virtual_mac_and_the_advert_source_restart_with_their_reason() {
        let mut new = gw();
        new.vmac = true;
        new.priority = 10;
        let Change::Restart(why) = change(&gw(), &new, &[]) else {
            panic!("restart")
        };
        assert!(why.starts_with("vmac changed: the MAC address"), "{why}");
        let mut new = gw();
        new.unicast_src_ip = Some("192.0.2.11".parse().unwrap());
        assert!(
            matches!(change(&gw(), &new, &[]), Change::Restart(w) if w.starts_with("unicast_src_ip"))
        );
    }
}
