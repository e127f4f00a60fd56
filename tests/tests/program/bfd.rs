//! BFD (RFC 5880 / 5881): Echo packets of a configured neighbour, sent from its MAC (as
//! its Control packets taught it) to this interface's, are looped back with `XDP_TX`,
//! their Ethernet addresses swapped and every other byte as it came; one for another
//! station's MAC (a promiscuous port) or from another MAC is passed untouched and counted
//! as spoofed; any other packet to the Echo port addressed back to its sender is passed
//! untouched and counted as refused; single-hop Control packets of a neighbour naming this
//! node's session leave its MAC in `BFD_PEERS`.

use vip_common::{
    BFD_CONTROL_PORT, BFD_ECHO_PORT, BfdPeer, BfdPeerKey, FAMILY_IPV4, FAMILY_IPV6, v4_in_16,
};
use vip_tests::{
    frames::{self, Ext},
    xdp::{Responder, TEST_IFINDEX, XDP_PASS, XDP_TX},
};

use crate::common::*;

/// The BFD neighbour: its MAC and addresses.
const NEIGHBOUR_MAC: [u8; 6] = CLIENT_MAC;
const NEIGHBOUR: [u8; 4] = CLIENT_IP;
const NEIGHBOUR6: [u8; 16] = CLIENT_IP6;
/// This node's addresses, where the neighbour's Control packets go.
const ROUTER_IP: [u8; 4] = [192, 0, 2, 10];
const ROUTER_IP6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
];
/// A host on the link that is no BFD neighbour.
const STRANGER: [u8; 4] = [192, 0, 2, 99];
const STRANGER6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x63,
];
const BROADCAST: [u8; 6] = [0xff; 6];
/// The Ethernet group of 224.0.0.1.
const GROUP_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0, 0, 0x01];
/// The Ethernet group of ff02::1.
const GROUP_MAC6: [u8; 6] = [0x33, 0x33, 0, 0, 0, 0x01];
const SOURCE_PORT: u16 = 49152;
/// vipd's echo payload (`vipd`, format 2, discriminator 7, sequence 42, a nonce): the
/// program never reads it.
const ECHO_PAYLOAD: [u8; 24] = [
    b'v', b'i', b'p', b'd', 2, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 42, 1, 2, 3, 4, 5, 6, 7, 8,
];
/// A Control packet: version 1, Up, detect multiplier 3, length 24, discriminators 7 and
/// 9, intervals of 100 ms, echo interval 50 ms.
const CONTROL_PAYLOAD: [u8; 24] = [
    0x20, 0xc0, 3, 24, 0, 0, 0, 7, 0, 0, 0, 9, 0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0, 0, 0, 0xc3, 0x50,
];
/// This node's discriminator for the neighbour's session: what `CONTROL_PAYLOAD` names as
/// Your Discriminator.
const LOCAL_DISC: u32 = 9;
/// The offset of the IPv4 / IPv6 header in an untagged frame.
const L3: usize = 14;

fn key4(ifindex: u32, vlan: u16, addr: [u8; 4]) -> BfdPeerKey {
    BfdPeerKey {
        ifindex,
        vlan,
        family: FAMILY_IPV4,
        _pad: 0,
        addr: v4_in_16(addr),
    }
}

fn key6(ifindex: u32, vlan: u16, addr: [u8; 16]) -> BfdPeerKey {
    BfdPeerKey {
        ifindex,
        vlan,
        family: FAMILY_IPV6,
        _pad: 0,
        addr,
    }
}

/// A responder with the neighbour configured (this node's MAC the router's), both
/// families, on each of `vlans` of the test interface; its MAC not learned yet.
fn configured_on(vlans: &[u16]) -> Responder {
    let mut r = Responder::load();
    for &vlan in vlans {
        r.maps()
            .add_bfd_peer(key4(TEST_IFINDEX, vlan, NEIGHBOUR), LOCAL_DISC, ROUTER_MAC)
            .unwrap();
        r.maps()
            .add_bfd_peer(key6(TEST_IFINDEX, vlan, NEIGHBOUR6), LOCAL_DISC, ROUTER_MAC)
            .unwrap();
    }
    r
}

fn configured() -> Responder {
    configured_on(&[0])
}

/// `frame` on `vlan` (untagged for 0).
fn on_vlan(frame: Vec<u8>, vlan: u16) -> Vec<u8> {
    if vlan == 0 {
        frame
    } else {
        frames::vlan_tagged(&frame, vlan)
    }
}

/// Runs the neighbour's Control packets naming this node's session (both families, on
/// each of `vlans`) through the program, as a session coming up does: its MAC is learned.
fn teach(r: &mut Responder, vlans: &[u16]) {
    for &vlan in vlans {
        for f in [
            control4(NEIGHBOUR_MAC, NEIGHBOUR, 255),
            control6(NEIGHBOUR_MAC, NEIGHBOUR6, 255),
        ] {
            assert_eq!(r.run(&on_vlan(f, vlan)).0, XDP_PASS);
        }
    }
}

/// A responder whose neighbour (both families, each of `vlans`) has sent Control packets
/// naming this node's session: its echoes are looped back.
fn with_neighbour_on(vlans: &[u16]) -> Responder {
    let mut r = configured_on(vlans);
    teach(&mut r, vlans);
    r
}

fn with_neighbour() -> Responder {
    with_neighbour_on(&[0])
}

fn udp4(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp = frames::udp(&src, &dst, SOURCE_PORT, dport, payload);
    frames::ipv4(src_mac, dst_mac, src, dst, 17, ttl, &udp)
}

fn udp6(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 16],
    dst: [u8; 16],
    hop_limit: u8,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp = frames::udp(&src, &dst, SOURCE_PORT, dport, payload);
    frames::ipv6(src_mac, dst_mac, src, dst, 17, hop_limit, &udp)
}

/// An Echo packet over IPv4 from `src` at `src_mac`, addressed back to it, sent to
/// `dst_mac`.
fn echo4_between(src_mac: [u8; 6], dst_mac: [u8; 6], src: [u8; 4]) -> Vec<u8> {
    udp4(
        src_mac,
        dst_mac,
        src,
        src,
        255,
        BFD_ECHO_PORT,
        &ECHO_PAYLOAD,
    )
}

fn echo6_between(src_mac: [u8; 6], dst_mac: [u8; 6], src: [u8; 16]) -> Vec<u8> {
    udp6(
        src_mac,
        dst_mac,
        src,
        src,
        255,
        BFD_ECHO_PORT,
        &ECHO_PAYLOAD,
    )
}

/// The neighbour's Echo packets, as it sends them to this node's MAC.
fn echo4() -> Vec<u8> {
    echo4_between(NEIGHBOUR_MAC, ROUTER_MAC, NEIGHBOUR)
}

fn echo6() -> Vec<u8> {
    echo6_between(NEIGHBOUR_MAC, ROUTER_MAC, NEIGHBOUR6)
}

/// The neighbour's Control packets to this node, at `ttl`.
fn control4(src_mac: [u8; 6], src: [u8; 4], ttl: u8) -> Vec<u8> {
    control4_with(src_mac, src, ttl, &CONTROL_PAYLOAD)
}

fn control4_with(src_mac: [u8; 6], src: [u8; 4], ttl: u8, payload: &[u8]) -> Vec<u8> {
    udp4(
        src_mac,
        ROUTER_MAC,
        src,
        ROUTER_IP,
        ttl,
        BFD_CONTROL_PORT,
        payload,
    )
}

fn control6(src_mac: [u8; 6], src: [u8; 16], hop_limit: u8) -> Vec<u8> {
    udp6(
        src_mac,
        ROUTER_MAC,
        src,
        ROUTER_IP6,
        hop_limit,
        BFD_CONTROL_PORT,
        &CONTROL_PAYLOAD,
    )
}

/// `frame` with its Ethernet source and destination exchanged, nothing else.
fn swapped(frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[..6].copy_from_slice(&frame[6..12]);
    f[6..12].copy_from_slice(&frame[..6]);
    f
}

#[track_caller]
fn loops_back(r: &mut Responder, frame: &[u8], what: &str) {
    assert_eq!(r.run(frame), (XDP_TX, swapped(frame)), "{what}");
}

#[track_caller]
fn passes_untouched(r: &mut Responder, frame: &[u8], what: &str) {
    assert_eq!(r.run(frame), (XDP_PASS, frame.to_vec()), "{what}");
}

/// Rewrites the IPv4 header checksum of an untagged frame after a header change.
fn fix_ip4_checksum(f: &mut [u8]) {
    let ihl = (f[L3] & 0x0f) as usize * 4;
    f[L3 + 10..L3 + 12].copy_from_slice(&[0, 0]);
    let c = frames::inet_checksum(&[&f[L3..L3 + ihl]]);
    f[L3 + 10..L3 + 12].copy_from_slice(&c.to_be_bytes());
}

fn mac_of(r: &mut Responder, key: BfdPeerKey) -> [u8; 6] {
    r.maps().bfd_peer(&key).expect("neighbour configured").mac
}

#[test]
fn the_test_frames_are_valid_udp() {
    // scapy recomputes both checksums independently of our frame builders.
    const CHECK: &str = "c = (f[UDP].chksum, f[IP].chksum if IP in f else 0)\n\
        del f[UDP].chksum\n\
        if IP in f: del f[IP].chksum\n\
        g = Ether(raw(f))\n\
        print(c == (g[UDP].chksum, g[IP].chksum if IP in g else 0), g[UDP].dport)";
    assert_eq!(scapy(&echo4(), CHECK), "True 3785");
    assert_eq!(scapy(&echo6(), CHECK), "True 3785");
    assert_eq!(
        scapy(&control4(NEIGHBOUR_MAC, NEIGHBOUR, 255), CHECK),
        "True 3784"
    );
    assert_eq!(
        scapy(&control6(NEIGHBOUR_MAC, NEIGHBOUR6, 255), CHECK),
        "True 3784"
    );
}

#[test]
fn echo_of_a_neighbour_is_looped_back_with_only_its_ethernet_addresses_swapped() {
    for (family, frame) in [("ipv4", echo4()), ("ipv6", echo6())] {
        let mut r = with_neighbour();
        loops_back(&mut r, &frame, family);
        assert_eq!(
            moved(&r.counters()),
            [("bfd_echo_reflected", 1)],
            "{family}"
        );
    }
}

#[test]
fn vlan_tagged_echo_is_looped_back_with_its_tag_only_on_its_vlan() {
    let mut r = with_neighbour_on(&[42]);
    for (family, frame) in [("ipv4", echo4()), ("ipv6", echo6())] {
        loops_back(&mut r, &frames::vlan_tagged(&frame, 42), family);
        passes_untouched(&mut r, &frame, family);
        passes_untouched(&mut r, &frames::vlan_tagged(&frame, 43), family);
    }
    assert_eq!(
        moved(&r.counters()),
        [("bfd_echo_reflected", 2), ("bfd_echo_refused", 4)]
    );
}

#[test]
fn echo_behind_ipv6_extension_headers_is_looped_back() {
    let mut r = with_neighbour();
    let chains: [&[Ext]; 3] = [
        &[Ext::HopByHop],
        &[Ext::HopByHop, Ext::DestOptions],
        &[Ext::Routing { segments_left: 0 }, Ext::DestOptions],
    ];
    for chain in chains {
        let f = frames::with_ipv6_ext(&echo6(), chain);
        loops_back(&mut r, &f, &format!("{chain:?}"));
        loops_back(
            &mut r,
            &frames::with_ipv6_ext(&frames::vlan_tagged(&echo6(), 0), chain),
            &format!("{chain:?} priority-tagged"),
        );
    }
    assert_eq!(moved(&r.counters()), [("bfd_echo_reflected", 6)]);
}

#[test]
fn echo_with_ip_options_or_ethernet_padding_is_looped_back_whole() {
    let mut r = with_neighbour();
    // Padding beyond the datagram (a short frame's) goes back too.
    let mut padded = echo4();
    padded.resize(padded.len() + 8, 0);
    loops_back(&mut r, &padded, "padded");
    // Four bytes of options (three no-ops and an end of list): the UDP header moves.
    let mut options = echo4();
    options.splice(L3 + 20..L3 + 20, [1, 1, 1, 0]);
    options[L3] = 0x46;
    let tot = u16::from_be_bytes([options[L3 + 2], options[L3 + 3]]) + 4;
    options[L3 + 2..L3 + 4].copy_from_slice(&tot.to_be_bytes());
    fix_ip4_checksum(&mut options);
    loops_back(&mut r, &options, "ip options");
    assert_eq!(moved(&r.counters()), [("bfd_echo_reflected", 2)]);
}

#[test]
fn echo_of_a_host_that_is_no_neighbour_is_refused() {
    let mut r = with_neighbour();
    passes_untouched(
        &mut r,
        &echo4_between(NEIGHBOUR_MAC, ROUTER_MAC, STRANGER),
        "ipv4",
    );
    passes_untouched(
        &mut r,
        &echo6_between(NEIGHBOUR_MAC, ROUTER_MAC, STRANGER6),
        "ipv6",
    );
    // And with nobody configured at all.
    let mut empty = Responder::load();
    passes_untouched(&mut empty, &echo4(), "ipv4, no neighbours");
    passes_untouched(&mut empty, &echo6(), "ipv6, no neighbours");
    assert_eq!(moved(&r.counters()), [("bfd_echo_refused", 2)]);
    assert_eq!(moved(&empty.counters()), [("bfd_echo_refused", 2)]);
}

#[test]
fn udp_that_is_not_an_echo_passes_uncounted() {
    let mut r = configured();
    let cases = [
        // To the Echo port, but not addressed back to its sender.
        udp4(
            NEIGHBOUR_MAC,
            ROUTER_MAC,
            NEIGHBOUR,
            ROUTER_IP,
            255,
            BFD_ECHO_PORT,
            &ECHO_PAYLOAD,
        ),
        udp6(
            NEIGHBOUR_MAC,
            ROUTER_MAC,
            NEIGHBOUR6,
            ROUTER_IP6,
            255,
            BFD_ECHO_PORT,
            &ECHO_PAYLOAD,
        ),
        // Addressed back to its sender, but to the Control port, or another one.
        udp4(
            NEIGHBOUR_MAC,
            ROUTER_MAC,
            NEIGHBOUR,
            NEIGHBOUR,
            255,
            BFD_CONTROL_PORT,
            &ECHO_PAYLOAD,
        ),
        udp6(
            NEIGHBOUR_MAC,
            ROUTER_MAC,
            NEIGHBOUR6,
            NEIGHBOUR6,
            255,
            BFD_CONTROL_PORT,
            &ECHO_PAYLOAD,
        ),
        udp4(
            NEIGHBOUR_MAC,
            ROUTER_MAC,
            NEIGHBOUR,
            NEIGHBOUR,
            255,
            53,
            &ECHO_PAYLOAD,
        ),
        udp6(
            NEIGHBOUR_MAC,
            ROUTER_MAC,
            NEIGHBOUR6,
            NEIGHBOUR6,
            255,
            BFD_ECHO_PORT + 1,
            &ECHO_PAYLOAD,
        ),
    ];
    for (i, f) in cases.iter().enumerate() {
        passes_untouched(&mut r, f, &format!("case {i}"));
    }
    assert!(moved(&r.counters()).is_empty());
    // A "Control packet" addressed to its own sender teaches nothing either.
    assert_eq!(mac_of(&mut r, key4(TEST_IFINDEX, 0, NEIGHBOUR)), [0; 6]);
    assert_eq!(mac_of(&mut r, key6(TEST_IFINDEX, 0, NEIGHBOUR6)), [0; 6]);
}

#[test]
fn echo_not_between_two_stations_is_refused() {
    let mut r = with_neighbour();
    let group_src = [0x03, 0x11, 0, 0, 0, 0x0b];
    let cases = [
        (
            "ipv4 to broadcast",
            echo4_between(NEIGHBOUR_MAC, BROADCAST, NEIGHBOUR),
        ),
        (
            "ipv4 to a group",
            echo4_between(NEIGHBOUR_MAC, GROUP_MAC, NEIGHBOUR),
        ),
        (
            "ipv4 from a group",
            echo4_between(group_src, ROUTER_MAC, NEIGHBOUR),
        ),
        (
            "ipv4 from broadcast",
            echo4_between(BROADCAST, ROUTER_MAC, NEIGHBOUR),
        ),
        (
            "ipv6 to broadcast",
            echo6_between(NEIGHBOUR_MAC, BROADCAST, NEIGHBOUR6),
        ),
        (
            "ipv6 to a group",
            echo6_between(NEIGHBOUR_MAC, GROUP_MAC6, NEIGHBOUR6),
        ),
        (
            "ipv6 from a group",
            echo6_between(GROUP_MAC6, ROUTER_MAC, NEIGHBOUR6),
        ),
        (
            "ipv6 from broadcast",
            echo6_between(BROADCAST, ROUTER_MAC, NEIGHBOUR6),
        ),
    ];
    for (what, f) in &cases {
        passes_untouched(&mut r, f, what);
    }
    assert_eq!(
        moved(&r.counters()),
        [("bfd_echo_refused", cases.len() as u64)]
    );
}

#[test]
fn echo_of_a_neighbour_of_another_interface_or_vlan_is_refused() {
    let mut r = Responder::load();
    for key in [
        key4(TEST_IFINDEX + 1, 0, NEIGHBOUR),
        key6(TEST_IFINDEX + 1, 0, NEIGHBOUR6),
        key4(TEST_IFINDEX, 7, NEIGHBOUR),
        key6(TEST_IFINDEX, 7, NEIGHBOUR6),
    ] {
        r.maps().add_bfd_peer(key, LOCAL_DISC, ROUTER_MAC).unwrap();
    }
    teach(&mut r, &[7]);
    for (family, frame) in [("ipv4", echo4()), ("ipv6", echo6())] {
        passes_untouched(&mut r, &frame, &format!("{family} untagged"));
        passes_untouched(
            &mut r,
            &frames::vlan_tagged(&frame, 8),
            &format!("{family} vlan 8"),
        );
        // Where it is configured, it is looped back.
        loops_back(&mut r, &frames::vlan_tagged(&frame, 7), family);
    }
    assert_eq!(
        moved(&r.counters()),
        [("bfd_echo_reflected", 2), ("bfd_echo_refused", 4)]
    );
}

#[test]
fn fragments_are_never_looped_back() {
    let mut r = with_neighbour();
    // IPv4, first fragment (More Fragments set): its UDP header is real, the echo is not
    // whole.
    let mut first = echo4();
    first[L3 + 6] |= 0x20;
    fix_ip4_checksum(&mut first);
    passes_untouched(&mut r, &first, "ipv4 first fragment");
    // IPv4, a later fragment: what sits where a UDP header would is data, whatever it
    // looks like, so it is not even an echo to refuse.
    let mut later = echo4();
    later[L3 + 7] = 1;
    fix_ip4_checksum(&mut later);
    passes_untouched(&mut r, &later, "ipv4 later fragment");
    // IPv6 behind a fragment header: a first fragment and an atomic one are refused, a
    // later one is opaque to the walk.
    for (what, offset, more) in [
        ("ipv6 first fragment", 0, true),
        ("ipv6 atomic fragment", 0, false),
        ("ipv6 later fragment", 1, false),
    ] {
        let f = frames::with_ipv6_ext(&echo6(), &[Ext::Fragment { offset, more }]);
        passes_untouched(&mut r, &f, what);
    }
    assert_eq!(moved(&r.counters()), [("bfd_echo_refused", 3)]);
}

#[test]
fn echo_whose_lengths_promise_more_than_the_frame_holds_is_refused() {
    let mut r = with_neighbour();
    let set_u16 = |f: &mut Vec<u8>, at: usize, delta: i32| {
        let v = u16::from_be_bytes([f[at], f[at + 1]]) as i32 + delta;
        f[at..at + 2].copy_from_slice(&(v as u16).to_be_bytes());
    };
    let mut ip_long = echo4();
    set_u16(&mut ip_long, L3 + 2, 1);
    fix_ip4_checksum(&mut ip_long);
    let mut ip_short = echo4();
    // An IP packet too short to hold the UDP datagram it carries.
    set_u16(&mut ip_short, L3 + 2, -1);
    fix_ip4_checksum(&mut ip_short);
    let mut udp_long = echo4();
    set_u16(&mut udp_long, L3 + 20 + 4, 1);
    let mut udp_runt = echo4();
    udp_runt[L3 + 20 + 4..L3 + 20 + 6].copy_from_slice(&7u16.to_be_bytes());
    let mut ip6_long = echo6();
    set_u16(&mut ip6_long, L3 + 4, 1);
    let mut udp6_long = echo6();
    set_u16(&mut udp6_long, L3 + 40 + 4, 1);
    let cases = [
        ("ipv4 total length", ip_long),
        ("ipv4 total length short of the datagram", ip_short),
        ("udp length over ipv4", udp_long),
        ("udp length below its header", udp_runt),
        ("ipv6 payload length", ip6_long),
        ("udp length over ipv6", udp6_long),
    ];
    for (what, f) in &cases {
        passes_untouched(&mut r, f, what);
    }
    assert_eq!(
        moved(&r.counters()),
        [("bfd_echo_refused", cases.len() as u64)]
    );
}

#[test]
fn truncated_bfd_frames_pass_untouched_and_are_never_looped_back_or_learned_from() {
    let mut r = configured_on(&[0, 42]);
    let mut kinds = vec![
        ("echo ipv4", echo4()),
        ("echo ipv6", echo6()),
        (
            "echo ipv6 behind extension headers",
            frames::with_ipv6_ext(&echo6(), &[Ext::HopByHop, Ext::DestOptions]),
        ),
        ("control ipv4", control4(NEIGHBOUR_MAC, NEIGHBOUR, 255)),
        ("control ipv6", control6(NEIGHBOUR_MAC, NEIGHBOUR6, 255)),
    ];
    let tagged: Vec<_> = kinds
        .iter()
        .map(|(n, f)| (*n, frames::vlan_tagged(f, 42)))
        .collect();
    kinds.extend(tagged);
    for (name, full) in &kinds {
        // BPF_PROG_TEST_RUN refuses XDP input shorter than an Ethernet header.
        for len in 14..full.len() {
            let cut = &full[..len];
            passes_untouched(&mut r, cut, &format!("{name} cut to {len}"));
        }
    }
    let c = r.counters();
    assert_eq!(c.bfd_echo_reflected, 0);
    // Every cut that shows the Echo port of an echo is refused, the others pass uncounted.
    assert!(c.bfd_echo_refused > 0);
    assert_eq!(
        moved(&c),
        [("bfd_echo_refused", c.bfd_echo_refused)],
        "nothing but refusals counted"
    );
    for (_, peer) in r.maps().bfd_peers().unwrap() {
        assert_eq!(peer.mac, [0; 6], "learned from a cut Control packet");
    }
    // The whole frames still do what they should: Control packets teach the MAC (first),
    // then echoes are looped back.
    kinds.sort_by_key(|(name, _)| !name.starts_with("control"));
    for (name, full) in &kinds {
        let expected = if name.starts_with("echo") {
            (XDP_TX, swapped(full))
        } else {
            (XDP_PASS, full.clone())
        };
        assert_eq!(r.run(full), expected, "{name} whole");
    }
    assert_eq!(
        mac_of(&mut r, key4(TEST_IFINDEX, 42, NEIGHBOUR)),
        NEIGHBOUR_MAC
    );
}

#[test]
fn single_hop_control_of_a_neighbour_records_its_mac() {
    let mut r = configured();
    let k4 = key4(TEST_IFINDEX, 0, NEIGHBOUR);
    let k6 = key6(TEST_IFINDEX, 0, NEIGHBOUR6);
    assert_eq!(mac_of(&mut r, k4), [0; 6]);
    passes_untouched(&mut r, &control4(NEIGHBOUR_MAC, NEIGHBOUR, 255), "ipv4");
    assert_eq!(mac_of(&mut r, k4), NEIGHBOUR_MAC);
    assert_eq!(
        mac_of(&mut r, k6),
        [0; 6],
        "one family teaches the other nothing"
    );
    passes_untouched(&mut r, &control6(NEIGHBOUR_MAC, NEIGHBOUR6, 255), "ipv6");
    assert_eq!(mac_of(&mut r, k6), NEIGHBOUR_MAC);
    // The neighbour's NIC was replaced: the next Control packet says so.
    passes_untouched(&mut r, &control4(OTHER_MAC, NEIGHBOUR, 255), "ipv4 moved");
    passes_untouched(&mut r, &control6(OTHER_MAC, NEIGHBOUR6, 255), "ipv6 moved");
    assert_eq!(
        (mac_of(&mut r, k4), mac_of(&mut r, k6)),
        (OTHER_MAC, OTHER_MAC)
    );
    // Behind extension headers, and on a VLAN where it is configured.
    let mut r = configured_on(&[42]);
    let behind = frames::with_ipv6_ext(&control6(NEIGHBOUR_MAC, NEIGHBOUR6, 255), &[Ext::HopByHop]);
    passes_untouched(&mut r, &frames::vlan_tagged(&behind, 42), "ipv6 vlan 42");
    assert_eq!(
        mac_of(&mut r, key6(TEST_IFINDEX, 42, NEIGHBOUR6)),
        NEIGHBOUR_MAC
    );
    assert!(moved(&r.counters()).is_empty());
}

#[test]
fn control_that_may_come_from_off_link_or_from_a_stranger_records_nothing() {
    let mut r = configured();
    let group_src = [0x03, 0x11, 0, 0, 0, 0x0b];
    let cases = [
        ("ipv4 ttl 254", control4(NEIGHBOUR_MAC, NEIGHBOUR, 254)),
        (
            "ipv6 hop limit 254",
            control6(NEIGHBOUR_MAC, NEIGHBOUR6, 254),
        ),
        ("ipv4 ttl 1", control4(NEIGHBOUR_MAC, NEIGHBOUR, 1)),
        ("ipv4 from a group", control4(group_src, NEIGHBOUR, 255)),
        ("ipv6 from a group", control6(GROUP_MAC6, NEIGHBOUR6, 255)),
        ("ipv4 stranger", control4(NEIGHBOUR_MAC, STRANGER, 255)),
        ("ipv6 stranger", control6(NEIGHBOUR_MAC, STRANGER6, 255)),
        (
            "ipv4 on another vlan",
            frames::vlan_tagged(&control4(NEIGHBOUR_MAC, NEIGHBOUR, 255), 42),
        ),
        (
            "ipv6 in a fragment",
            frames::with_ipv6_ext(
                &control6(NEIGHBOUR_MAC, NEIGHBOUR6, 255),
                &[Ext::Fragment {
                    offset: 0,
                    more: false,
                }],
            ),
        ),
    ];
    for (what, f) in &cases {
        passes_untouched(&mut r, f, what);
    }
    // Nothing learned, no entry made for the stranger, nothing counted.
    let mut peers = r.maps().bfd_peers().unwrap();
    peers.sort_by_key(|(k, _)| k.family);
    let untaught = BfdPeer {
        local_disc: LOCAL_DISC,
        own_mac: ROUTER_MAC,
        ..BfdPeer::default()
    };
    assert_eq!(
        peers,
        [
            (key4(TEST_IFINDEX, 0, NEIGHBOUR), untaught),
            (key6(TEST_IFINDEX, 0, NEIGHBOUR6), untaught),
        ]
    );
    assert!(moved(&r.counters()).is_empty());
}

/// A Control packet from the neighbour's address with `your_disc` as its Your
/// Discriminator, from `mac`.
fn control4_naming(mac: [u8; 6], your_disc: u32) -> Vec<u8> {
    let mut payload = CONTROL_PAYLOAD;
    payload[8..12].copy_from_slice(&your_disc.to_be_bytes());
    control4_with(mac, NEIGHBOUR, 255, &payload)
}

#[test]
fn control_that_does_not_name_this_nodes_session_teaches_no_mac() {
    // Anyone on the link can claim the neighbour's address with TTL 255: learning from
    // that would send every echo to the forger and fail the session (a lab flood of such
    // packets did exactly that). Only a packet naming our discriminator is the neighbour.
    let mut r = configured();
    let k4 = key4(TEST_IFINDEX, 0, NEIGHBOUR);
    for (what, disc) in [
        ("a session not yet known (zero)", 0),
        ("another discriminator", LOCAL_DISC + 1),
        ("byte-swapped", LOCAL_DISC.swap_bytes()),
    ] {
        passes_untouched(&mut r, &control4_naming(OTHER_MAC, disc), what);
        assert_eq!(mac_of(&mut r, k4), [0; 6], "learned from {what}");
    }
    passes_untouched(&mut r, &control4_naming(NEIGHBOUR_MAC, LOCAL_DISC), "ours");
    assert_eq!(mac_of(&mut r, k4), NEIGHBOUR_MAC);
    // A forger's packets afterwards move nothing.
    passes_untouched(&mut r, &control4_naming(OTHER_MAC, 0), "forged after");
    assert_eq!(mac_of(&mut r, k4), NEIGHBOUR_MAC);
    // An entry not yet told its discriminator learns from nothing.
    r.maps().remove_bfd_peer(&k4).unwrap();
    r.maps().add_bfd_peer(k4, 0, ROUTER_MAC).unwrap();
    passes_untouched(&mut r, &control4_naming(NEIGHBOUR_MAC, 0), "zero both");
    assert_eq!(mac_of(&mut r, k4), [0; 6]);
    // A new discriminator for an entry (the session was opened again) keeps the MAC.
    r.maps().add_bfd_peer(k4, LOCAL_DISC, ROUTER_MAC).unwrap();
    passes_untouched(&mut r, &control4_naming(NEIGHBOUR_MAC, LOCAL_DISC), "again");
    r.maps()
        .add_bfd_peer(k4, LOCAL_DISC + 2, ROUTER_MAC)
        .unwrap();
    assert_eq!(
        r.maps().bfd_peer(&k4).unwrap(),
        BfdPeer {
            mac: NEIGHBOUR_MAC,
            own_mac: ROUTER_MAC,
            local_disc: LOCAL_DISC + 2,
        }
    );
}

#[test]
fn echo_for_another_stations_mac_on_a_promiscuous_port_is_not_reflected() {
    // A bridge member, a NIC with several VMACs in its filter, or one tcpdump put in
    // promiscuous mode sees frames meant for other stations. Looping one back would send
    // it with that station's MAC as its source: the switch would learn the station here.
    let mut r = with_neighbour();
    let elsewhere = [0x02, 0x33, 0, 0, 0, 0x21];
    for vmac in [elsewhere, [0x00, 0x00, 0x5e, 0x00, 0x01, 0x33]] {
        passes_untouched(
            &mut r,
            &echo4_between(NEIGHBOUR_MAC, vmac, NEIGHBOUR),
            "ipv4 to another station",
        );
        passes_untouched(
            &mut r,
            &echo6_between(NEIGHBOUR_MAC, vmac, NEIGHBOUR6),
            "ipv6 to another station",
        );
    }
    assert_eq!(moved(&r.counters()), [("bfd_echo_spoofed", 4)]);
    // The same echoes to this interface's MAC are looped back.
    loops_back(&mut r, &echo4(), "ipv4 to us");
    loops_back(&mut r, &echo6(), "ipv6 to us");
}

#[test]
fn echo_from_a_mac_that_is_not_the_neighbours_is_not_reflected() {
    // A forger claiming the neighbour's address from its own MAC gets nothing back.
    let mut r = with_neighbour();
    passes_untouched(
        &mut r,
        &echo4_between(OTHER_MAC, ROUTER_MAC, NEIGHBOUR),
        "ipv4",
    );
    passes_untouched(
        &mut r,
        &echo6_between(OTHER_MAC, ROUTER_MAC, NEIGHBOUR6),
        "ipv6",
    );
    assert_eq!(moved(&r.counters()), [("bfd_echo_spoofed", 2)]);
    // Before any Control packet named our session, no MAC is the neighbour's: nothing is
    // looped back, not even from the right one.
    let mut r = configured();
    passes_untouched(&mut r, &echo4(), "ipv4 unlearned");
    passes_untouched(&mut r, &echo6(), "ipv6 unlearned");
    assert_eq!(moved(&r.counters()), [("bfd_echo_spoofed", 2)]);
    // Nor to an entry whose interface MAC the daemon did not know (all zero).
    let mut r = Responder::load();
    let k4 = key4(TEST_IFINDEX, 0, NEIGHBOUR);
    r.maps().add_bfd_peer(k4, LOCAL_DISC, [0; 6]).unwrap();
    passes_untouched(&mut r, &control4(NEIGHBOUR_MAC, NEIGHBOUR, 255), "teach");
    assert_eq!(mac_of(&mut r, k4), NEIGHBOUR_MAC);
    passes_untouched(&mut r, &echo4(), "no interface MAC");
    passes_untouched(
        &mut r,
        &echo4_between(NEIGHBOUR_MAC, [0; 6], NEIGHBOUR),
        "to the all-zero MAC",
    );
    assert_eq!(moved(&r.counters()), [("bfd_echo_spoofed", 2)]);
}
