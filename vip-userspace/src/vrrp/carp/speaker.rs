//! One virtual host's advertisements in and out: what the daemon runs every received
//! CARP advertisement through before the election sees it, and what builds ours.
//!
//! Order matters for rule 12 of the design (nothing a stranger sends opens state): the
//! VHID, then the HMAC, and only an advertisement that verified reaches the replay
//! counter's memory. A forger without the passphrase can make vipd count refusals,
//! never remember anything.

use thiserror::Error;

use super::auth::{AuthError, Authenticator, LinkLocal};
use super::election::Rank;
use super::packet::Advert;
use super::replay::{ReplayGuard, Replayed};

/// Why a received advertisement is not acted on. Each is counted and reported by the
/// daemon; none changes any state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Refused {
    #[error("advertisement for VHID {got}, this virtual host is {ours}")]
    OtherVhid { got: u8, ours: u8 },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Replay(#[from] Replayed),
}

/// A verified, fresh advertisement: what the election compares, and which HMAC form the
/// peer used (worth reporting: a FreeBSD peer hashing a link-local address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub rank: Rank,
    pub form: LinkLocal,
}

/// Signs our advertisements and admits the peers' for one virtual host.
#[derive(Debug, Clone)]
pub struct Speaker {
    vhid: u8,
    auth: Authenticator,
    replay: ReplayGuard,
}

impl Speaker {
    pub fn new(vhid: u8, auth: Authenticator, replay: ReplayGuard) -> Speaker {
        Speaker { vhid, auth, replay }
    }

    /// Signs and verifies with `auth` from now on (a reload changed the addresses); what
    /// the replay memory holds, and our own counter, carry on.
    pub fn rekey(&mut self, auth: Authenticator) {
        self.auth = auth;
    }

    /// Checks a decoded advertisement, in the order that keeps forgers from touching
    /// any state.
    pub fn admit(&mut self, advert: &Advert) -> Result<Admitted, Refused> {
        if advert.vhid != self.vhid {
            return Err(Refused::OtherVhid {
                got: advert.vhid,
                ours: self.vhid,
            });
        }
        let form = self.auth.verify(advert.counter, &advert.digest)?;
        self.replay.admit(advert.counter)?;
        Ok(Admitted {
            rank: advert.rank(),
            form,
        })
    }

    /// Our next advertisement at `rank` (pass [`Rank::BOW_OUT`] to leave).
    pub fn advertise(&mut self, rank: Rank) -> Advert {
        let counter = self.replay.next_counter();
        Advert {
            vhid: self.vhid,
            advskew: rank.advskew,
            advbase: rank.advbase,
            demote: rank.demote,
            counter,
            digest: self.auth.sign(counter),
        }
    }

    /// Remembered counter ranges forgotten for lack of room (see `replay`).
    pub fn forgotten(&self) -> u64 {
        self.replay.forgotten()
    }
}
