//! Random and mutated frames through the responder. Whatever the bytes, the verdict never
//! contradicts the maps: a frame is only answered when it asks for a VIP this node answers
//! for, and the answer is for that VIP from its MAC; a passed frame is untouched; only
//! VRRP and ARP / NS for configured-but-not-answering VIPs are dropped.

use vip_common::{GroupState, LEASE_FOREVER, VipKey, VipValue};
use vip_tests::{
    frames,
    xdp::{Responder, TEST_IFINDEX, XDP_DROP, XDP_PASS, XDP_TX},
};

use crate::common::*;

const OWNED: u32 = 1;
const NOT_OWNED: u32 = 2;
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
    add_keepalived_policies(&mut r, &[0, 42], OWNED);
    r
}

/// What a frame is, read independently of the program.
struct Parsed {
    ethertype: u16,
    l3: usize,
}

fn parse(f: &[u8]) -> Option<Parsed> {
    let outer = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
    if outer == 0x8100 || outer == 0x88a8 {
        Some(Parsed {
            ethertype: u16::from_be_bytes([*f.get(16)?, *f.get(17)?]),
            l3: 18,
        })
    } else {
        Some(Parsed {
            ethertype: outer,
            l3: 14,
        })
    }
}

fn is_vrrp(f: &[u8], p: &Parsed) -> bool {
    match p.ethertype {
        0x0800 => f.get(p.l3).is_some_and(|b| b >> 4 == 4) && f.get(p.l3 + 9) == Some(&112),
        0x86dd => f.get(p.l3 + 6) == Some(&112),
        _ => false,
    }
}

/// The target this frame asks about (ARP request tpa / NS target), if it is one.
fn asked(f: &[u8], p: &Parsed) -> Option<Vec<u8>> {
    match p.ethertype {
        0x0806 if f.len() >= p.l3 + 28 && f[p.l3 + 6..p.l3 + 8] == [0, 1] => {
            Some(f[p.l3 + 24..p.l3 + 28].to_vec())
        }
        0x86dd if f.len() >= p.l3 + 64 && f[p.l3 + 6] == 58 && f[p.l3 + 40] == 135 => {
            Some(f[p.l3 + 48..p.l3 + 64].to_vec())
        }
        _ => None,
    }
}

fn check(input: &[u8], verdict: u32, out: &[u8]) -> Result<(), String> {
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
            let target = asked(input, &p);
            let for_unowned = target
                .as_deref()
                .is_some_and(|t| t == UNOWNED_V4 || t == UNOWNED_V6);
            if !is_vrrp(input, &p) && !for_unowned {
                return Err(
                    "dropped something that is neither VRRP nor a question for an unowned VIP"
                        .into(),
                );
            }
        }
        XDP_TX => {
            let p = p.ok_or("answered a frame with no Ethernet header")?;
            let target = asked(input, &p).ok_or("answered something that asked nothing")?;
            if target != OWNED_V4 && target != OWNED_V6 {
                return Err(format!("answered for {target:02x?}, not an owned VIP"));
            }
            if out[6..12] != OWNED_MAC {
                return Err("answer not from the VIP's MAC".into());
            }
            let q = parse(out).ok_or("answer unparsable")?;
            match q.ethertype {
                0x0806 => {
                    let a = &out[q.l3..];
                    if a[6..8] != [0, 2] || a[8..14] != OWNED_MAC || a[14..18] != OWNED_V4 {
                        return Err("ARP answer is not an is-at for the owned VIP".into());
                    }
                }
                0x86dd => {
                    let ip = &out[q.l3..];
                    let na = &ip[40..];
                    let len = u16::from_be_bytes([ip[4], ip[5]]) as usize;
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
    let mut s = vec![
        frames::arp_request(CLIENT_MAC, CLIENT_IP, OWNED_V4),
        frames::arp_request(CLIENT_MAC, CLIENT_IP, UNOWNED_V4),
        frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, OWNED_V6),
        frames::neighbor_solicitation(CLIENT_MAC, [0; 16], OWNED_V6),
        frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, UNOWNED_V6),
        frames::garp(OTHER_MAC, OWNED_V4),
    ];
    s.extend(frames::keepalived_vectors().into_iter().map(|(_, f)| f));
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
        let (verdict, out) = r.run(&frame);
        if let Err(why) = check(&frame, verdict, &out) {
            panic!("round {round}: {why}\ninput  {frame:02x?}\noutput {out:02x?}");
        }
        match verdict {
            XDP_PASS => passed += 1,
            XDP_DROP => dropped += 1,
            _ => answered += 1,
        }
    }
    println!("fuzz: {passed} passed, {dropped} dropped, {answered} answered");
    // The mutations must have exercised every verdict, or the test proves little.
    assert!(passed > 1000 && dropped > 1000 && answered > 100);
}
