//! The VRRP advertisement codec on whole IP packets: IPv4 as a raw socket delivers it
//! (`decode_ipv4`), IPv6 as header fields plus payload (`decode_ipv6`, the header read
//! from the first 40 bytes), anything else as a bare VRRPv3 message between two fixed
//! IPv4 addresses (`Advert::decode`).
//!
//! Beyond "never panics": an accepted advertisement encodes again, with the checksum
//! form it arrived with, to a message of the same length that decodes to the same
//! advertisement; what differs from the input is only the reserved bits (v3) and the
//! checksum that covers them.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use vipd::vrrp::packet::{Advert, ChecksumForm, decode_ipv4, decode_ipv6};

fn round_trip(message: &[u8], advert: &Advert, src: IpAddr, dst: IpAddr, form: ChecksumForm) {
    let encoded = advert
        .encode_with(src, dst, form)
        .expect("an advertisement that decoded encodes");
    assert_eq!(encoded.len(), message.len());
    assert_eq!(
        Advert::decode_with_form(&encoded, src, dst),
        Ok((advert.clone(), form))
    );
    // Byte for byte but for the v3 reserved bits and the checksum.
    let mut a = message.to_vec();
    let mut b = encoded;
    for m in [&mut a, &mut b] {
        if m[0] >> 4 == 3 {
            m[4] &= 0x0f;
        }
        m[6] = 0;
        m[7] = 0;
    }
    assert_eq!(a, b);
}

fuzz_target!(|pkt: &[u8]| {
    match pkt.first().map(|b| b >> 4) {
        Some(4) => {
            if let Ok(r) = decode_ipv4(pkt) {
                let ihl = usize::from(pkt[0] & 0x0f) * 4;
                let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
                round_trip(&pkt[ihl..total], &r.advert, r.src, r.dst, r.checksum_form);
            }
        }
        Some(6) if pkt.len() >= 40 => {
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&pkt[8..24]).unwrap());
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&pkt[24..40]).unwrap());
            if let Ok(r) = decode_ipv6(&pkt[40..], src, dst, pkt[7]) {
                round_trip(&pkt[40..], &r.advert, r.src, r.dst, r.checksum_form);
            }
        }
        _ => {
            let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
            let dst = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
            if let Ok((advert, form)) = Advert::decode_with_form(pkt, src, dst) {
                round_trip(pkt, &advert, src, dst, form);
            }
        }
    }
});
