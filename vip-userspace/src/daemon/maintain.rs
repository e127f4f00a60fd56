//! What the loop does with the control socket's commands (`crate::control::socket`):
//! a status snapshot, a reload or its dry run (prepared on the worker, like SIGHUP's),
//! and the maintenance commands, which the core decides (`Node::demote`,
//! `Node::promote`, `Node::handover`) and this carries out: outputs executed, the
//! demotions written to the state file (off the loop), an event published, the
//! requester answered. Also the reload outcome every waiting `vipd reload` gets.

use std::{path::Path, time::Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::{Daemon, clock, prepare, systemd};
use crate::{
    control::{
        events::{InstanceChange, What},
        socket::{Peer, Reply, Request, Target, ToLoop},
    },
    vrrp::{
        node::{self, Demotions},
        plan::{Outcome, Prepare, Purpose},
    },
};

/// The last reload's outcome, for `vipd status`.
#[derive(Debug, Clone)]
pub struct LastReload {
    pub at: Instant,
    pub ok: bool,
    pub message: String,
    pub instances: Vec<InstanceChange>,
}

/// The demotions as the state file holds them (JSON).
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
struct State {
    #[serde(default)]
    node: u8,
    #[serde(default)]
    sync_groups: std::collections::BTreeMap<String, u8>,
    #[serde(default)]
    instances: std::collections::BTreeMap<String, u8>,
}

impl From<&Demotions> for State {
    fn from(d: &Demotions) -> State {
        State {
            node: d.node,
            sync_groups: d.sync_groups.clone(),
            instances: d.instances.clone(),
        }
    }
}

/// Reads the demotions a previous run left; a missing file is none, an unreadable one is
/// logged and none (the operator's demotion is lost, never the daemon).
pub fn load_state(path: &Path) -> Demotions {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Demotions::default(),
        Err(error) => {
            warn!(path = %path.display(), %error, "cannot read the state file; starting without demotions");
            return Demotions::default();
        }
    };
    match serde_json::from_str::<State>(&text) {
        Ok(s) => {
            let cap = |v: u8| v.min(node::MAX_DEMOTION);
            Demotions {
                node: cap(s.node),
                sync_groups: s
                    .sync_groups
                    .into_iter()
                    .map(|(k, v)| (k, cap(v)))
                    .collect(),
                instances: s.instances.into_iter().map(|(k, v)| (k, cap(v))).collect(),
            }
        }
        Err(error) => {
            warn!(path = %path.display(), %error, "the state file is not vipd's; starting without demotions");
            Demotions::default()
        }
    }
}

/// Writes `state` to `path` through a temporary file renamed over it, so a crash never
/// leaves half a file.
fn write_state(path: &Path, state: &State) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(state).map_err(std::io::Error::other)? + "\n";
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The report of a plan as the control socket and events give it.
pub fn changes(report: &[(String, Outcome)]) -> Vec<InstanceChange> {
    report
        .iter()
        .map(|(instance, o)| InstanceChange {
            instance: instance.clone(),
            outcome: o.word().to_owned(),
            detail: match o {
                Outcome::Changed(fields) => fields.join(", "),
                Outcome::Restarted(why) => why.clone(),
                _ => String::new(),
            },
        })
        .collect()
}

/// One line per count, for messages: "1 unchanged, 2 changed".
pub fn summary(report: &[(String, Outcome)]) -> String {
    let counts = super::plan_counts(report);
    let words = ["unchanged", "changed", "restarted", "added", "removed"];
    let parts: Vec<String> = counts
        .iter()
        .zip(words)
        .filter(|(n, _)| **n > 0)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
    if parts.is_empty() {
        "no instances".into()
    } else {
        parts.join(", ")
    }
}

fn target(t: &Target) -> node::Target {
    match t {
        Target::Node => node::Target::Node,
        Target::SyncGroup(g) => node::Target::SyncGroup(g.clone()),
        Target::Instance(i) => node::Target::Instance(i.clone()),
    }
}

impl Daemon {
    pub(super) fn on_control(&mut self, ask: ToLoop) {
        match ask {
            ToLoop::Status(tx) => {
                let _ = tx.send(self.status());
            }
            ToLoop::Command {
                request,
                peer,
                reply,
            } => self.command(request, peer, reply),
        }
    }

    fn command(&mut self, request: Request, peer: Peer, reply: oneshot::Sender<Reply>) {
        match request {
            Request::Reload { dry_run: true } => {
                // The same plan the reload would make, against the groups running now,
                // read and planned off the loop.
                let req = self.request(Prepare {
                    purpose: Purpose::Reload,
                    generation: self.node.generation(),
                });
                self.worker.spawn(async move {
                    let answer = match prepare::plan_for(&req).await {
                        Ok((_, plan)) => Reply {
                            ok: true,
                            message: format!("a reload would leave {}", summary(&plan.report)),
                            instances: changes(&plan.report),
                        },
                        Err(e) => Reply::refused(format!("a reload would be refused: {e}")),
                    };
                    let _ = reply.send(answer);
                });
            }
            Request::Reload { dry_run: false } => {
                systemd::reloading();
                self.reload_waiters.push(reply);
                self.prepare(Purpose::Reload);
            }
            Request::Demote { .. } | Request::Promote { .. } | Request::Handover { .. } => {
                let answer = self.maintain(&request);
                self.events.publish(What::Maintenance {
                    command: request.describe(),
                    uid: peer.uid,
                    pid: peer.pid,
                    ok: answer.ok,
                    message: answer.message.clone(),
                });
                if answer.ok {
                    info!(command = %request.describe(), uid = peer.uid, pid = ?peer.pid, outcome = %answer.message, "maintenance command carried out");
                } else {
                    warn!(command = %request.describe(), uid = peer.uid, pid = ?peer.pid, outcome = %answer.message, "maintenance command changed nothing");
                }
                let _ = reply.send(answer);
            }
            Request::Status | Request::Events => {
                let _ = reply.send(Reply::refused("not a command"));
            }
        }
    }

    /// A maintenance command, as the core decides it.
    fn maintain(&mut self, request: &Request) -> Reply {
        let now = clock::now();
        let before = self.node.demotions().clone();
        let (done, t) = match request {
            Request::Demote { target: t, by } => (self.node.demote(now, &target(t), *by), t),
            Request::Promote { target: t, by } => (self.node.promote(now, &target(t), *by), t),
            Request::Handover { target: t } => (self.node.handover(now, &target(t)), t),
            _ => return Reply::refused("not a maintenance command"),
        };
        match done {
            Ok(outs) => {
                self.execute(now, outs);
                if *self.node.demotions() != before {
                    self.save_state();
                }
                let demotion = self.node.demotions().get(&target(t));
                let message = match request {
                    Request::Handover { .. } => {
                        format!("{t}: handed over; it does not preempt until promoted")
                    }
                    _ => format!("{t}: demotion now {demotion}"),
                };
                Reply {
                    ok: true,
                    message,
                    instances: Vec::new(),
                }
            }
            Err(e) => Reply::refused(e.to_string()),
        }
    }

    /// Writes the demotions to the state file, if one is configured, off the loop.
    pub(super) fn save_state(&self) {
        let Some(path) = self.config.global.state_file.clone() else {
            return;
        };
        let state = State::from(self.node.demotions());
        self.worker.spawn(async move {
            let p = path.clone();
            let written = tokio::task::spawn_blocking(move || write_state(&p, &state)).await;
            if let Ok(Err(error)) | Err(error) = written.map_err(std::io::Error::other) {
                warn!(path = %path.display(), %error, "could not write the state file: a restart would forget the demotions");
            }
        });
    }

    /// A reload came back (committed with `report`, or refused with `error`): every
    /// waiting `vipd reload` gets the answer, `vipd status` keeps it, the event stream
    /// hears of it.
    pub(super) fn reload_done(&mut self, outcome: Result<&[(String, Outcome)], &str>) {
        let reply = match outcome {
            Ok(report) => Reply {
                ok: true,
                message: format!("reloaded: {}", summary(report)),
                instances: changes(report),
            },
            Err(e) => Reply::refused(format!(
                "reload rejected, the previous configuration runs on: {e}"
            )),
        };
        self.last_reload = Some(LastReload {
            at: Instant::now(),
            ok: reply.ok,
            message: reply.message.clone(),
            instances: reply.instances.clone(),
        });
        self.events.publish(What::Reload {
            ok: reply.ok,
            message: reply.message.clone(),
            instances: reply.instances.clone(),
        });
        for w in self.reload_waiters.drain(..) {
            let _ = w.send(reply.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_keeps_demotions_and_caps_what_it_reads() {
        let dir = std::env::temp_dir().join(format!("vipd-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r1.state");
        assert_eq!(load_state(&path), Demotions::default(), "no file: none");
        let d = Demotions {
            node: 10,
            sync_groups: [("edge".to_owned(), 20)].into(),
            instances: [("gw".to_owned(), 30)].into(),
        };
        write_state(&path, &State::from(&d)).unwrap();
        assert_eq!(load_state(&path), d);
        std::fs::write(&path, r#"{"node": 255}"#).unwrap();
        assert_eq!(load_state(&path).node, node::MAX_DEMOTION);
        std::fs::write(&path, "not json").unwrap();
        assert_eq!(load_state(&path), Demotions::default());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
