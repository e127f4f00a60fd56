//! The XDP data plane: loading the responder, attaching it to interfaces, and pinning it
//! so it outlives the daemon (a crashed daemon must leave a program that stops answering
//! when its lease lapses, not a bare interface whose kernel answers for stale VIPs).
//!
//! Layout of the pin directory:
//! - one file per map, named as in [`vip_common::maps`];
//! - `link_<ifname>`: the bpf_link attaching the responder to that interface, where vipd
//!   is alone on its XDP hook;
//! - `chain_<ifname>`: where another XDP program held the hook first, the program array
//!   through which vipd's copy there hands it every frame it passes (see `chain`);
//! - `tc_<ifname>`: the TCX link of the tc ingress classifier beside the responder, which
//!   gives frames VMAC acceptance readdressed the packet type "this host" (see
//!   `to_host`).

mod attach;
mod chain;
pub mod entries;
mod hook;
pub mod lb;
pub mod lower;
mod pin;
pub mod probe;
mod tables;
mod to_host;

use std::path::{Path, PathBuf};

use aya::{
    Ebpf, EbpfLoader,
    maps::ProgramArray,
    programs::{SchedClassifier, Xdp},
};
use vip_common::{maps, programs};

pub use attach::{AttachMode, ModePreference};
pub use hook::HookMode;
pub use lower::{Lower, lowers};
pub use pin::{BpffsError, ensure_bpffs};
pub use tables::Maps;

use tracing::warn;

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
    #[error("interface {interface}: {what}")]
    Chain { interface: String, what: String },
    #[error("{0}")]
    Kernel(String),
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
    /// Copies of the responder loaded for interfaces whose hook another program holds
    /// (see [`Dataplane::prepare_neighbours`]), by interface name.
    copies: std::collections::BTreeMap<String, chain::Copy>,
    /// Whether the load balancer is loaded beside the responder (and its copies).
    services: bool,
}

impl Dataplane {
    /// Loads the responder and the load balancer with their maps pinned under
    /// `pin_dir` (what tests and tools that write services use): [`Dataplane::open_for`]
    /// with services.
    pub fn open(pin_dir: &Path) -> Result<Self> {
        Self::open_for(pin_dir, true)
    }

    /// Loads the responder with its maps pinned under `pin_dir`, reusing maps already
    /// pinned there (a restart keeps every VIP and group state; nothing is flushed).
    ///
    /// `services`: whether the load balancer is wanted. Its maps take megabytes of kernel
    /// memory (`maps::LB_ONLY`), so without services they are not created full size nor
    /// pinned, the load balancer programs are not loaded, and whatever an earlier run
    /// left (pins, the tail-call slot, services) is removed: a node without services
    /// pays nothing for the load balancer.
    pub fn open_for(pin_dir: &Path, services: bool) -> Result<Self> {
        probe::require()?;
        ensure_bpffs(pin_dir)?;
        // Before loading: aya would otherwise reuse a same-named foreign map as ours.
        tables::check_pinned(pin_dir)?;
        if !services {
            // An earlier run's: the program it fed is replaced on the hook below, and
            // the maps go with it.
            for name in maps::LB_ONLY.iter().chain(&maps::LB_SHARED) {
                pin::remove_if_present(&pin_dir.join(name))?;
            }
            pin::remove_if_present(&pin_dir.join(maps::LB_PROGS))?;
        }
        let slot = services.then(|| pin_dir.join(maps::LB_PROGS));
        let mut ebpf = object_loader(pin_dir, services, slot)
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
        if services {
            install_load_balancer(&mut ebpf, programs::LOAD_BALANCER, maps::LB_PROGS)?;
        }
        to_host_mut(&mut ebpf)?
            .load()
            .map_err(|source| DataplaneError::Program {
                what: format!("loading {} into the kernel", programs::VMAC_TO_HOST),
                source: Box::new(source),
            })?;
        let maps = Maps::take(&mut ebpf, pin_dir, services)?;
        Ok(Self {
            ebpf,
            maps,
            pin_dir: pin_dir.to_owned(),
            copies: Default::default(),
            services,
        })
    }

    /// Whether the load balancer is loaded (see [`Dataplane::open_for`]).
    pub fn has_load_balancer(&self) -> bool {
        self.services
    }

    /// Loads, for each of `ifnames` whose XDP hook another program (or an earlier vipd's
    /// chaining copy) holds, the copy of the responder that will share it. Loading a
    /// program needs capabilities the daemon drops once started, attaching does not: the
    /// daemon calls this before dropping them. Returns what could not be prepared; those
    /// interfaces fail to attach later with the reason.
    pub fn prepare_neighbours<'a>(
        &mut self,
        ifnames: impl IntoIterator<Item = &'a str>,
    ) -> Vec<DataplaneError> {
        let mut failed = Vec::new();
        // Upper devices (bridges, VLANs, macvlans, bonds) carry the program on the devices
        // below them.
        let mut names = std::collections::BTreeSet::new();
        for ifname in ifnames {
            match nix::net::if_::if_nametoindex(ifname).map(lower::lowers) {
                Ok(Ok(l)) => names.extend(l.into_iter().map(|l| l.name)),
                _ => {
                    names.insert(ifname.to_owned());
                }
            }
        }
        for ifname in names.iter().map(String::as_str) {
            if self.link_path(ifname).exists() || self.copies.contains_key(ifname) {
                continue;
            }
            match chain::prepare(&self.pin_dir, ifname, self.services) {
                Ok(Some(copy)) => {
                    self.copies.insert(ifname.to_owned(), copy);
                }
                Ok(None) => {}
                Err(e) => failed.push(e),
            }
        }
        failed
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

    /// The loaded tc ingress classifier, e.g. for `BPF_PROG_TEST_RUN`.
    pub fn to_host(&mut self) -> Result<&mut SchedClassifier> {
        to_host_mut(&mut self.ebpf)
    }

    /// Attaches the responder to `ifname`, or atomically swaps it into the link pinned
    /// there by a previous run (no instant without a program on the interface). Where
    /// another XDP program holds the interface, takes the hook from it atomically and
    /// chains it (see `chain`).
    ///
    /// The tc ingress classifier goes beside it (see `to_host`), wherever the responder
    /// runs rather than only where an instance has `vmac`: it reads one field of a frame
    /// the device classified as the host's (all of them on a NIC) and looks up only
    /// those "for another host", and an interface whose instances turn `vmac` on later
    /// (a reload) needs no second path. A kernel without
    /// TCX (before Linux 6.6) keeps the responder and loses only that: a warning.
    pub fn attach(&mut self, ifname: &str, mode: ModePreference) -> Result<AttachMode> {
        let attached = self.attach_responder(ifname, mode)?;
        let tc_path = self.pin_dir.join(format!("{}{ifname}", to_host::PREFIX));
        let program = to_host_mut(&mut self.ebpf)?;
        if let Err(error) = to_host::attach(program, ifname, &tc_path) {
            warn!(interface = ifname, error = %crate::error_chain(&error), "frames sent to a virtual MAC on this interface may not reach the host (VMAC mode on a veth)");
        }
        Ok(attached)
    }

    fn attach_responder(&mut self, ifname: &str, mode: ModePreference) -> Result<AttachMode> {
        let link_path = self.link_path(ifname);
        if !link_path.exists() {
            let ifindex = nix::net::if_::if_nametoindex(ifname)
                .map_err(|_| DataplaneError::NoSuchInterface(ifname.to_owned()))?;
            let on_hook = hook::query(ifindex).map_err(|source| DataplaneError::Io {
                what: format!("reading the XDP hook of {ifname}"),
                source,
            })?;
            if let Some(h) = on_hook {
                let want = match mode {
                    ModePreference::Auto => None,
                    ModePreference::Native => Some(HookMode::Native),
                    ModePreference::Generic => Some(HookMode::Generic),
                };
                // Prepared at start; loaded now only where this process still may (the
                // `vipd attach` command).
                let copy = match self.copies.remove(ifname) {
                    Some(c) => Some(c),
                    None => chain::prepare(&self.pin_dir, ifname, self.services)?,
                };
                let mode = if chain::is_ours(&self.pin_dir, h.prog_id) {
                    chain::resume(&self.pin_dir, ifname, ifindex, h, copy)?
                } else {
                    chain::take(&self.pin_dir, ifname, ifindex, h, want, copy)?
                };
                return Ok(AttachMode::Chained(mode));
            }
            // Alone on the hook: a chain left from an earlier run has nothing to serve.
            let _ = std::fs::remove_file(chain::chain_path(&self.pin_dir, ifname));
        }
        let program = responder_mut(&mut self.ebpf)?;
        attach::attach(program, ifname, &link_path, mode)
    }

    /// Detaches the responder from `ifname`: removes its pinned link, or gives the hook
    /// back to the program it chained there. Missing is fine.
    pub fn detach(pin_dir: &Path, ifname: &str) -> Result<bool> {
        let classified = attach::detach(&pin_dir.join(format!("{}{ifname}", to_host::PREFIX)))?;
        let chained = chain::release(pin_dir, ifname)?;
        let linked = attach::detach(&pin_dir.join(link_file(ifname)))?;
        Ok(chained || linked || classified)
    }

    /// Interfaces with a pinned link or chain under `pin_dir`.
    pub fn attached_interfaces(pin_dir: &Path) -> Result<Vec<String>> {
        pin::attached_interfaces(pin_dir)
    }

    /// What holds `ifname`'s XDP hook when it is not vipd (under `pin_dir`), in words:
    /// the program, its mode and what vipd does about it. `None` when the hook is free
    /// or vipd's own.
    pub fn neighbour(pin_dir: &Path, ifname: &str) -> Result<Option<String>> {
        let ifindex = nix::net::if_::if_nametoindex(ifname)
            .map_err(|_| DataplaneError::NoSuchInterface(ifname.to_owned()))?;
        let on_hook = hook::query(ifindex).map_err(|source| DataplaneError::Io {
            what: format!("reading the XDP hook of {ifname}"),
            source,
        })?;
        Ok(on_hook
            .filter(|h| !chain::is_ours(pin_dir, h.prog_id))
            .map(|h| chain::describe(&h, ifindex)))
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

/// The loader of one copy of vipd's object: every map it shares pinned under
/// `pin_dir`; the load balancer's own maps (`maps::LB_ONLY`) too with `services`, else
/// one-entry stand-ins that stay unpinned (and `maps::LB_SHARED` unpinned); the load
/// balancer's tail-call slot
/// (`maps::LB_SLOTS`) of this copy pinned at `slot` when given (a chaining copy pins
/// its slot once it is on the hook). `CHAIN` is left to the caller.
pub(crate) fn object_loader(
    pin_dir: &Path,
    services: bool,
    slot: Option<PathBuf>,
) -> EbpfLoader<'static> {
    let mut loader = EbpfLoader::new();
    for name in maps::ALL {
        if maps::LB_SLOTS.contains(&name) {
            continue;
        }
        if !services && maps::LB_ONLY.contains(&name) {
            loader.map_max_entries(name, 1);
            continue;
        }
        if !services && maps::LB_SHARED.contains(&name) {
            // Each copy's own, empty: its lookup stays off.
            continue;
        }
        loader.map_pin_path(name, pin_dir.join(name));
    }
    if let Some(path) = slot {
        loader.map_pin_path(maps::LB_PROGS, path);
    }
    loader
}

/// Loads the load balancer `program` and puts it in the tail-call slot `slot` of the
/// responder of its kind (frags-aware or not: see `vip-ebpf/src/lb.rs`), replacing the one
/// a previous run left in the pinned map (one write: packets go to the old program or the
/// new one).
pub(crate) fn install_load_balancer(
    ebpf: &mut Ebpf,
    program: &'static str,
    slot: &'static str,
) -> Result<()> {
    let lb: &mut Xdp = ebpf
        .program_mut(program)
        .ok_or(DataplaneError::MissingProgram(program))?
        .try_into()
        .map_err(|source| DataplaneError::Program {
            what: format!("{program} is not an XDP program"),
            source: Box::new(source),
        })?;
    lb.load().map_err(|source| DataplaneError::Program {
        what: format!("loading {program} into the kernel"),
        source: Box::new(source),
    })?;
    let fd = lb
        .fd()
        .map_err(|source| DataplaneError::Program {
            what: format!("the file descriptor of {program}"),
            source: Box::new(source),
        })?
        .try_clone()
        .map_err(|source| DataplaneError::Io {
            what: format!("duplicating the file descriptor of {program}"),
            source,
        })?;
    let map = ebpf.map_mut(slot).ok_or(DataplaneError::MissingMap(slot))?;
    let mut slots = ProgramArray::try_from(map).map_err(|source| DataplaneError::Map {
        what: slot.into(),
        source: Box::new(source),
    })?;
    slots.set(0, &fd, 0).map_err(|source| DataplaneError::Map {
        what: format!("putting {program} in its tail-call slot"),
        source: Box::new(source),
    })
}

fn to_host_mut(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier> {
    ebpf.program_mut(programs::VMAC_TO_HOST)
        .ok_or(DataplaneError::MissingProgram(programs::VMAC_TO_HOST))?
        .try_into()
        .map_err(|source| DataplaneError::Program {
            what: format!("{} is not a tc classifier", programs::VMAC_TO_HOST),
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
