use vip_common::{GroupState, LEASE_FOREVER, VmacKey, VmacValue, wire::vmac_v4};
use vip_tests::{
    frames,
    xdp::{Responder, TEST_IFINDEX, XDP_PASS},
};

use crate::common::*;

const IF_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x01];

fn to_vmac() -> Vec<u8> {
    let mut f = frames::ethernet(vmac_v4(0x33), CLIENT_MAC, 0x0800);
    f.extend_from_slice(&[0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&CLIENT_IP);
    f.extend_from_slice(&VIP);
    f
}

fn with_vmac(owned: bool) -> Responder {
    let mut r = Responder::load();
    let m = r.maps();
    m.add_vmac(
        VmacKey {
            ifindex: TEST_IFINDEX,
            vlan: 0,
            mac: vmac_v4(0x33),
        },
        VmacValue {
            slot: SLOT,
            if_mac: IF_MAC,
            _pad: [0; 2],
        },
    )
    .unwrap();
    if owned {
        m.set_group(SLOT, GroupState::owned_until(LEASE_FOREVER))
            .unwrap();
    }
    r
}

#[test]
fn frame_to_the_vmac_of_an_owned_group_is_readdressed_to_the_interface() {
    let mut r = with_vmac(true);
    let (verdict, out) = r.run(&to_vmac());
    assert_eq!(verdict, XDP_PASS);
    let mut expected = to_vmac();
    expected[..6].copy_from_slice(&IF_MAC);
    assert_eq!(out, expected);
    assert_eq!(moved(&r.counters()), [("vmac_accept", 1)]);
}

#[test]
fn frame_to_the_vmac_of_a_group_not_owned_is_left_for_the_kernel_to_ignore() {
    let mut r = with_vmac(false);
    assert_eq!(r.run(&to_vmac()), (XDP_PASS, to_vmac()));
    assert_eq!(moved(&r.counters()), [("vmac_not_owned", 1)]);
}

#[test]
fn frame_to_an_unconfigured_vmac_passes_untouched() {
    let mut r = Responder::load();
    assert_eq!(r.run(&to_vmac()), (XDP_PASS, to_vmac()));
    assert!(moved(&r.counters()).is_empty());
}
