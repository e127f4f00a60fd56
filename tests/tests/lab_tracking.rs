//! Tracking in a two-vipd lab: r1 (priority 200) is master, r2 (100) backs it up, both
//! advertising every 100 ms with preempt on. Something r1 tracks fails: its effective
//! priority drops below r2's (or it goes to FAULT) and r2 must take over; the object
//! recovers and r1 must take the VIP back. A client resolves the VIP every 2 ms
//! throughout, so every handover is also checked for overlap and measured for its gap.

use std::{
    net::IpAddr,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use serde_json::Value;
use vip_tests::{
    lab::{Lab, Method, ProbeRun, Vipd, wait_until},
    require_root,
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
const VIP: &str = "192.0.2.1";
/// Master_Down_Interval of r2 at 100 ms: 300 ms + 156/256 × 100 ms. A takeover takes at
/// most this long after r1's last advert at its old priority.
const DOWN_R2: Duration = Duration::from_micros(360_938);

fn section(priority: u8, tracking: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\n\
         advert_interval = \"100ms\"\nvips = [\"{VIP}/24\"]\n{tracking}"
    )
}

struct Pair {
    lab: Lab,
    r1: Vipd,
    r2: Vipd,
}

/// r1 at 200 with `tracking`, r2 at 100, settled with r1 master.
fn pair(lab: Lab, tracking: &str) -> Result<Pair> {
    let bin = Path::new(VIPD);
    let r1 = lab.vipd(bin, lab.router(1), &section(200, tracking))?;
    let r2 = lab.vipd(bin, lab.router(2), &section(100, ""))?;
    r1.wait_state("gw", "master", Duration::from_secs(5))?;
    r2.wait_state("gw", "backup", Duration::from_secs(5))?;
    Ok(Pair { lab, r1, r2 })
}

fn gw(v: &Vipd) -> Result<Value> {
    v.instance("gw")
}

fn priority(v: &Vipd) -> Result<u64> {
    gw(v)?["priority"].as_u64().context("no priority")
}

/// Waits until r1's effective priority is `want`; returns how long that took.
fn wait_priority(v: &Vipd, want: u64, timeout: Duration) -> Result<Duration> {
    wait_until(
        &format!("r1's effective priority to be {want}"),
        timeout,
        Duration::from_millis(5),
        || {
            let p = priority(v)?;
            ensure!(p == want, "priority {p}");
            Ok(true)
        },
    )
}

fn tracked(v: &Vipd, kind: &str) -> Result<Value> {
    gw(v)?["tracking"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["kind"] == kind).cloned())
        .with_context(|| format!("no tracked {kind} in the status"))
}

impl Pair {
    /// Probes the VIP while `act` runs and for `settle` after; returns the run and when
    /// `act` started.
    fn probed(
        &self,
        settle: Duration,
        act: impl FnOnce(&Self) -> Result<()>,
    ) -> Result<(ProbeRun, Instant)> {
        let probe = self.lab.probe(
            self.lab.client(),
            Method::Resolve,
            VIP.parse::<IpAddr>()?,
            Duration::from_millis(2),
            Duration::from_secs(20),
            &[],
        )?;
        std::thread::sleep(Duration::from_millis(100));
        let t0 = Instant::now();
        let acted = act(self);
        if acted.is_ok() {
            std::thread::sleep(settle);
        }
        let run = probe.stop()?;
        acted?;
        Ok((run, t0))
    }

    /// `to` ends up master and the only router answering, with no probe answered twice.
    fn check_handover(&self, run: &ProbeRun, t0: Instant, to: &str, what: &str) -> Result<()> {
        let first = run
            .first_answer_by(to, t0)
            .with_context(|| format!("{to} never answered: {}", run.summary()))?;
        println!(
            "  {what}: {to} answers {:.1} ms after; gap {:.1} ms; {}",
            (first.sent - t0).as_secs_f64() * 1e3,
            run.longest_gap().span.as_secs_f64() * 1e3,
            run.summary()
        );
        ensure!(
            run.overlaps().is_empty(),
            "two routers answered: {}",
            run.summary()
        );
        let last = run.probes.last().context("no probes")?;
        ensure!(
            last.responders() == [to.into()].into(),
            "only {to} answers at the end: {}",
            run.summary()
        );
        Ok(())
    }

    /// r2 took over because r1 advertised `from_priority`: its reason names it.
    fn r2_preempted_r1_at(&self, from_priority: u64) -> Result<()> {
        let t = gw(&self.r2)?["last_transition"].clone();
        let want = format!("preempted lower-priority master 192.0.2.11 (priority {from_priority})");
        ensure!(
            t["to"] == "master" && t["reason"] == want.as_str(),
            "r2's last transition is {t}, expected \"{want}\""
        );
        Ok(())
    }
}

/// A negative weight on a tracked interface lowers r1 below r2: r2 preempts. The
/// interface comes back, r1's priority is restored and it preempts in turn.
#[test]
fn tracked_interface_down_lowers_priority_and_hands_over_up_takes_it_back() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().uplink(1).build()?;
    let p = pair(
        lab,
        "track_interfaces = [{ name = \"uplink0\", weight = -150 }]\n",
    )?;
    let t = tracked(&p.r1, "interface")?;
    ensure!(t["failing"] == false && t["weight"] == -150, "{t}");

    let (run, t0) = p.probed(Duration::from_millis(300), |p| {
        p.lab.set_iface(p.lab.router(1), "uplink0", false)?;
        let took = wait_priority(&p.r1, 50, Duration::from_secs(2))?;
        let over =
            p.r2.wait_state("gw", "master", DOWN_R2 + Duration::from_secs(2))?;
        p.r1.wait_state("gw", "backup", Duration::from_secs(2))?;
        println!("uplink0 down: r1 at priority 50 after {took:?}, r2 master {over:?} after that");
        Ok(())
    })?;
    p.check_handover(&run, t0, "r2", "uplink0 down")?;
    let g = gw(&p.r1)?;
    ensure!(
        g["configured_priority"] == 200 && tracked(&p.r1, "interface")?["failing"] == true,
        "r1 shows the failing interface and its configured priority: {g}"
    );
    // r2 took over because of the advert r1 sent at 50, not because r1 fell silent.
    p.r2_preempted_r1_at(50)?;

    let (run, t0) = p.probed(Duration::from_millis(300), |p| {
        p.lab.set_iface(p.lab.router(1), "uplink0", true)?;
        let took = wait_priority(&p.r1, 200, Duration::from_secs(2))?;
        let back = p.r1.wait_state("gw", "master", Duration::from_secs(3))?;
        p.r2.wait_state("gw", "backup", Duration::from_secs(2))?;
        println!("uplink0 up: r1 at 200 after {took:?}, master {back:?} after that");
        Ok(())
    })?;
    p.check_handover(&run, t0, "r1", "uplink0 up")?;
    ensure!(tracked(&p.r1, "interface")?["failing"] == false);
    Ok(())
}

/// Weight 0 puts r1 in FAULT while the interface is down, and so does its own VRRP
/// interface going down; either way r2 serves the VIP, and r1 returns when it recovers.
#[test]
fn weight_zero_interface_and_own_link_down_fault_the_instance() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().uplink(1).build()?;
    let p = pair(
        lab,
        "track_interfaces = [{ name = \"uplink0\", weight = 0 }]\n",
    )?;

    let (run, t0) = p.probed(Duration::from_millis(300), |p| {
        p.lab.set_iface(p.lab.router(1), "uplink0", false)?;
        let took = p.r1.wait_state("gw", "fault", Duration::from_secs(2))?;
        p.r2.wait_state("gw", "master", Duration::from_secs(2))?;
        println!("uplink0 down: r1 FAULT after {took:?}");
        Ok(())
    })?;
    p.check_handover(&run, t0, "r2", "uplink0 down (weight 0)")?;
    let g = gw(&p.r1)?;
    ensure!(
        g["state"] == "fault"
            && g["priority"] == 200
            && g["last_transition"]["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("fault")),
        "FAULT keeps the priority and says why: {g}"
    );
    // r1 resigned on entering FAULT: r2 waited only its skew time, not Master_Down_Interval.
    let t = gw(&p.r2)?["last_transition"].clone();
    ensure!(
        t["reason"] == "priority 0 from master 192.0.2.11, waited Skew_Time",
        "r2 took over from a resignation: {t}"
    );
    // A faulted instance stays silent.
    let sent = g["adverts_sent"].as_u64().unwrap_or(0);
    std::thread::sleep(Duration::from_millis(300));
    ensure!(gw(&p.r1)?["adverts_sent"].as_u64() == Some(sent));

    let (run, t0) = p.probed(Duration::from_millis(300), |p| {
        p.lab.set_iface(p.lab.router(1), "uplink0", true)?;
        p.r1.wait_state("gw", "master", Duration::from_secs(3))?;
        p.r2.wait_state("gw", "backup", Duration::from_secs(2))?;
        Ok(())
    })?;
    p.check_handover(&run, t0, "r1", "uplink0 up")?;

    // The VRRP interface itself: r1's eth0 goes down.
    let (run, t0) = p.probed(Duration::from_millis(300), |p| {
        p.lab.set_eth0(p.lab.router(1), false)?;
        p.r1.wait_state("gw", "fault", Duration::from_secs(2))?;
        p.r2.wait_state("gw", "master", DOWN_R2 + Duration::from_secs(2))?;
        Ok(())
    })?;
    p.check_handover(&run, t0, "r2", "r1 eth0 down")?;
    let (run, t0) = p.probed(Duration::from_millis(300), |p| {
        p.lab.set_eth0(p.lab.router(1), true)?;
        p.r1.wait_state("gw", "master", Duration::from_secs(3))?;
        p.r2.wait_state("gw", "backup", Duration::from_secs(2))?;
        Ok(())
    })?;
    p.check_handover(&run, t0, "r1", "r1 eth0 up")?;
    Ok(())
}

fn write_script(dir: &Path, flag: &Path) -> Result<PathBuf> {
    let script = dir.join("check.sh");
    // Healthy while the flag file is absent.
    std::fs::write(
        &script,
        format!("#!/bin/sh\n[ ! -e '{}' ]\n", flag.display()),
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok(script)
}

/// A failing check script (fall = 2 at 200 ms) lowers r1 and r2 takes over; once it
/// succeeds again (rise = 1) r1 preempts back.
#[test]
fn failing_track_script_hands_over_and_recovery_takes_it_back() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let dir = lab.scratch("track")?;
    let flag = dir.join("unhealthy");
    let script = write_script(&dir, &flag)?;
    let p = pair(
        lab,
        &format!(
            "track_scripts = [{{ command = \"{}\", interval = \"200ms\", timeout = \"100ms\", \
             weight = -150, rise = 1, fall = 2 }}]\n",
            script.display()
        ),
    )?;
    ensure!(tracked(&p.r1, "script")?["failing"] == false);

    let (run, t0) = p.probed(Duration::from_millis(300), |p| {
        std::fs::write(&flag, "")?;
        let took = wait_priority(&p.r1, 50, Duration::from_secs(3))?;
        p.r2.wait_state("gw", "master", DOWN_R2 + Duration::from_secs(2))?;
        p.r1.wait_state("gw", "backup", Duration::from_secs(2))?;
        println!("flag set: r1 at priority 50 after {took:?}");
        // Two consecutive failures are needed, and runs are 200 ms apart.
        ensure!(
            took >= Duration::from_millis(190),
            "fall = 2 reacted to a single failure: {took:?}"
        );
        Ok(())
    })?;
    p.check_handover(&run, t0, "r2", "script failing")?;
    ensure!(tracked(&p.r1, "script")?["failing"] == true);
    p.r2_preempted_r1_at(50)?;

    let (run, t0) = p.probed(Duration::from_millis(300), |p| {
        std::fs::remove_file(&flag)?;
        let took = wait_priority(&p.r1, 200, Duration::from_secs(2))?;
        p.r1.wait_state("gw", "master", Duration::from_secs(3))?;
        p.r2.wait_state("gw", "backup", Duration::from_secs(2))?;
        println!("flag cleared: r1 at priority 200 after {took:?}");
        // rise = 1: the next run (one interval later) restores it; slack for load.
        ensure!(took < Duration::from_secs(1), "{took:?}");
        Ok(())
    })?;
    p.check_handover(&run, t0, "r1", "script recovered")?;
    ensure!(tracked(&p.r1, "script")?["failing"] == false);
    Ok(())
}

/// A track file's integer N adds N × weight: the status shows the effective priority,
/// the wire carries it (r2 names it when it preempts), and an unreadable file reads as 0
/// (keepalived's meaning).
#[test]
fn track_file_integer_sets_the_effective_priority() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let file = lab.scratch("track")?.join("prio");
    std::fs::write(&file, "5\n")?;
    let p = pair(
        lab,
        &format!(
            "track_files = [{{ path = \"{}\", weight = -10 }}]\n",
            file.display()
        ),
    )?;
    // Read at start: 200 - 5 × 10.
    ensure!(priority(&p.r1)? == 150, "{}", gw(&p.r1)?);
    let t = tracked(&p.r1, "file")?;
    ensure!(
        t["failing"] == false && t["name"].as_str().is_some_and(|n| n.ends_with("= 5")),
        "{t}"
    );
    // The file is polled once a second.
    let poll = Duration::from_secs(3);

    let (run, t0) = p.probed(Duration::from_millis(300), |p| {
        std::fs::write(&file, "12")?;
        let took = wait_priority(&p.r1, 80, poll)?;
        p.r2.wait_state("gw", "master", DOWN_R2 + Duration::from_secs(2))?;
        println!("file 12: r1 at 80 after {took:?}");
        Ok(())
    })?;
    p.check_handover(&run, t0, "r2", "file 12 (priority 80)")?;
    p.r2_preempted_r1_at(80)?;

    let (run, t0) = p.probed(Duration::from_millis(300), |p| {
        std::fs::write(&file, "-3")?;
        wait_priority(&p.r1, 230, poll)?;
        p.r1.wait_state("gw", "master", Duration::from_secs(3))?;
        p.r2.wait_state("gw", "backup", Duration::from_secs(2))?;
        Ok(())
    })?;
    p.check_handover(&run, t0, "r1", "file -3 (priority 230)")?;

    // keepalived's meaning: a file that does not hold an integer reads as 0.
    std::fs::write(&file, "ten")?;
    wait_priority(&p.r1, 200, poll)?;
    let t = tracked(&p.r1, "file")?;
    ensure!(
        t["name"].as_str().is_some_and(|n| n.contains("unreadable")),
        "an unparsable file shows as unreadable: {t}"
    );
    ensure!(p.r1.state_of("gw")? == "master");
    println!("{}", p.r1.status_text()?);
    Ok(())
}
