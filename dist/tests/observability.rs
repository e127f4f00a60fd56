//! The Grafana dashboard and the Prometheus alerting rules in `dist/`: the dashboard is
//! valid JSON whose every query names metrics vipd exports (and shows every family vipd
//! exports), and the rules pass `promtool check rules` and their own unit tests
//! (`promtool test rules`), also naming only metrics vipd exports.

mod common;

use std::{collections::BTreeSet, process::Command};

use common::{dist, run, text};

/// A status with every part filled in, so every metric family is rendered.
fn sample() -> vipd::control::Status {
    serde_json::from_value(serde_json::json!({
        "router_id": "edge1", "pid": 1, "uptime_ms": 1000, "pin_path": "/sys/fs/bpf/vipd/edge1",
        "instances": [{
            "name": "gw", "interface": "eth0", "vrid": 51, "family": "ipv4", "version": 3,
            "state": "master", "priority": 150, "configured_priority": 150,
            "master": "192.0.2.11", "master_adver_interval_ms": 100.0,
            "master_down_interval_ms": 341.4, "last_transition": null, "transitions": 1,
            "adverts_sent": 10, "adverts_received": 0, "adverts_invalid": 1,
            "adverts_rejected": {"version_mismatch": 1},
            "bfd_probes": 3, "bfd_probes_answered": 2,
            "vips": ["192.0.2.1/24"], "vmac": null, "slot": 0, "sync_group": null,
            "tracking": [],
            "dataplane": {"answering": true, "lease_remaining_ms": 300.0}
        }],
        "xdp": {"arp_reply": 3, "vrrp_drop_peer": 1},
        "conflicts": [{"vip": "192.0.2.1", "mac": "02:00:00:00:00:99", "count": 1, "last_seen_ago_ms": 5}],
        "loop_lag": {"worst_us": 90, "recent_worst_us": 80, "count": 10, "sum_seconds": 0.0004,
                     "buckets": [9, 10, 10, 10, 10, 10, 10, 10]},
        "connections_refused": {"metrics": 2},
        "bfd": [{"interface": "eth0", "peer": "192.0.2.12", "local": "192.0.2.11", "state": "up",
                 "subscribed": true, "echo": true, "detection_ms": 3000.0,
                 "echo_detection_ms": 3.0, "last_down": "echo-function-failed",
                 "last_down_ago_ms": 5000, "downs": {"echo-function-failed": 1},
                 "local_discriminator": 1, "remote_discriminator": 2}],
        "bfd_summary": {"passive_sessions": 1, "passive_up": 1, "learned_sessions": 0,
                        "passive_downs": {"neighbor-signaled-down": 1},
                        "counters": {"control_received": 9, "unknown_neighbour": 5}}
    }))
    .expect("a valid status")
}

/// Every sample name vipd's exposition holds (`vipd_x_total`, `vipd_y_bucket`, ...).
fn exported() -> BTreeSet<String> {
    vipd::control::metrics::render(&sample())
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// Metric families: sample names without the histogram's `_bucket/_sum/_count`.
fn families() -> BTreeSet<String> {
    vipd::control::metrics::render(&sample())
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(|f| match f {
            // OpenMetrics names counters without their `_total` in TYPE lines.
            _ if exported().contains(&format!("{f}_total")) => format!("{f}_total"),
            _ => f.to_owned(),
        })
        .collect()
}

/// `vipd_…` names in a PromQL expression.
fn names_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("vipd_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        // A label value or a word that merely contains `vipd_` is not a metric.
        let before = rest[..i].chars().last();
        if !matches!(before, Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '"') {
            out.push(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    out
}

fn dashboard_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(dist().join("grafana/vipd.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "definition", serde_json::Value::String(s)) => {
                            out.push(s.clone())
                        }
                        ("query", serde_json::Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&json, &mut out);
    assert!(json["panels"].as_array().is_some_and(|p| p.len() > 10));
    out
}

#[test]
fn the_render_exports_every_family_the_tests_rely_on() {
    let f = families();
    for want in [
        "vipd_instance_state",
        "vipd_transitions_total",
        "vipd_loop_lag_seconds",
        "vipd_connections_refused_total",
        "vipd_lease_remaining_seconds",
    ] {
        assert!(f.contains(want), "{want} not in {f:?}");
    }
}

#[test]
fn the_dashboard_queries_only_metrics_vipd_exports_and_shows_them_all() {
    let exported = exported();
    let exprs = dashboard_exprs();
    let mut used = BTreeSet::new();
    for e in &exprs {
        for name in names_in(e) {
            assert!(
                exported.contains(&name),
                "the dashboard queries {name}, which vipd does not export: {e}"
            );
            used.insert(name);
        }
    }
    for family in families() {
        assert!(
            used.iter()
                .any(|u| u == &family || u.strip_suffix("_bucket") == Some(family.as_str())),
            "the dashboard shows nothing of {family}"
        );
    }
}

#[test]
fn the_alert_rules_name_only_metrics_vipd_exports() {
    let rules = std::fs::read_to_string(dist().join("prometheus/vipd.rules.yml")).unwrap();
    let exported = exported();
    let mut used = 0;
    for line in rules.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for name in names_in(line) {
            assert!(
                exported.contains(&name),
                "a rule uses {name}, which vipd does not export: {line}"
            );
            used += 1;
        }
    }
    assert!(used >= 10, "only {used} metric references");
}

#[test]
fn promtool_checks_the_rules() {
    let out = run(Command::new("promtool")
        .args(["check", "rules", "vipd.rules.yml"])
        .current_dir(dist().join("prometheus")));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("SUCCESS: 13 rules found"),
        "{}",
        text(&out)
    );
}

#[test]
fn promtool_unit_tests_of_the_rules_pass() {
    let out = run(Command::new("promtool")
        .args(["test", "rules", "vipd.rules.test.yml"])
        .current_dir(dist().join("prometheus")));
    assert!(out.status.success(), "{}", text(&out));
}

/// The rules' tests can fail: a rule with a threshold moved is caught.
#[test]
fn promtool_catches_a_broken_rule() {
    let dir = common::scratch("rules-broken");
    let rules = std::fs::read_to_string(dist().join("prometheus/vipd.rules.yml")).unwrap();
    std::fs::write(
        dir.join("vipd.rules.yml"),
        rules.replace(
            "(vipd_instance_state{state=\"master\"}) > 1",
            "(vipd_instance_state{state=\"master\"}) > 2",
        ),
    )
    .unwrap();
    std::fs::copy(
        dist().join("prometheus/vipd.rules.test.yml"),
        dir.join("vipd.rules.test.yml"),
    )
    .unwrap();
    let out = run(Command::new("promtool")
        .args(["test", "rules", "vipd.rules.test.yml"])
        .current_dir(&dir));
    assert!(
        !out.status.success(),
        "a broken rule passed its tests:\n{}",
        text(&out)
    );
    assert!(text(&out).contains("VipdTwoMasters"), "{}", text(&out));
}

#[test]
fn names_are_found_in_expressions() {
    assert_eq!(
        names_in(
            "sum by (le) (rate(vipd_loop_lag_seconds_bucket{instance=~\"$router\"}[5m])) > vipd_x"
        ),
        ["vipd_loop_lag_seconds_bucket", "vipd_x"]
    );
    assert_eq!(
        names_in("label_values(vipd_instance_state, instance)"),
        ["vipd_instance_state"]
    );
}
