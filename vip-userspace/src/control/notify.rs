//! Notify hooks, with keepalived's conventions so existing scripts carry over: the
//! generic `notify` program gets four arguments, `INSTANCE` (or `GROUP`), the name, the
//! new state as `MASTER`, `BACKUP`, `FAULT` or `STOP`, and the priority. Hooks of one
//! instance run one at a time, in transition order, on the worker thread; the loop only
//! queues them.

use std::{collections::HashMap, time::Duration};

use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::{
    daemon::Worker,
    exec::{self, RunAs},
    vrrp::State,
};

/// A hook that runs longer than this is killed with its process group.
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);
/// Transitions waiting for an instance's hooks, at most; beyond it a hook is skipped
/// (logged), never the loop made to wait.
const QUEUE: usize = 64;

/// keepalived's word for a state.
pub fn state_word(s: State) -> &'static str {
    match s {
        State::Master => "MASTER",
        State::Backup => "BACKUP",
        State::Fault => "FAULT",
        State::Initialize => "STOP",
    }
}

/// One run of a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub argv: Vec<String>,
    pub env: Vec<(&'static str, String)>,
}

/// The generic hook's command line for instance `name` entering `state` at `priority`.
pub fn generic(program: &str, scope: &str, name: &str, state: State, priority: u8) -> Hook {
    Hook {
        argv: vec![
            program.to_owned(),
            scope.to_owned(),
            name.to_owned(),
            state_word(state).to_owned(),
            priority.to_string(),
        ],
        env: vec![
            ("VIPD_INSTANCE", name.to_owned()),
            ("VIPD_STATE", state_word(state).to_owned()),
            ("VIPD_PRIORITY", priority.to_string()),
        ],
    }
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
            match &o {
                exec::Outcome::Exited {
                    status,
                    stdout,
                    stderr,
                } if status.success() => {
                    info!(%instance, %command, %stdout, %stderr, "notify hook ran")
                }
                exec::Outcome::Exited { stdout, stderr, .. } => {
                    warn!(%instance, %command, %outcome, %stdout, %stderr, "notify hook failed")
                }
                _ => warn!(%instance, %command, %outcome, "notify hook failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_hook_gets_keepalived_arguments() {
        let h = generic("/etc/vipd/notify.sh", "INSTANCE", "gw", State::Master, 150);
        assert_eq!(
            h.argv,
            ["/etc/vipd/notify.sh", "INSTANCE", "gw", "MASTER", "150"]
        );
        assert_eq!(state_word(State::Initialize), "STOP");
        assert_eq!(state_word(State::Fault), "FAULT");
        assert_eq!(state_word(State::Backup), "BACKUP");
    }
}
