//! Two nodes' session tables on one simulated link: A's instance subscribes to B (a
//! backup following its master), B only answers. Control packets cross the link as
//! packets; echoes come back to A while B's data plane lists A (`Output::Present`),
//! whatever B's daemon is doing.

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
    a_rtts: Vec<Duration>,
}

impl Link {
    fn new() -> Link {
        let mut a = Liveness::new(1);
        let mut b = Liveness::new(2);
        a.subscribe(
            Time::ZERO,
            (1, 0),
            Some(Subscription {
                ifindex: IF_A,
                local: addr("192.0.2.11"),
                settings: settings(&[]),
                peers: vec![addr("192.0.2.12")],
            }),
        );
        // B runs BFD on its interface but follows nobody (it is master).
        b.subscribe(
            Time::ZERO,
            (1, 0),
            Some(Subscription {
                ifindex: IF_B,
                local: addr("192.0.2.12"),
                settings: settings(&[]),
                peers: vec![],
            }),
        );
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
                    Output::Echo { echo, .. } if self.up && self.b_reflects => {
                        self.a.echo(self.now, IF_A, echo)
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
    l.up = false;
    l.run_for(Duration::from_millis(20));
    assert_eq!(
        l.a_changes.last(),
        Some(&((IF_A, addr("192.0.2.12")), false, Diag::EchoFunctionFailed))
    );
    let (_, e) = l.a.sessions().next().unwrap();
    let (at, diag) = e.session.last_down().unwrap();
    assert_eq!(diag, Diag::EchoFunctionFailed);
    // 3 × 1 ms after the last echo came back, which left at most 1 ms before the cut.
    assert!(at.saturating_duration_since(cut) <= Duration::from_millis(3));
}

#[test]
fn a_probe_never_waits_longer_than_one_more_detection_time() {
    let mut l = Link::new();
    l.run_for(Duration::from_secs(3));
    // One slow moment: echoes held for 2.9 ms, then all delivered (no "down": one came
    // back within the 3 ms detection time), the oldest after about 2 ms.
    l.hold_echoes = true;
    l.run_for(Duration::from_micros(2900));
    l.hold_echoes = false;
    for e in std::mem::take(&mut l.held) {
        l.a.echo(l.now, IF_A, e);
    }
    l.carry();
    assert_eq!(l.a_state(), Some(BfdState::Up));
    let (_, e) = l.a.sessions().next().unwrap();
    let limit = e.session.echo_detection_limit();
    assert!(
        e.session.recent_echo_rtt() > limit / 2,
        "the slow echo is remembered: {:?}",
        e.session.recent_echo_rtt()
    );
    // The path dies: the change tells the group how long to wait for the master's answer
    // to a probe, at most half the detection time (it waits twice that).
    l.up = false;
    l.run_for(Duration::from_millis(20));
    assert_eq!(
        l.a_changes.last(),
        Some(&((IF_A, addr("192.0.2.12")), false, Diag::EchoFunctionFailed))
    );
    assert_eq!(l.a_rtts.last(), Some(&(limit / 2)));
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
    // B hears it, goes down, and its unsubscribed session goes after the quiet time.
    for o in out {
        if let Output::Control { local, packet, .. } = o {
            l.b.control(l.now, IF_B, local, 255, packet);
        }
    }
    assert!(!l.b.is_up(&(IF_B, addr("192.0.2.11"))));
    l.b_runs = true;
    let end = l.now + QUIET + Duration::from_secs(2);
    while let Some(t) = l.b.poll_at().filter(|t| *t <= end) {
        l.b.poll(t);
    }
    assert_eq!(l.b.sessions().count(), 0);
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
