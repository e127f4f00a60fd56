//! Types shared by the vipd XDP program (`vip-ebpf`) and the daemon (`vip-userspace`).
//!
//! Every map key and value is `#[repr(C)]` with its padding spelled out as named fields, so
//! the kernel, the BTF that `bpftool` prints, and `aya::Pod` on the userspace side all agree
//! byte for byte, and no uninitialised padding ever reaches a hash key. Flags are integers,
//! not `bool`s or enums, because any bit pattern must be a valid value when read back from a
//! map that something else wrote.
#![no_std]

pub mod lb;
pub mod wire;

pub use lb::*;

/// Names of the maps as they appear in the object file, in `bpftool` and under the pin
/// directory.
pub mod maps {
    pub const VIPS: &str = "VIPS";
    pub const GROUP_STATE: &str = "GROUP_STATE";
    pub const VRRP_POLICY: &str = "VRRP_POLICY";
    pub const PEERS: &str = "PEERS";
    pub const VMACS: &str = "VMACS";
    pub const CONFLICTS: &str = "CONFLICTS";
    pub const STATS: &str = "STATS";
    pub const RELEASES: &str = "RELEASES";
    pub const BFD_PEERS: &str = "BFD_PEERS";
    pub const VIPS_VERSION: &str = "VIPS_VERSION";
    pub const LB_SERVICES: &str = "LB_SERVICES";
    pub const LB_TABLES: &str = "LB_TABLES";
    pub const LB_REALS: &str = "LB_REALS";
    pub const LB_FLOWS: &str = "LB_FLOWS";
    pub const LB_SERVICE_STATS: &str = "LB_SERVICE_STATS";
    pub const LB_REAL_STATS: &str = "LB_REAL_STATS";
    pub const LB_PROGS: &str = "LB_PROGS";
    pub const LB_PROGS_NOFRAG: &str = "LB_PROGS_NOFRAG";
    pub const LB_ACTIVE: &str = "LB_ACTIVE";
    pub const HOST_MACS: &str = "HOST_MACS";
    /// Per group slot, per CPU: ARP replies and NAs the program sent for a shared VIP
    /// (active-active) on behalf of that group.
    pub const SHARED_ANSWERS: &str = "SHARED_ANSWERS";

    /// The maps only the load balancer program reads. They hold megabytes (`LB_FLOWS`
    /// is an LRU map, always preallocated), so they are created full size and pinned
    /// only where services are configured; elsewhere each loaded object gets a
    /// one-entry stand-in that nothing reads (`vip-userspace/src/dataplane/mod.rs`).
    pub const LB_ONLY: [&str; 5] = [
        LB_TABLES,
        LB_REALS,
        LB_FLOWS,
        LB_SERVICE_STATS,
        LB_REAL_STATS,
    ];

    /// The load balancer's maps the responder reads too (is any service configured, is
    /// this a service VIP): small, but pinned only where services are configured, like
    /// the rest, so a node without services pins nothing of the load balancer.
    pub const LB_SHARED: [&str; 2] = [LB_SERVICES, LB_ACTIVE];

    /// The tail-call slots into the load balancer. Each loaded copy of the responder
    /// has its own (its load balancer chains through the copy's `CHAIN`): the main
    /// program's `LB_PROGS` is pinned under its name, a chaining copy's slot as
    /// `lbprogs_<ifname>` beside its `chain_<ifname>`.
    pub const LB_SLOTS: [&str; 2] = [LB_PROGS, LB_PROGS_NOFRAG];

    /// Every map the responder program owns and pins, in the order they are pinned. (Its
    /// per-CPU lookup cache, `VIP_CACHE`, and budget of new conflict entries,
    /// `CONFLICT_BUDGET`, are private to each loaded program: not pinned.)
    pub const ALL: [&str; 21] = [
        VIPS,
        GROUP_STATE,
        VRRP_POLICY,
        PEERS,
        VMACS,
        CONFLICTS,
        STATS,
        RELEASES,
        BFD_PEERS,
        VIPS_VERSION,
        LB_SERVICES,
        LB_TABLES,
        LB_REALS,
        LB_FLOWS,
        LB_SERVICE_STATS,
        LB_REAL_STATS,
        LB_PROGS,
        LB_PROGS_NOFRAG,
        LB_ACTIVE,
        HOST_MACS,
        SHARED_ANSWERS,
    ];
}

/// Names of the programs in the object files.
pub mod programs {
    /// The responder: ARP / NS answers, VRRP admission, VMAC acceptance, BFD Echo
    /// loop-back.
    pub const RESPONDER: &str = "vipd_xdp";
    /// The load balancer, entered from the responder by a tail call through
    /// `maps::LB_PROGS` (see `vip-ebpf/src/lb.rs`).
    pub const LOAD_BALANCER: &str = "vipd_lb";
    /// The load balancer without frags support, entered from [`RESPONDER_NO_FRAGS`]
    /// through `maps::LB_PROGS_NOFRAG` (a tail call reaches only a program of its kind).
    pub const LOAD_BALANCER_NO_FRAGS: &str = "vipd_lb_nofrag";
    /// Passes everything. Attached to the peer of a veth so that frames sent with
    /// `XDP_TX` are not discarded by the veth driver, which drops them at a peer that
    /// runs no XDP program of its own.
    pub const PASS: &str = "vipd_pass";
    /// The responder loaded without `BPF_F_XDP_HAS_FRAGS`: the same code, for an
    /// interface where it hands what it passes on to a program that is not frags-aware
    /// (a tail call needs both alike). The default [`RESPONDER`] is frags-aware.
    pub const RESPONDER_NO_FRAGS: &str = "vipd_xdp_nofrag";
    /// The tc ingress classifier that gives a frame VMAC acceptance readdressed the
    /// packet type "this host" (a veth set it to "another host" before XDP ran); see
    /// `vip-ebpf/src/vmac.rs`. Attached beside the responder (TCX, pinned as
    /// `tc_<ifname>`).
    pub const VMAC_TO_HOST: &str = "vipd_tc_vmac";
}

/// The program array through which the responder hands every frame it passes to the
/// program that held the interface before vipd (see `vip-ebpf/src/chain.rs`): one
/// entry, pinned per interface as `chain_<ifname>` in the pin directory while vipd
/// chains that interface.
pub const CHAIN: &str = "CHAIN";

/// Address family tags used in keys. Not `AF_*`, whose values differ between platforms.
pub const FAMILY_IPV4: u8 = 4;
pub const FAMILY_IPV6: u8 = 6;

/// Map capacities. Sized for 255 VRIDs on 4 interfaces in both families with room to spare,
/// and 16,384 VIPs.
///
/// The hash maps are created with [`MAP_F_NO_PREALLOC`]: an entry's memory is allocated
/// when it is inserted, so a map costs its bucket array (16 bytes per power-of-two bucket)
/// plus what is configured, not its capacity. `CONFLICTS` is a per-CPU LRU map, which the
/// kernel always preallocates (per CPU), hence its small capacity (the least recently seen
/// conflicts go).
/// Capacities and flags are part of the pinned-map layout (`dataplane::tables` checks
/// them): pins from a vipd with other values are refused as foreign.
pub const MAX_VIPS: u32 = 16_384;
pub const MAX_GROUPS: u32 = 1_024;
pub const MAX_POLICIES: u32 = 4_096;
pub const MAX_PEERS: u32 = 4_096;
pub const MAX_VMACS: u32 = 4_096;
/// One entry per device the program runs on and MAC VMAC entries readdress to there (an
/// interface's own, or its upper device's): a few per host, where `VMACS` holds one per
/// VRID and VLAN. An instance that would need more fails to start ("adding a host
/// MAC"); its bucket array costs 16 KiB of locked memory where 4,096 would cost 64.
pub const MAX_HOST_MACS: u32 = 1_024;
pub const MAX_CONFLICTS: u32 = 256;
/// BFD neighbours: a few per interface.
pub const MAX_BFD_PEERS: u32 = 1_024;

/// `BPF_F_NO_PREALLOC`: the map_flags of every hash map but the LRU ones.
pub const MAP_F_NO_PREALLOC: u32 = 1;
/// `BPF_F_NO_COMMON_LRU`: an LRU map with one LRU list per CPU (`LB_FLOWS`), so CPUs
/// pinning flows never contend for one list lock. The kernel rounds its max_entries up
/// to a multiple of the possible CPUs.
pub const MAP_F_NO_COMMON_LRU: u32 = 2;

/// The single value of `VIPS_VERSION`: a token every writer of `VIPS` replaces with a new,
/// different one *after* each change. The program keeps its last VIP lookup per CPU with
/// the token it read *before* that lookup and reuses it only while the token is unchanged,
/// so a change is never missed: whichever way a lookup and a write interleave, the token
/// moves after the write. A token rather than a counter, so two writers need no atomic
/// increment (see [`vips_version_token`]).
pub type VipsVersion = u64;

/// A token unlike any other writer's recent one: `now_ns` (CLOCK_MONOTONIC) with the
/// writer's pid in the top bits.
pub const fn vips_version_token(now_ns: u64, pid: u32) -> VipsVersion {
    now_ns ^ ((pid as u64) << 44)
}

/// A virtual IP on one interface. IPv4 addresses occupy the first 4 bytes of `addr`; the
/// rest must be zero so that one address has exactly one key.
///
/// `ifindex` is the device the program is attached to and `vlan` the VLAN ID of the one
/// 802.1Q tag the frame carried (0 untagged), so a VIP on `eth0.100` is keyed
/// (ifindex of eth0, 100).
///
/// `member` is 0 for the VIP itself. A shared VIP (active-active, [`VIP_F_SHARED`]) also
/// has one entry per member group under `member` = 1 + the member's index: the answer for
/// the requesters [`shared_member`] hands to that group.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VipKey {
    pub ifindex: u32,
    pub vlan: u16,
    pub family: u8,
    pub member: u8,
    pub addr: [u8; 16],
}

/// Widens an IPv4 address to the 16-byte form keys use.
///
/// Through a u128 rather than a zeroed array: the XDP program builds one key per ARP
/// request, and LLVM turns the array's zeroing into a call to a byte-loop `memset` where
/// the integer becomes two 8-byte stores.
pub const fn v4_in_16(addr: [u8; 4]) -> [u8; 16] {
    (u32::from_le_bytes(addr) as u128).to_le_bytes()
}

impl VipKey {
    pub const fn v4(ifindex: u32, vlan: u16, addr: [u8; 4]) -> Self {
        Self {
            ifindex,
            vlan,
            family: FAMILY_IPV4,
            member: 0,
            addr: v4_in_16(addr),
        }
    }

    /// The key as three 8-byte words, for comparing keys in three instructions.
    #[inline(always)]
    pub fn words(&self) -> [u64; 3] {
        // SAFETY: 24 bytes without padding (asserted in the tests) read as three u64s;
        // every bit pattern is a valid u64.
        unsafe { core::ptr::read_unaligned(self as *const Self as *const [u64; 3]) }
    }

    pub const fn v6(ifindex: u32, vlan: u16, addr: [u8; 16]) -> Self {
        Self {
            ifindex,
            vlan,
            family: FAMILY_IPV6,
            member: 0,
            addr,
        }
    }

    /// The key of member `index` (0-based) of the shared VIP `self`.
    pub const fn shared_member(mut self, index: u8) -> Self {
        self.member = index + 1;
        self
    }
}

/// Where a VIP belongs and how to answer for it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipValue {
    /// Index into `GROUP_STATE`.
    pub slot: u32,
    /// Source MAC of ARP replies and the target link-layer address of NAs: the interface
    /// MAC, or the virtual MAC in VMAC mode.
    pub mac: [u8; 6],
    /// `VIP_F_*` bits.
    pub flags: u16,
}

/// The VIP's router is the address owner (priority 255): NAs carry the Router flag either
/// way, this only records intent for operators reading the map.
pub const VIP_F_OWNER: u16 = 1 << 0;
/// Answers come from the virtual MAC.
pub const VIP_F_VMAC: u16 = 1 << 1;
/// A shared VIP (active-active): served by several groups, each answering the requesters
/// [`shared_member`] hands it, from its own virtual MAC. The entry's bits
/// [`VIP_SHARED_MEMBERS_SHIFT`].. hold how many member groups there are; each member's
/// answer (its slot and virtual MAC) is the entry keyed [`VipKey::shared_member`]. The
/// entry's own `slot` and `mac` are one member's, whichever wrote it last: the program
/// never answers from them.
pub const VIP_F_SHARED: u16 = 1 << 2;
/// Where a shared VIP's member count sits in its flags (the high byte).
pub const VIP_SHARED_MEMBERS_SHIFT: u16 = 8;
/// Groups one shared VIP can have.
pub const MAX_SHARED_MEMBERS: u8 = 16;

/// The flags of a shared VIP's own entry with `members` member groups.
pub const fn shared_vip_flags(members: u8) -> u16 {
    VIP_F_SHARED | ((members as u16) << VIP_SHARED_MEMBERS_SHIFT)
}

/// Which member group (0-based, of `members`) of a shared VIP answers a requester, from
/// the last four bytes of its address read as a big-endian number (the whole address for
/// IPv4, the low 32 bits of the interface identifier for IPv6): that number modulo
/// `members`. The same on every router and every restart, so each client resolves the
/// VIP to one group's virtual MAC for as long as the set of groups stays the same; and
/// consecutive addresses (DHCP pools, SLAAC-less static plans) take the groups in turn,
/// so any run of addresses splits within one client of even. `members` 0 is answered 0.
#[inline(always)]
pub const fn shared_member(requester_low32: u32, members: u8) -> u8 {
    if members == 0 {
        return 0;
    }
    (requester_low32 % members as u32) as u8
}

/// Ownership of one group slot. The whole value is written in one map update, so taking
/// over (or giving up) every VIP that points at the slot is a single syscall.
///
/// The program may also release a slot itself (it clears `owned`), the moment a valid
/// advertisement shows another router has become master, instead of waiting for the
/// daemon to read that advertisement: see `priority` and `resigning`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GroupState {
    /// Non-zero while this node is master for the group.
    pub owned: u8,
    /// Non-zero during a planned handover: the first advertisement with a non-zero
    /// priority from another router for the group releases the slot (make before break,
    /// with the break at line rate).
    pub resigning: u8,
    /// Our effective priority: an advertisement for the group with a higher one releases
    /// the slot (RFC 9568 §6.4.3, a master hearing a better master, at line rate). 255
    /// never yields this way.
    pub priority: u8,
    pub _pad: [u8; 5],
    /// `CLOCK_MONOTONIC` nanoseconds after which the program stops answering even though
    /// `owned` is set: the daemon's dead-man switch. The program compares it with
    /// `CLOCK_MONOTONIC_COARSE` (`bpf_ktime_get_coarse_ns`, a few nanoseconds instead of
    /// thirty per request), which lags by up to one tick: writers subtract a tick from the
    /// deadline they mean.
    pub lease_deadline_ns: u64,
}

/// A lease that never lapses, for a data plane driven by hand (`vipd xdp set-owned`).
pub const LEASE_FOREVER: u64 = u64::MAX;

impl GroupState {
    /// Owned until the deadline, yielding only to a planned handover's successor.
    pub const fn owned_until(lease_deadline_ns: u64) -> Self {
        Self {
            owned: 1,
            resigning: 0,
            priority: u8::MAX,
            _pad: [0; 5],
            lease_deadline_ns,
        }
    }

    /// Also released by an advertisement with a priority above `priority`.
    pub const fn yielding_above(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// Released by the first advertisement from a new master (non-zero priority).
    pub const fn resigning(mut self) -> Self {
        self.resigning = 1;
        self
    }

    pub const fn released() -> Self {
        Self {
            owned: 0,
            resigning: 0,
            priority: 0,
            _pad: [0; 5],
            lease_deadline_ns: 0,
        }
    }

    /// Whether the program answers for this group at monotonic time `now_ns`.
    #[inline(always)]
    pub const fn answers(&self, now_ns: u64) -> bool {
        self.owned != 0 && now_ns < self.lease_deadline_ns
    }

    /// Whether a valid advertisement with `priority` for this group means another router
    /// is now master and we must stop answering.
    #[inline(always)]
    pub const fn yields_to(&self, priority: u8) -> bool {
        self.owned != 0 && ((self.resigning != 0 && priority > 0) || priority > self.priority)
    }
}

/// A virtual router configured on one interface, for VRRP admission; or, with
/// [`INTERFACE_VRID`], the interface itself (see [`POLICY_F_DROP_FOREIGN`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PolicyKey {
    pub ifindex: u32,
    pub vlan: u16,
    pub family: u8,
    pub vrid: u8,
}

/// VRID 0 is invalid in VRRP (RFC 5798 §5.2.3), so a policy keyed with it can only name
/// the (ifindex, vlan, family) itself: that is where per-interface options live.
pub const INTERFACE_VRID: u8 = 0;

impl PolicyKey {
    /// The key of the per-interface entry.
    pub const fn interface(ifindex: u32, vlan: u16, family: u8) -> Self {
        Self {
            ifindex,
            vlan,
            family,
            vrid: INTERFACE_VRID,
        }
    }

    /// The key of CARP virtual host `vhid` ([`FAMILY_IPV4`] or [`FAMILY_IPV6`]), apart
    /// from VRRP's keys: see [`FAMILY_F_CARP`].
    pub const fn carp(ifindex: u32, vlan: u16, family: u8, vhid: u8) -> Self {
        Self {
            ifindex,
            vlan,
            family: family | FAMILY_F_CARP,
            vrid: vhid,
        }
    }
}

/// Set in the `family` of a [`PolicyKey`] or [`PeerKey`] that names a CARP virtual host
/// instead of a VRRP virtual router. Both protocols run on IP protocol 112 with ids from
/// the same 1..=255, and a link may carry VRRP VRID 7 and CARP VHID 7 as two unrelated
/// groups (`wire::classify_proto112` tells their packets apart), so their entries live in
/// two key spaces of the same maps. Family values are 4 and 6; this bit is never part of
/// one.
pub const FAMILY_F_CARP: u8 = 0x80;

/// How the program admits VRRP for one virtual router. The same rules are the daemon's
/// (see [`Policy::admits_v2_auth`]): the program releases slots on its own, so it must
/// never admit an advertisement the daemon would reject, nor the reverse.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// VRRP version expected on the wire: 2 or 3 (0 in the per-interface entry).
    pub version: u8,
    /// `POLICY_F_*` bits.
    pub flags: u8,
    pub _pad: [u8; 2],
    /// The group slot of this virtual router, so VMAC and status tooling can join them.
    pub slot: u32,
    /// VRRPv2 simple-text password, zero padded, compared whole when [`POLICY_F_AUTH`]
    /// is set; zero otherwise.
    pub auth: [u8; 8],
}

/// Only sources present in `PEERS` for this (ifindex, VRID) are admitted.
pub const POLICY_F_ALLOWLIST: u8 = 1 << 0;
/// VRRPv2 adverts must carry simple-text authentication (type 1) with exactly
/// [`Policy::auth`] as their 8 bytes of authentication data.
pub const POLICY_F_AUTH: u8 = 1 << 1;
/// Only in the per-interface entry ([`INTERFACE_VRID`]): VRRP for a VRID with no policy on
/// this (ifindex, vlan, family) is dropped instead of passed to the kernel, where
/// keepalived or FRR may be running other VRIDs.
pub const POLICY_F_DROP_FOREIGN: u8 = 1 << 2;
/// A CARP virtual host (keyed with [`PolicyKey::carp`]). The program checks only what
/// needs no secret (TTL, length, type, checksum, allowlist) and passes the rest to the
/// daemon; it never releases a slot on a CARP advertisement, because only the daemon can
/// check its HMAC and replay counter.
pub const POLICY_F_CARP: u8 = 1 << 3;

impl Policy {
    /// A virtual router with no allowlist and no v2 authentication.
    pub const fn new(version: u8, slot: u32) -> Self {
        Self {
            version,
            flags: 0,
            _pad: [0; 2],
            slot,
            auth: [0; 8],
        }
    }

    /// Admits only sources listed in `PEERS`.
    pub const fn with_allowlist(mut self) -> Self {
        self.flags |= POLICY_F_ALLOWLIST;
        self
    }

    /// Requires VRRPv2 simple-text authentication with `password` (zero padded to 8 bytes,
    /// as keepalived and RFC 3768 §5.3.7 send it); `None` if it is longer than 8 bytes.
    pub const fn with_password(mut self, password: &[u8]) -> Option<Self> {
        if password.len() > 8 {
            return None;
        }
        let mut i = 0;
        while i < password.len() {
            self.auth[i] = password[i];
            i += 1;
        }
        self.flags |= POLICY_F_AUTH;
        Some(self)
    }

    /// A CARP virtual host whose group has `slot`, to be stored under [`PolicyKey::carp`].
    pub const fn carp(slot: u32) -> Self {
        Self {
            version: wire::CARP_VERSION,
            flags: POLICY_F_CARP,
            _pad: [0; 2],
            slot,
            auth: [0; 8],
        }
    }

    /// The per-interface entry asking the program to drop VRRP for VRIDs not configured
    /// on the interface.
    pub const fn drop_foreign() -> Self {
        Self {
            version: 0,
            flags: POLICY_F_DROP_FOREIGN,
            _pad: [0; 2],
            slot: 0,
            auth: [0; 8],
        }
    }

    /// Whether a VRRPv2 advertisement with authentication type `auth_type` and
    /// authentication data `auth_data` is admitted, the rule the program and the daemon
    /// share:
    /// - without [`POLICY_F_AUTH`]: type 0 (no authentication) only; the data is ignored
    ///   on receipt (RFC 3768 §5.3.6);
    /// - with it: type 1 (simple text) and the 8 data bytes equal to [`Policy::auth`].
    ///
    /// Any other type (IP AH, unknown) is refused either way.
    #[inline(always)]
    pub const fn admits_v2_auth(&self, auth_type: u8, auth_data: &[u8; 8]) -> bool {
        if self.flags & POLICY_F_AUTH == 0 {
            auth_type == wire::V2_AUTH_NONE
        } else {
            // One 8-byte compare: the program does this per advert.
            auth_type == wire::V2_AUTH_SIMPLE_TEXT
                && u64::from_ne_bytes(*auth_data) == u64::from_ne_bytes(self.auth)
        }
    }
}

/// An allowed advertisement source for one virtual router (for a CARP virtual host, with
/// [`FAMILY_F_CARP`] in `family` and the VHID in `vrid`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerKey {
    pub ifindex: u32,
    pub vlan: u16,
    pub family: u8,
    pub vrid: u8,
    pub addr: [u8; 16],
}

/// Value stored for an allowed peer.
pub const PEER_ALLOWED: u32 = 1;

/// A BFD neighbour on one interface (`maps::BFD_PEERS`): the daemon adds one for each
/// session it runs. The program loops back this neighbour's Echo packets (RFC 5881 §4:
/// UDP to port 3785, addressed from the neighbour to itself) with `XDP_TX`, so a busy
/// daemon never fails a session, and records the Ethernet source of its Control packets
/// (UDP to port 3784), which the daemon sends its own Echo packets to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BfdPeerKey {
    pub ifindex: u32,
    pub vlan: u16,
    pub family: u8,
    pub _pad: u8,
    /// IPv4 in the first 4 bytes, the rest zero.
    pub addr: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BfdPeer {
    /// Ethernet source of the neighbour's last Control packet that named this node's
    /// session; all zero until one came. An echo is looped back only from this MAC.
    pub mac: [u8; 6],
    /// The MAC of the interface the session runs on (written by the daemon): an echo is
    /// looped back only when addressed to it, so a port that sees other stations' frames
    /// (a bridge member, a promiscuous NIC) never reflects one meant for somebody else,
    /// which would teach the switch that station's MAC on this port.
    pub own_mac: [u8; 6],
    /// This node's discriminator for the session (host order): the MAC is learned only from
    /// a Control packet whose Your Discriminator names it, so a packet that merely claims
    /// the neighbour's address (anyone on the link can send one) teaches nothing.
    pub local_disc: u32,
}

/// UDP ports of single-hop BFD (RFC 5881 §4).
pub const BFD_CONTROL_PORT: u16 = 3784;
pub const BFD_ECHO_PORT: u16 = 3785;

/// A virtual MAC on one interface (VMAC mode).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VmacKey {
    pub ifindex: u32,
    pub vlan: u16,
    pub mac: [u8; 6],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmacValue {
    pub slot: u32,
    /// The interface's own MAC: frames to the VMAC of an owned group are rewritten to it so
    /// the host accepts them without promiscuous mode.
    pub if_mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// A MAC VMAC acceptance readdresses frames to, on the interface (`ifindex`) whose XDP
/// program does it: the `if_mac` of that interface's `VMACS` entries. The tc ingress
/// classifier (`vip-ebpf/src/vmac.rs`, `to_host`) gives a frame to one of these that the
/// device classified as "for another host" the type "this host": only the XDP rewrite
/// makes such a frame. The value is 1 (present).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HostMacKey {
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// Last time another station claimed one of our owned VIPs (ARP reply or gratuitous ARP
/// from a MAC that is not ours), as one CPU saw it.
///
/// `CONFLICTS` is a per-CPU LRU hash: each CPU updates its own copy of an entry in place,
/// so a flood of claims costs no lock and no cache line shared between CPUs; only a VIP
/// with no entry yet takes the map's locks, to insert one, within the per-CPU budget of
/// [`CONFLICT_NEW_PER_WINDOW`]. A reader [`Conflict::merge`]s the copies.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Conflict {
    /// The claimant this CPU saw last.
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
    /// `CLOCK_MONOTONIC_COARSE` nanoseconds of that claim; 0 in a CPU's copy that has
    /// seen none.
    pub last_seen_ns: u64,
    /// Claims this CPU saw (wrapping).
    pub count: u64,
}

impl Conflict {
    /// The entry as all CPUs together saw it: claims added up, the latest claimant and
    /// time.
    pub fn merge(self, other: Conflict) -> Conflict {
        let latest = if other.last_seen_ns > self.last_seen_ns {
            other
        } else {
            self
        };
        Conflict {
            count: self.count.wrapping_add(other.count),
            ..latest
        }
    }
}

/// Each CPU inserts at most this many new `CONFLICTS` entries per
/// [`CONFLICT_NEW_WINDOW_NS`]; a claim beyond it for a VIP with no entry yet is counted
/// (`conflict_seen`, `conflict_unrecorded`) and passed, not recorded. Inserting into the
/// LRU map takes its bucket lock and, once it is full, evicts under its list lock: a
/// flood claiming more owned VIPs than it holds would do that for every packet. Claims
/// of a VIP that has an entry are never limited.
pub const CONFLICT_NEW_PER_WINDOW: u64 = 64;
/// 100 ms: well inside the daemon's conflict check period (250 ms).
pub const CONFLICT_NEW_WINDOW_NS: u64 = 100_000_000;

/// The last time the program released a slot on its own (`maps::RELEASES`, indexed by
/// slot), and the advertisement that made it. Written only by the program; the daemon
/// reads it after renewing a lease to learn that the data plane stopped answering, and
/// acts on it through its state machine rather than re-owning the slot unawares.
///
/// `count` moves on every release, so a reader compares it with the value it saw last.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Release {
    /// Releases of this slot since the map was created (wrapping).
    pub count: u64,
    /// `CLOCK_MONOTONIC_COARSE` nanoseconds of the last release.
    pub at_ns: u64,
    /// Source address of the advertisement (IPv4 in the first 4 bytes, the rest zero).
    pub src: [u8; 16],
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`].
    pub family: u8,
    pub vrid: u8,
    pub priority: u8,
    /// VRRP version of the advertisement: 2 or 3.
    pub version: u8,
    /// Advertisement interval in centiseconds: v3's Max Adver Int, v2's seconds × 100.
    pub interval_centis: u16,
    pub _pad: [u8; 10],
}

macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident ),+ $(,)?) => {
        /// Per-CPU verdict counters, one field per verdict or drop reason. The single
        /// entry of the `STATS` per-CPU array; userspace sums the CPUs.
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
        pub struct Counters {
            $( $(#[doc = $doc])* pub $name: u64, )+
        }

        impl Counters {
            /// Field names, in declaration order: the names used in metrics and status.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),+];
            pub const LEN: usize = Self::NAMES.len();

            /// Values in the order of [`Counters::NAMES`].
            pub const fn values(&self) -> [u64; Self::LEN] {
                [$(self.$name),+]
            }

            /// Adds `other` field by field (wrapping, as the kernel side does).
            pub fn accumulate(&mut self, other: &Self) {
                $( self.$name = self.$name.wrapping_add(other.$name); )+
            }
        }
    };
}

counters! {
    /// ARP requests for an owned VIP answered with `XDP_TX`.
    arp_reply,
    /// Neighbor Solicitations for an owned VIP answered with an NA.
    ns_reply,
    /// ARP requests / NS for a configured VIP this node does not own: dropped.
    vip_not_owned,
    /// ARP requests / NS for a VIP whose group is owned but whose lease lapsed: dropped.
    lease_expired,
    /// Valid VRRP passed to the daemon.
    vrrp_pass,
    /// VRRP with TTL / hop limit other than 255.
    vrrp_drop_ttl,
    /// VRRP version not 2 or 3, or not the configured one.
    vrrp_drop_version,
    /// VRRP type other than 1 (advertisement).
    vrrp_drop_type,
    /// VRRP for a VRID not configured on the receiving interface, where the interface's
    /// entry asks for it (`POLICY_F_DROP_FOREIGN`; otherwise such VRRP is `vrrp_foreign`).
    vrrp_drop_vrid,
    /// VRRP from a source outside an active allowlist.
    vrrp_drop_peer,
    /// VRRP whose length disagrees with its address count, or truncated.
    vrrp_drop_length,
    /// VRRP with a wrong checksum.
    vrrp_drop_checksum,
    /// ARP replies / gratuitous ARPs from another MAC claiming an owned VIP (passed).
    conflict_seen,
    /// Frames to the virtual MAC of an owned group, rewritten to the interface MAC.
    vmac_accept,
    /// Frames to the virtual MAC of a group this node does not own (passed untouched).
    vmac_not_owned,
    /// Owned slots released by the program on an advertisement from a better master or,
    /// during a planned handover, from the successor (each one also written to `RELEASES`).
    vrrp_yield,
    /// VRRPv2 whose authentication type or data the policy refuses.
    vrrp_drop_auth,
    /// VRRP with a zero advertisement interval (RFC 5798 errata 8299 / 8301).
    vrrp_drop_interval,
    /// VRRP with an address count of zero.
    vrrp_drop_count,
    /// VRRP passed to the kernel unjudged: its VRID has no policy on this interface (another
    /// VRRP speaker's), or the frame ends before the VRID.
    vrrp_foreign,
    /// VRRP for a configured VRID in a fragment (an IPv4 first fragment, any IPv6 fragment
    /// header): VRRP is never fragmented.
    vrrp_drop_fragment,
    /// ARP requests for an owned VIP from a multicast / broadcast Ethernet source, or whose
    /// sender hardware address is not the Ethernet source: dropped, never answered.
    arp_bad_source,
    /// NS for an owned VIP from a multicast / broadcast Ethernet source, or whose source
    /// link-layer address option is not the Ethernet source: dropped, never answered.
    ns_bad_source,
    /// NS for a configured VIP inside an IPv6 fragment: dropped (RFC 6980).
    ns_fragment,
    /// IPv6 with hop limit 255 whose extension headers go deeper than the program looks:
    /// dropped, as they could hide an NS or VRRP.
    ipv6_ext_too_deep,
    /// VRRP of the other version (2 or 3) for a configured VRID: passed to the daemon,
    /// which counts and reports it per instance (a keepalived peer left at its default
    /// v2, say), and never acted on.
    vrrp_version_mismatch,
    /// BFD Echo packets of a configured neighbour looped back with `XDP_TX`.
    bfd_echo_reflected,
    /// Packets to the BFD Echo port addressed from a source to itself that were not
    /// looped back, passed to the kernel: this node's own echoes coming home (one per
    /// echo it sends), and any not from a BFD neighbour of the interface or not from and
    /// to one station (multicast / broadcast Ethernet addresses).
    bfd_echo_refused,
    /// CARP for a configured virtual host that passed the structural checks: passed to
    /// the daemon, which checks its HMAC and counter. Never releases a slot.
    carp_pass,
    /// CARP for a VHID with no CARP policy on the interface (another CARP speaker's, e.g.
    /// ucarp on this host): passed untouched; dropped instead (`vrrp_drop_vrid`) on an
    /// interface set to drop foreign VRRP.
    carp_foreign,
    /// CARP for a configured virtual host with TTL / hop limit other than 255.
    carp_drop_ttl,
    /// CARP for a configured virtual host that is not exactly 36 bytes, or truncated.
    carp_drop_length,
    /// CARP for a configured virtual host whose type is not 1 (advertisement).
    carp_drop_type,
    /// CARP for a configured virtual host with a wrong checksum.
    carp_drop_checksum,
    /// CARP for a configured virtual host from a source outside its allowlist.
    carp_drop_peer,
    /// CARP for a configured virtual host in a fragment.
    carp_drop_fragment,
    /// Claims of an owned VIP (also in `conflict_seen`) that could not be recorded in
    /// `CONFLICTS`: the VIP had no entry and this CPU had used its budget of new entries
    /// ([`CONFLICT_NEW_PER_WINDOW`]). A flood claiming many VIPs at once shows here.
    conflict_unrecorded,
    /// Frames of a multi-buffer (jumbo) frame whose part the program would have to read
    /// or rewrite lies past the first buffer, passed to the kernel unjudged: an ARP
    /// request or NS for an answered VIP padded past it (the kernel, holding the VIP,
    /// answers), or an advertisement of ours longer than it (the daemon's admission
    /// judges it; no slot is released here). IPv6 whose headers run past it is
    /// `ipv6_ext_too_deep`.
    multi_buffer_pass,
    /// Packets of a load-balanced service sent to a real server by rewriting the
    /// Ethernet destination (direct routing).
    lb_forward_dr,
    /// Packets of a load-balanced service sent to a real server in an IP-in-IP tunnel.
    lb_forward_tunnel,
    /// Packets for a service whose group this node does not answer for (and that is not
    /// active-active): passed to the kernel.
    lb_not_owned,
    /// Packets for a service with no real server in its table: dropped.
    lb_no_real,
    /// Fragments for a service (their later pieces carry no ports to hash): dropped.
    lb_drop_fragment,
    /// Packets for a service whose IP or transport header is malformed or cut short:
    /// dropped.
    lb_drop_malformed,
    /// Packets that would exceed the way out's MTU once tunnelled: dropped.
    lb_drop_too_big,
    /// Packets whose real server cannot be reached from where they arrived (another VLAN,
    /// no next hop resolved yet, no room to encapsulate): dropped.
    lb_drop_unreachable,
    /// Flows pinned to a real server in `LB_FLOWS` (a new flow, or one the table had
    /// lost: see `lb_flow_midstream`).
    lb_flow_created,
    /// Remembered flows whose real server went down or away, pinned again by the table.
    lb_flow_moved,
    /// TCP segments without SYN that found no remembered flow: a flow that began on
    /// another director (a failover), or one the LRU table evicted.
    lb_flow_midstream,
    /// ICMPv4 errors (destination unreachable, time exceeded) to a service VIP quoting a
    /// packet of one of its flows, sent to that flow's server.
    lb_forward_icmp,
    /// Echo packets claiming a BFD neighbour's address that were not addressed to this
    /// interface's MAC (a frame for another station seen on a promiscuous port) or not
    /// from the neighbour's MAC (as learned from its Control packets): passed untouched.
    bfd_echo_spoofed,
    /// TCP segments without SYN of a flow this director had not seen, pinned to the
    /// server of the service's previous table (see `LB_F_PREVIOUS`): a flow that began
    /// before the last change of the server set, on a director that has since died.
    lb_flow_previous,
    /// Frames VMAC acceptance readdressed (`vmac_accept`) that reached tc ingress as
    /// "for another host" (a veth sets the packet type before XDP runs) and were given
    /// the type "this host" by the tc classifier, so IP takes them. Stays 0 where the
    /// driver builds the skb after XDP (a NIC).
    vmac_to_host,
}

#[cfg(feature = "user")]
mod pod {
    use super::*;

    // SAFETY: all are #[repr(C)], made only of integers and integer arrays, with every
    // padding byte a named field: any bit pattern is valid and none is uninitialised.
    unsafe impl aya::Pod for VipKey {}
    unsafe impl aya::Pod for VipValue {}
    unsafe impl aya::Pod for GroupState {}
    unsafe impl aya::Pod for PolicyKey {}
    unsafe impl aya::Pod for Policy {}
    unsafe impl aya::Pod for PeerKey {}
    unsafe impl aya::Pod for VmacKey {}
    unsafe impl aya::Pod for HostMacKey {}
    unsafe impl aya::Pod for VmacValue {}
    unsafe impl aya::Pod for Conflict {}
    unsafe impl aya::Pod for Release {}
    unsafe impl aya::Pod for Counters {}
    unsafe impl aya::Pod for BfdPeerKey {}
    unsafe impl aya::Pod for BfdPeer {}
    unsafe impl aya::Pod for LbServiceKey {}
    unsafe impl aya::Pod for LbService {}
    unsafe impl aya::Pod for MaglevTable {}
    unsafe impl aya::Pod for LbReal {}
    unsafe impl aya::Pod for LbFlowKey {}
    unsafe impl aya::Pod for LbFlow {}
    unsafe impl aya::Pod for LbCounters {}
}

#[cfg(test)]
mod tests {
    use core::mem::{align_of, size_of};

    use super::*;

    // The kernel sees these sizes; a change is a map ABI break for pinned maps.
    #[test]
    fn layouts_have_no_implicit_padding() {
        assert_eq!(size_of::<VipKey>(), 24);
        assert_eq!(size_of::<VipValue>(), 12);
        assert_eq!(size_of::<GroupState>(), 16);
        assert_eq!(align_of::<GroupState>(), 8);
        assert_eq!(size_of::<PolicyKey>(), 8);
        assert_eq!(size_of::<BfdPeerKey>(), 24);
        assert_eq!(size_of::<BfdPeer>(), 6 + 6 + 4);
        assert_eq!(size_of::<Policy>(), 16);
        assert_eq!(align_of::<Policy>(), 4);
        assert_eq!(size_of::<PeerKey>(), 24);
        assert_eq!(size_of::<VmacKey>(), 12);
        assert_eq!(size_of::<HostMacKey>(), 4 + 6 + 2);
        assert_eq!(size_of::<VmacValue>(), 12);
        assert_eq!(size_of::<Conflict>(), 24);
        assert_eq!(size_of::<Release>(), 48);
        assert_eq!(align_of::<Release>(), 8);
        // Field by field: a size equal to the sum of the fields leaves no room for padding
        // the compiler would add (and leave uninitialised).
        assert_eq!(size_of::<Policy>(), 1 + 1 + 2 + 4 + 8);
        assert_eq!(size_of::<Release>(), 8 + 8 + 16 + 1 + 1 + 1 + 1 + 2 + 10);
        assert_eq!(size_of::<Counters>(), 8 * Counters::LEN);
    }

    #[test]
    fn shared_member_is_the_address_modulo_the_member_count() {
        let v4 = |a: [u8; 4]| u32::from_be_bytes(a);
        assert_eq!(shared_member(v4([192, 0, 2, 10]), 2), 0);
        assert_eq!(shared_member(v4([192, 0, 2, 11]), 2), 1);
        assert_eq!(
            shared_member(v4([192, 0, 2, 11]), 3),
            (0xc000_020b_u32 % 3) as u8
        );
        assert_eq!(shared_member(v4([192, 0, 2, 11]), 0), 0);
        // Any run of consecutive addresses splits within one of even.
        for members in 1..=MAX_SHARED_MEMBERS {
            let mut shares = [0u32; MAX_SHARED_MEMBERS as usize];
            for a in 0..97u32 {
                shares[shared_member(0xc633_6400 + a, members) as usize] += 1;
            }
            let used = &shares[..members as usize];
            let (lo, hi) = (used.iter().min().unwrap(), used.iter().max().unwrap());
            assert!(hi - lo <= 1, "{members}: {used:?}");
        }
        let flags = shared_vip_flags(3);
        assert_ne!(flags & VIP_F_SHARED, 0);
        assert_eq!(flags >> VIP_SHARED_MEMBERS_SHIFT, 3);
        assert_eq!(VipKey::v4(1, 0, [192, 0, 2, 1]).shared_member(2).member, 3);
    }

    #[test]
    fn conflict_copies_merge_into_the_latest_claimant_and_the_sum_of_claims() {
        let seen = |mac: u8, last_seen_ns, count| Conflict {
            mac: [2, 0, 0, 0, 0, mac],
            _pad: [0; 2],
            last_seen_ns,
            count,
        };
        let quiet = Conflict::default();
        let merged = [seen(1, 50, 3), quiet, seen(2, 70, 4), seen(3, 60, 1)]
            .into_iter()
            .fold(quiet, Conflict::merge);
        assert_eq!(merged, seen(2, 70, 8));
        // A CPU that saw nothing changes nothing, whichever side it is on.
        assert_eq!(seen(1, 50, 3).merge(quiet), seen(1, 50, 3));
        assert_eq!(quiet.merge(seen(1, 50, 3)), seen(1, 50, 3));
        assert_eq!(seen(1, 1, u64::MAX).merge(seen(1, 1, 2)).count, 1);
    }

    #[test]
    fn key_words_cover_every_byte() {
        let mut k = VipKey::v4(7, 3, [192, 0, 2, 1]);
        let a = k.words();
        k.addr[15] = 1;
        assert_ne!(a, k.words());
        assert_eq!(a[0], u64::from_ne_bytes([7, 0, 0, 0, 3, 0, 4, 0]));
    }

    #[test]
    fn v4_key_zeroes_the_tail() {
        let k = VipKey::v4(7, 0, [192, 0, 2, 1]);
        assert_eq!(k.family, FAMILY_IPV4);
        assert_eq!(&k.addr[..4], &[192, 0, 2, 1]);
        assert!(k.addr[4..].iter().all(|&b| b == 0));
    }

    #[test]
    fn lease_bounds_answering() {
        let s = GroupState::owned_until(1_000);
        assert!(s.answers(999));
        assert!(!s.answers(1_000));
        assert!(!GroupState::released().answers(0));
        assert!(GroupState::owned_until(LEASE_FOREVER).answers(u64::MAX - 1));
    }

    #[test]
    fn a_slot_yields_to_a_better_master_or_a_successor_when_resigning() {
        let s = GroupState::owned_until(10).yielding_above(100);
        assert!(!s.yields_to(100) && !s.yields_to(0));
        assert!(s.yields_to(101));
        let r = GroupState::owned_until(10).resigning();
        assert!(r.yields_to(1) && !r.yields_to(0));
        assert!(!GroupState::owned_until(10).yields_to(254));
        assert!(!GroupState::released().yields_to(255));
    }

    #[test]
    fn v2_auth_without_a_password_admits_type_0_whatever_its_data() {
        let p = Policy::new(2, 0);
        assert!(p.admits_v2_auth(0, &[0; 8]));
        // RFC 3768 §5.3.6: the data is ignored on receipt.
        assert!(p.admits_v2_auth(0, b"anything"));
        assert!(!p.admits_v2_auth(1, &[0; 8]));
        assert!(!p.admits_v2_auth(2, &[0; 8]));
    }

    #[test]
    fn v2_auth_with_a_password_admits_type_1_with_exactly_its_padded_bytes() {
        let p = Policy::new(2, 0).with_password(b"secret").unwrap();
        assert_eq!(p.flags, POLICY_F_AUTH);
        assert_eq!(&p.auth, b"secret\0\0");
        assert!(p.admits_v2_auth(1, b"secret\0\0"));
        assert!(!p.admits_v2_auth(0, b"secret\0\0"));
        assert!(!p.admits_v2_auth(1, b"secreT\0\0"));
        // Bytes after a NUL count too: the whole field is compared.
        assert!(!p.admits_v2_auth(1, b"secret\0x"));
        assert!(!p.admits_v2_auth(1, b"secret12"));
        let full = Policy::new(2, 0).with_password(b"12345678").unwrap();
        assert!(full.admits_v2_auth(1, b"12345678"));
        assert!(Policy::new(2, 0).with_password(b"123456789").is_none());
    }

    #[test]
    fn the_interface_entry_is_keyed_by_the_invalid_vrid() {
        let k = PolicyKey::interface(7, 42, FAMILY_IPV6);
        assert_eq!(
            (k.ifindex, k.vlan, k.family, k.vrid),
            (7, 42, FAMILY_IPV6, 0)
        );
        assert_eq!(Policy::drop_foreign().flags, POLICY_F_DROP_FOREIGN);
    }

    #[test]
    fn carp_keys_live_apart_from_vrrp_keys() {
        let vrrp = PolicyKey {
            ifindex: 7,
            vlan: 0,
            family: FAMILY_IPV4,
            vrid: 9,
        };
        let carp = PolicyKey::carp(7, 0, FAMILY_IPV4, 9);
        assert_ne!(vrrp, carp);
        assert_eq!(carp.family & !FAMILY_F_CARP, FAMILY_IPV4);
        assert_ne!(
            PolicyKey::carp(7, 0, FAMILY_IPV6, 9),
            PolicyKey::carp(7, 0, FAMILY_IPV4, 9)
        );
        let p = Policy::carp(3);
        assert_eq!((p.version, p.flags, p.slot), (2, POLICY_F_CARP, 3));
    }

    #[test]
    fn existing_counter_names_keep_their_place() {
        // Metrics and `vipd status` use the names; new counters go at the end.
        assert_eq!(
            &Counters::NAMES[..16],
            &[
                "arp_reply",
                "ns_reply",
                "vip_not_owned",
                "lease_expired",
                "vrrp_pass",
                "vrrp_drop_ttl",
                "vrrp_drop_version",
                "vrrp_drop_type",
                "vrrp_drop_vrid",
                "vrrp_drop_peer",
                "vrrp_drop_length",
                "vrrp_drop_checksum",
                "conflict_seen",
                "vmac_accept",
                "vmac_not_owned",
                "vrrp_yield",
            ]
        );
    }

    #[test]
    fn counters_accumulate_by_name() {
        let mut a = Counters {
            arp_reply: 2,
            ..Default::default()
        };
        let b = Counters {
            arp_reply: 3,
            vrrp_drop_ttl: 1,
            ..Default::default()
        };
        a.accumulate(&b);
        let v = a.values();
        let idx = |n: &str| Counters::NAMES.iter().position(|x| *x == n).unwrap();
        assert_eq!(v[idx("arp_reply")], 5);
        assert_eq!(v[idx("vrrp_drop_ttl")], 1);
        assert_eq!(Counters::NAMES.len(), Counters::LEN);
    }
}
