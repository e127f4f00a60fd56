//! `track_processes`: what it accepts, what it refuses (each at its place), its printed
//! form, and the warning when `/proc` hides other processes.

use std::time::Duration;

use super::{FakeHost, gw, parse, parse_on, problem, problems, round_trip};
use crate::config::{ArgvMatch, ParamMatch, ProcessPattern};

fn tp(entry: &str) -> String {
    gw(&format!(
        "allowed_peers = [\"192.0.2.12\"]\ntrack_processes = [{entry}]\n"
    ))
}

#[test]
fn defaults_are_keepalived_s() {
    let c = parse(&tp("{ name = \"haproxy\" }")).unwrap();
    let t = &c.instances[0].track_processes[0];
    assert_eq!(
        t.pattern,
        ProcessPattern {
            name: "haproxy".into(),
            argv: None
        }
    );
    assert_eq!(
        (t.quorum, t.quorum_max, t.weight, t.reverse),
        (1, None, 0, false)
    );
    assert_eq!(
        (t.fork_delay, t.terminate_delay),
        (Duration::ZERO, Duration::ZERO)
    );
}

#[test]
fn args_and_param_match_match_the_command_line() {
    let c = parse(&tp(
        "{ name = \"/usr/sbin/haproxy\", args = [\"-f\", \"/etc/h.cfg\"] }",
    ))
    .unwrap();
    assert_eq!(
        c.instances[0].track_processes[0].pattern.argv,
        Some(ArgvMatch {
            args: vec!["-f".into(), "/etc/h.cfg".into()],
            param_match: Some(ParamMatch::Exact)
        }),
        "args alone: exact, as keepalived's process with parameters"
    );
    let c = parse(&tp(
        "{ name = \"/usr/sbin/haproxy\", param_match = \"exact\" }",
    ))
    .unwrap();
    assert_eq!(
        c.instances[0].track_processes[0].pattern.argv,
        Some(ArgvMatch {
            args: vec![],
            param_match: Some(ParamMatch::Exact)
        }),
        "param_match without args: no arguments at all"
    );
    let c = parse(&tp("{ name = \"/usr/sbin/haproxy\", full_command = true }")).unwrap();
    assert_eq!(
        c.instances[0].track_processes[0].pattern.argv,
        Some(ArgvMatch {
            args: vec![],
            param_match: None
        }),
        "full_command alone: argv[0], any arguments"
    );
}

#[test]
fn quorum_max_zero_means_none_may_run() {
    let c = parse(&tp("{ name = \"telnetd\", quorum_max = 0 }")).unwrap();
    let t = &c.instances[0].track_processes[0];
    assert_eq!((t.quorum, t.quorum_max), (0, Some(0)));
}

#[test]
fn delay_sets_both_delays() {
    let c = parse(&tp("{ name = \"bird\", delay = \"1500ms\" }")).unwrap();
    let t = &c.instances[0].track_processes[0];
    assert_eq!(
        (t.fork_delay, t.terminate_delay),
        (Duration::from_millis(1500), Duration::from_millis(1500))
    );
}

#[test]
fn bad_entries_are_named_at_their_place() {
    assert_eq!(
        problem(&tp("{ weight = -10 }")),
        "vipd.toml:9:20: vrrp[0].track_processes[0].name: missing required field \"name\""
    );
    assert_eq!(
        problem(&tp("{ name = \"a-very-long-daemon-name\" }")),
        "vipd.toml:9:29: vrrp[0].track_processes[0].name: \"a-very-long-daemon-name\" is 23 bytes, and the kernel keeps at most 15 of a process name, so it never matches; set full_command = true to match the command line's program (argv[0]) instead"
    );
    assert_eq!(
        problem(&tp("{ name = \"haproxy\", quorum = 3, quorum_max = 2 }")),
        "vipd.toml:9:65: vrrp[0].track_processes[0].quorum_max: quorum_max 2 is below quorum 3"
    );
    assert_eq!(
        problem(&tp("{ name = \"haproxy\", quorum = 0 }")),
        "vipd.toml:9:49: vrrp[0].track_processes[0].quorum: 0 is out of range 1..=65535"
    );
    assert_eq!(
        problem(&tp("{ name = \"haproxy\", param_match = \"prefix\" }")),
        "vipd.toml:9:54: vrrp[0].track_processes[0].param_match: \"prefix\" is not a param_match; expected \"exact\", \"partial\" or \"initial\""
    );
    assert_eq!(
        problem(&tp(
            "{ name = \"haproxy\", args = [\"-f\"], full_command = false }"
        )),
        "vipd.toml:9:70: vrrp[0].track_processes[0].full_command: args and param_match match the command line, so full_command cannot be false"
    );
    assert_eq!(
        problem(&tp(
            "{ name = \"haproxy\", delay = \"1s\", fork_delay = \"2s\" }"
        )),
        "vipd.toml:9:48: vrrp[0].track_processes[0].delay: delay sets both fork_delay and terminate_delay; give either delay or those"
    );
    assert_eq!(
        problem(&tp("{ name = \"haproxy\", terminate_delay = \"2h\" }")),
        "vipd.toml:9:58: vrrp[0].track_processes[0].terminate_delay: 7200s is out of range 0s..=3600s"
    );
    assert_eq!(
        problem(&tp("{ name = \"haproxy\", args = [\"-f\", 3] }")),
        "vipd.toml:9:54: vrrp[0].track_processes[0].args[1]: expected a string, found an integer"
    );
    assert_eq!(
        problem(&tp(
            "{ name = \"haproxy\" }, { name = \"haproxy\", weight = 5 }"
        )),
        "vipd.toml:9:42: vrrp[0].track_processes[1]: haproxy is already listed at vrrp[0].track_processes[0]"
    );
}

#[test]
fn more_than_the_watcher_holds_is_refused() {
    let entries: Vec<String> = (0..=crate::config::MAX_TRACKED_PROCESSES)
        .map(|i| format!("{{ name = \"p{i}\" }}"))
        .collect();
    let all = problems(&tp(&entries.join(", ")));
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(
        all[0].contains(
            "vrrp[0].track_processes[256]: more than 256 different tracked processes in all"
        ),
        "{all:?}"
    );
}

#[test]
fn printed_form_reads_back_the_same() {
    round_trip(&tp(
        "{ name = \"haproxy\", quorum = 2, quorum_max = 4, weight = -20, reverse = true, \
         fork_delay = \"1s\", terminate_delay = \"3s\" }, \
         { name = \"/usr/sbin/bird\", args = [\"-c\", \"/etc/b\"], param_match = \"initial\" }, \
         { name = \"/opt/x\", full_command = true }, { name = \"telnetd\", quorum_max = 0 }",
    ));
}

#[test]
fn a_proc_that_hides_processes_is_warned_about() {
    let host = FakeHost::lab()
        .proc_hidden("/proc is mounted with hidepid=invisible (systemd's ProtectProc=invisible)");
    let c = parse_on(&tp("{ name = \"haproxy\" }"), &host).unwrap();
    let warnings: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "vipd.toml:9:19: vrrp[0].track_processes: /proc is mounted with hidepid=invisible (systemd's ProtectProc=invisible), so processes of other users cannot be counted and vipd will refuse to start with track_processes; under the packaged unit add a drop-in with ProtectProc=default (docs/operations.md, \"Tracking processes\")"
        ]
    );
    // Without track_processes it does not matter.
    let c = parse_on(&gw("allowed_peers = [\"192.0.2.12\"]\n"), &host).unwrap();
    assert!(c.warnings.is_empty());
}
