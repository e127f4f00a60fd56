//! Sharing an interface with an XDP program that held it before vipd.
//!
//! vipd takes the hook with one atomic replace (netlink, `XDP_FLAGS_REPLACE` with the
//! other program expected) and hands every frame it passes on to that program with a
//! tail call through the responder's `CHAIN` map (`vip-ebpf/src/chain.rs`). From the
//! first frame on, the other program sees everything vipd does not answer or drop,
//! exactly as before. The copy of the responder running there has its own `CHAIN`, pinned
//! as `chain_<ifname>` in the pin directory; it outlives the daemon like a pinned link, so
//! a crashed or upgraded vipd leaves the other program running behind it, and the next
//! vipd replaces its own copy atomically again. Stopping gives the hook back with one
//! atomic replace the other way.
//!
//! Pins per chained interface: `chain_<ifname>` (the `CHAIN` map), `chained_<ifname>`
//! (the other program) and `xdp_<ifname>` (vipd's copy on the hook). The daemon works
//! without `CAP_SYS_ADMIN`, so it never opens a program by its id: it finds the other
//! program's pin (xdp-tools and libxdp pin theirs) by scanning bpffs, and its own through
//! these pins.
//!
//! Why not join libxdp's dispatcher as one of its components (docs/operations.md, "Other
//! XDP programs"): components are `freplace` programs, which this kernel refuses to load
//! at all, and a component that changes packet length (vipd trims replies with
//! `bpf_xdp_adjust_tail`) cannot replace the stubs of the dispatcher Debian's libxdp 1.3.1
//! builds on kernels from 6.14 on. A tail call needs neither. A libxdp dispatcher already
//! on the interface is chained like any other program.

use std::{
    os::fd::AsFd as _,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf,
    maps::{MapData, ProgramArray},
    programs::{ProgramFd, Xdp, links::PinnedLink},
};
use aya_obj::programs::XdpAttachType;
use tracing::{info, warn};
use vip_common::{CHAIN, maps, programs};

use super::{
    DataplaneError, Result,
    hook::{self, Hook, HookMode},
};
use crate::objects;

pub(super) const CHAIN_PREFIX: &str = "chain_";
const CHAINED_PREFIX: &str = "chained_";
const OURS_PREFIX: &str = "xdp_";
const SLOT_PREFIX: &str = "lbprogs_";
/// Where bpffs is mounted on a standard system; searched for the other program's pin.
const BPFFS: &str = "/sys/fs/bpf";
/// Bounds of that search: directories deep, and entries looked at.
const SCAN_DEPTH: usize = 6;
const SCAN_ENTRIES: usize = 20_000;

/// A loaded program, opened through a pin.
pub struct Program {
    pub id: u32,
    pub name: String,
    xdp: Xdp,
}

impl Program {
    fn fd(&self) -> Result<&ProgramFd> {
        self.xdp.fd().map_err(|source| DataplaneError::Program {
            what: format!("the fd of {}", self.name),
            source: Box::new(source),
        })
    }
}

/// The program pinned at `path`, if it is one.
fn pinned(path: &Path) -> Option<Program> {
    let xdp = Xdp::from_pin(path, XdpAttachType::Interface).ok()?;
    let info = xdp.info().ok()?;
    Some(Program {
        id: info.id(),
        name: info.name_as_str().unwrap_or("?").to_owned(),
        xdp,
    })
}

/// The program with id `id`, found through a pin under bpffs (bounded search).
pub fn find(id: u32) -> Option<Program> {
    let mut stack = vec![(PathBuf::from(BPFFS), 0usize)];
    let mut seen = 0usize;
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            seen += 1;
            if seen > SCAN_ENTRIES {
                return None;
            }
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                if depth < SCAN_DEPTH {
                    stack.push((e.path(), depth + 1));
                }
            } else if let Some(p) = pinned(&e.path())
                && p.id == id
            {
                return Some(p);
            }
        }
    }
    None
}

/// Whether the program with id `id` is vipd's under `pin_dir`: a chaining copy pinned as
/// `xdp_<ifname>`, or the program of a link pinned as `link_<ifname>`.
pub fn is_ours(pin_dir: &Path, id: u32) -> bool {
    let Ok(entries) = std::fs::read_dir(pin_dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(OURS_PREFIX) {
            pinned(&e.path()).is_some_and(|p| p.id == id)
        } else if name.starts_with(super::pin::LINK_PREFIX) {
            PinnedLink::from_pin(e.path())
                .ok()
                .and_then(|l| aya::programs::links::FdLink::from(l).info().ok())
                .is_some_and(|i| i.program_id() == id)
        } else {
            false
        }
    })
}

/// What holds an interface's hook when it is not vipd, in words for `vipd check` and the
/// start-up log.
pub fn describe(hook: &Hook, ifindex: u32) -> String {
    let found = find(hook.prog_id);
    let name = found.as_ref().map_or("(not pinned)", |p| p.name.as_str());
    let mode = match hook.mode {
        HookMode::Native => "native",
        HookMode::Generic => "generic",
        HookMode::Offload => "offload",
    };
    let id = hook.prog_id;
    if let Some(link) = hook::holder(ifindex, id) {
        return format!(
            "XDP program {name} (id {id}) holds the hook in {mode} mode through bpf_link \
             {link}, which only its owner can replace: vipd cannot share this interface. \
             Have that program loaded without a bpf_link (xdp-loader, xdp-filter, libxdp and \
             `ip link set dev IF xdp` do) and start vipd after it, or detach it"
        );
    }
    if found.is_none() {
        return format!(
            "XDP program id {id} holds the hook in {mode} mode and is pinned nowhere under \
             {BPFFS}: vipd (which runs without CAP_SYS_ADMIN) cannot take it over. Pin it \
             (`bpftool prog pin id {id} {BPFFS}/NAME`) and start vipd: it then runs first and \
             hands every frame it passes to that program"
        );
    }
    format!(
        "XDP program {name} (id {id}) holds the hook in {mode} mode: vipd takes the hook in \
         one atomic replace, runs first and hands every frame it passes to it; stopping vipd \
         gives the hook back the same way"
    )
}

/// A copy of the responder loaded for one interface, ready to go on its hook: loading
/// needs the capabilities the daemon drops once it has started (the verifier refuses
/// vipd's program without `CAP_PERFMON`), attaching does not.
pub struct Copy {
    ebpf: Ebpf,
    name: &'static str,
    /// The other program, already in the copy's `CHAIN`; `None` for a copy that replaces
    /// vipd's own earlier one (its `CHAIN` is the pinned one).
    other: Option<Program>,
    /// Whether it carries a load balancer, whose slot is then pinned beside it.
    services: bool,
}

/// Loads the copy `ifname` needs if another program or an earlier vipd's chaining copy
/// holds its hook; `None` when the hook is free or held through vipd's pinned link, or
/// when the other program is pinned nowhere (attaching then says what to do).
///
/// With `services` the copy carries a load balancer of its own kind, which hands what it
/// passes to the same chained program (`vip-ebpf/src/main.rs`, `vipd_lb`).
pub(super) fn prepare(pin_dir: &Path, ifname: &str, services: bool) -> Result<Option<Copy>> {
    let err = |what: String| DataplaneError::Chain {
        interface: ifname.to_owned(),
        what,
    };
    let Ok(ifindex) = nix::net::if_::if_nametoindex(ifname) else {
        return Ok(None);
    };
    let hook = hook::query(ifindex).map_err(|e| err(format!("reading the XDP hook: {e}")))?;
    let Some(hook) = hook else { return Ok(None) };
    let paths = Paths::new(pin_dir, ifname);
    if pinned(&paths.ours).is_some_and(|p| p.id == hook.prog_id) {
        let chain = paths.chain.exists().then_some(&paths.chain);
        let mut last = None;
        // The pinned map keeps the kind of program it was first used by: the copy that
        // matches it loads, the other is refused.
        for name in [programs::RESPONDER, programs::RESPONDER_NO_FRAGS] {
            match load_copy(pin_dir, name, chain, services) {
                Ok(ebpf) => {
                    return Ok(Some(Copy {
                        services,
                        ebpf,
                        name,
                        other: None,
                    }));
                }
                Err(e) => last = Some(e),
            }
        }
        return Err(last.unwrap_or_else(|| err("no copy of the responder loads".into())));
    }
    if is_ours(pin_dir, hook.prog_id) {
        return Ok(None);
    }
    let Some(other) = find(hook.prog_id) else {
        return Ok(None);
    };
    // The frags-aware copy first; a program without frags support can only be reached
    // from one without it (a tail call needs both alike), which the kernel says by
    // refusing the entry.
    let mut last = None;
    for name in [programs::RESPONDER, programs::RESPONDER_NO_FRAGS] {
        let mut ebpf = load_copy(pin_dir, name, None, services)?;
        match chain_map(&mut ebpf)?.set(0, other.fd()?, 0) {
            Ok(()) => {
                return Ok(Some(Copy {
                    services,
                    ebpf,
                    name,
                    other: Some(other),
                }));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(err(format!(
        "neither copy of the responder can hand frames to {} (id {}): {}",
        other.name,
        other.id,
        last.map_or_else(String::new, |e| crate::error_chain(&e))
    )))
}

/// Takes `ifindex`'s hook from the foreign program `hook` describes, chaining it, with
/// the copy [`prepare`] loaded for it.
pub(super) fn take(
    pin_dir: &Path,
    ifname: &str,
    ifindex: u32,
    hook: Hook,
    want: Option<HookMode>,
    copy: Option<Copy>,
) -> Result<HookMode> {
    let err = |what: String| DataplaneError::Chain {
        interface: ifname.to_owned(),
        what,
    };
    if let Some(want) = want
        && want != hook.mode
    {
        return Err(err(format!(
            "{}; but it runs in {:?} mode and vipd was asked for {want:?} (both must run in \
             one mode: use --xdp-mode auto or the other program's mode)",
            describe(&hook, ifindex),
            hook.mode
        )));
    }
    let Some(Copy {
        mut ebpf,
        name,
        other: Some(other),
        services,
    }) = copy
    else {
        let why = describe(&hook, ifindex);
        if find(hook.prog_id).is_some() && hook::holder(ifindex, hook.prog_id).is_none() {
            // Shareable, but no copy was loaded for it while this process could load one.
            return Err(err(format!(
                "{why}; but the interface came after vipd started (a reload, a new \
                 interface), when vipd may no longer load programs: restart vipd"
            )));
        }
        return Err(err(why));
    };
    if other.id != hook.prog_id {
        return Err(err(format!(
            "the program on the hook changed since vipd started (now id {}); restart vipd \
             to chain it",
            hook.prog_id
        )));
    }
    let paths = Paths::new(pin_dir, ifname);
    // Pins left by an earlier chain on an interface that was rebuilt meanwhile.
    paths.remove();
    let pinned = chain_map(&mut ebpf)
        .and_then(|chain| {
            chain
                .pin(&paths.chain)
                .map_err(|source| DataplaneError::Pin {
                    path: paths.chain.clone(),
                    source: Box::new(source),
                })
        })
        .and_then(|()| {
            hook::obj_pin(other.fd()?.as_fd(), &paths.chained).map_err(|source| {
                DataplaneError::Io {
                    what: format!("pinning {}", paths.chained.display()),
                    source,
                }
            })
        })
        .and_then(|()| match services {
            true => pin_slot(&mut ebpf, name, &paths.slot),
            false => Ok(()),
        })
        .and_then(|()| {
            responder(&mut ebpf, name)?
                .pin(&paths.ours)
                .map_err(|source| DataplaneError::Pin {
                    path: paths.ours.clone(),
                    source: Box::new(source),
                })
        });
    if let Err(e) = pinned {
        paths.remove();
        return Err(e);
    }
    let ours = responder(&mut ebpf, name)?
        .fd()
        .map_err(|source| DataplaneError::Program {
            what: format!("the fd of {name}"),
            source: Box::new(source),
        })?;
    if let Err(e) = hook::replace(ifindex, ours.as_fd(), Some(other.fd()?.as_fd()), hook.mode) {
        paths.remove();
        let why = if e.raw_os_error() == Some(libc::EBUSY) {
            format!(
                "{} (the kernel refused the replace: the hook is held through a bpf_link)",
                describe(&hook, ifindex)
            )
        } else {
            format!("replacing {} on the hook: {e}", other.name)
        };
        return Err(err(why));
    }
    info!(
        interface = ifname,
        chained = %other.name,
        chained_id = other.id,
        mode = ?hook.mode,
        program = name,
        "took the XDP hook from another program: vipd runs first and passes it every frame \
         it does not answer or drop"
    );
    Ok(hook.mode)
}

/// Replaces vipd's own copy on `ifindex`'s hook (an earlier run's, chaining the program
/// pinned in `chain_<ifname>`) with the fresh one [`prepare`] loaded, atomically.
pub(super) fn resume(
    pin_dir: &Path,
    ifname: &str,
    ifindex: u32,
    hook: Hook,
    copy: Option<Copy>,
) -> Result<HookMode> {
    let err = |what: String| DataplaneError::Chain {
        interface: ifname.to_owned(),
        what,
    };
    let paths = Paths::new(pin_dir, ifname);
    let old = pinned(&paths.ours)
        .filter(|p| p.id == hook.prog_id)
        .ok_or_else(|| {
            err(format!(
                "vipd's program on the hook (id {}) is not pinned",
                hook.prog_id
            ))
        })?;
    let Some(Copy {
        mut ebpf,
        name,
        other: None,
        services,
    }) = copy
    else {
        return Err(err(
            "an earlier vipd's program holds the hook and no copy was loaded to replace it \
             (restart vipd)"
                .into(),
        ));
    };
    let new = responder(&mut ebpf, name)?;
    let fd = new.fd().map_err(|source| DataplaneError::Program {
        what: format!("the fd of {name}"),
        source: Box::new(source),
    })?;
    hook::replace(ifindex, fd.as_fd(), Some(old.fd()?.as_fd()), hook.mode)
        .map_err(|e| err(format!("replacing vipd's earlier program on the hook: {e}")))?;
    let _ = std::fs::remove_file(&paths.ours);
    new.pin(&paths.ours).map_err(|source| DataplaneError::Pin {
        path: paths.ours.clone(),
        source: Box::new(source),
    })?;
    // The earlier copy's load balancer slot goes with it; this copy's, if it has a
    // load balancer, takes its place.
    let _ = std::fs::remove_file(&paths.slot);
    if services {
        pin_slot(&mut ebpf, name, &paths.slot)?;
    }
    info!(interface = ifname, program = name, mode = ?hook.mode, "replaced vipd's chaining program on the hook");
    Ok(hook.mode)
}

/// Gives `ifname`'s hook back to the program vipd chained there, if vipd still holds it,
/// and removes the chain's pins. `Ok(false)` when nothing was chained there.
pub(super) fn release(pin_dir: &Path, ifname: &str) -> Result<bool> {
    let paths = Paths::new(pin_dir, ifname);
    if !paths.chain.exists() && !paths.ours.exists() {
        return Ok(false);
    }
    let other = pinned(&paths.chained);
    let ours = pinned(&paths.ours);
    let ifindex = nix::net::if_::if_nametoindex(ifname).ok();
    if let (Some(ifindex), Some(other), Some(ours)) = (ifindex, other, ours) {
        match hook::query(ifindex) {
            Ok(Some(h)) if h.prog_id == ours.id => {
                hook::replace(
                    ifindex,
                    other.fd()?.as_fd(),
                    Some(ours.fd()?.as_fd()),
                    h.mode,
                )
                .map_err(|e| DataplaneError::Chain {
                    interface: ifname.to_owned(),
                    what: format!("giving the hook back to {}: {e}", other.name),
                })?;
                info!(interface = ifname, program = %other.name, id = other.id, "gave the XDP hook back");
            }
            Ok(_) => warn!(
                interface = ifname,
                "vipd's program is no longer on the hook; leaving whatever is there"
            ),
            Err(e) => warn!(interface = ifname, error = %e, "reading the XDP hook"),
        }
    }
    paths.remove();
    Ok(true)
}

pub(super) fn chain_path(pin_dir: &Path, ifname: &str) -> PathBuf {
    pin_dir.join(format!("{CHAIN_PREFIX}{ifname}"))
}

/// The pins of one chained interface.
struct Paths {
    chain: PathBuf,
    chained: PathBuf,
    ours: PathBuf,
    /// The copy's tail-call slot into its load balancer (a program array loses its
    /// entries when no file or process holds it any more).
    slot: PathBuf,
}

impl Paths {
    fn new(pin_dir: &Path, ifname: &str) -> Self {
        Self {
            chain: chain_path(pin_dir, ifname),
            chained: pin_dir.join(format!("{CHAINED_PREFIX}{ifname}")),
            ours: pin_dir.join(format!("{OURS_PREFIX}{ifname}")),
            slot: pin_dir.join(format!("{SLOT_PREFIX}{ifname}")),
        }
    }

    fn remove(&self) {
        for p in [&self.chain, &self.chained, &self.ours, &self.slot] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A copy of the responder with the pinned maps, program `name` loaded, its `CHAIN`
/// map pinned at `chain` when given (fresh and unpinned otherwise); with `services`, the
/// load balancer of the same kind loaded beside it in its own slot (so it chains through
/// this copy's `CHAIN`).
fn load_copy(
    pin_dir: &Path,
    name: &'static str,
    chain: Option<&PathBuf>,
    services: bool,
) -> Result<Ebpf> {
    let mut loader = super::object_loader(pin_dir, services, None);
    if let Some(c) = chain {
        loader.map_pin_path(CHAIN, c.as_path());
    }
    let mut ebpf = loader
        .load(objects::RESPONDER)
        .map_err(|source| DataplaneError::Load {
            dir: pin_dir.to_owned(),
            source: Box::new(source),
        })?;
    responder(&mut ebpf, name)?
        .load()
        .map_err(|source| DataplaneError::Program {
            what: format!("loading {name} into the kernel"),
            source: Box::new(source),
        })?;
    if services {
        let (program, slot) = lb_of(name);
        super::install_load_balancer(&mut ebpf, program, slot)?;
    }
    Ok(ebpf)
}

/// The load balancer program and slot map of the responder `name`'s kind.
fn lb_of(name: &str) -> (&'static str, &'static str) {
    if name == programs::RESPONDER_NO_FRAGS {
        (programs::LOAD_BALANCER_NO_FRAGS, maps::LB_PROGS_NOFRAG)
    } else {
        (programs::LOAD_BALANCER, maps::LB_PROGS)
    }
}

/// Pins the load balancer slot the copy's responder `name` tail-calls through.
fn pin_slot(ebpf: &mut Ebpf, name: &'static str, path: &Path) -> Result<()> {
    let slot = lb_of(name).1;
    let map = ebpf.map_mut(slot).ok_or(DataplaneError::MissingMap(slot))?;
    ProgramArray::<&mut MapData>::try_from(map)
        .map_err(|source| DataplaneError::Map {
            what: slot.into(),
            source: Box::new(source),
        })?
        .pin(path)
        .map_err(|source| DataplaneError::Pin {
            path: path.to_owned(),
            source: Box::new(source),
        })
}

fn responder<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Xdp> {
    ebpf.program_mut(name)
        .ok_or(DataplaneError::MissingProgram(name))?
        .try_into()
        .map_err(|source| DataplaneError::Program {
            what: format!("{name} is not an XDP program"),
            source: Box::new(source),
        })
}

fn chain_map(ebpf: &mut Ebpf) -> Result<ProgramArray<&mut MapData>> {
    ProgramArray::try_from(
        ebpf.map_mut(CHAIN)
            .ok_or(DataplaneError::MissingMap(CHAIN))?,
    )
    .map_err(|source| DataplaneError::Map {
        what: CHAIN.into(),
        source: Box::new(source),
    })
}
