//! Least privilege: once the data plane is loaded and the listeners are bound, the
//! daemon keeps only the capabilities it still uses, in every set (bounding, permitted,
//! effective; inheritable and ambient empty). Threads take the set of the thread that
//! starts them, so this runs before any worker thread exists, and scripts run as root
//! inherit no more than this either. docs/operations.md and the README name the sets; a
//! lab test reads them back from `/proc`.
//!
//! What each kept capability is for:
//! - `CAP_NET_ADMIN`: addresses, routes, rules, unicast filter entries, attaching the XDP
//!   program to an interface that appears later;
//! - `CAP_NET_RAW`: the VRRP and AF_PACKET sockets of interfaces that appear later;
//! - `CAP_BPF`: every bpf() call (map writes, links), which Debian's
//!   `kernel.unprivileged_bpf_disabled` reserves to it;
//! - with `script_user` only: `CAP_SETUID` and `CAP_SETGID` to start scripts as that user,
//!   `CAP_KILL` to kill their process group on timeout.

use anyhow::{Context as _, Result};
use caps::{CapSet, Capability, CapsHashSet};

/// Makes the calling thread (the event loop) a SCHED_RR thread at `priority`, unless it
/// is 0. Threads and processes it starts later are ordinary again (SCHED_RESET_ON_FORK),
/// so only the loop itself is real-time. Needs CAP_SYS_NICE: call before [`drop_to`].
pub fn realtime(priority: u8) -> Result<()> {
    if priority == 0 {
        return Ok(());
    }
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: sched_setscheduler on the calling thread (0) with a valid parameter.
    let r =
        unsafe { libc::sched_setscheduler(0, libc::SCHED_RR | libc::SCHED_RESET_ON_FORK, &param) };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("setting SCHED_RR priority {priority}"));
    }
    Ok(())
}

/// The capabilities a running daemon keeps.
pub fn kept(script_user: bool) -> CapsHashSet {
    let mut keep: CapsHashSet = [
        Capability::CAP_NET_ADMIN,
        Capability::CAP_NET_RAW,
        Capability::CAP_BPF,
    ]
    .into_iter()
    .collect();
    if script_user {
        keep.extend([
            Capability::CAP_SETUID,
            Capability::CAP_SETGID,
            Capability::CAP_KILL,
        ]);
    }
    keep
}

/// Drops every capability but [`kept`] from the calling thread, for good.
pub fn drop_to(keep: &CapsHashSet) -> Result<()> {
    // The bounding set first: dropping from it needs CAP_SETPCAP, which goes last.
    for cap in caps::all() {
        if !keep.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap)
                .with_context(|| format!("dropping {cap} from the bounding set"))?;
        }
    }
    let permitted = caps::read(None, CapSet::Permitted).context("reading the permitted set")?;
    let mut missing: Vec<String> = keep
        .iter()
        .filter(|c| !permitted.contains(c))
        .map(|c| c.to_string())
        .collect();
    if !missing.is_empty() {
        missing.sort();
        anyhow::bail!(
            "vipd needs {} and was started without (a service's CapabilityBoundingSet or \
             AmbientCapabilities must include it)",
            missing.join(", ")
        );
    }
    caps::clear(None, CapSet::Ambient).context("clearing the ambient set")?;
    caps::clear(None, CapSet::Inheritable).context("clearing the inheritable set")?;
    caps::set(None, CapSet::Effective, keep).context("setting the effective set")?;
    caps::set(None, CapSet::Permitted, keep).context("setting the permitted set")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Capabilities are per thread: a thread of its own drops them and reads them back,
    /// leaving the test runner alone. Needs root, as the daemon does.
    #[test]
    fn a_thread_keeps_exactly_the_named_capabilities() {
        for script_user in [false, true] {
            let keep = kept(script_user);
            let expected = keep.clone();
            let sets = std::thread::spawn(move || {
                drop_to(&keep).expect("root can drop capabilities");
                [
                    CapSet::Bounding,
                    CapSet::Permitted,
                    CapSet::Effective,
                    CapSet::Inheritable,
                    CapSet::Ambient,
                ]
                .map(|s| caps::read(None, s).expect("readable"))
            })
            .join()
            .expect("thread ran");
            let [bounding, permitted, effective, inheritable, ambient] = sets;
            assert_eq!(bounding, expected);
            assert_eq!(permitted, expected);
            assert_eq!(effective, expected);
            assert!(inheritable.is_empty() && ambient.is_empty());
        }
        assert_eq!(kept(false).len(), 3);
        assert_eq!(kept(true).len(), 6);
    }
}
