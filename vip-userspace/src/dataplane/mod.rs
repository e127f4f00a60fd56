//! The XDP data plane: loading the responder, attaching it to interfaces, and pinning it
//! so it outlives the daemon (a crashed daemon must leave a program that stops answering
//! when its lease lapses, not a bare interface whose kernel answers for stale VIPs).
//!
//! Layout of the pin directory:
//! - one file per map, named as in [`vip_common::maps`];
//! - `link_<ifname>`: the bpf_link attaching the responder to that interface.

mod attach;
pub mod lb;
mod pin;
mod tables;

use std::path::{Path, PathBuf};

use aya::{Ebpf, EbpfLoader, maps::ProgramArray, programs::Xdp};
use vip_common::{maps, programs};

pub use attach::{AttachMode, ModePreference};
pub use pin::{BpffsError, ensure_bpffs};
pub use tables::Maps;

use crate::objects;

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error(transparent)]
    Bpffs(#[from] BpffsError),
    #[error("loading the XDP object (maps pinned under {dir})")]
    Load {
        dir: PathBuf,
        #[source]
        source: Box<aya::EbpfError>,
    },
    #[error("program {0} is missing from the embedded object")]
    MissingProgram(&'static str),
    #[error("map {0} is missing from the embedded object")]
    MissingMap(&'static str),
    #[error("{what}")]
    Program {
        what: String,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("interface {0} does not exist")]
    NoSuchInterface(String),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Link {
        what: String,
        #[source]
        source: Box<aya::programs::links::LinkError>,
    },
    #[error("{path} is not vipd's: {what}; remove it or choose another pin_path")]
    ForeignPin { path: PathBuf, what: String },
    #[error("{what}")]
    Map {
        what: String,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    #[error("more {what} than the data plane holds ({max})")]
    Capacity { what: &'static str, max: u32 },
    #[error("pinning {path}")]
    Pin {
        path: PathBuf,
        #[source]
        source: Box<aya::pin::PinError>,
    },
}

pub type Result<T, E = DataplaneError> = std::result::Result<T, E>;

/// The responder loaded in the kernel, its maps pinned under `pin_dir`.
pub struct Dataplane {
    ebpf: Ebpf,
    maps: Maps,
    pin_dir: PathBuf,
}

impl Dataplane {
    /// Loads the responder with its maps pinned under `pin_dir`, reusing maps already pinned
    /// there (a restart keeps every VIP and group state; nothing is flushed).
    pub fn open(pin_dir: &Path) -> Result<Self> {
        ensure_bpffs(pin_dir)?;
        // Before loading: aya would otherwise reuse a same-named foreign map as ours.
        tables::check_pinned(pin_dir)?;
        let paths: Vec<(&'static str, PathBuf)> =
            maps::ALL.iter().map(|m| (*m, pin_dir.join(m))).collect();
        let mut loader = EbpfLoader::new();
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader
            .load(objects::RESPONDER)
            .map_err(|source| DataplaneError::Load {
                dir: pin_dir.to_owned(),
                source: Box::new(source),
            })?;
        let program = responder_mut(&mut ebpf)?;
        program.load().map_err(|source| DataplaneError::Program {
            what: format!("loading {} into the kernel", programs::RESPONDER),
            source: Box::new(source),
        })?;
        install_load_balancer(&mut ebpf)?;
        let maps = Maps::take(&mut ebpf)?;
        Ok(Self {
            ebpf,
            maps,
            pin_dir: pin_dir.to_owned(),
        })
    }

    pub fn maps(&self) -> &Maps {
        &self.maps
    }

    pub fn maps_mut(&mut self) -> &mut Maps {
        &mut self.maps
    }

    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// The loaded responder program, e.g. for `BPF_PROG_TEST_RUN`.
    pub fn responder(&mut self) -> Result<&mut Xdp> {
        responder_mut(&mut self.ebpf)
    }

    /// Attaches the responder to `ifname`, or atomically swaps it into the link pinned
    /// there by a previous run (no instant without a program on the interface).
    pub fn attach(&mut self, ifname: &str, mode: ModePreference) -> Result<AttachMode> {
        let link_path = self.link_path(ifname);
        let program = responder_mut(&mut self.ebpf)?;
        attach::attach(program, ifname, &link_path, mode)
    }

    /// Detaches the responder from `ifname` (removes its pinned link). Missing is fine.
    pub fn detach(pin_dir: &Path, ifname: &str) -> Result<bool> {
        attach::detach(&pin_dir.join(link_file(ifname)))
    }

    /// Interfaces with a pinned link under `pin_dir`.
    pub fn attached_interfaces(pin_dir: &Path) -> Result<Vec<String>> {
        pin::attached_interfaces(pin_dir)
    }

    /// Removes every pinned map and the directory itself once no link is left in it.
    /// Maps stay alive while a loaded program still references them.
    pub fn unpin_maps(pin_dir: &Path) -> Result<()> {
        pin::unpin_maps(pin_dir)
    }

    fn link_path(&self, ifname: &str) -> PathBuf {
        self.pin_dir.join(link_file(ifname))
    }
}

fn link_file(ifname: &str) -> String {
    format!("{}{ifname}", pin::LINK_PREFIX)
}

/// Loads the load balancer and puts it in the responder's tail-call slot, replacing the
/// one a previous run left in the pinned `LB_PROGS` (one write: packets go to the old
/// program or the new one).
fn install_load_balancer(ebpf: &mut Ebpf) -> Result<()> {
    let lb: &mut Xdp = ebpf
        .program_mut(programs::LOAD_BALANCER)
        .ok_or(DataplaneError::MissingProgram(programs::LOAD_BALANCER))?
        .try_into()
        .map_err(|source| DataplaneError::Program {
            what: format!("{} is not an XDP program", programs::LOAD_BALANCER),
            source: Box::new(source),
        })?;
    lb.load().map_err(|source| DataplaneError::Program {
        what: format!("loading {} into the kernel", programs::LOAD_BALANCER),
        source: Box::new(source),
    })?;
    let fd = lb
        .fd()
        .map_err(|source| DataplaneError::Program {
            what: format!("the file descriptor of {}", programs::LOAD_BALANCER),
            source: Box::new(source),
        })?
        .try_clone()
        .map_err(|source| DataplaneError::Io {
            what: format!(
                "duplicating the file descriptor of {}",
                programs::LOAD_BALANCER
            ),
            source,
        })?;
    let map = ebpf
        .map_mut(maps::LB_PROGS)
        .ok_or(DataplaneError::MissingMap(maps::LB_PROGS))?;
    let mut slots = ProgramArray::try_from(map).map_err(|source| DataplaneError::Map {
        what: maps::LB_PROGS.into(),
        source: Box::new(source),
    })?;
    slots.set(0, &fd, 0).map_err(|source| DataplaneError::Map {
        what: "putting the load balancer in its tail-call slot".into(),
        source: Box::new(source),
    })
}

fn responder_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp> {
    ebpf.program_mut(programs::RESPONDER)
        .ok_or(DataplaneError::MissingProgram(programs::RESPONDER))?
        .try_into()
        .map_err(|source| DataplaneError::Program {
            what: format!("{} is not an XDP program", programs::RESPONDER),
            source: Box::new(source),
        })
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock `bpf_ktime_get_ns` reads, used for leases.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}
