//! Every frame kind cut at every length: passed untouched or dropped, never answered,
//! never aborted.

use vip_tests::{
    frames::{self, Ext},
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
        (
            "neighbor solicitation behind extension headers".to_owned(),
            frames::with_ipv6_ext(
                &frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, VIP6),
                &[Ext::HopByHop, Ext::Routing { segments_left: 0 }],
            ),
        ),
    ];
    let vrrp: Vec<_> = frames::keepalived_vectors()
        .into_iter()
        .filter(|(n, _)| n.contains("_vrrpv"))
        .collect();
    let behind_ext: Vec<_> = vrrp
        .iter()
        .filter(|(n, _)| n.contains("ipv6"))
        .map(|(n, f)| {
            let f = frames::with_ipv6_ext(f, &[Ext::HopByHop, Ext::DestOptions]);
            (format!("{n} behind extension headers"), f)
        })
        .collect();
    kinds.extend(vrrp);
    kinds.extend(behind_ext);
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
fn truncated_vrrp_is_a_length_drop_once_it_shows_a_vrid_of_ours() {
    let mut r = configured();
    let (_, full) = frames::keepalived_vectors()
        .into_iter()
        .find(|(n, _)| n.contains("vrid51_prio150"))
        .unwrap();
    // Full IPv4 header present, VRRP cut short: the IP total length promises more. Until
    // the VRID byte (offset 35) is in the frame, nothing says the advert is for one of
    // our virtual routers rather than another VRRP speaker's, so it passes untouched;
    // this used to be a length drop, and changed deliberately so vipd never drops VRRP it
    // cannot attribute to itself.
    for len in 34..36 {
        let cut = &full[..len];
        assert_eq!(r.run(cut), (XDP_PASS, cut.to_vec()), "cut to {len}");
    }
    for len in 36..full.len() {
        assert_eq!(r.run(&full[..len]).0, XDP_DROP, "cut to {len}");
    }
    let c = r.counters();
    assert_eq!(c.vrrp_drop_length, (full.len() - 36) as u64);
    assert_eq!(
        moved(&c),
        [
            ("vrrp_drop_length", c.vrrp_drop_length),
            ("vrrp_foreign", 2)
        ]
    );
}
