//! Whole Ethernet frames for what vipd sends itself: VRRP advertisements (so the source
//! MAC can be the virtual MAC), gratuitous ARP and unsolicited Neighbor Advertisements.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum::inet_checksum;
use vip_common::wire::{ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMPV6, IPPROTO_VRRP, VRRP_TTL};

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, capacity: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + capacity);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// Multicast MAC of an IPv4 group (RFC 1112 §6.4).
pub fn ipv4_multicast_mac(group: Ipv4Addr) -> [u8; 6] {
    let o = group.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

/// Multicast MAC of an IPv6 group (RFC 2464 §7).
pub fn ipv6_multicast_mac(group: Ipv6Addr) -> [u8; 6] {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// A VRRP packet in IPv4 in Ethernet. TOS is Internetwork Control (0xc0), as keepalived
/// and FRR send it; TTL 255 (RFC 5798 §5.1.1.3).
pub fn vrrp_v4(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    vrrp: &[u8],
) -> Vec<u8> {
    let mut f = ethernet(dst_mac, src_mac, ETH_P_IP, 20 + vrrp.len());
    let total = (20 + vrrp.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[1] = 0xc0;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&ident.to_be_bytes());
    ip[8] = VRRP_TTL;
    ip[9] = IPPROTO_VRRP;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = inet_checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(vrrp);
    f
}

/// Traffic class of VRRP: network control (0xc0), like the IPv4 TOS above.
const TC_NETWORK_CONTROL: u8 = 0xc0;

fn ipv6_header(
    f: &mut Vec<u8>,
    traffic_class: u8,
    payload_len: usize,
    next: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
) {
    f.extend_from_slice(&[0x60 | traffic_class >> 4, traffic_class << 4, 0x00, 0x00]);
    f.extend_from_slice(&(payload_len as u16).to_be_bytes());
    f.push(next);
    f.push(VRRP_TTL);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
}

/// A VRRP packet in IPv6 in Ethernet, hop limit 255.
pub fn vrrp_v6(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    vrrp: &[u8],
) -> Vec<u8> {
    let mut f = ethernet(dst_mac, src_mac, ETH_P_IPV6, 40 + vrrp.len());
    ipv6_header(
        &mut f,
        TC_NETWORK_CONTROL,
        vrrp.len(),
        IPPROTO_VRRP,
        src,
        dst,
    );
    f.extend_from_slice(vrrp);
    f
}

/// A gratuitous ARP request for `ip` at `mac`, broadcast: what RFC 5798 §6.4.2 asks on
/// becoming master, in the request form keepalived and Linux use.
pub fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut f = ethernet([0xff; 6], mac, ETH_P_ARP, 28);
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&ip.octets());
    f
}

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// An unsolicited Neighbor Advertisement for `target` at `mac` to all-nodes, with the
/// Router and Override flags set and Solicited clear (RFC 5798 §6.4.2).
pub fn unsolicited_na(mac: [u8; 6], target: Ipv6Addr) -> Vec<u8> {
    let mut body = [0u8; 32];
    body[0] = 136;
    body[4] = 0x80 | 0x20;
    body[8..24].copy_from_slice(&target.octets());
    body[24] = 2;
    body[25] = 1;
    body[26..32].copy_from_slice(&mac);
    let len = (body.len() as u32).to_be_bytes();
    let c = inet_checksum(&[
        &target.octets(),
        &ALL_NODES.octets(),
        &len,
        &[0, 0, 0, IPPROTO_ICMPV6],
        &body,
    ]);
    body[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = ethernet(ipv6_multicast_mac(ALL_NODES), mac, ETH_P_IPV6, 40 + 32);
    ipv6_header(&mut f, 0, body.len(), IPPROTO_ICMPV6, target, ALL_NODES);
    f.extend_from_slice(&body);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const KEEPALIVED_MAC: [u8; 6] = [0x6a, 0xb3, 0x99, 0xa4, 0xa8, 0xbf];

    #[test]
    fn gratuitous_arp_matches_keepalived_capture() {
        let expected = hex(
            "ffffffffffff6ab399a4a8bf080600010800060400016ab399a4a8bfc0000201ffffffffffffc0000201",
        );
        assert_eq!(
            gratuitous_arp(KEEPALIVED_MAC, Ipv4Addr::new(192, 0, 2, 1)),
            expected
        );
    }

    #[test]
    fn unsolicited_na_matches_keepalived_capture_but_for_the_router_flag() {
        // keepalived 2.2.7 leaves the Router flag clear; RFC 5798 §6.4.2 sets it.
        let mut expected = hex(
            "3333000000016ab399a4a8bf86dd6000000000203aff20010db8000000000000000000000001ff02000000000000000000000000000188004e142000000020010db800000000000000000000000102016ab399a4a8bf",
        );
        expected[54 + 4] = 0xa0;
        // One's complement update of the checksum for the 0x8000 added to that word.
        let old = u16::from_be_bytes([expected[56], expected[57]]);
        let sum = (!old) as u32 + 0x8000;
        let new = !(((sum & 0xffff) + (sum >> 16)) as u16);
        expected[56..58].copy_from_slice(&new.to_be_bytes());
        assert_eq!(
            unsolicited_na(KEEPALIVED_MAC, "2001:db8::1".parse().unwrap()),
            expected
        );
    }

    #[test]
    fn vrrp_v4_frame_matches_keepalived_capture() {
        let frame = hex(
            "01005e0000126ab399a4a8bf080045c0002400010000ff70188bc000020be000001231339602006411c3c0000201c0000202",
        );
        let built = vrrp_v4(
            KEEPALIVED_MAC,
            ipv4_multicast_mac(Ipv4Addr::new(224, 0, 0, 18)),
            Ipv4Addr::new(192, 0, 2, 11),
            Ipv4Addr::new(224, 0, 0, 18),
            1,
            &frame[34..],
        );
        assert_eq!(built, frame);
    }
}
