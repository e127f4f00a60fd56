//! The three kinds of tracked object, each an inline table in a `[[vrrp]]` section.

use std::time::Duration;

use super::command::parse_command;
use super::duration;
use super::host::Host;
use super::locate::{Sink, Span};
use super::model::{TrackFile, TrackInterface, TrackScript};
use super::read::{Node, Table};
use super::values::{parse_abs_path, parse_interface};

pub(crate) const TRACK_INTERFACE_KEYS: &[&str] = &["name", "weight", "reverse"];
pub(crate) const TRACK_SCRIPT_KEYS: &[&str] = &[
    "command",
    "interval",
    "timeout",
    "weight",
    "rise",
    "fall",
    "reverse",
    "init_fail",
];
pub(crate) const TRACK_FILE_KEYS: &[&str] = &["path", "weight", "reverse"];
// keepalived's defaults: interfaces and scripts fault (0), files add their value (1).
const DEFAULT_INTERFACE_WEIGHT: i16 = 0;
const DEFAULT_SCRIPT_WEIGHT: i16 = 0;
const DEFAULT_FILE_WEIGHT: i16 = 1;
const DEFAULT_SCRIPT_INTERVAL: Duration = Duration::from_secs(2);
const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(1);
const WEIGHT_RANGE: std::ops::RangeInclusive<i64> = -254..=254;
const RISE_FALL_RANGE: std::ops::RangeInclusive<i64> = 1..=100;
// Forking a checker more often than this is a load problem, not a health check.
const MIN_SCRIPT_INTERVAL: Duration = Duration::from_millis(100);
const MAX_SCRIPT_INTERVAL: Duration = Duration::from_secs(3600);
const MIN_SCRIPT_TIMEOUT: Duration = Duration::from_millis(10);

pub(crate) fn track_interface(
    node: &Node<'_>,
    path: String,
    host: &dyn Host,
    sink: &mut Sink<'_>,
) -> Option<TrackInterface> {
    Table::read_inline(node, path, TRACK_INTERFACE_KEYS, sink, |t, s| {
        t.require("name", s);
        let name = t.parsed("name", s, |n| {
            parse_interface(n, &|name| host.interface_exists(name))
        });
        let weight = t
            .int("weight", WEIGHT_RANGE, s)
            .or(DEFAULT_INTERFACE_WEIGHT);
        let reverse = t.boolean("reverse", s).or(false);
        Some(TrackInterface {
            name: name.valid()?.value.clone(),
            weight: weight?,
            reverse: reverse?,
        })
    })
}

/// A track script and where its command was written (for the script checks).
#[derive(Debug, Clone)]
pub(crate) struct ScriptEntry {
    pub(crate) script: TrackScript,
    pub(crate) command_span: Span,
}

pub(crate) fn track_script(
    node: &Node<'_>,
    path: String,
    sink: &mut Sink<'_>,
) -> Option<ScriptEntry> {
    Table::read_inline(node, path, TRACK_SCRIPT_KEYS, sink, |t, s| {
        t.require("command", s);
        let command = t.value("command", s, parse_command);
        let interval = t.duration_in("interval", MIN_SCRIPT_INTERVAL..=MAX_SCRIPT_INTERVAL, s);
        let timeout = t.duration_in("timeout", MIN_SCRIPT_TIMEOUT..=MAX_SCRIPT_INTERVAL, s);
        let weight = t.int("weight", WEIGHT_RANGE, s).or(DEFAULT_SCRIPT_WEIGHT);
        let rise = t.int("rise", RISE_FALL_RANGE, s).or(1);
        let fall = t.int("fall", RISE_FALL_RANGE, s).or(1);
        let reverse = t.boolean("reverse", s).or(false);
        let init_fail = t.boolean("init_fail", s).or(false);
        let (interval_value, timeout_value) = (
            interval.or(DEFAULT_SCRIPT_INTERVAL)?,
            timeout.or(DEFAULT_SCRIPT_TIMEOUT)?,
        );
        if timeout_value >= interval_value {
            // Point at whichever of the two the operator wrote; the default is not in the file.
            let (span, key) = match (timeout.valid(), interval.valid()) {
                (Some(at), _) => (at.span.clone(), "timeout"),
                (None, Some(at)) => (at.span.clone(), "interval"),
                (None, None) => (t.span.clone(), "timeout"),
            };
            s.push(
                span,
                t.path_of(key),
                format!(
                    "timeout {}{} must be shorter than interval {}{}, so runs never overlap",
                    duration::format(timeout_value),
                    if timeout.valid().is_some() {
                        ""
                    } else {
                        " (default)"
                    },
                    duration::format(interval_value),
                    if interval.valid().is_some() {
                        ""
                    } else {
                        " (default)"
                    },
                ),
            );
            return None;
        }
        let command = command.valid()?;
        Some(ScriptEntry {
            script: TrackScript {
                command: command.value.clone(),
                interval: interval_value,
                timeout: timeout_value,
                weight: weight?,
                rise: rise?,
                fall: fall?,
                reverse: reverse?,
                init_fail: init_fail?,
            },
            command_span: command.span.clone(),
        })
    })
}

pub(crate) fn track_file(node: &Node<'_>, path: String, sink: &mut Sink<'_>) -> Option<TrackFile> {
    Table::read_inline(node, path, TRACK_FILE_KEYS, sink, |t, s| {
        t.require("path", s);
        let file = t.parsed("path", s, parse_abs_path);
        let weight = t.int("weight", WEIGHT_RANGE, s).or(DEFAULT_FILE_WEIGHT);
        let reverse = t.boolean("reverse", s).or(false);
        Some(TrackFile {
            path: file.valid()?.value.clone(),
            weight: weight?,
            reverse: reverse?,
        })
    })
}
