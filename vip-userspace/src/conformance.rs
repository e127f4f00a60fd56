//! The node's conformance scenarios: one per file pair in
//! `vip-userspace/tests/conformance/` (`NAME.toml`, a vipd configuration, and
//! `NAME.jsonl`, the stream), replayed through `vrrp::node::Node` on a virtual clock in
//! milliseconds with the stream machinery of `vrrp::replay`.
//!
//! This driver plays the daemon's part and nothing more: it reads the configuration as the
//! daemon does (`config::Instance::core` makes the core's instances), asks the core for
//! preparations and plans, and describes every output. The first line of a stream is
//! `{"setup": {"interfaces": {"eth0": 2}, "src": {"gw": "192.0.2.11"}, "clock_lag_us": 0,
//! "takeover_guard_us": 1500}}`: interface indexes and each instance's advertisement
//! source, what the daemon would have resolved. Inputs:
//!
//! - `start` (`resume`): start-up, prepared and committed at once;
//! - `advert`, `track` (`script` and `ok`, `file` and `value`, or `process`, `count` and
//!   `cause`: `scan`, `fork`, `exit`, `renamed`, `rescan`), `link` (with `ifindex`: an
//!   interface seen with that index, which
//!   may ask for a rebuild), `conflict`, `released`, `shutdown`, `bfd` (a session to
//!   `peer` went to or from Up with `diag`), `advance` (timers only);
//! - `carp_advert` (`iface`, `src`, `vhid`, `advbase`, `advskew`, `demote`, `counter`,
//!   `passphrase`, `vips`, `ttl`): a CARP advertisement signed with that passphrase over
//!   those addresses, or with `"digest": "forged"` twenty bytes no key made;
//! - `reload` (`config`): a reload prepared and committed at once (prints the plan: the
//!   groups kept, updated, stopped and started, and what became of each instance);
//! - `request` (`reload`: the file now on disk, or `rebuild`: an interface): asks the core
//!   for a preparation, which runs until `prepared` says it came back;
//! - `demote` / `promote` (`instance`, `sync_group` or `node`, and `by`) and `handover`
//!   (the same targets): the operator's maintenance commands.
//!
//! `VIPD_BLESS=1 cargo test -p vip-userspace conformance` rewrites the outputs from what
//! the code does now, for review in the diff.

use std::{
    collections::HashMap,
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::{Value, json};

use crate::config::{Config, FakeHost, Instance};
use crate::vrrp::{
    Interval,
    bfd::packet::Diag,
    group::{Input, MemberSetup, Output, Params},
    node::{Arriving, GroupId, GroupSetup, Launch, Node, Reshape, Target},
    packet::{Advert, Auth},
    plan::{self, Incoming, Plan, Prepare, Purpose, Verdict, desired_groups, start_delay},
    replay::{Res, Stream, check_dir, field, line, ms, str_of, u64_of},
    timing::Time,
    tracking::{ProcessChange, TrackItem},
};

/// A preparation under way: what the worker made of it, against the groups of its time.
struct Pending {
    prepare: Prepare,
    outcome: Result<(Config, Plan<Instance>), String>,
}

struct Driver {
    dir: PathBuf,
    node: Node,
    ifindex: HashMap<String, u32>,
    src: HashMap<String, IpAddr>,
    /// Names of groups and their members, kept after a group stops.
    names: HashMap<GroupId, (String, Vec<String>)>,
    /// The whole configurations of each running group's members (the daemon plans with
    /// them).
    configs: HashMap<GroupId, (String, Vec<Instance>)>,
    config: Config,
    /// The file a reload reads (the last one a request named).
    on_disk: String,
    pending: Option<Pending>,
    now: Time,
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
            configs: HashMap::new(),
            config,
            on_disk: config_file.to_owned(),
            pending: None,
            now: Time::ZERO,
        })
    }

    fn member_setup(&self, cfg: &Instance) -> Res<MemberSetup> {
        let src = *self
            .src
            .get(&cfg.name)
            .ok_or_else(|| format!("setup has no src for {}", cfg.name))?;
        Ok(MemberSetup {
            cfg: cfg.core(),
            src,
        })
    }

    fn setup(&self, key: String, members: &[Instance]) -> Res<GroupSetup> {
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
            setups.push(MemberSetup {
                cfg: cfg.core(),
                src,
            });
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
        members: Vec<Instance>,
        resume: bool,
        delay: Duration,
        out: &mut Vec<String>,
    ) -> Res<()> {
        let setup = self.setup(key.clone(), &members)?;
        let names = members.iter().map(|m| m.name.clone()).collect();
        let launch = Launch {
            setup,
            initial: Vec::new(),
            resume,
            delay,
        };
        let (id, outputs) = self
            .node
            .launch(self.now, launch)
            .map_err(|e| format!("group {key}: {e}"))?;
        self.names.insert(id, (key.clone(), names));
        self.configs.insert(id, (key, members));
        self.record(outputs, out);
        Ok(())
    }

    /// The names of every running group and its members, as the node has them now (a
    /// reload reshapes groups and moves members between them).
    fn rename_all(&mut self) {
        for (id, e) in self.node.groups() {
            let members = e
                .group
                .members()
                .iter()
                .map(|m| m.cfg.name.clone())
                .collect();
            self.names.insert(id, (e.key.clone(), members));
            if let Some((key, cfgs)) = self.configs.get_mut(&id) {
                key.clone_from(&e.key);
                cfgs.retain(|c| e.group.members().iter().any(|m| m.cfg.name == c.name));
            }
        }
    }

    fn target(v: &Value) -> Res<Target> {
        if let Some(i) = v.get("instance").and_then(Value::as_str) {
            Ok(Target::Instance(i.to_owned()))
        } else if let Some(g) = v.get("sync_group").and_then(Value::as_str) {
            Ok(Target::SyncGroup(g.to_owned()))
        } else if v.get("node").is_some() {
            Ok(Target::Node)
        } else {
            Err(format!("no instance, sync_group or node in {v}"))
        }
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
            Output::Install {
                member,
                present,
                addresses,
            } => json!({"install": {"instance": name(*member), "present": present,
                "addresses": addresses}}),
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
            Output::CarpAdvert {
                member,
                advert,
                own_mac,
            } => json!({"carp_advert": {"instance": name(*member), "advbase": advert.advbase,
                "advskew": advert.advskew, "demote": advert.demote, "own_mac": own_mac}}),
            Output::CarpRefused {
                member,
                src,
                reason,
            } => json!({"carp_refused": {"instance": name(*member), "src": src.to_string(),
                "reason": reason.to_string()}}),
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

    /// What the worker would make of `prepare`: the configuration it reads and the plan,
    /// against the groups running now.
    fn run_preparation(&self, prepare: Prepare) -> Pending {
        let outcome = (|| {
            let config = match &prepare.purpose {
                Purpose::Reload => load(&self.dir, &self.on_disk)?,
                _ => self.config.clone(),
            };
            let running: Vec<plan::Running<'_, Instance>> = self
                .configs
                .iter()
                .map(|(id, (key, members))| plan::Running {
                    id: *id,
                    key,
                    members,
                    slot: 0,
                })
                .collect();
            let mut running = running;
            running.sort_by_key(|r| r.id);
            let global_changed = config.global != self.config.global;
            let desired = desired_groups(&config.instances);
            let plan = plan::plan(&prepare.purpose, global_changed, &running, desired)
                .map_err(|e| e.to_string())?;
            Ok((config, plan))
        })();
        Pending { prepare, outcome }
    }

    fn describe_prepare(&self, p: &Prepare) -> Value {
        let mut v = json!({"purpose": p.purpose.word(), "generation": p.generation});
        if let Purpose::Rebuild { interface } = &p.purpose {
            v["interface"] = json!(interface);
        }
        json!({ "prepare": v })
    }

    /// Asks the core for a preparation; one handed out runs (is made) now.
    fn request(&mut self, purpose: Purpose, out: &mut Vec<String>) {
        if let Some(p) = self.node.want(purpose) {
            out.push(line(ms(self.now), "out", &self.describe_prepare(&p)));
            self.pending = Some(self.run_preparation(p));
        }
    }

    /// The preparation under way came back: what the core says, then the commit, then
    /// the next one.
    fn prepared(&mut self, show_plan: bool, out: &mut Vec<String>) -> Res<()> {
        let pending = self.pending.take().ok_or("no preparation under way")?;
        let accepted = pending.outcome.is_ok();
        let verdict = self.node.prepared(pending.prepare.generation, accepted);
        let word = match verdict {
            Verdict::Commit => "commit",
            Verdict::Redo => "redo",
            Verdict::Refused => "refused",
        };
        if !show_plan {
            let mut v = json!({"purpose": pending.prepare.purpose.word(), "verdict": word});
            if let Err(e) = &pending.outcome {
                v["why"] = json!(e);
            }
            out.push(line(ms(self.now), "out", &json!({ "prepared": v })));
        }
        if let (Verdict::Commit, Ok((config, plan))) = (verdict, pending.outcome) {
            self.commit(&pending.prepare.purpose, config, plan, show_plan, out)?;
        }
        if let Some(next) = self.node.next_preparation() {
            out.push(line(ms(self.now), "out", &self.describe_prepare(&next)));
            self.pending = Some(self.run_preparation(next));
        }
        Ok(())
    }

    fn commit(
        &mut self,
        purpose: &Purpose,
        config: Config,
        plan: Plan<Instance>,
        show_plan: bool,
        out: &mut Vec<String>,
    ) -> Res<()> {
        let now = self.now;
        let keys = |ids: &[GroupId]| -> Vec<String> {
            ids.iter()
                .filter_map(|id| self.names.get(id).map(|(k, _)| k.clone()))
                .collect()
        };
        if show_plan || *purpose != Purpose::Startup {
            let started: Vec<&String> = plan.start.iter().map(|s| &s.key).collect();
            let updated: Vec<String> = plan
                .update
                .iter()
                .map(|u| {
                    let was = keys(&[u.id]).pop().unwrap_or_default();
                    if was == u.key {
                        was
                    } else {
                        format!("{was} → {}", u.key)
                    }
                })
                .collect();
            let report: serde_json::Map<String, Value> = plan
                .report
                .iter()
                .map(|(name, o)| (name.clone(), json!(o.to_string())))
                .collect();
            let plan_v = json!({"plan": {"keep": keys(&plan.keep), "update": updated,
                "stop": keys(&plan.stop), "start": started, "report": report}});
            out.push(line(ms(now), "out", &plan_v));
        }
        let mut reshapes = Vec::new();
        for u in &plan.update {
            let mut members = Vec::new();
            let mut ifindexes = Vec::new();
            for inc in &u.members {
                let cfg = inc.cfg();
                ifindexes.push(
                    *self
                        .ifindex
                        .get(&cfg.interface)
                        .ok_or_else(|| format!("setup has no ifindex for {}", cfg.interface))?,
                );
                let setup = self.member_setup(cfg)?;
                members.push(match inc {
                    Incoming::Kept { from, member, .. } => Arriving::Kept {
                        from: *from,
                        member: *member,
                        setup,
                        initial: Vec::new(),
                    },
                    Incoming::Fresh(_) => Arriving::Fresh {
                        setup,
                        initial: Vec::new(),
                    },
                });
            }
            reshapes.push(Reshape {
                id: u.id,
                key: u.key.clone(),
                members,
                ifindexes,
            });
        }
        for (id, which) in self.node.leaving(&reshapes) {
            let outputs = self.node.retire(now, id, &which);
            self.record(outputs, out);
        }
        let outputs = self
            .node
            .reshape(now, reshapes)
            .map_err(|e| format!("reshape: {e}"))?;
        for u in &plan.update {
            let cfgs: Vec<Instance> = u.members.iter().map(|i| i.cfg().clone()).collect();
            self.configs.insert(u.id, (u.key.clone(), cfgs));
        }
        self.rename_all();
        self.record(outputs, out);
        for id in plan.stop {
            if let Some((_, outputs)) = self.node.stop(now, id) {
                self.record(outputs, out);
            }
            self.configs.remove(&id);
        }
        self.node.set_interfaces(
            config.link_delays(),
            config
                .instances
                .iter()
                .map(|i| i.interface.clone())
                .collect(),
        );
        let delay = start_delay(purpose, config.global.startup_delay, false);
        self.config = config;
        for start in plan.start {
            self.launch(start.key, start.members, false, delay, out)?;
        }
        Ok(())
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
                let p = self
                    .node
                    .want(Purpose::Startup)
                    .ok_or("start-up must be the first preparation")?;
                let (config, plan) = self.run_preparation(p.clone()).outcome?;
                if self.node.prepared(p.generation, true) != Verdict::Commit {
                    return Err("start-up not committed".into());
                }
                self.node.set_interfaces(
                    config.link_delays(),
                    config
                        .instances
                        .iter()
                        .map(|i| i.interface.clone())
                        .collect(),
                );
                for start in plan.start {
                    let delay = start_delay(&p.purpose, config.global.startup_delay, resume);
                    self.launch(start.key, start.members, resume, delay, out)?;
                }
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
            "carp_advert" => {
                let ifindex = *self
                    .ifindex
                    .get(str_of(v, "iface")?)
                    .ok_or("unknown iface")?;
                let src = ip_of(v, "src")?;
                let ttl = v.get("ttl").and_then(Value::as_u64).unwrap_or(255) as u8;
                let advert = carp_advert(v)?;
                self.node.carp_advert(now, ifindex, src, ttl, advert)
            }
            "track" => {
                let (id, member) = self.group_of(str_of(v, "instance")?)?;
                let item = if let Some(i) = v.get("script") {
                    TrackItem::Script {
                        index: i.as_u64().ok_or("script index")? as usize,
                        ok: field(v, "ok")?.as_bool().ok_or("ok")?,
                    }
                } else if let Some(i) = v.get("process") {
                    TrackItem::Process {
                        index: i.as_u64().ok_or("process index")? as usize,
                        count: u64_of(v, "count")? as u32,
                        cause: match str_of(v, "cause")? {
                            "scan" => ProcessChange::Scan,
                            "fork" => ProcessChange::Fork,
                            "exit" => ProcessChange::Exit,
                            "renamed" => ProcessChange::Renamed,
                            "rescan" => ProcessChange::Rescan,
                            _ => return Err("cause: scan, fork, exit, renamed or rescan".into()),
                        },
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
                let name = str_of(v, "name")?.to_owned();
                match v.get("ifindex").and_then(Value::as_u64) {
                    Some(ifindex) if self.node.rebuilds(&name, ifindex as u32) => {
                        // What the rebuild's netlink lookup would find.
                        self.ifindex.insert(name.clone(), ifindex as u32);
                        self.request(Purpose::Rebuild { interface: name }, out);
                        Vec::new()
                    }
                    _ => self.node.link(now, &name, up),
                }
            }
            "conflict" => self.node.conflict(now, ip_of(v, "vip")?),
            "released" => {
                let (id, member) = self.group_of(str_of(v, "instance")?)?;
                let vrid = self
                    .node
                    .get(id)
                    .and_then(|e| e.group.members().get(member))
                    .map(|m| m.cfg.identity.vrid)
                    .ok_or("member")?;
                let input = Input::Released {
                    vrid,
                    src: ip_of(v, "src")?,
                    priority: u64_of(v, "priority")? as u8,
                    interval: interval(v)?,
                };
                self.node.handle(now, id, input)
            }
            "bfd" => {
                let (id, member) = self.group_of(str_of(v, "instance")?)?;
                let input = Input::Bfd {
                    member,
                    peer: ip_of(v, "peer")?,
                    up: field(v, "up")?.as_bool().ok_or("up")?,
                    diag: diag(v.get("diag").and_then(Value::as_str).unwrap_or("none"))?,
                    // `"no_probe": true`: a down within a minute of a stall, which the
                    // group leaves to Master_Down_Interval (see `liveness::Change`).
                    slow_rtt: (!v.get("no_probe").and_then(Value::as_bool).unwrap_or(false)).then(
                        || {
                            Duration::from_micros(
                                v.get("slow_rtt_us").and_then(Value::as_u64).unwrap_or(0),
                            )
                        },
                    ),
                };
                self.node.handle(now, id, input)
            }
            "shutdown" => self.node.handle_all(now, Input::Shutdown),
            "demote" | "promote" | "handover" => {
                let target = Self::target(v)?;
                let by = v.get("by").and_then(Value::as_u64).map(|b| b as u8);
                let done = match kind.as_str() {
                    "demote" => self.node.demote(now, &target, by.unwrap_or(0)),
                    "promote" => self.node.promote(now, &target, by),
                    _ => self.node.handover(now, &target),
                };
                match done {
                    Ok(outputs) => outputs,
                    Err(e) => {
                        out.push(line(ms(now), "out", &json!({"refused": e.to_string()})));
                        Vec::new()
                    }
                }
            }
            "reload" => {
                // A SIGHUP with nothing under way: prepared and committed at once.
                self.on_disk = str_of(v, "config")?.to_owned();
                let p = self
                    .node
                    .want(Purpose::Reload)
                    .ok_or("a reload input needs no preparation under way")?;
                self.pending = Some(self.run_preparation(p));
                self.prepared(true, out)?;
                Vec::new()
            }
            "request" => {
                if let Some(file) = v.get("reload").and_then(Value::as_str) {
                    self.on_disk = file.to_owned();
                    self.request(Purpose::Reload, out);
                } else {
                    let interface = str_of(v, "rebuild")?.to_owned();
                    self.request(Purpose::Rebuild { interface }, out);
                }
                Vec::new()
            }
            "prepared" => {
                self.prepared(false, out)?;
                Vec::new()
            }
            "advance" => Vec::new(),
            other => return Err(format!("unknown input {other}")),
        };
        self.record(outputs, out);
        Ok(())
    }
}

fn diag(word: &str) -> Res<Diag> {
    Ok(match word {
        "none" => Diag::None,
        "control-detection-time-expired" => Diag::ControlDetectionTimeExpired,
        "echo-function-failed" => Diag::EchoFunctionFailed,
        "neighbor-signaled-down" => Diag::NeighborSignaledDown,
        "path-down" => Diag::PathDown,
        "administratively-down" => Diag::AdministrativelyDown,
        other => return Err(format!("unknown diag {other}")),
    })
}

fn interval(v: &Value) -> Res<Interval> {
    let ms = v.get("interval_ms").and_then(Value::as_u64).unwrap_or(1000);
    Interval::from_centis((ms / 10) as u16).ok_or_else(|| format!("interval {ms} ms"))
}

fn carp_advert(v: &Value) -> Res<crate::vrrp::carp::Advert> {
    use crate::vrrp::carp::{Authenticator, Key, LinkLocal, VirtualHost};
    let byte = |k: &str| -> Res<u8> { Ok(u64_of(v, k)? as u8) };
    let vhid = byte("vhid")?;
    let counter = u64_of(v, "counter")?;
    let vips = field(v, "vips")?
        .as_array()
        .ok_or("vips")?
        .iter()
        .map(|x| {
            x.as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("address {x}"))
        })
        .collect::<Res<Vec<IpAddr>>>()?;
    let key = Key::new(str_of(v, "passphrase")?.as_bytes()).map_err(|e| e.to_string())?;
    let auth = Authenticator::new(&key, &VirtualHost::new(vhid, vips), LinkLocal::Without);
    let digest = match v.get("digest").and_then(Value::as_str) {
        Some("forged") => [0x5a; 20],
        Some(other) => return Err(format!("digest {other:?}: only \"forged\"")),
        None => auth.sign(counter),
    };
    Ok(crate::vrrp::carp::Advert {
        vhid,
        advskew: byte("advskew")?,
        advbase: byte("advbase")?,
        demote: v.get("demote").and_then(Value::as_u64).unwrap_or(0) as u8,
        counter,
        digest,
    })
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
    Config::parse(&text, file, &FakeHost::lab()).map_err(|e| e.to_string())
}

impl Stream for Driver {
    fn advance(&mut self, t: Time, out: &mut Vec<String>) {
        Driver::advance(self, t, out)
    }

    fn input(&mut self, input: &Value, out: &mut Vec<String>) -> Res<()> {
        Driver::input(self, input, out)
    }
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
        "\"request\"",
        "\"prepared\"",
        "\"bfd\"",
        "\"demote\"",
        "\"promote\"",
        "\"handover\"",
    ] {
        assert!(
            all.contains(&format!("\"in\":{{{kind}")),
            "no scenario feeds {kind}"
        );
    }
}
