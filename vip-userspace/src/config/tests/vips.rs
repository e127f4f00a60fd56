//! `vips` and `vips_excluded`: the string and table forms, every option's rules.

use super::{gw, gw_and, parse, problem, problems, round_trip};
use crate::config::{AddrScope, Broadcast, PreferredLifetime, Vip};

/// `gw` with line 7 (its `vips`) replaced by `line`.
fn with_vips(line: &str) -> String {
    gw("").replace("vips = [\"192.0.2.1/24\"]", line)
}

#[test]
fn a_vip_table_takes_every_option_of_ip_addr_add() {
    let config = round_trip(&with_vips(
        "vips = [{ address = \"192.0.2.1/24\", dev = \"eth1\", label = \"eth1:vip\", scope = \"link\", broadcast = \"192.0.2.255\", noprefixroute = true, preferred_lft = \"forever\" }]",
    ));
    assert_eq!(
        config.instances[0].vips,
        [Vip {
            net: "192.0.2.1/24".parse().unwrap(),
            dev: "eth1".into(),
            label: Some("eth1:vip".into()),
            scope: AddrScope::Link,
            broadcast: Some(Broadcast::Addr("192.0.2.255".parse().unwrap())),
            noprefixroute: true,
            preferred_lft: PreferredLifetime::Forever,
        }]
    );
}

#[test]
fn a_vip_table_fills_the_same_defaults_as_a_string() {
    let table = parse(&with_vips("vips = [{ address = \"192.0.2.1/24\" }]")).unwrap();
    let string = parse(&gw("")).unwrap();
    assert_eq!(table, string);
    assert_eq!(
        string.instances[0].vips,
        [Vip::plain("192.0.2.1/24".parse().unwrap(), "eth0")]
    );
    // Printed back in the short form.
    assert!(
        table
            .to_toml_string()
            .contains("vips = [\"192.0.2.1/24\"]\n")
    );
}

#[test]
fn ipv6_vips_take_the_scope_the_kernel_derives_and_may_be_deprecated() {
    let config = round_trip(&with_vips(
        "vips = [\"fe80::1\", { address = \"2001:db8::1/64\", preferred_lft = 0, noprefixroute = true }, { address = \"fe80::2/64\", scope = \"link\" }]",
    ));
    let vips = &config.instances[0].vips;
    assert_eq!(vips[0].scope, AddrScope::Link);
    assert_eq!(vips[1].scope, AddrScope::Global);
    assert_eq!(vips[1].preferred_lft, PreferredLifetime::Zero);
    assert_eq!(vips[2].scope, AddrScope::Link);
}

#[test]
fn the_vip_device_must_exist() {
    assert_eq!(
        problem(&with_vips(
            "vips = [{ address = \"192.0.2.1/24\", dev = \"eth9\" }]"
        )),
        "vipd.toml:7:43: vrrp[0].vips[0].dev: interface \"eth9\" does not exist (in this network namespace)"
    );
}

#[test]
fn labels_follow_linux_rules() {
    let base = |label: &str| {
        with_vips(&format!(
            "vips = [{{ address = \"192.0.2.1/24\", label = \"{label}\" }}]"
        ))
    };
    assert!(parse(&base("eth0")).is_ok());
    assert!(parse(&base("eth0:1")).is_ok());
    assert_eq!(
        problem(&base("eth1:1")),
        "vipd.toml:7:45: vrrp[0].vips[0].label: label \"eth1:1\" must be the device name eth0 or start with \"eth0:\""
    );
    assert_eq!(
        problem(&base("eth0x")),
        "vipd.toml:7:45: vrrp[0].vips[0].label: label \"eth0x\" must be the device name eth0 or start with \"eth0:\""
    );
    assert_eq!(
        problem(&base("eth0:0123456789ab")),
        "vipd.toml:7:45: vrrp[0].vips[0].label: \"eth0:0123456789ab\" is not a valid label (1 to 15 bytes, no '/' or spaces)"
    );
    // The label follows `dev` when it is given.
    assert!(
        parse(&with_vips(
            "vips = [{ address = \"192.0.2.1/24\", dev = \"eth1\", label = \"eth1:a\" }]"
        ))
        .is_ok()
    );
    assert_eq!(
        problem(&with_vips(
            "vips = [{ address = \"2001:db8::1/64\", label = \"eth0:6\" }]"
        )),
        "vipd.toml:7:47: vrrp[0].vips[0].label: labels are IPv4 only (the kernel keeps no label on IPv6 addresses)"
    );
}

#[test]
fn scope_broadcast_and_lifetime_are_checked_against_the_family() {
    assert_eq!(
        problem(&with_vips(
            "vips = [{ address = \"192.0.2.1/24\", scope = \"universe\" }]"
        )),
        "vipd.toml:7:45: vrrp[0].vips[0].scope: \"universe\" is not a scope: write \"global\", \"site\", \"link\" or \"host\""
    );
    assert_eq!(
        problem(&with_vips(
            "vips = [{ address = \"2001:db8::1/64\", scope = \"link\" }]"
        )),
        "vipd.toml:7:47: vrrp[0].vips[0].scope: the kernel gives an IPv6 address the scope its prefix implies (global for 2001:db8::1); remove scope"
    );
    assert_eq!(
        problem(&with_vips(
            "vips = [{ address = \"2001:db8::1/64\", broadcast = \"+\" }]"
        )),
        "vipd.toml:7:51: vrrp[0].vips[0].broadcast: IPv6 has no broadcast address"
    );
    assert_eq!(
        problem(&with_vips(
            "vips = [{ address = \"192.0.2.1/32\", broadcast = \"+\" }]"
        )),
        "vipd.toml:7:49: vrrp[0].vips[0].broadcast: a /32 has no broadcast address"
    );
    assert_eq!(
        problem(&with_vips(
            "vips = [{ address = \"192.0.2.1/24\", broadcast = \"all\" }]"
        )),
        "vipd.toml:7:49: vrrp[0].vips[0].broadcast: \"all\" is not an IPv4 address or \"+\" (the subnet's broadcast address)"
    );
    assert_eq!(
        problem(&with_vips(
            "vips = [{ address = \"192.0.2.1/24\", preferred_lft = 0 }]"
        )),
        "vipd.toml:7:53: vrrp[0].vips[0].preferred_lft: preferred_lft = 0 is IPv6 only (IPv4 addresses are never deprecated)"
    );
    assert_eq!(
        problem(&with_vips(
            "vips = [{ address = \"2001:db8::1/64\", preferred_lft = 60 }]"
        )),
        "vipd.toml:7:55: vrrp[0].vips[0].preferred_lft: 60 is out of range 0..=0"
    );
    assert_eq!(
        problem(&with_vips(
            "vips = [{ address = \"2001:db8::1/64\", preferred_lft = \"never\" }]"
        )),
        "vipd.toml:7:55: vrrp[0].vips[0].preferred_lft: expected 0 (never chosen as a source address) or \"forever\" (the default)"
    );
    assert_eq!(
        problem(&with_vips(
            "vips = [{ address = \"192.0.2.1/24\", noprefixroute = 1 }]"
        )),
        "vipd.toml:7:53: vrrp[0].vips[0].noprefixroute: expected true or false, found an integer"
    );
}

#[test]
fn a_vip_table_needs_an_address_and_known_keys() {
    assert_eq!(
        problem(&with_vips("vips = [{ dev = \"eth0\" }]")),
        "vipd.toml:7:9: vrrp[0].vips[0].address: missing required field \"address\""
    );
    assert_eq!(
        problem(&with_vips(
            "vips = [{ address = \"192.0.2.1/24\", lable = \"eth0:1\" }]"
        )),
        "vipd.toml:7:37: vrrp[0].vips[0].lable: unknown key \"lable\"; did you mean \"label\"?"
    );
    assert_eq!(
        problem(&with_vips("vips = [{ address = \"192.0.2.1/33\" }]")),
        "vipd.toml:7:21: vrrp[0].vips[0].address: \"192.0.2.1/33\" is not an address with a prefix length, e.g. \"192.0.2.1/24\""
    );
    assert_eq!(
        problem(&with_vips("vips = [42]")),
        "vipd.toml:7:9: vrrp[0].vips[0]: expected \"ADDR/LEN\" or a table { address = \"ADDR/LEN\", ... }, found integer"
    );
}

#[test]
fn excluded_vips_are_owned_like_vips_but_listed_apart() {
    let config = round_trip(&gw(
        "vips_excluded = [\"192.0.2.7/24\", { address = \"192.0.2.8/24\", dev = \"eth1\" }]\n",
    ));
    let i = &config.instances[0];
    assert_eq!(i.vips.len(), 1);
    assert_eq!(i.vips_excluded.len(), 2);
    assert_eq!(i.vips_excluded[1].dev, "eth1");
    assert_eq!(i.all_vips().count(), 3);
    assert_eq!(i.advertised_vips().len(), 1);
}

#[test]
fn a_vip_is_listed_once_across_both_lists() {
    assert_eq!(
        problem(&gw("vips_excluded = [\"192.0.2.1/32\"]\n")),
        "vipd.toml:8:18: vrrp[0].vips_excluded[0]: 192.0.2.1 is already listed at vrrp[0].vips[0]"
    );
    assert_eq!(
        problem(&gw(
            "vips_excluded = [\"192.0.2.7\", { address = \"192.0.2.7/24\" }]\n"
        )),
        "vipd.toml:8:43: vrrp[0].vips_excluded[1].address: 192.0.2.7 is already listed at vrrp[0].vips_excluded[0]"
    );
}

#[test]
fn excluded_vips_follow_the_family_rules() {
    assert_eq!(
        problem(&gw("vips_excluded = [\"2001:db8::7\"]\n")),
        "vipd.toml:8:18: vrrp[0].vips_excluded[0]: 2001:db8::7/128 is IPv6 but the first VIP is IPv4: one instance serves one address family; split it into two [[vrrp]] sections with the same vrid, one per family"
    );
    let v2 = with_vips("vips = [\"fe80::1\"]").replace("vrid = 51", "vrid = 51\nversion = 2");
    assert_eq!(
        problems(&v2)[0],
        "vipd.toml:8:9: vrrp[0].vips[0]: fe80::1/128 is IPv6, which VRRPv2 (RFC 3768) cannot carry: set version = 3"
    );
}

#[test]
fn vips_must_hold_one_address_even_with_excluded_ones() {
    assert_eq!(
        problem(&with_vips("vips = []\nvips_excluded = [\"192.0.2.7\"]")),
        "vipd.toml:7:8: vrrp[0].vips: must list at least one address: an advertisement carries at least one address; move one from vips_excluded"
    );
    assert_eq!(
        problem(&with_vips("vips_excluded = [\"192.0.2.7\"]")),
        "vipd.toml:3:1: vrrp[0].vips: missing required field \"vips\": an advertisement carries at least one address; move one from vips_excluded"
    );
}

#[test]
fn excluded_vips_count_as_this_daemons_vips_across_instances() {
    let text = gw_and(
        "name = \"gw2\"\ninterface = \"eth0\"\nvrid = 52\nvips = [\"192.0.2.9\"]\nvips_excluded = [\"192.0.2.1\"]\n",
    );
    assert_eq!(
        problem(&text),
        "vipd.toml:13:18: vrrp[1].vips_excluded[0]: 192.0.2.1 on eth0 is already a VIP of vrrp[0] \"gw\" (line 3)"
    );
    assert_eq!(
        problem(&gw(
            "vips_excluded = [\"192.0.2.12\"]\nunicast_peers = [\"192.0.2.12\"]\n"
        )),
        "vipd.toml:9:18: vrrp[0].unicast_peers[0]: 192.0.2.12 is a VIP of this daemon, in vrrp[0] \"gw\" (line 3); a peer is another router's own address"
    );
}
