//! The importer's only contact with files: reading keepalived's (regular files of bounded
//! size, never a FIFO or a device that would hang or feed it forever) and writing the
//! vipd file (never through a symbolic link, never over an existing file unless asked,
//! readable by its owner alone: it may hold a VRRPv2 password).

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// The largest keepalived file read: real ones are a few KiB; a bigger one is a mistake
/// (or `include` of something that is not a configuration).
pub(crate) const MAX_FILE_BYTES: u64 = 1 << 20;

/// The vipd file's permissions: it may hold `auth_pass`.
pub(crate) const OUTPUT_MODE: u32 = 0o600;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    #[error("larger than {limit} KiB ({bytes} bytes): not a keepalived configuration", limit = MAX_FILE_BYTES / 1024)]
    TooLarge { bytes: u64 },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads `path` (symbolic links followed, as keepalived does) if it is a regular file of
/// at most [`MAX_FILE_BYTES`].
pub(crate) fn read_regular(path: &Path) -> Result<Vec<u8>, ReadError> {
    // Looked at before opening: opening some devices does something (a watchdog arms).
    regular(&fs::metadata(path)?)?;
    // O_NONBLOCK: should a FIFO take the file's place meanwhile, opening it does not wait
    // for a writer (and it is refused below).
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    regular(&meta)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge { bytes: meta.len() });
    }
    // A file can grow while it is read, and some (in /proc) say they are empty.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge {
            bytes: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

fn regular(meta: &Metadata) -> Result<(), ReadError> {
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(ReadError::NotRegular(what))
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "{0} already exists; nothing written (choose another path, or add --force to replace it)"
    )]
    Exists(PathBuf),
    #[error(
        "{0} is a symbolic link; nothing written (the import never writes through one: remove \
         it, or add --force to replace the link itself)"
    )]
    Symlink(PathBuf),
    #[error("cannot write {0}: {1}")]
    Io(PathBuf, io::Error),
}

/// Writes `text` to a new file at `path`, mode [`OUTPUT_MODE`], never following a symbolic
/// link. With `replace`, an existing file or link at `path` is replaced (a new file
/// renamed over it; the link itself goes, its target is untouched); otherwise it is an
/// error and nothing is written.
pub(crate) fn write_new(path: &Path, text: &str, replace: bool) -> Result<(), WriteError> {
    let io = |e| WriteError::Io(path.to_owned(), e);
    if !replace {
        return match create(path) {
            Ok(mut f) => f
                .write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(io),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
                Err(if link {
                    WriteError::Symlink(path.to_owned())
                } else {
                    WriteError::Exists(path.to_owned())
                })
            }
            Err(e) => Err(io(e)),
        };
    }
    // The new file beside the old, then one rename: no moment without a whole file.
    let name = path
        .file_name()
        .ok_or_else(|| io(io::Error::new(io::ErrorKind::InvalidInput, "names no file")))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".vipd-import-{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let written = create(&temp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    let renamed = written.and_then(|()| fs::rename(&temp, path));
    if let Err(e) = renamed {
        let _ = fs::remove_file(&temp);
        return Err(io(e));
    }
    Ok(())
}

/// `O_CREAT | O_EXCL | O_NOFOLLOW`: fails on anything already at `path`, a dangling
/// symbolic link included.
fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(OUTPUT_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}
