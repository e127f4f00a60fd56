//! CARP, the Common Address Redundancy Protocol of OpenBSD and FreeBSD (carp(4); every
//! pfSense and OPNsense pair) and of ucarp on Linux: pure, like the rest of the core.
//!
//! - [`packet`]: the 36-byte advertisement over IPv4 and IPv6, its checksum.
//! - [`auth`]: the SHA-1 HMAC over the virtual host, keyed by the passphrase.
//! - [`replay`]: the 64-bit counter, refusing old and repeated advertisements.
//! - [`election`]: who is master (advbase, advskew, demotion, ties, preempt,
//!   master-down time) and how vipd's priority maps to advskew.
//! - [`speaker`]: one virtual host's advertisements in (VHID, HMAC, then counter, so a
//!   forger changes no state) and out (counter, HMAC).
//!
//! CARP shares IP protocol 112, 224.0.0.18 / ff02::12 and TTL 255 with VRRP;
//! [`classify_proto112`] tells their packets apart by layout (the XDP program uses the
//! same function), see `docs/architecture.md`.
//!
//! ## Where the implementations differ
//!
//! Read from their sources (OpenBSD and FreeBSD `sys/netinet/ip_carp.c`, ucarp 1.5.2
//! `src/carp.c`) and, for ucarp, checked on the wire (`tests/vectors/ucarp-*.hex`):
//!
//! | | OpenBSD | FreeBSD (pfSense, OPNsense) | ucarp | vipd |
//! |---|---|---|---|---|
//! | byte 4 | demotion count | 0, ignored | 0, ignored | its demotion (0), honoured |
//! | counter sent | one random value, never changes | random per advert until one is heard, then last heard + 1 | as FreeBSD | random start + 1, past anything seen |
//! | counter checked | only "not mine" | no | no | not seen before ([`ReplayMode::Strict`]), or only "not mine" for OpenBSD ([`ReplayMode::OpenBsd`]) |
//! | HMAC addresses | all of the host's, IPv6 link-local left out (either form accepted) | all of the VHID's, link-local included | its one `--addr` | sends without link-local; accepts either |
//! | passphrase | first 19 bytes | first 19 bytes | 19 bytes at most | 19 bytes at most |
//! | tie as master | steps down (demotion not lower) | steps down | lower source address stays | lower source address stays |
//! | backup takes over when the master is slower than `dead_ratio` × advbase | 3 × | 3 × | `--deadratio` × | `dead_ratio` × (3) |
//! | graceful stop | bows out (255/255) | not in the source read | down script only | to bow out (the daemon step) |
//! | families | IPv4, IPv6 | IPv4, IPv6 | IPv4 | IPv4, IPv6 |
//!
//! ucarp also answers ARP from the interface's own MAC (its up script adds the address)
//! and sends its advertisements from 00:00:5e:00:00:VHID, where the BSDs use the virtual
//! MAC 00:00:5e:00:01:VHID for both.

pub mod auth;
pub mod election;
pub mod packet;
pub mod replay;
pub mod speaker;

#[cfg(test)]
mod tests;

pub use auth::{AuthError, Authenticator, Key, KeyError, LinkLocal, VirtualHost};
pub use election::{
    AsBackup, AsMaster, DEAD_RATIO, Rank, TakeOver, advskew_for_priority, as_backup, as_master,
    master_down, priority_for_advskew,
};
pub use packet::{Advert, DecodeError, Received, decode_ipv4, decode_ipv6};
pub use replay::{ReplayGuard, ReplayMode, Replayed};
pub use speaker::{Admitted, Refused, Speaker};
pub use vip_common::wire::{Proto112, classify_proto112, vmac_carp};
