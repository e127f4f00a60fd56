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
/// `PACKET_HOST` and `PACKET_OTHERHOST` of `linux/if_packet.h` (`skb->pkt_type`).
pub const PACKET_HOST: u32 = 0;
pub const PACKET_OTHERHOST: u32 = 3;
pub const VMAC_PREFIX_V4: [u8; 5] = [0x00, 0x00, 0x5e, 0x00, 0x01];
/// First five bytes of an IPv6 virtual router MAC: 00-00-5E-00-02-{VRID}.
pub const VMAC_PREFIX_V6: [u8; 5] = [0x00, 0x00, 0x5e, 0x00, 0x02];

pub const fn vmac_v4(vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x01, vrid]
}

pub const fn vmac_v6(vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x02, vrid]
}

/// CARP (OpenBSD's and FreeBSD's carp(4), ucarp on Linux) uses VRRP's IP protocol
/// number, multicast groups and TTL; `classify_proto112` tells the two apart.
pub const IPPROTO_CARP: u8 = IPPROTO_VRRP;
/// The only CARP version ever sent (OpenBSD, FreeBSD, ucarp).
pub const CARP_VERSION: u8 = 2;
/// CARP's only message type, the advertisement (the same value as VRRP's).
pub const CARP_TYPE_ADVERTISEMENT: u8 = 1;
/// CARP's `authlen`: the 64-bit counter and the 20-byte SHA-1 HMAC in 32-bit words.
pub const CARP_AUTHLEN: u8 = 7;
/// A CARP advertisement is always 36 bytes: 8 header bytes, the counter, the HMAC.
pub const CARP_LEN: usize = 36;

/// The virtual MAC of CARP virtual host `vhid`, in either family: 00-00-5E-00-01-{VHID},
/// VRRP's IPv4 virtual MAC for the same id.
pub const fn vmac_carp(vhid: u8) -> [u8; 6] {
    vmac_v4(vhid)
}

/// Which protocol a packet of IP protocol 112 speaks. See [`classify_proto112`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto112 {
    /// VRRP (v3, v2, or a version neither protocol uses).
    Vrrp,
    /// CARP.
    Carp,
    /// Version 2 over IPv4 in neither protocol's layout: VRRPv2 or CARP, malformed
    /// either way. Whichever protocol runs a group with its id (byte 1) judges it.
    Malformed2,
}

/// Tells VRRP from CARP on IP protocol 112 by the field layouts alone (both send to
/// 224.0.0.18 / ff02::12 with TTL 255, and VRRPv2 and CARP both start with version 2,
/// type 1):
///
/// - version 3 is VRRPv3 (CARP never sent anything but 2);
/// - version 2 over IPv6 is CARP (VRRPv2 exists only over IPv4, RFC 3768);
/// - version 2 over IPv4 with byte 3 equal to 7 and exactly 36 bytes is CARP: byte 3 is
///   CARP's `authlen`, always 7, and its message always 36 bytes. For VRRPv2 byte 3 is the
///   address count and the message 16 + 4 × count bytes, so a count of 7 means 44 bytes:
///   no VRRPv2 advertisement has this layout;
/// - version 2 over IPv4 of 16 + 4 × byte 3 bytes is VRRPv2;
/// - any other version 2 over IPv4 is [`Proto112::Malformed2`];
/// - any other version is left to VRRP's rules (which refuse it).
///
/// `first` and `fourth` are the message's bytes 0 and 3, `len` its length (IPv4: total
/// length less the header; IPv6: what follows the extension headers). The XDP program and
/// the daemon both call this, so they attribute every packet the same way.
pub const fn classify_proto112(first: u8, fourth: u8, len: usize, ipv6: bool) -> Proto112 {
    if first >> 4 != CARP_VERSION {
        return Proto112::Vrrp;
    }
    if ipv6 || (fourth == CARP_AUTHLEN && len == CARP_LEN) {
        return Proto112::Carp;
    }
    if len == 16 + 4 * fourth as usize {
        return Proto112::Vrrp;
    }
    Proto112::Malformed2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_112_is_told_apart_by_layout() {
        use Proto112::*;
        // (byte 0, byte 3, length, IPv6) → protocol.
        let table: &[(u8, u8, usize, bool, Proto112)] = &[
            // CARP as every implementation sends it, both families.
            (0x21, 7, 36, false, Carp),
            (0x21, 7, 36, true, Carp),
            // VRRPv3 whatever byte 3 and the length say.
            (0x31, 7, 36, false, Vrrp),
            (0x31, 2, 16, false, Vrrp),
            (0x31, 1, 24, true, Vrrp),
            // VRRPv2 with 1, 5 (36 bytes, like CARP) and 7 addresses (authlen's value).
            (0x21, 1, 20, false, Vrrp),
            (0x21, 5, 36, false, Vrrp),
            (0x21, 7, 44, false, Vrrp),
            (0x21, 255, 16 + 4 * 255, false, Vrrp),
            // Version 2 over IPv6 is CARP, even malformed (VRRPv2 has no IPv6).
            (0x21, 1, 20, true, Carp),
            (0x21, 7, 40, true, Carp),
            // Version 2 over IPv4 in neither layout.
            (0x21, 7, 40, false, Malformed2),
            (0x21, 7, 35, false, Malformed2),
            (0x21, 6, 36, false, Malformed2),
            (0x21, 0, 8, false, Malformed2),
            // The type is not part of the rule: each protocol refuses other types itself.
            (0x22, 7, 36, false, Carp),
            // Versions neither protocol defines stay with VRRP's rules.
            (0x11, 7, 36, false, Vrrp),
            (0x41, 7, 36, true, Vrrp),
        ];
        for &(first, fourth, len, ipv6, want) in table {
            assert_eq!(
                classify_proto112(first, fourth, len, ipv6),
                want,
                "byte0 {first:#04x} byte3 {fourth} len {len} ipv6 {ipv6}"
            );
        }
    }

    #[test]
    fn carp_vmac_is_vrrps_ipv4_vmac() {
        assert_eq!(vmac_carp(7), [0x00, 0x00, 0x5e, 0x00, 0x01, 7]);
    }
}
