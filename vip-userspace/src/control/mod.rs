//! What operators see: the status snapshot, the control socket `vipd status` talks to,
//! Prometheus metrics, and notify hooks.

pub mod accept;
pub mod metrics;
pub mod notify;
pub mod socket;
pub mod status;

pub use status::{
    BfdSessionStatus, BfdSummary, InstanceStatus, Status, TrackStatus, TransitionStatus,
};
