//! BFD Control packets as they arrive in a UDP payload (`Control::decode`).
//!
//! Beyond "never panics": an accepted packet re-encodes to the 24-byte form that decodes
//! to the same fields, and a rejection names a length that is the input's.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::vrrp::bfd::packet::{BfdError, CONTROL_LEN, Control};

fuzz_target!(|bytes: &[u8]| {
    match Control::decode(bytes) {
        Ok(control) => {
            assert!(bytes.len() >= CONTROL_LEN);
            let encoded = control.encode();
            assert_eq!(Control::decode(&encoded), Ok(control));
            // Only the bits the codec drops may differ (unknown diagnostics, the length
            // field, anything after it): the words are copied exactly.
            assert_eq!(encoded[2], bytes[2]);
            assert_eq!(encoded[4..CONTROL_LEN], bytes[4..CONTROL_LEN]);
        }
        Err(BfdError::Short { len }) => {
            assert_eq!(len, bytes.len());
            assert!(len < CONTROL_LEN);
        }
        Err(BfdError::Length { field, len }) => {
            assert_eq!(len, bytes.len());
            assert!(field < CONTROL_LEN || field > len);
        }
        Err(_) => assert!(bytes.len() >= CONTROL_LEN),
    }
});
