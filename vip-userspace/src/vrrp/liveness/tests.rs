//! Two nodes' session tables on one simulated link: A's instance subscribes to B (a
//! backup following its master), B only answers (its configuration names A, as
//! `allowed_peers` would). Control packets cross the link as packets; echoes come back to
//! A while B's data plane lists A (`Output::Present`), whatever B's daemon is doing. Then
//! what strangers, neighbours heard advertising and forged echoes can and cannot do.

use std::time::Duration;

use super::*;

const IF_A: u32 = 7;
const IF_B: u32 = 9;

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn settings(peers: &[&str]) -> BfdSettings {
    BfdSettings {
        peers: peers.iter().map(|p| addr(p)).collect(),
        interval: Duration::from_millis(1),
        multiplier: 3,
        echo: true,
        control_interval: Duration::from_secs(1),
        notify: None,
    }
}

struct Link {
    a: Liveness,
    b: Liveness,
    now: Time,
    /// B's data plane loops A's echoes back.
    b_reflects: bool,
    /// B's daemon runs (a frozen one neither sends nor reads Control packets).
    b_runs: bool,
    /// The wire works.
    up: bool,
    /// A's echoes are held on the way (a slow path) until released.
    hold_echoes: bool,
    held: Vec<Echo>,
    a_changes: Vec<(Neighbour, bool, Diag)>,
    /// The `slow_rtt` of each of A's changes.
    a_rtts: Vec<Option<Duration>>,
    /// When each of A's changes came.
    a_times: Vec<Time>,
}

/// B's subscription: BFD on its interface, following nobody (it is master), naming
/// `named`.
fn master_sub(named: &[&str]) -> Subscription {
    Subscription {
        ifindex: IF_B,
        local: addr("192.0.2.12"),
        settings: settings(&[]),
        peers: vec![],
        named: named.iter().map(|a| addr(a)).collect(),
    }
}

fn seed(n: u8) -> [u8; 32] {
    [n; 32]
}

impl Link {
    fn new() -> Link {
        Link::with(master_sub(&["192.0.2.11"]))
    }

    fn with(b_sub: Subscription) -> Link {
        let mut a = Liveness::new(seed(1));
        let mut b = Liveness::new(seed(2));
        a.subscribe(
            Time::ZERO,
            (1, 0),
            Some(Subscription {
                ifindex: IF_A,
                local: addr("192.0.2.11"),
                settings: settings(&[]),
                peers: vec![addr("192.0.2.12")],
                named: vec![],
            }),
        );
        b.subscribe(Time::ZERO, (1, 0), Some(b_sub));
        Link {
            a,
            b,
            now: Time::ZERO,
            b_reflects: false,
            b_runs: true,
            up: true,
            hold_echoes: false,
            held: Vec::new(),
            a_changes: Vec::new(),
            a_rtts: Vec::new(),
            a_times: Vec::new(),
        }
    }

    fn carry(&mut self) {
        for _ in 0..8 {
            let from_a = self.a.take_output();
            let from_b = if self.b_runs {
                self.b.take_output()
            } else {
                Vec::new()
            };
            if from_a.is_empty() && from_b.is_empty() {
                break;
            }
            for o in from_a {
                match o {
                    Output::Control { local, packet, .. } if self.up && self.b_runs => {
                        self.b.control(self.now, IF_B, local, 255, packet)
                    }
                    Output::Echo { echo, .. } if self.up && self.b_reflects && self.hold_echoes => {
                        self.held.push(echo)
                    }
                    Output::Echo { echo, local, .. } if self.up && self.b_reflects => {
                        self.a.echo(self.now, IF_A, local, echo, self.now)
                    }
                    _ => {}
                }
            }
            for o in from_b {
                match o {
                    Output::Present {
                        neighbour, present, ..
                    } if neighbour.1 == addr("192.0.2.11") => self.b_reflects = present,
                    Output::Control { local, packet, .. } if self.up => {
                        self.a.control(self.now, IF_A, local, 255, packet)
                    }
                    _ => {}
                }
            }
            for c in self.a.take_changes() {
                self.a_changes.push((c.neighbour, c.up, c.diag));
                self.a_rtts.push(c.slow_rtt);
                self.a_times.push(self.now);
            }
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.carry();
        loop {
            let next = [
                self.a.poll_at(),
                self.b_runs.then(|| self.b.poll_at()).flatten(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.a.poll(self.now);
                    if self.b_runs {
                        self.b.poll(self.now);
                    }
                    self.carry();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn a_state(&self) -> Option<BfdState> {
        self.a
            .sessions()
            .find(|(n, _)| **n == (IF_A, addr("192.0.2.12")))
            .map(|(_, e)| e.session.state())
    }
}

#[test]
fn a_subscription_brings_a_session_up_and_the_passive_end_follows() {
    let mut l = Link::new();
    l.run_for(Duration::from_secs(3));
    assert_eq!(l.a_state(), Some(BfdState::Up));
    assert!(l.b.is_up(&(IF_B, addr("192.0.2.11"))));
    assert_eq!(
        l.a_changes,
        vec![((IF_A, addr("192.0.2.12")), true, Diag::None)]
    );
    // Only the subscriber sends echoes, and they come back through B's data plane.
    let (_, a) = l.a.sessions().next().unwrap();
    let (_, b) = l.b.sessions().next().unwrap();
    assert!(a.session.sends_echo() && !b.session.sends_echo());
    let before = l.a.counters.echo_received;
    l.run_for(Duration::from_millis(10));
    assert!(l.a.counters.echo_received >= before + 9);
}

#[test]
fn a_frozen_far_daemon_keeps_the_session_up_until_control_detection() {
    let mut l = Link::new();
    l.run_for(Duration::from_secs(3));
    l.b_runs = false;
    // Echoes still return (B's XDP); Control detection is 3 × 1 s.
    l.run_for(Duration::from_millis(2500));
    assert_eq!(l.a_state(), Some(BfdState::Up));
    l.run_for(Duration::from_millis(1000));
    assert_eq!(l.a_state(), Some(BfdState::Down));
    let (_, e) = l.a.sessions().next().unwrap();
    assert_eq!(
        e.session.last_down().map(|(_, d)| d),
        Some(Diag::ControlDetectionTimeExpired)
    );
}

#[test]
fn a_dead_link_is_noticed_by_the_echoes_within_the_detection_time() {
    let mut l = Link::new();
    l.run_for(Duration::from_secs(3));
    let cut = l.now;
    let seen = l.a_changes.len();
    l.up = false;
    l.run_for(Duration::from_millis(20));
    // The instances hear at once that the path is suspect: 3 × 1 ms after the last echo
    // came back, which left at most 1 ms before the cut.
    let n = (IF_A, addr("192.0.2.12"));
    assert_eq!(l.a_changes[seen], (n, false, Diag::EchoFunctionFailed));
    let suspect = l.a_times[seen];
    assert!(suspect.saturating_duration_since(cut) <= Duration::from_millis(3));
    // The session itself goes down once nothing came back in the confirmation window.
    let (_, e) = l.a.sessions().next().unwrap();
    let (at, diag) = e.session.last_down().unwrap();
    assert_eq!(diag, Diag::EchoFunctionFailed);
    assert_eq!(at, suspect + e.session.confirm_window());
    assert_eq!(l.a.counters.echo_suspect, 1);
    assert_eq!(l.a.counters.echo_restored, 0);
}

/// Holds A's echoes on the path from the next one A sends until `d` later, then delivers
/// them all at once.
fn hold_for(l: &mut Link, d: Duration) {
    l.hold_echoes = true;
    while l.held.is_empty() {
        l.run_for(Duration::from_micros(10));
    }
    l.run_for(d);
    l.hold_echoes = false;
    for e in std::mem::take(&mut l.held) {
        l.a.echo(l.now, IF_A, addr("192.0.2.11"), e, l.now);
    }
    l.carry();
}

#[test]
fn a_slow_path_lengthens_the_probe_and_a_stalled_one_leaves_the_decision_to_vrrp() {
    let mut l = Link::new();
    l.run_for(Duration::from_secs(3));
    // A slow moment: echoes held 0.8 ms, under an echo interval: no stall.
    hold_for(&mut l, Duration::from_micros(800));
    assert_eq!(l.a_state(), Some(BfdState::Up));
    let (_, e) = l.a.sessions().next().unwrap();
    let rtt = e.session.recent_echo_rtt();
    assert!(
        rtt >= Duration::from_micros(800) && rtt <= Duration::from_micros(820),
        "{rtt:?}"
    );
    // The path dies: the change tells the group how long to wait for the master's answer
    // to a probe (it waits twice that).
    let seen = l.a_changes.len();
    l.up = false;
    l.run_for(Duration::from_millis(20));
    assert_eq!(l.a_rtts[seen], Some(rtt));
    // A stall: echoes held 2.9 ms, all back within the detection time, so no "down"...
    let mut l = Link::new();
    l.run_for(Duration::from_secs(3));
    hold_for(&mut l, Duration::from_micros(2900));
    assert_eq!(l.a_state(), Some(BfdState::Up));
    let (_, e) = l.a.sessions().next().unwrap();
    assert!(e.session.stalled_lately(l.now));
    // ... but when the path dies now, a probe could not tell it from the next stall:
    // the change says so, and Master_Down_Interval decides.
    let seen = l.a_changes.len();
    l.up = false;
    l.run_for(Duration::from_millis(20));
    assert_eq!(l.a_rtts[seen], None);
}

#[test]
fn a_path_that_stalls_is_suspect_and_then_back_without_a_session_down() {
    let mut l = Link::new();
    l.run_for(Duration::from_secs(3));
    let seen = l.a_changes.len();
    // Held for 5 ms: past the detection time, within the confirmation window.
    hold_for(&mut l, Duration::from_millis(5));
    let n = (IF_A, addr("192.0.2.12"));
    assert_eq!(
        l.a_changes[seen..],
        [
            (n, false, Diag::EchoFunctionFailed),
            (n, true, Diag::EchoFunctionFailed)
        ]
    );
    assert_eq!(l.a_state(), Some(BfdState::Up));
    let (_, e) = l.a.sessions().next().unwrap();
    assert_eq!(e.session.last_down(), None);
    assert_eq!(
        (l.a.counters.echo_suspect, l.a.counters.echo_restored),
        (1, 1)
    );
    // The subscribed session's daemon hears both, for its log.
    let out = l.a.take_output();
    let _ = out;
}

#[test]
fn dropping_the_last_subscription_on_an_interface_says_admin_down() {
    let mut l = Link::new();
    l.run_for(Duration::from_secs(3));
    l.a.subscribe(l.now, (1, 0), None);
    let out = l.a.take_output();
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Control { packet, .. } if packet.state == BfdState::AdminDown
    )));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Present { present: false, .. }))
    );
    assert_eq!(l.a.sessions().count(), 0);
    // B hears it, goes down, and its unsubscribed session goes once it has not been Up
    // for the limit.
    for o in out {
        if let Output::Control { local, packet, .. } = o {
            l.b.control(l.now, IF_B, local, 255, packet);
        }
    }
    assert!(!l.b.is_up(&(IF_B, addr("192.0.2.11"))));
    let down_at = l.now;
    let mut closed_at = None;
    while let Some(t) =
        l.b.poll_at()
            .filter(|t| *t <= down_at + NOT_UP_LIMIT + Duration::from_secs(2))
    {
        l.b.poll(t);
        if l.b.sessions().count() == 0 && closed_at.is_none() {
            closed_at = Some(t);
        }
    }
    assert_eq!(closed_at, Some(down_at + NOT_UP_LIMIT));
    assert_eq!(l.b.counters.closed_not_up, 1);
    assert!(l.b.take_output().iter().any(|o| matches!(
        o,
        Output::Present { present: false, neighbour, .. } if neighbour.1 == addr("192.0.2.11")
    )));
}

#[test]
fn control_packets_that_are_not_single_hop_or_not_ours_change_nothing() {
    let mut l = Link::new();
    l.run_for(Duration::from_secs(3));
    let c = Control {
        diag: Diag::None,
        state: BfdState::Down,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        detect_mult: 3,
        my_disc: 42,
        your_disc: 0,
        desired_min_tx: 1_000_000,
        required_min_rx: 1_000_000,
        required_min_echo_rx: 0,
    };
    // Routed (TTL 254): refused.
    l.a.control(l.now, IF_A, addr("192.0.2.12"), 254, c);
    assert_eq!(l.a.counters.bad_ttl, 1);
    // Someone else's discriminator.
    let mut wrong = c;
    wrong.your_disc = 12345;
    l.a.control(l.now, IF_A, addr("192.0.2.12"), 255, wrong);
    // An interface where nothing runs BFD.
    l.a.control(l.now, 99, addr("192.0.2.12"), 255, c);
    assert_eq!(l.a.counters.unmatched, 2);
    assert_eq!(l.a_state(), Some(BfdState::Up));
    assert_eq!(l.a.sessions().count(), 1);
}

/// A Control packet starting a session (Down, Your Discriminator 0), as a stranger or a
/// neighbour sends its first one.
fn hello(my_disc: u32) -> Control {
    Control {
        diag: Diag::None,
        state: BfdState::Down,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        detect_mult: 3,
        my_disc,
        your_disc: 0,
        desired_min_tx: 1_000_000,
        required_min_rx: 1_000_000,
        required_min_echo_rx: 0,
    }
}

/// The `i`-th of a thousand addresses on the link, IPv4 then IPv6.
fn stranger(i: u32) -> IpAddr {
    if i < 1000 {
        let [_, _, hi, lo] = (i + 0x1000).to_be_bytes();
        IpAddr::from([198, 51, hi, lo])
    } else {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a[12..].copy_from_slice(&i.to_be_bytes());
        IpAddr::from(a)
    }
}

/// B as master on both families, naming A in each.
fn master_both() -> Liveness {
    let mut b = Liveness::new(seed(2));
    b.subscribe(Time::ZERO, (1, 0), Some(master_sub(&["192.0.2.11"])));
    b.subscribe(
        Time::ZERO,
        (2, 0),
        Some(Subscription {
            ifindex: IF_B,
            local: addr("2001:db8::12"),
            settings: settings(&[]),
            peers: vec![],
            named: vec![addr("2001:db8::11")],
        }),
    );
    b.take_output();
    b
}

#[test]
fn control_from_a_stranger_opens_nothing_and_sends_nothing() {
    // The attack: a thousand addresses per family, each starting a session, for
    // 30 s. Nothing is opened, nothing is sent (not even to resolve the address), and
    // every packet is counted.
    let mut b = master_both();
    let mut t = Time::ZERO;
    let mut sent = 0;
    while t < Time::from_millis(30_000) {
        for i in 0..2000 {
            b.control(t, IF_B, stranger(i), 255, hello(i + 1));
            sent += 1;
        }
        t = t + Duration::from_secs(1);
        while let Some(d) = b.poll_at().filter(|d| *d <= t) {
            b.poll(d);
        }
    }
    assert_eq!(b.sessions().count(), 0);
    assert!(b.take_output().is_empty());
    assert_eq!(b.counters.unknown_neighbour, sent);
    assert_eq!(b.counters.control_received, 0);
    // A neighbour B names opens its session at once, flood or not.
    b.control(t, IF_B, addr("192.0.2.11"), 255, hello(5));
    b.control(t, IF_B, addr("2001:db8::11"), 255, hello(6));
    assert_eq!(b.sessions().count(), 2);
    assert_eq!(b.summary().passive, 2);
}

#[test]
fn a_neighbour_heard_advertising_may_open_a_session_within_the_cap_and_the_rate() {
    let mut b = Liveness::new(seed(2));
    b.subscribe(Time::ZERO, (1, 0), Some(master_sub(&[])));
    let a = addr("192.0.2.11");
    // Not heard yet: unknown.
    b.control(Time::ZERO, IF_B, a, 255, hello(1));
    assert_eq!(b.counters.unknown_neighbour, 1);
    // Heard advertising: its next Control packet opens a session, counted as learned.
    b.heard(Time::ZERO, IF_B, a);
    b.control(Time::ZERO, IF_B, a, 255, hello(1));
    assert_eq!(b.sessions().count(), 1);
    assert_eq!(b.summary().learned, 1);
    // Advertisements heard from a crowd (someone forging valid adverts from many
    // sources, without allowed_peers): a burst of sessions opens, then one a second, and
    // never more than the cap per interface.
    let crowd: Vec<IpAddr> = (1..=20u8)
        .map(|i| IpAddr::from([192, 0, 2, 100 + i]))
        .collect();
    for (i, c) in crowd.iter().enumerate() {
        b.heard(Time::ZERO, IF_B, *c);
        b.control(Time::ZERO, IF_B, *c, 255, hello(10 + i as u32));
    }
    // The first packet took one token of the burst.
    assert_eq!(b.sessions().count(), NEW_SESSION_BURST as usize);
    assert_eq!(b.counters.refused_rate, 20 - (NEW_SESSION_BURST as u64 - 1));
    let mut t = Time::ZERO;
    for _ in 0..30 {
        t = t + NEW_SESSION_EVERY;
        for (i, c) in crowd.iter().enumerate() {
            b.heard(t, IF_B, *c);
            b.control(t, IF_B, *c, 255, hello(10 + i as u32));
        }
    }
    assert_eq!(b.sessions().count(), LEARNED_SESSIONS_MAX);
    assert!(b.counters.refused_cap > 0);
    // A named neighbour is no learned one: it opens its session whatever the cap says.
    b.subscribe(t, (1, 0), Some(master_sub(&["192.0.2.99"])));
    b.control(t, IF_B, addr("192.0.2.99"), 255, hello(99));
    assert_eq!(b.sessions().count(), LEARNED_SESSIONS_MAX + 1);
    assert_eq!(b.summary().learned, LEARNED_SESSIONS_MAX);
}

#[test]
fn the_advertisers_remembered_are_bounded_and_age_out() {
    let mut b = Liveness::new(seed(2));
    b.subscribe(Time::ZERO, (1, 0), Some(master_sub(&[])));
    let first = addr("192.0.2.200");
    b.heard(Time::ZERO, IF_B, first);
    // An IPv6 source where no instance runs BFD over IPv6 is not remembered.
    b.heard(Time::ZERO, IF_B, addr("2001:db8::1"));
    b.control(Time::ZERO, IF_B, addr("2001:db8::1"), 255, hello(1));
    assert_eq!(b.counters.unmatched, 1);
    for i in 0..HEARD_MAX as u8 {
        b.heard(Time::from_millis(1), IF_B, IpAddr::from([198, 51, 100, i]));
    }
    // The oldest made room.
    assert_eq!(b.counters.heard_evicted, 1);
    b.control(Time::from_millis(2), IF_B, first, 255, hello(2));
    assert_eq!(b.counters.unknown_neighbour, 1);
    // One heard long ago is a stranger again.
    let later = Time::from_millis(1) + HEARD_FOR;
    b.control(later, IF_B, IpAddr::from([198, 51, 100, 0]), 255, hello(3));
    assert_eq!(b.counters.unknown_neighbour, 2);
    assert_eq!(b.sessions().count(), 0);
}

#[test]
fn a_session_nobody_subscribes_to_closes_when_it_does_not_come_up() {
    let mut b = master_both();
    let a = addr("192.0.2.11");
    b.control(Time::ZERO, IF_B, a, 255, hello(1));
    assert_eq!(b.sessions().count(), 1);
    // The neighbour goes quiet in Init: the session leaves Init by its (held) detection
    // time and is closed once it has not been Up for the limit, without a word.
    let end = Time::ZERO + NOT_UP_LIMIT + Duration::from_secs(1);
    while let Some(t) = b.poll_at().filter(|t| *t <= end) {
        b.poll(t);
    }
    assert_eq!(b.sessions().count(), 0);
    assert_eq!(b.counters.closed_not_up, 1);
    let out = b.take_output();
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Present { present: false, .. }))
    );
    // Its changes carry no subscriber: no hook, no log line of its own.
    assert!(out.iter().all(|o| match o {
        Output::Changed { subscribers, .. } => subscribers.is_empty(),
        _ => true,
    }));
}

#[test]
fn only_a_down_packet_opens_a_session() {
    let mut b = master_both();
    let a = addr("192.0.2.11");
    for state in [BfdState::Init, BfdState::Up, BfdState::AdminDown] {
        let mut c = hello(1);
        c.state = state;
        b.control(Time::ZERO, IF_B, a, 255, c);
    }
    assert_eq!(b.sessions().count(), 0);
    assert_eq!(b.counters.unmatched, 3);
}

#[test]
fn a_forged_echo_is_not_ours_and_keeps_no_dead_path_alive() {
    let mut l = Link::new();
    l.run_for(Duration::from_secs(3));
    let (_, e) = l.a.sessions().next().unwrap();
    let (disc, nonce) = (e.session.local_disc(), e.session.nonce());
    // A forger who knows the discriminator (it reads status output, say) but not the
    // nonce: not ours, whatever else is right.
    let forged = |seq: u32, n: u64| Echo {
        disc,
        seq,
        nonce: n,
    };
    let local = addr("192.0.2.11");
    let before = l.a.counters;
    l.a.echo(l.now, IF_A, local, forged(1, nonce ^ 1), l.now);
    // The right nonce from another address or on another interface is not ours either.
    l.a.echo(l.now, IF_A, addr("192.0.2.66"), forged(1, nonce), l.now);
    l.a.echo(l.now, IF_A + 1, local, forged(1, nonce), l.now);
    assert_eq!(l.a.counters.echo_not_ours, before.echo_not_ours + 3);
    assert_eq!(l.a.counters.echo_received, before.echo_received);
    // The path dies while the forger sends an echo with a guessed nonce every 100 µs:
    // the path is suspect within its detection time all the same, no forged echo clears
    // it, and the session goes down when the confirmation window is over.
    let cut = l.now;
    let seen = l.a_changes.len();
    l.up = false;
    for i in 0..200u64 {
        l.run_for(Duration::from_micros(100));
        let guess = nonce.wrapping_add(0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i + 1));
        l.a.echo(l.now, IF_A, local, forged(i as u32, guess), l.now);
        l.carry();
    }
    let n = (IF_A, addr("192.0.2.12"));
    assert_eq!(
        l.a_changes[seen..],
        [
            (n, false, Diag::EchoFunctionFailed),
            (n, false, Diag::EchoFunctionFailed)
        ]
    );
    let suspect = l.a_times[seen];
    assert!(suspect.saturating_duration_since(cut) <= Duration::from_millis(3));
    let (_, e) = l.a.sessions().next().unwrap();
    let (at, diag) = e.session.last_down().expect("went down");
    assert_eq!(diag, Diag::EchoFunctionFailed);
    assert_eq!(at, suspect + e.session.confirm_window());
    assert_eq!(l.a.counters.echo_restored, 0);
}

#[test]
fn discriminators_and_nonces_come_from_the_seed_and_nothing_else() {
    let open = |s: u8| {
        let mut b = master_both();
        b.rng = ChaCha20Rng::from_seed(seed(s));
        b.control(Time::ZERO, IF_B, addr("192.0.2.11"), 255, hello(1));
        b.control(Time::ZERO, IF_B, addr("2001:db8::11"), 255, hello(2));
        b.sessions()
            .map(|(_, e)| (e.session.local_disc(), e.session.nonce()))
            .collect::<Vec<_>>()
    };
    // Exact for a seed (replays stay exact), unrelated across seeds and across sessions
    // (no formula of the neighbour's address to work back from).
    assert_eq!(open(3), open(3));
    let (x, y) = (open(3), open(4));
    assert!(x.iter().all(|a| !y.contains(a)));
    assert_ne!(x[0].0, x[1].0);
    assert!(x.iter().chain(&y).all(|(d, _)| *d != 0));
}

#[test]
fn a_wake_up_touches_only_the_sessions_that_are_due() {
    // B keeps sessions for 200 named neighbours (not Up, one Control packet a second at
    // most) next to A's, which is Up; A echoes every millisecond. A wake-up looks at the
    // sessions that are due, not at all of them.
    let named: Vec<String> = (1..=200u32)
        .map(|i| format!("198.51.{}.{}", 100 + i / 250, i % 250))
        .collect();
    let mut named: Vec<&str> = named.iter().map(String::as_str).collect();
    named.push("192.0.2.11");
    let mut l = Link::with(master_sub(&named));
    for a in &named[..200] {
        l.b.control(Time::ZERO, IF_B, addr(a), 255, hello(1));
    }
    l.run_for(Duration::from_secs(3));
    assert_eq!(l.b.sessions().count(), 201);
    assert_eq!(l.a_state(), Some(BfdState::Up));
    let (a0, b0) = (l.a.polled, l.b.polled);
    let wake_ups = 2000;
    for _ in 0..wake_ups {
        l.run_for(Duration::from_millis(1));
    }
    let (a, b) = (l.a.polled - a0, l.b.polled - b0);
    // A: its one session, once or twice per wake-up (echo and its detection).
    assert!((wake_ups..=2 * wake_ups).contains(&a), "A polled {a}");
    // B: each named session about once a second (a scan would look at all 201 on each
    // of B's wake-ups, some 400,000 times in these 2 s).
    assert!((200..=1000).contains(&b), "B polled {b}");
}
