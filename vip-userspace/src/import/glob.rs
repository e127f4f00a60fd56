//! The file patterns keepalived's `include` takes: glob(3) wildcards (`*`, `?`, `[...]`)
//! and csh-style braces (`{a,b}`), matched the way glibc's `glob()` does by default:
//! each brace alternative in turn, its matches sorted, and a leading `.` in a name only
//! matched by a pattern that starts with one.
//!
//! Bounded whatever the pattern: at most [`MAX_PATTERN_BYTES`], [`MAX_ALTERNATIVES`] brace
//! alternatives and [`MAX_MATCHES`] paths at any step; matching a name takes time
//! proportional to the name times the pattern, however many `*` it has.
//!
//! Hand-written because it is small and the `glob` crate has no braces.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Longer than any path the kernel takes (`PATH_MAX`).
pub(crate) const MAX_PATTERN_BYTES: usize = 4096;
/// Brace alternatives of one pattern (`{a,b}{c,d}` has four).
pub(crate) const MAX_ALTERNATIVES: usize = 256;
/// Paths a pattern may match, or reach at any directory level while it is matched.
pub(crate) const MAX_MATCHES: usize = 1_024;

#[derive(Debug, thiserror::Error)]
pub enum GlobError {
    #[error("the pattern is longer than {MAX_PATTERN_BYTES} bytes")]
    TooLong,
    #[error("braces expand to more than {MAX_ALTERNATIVES} patterns")]
    TooManyAlternatives,
    #[error("matches more than {MAX_MATCHES} paths")]
    TooManyMatches,
    #[error("cannot read {0}: {1}")]
    Io(PathBuf, io::Error),
}

/// Whether the pattern has anything glob treats specially.
pub(crate) fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

/// Every existing path the pattern names, in glob's order.
pub(crate) fn expand(pattern: &Path) -> Result<Vec<PathBuf>, GlobError> {
    let text = pattern.to_string_lossy();
    let mut out = Vec::new();
    for alternative in braces(&text)? {
        let mut found = match_path(Path::new(&alternative))?;
        found.sort();
        out.extend(found);
        if out.len() > MAX_MATCHES {
            return Err(GlobError::TooManyMatches);
        }
    }
    Ok(out)
}

/// `a{b,c{d,e}}f` → `abf`, `acdf`, `acef`. Unbalanced braces are taken literally.
/// Depth first with a stack of its own: no recursion, whatever the nesting.
pub(crate) fn braces(pattern: &str) -> Result<Vec<String>, GlobError> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(GlobError::TooLong);
    }
    let mut out = Vec::new();
    // Patterns still to expand, the next one last. Each expansion removes a brace pair,
    // so this ends.
    let mut todo = vec![pattern.to_owned()];
    while let Some(p) = todo.pop() {
        let Some((open, bounds)) = first_group(&p) else {
            out.push(p);
            if out.len() > MAX_ALTERNATIVES {
                return Err(GlobError::TooManyAlternatives);
            }
            continue;
        };
        if todo.len() + out.len() + bounds.len() - 1 > MAX_ALTERNATIVES {
            return Err(GlobError::TooManyAlternatives);
        }
        let (head, tail) = (&p[..open], &p[bounds[bounds.len() - 1] + 1..]);
        for pair in bounds.windows(2).rev() {
            todo.push(format!("{head}{}{tail}", &p[pair[0] + 1..pair[1]]));
        }
    }
    Ok(out)
}

/// The first balanced `{...}` of `p`: where it opens, then the positions of the opening
/// brace, its top-level commas and its closing brace.
fn first_group(p: &str) -> Option<(usize, Vec<usize>)> {
    let bytes = p.as_bytes();
    let open = bytes.iter().position(|&b| b == b'{')?;
    let mut depth = 0usize;
    let mut bounds = vec![open];
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    bounds.push(i);
                    return Some((open, bounds));
                }
            }
            b',' if depth == 1 => bounds.push(i),
            _ => {}
        }
    }
    None
}

fn match_path(pattern: &Path) -> Result<Vec<PathBuf>, GlobError> {
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
            let io = |e| GlobError::Io(dir.to_owned(), e);
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => continue,
                Err(e) => return Err(io(e)),
            };
            for entry in entries {
                let name = entry
                    .map_err(io)?
                    .file_name()
                    .to_string_lossy()
                    .into_owned();
                if name.starts_with('.') && !part.starts_with('.') {
                    continue;
                }
                if fnmatch(part.as_bytes(), name.as_bytes()) {
                    next.push(base.join(&name));
                    if next.len() > MAX_MATCHES {
                        return Err(GlobError::TooManyMatches);
                    }
                }
            }
        }
        bases = next;
    }
    Ok(bases.into_iter().filter(|p| p.exists()).collect())
}

/// fnmatch(3) without flags: `*`, `?`, `[abc]`, `[a-z]`, `[!x]` / `[^x]`, `\` escapes.
///
/// Greedy with one point to return to: on a mismatch, the last `*` takes one more byte.
/// Later stars never need an earlier one to take back, so this finds a match whenever
/// there is one, in time proportional to the name times the pattern.
pub(crate) fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and how much of the name the
    // star has taken up to.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if let Some(taken) = one(&pattern[p..], name[n]) {
            match taken {
                Step::Star => {
                    star = Some((p + 1, n));
                    p += 1;
                }
                Step::Byte(len) => {
                    p += len;
                    n += 1;
                }
            }
            continue;
        }
        let Some((resume, from)) = star else {
            return false;
        };
        star = Some((resume, from + 1));
        p = resume;
        n = from + 1;
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

enum Step {
    /// A `*`: it may take any number of bytes.
    Star,
    /// This many pattern bytes matched the name's next byte.
    Byte(usize),
}

/// How the start of `pattern` takes the name byte `c`, if it does.
fn one(pattern: &[u8], c: u8) -> Option<Step> {
    match pattern.split_first()? {
        (b'*', _) => Some(Step::Star),
        (b'?', _) => Some(Step::Byte(1)),
        (b'[', rest) => match class(rest) {
            Some((set_len, matches)) => matches(c).then_some(Step::Byte(1 + set_len)),
            // No closing bracket: a literal '['.
            None => (c == b'[').then_some(Step::Byte(1)),
        },
        (b'\\', [escaped, ..]) => (c == *escaped).then_some(Step::Byte(2)),
        (&b, _) => (c == b).then_some(Step::Byte(1)),
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
        let braces = |p| braces(p).unwrap();
        assert_eq!(braces("a{b,c{d,e}}f"), ["abf", "acdf", "acef"]);
        assert_eq!(
            braces("{foo/{,cat,dog},bar}"),
            ["foo/", "foo/cat", "foo/dog", "bar"]
        );
        assert_eq!(braces("{a,b}{c,d}"), ["ac", "ad", "bc", "bd"]);
        assert_eq!(braces("plain"), ["plain"]);
        assert_eq!(braces("open{a,b"), ["open{a,b"]);
    }

    #[test]
    fn braces_are_bounded_in_count_and_length() {
        // 2^9 = 512 alternatives.
        let many = "{a,b}".repeat(9);
        assert!(matches!(braces(&many), Err(GlobError::TooManyAlternatives)));
        assert_eq!(braces(&"{a,b}".repeat(8)).unwrap().len(), 256);
        let wide = format!("{{{}}}", vec!["x"; 300].join(","));
        assert!(matches!(braces(&wide), Err(GlobError::TooManyAlternatives)));
        assert!(matches!(
            braces(&"a".repeat(MAX_PATTERN_BYTES + 1)),
            Err(GlobError::TooLong)
        ));
        // Deep nesting is no recursion: 1,000 levels, one alternative each.
        let deep = format!("{}x{}", "{".repeat(1000), "}".repeat(1000));
        assert_eq!(braces(&deep).unwrap(), ["x"]);
    }

    #[test]
    fn many_stars_cost_no_more_than_the_name_times_the_pattern() {
        let pattern = "*a".repeat(40) + "*b";
        let name = "a".repeat(255);
        let started = std::time::Instant::now();
        assert!(!fnmatch(pattern.as_bytes(), name.as_bytes()));
        assert!(fnmatch(pattern.as_bytes(), (name + "b").as_bytes()));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
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
        assert!(fnmatch(b"*", b""));
        assert!(fnmatch(b"a*b*c", b"a-b-b-c"));
        assert!(!fnmatch(b"a*b*c", b"a-b-b-"));
        assert!(fnmatch(b"[a", b"[a"));
        assert!(fnmatch(b"x\\", b"x\\"));
    }
}
