//! The three kinds of tracked object, each an inline table in a `[[vrrp]]` section.

use std::time::Duration;

use super::duration;
use super::locate::Sink;
use super::model::{TrackFile, TrackInterface, TrackScript};
use super::read::{Node, Table, as_array, as_str};
use super::values::{parse_abs_path, parse_interface};

const TRACK_INTERFACE_KEYS: &[&str] = &["name", "weight"];
const TRACK_SCRIPT_KEYS: &[&str] = &["command", "interval", "timeout", "weight", "rise", "fall"];
const TRACK_FILE_KEYS: &[&str] = &["path", "weight"];
const DEFAULT_SCRIPT_INTERVAL: Duration = Duration::from_secs(2);
const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(1);
const WEIGHT_RANGE: std::ops::RangeInclusive<i64> = -254..=254;
const RISE_FALL_RANGE: std::ops::RangeInclusive<i64> = 1..=100;
// Forking a checker more often than this is a load problem, not a health check.
const MIN_SCRIPT_INTERVAL: Duration = Duration::from_millis(100);
const MAX_SCRIPT_INTERVAL: Duration = Duration::from_secs(3600);
const MIN_SCRIPT_TIMEOUT: Duration = Duration::from_millis(10);

/// Runs `read` on an inline table; `None` if it or anything in it was wrong.
fn sub_table<T>(
    node: &Node<'_>,
    path: String,
    keys: &[&str],
    sink: &mut Sink<'_>,
    read: impl FnOnce(&Table<'_, '_>, &mut Sink<'_>) -> Option<T>,
) -> Option<T> {
    let before = sink.len();
    let table = Table::of(node, path, sink)?;
    table.reject_unknown(keys, sink);
    let value = read(&table, sink);
    if sink.len() == before { value } else { None }
}

pub(crate) fn track_interface(
    node: &Node<'_>,
    path: String,
    interface_exists: &dyn Fn(&str) -> bool,
    sink: &mut Sink<'_>,
) -> Option<TrackInterface> {
    sub_table(node, path, TRACK_INTERFACE_KEYS, sink, |t, s| {
        t.require("name", s);
        let name = t.parsed("name", s, |n| parse_interface(n, interface_exists));
        let weight = t.int("weight", WEIGHT_RANGE, s).or(0);
        Some(TrackInterface {
            name: name.valid()?.value.clone(),
            weight: weight?,
        })
    })
}

pub(crate) fn track_script(
    node: &Node<'_>,
    path: String,
    sink: &mut Sink<'_>,
) -> Option<TrackScript> {
    sub_table(node, path, TRACK_SCRIPT_KEYS, sink, |t, s| {
        t.require("command", s);
        let command = match t.node("command") {
            Some(n) => parse_command(n, &t.path_of("command"), s),
            None => None,
        };
        let interval = t.duration_in("interval", MIN_SCRIPT_INTERVAL..=MAX_SCRIPT_INTERVAL, s);
        let timeout = t.duration_in("timeout", MIN_SCRIPT_TIMEOUT..=MAX_SCRIPT_INTERVAL, s);
        let weight = t.int("weight", WEIGHT_RANGE, s).or(0);
        let rise = t.int("rise", RISE_FALL_RANGE, s).or(1);
        let fall = t.int("fall", RISE_FALL_RANGE, s).or(1);
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
        Some(TrackScript {
            command: command?,
            interval: interval_value,
            timeout: timeout_value,
            weight: weight?,
            rise: rise?,
            fall: fall?,
        })
    })
}

pub(crate) fn track_file(node: &Node<'_>, path: String, sink: &mut Sink<'_>) -> Option<TrackFile> {
    sub_table(node, path, TRACK_FILE_KEYS, sink, |t, s| {
        t.require("path", s);
        let file = t.parsed("path", s, parse_abs_path);
        let weight = t.int("weight", WEIGHT_RANGE, s).or(0);
        Some(TrackFile {
            path: file.valid()?.value.clone(),
            weight: weight?,
        })
    })
}

/// A command is a program path (a string) or a program and its arguments (an array of
/// strings); it is run directly, so there is no shell quoting to get wrong.
fn parse_command(node: &Node<'_>, path: &str, sink: &mut Sink<'_>) -> Option<Vec<String>> {
    let argv: Vec<String> = if let Some(text) = node.get_ref().as_str() {
        if text.chars().any(char::is_whitespace) {
            sink.push(
                node.span(),
                path,
                format!(
                    "a string command is a program path, without arguments; to pass arguments \
                     write an array: [\"{}\", ...]",
                    text.split_whitespace().next().unwrap_or_default()
                ),
            );
            return None;
        }
        vec![text.to_owned()]
    } else if node.get_ref().is_array() {
        let items = as_array(node, path, sink)?;
        let before = sink.len();
        let argv: Vec<String> = items
            .iter()
            .enumerate()
            .filter_map(|(i, n)| as_str(n, &format!("{path}[{i}]"), sink).map(str::to_owned))
            .collect();
        if sink.len() != before {
            return None;
        }
        argv
    } else {
        sink.push(
            node.span(),
            path,
            format!(
                "expected a program path or an array of program and arguments, found {}",
                node.get_ref().type_str()
            ),
        );
        return None;
    };
    let Some(program) = argv.first() else {
        sink.push(node.span(), path, "the command is empty");
        return None;
    };
    if let Err(message) = parse_abs_path(program) {
        sink.push(node.span(), path, message);
        return None;
    }
    if argv.iter().any(|a| a.contains('\0')) {
        sink.push(node.span(), path, "arguments cannot contain NUL bytes");
        return None;
    }
    Some(argv)
}
