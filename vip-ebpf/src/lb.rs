//! The load balancer: TCP and UDP for a configured service go to one of its real servers,
//! by direct routing (the Ethernet destination rewritten) or in an IP-in-IP tunnel.
//!
//! It is a program of its own (`vipd_lb`), entered by a tail call from the responder
//! once the responder has found the packet's destination among the service VIPs: its
//! keys, headers and verification budget never weigh on the responder's paths, which
//! the BPF stack (512 bytes for a whole call chain) could not otherwise afford.
//!
//! Which server: a flow remembered in `LB_FLOWS` keeps the server it was pinned to while
//! that server is up; any other flow gets the entry `hash % MAGLEV_SIZE` of the service's
//! active Maglev table (the daemon builds it; the hash is `vip_common::LbFlowKey::hash`,
//! the daemon's too) and is remembered. Every director with the same server set picks
//! the same server for a flow, so a flow survives a failover with no shared state.
//! For a while after a reload changed the set (`LB_F_PREVIOUS`), a TCP segment without
//! SYN of a flow not remembered here follows the previous table instead: such a flow
//! began before the change, on a director that died, and the old table names its
//! server (`tests/tests/lab_lb.rs`, a server added at the moment the master is killed).
//!
//! What costs what: on a node without services, a TCP or UDP packet costs the responder
//! one array read (`LB_ACTIVE`); with services, one lookup more, of its (destination,
//! protocol) with port 0 in `LB_SERVICES`; nothing else is read unless that finds a
//! service VIP. ARP never comes here.
//!
//! Rules for packets to a service VIP (each counted):
//! - the group's slot not answered by this node (and the service not active-active):
//!   dropped (`lb_not_owned`), never passed: a director killed with `kill -9` keeps the
//!   VIP on its interface, so once its lease lapses its kernel would reset every
//!   connection whose next packet arrives before the new master's gratuitous ARP moves
//!   the client (`tests/tests/lab_lb.rs`, the kill of the master); dropped, the packet
//!   is retransmitted to the new master;
//! - a fragment of a service's packet: dropped (`lb_drop_fragment`), since its later
//!   pieces carry no ports to hash by. An IPv4 later fragment to a VIP that has only
//!   per-port services cannot be attributed and passes; IPv6 later fragments pass
//!   untouched (the responder does not look past their fragment header);
//! - a malformed or cut-short IP or transport header: dropped (`lb_drop_malformed`);
//! - no server up: dropped (`lb_no_real`), never passed: the kernel holds the VIP and
//!   would reset the connection;
//! - a server on another VLAN than the packet came on, or without a resolved next hop:
//!   dropped (`lb_drop_unreachable`);
//! - a tunnelled packet larger than the way out's MTU: dropped (`lb_drop_too_big`).
//!
//! An ICMPv4 error (destination unreachable, time exceeded) to a service VIP about one of
//! its flows goes to that flow's server like the flow's own packets (`lb_forward_icmp`):
//! with direct routing or a tunnel the servers answer clients themselves, so an error
//! about their replies ("fragmentation needed" on the way back) arrives at the VIP. ICMPv6
//! errors pass (the responder's NDP path sees ICMPv6 first: not yet done).
//!
//! Anything else to a service VIP that is not for one of its services (another port,
//! other ICMP) passes to the kernel, without the responder's BFD handling (BFD is never
//! addressed to a VIP).

use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::{Array, HashMap, LruHashMap, PerCpuArray, ProgramArray},
    helpers::generated::{bpf_redirect, bpf_xdp_adjust_head},
    macros::btf_map,
    programs::XdpContext,
};
use vip_common::{
    FAMILY_IPV4, FAMILY_IPV6, LB_F_ACTIVE_ACTIVE, LB_F_PORTS, LB_F_PREVIOUS, LB_F_SERVICE,
    LB_F_SOURCE_HASH, LB_METHOD_DR, LB_METHOD_TUN, LB_NO_REAL, LB_REAL_F_UP, LB_TUNNEL_TTL,
    LbCounters, LbFlow, LbFlowKey, LbReal, LbService, LbServiceKey, MAGLEV_SIZE,
    MAP_F_NO_COMMON_LRU, MAP_F_NO_PREALLOC, MAX_LB_FLOWS, MAX_LB_REALS, MAX_LB_SERVICE_KEYS,
    MAX_LB_SERVICES, MaglevTable, table_index, v4_in_16,
    wire::{
        ETH_HLEN, ETH_P_IP, ETH_P_IPV6, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP,
        VLAN_HLEN,
    },
};

use crate::{
    csum,
    frame::{EthHdr, L2, len, parse_l2, ptr_at, total_len},
    ipv6::{IPV6_HLEN, Ipv6Hdr, Upper, Walk, walk},
    maps::{Ownership, count, ownership},
    vrrp::{IP_MF, IP_OFFSET, Ipv4Hdr},
};

#[btf_map]
pub static LB_SERVICES: HashMap<
    LbServiceKey,
    LbService,
    { MAX_LB_SERVICE_KEYS as usize },
    { MAP_F_NO_PREALLOC as usize },
> = HashMap::new();

/// Two halves per service: see `vip_common::LbService::table`.
#[btf_map]
pub static LB_TABLES: Array<MaglevTable, { MAX_LB_SERVICES as usize * 2 }> = Array::new();

#[btf_map]
pub static LB_REALS: Array<LbReal, { MAX_LB_REALS as usize }> = Array::new();

#[btf_map]
pub static LB_FLOWS: LruHashMap<
    LbFlowKey,
    LbFlow,
    { MAX_LB_FLOWS as usize },
    { MAP_F_NO_COMMON_LRU as usize },
> = LruHashMap::new();

#[btf_map]
pub static LB_SERVICE_STATS: PerCpuArray<LbCounters, { MAX_LB_SERVICES as usize }> =
    PerCpuArray::new();

#[btf_map]
pub static LB_REAL_STATS: PerCpuArray<LbCounters, { MAX_LB_REALS as usize }> = PerCpuArray::new();

const TCP_HLEN: usize = 20;
const UDP_HLEN: usize = 8;
/// Offset of the flags byte in the TCP header.
const TCP_FLAGS: usize = 13;
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;
const IPV4_HLEN: usize = 20;
const IPPROTO_ICMP: u8 = 1;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_TIME_EXCEEDED: u8 = 11;
/// Type, code, checksum and four bytes (unused, or the next hop's MTU) before the quote.
const ICMP_HLEN: usize = 8;
/// Don't Fragment.
const IP_DF: u16 = 0x4000;

const DROP: u32 = xdp_action::XDP_DROP;

/// What forwarding needs to know of the packet, whichever IP version carried it.
struct Packet {
    flow: LbFlowKey,
    /// Bytes from the IP header on (what the counters count and the tunnel carries).
    ip_len: usize,
    /// A TCP segment with SYN and without ACK: a flow's first packet.
    opens: bool,
    tcp: bool,
    /// IPv4 TOS / IPv6 traffic class, copied to the tunnel's outer header.
    tos: u8,
    /// The IPv4 Don't Fragment bit, kept on the outer header.
    df: bool,
}

/// Slot 0: the load balancer program, put there by the daemon when it loads both. A
/// tail call only reaches a program of the caller's kind (frags-aware or not), and a
/// program array takes only one kind: `vipd_xdp` enters `vipd_lb` through `LB_PROGS`,
/// `vipd_xdp_nofrag` enters `vipd_lb_nofrag` through `LB_PROGS_NOFRAG`.
#[btf_map]
pub static LB_PROGS: ProgramArray<1> = ProgramArray::new();

#[btf_map]
pub static LB_PROGS_NOFRAG: ProgramArray<1> = ProgramArray::new();

/// Enters the load balancer of the caller's kind (see [`LB_PROGS`]).
#[inline(always)]
fn tail_call<const FRAGS: bool>(ctx: &XdpContext) {
    // SAFETY: a tail call does not return when it succeeds; when it fails (no program
    // in the slot) the packet goes on through the responder.
    unsafe {
        if FRAGS {
            LB_PROGS.tail_call(ctx, 0)
        } else {
            LB_PROGS_NOFRAG.tail_call(ctx, 0)
        }
    };
}

/// Non-zero while any service is configured (`dataplane::lb` keeps it so): on a node
/// without services a TCP or UDP packet costs one array read, which the verifier turns
/// into a plain load, instead of a hash lookup.
#[btf_map]
pub static LB_ACTIVE: Array<u32, 1> = Array::new();

#[inline(always)]
fn active() -> bool {
    LB_ACTIVE.get(0).is_some_and(|v| *v != 0)
}

/// In the responder: a TCP or UDP packet over IPv4 whose header is at `l2.l3` goes to the
/// load balancer if its destination is a service VIP. Returns (the packet goes on
/// through the responder) when it is not, or when no load balancer is loaded.
#[inline(always)]
pub fn enter_v4<const FRAGS: bool>(ctx: &XdpContext, l2: &L2) {
    let Some(ip) = ptr_at::<Ipv4Hdr>(ctx, l2.l3) else {
        return;
    };
    // SAFETY: ptr_at proved the header is inside the frame.
    let (proto, daddr) = unsafe { ((*ip).proto, (*ip).daddr) };
    if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && active() {
        enter::<FRAGS>(
            ctx,
            &LbServiceKey::new(FAMILY_IPV4, v4_in_16(daddr), proto, 0),
        );
    } else if proto == IPPROTO_ICMP && active() {
        // ICMP is rare, and the responder has nothing to do with it: the load balancer
        // looks whether it is an error about one of its flows (see `icmp_v4`) and passes
        // everything else.
        tail_call::<FRAGS>(ctx);
    }
}

/// In the responder: as [`enter_v4`] for IPv6, whose upper-layer protocol (TCP or UDP)
/// the extension-header walk found.
#[inline(always)]
pub fn enter_v6<const FRAGS: bool>(ctx: &XdpContext, daddr: &[u8; 16], proto: u8) {
    if active() {
        enter::<FRAGS>(ctx, &LbServiceKey::new(FAMILY_IPV6, *daddr, proto, 0));
    }
}

#[inline(always)]
fn enter<const FRAGS: bool>(ctx: &XdpContext, key: &LbServiceKey) {
    // The one lookup every TCP / UDP packet pays where services are configured.
    if LB_SERVICES.get_ptr(key).is_some() {
        tail_call::<FRAGS>(ctx);
    }
}

/// The load balancer program: a packet whose destination the responder found among the
/// service VIPs. What is not for one of their services passes to the kernel.
#[inline(always)]
pub fn run(ctx: &XdpContext) -> u32 {
    let Some(l2) = parse_l2(ctx) else {
        return xdp_action::XDP_PASS;
    };
    let ifindex = ctx.ingress_ifindex() as u32;
    let verdict = match l2.ethertype {
        ETH_P_IP => v4(ctx, &l2, ifindex),
        ETH_P_IPV6 => {
            let Some(ip) = ptr_at::<Ipv6Hdr>(ctx, l2.l3) else {
                return xdp_action::XDP_PASS;
            };
            // SAFETY: ptr_at proved the header is inside the frame.
            let ip = unsafe { &*ip };
            match walk(ctx, l2.l3, ip.nexthdr) {
                Walk::Upper(up) if up.proto == IPPROTO_TCP || up.proto == IPPROTO_UDP => {
                    v6(ctx, &l2, ifindex, ip, &up)
                }
                _ => None,
            }
        }
        _ => None,
    };
    verdict.unwrap_or(xdp_action::XDP_PASS)
}

/// An IPv4 packet: `None` when it is not for a service.
#[inline(always)]
fn v4(ctx: &XdpContext, l2: &L2, ifindex: u32) -> Option<u32> {
    // SAFETY: ptr_at proved the header is inside the frame.
    let ip = unsafe { &*ptr_at::<Ipv4Hdr>(ctx, l2.l3)? };
    let proto = ip.proto;
    if proto == IPPROTO_ICMP {
        return icmp_v4(ctx, l2, ifindex, ip);
    }
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return None;
    }
    let vip = v4_in_16(ip.daddr);
    // The one lookup every TCP / UDP packet pays where services are configured.
    let entry = service(&LbServiceKey::new(FAMILY_IPV4, vip, proto, 0))?;
    let ihl = ((ip.ver_ihl & 0x0f) as usize) * 4;
    if ip.ver_ihl >> 4 != 4 || ihl < IPV4_HLEN {
        count(|c| &mut c.lb_drop_malformed);
        return Some(DROP);
    }
    let frag = u16::from_be_bytes(ip.frag);
    if frag & IP_OFFSET != 0 {
        // No ports to find a service by: ours only if every port is.
        if entry.flags & LB_F_SERVICE != 0 && entry.flags & LB_F_PORTS == 0 {
            count(|c| &mut c.lb_drop_fragment);
            return Some(DROP);
        }
        return None;
    }
    let l4 = l2.l3 + ihl;
    let Some((sport, dport)) = ports(ctx, l4) else {
        count(|c| &mut c.lb_drop_malformed);
        return Some(DROP);
    };
    let svc = resolve(&entry, vip, FAMILY_IPV4, proto, dport)?;
    if frag & IP_MF != 0 {
        count(|c| &mut c.lb_drop_fragment);
        return Some(DROP);
    }
    let ip_len = u16::from_be_bytes(ip.tot_len) as usize;
    let l4_min = if proto == IPPROTO_TCP {
        TCP_HLEN
    } else {
        UDP_HLEN
    };
    if ip_len < ihl + l4_min || cut_short(ctx, l2.l3 + ip_len) {
        count(|c| &mut c.lb_drop_malformed);
        return Some(DROP);
    }
    let p = Packet {
        flow: LbFlowKey {
            src: v4_in_16(ip.saddr),
            dst: vip,
            sport,
            dport,
            proto,
            family: FAMILY_IPV4,
            _pad: [0; 2],
        },
        ip_len,
        opens: false,
        tcp: proto == IPPROTO_TCP,
        tos: ip.tos,
        df: frag & IP_DF != 0,
    };
    Some(balance(ctx, l2, ifindex, &svc, p, l4))
}

/// An ICMP error (destination unreachable, time exceeded) to a service VIP that quotes a
/// packet of one of its flows (from the VIP and the service's port to a client): sent to
/// that flow's server, which sent the packet (with direct routing or a tunnel the
/// servers answer clients themselves, so "fragmentation needed" for their path arrives
/// at the VIP, here). `None` for any other ICMP: it passes.
#[inline(always)]
fn icmp_v4(ctx: &XdpContext, l2: &L2, ifindex: u32, ip: &Ipv4Hdr) -> Option<u32> {
    let ihl = ((ip.ver_ihl & 0x0f) as usize) * 4;
    let frag = u16::from_be_bytes(ip.frag);
    if ip.ver_ihl >> 4 != 4 || ihl < IPV4_HLEN || frag & (IP_OFFSET | IP_MF) != 0 {
        return None;
    }
    let l4 = l2.l3 + ihl;
    // Type and code: two bytes, because a one-byte bounds check compiles to a compare
    // (`ptr >= end`) from which the verifier learns no range.
    // SAFETY: ptr_at proved the bytes are inside the frame.
    let [kind, _code] = unsafe { *ptr_at::<[u8; 2]>(ctx, l4)? };
    if kind != ICMP_DEST_UNREACH && kind != ICMP_TIME_EXCEEDED {
        return None;
    }
    let quoted = l4 + ICMP_HLEN;
    // SAFETY: ptr_at proved the header is inside the frame.
    let inner = unsafe { &*ptr_at::<Ipv4Hdr>(ctx, quoted)? };
    let inner_ihl = ((inner.ver_ihl & 0x0f) as usize) * 4;
    let proto = inner.proto;
    if inner.ver_ihl >> 4 != 4
        || inner_ihl < IPV4_HLEN
        || inner.saddr != ip.daddr
        || (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
    {
        return None;
    }
    let vip = v4_in_16(inner.saddr);
    let entry = service(&LbServiceKey::new(FAMILY_IPV4, vip, proto, 0))?;
    // The quoted packet went from the service's port to the client's.
    let (sport, dport) = ports(ctx, quoted + inner_ihl)?;
    let svc = resolve(&entry, vip, FAMILY_IPV4, proto, sport)?;
    let ip_len = u16::from_be_bytes(ip.tot_len) as usize;
    if l2.l3 + ip_len > len(ctx) {
        count(|c| &mut c.lb_drop_malformed);
        return Some(DROP);
    }
    let p = Packet {
        flow: LbFlowKey {
            src: v4_in_16(inner.daddr),
            dst: vip,
            sport: dport,
            dport: sport,
            proto,
            family: FAMILY_IPV4,
            _pad: [0; 2],
        },
        ip_len,
        opens: false,
        tcp: false,
        tos: ip.tos,
        df: frag & IP_DF != 0,
    };
    let verdict = balance(ctx, l2, ifindex, &svc, p, l4);
    if verdict == xdp_action::XDP_TX || verdict == xdp_action::XDP_REDIRECT {
        count(|c| &mut c.lb_forward_icmp);
    }
    Some(verdict)
}

/// Whether a packet whose IP header says it ends at `end` is cut short. A jumbo frame
/// (MTU 9000) reaches the frags-aware program in several buffers, its first holding only
/// the headers: the whole frame's length counts, which the forwarding methods keep
/// whole (`tests/tests/lab_lb.rs`, `a_service_forwards_jumbo_segments_at_mtu_9000`).
#[inline(always)]
fn cut_short(ctx: &XdpContext, end: usize) -> bool {
    end > len(ctx) && end > total_len(ctx)
}

/// An IPv6 packet whose upper-layer header (after any extension headers) is TCP or UDP
/// at `up.off`: `None` when it is not for a service.
#[inline(always)]
fn v6(ctx: &XdpContext, l2: &L2, ifindex: u32, ip: &Ipv6Hdr, up: &Upper) -> Option<u32> {
    let proto = up.proto;
    let entry = service(&LbServiceKey::new(FAMILY_IPV6, ip.daddr, proto, 0))?;
    let Some((sport, dport)) = ports(ctx, up.off) else {
        count(|c| &mut c.lb_drop_malformed);
        return Some(DROP);
    };
    let svc = resolve(&entry, ip.daddr, FAMILY_IPV6, proto, dport)?;
    if up.fragment {
        count(|c| &mut c.lb_drop_fragment);
        return Some(DROP);
    }
    let payload = u16::from_be_bytes(ip.payload_len) as usize;
    let l4_min = if proto == IPPROTO_TCP {
        TCP_HLEN
    } else {
        UDP_HLEN
    };
    let ip_len = IPV6_HLEN + payload;
    if payload < up.ext_len + l4_min || cut_short(ctx, l2.l3 + ip_len) {
        count(|c| &mut c.lb_drop_malformed);
        return Some(DROP);
    }
    let p = Packet {
        flow: LbFlowKey {
            src: ip.saddr,
            dst: ip.daddr,
            sport,
            dport,
            proto,
            family: FAMILY_IPV6,
            _pad: [0; 2],
        },
        ip_len,
        opens: false,
        tcp: proto == IPPROTO_TCP,
        tos: (u16::from_be_bytes([ip.vtc_flow[0], ip.vtc_flow[1]]) >> 4) as u8,
        df: true,
    };
    Some(balance(ctx, l2, ifindex, &svc, p, up.off))
}

#[inline(always)]
fn service(key: &LbServiceKey) -> Option<LbService> {
    // SAFETY: read once, immediately, from the lookup's pointer.
    LB_SERVICES.get_ptr(key).map(|p| unsafe { *p })
}

/// The service a packet to `dport` of a service VIP belongs to: the port's own, else
/// the VIP's all-ports service, else none.
#[inline(always)]
fn resolve(
    entry: &LbService,
    addr: [u8; 16],
    family: u8,
    proto: u8,
    dport: u16,
) -> Option<LbService> {
    if entry.flags & LB_F_PORTS != 0
        && dport != 0
        && let Some(svc) = service(&LbServiceKey::new(family, addr, proto, dport))
        && svc.flags & LB_F_SERVICE != 0
    {
        return Some(svc);
    }
    if entry.flags & LB_F_SERVICE != 0 {
        return Some(*entry);
    }
    None
}

/// Source and destination port of the TCP or UDP header at `l4`, host order.
#[inline(always)]
fn ports(ctx: &XdpContext, l4: usize) -> Option<(u16, u16)> {
    // SAFETY: ptr_at proved the four bytes are inside the frame.
    let p = unsafe { *ptr_at::<[u8; 4]>(ctx, l4)? };
    Some((
        u16::from_be_bytes([p[0], p[1]]),
        u16::from_be_bytes([p[2], p[3]]),
    ))
}

/// Picks the real server of a service packet and sends it there.
#[inline(always)]
fn balance(
    ctx: &XdpContext,
    l2: &L2,
    ifindex: u32,
    svc: &LbService,
    mut p: Packet,
    l4: usize,
) -> u32 {
    if svc.flags & LB_F_ACTIVE_ACTIVE == 0 && !matches!(ownership(svc.slot), Ownership::Answering) {
        count(|c| &mut c.lb_not_owned);
        return DROP;
    }
    if p.tcp {
        let Some(flags) = ptr_at::<u8>(ctx, l4 + TCP_FLAGS) else {
            count(|c| &mut c.lb_drop_malformed);
            return DROP;
        };
        // SAFETY: ptr_at proved the byte is inside the frame.
        let flags = unsafe { *flags };
        p.opens = flags & TCP_SYN != 0 && flags & TCP_ACK == 0;
    }
    let hash = p.flow.hash(svc.seed, svc.flags & LB_F_SOURCE_HASH != 0);
    let Some((id, real)) = pick(svc, &p, hash) else {
        count(|c| &mut c.lb_no_real);
        return DROP;
    };
    if real.vlan != l2.vlan || real.mac == [0; 6] {
        count(|c| &mut c.lb_drop_unreachable);
        return DROP;
    }
    let sent = match real.method {
        LB_METHOD_DR => {
            let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
                return DROP;
            };
            // SAFETY: ptr_at proved the header is inside the frame; nothing else refers
            // to it.
            unsafe {
                (*eth).dst = real.mac;
                (*eth).src = real.src_mac;
            }
            count(|c| &mut c.lb_forward_dr);
            true
        }
        LB_METHOD_TUN => {
            let outer = if p.flow.family == FAMILY_IPV4 {
                IPV4_HLEN
            } else {
                IPV6_HLEN
            };
            if real.mtu != 0 && p.ip_len + outer > real.mtu as usize {
                count(|c| &mut c.lb_drop_too_big);
                return DROP;
            }
            let done = if p.flow.family == FAMILY_IPV4 {
                encap_v4(ctx, l2, &real, &p)
            } else {
                encap_v6(ctx, l2, &real, &p, hash)
            };
            if done.is_none() {
                count(|c| &mut c.lb_drop_unreachable);
                return DROP;
            }
            count(|c| &mut c.lb_forward_tunnel);
            true
        }
        _ => false,
    };
    if !sent {
        count(|c| &mut c.lb_drop_unreachable);
        return DROP;
    }
    add(&LB_SERVICE_STATS, svc.id, p.ip_len, false);
    add(&LB_REAL_STATS, id, p.ip_len, false);
    if real.ifindex == 0 || real.ifindex == ifindex {
        xdp_action::XDP_TX
    } else {
        // SAFETY: no preconditions; the helper returns XDP_REDIRECT, or XDP_ABORTED for
        // an ifindex it cannot send to (flags 0).
        unsafe { bpf_redirect(real.ifindex, 0) as u32 }
    }
}

/// The real server for a packet: its remembered flow's while that server is up and
/// still the same one, else the active table's entry, remembered for the flow.
#[inline(always)]
#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "a key or value passed by value is copied onto the stack first, and this \
              program's stack (512 bytes) has no room for the copies"
)]
fn pick(svc: &LbService, p: &Packet, hash: u32) -> Option<(u32, LbReal)> {
    // SAFETY: read once, immediately; an LRU entry may be recycled after this.
    let known = LB_FLOWS.get_ptr(&p.flow).map(|f| unsafe { *f });
    let moved = match known {
        Some(f) => {
            if let Some(r) = real(f.real)
                && r.flags & LB_REAL_F_UP != 0
                && r.generation == f.generation
                && r.service == svc.id
            {
                return Some((f.real, r));
            }
            true
        }
        None => {
            if p.tcp && !p.opens {
                count(|c| &mut c.lb_flow_midstream);
                // A flow that began before the set changed, on a director that has
                // died since: its server is the old table's (`LB_F_PREVIOUS`).
                if svc.flags & LB_F_PREVIOUS != 0
                    && let Some((id, r)) = from_table(svc, (svc.table + 1) & 1, hash)
                {
                    count(|c| &mut c.lb_flow_previous);
                    return Some(remember(svc, p, id, r, false));
                }
            }
            false
        }
    };
    let (id, r) = from_table(svc, svc.table, hash)?;
    Some(remember(svc, p, id, r, moved))
}

/// The server half `half` of the service's table names for `hash`, if it is up and the
/// service's.
#[inline(always)]
fn from_table(svc: &LbService, half: u32, hash: u32) -> Option<(u32, LbReal)> {
    let table = LB_TABLES.get_ptr(table_index(svc.id, half))?;
    let entry = bounded(hash % MAGLEV_SIZE, MAGLEV_SIZE)?;
    // SAFETY: an array slot, stable for the program's lifetime; `entry` is below the
    // table's length (checked where the verifier sees it).
    let id = unsafe { *(*table).reals.as_ptr().add(entry as usize) };
    if id == LB_NO_REAL {
        return None;
    }
    let id = id as u32;
    let r = real(id)?;
    if r.flags & LB_REAL_F_UP == 0 || r.service != svc.id {
        return None;
    }
    Some((id, r))
}

/// Pins the flow to `id` and counts it.
#[inline(always)]
fn remember(svc: &LbService, p: &Packet, id: u32, r: LbReal, moved: bool) -> (u32, LbReal) {
    let flow = LbFlow {
        real: id,
        generation: r.generation,
    };
    // A full table evicts its least recently used flow; that flow still follows the
    // table, which names the same server unless the set changed.
    let _ = LB_FLOWS.insert(p.flow, flow, 0);
    if moved {
        count(|c| &mut c.lb_flow_moved);
    }
    count(|c| &mut c.lb_flow_created);
    add(&LB_SERVICE_STATS, svc.id, 0, true);
    add(&LB_REAL_STATS, id, 0, true);
    (id, r)
}

#[inline(always)]
fn real(id: u32) -> Option<LbReal> {
    LB_REALS.get(id).copied()
}

/// `v` if it is below `max`, checked after hiding what the compiler knows of it: the
/// compiler would drop a check it can prove (`hash % M < M`), and the verifier, which
/// does not follow a modulo, would then refuse the table read.
#[inline(always)]
fn bounded(v: u32, max: u32) -> Option<u32> {
    let mut slot = 0u32;
    // SAFETY: a volatile round trip through a local.
    let v = unsafe {
        core::ptr::write_volatile(&mut slot, v);
        core::ptr::read_volatile(&slot)
    };
    if v < max { Some(v) } else { None }
}

/// Adds a packet of `bytes` (or, with `flow`, one pinned flow) to counter slot `id`.
#[inline(always)]
fn add<const N: usize>(map: &PerCpuArray<LbCounters, N>, id: u32, bytes: usize, flow: bool) {
    if let Some(c) = map.get_ptr_mut(id) {
        // SAFETY: per-CPU slot; XDP runs with migration disabled.
        unsafe {
            if flow {
                (*c).flows = (*c).flows.wrapping_add(1);
            } else {
                (*c).packets = (*c).packets.wrapping_add(1);
                (*c).bytes = (*c).bytes.wrapping_add(bytes as u64);
            }
        }
    }
}

/// Makes room for `outer` bytes in front of the IP header and moves the link-layer
/// header (with its VLAN tag, if any) to the new front, addressed to the real's next
/// hop. `None` if the frame has no headroom or is too short.
#[inline(always)]
fn push_outer(ctx: &XdpContext, l2: &L2, real: &LbReal, outer: usize) -> Option<()> {
    // SAFETY: the helper checks the headroom itself; every packet pointer is derived
    // again from the context afterwards.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(outer as i32)) } != 0 {
        return None;
    }
    // The old link-layer header now starts at `outer`.
    // SAFETY: ptr_at proved both headers are inside the frame.
    unsafe {
        let old = &*ptr_at::<EthHdr>(ctx, outer)?;
        let ethertype = old.ethertype;
        let new = &mut *ptr_at::<EthHdr>(ctx, 0)?;
        new.dst = real.mac;
        new.src = real.src_mac;
        new.ethertype = ethertype;
        if l2.l3 == ETH_HLEN + VLAN_HLEN {
            let tag = *ptr_at::<[u8; VLAN_HLEN]>(ctx, outer + ETH_HLEN)?;
            *ptr_at::<[u8; VLAN_HLEN]>(ctx, ETH_HLEN)? = tag;
        }
    }
    Some(())
}

/// IPv4 in IPv4 (RFC 2003): the outer header from the director's address to the
/// real's, TOS and DF of the inner packet, TTL 64.
#[inline(always)]
fn encap_v4(ctx: &XdpContext, l2: &L2, real: &LbReal, p: &Packet) -> Option<()> {
    let total = (p.ip_len + IPV4_HLEN) as u16;
    let frag = if p.df { IP_DF } else { 0 };
    let mut h = [0u8; IPV4_HLEN];
    h[0] = 0x45;
    h[1] = p.tos;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = LB_TUNNEL_TTL;
    h[9] = IPPROTO_IPIP;
    h[12..16].copy_from_slice(&real.src[..4]);
    h[16..20].copy_from_slice(&real.addr[..4]);
    let sum = !csum::fold(csum::add(0, &h));
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    push_outer(ctx, l2, real, IPV4_HLEN)?;
    // SAFETY: ptr_at proved the 20 bytes are inside the frame.
    unsafe { *ptr_at::<[u8; IPV4_HLEN]>(ctx, l2.l3)? = h };
    Some(())
}

/// IPv6 in IPv6 (RFC 2473): the outer header from the director's address to the
/// real's, the inner traffic class, the flow's hash as flow label (so routers on the
/// way spread tunnelled flows), hop limit 64.
#[inline(always)]
fn encap_v6(ctx: &XdpContext, l2: &L2, real: &LbReal, p: &Packet, hash: u32) -> Option<()> {
    let vtc_flow = (6u32 << 28) | ((p.tos as u32) << 20) | (hash & 0x000f_ffff);
    let mut h = [0u8; IPV6_HLEN];
    h[0..4].copy_from_slice(&vtc_flow.to_be_bytes());
    h[4..6].copy_from_slice(&(p.ip_len as u16).to_be_bytes());
    h[6] = IPPROTO_IPV6;
    h[7] = LB_TUNNEL_TTL;
    h[8..24].copy_from_slice(&real.src);
    h[24..40].copy_from_slice(&real.addr);
    push_outer(ctx, l2, real, IPV6_HLEN)?;
    // SAFETY: ptr_at proved the 40 bytes are inside the frame.
    unsafe { *ptr_at::<[u8; IPV6_HLEN]>(ctx, l2.l3)? = h };
    Some(())
}
