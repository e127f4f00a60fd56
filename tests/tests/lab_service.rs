//! vipd in the execution environment its systemd unit (`dist/vipd.service`) sets up, read
//! from the unit itself: the capability bounding set, no new privileges, the open-files
//! limit. systemd is not PID 1 on the test machines, so `setpriv` and `prlimit` build the
//! same environment (`systemd-analyze verify` checks the unit's syntax in `dist/tests`).
//!
//! Under it vipd starts, elects itself, runs its event loop real-time, keeps exactly its
//! documented capabilities, runs hooks as `script_user` and logs plain text (what the
//! journal gets); and without any one member of
//! the bounding set it cannot start (or, for CAP_SYS_NICE, loses its real-time loop and
//! says so): the set is neither too small nor too large.

use std::{path::Path, time::Duration};

use anyhow::{Context as _, Result, bail, ensure};
use vip_tests::{
    lab::{Lab, Vipd, wait_until},
    require_root,
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
const UNIT: &str = include_str!("../../dist/vipd.service");

fn unit_value(key: &str) -> Result<&'static str> {
    UNIT.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .with_context(|| format!("the unit sets no {key}"))
}

/// `CAP_NET_ADMIN` ... as the unit lists them.
fn bounding_set() -> Result<Vec<String>> {
    Ok(unit_value("CapabilityBoundingSet")?
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// The unit's open-files limit, or this process's hard limit if that is lower: raising a
/// hard limit needs CAP_SYS_RESOURCE, which systemd has and a test container may not.
fn nofile() -> Result<u64> {
    let unit: u64 = unit_value("LimitNOFILE")?.parse()?;
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
    Ok(unit.min(hard))
}

/// `prlimit` and `setpriv` setting up what the unit asks for, with `caps` as the bounding
/// set.
fn service_wrapper(caps: &[String]) -> Result<Vec<String>> {
    let nofile = nofile()?;
    let set: Vec<String> = caps
        .iter()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    let mut w: Vec<String> = vec![
        "prlimit".into(),
        format!("--nofile={nofile}:{nofile}"),
        "--".into(),
        "setpriv".into(),
        "--bounding-set".into(),
        format!("-all,{}", set.join(",")),
        "--inh-caps".into(),
        "-all".into(),
    ];
    ensure!(unit_value("NoNewPrivileges")? == "yes");
    w.push("--no-new-privs".into());
    w.push("--".into());
    Ok(w)
}

fn configured(lab: &Lab) -> Result<Vipd> {
    let out = lab.scratch("out")?;
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
    let hook = lab.scratch("hooks")?.join("notify.sh");
    std::fs::write(&hook, format!("#!/bin/sh\nid -u > {}/$3\n", out.display()))?;
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let v = lab.vipd_configured(
        Path::new(VIPD),
        lab.router(1),
        &format!(
            "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\npriority = 200\n\
             advert_interval = \"100ms\"\nvips = [\"192.0.2.1/24\"]\nnotify = \"{}\"\n",
            hook.display()
        ),
    )?;
    // With a script user the daemon keeps its largest set (CAP_SETUID, CAP_SETGID,
    // CAP_KILL too): the case the bounding set must cover.
    v.set_global("script_user = \"nobody\"\n")?;
    Ok(v)
}

fn proc_field<'a>(status: &'a str, key: &str) -> Result<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .with_context(|| format!("no {key} in /proc status"))
}

/// The scheduling policy of a thread (`/proc/PID/task/TID/stat`, field 41; 2 is SCHED_RR).
fn policy(pid: i32) -> Result<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = &stat[stat.rfind(')').context("stat")? + 2..];
    // Fields from the third (state) on: policy is field 41, so index 38 here.
    Ok(after
        .split_whitespace()
        .nth(38)
        .context("no policy field")?
        .parse()?)
}

fn mask(caps: &[String]) -> Result<u64> {
    let mut m = 0u64;
    for c in caps {
        m |= 1 << <caps::Capability as std::str::FromStr>::from_str(c)?.index();
    }
    Ok(m)
}

#[test]
fn vipd_runs_under_the_units_capabilities_and_no_new_privileges() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(1).build()?;
    let mut v = configured(&lab)?;
    let wrapper = service_wrapper(&bounding_set()?)?;
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    lab.start_vipd_wrapped(&mut v, &wrapper, &[])?;
    v.wait_state("gw", "master", Duration::from_secs(5))?;
    let pid = v.pid().context("vipd runs")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    ensure!(proc_field(&status, "NoNewPrivs:")? == "1", "{status}");
    // The daemon dropped to its documented set; the bounding set held everything else
    // start-up needed.
    let kept: Vec<String> = vipd::daemon::privileges::kept(true)
        .into_iter()
        .map(|c| c.to_string())
        .collect();
    let want = format!("{:016x}", mask(&kept)?);
    for field in ["CapBnd:", "CapPrm:", "CapEff:"] {
        ensure!(
            proc_field(&status, field)? == want,
            "{field} {} instead of {want}",
            proc_field(&status, field)?
        );
    }
    // The limit the unit sets, soft and hard (vipd raises its soft limit to the hard one).
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    let nofile = nofile()?.to_string();
    ensure!(
        limits.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            l.starts_with("Max open files")
                && f.get(3..5) == Some(&[nofile.as_str(), nofile.as_str()])
        }),
        "{limits}"
    );
    // The event loop (the main thread) is real-time: CAP_SYS_NICE was there when it
    // asked.
    ensure!(policy(pid)? == 2, "the event loop is not SCHED_RR");
    // The notify hook ran as the script user: setuid() works under no_new_privs.
    let report = lab.scratch("out")?.join("MASTER");
    wait_until(
        "the MASTER hook",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || Ok(report.exists()),
    )?;
    let uid = std::fs::read_to_string(&report)?;
    ensure!(uid.trim() == "65534", "the hook ran as uid {uid}");
    // A log that is not a terminal (the journal) gets plain text: no colour codes.
    ensure!(
        !v.log().contains('\x1b'),
        "colour codes in the log:\n{}",
        v.log()
    );
    v.stop()?;
    Ok(())
}

#[test]
fn every_capability_of_the_units_bounding_set_is_needed() -> Result<()> {
    require_root();
    let set = bounding_set()?;
    ensure!(set.len() == 9, "{set:?}");
    let lab = Lab::builder().routers(1).build()?;
    let mut failures = Vec::new();
    for missing in &set {
        let fewer: Vec<String> = set.iter().filter(|c| *c != missing).cloned().collect();
        let wrapper = service_wrapper(&fewer)?;
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let mut v = configured(&lab)?;
        let mark = v.log_mark();
        lab.spawn_vipd_wrapped(&mut v, &wrapper, &[])?;
        let proc = v.process().context("spawned")?.clone();
        if missing == "CAP_SYS_NICE" {
            // Without it vipd runs, but its event loop is an ordinary thread, and it
            // says so.
            v.wait_state("gw", "master", Duration::from_secs(10))?;
            let pid = v.pid().context("vipd runs")?;
            ensure!(policy(pid)? == 0, "SCHED_RR without CAP_SYS_NICE?");
            v.wait_log(
                mark,
                "the event loop stays an ordinary thread",
                Duration::from_secs(2),
            )?;
            v.stop()?;
            println!("  without {missing}: runs, with an ordinary event loop (warned)");
            continue;
        }
        match proc.wait(Duration::from_secs(10)) {
            Err(_) => {
                v.stop()?;
                failures.push(format!("vipd kept running without {missing}"));
            }
            Ok(status) => {
                let log = v.log()[mark..].to_owned();
                let reason = log
                    .lines()
                    .find(|l| l.starts_with("vipd: "))
                    .unwrap_or("(no error line)");
                println!("  without {missing}: {status}: {reason}");
                if status.code() != Some(1) || !reason.starts_with("vipd: ") {
                    failures.push(format!(
                        "without {missing}: {status}, no error line:\n{log}"
                    ));
                }
            }
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}
