//! BFD on the wire: the Control packet of RFC 5880 §4.1 (no authentication section: vipd
//! sends none and refuses packets that carry one, §6.8.6), and vipd's echo payload.
//!
//! Echo packets (RFC 5880 §6.4) are the sender's own business: the far end only loops them
//! back, so their contents are whatever lets the sender recognise its own. vipd's are
//! 24 bytes: `vipd`, a format byte (2), three zeros, the session's discriminator, a
//! sequence number and the session's nonce, 64 random bits drawn when the session opens:
//! a forger who guesses or learns the discriminator still cannot make an echo of its own
//! pass for one of ours (docs/architecture.md, "BFD").

use std::fmt;

use thiserror::Error;

/// UDP destination port of single-hop Control packets (RFC 5881 §4).
pub const CONTROL_PORT: u16 = 3784;
/// UDP destination port of Echo packets (RFC 5881 §4).
pub const ECHO_PORT: u16 = 3785;
/// Control packets come from a source port in 49152..=65535 (RFC 5881 §4).
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
pub const CONTROL_LEN: usize = 24;
pub const ECHO_LEN: usize = 24;
const ECHO_MAGIC: [u8; 4] = *b"vipd";
const ECHO_FORMAT: u8 = 2;

/// The session states of RFC 5880 §4.1, in their wire encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BfdState {
    AdminDown = 0,
    Down = 1,
    Init = 2,
    Up = 3,
}

impl BfdState {
    fn from_bits(b: u8) -> BfdState {
        match b & 3 {
            0 => BfdState::AdminDown,
            1 => BfdState::Down,
            2 => BfdState::Init,
            _ => BfdState::Up,
        }
    }
}

impl fmt::Display for BfdState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BfdState::AdminDown => "admin-down",
            BfdState::Down => "down",
            BfdState::Init => "init",
            BfdState::Up => "up",
        })
    }
}

/// Diagnostic codes (RFC 5880 §4.1): why the session last left Up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diag {
    None = 0,
    ControlDetectionTimeExpired = 1,
    EchoFunctionFailed = 2,
    NeighborSignaledDown = 3,
    ForwardingPlaneReset = 4,
    PathDown = 5,
    ConcatenatedPathDown = 6,
    AdministrativelyDown = 7,
    ReverseConcatenatedPathDown = 8,
}

impl Diag {
    fn from_bits(b: u8) -> Diag {
        match b & 0x1f {
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFunctionFailed,
            3 => Diag::NeighborSignaledDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            _ => Diag::None,
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Diag::None => "none",
            Diag::ControlDetectionTimeExpired => "control detection time expired",
            Diag::EchoFunctionFailed => "echo function failed",
            Diag::NeighborSignaledDown => "neighbor signaled session down",
            Diag::ForwardingPlaneReset => "forwarding plane reset",
            Diag::PathDown => "path down",
            Diag::ConcatenatedPathDown => "concatenated path down",
            Diag::AdministrativelyDown => "administratively down",
            Diag::ReverseConcatenatedPathDown => "reverse concatenated path down",
        })
    }
}

/// A BFD Control packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    pub diag: Diag,
    pub state: BfdState,
    pub poll: bool,
    pub final_: bool,
    /// Control Plane Independent: vipd's control packets come from the daemon, so 0.
    pub cpi: bool,
    pub demand: bool,
    pub detect_mult: u8,
    pub my_disc: u32,
    pub your_disc: u32,
    /// Microseconds.
    pub desired_min_tx: u32,
    pub required_min_rx: u32,
    pub required_min_echo_rx: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BfdError {
    #[error("{len} bytes: shorter than a BFD Control packet")]
    Short { len: usize },
    #[error("version {0}, not 1")]
    Version(u8),
    #[error("length field {field} does not fit the {len} bytes received")]
    Length { field: usize, len: usize },
    #[error("authentication present, none configured")]
    Auth,
    #[error("detect multiplier 0")]
    ZeroMult,
    #[error("multipoint bit set")]
    Multipoint,
    #[error("my discriminator 0")]
    ZeroDisc,
}

impl Control {
    /// Parses and applies the checks of RFC 5880 §6.8.6 that need no session.
    pub fn decode(b: &[u8]) -> Result<Control, BfdError> {
        if b.len() < CONTROL_LEN {
            return Err(BfdError::Short { len: b.len() });
        }
        let version = b[0] >> 5;
        if version != 1 {
            return Err(BfdError::Version(version));
        }
        let field = usize::from(b[3]);
        if field < CONTROL_LEN || field > b.len() {
            return Err(BfdError::Length {
                field,
                len: b.len(),
            });
        }
        let flags = b[1];
        if flags & 0x04 != 0 {
            return Err(BfdError::Auth);
        }
        if flags & 0x01 != 0 {
            return Err(BfdError::Multipoint);
        }
        if b[2] == 0 {
            return Err(BfdError::ZeroMult);
        }
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let my_disc = word(4);
        if my_disc == 0 {
            return Err(BfdError::ZeroDisc);
        }
        Ok(Control {
            diag: Diag::from_bits(b[0]),
            state: BfdState::from_bits(flags >> 6),
            poll: flags & 0x20 != 0,
            final_: flags & 0x10 != 0,
            cpi: flags & 0x08 != 0,
            demand: flags & 0x02 != 0,
            detect_mult: b[2],
            my_disc,
            your_disc: word(8),
            desired_min_tx: word(12),
            required_min_rx: word(16),
            required_min_echo_rx: word(20),
        })
    }

    pub fn encode(&self) -> [u8; CONTROL_LEN] {
        let mut b = [0u8; CONTROL_LEN];
        b[0] = (1 << 5) | (self.diag as u8 & 0x1f);
        b[1] = ((self.state as u8) << 6)
            | (u8::from(self.poll) << 5)
            | (u8::from(self.final_) << 4)
            | (u8::from(self.cpi) << 3)
            | (u8::from(self.demand) << 1);
        b[2] = self.detect_mult;
        b[3] = CONTROL_LEN as u8;
        b[4..8].copy_from_slice(&self.my_disc.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_disc.to_be_bytes());
        b[12..16].copy_from_slice(&self.desired_min_tx.to_be_bytes());
        b[16..20].copy_from_slice(&self.required_min_rx.to_be_bytes());
        b[20..24].copy_from_slice(&self.required_min_echo_rx.to_be_bytes());
        b
    }
}

/// One of our echo packets: the session that sent it (its discriminator and nonce) and
/// its sequence number. Whether it really is ours is the session's call: only the nonce
/// proves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo {
    pub disc: u32,
    pub seq: u32,
    pub nonce: u64,
}

impl Echo {
    pub fn encode(&self) -> [u8; ECHO_LEN] {
        let mut b = [0u8; ECHO_LEN];
        b[..4].copy_from_slice(&ECHO_MAGIC);
        b[4] = ECHO_FORMAT;
        b[8..12].copy_from_slice(&self.disc.to_be_bytes());
        b[12..16].copy_from_slice(&self.seq.to_be_bytes());
        b[16..24].copy_from_slice(&self.nonce.to_be_bytes());
        b
    }

    /// `None` for anything not in vipd's echo format (which says nothing yet about
    /// whose it is).
    pub fn decode(b: &[u8]) -> Option<Echo> {
        if b.len() != ECHO_LEN || b[..4] != ECHO_MAGIC || b[4] != ECHO_FORMAT {
            return None;
        }
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(Echo {
            disc: word(8),
            seq: word(12),
            nonce: (u64::from(word(16)) << 32) | u64::from(word(20)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Control {
        Control {
            diag: Diag::EchoFunctionFailed,
            state: BfdState::Up,
            poll: true,
            final_: false,
            cpi: false,
            demand: false,
            detect_mult: 3,
            my_disc: 0x0102_0304,
            your_disc: 0x0a0b_0c0d,
            desired_min_tx: 1000,
            required_min_rx: 1_000_000,
            required_min_echo_rx: 1000,
        }
    }

    #[test]
    fn test_emit_and_parse_round_trip() {
        let c = sample();
        let b = c.encode();
        // Version 1, diag 2; state Up (3 << 6) with P (0x20).
        assert_eq!(&b[..4], &[0x22, 0xe0, 3, 24]);
        assert_eq!(Control::decode(&b), Ok(c));
    }

    #[test]
    fn test_parse_refuses_what_rfc_5880_discards() {
        let good = sample().encode();
        let with = |i: usize, v: u8| {
            let mut b = good;
            b[i] = v;
            b
        };
        assert_eq!(
            Control::decode(&good[..23]),
            Err(BfdError::Short { len: 23 })
        );
        assert_eq!(Control::decode(&with(0, 0x42)), Err(BfdError::Version(2)));
        assert!(matches!(
            Control::decode(&with(3, 23)),
            Err(BfdError::Length { .. })
        ));
        assert!(matches!(
            Control::decode(&with(3, 48)),
            Err(BfdError::Length { .. })
        ));
        assert_eq!(Control::decode(&with(1, 0xc4)), Err(BfdError::Auth));
        assert_eq!(Control::decode(&with(1, 0xc1)), Err(BfdError::Multipoint));
        assert_eq!(Control::decode(&with(2, 0)), Err(BfdError::ZeroMult));
        let mut zero = good;
        zero[4..8].copy_from_slice(&[0; 4]);
        assert_eq!(Control::decode(&zero), Err(BfdError::ZeroDisc));
    }

    #[test]
    fn echo_payloads_round_trip_and_nothing_else_decodes() {
        let e = Echo {
            disc: 7,
            seq: 99,
            nonce: 0x0102_0304_0506_0708,
        };
        let b = e.encode();
        assert_eq!(&b[..8], b"vipd\x02\0\0\0");
        assert_eq!(&b[16..], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(Echo::decode(&b), Some(e));
        let mut other = b;
        other[0] = b'x';
        assert_eq!(Echo::decode(&other), None);
        // The format of vipd before nonces (16 bytes, format 1) is not taken for ours.
        let mut old = [0u8; 16];
        old[..5].copy_from_slice(b"vipd\x01");
        assert_eq!(Echo::decode(&old), None);
        assert_eq!(Echo::decode(&b[..23]), None);
    }
}
