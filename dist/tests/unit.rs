//! The systemd unit `dist/vipd.service`: systemd's own checker accepts it without a
//! single complaint, a broken copy is reported (so the check can fail), and what it asks
//! of vipd matches vipd: the command line, the runtime directory of the default control
//! socket, and the capabilities start-up needs (which `tests/tests/lab_service.rs` checks
//! against a running daemon). `systemd-analyze security` rates it as the README says.

mod common;

use std::{collections::BTreeSet, os::unix::fs::PermissionsExt as _, process::Command};

use common::{dist, run, scratch, text};

const UNIT: &str = include_str!("../vipd.service");

/// `systemd-analyze verify` on `unit_text`, written as vipd.service with ExecStart and
/// ExecReload (both `vipd`) pointed at an executable that exists here (verify insists on it; the
/// package test verifies the installed unit with the installed binary and manual pages).
fn verify(unit_text: &str, name: &str) -> (bool, String) {
    let dir = scratch(name);
    let exe = dir.join("vipd");
    std::fs::write(&exe, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let unit = dir.join("vipd.service");
    std::fs::write(
        &unit,
        unit_text.replace("/usr/sbin/vipd", exe.to_str().unwrap()),
    )
    .unwrap();
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit));
    (out.status.success(), text(&out))
}

/// A clean unit: exit 0 and nothing printed (verify exits 0 on unknown keys and bad
/// values, only printing them, so silence is the test).
#[test]
fn the_unit_passes_systemd_analyze_verify_without_a_word() {
    let (ok, said) = verify(UNIT, "unit-verify");
    assert!(ok && said.is_empty(), "systemd-analyze verify:\n{said}");
}

#[test]
fn a_broken_unit_is_reported() {
    for (what, from, to) in [
        ("a misspelt key", "KillMode=mixed", "KilMode=mixed"),
        ("a bad value", "Type=notify", "Type=notifyy"),
        (
            "a missing program",
            "ExecReload=/usr/sbin/vipd reload",
            "ExecReload=/usr/sbin/vipd-missing reload",
        ),
    ] {
        assert!(UNIT.contains(from), "{from}");
        let (ok, said) = verify(&UNIT.replacen(from, to, 1), "unit-broken");
        assert!(!ok || !said.is_empty(), "{what} went unnoticed");
    }
}

fn values(key: &str) -> Vec<&'static str> {
    UNIT.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

fn value(key: &str) -> &'static str {
    match values(key)[..] {
        [v] => v,
        ref vs => panic!("{key} is set {} times", vs.len()),
    }
}

#[test]
fn the_unit_runs_the_packaged_binary_with_the_packaged_configuration() {
    assert_eq!(value("Type"), "notify");
    assert_eq!(
        value("ExecStart"),
        format!("/usr/sbin/vipd run --config {}", vipd::cli::DEFAULT_CONFIG)
    );
    // `vipd reload` waits for the daemon's outcome and fails when the file is refused,
    // so `systemctl reload` reports it.
    assert_eq!(
        value("ExecReload"),
        format!(
            "/usr/sbin/vipd reload --config {}",
            vipd::cli::DEFAULT_CONFIG
        )
    );
    assert_eq!(value("Restart"), "on-failure");
    assert_eq!(
        value("RestrictRealtime"),
        "no",
        "the event loop is SCHED_RR"
    );
    // vipd pets the watchdog every WatchdogSec/2 from its event loop.
    let watchdog: u64 = value("WatchdogSec").trim_end_matches('s').parse().unwrap();
    assert!((2..=30).contains(&watchdog), "a few seconds: {watchdog}");
    // The default control socket lives in the runtime directory systemd creates.
    let config =
        vipd::config::Config::load(&dist().join("vipd.toml"), &common::PackagedHost).unwrap();
    assert_eq!(
        config.global.control_socket.parent().unwrap(),
        std::path::Path::new("/run").join(value("RuntimeDirectory"))
    );
    // The package installs the unit from here (cargo-deb's systemd-units).
    let manifest = std::fs::read_to_string(dist().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("systemd-units"), "{manifest}");
}

/// The bounding set is what vipd keeps after start-up (with `script_user`, the larger
/// set) plus exactly what start-up itself needs; the unit's comment names each.
#[test]
fn the_bounding_set_is_what_vipd_keeps_plus_what_start_up_needs() {
    let unit: BTreeSet<String> = value("CapabilityBoundingSet")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut want: BTreeSet<String> = vipd::daemon::privileges::kept(true)
        .into_iter()
        .map(|c| c.to_string())
        .collect();
    // Loading the program (the verifier), SCHED_RR for the loop, dropping the bounding set.
    want.extend(["CAP_PERFMON", "CAP_SYS_NICE", "CAP_SETPCAP"].map(str::to_owned));
    assert_eq!(unit, want);
    for cap in &unit {
        assert!(
            UNIT.lines()
                .filter(|l| l.starts_with('#'))
                .any(|l| l.contains(cap.as_str())),
            "the unit's comments do not say why it keeps {cap}"
        );
    }
    assert_eq!(value("NoNewPrivileges"), "yes");
    assert_eq!(value("AmbientCapabilities"), "");
}

/// `systemd-analyze security --offline=yes` on the unit: the overall exposure line's
/// figure and rating (`2.9`, `OK`), and the JSON table of checks.
fn security() -> (String, String, serde_json::Value) {
    let dir = scratch("unit-security");
    let unit = dir.join("vipd.service");
    std::fs::write(&unit, UNIT).unwrap();
    let analyze = |json: bool| {
        let mut cmd = Command::new("systemd-analyze");
        cmd.args(["security", "--offline=yes", "--no-pager"]);
        if json {
            cmd.arg("--json=short");
        }
        let out = run(cmd.arg(&unit));
        assert!(
            out.status.success(),
            "systemd-analyze security:\n{}",
            text(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let table = analyze(false);
    let overall = table
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for vipd.service: "))
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{table}"));
    let mut words = overall.split_whitespace();
    let (score, rating) = (words.next().unwrap(), words.next().unwrap());
    let checks = serde_json::from_str(&analyze(true)).unwrap();
    (score.to_owned(), rating.to_owned(), checks)
}

/// The README and the operator's guide quote the unit's exposure as systemd rates it; a
/// change to the unit that moves the figure must update them with it.
#[test]
fn the_docs_give_the_units_systemd_analyze_security_exposure() {
    let (score, rating, _) = security();
    let readme = std::fs::read_to_string(dist().join("../README.md")).unwrap();
    let quoted = format!("rates the unit's exposure {score} ({rating})");
    assert!(
        readme.contains(&quoted),
        "systemd-analyze security says {score} {rating}: the README must say \"{quoted}\""
    );
    let guide = std::fs::read_to_string(dist().join("../docs/operations.md")).unwrap();
    let quoted = format!("rates it {score} ({rating})");
    assert!(
        guide.contains(&quoted),
        "systemd-analyze security says {score} {rating}: docs/operations.md must say \"{quoted}\""
    );
    let figure: f64 = score.parse().unwrap();
    assert!(
        figure <= 3.0,
        "exposure {figure}: the unit lost a protection"
    );
}

/// The protections that close the doors the unit is built around are in place as
/// systemd reads them, each group of the system call filter included.
#[test]
fn systemd_reads_the_units_sandbox_and_filter_as_in_place() {
    let (_, _, checks) = security();
    let set = |name: &str| -> bool {
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("systemd-analyze security has no check {name}"))["set"]
            .as_bool()
            .unwrap()
    };
    for name in [
        "ProtectKernelTunables=",
        "ProtectProc=",
        "PrivateMounts=",
        "ProtectSystem=",
        "NoNewPrivileges=",
        "RestrictNamespaces=~mnt",
    ] {
        assert!(set(name), "{name} is not in place");
    }
    let groups = value("SystemCallFilter")
        .strip_prefix('~')
        .expect("a deny-list");
    for group in groups.split_whitespace() {
        assert!(set(&format!("SystemCallFilter=~{group}")), "{group}");
    }
    // What vipd writes, and nothing more: the pin directory's bpffs and the interfaces'
    // IPv4 settings (arp_announce in VMAC mode).
    let paths: Vec<&str> = value("ReadWritePaths").split_whitespace().collect();
    assert_eq!(paths, ["-/sys/fs/bpf", "/proc/sys/net/ipv4/conf"]);
    assert!(vipd::config::DEFAULT_PIN_DIR.starts_with("/sys/fs/bpf/"));
}
