//! A machine made up for tests: what the configuration tests, the importer's tests and the
//! fuzz targets (`tests/fuzz/`) validate against instead of the real devices, users and
//! files. Compiled for tests and with the `fuzzing` feature only.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::{FileKind, FileMeta, Host, UserIds};

/// A machine made up for tests: some interfaces, some users, and a filesystem of
/// directories, files and symlinks with owners and modes.
#[derive(Debug, Clone)]
pub struct FakeHost {
    /// `None`: every interface exists.
    interfaces: Option<Vec<String>>,
    users: HashMap<String, UserIds>,
    groups: HashMap<String, u32>,
    files: HashMap<PathBuf, Entry>,
    /// What `processes_hidden` answers.
    proc_hidden: Option<String>,
    /// What `read_secret` answers, by path.
    secrets: HashMap<PathBuf, Vec<u8>>,
}

#[derive(Debug, Clone)]
enum Entry {
    Meta(FileMeta),
    Link(PathBuf),
}

/// The script user of [`FakeHost::lab`].
pub const SCRIPT_UID: u32 = 990;
pub const SCRIPT_GID: u32 = 990;

impl FakeHost {
    /// No interfaces, no users, only `/`.
    pub fn empty() -> Self {
        FakeHost {
            interfaces: Some(Vec::new()),
            users: HashMap::new(),
            groups: HashMap::new(),
            files: HashMap::new(),
            proc_hidden: None,
            secrets: HashMap::new(),
        }
        .dir("/", 0o755, 0, 0)
    }

    /// The lab the tests and the shipped example assume: interfaces eth0, eth1, uplink0;
    /// users root and vipd_script; groups root, vipd-status and vipd-admin; root-owned
    /// programs in /bin and /usr/local/bin.
    pub fn lab() -> Self {
        let mut host = FakeHost::empty()
            .interface("eth0")
            .interface("eth1")
            .interface("uplink0")
            .user("root", 0, 0)
            .user("vipd_script", SCRIPT_UID, SCRIPT_GID)
            .group("root", 0)
            .group("vipd-status", 991)
            .group("vipd-admin", 992);
        for dir in ["/bin", "/usr", "/usr/local", "/usr/local/bin"] {
            host = host.dir(dir, 0o755, 0, 0);
        }
        host = host.dir("/tmp", 0o1777, 0, 0);
        host = host.secret("/etc/vipd/carp.pass", b"lab CARP passphrase");
        for program in [
            "/bin/check",
            "/bin/notify",
            "/usr/local/bin/check-uplink",
            "/usr/local/bin/vipd-notify",
        ] {
            host = host.file(program, 0o755, 0, 0);
        }
        host
    }

    pub fn interface(mut self, name: &str) -> Self {
        if let Some(list) = &mut self.interfaces {
            list.push(name.to_owned());
        }
        self
    }

    pub fn user(mut self, name: &str, uid: u32, gid: u32) -> Self {
        self.users.insert(name.to_owned(), UserIds { uid, gid });
        self
    }

    pub fn group(mut self, name: &str, gid: u32) -> Self {
        self.groups.insert(name.to_owned(), gid);
        self
    }

    fn entry(mut self, path: &str, kind: FileKind, mode: u32, uid: u32, gid: u32) -> Self {
        let meta = FileMeta {
            kind,
            mode,
            uid,
            gid,
        };
        self.files.insert(PathBuf::from(path), Entry::Meta(meta));
        self
    }

    pub fn dir(self, path: &str, mode: u32, uid: u32, gid: u32) -> Self {
        self.entry(path, FileKind::Dir, mode, uid, gid)
    }

    pub fn file(self, path: &str, mode: u32, uid: u32, gid: u32) -> Self {
        self.entry(path, FileKind::File, mode, uid, gid)
    }

    /// A `/proc` that hides other processes, for the given reason.
    pub fn proc_hidden(mut self, why: &str) -> Self {
        self.proc_hidden = Some(why.to_owned());
        self
    }

    /// A secret file (a CARP `passphrase_file`): its first line, as read.
    pub fn secret(mut self, path: &str, first_line: &[u8]) -> Self {
        self.secrets
            .insert(PathBuf::from(path), first_line.to_vec());
        self
    }

    pub fn link(mut self, path: &str, target: &str) -> Self {
        self.files
            .insert(PathBuf::from(path), Entry::Link(PathBuf::from(target)));
        self
    }
}

impl Host for FakeHost {
    fn interface_exists(&self, name: &str) -> bool {
        self.interfaces
            .as_ref()
            .is_none_or(|list| list.iter().any(|i| i == name))
    }

    fn user(&self, name: &str) -> Result<Option<UserIds>, String> {
        Ok(self.users.get(name).copied())
    }

    fn group(&self, name: &str) -> Result<Option<u32>, String> {
        Ok(self.groups.get(name).copied())
    }

    fn processes_hidden(&self) -> Option<String> {
        self.proc_hidden.clone()
    }

    fn lstat(&self, path: &Path) -> io::Result<FileMeta> {
        match self.files.get(path) {
            Some(Entry::Meta(meta)) => Ok(*meta),
            Some(Entry::Link(_)) => Ok(FileMeta {
                kind: FileKind::Symlink,
                mode: 0o777,
                uid: 0,
                gid: 0,
            }),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn read_secret(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.secrets
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        match self.files.get(path) {
            Some(Entry::Link(target)) => Ok(target.clone()),
            Some(Entry::Meta(_)) => Err(io::Error::from(io::ErrorKind::InvalidInput)),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
}
