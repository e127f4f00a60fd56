//! Failover scenarios of issue 6, end to end in namespace labs: election, who answers ARP,
//! takeover after link loss and `kill -9`, graceful handover, preemption, IPv6, VMAC,
//! unicast peers and a healed split brain.
//!
//! Every failover is measured from the client: a prober resolves the VIP every 2 ms and
//! records which router answered each probe, so a takeover is the time from the old
//! master's last answer to the new master's first, and an overlap (two routers answering
//! one probe) fails the test. Figures are printed; run with `--nocapture` to see them.
//!
//! Bounds come from the issue: a takeover within the backup's Master_Down_Interval +
//! 20 ms, at most one probe lost on a graceful stop, zero overlap.

use std::{
    net::{IpAddr, Ipv6Addr},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use vip_tests::lab::{
    Frame, KeepalivedConfig, Lab, Mac, Method, Node, ProbeRun, Prober, Takeover, Vipd, mac_str,
    wait_until,
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
const INSTANCE: &str = "gw";
const VIP: &str = "192.0.2.1";
/// Probe cadence: fine enough to resolve a 10 ms advert interval.
const PROBE_EVERY: Duration = Duration::from_millis(2);
/// How long answers accumulate before and after an event.
const SETTLE: Duration = Duration::from_millis(300);
/// Generous: startup includes loading the XDP program on a shared, busy machine.
const ELECTION: Duration = Duration::from_secs(10);
/// The issue's slack on top of Master_Down_Interval.
const SLACK: Duration = Duration::from_millis(20);

/// A `[[vrrp]]` section for instance "gw", VRID 51; `extra` adds lines verbatim.
fn section(priority: u8, interval: &str, vip: &str, extra: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"{INSTANCE}\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\n\
         advert_interval = \"{interval}\"\nvips = [\"{vip}\"]\n{extra}"
    )
}

fn start(lab: &Lab, router: usize, priority: u8, interval: &str, vip: &str) -> Result<Vipd> {
    start_with(lab, router, &section(priority, interval, vip, ""))
}

fn start_with(lab: &Lab, router: usize, vrrp: &str) -> Result<Vipd> {
    lab.vipd(Path::new(VIPD), lab.router(router), vrrp)
}

/// Waits until every router is in its expected state at the same moment.
fn wait_roles(routers: &[(&Vipd, &str)], timeout: Duration) -> Result<Duration> {
    wait_until(
        "the expected roles",
        timeout,
        Duration::from_millis(5),
        || {
            let mut seen = Vec::new();
            for (v, want) in routers {
                let now = v.state_of(INSTANCE)?;
                if now != *want {
                    seen.push(format!("{} {now} (want {want})", v.router));
                }
            }
            if seen.is_empty() {
                Ok(true)
            } else {
                bail!("{}", seen.join(", "))
            }
        },
    )
}

/// Master_Down_Interval as `vipd status` reports it for the instance.
fn down_interval(v: &Vipd) -> Result<Duration> {
    let ms = v.instance(INSTANCE)?["master_down_interval_ms"]
        .as_f64()
        .context("no master_down_interval_ms")?;
    Ok(Duration::from_secs_f64(ms / 1e3))
}

/// The instance's last transition: (state, reason, daemon uptime at the transition in ms).
fn last_transition(v: &Vipd) -> Result<(String, String, u64)> {
    let s = v.status()?;
    let i = s["instances"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == INSTANCE))
        .context("no instance")?;
    let t = &i["last_transition"];
    let uptime = s["uptime_ms"].as_u64().context("no uptime_ms")?;
    let ago = t["ago_ms"].as_u64().context("no last_transition")?;
    Ok((
        t["to"].as_str().unwrap_or_default().to_owned(),
        t["reason"].as_str().unwrap_or_default().to_owned(),
        uptime.saturating_sub(ago),
    ))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `t` as UTC time of day, the form vipd's log lines carry, to line the two up.
fn wall_clock(run: &ProbeRun, t: Instant) -> String {
    let wall = run.wall_started + t.saturating_duration_since(run.started);
    let since = wall
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let s = since.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        since.subsec_micros()
    )
}

/// Who answered each probe from 10 ms before `around` to 30 ms after, for failures.
fn timeline(run: &ProbeRun, around: Instant) -> String {
    run.between(
        around - Duration::from_millis(10),
        around + Duration::from_millis(30),
    )
    .map(|p| format!("{} {:?}", wall_clock(run, p.sent), p.responders()))
    .collect::<Vec<_>>()
    .join("\n")
}

fn probe_vip(lab: &Lab, vip: IpAddr, method: Method, names: &[(Mac, &str)]) -> Result<Prober> {
    // Long enough for the slowest scenario; every test stops its prober itself.
    lab.probe(
        lab.client(),
        method,
        vip,
        PROBE_EVERY,
        Duration::from_secs(20),
        names,
    )
}

#[derive(Clone, Copy, Debug)]
enum Failure {
    /// The master's bridge port goes down: it loses carrier.
    LinkDown,
    /// `kill -9`: no resignation; its XDP program and lease stay behind.
    Kill,
}

fn fail(lab: &Lab, v: &Vipd, node: &Node, how: Failure) -> Result<()> {
    match how {
        Failure::LinkDown => lab.set_port(node, false),
        Failure::Kill => v.kill(),
    }
}

/// Fails the master r1 while the client probes `vip`, waits for r2 to take over, and
/// checks the issue's bounds: a client-side takeover within r2's Master_Down_Interval +
/// 20 ms, and r1 never answering once r2 has started. Returns the run and the takeover.
fn measure_failover(
    lab: &Lab,
    r1: &Vipd,
    r2: &Vipd,
    vip: IpAddr,
    how: Failure,
    label: &str,
) -> Result<(ProbeRun, Takeover)> {
    let mdi = down_interval(r2)?;
    let probe = probe_vip(lab, vip, Method::Resolve, &[])?;
    std::thread::sleep(SETTLE);
    let failed_at = Instant::now();
    fail(lab, r1, lab.router(1), how)?;
    r2.wait_state(INSTANCE, "master", Duration::from_secs(5))?;
    std::thread::sleep(SETTLE);
    let run = probe.stop()?;
    println!("{label}: {}", run.summary());
    let t = run
        .takeover("r1", "r2", failed_at)
        .with_context(|| format!("{label}: no takeover seen: {}", run.summary()))?;
    println!(
        "{label}: Master_Down_Interval {:.1} ms; client saw r1's last answer {:.1} ms after \
         the failure and r2's first {:.1} ms after: takeover gap {:.1} ms (bound {:.1} ms)",
        ms(mdi),
        ms(t.last_old.saturating_duration_since(failed_at)),
        ms(t.first_new.saturating_duration_since(failed_at)),
        ms(t.gap),
        ms(mdi + SLACK)
    );
    ensure!(
        run.overlaps().is_empty() && t.old_answers_after_new == 0,
        "{label}: two routers answered: {}",
        run.summary()
    );
    ensure!(
        run.first_answer_by("r2", run.started)
            .is_some_and(|p| p.sent >= failed_at),
        "{label}: r2 answered before r1 failed: {}",
        run.summary()
    );
    ensure!(
        t.gap <= mdi + SLACK,
        "{label}: takeover gap {:.1} ms exceeds Master_Down_Interval {:.1} ms + 20 ms",
        ms(t.gap),
        ms(mdi)
    );
    Ok((run, t))
}

// ---- 1. election ----

#[test]
fn election_among_three_goes_to_the_highest_priority() -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(3).build()?;
    let vip = format!("{VIP}/24");
    // Started in an order that makes the winner preempt one master and outrank a backup.
    let r1 = start(&lab, 1, 100, "100ms", &vip)?;
    let r2 = start(&lab, 2, 200, "100ms", &vip)?;
    let r3 = start(&lab, 3, 150, "100ms", &vip)?;
    let took = wait_roles(
        &[(&r1, "backup"), (&r2, "master"), (&r3, "backup")],
        ELECTION,
    )?;
    for b in [&r1, &r3] {
        // Each backup must have accepted the winner's adverts, not just sat there.
        wait_until(
            "backups to name r2 as master",
            Duration::from_secs(2),
            Duration::from_millis(10),
            || Ok(b.instance(INSTANCE)?["master"] == "192.0.2.12"),
        )?;
    }
    println!(
        "priorities 100/200/150: r2 master after {:.0} ms; {}",
        ms(took),
        r2.status_text()?
    );
    Ok(())
}

#[test]
fn election_between_equal_priorities_goes_to_the_highest_primary_address() -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(3).build()?;
    let vip = format!("{VIP}/24");
    // A backup accepts an equal-priority master whatever its address (RFC 9568 §6.4.2), so
    // the tie-break only decides when masters meet: isolate the routers so all three
    // become master, then let them hear each other.
    lab.block_vrrp_all()?;
    let r: Vec<Vipd> = (1..=3)
        .map(|i| start(&lab, i, 100, "100ms", &vip))
        .collect::<Result<_>>()?;
    wait_roles(
        &[(&r[0], "master"), (&r[1], "master"), (&r[2], "master")],
        ELECTION,
    )?;
    let joined = Instant::now();
    lab.unblock_vrrp_all();
    wait_roles(
        &[(&r[0], "backup"), (&r[1], "backup"), (&r[2], "master")],
        Duration::from_secs(5),
    )?;
    let took = joined.elapsed();
    for b in &r[..2] {
        wait_until(
            "the backups to follow r3",
            Duration::from_secs(2),
            Duration::from_millis(10),
            || Ok(b.instance(INSTANCE)?["master"] == "192.0.2.13"),
        )?;
        let (_, reason, _) = last_transition(b)?;
        println!("{} stepped down: {reason}", b.router);
        ensure!(
            reason.contains("equal priority advert from higher address"),
            "{} stepped down for another reason: {reason}",
            b.router
        );
    }
    println!(
        "three masters at priority 100 met: r3 (192.0.2.13) sole master {:.0} ms later",
        ms(took)
    );
    Ok(())
}

// ---- 2. ARP answered by XDP ----

#[test]
fn vip_arp_is_answered_by_the_masters_xdp_program_even_when_its_kernel_ignores_arp() -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let vip: IpAddr = VIP.parse()?;
    // arp_ignore=8: the kernel answers no ARP request at all, so every answer must come
    // from the XDP program.
    for n in [lab.router(1), lab.router(2)] {
        lab.exec(n, &["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=8"])?;
    }
    let r1 = start(&lab, 1, 200, "100ms", &format!("{VIP}/24"))?;
    let r2 = start(&lab, 2, 100, "100ms", &format!("{VIP}/24"))?;
    wait_roles(&[(&r1, "master"), (&r2, "backup")], ELECTION)?;

    // Control: r1's own address, which its kernel would normally answer, gets nothing.
    let own = lab.probe(
        lab.client(),
        Method::Resolve,
        IpAddr::V4(lab.router(1).ipv4),
        Duration::from_millis(10),
        Duration::from_millis(200),
        &[],
    )?;
    let own = own.finish()?;
    println!("control, r1's own address: {}", own.summary());
    ensure!(
        own.sent() > 0 && own.answered() == 0,
        "arp_ignore=8 did not silence r1's kernel: {}",
        own.summary()
    );

    let before =
        |v: &Vipd| -> Result<(u64, u64)> { Ok((v.xdp("arp_reply")?, v.xdp("vip_not_owned")?)) };
    let (r1_replies, _) = before(&r1)?;
    let (r2_replies, r2_dropped) = before(&r2)?;
    let run = lab
        .probe(
            lab.client(),
            Method::Resolve,
            vip,
            PROBE_EVERY,
            Duration::from_secs(1),
            &[],
        )?
        .finish()?;
    println!("{}", run.summary());
    let r1_replies = r1.xdp("arp_reply")? - r1_replies;
    let r2_replies = r2.xdp("arp_reply")? - r2_replies;
    let r2_dropped = r2.xdp("vip_not_owned")? - r2_dropped;
    println!(
        "XDP counters over the run: r1 arp_reply +{r1_replies}; r2 arp_reply +{r2_replies}, \
         vip_not_owned +{r2_dropped} ({} probes sent)",
        run.sent()
    );
    ensure!(
        run.answered() * 100 >= run.sent() * 99,
        "answers missing: {}",
        run.summary()
    );
    let master_mac = lab.router(1).mac;
    for p in &run.probes {
        for r in &p.replies {
            ensure!(
                r.mac == master_mac,
                "probe {} answered with {} (not r1's {})",
                p.seq,
                mac_str(&r.mac),
                mac_str(&master_mac)
            );
        }
    }
    ensure!(
        r1_replies >= run.answered() as u64,
        "r1's arp_reply rose by {r1_replies} for {} answers",
        run.answered()
    );
    ensure!(r2_replies == 0, "the backup answered {r2_replies} requests");
    // The backup's program drops the requests for a VIP it does not own (its kernel would
    // answer if the address lingered).
    ensure!(
        r2_dropped * 100 >= run.sent() as u64 * 99,
        "the backup dropped only {r2_dropped} of {} requests",
        run.sent()
    );
    Ok(())
}

// ---- 3. failover on link down and kill -9 ----

fn failover(interval: &str, how: Failure) -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let vip: IpAddr = VIP.parse()?;
    let r1 = start(&lab, 1, 200, interval, &format!("{VIP}/24"))?;
    let r2 = start(&lab, 2, 100, interval, &format!("{VIP}/24"))?;
    wait_roles(&[(&r1, "master"), (&r2, "backup")], ELECTION)?;
    let lapsed_before = r1.pinned_xdp("lease_expired")?;
    let label = format!("{how:?} at {interval}");
    let (run, t) = measure_failover(&lab, &r1, &r2, vip, how, &label)?;
    match how {
        Failure::Kill => {
            // r1's program outlives the daemon: once its lease lapsed it must drop every
            // request for the VIP (its kernel still has the address and would answer).
            let lapsed = r1.pinned_xdp("lease_expired")? - lapsed_before;
            let last = run
                .last_answer_by("r1", Instant::now())
                .map(|p| p.sent)
                .context("r1 never answered")?;
            let after = run.probes.iter().filter(|p| p.sent > last).count() as u64;
            println!(
                "{label}: dead r1's program dropped {lapsed} requests as lease_expired; \
                 {after} probes were sent after its last answer"
            );
            ensure!(
                after > 0 && lapsed * 100 >= after * 95,
                "dead r1 dropped {lapsed} requests as lease_expired, {after} were sent"
            );
            ensure!(
                run.last_answer_by("r1", Instant::now())
                    .is_some_and(|p| p.sent < t.first_new),
                "r1 answered after r2 took over"
            );
        }
        Failure::LinkDown => {
            // The link returns: r1 rejoins as backup and preempts r2 within its down
            // interval, and the handback never overlaps: r2's program releases its slot
            // on r1's advert before r1 answers (it waits TAKEOVER_GUARD, 1.5 ms). Measured
            // on the shared 2-core host under other builds: 38 handbacks (10 ms and 100 ms)
            // × 0 overlaps; an earlier count here saw about one in 25 overlap.
            let r1_mdi = down_interval(&r1)?;
            let probe = probe_vip(&lab, vip, Method::Resolve, &[])?;
            std::thread::sleep(SETTLE);
            let back = Instant::now();
            lab.set_port(lab.router(1), true)?;
            wait_roles(&[(&r1, "master"), (&r2, "backup")], Duration::from_secs(5))?;
            std::thread::sleep(SETTLE);
            let run = probe.stop()?;
            let t = run
                .takeover("r2", "r1", back)
                .with_context(|| format!("no handback seen: {}", run.summary()))?;
            println!(
                "{label}, link restored: {}; handback gap {:.1} ms, r1 master {:.1} ms \
                 after the link came back (its Master_Down_Interval {:.1} ms)",
                run.summary(),
                ms(t.gap),
                ms(t.first_new.saturating_duration_since(back)),
                ms(r1_mdi)
            );
            ensure!(
                t.first_new.saturating_duration_since(back) <= r1_mdi + Duration::from_secs(1),
                "r1 took {:.1} ms to take the VIP back",
                ms(t.first_new.saturating_duration_since(back))
            );
            ensure!(t.gap <= r1_mdi + SLACK, "handback gap {:.1} ms", ms(t.gap));
            ensure!(
                run.overlaps().is_empty() && t.old_answers_after_new == 0,
                "both answered at the handback: {}\n{}",
                run.summary(),
                timeline(&run, back)
            );
        }
    }
    Ok(())
}

#[test]
fn backup_takes_over_within_the_down_interval_when_the_master_link_drops_at_10ms() -> Result<()> {
    failover("10ms", Failure::LinkDown)
}

#[test]
fn backup_takes_over_within_the_down_interval_when_the_master_link_drops_at_100ms() -> Result<()> {
    failover("100ms", Failure::LinkDown)
}

#[test]
fn backup_takes_over_within_the_down_interval_when_the_master_is_killed_at_10ms() -> Result<()> {
    failover("10ms", Failure::Kill)
}

#[test]
fn backup_takes_over_within_the_down_interval_when_the_master_is_killed_at_100ms() -> Result<()> {
    failover("100ms", Failure::Kill)
}

// ---- 4. graceful stop ----

#[test]
fn graceful_stop_at_10ms_loses_at_most_one_probe_and_never_overlaps() -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let vip: IpAddr = VIP.parse()?;
    let r1 = start(&lab, 1, 200, "10ms", &format!("{VIP}/24"))?;
    let r2 = start(&lab, 2, 100, "10ms", &format!("{VIP}/24"))?;
    wait_roles(&[(&r1, "master"), (&r2, "backup")], ELECTION)?;
    let probe = probe_vip(&lab, vip, Method::Resolve, &[])?;
    std::thread::sleep(SETTLE);
    let stopped = Instant::now();
    r1.stop()?;
    r2.wait_state(INSTANCE, "master", Duration::from_secs(3))?;
    std::thread::sleep(SETTLE);
    let run = probe.stop()?;
    let t = run
        .takeover("r1", "r2", stopped)
        .with_context(|| format!("no handover seen: {}", run.summary()))?;
    // Loss is counted to the end of the run, not only until r2's first answer: a gap after
    // it (r2 stalling for a whole lease) is loss a client sees too. Measured on the shared
    // 2-core host with other builds running: 20 runs × 0 failures (0 or 1 probe lost).
    let lost_in_handover = run
        .between(stopped, Instant::now())
        .filter(|p| !p.answered())
        .count();
    println!(
        "vipd SIGTERM at 10 ms: {}; handover gap {:.1} ms, {lost_in_handover} probe(s) lost \
         in the handover",
        run.summary(),
        ms(t.gap)
    );
    ensure!(
        run.overlaps().is_empty() && t.old_answers_after_new == 0,
        "two routers answered: {}",
        run.summary()
    );
    if lost_in_handover > 1 {
        println!(
            "probes:\n{}\nr1 log:\n{}\nr2 log:\n{}",
            timeline(&run, stopped),
            r1.log(),
            r2.log()
        );
    }
    ensure!(
        lost_in_handover <= 1,
        "lost {lost_in_handover} probes in the handover: {}",
        run.summary()
    );

    // The same handover by keepalived in the same lab, for comparison only: its figure
    // is printed, not judged.
    r2.stop()?;
    let cfg = |priority| KeepalivedConfig {
        priority,
        advert_interval: Duration::from_millis(10),
        vips: vec![vip],
        ..Default::default()
    };
    let k1 = lab.keepalived(lab.router(1), &cfg(200))?;
    let k2 = lab.keepalived(lab.router(2), &cfg(100))?;
    k1.wait_state("MASTER", ELECTION)?;
    k2.wait_state("BACKUP", ELECTION)?;
    let probe = probe_vip(&lab, vip, Method::Resolve, &[])?;
    std::thread::sleep(SETTLE);
    k1.stop()?;
    k2.wait_state("MASTER", Duration::from_secs(3))?;
    std::thread::sleep(SETTLE);
    let krun = probe.stop()?;
    println!("keepalived SIGTERM at 10 ms: {}", krun.summary());
    Ok(())
}

// ---- 5. preemption when the higher-priority router returns ----

/// r1 (200) master, r2 (100) backup at 100 ms; r1 is killed, r2 takes over, r1 restarts.
/// Returns the lab, both daemons and r1's uptime (ms) at its startup transition.
fn higher_router_returns(extra: &str) -> Result<(Lab, Vipd, Vipd, u64)> {
    let lab = Lab::builder().routers(2).client().build()?;
    let vip = format!("{VIP}/24");
    let mut r1 = start_with(&lab, 1, &section(200, "100ms", &vip, extra))?;
    let r2 = start(&lab, 2, 100, "100ms", &vip)?;
    wait_roles(&[(&r1, "master"), (&r2, "backup")], ELECTION)?;
    r1.kill()?;
    r2.wait_state(INSTANCE, "master", Duration::from_secs(3))?;
    lab.start_vipd(&mut r1, &[])?;
    let (state, reason, at) = last_transition(&r1)?;
    ensure!(
        state == "backup" && reason == "startup",
        "restarted r1 is {state} ({reason}), expected a fresh backup"
    );
    Ok((lab, r1, r2, at))
}

#[test]
fn returning_higher_priority_router_preempts_after_its_down_interval() -> Result<()> {
    vip_tests::require_root();
    let (_lab, r1, r2, startup) = higher_router_returns("")?;
    let mdi = down_interval(&r1)?;
    wait_roles(&[(&r1, "master"), (&r2, "backup")], Duration::from_secs(3))?;
    let (_, reason, at) = last_transition(&r1)?;
    let took = Duration::from_millis(at - startup);
    println!(
        "preempt on: r1 master {:.0} ms after its startup (Master_Down_Interval {:.1} ms): {reason}",
        ms(took),
        ms(mdi)
    );
    ensure!(
        reason.contains("preempted lower-priority master 192.0.2.12"),
        "r1 became master for another reason: {reason}"
    );
    // Status times are whole milliseconds: allow 2 ms below, 50 ms of scheduling above.
    ensure!(
        took + Duration::from_millis(2) >= mdi && took <= mdi + Duration::from_millis(50),
        "took {:.0} ms, expected about {:.1} ms",
        ms(took),
        ms(mdi)
    );
    Ok(())
}

#[test]
fn returning_higher_priority_router_without_preempt_stays_backup() -> Result<()> {
    vip_tests::require_root();
    let (_lab, r1, r2, _) = higher_router_returns("preempt = false\n")?;
    let mdi = down_interval(&r1)?;
    let r2_transitions = r2.instance(INSTANCE)?["transitions"].as_u64();
    // Nothing is supposed to happen: watch for four of r1's down intervals.
    let watch = mdi * 4;
    let end = Instant::now() + watch;
    while Instant::now() < end {
        let state = r1.state_of(INSTANCE)?;
        ensure!(state == "backup", "r1 without preempt became {state}");
        std::thread::sleep(Duration::from_millis(20));
    }
    ensure!(r2.state_of(INSTANCE)? == "master", "r2 lost master");
    ensure!(
        r2.instance(INSTANCE)?["transitions"].as_u64() == r2_transitions,
        "r2 changed state meanwhile"
    );
    ensure!(
        r1.instance(INSTANCE)?["master"] == "192.0.2.12",
        "r1 does not follow r2"
    );
    println!(
        "preempt off: r1 (200) stayed backup behind r2 (100) for {:.0} ms",
        ms(watch)
    );
    Ok(())
}

#[test]
fn returning_higher_priority_router_waits_out_its_preempt_delay() -> Result<()> {
    vip_tests::require_root();
    let delay = Duration::from_millis(500);
    let (_lab, r1, r2, startup) = higher_router_returns("preempt_delay = \"500ms\"\n")?;
    let mdi = down_interval(&r1)?;
    wait_roles(&[(&r1, "master"), (&r2, "backup")], Duration::from_secs(3))?;
    let (_, reason, at) = last_transition(&r1)?;
    let took = Duration::from_millis(at - startup);
    println!(
        "preempt_delay 500ms: r1 master {:.0} ms after its startup (Master_Down_Interval \
         {:.1} ms): {reason}",
        ms(took),
        ms(mdi)
    );
    ensure!(
        reason.contains("preempted lower-priority master"),
        "r1 became master for another reason: {reason}"
    );
    // Within the delay r1 accepts r2 and restarts its down timer on every advert; after
    // it, the timer runs out at most one down interval later.
    ensure!(
        took >= delay,
        "r1 preempted after {:.0} ms, inside its 500 ms delay",
        ms(took)
    );
    ensure!(
        took <= delay + mdi + Duration::from_millis(50),
        "r1 preempted only after {:.0} ms",
        ms(took)
    );
    Ok(())
}

// ---- 6. IPv6 ----

/// Checks a Neighbor Advertisement frame for `target`: IPv6 from the VIP with hop limit
/// 255, Router + Override, Solicited exactly when it answers a solicitation, the target
/// link-layer address `mac` (also the Ethernet source), and a valid ICMPv6 checksum.
fn check_na(f: &[u8], target: Ipv6Addr, mac: Mac, solicited: bool) -> Result<()> {
    ensure!(f.len() >= 86, "NA frame of {} bytes", f.len());
    ensure!(f[12..14] == [0x86, 0xdd] && f[20] == 58, "not ICMPv6");
    ensure!(f[21] == 255, "hop limit {}", f[21]);
    let src: [u8; 16] = f[22..38].try_into()?;
    ensure!(
        Ipv6Addr::from(src) == target,
        "NA from {}",
        Ipv6Addr::from(src)
    );
    let len = u16::from_be_bytes([f[18], f[19]]) as usize;
    let icmp = f.get(54..54 + len).context("truncated NA")?;
    ensure!(icmp.len() >= 32, "NA body of {} bytes", icmp.len());
    ensure!(icmp[0] == 136 && icmp[1] == 0, "ICMPv6 type {}", icmp[0]);
    let want = 0x80 | 0x20 | if solicited { 0x40 } else { 0 };
    ensure!(
        icmp[4] & 0xe0 == want,
        "flags {:#04x}, want {want:#04x} (Router, Override{})",
        icmp[4],
        if solicited { ", Solicited" } else { "" }
    );
    ensure!(icmp[8..24] == target.octets(), "NA for another target");
    ensure!(
        icmp[24] == 2 && icmp[25] == 1,
        "no target link-layer address option"
    );
    ensure!(
        icmp[26..32] == mac && f[6..12] == mac,
        "target LLA {} / source {}, want {}",
        mac_str(icmp[26..32].try_into()?),
        mac_str(f[6..12].try_into()?),
        mac_str(&mac)
    );
    // The ones'-complement sum over pseudo-header and message must come out as 0xffff.
    let mut sum: u64 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(&f[22..54]);
    add(&(len as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ensure!(sum == 0xffff, "bad ICMPv6 checksum");
    Ok(())
}

#[test]
fn ipv6_vip_is_answered_with_a_correct_na_and_fails_over_on_kill() -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let target: Ipv6Addr = "2001:db8::1".parse()?;
    let r1 = start(&lab, 1, 200, "10ms", "2001:db8::1/64")?;
    let r2 = start(&lab, 2, 100, "10ms", "2001:db8::1/64")?;
    wait_roles(&[(&r1, "master"), (&r2, "backup")], ELECTION)?;
    let cap = lab.capture_port(lab.client(), "icmp6 and ip6[40] == 136")?;
    let (_, t) = measure_failover(
        &lab,
        &r1,
        &r2,
        IpAddr::V6(target),
        Failure::Kill,
        "IPv6 kill at 10ms",
    )?;
    let frames = cap.stop()?;
    let nas: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.data.get(62..78) == Some(&target.octets()[..]))
        .collect();
    // Answers go to the probe's own MAC (02:50:52:…); announcements to all-nodes.
    let answers = |mac: Mac| {
        nas.iter()
            .filter(move |f| f.data[6..12] == mac && f.data[..3] == [0x02, 0x50, 0x52])
    };
    let announced = |mac: Mac| {
        nas.iter()
            .filter(move |f| f.data[6..12] == mac && f.data[..6] == [0x33, 0x33, 0, 0, 0, 1])
    };
    let (m1, m2) = (lab.router(1).mac, lab.router(2).mac);
    let counts = format!(
        "{} NAs: r1 {} answers, r2 {} answers and {} announcements",
        nas.len(),
        answers(m1).count(),
        answers(m2).count(),
        announced(m2).count()
    );
    let (Some(a1), Some(a2), Some(u2)) =
        (answers(m1).next(), answers(m2).next(), announced(m2).next())
    else {
        bail!("captured {counts}");
    };
    check_na(&a1.data, target, m1, true).context("r1's answer")?;
    check_na(&a2.data, target, m2, true).context("r2's answer")?;
    check_na(&u2.data, target, m2, false).context("r2's unsolicited NA")?;
    println!(
        "IPv6: captured {counts}; flags, target LLA and checksums right; takeover gap \
         {:.1} ms",
        ms(t.gap)
    );
    Ok(())
}

// ---- 7. VMAC ----

const VMAC: Mac = [0x00, 0x00, 0x5e, 0x00, 0x01, 51];

fn client_neighbour(lab: &Lab, vip: &str) -> Result<String> {
    lab.exec(lab.client(), &["ip", "neigh", "show", vip, "dev", "eth0"])
        .map(|s| s.trim().to_owned())
}

fn vmac_pair(lab: &Lab) -> Result<(Vipd, Vipd)> {
    vmac_pair_with(lab, &[])
}

/// r1 (200) master and r2 (100) backup in VMAC mode, each run with `args`.
fn vmac_pair_with(lab: &Lab, args: &[&str]) -> Result<(Vipd, Vipd)> {
    let vip = format!("{VIP}/24");
    let mut routers = Vec::new();
    for (i, prio) in [(1, 200), (2, 100)] {
        let mut v = lab.vipd_configured(
            Path::new(VIPD),
            lab.router(i),
            &section(prio, "10ms", &vip, "vmac = true\n"),
        )?;
        lab.start_vipd(&mut v, args)?;
        routers.push(v);
    }
    let (r2, r1) = (routers.pop().expect("two"), routers.pop().expect("two"));
    wait_roles(&[(&r1, "master"), (&r2, "backup")], ELECTION)?;
    Ok((r1, r2))
}

#[test]
fn vmac_mode_keeps_the_clients_neighbour_entry_on_the_virtual_mac_across_failover() -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let vip: IpAddr = VIP.parse()?;
    let (r1, r2) = vmac_pair(&lab)?;
    let mdi = down_interval(&r2)?;
    // The client's own stack resolves the VIP once, so there is an entry for the new
    // master's announcement to keep or to spoil.
    lab.probe(
        lab.client(),
        Method::Ping,
        vip,
        Duration::from_millis(10),
        Duration::from_millis(50),
        &[],
    )?
    .finish()?;
    let before = client_neighbour(&lab, VIP)?;
    // Both routers answer from the same MAC: what each sent is read on its bridge port.
    let c1 = lab.capture_port(lab.router(1), "arp")?;
    let c2 = lab.capture_port(lab.router(2), "arp")?;
    let probe = probe_vip(&lab, vip, Method::Resolve, &[(VMAC, "vmac")])?;
    std::thread::sleep(SETTLE);
    let failed_at = Instant::now();
    r1.kill()?;
    r2.wait_state(INSTANCE, "master", Duration::from_secs(3))?;
    std::thread::sleep(SETTLE);
    let mut run = probe.stop()?;
    let after = client_neighbour(&lab, VIP)?;
    let (f1, f2) = (c1.stop()?, c2.stop()?);
    let matched = run.attribute(&[("r1", &f1), ("r2", &f2)]);
    // r2's takeover announcements: gratuitous ARP for the VIP, which must name the VMAC.
    let garps: Vec<Mac> = f2
        .iter()
        .filter_map(|f| match f.kind() {
            vip_tests::lab::Kind::ArpRequest {
                sender_mac,
                sender_ip,
                target_ip,
            } if IpAddr::V4(sender_ip) == vip && sender_ip == target_ip => Some(sender_mac),
            _ => None,
        })
        .collect();
    println!("VMAC: client neighbour before: {before}; after: {after}");
    println!(
        "VMAC: {} ({matched} replies attributed by port; r2 sent {} gratuitous ARPs)",
        run.summary(),
        garps.len()
    );
    let want = format!("lladdr {}", mac_str(&VMAC));
    ensure!(
        before.contains(&want) && after.contains(&want),
        "client's entry for the VIP is not the VMAC: before {before:?}, after {after:?}"
    );
    ensure!(
        !garps.is_empty() && garps.iter().all(|m| *m == VMAC),
        "r2 announced {:?}",
        garps.iter().map(mac_str).collect::<Vec<_>>()
    );
    for p in &run.probes {
        ensure!(
            p.replies.iter().all(|r| r.mac == VMAC),
            "probe {} answered with a MAC other than the VMAC",
            p.seq
        );
    }
    let t = run
        .takeover("r1", "r2", failed_at)
        .with_context(|| format!("no takeover seen: {}", run.summary()))?;
    println!(
        "VMAC: takeover gap {:.1} ms (bound {:.1} ms)",
        ms(t.gap),
        ms(mdi + SLACK)
    );
    ensure!(
        run.overlaps().is_empty() && t.old_answers_after_new == 0,
        "two routers answered: {}",
        run.summary()
    );
    ensure!(t.gap <= mdi + SLACK, "takeover gap {:.1} ms", ms(t.gap));
    Ok(())
}

/// Traffic to the VIP itself in VMAC mode, in native mode on the lab's veths. A veth
/// classifies a frame for the VMAC as "another host" (`PACKET_OTHERHOST`) before its XDP
/// program readdresses it to the interface's MAC, and keeps that type; vipd's tc ingress
/// classifier (`vip-ebpf/src/vmac.rs`, `to_host`) makes it the host's, with no nftables
/// rule or other help from the lab. ICMP, UDP and TCP to the VIP all reach the master
/// through the VMAC, and the kernel drops none of it as another host's.
#[test]
fn vmac_mode_carries_icmp_udp_and_tcp_to_the_vip() -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let (r1, _r2) = vmac_pair(&lab)?;
    vmac_traffic_reaches_the_master(&lab, &r1, true)
}

/// The same in generic (skb) mode, where the kernel reclassifies a frame whose
/// destination the program changed: the classifier has nothing to do there.
#[test]
fn vmac_mode_carries_icmp_udp_and_tcp_to_the_vip_in_generic_mode() -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let (r1, _r2) = vmac_pair_with(&lab, &["--xdp-mode", "generic"])?;
    vmac_traffic_reaches_the_master(&lab, &r1, false)
}

/// A UDP and TCP echo server on the VIP: each datagram and the first segment of each
/// connection sent back. It stops after 15 s without a client.
const ECHO_SERVER: &str = r#"
import socket, sys, threading
vip, port = sys.argv[1], int(sys.argv[2])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((vip, port))
u.settimeout(15)
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind((vip, port))
t.listen(8)
t.settimeout(15)
def udp():
    try:
        while True:
            d, a = u.recvfrom(2048)
            u.sendto(d, a)
    except OSError:
        pass
threading.Thread(target=udp, daemon=True).start()
print("ready", flush=True)
try:
    while True:
        c, _ = t.accept()
        c.settimeout(5)
        c.sendall(c.recv(2048))
        c.close()
except OSError:
    pass
"#;

/// 20 UDP datagrams (0.5 s each at most) and 5 TCP connections (2 s each at most) to
/// the echo server; prints how many of each came back intact.
const ECHO_CLIENT: &str = r#"
import socket, sys
vip, port = sys.argv[1], int(sys.argv[2])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(0.5)
udp = 0
for i in range(20):
    m = b"udp %d" % i
    u.sendto(m, (vip, port))
    try:
        udp += u.recvfrom(2048)[0] == m
    except OSError:
        pass
tcp = 0
for i in range(5):
    m = b"tcp %d" % i
    try:
        c = socket.create_connection((vip, port), timeout=2)
        c.settimeout(2)
        c.sendall(m)
        tcp += c.recv(2048) == m
        c.close()
    except OSError:
        pass
print(udp, tcp)
"#;

/// Kills the echo server however the test ends.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Frames `node`'s eth0 dropped as addressed to another host (`ip -s -s link`:
/// `otherhost`, absent while zero).
fn otherhost(lab: &Lab, node: &Node) -> Result<u64> {
    let out = lab.exec(node, &["ip", "-s", "-s", "-j", "link", "show", "eth0"])?;
    let v: serde_json::Value = serde_json::from_str(&out).context("ip -j link")?;
    Ok(v[0]["stats64"]["rx"]["otherhost"].as_u64().unwrap_or(0))
}

/// `native`: whether r1's veth runs the program natively, so every readdressed frame
/// arrives as another host's and the classifier hands it over (`vmac_to_host`); in
/// generic mode the kernel does and the classifier sees none.
fn vmac_traffic_reaches_the_master(lab: &Lab, r1: &Vipd, native: bool) -> Result<()> {
    use std::io::BufRead as _;
    let port = "7051";
    let mut server = vip_tests::lab::netns::nsenter(
        &lab.router(1).ns,
        &["python3", "-c", ECHO_SERVER, VIP, port],
    );
    server
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let mut server = Reap(server.spawn().context("starting the echo server")?);
    let mut ready = String::new();
    std::io::BufReader::new(server.0.stdout.take().context("server stdout")?)
        .read_line(&mut ready)?;
    ensure!(ready.trim() == "ready", "echo server: {ready:?}");
    let dropped_before = otherhost(lab, lab.router(1))?;
    let pings = lab
        .probe(
            lab.client(),
            Method::Ping,
            VIP.parse()?,
            Duration::from_millis(5),
            Duration::from_millis(500),
            &[(VMAC, "vmac")],
        )?
        .finish()?;
    let echoed = lab.exec(lab.client(), &["python3", "-c", ECHO_CLIENT, VIP, port])?;
    let (udp, tcp) = echoed
        .trim()
        .split_once(' ')
        .and_then(|(u, t)| Some((u.parse::<u32>().ok()?, t.parse::<u32>().ok()?)))
        .with_context(|| format!("echo client printed {echoed:?}"))?;
    drop(server);
    let neighbour = client_neighbour(lab, VIP)?;
    let dropped = otherhost(lab, lab.router(1))? - dropped_before;
    let (accepted, to_host) = (r1.xdp("vmac_accept")?, r1.xdp("vmac_to_host")?);
    println!(
        "VMAC traffic: ping {}; UDP {udp}/20 and TCP {tcp}/5 echoed; client neighbour \
         {neighbour}; r1 vmac_accept {accepted}, vmac_to_host {to_host}, otherhost drops \
         {dropped}",
        pings.summary()
    );
    ensure!(
        neighbour.contains(&format!("lladdr {}", mac_str(&VMAC))),
        "the client does not send to the VMAC: {neighbour:?}"
    );
    ensure!(
        pings.answered() * 100 >= pings.sent() * 95,
        "pings to the VIP in VMAC mode: {}",
        pings.summary()
    );
    ensure!(udp == 20 && tcp == 5, "echoed UDP {udp}/20, TCP {tcp}/5");
    ensure!(
        dropped == 0,
        "r1 dropped {dropped} frames as another host's"
    );
    // Everything the client sent went to the VMAC: the echoes alone are 20 datagrams and
    // at least 3 segments per connection.
    let sent = pings.sent() as u64 + 20 + 5 * 3;
    ensure!(
        accepted >= sent,
        "frames readdressed from the VMAC: {accepted} of at least {sent}"
    );
    if native {
        ensure!(
            to_host == accepted,
            "handed to the host: {to_host} of {accepted} readdressed"
        );
    } else {
        ensure!(to_host == 0, "generic mode handed over {to_host}");
    }
    Ok(())
}

// ---- 8. unicast peers ----

#[test]
fn unicast_peers_elect_and_fail_over_with_multicast_vrrp_blocked() -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let vip = format!("{VIP}/24");
    // No multicast advert crosses the bridge: without unicast both would become master.
    lab.block_vrrp_all()?;
    let r1 = start_with(
        &lab,
        1,
        &section(200, "10ms", &vip, "unicast_peers = [\"192.0.2.12\"]\n"),
    )?;
    let r2 = start_with(
        &lab,
        2,
        &section(100, "10ms", &vip, "unicast_peers = [\"192.0.2.11\"]\n"),
    )?;
    wait_roles(&[(&r1, "master"), (&r2, "backup")], ELECTION)?;
    let i2 = r2.instance(INSTANCE)?;
    println!(
        "unicast: r2 backup following {} after {} adverts received",
        i2["master"], i2["adverts_received"]
    );
    ensure!(i2["master"] == "192.0.2.11", "r2 follows {}", i2["master"]);
    measure_failover(
        &lab,
        &r1,
        &r2,
        VIP.parse()?,
        Failure::Kill,
        "unicast kill at 10ms",
    )?;
    Ok(())
}

// ---- 9. split brain healed ----

fn neighbour_is(lab: &Lab, mac: Mac) -> impl FnMut() -> Result<bool> + '_ {
    let want = format!("lladdr {}", mac_str(&mac));
    move || Ok(client_neighbour(lab, VIP)?.contains(&want))
}

#[test]
fn healed_split_brain_leaves_the_higher_master_which_reclaims_the_client() -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let vip: IpAddr = VIP.parse()?;
    let r1 = start(&lab, 1, 200, "10ms", &format!("{VIP}/24"))?;
    let r2 = start(&lab, 2, 100, "10ms", &format!("{VIP}/24"))?;
    wait_roles(&[(&r1, "master"), (&r2, "backup")], ELECTION)?;
    let (m1, m2) = (lab.router(1).mac, lab.router(2).mac);
    // The client needs a neighbour entry for gratuitous ARP to update.
    lab.probe(
        lab.client(),
        Method::Ping,
        vip,
        Duration::from_millis(10),
        Duration::from_millis(100),
        &[],
    )?
    .finish()?;
    wait_until(
        "the client to resolve the VIP to r1",
        Duration::from_secs(2),
        Duration::from_millis(5),
        neighbour_is(&lab, m1),
    )?;
    // Blocking VRRP on r2's port cuts the only link between the two routers. Unblocking
    // detaches its ingress filter, then its egress filter, each an RCU grace period apart:
    // r2's adverts can reach r1 a few milliseconds before r1's reach r2. Within that
    // order, who hears whom first still varies from round to round (r1 may hear a
    // periodic advert of r2, or r2 may hear r1 first and yield); rounds cover both.
    for round in 1..=4 {
        let probe = probe_vip(&lab, vip, Method::Resolve, &[])?;
        lab.block_vrrp(lab.router(2))?;
        wait_roles(&[(&r1, "master"), (&r2, "master")], Duration::from_secs(3))?;
        // r2's takeover announcement moved the client to r2: the harm to undo.
        wait_until(
            "r2's gratuitous ARP to move the client",
            Duration::from_secs(2),
            Duration::from_millis(5),
            neighbour_is(&lab, m2),
        )?;
        std::thread::sleep(Duration::from_millis(100));
        let split = probe.stop()?;
        ensure!(
            !split.overlaps().is_empty(),
            "round {round}: both masters should answer during the split: {}",
            split.summary()
        );
        let healed = Instant::now();
        lab.unblock_vrrp(lab.router(2));
        wait_roles(&[(&r1, "master"), (&r2, "backup")], Duration::from_secs(3))?;
        // When r2 stepped down, from its own status (the polling above is coarser).
        let (_, _, down_at) = last_transition(&r2)?;
        let uptime = r2.status()?["uptime_ms"].as_u64().unwrap_or_default();
        let one_master = healed
            .elapsed()
            .saturating_sub(Duration::from_millis(uptime.saturating_sub(down_at)));
        wait_until(
            "the client to be moved back to r1",
            Duration::from_secs(1),
            Duration::from_millis(2),
            neighbour_is(&lab, m1),
        )
        .with_context(|| {
            format!(
                "round {round}: client left on r2 after the heal\nr1:\n{}\nr2:\n{}",
                r1.log(),
                r2.log()
            )
        })?;
        let reclaimed = healed.elapsed();
        let ping = lab
            .probe(
                lab.client(),
                Method::Ping,
                vip,
                Duration::from_millis(5),
                Duration::from_millis(200),
                &[],
            )?
            .finish()?;
        println!(
            "round {round}: split {}; healed: r2 backup {:.0} ms and the client back on r1 \
             within {:.1} ms of the unblock; then {}",
            split.summary(),
            ms(one_master),
            ms(reclaimed),
            ping.summary()
        );
        ensure!(
            ping.answered() * 100 >= ping.sent() * 95
                && ping.responders().into_iter().eq(["r1".to_string()]),
            "round {round}: pings after the heal: {}",
            ping.summary()
        );
    }
    Ok(())
}
