//! Which received advertisements an instance acts on: RFC 9568 §7.1's checks that depend
//! on the instance's configuration (the codec has already checked checksum, type, length,
//! address count and a non-zero interval).
//!
//! The XDP program applies exactly these rules before it may release a slot on its own
//! (docs/architecture.md, "one truth about ownership"): an advert the daemon would refuse
//! never makes the program stop answering.

use std::{fmt, net::IpAddr};

use super::packet::{Advert, AuthType, Version};

/// What admission needs from an instance besides its version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// VRRPv2 simple-text password, zero-padded to the 8 bytes of the wire field.
    pub auth_pass: Option<[u8; 8]>,
    /// When non-empty, adverts from any other source are refused.
    pub allowed_peers: Vec<IpAddr>,
}

/// Why an advertisement was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rejection {
    /// TTL / hop limit other than 255.
    Ttl,
    /// The other VRRP version for this VRID (keepalived defaults to v2, vipd to v3):
    /// counted and logged on its own because it is a configuration mismatch, not an attack.
    VersionMismatch,
    /// VRRPv2 authentication that differs from ours.
    Auth,
    /// A source outside a non-empty `allowed_peers`.
    Peer,
}

impl Rejection {
    pub const ALL: [Rejection; 4] = [
        Rejection::Ttl,
        Rejection::VersionMismatch,
        Rejection::Auth,
        Rejection::Peer,
    ];

    /// The label used in metrics and `vipd status`.
    pub fn label(self) -> &'static str {
        match self {
            Rejection::Ttl => "ttl",
            Rejection::VersionMismatch => "version_mismatch",
            Rejection::Auth => "auth",
            Rejection::Peer => "peer",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Checks `advert`, received from `src` with `ttl`, against an instance of `version`
/// with `rules`.
///
/// VRRPv2 authentication (RFC 3768 §5.3.6): without a password only auth type 0 is
/// accepted and its data is ignored; with a password only type 1 carrying exactly the
/// password, zero padded to 8 bytes.
pub fn admit(
    version: Version,
    rules: &Admission,
    src: IpAddr,
    ttl: u8,
    advert: &Advert,
) -> Result<(), Rejection> {
    if ttl != 255 {
        return Err(Rejection::Ttl);
    }
    if advert.version != version {
        return Err(Rejection::VersionMismatch);
    }
    if advert.version == Version::V2 {
        let ok = match (&rules.auth_pass, advert.auth) {
            (None, Some(a)) => a.auth_type == AuthType::None,
            (Some(p), Some(a)) => a.auth_type == AuthType::SimpleText && a.data == *p,
            (_, None) => false,
        };
        if !ok {
            return Err(Rejection::Auth);
        }
    }
    if !rules.allowed_peers.is_empty() && !rules.allowed_peers.contains(&src) {
        return Err(Rejection::Peer);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::{Interval, packet::Auth};

    fn pass(p: &[u8]) -> Option<[u8; 8]> {
        let mut b = [0; 8];
        b[..p.len()].copy_from_slice(p);
        Some(b)
    }

    fn v2(auth: Auth) -> Advert {
        Advert::v2(
            51,
            100,
            Interval::DEFAULT,
            vec!["192.0.2.1".parse().unwrap()],
            auth,
        )
    }

    fn v3() -> Advert {
        Advert::v3(
            51,
            100,
            Interval::DEFAULT,
            vec!["192.0.2.1".parse().unwrap()],
        )
    }

    const PEER: &str = "192.0.2.12";

    fn src() -> IpAddr {
        PEER.parse().unwrap()
    }

    #[test]
    fn ttl_and_version_are_checked_first() {
        let i = Admission::default();
        assert_eq!(admit(Version::V3, &i, src(), 255, &v3()), Ok(()));
        assert_eq!(
            admit(Version::V3, &i, src(), 254, &v3()),
            Err(Rejection::Ttl)
        );
        assert_eq!(
            admit(Version::V3, &i, src(), 255, &v2(Auth::NONE)),
            Err(Rejection::VersionMismatch)
        );
    }

    #[test]
    fn v2_without_a_password_takes_type_zero_and_ignores_its_data() {
        let i = Admission::default();
        assert_eq!(admit(Version::V2, &i, src(), 255, &v2(Auth::NONE)), Ok(()));
        let junk = Auth {
            auth_type: AuthType::None,
            data: *b"leftover",
        };
        assert_eq!(admit(Version::V2, &i, src(), 255, &v2(junk)), Ok(()));
        let with_pass = Auth::simple_text(b"secret").unwrap();
        assert_eq!(
            admit(Version::V2, &i, src(), 255, &v2(with_pass)),
            Err(Rejection::Auth)
        );
    }

    #[test]
    fn v2_with_a_password_takes_exactly_that_password() {
        let i = Admission {
            auth_pass: pass(b"secret"),
            ..Admission::default()
        };
        let right = Auth::simple_text(b"secret").unwrap();
        assert_eq!(admit(Version::V2, &i, src(), 255, &v2(right)), Ok(()));
        for wrong in [
            Auth::simple_text(b"secreT").unwrap(),
            Auth::simple_text(b"secret1").unwrap(),
            Auth::simple_text(b"").unwrap(),
            Auth::NONE,
        ] {
            assert_eq!(
                admit(Version::V2, &i, src(), 255, &v2(wrong)),
                Err(Rejection::Auth)
            );
        }
    }

    #[test]
    fn the_allowlist_admits_only_its_sources() {
        let i = Admission {
            allowed_peers: vec![src()],
            ..Admission::default()
        };
        assert_eq!(admit(Version::V3, &i, src(), 255, &v3()), Ok(()));
        let other: IpAddr = "192.0.2.200".parse().unwrap();
        assert_eq!(
            admit(Version::V3, &i, other, 255, &v3()),
            Err(Rejection::Peer)
        );
    }
}
