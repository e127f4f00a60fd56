//! Raw IP sockets (protocol 112) bound to one interface: they receive the advertisements
//! the XDP program admitted (multicast after joining the VRRP group, and unicast to our
//! addresses), and send unicast advertisements to configured peers.

use std::{
    io::{IoSliceMut, Read as _},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::fd::AsRawFd,
};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use vip_common::wire::{IPPROTO_VRRP, VRRP_GROUP_V4, VRRP_GROUP_V6, VRRP_TTL};

use super::{Result, io_err};

/// An advertisement as it arrived, before decoding.
#[derive(Debug, Clone)]
pub struct Received {
    pub src: IpAddr,
    /// Needed for the VRRPv3 checksum's pseudo-header.
    pub dst: IpAddr,
    /// TTL / hop limit as received (must be 255).
    pub ttl: u8,
    /// The VRRP message: IPv4 header (and options) already removed.
    pub vrrp: Vec<u8>,
}

pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    v6: bool,
    ifindex: u32,
}

const MAX_PACKET: usize = 65_536;

impl VrrpSocket {
    /// Opens a receiving (and unicast-sending) socket on `ifname` for `family`.
    pub fn open(ifname: &str, ifindex: u32, v6: bool) -> Result<Self> {
        let what = |s: &str| format!("VRRP socket on {ifname}: {s}");
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let s = Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_VRRP as i32)))
            .map_err(io_err(what("socket")))?;
        s.set_nonblocking(true)
            .map_err(io_err(what("nonblocking")))?;
        s.bind_device(Some(ifname.as_bytes()))
            .map_err(io_err(what("SO_BINDTODEVICE")))?;
        if v6 {
            s.join_multicast_v6(&Ipv6Addr::from(VRRP_GROUP_V6), ifindex)
                .map_err(io_err(what("joining ff02::12")))?;
            s.set_multicast_loop_v6(false)
                .map_err(io_err(what("loop")))?;
            s.set_multicast_hops_v6(VRRP_TTL as u32)
                .map_err(io_err(what("multicast hops")))?;
            s.set_unicast_hops_v6(VRRP_TTL as u32)
                .map_err(io_err(what("unicast hops")))?;
            s.set_recv_hoplimit_v6(true)
                .map_err(io_err(what("IPV6_RECVHOPLIMIT")))?;
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv6RecvPacketInfo, &true)
                .map_err(|e| io_err(what("IPV6_RECVPKTINFO"))(e.into()))?;
        } else {
            s.join_multicast_v4_n(
                &Ipv4Addr::from(VRRP_GROUP_V4),
                &InterfaceIndexOrAddress::Index(ifindex),
            )
            .map_err(io_err(what("joining 224.0.0.18")))?;
            s.set_multicast_loop_v4(false)
                .map_err(io_err(what("loop")))?;
            s.set_ttl_v4(VRRP_TTL as u32).map_err(io_err(what("TTL")))?;
            s.set_multicast_ttl_v4(VRRP_TTL as u32)
                .map_err(io_err(what("multicast TTL")))?;
            s.set_tos_v4(0xc0).map_err(io_err(what("TOS")))?;
        }
        // SAFETY: the Socket owns its descriptor for as long as the AsyncFd holds it.
        let fd = unsafe { AsyncFd::register_with_interest(s, tokio::io::Interest::READABLE) }
            .map_err(|e| io_err(what("registering with tokio"))(e.into()))?;
        Ok(Self { fd, v6, ifindex })
    }

    /// Waits until packets arrive, then takes up to `max` of them: one wake-up per burst
    /// rather than per packet when hundreds of virtual routers advertise. `buf` is the
    /// receive buffer, reused across calls; each packet is copied out at its own size.
    pub async fn recv_batch(&self, buf: &mut Vec<u8>, max: usize) -> Result<Vec<Received>> {
        buf.resize(MAX_PACKET, 0);
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(io_err("waiting on a VRRP socket"))?;
            let mut out = Vec::new();
            while out.len() < max {
                match guard.try_io(|inner| self.recv_now(inner.get_ref(), buf)) {
                    Ok(Ok(Some(r))) => out.push(r),
                    // Not an IP packet we can read: skip it.
                    Ok(Ok(None)) => continue,
                    Ok(Err(e)) => return Err(io_err("receiving VRRP")(e)),
                    Err(_would_block) => break,
                }
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }

    fn recv_now(&self, s: &Socket, buf: &mut [u8]) -> std::io::Result<Option<Received>> {
        if self.v6 {
            recv_v6(s, buf)
        } else {
            let n = (&*s).read(buf)?;
            Ok(parse_ipv4(&buf[..n]))
        }
    }

    /// Sends a VRRP message from `src` to a unicast peer on this socket's interface; the
    /// kernel adds the IP header (TTL / hop limit 255 set at open). The source is given
    /// explicitly (IP_PKTINFO / IPV6_PKTINFO): the VRRPv3 checksum covers it, so the
    /// kernel must not pick another (a global IPv6 source for a global peer, say, where
    /// the advert was summed over the link-local one).
    pub fn send_unicast(&self, src: IpAddr, dst: IpAddr, vrrp: &[u8]) -> Result<()> {
        use nix::sys::socket::{ControlMessage, SockaddrStorage, sendmsg};
        let what = || format!("sending VRRP from {src} to {dst}");
        let iov = [std::io::IoSlice::new(vrrp)];
        let fd = self.fd.get_ref().as_raw_fd();
        let sent = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(_)) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: self.ifindex as i32,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from_ne_bytes(s.octets()),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let to = SockaddrStorage::from(SocketAddr::new(dst, 0));
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
                    ipi6_ifindex: self.ifindex,
                };
                // A link-local peer is reached on this interface.
                let scope = if d.is_unicast_link_local() {
                    self.ifindex
                } else {
                    0
                };
                let to = SockaddrStorage::from(std::net::SocketAddrV6::new(d, 0, 0, scope));
                sendmsg(
                    fd,
                    &iov,
                    &[ControlMessage::Ipv6PacketInfo(&info)],
                    MsgFlags::empty(),
                    Some(&to),
                )
            }
            _ => {
                return Err(io_err(what())(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "source and peer of different families",
                )));
            }
        };
        sent.map(|_| ())
            .map_err(|e| io_err(what())(std::io::Error::from(e)))
    }
}

/// Splits a received IPv4 packet into its addresses, TTL and VRRP payload, honouring IHL
/// and the total length (never trusting either beyond what was received).
pub fn parse_ipv4(pkt: &[u8]) -> Option<Received> {
    let first = *pkt.first()?;
    let ihl = ((first & 0x0f) as usize) * 4;
    if first >> 4 != 4 || ihl < 20 || pkt.len() < ihl {
        return None;
    }
    let total = u16::from_be_bytes([pkt[2], pkt[3]]) as usize;
    let end = total.min(pkt.len());
    if end < ihl {
        return None;
    }
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    Some(Received {
        src: src.into(),
        dst: dst.into(),
        ttl: pkt[8],
        vrrp: pkt[ihl..end].to_vec(),
    })
}

fn recv_v6(s: &Socket, buf: &mut [u8]) -> std::io::Result<Option<Received>> {
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
    let (n, src, hop, dst) = {
        let mut iov = [IoSliceMut::new(buf)];
        let msg =
            recvmsg::<SockaddrIn6>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
                .map_err(std::io::Error::from)?;
        let mut hop = None;
        let mut dst = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv6HopLimit(h) => hop = Some(h),
                    ControlMessageOwned::Ipv6PacketInfo(info) => {
                        dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr))
                    }
                    _ => {}
                }
            }
        }
        (msg.bytes, msg.address.map(|a| a.ip()), hop, dst)
    };
    let (Some(src), Some(hop), Some(dst)) = (src, hop, dst) else {
        return Ok(None);
    };
    Ok(Some(Received {
        src: src.into(),
        dst: dst.into(),
        ttl: hop.clamp(0, 255) as u8,
        vrrp: buf[..n].to_vec(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_options_are_skipped_and_lengths_trusted_only_as_far_as_received() {
        let mut pkt = vec![0x46, 0xc0, 0, 32, 0, 0, 0, 0, 255, 112, 0, 0];
        pkt.extend_from_slice(&[192, 0, 2, 11, 224, 0, 0, 18]);
        pkt.extend_from_slice(&[1, 1, 1, 1]);
        pkt.extend_from_slice(&[0x31, 51, 100, 1, 0, 100, 0, 0]);
        let r = parse_ipv4(&pkt).unwrap();
        assert_eq!(r.src, IpAddr::from([192, 0, 2, 11]));
        assert_eq!(r.ttl, 255);
        assert_eq!(r.vrrp, [0x31, 51, 100, 1, 0, 100, 0, 0]);
        // Total length claims more than arrived: only what arrived is used.
        pkt[3] = 200;
        assert_eq!(parse_ipv4(&pkt).unwrap().vrrp.len(), 8);
        assert!(parse_ipv4(&pkt[..10]).is_none());
        assert!(parse_ipv4(&[0x45]).is_none());
    }
}
