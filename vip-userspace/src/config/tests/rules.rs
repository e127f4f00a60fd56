//! One test per rejection rule, each asserting the exact `file:line:col: path: message`.

use super::{GLOBAL, gw, gw_and, parse, problem, problems, warnings};

#[test]
fn the_base_files_are_valid() {
    assert!(parse(&gw("")).is_ok());
    let second = "name = \"gw2\"\ninterface = \"eth0\"\nvrid = 52\nvips = [\"192.0.2.9\"]\n";
    assert!(parse(&gw_and(second)).is_ok());
}

#[test]
fn unknown_key_is_named_with_its_line_and_nearest_known_key() {
    assert_eq!(
        problem(&gw("advert_intervl = \"1s\"\n")),
        "vipd.toml:8:1: vrrp[0].advert_intervl: unknown key \"advert_intervl\"; did you mean \"advert_interval\"?"
    );
}

#[test]
fn unknown_key_without_a_near_miss_lists_the_known_keys() {
    let text = gw("").replace(
        "router_id = \"r1\"\n",
        "router_id = \"r1\"\ncolour = \"red\"\n",
    );
    assert_eq!(
        problem(&text),
        "vipd.toml:3:1: global.colour: unknown key \"colour\"; expected one of: router_id, pin_path, control_socket, metrics, script_user, startup_delay, realtime_priority, control_group, admin_group, state_file"
    );
}

#[test]
fn unknown_key_inside_an_inline_table_is_reported() {
    assert_eq!(
        problem(&gw("track_files = [{ path = \"/run/x\", wieght = 2 }]\n")),
        "vipd.toml:8:35: vrrp[0].track_files[0].wieght: unknown key \"wieght\"; did you mean \"weight\"?"
    );
}

#[test]
fn unknown_top_level_table_is_reported() {
    assert_eq!(
        problem(&gw("[[vrp]]\nname = \"x\"\n")),
        "vipd.toml:8:3: vrp: unknown key \"vrp\"; did you mean \"vrrp\"?"
    );
}

#[test]
fn wrong_type_names_expected_and_found() {
    assert_eq!(
        problem(&gw("").replace("vrid = 51", "vrid = \"51\"")),
        "vipd.toml:6:8: vrrp[0].vrid: expected an integer, found a string"
    );
    assert_eq!(
        problem(&gw("preempt = \"yes\"\n")),
        "vipd.toml:8:11: vrrp[0].preempt: expected true or false, found a string"
    );
    assert_eq!(
        problem(&gw("advert_interval = 1\n")),
        "vipd.toml:8:19: vrrp[0].advert_interval: expected a duration string such as \"1s\", found an integer"
    );
}

#[test]
fn out_of_range_integers_show_the_range() {
    assert_eq!(
        problem(&gw("").replace("vrid = 51", "vrid = 0")),
        "vipd.toml:6:8: vrrp[0].vrid: 0 is out of range 1..=255"
    );
    assert_eq!(
        problem(&gw("priority = 256\n")),
        "vipd.toml:8:12: vrrp[0].priority: 256 is out of range 1..=255"
    );
    assert_eq!(
        problem(&gw("garp_repeat = 99999999999999999999\n")),
        "vipd.toml:8:15: vrrp[0].garp_repeat: 99999999999999999999 is out of range 0..=100"
    );
    assert_eq!(
        problem(&gw(
            "track_interfaces = [{ name = \"uplink0\", weight = -255 }]\n"
        )),
        "vipd.toml:8:50: vrrp[0].track_interfaces[0].weight: -255 is out of range -254..=254"
    );
}

#[test]
fn unknown_version_is_rejected() {
    assert_eq!(
        problem(&gw("version = 4\n")),
        "vipd.toml:8:11: vrrp[0].version: version 4 does not exist: write 3 (RFC 5798) or 2 (RFC 3768)"
    );
}

#[test]
fn v3_interval_must_be_whole_centiseconds() {
    assert_eq!(
        problem(&gw("advert_interval = \"15ms\"\n")),
        "vipd.toml:8:19: vrrp[0].advert_interval: 15ms is not a multiple of 10 ms (VRRPv3 counts centiseconds)"
    );
}

#[test]
fn v3_interval_must_fit_twelve_bits_of_centiseconds() {
    assert_eq!(
        problem(&gw("advert_interval = \"41s\"\n")),
        "vipd.toml:8:19: vrrp[0].advert_interval: 41s is out of range 10ms..=40.95s for VRRPv3 (12 bits of centiseconds)"
    );
    assert!(parse(&gw("advert_interval = \"40.95s\"\n")).is_ok());
    assert!(parse(&gw("advert_interval = \"10ms\"\n")).is_ok());
}

#[test]
fn v2_interval_must_be_whole_seconds() {
    assert_eq!(
        problem(&gw("version = 2\nadvert_interval = \"1500ms\"\n")),
        "vipd.toml:9:19: vrrp[0].advert_interval: 1500ms is not a whole number of seconds (VRRPv2 counts seconds)"
    );
    assert_eq!(
        problem(&gw("version = 2\nadvert_interval = \"256s\"\n")),
        "vipd.toml:9:19: vrrp[0].advert_interval: 256s is out of range 1s..=255s for VRRPv2"
    );
}

#[test]
fn interval_rules_follow_a_version_written_after_the_interval() {
    assert!(parse(&gw("advert_interval = \"255s\"\nversion = 2\n")).is_ok());
}

#[test]
fn auth_pass_is_refused_with_v3() {
    assert_eq!(
        problem(&gw("auth_pass = \"secret\"\n")),
        "vipd.toml:8:13: vrrp[0].auth_pass: authentication is VRRPv2 only (RFC 5798 removed it): remove auth_pass or set version = 2"
    );
}

#[test]
fn auth_pass_must_fit_the_eight_byte_field() {
    assert_eq!(
        problem(&gw("version = 2\nauth_pass = \"123456789\"\n")),
        "vipd.toml:9:13: vrrp[0].auth_pass: 9 bytes: the VRRPv2 password is 1 to 8 bytes"
    );
    assert_eq!(
        problem(&gw("version = 2\nauth_pass = \"\"\n")),
        "vipd.toml:9:13: vrrp[0].auth_pass: 0 bytes: the VRRPv2 password is 1 to 8 bytes"
    );
}

#[test]
fn v2_refuses_ipv6_vips() {
    let text = gw("version = 2\n").replace("192.0.2.1/24", "2001:db8::1/64");
    assert_eq!(
        problem(&text),
        "vipd.toml:7:9: vrrp[0].vips[0]: 2001:db8::1/64 is IPv6, which VRRPv2 (RFC 3768) cannot carry: set version = 3"
    );
}

#[test]
fn mixed_families_ask_for_two_sections_with_the_same_vrid() {
    let text = gw("").replace("\"192.0.2.1/24\"", "\"192.0.2.1/24\", \"2001:db8::1/64\"");
    assert_eq!(
        problem(&text),
        "vipd.toml:7:25: vrrp[0].vips[1]: 2001:db8::1/64 is IPv6 but the first VIP is IPv4: one instance serves one address family; split it into two [[vrrp]] sections with the same vrid, one per family"
    );
}

#[test]
fn empty_vips_are_refused() {
    assert_eq!(
        problem(&gw("").replace("[\"192.0.2.1/24\"]", "[]")),
        "vipd.toml:7:8: vrrp[0].vips: must list at least one address"
    );
}

#[test]
fn malformed_or_unusable_vips_are_refused() {
    let with_vip = |vip: &str| problem(&gw("").replace("192.0.2.1/24", vip));
    assert_eq!(
        with_vip("192.0.2.1/33"),
        "vipd.toml:7:9: vrrp[0].vips[0]: \"192.0.2.1/33\" is not an address with a prefix length, e.g. \"192.0.2.1/24\""
    );
    assert_eq!(
        with_vip("gateway"),
        "vipd.toml:7:9: vrrp[0].vips[0]: \"gateway\" is not an IP address"
    );
    assert_eq!(
        with_vip("224.0.0.18"),
        "vipd.toml:7:9: vrrp[0].vips[0]: \"224.0.0.18\" is a multicast address"
    );
    assert_eq!(
        with_vip("192.0.2.1/0"),
        "vipd.toml:7:9: vrrp[0].vips[0]: \"192.0.2.1/0\": a /0 prefix would claim every address"
    );
}

#[test]
fn the_same_vip_twice_in_one_instance_is_refused() {
    let text = gw("").replace("\"192.0.2.1/24\"", "\"192.0.2.1/24\", \"192.0.2.1/32\"");
    assert_eq!(
        problem(&text),
        "vipd.toml:7:25: vrrp[0].vips[1]: 192.0.2.1 is already listed at vrrp[0].vips[0]"
    );
}

#[test]
fn duplicate_instance_names_point_at_the_first() {
    let text = gw_and("name = \"gw\"\ninterface = \"eth1\"\nvrid = 52\nvips = [\"192.0.2.9\"]\n");
    assert_eq!(
        problem(&text),
        "vipd.toml:9:8: vrrp[1].name: name \"gw\" is already used by vrrp[0] \"gw\" (line 3)"
    );
}

#[test]
fn a_vrid_is_used_once_per_interface_and_family() {
    let text = gw_and("name = \"gw2\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"192.0.2.9\"]\n");
    assert_eq!(
        problem(&text),
        "vipd.toml:11:8: vrrp[1].vrid: vrid 51 on eth0 (IPv4) is already used by vrrp[0] \"gw\" (line 3); a VRID (a CARP VHID) names one virtual router per interface, family and protocol"
    );
    // The same VRID in the other family, or on another interface, is another router.
    let v6 = gw_and("name = \"gw6\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"2001:db8::1\"]\n");
    assert!(parse(&v6).is_ok());
    let other_link =
        gw_and("name = \"gw2\"\ninterface = \"eth1\"\nvrid = 51\nvips = [\"192.0.2.9\"]\n");
    assert!(parse(&other_link).is_ok());
}

#[test]
fn a_vip_belongs_to_one_instance_per_interface() {
    let text =
        gw_and("name = \"gw2\"\ninterface = \"eth0\"\nvrid = 52\nvips = [\"192.0.2.1/32\"]\n");
    assert_eq!(
        problem(&text),
        "vipd.toml:12:9: vrrp[1].vips[0]: 192.0.2.1 on eth0 is already a VIP of vrrp[0] \"gw\" (line 3)"
    );
    // On another interface keepalived allows it: loaded, with a warning.
    let other_link =
        gw_and("name = \"gw2\"\ninterface = \"eth1\"\nvrid = 52\nvips = [\"192.0.2.1/32\"]\n");
    let warned: Vec<String> = warnings(&other_link)
        .into_iter()
        .filter(|w| !w.contains("sets no allowed_peers"))
        .collect();
    assert_eq!(
        warned,
        [
            "vipd.toml:12:9: vrrp[1].vips[0]: 192.0.2.1 is also a VIP of vrrp[0] \"gw\" (line 3) on eth0; both instances add it while master, so make sure they are never master at the same time"
        ]
    );
}

#[test]
fn peers_must_share_the_vips_family() {
    assert_eq!(
        problem(&gw("unicast_peers = [\"2001:db8::12\"]\n")),
        "vipd.toml:8:18: vrrp[0].unicast_peers[0]: 2001:db8::12 is IPv6 but this instance's VIPs are IPv4"
    );
    assert_eq!(
        problem(&gw("allowed_peers = [\"2001:db8::12\"]\n")),
        "vipd.toml:8:18: vrrp[0].allowed_peers[0]: 2001:db8::12 is IPv6 but this instance's VIPs are IPv4"
    );
}

#[test]
fn peers_are_single_usable_addresses() {
    assert_eq!(
        problem(&gw("allowed_peers = [\"192.0.2.0/24\"]\n")),
        "vipd.toml:8:18: vrrp[0].allowed_peers[0]: \"192.0.2.0/24\": a peer is one address, without a prefix length"
    );
    assert_eq!(
        problem(&gw("unicast_peers = [\"0.0.0.0\"]\n")),
        "vipd.toml:8:18: vrrp[0].unicast_peers[0]: \"0.0.0.0\" is the unspecified address"
    );
}

#[test]
fn a_unicast_peer_cannot_be_one_of_our_vips() {
    assert_eq!(
        problem(&gw("unicast_peers = [\"192.0.2.1\"]\n")),
        "vipd.toml:8:18: vrrp[0].unicast_peers[0]: 192.0.2.1 is a VIP of this daemon, in vrrp[0] \"gw\" (line 3); a peer is another router's own address"
    );
}

#[test]
fn a_unicast_peer_cannot_be_a_vip_of_a_later_instance() {
    let text = gw_and("name = \"gw2\"\ninterface = \"eth1\"\nvrid = 52\nvips = [\"192.0.2.9\"]\n")
        .replace(
            "vips = [\"192.0.2.1/24\"]\n",
            "vips = [\"192.0.2.1/24\"]\nunicast_peers = [\"192.0.2.9\"]\n",
        );
    assert_eq!(
        problem(&text),
        "vipd.toml:8:18: vrrp[0].unicast_peers[0]: 192.0.2.9 is a VIP of this daemon, in vrrp[1] \"gw2\" (line 9); a peer is another router's own address"
    );
}

#[test]
fn missing_vrrp_interface_is_refused() {
    assert_eq!(
        problem(&gw("").replace("eth0", "eth9")),
        "vipd.toml:5:13: vrrp[0].interface: interface \"eth9\" does not exist (in this network namespace)"
    );
}

#[test]
fn missing_tracked_interface_is_refused() {
    assert_eq!(
        problem(&gw(
            "track_interfaces = [{ name = \"uplink9\", weight = -10 }]\n"
        )),
        "vipd.toml:8:30: vrrp[0].track_interfaces[0].name: interface \"uplink9\" does not exist (in this network namespace)"
    );
}

#[test]
fn impossible_interface_names_are_refused_without_asking_the_host() {
    struct NeverAsked;
    impl crate::config::Host for NeverAsked {
        fn interface_exists(&self, name: &str) -> bool {
            panic!("asked about {name:?}")
        }
        fn user(&self, _: &str) -> Result<Option<crate::config::UserIds>, String> {
            Ok(None)
        }
        fn group(&self, _: &str) -> Result<Option<u32>, String> {
            Ok(None)
        }
        fn lstat(&self, path: &std::path::Path) -> std::io::Result<crate::config::FileMeta> {
            panic!("asked about {}", path.display())
        }
        fn read_link(&self, path: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
            panic!("asked about {}", path.display())
        }
    }
    let text = gw("").replace("eth0", "a-very-long-interface-name");
    let err = crate::config::Config::parse(&text, "vipd.toml", &NeverAsked).unwrap_err();
    assert_eq!(
        err.to_string(),
        "vipd.toml:5:13: vrrp[0].interface: \"a-very-long-interface-name\" is not a valid interface name (1 to 15 bytes, no '/', ':' or spaces)"
    );
}

#[test]
fn missing_required_field_points_at_the_section_header() {
    assert_eq!(
        problem(&gw("").replace("vrid = 51\n", "")),
        "vipd.toml:3:1: vrrp[0].vrid: missing required field \"vrid\""
    );
    assert_eq!(
        problem(&gw("track_scripts = [{ weight = -10 }]\n")),
        "vipd.toml:8:18: vrrp[0].track_scripts[0].command: missing required field \"command\""
    );
}

#[test]
fn missing_global_table_is_refused() {
    let text = gw("").replace(GLOBAL, "");
    assert_eq!(
        problem(&text),
        "vipd.toml:1:1: global: missing required table [global]"
    );
}

#[test]
fn a_file_without_instances_is_refused() {
    assert_eq!(
        problem(GLOBAL),
        "vipd.toml:1:1: vrrp: no [[vrrp]] instance: vipd would have nothing to do"
    );
    assert_eq!(
        problem(&format!("{GLOBAL}[vrrp]\nname = \"gw\"\n")),
        "vipd.toml:3:1: vrrp: write [[vrrp]] (an array of tables, one per instance), not [vrrp]"
    );
}

#[test]
fn invalid_names_are_refused() {
    assert_eq!(
        problem(&gw("").replace("router_id = \"r1\"", "router_id = \"r 1\"")),
        "vipd.toml:2:13: global.router_id: \"r 1\" is not a valid name: use 1 to 32 characters from A-Z a-z 0-9 _ . -"
    );
    assert_eq!(
        problem(&gw("").replace("router_id = \"r1\"", "router_id = \"..\"")),
        "vipd.toml:2:13: global.router_id: \"..\" is not a valid name: it would name a directory in paths"
    );
}

#[test]
fn paths_must_be_absolute_and_sockets_short() {
    assert_eq!(
        problem(&gw("notify = \"notify.sh\"\n")),
        "vipd.toml:8:10: vrrp[0].notify: \"notify.sh\" is not an absolute path"
    );
    let long = format!("/run/{}.sock", "s".repeat(100));
    let text = gw("").replace(
        "router_id = \"r1\"",
        &format!("router_id = \"r1\"\ncontrol_socket = \"{long}\""),
    );
    assert_eq!(
        problem(&text),
        "vipd.toml:3:18: global.control_socket: 110 bytes is too long for a Unix socket path (at most 107)"
    );
}

#[test]
fn metrics_needs_an_address_and_a_port() {
    let with = |m: &str| {
        gw("").replace(
            "router_id = \"r1\"",
            &format!("router_id = \"r1\"\nmetrics = \"{m}\""),
        )
    };
    assert_eq!(
        problem(&with("9101")),
        "vipd.toml:3:11: global.metrics: \"9101\" is not an address and port, e.g. \"127.0.0.1:9101\" or \"[::1]:9101\""
    );
    assert!(parse(&with("[::1]:9101")).is_ok());
}

#[test]
fn script_timeout_must_be_shorter_than_its_interval() {
    assert_eq!(
        problem(&gw(
            "track_scripts = [{ command = \"/bin/check\", interval = \"500ms\" }]\n"
        )),
        "vipd.toml:8:55: vrrp[0].track_scripts[0].interval: timeout 1s (default) must be shorter than interval 500ms, so runs never overlap"
    );
}

#[test]
fn script_command_with_arguments_must_be_an_array() {
    assert_eq!(
        problem(&gw(
            "track_scripts = [{ command = \"/bin/check --fast\" }]\n"
        )),
        "vipd.toml:8:30: vrrp[0].track_scripts[0].command: a string command is a program path, without arguments; to pass arguments write an array: [\"/bin/check\", ...]"
    );
    assert_eq!(
        problem(&gw("track_scripts = [{ command = [\"check\"] }]\n")),
        "vipd.toml:8:30: vrrp[0].track_scripts[0].command: \"check\" is not an absolute path"
    );
}

#[test]
fn rise_and_fall_stay_within_bounds() {
    assert_eq!(
        problem(&gw(
            "track_scripts = [{ command = \"/bin/check\", fall = 0 }]\n"
        )),
        "vipd.toml:8:51: vrrp[0].track_scripts[0].fall: 0 is out of range 1..=100"
    );
}

#[test]
fn durations_are_bounded() {
    assert_eq!(
        problem(&gw("preempt_delay = \"2h\"\n")),
        "vipd.toml:8:17: vrrp[0].preempt_delay: 7200s is out of range 0s..=3600s"
    );
    assert_eq!(
        problem(&gw("garp_refresh = \"500ms\"\n")),
        "vipd.toml:8:16: vrrp[0].garp_refresh: 500ms is out of range: \"0s\" (off) or 1s..=1h"
    );
    assert_eq!(
        problem(&gw("garp_interval = \"soon\"\n")),
        "vipd.toml:8:17: vrrp[0].garp_interval: \"soon\" is not a duration (expected number at 0); write a number and a unit, e.g. \"1s\", \"250ms\", \"1m 30s\""
    );
}

#[test]
fn tracking_the_same_interface_twice_is_refused() {
    assert_eq!(
        problem(&gw(
            "track_interfaces = [{ name = \"uplink0\" }, { name = \"uplink0\" }]\n"
        )),
        "vipd.toml:8:43: vrrp[0].track_interfaces[1]: uplink0 is already listed at vrrp[0].track_interfaces[0]"
    );
}

#[test]
fn syntax_error_reports_its_line_and_field() {
    let text = gw("").replace("name = \"gw\"", "name = \"gw");
    let all = problems(&text);
    assert!(
        all[0].starts_with("vipd.toml:4:") && all[0].contains("vrrp[0].name: TOML syntax: "),
        "{all:#?}"
    );
}

#[test]
fn syntax_error_in_a_later_line_reports_that_line() {
    let text = gw("priority = = 5\n");
    assert_eq!(
        problems(&text),
        [
            "vipd.toml:8:12: vrrp[0].priority: TOML syntax: extra `=`, expected nothing",
            "vipd.toml:8:14: vrrp[0].priority: TOML syntax: unexpected key or value, expected newline, `#`",
        ]
    );
}

#[test]
fn duplicate_key_is_a_syntax_error_naming_the_key() {
    assert_eq!(
        problem(&gw("vrid = 52\n")),
        "vipd.toml:8:1: vrrp[0].vrid: TOML syntax: duplicate key"
    );
    assert_eq!(
        problem(&format!("{GLOBAL}[global]\n")),
        "vipd.toml:3:2: global: TOML syntax: duplicate key"
    );
}

#[test]
fn every_problem_in_a_file_is_reported_in_file_order() {
    let text = gw(concat!(
        "priority = 0\n",
        "advert_interval = \"15ms\"\n",
        "colour = \"red\"\n",
        "track_interfaces = [{ name = \"uplink9\" }]\n",
        "[[vrrp]]\n",
        "name = \"gw\"\n",
        "interface = \"eth0\"\n",
        "vrid = 51\n",
        "vips = [\"192.0.2.1/32\", \"2001:db8::1\"]\n",
    ));
    assert_eq!(
        problems(&text),
        [
            "vipd.toml:8:12: vrrp[0].priority: 0 is out of range 1..=255",
            "vipd.toml:9:19: vrrp[0].advert_interval: 15ms is not a multiple of 10 ms (VRRPv3 counts centiseconds)",
            "vipd.toml:10:1: vrrp[0].colour: unknown key \"colour\"; expected one of: name, protocol, interface, vrid, priority, advskew, version, advert_interval, preempt, preempt_delay, accept, vmac, vips, vips_excluded, proxy_arp, shared_vips, announce_host_routes, virtual_routes, virtual_rules, unicast_src_ip, unicast_peers, allowed_peers, auth_pass, dont_track_primary, track_interfaces, track_scripts, track_files, track_processes, bfd, notify, notify_master, notify_backup, notify_fault, notify_stop, sync_group, garp_repeat, garp_interval, garp_refresh, passphrase, passphrase_file, dead_ratio, replay, hmac_link_local",
            "vipd.toml:11:30: vrrp[0].track_interfaces[0].name: interface \"uplink9\" does not exist (in this network namespace)",
            "vipd.toml:13:8: vrrp[1].name: name \"gw\" is already used by vrrp[0] \"gw\" (line 3)",
            "vipd.toml:15:8: vrrp[1].vrid: vrid 51 on eth0 (IPv4) is already used by vrrp[0] \"gw\" (line 3); a VRID (a CARP VHID) names one virtual router per interface, family and protocol",
            "vipd.toml:16:9: vrrp[1].vips[0]: 192.0.2.1 on eth0 is already a VIP of vrrp[0] \"gw\" (line 3)",
            "vipd.toml:16:25: vrrp[1].vips[1]: 2001:db8::1/128 is IPv6 but the first VIP is IPv4: one instance serves one address family; split it into two [[vrrp]] sections with the same vrid, one per family",
        ]
    );
}

#[test]
fn the_error_prints_one_problem_per_line() {
    let err = parse(&gw("priority = 0\nvmac = 1\n")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "vipd.toml:8:12: vrrp[0].priority: 0 is out of range 1..=255\n\
         vipd.toml:9:8: vrrp[0].vmac: expected true or false, found an integer"
    );
}

#[test]
fn instances_on_a_missing_interface_are_still_compared_with_each_other() {
    let text = gw_and("name = \"gw2\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"192.0.2.9\"]\n")
        .replace("eth0", "eth9");
    let all = problems(&text);
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(
        all[2].starts_with("vipd.toml:11:8: vrrp[1].vrid: vrid 51 on eth9 (IPv4) is already used")
    );
}

#[test]
fn more_instances_than_the_data_plane_has_slots_are_refused() {
    let mut text = GLOBAL.to_owned();
    let mut header_line = 0;
    for n in 0..=vip_common::MAX_GROUPS {
        let (ifname, v6) = (
            ["eth0", "eth1", "uplink0"][(n / 510) as usize],
            n % 510 >= 255,
        );
        let vrid = n % 255 + 1;
        let vip = if v6 {
            format!("2001:db8::{n:x}")
        } else {
            format!("198.18.{}.{}", n / 256, n % 256)
        };
        header_line = text.lines().count() + 1;
        text.push_str(&format!(
            "[[vrrp]]\nname = \"i{n}\"\ninterface = \"{ifname}\"\nvrid = {vrid}\nvips = [\"{vip}\"]\n"
        ));
    }
    assert_eq!(
        problem(&text),
        format!(
            "vipd.toml:{header_line}:1: vrrp[1024]: more than 1024 instances; the data plane has 1024 group slots"
        )
    );
}

#[test]
fn bfd_settings_are_read_with_their_defaults() {
    let c = parse(&gw(
        "bfd = { peers = [\"192.0.2.12\"], interval = \"1ms\" }\n",
    ))
    .unwrap();
    let b = c.instances[0].bfd.clone().expect("bfd set");
    assert_eq!(
        b.peers,
        vec!["192.0.2.12".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(b.interval, std::time::Duration::from_millis(1));
    assert_eq!(b.multiplier, 3);
    assert!(b.echo);
    assert_eq!(b.control_interval, std::time::Duration::from_secs(1));
}

#[test]
fn bfd_interval_below_a_millisecond_is_refused() {
    assert_eq!(
        problem(&gw("bfd = { interval = \"500us\" }\n")),
        "vipd.toml:8:20: vrrp[0].bfd.interval: 500us is out of range 1ms..=10s"
    );
}

#[test]
fn bfd_peer_of_the_other_family_is_refused() {
    assert_eq!(
        problem(&gw("bfd = { peers = [\"2001:db8::2\"] }\n")),
        "vipd.toml:8:7: vrrp[0].bfd.peers[0]: 2001:db8::2 is IPv6 but this instance's VIPs are IPv4"
    );
}

#[test]
fn instances_sharing_an_interface_share_bfd_timing() {
    let second = "name = \"gw2\"\ninterface = \"eth0\"\nvrid = 52\nvips = [\"192.0.2.9\"]\n\
                  bfd = { interval = \"5ms\" }\n";
    let text = gw_and(second).replacen("vips = [", "bfd = { interval = \"1ms\" }\nvips = [", 1);
    assert_eq!(
        problem(&text),
        "vipd.toml:14:7: vrrp[1].bfd: bfd interval, multiplier, echo and control_interval differ \
         from vrrp[0] \"gw\" (line 3) on eth0; instances on one interface share their BFD \
         sessions, so they must match"
    );
    // The same timing is fine, peers may differ.
    let same = text.replace(
        "interval = \"5ms\"",
        "interval = \"1ms\", peers = [\"192.0.2.7\"]",
    );
    assert!(parse(&same).is_ok());
}

#[test]
fn control_and_admin_groups_must_exist_and_the_state_file_be_absolute() {
    let instance =
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"192.0.2.1/24\"]\n";
    let text = format!(
        "[global]\nrouter_id = \"r1\"\ncontrol_group = \"nosuch\"\n\
         admin_group = \"-x\"\nstate_file = \"state.json\"\n{instance}"
    );
    assert_eq!(
        problems(&text),
        [
            "vipd.toml:3:17: global.control_group: group \"nosuch\" does not exist",
            "vipd.toml:4:15: global.admin_group: \"-x\" is not a group name (1 to 32 characters from A-Z a-z 0-9 _ . - $)",
            "vipd.toml:5:14: global.state_file: \"state.json\" is not an absolute path",
        ]
    );
    let ok = format!(
        "[global]\nrouter_id = \"r1\"\ncontrol_group = \"vipd-status\"\n\
         admin_group = \"vipd-admin\"\nstate_file = \"/var/lib/vipd/r1.state\"\n{instance}"
    );
    let g = super::parse(&ok).expect("valid").global;
    assert_eq!(g.control_group.map(|g| g.gid), Some(991));
    assert_eq!(
        g.admin_group.map(|g| (g.name, g.gid)),
        Some(("vipd-admin".into(), 992))
    );
    assert_eq!(
        g.state_file.as_deref(),
        Some(std::path::Path::new("/var/lib/vipd/r1.state"))
    );
}
