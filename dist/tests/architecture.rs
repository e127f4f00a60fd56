//! `docs/architecture.md` names only paths that exist: every backticked path in it (one
//! with a `/`, or a file name with an extension), read from the repository root or, for
//! vipd's own crate, from `vip-userspace/src/`, as the document says. `*` matches any
//! name in one directory. A moved or renamed file fails this until the map is redrawn.

use std::path::{Path, PathBuf};

const DOC: &str = include_str!("../../docs/architecture.md");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("dist sits in the repository root")
        .to_path_buf()
}

/// Every backticked span of `text`.
fn spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Whether a span reads as a path: path characters only, not absolute, and either a
/// directory separator or a file extension this repository uses. Uppercase placeholders
/// without a directory (`NAME.toml`) are examples, not paths.
fn is_path(span: &str) -> bool {
    let chars_ok = !span.is_empty()
        && span
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./*".contains(c));
    let ext = [".rs", ".md", ".toml", ".jsonl", ".json", ".yml", ".service"]
        .iter()
        .any(|e| span.ends_with(e));
    let placeholder = !span.contains('/')
        && span
            .split('.')
            .next()
            .is_some_and(|stem| stem.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
    chars_ok && !span.starts_with('/') && (span.contains('/') || ext) && !placeholder
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head)
                && (0..=name.len() - head.len()).any(|i| matches(tail, &name[head.len() + i..]))
        }
    }
}

/// Whether `path` (segments, `*` allowed within one) exists under `base`.
fn exists(base: &Path, path: &str) -> bool {
    let mut found = vec![base.to_path_buf()];
    for segment in path.trim_end_matches('/').split('/') {
        let mut next = Vec::new();
        for dir in &found {
            if segment.contains('*') {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                for e in entries.flatten() {
                    if matches(segment, &e.file_name().to_string_lossy()) {
                        next.push(e.path());
                    }
                }
            } else if dir.join(segment).exists() {
                next.push(dir.join(segment));
            }
        }
        found = next;
    }
    !found.is_empty()
}

#[test]
fn every_path_the_architecture_doc_names_exists() {
    let root = root();
    let crate_src = root.join("vip-userspace/src");
    let paths: Vec<&str> = spans(DOC).into_iter().filter(|s| is_path(s)).collect();
    assert!(
        paths.len() > 40,
        "the document names its files ({} paths found)",
        paths.len()
    );
    let missing: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| !exists(&root, p) && !exists(&crate_src, p))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md names paths that do not exist: {missing:?}"
    );
}

#[test]
fn the_where_a_change_goes_table_has_every_row() {
    let section = DOC
        .split("## Where a change goes")
        .nth(1)
        .expect("the section exists");
    for row in [
        "| a config key",
        "| a VRRP timer",
        "| an XDP counter",
        "| a map",
        "| a bench item",
        "| a lab test",
        "| a replay case",
    ] {
        let line = section
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no row {row:?}"));
        assert!(
            spans(line).into_iter().filter(|s| is_path(s)).count() >= 2,
            "{row:?} names its files"
        );
    }
}

#[test]
fn the_path_check_can_fail() {
    assert!(is_path("vrrp/node.rs") && is_path("objects.rs") && is_path("tests/tests/lab_*.rs"));
    assert!(!is_path("NAME.toml") && !is_path("/sys/fs/bpf") && !is_path("Output::Install"));
    assert!(!is_path("bpftool map dump pinned …"));
    let root = root();
    assert!(exists(&root, "tests/tests/lab_*.rs"));
    assert!(!exists(&root, "tests/tests/lab_nothing_*.rs"));
    assert!(!exists(
        &root.join("vip-userspace/src"),
        "vrrp/no_such_module.rs"
    ));
    assert!(matches("lab_*.rs", "lab_core.rs") && !matches("lab_*.rs", "guide.rs"));
}
