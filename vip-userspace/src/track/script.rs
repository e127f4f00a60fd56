//! Track scripts: run every interval with a timeout, debounced by rise / fall.

use std::{process::Stdio, time::Duration};

use tokio::{process::Command, sync::mpsc, task::JoinHandle};
use tracing::{debug, info};

use super::{TrackItem, TrackUpdate};
use crate::config::TrackScript;

/// Consecutive-result debouncing. The first result sets the state at once: there is no
/// earlier state worth protecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debounce {
    ok: Option<bool>,
    streak: u8,
}

impl Debounce {
    pub fn new() -> Self {
        Self {
            ok: None,
            streak: 0,
        }
    }

    /// Feeds one result; returns the new state if it changed.
    pub fn feed(&mut self, success: bool, rise: u8, fall: u8) -> Option<bool> {
        let Some(ok) = self.ok else {
            self.ok = Some(success);
            return Some(success);
        };
        if success == ok {
            self.streak = 0;
            return None;
        }
        self.streak = self.streak.saturating_add(1);
        let needed = if success { rise } else { fall };
        if self.streak >= needed.max(1) {
            self.ok = Some(success);
            self.streak = 0;
            Some(success)
        } else {
            None
        }
    }
}

impl Default for Debounce {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs the check once: success is exit status 0 within the timeout.
pub async fn run_once(script: &TrackScript) -> bool {
    let Some((program, args)) = script.command.argv().split_first() else {
        return false;
    };
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    match tokio::time::timeout(script.timeout, child.wait()).await {
        Ok(Ok(status)) => status.success(),
        // Timed out: dropping the child kills it (kill_on_drop).
        _ => false,
    }
}

/// Watches `script` for `member`, reporting state changes until aborted.
pub fn spawn(
    member: u64,
    index: usize,
    script: TrackScript,
    tx: mpsc::Sender<TrackUpdate>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut debounce = Debounce::new();
        let mut tick = tokio::time::interval(script.interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let success = run_once(&script).await;
            debug!(member, index, success, "track script ran");
            if let Some(ok) = debounce.feed(success, script.rise, script.fall) {
                info!(command = %script.command, ok, "track script changed");
                let item = TrackItem::Script { index, ok };
                if tx.send(TrackUpdate { member, item }).await.is_err() {
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_result_counts_at_once_then_fall_and_rise_debounce() {
        let mut d = Debounce::new();
        assert_eq!(d.feed(true, 2, 3), Some(true));
        assert_eq!(d.feed(false, 2, 3), None);
        assert_eq!(d.feed(false, 2, 3), None);
        assert_eq!(d.feed(false, 2, 3), Some(false));
        assert_eq!(d.feed(true, 2, 3), None);
        // A failure in between restarts the streak.
        assert_eq!(d.feed(false, 2, 3), None);
        assert_eq!(d.feed(true, 2, 3), None);
        assert_eq!(d.feed(true, 2, 3), Some(true));
    }
}
