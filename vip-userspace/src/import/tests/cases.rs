//! Single keywords and the rules keepalived applies after reading, one case each.

use super::{TempDir, converted, host, import, import_one, instance, options, report_lines};
use crate::import::{Kind, keepalived};

/// The vipd file and report of a minimal instance with `body`.
fn with(body: &str) -> (String, Vec<String>) {
    converted(&instance(body))
}

const VIP: &str = "    virtual_ipaddress {\n        192.0.2.1/24\n    }";

#[test]
fn keepalived_defaults_that_differ_are_written_out() {
    let (toml, _) = with(VIP);
    assert!(
        toml.contains("version = 2\n"),
        "keepalived defaults to VRRPv2\n{toml}"
    );
    let (toml, _) = with(&format!("    version 3\n{VIP}"));
    assert!(toml.contains("version = 3\n"));
    let (toml, _) =
        converted(&instance(VIP).replace("router_id r1", "router_id r1\n vrrp_version 3"));
    assert!(
        !toml.contains("version ="),
        "vipd's default is the global 3\n{toml}"
    );
}

#[test]
fn state_master_without_priority_makes_an_owner() {
    let (toml, report) = with(&format!("    state MASTER\n    nopreempt\n{VIP}"));
    assert!(toml.contains("priority = 255\n"), "{toml}");
    assert!(
        !toml.contains("preempt = false"),
        "keepalived clears nopreempt for an owner"
    );
    assert!(
        report
            .iter()
            .any(|l| l.contains("nopreempt: note: keepalived ignores it for an address owner"))
    );
}

#[test]
fn state_backup_with_priority_255_is_reported() {
    let (_, report) = with(&format!("    state BACKUP\n    priority 255\n{VIP}"));
    assert!(
        report
            .iter()
            .any(|l| l.starts_with("keepalived.conf:7: state: BACKUP with priority 255")),
        "{report:#?}"
    );
}

#[test]
fn nopreempt_and_preempt_delay() {
    let (toml, _) = with(&format!("    state BACKUP\n    nopreempt\n{VIP}"));
    assert!(toml.contains("preempt = false\n"));
    let (toml, report) = with(&format!("    nopreempt\n    preempt_delay 10\n{VIP}"));
    assert!(
        !toml.contains("preempt_delay"),
        "keepalived resets it with nopreempt"
    );
    assert!(report.iter().any(|l| l.contains("preempt_delay: note:")));
    let (toml, _) = with(&format!(
        "    nopreempt\n    preempt\n    preempt_delay 2.5\n{VIP}"
    ));
    assert!(toml.contains("preempt_delay = \"2500ms\"\n") && !toml.contains("preempt = false"));
}

#[test]
fn ipv6_instances_are_v3_even_when_written_v2() {
    let body =
        "    version 2\n    virtual_ipaddress {\n        fe80::1/64\n        2001:db8::1/64\n    }";
    let (toml, report) = with(body);
    assert!(toml.contains("version = 3\n"), "{toml}");
    assert!(
        report
            .iter()
            .any(|l| l.contains("version: VRRPv2 (RFC 3768) has no IPv6"))
    );
}

#[test]
fn mixed_family_excluded_addresses_are_left_out() {
    let body = format!("{VIP}\n    virtual_ipaddress_excluded {{\n        2001:db8::5/64\n    }}");
    let (toml, report) = with(&body);
    assert!(!toml.contains("vips_excluded"), "{toml}");
    assert!(report.iter().any(|l| l.contains(
        "virtual_ipaddress_excluded: 2001:db8::5: a vipd instance serves one address family"
    )));
}

#[test]
fn vip_options_follow_keepalived() {
    let body = "    virtual_ipaddress {\n        192.0.2.1/24 brd - scope 200 dev eth1 label eth1:a\n        192.0.2.9/24 label other:x peer 192.0.2.10\n    }\n    virtual_ipaddress_excluded {\n        2001:db8::7/64 scope link preferred_lft 30\n    }";
    let outcome = import_one(&instance(body));
    let report = report_lines(&outcome);
    let toml = outcome.toml.unwrap();
    assert!(toml.contains("{ address = \"192.0.2.1/24\", dev = \"eth1\", label = \"eth1:a\", scope = \"site\", broadcast = \"192.0.2.0\" }"), "{toml}");
    assert!(toml.contains("\"192.0.2.9/24\""), "label dropped\n{toml}");
    for expected in [
        "label: 192.0.2.9: label other:x must be eth0 or start with \"eth0:\"",
        "peer: 192.0.2.9/24: vipd adds no point-to-point peer address",
        "scope: note: 2001:db8::7/64: keepalived ignores a scope on an IPv6 address",
        "preferred_lft: 2001:db8::7/64: preferred_lft 30: vipd takes 0 or forever",
    ] {
        assert!(
            report.iter().any(|l| l.contains(expected)),
            "{expected}\n{report:#?}"
        );
    }
}

#[test]
fn routes_and_rules_take_what_vipd_has_and_report_the_rest() {
    let body = format!(
        "{VIP}\n    virtual_routes {{\n        198.51.100.0/24 nexthop via 192.0.2.7 nexthop via 192.0.2.8\n        default via 192.0.2.254 table default mtu lock 1400\n        throw 203.0.113.0/24\n        blackhole default\n    }}\n    virtual_rules {{\n        from 192.0.2.0/24 table 10\n        from 192.0.2.0/24 not table 10 priority 5\n        to 198.51.100.0/24 table 10 priority 40000\n        fwmark 010 lookup main priority 7\n    }}"
    );
    let (toml, report) = with(&body);
    assert!(
        toml.contains("{ to = \"default\", via = \"192.0.2.254\", table = 253, protocol = 18 }"),
        "{toml}"
    );
    assert!(
        toml.contains("{ to = \"0.0.0.0/0\", protocol = 18, type = \"blackhole\" }"),
        "{toml}"
    );
    assert!(
        toml.contains("{ fwmark = 8, table = \"main\", priority = 7 }"),
        "C octal\n{toml}"
    );
    assert!(
        toml.contains("{ from = \"192.0.2.0/24\", table = 10 }"),
        "{toml}"
    );
    for expected in [
        "left out: nexthop: vipd adds no multipath routes",
        "mtu 1400: no vipd equivalent",
        "left out: type: throw: vipd adds unicast, blackhole, unreachable or prohibit routes",
        "rule \"from 192.0.2.0/24 table 10\" has no preference",
        "left out: not: vipd adds no inverted rules",
        "left out: priority: 40000: vipd takes 1..=32765",
    ] {
        assert!(
            report.iter().any(|l| l.contains(expected)),
            "{expected}\n{report:#?}"
        );
    }
}

#[test]
fn weights_are_dropped_in_sync_groups_and_for_owners_as_keepalived_does() {
    let text = "vrrp_script chk {\n    script /usr/local/bin/check-uplink\n    weight -20\n}\ntrack_file f {\n    file /run/f\n}\nvrrp_sync_group g {\n    group {\n        a\n        b\n    }\n}\nvrrp_instance a {\n    interface eth0\n    virtual_router_id 1\n    track_interface {\n        uplink0 weight -10\n    }\n    track_script {\n        chk\n    }\n    track_file {\n        f\n    }\n    virtual_ipaddress {\n        192.0.2.1/24\n    }\n}\nvrrp_instance b {\n    interface eth0\n    virtual_router_id 2\n    priority 255\n    track_interface {\n        uplink0 weight -10\n    }\n    track_file {\n        f weight 3\n    }\n    virtual_ipaddress {\n        192.0.2.2/24\n    }\n}\n";
    let (toml, report) = converted(text);
    assert!(
        toml.contains("track_interfaces = [{ name = \"uplink0\", weight = 0 }]"),
        "{toml}"
    );
    assert!(
        toml.contains("track_files = [{ path = \"/run/f\", weight = 0 }]"),
        "{toml}"
    );
    assert!(!toml.contains("track_scripts"), "{toml}");
    assert_eq!(
        toml.matches("track_interfaces").count(),
        1,
        "the owner stops tracking it\n{toml}"
    );
    assert!(report.iter().any(|l| l.contains("track_script: note: chk weight -20: keepalived ignores a weighted script of a sync group member")));
    assert!(
        report
            .iter()
            .all(|l| !l.contains(": note:") || !l.contains("left out"))
    );
}

#[test]
fn scripts_are_found_by_path_search_or_left_out() {
    let text = "vrrp_script a {\n    script \"pidof haproxy\"\n}\nvrrp_script b {\n    script \"nosuchprogram x\"\n}\nvrrp_script c {\n    script \"/usr/local/bin/check-uplink 'two words' \\x41\"\n    interval 0.05\n    timeout 5\n    rise 500\n}\n";
    let body = text.to_owned()
        + &instance(&format!(
            "    track_script {{\n        a\n        b\n        c\n        d\n    }}\n{VIP}"
        ));
    let (toml, report) = converted(&body);
    assert!(
        toml.contains("command = [\"/usr/bin/pidof\", \"haproxy\"]"),
        "{toml}"
    );
    assert!(toml.contains("command = [\"/usr/local/bin/check-uplink\", \"two words\", \"A\"], interval = \"100ms\", timeout = \"90ms\", weight = 0, rise = 100"), "{toml}");
    for expected in [
        "keepalived.conf:5: script: nosuchprogram has no directory and is not in",
        "interval: 50ms is outside vipd's 100ms..=1h: written as 100ms",
        "timeout: 5s is not shorter than the interval 100ms",
        "rise: 500 is more than vipd's 100",
        "track_script: b: its script could not be carried over",
        "track_script: note: no vrrp_script d is defined",
    ] {
        assert!(
            report.iter().any(|l| l.contains(expected)),
            "{expected}\n{report:#?}"
        );
    }
}

#[test]
fn a_script_defined_after_its_instance_is_ignored_as_keepalived_does() {
    let text = instance(&format!("    track_script {{\n        late\n    }}\n{VIP}"))
        + "vrrp_script late {\n    script /usr/local/bin/check-uplink\n}\n";
    let (toml, report) = converted(&text);
    assert!(!toml.contains("track_scripts"));
    assert!(
        report
            .iter()
            .any(|l| l.contains("vrrp_script late is defined after this instance"))
    );
}

#[test]
fn hooks_with_another_user_are_reported() {
    let body = format!(
        "{VIP}\n    notify_fault \"/usr/local/bin/vipd-notify fault\" nobody\n    notify /usr/local/bin/vipd-notify root wheel"
    );
    let (toml, report) = with(&body);
    assert!(toml.contains("notify_fault = [\"/usr/local/bin/vipd-notify\", \"fault\"]"));
    assert!(report.iter().any(|l| l.contains("notify_fault: runs as nobody in keepalived; vipd runs every script and hook as global.script_user (root)")));
    assert!(report.iter().any(|l| l.contains("notify: group wheel")));
}

#[test]
fn keepalived_script_is_the_default_script_user_when_it_exists() {
    let dir = TempDir::new("ka-user");
    dir.write("keepalived.conf", &instance(VIP));
    let host = host().user("keepalived_script", 991, 991);
    let outcome = keepalived(&dir.path("keepalived.conf"), &options(), &host);
    let toml = outcome.toml.unwrap();
    assert!(
        toml.contains("script_user = \"keepalived_script\"\n"),
        "{toml}"
    );
}

#[test]
fn router_id_defaults_to_the_host_name() {
    let (toml, report) = converted(&format!(
        "vrrp_instance gw {{\n    interface eth0\n    virtual_router_id 5\n{VIP}\n}}\n"
    ));
    assert!(toml.contains("router_id = \"fallback-host\"\n"), "{toml}");
    assert!(
        report
            .iter()
            .any(|l| l.contains("router_id: note: not set, so keepalived uses the host name"))
    );
}

#[test]
fn instances_without_what_vipd_needs_are_left_out() {
    let outcome = import_one(
        "vrrp_instance a {\n  virtual_router_id 1\n}\nvrrp_instance b {\n  interface eth0\n}\nvrrp_instance c {\n  interface eth0\n  virtual_router_id 3\n}\n",
    );
    let lines: Vec<String> = outcome.left_out().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "keepalived.conf:1: vrrp_instance: a: no interface; vipd needs one, so the instance is left out",
            "keepalived.conf:4: vrrp_instance: b: no virtual_router_id (keepalived refuses it too); instance left out",
            "keepalived.conf:7: vrrp_instance: c: no virtual_ipaddress; a vipd instance advertises at least one address, so it is left out",
        ]
    );
}

#[test]
fn conditions_parameters_and_brace_globs() {
    let outcome = import(&[
        (
            "keepalived.conf",
            "$IF=eth0\n@^r1 $IF=eth1\n@r2 include never.conf\ninclude conf.d/{a,b}.conf\n",
        ),
        (
            "conf.d/a.conf",
            "$SITE=edge\nglobal_defs {\n  router_id ${SITE}-r1\n}\n",
        ),
        (
            "conf.d/b.conf",
            "vrrp_instance gw { interface $IF\n virtual_router_id 9\n virtual_ipaddress { 192.0.2.1/24 } }\n",
        ),
    ]);
    let report = report_lines(&outcome);
    let toml = outcome.toml.unwrap_or_else(|| panic!("{report:#?}"));
    assert!(
        toml.contains("interface = \"eth0\""),
        "@^r1 does not apply to r1\n{toml}"
    );
    assert!(toml.contains("router_id = \"edge-r1\""), "{toml}");
    assert_eq!(
        outcome.files,
        ["keepalived.conf", "conf.d/a.conf", "conf.d/b.conf"]
    );
}

#[test]
fn interface_delays_become_interface_tables() {
    let text = instance(VIP) + "interface_up_down_delays {\n    eth0 2\n    uplink0 0.25 1\n}\n";
    let (toml, _) = converted(&text);
    assert!(
        toml.contains("[interfaces.eth0]\nup_delay = \"2s\"\ndown_delay = \"2s\"\n"),
        "{toml}"
    );
    assert!(toml.contains("[interfaces.uplink0]\nup_delay = \"1s\"\ndown_delay = \"250ms\"\n"));
}

#[test]
fn an_interface_given_delays_twice_keeps_the_last_in_one_table() {
    // Found by the import_parse fuzz target: two tables of one name are not TOML
    // (`converted` reads the file back with `Config::parse`).
    let text = instance(VIP)
        + "interface_up_down_delays {\n    uplink0 2\n}\n\
           interface_up_down_delays {\n    uplink0 0.5 5\n}\n";
    let (toml, report) = converted(&text);
    assert_eq!(toml.matches("[interfaces.uplink0]").count(), 1, "{toml}");
    assert!(
        toml.contains("[interfaces.uplink0]\nup_delay = \"5s\"\ndown_delay = \"500ms\"\n"),
        "{toml}"
    );
    assert!(
        report.iter().any(|l| l.contains("uplink0 given again")),
        "{report:?}"
    );
}

#[test]
fn strict_mode_turns_accept_off_and_ignores_authentication() {
    let body = format!(
        "    strict_mode\n    authentication {{\n        auth_type PASS\n        auth_pass x\n    }}\n{VIP}"
    );
    let (toml, report) = with(&body);
    assert!(
        toml.contains("accept = false\n") && !toml.contains("auth_pass"),
        "{toml}"
    );
    assert!(
        report
            .iter()
            .any(|l| l.contains("keepalived ignores authentication in strict mode"))
    );
    assert!(
        report.iter().all(|l| !l.contains("strict_mode:")),
        "consumed: {report:#?}"
    );
}

#[test]
fn notes_do_not_change_the_exit_status() {
    let outcome = import_one(&instance(&format!("    state BACKUP\n{VIP}")));
    assert!(
        outcome.reports.iter().all(|r| r.kind == Kind::Note),
        "{:#?}",
        outcome.reports
    );
    assert_eq!(outcome.status(), crate::import::EXIT_COMPLETE);
}
