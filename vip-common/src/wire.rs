//! Protocol numbers and fixed addresses used on both sides of the map boundary.

pub const ETH_HLEN: usize = 14;
pub const VLAN_HLEN: usize = 4;

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86DD;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88A8;

pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
/// IPv4 in IP (RFC 2003): the load balancer's IPv4 tunnel.
pub const IPPROTO_IPIP: u8 = 4;
/// IPv6 in IP (RFC 2473): the load balancer's IPv6 tunnel.
pub const IPPROTO_IPV6: u8 = 41;
pub const IPPROTO_ICMPV6: u8 = 58;
/// VRRP's IP protocol number (RFC 5798 §5.1.1.4).
pub const IPPROTO_VRRP: u8 = 112;
/// TTL / hop limit every VRRP packet must carry (RFC 5798 §5.1.1.3).
pub const VRRP_TTL: u8 = 255;

/// VRRPv2 authentication types (RFC 3768 §5.3.6): none, and simple text. Type 2 (IP AH)
/// is obsolete and refused.
pub const V2_AUTH_NONE: u8 = 0;
pub const V2_AUTH_SIMPLE_TEXT: u8 = 1;

/// 224.0.0.18
pub const VRRP_GROUP_V4: [u8; 4] = [224, 0, 0, 18];
/// ff02::12
pub const VRRP_GROUP_V6: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12];

/// First five bytes of an IPv4 virtual router MAC: 00-00-5E-00-01-{VRID}.
pub const VMAC_PREFIX_V4: [u8; 5] = [0x00, 0x00, 0x5e, 0x00, 0x01];
/// First five bytes of an IPv6 virtual router MAC: 00-00-5E-00-02-{VRID}.
pub const VMAC_PREFIX_V6: [u8; 5] = [0x00, 0x00, 0x5e, 0x00, 0x02];

pub const fn vmac_v4(vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x01, vrid]
}

pub const fn vmac_v6(vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x02, vrid]
}
