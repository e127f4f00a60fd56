//! Raw IP sockets (protocol 112) bound to one interface: they receive the advertisements
//! the XDP program admitted (multicast after joining the VRRP group, and unicast to our
//! addresses), and send unicast advertisements to configured peers.
//!
//! Every socket carries a filter (`super::vrrp_filter`) from the moment it exists: it
//! refuses everything until [`VrrpSocket::listen`] says which VRIDs to read, so VRRP for
//! VRIDs this node does not run is never read, not even once.

use std::{
    io::IoSliceMut,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd,
    sync::atomic::{AtomicU64, Ordering},
};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6, recvmsg};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use vip_common::wire::{IPPROTO_VRRP, VRRP_GROUP_V4, VRRP_GROUP_V6, VRRP_TTL};

use super::{NetError, Result, io_err, vrrp_filter};
use crate::vrrp::{Family, listen::Listen};

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
    /// The kernel's count of packets this socket's receive buffer had no room for, as
    /// last reported with a received packet (SO_RXQ_OVFL).
    dropped: AtomicU64,
}

const MAX_PACKET: usize = 65_536;

impl VrrpSocket {
    /// Opens a receiving (and unicast-sending) socket on `ifname` for `family`.
    pub fn open(ifname: &str, ifindex: u32, v6: bool) -> Result<Self> {
        let what = |s: &str| format!("VRRP socket on {ifname}: {s}");
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let s = Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_VRRP as i32)))
            .map_err(io_err(what("socket")))?;
        // Before anything can arrive for it: nothing is read until `listen` says what.
        let family = if v6 { Family::Ipv6 } else { Family::Ipv4 };
        attach(&s, &Listen::nothing(family)).map_err(|e| match e {
            NetError::Io { what: w, source } => io_err(what(&w))(source),
            other => other,
        })?;
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RxqOvfl, &1)
            .map_err(|e| io_err(what("SO_RXQ_OVFL"))(e.into()))?;
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
        Ok(Self {
            fd,
            v6,
            ifindex,
            dropped: AtomicU64::new(0),
        })
    }

    /// Reads only what `listen` names from now on: the socket's filter is replaced in one
    /// step (the kernel swaps it atomically). On error the previous filter stays.
    pub fn listen(&self, listen: &Listen) -> Result<()> {
        attach(self.fd.get_ref(), listen)
    }

    /// Packets the kernel dropped because this socket's receive buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until packets arrive, then takes up to `max` of them: one wake-up per burst
    /// rather than per packet when hundreds of virtual routers advertise. `buf` is the
    /// receive buffer, reused across calls; each packet is copied out at its own size.
    pub async fn recv_batch(&self, buf: &mut Vec<u8>, max: usize) -> Result<Vec<Received>> {
        buf.resize(MAX_PACKET, 0);
        // A packet that is not an IP packet we can read is skipped (`Ok(None)`).
        super::batch::recv_batch(&self.fd, max, |s| self.recv_now(s, buf))
            .await
            .map_err(io_err("receiving VRRP"))
    }

    /// Takes up to `max` packets the kernel already holds, without waiting: what the
    /// loop reads before its timers fire, so a timer never expires while the advert that
    /// proves a peer alive sits in the socket (its reader task may not have run yet).
    pub fn recv_pending(&self, buf: &mut Vec<u8>, max: usize) -> Result<Vec<Received>> {
        buf.resize(MAX_PACKET, 0);
        let mut out = Vec::new();
        while out.len() < max {
            match self.recv_now(self.fd.get_ref(), buf) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(io_err("receiving VRRP")(e)),
            }
        }
        Ok(out)
    }

    fn recv_now(&self, s: &Socket, buf: &mut [u8]) -> std::io::Result<Option<Received>> {
        let (r, dropped) = if self.v6 {
            recv_v6(s, buf)?
        } else {
            recv_v4(s, buf)?
        };
        if let Some(d) = dropped {
            self.dropped.fetch_max(u64::from(d), Ordering::Relaxed);
        }
        Ok(r)
    }

    /// Sends a VRRP message from `src` to a unicast peer on this socket's interface; the
    /// kernel adds the IP header (TTL / hop limit 255 set at open). The source is given
    /// explicitly (IP_PKTINFO / IPV6_PKTINFO): the VRRPv3 checksum covers it, so the
    /// kernel must not pick another (a global IPv6 source for a global peer, say, where
    /// the advert was summed over the link-local one).
    pub fn send_unicast(&self, src: IpAddr, dst: IpAddr, vrrp: &[u8]) -> Result<()> {
        let fd = self.fd.get_ref().as_raw_fd();
        super::pktinfo::send_from(fd, self.ifindex, src, dst, 0, vrrp)
            .map_err(io_err(format!("sending VRRP from {src} to {dst}")))
    }
}

/// Attaches the filter for `listen`; the kernel checks the program and replaces the
/// socket's previous one only if it is accepted.
fn attach(s: &Socket, listen: &Listen) -> Result<()> {
    let what = || format!("attaching the VRRP socket filter (reading {listen})");
    let program = vrrp_filter::program(listen)
        .map_err(|e| io_err(what())(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let program: Vec<socket2::SockFilter> =
        program.into_iter().map(|i| i.to_sock_filter()).collect();
    s.attach_filter(&program).map_err(io_err(what()))
}

/// Splits a received IPv4 packet into its addresses, TTL and VRRP payload, honouring IHL
/// and the total length (never trusting either beyond what was received). Pure: any bytes
/// in, never a panic.
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

/// One packet and the socket's drop count if the kernel reported one with it.
type Got = (Option<Received>, Option<u32>);

fn recv_v4(s: &Socket, buf: &mut [u8]) -> std::io::Result<Got> {
    let mut cmsg = nix::cmsg_space!(u32);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrIn>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .map_err(std::io::Error::from)?;
    let dropped = msg.cmsgs().ok().and_then(|mut c| {
        c.find_map(|c| match c {
            ControlMessageOwned::RxqOvfl(d) => Some(d),
            _ => None,
        })
    });
    let n = msg.bytes;
    Ok((parse_ipv4(&buf[..n]), dropped))
}

fn recv_v6(s: &Socket, buf: &mut [u8]) -> std::io::Result<Got> {
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int, u32);
    let (n, src, hop, dst, dropped) = {
        let mut iov = [IoSliceMut::new(buf)];
        let msg =
            recvmsg::<SockaddrIn6>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
                .map_err(std::io::Error::from)?;
        let mut hop = None;
        let mut dst = None;
        let mut dropped = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv6HopLimit(h) => hop = Some(h),
                    ControlMessageOwned::Ipv6PacketInfo(info) => {
                        dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr))
                    }
                    ControlMessageOwned::RxqOvfl(d) => dropped = Some(d),
                    _ => {}
                }
            }
        }
        (msg.bytes, msg.address.map(|a| a.ip()), hop, dst, dropped)
    };
    let (Some(src), Some(hop), Some(dst)) = (src, hop, dst) else {
        return Ok((None, dropped));
    };
    let r = Received {
        src: src.into(),
        dst: dst.into(),
        ttl: hop.clamp(0, 255) as u8,
        vrrp: buf[..n].to_vec(),
    };
    Ok((Some(r), dropped))
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
