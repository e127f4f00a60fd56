use vip_common::{GroupState, VipKey};
use vip_tests::{
    frames,
    xdp::{TEST_IFINDEX, XDP_DROP, XDP_PASS, XDP_TX},
};

use crate::common::*;

fn request() -> Vec<u8> {
    frames::arp_request(CLIENT_MAC, CLIENT_IP, VIP)
}

/// The reply a correct responder must produce for `request()`, byte for byte.
fn expected_reply() -> Vec<u8> {
    frames::arp_reply(ROUTER_MAC, VIP, CLIENT_MAC, CLIENT_IP)
}

#[test]
fn request_for_owned_vip_is_answered_in_place() {
    let mut r = responder(true);
    let (verdict, out) = r.run(&request());
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out, expected_reply());
    assert_eq!(moved(&r.counters()), [("arp_reply", 1)]);
}

#[test]
fn reply_is_what_scapy_reads_as_a_correct_is_at() {
    let mut r = responder(true);
    let (_, out) = r.run(&request());
    let summary = scapy(
        &out,
        "a = f[ARP]\nprint(f.src, f.dst, a.op, a.hwsrc, a.psrc, a.hwdst, a.pdst)",
    );
    assert_eq!(
        summary,
        "02:11:00:00:00:0b 02:c1:00:00:00:64 2 02:11:00:00:00:0b 192.0.2.1 02:c1:00:00:00:64 192.0.2.100"
    );
}

#[test]
fn vlan_tagged_request_is_answered_on_its_vlan() {
    let mut r = responder(true);
    let (verdict, out) = r.run(&frames::vlan_tagged(&request(), 42));
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out, frames::vlan_tagged(&expected_reply(), 42));
}

#[test]
fn request_on_a_vlan_without_the_vip_passes_untouched() {
    let mut r = responder(true);
    let frame = frames::vlan_tagged(&request(), 7);
    assert_eq!(r.run(&frame), (XDP_PASS, frame));
    assert!(moved(&r.counters()).is_empty());
}

#[test]
fn request_for_an_address_that_is_not_a_vip_passes_untouched() {
    let mut r = responder(true);
    let frame = frames::arp_request(CLIENT_MAC, CLIENT_IP, [192, 0, 2, 11]);
    assert_eq!(r.run(&frame), (XDP_PASS, frame));
    assert!(moved(&r.counters()).is_empty());
}

#[test]
fn request_for_a_vip_not_owned_is_dropped_and_counted() {
    let mut r = responder(false);
    assert_eq!(r.run(&request()).0, XDP_DROP);
    assert_eq!(moved(&r.counters()), [("vip_not_owned", 1)]);
}

#[test]
fn lapsed_lease_stops_answers_and_a_live_one_restores_them() {
    let mut r = responder(false);
    // Well past, by more than the coarse clock the program reads can lag.
    let now = vipd::dataplane::monotonic_ns();
    r.maps()
        .set_group(SLOT, GroupState::owned_until(now - 50_000_000))
        .unwrap();
    assert_eq!(r.run(&request()).0, XDP_DROP);
    assert_eq!(moved(&r.counters()), [("lease_expired", 1)]);
    r.maps()
        .set_group(SLOT, GroupState::owned_until(now + 60_000_000_000))
        .unwrap();
    assert_eq!(r.run(&request()).0, XDP_TX);
}

#[test]
fn arp_probe_for_an_owned_vip_is_defended() {
    let mut r = responder(true);
    let probe = frames::arp_request(CLIENT_MAC, [0, 0, 0, 0], VIP);
    let (verdict, out) = r.run(&probe);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(
        out,
        frames::arp_reply(ROUTER_MAC, VIP, CLIENT_MAC, [0, 0, 0, 0])
    );
}

#[test]
fn another_mac_claiming_an_owned_vip_is_a_conflict_and_passes() {
    let mut r = responder(true);
    let garp = frames::garp(OTHER_MAC, VIP);
    assert_eq!(r.run(&garp), (XDP_PASS, garp));
    let reply = frames::arp_reply(OTHER_MAC, VIP, CLIENT_MAC, CLIENT_IP);
    assert_eq!(r.run(&reply), (XDP_PASS, reply));
    assert_eq!(moved(&r.counters()), [("conflict_seen", 2)]);
    let conflicts = r.maps().conflicts().unwrap();
    assert_eq!(conflicts.len(), 1);
    let (key, c) = conflicts[0];
    assert_eq!(key, VipKey::v4(TEST_IFINDEX, 0, VIP));
    assert_eq!((c.mac, c.count), (OTHER_MAC, 2));
    assert!(c.last_seen_ns > 0);
}

#[test]
fn our_own_binding_or_a_vip_we_do_not_own_is_no_conflict() {
    let mut r = responder(true);
    r.run(&frames::garp(ROUTER_MAC, VIP));
    r.run(&frames::arp_reply(ROUTER_MAC, VIP, CLIENT_MAC, CLIENT_IP));
    let mut backup = responder(false);
    let reply = frames::arp_reply(OTHER_MAC, VIP, CLIENT_MAC, CLIENT_IP);
    assert_eq!(backup.run(&reply), (XDP_PASS, reply));
    assert!(moved(&r.counters()).is_empty());
    assert!(moved(&backup.counters()).is_empty());
}

#[test]
fn non_ethernet_ipv4_arp_passes() {
    let mut r = responder(true);
    let mut frame = request();
    frame[14..16].copy_from_slice(&[0, 6]); // hardware type IEEE 802
    assert_eq!(r.run(&frame), (XDP_PASS, frame));
}
