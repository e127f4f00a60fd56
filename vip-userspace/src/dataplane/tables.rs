//! Typed handles on the responder's maps, one method per change.

use std::path::Path;

use aya::{
    Ebpf,
    maps::{Array, HashMap, Map, MapData, MapError, MapInfo, MapType, PerCpuArray, PerCpuHashMap},
};
use vip_common::{
    BfdPeer, BfdPeerKey, Conflict, Counters, GroupState, HostMacKey, LbCounters, LbFlow, LbFlowKey,
    LbReal, LbService, LbServiceKey, MAP_F_NO_COMMON_LRU, MAP_F_NO_PREALLOC, MAX_BFD_PEERS,
    MAX_CONFLICTS, MAX_GROUPS, MAX_HOST_MACS, MAX_LB_FLOWS, MAX_LB_REALS, MAX_LB_SERVICE_KEYS,
    MAX_LB_SERVICES, MAX_PEERS, MAX_POLICIES, MAX_VIPS, MAX_VMACS, MaglevTable, PEER_ALLOWED,
    PeerKey, Policy, PolicyKey, Release, VipKey, VipValue, VipsVersion, VmacKey, VmacValue, maps,
    vips_version_token,
};

use super::{DataplaneError, Result, lb::LbMaps};

/// What each map must look like. A pinned file that differs is somebody else's object and
/// is never reused (nor removed) by vipd.
struct Spec {
    name: &'static str,
    kind: MapType,
    key: usize,
    value: usize,
    max: u32,
    flags: u32,
}

const SPECS: [Spec; 21] = [
    spec::<VipKey, VipValue>(maps::VIPS, MapType::Hash, MAX_VIPS, MAP_F_NO_PREALLOC),
    spec::<u32, GroupState>(maps::GROUP_STATE, MapType::Array, MAX_GROUPS, 0),
    spec::<PolicyKey, Policy>(
        maps::VRRP_POLICY,
        MapType::Hash,
        MAX_POLICIES,
        MAP_F_NO_PREALLOC,
    ),
    spec::<PeerKey, u32>(maps::PEERS, MapType::Hash, MAX_PEERS, MAP_F_NO_PREALLOC),
    spec::<VmacKey, VmacValue>(maps::VMACS, MapType::Hash, MAX_VMACS, MAP_F_NO_PREALLOC),
    spec::<VipKey, Conflict>(maps::CONFLICTS, MapType::LruPerCpuHash, MAX_CONFLICTS, 0),
    spec::<u32, Counters>(maps::STATS, MapType::PerCpuArray, 1, 0),
    spec::<u32, Release>(maps::RELEASES, MapType::Array, MAX_GROUPS, 0),
    spec::<BfdPeerKey, BfdPeer>(
        maps::BFD_PEERS,
        MapType::Hash,
        MAX_BFD_PEERS,
        MAP_F_NO_PREALLOC,
    ),
    spec::<u32, VipsVersion>(maps::VIPS_VERSION, MapType::Array, 1, 0),
    spec::<LbServiceKey, LbService>(
        maps::LB_SERVICES,
        MapType::Hash,
        MAX_LB_SERVICE_KEYS,
        MAP_F_NO_PREALLOC,
    ),
    spec::<u32, MaglevTable>(maps::LB_TABLES, MapType::Array, MAX_LB_SERVICES * 2, 0),
    spec::<u32, LbReal>(maps::LB_REALS, MapType::Array, MAX_LB_REALS, 0),
    spec::<LbFlowKey, LbFlow>(
        maps::LB_FLOWS,
        MapType::LruHash,
        MAX_LB_FLOWS,
        MAP_F_NO_COMMON_LRU,
    ),
    spec::<u32, LbCounters>(
        maps::LB_SERVICE_STATS,
        MapType::PerCpuArray,
        MAX_LB_SERVICES,
        0,
    ),
    spec::<u32, LbCounters>(maps::LB_REAL_STATS, MapType::PerCpuArray, MAX_LB_REALS, 0),
    spec::<u32, u32>(maps::LB_PROGS, MapType::ProgramArray, 1, 0),
    spec::<u32, u32>(maps::LB_PROGS_NOFRAG, MapType::ProgramArray, 1, 0),
    spec::<u32, u32>(maps::LB_ACTIVE, MapType::Array, 1, 0),
    spec::<HostMacKey, u32>(
        maps::HOST_MACS,
        MapType::Hash,
        MAX_HOST_MACS,
        MAP_F_NO_PREALLOC,
    ),
    spec::<u32, u64>(maps::SHARED_ANSWERS, MapType::PerCpuArray, MAX_GROUPS, 0),
];

const fn spec<K, V>(name: &'static str, kind: MapType, max: u32, flags: u32) -> Spec {
    Spec {
        name,
        kind,
        key: size_of::<K>(),
        value: size_of::<V>(),
        max,
        flags,
    }
}

/// Checks every map already pinned under `dir` is one of ours with today's layout.
pub(super) fn check_pinned(dir: &Path) -> Result<()> {
    for s in &SPECS {
        let path = dir.join(s.name);
        if !path.exists() {
            continue;
        }
        let foreign = |what: String| DataplaneError::ForeignPin {
            path: path.clone(),
            what,
        };
        let info = MapInfo::from_pin(&path).map_err(|e| foreign(format!("not a BPF map ({e})")))?;
        let kind = info.map_type().map_err(|e| foreign(e.to_string()))?;
        if kind != s.kind {
            return Err(foreign(format!("map type {kind:?}, expected {:?}", s.kind)));
        }
        let got = (
            info.key_size() as usize,
            info.value_size() as usize,
            info.max_entries(),
        );
        if got != (s.key, s.value, expected_max(s)) {
            return Err(foreign(format!(
                "key/value/max_entries {}/{}/{}, expected {}/{}/{}",
                got.0,
                got.1,
                got.2,
                s.key,
                s.value,
                expected_max(s)
            )));
        }
        // Allocation flags are layout too: a preallocated map from an older vipd is
        // refused like any other foreign object rather than silently reused.
        if info.map_flags() != s.flags {
            return Err(foreign(format!(
                "map_flags {:#x}, expected {:#x}",
                info.map_flags(),
                s.flags
            )));
        }
    }
    Ok(())
}

/// The max_entries the kernel reports for a map of `s`: an LRU map with per-CPU lists
/// is rounded up to a multiple of the possible CPUs.
fn expected_max(s: &Spec) -> u32 {
    if s.flags & MAP_F_NO_COMMON_LRU == 0 {
        return s.max;
    }
    let cpus = aya::util::nr_cpus().map_or(1, |n| n.max(1)) as u32;
    s.max.div_ceil(cpus) * cpus
}

/// The responder's maps.
pub struct Maps {
    vips: HashMap<MapData, VipKey, VipValue>,
    groups: Array<MapData, GroupState>,
    policy: HashMap<MapData, PolicyKey, Policy>,
    peers: HashMap<MapData, PeerKey, u32>,
    vmacs: HashMap<MapData, VmacKey, VmacValue>,
    host_macs: HashMap<MapData, HostMacKey, u32>,
    conflicts: PerCpuHashMap<MapData, VipKey, Conflict>,
    stats: PerCpuArray<MapData, Counters>,
    releases: Array<MapData, Release>,
    bfd_peers: HashMap<MapData, BfdPeerKey, BfdPeer>,
    vips_version: Array<MapData, VipsVersion>,
    shared_answers: PerCpuArray<MapData, u64>,
    /// The load balancer's own maps, where it is loaded (see `Dataplane::open_for`).
    lb: Option<LbMaps>,
}

/// A second handle on the map pinned as `name` under `dir`.
fn pinned(dir: &Path, name: &'static str) -> Result<Map> {
    let data = MapData::from_pin(dir.join(name))
        .map_err(map_err(&format!("opening {}", dir.join(name).display())))?;
    Map::from_map_data(data).map_err(map_err(name))
}

pub(super) fn map_err(what: &str) -> impl FnOnce(MapError) -> DataplaneError + '_ {
    move |source| DataplaneError::Map {
        what: what.to_owned(),
        source: Box::new(source),
    }
}

impl Maps {
    /// Takes the maps out of a loaded object.
    /// `services`: whether the load balancer's maps are the real ones.
    pub(super) fn take(ebpf: &mut Ebpf, pin_dir: &Path, services: bool) -> Result<Self> {
        Self::build(
            |name| ebpf.take_map(name).ok_or(DataplaneError::MissingMap(name)),
            pin_dir,
            services,
        )
    }

    /// Opens the maps pinned under `dir` by a running (or crashed) vipd, without loading
    /// anything: what `vipd status` and tests use to read state.
    /// The load balancer's maps are opened when they are pinned (services configured).
    pub fn open_pinned(dir: &Path) -> Result<Self> {
        check_pinned(dir)?;
        let services = dir.join(maps::LB_TABLES).exists();
        Self::build(|name| pinned(dir, name), dir, services)
    }

    fn build(
        mut get: impl FnMut(&'static str) -> Result<Map>,
        dir: &Path,
        services: bool,
    ) -> Result<Self> {
        Ok(Self {
            vips: get(maps::VIPS)?.try_into().map_err(map_err(maps::VIPS))?,
            groups: get(maps::GROUP_STATE)?
                .try_into()
                .map_err(map_err(maps::GROUP_STATE))?,
            policy: get(maps::VRRP_POLICY)?
                .try_into()
                .map_err(map_err(maps::VRRP_POLICY))?,
            peers: get(maps::PEERS)?.try_into().map_err(map_err(maps::PEERS))?,
            vmacs: get(maps::VMACS)?.try_into().map_err(map_err(maps::VMACS))?,
            host_macs: get(maps::HOST_MACS)?
                .try_into()
                .map_err(map_err(maps::HOST_MACS))?,
            conflicts: get(maps::CONFLICTS)?
                .try_into()
                .map_err(map_err(maps::CONFLICTS))?,
            stats: get(maps::STATS)?.try_into().map_err(map_err(maps::STATS))?,
            releases: get(maps::RELEASES)?
                .try_into()
                .map_err(map_err(maps::RELEASES))?,
            bfd_peers: get(maps::BFD_PEERS)?
                .try_into()
                .map_err(map_err(maps::BFD_PEERS))?,
            vips_version: get(maps::VIPS_VERSION)?
                .try_into()
                .map_err(map_err(maps::VIPS_VERSION))?,
            shared_answers: get(maps::SHARED_ANSWERS)?
                .try_into()
                .map_err(map_err(maps::SHARED_ANSWERS))?,
            lb: if services {
                Some(LbMaps::build(&mut get, |name| pinned(dir, name))?)
            } else {
                None
            },
        })
    }

    /// The load balancer's maps, where it is loaded.
    pub fn lb(&mut self) -> Option<&mut LbMaps> {
        self.lb.as_mut()
    }

    /// The load balancer's maps, to read.
    pub fn lb_ref(&self) -> Option<&LbMaps> {
        self.lb.as_ref()
    }

    /// Takes the load balancer's handles out (the daemon's balancer task owns them).
    pub fn take_lb(&mut self) -> Option<LbMaps> {
        self.lb.take()
    }

    pub fn add_vip(&mut self, key: VipKey, value: VipValue) -> Result<()> {
        let r = self
            .vips
            .insert(key, value, 0)
            .map_err(map_err("adding a VIP"));
        // Whether or not the write took: the program must never keep a lookup from
        // before an attempted change.
        self.vips_changed()?;
        r
    }

    /// Removes a VIP; absent is fine.
    pub fn remove_vip(&mut self, key: &VipKey) -> Result<()> {
        let r = ignore_missing(self.vips.remove(key)).map_err(map_err("removing a VIP"));
        self.vips_changed()?;
        r
    }

    /// Moves `VIPS_VERSION` on after a change to `VIPS`, so the program's per-CPU lookup
    /// caches drop what they hold (see `vip_common::VipsVersion`).
    fn vips_changed(&mut self) -> Result<()> {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
            .unwrap_or(0);
        let old = self.vips_version.get(&0, 0).unwrap_or(0);
        let mut token = vips_version_token(now, std::process::id());
        if token == old {
            token = token.wrapping_add(1);
        }
        self.vips_version
            .set(0, token, 0)
            .map_err(map_err("moving VIPS_VERSION on"))
    }

    pub fn vips(&self) -> Result<Vec<(VipKey, VipValue)>> {
        self.vips
            .iter()
            .collect::<Result<_, _>>()
            .map_err(map_err("listing VIPs"))
    }

    /// Sets a group slot: the one write that moves every VIP of the group.
    pub fn set_group(&mut self, slot: u32, state: GroupState) -> Result<()> {
        self.groups
            .set(slot, state, 0)
            .map_err(map_err("writing a group slot"))
    }

    /// Owned until `lease_deadline_ns` (CLOCK_MONOTONIC), or released.
    pub fn set_group_owned(
        &mut self,
        slot: u32,
        owned: bool,
        lease_deadline_ns: u64,
    ) -> Result<()> {
        let state = if owned {
            GroupState::owned_until(lease_deadline_ns)
        } else {
            GroupState::released()
        };
        self.set_group(slot, state)
    }

    pub fn group(&self, slot: u32) -> Result<GroupState> {
        self.groups
            .get(&slot, 0)
            .map_err(map_err("reading a group slot"))
    }

    /// ARP replies and NAs the program sent for shared VIPs on behalf of the group in
    /// `slot`, summed over CPUs.
    pub fn shared_answers(&self, slot: u32) -> Result<u64> {
        let per_cpu = self
            .shared_answers
            .get(&slot, 0)
            .map_err(map_err("reading shared-VIP answers"))?;
        Ok(per_cpu.iter().fold(0u64, |a, n| a.wrapping_add(*n)))
    }

    pub fn set_policy(&mut self, key: PolicyKey, policy: Policy) -> Result<()> {
        self.policy
            .insert(key, policy, 0)
            .map_err(map_err("writing a VRRP policy"))
    }

    pub fn remove_policy(&mut self, key: &PolicyKey) -> Result<()> {
        ignore_missing(self.policy.remove(key)).map_err(map_err("removing a VRRP policy"))
    }

    /// Whether VRRP for VRIDs with no policy on (ifindex, vlan, family) is dropped
    /// (`vrrp_drop_vrid`) rather than passed to the kernel for other VRRP speakers on the
    /// host (`vrrp_foreign`, the default). Stored as the interface's own policy entry.
    pub fn set_interface_policy(
        &mut self,
        ifindex: u32,
        vlan: u16,
        family: u8,
        drop_foreign: bool,
    ) -> Result<()> {
        let key = PolicyKey::interface(ifindex, vlan, family);
        if drop_foreign {
            self.set_policy(key, Policy::drop_foreign())
        } else {
            self.remove_policy(&key)
        }
    }

    pub fn policies(&self) -> Result<Vec<(PolicyKey, Policy)>> {
        self.policy
            .iter()
            .collect::<Result<_, _>>()
            .map_err(map_err("listing policies"))
    }

    pub fn add_peer(&mut self, key: PeerKey) -> Result<()> {
        self.peers
            .insert(key, PEER_ALLOWED, 0)
            .map_err(map_err("adding an allowed peer"))
    }

    pub fn remove_peer(&mut self, key: &PeerKey) -> Result<()> {
        ignore_missing(self.peers.remove(key)).map_err(map_err("removing an allowed peer"))
    }

    pub fn peers(&self) -> Result<Vec<PeerKey>> {
        self.peers
            .keys()
            .collect::<Result<_, _>>()
            .map_err(map_err("listing peers"))
    }

    pub fn add_vmac(&mut self, key: VmacKey, value: VmacValue) -> Result<()> {
        self.vmacs
            .insert(key, value, 0)
            .map_err(map_err("adding a VMAC"))
    }

    pub fn remove_vmac(&mut self, key: &VmacKey) -> Result<()> {
        ignore_missing(self.vmacs.remove(key)).map_err(map_err("removing a VMAC"))
    }

    pub fn vmacs(&self) -> Result<Vec<(VmacKey, VmacValue)>> {
        self.vmacs
            .iter()
            .collect::<Result<_, _>>()
            .map_err(map_err("listing VMACs"))
    }

    /// Adds a MAC VMAC acceptance readdresses to (see `vip_common::HostMacKey`).
    pub fn add_host_mac(&mut self, key: HostMacKey) -> Result<()> {
        self.host_macs
            .insert(key, 1, 0)
            .map_err(map_err("adding a host MAC"))
    }

    pub fn remove_host_mac(&mut self, key: &HostMacKey) -> Result<()> {
        ignore_missing(self.host_macs.remove(key)).map_err(map_err("removing a host MAC"))
    }

    pub fn host_macs(&self) -> Result<Vec<HostMacKey>> {
        self.host_macs
            .keys()
            .collect::<Result<_, _>>()
            .map_err(map_err("listing host MACs"))
    }

    /// Counter totals over all CPUs.
    pub fn counters(&self) -> Result<Counters> {
        let per_cpu = self.stats.get(&0, 0).map_err(map_err("reading counters"))?;
        let mut total = Counters::default();
        for c in per_cpu.iter() {
            total.accumulate(c);
        }
        Ok(total)
    }

    /// Zeroes the counters (tests and benchmarks measure from a clean slate).
    pub fn reset_counters(&mut self) -> Result<()> {
        let cpus = aya::util::nr_cpus().map_err(|(_, source)| DataplaneError::Io {
            what: "counting possible CPUs".into(),
            source,
        })?;
        let zeros = aya::maps::PerCpuValues::try_from(vec![Counters::default(); cpus]).map_err(
            |source| DataplaneError::Io {
                what: "building zeroed counters".into(),
                source,
            },
        )?;
        self.stats
            .set(0, zeros, 0)
            .map_err(map_err("resetting counters"))
    }

    /// The program's last release of `slot` (all zero if it never released it). Compare
    /// `count` with the one seen before to learn of a new release.
    pub fn release(&self, slot: u32) -> Result<Release> {
        use aya::maps::IterableMap as _;
        // The loop reads this with every advert it sends as master: not through aya's
        // `get`, which builds and drops a `MapError` on every successful read.
        array_slot(self.releases.map(), slot).map_err(|source| DataplaneError::Io {
            what: "reading a release record".into(),
            source,
        })
    }

    /// Lets the program loop back `key`'s Echo packets addressed to `own_mac` (the
    /// interface's) and learn its MAC from Control packets that name `local_disc`, this
    /// node's discriminator for the session. An entry that exists keeps the MAC already
    /// learned.
    pub fn add_bfd_peer(
        &mut self,
        key: BfdPeerKey,
        local_disc: u32,
        own_mac: [u8; 6],
    ) -> Result<()> {
        let old = self.bfd_peers.get(&key, 0).ok();
        if old.is_some_and(|p| p.local_disc == local_disc && p.own_mac == own_mac) {
            return Ok(());
        }
        let value = BfdPeer {
            local_disc,
            own_mac,
            ..old.unwrap_or_default()
        };
        self.bfd_peers
            .insert(key, value, 0)
            .map_err(map_err("adding a BFD neighbour"))
    }

    pub fn remove_bfd_peer(&mut self, key: &BfdPeerKey) -> Result<()> {
        ignore_missing(self.bfd_peers.remove(key)).map_err(map_err("removing a BFD neighbour"))
    }

    /// The neighbour's entry (its MAC as the program last saw it), if any.
    pub fn bfd_peer(&self, key: &BfdPeerKey) -> Option<BfdPeer> {
        self.bfd_peers.get(key, 0).ok()
    }

    pub fn bfd_peers(&self) -> Result<Vec<(BfdPeerKey, BfdPeer)>> {
        self.bfd_peers
            .iter()
            .collect::<Result<_, _>>()
            .map_err(map_err("listing BFD neighbours"))
    }

    /// Every recorded conflict, its per-CPU copies merged (`Conflict::merge`).
    pub fn conflicts(&self) -> Result<Vec<(VipKey, Conflict)>> {
        self.conflicts
            .iter()
            .map(|entry| {
                entry.map(|(key, copies)| {
                    let merged = copies.iter().fold(Conflict::default(), |a, c| a.merge(*c));
                    (key, merged)
                })
            })
            .collect::<Result<_, _>>()
            .map_err(map_err("listing conflicts"))
    }
}

/// Slot `index` of the array `map`, read with one `BPF_MAP_LOOKUP_ELEM`.
///
/// Hand-written because aya 0.14's lookup (`maps::hash_map::get`) ends in
/// `value.ok_or(MapError::KeyNotFound)`, which constructs that error and runs its drop
/// glue on every read that succeeds: seen in a profile of the event loop, which reads a
/// release record per advert as master.
fn array_slot<V: aya::Pod>(map: &MapData, index: u32) -> std::io::Result<V> {
    use std::os::fd::{AsFd as _, AsRawFd as _};
    /// The `BPF_MAP_*_ELEM` member of `union bpf_attr` (linux/bpf.h).
    #[repr(C)]
    struct ElemAttr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }
    const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
    let mut value = std::mem::MaybeUninit::<V>::zeroed();
    let attr = ElemAttr {
        map_fd: map.fd().as_fd().as_raw_fd() as u32,
        _pad: 0,
        key: std::ptr::from_ref(&index) as u64,
        value: value.as_mut_ptr() as u64,
        flags: 0,
    };
    // SAFETY: the kernel reads `size_of::<ElemAttr>()` bytes of `attr`, reads the 4-byte
    // key, and writes at most the map's value size into `value`; the map was checked to
    // have `size_of::<V>()`-byte values when it was opened (`SPECS`, and aya's `Array`
    // conversion checks the value size again).
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_ELEM,
            std::ptr::from_ref(&attr),
            std::mem::size_of::<ElemAttr>() as u32,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the lookup succeeded, so the kernel wrote the whole value; a `Pod` type has
    // no invalid bit patterns (and it started zeroed).
    Ok(unsafe { value.assume_init() })
}

pub(super) fn ignore_missing(r: Result<(), MapError>) -> Result<(), MapError> {
    match r {
        Err(MapError::KeyNotFound) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pinned_map_has_a_spec_in_pin_order() {
        let names: Vec<_> = SPECS.iter().map(|s| s.name).collect();
        assert_eq!(names, maps::ALL);
    }

    #[test]
    fn releases_are_one_record_per_group_slot() {
        let s = SPECS.iter().find(|s| s.name == maps::RELEASES).unwrap();
        assert_eq!(
            (s.kind, s.key, s.value, s.max, s.flags),
            (MapType::Array, 4, 48, MAX_GROUPS, 0)
        );
    }

    #[test]
    fn hash_maps_allocate_entries_on_insert_and_the_lru_maps_are_preallocated() {
        for s in &SPECS {
            let want = match s.kind {
                MapType::Hash => MAP_F_NO_PREALLOC,
                // The flow table: one LRU list per CPU.
                MapType::LruHash if s.name == maps::LB_FLOWS => MAP_F_NO_COMMON_LRU,
                _ => 0,
            };
            assert_eq!(s.flags, want, "{}", s.name);
        }
    }
}
