//! The maps, declared as BTF maps so `bpftool map dump` prints field names.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    btf_maps::{Array, HashMap, LruPerCpuHashMap, PerCpuArray},
    helpers::bpf_ktime_get_coarse_ns,
    macros::btf_map,
};
use vip_common::{
    BfdPeer, BfdPeerKey, CONFLICT_NEW_PER_WINDOW, CONFLICT_NEW_WINDOW_NS, Conflict, Counters,
    GroupState, HostMacKey, MAP_F_NO_PREALLOC, MAX_BFD_PEERS, MAX_CONFLICTS, MAX_GROUPS,
    MAX_HOST_MACS, MAX_PEERS, MAX_POLICIES, MAX_VIPS, MAX_VMACS, PeerKey, Policy, PolicyKey,
    Release, VipKey, VipValue, VipsVersion, VmacKey, VmacValue,
};

/// Hash maps allocate an entry when it is inserted (see `vip_common::MAX_VIPS`).
const NO_PREALLOC: usize = MAP_F_NO_PREALLOC as usize;

#[btf_map]
pub static VIPS: HashMap<VipKey, VipValue, { MAX_VIPS as usize }, NO_PREALLOC> = HashMap::new();

#[btf_map]
pub static GROUP_STATE: Array<GroupState, { MAX_GROUPS as usize }> = Array::new();

#[btf_map]
pub static VRRP_POLICY: HashMap<PolicyKey, Policy, { MAX_POLICIES as usize }, NO_PREALLOC> =
    HashMap::new();

#[btf_map]
pub static PEERS: HashMap<PeerKey, u32, { MAX_PEERS as usize }, NO_PREALLOC> = HashMap::new();

#[btf_map]
pub static VMACS: HashMap<VmacKey, VmacValue, { MAX_VMACS as usize }, NO_PREALLOC> = HashMap::new();

/// Read by the tc classifier only: see `vip_common::HostMacKey`.
#[btf_map]
pub static HOST_MACS: HashMap<HostMacKey, u32, { MAX_HOST_MACS as usize }, NO_PREALLOC> =
    HashMap::new();

/// One copy of each entry per CPU: see `vip_common::Conflict`.
#[btf_map]
pub static CONFLICTS: LruPerCpuHashMap<VipKey, Conflict, { MAX_CONFLICTS as usize }> =
    LruPerCpuHashMap::new();

#[btf_map]
pub static STATS: PerCpuArray<Counters, 1> = PerCpuArray::new();

/// Written only here, read only by the daemon: see `vip_common::Release`.
#[btf_map]
pub static RELEASES: Array<Release, { MAX_GROUPS as usize }> = Array::new();

/// Answers for shared VIPs, per member group slot (`vip_common::maps::SHARED_ANSWERS`).
#[btf_map]
pub static SHARED_ANSWERS: PerCpuArray<u64, { MAX_GROUPS as usize }> = PerCpuArray::new();

/// BFD neighbours whose Echo packets are looped back (see `vip_common::BfdPeerKey`).
#[btf_map]
pub static BFD_PEERS: HashMap<BfdPeerKey, BfdPeer, { MAX_BFD_PEERS as usize }, NO_PREALLOC> =
    HashMap::new();

/// Adds one to the counter `field` selects on this CPU.
#[inline(always)]
pub fn count(field: fn(&mut Counters) -> &mut u64) {
    if let Some(c) = STATS.get_ptr_mut(0) {
        // SAFETY: per-CPU slot; XDP and tc run with migration disabled, so nothing else touches
        // this CPU's copy while we increment it.
        unsafe {
            let v = field(&mut *c);
            *v = v.wrapping_add(1);
        }
    }
}

/// Adds one to this CPU's count of shared-VIP answers given for the group in `slot`.
#[inline(always)]
pub fn count_shared(slot: u32) {
    if let Some(c) = SHARED_ANSWERS.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot, as in `count`.
        unsafe { *c = (*c).wrapping_add(1) };
    }
}

/// Whether this node answers for a group right now.
pub enum Ownership {
    Answering,
    NotOwned,
    LeaseLapsed,
}

#[inline(always)]
pub fn ownership(slot: u32) -> Ownership {
    let Some(state) = GROUP_STATE.get(slot) else {
        return Ownership::NotOwned;
    };
    if state.owned == 0 {
        return Ownership::NotOwned;
    }
    // The coarse clock: a tick's resolution for a few nanoseconds instead of thirty per
    // request. It lags the precise clock by at most a tick, which the daemon takes off
    // every lease it writes (see vip_common::GroupState).
    // SAFETY: no preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if now < state.lease_deadline_ns {
        Ownership::Answering
    } else {
        Ownership::LeaseLapsed
    }
}

/// `None` when this node answers for `slot` now; otherwise the verdict for a question
/// about one of its VIPs (dropped, so a stale address never makes the kernel answer),
/// counted by why.
#[inline(always)]
pub fn refuse_unless_answering(slot: u32) -> Option<u32> {
    match ownership(slot) {
        Ownership::Answering => None,
        Ownership::NotOwned => {
            count(|c| &mut c.vip_not_owned);
            Some(aya_ebpf::bindings::xdp_action::XDP_DROP)
        }
        Ownership::LeaseLapsed => {
            count(|c| &mut c.lease_expired);
            Some(aya_ebpf::bindings::xdp_action::XDP_DROP)
        }
    }
}

/// A valid advertisement arrived for the group in `slot`, described by `advert` (a release
/// record but for `count` and `at_ns`, which a release fills in): if it shows a new master
/// (better than us, or our successor during a handover), stop answering now, and leave the
/// daemon a record of why in `RELEASES`.
#[inline(always)]
pub fn yield_if_superseded(slot: u32, advert: &Release) {
    let Some(state) = GROUP_STATE.get_ptr_mut(slot) else {
        return;
    };
    // SAFETY: an array slot, stable for the program's lifetime; a single byte store races
    // only with the daemon's own write of the whole value, which settles the same way.
    unsafe {
        if (*state).yields_to(advert.priority) {
            (*state).owned = 0;
            record_release(slot, advert);
            count(|c| &mut c.vrrp_yield);
        }
    }
}

#[inline(always)]
fn record_release(slot: u32, advert: &Release) {
    let Some(r) = RELEASES.get_ptr_mut(slot) else {
        return;
    };
    // SAFETY: no preconditions.
    let at_ns = unsafe { bpf_ktime_get_coarse_ns() };
    // SAFETY: an array slot, stable for the program's lifetime. Two CPUs releasing the
    // same slot at once may lose one count; the count still moves, which is what the
    // daemon looks for.
    unsafe {
        *r = Release {
            count: (*r).count.wrapping_add(1),
            at_ns,
            ..*advert
        };
    }
}

/// Replaced by every writer of `VIPS` after each change: see `vip_common::VipsVersion`.
#[btf_map]
pub static VIPS_VERSION: Array<VipsVersion, 1> = Array::new();

/// This CPU's last successful VIP lookup and the `VIPS_VERSION` token read before it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VipCache {
    pub version: u64,
    pub key: [u64; 3],
    pub value: VipValue,
    pub _pad: u32,
}

/// Per CPU, private to each loaded program (not pinned): a flood of requests for one VIP
/// costs one array read and three compares instead of hashing its 24-byte key each time.
#[btf_map]
static VIP_CACHE: PerCpuArray<VipCache, 1> = PerCpuArray::new();

/// Looks up a VIP; copies the value out (hash values can be replaced under us).
///
/// The answer comes from this CPU's cache when the key is the one looked up last and
/// `VIPS_VERSION` has not moved since that lookup began; otherwise from `VIPS`, and then
/// it is cached with the token read before the lookup. XDP runs on one CPU without being
/// preempted by another run there, so the per-CPU entry is never half written when read.
#[inline(always)]
pub fn vip(key: &VipKey) -> Option<VipValue> {
    let Some(version) = VIPS_VERSION.get(0).copied() else {
        return uncached(key);
    };
    let Some(cache) = VIP_CACHE.get_ptr_mut(0) else {
        return uncached(key);
    };
    let words = key.words();
    // SAFETY: a per-CPU array slot, stable for the program's lifetime, touched only by
    // runs on this CPU (one at a time).
    unsafe {
        if (*cache).version == version && same_key(&(*cache).key, &words) {
            return Some((*cache).value);
        }
        let value = uncached(key)?;
        *cache = VipCache {
            version,
            key: words,
            value,
            _pad: 0,
        };
        Some(value)
    }
}

/// Whether two keys (as [`VipKey::words`]) are equal. Not `==` on the arrays: LLVM
/// lowers that to a call to a byte-loop `memcmp` on BPF (24 rounds of a ten-instruction
/// loop on every cached lookup); differences OR-ed together stay three XORs in registers.
#[inline(always)]
fn same_key(a: &[u64; 3], b: &[u64; 3]) -> bool {
    ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2])) == 0
}

#[inline(always)]
fn uncached(key: &VipKey) -> Option<VipValue> {
    // SAFETY: the pointer comes from the map lookup and is read once, immediately.
    VIPS.get_ptr(key).map(|p| unsafe { *p })
}

/// Records that `mac` claimed the owned VIP `key`.
///
/// A claim of a VIP with an entry updates this CPU's copy in place: a flood of claims
/// takes no lock, allocates nothing and writes no cache line another CPU writes. Only a
/// VIP with no entry inserts one, within this CPU's budget of new entries.
#[inline(always)]
pub fn record_conflict(key: &VipKey, mac: [u8; 6]) {
    count(|c| &mut c.conflict_seen);
    // SAFETY: no preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if update_conflict(key, mac, now) {
        return;
    }
    if !new_conflict_allowed(now) {
        count(|c| &mut c.conflict_unrecorded);
        return;
    }
    let first = Conflict {
        mac,
        _pad: [0; 2],
        last_seen_ns: now,
        count: 1,
    };
    // Another CPU may have inserted the entry since the lookup: then count the claim in
    // this CPU's copy of it.
    if CONFLICTS.insert(key, first, BPF_NOEXIST as u64).is_err() {
        update_conflict(key, mac, now);
    }
}

/// Whether `key` has an entry; if so, this claim is counted in this CPU's copy of it.
#[inline(always)]
fn update_conflict(key: &VipKey, mac: [u8; 6], now: u64) -> bool {
    let Some(c) = CONFLICTS.get_ptr_mut(key) else {
        return false;
    };
    // SAFETY: the lookup returns this CPU's copy, which only runs of the program on this
    // CPU write, one at a time (XDP runs with migration disabled); the daemon only reads
    // it. Should
    // another CPU's insert evict the entry meanwhile, the write lands in a recycled
    // element's copy for this CPU: one claim counted against another VIP, never an
    // out-of-bounds write.
    unsafe {
        (*c).mac = mac;
        (*c).last_seen_ns = now;
        (*c).count = (*c).count.wrapping_add(1);
    }
    true
}

/// This CPU's use of its budget of new `CONFLICTS` entries.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ConflictBudget {
    /// Coarse-clock start of the current window.
    pub window_start_ns: u64,
    /// New entries inserted in it.
    pub used: u64,
}

/// Per CPU, private to each loaded program (not pinned).
#[btf_map]
static CONFLICT_BUDGET: PerCpuArray<ConflictBudget, 1> = PerCpuArray::new();

/// Takes one new entry from this CPU's budget (`vip_common::CONFLICT_NEW_PER_WINDOW` per
/// `CONFLICT_NEW_WINDOW_NS`); false when it is used up.
#[inline(always)]
fn new_conflict_allowed(now: u64) -> bool {
    let Some(b) = CONFLICT_BUDGET.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: a per-CPU array slot, stable for the program's lifetime, touched only by
    // runs on this CPU (one at a time).
    unsafe {
        if now.wrapping_sub((*b).window_start_ns) >= CONFLICT_NEW_WINDOW_NS {
            *b = ConflictBudget {
                window_start_ns: now,
                used: 0,
            };
        }
        if (*b).used >= CONFLICT_NEW_PER_WINDOW {
            return false;
        }
        (*b).used += 1;
    }
    true
}
