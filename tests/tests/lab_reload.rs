//! SIGHUP reloads of a running vipd, with a second vipd as the peer and a client
//! resolving the VIPs every 2 ms: what did not change must not notice (no transition, no
//! unanswered probe), a change that needs a restart restarts that instance alone, a
//! broken file changes nothing, and a new instance starts. (Changes taken on in place,
//! one per kind, are `lab_reload_in_place.rs`.)

use std::{
    net::IpAddr,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use nix::sys::signal::Signal;
use serde_json::Value;
use vip_tests::{
    lab::{Lab, Method, ProbeRun, Prober, Vipd, vipd::strip_ansi},
    require_root,
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
const VIP1: &str = "192.0.2.1";
const VIP2: &str = "192.0.2.2";

fn section(name: &str, vrid: u8, priority: u16, vip: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {vrid}\npriority = {priority}\n\
         advert_interval = \"100ms\"\nvips = [\"{vip}/24\"]\n\n"
    )
}

fn probe(lab: &Lab, vip: &str) -> Result<Prober> {
    lab.probe(
        lab.client(),
        Method::Resolve,
        vip.parse::<IpAddr>()?,
        Duration::from_millis(2),
        Duration::from_secs(20),
        &[],
    )
}

/// Sends SIGHUP and waits for the outcome in the log (`configuration reloaded` or
/// `reload rejected`); returns what was logged from the signal on.
fn reload(v: &Vipd, outcome: &str) -> Result<String> {
    let mark = v.log_mark();
    let t0 = Instant::now();
    v.signal(Signal::SIGHUP)?;
    let log = v.wait_log(mark, outcome, Duration::from_secs(5))?;
    println!("  {} reload on {}: {:?}", outcome, v.router, t0.elapsed());
    Ok(log)
}

/// The part of an instance's status a reload must leave alone when it is unchanged.
fn identity(i: &Value) -> (Value, Value, Value, Value) {
    (
        i["state"].clone(),
        i["transitions"].clone(),
        i["last_transition"]["to"].clone(),
        i["last_transition"]["reason"].clone(),
    )
}

fn ago(i: &Value) -> u64 {
    i["last_transition"]["ago_ms"].as_u64().unwrap_or(0)
}

/// Every probe answered, by `who` alone.
fn served_without_gap(run: &ProbeRun, who: &str) -> Result<()> {
    println!("  {}", run.summary());
    ensure!(run.sent() >= 50, "{}", run.summary());
    ensure!(
        run.lost() == 0 && run.responders() == [who.into()].into(),
        "{who} answers every probe alone: {}",
        run.summary()
    );
    Ok(())
}

/// A SIGHUP with the same file: both instances of both routers keep their state, their
/// transition count and their last transition (which keeps ageing), and the client never
/// misses an answer.
#[test]
fn sighup_with_unchanged_config_keeps_state_without_transition_or_gap() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let bin = Path::new(VIPD);
    let r1 = lab.vipd(bin, lab.router(1), &section("gw", 51, 200, VIP1))?;
    let r2 = lab.vipd(bin, lab.router(2), &section("gw", 51, 100, VIP1))?;
    r1.wait_state("gw", "master", Duration::from_secs(5))?;
    r2.wait_state("gw", "backup", Duration::from_secs(5))?;
    let before = [r1.instance("gw")?, r2.instance("gw")?];

    let p = probe(&lab, VIP1)?;
    std::thread::sleep(Duration::from_millis(100));
    for v in [&r1, &r2] {
        let log = reload(v, "configuration reloaded")?;
        ensure!(
            log.contains("unchanged=1 changed=0 restarted=0 added=0 removed=0"),
            "{log}"
        );
    }
    // Several advert intervals after the reload: time for a restarted instance to show.
    std::thread::sleep(Duration::from_millis(400));
    let run = p.stop()?;
    served_without_gap(&run, "r1")?;

    for (v, b) in [&r1, &r2].into_iter().zip(&before) {
        let a = v.instance("gw")?;
        println!(
            "  {}: {} transitions {}, last {:?} {} ms ago (was {} ms)",
            v.router,
            a["state"],
            a["transitions"],
            a["last_transition"]["reason"],
            ago(&a),
            ago(b)
        );
        ensure!(
            identity(&a) == identity(b),
            "{} unchanged: before {b}, after {a}",
            v.router
        );
        ensure!(
            ago(&a) >= ago(b) + 400,
            "{}'s last transition kept ageing: {} then {} ms",
            v.router,
            ago(b),
            ago(&a)
        );
    }
    // r1 kept advertising through the reload, and r2 kept hearing it.
    let (s1, s2) = (r1.instance("gw")?, r2.instance("gw")?);
    ensure!(s1["adverts_sent"].as_u64() > before[0]["adverts_sent"].as_u64());
    ensure!(s2["adverts_received"].as_u64() > before[1]["adverts_received"].as_u64());
    Ok(())
}

/// r1 runs gw (VIP1) and gw2 (VIP2); the reload gives gw2 a `unicast_src_ip`, a change
/// that restarts an instance (`vrrp/change.rs`: its side of the tie-break changes). gw2
/// restarts (resigns, comes back as backup and preempts r2); gw is untouched and VIP1
/// never misses an answer.
#[test]
fn sighup_after_a_change_that_needs_a_restart_restarts_only_that_instance() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let bin = Path::new(VIPD);
    let gw = section("gw", 51, 200, VIP1);
    let r1 = lab.vipd(
        bin,
        lab.router(1),
        &(gw.clone() + &section("gw2", 52, 200, VIP2)),
    )?;
    let r2 = lab.vipd(
        bin,
        lab.router(2),
        &(section("gw", 51, 100, VIP1) + &section("gw2", 52, 100, VIP2)),
    )?;
    for name in ["gw", "gw2"] {
        r1.wait_state(name, "master", Duration::from_secs(5))?;
        r2.wait_state(name, "backup", Duration::from_secs(5))?;
    }
    let gw_before = r1.instance("gw")?;
    let r2_gw2_before = r2.instance("gw2")?;

    let p1 = probe(&lab, VIP1)?;
    let p2 = probe(&lab, VIP2)?;
    std::thread::sleep(Duration::from_millis(100));
    r1.rewrite(&(gw + &section("gw2", 52, 150, VIP2) + "unicast_src_ip = \"192.0.2.11\"\n"))?;
    let t0 = Instant::now();
    let log = reload(&r1, "configuration reloaded")?;
    ensure!(
        log.contains("unchanged=1 changed=0 restarted=1 added=0 removed=0")
            && log.contains("instance=gw2 outcome=restarted: unicast_src_ip changed"),
        "{log}"
    );
    // The restarted gw2 joins as backup and preempts r2 (100) after its down interval.
    wait_gw2_back(&r1, &r2)?;
    println!(
        "  gw2 back to master on r1 {:?} after the SIGHUP",
        t0.elapsed()
    );
    std::thread::sleep(Duration::from_millis(200));
    let (run1, run2) = (p1.stop()?, p2.stop()?);
    served_without_gap(&run1, "r1")?;
    println!("  VIP2 across gw2's restart: {}", run2.summary());
    ensure!(run2.overlaps().is_empty(), "{}", run2.summary());
    ensure!(
        run2.probes
            .last()
            .is_some_and(|p| p.responders() == ["r1".into()].into()),
        "r1 serves VIP2 again: {}",
        run2.summary()
    );

    let gw_after = r1.instance("gw")?;
    ensure!(
        identity(&gw_after) == identity(&gw_before),
        "gw untouched: before {gw_before}, after {gw_after}"
    );
    let g2 = r1.instance("gw2")?;
    println!("  r1 gw2 after the reload: {g2}");
    ensure!(
        g2["configured_priority"] == 150 && g2["priority"] == 150,
        "the new priority is in use: {g2}"
    );
    // A restarted instance starts counting afresh: startup (backup), then preempting r2.
    ensure!(
        g2["transitions"] == 2
            && g2["last_transition"]["reason"]
                == "preempted lower-priority master 192.0.2.12 (priority 100)"
            && ago(&g2) < t0.elapsed().as_millis() as u64,
        "gw2 restarted: {g2}"
    );
    // The old gw2 resigned as it stopped: r2 took over after its skew time, not after
    // missing adverts for a whole Master_Down_Interval.
    let r2_log = strip_ansi(&r2.log());
    ensure!(
        r2_log.contains(
            "instance=gw2 state=master priority=100 reason=priority 0 from master 192.0.2.11"
        ),
        "r2 saw gw2 resign: {r2_log}"
    );
    // r2 saw gw2 resign and come back: two more transitions (master, then backup).
    let r2_gw2 = r2.instance("gw2")?;
    ensure!(
        r2_gw2["transitions"].as_u64() == r2_gw2_before["transitions"].as_u64().map(|t| t + 2),
        "r2 took gw2 over and gave it back: {r2_gw2}"
    );
    Ok(())
}

/// r1's gw2 is master and r2's backs it up.
fn wait_gw2_back(r1: &Vipd, r2: &Vipd) -> Result<()> {
    r1.wait_state("gw2", "master", Duration::from_secs(3))?;
    r2.wait_state("gw2", "backup", Duration::from_secs(3))?;
    Ok(())
}

fn line_of(text: &str, needle: &str) -> Result<usize> {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .with_context(|| format!("{needle:?} not in the file"))
}

/// An invalid file (priority 300) is refused with its file:line; the running config goes
/// on as if nothing happened, and a corrected file then reloads without a transition.
#[test]
fn broken_file_on_reload_is_rejected_and_the_old_config_keeps_running() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let bin = Path::new(VIPD);
    let good = section("gw", 51, 200, VIP1);
    let r1 = lab.vipd(bin, lab.router(1), &good)?;
    let r2 = lab.vipd(bin, lab.router(2), &section("gw", 51, 100, VIP1))?;
    r1.wait_state("gw", "master", Duration::from_secs(5))?;
    r2.wait_state("gw", "backup", Duration::from_secs(5))?;
    let before = r1.instance("gw")?;

    let p = probe(&lab, VIP1)?;
    std::thread::sleep(Duration::from_millis(100));
    r1.rewrite(&section("gw", 51, 300, VIP1))?;
    let text = std::fs::read_to_string(&r1.config)?;
    let line = line_of(&text, "priority = 300")?;
    let log = reload(&r1, "reload rejected")?;
    let at = format!("{}:{line}:", r1.config.display());
    println!("  rejection logged: {}", log.trim());
    ensure!(
        log.contains(&at) && log.contains("priority"),
        "the error names {at} and the field: {log}"
    );
    std::thread::sleep(Duration::from_millis(400));
    let run = p.stop()?;
    served_without_gap(&run, "r1")?;
    let after = r1.instance("gw")?;
    ensure!(
        identity(&after) == identity(&before) && after["configured_priority"] == 200,
        "the old config runs on: before {before}, after {after}"
    );

    // The fixed file is the running one: nothing restarts.
    r1.rewrite(&good)?;
    let log = reload(&r1, "configuration reloaded")?;
    ensure!(log.contains("unchanged=1 changed=0 restarted=0"), "{log}");
    ensure!(identity(&r1.instance("gw")?) == identity(&before));
    Ok(())
}

/// A new instance added by reload starts (and preempts r2, which served its VIP alone);
/// taking it out again stops it and r2 takes its VIP back. gw is untouched throughout.
#[test]
fn reload_adding_an_instance_starts_it_and_removing_it_stops_it() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let bin = Path::new(VIPD);
    let gw = section("gw", 51, 200, VIP1);
    let r1 = lab.vipd(bin, lab.router(1), &gw)?;
    let r2 = lab.vipd(
        bin,
        lab.router(2),
        &(section("gw", 51, 100, VIP1) + &section("gw2", 52, 100, VIP2)),
    )?;
    r1.wait_state("gw", "master", Duration::from_secs(5))?;
    r2.wait_state("gw2", "master", Duration::from_secs(5))?;
    let gw_before = r1.instance("gw")?;

    let p1 = probe(&lab, VIP1)?;
    let p2 = probe(&lab, VIP2)?;
    std::thread::sleep(Duration::from_millis(100));
    r1.rewrite(&(gw.clone() + &section("gw2", 52, 200, VIP2)))?;
    let t0 = Instant::now();
    let log = reload(&r1, "configuration reloaded")?;
    ensure!(
        log.contains("unchanged=1 changed=0 restarted=0 added=1"),
        "{log}"
    );
    wait_gw2_back(&r1, &r2)?;
    println!(
        "  added gw2 master on r1 {:?} after the SIGHUP",
        t0.elapsed()
    );
    std::thread::sleep(Duration::from_millis(200));
    let run2 = p2.stop()?;
    println!("  VIP2 as gw2 arrives: {}", run2.summary());
    ensure!(run2.overlaps().is_empty(), "{}", run2.summary());
    let first_r1 = run2
        .first_answer_by("r1", run2.started)
        .context("r1 never answered VIP2")?;
    ensure!(
        run2.between(first_r1.sent, Instant::now())
            .all(|p| p.responders() == ["r1".into()].into()),
        "from its first answer on r1 alone serves VIP2: {}",
        run2.summary()
    );

    let p2 = probe(&lab, VIP2)?;
    std::thread::sleep(Duration::from_millis(100));
    r1.rewrite(&gw)?;
    let t1 = Instant::now();
    let log = reload(&r1, "configuration reloaded")?;
    ensure!(
        log.contains("unchanged=1 changed=0 restarted=0 added=0 removed=1"),
        "{log}"
    );
    r2.wait_state("gw2", "master", Duration::from_secs(3))?;
    println!("  r2 master of gw2 {:?} after the SIGHUP", t1.elapsed());
    std::thread::sleep(Duration::from_millis(200));
    let (run1, run2) = (p1.stop()?, p2.stop()?);
    println!("  VIP2 as gw2 leaves: {}", run2.summary());
    ensure!(run2.overlaps().is_empty(), "{}", run2.summary());
    ensure!(
        run2.probes
            .last()
            .is_some_and(|p| p.responders() == ["r2".into()].into()),
        "r2 serves VIP2 again: {}",
        run2.summary()
    );
    served_without_gap(&run1, "r1")?;
    let s = r1.status()?;
    ensure!(
        s["instances"].as_array().map(Vec::len) == Some(1),
        "gw2 is gone from r1: {s}"
    );
    ensure!(identity(&r1.instance("gw")?) == identity(&gw_before));
    Ok(())
}
