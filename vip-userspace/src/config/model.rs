//! The validated configuration the daemon runs from: every default filled in, every
//! cross-field rule already checked, so nothing downstream re-validates.
//!
//! Everything derives `PartialEq` so a SIGHUP reload can keep the instances whose
//! configuration did not change and restart only the others. Warnings are not part of a
//! configuration's equality (see [`Config::warnings`]).
//!
//! Where keepalived set a convention (tracking weights, notify arguments, track-file
//! values), the fields below keep its meaning, so a keepalived user's habits and scripts
//! carry over; each says so where vipd differs.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use vip_common::wire::{vmac_v4, vmac_v6};

use super::error::Problem;

#[derive(Debug, Clone)]
pub struct Config {
    pub global: Global,
    /// `[interfaces.NAME]` tables as written, defaults filled. An interface without one
    /// takes [`InterfaceOptions::default`]; [`Config::interface_options`] answers for any.
    pub interfaces: BTreeMap<String, InterfaceOptions>,
    /// Every sync group some instance names (`sync_group`), with its members and its
    /// `[sync_groups.NAME]` hooks (none when the file has no such table).
    pub sync_groups: BTreeMap<String, SyncGroup>,
    /// In file order; `vrrp[i]` in problem paths is `instances[i]`.
    pub instances: Vec<Instance>,
    /// `[[service]]` sections in file order (`service[i]` is `services[i]`).
    pub services: Vec<super::service::ServiceConfig>,
    /// What loads but is probably not what was meant, each as `file:line:col: path:
    /// message`. `vipd check` prints them; they never block. Not part of equality: two
    /// files that configure the same thing are equal wherever their lines are.
    pub warnings: Vec<Problem>,
}

impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        // Destructured so a new field cannot be forgotten here.
        let Config {
            global,
            interfaces,
            sync_groups,
            instances,
            services,
            warnings: _,
        } = self;
        *global == other.global
            && *interfaces == other.interfaces
            && *sync_groups == other.sync_groups
            && *instances == other.instances
            && *services == other.services
    }
}

impl Eq for Config {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// Names this daemon in pin and socket paths and in metrics.
    pub router_id: String,
    /// Directory the XDP maps and links are pinned under.
    pub pin_path: PathBuf,
    /// Unix socket of the status/control interface.
    pub control_socket: PathBuf,
    /// Prometheus listen address; `None` serves no metrics.
    pub metrics: Option<SocketAddr>,
    /// Track scripts and notify programs run as this user and its primary group; `None`:
    /// as root. Resolved when the file is loaded.
    pub script_user: Option<ScriptUser>,
    /// keepalived's `vrrp_startup_delay`: for this long after vipd starts, instances take
    /// no part (they stay in Initialize). 0..=1 h.
    pub startup_delay: Duration,
    /// SCHED_RR priority of the event-loop thread, 1..=99; 0 leaves it an ordinary
    /// thread. A VRRP timer must fire on time however busy the host is: at 10 ms adverts a
    /// loop starved for 40 ms by other processes lets a backup take over.
    /// [global_defs vrrp_rt_priority]
    pub realtime_priority: u8,
    /// Members of this group may connect to the control socket (created 0660 with this
    /// group instead of 0600) and read it: `vipd status`, `vipd events`, `vipd reload
    /// --dry-run`. `None`: root alone.
    pub control_group: Option<GroupRef>,
    /// Members of this group (and root) may also run the commands that change something:
    /// `vipd reload`, `demote`, `promote`, `handover`; checked on every command by the
    /// peer's credentials (`SO_PEERCRED`, `SO_PEERGROUPS`). `None`: root alone.
    pub admin_group: Option<GroupRef>,
    /// Where the operator's demotions are kept, so a restart keeps them too; `None`: a
    /// restart forgets them (a reload never does).
    pub state_file: Option<PathBuf>,
}

/// A group of the user database, resolved when the file was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub name: String,
    pub gid: u32,
}

/// `global.script_user`, resolved in the user database when the file was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptUser {
    pub name: String,
    pub uid: u32,
    /// The user's primary group, which scripts run with.
    pub gid: u32,
}

/// `[interfaces.NAME]`: how vipd treats one network device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterfaceOptions {
    /// VRRP for VRIDs vipd does not manage on this interface.
    pub foreign_vrrp: ForeignVrrp,
    /// A link change is acted on only once it has lasted this long (flap damping), for
    /// the VRRP interface and for `track_interfaces` alike. 0..=1 h each.
    pub up_delay: Duration,
    pub down_delay: Duration,
}

/// What the XDP program does with VRRP for a VRID no instance here manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForeignVrrp {
    /// Passed to the kernel: keepalived or FRR may run those routers on this host.
    #[default]
    Pass,
    /// Dropped in XDP.
    Drop,
}

impl ForeignVrrp {
    pub fn as_str(self) -> &'static str {
        match self {
            ForeignVrrp::Pass => "pass",
            ForeignVrrp::Drop => "drop",
        }
    }
}

/// A sync group: instances that change state together (keepalived's `vrrp_sync_group`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    /// Member instances, as indexes into [`Config::instances`], in file order; never empty.
    pub members: Vec<usize>,
    /// Hooks run for the group's transitions, with `GROUP` in place of `INSTANCE`.
    pub notify: Notify,
}

use crate::vrrp::{
    Family, Version,
    instance::{BfdSettings, CarpSettings, Protocol, max_advertised},
};

pub use crate::vrrp::instance::SharedVip;

/// Where a CARP instance's passphrase was written: `vipd check` prints it back the same
/// way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarpSecret {
    Inline(String),
    /// Its first line, without the newline, as ucarp reads it.
    File(PathBuf),
}

/// A CARP instance's own settings (docs/carp.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarpConfig {
    pub secret: CarpSecret,
    pub settings: CarpSettings,
}

/// One virtual router on one interface, for one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    /// VRRP, or CARP with [`Instance::carp`] set (then `vrid` is the VHID, `priority`
    /// stands for `advskew = 255 − priority`, `advert_interval` is the advbase).
    pub protocol: Protocol,
    pub carp: Option<CarpConfig>,
    pub interface: String,
    pub vrid: u8,
    /// Configured priority, 1..=255; 255 means this router owns the addresses.
    pub priority: u8,
    pub version: Version,
    /// A multiple of 10 ms in 10 ms..=40.95 s for v3, whole seconds 1..=255 for v2.
    pub advert_interval: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// RFC 5798 Accept_Mode: as master, accept packets addressed to the VIPs.
    pub accept: bool,
    /// Answer from the virtual MAC (see [`Instance::vmac_address`]) instead of the
    /// interface's own.
    pub vmac: bool,
    /// Family of every address in `vips`, `vips_excluded`, `unicast_src_ip`,
    /// `unicast_peers` and `allowed_peers`.
    pub family: Family,
    /// Non-empty. Listed in advertisements, in this order, as far as one advertisement
    /// carries ([`max_advertised`]); owned, answered and installed like `vips_excluded`.
    pub vips: Vec<Vip>,
    /// keepalived's `virtual_ipaddress_excluded`: owned, answered and installed exactly
    /// like `vips`, but never listed in advertisements. No address is in both lists or in
    /// one twice; see [`Instance::all_vips`].
    pub vips_excluded: Vec<Vip>,
    /// Proxy answers: addresses that live behind this router (reachable through a route,
    /// not on the link) which the XDP program answers ARP / NS for with this router's MAC
    /// (or the VMAC) while master, and announces like the VIPs. Never added to an
    /// interface, never listed in advertisements. Of the instance's family; no address is
    /// also a VIP.
    pub proxy_arp: Vec<IpAddr>,
    /// Shared VIPs (active-active) this instance is one member group of, with its place
    /// among the groups sharing each (see `crate::vrrp::instance::SharedVip`). Answered
    /// on the instance's interface from its virtual MAC (`vmac` is required) while
    /// master, for the requesters whose address picks this member; never added to an
    /// interface, never advertised, never announced. No address is also a VIP or proxy
    /// address of any instance.
    pub shared_vips: Vec<SharedVip>,
    /// While master, each routable VIP (`vips` and `vips_excluded`) is also installed as
    /// a host route (/32, /128) with protocol [`RTPROT_VIPD`], removed on leaving master, so a
    /// routing daemon can redistribute it; see [`Instance::host_routes`].
    pub announce_host_routes: bool,
    /// Routes added while master and removed on leaving master (keepalived's
    /// `virtual_routes`).
    pub virtual_routes: Vec<VirtualRoute>,
    /// Policy rules added while master and removed on leaving master (keepalived's
    /// `virtual_rules`).
    pub virtual_rules: Vec<VirtualRule>,
    /// Source address of this instance's advertisements; `None`: the interface's primary
    /// address of the family. Never one of this daemon's VIPs.
    pub unicast_src_ip: Option<IpAddr>,
    /// When non-empty, adverts go to these addresses instead of the multicast group.
    pub unicast_peers: Vec<IpAddr>,
    /// When non-empty, the XDP program drops adverts from any other source.
    pub allowed_peers: Vec<IpAddr>,
    /// VRRPv2 simple-text password, zero-padded to the 8 bytes of the wire field.
    pub auth_pass: Option<[u8; 8]>,
    /// keepalived's `dont_track_primary`: the VRRP interface's own link state does not
    /// fault the instance (tracked interfaces still count).
    pub dont_track_primary: bool,
    pub track_interfaces: Vec<TrackInterface>,
    pub track_scripts: Vec<TrackScript>,
    pub track_files: Vec<TrackFile>,
    pub track_processes: Vec<TrackProcess>,
    /// Hooks run on this instance's transitions.
    pub notify: Notify,
    /// BFD sessions to the other routers (a backup whose session to the master goes down
    /// takes over at once instead of after Master_Down_Interval; while that session is up
    /// a master whose adverts pause is not taken over from); `None` without. Its
    /// `notify` program is run on every session change with the instance, the
    /// neighbour, the new state (`UP`, `DOWN`, `INIT`, `ADMINDOWN`) and the diagnostic.
    pub bfd: Option<BfdSettings>,
    /// Instances naming the same group change state together.
    pub sync_group: Option<String>,
    /// Gratuitous ARPs / unsolicited NAs sent on becoming master.
    pub garp_repeat: u32,
    pub garp_interval: Duration,
    /// Re-announce period while master; `None` when off.
    pub garp_refresh: Option<Duration>,
}

impl Instance {
    /// The RFC 5798 virtual router MAC for this VRID and family (CARP's is IPv4 VRRP's
    /// in both families).
    pub fn vmac_address(&self) -> [u8; 6] {
        if self.protocol == Protocol::Carp {
            return vmac_v4(self.vrid);
        }
        match self.family {
            Family::Ipv4 => vmac_v4(self.vrid),
            Family::Ipv6 => vmac_v6(self.vrid),
        }
    }

    /// Priority 255: the VIPs are this router's own addresses.
    pub fn is_owner(&self) -> bool {
        self.priority == 255
    }

    /// Every VIP this instance owns: `vips`, then `vips_excluded`.
    pub fn all_vips(&self) -> impl Iterator<Item = &Vip> {
        self.vips.iter().chain(&self.vips_excluded)
    }

    /// Every address the data plane answers for while this instance is master: its VIPs
    /// (on their devices), then its proxy addresses (on its interface).
    pub fn answered(&self) -> impl Iterator<Item = (&str, IpAddr)> {
        self.all_vips()
            .map(|v| (v.dev.as_str(), v.net.addr()))
            .chain(self.proxy_arp.iter().map(|a| (self.interface.as_str(), *a)))
    }

    /// With `announce_host_routes`, a host route per VIP on its device, in the main table
    /// with protocol [`RTPROT_VIPD`] and link scope: what a routing daemon redistributes
    /// (`ip route show proto 112`). Link-local VIPs (169.254.0.0/16, fe80::/10) are left
    /// out: no router forwards to them. Empty without the option.
    pub fn host_routes(&self) -> Vec<VirtualRoute> {
        if !self.announce_host_routes {
            return Vec::new();
        }
        self.all_vips()
            .filter(|v| match v.net.addr() {
                IpAddr::V4(a) => !a.is_link_local(),
                IpAddr::V6(a) => !a.is_unicast_link_local(),
            })
            .map(|v| VirtualRoute {
                to: IpNet::from(v.net.addr()),
                via: None,
                dev: Some(v.dev.clone()),
                src: None,
                table: TABLE_MAIN,
                metric: None,
                protocol: RTPROT_VIPD,
                kind: RouteType::Unicast,
                scope: Some(RouteScope::Link),
                onlink: false,
            })
            .collect()
    }

    /// The VIPs one advertisement lists: the first [`max_advertised`] of `vips`.
    pub fn advertised_vips(&self) -> &[Vip] {
        let n = max_advertised(self.family).min(self.vips.len());
        &self.vips[..n]
    }
}

/// A program and its arguments, run directly (no shell, so no quoting to get wrong).
/// Never empty; the program is an absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    argv: Vec<String>,
}

impl Command {
    /// `None` when `argv` is empty or the program is not an absolute path.
    pub fn new(argv: Vec<String>) -> Option<Command> {
        argv.first()
            .is_some_and(|p| p.starts_with('/'))
            .then_some(Command { argv })
    }

    pub fn program(&self) -> &str {
        self.argv.first().map_or("/", String::as_str)
    }

    pub fn args(&self) -> &[String] {
        self.argv.get(1..).unwrap_or_default()
    }

    /// Program and arguments.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.argv.join(" "))
    }
}

/// Notify hooks, keepalived's convention: on a transition the per-state hook runs (with no
/// extra arguments), then `any` (the `notify` key) with four arguments appended:
/// `INSTANCE` (or `GROUP` for a sync group's hooks), the name, the new state (`MASTER`,
/// `BACKUP`, `FAULT` or `STOP`) and the priority. `stop` runs when vipd stops the instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notify {
    /// `notify`: every transition, with the four arguments.
    pub any: Option<Command>,
    pub master: Option<Command>,
    pub backup: Option<Command>,
    pub fault: Option<Command>,
    pub stop: Option<Command>,
}

impl Notify {
    /// Each configured hook with its key in the file.
    pub fn hooks(&self) -> impl Iterator<Item = (&'static str, &Command)> {
        [
            ("notify", &self.any),
            ("notify_master", &self.master),
            ("notify_backup", &self.backup),
            ("notify_fault", &self.fault),
            ("notify_stop", &self.stop),
        ]
        .into_iter()
        .filter_map(|(key, hook)| hook.as_ref().map(|c| (key, c)))
    }
}

/// One virtual address, as `ip addr add` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    /// The address and the prefix length it is added with.
    pub net: IpNet,
    /// Device the address is added to; the instance's interface unless the file says.
    pub dev: String,
    /// IPv4 only: the device name or `DEV:anything`, at most 15 bytes.
    pub label: Option<String>,
    /// IPv4: as written, default global. IPv6: always what the address implies (link for
    /// fe80::/10, site for fec0::/10, global otherwise), since the kernel derives it.
    pub scope: AddrScope,
    /// IPv4 only.
    pub broadcast: Option<Broadcast>,
    /// Add no prefix route for the subnet.
    pub noprefixroute: bool,
    /// IPv6 only: `Zero` adds the address deprecated, so the kernel never picks it as a
    /// source address.
    pub preferred_lft: PreferredLifetime,
}

impl Vip {
    /// A VIP with every option at its default, on `dev`.
    pub fn plain(net: IpNet, dev: &str) -> Vip {
        Vip {
            net,
            dev: dev.to_owned(),
            label: None,
            scope: AddrScope::natural(&net.addr()),
            broadcast: None,
            noprefixroute: false,
            preferred_lft: PreferredLifetime::Forever,
        }
    }
}

/// An address's scope (`ip addr ... scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrScope {
    Global,
    Site,
    Link,
    Host,
}

impl AddrScope {
    /// The default: global for IPv4; for IPv6 what the kernel derives from the address.
    pub fn natural(addr: &IpAddr) -> AddrScope {
        match addr {
            IpAddr::V4(_) => AddrScope::Global,
            IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => AddrScope::Link,
            IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfec0 => AddrScope::Site,
            IpAddr::V6(_) => AddrScope::Global,
        }
    }

    /// `RT_SCOPE_*`.
    pub fn number(self) -> u8 {
        match self {
            AddrScope::Global => 0,
            AddrScope::Site => 200,
            AddrScope::Link => 253,
            AddrScope::Host => 254,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AddrScope::Global => "global",
            AddrScope::Site => "site",
            AddrScope::Link => "link",
            AddrScope::Host => "host",
        }
    }
}

/// An IPv4 VIP's broadcast address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broadcast {
    /// `"+"`: the subnet's broadcast address, as `ip addr add ... brd +` computes it.
    Subnet,
    Addr(Ipv4Addr),
}

/// An IPv6 VIP's preferred lifetime (its valid lifetime is always forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreferredLifetime {
    Forever,
    /// Deprecated from the start: the kernel never picks it as a source address.
    Zero,
}

/// Routing table numbers with names.
pub const TABLE_MAIN: u32 = 254;
pub const TABLE_LOCAL: u32 = 255;

/// Route protocol numbers with names (`RTPROT_*`; vipd's own is the VRRP IP protocol
/// number, unused in iproute2's `rt_protos`).
pub const RTPROT_KERNEL: u8 = 2;
pub const RTPROT_BOOT: u8 = 3;
pub const RTPROT_STATIC: u8 = 4;
pub const RTPROT_VIPD: u8 = 112;

/// A route added while master (keepalived's `virtual_routes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualRoute {
    /// Destination, host bits zero; `"default"` in the file is the family's /0.
    pub to: IpNet,
    /// Unicast only.
    pub via: Option<IpAddr>,
    /// Unicast only. Filled with the instance's interface when neither `via` nor `dev`
    /// is written, or when `via` is an IPv6 link-local address.
    pub dev: Option<String>,
    /// Preferred source address.
    pub src: Option<IpAddr>,
    /// 1..=2^32-1; default [`TABLE_MAIN`].
    pub table: u32,
    /// `None`: the kernel's default (0 for IPv4, 1024 for IPv6).
    pub metric: Option<u32>,
    /// Default [`RTPROT_STATIC`].
    pub protocol: u8,
    /// The `type` key.
    pub kind: RouteType,
    /// `None`: the kernel's choice.
    pub scope: Option<RouteScope>,
    /// Gateway reachable without a matching prefix route (needs `via`).
    pub onlink: bool,
}

impl VirtualRoute {
    pub fn family(&self) -> Family {
        Family::of(&self.to.addr())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteType {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

impl RouteType {
    /// `RTN_*`.
    pub fn number(self) -> u8 {
        match self {
            RouteType::Unicast => 1,
            RouteType::Blackhole => 6,
            RouteType::Unreachable => 7,
            RouteType::Prohibit => 8,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RouteType::Unicast => "unicast",
            RouteType::Blackhole => "blackhole",
            RouteType::Unreachable => "unreachable",
            RouteType::Prohibit => "prohibit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteScope {
    Global,
    Link,
    Host,
}

impl RouteScope {
    /// `RT_SCOPE_*`.
    pub fn number(self) -> u8 {
        match self {
            RouteScope::Global => 0,
            RouteScope::Link => 253,
            RouteScope::Host => 254,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RouteScope::Global => "global",
            RouteScope::Link => "link",
            RouteScope::Host => "host",
        }
    }
}

/// A policy routing rule added while master (keepalived's `virtual_rules`). At least one
/// of `from`, `to`, `iif`, `oif`, `fwmark` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualRule {
    /// From `from` / `to`, or the instance's family when neither is written.
    pub family: Family,
    pub from: Option<IpNet>,
    pub to: Option<IpNet>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub fwmark: Option<Fwmark>,
    /// Set exactly when `action` is [`RuleAction::Table`].
    pub table: Option<u32>,
    /// 1..=32765 (0, 32766 and 32767 hold the kernel's own rules); `None`: the kernel
    /// picks one.
    pub priority: Option<u32>,
    pub action: RuleAction,
}

/// `fwmark N` or `fwmark N/MASK`: matches when `(mark ^ value) & mask == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fwmark {
    pub value: u32,
    /// `u32::MAX` when the file gives no mask.
    pub mask: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// Look the packet up in `table`.
    Table,
    Blackhole,
    Unreachable,
    Prohibit,
}

impl RuleAction {
    /// `FR_ACT_*`.
    pub fn number(self) -> u8 {
        match self {
            RuleAction::Table => 1,
            RuleAction::Blackhole => 6,
            RuleAction::Unreachable => 7,
            RuleAction::Prohibit => 8,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Table => "table",
            RuleAction::Blackhole => "blackhole",
            RuleAction::Unreachable => "unreachable",
            RuleAction::Prohibit => "prohibit",
        }
    }
}

// Tracking follows keepalived. For interfaces, scripts and processes, a positive weight
// is added to the priority while the object is up / succeeding / has its quorum, a
// negative one is added (so subtracted) while it is down / failing / without its quorum;
// weight 0 puts the instance in FAULT while the object is down / failing / without its
// quorum. `reverse` negates the weight in the same state (weight 0 reversed: FAULT while
// up). The effective priority of a non-owner stays within 1..=254; an owner keeps 255.

/// An interface: up while the device exists, is up and has carrier. Weight -254..=254,
/// default 0 (FAULT while down); see the tracking rules above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInterface {
    pub name: String,
    pub weight: i16,
    /// Negate the weight (weight 0: FAULT while up).
    pub reverse: bool,
}

/// A health check run every `interval`, killed after `timeout`; exit status 0 is success.
/// It turns failing after `fall` consecutive failures and succeeding after `rise`
/// consecutive successes. Until its first result it is "not yet known" and counts as
/// succeeding, or as failing with `init_fail`. Weight -254..=254, default 0; see the
/// tracking rules above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    pub command: Command,
    pub interval: Duration,
    /// Shorter than `interval`, so runs never overlap.
    pub timeout: Duration,
    pub weight: i16,
    /// 1..=100.
    pub rise: u8,
    /// 1..=100.
    pub fall: u8,
    /// Negate the weight (weight 0: FAULT while succeeding).
    pub reverse: bool,
    /// Count as failing, not succeeding, until the first result.
    pub init_fail: bool,
}

impl TrackScript {
    /// What its watcher does, as one string: a reload keeps the watcher (and what it
    /// knows) of a script whose key is unchanged, whatever its weight.
    pub fn watch_key(&self) -> String {
        format!(
            "{} every {:?} timeout {:?} rise {} fall {}",
            self.command, self.interval, self.timeout, self.rise, self.fall
        )
    }
}

/// A file holding one integer N (keepalived's `track_file`). N × weight is added to the
/// priority (× −1 with `reverse`); with weight 0 any non-zero N puts the instance in
/// FAULT. A missing or unreadable file, or one not holding an integer, reads as 0.
/// Weight -254..=254, default 1 (keepalived's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFile {
    pub path: PathBuf,
    pub weight: i16,
    pub reverse: bool,
}

/// Processes counted by name (keepalived's `vrrp_track_process`): the quorum holds while
/// `quorum <= count <= quorum_max`. Weight -254..=254, default 0; see the tracking rules
/// above. What counts is in `crate::track::process`: running processes (not threads,
/// not zombies) that `pattern` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackProcess {
    pub pattern: ProcessPattern,
    pub weight: i16,
    pub reverse: bool,
    /// 0..=65535 (0 only with `quorum_max` 0).
    pub quorum: u32,
    /// `None`: no upper bound.
    pub quorum_max: Option<u32>,
    /// A change of the quorum a fork caused counts this much later (0..=1 h).
    pub fork_delay: Duration,
    /// A change of the quorum an exit caused counts this much later (0..=1 h).
    pub terminate_delay: Duration,
}

/// Which processes a [`TrackProcess`] counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessPattern {
    /// Without `argv`, the kernel's name of the process (`/proc/PID/comm`, at most 15
    /// bytes: the program's file name, or what it set with `prctl(PR_SET_NAME)`); with
    /// it, the program as it was started (`argv[0]`). Matched exactly.
    pub name: String,
    /// `Some` to match `argv[0]` (keepalived's `full_command`) and the arguments.
    pub argv: Option<ArgvMatch>,
}

/// Arguments a [`ProcessPattern`] matches (keepalived's parameters after `process`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArgvMatch {
    pub args: Vec<String>,
    /// `None`: the arguments are not looked at (`full_command` alone).
    pub param_match: Option<ParamMatch>,
}

/// keepalived's `param_match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ParamMatch {
    /// Exactly these arguments and no more (no arguments at all when none are given).
    Exact,
    /// These first arguments; more may follow.
    Partial,
    /// These first arguments, the last of them as a prefix; more may follow.
    Initial,
}

impl ParamMatch {
    pub fn word(self) -> &'static str {
        match self {
            ParamMatch::Exact => "exact",
            ParamMatch::Partial => "partial",
            ParamMatch::Initial => "initial",
        }
    }
}

impl ProcessPattern {
    /// Whether a process whose kernel name is `comm` matches (only a pattern without
    /// `argv` looks at it).
    pub fn matches_comm(&self, comm: &[u8]) -> bool {
        self.argv.is_none() && comm == self.name.as_bytes()
    }

    /// Whether a process started as `argv` matches (only a pattern with `argv` looks at
    /// it). `argv` may be cut short after [`ProcessPattern::argv_bytes`] + 1 bytes: that
    /// is enough to decide.
    pub fn matches_argv<'a>(&self, mut argv: impl Iterator<Item = &'a [u8]>) -> bool {
        let Some(m) = &self.argv else {
            return false;
        };
        if argv.next() != Some(self.name.as_bytes()) {
            return false;
        }
        let Some(how) = m.param_match else {
            return true;
        };
        let actual: Vec<&[u8]> = argv.collect();
        let want = &m.args;
        if actual.len() < want.len() {
            return false;
        }
        let same = |a: &[u8], w: &String| a == w.as_bytes();
        match how {
            ParamMatch::Exact => {
                actual.len() == want.len() && actual.iter().zip(want).all(|(a, w)| same(a, w))
            }
            ParamMatch::Partial => actual.iter().zip(want).all(|(a, w)| same(a, w)),
            ParamMatch::Initial => match want.split_last() {
                None => true,
                Some((last, first)) => {
                    actual.iter().zip(first).all(|(a, w)| same(a, w))
                        && actual[first.len()].starts_with(last.as_bytes())
                }
            },
        }
    }

    /// How many bytes of `/proc/PID/cmdline` decide a match: `argv[0]` and the
    /// arguments with their terminating NULs, and one more to see whether anything
    /// follows. 0 without `argv`.
    pub fn argv_bytes(&self) -> usize {
        self.argv.as_ref().map_or(0, |m| {
            self.name.len() + 1 + m.args.iter().map(|a| a.len() + 1).sum::<usize>() + 1
        })
    }
}

/// The kernel name alone (`haproxy`), or the command line as a list: `["haproxy", "-f",
/// "x"]` exactly, `[..., "x", ...]` with more allowed, `"x*"` as a prefix.
impl std::fmt::Display for ProcessPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(m) = &self.argv else {
            return f.write_str(&self.name);
        };
        write!(f, "[{:?}", self.name)?;
        let last = m.args.len().saturating_sub(1);
        for (i, a) in m.args.iter().enumerate() {
            if i == last && m.param_match == Some(ParamMatch::Initial) {
                write!(f, ", {:?}", format!("{a}*"))?;
            } else {
                write!(f, ", {a:?}")?;
            }
        }
        if m.param_match != Some(ParamMatch::Exact) {
            f.write_str(", ...")?;
        }
        f.write_str("]")
    }
}

impl Config {
    /// Each sync group's member instances, as indexes into `instances`, in file order.
    pub fn sync_group_members(&self) -> BTreeMap<String, Vec<usize>> {
        self.sync_groups
            .iter()
            .map(|(name, group)| (name.clone(), group.members.clone()))
            .collect()
    }

    /// The options of an interface: its `[interfaces.NAME]` table, or the defaults.
    pub fn interface_options(&self, name: &str) -> InterfaceOptions {
        self.interfaces.get(name).copied().unwrap_or_default()
    }

    /// Flap damping for the core: (up delay, down delay) of every interface that has
    /// an `[interfaces.NAME]` table.
    pub fn link_delays(&self) -> BTreeMap<String, (Duration, Duration)> {
        self.interfaces
            .iter()
            .map(|(n, o)| (n.clone(), (o.up_delay, o.down_delay)))
            .collect()
    }
}
