//! The load balancer's decisions, pure like the VRRP core (`vrrp/`): no I/O, no clock.
//!
//! - `maglev`: the weighted consistent-hash table the XDP program reads.
//! - `health`: each real server's health from check results (keepalived's `retry`,
//!   `delay_before_retry`, `alpha`, `inhibit_on_failure`), the weighted set that
//!   follows, the quorum with its hysteresis and the sorry server.
//! - `service`: the input types (a service, its real servers, their checks) that the
//!   configuration produces, and the data-plane entries they become.
//!
//! The checkers that produce the results do their I/O elsewhere (`check/`), off the
//! daemon's event loop.

pub mod health;
pub mod maglev;
pub mod service;
