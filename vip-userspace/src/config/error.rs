//! What a rejected configuration reports: every problem, each with its place in the file.

use std::fmt;

/// One thing wrong with a configuration file.
///
/// `line` and `col` are 1-based, `col` counted in characters so it matches what an editor
/// shows. Both are 0 only when the problem concerns the file as a whole (it cannot be
/// read). `path` names the field the way the file nests it (`vrrp[1].vips[0]`, arrays
/// counted from 0); it is empty when no field can be named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if self.line > 0 {
            write!(f, "{}:{}:", self.line, self.col)?;
        }
        if !self.path.is_empty() {
            write!(f, " {}:", self.path)?;
        }
        write!(f, " {}", self.message)
    }
}

/// A configuration that was rejected. Nothing was applied: callers get this before they
/// touch the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.problems))]
pub struct ConfigError {
    /// In file order; never empty.
    pub problems: Vec<Problem>,
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
