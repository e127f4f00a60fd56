//! The group's promises, checked on random input streams (seeded, so a failure replays):
//! the slot it writes always agrees with what its machines say, and a lease never
//! outlives Master_Down_Interval. The scenario files in `tests/conformance/` pin the
//! exact outputs of the cases that matter; this covers the orders nobody thought of.

use std::{net::IpAddr, time::Duration};

use super::*;
use crate::vrrp::{
    bfd::packet::Diag,
    instance::{BfdSettings, Identity},
    tracking::{TrackedInterface, TrackedScript},
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, good enough to shuffle events.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn centis(n: u16) -> Interval {
    Interval::from_centis(n).unwrap()
}

/// BFD as a `bfd = { interval = ... }` table gives it: the other defaults.
fn bfd(interval_ms: u64) -> BfdSettings {
    BfdSettings {
        peers: Vec::new(),
        interval: Duration::from_millis(interval_ms),
        multiplier: 3,
        echo: true,
        control_interval: Duration::from_secs(1),
        notify: None,
    }
}

/// "gw" on eth0 (VRID 51, priority 150, 10 ms, tracking up0 at -100 and a script at
/// weight 0, BFD at 1 ms) and "out" on eth1 (VRID 52, priority 120, 20 ms), both in sync
/// group "edge" with `sync`.
fn config(sync: bool) -> Vec<Instance> {
    let v4 = |name: &str, interface: &str, vrid: u8| {
        Instance::new(
            name,
            Identity::new(interface, vrid, Family::Ipv4, Version::V3),
        )
    };
    let mut gw = v4("gw", "eth0", 51).with_vip("192.0.2.1".parse().unwrap());
    gw.priority = 150;
    gw.advert_interval = centis(1);
    gw.tracking.interfaces.push(TrackedInterface {
        name: "up0".into(),
        weight: -100,
        reverse: false,
    });
    gw.tracking.scripts.push(TrackedScript {
        key: "/bin/check".into(),
        weight: 0,
        reverse: false,
        init_fail: false,
    });
    gw.bfd = Some(bfd(1));
    let mut out = v4("out", "eth1", 52).with_vip("198.51.100.1".parse().unwrap());
    out.priority = 120;
    out.advert_interval = centis(2);
    if sync {
        gw.sync_group = Some("edge".into());
        out.sync_group = Some("edge".into());
    }
    vec![gw, out]
}

fn group(members: Vec<Instance>) -> Group {
    let src: IpAddr = "192.0.2.11".parse().unwrap();
    let setups = members
        .into_iter()
        .map(|cfg| MemberSetup { cfg, src })
        .collect();
    Group::new(
        setups,
        Params {
            clock_lag: Duration::from_micros(4500),
            takeover_guard: Duration::from_micros(1500),
        },
    )
    .expect("valid machines")
}

fn random_input(rng: &mut Rng, members: usize) -> Input {
    let member = rng.below(members as u64) as usize;
    let peer: IpAddr = ["192.0.2.5", "192.0.2.12", "192.0.2.200"][rng.below(3) as usize]
        .parse()
        .unwrap();
    let vrid = [51, 52][member];
    match rng.below(100) {
        0..=54 => Input::Advert {
            member,
            src: peer,
            ttl: if rng.below(20) == 0 { 64 } else { 255 },
            advert: Advert::v3(
                vrid,
                [0, 100, 130, 150, 200, 255][rng.below(6) as usize],
                Interval::from_centis(1 + rng.below(3) as u16).unwrap(),
                vec![],
            ),
        },
        55..=64 => Input::Link {
            name: ["eth0", "eth1", "up0"][rng.below(3) as usize].into(),
            up: rng.below(2) == 0,
        },
        65..=74 => Input::Track {
            member: 0,
            item: TrackItem::Script {
                index: 0,
                ok: rng.below(3) != 0,
            },
        },
        75..=84 => Input::Released {
            vrid,
            src: peer,
            priority: 200,
            interval: Interval::from_centis(1).unwrap(),
        },
        85..=92 => Input::Conflict {
            vip: "192.0.2.1".parse().unwrap(),
        },
        93..=95 => Input::Bfd {
            member,
            peer,
            up: rng.below(2) == 0,
            diag: [Diag::EchoFunctionFailed, Diag::ControlDetectionTimeExpired]
                [rng.below(2) as usize],
            slow_rtt: Some(Duration::from_micros(rng.below(5000))),
        },
        96 => Input::Demotion {
            member,
            by: [0, 30, 120][rng.below(3) as usize],
        },
        97 => Input::Handover,
        98 => Input::Yield {
            member,
            yielding: false,
        },
        _ => Input::Shutdown,
    }
}

/// A reload of the running group: every member kept, with a new priority, interval or
/// one more VIP.
fn reshaped(rng: &mut Rng, g: &Group) -> Vec<Incoming> {
    (0..g.members().len())
        .map(|i| {
            let (machine, member) = g.carry(i).expect("member");
            let mut cfg = member.cfg.clone();
            match rng.below(3) {
                0 => cfg.priority = [90, 150, 200][rng.below(3) as usize],
                1 => cfg.advert_interval = centis(1 + rng.below(2) as u16),
                _ => cfg = cfg.with_vip("192.0.2.9".parse().unwrap()),
            }
            Incoming::Kept {
                machine,
                setup: MemberSetup {
                    cfg,
                    src: member.src,
                },
                member,
                initial: Vec::new(),
            }
        })
        .collect()
}

/// What the data plane would hold after `outs`, applied to `slot`.
fn apply(slot: &mut Option<(Time, u8)>, outs: &[Output]) {
    for o in outs {
        match o {
            Output::Own {
                until, yield_above, ..
            } => *slot = Some((*until, *yield_above)),
            Output::Release => *slot = None,
            _ => {}
        }
    }
}

fn check(g: &Group, slot: Option<(Time, u8)>, now: Time, seed: u64, step: usize) {
    let masters = (0..g.members().len())
        .filter(|i| g.machine(*i).is_some_and(|m| m.state() == State::Master))
        .count();
    let ctx = format!("seed {seed} step {step} at {now}");
    // Status says master exactly while the data plane answers, but for the takeover
    // guard (master, not yet answering) and a planned handover (answering, resigned).
    if masters > 0 && g.own_at.is_none() {
        assert!(
            g.owned() && slot.is_some(),
            "{ctx}: master but not answering"
        );
    }
    if slot.is_some() && !g.handover_pending() {
        assert!(masters > 0, "{ctx}: answering with no master");
    }
    if let Some((until, _)) = slot {
        assert!(
            until.saturating_duration_since(now) <= g.lease_len(),
            "{ctx}: lease beyond Master_Down_Interval: {:?} > {:?}, handover {:?}",
            until.saturating_duration_since(now),
            g.lease_len(),
            g.handover
        );
    }
}

fn run(seed: u64, sync: bool) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut g = group(config(sync));
    let members = g.members().len();
    let mut slot = None;
    let mut now = Time::ZERO;
    apply(
        &mut slot,
        &g.handle(
            now,
            Input::Start {
                resume: false,
                delay: Duration::ZERO,
            },
        ),
    );
    for step in 0..400 {
        // Either the next timer, or an input somewhat before it.
        let next = g.poll_at();
        let jump = Duration::from_micros(rng.below(30_000));
        match next {
            Some(t) if t <= now + jump => {
                now = now.max(t);
                apply(&mut slot, &g.poll(now));
            }
            _ if rng.below(100) < 3 => {
                now = now + jump;
                let incoming = reshaped(&mut rng, &g);
                apply(
                    &mut slot,
                    &g.reshape(now, incoming).expect("same identities"),
                );
            }
            _ => {
                now = now + jump;
                let input = random_input(&mut rng, members);
                let stop = matches!(input, Input::Shutdown);
                apply(&mut slot, &g.handle(now, input));
                if stop {
                    // Carry the handover to its end, then start a fresh group.
                    while let Some(t) = g.poll_at() {
                        now = now.max(t);
                        apply(&mut slot, &g.poll(now));
                        check(&g, slot, now, seed, step);
                        if !g.handover_pending() {
                            break;
                        }
                    }
                    assert!(slot.is_none(), "seed {seed}: handover ended answering");
                    g = group(config(sync));
                    apply(
                        &mut slot,
                        &g.handle(
                            now,
                            Input::Start {
                                resume: false,
                                delay: Duration::ZERO,
                            },
                        ),
                    );
                }
            }
        }
        check(&g, slot, now, seed, step);
    }
}

/// Streams of adverts, link and tracking changes, releases, BFD, demotions, handovers,
/// reloads in place and shutdowns.
#[test]
fn random_streams_never_leave_status_and_data_plane_disagreeing() {
    for seed in 0..300 {
        run(seed, false);
        run(seed, true);
    }
}

#[test]
fn a_release_by_the_data_plane_is_never_written_back() {
    let mut g = group(config(false));
    let mut slot = None;
    apply(
        &mut slot,
        &g.handle(
            Time::ZERO,
            Input::Start {
                resume: false,
                delay: Duration::ZERO,
            },
        ),
    );
    let mut now = Time::ZERO;
    while slot.is_none() {
        now = g.poll_at().expect("a timer is armed");
        apply(&mut slot, &g.poll(now));
    }
    let outs = g.handle(
        now,
        Input::Released {
            vrid: 51,
            src: "192.0.2.12".parse().unwrap(),
            priority: 200,
            interval: Interval::from_centis(1).unwrap(),
        },
    );
    assert!(!outs.iter().any(|o| matches!(o, Output::Own { .. })));
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Transition {
            to: State::Backup,
            reason: Reason::ReleasedByDataPlane { .. },
            ..
        }
    )));
    assert!(!g.owned());
}

/// A lone backup with BFD (`bfd`), following a master at 192.0.2.5 (priority 200) whose
/// session is Up; returns the group and the time.
fn following_with_bfd() -> (Group, Time) {
    let mut gw = Instance::new("gw", Identity::new("eth0", 51, Family::Ipv4, Version::V3))
        .with_vip("192.0.2.1".parse().unwrap());
    gw.priority = 150;
    gw.advert_interval = centis(1);
    gw.bfd = Some(bfd(1));
    let mut g = group(vec![gw]);
    let start = Input::Start {
        resume: false,
        delay: Duration::ZERO,
    };
    g.handle(Time::ZERO, start);
    let now = Time::ZERO + Duration::from_millis(5);
    let master: IpAddr = "192.0.2.5".parse().unwrap();
    let advert = Advert::v3(51, 200, Interval::from_centis(1).unwrap(), vec![]);
    g.handle(
        now,
        Input::Advert {
            member: 0,
            src: master,
            ttl: 255,
            advert,
        },
    );
    let up = Input::Bfd {
        member: 0,
        peer: master,
        up: true,
        diag: Diag::None,
        slow_rtt: Some(Duration::ZERO),
    };
    assert!(g.handle(now, up).is_empty());
    (g, now)
}

fn became(outs: &[Output], to: State) -> Option<Reason> {
    outs.iter().find_map(|o| match o {
        Output::Transition {
            to: t, reason: r, ..
        } if *t == to => Some(r.clone()),
        _ => None,
    })
}

/// Runs every timer up to `until`, collecting the outputs.
fn run_until(g: &mut Group, until: Time) -> Vec<Output> {
    let mut outs = Vec::new();
    while let Some(t) = g.poll_at().filter(|t| *t <= until) {
        outs.extend(g.poll(t));
    }
    outs
}

#[test]
fn a_backup_holds_while_its_session_to_the_master_is_up() {
    let (mut g, now) = following_with_bfd();
    // A hundred Master_Down_Intervals of silence (a frozen daemon whose data plane still
    // loops echoes back): no takeover.
    let outs = run_until(&mut g, now + Duration::from_secs(4));
    assert_eq!(became(&outs, State::Master), None, "{outs:?}");
    assert_eq!(g.machine(0).unwrap().state(), State::Backup);
}

#[test]
fn without_a_session_silence_still_means_takeover() {
    let (mut g, now) = following_with_bfd();
    let master: IpAddr = "192.0.2.5".parse().unwrap();
    // A session to someone else says nothing about the master.
    let other: IpAddr = "192.0.2.6".parse().unwrap();
    g.handle(
        now,
        Input::Bfd {
            member: 0,
            peer: master,
            up: false,
            diag: Diag::ControlDetectionTimeExpired,
            slow_rtt: Some(Duration::ZERO),
        },
    );
    let g2 = &mut g;
    g2.handle(
        now,
        Input::Bfd {
            member: 0,
            peer: other,
            up: true,
            diag: Diag::None,
            slow_rtt: Some(Duration::ZERO),
        },
    );
    let outs = run_until(g2, now + Duration::from_millis(100));
    assert!(became(&outs, State::Master).is_some(), "{outs:?}");
}

#[test]
fn a_false_down_is_answered_by_the_live_master_without_a_transition() {
    let (mut g, now) = following_with_bfd();
    let master: IpAddr = "192.0.2.5".parse().unwrap();
    let at = now + Duration::from_millis(2);
    let outs = g.handle(
        at,
        Input::Bfd {
            member: 0,
            peer: master,
            up: false,
            diag: Diag::EchoFunctionFailed,
            slow_rtt: Some(Duration::ZERO),
        },
    );
    assert!(outs.is_empty(), "{outs:?}");
    // Skew: (256 - 150) / 256 of 1 ms, then a probe, still as backup.
    let skew = Duration::from_nanos(1_000_000 * 106 / 256);
    assert_eq!(g.poll_at(), Some(at + skew));
    let outs = g.poll(at + skew);
    assert_eq!(
        outs,
        vec![Output::Probe {
            member: 0,
            priority: 150
        }]
    );
    // The master is alive: it answers within the window (RFC 9568 §6.4.3).
    let answer = Advert::v3(51, 200, Interval::from_centis(1).unwrap(), vec![]);
    let outs = g.handle(
        at + skew + Duration::from_micros(300),
        Input::Advert {
            member: 0,
            src: master,
            ttl: 255,
            advert: answer,
        },
    );
    let later = run_until(&mut g, at + Duration::from_millis(30));
    assert!(
        !outs
            .iter()
            .chain(&later)
            .any(|o| matches!(o, Output::Own { .. } | Output::Transition { .. })),
        "a false down moved something: {outs:?} {later:?}"
    );
    assert_eq!(g.machine(0).unwrap().state(), State::Backup);
}

#[test]
fn a_slow_path_gets_a_longer_probe_window() {
    let (mut g, now) = following_with_bfd();
    let master: IpAddr = "192.0.2.5".parse().unwrap();
    g.handle(
        now,
        Input::Bfd {
            member: 0,
            peer: master,
            up: false,
            diag: Diag::EchoFunctionFailed,
            slow_rtt: Some(Duration::from_millis(4)),
        },
    );
    let sent = g.poll_at().unwrap();
    assert!(matches!(g.poll(sent)[..], [Output::Probe { .. }]));
    // Twice the slowest recent round trip, not the 1.5 ms guard.
    assert_eq!(g.poll_at(), Some(sent + Duration::from_millis(8)));
}

#[test]
fn a_dead_master_is_taken_over_after_skew_and_guard() {
    let (mut g, now) = following_with_bfd();
    let master: IpAddr = "192.0.2.5".parse().unwrap();
    let down = Input::Bfd {
        member: 0,
        peer: master,
        up: false,
        diag: Diag::EchoFunctionFailed,
        slow_rtt: Some(Duration::ZERO),
    };
    g.handle(now, down);
    // Skew (0.41 ms) + the probe window (the 1.5 ms guard): answering, once.
    let outs = run_until(&mut g, now + Duration::from_micros(1950));
    assert!(outs.iter().any(|o| matches!(o, Output::Probe { .. })));
    assert_eq!(
        became(&outs, State::Master),
        Some(Reason::BfdDown { from: master })
    );
    assert_eq!(
        outs.iter()
            .filter(|o| matches!(o, Output::Own { .. }))
            .count(),
        1,
        "{outs:?}"
    );
    assert!(g.owned());
}

#[test]
fn control_silence_alone_is_judged_like_advert_silence() {
    // The master's daemon stopped sending Control packets (without the Echo function a
    // 3 x 10 ms detection is shorter than Master_Down_Interval). The backup does not act
    // before Master_Down_Interval since the last advert, by when the old master's lease
    // (never longer than that) has lapsed.
    let (mut g, last_advert) = following_with_bfd();
    let master: IpAddr = "192.0.2.5".parse().unwrap();
    let mdi = g.machine(0).unwrap().master_down_interval();
    let down = Input::Bfd {
        member: 0,
        peer: master,
        up: false,
        diag: Diag::ControlDetectionTimeExpired,
        slow_rtt: Some(Duration::ZERO),
    };
    assert!(
        g.handle(last_advert + Duration::from_millis(20), down)
            .is_empty()
    );
    let outs = run_until(&mut g, last_advert + (mdi - Duration::from_micros(100)));
    assert_eq!(became(&outs, State::Master), None, "acted before MDI");
    let outs = run_until(&mut g, last_advert + mdi);
    assert_eq!(
        became(&outs, State::Master),
        Some(Reason::MasterDownTimerExpired)
    );
}

#[test]
fn after_a_stall_a_down_ends_the_hold_and_master_down_interval_decides() {
    // The session reports no quick probe can settle it (the path stalled lately): no
    // probe, no BFD takeover; silence since the last advert decides, as without BFD.
    let (mut g, last_advert) = following_with_bfd();
    let master: IpAddr = "192.0.2.5".parse().unwrap();
    let mdi = g.machine(0).unwrap().master_down_interval();
    let down = Input::Bfd {
        member: 0,
        peer: master,
        up: false,
        diag: Diag::EchoFunctionFailed,
        slow_rtt: None,
    };
    assert!(
        g.handle(last_advert + Duration::from_millis(3), down)
            .is_empty()
    );
    let outs = run_until(&mut g, last_advert + (mdi - Duration::from_micros(100)));
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Output::Probe { .. } | Output::Transition { .. })),
        "{outs:?}"
    );
    let outs = run_until(&mut g, last_advert + mdi);
    assert_eq!(
        became(&outs, State::Master),
        Some(Reason::MasterDownTimerExpired)
    );
}

#[test]
fn a_suspect_path_whose_echoes_come_back_answers_the_probe() {
    let (mut g, now) = following_with_bfd();
    let master: IpAddr = "192.0.2.5".parse().unwrap();
    let bfd = |up| Input::Bfd {
        member: 0,
        peer: master,
        up,
        diag: Diag::EchoFunctionFailed,
        slow_rtt: Some(Duration::ZERO),
    };
    g.handle(now, bfd(false));
    let sent = g.poll_at().unwrap();
    assert!(matches!(g.poll(sent)[..], [Output::Probe { .. }]));
    // The held echoes arrive within the window: the master's host and the path work.
    g.handle(sent + Duration::from_millis(1), bfd(true));
    let outs = run_until(&mut g, now + Duration::from_millis(30));
    assert_eq!(became(&outs, State::Master), None, "{outs:?}");
    let c = &g.members()[0].counters;
    assert_eq!((c.bfd_probes, c.bfd_probes_answered), (1, 1));
    // And it holds again: silence alone does not make it master.
    let outs = run_until(&mut g, now + Duration::from_secs(1));
    assert_eq!(became(&outs, State::Master), None, "{outs:?}");
}
