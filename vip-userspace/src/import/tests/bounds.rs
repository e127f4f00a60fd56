//! What the importer reads and expands is bounded whatever the input: only regular files
//! of at most 1 MiB, at most 1,024 reads and 16 MiB in all, at most 1,024 substitutions
//! and 64 KiB per line, at most 256 brace alternatives and 1,024 matches per pattern. A
//! FIFO, a device, a directory or a runaway expansion is an error naming its file and
//! line, reported at once (never a hang).

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::{TempDir, options};
use crate::import::{Outcome, file::MAX_FILE_BYTES, keepalived};

/// Imports `main` on another thread: an import that hangs fails the test instead of
/// hanging it.
fn import_within(main: &Path, limit: Duration) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let main = main.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(keepalived(&main, &options(), &super::host()));
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("the import did not finish within {limit:?}"))
}

fn errors_of(main: &Path) -> Vec<String> {
    let outcome = import_within(main, Duration::from_secs(20));
    assert!(outcome.toml.is_none(), "a file was produced");
    outcome.errors.iter().map(ToString::to_string).collect()
}

/// The one error of importing `dir`'s keepalived.conf.
fn error_of(dir: &TempDir) -> String {
    let mut all = errors_of(&dir.path("keepalived.conf"));
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

#[test]
fn a_fifo_as_the_main_file_is_refused_without_waiting_for_a_writer() {
    let dir = TempDir::new("fifo-main");
    mkfifo(&dir.path("keepalived.conf"));
    assert_eq!(
        errors_of(&dir.path("keepalived.conf")),
        [format!(
            "{}: cannot read: not a regular file (a FIFO)",
            dir.path("keepalived.conf").display()
        )]
    );
}

#[test]
fn a_directory_as_the_main_file_is_refused() {
    let dir = TempDir::new("dir-main");
    std::fs::create_dir(dir.path("keepalived.conf")).unwrap();
    let all = errors_of(&dir.path("keepalived.conf"));
    assert!(
        all[0].ends_with("keepalived.conf: cannot read: not a regular file (a directory)"),
        "{all:?}"
    );
}

#[test]
fn including_a_fifo_a_device_or_a_directory_is_an_error_at_the_include() {
    let dir = TempDir::new("include-special");
    mkfifo(&dir.path("pipe.conf"));
    std::fs::create_dir(dir.path("conf.d")).unwrap();
    dir.write(
        "keepalived.conf",
        "global_defs {\n}\ninclude pipe.conf\ninclude /dev/zero\ninclude conf.d\n",
    );
    assert_eq!(
        errors_of(&dir.path("keepalived.conf")),
        [
            "keepalived.conf:3: include: cannot read pipe.conf: not a regular file (a FIFO)",
            "keepalived.conf:4: include: cannot read /dev/zero: not a regular file (a character device)",
            "keepalived.conf:5: include: cannot read conf.d: not a regular file (a directory)",
        ]
    );
}

#[test]
fn a_fifo_a_glob_matches_is_refused_too() {
    let dir = TempDir::new("include-glob-fifo");
    dir.write("conf.d/a.conf", "! fine\n");
    mkfifo(&dir.path("conf.d/b.conf"));
    dir.write("keepalived.conf", "include conf.d/*.conf\n");
    assert_eq!(
        error_of(&dir),
        "keepalived.conf:1: include: cannot read conf.d/b.conf: not a regular file (a FIFO)"
    );
}

#[test]
fn a_file_over_one_mib_is_refused_by_its_size() {
    let dir = TempDir::new("include-big");
    dir.write("big.conf", &"!".repeat(MAX_FILE_BYTES as usize + 1));
    dir.write("fits.conf", &"!".repeat(MAX_FILE_BYTES as usize));
    dir.write("keepalived.conf", "include fits.conf\ninclude big.conf\n");
    assert_eq!(
        error_of(&dir),
        "keepalived.conf:2: include: cannot read big.conf: larger than 1024 KiB (1048577 bytes): \
         not a keepalived configuration"
    );
}

#[test]
fn includes_repeated_in_a_diamond_stop_at_1024_reads() {
    // Each level includes the next twice: 2^12 reads if nothing stopped it.
    let dir = TempDir::new("include-diamond");
    for level in 0..12 {
        dir.write(
            &format!("l{level}.conf"),
            &format!("include l{0}.conf\ninclude l{0}.conf\n", level + 1),
        );
    }
    dir.write("l12.conf", "! the bottom\n");
    dir.write("keepalived.conf", "include l0.conf\n");
    let all = errors_of(&dir.path("keepalived.conf"));
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(
        all[0].ends_with(
            "would be file number 1025 read, past the limit of 1024 (is a file included over and over?)"
        ),
        "{}",
        all[0]
    );
}

#[test]
fn sixteen_mib_are_read_in_all_at_most() {
    let dir = TempDir::new("include-total");
    dir.write("big.conf", &"!".repeat(MAX_FILE_BYTES as usize));
    dir.write("keepalived.conf", &"include big.conf\n".repeat(17));
    assert_eq!(
        error_of(&dir),
        "keepalived.conf:16: include: reading big.conf takes the import past 16 MiB read in all \
         (is a file included over and over?)"
    );
}

#[test]
fn a_parameter_doubling_itself_is_stopped_by_the_substitution_count() {
    let dir = TempDir::new("param-doubling");
    let mut text = "$A0=x\n".to_owned();
    for i in 1..=30 {
        text.push_str(&format!("$A{i}=${{A{0}}}${{A{0}}}\n", i - 1));
    }
    text.push_str("router_id ${A30}\n");
    dir.write("keepalived.conf", &text);
    assert_eq!(
        error_of(&dir),
        "keepalived.conf:32: more than 1024 parameter substitutions on one line"
    );
}

#[test]
fn a_line_grown_past_64_kib_by_substitution_is_an_error() {
    let dir = TempDir::new("param-long");
    let text = format!("$B={}\nrouter_id $B $B\n", "x".repeat(40_000));
    dir.write("keepalived.conf", &text);
    assert_eq!(
        error_of(&dir),
        "keepalived.conf:2: parameter substitution makes the line longer than 65536 bytes"
    );
    // Under the limit the same definition is used as written.
    dir.write("keepalived.conf", &text.replace(" $B $B", " $B"));
    let outcome = import_within(&dir.path("keepalived.conf"), Duration::from_secs(20));
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
}

#[test]
fn more_than_1024_uses_on_one_line_are_an_error() {
    let dir = TempDir::new("param-many");
    dir.write(
        "keepalived.conf",
        &format!("$X=1\nrouter_id{}\n", " $X".repeat(1025)),
    );
    assert_eq!(
        error_of(&dir),
        "keepalived.conf:2: more than 1024 parameter substitutions on one line"
    );
}

#[test]
fn include_patterns_are_bounded_in_braces_and_matches() {
    let dir = TempDir::new("glob-bounds");
    dir.write(
        "keepalived.conf",
        &format!("include {}.conf\n", "{a,b}".repeat(9)),
    );
    assert_eq!(
        error_of(&dir),
        format!(
            "keepalived.conf:1: include: {}.conf: braces expand to more than 256 patterns",
            "{a,b}".repeat(9)
        )
    );
    for i in 0..1025 {
        dir.write(&format!("conf.d/{i}.conf"), "! empty\n");
    }
    dir.write("keepalived.conf", "include conf.d/*.conf\n");
    assert_eq!(
        error_of(&dir),
        "keepalived.conf:1: include: conf.d/*.conf: matches more than 1024 paths"
    );
}
