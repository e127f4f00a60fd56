use vip_tests::{
    frames,
    xdp::{XDP_DROP, XDP_PASS, XDP_TX},
};

use crate::common::*;

const ALL_NODES: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// The NA a correct responder sends, built independently of the program.
fn expected_na(dst_mac: [u8; 6], dst: [u8; 16], flags: u8) -> Vec<u8> {
    let mut body = vec![136, 0, 0, 0, flags, 0, 0, 0];
    body.extend_from_slice(&VIP6);
    body.extend_from_slice(&[2, 1]);
    body.extend_from_slice(&ROUTER_MAC);
    let c = frames::icmpv6_checksum(&VIP6, &dst, &body);
    body[2..4].copy_from_slice(&c.to_be_bytes());
    frames::ipv6(ROUTER_MAC, dst_mac, VIP6, dst, 58, 255, &body)
}

const CHECK_NA: &str = "na = f[ICMPv6ND_NA]\nsent = na.cksum\ndel na.cksum\n\
    again = Ether(raw(f))[ICMPv6ND_NA].cksum\n\
    print(sent == again, f[IPv6].hlim, na.R, na.S, na.O, na.tgt, f[ICMPv6NDOptDstLLAddr].lladdr)";

#[test]
fn solicitation_for_owned_vip_gets_a_solicited_router_advertisement() {
    let mut r = responder(true);
    let ns = frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, VIP6);
    let (verdict, out) = r.run(&ns);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out, expected_na(CLIENT_MAC, CLIENT_IP6, 0xe0));
    assert_eq!(moved(&r.counters()), [("ns_reply", 1)]);
    assert_eq!(
        scapy(&out, CHECK_NA),
        "True 255 1 1 1 2001:db8::1 02:11:00:00:00:0b"
    );
}

#[test]
fn dad_probe_is_answered_to_all_nodes_unsolicited() {
    let mut r = responder(true);
    let ns = frames::neighbor_solicitation(CLIENT_MAC, [0; 16], VIP6);
    let (verdict, out) = r.run(&ns);
    assert_eq!(verdict, XDP_TX);
    // The probe had no source link-layer option: the answer is 8 bytes longer.
    assert_eq!(out.len(), ns.len() + 8);
    assert_eq!(out, expected_na([0x33, 0x33, 0, 0, 0, 1], ALL_NODES, 0xa0));
    assert_eq!(
        scapy(&out, CHECK_NA),
        "True 255 1 0 1 2001:db8::1 02:11:00:00:00:0b"
    );
}

#[test]
fn vlan_tagged_solicitation_is_answered_on_its_vlan() {
    let mut r = responder(true);
    let ns = frames::vlan_tagged(
        &frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, VIP6),
        42,
    );
    let (verdict, out) = r.run(&ns);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(
        out,
        frames::vlan_tagged(&expected_na(CLIENT_MAC, CLIENT_IP6, 0xe0), 42)
    );
}

#[test]
fn solicitation_with_a_bad_checksum_is_left_to_the_kernel() {
    let mut r = responder(true);
    let mut ns = frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, VIP6);
    let last = ns.len() - 1;
    ns[last] ^= 0x01;
    assert_eq!(r.run(&ns), (XDP_PASS, ns));
    assert!(moved(&r.counters()).is_empty());
}

#[test]
fn solicitation_with_a_hop_limit_below_255_is_left_to_the_kernel() {
    let mut r = responder(true);
    let mut ns = frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, VIP6);
    ns[14 + 7] = 64;
    assert_eq!(r.run(&ns), (XDP_PASS, ns));
}

#[test]
fn solicitation_for_a_vip_not_owned_is_dropped_and_counted() {
    let mut r = responder(false);
    let ns = frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, VIP6);
    assert_eq!(r.run(&ns).0, XDP_DROP);
    assert_eq!(moved(&r.counters()), [("vip_not_owned", 1)]);
}

#[test]
fn solicitation_for_another_address_passes_untouched() {
    let mut r = responder(true);
    let mut other = VIP6;
    other[15] = 0x0b;
    let ns = frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, other);
    assert_eq!(r.run(&ns), (XDP_PASS, ns));
    assert!(moved(&r.counters()).is_empty());
}
