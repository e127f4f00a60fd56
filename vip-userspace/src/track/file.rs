//! Track files: an integer read from a file, polled once a second off the loop.
//!
//! The file is read defensively, because it sits where other programs write and its
//! value becomes the advertised priority: opened without following symlinks (a link to a
//! root-only file would leak it through the priority) and without blocking (a FIFO
//! nobody writes would hang the reader), accepted only as a regular file, and read to at
//! most [`MAX_BYTES`] (`/dev/zero` or a huge file cannot exhaust memory). Anything
//! refused reads as a missing file: 0, which is keepalived's meaning of a missing file;
//! the reason is logged when it changes.

use std::{
    io::Read as _,
    os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{info, warn};

use super::Report;
use crate::vrrp::tracking::TrackItem;

const POLL: Duration = Duration::from_secs(1);
/// An integer and its whitespace fit easily; more is not a track file.
pub const MAX_BYTES: usize = 64;

/// What reading a track file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    Value(i64),
    Missing,
    /// Present but refused, with why.
    Refused(String),
}

impl Reading {
    pub fn value(&self) -> Option<i64> {
        match self {
            Reading::Value(v) => Some(*v),
            _ => None,
        }
    }
}

/// Reads `path` as described in the module docs. Blocking: call off the loop.
pub fn read_blocking(path: &Path) -> Reading {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Reading::Missing,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Reading::Refused("is a symbolic link (not followed)".into());
        }
        Err(e) => return Reading::Refused(format!("cannot open: {e}")),
    };
    let kind = match file.metadata() {
        Ok(m) => m.file_type(),
        Err(e) => return Reading::Refused(format!("cannot stat: {e}")),
    };
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Reading::Refused(format!("is {what}, not a regular file"));
    }
    let mut buf = Vec::with_capacity(MAX_BYTES + 1);
    if let Err(e) = file.take(MAX_BYTES as u64 + 1).read_to_end(&mut buf) {
        return Reading::Refused(format!("cannot read: {e}"));
    }
    parse(&buf)
}

/// What a track file's contents say: an integer with blanks around it, in at most
/// [`MAX_BYTES`] bytes; anything else is refused.
pub fn parse(contents: &[u8]) -> Reading {
    if contents.len() > MAX_BYTES {
        return Reading::Refused(format!("holds more than {MAX_BYTES} bytes"));
    }
    match std::str::from_utf8(contents)
        .ok()
        .and_then(|t| t.trim().parse().ok())
    {
        Some(v) => Reading::Value(v),
        None => Reading::Refused("does not hold an integer".into()),
    }
}

/// [`read_blocking`] on a blocking thread, so a slow file system stalls nobody.
pub async fn read(path: &Path) -> Option<i64> {
    read_logged(path, &mut None).await
}

async fn read_logged(path: &Path, last: &mut Option<Reading>) -> Option<i64> {
    let p = path.to_owned();
    let reading = tokio::task::spawn_blocking(move || read_blocking(&p))
        .await
        .unwrap_or_else(|e| Reading::Refused(format!("reader failed: {e}")));
    if last.as_ref() != Some(&reading) {
        match &reading {
            Reading::Refused(why) => {
                warn!(path = %path.display(), reason = %why, "track file refused; reads as 0")
            }
            Reading::Missing => info!(path = %path.display(), "track file missing; reads as 0"),
            Reading::Value(_) => {}
        }
        *last = Some(reading.clone());
    }
    reading.value()
}

/// Watches `path`, reporting value changes for `(group, member)` until aborted.
pub async fn watch(
    report: Report,
    index: usize,
    path: PathBuf,
    initial: Option<i64>,
    tx: mpsc::Sender<(Report, TrackItem)>,
) {
    {
        let mut last = initial;
        let mut reading = None;
        loop {
            tokio::time::sleep(POLL).await;
            let value = read_logged(&path, &mut reading).await;
            if value != last {
                last = value;
                let item = TrackItem::File { index, value };
                if tx.send((report, item)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A spawned watcher's handle (kept so the group can abort it).
pub type Watcher = JoinHandle<()>;

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vipd-track-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_an_integer_and_refuses_anything_else() {
        let d = dir("int");
        let f = d.join("prio");
        std::fs::write(&f, " -7\n").unwrap();
        assert_eq!(read_blocking(&f), Reading::Value(-7));
        std::fs::write(&f, "ten").unwrap();
        assert!(matches!(read_blocking(&f), Reading::Refused(_)));
        assert_eq!(read_blocking(&d.join("missing")), Reading::Missing);
        std::fs::write(&f, "1".repeat(MAX_BYTES + 1)).unwrap();
        assert!(matches!(read_blocking(&f), Reading::Refused(r) if r.contains("more than")));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symlinks_fifos_and_devices_are_refused_without_blocking() {
        let d = dir("odd");
        let target = d.join("secret");
        std::fs::write(&target, "42").unwrap();
        let link = d.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(read_blocking(&link), Reading::Refused(r) if r.contains("symbolic")));
        let fifo = d.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Nobody writes the FIFO: a blocking open would hang here forever.
        assert!(matches!(read_blocking(&fifo), Reading::Refused(r) if r.contains("FIFO")));
        assert!(
            matches!(read_blocking(Path::new("/dev/zero")), Reading::Refused(r) if r.contains("device"))
        );
        assert!(matches!(read_blocking(&d), Reading::Refused(r) if r.contains("directory")));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
