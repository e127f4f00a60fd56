//! What an import says about its input: hard errors (nothing is written), things left out
//! (a file is written, exit status 1) and notes (kept with the same meaning, said
//! differently).

use std::fmt;
use std::sync::Arc;

/// A line of a keepalived file, named as the import shows it (relative to the main
/// file's directory when it is below it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A problem that stops the import: the input cannot be read, or does not say one thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// `None` when the problem concerns no line (the main file cannot be read).
    pub loc: Option<Loc>,
    pub message: String,
}

impl ImportError {
    pub(crate) fn at(loc: &Loc, message: impl Into<String>) -> Self {
        ImportError {
            loc: Some(loc.clone()),
            message: message.into(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Some(loc) => write!(f, "{loc}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// How a keyword fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// keepalived would do something the vipd file does not (or does differently).
    LeftOut,
    /// The vipd file does what keepalived would do, but not word for word (a default
    /// written out, a path resolved, a setting keepalived itself ignores).
    Note,
}

/// One keyword the vipd file does not carry word for word, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub loc: Loc,
    pub keyword: String,
    pub kind: Kind,
    pub reason: String,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A keyword written as `""` is shown as written, not as nothing between colons.
        let keyword = if self.keyword.is_empty() {
            "\"\""
        } else {
            &self.keyword
        };
        match self.kind {
            Kind::LeftOut => write!(f, "{}: {keyword}: {}", self.loc, self.reason),
            Kind::Note => write!(f, "{}: {keyword}: note: {}", self.loc, self.reason),
        }
    }
}

/// Everything said about one input, in the order it was found.
#[derive(Debug, Default)]
pub(crate) struct Log {
    pub(crate) errors: Vec<ImportError>,
    pub(crate) reports: Vec<Report>,
}

impl Log {
    pub(crate) fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        self.errors.push(ImportError::at(loc, message));
    }

    pub(crate) fn left_out(&mut self, loc: &Loc, keyword: &str, reason: impl Into<String>) {
        self.push(loc, keyword, Kind::LeftOut, reason);
    }

    pub(crate) fn note(&mut self, loc: &Loc, keyword: &str, reason: impl Into<String>) {
        self.push(loc, keyword, Kind::Note, reason);
    }

    fn push(&mut self, loc: &Loc, keyword: &str, kind: Kind, reason: impl Into<String>) {
        self.reports.push(Report {
            loc: loc.clone(),
            keyword: keyword.to_owned(),
            kind,
            reason: reason.into(),
        });
    }
}
