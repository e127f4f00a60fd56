//! vipd: a VRRP daemon whose packet path runs in XDP.
//!
//! The crate is both the `vipd` binary and a library, so the privileged tests and the
//! benchmarks drive exactly the code operators run.

pub mod checksum;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod net;
pub mod objects;
pub mod track;
pub mod vrrp;
