//! Tracking watchers: they observe tracked scripts, files and processes off the event
//! loop and report what they see as [`TrackItem`]s; what that means for priority and
//! FAULT is decided in `crate::vrrp::tracking`. Interfaces need no watcher: the daemon's
//! link events carry them.

pub mod connector;
pub mod file;
pub mod process;
pub mod script;

pub use crate::vrrp::tracking::TrackItem;

/// Which watcher reports: the daemon knows which instance and tracked item each one is
/// for (`daemon/watch.rs`), so a reload that keeps an instance keeps its watchers, wherever
/// the instance now runs. A report from a watcher that was stopped is stale and ignored.
pub type Report = u64;
