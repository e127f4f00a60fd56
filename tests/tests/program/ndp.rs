use vip_tests::{
    frames::{self, Ext},
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

fn ns() -> Vec<u8> {
    frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, VIP6)
}

/// scapy's own ICMPv6 checksum of the NS, computed over the upper-layer length (it walks
/// the extension headers itself).
const CHECK_NS: &str = "ns = f[ICMPv6ND_NS]\nsent = ns.cksum\ndel ns.cksum\n\
    print(sent == Ether(raw(f))[ICMPv6ND_NS].cksum)";

#[test]
fn solicitation_behind_extension_headers_is_answered_by_an_na_without_them() {
    let mut r = responder(true);
    let chains: [&[Ext]; 4] = [
        &[Ext::HopByHop],
        &[Ext::DestOptions],
        &[Ext::Routing { segments_left: 0 }],
        &[
            Ext::HopByHop,
            Ext::DestOptions,
            Ext::Routing { segments_left: 0 },
            Ext::DestOptions,
        ],
    ];
    let mut last = Vec::new();
    for chain in chains {
        let (verdict, out) = r.run(&frames::with_ipv6_ext(&ns(), chain));
        assert_eq!(verdict, XDP_TX, "{chain:?}");
        assert_eq!(out, expected_na(CLIENT_MAC, CLIENT_IP6, 0xe0), "{chain:?}");
        last = out;
    }
    assert_eq!(moved(&r.counters()), [("ns_reply", 4)]);
    // The NS was valid as sent (its checksum over the upper-layer length only), and the
    // answer is a valid NA by scapy's reckoning.
    assert_eq!(
        scapy(&frames::with_ipv6_ext(&ns(), chains[3]), CHECK_NS),
        "True"
    );
    assert_eq!(
        scapy(&last, CHECK_NA),
        "True 255 1 1 1 2001:db8::1 02:11:00:00:00:0b"
    );
}

#[test]
fn vlan_tagged_solicitation_behind_a_hop_by_hop_header_is_answered_on_its_vlan() {
    let mut r = responder(true);
    let ns = frames::with_ipv6_ext(&frames::vlan_tagged(&ns(), 42), &[Ext::HopByHop]);
    let (verdict, out) = r.run(&ns);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(
        out,
        frames::vlan_tagged(&expected_na(CLIENT_MAC, CLIENT_IP6, 0xe0), 42)
    );
}

#[test]
fn solicitation_in_a_fragment_for_a_configured_vip_is_dropped() {
    // Owned or not: RFC 6980 forbids fragmented NDP, and the kernel would drop it too.
    for owned in [true, false] {
        let mut r = responder(owned);
        for chain in [
            &[Ext::Fragment {
                offset: 0,
                more: false,
            }][..],
            &[
                Ext::HopByHop,
                Ext::Fragment {
                    offset: 0,
                    more: true,
                },
            ],
        ] {
            let f = frames::with_ipv6_ext(&ns(), chain);
            assert_eq!(r.run(&f).0, XDP_DROP, "owned {owned}, {chain:?}");
        }
        assert_eq!(moved(&r.counters()), [("ns_fragment", 2)], "owned {owned}");
    }
}

#[test]
fn fragments_that_are_not_a_solicitation_for_a_vip_pass_untouched() {
    let mut r = responder(true);
    let mut other = VIP6;
    other[15] = 0x0b;
    let for_other = frames::with_ipv6_ext(
        &frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, other),
        &[Ext::Fragment {
            offset: 0,
            more: true,
        }],
    );
    // A later fragment: what follows its header is data, whatever it looks like.
    let later = frames::with_ipv6_ext(
        &ns(),
        &[Ext::Fragment {
            offset: 4,
            more: false,
        }],
    );
    for f in [for_other, later] {
        assert_eq!(r.run(&f), (XDP_PASS, f.clone()));
    }
    assert!(moved(&r.counters()).is_empty());
}

#[test]
fn solicitation_behind_nine_extension_headers_is_dropped_as_too_deep() {
    let mut r = responder(true);
    let (verdict, out) = r.run(&frames::with_ipv6_ext(&ns(), &[Ext::DestOptions; 8]));
    assert_eq!(verdict, XDP_TX, "eight are walked");
    assert_eq!(out, expected_na(CLIENT_MAC, CLIENT_IP6, 0xe0));
    let nine = frames::with_ipv6_ext(&ns(), &[Ext::DestOptions; 9]);
    assert_eq!(r.run(&nine).0, XDP_DROP);
    // Whatever the chain hides, even an address that is no VIP: the program cannot know.
    let udp = frames::ipv6(CLIENT_MAC, ROUTER_MAC, CLIENT_IP6, VIP6, 17, 255, &[0; 16]);
    let udp_nine = frames::with_ipv6_ext(&udp, &[Ext::DestOptions; 9]);
    assert_eq!(r.run(&udp_nine).0, XDP_DROP);
    assert_eq!(
        moved(&r.counters()),
        [("ns_reply", 1), ("ipv6_ext_too_deep", 2)]
    );
}

#[test]
fn a_deep_chain_below_hop_limit_255_passes_untouched() {
    // Neither an NS nor VRRP is valid below 255, so it can hide neither.
    let mut r = responder(true);
    let mut f = frames::with_ipv6_ext(&ns(), &[Ext::DestOptions; 9]);
    f[14 + 7] = 64;
    assert_eq!(r.run(&f), (XDP_PASS, f));
    assert!(moved(&r.counters()).is_empty());
}

#[test]
fn chains_the_kernel_would_not_deliver_here_are_left_to_it() {
    let mut r = responder(true);
    for chain in [
        // RFC 8200 §4.3: hop-by-hop options only right after the IPv6 header.
        &[Ext::DestOptions, Ext::HopByHop][..],
        // Segments left: the packet is on its way to another node.
        &[Ext::Routing { segments_left: 1 }],
    ] {
        let f = frames::with_ipv6_ext(&ns(), chain);
        assert_eq!(r.run(&f), (XDP_PASS, f.clone()), "{chain:?}");
    }
    assert!(moved(&r.counters()).is_empty());
}

#[test]
fn solicitation_from_a_multicast_or_broadcast_source_is_dropped_never_answered() {
    let mut r = responder(true);
    for mac in [[0x33, 0x33, 0, 0, 0, 1], [0xff; 6]] {
        // The option agrees with the Ethernet source: only the I/G bit is wrong.
        let f = frames::neighbor_solicitation_with(mac, CLIENT_IP6, VIP6, Some(mac));
        assert_eq!(r.run(&f).0, XDP_DROP, "{mac:02x?}");
    }
    // A DAD probe too: its answer goes to all-nodes, but no station asked.
    let dad = frames::neighbor_solicitation_with([0xff; 6], [0; 16], VIP6, None);
    assert_eq!(r.run(&dad).0, XDP_DROP);
    assert_eq!(moved(&r.counters()), [("ns_bad_source", 3)]);
}

#[test]
fn solicitation_whose_source_address_option_is_not_the_ethernet_source_is_dropped() {
    let mut r = responder(true);
    for sllao in [OTHER_MAC, [0x33, 0x33, 0, 0, 0, 1]] {
        let f = frames::neighbor_solicitation_with(CLIENT_MAC, CLIENT_IP6, VIP6, Some(sllao));
        assert_eq!(r.run(&f).0, XDP_DROP, "{sllao:02x?}");
    }
    assert_eq!(moved(&r.counters()), [("ns_bad_source", 2)]);
}

#[test]
fn a_second_source_address_option_is_checked_too() {
    let mut r = responder(true);
    let mut f = ns();
    // Append another source link-layer option, naming OTHER_MAC, and redo the checksum.
    f.extend_from_slice(&[1, 1]);
    f.extend_from_slice(&OTHER_MAC);
    let body_len = f.len() - 54;
    f[18..20].copy_from_slice(&(body_len as u16).to_be_bytes());
    f[56..58].copy_from_slice(&[0, 0]);
    let src: [u8; 16] = f[22..38].try_into().unwrap();
    let dst: [u8; 16] = f[38..54].try_into().unwrap();
    let c = frames::icmpv6_checksum(&src, &dst, &f[54..]);
    f[56..58].copy_from_slice(&c.to_be_bytes());
    assert_eq!(r.run(&f).0, XDP_DROP);
    assert_eq!(moved(&r.counters()), [("ns_bad_source", 1)]);
}

#[test]
fn solicitation_without_a_source_address_option_is_answered_to_the_ethernet_source() {
    let mut r = responder(true);
    let f = frames::neighbor_solicitation_with(CLIENT_MAC, CLIENT_IP6, VIP6, None);
    let (verdict, out) = r.run(&f);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out, expected_na(CLIENT_MAC, CLIENT_IP6, 0xe0));
}

#[test]
fn a_bad_source_asking_for_another_address_passes_untouched() {
    let mut r = responder(true);
    let mut other = VIP6;
    other[15] = 0x0b;
    let f = frames::neighbor_solicitation_with([0xff; 6], CLIENT_IP6, other, Some(OTHER_MAC));
    assert_eq!(r.run(&f), (XDP_PASS, f));
    assert!(moved(&r.counters()).is_empty());
}
