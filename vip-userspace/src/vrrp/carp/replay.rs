//! CARP's 64-bit counter: refusing old and repeated advertisements, and choosing the
//! counter of our own.
//!
//! The HMAC covers the counter but not the skew, the base or the demotion count, so
//! whoever holds one valid advertisement can send it again with any rank it likes (skew
//! 0, to win; 255, to look like a master bowing out). Only a counter that has not been
//! seen before tells a fresh advertisement from a replayed one. What peers put there
//! (read from their sources; none of them checks it beyond the last point):
//!
//! - **FreeBSD** (so pfSense and OPNsense) **and ucarp**: a random counter for *every*
//!   advertisement until they have heard one valid advertisement of the virtual host;
//!   from then on the last counter heard plus one per advertisement, so a group settles on
//!   one rising sequence once two members have talked (for a moment two sequences
//!   interleave: ucarp reads through pcap with a 1 s timeout, so it may advertise once
//!   more before it reads the advertisement that would have moved its counter;
//!   `tests/tests/lab_carp.rs` shows it). They accept any counter ("XXX Replay
//!   protection goes here").
//! - **OpenBSD**: one random value per virtual host, the same in every advertisement; it
//!   refuses only its own value (its own advertisement looped back).
//!
//! vipd remembers every counter it accepted or sent as ranges: a counter that follows a
//! remembered range by at most [`STEP_MAX`] extends it (a rising sequence is one range
//! however long it runs), any other starts a range of its own (a random counter). In
//! [`ReplayMode::Strict`], for FreeBSD, ucarp and vipd peers, an advertisement whose
//! counter lies in a remembered range is refused: an advertisement resent any time
//! during a rising sequence, or one of the last [`WINDOW`] random ones. Ranges beyond
//! [`WINDOW`] are forgotten oldest first and counted ([`ReplayGuard::forgotten`]); a
//! replay older than that (1,024 random counters: 17 minutes of a lone ucarp master at
//! one advertisement a second) is not recognised. [`ReplayMode::OpenBsd`], for OpenBSD
//! peers, whose constant counter repeats by design, refuses only counters vipd sent
//! itself: with OpenBSD there is no replay protection to be had.
//!
//! Our own counter starts at a random value the caller draws and rises by one per
//! advertisement, skipping past any remembered range it runs into: after a peer has been
//! master, vipd continues above the peer's sequence rather than repeating values the
//! other members already saw (FreeBSD and ucarp do the same by copying the counter they
//! hear).
//!
//! Nothing here is touched before the HMAC has been verified: a stranger without the key
//! cannot make vipd remember anything.

use std::collections::VecDeque;

use thiserror::Error;

/// How many ranges a virtual host remembers.
pub const WINDOW: usize = 1024;
/// The largest step from a range's last counter that still continues it: advertisements
/// lost in between, or a new master continuing the sequence.
pub const STEP_MAX: u64 = 1 << 16;

/// What the peers of a virtual host put in the counter (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReplayMode {
    /// FreeBSD (pfSense, OPNsense), ucarp, vipd: refuse any counter seen before
    /// (`replay = "strict"` in the configuration).
    #[default]
    Strict,
    /// OpenBSD: its counter never changes, so only our own counters are refused
    /// (`replay = "openbsd"`).
    OpenBsd,
}

/// Why a verified advertisement is refused anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Replayed {
    #[error("counter {counter:#018x} seen before: a replayed or repeated advertisement")]
    Seen { counter: u64 },
    #[error("counter {counter:#018x} is one of ours: our own advertisement came back")]
    Ours { counter: u64 },
}

/// Consecutive counters `first`, `first + 1`, ..., `first + span` (wrapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    first: u64,
    span: u64,
}

impl Range {
    fn one(c: u64) -> Range {
        Range { first: c, span: 0 }
    }

    fn contains(&self, c: u64) -> bool {
        c.wrapping_sub(self.first) <= self.span
    }

    fn last(&self) -> u64 {
        self.first.wrapping_add(self.span)
    }

    /// Whether `c` continues this range (comes after its end by at most [`STEP_MAX`]).
    fn continued_by(&self, c: u64) -> bool {
        let step = c.wrapping_sub(self.last());
        // A range that would wrap onto its own start stops growing there.
        (1..=STEP_MAX).contains(&step) && self.span.checked_add(step).is_some_and(|s| s < u64::MAX)
    }
}

/// The counters one virtual host has seen and sent.
#[derive(Debug, Clone)]
pub struct ReplayGuard {
    mode: ReplayMode,
    /// Least recently used first.
    seen: VecDeque<Range>,
    /// Ours alone, for [`ReplayMode::OpenBsd`]; least recently used first.
    ours: VecDeque<Range>,
    next: u64,
    forgotten: u64,
}

impl ReplayGuard {
    /// A guard whose own counter starts at `initial` (draw it at random: a restarted
    /// vipd must not repeat the counters of its last run).
    pub fn new(mode: ReplayMode, initial: u64) -> ReplayGuard {
        ReplayGuard {
            mode,
            seen: VecDeque::new(),
            ours: VecDeque::new(),
            next: initial,
            forgotten: 0,
        }
    }

    pub fn mode(&self) -> ReplayMode {
        self.mode
    }

    /// Admits the counter of an advertisement whose HMAC verified, and remembers it; or
    /// says why it is refused (then nothing is remembered).
    pub fn admit(&mut self, counter: u64) -> Result<(), Replayed> {
        if self.ours.iter().any(|r| r.contains(counter)) {
            return Err(Replayed::Ours { counter });
        }
        match self.mode {
            ReplayMode::Strict => {
                if self.seen.iter().any(|r| r.contains(counter)) {
                    return Err(Replayed::Seen { counter });
                }
                remember(&mut self.seen, counter, &mut self.forgotten);
            }
            // Nothing to learn from a peer's counter but that it is not ours.
            ReplayMode::OpenBsd => {}
        }
        Ok(())
    }

    /// The counter for our next advertisement, remembered as sent.
    pub fn next_counter(&mut self) -> u64 {
        let mut c = self.next;
        // Each jump lands past a different range, so this ends within one pass of them.
        for _ in 0..=self.seen.len() {
            match self.seen.iter().find(|r| r.contains(c)) {
                Some(r) => c = r.last().wrapping_add(1),
                None => break,
            }
        }
        self.next = c.wrapping_add(1);
        remember(&mut self.ours, c, &mut self.forgotten);
        if self.mode == ReplayMode::Strict {
            remember(&mut self.seen, c, &mut self.forgotten);
        }
        c
    }

    /// Ranges forgotten because more than [`WINDOW`] were remembered (of counters seen,
    /// or of our own).
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// How many ranges are remembered now (at most [`WINDOW`]).
    pub fn ranges(&self) -> usize {
        self.seen.len()
    }
}

/// Adds `c` (not in any range of `ranges`) to the range it continues, or as a range of
/// its own, dropping the least recently used range beyond [`WINDOW`].
fn remember(ranges: &mut VecDeque<Range>, c: u64, forgotten: &mut u64) {
    if let Some(i) = ranges.iter().rposition(|r| r.continued_by(c)) {
        let mut r = ranges.remove(i).expect("index from rposition");
        r.span += c.wrapping_sub(r.last());
        ranges.push_back(r);
        return;
    }
    if ranges.iter().any(|r| r.contains(c)) {
        return;
    }
    if ranges.len() == WINDOW {
        ranges.pop_front();
        *forgotten += 1;
    }
    ranges.push_back(Range::one(c));
}
