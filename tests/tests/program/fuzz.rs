//! Random and mutated frames through the responder. Whatever the bytes, the verdict never
//! contradicts the maps: a frame is only answered when a station asks for itself about a
//! VIP this node answers for, and the answer is for that VIP from its MAC, to the asker,
//! or when it is a whole, unfragmented BFD Echo packet of a configured neighbour from its
//! learned MAC to this interface's, sent back with only its Ethernet addresses swapped;
//! a passed frame is
//! untouched; only VRRP, ARP / NS for configured-but-not-answering VIPs or from a source
//! that must not be answered, and IPv6 chains too deep to see through are dropped; and no
//! CARP advertisement, however mangled, ever releases a slot.

use vip_common::{
    BFD_CONTROL_PORT, BFD_ECHO_PORT, BfdPeer, BfdPeerKey, FAMILY_IPV4, FAMILY_IPV6, GroupState,
    LEASE_FOREVER, Policy, PolicyKey, VipKey, VipValue, v4_in_16,
};
use vip_tests::{
    frames::{self, Ext},
    xdp::{Responder, TEST_IFINDEX, XDP_DROP, XDP_PASS, XDP_TX},
};

use crate::common::*;

const OWNED: u32 = 1;
const NOT_OWNED: u32 = 2;
/// The CARP groups' slot (VHIDs 7 and 200, as in the ucarp capture), owned in a state
/// that any admitted VRRP advertisement would release.
const CARP_SLOT: u32 = 3;
const OWNED_V4: [u8; 4] = [192, 0, 2, 1];
const UNOWNED_V4: [u8; 4] = [192, 0, 2, 2];
const OWNED_V6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const UNOWNED_V6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const OWNED_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
const UNOWNED_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 2];

/// xorshift64*: deterministic, so a failure replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn configured() -> Responder {
    let mut r = Responder::load();
    let m = r.maps();
    for vlan in [0, 42] {
        for (addr, slot, mac) in [
            (OWNED_V4, OWNED, OWNED_MAC),
            (UNOWNED_V4, NOT_OWNED, UNOWNED_MAC),
        ] {
            m.add_vip(
                VipKey::v4(TEST_IFINDEX, vlan, addr),
                VipValue {
                    slot,
                    mac,
                    flags: 0,
                },
            )
            .unwrap();
        }
        for (addr, slot, mac) in [
            (OWNED_V6, OWNED, OWNED_MAC),
            (UNOWNED_V6, NOT_OWNED, UNOWNED_MAC),
        ] {
            m.add_vip(
                VipKey::v6(TEST_IFINDEX, vlan, addr),
                VipValue {
                    slot,
                    mac,
                    flags: 0,
                },
            )
            .unwrap();
        }
    }
    m.set_group(OWNED, GroupState::owned_until(LEASE_FOREVER))
        .unwrap();
    for vlan in BFD_VLANS {
        for (family, addr) in [
            (FAMILY_IPV4, v4_in_16(CLIENT_IP)),
            (FAMILY_IPV6, CLIENT_IP6),
        ] {
            m.add_bfd_peer(
                BfdPeerKey {
                    ifindex: TEST_IFINDEX,
                    vlan,
                    family,
                    _pad: 0,
                    addr,
                },
                9,
                OWNED_MAC,
            )
            .unwrap();
        }
    }
    add_keepalived_policies(&mut r, &[0, 42], OWNED);
    for vlan in [0, 42] {
        for (family, vhid) in [(FAMILY_IPV4, 7), (FAMILY_IPV4, 200), (FAMILY_IPV6, 7)] {
            r.maps()
                .set_policy(
                    PolicyKey::carp(TEST_IFINDEX, vlan, family, vhid),
                    Policy::carp(CARP_SLOT),
                )
                .unwrap();
        }
    }
    r.maps()
        .set_group(
            CARP_SLOT,
            GroupState::owned_until(LEASE_FOREVER).resigning(),
        )
        .unwrap();
    // The neighbour's Control packets named our session: its MAC is learned.
    for vlan in BFD_VLANS {
        for f in control_naming_us() {
            let f = if vlan == 0 {
                f
            } else {
                frames::vlan_tagged(&f, vlan)
            };
            assert_eq!(r.run(&f).0, XDP_PASS);
        }
    }
    r
}

/// The neighbour's Control packets (IPv4, IPv6) naming this node's discriminator (9).
fn control_naming_us() -> [Vec<u8>; 2] {
    let mut c = [0x20; 24];
    c[3] = 24;
    c[8..12].copy_from_slice(&9u32.to_be_bytes());
    let c4 = frames::udp(&CLIENT_IP, &OWNED_V4, 49152, BFD_CONTROL_PORT, &c);
    let c6 = frames::udp(&CLIENT_IP6, &OWNED_V6, 49152, BFD_CONTROL_PORT, &c);
    [
        frames::ipv4(CLIENT_MAC, OWNED_MAC, CLIENT_IP, OWNED_V4, 17, 255, &c4),
        frames::ipv6(CLIENT_MAC, OWNED_MAC, CLIENT_IP6, OWNED_V6, 17, 255, &c6),
    ]
}

/// The BFD entries as the program sees them before a frame: (VLAN, family) → entry.
type Peers = Vec<(BfdPeerKey, BfdPeer)>;

/// VLANs the BFD neighbour (`CLIENT_IP`, `CLIENT_IP6`) is configured on.
const BFD_VLANS: [u16; 2] = [0, 42];

/// What a frame is, read independently of the program.
struct Parsed {
    ethertype: u16,
    l3: usize,
    src_mac: [u8; 6],
    /// VLAN ID of the tag, 0 when untagged.
    vlan: u16,
}

fn parse(f: &[u8]) -> Option<Parsed> {
    let src_mac = f.get(6..12)?.try_into().unwrap();
    let outer = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
    if outer == 0x8100 || outer == 0x88a8 {
        Some(Parsed {
            ethertype: u16::from_be_bytes([*f.get(16)?, *f.get(17)?]),
            l3: 18,
            src_mac,
            vlan: u16::from_be_bytes([*f.get(14)?, *f.get(15)?]) & 0x0fff,
        })
    } else {
        Some(Parsed {
            ethertype: outer,
            l3: 14,
            src_mac,
            vlan: 0,
        })
    }
}

fn is_unicast(mac: &[u8]) -> bool {
    mac[0] & 1 == 0
}

/// Where an IPv6 packet's upper layer is, by RFC 8200: at most eight hop-by-hop (first
/// only), routing (no segments left), fragment (first only) and destination options
/// headers.
enum Upper6 {
    At {
        proto: u8,
        off: usize,
        fragment: bool,
    },
    Opaque,
    TooDeep,
}

fn upper6(f: &[u8], l3: usize) -> Upper6 {
    let Some(&first) = f.get(l3 + 6) else {
        return Upper6::Opaque;
    };
    let (mut next, mut off, mut fragment) = (first, l3 + 40, false);
    let ext = |n: u8| matches!(n, 0 | 43 | 44 | 60);
    for i in 0..8 {
        if !ext(next) {
            break;
        }
        let Some(h) = f.get(off..off + 8) else {
            return Upper6::Opaque;
        };
        match next {
            0 if i != 0 => return Upper6::Opaque,
            44 if u16::from_be_bytes([h[2], h[3]]) >> 3 != 0 => return Upper6::Opaque,
            44 => {
                fragment = true;
                off += 8;
            }
            43 if h[3] != 0 => return Upper6::Opaque,
            _ => off += (h[1] as usize + 1) * 8,
        }
        next = h[0];
    }
    if ext(next) {
        return Upper6::TooDeep;
    }
    Upper6::At {
        proto: next,
        off,
        fragment,
    }
}

fn is_vrrp(f: &[u8], p: &Parsed) -> bool {
    match p.ethertype {
        0x0800 => f.get(p.l3).is_some_and(|b| b >> 4 == 4) && f.get(p.l3 + 9) == Some(&112),
        0x86dd => matches!(upper6(f, p.l3), Upper6::At { proto: 112, .. }),
        _ => false,
    }
}

/// Whether the frame is a BFD Echo packet the program may loop back (RFC 5881 §4): UDP to
/// port 3785 in a whole, unfragmented IP packet addressed from the configured neighbour
/// to itself, on a VLAN it is configured on, from the neighbour's learned MAC to the
/// interface's own.
fn loopable_echo(f: &[u8], p: &Parsed, peers: &Peers) -> bool {
    if !BFD_VLANS.contains(&p.vlan) || !is_unicast(&f[..6]) || !is_unicast(&p.src_mac) {
        return false;
    }
    let family = match p.ethertype {
        0x0800 => FAMILY_IPV4,
        _ => FAMILY_IPV6,
    };
    let Some((_, peer)) = peers
        .iter()
        .find(|(k, _)| k.vlan == p.vlan && k.family == family)
    else {
        return false;
    };
    if f[..6] != peer.own_mac || p.src_mac != peer.mac || peer.mac == [0; 6] {
        return false;
    }
    let ip = &f[p.l3..];
    // (UDP offset, bytes of IP payload from there on, source, destination)
    let (udp, payload, src, dst): (usize, usize, &[u8], &[u8]) = match p.ethertype {
        0x0800 => {
            let Some(h) = ip.get(..20) else {
                return false;
            };
            let ihl = (h[0] & 0x0f) as usize * 4;
            let tot = u16::from_be_bytes([h[2], h[3]]) as usize;
            let frag = u16::from_be_bytes([h[6], h[7]]);
            if h[0] >> 4 != 4 || ihl < 20 || h[9] != 17 || frag & 0x3fff != 0 {
                return false;
            }
            if tot < ihl || tot > ip.len() || &h[12..16] != CLIENT_IP.as_slice() {
                return false;
            }
            (p.l3 + ihl, tot - ihl, &h[12..16], &h[16..20])
        }
        0x86dd => {
            let Upper6::At {
                proto: 17,
                off,
                fragment: false,
            } = upper6(f, p.l3)
            else {
                return false;
            };
            let Some(h) = ip.get(..40) else {
                return false;
            };
            let end = p.l3 + 40 + u16::from_be_bytes([h[4], h[5]]) as usize;
            if end > f.len() || end < off || &h[8..24] != CLIENT_IP6.as_slice() {
                return false;
            }
            (off, end - off, &h[8..24], &h[24..40])
        }
        _ => return false,
    };
    let Some(u) = f.get(udp..udp + 8) else {
        return false;
    };
    let udp_len = u16::from_be_bytes([u[4], u[5]]) as usize;
    src == dst
        && u16::from_be_bytes([u[2], u[3]]) == BFD_ECHO_PORT
        && (8..=payload).contains(&udp_len)
}

/// A question this frame asks: an ARP request or an NS, for `target`.
struct Question {
    target: Vec<u8>,
    /// The asker may be answered: a unicast Ethernet source that every address the
    /// question gives for the asker agrees with, and not in a fragment.
    good_source: bool,
}

fn asked(f: &[u8], p: &Parsed) -> Option<Question> {
    match p.ethertype {
        0x0806 if f.len() >= p.l3 + 28 && f[p.l3 + 6..p.l3 + 8] == [0, 1] => Some(Question {
            target: f[p.l3 + 24..p.l3 + 28].to_vec(),
            good_source: is_unicast(&p.src_mac) && f[p.l3 + 8..p.l3 + 14] == p.src_mac,
        }),
        0x86dd => {
            let Upper6::At {
                proto: 58,
                off,
                fragment,
            } = upper6(f, p.l3)
            else {
                return None;
            };
            if f.len() < off + 24 || f[off] != 135 {
                return None;
            }
            // Every source link-layer option within the message must name the source.
            let payload = u16::from_be_bytes([f[p.l3 + 4], f[p.l3 + 5]]) as usize;
            let end = (p.l3 + 40 + payload).min(f.len());
            let mut o = off + 24;
            let mut options_agree = true;
            while let Some(h) = f.get(o..o + 8).filter(|_| o + 8 <= end) {
                if h[1] == 0 {
                    break;
                }
                if h[0] == 1 && (h[1] != 1 || h[2..8] != p.src_mac) {
                    options_agree = false;
                }
                o += h[1] as usize * 8;
            }
            Some(Question {
                target: f[off + 8..off + 24].to_vec(),
                good_source: is_unicast(&p.src_mac) && options_agree && !fragment,
            })
        }
        _ => None,
    }
}

fn check(input: &[u8], verdict: u32, out: &[u8], peers: &Peers) -> Result<(), String> {
    let p = parse(input);
    match verdict {
        XDP_PASS => {
            if out != input {
                return Err("passed frame was modified".into());
            }
        }
        XDP_DROP => {
            let Some(p) = p else {
                return Err("dropped a frame with no Ethernet header".into());
            };
            let q = asked(input, &p);
            let for_unowned = q
                .as_ref()
                .is_some_and(|q| q.target == UNOWNED_V4 || q.target == UNOWNED_V6);
            let bad_source_for_owned = q
                .as_ref()
                .is_some_and(|q| (q.target == OWNED_V4 || q.target == OWNED_V6) && !q.good_source);
            let too_deep = p.ethertype == 0x86dd
                && input.get(p.l3 + 7) == Some(&255)
                && matches!(upper6(input, p.l3), Upper6::TooDeep);
            if !is_vrrp(input, &p) && !for_unowned && !bad_source_for_owned && !too_deep {
                return Err("dropped something that is neither VRRP, a question for an \
                    unowned VIP, one from a source it must not answer, nor a chain too deep"
                    .into());
            }
        }
        XDP_TX => {
            let p = p.ok_or("answered a frame with no Ethernet header")?;
            if loopable_echo(input, &p, peers) {
                let mut looped = input.to_vec();
                looped[..6].copy_from_slice(&input[6..12]);
                looped[6..12].copy_from_slice(&input[..6]);
                if out != looped {
                    return Err("echo not looped back with only its MACs swapped".into());
                }
                return Ok(());
            }
            let q = asked(input, &p).ok_or("answered something that asked nothing")?;
            if q.target != OWNED_V4 && q.target != OWNED_V6 {
                return Err(format!("answered for {:02x?}, not an owned VIP", q.target));
            }
            if !q.good_source {
                return Err("answered a source it must not answer".into());
            }
            if out[6..12] != OWNED_MAC {
                return Err("answer not from the VIP's MAC".into());
            }
            let q = parse(out).ok_or("answer unparsable")?;
            match q.ethertype {
                0x0806 => {
                    if out.len() != q.l3 + 28 {
                        return Err(format!("ARP answer of {} bytes", out.len()));
                    }
                    let a = &out[q.l3..];
                    if a[6..8] != [0, 2] || a[8..14] != OWNED_MAC || a[14..18] != OWNED_V4 {
                        return Err("ARP answer is not an is-at for the owned VIP".into());
                    }
                    if out[..6] != input[6..12] || a[18..24] != input[6..12] {
                        return Err("ARP answer is not for the asker".into());
                    }
                }
                0x86dd => {
                    let ip = &out[q.l3..];
                    let na = &ip[40..];
                    let len = u16::from_be_bytes([ip[4], ip[5]]) as usize;
                    if ip[6] != 58 || len != 32 || out.len() != q.l3 + 72 {
                        return Err("NA is not a bare 32-byte ICMPv6 message".into());
                    }
                    if na[0] != 136
                        || na[8..24] != OWNED_V6
                        || na[26..32] != OWNED_MAC
                        || ip[8..24] != OWNED_V6
                    {
                        return Err("NA is not for the owned VIP".into());
                    }
                    let src: [u8; 16] = ip[8..24].try_into().unwrap();
                    let dst: [u8; 16] = ip[24..40].try_into().unwrap();
                    if frames::icmpv6_checksum(&src, &dst, &na[..len]) != 0 {
                        return Err("NA checksum wrong".into());
                    }
                }
                e => return Err(format!("answer has ethertype {e:#x}")),
            }
        }
        v => return Err(format!("verdict {v}")),
    }
    Ok(())
}

fn seeds() -> Vec<Vec<u8>> {
    let ns = frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, OWNED_V6);
    let frag = Ext::Fragment {
        offset: 0,
        more: true,
    };
    let mut s = vec![
        frames::arp_request(CLIENT_MAC, CLIENT_IP, OWNED_V4),
        frames::arp_request(CLIENT_MAC, CLIENT_IP, UNOWNED_V4),
        frames::neighbor_solicitation(CLIENT_MAC, [0; 16], OWNED_V6),
        frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, UNOWNED_V6),
        frames::garp(OTHER_MAC, OWNED_V4),
        frames::with_ipv6_ext(&ns, &[Ext::HopByHop, Ext::DestOptions]),
        frames::with_ipv6_ext(&ns, &[Ext::Routing { segments_left: 0 }, frag]),
        frames::with_ipv6_ext(&ns, &[Ext::DestOptions; 8]),
        ns,
    ];
    let mut padded = frames::arp_request(CLIENT_MAC, CLIENT_IP, OWNED_V4);
    padded.resize(60, 0);
    s.push(padded);
    // BFD from the neighbour: Echo packets (addressed back to it) and Control packets.
    let echo4 = frames::udp(
        &CLIENT_IP,
        &CLIENT_IP,
        49152,
        BFD_ECHO_PORT,
        b"vipd\x02\0\0\0\0\0\0\x07\0\0\0*nonce123",
    );
    let echo4 = frames::ipv4(CLIENT_MAC, OWNED_MAC, CLIENT_IP, CLIENT_IP, 17, 255, &echo4);
    let echo6 = frames::udp(
        &CLIENT_IP6,
        &CLIENT_IP6,
        49152,
        BFD_ECHO_PORT,
        b"vipd\x02\0\0\0\0\0\0\x07\0\0\0*nonce123",
    );
    let echo6 = frames::ipv6(
        CLIENT_MAC, OWNED_MAC, CLIENT_IP6, CLIENT_IP6, 17, 255, &echo6,
    );
    let control6 = frames::udp(&CLIENT_IP6, &OWNED_V6, 49152, BFD_CONTROL_PORT, &[0x20; 24]);
    let control6 = frames::ipv6(
        CLIENT_MAC, OWNED_MAC, CLIENT_IP6, OWNED_V6, 17, 255, &control6,
    );
    s.push(frames::with_ipv6_ext(
        &echo6,
        &[Ext::HopByHop, Ext::DestOptions],
    ));
    s.extend([echo4, echo6, control6]);
    s.extend(control_naming_us());
    for (name, f) in frames::keepalived_vectors() {
        if name.contains("_vrrpv3_ipv6") {
            s.push(frames::with_ipv6_ext(&f, &[Ext::DestOptions]));
        }
        s.push(f);
    }
    s.extend(
        frames::ucarp_vectors()
            .into_iter()
            .filter(|(n, _)| !n.contains("garp"))
            .map(|(_, f)| f),
    );
    let tagged: Vec<_> = s.iter().map(|f| frames::vlan_tagged(f, 42)).collect();
    s.extend(tagged);
    s
}

#[test]
fn random_and_mutated_frames_never_contradict_the_maps() {
    let mut r = configured();
    let seeds = seeds();
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let (mut passed, mut dropped, mut answered) = (0, 0, 0);
    for round in 0..100_000 {
        let frame: Vec<u8> = if round % 4 == 0 {
            // Pure noise, of any length an XDP test run accepts.
            let len = 14 + rng.below(200);
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let mut f = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(4) {
                match rng.below(4) {
                    0 | 1 => {
                        let i = rng.below(f.len());
                        f[i] = rng.next() as u8;
                    }
                    2 => {
                        let cut = 14 + rng.below(f.len() - 13);
                        f.truncate(cut);
                    }
                    _ => f.extend((0..rng.below(16)).map(|_| rng.next() as u8)),
                }
            }
            f
        };
        let peers = r.maps().bfd_peers().unwrap();
        let (verdict, out) = r.run(&frame);
        if let Err(why) = check(&frame, verdict, &out, &peers) {
            panic!("round {round}: {why}\ninput  {frame:02x?}\noutput {out:02x?}");
        }
        match verdict {
            XDP_PASS => passed += 1,
            XDP_DROP => dropped += 1,
            _ => answered += 1,
        }
    }
    println!("fuzz: {passed} passed, {dropped} dropped, {answered} answered");
    let carp = r.maps().group(CARP_SLOT).unwrap();
    assert_eq!(carp.owned, 1, "a CARP advertisement released its slot");
    assert_eq!(r.maps().release(CARP_SLOT).unwrap().count, 0);
    let c = r.counters();
    assert!(
        c.carp_pass > 100,
        "mutated CARP reached the daemon {} times",
        c.carp_pass
    );
    // The mutations must have exercised every verdict, or the test proves little.
    assert!(passed > 1000 && dropped > 1000 && answered > 100);
}
