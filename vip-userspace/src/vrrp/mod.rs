//! The VRRP protocol core: pure code, no I/O, no clock.
//!
//! - [`packet`]: advertisements on the wire (v2 and v3, IPv4 and IPv6), checksums.
//! - [`timing`]: [`Time`] as an input, the [`Interval`] type, Skew_Time and
//!   Master_Down_Interval.

pub mod packet;
pub mod timing;

pub use packet::{Advert, DecodeError, EncodeError, Family, Version};
pub use timing::{Interval, Time};
