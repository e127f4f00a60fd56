//! CARP admission: what the program checks without the passphrase, that it passes the
//! rest to the daemon without ever releasing a slot, and that CARP and VRRP with the
//! same id on one link are each judged by their own policy.

use std::net::{IpAddr, Ipv4Addr};

use vip_common::{
    FAMILY_F_CARP, FAMILY_IPV4, FAMILY_IPV6, GroupState, LEASE_FOREVER, POLICY_F_ALLOWLIST,
    PeerKey, Policy, PolicyKey, v4_in_16,
};
use vip_tests::{
    frames::{self, Ext},
    wire::{advert_v3, fix_ip_checksum},
    xdp::{Responder, TEST_IFINDEX, XDP_DROP, XDP_PASS},
};
use vipd::vrrp::carp::{Advert, Authenticator, Key, LinkLocal, VirtualHost};

use crate::common::moved;

/// The slot of the CARP groups (VHIDs 7 and 200, as in the ucarp capture).
const CARP_SLOT: u32 = 4;
/// The slot of a VRRP group with VRID 7, for the same-id tests.
const VRRP_SLOT: u32 = 5;
/// Offset of the protocol-112 message in an untagged IPv4 frame without options.
const MSG4: usize = 34;
const MSG6: usize = 54;

fn carp_key(family: u8, vhid: u8, vlan: u16) -> PolicyKey {
    PolicyKey::carp(TEST_IFINDEX, vlan, family, vhid)
}

fn vrrp_key(family: u8, vrid: u8) -> PolicyKey {
    PolicyKey {
        ifindex: TEST_IFINDEX,
        vlan: 0,
        family,
        vrid,
    }
}

/// A responder running CARP VHIDs 7 and 200 over IPv4 and VHID 7 over IPv6, on the
/// untagged link and VLAN 42, their slot owned with a state that any VRRP advertisement
/// would release (a planned handover in progress).
fn carp_peer() -> Responder {
    let mut r = Responder::load();
    for vlan in [0, 42] {
        for (family, vhid) in [(FAMILY_IPV4, 7), (FAMILY_IPV4, 200), (FAMILY_IPV6, 7)] {
            r.maps()
                .set_policy(carp_key(family, vhid, vlan), Policy::carp(CARP_SLOT))
                .unwrap();
        }
    }
    r.maps()
        .set_group(
            CARP_SLOT,
            GroupState::owned_until(LEASE_FOREVER).resigning(),
        )
        .unwrap();
    r
}

fn ucarp(name: &str) -> Vec<u8> {
    frames::ucarp_vectors()
        .into_iter()
        .find(|(n, _)| n.starts_with(name))
        .unwrap_or_else(|| panic!("vector {name}"))
        .1
}

const R1_ALONE: &str = "ucarp-1.5.2_vhid7_r1_alone_1";

fn carp_slot_untouched(r: &mut Responder) {
    let state = r.maps().group(CARP_SLOT).unwrap();
    assert_eq!(state.owned, 1, "a CARP advertisement released the slot");
    assert_eq!(r.maps().release(CARP_SLOT).unwrap().count, 0);
}

fn drops(r: &mut Responder, frame: &[u8], reason: &'static str) {
    assert_eq!(r.run(frame).0, XDP_DROP, "expected a {reason} drop");
    assert_eq!(moved(&r.counters()), [(reason, 1)]);
}

/// Recomputes the CARP checksum (its 36 bytes alone) after an edit at `msg`.
fn fix_carp_checksum(f: &mut [u8], msg: usize) {
    f[msg + 6..msg + 8].copy_from_slice(&[0, 0]);
    let c = frames::inet_checksum(&[&f[msg..msg + 36]]);
    f[msg + 6..msg + 8].copy_from_slice(&c.to_be_bytes());
}

/// A CARP advertisement over IPv6 from 2001:db8::11 to ff02::12, signed for VHID 7 with
/// `lab-carp-pass` and the address 2001:db8::70.
fn carp_v6(advskew: u8, hop_limit: u8) -> Vec<u8> {
    let host = VirtualHost::new(7, ["2001:db8::70".parse::<IpAddr>().unwrap()]);
    let auth = Authenticator::new(
        &Key::new(b"lab-carp-pass").unwrap(),
        &host,
        LinkLocal::Without,
    );
    let counter = 0x1122_3344_5566_7788;
    let msg = Advert {
        vhid: 7,
        advskew,
        advbase: 1,
        demote: 0,
        counter,
        digest: auth.sign(counter),
    }
    .encode();
    let src: [u8; 16] = "2001:db8::11"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    let dst: [u8; 16] = "ff02::12".parse::<std::net::Ipv6Addr>().unwrap().octets();
    frames::ipv6(
        [0x00, 0x00, 0x5e, 0x00, 0x01, 7],
        [0x33, 0x33, 0, 0, 0, 0x12],
        src,
        dst,
        112,
        hop_limit,
        &msg,
    )
}

#[test]
fn every_ucarp_advertisement_passes_to_the_daemon_untouched() {
    let mut r = carp_peer();
    let adverts: Vec<_> = frames::ucarp_vectors()
        .into_iter()
        .filter(|(n, _)| !n.contains("garp"))
        .collect();
    assert_eq!(adverts.len(), 11);
    for (name, f) in &adverts {
        assert_eq!(r.run(f), (XDP_PASS, f.clone()), "{name}");
        let tagged = frames::vlan_tagged(f, 42);
        assert_eq!(r.run(&tagged), (XDP_PASS, tagged.clone()), "{name} tagged");
    }
    assert_eq!(moved(&r.counters()), [("carp_pass", 22)]);
    carp_slot_untouched(&mut r);
}

#[test]
fn a_carp_advertisement_never_releases_a_slot_forged_or_not() {
    let mut r = carp_peer();
    // Skew 0 (the most preferred there is) and a wrong HMAC: the program cannot tell it
    // is forged, passes it for the daemon to refuse, and moves nothing.
    let mut forged = ucarp(R1_ALONE);
    forged[MSG4 + 2] = 0;
    forged[MSG4 + 20] ^= 0xff;
    fix_carp_checksum(&mut forged, MSG4);
    for f in [ucarp(R1_ALONE), forged] {
        assert_eq!(r.run(&f), (XDP_PASS, f.clone()));
    }
    assert_eq!(moved(&r.counters()), [("carp_pass", 2)]);
    carp_slot_untouched(&mut r);
}

#[test]
fn carp_for_a_vhid_not_configured_passes_untouched_for_other_carp_speakers() {
    let mut r = Responder::load();
    let f = ucarp(R1_ALONE);
    assert_eq!(r.run(&f), (XDP_PASS, f.clone()));
    // Not judged at all: a bad TTL passes too.
    let mut bad = f.clone();
    bad[14 + 8] = 1;
    fix_ip_checksum(&mut bad);
    assert_eq!(r.run(&bad).0, XDP_PASS);
    assert_eq!(moved(&r.counters()), [("carp_foreign", 2)]);
    // Where the interface drops foreign protocol-112 traffic, it is dropped.
    r.maps()
        .set_interface_policy(TEST_IFINDEX, 0, FAMILY_IPV4, true)
        .unwrap();
    r.maps().reset_counters().unwrap();
    drops(&mut r, &f, "vrrp_drop_vrid");
}

#[test]
fn vrrp_and_carp_with_the_same_id_are_each_judged_by_their_own_policy() {
    let vip = [Ipv4Addr::new(192, 0, 2, 1)];
    let vrrp7 = advert_v3(
        [0x02, 0, 0, 0, 0, 0x0c],
        Ipv4Addr::new(192, 0, 2, 12),
        7,
        200,
        100,
        &vip,
    );
    let carp7 = ucarp(R1_ALONE);

    // Only a VRRP group 7: ucarp's VHID 7 is someone else's, never a malformed VRRPv2
    // advertisement.
    let mut r = Responder::load();
    r.maps()
        .set_policy(vrrp_key(FAMILY_IPV4, 7), Policy::new(2, VRRP_SLOT))
        .unwrap();
    assert_eq!(r.run(&carp7).0, XDP_PASS);
    assert_eq!(moved(&r.counters()), [("carp_foreign", 1)]);

    // Only a CARP group 7: VRRP VRID 7 is someone else's.
    let mut r = carp_peer();
    assert_eq!(r.run(&vrrp7).0, XDP_PASS);
    assert_eq!(moved(&r.counters()), [("vrrp_foreign", 1)]);

    // Both: each goes to its own, and only VRRP's better master releases its slot.
    r.maps()
        .set_policy(vrrp_key(FAMILY_IPV4, 7), Policy::new(3, VRRP_SLOT))
        .unwrap();
    r.maps()
        .set_group(
            VRRP_SLOT,
            GroupState::owned_until(LEASE_FOREVER).yielding_above(100),
        )
        .unwrap();
    r.maps().reset_counters().unwrap();
    assert_eq!(r.run(&carp7).0, XDP_PASS);
    assert_eq!(r.run(&vrrp7).0, XDP_PASS);
    assert_eq!(
        moved(&r.counters()),
        [("vrrp_pass", 1), ("vrrp_yield", 1), ("carp_pass", 1)]
    );
    assert_eq!(r.maps().group(VRRP_SLOT).unwrap().owned, 0);
    carp_slot_untouched(&mut r);
}

#[test]
fn ttl_other_than_255_is_dropped() {
    let mut f = ucarp(R1_ALONE);
    f[14 + 8] = 254;
    fix_ip_checksum(&mut f);
    drops(&mut carp_peer(), &f, "carp_drop_ttl");
}

#[test]
fn type_other_than_advertisement_is_dropped() {
    let mut f = ucarp(R1_ALONE);
    f[MSG4] = 0x22;
    fix_carp_checksum(&mut f, MSG4);
    drops(&mut carp_peer(), &f, "carp_drop_type");
}

#[test]
fn a_corrupted_advertisement_fails_the_checksum() {
    let mut f = ucarp(R1_ALONE);
    // A bit of the counter, which only the checksum (and the HMAC) covers.
    f[MSG4 + 9] ^= 0x10;
    drops(&mut carp_peer(), &f, "carp_drop_checksum");
}

#[test]
fn a_message_of_another_length_is_dropped() {
    // Four more bytes than CARP's 36 with CARP's authlen: in neither CARP's nor VRRPv2's
    // layout, judged by the CARP group of its id.
    let mut f = ucarp(R1_ALONE);
    f.extend_from_slice(&[0; 4]);
    let tot = u16::from_be_bytes([f[16], f[17]]) + 4;
    f[16..18].copy_from_slice(&tot.to_be_bytes());
    fix_ip_checksum(&mut f);
    drops(&mut carp_peer(), &f, "carp_drop_length");
    // Claiming 36 bytes in a frame that ends early.
    let mut short = ucarp(R1_ALONE);
    short.truncate(short.len() - 4);
    drops(&mut carp_peer(), &short, "carp_drop_length");
}

#[test]
fn a_first_fragment_is_dropped_and_a_later_one_passes() {
    let mut f = ucarp(R1_ALONE);
    f[14 + 6] |= 0x20;
    fix_ip_checksum(&mut f);
    drops(&mut carp_peer(), &f, "carp_drop_fragment");
    let mut later = ucarp(R1_ALONE);
    later[14 + 7] = 8;
    fix_ip_checksum(&mut later);
    let mut r = carp_peer();
    assert_eq!(r.run(&later).0, XDP_PASS);
    assert_eq!(moved(&r.counters()), []);
}

#[test]
fn allowlist_drops_unlisted_sources_and_admits_listed_ones() {
    let mut r = carp_peer();
    r.maps()
        .set_policy(
            carp_key(FAMILY_IPV4, 7, 0),
            Policy {
                flags: Policy::carp(CARP_SLOT).flags | POLICY_F_ALLOWLIST,
                ..Policy::carp(CARP_SLOT)
            },
        )
        .unwrap();
    let f = ucarp(R1_ALONE);
    drops(&mut r, &f, "carp_drop_peer");
    // A VRRP allowlist entry for the same id and address does not count for CARP.
    let peer = PeerKey {
        ifindex: TEST_IFINDEX,
        vlan: 0,
        family: FAMILY_IPV4,
        vrid: 7,
        addr: v4_in_16([192, 0, 2, 11]),
    };
    r.maps().add_peer(peer).unwrap();
    r.maps().reset_counters().unwrap();
    drops(&mut r, &f, "carp_drop_peer");
    r.maps()
        .add_peer(PeerKey {
            family: FAMILY_IPV4 | FAMILY_F_CARP,
            ..peer
        })
        .unwrap();
    r.maps().reset_counters().unwrap();
    assert_eq!(r.run(&f).0, XDP_PASS);
    assert_eq!(moved(&r.counters()), [("carp_pass", 1)]);
}

#[test]
fn carp_over_ipv6_passes_and_is_checked_like_ipv4() {
    let mut r = carp_peer();
    let f = carp_v6(10, 255);
    assert_eq!(r.run(&f), (XDP_PASS, f.clone()));
    // Behind extension headers too.
    let ext = frames::with_ipv6_ext(&f, &[Ext::HopByHop, Ext::DestOptions]);
    assert_eq!(r.run(&ext), (XDP_PASS, ext.clone()));
    assert_eq!(moved(&r.counters()), [("carp_pass", 2)]);
    drops(&mut carp_peer(), &carp_v6(10, 64), "carp_drop_ttl");
    let frag = frames::with_ipv6_ext(
        &f,
        &[Ext::Fragment {
            offset: 0,
            more: true,
        }],
    );
    drops(&mut carp_peer(), &frag, "carp_drop_fragment");
    // Version 2 over IPv6 is CARP whatever its length (VRRPv2 has no IPv6).
    let mut long = f.clone();
    long.extend_from_slice(&[0; 4]);
    let plen = u16::from_be_bytes([long[18], long[19]]) + 4;
    long[18..20].copy_from_slice(&plen.to_be_bytes());
    drops(&mut carp_peer(), &long, "carp_drop_length");
    let mut authlen = f.clone();
    authlen[MSG6 + 3] = 6;
    fix_carp_checksum(&mut authlen, MSG6);
    drops(&mut carp_peer(), &authlen, "carp_drop_length");
    carp_slot_untouched(&mut r);
}

#[test]
fn carp_of_the_other_family_is_another_speakers() {
    // VHID 200 runs over IPv4 only here: an IPv6 advertisement for it is not ours.
    let mut f = carp_v6(10, 255);
    f[MSG6 + 1] = 200;
    fix_carp_checksum(&mut f, MSG6);
    let mut r = carp_peer();
    assert_eq!(r.run(&f).0, XDP_PASS);
    assert_eq!(moved(&r.counters()), [("carp_foreign", 1)]);
}

#[test]
fn scapy_reads_our_ipv6_carp_frame_and_agrees_on_its_checksum() {
    // An implementation of its own: scapy's CARP layer sums the 36 bytes alone.
    let f = carp_v6(10, 255);
    let out = crate::common::scapy(
        &f,
        "from scapy.contrib.carp import CARP\nc = CARP(raw(f[IPv6].payload))\n\
         sent = c.chksum\nc.chksum = None\n\
         print(c.version, c.type, c.vhid, c.advskew, c.authlen, c.advbase, \
         sent == CARP(raw(c)).chksum)",
    );
    assert_eq!(out, "2 1 7 10 7 1 True");
}
