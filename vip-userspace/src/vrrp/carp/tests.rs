use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use proptest::prelude::*;

use super::replay::{STEP_MAX, WINDOW};
use super::*;

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().unwrap())
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().unwrap())
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn digest(s: &str) -> [u8; 20] {
    unhex(s).try_into().expect("20 bytes")
}

// ---- Codec ----------------------------------------------------------------------

/// The CARP message of ucarp's first advertisement in the lab exploration: VHID 7, skew
/// 10, base 1, passphrase `lab-carp-pass`, address 192.0.2.70 (see `tests/vectors`).
fn sample() -> Advert {
    Advert {
        vhid: 7,
        advskew: 10,
        advbase: 1,
        demote: 0,
        counter: 0x2e1c_4ed4_08f8_1661,
        digest: digest("2c96a8f8e56e375d9ccfb3f15bd6fd91fdaf5cdb"),
    }
}

const SAMPLE_BYTES: &str =
    "21070a07000141972e1c4ed408f816612c96a8f8e56e375d9ccfb3f15bd6fd91fdaf5cdb";

#[test]
fn test_parse() {
    assert_eq!(Advert::decode(&unhex(SAMPLE_BYTES)), Ok(sample()));
}

#[test]
fn test_emit() {
    assert_eq!(sample().encode().to_vec(), unhex(SAMPLE_BYTES));
}

#[test]
fn test_impossible_len() {
    let bytes = unhex(SAMPLE_BYTES);
    for len in (0..36).chain([37, 40, 44]) {
        let mut b = bytes.clone();
        b.resize(len, 0);
        assert_eq!(
            Advert::decode(&b),
            Err(DecodeError::BadLength { got: len }),
            "{len}"
        );
    }
}

/// Sets one byte and fixes the checksum, so the edit is what decoding sees.
fn edited(at: usize, value: u8) -> Vec<u8> {
    let mut b = unhex(SAMPLE_BYTES);
    b[at] = value;
    b[6] = 0;
    b[7] = 0;
    let sum = crate::checksum::inet_checksum(&[&b]);
    b[6..8].copy_from_slice(&sum.to_be_bytes());
    b
}

#[test]
fn decode_refuses_other_versions_types_and_authlens() {
    assert_eq!(
        Advert::decode(&edited(0, 0x31)),
        Err(DecodeError::BadVersion { got: 3 })
    );
    assert_eq!(
        Advert::decode(&edited(0, 0x22)),
        Err(DecodeError::BadType { got: 2 })
    );
    assert_eq!(
        Advert::decode(&edited(3, 5)),
        Err(DecodeError::BadAuthLen { got: 5 })
    );
}

#[test]
fn decode_refuses_a_bad_checksum_and_reads_the_demotion_byte() {
    let mut b = unhex(SAMPLE_BYTES);
    b[20] ^= 1;
    assert!(matches!(
        Advert::decode(&b),
        Err(DecodeError::BadChecksum { got: 0x4197, .. })
    ));
    // OpenBSD's demotion count in byte 4.
    let a = Advert::decode(&edited(4, 3)).unwrap();
    assert_eq!(a.demote, 3);
    assert_eq!(
        a.rank(),
        Rank {
            demote: 3,
            advbase: 1,
            advskew: 10
        }
    );
}

/// An IPv4 packet around `message`, as ucarp builds it (DF, TOS 0x10).
fn ipv4_packet(src: [u8; 4], ttl: u8, message: &[u8]) -> Vec<u8> {
    let mut p = vec![
        0x45, 0x10, 0, 0, 0x12, 0x34, 0x40, 0, ttl, 112, 0, 0, src[0], src[1], src[2], src[3], 224,
        0, 0, 18,
    ];
    let len = (20 + message.len()) as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    let sum = crate::checksum::inet_checksum(&[&p]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(message);
    p
}

#[test]
fn ipv4_packets_are_checked_for_ttl_protocol_and_lengths() {
    let msg = unhex(SAMPLE_BYTES);
    let good = ipv4_packet([192, 0, 2, 11], 255, &msg);
    let r = decode_ipv4(&good).unwrap();
    assert_eq!(
        (r.src, r.dst, r.ttl),
        (v4("192.0.2.11"), v4("224.0.0.18"), 255)
    );
    assert_eq!(r.advert, sample());
    // Ethernet padding after the total length is ignored.
    let mut padded = good.clone();
    padded.extend_from_slice(&[0; 4]);
    assert_eq!(decode_ipv4(&padded).unwrap().advert, sample());
    assert_eq!(
        decode_ipv4(&ipv4_packet([192, 0, 2, 11], 64, &msg)),
        Err(DecodeError::BadTtl { got: 64 })
    );
    let mut udp = good.clone();
    udp[9] = 17;
    assert_eq!(decode_ipv4(&udp), Err(DecodeError::BadProtocol { got: 17 }));
    let mut short = good.clone();
    short[3] = 40;
    assert_eq!(decode_ipv4(&short), Err(DecodeError::BadLength { got: 20 }));
    assert!(matches!(
        decode_ipv4(&good[..50]),
        Err(DecodeError::BadTotalLength { total: 56, .. })
    ));
    assert!(matches!(
        decode_ipv4(&good[..10]),
        Err(DecodeError::TooShort { got: 10 })
    ));
    let mut v6 = good.clone();
    v6[0] = 0x65;
    assert_eq!(decode_ipv4(&v6), Err(DecodeError::NotIpv4 { got: 6 }));
}

#[test]
fn ipv6_payloads_need_hop_limit_255() {
    let msg = unhex(SAMPLE_BYTES);
    let src: Ipv6Addr = "fe80::11".parse().unwrap();
    let group: Ipv6Addr = "ff02::12".parse().unwrap();
    let r = decode_ipv6(&msg, src, group, 255).unwrap();
    assert_eq!(r.advert, sample());
    assert_eq!(
        decode_ipv6(&msg, src, group, 1),
        Err(DecodeError::BadTtl { got: 1 })
    );
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Advert::decode(&bytes);
        let _ = decode_ipv4(&bytes);
    }

    #[test]
    fn encode_then_decode_is_identity(
        vhid: u8, advskew: u8, advbase: u8, demote: u8, counter: u64, d in any::<[u8; 20]>()
    ) {
        let a = Advert { vhid, advskew, advbase, demote, counter, digest: d };
        prop_assert_eq!(Advert::decode(&a.encode()), Ok(a));
    }
}

// ---- HMAC -------------------------------------------------------------------------

/// Digests computed with Python's `hmac` and `hashlib` (an implementation of its own)
/// from the message layout in `auth`'s docs:
/// `hmac.new(key.ljust(20, b"\0"), bytes([2, 1, vhid]) + sorted v4 + sorted v6 +
/// counter.to_bytes(8, "big"), hashlib.sha1)`.
const PY_V4_V6_WITHOUT_LL: &str = "7c7bb18d424e1860c77df26d4d26ea6e3bf33751";
const PY_V4_V6_WITH_LL: &str = "7ec824208cc385fd70d904d65858b0db9d06b7e1";
const PY_V6_ONLY: &str = "1e7fb06752166ab345c159e29fc940663f56d40c";
const PY_EMPTY_KEY: &str = "d82c3cfde0ce97846dffaa2e3f83079962834367";

fn dual_stack_host() -> VirtualHost {
    // Out of order and with a duplicate: the HMAC sorts, and hashes each address once.
    VirtualHost::new(
        9,
        [
            v6("fe80::1"),
            v4("192.0.2.2"),
            v6("2001:db8::1"),
            v4("192.0.2.1"),
            v4("192.0.2.2"),
        ],
    )
}

#[test]
fn hmac_matches_ucarps_on_the_wire() {
    let host = VirtualHost::new(7, [v4("192.0.2.70")]);
    let key = Key::new(b"lab-carp-pass").unwrap();
    let auth = Authenticator::new(&key, &host, LinkLocal::Without);
    let a = sample();
    assert_eq!(auth.sign(a.counter), a.digest);
    assert_eq!(auth.verify(a.counter, &a.digest), Ok(LinkLocal::Without));
    assert!(auth.verify(a.counter + 1, &a.digest).is_err());
}

#[test]
fn hmac_sorts_addresses_and_has_two_link_local_forms() {
    let key = Key::new(b"s3cret").unwrap();
    let counter = 0x0102_0304_0506_0708;
    let without = Authenticator::new(&key, &dual_stack_host(), LinkLocal::Without);
    assert_eq!(without.sign(counter), digest(PY_V4_V6_WITHOUT_LL));
    assert_eq!(
        without.sign_as(LinkLocal::With, counter),
        digest(PY_V4_V6_WITH_LL)
    );
    // Either form verifies, and says which it was.
    assert_eq!(
        without.verify(counter, &digest(PY_V4_V6_WITHOUT_LL)),
        Ok(LinkLocal::Without)
    );
    assert_eq!(
        without.verify(counter, &digest(PY_V4_V6_WITH_LL)),
        Ok(LinkLocal::With)
    );
    let with = Authenticator::new(&key, &dual_stack_host(), LinkLocal::With);
    assert_eq!(with.sign(counter), digest(PY_V4_V6_WITH_LL));
    let v6_only = VirtualHost::new(9, [v6("2001:db8::1")]);
    let auth = Authenticator::new(&key, &v6_only, LinkLocal::With);
    // No link-local address: one form.
    assert_eq!(auth.sign(counter), digest(PY_V6_ONLY));
    assert_eq!(
        auth.verify(counter, &digest(PY_V6_ONLY)),
        Ok(LinkLocal::Without)
    );
}

#[test]
fn hmac_covers_key_vhid_and_every_address() {
    let key = Key::new(b"s3cret").unwrap();
    let counter = 0x0102_0304_0506_0708;
    let good = digest(PY_V4_V6_WITHOUT_LL);
    let refuses = |auth: Authenticator| {
        assert_eq!(
            auth.verify(counter, &good),
            Err(AuthError::BadDigest {
                vhid: auth_vhid(&auth)
            })
        );
    };
    refuses(Authenticator::new(
        &Key::new(b"s3creT").unwrap(),
        &dual_stack_host(),
        LinkLocal::Without,
    ));
    refuses(Authenticator::new(
        &key,
        &VirtualHost::new(10, [v6("2001:db8::1"), v4("192.0.2.2"), v4("192.0.2.1")]),
        LinkLocal::Without,
    ));
    refuses(Authenticator::new(
        &key,
        &VirtualHost::new(9, [v6("2001:db8::1"), v4("192.0.2.1")]),
        LinkLocal::Without,
    ));
    // An empty passphrase is a key of 20 zero bytes, as on a BSD with none set.
    let empty = Authenticator::new(
        &Key::new(b"").unwrap(),
        &VirtualHost::new(1, [v4("192.0.2.1")]),
        LinkLocal::Without,
    );
    assert_eq!(empty.sign(1), digest(PY_EMPTY_KEY));
}

fn auth_vhid(auth: &Authenticator) -> u8 {
    // The error names the VHID the authenticator was built for.
    match auth.verify(0, &[0; 20]) {
        Err(AuthError::BadDigest { vhid }) => vhid,
        Ok(_) => unreachable!("an all-zero digest verified"),
    }
}

#[test]
fn passphrases_are_what_every_peer_uses_whole() {
    assert!(Key::new(&[b'x'; 19]).is_ok());
    assert_eq!(Key::new(&[b'x'; 20]), Err(KeyError::TooLong { len: 20 }));
    assert_eq!(Key::new(b"a\0b"), Err(KeyError::Nul));
    // Never printed.
    assert_eq!(format!("{:?}", Key::new(b"secret").unwrap()), "Key(..)");
}

// ---- Replay ----------------------------------------------------------------------

#[test]
fn a_rising_sequence_is_one_range_and_nothing_in_it_comes_back() {
    let mut g = ReplayGuard::new(ReplayMode::Strict, 7);
    for c in 1000..1100 {
        assert_eq!(g.admit(c), Ok(()));
    }
    assert_eq!(g.ranges(), 1);
    // Old (any time during the sequence) and repeated counters are refused.
    for c in [1000, 1050, 1099] {
        assert_eq!(g.admit(c), Err(Replayed::Seen { counter: c }));
    }
    // Lost advertisements do not break the sequence.
    let far = 1099 + STEP_MAX;
    assert_eq!(g.admit(far), Ok(()));
    assert_eq!(g.ranges(), 1);
    // Including every value skipped.
    assert_eq!(g.admit(1100), Err(Replayed::Seen { counter: 1100 }));
    // A jump beyond STEP_MAX is a counter of its own.
    assert_eq!(g.admit(far + STEP_MAX + 1), Ok(()));
    assert_eq!(g.ranges(), 2);
}

#[test]
fn random_counters_are_remembered_one_by_one_up_to_the_window() {
    let mut g = ReplayGuard::new(ReplayMode::Strict, 7);
    // What a lone ucarp or FreeBSD master sends: a new random value every time.
    let random: Vec<u64> = (0..WINDOW as u64 + 5)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    for &c in &random[..WINDOW] {
        assert_eq!(g.admit(c), Ok(()));
    }
    assert_eq!((g.ranges(), g.forgotten()), (WINDOW, 0));
    assert!(g.admit(random[10]).is_err());
    for &c in &random[WINDOW..] {
        assert_eq!(g.admit(c), Ok(()));
    }
    // The window holds; the oldest are forgotten and counted.
    assert_eq!((g.ranges(), g.forgotten()), (WINDOW, 5));
    assert_eq!(
        g.admit(random[0]),
        Ok(()),
        "forgotten: a replay this old passes"
    );
    assert!(g.admit(random[WINDOW + 4]).is_err());
}

#[test]
fn the_counter_wraps_like_ucarps() {
    let mut g = ReplayGuard::new(ReplayMode::Strict, 0);
    assert_eq!(g.admit(u64::MAX - 1), Ok(()));
    assert_eq!(g.admit(u64::MAX), Ok(()));
    assert_eq!(g.admit(0), Ok(()));
    assert_eq!(g.admit(1), Ok(()));
    assert_eq!(g.ranges(), 1);
    assert!(g.admit(u64::MAX).is_err());
}

#[test]
fn our_counter_rises_skips_what_others_used_and_never_comes_back_as_theirs() {
    let mut g = ReplayGuard::new(ReplayMode::Strict, 500);
    assert_eq!(
        (g.next_counter(), g.next_counter(), g.next_counter()),
        (500, 501, 502)
    );
    // Our own advertisement looped back.
    assert_eq!(g.admit(501), Err(Replayed::Ours { counter: 501 }));
    // A peer (ucarp, FreeBSD) continues our sequence as master...
    for c in 503..510 {
        assert_eq!(g.admit(c), Ok(()));
    }
    // ...and when we are master again we continue above it, never repeating its values.
    assert_eq!(g.next_counter(), 510);
    // A peer that was master in a sequence of its own: we skip past that too.
    let mut g = ReplayGuard::new(ReplayMode::Strict, 5_000);
    for c in 5_000..5_010 {
        g.admit(c).unwrap();
    }
    assert_eq!(g.next_counter(), 5_010);
}

#[test]
fn openbsd_peers_repeat_their_cookie_and_only_ours_is_refused() {
    let mut g = ReplayGuard::new(ReplayMode::OpenBsd, 40);
    let cookie = 0xdead_beef_0bad_cafe;
    for _ in 0..5 {
        assert_eq!(g.admit(cookie), Ok(()));
    }
    let ours = g.next_counter();
    assert_eq!(g.admit(ours), Err(Replayed::Ours { counter: ours }));
    // The same guard in Strict mode refuses OpenBSD's second advertisement: that is why
    // OpenBSD peers need OpenBsd.
    let mut fresh = ReplayGuard::new(ReplayMode::Strict, 40);
    assert_eq!(fresh.admit(cookie), Ok(()));
    assert!(fresh.admit(cookie).is_err());
}

proptest! {
    /// Whatever was admitted is refused from then on, as long as the window has room.
    #[test]
    fn an_admitted_counter_is_never_admitted_again(
        counters in proptest::collection::vec(any::<u64>(), 1..200),
        ours in 0..20usize,
        initial: u64,
    ) {
        let mut g = ReplayGuard::new(ReplayMode::Strict, initial);
        let mut admitted = Vec::new();
        for _ in 0..ours {
            admitted.push(g.next_counter());
        }
        for c in counters {
            if g.admit(c).is_ok() {
                admitted.push(c);
            }
        }
        for &c in &admitted {
            prop_assert!(g.admit(c).is_err());
        }
        prop_assert!(g.ranges() <= WINDOW);
        // Our next counter is none of them.
        let n = g.next_counter();
        prop_assert!(!admitted.contains(&n));
    }
}

// ---- Election ----------------------------------------------------------------------

fn rank(advbase: u8, advskew: u8) -> Rank {
    Rank::new(advbase, advskew)
}

#[test]
fn interval_is_advbase_plus_skew_over_256_in_whole_microseconds() {
    assert_eq!(rank(1, 0).interval(), Duration::from_secs(1));
    // 10 × 1,000,000 / 256 = 39,062.5: the BSDs drop the half.
    assert_eq!(rank(1, 10).interval(), Duration::from_micros(1_039_062));
    assert_eq!(rank(0, 128).interval(), Duration::from_millis(500));
    // OpenBSD's floor for 0/0.
    assert_eq!(rank(0, 0).interval(), Duration::from_micros(3_906));
    assert_eq!(Rank::BOW_OUT.interval(), Duration::from_micros(255_996_093));
}

#[test]
fn preference_is_demotion_then_interval() {
    use std::cmp::Ordering::*;
    let table = [
        (rank(1, 0), rank(1, 10), Less),
        (rank(1, 255), rank(2, 0), Less),
        (rank(2, 0), rank(1, 255), Greater),
        (rank(1, 10), rank(1, 10), Equal),
        // A demoted router loses whatever its interval.
        (
            Rank {
                demote: 1,
                ..rank(1, 0)
            },
            rank(5, 200),
            Greater,
        ),
        (
            Rank {
                demote: 1,
                ..rank(1, 0)
            },
            Rank {
                demote: 1,
                ..rank(1, 1)
            },
            Less,
        ),
    ];
    for (a, b, want) in table {
        assert_eq!(a.preference(&b), want, "{a:?} vs {b:?}");
    }
}

#[test]
fn a_master_steps_down_only_for_a_preferred_sender_and_ties_go_to_the_lower_address() {
    let me = v4("192.0.2.11");
    let ours = rank(1, 50);
    assert_eq!(
        as_master(ours, me, rank(1, 10), v4("192.0.2.12")),
        AsMaster::StepDown
    );
    assert_eq!(
        as_master(ours, me, rank(1, 100), v4("192.0.2.12")),
        AsMaster::Stay { reassert: true }
    );
    // Tie: ucarp's rule.
    assert_eq!(
        as_master(ours, me, ours, v4("192.0.2.10")),
        AsMaster::StepDown
    );
    assert_eq!(
        as_master(ours, me, ours, v4("192.0.2.12")),
        AsMaster::Stay { reassert: true }
    );
    // OpenBSD's demotion beats a shorter interval.
    let demoted = Rank {
        demote: 2,
        ..rank(1, 0)
    };
    assert_eq!(
        as_master(ours, me, demoted, v4("192.0.2.12")),
        AsMaster::Stay { reassert: true }
    );
    assert_eq!(
        as_master(demoted, me, ours, v4("192.0.2.12")),
        AsMaster::StepDown
    );
}

#[test]
fn a_backup_takes_over_in_openbsds_order_or_waits_its_own_master_down() {
    let ours = rank(1, 100);
    let wait = AsBackup::Wait {
        master_down: Duration::from_micros(3_000_000 + 390_625),
    };
    // A better master: wait, preempt or not.
    assert_eq!(as_backup(ours, rank(1, 10), true, 3), wait);
    assert_eq!(as_backup(ours, rank(1, 10), false, 3), wait);
    // A worse master: take over only with preempt.
    assert_eq!(
        as_backup(ours, rank(1, 200), true, 3),
        AsBackup::TakeOver(TakeOver::Preempt)
    );
    assert_eq!(as_backup(ours, rank(1, 200), false, 3), wait);
    // Equal: never preempt.
    assert_eq!(as_backup(ours, ours, true, 3), wait);
    // A demoted master is taken over, preempt or not; a less demoted one is not preempted.
    let demoted = Rank {
        demote: 1,
        ..rank(1, 0)
    };
    assert_eq!(
        as_backup(ours, demoted, false, 3),
        AsBackup::TakeOver(TakeOver::Demoted)
    );
    let me_demoted = Rank {
        demote: 1,
        ..rank(1, 0)
    };
    assert_eq!(
        as_backup(me_demoted, rank(1, 200), true, 3),
        AsBackup::Wait {
            master_down: Duration::from_secs(3)
        }
    );
    // The bow-out, and a master slower than our master-down time.
    assert_eq!(
        as_backup(ours, Rank::BOW_OUT, false, 3),
        AsBackup::TakeOver(TakeOver::BowOut)
    );
    assert_eq!(
        as_backup(ours, rank(4, 0), false, 3),
        AsBackup::TakeOver(TakeOver::TooSlow)
    );
    assert_eq!(
        as_backup(ours, rank(3, 0), false, 3),
        wait,
        "3 s < 3.39 s: not too slow"
    );
    // ucarp's --deadratio moves that line; an advbase of 0 never judges "too slow".
    assert_eq!(
        as_backup(ours, rank(4, 0), false, 5),
        AsBackup::Wait {
            master_down: Duration::from_micros(5_390_625)
        }
    );
    assert!(matches!(
        as_backup(rank(0, 100), rank(9, 0), false, 3),
        AsBackup::Wait { .. }
    ));
}

#[test]
fn master_down_is_our_own_base_times_ratio_plus_our_skew() {
    assert_eq!(master_down(rank(1, 0), 3), Duration::from_secs(3));
    assert_eq!(master_down(rank(2, 128), 3), Duration::from_millis(6_500));
    assert_eq!(
        master_down(rank(1, 10), 4),
        Duration::from_micros(4_039_062)
    );
    assert_eq!(master_down(rank(0, 0), 3), Duration::from_micros(11_718));
    // A ratio of 0 counts as 1.
    assert_eq!(master_down(rank(1, 0), 0), Duration::from_secs(1));
    assert_eq!(
        as_backup(rank(1, 0), rank(1, 0), false, 0),
        AsBackup::Wait {
            master_down: Duration::from_secs(1)
        }
    );
}

#[test]
fn priority_maps_to_skew_as_255_minus_priority() {
    let table = [
        (255, 0),
        (254, 1),
        (200, 55),
        (150, 105),
        (100, 155),
        (1, 254),
        (0, 254),
    ];
    for (priority, skew) in table {
        assert_eq!(advskew_for_priority(priority), skew, "priority {priority}");
    }
    for skew in 0..=254u8 {
        assert_eq!(advskew_for_priority(priority_for_advskew(skew)), skew);
    }
    assert_eq!(priority_for_advskew(255), 1);
    // Higher priority, more preferred: the order carries over.
    for p in 1..255u8 {
        let hi = rank(1, advskew_for_priority(p + 1));
        let lo = rank(1, advskew_for_priority(p));
        assert_eq!(hi.preference(&lo), std::cmp::Ordering::Less);
    }
}

// ---- Telling CARP from VRRP ---------------------------------------------------------

#[test]
fn keepalived_vrrp_vectors_are_never_taken_for_carp() {
    let text = std::fs::read_to_string(vectors_dir().join("keepalived-2.2.7.hex")).unwrap();
    let mut seen = 0;
    for (name, frame) in frames(&text) {
        let Some((msg, ipv6)) = protocol_112(&frame) else {
            continue;
        };
        seen += 1;
        assert_eq!(
            classify_proto112(msg[0], msg[3], msg.len(), ipv6),
            Proto112::Vrrp,
            "{name}"
        );
    }
    // Four instances (v2, v3, IPv4, IPv6), adverts and priority-0 ones.
    assert_eq!(seen, 8);
}

// ---- The ucarp captures -----------------------------------------------------------

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn frames(text: &str) -> Vec<(String, Vec<u8>)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, h) = l.split_once(' ').expect("NAME HEX");
            (name.to_owned(), unhex(h))
        })
        .collect()
}

/// The protocol-112 message of an untagged Ethernet frame, and whether it is IPv6.
fn protocol_112(frame: &[u8]) -> Option<(&[u8], bool)> {
    match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0800 if frame[14 + 9] == 112 => {
            let ihl = usize::from(frame[14] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
            Some((&frame[14 + ihl..14 + total], false))
        }
        0x86dd if frame[14 + 6] == 112 => Some((&frame[54..], true)),
        _ => None,
    }
}

/// The settings of the ucarp routers that sent `tests/vectors/ucarp-1.5.2.hex` (its
/// header says the same): VHID, passphrase, address, advbase, advskew.
fn ucarp_settings(vhid: u8, router: &str) -> (&'static str, IpAddr, u8, u8) {
    match (vhid, router) {
        (7, "r1") => ("lab-carp-pass", v4("192.0.2.70"), 1, 10),
        (7, "r2") => ("lab-carp-pass", v4("192.0.2.70"), 1, 0),
        (200, "r3") => ("nineteen-bytes-long", v4("192.0.2.71"), 2, 0),
        other => panic!("no ucarp router {other:?} in the capture"),
    }
}

struct UcarpFrame {
    name: String,
    router: String,
    received: Received,
    message: Vec<u8>,
    src_mac: [u8; 6],
}

fn ucarp_frames() -> Vec<UcarpFrame> {
    let text = std::fs::read_to_string(vectors_dir().join("ucarp-1.5.2.hex"))
        .expect("tests/vectors/ucarp-1.5.2.hex");
    frames(&text)
        .into_iter()
        .filter(|(name, _)| !name.contains("garp"))
        .map(|(name, frame)| {
            let (message, ipv6) = protocol_112(&frame).expect("a protocol-112 frame");
            assert!(!ipv6, "ucarp speaks IPv4 only");
            let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
            let received =
                decode_ipv4(&frame[14..14 + total]).unwrap_or_else(|e| panic!("{name}: {e}"));
            let router = name
                .split('_')
                .nth(2)
                .expect("NAME_vhidN_rN_...")
                .to_owned();
            UcarpFrame {
                router,
                message: message.to_vec(),
                src_mac: frame[6..12].try_into().unwrap(),
                received,
                name,
            }
        })
        .collect()
}

#[test]
fn ucarp_vectors_decode_verify_and_re_encode() {
    let frames = ucarp_frames();
    assert_eq!(frames.len(), 11);
    for f in &frames {
        let a = f.received.advert;
        let (pass, addr, advbase, advskew) = ucarp_settings(a.vhid, &f.router);
        assert_eq!(
            classify_proto112(f.message[0], f.message[3], f.message.len(), false),
            Proto112::Carp,
            "{}",
            f.name
        );
        assert_eq!(
            (f.received.dst, f.received.ttl),
            (v4("224.0.0.18"), 255),
            "{}",
            f.name
        );
        assert_eq!(
            (a.advbase, a.advskew, a.demote),
            (advbase, advskew, 0),
            "{}",
            f.name
        );
        // ucarp's advertisements leave from 00:00:5e:00:00:VHID, not the virtual MAC.
        assert_eq!(f.src_mac, [0, 0, 0x5e, 0, 0, a.vhid], "{}", f.name);
        assert_ne!(f.src_mac, vmac_carp(a.vhid));
        let host = VirtualHost::new(a.vhid, [addr]);
        let auth = Authenticator::new(
            &Key::new(pass.as_bytes()).unwrap(),
            &host,
            LinkLocal::Without,
        );
        assert_eq!(
            auth.verify(a.counter, &a.digest),
            Ok(LinkLocal::Without),
            "{}",
            f.name
        );
        assert_eq!(auth.sign(a.counter), a.digest, "{}", f.name);
        assert_eq!(a.encode().to_vec(), f.message, "{}", f.name);
        // A wrong passphrase, VHID or address refuses it.
        let wrong_pass = Authenticator::new(
            &Key::new(b"lab-carp-pasS").unwrap(),
            &host,
            LinkLocal::Without,
        );
        assert!(
            wrong_pass.verify(a.counter, &a.digest).is_err(),
            "{}",
            f.name
        );
        let other_addr = VirtualHost::new(a.vhid, [v4("192.0.2.99")]);
        let wrong_addr = Authenticator::new(
            &Key::new(pass.as_bytes()).unwrap(),
            &other_addr,
            LinkLocal::Without,
        );
        assert!(
            wrong_addr.verify(a.counter, &a.digest).is_err(),
            "{}",
            f.name
        );
    }
}

#[test]
fn ucarp_counters_are_random_alone_then_continue_what_was_heard() {
    let frames = ucarp_frames();
    let vhid7: Vec<&UcarpFrame> = frames
        .iter()
        .filter(|f| f.received.advert.vhid == 7)
        .collect();
    let counters: Vec<u64> = vhid7.iter().map(|f| f.received.advert.counter).collect();
    let continues = |i: usize| {
        counters[..i]
            .iter()
            .any(|e| counters[i] == e.wrapping_add(1))
    };
    for (i, f) in vhid7.iter().enumerate() {
        if f.name.contains("alone") {
            assert!(!continues(i), "{}: a lone ucarp counted on", f.name);
        } else if f.router == "r2" {
            assert!(continues(i), "{}: continues nothing heard", f.name);
        }
    }
    // Replayed in the order sent: all fresh, then all refused.
    let mut g = ReplayGuard::new(ReplayMode::Strict, 0x1234);
    for (f, &c) in vhid7.iter().zip(&counters) {
        assert_eq!(g.admit(c), Ok(()), "{}", f.name);
    }
    for &c in &counters {
        assert_eq!(g.admit(c), Err(Replayed::Seen { counter: c }));
    }
    // Our next counter is none of the peers'.
    let ours = g.next_counter();
    assert!(!counters.contains(&ours));
}

#[test]
fn a_replayed_ucarp_advertisement_with_a_better_skew_is_refused_by_its_counter() {
    // The HMAC does not cover advskew: an attacker who captured r1's advertisement can
    // resend it as skew 0 and it still verifies. Only the counter gives it away.
    let frames = ucarp_frames();
    let f = &frames[0];
    let mut forged = f.received.advert;
    forged.advskew = 0;
    let (pass, addr, _, _) = ucarp_settings(7, "r1");
    let auth = Authenticator::new(
        &Key::new(pass.as_bytes()).unwrap(),
        &VirtualHost::new(7, [addr]),
        LinkLocal::Without,
    );
    assert!(auth.verify(forged.counter, &forged.digest).is_ok());
    let mut g = ReplayGuard::new(ReplayMode::Strict, 99);
    g.admit(f.received.advert.counter).unwrap();
    assert!(g.admit(forged.counter).is_err());
}

// ---- One virtual host's advertisements in and out ------------------------------------

fn speaker(pass: &[u8], initial: u64) -> Speaker {
    let host = VirtualHost::new(7, [v4("192.0.2.70")]);
    let auth = Authenticator::new(&Key::new(pass).unwrap(), &host, LinkLocal::Without);
    Speaker::new(7, auth, ReplayGuard::new(ReplayMode::Strict, initial))
}

#[test]
fn two_speakers_with_one_passphrase_hear_each_other_once_per_advertisement() {
    let (mut a, mut b) = (
        speaker(b"lab-carp-pass", 100),
        speaker(b"lab-carp-pass", 9_000),
    );
    let ad = a.advertise(Rank::new(1, 10));
    assert_eq!(
        (ad.vhid, ad.advbase, ad.advskew, ad.counter),
        (7, 1, 10, 100)
    );
    // The bytes on the wire decode to the same advertisement.
    let ad = Advert::decode(&ad.encode()).unwrap();
    assert_eq!(
        b.admit(&ad),
        Ok(Admitted {
            rank: Rank::new(1, 10),
            form: LinkLocal::Without
        })
    );
    assert_eq!(
        b.admit(&ad),
        Err(Refused::Replay(Replayed::Seen { counter: 100 }))
    );
    // Our own advertisement looped back.
    assert_eq!(
        a.admit(&ad),
        Err(Refused::Replay(Replayed::Ours { counter: 100 }))
    );
    // The bow-out is signed like any other.
    let bow = a.advertise(Rank::BOW_OUT);
    assert_eq!(b.admit(&bow).map(|x| x.rank.is_bow_out()), Ok(true));
    // ucarp's real advertisement, for the same host and passphrase.
    let ucarp = sample();
    assert!(b.admit(&ucarp).is_ok());
}

#[test]
fn a_forgery_is_refused_before_the_counter_is_remembered() {
    let mut a = speaker(b"lab-carp-pass", 100);
    let mut forger = speaker(b"wrong", 500);
    let forged = forger.advertise(Rank::new(1, 0));
    assert_eq!(
        a.admit(&forged),
        Err(Refused::Auth(AuthError::BadDigest { vhid: 7 }))
    );
    // The forged counter was not remembered: the real sender may still use it.
    let mut real = speaker(b"lab-carp-pass", 500);
    assert!(a.admit(&real.advertise(Rank::new(1, 0))).is_ok());
    // Another VHID is refused before anything else.
    let other = Advert {
        vhid: 8,
        ..sample()
    };
    assert_eq!(a.admit(&other), Err(Refused::OtherVhid { got: 8, ours: 7 }));
    assert_eq!(a.forgotten(), 0);
}
