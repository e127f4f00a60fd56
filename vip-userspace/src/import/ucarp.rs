//! `vipd import ucarp`: ucarp command lines turned into CARP instances of a vipd file, and
//! a list of everything they could not carry over.
//!
//! ucarp takes its whole configuration on the command line, one process per virtual
//! address. Each command line is read as ucarp 1.5.2's `getopt_long` reads it: long
//! options by any unambiguous prefix, `--opt=value` or `--opt value`, short options
//! clustered (`-Pn`) with values attached or following, options and other words in any
//! order (ucarp ignores the other words), `--` ending the options, a later option
//! overriding an earlier one. Numbers are read as ucarp reads them (`strtoul`, base 0:
//! `0x` hex, leading `0` octal, reading stops at the first other character), and a byte
//! field keeps only its low byte, as ucarp's does. What ucarp itself refuses to start
//! with (no VHID, an empty or too long password, ...) is an error here too.
//!
//! The CARP keys written (`protocol = "carp"`, `advskew`, `passphrase`, ...) are the
//! configuration surface `docs/carp.md` describes.

mod convert;
mod options;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::Outcome;
use super::report::{ImportError, Loc, Log, Report};
use crate::config::print::{Table, Value, render};

/// Imports ucarp command lines, each already split into words and named by where it
/// came from, into one vipd file whose router is `router_id`.
pub fn ucarp(lines: &[(Loc, Vec<String>)], router_id: &str) -> Outcome {
    let mut log = Log::default();
    let mut tables = Vec::new();
    let mut global = Table::new("[global]");
    global.key("router_id", Value::str(router_id));
    tables.push(global);
    let mut names = Vec::new();
    for (loc, words) in lines {
        if let Some(settings) = options::read(loc, words, &mut log)
            && let Some(table) = convert::instance(loc, words, &settings, &mut names, &mut log)
        {
            tables.push(table);
        }
    }
    if lines.is_empty() {
        log.errors.push(ImportError {
            loc: None,
            message: "no ucarp command line to import".into(),
        });
    }
    let files: Vec<String> = {
        let mut f: Vec<String> = lines.iter().map(|(l, _)| l.file.to_string()).collect();
        f.dedup();
        f
    };
    let toml = log
        .errors
        .is_empty()
        .then(|| render(&header(&files, &log.reports), &tables));
    Outcome {
        toml,
        errors: log.errors,
        reports: log.reports,
        files,
    }
}

/// The command lines of a file: one a line, `#` comments and blank lines skipped, a line
/// ending in `\` continued on the next, words split as a POSIX shell would.
pub fn lines_of_file(path: &Path) -> Result<Vec<(Loc, Vec<String>)>, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ImportError {
        loc: None,
        message: format!("{}: {e}", path.display()),
    })?;
    let file: Arc<str> = path.display().to_string().into();
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let (start, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
        if let Some(head) = line.strip_suffix('\\') {
            joined.push_str(head);
            joined.push(' ');
            pending = Some((start, joined));
            continue;
        }
        joined.push_str(line);
        let trimmed = joined.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let loc = Loc {
            file: file.clone(),
            line: start,
        };
        let words = shlex::split(trimmed).ok_or_else(|| ImportError {
            loc: Some(loc.clone()),
            message: "unbalanced quotes or a trailing backslash".into(),
        })?;
        out.push((loc, words));
    }
    if let Some((start, _)) = pending {
        return Err(ImportError {
            loc: Some(Loc { file, line: start }),
            message: "the file ends in a continued line".into(),
        });
    }
    Ok(out)
}

/// `vipd import ucarp`: writes the vipd file to `output` (a new file, mode 0600: it holds
/// the passphrase; `replace` allows one that exists) or `stdout`, every error, left-out
/// option and note to `stderr`, and returns the exit status.
pub fn run(
    lines: Result<Vec<(Loc, Vec<String>)>, ImportError>,
    router_id: &str,
    output: Option<&Path>,
    replace: bool,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let outcome = match lines {
        Ok(lines) => ucarp(&lines, router_id),
        Err(e) => Outcome {
            toml: None,
            errors: vec![e],
            reports: Vec::new(),
            files: Vec::new(),
        },
    };
    super::deliver(&outcome, output, replace, stdout, stderr)
}

fn header(files: &[String], reports: &[Report]) -> Vec<String> {
    let mut out = vec!["vipd configuration imported from ucarp by `vipd import ucarp`.".to_owned()];
    if !files.is_empty() {
        out.push(format!("Source: {}", files.join(", ")));
    }
    out.extend(super::report_summary("ucarp", reports));
    out
}

#[cfg(test)]
mod tests;
