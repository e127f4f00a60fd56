//! `vipd import keepalived` end to end, through the entry point the CLI calls: files in a
//! temp dir, stdout, stderr and the exit status.

use super::{TempDir, host, must_load, options};
use crate::import::{EXIT_COMPLETE, EXIT_ERROR, EXIT_LEFT_OUT, run};

struct Run {
    status: u8,
    stdout: String,
    stderr: String,
}

fn vipd_import(dir: &TempDir, output: Option<&str>) -> Run {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let out = output.map(|o| dir.path(o));
    let status = run(
        &dir.path("keepalived.conf"),
        out.as_deref(),
        false,
        &options(),
        &host(),
        &mut stdout,
        &mut stderr,
    );
    Run {
        status,
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

const COMPLETE: &str = "global_defs {
    router_id edge1
    enable_script_security
}

vrrp_instance gateway {
    interface eth0
    virtual_router_id 51
    priority 150
    version 3
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.1/24
    }
}
";

#[test]
fn a_complete_import_goes_to_stdout_and_exits_0() {
    let dir = TempDir::new("cli-complete");
    dir.write("keepalived.conf", COMPLETE);
    let r = vipd_import(&dir, None);
    assert_eq!(r.status, EXIT_COMPLETE, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("# vipd configuration imported from keepalived")
    );
    assert!(
        r.stdout
            .contains("# Nothing keepalived would do was left out.\n")
    );
    assert!(r.stdout.contains(
        "# from keepalived.conf:6 vrrp_instance gateway\n[[vrrp]]\nname = \"gateway\"\n"
    ));
    assert!(r.stdout.contains("advert_interval = \"100ms\"\n"));
    let config = must_load(&r.stdout);
    assert_eq!(config.instances[0].priority, 150);
    assert_eq!(
        r.stderr,
        "keepalived.conf:3: enable_script_security: note: always on in vipd: every script and \
         hook must be safe from other users\nvipd import: stdout written; 0 left out, 1 note(s)\n"
    );
}

#[test]
fn anything_left_out_is_on_stderr_and_in_the_header_and_exits_1() {
    let dir = TempDir::new("cli-left-out");
    dir.write(
        "keepalived.conf",
        &COMPLETE.replace("    priority 150\n", "    priority 150\n    smtp_alert\n"),
    );
    let r = vipd_import(&dir, Some("vipd.toml"));
    assert_eq!(r.status, EXIT_LEFT_OUT, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "with -o nothing goes to stdout");
    let line = "keepalived.conf:10: smtp_alert: vipd sends no e-mail; use a notify hook";
    assert!(r.stderr.contains(&format!("{line}\n")), "{}", r.stderr);
    let written = std::fs::read_to_string(dir.path("vipd.toml")).unwrap();
    assert!(written.contains(&format!("#   {line}\n")), "{written}");
    assert!(
        r.stderr.ends_with("written; 1 left out, 1 note(s)\n"),
        "{}",
        r.stderr
    );
    must_load(&written);
}

#[test]
fn a_hard_error_writes_nothing_and_exits_2() {
    let dir = TempDir::new("cli-error");
    dir.write("keepalived.conf", "vrrp_instance gw {\n  interface eth0\n");
    let r = vipd_import(&dir, Some("vipd.toml"));
    assert_eq!(r.status, EXIT_ERROR);
    assert!(!dir.path("vipd.toml").exists(), "nothing written");
    assert_eq!(
        r.stderr,
        "error: keepalived.conf:1: unclosed '{' opened here\nvipd import: 1 error(s); nothing written\n"
    );
    let r = vipd_import(&dir, None);
    assert_eq!((r.status, r.stdout.as_str()), (EXIT_ERROR, ""));
}

#[test]
fn an_unreadable_main_file_is_an_error() {
    let dir = TempDir::new("cli-missing");
    let r = vipd_import(&dir, None);
    assert_eq!(r.status, EXIT_ERROR);
    assert!(
        r.stderr.starts_with(&format!(
            "error: {}: cannot read: ",
            dir.path("keepalived.conf").display()
        )),
        "{}",
        r.stderr
    );
}

/// `-o` with or without `--force`.
fn vipd_import_to(dir: &TempDir, output: &str, force: bool) -> Run {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let status = run(
        &dir.path("keepalived.conf"),
        Some(&dir.path(output)),
        force,
        &options(),
        &host(),
        &mut stdout,
        &mut stderr,
    );
    Run {
        status,
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn the_written_file_is_new_and_readable_by_its_owner_alone() {
    let dir = TempDir::new("cli-mode");
    dir.write("keepalived.conf", COMPLETE);
    let r = vipd_import_to(&dir, "vipd.toml", false);
    assert_eq!(r.status, EXIT_COMPLETE, "{}", r.stderr);
    assert_eq!(mode(&dir.path("vipd.toml")), 0o600);
    must_load(&std::fs::read_to_string(dir.path("vipd.toml")).unwrap());
}

#[test]
fn an_existing_output_is_left_alone_unless_forced() {
    let dir = TempDir::new("cli-exists");
    dir.write("keepalived.conf", COMPLETE);
    dir.write("vipd.toml", "precious\n");
    let r = vipd_import_to(&dir, "vipd.toml", false);
    assert_eq!(r.status, EXIT_ERROR);
    assert_eq!(
        r.stderr.lines().last().unwrap(),
        format!(
            "error: {} already exists; nothing written (choose another path, or add --force to \
             replace it)",
            dir.path("vipd.toml").display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(dir.path("vipd.toml")).unwrap(),
        "precious\n"
    );
    // --force replaces it with a new file of the import's mode.
    std::fs::set_permissions(
        dir.path("vipd.toml"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let r = vipd_import_to(&dir, "vipd.toml", true);
    assert_eq!(r.status, EXIT_COMPLETE, "{}", r.stderr);
    must_load(&std::fs::read_to_string(dir.path("vipd.toml")).unwrap());
    assert_eq!(mode(&dir.path("vipd.toml")), 0o600);
    let names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
}

#[test]
fn a_symbolic_link_at_the_output_is_never_written_through() {
    let dir = TempDir::new("cli-symlink");
    dir.write("keepalived.conf", COMPLETE);
    dir.write("victim", "precious\n");
    std::os::unix::fs::symlink(dir.path("victim"), dir.path("vipd.toml")).unwrap();
    std::os::unix::fs::symlink(dir.path("nowhere"), dir.path("dangling.toml")).unwrap();
    for out in ["vipd.toml", "dangling.toml"] {
        let r = vipd_import_to(&dir, out, false);
        assert_eq!(r.status, EXIT_ERROR, "{out}");
        assert!(
            r.stderr.ends_with(&format!(
                "error: {} is a symbolic link; nothing written (the import never writes \
                 through one: remove it, or add --force to replace the link itself)\n",
                dir.path(out).display()
            )),
            "{}",
            r.stderr
        );
    }
    assert!(
        !dir.path("nowhere").exists(),
        "nothing created at the link's target"
    );
    // --force replaces the link itself; its target is untouched.
    let r = vipd_import_to(&dir, "vipd.toml", true);
    assert_eq!(r.status, EXIT_COMPLETE, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path("victim")).unwrap(),
        "precious\n"
    );
    let meta = std::fs::symlink_metadata(dir.path("vipd.toml")).unwrap();
    assert!(meta.file_type().is_file() && mode(&dir.path("vipd.toml")) == 0o600);
}
