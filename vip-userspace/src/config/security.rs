//! Script security (keepalived's `enable_script_security`, always on in vipd): a program
//! vipd runs, as root or as `global.script_user`, must be one that nobody else can change
//! or replace. Otherwise whoever can write to it, or to any directory on its way, runs
//! code with the daemon's privileges.
//!
//! For the program of every track script and notify hook: the path is absolute, every
//! symlink on it is followed (its target checked in turn), and the file and every
//! directory passed through are owned by root or the script user and writable by nobody
//! else: group-writable only for gid 0 or the script user's primary group, never
//! world-writable, except a directory with the sticky bit (like `/tmp`), where others
//! cannot replace what they do not own and what lies below is checked in its own right.
//! The file is a regular file the running user may execute.

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::host::{FileKind, FileMeta, Host};
use super::model::ScriptUser;

// As the kernel's limit on symlinks followed while resolving one path (ELOOP).
const MAX_SYMLINKS: usize = 40;

const S_ISVTX: u32 = 0o1000;
const S_IWGRP: u32 = 0o020;
const S_IWOTH: u32 = 0o002;

/// Checks programs, each path once however many commands name it.
pub(crate) struct ScriptChecker<'h> {
    host: &'h dyn Host,
    user: Option<&'h ScriptUser>,
    seen: HashMap<String, Result<(), String>>,
}

impl<'h> ScriptChecker<'h> {
    pub(crate) fn new(host: &'h dyn Host, user: Option<&'h ScriptUser>) -> Self {
        Self {
            host,
            user,
            seen: HashMap::new(),
        }
    }

    /// `Err` says what is wrong, starting with the program's path.
    pub(crate) fn check(&mut self, program: &str) -> Result<(), String> {
        if let Some(known) = self.seen.get(program) {
            return known.clone();
        }
        let result = self
            .check_path(Path::new(program))
            .map_err(|why| format!("{program}: {why}"));
        self.seen.insert(program.to_owned(), result.clone());
        result
    }

    fn check_path(&self, program: &Path) -> Result<(), String> {
        let root = Path::new("/");
        self.safe(root, &self.stat(root)?)?;
        let mut current = PathBuf::from("/");
        let mut rest: Vec<PathBuf> = components(program);
        rest.reverse();
        let mut links = 0;
        let mut last: Option<(PathBuf, FileMeta)> = None;
        while let Some(part) = rest.pop() {
            if part.as_os_str() == ".." {
                current.pop();
                last = None;
                continue;
            }
            let next = current.join(&part);
            let meta = self.stat(&next)?;
            match meta.kind {
                FileKind::Symlink => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(format!("more than {MAX_SYMLINKS} symlinks on the way"));
                    }
                    let target = self
                        .host
                        .read_link(&next)
                        .map_err(|e| format!("cannot read symlink {}: {e}", next.display()))?;
                    if target.is_absolute() {
                        current = PathBuf::from("/");
                    }
                    // The target's own components come next, then what followed the link.
                    let mut parts = components(&target);
                    parts.reverse();
                    rest.extend(parts);
                    last = None;
                }
                FileKind::Dir => {
                    self.safe(&next, &meta)?;
                    current = next.clone();
                    last = Some((next, meta));
                }
                FileKind::File | FileKind::Other if !rest.is_empty() => {
                    return Err(format!("{} is not a directory", next.display()));
                }
                FileKind::File | FileKind::Other => {
                    current = next.clone();
                    last = Some((next, meta));
                }
            }
        }
        let Some((file, meta)) = last else {
            return Err("is a directory, not a program".to_owned());
        };
        match meta.kind {
            FileKind::File => {}
            FileKind::Dir => return Err("is a directory, not a program".to_owned()),
            _ => return Err(format!("{} is not a regular file", file.display())),
        }
        self.safe(&file, &meta)?;
        if !self.executable(&meta) {
            let by = self
                .user
                .map_or_else(String::new, |u| format!(" by user {}", u.name));
            return Err(format!(
                "{} is not executable{by} (mode {:04o})",
                file.display(),
                meta.mode
            ));
        }
        Ok(())
    }

    fn stat(&self, path: &Path) -> Result<FileMeta, String> {
        self.host.lstat(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
            _ => format!("cannot examine {}: {e}", path.display()),
        })
    }

    fn trusted_uid(&self, uid: u32) -> bool {
        uid == 0 || self.user.is_some_and(|u| u.uid == uid)
    }

    fn trusted_gid(&self, gid: u32) -> bool {
        gid == 0 || self.user.is_some_and(|u| u.gid == gid)
    }

    /// Why someone other than root or the script user could change `path`, if they could.
    fn safe(&self, path: &Path, meta: &FileMeta) -> Result<(), String> {
        let what = if meta.kind == FileKind::Dir {
            "directory"
        } else {
            "file"
        };
        let shown = path.display();
        let mode = meta.mode;
        // Naming the script user helps where it is the one other party.
        let or_user = "move the script or set global.script_user";
        if !self.trusted_uid(meta.uid) {
            return Err(format!(
                "{what} {shown} is owned by uid {}, who can change it (mode {mode:04o}); {or_user}",
                meta.uid
            ));
        }
        if mode & S_IWGRP != 0 && !self.trusted_gid(meta.gid) {
            return Err(format!(
                "{what} {shown} is writable by group {} (mode {mode:04o}); {or_user}",
                meta.gid
            ));
        }
        let sticky_dir = meta.kind == FileKind::Dir && mode & S_ISVTX != 0;
        if mode & S_IWOTH != 0 && !sticky_dir {
            let fix = if meta.kind == FileKind::Dir {
                "move the script to a directory only root can write"
            } else {
                "remove the write permission for others (chmod o-w)"
            };
            return Err(format!(
                "{what} {shown} is writable by others (mode {mode:04o}); {fix}"
            ));
        }
        Ok(())
    }

    /// Whether the user scripts run as may execute the file.
    fn executable(&self, meta: &FileMeta) -> bool {
        match self.user {
            // Root may run anything with an execute bit.
            None => meta.mode & 0o111 != 0,
            Some(u) if u.uid == 0 => meta.mode & 0o111 != 0,
            Some(u) if meta.uid == u.uid => meta.mode & 0o100 != 0,
            Some(u) if meta.gid == u.gid => meta.mode & 0o010 != 0,
            Some(_) => meta.mode & 0o001 != 0,
        }
    }
}

/// The named components of a path (`.` dropped, `..` kept).
fn components(path: &Path) -> Vec<PathBuf> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(PathBuf::from(name)),
            Component::ParentDir => Some(PathBuf::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}
