//! Track scripts: run every interval with a timeout, debounced by rise / fall, off the
//! event loop (`crate::exec` runs them with the configured identity and kills their whole
//! process group on timeout). The first result is reported as soon as it is known; until
//! then the script is "not yet known" (see `crate::vrrp::tracking`).

use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::Report;
use crate::{
    config::TrackScript,
    exec::{self, Outcome, RunAs},
    vrrp::tracking::TrackItem,
};

/// Consecutive-result debouncing. The first result sets the state at once: there is no
/// earlier state worth protecting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Debounce {
    ok: Option<bool>,
    streak: u8,
}

impl Debounce {
    pub fn new() -> Self {
        Self::default()
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

/// Runs the check once: `Some(success)`, or `None` when the machine (not the script)
/// kept it from running, e.g. out of file descriptors: that is no verdict on the service.
pub async fn run_once(script: &TrackScript, run_as: RunAs) -> Option<bool> {
    let o = exec::run(script.command.argv(), &[], run_as, script.timeout).await;
    match &o {
        Outcome::NotStarted {
            transient: true, ..
        } => {
            warn!(command = %script.command, outcome = %exec::describe(&o), "track script could not run; keeping its last result");
            None
        }
        Outcome::Exited {
            status,
            stdout,
            stderr,
        } if !status.success() => {
            debug!(command = %script.command, outcome = %exec::describe(&o), ?stdout, ?stderr, "track script failed");
            Some(false)
        }
        _ => Some(o.success()),
    }
}

/// Watches `script`, reporting state changes for `report` until aborted.
pub async fn watch(
    report: Report,
    index: usize,
    script: TrackScript,
    run_as: RunAs,
    tx: mpsc::Sender<(Report, TrackItem)>,
) {
    {
        let mut debounce = Debounce::new();
        let mut tick = tokio::time::interval(script.interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(success) = run_once(&script, run_as).await else {
                continue;
            };
            if let Some(ok) = debounce.feed(success, script.rise, script.fall) {
                info!(command = %script.command, ok, "track script result changed");
                let item = TrackItem::Script { index, ok };
                if tx.send((report, item)).await.is_err() {
                    return;
                }
            }
        }
    }
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
