use vip_common::{FAMILY_IPV4, POLICY_F_ALLOWLIST, PeerKey, Policy, PolicyKey, v4_in_16};
use vip_tests::{
    frames,
    xdp::{Responder, TEST_IFINDEX, XDP_DROP, XDP_PASS},
};

use crate::common::moved;

fn policy_key(family: u8, vrid: u8, vlan: u16) -> PolicyKey {
    PolicyKey {
        ifindex: TEST_IFINDEX,
        vlan,
        family,
        vrid,
    }
}

fn policy(version: u8, flags: u8) -> Policy {
    Policy {
        version,
        flags,
        _pad: [0; 2],
        slot: 0,
    }
}

/// A responder configured like the keepalived routers that produced the vectors.
fn keepalived_peer() -> Responder {
    let mut r = Responder::load();
    crate::common::add_keepalived_policies(&mut r, &[0], 0);
    r
}

fn vector(name: &str) -> Vec<u8> {
    frames::keepalived_vectors()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("vector {name}"))
        .1
}

const V51: &str = "keepalived-2.2.7_vrrpv3_ipv4_vrid51_prio150";
const V53: &str = "keepalived-2.2.7_vrrpv3_ipv6_vrid53_prio150";
/// Offset of the VRRP header in an untagged IPv4 frame without options.
const VRRP4: usize = 34;

fn drops(r: &mut Responder, frame: &[u8], reason: &'static str) {
    assert_eq!(r.run(frame).0, XDP_DROP, "expected a {reason} drop");
    assert_eq!(moved(&r.counters()), [(reason, 1)]);
}

#[test]
fn every_keepalived_advert_passes_to_the_daemon_untouched() {
    let mut r = keepalived_peer();
    let adverts: Vec<_> = frames::keepalived_vectors()
        .into_iter()
        .filter(|(n, _)| n.contains("_vrrpv"))
        .collect();
    assert_eq!(adverts.len(), 8);
    for (name, frame) in &adverts {
        assert_eq!(r.run(frame), (XDP_PASS, frame.clone()), "{name}");
    }
    assert_eq!(moved(&r.counters()), [("vrrp_pass", 8)]);
}

#[test]
fn gratuitous_arp_and_na_vectors_pass() {
    let mut r = keepalived_peer();
    for (name, frame) in frames::keepalived_vectors() {
        if name.contains("garp") || name.contains("unsolicited_na") {
            assert_eq!(r.run(&frame), (XDP_PASS, frame), "{name}");
        }
    }
}

#[test]
fn ttl_other_than_255_is_dropped() {
    let mut f = vector(V51);
    f[14 + 8] = 254;
    drops(&mut keepalived_peer(), &f, "vrrp_drop_ttl");
}

#[test]
fn hop_limit_other_than_255_is_dropped() {
    let mut f = vector(V53);
    f[14 + 7] = 1;
    drops(&mut keepalived_peer(), &f, "vrrp_drop_ttl");
}

#[test]
fn unknown_version_is_dropped() {
    let mut f = vector(V51);
    f[VRRP4] = 0x41;
    drops(&mut keepalived_peer(), &f, "vrrp_drop_version");
}

#[test]
fn version_other_than_configured_is_dropped() {
    let mut r = keepalived_peer();
    r.maps()
        .set_policy(policy_key(FAMILY_IPV4, 51, 0), policy(2, 0))
        .unwrap();
    drops(&mut r, &vector(V51), "vrrp_drop_version");
}

#[test]
fn type_other_than_advertisement_is_dropped() {
    let mut f = vector(V51);
    f[VRRP4] = 0x32;
    drops(&mut keepalived_peer(), &f, "vrrp_drop_type");
}

#[test]
fn vrid_not_configured_on_the_interface_is_dropped() {
    let mut r = Responder::load();
    drops(&mut r, &vector(V51), "vrrp_drop_vrid");
}

#[test]
fn vrid_configured_on_another_vlan_is_dropped() {
    let mut r = keepalived_peer();
    drops(
        &mut r,
        &frames::vlan_tagged(&vector(V51), 42),
        "vrrp_drop_vrid",
    );
}

#[test]
fn vlan_tagged_advert_for_a_vrid_on_that_vlan_passes() {
    let mut r = keepalived_peer();
    r.maps()
        .set_policy(policy_key(FAMILY_IPV4, 51, 42), policy(3, 0))
        .unwrap();
    let f = frames::vlan_tagged(&vector(V51), 42);
    assert_eq!(r.run(&f), (XDP_PASS, f));
}

#[test]
fn address_count_disagreeing_with_length_is_dropped() {
    let mut f = vector(V51);
    f[VRRP4 + 3] = 3;
    drops(&mut keepalived_peer(), &f, "vrrp_drop_length");
}

#[test]
fn fragment_is_dropped() {
    let mut f = vector(V51);
    f[14 + 6] = 0x20; // more fragments
    drops(&mut keepalived_peer(), &f, "vrrp_drop_length");
}

#[test]
fn corrupted_advert_fails_the_checksum() {
    for name in [V51, V53, "keepalived-2.2.7_vrrpv2_ipv4_vrid52_prio150"] {
        let mut f = vector(name);
        let last = f.len() - 1;
        f[last] ^= 0x40;
        drops(&mut keepalived_peer(), &f, "vrrp_drop_checksum");
    }
}

#[test]
fn v3_ipv4_checksum_without_pseudo_header_is_accepted_as_rfc_9568_defines_it() {
    let mut f = vector(V51);
    f[VRRP4 + 6..VRRP4 + 8].copy_from_slice(&[0, 0]);
    let c = frames::inet_checksum(&[&f[VRRP4..]]);
    f[VRRP4 + 6..VRRP4 + 8].copy_from_slice(&c.to_be_bytes());
    let mut r = keepalived_peer();
    assert_eq!(r.run(&f).0, XDP_PASS);
    assert_eq!(moved(&r.counters()), [("vrrp_pass", 1)]);
}

#[test]
fn allowlist_drops_unlisted_sources_and_admits_listed_ones() {
    let mut r = keepalived_peer();
    r.maps()
        .set_policy(
            policy_key(FAMILY_IPV4, 51, 0),
            policy(3, POLICY_F_ALLOWLIST),
        )
        .unwrap();
    drops(&mut r, &vector(V51), "vrrp_drop_peer");
    r.maps()
        .add_peer(PeerKey {
            ifindex: TEST_IFINDEX,
            vlan: 0,
            family: FAMILY_IPV4,
            vrid: 51,
            addr: v4_in_16([192, 0, 2, 11]),
        })
        .unwrap();
    assert_eq!(r.run(&vector(V51)).0, XDP_PASS);
}

#[test]
fn ip_options_are_skipped_by_their_length() {
    let mut f = vector(V51);
    // Four NOP options: IHL 6, total length + 4. The v3 pseudo-header ignores options.
    f.splice(VRRP4..VRRP4, [1, 1, 1, 1]);
    f[14] = 0x46;
    let tot = u16::from_be_bytes([f[16], f[17]]) + 4;
    f[16..18].copy_from_slice(&tot.to_be_bytes());
    let mut r = keepalived_peer();
    assert_eq!(r.run(&f), (XDP_PASS, f.clone()));
    assert_eq!(moved(&r.counters()), [("vrrp_pass", 1)]);
}

#[test]
fn other_ip_traffic_passes_without_being_counted() {
    let mut r = keepalived_peer();
    let mut f = vector(V51);
    f[14 + 9] = 17; // UDP
    assert_eq!(r.run(&f), (XDP_PASS, f));
    assert!(moved(&r.counters()).is_empty());
}
