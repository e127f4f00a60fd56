//! The file patterns keepalived's `include` takes: glob(3) wildcards (`*`, `?`, `[...]`)
//! and csh-style braces (`{a,b}`), matched the way glibc's `glob()` does by default:
//! each brace alternative in turn, its matches sorted, and a leading `.` in a name only
//! matched by a pattern that starts with one.
//!
//! Hand-written because it is small and the `glob` crate has no braces.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Whether the pattern has anything glob treats specially.
pub(crate) fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

/// Every existing path the pattern names, in glob's order.
pub(crate) fn expand(pattern: &Path) -> io::Result<Vec<PathBuf>> {
    let text = pattern.to_string_lossy();
    let mut out = Vec::new();
    for alternative in braces(&text) {
        let mut found = match_path(Path::new(&alternative))?;
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// `a{b,c{d,e}}f` → `abf`, `acdf`, `acef`. Unbalanced braces are taken literally.
pub(crate) fn braces(pattern: &str) -> Vec<String> {
    let bytes = pattern.as_bytes();
    let Some(open) = bytes.iter().position(|&b| b == b'{') else {
        return vec![pattern.to_owned()];
    };
    let mut depth = 0usize;
    let mut commas = Vec::new();
    let mut close = None;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            b',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![pattern.to_owned()];
    };
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(&commas);
    bounds.push(close);
    let mut out = Vec::new();
    for pair in bounds.windows(2) {
        let middle = &pattern[pair[0] + 1..pair[1]];
        for rest in braces(&format!("{middle}{tail}")) {
            out.push(format!("{head}{rest}"));
        }
    }
    out
}

fn match_path(pattern: &Path) -> io::Result<Vec<PathBuf>> {
    let mut bases = vec![PathBuf::new()];
    for component in pattern.components() {
        let part = match component {
            Component::Normal(p) => p.to_string_lossy().into_owned(),
            other => {
                for base in &mut bases {
                    base.push(other.as_os_str());
                }
                continue;
            }
        };
        let mut next = Vec::new();
        for base in &bases {
            if !has_wildcard(&part) {
                next.push(base.join(&part));
                continue;
            }
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let name = entry?.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && !part.starts_with('.') {
                    continue;
                }
                if fnmatch(part.as_bytes(), name.as_bytes()) {
                    next.push(base.join(&name));
                }
            }
        }
        bases = next;
    }
    Ok(bases.into_iter().filter(|p| p.exists()).collect())
}

/// fnmatch(3) without flags: `*`, `?`, `[abc]`, `[a-z]`, `[!x]` / `[^x]`, `\` escapes.
pub(crate) fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| fnmatch(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && fnmatch(rest, &name[1..]),
        Some((b'[', rest)) => match (class(rest), name.split_first()) {
            (Some((set_len, matches)), Some((&c, name_rest))) => {
                matches(c) && fnmatch(&rest[set_len..], name_rest)
            }
            // No closing bracket: a literal '['.
            (None, Some((&b'[', name_rest))) => fnmatch(rest, name_rest),
            _ => false,
        },
        Some((b'\\', rest)) if !rest.is_empty() => {
            name.first() == rest.first() && fnmatch(&rest[1..], &name[1..])
        }
        Some((&c, rest)) => name.first() == Some(&c) && fnmatch(rest, &name[1..]),
    }
}

/// A bracket expression after its `[`: how many bytes it takes (with the `]`) and a test.
#[allow(clippy::type_complexity)]
fn class(pattern: &[u8]) -> Option<(usize, Box<dyn Fn(u8) -> bool + '_>)> {
    let (negate, start) = match pattern.first() {
        Some(b'!' | b'^') => (true, 1),
        _ => (false, 0),
    };
    // A ']' right after the '[' (or '[!') is a member, not the end.
    let end = pattern
        .iter()
        .enumerate()
        .skip(start + 1)
        .find(|(_, b)| **b == b']')
        .map(|(i, _)| i)?;
    let set = &pattern[start..end];
    let test = move |c: u8| {
        let mut i = 0;
        let mut hit = false;
        while i < set.len() {
            if i + 2 < set.len() && set[i + 1] == b'-' {
                hit |= (set[i]..=set[i + 2]).contains(&c);
                i += 3;
            } else {
                hit |= set[i] == c;
                i += 1;
            }
        }
        hit != negate
    };
    Some((end + 1, Box::new(test)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_expand_in_order_and_nest() {
        assert_eq!(braces("a{b,c{d,e}}f"), ["abf", "acdf", "acef"]);
        assert_eq!(
            braces("{foo/{,cat,dog},bar}"),
            ["foo/", "foo/cat", "foo/dog", "bar"]
        );
        assert_eq!(braces("plain"), ["plain"]);
        assert_eq!(braces("open{a,b"), ["open{a,b"]);
    }

    #[test]
    fn fnmatch_follows_glob() {
        assert!(fnmatch(b"*.conf", b"vrrp.conf"));
        assert!(!fnmatch(b"*.conf", b"vrrp.conf.bak"));
        assert!(fnmatch(b"vi_?.conf", b"vi_1.conf"));
        assert!(fnmatch(b"[0-9][!a]*", b"1b"));
        assert!(!fnmatch(b"[0-9][!a]*", b"1a"));
        assert!(fnmatch(b"a\\*", b"a*"));
        assert!(!fnmatch(b"a\\*", b"ab"));
        assert!(fnmatch(b"[]x]", b"]"));
    }
}
