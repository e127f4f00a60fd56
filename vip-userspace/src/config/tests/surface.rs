//! The keys beyond VIPs, routes and scripts: `[global]` additions, `[interfaces.NAME]`,
//! `[sync_groups.NAME]`, `unicast_src_ip`, `dont_track_primary`, tracking modifiers; and
//! a round-trip property over random combinations of the new keys.

use std::time::Duration;

use proptest::prelude::*;

use super::{GLOBAL, gw, gw_and, parse, problem, problems, round_trip};
use crate::config::{ForeignVrrp, InterfaceOptions};

fn global(extra: &str) -> String {
    gw("").replace(GLOBAL, &format!("{GLOBAL}{extra}"))
}

#[test]
fn startup_delay_is_a_bounded_duration() {
    let config = round_trip(&global("startup_delay = \"90s\"\n"));
    assert_eq!(config.global.startup_delay, Duration::from_secs(90));
    assert_eq!(
        problem(&global("startup_delay = \"2h\"\n")),
        "vipd.toml:3:17: global.startup_delay: 7200s is out of range 0s..=3600s"
    );
    assert_eq!(
        problem(&global("startup_delay = 5\n")),
        "vipd.toml:3:17: global.startup_delay: expected a duration string such as \"1s\", found an integer"
    );
}

#[test]
fn interface_tables_set_foreign_vrrp_and_flap_damping() {
    let config = round_trip(&gw(concat!(
        "[interfaces.eth0]\nforeign_vrrp = \"drop\"\nup_delay = \"3s\"\n",
        "[interfaces.eth1]\n",
    )));
    assert_eq!(
        config.interfaces["eth0"],
        InterfaceOptions {
            foreign_vrrp: ForeignVrrp::Drop,
            up_delay: Duration::from_secs(3),
            down_delay: Duration::ZERO,
        }
    );
    assert_eq!(config.interfaces["eth1"], InterfaceOptions::default());
    assert_eq!(
        config.interface_options("uplink0"),
        InterfaceOptions::default()
    );
    assert_eq!(
        config.interface_options("eth0").foreign_vrrp,
        ForeignVrrp::Drop
    );
}

#[test]
fn interface_tables_are_checked() {
    assert_eq!(
        problems(&gw(concat!(
            "[interfaces.eth9]\n",
            "[interfaces.eth0]\nforeign_vrrp = \"allow\"\ndown_delay = \"61m\"\nmtu = 1500\n",
        ))),
        [
            "vipd.toml:8:13: interfaces.eth9: interface \"eth9\" does not exist (in this network namespace)",
            "vipd.toml:10:16: interfaces.eth0.foreign_vrrp: \"allow\": write \"pass\" (to the kernel, for keepalived or FRR) or \"drop\"",
            "vipd.toml:11:14: interfaces.eth0.down_delay: 3660s is out of range 0s..=3600s",
            "vipd.toml:12:1: interfaces.eth0.mtu: unknown key \"mtu\"; expected one of: foreign_vrrp, up_delay, down_delay",
        ]
    );
    assert_eq!(
        problem(&gw("[interfaces]\neth0 = 1\n")),
        "vipd.toml:9:8: interfaces.eth0: expected a table, found an integer"
    );
    assert_eq!(
        problem(&gw("[interfaces.\"eth0:1\"]\n")),
        "vipd.toml:8:13: interfaces.eth0:1: \"eth0:1\" is not a valid interface name (1 to 15 bytes, no '/', ':' or spaces)"
    );
}

#[test]
fn interface_names_with_dots_are_quoted_when_printed() {
    let host = super::FakeHost::lab().interface("eth0.100");
    let text = gw("[interfaces.\"eth0.100\"]\nup_delay = \"1s\"\n");
    let config = super::parse_on(&text, &host).unwrap();
    let printed = config.to_toml_string();
    assert!(printed.contains("[interfaces.\"eth0.100\"]\n"), "{printed}");
    assert_eq!(super::parse_on(&printed, &host).unwrap(), config);
}

#[test]
fn sync_group_tables_hold_the_group_hooks() {
    let text = gw_and(concat!(
        "name = \"gw2\"\ninterface = \"eth1\"\nvrid = 52\nvips = [\"192.0.2.9\"]\nsync_group = \"edge\"\n",
        "[sync_groups.edge]\nnotify = \"/bin/notify\"\nnotify_master = [\"/bin/notify\", \"up\"]\n",
    ))
    .replace("vips = [\"192.0.2.1/24\"]\n", "vips = [\"192.0.2.1/24\"]\nsync_group = \"edge\"\n");
    let config = round_trip(&text);
    let edge = &config.sync_groups["edge"];
    assert_eq!(edge.members, [0, 1]);
    assert_eq!(
        edge.notify.any.as_ref().map(|c| c.program()),
        Some("/bin/notify")
    );
    assert_eq!(
        edge.notify.master.as_ref().map(|c| c.args().to_vec()),
        Some(vec!["up".to_owned()])
    );
    assert_eq!(edge.notify.backup, None);
}

#[test]
fn a_sync_group_table_must_name_a_group_some_instance_is_in() {
    assert_eq!(
        problem(&gw("[sync_groups.edge]\nnotify = \"/bin/notify\"\n")),
        "vipd.toml:8:14: sync_groups.edge: no [[vrrp]] instance has sync_group = \"edge\"; these hooks would never run"
    );
    assert_eq!(
        problem(&gw(
            "sync_group = \"edge\"\n[sync_groups.edge]\nnotify_up = \"/bin/notify\"\n"
        )),
        "vipd.toml:10:1: sync_groups.edge.notify_up: unknown key \"notify_up\"; expected one of: notify, notify_master, notify_backup, notify_fault, notify_stop"
    );
}

#[test]
fn unicast_src_ip_is_an_address_of_the_instance_family_and_not_a_vip() {
    let config = round_trip(&gw("unicast_src_ip = \"192.0.2.11\"\n"));
    assert_eq!(
        config.instances[0].unicast_src_ip,
        Some("192.0.2.11".parse().unwrap())
    );
    assert_eq!(
        problem(&gw("unicast_src_ip = \"2001:db8::11\"\n")),
        "vipd.toml:8:18: vrrp[0].unicast_src_ip: 2001:db8::11 is IPv6 but this instance's VIPs are IPv4"
    );
    assert_eq!(
        problem(&gw("unicast_src_ip = \"192.0.2.1\"\n")),
        "vipd.toml:8:18: vrrp[0].unicast_src_ip: 192.0.2.1 is a VIP of this daemon, in vrrp[0] \"gw\" (line 3); adverts come from this router's own address, which stays when the VIPs move"
    );
    assert_eq!(
        problem(&gw("unicast_src_ip = \"192.0.2.0/24\"\n")),
        "vipd.toml:8:18: vrrp[0].unicast_src_ip: \"192.0.2.0/24\": write one address, without a prefix length"
    );
    assert_eq!(
        problem(&gw("unicast_src_ip = \"224.0.0.18\"\n")),
        "vipd.toml:8:18: vrrp[0].unicast_src_ip: \"224.0.0.18\" is a multicast address"
    );
}

#[test]
fn dont_track_primary_is_a_boolean_defaulting_to_false() {
    assert!(!parse(&gw("")).unwrap().instances[0].dont_track_primary);
    assert!(round_trip(&gw("dont_track_primary = true\n")).instances[0].dont_track_primary);
    assert_eq!(
        problem(&gw("dont_track_primary = \"yes\"\n")),
        "vipd.toml:8:22: vrrp[0].dont_track_primary: expected true or false, found a string"
    );
}

#[test]
fn tracking_takes_keepalived_modifiers() {
    let config = round_trip(&gw(concat!(
        "track_interfaces = [{ name = \"uplink0\", weight = 10, reverse = true }]\n",
        "track_scripts = [{ command = \"/bin/check\", weight = -5, reverse = true, init_fail = true }]\n",
        "track_files = [{ path = \"/run/prio\", weight = 0, reverse = true }]\n",
    )));
    let i = &config.instances[0];
    assert!(i.track_interfaces[0].reverse);
    assert_eq!(i.track_interfaces[0].weight, 10);
    assert!(i.track_scripts[0].reverse && i.track_scripts[0].init_fail);
    assert_eq!(
        (i.track_files[0].weight, i.track_files[0].reverse),
        (0, true)
    );
    assert_eq!(
        problem(&gw(
            "track_scripts = [{ command = \"/bin/check\", init_fail = 1 }]\n"
        )),
        "vipd.toml:8:56: vrrp[0].track_scripts[0].init_fail: expected true or false, found an integer"
    );
    assert_eq!(
        problem(&gw(
            "track_files = [{ path = \"/run/x\", revers = true }]\n"
        )),
        "vipd.toml:8:35: vrrp[0].track_files[0].revers: unknown key \"revers\"; did you mean \"reverse\"?"
    );
    assert_eq!(
        problem(&gw(
            "track_interfaces = [{ name = \"uplink0\", reverse = \"no\" }]\n"
        )),
        "vipd.toml:8:51: vrrp[0].track_interfaces[0].reverse: expected true or false, found a string"
    );
}

fn vip_element() -> impl Strategy<Value = String> {
    let v4 = (
        1u8..=250,
        8u8..=32,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(host, len, label, brd, nopr)| {
            let mut fields = vec![format!("address = \"10.1.1.{host}/{len}\"")];
            if label {
                fields.push("label = \"eth0:v\"".into());
            }
            if brd && len < 31 {
                fields.push("broadcast = \"+\"".into());
            }
            if nopr {
                fields.push("noprefixroute = true".into());
            }
            format!("{{ {} }}", fields.join(", "))
        });
    let plain = (1u8..=250).prop_map(|host| format!("\"10.1.2.{host}/24\""));
    let dev = (1u8..=250).prop_map(|host| {
        format!("{{ address = \"10.1.3.{host}\", dev = \"eth1\", scope = \"link\" }}")
    });
    prop_oneof![v4, plain, dev]
}

fn route_element() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("\"default\"".to_owned()),
            (0u8..=255).prop_map(|n| format!("\"172.16.{n}.0/24\""))
        ],
        prop_oneof![
            Just(None),
            Just(Some("via = \"192.0.2.254\"")),
            Just(Some("dev = \"eth1\""))
        ],
        prop_oneof![
            Just("\"main\"".to_owned()),
            Just("\"local\"".to_owned()),
            (1u32..=100_000).prop_map(|t| t.to_string())
        ],
        proptest::option::of(0u32..=u32::MAX),
        prop_oneof![
            Just("\"static\"".to_owned()),
            Just("\"vipd\"".to_owned()),
            (0u8..=255).prop_map(|p| p.to_string())
        ],
        prop_oneof![
            Just("unicast"),
            Just("blackhole"),
            Just("unreachable"),
            Just("prohibit")
        ],
        proptest::option::of(prop_oneof![Just("global"), Just("link"), Just("host")]),
    )
        .prop_map(|(to, hop, table, metric, protocol, kind, scope)| {
            let mut fields = vec![format!("to = {to}")];
            if kind == "unicast"
                && let Some(hop) = hop
            {
                fields.push(hop.to_owned());
            }
            fields.push(format!("table = {table}"));
            if let Some(m) = metric {
                fields.push(format!("metric = {m}"));
            }
            fields.push(format!("protocol = {protocol}"));
            fields.push(format!("type = \"{kind}\""));
            if let Some(s) = scope {
                fields.push(format!("scope = \"{s}\""));
            }
            format!("{{ {} }}", fields.join(", "))
        })
}

fn rule_element() -> impl Strategy<Value = String> {
    (
        proptest::option::of((0u8..=255).prop_map(|n| format!("from = \"10.{n}.0.0/16\""))),
        proptest::option::of(Just("oif = \"eth1\"".to_owned())),
        proptest::option::of(prop_oneof![
            (0u32..=u32::MAX).prop_map(|m| format!("fwmark = {m}")),
            (any::<u32>(), any::<u32>()).prop_map(|(v, m)| format!("fwmark = \"{v:#x}/{m}\"")),
        ]),
        proptest::option::of(1u32..=32765),
        prop_oneof![Just("table"), Just("blackhole"), Just("prohibit")],
    )
        .prop_map(|(from, oif, fwmark, priority, action)| {
            let mut fields: Vec<String> = [from, oif, fwmark].into_iter().flatten().collect();
            if fields.is_empty() {
                fields.push("iif = \"eth0\"".into());
            }
            if action == "table" {
                fields.push("table = 7".into());
            }
            if let Some(p) = priority {
                fields.push(format!("priority = {p}"));
            }
            fields.push(format!("action = \"{action}\""));
            format!("{{ {} }}", fields.join(", "))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any combination of the new keys prints back to an equal configuration.
    #[test]
    fn new_keys_round_trip(
        vips in proptest::collection::vec(vip_element(), 0..4),
        excluded in proptest::collection::vec(vip_element(), 0..3),
        routes in proptest::collection::vec(route_element(), 0..3),
        rules in proptest::collection::vec(rule_element(), 0..3),
        reverse in any::<bool>(),
        init_fail in any::<bool>(),
        weight in -254i16..=254,
        dont_track in any::<bool>(),
        delay in 0u64..=3600,
        drop in any::<bool>(),
    ) {
        let mut all_vips = vec!["\"192.0.2.1/24\"".to_owned()];
        all_vips.extend(vips);
        let text = format!(
            "[global]\nrouter_id = \"r1\"\nstartup_delay = \"{delay}s\"\n\
             [interfaces.eth1]\nforeign_vrrp = \"{}\"\ndown_delay = \"{delay}ms\"\n\
             [[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\nsync_group = \"g\"\n\
             vips = [{}]\nvips_excluded = [{}]\nvirtual_routes = [{}]\nvirtual_rules = [{}]\n\
             dont_track_primary = {dont_track}\n\
             track_interfaces = [{{ name = \"uplink0\", weight = {weight}, reverse = {reverse} }}]\n\
             track_scripts = [{{ command = [\"/bin/check\", \"x\"], reverse = {reverse}, init_fail = {init_fail} }}]\n\
             track_files = [{{ path = \"/run/p\", weight = {weight}, reverse = {reverse} }}]\n\
             notify_fault = [\"/bin/notify\", \"f\"]\n\
             [sync_groups.g]\nnotify_stop = \"/bin/notify\"\n",
            if drop { "drop" } else { "pass" },
            all_vips.join(", "),
            excluded.join(", "),
            routes.join(", "),
            rules.join(", "),
        );
        // Duplicate addresses or routes are refused, which is fine; what loads must print
        // back to itself.
        if let Ok(config) = parse(&text) {
            let printed = config.to_toml_string();
            let again = parse(&printed);
            prop_assert_eq!(again.as_ref(), Ok(&config), "printed:\n{}", printed);
        }
    }
}

#[test]
fn realtime_priority_defaults_to_1_and_stops_at_99() {
    assert_eq!(round_trip(&global("")).global.realtime_priority, 1);
    assert_eq!(
        round_trip(&global("realtime_priority = 0\n"))
            .global
            .realtime_priority,
        0
    );
    assert!(problem(&global("realtime_priority = 100\n")).contains("global.realtime_priority"));
}
