//! The sockets BFD travels on (RFC 5881).
//!
//! - Control packets: one UDP socket per address family bound to port 3784 receives
//!   them with their TTL / hop limit and interface (IP_PKTINFO); another, bound to a
//!   source port in 49152..=65535, sends them from the session's own address out of its
//!   interface, TTL 255. The kernel resolves the neighbour's MAC as for any UDP.
//! - Echo packets: sent and received as whole frames on an AF_PACKET socket per interface
//!   (they are addressed to ourselves, so only the neighbour's MAC takes them there; the
//!   returning echo has our own address as its source, which the IPv4 stack drops as a
//!   martian before any UDP socket could see it). A classic BPF filter wakes the socket
//!   for UDP to port 3785 only, and each frame comes with the kernel's receive timestamp
//!   (`SO_TIMESTAMPNS`), so an echo's round trip is the path's, however late the event
//!   loop reads it.

use std::{
    io::IoSliceMut,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use vip_common::{BFD_CONTROL_PORT, BFD_ECHO_PORT};

use super::{Result, io_err};

/// A Control packet as it arrived.
#[derive(Debug, Clone)]
pub struct ControlIn {
    pub ifindex: u32,
    pub src: IpAddr,
    pub ttl: u8,
    pub bytes: Vec<u8>,
}

/// Receives and sends Control packets of one address family.
pub struct ControlSocket {
    rx: AsyncFd<Socket>,
    tx: Socket,
    v6: bool,
    /// The source port of everything we send (one per session would do; one for all is
    /// simpler and what RFC 5881 §4 allows).
    port: u16,
}

fn udp(v6: bool) -> std::io::Result<Socket> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::DGRAM.cloexec(), Some(Protocol::UDP))?;
    if v6 {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

fn any(v6: bool, port: u16) -> SocketAddr {
    if v6 {
        SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)
    } else {
        SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)
    }
}

impl ControlSocket {
    pub fn open(v6: bool) -> Result<ControlSocket> {
        let fam = if v6 { "IPv6" } else { "IPv4" };
        let what = |s: &str| format!("BFD Control socket ({fam}): {s}");
        let rx = udp(v6).map_err(io_err(what("socket")))?;
        rx.bind(&any(v6, BFD_CONTROL_PORT).into())
            .map_err(io_err(what("binding port 3784")))?;
        if v6 {
            rx.set_recv_hoplimit_v6(true)
                .map_err(io_err(what("IPV6_RECVHOPLIMIT")))?;
            nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::Ipv6RecvPacketInfo, &true)
                .map_err(|e| io_err(what("IPV6_RECVPKTINFO"))(e.into()))?;
        } else {
            nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::Ipv4RecvTtl, &true)
                .map_err(|e| io_err(what("IP_RECVTTL"))(e.into()))?;
            nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::Ipv4PacketInfo, &true)
                .map_err(|e| io_err(what("IP_PKTINFO"))(e.into()))?;
        }
        let tx = udp(v6).map_err(io_err(what("socket")))?;
        if v6 {
            tx.set_unicast_hops_v6(255)
                .map_err(io_err(what("hop limit")))?;
            tx.set_tclass_v6(0xc0)
                .map_err(io_err(what("traffic class")))?;
        } else {
            tx.set_ttl_v4(255).map_err(io_err(what("TTL")))?;
            tx.set_tos_v4(0xc0).map_err(io_err(what("TOS")))?;
        }
        let port = bind_source_port(&tx, v6).map_err(io_err(what("binding a source port")))?;
        // SAFETY: the Socket owns its descriptor for as long as the AsyncFd holds it.
        let rx = unsafe { AsyncFd::register_with_interest(rx, tokio::io::Interest::READABLE) }
            .map_err(|e| io_err(what("registering with tokio"))(e.into()))?;
        Ok(ControlSocket { rx, tx, v6, port })
    }

    pub fn source_port(&self) -> u16 {
        self.port
    }

    /// Waits for Control packets and takes up to `max`.
    pub async fn recv_batch(&self, max: usize) -> Result<Vec<ControlIn>> {
        let mut buf = [0u8; 512];
        super::batch::recv_batch(&self.rx, max, |s| recv_one(s, self.v6, &mut buf))
            .await
            .map_err(io_err("receiving BFD Control"))
    }

    /// A Control packet already queued, without waiting.
    pub fn try_recv(&self) -> Option<ControlIn> {
        let mut buf = [0u8; 512];
        loop {
            match recv_one(self.rx.get_ref(), self.v6, &mut buf) {
                Ok(Some(c)) => return Some(c),
                Ok(None) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Sends `bytes` from `local` to `peer` out of `ifindex`.
    pub fn send(&self, ifindex: u32, local: IpAddr, peer: IpAddr, bytes: &[u8]) -> Result<()> {
        super::pktinfo::send_from(
            self.tx.as_raw_fd(),
            ifindex,
            local,
            peer,
            BFD_CONTROL_PORT,
            bytes,
        )
        .map_err(io_err(format!(
            "sending BFD Control from {local} to {peer}"
        )))
    }
}

/// Binds `s` to the first free port of RFC 5881's source range, starting somewhere
/// that differs between runs so a restart does not reuse the last run's port at once.
fn bind_source_port(s: &Socket, v6: bool) -> std::io::Result<u16> {
    let span = 65535 - 49152 + 1;
    let start = (std::process::id() % span) as u16;
    let mut last = None;
    for i in 0..256u16 {
        let port = 49152 + (start.wrapping_add(i) % span as u16);
        match s.bind(&any(v6, port).into()) {
            Ok(()) => return Ok(port),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::AddrInUse)))
}

fn recv_one(s: &Socket, v6: bool, buf: &mut [u8]) -> std::io::Result<Option<ControlIn>> {
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int, libc::in_pktinfo);
    let mut iov = [IoSliceMut::new(buf)];
    let msg =
        recvmsg::<SockaddrStorage>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
            .map_err(std::io::Error::from)?;
    let arrival = arrival(v6, msg.address.as_ref(), msg.cmsgs().into_iter().flatten());
    let n = msg.bytes;
    Ok(arrival.map(|(ifindex, src, ttl)| ControlIn {
        ifindex,
        src,
        ttl,
        bytes: buf[..n].to_vec(),
    }))
}

/// The interface, source and TTL of a received Control packet, from its sender's
/// address and ancillary data; `None` when any is missing or of the other family.
pub fn arrival(
    v6: bool,
    address: Option<&SockaddrStorage>,
    cmsgs: impl IntoIterator<Item = ControlMessageOwned>,
) -> Option<(u32, IpAddr, u8)> {
    let mut ttl = None;
    let mut ifindex = None;
    for c in cmsgs {
        match c {
            ControlMessageOwned::Ipv4Ttl(t) => ttl = Some(t),
            ControlMessageOwned::Ipv6HopLimit(h) => ttl = Some(h),
            ControlMessageOwned::Ipv4PacketInfo(i) => ifindex = Some(i.ipi_ifindex as u32),
            ControlMessageOwned::Ipv6PacketInfo(i) => ifindex = Some(i.ipi6_ifindex),
            _ => {}
        }
    }
    let src = address.and_then(|a| {
        if v6 {
            a.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip()))
        } else {
            a.as_sockaddr_in().map(|a| IpAddr::V4(a.ip()))
        }
    })?;
    Some((ifindex?, src, ttl?.clamp(0, 255) as u8))
}

/// Sends our Echo packets on one interface and receives them back.
pub struct EchoSocket {
    fd: AsyncFd<OwnedFd>,
}

/// A frame taken from an [`EchoSocket`], with the kernel's receive timestamp
/// (`CLOCK_REALTIME`, as every socket timestamp is), when it gave one.
#[derive(Debug, Clone)]
pub struct EchoFrame {
    pub frame: Vec<u8>,
    pub stamp: Option<std::time::Duration>,
}

const SOL_PACKET: libc::c_int = 263;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// UDP to port 3785, directly in IPv4 (no fragment) or IPv6 (no extension header), in an
/// untagged Ethernet frame: the only frames the socket is woken for.
fn echo_filter() -> [libc::sock_filter; 16] {
    const LD_H_ABS: u16 = 0x28;
    const LD_B_ABS: u16 = 0x30;
    const LD_H_IND: u16 = 0x48;
    const LDX_B_MSH: u16 = 0xb1;
    const JEQ: u16 = 0x15;
    const JSET: u16 = 0x45;
    const RET: u16 = 0x06;
    let i = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let port = u32::from(BFD_ECHO_PORT);
    [
        i(LD_H_ABS, 0, 0, 12),
        i(JEQ, 0, 7, 0x0800),
        i(LD_B_ABS, 0, 0, 23),
        i(JEQ, 0, 11, 17),
        i(LD_H_ABS, 0, 0, 20),
        i(JSET, 9, 0, 0x1fff),
        i(LDX_B_MSH, 0, 0, 14),
        i(LD_H_IND, 0, 0, 16),
        i(JEQ, 5, 6, port),
        i(JEQ, 0, 5, 0x86dd),
        i(LD_B_ABS, 0, 0, 20),
        i(JEQ, 0, 3, 17),
        i(LD_H_ABS, 0, 0, 56),
        i(JEQ, 0, 1, port),
        i(RET, 0, 0, 0x0004_0000),
        i(RET, 0, 0, 0),
    ]
}

fn check(r: libc::c_int) -> std::io::Result<libc::c_int> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl EchoSocket {
    pub fn open(ifindex: u32) -> Result<EchoSocket> {
        let what = |s: &str| format!("BFD Echo socket on ifindex {ifindex}: {s}");
        // Protocol 0 until the filter is on: nothing queues before it.
        // SAFETY: plain socket(2); checked before use.
        let raw = check(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })
        .map_err(io_err(what("socket")))?;
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let filter = echo_filter();
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        let one: libc::c_int = 1;
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
            .map_err(|e| io_err(what("SO_TIMESTAMPNS"))(e.into()))?;
        // SAFETY: option values are valid for the lengths passed; `filter` outlives the
        // call (the kernel copies the program).
        unsafe {
            check(libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&prog as *const libc::sock_fprog).cast(),
                size_of::<libc::sock_fprog>() as u32,
            ))
            .map_err(io_err(what("SO_ATTACH_FILTER")))?;
            check(libc::setsockopt(
                fd.as_raw_fd(),
                SOL_PACKET,
                PACKET_IGNORE_OUTGOING,
                (&one as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as u32,
            ))
            .map_err(io_err(what("PACKET_IGNORE_OUTGOING")))?;
        }
        // SAFETY: sockaddr_ll is plain data; zero is a valid start.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: the address is valid for its length.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        })
        .map_err(io_err(what("bind")))?;
        // SAFETY: the OwnedFd owns its descriptor for as long as the AsyncFd holds it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| io_err(what("registering with tokio"))(e.into()))?;
        Ok(EchoSocket { fd })
    }

    /// Sends one whole frame out of the interface.
    pub fn send(&self, frame: &[u8]) -> Result<()> {
        // SAFETY: the buffer is valid for its length; the socket is bound to its
        // interface, so no address is needed.
        let n = unsafe {
            libc::send(
                self.fd.get_ref().as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
            )
        };
        check(n as libc::c_int)
            .map(|_| ())
            .map_err(io_err("sending a BFD Echo frame"))
    }

    /// A frame already queued, without waiting.
    pub fn try_recv(&self) -> Option<EchoFrame> {
        recv_frame(self.fd.get_ref()).ok()
    }

    /// Waits for frames and takes up to `max`, each copied out at its own size.
    pub async fn recv_batch(&self, max: usize) -> Result<Vec<EchoFrame>> {
        super::batch::recv_batch(&self.fd, max, |fd| recv_frame(fd).map(Some))
            .await
            .map_err(io_err("receiving BFD Echo"))
    }
}

/// One frame and its receive timestamp, without waiting.
fn recv_frame(fd: &OwnedFd) -> std::io::Result<EchoFrame> {
    let mut buf = [0u8; 256];
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let (n, stamp) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(std::io::Error::from)?;
        let stamp = msg.cmsgs().ok().and_then(|mut c| {
            c.find_map(|c| match c {
                ControlMessageOwned::ScmTimestampns(ts) => Some(std::time::Duration::new(
                    ts.tv_sec().max(0) as u64,
                    ts.tv_nsec().clamp(0, 999_999_999) as u32,
                )),
                _ => None,
            })
        });
        (msg.bytes, stamp)
    };
    Ok(EchoFrame {
        frame: buf[..n.min(buf.len())].to_vec(),
        stamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classic BPF filter, run by hand: its jumps are easy to get wrong.
    fn run(prog: &[libc::sock_filter], pkt: &[u8]) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let byte = |o: usize| pkt.get(o).copied().map(u32::from);
        let half = |o: usize| Some((byte(o)? << 8) | byte(o + 1)?);
        loop {
            let i = prog[pc];
            let k = i.k as usize;
            pc += 1;
            match i.code {
                0x28 => match half(k) {
                    Some(v) => a = v,
                    None => return 0,
                },
                0x30 => match byte(k) {
                    Some(v) => a = v,
                    None => return 0,
                },
                0x48 => match half(x as usize + k) {
                    Some(v) => a = v,
                    None => return 0,
                },
                0xb1 => match byte(k) {
                    Some(v) => x = (v & 0xf) * 4,
                    None => return 0,
                },
                0x15 => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                0x45 => pc += usize::from(if a & i.k != 0 { i.jt } else { i.jf }),
                0x06 => return i.k,
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn the_filter_takes_udp_to_the_echo_port_only() {
        use crate::net::frames::udp;
        let f = echo_filter();
        let v4: IpAddr = "192.0.2.11".parse().unwrap();
        let v6: IpAddr = "fe80::1".parse().unwrap();
        for a in [v4, v6] {
            let echo = udp([2; 6], [4; 6], a, a, (49152, 3785), &[0; 16]).unwrap();
            assert_ne!(run(&f, &echo), 0, "{a}");
            let control = udp([2; 6], [4; 6], a, a, (49152, 3784), &[0; 24]).unwrap();
            assert_eq!(run(&f, &control), 0, "{a}");
            // Cut before the port ends: never taken, never read past the end.
            let port_end = if a.is_ipv4() {
                14 + 20 + 4
            } else {
                14 + 40 + 4
            };
            for n in 0..port_end {
                assert_eq!(run(&f, &echo[..n]), 0);
            }
        }
        // IPv4 with options: the port is found after them.
        let mut opt = udp([2; 6], [4; 6], v4, v4, (49152, 3785), &[0; 16]).unwrap();
        opt[14] = 0x46;
        opt.splice(34..34, [1, 1, 1, 1]);
        assert_ne!(run(&f, &opt), 0);
        // A fragment.
        let mut frag = udp([2; 6], [4; 6], v4, v4, (49152, 3785), &[0; 16]).unwrap();
        frag[21] = 8;
        assert_eq!(run(&f, &frag), 0);
    }
}
