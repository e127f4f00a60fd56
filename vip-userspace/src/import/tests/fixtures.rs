//! Each fixture directory holds `keepalived.conf` (and what it includes), `expected.toml`
//! (the vipd file) and `expected.stderr` (what the import reports).

use std::time::Duration;

use super::{fixtures_dir, host, must_load, options, report_lines};
use crate::config::{PreferredLifetime, RouteType};
use crate::import::{Kind, keepalived};
use crate::vrrp::Version;

/// Imports a fixture and compares it with its expected files; returns the vipd file.
fn check(name: &str) -> String {
    let dir = fixtures_dir().join(name);
    let outcome = keepalived(&dir.join("keepalived.conf"), &options(), &host());
    let report = report_lines(&outcome).join("\n") + "\n";
    let toml = outcome
        .toml
        .clone()
        .unwrap_or_else(|| panic!("{name}: import failed:\n{report}"));
    let (toml_path, report_path) = (dir.join("expected.toml"), dir.join("expected.stderr"));
    if std::env::var_os("VIPD_BLESS").is_some() {
        std::fs::write(&toml_path, &toml).unwrap();
        std::fs::write(&report_path, &report).unwrap();
    }
    let expected = std::fs::read_to_string(&toml_path).unwrap_or_default();
    assert_eq!(
        toml, expected,
        "{name}: the vipd file differs from expected.toml"
    );
    let expected = std::fs::read_to_string(&report_path).unwrap_or_default();
    assert_eq!(
        report, expected,
        "{name}: the report differs from expected.stderr"
    );
    assert!(
        !outcome
            .reports
            .iter()
            .any(|r| r.reason == "unknown keepalived keyword" && r.keyword != "lvs_reload_hack"),
        "{name}: a fixture keyword is unknown to the importer:\n{report}"
    );
    toml
}

#[test]
fn gateway_pair_with_sync_group_includes_ipv6_routes_and_rules() {
    let toml = check("gateway");
    let config = must_load(&toml);
    // keepalived admitted any source (no check_unicast_src), and so does the import;
    // `vipd check` says so for each VRRPv3 instance, and nothing else.
    let warned: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warned.len(), 3, "{warned:#?}");
    for (w, name) in warned.iter().zip(["outside", "inside", "inside6"]) {
        assert!(
            w.contains(&format!("instance \"{name}\" runs VRRPv3"))
                && w.contains("sets no allowed_peers"),
            "{w}"
        );
    }
    assert_eq!(config.global.router_id, "edge-r1", "the @r1 line applies");
    assert_eq!(config.global.startup_delay, Duration::from_secs(5));
    let names: Vec<&str> = config.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["outside", "inside", "inside6"]);
    let edge = &config.sync_groups["edge"];
    assert_eq!(edge.members, [0, 1]);
    assert!(edge.notify.master.is_some() && edge.notify.any.is_some());

    let outside = &config.instances[0];
    assert_eq!(outside.priority, 150, "$PRIO as defined for r1");
    assert_eq!(outside.version, Version::V3, "global vrrp_version 3");
    assert_eq!(outside.virtual_routes[1].kind, RouteType::Blackhole);
    assert_eq!(outside.virtual_routes[1].protocol, 18, "proto keepalived");
    assert_eq!(
        outside.track_scripts[1].weight, 5,
        "the instance's weight wins"
    );
    assert!(outside.track_scripts[1].init_fail);
    assert_eq!(outside.track_files[0].weight, 2);
    assert_eq!(
        outside.garp_interval,
        Duration::from_millis(5),
        "garp_group"
    );

    let inside = &config.instances[1];
    assert_eq!(inside.advert_interval, Duration::from_millis(500));
    assert_eq!(inside.preempt_delay, Duration::from_secs(30));
    assert_eq!(
        inside.track_scripts[0].command.program(),
        "/bin/sh",
        "a pipe needs a shell"
    );

    let inside6 = &config.instances[2];
    assert_eq!(inside6.version, Version::V3, "IPv6 is always v3");
    assert_eq!(inside6.vips[1].preferred_lft, PreferredLifetime::Forever);
    assert_eq!(
        inside6.vips[2].preferred_lft,
        PreferredLifetime::Zero,
        "keepalived deprecates a /128"
    );
    assert_eq!(
        inside6.garp_interval,
        Duration::from_millis(2),
        "vrrp_gna_interval"
    );
}

#[test]
fn legacy_v2_with_password_unicast_and_lvs() {
    let toml = check("legacy");
    let config = must_load(&toml);
    let vi1 = &config.instances[0];
    assert_eq!(vi1.version, Version::V2, "keepalived's default version");
    assert_eq!(
        vi1.auth_pass,
        Some(*b"s3cr3t-p"),
        "first 8 bytes, as keepalived"
    );
    assert_eq!(vi1.allowed_peers, vi1.unicast_peers, "check_unicast_src");
    assert!(vi1.vmac && vi1.accept && vi1.dont_track_primary);
    assert_eq!(vi1.track_files[0].weight, 0);
    let vi2 = &config.instances[1];
    assert!(!vi2.preempt && !vi2.accept);
    let vi3 = &config.instances[2];
    assert_eq!(
        (vi3.name.as_str(), vi3.priority),
        ("VI_3", 255),
        "state MASTER"
    );
    assert!(toml.contains(
        "virtual_server: lb_kind NAT (keepalived's default, no lb_kind written) is not carried"
    ));
}

#[test]
fn campus_strict_mode_and_group_tracking() {
    let toml = check("campus");
    let config = must_load(&toml);
    let v10 = &config.instances[0];
    assert!(!v10.accept, "strict mode turns accept mode off");
    assert_eq!(v10.auth_pass, None);
    assert_eq!(
        v10.track_scripts.len(),
        1,
        "the group's script, on each member"
    );
    assert_eq!(v10.track_scripts[0].weight, -10);
    assert!(
        !v10.track_scripts[0].reverse,
        "noreverse overrides the script's reverse"
    );
    assert_eq!(
        config.instances[1].allowed_peers.len(),
        1,
        "vrrp_check_unicast_src"
    );
}

#[test]
fn fixture_reports_are_in_file_order_with_lines() {
    let outcome = keepalived(
        &fixtures_dir().join("gateway/keepalived.conf"),
        &options(),
        &host(),
    );
    let first = &outcome.reports[0];
    assert_eq!(first.loc.file.as_ref(), "keepalived.conf");
    let files: Vec<&str> = outcome.files.iter().map(String::as_str).collect();
    assert_eq!(
        files,
        [
            "keepalived.conf",
            "conf.d/10-checks.conf",
            "checks/scripts.conf",
            "conf.d/20-gateway.conf"
        ],
        "includes across two directories, each relative to its includer"
    );
    assert!(outcome.reports.iter().any(|r| r.kind == Kind::LeftOut));
}

#[test]
fn processes_by_name_and_command_line_with_quorums_and_delays() {
    use crate::config::{ArgvMatch, ParamMatch};
    let toml = check("processes");
    let config = must_load(&toml);
    let outside = &config.instances[0];
    let tp: Vec<String> = outside
        .track_processes
        .iter()
        .map(|t| t.pattern.to_string())
        .collect();
    assert_eq!(
        tp,
        [
            "haproxy",
            r#"["/usr/sbin/bird", "-c", "/etc/bird/bird.conf"]"#,
            r#"["/usr/sbin/conntrackd", "-d", "-C", ...]"#,
            r#"["/opt/svc/worker", "--pool=web*", ...]"#,
            r#"["/usr/local/bin/keepalive-probe", ...]"#,
            "telnetd",
        ],
        "the instance's five in order, then the sync group's"
    );
    let haproxy = &outside.track_processes[0];
    assert_eq!(
        (haproxy.quorum, haproxy.quorum_max, haproxy.weight),
        (1, Some(64), -50)
    );
    assert_eq!(
        (haproxy.fork_delay, haproxy.terminate_delay),
        (Duration::from_millis(2500), Duration::from_millis(2500)),
        "delay sets both"
    );
    let bird = &outside.track_processes[1];
    assert_eq!(bird.weight, -20, "the instance's weight wins");
    assert_eq!(
        bird.pattern.argv,
        Some(ArgvMatch {
            args: vec!["-c".into(), "/etc/bird/bird.conf".into()],
            param_match: Some(ParamMatch::Exact)
        }),
        "parameters match exactly by default"
    );
    assert_eq!(
        (bird.fork_delay, bird.terminate_delay),
        (Duration::from_millis(200), Duration::from_secs(1))
    );
    let conntrackd = &outside.track_processes[2];
    assert!(conntrackd.reverse && conntrackd.weight == 10);
    let by_path = &outside.track_processes[4];
    assert!(!by_path.reverse && by_path.weight == 7, "noreverse");
    let telnet = &outside.track_processes[5];
    assert_eq!((telnet.quorum, telnet.quorum_max), (0, Some(0)));
    let inside = &config.instances[1];
    assert_eq!(
        inside.track_processes.len(),
        2,
        "haproxy once, and the group's"
    );
    assert!(inside.track_processes[0].reverse && inside.track_processes[0].weight == 0);
    let report = std::fs::read_to_string(fixtures_dir().join("processes/expected.stderr")).unwrap();
    for reported in [
        "process: \"a-very-long-process-name\" is longer than the 15 bytes",
        "no vrrp_track_process missing is defined",
        "vrrp_track_process late is defined after this instance",
        "haproxy is tracked twice",
        "process_monitor_rcv_bufs: vipd sizes the process connector's buffer itself",
    ] {
        assert!(
            report.contains(reported),
            "{reported:?} not reported:\n{report}"
        );
    }
}

#[test]
fn virtual_servers_become_services_following_the_instance_with_their_vip() {
    let toml = check("services");
    let config = must_load(&toml);
    use crate::config::service::Active;
    use crate::lb::service::{CheckKind, Method, Protocol};
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "vs_192.0.2.60_80",
            "vs_192.0.2.60_53",
            "vs_2001_db8__60_443"
        ]
    );
    let web = &config.services[0];
    assert_eq!(web.active, Active::Follow("VI_LB".into()));
    assert_eq!(
        (web.method, web.protocol, web.source_hash),
        (Method::DirectRouting, Protocol::Tcp, false)
    );
    assert_eq!((web.quorum, web.hysteresis), (2, 1));
    assert_eq!(web.sorry, Some(("192.0.2.99".parse().unwrap(), 8080)));
    let r = &web.reals[0];
    assert_eq!((r.weight, r.inhibit_on_failure), (2, true));
    let c = r.check.as_ref().unwrap();
    assert_eq!(
        (c.interval, c.timeout, c.retry, c.delay_before_retry),
        (
            Duration::from_secs(5),
            Duration::from_secs(2),
            2,
            Duration::from_secs(1)
        )
    );
    assert!(
        matches!(&c.kind, CheckKind::Http { tls: false, path, status, digest: Some(_), .. } if path == "/health" && status == &[200])
    );
    assert_eq!(web.reals[1].port, 8080);
    assert_eq!(
        web.reals[1].check.as_ref().unwrap().kind,
        CheckKind::Tcp { port: Some(8080) }
    );
    let dns = &config.services[1];
    assert_eq!(
        (dns.method, dns.protocol, dns.source_hash),
        (Method::Tunnel, Protocol::Udp, true)
    );
    assert!(
        matches!(&dns.reals[0].check.as_ref().unwrap().kind, CheckKind::Script { argv } if argv == &["/usr/bin/pidof", "named"])
    );
    let tls = &config.services[2];
    assert!(tls.source_hash, "persistence_timeout");
    assert_eq!(
        tls.reals[0].check.as_ref().unwrap().interval,
        Duration::from_secs(60),
        "keepalived's delay_loop"
    );
    for reason in [
        "lb_kind NAT is not carried",
        "no vrrp_instance carries 203.0.113.7",
        "not a firewall mark",
        "ops: vipd pins flows",
        "wlc: vipd keeps no connection counts",
    ] {
        let report =
            std::fs::read_to_string(fixtures_dir().join("services/expected.stderr")).unwrap();
        assert!(report.contains(reason), "{reason}");
    }
}
