//! The control socket: a UNIX stream socket speaking one JSON request and one JSON reply
//! per connection (an event stream: one JSON line per event until either end closes).
//! `vipd status`, `vipd reload`, `vipd demote` / `promote` / `handover` and `vipd events`
//! are its clients.
//!
//! Who may do what: whoever can open the socket (root; with `control_group`, its
//! members: the socket is created 0660 with that group) may read: status, events, a
//! reload's dry run. What changes something (a reload, a demotion, a promotion, a
//! handover) is refused unless the peer's credentials, read from the connection
//! (`SO_PEERCRED`, and `SO_PEERGROUPS` for its supplementary groups), show root or a
//! member of `admin_group`. Every command is logged with the peer's uid and pid, refused
//! or not.

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
use tracing::{debug, info, warn};

use super::{
    Status,
    events::{Event, InstanceChange},
};

/// Whom a maintenance command is for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Every instance of the node.
    Node,
    SyncGroup(String),
    Instance(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Node => f.write_str("the node"),
            Target::SyncGroup(g) => write!(f, "sync group {g}"),
            Target::Instance(i) => write!(f, "instance {i}"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// A stream of events, one JSON line each (`vipd events`).
    Events,
    /// Reads the configuration file again and applies it (`dry_run`: only says what that
    /// would do), answering with what became of each instance.
    Reload {
        #[serde(default)]
        dry_run: bool,
    },
    /// Lowers the priority of `target`'s instances by `by` more.
    Demote {
        target: Target,
        by: u8,
    },
    /// Takes `by` (everything without) off `target`'s demotion, and lets its instances
    /// preempt again after a handover.
    Promote {
        target: Target,
        #[serde(default)]
        by: Option<u8>,
    },
    /// Hands `target`'s master groups over now, make-before-break.
    Handover {
        target: Target,
    },
}

impl Request {
    /// Whether it changes something: root or `admin_group` only.
    pub fn changes_something(&self) -> bool {
        match self {
            Request::Status | Request::Events => false,
            Request::Reload { dry_run } => !dry_run,
            Request::Demote { .. } | Request::Promote { .. } | Request::Handover { .. } => true,
        }
    }

    /// How logs and events name it.
    pub fn describe(&self) -> String {
        match self {
            Request::Status => "status".into(),
            Request::Events => "events".into(),
            Request::Reload { dry_run: true } => "reload --dry-run".into(),
            Request::Reload { dry_run: false } => "reload".into(),
            Request::Demote { target, by } => format!("demote {target} by {by}"),
            Request::Promote {
                target,
                by: Some(by),
            } => format!("promote {target} by {by}"),
            Request::Promote { target, by: None } => format!("promote {target}"),
            Request::Handover { target } => format!("handover {target}"),
        }
    }
}

/// The answer to everything but a status query or an event stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reply {
    pub ok: bool,
    pub message: String,
    /// A reload's (or its dry run's) outcome per instance.
    #[serde(default)]
    pub instances: Vec<InstanceChange>,
}

impl Reply {
    pub fn refused(message: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            message: message.into(),
            instances: Vec::new(),
        }
    }
}

/// Who is on the other end of a control connection, as the kernel says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
    /// Its supplementary groups.
    pub groups: Vec<u32>,
}

/// Who may change something besides root (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    pub admin_gid: Option<u32>,
}

impl Access {
    pub fn may_change(&self, peer: &Peer) -> bool {
        peer.uid == 0
            || self
                .admin_gid
                .is_some_and(|g| peer.gid == g || peer.groups.contains(&g))
    }
}

/// What the control server asks the daemon: answered by the event loop, waited for here.
pub trait Backend: Send + Sync + 'static {
    fn status(&self) -> BoxFuture<Option<Status>>;
    /// Carries out a request other than status and events, for `peer`.
    fn command(&self, request: Request, peer: Peer) -> BoxFuture<Option<Reply>>;
    fn events(&self) -> tokio::sync::broadcast::Receiver<Arc<Event>>;
}

/// What the control tasks ask the daemon loop for.
pub enum ToLoop {
    Status(oneshot::Sender<Status>),
    Command {
        request: Request,
        peer: Peer,
        reply: oneshot::Sender<Reply>,
    },
}

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
    #[error("setting the group of {path} to {group}")]
    Group {
        path: String,
        group: u32,
        #[source]
        source: nix::Error,
    },
}

/// Binds the control socket. The path is checked with `lstat` first: a socket nobody
/// answers on (a dead daemon's) is replaced, a live daemon's is an error, and anything
/// that is not a socket is an error naming the path, never deleted. The socket is created
/// under umask 0177 (owner only), or with `group` under umask 0117 and that group
/// (0660), in a directory that must belong to root and be writable by nobody else.
pub fn bind_with(
    path: &Path,
    group: Option<u32>,
) -> Result<std::os::unix::net::UnixListener, ControlError> {
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
    // Its final mode and group from the moment it exists: no window between bind and a
    // chmod or chown. The group comes from the file-system gid the socket is created
    // with (CAP_SETGID, which start-up has), so no CAP_CHOWN is needed.
    let mask = if group.is_some() { 0o117 } else { 0o177 };
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    let fsgid = group.map(|g| nix::unistd::setfsgid(nix::unistd::Gid::from_raw(g)));
    let bound = std::os::unix::net::UnixListener::bind(path);
    if let Some(previous) = fsgid {
        nix::unistd::setfsgid(previous);
    }
    nix::sys::stat::umask(old);
    let listener = bound.map_err(io("binding"))?;
    if let Some(g) = group {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::symlink_metadata(path).map_err(io("checking"))?;
        if meta.gid() != g {
            let _ = std::fs::remove_file(path);
            return Err(ControlError::Group {
                path: p,
                group: g,
                source: nix::Error::EPERM,
            });
        }
        let reachable = path
            .parent()
            .and_then(|d| std::fs::metadata(d).ok())
            .is_some_and(|m| m.mode() & 0o011 != 0);
        if !reachable {
            tracing::warn!(path = %p, "the control socket's directory lets no group member in: control_group cannot reach it (mode it 0755, as the packaged unit does)");
        }
    }
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

/// Binds the control socket owner-only (see [`bind_with`]).
pub fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener, ControlError> {
    bind_with(path, None)
}

/// How long a reload may take before its client stops waiting (thousands of VIPs are
/// prepared off the loop, which takes seconds).
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Where a status comes from: the daemon's snapshot, completed off the loop.
pub type Source = Arc<dyn Fn() -> BoxFuture<Option<Status>> + Send + Sync>;
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Serves requests until aborted; `refused` counts connections over [`MAX_CLIENTS`].
pub async fn serve(
    listener: std::os::unix::net::UnixListener,
    backend: Arc<dyn Backend>,
    access: Access,
    refused: Arc<AtomicU64>,
) {
    let listener = match UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(error) => {
            warn!(error = %crate::error_chain(&error), "control socket cannot be served");
            return;
        }
    };
    let streams = Arc::new(tokio::sync::Semaphore::new(super::events::MAX_STREAMS));
    let serve = move |stream: UnixStream| {
        let (backend, streams) = (backend.clone(), streams.clone());
        async move {
            if let Err(error) = answer(stream, backend, access, streams).await {
                debug!(%error, "control client");
            }
        }
    };
    super::accept::bounded("control", MAX_CLIENTS, refused, listener, serve).await;
}

/// A client sends its one-line request at once; one that stays silent gives its slot back.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

/// Who is at the other end of `stream`: `SO_PEERCRED`, and `SO_PEERGROUPS` for the
/// supplementary groups (Linux 4.13 and later; none when the kernel has no answer).
pub fn peer_of(stream: &UnixStream) -> std::io::Result<Peer> {
    use std::os::fd::AsRawFd as _;
    let cred = stream.peer_cred()?;
    let mut groups = vec![0u32; 64];
    let mut len = (groups.len() * std::mem::size_of::<u32>()) as libc::socklen_t;
    // SAFETY: `groups` is a writable buffer of `len` bytes that outlives the call; the
    // kernel writes at most `len` bytes and says how many in `len`.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERGROUPS,
            groups.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let n = if r == 0 {
        len as usize / std::mem::size_of::<u32>()
    } else {
        0
    };
    groups.truncate(n);
    Ok(Peer {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
        groups,
    })
}

async fn write_line(
    write: &mut (impl tokio::io::AsyncWrite + Unpin),
    line: &str,
) -> std::io::Result<()> {
    write.write_all(line.as_bytes()).await?;
    write.write_all(b"\n").await
}

async fn answer(
    stream: UnixStream,
    backend: Arc<dyn Backend>,
    access: Access,
    streams: Arc<tokio::sync::Semaphore>,
) -> std::io::Result<()> {
    let peer = peer_of(&stream)?;
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    // Requests are tiny; a bounded read keeps a hostile client from growing memory.
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, 4096));
    tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let request = match serde_json::from_str::<Request>(line.trim()) {
        Ok(r) => r,
        Err(e) => {
            let reply = serde_json::json!({ "error": format!("bad request: {e}") });
            write_line(&mut write, &reply.to_string()).await?;
            return write.shutdown().await;
        }
    };
    let what = request.describe();
    match request {
        Request::Status => {
            debug!(uid = peer.uid, pid = ?peer.pid, "control: status");
            let Ok(Some(status)) = tokio::time::timeout(CLIENT_TIMEOUT, backend.status()).await
            else {
                return Ok(());
            };
            let reply = serde_json::to_string(&status).unwrap_or_default();
            tokio::time::timeout(CLIENT_TIMEOUT, write_line(&mut write, &reply))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        }
        Request::Events => {
            let Ok(_permit) = streams.try_acquire_owned() else {
                let reply = serde_json::json!({ "error": format!(
                    "{} event streams are served already", super::events::MAX_STREAMS) });
                write_line(&mut write, &reply.to_string()).await?;
                return write.shutdown().await;
            };
            info!(uid = peer.uid, pid = ?peer.pid, command = %what, "control command");
            let mut rx = backend.events();
            stream_events(&mut rx, &mut write, &mut reader).await?;
        }
        request if request.changes_something() && !access.may_change(&peer) => {
            warn!(uid = peer.uid, gid = peer.gid, pid = ?peer.pid, command = %what, "control command refused: not root and not in admin_group");
            let reply = Reply::refused(format!(
                "refused: {what} changes the running daemon; uid {} is neither root nor a \
                 member of its admin_group",
                peer.uid
            ));
            let text = serde_json::to_string(&reply).unwrap_or_default();
            write_line(&mut write, &text).await?;
        }
        request => {
            info!(uid = peer.uid, pid = ?peer.pid, command = %what, "control command");
            let wait = match request {
                Request::Reload { .. } => RELOAD_TIMEOUT,
                _ => CLIENT_TIMEOUT,
            };
            let Ok(Some(reply)) = tokio::time::timeout(wait, backend.command(request, peer)).await
            else {
                return Ok(());
            };
            let text = serde_json::to_string(&reply).unwrap_or_default();
            tokio::time::timeout(CLIENT_TIMEOUT, write_line(&mut write, &text))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        }
    }
    write.shutdown().await
}

/// Writes each event as a line until the client leaves, falls a whole ring behind, or
/// does not take a line within [`super::events::WRITE_TIMEOUT`].
async fn stream_events(
    rx: &mut tokio::sync::broadcast::Receiver<Arc<Event>>,
    write: &mut (impl tokio::io::AsyncWrite + Unpin),
    reader: &mut (impl tokio::io::AsyncBufRead + Unpin),
) -> std::io::Result<()> {
    use tokio::sync::broadcast::error::RecvError;
    let mut sink = String::new();
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            // The client closed its end (or sent more than it should): done.
            _ = reader.read_line(&mut sink) => return Ok(()),
        };
        let line = match ev {
            Ok(ev) => serde_json::to_string(&*ev).unwrap_or_default(),
            Err(RecvError::Lagged(missed)) => {
                debug!(missed, "event client too slow: dropped");
                let last = serde_json::json!({"error": format!(
                    "too slow: {missed} events missed; dropped")});
                let _ = tokio::time::timeout(
                    super::events::WRITE_TIMEOUT,
                    write_line(write, &last.to_string()),
                )
                .await;
                return Ok(());
            }
            Err(RecvError::Closed) => return Ok(()),
        };
        match tokio::time::timeout(super::events::WRITE_TIMEOUT, write_line(write, &line)).await {
            Ok(r) => r?,
            Err(_) => {
                debug!("event client does not read: dropped");
                return Ok(());
            }
        }
    }
}

/// Sends `request` to the vipd behind `path` and reads its one-line answer as `T`,
/// waiting at most `timeout`.
pub async fn ask<T: serde::de::DeserializeOwned>(
    path: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<T, ControlError> {
    let p = path.display().to_string();
    let work = async {
        let mut stream =
            UnixStream::connect(path)
                .await
                .map_err(|source| ControlError::NotRunning {
                    path: p.clone(),
                    source,
                })?;
        let req = serde_json::to_string(request).expect("serializable") + "\n";
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|source| ControlError::Io {
                what: "talking to",
                path: p.clone(),
                source,
            })?;
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
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ControlError::Timeout {
            path: p.clone(),
            timeout,
        })?
}

/// Opens an event stream on the vipd behind `path`: its lines, as they come.
pub async fn events(path: &Path) -> Result<tokio::io::Lines<BufReader<UnixStream>>, ControlError> {
    let p = path.display().to_string();
    let mut stream =
        UnixStream::connect(path)
            .await
            .map_err(|source| ControlError::NotRunning {
                path: p.clone(),
                source,
            })?;
    let req = serde_json::to_string(&Request::Events).expect("serializable") + "\n";
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|source| ControlError::Io {
            what: "talking to",
            path: p,
            source,
        })?;
    Ok(BufReader::new(stream).lines())
}

/// Asks the vipd behind `path` for its status.
pub async fn query(path: &Path) -> Result<Status, ControlError> {
    ask(path, &Request::Status, CLIENT_TIMEOUT).await
}

/// Sends a command other than status to the vipd behind `path`.
pub async fn command(path: &Path, request: &Request) -> Result<Reply, ControlError> {
    let wait = match request {
        // The daemon's own limit, and a little for the way back.
        Request::Reload { .. } => RELOAD_TIMEOUT + Duration::from_secs(5),
        _ => CLIENT_TIMEOUT + Duration::from_secs(1),
    };
    ask(path, request, wait).await
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
            demotions: Default::default(),
            last_reload: None,
            bfd_summary: Default::default(),
            processes: None,
            services: vec![],
            shared_vips: vec![],
        }
    }

    /// Answers status as `router_id` after `delay`, and every command by saying what it
    /// was asked and by whom.
    struct Fake {
        router_id: &'static str,
        delay: Duration,
        events: super::super::events::Publisher,
    }

    impl Backend for Fake {
        fn status(&self) -> BoxFuture<Option<Status>> {
            let (id, delay) = (self.router_id, self.delay);
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Some(status(id))
            })
        }

        fn command(&self, request: Request, peer: Peer) -> BoxFuture<Option<Reply>> {
            Box::pin(async move {
                Some(Reply {
                    ok: true,
                    message: format!("{} for uid {}", request.describe(), peer.uid),
                    instances: Vec::new(),
                })
            })
        }

        fn events(&self) -> tokio::sync::broadcast::Receiver<Arc<Event>> {
            self.events.subscribe()
        }
    }

    fn source(router_id: &'static str, delay: Duration) -> Arc<dyn Backend> {
        Arc::new(Fake {
            router_id,
            delay,
            events: Default::default(),
        })
    }

    #[test]
    fn only_root_and_the_admin_group_change_anything() {
        let peer = |uid, gid, groups: &[u32]| Peer {
            uid,
            gid,
            pid: None,
            groups: groups.to_vec(),
        };
        let none = Access::default();
        let admins = Access {
            admin_gid: Some(992),
        };
        assert!(none.may_change(&peer(0, 0, &[])));
        assert!(!none.may_change(&peer(1000, 992, &[992])));
        assert!(
            admins.may_change(&peer(1000, 100, &[4, 992])),
            "supplementary"
        );
        assert!(admins.may_change(&peer(1000, 992, &[])), "primary");
        assert!(!admins.may_change(&peer(1000, 100, &[991])));
        for (r, changes) in [
            (Request::Status, false),
            (Request::Events, false),
            (Request::Reload { dry_run: true }, false),
            (Request::Reload { dry_run: false }, true),
            (
                Request::Demote {
                    target: Target::Node,
                    by: 1,
                },
                true,
            ),
            (
                Request::Promote {
                    target: Target::SyncGroup("edge".into()),
                    by: None,
                },
                true,
            ),
            (
                Request::Handover {
                    target: Target::Instance("gw".into()),
                },
                true,
            ),
        ] {
            assert_eq!(r.changes_something(), changes, "{r:?}");
        }
    }

    #[test]
    fn requests_read_as_the_cli_writes_them() {
        let r: Request =
            serde_json::from_str(r#"{"command":"demote","target":{"instance":"gw"},"by":60}"#)
                .unwrap();
        assert_eq!(
            r,
            Request::Demote {
                target: Target::Instance("gw".into()),
                by: 60
            }
        );
        let r: Request = serde_json::from_str(r#"{"command":"promote","target":"node"}"#).unwrap();
        assert_eq!(
            r,
            Request::Promote {
                target: Target::Node,
                by: None
            }
        );
        let r: Request = serde_json::from_str(r#"{"command":"reload"}"#).unwrap();
        assert_eq!(r, Request::Reload { dry_run: false });
    }

    /// Real sockets: a command comes back with what the daemon said (root, here), an event
    /// published reaches a stream client as one JSON line, and a client that lets a
    /// whole ring of events pass unread is told so and dropped.
    #[tokio::test]
    async fn commands_are_answered_and_events_streamed_then_a_slow_client_dropped() {
        let p = path("events");
        let listener = bind(&p).unwrap();
        let events = super::super::events::Publisher::default();
        let backend = Arc::new(Fake {
            router_id: "r9",
            delay: Duration::ZERO,
            events: events.clone(),
        });
        let server = tokio::spawn(serve(
            listener,
            backend,
            Access::default(),
            Arc::new(AtomicU64::new(0)),
        ));
        let reply = command(
            &p,
            &Request::Handover {
                target: Target::Instance("gw".into()),
            },
        )
        .await
        .unwrap();
        assert!(
            reply.ok && reply.message == "handover instance gw for uid 0",
            "{reply:?}"
        );
        let mut lines = super::events(&p).await.unwrap();
        // The server subscribes once it read the request.
        tokio::time::sleep(Duration::from_millis(100)).await;
        events.publish(super::super::events::What::SyncTransition {
            sync_group: "edge".into(),
            to: "master".into(),
        });
        let line = lines.next_line().await.unwrap().unwrap();
        let ev: Event = serde_json::from_str(&line).unwrap();
        assert!(
            matches!(&ev.what, super::super::events::What::SyncTransition { sync_group, .. } if sync_group == "edge"),
            "{line}"
        );
        // A ring and more published at once, while the client reads nothing.
        for _ in 0..super::super::events::CAPACITY * 3 {
            events.publish(super::super::events::What::SyncTransition {
                sync_group: "edge".into(),
                to: "backup".into(),
            });
        }
        let mut last = String::new();
        let read_all = async {
            while let Ok(Some(l)) = lines.next_line().await {
                last = l;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), read_all)
            .await
            .expect("the slow client is closed");
        assert!(last.contains("too slow"), "{last}");
        server.abort();
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
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
        let server = tokio::spawn(serve(
            listener,
            source("r9", Duration::ZERO),
            Access::default(),
            refused,
        ));
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
            Access::default(),
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
