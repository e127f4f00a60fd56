//! `virtual_routes` and `virtual_rules`.

use super::{gw, parse, problem, problems, round_trip};
use crate::config::{
    Fwmark, RTPROT_STATIC, RTPROT_VIPD, RouteScope, RouteType, RuleAction, TABLE_MAIN,
    VirtualRoute, VirtualRule,
};
use crate::vrrp::Family;

fn routes(list: &str) -> String {
    gw(&format!("virtual_routes = [{list}]\n"))
}

fn rules(list: &str) -> String {
    gw(&format!("virtual_rules = [{list}]\n"))
}

fn only_route(list: &str) -> VirtualRoute {
    let config = round_trip(&routes(list));
    let mut all = config.instances[0].virtual_routes.clone();
    assert_eq!(all.len(), 1);
    all.remove(0)
}

fn only_rule(list: &str) -> VirtualRule {
    let config = round_trip(&rules(list));
    let mut all = config.instances[0].virtual_rules.clone();
    assert_eq!(all.len(), 1);
    all.remove(0)
}

#[test]
fn a_route_takes_every_option_of_ip_route() {
    assert_eq!(
        only_route(
            "{ to = \"203.0.113.0/24\", via = \"192.0.2.254\", dev = \"eth1\", src = \"192.0.2.1\", table = 100, metric = 20, protocol = \"vipd\", type = \"unicast\", scope = \"global\", onlink = true }"
        ),
        VirtualRoute {
            to: "203.0.113.0/24".parse().unwrap(),
            via: Some("192.0.2.254".parse().unwrap()),
            dev: Some("eth1".into()),
            src: Some("192.0.2.1".parse().unwrap()),
            table: 100,
            metric: Some(20),
            protocol: RTPROT_VIPD,
            kind: RouteType::Unicast,
            scope: Some(RouteScope::Global),
            onlink: true,
        }
    );
}

#[test]
fn route_defaults_follow_ip_route_and_the_instance() {
    // Neither via nor dev: out of the instance's interface, in the main table.
    let r = only_route("{ to = \"203.0.113.0/24\" }");
    assert_eq!(
        r,
        VirtualRoute {
            to: "203.0.113.0/24".parse().unwrap(),
            via: None,
            dev: Some("eth0".into()),
            src: None,
            table: TABLE_MAIN,
            metric: None,
            protocol: RTPROT_STATIC,
            kind: RouteType::Unicast,
            scope: None,
            onlink: false,
        }
    );
    // With via, the kernel finds the device.
    assert_eq!(
        only_route("{ to = \"default\", via = \"192.0.2.254\" }").dev,
        None
    );
    // An IPv6 link-local next hop needs its device: the instance's.
    let r = only_route("{ to = \"default\", via = \"fe80::1\" }");
    assert_eq!(
        (r.to.to_string(), r.dev.as_deref()),
        ("::/0".into(), Some("eth0"))
    );
    // "default" is the instance's family when the route names no address.
    assert_eq!(
        only_route("{ to = \"default\", type = \"blackhole\" }")
            .to
            .to_string(),
        "0.0.0.0/0"
    );
    // A bare address is a host route; named tables and protocols.
    let r = only_route(
        "{ to = \"2001:db8::9\", dev = \"eth1\", table = \"local\", protocol = \"kernel\" }",
    );
    assert_eq!(
        (r.to.to_string(), r.table, r.protocol),
        ("2001:db8::9/128".into(), 255, 2)
    );
    assert_eq!(r.family(), Family::Ipv6);
    assert_eq!(
        only_route("{ to = \"default\", via = \"192.0.2.254\", protocol = \"boot\" }").protocol,
        3
    );
    assert_eq!(
        only_route("{ to = \"default\", via = \"192.0.2.254\", protocol = 186 }").protocol,
        186
    );
}

#[test]
fn an_ipv4_default_route_in_an_ipv6_instance_prints_back_to_itself() {
    let text =
        routes("{ to = \"0.0.0.0/0\", type = \"prohibit\" }").replace("192.0.2.1/24", "fe80::1");
    let config = round_trip(&text);
    assert_eq!(config.instances[0].virtual_routes[0].family(), Family::Ipv4);
}

#[test]
fn route_rules_are_enforced_where_they_are_written() {
    assert_eq!(
        problem(&routes("{ via = \"192.0.2.254\" }")),
        "vipd.toml:8:19: vrrp[0].virtual_routes[0].to: missing required field \"to\""
    );
    assert_eq!(
        problem(&routes("{ to = \"203.0.113.1/24\" }")),
        "vipd.toml:8:26: vrrp[0].virtual_routes[0].to: \"203.0.113.1/24\" has host bits set; write the prefix 203.0.113.0/24"
    );
    assert_eq!(
        problem(&routes(
            "{ to = \"203.0.113.0/24\", via = \"2001:db8::1\" }"
        )),
        "vipd.toml:8:50: vrrp[0].virtual_routes[0].via: 2001:db8::1 is IPv6 but to is IPv4: one route or rule has one address family"
    );
    // "default" takes the family of the next hop.
    assert_eq!(
        only_route("{ to = \"default\", via = \"2001:db8::1\" }")
            .to
            .to_string(),
        "::/0"
    );
    assert_eq!(
        problem(&routes(
            "{ to = \"203.0.113.0/24\", src = \"2001:db8::1\" }"
        )),
        "vipd.toml:8:50: vrrp[0].virtual_routes[0].src: 2001:db8::1 is IPv6 but to is IPv4: one route or rule has one address family"
    );
    assert_eq!(
        problem(&routes(
            "{ to = \"default\", via = \"192.0.2.254\", type = \"blackhole\" }"
        )),
        "vipd.toml:8:43: vrrp[0].virtual_routes[0].via: a blackhole route goes nowhere, so it takes no via; remove it"
    );
    assert_eq!(
        problem(&routes(
            "{ to = \"default\", dev = \"eth0\", type = \"unreachable\" }"
        )),
        "vipd.toml:8:43: vrrp[0].virtual_routes[0].dev: a unreachable route goes nowhere, so it takes no dev; remove it"
    );
    assert_eq!(
        problem(&routes("{ to = \"default\", onlink = true }")),
        "vipd.toml:8:46: vrrp[0].virtual_routes[0].onlink: onlink says the next hop is on the link: it needs via"
    );
    assert_eq!(
        problem(&routes(
            "{ to = \"default\", via = \"192.0.2.254\", table = 0 }"
        )),
        "vipd.toml:8:66: vrrp[0].virtual_routes[0].table: 0 is out of range 1..=4294967295"
    );
    assert_eq!(
        problem(&routes(
            "{ to = \"default\", via = \"192.0.2.254\", table = \"default\" }"
        )),
        "vipd.toml:8:66: vrrp[0].virtual_routes[0].table: \"default\" is not a table: write a number 1..=4294967295, \"main\" (254) or \"local\" (255)"
    );
    assert_eq!(
        problem(&routes(
            "{ to = \"default\", via = \"192.0.2.254\", protocol = \"bgp\" }"
        )),
        "vipd.toml:8:69: vrrp[0].virtual_routes[0].protocol: \"bgp\" is not a route protocol: write one of \"kernel\", \"boot\", \"static\", \"vipd\", or a number 0..=255"
    );
    assert_eq!(
        problem(&routes(
            "{ to = \"default\", via = \"192.0.2.254\", metric = -1 }"
        )),
        "vipd.toml:8:67: vrrp[0].virtual_routes[0].metric: -1 is out of range 0..=4294967295"
    );
    assert_eq!(
        problem(&routes("{ to = \"default\", type = \"local\" }")),
        "vipd.toml:8:44: vrrp[0].virtual_routes[0].type: \"local\" is not a route type: write one of \"unicast\", \"blackhole\", \"unreachable\", \"prohibit\""
    );
    assert_eq!(
        problem(&routes("{ to = \"default\", scope = \"site\" }")),
        "vipd.toml:8:45: vrrp[0].virtual_routes[0].scope: \"site\" is not a route scope: write one of \"global\", \"link\", \"host\""
    );
    assert_eq!(
        problem(&routes("{ to = \"default\", dev = \"eth9\" }")),
        "vipd.toml:8:43: vrrp[0].virtual_routes[0].dev: interface \"eth9\" does not exist (in this network namespace)"
    );
}

#[test]
fn the_same_route_twice_is_refused() {
    assert_eq!(
        problem(&routes(
            "{ to = \"default\", via = \"192.0.2.254\" }, { to = \"0.0.0.0/0\", type = \"blackhole\" }"
        )),
        "vipd.toml:8:60: vrrp[0].virtual_routes[1]: a route to 0.0.0.0/0 in table 254 is already listed at vrrp[0].virtual_routes[0]"
    );
    // Another table or metric is another route.
    assert!(parse(&routes("{ to = \"default\", via = \"192.0.2.254\" }, { to = \"default\", via = \"192.0.2.253\", metric = 5 }")).is_ok());
}

#[test]
fn a_rule_takes_every_option_of_ip_rule() {
    assert_eq!(
        only_rule(
            "{ from = \"10.0.0.0/8\", to = \"203.0.113.0/24\", iif = \"eth0\", oif = \"eth1\", fwmark = \"0x10/0xff\", table = \"main\", priority = 1000, action = \"table\" }"
        ),
        VirtualRule {
            family: Family::Ipv4,
            from: Some("10.0.0.0/8".parse().unwrap()),
            to: Some("203.0.113.0/24".parse().unwrap()),
            iif: Some("eth0".into()),
            oif: Some("eth1".into()),
            fwmark: Some(Fwmark {
                value: 0x10,
                mask: 0xff
            }),
            table: Some(254),
            priority: Some(1000),
            action: RuleAction::Table,
        }
    );
}

#[test]
fn rule_defaults_and_family() {
    let r = only_rule("{ fwmark = 7, table = 100 }");
    assert_eq!(r.family, Family::Ipv4, "the instance's family");
    assert_eq!(
        r.fwmark,
        Some(Fwmark {
            value: 7,
            mask: u32::MAX
        })
    );
    assert_eq!((r.action, r.priority), (RuleAction::Table, None));
    let r = only_rule("{ to = \"2001:db8::/32\", action = \"prohibit\" }");
    assert_eq!((r.family, r.table), (Family::Ipv6, None));
    assert_eq!(
        only_rule("{ iif = \"eth1\", action = \"blackhole\" }").action,
        RuleAction::Blackhole
    );
    assert_eq!(
        only_rule("{ fwmark = \"42\", action = \"unreachable\" }").fwmark,
        Some(Fwmark {
            value: 42,
            mask: u32::MAX
        })
    );
}

#[test]
fn rule_rules_are_enforced_where_they_are_written() {
    assert_eq!(
        problem(&rules("{ table = 100 }")),
        "vipd.toml:8:18: vrrp[0].virtual_rules[0]: a rule needs at least one of from, to, iif, oif, fwmark: one that matches everything would take all traffic"
    );
    assert_eq!(
        problem(&rules("{ fwmark = 1 }")),
        "vipd.toml:8:18: vrrp[0].virtual_rules[0].table: missing required field \"table\" (the table to look up; or set action)"
    );
    assert_eq!(
        problem(&rules("{ fwmark = 1, table = 5, action = \"blackhole\" }")),
        "vipd.toml:8:40: vrrp[0].virtual_rules[0].table: a blackhole rule looks up no table; remove table"
    );
    assert_eq!(
        problem(&rules(
            "{ from = \"10.0.0.0/8\", to = \"2001:db8::/32\", table = 5 }"
        )),
        "vipd.toml:8:46: vrrp[0].virtual_rules[0].to: 2001:db8::/32 is IPv6 but from is IPv4: one route or rule has one address family"
    );
    for bad in [0, 32766, 32767] {
        assert_eq!(
            problem(&rules(&format!(
                "{{ fwmark = 1, table = 5, priority = {bad} }}"
            ))),
            format!(
                "vipd.toml:8:54: vrrp[0].virtual_rules[0].priority: {bad} is out of range 1..=32765 (0, 32766 and 32767 hold the kernel's own rules)"
            )
        );
    }
    assert_eq!(
        problem(&rules("{ fwmark = \"0x10/0xfg\", table = 5 }")),
        "vipd.toml:8:29: vrrp[0].virtual_rules[0].fwmark: \"0x10/0xfg\" is not a firewall mark: write N or \"N/MASK\", each 0..=4294967295 or 0x hex"
    );
    assert_eq!(
        problem(&rules("{ oif = \"eth9\", table = 5 }")),
        "vipd.toml:8:26: vrrp[0].virtual_rules[0].oif: interface \"eth9\" does not exist (in this network namespace)"
    );
    assert_eq!(
        problem(&rules("{ from = \"10.0.0.1/8\", table = 5 }")),
        "vipd.toml:8:27: vrrp[0].virtual_rules[0].from: \"10.0.0.1/8\" has host bits set; write the prefix 10.0.0.0/8"
    );
    assert_eq!(
        problem(&rules("{ fwmark = 1, table = 5, action = \"goto\" }")),
        "vipd.toml:8:52: vrrp[0].virtual_rules[0].action: \"goto\" is not a rule action: write one of \"table\", \"blackhole\", \"unreachable\", \"prohibit\""
    );
    assert_eq!(
        problems(&rules("{ fwmark = 1, tabel = 5 }")),
        [
            "vipd.toml:8:18: vrrp[0].virtual_rules[0].table: missing required field \"table\" (the table to look up; or set action)",
            "vipd.toml:8:32: vrrp[0].virtual_rules[0].tabel: unknown key \"tabel\"; did you mean \"table\"?",
        ]
    );
}
