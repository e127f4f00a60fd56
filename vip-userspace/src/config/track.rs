//! The four kinds of tracked object, each an inline table in a `[[vrrp]]` section.

use std::time::Duration;

use super::command::parse_command;
use super::duration;
use super::host::Host;
use super::locate::{Sink, Span};
use super::model::{
    ArgvMatch, ParamMatch, ProcessPattern, TrackFile, TrackInterface, TrackProcess, TrackScript,
};
use super::read::{Node, Table, as_array, as_str};
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
pub(crate) const TRACK_PROCESS_KEYS: &[&str] = &[
    "name",
    "args",
    "param_match",
    "full_command",
    "quorum",
    "quorum_max",
    "weight",
    "reverse",
    "delay",
    "fork_delay",
    "terminate_delay",
];
/// The kernel keeps a process's name in 16 bytes with its terminating NUL
/// (`TASK_COMM_LEN`): a longer name never matches one.
pub const COMM_MAX: usize = 15;
/// What a tracked process's `argv[0]` and arguments may add up to: `/proc/PID/cmdline`
/// is read that far for each process that execs, so it stays small.
pub const ARGV_MAX: usize = 4096;
// keepalived's ranges: quorum 1..=65535, quorum_max 0..=65535, delays up to 3600 s.
const QUORUM_RANGE: std::ops::RangeInclusive<i64> = 1..=65535;
const QUORUM_MAX_RANGE: std::ops::RangeInclusive<i64> = 0..=65535;
const MAX_PROCESS_DELAY: Duration = Duration::from_secs(3600);
// keepalived's defaults: interfaces and scripts fault (0), files add their value (1).
const DEFAULT_INTERFACE_WEIGHT: i16 = 0;
const DEFAULT_SCRIPT_WEIGHT: i16 = 0;
const DEFAULT_FILE_WEIGHT: i16 = 1;
const DEFAULT_PROCESS_WEIGHT: i16 = 0;
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

fn process_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("a process name cannot be empty".into());
    }
    if name.contains('\0') {
        return Err("a process name cannot hold a NUL byte".into());
    }
    Ok(name.to_owned())
}

fn param_match(word: &str) -> Result<ParamMatch, String> {
    match word {
        "exact" => Ok(ParamMatch::Exact),
        "partial" => Ok(ParamMatch::Partial),
        "initial" => Ok(ParamMatch::Initial),
        other => Err(format!(
            "{other:?} is not a param_match; expected \"exact\", \"partial\" or \"initial\""
        )),
    }
}

fn args(node: &Node<'_>, path: &str, sink: &mut Sink<'_>) -> Option<Vec<String>> {
    let items = as_array(node, path, sink)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let arg = as_str(item, &p, sink)?;
        if arg.contains('\0') {
            sink.push(item.span(), p, "an argument cannot hold a NUL byte");
            return None;
        }
        out.push(arg.to_owned());
    }
    Some(out)
}

pub(crate) fn track_process(
    node: &Node<'_>,
    path: String,
    sink: &mut Sink<'_>,
) -> Option<TrackProcess> {
    Table::read_inline(node, path, TRACK_PROCESS_KEYS, sink, |t, s| {
        t.require("name", s);
        let name = t.parsed("name", s, process_name);
        let args = t.value("args", s, args);
        let how = t.parsed("param_match", s, param_match);
        let full = t.boolean("full_command", s);
        let quorum = t.int::<u32>("quorum", QUORUM_RANGE, s);
        let quorum_max = t.int::<u32>("quorum_max", QUORUM_MAX_RANGE, s);
        let weight = t.int("weight", WEIGHT_RANGE, s).or(DEFAULT_PROCESS_WEIGHT);
        let reverse = t.boolean("reverse", s).or(false);
        let delay = t.duration_in("delay", Duration::ZERO..=MAX_PROCESS_DELAY, s);
        let fork = t.duration_in("fork_delay", Duration::ZERO..=MAX_PROCESS_DELAY, s);
        let terminate = t.duration_in("terminate_delay", Duration::ZERO..=MAX_PROCESS_DELAY, s);
        let name_at = name.valid()?;
        // Arguments or param_match mean argv is matched, as keepalived's `process` with
        // parameters and `param_match` set `full_command`.
        let argv_wanted = args.valid().is_some() || how.valid().is_some();
        let full_value = full.or(argv_wanted)?;
        if argv_wanted && !full_value {
            let at = full.valid()?;
            s.push(
                at.span.clone(),
                t.path_of("full_command"),
                "args and param_match match the command line, so full_command cannot be false",
            );
            return None;
        }
        let argv = full_value.then(|| ArgvMatch {
            args: args.or(Vec::new()).unwrap_or_default(),
            param_match: how
                .valid()
                .map(|at| at.value)
                .or(args.valid().map(|_| ParamMatch::Exact)),
        });
        let pattern = ProcessPattern {
            name: name_at.value.clone(),
            argv,
        };
        if pattern.argv.is_none() && pattern.name.len() > COMM_MAX {
            s.push(
                name_at.span.clone(),
                t.path_of("name"),
                format!(
                    "{:?} is {} bytes, and the kernel keeps at most {COMM_MAX} of a process \
                     name, so it never matches; set full_command = true to match the \
                     command line's program (argv[0]) instead",
                    pattern.name,
                    pattern.name.len()
                ),
            );
            return None;
        }
        if pattern.argv_bytes() > ARGV_MAX {
            s.push(
                t.span.clone(),
                t.path_of("args"),
                format!("name and args add up to more than {ARGV_MAX} bytes"),
            );
            return None;
        }
        // keepalived: quorum_max 0 means none may run, and the quorum is then 0.
        let max_value = quorum_max.or(u32::MAX)?;
        let quorum_value = match (quorum.valid(), max_value) {
            (None, 0) => 0,
            (q, _) => q.map_or(1, |at| at.value),
        };
        if quorum_value > max_value {
            let at = quorum_max.valid()?;
            s.push(
                at.span.clone(),
                t.path_of("quorum_max"),
                format!("quorum_max {max_value} is below quorum {quorum_value}"),
            );
            return None;
        }
        if let Some(d) = delay.valid()
            && (fork.valid().is_some() || terminate.valid().is_some())
        {
            s.push(
                d.span.clone(),
                t.path_of("delay"),
                "delay sets both fork_delay and terminate_delay; give either delay or those",
            );
            return None;
        }
        let both = delay.or(Duration::ZERO)?;
        Some(TrackProcess {
            pattern,
            weight: weight?,
            reverse: reverse?,
            quorum: quorum_value,
            quorum_max: (max_value != u32::MAX).then_some(max_value),
            fork_delay: fork.or(both)?,
            terminate_delay: terminate.or(both)?,
        })
    })
}
