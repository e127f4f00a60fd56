//! Every frame kind cut at every length: passed untouched or dropped, never answered,
//! never aborted.

use vip_tests::{
    frames,
    xdp::{Responder, XDP_DROP, XDP_PASS},
};

use crate::common::*;

fn all_kinds() -> Vec<(String, Vec<u8>)> {
    let mut kinds = vec![
        (
            "arp request".to_owned(),
            frames::arp_request(CLIENT_MAC, CLIENT_IP, VIP),
        ),
        (
            "neighbor solicitation".to_owned(),
            frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, VIP6),
        ),
        (
            "dad probe".to_owned(),
            frames::neighbor_solicitation(CLIENT_MAC, [0; 16], VIP6),
        ),
    ];
    kinds.extend(
        frames::keepalived_vectors()
            .into_iter()
            .filter(|(n, _)| n.contains("_vrrpv")),
    );
    let tagged: Vec<_> = kinds
        .iter()
        .map(|(n, f)| (format!("{n} on vlan 42"), frames::vlan_tagged(f, 42)))
        .collect();
    kinds.extend(tagged);
    kinds
}

fn configured() -> Responder {
    let mut r = responder(true);
    add_keepalived_policies(&mut r, &[0, 42], 0);
    r
}

#[test]
fn truncated_frames_are_passed_untouched_or_dropped_never_answered() {
    let mut r = configured();
    for (name, full) in all_kinds() {
        // BPF_PROG_TEST_RUN refuses XDP input shorter than an Ethernet header.
        for len in 14..full.len() {
            let cut = &full[..len];
            let (verdict, out) = r.run(cut);
            match verdict {
                XDP_PASS => assert_eq!(out, cut, "{name} cut to {len} was modified"),
                XDP_DROP => {}
                v => panic!("{name} cut to {len}: verdict {v}"),
            }
        }
        // And the whole frame still does what it should (the cut ones broke nothing).
        assert_ne!(r.run(&full).0, XDP_DROP, "{name} whole");
    }
}

#[test]
fn truncated_vrrp_is_counted_as_a_length_drop() {
    let mut r = configured();
    let (_, full) = frames::keepalived_vectors()
        .into_iter()
        .find(|(n, _)| n.contains("vrid51_prio150"))
        .unwrap();
    // Full IPv4 header present, VRRP cut short: the IP total length promises more.
    for len in 34..full.len() {
        assert_eq!(r.run(&full[..len]).0, XDP_DROP, "cut to {len}");
    }
    let c = r.counters();
    assert_eq!(c.vrrp_drop_length, (full.len() - 34) as u64);
    assert_eq!(moved(&c), [("vrrp_drop_length", c.vrrp_drop_length)]);
}
