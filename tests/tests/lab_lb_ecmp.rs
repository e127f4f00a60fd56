//! Two directors active at once behind a router's ECMP (issue 26, "past one director"):
//! r1 is the upstream router (FRR bgpd, `maximum-paths 2`, the kernel's L4 multipath
//! hash), the client `bh` sits behind it on 198.51.100.0/24; r2 and r3 are vipd
//! directors, each master of its own VRRP instance holding the service VIP
//! 203.0.113.60/32 as a host route that its bgpd announces (the /32 recipe of
//! `docs/recipes.md`), each forwarding the service (`active = "ecmp"`); r4 and r5 are DR
//! real servers. Checked: the router holds both paths, flows spread over both
//! directors, every flow reaches the server the shared Maglev table names whichever
//! director it crossed, and when r2's link is cut its flows move to r3 once BGP drops
//! the session (BFD on the sessions ends it within a second), without a reset.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
    path::Path,
    time::{Duration, Instant},
};

use vip_common::{FAMILY_IPV4, LbFlowKey, v4_in_16};
use vip_tests::lab::{FrrDaemons, Lab, Node, recipe, wait_until};
use vipd::lb::{
    health::Entry,
    service::{Method, Protocol, Real, Service, table},
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
const ECHO: &str = include_str!("lab_lb/echo.py");
const CLIENT: &str = include_str!("lab_lb/client.py");
const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 60);
const PORT: u16 = 9000;
const SEED: u32 = 26;

/// Director `n` (2 or 3): its own VRID, so each is master; the service forwards on both.
fn director_config(n: u8, reals: &[&Node]) -> String {
    format!(
        "[[vrrp]]\nname = \"svc\"\ninterface = \"eth0\"\nvrid = {}\npriority = 200\n\
         advert_interval = \"100ms\"\nvips = [\"{VIP}/32\"]\nannounce_host_routes = true\n\n\
         [[service]]\nname = \"echo\"\nvip = \"{VIP}\"\nport = {PORT}\nactive = \"ecmp\"\n\
         hash_seed = {SEED}\n\
         check = {{ type = \"tcp\", interval = \"1s\", timeout = \"300ms\" }}\n\
         real = [{{ address = \"{}\" }}, {{ address = \"{}\" }}]\n",
        60 + n,
        reals[0].ipv4,
        reals[1].ipv4
    )
}

/// The router's bgpd: both directors in one AS, two paths kept for ECMP, the /32
/// recipe's one-second keepalives, and BFD on both sessions (`bfd_profile`), so a dead
/// director is dropped after BFD's 300 ms rather than the three-second hold time.
const ROUTER_BGP: &str = "router bgp 65000\n bgp router-id 192.0.2.11\n \
    no bgp ebgp-requires-policy\n timers bgp 1 3\n \
    neighbor 192.0.2.12 remote-as 65001\n neighbor 192.0.2.12 advertisement-interval 0\n \
    neighbor 192.0.2.12 bfd profile lb\n \
    neighbor 192.0.2.13 remote-as 65001\n neighbor 192.0.2.13 advertisement-interval 0\n \
    neighbor 192.0.2.13 bfd profile lb\n \
    address-family ipv4 unicast\n  maximum-paths 2\n exit-address-family\n!\n";

/// bfdd's profile for the BGP sessions, on the router and on both directors (the
/// recipe's, `docs/recipes.md`): 100 ms, three missed.
fn bfd_profile() -> String {
    recipe::block("lb/bfdd.conf").unwrap()
}

/// A director's bgpd: the /32 recipe's, peering with the router.
fn director_bgp(n: u8) -> String {
    let text = recipe::block("route32/bgpd-r1.conf").unwrap();
    let out = text
        .replace(
            "bgp router-id 192.0.2.11",
            &format!("bgp router-id 192.0.2.1{n}"),
        )
        .replace(
            "neighbor 192.0.2.13 remote-as 65003",
            "neighbor 192.0.2.11 remote-as 65000",
        )
        .replace(
            "neighbor 192.0.2.13 advertisement-interval 0",
            "neighbor 192.0.2.11 advertisement-interval 0\n \
             neighbor 192.0.2.11 bfd profile lb",
        );
    assert!(out.contains("remote-as 65000"), "{out}");
    out
}

/// The next hops the router's kernel holds for the VIP.
fn router_paths(lab: &Lab) -> Vec<String> {
    let out = lab
        .exec(
            lab.router(1),
            &["ip", "-4", "route", "show", &VIP.to_string()],
        )
        .unwrap_or_default();
    let mut hops: Vec<String> = out
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_owned())
        .collect();
    hops.sort();
    hops
}

fn client_json(lab: &Lab, script: &Path, args: &[&str]) -> serde_json::Value {
    let mut argv = vec!["/usr/bin/python3", script.to_str().unwrap()];
    argv.extend_from_slice(args);
    let out = lab.exec(lab.node("bh"), &argv).unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn bgp_state(f: &FrrDaemons) -> String {
    f.vtysh("show bgp summary").unwrap_or_default()
}

#[test]
fn two_directors_behind_ecmp_share_flows_and_a_dead_one_moves_its_flows_without_a_reset() {
    let lab = Lab::builder().routers(5).behind(1).build().unwrap();
    let r1 = lab.router(1);
    let (d2, d3) = (lab.router(2), lab.router(3));
    let reals: Vec<&Node> = vec![lab.router(4), lab.router(5)];
    let bh = lab.node("bh");
    // The router: L4 multipath hash; checksums of forwarded segments in software (a
    // veth leaves them to "hardware", and the directors' XDP_TX keeps them partial:
    // see tests/tests/lab_lb.rs), likewise on the client.
    lab.exec(
        r1,
        &["sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1"],
    )
    .unwrap();
    for (n, ifname) in [(r1, "eth0"), (r1, "lan1"), (bh, "eth0")] {
        lab.exec(n, &["ethtool", "-K", ifname, "tx", "off"])
            .unwrap();
    }
    let dir = lab.scratch("lb-scripts").unwrap();
    let echo = dir.join("echo.py");
    let client = dir.join("client.py");
    std::fs::write(&echo, ECHO).unwrap();
    std::fs::write(&client, CLIENT).unwrap();
    let mut _servers = Vec::new();
    for s in &reals {
        for cmd in [
            "sysctl -qw net.ipv4.conf.all.arp_ignore=1",
            "sysctl -qw net.ipv4.conf.all.arp_announce=2",
            &format!("ip addr add {VIP}/32 dev lo"),
            "ip route add 198.51.100.0/24 via 192.0.2.11",
        ] {
            let argv: Vec<&str> = cmd.split_whitespace().collect();
            lab.exec(s, &argv).unwrap();
        }
        _servers.push(
            lab.spawn(
                s,
                &[
                    "/usr/bin/python3",
                    echo.to_str().unwrap(),
                    &s.label,
                    &PORT.to_string(),
                ],
            )
            .unwrap(),
        );
    }

    let bfd = bfd_profile();
    let f1 = lab
        .frr_daemons(r1, &[("zebra", ""), ("bfdd", &bfd), ("bgpd", ROUTER_BGP)])
        .unwrap();
    let _f2 = lab
        .frr_daemons(
            d2,
            &[("zebra", ""), ("bfdd", &bfd), ("bgpd", &director_bgp(2))],
        )
        .unwrap();
    let _f3 = lab
        .frr_daemons(
            d3,
            &[("zebra", ""), ("bfdd", &bfd), ("bgpd", &director_bgp(3))],
        )
        .unwrap();
    let v2 = lab
        .vipd(Path::new(VIPD), d2, &director_config(2, &reals))
        .unwrap();
    let v3 = lab
        .vipd(Path::new(VIPD), d3, &director_config(3, &reals))
        .unwrap();
    for v in [&v2, &v3] {
        v.wait_state("svc", "master", Duration::from_secs(10))
            .unwrap();
        wait_until(
            "both servers in the table",
            Duration::from_secs(10),
            Duration::from_millis(100),
            || {
                let s = v.status()?;
                let servers = s["services"][0]["servers"].as_array().cloned();
                Ok(servers.is_some_and(|r| r.len() == 2 && r.iter().all(|r| r["in_table"] != 0)))
            },
        )
        .unwrap_or_else(|e| panic!("{e:#}\n{}", v.log()));
    }
    wait_until(
        "the router to hold both directors' paths",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || Ok(router_paths(&lab) == ["192.0.2.12", "192.0.2.13"]),
    )
    .unwrap_or_else(|e| panic!("{e:#}\n{}", bgp_state(&f1)));
    wait_until(
        "BFD up on both of the router's BGP sessions",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let peers = f1.json("show bfd peers json")?;
            let up = peers
                .as_array()
                .map_or(0, |p| p.iter().filter(|p| p["status"] == "up").count());
            Ok(up == 2)
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}\n{:?}", f1.vtysh("show bfd peers")));

    // 1. New connections: spread over both directors, each on the server the shared
    // table names (the directors' data-plane ids are 0 and 1, in configuration order).
    let svc = Service {
        vip: IpAddr::V4(VIP),
        port: PORT,
        protocol: Protocol::Tcp,
        slot: 0,
        active_active: true,
        source_hash: false,
        hash_seed: SEED,
        reals: reals
            .iter()
            .map(|s| Real {
                addr: IpAddr::V4(s.ipv4),
                port: PORT,
                weight: 1,
                method: Method::DirectRouting,
                inhibit_on_failure: false,
                check: None,
            })
            .collect(),
        sorry: None,
        quorum: 1,
        hysteresis: 0,
        alpha: false,
    };
    let reference = table(
        &svc,
        &[(Entry::Member(0), 1), (Entry::Member(1), 1)],
        &[0, 1],
        None,
    );
    let n = 200;
    let out = client_json(
        &lab,
        &client,
        &[
            "spread",
            &VIP.to_string(),
            &PORT.to_string(),
            "20000",
            &n.to_string(),
            &bh.ipv4.to_string(),
        ],
    );
    assert_eq!(out["failed"].as_array().unwrap().len(), 0, "{out}");
    let mut per_server: HashMap<String, usize> = HashMap::new();
    for (label, flows) in out["seen"].as_object().unwrap() {
        for f in flows.as_array().unwrap() {
            let sport = f[1].as_u64().unwrap() as u16;
            let key = LbFlowKey {
                src: v4_in_16(bh.ipv4.octets()),
                dst: v4_in_16(VIP.octets()),
                sport,
                dport: PORT,
                proto: 6,
                family: FAMILY_IPV4,
                _pad: [0; 2],
            };
            let id = reference.reals[key.slot(SEED, false) as usize];
            assert_eq!(label, &reals[id as usize].label, "client port {sport}");
            *per_server.entry(label.clone()).or_default() += 1;
        }
    }
    let flows = |v: &vip_tests::lab::Vipd| {
        v.status().unwrap()["services"][0]["flows"]
            .as_u64()
            .unwrap_or(0)
    };
    // Counters are read every second.
    std::thread::sleep(Duration::from_millis(1200));
    let (f2, f3) = (flows(&v2), flows(&v3));
    eprintln!("{n} connections: per server {per_server:?}, flows through r2 {f2}, through r3 {f3}");
    assert_eq!(f2 + f3, n as u64);
    for f in [f2, f3] {
        assert!(
            f >= n as u64 / 4,
            "each director takes a share: {f2} / {f3}"
        );
    }

    // 2. 60 long-lived connections; r2's link cut: BGP drops it, its flows go to r3.
    let before3 = v3.status().unwrap()["xdp"]["lb_flow_midstream"]
        .as_u64()
        .unwrap();
    let before2 = flows(&v2);
    let (held, withdrawn) = std::thread::scope(|s| {
        let h = s.spawn(|| {
            client_json(
                &lab,
                &client,
                &[
                    "hold",
                    &VIP.to_string(),
                    &PORT.to_string(),
                    "60",
                    "12",
                    &bh.ipv4.to_string(),
                ],
            )
        });
        std::thread::sleep(Duration::from_millis(2000));
        // Counters are read every second: r2's share of the 60 is in after 2 s.
        let through2 = flows(&v2) - before2;
        eprintln!("long-lived connections through r2 before the cut: {through2}");
        assert!(through2 > 0, "the router sent some of the 60 through r2");
        // A dead director's port: frames the router still sends to r2's MAC are lost
        // there until BGP drops the path. Without a static entry the bridge would
        // forget r2's MAC with its port and flood them, and r3's XDP program (a veth
        // has no unicast filter; a real NIC has) would forward them at once: the
        // test would not measure the withdrawal.
        let mac = vip_tests::lab::mac_str(&d2.mac);
        vip_tests::lab::netns::run(vip_tests::lab::netns::nsenter(
            lab.bridge_ns(),
            &[
                "bridge", "fdb", "replace", &mac, "dev", &d2.port, "master", "static",
            ],
        ))
        .unwrap();
        let cut = Instant::now();
        lab.set_port(d2, false).unwrap();
        wait_until(
            "the router to drop r2's path",
            Duration::from_secs(8),
            Duration::from_millis(20),
            || Ok(router_paths(&lab) == ["192.0.2.13"]),
        )
        .unwrap_or_else(|e| panic!("{e:#}\n{}", bgp_state(&f1)));
        let withdrawn = cut.elapsed();
        (h.join().unwrap(), withdrawn)
    });
    let held = held.as_array().unwrap();
    assert_eq!(held.len(), 60);
    let resets: u64 = held.iter().map(|c| c["resets"].as_u64().unwrap()).sum();
    let broken: Vec<&serde_json::Value> = held
        .iter()
        .filter(|c| {
            c["resets"] != 0 || !c["errors"].as_array().unwrap().is_empty() || c["changed"] == true
        })
        .collect();
    let worst = held
        .iter()
        .map(|c| c["gap_ms"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let moved = v3.status().unwrap()["xdp"]["lb_flow_midstream"]
        .as_u64()
        .unwrap()
        - before3;
    eprintln!(
        "r2's link cut: the router dropped its path after {withdrawn:?}; {resets} resets, {} \
         broken, longest wait for an answer {worst:.0} ms, {moved} flows arrived on r3 \
         midstream",
        broken.len()
    );
    assert!(broken.is_empty(), "{broken:?}");
    assert_eq!(resets, 0);
    // BFD's 300 ms, not BGP's three-second hold time, decides when r2 is dropped (with
    // room for bgpd and zebra on a loaded machine).
    assert!(
        withdrawn <= Duration::from_millis(1500),
        "the router dropped r2 after {withdrawn:?}: BFD did not end the session\n{:?}",
        f1.vtysh("show bfd peers")
    );
    assert!(moved > 0, "some flows crossed r2 before the cut");
    // The outage of a connection through r2: until the withdrawal, then until TCP's
    // next retransmission, whose interval doubles each time (so at most about the
    // withdrawal time again), plus its first timeout.
    let bound = 2.0 * withdrawn.as_secs_f64() * 1e3 + 1000.0;
    assert!(worst <= bound, "{worst} ms > {bound} ms");
    drop(v3);
    drop(v2);
}
