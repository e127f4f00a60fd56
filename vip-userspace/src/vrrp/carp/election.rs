//! Who is master of a CARP virtual host, as carp(4) and ucarp decide it, and how vipd's
//! priority maps onto it.
//!
//! CARP has no priority field. A router is judged by its **demotion count** (byte 4,
//! OpenBSD's; FreeBSD and ucarp send 0), lower preferred, then by **how often it
//! advertises**: `advbase` seconds plus `advskew`/256 of a second, shorter preferred.
//! Backups do not advertise; the master does, every such interval of its own.
//!
//! On a verified, fresh advertisement (`auth`, `replay`):
//! - A **master** steps down when the sender is preferred ([`Rank::preference`]). On a
//!   tie, the lower source address stays master, as ucarp decides; the BSDs step down on
//!   a tie whatever the addresses, so give BSD peers a skew of their own. A master that
//!   hears a less preferred one stays and says so again at once ([`AsMaster::Stay`]'s
//!   `reassert`: ucarp sends a gratuitous ARP then).
//! - A **backup** takes over at once ([`as_backup`], in OpenBSD's order) when
//!   1. `preempt` is on, it advertises more often than the master and the master's
//!      demotion count is not lower (carp(4)'s `net.inet.carp.preempt`, ucarp's
//!      `--preempt`);
//!   2. the master's demotion count is higher than its own, preempt or not (OpenBSD);
//!   3. the master bows out (advbase 255 and advskew 255, what OpenBSD sends when its
//!      carp interface goes down), or advertises so rarely that it would be declared
//!      dead before its next advertisement: `dead_ratio` × our advbase + our advskew/256
//!      is less than its interval (the BSDs skip this with an advbase of 0);
//!
//!   otherwise it restarts its master-down timer: [`master_down`], `dead_ratio` × its
//!   *own* advbase plus its *own* advskew/256 (the BSDs' `dead_ratio` is 3, ucarp's
//!   `--deadratio`). A backup never takes a timer from the master's advertisement, so a
//!   forged advbase cannot stretch how long a dead master goes unnoticed (unlike
//!   VRRPv3's learned interval), and needs no clamp.
//!
//! ## vipd's priority as advskew
//!
//! `advskew = 255 − priority`: priority 255 is skew 0 (the most preferred, advertising
//! every `advbase`), vipd's default 100 is skew 155, priority 1 is skew 254. Skew 255 is
//! left for the bow-out. Tracking weights move the skew the other way by the same amount
//! (a weight of −20 adds 20 to the skew), clamped to 0..=254, which is how FreeBSD
//! demotes (`net.inet.carp.demotion` is added to every skew); the demotion byte stays 0
//! unless set on purpose. `preempt` means what it means for VRRP: a backup that ranks
//! above the master takes over as soon as it hears it; without it, it waits for the
//! master to fail or bow out.

use std::cmp::Ordering;
use std::net::IpAddr;
use std::time::Duration;

/// The BSDs' ratio of master-down time to advertisement base.
pub const DEAD_RATIO: u8 = 3;

/// What routers of a virtual host are compared by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rank {
    /// OpenBSD's demotion count; 0 from FreeBSD and ucarp.
    pub demote: u8,
    /// Whole seconds.
    pub advbase: u8,
    /// 1/256ths of a second.
    pub advskew: u8,
}

impl Rank {
    /// A rank with no demotion.
    pub const fn new(advbase: u8, advskew: u8) -> Rank {
        Rank {
            demote: 0,
            advbase,
            advskew,
        }
    }

    /// What a master sends as it leaves: the longest interval there is.
    pub const BOW_OUT: Rank = Rank::new(255, 255);

    pub const fn is_bow_out(&self) -> bool {
        self.advbase == 255 && self.advskew == 255
    }

    /// `advbase` seconds plus `advskew`/256 of a second, in whole microseconds as the
    /// BSDs count it. OpenBSD advertises every 1/256 s when both are 0.
    pub fn interval(&self) -> Duration {
        let micros =
            u64::from(self.advbase) * 1_000_000 + u64::from(self.advskew) * 1_000_000 / 256;
        Duration::from_micros(if micros == 0 { 1_000_000 / 256 } else { micros })
    }

    /// `Less` when `self` is preferred to `other`: a lower demotion count, then a shorter
    /// interval. `Equal` is a tie.
    pub fn preference(&self, other: &Rank) -> Ordering {
        self.demote
            .cmp(&other.demote)
            .then_with(|| self.interval().cmp(&other.interval()))
    }
}

/// How long a backup waits without hearing the master: `dead_ratio` × its own advbase
/// plus its own advskew/256 (with both 0, `dead_ratio`/256 of a second, as OpenBSD). A
/// ratio of 0 (which ucarp refuses) counts as 1: a backup never declares a master dead
/// the moment it hears it.
pub fn master_down(ours: Rank, dead_ratio: u8) -> Duration {
    let r = u64::from(dead_ratio.max(1));
    let micros =
        r * u64::from(ours.advbase) * 1_000_000 + u64::from(ours.advskew) * 1_000_000 / 256;
    Duration::from_micros(if ours.advbase == 0 && ours.advskew == 0 {
        r * 1_000_000 / 256
    } else {
        micros
    })
}

/// What a master does with a verified advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsMaster {
    /// The sender is preferred: become backup.
    StepDown,
    /// Stay master; with `reassert`, the sender is a master less preferred than us:
    /// advertise (and announce the addresses) again now.
    Stay { reassert: bool },
}

pub fn as_master(ours: Rank, our_addr: IpAddr, theirs: Rank, their_addr: IpAddr) -> AsMaster {
    match theirs.preference(&ours) {
        Ordering::Less => AsMaster::StepDown,
        Ordering::Greater => AsMaster::Stay { reassert: true },
        // ucarp's tie-break: the lower address stays master.
        Ordering::Equal if their_addr < our_addr => AsMaster::StepDown,
        Ordering::Equal => AsMaster::Stay {
            reassert: their_addr != our_addr,
        },
    }
}

/// Why a backup takes over without waiting for the master-down timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeOver {
    /// `preempt` is on and we advertise more often than the master.
    Preempt,
    /// The master's demotion count is higher than ours.
    Demoted,
    /// The master bows out (advbase and advskew 255).
    BowOut,
    /// The master advertises less often than our master-down time.
    TooSlow,
}

/// What a backup does with a verified advertisement from the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsBackup {
    TakeOver(TakeOver),
    /// Restart the master-down timer with this.
    Wait {
        master_down: Duration,
    },
}

pub fn as_backup(ours: Rank, theirs: Rank, preempt: bool, dead_ratio: u8) -> AsBackup {
    if preempt && ours.interval() < theirs.interval() && theirs.demote >= ours.demote {
        return AsBackup::TakeOver(TakeOver::Preempt);
    }
    if theirs.demote > ours.demote {
        return AsBackup::TakeOver(TakeOver::Demoted);
    }
    if theirs.is_bow_out() {
        return AsBackup::TakeOver(TakeOver::BowOut);
    }
    let threshold = Duration::from_secs(u64::from(dead_ratio.max(1)) * u64::from(ours.advbase))
        + Duration::from_micros(u64::from(ours.advskew) * 1_000_000 / 256);
    if ours.advbase != 0 && threshold < theirs.interval() {
        return AsBackup::TakeOver(TakeOver::TooSlow);
    }
    AsBackup::Wait {
        master_down: master_down(ours, dead_ratio),
    }
}

/// vipd's priority (1..=255; 0 counts as 1) as a CARP advskew: `255 − priority`.
pub const fn advskew_for_priority(priority: u8) -> u8 {
    let p = if priority == 0 { 1 } else { priority };
    255 - p
}

/// The priority an advskew stands for (0..=254; 255, the bow-out's, counts as 254).
pub const fn priority_for_advskew(advskew: u8) -> u8 {
    let s = if advskew == 255 { 254 } else { advskew };
    255 - s
}
