//! The address an instance's advertisements come from, chosen from the addresses its
//! interface holds (the daemon looks them up; this decides).
//!
//! RFC 9568 §5.1.1.1 (IPv4): the primary address of the interface; §5.1.2.1 (IPv6): its
//! link-local address. vipd also never picks one of the instance's own VIPs (that address
//! moves with mastership, and a backup holding it would send from an address it does
//! not own), honours `unicast_src_ip` exactly, and for IPv6 unicast peers beyond the link
//! sends from a global address, since a link-local source cannot reach them.

use std::net::IpAddr;

use super::{instance::Instance, packet::Family};

/// Why no source address could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("instance {instance}: unicast_src_ip {want} is not an address of {interface}")]
    NotOnInterface {
        instance: String,
        want: IpAddr,
        interface: String,
    },
    #[error("instance {instance}: interface {interface} has no {what} address to send VRRP from")]
    NoAddress {
        instance: String,
        interface: String,
        what: &'static str,
    },
}

/// The advert source of `inst` among `addrs`, the interface's addresses in the order the
/// kernel lists them (its primary IPv4 address first):
/// - `unicast_src_ip` when set, and only if the interface holds it;
/// - IPv4: the first address that is not a VIP of the instance;
/// - IPv6 with a unicast peer outside fe80::/10: the first global address that is not a
///   VIP;
/// - IPv6 otherwise: the link-local address.
pub fn advert_source(inst: &Instance, addrs: &[IpAddr]) -> Result<IpAddr, SourceError> {
    let id = &inst.identity;
    let is_vip = |a: &IpAddr| inst.all_vips().any(|v| v.addr == *a);
    if let Some(want) = inst.unicast_src_ip {
        return if addrs.contains(&want) {
            Ok(want)
        } else {
            Err(SourceError::NotOnInterface {
                instance: inst.name.clone(),
                want,
                interface: id.interface.clone(),
            })
        };
    }
    let link_local = |a: &IpAddr| matches!(a, IpAddr::V6(v6) if v6.is_unicast_link_local());
    let global_peers = id.family == Family::Ipv6
        && inst
            .unicast_peers
            .iter()
            .any(|p| p.is_ipv6() && !link_local(p));
    if global_peers
        && let Some(a) = addrs
            .iter()
            .find(|a| a.is_ipv6() && !link_local(a) && !is_vip(a))
    {
        return Ok(*a);
    }
    let found = addrs.iter().find(|a| match (id.family, a) {
        (Family::Ipv4, IpAddr::V4(_)) => !is_vip(a),
        (Family::Ipv6, IpAddr::V6(_)) => link_local(a),
        _ => false,
    });
    found.copied().ok_or_else(|| SourceError::NoAddress {
        instance: inst.name.clone(),
        interface: id.interface.clone(),
        what: match id.family {
            Family::Ipv4 => "IPv4 (non-VIP)",
            Family::Ipv6 => "link-local IPv6",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::{Version, instance::Identity};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn v4() -> Instance {
        Instance::new("gw", Identity::new("eth0", 51, Family::Ipv4, Version::V3))
            .with_vip(ip("192.0.2.1"))
    }

    fn v6() -> Instance {
        Instance::new("gw6", Identity::new("eth0", 51, Family::Ipv6, Version::V3))
            .with_vip(ip("2001:db8::1"))
    }

    #[test]
    fn ipv4_takes_the_first_address_that_is_not_a_vip() {
        // A VIP left on the interface (a previous master's, or ours as owner) listed first.
        let addrs = [
            ip("192.0.2.1"),
            ip("192.0.2.11"),
            ip("fe80::1"),
            ip("192.0.2.12"),
        ];
        assert_eq!(advert_source(&v4(), &addrs), Ok(ip("192.0.2.11")));
    }

    #[test]
    fn ipv6_takes_the_link_local_address() {
        let addrs = [ip("2001:db8::11"), ip("192.0.2.11"), ip("fe80::11")];
        assert_eq!(advert_source(&v6(), &addrs), Ok(ip("fe80::11")));
    }

    #[test]
    fn ipv6_unicast_peers_off_the_link_get_a_global_non_vip_source() {
        let mut i = v6();
        i.unicast_peers = vec![ip("2001:db8:1::2")];
        let addrs = [ip("fe80::11"), ip("2001:db8::1"), ip("2001:db8::11")];
        assert_eq!(advert_source(&i, &addrs), Ok(ip("2001:db8::11")));
        // Without a global address the link-local one is still better than none.
        assert_eq!(
            advert_source(&i, &[ip("fe80::11"), ip("2001:db8::1")]),
            Ok(ip("fe80::11"))
        );
        // Link-local peers are reached from the link-local address.
        i.unicast_peers = vec![ip("fe80::12")];
        assert_eq!(advert_source(&i, &addrs), Ok(ip("fe80::11")));
    }

    #[test]
    fn unicast_src_ip_is_taken_only_if_the_interface_holds_it() {
        let mut i = v4();
        i.unicast_src_ip = Some(ip("192.0.2.12"));
        let addrs = [ip("192.0.2.11"), ip("192.0.2.12")];
        assert_eq!(advert_source(&i, &addrs), Ok(ip("192.0.2.12")));
        let err = advert_source(&i, &addrs[..1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "instance gw: unicast_src_ip 192.0.2.12 is not an address of eth0"
        );
    }

    #[test]
    fn no_usable_address_is_an_error_naming_what_is_missing() {
        let err = advert_source(&v4(), &[ip("192.0.2.1"), ip("fe80::1")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "instance gw: interface eth0 has no IPv4 (non-VIP) address to send VRRP from"
        );
        let err = advert_source(&v6(), &[ip("2001:db8::11")]).unwrap_err();
        assert!(
            err.to_string().contains("no link-local IPv6 address"),
            "{err}"
        );
    }
}
