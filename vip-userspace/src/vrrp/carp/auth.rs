//! The HMAC a CARP advertisement carries: what it covers, how it is keyed, and the two
//! forms peers compute.
//!
//! HMAC-SHA1 (RFC 2104), keyed by the passphrase as the BSDs store it: a 20-byte key
//! field, the passphrase copied in and zero-padded (HMAC pads a short key with zeros
//! anyway, so this equals keying with the passphrase's bytes). Both BSDs' `ifconfig`
//! copy it with `strlcpy` into those 20 bytes, so only the first 19 bytes of a longer
//! passphrase count there, and ucarp refuses a longer one outright: [`Key::new`] takes
//! 0..=19 bytes, which mean the same to every peer.
//!
//! The message, in this order:
//! 1. the version (2) and the type (1), one byte each;
//! 2. the VHID, one byte;
//! 3. the virtual host's IPv4 addresses, 4 bytes each in network order, sorted from the
//!    smallest up, each address once;
//! 4. its IPv6 addresses, 16 bytes each, sorted bytewise from the smallest up, each once;
//! 5. the counter, 8 bytes as on the wire (big-endian).
//!
//! The advertisement's other fields (advbase, advskew, demote) and the IP header are
//! not covered: anyone who has one valid advertisement can resend it with another skew.
//! The replay counter is what stops that (`replay`).
//!
//! Where peers differ:
//! - **IPv6 link-local addresses.** OpenBSD sends the HMAC *without* the virtual host's
//!   link-local addresses and accepts it with or without them; FreeBSD hashes every
//!   address of the VHID, link-local ones included. The two agree whenever the virtual
//!   host has no link-local address (the usual case). [`Authenticator::verify`] accepts
//!   either form; it signs in the form chosen at construction ([`LinkLocal::Without`],
//!   OpenBSD's, unless a FreeBSD peer's VHID holds a link-local address).
//! - **ucarp** hashes exactly one IPv4 address, its `--addr`: a virtual host shared with
//!   ucarp must have exactly that one address.
//! - OpenBSD's load-balancing mode (several VHIDs on one carp interface) also hashes the
//!   interface's MAC address; vipd does not speak that mode.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use thiserror::Error;
use vip_common::wire::{CARP_TYPE_ADVERTISEMENT, CARP_VERSION};

use super::packet::DIGEST_LEN;

/// The longest passphrase every CARP peer uses whole.
pub const PASSPHRASE_MAX: usize = 19;
/// The BSDs' key field (`CARP_KEY_LEN`).
const KEY_LEN: usize = 20;

/// A virtual host's key: its passphrase as the BSDs store it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error(
        "CARP passphrase of {len} bytes: at most {PASSPHRASE_MAX} (the BSDs use only the first \
         {PASSPHRASE_MAX} bytes of a longer one, ucarp refuses it)"
    )]
    TooLong { len: usize },
    #[error("CARP passphrase contains a NUL byte: the BSDs and ucarp would end it there")]
    Nul,
}

impl Key {
    pub fn new(passphrase: &[u8]) -> Result<Key, KeyError> {
        if passphrase.len() > PASSPHRASE_MAX {
            return Err(KeyError::TooLong {
                len: passphrase.len(),
            });
        }
        if passphrase.contains(&0) {
            return Err(KeyError::Nul);
        }
        let mut key = [0; KEY_LEN];
        key[..passphrase.len()].copy_from_slice(passphrase);
        Ok(Key(key))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the passphrase itself: keys end up in debug logs.
        f.write_str("Key(..)")
    }
}

/// Which of the two HMAC forms (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkLocal {
    /// IPv6 link-local addresses left out: what OpenBSD sends.
    Without,
    /// Every address hashed: what FreeBSD sends.
    With,
}

/// What the HMAC covers besides the counter: the VHID and the addresses, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualHost {
    vhid: u8,
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
}

impl VirtualHost {
    /// The virtual host `vhid` with `addresses` in any order; duplicates count once (the
    /// BSDs walk the addresses by "next larger than the last").
    pub fn new(vhid: u8, addresses: impl IntoIterator<Item = IpAddr>) -> VirtualHost {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for a in addresses {
            match a {
                IpAddr::V4(a) => v4.push(a),
                IpAddr::V6(a) => v6.push(a),
            }
        }
        // Ipv4Addr and Ipv6Addr order as their network-order bytes do.
        v4.sort_unstable();
        v4.dedup();
        v6.sort_unstable();
        v6.dedup();
        VirtualHost { vhid, v4, v6 }
    }

    pub fn vhid(&self) -> u8 {
        self.vhid
    }

    fn has_link_local(&self) -> bool {
        self.v6.iter().any(Ipv6Addr::is_unicast_link_local)
    }
}

/// Why an advertisement's HMAC was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error(
        "bad HMAC for VHID {vhid}: wrong passphrase, or the peer's virtual host has other \
         addresses"
    )]
    BadDigest { vhid: u8 },
}

/// Signs and verifies one virtual host's advertisements. Everything before the counter
/// is hashed once here, as the BSDs do; each advertisement then costs the counter and
/// the outer hash.
#[derive(Clone)]
pub struct Authenticator {
    vhid: u8,
    without: Hmac<Sha1>,
    /// `None` when the host has no link-local address: both forms are then one.
    with: Option<Hmac<Sha1>>,
    send: LinkLocal,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("vhid", &self.vhid)
            .field("send", &self.send)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// For `host` keyed by `key`, signing in the `send` form.
    pub fn new(key: &Key, host: &VirtualHost, send: LinkLocal) -> Authenticator {
        let prefix = |form: LinkLocal| {
            let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(&key.0)
                .expect("HMAC takes a key of any length");
            mac.update(&[CARP_VERSION, CARP_TYPE_ADVERTISEMENT, host.vhid]);
            for a in &host.v4 {
                mac.update(&a.octets());
            }
            for a in &host.v6 {
                if form == LinkLocal::Without && a.is_unicast_link_local() {
                    continue;
                }
                mac.update(&a.octets());
            }
            mac
        };
        Authenticator {
            vhid: host.vhid,
            without: prefix(LinkLocal::Without),
            with: host.has_link_local().then(|| prefix(LinkLocal::With)),
            send,
        }
    }

    /// The HMAC of an advertisement with `counter`, in the form chosen at construction.
    pub fn sign(&self, counter: u64) -> [u8; DIGEST_LEN] {
        self.sign_as(self.send, counter)
    }

    /// The HMAC in a given form.
    pub fn sign_as(&self, form: LinkLocal, counter: u64) -> [u8; DIGEST_LEN] {
        let mut mac = self.prefix(form).clone();
        mac.update(&counter.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Which form `digest` is the HMAC of `counter` in; compared in constant time.
    pub fn verify(&self, counter: u64, digest: &[u8; DIGEST_LEN]) -> Result<LinkLocal, AuthError> {
        let forms: &[LinkLocal] = if self.with.is_some() {
            &[LinkLocal::Without, LinkLocal::With]
        } else {
            &[LinkLocal::Without]
        };
        for &form in forms {
            let mut mac = self.prefix(form).clone();
            mac.update(&counter.to_be_bytes());
            if mac.verify_slice(digest).is_ok() {
                return Ok(form);
            }
        }
        Err(AuthError::BadDigest { vhid: self.vhid })
    }

    fn prefix(&self, form: LinkLocal) -> &Hmac<Sha1> {
        match form {
            LinkLocal::With => self.with.as_ref().unwrap_or(&self.without),
            LinkLocal::Without => &self.without,
        }
    }
}
