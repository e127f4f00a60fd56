//! CARP advertisements on the wire, over IPv4 and IPv6.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-------+-------+---------------+---------------+---------------+
//! |Version| Type  | VHID          | AdvSkew       | AuthLen (7)   |
//! +-------+-------+---------------+---------------+---------------+
//! | Demote        | AdvBase       | Checksum                      |
//! +---------------+---------------+-------------------------------+
//! | Counter (64 bits)                                             |
//! |                                                               |
//! +---------------------------------------------------------------+
//! | SHA-1 HMAC (160 bits)                                         |
//! |                                           ...                 |
//! +---------------------------------------------------------------+
//! ```
//!
//! Always 36 bytes, version 2, type 1 (advertisement), `authlen` 7 (the counter and the
//! HMAC in 32-bit words). Byte 4 is OpenBSD's demotion count; FreeBSD and ucarp call it
//! reserved, send 0 and ignore it. AdvBase is whole seconds, AdvSkew 1/256ths of a
//! second. The checksum is the Internet checksum of the 36 bytes alone, over IPv4 and
//! IPv6 alike: no pseudo-header (unlike VRRPv3). Carried in IP protocol 112 to 224.0.0.18
//! or ff02::12 with TTL / hop limit 255 ([`decode_ipv4`], [`decode_ipv6`] check those).
//!
//! [`Advert::decode`] checks length, version, type, `authlen` and checksum. The HMAC and
//! the counter need the virtual host's key and history: `auth` and `replay`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;
use vip_common::wire::{
    CARP_AUTHLEN, CARP_LEN, CARP_TYPE_ADVERTISEMENT, CARP_VERSION, IPPROTO_CARP, VRRP_TTL,
};

use super::election::Rank;
use crate::checksum::inet_checksum;

/// Length of the SHA-1 HMAC an advertisement carries.
pub const DIGEST_LEN: usize = 20;
/// Shortest IPv4 header (IHL 5).
const IPV4_MIN_HEADER_LEN: usize = 20;

/// A CARP advertisement.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Advert {
    /// Virtual host id, 1..=255 (0 is accepted on decode: FreeBSD sends it only as a
    /// loop probe, and no virtual host has it).
    pub vhid: u8,
    /// 1/256ths of a second added to `advbase`: lower is preferred.
    pub advskew: u8,
    /// Whole seconds between advertisements.
    pub advbase: u8,
    /// OpenBSD's demotion count; 0 from FreeBSD and ucarp.
    pub demote: u8,
    /// The 64-bit counter the HMAC covers (see `replay`).
    pub counter: u64,
    /// HMAC-SHA1 of the virtual host and the counter (see `auth`).
    pub digest: [u8; DIGEST_LEN],
}

impl fmt::Debug for Advert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Advert")
            .field("vhid", &self.vhid)
            .field("advbase", &self.advbase)
            .field("advskew", &self.advskew)
            .field("demote", &self.demote)
            .field("counter", &format_args!("{:#018x}", self.counter))
            .field("digest", &format_args!("{}", hex(&self.digest)))
            .finish()
    }
}

/// Why a CARP message (or the IP packet around it) was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("CARP message of {got} bytes, expected {CARP_LEN}")]
    BadLength { got: usize },
    #[error("CARP version {got}, expected {CARP_VERSION}")]
    BadVersion { got: u8 },
    #[error("CARP type {got} is not ADVERTISEMENT ({CARP_TYPE_ADVERTISEMENT})")]
    BadType { got: u8 },
    #[error("CARP authlen {got}, expected {CARP_AUTHLEN}")]
    BadAuthLen { got: u8 },
    #[error("bad checksum: packet carries {got:#06x}, expected {expected:#06x}")]
    BadChecksum { got: u16, expected: u16 },
    #[error("not an IPv4 packet: IP version {got}")]
    NotIpv4 { got: u8 },
    #[error("IPv4 packet of {got} bytes is shorter than its header")]
    TooShort { got: usize },
    #[error("IPv4 header length {got} is below 20 or beyond the {buffer}-byte packet")]
    BadHeaderLength { got: usize, buffer: usize },
    #[error("IPv4 total length {total} is outside {header}..={buffer}")]
    BadTotalLength {
        total: usize,
        header: usize,
        buffer: usize,
    },
    #[error("IP protocol {got}, expected {IPPROTO_CARP} (CARP)")]
    BadProtocol { got: u8 },
    #[error("TTL / hop limit {got}, expected {VRRP_TTL}")]
    BadTtl { got: u8 },
}

impl Advert {
    /// Decodes the 36 bytes of a CARP message.
    pub fn decode(bytes: &[u8]) -> Result<Advert, DecodeError> {
        let bytes: &[u8; CARP_LEN] = bytes
            .try_into()
            .map_err(|_| DecodeError::BadLength { got: bytes.len() })?;
        let version = bytes[0] >> 4;
        if version != CARP_VERSION {
            return Err(DecodeError::BadVersion { got: version });
        }
        let kind = bytes[0] & 0x0f;
        if kind != CARP_TYPE_ADVERTISEMENT {
            return Err(DecodeError::BadType { got: kind });
        }
        if bytes[3] != CARP_AUTHLEN {
            return Err(DecodeError::BadAuthLen { got: bytes[3] });
        }
        let got = u16::from_be_bytes([bytes[6], bytes[7]]);
        let expected = checksum(bytes);
        if got != expected {
            return Err(DecodeError::BadChecksum { got, expected });
        }
        let mut counter = [0; 8];
        counter.copy_from_slice(&bytes[8..16]);
        let mut digest = [0; DIGEST_LEN];
        digest.copy_from_slice(&bytes[16..]);
        Ok(Advert {
            vhid: bytes[1],
            advskew: bytes[2],
            advbase: bytes[5],
            demote: bytes[4],
            counter: u64::from_be_bytes(counter),
            digest,
        })
    }

    /// The 36 bytes on the wire, checksum included.
    pub fn encode(&self) -> [u8; CARP_LEN] {
        let mut out = [0; CARP_LEN];
        out[0] = (CARP_VERSION << 4) | CARP_TYPE_ADVERTISEMENT;
        out[1] = self.vhid;
        out[2] = self.advskew;
        out[3] = CARP_AUTHLEN;
        out[4] = self.demote;
        out[5] = self.advbase;
        out[8..16].copy_from_slice(&self.counter.to_be_bytes());
        out[16..].copy_from_slice(&self.digest);
        let sum = checksum(&out);
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        out
    }

    /// What the election compares.
    pub fn rank(&self) -> Rank {
        Rank {
            demote: self.demote,
            advbase: self.advbase,
            advskew: self.advskew,
        }
    }
}

/// An advertisement with the IP facts a receiver checks or reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Always 255 once decoding succeeded.
    pub ttl: u8,
    pub advert: Advert,
}

/// Decodes a whole IPv4 packet carrying CARP, as a raw IPv4 socket delivers it: honours
/// the IHL and the total length (trailing link-layer padding is ignored). The IPv4 header
/// checksum is left to the kernel, which drops bad ones before any raw socket sees them.
pub fn decode_ipv4(packet: &[u8]) -> Result<Received, DecodeError> {
    if packet.len() < IPV4_MIN_HEADER_LEN {
        return Err(DecodeError::TooShort { got: packet.len() });
    }
    let ip_version = packet[0] >> 4;
    if ip_version != 4 {
        return Err(DecodeError::NotIpv4 { got: ip_version });
    }
    let header = usize::from(packet[0] & 0x0f) * 4;
    if header < IPV4_MIN_HEADER_LEN || header > packet.len() {
        return Err(DecodeError::BadHeaderLength {
            got: header,
            buffer: packet.len(),
        });
    }
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if total < header || total > packet.len() {
        return Err(DecodeError::BadTotalLength {
            total,
            header,
            buffer: packet.len(),
        });
    }
    if packet[9] != IPPROTO_CARP {
        return Err(DecodeError::BadProtocol { got: packet[9] });
    }
    if packet[8] != VRRP_TTL {
        return Err(DecodeError::BadTtl { got: packet[8] });
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    Ok(Received {
        src: src.into(),
        dst: dst.into(),
        ttl: VRRP_TTL,
        advert: Advert::decode(&packet[header..total])?,
    })
}

/// Decodes a CARP payload received over IPv6; the header fields come from the socket's
/// ancillary data, since raw IPv6 sockets strip the header.
pub fn decode_ipv6(
    payload: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
) -> Result<Received, DecodeError> {
    if hop_limit != VRRP_TTL {
        return Err(DecodeError::BadTtl { got: hop_limit });
    }
    Ok(Received {
        src: src.into(),
        dst: dst.into(),
        ttl: hop_limit,
        advert: Advert::decode(payload)?,
    })
}

/// The checksum of a CARP message with its checksum field taken as zero.
fn checksum(message: &[u8; CARP_LEN]) -> u16 {
    inet_checksum(&[&message[..6], &[0, 0], &message[8..]])
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
