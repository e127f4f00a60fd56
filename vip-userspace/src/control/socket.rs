//! The control socket: a UNIX stream socket speaking one JSON request and one JSON reply
//! per connection. `vipd status` is its client.

use std::{
    path::Path,
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
    sync::oneshot,
};
use tracing::{debug, warn};

use super::Status;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    Status,
}

/// What the control tasks ask the daemon loop for.
pub type StatusRequest = oneshot::Sender<Status>;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path} is in use by a running vipd (two daemons with one router_id?)")]
    InUse { path: String },
    #[error(
        "{path} exists and is {kind}, not a socket; remove it or choose another control_socket"
    )]
    NotASocket { path: String, kind: &'static str },
    #[error(
        "directory {path} (mode {mode:o}, owner uid {uid}) must belong to root and be writable by nobody else"
    )]
    UnsafeDirectory { path: String, mode: u32, uid: u32 },
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no vipd answering on {path} (is it running with this control_socket?)")]
    NotRunning {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("vipd on {path} did not answer within {timeout:?}")]
    Timeout { path: String, timeout: Duration },
    #[error("unreadable answer from vipd on {path}")]
    BadReply {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Binds the control socket. The path is checked with `lstat` first: a socket nobody
/// answers on (a dead daemon's) is replaced, a live daemon's is an error, and anything
/// that is not a socket is an error naming the path, never deleted. The socket is created
/// under umask 0177 (owner only) in a directory that must belong to root and be writable
/// by nobody else.
pub fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener, ControlError> {
    use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, MetadataExt as _};
    let p = path.display().to_string();
    let io = |what: &'static str| {
        let p = p.clone();
        move |source| ControlError::Io {
            what,
            path: p,
            source,
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .map_err(io("creating the directory of"))?;
        let meta = std::fs::metadata(dir).map_err(io("checking the directory of"))?;
        let writable_by_others = meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0;
        if meta.uid() != nix::unistd::geteuid().as_raw() && meta.uid() != 0 || writable_by_others {
            return Err(ControlError::UnsafeDirectory {
                path: dir.display().to_string(),
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
            });
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ControlError::InUse { path: p });
            }
            std::fs::remove_file(path).map_err(io("removing stale"))?;
        }
        Ok(meta) => {
            return Err(ControlError::NotASocket {
                path: p,
                kind: describe_kind(&meta.file_type()),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("checking")(e)),
    }
    // Owner-only from the moment it exists: no window between bind and a chmod.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(io("binding"))?;
    listener
        .set_nonblocking(true)
        .map_err(io("setting non-blocking"))?;
    Ok(listener)
}

fn describe_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else if t.is_fifo() {
        "a FIFO"
    } else {
        "not a socket"
    }
}

const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// Concurrent control connections served at most; more are refused at once (counted).
pub const MAX_CLIENTS: usize = 16;

/// Where a status comes from: the daemon's snapshot, completed off the loop.
pub type Source = Arc<dyn Fn() -> BoxFuture<Option<Status>> + Send + Sync>;
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Serves requests until aborted; `refused` counts connections over [`MAX_CLIENTS`].
pub async fn serve(
    listener: std::os::unix::net::UnixListener,
    source: Source,
    refused: Arc<AtomicU64>,
) {
    let listener = match UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(error) => {
            warn!(error = %crate::error_chain(&error), "control socket cannot be served");
            return;
        }
    };
    let serve = move |stream: UnixStream| {
        let source = source.clone();
        async move {
            // A client that never sends or never reads must not hold a slot for long.
            match tokio::time::timeout(CLIENT_TIMEOUT, answer(stream, source)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => debug!(%error, "control client"),
                Err(_) => debug!("control client timed out"),
            }
        }
    };
    super::accept::bounded("control", MAX_CLIENTS, refused, listener, serve).await;
}

/// A client sends its one-line request at once; one that stays silent gives its slot back.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

async fn answer(stream: UnixStream, source: Source) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    // Requests are tiny; a bounded read keeps a hostile client from growing memory.
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, 4096));
    tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let reply = match serde_json::from_str::<Request>(line.trim()) {
        Ok(Request::Status) => match source().await {
            Some(status) => serde_json::to_string(&status).unwrap_or_default(),
            None => return Ok(()),
        },
        Err(e) => serde_json::json!({ "error": format!("bad request: {e}") }).to_string(),
    };
    write.write_all(reply.as_bytes()).await?;
    write.write_all(b"\n").await?;
    write.shutdown().await
}

/// Asks the vipd behind `path` for its status.
pub async fn query(path: &Path) -> Result<Status, ControlError> {
    let p = path.display().to_string();
    let work = async {
        let mut stream =
            UnixStream::connect(path)
                .await
                .map_err(|source| ControlError::NotRunning {
                    path: p.clone(),
                    source,
                })?;
        let req = serde_json::to_string(&Request::Status).expect("serializable") + "\n";
        let io = |source| ControlError::Io {
            what: "talking to",
            path: p.clone(),
            source,
        };
        stream.write_all(req.as_bytes()).await.map_err(io)?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .await
            .map_err(|source| ControlError::Io {
                what: "reading from",
                path: p.clone(),
                source,
            })?;
        serde_json::from_str(&line).map_err(|source| ControlError::BadReply {
            path: p.clone(),
            source,
        })
    };
    tokio::time::timeout(CLIENT_TIMEOUT, work)
        .await
        .map_err(|_| ControlError::Timeout {
            path: p.clone(),
            timeout: CLIENT_TIMEOUT,
        })?
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn path(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("vipd-ctl-{}-{tag}/ctl.sock", std::process::id()))
    }

    fn status(router_id: &str) -> Status {
        Status {
            router_id: router_id.into(),
            pid: 9,
            uptime_ms: 1,
            pin_path: String::new(),
            instances: vec![],
            xdp: Default::default(),
            conflicts: vec![],
            loop_lag: Default::default(),
            connections_refused: Default::default(),
            bfd: vec![],
            vrrp_sockets: vec![],
            bfd_summary: Default::default(),
            processes: None,
            services: vec![],
        }
    }

    fn source(router_id: &'static str, delay: Duration) -> Source {
        Arc::new(move || {
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Some(status(router_id))
            })
        })
    }

    #[tokio::test]
    async fn a_live_socket_is_never_taken_over_but_a_stale_one_is_replaced() {
        let p = path("live");
        let first = bind(&p).unwrap();
        assert!(matches!(bind(&p), Err(ControlError::InUse { .. })));
        drop(first);
        // The file is left behind by a dead daemon: the next one takes the path.
        assert!(p.exists());
        let second = bind(&p);
        assert!(second.is_ok(), "{second:?}");
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
    }

    #[test]
    fn anything_but_a_socket_at_the_path_is_an_error_and_left_alone() {
        use std::os::unix::fs::PermissionsExt as _;
        let p = path("file");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "precious").unwrap();
        let e = bind(&p).unwrap_err();
        assert!(
            matches!(
                e,
                ControlError::NotASocket {
                    kind: "a regular file",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "precious");
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &p).unwrap();
        assert!(matches!(
            bind(&p),
            Err(ControlError::NotASocket {
                kind: "a symbolic link",
                ..
            })
        ));
        std::fs::remove_file(&p).unwrap();
        // A directory others may write to could hold a swapped socket: refused.
        let dir = p.parent().unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            bind(&p),
            Err(ControlError::UnsafeDirectory { .. })
        ));
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        let l = bind(&p).unwrap();
        let mode = std::fs::symlink_metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner only from creation");
        drop(l);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn query_gets_the_daemon_snapshot_and_bad_requests_get_an_error() {
        let p = path("query");
        let listener = bind(&p).unwrap();
        let refused = Arc::new(AtomicU64::new(0));
        let server = tokio::spawn(serve(listener, source("r9", Duration::ZERO), refused));
        assert_eq!(query(&p).await.unwrap().router_id, "r9");
        let mut s = UnixStream::connect(&p).await.unwrap();
        s.write_all(b"{\"command\":\"reboot\"}\n").await.unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).await.unwrap();
        assert!(line.contains("bad request"), "{line}");
        server.abort();
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_are_refused_and_counted() {
        let p = path("cap");
        let listener = bind(&p).unwrap();
        let refused = Arc::new(AtomicU64::new(0));
        let server = tokio::spawn(serve(
            listener,
            source("r9", Duration::ZERO),
            refused.clone(),
        ));
        // Idle clients hold every slot.
        let mut idle = Vec::new();
        for _ in 0..MAX_CLIENTS {
            idle.push(UnixStream::connect(&p).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let extra = query(&p).await;
        assert!(extra.is_err(), "{extra:?}");
        assert!(refused.load(Ordering::Relaxed) >= 1);
        drop(idle);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(query(&p).await.unwrap().router_id, "r9");
        server.abort();
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
    }

    #[tokio::test]
    async fn query_without_a_daemon_says_so() {
        let p = path("none");
        assert!(matches!(
            query(&p).await,
            Err(ControlError::NotRunning { .. })
        ));
    }
}
