//! Tracking watchers: they observe tracked scripts, files and processes off the event
//! loop and report what they see as [`TrackItem`]s; what that means for priority and
//! FAULT is decided in `crate::vrrp::tracking`. Interfaces need no watcher: the daemon's
//! link events carry them.

pub mod connector;
pub mod file;
pub mod process;
pub mod script;

pub use crate::vrrp::tracking::TrackItem;

/// Whom a watcher reports for: a running group and the member's index in it. Group ids are
/// never reused, so a report from a watcher of a group a reload replaced is stale and
/// ignored.
pub type Report = (crate::vrrp::node::GroupId, usize);
