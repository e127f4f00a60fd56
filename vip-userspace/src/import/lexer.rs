//! Reading keepalived's configuration into words, lines and braces, with every `include`
//! followed and every word's file and line kept.
//!
//! Hand-written: keepalived's format is its own (not a grammar any parser crate knows)
//! and is defined by what `lib/parser.c` does to each line, which this follows step by
//! step:
//!
//! 1. comments: `#` or `!` outside `"..."` end the line (`\#`, `\!` are literal);
//! 2. `@ID rest` keeps `rest` only when ID is the config id (`@^ID`: only when it is not);
//! 3. `$NAME=VALUE` defines a parameter; later `$NAME` (before a blank or the end of the
//!    line) and `${NAME}` are replaced by its value, recursively (`${_PWD}` is the
//!    directory of the file being read);
//! 4. `include PATTERN` (and `includer`, `includem`, `includew`, `includeb`, `includea`)
//!    reads the files a glob pattern names, relative to the including file's directory;
//!    a loop, or a missing file, is an error at the include's line;
//! 5. `{` and `}` outside quotes are words of their own wherever they stand; other words
//!    are separated by blanks, and `"..."` is one word without its quotes.
//!
//! Multi-line parameter definitions and `~SEQ` / `~LST` blocks are refused with their
//! place: expand them by hand before importing.
//!
//! Everything is bounded, whatever the input: only regular files of at most
//! [`file::MAX_FILE_BYTES`] are read, at most [`MAX_FILES`] reads and [`MAX_TOTAL_BYTES`]
//! in all (an include repeated in a diamond would otherwise multiply); substitution stops
//! at [`MAX_SUBSTITUTIONS`] replacements or a line of [`MAX_LINE_BYTES`]; include patterns
//! are bounded in `glob`. Each limit is an error at its line.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::report::{Loc, Log};
use super::{file, glob};

/// One word of a line, quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub(crate) text: String,
    pub(crate) loc: Loc,
}

/// The words between two braces or line ends, and their text as written (comments
/// removed, parameters substituted), which scripts are split from again.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) words: Vec<Word>,
    pub(crate) raw: String,
    pub(crate) loc: Loc,
}

#[derive(Debug, Clone)]
pub(crate) enum Item {
    Line(Line),
    Open(Loc),
    Close(Loc),
}

/// Everything read, in order, across all included files.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) items: Vec<Item>,
    /// Display names of the files read, main file first.
    pub(crate) files: Vec<Arc<str>>,
}

/// More rounds of substitution than this on one line is taken for a definition that
/// refers to itself.
const MAX_ROUNDS: usize = 64;
/// Parameters replaced on one line, all rounds together.
pub(crate) const MAX_SUBSTITUTIONS: usize = 1_024;
/// The longest a line may grow by substitution (`$A=$B$B`, `$B=$C$C`, ... doubles it at
/// each step).
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;
/// Files read, the main file and every include together (the same file included twice
/// counts twice).
pub(crate) const MAX_FILES: usize = 1_024;
/// Bytes read in all.
pub(crate) const MAX_TOTAL_BYTES: u64 = 16 << 20;

/// Reads `main` and everything it includes. `None` when the main file cannot be read
/// (the error is in `log`); other problems are in `log` too.
pub(crate) fn read(main: &Path, config_id: Option<&str>, log: &mut Log) -> Option<Source> {
    let main_abs = absolute(main);
    let root = main_abs.parent().map(Path::to_path_buf).unwrap_or_default();
    let display: Arc<str> = main
        .file_name()
        .map_or_else(
            || main.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
        .into();
    let bytes = match file::read_regular(main) {
        Ok(bytes) => bytes,
        Err(e) => {
            log.errors.push(super::report::ImportError {
                loc: None,
                message: format!("{}: cannot read: {e}", main.display()),
            });
            return None;
        }
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let mut reader = Reader {
        root,
        config_id,
        defs: HashMap::new(),
        stack: Vec::new(),
        items: Vec::new(),
        files: Vec::new(),
        reads: 1,
        bytes_read: bytes.len() as u64,
        stopped: false,
        log,
        follow_includes: true,
    };
    let canonical = std::fs::canonicalize(main).unwrap_or(main_abs.clone());
    reader.stack.push((canonical, display.clone()));
    reader.text(&text, &main_abs, display);
    Some(Source {
        items: reader.items,
        files: reader.files,
    })
}

/// Reads `text` as a main file `/NAME` without touching the filesystem: an `include` is
/// an error at its line and nothing is read. What the fuzz targets drive (`tests/fuzz/`).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn read_text(text: &str, name: &str, config_id: Option<&str>, log: &mut Log) -> Source {
    let path = Path::new("/").join(name);
    let display: Arc<str> = name.into();
    let mut reader = Reader {
        root: PathBuf::from("/"),
        config_id,
        defs: HashMap::new(),
        stack: vec![(path.clone(), display.clone())],
        items: Vec::new(),
        files: Vec::new(),
        reads: 1,
        bytes_read: text.len() as u64,
        stopped: false,
        log,
        follow_includes: false,
    };
    reader.text(text, &path, display);
    Source {
        items: reader.items,
        files: reader.files,
    }
}

struct Reader<'a> {
    /// The main file's directory: files below it are named relative to it.
    root: PathBuf,
    config_id: Option<&'a str>,
    /// Parameter definitions (a later one replaces an earlier one of the same name).
    defs: HashMap<String, String>,
    /// The files being read (canonical path, display name), outermost first.
    stack: Vec<(PathBuf, Arc<str>)>,
    items: Vec<Item>,
    files: Vec<Arc<str>>,
    /// Files read so far, and their bytes (see [`MAX_FILES`], [`MAX_TOTAL_BYTES`]).
    reads: usize,
    bytes_read: u64,
    /// A limit on reading was reached: nothing more is read (one error says so).
    stopped: bool,
    log: &'a mut Log,
    /// `false` when reading text alone ([`read_text`]): no file is ever opened.
    follow_includes: bool,
}

impl Reader<'_> {
    fn text(&mut self, text: &str, path: &Path, display: Arc<str>) {
        self.files.push(display.clone());
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for (n, raw) in text.split('\n').enumerate() {
            if self.stopped {
                return;
            }
            let loc = Loc {
                file: display.clone(),
                line: n + 1,
            };
            self.line(raw.strip_suffix('\r').unwrap_or(raw), &loc, &dir);
        }
    }

    fn line(&mut self, raw: &str, loc: &Loc, dir: &Path) {
        let mut text = match decomment(raw) {
            Ok(text) => text,
            Err(message) => return self.log.error(loc, message),
        };
        let (mut rounds, mut replaced) = (0, 0);
        loop {
            if text.is_empty() {
                return;
            }
            if text.starts_with('@') {
                match self.conditional(&text) {
                    Some(rest) => text = rest,
                    None => return,
                }
                continue;
            }
            if let Some((name, value)) = definition(&text) {
                if value.ends_with('\\') {
                    return self.log.error(
                        loc,
                        format!(
                            "${name}: multi-line parameter definitions are not supported by the \
                             importer; expand it by hand"
                        ),
                    );
                }
                self.defs.insert(name, value);
                return;
            }
            if text.starts_with("~SEQ") || text.starts_with("~LST") {
                return self.log.error(
                    loc,
                    format!(
                        "{}: sequence blocks are not supported by the importer; expand it by hand",
                        &text[..4]
                    ),
                );
            }
            if text.contains('$') {
                let before = replaced;
                let out = match self.substitute(&text, dir, &mut replaced) {
                    Ok(out) => out,
                    Err(message) => return self.log.error(loc, message),
                };
                if replaced != before {
                    rounds += 1;
                    if rounds > MAX_ROUNDS {
                        return self.log.error(
                            loc,
                            "parameter substitution does not end (a definition refers to itself)",
                        );
                    }
                    text = match decomment(&out) {
                        Ok(text) => text,
                        Err(message) => return self.log.error(loc, message),
                    };
                    continue;
                }
            }
            break;
        }
        if let Some((check, pattern)) = include(&text) {
            self.include(check, pattern, loc, dir);
        } else {
            self.tokenize(&text, loc);
        }
    }

    /// `@ID rest`: `rest` when the line applies to this config id.
    fn conditional(&self, text: &str) -> Option<String> {
        let (negate, body) = match text.strip_prefix("@^") {
            Some(body) => (true, body),
            None => (false, &text[1..]),
        };
        let end = body.find([' ', '\t'])?;
        let matches = self.config_id == Some(&body[..end]);
        (matches != negate).then(|| body[end..].trim_start().to_owned())
    }

    /// One round of substitution over `text`; `replaced` counts replacements on this
    /// line across rounds. An error when it passes [`MAX_SUBSTITUTIONS`] or the line
    /// [`MAX_LINE_BYTES`].
    fn substitute(&self, text: &str, dir: &Path, replaced: &mut usize) -> Result<String, String> {
        let pwd = dir.display().to_string();
        let lookup = |name: &str| -> Option<&str> {
            match self.defs.get(name) {
                Some(v) => Some(v),
                None => (name == "_PWD").then_some(pwd.as_str()),
            }
        };
        let mut out = String::with_capacity(text.len());
        let mut push = |out: &mut String, value: &str| {
            *replaced += 1;
            if *replaced > MAX_SUBSTITUTIONS {
                return Err(format!(
                    "more than {MAX_SUBSTITUTIONS} parameter substitutions on one line"
                ));
            }
            if out.len() + value.len() > MAX_LINE_BYTES {
                return Err(format!(
                    "parameter substitution makes the line longer than {MAX_LINE_BYTES} bytes"
                ));
            }
            out.push_str(value);
            Ok(())
        };
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(braced) = after.strip_prefix('{')
                && let Some(close) = braced.find('}')
                && let Some(value) = lookup(&braced[..close])
            {
                push(&mut out, value)?;
                rest = &braced[close + 1..];
                continue;
            }
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let followed_by_blank = after[len..].chars().next().is_none_or(char::is_whitespace);
            if len > 0
                && followed_by_blank
                && let Some(value) = lookup(&after[..len])
            {
                push(&mut out, value)?;
                rest = &after[len..];
                continue;
            }
            out.push('$');
            rest = after;
        }
        out.push_str(rest);
        if out.len() > MAX_LINE_BYTES {
            return Err(format!(
                "parameter substitution makes the line longer than {MAX_LINE_BYTES} bytes"
            ));
        }
        Ok(out)
    }

    fn include(&mut self, check: Option<char>, pattern: &str, loc: &Loc, dir: &Path) {
        let keyword = match check {
            Some(c) => format!("include{c}"),
            None => "include".to_owned(),
        };
        if pattern.is_empty() {
            return self.log.error(loc, format!("{keyword}: no file named"));
        }
        if !self.follow_includes {
            return self.log.error(
                loc,
                format!("{keyword}: {pattern}: not followed (text alone)"),
            );
        }
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            dir.join(pattern)
        };
        // includer only checks that what matches is readable; the others want a match.
        let optional = matches!(check, None | Some('r'));
        let files = if glob::has_wildcard(pattern) {
            match glob::expand(&full) {
                Ok(files) if files.is_empty() && optional => {
                    self.log
                        .note(loc, &keyword, format!("{pattern} matches no file"));
                    return;
                }
                Ok(files) if files.is_empty() => {
                    return self
                        .log
                        .error(loc, format!("{keyword}: {pattern} matches no file"));
                }
                Ok(files) => files,
                Err(e) => {
                    return self.log.error(loc, format!("{keyword}: {pattern}: {e}"));
                }
            }
        } else {
            vec![full]
        };
        for file in files {
            let shown = self.display(&file);
            if self.reads >= MAX_FILES {
                self.stopped = true;
                return self.log.error(
                    loc,
                    format!(
                        "{keyword}: {shown} would be file number {} read, past the limit of \
                         {MAX_FILES} (is a file included over and over?)",
                        self.reads + 1
                    ),
                );
            }
            let bytes = match file::read_regular(&file) {
                Ok(bytes) => bytes,
                Err(e) => {
                    self.log
                        .error(loc, format!("{keyword}: cannot read {shown}: {e}"));
                    continue;
                }
            };
            self.reads += 1;
            self.bytes_read += bytes.len() as u64;
            if self.bytes_read > MAX_TOTAL_BYTES {
                self.stopped = true;
                return self.log.error(
                    loc,
                    format!(
                        "{keyword}: reading {shown} takes the import past {} MiB read in all \
                         (is a file included over and over?)",
                        MAX_TOTAL_BYTES >> 20
                    ),
                );
            }
            let canonical = std::fs::canonicalize(&file).unwrap_or_else(|_| absolute(&file));
            if self.stack.iter().any(|(p, _)| *p == canonical) {
                let mut chain: Vec<&str> = self
                    .stack
                    .iter()
                    .skip_while(|(p, _)| *p != canonical)
                    .map(|(_, d)| &**d)
                    .collect();
                chain.push(&shown);
                let message = format!(
                    "{keyword}: include loop: {shown} is already being read ({})",
                    chain.join(" -> ")
                );
                self.log.error(loc, message);
                continue;
            }
            let shown: Arc<str> = shown.into();
            self.stack.push((canonical, shown.clone()));
            let text = String::from_utf8_lossy(&bytes).into_owned();
            self.text(&text, &absolute(&file), shown);
            self.stack.pop();
        }
    }

    /// A path as reports show it: relative to the main file's directory when below it.
    fn display(&self, path: &Path) -> String {
        let path = normalize(&absolute(path));
        let root = normalize(&self.root);
        match path.strip_prefix(&root) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
            _ => path.display().to_string(),
        }
    }

    fn tokenize(&mut self, text: &str, loc: &Loc) {
        let mut words = Vec::new();
        let mut start = 0;
        let bytes = text.as_bytes();
        let mut i = 0;
        let word = |s: &str| Word {
            text: s.to_owned(),
            loc: loc.clone(),
        };
        while i < bytes.len() {
            match bytes[i] {
                b' ' | b'\t' => i += 1,
                b @ (b'{' | b'}') => {
                    self.flush(&mut words, &text[start..i], loc);
                    self.items.push(if b == b'{' {
                        Item::Open(loc.clone())
                    } else {
                        Item::Close(loc.clone())
                    });
                    i += 1;
                    start = i;
                }
                b'"' => {
                    // decomment() has checked the quote is closed.
                    let end = text[i + 1..].find('"').map_or(text.len(), |j| i + 1 + j);
                    words.push(word(&text[i + 1..end]));
                    i = (end + 1).min(text.len());
                }
                _ => {
                    let end = text[i..]
                        .find([' ', '\t', '"', '{', '}'])
                        .map_or(text.len(), |j| i + j);
                    words.push(word(&text[i..end]));
                    i = end;
                }
            }
        }
        self.flush(&mut words, &text[start..], loc);
    }

    fn flush(&mut self, words: &mut Vec<Word>, raw: &str, loc: &Loc) {
        if !words.is_empty() {
            self.items.push(Item::Line(Line {
                words: std::mem::take(words),
                raw: raw.trim().to_owned(),
                loc: loc.clone(),
            }));
        }
    }
}

/// keepalived's `decomment()`: leading blanks and comments removed, `\#` and `\!` made
/// literal outside quotes, trailing blanks removed.
fn decomment(line: &str) -> Result<String, String> {
    let line = line.trim_start_matches([' ', '\t']);
    let mut out = String::with_capacity(line.len());
    let mut quote = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quote = !quote;
                out.push(c);
            }
            '\\' => match chars.peek() {
                Some('#' | '!') if !quote => {
                    out.push(chars.next().unwrap_or_default());
                }
                Some(_) => {
                    out.push(c);
                    out.push(chars.next().unwrap_or_default());
                }
                None => out.push(c),
            },
            '#' | '!' if !quote => break,
            _ => out.push(c),
        }
    }
    if quote {
        return Err("unterminated quote: a '\"' is not closed on its line".to_owned());
    }
    Ok(out.trim_end_matches([' ', '\t']).to_owned())
}

/// `$NAME=VALUE` (nothing but blanks before the `$`, no blank before the `=`).
fn definition(text: &str) -> Option<(String, String)> {
    let body = text.strip_prefix('$')?;
    let eq = body.find('=')?;
    let name = &body[..eq];
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| (name.to_owned(), body[eq + 1..].to_owned()))
}

/// `include PATTERN` and its variants: the check letter and the pattern.
fn include(text: &str) -> Option<(Option<char>, &str)> {
    let rest = text.strip_prefix("include")?;
    let mut chars = rest.chars();
    match chars.next()? {
        ' ' | '\t' => Some((None, rest.trim())),
        c @ ('r' | 'm' | 'w' | 'b' | 'a')
            if chars.next().is_some_and(|n| n == ' ' || n == '\t') =>
        {
            Some((Some(c), rest[1..].trim()))
        }
        _ => None,
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    }
}

/// `.` and `..` resolved without asking the filesystem.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decomment_follows_keepalived() {
        assert_eq!(decomment("  priority 100 # main").unwrap(), "priority 100");
        assert_eq!(decomment("a ! b").unwrap(), "a");
        assert_eq!(
            decomment(r#"script "x # y" ! z"#).unwrap(),
            r#"script "x # y""#
        );
        assert_eq!(decomment(r"a \# b").unwrap(), "a # b");
        assert!(decomment(r#"script "open"#).is_err());
    }

    #[test]
    fn definitions_and_includes_are_recognised() {
        assert_eq!(
            definition("$PRIO=150"),
            Some(("PRIO".to_owned(), "150".to_owned()))
        );
        assert_eq!(definition("$1X=1"), None);
        assert_eq!(include("include a/*.conf"), Some((None, "a/*.conf")));
        assert_eq!(include("includer  b.conf"), Some((Some('r'), "b.conf")));
        assert_eq!(include("includes x"), None);
        assert_eq!(include("include_check x"), None);
    }
}
