//! The importer's include patterns (`import/glob.rs`): brace alternatives, fnmatch(3)
//! on one name, and expansion against a small directory tree the target makes once.
//!
//! The input is a pattern, a newline, and a file name. Beyond "never panics":
//! - every brace alternative is the pattern with braces and commas taken out (a
//!   subsequence of it), and a pattern without `{` is its own only alternative;
//! - `fnmatch` agrees with the C library's `fnmatch(3)` (flags 0, the C locale), which is
//!   what keepalived's `glob()` calls;
//! - expansion inside the tree names only paths that exist, in the tree, each once per
//!   alternative.

#![no_main]

use std::ffi::CString;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vipd::import::fuzzing::{GlobError, braces, expand, fnmatch};

/// A tree of a few files, dot files and a subdirectory, removed when the process ends
/// normally (libFuzzer exits through `exit`); a crash leaves it under the temp dir.
fn tree() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vipd-fuzz-glob-{}", std::process::id()));
        for f in [
            "keepalived.conf",
            "a.conf",
            "b.conf",
            ".hidden.conf",
            "conf.d/10-checks.conf",
            "conf.d/20-gateway.conf",
            "conf.d/x[1].conf",
            "checks/scripts.conf",
        ] {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "").unwrap();
        }
        extern "C" fn clean() {
            if let Some(d) = DIR.get() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
        // SAFETY: registering a plain function without captures.
        unsafe { libc::atexit(clean) };
        dir
    })
}

fn subsequence(part: &str, of: &str) -> bool {
    let mut rest = of.chars();
    part.chars().all(|c| rest.any(|d| d == c))
}

fn libc_fnmatch(pattern: &[u8], name: &[u8]) -> Option<bool> {
    let (p, n) = (CString::new(pattern).ok()?, CString::new(name).ok()?);
    // SAFETY: both are NUL-terminated strings that live across the call.
    Some(unsafe { libc::fnmatch(p.as_ptr(), n.as_ptr(), 0) } == 0)
}

fuzz_target!(|bytes: &[u8]| {
    let (pattern, name) = match bytes.iter().position(|b| *b == b'\n') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &b""[..]),
    };
    if let Some(expected) = libc_fnmatch(pattern, name) {
        assert_eq!(
            fnmatch(pattern, name),
            expected,
            "pattern {:?} name {:?}",
            String::from_utf8_lossy(pattern),
            String::from_utf8_lossy(name)
        );
    }

    let Ok(pattern) = std::str::from_utf8(pattern) else {
        return;
    };
    // The importer's limits (pattern length, alternatives) are answers, not failures.
    let Ok(alternatives) = braces(pattern) else {
        return;
    };
    assert!(!alternatives.is_empty());
    if !pattern.contains('{') {
        assert_eq!(alternatives, [pattern]);
    }
    for a in &alternatives {
        assert!(
            subsequence(a, pattern),
            "{a:?} is not taken from {pattern:?}"
        );
    }

    // Only inside the tree: no absolute pattern, no way up, no NUL.
    let relative = Path::new(pattern);
    if pattern.contains('\0')
        || alternatives.iter().any(|a| {
            Path::new(a)
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        })
        || relative.is_absolute()
    {
        return;
    }
    let root = tree();
    let found = match expand(&root.join(relative)) {
        Ok(found) => found,
        Err(GlobError::Io(path, e)) => panic!("the tree is readable: {path:?}: {e}"),
        Err(_) => return,
    };
    for f in &found {
        assert!(f.starts_with(root), "{f:?} outside the tree");
        assert!(f.exists(), "{f:?} does not exist");
    }
    assert!(found.len() <= alternatives.len() * 16, "{found:?}");
});
