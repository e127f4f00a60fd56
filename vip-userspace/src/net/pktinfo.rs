//! Sending a datagram from a chosen source address out of a chosen interface
//! (`IP_PKTINFO` / `IPV6_PKTINFO`), for the VRRP and BFD sockets alike: both must send from
//! the address their protocol names (the VRRPv3 checksum covers it; BFD's single-hop
//! session is keyed by it), never one the kernel would pick.

use std::{
    io,
    net::{IpAddr, SocketAddr, SocketAddrV6},
    os::fd::RawFd,
};

use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};

/// Sends `bytes` on `fd` from `src` to `dst` (`port`; 0 on a raw socket) out of
/// `ifindex`. A link-local IPv6 destination is scoped to `ifindex`.
pub fn send_from(
    fd: RawFd,
    ifindex: u32,
    src: IpAddr,
    dst: IpAddr,
    port: u16,
    bytes: &[u8],
) -> io::Result<()> {
    let iov = [io::IoSlice::new(bytes)];
    let sent = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(_)) => {
            let info = libc::in_pktinfo {
                ipi_ifindex: ifindex as i32,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from_ne_bytes(s.octets()),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            let to = SockaddrStorage::from(SocketAddr::new(dst, port));
            sendmsg(
                fd,
                &iov,
                &[ControlMessage::Ipv4PacketInfo(&info)],
                MsgFlags::empty(),
                Some(&to),
            )
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: s.octets(),
                },
                ipi6_ifindex: ifindex,
            };
            let scope = if d.is_unicast_link_local() {
                ifindex
            } else {
                0
            };
            let to = SockaddrStorage::from(SocketAddrV6::new(d, port, 0, scope));
            sendmsg(
                fd,
                &iov,
                &[ControlMessage::Ipv6PacketInfo(&info)],
                MsgFlags::empty(),
                Some(&to),
            )
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "source and destination of different families",
            ));
        }
    };
    sent.map(|_| ()).map_err(io::Error::from)
}
