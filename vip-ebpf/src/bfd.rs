//! BFD (RFC 5880) for the single-hop sessions (RFC 5881) the daemon runs with the
//! neighbours in `BFD_PEERS`: their Echo packets are looped back here, and the Ethernet
//! source of their Control packets is recorded for the daemon.
//!
//! Echo (RFC 5880 §6.4, RFC 5881 §4): a neighbour tests the forwarding path by sending
//! UDP to port 3785 addressed from itself to itself, and the far end only has to send it
//! back. Doing that here with `XDP_TX` means a busy or descheduled daemon never fails a
//! session. Only the Ethernet addresses are swapped: the IP packet (still addressed to
//! its sender), the UDP checksum and any VLAN tag stay exactly as the neighbour wrote
//! them. Only an unfragmented, whole datagram from a neighbour configured on the
//! interface and VLAN it arrived on, between two unicast stations, is looped back, so
//! nobody can use the program to aim traffic at a third party or a group; and only one
//! addressed to this interface's own MAC and sent from the neighbour's (as its Control
//! packets taught it), so a port that sees frames meant for other stations (a bridge
//! member, several VMACs, a capture in promiscuous mode) never sends one back with that
//! station's MAC as its source, which would teach the switch to deliver the station's
//! traffic here, and a forger claiming the neighbour's address gets nothing back. Any other
//! packet to the Echo port addressed back to its sender is counted and passed to the
//! kernel: the program fails open. (The daemon's own Echo packets coming back are among
//! them: from and to this node's address, which is no neighbour's. So an echo is looped
//! back once, never bounced between two nodes.)
//!
//! Control: a packet with TTL / hop limit 255 was sent on this link (RFC 5881 §5: every
//! router on the way would have lowered it), so its Ethernet source is the neighbour's
//! MAC. The daemon sends its own Echo packets there, since their IP destination (the
//! daemon's own address) cannot be resolved to the neighbour. Control packets always go
//! on to the daemon's socket.
//!
//! Only UDP to ports 3784 and 3785 costs more than reading the ports.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use vip_common::{BFD_CONTROL_PORT, BFD_ECHO_PORT, BfdPeerKey, FAMILY_IPV4, FAMILY_IPV6, v4_in_16};

use crate::{
    frame::{EthHdr, L2, is_unicast, len, ptr_at, total_len},
    ipv6::{IPV6_HLEN, Ipv6Hdr, Upper},
    maps::{BFD_PEERS, count},
    vrrp::{IP_MF, IP_OFFSET, Ipv4Hdr},
};

#[repr(C)]
struct UdpHdr {
    _sport: [u8; 2],
    dport: [u8; 2],
    len: [u8; 2],
    _csum: [u8; 2],
}

const UDP_HLEN: usize = 8;

/// TTL / hop limit of a single-hop BFD packet that never left its link (RFC 5881 §5).
const SINGLE_HOP_TTL: u8 = 255;

/// Which BFD port a datagram is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Port {
    Control,
    Echo,
}

/// What BFD needs to know of a datagram, whichever IP version carried it.
struct Datagram {
    port: Port,
    /// Source address widened to 16 bytes as keys hold it.
    src: [u8; 16],
    family: u8,
    /// IP source and destination are the same: addressed back to its sender.
    to_sender: bool,
    /// Offset of the UDP header.
    udp: usize,
    /// Not a fragment, and the whole datagram (by the IP and UDP lengths) is in the frame.
    intact: bool,
    ttl: u8,
}

/// A UDP packet over IPv4 whose header (`ihl` bytes) is at `l2.l3`.
#[inline(always)]
pub fn handle_v4(ctx: &XdpContext, l2: &L2, ifindex: u32, ip: &Ipv4Hdr, ihl: usize) -> u32 {
    let frag = u16::from_be_bytes(ip.frag);
    // A later fragment carries data where a UDP header would be.
    if frag & IP_OFFSET != 0 {
        return xdp_action::XDP_PASS;
    }
    let Some((port, udp_len)) = bfd_port(ctx, l2.l3 + ihl) else {
        return xdp_action::XDP_PASS;
    };
    let ip_len = u16::from_be_bytes(ip.tot_len) as usize;
    let intact = frag & IP_MF == 0
        && whole(ctx, l2.l3 + ip_len)
        && ip_len
            .checked_sub(ihl)
            .is_some_and(|payload| fits(udp_len, payload));
    let d = Datagram {
        port,
        src: v4_in_16(ip.saddr),
        family: FAMILY_IPV4,
        to_sender: ip.saddr == ip.daddr,
        udp: l2.l3 + ihl,
        intact,
        ttl: ip.ttl,
    };
    judge(ctx, l2, ifindex, &d)
}

/// A UDP packet over IPv6 whose UDP header is at `up.off` (after any extension headers).
#[inline(always)]
pub fn handle_v6(ctx: &XdpContext, l2: &L2, ifindex: u32, ip: &Ipv6Hdr, up: &Upper) -> u32 {
    let Some((port, udp_len)) = bfd_port(ctx, up.off) else {
        return xdp_action::XDP_PASS;
    };
    // The payload length counts the extension headers; UDP's share is what follows them.
    let ip_len = u16::from_be_bytes(ip.payload_len) as usize;
    let intact = !up.fragment
        && whole(ctx, l2.l3 + IPV6_HLEN + ip_len)
        && ip_len
            .checked_sub(up.ext_len)
            .is_some_and(|payload| fits(udp_len, payload));
    let d = Datagram {
        port,
        src: ip.saddr,
        family: FAMILY_IPV6,
        to_sender: ip.saddr == ip.daddr,
        udp: up.off,
        intact,
        ttl: ip.hop_limit,
    };
    judge(ctx, l2, ifindex, &d)
}

/// The BFD port of the UDP header at `off` and its UDP length, or `None` for any other
/// port or a frame that ends before the header does: all other UDP stops here.
#[inline(always)]
fn bfd_port(ctx: &XdpContext, off: usize) -> Option<(Port, usize)> {
    // SAFETY: ptr_at proved the header is inside the frame.
    let udp = unsafe { &*ptr_at::<UdpHdr>(ctx, off)? };
    let port = match u16::from_be_bytes(udp.dport) {
        BFD_ECHO_PORT => Port::Echo,
        BFD_CONTROL_PORT => Port::Control,
        _ => return None,
    };
    Some((port, u16::from_be_bytes(udp.len) as usize))
}

/// Whether the frame holds `end` bytes, in its first buffer or (a jumbo frame) beyond:
/// an echo is looped back whole either way, since `XDP_TX` sends every buffer.
#[inline(always)]
fn whole(ctx: &XdpContext, end: usize) -> bool {
    end <= len(ctx) || end <= total_len(ctx)
}

/// Whether a UDP length is one a datagram of `payload` bytes of IP payload can have.
#[inline(always)]
fn fits(udp_len: usize, payload: usize) -> bool {
    udp_len >= UDP_HLEN && udp_len <= payload
}

#[inline(always)]
fn judge(ctx: &XdpContext, l2: &L2, ifindex: u32, d: &Datagram) -> u32 {
    let key = BfdPeerKey {
        ifindex,
        vlan: l2.vlan,
        family: d.family,
        _pad: 0,
        addr: d.src,
    };
    match d.port {
        Port::Echo if d.to_sender => echo(ctx, d.intact, &key),
        // Not addressed back to its sender: not an Echo packet (RFC 5881 §4).
        Port::Echo => xdp_action::XDP_PASS,
        Port::Control => {
            // A Control packet addressed to its own sender is no neighbour talking to us.
            if d.intact && d.ttl == SINGLE_HOP_TTL && !d.to_sender {
                learn(ctx, &key, d.udp + UDP_HLEN);
            }
            xdp_action::XDP_PASS
        }
    }
}

/// An Echo packet addressed back to its sender: looped back if it is a neighbour's, sent
/// from its MAC to ours, passed and counted otherwise.
#[inline(always)]
fn echo(ctx: &XdpContext, intact: bool, key: &BfdPeerKey) -> u32 {
    // Cheap checks before the lookup: a flood of refused echoes costs no hashing.
    if intact && let Some(eth) = ptr_at::<EthHdr>(ctx, 0) {
        // SAFETY: ptr_at proved the header is inside the frame; nothing else refers to it.
        let eth = unsafe { &mut *eth };
        // A group or broadcast source would become the destination, and a group or
        // broadcast destination the source: neither is one station sending to another.
        if is_unicast(&eth.src)
            && is_unicast(&eth.dst)
            && let Some(peer) = BFD_PEERS.get_ptr(key)
        {
            // SAFETY: the value of a live hash entry; both MACs are read once. A MAC being
            // rewritten by `learn` on another CPU can at worst refuse one echo.
            let (mac, own) = unsafe { ((*peer).mac, (*peer).own_mac) };
            // Not for us, or not from the station that proved to be the neighbour (none
            // yet while the MAC is unlearned; no interface MAC known: all zero): passed
            // untouched.
            if eth.dst != own || eth.src != mac || mac == [0; 6] || own == [0; 6] {
                count(|c| &mut c.bfd_echo_spoofed);
                return xdp_action::XDP_PASS;
            }
            core::mem::swap(&mut eth.dst, &mut eth.src);
            count(|c| &mut c.bfd_echo_reflected);
            return xdp_action::XDP_TX;
        }
    }
    count(|c| &mut c.bfd_echo_refused);
    xdp_action::XDP_PASS
}

/// Records the Ethernet source of a neighbour's single-hop Control packet, at `control`,
/// as its MAC, when the packet names this node's session (its Your Discriminator): the
/// address alone proves nothing, and a MAC learned from a forger would send every echo
/// to it and fail the session.
#[inline(always)]
fn learn(ctx: &XdpContext, key: &BfdPeerKey, control: usize) {
    let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
        return;
    };
    // SAFETY: ptr_at proved the header is inside the frame.
    let src = unsafe { (*eth).src };
    if !is_unicast(&src) {
        return;
    }
    // Your Discriminator: the third word of the Control packet (RFC 5880 §4.1).
    let Some(words) = ptr_at::<[u8; 12]>(ctx, control) else {
        return;
    };
    // SAFETY: ptr_at proved the 12 bytes are inside the frame.
    let your_disc =
        u32::from_be_bytes(unsafe { [(*words)[8], (*words)[9], (*words)[10], (*words)[11]] });
    let Some(peer) = BFD_PEERS.get_ptr_mut(key) else {
        return;
    };
    // SAFETY: the value of a live hash entry; read once.
    let local_disc = unsafe { (*peer).local_disc };
    if local_disc == 0 || your_disc != local_disc {
        return;
    }
    // SAFETY: the value of a live hash entry, written in place. Only when it changed:
    // every Control packet (one per interval per neighbour) would otherwise dirty the
    // entry's cache line on every CPU that reads it. Two CPUs learning different MACs
    // at once could interleave bytes; the next Control packet writes it whole again.
    unsafe {
        if (*peer).mac != src {
            (*peer).mac = src;
        }
    }
}
