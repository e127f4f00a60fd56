//! The pin directory on bpffs.

use std::path::{Path, PathBuf};

use vip_common::maps;

use super::{DataplaneError, Result};

pub(super) const LINK_PREFIX: &str = "link_";

/// `BPF_FS_MAGIC` from linux/magic.h.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

#[derive(Debug, thiserror::Error)]
pub enum BpffsError {
    #[error(
        "{dir} is not on a bpf filesystem (its parent is {fs_type:#x}); mount one with \
         `mount -t bpf bpf /sys/fs/bpf` or choose a pin_path under a bpffs mount"
    )]
    NotBpffs { dir: PathBuf, fs_type: i64 },
    #[error("creating pin directory {dir}")]
    Create {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checking the filesystem of {dir}")]
    Statfs {
        dir: PathBuf,
        #[source]
        source: nix::Error,
    },
}

/// Creates `dir` if needed and checks it lies on bpffs, so that a mistyped pin path fails
/// with a clear message instead of an opaque EPERM from BPF_OBJ_PIN.
pub fn ensure_bpffs(dir: &Path) -> Result<(), BpffsError> {
    // Check the nearest existing ancestor first: creating a directory on the wrong
    // filesystem would leave litter behind.
    let mut probe = dir;
    while !probe.exists() {
        match probe.parent() {
            Some(p) => probe = p,
            None => break,
        }
    }
    check_magic(probe, dir)?;
    std::fs::create_dir_all(dir).map_err(|source| BpffsError::Create {
        dir: dir.to_owned(),
        source,
    })?;
    check_magic(dir, dir)
}

fn check_magic(path: &Path, dir: &Path) -> Result<(), BpffsError> {
    let st = nix::sys::statfs::statfs(path).map_err(|source| BpffsError::Statfs {
        dir: dir.to_owned(),
        source,
    })?;
    let fs_type = st.filesystem_type().0 as i64;
    if fs_type != BPF_FS_MAGIC {
        return Err(BpffsError::NotBpffs {
            dir: dir.to_owned(),
            fs_type,
        });
    }
    Ok(())
}

pub(super) fn attached_interfaces(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(DataplaneError::Io {
                what: format!("listing {}", dir.display()),
                source,
            });
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name().to_str().and_then(|n| {
                n.strip_prefix(LINK_PREFIX)
                    .or_else(|| n.strip_prefix(super::chain::CHAIN_PREFIX))
                    .map(str::to_owned)
            })
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

pub(super) fn unpin_maps(dir: &Path) -> Result<()> {
    for name in maps::ALL {
        remove_if_present(&dir.join(name))?;
    }
    if attached_interfaces(dir)?.is_empty() {
        match std::fs::remove_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // Something else lives there (not ours): leave the directory.
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {}
            Err(source) => {
                return Err(DataplaneError::Io {
                    what: format!("removing {}", dir.display()),
                    source,
                });
            }
        }
    }
    Ok(())
}

pub(super) fn remove_if_present(path: &PathBuf) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DataplaneError::Io {
            what: format!("unpinning {}", path.display()),
            source,
        }),
    }
}
