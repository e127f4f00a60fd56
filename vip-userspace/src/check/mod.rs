//! Health checkers: the I/O behind `lb::health`'s decisions (keepalived's TCP_CHECK,
//! HTTP_GET / SSL_GET and MISC_CHECK). Each check runs as its own task on the checker's
//! runtime ([`runner`]), never on the daemon's event loop, and reports one result.

pub mod http;
pub mod runner;

use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpStream;

use crate::{
    exec::{self, RunAs},
    lb::service::CheckKind,
};

/// Why a check failed: what the log and status say.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("connecting to {addr}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error("the script failed: {0}")]
    Script(String),
}

/// Runs one check of `kind` against the real server at `target` (its address and
/// port), for at most `timeout`.
pub async fn run(
    kind: &CheckKind,
    target: SocketAddr,
    timeout: Duration,
    run_as: RunAs,
) -> Result<(), CheckError> {
    match kind {
        CheckKind::Tcp { port } => {
            let addr = SocketAddr::new(target.ip(), port.unwrap_or(target.port()));
            tcp(addr, timeout).await.map(drop)
        }
        CheckKind::Http { port, .. } => {
            let addr = SocketAddr::new(target.ip(), port.unwrap_or(target.port()));
            tokio::time::timeout(timeout, http::check(kind, addr))
                .await
                .map_err(|_| CheckError::Timeout(timeout))?
        }
        CheckKind::Script { argv } => {
            let env = [
                ("VIPD_REAL_ADDRESS", target.ip().to_string()),
                ("VIPD_REAL_PORT", target.port().to_string()),
            ];
            let outcome = exec::run(argv, &env, run_as, timeout).await;
            if outcome.success() {
                Ok(())
            } else {
                Err(CheckError::Script(exec::describe(&outcome)))
            }
        }
    }
}

/// A TCP connection to `addr` within `timeout` (`TCP_CHECK`): accepted is up.
pub async fn tcp(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, CheckError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(source)) => Err(CheckError::Connect { addr, source }),
        Err(_) => Err(CheckError::Timeout(timeout)),
    }
}
