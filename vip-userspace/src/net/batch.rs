//! Reading a burst from a non-blocking socket: wait until it is readable, then take up to
//! `max` packets in one wake-up (one per packet would cost a wake-up of the reader and of
//! the loop each, which a flood turns into the daemon's whole budget). The VRRP socket,
//! the BFD Control socket and the BFD Echo socket read this way, each with its own
//! one-packet receive.

use std::io;

use tokio::io::unix::AsyncFd;

/// Waits for `fd` to be readable and takes up to `max` packets with `recv_one`, which
/// reads one without blocking and returns `Ok(None)` for a packet to skip. Returns at
/// least one packet; an error of `recv_one` other than `WouldBlock` ends the batch.
pub async fn recv_batch<S, T>(
    fd: &AsyncFd<S>,
    max: usize,
    mut recv_one: impl FnMut(&S) -> io::Result<Option<T>>,
) -> io::Result<Vec<T>>
where
    S: std::os::fd::AsRawFd,
{
    loop {
        let mut guard = fd.readable().await?;
        let mut out = Vec::new();
        while out.len() < max {
            match guard.try_io(|inner| recv_one(inner.get_ref())) {
                Ok(Ok(Some(p))) => out.push(p),
                Ok(Ok(None)) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => break,
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
    }
}
