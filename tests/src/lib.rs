//! Harness for vipd's privileged tests.

pub mod frames;
pub mod lab;
pub mod scenarios;
pub mod wire;
pub mod xdp;

/// Panics with a clear message unless running as root: these tests load XDP programs and
/// create network namespaces, and CI runs them as root (they never skip).
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "privileged test: run as root (`cargo xtask test`)"
    );
}
