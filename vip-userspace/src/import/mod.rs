//! `vipd import keepalived`: a keepalived configuration, with its includes, turned into a
//! vipd file that means the same, and a list of everything it could not carry over.
//!
//! The steps, each in its own file:
//! - `lexer`: files into words, lines and braces (comments, `@` conditions, `$`
//!   parameters, `include` globs, file:line for everything),
//! - `parse`: those into a tree of keywords and blocks (brace errors),
//! - `convert`: the tree into vipd tables, keyword by keyword, with keepalived's own
//!   after-reading rules applied (`convert/`), every difference reported,
//!
//! Outcome: a hard error (unreadable or missing file, include loop, unbalanced braces, a
//! value of the wrong shape) writes nothing and exits 2; otherwise the file is written and
//! the exit status is 1 when anything keepalived would do is left out, 0 when not.
//! `examples/vipd.toml` says, for every vipd key, which keepalived keyword it replaces;
//! the README's "Coming from keepalived" section lists what is not carried over.

mod convert;
mod file;
mod glob;
mod lexer;
mod parse;
mod report;
mod script;
pub mod ucarp;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

pub use report::{ImportError, Kind, Loc, Report};

use crate::config::Host;

/// Choices the keepalived file leaves to the machine it runs on.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// keepalived's config id (`-i`): `@ID` lines apply when it matches. keepalived's
    /// default is the host name up to its first dot.
    pub config_id: Option<String>,
    /// The router_id when `global_defs` sets none (keepalived uses the host name).
    pub router_id: String,
}

impl Options {
    /// keepalived's defaults on this machine: its host name.
    pub fn for_this_host() -> Options {
        // uname(2)'s node name, as keepalived reads it.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "vipd".to_owned());
        Options {
            config_id: host.split('.').next().map(str::to_owned),
            router_id: host,
        }
    }
}

/// What an import produced.
#[derive(Debug)]
pub struct Outcome {
    /// The vipd file; `None` when there were errors.
    pub toml: Option<String>,
    /// Problems that stop the import, in file order.
    pub errors: Vec<ImportError>,
    /// What was left out and what was noted, in file order.
    pub reports: Vec<Report>,
    /// The files read, main file first, as reports name them.
    pub files: Vec<String>,
}

/// The exit statuses of `vipd import`, as documented in its help.
pub const EXIT_COMPLETE: u8 = 0;
pub const EXIT_LEFT_OUT: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

impl Outcome {
    pub fn status(&self) -> u8 {
        if !self.errors.is_empty() || self.toml.is_none() {
            EXIT_ERROR
        } else if self.reports.iter().any(|r| r.kind == Kind::LeftOut) {
            EXIT_LEFT_OUT
        } else {
            EXIT_COMPLETE
        }
    }

    pub fn left_out(&self) -> impl Iterator<Item = &Report> {
        self.reports.iter().filter(|r| r.kind == Kind::LeftOut)
    }
}

/// Imports the keepalived configuration at `path` and everything it includes. `host`
/// answers what depends on the machine (programs found by path search, whether
/// keepalived's default script user exists).
pub fn keepalived(path: &Path, options: &Options, host: &dyn Host) -> Outcome {
    let mut log = report::Log::default();
    let Some(source) = lexer::read(path, options.config_id.as_deref(), &mut log) else {
        return Outcome {
            toml: None,
            errors: log.errors,
            reports: log.reports,
            files: Vec::new(),
        };
    };
    let root = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    from_source(source, root, log, options, host)
}

/// Everything after reading: the tree, its conversion and the vipd file. `root` is the
/// main file's directory.
fn from_source(
    source: lexer::Source,
    root: std::path::PathBuf,
    mut log: report::Log,
    options: &Options,
    host: &dyn Host,
) -> Outcome {
    let files: Vec<Arc<str>> = source.files.clone();
    let tree = parse::parse(source.items, &mut log);
    let main = files.first().cloned().unwrap_or_else(|| "".into());
    let converted = {
        let mut ctx = convert::Ctx {
            host,
            log: &mut log,
            root,
            main,
        };
        convert::convert(&tree, &mut ctx, &options.router_id)
    };
    // File order: by the order files were read, then by line.
    let rank = |loc: &Loc| {
        (
            files
                .iter()
                .position(|f| *f == loc.file)
                .unwrap_or(usize::MAX),
            loc.line,
        )
    };
    log.errors.sort_by_key(|e| e.loc.as_ref().map(rank));
    log.reports.sort_by_key(|r| rank(&r.loc));
    let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
    let toml = log
        .errors
        .is_empty()
        .then(|| crate::config::print::render(&header(&files, &log.reports), &converted.tables));
    Outcome {
        toml,
        errors: log.errors,
        reports: log.reports,
        files,
    }
}

fn header(files: &[String], reports: &[Report]) -> Vec<String> {
    let mut out =
        vec!["vipd configuration imported from keepalived by `vipd import keepalived`.".to_owned()];
    match files.split_first() {
        Some((main, [])) => out.push(format!("Source: {main}")),
        Some((main, rest)) => {
            out.push(format!("Source: {main}, including {}", rest.join(", ")));
        }
        None => {}
    }
    out.extend(report_summary("keepalived", reports));
    out
}

/// The header's part every importer shares (`tool` is what was imported from): how to
/// check the file, what was left out with where, and how many notes the import printed.
pub(crate) fn report_summary(tool: &str, reports: &[Report]) -> Vec<String> {
    let mut out =
        vec!["Check it on the machine it is for before use: vipd check --config FILE".to_owned()];
    out.push(String::new());
    let left_out: Vec<&Report> = reports.iter().filter(|r| r.kind == Kind::LeftOut).collect();
    if left_out.is_empty() {
        out.push(format!("Nothing {tool} would do was left out."));
    } else {
        out.push(format!(
            "Left out ({}): {tool} would do these, this file does not:",
            left_out.len()
        ));
        for r in left_out {
            out.push(format!("  {}: {}: {}", r.loc, r.keyword, r.reason));
        }
    }
    let notes = reports.iter().filter(|r| r.kind == Kind::Note).count();
    if notes > 0 {
        out.push(format!(
            "Notes ({notes}, printed by the import): kept with the same meaning, written \
             differently."
        ));
    }
    out
}

/// `vipd import keepalived FILE [-o OUT [--force]]`: writes the vipd file to `output` (a
/// new file, mode 0600, never through a symbolic link; `replace` allows one that exists)
/// or `stdout`, every error, left-out keyword and note to `stderr`, and returns the exit
/// status.
pub fn run(
    path: &Path,
    output: Option<&Path>,
    replace: bool,
    options: &Options,
    host: &dyn Host,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let outcome = keepalived(path, options, host);
    deliver(&outcome, output, replace, stdout, stderr)
}

/// Writes an import's file to `output` (a new file, mode 0600, never through a symbolic
/// link; `replace` allows one that exists) or `stdout`, and what it says to `stderr`;
/// returns the exit status.
pub(crate) fn deliver(
    outcome: &Outcome,
    output: Option<&Path>,
    replace: bool,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    for error in &outcome.errors {
        let _ = writeln!(stderr, "error: {error}");
    }
    // With errors, what would have been left out is beside the point.
    if outcome.errors.is_empty() {
        for report in &outcome.reports {
            let _ = writeln!(stderr, "{report}");
        }
    }
    let Some(toml) = &outcome.toml else {
        let _ = writeln!(
            stderr,
            "vipd import: {} error(s); nothing written",
            outcome.errors.len()
        );
        return EXIT_ERROR;
    };
    let written = match output {
        Some(out) => file::write_new(out, toml, replace).map_err(|e| e.to_string()),
        None => stdout
            .write_all(toml.as_bytes())
            .map_err(|e| format!("cannot write stdout: {e}")),
    };
    if let Err(e) = written {
        let _ = writeln!(stderr, "error: {e}");
        return EXIT_ERROR;
    }
    let left = outcome.left_out().count();
    let notes = outcome.reports.len() - left;
    let _ = writeln!(
        stderr,
        "vipd import: {} written; {left} left out, {notes} note(s)",
        output.map_or_else(|| "stdout".to_owned(), |p| p.display().to_string())
    );
    outcome.status()
}
