//! Shared VIPs (active-active): the member group the requester's address picks answers,
//! from its own virtual MAC, and only where this node masters that group.

use vip_common::{
    GroupState, LEASE_FOREVER, VIP_F_VMAC, VipKey, VipValue, shared_member, shared_vip_flags,
};
use vip_tests::{
    frames,
    xdp::{Responder, TEST_IFINDEX, XDP_DROP, XDP_TX},
};

use crate::common::*;

const SHARED: [u8; 4] = [192, 0, 2, 50];
const SHARED6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50,
];
/// Slots of the member groups, in member order.
const SLOTS: [u32; 3] = [10, 11, 12];

fn vmac(i: usize) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x01, 0x21 + i as u8]
}

/// 192.0.2.50 and 2001:db8::50 shared by three groups (slots 10, 11, 12, VMACs
/// ..:21, ..:22, ..:23), as every member's `dataplane::entries::write` leaves them;
/// this node masters the groups in `owned`.
fn responder_sharing(owned: &[usize]) -> Responder {
    let mut r = Responder::load();
    let m = r.maps();
    for key in [
        VipKey::v4(TEST_IFINDEX, 0, SHARED),
        VipKey::v6(TEST_IFINDEX, 0, SHARED6),
    ] {
        m.add_vip(
            key,
            VipValue {
                slot: SLOTS[2],
                mac: vmac(2),
                flags: shared_vip_flags(3),
            },
        )
        .unwrap();
        for (i, slot) in SLOTS.iter().enumerate() {
            m.add_vip(
                key.shared_member(i as u8),
                VipValue {
                    slot: *slot,
                    mac: vmac(i),
                    flags: VIP_F_VMAC,
                },
            )
            .unwrap();
        }
    }
    for &i in owned {
        m.set_group(SLOTS[i], GroupState::owned_until(LEASE_FOREVER))
            .unwrap();
    }
    r
}

fn client(n: u8) -> [u8; 4] {
    [192, 0, 2, 100 + n]
}

fn client6(n: u8) -> [u8; 16] {
    let mut a = CLIENT_IP6;
    a[15] = 0x64 + n;
    a
}

/// The program's count of shared-VIP answers per member slot (`SHARED_ANSWERS`).
fn shared_answers(r: &mut Responder) -> [u64; 3] {
    SLOTS.map(|slot| r.maps().shared_answers(slot).expect("readable"))
}

/// Computed here from the address, independently of the program.
fn member_of(a: [u8; 4]) -> usize {
    (u32::from_be_bytes(a) % 3) as usize
}

#[test]
fn each_requester_gets_the_vmac_of_the_member_its_address_picks() {
    let mut r = responder_sharing(&[0, 1, 2]);
    let mut seen = [0u32; 3];
    for n in 0..30 {
        let (verdict, out) = r.run(&frames::arp_request(CLIENT_MAC, client(n), SHARED));
        assert_eq!(verdict, XDP_TX, "client {n}");
        let m = member_of(client(n));
        assert_eq!(m, shared_member(u32::from_be_bytes(client(n)), 3) as usize);
        assert_eq!(
            out,
            frames::arp_reply(vmac(m), SHARED, CLIENT_MAC, client(n))
        );
        seen[m] += 1;
    }
    // Consecutive addresses take the members in turn.
    assert_eq!(seen, [10, 10, 10]);
    assert_eq!(moved(&r.counters()), [("arp_reply", 30)]);
    // Each answer is also counted for the member group that gave it.
    assert_eq!(shared_answers(&mut r), [10, 10, 10]);
}

#[test]
fn a_router_answers_only_the_requesters_of_the_member_it_masters() {
    for owned in 0..3 {
        let mut r = responder_sharing(&[owned]);
        let (mut answered, mut dropped) = (0, 0);
        for n in 0..30 {
            let (verdict, out) = r.run(&frames::arp_request(CLIENT_MAC, client(n), SHARED));
            if member_of(client(n)) == owned {
                assert_eq!(verdict, XDP_TX, "client {n}");
                assert_eq!(
                    out,
                    frames::arp_reply(vmac(owned), SHARED, CLIENT_MAC, client(n))
                );
                answered += 1;
            } else {
                assert_eq!(verdict, XDP_DROP, "client {n}: not master of its member");
                dropped += 1;
            }
        }
        assert_eq!((answered, dropped), (10, 20));
        assert_eq!(
            moved(&r.counters()),
            [("arp_reply", 10), ("vip_not_owned", 20)]
        );
        let mut want = [0; 3];
        want[owned] = 10;
        assert_eq!(
            shared_answers(&mut r),
            want,
            "drops are not counted as answers"
        );
    }
}

#[test]
fn a_member_taken_over_is_answered_from_its_own_vmac_by_the_new_master() {
    // The survivor masters members 0 and 1: member 1's clients keep member 1's MAC.
    let mut r = responder_sharing(&[0, 1]);
    for n in 0..9 {
        let (verdict, out) = r.run(&frames::arp_request(CLIENT_MAC, client(n), SHARED));
        let m = member_of(client(n));
        if m == 2 {
            assert_eq!(verdict, XDP_DROP);
        } else {
            assert_eq!(verdict, XDP_TX);
            assert_eq!(
                out,
                frames::arp_reply(vmac(m), SHARED, CLIENT_MAC, client(n))
            );
        }
    }
}

#[test]
fn a_member_without_an_entry_is_not_answered_and_nothing_else_is_used() {
    let mut r = responder_sharing(&[0, 1, 2]);
    let key = VipKey::v4(TEST_IFINDEX, 0, SHARED);
    r.maps().remove_vip(&key.shared_member(1)).unwrap();
    let (mut tx, mut drop) = (0, 0);
    for n in 0..6 {
        let (verdict, _) = r.run(&frames::arp_request(CLIENT_MAC, client(n), SHARED));
        match (member_of(client(n)), verdict) {
            (1, XDP_DROP) => drop += 1,
            (m, XDP_TX) if m != 1 => tx += 1,
            (m, v) => panic!("client {n} (member {m}): verdict {v}"),
        }
    }
    assert_eq!((tx, drop), (4, 2));
    assert_eq!(
        moved(&r.counters()),
        [("arp_reply", 4), ("vip_not_owned", 2)]
    );
}

#[test]
fn solicitations_pick_the_member_from_the_source_address_low_bits() {
    for owned in 0..3 {
        let mut r = responder_sharing(&[owned]);
        for n in 0..9u8 {
            let src = client6(n);
            let m = (u32::from_be_bytes([src[12], src[13], src[14], src[15]]) % 3) as usize;
            let (verdict, out) = r.run(&frames::neighbor_solicitation(CLIENT_MAC, src, SHARED6));
            if m == owned {
                assert_eq!(verdict, XDP_TX, "client {n}");
                // The target link-layer address option carries the member's VMAC.
                let tlla = &out[out.len() - 6..];
                assert_eq!(tlla, vmac(m), "client {n}");
                assert_eq!(&out[6..12], vmac(m), "Ethernet source, client {n}");
            } else {
                assert_eq!(verdict, XDP_DROP, "client {n}");
            }
        }
        let mut want = [0; 3];
        want[owned] = 3;
        assert_eq!(shared_answers(&mut r), want, "NAs counted for their member");
    }
}

#[test]
fn an_ordinary_vip_beside_a_shared_one_is_answered_as_before() {
    let mut r = responder_sharing(&[]);
    r.maps()
        .add_vip(VipKey::v4(TEST_IFINDEX, 0, VIP), vip_value(ROUTER_MAC))
        .unwrap();
    r.maps()
        .set_group(SLOT, GroupState::owned_until(LEASE_FOREVER))
        .unwrap();
    let (verdict, out) = r.run(&frames::arp_request(CLIENT_MAC, CLIENT_IP, VIP));
    assert_eq!(verdict, XDP_TX);
    assert_eq!(
        out,
        frames::arp_reply(ROUTER_MAC, VIP, CLIENT_MAC, CLIENT_IP)
    );
    assert_eq!(
        r.maps().shared_answers(SLOT).unwrap(),
        0,
        "an ordinary VIP's answer is no shared answer"
    );
}
