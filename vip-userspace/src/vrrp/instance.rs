//! What the core needs to know about one virtual router: the input type of a group
//! member, owned here and produced by the configuration layer (`Instance::core` in
//! `config/core.rs`), so the core never reads the configuration file's model and its
//! tests build instances directly.
//!
//! The type separates what an instance *is* ([`Identity`]: interface, VRID, family,
//! version, which a reload cannot change without a remove and an add) from everything a
//! running instance could take on in place (priority, timers, addresses, admission,
//! tracking, announcements, BFD). What only the shell carries out and the core never
//! decides on (the kernel options of a VIP address, routes, rules, notify programs,
//! script commands, file paths) stays in `config::Instance`, which the daemon keeps
//! beside the group.

use std::{net::IpAddr, time::Duration};

use super::{
    admission::Admission,
    announce,
    carp::{Key, ReplayMode},
    machine::OWNER_PRIORITY,
    packet::{Family, Version},
    timing::Interval,
    tracking::Tracking,
};
use vip_common::wire::{vmac_carp, vmac_v4, vmac_v6};

/// The protocol a virtual router speaks. Both use IP protocol 112 and the same groups;
/// `vip_common::wire::classify_proto112` tells their packets apart (docs/carp.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Protocol {
    /// VRRP (RFC 9568, RFC 3768).
    #[default]
    Vrrp,
    /// CARP (carp(4), ucarp): see `super::carp`.
    Carp,
}

impl Protocol {
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Vrrp => "vrrp",
            Protocol::Carp => "carp",
        }
    }
}

/// What makes an instance the virtual router it is: two instances with the same identity
/// are the same router, whatever else differs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    /// The interface it advertises on.
    pub interface: String,
    /// The VRID, or for CARP the VHID: VRRP VRID 7 and CARP VHID 7 are unrelated.
    pub vrid: u8,
    /// Family of every address it advertises, answers for and hears from.
    pub family: Family,
    /// For CARP always [`Version::V2`], the version its advertisements carry.
    pub version: Version,
    pub protocol: Protocol,
}

impl Identity {
    pub fn new(interface: &str, vrid: u8, family: Family, version: Version) -> Identity {
        Identity {
            interface: interface.to_owned(),
            vrid,
            family,
            version,
            protocol: Protocol::Vrrp,
        }
    }

    /// A CARP virtual host `vhid` on `interface`.
    pub fn carp(interface: &str, vhid: u8, family: Family) -> Identity {
        Identity {
            protocol: Protocol::Carp,
            ..Identity::new(interface, vhid, family, Version::V2)
        }
    }

    pub fn is_carp(&self) -> bool {
        self.protocol == Protocol::Carp
    }
}

/// What a CARP instance needs beyond what every instance has (docs/carp.md). Its
/// priority is its skew (`advskew = 255 − priority`, `super::carp::election`), its
/// `advert_interval` its advbase in whole seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarpSettings {
    /// The HMAC key made of the passphrase.
    pub key: Key,
    /// The master is declared down after `dead_ratio` × advbase + advskew/256.
    pub dead_ratio: u8,
    pub replay: ReplayMode,
    /// Sign with the IPv6 link-local VIPs in the HMAC (FreeBSD's form); either form is
    /// accepted.
    pub hmac_link_local: bool,
    /// The demotion count this node advertises (OpenBSD's byte 4); 0 unless demoted.
    pub demote: u8,
}

/// One address the instance answers for, and the device it lives on (a VIP's device need
/// not be the VRRP interface).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub addr: IpAddr,
    pub dev: String,
}

/// BFD for an instance (RFC 5880 asynchronous mode, single hop): what a subscription to
/// the other routers' sessions asks for. See `super::liveness` and docs/architecture.md
/// ("BFD").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdSettings {
    /// The other routers of the virtual router; empty: the master heard in adverts.
    pub peers: Vec<IpAddr>,
    /// The echo interval (with `echo`), else the Control packet interval.
    pub interval: Duration,
    pub multiplier: u8,
    /// Echo packets looped back by the far end's XDP program.
    pub echo: bool,
    /// Control packet interval while the Echo function runs.
    pub control_interval: Duration,
    /// A program (and its arguments) run on every session change with the instance, the
    /// neighbour, the new state and the diagnostic appended; the core only carries it to
    /// whoever routes the change.
    pub notify: Option<Vec<String>>,
}

/// One virtual router as the core runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Names it in logs, status and hooks.
    pub name: String,
    pub identity: Identity,
    /// Configured priority, 1..=255; 255 means this router owns the addresses.
    pub priority: u8,
    pub advert_interval: Interval,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// RFC 9568 Accept_Mode: as master, accept packets addressed to the VIPs.
    pub accept: bool,
    /// Answer and advertise from the virtual MAC ([`Instance::vmac_address`]).
    pub vmac: bool,
    /// Listed in advertisements, in this order, as far as one carries
    /// ([`max_advertised`]); owned and answered like `vips_excluded`.
    pub vips: Vec<Address>,
    /// Owned and answered, never advertised.
    pub vips_excluded: Vec<Address>,
    /// Answered (on the instance's interface) while master; never added to an interface
    /// nor advertised.
    pub proxy_arp: Vec<IpAddr>,
    /// Shared VIPs (active-active) this instance is one member group of: answered on the
    /// instance's interface while master, from the virtual MAC, for the requesters whose
    /// address picks this member (`vip_common::shared_member`); never added to an
    /// interface nor advertised.
    pub shared_vips: Vec<SharedVip>,
    /// Advertisements' source when set; see [`super::source`].
    pub unicast_src_ip: Option<IpAddr>,
    /// When non-empty, adverts go to these addresses instead of the multicast group.
    pub unicast_peers: Vec<IpAddr>,
    pub admission: Admission,
    pub tracking: Tracking,
    pub announce: announce::Settings,
    pub bfd: Option<BfdSettings>,
    /// Instances naming the same group change state together.
    pub sync_group: Option<String>,
    /// Set exactly when `identity.protocol` is CARP.
    pub carp: Option<CarpSettings>,
}

/// One shared VIP as one of its member groups sees it: the groups that list the address
/// on one interface, ordered by id (VRRP before CARP on a tie), are members 0..`members`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedVip {
    pub addr: IpAddr,
    /// This group's place among the members.
    pub member: u8,
    /// How many groups share the address.
    pub members: u8,
}

/// How many addresses one advertisement carries: the 8-bit count field limits IPv4 (v2
/// and v3) to 255; IPv6 to what fits a 1500-byte frame: (1500 − 40 − 8) / 16 = 90.
pub const fn max_advertised(family: Family) -> usize {
    match family {
        Family::Ipv4 => 255,
        Family::Ipv6 => (1500 - 40 - 8) / 16,
    }
}

impl Instance {
    /// An instance with RFC 9568's defaults (priority 100, a 1 s interval, preemption on
    /// without delay) and vipd's (Accept_Mode on, five announcements 10 ms apart, no
    /// refresh), with no address yet: what tests start from before setting what they
    /// need.
    pub fn new(name: &str, identity: Identity) -> Instance {
        Instance {
            name: name.to_owned(),
            identity,
            priority: 100,
            advert_interval: Interval::DEFAULT,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept: true,
            vmac: false,
            vips: Vec::new(),
            vips_excluded: Vec::new(),
            proxy_arp: Vec::new(),
            shared_vips: Vec::new(),
            unicast_src_ip: None,
            unicast_peers: Vec::new(),
            admission: Admission::default(),
            tracking: Tracking::default(),
            announce: announce::Settings {
                repeat: 5,
                interval: Duration::from_millis(10),
                refresh: None,
            },
            bfd: None,
            sync_group: None,
            carp: None,
        }
    }

    /// A CARP instance with vipd's CARP defaults (preempt off, as carp(4) and ucarp;
    /// dead ratio 3; strict replay checks) and `key`: what tests start from.
    pub fn new_carp(name: &str, identity: Identity, key: Key) -> Instance {
        Instance {
            preempt: false,
            carp: Some(CarpSettings {
                key,
                dead_ratio: super::carp::DEAD_RATIO,
                replay: ReplayMode::Strict,
                hmac_link_local: false,
                demote: 0,
            }),
            ..Instance::new(name, identity)
        }
    }

    /// Adds `addr` as a VIP on the instance's interface (a test and bench convenience).
    pub fn with_vip(mut self, addr: IpAddr) -> Instance {
        let dev = self.identity.interface.clone();
        self.vips.push(Address { addr, dev });
        self
    }

    /// The RFC 9568 virtual router MAC for this VRID and family; CARP's
    /// 00:00:5e:00:01:VHID in both families.
    pub fn vmac_address(&self) -> [u8; 6] {
        if self.identity.is_carp() {
            return vmac_carp(self.identity.vrid);
        }
        match self.identity.family {
            Family::Ipv4 => vmac_v4(self.identity.vrid),
            Family::Ipv6 => vmac_v6(self.identity.vrid),
        }
    }

    /// Priority 255: the VIPs are this router's own addresses. CARP has no owner
    /// (priority 255 is advskew 0, the most preferred router, nothing more).
    pub fn is_owner(&self) -> bool {
        self.priority == OWNER_PRIORITY && !self.identity.is_carp()
    }

    /// Whether the kernel holds the VIP addresses while this instance is master (RFC 9568
    /// §6.4.3: the owner, or Accept_Mode); without, the XDP program still answers ARP /
    /// NS for them, so traffic through the router flows, but traffic to a VIP itself is
    /// not accepted. The machine applies the same rule (`Machine::accepts_vip_traffic`).
    pub fn accepts_vip_traffic(&self) -> bool {
        self.is_owner() || self.accept
    }

    /// Every VIP: `vips`, then `vips_excluded`.
    pub fn all_vips(&self) -> impl Iterator<Item = &Address> {
        self.vips.iter().chain(&self.vips_excluded)
    }

    /// Every address the data plane answers for while this instance is master, with its
    /// device: its VIPs, then its proxy addresses (on its interface).
    pub fn answered(&self) -> impl Iterator<Item = (&str, IpAddr)> {
        self.all_vips().map(|v| (v.dev.as_str(), v.addr)).chain(
            self.proxy_arp
                .iter()
                .map(|a| (self.identity.interface.as_str(), *a)),
        )
    }

    /// The VIPs one advertisement lists: the first [`max_advertised`] of `vips`.
    pub fn advertised_vips(&self) -> &[Address] {
        let n = max_advertised(self.identity.family).min(self.vips.len());
        &self.vips[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw() -> Instance {
        Instance::new("gw", Identity::new("eth0", 51, Family::Ipv4, Version::V3))
    }

    #[test]
    fn answered_lists_vips_then_excluded_then_proxy_addresses_on_their_devices() {
        let mut i = gw().with_vip("192.0.2.1".parse().unwrap());
        i.vips_excluded.push(Address {
            addr: "198.51.100.1".parse().unwrap(),
            dev: "eth1".into(),
        });
        i.proxy_arp.push("203.0.113.9".parse().unwrap());
        let answered: Vec<(String, String)> = i
            .answered()
            .map(|(d, a)| (d.to_owned(), a.to_string()))
            .collect();
        assert_eq!(
            answered,
            [
                ("eth0".to_owned(), "192.0.2.1".to_owned()),
                ("eth1".to_owned(), "198.51.100.1".to_owned()),
                ("eth0".to_owned(), "203.0.113.9".to_owned()),
            ]
        );
    }

    #[test]
    fn an_advertisement_lists_at_most_what_one_packet_carries() {
        let mut v6 = Instance::new("v6", Identity::new("eth0", 7, Family::Ipv6, Version::V3));
        for i in 0..100u16 {
            v6 = v6.with_vip(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i + 1).into());
        }
        assert_eq!(v6.advertised_vips().len(), 90);
        assert_eq!(gw().advertised_vips().len(), 0);
    }

    #[test]
    fn the_kernel_holds_vips_for_the_owner_or_with_accept_mode() {
        let mut i = gw();
        assert!(i.accepts_vip_traffic(), "vipd's default is Accept_Mode on");
        i.accept = false;
        assert!(!i.accepts_vip_traffic());
        i.priority = OWNER_PRIORITY;
        assert!(i.accepts_vip_traffic(), "the owner's addresses are its own");
    }

    #[test]
    fn the_virtual_mac_follows_family_and_vrid() {
        assert_eq!(gw().vmac_address(), [0, 0, 0x5e, 0, 1, 51]);
        let v6 = Instance::new("v6", Identity::new("eth0", 7, Family::Ipv6, Version::V3));
        assert_eq!(v6.vmac_address(), [0, 0, 0x5e, 0, 2, 7]);
    }
}
