//! One clock for everything: CLOCK_MONOTONIC, the clock `bpf_ktime_get_ns` reads, so the
//! leases the daemon writes and the deadlines the XDP program checks agree exactly. The
//! loop sleeps on a timerfd armed at an absolute deadline: nanosecond resolution, where
//! tokio's timer wheel would round every VRRP timer up to the next millisecond.

use std::{
    os::fd::{AsFd as _, AsRawFd},
    time::Duration,
};

use nix::sys::{
    time::TimeSpec,
    timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags},
};
use tokio::io::{Interest, unix::AsyncFd};

use crate::{dataplane::monotonic_ns, vrrp::Time};

pub fn now() -> Time {
    Time::from_duration(Duration::from_nanos(monotonic_ns()))
}

/// When a packet the kernel stamped at `stamp` (`CLOCK_REALTIME`, as socket timestamps
/// are) reached this host, on the monotonic clock: `now` less its age by the real-time
/// clock, read together with `now`. A stamp from the future (the real-time clock stepped
/// back meanwhile) or older than a second (stepped forward) says nothing: `now`.
pub fn arrival(stamp: Duration, now: Time) -> Time {
    let real = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
        .map(|ts| {
            Duration::new(
                ts.tv_sec().max(0) as u64,
                ts.tv_nsec().clamp(0, 999_999_999) as u32,
            )
        })
        .unwrap_or_default();
    match real.checked_sub(stamp) {
        Some(age) if age < Duration::from_secs(1) => {
            Time::from_duration(now.as_duration().saturating_sub(age))
        }
        _ => now,
    }
}

/// How far the XDP program's coarse clock may lag: one tick, plus a margin for the time
/// between the daemon reading the clock and the map write landing.
pub fn coarse_lag() -> Duration {
    let tick = nix::time::clock_getres(nix::time::ClockId::CLOCK_MONOTONIC_COARSE)
        .map(|ts| {
            Duration::from_secs(ts.tv_sec() as u64) + Duration::from_nanos(ts.tv_nsec() as u64)
        })
        .unwrap_or(Duration::from_millis(10));
    tick + Duration::from_micros(500)
}

/// Nanoseconds on the monotonic clock, as leases are written.
pub fn nanos(t: Time) -> u64 {
    t.as_duration().as_nanos().min(u64::MAX as u128) as u64
}

/// nix's TimerFd only exposes `AsFd`; tokio's AsyncFd wants `AsRawFd`.
struct Timer(TimerFd);

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

pub struct Ticker {
    fd: AsyncFd<Timer>,
}

impl Ticker {
    pub fn new() -> std::io::Result<Self> {
        let t = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // SAFETY: the TimerFd owns its descriptor for as long as the AsyncFd holds it.
        let fd = unsafe { AsyncFd::register_with_interest(Timer(t), Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        Ok(Self { fd })
    }

    /// Waits until `deadline` (forever when `None`).
    pub async fn sleep_until(&mut self, deadline: Option<Time>) -> std::io::Result<()> {
        let Some(deadline) = deadline else {
            return std::future::pending().await;
        };
        // An absolute deadline of 0 would disarm the timer: fire a deadline in the past at
        // the earliest representable instant instead.
        let d = deadline.as_duration().max(Duration::from_nanos(1));
        self.fd.get_ref().0.set(
            Expiration::OneShot(TimeSpec::from_duration(d)),
            TimerSetTimeFlags::TFD_TIMER_ABSTIME,
        )?;
        loop {
            let mut guard = self.fd.readable().await?;
            let read = guard.try_io(|inner| {
                let mut buf = [0u8; 8];
                // SAFETY: reading 8 bytes into an 8-byte buffer from a timerfd.
                let n =
                    unsafe { libc::read(inner.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
                if n < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
            match read {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}
