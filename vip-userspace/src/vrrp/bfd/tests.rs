//! The session machine: two sessions talking to each other on a virtual clock, and the
//! replay cases in `tests/conformance/bfd/` (one stream file per scenario: up, down by
//! timeout, down by the peer, admin down, parameter change, echo failure).

use std::path::Path;

use serde_json::{Value, json};

use super::{
    packet::{BfdState, Control, Diag, Echo},
    *,
};
use crate::vrrp::replay::{Res, Stream, at, check_dir, field, line, ms, u64_of};

fn params(echo: bool) -> Params {
    Params {
        interval: Duration::from_millis(1),
        detect_mult: 3,
        echo,
        control_interval: Duration::from_millis(100),
    }
}

/// What a session reported, in the order it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    To(BfdState),
    Suspect,
    Restored,
}

type Events = Vec<(Time, usize, Ev)>;

/// How the simulated pair is disturbed.
#[derive(Clone, Copy, Default)]
struct Trouble {
    /// A window in which that session's daemon does not run at all (descheduled): its
    /// timers and the packets that reach it wait for the window's end, where, as the
    /// daemon does, it reads what arrived before its timers fire.
    stalled: [Option<(Time, Time)>; 2],
    /// A window in which the path holds every packet (a loaded host not getting to its
    /// packets): whatever is in flight then arrives when it ends.
    path_stall: Option<(Time, Time)>,
}

/// Runs two sessions wired to each other until `end`: `silent(t, who)` says whose daemon
/// sends nothing at `t` (its Control packets vanish; its XDP still loops echoes),
/// `cut(t)` whether the path between them is down. Returns the state changes.
fn pair(
    end: Time,
    silent: impl Fn(Time, usize) -> bool,
    cut: impl Fn(Time) -> bool,
) -> (Session, Session, Events) {
    pair_troubled(end, silent, cut, Trouble::default())
}

/// As [`pair`], with a daemon descheduled for `stall(who)`.
fn pair_stalled(
    end: Time,
    silent: impl Fn(Time, usize) -> bool,
    cut: impl Fn(Time) -> bool,
    stall: impl Fn(usize) -> Option<(Time, Time)>,
) -> (Session, Session, Events) {
    pair_with(end, silent, cut, stall, |_, _| {})
}

/// As [`pair_stalled`], and `tweak(now, sessions)` runs before each step (a reload
/// retuning a session at some moment).
fn pair_with(
    end: Time,
    silent: impl Fn(Time, usize) -> bool,
    cut: impl Fn(Time) -> bool,
    stall: impl Fn(usize) -> Option<(Time, Time)>,
    tweak: impl FnMut(Time, &mut [Session; 2]),
) -> (Session, Session, Events) {
    let trouble = Trouble {
        stalled: [stall(0), stall(1)],
        path_stall: None,
    };
    run(end, silent, cut, trouble, tweak)
}

fn pair_troubled(
    end: Time,
    silent: impl Fn(Time, usize) -> bool,
    cut: impl Fn(Time) -> bool,
    trouble: Trouble,
) -> (Session, Session, Events) {
    run(end, silent, cut, trouble, |_, _| {})
}

fn run(
    end: Time,
    silent: impl Fn(Time, usize) -> bool,
    cut: impl Fn(Time) -> bool,
    trouble: Trouble,
    mut tweak: impl FnMut(Time, &mut [Session; 2]),
) -> (Session, Session, Events) {
    let mut s = [
        Session::new(params(true), 11, 0x1111, Time::ZERO),
        Session::new(params(true), 22, 0x2222, Time::from_micros(300)),
    ];
    let runs_at = |who: usize, t: Time| match trouble.stalled[who] {
        Some((from, to)) if t >= from && t < to => to,
        _ => t,
    };
    // A packet due at `t` on the path arrives then, or when a path stall over it ends.
    let delivered = |t: Time| match trouble.path_stall {
        Some((from, to)) if t >= from && t < to => to,
        _ => t,
    };
    let mut events = Vec::new();
    let mut now = Time::ZERO;
    // Packets in flight: (arrival, to, input).
    let mut wire: Vec<(Time, usize, Input)> = Vec::new();
    loop {
        let next = s
            .iter()
            .enumerate()
            .filter_map(|(i, x)| x.poll_at().map(|t| runs_at(i, t)))
            .chain(wire.iter().map(|(t, to, _)| runs_at(*to, *t)))
            .min();
        let Some(t) = next else { break };
        if t > end {
            break;
        }
        now = now.max(t);
        tweak(now, &mut s);
        let mut outs: Vec<(usize, Output)> = Vec::new();
        if let Some(i) = wire.iter().position(|(t, to, _)| runs_at(*to, *t) <= now) {
            let (_, to, input) = wire.remove(i);
            outs.extend(s[to].handle(now, input).into_iter().map(|o| (to, o)));
        } else {
            for (i, sess) in s.iter_mut().enumerate() {
                if sess.poll_at().is_some_and(|t| runs_at(i, t) <= now) {
                    outs.extend(sess.poll(now).into_iter().map(|o| (i, o)));
                }
            }
        }
        for (from, o) in outs {
            let arrive = delivered(now + Duration::from_micros(50));
            match o {
                Output::SendControl(c) if !silent(now, from) && !cut(now) => {
                    wire.push((arrive, 1 - from, Input::Control(c)));
                }
                // Echoes go to the peer and come straight back (its XDP loops them); the
                // kernel stamps them when they arrive, whenever the daemon reads them.
                Output::SendEcho(e) if !silent(now, from) && !cut(now) => {
                    let back = delivered(arrive + Duration::from_micros(50));
                    wire.push((
                        back,
                        from,
                        Input::Echo {
                            echo: e,
                            arrived: back,
                        },
                    ));
                }
                Output::Changed { to, .. } => events.push((now, from, Ev::To(to))),
                Output::EchoSuspect => events.push((now, from, Ev::Suspect)),
                Output::EchoRestored => events.push((now, from, Ev::Restored)),
                _ => {}
            }
        }
    }
    let [a, b] = s;
    (a, b, events)
}

/// When `who` first reported `ev` at or after `since`.
fn first(events: &Events, since: Time, who: usize, ev: Ev) -> Option<Time> {
    events
        .iter()
        .find(|(t, w, e)| *t >= since && *w == who && *e == ev)
        .map(|(t, _, _)| *t)
}

#[test]
fn two_sessions_come_up_and_negotiate_their_rates() {
    let (a, b, events) = pair(Time::from_millis(3000), |_, _| false, |_| false);
    assert_eq!(a.state(), BfdState::Up);
    assert_eq!(b.state(), BfdState::Up);
    // Down → Init → Up on one side, Down → Up on the other, within the slow start.
    assert!(events.len() <= 4, "{events:?}");
    assert!(events.iter().all(|(t, _, _)| *t < Time::from_millis(2100)));
    // Echo runs, so Control packets slow to the control interval and detection follows.
    assert_eq!(a.detection_time(), Duration::from_millis(300));
    assert_eq!(a.echo_detection_time(), Some(Duration::from_millis(3)));
}

/// A reload retunes both ends of an Up session (echoes every 1 ms → 2 ms, Control
/// packets every 100 ms → 200 ms, multiplier 3 → 4): a Poll sequence carries the new
/// rates, the session never leaves Up, and the new detection times apply.
#[test]
fn a_session_retuned_by_a_reload_stays_up_and_takes_on_the_new_rates() {
    let at = Time::from_millis(3000);
    let new = Params {
        interval: Duration::from_millis(2),
        detect_mult: 4,
        echo: true,
        control_interval: Duration::from_millis(200),
    };
    let mut done = false;
    let (a, b, changes) = pair_with(
        Time::from_millis(4000),
        |_, _| false,
        |_| false,
        |_| None,
        |now, s| {
            if now >= at && !done {
                done = true;
                assert_eq!(s[0].state(), BfdState::Up);
                s[0].retune(now, new);
                s[1].retune(now, new);
            }
        },
    );
    assert!(
        changes.iter().all(|(t, _, _)| *t < at),
        "no state change after the retune: {changes:?}"
    );
    assert_eq!((a.state(), b.state()), (BfdState::Up, BfdState::Up));
    assert_eq!(a.detection_time(), Duration::from_millis(800));
    assert_eq!(a.echo_detection_time(), Some(Duration::from_millis(8)));
    assert_eq!(*a.params(), new);
}

#[test]
fn a_dead_path_is_suspect_within_the_detection_time_and_down_after_confirmation() {
    let cut = Time::from_millis(3000);
    let (a, _, events) = pair(Time::from_millis(3100), |_, _| false, |t| t >= cut);
    assert_eq!(a.state(), BfdState::Down);
    let suspect = first(&events, cut, 0, Ev::Suspect).expect("a suspected the path");
    let took = suspect.saturating_duration_since(cut);
    assert!(took <= Duration::from_millis(4), "suspected after {took:?}");
    // Nothing came back: down once the confirmation window is over, not before.
    let down = first(&events, cut, 0, Ev::To(BfdState::Down)).expect("a went down");
    assert_eq!(down, suspect + a.confirm_window());
    assert_eq!(a.diag(), Diag::EchoFunctionFailed);
    assert!(first(&events, cut, 0, Ev::Restored).is_none());
}

#[test]
fn a_path_that_stalls_is_suspect_then_cleared_by_the_late_echoes() {
    // The path holds every packet for 4 ms (a host that did not get to them), then
    // delivers them: suspect after the detection time, cleared when the held echoes
    // arrive, the session Up throughout, and the stall remembered.
    let from = Time::from_millis(3000);
    let trouble = Trouble {
        path_stall: Some((from, from + Duration::from_millis(4))),
        ..Trouble::default()
    };
    let (a, _, events) = pair_troubled(Time::from_millis(3100), |_, _| false, |_| false, trouble);
    assert_eq!(a.state(), BfdState::Up, "{events:?}");
    let suspect = first(&events, from, 0, Ev::Suspect).expect("a suspected the path");
    let restored = first(&events, from, 0, Ev::Restored).expect("the late echoes cleared it");
    assert!(
        restored > suspect && restored <= from + Duration::from_micros(4100),
        "{events:?}"
    );
    assert!(first(&events, from, 0, Ev::To(BfdState::Down)).is_none());
    assert!(a.stalled_lately(Time::from_millis(3100)));
    assert!(!a.stalled_lately(Time::from_millis(3100) + STALL_MEMORY));
    // Status shows how long ago: the stall ended with the held echoes, about 4 ms in.
    let ago = a.stalled_ago(Time::from_millis(3100)).expect("remembered");
    assert!(
        (Duration::from_millis(90)..=Duration::from_millis(100)).contains(&ago),
        "{ago:?}"
    );
    assert_eq!(a.stalled_ago(Time::from_millis(3100) + STALL_MEMORY), None);
    // A stall that outlasts the confirmation window is a failure as far as BFD can tell.
    let trouble = Trouble {
        path_stall: Some((from, from + Duration::from_millis(30))),
        ..Trouble::default()
    };
    let (_, _, events) = pair_troubled(Time::from_millis(3100), |_, _| false, |_| false, trouble);
    let suspect = first(&events, from, 0, Ev::Suspect).expect("suspect");
    assert_eq!(
        first(&events, from, 0, Ev::To(BfdState::Down)),
        Some(suspect + Duration::from_millis(6))
    );
}

#[test]
fn echoes_late_or_read_late_by_the_grace_are_remembered_as_a_stall() {
    let mut s = Session::new(params(true), 7, 9, Time::ZERO);
    let up = |state| Control {
        diag: Diag::None,
        state,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        detect_mult: 3,
        my_disc: 99,
        your_disc: 7,
        desired_min_tx: 100_000,
        required_min_rx: 100_000,
        required_min_echo_rx: 1_000,
    };
    let t0 = Time::from_millis(10);
    s.handle(t0, Input::Control(up(BfdState::Init)));
    s.set_echo(t0, true);
    let sent = |s: &mut Session, t: Time| -> Echo {
        s.poll(t)
            .into_iter()
            .find_map(|o| match o {
                Output::SendEcho(e) => Some(e),
                _ => None,
            })
            .expect("an echo left")
    };
    // The grace: (3 - 1) × 1 ms. Back in 1.9 ms and read 1.9 ms after that: slow, but
    // no stall.
    let e = sent(&mut s, t0);
    let back = t0 + Duration::from_micros(1900);
    let read = back + Duration::from_micros(1900);
    s.handle(
        read,
        Input::Echo {
            echo: e,
            arrived: back,
        },
    );
    assert!(!s.stalled_lately(read));
    // Back in 0.3 ms but read 2 ms later (this host kept the daemon from it).
    let t1 = read;
    let e = sent(&mut s, t1);
    let back = t1 + Duration::from_micros(300);
    let read = back + Duration::from_millis(2);
    s.handle(
        read,
        Input::Echo {
            echo: e,
            arrived: back,
        },
    );
    assert!(s.stalled_lately(read));
    assert!(!s.stalled_lately(read + STALL_MEMORY));
    // A fresh session: an echo whose round trip is the whole grace.
    let mut s = Session::new(params(true), 7, 9, Time::ZERO);
    s.handle(t0, Input::Control(up(BfdState::Init)));
    s.set_echo(t0, true);
    let e = sent(&mut s, t0);
    let back = t0 + Duration::from_millis(2);
    s.handle(
        back,
        Input::Echo {
            echo: e,
            arrived: back,
        },
    );
    assert!(s.stalled_lately(back));
}

#[test]
fn an_end_that_could_not_send_does_not_mistake_its_own_silence_for_the_path() {
    // a's daemon is descheduled (it sends no echo and reads nothing meanwhile), for
    // stalls that end just before, at and after its detection time, wherever they fall
    // in the echo cycle. Its echoes were all answered before, and its first echo
    // afterwards comes straight back: no evidence against the path, so it stays up.
    for start_us in (0..1000).step_by(200) {
        for len_us in (1500..=3500).step_by(250).chain([20_000]) {
            let from = Time::from_millis(3000) + Duration::from_micros(start_us);
            let stall = (from, from + Duration::from_micros(len_us));
            let (a, _, events) = pair_stalled(
                Time::from_millis(3030),
                |_, _| false,
                |_| false,
                |who| (who == 0).then_some(stall),
            );
            assert_eq!(a.state(), BfdState::Up, "stall {stall:?}: {events:?}");
            // Not even suspect.
            assert!(
                events.iter().all(|(t, _, _)| *t < stall.0),
                "stall {stall:?}: {events:?}"
            );
        }
    }
    let stall = (Time::from_millis(3000), Time::from_millis(3020));
    // The same stall with the path cut when it ends is still found at once: the first
    // echo after it is the evidence, one interval later.
    let (a, _, events) = pair_stalled(
        Time::from_millis(3100),
        |_, _| false,
        |t| t >= stall.1,
        |who| (who == 0).then_some(stall),
    );
    assert_eq!(a.diag(), Diag::EchoFunctionFailed);
    let t = first(&events, stall.1, 0, Ev::Suspect).expect("a suspected the path");
    assert!(
        t.saturating_duration_since(stall.1) <= Duration::from_millis(2),
        "suspected after {:?}",
        t.saturating_duration_since(stall.1)
    );
}

#[test]
fn a_silent_control_plane_is_detected_only_by_control_packets() {
    // b's daemon is frozen: its control packets stop, its XDP still loops a's echoes.
    let freeze = Time::from_millis(3000);
    let silent = |t: Time, who| t >= freeze && who == 1;
    let (a, _, events) = pair(Time::from_millis(3190), silent, |_| false);
    // The last Control packet came up to 100 ms before the freeze, so up to 200 ms after
    // it the 300 ms control detection time has not run out: still up, whatever the
    // 1 ms echoes would say of a frozen daemon.
    assert_eq!(a.state(), BfdState::Up, "{events:?}");
    // Past it, the silent control plane takes the session down (diag 1).
    let (a, _, _) = pair(Time::from_millis(3400), silent, |_| false);
    assert_eq!(a.state(), BfdState::Down);
    assert_eq!(a.diag(), Diag::ControlDetectionTimeExpired);
}

// ---- replays ----

struct BfdDriver {
    session: Session,
    now: Time,
}

fn control_of(v: &Value) -> Res<Control> {
    let state = match v.get("state").and_then(Value::as_str).unwrap_or("down") {
        "admin-down" => BfdState::AdminDown,
        "down" => BfdState::Down,
        "init" => BfdState::Init,
        "up" => BfdState::Up,
        s => return Err(format!("state {s}")),
    };
    let us = |k: &str, d: u64| v.get(k).and_then(Value::as_u64).unwrap_or(d) as u32;
    Ok(Control {
        diag: Diag::None,
        state,
        poll: v.get("poll").and_then(Value::as_bool).unwrap_or(false),
        final_: v.get("final").and_then(Value::as_bool).unwrap_or(false),
        cpi: false,
        demand: false,
        detect_mult: us("mult", 3) as u8,
        my_disc: us("my_disc", 99),
        your_disc: us("your_disc", 0),
        desired_min_tx: us("tx_us", 1_000_000),
        required_min_rx: us("rx_us", 1_000),
        required_min_echo_rx: us("echo_rx_us", 0),
    })
}

fn describe(o: &Output) -> Value {
    match o {
        Output::SendControl(c) => json!({"send_control": {
            "state": c.state.to_string(), "diag": c.diag.to_string(), "poll": c.poll,
            "final": c.final_, "your_disc": c.your_disc, "tx_us": c.desired_min_tx,
            "rx_us": c.required_min_rx, "echo_rx_us": c.required_min_echo_rx}}),
        Output::SendEcho(e) => json!({"send_echo": {"seq": e.seq}}),
        Output::Changed { from, to, diag } => json!({"changed": {
            "from": from.to_string(), "to": to.to_string(), "diag": diag.to_string()}}),
        Output::EchoSuspect => json!({"echo_path": "suspect"}),
        Output::EchoRestored => json!({"echo_path": "restored"}),
    }
}

impl Stream for BfdDriver {
    fn advance(&mut self, t: Time, out: &mut Vec<String>) {
        while let Some(d) = self.session.poll_at() {
            if d > t {
                break;
            }
            self.now = self.now.max(d);
            for o in self.session.poll(self.now) {
                out.push(line(ms(self.now), "out", &describe(&o)));
            }
        }
        self.now = self.now.max(t);
    }

    fn input(&mut self, input: &Value, out: &mut Vec<String>) -> Res<()> {
        let (kind, v) = input
            .as_object()
            .and_then(|o| o.iter().next())
            .ok_or("an input is an object with one key")?;
        let i = match kind.as_str() {
            "control" => Input::Control(control_of(v)?),
            "echo" => Input::Echo {
                echo: Echo {
                    disc: self.session.local_disc(),
                    seq: u64_of(v, "seq")? as u32,
                    // A forged echo (`"forged": true`) has everything but the nonce.
                    nonce: if v.get("forged").and_then(Value::as_bool) == Some(true) {
                        !self.session.nonce()
                    } else {
                        self.session.nonce()
                    },
                },
                arrived: self.now,
            },
            "admin_down" => Input::AdminDown,
            "admin_up" => Input::AdminUp,
            "advance" => return Ok(()),
            other => return Err(format!("unknown input {other}")),
        };
        for o in self.session.handle(self.now, i) {
            out.push(line(ms(self.now), "out", &describe(&o)));
        }
        Ok(())
    }
}

#[test]
fn bfd_conformance_scenarios_replay_exactly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/bfd");
    let (names, failures) = check_dir(&dir, &|_, setup| {
        let p = field(setup, "params")?;
        let ms_of = |k: &str| -> Res<Duration> {
            Ok(Duration::from_micros(
                (field(p, k)?.as_f64().ok_or(k.to_owned())? * 1000.0) as u64,
            ))
        };
        let params = Params {
            interval: ms_of("interval_ms")?,
            detect_mult: u64_of(p, "mult")? as u8,
            echo: field(p, "echo")?.as_bool().ok_or("echo")?,
            control_interval: ms_of("control_interval_ms")?,
        };
        let disc = u64_of(setup, "disc")? as u32;
        Ok(Box::new(BfdDriver {
            session: Session::new(params, disc, 0x5eed, at(0.0)),
            now: Time::ZERO,
        }))
    });
    assert!(
        names.len() >= 5,
        "scenarios in {}: {names:?}",
        dir.display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_remote_that_announces_a_faster_rate_may_send_at_the_old_one_while_it_polls() {
    // bfdd, once Up, announces 10 ms in a Poll but sends its next periodic packets at its
    // old 1 s rate until our Final reaches it: those packets, 900 ms apart, must not find
    // the session down.
    let mut s = Session::new(params(false), 7, 1, Time::ZERO);
    let c = |state, desired_ms: u32, poll| Control {
        diag: Diag::None,
        state,
        poll,
        final_: false,
        cpi: false,
        demand: false,
        detect_mult: 3,
        my_disc: 99,
        your_disc: 7,
        desired_min_tx: desired_ms * 1000,
        required_min_rx: 1000,
        required_min_echo_rx: 0,
    };
    let t0 = Time::from_millis(10);
    s.handle(t0, Input::Control(c(BfdState::Init, 1000, false)));
    assert_eq!(s.state(), BfdState::Up);
    s.handle(t0, Input::Control(c(BfdState::Up, 10, true)));
    let run_to = |s: &mut Session, until: Time| {
        while let Some(t) = s.poll_at().filter(|t| *t < until) {
            s.poll(t);
        }
    };
    let next = t0 + Duration::from_millis(900);
    run_to(&mut s, next);
    assert_eq!(s.state(), BfdState::Up, "timed out on the announced rate");
    // Our Final has not reached it yet: it polls again, still at the old rate.
    s.handle(next, Input::Control(c(BfdState::Up, 10, true)));
    let next = next + Duration::from_millis(900);
    run_to(&mut s, next);
    assert_eq!(s.state(), BfdState::Up, "timed out on a repeated Poll");
    s.handle(next, Input::Control(c(BfdState::Up, 10, false)));
    // From now on the new rate counts.
    let late = next + Duration::from_millis(40);
    while let Some(t) = s.poll_at().filter(|t| *t <= late) {
        s.poll(t);
    }
    assert_eq!(s.state(), BfdState::Down);
}

#[test]
fn a_remote_that_lowers_its_required_rx_gets_packets_at_the_new_rate_at_once() {
    // bfdd's Init asks for 1 s, its Up for 10 ms: our next packet, scheduled at 1 s when
    // we went Up on its Init, must leave within the new rate, or bfdd's 30 ms detection
    // time runs out first (the session flapped this way with bfdd).
    let p = Params {
        interval: Duration::from_millis(10),
        detect_mult: 3,
        echo: false,
        control_interval: Duration::from_secs(1),
    };
    let mut s = Session::new(p, 7, 1, Time::ZERO);
    let c = |state, rx_ms: u32, poll| Control {
        diag: Diag::None,
        state,
        poll,
        final_: false,
        cpi: false,
        demand: false,
        detect_mult: 3,
        my_disc: 99,
        your_disc: 7,
        desired_min_tx: rx_ms * 1000,
        required_min_rx: rx_ms * 1000,
        required_min_echo_rx: 50_000,
    };
    let t0 = Time::from_millis(100);
    s.handle(t0, Input::Control(c(BfdState::Init, 1000, false)));
    assert_eq!(s.state(), BfdState::Up);
    // Up goes out at once, with our Poll; the next periodic one is a second away.
    let sent = s.poll(t0);
    assert!(sent.iter().any(|o| matches!(o, Output::SendControl(_))));
    assert!(s.poll_at().unwrap() > t0 + Duration::from_millis(500));
    s.handle(t0, Input::Control(c(BfdState::Up, 10, true)));
    let next = s.poll_at().unwrap();
    assert!(
        next <= t0 + Duration::from_millis(10),
        "next packet at {next:?}"
    );
}
