//! Returning BFD Echo packets (`Echo::decode`), alone and inside the frame the Echo
//! socket receives (`parse_udp` then `Echo::decode`, as the daemon reads them).
//!
//! Beyond "never panics": only `ECHO_LEN` bytes with vipd's magic and format are taken, and an
//! accepted echo re-encodes to the same session and sequence number in the same bytes
//! (the three reserved bytes aside), nonce included.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::net::frames::parse_udp;
use vipd::vrrp::bfd::packet::{ECHO_LEN, Echo};

fn check(bytes: &[u8]) {
    let Some(echo) = Echo::decode(bytes) else {
        return;
    };
    assert_eq!(bytes.len(), ECHO_LEN);
    let encoded = echo.encode();
    assert_eq!(encoded[..5], bytes[..5]);
    assert_eq!(encoded[8..], bytes[8..]);
    assert_eq!(Echo::decode(&encoded), Some(echo));
}

fuzz_target!(|bytes: &[u8]| {
    check(bytes);
    if let Some(p) = parse_udp(bytes) {
        check(p.payload);
    }
});
