//! vipd: a VRRP daemon whose packet path runs in XDP.
//!
//! The crate is both the `vipd` binary and a library, so the privileged tests and the
//! benchmarks drive exactly the code operators run.

pub mod check;
pub mod checksum;
pub mod cli;
pub mod config;
#[cfg(test)]
mod conformance;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod exec;
pub mod import;
pub mod lb;
pub mod memory;
pub mod net;
pub mod objects;
pub mod track;
pub mod vrrp;
pub mod worker;

/// An error with its whole cause chain on one line (`summary: cause: cause`), for logs:
/// a failed map write or netlink call must show its errno, not only what was attempted.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}
