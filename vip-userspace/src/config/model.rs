//! The validated configuration the daemon runs from: every default filled in, every
//! cross-field rule already checked, so nothing downstream re-validates.
//!
//! Everything derives `PartialEq` so a SIGHUP reload can keep the instances whose
//! configuration did not change and restart only the others.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use vip_common::wire::{vmac_v4, vmac_v6};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub global: Global,
    /// In file order; `vrrp[i]` in problem paths is `instances[i]`.
    pub instances: Vec<Instance>,
}

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
}

pub use crate::vrrp::{Family, Version};

/// One virtual router on one interface, for one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
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
    /// Family of every address in `vips`, `unicast_peers` and `allowed_peers`.
    pub family: Family,
    /// Non-empty, no address twice; `addr()` is the VIP, the prefix length the subnet it is
    /// added with.
    pub vips: Vec<IpNet>,
    /// When non-empty, adverts go to these addresses instead of the multicast group.
    pub unicast_peers: Vec<IpAddr>,
    /// When non-empty, the XDP program drops adverts from any other source.
    pub allowed_peers: Vec<IpAddr>,
    /// VRRPv2 simple-text password, zero-padded to the 8 bytes of the wire field.
    pub auth_pass: Option<[u8; 8]>,
    pub track_interfaces: Vec<TrackInterface>,
    pub track_scripts: Vec<TrackScript>,
    pub track_files: Vec<TrackFile>,
    /// Run on every transition with arguments: instance name, new state, priority.
    pub notify: Option<PathBuf>,
    /// Instances naming the same group change state together.
    pub sync_group: Option<String>,
    /// Gratuitous ARPs / unsolicited NAs sent on becoming master.
    pub garp_repeat: u32,
    pub garp_interval: Duration,
    /// Re-announce period while master; `None` when off.
    pub garp_refresh: Option<Duration>,
}

impl Instance {
    /// The RFC 5798 virtual router MAC for this VRID and family.
    pub fn vmac_address(&self) -> [u8; 6] {
        match self.family {
            Family::Ipv4 => vmac_v4(self.vrid),
            Family::Ipv6 => vmac_v6(self.vrid),
        }
    }

    /// Priority 255: the VIPs are this router's own addresses.
    pub fn is_owner(&self) -> bool {
        self.priority == 255
    }
}

/// An interface that fails while it is down, without carrier, or gone.
///
/// Every tracked object has a `weight`: while it fails, the weight is added to the
/// priority (negative lowers it); weight 0 puts the instance in FAULT instead. The
/// effective priority of a non-owner is clamped to 1..=254; an owner stays 255 unless
/// something with weight 0 faults it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInterface {
    pub name: String,
    /// -254..=254.
    pub weight: i16,
}

/// A health check run every `interval`, killed after `timeout`; exit status 0 is success.
/// It fails after `fall` consecutive failures and recovers after `rise` consecutive
/// successes. Weight as for [`TrackInterface`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    /// Program (absolute path) and arguments, run directly, not through a shell.
    pub command: Vec<String>,
    pub interval: Duration,
    /// Shorter than `interval`, so runs never overlap.
    pub timeout: Duration,
    pub weight: i16,
    /// 1..=100.
    pub rise: u8,
    /// 1..=100.
    pub fall: u8,
}

/// A file holding one integer N. While it reads as an integer, N × weight is added to the
/// priority. A missing or unparsable file is failing: weight 0 puts the instance in FAULT,
/// any other weight is added once, as for [`TrackInterface`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFile {
    pub path: PathBuf,
    pub weight: i16,
}

impl Config {
    /// Each sync group's member instances, as indexes into `instances`, in file order.
    pub fn sync_groups(&self) -> BTreeMap<String, Vec<usize>> {
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, instance) in self.instances.iter().enumerate() {
            if let Some(group) = &instance.sync_group {
                groups.entry(group.clone()).or_default().push(i);
            }
        }
        groups
    }
}
