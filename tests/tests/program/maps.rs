//! The dataplane API against real maps: one write moves every VIP, pins survive restarts,
//! foreign pins are refused, and bpftool sees field names.

use std::{net::Ipv6Addr, process::Command};

use vip_common::{
    FAMILY_IPV4, GroupState, LEASE_FOREVER, Policy, PolicyKey, VipKey, VmacKey, VmacValue, maps,
    wire::vmac_v4,
};
use vip_tests::{
    frames,
    xdp::{Responder, TEST_IFINDEX, XDP_DROP, XDP_TX},
};
use vipd::dataplane::{AttachMode, Dataplane, DataplaneError, ModePreference};

use crate::common::*;

const BIG_SLOT: u32 = 9;

/// 10,000 VIPs: 5,000 IPv4 (192.0.2.1–250 on VLANs 1–20) and 5,000 IPv6 in 2001:db8::/32.
fn ten_thousand() -> Vec<(VipKey, Vec<u8>)> {
    let mut v = Vec::with_capacity(10_000);
    for vlan in 1..=20u16 {
        for host in 1..=250u8 {
            let ip = [192, 0, 2, host];
            // The asker sits outside 192.0.2.0/24 so no request is its own gratuitous ARP.
            let asker = [198, 51, 100, 100];
            let req = frames::vlan_tagged(&frames::arp_request(CLIENT_MAC, asker, ip), vlan);
            v.push((VipKey::v4(TEST_IFINDEX, vlan, ip), req));
        }
    }
    for i in 0..5_000u32 {
        let ip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0x77, 0, 0, (i >> 16) as u16, i as u16).octets();
        let ns = frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, ip);
        v.push((VipKey::v6(TEST_IFINDEX, 0, ip), ns));
    }
    v
}

#[test]
fn one_slot_write_switches_ten_thousand_vips() {
    let mut r = Responder::load();
    let vips = ten_thousand();
    for (key, _) in &vips {
        r.maps()
            .add_vip(
                *key,
                vip_common::VipValue {
                    slot: BIG_SLOT,
                    mac: ROUTER_MAC,
                    flags: 0,
                },
            )
            .unwrap();
    }
    let answered = |r: &mut Responder| vips.iter().filter(|(_, f)| r.run(f).0 == XDP_TX).count();
    assert_eq!(answered(&mut r), 0);
    r.maps()
        .set_group_owned(BIG_SLOT, true, LEASE_FOREVER)
        .unwrap();
    assert_eq!(answered(&mut r), 10_000);
    r.maps().set_group_owned(BIG_SLOT, false, 0).unwrap();
    assert!(vips.iter().all(|(_, f)| r.run(f).0 == XDP_DROP));
    // The flips wrote nothing but the slot.
    assert_eq!(r.maps().vips().unwrap().len(), 10_000);
    let c = r.counters();
    assert_eq!((c.arp_reply, c.ns_reply), (5_000, 5_000));
    assert_eq!(c.vip_not_owned, 20_000);
}

#[test]
fn reopening_pinned_maps_keeps_vips_and_ownership() {
    let dir = std::path::PathBuf::from(format!("/sys/fs/bpf/vipd-reopen-{}", std::process::id()));
    let key = VipKey::v4(TEST_IFINDEX, 0, VIP);
    {
        let mut dp = Dataplane::open(&dir).unwrap();
        dp.maps_mut().add_vip(key, vip_value(ROUTER_MAC)).unwrap();
        dp.maps_mut()
            .set_group_owned(SLOT, true, LEASE_FOREVER)
            .unwrap();
    }
    let reopened = Dataplane::open(&dir).map(|mut dp| {
        let m = dp.maps_mut();
        (m.vips().unwrap(), m.group(SLOT).unwrap())
    });
    let _ = Dataplane::unpin_maps(&dir);
    let (vips, group) = reopened.unwrap();
    assert_eq!(vips, vec![(key, vip_value(ROUTER_MAC))]);
    assert_eq!(group, GroupState::owned_until(LEASE_FOREVER));
}

#[test]
fn a_foreign_map_in_the_pin_directory_is_refused_and_left_alone() {
    vip_tests::require_root();
    let dir = format!("/sys/fs/bpf/vipd-foreign-{}", std::process::id());
    std::fs::create_dir_all(&dir).unwrap();
    let foreign = format!("{dir}/{}", maps::VIPS);
    let made = Command::new("bpftool")
        .args([
            "map", "create", &foreign, "type", "hash", "key", "4", "value", "4",
        ])
        .args(["entries", "8", "name", "VIPS"])
        .status()
        .unwrap();
    assert!(made.success(), "bpftool map create");
    let result = Dataplane::open(std::path::Path::new(&dir));
    let still_there = std::path::Path::new(&foreign).exists();
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Err(DataplaneError::ForeignPin { path, what }) => {
            assert_eq!(path.to_str(), Some(foreign.as_str()));
            assert!(what.contains("key/value/max_entries 4/4/8"), "{what}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a foreign map was accepted"),
    }
    assert!(still_there, "vipd removed an object it does not own");
}

#[test]
fn bpftool_shows_the_field_names_of_every_map() {
    let mut r = responder(true);
    let m = r.maps();
    m.set_policy(
        PolicyKey {
            ifindex: TEST_IFINDEX,
            vlan: 0,
            family: FAMILY_IPV4,
            vrid: 51,
        },
        Policy::new(3, SLOT),
    )
    .unwrap();
    m.add_peer(vip_common::PeerKey {
        ifindex: TEST_IFINDEX,
        vlan: 0,
        family: FAMILY_IPV4,
        vrid: 51,
        addr: vip_common::v4_in_16([192, 0, 2, 12]),
    })
    .unwrap();
    m.add_vmac(
        VmacKey {
            ifindex: TEST_IFINDEX,
            vlan: 0,
            mac: vmac_v4(51),
        },
        VmacValue {
            slot: SLOT,
            if_mac: ROUTER_MAC,
            _pad: [0; 2],
        },
    )
    .unwrap();
    m.add_host_mac(vip_common::HostMacKey {
        ifindex: TEST_IFINDEX,
        mac: ROUTER_MAC,
        _pad: [0; 2],
    })
    .unwrap();
    // A conflict entry, written by the program itself.
    r.run(&frames::garp(OTHER_MAC, VIP));
    let expect: [(&str, &[&str]); 9] = [
        (
            maps::VIPS,
            &["ifindex", "vlan", "family", "addr", "slot", "mac", "flags"],
        ),
        (
            maps::GROUP_STATE,
            &["owned", "resigning", "priority", "lease_deadline_ns"],
        ),
        (maps::VRRP_POLICY, &["vrid", "version", "flags", "auth"]),
        (maps::PEERS, &["vrid", "addr"]),
        (maps::VMACS, &["mac", "if_mac"]),
        (maps::HOST_MACS, &["ifindex", "mac"]),
        (maps::CONFLICTS, &["last_seen_ns", "count"]),
        (
            maps::STATS,
            &[
                "arp_reply",
                "vrrp_drop_checksum",
                "conflict_seen",
                "vrrp_foreign",
            ],
        ),
        (
            maps::RELEASES,
            &[
                "count",
                "at_ns",
                "src",
                "family",
                "vrid",
                "priority",
                "version",
                "interval_centis",
            ],
        ),
    ];
    for (map, fields) in expect {
        let path = r.dir().join(map);
        let out = Command::new("bpftool")
            .args(["map", "dump", "pinned"])
            .arg(&path)
            .arg("-j")
            .output()
            .expect("bpftool runs (cargo xtask setup installs it)");
        assert!(out.status.success(), "bpftool map dump {}", path.display());
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let text = json.to_string();
        assert!(
            text.contains("\"formatted\""),
            "{map}: no BTF formatting: {text:.300}"
        );
        for f in fields {
            assert!(
                text.contains(&format!("\"{f}\"")),
                "{map} lacks field {f}: {text:.300}"
            );
        }
    }
}

/// A network namespace with a veth pair, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Self {
        let name = format!("vtp{}{tag}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(ok.success());
        let ns = Self(name);
        let ok = Command::new("ip")
            .args([
                "-n", &ns.0, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
            ])
            .status()
            .unwrap();
        assert!(ok.success());
        ns
    }

    /// Runs `f` on a thread inside the namespace.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        vip_tests::lab::in_netns(&self.0, f).expect("runs inside the namespace")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn xdp_prog_on(ns: &Netns, ifname: &str) -> Option<u64> {
    let out = Command::new("ip")
        .args(["-n", &ns.0, "-j", "link", "show", ifname])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["xdp"]["prog"]["id"].as_u64()
}

#[test]
fn attach_pins_a_link_that_outlives_the_process_and_restart_swaps_in_place() {
    vip_tests::require_root();
    let ns = Netns::new("att");
    let dir = std::path::PathBuf::from(format!("/sys/fs/bpf/vipd-attach-{}", std::process::id()));
    let first = ns.run(|| {
        let mut dp = Dataplane::open(&dir).unwrap();
        dp.attach("v0", ModePreference::Native).unwrap()
        // dp dropped here: only the pinned link keeps the program attached.
    });
    let id1 = xdp_prog_on(&ns, "v0");
    let second = ns.run(|| {
        let mut dp = Dataplane::open(&dir).unwrap();
        dp.attach("v0", ModePreference::Native).unwrap()
    });
    let id2 = xdp_prog_on(&ns, "v0");
    let listed = Dataplane::attached_interfaces(&dir).unwrap();
    let detached = ns.run(|| Dataplane::detach(&dir, "v0").unwrap());
    let id3 = xdp_prog_on(&ns, "v0");
    Dataplane::unpin_maps(&dir).unwrap();
    assert_eq!(first, AttachMode::Native);
    assert!(id1.is_some(), "program attached after the loader went away");
    assert_eq!(second, AttachMode::Replaced);
    assert!(
        id2.is_some() && id2 != id1,
        "restart swapped in a new program: {id1:?} -> {id2:?}"
    );
    assert_eq!(listed, vec!["v0".to_owned()]);
    assert!(detached);
    assert_eq!(id3, None, "detach removed the program");
    assert!(!dir.exists(), "unpin removed the directory");
}

/// The ids of the programs named `name` on `ifname`'s TCX ingress hook (bpftool 7.1,
/// Debian's, does not list TCX programs yet).
fn tc_progs_on(ns: &Netns, ifname: &str, name: &str) -> Vec<u32> {
    ns.run(|| {
        let (_, progs) =
            aya::programs::SchedClassifier::query_tcx(ifname, aya::programs::TcAttachType::Ingress)
                .expect("TCX query");
        progs
            .iter()
            .filter(|p| p.name_as_str() == Some(name))
            .map(|p| p.id())
            .collect()
    })
}

fn tc(ns: &Netns, args: &[&str]) -> String {
    let out = Command::new("tc")
        .args(["-n", &ns.0])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_tc_classifier_goes_with_the_responder_once_and_leaves_another_tools_qdisc_alone() {
    vip_tests::require_root();
    let ns = Netns::new("tcx");
    // Another tool's clsact qdisc with a filter of its own, there before vipd.
    tc(&ns, &["qdisc", "add", "dev", "v0", "clsact"]);
    tc(
        &ns,
        &[
            "filter", "add", "dev", "v0", "ingress", "prio", "7", "protocol", "all", "u32",
            "match", "u32", "0", "0", "flowid", "1:1",
        ],
    );
    let dir = std::path::PathBuf::from(format!("/sys/fs/bpf/vipd-tcx-{}", std::process::id()));
    let name = vip_common::programs::VMAC_TO_HOST;
    ns.run(|| {
        let mut dp = Dataplane::open(&dir).unwrap();
        dp.attach("v0", ModePreference::Native).unwrap()
    });
    let first = tc_progs_on(&ns, "v0", name);
    let pinned = dir.join("tc_v0").exists();

    // A restart: the pinned link gets the new program, no second copy.
    ns.run(|| {
        let mut dp = Dataplane::open(&dir).unwrap();
        dp.attach("v0", ModePreference::Native).unwrap()
    });
    let second = tc_progs_on(&ns, "v0", name);
    ns.run(|| Dataplane::detach(&dir, "v0").unwrap());
    let after = tc_progs_on(&ns, "v0", name);
    let qdiscs = tc(&ns, &["qdisc", "show", "dev", "v0"]);
    let filters = tc(&ns, &["filter", "show", "dev", "v0", "ingress"]);
    Dataplane::unpin_maps(&dir).unwrap();
    assert_eq!(first.len(), 1, "one classifier after attach: {first:?}");
    assert!(pinned, "its link is pinned as tc_v0");
    assert!(
        second.len() == 1 && second != first,
        "a restart swapped the program in place: {first:?} -> {second:?}"
    );
    assert!(after.is_empty(), "detach removed it: {after:?}");
    assert!(
        qdiscs.contains("clsact"),
        "the clsact qdisc stays: {qdiscs}"
    );
    assert!(
        filters.contains("pref 7"),
        "the other tool's filter stays: {filters}"
    );
}
