//! The control socket: a UNIX stream socket speaking one JSON request and one JSON reply
//! per connection. `vipd status` is its client.

use std::{path::Path, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
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

/// Binds the control socket, replacing a stale one a dead daemon left behind but never a
/// live daemon's.
pub async fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let p = path.display().to_string();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ControlError::Io {
            what: "creating the directory of",
            path: p.clone(),
            source,
        })?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(ControlError::InUse { path: p });
        }
        std::fs::remove_file(path).map_err(|source| ControlError::Io {
            what: "removing stale",
            path: p.clone(),
            source,
        })?;
    }
    let listener = UnixListener::bind(path).map_err(|source| ControlError::Io {
        what: "binding",
        path: p.clone(),
        source,
    })?;
    // Status exposes configuration details: root only.
    use std::os::unix::fs::PermissionsExt as _;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    Ok(listener)
}

const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves requests until the daemon drops `to_daemon`'s receiver.
pub async fn serve(listener: UnixListener, to_daemon: mpsc::Sender<StatusRequest>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(error) => {
                warn!(%error, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let to_daemon = to_daemon.clone();
        tokio::spawn(async move {
            // A client that never sends or never reads must not hold a task forever.
            match tokio::time::timeout(CLIENT_TIMEOUT, answer(stream, to_daemon)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => debug!(%error, "control client"),
                Err(_) => debug!("control client timed out"),
            }
        });
    }
}

async fn answer(stream: UnixStream, to_daemon: mpsc::Sender<StatusRequest>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    // Requests are tiny; a bounded read keeps a hostile client from growing memory.
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, 4096));
    reader.read_line(&mut line).await?;
    let reply = match serde_json::from_str::<Request>(line.trim()) {
        Ok(Request::Status) => {
            let (tx, rx) = oneshot::channel();
            if to_daemon.send(tx).await.is_err() {
                return Ok(());
            }
            match rx.await {
                Ok(status) => serde_json::to_string(&status).unwrap_or_default(),
                Err(_) => return Ok(()),
            }
        }
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
    use super::*;

    fn path(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("vipd-ctl-{}-{tag}/ctl.sock", std::process::id()))
    }

    #[tokio::test]
    async fn a_live_socket_is_never_taken_over_but_a_stale_one_is_replaced() {
        let p = path("live");
        let first = bind(&p).await.unwrap();
        assert!(matches!(bind(&p).await, Err(ControlError::InUse { .. })));
        drop(first);
        // The file is left behind by a dead daemon: the next one takes the path.
        assert!(p.exists());
        let second = bind(&p).await;
        assert!(second.is_ok(), "{second:?}");
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
    }

    #[tokio::test]
    async fn query_gets_the_daemon_snapshot_and_bad_requests_get_an_error() {
        let p = path("query");
        let listener = bind(&p).await.unwrap();
        let (tx, mut rx) = mpsc::channel::<StatusRequest>(1);
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                let _ = req.send(Status {
                    router_id: "r9".into(),
                    pid: 9,
                    uptime_ms: 1,
                    pin_path: String::new(),
                    instances: vec![],
                    xdp: Default::default(),
                    conflicts: vec![],
                });
            }
        });
        let server = tokio::spawn(serve(listener, tx));
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
    async fn query_without_a_daemon_says_so() {
        let p = path("none");
        assert!(matches!(
            query(&p).await,
            Err(ControlError::NotRunning { .. })
        ));
    }
}
