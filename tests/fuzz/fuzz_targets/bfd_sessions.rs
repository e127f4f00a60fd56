//! The BFD session table under an adversary on the link (`Liveness`): a sequence of
//! Control packets (any fields, from a small pool of addresses and from arbitrary ones),
//! advertisements heard, echoes and time passing, fed to one node whose instance runs BFD
//! on one interface and names one neighbour.
//!
//! Beyond "never panics", the bounds DESIGN rule 12 sets and docs/architecture.md ("BFD")
//! states: sessions only for the named neighbour or sources heard advertising, at most
//! `LEARNED_SESSIONS_MAX` of the latter, the data plane's entries (`Output::Present`)
//! exactly the sessions that exist, and no hook or change for a session nobody follows.

#![no_main]

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use libfuzzer_sys::fuzz_target;
use vipd::vrrp::{
    Time,
    bfd::packet::{BfdState, Control, Diag, ECHO_PORT},
    instance::BfdSettings,
    liveness::{EchoIn, LEARNED_SESSIONS_MAX, Liveness, Output, Subscription},
};

const IFINDEX: u32 = 3;
const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
const NAMED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 12);

/// Bytes read one field at a time; zeros once they run out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// An address: mostly from a pool of eight (the named neighbour among them), so
    /// sequences revisit sessions; otherwise any IPv4 or IPv6 address.
    fn addr(&mut self) -> IpAddr {
        match self.u8() % 4 {
            0..=2 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 12 + self.u8() % 8)),
            _ if self.u8() & 1 == 0 => IpAddr::V4(Ipv4Addr::from(self.u32())),
            _ => IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                0,
                self.u32() as u16,
            )),
        }
    }
}

fn control(inp: &mut Input<'_>) -> Control {
    let flags = inp.u8();
    Control {
        diag: Diag::ALL[usize::from(inp.u8()) % Diag::ALL.len()],
        state: [
            BfdState::AdminDown,
            BfdState::Down,
            BfdState::Init,
            BfdState::Up,
        ][usize::from(flags & 3)],
        poll: flags & 4 != 0,
        final_: flags & 8 != 0,
        cpi: false,
        demand: flags & 16 != 0,
        detect_mult: inp.u8(),
        my_disc: inp.u32(),
        your_disc: if flags & 32 != 0 { inp.u32() } else { 0 },
        desired_min_tx: inp.u32(),
        required_min_rx: inp.u32(),
        required_min_echo_rx: inp.u32(),
    }
}

/// Follows the data plane's entries as the daemon would write them; checks each output.
fn apply(outs: Vec<Output>, present: &mut HashSet<(u32, IpAddr)>) {
    for o in outs {
        match o {
            Output::Present {
                neighbour,
                present: true,
                ..
            } => assert!(
                present.insert(neighbour),
                "a second entry for {neighbour:?}"
            ),
            Output::Present {
                neighbour,
                present: false,
                ..
            } => assert!(present.remove(&neighbour), "removed an entry never added"),
            Output::Notify { instance, .. } => assert_eq!(instance, "gw"),
            _ => {}
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    let mut inp = Input(bytes);
    let mut live = Liveness::new([7; 32]);
    let mut now = Time::from_millis(1_000);
    let named = IpAddr::V4(NAMED);
    live.subscribe(
        now,
        (1, 0),
        Some(Subscription {
            instance: "gw".into(),
            ifindex: IFINDEX,
            local: IpAddr::V4(LOCAL),
            settings: BfdSettings {
                peers: vec![named],
                interval: Duration::from_millis(10),
                multiplier: 3,
                echo: true,
                control_interval: Duration::from_secs(1),
                notify: Some(vec!["/bin/true".into()]),
            },
            peers: vec![named],
            named: vec![named],
        }),
    );
    let mut heard: HashSet<IpAddr> = HashSet::new();
    let mut present: HashSet<(u32, IpAddr)> = HashSet::new();
    apply(live.take_output(), &mut present);
    for _ in 0..256 {
        if inp.0.is_empty() {
            break;
        }
        match inp.u8() % 8 {
            0..=4 => {
                let src = inp.addr();
                let ttl = if inp.u8() % 8 == 0 { inp.u8() } else { 255 };
                let c = control(&mut inp);
                live.control(now, IFINDEX, src, ttl, c);
            }
            5 => {
                let src = inp.addr();
                heard.insert(src);
                live.heard(now, IFINDEX, src);
            }
            6 => {
                let src = inp.addr();
                let payload: Vec<u8> = (0..usize::from(inp.u8() % 24)).map(|_| inp.u8()).collect();
                let frame = EchoIn {
                    src,
                    dst: src,
                    dst_port: ECHO_PORT,
                    ttl: 255,
                    payload: &payload,
                };
                live.echo(now, IFINDEX, frame, now);
            }
            _ => {
                // Time passes: up to about a minute, past every timer and clamp.
                now = now + Duration::from_millis(u64::from(inp.u32() % 65_536));
                live.poll(now);
            }
        }
        apply(live.take_output(), &mut present);
        live.take_changes();
        // Every session is the named neighbour's or one heard advertising; the learned
        // ones are capped; the data plane lists exactly the sessions.
        let sessions: HashSet<(u32, IpAddr)> = live.sessions().map(|(n, _)| *n).collect();
        for (ifindex, src) in &sessions {
            assert_eq!(*ifindex, IFINDEX);
            assert!(
                *src == named || heard.contains(src),
                "a session for {src}, never heard"
            );
        }
        assert!(live.summary().learned <= LEARNED_SESSIONS_MAX);
        assert!(sessions.len() <= 1 + LEARNED_SESSIONS_MAX);
        assert_eq!(
            sessions, present,
            "the data plane's entries are not the sessions"
        );
    }
});
