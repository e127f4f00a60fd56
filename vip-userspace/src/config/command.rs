//! Programs vipd runs: track-script commands and notify hooks. A command is a program path
//! (a string) or a program and its arguments (an array of strings); it is run directly,
//! so there is no shell quoting to get wrong.

use super::locate::{Sink, Span};
use super::model::{Command, Notify};
use super::read::{Field, Node, Table, as_array, as_str};
use super::values::parse_abs_path;

/// The notify keys of an instance or a sync group, in the order they are printed.
pub(crate) const NOTIFY_KEYS: &[&str] = &[
    "notify",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
];

/// A command read from the file, with where it was written (for the script checks).
#[derive(Debug, Clone)]
pub(crate) struct CommandAt {
    pub(crate) span: Span,
    pub(crate) path: String,
    pub(crate) command: Command,
}

pub(crate) fn parse_command(node: &Node<'_>, path: &str, sink: &mut Sink<'_>) -> Option<Command> {
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
    Command::new(argv)
}

/// The five notify keys of an instance or a sync group, as read.
pub(crate) struct RawNotify {
    fields: Vec<(&'static str, String, Field<Command>)>,
}

impl RawNotify {
    /// Reads the notify keys of `t` (the caller rejects unknown keys).
    pub(crate) fn decode(t: &Table<'_, '_>, sink: &mut Sink<'_>) -> RawNotify {
        let fields = NOTIFY_KEYS
            .iter()
            .map(|&key| {
                let path = t.path_of(key);
                let field = t.value(key, sink, parse_command);
                (key, path, field)
            })
            .collect();
        RawNotify { fields }
    }

    /// The hooks; `None` if any was wrong.
    pub(crate) fn build(&self) -> Option<Notify> {
        let mut notify = Notify::default();
        for (key, _, field) in &self.fields {
            let value = match field {
                Field::Absent => None,
                Field::Invalid => return None,
                Field::Valid(at) => Some(at.value.clone()),
            };
            let slot = match *key {
                "notify" => &mut notify.any,
                "notify_master" => &mut notify.master,
                "notify_backup" => &mut notify.backup,
                "notify_fault" => &mut notify.fault,
                _ => &mut notify.stop,
            };
            *slot = value;
        }
        Some(notify)
    }

    /// Every hook that was read correctly, with its place.
    pub(crate) fn located(&self) -> impl Iterator<Item = CommandAt> + '_ {
        self.fields.iter().filter_map(|(_, path, field)| {
            field.valid().map(|at| CommandAt {
                span: at.span.clone(),
                path: path.clone(),
                command: at.value.clone(),
            })
        })
    }
}
