//! Another station claiming an owned VIP: what `CONFLICTS` records, and what a flood of
//! claims costs. A claim of a VIP with an entry is counted in this CPU's copy in place
//! (no insert, no lock); only a VIP without one inserts, within the CPU's budget of new
//! entries per window (`vip_common::CONFLICT_NEW_PER_WINDOW`).

use std::time::Duration;

use nix::{sched::CpuSet, unistd::Pid};
use vip_common::{
    CONFLICT_NEW_PER_WINDOW, CONFLICT_NEW_WINDOW_NS, Conflict, GroupState, LEASE_FOREVER, VipKey,
};
use vip_tests::{
    frames,
    xdp::{Responder, TEST_IFINDEX, XDP_PASS},
};

use crate::common::*;

const THIRD_MAC: [u8; 6] = [0x02, 0x13, 0, 0, 0, 0x0d];

/// `CLOCK_MONOTONIC_COARSE`, the clock the program stamps conflicts with.
fn coarse_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC_COARSE).unwrap();
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// Keeps the calling thread on `cpu`: BPF_PROG_TEST_RUN runs the program on the caller's
/// CPU, and both the map copies and the budget are per CPU.
fn pin_to(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu).unwrap();
    nix::sched::sched_setaffinity(Pid::from_raw(0), &set).unwrap();
}

/// The CPUs this thread may run on.
fn cpus() -> Vec<usize> {
    let set = nix::sched::sched_getaffinity(Pid::from_raw(0)).unwrap();
    (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect()
}

fn conflict_of(r: &mut Responder, vip: [u8; 4]) -> Option<Conflict> {
    let key = VipKey::v4(TEST_IFINDEX, 0, vip);
    r.maps()
        .conflicts()
        .unwrap()
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, c)| c)
}

#[test]
fn a_flood_of_claims_moves_one_entry_in_place_and_counts_every_claim() {
    let mut r = responder(true);
    let garp = frames::garp(OTHER_MAC, VIP);
    let before = coarse_ns();
    assert_eq!(r.run(&garp), (XDP_PASS, garp.clone()));
    // 10,000 more in one BPF_PROG_TEST_RUN call: the kernel loops over the same frame.
    let (verdict, _) = r.time(&garp, 10_000);
    let after = coarse_ns();
    assert_eq!(verdict, XDP_PASS);
    assert_eq!(moved(&r.counters()), [("conflict_seen", 10_001)]);
    let all = r.maps().conflicts().unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    let c = conflict_of(&mut r, VIP).unwrap();
    assert_eq!((c.mac, c.count), (OTHER_MAC, 10_001));
    assert!(
        (before..=after).contains(&c.last_seen_ns),
        "last seen {} outside [{before}, {after}]",
        c.last_seen_ns
    );
    // The next claimant replaces the MAC at once: every claim writes it.
    let reply = frames::arp_reply(THIRD_MAC, VIP, CLIENT_MAC, CLIENT_IP);
    r.run(&reply);
    let c = conflict_of(&mut r, VIP).unwrap();
    assert_eq!((c.mac, c.count), (THIRD_MAC, 10_002));
}

/// Each CPU counts in its own copy; the daemon's view adds them up and names the claimant
/// seen last on any of them.
#[test]
fn claims_on_two_cpus_are_one_conflict_with_both_counts_and_the_latest_claimant() {
    let cpus = cpus();
    let mut r = responder(true);
    pin_to(cpus[0]);
    r.time(&frames::garp(OTHER_MAC, VIP), 3);
    // The coarse clock must move between the two, or "latest" has no meaning.
    std::thread::sleep(Duration::from_millis(20));
    let second = *cpus.get(1).unwrap_or(&cpus[0]);
    pin_to(second);
    r.time(&frames::garp(THIRD_MAC, VIP), 2);
    let c = conflict_of(&mut r, VIP).unwrap();
    assert_eq!(
        (c.mac, c.count),
        (THIRD_MAC, 5),
        "CPUs {} and {second}",
        cpus[0]
    );
    assert_eq!(moved(&r.counters()), [("conflict_seen", 5)]);
}

/// 192.0.2.10 and on, all owned in `SLOT`.
fn many_vips(n: u8) -> (Responder, Vec<[u8; 4]>) {
    let mut r = Responder::load();
    let vips: Vec<[u8; 4]> = (0..n).map(|i| [192, 0, 2, 10 + i]).collect();
    for vip in &vips {
        r.maps()
            .add_vip(VipKey::v4(TEST_IFINDEX, 0, *vip), vip_value(ROUTER_MAC))
            .unwrap();
    }
    r.maps()
        .set_group(SLOT, GroupState::owned_until(LEASE_FOREVER))
        .unwrap();
    (r, vips)
}

/// A flood claiming more VIPs than the budget allows inserts no more than the budget per
/// window on a CPU (each insert takes the map's locks, and evicts once it is full); the
/// rest are counted as unrecorded. A VIP that has an entry is still counted in place
/// while the budget is used up, and a new one is recorded again in the next window.
#[test]
fn new_conflict_entries_are_limited_per_cpu_and_window() {
    let budget = CONFLICT_NEW_PER_WINDOW as usize;
    let cpu = cpus()[0];
    pin_to(cpu);
    // All the claims must fall in one window; a machine too busy for that retries.
    let (mut r, vips) = (0..5)
        .find_map(|_| {
            let (mut r, vips) = many_vips(budget as u8 + 1);
            let start = coarse_ns();
            for vip in &vips {
                r.run(&frames::garp(OTHER_MAC, *vip));
            }
            (coarse_ns() - start < CONFLICT_NEW_WINDOW_NS).then_some((r, vips))
        })
        .expect("65 test runs within one 100 ms window in five tries");
    let last = *vips.last().unwrap();
    let c = r.counters();
    assert_eq!(
        (c.conflict_seen, c.conflict_unrecorded),
        (budget as u64 + 1, 1)
    );
    assert_eq!(r.maps().conflicts().unwrap().len(), budget);
    assert_eq!(conflict_of(&mut r, last), None);
    // The budget is spent, yet a recorded VIP's claims all count: no insert is needed.
    r.time(&frames::garp(THIRD_MAC, vips[0]), 1_000);
    let c = conflict_of(&mut r, vips[0]).unwrap();
    assert_eq!((c.mac, c.count), (THIRD_MAC, 1_001));
    assert_eq!(r.counters().conflict_unrecorded, 1);
    // The next window has a fresh budget.
    std::thread::sleep(Duration::from_nanos(CONFLICT_NEW_WINDOW_NS) + Duration::from_millis(20));
    r.run(&frames::garp(OTHER_MAC, last));
    assert_eq!(conflict_of(&mut r, last).map(|c| c.count), Some(1));
    assert_eq!(r.maps().conflicts().unwrap().len(), budget + 1);
    assert_eq!(r.counters().conflict_unrecorded, 1);
}
