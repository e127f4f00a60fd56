//! Commands, notify hooks, the script user and script security, on a fake filesystem.

use super::{
    FakeHost, GLOBAL, SCRIPT_GID, SCRIPT_UID, gw, parse, parse_on, problem, problems_on, round_trip,
};
use crate::config::Command;

/// `gw` with one track script running `program` (its command at 8:30).
fn script(program: &str) -> String {
    gw(&format!(
        "track_scripts = [{{ command = \"{program}\" }}]\n"
    ))
}

/// The same, with `script_user = "vipd_script"` in [global] (so the command is at 9:30).
fn script_as_user(program: &str) -> String {
    script(program).replace(GLOBAL, &format!("{GLOBAL}script_user = \"vipd_script\"\n"))
}

fn one_problem_on(text: &str, host: &FakeHost) -> String {
    let mut all = problems_on(text, host);
    assert_eq!(all.len(), 1, "expected one problem, got {all:#?}");
    all.remove(0)
}

/// The lab with a root-owned /tmp/x of `mode` holding an executable check.sh.
fn tmp_x(mode: u32) -> FakeHost {
    FakeHost::lab()
        .dir("/tmp/x", mode, 0, 0)
        .file("/tmp/x/check.sh", 0o755, 0, 0)
}

#[test]
fn a_world_writable_directory_on_the_path_is_refused() {
    assert_eq!(
        one_problem_on(&script("/tmp/x/check.sh"), &tmp_x(0o777)),
        "vipd.toml:8:30: vrrp[0].track_scripts[0].command: /tmp/x/check.sh: directory /tmp/x is writable by others (mode 0777); move the script to a directory only root can write"
    );
}

#[test]
fn a_sticky_world_writable_directory_is_fine_when_what_is_below_is_safe() {
    // /tmp is 1777 in the lab.
    assert!(parse_on(&script("/tmp/x/check.sh"), &tmp_x(0o755)).is_ok());
    // But someone else's directory under it is theirs to change.
    let theirs =
        FakeHost::lab()
            .dir("/tmp/x", 0o755, 1000, 1000)
            .file("/tmp/x/check.sh", 0o755, 0, 0);
    assert_eq!(
        one_problem_on(&script("/tmp/x/check.sh"), &theirs),
        "vipd.toml:8:30: vrrp[0].track_scripts[0].command: /tmp/x/check.sh: directory /tmp/x is owned by uid 1000, who can change it (mode 0755); move the script or set global.script_user"
    );
    // And a file right in the sticky directory must itself be safe.
    let host = FakeHost::lab().file("/tmp/check.sh", 0o757, 0, 0);
    assert_eq!(
        one_problem_on(&script("/tmp/check.sh"), &host),
        "vipd.toml:8:30: vrrp[0].track_scripts[0].command: /tmp/check.sh: file /tmp/check.sh is writable by others (mode 0757); remove the write permission for others (chmod o-w)"
    );
}

#[test]
fn a_symlink_is_followed_and_its_target_checked() {
    let unsafe_target = tmp_x(0o777).link("/usr/local/bin/check", "/tmp/x/check.sh");
    assert_eq!(
        one_problem_on(&script("/usr/local/bin/check"), &unsafe_target),
        "vipd.toml:8:30: vrrp[0].track_scripts[0].command: /usr/local/bin/check: directory /tmp/x is writable by others (mode 0777); move the script to a directory only root can write"
    );
    let safe_target = tmp_x(0o755).link("/usr/local/bin/check", "/tmp/x/check.sh");
    assert!(parse_on(&script("/usr/local/bin/check"), &safe_target).is_ok());
    // Relative targets resolve from the link's directory, through `..` too.
    let relative = tmp_x(0o777).link("/usr/local/bin/check", "../../../tmp/x/check.sh");
    assert!(
        one_problem_on(&script("/usr/local/bin/check"), &relative)
            .contains("directory /tmp/x is writable by others")
    );
    // A symlinked directory on the way counts like any other.
    let via_dir = tmp_x(0o777).link("/opt", "/tmp/x");
    assert!(
        one_problem_on(&script("/opt/check.sh"), &via_dir)
            .ends_with("/opt/check.sh: directory /tmp/x is writable by others (mode 0777); move the script to a directory only root can write")
    );
    let looped = FakeHost::lab()
        .link("/usr/local/bin/a", "b")
        .link("/usr/local/bin/b", "a");
    assert!(
        one_problem_on(&script("/usr/local/bin/a"), &looped)
            .ends_with("/usr/local/bin/a: more than 40 symlinks on the way")
    );
}

#[test]
fn group_writable_by_another_group_is_refused() {
    let host = FakeHost::lab()
        .dir("/opt", 0o755, 0, 0)
        .file("/opt/check.sh", 0o775, 0, 50);
    assert_eq!(
        one_problem_on(&script("/opt/check.sh"), &host),
        "vipd.toml:8:30: vrrp[0].track_scripts[0].command: /opt/check.sh: file /opt/check.sh is writable by group 50 (mode 0775); move the script or set global.script_user"
    );
    // Group root is trusted.
    let root_group = FakeHost::lab()
        .dir("/opt", 0o775, 0, 0)
        .file("/opt/check.sh", 0o775, 0, 0);
    assert!(parse_on(&script("/opt/check.sh"), &root_group).is_ok());
}

#[test]
fn what_the_script_user_owns_or_its_group_may_write_is_allowed() {
    let owned = FakeHost::lab()
        .dir("/opt", 0o755, SCRIPT_UID, SCRIPT_GID)
        .file("/opt/check.sh", 0o775, SCRIPT_UID, SCRIPT_GID);
    // Run as root, a script someone else owns is refused...
    assert_eq!(
        one_problem_on(&script("/opt/check.sh"), &owned),
        "vipd.toml:8:30: vrrp[0].track_scripts[0].command: /opt/check.sh: directory /opt is owned by uid 990, who can change it (mode 0755); move the script or set global.script_user"
    );
    // ...and allowed when it runs as that user.
    let config = parse_on(&script_as_user("/opt/check.sh"), &owned).unwrap();
    assert_eq!(config.global.script_user.map(|u| u.uid), Some(SCRIPT_UID));
    // Another group still may not write to it.
    let other_group =
        FakeHost::lab()
            .dir("/opt", 0o755, 0, 0)
            .file("/opt/check.sh", 0o775, SCRIPT_UID, 50);
    assert_eq!(
        one_problem_on(&script_as_user("/opt/check.sh"), &other_group),
        "vipd.toml:9:30: vrrp[0].track_scripts[0].command: /opt/check.sh: file /opt/check.sh is writable by group 50 (mode 0775); move the script or set global.script_user"
    );
}

#[test]
fn the_program_must_exist_and_be_an_executable_file() {
    let host = FakeHost::lab()
        .file("/bin/plain", 0o644, 0, 0)
        .file("/bin/mine", 0o700, 0, 0)
        .dir("/bin/dir", 0o755, 0, 0);
    assert_eq!(
        one_problem_on(&script("/bin/missing"), &host),
        "vipd.toml:8:30: vrrp[0].track_scripts[0].command: /bin/missing: /bin/missing does not exist"
    );
    assert_eq!(
        one_problem_on(&script("/bin/plain"), &host),
        "vipd.toml:8:30: vrrp[0].track_scripts[0].command: /bin/plain: /bin/plain is not executable (mode 0644)"
    );
    assert_eq!(
        one_problem_on(&script("/bin/dir"), &host),
        "vipd.toml:8:30: vrrp[0].track_scripts[0].command: /bin/dir: is a directory, not a program"
    );
    assert_eq!(
        one_problem_on(&script("/bin/check/x"), &host),
        "vipd.toml:8:30: vrrp[0].track_scripts[0].command: /bin/check/x: /bin/check is not a directory"
    );
    // Root may run a file only its owner may execute; the script user may not.
    assert!(parse_on(&script("/bin/mine"), &host).is_ok());
    assert_eq!(
        one_problem_on(&script_as_user("/bin/mine"), &host),
        "vipd.toml:9:30: vrrp[0].track_scripts[0].command: /bin/mine: /bin/mine is not executable by user vipd_script (mode 0700)"
    );
}

#[test]
fn every_notify_hook_is_checked_where_it_is_written() {
    let host = tmp_x(0o777);
    let text = gw(concat!(
        "notify = \"/tmp/x/check.sh\"\n",
        "notify_stop = [\"/tmp/x/check.sh\", \"stop\"]\n",
        "sync_group = \"edge\"\n",
        "[sync_groups.edge]\n",
        "notify_fault = \"/tmp/x/check.sh\"\n",
    ));
    let why = "/tmp/x/check.sh: directory /tmp/x is writable by others (mode 0777); move the script to a directory only root can write";
    assert_eq!(
        problems_on(&text, &host),
        [
            format!("vipd.toml:8:10: vrrp[0].notify: {why}"),
            format!("vipd.toml:9:15: vrrp[0].notify_stop: {why}"),
            format!("vipd.toml:12:16: sync_groups.edge.notify_fault: {why}"),
        ]
    );
}

#[test]
fn a_script_user_that_does_not_exist_is_refused_and_scripts_are_not_judged() {
    let text = script("/tmp/x/check.sh")
        .replace(GLOBAL, &format!("{GLOBAL}script_user = \"nobody-here\"\n"));
    assert_eq!(
        one_problem_on(&text, &tmp_x(0o777)),
        "vipd.toml:3:15: global.script_user: user \"nobody-here\" does not exist"
    );
    let text = gw("").replace(GLOBAL, &format!("{GLOBAL}script_user = \"a b\"\n"));
    assert_eq!(
        problem(&text),
        "vipd.toml:3:15: global.script_user: \"a b\" is not a user name (1 to 32 characters from A-Z a-z 0-9 _ . - $)"
    );
}

#[test]
fn notify_takes_a_path_or_a_program_with_arguments() {
    let config = round_trip(&gw(concat!(
        "notify = \"/bin/notify\"\n",
        "notify_master = [\"/bin/notify\", \"up\", \"--quiet\"]\n",
        "notify_backup = \"/bin/notify\"\n",
        "notify_fault = [\"/bin/notify\"]\n",
        "notify_stop = \"/bin/notify\"\n",
    )));
    let n = &config.instances[0].notify;
    let argv = |parts: &[&str]| Command::new(parts.iter().map(|p| (*p).to_owned()).collect());
    assert_eq!(n.any, argv(&["/bin/notify"]));
    assert_eq!(n.master, argv(&["/bin/notify", "up", "--quiet"]));
    assert_eq!(n.fault, argv(&["/bin/notify"]));
    assert_eq!(n.hooks().count(), 5);
    assert_eq!(
        n.master.as_ref().map(ToString::to_string).as_deref(),
        Some("/bin/notify up --quiet")
    );
}

#[test]
fn notify_commands_are_refused_like_script_commands() {
    assert_eq!(
        problem(&gw("notify_master = \"/bin/notify up\"\n")),
        "vipd.toml:8:17: vrrp[0].notify_master: a string command is a program path, without arguments; to pass arguments write an array: [\"/bin/notify\", ...]"
    );
    assert_eq!(
        problem(&gw("notify_backup = []\n")),
        "vipd.toml:8:17: vrrp[0].notify_backup: the command is empty"
    );
    assert_eq!(
        problem(&gw("notify_fault = 5\n")),
        "vipd.toml:8:16: vrrp[0].notify_fault: expected a program path or an array of program and arguments, found integer"
    );
    assert_eq!(
        problem(&gw("notify_stop = [\"/bin/notify\", 1]\n")),
        "vipd.toml:8:31: vrrp[0].notify_stop[1]: expected a string, found an integer"
    );
}

#[test]
fn the_same_unsafe_program_is_reported_at_every_use() {
    let text = gw(
        "track_scripts = [{ command = \"/tmp/x/check.sh\" }, { command = [\"/tmp/x/check.sh\", \"-v\"] }]\n",
    );
    let all = problems_on(&text, &tmp_x(0o777));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(
        all[0].starts_with("vipd.toml:8:30: vrrp[0].track_scripts[0].command: /tmp/x/check.sh: ")
    );
    assert!(
        all[1].starts_with("vipd.toml:8:63: vrrp[0].track_scripts[1].command: /tmp/x/check.sh: ")
    );
}

#[test]
fn a_missing_script_is_reported_with_the_other_problems_of_the_file() {
    let text = script("/bin/missing").replace("vrid = 51", "vrid = 0");
    let all = super::problems(&text);
    assert_eq!(
        all,
        [
            "vipd.toml:6:8: vrrp[0].vrid: 0 is out of range 1..=255",
            "vipd.toml:8:30: vrrp[0].track_scripts[0].command: /bin/missing: /bin/missing does not exist",
        ]
    );
    assert!(parse(&script("/bin/check")).is_ok());
}
