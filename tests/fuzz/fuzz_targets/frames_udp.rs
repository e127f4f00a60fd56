//! Whole Ethernet frames as the BFD Echo socket (AF_PACKET) receives them
//! (`net::frames::parse_udp`).
//!
//! Beyond "never panics": the payload lies inside the frame, after the IP and UDP
//! headers, and is never longer than the UDP length field or the IP length allows; a
//! parsed datagram rebuilt with `frames::udp` parses back to the same addresses, port
//! and payload.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::net::frames::{parse_udp, udp};

fuzz_target!(|frame: &[u8]| {
    let Some(p) = parse_udp(frame) else {
        return;
    };
    let start = p.payload.as_ptr() as usize - frame.as_ptr() as usize;
    let header = if p.src.is_ipv4() {
        14 + 20 + 8
    } else {
        14 + 40 + 8
    };
    assert!(start >= header, "payload at {start}, inside the headers");
    assert!(start + p.payload.len() <= frame.len());
    assert_eq!(p.src.is_ipv4(), p.dst.is_ipv4());
    assert_eq!(p.src_mac[..], frame[6..12]);
    let l4 = start - 8;
    let ulen = usize::from(u16::from_be_bytes([frame[l4 + 4], frame[l4 + 5]]));
    assert!(p.payload.len() <= ulen.saturating_sub(8));

    let rebuilt = udp(
        p.src_mac,
        [2; 6],
        p.src,
        p.dst,
        (49152, p.dst_port),
        p.payload,
    )
    .expect("one family");
    let again = parse_udp(&rebuilt).expect("a frame udp() built parses");
    assert_eq!(
        (
            again.src,
            again.dst,
            again.dst_port,
            again.payload,
            again.ttl
        ),
        (p.src, p.dst, p.dst_port, p.payload, 255)
    );
});
