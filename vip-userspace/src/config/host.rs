//! What validation asks of the machine: whether a device exists, who a user is, and what
//! the filesystem says about a script's path. Behind a trait so tests answer from a fake
//! host (no real devices, users or files) and the daemon from [`LocalHost`].

use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// The kind of a directory entry, as `lstat` sees it (a symlink is not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    /// Device, socket, FIFO.
    Other,
}

/// The parts of `lstat` the script checks look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub kind: FileKind,
    /// Permission bits with set-id and sticky bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A user's numeric identity: the user scripts run as, and its primary group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserIds {
    pub uid: u32,
    pub gid: u32,
}

/// The machine the configuration will run on, as far as validation needs to know it.
pub trait Host {
    /// Whether a network device of that name exists in vipd's network namespace.
    fn interface_exists(&self, name: &str) -> bool;
    /// The user's uid and primary gid; `Ok(None)` when there is no such user.
    fn user(&self, name: &str) -> Result<Option<UserIds>, String>;
    /// The group's gid; `Ok(None)` when there is no such group.
    fn group(&self, name: &str) -> Result<Option<u32>, String>;
    /// `lstat(2)`: the entry itself, a final symlink not followed.
    fn lstat(&self, path: &Path) -> io::Result<FileMeta>;
    /// `readlink(2)`.
    fn read_link(&self, path: &Path) -> io::Result<PathBuf>;
    /// Why `/proc` does not show this process every other process (its `hidepid`
    /// option, systemd's `ProtectProc=`), or `None` when it does.
    fn processes_hidden(&self) -> Option<String> {
        None
    }
    /// A secret's file: its first line without the newline, as ucarp reads
    /// `--passfile` (a CARP instance's `passphrase_file`).
    fn read_secret(&self, path: &Path) -> io::Result<Vec<u8>> {
        read_secret(path)
    }
}

/// The first line of the file at `path`, without its newline; at most 4 KiB are read.
pub fn read_secret(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(4096)
        .read_to_end(&mut buf)?;
    let end = buf.iter().position(|b| *b == b'\n').unwrap_or(buf.len());
    buf.truncate(end);
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(buf)
}

/// Whether a network device of that name exists in the current network namespace.
pub fn host_interface_exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

/// This machine: its devices, its user database and its filesystem. What the daemon and
/// `vipd check` pass to [`Config::load`](super::Config::load).
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalHost;

impl Host for LocalHost {
    fn interface_exists(&self, name: &str) -> bool {
        host_interface_exists(name)
    }

    fn user(&self, name: &str) -> Result<Option<UserIds>, String> {
        nix::unistd::User::from_name(name)
            .map(|user| {
                user.map(|u| UserIds {
                    uid: u.uid.as_raw(),
                    gid: u.gid.as_raw(),
                })
            })
            .map_err(|e| format!("cannot look up user {name:?}: {e}"))
    }

    fn group(&self, name: &str) -> Result<Option<u32>, String> {
        nix::unistd::Group::from_name(name)
            .map(|g| g.map(|g| g.gid.as_raw()))
            .map_err(|e| format!("cannot look up group {name:?}: {e}"))
    }

    fn lstat(&self, path: &Path) -> io::Result<FileMeta> {
        let meta = std::fs::symlink_metadata(path)?;
        let t = meta.file_type();
        let kind = if t.is_symlink() {
            FileKind::Symlink
        } else if t.is_dir() {
            FileKind::Dir
        } else if t.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        };
        Ok(FileMeta {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        })
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::read_link(path)
    }

    fn processes_hidden(&self) -> Option<String> {
        crate::track::process::proc_hidden()
    }
}
