//! CARP virtual hosts run by the node: two nodes joined by a simulated link elect one
//! master, fail over on silence and hand back with preempt; forged and replayed
//! advertisements move nothing; a CARP VHID and a VRRP VRID of one number on one link
//! are two routers.

use std::{net::IpAddr, time::Duration};

use super::{
    Family, Version,
    carp::{self, Authenticator, Key, LinkLocal, Rank, ReplayGuard, ReplayMode, Speaker},
    group::{MemberSetup, Output},
    instance::{Identity, Instance},
    machine::State,
    node::{GroupSetup, Launch, Node},
    packet::Advert,
    timing::{Interval, Time},
};

const IFX: u32 = 7;
const VHID: u8 = 51;

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip() -> IpAddr {
    addr("192.0.2.1")
}

fn carp_instance(name: &str, priority: u8, preempt: bool, key: &[u8]) -> Instance {
    let mut i = Instance::new_carp(
        name,
        Identity::carp("eth0", VHID, Family::Ipv4),
        Key::new(key).unwrap(),
    )
    .with_vip(vip());
    i.priority = priority;
    i.preempt = preempt;
    i.advert_interval = Interval::from_centis(100).unwrap();
    i
}

fn node_with(cfgs: Vec<(Instance, IpAddr)>) -> Node {
    let mut node = Node::default();
    for (cfg, src) in cfgs {
        let setup = GroupSetup {
            key: cfg.name.clone(),
            members: vec![MemberSetup { cfg, src }],
            ifindexes: vec![IFX],
        };
        node.launch(
            Time::ZERO,
            Launch {
                setup,
                initial: Vec::new(),
                resume: false,
                delay: Duration::ZERO,
            },
        )
        .expect("valid");
    }
    node
}

/// The state of the node's group named `name`.
fn state(node: &Node, name: &str) -> State {
    let id = node.by_key(name).expect("group");
    node.get(id).unwrap().group.machine(0).unwrap().state()
}

fn counters(node: &Node, name: &str) -> crate::vrrp::group::CarpCounters {
    let id = node.by_key(name).expect("group");
    node.get(id).unwrap().group.members()[0].carp_counters
}

/// Two routers on one link, adverts delivered at once while their sender is `up`.
struct Link {
    now: Time,
    nodes: [(Node, IpAddr, bool); 2],
    /// Every advertisement sent, by sender index.
    sent: Vec<(usize, carp::Advert)>,
    transitions: Vec<(usize, State, Time)>,
}

impl Link {
    fn new(a: Instance, b: Instance) -> Link {
        let (sa, sb) = (addr("192.0.2.11"), addr("192.0.2.12"));
        Link {
            now: Time::ZERO,
            nodes: [
                (node_with(vec![(a, sa)]), sa, true),
                (node_with(vec![(b, sb)]), sb, true),
            ],
            sent: Vec::new(),
            transitions: Vec::new(),
        }
    }

    fn deliver(&mut self, from: usize, outs: Vec<(u64, Output)>) {
        let mut queue: Vec<(usize, Output)> = outs.into_iter().map(|(_, o)| (from, o)).collect();
        while let Some((i, o)) = queue.pop() {
            match o {
                Output::CarpAdvert { advert, .. } => {
                    self.sent.push((i, advert));
                    let other = 1 - i;
                    if self.nodes[i].2 && self.nodes[other].2 {
                        let src = self.nodes[i].1;
                        let outs = self.nodes[other]
                            .0
                            .carp_advert(self.now, IFX, src, 255, advert);
                        queue.extend(outs.into_iter().map(|(_, o)| (other, o)));
                    }
                }
                Output::Transition { to, .. } => self.transitions.push((i, to, self.now)),
                _ => {}
            }
        }
    }

    /// Runs every timer up to `until`.
    fn run_until(&mut self, until: Time) {
        loop {
            let mut next = None;
            for i in 0..2 {
                if self.nodes[i].2
                    && let Some(t) = self.nodes[i].0.poll_at()
                {
                    next = next.min(Some((t, i))).or(Some((t, i)));
                }
            }
            match next {
                Some((t, i)) if t <= until => {
                    self.now = self.now.max(t);
                    let outs = self.nodes[i].0.poll(self.now);
                    self.deliver(i, outs);
                }
                _ => break,
            }
        }
        self.now = until;
    }

    fn states(&self, name: [&str; 2]) -> [State; 2] {
        [
            state(&self.nodes[0].0, name[0]),
            state(&self.nodes[1].0, name[1]),
        ]
    }
}

fn secs(s: u64) -> Time {
    Time::from_millis(s * 1000)
}

#[test]
fn one_master_then_failover_on_silence_and_hand_back_with_preempt() {
    // a: advskew 0; b: advskew 155 (priority 100).
    let mut link = Link::new(
        carp_instance("a", 255, true, b"pw"),
        carp_instance("b", 100, false, b"pw"),
    );
    link.run_until(secs(10));
    assert_eq!(link.states(["a", "b"]), [State::Master, State::Backup]);
    assert_eq!(counters(&link.nodes[1].0, "b"), Default::default());

    // a goes silent (killed) at 10 s, its last advert at most one interval before: b
    // takes over after its own master-down time, 3 × 1 s + 155/256 s, from that advert.
    link.nodes[0].2 = false;
    link.run_until(secs(20));
    let (who, to, at) = *link.transitions.last().unwrap();
    assert_eq!((who, to), (1, State::Master));
    let waited = at.as_duration() - secs(10).as_duration();
    let down = carp::master_down(Rank::new(1, 155), 3);
    assert!(
        waited <= down && waited + Duration::from_millis(1010) >= down,
        "b took over {waited:?} after a went silent ({down:?} master down)"
    );

    // a comes back (its machine restarted as a backup would be; here it stayed master
    // alone): both hear each other again, a preempts, b steps down; one master.
    link.nodes[0].2 = true;
    link.run_until(secs(30));
    assert_eq!(link.states(["a", "b"]), [State::Master, State::Backup]);
}

#[test]
fn a_bow_out_is_taken_over_at_once() {
    let mut link = Link::new(
        carp_instance("a", 255, false, b"pw"),
        carp_instance("b", 100, false, b"pw"),
    );
    link.run_until(secs(5));
    let id = link.nodes[0].0.by_key("a").unwrap();
    let outs = link.nodes[0]
        .0
        .handle(link.now, id, super::group::Input::Shutdown);
    link.deliver(0, outs);
    assert_eq!(state(&link.nodes[1].0, "b"), State::Master);
    assert!(link.sent.iter().any(|(i, a)| {
        *i == 0
            && Rank {
                demote: a.demote,
                advbase: a.advbase,
                advskew: a.advskew,
            }
            .is_bow_out()
    }));
}

/// A speaker of `key` for the VHID and VIP of [`carp_instance`], its counter at `counter`.
fn stranger(key: &[u8], counter: u64) -> Speaker {
    let host = carp::VirtualHost::new(VHID, [vip()]);
    let auth = Authenticator::new(&Key::new(key).unwrap(), &host, LinkLocal::Without);
    Speaker::new(VHID, auth, ReplayGuard::new(ReplayMode::Strict, counter))
}

#[test]
fn a_forged_or_replayed_better_advert_moves_nothing_and_is_counted() {
    let mut node = node_with(vec![(
        carp_instance("b", 100, false, b"pw"),
        addr("192.0.2.12"),
    )]);
    let mut now = Time::ZERO;
    while now < secs(5) {
        now = node.poll_at().unwrap();
        node.poll(now);
    }
    assert_eq!(state(&node, "b"), State::Master);
    let best = Rank::new(1, 0);
    let from = addr("192.0.2.66");

    // A wrong passphrase (or a forger without it), at the best rank there is.
    let forged = stranger(b"not-pw", 1 << 40).advertise(best);
    let outs = node.carp_advert(now, IFX, from, 255, forged);
    assert!(
        outs.iter()
            .all(|(_, o)| matches!(o, Output::CarpRefused { .. })),
        "{outs:?}"
    );
    assert_eq!(counters(&node, "b").auth, 1);
    assert_eq!(state(&node, "b"), State::Master);

    // A genuine advert of the real peer at a worse rank, heard; then the same bytes
    // again with the best rank (the HMAC covers the counter, not the rank): a replay.
    let mut peer = stranger(b"pw", 1 << 50);
    let genuine = peer.advertise(Rank::new(1, 200));
    assert!(
        node.carp_advert(now, IFX, from, 255, genuine)
            .iter()
            .all(|(_, o)| !matches!(o, Output::CarpRefused { .. }))
    );
    assert_eq!(state(&node, "b"), State::Master);
    for replayed in [
        carp::Advert {
            advskew: 0,
            ..genuine
        },
        genuine,
    ] {
        let outs = node.carp_advert(now, IFX, from, 255, replayed);
        assert!(
            outs.iter()
                .all(|(_, o)| matches!(o, Output::CarpRefused { .. })),
            "{outs:?}"
        );
    }
    assert_eq!(counters(&node, "b").replay, 2);
    // A TTL other than 255 is refused before any check.
    let hop = peer.advertise(best);
    node.carp_advert(now, IFX, from, 254, hop);
    assert_eq!(counters(&node, "b").ttl, 1);
    assert_eq!(state(&node, "b"), State::Master);
}

#[test]
fn a_carp_vhid_and_a_vrrp_vrid_of_one_number_are_two_routers() {
    let mut vrrp = Instance::new("v", Identity::new("eth0", VHID, Family::Ipv4, Version::V3))
        .with_vip(addr("192.0.2.2"));
    vrrp.priority = 100;
    let mut node = node_with(vec![
        (vrrp, addr("192.0.2.12")),
        (carp_instance("c", 100, false, b"pw"), addr("192.0.2.12")),
    ]);
    let mut now = Time::ZERO;
    while now < secs(5) {
        now = node.poll_at().unwrap();
        node.poll(now);
    }
    assert_eq!(state(&node, "v"), State::Master);
    assert_eq!(state(&node, "c"), State::Master);
    let from = addr("192.0.2.66");

    // A better CARP master for VHID 51: only the CARP router steps down.
    let advert = stranger(b"pw", 1 << 50).advertise(Rank::new(1, 0));
    node.carp_advert(now, IFX, from, 255, advert);
    assert_eq!(state(&node, "c"), State::Backup);
    assert_eq!(state(&node, "v"), State::Master);

    // A better VRRP master for VRID 51: only the VRRP router steps down.
    let advert = Advert::v3(VHID, 200, Interval::DEFAULT, vec![addr("192.0.2.2")]);
    node.advert(now, IFX, from, 255, advert);
    assert_eq!(state(&node, "v"), State::Backup);
    assert_eq!(state(&node, "c"), State::Backup);
    assert_eq!(counters(&node, "c").auth, 0);
}

#[test]
fn a_carp_masters_lease_ends_before_any_backup_of_its_advbase_takes_over() {
    // A master at advskew 155 (priority 100) that does not preempt may have a backup at
    // advskew 0, which declares it dead after 3 s, not 3.61 s.
    let node = node_with(vec![(
        carp_instance("m", 100, false, b"pw"),
        addr("192.0.2.11"),
    )]);
    let id = node.by_key("m").unwrap();
    let group = &node.get(id).unwrap().group;
    assert_eq!(group.lease_len(), carp::master_down(Rank::new(1, 0), 3));
    assert_eq!(group.lease_len(), Duration::from_secs(3));
    // Longer than the longest wait between two of its advertisements.
    assert!(group.lease_len() > Rank::new(1, 255).interval() + Duration::from_millis(500));
    // dead_ratio 1 leaves no margin: the master's own master-down time.
    let mut one = carp_instance("m", 100, false, b"pw");
    one.carp.as_mut().unwrap().dead_ratio = 1;
    let node = node_with(vec![(one, addr("192.0.2.11"))]);
    let id = node.by_key("m").unwrap();
    assert_eq!(
        node.get(id).unwrap().group.lease_len(),
        carp::master_down(Rank::new(1, 155), 1)
    );
}

#[test]
fn a_tracked_interface_going_down_raises_the_skew_advertised_and_lets_a_better_backup_preempt() {
    use crate::vrrp::{group::Input, tracking::TrackedInterface};
    // a: priority 200 (advskew 55), tracking up0 at weight -100; b: priority 150
    // (advskew 105), preempting.
    let mut a = carp_instance("a", 200, false, b"pw");
    a.tracking.interfaces.push(TrackedInterface {
        name: "up0".into(),
        weight: -100,
        reverse: false,
    });
    let mut link = Link::new(a, carp_instance("b", 150, true, b"pw"));
    link.run_until(secs(10));
    assert_eq!(link.states(["a", "b"]), [State::Master, State::Backup]);
    let last_skew = |link: &Link| {
        link.sent
            .iter()
            .rev()
            .find(|(i, _)| *i == 0)
            .map(|(_, a)| a.advskew)
    };
    assert_eq!(last_skew(&link), Some(55));

    // up0 down: priority 100, advskew 155, worse than b's 105: b preempts on a's next
    // advertisement.
    let id = link.nodes[0].0.by_key("a").unwrap();
    let now = link.now;
    let outs = link.nodes[0].0.handle(
        now,
        id,
        Input::Link {
            name: "up0".into(),
            up: false,
        },
    );
    link.deliver(0, outs);
    link.run_until(secs(14));
    assert!(
        link.sent.iter().any(|(i, a)| *i == 0 && a.advskew == 155),
        "a never advertised advskew 155"
    );
    assert_eq!(link.states(["a", "b"]), [State::Backup, State::Master]);
}

#[test]
fn vipd_demote_is_advertised_in_the_demotion_byte_and_a_demoted_master_loses() {
    use super::node::Target;
    // a: priority 200 (advskew 55); b: priority 150 (advskew 105), not preempting:
    // carp(4) takes over from a master advertising a higher demotion whatever preempt.
    let mut link = Link::new(
        carp_instance("a", 200, false, b"pw"),
        carp_instance("b", 150, false, b"pw"),
    );
    link.run_until(secs(10));
    assert_eq!(link.states(["a", "b"]), [State::Master, State::Backup]);
    let last_of_a = |link: &Link| {
        link.sent
            .iter()
            .rev()
            .find(|(i, _)| *i == 0)
            .map(|(_, a)| (a.demote, a.advskew))
    };
    assert_eq!(last_of_a(&link), Some((0, 55)));

    let now = link.now;
    let outs = link.nodes[0]
        .0
        .demote(now, &Target::Instance("a".into()), 5)
        .unwrap();
    link.deliver(0, outs);
    // At once, in the demotion byte, with the skew unchanged.
    assert_eq!(last_of_a(&link), Some((5, 55)));
    assert_eq!(link.states(["a", "b"]), [State::Backup, State::Master]);
    link.run_until(secs(15));
    assert_eq!(link.states(["a", "b"]), [State::Backup, State::Master]);

    // Promoted back: a advertises 0 again, and stays backup (no preempt), as carp(4).
    let now = link.now;
    let outs = link.nodes[0]
        .0
        .promote(now, &Target::Instance("a".into()), None)
        .unwrap();
    link.deliver(0, outs);
    link.run_until(secs(20));
    assert!(
        link.sent.iter().rev().take(4).all(|(_, a)| a.demote == 0),
        "demotion still advertised"
    );
    assert_eq!(link.states(["a", "b"]), [State::Backup, State::Master]);
}
