//! Fixtures shared by the program tests.

use vip_common::{
    FAMILY_IPV4, FAMILY_IPV6, GroupState, LEASE_FOREVER, Policy, PolicyKey, VipKey, VipValue,
};
use vip_tests::xdp::{Responder, TEST_IFINDEX};

pub const CLIENT_MAC: [u8; 6] = [0x02, 0xc1, 0, 0, 0, 0x64];
pub const CLIENT_IP: [u8; 4] = [192, 0, 2, 100];
pub const CLIENT_IP6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64,
];
pub const ROUTER_MAC: [u8; 6] = [0x02, 0x11, 0, 0, 0, 0x0b];
pub const OTHER_MAC: [u8; 6] = [0x02, 0x12, 0, 0, 0, 0x0c];
pub const VIP: [u8; 4] = [192, 0, 2, 1];
pub const VIP6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
];
pub const SLOT: u32 = 3;

pub fn vip_value(mac: [u8; 6]) -> VipValue {
    VipValue {
        slot: SLOT,
        mac,
        flags: 0,
    }
}

/// A responder with 192.0.2.1 and 2001:db8::1 configured in `SLOT` on the test ifindex
/// (untagged and on VLAN 42), owned with a lease that never lapses when `owned`.
pub fn responder(owned: bool) -> Responder {
    let mut r = Responder::load();
    let m = r.maps();
    for vlan in [0, 42] {
        m.add_vip(VipKey::v4(TEST_IFINDEX, vlan, VIP), vip_value(ROUTER_MAC))
            .unwrap();
        m.add_vip(VipKey::v6(TEST_IFINDEX, vlan, VIP6), vip_value(ROUTER_MAC))
            .unwrap();
    }
    if owned {
        m.set_group(SLOT, GroupState::owned_until(LEASE_FOREVER))
            .unwrap();
    }
    r
}

/// The only counters that moved, by name, as `(name, value)`.
pub fn moved(c: &vip_common::Counters) -> Vec<(&'static str, u64)> {
    vip_common::Counters::NAMES
        .iter()
        .copied()
        .zip(c.values())
        .filter(|(_, v)| *v != 0)
        .collect()
}

/// Runs a python3 + scapy snippet with the frame bound to `f` (an `Ether`); returns stdout.
/// scapy recomputes checksums independently of our code.
pub fn scapy(frame: &[u8], script: &str) -> String {
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let program = format!(
        "import logging\nlogging.getLogger('scapy').setLevel(logging.ERROR)\n\
         from scapy.all import *\nf = Ether(bytes.fromhex('{hex}'))\n{script}"
    );
    let out = // Debian's interpreter, where python3-scapy lives (not whatever python3 is first on PATH).
    std::process::Command::new("/usr/bin/python3")
        .args(["-c", &program])
        .output()
        .expect("python3 runs (cargo xtask setup installs python3-scapy)");
    assert!(
        out.status.success(),
        "scapy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The password keepalived's VRID 52 (VRRPv2) was configured with in the capture.
pub const KEEPALIVED_V2_PASSWORD: &[u8] = b"secret1";

/// The virtual routers of the keepalived capture (`tests/vectors`): VRID 51 v3, 52 v2
/// with its password, 53 v3 over IPv6 and 54 v3, on each of `vlans`, all in `slot`.
pub fn add_keepalived_policies(r: &mut Responder, vlans: &[u16], slot: u32) {
    for &vlan in vlans {
        for (family, vrid, version) in [
            (FAMILY_IPV4, 51, 3),
            (FAMILY_IPV4, 52, 2),
            (FAMILY_IPV6, 53, 3),
            (FAMILY_IPV4, 54, 3),
        ] {
            r.maps()
                .set_policy(
                    PolicyKey {
                        ifindex: TEST_IFINDEX,
                        vlan,
                        family,
                        vrid,
                    },
                    if version == 2 {
                        Policy::new(version, slot)
                            .with_password(KEEPALIVED_V2_PASSWORD)
                            .unwrap()
                    } else {
                        Policy::new(version, slot)
                    },
                )
                .unwrap();
        }
    }
}
