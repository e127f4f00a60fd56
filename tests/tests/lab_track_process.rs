//! `track_processes` with real processes: r1 (priority 200) tracks a process, r2 (100)
//! backs it up, both advertising every 100 ms with preempt on. Processes with a name of
//! their own (a symbolic link to `sleep` or `python3` in the lab's scratch directory, so
//! the kernel names the process after the link) are started in r1's namespace, forked
//! and killed, and r1's priority must move exactly as keepalived's `vrrp_track_process`
//! says, delays included: in r1's status, and on the wire, where r2 names the priority
//! of the advertisement it acted on.
//!
//! The lab's vipd runs in a network namespace of its own, where the kernel has no
//! process connector; the harness hands it a connector socket opened in the initial one
//! (`Vipd::hand_proc_events`, systemd's socket-passing convention; docs/operations.md).

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use nix::sys::signal::Signal;
use serde_json::Value;
use vip_tests::{
    lab::{Lab, Proc, Vipd, wait_until},
    require_root,
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
/// r2's Master_Down_Interval at 100 ms adverts, and slack for a loaded machine.
const TAKEOVER: Duration = Duration::from_secs(3);

fn section(priority: u8, tracking: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\n\
         advert_interval = \"100ms\"\nvips = [\"192.0.2.1/24\"]\n{tracking}"
    )
}

/// A process name no other test on the machine uses (at most 15 bytes, the kernel's
/// limit): other labs may run at the same time, and their processes would count too.
fn unique(tag: &str) -> String {
    format!("vt{tag}{}", std::process::id() % 1_000_000)
}

/// `program` under `name` in the lab's scratch directory.
fn named(lab: &Lab, program: &str, name: &str) -> Result<PathBuf> {
    let link = lab.scratch("programs")?.join(name);
    std::os::unix::fs::symlink(program, &link)?;
    Ok(link)
}

struct Pair {
    lab: Lab,
    r1: Vipd,
    r2: Vipd,
}

/// r1 at 200 tracking `tracking`, r2 at 100; started, not yet settled.
fn pair(lab: Lab, tracking: &str) -> Result<Pair> {
    let bin = Path::new(VIPD);
    let mut r1 = lab.vipd_configured(bin, lab.router(1), &section(200, tracking))?;
    r1.hand_proc_events();
    lab.start_vipd(&mut r1, &[])?;
    let r2 = lab.vipd(bin, lab.router(2), &section(100, ""))?;
    Ok(Pair { lab, r1, r2 })
}

fn gw(v: &Vipd) -> Result<Value> {
    v.instance("gw")
}

fn priority(v: &Vipd) -> Result<u64> {
    gw(v)?["priority"].as_u64().context("no priority")
}

/// The status of r1's tracked process `i`.
fn tracked(v: &Vipd, i: usize) -> Result<Value> {
    let t = gw(v)?["tracking"]
        .as_array()
        .context("no tracking")?
        .iter()
        .filter(|t| t["kind"] == "process")
        .nth(i)
        .cloned();
    t.with_context(|| format!("no tracked process {i}"))
}

fn count(v: &Vipd, i: usize) -> Result<u64> {
    tracked(v, i)?["count"].as_u64().context("no count")
}

/// Waits until r1's effective priority is `want`; how long that took from `since`.
fn wait_priority(v: &Vipd, want: u64, since: Instant, timeout: Duration) -> Result<Duration> {
    wait_until(
        &format!("r1's effective priority to be {want}"),
        timeout,
        Duration::from_millis(2),
        || {
            let p = priority(v)?;
            ensure!(p == want, "priority {p}");
            Ok(true)
        },
    )?;
    Ok(since.elapsed())
}

/// r1's priority stays `want` for `span`, sampled every few milliseconds.
fn holds(v: &Vipd, want: u64, span: Duration) -> Result<usize> {
    let end = Instant::now() + span;
    let mut samples = 0;
    while Instant::now() < end {
        let p = priority(v)?;
        ensure!(p == want, "r1's priority moved to {p} (sample {samples})");
        samples += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(samples)
}

/// r2's last transition was caused by an advertisement from r1 at `priority`: the
/// priority on the wire.
fn r2_heard(p: &Pair, to: &str, priority: u64) -> Result<()> {
    let want = if to == "master" {
        format!("preempted lower-priority master 192.0.2.11 (priority {priority})")
    } else {
        format!("higher priority advert from 192.0.2.11 (priority {priority})")
    };
    let t = gw(&p.r2)?["last_transition"].clone();
    ensure!(
        t["to"] == to && t["reason"] == want.as_str(),
        "r2's last transition is {t}, expected to {to}: \"{want}\""
    );
    Ok(())
}

impl Pair {
    fn start(&self, program: &Path, args: &[&str]) -> Result<Proc> {
        let mut argv = vec![program.to_str().context("path")?];
        argv.extend_from_slice(args);
        self.lab.spawn(self.lab.router(1), &argv)
    }

    fn r1_master(&self) -> Result<()> {
        self.r1.wait_state("gw", "master", TAKEOVER)?;
        self.r2.wait_state("gw", "backup", TAKEOVER)?;
        Ok(())
    }

    fn r2_master(&self) -> Result<()> {
        self.r2.wait_state("gw", "master", TAKEOVER)?;
        self.r1.wait_state("gw", "backup", TAKEOVER)?;
        Ok(())
    }
}

/// keepalived's meaning of a negative weight: taken off while the process does not run.
/// Not running at start: 200 - 150 = 50, r2 is master. Started: 200 at once (an exec
/// counts without delay) and r1 preempts. Killed: 200 until terminate_delay (500 ms) has
/// passed, then 50, and r2 preempts r1 on the strength of its advertised 50. Killed and
/// started again within terminate_delay: the priority never moves.
#[test]
fn a_started_and_killed_process_moves_the_priority_after_terminate_delay() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).build()?;
    let name = unique("s");
    let program = named(&lab, "/bin/sleep", &name)?;
    let p = pair(
        lab,
        &format!(
            "track_processes = [{{ name = \"{name}\", weight = -150, terminate_delay = \"500ms\" }}]\n"
        ),
    )?;
    p.r2_master()?;
    ensure!(priority(&p.r1)? == 50, "{}", gw(&p.r1)?);
    let t = tracked(&p.r1, 0)?;
    ensure!(
        t["count"] == 0 && t["state"] == "no quorum" && t["failing"] == true,
        "{t}"
    );

    let t0 = Instant::now();
    let sleeper = p.start(&program, &["300"])?;
    let took = wait_priority(&p.r1, 200, t0, Duration::from_secs(2))?;
    p.r1_master()?;
    r2_heard(&p, "backup", 200)?;
    ensure!(count(&p.r1, 0)? == 1);
    println!("started: r1 at 200 {took:?} after the spawn; r1 master");

    let t0 = Instant::now();
    sleeper.kill()?;
    // Within terminate_delay nothing moves.
    let samples = holds(&p.r1, 200, Duration::from_millis(400))?;
    ensure!(count(&p.r1, 0)? == 0, "the exit is counted at once");
    let took = wait_priority(&p.r1, 50, t0, Duration::from_secs(3))?;
    println!("killed: r1 held 200 for {samples} samples, then 50 {took:?} after the kill");
    ensure!(
        took >= Duration::from_millis(500),
        "terminate_delay is 500 ms, the priority moved after {took:?}"
    );
    ensure!(
        took < Duration::from_millis(1500),
        "{took:?} is far past terminate_delay"
    );
    p.r2_master()?;
    r2_heard(&p, "master", 50)?;

    // A restart within terminate_delay (a service manager restarting it) never counts.
    let sleeper = p.start(&program, &["300"])?;
    wait_priority(&p.r1, 200, Instant::now(), Duration::from_secs(2))?;
    p.r1_master()?;
    sleeper.kill()?;
    std::thread::sleep(Duration::from_millis(100));
    let _again = p.start(&program, &["300"])?;
    let samples = holds(&p.r1, 200, Duration::from_millis(1200))?;
    ensure!(p.r1.state_of("gw")? == "master");
    ensure!(count(&p.r1, 0)? == 1);
    println!("killed and restarted 100 ms later: 200 throughout ({samples} samples)");
    println!("{}", p.r1.status_text()?);
    Ok(())
}

/// The tracked process forks and signals it is told: SIGUSR1 forks a child that stays,
/// SIGUSR2 forks one that execs `true` at once (a fork/exec, as any daemon running a
/// helper does), SIGHUP kills the children that stayed.
const FORKER: &str = "
import os, signal
kids = []
def stay(*_):
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        while True:
            signal.pause()
    kids.append(pid)
def helper(*_):
    pid = os.fork()
    if pid == 0:
        os.execv('/bin/true', ['true'])
    os.waitpid(pid, 0)
def drop(*_):
    for k in kids:
        os.kill(k, signal.SIGKILL)
        os.waitpid(k, 0)
    kids.clear()
signal.signal(signal.SIGUSR1, stay)
signal.signal(signal.SIGUSR2, helper)
signal.signal(signal.SIGHUP, drop)
while True:
    signal.pause()
";

/// quorum_max 1 with fork_delay 400 ms: a fork that execs something else at once
/// changes nothing; a fork that stays makes two, and 400 ms later the quorum is lost
/// (200 - 150 = 50); its exit restores it at once (terminate_delay 0). Beside it, the
/// command line is matched as keepalived's param_match says: `partial` ["-c"] counts
/// every copy (+10), exact ["-c"] none, since python has its script after -c (-1 while
/// it has no quorum): 209, and 59 without the quorum.
#[test]
fn a_fork_beyond_quorum_max_counts_after_fork_delay_and_a_fork_exec_never() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).build()?;
    let name = unique("f");
    let program = named(&lab, "/usr/bin/python3", &name)?;
    let path = program.display().to_string();
    let p = pair(
        lab,
        &format!(
            "track_processes = [\n\
             {{ name = \"{name}\", quorum_max = 1, fork_delay = \"400ms\", weight = -150 }},\n\
             {{ name = \"{path}\", args = [\"-c\"], param_match = \"partial\", weight = 10 }},\n\
             {{ name = \"{path}\", args = [\"-c\"], weight = -1 }},\n]\n"
        ),
    )?;
    p.r2_master()?;
    let forker = p.start(&program, &["-c", FORKER])?;
    wait_priority(&p.r1, 209, Instant::now(), Duration::from_secs(3))?;
    p.r1_master()?;
    r2_heard(&p, "backup", 209)?;
    ensure!(
        (count(&p.r1, 0)?, count(&p.r1, 1)?, count(&p.r1, 2)?) == (1, 1, 0),
        "{}",
        p.r1.status_text()?
    );

    // Fork/exec of a helper, five times: never a change.
    for _ in 0..5 {
        forker.signal(Signal::SIGUSR2)?;
        std::thread::sleep(Duration::from_millis(50));
    }
    let samples = holds(&p.r1, 209, Duration::from_millis(800))?;
    println!("five fork/execs: 209 throughout ({samples} samples)");

    // A child that stays: two processes, one more than quorum_max.
    let t0 = Instant::now();
    forker.signal(Signal::SIGUSR1)?;
    wait_until(
        "the forked child to be counted",
        Duration::from_secs(2),
        Duration::from_millis(2),
        || Ok(count(&p.r1, 0)? == 2),
    )?;
    let counted = t0.elapsed();
    ensure!(
        tracked(&p.r1, 0)?["pending_ms"].as_u64().is_some(),
        "a change waits out fork_delay: {}",
        tracked(&p.r1, 0)?
    );
    let took = wait_priority(&p.r1, 59, t0, Duration::from_secs(3))?;
    println!("a fork that stays: counted {counted:?}, priority 59 {took:?} after the signal");
    ensure!(
        took >= Duration::from_millis(400),
        "fork_delay is 400 ms, the priority moved after {took:?}"
    );
    ensure!(took < Duration::from_millis(1500), "{took:?}");
    ensure!(count(&p.r1, 1)? == 2, "partial matches the child too");
    p.r2_master()?;
    r2_heard(&p, "master", 59)?;

    // The child exits: back to one, at once (terminate_delay 0).
    let t0 = Instant::now();
    forker.signal(Signal::SIGHUP)?;
    let took = wait_priority(&p.r1, 209, t0, Duration::from_secs(2))?;
    println!("the child killed: 209 {took:?} after");
    ensure!(took < Duration::from_millis(400), "{took:?}");
    p.r1_master()?;
    println!("{}", p.r1.status_text()?);
    Ok(())
}

/// A reload adds process tracking to a running instance (the connector is subscribed
/// only then) and takes it away again: the instance takes it on in place (counted before
/// the change is committed), its priority follows the process, and without it the
/// watcher reports nothing any more.
#[test]
fn a_reload_adds_and_removes_process_tracking() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).build()?;
    let name = unique("r");
    let program = named(&lab, "/bin/sleep", &name)?;
    let p = pair(lab, "")?;
    p.r1_master()?;
    ensure!(
        p.r1.status()?["processes"].is_null(),
        "no watcher without track_processes"
    );

    let tracking = format!("track_processes = [{{ name = \"{name}\", weight = -150 }}]\n");
    p.r1.rewrite(&section(200, &tracking))?;
    let mark = p.r1.log_mark();
    p.r1.signal(Signal::SIGHUP)?;
    p.r1.wait_log(mark, "configuration reloaded", Duration::from_secs(5))?;
    // Nothing runs under that name: 50, and r2 takes over.
    wait_priority(&p.r1, 50, Instant::now(), Duration::from_secs(3))?;
    p.r2_master()?;
    let sleeper = p.start(&program, &["300"])?;
    wait_priority(&p.r1, 200, Instant::now(), Duration::from_secs(2))?;
    p.r1_master()?;
    ensure!(p.r1.log().contains("process watcher started"));

    p.r1.rewrite(&section(200, ""))?;
    let mark = p.r1.log_mark();
    p.r1.signal(Signal::SIGHUP)?;
    p.r1.wait_log(mark, "configuration reloaded", Duration::from_secs(5))?;
    p.r1_master()?;
    sleeper.kill()?;
    let samples = holds(&p.r1, 200, Duration::from_millis(500))?;
    ensure!(
        gw(&p.r1)?["tracking"]
            .as_array()
            .is_some_and(|t| t.is_empty())
    );
    println!("tracking removed by a reload: the kill moved nothing ({samples} samples)");
    Ok(())
}

/// Every exec on the host makes the watcher look at `/proc` (keepalived does the same):
/// a burst of 10,000 execs of an untracked program leaves the count, the priority and the
/// mastership alone. The CPU vipd spent and its loop lag are printed, not judged (other
/// builds share the machine).
#[test]
fn an_exec_burst_on_the_host_changes_nothing() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).build()?;
    let name = unique("b");
    let program = named(&lab, "/bin/sleep", &name)?;
    let p = pair(
        lab,
        &format!("track_processes = [{{ name = \"{name}\", weight = -150 }}]\n"),
    )?;
    let _sleeper = p.start(&program, &["300"])?;
    wait_priority(&p.r1, 200, Instant::now(), Duration::from_secs(3))?;
    p.r1_master()?;
    let before = gw(&p.r1)?["transitions"].clone();
    let events0 = p.r1.status()?["processes"]["events"].as_u64().unwrap_or(0);
    let pid = p.r1.pid().context("r1 runs")?;
    let cpu0 = vip_tests::lab::process::cpu_seconds(pid);
    let t0 = Instant::now();
    let storm = p.lab.spawn(
        p.lab.router(1),
        &[
            "/bin/sh",
            "-c",
            "i=0; while [ $i -lt 10000 ]; do /bin/true; i=$((i+1)); done",
        ],
    )?;
    storm.wait(Duration::from_secs(120))?;
    let took = t0.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let cpu = vip_tests::lab::process::cpu_seconds(pid) - cpu0;
    let status = p.r1.status()?;
    let events = status["processes"]["events"].as_u64().unwrap_or(0) - events0;
    println!(
        "10,000 execs in {took:?}: vipd read {events} process events, used {cpu:.2} s of CPU \
         ({:.0} µs per exec); lost events {}; loop lag worst {} µs",
        cpu * 1e6 / 10_000.0,
        status["processes"]["events_lost"],
        status["loop_lag"]["recent_worst_us"]
    );
    ensure!(events >= 20_000, "fork, exec and exit of each: {events}");
    ensure!(count(&p.r1, 0)? == 1, "{}", p.r1.status_text()?);
    ensure!(priority(&p.r1)? == 200);
    ensure!(
        gw(&p.r1)?["transitions"] == before,
        "a transition during the burst"
    );
    Ok(())
}
