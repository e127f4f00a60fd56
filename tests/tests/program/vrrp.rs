use std::net::Ipv4Addr;

use vip_common::{
    FAMILY_IPV4, FAMILY_IPV6, GroupState, LEASE_FOREVER, POLICY_F_ALLOWLIST, PeerKey, Policy,
    PolicyKey, Release, v4_in_16,
};
use vip_tests::{
    frames::{self, Ext},
    wire::advert_v3,
    xdp::{Responder, TEST_IFINDEX, XDP_DROP, XDP_PASS},
};

use crate::common::{KEEPALIVED_V2_PASSWORD, moved, scapy};

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
        flags,
        ..Policy::new(version, 0)
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
const V52: &str = "keepalived-2.2.7_vrrpv2_ipv4_vrid52_prio150";
const V53: &str = "keepalived-2.2.7_vrrpv3_ipv6_vrid53_prio150";
/// Offset of the VRRP header in an untagged IPv4 frame without options.
const VRRP4: usize = 34;
/// Offset of the VRRP header in an untagged IPv6 frame without extension headers.
const VRRP6: usize = 54;
/// The keepalived router that sent the priority-150 vectors.
const KEEPALIVED_150: [u8; 4] = [192, 0, 2, 11];
/// Its link-local address, the source of its IPv6 adverts.
const KEEPALIVED_150_LL: [u8; 16] = [
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x68, 0xb3, 0x99, 0xff, 0xfe, 0xa4, 0xa8, 0xbf,
];

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

/// The other VRRP version for a configured VRID (keepalived left at its default v2, say)
/// goes to the daemon, which reports it per instance, counted, untouched, and never
/// releases a slot, however high its priority; an allowlist still keeps unlisted sources
/// out.
#[test]
fn version_other_than_configured_passes_for_the_daemon_to_report_and_never_releases() {
    let mut r = keepalived_peer();
    r.maps()
        .set_policy(policy_key(FAMILY_IPV4, 51, 0), policy(2, 0))
        .unwrap();
    r.maps()
        .set_group(0, GroupState::owned_until(LEASE_FOREVER).yielding_above(1))
        .unwrap();
    let frame = vector(V51);
    let (verdict, out) = r.run(&frame);
    assert_eq!(verdict, XDP_PASS);
    assert_eq!(out, frame, "untouched");
    assert_eq!(moved(&r.counters()), [("vrrp_version_mismatch", 1)]);
    assert_eq!(
        owned_slot(&mut r).owned,
        1,
        "no release for the other version"
    );
    r.maps()
        .set_policy(
            policy_key(FAMILY_IPV4, 51, 0),
            policy(2, POLICY_F_ALLOWLIST),
        )
        .unwrap();
    r.maps().reset_counters().unwrap();
    assert_eq!(r.run(&frame).0, XDP_DROP);
    assert_eq!(moved(&r.counters()), [("vrrp_drop_peer", 1)]);
}

#[test]
fn type_other_than_advertisement_is_dropped() {
    let mut f = vector(V51);
    f[VRRP4] = 0x32;
    drops(&mut keepalived_peer(), &f, "vrrp_drop_type");
}

#[test]
fn vrid_not_configured_on_the_interface_passes_untouched_for_other_vrrp_speakers() {
    let mut r = Responder::load();
    for name in [V51, V52, V53] {
        let f = vector(name);
        assert_eq!(r.run(&f), (XDP_PASS, f), "{name}");
    }
    assert_eq!(moved(&r.counters()), [("vrrp_foreign", 3)]);
}

#[test]
fn foreign_vrrp_gets_no_verdict_on_ttl_version_or_checksum() {
    let mut r = keepalived_peer();
    // VRID 99 is nobody's here; every other check would fail too.
    let mut f = vector(V51);
    f[VRRP4 + 1] = 99;
    f[14 + 8] = 1; // TTL
    f[VRRP4] = 0x41; // version 4
    assert_eq!(r.run(&f), (XDP_PASS, f));
    assert_eq!(moved(&r.counters()), [("vrrp_foreign", 1)]);
}

#[test]
fn vrid_not_configured_is_dropped_where_the_interface_drops_foreign_vrrp() {
    let mut r = keepalived_peer();
    r.maps()
        .set_interface_policy(TEST_IFINDEX, 0, FAMILY_IPV4, true)
        .unwrap();
    let mut f = vector(V51);
    f[VRRP4 + 1] = 99;
    drops(&mut r, &f, "vrrp_drop_vrid");
    // The interface's own VRIDs are judged as before.
    assert_eq!(r.run(&vector(V51)).0, XDP_PASS);
    // The entry is per family: IPv6 VRRP for an unknown VRID still passes.
    let mut f6 = vector(V53);
    f6[VRRP6 + 1] = 99;
    assert_eq!(r.run(&f6), (XDP_PASS, f6.clone()));
    // And it can be taken back.
    r.maps()
        .set_interface_policy(TEST_IFINDEX, 0, FAMILY_IPV4, false)
        .unwrap();
    assert_eq!(r.run(&f), (XDP_PASS, f));
    assert_eq!(
        moved(&r.counters()),
        [("vrrp_pass", 1), ("vrrp_drop_vrid", 1), ("vrrp_foreign", 2)]
    );
}

#[test]
fn vrid_0_is_never_mistaken_for_the_interface_entry() {
    let mut r = keepalived_peer();
    let mut f = vector(V51);
    f[VRRP4 + 1] = 0;
    assert_eq!(r.run(&f), (XDP_PASS, f.clone()));
    r.maps()
        .set_interface_policy(TEST_IFINDEX, 0, FAMILY_IPV4, true)
        .unwrap();
    // Dropped as foreign, not judged against the entry's version 0.
    assert_eq!(r.run(&f).0, XDP_DROP);
    assert_eq!(
        moved(&r.counters()),
        [("vrrp_drop_vrid", 1), ("vrrp_foreign", 1)]
    );
}

#[test]
fn vrid_configured_on_another_vlan_is_foreign_there() {
    let mut r = keepalived_peer();
    let f = frames::vlan_tagged(&vector(V51), 42);
    assert_eq!(r.run(&f), (XDP_PASS, f.clone()));
    r.maps()
        .set_interface_policy(TEST_IFINDEX, 42, FAMILY_IPV4, true)
        .unwrap();
    assert_eq!(r.run(&f).0, XDP_DROP);
    assert_eq!(
        moved(&r.counters()),
        [("vrrp_drop_vrid", 1), ("vrrp_foreign", 1)]
    );
}

#[test]
fn vrrp_too_short_to_show_its_vrid_passes_unless_the_interface_drops_foreign_vrrp() {
    let mut r = keepalived_peer();
    let full = vector(V51);
    // The IPv4 header whole, then no VRRP byte, or only the version/type byte: nothing
    // says whose it is (the full header, with VRID 51, would be ours: see truncation).
    for len in [VRRP4, VRRP4 + 1] {
        let cut = &full[..len];
        assert_eq!(r.run(cut), (XDP_PASS, cut.to_vec()), "cut to {len}");
    }
    assert_eq!(moved(&r.counters()), [("vrrp_foreign", 2)]);
    r.maps()
        .set_interface_policy(TEST_IFINDEX, 0, FAMILY_IPV4, true)
        .unwrap();
    assert_eq!(r.run(&full[..VRRP4]).0, XDP_DROP);
    assert_eq!(r.counters().vrrp_drop_vrid, 1);
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
fn first_fragment_of_our_vrrp_is_dropped() {
    // Counted on its own now: it used to be a length drop.
    let mut f = vector(V51);
    f[14 + 6] = 0x20; // more fragments
    drops(&mut keepalived_peer(), &f, "vrrp_drop_fragment");
}

#[test]
fn a_later_ipv4_fragment_passes_untouched() {
    // Its payload is not a VRRP header: nothing to attribute it by. Its first fragment
    // decides whether it is ever reassembled.
    let mut r = keepalived_peer();
    let mut f = vector(V51);
    f[14 + 6..14 + 8].copy_from_slice(&[0x00, 0x03]); // offset 24 bytes
    assert_eq!(r.run(&f), (XDP_PASS, f));
    assert!(moved(&r.counters()).is_empty());
}

#[test]
fn corrupted_advert_fails_the_checksum() {
    // A bit of the first virtual address, which only the checksum covers (a v2 advert's
    // last bytes are its password, which the authentication check reads first).
    for (name, vrrp) in [(V51, VRRP4), (V53, VRRP6), (V52, VRRP4)] {
        let mut f = vector(name);
        f[vrrp + 8] ^= 0x40;
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

fn owned_slot(r: &mut Responder) -> GroupState {
    r.maps().group(0).unwrap()
}

fn release(r: &mut Responder) -> Release {
    r.maps().release(0).unwrap()
}

/// The clock the program stamps releases with.
fn coarse_now() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC_COARSE).unwrap();
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// Checks the release record against the advert that made it, stamped between `before`
/// and `after`.
fn assert_release(got: Release, count: u64, (before, after): (u64, u64), expected: Release) {
    assert!(
        (before..=after).contains(&got.at_ns),
        "released at {} outside [{before}, {after}]",
        got.at_ns
    );
    assert_eq!(
        got,
        Release {
            count,
            at_ns: got.at_ns,
            ..expected
        }
    );
}

/// What a release by keepalived's priority-150 VRID 51 advert records.
fn released_by_v51() -> Release {
    Release {
        src: v4_in_16(KEEPALIVED_150),
        family: FAMILY_IPV4,
        vrid: 51,
        priority: 150,
        version: 3,
        interval_centis: 100,
        ..Release::default()
    }
}

#[test]
fn a_better_masters_advert_releases_an_owned_slot_in_xdp_and_records_it() {
    let mut r = keepalived_peer();
    // Our priority 100 against keepalived's 150 for VRID 51 (slot 0).
    r.maps()
        .set_group(
            0,
            GroupState::owned_until(LEASE_FOREVER).yielding_above(200),
        )
        .unwrap();
    assert_eq!(r.run(&vector(V51)).0, XDP_PASS);
    assert_eq!(owned_slot(&mut r).owned, 1, "150 does not beat 200");
    assert_eq!(release(&mut r), Release::default(), "nothing released");
    for count in 1..=2 {
        r.maps()
            .set_group(
                0,
                GroupState::owned_until(LEASE_FOREVER).yielding_above(100),
            )
            .unwrap();
        let before = coarse_now();
        assert_eq!(
            r.run(&vector(V51)).0,
            XDP_PASS,
            "still passed to the daemon"
        );
        let after = coarse_now();
        assert_eq!(
            owned_slot(&mut r).owned,
            0,
            "150 beats 100: released at once"
        );
        assert_release(release(&mut r), count, (before, after), released_by_v51());
    }
    assert_eq!(moved(&r.counters()), [("vrrp_pass", 3), ("vrrp_yield", 2)]);
}

#[test]
fn during_a_handover_the_successors_first_advert_releases_the_slot_and_records_it() {
    let mut r = keepalived_peer();
    let resigning = GroupState::owned_until(LEASE_FOREVER)
        .yielding_above(200)
        .resigning();
    r.maps().set_group(0, resigning).unwrap();
    // Another router resigning (priority 0) is not a successor.
    assert_eq!(
        r.run(&vector("keepalived-2.2.7_vrrpv3_ipv4_vrid51_prio0"))
            .0,
        XDP_PASS
    );
    assert_eq!(owned_slot(&mut r).owned, 1);
    assert_eq!(release(&mut r).count, 0);
    let before = coarse_now();
    r.run(&vector(V51));
    let after = coarse_now();
    assert_eq!(owned_slot(&mut r).owned, 0);
    assert_release(release(&mut r), 1, (before, after), released_by_v51());
}

#[test]
fn a_release_by_an_ipv6_advert_records_its_link_local_source() {
    let mut r = keepalived_peer();
    r.maps()
        .set_group(0, GroupState::owned_until(LEASE_FOREVER).yielding_above(1))
        .unwrap();
    let before = coarse_now();
    assert_eq!(r.run(&vector(V53)).0, XDP_PASS);
    let after = coarse_now();
    assert_release(
        release(&mut r),
        1,
        (before, after),
        Release {
            src: KEEPALIVED_150_LL,
            family: FAMILY_IPV6,
            vrid: 53,
            priority: 150,
            version: 3,
            interval_centis: 50,
            ..Release::default()
        },
    );
}

#[test]
fn an_invalid_advert_never_releases_a_slot() {
    let mut r = keepalived_peer();
    r.maps()
        .set_group(0, GroupState::owned_until(LEASE_FOREVER).yielding_above(1))
        .unwrap();
    let mut f = vector(V51);
    let last = f.len() - 1;
    f[last] ^= 1;
    assert_eq!(r.run(&f).0, XDP_DROP);
    assert_eq!(owned_slot(&mut r).owned, 1);
    assert_eq!(release(&mut r), Release::default());
}

/// Recomputes a v2 advert's checksum (over the VRRP message alone) after an edit.
fn fix_v2_checksum(f: &mut [u8]) {
    f[VRRP4 + 6..VRRP4 + 8].copy_from_slice(&[0, 0]);
    let c = frames::inet_checksum(&[&f[VRRP4..]]);
    f[VRRP4 + 6..VRRP4 + 8].copy_from_slice(&c.to_be_bytes());
}

/// keepalived's v2 advert for VRID 52 with another authentication type and data, its
/// checksum correct again: only the authentication can fail it.
fn v2_with_auth(auth_type: u8, data: &[u8; 8]) -> Vec<u8> {
    let mut f = vector(V52);
    f[VRRP4 + 4] = auth_type;
    let n = f.len();
    f[n - 8..].copy_from_slice(data);
    fix_v2_checksum(&mut f);
    f
}

fn v2_peer(password: Option<&[u8]>) -> Responder {
    let mut r = keepalived_peer();
    let p = match password {
        Some(p) => Policy::new(2, 0).with_password(p).unwrap(),
        None => Policy::new(2, 0),
    };
    r.maps()
        .set_policy(policy_key(FAMILY_IPV4, 52, 0), p)
        .unwrap();
    r
}

#[test]
fn v2_advert_with_the_configured_password_passes() {
    let mut r = v2_peer(Some(KEEPALIVED_V2_PASSWORD));
    let f = vector(V52);
    assert_eq!(&f[f.len() - 8..], b"secret1\0", "the vector's password");
    assert_eq!(r.run(&f), (XDP_PASS, f));
    assert_eq!(moved(&r.counters()), [("vrrp_pass", 1)]);
}

#[test]
fn v2_advert_with_another_password_is_dropped() {
    // A different password, and the right one with a byte after its NUL padding: the
    // whole 8-byte field must match.
    for data in [b"secret2\0", b"secret1X", b"secret12"] {
        let mut r = v2_peer(Some(KEEPALIVED_V2_PASSWORD));
        drops(&mut r, &v2_with_auth(1, data), "vrrp_drop_auth");
    }
}

#[test]
fn v2_advert_with_a_password_where_none_is_configured_is_dropped() {
    drops(&mut v2_peer(None), &vector(V52), "vrrp_drop_auth");
}

#[test]
fn v2_advert_without_authentication_where_a_password_is_configured_is_dropped() {
    let f = v2_with_auth(0, &[0; 8]);
    drops(
        &mut v2_peer(Some(KEEPALIVED_V2_PASSWORD)),
        &f,
        "vrrp_drop_auth",
    );
}

#[test]
fn v2_advert_without_authentication_passes_whatever_its_data_where_none_is_configured() {
    // RFC 3768 §5.3.6: the authentication data is ignored on receipt.
    let mut r = v2_peer(None);
    for data in [&[0; 8], b"ignored!"] {
        let f = v2_with_auth(0, data);
        assert_eq!(r.run(&f), (XDP_PASS, f));
    }
    assert_eq!(moved(&r.counters()), [("vrrp_pass", 2)]);
}

#[test]
fn v2_ip_ah_authentication_is_dropped_either_way() {
    for password in [None, Some(KEEPALIVED_V2_PASSWORD)] {
        let f = v2_with_auth(2, b"secret1\0");
        drops(&mut v2_peer(password), &f, "vrrp_drop_auth");
    }
}

#[test]
fn a_wrong_password_never_releases_a_slot_and_the_right_one_does() {
    let mut r = v2_peer(Some(KEEPALIVED_V2_PASSWORD));
    r.maps()
        .set_group(
            0,
            GroupState::owned_until(LEASE_FOREVER).yielding_above(100),
        )
        .unwrap();
    // Priority 150 beats our 100, but the password is wrong: the daemon would reject it,
    // so the program must not act on it either.
    assert_eq!(r.run(&v2_with_auth(1, b"secret2\0")).0, XDP_DROP);
    assert_eq!(owned_slot(&mut r).owned, 1);
    assert_eq!(release(&mut r), Release::default());
    let before = coarse_now();
    assert_eq!(r.run(&vector(V52)).0, XDP_PASS);
    let after = coarse_now();
    assert_eq!(owned_slot(&mut r).owned, 0);
    assert_release(
        release(&mut r),
        1,
        (before, after),
        Release {
            src: v4_in_16(KEEPALIVED_150),
            family: FAMILY_IPV4,
            vrid: 52,
            priority: 150,
            version: 2,
            interval_centis: 100,
            ..Release::default()
        },
    );
    assert_eq!(
        moved(&r.counters()),
        [("vrrp_pass", 1), ("vrrp_yield", 1), ("vrrp_drop_auth", 1)]
    );
}

fn v3_advert(interval_centis: u16, vips: &[Ipv4Addr]) -> Vec<u8> {
    advert_v3(
        [0x02, 0, 0, 0, 0, 0x0b],
        Ipv4Addr::from(KEEPALIVED_150),
        51,
        150,
        interval_centis,
        vips,
    )
}

#[test]
fn zero_interval_is_dropped_in_v3_over_ipv4_and_ipv6() {
    let mut r = keepalived_peer();
    let vip = [Ipv4Addr::new(192, 0, 2, 1)];
    // The same advert with a non-zero interval passes: only the interval differs.
    assert_eq!(r.run(&v3_advert(1, &vip)).0, XDP_PASS);
    assert_eq!(r.run(&v3_advert(0, &vip)).0, XDP_DROP);
    // IPv6: Max Adver Int zeroed, the 4 reserved bits kept, the checksum made right.
    let mut f = vector(V53);
    f[VRRP6 + 4] &= 0xf0;
    f[VRRP6 + 5] = 0;
    f[VRRP6 + 6..VRRP6 + 8].copy_from_slice(&[0, 0]);
    let src: [u8; 16] = f[22..38].try_into().unwrap();
    let dst: [u8; 16] = f[38..54].try_into().unwrap();
    let c = frames::ipv6_checksum(&src, &dst, 112, &f[VRRP6..]);
    f[VRRP6 + 6..VRRP6 + 8].copy_from_slice(&c.to_be_bytes());
    assert_eq!(r.run(&f).0, XDP_DROP);
    assert_eq!(
        moved(&r.counters()),
        [("vrrp_pass", 1), ("vrrp_drop_interval", 2)]
    );
}

#[test]
fn zero_interval_is_dropped_in_v2() {
    let mut f = vector(V52);
    f[VRRP4 + 5] = 0;
    fix_v2_checksum(&mut f);
    drops(&mut keepalived_peer(), &f, "vrrp_drop_interval");
}

#[test]
fn zero_address_count_is_dropped_on_its_own_count() {
    // Length and checksum agree with the empty address list: only the count is wrong.
    let f = v3_advert(100, &[]);
    assert_eq!(f[VRRP4 + 3], 0);
    drops(&mut keepalived_peer(), &f, "vrrp_drop_count");
}

/// Checks the VRRPv3 checksum of an IPv6 frame with scapy, over the upper-layer length
/// whatever extension headers precede it.
const CHECK_VRRP6: &str = "from scapy.layers.vrrp import VRRPv3\nv = f[VRRPv3]\n\
    sent = v.chksum\nv.chksum = 0\nprint(sent == in6_chksum(112, v, raw(v)), v.vrid)";

#[test]
fn ipv6_advert_behind_extension_headers_is_admitted() {
    let mut r = keepalived_peer();
    let chains: [&[Ext]; 4] = [
        &[Ext::HopByHop],
        &[Ext::DestOptions],
        &[Ext::Routing { segments_left: 0 }],
        &[
            Ext::HopByHop,
            Ext::DestOptions,
            Ext::Routing { segments_left: 0 },
        ],
    ];
    for chain in chains {
        let f = frames::with_ipv6_ext(&vector(V53), chain);
        assert_eq!(r.run(&f), (XDP_PASS, f.clone()), "{chain:?}");
    }
    let longest = frames::with_ipv6_ext(&vector(V53), chains[3]);
    assert_eq!(scapy(&longest, CHECK_VRRP6), "True 53");
    assert_eq!(moved(&r.counters()), [("vrrp_pass", 4)]);
}

#[test]
fn ipv6_advert_behind_extension_headers_is_judged_at_its_real_offset() {
    let mut r = keepalived_peer();
    let mut f = frames::with_ipv6_ext(&vector(V53), &[Ext::DestOptions]);
    let last = f.len() - 1;
    f[last] ^= 0x40;
    drops(&mut r, &f, "vrrp_drop_checksum");
}

#[test]
fn ipv6_advert_in_a_fragment_is_dropped() {
    let mut r = keepalived_peer();
    // An atomic fragment, a first fragment, and one behind a hop-by-hop header.
    for chain in [
        &[Ext::Fragment {
            offset: 0,
            more: false,
        }][..],
        &[Ext::Fragment {
            offset: 0,
            more: true,
        }],
        &[
            Ext::HopByHop,
            Ext::Fragment {
                offset: 0,
                more: true,
            },
        ],
    ] {
        let f = frames::with_ipv6_ext(&vector(V53), chain);
        assert_eq!(r.run(&f).0, XDP_DROP, "{chain:?}");
    }
    assert_eq!(moved(&r.counters()), [("vrrp_drop_fragment", 3)]);
}

#[test]
fn ipv6_vrrp_fragments_that_are_not_ours_or_not_first_pass_untouched() {
    let mut r = keepalived_peer();
    let later = frames::with_ipv6_ext(
        &vector(V53),
        &[Ext::Fragment {
            offset: 1,
            more: false,
        }],
    );
    assert_eq!(r.run(&later), (XDP_PASS, later.clone()));
    assert!(
        moved(&r.counters()).is_empty(),
        "a later fragment is not judged"
    );
    let mut foreign = vector(V53);
    foreign[VRRP6 + 1] = 99;
    let foreign = frames::with_ipv6_ext(
        &foreign,
        &[Ext::Fragment {
            offset: 0,
            more: true,
        }],
    );
    assert_eq!(r.run(&foreign), (XDP_PASS, foreign.clone()));
    assert_eq!(moved(&r.counters()), [("vrrp_foreign", 1)]);
}

#[test]
fn ipv6_advert_behind_nine_extension_headers_is_dropped_as_too_deep() {
    let mut r = keepalived_peer();
    let eight = frames::with_ipv6_ext(&vector(V53), &[Ext::DestOptions; 8]);
    assert_eq!(r.run(&eight).0, XDP_PASS, "eight are walked");
    let nine = frames::with_ipv6_ext(&vector(V53), &[Ext::DestOptions; 9]);
    assert_eq!(r.run(&nine).0, XDP_DROP);
    assert_eq!(
        moved(&r.counters()),
        [("vrrp_pass", 1), ("ipv6_ext_too_deep", 1)]
    );
}
