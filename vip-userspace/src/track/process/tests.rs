use std::collections::HashMap;

use super::*;
use crate::config::{ArgvMatch, ParamMatch};

fn comm(name: &str) -> ProcessPattern {
    ProcessPattern {
        name: name.into(),
        argv: None,
    }
}

fn argv(name: &str, args: &[&str], how: Option<ParamMatch>) -> ProcessPattern {
    ProcessPattern {
        name: name.into(),
        argv: Some(ArgvMatch {
            args: args.iter().map(|a| a.to_string()).collect(),
            param_match: how,
        }),
    }
}

fn seen(comm: &str, cmdline: &[&str]) -> Seen {
    let mut c = Vec::new();
    for a in cmdline {
        c.extend_from_slice(a.as_bytes());
        c.push(0);
    }
    Seen {
        comm: comm.as_bytes().to_vec(),
        cmdline: Some(c),
    }
}

/// A fake `/proc`: pid → what it shows.
struct Procs(HashMap<u32, Seen>);

impl Procs {
    fn pids(&self) -> Vec<u32> {
        let mut p: Vec<u32> = self.0.keys().copied().collect();
        p.sort_unstable();
        p
    }
}

fn counts(t: &Table) -> Vec<u32> {
    t.patterns().map(|(s, _)| t.count(s)).collect()
}

#[test]
fn stat_names_may_hold_parentheses_and_spaces() {
    assert_eq!(
        parse_stat(b"42 (haproxy) S 1 42 42 0"),
        Some((&b"haproxy"[..], b'S'))
    );
    assert_eq!(
        parse_stat(b"7 (a) b (c)) Z 1"),
        Some((&b"a) b (c)"[..], b'Z'))
    );
    assert_eq!(parse_stat(b"7 (cut"), None);
    assert_eq!(parse_stat(b"7 (x)"), None, "no state field");
    assert_eq!(parse_stat(b") 7 ("), None);
}

#[test]
fn a_process_name_matches_exactly_never_as_a_pattern() {
    let p = comm("ssh");
    assert!(p.matches_comm(b"ssh"));
    assert!(
        !p.matches_comm(b"sshd"),
        "pgrep ssh would match sshd; keepalived does not"
    );
    assert!(
        !p.matches_argv([&b"ssh"[..]].into_iter()),
        "a name pattern ignores argv"
    );
}

#[test]
fn arguments_match_exactly_partially_or_initially() {
    let cmd: [&[u8]; 4] = [b"/usr/sbin/haproxy", b"-f", b"/etc/haproxy.cfg", b"-Ws"];
    let m = |p: &ProcessPattern, c: &[&[u8]]| p.matches_argv(c.iter().copied());
    let exact = argv(
        "/usr/sbin/haproxy",
        &["-f", "/etc/haproxy.cfg", "-Ws"],
        Some(ParamMatch::Exact),
    );
    assert!(m(&exact, &cmd));
    assert!(!m(&exact, &cmd[..3]), "one argument missing");
    let partial = argv(
        "/usr/sbin/haproxy",
        &["-f", "/etc/haproxy.cfg"],
        Some(ParamMatch::Partial),
    );
    assert!(m(&partial, &cmd), "more may follow");
    assert!(!m(&partial, &cmd[..2]));
    let initial = argv(
        "/usr/sbin/haproxy",
        &["-f", "/etc/hap"],
        Some(ParamMatch::Initial),
    );
    assert!(m(&initial, &cmd), "the last one a prefix");
    assert!(
        !m(
            &argv(
                "/usr/sbin/haproxy",
                &["-", "/etc"],
                Some(ParamMatch::Initial)
            ),
            &cmd
        ),
        "only the last is a prefix"
    );
    let none = argv("/usr/sbin/haproxy", &[], Some(ParamMatch::Exact));
    assert!(
        !m(&none, &cmd),
        "param_match without args: no arguments at all"
    );
    assert!(m(&none, &cmd[..1]));
    let any = argv("/usr/sbin/haproxy", &[], None);
    assert!(m(&any, &cmd), "full_command alone: argv[0] only");
    assert!(!m(&any, &[b"haproxy"]), "argv[0] as started, exactly");
    assert!(
        !any.matches_comm(b"/usr/sbin/haproxy"),
        "argv patterns ignore the name"
    );
}

#[test]
fn a_command_line_cut_short_still_decides() {
    let exact = argv(
        "/usr/sbin/bird",
        &["-c", "/etc/bird.conf"],
        Some(ParamMatch::Exact),
    );
    let partial = argv(
        "/usr/sbin/bird",
        &["-c", "/etc/bird.conf"],
        Some(ParamMatch::Partial),
    );
    let whole = b"/usr/sbin/bird\0-c\0/etc/bird.conf\0-d\0";
    // What look() reads: exactly the bytes the pattern needs and one more.
    let cut = &whole[..exact.argv_bytes()];
    assert!(!exact.matches_argv(argv_of(cut)), "more follows: not exact");
    assert!(partial.matches_argv(argv_of(cut)));
    let same = b"/usr/sbin/bird\0-c\0/etc/bird.conf\0";
    assert!(exact.matches_argv(argv_of(same)));
    let empty_last = b"a\0\0";
    assert!(argv("a", &[""], Some(ParamMatch::Exact)).matches_argv(argv_of(empty_last)));
}

#[test]
fn a_scan_counts_processes_and_skips_what_does_not_match() {
    let mut t = Table::default();
    let a = t.add(comm("haproxy")).unwrap();
    let b = t
        .add(argv(
            "/usr/sbin/bird",
            &["-c", "/etc/bird.conf"],
            Some(ParamMatch::Exact),
        ))
        .unwrap();
    let procs = Procs(HashMap::from([
        (10, seen("haproxy", &["/usr/sbin/haproxy"])),
        (11, seen("haproxy", &["/usr/sbin/haproxy", "-x"])),
        (
            12,
            seen("bird", &["/usr/sbin/bird", "-c", "/etc/bird.conf"]),
        ),
        (
            13,
            seen("bird", &["/usr/sbin/bird", "-c", "/etc/other.conf"]),
        ),
        (14, seen("haproxy-ctl", &["haproxy-ctl"])),
    ]));
    let mut changes = Changes::new();
    t.scan(
        &procs.pids(),
        |p| procs.0.get(&p).cloned(),
        |_| true,
        ProcessChange::Scan,
        &mut changes,
    );
    assert_eq!((t.count(a), t.count(b)), (2, 1));
    assert_eq!(t.pids(), 3);
    assert_eq!(changes.get(&a), Some(&(0, ProcessChange::Scan)));
}

#[test]
fn forks_count_under_the_parent_and_exits_uncount() {
    let mut t = Table::default();
    let a = t.add(comm("haproxy")).unwrap();
    let procs = Procs(HashMap::from([(10, seen("haproxy", &["haproxy"]))]));
    let mut ch = Changes::new();
    t.scan(
        &procs.pids(),
        |p| procs.0.get(&p).cloned(),
        |_| true,
        ProcessChange::Scan,
        &mut ch,
    );
    let mut ch = Changes::new();
    t.fork(10, 20, &mut ch);
    t.fork(99, 21, &mut ch); // an untracked parent: nothing
    assert_eq!(t.count(a), 2);
    assert_eq!(ch.get(&a), Some(&(1, ProcessChange::Fork)));
    // The child execs something else: it no longer counts.
    let mut ch = Changes::new();
    t.observe(
        20,
        Some(&seen("sh", &["/bin/sh"])),
        Scope::All,
        |_| true,
        ProcessChange::Renamed,
        &mut ch,
    );
    assert_eq!(t.count(a), 1);
    let mut ch = Changes::new();
    t.exit(10, &mut ch);
    t.exit(10, &mut ch); // twice: nothing more
    t.exit(55, &mut ch); // never counted: nothing
    assert_eq!(t.count(a), 0);
    assert_eq!(ch.get(&a), Some(&(1, ProcessChange::Exit)));
    assert_eq!(t.pids(), 0);
}

#[test]
fn a_rename_decides_name_patterns_only() {
    let mut t = Table::default();
    let by_name = t.add(comm("worker")).unwrap();
    let by_argv = t.add(argv("/opt/svc", &[], None)).unwrap();
    let mut ch = Changes::new();
    t.observe(
        30,
        Some(&seen("svc", &["/opt/svc"])),
        Scope::All,
        |_| true,
        ProcessChange::Renamed,
        &mut ch,
    );
    assert_eq!(counts(&t), [0, 1]);
    // prctl(PR_SET_NAME, "worker"): the event carries the name, the command line is as
    // it was.
    let renamed = Seen {
        comm: b"worker".to_vec(),
        cmdline: None,
    };
    t.observe(
        30,
        Some(&renamed),
        Scope::Comm,
        |_| true,
        ProcessChange::Renamed,
        &mut ch,
    );
    assert_eq!((t.count(by_name), t.count(by_argv)), (1, 1));
}

#[test]
fn a_batch_reports_only_what_moved() {
    let mut t = Table::default();
    let a = t.add(comm("haproxy")).unwrap();
    let mut ch = Changes::new();
    t.observe(
        10,
        Some(&seen("haproxy", &[])),
        Scope::All,
        |_| true,
        ProcessChange::Scan,
        &mut ch,
    );
    let mut ch = Changes::new();
    // A restart inside one batch: exit, then the new one execs.
    t.exit(10, &mut ch);
    t.observe(
        11,
        Some(&seen("haproxy", &[])),
        Scope::All,
        |_| true,
        ProcessChange::Renamed,
        &mut ch,
    );
    let (before, cause) = ch[&a];
    assert_eq!(
        (before, t.count(a)),
        (1, 1),
        "net unchanged: nothing to report"
    );
    assert_eq!(cause, ProcessChange::Renamed, "the last cause is kept");
}

#[test]
fn a_rescan_finds_exits_and_starts_that_were_lost() {
    let mut t = Table::default();
    let a = t.add(comm("bird")).unwrap();
    let mut ch = Changes::new();
    for pid in [1, 2] {
        t.observe(
            pid,
            Some(&seen("bird", &[])),
            Scope::All,
            |_| true,
            ProcessChange::Scan,
            &mut ch,
        );
    }
    // pid 1 exited and pid 3 started while events were being dropped.
    let procs = Procs(HashMap::from([
        (2, seen("bird", &[])),
        (3, seen("bird", &[])),
        (4, seen("bash", &[])),
    ]));
    let mut ch = Changes::new();
    t.scan(
        &procs.pids(),
        |p| procs.0.get(&p).cloned(),
        |_| true,
        ProcessChange::Rescan,
        &mut ch,
    );
    assert_eq!(t.count(a), 2);
    assert_eq!(t.pids(), 2);
    assert!(!t.pids.contains_key(&1));
}

#[test]
fn removing_a_pattern_forgets_its_processes_and_frees_its_slot() {
    let mut t = Table::default();
    let a = t.add(comm("a")).unwrap();
    let b = t.add(comm("b")).unwrap();
    let mut ch = Changes::new();
    t.observe(
        1,
        Some(&seen("a", &[])),
        Scope::All,
        |_| true,
        ProcessChange::Scan,
        &mut ch,
    );
    t.observe(
        2,
        Some(&seen("b", &[])),
        Scope::All,
        |_| true,
        ProcessChange::Scan,
        &mut ch,
    );
    t.remove(a);
    assert_eq!(t.pids(), 1);
    assert_eq!(t.slot(&comm("a")), None);
    assert_eq!(t.add(comm("c")), Some(a), "the slot is reused");
    assert_eq!(t.count(b), 1);
}

#[test]
fn the_table_is_bounded() {
    let mut t = Table::default();
    for i in 0..MAX_SLOTS {
        assert!(t.add(comm(&format!("p{i}"))).is_some());
    }
    assert_eq!(t.add(comm("one-more")), None);
    let mut t = Table::default();
    let a = t.add(comm("many")).unwrap();
    let mut ch = Changes::new();
    for pid in 0..(MAX_PIDS as u32 + 10) {
        t.observe(
            pid,
            Some(&seen("many", &[])),
            Scope::All,
            |_| true,
            ProcessChange::Scan,
            &mut ch,
        );
    }
    assert_eq!(t.pids(), MAX_PIDS);
    assert_eq!(t.count(a), MAX_PIDS as u32);
    assert_eq!(t.refused, 10);
}

#[test]
fn hidepid_is_read_from_the_proc_mount() {
    let plain = "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n";
    assert_eq!(hidepid(plain), None);
    let hidden = "22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw,hidepid=invisible\n";
    assert_eq!(hidepid(hidden).as_deref(), Some("invisible"));
    let off = "22 1 0:21 / /proc rw - proc proc rw,hidepid=off\n";
    assert_eq!(hidepid(off), None);
    // A private /proc mounted over the first (systemd's ProtectProc=) is the one seen.
    assert_eq!(
        hidepid(&format!("{plain}{hidden}")).as_deref(),
        Some("invisible")
    );
    assert_eq!(hidepid(&format!("{hidden}{plain}")), None);
    let elsewhere = "30 22 0:40 / /proc/sys/fs/binfmt_misc rw - binfmt_misc x rw\n";
    assert_eq!(hidepid(&format!("{plain}{elsewhere}")), None);
}
