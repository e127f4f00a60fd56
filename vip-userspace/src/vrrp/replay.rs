//! Replays of recorded input streams against the outputs they must produce, on a virtual
//! clock in milliseconds: the machinery shared by the node's scenarios
//! (`crate::conformance`, `vip-userspace/tests/conformance/`) and the BFD session's
//! (`super::bfd`, `tests/conformance/bfd/`).
//!
//! A stream is JSON lines:
//! - the first line is `{"setup": ...}`, what the scenario's driver needs to start;
//! - `{"t": MS, "in": INPUT}` feeds an input at MS (timers due before it fire first, at
//!   their own time);
//! - `{"t": MS, "out": OUTPUT}` is an output expected at MS, in order, after the input (or
//!   timer) that produced it;
//! - lines starting with `#` are comments.
//!
//! A mismatch fails with both streams side by side. `VIPD_BLESS=1 cargo test -p
//! vip-userspace conformance` (the node's) or `... bfd_conformance` (the session's)
//! rewrites the outputs from what the code does now, for review in the diff.
//!
//! When a lab test finds a bug, the events it led to become a scenario.

use std::{fmt::Write as _, path::Path, time::Duration};

use serde_json::Value;

use super::timing::Time;

pub(crate) fn ms(t: Time) -> f64 {
    t.as_duration().as_nanos() as f64 / 1e6
}

/// One stream line, `t` first so the file reads in time order.
pub(crate) fn line(t: f64, kind: &str, v: &Value) -> String {
    let t = if t.fract() == 0.0 && t.abs() < 1e15 {
        format!("{}", t as i64)
    } else {
        format!("{t}")
    };
    format!("{{\"t\":{t},\"{kind}\":{v}}}")
}

pub(crate) fn at(ms: f64) -> Time {
    Time::from_duration(Duration::from_nanos((ms * 1e6).round() as u64))
}

pub(crate) type Res<T> = Result<T, String>;

pub(crate) fn field<'a>(v: &'a Value, key: &str) -> Res<&'a Value> {
    v.get(key)
        .ok_or_else(|| format!("missing \"{key}\" in {v}"))
}

pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> Res<&'a str> {
    field(v, key)?
        .as_str()
        .ok_or_else(|| format!("\"{key}\" is not a string in {v}"))
}

pub(crate) fn u64_of(v: &Value, key: &str) -> Res<u64> {
    field(v, key)?
        .as_u64()
        .ok_or_else(|| format!("\"{key}\" is not a number in {v}"))
}

/// A stream being replayed: one per scenario file.
pub(crate) trait Stream {
    /// Fires every timer due up to `t`, each at its own time.
    fn advance(&mut self, t: Time, out: &mut Vec<String>);
    /// Feeds one input (the clock is at its time already).
    fn input(&mut self, input: &Value, out: &mut Vec<String>) -> Res<()>;
}

/// Replays the stream file `path`, its first line the setup given to `make`; returns the
/// stream as the code produces it, ready to compare with (or bless over) the file.
pub(crate) fn replay_file(
    path: &Path,
    make: &dyn Fn(&Value) -> Res<Box<dyn Stream>>,
) -> Res<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines().enumerate();
    let (_, first) = lines.next().ok_or("empty scenario")?;
    let first: Value = serde_json::from_str(first).map_err(|e| format!("line 1: {e}"))?;
    let setup = field(&first, "setup")?;
    let mut d = make(setup).map_err(|e| format!("setup: {e}"))?;
    let mut produced = vec![serde_json::to_string(&first).map_err(|e| e.to_string())?];
    for (n, text) in lines {
        if text.trim().is_empty() {
            continue;
        }
        if text.starts_with('#') {
            produced.push(text.to_owned());
            continue;
        }
        let v: Value = serde_json::from_str(text).map_err(|e| format!("line {}: {e}", n + 1))?;
        if v.get("out").is_some() {
            continue;
        }
        let t = field(&v, "t")
            .and_then(|t| t.as_f64().ok_or_else(|| "t".into()))
            .map_err(|e| format!("line {}: {e}", n + 1))?;
        let input = field(&v, "in").map_err(|e| format!("line {}: {e}", n + 1))?;
        let mut out = Vec::new();
        d.advance(at(t), &mut out);
        produced.append(&mut out);
        produced.push(line(t, "in", input));
        d.input(input, &mut out)
            .map_err(|e| format!("line {}: {e}", n + 1))?;
        produced.append(&mut out);
    }
    Ok(produced)
}

/// Makes the stream of scenario `name` from its setup line.
pub(crate) type MakeStream<'a> = &'a dyn Fn(&str, &Value) -> Res<Box<dyn Stream>>;

/// Replays every `*.jsonl` of `dir` (or blesses them with `VIPD_BLESS`); returns the
/// scenario names and the failures.
pub(crate) fn check_dir(dir: &Path, make: MakeStream<'_>) -> (Vec<String>, Vec<String>) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".jsonl"))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let bless = std::env::var_os("VIPD_BLESS").is_some();
    let mut failures = Vec::new();
    for name in &names {
        let path = dir.join(format!("{name}.jsonl"));
        let produced = match replay_file(&path, &|setup| make(name, setup)) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let expected = normalised(&text);
        if expected != produced {
            if bless {
                std::fs::write(&path, produced.join("\n") + "\n").expect("bless writes");
                eprintln!("blessed {}", path.display());
            } else {
                failures.push(format!(
                    "{name}: the stream differs\n{}",
                    side_by_side(&expected, &produced)
                ));
            }
        }
    }
    (names, failures)
}

/// The file's lines in the form `replay` produces them (JSON re-serialised, so spacing
/// does not matter).
pub(crate) fn normalised(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            if l.starts_with('#') {
                return l.to_owned();
            }
            let Ok(v) = serde_json::from_str::<Value>(l) else {
                return l.to_owned();
            };
            let t = v.get("t").and_then(Value::as_f64);
            match (t, v.get("in"), v.get("out")) {
                (Some(t), Some(i), None) => line(t, "in", i),
                (Some(t), None, Some(o)) => line(t, "out", o),
                _ => v.to_string(),
            }
        })
        .collect()
}

pub(crate) fn side_by_side(expected: &[String], produced: &[String]) -> String {
    let mut s = String::new();
    let n = expected.len().max(produced.len());
    for i in 0..n {
        let e = expected.get(i).map_or("", String::as_str);
        let p = produced.get(i).map_or("", String::as_str);
        let mark = if e == p { ' ' } else { '!' };
        let _ = writeln!(s, "{mark} {:>3} expected: {e}", i + 1);
        if e != p {
            let _ = writeln!(s, "{mark} {:>3} produced: {p}", i + 1);
        }
    }
    s
}
