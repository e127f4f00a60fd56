//! What operators see and say: the status snapshot, the control socket (`vipd status`,
//! `vipd reload`, the maintenance commands), the event stream (`vipd events`), Prometheus
//! metrics, and notify hooks.

pub mod accept;
pub mod events;
pub mod metrics;
pub mod notify;
pub mod socket;
pub mod status;

pub use status::{
    BfdSessionStatus, BfdSummary, InstanceStatus, Status, TrackStatus, TransitionStatus,
};
