//! The tc ingress classifier that hands the host the frames VMAC acceptance readdressed
//! (`vip-ebpf/src/vmac.rs`): a veth classifies a frame as "for another host" before XDP
//! runs and keeps that type after the responder rewrote its destination to the
//! interface's MAC, so IP would drop it. The classifier knows the MACs the responder
//! readdresses to from `HOST_MACS`, written with the `VMACS` entries (`entries`). Attached through a TCX bpf_link pinned as
//! `tc_<ifname>` beside the responder's `link_<ifname>`, so it outlives the daemon with
//! the responder, a restart swaps its program in place (never a second copy), and no
//! qdisc is created or touched: another tool's clsact qdisc and filters stay as they
//! are, and run after it (it always returns `TC_ACT_UNSPEC`).

use std::path::Path;

use aya::programs::{
    LinkOrder, SchedClassifier, TcAttachType,
    links::FdLink,
    tc::{SchedClassifierLink, TcAttachOptions},
};
use tracing::{info, warn};

use super::{
    DataplaneError, Result,
    attach::{keep_pinned, open_pinned},
};

pub(super) const PREFIX: &str = "tc_";

/// Attaches `program` to `ifname`'s tc ingress, or swaps it into the link a previous run
/// pinned at `link_path`.
pub(super) fn attach(program: &mut SchedClassifier, ifname: &str, link_path: &Path) -> Result<()> {
    if link_path.exists() {
        match replace_pinned(program, link_path) {
            Ok(()) => {
                info!(interface = ifname, link = %link_path.display(), "replaced tc classifier in pinned link");
                return Ok(());
            }
            Err(error) => {
                // A link whose interface vanished is defunct and cannot be updated.
                warn!(interface = ifname, error = %crate::error_chain(&error), "pinned tc link unusable, attaching afresh");
                super::pin::remove_if_present(&link_path.to_owned())?;
            }
        }
    }
    let id = program
        .attach_with_options(
            ifname,
            TcAttachType::Ingress,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        )
        .map_err(|source| DataplaneError::Program {
            what: format!("attaching the tc ingress classifier to {ifname} (TCX, Linux 6.6+)"),
            source: Box::new(source),
        })?;
    let link = program
        .take_link(id)
        .map_err(|source| DataplaneError::Program {
            what: format!("taking the tc link on {ifname}"),
            source: Box::new(source),
        })?;
    let fd_link: FdLink = link.try_into().map_err(|source| DataplaneError::Link {
        what: format!("the tc classifier on {ifname} was attached without a bpf_link"),
        source: Box::new(source),
    })?;
    fd_link
        .pin(link_path)
        .map_err(|source| DataplaneError::Pin {
            path: link_path.to_owned(),
            source: Box::new(source),
        })?;
    info!(interface = ifname, link = %link_path.display(), "tc ingress classifier attached");
    Ok(())
}

fn replace_pinned(program: &mut SchedClassifier, link_path: &Path) -> Result<()> {
    let tc_link: SchedClassifierLink = open_pinned(link_path, "a TCX")?;
    let id = program
        .attach_to_link(tc_link)
        .map_err(|source| DataplaneError::Program {
            what: format!("updating {}", link_path.display()),
            source: Box::new(source),
        })?;
    let link = program
        .take_link(id)
        .map_err(|source| DataplaneError::Program {
            what: "taking the updated tc link".into(),
            source: Box::new(source),
        })?;
    keep_pinned(link, "tc link")
}
