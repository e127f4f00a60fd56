//! The XDP programs vipd ships, built by `build.rs` from `vip-ebpf` and embedded in the
//! binary so vipd never depends on files installed beside it. (The benchmark's own
//! programs are embedded by the bench crate only: `tests/bench/src/objects.rs`.)

/// The responder: ARP / NS answers, VRRP admission, VMAC acceptance.
pub static RESPONDER: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vip-xdp"));

/// A program that passes everything (for the far end of veth pairs, see docs/architecture.md, kernel facts).
pub static PASS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vip-pass"));
