//! VRRP advertisements on the wire: VRRPv3 (RFC 9568, formerly RFC 5798) over IPv4 and
//! IPv6, VRRPv2 (RFC 3768) over IPv4.
//!
//! Two layers, in the manner of smoltcp's wire modules:
//! - [`Packet`] is a length-checked read-only view of the VRRP bytes;
//! - [`Advert`] is the typed representation, with [`Advert::decode`] / [`Advert::encode`].
//!
//! [`decode_ipv4`] parses a whole IPv4 packet (what a raw IPv4 socket returns) and
//! [`decode_ipv6`] a VRRP payload whose IPv6 header fields the caller got as ancillary
//! data (a raw IPv6 socket strips the header).
//!
//! ## Checksums
//! - v2: the VRRP message only, authentication data included (RFC 3768 §5.3.8).
//! - v3 over IPv6: the message plus the RFC 8200 §8.1 pseudo-header.
//! - v3 over IPv4: RFC 9568 §5.2.8 says the message only; RFC 5798 put the IPv4
//!   pseudo-header under it and the deployed base (keepalived 2.2.7, whose captures are the
//!   test vectors) still sends and requires that form. [`Advert::encode`] therefore emits
//!   the pseudo-header form ([`ChecksumForm::PseudoHeader`]) so peers accept us, and
//!   decoding accepts either form, reporting which one matched; [`Advert::encode_with`]
//!   emits the RFC 9568 form for peers that want it.
//!
//! ## Receive checks (RFC 9568 §7.1 and its verified errata)
//! Decoding enforces version, type, complete length, checksum, a non-zero address count
//! (erratum 8299) and a non-zero interval (erratum 8301); the IP helpers add TTL / hop
//! limit 255 and protocol 112. Left to the caller, who has the configuration: whether the
//! VRID is configured, and whether the advertised interval matches ours (a SHOULD-log).
//! Not enforced: erratum 8300's "first IPv6 address is link-local", because keepalived
//! 2.2.7 sends only the global VIP (vector `vrrpv3_ipv6_vrid53`) and rejecting it would
//! break interoperation; [`Advert::first_address_is_link_local`] lets the caller log it.
//! The destination address is not checked either: unicast peers are legitimate.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;
use vip_common::wire::{IPPROTO_VRRP, VRRP_TTL};

use super::timing::Interval;
use crate::checksum::inet_checksum;

/// Fixed part of every VRRP message, before the addresses.
pub const HEADER_LEN: usize = 8;
/// VRRPv2 authentication data after the addresses.
pub const V2_AUTH_LEN: usize = 8;
/// The only VRRP message type.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Shortest IPv4 header (IHL 5).
pub const IPV4_MIN_HEADER_LEN: usize = 20;

const V3_INTERVAL_MASK: u16 = 0x0fff;

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// RFC 3768: IPv4 only, intervals in whole seconds, an authentication field.
    V2,
    /// RFC 9568: IPv4 and IPv6, intervals in centiseconds.
    V3,
}

impl Version {
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VRRPv{}", self.number())
    }
}

/// IP address family of a virtual router (VRRP keeps IPv4 and IPv6 instances apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub const fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// "IPv4" / "IPv6", as messages spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        }
    }

    /// Bytes per address in the advertisement's address list.
    pub const fn addr_len(self) -> usize {
        match self {
            Family::Ipv4 => 4,
            Family::Ipv6 => 16,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

/// VRRPv2 authentication type (RFC 3768 §5.3.6; RFC 2338 defined 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthType {
    None,
    /// RFC 2338 simple text password, still sent by keepalived.
    SimpleText,
    /// RFC 2338 IP Authentication Header; the data field is then unused.
    IpAh,
    Other(u8),
}

impl From<u8> for AuthType {
    fn from(value: u8) -> AuthType {
        match value {
            0 => AuthType::None,
            1 => AuthType::SimpleText,
            2 => AuthType::IpAh,
            other => AuthType::Other(other),
        }
    }
}

impl From<AuthType> for u8 {
    fn from(value: AuthType) -> u8 {
        match value {
            AuthType::None => 0,
            AuthType::SimpleText => 1,
            AuthType::IpAh => 2,
            AuthType::Other(other) => other,
        }
    }
}

/// The VRRPv2 authentication fields, kept byte for byte so re-encoding is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Auth {
    pub auth_type: AuthType,
    pub data: [u8; V2_AUTH_LEN],
}

impl Auth {
    /// No authentication, zero data (what RFC 3768 requires on transmit).
    pub const NONE: Auth = Auth {
        auth_type: AuthType::None,
        data: [0; V2_AUTH_LEN],
    };

    /// A simple-text password, zero-padded to 8 bytes as keepalived does.
    pub fn simple_text(password: &[u8]) -> Result<Auth, EncodeError> {
        if password.len() > V2_AUTH_LEN {
            return Err(EncodeError::PasswordTooLong {
                len: password.len(),
            });
        }
        let mut data = [0; V2_AUTH_LEN];
        data[..password.len()].copy_from_slice(password);
        Ok(Auth {
            auth_type: AuthType::SimpleText,
            data,
        })
    }

    /// The password of a simple-text authentication, without its zero padding.
    pub fn password(&self) -> Option<&[u8]> {
        if self.auth_type != AuthType::SimpleText {
            return None;
        }
        let end = self
            .data
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(V2_AUTH_LEN);
        Some(&self.data[..end])
    }
}

/// Which bytes a checksum covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumForm {
    /// Message plus IP pseudo-header: v3 over IPv6 always; v3 over IPv4 as RFC 5798 and
    /// keepalived do.
    PseudoHeader,
    /// Message only: v2 always; v3 over IPv4 as RFC 9568 §5.2.8 specifies.
    MessageOnly,
}

/// Why a VRRP message (or the IP packet around it) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("too short: {got} bytes, need at least {need}")]
    TooShort { got: usize, need: usize },
    #[error("unsupported VRRP version {got} (expected 2 or 3)")]
    BadVersion { got: u8 },
    #[error("VRRP type {got} is not ADVERTISEMENT ({TYPE_ADVERTISEMENT})")]
    BadType { got: u8 },
    #[error("address count is 0 (RFC 9568 erratum 8299)")]
    NoAddresses,
    #[error("length {got} does not match {count} address(es): expected {expected} bytes")]
    LengthMismatch {
        count: u8,
        expected: usize,
        got: usize,
    },
    #[error("bad checksum: packet carries {got:#06x}, expected {expected:#06x}")]
    BadChecksum { got: u16, expected: u16 },
    #[error("advertisement interval is 0 (RFC 9568 erratum 8301)")]
    ZeroInterval,
    #[error("VRRPv2 is IPv4 only, got it over {family}")]
    V2NotIpv4 { family: Family },
    #[error("source {src} and destination {dst} are of different families")]
    FamilyMismatch { src: IpAddr, dst: IpAddr },
    #[error("not an IPv4 packet: IP version {got}")]
    NotIpv4 { got: u8 },
    #[error("IPv4 header length {got} is below 20 or beyond the {buffer}-byte packet")]
    BadHeaderLength { got: usize, buffer: usize },
    #[error("IPv4 total length {total} is outside {header}..={buffer}")]
    BadTotalLength {
        total: usize,
        header: usize,
        buffer: usize,
    },
    #[error("IP protocol {got}, expected {IPPROTO_VRRP} (VRRP)")]
    BadProtocol { got: u8 },
    #[error("TTL / hop limit {got}, expected {VRRP_TTL}")]
    BadTtl { got: u8 },
}

/// Why an [`Advert`] cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("an advertisement needs at least one address")]
    NoAddresses,
    #[error("{count} addresses do not fit the 8-bit count")]
    TooManyAddresses { count: usize },
    #[error("address {addr} is not {expected} like the packet's source")]
    AddressFamily { addr: IpAddr, expected: Family },
    #[error("source {src} and destination {dst} are of different families")]
    FamilyMismatch { src: IpAddr, dst: IpAddr },
    #[error("VRRPv2 is IPv4 only, asked for {family}")]
    V2NotIpv4 { family: Family },
    #[error("{version} cannot carry an interval of {interval}")]
    IntervalOutOfRange {
        version: Version,
        interval: Interval,
    },
    #[error("VRRPv3 has no authentication field")]
    AuthOnV3,
    #[error("VRRPv2 needs its authentication field (use Auth::NONE for none)")]
    MissingV2Auth,
    #[error("{version} over {family} cannot use the {form:?} checksum")]
    ChecksumFormNotAllowed {
        version: Version,
        family: Family,
        form: ChecksumForm,
    },
    #[error("simple-text password of {len} bytes exceeds 8")]
    PasswordTooLong { len: usize },
}

/// A length-checked, read-only view of a VRRP message.
///
/// Only [`Packet::new_checked`] builds one, so every accessor can index without panicking.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
    version: Version,
    family: Family,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks the version, type, address count and that the length is exactly what the
    /// count announces for `family`. The checksum is [`Advert::decode`]'s job: it needs
    /// the IP addresses.
    pub fn new_checked(buffer: T, family: Family) -> Result<Packet<T>, DecodeError> {
        let bytes = buffer.as_ref();
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::TooShort {
                got: bytes.len(),
                need: HEADER_LEN,
            });
        }
        let version = match bytes[0] >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            got => return Err(DecodeError::BadVersion { got }),
        };
        let packet_type = bytes[0] & 0x0f;
        if packet_type != TYPE_ADVERTISEMENT {
            return Err(DecodeError::BadType { got: packet_type });
        }
        if version == Version::V2 && family != Family::Ipv4 {
            return Err(DecodeError::V2NotIpv4 { family });
        }
        let count = bytes[3];
        if count == 0 {
            return Err(DecodeError::NoAddresses);
        }
        let expected = expected_len(version, family, usize::from(count));
        if bytes.len() != expected {
            return Err(DecodeError::LengthMismatch {
                count,
                expected,
                got: bytes.len(),
            });
        }
        Ok(Packet {
            buffer,
            version,
            family,
        })
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn vrid(&self) -> u8 {
        self.bytes()[1]
    }

    pub fn priority(&self) -> u8 {
        self.bytes()[2]
    }

    pub fn addr_count(&self) -> u8 {
        self.bytes()[3]
    }

    /// The raw interval field: centiseconds (v3, reserved bits dropped) or seconds (v2).
    pub fn raw_interval(&self) -> u16 {
        match self.version {
            Version::V3 => read_u16(self.bytes(), 4) & V3_INTERVAL_MASK,
            Version::V2 => u16::from(self.bytes()[5]),
        }
    }

    pub fn interval(&self) -> Option<Interval> {
        match self.version {
            Version::V3 => Interval::from_centis(self.raw_interval()),
            Version::V2 => Interval::from_secs(self.bytes()[5]),
        }
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.bytes(), 6)
    }

    /// v2 only: the authentication type and data.
    pub fn auth(&self) -> Option<Auth> {
        if self.version != Version::V2 {
            return None;
        }
        let bytes = self.bytes();
        let mut data = [0; V2_AUTH_LEN];
        data.copy_from_slice(&bytes[bytes.len() - V2_AUTH_LEN..]);
        Some(Auth {
            auth_type: AuthType::from(bytes[4]),
            data,
        })
    }

    pub fn addresses(&self) -> Vec<IpAddr> {
        let len = self.family.addr_len();
        let start = HEADER_LEN;
        let end = start + usize::from(self.addr_count()) * len;
        self.bytes()[start..end]
            .chunks_exact(len)
            .map(|chunk| ip_from_slice(self.family, chunk))
            .collect()
    }

    /// The checksum computed over this message (checksum field taken as zero) for `form`.
    pub fn compute_checksum(&self, src: IpAddr, dst: IpAddr, form: ChecksumForm) -> u16 {
        checksum(self.bytes(), src, dst, form)
    }
}

/// A VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    /// 0 = the sender resigns, 255 = the sender owns the addresses.
    pub priority: u8,
    /// Max Advertise Interval (v3) / Adver Int (v2).
    pub max_adver_int: Interval,
    /// All of one family, the family of the IP header.
    pub addresses: Vec<IpAddr>,
    /// `Some` for v2 (always, even for type 0, so decode then encode is exact), `None` for v3.
    pub auth: Option<Auth>,
}

impl Advert {
    /// A VRRPv3 advertisement.
    pub fn v3(vrid: u8, priority: u8, max_adver_int: Interval, addresses: Vec<IpAddr>) -> Advert {
        Advert {
            version: Version::V3,
            vrid,
            priority,
            max_adver_int,
            addresses,
            auth: None,
        }
    }

    /// A VRRPv2 advertisement.
    pub fn v2(
        vrid: u8,
        priority: u8,
        max_adver_int: Interval,
        addresses: Vec<IpAddr>,
        auth: Auth,
    ) -> Advert {
        Advert {
            version: Version::V2,
            vrid,
            priority,
            max_adver_int,
            addresses,
            auth: Some(auth),
        }
    }

    /// Decodes a VRRP message that arrived from `src` to `dst`.
    pub fn decode(bytes: &[u8], src: IpAddr, dst: IpAddr) -> Result<Advert, DecodeError> {
        Advert::decode_with_form(bytes, src, dst).map(|(advert, _)| advert)
    }

    /// As [`Advert::decode`], also telling which checksum form matched (worth counting:
    /// it shows which peers follow RFC 9568 for IPv4).
    pub fn decode_with_form(
        bytes: &[u8],
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<(Advert, ChecksumForm), DecodeError> {
        let family = Family::of(&src);
        if family != Family::of(&dst) {
            return Err(DecodeError::FamilyMismatch { src, dst });
        }
        let packet = Packet::new_checked(bytes, family)?;
        let form = verify_checksum(&packet, src, dst)?;
        let max_adver_int = packet.interval().ok_or(DecodeError::ZeroInterval)?;
        let advert = Advert {
            version: packet.version(),
            vrid: packet.vrid(),
            priority: packet.priority(),
            max_adver_int,
            addresses: packet.addresses(),
            auth: packet.auth(),
        };
        Ok((advert, form))
    }

    /// Encodes with the checksum form peers expect: see the module docs.
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Result<Vec<u8>, EncodeError> {
        let form = match self.version {
            Version::V2 => ChecksumForm::MessageOnly,
            Version::V3 => ChecksumForm::PseudoHeader,
        };
        self.encode_with(src, dst, form)
    }

    /// Encodes with an explicit checksum form; only v3 over IPv4 has a choice.
    pub fn encode_with(
        &self,
        src: IpAddr,
        dst: IpAddr,
        form: ChecksumForm,
    ) -> Result<Vec<u8>, EncodeError> {
        let family = Family::of(&src);
        if family != Family::of(&dst) {
            return Err(EncodeError::FamilyMismatch { src, dst });
        }
        let form_allowed = match (self.version, family) {
            (Version::V2, _) => form == ChecksumForm::MessageOnly,
            (Version::V3, Family::Ipv4) => true,
            (Version::V3, Family::Ipv6) => form == ChecksumForm::PseudoHeader,
        };
        if !form_allowed {
            return Err(EncodeError::ChecksumFormNotAllowed {
                version: self.version,
                family,
                form,
            });
        }
        let count = self.checked_count(family)?;
        let (interval_field, auth) = self.checked_version_fields(family)?;

        let mut out = Vec::with_capacity(expected_len(self.version, family, usize::from(count)));
        out.push((self.version.number() << 4) | TYPE_ADVERTISEMENT);
        out.push(self.vrid);
        out.push(self.priority);
        out.push(count);
        out.extend_from_slice(&interval_field);
        out.extend_from_slice(&[0, 0]);
        for addr in &self.addresses {
            match addr {
                IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
            }
        }
        if let Some(auth) = auth {
            out.extend_from_slice(&auth.data);
        }
        let sum = checksum(&out, src, dst, form);
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(out)
    }

    /// Erratum 8300 wants an IPv6 advertisement's first address to be link-local; this
    /// tells the caller whether it is (always `true` for IPv4).
    pub fn first_address_is_link_local(&self) -> bool {
        match self.addresses.first() {
            Some(IpAddr::V6(a)) => a.is_unicast_link_local(),
            Some(IpAddr::V4(_)) => true,
            None => false,
        }
    }

    fn checked_count(&self, family: Family) -> Result<u8, EncodeError> {
        if self.addresses.is_empty() {
            return Err(EncodeError::NoAddresses);
        }
        if let Some(addr) = self.addresses.iter().find(|a| Family::of(a) != family) {
            return Err(EncodeError::AddressFamily {
                addr: *addr,
                expected: family,
            });
        }
        u8::try_from(self.addresses.len()).map_err(|_| EncodeError::TooManyAddresses {
            count: self.addresses.len(),
        })
    }

    /// Bytes 4..6 of the message, and the auth trailer for v2.
    fn checked_version_fields(
        &self,
        family: Family,
    ) -> Result<([u8; 2], Option<Auth>), EncodeError> {
        let out_of_range = EncodeError::IntervalOutOfRange {
            version: self.version,
            interval: self.max_adver_int,
        };
        match self.version {
            Version::V3 => {
                if self.auth.is_some() {
                    return Err(EncodeError::AuthOnV3);
                }
                let centis = self.max_adver_int.centis();
                if centis > Interval::V3_MAX_CENTIS {
                    return Err(out_of_range);
                }
                // The 4 reserved bits go out as zero (RFC 9568 §5.2.6).
                Ok((centis.to_be_bytes(), None))
            }
            Version::V2 => {
                if family != Family::Ipv4 {
                    return Err(EncodeError::V2NotIpv4 { family });
                }
                let auth = self.auth.ok_or(EncodeError::MissingV2Auth)?;
                let secs = self.max_adver_int.whole_secs().ok_or(out_of_range)?;
                Ok(([u8::from(auth.auth_type), secs], Some(auth)))
            }
        }
    }
}

/// An advertisement with the IP facts a receiver must check or log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6); always 255 once decoding succeeded.
    pub ttl: u8,
    pub checksum_form: ChecksumForm,
    pub advert: Advert,
}

/// Decodes a whole IPv4 packet carrying VRRP, as a raw IPv4 socket delivers it.
///
/// Honours the IHL (options are skipped) and the total length (trailing link-layer
/// padding is ignored). The IPv4 header checksum is not verified: the kernel dropped
/// packets with a bad one before any raw socket saw them.
pub fn decode_ipv4(packet: &[u8]) -> Result<Received, DecodeError> {
    if packet.len() < IPV4_MIN_HEADER_LEN {
        return Err(DecodeError::TooShort {
            got: packet.len(),
            need: IPV4_MIN_HEADER_LEN,
        });
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
    let total = usize::from(read_u16(packet, 2));
    if total < header || total > packet.len() {
        return Err(DecodeError::BadTotalLength {
            total,
            header,
            buffer: packet.len(),
        });
    }
    if packet[9] != IPPROTO_VRRP {
        return Err(DecodeError::BadProtocol { got: packet[9] });
    }
    let ttl = packet[8];
    if ttl != VRRP_TTL {
        return Err(DecodeError::BadTtl { got: ttl });
    }
    let src = IpAddr::V4(Ipv4Addr::new(
        packet[12], packet[13], packet[14], packet[15],
    ));
    let dst = IpAddr::V4(Ipv4Addr::new(
        packet[16], packet[17], packet[18], packet[19],
    ));
    let (advert, checksum_form) = Advert::decode_with_form(&packet[header..total], src, dst)?;
    Ok(Received {
        src,
        dst,
        ttl,
        checksum_form,
        advert,
    })
}

/// Decodes a VRRP payload received over IPv6; the header fields come from the socket's
/// ancillary data (IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO) since raw IPv6 sockets strip it.
pub fn decode_ipv6(
    payload: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
) -> Result<Received, DecodeError> {
    if hop_limit != VRRP_TTL {
        return Err(DecodeError::BadTtl { got: hop_limit });
    }
    let (src, dst) = (IpAddr::V6(src), IpAddr::V6(dst));
    let (advert, checksum_form) = Advert::decode_with_form(payload, src, dst)?;
    Ok(Received {
        src,
        dst,
        ttl: hop_limit,
        checksum_form,
        advert,
    })
}

fn expected_len(version: Version, family: Family, count: usize) -> usize {
    let auth = match version {
        Version::V2 => V2_AUTH_LEN,
        Version::V3 => 0,
    };
    HEADER_LEN + count * family.addr_len() + auth
}

fn verify_checksum<T: AsRef<[u8]>>(
    packet: &Packet<T>,
    src: IpAddr,
    dst: IpAddr,
) -> Result<ChecksumForm, DecodeError> {
    let got = packet.checksum();
    let (preferred, fallback) = match (packet.version(), packet.family()) {
        (Version::V2, _) => (ChecksumForm::MessageOnly, None),
        (Version::V3, Family::Ipv6) => (ChecksumForm::PseudoHeader, None),
        (Version::V3, Family::Ipv4) => {
            (ChecksumForm::PseudoHeader, Some(ChecksumForm::MessageOnly))
        }
    };
    let expected = packet.compute_checksum(src, dst, preferred);
    if got == expected {
        return Ok(preferred);
    }
    if let Some(form) = fallback
        && got == packet.compute_checksum(src, dst, form)
    {
        return Ok(form);
    }
    Err(DecodeError::BadChecksum { got, expected })
}

/// Internet checksum of `message` with its checksum field (bytes 6..8) taken as zero.
fn checksum(message: &[u8], src: IpAddr, dst: IpAddr, form: ChecksumForm) -> u16 {
    let head = &message[..message.len().min(6)];
    let tail = message.get(8..).unwrap_or_default();
    let zero = [0u8; 2];
    if form == ChecksumForm::MessageOnly {
        return inet_checksum(&[head, &zero, tail]);
    }
    // Lengths above u16 / u32 cannot occur: a VRRP message is at most 4104 bytes.
    let len = message.len();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => inet_checksum(&[
            &s.octets(),
            &d.octets(),
            &[0, IPPROTO_VRRP],
            &(len as u16).to_be_bytes(),
            head,
            &zero,
            tail,
        ]),
        (s, d) => inet_checksum(&[
            &ipv6_octets(s),
            &ipv6_octets(d),
            &(len as u32).to_be_bytes(),
            &[0, 0, 0, IPPROTO_VRRP],
            head,
            &zero,
            tail,
        ]),
    }
}

fn ipv6_octets(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn ip_from_slice(family: Family, chunk: &[u8]) -> IpAddr {
    match family {
        Family::Ipv4 => {
            let mut octets = [0; 4];
            octets.copy_from_slice(chunk);
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        Family::Ipv6 => {
            let mut octets = [0; 16];
            octets.copy_from_slice(chunk);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
    }
}

#[cfg(test)]
mod tests;
