//! `protocol = "carp"` instances: what `vipd check` accepts and refuses, each refusal
//! with its file, line and field.

use super::{gw, gw_and, parse, problem, problems};
use crate::vrrp::{
    Family,
    carp::{Key, ReplayMode},
    instance::Protocol,
};

fn carp(extra: &str) -> String {
    gw(&format!(
        "protocol = \"carp\"\npassphrase = \"s3cret\"\n{extra}"
    ))
}

#[test]
fn a_carp_instance_loads_with_carps_defaults() {
    let config = parse(&carp("")).expect("valid");
    let i = &config.instances[0];
    assert_eq!(i.protocol, Protocol::Carp);
    let c = i.carp.as_ref().expect("CARP settings");
    assert_eq!(c.settings.key, Key::new(b"s3cret").unwrap());
    assert_eq!(c.settings.dead_ratio, 3);
    assert_eq!(c.settings.replay, ReplayMode::Strict);
    assert!(!c.settings.hmac_link_local);
    // carp(4) and ucarp do not preempt unless told to.
    assert!(!i.preempt);
    // Priority 100, advskew 155; CARP's MAC is IPv4 VRRP's in both families.
    assert_eq!(i.priority, 100);
    assert_eq!(i.vmac_address(), [0, 0, 0x5e, 0, 1, 51]);
    let core = i.core();
    assert!(core.identity.is_carp());
    assert!(!core.is_owner());
}

#[test]
fn advskew_is_priority_255_minus_it() {
    let config = parse(&carp("advskew = 10\n")).expect("valid");
    assert_eq!(config.instances[0].priority, 245);
}

#[test]
fn the_passphrase_file_gives_the_key_and_a_missing_one_is_named() {
    let text = gw("protocol = \"carp\"\npassphrase_file = \"/etc/vipd/carp.pass\"\n");
    let config = parse(&text).expect("valid");
    let c = config.instances[0].carp.as_ref().unwrap();
    assert_eq!(c.settings.key, Key::new(b"lab CARP passphrase").unwrap());
    let missing = gw("protocol = \"carp\"\npassphrase_file = \"/etc/vipd/nope\"\n");
    assert_eq!(
        problem(&missing),
        "vipd.toml:9:19: vrrp[0].passphrase_file: cannot read /etc/vipd/nope: entity not found"
    );
}

#[test]
fn a_long_passphrase_is_refused_as_ucarp_refuses_it() {
    assert_eq!(
        problem(&gw(
            "protocol = \"carp\"\npassphrase = \"01234567890123456789\"\n"
        )),
        "vipd.toml:9:14: vrrp[0].passphrase: CARP passphrase of 20 bytes: at most 19 (the BSDs use only the first 19 bytes of a longer one, ucarp refuses it)"
    );
}

#[test]
fn carp_refuses_what_only_vrrp_has_and_both_forms_of_one_setting() {
    assert_eq!(
        problems(&carp(
            "version = 2\nauth_pass = \"x\"\nadvskew = 3\npriority = 200\npassphrase_file = \"/etc/vipd/carp.pass\"\nadvert_interval = \"1500ms\"\n"
        )),
        [
            "vipd.toml:9:14: vrrp[0].passphrase: set passphrase or passphrase_file, not both",
            "vipd.toml:10:11: vrrp[0].version: CARP has one version (2): remove version",
            "vipd.toml:11:13: vrrp[0].auth_pass: CARP authenticates with an HMAC: write passphrase (or passphrase_file) instead",
            "vipd.toml:12:11: vrrp[0].advskew: set advskew or priority, not both (priority P is advskew 255 - P)",
            "vipd.toml:15:19: vrrp[0].advert_interval: 1500ms is not a CARP advbase: whole seconds 1s..=255s",
        ]
    );
}

#[test]
fn carp_settings_on_a_vrrp_instance_are_refused() {
    assert_eq!(
        problem(&gw("advskew = 3\n")),
        "vipd.toml:8:11: vrrp[0].advskew: advskew is a CARP setting: add protocol = \"carp\", or remove it"
    );
    assert_eq!(
        problem(&gw("protocol = \"bgp\"\n")),
        "vipd.toml:8:12: vrrp[0].protocol: \"bgp\": write \"vrrp\" or \"carp\""
    );
}

#[test]
fn a_carp_vhid_and_a_vrrp_vrid_of_one_number_share_a_link() {
    let second = "name = \"fw\"\nprotocol = \"carp\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"192.0.2.9\"]\n";
    let config = parse(&gw_and(second)).expect("valid");
    assert_eq!(config.instances[1].protocol, Protocol::Carp);
    assert_eq!(config.instances[1].family, Family::Ipv4);
    // Two CARP virtual hosts of one VHID do not.
    let third = format!(
        "{second}[[vrrp]]\n{}",
        second.replace("fw", "fw2").replace(".9", ".10")
    );
    assert_eq!(
        problem(&gw_and(&third)),
        "vipd.toml:18:8: vrrp[2].vrid: vrid 51 on eth0 (IPv4) is already used by vrrp[1] \"fw\" (line 8); a VRID (a CARP VHID) names one virtual router per interface, family and protocol"
    );
}
