//! Notify hooks, with keepalived's conventions so existing scripts carry over: the
//! generic `notify` program gets four arguments, `INSTANCE` (or `GROUP`), the name, the
//! new state as `MASTER`, `BACKUP`, `FAULT` or `STOP` (`vrrp/notify.rs`, the words of
//! every hook), and the priority. Hooks of one
//! instance run one at a time, in transition order, on the worker thread; the loop only
//! queues them.

use std::{collections::HashMap, time::Duration};

use tokio::sync::mpsc;
use tracing::{info, warn};

pub use crate::vrrp::notify::Hook;
use crate::{
    config::Notify,
    exec::{self, RunAs},
    vrrp::{State, notify::state_word},
    worker::Worker,
};

/// A hook that runs longer than this is killed with its process group.
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);
/// Transitions waiting for an instance's hooks, at most; beyond it a hook is skipped
/// (logged), never the loop made to wait.
const QUEUE: usize = 64;

/// Whether hooks are for an instance or a sync group (keepalived's first argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Instance,
    Group,
}

impl Scope {
    fn word(self) -> &'static str {
        match self {
            Scope::Instance => "INSTANCE",
            Scope::Group => "GROUP",
        }
    }
}

/// The hooks `notify` configures for `name` entering `state` at `priority`, in the order
/// keepalived runs them: the state's own hook (`notify_master` …, with only its
/// configured arguments), then the generic `notify` with keepalived's four arguments.
/// Every hook also gets `VIPD_SCOPE`, `VIPD_NAME`, `VIPD_STATE` and `VIPD_PRIORITY`.
pub fn hooks(notify: &Notify, scope: Scope, name: &str, state: State, priority: u8) -> Vec<Hook> {
    let env = vec![
        ("VIPD_SCOPE", scope.word().to_owned()),
        ("VIPD_NAME", name.to_owned()),
        ("VIPD_STATE", state_word(state).to_owned()),
        ("VIPD_PRIORITY", priority.to_string()),
    ];
    let specific = match state {
        State::Master => notify.master.as_ref(),
        State::Backup => notify.backup.as_ref(),
        State::Fault => notify.fault.as_ref(),
        State::Initialize => notify.stop.as_ref(),
    };
    let mut out = Vec::new();
    if let Some(c) = specific {
        out.push(Hook {
            argv: c.argv().to_vec(),
            env: env.clone(),
        });
    }
    if let Some(c) = &notify.any {
        let mut argv = c.argv().to_vec();
        argv.extend([
            scope.word().to_owned(),
            name.to_owned(),
            state_word(state).to_owned(),
            priority.to_string(),
        ]);
        out.push(Hook { argv, env });
    }
    out
}

/// Per-instance queues of hooks, each drained by a task on the worker thread.
pub struct Notifier {
    worker: Worker,
    run_as: RunAs,
    queues: HashMap<String, mpsc::Sender<Vec<Hook>>>,
}

impl Notifier {
    pub fn new(worker: Worker, run_as: RunAs) -> Notifier {
        Notifier {
            worker,
            run_as,
            queues: HashMap::new(),
        }
    }

    /// Queues `hooks` (run in order) for `instance`; never waits.
    pub fn queue(&mut self, instance: &str, hooks: Vec<Hook>) {
        if hooks.is_empty() {
            return;
        }
        let run_as = self.run_as;
        let worker = &self.worker;
        let tx = self.queues.entry(instance.to_owned()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            worker.spawn(drain(instance.to_owned(), rx, run_as));
            tx
        });
        if tx.try_send(hooks).is_err() {
            warn!(
                instance,
                "notify queue full; hooks for this transition skipped"
            );
        }
    }

    /// Forgets an instance's queue (its pending hooks still run).
    pub fn forget(&mut self, instance: &str) {
        self.queues.remove(instance);
    }
}

async fn drain(instance: String, mut rx: mpsc::Receiver<Vec<Hook>>, run_as: RunAs) {
    while let Some(hooks) = rx.recv().await {
        for hook in hooks {
            let o = exec::run(&hook.argv, &hook.env, run_as, HOOK_TIMEOUT).await;
            let command = hook.argv.join(" ");
            let outcome = exec::describe(&o);
            // The hook's output as quoted strings (`?`): a multi-line output stays one
            // log event on one line.
            match &o {
                exec::Outcome::Exited {
                    status,
                    stdout,
                    stderr,
                } if status.success() => {
                    info!(%instance, %command, ?stdout, ?stderr, "notify hook ran")
                }
                exec::Outcome::Exited { stdout, stderr, .. } => {
                    warn!(%instance, %command, %outcome, ?stdout, ?stderr, "notify hook failed")
                }
                _ => warn!(%instance, %command, %outcome, "notify hook failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::Command;

    fn cmd(argv: &[&str]) -> Option<Command> {
        Command::new(argv.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn the_state_hook_runs_first_then_the_generic_one_with_keepalived_arguments() {
        let n = Notify {
            any: cmd(&["/etc/vipd/notify.sh", "--log"]),
            master: cmd(&["/etc/vipd/master.sh", "up"]),
            stop: cmd(&["/etc/vipd/stop.sh"]),
            ..Notify::default()
        };
        let h = hooks(&n, Scope::Instance, "gw", State::Master, 150);
        let argv: Vec<&[String]> = h.iter().map(|h| h.argv.as_slice()).collect();
        assert_eq!(
            argv,
            [
                &["/etc/vipd/master.sh", "up"][..],
                &[
                    "/etc/vipd/notify.sh",
                    "--log",
                    "INSTANCE",
                    "gw",
                    "MASTER",
                    "150"
                ][..],
            ]
        );
        let h = hooks(&n, Scope::Group, "edge", State::Initialize, 0);
        assert_eq!(h[0].argv, ["/etc/vipd/stop.sh"]);
        assert_eq!(h[1].argv[2..], ["GROUP", "edge", "STOP", "0"]);
        assert!(hooks(&n, Scope::Instance, "gw", State::Fault, 1).len() == 1);
    }
}
