//! Turning byte spans into `line:col`, and collecting problems while the file is read.
//!
//! Problems are gathered against byte spans first and placed only at the end, so every
//! stage (syntax, types, ranges, cross-instance rules) can keep going after a mistake and
//! the operator sees everything wrong with the file in one run.

use std::ops::Range;

use super::error::{ConfigError, Problem};

pub(crate) type Span = Range<usize>;

/// 1-based line and character column of byte `offset` in `text`.
///
/// Offsets past the end or inside a multi-byte character are pulled back to the nearest
/// character start rather than trusted, since spans come from a parser we do not control.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut at = offset.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

struct Found {
    span: Span,
    path: String,
    message: String,
}

/// Problems found so far in one file, and warnings (which never block).
pub(crate) struct Sink<'t> {
    text: &'t str,
    file: &'t str,
    found: Vec<Found>,
    warned: Vec<Found>,
}

impl<'t> Sink<'t> {
    pub(crate) fn new(text: &'t str, file: &'t str) -> Self {
        Self {
            text,
            file,
            found: Vec::new(),
            warned: Vec::new(),
        }
    }

    /// Something that loads but is probably not what was meant.
    pub(crate) fn warn(&mut self, span: Span, path: impl Into<String>, message: impl Into<String>) {
        self.warned.push(Found {
            span,
            path: path.into(),
            message: message.into(),
        });
    }

    /// The warnings, in file order.
    pub(crate) fn take_warnings(&mut self) -> Vec<Problem> {
        let warned = std::mem::take(&mut self.warned);
        place(self.text, self.file, warned)
    }

    pub(crate) fn push(&mut self, span: Span, path: impl Into<String>, message: impl Into<String>) {
        self.found.push(Found {
            span,
            path: path.into(),
            message: message.into(),
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.found.len()
    }

    /// Line of a span, for messages that point back at an earlier definition.
    pub(crate) fn line_of(&self, span: &Span) -> usize {
        line_col(self.text, span.start).0
    }

    /// `None` when nothing was found.
    pub(crate) fn into_error(self) -> Option<ConfigError> {
        if self.found.is_empty() {
            return None;
        }
        Some(ConfigError {
            problems: place(self.text, self.file, self.found),
        })
    }
}

/// In file order, each placed at its line and column.
fn place(text: &str, file: &str, mut found: Vec<Found>) -> Vec<Problem> {
    // Stable, so problems at one place keep the order the rules found them in.
    found.sort_by_key(|f| f.span.start);
    found.dedup_by(|a, b| {
        a.span.start == b.span.start && a.path == b.path && a.message == b.message
    });
    found
        .into_iter()
        .map(|f| {
            let (line, col) = line_col(text, f.span.start);
            Problem {
                file: file.to_owned(),
                line,
                col,
                path: f.path,
                message: f.message,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn offsets_map_to_one_based_line_and_character_column() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (1, 5));
        assert_eq!(line_col(text, 6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_col(text, 10), (2, 4));
    }

    #[test]
    fn offsets_out_of_range_or_mid_character_do_not_panic() {
        let text = "é";
        assert_eq!(line_col(text, 1), (1, 1));
        assert_eq!(line_col(text, 99), (1, 2));
        assert_eq!(line_col("", 5), (1, 1));
    }
}
