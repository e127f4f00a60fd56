//! Which VRRP the daemon reads at all: for one interface and address family, the VRIDs
//! this node runs there and, for each, the protocol versions worth reading. The daemon
//! turns it into a socket filter (`crate::net::vrrp_filter`), so VRRP for any other VRID
//! (another speaker's on a shared link, or a flood) is refused in the kernel and never
//! costs the daemon a wake-up.
//!
//! For a VRID we run, both versions are read over IPv4: the other version is a peer left
//! at another default (keepalived's is v2), which admission counts and reports as
//! `version_mismatch` and never acts on (see `admission`). Reading it costs no more than
//! reading adverts of the right version from a stranger, which the socket must take
//! anyway; an allowlist keeps both out in the XDP program. Over IPv6 only VRRPv3 exists.
//!
//! A CARP virtual host's VHID is read as CARP, in both families. CARP adverts start with
//! the same byte as VRRPv2 (version 2, type 1), so the socket filter admits byte 0x21
//! with the VHID for it; the daemon then tells the two apart by layout
//! (`vip_common::wire::classify_proto112`) and hands each to its own protocol's group.

use std::{collections::BTreeMap, fmt};

use super::{Family, Version, instance::Instance};

/// The versions read for one VRID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Versions {
    pub v2: bool,
    pub v3: bool,
    /// A CARP virtual host with this id runs here.
    pub carp: bool,
}

impl Versions {
    /// Whether a packet whose first byte says `version` is read: CARP's first byte is
    /// VRRPv2's.
    pub const fn admits(self, version: Version) -> bool {
        match version {
            Version::V2 => self.v2 || self.carp,
            Version::V3 => self.v3,
        }
    }
}

/// What the VRRP socket of one interface and family lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub family: Family,
    pub vrids: BTreeMap<u8, Versions>,
}

impl Listen {
    /// Nothing: what a socket holds between opening and its first instance.
    pub fn nothing(family: Family) -> Listen {
        Listen {
            family,
            vrids: BTreeMap::new(),
        }
    }

    /// For `instances` (those running on one interface; other families are skipped).
    pub fn of<'a>(family: Family, instances: impl IntoIterator<Item = &'a Instance>) -> Listen {
        let mut vrids = BTreeMap::new();
        for cfg in instances
            .into_iter()
            .filter(|c| c.identity.family == family)
        {
            let v: &mut Versions = vrids.entry(cfg.identity.vrid).or_default();
            if cfg.identity.is_carp() {
                v.carp = true;
                continue;
            }
            match family {
                // The configured version, and the other to report a mismatch.
                Family::Ipv4 => {
                    v.v2 = true;
                    v.v3 = true;
                }
                Family::Ipv6 => v.v3 = true,
            }
        }
        Listen { family, vrids }
    }

    /// Whether an advertisement of `version` for `vrid` is read.
    pub fn admits(&self, version: Version, vrid: u8) -> bool {
        self.vrids.get(&vrid).is_some_and(|v| v.admits(version))
    }
}

impl fmt::Display for Listen {
    /// `51 (v2, v3), 52 (v3)`, or `nothing`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.vrids.is_empty() {
            return f.write_str("nothing");
        }
        for (i, (vrid, v)) in self.vrids.iter().enumerate() {
            let versions = match (v.v2, v.v3, v.carp) {
                (true, true, false) => "v2, v3",
                (true, false, false) => "v2",
                (false, true, false) => "v3",
                (false, false, false) => "none",
                (true, true, true) => "v2, v3, carp",
                (true, false, true) => "v2, carp",
                (false, true, true) => "v3, carp",
                (false, false, true) => "carp",
            };
            write!(f, "{}{vrid} ({versions})", if i > 0 { ", " } else { "" })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::instance::Identity;

    fn instance(vrid: u8, family: Family, version: Version) -> Instance {
        Instance::new("i", Identity::new("eth0", vrid, family, version))
    }

    #[test]
    fn a_carp_vhid_is_read_as_carp_in_both_families_beside_a_vrrp_vrid_of_the_same_number() {
        let cfgs = [
            instance(7, Family::Ipv4, Version::V3),
            Instance::new("c4", Identity::carp("eth0", 7, Family::Ipv4)),
            Instance::new("c6", Identity::carp("eth0", 9, Family::Ipv6)),
        ];
        let v4 = Listen::of(Family::Ipv4, &cfgs);
        assert_eq!(v4.to_string(), "7 (v2, v3, carp)");
        let v6 = Listen::of(Family::Ipv6, &cfgs);
        assert_eq!(v6.to_string(), "9 (carp)");
        // CARP's first byte is VRRPv2's: that is what the filter tests.
        assert!(v6.admits(Version::V2, 9) && !v6.admits(Version::V3, 9));
        assert!(!v6.admits(Version::V2, 7));
    }

    #[test]
    fn reads_only_the_vrids_run_in_the_family_both_versions_over_ipv4() {
        let cfgs = [
            instance(51, Family::Ipv4, Version::V3),
            instance(52, Family::Ipv4, Version::V2),
            instance(51, Family::Ipv6, Version::V3),
        ];
        let v4 = Listen::of(Family::Ipv4, &cfgs);
        assert!(v4.admits(Version::V3, 51) && v4.admits(Version::V2, 51));
        assert!(v4.admits(Version::V2, 52) && v4.admits(Version::V3, 52));
        assert!(!v4.admits(Version::V3, 53));
        assert_eq!(v4.to_string(), "51 (v2, v3), 52 (v2, v3)");
        let v6 = Listen::of(Family::Ipv6, &cfgs);
        assert_eq!(v6.vrids.len(), 1);
        assert!(v6.admits(Version::V3, 51) && !v6.admits(Version::V2, 51));
        assert!(!v6.admits(Version::V3, 52));
        assert_eq!(Listen::nothing(Family::Ipv4).to_string(), "nothing");
    }
}
