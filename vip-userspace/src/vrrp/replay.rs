//! Conformance replays: recorded input streams with the outputs they must produce, one
//! scenario per file pair in `vip-userspace/tests/conformance/` (`NAME.toml`, a vipd
//! configuration, and `NAME.jsonl`, the stream), replayed through [`Node`] on a virtual
//! clock in milliseconds.
//!
//! The stream is JSON lines:
//! - the first line is `{"setup": {"interfaces": {"eth0": 2}, "src": {"gw": "192.0.2.11"},
//!   "clock_lag_us": 0, "takeover_guard_us": 1500}}`: interface indexes and each
//!   instance's advertisement source, what the daemon would have resolved;
//! - `{"t": MS, "in": INPUT}` feeds an input at MS (timers due before it fire first, at
//!   their own time);
//! - `{"t": MS, "out": OUTPUT}` is an output expected at MS, in order, after the input (or
//!   timer) that produced it;
//! - lines starting with `#` are comments.
//!
//! A mismatch fails with both streams side by side. `VIPD_BLESS=1 cargo test replay`
//! rewrites the outputs from what the code does now, for review in the diff.
//!
//! When a lab test finds a bug, the events it led to become a scenario here.

use std::{
    collections::HashMap,
    fmt::Write as _,
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::{Value, json};

use super::{
    group::{Input, MemberSetup, Output, Params},
    node::{GroupId, GroupSetup, Launch, Node, desired_groups},
    packet::{Advert, Auth},
    timing::{Interval, Time},
    tracking::TrackItem,
};
use crate::config::Config;

pub(super) fn ms(t: Time) -> f64 {
    t.as_duration().as_nanos() as f64 / 1e6
}

/// One stream line, `t` first so the file reads in time order.
pub(super) fn line(t: f64, kind: &str, v: &Value) -> String {
    let t = if t.fract() == 0.0 && t.abs() < 1e15 {
        format!("{}", t as i64)
    } else {
        format!("{t}")
    };
    format!("{{\"t\":{t},\"{kind}\":{v}}}")
}

pub(super) fn at(ms: f64) -> Time {
    Time::from_duration(Duration::from_nanos((ms * 1e6).round() as u64))
}

struct Driver {
    dir: PathBuf,
    node: Node,
    ifindex: HashMap<String, u32>,
    src: HashMap<String, IpAddr>,
    /// Names of groups and their members, kept after a group stops.
    names: HashMap<GroupId, (String, Vec<String>)>,
    config: Config,
    now: Time,
    /// The configuration's start-up delay at the first start, zero on reloads.
    startup_delay: Duration,
}

pub(super) type Res<T> = Result<T, String>;

pub(super) fn field<'a>(v: &'a Value, key: &str) -> Res<&'a Value> {
    v.get(key)
        .ok_or_else(|| format!("missing \"{key}\" in {v}"))
}

pub(super) fn str_of<'a>(v: &'a Value, key: &str) -> Res<&'a str> {
    field(v, key)?
        .as_str()
        .ok_or_else(|| format!("\"{key}\" is not a string in {v}"))
}

pub(super) fn u64_of(v: &Value, key: &str) -> Res<u64> {
    field(v, key)?
        .as_u64()
        .ok_or_else(|| format!("\"{key}\" is not a number in {v}"))
}

fn ip_of(v: &Value, key: &str) -> Res<IpAddr> {
    str_of(v, key)?
        .parse()
        .map_err(|e| format!("\"{key}\": {e} in {v}"))
}

impl Driver {
    fn new(dir: &Path, config_file: &str, setup: &Value) -> Res<Driver> {
        let config = load(dir, config_file)?;
        let ifindex = field(setup, "interfaces")?
            .as_object()
            .ok_or("\"interfaces\" is not an object")?
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.as_u64().ok_or("ifindex")? as u32)))
            .collect::<Res<_>>()?;
        let src = field(setup, "src")?
            .as_object()
            .ok_or("\"src\" is not an object")?
            .iter()
            .map(|(k, v)| {
                let a = v.as_str().ok_or("src address")?;
                Ok((k.clone(), a.parse().map_err(|e| format!("{a}: {e}"))?))
            })
            .collect::<Res<_>>()?;
        let us = |key: &str| setup.get(key).and_then(Value::as_u64).unwrap_or(0);
        let params = Params {
            clock_lag: Duration::from_micros(us("clock_lag_us")),
            takeover_guard: Duration::from_micros(us("takeover_guard_us")),
        };
        Ok(Driver {
            dir: dir.to_owned(),
            node: Node::new(params),
            ifindex,
            src,
            names: HashMap::new(),
            startup_delay: config.global.startup_delay,
            config,
            now: Time::ZERO,
        })
    }

    fn setup(&self, key: String, members: Vec<crate::config::Instance>) -> Res<GroupSetup> {
        let mut ifindexes = Vec::new();
        let mut setups = Vec::new();
        for cfg in members {
            ifindexes.push(
                *self
                    .ifindex
                    .get(&cfg.interface)
                    .ok_or_else(|| format!("setup has no ifindex for {}", cfg.interface))?,
            );
            let src = *self
                .src
                .get(&cfg.name)
                .ok_or_else(|| format!("setup has no src for {}", cfg.name))?;
            setups.push(MemberSetup { cfg, src });
        }
        Ok(GroupSetup {
            key,
            members: setups,
            ifindexes,
        })
    }

    fn launch(
        &mut self,
        key: String,
        members: Vec<crate::config::Instance>,
        resume: bool,
        out: &mut Vec<String>,
    ) -> Res<()> {
        let setup = self.setup(key.clone(), members)?;
        let names = setup.members.iter().map(|m| m.cfg.name.clone()).collect();
        let launch = Launch {
            setup,
            initial: Vec::new(),
            resume,
            delay: if resume {
                Duration::ZERO
            } else {
                self.startup_delay
            },
        };
        let (id, outputs) = self
            .node
            .launch(self.now, launch)
            .map_err(|e| format!("group {key}: {e}"))?;
        self.names.insert(id, (key, names));
        self.record(outputs, out);
        Ok(())
    }

    fn record(&self, outputs: Vec<(GroupId, Output)>, out: &mut Vec<String>) {
        for (id, o) in outputs {
            out.push(line(ms(self.now), "out", &self.describe(id, &o)));
        }
    }

    fn describe(&self, id: GroupId, o: &Output) -> Value {
        let (group, members) = self
            .names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| (format!("#{id}"), Vec::new()));
        let name = |i: usize| members.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
        match o {
            Output::Own {
                until,
                yield_above,
                resigning,
            } => json!({"own": {"group": group, "until": ms(*until),
                "yield_above": yield_above, "resigning": resigning}}),
            Output::Release => json!({"release": {"group": group}}),
            Output::Advert { member, priority } => {
                json!({"advert": {"instance": name(*member), "priority": priority}})
            }
            Output::Announce { member, vip } => json!({"announce": {"instance": name(*member),
                "vip": vip.map_or("all".to_owned(), |v| v.to_string())}}),
            Output::Install { member, present } => {
                json!({"install": {"instance": name(*member), "present": present}})
            }
            Output::Transition {
                member,
                from,
                to,
                priority,
                reason,
            } => json!({"transition": {"instance": name(*member), "from": from.to_string(),
                "to": to.to_string(), "priority": priority, "reason": reason.to_string()}}),
            Output::Rejected {
                member,
                src,
                reason,
            } => json!({"rejected": {"instance": name(*member), "src": src.to_string(),
                "reason": reason.label()}}),
            Output::HandoverDone { successor } => json!({"handover_done": {"group": group,
                "successor": successor.map(|s| s.to_string())}}),
            Output::SyncTransition { to } => {
                json!({"sync_transition": {"group": group, "to": to.to_string()}})
            }
            Output::Probe { member, priority } => {
                json!({"probe": {"instance": name(*member), "priority": priority}})
            }
        }
    }

    /// Fires every timer due up to `t`, each at its own time.
    fn advance(&mut self, t: Time, out: &mut Vec<String>) {
        while let Some(d) = self.node.poll_at() {
            if d > t {
                break;
            }
            self.now = self.now.max(d);
            let outputs = self.node.poll(self.now);
            self.record(outputs, out);
        }
        self.now = self.now.max(t);
    }

    fn group_of(&self, instance: &str) -> Res<(GroupId, usize)> {
        self.node
            .groups()
            .find_map(|(id, e)| {
                e.group
                    .members()
                    .iter()
                    .position(|m| m.cfg.name == instance)
                    .map(|i| (id, i))
            })
            .ok_or_else(|| format!("no running instance {instance}"))
    }

    fn input(&mut self, input: &Value, out: &mut Vec<String>) -> Res<()> {
        let (kind, v) = input
            .as_object()
            .and_then(|o| o.iter().next())
            .ok_or_else(|| format!("an input is an object with one key: {input}"))?;
        let now = self.now;
        let outputs = match kind.as_str() {
            "start" => {
                let resume = v.get("resume").and_then(Value::as_bool).unwrap_or(false);
                self.node.set_link_delays(link_delays(&self.config));
                for (key, members) in desired_groups(&self.config) {
                    self.launch(key, members, resume, out)?;
                }
                self.startup_delay = Duration::ZERO;
                Vec::new()
            }
            "advert" => {
                let ifindex = *self
                    .ifindex
                    .get(str_of(v, "iface")?)
                    .ok_or("unknown iface")?;
                let src = ip_of(v, "src")?;
                let ttl = v.get("ttl").and_then(Value::as_u64).unwrap_or(255) as u8;
                let advert = advert(v)?;
                self.node.advert(now, ifindex, src, ttl, advert)
            }
            "track" => {
                let (id, member) = self.group_of(str_of(v, "instance")?)?;
                let item = if let Some(i) = v.get("script") {
                    TrackItem::Script {
                        index: i.as_u64().ok_or("script index")? as usize,
                        ok: field(v, "ok")?.as_bool().ok_or("ok")?,
                    }
                } else {
                    TrackItem::File {
                        index: u64_of(v, "file")? as usize,
                        value: field(v, "value")?.as_i64(),
                    }
                };
                self.node.handle(now, id, Input::Track { member, item })
            }
            "link" => {
                let up = field(v, "up")?.as_bool().ok_or("up")?;
                self.node.link(now, str_of(v, "name")?, up)
            }
            "conflict" => self.node.conflict(now, ip_of(v, "vip")?),
            "released" => {
                let (id, member) = self.group_of(str_of(v, "instance")?)?;
                let vrid = self
                    .node
                    .get(id)
                    .and_then(|e| e.group.members().get(member))
                    .map(|m| m.cfg.vrid)
                    .ok_or("member")?;
                let input = Input::Released {
                    vrid,
                    src: ip_of(v, "src")?,
                    priority: u64_of(v, "priority")? as u8,
                    interval: interval(v)?,
                };
                self.node.handle(now, id, input)
            }
            "shutdown" => self.node.handle_all(now, Input::Shutdown),
            "reload" => {
                let new = load(&self.dir, str_of(v, "config")?)?;
                let plan = self.node.plan(desired_groups(&new));
                let keys = |ids: &[GroupId]| -> Vec<String> {
                    ids.iter()
                        .filter_map(|id| self.names.get(id).map(|(k, _)| k.clone()))
                        .collect()
                };
                let started: Vec<&String> = plan.start.iter().map(|(k, _)| k).collect();
                let plan_v = json!({"plan": {"keep": keys(&plan.keep),
                    "stop": keys(&plan.stop), "start": started}});
                out.push(line(ms(now), "out", &plan_v));
                for id in plan.stop {
                    if let Some((_, outputs)) = self.node.stop(now, id) {
                        self.record(outputs, out);
                    }
                }
                self.node.set_link_delays(link_delays(&new));
                for (key, members) in plan.start {
                    self.launch(key, members, false, out)?;
                }
                self.config = new;
                Vec::new()
            }
            "advance" => Vec::new(),
            other => return Err(format!("unknown input {other}")),
        };
        self.record(outputs, out);
        Ok(())
    }
}

fn link_delays(c: &Config) -> HashMap<String, (Duration, Duration)> {
    c.interfaces
        .iter()
        .map(|(n, o)| (n.clone(), (o.up_delay, o.down_delay)))
        .collect()
}

fn interval(v: &Value) -> Res<Interval> {
    let ms = v.get("interval_ms").and_then(Value::as_u64).unwrap_or(1000);
    Interval::from_centis((ms / 10) as u16).ok_or_else(|| format!("interval {ms} ms"))
}

fn advert(v: &Value) -> Res<Advert> {
    let vrid = u64_of(v, "vrid")? as u8;
    let priority = u64_of(v, "priority")? as u8;
    let interval = interval(v)?;
    let addresses = match v.get("addresses") {
        Some(a) => a
            .as_array()
            .ok_or("addresses")?
            .iter()
            .map(|x| {
                x.as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("address {x}"))
            })
            .collect::<Res<Vec<IpAddr>>>()?,
        None => Vec::new(),
    };
    Ok(
        match v.get("version").and_then(Value::as_u64).unwrap_or(3) {
            2 => {
                let auth = match v.get("auth").and_then(Value::as_str) {
                    Some(p) => Auth::simple_text(p.as_bytes()).map_err(|e| e.to_string())?,
                    None => Auth::NONE,
                };
                Advert::v2(vrid, priority, interval, addresses, auth)
            }
            _ => Advert::v3(vrid, priority, interval, addresses),
        },
    )
}

fn load(dir: &Path, file: &str) -> Res<Config> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Config::parse(&text, file, &crate::config::FakeHost::lab()).map_err(|e| e.to_string())
}

/// A stream being replayed: one per scenario file.
pub(super) trait Stream {
    /// Fires every timer due up to `t`, each at its own time.
    fn advance(&mut self, t: Time, out: &mut Vec<String>);
    /// Feeds one input (the clock is at its time already).
    fn input(&mut self, input: &Value, out: &mut Vec<String>) -> Res<()>;
}

impl Stream for Driver {
    fn advance(&mut self, t: Time, out: &mut Vec<String>) {
        Driver::advance(self, t, out)
    }

    fn input(&mut self, input: &Value, out: &mut Vec<String>) -> Res<()> {
        Driver::input(self, input, out)
    }
}

/// Replays the stream file `path`, its first line the setup given to `make`; returns the
/// stream as the code produces it, ready to compare with (or bless over) the file.
pub(super) fn replay_file(
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
pub(super) type MakeStream<'a> = &'a dyn Fn(&str, &Value) -> Res<Box<dyn Stream>>;

/// Replays every `*.jsonl` of `dir` (or blesses them with `VIPD_BLESS`); returns the
/// scenario names and the failures.
pub(super) fn check_dir(dir: &Path, make: MakeStream<'_>) -> (Vec<String>, Vec<String>) {
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
pub(super) fn normalised(text: &str) -> Vec<String> {
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

pub(super) fn side_by_side(expected: &[String], produced: &[String]) -> String {
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

#[test]
fn conformance_scenarios_replay_exactly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let (names, failures) = check_dir(&dir, &|name, setup| {
        Ok(Box::new(Driver::new(&dir, &format!("{name}.toml"), setup)?))
    });
    assert!(!names.is_empty(), "no scenarios in {}", dir.display());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Every family of input the daemon has is exercised somewhere.
    let all: String = names
        .iter()
        .map(|n| std::fs::read_to_string(dir.join(format!("{n}.jsonl"))).unwrap_or_default())
        .collect();
    for kind in [
        "\"start\"",
        "\"advert\"",
        "\"track\"",
        "\"link\"",
        "\"conflict\"",
        "\"released\"",
        "\"shutdown\"",
        "\"reload\"",
    ] {
        assert!(
            all.contains(&format!("\"in\":{{{kind}")),
            "no scenario feeds {kind}"
        );
    }
}
