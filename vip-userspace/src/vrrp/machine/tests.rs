//! Every transition with a virtual clock: `Time` values are chosen by the test.

use std::net::IpAddr;
use std::time::Duration;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

fn centis(cs: u16) -> Interval {
    Interval::from_centis(cs).expect("non-zero interval")
}

fn ms(v: u64) -> Time {
    Time::from_millis(v)
}

fn us(v: u64) -> Time {
    Time::from_micros(v)
}

const ME: &str = "192.0.2.11";
const PEER_LOW: &str = "192.0.2.5";
const PEER_HIGH: &str = "192.0.2.12";

/// VRRPv3 over IPv4 from 192.0.2.11 with a 10 ms interval.
fn config(priority: u8) -> Config {
    let mut c = Config::new(51, Version::V3, priority, ip(ME));
    c.advert_interval = centis(1);
    c
}

fn machine(config: Config) -> Machine {
    Machine::new(config).expect("valid config")
}

fn started_backup(config: Config) -> Machine {
    let mut m = machine(config);
    let actions = m.handle(Time::ZERO, Event::Startup);
    assert_eq!(
        actions,
        vec![Action::BecomeBackup {
            reason: Reason::Startup
        }]
    );
    m
}

fn advert(src: &str, priority: u8, cs: u16) -> Event {
    Event::AdvertReceived {
        src: ip(src),
        priority,
        max_adver_int: centis(cs),
    }
}

/// A backup at 10 ms / priority 100 that became master by timeout at 36.09375 ms.
fn master_by_timeout(config: Config) -> (Machine, Time) {
    let mut m = started_backup(config);
    let at = m.poll_at().expect("down timer armed");
    m.poll(at);
    assert_eq!(m.state(), State::Master);
    (m, at)
}

// ---- Initialize ----------------------------------------------------------------------

#[test]
fn non_owner_startup_enters_backup_with_the_exact_master_down_timer() {
    let m = started_backup(config(100));
    assert_eq!(m.state(), State::Backup);
    assert_eq!(m.skew_time(), Duration::from_nanos(6_093_750));
    assert_eq!(m.master_down_interval(), Duration::from_nanos(36_093_750));
    assert_eq!(m.poll_at(), Some(us(36_093) + Duration::from_nanos(750)));
    assert_eq!(m.master_adver_interval(), centis(1));
    assert_eq!(m.master_address(), None);
}

#[test]
fn owner_startup_goes_straight_to_master_and_announces() {
    let mut m = machine(config(255));
    let actions = m.handle(ms(3), Event::Startup);
    assert_eq!(
        actions,
        vec![
            Action::BecomeMaster {
                reason: Reason::OwnerStartup
            },
            Action::SendAdvert { priority: 255 },
            Action::SendGratuitous,
        ]
    );
    assert_eq!(m.poll_at(), Some(ms(13)));
    assert_eq!(m.master_address(), Some(ip(ME)));
    assert!(m.accepts_vip_traffic(), "the owner accepts VIP traffic");
}

#[test]
fn resume_after_a_restart_continues_as_master_at_once() {
    let mut m = machine(config(100));
    let actions = m.handle(ms(5), Event::Resume);
    assert_eq!(
        actions,
        vec![
            Action::BecomeMaster {
                reason: Reason::Resumed
            },
            Action::SendAdvert { priority: 100 },
            Action::SendGratuitous,
        ]
    );
    assert_eq!(m.poll_at(), Some(ms(15)));
    // Resume is a start-up variant: once running it means nothing.
    assert!(m.handle(ms(6), Event::Resume).is_empty());
}

#[test]
fn resume_with_a_fault_pending_enters_fault_instead() {
    let mut m = machine(config(100));
    m.handle(ms(1), Event::Fault);
    let actions = m.handle(ms(2), Event::Resume);
    assert_eq!(
        actions,
        vec![Action::BecomeFault {
            reason: Reason::Fault
        }]
    );
}

#[test]
fn events_before_startup_change_nothing_but_are_remembered() {
    let mut m = machine(config(100));
    assert_eq!(m.handle(ms(1), advert(PEER_HIGH, 200, 1)), vec![]);
    assert_eq!(m.handle(ms(1), Event::Shutdown), vec![]);
    assert_eq!(m.poll(ms(500)), vec![]);
    assert_eq!(m.poll_at(), None);
    assert_eq!(m.handle(ms(2), Event::PriorityChanged(120)), vec![]);
    assert_eq!(m.effective_priority(), 120);
    assert_eq!(m.state(), State::Initialize);
}

// ---- Backup --------------------------------------------------------------------------

#[test]
fn backup_takes_over_exactly_when_the_master_down_timer_expires() {
    let mut m = started_backup(config(100));
    let deadline = Time::from_duration(Duration::from_nanos(36_093_750));
    assert_eq!(
        m.poll(Time::from_duration(Duration::from_nanos(36_093_749))),
        vec![]
    );
    assert_eq!(
        m.poll(deadline),
        vec![
            Action::BecomeMaster {
                reason: Reason::MasterDownTimerExpired
            },
            Action::SendAdvert { priority: 100 },
            Action::SendGratuitous,
        ]
    );
    assert_eq!(m.poll_at(), Some(deadline + Duration::from_millis(10)));
    assert_eq!(m.master_address(), Some(ip(ME)));
}

#[test]
fn backup_restarts_the_down_timer_on_equal_or_higher_priority() {
    let mut m = started_backup(config(100));
    for (at, prio) in [(20, 100), (40, 200)] {
        assert_eq!(m.handle(ms(at), advert(PEER_HIGH, prio, 1)), vec![]);
        assert_eq!(m.poll_at(), Some(ms(at) + Duration::from_nanos(36_093_750)));
        assert_eq!(m.master_address(), Some(ip(PEER_HIGH)));
    }
    assert_eq!(m.poll(ms(70)), vec![], "no takeover while adverts arrive");
    assert_eq!(m.state(), State::Backup);
}

#[test]
fn v3_backup_learns_the_master_interval_and_recomputes_skew_and_down() {
    let mut m = started_backup(config(100));
    m.handle(ms(5), advert(PEER_HIGH, 200, 100));
    assert_eq!(m.master_adver_interval(), Interval::DEFAULT);
    assert_eq!(m.skew_time(), Duration::from_micros(609_375));
    assert_eq!(m.master_down_interval(), Duration::from_micros(3_609_375));
    assert_eq!(m.poll_at(), Some(ms(5) + Duration::from_micros(3_609_375)));
}

#[test]
fn v2_backup_keeps_its_own_interval_and_whole_second_skew() {
    let mut c = Config::new(52, Version::V2, 100, ip(ME));
    c.advert_interval = Interval::from_secs(1).expect("non-zero");
    let mut m = started_backup(c);
    assert_eq!(m.skew_time(), Duration::from_micros(609_375));
    assert_eq!(m.master_down_interval(), Duration::from_micros(3_609_375));
    m.handle(ms(100), advert(PEER_HIGH, 200, 300));
    assert_eq!(
        m.master_adver_interval(),
        Interval::DEFAULT,
        "v2 never learns"
    );
    assert_eq!(
        m.poll_at(),
        Some(ms(100) + Duration::from_micros(3_609_375))
    );
}

#[test]
fn priority_zero_makes_the_backup_wait_only_skew_time() {
    let mut m = started_backup(config(100));
    m.handle(ms(5), advert(PEER_HIGH, 200, 1));
    assert_eq!(m.handle(ms(8), advert(PEER_HIGH, 0, 1)), vec![]);
    assert_eq!(m.master_address(), None);
    let deadline = ms(8) + Duration::from_nanos(6_093_750);
    assert_eq!(m.poll_at(), Some(deadline));
    let actions = m.poll(deadline);
    assert_eq!(
        actions.first(),
        Some(&Action::BecomeMaster {
            reason: Reason::MasterResigned {
                from: ip(PEER_HIGH)
            }
        })
    );
    assert_eq!(
        Reason::MasterResigned {
            from: ip(PEER_HIGH)
        }
        .to_string(),
        "priority 0 from master 192.0.2.12, waited Skew_Time"
    );
}

#[test]
fn preempting_backup_discards_a_lower_priority_master_and_takes_over() {
    let mut m = started_backup(config(100));
    let down = m.poll_at();
    assert_eq!(m.handle(ms(10), advert(PEER_LOW, 50, 1)), vec![]);
    assert_eq!(m.poll_at(), down, "the down timer is not restarted");
    assert_eq!(m.master_address(), Some(ip(PEER_LOW)));
    let at = down.expect("armed");
    assert_eq!(
        m.poll(at).first(),
        Some(&Action::BecomeMaster {
            reason: Reason::PreemptedLowerPriority {
                from: ip(PEER_LOW),
                priority: 50
            }
        })
    );
}

#[test]
fn non_preempting_backup_accepts_a_lower_priority_master() {
    let mut c = config(100);
    c.preempt = false;
    let mut m = started_backup(c);
    m.handle(ms(10), advert(PEER_LOW, 50, 1));
    assert_eq!(m.poll_at(), Some(ms(10) + m.master_down_interval()));
    assert_eq!(m.poll(ms(40)), vec![]);
    assert_eq!(m.state(), State::Backup);
}

#[test]
fn preempt_delay_holds_back_preemption_until_it_elapses() {
    let mut c = config(100);
    c.preempt_delay = Duration::from_millis(100);
    let mut m = started_backup(c);
    // Inside the delay: the lower-priority master is accepted, its timer restarted.
    for at in (10..100).step_by(10) {
        m.handle(ms(at), advert(PEER_LOW, 50, 1));
        assert_eq!(m.poll(ms(at)), vec![]);
        assert_eq!(m.state(), State::Backup, "held at {at} ms");
    }
    assert_eq!(m.poll_at(), Some(ms(90) + m.master_down_interval()));
    // From 100 ms on the same adverts are discarded and the timer runs out.
    m.handle(ms(100), advert(PEER_LOW, 50, 1));
    m.handle(ms(110), advert(PEER_LOW, 50, 1));
    let deadline = ms(90) + m.master_down_interval();
    assert_eq!(m.poll_at(), Some(deadline));
    assert!(matches!(
        m.poll(deadline).first(),
        Some(Action::BecomeMaster {
            reason: Reason::PreemptedLowerPriority { .. }
        })
    ));
}

#[test]
fn owner_in_backup_preempts_even_with_preempt_off_and_a_delay() {
    let mut c = config(255);
    c.preempt = false;
    c.preempt_delay = Duration::from_secs(60);
    let mut m = machine(c);
    m.handle(ms(0), Event::PriorityChanged(100));
    m.handle(ms(0), Event::Startup);
    assert_eq!(m.state(), State::Backup, "tracking lowered the owner");
    m.handle(ms(5), advert(PEER_LOW, 150, 1));
    m.handle(ms(6), Event::PriorityChanged(255));
    let down = m.poll_at();
    m.handle(ms(15), advert(PEER_LOW, 150, 1));
    assert_eq!(
        m.poll_at(),
        down,
        "restored owner discards the lower master"
    );
}

#[test]
fn backup_shutdown_initializes_silently() {
    let mut m = started_backup(config(100));
    assert_eq!(
        m.handle(ms(5), Event::Shutdown),
        vec![Action::BecomeInitialize {
            reason: Reason::Shutdown
        }]
    );
    assert_eq!(m.poll_at(), None);
    assert_eq!(m.handle(ms(6), Event::Shutdown), vec![], "idempotent");
}

// ---- Master --------------------------------------------------------------------------

#[test]
fn master_advertises_every_interval() {
    let (mut m, t0) = master_by_timeout(config(100));
    let interval = Duration::from_millis(10);
    assert_eq!(m.poll(t0 + Duration::from_millis(9)), vec![]);
    for n in 1..=5u32 {
        let at = t0 + interval * n;
        assert_eq!(m.poll_at(), Some(at));
        assert_eq!(m.poll(at), vec![Action::SendAdvert { priority: 100 }]);
    }
}

#[test]
fn late_poll_sends_one_advert_and_rearms_from_now() {
    let (mut m, t0) = master_by_timeout(config(100));
    let late = t0 + Duration::from_millis(55);
    assert_eq!(m.poll(late), vec![Action::SendAdvert { priority: 100 }]);
    assert_eq!(m.poll_at(), Some(late + Duration::from_millis(10)));
}

#[test]
fn master_steps_down_for_a_higher_priority_and_learns_its_interval() {
    let (mut m, _) = master_by_timeout(config(100));
    let actions = m.handle(ms(100), advert(PEER_LOW, 101, 50));
    assert_eq!(
        actions,
        vec![
            Action::BecomeBackup {
                reason: Reason::HigherPriority {
                    from: ip(PEER_LOW),
                    priority: 101
                }
            },
            // One last advert, so a winner that has not heard us re-announces.
            Action::SendAdvert { priority: 100 },
        ]
    );
    assert_eq!(m.master_adver_interval(), centis(50));
    assert_eq!(m.skew_time(), Duration::from_nanos(304_687_500));
    assert_eq!(
        m.poll_at(),
        Some(ms(100) + Duration::from_nanos(1_804_687_500))
    );
    assert_eq!(m.master_address(), Some(ip(PEER_LOW)));
    assert_eq!(
        Reason::HigherPriority {
            from: ip(PEER_LOW),
            priority: 101
        }
        .to_string(),
        "higher priority advert from 192.0.2.5 (priority 101)"
    );
}

#[test]
fn master_steps_down_for_equal_priority_from_a_higher_address() {
    let (mut m, _) = master_by_timeout(config(100));
    assert_eq!(
        m.handle(ms(100), advert(PEER_HIGH, 100, 1)),
        vec![
            Action::BecomeBackup {
                reason: Reason::EqualPriorityHigherAddress {
                    from: ip(PEER_HIGH),
                    priority: 100
                }
            },
            Action::SendAdvert { priority: 100 },
        ]
    );
    // Backups stay silent: the yield advert was a one-off.
    assert_eq!(m.poll(ms(101)), vec![]);
}

#[test]
fn master_reasserts_and_reannounces_against_lower_priority_or_lower_address() {
    let (mut m, t0) = master_by_timeout(config(100));
    let next = m.poll_at();
    for event in [advert(PEER_HIGH, 99, 1), advert(PEER_LOW, 100, 1)] {
        assert_eq!(
            m.handle(t0 + Duration::from_millis(1), event),
            vec![Action::SendAdvert { priority: 100 }, Action::SendGratuitous]
        );
        assert_eq!(m.state(), State::Master);
        assert_eq!(m.poll_at(), next, "the periodic timer keeps its phase");
    }
}

#[test]
fn master_compares_ipv6_addresses_as_unsigned_integers() {
    let mut c = Config::new(53, Version::V3, 100, ip("fe80::8000:0:0:1"));
    c.advert_interval = centis(1);
    let (mut m, _) = master_by_timeout(c);
    // fe80::1 is lower than fe80::8000:0:0:1, fe80::ffff:0:0:1 higher.
    assert_eq!(
        m.handle(ms(50), advert("fe80::1", 100, 1)),
        vec![Action::SendAdvert { priority: 100 }, Action::SendGratuitous]
    );
    assert!(matches!(
        m.handle(ms(51), advert("fe80::ffff:0:0:1", 100, 1)).first(),
        Some(Action::BecomeBackup {
            reason: Reason::EqualPriorityHigherAddress { .. }
        })
    ));
}

#[test]
fn master_answers_priority_zero_with_an_advert_and_resets_its_timer() {
    let (mut m, t0) = master_by_timeout(config(100));
    let at = t0 + Duration::from_millis(3);
    assert_eq!(
        m.handle(at, advert(PEER_HIGH, 0, 1)),
        vec![Action::SendAdvert { priority: 100 }]
    );
    assert_eq!(m.poll_at(), Some(at + Duration::from_millis(10)));
}

#[test]
fn master_shutdown_resigns_with_priority_zero() {
    let (mut m, _) = master_by_timeout(config(100));
    assert_eq!(
        m.handle(ms(200), Event::Shutdown),
        vec![
            Action::BecomeInitialize {
                reason: Reason::Shutdown
            },
            Action::SendAdvert { priority: 0 },
        ]
    );
    assert_eq!(m.poll_at(), None);
    assert_eq!(m.master_address(), None);
    // And a restart goes through Backup again.
    assert_eq!(
        m.handle(ms(300), Event::Startup),
        vec![Action::BecomeBackup {
            reason: Reason::Startup
        }]
    );
}

#[test]
fn master_advertises_a_tracked_priority_change_at_once() {
    let (mut m, _) = master_by_timeout(config(100));
    assert_eq!(
        m.handle(ms(50), Event::PriorityChanged(60)),
        vec![Action::SendAdvert { priority: 60 }]
    );
    assert_eq!(
        m.handle(ms(51), Event::PriorityChanged(60)),
        vec![],
        "no change"
    );
    assert_eq!(m.effective_priority(), 60);
    // The lowered master now yields to a priority it used to beat.
    assert!(matches!(
        m.handle(ms(52), advert(PEER_LOW, 80, 1)).first(),
        Some(Action::BecomeBackup { .. })
    ));
}

#[test]
fn tracked_priority_stays_clear_of_resign_and_owner_values() {
    let mut m = machine(config(100));
    m.handle(ms(0), Event::PriorityChanged(0));
    assert_eq!(m.effective_priority(), 1);
    m.handle(ms(0), Event::PriorityChanged(255));
    assert_eq!(m.effective_priority(), 254);
    let mut owner = machine(config(255));
    owner.handle(ms(0), Event::PriorityChanged(10));
    owner.handle(ms(0), Event::PriorityChanged(255));
    assert_eq!(owner.effective_priority(), 255);
}

#[test]
fn accept_mode_lets_a_non_owner_master_accept_vip_traffic() {
    let (m, _) = master_by_timeout(config(100));
    assert!(!m.accepts_vip_traffic());
    let mut c = config(100);
    c.accept_mode = true;
    let backup = started_backup(c.clone());
    assert!(!backup.accepts_vip_traffic(), "never as backup");
    let (m, _) = master_by_timeout(c);
    assert!(m.accepts_vip_traffic());
}

#[test]
fn own_looped_back_advert_is_ignored() {
    let (mut m, _) = master_by_timeout(config(100));
    assert_eq!(m.handle(ms(50), advert(ME, 100, 1)), vec![]);
    let mut b = started_backup(config(100));
    let down = b.poll_at();
    assert_eq!(b.handle(ms(5), advert(ME, 200, 1)), vec![]);
    assert_eq!(b.poll_at(), down);
}

#[test]
fn advert_of_the_other_family_is_ignored() {
    let mut b = started_backup(config(100));
    let down = b.poll_at();
    b.handle(ms(5), advert("fe80::1", 200, 1));
    assert_eq!(b.poll_at(), down);
    assert_eq!(b.master_address(), None);
}

// ---- Fault (vipd extension) -----------------------------------------------------------

#[test]
fn fault_as_master_resigns_and_stops_timers() {
    let (mut m, _) = master_by_timeout(config(100));
    assert_eq!(
        m.handle(ms(50), Event::Fault),
        vec![
            Action::BecomeFault {
                reason: Reason::Fault
            },
            Action::SendAdvert { priority: 0 },
        ]
    );
    assert_eq!(m.poll_at(), None);
    assert_eq!(m.handle(ms(51), advert(PEER_HIGH, 200, 1)), vec![]);
    assert_eq!(m.handle(ms(52), Event::Fault), vec![], "already faulted");
    assert_eq!(
        m.handle(ms(60), Event::FaultCleared),
        vec![Action::BecomeBackup {
            reason: Reason::FaultCleared
        }]
    );
    assert_eq!(m.poll_at(), Some(ms(60) + m.master_down_interval()));
}

#[test]
fn fault_as_backup_is_silent_and_clearing_an_owner_returns_to_master() {
    let mut b = started_backup(config(100));
    assert_eq!(
        b.handle(ms(5), Event::Fault),
        vec![Action::BecomeFault {
            reason: Reason::Fault
        }]
    );
    let mut owner = machine(config(255));
    owner.handle(ms(0), Event::Startup);
    owner.handle(ms(1), Event::Fault);
    assert_eq!(
        owner.handle(ms(2), Event::FaultCleared).first(),
        Some(&Action::BecomeMaster {
            reason: Reason::FaultCleared
        })
    );
}

#[test]
fn startup_while_faulted_enters_fault() {
    let mut m = machine(config(100));
    assert_eq!(m.handle(ms(0), Event::Fault), vec![]);
    assert_eq!(
        m.handle(ms(1), Event::Startup),
        vec![Action::BecomeFault {
            reason: Reason::Fault
        }]
    );
    assert_eq!(
        m.handle(ms(2), Event::Shutdown),
        vec![Action::BecomeInitialize {
            reason: Reason::Shutdown
        }]
    );
}

#[test]
fn preempt_delay_restarts_when_a_fault_clears() {
    let mut c = config(100);
    c.preempt_delay = Duration::from_millis(100);
    let mut m = started_backup(c);
    m.handle(ms(200), Event::Fault);
    m.handle(ms(300), Event::FaultCleared);
    m.handle(ms(350), advert(PEER_LOW, 50, 1));
    assert_eq!(
        m.poll_at(),
        Some(ms(350) + m.master_down_interval()),
        "held: the lower master is accepted within 100 ms of rejoining"
    );
}

// ---- Sync events ----------------------------------------------------------------------

#[test]
fn sync_master_promotes_a_backup_and_sync_backup_demotes_a_master() {
    let mut m = started_backup(config(100));
    assert_eq!(
        m.handle(ms(5), Event::SyncMaster { member: 2 }),
        vec![
            Action::BecomeMaster {
                reason: Reason::SyncMaster { member: 2 }
            },
            Action::SendAdvert { priority: 100 },
            Action::SendGratuitous,
        ]
    );
    assert_eq!(m.handle(ms(6), Event::SyncMaster { member: 2 }), vec![]);
    assert_eq!(
        m.handle(ms(7), Event::SyncBackup { member: 1 }),
        vec![
            Action::BecomeBackup {
                reason: Reason::SyncBackup { member: 1 }
            },
            Action::SendAdvert { priority: 0 },
        ]
    );
    assert_eq!(m.master_address(), None);
    assert_eq!(m.poll_at(), Some(ms(7) + m.master_down_interval()));
}

#[test]
fn sync_fault_and_own_fault_must_both_clear() {
    let mut m = started_backup(config(100));
    m.handle(ms(1), Event::Fault);
    assert_eq!(m.handle(ms(2), Event::SyncFault { member: 1 }), vec![]);
    assert_eq!(m.handle(ms(3), Event::FaultCleared), vec![]);
    assert_eq!(m.state(), State::Fault);
    assert_eq!(
        m.handle(ms(4), Event::SyncFaultCleared),
        vec![Action::BecomeBackup {
            reason: Reason::SyncFaultCleared
        }]
    );
}

#[test]
fn gated_backup_only_wants_master_when_its_timer_expires() {
    let mut m = started_backup(config(100));
    m.set_gated(true);
    let at = m.poll_at().expect("armed");
    assert_eq!(m.poll(at), vec![]);
    assert!(m.wants_master());
    assert_eq!(m.poll_at(), None);
    // A resignation does not restart a timer it no longer has...
    m.handle(at, advert(PEER_HIGH, 0, 1));
    assert!(m.wants_master());
    // ...but a live master cancels the wish.
    m.handle(at, advert(PEER_HIGH, 200, 1));
    assert!(!m.wants_master());
    assert!(m.poll_at().is_some());
}

// ---- Config and reasons ---------------------------------------------------------------

#[test]
fn config_validation_names_what_is_wrong() {
    let mut c = config(100);
    c.vrid = 0;
    assert_eq!(Machine::new(c).err(), Some(ConfigError::ZeroVrid));
    assert_eq!(
        Machine::new(config(0)).err(),
        Some(ConfigError::ZeroPriority)
    );
    let mut c = config(100);
    c.advert_interval = centis(4096);
    assert_eq!(
        Machine::new(c).err(),
        Some(ConfigError::IntervalTooLong {
            interval: centis(4096)
        })
    );
    let mut c = Config::new(52, Version::V2, 100, ip(ME));
    c.advert_interval = centis(150);
    assert_eq!(
        Machine::new(c).err(),
        Some(ConfigError::V2IntervalNotWholeSeconds {
            interval: centis(150)
        })
    );
    let c = Config::new(52, Version::V2, 100, ip("fe80::1"));
    assert_eq!(Machine::new(c).err(), Some(ConfigError::V2NotIpv4));
}

#[test]
fn every_reason_reads_as_a_sentence() {
    let from = ip(PEER_HIGH);
    let cases = [
        (Reason::Startup, "startup"),
        (
            Reason::OwnerStartup,
            "startup as address owner (priority 255)",
        ),
        (Reason::MasterDownTimerExpired, "master down timer expired"),
        (
            Reason::PreemptedLowerPriority { from, priority: 9 },
            "preempted lower-priority master 192.0.2.12 (priority 9)",
        ),
        (
            Reason::EqualPriorityHigherAddress { from, priority: 9 },
            "equal priority advert from higher address 192.0.2.12 (priority 9)",
        ),
        (Reason::Shutdown, "shutdown"),
        (Reason::Fault, "fault: tracked interface or object down"),
        (Reason::FaultCleared, "fault cleared"),
        (
            Reason::SyncMaster { member: 1 },
            "sync group: member 1 became master",
        ),
        (
            Reason::SyncBackup { member: 1 },
            "sync group: member 1 left master",
        ),
        (
            Reason::SyncFault { member: 1 },
            "sync group: member 1 faulted",
        ),
        (Reason::SyncFaultCleared, "sync group: fault cleared"),
    ];
    for (reason, text) in cases {
        assert_eq!(reason.to_string(), text);
    }
}

#[test]
fn last_transition_records_when_and_why() {
    let (m, at) = master_by_timeout(config(100));
    assert_eq!(
        m.last_transition(),
        Some(&(at, Reason::MasterDownTimerExpired))
    );
}

// ---- Reload in place and the operator's handover ---------------------------------------

#[test]
fn a_master_reconfigured_keeps_its_state_and_advertises_a_new_interval_at_once() {
    let (mut m, at) = master_by_timeout(config(100));
    let now = at + Duration::from_millis(3);
    let mut c = config(150);
    c.preempt = false;
    // Only the configured priority changed: nothing to send yet (the caller feeds the
    // effective priority through tracking).
    assert_eq!(m.reconfigure(now, c.clone()).unwrap(), vec![]);
    assert_eq!(m.state(), State::Master);
    assert_eq!(m.poll_at(), Some(at + Duration::from_millis(10)));
    assert_eq!(
        m.handle(now, Event::PriorityChanged(150)),
        vec![Action::SendAdvert { priority: 150 }]
    );
    // A longer interval goes out at once, so the backups learn it before their down
    // timers (three old intervals) could run out; the next one follows it.
    c.advert_interval = centis(100);
    assert_eq!(
        m.reconfigure(now, c).unwrap(),
        vec![Action::SendAdvert { priority: 150 }]
    );
    assert_eq!(m.poll_at(), Some(now + Duration::from_secs(1)));
    assert_eq!(m.master_adver_interval(), centis(100));
    assert_eq!(m.state(), State::Master);
    assert!(m.last_transition().is_some_and(|(t, _)| *t == at));
}

#[test]
fn a_backup_reconfigured_keeps_following_its_master() {
    let mut m = started_backup(config(100));
    m.handle(ms(5), advert(PEER_HIGH, 200, 1));
    let down = m.poll_at();
    let mut c = config(90);
    c.advert_interval = centis(2);
    assert_eq!(m.reconfigure(ms(6), c).unwrap(), vec![]);
    assert_eq!(m.state(), State::Backup);
    assert_eq!(m.master_address(), Some(ip(PEER_HIGH)));
    assert_eq!(
        m.poll_at(),
        down,
        "the master's interval still rules its timer"
    );
}

#[test]
fn the_identity_cannot_be_reconfigured() {
    let mut m = started_backup(config(100));
    let mut c = config(100);
    c.vrid = 52;
    assert_eq!(m.reconfigure(ms(1), c), Err(ConfigError::IdentityChanged));
    let v6 = Config::new(51, Version::V3, 100, ip("fe80::11"));
    assert_eq!(m.reconfigure(ms(1), v6), Err(ConfigError::IdentityChanged));
    assert_eq!(m.config().vrid, 51);
}

#[test]
fn a_master_handed_over_resigns_and_yields_until_told_otherwise() {
    let (mut m, at) = master_by_timeout(config(150));
    let now = at + Duration::from_millis(2);
    assert_eq!(
        m.handle(now, Event::Resign),
        vec![
            Action::BecomeBackup {
                reason: Reason::HandedOver
            },
            Action::SendAdvert { priority: 0 }
        ]
    );
    assert!(m.yielding());
    // The successor (lower priority) is followed, not preempted.
    m.handle(now + Duration::from_millis(7), advert(PEER_LOW, 100, 1));
    assert_eq!(m.master_address(), Some(ip(PEER_LOW)));
    let down = m.poll_at().unwrap();
    m.handle(now + Duration::from_millis(17), advert(PEER_LOW, 100, 1));
    assert!(
        m.poll_at().unwrap() > down,
        "each advert restarts the down timer"
    );
    // Promoted: the next lower-priority advert is discarded and the down timer makes it
    // master again (preemption).
    m.set_yielding(false);
    m.handle(now + Duration::from_millis(27), advert(PEER_LOW, 100, 1));
    let t = m.poll_at().unwrap();
    let actions = m.poll(t);
    assert_eq!(m.state(), State::Master);
    assert!(matches!(
        actions[0],
        Action::BecomeMaster {
            reason: Reason::PreemptedLowerPriority { .. }
        }
    ));
    // A backup has nothing to hand over.
    let mut b = started_backup(config(100));
    assert_eq!(b.handle(ms(1), Event::Resign), vec![]);
    assert!(!b.yielding());
}
