//! The systemd notify protocol (`Type=notify`): `READY=1` once the data plane is attached
//! and every instance has started, `STATUS=` with a one-line summary, `RELOADING=1`
//! around a reload, and `WATCHDOG=1` sent from the event loop itself, so a stalled loop
//! (not merely a live process) is what systemd restarts. Without `NOTIFY_SOCKET` every
//! call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::debug;

use crate::control::Status;

/// How often the loop pets the watchdog: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
/// advises; `None` without a watchdog.
pub fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0;
    sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec / 2))
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(false, states) {
        debug!(%error, "systemd notify failed");
    }
}

/// The one-line summary systemctl shows.
pub fn summary(s: &Status) -> String {
    let count = |state: &str| s.instances.iter().filter(|i| i.state == state).count();
    format!(
        "{} master, {} backup, {} fault; loop lag {:.1} ms",
        count("master"),
        count("backup"),
        count("fault"),
        s.loop_lag.recent_worst_us as f64 / 1000.0
    )
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload starts (systemd ≥ 253 wants the monotonic time with it).
pub fn reloading() {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
        .unwrap_or(0);
    let usec = format!("MONOTONIC_USEC={ts}");
    send(&[NotifyState::Reloading, NotifyState::Custom(&usec)]);
}

pub fn watchdog(status: Option<&str>) {
    match status {
        Some(s) => send(&[NotifyState::Watchdog, NotifyState::Status(s)]),
        None => send(&[NotifyState::Watchdog]),
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_states() {
        let mut s: Status = serde_json::from_str(
            r#"{"router_id":"r1","pid":1,"uptime_ms":1,"pin_path":"","instances":[],"xdp":{},"conflicts":[]}"#,
        )
        .unwrap();
        s.loop_lag.recent_worst_us = 1500;
        assert_eq!(summary(&s), "0 master, 0 backup, 0 fault; loop lag 1.5 ms");
    }
}
