//! vipd in the execution environment its systemd unit (`dist/vipd.service`) sets up, read
//! from the unit itself: the capability bounding set, no new privileges, the open-files
//! limit, the file-system sandbox and the system call filter. systemd is not PID 1 on the
//! test machines, so `setpriv`, `prlimit` and a private mount namespace build the same
//! environment (`systemd-analyze verify` checks the unit's syntax in `dist/tests`).
//!
//! Under it vipd starts, elects itself, runs its event loop real-time, keeps exactly its
//! documented capabilities, runs hooks as `script_user` and logs plain text (what the
//! journal gets); and without any one member of
//! the bounding set it cannot start (or, for CAP_SYS_NICE, loses its real-time loop and
//! says so): the set is neither too small nor too large. In the unit's file-system
//! sandbox (read-only /proc/sys and /sys but for its `ReadWritePaths=`, /proc with
//! `hidepid=invisible`) it writes all it needs; and no system call it or its hooks make
//! is one the unit's `SystemCallFilter=` denies. There `track_processes` cannot see
//! other users' processes, so vipd refuses to start with it and names the drop-in
//! (`ProtectProc=default`), under which it counts them.

use std::{collections::BTreeSet, path::Path, process::Command, time::Duration};

use anyhow::{Context as _, Result, bail, ensure};
use nix::{sys::signal::Signal, unistd::Pid};
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
    configured_with(lab, "")
}

/// One instance, priority 200, with a notify hook that records its user in `out/STATE`;
/// `extra` is added to the instance.
fn configured_with(lab: &Lab, extra: &str) -> Result<Vipd> {
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
             advert_interval = \"100ms\"\nvips = [\"192.0.2.1/24\"]\nnotify = \"{}\"\n{extra}",
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
    // Until the hook has written its line: the shell creates the file before `id` prints
    // into it, and one full run read it empty in between.
    wait_until(
        "the MASTER hook",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || Ok(std::fs::read_to_string(&report).is_ok_and(|s| s.ends_with('\n'))),
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

/// The unit's `ReadWritePaths=`, without the `-` that makes a missing one no error.
fn read_write_paths() -> Result<Vec<String>> {
    Ok(unit_value("ReadWritePaths")?
        .split_whitespace()
        .map(|p| p.trim_start_matches('-').to_owned())
        .collect())
}

/// A command that sets up what the unit's `ProtectKernelTunables=yes`, `ReadWritePaths=`
/// and `ProtectProc=invisible` give a service, then execs the rest of its arguments: in a
/// private mount namespace, a new /proc with `hidepid=invisible`, /proc/sys and the /sys
/// mount read-only, the unit's read-write paths below them writable again (mount points
/// under /sys, such as /sys/fs/bpf, keep their own flags, as systemd's list does for
/// the bpffs). It first proves the emulation holds: a sysctl outside the list cannot be
/// written, one inside can.
fn sandbox_wrapper() -> Result<Vec<String>> {
    ensure!(unit_value("ProtectProc")? == "invisible");
    sandbox_wrapper_with("invisible")
}

/// [`sandbox_wrapper`] with /proc mounted `hidepid=HIDEPID`: `off` is what a drop-in
/// with `ProtectProc=default` gives (every process visible).
fn sandbox_wrapper_with(hidepid: &str) -> Result<Vec<String>> {
    ensure!(unit_value("ProtectKernelTunables")? == "yes");
    let reopen: String = read_write_paths()?
        .iter()
        .filter(|p| p.starts_with("/proc/sys") || p.starts_with("/sys"))
        .map(|p| format!("mount --bind {p} {p}; mount -o remount,bind,rw {p}\n"))
        .collect();
    let script = format!(
        "set -e\n\
         mount -t proc -o hidepid={hidepid} proc /proc\n\
         mount --bind /proc/sys /proc/sys; mount -o remount,bind,ro /proc/sys\n\
         mount --rbind /sys /sys; mount -o remount,bind,ro /sys\n\
         {reopen}\
         if (cat /proc/sys/net/ipv4/ip_forward > /proc/sys/net/ipv4/ip_forward) 2>/dev/null; then\n\
         \x20 echo 'sandbox: /proc/sys/net/ipv4/ip_forward is writable' >&2; exit 1\n\
         fi\n\
         cat /proc/sys/net/ipv4/conf/eth0/arp_ignore > /proc/sys/net/ipv4/conf/eth0/arp_ignore\n\
         exec \"$@\"\n"
    );
    Ok(vec![
        "unshare".into(),
        "--mount".into(),
        "--propagation".into(),
        "private".into(),
        "--".into(),
        "/bin/sh".into(),
        "-c".into(),
        script,
        "sandbox".into(),
    ])
}

/// A process of another user (uid 1, `daemon`), for process checks to look for.
fn other_users_sleep(lab: &Lab) -> Result<vip_tests::lab::Proc> {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=1",
        "--regid=1",
        "--clear-groups",
        "--",
        "sleep",
        "300",
    ]);
    lab.spawn_command("sleep as uid 1", cmd)
}

/// A track script that looks for that process (found: ok).
const PROCESS_CHECK: &str = "track_scripts = [{ command = [\"/usr/bin/pgrep\", \"-u\", \"1\", \"-x\", \"sleep\"], interval = \"200ms\", timeout = \"150ms\", weight = -10 }]\n";

fn track_state(v: &Vipd) -> Result<String> {
    let gw = v.instance("gw")?;
    Ok(gw["tracking"][0]["state"]
        .as_str()
        .context("no tracked script in the status")?
        .to_owned())
}

#[test]
fn vipd_writes_what_it_needs_in_the_units_file_system_sandbox() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(1).build()?;
    let _sleeper = other_users_sleep(&lab)?;
    // VMAC mode: the one sysctl vipd writes (arp_announce); the pin directory on bpffs.
    let mut v = configured_with(&lab, &format!("vmac = true\n{PROCESS_CHECK}"))?;
    let router = lab.router(1);
    lab.exec(
        router,
        &["sysctl", "-qw", "net.ipv4.conf.eth0.arp_announce=0"],
    )?;
    let mut wrapper = sandbox_wrapper()?;
    wrapper.extend(service_wrapper(&bounding_set()?)?);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    lab.start_vipd_wrapped(&mut v, &wrapper, &[])?;
    v.wait_state("gw", "master", Duration::from_secs(5))?;
    let announce = lab.exec(
        router,
        &["cat", "/proc/sys/net/ipv4/conf/eth0/arp_announce"],
    )?;
    ensure!(
        announce.trim() == "2" && !v.log().contains("could not set arp_announce"),
        "arp_announce {announce:?}:\n{}",
        v.log()
    );
    let report = lab.scratch("out")?.join("MASTER");
    wait_until(
        "the MASTER hook",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || Ok(report.exists()),
    )?;
    // ProtectProc=invisible: the script user sees no process but its own, so a process
    // check of another user's process fails in the sandbox, where it succeeds outside.
    let (found, pids, _) = lab.exec_status(router, &["pgrep", "-u", "1", "-x", "sleep"])?;
    ensure!(found, "the other user's process runs");
    wait_until(
        "the process check to be judged",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || Ok(track_state(&v)? != "not yet known"),
    )?;
    let state = track_state(&v)?;
    println!(
        "pgrep as the script user in the sandbox: {state} (outside it, pgrep finds {})",
        pids.trim().replace('\n', " ")
    );
    ensure!(state == "failing", "the process check is {state}");
    v.stop()?;
    Ok(())
}

/// The same process check outside the sandbox: it is the sandbox that hides the process.
#[test]
fn without_the_sandbox_the_script_user_sees_other_users_processes() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(1).build()?;
    let _sleeper = other_users_sleep(&lab)?;
    let mut v = configured_with(&lab, PROCESS_CHECK)?;
    let wrapper = service_wrapper(&bounding_set()?)?;
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    lab.start_vipd_wrapped(&mut v, &wrapper, &[])?;
    v.wait_state("gw", "master", Duration::from_secs(5))?;
    wait_until(
        "the process check to be judged",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || Ok(track_state(&v)? != "not yet known"),
    )?;
    let state = track_state(&v)?;
    ensure!(state == "ok", "the process check is {state}");
    v.stop()?;
    Ok(())
}

/// `sleep` under a name of its own, as uid 1 (`daemon`): a service of another user, as
/// haproxy, bird or conntrackd run.
fn other_users_named_sleep(lab: &Lab, name: &str) -> Result<vip_tests::lab::Proc> {
    let link = lab.scratch("programs")?.join(name);
    if !link.exists() {
        std::os::unix::fs::symlink("/bin/sleep", &link)?;
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=1", "--regid=1", "--clear-groups", "--"])
        .arg(&link)
        .arg("300");
    lab.spawn_command(&format!("{name} as uid 1"), cmd)
}

fn process_count(v: &Vipd) -> Result<u64> {
    let gw = v.instance("gw")?;
    gw["tracking"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["kind"] == "process"))
        .and_then(|t| t["count"].as_u64())
        .with_context(|| format!("no tracked process in {gw}"))
}

/// Under the unit's `ProtectProc=invisible`, vipd cannot see other users' processes in
/// /proc (nor root's with capabilities vipd lacks): `track_processes` would count
/// nothing, so vipd refuses to start and names the drop-in; `vipd check` run in the
/// same sandbox warns.
#[test]
fn track_processes_refuse_to_start_where_proc_hides_processes() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(1).build()?;
    let name = format!("vq{}", std::process::id() % 1_000_000);
    let _service = other_users_named_sleep(&lab, &name)?;
    let mut v = configured_with(
        &lab,
        &format!("track_processes = [{{ name = \"{name}\", weight = -50 }}]\n"),
    )?;
    v.hand_proc_events();
    let mut wrapper = sandbox_wrapper()?;
    wrapper.extend(service_wrapper(&bounding_set()?)?);
    let argv: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let mark = v.log_mark();
    lab.spawn_vipd_wrapped(&mut v, &argv, &[])?;
    let proc = v.process().context("spawned")?.clone();
    let status = proc.wait(Duration::from_secs(10))?;
    let log = v.log()[mark..].to_owned();
    let reason = log
        .lines()
        .find(|l| l.starts_with("vipd: "))
        .unwrap_or("(no error line)");
    println!("in the unit's sandbox: {status}: {reason}");
    ensure!(status.code() == Some(1), "{status}:\n{log}");
    ensure!(
        reason.contains("hidepid=invisible") && reason.contains("ProtectProc=default"),
        "{log}"
    );
    ensure!(
        !log.contains("XDP responder attached"),
        "refused before anything is touched:\n{log}"
    );

    let mut check = wrapper.clone();
    check.extend([
        VIPD.to_owned(),
        "check".into(),
        "--config".into(),
        v.config.display().to_string(),
    ]);
    let check: Vec<&str> = check.iter().map(String::as_str).collect();
    let (ok, out, err) = lab.exec_status(lab.router(1), &check)?;
    let warning = format!("{out}{err}");
    println!(
        "vipd check in the sandbox: {}",
        warning
            .lines()
            .filter(|l| l.contains("warning") && l.contains("track_processes"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    ensure!(ok, "vipd check still accepts the file:\n{warning}");
    ensure!(
        warning.contains("vrrp[0].track_processes: /proc is mounted with hidepid=invisible")
            && warning.contains("ProtectProc=default"),
        "{warning}"
    );
    Ok(())
}

/// With the documented drop-in (`ProtectProc=default`: /proc shows every process) and
/// the rest of the sandbox and bounding set, vipd counts another user's processes: one
/// started before it (the scan at start reads /proc) and one started after (the
/// kernel's process events report every user's processes).
#[test]
fn with_protect_proc_default_track_processes_count_other_users_processes() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(1).build()?;
    let name = format!("vd{}", std::process::id() % 1_000_000);
    let _before = other_users_named_sleep(&lab, &name)?;
    let mut v = configured_with(
        &lab,
        &format!("track_processes = [{{ name = \"{name}\", weight = 10 }}]\n"),
    )?;
    v.hand_proc_events();
    let mut wrapper = sandbox_wrapper_with("off")?;
    wrapper.extend(service_wrapper(&bounding_set()?)?);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    lab.start_vipd_wrapped(&mut v, &wrapper, &[])?;
    v.wait_state("gw", "master", Duration::from_secs(5))?;
    ensure!(process_count(&v)? == 1, "{}", v.status_text()?);
    ensure!(v.instance("gw")?["priority"] == 210);
    let after = other_users_named_sleep(&lab, &name)?;
    wait_until(
        "the second process to be counted",
        Duration::from_secs(3),
        Duration::from_millis(5),
        || Ok(process_count(&v)? == 2),
    )?;
    after.kill()?;
    wait_until(
        "its exit to be counted",
        Duration::from_secs(3),
        Duration::from_millis(5),
        || Ok(process_count(&v)? == 1),
    )?;
    println!("{}", v.status_text()?);
    v.stop()?;
    Ok(())
}

/// Every system call of the groups the unit's `SystemCallFilter=~...` denies, as
/// `systemd-analyze syscall-filter` expands them on this machine.
fn denied_syscalls() -> Result<BTreeSet<String>> {
    let filter = unit_value("SystemCallFilter")?;
    let groups = filter
        .strip_prefix('~')
        .context("SystemCallFilter= is a deny-list (~...)")?;
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = groups.split_whitespace().map(str::to_owned).collect();
    ensure!(!todo.is_empty());
    while let Some(group) = todo.pop() {
        let listed = Command::new("systemd-analyze")
            .args(["syscall-filter", "--no-pager", &group])
            .output()
            .context("systemd-analyze (cargo xtask setup installs systemd)")?;
        ensure!(
            listed.status.success(),
            "systemd-analyze syscall-filter {group}"
        );
        for line in String::from_utf8_lossy(&listed.stdout).lines().skip(1) {
            let name = line.trim();
            if name.starts_with('@') {
                todo.push(name.to_owned());
            } else if !name.is_empty() && !name.starts_with('#') {
                out.insert(name.to_owned());
            }
        }
    }
    Ok(out)
}

/// The system calls in an `strace -c` summary.
fn traced(summary: &str) -> BTreeSet<String> {
    summary
        .lines()
        .skip_while(|l| !l.starts_with("------"))
        .skip(1)
        .take_while(|l| !l.starts_with("------"))
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect()
}

#[test]
fn no_system_call_vipd_or_its_hooks_make_is_in_the_units_filter() -> Result<()> {
    require_root();
    let denied = denied_syscalls()?;
    ensure!(
        ["mount", "ptrace", "reboot", "init_module", "settimeofday"]
            .iter()
            .all(|c| denied.contains(*c)),
        "{denied:?}"
    );
    let lab = Lab::builder().routers(1).build()?;
    let _sleeper = other_users_sleep(&lab)?;
    let summary = lab.scratch("strace")?.join("summary");
    let mut v = configured_with(&lab, &format!("vmac = true\n{PROCESS_CHECK}"))?;
    let mut wrapper: Vec<String> = ["strace", "-f", "-qq", "-c", "-o"]
        .map(str::to_owned)
        .to_vec();
    wrapper.push(summary.to_string_lossy().into_owned());
    wrapper.push("--".into());
    wrapper.extend(service_wrapper(&bounding_set()?)?);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    lab.start_vipd_wrapped(&mut v, &wrapper, &[])?;
    // Through what a service does: an election, hooks and a track script as the script
    // user, status, a reload by SIGHUP and one by the unit's ExecReload (`vipd reload`,
    // traced and sandboxed as the daemon is), a stop (hand-over, STOP hooks).
    v.wait_state("gw", "master", Duration::from_secs(10))?;
    let out = lab.scratch("out")?;
    wait_until(
        "the MASTER hook",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || Ok(out.join("MASTER").exists()),
    )?;
    v.status_text()?;
    let pid = Pid::from_raw(v.status()?["pid"].as_i64().context("pid")? as i32);
    let config = std::fs::read_to_string(&v.config)?;
    std::fs::write(
        &v.config,
        config.replace("\"192.0.2.1/24\"", "\"192.0.2.1/24\", \"192.0.2.2/24\""),
    )?;
    nix::sys::signal::kill(pid, Signal::SIGHUP)?;
    wait_until(
        "the reload",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || {
            Ok(v.instance("gw")?["vips"]
                .as_array()
                .is_some_and(|a| a.len() == 2))
        },
    )?;
    // ExecReload: `vipd reload` under the unit's bounding set, traced as well.
    std::fs::write(&v.config, &config)?;
    let client = lab.scratch("strace")?.join("reload");
    let reload = std::process::Command::new("strace")
        .args(["-f", "-qq", "-c", "-o"])
        .arg(&client)
        .arg("--")
        .args(service_wrapper(&bounding_set()?)?)
        .arg(VIPD)
        .args(["reload", "--socket"])
        .arg(&v.socket)
        .output()?;
    ensure!(
        reload.status.success()
            && String::from_utf8_lossy(&reload.stdout).contains("changed in place: vips"),
        "vipd reload as ExecReload runs it: {reload:?}"
    );
    ensure!(
        v.instance("gw")?["vips"]
            .as_array()
            .is_some_and(|a| a.len() == 1),
        "the reload took the second VIP away"
    );
    nix::sys::signal::kill(pid, Signal::SIGTERM)?;
    let strace = v.process().context("strace runs")?;
    let status = strace.wait(Duration::from_secs(15))?;
    ensure!(status.success(), "vipd under strace: {status}\n{}", v.log());
    ensure!(out.join("STOP").exists(), "the STOP hook ran");
    let mut used = traced(&std::fs::read_to_string(&summary)?);
    used.extend(traced(&std::fs::read_to_string(&client)?));
    println!(
        "{} distinct system calls: {}",
        used.len(),
        used.iter().cloned().collect::<Vec<_>>().join(" ")
    );
    // The trace saw the paths that matter: BPF, netlink, sockets, capabilities, the
    // real-time loop, and scripts started as another user.
    for needed in [
        "bpf",
        "sendto",
        "capset",
        "sched_setscheduler",
        "setuid",
        "execve",
    ] {
        ensure!(used.contains(needed), "the trace has no {needed}: {used:?}");
    }
    let hit: Vec<&String> = used.intersection(&denied).collect();
    ensure!(hit.is_empty(), "the unit's filter would deny {hit:?}");
    Ok(())
}
