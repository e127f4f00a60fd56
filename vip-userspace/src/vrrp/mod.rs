//! The VRRP protocol core: pure code, no I/O, no clock.
//!
//! - [`packet`]: advertisements on the wire (v2 and v3, IPv4 and IPv6), checksums.
//! - [`timing`]: [`Time`] as an input, the [`Interval`] type, Skew_Time and
//!   Master_Down_Interval.
//! - [`machine`]: one virtual router's RFC 9568 state machine (`now` in, actions out,
//!   `poll_at` for the next deadline), including the list of RFC 9568 differences it
//!   follows.
//! - [`sync`]: sync groups coordinating several machines.

pub mod machine;
pub mod packet;
pub mod sync;
pub mod timing;

pub use machine::{Action, Actions, Config, ConfigError, Event, Machine, Reason, State};
pub use packet::{Advert, DecodeError, EncodeError, Family, Version};
pub use sync::{MemberAction, SyncGroup};
pub use timing::{Interval, Time};
