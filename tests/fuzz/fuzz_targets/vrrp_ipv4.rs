//! IPv4 packets as the raw VRRP socket receives them, header included
//! (`net::vrrp_socket::parse_ipv4`).
//!
//! Beyond "never panics": the VRRP message is exactly the bytes after the header (IHL
//! honoured) up to the total length or the end of what arrived, whichever comes first;
//! and whatever the full receive check (`vrrp::packet::decode_ipv4`) accepts, the
//! socket's split hands on with the same addresses and TTL, and it decodes to the same
//! advertisement.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::net::vrrp_socket::parse_ipv4;
use vipd::vrrp::Advert;
use vipd::vrrp::packet::decode_ipv4;

fuzz_target!(|pkt: &[u8]| {
    let split = parse_ipv4(pkt);
    if let Some(r) = &split {
        let ihl = usize::from(pkt[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
        assert!(ihl >= 20);
        assert_eq!(r.vrrp[..], pkt[ihl..total.min(pkt.len())]);
        assert_eq!(r.ttl, pkt[8]);
    }
    if let Ok(full) = decode_ipv4(pkt) {
        let r = split.expect("a packet decode_ipv4 accepts is split");
        assert_eq!((r.src, r.dst, r.ttl), (full.src, full.dst, full.ttl));
        assert_eq!(Advert::decode(&r.vrrp, r.src, r.dst), Ok(full.advert));
    }
});
