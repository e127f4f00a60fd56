//! The load balancer's map types and the flow hash both sides compute.
//!
//! A *service* is a VIP, a port (or 0 for every port) and a protocol; each has an id that
//! indexes its Maglev tables and counters. A *real* is one server of one service, in a
//! global array. See `docs/architecture.md` ("The load balancer").

use crate::{FAMILY_IPV4, FAMILY_IPV6};

/// Services (ids `0..MAX_LB_SERVICES`): each owns two table halves and a counter slot.
pub const MAX_LB_SERVICES: u32 = 64;
/// Entries in `LB_SERVICES`: the services plus one VIP entry per (VIP, protocol) that
/// has per-port services (see [`LB_F_PORTS`]).
pub const MAX_LB_SERVICE_KEYS: u32 = 256;
/// Real servers over all services (ids `0..MAX_LB_REALS`).
pub const MAX_LB_REALS: u32 = 1_024;
/// Flows the program remembers (an LRU map with per-CPU LRU lists): a flow that falls
/// out still goes to the server the Maglev table names, which is the same one unless
/// the set of servers changed since the flow began.
pub const MAX_LB_FLOWS: u32 = 65_536;

/// Entries in one Maglev lookup table: a prime (the permutation's skip must be coprime
/// with it), large enough for a hundred servers to get ~160 entries each.
pub const MAGLEV_SIZE: u32 = 16_381;

/// A table entry no real server fills (a service with no server up): dropped.
pub const LB_NO_REAL: u16 = u16::MAX;

/// The entry is a service (otherwise a VIP entry that only says per-port services exist).
pub const LB_F_SERVICE: u32 = 1 << 0;
/// Only in a port-0 entry: services on single ports of this (VIP, protocol) exist, so the
/// program looks up the packet's destination port next.
pub const LB_F_PORTS: u32 = 1 << 1;
/// Forward whether or not this node answers for the group slot (several directors
/// behind ECMP all serve the VIP).
pub const LB_F_ACTIVE_ACTIVE: u32 = 1 << 2;
/// Hash the client address alone (keepalived's `sh` / persistence): every connection of
/// a client goes to one server.
pub const LB_F_SOURCE_HASH: u32 = 1 << 3;
/// The half not in use holds the table from before the last change: a TCP segment
/// without SYN of a flow this director never saw follows that table, not the new one.
/// Such a flow began before the change (on another director, which died: a failover
/// that coincides with a reload adding a server), and its server is the one the old
/// table names. The daemon sets it with the flip of a reload (or restart) that changed
/// the service and clears it a while later (`vip-userspace/src/daemon/balancer.rs`,
/// `PREVIOUS_TABLE_FOR`); a health check's flip leaves it as it is.
pub const LB_F_PREVIOUS: u32 = 1 << 4;

/// Direct routing (LVS-DR): the Ethernet destination becomes the server's MAC.
pub const LB_METHOD_DR: u8 = 1;
/// IP-in-IP (LVS-TUN): IPv4 in IPv4 (protocol 4) or IPv6 in IPv6 (next header 41).
pub const LB_METHOD_TUN: u8 = 2;

/// The real is up: flows pinned to it stay. A real that is not up (failed, or removed)
/// loses its flows to the table's choice.
pub const LB_REAL_F_UP: u8 = 1 << 0;

/// Hop limit / TTL of the outer header the tunnel adds.
pub const LB_TUNNEL_TTL: u8 = 64;

/// A service, or with [`LB_F_PORTS`] only, a VIP with per-port services
/// (`maps::LB_SERVICES`). Port 0 is every port; ports are in host order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LbServiceKey {
    /// IPv4 in the first 4 bytes, the rest zero.
    pub addr: [u8; 16],
    pub port: u16,
    pub family: u8,
    /// `IPPROTO_TCP` or `IPPROTO_UDP`.
    pub proto: u8,
    pub _pad: [u8; 4],
}

impl LbServiceKey {
    pub const fn new(family: u8, addr: [u8; 16], proto: u8, port: u16) -> Self {
        Self {
            addr,
            port,
            family,
            proto,
            _pad: [0; 4],
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LbService {
    /// Index of the service's tables ([`table_index`]) and counters.
    pub id: u32,
    /// The group slot (`GROUP_STATE`) whose owner forwards.
    pub slot: u32,
    /// `LB_F_*` bits.
    pub flags: u32,
    /// Mixed into the flow hash; the same on every director of the service.
    pub seed: u32,
    /// The table half in use: 0 or 1. A new table is written into the other half, then
    /// this flips (one map write moves the service to the new set).
    pub table: u32,
    pub _pad: u32,
}

/// Index into `maps::LB_TABLES` of `half` (0 or 1) of service `id`.
pub const fn table_index(id: u32, half: u32) -> u32 {
    id * 2 + (half & 1)
}

/// One Maglev lookup table: entry `hash % MAGLEV_SIZE` is the id of the real server
/// (in `maps::LB_REALS`) for a flow, or [`LB_NO_REAL`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaglevTable {
    pub reals: [u16; MAGLEV_SIZE as usize],
    pub _pad: [u16; 3],
}

impl MaglevTable {
    pub const EMPTY: Self = Self {
        reals: [LB_NO_REAL; MAGLEV_SIZE as usize],
        _pad: [0; 3],
    };
}

/// A real server (`maps::LB_REALS`, indexed by its id), with the next hop the daemon
/// resolved for it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LbReal {
    /// The server's address (the tunnel's destination).
    pub addr: [u8; 16],
    /// The director's address on the way to it: the tunnel's source.
    pub src: [u8; 16],
    /// Ethernet destination: the server's MAC (DR) or the next hop's (TUN).
    pub mac: [u8; 6],
    /// Ethernet source: the director's MAC on `ifindex`.
    pub src_mac: [u8; 6],
    /// Where frames leave: `XDP_TX` when it is the arrival interface, else a redirect.
    pub ifindex: u32,
    /// VLAN ID frames leave with; it must be the one they arrived with (tags are never
    /// pushed or popped).
    pub vlan: u16,
    /// MTU of the way out: a tunnelled packet that would exceed it is dropped
    /// (`lb_drop_too_big`).
    pub mtu: u16,
    /// The service this real belongs to.
    pub service: u32,
    /// Moves on whenever the slot is given to another server: a remembered flow is kept
    /// only while its generation matches.
    pub generation: u32,
    /// `LB_METHOD_*`.
    pub method: u8,
    pub family: u8,
    /// `LB_REAL_F_*` bits.
    pub flags: u8,
    pub _pad: u8,
}

/// A flow the program remembers (`maps::LB_FLOWS`). Ports in host order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct LbFlowKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LbFlow {
    pub real: u32,
    /// The real's [`LbReal::generation`] when the flow was pinned to it.
    pub generation: u32,
}

/// Per-CPU counters of one service (`maps::LB_SERVICE_STATS`) or real
/// (`maps::LB_REAL_STATS`), indexed by id.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LbCounters {
    /// Packets forwarded.
    pub packets: u64,
    /// Their bytes as received (before any encapsulation), from the IP header on.
    pub bytes: u64,
    /// Flows this program pinned (new, after a failover, or moved off a failed server).
    pub flows: u64,
}

impl LbCounters {
    pub fn accumulate(&mut self, other: &Self) {
        self.packets = self.packets.wrapping_add(other.packets);
        self.bytes = self.bytes.wrapping_add(other.bytes);
        self.flows = self.flows.wrapping_add(other.flows);
    }
}

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// MurmurHash3 (x86, 32-bit) over whole words: the one hash of the load balancer, used
/// by the program for flows and by the daemon for flows (tests) and for the servers'
/// Maglev permutations. A `const fn` over a fixed number of words, so the verifier sees
/// a bounded loop and every director computes exactly the same value.
#[inline(always)]
pub const fn hash_words<const N: usize>(words: &[u32; N], seed: u32) -> u32 {
    let mut h = seed;
    let mut i = 0;
    while i < N {
        let mut k = words[i].wrapping_mul(C1);
        k = k.rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
        i += 1;
    }
    h ^= (N as u32) * 4;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[inline(always)]
const fn word(b: &[u8; 16], i: usize) -> u32 {
    u32::from_be_bytes([b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]])
}

impl LbFlowKey {
    /// The flow's hash: its 5-tuple (or with `source_only` its client address alone) and
    /// the service's seed. The table entry is `hash % MAGLEV_SIZE`.
    #[inline(always)]
    pub const fn hash(&self, seed: u32, source_only: bool) -> u32 {
        let fam = (self.family as u32) << 8;
        if source_only {
            return hash_words(
                &[
                    word(&self.src, 0),
                    word(&self.src, 1),
                    word(&self.src, 2),
                    word(&self.src, 3),
                    fam,
                ],
                seed,
            );
        }
        hash_words(
            &[
                word(&self.src, 0),
                word(&self.src, 1),
                word(&self.src, 2),
                word(&self.src, 3),
                word(&self.dst, 0),
                word(&self.dst, 1),
                word(&self.dst, 2),
                word(&self.dst, 3),
                ((self.sport as u32) << 16) | self.dport as u32,
                fam | self.proto as u32,
            ],
            seed,
        )
    }

    /// The table entry this flow maps to.
    #[inline(always)]
    pub const fn slot(&self, seed: u32, source_only: bool) -> u32 {
        self.hash(seed, source_only) % MAGLEV_SIZE
    }
}

/// Whether `family` is one the load balancer carries.
pub const fn lb_family(family: u8) -> bool {
    family == FAMILY_IPV4 || family == FAMILY_IPV6
}

#[cfg(test)]
mod tests {
    use core::mem::size_of;

    use super::*;

    #[test]
    fn layouts_have_no_implicit_padding() {
        assert_eq!(size_of::<LbServiceKey>(), 16 + 2 + 1 + 1 + 4);
        assert_eq!(size_of::<LbService>(), 6 * 4);
        assert_eq!(
            size_of::<LbReal>(),
            16 + 16 + 6 + 6 + 4 + 2 + 2 + 4 + 4 + 1 + 1 + 1 + 1
        );
        assert_eq!(size_of::<LbFlowKey>(), 16 + 16 + 2 + 2 + 1 + 1 + 2);
        assert_eq!(size_of::<LbFlow>(), 8);
        assert_eq!(size_of::<LbCounters>(), 24);
        assert_eq!(size_of::<MaglevTable>(), 2 * (MAGLEV_SIZE as usize + 3));
        assert_eq!(size_of::<MaglevTable>() % 8, 0);
    }

    #[test]
    fn the_table_size_is_prime() {
        let m = MAGLEV_SIZE;
        assert!(
            (2..m)
                .take_while(|d| d * d <= m)
                .all(|d| !m.is_multiple_of(d))
        );
    }

    #[test]
    fn murmur3_matches_its_reference_values() {
        // MurmurHash3_x86_32 of the 4 bytes 0x00000000 / "\x01\x00\x00\x00" read as one
        // little-endian word, from the reference implementation's test vectors.
        assert_eq!(hash_words::<0>(&[], 0), 0);
        assert_eq!(hash_words::<0>(&[], 1), 0x514e_28b7);
        assert_eq!(hash_words(&[0], 0), 0x2362_f9de);
        // "abcd" read little-endian, seed 0x9747b28c.
        assert_eq!(
            hash_words(&[u32::from_le_bytes(*b"abcd")], 0x9747_b28c),
            0xf047_8627
        );
    }

    #[test]
    fn every_field_of_the_tuple_moves_the_hash_and_source_hashing_ignores_the_rest() {
        let k = LbFlowKey {
            src: crate::v4_in_16([198, 51, 100, 7]),
            dst: crate::v4_in_16([192, 0, 2, 10]),
            sport: 40_000,
            dport: 80,
            proto: 6,
            family: FAMILY_IPV4,
            _pad: [0; 2],
        };
        let h = k.hash(0, false);
        let variants = [
            LbFlowKey { sport: 40_001, ..k },
            LbFlowKey { dport: 81, ..k },
            LbFlowKey { proto: 17, ..k },
            LbFlowKey {
                family: FAMILY_IPV6,
                ..k
            },
            LbFlowKey {
                src: crate::v4_in_16([198, 51, 100, 8]),
                ..k
            },
            LbFlowKey {
                dst: crate::v4_in_16([192, 0, 2, 11]),
                ..k
            },
        ];
        for v in variants {
            assert_ne!(v.hash(0, false), h, "{v:?}");
        }
        assert_ne!(k.hash(1, false), h);
        let other_port = LbFlowKey { sport: 1, ..k };
        assert_eq!(other_port.hash(5, true), k.hash(5, true));
        assert!(k.slot(0, false) < MAGLEV_SIZE);
    }
}
