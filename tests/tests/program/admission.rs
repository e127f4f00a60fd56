//! One truth about ownership (docs/architecture.md): the XDP program acts on exactly the
//! advertisements the daemon's core admits. A table of instances (v3, v3 with an
//! allowlist, v2 without and with a password, IPv6 with an allowlist) and adverts (both
//! versions, right and wrong passwords, listed and unlisted sources, TTL 255 and not)
//! goes through both sides: `vrrp::admission::admit` on the decoded advert, and the
//! program, its entries written by the daemon's own writer (`dataplane::entries::write`)
//! from the same core instance, on the frame vipd itself would send. The program must
//! release an owned slot (the one thing it decides alone) exactly when the core admits,
//! and refuse for the same reason.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vip_common::{GroupState, LEASE_FOREVER};
use vip_tests::{
    wire::fix_ip_checksum,
    xdp::{Responder, TEST_IFINDEX, XDP_DROP, XDP_PASS},
};
use vipd::{
    dataplane::entries::{self, Devices},
    net::frames,
    vrrp::{
        Advert, Family, Interval, Version,
        admission::{Rejection, admit},
        instance::{Identity, Instance},
        packet::Auth,
    },
};

use crate::common::{ROUTER_MAC, moved};

const SLOT: u32 = 7;
const PEER_MAC: [u8; 6] = [0x02, 0x22, 0, 0, 0, 0x0b];
const LISTED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
const UNLISTED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
const LISTED6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x11);
const UNLISTED6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x99);
/// Our priority; every advert below carries 150, which beats it.
const OURS: u8 = 100;
const THEIRS: u8 = 150;

fn instance(name: &str, family: Family, version: Version) -> Instance {
    let vip: IpAddr = match family {
        Family::Ipv4 => "192.0.2.1".parse().unwrap(),
        Family::Ipv6 => "2001:db8::1".parse().unwrap(),
    };
    let mut i = Instance::new(name, Identity::new("test0", 51, family, version)).with_vip(vip);
    i.priority = OURS;
    i
}

fn password(p: &[u8]) -> Option<[u8; 8]> {
    let mut b = [0; 8];
    b[..p.len()].copy_from_slice(p);
    Some(b)
}

/// The instances of the table.
fn instances() -> Vec<Instance> {
    let v3 = instance("v3", Family::Ipv4, Version::V3);
    let mut allowlist = instance("v3-allowlist", Family::Ipv4, Version::V3);
    allowlist.admission.allowed_peers = vec![LISTED.into()];
    let v2 = instance("v2", Family::Ipv4, Version::V2);
    let mut v2_pass = instance("v2-password", Family::Ipv4, Version::V2);
    v2_pass.admission.auth_pass = password(b"secret1");
    let mut v6 = instance("v6-allowlist", Family::Ipv6, Version::V3);
    v6.admission.allowed_peers = vec![LISTED6.into()];
    vec![v3, allowlist, v2, v2_pass, v6]
}

/// The adverts of the table for a family: v3, then v2 without authentication, with the
/// right password and with a wrong one (IPv6 has v3 only).
fn adverts(family: Family) -> Vec<(&'static str, Advert)> {
    let interval = Interval::DEFAULT;
    match family {
        Family::Ipv4 => {
            let vips = vec!["192.0.2.1".parse().unwrap()];
            let v2 = |auth| Advert::v2(51, THEIRS, interval, vips.clone(), auth);
            vec![
                ("v3", Advert::v3(51, THEIRS, interval, vips.clone())),
                ("v2 no auth", v2(Auth::NONE)),
                ("v2 secret1", v2(Auth::simple_text(b"secret1").unwrap())),
                ("v2 wrong", v2(Auth::simple_text(b"wrong").unwrap())),
            ]
        }
        Family::Ipv6 => vec![(
            "v3",
            Advert::v3(51, THEIRS, interval, vec!["2001:db8::1".parse().unwrap()]),
        )],
    }
}

/// The frame vipd's own sender builds for `advert` from `src`, then its TTL / hop limit
/// set to `ttl`.
fn frame(advert: &Advert, src: IpAddr, ttl: u8) -> Vec<u8> {
    match src {
        IpAddr::V4(s) => {
            let dst = Ipv4Addr::new(224, 0, 0, 18);
            let bytes = advert.encode(src, dst.into()).expect("encodes");
            let mut f =
                frames::vrrp_v4(PEER_MAC, frames::ipv4_multicast_mac(dst), s, dst, 1, &bytes);
            f[14 + 8] = ttl;
            fix_ip_checksum(&mut f);
            f
        }
        IpAddr::V6(s) => {
            let dst: Ipv6Addr = "ff02::12".parse().unwrap();
            let bytes = advert.encode(src, dst.into()).expect("encodes");
            let mut f = frames::vrrp_v6(PEER_MAC, frames::ipv6_multicast_mac(dst), s, dst, &bytes);
            f[14 + 7] = ttl;
            f
        }
    }
}

/// What the program's counters say about a refused advert, as the core names refusals.
fn program_reason(counters: &[(&'static str, u64)]) -> Option<Rejection> {
    counters.iter().find_map(|(name, _)| match *name {
        "vrrp_drop_ttl" => Some(Rejection::Ttl),
        "vrrp_version_mismatch" => Some(Rejection::VersionMismatch),
        "vrrp_drop_auth" => Some(Rejection::Auth),
        "vrrp_drop_peer" => Some(Rejection::Peer),
        _ => None,
    })
}

#[test]
fn the_program_admits_exactly_what_the_core_admits() {
    let mut cases = 0;
    let mut admitted = 0;
    for inst in instances() {
        let mut r = Responder::load();
        let devs = Devices::from([("test0".to_owned(), (TEST_IFINDEX, ROUTER_MAC))]);
        entries::write(
            r.maps(),
            TEST_IFINDEX,
            ROUTER_MAC,
            &devs,
            SLOT,
            &inst,
            &entries::Lowers::new(),
        )
        .expect("the daemon's writer writes the entries");
        let family = inst.identity.family;
        let sources: [IpAddr; 2] = match family {
            Family::Ipv4 => [LISTED.into(), UNLISTED.into()],
            Family::Ipv6 => [LISTED6.into(), UNLISTED6.into()],
        };
        for (kind, advert) in adverts(family) {
            for src in sources {
                for ttl in [255, 254] {
                    let case = format!("{} <- {kind} from {src} ttl {ttl}", inst.name);
                    // The core decodes what the wire carries, as the daemon does.
                    let f = frame(&advert, src, ttl);
                    let dst: IpAddr = match family {
                        Family::Ipv4 => Ipv4Addr::new(224, 0, 0, 18).into(),
                        Family::Ipv6 => "ff02::12".parse().unwrap(),
                    };
                    let offset = match family {
                        Family::Ipv4 => 14 + 20,
                        Family::Ipv6 => 14 + 40,
                    };
                    let len = advert.encode(src, dst).unwrap().len();
                    let decoded = Advert::decode(&f[offset..offset + len], src, dst)
                        .unwrap_or_else(|e| panic!("{case}: the core decodes it: {e}"));
                    let core = admit(inst.identity.version, &inst.admission, src, ttl, &decoded);

                    let owned = GroupState::owned_until(LEASE_FOREVER).yielding_above(OURS);
                    r.maps().set_group(SLOT, owned).unwrap();
                    r.maps().reset_counters().unwrap();
                    let (verdict, _) = r.run(&f);
                    let counters = moved(&r.counters());
                    let released = r.maps().group(SLOT).unwrap().owned == 0;
                    cases += 1;
                    match core {
                        Ok(()) => {
                            admitted += 1;
                            assert!(released, "{case}: admitted, so the program releases");
                            assert_eq!(verdict, XDP_PASS, "{case}: and passes it on");
                            assert_eq!(counters, [("vrrp_pass", 1), ("vrrp_yield", 1)], "{case}");
                        }
                        Err(reason) => {
                            assert!(!released, "{case}: refused ({reason}), slot kept");
                            let program = program_reason(&counters);
                            // The one difference in order: the program checks the
                            // allowlist before it passes the other version on for the
                            // daemon to report, so an unlisted source never reaches it.
                            let unlisted = !inst.admission.allowed_peers.is_empty()
                                && !inst.admission.allowed_peers.contains(&src);
                            if reason == Rejection::VersionMismatch && unlisted && ttl == 255 {
                                assert_eq!(program, Some(Rejection::Peer), "{case}");
                            } else {
                                assert_eq!(program, Some(reason), "{case}: {counters:?}");
                            }
                            let expected = if program == Some(Rejection::VersionMismatch) {
                                XDP_PASS
                            } else {
                                XDP_DROP
                            };
                            assert_eq!(verdict, expected, "{case}");
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 4 * 4 * 2 * 2 + 2 * 2, "every combination ran");
    // At TTL 255 only: v3 from both sources, the allowlist's listed one, v2 without
    // authentication from both, v2's right password from both, IPv6's listed source.
    assert_eq!(admitted, 2 + 1 + 2 + 2 + 1, "admitted cases");
}
