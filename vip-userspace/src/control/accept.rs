//! The accept loop the control socket and the metrics listener share: at most `max`
//! clients are served at once, and one over the limit is closed at once and counted
//! (`connections_refused` in status and metrics) rather than left waiting, so a flood of
//! connections costs a closed socket each and never a task or a read.

use std::{
    future::Future,
    io,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::Semaphore;
use tracing::warn;

/// How long an accept that failed (out of descriptors, say) waits before the next.
const RETRY: Duration = Duration::from_millis(100);

/// A listening socket, as the loop needs it.
pub trait Listener {
    /// An accepted connection (with its peer, where that is worth logging).
    type Conn: Send + 'static;
    fn accept_one(&self) -> impl Future<Output = io::Result<Self::Conn>>;
}

impl Listener for tokio::net::UnixListener {
    type Conn = tokio::net::UnixStream;

    async fn accept_one(&self) -> io::Result<Self::Conn> {
        self.accept().await.map(|(s, _)| s)
    }
}

impl Listener for tokio::net::TcpListener {
    type Conn = (tokio::net::TcpStream, std::net::SocketAddr);

    async fn accept_one(&self) -> io::Result<Self::Conn> {
        self.accept().await
    }
}

/// Accepts on `listener` until aborted and runs `serve` on each connection in a task of
/// its own while a slot is free; `refused` counts the others. `what` names the listener
/// in logs. `serve` bounds its own time with the client.
pub async fn bounded<L, S, SF>(
    what: &'static str,
    max: usize,
    refused: Arc<AtomicU64>,
    listener: L,
    serve: S,
) where
    L: Listener,
    S: Fn(L::Conn) -> SF,
    SF: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max));
    loop {
        let conn = match listener.accept_one().await {
            Ok(c) => c,
            Err(error) => {
                warn!(listener = what, error = %crate::error_chain(&error), "accept failed");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refused.fetch_add(1, Ordering::Relaxed);
            drop(conn);
            continue;
        };
        let work = serve(conn);
        tokio::spawn(async move {
            let _permit = permit;
            work.await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real sockets: three clients connect to a limit of two whose sessions hold on; the
    /// third is closed at once and counted, and once a slot frees the next is served.
    #[tokio::test(flavor = "current_thread")]
    async fn clients_over_the_limit_are_closed_and_counted() {
        let dir = std::env::temp_dir().join(format!("vipd-accept-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let refused = Arc::new(AtomicU64::new(0));
        let (release_tx, release_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(bounded(
            "test",
            2,
            refused.clone(),
            listener,
            move |mut stream: tokio::net::UnixStream| {
                let mut release = release_rx.clone();
                async move {
                    use tokio::io::AsyncWriteExt as _;
                    let _ = release.wait_for(|r| *r).await;
                    let _ = stream.write_all(b"served\n").await;
                }
            },
        ));
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(tokio::net::UnixStream::connect(&path).await.unwrap());
        }
        let mut third = tokio::net::UnixStream::connect(&path).await.unwrap();
        let mut buf = Vec::new();
        use tokio::io::AsyncReadExt as _;
        let n = tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut buf))
            .await
            .expect("the refused client is closed at once")
            .unwrap();
        assert_eq!(n, 0, "nothing served to a refused client");
        assert_eq!(refused.load(Ordering::Relaxed), 1);
        release_tx.send(true).unwrap();
        for mut c in held {
            let mut line = String::new();
            tokio::time::timeout(Duration::from_secs(5), c.read_to_string(&mut line))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(line, "served\n");
        }
        server.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
