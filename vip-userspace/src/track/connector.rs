//! The kernel's process connector (`NETLINK_CONNECTOR`, `CN_IDX_PROC`): a netlink
//! socket on which the kernel reports every fork, exec, exit and rename on the host.
//! netlink-sys provides the socket and proc-connector decodes the events; what is written
//! here is what neither does: subscribing and checking the kernel's acknowledgement, taking
//! a socket handed over by whoever started vipd, refusing messages that do not come from
//! the kernel, and telling lost events apart.
//!
//! The connector exists only in the initial network namespace: a socket opened in another
//! one reaches no connector (subscribing fails with `ECONNREFUSED`). A vipd started in
//! another namespace (a lab, a container) can be handed a socket opened in the initial
//! one, the way systemd hands over sockets (`LISTEN_FDS`, `LISTEN_PID`, the descriptor
//! named `proc-events` in `LISTEN_FDNAMES`; docs/operations.md).

use std::{
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
    time::{Duration, Instant},
};

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_CONNECTOR};
use proc_connector::{Error as CnError, ProcEvent, parse_netlink_message};

/// The name a handed-over connector socket carries in `LISTEN_FDNAMES`.
pub const FD_NAME: &str = "proc-events";

const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const NLMSG_DONE: u16 = 3;
/// How long the kernel's acknowledgement of a subscription may take; without one the
/// kernel has no process events (`CONFIG_PROC_EVENTS`) or vipd is outside the initial
/// user or PID namespace, where the kernel ignores the request.
const ACK_WAIT: Duration = Duration::from_secs(1);
/// One event is 76 bytes; the kernel never chains them in one datagram.
const RECV_BUF: usize = 1024;

/// What reading the connector found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Event(ProcEvent),
    /// The socket's buffer overflowed and the kernel dropped events (`ENOBUFS`).
    Lost,
    /// Nothing more to read now.
    Empty,
    /// Not from the kernel, not a process event, or malformed: dropped.
    Ignored,
}

/// A subscribed connector socket, non-blocking.
#[derive(Debug)]
pub struct Connector {
    socket: Socket,
    buf: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "the kernel's process connector is reachable only from the initial network \
         namespace, and vipd runs in another: run vipd in the host's network namespace, \
         or hand it a connector socket opened there (LISTEN_FDS with the descriptor named \
         {FD_NAME:?}; docs/operations.md, \"Tracking processes\")"
    )]
    OtherNamespace,
    #[error(
        "the kernel did not acknowledge the process-events subscription within {ACK_WAIT:?}: \
         it lacks CONFIG_PROC_EVENTS, or vipd runs outside the initial user or PID namespace"
    )]
    NoAck,
    #[error("the kernel refused the process-events subscription: {0} (it needs CAP_NET_ADMIN)")]
    Refused(io::Error),
    #[error("descriptor {fd} handed over as {FD_NAME:?} is not a process connector socket")]
    NotConnector { fd: RawFd },
    #[error("{what}: {error}")]
    Io {
        what: &'static str,
        error: io::Error,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> OpenError {
    move |error| OpenError::Io { what, error }
}

/// The socket handed over as [`FD_NAME`], if any (systemd's socket passing). The
/// environment is left as it is: scripts run with a cleared one anyway.
pub fn inherited() -> Result<Option<OwnedFd>, OpenError> {
    let fds = sd_notify::listen_fds_with_names(false).map_err(io_err("reading LISTEN_FDS"))?;
    for (fd, name) in fds {
        if name == FD_NAME {
            // SAFETY: systemd's protocol hands this descriptor to this process (LISTEN_PID
            // was checked); nothing else in vipd takes the LISTEN_FDS descriptors.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            let protocol = socket_int(&owned, libc::SO_PROTOCOL);
            let family = socket_int(&owned, libc::SO_DOMAIN);
            if family != Some(libc::AF_NETLINK) || protocol != Some(NETLINK_CONNECTOR as i32) {
                return Err(OpenError::NotConnector { fd });
            }
            return Ok(Some(owned));
        }
    }
    Ok(None)
}

fn socket_int(fd: &OwnedFd, option: libc::c_int) -> Option<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`, which is that size.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(value)
}

impl Connector {
    /// Opens (or takes over `inherited`), binds to the process events group and
    /// subscribes; waits for the kernel's acknowledgement.
    pub fn open(inherited: Option<OwnedFd>) -> Result<Connector, OpenError> {
        let socket = match inherited {
            Some(fd) => {
                // SAFETY: the descriptor is a connector socket (checked in `inherited`) we
                // own; netlink-sys closes it on drop.
                let s = unsafe { Socket::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) };
                let mut s = s;
                // A socket bound already (systemd binds the ones it passes) refuses a
                // second bind with EINVAL; one not yet bound takes the group here.
                match s.bind(&SocketAddr::new(0, CN_IDX_PROC)) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        s.add_membership(CN_IDX_PROC)
                            .map_err(io_err("joining the process events group"))?;
                    }
                    Err(e) => return Err(io_err("binding the connector socket")(e)),
                }
                s
            }
            None => {
                let mut s = Socket::new(NETLINK_CONNECTOR)
                    .map_err(io_err("opening the connector socket"))?;
                s.bind(&SocketAddr::new(0, CN_IDX_PROC))
                    .map_err(io_err("binding the connector socket"))?;
                s
            }
        };
        let mut c = Connector {
            socket,
            buf: Vec::with_capacity(RECV_BUF),
        };
        c.subscribe()?;
        c.socket
            .set_non_blocking(true)
            .map_err(io_err("making the connector socket non-blocking"))?;
        Ok(c)
    }

    fn subscribe(&mut self) -> Result<(), OpenError> {
        let msg = listen_message();
        match self.socket.send_to(&msg, &SocketAddr::new(0, 0), 0) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                return Err(OpenError::OtherNamespace);
            }
            Err(e) => return Err(OpenError::Refused(e)),
        }
        // Blocking, with a receive timeout: events that come before the acknowledgement
        // are dropped, which is harmless since the scan of /proc follows.
        let deadline = Instant::now() + ACK_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(OpenError::NoAck);
            }
            let tv = nix::sys::time::TimeVal::new(
                left.as_secs() as libc::time_t,
                left.subsec_micros().max(1) as libc::suseconds_t,
            );
            nix::sys::socket::setsockopt(
                &self.socket,
                nix::sys::socket::sockopt::ReceiveTimeout,
                &tv,
            )
            .map_err(|e| io_err("setting a receive timeout")(e.into()))?;
            match self.read_blocking() {
                Ok(Some(ProcEvent::Unknown { what: 0, raw_data })) => {
                    let err = raw_data
                        .get(..4)
                        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    return if err == 0 {
                        Ok(())
                    } else {
                        Err(OpenError::Refused(io::Error::from_raw_os_error(err as i32)))
                    };
                }
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) => return Err(io_err("reading the subscription's acknowledgement")(e)),
            }
        }
    }

    fn read_blocking(&mut self) -> io::Result<Option<ProcEvent>> {
        match self.recv()? {
            Read::Event(e) => Ok(Some(e)),
            _ => Ok(None),
        }
    }

    fn recv(&mut self) -> io::Result<Read> {
        self.buf.clear();
        self.buf.reserve(RECV_BUF);
        let (n, from) = self.socket.recv_from(&mut self.buf, 0)?;
        // Only the kernel (port 0) speaks for the process events group.
        if from.port_number() != 0 {
            return Ok(Read::Ignored);
        }
        Ok(decode(&self.buf, n))
    }

    /// The next message, without waiting.
    pub fn read(&mut self) -> io::Result<Read> {
        match self.recv() {
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Ok(Read::Lost),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) => {
                Ok(Read::Empty)
            }
            other => other,
        }
    }

    /// Doubles the receive buffer after events were lost, up to `max` bytes (the kernel
    /// caps it at `net.core.rmem_max`); the new size.
    pub fn grow_buffer(&self, max: usize) -> Option<usize> {
        let now = self.socket.get_rx_buf_sz().ok()?;
        let want = (now.saturating_mul(2)).min(max);
        if want <= now {
            return None;
        }
        self.socket.set_rx_buf_sz(want).ok()?;
        self.socket.get_rx_buf_sz().ok()
    }

    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// `PROC_CN_MCAST_LISTEN` to the connector: a netlink header, a `cn_msg`, the operation.
fn listen_message() -> Vec<u8> {
    let op = PROC_CN_MCAST_LISTEN.to_ne_bytes();
    let cn_len = 20 + op.len();
    let total = 16 + cn_len;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills in ours
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // ack
    m.extend_from_slice(&(op.len() as u16).to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&op);
    m
}

/// One datagram from the kernel.
fn decode(buf: &[u8], n: usize) -> Read {
    match parse_netlink_message(buf, n.min(buf.len())) {
        Ok(Some(e)) => Read::Event(e),
        Ok(None) => Read::Ignored,
        Err(CnError::Overrun) => Read::Lost,
        Err(_) => Read::Ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message as the kernel sends it: header, cn_msg, proc_event (what, cpu,
    /// timestamp, then the event's fields).
    fn kernel_message(what: u32, fields: &[u32]) -> Vec<u8> {
        let mut ev = Vec::new();
        ev.extend_from_slice(&what.to_ne_bytes());
        ev.extend_from_slice(&0u32.to_ne_bytes());
        ev.extend_from_slice(&0u64.to_ne_bytes());
        for f in fields {
            ev.extend_from_slice(&f.to_ne_bytes());
        }
        // The union is sized for its largest member.
        ev.resize(16 + 24, 0);
        let mut cn = Vec::new();
        cn.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        cn.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        cn.extend_from_slice(&7u32.to_ne_bytes());
        cn.extend_from_slice(&0u32.to_ne_bytes());
        cn.extend_from_slice(&(ev.len() as u16).to_ne_bytes());
        cn.extend_from_slice(&0u16.to_ne_bytes());
        cn.extend_from_slice(&ev);
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + cn.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&cn);
        m
    }

    #[test]
    fn the_listen_message_is_what_the_kernel_reads() {
        let m = listen_message();
        assert_eq!(m.len(), 16 + 20 + 4);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 40);
        assert_eq!(u16::from_ne_bytes(m[4..6].try_into().unwrap()), NLMSG_DONE);
        assert_eq!(
            u32::from_ne_bytes(m[16..20].try_into().unwrap()),
            CN_IDX_PROC
        );
        assert_eq!(
            u16::from_ne_bytes(m[32..34].try_into().unwrap()),
            4,
            "cn_msg len"
        );
        assert_eq!(
            u32::from_ne_bytes(m[36..40].try_into().unwrap()),
            PROC_CN_MCAST_LISTEN
        );
    }

    #[test]
    fn kernel_events_decode_and_garbage_is_ignored() {
        let fork = kernel_message(0x1, &[10, 10, 11, 11]);
        match decode(&fork, fork.len()) {
            Read::Event(ProcEvent::Fork {
                parent_tgid,
                child_pid,
                child_tgid,
                ..
            }) => assert_eq!((parent_tgid, child_pid, child_tgid), (10, 11, 11)),
            other => panic!("{other:?}"),
        }
        let exit = kernel_message(0x8000_0000, &[12, 12, 0, 9, 1, 1]);
        assert!(matches!(
            decode(&exit, exit.len()),
            Read::Event(ProcEvent::Exit {
                pid: 12,
                tgid: 12,
                ..
            })
        ));
        // Cut short, or claiming more than arrived: dropped, never a panic.
        for n in [0, 3, 16, 30, fork.len() - 1] {
            assert!(matches!(decode(&fork[..n], n), Read::Ignored), "{n} bytes");
        }
        assert!(matches!(
            decode(&fork, fork.len() + 100),
            Read::Ignored | Read::Event(_)
        ));
        let mut other = fork.clone();
        other[16] = 9; // another connector's index
        assert_eq!(decode(&other, other.len()), Read::Ignored);
    }
}
