//! The VRRP protocol core: pure code, no I/O, no clock. It owns its input types
//! ([`instance`]); the configuration layer (`config/core.rs`) produces them, and nothing
//! here reads the configuration's model.
//!
//! - [`instance`]: what the core knows of a virtual router: its identity, and everything
//!   a running one could change in place.
//! - [`packet`]: advertisements on the wire (v2 and v3, IPv4 and IPv6), checksums.
//! - [`timing`]: [`Time`] as an input, the [`Interval`] type, Skew_Time and
//!   Master_Down_Interval.
//! - [`machine`]: one virtual router's RFC 9568 state machine (`now` in, actions out,
//!   `poll_at` for the next deadline), including the list of RFC 9568 differences it
//!   follows.
//! - [`sync`]: sync groups coordinating several machines.
//! - [`admission`]: which received advertisements an instance acts on (the XDP program
//!   applies the same rules).
//! - [`tracking`]: what tracked interfaces, scripts and files do to priority and FAULT.
//! - [`announce`]: the gratuitous ARP / unsolicited NA schedule.
//! - [`group`]: everything decided for a group beyond the machines: the data-plane slot
//!   and its lease, the takeover guard, make-before-break handover, addresses,
//!   announcements, advert validation and tracking.
//! - [`bfd`]: one BFD session's state machine and codec; [`liveness`]: the node's
//!   sessions, the instances they are for and the hooks those run, and which echoes
//!   count.
//! - [`notify`]: what notify programs are told (the words for states and diagnostics).
//! - [`carp`]: CARP's advertisement, HMAC, replay counter and election rules.
//! - [`listen`]: which VRRP the socket of an interface reads at all (its filter).
//! - [`node`]: every group of the node, event routing, and the preparation queue;
//!   [`schedule`] says which group is due next.
//! - [`change`]: what a reload does to one running instance (unchanged, changed in
//!   place, restarted) and why.
//! - [`plan`]: what start-up, a reload and an interface rebuild do (keep, update, stop,
//!   start), which slot a new group takes, whether it resumes.
//! - [`source`]: the address advertisements come from.
//!
//! `vip-userspace/tests/conformance/` holds recorded input streams with the outputs they
//! must produce, replayed through the node by a unit test (`crate::conformance`, on the
//! stream machinery in `replay`).

pub mod admission;
pub mod announce;
pub mod bfd;
pub mod carp;
pub mod change;
pub mod group;
pub mod instance;
pub mod listen;
pub mod liveness;
pub mod machine;
pub mod node;
#[cfg(test)]
mod node_carp_tests;
pub mod notify;
pub mod packet;
pub mod plan;
#[cfg(test)]
pub(crate) mod replay;
pub mod schedule;
pub mod source;
pub mod sync;
pub mod timing;
pub mod tracking;

pub use machine::{Action, Actions, Config, ConfigError, Event, Machine, Reason, State};
pub use packet::{Advert, DecodeError, EncodeError, Family, Version};
pub use sync::{MemberAction, SyncGroup};
pub use timing::{Interval, Time};
