//! The daemon's configuration: one TOML file, fully validated before anything on the host
//! is touched, so a bad file changes nothing and says where it is wrong.
//!
//! `vip-userspace/examples/vipd.toml` documents every field with its default, its range and
//! keepalived's equivalent; where keepalived set a convention (tracking weights, notify
//! arguments, track-file values, script security) vipd keeps its meaning.
//! [`Config::parse`] either returns a [`Config`] with every default filled in, or a
//! [`ConfigError`] listing *every* problem in the file, each as
//! `file:line:col: path: message`, e.g.
//! `vipd.toml:14:19: vrrp[1].advert_interval: 15ms is not a multiple of 10 ms (VRRPv3 counts centiseconds)`.
//!
//! Reading happens in three stages, each of which keeps going after a problem:
//! 1. TOML syntax (`toml`'s recovering parser; every value keeps its byte span),
//! 2. each field on its own: known key, type, range, format (`schema`, `vip`, `route`,
//!    `command`, `track`, `values`, all through the span-keeping view in `read`),
//! 3. rules across fields and instances: version-dependent intervals, address families,
//!    duplicates, map capacities, and the safety of every program vipd would run
//!    (`validate`, `security`).
//!
//! Syntax errors stop before stage 2, since a half-parsed document would produce
//! misleading follow-on problems.
//!
//! What depends on the machine (devices, users, files) is asked through [`Host`], so
//! tests run against a fake one; the daemon passes [`LocalHost`].
//!
//! A file that loads may still hold things keepalived users trip on (a unicast peer the
//! allowlist drops, more VIPs than an advertisement carries, ...): those come back as
//! [`Config::warnings`], in the same `file:line:col: path: message` form.

mod bfd;
mod command;
mod core;
mod duration;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
mod fake_host;
mod host;
mod locate;
mod model;
pub(crate) mod print;
mod read;
mod route;
mod schema;
mod security;
pub mod service;
mod shared;
mod track;
mod validate;
mod values;
mod vip;

#[cfg(test)]
mod tests;
#[cfg(any(test, feature = "fuzzing"))]
pub use fake_host::FakeHost;

use std::fmt;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub use error::{ConfigError, Problem};
pub use host::{FileKind, FileMeta, Host, LocalHost, UserIds, host_interface_exists};
use locate::{Sink, Span};
pub use model::{
    AddrScope, Broadcast, Command, Config, ForeignVrrp, Fwmark, Global, GroupRef, Instance,
    InterfaceOptions, Notify, PreferredLifetime, RTPROT_BOOT, RTPROT_KERNEL, RTPROT_STATIC,
    RTPROT_VIPD, RouteScope, RouteType, RuleAction, ScriptUser, SyncGroup, TABLE_LOCAL, TABLE_MAIN,
    TrackFile, TrackInterface, TrackScript, Vip, VirtualRoute, VirtualRule,
};
pub use model::{ArgvMatch, ParamMatch, ProcessPattern, TrackProcess};
pub use schema::DEFAULT_PIN_DIR;
pub use track::{ARGV_MAX, COMM_MAX};
pub use validate::MAX_TRACKED_PROCESSES;

impl Config {
    /// Reads and validates `path`. Problems name the file as `path` was given.
    ///
    /// `host` answers what depends on the machine; the daemon passes [`LocalHost`].
    pub fn load(path: &Path, host: &dyn Host) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ConfigError {
            problems: vec![Problem {
                file: file.clone(),
                line: 0,
                col: 0,
                path: String::new(),
                message: format!("cannot read: {e}"),
            }],
        })?;
        Config::from_bytes(bytes, &file, host)
    }

    /// Validates the bytes of a file as [`Config::load`] read them: text that is not
    /// UTF-8 is a problem at the first byte that is not.
    pub fn from_bytes(
        bytes: Vec<u8>,
        file_name: &str,
        host: &dyn Host,
    ) -> Result<Config, ConfigError> {
        match String::from_utf8(bytes) {
            Ok(text) => Config::parse(&text, file_name, host),
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let bytes = e.into_bytes();
                let prefix = String::from_utf8_lossy(bytes.get(..valid).unwrap_or_default());
                let mut sink = Sink::new(&prefix, file_name);
                sink.push(
                    valid..valid,
                    "",
                    "not valid UTF-8 (a TOML file must be UTF-8)",
                );
                Err(sink.into_error().unwrap_or_else(|| ConfigError {
                    problems: vec![Problem {
                        file: file_name.to_owned(),
                        line: 0,
                        col: 0,
                        path: String::new(),
                        message: "not valid UTF-8".into(),
                    }],
                }))
            }
        }
    }

    /// Validates `text`; `file_name` is only used to name the file in problems.
    ///
    /// `host` says which interfaces and users exist and what the filesystem holds (for
    /// the script checks), so tests need no real devices, users or files.
    pub fn parse(text: &str, file_name: &str, host: &dyn Host) -> Result<Config, ConfigError> {
        let mut sink = Sink::new(text, file_name);
        let (doc, syntax) = DeTable::parse_recoverable(text);
        let config = if syntax.is_empty() {
            let raw = schema::decode(&doc, host, &mut sink);
            validate::validate(raw, host, &mut sink)
        } else {
            for error in &syntax {
                let span = error.span().unwrap_or(0..0);
                let path = syntax_path(&doc, text, &span, error.message());
                sink.push(span, path, format!("TOML syntax: {}", error.message()));
            }
            None
        };
        match (config, sink.into_error()) {
            (Some(config), None) => Ok(config),
            (_, Some(error)) => Err(error),
            (None, None) => Err(ConfigError {
                problems: vec![Problem {
                    file: file_name.to_owned(),
                    line: 0,
                    col: 0,
                    path: String::new(),
                    message: "internal error: rejected without a reason".to_owned(),
                }],
            }),
        }
    }

    /// The effective configuration in the file format, every default written out.
    /// Parsing it gives back an equal `Config`.
    pub fn to_toml_string(&self) -> String {
        print::to_toml(self)
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_toml_string())
    }
}

/// Where a place in the file is, as a field path.
struct Mark {
    start: usize,
    path: String,
    /// The table a key belongs to; `None` for a table's own mark.
    parent: Option<String>,
}

fn marks(entries: &DeTable<'_>, prefix: &str, out: &mut Vec<Mark>) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        }
    };
    for (key, value) in entries.iter() {
        let path = join(key.get_ref());
        out.push(Mark {
            start: key.span().start,
            path: path.clone(),
            parent: Some(prefix.to_owned()),
        });
        mark_value(value, path, out);
    }
}

fn mark_value(value: &Spanned<DeValue<'_>>, path: String, out: &mut Vec<Mark>) {
    match value.get_ref() {
        DeValue::Table(table) => {
            out.push(Mark {
                start: value.span().start,
                path: path.clone(),
                parent: None,
            });
            marks(table, &path, out);
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                mark_value(item, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Best guess at the field a syntax error is in, from what the recovering parser kept:
/// the key on the error's line, or else the table the error falls in.
fn syntax_path(doc: &Spanned<DeTable<'_>>, text: &str, span: &Span, message: &str) -> String {
    let mut all = Vec::new();
    marks(doc.get_ref(), "", &mut all);
    let before = all
        .iter()
        .filter(|m| m.start <= span.start)
        .max_by_key(|m| m.start);
    let line = |at: usize| locate::line_col(text, at).0;
    let table = match before {
        Some(Mark {
            parent: Some(parent),
            start,
            path,
        }) => {
            if line(*start) == line(span.start) && message != "duplicate key" {
                return path.clone();
            }
            parent.clone()
        }
        Some(mark) => mark.path.clone(),
        None => String::new(),
    };
    // A duplicate key's span is the key itself, which is not in the kept tree.
    if message == "duplicate key"
        && let Some(key) = text
            .get(span.clone())
            .map(str::trim)
            .filter(|k| !k.is_empty())
    {
        let line_start = text
            .get(..span.start)
            .and_then(|t| t.rfind('\n'))
            .map_or(0, |i| i + 1);
        let in_header = text
            .get(line_start..)
            .is_some_and(|l| l.trim_start().starts_with('['));
        // A header names the table by its full path already.
        return if table.is_empty() || in_header {
            key.to_owned()
        } else {
            format!("{table}.{key}")
        };
    }
    table
}
