//! Time as an input, the advertisement interval, and the RFC timer arithmetic.
//!
//! Nothing here reads a clock: the daemon turns its monotonic clock into a [`Time`] and
//! passes it in, so tests drive a virtual clock with the same code.

use std::fmt;
use std::ops::Add;
use std::time::Duration;

use super::packet::Version;

/// A point in time: how long after an origin of the caller's choosing.
///
/// A newtype rather than a bare [`Duration`] so a deadline cannot be confused with an
/// interval. Arithmetic saturates: a configured delay of `Duration::MAX` must not panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(Duration);

impl Time {
    pub const ZERO: Time = Time(Duration::ZERO);

    pub const fn from_duration(since_origin: Duration) -> Time {
        Time(since_origin)
    }

    pub const fn from_millis(ms: u64) -> Time {
        Time(Duration::from_millis(ms))
    }

    pub const fn from_micros(us: u64) -> Time {
        Time(Duration::from_micros(us))
    }

    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Time) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Time {
    type Output = Time;

    fn add(self, rhs: Duration) -> Time {
        Time(self.0.saturating_add(rhs))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// An advertisement interval, counted in centiseconds (the RFC 9568 unit), never zero.
///
/// VRRPv3 carries 1..=4095 centiseconds on the wire; VRRPv2 carries whole seconds
/// (1..=255), which are 100..=25500 centiseconds here. One unit for both versions keeps
/// the timer arithmetic in one place; the codec checks what each version can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval(u16);

impl Interval {
    /// The RFC default, 1 second.
    pub const DEFAULT: Interval = Interval(100);
    /// The largest interval a VRRPv3 advertisement can carry (12 bits of centiseconds).
    pub const V3_MAX_CENTIS: u16 = 0x0fff;
    /// The largest interval a VRRPv2 advertisement can carry (8 bits of seconds).
    pub const V2_MAX_SECS: u8 = u8::MAX;

    /// `None` for zero: a zero interval would make a backup declare the master down at once.
    pub const fn from_centis(centis: u16) -> Option<Interval> {
        if centis == 0 {
            None
        } else {
            Some(Interval(centis))
        }
    }

    /// `None` for zero.
    pub const fn from_secs(secs: u8) -> Option<Interval> {
        if secs == 0 {
            None
        } else {
            // 255 × 100 = 25500 fits in u16.
            Some(Interval(secs as u16 * 100))
        }
    }

    pub const fn centis(self) -> u16 {
        self.0
    }

    /// The interval in whole seconds if it is one (what VRRPv2 can carry).
    pub const fn whole_secs(self) -> Option<u8> {
        if self.0.is_multiple_of(100) && self.0 / 100 <= u8::MAX as u16 {
            Some((self.0 / 100) as u8)
        } else {
            None
        }
    }

    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0 as u64 * 10)
    }

    const fn as_nanos(self) -> u64 {
        self.0 as u64 * 10_000_000
    }
}

impl From<Interval> for Duration {
    fn from(interval: Interval) -> Duration {
        interval.as_duration()
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_duration())
    }
}

/// Skew_Time for a router of `priority`.
///
/// v3: `((256 − priority) × Master_Adver_Interval) / 256`, computed in nanoseconds so a
/// 10 ms interval keeps its sub-millisecond skew (priority 100 → 6.09375 ms); only a
/// remainder below one nanosecond is dropped. v2 (RFC 3768): `(256 − priority) / 256`
/// seconds whatever the interval.
pub fn skew_time(version: Version, priority: u8, master_adver_interval: Interval) -> Duration {
    let weight = 256 - u64::from(priority);
    let nanos = match version {
        Version::V3 => weight * master_adver_interval.as_nanos() / 256,
        Version::V2 => weight * 1_000_000_000 / 256,
    };
    Duration::from_nanos(nanos)
}

/// Master_Down_Interval: `3 × Master_Adver_Interval + Skew_Time` (v2 uses its own
/// Advertisement_Interval, which is the only interval a v2 router knows).
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_interval: Interval,
) -> Duration {
    master_adver_interval.as_duration() * 3 + skew_time(version, priority, master_adver_interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn centis(cs: u16) -> Interval {
        Interval::from_centis(cs).expect("non-zero interval")
    }

    #[test]
    fn v3_skew_at_10ms_priority_100_keeps_microseconds() {
        assert_eq!(
            skew_time(Version::V3, 100, centis(1)),
            Duration::from_nanos(6_093_750)
        );
        assert_eq!(
            master_down_interval(Version::V3, 100, centis(1)),
            Duration::from_nanos(36_093_750)
        );
    }

    #[test]
    fn v3_skew_scales_with_the_interval() {
        // 1 s, priority 100: 156/256 s = 609.375 ms; down = 3.609375 s.
        assert_eq!(
            skew_time(Version::V3, 100, Interval::DEFAULT),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            master_down_interval(Version::V3, 100, Interval::DEFAULT),
            Duration::from_micros(3_609_375)
        );
        // Priority 254 at the smallest interval: 2/256 × 10 ms = 78.125 µs, not zero.
        assert_eq!(
            skew_time(Version::V3, 254, centis(1)),
            Duration::from_nanos(78_125)
        );
    }

    #[test]
    fn v2_skew_ignores_the_interval() {
        let three_secs = Interval::from_secs(3).expect("non-zero");
        assert_eq!(
            skew_time(Version::V2, 100, three_secs),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            master_down_interval(Version::V2, 100, three_secs),
            Duration::from_micros(9_609_375)
        );
    }

    #[test]
    fn interval_rejects_zero_and_converts_units() {
        assert_eq!(Interval::from_centis(0), None);
        assert_eq!(Interval::from_secs(0), None);
        assert_eq!(centis(5).as_duration(), Duration::from_millis(50));
        assert_eq!(Interval::from_secs(255).map(Interval::centis), Some(25_500));
        assert_eq!(centis(300).whole_secs(), Some(3));
        assert_eq!(centis(150).whole_secs(), None);
    }

    #[test]
    fn time_addition_saturates_instead_of_panicking() {
        let far = Time::from_millis(5) + Duration::MAX;
        assert_eq!(far.as_duration(), Duration::MAX);
        assert_eq!(
            Time::from_millis(5).saturating_duration_since(Time::from_millis(9)),
            Duration::ZERO
        );
    }
}
