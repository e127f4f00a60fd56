//! VRRP advertisements built byte by byte, for the program tests, the program-cost frames
//! and the benchmark floods.

use std::net::Ipv4Addr;

use crate::frames::{ethernet, inet_checksum};

/// 01:00:5e:00:00:12, the Ethernet group of 224.0.0.18.
pub const VRRP_GROUP_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
pub const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// Offset of the VRRP header in an untagged IPv4 frame without options.
pub const VRRP_OFF: usize = 14 + 20;

/// A VRRPv3 IPv4 advertisement with correct IPv4 and VRRP (pseudo-header) checksums.
pub fn advert_v3(
    src_mac: [u8; 6],
    src: Ipv4Addr,
    vrid: u8,
    priority: u8,
    interval_cs: u16,
    vips: &[Ipv4Addr],
) -> Vec<u8> {
    advert_v3_to(
        (VRRP_GROUP_MAC, VRRP_GROUP),
        src_mac,
        src,
        vrid,
        priority,
        interval_cs,
        vips,
    )
}

/// The same advertisement sent to `to` (MAC, address): a unicast peer's.
pub fn advert_v3_to(
    to: ([u8; 6], Ipv4Addr),
    src_mac: [u8; 6],
    src: Ipv4Addr,
    vrid: u8,
    priority: u8,
    interval_cs: u16,
    vips: &[Ipv4Addr],
) -> Vec<u8> {
    let (dst_mac, dst) = to;
    let mut vrrp = vec![0x31, vrid, priority, vips.len() as u8];
    vrrp.extend_from_slice(&(interval_cs & 0x0fff).to_be_bytes());
    vrrp.extend_from_slice(&[0, 0]);
    for v in vips {
        vrrp.extend_from_slice(&v.octets());
    }
    let len = (vrrp.len() as u16).to_be_bytes();
    let c = inet_checksum(&[&src.octets(), &dst.octets(), &[0, 112], &len, &vrrp]);
    vrrp[6..8].copy_from_slice(&c.to_be_bytes());
    let mut f = ethernet(dst_mac, src_mac, 0x0800);
    let tot = (20 + vrrp.len()) as u16;
    let mut ip = vec![0x45, 0xc0];
    ip.extend_from_slice(&tot.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, 255, 112, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = inet_checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&vrrp);
    f
}

/// Recomputes the IPv4 header checksum after a header field was changed.
pub fn fix_ip_checksum(f: &mut [u8]) {
    f[24..26].copy_from_slice(&[0, 0]);
    let c = inet_checksum(&[&f[14..34]]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advert_matches_keepalived_vrid51_vector_in_every_byte_but_the_ip_id() {
        let vector = crate::frames::keepalived_vectors()
            .into_iter()
            .find(|(n, _)| n == "keepalived-2.2.7_vrrpv3_ipv4_vrid51_prio150")
            .unwrap()
            .1;
        let mut f = advert_v3(
            vector[6..12].try_into().unwrap(),
            Ipv4Addr::new(192, 0, 2, 11),
            51,
            150,
            100,
            &[Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)],
        );
        // keepalived numbers its datagrams; ours carry id 0.
        f[18..20].copy_from_slice(&vector[18..20]);
        fix_ip_checksum(&mut f);
        assert_eq!(f, vector);
    }
}
