//! The load balancer (`vipd_lb`, entered from the responder by a tail call) on crafted
//! frames: the rewrite and encapsulation bytes, the server chosen against the userspace
//! Maglev reference, flow stickiness across table changes, ownership, counters and
//! what happens to malformed input. Maps are written through the same pure code the
//! daemon uses (`vipd::lb::service`, `vipd::lb::maglev`) and `dataplane::lb`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vip_common::{
    FAMILY_IPV4, FAMILY_IPV6, GroupState, LB_F_PREVIOUS, LB_REAL_F_UP, LbFlowKey, v4_in_16,
    wire::{IPPROTO_IPIP, IPPROTO_IPV6},
};
use vip_tests::{
    frames::{self, TCP_ACK, TCP_SYN},
    xdp::{Responder, XDP_DROP, XDP_PASS, XDP_TX},
};
use vipd::lb::{
    maglev::{self, Table, Weighted},
    service::{Method, NextHop, Protocol, Real, Service, entries, real_entry},
};

use crate::common::*;

const LB_VIP: [u8; 4] = [192, 0, 2, 10];
const LB_VIP6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];
const SEED: u32 = 0x5eed;
const DIRECTOR_IP: [u8; 4] = [198, 51, 100, 254];
const DIRECTOR_IP6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0x51, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe,
];
const GATEWAY_MAC: [u8; 6] = [0x02, 0x6a, 0, 0, 0, 0x01];

fn real_mac(i: usize) -> [u8; 6] {
    [0x02, 0x52, 0, 0, 0, i as u8 + 1]
}

fn real(addr: IpAddr, method: Method) -> Real {
    Real {
        addr,
        port: 80,
        weight: 1,
        method,
        inhibit_on_failure: false,
        check: None,
    }
}

fn v4_reals(n: u8, method: Method) -> Vec<Real> {
    (1..=n)
        .map(|i| real(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)), method))
        .collect()
}

fn service(vip: IpAddr, port: u16, protocol: Protocol, reals: Vec<Real>) -> Service {
    Service {
        vip,
        port,
        protocol,
        slot: SLOT,
        active_active: false,
        source_hash: false,
        hash_seed: SEED,
        reals,
        sorry: None,
        quorum: 1,
        hysteresis: 0,
        alpha: false,
    }
}

/// The way to real `i`: its own MAC for direct routing, the gateway's for a tunnel.
fn hop(i: usize, r: &Real) -> NextHop {
    NextHop {
        ifindex: 0,
        vlan: 0,
        mac: match r.method {
            Method::DirectRouting => real_mac(i),
            Method::Tunnel => GATEWAY_MAC,
        },
        src_mac: ROUTER_MAC,
        src: match r.addr {
            IpAddr::V4(_) => IpAddr::V4(DIRECTOR_IP.into()),
            IpAddr::V6(_) => IpAddr::V6(DIRECTOR_IP6.into()),
        },
        mtu: 1500,
    }
}

/// A service installed in a responder: data-plane id `id`, its reals at ids
/// `base..base + n`, and the table last installed (the reference).
struct Installed {
    svc: Service,
    id: u32,
    base: u16,
    table: Table,
    /// The reals the table was built from, by index into `svc.reals`.
    members: Vec<usize>,
}

impl Installed {
    fn new(r: &mut Responder, svc: Service, id: u32, base: u16) -> Self {
        let mut me = Self {
            svc,
            id,
            base,
            table: Vec::new(),
            members: Vec::new(),
        };
        for (i, real) in me.svc.reals.iter().enumerate() {
            let e = real_entry(id, real, &hop(i, real), 1, true);
            r.maps()
                .lb()
                .unwrap()
                .set_real(base as u32 + i as u32, e)
                .unwrap();
        }
        let all: Vec<usize> = (0..me.svc.reals.len()).collect();
        let (table, map) = me.build(&all);
        // A new service: its table first, then the entries that make it live.
        r.maps().lb().unwrap().write_table(id, 0, &map).unwrap();
        for (k, v) in entries(std::slice::from_ref(&me.svc), &[id], &[0]) {
            r.maps().lb().unwrap().set_service(k, v).unwrap();
        }
        me.table = table;
        me.members = all;
        me
    }

    fn build(&self, members: &[usize]) -> (Table, Box<vip_common::MaglevTable>) {
        let weighted: Vec<Weighted> = members
            .iter()
            .map(|&i| Weighted {
                id: self.svc.reals[i].id(),
                weight: self.svc.reals[i].weight,
            })
            .collect();
        let table = maglev::build(&weighted);
        let ids: Vec<u16> = members.iter().map(|&i| self.base + i as u16).collect();
        let map = maglev::to_map(&table, &ids);
        (table, map)
    }

    /// Installs a table of `members` (indexes into `svc.reals`) the way the daemon does:
    /// the other half, then one flip.
    fn install(&mut self, r: &mut Responder, members: &[usize]) {
        let (table, map) = self.build(members);
        r.maps()
            .lb()
            .unwrap()
            .install_table(&self.svc.key(), &map)
            .unwrap();
        self.table = table;
        self.members = members.to_vec();
    }

    /// Index into `svc.reals` of the real the reference table names for `flow`.
    fn reference(&self, flow: &LbFlowKey) -> Option<usize> {
        let slot = flow.slot(self.svc.hash_seed, self.svc.source_hash) as usize;
        self.table[slot].map(|m| self.members[m])
    }

    fn set_up(&self, r: &mut Responder, i: usize, up: bool) {
        let id = self.base as u32 + i as u32;
        let mut e = r.maps().lb().unwrap().real(id).unwrap();
        e.flags = if up { LB_REAL_F_UP } else { 0 };
        r.maps().lb().unwrap().set_real(id, e).unwrap();
    }
}

fn v4_flow(src: [u8; 4], sport: u16, dport: u16, proto: u8) -> LbFlowKey {
    LbFlowKey {
        src: v4_in_16(src),
        dst: v4_in_16(LB_VIP),
        sport,
        dport,
        proto,
        family: FAMILY_IPV4,
        _pad: [0; 2],
    }
}

fn client(i: u32) -> [u8; 4] {
    // 203.0.113.0/24 clients, many ports each.
    [203, 0, 113, (i % 250) as u8 + 1]
}

fn syn_v4(src: [u8; 4], sport: u16) -> Vec<u8> {
    let seg = frames::tcp(&src, &LB_VIP, sport, 80, TCP_SYN, &[]);
    frames::ipv4(CLIENT_MAC, ROUTER_MAC, src, LB_VIP, 6, 64, &seg)
}

fn ack_v4(src: [u8; 4], sport: u16, payload: &[u8]) -> Vec<u8> {
    let seg = frames::tcp(&src, &LB_VIP, sport, 80, TCP_ACK, payload);
    frames::ipv4(CLIENT_MAC, ROUTER_MAC, src, LB_VIP, 6, 64, &seg)
}

/// Which real (index) a transmitted direct-routing frame went to, by its destination MAC.
fn dr_target(out: &[u8]) -> usize {
    (out[5] - 1) as usize
}

fn owned_lb(n: u8) -> (Responder, Installed) {
    let mut r = responder(true);
    let svc = service(
        IpAddr::V4(LB_VIP.into()),
        80,
        Protocol::Tcp,
        v4_reals(n, Method::DirectRouting),
    );
    let lb = Installed::new(&mut r, svc, 0, 0);
    (r, lb)
}

#[test]
fn direct_routing_rewrites_only_the_ethernet_addresses_and_transmits() {
    let (mut r, lb) = owned_lb(3);
    let frame = syn_v4(client(1), 40_000);
    let (verdict, out) = r.run(&frame);
    assert_eq!(verdict, XDP_TX);
    let want = lb
        .reference(&v4_flow(client(1), 40_000, 80, 6))
        .expect("a real");
    assert_eq!(&out[..6], &real_mac(want), "destination: the chosen real");
    assert_eq!(&out[6..12], &ROUTER_MAC, "source: the director");
    assert_eq!(
        &out[12..],
        &frame[12..],
        "everything after the MACs untouched"
    );
    assert_eq!(
        moved(&r.counters()),
        vec![("lb_forward_dr", 1), ("lb_flow_created", 1)]
    );
}

#[test]
fn the_programs_choice_is_the_userspace_reference_for_many_tuples() {
    let (mut r, lb) = owned_lb(5);
    let mut per_real = [0u32; 5];
    for i in 0..3_000u32 {
        let (src, sport) = (client(i), 1024 + (i * 7919 % 60_000) as u16);
        let (verdict, out) = r.run(&syn_v4(src, sport));
        assert_eq!(verdict, XDP_TX);
        let want = lb.reference(&v4_flow(src, sport, 80, 6)).unwrap();
        assert_eq!(dr_target(&out), want, "tuple {src:?}:{sport}");
        per_real[want] += 1;
    }
    // Five equal servers: each near 600.
    assert!(
        per_real.iter().all(|&n| (450..750).contains(&n)),
        "{per_real:?}"
    );
}

#[test]
fn ipv6_and_udp_services_are_balanced_like_ipv4_tcp() {
    let mut r = responder(true);
    let reals6: Vec<Real> = (1..=3u16)
        .map(|i| {
            real(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x51, 0, 0, 0, 0, i)),
                Method::DirectRouting,
            )
        })
        .collect();
    let svc6 = service(IpAddr::V6(LB_VIP6.into()), 443, Protocol::Tcp, reals6);
    let lb6 = Installed::new(&mut r, svc6, 0, 0);
    let udp = service(
        IpAddr::V4(LB_VIP.into()),
        53,
        Protocol::Udp,
        v4_reals(4, Method::DirectRouting),
    );
    let lbu = Installed::new(&mut r, udp, 1, 10);
    for i in 0..200u16 {
        let mut src = CLIENT_IP6;
        src[14] = (i >> 8) as u8;
        src[15] = i as u8;
        let seg = frames::tcp(&src, &LB_VIP6, 30_000 + i, 443, TCP_SYN, &[]);
        let f = frames::ipv6(CLIENT_MAC, ROUTER_MAC, src, LB_VIP6, 6, 64, &seg);
        let (v, out) = r.run(&f);
        assert_eq!(v, XDP_TX);
        let flow = LbFlowKey {
            src,
            dst: LB_VIP6,
            sport: 30_000 + i,
            dport: 443,
            proto: 6,
            family: FAMILY_IPV6,
            _pad: [0; 2],
        };
        assert_eq!(dr_target(&out), lb6.reference(&flow).unwrap());
        assert_eq!(&out[12..], &f[12..]);

        let src4 = client(i as u32);
        let dgram = frames::udp(&src4, &LB_VIP, 5000 + i, 53, b"query");
        let f = frames::ipv4(CLIENT_MAC, ROUTER_MAC, src4, LB_VIP, 17, 64, &dgram);
        let (v, out) = r.run(&f);
        assert_eq!(v, XDP_TX);
        let want = lbu.reference(&v4_flow(src4, 5000 + i, 53, 17)).unwrap();
        assert_eq!(dr_target(&out), want);
    }
    // A UDP packet to the TCP service's port, and TCP to the UDP one: not services.
    let dgram = frames::udp(&CLIENT_IP, &LB_VIP, 5000, 80, b"x");
    let f = frames::ipv4(CLIENT_MAC, ROUTER_MAC, CLIENT_IP, LB_VIP, 17, 64, &dgram);
    assert_eq!(r.run(&f).0, XDP_PASS);
    let seg = frames::tcp(&CLIENT_IP, &LB_VIP, 5000, 53, TCP_SYN, &[]);
    let f = frames::ipv4(CLIENT_MAC, ROUTER_MAC, CLIENT_IP, LB_VIP, 6, 64, &seg);
    assert_eq!(r.run(&f).0, XDP_PASS);
}

#[test]
fn ipv4_tunnel_prepends_an_outer_header_with_a_right_checksum() {
    let mut r = responder(true);
    let svc = service(
        IpAddr::V4(LB_VIP.into()),
        80,
        Protocol::Tcp,
        vec![real(
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 200)),
            Method::Tunnel,
        )],
    );
    Installed::new(&mut r, svc, 0, 0);
    let mut frame = ack_v4(CLIENT_IP, 40_000, b"GET / HTTP/1.0\r\n\r\n");
    frame[15] = 0x28; // TOS: DSCP AF11
    frame[20] = 0x40; // DF
    vip_tests::wire::fix_ip_checksum(&mut frame);
    let (verdict, out) = r.run(&frame);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out.len(), frame.len() + 20);
    assert_eq!(&out[..6], &GATEWAY_MAC);
    assert_eq!(&out[6..12], &ROUTER_MAC);
    assert_eq!(&out[12..14], &[0x08, 0x00]);
    let outer = &out[14..34];
    assert_eq!(outer[0], 0x45);
    assert_eq!(outer[1], 0x28, "TOS copied");
    assert_eq!(
        u16::from_be_bytes([outer[2], outer[3]]) as usize,
        frame.len() - 14 + 20
    );
    assert_eq!(&outer[6..8], &[0x40, 0], "DF copied");
    assert_eq!((outer[8], outer[9]), (64, IPPROTO_IPIP));
    assert_eq!(&outer[12..16], &DIRECTOR_IP);
    assert_eq!(&outer[16..20], &[203, 0, 113, 200]);
    assert_eq!(frames::inet_checksum(&[outer]), 0, "header checksum");
    assert_eq!(&out[34..], &frame[14..], "the inner packet, byte for byte");
    // A second opinion: scapy's dissector and its own checksum.
    let said = scapy(
        &out,
        "o = f[IP]; c = o.chksum; del o.chksum; o = IP(bytes(o))\n\
         print(o.proto, o.ttl, o.src, o.dst, c == o.chksum, f[IP].payload.dst, f[TCP].dport)",
    );
    assert_eq!(said, "4 64 198.51.100.254 203.0.113.200 True 192.0.2.10 80");
    assert_eq!(
        moved(&r.counters()),
        vec![
            ("lb_forward_tunnel", 1),
            ("lb_flow_created", 1),
            ("lb_flow_midstream", 1)
        ]
    );
}

#[test]
fn ipv6_tunnel_prepends_an_outer_header_labelled_with_the_flow_hash() {
    let mut r = responder(true);
    let server = Ipv6Addr::new(0x2001, 0xdb8, 0x71, 0, 0, 0, 0, 7);
    let svc = service(
        IpAddr::V6(LB_VIP6.into()),
        80,
        Protocol::Tcp,
        vec![real(IpAddr::V6(server), Method::Tunnel)],
    );
    Installed::new(&mut r, svc, 0, 0);
    let seg = frames::tcp(&CLIENT_IP6, &LB_VIP6, 40_000, 80, TCP_SYN, &[]);
    let mut frame = frames::ipv6(CLIENT_MAC, ROUTER_MAC, CLIENT_IP6, LB_VIP6, 6, 64, &seg);
    frame[14] = 0x6b; // traffic class 0xb8 (EF) over two bytes
    frame[15] = 0x80;
    let frame = frames::vlan_tagged(&frame, 0);
    // Untagged again: VLAN 0 means priority-tagged; the real's VLAN (0) matches.
    let (verdict, out) = r.run(&frame);
    assert_eq!(verdict, XDP_TX);
    assert_eq!(out.len(), frame.len() + 40);
    assert_eq!(&out[..6], &GATEWAY_MAC);
    assert_eq!(
        &out[12..18],
        &frame[12..18],
        "the tag moves with the header"
    );
    let outer = &out[18..58];
    let flow = LbFlowKey {
        src: CLIENT_IP6,
        dst: LB_VIP6,
        sport: 40_000,
        dport: 80,
        proto: 6,
        family: FAMILY_IPV6,
        _pad: [0; 2],
    };
    let vtc = u32::from_be_bytes(outer[..4].try_into().unwrap());
    assert_eq!(vtc >> 28, 6);
    assert_eq!((vtc >> 20) & 0xff, 0xb8, "traffic class copied");
    assert_eq!(vtc & 0xfffff, flow.hash(SEED, false) & 0xfffff);
    assert_eq!(
        u16::from_be_bytes([outer[4], outer[5]]) as usize,
        frame.len() - 18
    );
    assert_eq!((outer[6], outer[7]), (IPPROTO_IPV6, 64));
    assert_eq!(&outer[8..24], &DIRECTOR_IP6);
    assert_eq!(&outer[24..40], &server.octets());
    assert_eq!(&out[58..], &frame[18..], "the inner packet, byte for byte");
    let said = scapy(
        &out,
        "o = f[IPv6]; print(o.nh, o.hlim, o.dst, o.payload.dst, o[TCP].dport)",
    );
    assert_eq!(said, "41 64 2001:db8:71::7 2001:db8::10 80");
}

#[test]
fn flows_keep_their_server_when_the_set_changes_and_leave_one_that_fails() {
    let mut r = responder(true);
    let svc = service(
        IpAddr::V4(LB_VIP.into()),
        80,
        Protocol::Tcp,
        v4_reals(4, Method::DirectRouting),
    );
    // Three servers at first; the fourth joins later.
    let mut lb = Installed::new(&mut r, svc, 0, 0);
    lb.install(&mut r, &[0, 1, 2]);
    let flows: Vec<([u8; 4], u16)> = (0..600u32).map(|i| (client(i), 2000 + i as u16)).collect();
    let mut pinned = Vec::new();
    for &(src, sport) in &flows {
        let (v, out) = r.run(&syn_v4(src, sport));
        assert_eq!(v, XDP_TX);
        pinned.push(dr_target(&out));
    }
    // A server joins: the table changes, established flows do not.
    lb.install(&mut r, &[0, 1, 2, 3]);
    let mut would_move = 0;
    for (k, &(src, sport)) in flows.iter().enumerate() {
        let (_, out) = r.run(&ack_v4(src, sport, b"more"));
        assert_eq!(dr_target(&out), pinned[k], "flow {k} moved");
        would_move += usize::from(lb.reference(&v4_flow(src, sport, 80, 6)) != Some(pinned[k]));
    }
    assert!(
        would_move > 50,
        "the new table would have moved {would_move} flows"
    );
    // New flows follow the new table, the new server among them.
    let mut to_new = 0;
    for i in 0..400u32 {
        let (src, sport) = (client(i), 30_000 + i as u16);
        let (_, out) = r.run(&syn_v4(src, sport));
        assert_eq!(
            Some(dr_target(&out)),
            lb.reference(&v4_flow(src, sport, 80, 6))
        );
        to_new += usize::from(dr_target(&out) == 3);
    }
    assert!(to_new > 50, "{to_new}");
    // Server 1 fails: out of the table, and down, so its flows go where the table says;
    // everyone else's stay.
    lb.install(&mut r, &[0, 2, 3]);
    lb.set_up(&mut r, 1, false);
    let before = r.counters();
    let mut moved_flows = 0;
    for (k, &(src, sport)) in flows.iter().enumerate() {
        let (_, out) = r.run(&ack_v4(src, sport, b"more"));
        if pinned[k] == 1 {
            assert_ne!(dr_target(&out), 1);
            assert_eq!(
                Some(dr_target(&out)),
                lb.reference(&v4_flow(src, sport, 80, 6))
            );
            moved_flows += 1;
        } else {
            assert_eq!(dr_target(&out), pinned[k], "flow {k} moved");
        }
    }
    let c = r.counters();
    assert!(moved_flows > 100, "{moved_flows}");
    assert_eq!(c.lb_flow_moved - before.lb_flow_moved, moved_flows as u64);
    assert_eq!(c.lb_no_real, 0);
}

#[test]
fn a_flow_that_began_elsewhere_follows_the_table_and_is_counted_midstream() {
    let (mut r, lb) = owned_lb(3);
    let (v, out) = r.run(&ack_v4(CLIENT_IP, 50_000, b"after a failover"));
    assert_eq!(v, XDP_TX);
    assert_eq!(
        Some(dr_target(&out)),
        lb.reference(&v4_flow(CLIENT_IP, 50_000, 80, 6))
    );
    let c = r.counters();
    assert_eq!((c.lb_flow_midstream, c.lb_flow_created), (1, 1));
    assert!(
        r.maps()
            .lb()
            .unwrap()
            .flow(&v4_flow(CLIENT_IP, 50_000, 80, 6))
            .is_some()
    );
}

#[test]
fn a_slot_this_node_does_not_answer_for_drops_unless_the_service_is_active_active() {
    let mut r = responder(false);
    let svc = service(
        IpAddr::V4(LB_VIP.into()),
        80,
        Protocol::Tcp,
        v4_reals(2, Method::DirectRouting),
    );
    let mut lb = Installed::new(&mut r, svc, 0, 0);
    let frame = syn_v4(CLIENT_IP, 40_000);
    // Dropped, not passed: the kernel of a crashed master still holds the VIP and would
    // reset the connection (see `vip-ebpf/src/lb.rs`).
    let (v, _) = r.run(&frame);
    assert_eq!(v, XDP_DROP);
    assert_eq!(moved(&r.counters()), vec![("lb_not_owned", 1)]);
    // A lapsed lease is not answering either.
    r.maps()
        .set_group(SLOT, GroupState::owned_until(1))
        .unwrap();
    assert_eq!(r.run(&frame).0, XDP_DROP);
    // Active-active: forwarded whatever the slot says.
    lb.svc.active_active = true;
    for (k, v) in entries(std::slice::from_ref(&lb.svc), &[0], &[0]) {
        r.maps().lb().unwrap().set_service(k, v).unwrap();
    }
    assert_eq!(r.run(&frame).0, XDP_TX);
}

#[test]
fn counters_per_service_and_per_real_add_up() {
    let (mut r, lb) = owned_lb(3);
    let mut bytes = 0u64;
    let mut per_real = [0u64; 3];
    for i in 0..90u32 {
        let f = if i % 3 == 0 {
            syn_v4(client(i), 7000 + i as u16)
        } else {
            ack_v4(client(i - i % 3), 7000 + (i - i % 3) as u16, b"data")
        };
        let (v, out) = r.run(&f);
        assert_eq!(v, XDP_TX);
        bytes += (f.len() - 14) as u64;
        per_real[dr_target(&out)] += 1;
    }
    let m = r.maps().lb().unwrap();
    let s = m.service_counters(lb.id).unwrap();
    assert_eq!((s.packets, s.bytes, s.flows), (90, bytes, 30));
    for (i, &n) in per_real.iter().enumerate() {
        assert_eq!(m.real_counters(i as u32).unwrap().packets, n, "real {i}");
    }
    let flows: u64 = (0..3).map(|i| m.real_counters(i).unwrap().flows).sum();
    assert_eq!(flows, 30);
}

#[test]
fn what_cannot_be_balanced_is_dropped_or_passed_by_rule_and_counted() {
    let (mut r, mut lb) = owned_lb(2);
    let count = |r: &mut Responder, f: &[u8]| {
        let before = r.counters();
        let v = r.run(f).0;
        let after = r.counters();
        let diff: Vec<_> = vip_common::Counters::NAMES
            .iter()
            .zip(after.values().iter().zip(before.values()))
            .filter(|(_, (a, b))| **a != *b)
            .map(|(n, _)| *n)
            .collect();
        (v, diff)
    };
    let syn = syn_v4(CLIENT_IP, 40_000);
    // The TCP header cut short.
    let short = &syn[..14 + 20 + 10];
    let mut cut = short.to_vec();
    cut[17] = (20 + 10) as u8; // IP total length agrees with the frame
    vip_tests::wire::fix_ip_checksum(&mut cut);
    assert_eq!(count(&mut r, &cut), (XDP_DROP, vec!["lb_drop_malformed"]));
    // The IP length beyond the frame.
    let mut long = syn.clone();
    long[16] = 0x05;
    vip_tests::wire::fix_ip_checksum(&mut long);
    assert_eq!(count(&mut r, &long), (XDP_DROP, vec!["lb_drop_malformed"]));
    // IHL below 5.
    let mut ihl = syn.clone();
    ihl[14] = 0x44;
    assert_eq!(count(&mut r, &ihl), (XDP_DROP, vec!["lb_drop_malformed"]));
    // A first fragment (MF), and a later one to a VIP that has only port services.
    let mut first = syn.clone();
    first[20] = 0x20;
    vip_tests::wire::fix_ip_checksum(&mut first);
    assert_eq!(count(&mut r, &first), (XDP_DROP, vec!["lb_drop_fragment"]));
    let mut later = syn.clone();
    later[21] = 0x10;
    vip_tests::wire::fix_ip_checksum(&mut later);
    assert_eq!(count(&mut r, &later), (XDP_PASS, vec![]));
    // Another port of the VIP, ICMP to the VIP, TCP elsewhere: not services, untouched.
    let seg = frames::tcp(&CLIENT_IP, &LB_VIP, 40_000, 22, TCP_SYN, &[]);
    let f = frames::ipv4(CLIENT_MAC, ROUTER_MAC, CLIENT_IP, LB_VIP, 6, 64, &seg);
    assert_eq!(count(&mut r, &f), (XDP_PASS, vec![]));
    let f = frames::ipv4(
        CLIENT_MAC,
        ROUTER_MAC,
        CLIENT_IP,
        LB_VIP,
        1,
        64,
        &[8, 0, 0, 0],
    );
    assert_eq!(count(&mut r, &f), (XDP_PASS, vec![]));
    let seg = frames::tcp(&CLIENT_IP, &VIP, 40_000, 80, TCP_SYN, &[]);
    let f = frames::ipv4(CLIENT_MAC, ROUTER_MAC, CLIENT_IP, VIP, 6, 64, &seg);
    assert_eq!(count(&mut r, &f), (XDP_PASS, vec![]));
    // On VLAN 42, where no real is: unreachable.
    let tagged = frames::vlan_tagged(&syn, 42);
    assert_eq!(
        count(&mut r, &tagged),
        (XDP_DROP, vec!["lb_drop_unreachable", "lb_flow_created"])
    );
    // No server left in the table.
    lb.install(&mut r, &[]);
    let f = syn_v4(CLIENT_IP, 40_001);
    assert_eq!(count(&mut r, &f), (XDP_DROP, vec!["lb_no_real"]));
    // Every truncation of a valid frame (from the shortest BPF_PROG_TEST_RUN takes, an
    // Ethernet header) is judged, never aborted.
    lb.install(&mut r, &[0, 1]);
    for n in 14..syn.len() {
        let v = r.run(&syn[..n]).0;
        assert!(v == XDP_PASS || v == XDP_DROP, "{n} bytes: verdict {v}");
    }
}

#[test]
fn an_all_ports_service_drops_later_fragments_and_a_tunnel_packet_over_the_mtu() {
    let mut r = responder(true);
    let mut tun = real(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), Method::Tunnel);
    tun.port = 0;
    let svc = service(IpAddr::V4(LB_VIP.into()), 0, Protocol::Tcp, vec![tun]);
    Installed::new(&mut r, svc, 0, 0);
    let mut later = syn_v4(CLIENT_IP, 40_000);
    later[21] = 0x10;
    vip_tests::wire::fix_ip_checksum(&mut later);
    assert_eq!(r.run(&later).0, XDP_DROP);
    assert_eq!(r.counters().lb_drop_fragment, 1);
    // Any port goes to the service; 1481 bytes of IP + 20 of tunnel exceed 1500.
    let f = ack_v4(CLIENT_IP, 40_000, &[0u8; 1481 - 40]);
    assert_eq!(r.run(&f).0, XDP_DROP);
    assert_eq!(r.counters().lb_drop_too_big, 1);
    let f = ack_v4(CLIENT_IP, 40_000, &[0u8; 1480 - 40]);
    assert_eq!(r.run(&f).0, XDP_TX);
    let seg = frames::tcp(&CLIENT_IP, &LB_VIP, 40_000, 8443, TCP_SYN, &[]);
    let f = frames::ipv4(CLIENT_MAC, ROUTER_MAC, CLIENT_IP, LB_VIP, 6, 64, &seg);
    assert_eq!(r.run(&f).0, XDP_TX);
}

#[test]
fn bpftool_shows_the_load_balancers_field_names() {
    let (mut r, _lb) = owned_lb(2);
    r.run(&syn_v4(CLIENT_IP, 40_000));
    for (map, fields) in [
        (
            vip_common::maps::LB_SERVICES,
            &["addr", "port", "slot", "seed", "table"][..],
        ),
        (
            vip_common::maps::LB_REALS,
            &["src_mac", "generation", "method"][..],
        ),
        (vip_common::maps::LB_FLOWS, &["sport", "dport", "real"][..]),
        (
            vip_common::maps::LB_SERVICE_STATS,
            &["packets", "bytes", "flows"][..],
        ),
    ] {
        let out = std::process::Command::new("bpftool")
            .args(["map", "dump", "pinned"])
            .arg(r.dir().join(map))
            .arg("-j")
            .output()
            .unwrap();
        assert!(out.status.success(), "bpftool map dump {map}");
        let text = String::from_utf8_lossy(&out.stdout);
        for f in fields {
            assert!(text.contains(&format!("\"{f}\"")), "{map} lacks {f}");
        }
    }
}

#[test]
fn the_flow_hash_in_the_program_is_vip_commons() {
    // A one-entry check that needs no table: a single real owns every entry, and the
    // IPv6 tunnel's flow label carries 20 bits of the program's own hash.
    let mut r = responder(true);
    let svc = service(
        IpAddr::V6(LB_VIP6.into()),
        0,
        Protocol::Udp,
        vec![real(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x71, 0, 0, 0, 0, 1)),
            Method::Tunnel,
        )],
    );
    Installed::new(&mut r, svc, 0, 0);
    for i in 0..500u16 {
        let mut src = CLIENT_IP6;
        src[13] = (i >> 8) as u8;
        src[15] = i as u8;
        let dport = 1 + i * 13;
        let d = frames::udp(&src, &LB_VIP6, 4000 + i, dport, b"x");
        let f = frames::ipv6(CLIENT_MAC, ROUTER_MAC, src, LB_VIP6, 17, 64, &d);
        let (v, out) = r.run(&f);
        assert_eq!(v, XDP_TX);
        let label = u32::from_be_bytes(out[14..18].try_into().unwrap()) & 0xfffff;
        let flow = LbFlowKey {
            src,
            dst: LB_VIP6,
            sport: 4000 + i,
            dport,
            proto: 17,
            family: FAMILY_IPV6,
            _pad: [0; 2],
        };
        assert_eq!(label, flow.hash(SEED, false) & 0xfffff, "tuple {i}");
    }
}

#[test]
fn mutated_service_frames_are_forwarded_whole_passed_untouched_or_dropped() {
    let mut r = responder(true);
    let dr = service(
        IpAddr::V4(LB_VIP.into()),
        80,
        Protocol::Tcp,
        v4_reals(3, Method::DirectRouting),
    );
    Installed::new(&mut r, dr, 0, 0);
    let tun = service(
        IpAddr::V6(LB_VIP6.into()),
        0,
        Protocol::Udp,
        vec![real(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x71, 0, 0, 0, 0, 1)),
            Method::Tunnel,
        )],
    );
    Installed::new(&mut r, tun, 1, 10);
    let seeds = [
        syn_v4(CLIENT_IP, 40_000),
        ack_v4(CLIENT_IP, 40_001, b"payload bytes"),
        frames::ipv6(
            CLIENT_MAC,
            ROUTER_MAC,
            CLIENT_IP6,
            LB_VIP6,
            17,
            64,
            &frames::udp(&CLIENT_IP6, &LB_VIP6, 5353, 53, b"query"),
        ),
    ];
    // xorshift64*, seeded: a failure replays.
    let mut state = 0x1b_2026_u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut seen = [0u32; 4];
    for round in 0..4_000 {
        let mut f = seeds[round % seeds.len()].clone();
        if next() % 4 == 0 {
            f = frames::vlan_tagged(&f, 0);
        }
        for _ in 0..(next() % 4) {
            let at = (next() as usize) % f.len().min(64);
            f[at] ^= 1 << (next() % 8);
        }
        if next() % 5 == 0 {
            let keep = 14 + (next() as usize) % (f.len() - 13);
            f.truncate(keep);
        }
        let (v, out) = r.run(&f);
        seen[v as usize] += 1;
        let l3 = if f[12..14] == [0x81, 0x00] { 18 } else { 14 };
        match v {
            XDP_PASS => assert_eq!(out, f, "round {round}: a passed frame is untouched"),
            XDP_DROP => {}
            XDP_TX if out.len() == f.len() => {
                assert!((0..3).any(|i| out[..6] == real_mac(i)), "round {round}");
                assert_eq!(&out[6..12], &ROUTER_MAC);
                assert_eq!(&out[12..], &f[12..], "round {round}: only the MACs change");
            }
            XDP_TX => {
                let outer = out.len() - f.len();
                assert!(
                    outer == 20 || outer == 40,
                    "round {round}: {outer} bytes added"
                );
                assert_eq!(&out[..6], &GATEWAY_MAC);
                assert_eq!(&out[12..l3], &f[12..l3]);
                assert_eq!(&out[l3 + outer..], &f[l3..], "round {round}: inner intact");
            }
            other => panic!("round {round}: verdict {other}"),
        }
    }
    // Each kind of verdict was reached.
    assert!(
        seen[XDP_PASS as usize] > 100 && seen[XDP_DROP as usize] > 100,
        "{seen:?}"
    );
    assert!(seen[XDP_TX as usize] > 1_000, "{seen:?}");
}

#[test]
fn without_services_the_responder_skips_the_lookup_and_removing_the_last_one_says_so() {
    let mut r = responder(true);
    assert!(!r.maps().lb().unwrap().active());
    let (mut r, lb) = {
        let svc = service(
            IpAddr::V4(LB_VIP.into()),
            80,
            Protocol::Tcp,
            v4_reals(2, Method::DirectRouting),
        );
        let lb = Installed::new(&mut r, svc, 0, 0);
        (r, lb)
    };
    assert!(r.maps().lb().unwrap().active());
    assert_eq!(r.run(&syn_v4(CLIENT_IP, 40_000)).0, XDP_TX);
    for (k, _) in entries(std::slice::from_ref(&lb.svc), &[0], &[0]) {
        r.maps().lb().unwrap().remove_service(&k).unwrap();
        // The VIP's entry goes last: one left keeps the lookup on.
        let left = r.maps().lb().unwrap().services().unwrap().len();
        assert_eq!(r.maps().lb().unwrap().active(), left > 0);
    }
    let frame = syn_v4(CLIENT_IP, 40_001);
    let (v, out) = r.run(&frame);
    assert_eq!((v, out), (XDP_PASS, frame));
}

/// An ICMPv4 error from `router` to the VIP quoting the first 28 bytes of a packet from
/// VIP:`vport` to `client`:`cport` (what a router on the way back sends a DR server's
/// reply that is too big).
fn icmp_error(kind: u8, client: [u8; 4], cport: u16, vport: u16) -> Vec<u8> {
    let quoted_tcp = frames::tcp(&LB_VIP, &client, vport, cport, TCP_ACK, &[]);
    let quoted = frames::ipv4(ROUTER_MAC, CLIENT_MAC, LB_VIP, client, 6, 63, &quoted_tcp);
    let mut icmp = vec![kind, 4, 0, 0, 0, 0, 0x05, 0x78]; // next-hop MTU 1400
    icmp.extend_from_slice(&quoted[14..14 + 28]);
    let c = frames::inet_checksum(&[&icmp]);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let router = [198, 51, 100, 77];
    frames::ipv4(CLIENT_MAC, ROUTER_MAC, router, LB_VIP, 1, 64, &icmp)
}

#[test]
fn an_icmp_error_about_a_flow_goes_to_that_flows_server_and_other_icmp_passes() {
    let (mut r, _lb) = owned_lb(5);
    let mut served = Vec::new();
    for i in 0..50u16 {
        let (v, out) = r.run(&syn_v4(CLIENT_IP, 41_000 + i));
        assert_eq!(v, XDP_TX);
        served.push(dr_target(&out));
    }
    for (i, &real) in served.iter().enumerate() {
        let f = icmp_error(3, CLIENT_IP, 41_000 + i as u16, 80);
        let (v, out) = r.run(&f);
        assert_eq!(v, XDP_TX, "error {i}");
        assert_eq!(dr_target(&out), real, "error {i} went to another server");
        assert_eq!(&out[12..], &f[12..]);
    }
    let c = r.counters();
    assert_eq!((c.lb_forward_icmp, c.lb_forward_dr), (50, 100));
    let before = r.counters();
    // Time exceeded goes the same way; an error quoting another port, an echo request
    // and an error quoting a packet from another source pass untouched.
    assert_eq!(r.run(&icmp_error(11, CLIENT_IP, 41_000, 80)).0, XDP_TX);
    for f in [
        icmp_error(3, CLIENT_IP, 41_000, 22),
        frames::ipv4(
            CLIENT_MAC,
            ROUTER_MAC,
            CLIENT_IP,
            LB_VIP,
            1,
            64,
            &[8, 0, 0xf7, 0xff, 0, 0, 0, 0],
        ),
    ] {
        let (v, out) = r.run(&f);
        assert_eq!((v, out), (XDP_PASS, f));
    }
    let mut other = icmp_error(3, CLIENT_IP, 41_000, 80);
    other[14 + 20 + 8 + 12] = 10; // the quoted source is not the VIP
    let (v, out) = r.run(&other);
    assert_eq!((v, out), (XDP_PASS, other));
    let c = r.counters();
    assert_eq!(c.lb_forward_icmp - before.lb_forward_icmp, 1);
}

/// A server added, the old table marked as the previous one (`LB_F_PREVIOUS`, as the
/// daemon does on a reload): a TCP segment without SYN of a flow this director never
/// saw follows the previous table (it began before the change, on a director that died
/// since) and is pinned there; a SYN follows the new table; once the mark is cleared,
/// unknown midstream flows follow the new table too. A flip alone (a health check's)
/// leaves no mark.
#[test]
fn after_a_server_is_added_unknown_midstream_flows_follow_the_previous_table_until_cleared() {
    let (mut r, mut lb) = owned_lb(3);
    lb.install(&mut r, &[0, 1]);
    assert_eq!(
        r.maps().lb().unwrap().service(&lb.svc.key()).unwrap().flags & LB_F_PREVIOUS,
        0
    );
    // Flows whose server changes when real 2 joins: before, on 0 or 1; after, on 2.
    let flows: Vec<([u8; 4], u16, usize)> = (0..2_000u32)
        .map(|i| (client(i), 2_000 + i as u16))
        .filter_map(|(src, sport)| {
            lb.reference(&v4_flow(src, sport, 80, 6))
                .map(|old| (src, sport, old))
        })
        .collect();
    lb.install(&mut r, &[0, 1, 2]);
    r.maps()
        .lb()
        .unwrap()
        .set_previous(&lb.svc.key(), true)
        .unwrap();
    let changed: Vec<([u8; 4], u16, usize)> = flows
        .into_iter()
        .filter(|&(src, sport, _)| lb.reference(&v4_flow(src, sport, 80, 6)) == Some(2))
        .collect();
    assert!(changed.len() > 300, "{}", changed.len());
    let before = r.counters();
    let (old_flows, rest) = changed.split_at(100);
    for &(src, sport, old) in old_flows {
        let (v, out) = r.run(&ack_v4(src, sport, b"midstream"));
        assert_eq!(v, XDP_TX);
        assert_eq!(dr_target(&out), old, "the previous table's server");
        // Pinned: the next segment goes there without the previous table.
        assert_eq!(
            r.maps()
                .lb()
                .unwrap()
                .flow(&v4_flow(src, sport, 80, 6))
                .map(|f| f.real),
            Some(old as u32)
        );
    }
    let c = r.counters();
    assert_eq!(c.lb_flow_previous - before.lb_flow_previous, 100);
    assert_eq!(c.lb_flow_midstream - before.lb_flow_midstream, 100);
    // A new connection follows the new table.
    let (src, sport, _) = rest[0];
    let (_, out) = r.run(&syn_v4(src, sport));
    assert_eq!(dr_target(&out), 2);
    // The mark cleared: an unknown midstream flow follows the new table.
    r.maps()
        .lb()
        .unwrap()
        .set_previous(&lb.svc.key(), false)
        .unwrap();
    let (src, sport, _) = rest[1];
    let (_, out) = r.run(&ack_v4(src, sport, b"later"));
    assert_eq!(dr_target(&out), 2);
    assert_eq!(r.counters().lb_flow_previous - before.lb_flow_previous, 100);
}

/// The previous table's server is down (a server that failed, then the flip): an
/// unknown midstream flow follows the new table instead.
#[test]
fn an_unknown_midstream_flow_whose_previous_server_is_down_follows_the_new_table() {
    let (mut r, mut lb) = owned_lb(3);
    let flows: Vec<([u8; 4], u16)> = (0..600u32)
        .map(|i| (client(i), 3_000 + i as u16))
        .filter(|&(src, sport)| lb.reference(&v4_flow(src, sport, 80, 6)) == Some(2))
        .collect();
    assert!(!flows.is_empty());
    lb.set_up(&mut r, 2, false);
    lb.install(&mut r, &[0, 1]);
    r.maps()
        .lb()
        .unwrap()
        .set_previous(&lb.svc.key(), true)
        .unwrap();
    for &(src, sport) in &flows {
        let (v, out) = r.run(&ack_v4(src, sport, b"x"));
        assert_eq!(v, XDP_TX);
        assert_eq!(
            Some(dr_target(&out)),
            lb.reference(&v4_flow(src, sport, 80, 6))
        );
    }
    assert_eq!(r.counters().lb_flow_previous, 0);
}
