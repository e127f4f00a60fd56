//! The load balancer's data plane on a real kernel, before the daemon drives it (that is
//! issue 26's second part): r1 is the director, with vipd's programs attached to its
//! eth0 and its maps written through `dataplane::lb` from the same pure code the daemon
//! will use; r2, r3 and r4 are real servers on the same segment with the service VIP on
//! their loopback (`arp_ignore` / `arp_announce`, as for LVS-DR), each serving its name
//! over HTTP; the client opens real TCP connections to the VIP.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use vip_common::{FAMILY_IPV4, GroupState, LEASE_FOREVER, LbFlowKey, VipKey, VipValue, v4_in_16};
use vip_tests::lab::{Lab, Node, wait_until};
use vipd::{
    dataplane::{Dataplane, ModePreference},
    lb::{
        health::Entry,
        service::{Method, NextHop, Protocol, Real, Service, entries, real_entry, table},
    },
};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);
const PORT: u16 = 8080;
const SLOT: u32 = 5;

fn ifindex(lab: &Lab, node: &Node) -> u32 {
    lab.in_node(node, || nix::net::if_::if_nametoindex("eth0").unwrap())
        .unwrap()
}

/// Starts a web server on `node` answering `/who` with its label, the VIP on its loopback.
fn real_server(lab: &Lab, node: &Node) {
    for (k, v) in [
        ("net.ipv4.conf.all.arp_ignore", "1"),
        ("net.ipv4.conf.all.arp_announce", "2"),
    ] {
        lab.exec(node, &["sysctl", "-qw", &format!("{k}={v}")])
            .unwrap();
    }
    lab.exec(
        node,
        &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"],
    )
    .unwrap();
    let root = lab.scratch(&format!("www-{}", node.label)).unwrap();
    std::fs::write(root.join("who"), &node.label).unwrap();
    lab.spawn(
        node,
        &[
            "/usr/bin/python3",
            "-m",
            "http.server",
            &PORT.to_string(),
            "--bind",
            "0.0.0.0",
            "--directory",
            root.to_str().unwrap(),
        ],
    )
    .unwrap();
}

#[test]
fn direct_routing_spreads_real_connections_by_weight_and_a_removed_server_gets_none() {
    let lab = Lab::builder().routers(4).client().build().unwrap();
    let director = lab.router(1);
    let servers: Vec<&Node> = (2..=4).map(|i| lab.router(i)).collect();
    for s in &servers {
        real_server(&lab, s);
    }
    let eth0 = ifindex(&lab, director);
    let reals: Vec<Real> = servers
        .iter()
        .zip([1u32, 1, 2])
        .map(|(s, weight)| Real {
            addr: IpAddr::V4(s.ipv4),
            port: PORT,
            weight,
            method: Method::DirectRouting,
            inhibit_on_failure: false,
            check: None,
        })
        .collect();
    let svc = Service {
        vip: IpAddr::V4(VIP),
        port: PORT,
        protocol: Protocol::Tcp,
        slot: SLOT,
        active_active: false,
        source_hash: false,
        hash_seed: 26,
        reals: reals.clone(),
        sorry: None,
        quorum: 1,
        hysteresis: 0,
        alpha: false,
    };
    let pin = lab.pin_dir().unwrap();
    let ids: Vec<u16> = vec![0, 1, 2];
    let mut dp = lab
        .in_node(director, || {
            let mut dp = Dataplane::open(&pin).unwrap();
            dp.attach("eth0", ModePreference::Native).unwrap();
            dp
        })
        .unwrap();
    let m = dp.maps_mut();
    // The director answers ARP for the VIP (the group is owned), and balances it.
    m.add_vip(
        VipKey::v4(eth0, 0, VIP.octets()),
        VipValue {
            slot: SLOT,
            mac: director.mac,
            flags: 0,
        },
    )
    .unwrap();
    m.set_group(SLOT, GroupState::owned_until(LEASE_FOREVER))
        .unwrap();
    for (i, (r, s)) in reals.iter().zip(&servers).enumerate() {
        let hop = NextHop {
            ifindex: eth0,
            vlan: 0,
            mac: s.mac,
            src_mac: director.mac,
            src: IpAddr::V4(director.ipv4),
            mtu: 1500,
        };
        m.lb()
            .unwrap()
            .set_real(ids[i] as u32, real_entry(0, r, &hop, 1, true))
            .unwrap();
    }
    let all: Vec<(Entry, u32)> = reals
        .iter()
        .enumerate()
        .map(|(i, r)| (Entry::Member(i), r.weight))
        .collect();
    m.lb()
        .unwrap()
        .write_table(0, 0, &table(&svc, &all, &ids, None))
        .unwrap();
    for (k, v) in entries(std::slice::from_ref(&svc), &[0], &[0]) {
        m.lb().unwrap().set_service(k, v).unwrap();
    }

    // A veth hands its peer TCP segments whose checksum is left to "hardware"
    // (CHECKSUM_PARTIAL); the kernel fills it in when it forwards them, but a frame the
    // director's XDP program sends on with XDP_TX keeps the partial sum, and the real
    // server drops it (TcpInCsumErrors). A real NIC computes it on the client's way out:
    // the client does it in software here.
    lab.exec(lab.client(), &["ethtool", "-K", "eth0", "tx", "off"])
        .unwrap();
    let url = format!("http://{VIP}:{PORT}/who");
    // Each connection from its own client port, so the server it must reach is known:
    // the entry the userspace reference table names for its 5-tuple.
    let fetch = |ports: std::ops::Range<u16>, reference: &vip_common::MaglevTable| {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for port in ports {
            let who = lab
                .exec(
                    lab.client(),
                    &[
                        "curl",
                        "-sS",
                        "--max-time",
                        "3",
                        "--local-port",
                        &port.to_string(),
                        &url,
                    ],
                )
                .unwrap();
            let flow = LbFlowKey {
                src: v4_in_16(lab.client().ipv4.octets()),
                dst: v4_in_16(VIP.octets()),
                sport: port,
                dport: PORT,
                proto: 6,
                family: FAMILY_IPV4,
                _pad: [0; 2],
            };
            let id = reference.reals[flow.slot(svc.hash_seed, false) as usize];
            assert_eq!(who, servers[id as usize].label, "client port {port}");
            *seen.entry(who).or_insert(0) += 1;
        }
        seen
    };
    wait_until(
        "the servers to listen",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            lab.exec(lab.client(), &["curl", "-sS", "--max-time", "1", &url])
                .map(|_| true)
        },
    )
    .unwrap_or_else(|e| {
        let c = dp.maps().counters().unwrap();
        panic!("{e:#}; counters {c:?}")
    });
    let n = 200;
    let first = table(&svc, &all, &ids, None);
    let seen = fetch(20_000..20_000 + n as u16, &first);
    eprintln!("connections per server (weights 1, 1, 2): {seen:?}");
    // Weights 1:1:2 of 200: 50, 50, 100; each within ±10 % of all connections.
    for (s, want) in servers.iter().zip([50.0, 50.0, 100.0]) {
        let got = *seen.get(&s.label).unwrap_or(&0) as f64;
        assert!(
            (got - want).abs() <= n as f64 * 0.10,
            "{}: {got} of {n}, weight share {want}",
            s.label
        );
    }
    let c = dp.maps().counters().unwrap();
    assert!(
        c.lb_forward_dr >= (n * 3) as u64,
        "every segment of every connection: {c:?}"
    );
    assert_eq!(
        c.lb_no_real + c.lb_drop_unreachable + c.lb_drop_malformed,
        0
    );

    // r4 leaves the table (and is marked down): new connections go to r2 and r3 only.
    let rest = &all[..2];
    let key = svc.key();
    let second = table(&svc, rest, &ids, None);
    dp.maps_mut()
        .lb()
        .unwrap()
        .install_table(&key, &second)
        .unwrap();
    let seen = fetch(30_000..30_060, &second);
    eprintln!("after r4 left: {seen:?}");
    assert!(!seen.contains_key(&servers[2].label), "{seen:?}");
    assert_eq!(seen.values().sum::<usize>(), 60);
    let counters = dp.maps().lb_ref().unwrap().service_counters(0).unwrap();
    assert!(counters.flows >= 260, "{counters:?}");
    drop(dp);
}
