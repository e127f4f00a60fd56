//! Programs and tracked objects: `vrrp_script`, `track_file`, notify hooks, and the
//! `track_interface` / `track_script` / `track_file` lists of instances and sync groups.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::global::{count, timer};
use super::values::int_in;
use super::{Ctx, Defs};
use crate::config::print::{Value, duration};
use crate::import::parse::Node;
use crate::import::report::Loc;
use crate::import::script;

/// Where keepalived's path search looks when started by systemd (its default PATH).
const PATH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

const SHELL: &str = "/bin/sh";

/// A `vrrp_script` as read.
#[derive(Debug, Clone)]
pub(crate) struct ScriptDef {
    pub(crate) loc: Loc,
    /// Its position among the top-level blocks: keepalived finds only scripts defined
    /// before the instance that tracks them.
    pub(crate) index: usize,
    /// `None` when the script was left out (reported).
    pub(crate) command: Option<Value>,
    pub(crate) interval: Option<(Duration, Loc)>,
    pub(crate) timeout: Option<(Duration, Loc)>,
    pub(crate) weight: i64,
    pub(crate) reverse: bool,
    pub(crate) rise: Option<(u32, Loc)>,
    pub(crate) fall: Option<(u32, Loc)>,
    pub(crate) init_fail: bool,
    pub(crate) user: Option<(String, Loc)>,
    /// Set by [`prepare_script`].
    pub(crate) prepared: Option<Prepared>,
}

/// A top-level `track_file` (or `vrrp_track_file`) as read.
#[derive(Debug, Clone)]
pub(crate) struct TrackFileDef {
    pub(crate) loc: Loc,
    pub(crate) index: usize,
    pub(crate) path: Option<String>,
    pub(crate) weight: i64,
    pub(crate) reverse: bool,
}

/// keepalived's script defaults where they differ from vipd's.
const SCRIPT_INTERVAL: Duration = Duration::from_secs(1);
const MIN_INTERVAL: Duration = Duration::from_millis(100);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
const TIMEOUT_MARGIN: Duration = Duration::from_millis(10);
const MAX_RISE_FALL: u32 = 100;

pub(crate) fn script_def(
    node: &Node,
    block: &[Node],
    index: usize,
    defs: &mut Defs,
    ctx: &mut Ctx<'_>,
) {
    let Some(name) = node.arg(0) else {
        return ctx.log.error(&node.loc, "vrrp_script: needs a name");
    };
    let mut def = ScriptDef {
        loc: node.loc.clone(),
        index,
        command: None,
        interval: None,
        timeout: None,
        weight: 0,
        reverse: false,
        rise: None,
        fall: None,
        init_fail: false,
        user: None,
        prepared: None,
    };
    let mut have_script = false;
    for child in block {
        let loc = child.loc.clone();
        match child.keyword.as_str() {
            "script" => {
                have_script = true;
                let words = match script::line_words(&child.raw) {
                    Ok(words) => words,
                    Err(e) => {
                        ctx.log.error(&loc, format!("script: {e}"));
                        continue;
                    }
                };
                match words.first() {
                    Some(cmd) => def.command = command_value(cmd, child, ctx),
                    None => ctx.log.error(&loc, "script: needs a command"),
                }
            }
            "interval" => def.interval = timer(child, ctx).map(|d| (d, loc)),
            "timeout" => def.timeout = timer(child, ctx).map(|d| (d, loc)),
            "weight" => {
                if let Some((w, reverse)) = weight(child, 253, &loc, ctx) {
                    def.weight = w;
                    def.reverse |= reverse;
                }
            }
            "rise" => {
                def.rise = count(child, ctx)
                    .filter(|n| positive(*n, child, ctx))
                    .map(|n| (n, loc))
            }
            "fall" => {
                def.fall = count(child, ctx)
                    .filter(|n| positive(*n, child, ctx))
                    .map(|n| (n, loc))
            }
            "init_fail" => def.init_fail = true,
            "user" => match child.arg(0) {
                Some(user) => {
                    if let Some(group) = child.arg(1) {
                        ctx.log.left_out(
                            &loc,
                            "user",
                            format!(
                                "group {group}: vipd runs scripts with the script user's primary group"
                            ),
                        );
                    }
                    def.user = Some((user.to_owned(), loc));
                }
                None => ctx.log.error(&loc, "user: needs a user name"),
            },
            other => ctx.log.left_out(&loc, other, "unknown keepalived keyword"),
        }
    }
    if !have_script {
        ctx.log.note(
            &node.loc,
            "vrrp_script",
            format!("{name} has no script line, so keepalived removes it; so does the import"),
        );
    }
    if let Some(previous) = defs.scripts.get(name) {
        ctx.log.note(
            &node.loc,
            "vrrp_script",
            format!(
                "{name} is already defined at {}; keepalived keeps both, instances find the \
                 first",
                previous.loc
            ),
        );
        return;
    }
    defs.scripts.insert(name.to_owned(), def);
}

fn positive(n: u32, node: &Node, ctx: &mut Ctx<'_>) -> bool {
    if n == 0 {
        ctx.log
            .error(&node.loc, format!("{}: must be at least 1", node.keyword));
    }
    n > 0
}

pub(crate) fn track_file_def(
    node: &Node,
    block: &[Node],
    index: usize,
    defs: &mut Defs,
    ctx: &mut Ctx<'_>,
) {
    let Some(name) = node.arg(0) else {
        return ctx
            .log
            .error(&node.loc, format!("{}: needs a name", node.keyword));
    };
    if node.keyword == "vrrp_track_file" {
        ctx.log.note(
            &node.loc,
            "vrrp_track_file",
            "deprecated synonym of track_file; read as one",
        );
    }
    let mut def = TrackFileDef {
        loc: node.loc.clone(),
        index,
        path: None,
        weight: 1,
        reverse: false,
    };
    for child in block {
        let loc = child.loc.clone();
        match child.keyword.as_str() {
            "file" => match child.arg(0) {
                Some(path) => def.path = Some(resolve_path(path, &loc, "file", ctx)),
                None => ctx.log.error(&loc, "file: needs a path"),
            },
            "weight" => {
                if let Some((w, reverse)) = weight(child, 254, &loc, ctx) {
                    def.weight = w;
                    def.reverse |= reverse;
                }
            }
            "init_file" => {
                let mut value = 0i64;
                let mut overwrite = false;
                for word in &child.args {
                    if word.text == "overwrite" {
                        overwrite = true;
                    } else if let Some(v) =
                        int_in(&word.text, i64::from(i32::MIN)..=i64::from(i32::MAX))
                    {
                        value = v;
                    } else {
                        ctx.log.error(
                            &loc,
                            format!(
                                "init_file: expected [VALUE] [overwrite], found {:?}",
                                word.text
                            ),
                        );
                    }
                }
                if value == 0 && !overwrite {
                    ctx.log.note(
                        &loc,
                        "init_file",
                        "keepalived creates a missing file holding 0; vipd reads a missing file \
                         as 0, which sets the same priority",
                    );
                } else {
                    ctx.log.left_out(
                        &loc,
                        "init_file",
                        format!(
                            "vipd never writes the file; write {value} to it at boot (e.g. with a \
                             systemd-tmpfiles rule) if the value matters before anything else \
                             writes it"
                        ),
                    );
                }
            }
            other => ctx.log.left_out(&loc, other, "unknown keepalived keyword"),
        }
    }
    if def.path.is_none() {
        ctx.log
            .error(&node.loc, format!("{}: {name} has no file", node.keyword));
        return;
    }
    defs.track_files.entry(name.to_owned()).or_insert(def);
}

/// A path written in a file: made absolute against that file's directory.
fn resolve_path(path: &str, loc: &Loc, keyword: &str, ctx: &mut Ctx<'_>) -> String {
    if path.starts_with('/') {
        return path.to_owned();
    }
    let full = normalize(&ctx.dir_of(loc).join(path));
    let shown = full.display().to_string();
    ctx.log.note(
        loc,
        keyword,
        format!("{path} is relative to the directory of the file it is written in: {shown}"),
    );
    shown
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A keepalived command string as a vipd COMMAND; `None` when it cannot be carried over
/// (reported as left out).
pub(crate) fn command_value(command: &str, node: &Node, ctx: &mut Ctx<'_>) -> Option<Value> {
    let keyword = node.keyword.as_str();
    let split = match script::argv(command) {
        Ok(split) => split,
        Err(e) => {
            ctx.log.error(&node.loc, format!("{keyword}: {e}"));
            return None;
        }
    };
    let mut argv = split.argv;
    if argv.is_empty() {
        ctx.log
            .error(&node.loc, format!("{keyword}: the command is empty"));
        return None;
    }
    if split.needs_shell {
        ctx.log.note(
            &node.loc,
            keyword,
            format!(
                "{command:?} uses shell syntax, which vipd (like keepalived 2.x) does not \
                 interpret itself: it is run as {SHELL} -c; check it does what you meant"
            ),
        );
        argv = vec![SHELL.to_owned(), "-c".to_owned(), command.to_owned()];
    } else if !argv[0].contains('/') {
        let name = argv[0].clone();
        let found = PATH
            .iter()
            .map(|dir| format!("{dir}/{name}"))
            .find(|p| ctx.host.lstat(Path::new(p)).is_ok());
        match found {
            Some(path) => {
                ctx.log.note(
                    &node.loc,
                    keyword,
                    format!(
                        "{name} has no directory: keepalived finds it by path search, which \
                         finds {path} here; vipd wants the absolute path"
                    ),
                );
                argv[0] = path;
            }
            None => {
                ctx.log.left_out(
                    &node.loc,
                    keyword,
                    format!(
                        "{name} has no directory and is not in {} on this host: write its \
                         absolute path and import again",
                        PATH.join(":")
                    ),
                );
                return None;
            }
        }
    } else if !argv[0].starts_with('/') {
        argv[0] = resolve_path(&argv[0].clone(), &node.loc, keyword, ctx);
    }
    // vipd reads a string as a bare program path: one with blanks must be an array.
    Some(
        if argv.len() == 1 && !argv[0].chars().any(char::is_whitespace) {
            Value::str(argv.remove(0))
        } else {
            Value::strs(&argv)
        },
    )
}

/// The vipd key of a notify keyword.
pub(crate) fn notify_key(keyword: &str) -> &'static str {
    match keyword {
        "notify_master" => "notify_master",
        "notify_backup" => "notify_backup",
        "notify_fault" => "notify_fault",
        "notify_stop" => "notify_stop",
        _ => "notify",
    }
}

/// A notify hook: `KEYWORD COMMAND [USER [GROUP]]`.
pub(crate) fn hook(node: &Node, script_user: Option<&str>, ctx: &mut Ctx<'_>) -> Option<Value> {
    let words = match script::line_words(&node.raw) {
        Ok(words) => words,
        Err(e) => {
            ctx.log.error(&node.loc, format!("{}: {e}", node.keyword));
            return None;
        }
    };
    let Some(command) = words.first() else {
        ctx.log
            .error(&node.loc, format!("{}: needs a command", node.keyword));
        return None;
    };
    let value = command_value(command, node, ctx)?;
    if let Some(user) = words.get(1) {
        run_as(
            user,
            words.get(2).map(String::as_str),
            script_user,
            &node.loc,
            &node.keyword,
            ctx,
        );
    }
    Some(value)
}

/// Reports a script's own user when it is not the one vipd runs every script as.
pub(crate) fn run_as(
    user: &str,
    group: Option<&str>,
    script_user: Option<&str>,
    loc: &Loc,
    keyword: &str,
    ctx: &mut Ctx<'_>,
) {
    let vipd_user = script_user.unwrap_or("root");
    if user != vipd_user {
        ctx.log.left_out(
            loc,
            keyword,
            format!(
                "runs as {user} in keepalived; vipd runs every script and hook as \
                 global.script_user ({vipd_user})"
            ),
        );
    } else if let Some(group) = group {
        ctx.log.left_out(
            loc,
            keyword,
            format!("group {group}: vipd runs scripts with the script user's primary group"),
        );
    }
}

/// One line of a `track_interface` block.
#[derive(Debug, Clone)]
pub(crate) struct TrackIf {
    pub(crate) name: String,
    pub(crate) weight: i64,
    pub(crate) reverse: bool,
    pub(crate) loc: Loc,
}

/// One line of a `track_script` or `track_file` block: the weight and reverse written
/// there, if any, override the definition's.
#[derive(Debug, Clone)]
pub(crate) struct TrackRef {
    pub(crate) name: String,
    pub(crate) weight: Option<i64>,
    pub(crate) reverse: Option<bool>,
    pub(crate) loc: Loc,
}

/// `NAME [weight W [reverse|noreverse]]` lines; `noreverse` only where `allow_no`.
fn weighted_lines(
    node: &Node,
    allow_no: bool,
    ctx: &mut Ctx<'_>,
) -> Vec<(String, Option<i64>, Option<bool>, Loc)> {
    let mut out = Vec::new();
    for line in node.children() {
        let loc = line.loc.clone();
        let mut weight = None;
        let mut reverse = None;
        match line.arg(0) {
            None => {}
            Some("weight") => match line.arg(1).and_then(|a| int_in(a, -254..=254)) {
                Some(w) => {
                    weight = Some(w);
                    match line.arg(2) {
                        None => {}
                        Some("reverse") => reverse = Some(true),
                        Some("noreverse") if allow_no => reverse = Some(false),
                        Some(other) => {
                            ctx.log.error(
                                &loc,
                                format!("{}: unknown weight option {other:?}", node.keyword),
                            );
                            continue;
                        }
                    }
                }
                None => {
                    ctx.log.error(
                        &loc,
                        format!(
                            "{}: {}: weight must be a whole number in -254..=254, found {:?}",
                            node.keyword,
                            line.keyword,
                            line.arg(1).unwrap_or("")
                        ),
                    );
                    continue;
                }
            },
            Some(other) => {
                ctx.log.error(
                    &loc,
                    format!(
                        "{}: {}: unknown option {other:?} (expected `weight N`)",
                        node.keyword, line.keyword
                    ),
                );
                continue;
            }
        }
        out.push((line.keyword.clone(), weight, reverse, loc));
    }
    if node.block.is_none() {
        ctx.log.error(
            &node.loc,
            format!("{}: expected '{{' after it", node.keyword),
        );
    }
    out
}

pub(crate) fn track_interfaces(node: &Node, ctx: &mut Ctx<'_>) -> Vec<TrackIf> {
    weighted_lines(node, false, ctx)
        .into_iter()
        .map(|(name, weight, reverse, loc)| {
            // keepalived reads ±254 and uses ±253.
            let weight = weight.unwrap_or(0).clamp(-253, 253);
            TrackIf {
                name,
                weight,
                reverse: reverse.unwrap_or(false),
                loc,
            }
        })
        .collect()
}

pub(crate) fn track_refs(node: &Node, ctx: &mut Ctx<'_>) -> Vec<TrackRef> {
    let scripts = node.keyword == "track_script";
    weighted_lines(node, true, ctx)
        .into_iter()
        .map(|(name, weight, reverse, loc)| TrackRef {
            name,
            weight: if scripts {
                weight.map(|w| w.clamp(-253, 253))
            } else {
                weight
            },
            reverse,
            loc,
        })
        .collect()
}

/// Settles a script's command, interval, timeout, rise and fall once, reporting what
/// changes; instances then only add their weight.
pub(crate) fn prepare_script(def: &mut ScriptDef, script_user: Option<&str>, ctx: &mut Ctx<'_>) {
    if let Some((user, loc)) = def.user.clone() {
        run_as(&user, None, script_user, &loc, "user", ctx);
    }
    let Some(command) = def.command.clone() else {
        return;
    };
    let (interval, interval_loc) = match &def.interval {
        Some((d, loc)) => (*d, Some(loc.clone())),
        None => (SCRIPT_INTERVAL, None),
    };
    let interval = if interval < MIN_INTERVAL || interval > MAX_INTERVAL {
        let fixed = interval.clamp(MIN_INTERVAL, MAX_INTERVAL);
        let loc = interval_loc.clone().unwrap_or_else(|| def.loc.clone());
        ctx.log.left_out(
            &loc,
            "interval",
            format!(
                "{} is outside vipd's 100ms..=1h: written as {}",
                duration(interval),
                duration(fixed)
            ),
        );
        fixed
    } else {
        interval
    };
    let longest = interval.saturating_sub(TIMEOUT_MARGIN);
    let timeout = match &def.timeout {
        Some((t, loc)) if *t >= interval => {
            ctx.log.left_out(
                loc,
                "timeout",
                format!(
                    "{} is not shorter than the interval {}, which vipd requires (runs never \
                     overlap): written as {}",
                    duration(*t),
                    duration(interval),
                    duration(longest)
                ),
            );
            longest
        }
        Some((t, _)) => (*t).max(TIMEOUT_MARGIN),
        None => {
            ctx.log.note(
                &def.loc,
                "timeout",
                format!(
                    "not set, so keepalived kills the script after its interval ({}); vipd \
                     needs a timeout shorter than the interval: written as {}",
                    duration(interval),
                    duration(longest)
                ),
            );
            longest
        }
    };
    let mut clamp = |v: Option<(u32, Loc)>, key: &str| -> i64 {
        match v {
            Some((n, loc)) if n > MAX_RISE_FALL => {
                ctx.log.left_out(
                    &loc,
                    key,
                    format!("{n} is more than vipd's {MAX_RISE_FALL}: written as {MAX_RISE_FALL}"),
                );
                i64::from(MAX_RISE_FALL)
            }
            Some((n, _)) => i64::from(n),
            None => 1,
        }
    };
    let rise = clamp(def.rise.clone(), "rise");
    let fall = clamp(def.fall.clone(), "fall");
    def.prepared = Some(Prepared {
        command,
        interval,
        timeout,
        rise,
        fall,
    });
}

/// What every instance tracking a script shares.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    command: Value,
    interval: Duration,
    timeout: Duration,
    rise: i64,
    fall: i64,
}

/// A `track_scripts` entry with the instance's weight; `None` for a script left out.
pub(crate) fn script_entry(def: &ScriptDef, weight: i64, reverse: bool) -> Option<Value> {
    let p = def.prepared.as_ref()?;
    let mut pairs = vec![
        ("command".to_owned(), p.command.clone()),
        ("interval".to_owned(), Value::duration(p.interval)),
        ("timeout".to_owned(), Value::duration(p.timeout)),
        ("weight".to_owned(), Value::Int(weight)),
        ("rise".to_owned(), Value::Int(p.rise)),
        ("fall".to_owned(), Value::Int(p.fall)),
    ];
    if reverse {
        pairs.push(("reverse".to_owned(), Value::Bool(true)));
    }
    if def.init_fail {
        pairs.push(("init_fail".to_owned(), Value::Bool(true)));
    }
    Some(Value::Inline(pairs))
}

/// A `vrrp_track_process` as read, with keepalived's defaults (quorum 1, no upper
/// bound, weight 0, no delays).
#[derive(Debug, Clone)]
pub(crate) struct TrackProcessDef {
    pub(crate) loc: Loc,
    pub(crate) index: usize,
    /// The process and its parameters (`process NAME [PARAM ...]`).
    pub(crate) process: Option<(String, Vec<String>, Loc)>,
    /// keepalived's `param_match`: "exact", "partial" or "initial".
    pub(crate) param_match: Option<&'static str>,
    pub(crate) full_command: bool,
    pub(crate) quorum: u32,
    pub(crate) quorum_max: Option<u32>,
    pub(crate) weight: i64,
    pub(crate) reverse: bool,
    pub(crate) fork_delay: Option<Duration>,
    pub(crate) terminate_delay: Option<Duration>,
}

/// keepalived's largest delay, 3600 s.
const MAX_PROCESS_DELAY: Duration = Duration::from_secs(3600);

/// Reads a `vrrp_track_process` block, keyword by keyword as keepalived does (a later
/// keyword sees what the earlier ones set: `quorum` against the `quorum_max` before it).
pub(crate) fn track_process_def(
    node: &Node,
    block: &[Node],
    index: usize,
    defs: &mut Defs,
    ctx: &mut Ctx<'_>,
) {
    let Some(name) = node.arg(0) else {
        return ctx.log.error(&node.loc, "vrrp_track_process: needs a name");
    };
    let mut def = TrackProcessDef {
        loc: node.loc.clone(),
        index,
        process: None,
        param_match: None,
        full_command: false,
        quorum: 1,
        quorum_max: None,
        weight: 0,
        reverse: false,
        fork_delay: None,
        terminate_delay: None,
    };
    for child in block {
        let loc = child.loc.clone();
        match child.keyword.as_str() {
            "process" => {
                if def.process.is_some() {
                    ctx.log.note(
                        &loc,
                        "process",
                        "the process is already set; keepalived ignores this one, so does the \
                         import",
                    );
                    continue;
                }
                let mut words = child.args.iter().map(|w| w.text.clone());
                let Some(path) = words.next() else {
                    ctx.log.error(&loc, "process: needs a process name");
                    continue;
                };
                let params: Vec<String> = words.collect();
                if !params.is_empty() {
                    // Parameters match the command line, exactly unless param_match said
                    // otherwise.
                    def.param_match.get_or_insert("exact");
                    def.full_command = true;
                }
                def.process = Some((path, params, loc));
            }
            "param_match" => {
                def.param_match = match child.arg(0) {
                    None => Some("exact"),
                    Some("initial") => Some("initial"),
                    Some("partial") => Some("partial"),
                    Some(other) => {
                        ctx.log.error(
                            &loc,
                            format!(
                                "param_match: expected nothing, initial or partial, found {other:?}"
                            ),
                        );
                        continue;
                    }
                };
                def.full_command = true;
            }
            "full_command" => def.full_command = true,
            "weight" => {
                if def.weight != 0 {
                    ctx.log.note(
                        &loc,
                        "weight",
                        "a weight is already set; keepalived ignores this one, so does the \
                         import",
                    );
                    continue;
                }
                {
                    if let Some((w, reverse)) = weight(child, 254, &loc, ctx) {
                        def.weight = w;
                        def.reverse |= reverse;
                    }
                }
            }
            "quorum" => match child.arg(0).and_then(|a| int_in(a, 1..=65535)) {
                Some(q) if def.quorum_max.is_some_and(|m| q as u32 > m) => ctx.log.note(
                    &loc,
                    "quorum",
                    format!(
                        "{q} is greater than the quorum_max before it; keepalived ignores it, so \
                         does the import"
                    ),
                ),
                Some(q) => def.quorum = q as u32,
                None => ctx.log.error(
                    &loc,
                    format!(
                        "quorum: expected a whole number in 1..=65535, found {:?}",
                        child.arg(0).unwrap_or("")
                    ),
                ),
            },
            "quorum_max" => match child.arg(0).and_then(|a| int_in(a, 0..=65535)) {
                Some(m) => {
                    let m = m as u32;
                    if (m > 0 || def.quorum > 1) && m < def.quorum {
                        ctx.log.note(
                            &loc,
                            "quorum_max",
                            format!(
                                "{m} is less than the quorum before it; keepalived ignores it, \
                                 so does the import"
                            ),
                        );
                        continue;
                    }
                    def.quorum_max = Some(m);
                    if m == 0 {
                        def.quorum = 0;
                    } else if def.quorum == 0 {
                        def.quorum = 1;
                    }
                }
                None => ctx.log.error(
                    &loc,
                    format!(
                        "quorum_max: expected a whole number in 0..=65535, found {:?}",
                        child.arg(0).unwrap_or("")
                    ),
                ),
            },
            k @ ("delay" | "fork_delay" | "terminate_delay") => {
                let Some(d) = child
                    .arg(0)
                    .and_then(super::values::seconds)
                    .filter(|d| !d.is_zero() && *d <= MAX_PROCESS_DELAY)
                else {
                    ctx.log.error(
                        &loc,
                        format!(
                            "{k}: expected seconds in 0.000001..=3600, found {:?}",
                            child.arg(0).unwrap_or("")
                        ),
                    );
                    continue;
                };
                // keepalived keeps microseconds.
                let d = Duration::from_micros(d.as_micros() as u64);
                if k != "fork_delay" {
                    def.terminate_delay = Some(d);
                }
                if k != "terminate_delay" {
                    def.fork_delay = Some(d);
                }
            }
            other => ctx.log.left_out(&loc, other, "unknown keepalived keyword"),
        }
    }
    let Some((path, _, ploc)) = &def.process else {
        ctx.log.error(
            &node.loc,
            format!("vrrp_track_process: {name} has no process"),
        );
        return;
    };
    if !def.full_command && path.len() > crate::config::COMM_MAX {
        ctx.log.left_out(
            ploc,
            "process",
            format!(
                "{path:?} is longer than the {} bytes the kernel keeps of a process name, so \
                 keepalived never counts one (its quorum never holds); give full_command to \
                 match the command line",
                crate::config::COMM_MAX
            ),
        );
        return;
    }
    defs.track_processes.entry(name.to_owned()).or_insert(def);
}

/// The `track_processes` entry of a process with the weight and reverse an instance
/// gives it.
pub(crate) fn process_entry(def: &TrackProcessDef, weight: i64, reverse: bool) -> Option<Value> {
    let (path, params, _) = def.process.as_ref()?;
    let mut pairs = vec![("name".to_owned(), Value::str(path))];
    if !params.is_empty() {
        pairs.push(("args".into(), Value::strs(params)));
    }
    match (def.param_match, params.is_empty()) {
        // Implied by args.
        (Some("exact"), false) => {}
        (Some(how), _) => pairs.push(("param_match".into(), Value::str(how))),
        (None, _) if def.full_command => pairs.push(("full_command".into(), Value::Bool(true))),
        (None, _) => {}
    }
    if def.quorum != 1 && def.quorum_max != Some(0) {
        pairs.push(("quorum".into(), Value::Int(i64::from(def.quorum))));
    }
    if let Some(m) = def.quorum_max {
        pairs.push(("quorum_max".into(), Value::Int(i64::from(m))));
    }
    pairs.push(("weight".into(), Value::Int(weight)));
    if reverse {
        pairs.push(("reverse".into(), Value::Bool(true)));
    }
    if let Some(d) = def.fork_delay {
        pairs.push(("fork_delay".into(), Value::duration(d)));
    }
    if let Some(d) = def.terminate_delay {
        pairs.push(("terminate_delay".into(), Value::duration(d)));
    }
    Some(Value::Inline(pairs))
}

/// `weight W [reverse]` of a tracker, W in -`max`..=`max`: the weight, and whether
/// `reverse` follows it. An unknown option is reported at `loc` and the weight kept; a
/// weight out of range is reported and `None`.
fn weight(child: &Node, max: i64, loc: &Loc, ctx: &mut Ctx<'_>) -> Option<(i64, bool)> {
    let Some(w) = child.arg(0).and_then(|a| int_in(a, -max..=max)) else {
        ctx.log.error(
            loc,
            format!(
                "weight: expected a whole number in -{max}..={max}, found {:?}",
                child.arg(0).unwrap_or("")
            ),
        );
        return None;
    };
    let reverse = match child.arg(1) {
        None => false,
        Some("reverse") => true,
        Some(other) => {
            ctx.log.error(
                loc,
                format!("weight: unknown option {other:?} (only `reverse`)"),
            );
            false
        }
    };
    Some((w, reverse))
}
