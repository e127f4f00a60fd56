use vip_common::{GroupState, HostMacKey, LEASE_FOREVER, VmacKey, VmacValue, wire::vmac_v4};
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

// The tc ingress classifier beside the responder (`vip-ebpf/src/vmac.rs`, `to_host`). A
// test run classifies the skb against the loopback device, whose MAC is all zeros: a
// frame to IF_MAC arrives as "another host", as a veth classifies a frame to a VMAC
// before XDP readdresses it. The counter moves only once the kernel took the new type.

const TC_ACT_UNSPEC: i32 = -1;

fn host_mac(r: &mut Responder, ifindex: u32, mac: [u8; 6]) {
    r.maps()
        .add_host_mac(HostMacKey {
            ifindex,
            mac,
            _pad: [0; 2],
        })
        .unwrap();
}

fn to(dst: [u8; 6]) -> Vec<u8> {
    let mut f = to_vmac();
    f[..6].copy_from_slice(&dst);
    f
}

#[test]
fn a_readdressed_frame_still_for_another_host_becomes_the_hosts() {
    let mut r = with_vmac(true);
    host_mac(&mut r, TEST_IFINDEX, IF_MAC);
    let (verdict, readdressed) = r.run(&to_vmac());
    assert_eq!((verdict, &readdressed[..6]), (XDP_PASS, &IF_MAC[..]));
    assert_eq!(r.run_tc(&readdressed, None), Ok(TC_ACT_UNSPEC));
    assert_eq!(
        moved(&r.counters()),
        [("vmac_accept", 1), ("vmac_to_host", 1)]
    );
}

#[test]
fn a_frame_for_another_station_stays_another_hosts() {
    // A promiscuous or bridged port sees it: handing it to the host would let IP take
    // (or forward) a stranger's traffic.
    let mut r = Responder::load();
    host_mac(&mut r, TEST_IFINDEX, IF_MAC);
    assert_eq!(r.run_tc(&to(OTHER_MAC), None), Ok(TC_ACT_UNSPEC));
    assert!(moved(&r.counters()).is_empty());
}

#[test]
fn a_host_mac_of_another_interface_changes_nothing_here() {
    let mut r = Responder::load();
    host_mac(&mut r, TEST_IFINDEX + 1000, IF_MAC);
    assert_eq!(r.run_tc(&to(IF_MAC), None), Ok(TC_ACT_UNSPEC));
    assert!(moved(&r.counters()).is_empty());
}

#[test]
fn a_frame_already_the_hosts_is_left_alone() {
    // The loopback's own MAC: the kernel classified it as the host's, as a NIC's
    // driver does for a frame XDP readdressed before the skb existed.
    let mut r = Responder::load();
    host_mac(&mut r, TEST_IFINDEX, [0; 6]);
    assert_eq!(r.run_tc(&to([0; 6]), None), Ok(TC_ACT_UNSPEC));
    assert!(moved(&r.counters()).is_empty());
}

#[test]
fn a_test_run_cannot_set_the_packet_type_through_its_context() {
    // Why the tests above let the kernel classify the frame: `__sk_buff`'s `len` and
    // `pkt_type` must be zero in a test run's context (the kernel refuses with EINVAL).
    // With the context all zeros otherwise accepted, only the packet type differs.
    let mut r = Responder::load();
    let mut ctx = vec![0u8; 192];
    assert_eq!(r.run_tc(&to(IF_MAC), Some(&ctx)), Ok(TC_ACT_UNSPEC));
    ctx[4..8].copy_from_slice(&vip_common::wire::PACKET_OTHERHOST.to_ne_bytes());
    let refused = r.run_tc(&to(IF_MAC), Some(&ctx)).unwrap_err();
    assert!(refused.contains("Invalid argument"), "{refused}");
}

#[test]
fn the_daemons_writer_adds_the_host_mac_with_the_vmac_and_prune_takes_it_away() {
    use vipd::{
        dataplane::entries::{self, Devices, InUse, Lowers},
        vrrp::{
            Family, Version,
            instance::{Identity, Instance},
        },
    };
    let mut inst = Instance::new(
        "gw",
        Identity::new("test0", 0x33, Family::Ipv4, Version::V3),
    )
    .with_vip(std::net::Ipv4Addr::from(VIP).into());
    inst.vmac = true;
    let devs = Devices::from([("test0".to_owned(), (TEST_IFINDEX, IF_MAC))]);
    let mut r = Responder::load();
    entries::write(
        r.maps(),
        TEST_IFINDEX,
        IF_MAC,
        &devs,
        SLOT,
        &inst,
        &Lowers::new(),
    )
    .expect("the daemon's writer writes the entries");
    r.maps()
        .set_group(SLOT, GroupState::owned_until(LEASE_FOREVER))
        .unwrap();
    let host = HostMacKey {
        ifindex: TEST_IFINDEX,
        mac: IF_MAC,
        _pad: [0; 2],
    };
    assert_eq!(r.maps().host_macs().unwrap(), [host]);
    let (_, readdressed) = r.run(&to_vmac());
    assert_eq!(r.run_tc(&readdressed, None), Ok(TC_ACT_UNSPEC));
    assert_eq!(
        moved(&r.counters()),
        [("vmac_accept", 1), ("vmac_to_host", 1)]
    );
    // Still in use: kept.
    let mut in_use = InUse::default();
    in_use.add(TEST_IFINDEX, &devs, SLOT, &inst, &Lowers::new());
    entries::prune(r.maps(), &in_use);
    assert_eq!(r.maps().host_macs().unwrap(), [host]);
    // The instance gone: the host MAC goes with its VMAC, and the classifier stops.
    entries::prune(r.maps(), &InUse::default());
    assert!(r.maps().host_macs().unwrap().is_empty());
    assert!(r.maps().vmacs().unwrap().is_empty());
    assert_eq!(r.run_tc(&readdressed, None), Ok(TC_ACT_UNSPEC));
    assert_eq!(
        moved(&r.counters()),
        [("vmac_accept", 1), ("vmac_to_host", 1)]
    );
}
