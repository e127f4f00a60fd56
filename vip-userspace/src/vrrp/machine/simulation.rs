//! 2–5 simulated routers on one simulated wire, driven by a seeded random schedule:
//! a chaotic phase (random start order, lost adverts, priority changes, restarts,
//! faults), then a quiet phase with a lossless wire, after which exactly one router must
//! be master.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use super::*;

/// xorshift64*: deterministic, dependency-free, good enough to pick schedules.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant here.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    /// An advert from router `from` reaches router `to`.
    Deliver {
        to: usize,
        src: IpAddr,
        priority: u8,
        interval_cs: u16,
    },
    /// A scripted event for router `to` (index into `Scenario::script_events`).
    Script { to: usize, event: usize },
}

struct Scenario {
    seed: u64,
    version: Version,
    all_preempt: bool,
    routers: Vec<Machine>,
    script_events: Vec<Event>,
    queue: BinaryHeap<Reverse<(Time, u64, Item)>>,
    seq: u64,
    chaos_end: Time,
    end: Time,
    loss_percent: u64,
    rng: Rng,
    log: String,
}

impl Scenario {
    fn new(seed: u64, version: Version, family: Family) -> Scenario {
        let mut rng = Rng::new(seed);
        let n = 2 + rng.below(4) as usize;
        let all_preempt = rng.percent(70);
        let owner = rng.percent(15).then(|| rng.below(n as u64) as usize);
        let mut routers = Vec::new();
        let mut longest = Duration::ZERO;
        let mut longest_delay = Duration::ZERO;
        for i in 0..n {
            let addr: IpAddr = match family {
                Family::Ipv4 => IpAddr::V4([192, 0, 2, 10 + i as u8].into()),
                Family::Ipv6 => IpAddr::V6([0xfe80, 0, 0, 0, 0, 0, 0, 0x10 + i as u16].into()),
            };
            // A narrow priority range makes ties (and the address tie-break) common.
            let priority = if owner == Some(i) {
                OWNER_PRIORITY
            } else {
                90 + rng.below(8) as u8
            };
            let mut c = Config::new(7, version, priority, addr);
            c.advert_interval = match version {
                Version::V3 => Interval::from_centis(1 + rng.below(10) as u16),
                Version::V2 => Interval::from_secs(1 + rng.below(3) as u8),
            }
            .expect("non-zero interval");
            c.preempt = all_preempt || rng.percent(50);
            if rng.percent(30) {
                c.preempt_delay = c.advert_interval.as_duration() * (1 + rng.below(5) as u32);
            }
            longest = longest.max(c.advert_interval.as_duration());
            longest_delay = longest_delay.max(c.preempt_delay);
            routers.push(Machine::new(c).expect("valid config"));
        }
        let chaos_end = Time::ZERO + longest * 60;
        // Quiet long enough for a preempt delay, a Master_Down_Interval and a few adverts.
        let end = chaos_end + longest_delay + longest * 30;
        let mut s = Scenario {
            seed,
            version,
            all_preempt,
            routers,
            script_events: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            chaos_end,
            end,
            loss_percent: rng.below(40),
            rng,
            log: String::new(),
        };
        s.write_script(longest);
        s
    }

    /// Random start order, and during the chaotic phase balanced disturbances, so every
    /// router is running and unfaulted when the quiet phase begins.
    fn write_script(&mut self, longest: Duration) {
        let chaos = self.chaos_end.as_duration();
        for r in 0..self.routers.len() {
            let start = Time::from_duration(chaos.mul_f64(self.rng.below(400) as f64 / 1000.0));
            self.schedule(start, r, Event::Startup);
            for _ in 0..self.rng.below(4) {
                let at = start + chaos.mul_f64(self.rng.below(500) as f64 / 1000.0);
                let back = at + longest * (1 + self.rng.below(5) as u32);
                match self.rng.below(3) {
                    0 => {
                        let p = 90 + self.rng.below(8) as u8;
                        self.schedule(at, r, Event::PriorityChanged(p));
                    }
                    1 => {
                        self.schedule(at, r, Event::Shutdown);
                        self.schedule(back, r, Event::Startup);
                    }
                    _ => {
                        self.schedule(at, r, Event::Fault);
                        self.schedule(back, r, Event::FaultCleared);
                    }
                }
            }
        }
    }

    fn schedule(&mut self, at: Time, to: usize, event: Event) {
        let index = self.script_events.len();
        self.script_events.push(event);
        self.push(at, Item::Script { to, event: index });
    }

    fn push(&mut self, at: Time, item: Item) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, item)));
    }

    fn apply(&mut self, now: Time, from: usize, actions: Actions) {
        for action in actions {
            let _ = writeln!(self.log, "{now} r{from} {action:?}");
            if let Action::SendAdvert { priority } = action {
                let src = self.routers[from].config().primary_address;
                let interval_cs = self.routers[from].config().advert_interval.centis();
                for to in (0..self.routers.len()).filter(|&to| to != from) {
                    if now < self.chaos_end && self.rng.percent(self.loss_percent) {
                        continue;
                    }
                    let latency = Duration::from_micros(self.rng.below(200));
                    let item = Item::Deliver {
                        to,
                        src,
                        priority,
                        interval_cs,
                    };
                    self.push(now + latency, item);
                }
            }
        }
    }

    fn run(&mut self) {
        let mut steps = 0u32;
        loop {
            steps += 1;
            assert!(steps < 2_000_000, "seed {}: no progress", self.seed);
            let next_poll = self
                .routers
                .iter()
                .enumerate()
                .filter_map(|(i, m)| m.poll_at().map(|t| (t, i)))
                .min();
            let next_item = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let poll_first = match (next_poll, next_item) {
                (Some((t, _)), Some(item)) => t < item,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return,
            };
            if let (true, Some((t, i))) = (poll_first, next_poll) {
                if t > self.end {
                    return;
                }
                let actions = self.routers[i].poll(t);
                self.apply(t, i, actions);
                continue;
            }
            let Some(Reverse((now, _, item))) = self.queue.pop() else {
                return;
            };
            if now > self.end {
                return;
            }
            let (to, event) = match item {
                Item::Deliver {
                    to,
                    src,
                    priority,
                    interval_cs,
                } => {
                    let max_adver_int =
                        Interval::from_centis(interval_cs).expect("non-zero interval");
                    let event = Event::AdvertReceived {
                        src,
                        priority,
                        max_adver_int,
                    };
                    (to, event)
                }
                Item::Script { to, event } => (to, self.script_events[event].clone()),
            };
            let actions = self.routers[to].handle(now, event);
            self.apply(now, to, actions);
        }
    }

    fn describe(&self) -> String {
        let mut out = format!(
            "seed {} {:?} all_preempt={} loss={}%\n",
            self.seed, self.version, self.all_preempt, self.loss_percent
        );
        for (i, m) in self.routers.iter().enumerate() {
            let c = m.config();
            let _ = writeln!(
                out,
                "r{i} {} prio {} (conf {}) preempt={} delay={:?} interval={} -> {}",
                c.primary_address,
                m.effective_priority(),
                c.priority,
                c.preempt,
                c.preempt_delay,
                c.advert_interval,
                m.state()
            );
        }
        let tail: Vec<&str> = self.log.lines().rev().take(40).collect();
        for line in tail.into_iter().rev() {
            let _ = writeln!(out, "  {line}");
        }
        out
    }

    fn check(&self) {
        let masters: Vec<&Machine> = self
            .routers
            .iter()
            .filter(|m| m.state() == State::Master)
            .collect();
        assert_eq!(masters.len(), 1, "{}", self.describe());
        if self.all_preempt {
            // With preemption every backup of higher priority takes over; an
            // equal-priority master is never preempted (RFC 9568 §6.4.2 accepts priority
            // >= local), so the address breaks ties only between routers that were both
            // master at once.
            let top = self
                .routers
                .iter()
                .map(Machine::effective_priority)
                .max()
                .unwrap_or(0);
            assert_eq!(masters[0].effective_priority(), top, "{}", self.describe());
        }
    }
}

fn run_seeds(version: Version, family: Family, seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let mut s = Scenario::new(seed, version, family);
        s.run();
        s.check();
    }
}

#[test]
fn random_v3_ipv4_routers_converge_to_exactly_one_master() {
    run_seeds(Version::V3, Family::Ipv4, 0..300);
}

#[test]
fn random_v3_ipv6_routers_converge_to_exactly_one_master() {
    run_seeds(Version::V3, Family::Ipv6, 1000..1150);
}

#[test]
fn random_v2_routers_converge_to_exactly_one_master() {
    run_seeds(Version::V2, Family::Ipv4, 2000..2150);
}

#[test]
fn simultaneous_equal_masters_settle_on_the_highest_address() {
    // Two equal-priority routers started at the same instant time out together, both
    // become master, and the address tie-break leaves the higher one.
    let mut a = Machine::new(Config::new(
        7,
        Version::V3,
        100,
        "192.0.2.10".parse().expect("ip"),
    ))
    .expect("valid");
    let mut b = Machine::new(Config::new(
        7,
        Version::V3,
        100,
        "192.0.2.20".parse().expect("ip"),
    ))
    .expect("valid");
    a.handle(Time::ZERO, Event::Startup);
    b.handle(Time::ZERO, Event::Startup);
    let at = a.poll_at().expect("armed");
    assert_eq!(b.poll_at(), Some(at));
    a.poll(at);
    b.poll(at);
    let from_a = Event::AdvertReceived {
        src: a.config().primary_address,
        priority: 100,
        max_adver_int: Interval::DEFAULT,
    };
    let from_b = Event::AdvertReceived {
        src: b.config().primary_address,
        priority: 100,
        max_adver_int: Interval::DEFAULT,
    };
    let a_actions = a.handle(at, from_b);
    let b_actions = b.handle(at, from_a);
    assert!(matches!(
        a_actions.first(),
        Some(Action::BecomeBackup { .. })
    ));
    assert_eq!(
        b_actions,
        vec![Action::SendAdvert { priority: 100 }, Action::SendGratuitous],
        "the survivor reasserts and announces its addresses again"
    );
    assert_eq!((a.state(), b.state()), (State::Backup, State::Master));
}

#[test]
fn healed_split_makes_the_winner_reannounce_even_when_the_loser_hears_first() {
    // Two masters (a split VRRP link) whose link heals; the winner's advert happens to
    // reach the loser first, so the loser goes quiet before its next periodic advert.
    let machine = |priority, addr: &str| {
        let mut c = Config::new(7, Version::V3, priority, addr.parse().expect("ip"));
        c.advert_interval = Interval::from_centis(1).expect("10 ms");
        Machine::new(c).expect("valid")
    };
    let (mut a, mut b) = (machine(200, "192.0.2.11"), machine(100, "192.0.2.12"));
    for m in [&mut a, &mut b] {
        m.handle(Time::ZERO, Event::Startup);
        let at = m.poll_at().expect("armed");
        m.poll(at);
        assert_eq!(m.state(), State::Master, "nobody heard: both master");
    }
    let now = Time::ZERO + Duration::from_secs(1);
    let advert = |m: &Machine| Event::AdvertReceived {
        src: m.config().primary_address,
        priority: m.effective_priority(),
        max_adver_int: m.config().advert_interval,
    };
    let from_a = advert(&a);
    let from_b = advert(&b);
    let b_actions = b.handle(now, from_a.clone());
    assert_eq!(b.state(), State::Backup);
    assert_eq!(
        b_actions.last(),
        Some(&Action::SendAdvert { priority: 100 }),
        "the loser's last word: {b_actions:?}"
    );
    // That advert is the only one the winner hears from the loser; it re-announces.
    assert_eq!(
        a.handle(now, from_b),
        vec![Action::SendAdvert { priority: 200 }, Action::SendGratuitous]
    );
    // The loser, now a backup, answers the winner's reply with silence.
    assert_eq!(b.handle(now, from_a), vec![]);
    assert_eq!((a.state(), b.state()), (State::Master, State::Backup));
}
