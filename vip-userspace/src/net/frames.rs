//! Whole Ethernet frames for what vipd sends itself: VRRP advertisements (so the source
//! MAC can be the virtual MAC), gratuitous ARP and unsolicited Neighbor Advertisements,
//! and BFD Echo packets (addressed to ourselves, through the neighbour's MAC).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum::inet_checksum;
use vip_common::wire::{ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMPV6, IPPROTO_VRRP, VRRP_TTL};

const IPPROTO_UDP: u8 = 17;

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

/// A UDP datagram from `src` to `dst` (of one family) in IP in Ethernet, TTL / hop limit
/// 255, traffic class network control, UDP checksum filled in.
pub fn udp(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    ports: (u16, u16),
    payload: &[u8],
) -> Option<Vec<u8>> {
    let ulen = 8 + payload.len();
    let mut udp = Vec::with_capacity(ulen);
    udp.extend_from_slice(&ports.0.to_be_bytes());
    udp.extend_from_slice(&ports.1.to_be_bytes());
    udp.extend_from_slice(&(ulen as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let (s, d): (Vec<u8>, Vec<u8>) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (s.octets().to_vec(), d.octets().to_vec()),
        (IpAddr::V6(s), IpAddr::V6(d)) => (s.octets().to_vec(), d.octets().to_vec()),
        _ => return None,
    };
    let c = inet_checksum(&[
        &s,
        &d,
        &[0, IPPROTO_UDP],
        &(ulen as u16).to_be_bytes(),
        &udp,
    ]);
    // Zero means "no checksum" in UDP over IPv4 and is forbidden over IPv6 (RFC 768).
    let c = if c == 0 { 0xffff } else { c };
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    Some(match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut f = ethernet(dst_mac, src_mac, ETH_P_IP, 20 + ulen);
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[1] = 0xc0;
            ip[2..4].copy_from_slice(&((20 + ulen) as u16).to_be_bytes());
            ip[8] = VRRP_TTL;
            ip[9] = IPPROTO_UDP;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let c = inet_checksum(&[&ip]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
            f.extend_from_slice(&udp);
            f
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut f = ethernet(dst_mac, src_mac, ETH_P_IPV6, 40 + ulen);
            ipv6_header(&mut f, TC_NETWORK_CONTROL, ulen, IPPROTO_UDP, s, d);
            f.extend_from_slice(&udp);
            f
        }
        _ => return None,
    })
}

/// A UDP datagram as received in a whole frame (no VLAN tag: AF_PACKET sockets on a VLAN
/// device see it untagged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpIn<'a> {
    pub src_mac: [u8; 6],
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

/// Splits an Ethernet frame carrying UDP directly in IPv4 (not fragmented) or IPv6 (no
/// extension headers), never trusting a length beyond what arrived.
pub fn parse_udp(f: &[u8]) -> Option<UdpIn<'_>> {
    let src_mac: [u8; 6] = f.get(6..12)?.try_into().ok()?;
    let ethertype = u16::from_be_bytes(f.get(12..14)?.try_into().ok()?);
    let ip = f.get(14..)?;
    let (src, dst, ttl, l4): (IpAddr, IpAddr, u8, &[u8]) = match ethertype {
        ETH_P_IP => {
            let ihl = usize::from(*ip.first()? & 0x0f) * 4;
            let frag = u16::from_be_bytes(ip.get(6..8)?.try_into().ok()?);
            if ip[0] >> 4 != 4 || ihl < 20 || *ip.get(9)? != IPPROTO_UDP || frag & 0x3fff != 0 {
                return None;
            }
            let total = usize::from(u16::from_be_bytes(ip.get(2..4)?.try_into().ok()?));
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            let end = total.min(ip.len());
            (s.into(), d.into(), ip[8], ip.get(ihl..end)?)
        }
        ETH_P_IPV6 => {
            if *ip.first()? >> 4 != 6 || *ip.get(6)? != IPPROTO_UDP {
                return None;
            }
            let plen = usize::from(u16::from_be_bytes(ip.get(4..6)?.try_into().ok()?));
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            let end = (40 + plen).min(ip.len());
            (s.into(), d.into(), ip[7], ip.get(40..end)?)
        }
        _ => return None,
    };
    if l4.len() < 8 {
        return None;
    }
    let ulen = usize::from(u16::from_be_bytes([l4[4], l4[5]]));
    Some(UdpIn {
        src_mac,
        src,
        dst,
        ttl,
        dst_port: u16::from_be_bytes(l4.get(2..4)?.try_into().ok()?),
        payload: &l4[8..ulen.max(8).min(l4.len())],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_frames_parse_back_in_both_families() {
        for (s, d) in [("192.0.2.11", "192.0.2.11"), ("fe80::1", "fe80::1")] {
            let (s, d): (IpAddr, IpAddr) = (s.parse().unwrap(), d.parse().unwrap());
            let f = udp(KEEPALIVED_MAC, [2; 6], s, d, (49152, 3785), b"vipd-echo").unwrap();
            let p = parse_udp(&f).unwrap();
            assert_eq!(p.src_mac, KEEPALIVED_MAC);
            assert_eq!((p.src, p.dst, p.ttl, p.dst_port), (s, d, 255, 3785));
            assert_eq!(p.payload, b"vipd-echo");
            // Every truncation is refused or parsed within what arrived, never a panic.
            for n in 0..f.len() {
                if let Some(p) = parse_udp(&f[..n]) {
                    assert!(p.payload.len() < 9);
                }
            }
        }
        assert!(
            udp(
                [1; 6],
                [2; 6],
                "192.0.2.1".parse().unwrap(),
                "fe80::1".parse().unwrap(),
                (1, 2),
                b""
            )
            .is_none()
        );
    }

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
