//! Attaching through pinned bpf_links, so the program survives the daemon and a restart
//! replaces it atomically.

use std::path::Path;

use aya::programs::{
    Xdp, XdpMode,
    links::{FdLink, LinkError, PinnedLink},
    xdp::XdpLink,
};
use tracing::{info, warn};

use super::{DataplaneError, Result};

/// Which XDP mode to ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModePreference {
    /// Native (driver) mode, falling back to generic with a warning.
    #[default]
    Auto,
    /// Native mode or fail.
    Native,
    /// Generic (skb) mode.
    Generic,
}

/// How the program ended up attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    Native,
    Generic,
    /// A link pinned by an earlier run was updated in place; its mode is unchanged.
    Replaced,
    /// Another XDP program held the interface: vipd took the hook from it atomically, in
    /// its mode, and hands it every frame it passes (see `chain`).
    Chained(super::HookMode),
}

pub(super) fn attach(
    program: &mut Xdp,
    ifname: &str,
    link_path: &Path,
    mode: ModePreference,
) -> Result<AttachMode> {
    if link_path.exists() {
        match replace_pinned(program, link_path) {
            Ok(()) => {
                info!(interface = ifname, link = %link_path.display(), "replaced program in pinned link");
                return Ok(AttachMode::Replaced);
            }
            Err(error) => {
                // A link whose interface vanished is defunct and cannot be updated.
                warn!(interface = ifname, error = %crate::error_chain(&error), "pinned link unusable, attaching afresh");
                std::fs::remove_file(link_path).map_err(|source| DataplaneError::Io {
                    what: format!("removing stale link {}", link_path.display()),
                    source,
                })?;
            }
        }
    }
    let ifindex = nix::net::if_::if_nametoindex(ifname)
        .map_err(|_| DataplaneError::NoSuchInterface(ifname.to_owned()))?;
    let (link_id, attached) = match mode {
        ModePreference::Native => (
            try_attach(program, ifname, ifindex, XdpMode::Driver)?,
            AttachMode::Native,
        ),
        ModePreference::Generic => (
            try_attach(program, ifname, ifindex, XdpMode::Skb)?,
            AttachMode::Generic,
        ),
        ModePreference::Auto => match try_attach(program, ifname, ifindex, XdpMode::Driver) {
            Ok(id) => (id, AttachMode::Native),
            Err(error) => {
                warn!(interface = ifname, error = %crate::error_chain(&error), "native XDP unavailable, using generic mode (slower)");
                (
                    try_attach(program, ifname, ifindex, XdpMode::Skb)?,
                    AttachMode::Generic,
                )
            }
        },
    };
    let link = program
        .take_link(link_id)
        .map_err(|source| DataplaneError::Program {
            what: format!("taking the link on {ifname}"),
            source: Box::new(source),
        })?;
    let fd_link: FdLink = link.try_into().map_err(|source| DataplaneError::Link {
        what: format!("XDP on {ifname} was attached without a bpf_link (needs Linux 5.9+)"),
        source: Box::new(source),
    })?;
    fd_link
        .pin(link_path)
        .map_err(|source| DataplaneError::Pin {
            path: link_path.to_owned(),
            source: Box::new(source),
        })?;
    info!(interface = ifname, mode = ?attached, link = %link_path.display(), "attached");
    Ok(attached)
}

fn try_attach(
    program: &mut Xdp,
    ifname: &str,
    ifindex: u32,
    mode: XdpMode,
) -> Result<aya::programs::xdp::XdpLinkId> {
    program
        .attach_to_if_index(ifindex, mode)
        .map_err(|source| DataplaneError::Program {
            what: format!("attaching to {ifname} in {mode:?} mode"),
            source: Box::new(source),
        })
}

fn replace_pinned(program: &mut Xdp, link_path: &Path) -> Result<()> {
    let xdp_link: XdpLink = open_pinned(link_path, "an XDP")?;
    let id = program
        .attach_to_link(xdp_link)
        .map_err(|source| DataplaneError::Program {
            what: format!("updating {}", link_path.display()),
            source: Box::new(source),
        })?;
    let link = program
        .take_link(id)
        .map_err(|source| DataplaneError::Program {
            what: "taking the updated link".into(),
            source: Box::new(source),
        })?;
    keep_pinned(link, "link")
}

/// The link pinned at `link_path`, as the program type's own link (`kind` names it in
/// the error), for `attach_to_link` to swap the program in place.
pub(super) fn open_pinned<L>(link_path: &Path, kind: &str) -> Result<L>
where
    L: TryFrom<FdLink, Error = LinkError>,
{
    let pinned = PinnedLink::from_pin(link_path).map_err(|source| DataplaneError::Link {
        what: format!("opening {}", link_path.display()),
        source: Box::new(source),
    })?;
    L::try_from(FdLink::from(pinned)).map_err(|source| DataplaneError::Link {
        what: format!("{} is not {kind} link", link_path.display()),
        source: Box::new(source),
    })
}

/// Lets go of an updated link without detaching it: the pin keeps it attached, and
/// dropping the program's own handle would not.
pub(super) fn keep_pinned<L>(link: L, what: &str) -> Result<()>
where
    FdLink: TryFrom<L, Error = LinkError>,
{
    let _fd = FdLink::try_from(link).map_err(|source| DataplaneError::Link {
        what: format!("converting the updated {what}"),
        source: Box::new(source),
    })?;
    Ok(())
}

pub(super) fn detach(link_path: &Path) -> Result<bool> {
    if !link_path.exists() {
        return Ok(false);
    }
    let pinned = PinnedLink::from_pin(link_path).map_err(|source| DataplaneError::Link {
        what: format!("opening {}", link_path.display()),
        source: Box::new(source),
    })?;
    // Unpinning drops the last reference once our fd closes: the program detaches.
    pinned.unpin().map_err(|source| DataplaneError::Io {
        what: format!("unpinning {}", link_path.display()),
        source,
    })?;
    Ok(true)
}
