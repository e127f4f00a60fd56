//! Notify hooks: the configured command runs on every transition with the instance name,
//! the new state and the effective priority as arguments (keepalived's notify convention).

use std::time::Duration;

use tokio::process::Command;
use tracing::{info, warn};

/// A hook that runs longer than this is killed: a stuck script must not pile up.
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `command instance state priority` in the background; never blocks the caller.
pub fn spawn(command: &str, instance: &str, state: &str, priority: u8) {
    let mut cmd = Command::new(command);
    cmd.args([instance, state, &priority.to_string()])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    match cmd.spawn() {
        Ok(mut child) => {
            info!(%command, %instance, %state, priority, "notify hook started");
            let command = command.to_owned();
            let instance = instance.to_owned();
            let state = state.to_owned();
            tokio::spawn(async move {
                match tokio::time::timeout(HOOK_TIMEOUT, child.wait()).await {
                    Ok(Ok(status)) if status.success() => {}
                    Ok(Ok(status)) => {
                        warn!(%command, %instance, %state, %status, "notify hook failed")
                    }
                    Ok(Err(error)) => warn!(%command, %error, "waiting for notify hook"),
                    Err(_) => {
                        warn!(%command, %instance, "notify hook timed out; killed");
                        let _ = child.kill().await;
                    }
                }
            });
        }
        Err(error) => warn!(%command, %error, "notify hook could not start"),
    }
}
