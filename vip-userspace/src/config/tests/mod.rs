//! Behaviour of the configuration reader, on in-memory files against a fake host: no root,
//! no devices, no users, no files.

mod example;
mod mutations;
mod proxy;
mod routes;
mod rules;
mod scripts;
mod surface;
mod vips;
mod warnings;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError, FileKind, FileMeta, Host, UserIds};

/// A machine made up for tests: some interfaces, some users, and a filesystem of
/// directories, files and symlinks with owners and modes.
#[derive(Debug, Clone)]
pub(crate) struct FakeHost {
    /// `None`: every interface exists.
    interfaces: Option<Vec<String>>,
    users: HashMap<String, UserIds>,
    groups: HashMap<String, u32>,
    files: HashMap<PathBuf, Entry>,
}

#[derive(Debug, Clone)]
enum Entry {
    Meta(FileMeta),
    Link(PathBuf),
}

/// The script user of [`FakeHost::lab`].
pub(crate) const SCRIPT_UID: u32 = 990;
pub(crate) const SCRIPT_GID: u32 = 990;

impl FakeHost {
    /// No interfaces, no users, only `/`.
    pub(crate) fn empty() -> Self {
        FakeHost {
            interfaces: Some(Vec::new()),
            users: HashMap::new(),
            groups: HashMap::new(),
            files: HashMap::new(),
        }
        .dir("/", 0o755, 0, 0)
    }

    /// The lab the tests and the shipped example assume: interfaces eth0, eth1, uplink0;
    /// users root and vipd_script; groups root, vipd-status and vipd-admin; root-owned
    /// programs in /bin and /usr/local/bin.
    pub(crate) fn lab() -> Self {
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

    pub(crate) fn interface(mut self, name: &str) -> Self {
        if let Some(list) = &mut self.interfaces {
            list.push(name.to_owned());
        }
        self
    }

    pub(crate) fn user(mut self, name: &str, uid: u32, gid: u32) -> Self {
        self.users.insert(name.to_owned(), UserIds { uid, gid });
        self
    }

    pub(crate) fn group(mut self, name: &str, gid: u32) -> Self {
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

    pub(crate) fn dir(self, path: &str, mode: u32, uid: u32, gid: u32) -> Self {
        self.entry(path, FileKind::Dir, mode, uid, gid)
    }

    pub(crate) fn file(self, path: &str, mode: u32, uid: u32, gid: u32) -> Self {
        self.entry(path, FileKind::File, mode, uid, gid)
    }

    pub(crate) fn link(mut self, path: &str, target: &str) -> Self {
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

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        match self.files.get(path) {
            Some(Entry::Link(target)) => Ok(target.clone()),
            Some(Entry::Meta(_)) => Err(io::Error::from(io::ErrorKind::InvalidInput)),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
}

pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "vipd.toml", &FakeHost::lab())
}

pub(super) fn parse_on(text: &str, host: &FakeHost) -> Result<Config, ConfigError> {
    Config::parse(text, "vipd.toml", host)
}

/// Every problem reported for `text`, rendered as operators see them.
pub(super) fn problems(text: &str) -> Vec<String> {
    problems_on(text, &FakeHost::lab())
}

pub(super) fn problems_on(text: &str, host: &FakeHost) -> Vec<String> {
    match parse_on(text, host) {
        Ok(config) => panic!("accepted a bad file:\n{text}\nas {config:#?}"),
        Err(e) => e.problems.iter().map(ToString::to_string).collect(),
    }
}

/// The one problem reported for `text`.
pub(super) fn problem(text: &str) -> String {
    let mut all = problems(text);
    assert_eq!(all.len(), 1, "expected one problem, got {all:#?}");
    all.remove(0)
}

/// The warnings of a file that must load.
pub(super) fn warnings(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(config) => config.warnings.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("rejected:\n{e}\n---\n{text}"),
    }
}

/// A file that must load; its printed form must parse back to an equal configuration.
pub(super) fn round_trip(text: &str) -> Config {
    let config = parse(text).unwrap_or_else(|e| panic!("rejected:\n{e}\n---\n{text}"));
    let printed = config.to_toml_string();
    let again =
        parse(&printed).unwrap_or_else(|e| panic!("printed form rejected:\n{e}\n---\n{printed}"));
    assert_eq!(again, config, "printed:\n{printed}");
    assert_eq!(again.to_toml_string(), printed);
    config
}

/// `[global]` on lines 1-2, so an instance written after it starts on line 3.
pub(super) const GLOBAL: &str = "[global]\nrouter_id = \"r1\"\n";

pub(super) fn with_global(instances: &str) -> String {
    format!("{GLOBAL}{instances}")
}

/// A valid instance on lines 3-7; `extra` starts on line 8.
pub(super) fn gw(extra: &str) -> String {
    with_global(&format!(
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"192.0.2.1/24\"]\n{extra}"
    ))
}

/// `gw` followed by a second instance whose `[[vrrp]]` header is on line 8.
pub(super) fn gw_and(second: &str) -> String {
    gw(&format!("[[vrrp]]\n{second}"))
}
