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

/// `frame` padded with `pad` to `len` bytes, as a NIC or a sender may deliver it.
fn padded(frame: &[u8], len: usize, pad: u8) -> Vec<u8> {
    let mut f = frame.to_vec();
    f.resize(len, pad);
    f
}

#[test]
fn reply_to_a_padded_request_is_trimmed_to_the_arp_message() {
    let mut r = responder(true);
    // The minimum Ethernet frame (60 bytes) and an oversize one, padded with non-zero
    // bytes so a reply that kept any of them would show it.
    for len in [60, 1000] {
        let (verdict, out) = r.run(&padded(&request(), len, 0xa5));
        assert_eq!(verdict, XDP_TX, "{len}-byte request");
        assert_eq!(out.len(), 42, "{len}-byte request");
        assert_eq!(out, expected_reply(), "{len}-byte request");
    }
    assert_eq!(moved(&r.counters()), [("arp_reply", 2)]);
}

#[test]
fn reply_to_a_padded_vlan_tagged_request_keeps_its_tag_and_nothing_else() {
    let mut r = responder(true);
    for len in [64, 1000] {
        let frame = padded(&frames::vlan_tagged(&request(), 42), len, 0xa5);
        let (verdict, out) = r.run(&frame);
        assert_eq!(verdict, XDP_TX, "{len}-byte request");
        assert_eq!(out.len(), 46, "{len}-byte request");
        assert_eq!(out, frames::vlan_tagged(&expected_reply(), 42));
    }
}

#[test]
fn request_from_a_multicast_or_broadcast_source_is_dropped_never_answered() {
    let mut r = responder(true);
    // Sender hardware address and Ethernet source agree: only the I/G bit is wrong.
    for mac in [
        [0x01, 0x00, 0x5e, 0, 0, 0x12],
        [0x03, 0xc1, 0, 0, 0, 0x64],
        [0xff; 6],
    ] {
        let frame = frames::arp_request(mac, CLIENT_IP, VIP);
        assert_eq!(r.run(&frame).0, XDP_DROP, "source {mac:02x?}");
    }
    assert_eq!(moved(&r.counters()), [("arp_bad_source", 3)]);
}

#[test]
fn request_whose_sender_is_not_the_ethernet_source_is_dropped_never_answered() {
    let mut r = responder(true);
    // Sent by the client, asking that the answer go to OTHER_MAC.
    let mut frame = request();
    frame[22..28].copy_from_slice(&OTHER_MAC);
    assert_eq!(r.run(&frame).0, XDP_DROP);
    assert_eq!(moved(&r.counters()), [("arp_bad_source", 1)]);
}

#[test]
fn a_bad_source_asking_for_another_address_passes_untouched() {
    let mut r = responder(true);
    let mut frame = frames::arp_request(CLIENT_MAC, CLIENT_IP, [192, 0, 2, 11]);
    frame[22..28].copy_from_slice(&OTHER_MAC);
    assert_eq!(r.run(&frame), (XDP_PASS, frame));
    assert!(moved(&r.counters()).is_empty());
}

#[test]
fn a_bad_source_asking_for_a_vip_not_owned_counts_as_not_owned() {
    let mut r = responder(false);
    let frame = frames::arp_request([0xff; 6], CLIENT_IP, VIP);
    assert_eq!(r.run(&frame).0, XDP_DROP);
    assert_eq!(moved(&r.counters()), [("vip_not_owned", 1)]);
}

#[test]
fn gratuitous_arp_from_a_group_address_is_still_a_conflict_and_passes() {
    let mut r = responder(true);
    let garp = frames::garp([0x03, 0x12, 0, 0, 0, 0x0c], VIP);
    assert_eq!(r.run(&garp), (XDP_PASS, garp));
    assert_eq!(moved(&r.counters()), [("conflict_seen", 1)]);
}

/// The program keeps its last VIP lookup per CPU: a change to `VIPS` made through the
/// data plane's maps must be seen by the very next request, on the same CPU, whatever
/// the cache held.
#[test]
fn a_changed_or_removed_vip_is_seen_by_the_next_request_despite_the_lookup_cache() {
    let mut r = responder(true);
    let key = VipKey::v4(TEST_IFINDEX, 0, VIP);
    let other_mac = [0x02, 0x22, 0, 0, 0, 0x0c];
    // Twice: the second answer comes from the cache the first filled.
    for _ in 0..2 {
        assert_eq!(r.run(&request()), (XDP_TX, expected_reply()));
    }
    r.maps().add_vip(key, vip_value(other_mac)).unwrap();
    let (verdict, out) = r.run(&request());
    assert_eq!(verdict, XDP_TX);
    assert_eq!(
        out,
        frames::arp_reply(other_mac, VIP, CLIENT_MAC, CLIENT_IP)
    );
    r.maps().remove_vip(&key).unwrap();
    let frame = request();
    assert_eq!(r.run(&frame), (XDP_PASS, frame));
    // A request for another VIP between two for the same one refills the cache.
    r.maps().add_vip(key, vip_value(ROUTER_MAC)).unwrap();
    let other = frames::arp_request(CLIENT_MAC, CLIENT_IP, [192, 0, 2, 11]);
    assert_eq!(r.run(&other), (XDP_PASS, other.clone()));
    assert_eq!(r.run(&request()), (XDP_TX, expected_reply()));
    assert_eq!(r.run(&other), (XDP_PASS, other));
}

/// A pinned `VIPS_VERSION` that another writer moved (a second vipd process, `vipd xdp`)
/// invalidates this program's cache too: only the token's change matters, not who wrote it.
#[test]
fn a_vip_written_by_another_handle_on_the_pinned_maps_is_seen_at_once() {
    let mut r = responder(true);
    assert_eq!(r.run(&request()), (XDP_TX, expected_reply()));
    let other_mac = [0x02, 0x33, 0, 0, 0, 0x0d];
    let mut pinned = vipd::dataplane::Maps::open_pinned(r.dir()).unwrap();
    pinned
        .add_vip(VipKey::v4(TEST_IFINDEX, 0, VIP), vip_value(other_mac))
        .unwrap();
    assert_eq!(
        r.run(&request()),
        (
            XDP_TX,
            frames::arp_reply(other_mac, VIP, CLIENT_MAC, CLIENT_IP)
        )
    );
}
