//! The load balancer's data plane on a real kernel, before the daemon drives it (that is
//! issue 26's second part): r1 is the director, with vipd's programs attached to its
//! eth0 and its maps written through `dataplane::lb` from the same pure code the daemon
//! will use; r2, r3 and r4 are real servers on the same segment with the service VIP on
//! their loopback (`arp_ignore` / `arp_announce`, as for LVS-DR), each serving its name
//! over HTTP; the client opens real TCP connections to the VIP.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
    path::Path,
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

// ---------------------------------------------------------------------------------------
// Two vipd directors driven by their configuration alone (issue 26): r1 (priority 200)
// and r2 (100) run instance "gw" with the service VIP and a `[[service]]` following it;
// r3, r4 and r5 are DR real servers (weights 1, 1, 2) running `lab_lb/echo.py`, which
// answers each line with the server's name; the client (`lab_lb/client.py`) opens
// connections from eight addresses of its own.

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
const ECHO: &str = include_str!("lab_lb/echo.py");
const CLIENT: &str = include_str!("lab_lb/client.py");
const SVC_VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 60);
const SVC_PORT: u16 = 9000;
/// The recipe's check: a TCP connect every second, a failure retried twice 300 ms apart.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
const CHECK_RETRY: u32 = 2;

/// The recipe's configuration (`docs/recipes.md`, "A load-balanced service on a
/// director pair") as written for r1, with the values it names changed for r2.
fn director_config(first: bool) -> String {
    let text = vip_tests::lab::recipe::block("lb/vipd.toml").unwrap();
    if first {
        return text;
    }
    let r2 = text.replace("priority = 200", "priority = 100").replace(
        "allowed_peers = [\"192.0.2.12\"]",
        "allowed_peers = [\"192.0.2.11\"]",
    );
    assert_ne!(r2, text);
    r2
}

fn echo_server(lab: &Lab, node: &Node, script: &std::path::Path) -> vip_tests::lab::Proc {
    // The recipe's commands for a real server (the address is there already after a
    // restart of the server).
    for cmd in vip_tests::lab::recipe::commands("lb/real-server.sh").unwrap() {
        let argv: Vec<&str> = cmd.split_whitespace().collect();
        let out = lab.exec(node, &argv);
        assert!(
            out.is_ok() || cmd.starts_with("ip addr add"),
            "{cmd}: {out:?}"
        );
    }
    lab.spawn(
        node,
        &[
            "/usr/bin/python3",
            script.to_str().unwrap(),
            &node.label,
            &SVC_PORT.to_string(),
        ],
    )
    .unwrap()
}

/// The service's servers as `vipd status --json` shows them.
fn servers(v: &vip_tests::lab::Vipd) -> Vec<serde_json::Value> {
    v.status().unwrap()["services"][0]["servers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn two_vipd_directors_spread_by_weight_drop_a_stopped_server_and_keep_connections_through_a_kill() {
    let lab = Lab::builder().routers(5).client().build().unwrap();
    let (d1, d2) = (lab.router(1), lab.router(2));
    let reals: Vec<&Node> = (3..=5).map(|i| lab.router(i)).collect();
    // The recipe's addresses are the lab's.
    let recipe = director_config(true);
    for n in [d1, d2].iter().chain(&reals) {
        assert!(
            n.label == "r1" || recipe.contains(&n.ipv4.to_string()),
            "{}",
            n.ipv4
        );
    }
    assert!(
        recipe.contains(&format!("vip = \"{SVC_VIP}\""))
            && recipe.contains(&format!("port = {SVC_PORT}"))
    );
    let dir = lb_scripts(&lab);
    let (echo, client_py) = (dir.join("echo.py"), dir.join("client.py"));
    let mut procs: Vec<vip_tests::lab::Proc> =
        reals.iter().map(|r| echo_server(&lab, r, &echo)).collect();

    // The client: eight addresses, and checksums computed in software (see above).
    let client = lab.client();
    let srcs: Vec<String> = (150..158).map(|h| format!("192.0.2.{h}")).collect();
    for s in &srcs {
        lab.exec(
            client,
            &["ip", "addr", "add", &format!("{s}/24"), "dev", "eth0"],
        )
        .unwrap();
    }
    lab.exec(client, &["ethtool", "-K", "eth0", "tx", "off"])
        .unwrap();

    let v1 = lab
        .vipd(Path::new(VIPD), d1, &director_config(true))
        .unwrap();
    let v2 = lab
        .vipd(Path::new(VIPD), d2, &director_config(false))
        .unwrap();
    v1.wait_state("gw", "master", Duration::from_secs(10))
        .unwrap();
    v2.wait_state("gw", "backup", Duration::from_secs(10))
        .unwrap();
    for v in [&v1, &v2] {
        wait_until(
            "every server up and resolved",
            Duration::from_secs(10),
            Duration::from_millis(100),
            || {
                let s = servers(v);
                Ok(s.len() == 3
                    && s.iter()
                        .all(|r| r["up"] == true && r["resolved"] == true && r["in_table"] != 0))
            },
        )
        .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", v.status_text().unwrap(), v.log()));
    }
    // A node with services pins the load balancer's maps; its programs are loaded.
    assert!(v1.pin.join("LB_FLOWS").exists());

    let run_client = |args: &[&str]| -> serde_json::Value {
        let mut argv = vec!["/usr/bin/python3", client_py.to_str().unwrap()];
        argv.extend_from_slice(args);
        let out = lab.exec(client, &argv).unwrap();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let vip = SVC_VIP.to_string();
    let port = SVC_PORT.to_string();
    let spread_args = |first: u16, n: usize| -> (HashMap<String, usize>, usize) {
        let mut a = vec![
            "spread".to_owned(),
            vip.clone(),
            port.clone(),
            first.to_string(),
            n.to_string(),
        ];
        a.extend(srcs.iter().cloned());
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = run_client(&a);
        let seen = out["seen"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_array().unwrap().len()))
            .collect();
        (seen, out["failed"].as_array().unwrap().len())
    };

    // 1. Spread by weight: 1:1:2 of 400 connections, each within ±10 % of all.
    let n = 400;
    let (seen, failed) = spread_args(20_000, n);
    eprintln!("connections per server (weights 1, 1, 2): {seen:?}, failed {failed}");
    assert_eq!(failed, 0);
    for (r, want) in reals.iter().zip([0.25, 0.25, 0.5]) {
        let got = *seen.get(&r.label).unwrap_or(&0) as f64;
        assert!(
            (got - want * n as f64).abs() <= 0.10 * n as f64,
            "{}: {got} of {n}, weight share {want}",
            r.label
        );
    }
    // The service's counters, as status shows them (read every second).
    wait_until(
        "the service's counters",
        Duration::from_secs(3),
        Duration::from_millis(100),
        || Ok(v1.status()?["services"][0]["flows"].as_u64() >= Some(n as u64)),
    )
    .unwrap();

    // 2. r5 stopped: both directors take it out within interval × retries (its first
    // failed check comes within an interval, then `retry` more 300 ms apart).
    let stopped = std::time::Instant::now();
    procs.pop().unwrap().kill().unwrap();
    let bound = CHECK_INTERVAL * CHECK_RETRY + Duration::from_millis(500);
    for v in [&v1, &v2] {
        wait_until(
            "r5 out of the table",
            Duration::from_secs(10),
            Duration::from_millis(20),
            || {
                let s = servers(v);
                Ok(s[2]["up"] == false && s[2]["in_table"] == 0)
            },
        )
        .unwrap();
    }
    let took = stopped.elapsed();
    eprintln!("r5 left both tables {took:?} after it stopped (bound {bound:?})");
    assert!(took <= bound, "{took:?} > {bound:?}");
    let (seen, failed) = spread_args(30_000, 100);
    eprintln!("after r5 stopped: {seen:?}, failed {failed}");
    assert_eq!(failed, 0, "new connections go to the servers left");
    assert!(!seen.contains_key(&reals[2].label), "{seen:?}");
    // Back: it returns on its first good check.
    procs.push(echo_server(&lab, reals[2], &echo));
    for v in [&v1, &v2] {
        wait_until(
            "r5 back",
            Duration::from_secs(10),
            Duration::from_millis(50),
            || Ok(servers(v)[2]["in_table"] != 0),
        )
        .unwrap();
    }

    // 3. kill -9 of the master director with 100 long-lived connections open: r2 takes
    // over, and every connection keeps working, on the same server, without a reset.
    let mdi = v2.instance("gw").unwrap()["master_down_interval_ms"]
        .as_f64()
        .unwrap();
    let killer = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let mut a = vec!["hold", &vip, &port, "100", "5"];
            a.extend(srcs.iter().map(String::as_str));
            run_client(&a)
        });
        std::thread::sleep(Duration::from_millis(1500));
        v1.kill().unwrap();
        let took = v2
            .wait_state("gw", "master", Duration::from_secs(5))
            .unwrap();
        (h.join().unwrap(), took)
    });
    let (held, _) = killer;
    let held = held.as_array().unwrap();
    assert_eq!(held.len(), 100);
    let mut per: HashMap<String, usize> = HashMap::new();
    for c in held {
        *per.entry(c["server"].as_str().unwrap_or("none").to_owned())
            .or_default() += 1;
    }
    eprintln!("long-lived connections per server: {per:?}");
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
    let mut gaps: Vec<f64> = held.iter().map(|c| c["gap_ms"].as_f64().unwrap()).collect();
    gaps.sort_by(f64::total_cmp);
    eprintln!(
        "kill -9 of the master: {resets} resets, {} broken, longest wait for an answer per \
         connection: median {:.0} ms, worst {worst:.0} ms (Master_Down_Interval {mdi:.0} ms)",
        broken.len(),
        gaps[gaps.len() / 2]
    );
    assert!(broken.is_empty(), "{broken:?}");
    assert_eq!(resets, 0);
    // Each connection waited at most the takeover (Master_Down_Interval) plus TCP's
    // first retransmission timeout (200 ms on Linux) for the segment the dead master
    // took with it.
    assert!(worst <= mdi + 250.0, "{worst} ms > {mdi} ms + 250 ms");
    // Spread over all three servers, each still answering on the one it began with.
    assert_eq!(per.len(), 3, "{per:?}");
    wait_until(
        "the backup's counters",
        Duration::from_secs(3),
        Duration::from_millis(100),
        || Ok(v2.status()?["services"][0]["packets"].as_u64() > Some(0)),
    )
    .unwrap();
    drop(v2);
}

/// One director (r1) and two DR servers (r2, r3) from the recipe's service, its real
/// servers reduced to those two; the scripts written to the lab's scratch directory.
fn small_lab(lab: &Lab) -> (std::path::PathBuf, Vec<vip_tests::lab::Proc>, String) {
    let dir = lb_scripts(lab);
    let procs = [2, 3]
        .iter()
        .map(|&i| echo_server(lab, lab.router(i), &dir.join("echo.py")))
        .collect();
    lab.exec(lab.client(), &["ethtool", "-K", "eth0", "tx", "off"])
        .unwrap();
    let config = director_config(true)
        .replace(
            "real = [{ address = \"192.0.2.13\", weight = 1 }, { address = \"192.0.2.14\", weight = 1 }, { address = \"192.0.2.15\", weight = 2 }]",
            "real = [{ address = \"192.0.2.12\" }, { address = \"192.0.2.13\" }]",
        )
        .replace("allowed_peers = [\"192.0.2.12\"]", "allowed_peers = [\"192.0.2.14\"]");
    assert!(config.contains("192.0.2.12\" }"), "{config}");
    (dir, procs, config)
}

/// The lab's scratch directory holding the real servers' and the client's scripts
/// (`echo.py`, `client.py`).
fn lb_scripts(lab: &Lab) -> std::path::PathBuf {
    let dir = lab.scratch("lb-scripts").unwrap();
    std::fs::write(dir.join("echo.py"), ECHO).unwrap();
    std::fs::write(dir.join("client.py"), CLIENT).unwrap();
    dir
}

fn client_json(lab: &Lab, dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let script = dir.join("client.py");
    let mut argv = vec!["/usr/bin/python3", script.to_str().unwrap()];
    argv.extend_from_slice(args);
    let out = lab.exec(lab.client(), &argv).unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Waits up to `timeout` until `v` shows `services` services and `ok` holds for every
/// server of each (as `vipd status --json` shows them).
fn wait_every_server(
    v: &vip_tests::lab::Vipd,
    services: usize,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) {
    wait_until(what, timeout, Duration::from_millis(100), || {
        let st = v.status()?;
        let shown = st["services"].as_array().cloned().unwrap_or_default();
        Ok(shown.len() == services
            && shown
                .iter()
                .all(|s| s["servers"].as_array().is_some_and(|r| r.iter().all(&ok))))
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", v.status_text().unwrap(), v.log()));
}

fn wait_servers_up(v: &vip_tests::lab::Vipd, n: usize) {
    wait_until(
        "every server up and resolved",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let s = servers(v);
            Ok(s.len() == n && s.iter().all(|r| r["in_table"] != 0))
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", v.status_text().unwrap(), v.log()));
}

/// xdp-filter held r1's hook first and denies port 7777; r1 listens on 7777 itself. A
/// packet to the VIP's port 7777 enters the load balancer (the VIP is a service's) and
/// is no service's: the load balancer passes it, through the chain, to xdp-filter,
/// which drops it, so the listener on r1 is never reached. The service's own port is
/// forwarded by the load balancer of the chaining copy (the kind without frags support).
#[test]
fn what_the_load_balancer_passes_goes_through_the_chained_filter() {
    let lab = Lab::builder().routers(3).client().build().unwrap();
    let r1 = lab.router(1);
    let (dir, _procs, config) = small_lab(&lab);
    let filter = lab.xdp_filter(r1).unwrap();
    filter.deny_port(7777).unwrap();
    let _local = lab
        .spawn(
            r1,
            &[
                "/usr/bin/python3",
                dir.join("echo.py").to_str().unwrap(),
                "r1-kernel",
                "7777",
            ],
        )
        .unwrap();
    let v1 = lab.vipd(Path::new(VIPD), r1, &config).unwrap();
    v1.wait_state("gw", "master", Duration::from_secs(10))
        .unwrap();
    wait_servers_up(&v1, 2);
    let (_, hook) = vip_tests::lab::xdp_filter::hook_program(&r1.ns, &r1.ifname)
        .unwrap()
        .unwrap();
    assert_eq!(hook, "vipd_xdp_nofrag");
    assert!(
        v1.pin.join("lbprogs_eth0").exists(),
        "the copy's load balancer slot is pinned"
    );

    let vip = SVC_VIP.to_string();
    let port = SVC_PORT.to_string();
    let out = client_json(
        &lab,
        &dir,
        &["spread", &vip, &port, "21000", "40", "192.0.2.100"],
    );
    eprintln!("through the chaining copy: {out}");
    assert_eq!(out["failed"].as_array().unwrap().len(), 0, "{out}");
    assert_eq!(out["seen"].as_object().unwrap().len(), 2, "{out}");
    // Port 7777 of the VIP: passed by the load balancer to xdp-filter, which drops it.
    let out = client_json(
        &lab,
        &dir,
        &["spread", &vip, "7777", "22000", "2", "192.0.2.100"],
    );
    eprintln!("port 7777: {out}");
    assert_eq!(out["failed"].as_array().unwrap().len(), 2, "{out}");
    let xdp = &v1.status().unwrap()["xdp"];
    assert!(xdp["lb_forward_dr"].as_u64().unwrap() >= 120, "{xdp}");
    // And the filter's verdict was the only one that stopped it: without the filter's
    // rule, the same port reaches r1's listener through the same path.
    filter.run(&["port", "--remove", "7777"]).unwrap();
    let out = client_json(
        &lab,
        &dir,
        &["spread", &vip, "7777", "23000", "2", "192.0.2.100"],
    );
    eprintln!("port 7777 allowed: {out}");
    assert_eq!(
        out["seen"]["r1-kernel"].as_array().map(Vec::len),
        Some(2),
        "{out}"
    );
    drop(v1);
    drop(filter);
}

/// MTU 9000 on every link: vipd attaches its frags-aware programs natively, and 8,000-
/// byte segments (several buffers in XDP) are forwarded to the servers by `vipd_lb`.
#[test]
fn a_service_forwards_jumbo_segments_at_mtu_9000() {
    let lab = Lab::builder().routers(3).client().build().unwrap();
    let mtu = "9000";
    for n in lab.nodes() {
        lab.exec(n, &["ip", "link", "set", &n.ifname, "mtu", mtu])
            .unwrap();
    }
    let br = lab.bridge_ns();
    for n in lab.nodes() {
        vip_tests::lab::netns::ip(br, &["link", "set", &n.port, "mtu", mtu]).unwrap();
    }
    vip_tests::lab::netns::ip(br, &["link", "set", vip_tests::lab::BRIDGE, "mtu", mtu]).unwrap();
    let r1 = lab.router(1);
    let (dir, _procs, config) = small_lab(&lab);
    let v1 = lab.vipd(Path::new(VIPD), r1, &config).unwrap();
    v1.wait_state("gw", "master", Duration::from_secs(10))
        .unwrap();
    wait_servers_up(&v1, 2);
    let (_, hook) = vip_tests::lab::xdp_filter::hook_program(&r1.ns, &r1.ifname)
        .unwrap()
        .unwrap();
    assert_eq!(hook, "vipd_xdp");
    assert_eq!(
        vip_tests::lab::xdp_filter::hook_mode(&r1.ns, &r1.ifname)
            .unwrap()
            .as_deref(),
        Some("xdp")
    );
    let vip = SVC_VIP.to_string();
    let port = SVC_PORT.to_string();
    let out = client_json(&lab, &dir, &["big", &vip, &port, "8000", "20"]);
    eprintln!("8,000-byte lines at MTU 9000: {out}");
    assert_eq!(out["answers"], 20, "{out}");
    let xdp = &v1.status().unwrap()["xdp"];
    assert!(xdp["lb_forward_dr"].as_u64().unwrap() >= 20, "{xdp}");
    assert_eq!(xdp["lb_drop_too_big"], 0, "{xdp}");
}

const SVC_VIP6: &str = "2001:db8::60";
/// UDP on the same port as the TCP service (another service: the protocol is part of
/// its key), since direct routing keeps the port.
const UDP_PORT: u16 = SVC_PORT;

/// The same director and servers with two more services: UDP on the VIP's port 9000
/// (checked over TCP), and TCP over IPv6 on a VIP of a second instance, `gw6` (the VIP
/// deprecated, `preferred_lft = 0`, so the director's own checks do not come from it:
/// the servers hold it too and would answer themselves).
/// Each flow reaches the server the table names, both servers get flows, and the next
/// hops of IPv6 servers are resolved from the neighbour table like IPv4's.
#[test]
fn a_udp_service_and_an_ipv6_service_spread_over_both_servers() {
    let lab = Lab::builder().routers(3).client().build().unwrap();
    let r1 = lab.router(1);
    let (dir, _procs, config) = small_lab(&lab);
    let (s2, s3) = (lab.router(2), lab.router(3));
    for s in [s2, s3] {
        lab.exec(
            s,
            &["ip", "addr", "add", &format!("{SVC_VIP6}/128"), "dev", "lo"],
        )
        .unwrap();
    }
    let config = format!(
        "{config}\n[[vrrp]]\nname = \"gw6\"\ninterface = \"eth0\"\nvrid = 52\npriority = 200\n\
         advert_interval = \"100ms\"\n\
         vips = [{{ address = \"{SVC_VIP6}/128\", preferred_lft = 0 }}]\n\n\
         [[service]]\nname = \"udp\"\nvip = \"{SVC_VIP}\"\nport = {UDP_PORT}\nprotocol = \"udp\"\n\
         follow = \"gw\"\ncheck = {{ type = \"tcp\", port = {SVC_PORT}, interval = \"1s\" }}\n\
         real = [{{ address = \"{}\" }}, {{ address = \"{}\" }}]\n\n\
         [[service]]\nname = \"web6\"\nvip = \"{SVC_VIP6}\"\nport = {SVC_PORT}\nfollow = \"gw6\"\n\
         check = {{ type = \"tcp\", interval = \"1s\" }}\n\
         real = [{{ address = \"{}\" }}, {{ address = \"{}\" }}]\n",
        s2.ipv4, s3.ipv4, s2.ipv6, s3.ipv6
    );
    let v1 = lab.vipd(Path::new(VIPD), r1, &config).unwrap();
    v1.wait_state("gw", "master", Duration::from_secs(10))
        .unwrap();
    v1.wait_state("gw6", "master", Duration::from_secs(10))
        .unwrap();
    wait_every_server(
        &v1,
        3,
        "every service's servers up and resolved",
        Duration::from_secs(10),
        |r| r["in_table"] != 0,
    );

    let client = lab.client();
    let out = client_json(
        &lab,
        &dir,
        &[
            "udp",
            &SVC_VIP.to_string(),
            &UDP_PORT.to_string(),
            "24000",
            "60",
            &client.ipv4.to_string(),
        ],
    );
    eprintln!("UDP: {out}");
    assert_eq!(out["failed"].as_array().unwrap().len(), 0, "{out}");
    let seen = out["seen"].as_object().unwrap();
    assert_eq!(seen.len(), 2, "{out}");
    for (label, flows) in seen {
        let n = flows.as_array().unwrap().len();
        assert!(
            (20..=40).contains(&n),
            "{label}: {n} of 60 datagrams' flows, {out}"
        );
    }

    let out = client_json(
        &lab,
        &dir,
        &[
            "spread",
            SVC_VIP6,
            &SVC_PORT.to_string(),
            "25000",
            "60",
            &client.ipv6.to_string(),
        ],
    );
    eprintln!("IPv6: {out}");
    assert_eq!(out["failed"].as_array().unwrap().len(), 0, "{out}");
    let seen = out["seen"].as_object().unwrap();
    assert_eq!(seen.len(), 2, "{out}");
    for (label, flows) in seen {
        let n = flows.as_array().unwrap().len();
        assert!(
            (20..=40).contains(&n),
            "{label}: {n} of 60 connections, {out}"
        );
    }
    let st = v1.status().unwrap();
    eprintln!("{}", v1.status_text().unwrap());
    assert_eq!(st["xdp"]["lb_drop_unreachable"], 0);
}

/// A reload (SIGHUP) that adds a server to a running service: the new server gets new
/// connections at once, and the connections open on the old one stay there, unbroken
/// (its data-plane id, and so its pinned flows, are kept).
#[test]
fn a_reload_adds_a_server_and_established_connections_stay_on_theirs() {
    let lab = Lab::builder().routers(3).client().build().unwrap();
    let r1 = lab.router(1);
    let (dir, _procs, both) = small_lab(&lab);
    let one = both.replace(
        "real = [{ address = \"192.0.2.12\" }, { address = \"192.0.2.13\" }]",
        "real = [{ address = \"192.0.2.12\" }]",
    );
    assert_ne!(one, both);
    let v1 = lab.vipd(Path::new(VIPD), r1, &one).unwrap();
    v1.wait_state("gw", "master", Duration::from_secs(10))
        .unwrap();
    wait_servers_up(&v1, 1);
    let vip = SVC_VIP.to_string();
    let port = SVC_PORT.to_string();
    let client_ip = lab.client().ipv4.to_string();
    let held = std::thread::scope(|s| {
        let h = s.spawn(|| client_json(&lab, &dir, &["hold", &vip, &port, "30", "4", &client_ip]));
        std::thread::sleep(Duration::from_millis(1000));
        v1.rewrite(&both).unwrap();
        v1.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
        wait_servers_up(&v1, 2);
        h.join().unwrap()
    });
    let held = held.as_array().unwrap();
    assert_eq!(held.len(), 30);
    for c in held {
        assert_eq!(c["resets"], 0, "{c}");
        assert!(c["errors"].as_array().unwrap().is_empty(), "{c}");
        assert_eq!(c["changed"], false, "{c}");
        assert_eq!(c["server"], "r2", "{c}");
    }
    let out = client_json(
        &lab,
        &dir,
        &["spread", &vip, &port, "26000", "40", &client_ip],
    );
    eprintln!("after the reload: {out}");
    assert_eq!(out["failed"].as_array().unwrap().len(), 0, "{out}");
    assert_eq!(out["seen"].as_object().unwrap().len(), 2, "{out}");
    assert!(v1.log().contains("services reconfigured"), "{}", v1.log());
}

/// `kill -9` of the master director while the backup gets a server more (its reload at
/// the same moment): the 100 long-lived connections the master carried reach the backup
/// with no flow remembered there and a table that now includes the new server. Each
/// must still reach the server it began on (the backup's previous table,
/// `vip_common::LB_F_PREVIOUS`), with zero resets; new connections afterwards spread over
/// all three servers, the new one included.
#[test]
fn a_killed_master_and_a_server_added_at_the_same_moment_keep_every_connection() {
    let lab = Lab::builder().routers(5).client().build().unwrap();
    let (d1, d2) = (lab.router(1), lab.router(2));
    let reals: Vec<&Node> = (3..=5).map(|i| lab.router(i)).collect();
    let dir = lb_scripts(&lab);
    let echo = dir.join("echo.py");
    let _procs: Vec<vip_tests::lab::Proc> =
        reals.iter().map(|r| echo_server(&lab, r, &echo)).collect();
    let client = lab.client();
    let srcs: Vec<String> = (150..158).map(|h| format!("192.0.2.{h}")).collect();
    for s in &srcs {
        lab.exec(
            client,
            &["ip", "addr", "add", &format!("{s}/24"), "dev", "eth0"],
        )
        .unwrap();
    }
    lab.exec(client, &["ethtool", "-K", "eth0", "tx", "off"])
        .unwrap();
    let three = "real = [{ address = \"192.0.2.13\", weight = 1 }, { address = \"192.0.2.14\", weight = 1 }, { address = \"192.0.2.15\", weight = 2 }]";
    let two = "real = [{ address = \"192.0.2.13\", weight = 1 }, { address = \"192.0.2.14\", weight = 1 }]";
    let c1 = director_config(true).replace(three, two);
    let c2_three = director_config(false);
    let c2 = c2_three.replace(three, two);
    assert!(c1 != director_config(true) && c2 != c2_three);
    let v1 = lab.vipd(Path::new(VIPD), d1, &c1).unwrap();
    let v2 = lab.vipd(Path::new(VIPD), d2, &c2).unwrap();
    v1.wait_state("gw", "master", Duration::from_secs(10))
        .unwrap();
    v2.wait_state("gw", "backup", Duration::from_secs(10))
        .unwrap();
    wait_servers_up(&v1, 2);
    wait_servers_up(&v2, 2);
    // r5's neighbour entry on r2 exists before the reload, so r5 enters r2's table at
    // once (an unresolved server would wait out of it, leaving the table unchanged
    // while the connections arrive).
    lab.exec(
        d2,
        &["ping", "-c", "1", "-W", "1", &reals[2].ipv4.to_string()],
    )
    .unwrap();

    let vip = SVC_VIP.to_string();
    let port = SVC_PORT.to_string();
    let mdi = v2.instance("gw").unwrap()["master_down_interval_ms"]
        .as_f64()
        .unwrap();
    let held = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let mut a = vec!["hold", &vip, &port, "100", "6"];
            a.extend(srcs.iter().map(String::as_str));
            client_json(&lab, &dir, &a)
        });
        std::thread::sleep(Duration::from_millis(1500));
        // The same moment: the backup's reload, then the master's death.
        v2.rewrite(&c2_three).unwrap();
        let reloaded = std::time::Instant::now();
        v2.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
        v1.kill().unwrap();
        v2.wait_state("gw", "master", Duration::from_secs(5))
            .unwrap();
        (h.join().unwrap(), reloaded)
    });
    let (held, reloaded) = held;
    let held = held.as_array().unwrap();
    assert_eq!(held.len(), 100);
    let mut per: HashMap<String, usize> = HashMap::new();
    for c in held {
        *per.entry(c["server"].as_str().unwrap_or("none").to_owned())
            .or_default() += 1;
    }
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
    let xdp = v2.status().unwrap()["xdp"].clone();
    eprintln!(
        "kill -9 of the master and r5 added on the backup: {resets} resets, {} broken, \
         per server {per:?}, longest wait {worst:.0} ms (Master_Down_Interval {mdi:.0} ms), \
         backup's lb_flow_midstream {} lb_flow_previous {}",
        broken.len(),
        xdp["lb_flow_midstream"],
        xdp["lb_flow_previous"]
    );
    assert!(broken.is_empty(), "{broken:?}");
    assert_eq!(resets, 0);
    assert!(worst <= mdi + 250.0, "{worst} ms > {mdi} ms + 250 ms");
    // Every connection began on r3 or r4, and the backup pinned some through the
    // previous table (the others the new table still gives the same server).
    assert!(!per.contains_key("r5"), "{per:?}");
    assert!(xdp["lb_flow_previous"].as_u64().unwrap() > 0, "{xdp}");
    // The new server takes new connections.
    wait_servers_up(&v2, 3);
    let mut a = vec!["spread", vip.as_str(), port.as_str(), "31000", "120"];
    a.extend(srcs.iter().map(String::as_str));
    let out = client_json(&lab, &dir, &a);
    eprintln!("after the takeover: {out}");
    assert_eq!(out["failed"].as_array().unwrap().len(), 0, "{out}");
    assert_eq!(out["seen"].as_object().unwrap().len(), 3, "{out}");
    // The previous table is followed for 15 s after the reload, then the mark goes
    // (the balancer checks every second).
    let maps = vipd::dataplane::Maps::open_pinned(&v2.pin).unwrap();
    let key = vip_common::LbServiceKey::new(FAMILY_IPV4, v4_in_16(SVC_VIP.octets()), 6, SVC_PORT);
    let marked =
        || maps.lb_ref().unwrap().service(&key).unwrap().flags & vip_common::LB_F_PREVIOUS != 0;
    wait_until(
        "the previous table's mark to go",
        Duration::from_secs(25),
        Duration::from_millis(50),
        || Ok(!marked()),
    )
    .unwrap();
    let cleared = reloaded.elapsed();
    eprintln!("the previous table's mark went {cleared:?} after the reload");
    assert!(
        (Duration::from_secs(15)..=Duration::from_millis(17_500)).contains(&cleared),
        "{cleared:?}"
    );
    drop(v2);
}

/// The first `[[service]]` of a vipd started without any cannot come by reload (the load
/// balancer is loaded at start-up only): the reload, and its dry run, are refused with
/// the reason and the way out (a restart), and nothing changes: the instance stays
/// master without a transition, no service runs, no load balancer map is pinned.
#[test]
fn a_reload_that_brings_the_first_service_is_refused_and_names_the_restart() {
    let lab = Lab::builder().routers(3).client().build().unwrap();
    let r1 = lab.router(1);
    let (_dir, _procs, with) = small_lab(&lab);
    let without = &with[..with.find("[[service]]").unwrap()];
    let v1 = lab.vipd(Path::new(VIPD), r1, without).unwrap();
    v1.wait_state("gw", "master", Duration::from_secs(10))
        .unwrap();
    let before = v1.instance("gw").unwrap()["transitions"].clone();
    assert!(!v1.pin.join("LB_FLOWS").exists());
    v1.rewrite(&with).unwrap();
    for dry_run in [true, false] {
        let answer = v1.reload_json(dry_run).unwrap();
        eprintln!("reload (dry run {dry_run}): {answer}");
        assert_eq!(answer["ok"], false, "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains("[[service]] \"echo\"") && message.contains("restart vipd"),
            "{message}"
        );
    }
    assert!(v1.log().contains("reload rejected"), "{}", v1.log());
    let st = v1.status().unwrap();
    assert_eq!(st["services"].as_array().map_or(0, Vec::len), 0, "{st}");
    let gw = v1.instance("gw").unwrap();
    assert_eq!(gw["state"], "master");
    assert_eq!(gw["transitions"], before);
    assert!(!v1.pin.join("LB_FLOWS").exists());
}

/// The tunnel method end to end: r1 directs, r2 and r3 are servers on its segment and
/// `bh` is a server behind the router r4, reached only through it. Each packet leaves r1
/// inside an outer IPv4 (IPv6) header addressed to its server, crosses r4 for `bh`, and
/// the server takes the outer header off (an XDP program standing in for the `ipip` /
/// `ip6tnl` device this kernel lacks, `tests/src/lab/decap.rs`) and answers the client
/// from the VIP directly. Every connection is answered, each server gets its share, and
/// each server's count of packets that came to it tunnelled covers what it served.
#[test]
fn the_tunnel_method_reaches_servers_on_the_segment_and_behind_a_router_over_ipv4_and_ipv6() {
    let lab = Lab::builder()
        .routers(4)
        .behind(4)
        .client()
        .build()
        .unwrap();
    let (r1, r4) = (lab.router(1), lab.router(4));
    let (s2, s3, bh) = (lab.router(2), lab.router(3), lab.node("bh"));
    let dir = lb_scripts(&lab);
    // Checksums in software where segments are made or forwarded (see the ECMP lab).
    for (n, ifname) in [
        (lab.client(), "eth0"),
        (r4, "eth0"),
        (r4, "lan1"),
        (bh, "eth0"),
    ] {
        lab.exec(n, &["ethtool", "-K", ifname, "tx", "off"])
            .unwrap();
    }
    // bh answers from the VIP through r4: a router checking reverse paths strictly
    // would drop those replies (the VIP's own network is on r4's other side).
    lab.exec(r4, &["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"])
        .unwrap();
    lab.exec(r4, &["sysctl", "-qw", "net.ipv4.conf.lan1.rp_filter=0"])
        .unwrap();
    lab.exec(
        r1,
        &[
            "ip",
            "route",
            "add",
            "198.51.100.0/24",
            "via",
            &r4.ipv4.to_string(),
        ],
    )
    .unwrap();
    let mut _procs = Vec::new();
    let mut decaps = Vec::new();
    for s in [s2, s3, bh] {
        _procs.push(echo_server(&lab, s, &dir.join("echo.py")));
        decaps.push((s.label.clone(), lab.decap(s, "eth0").unwrap()));
    }
    for s in [s2, s3] {
        lab.exec(
            s,
            &["ip", "addr", "add", &format!("{SVC_VIP6}/128"), "dev", "lo"],
        )
        .unwrap();
    }
    let config = format!(
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\npriority = 200\n\
         advert_interval = \"100ms\"\nvips = [\"{SVC_VIP}/32\"]\n\n\
         [[vrrp]]\nname = \"gw6\"\ninterface = \"eth0\"\nvrid = 52\npriority = 200\n\
         advert_interval = \"100ms\"\n\
         vips = [{{ address = \"{SVC_VIP6}/128\", preferred_lft = 0 }}]\n\n\
         [[service]]\nname = \"tun\"\nvip = \"{SVC_VIP}\"\nport = {SVC_PORT}\nfollow = \"gw\"\n\
         method = \"tunnel\"\ncheck = {{ type = \"tcp\", interval = \"1s\" }}\n\
         real = [{{ address = \"{}\" }}, {{ address = \"{}\" }}, {{ address = \"{}\" }}]\n\n\
         [[service]]\nname = \"tun6\"\nvip = \"{SVC_VIP6}\"\nport = {SVC_PORT}\nfollow = \"gw6\"\n\
         method = \"tunnel\"\ncheck = {{ type = \"tcp\", interval = \"1s\" }}\n\
         real = [{{ address = \"{}\" }}, {{ address = \"{}\" }}]\n",
        s2.ipv4, s3.ipv4, bh.ipv4, s2.ipv6, s3.ipv6
    );
    let v1 = lab.vipd(Path::new(VIPD), r1, &config).unwrap();
    for group in ["gw", "gw6"] {
        v1.wait_state(group, "master", Duration::from_secs(10))
            .unwrap();
    }
    wait_every_server(
        &v1,
        2,
        "every service's servers up and resolved",
        Duration::from_secs(10),
        |r| r["in_table"] != 0,
    );
    let before: HashMap<String, vip_tests::lab::DecapSeen> = decaps
        .iter()
        .map(|(l, d)| (l.clone(), d.seen().unwrap()))
        .collect();

    let client = lab.client();
    let mut served: HashMap<String, (u64, u64)> = HashMap::new();
    for (vip, src, servers, first) in [
        (SVC_VIP.to_string(), client.ipv4.to_string(), 3, "26000"),
        (SVC_VIP6.to_string(), client.ipv6.to_string(), 2, "27000"),
    ] {
        let out = client_json(
            &lab,
            &dir,
            &["spread", &vip, &SVC_PORT.to_string(), first, "60", &src],
        );
        eprintln!("{vip}: {out}");
        assert_eq!(out["failed"].as_array().unwrap().len(), 0, "{out}");
        let seen = out["seen"].as_object().unwrap();
        assert_eq!(seen.len(), servers, "{out}");
        for (label, flows) in seen {
            let n = flows.as_array().unwrap().len() as u64;
            assert!(
                n >= 60 / servers as u64 / 2,
                "{label}: {n} of 60 connections, {out}"
            );
            let e = served.entry(label.clone()).or_default();
            if vip.contains(':') {
                e.1 += n;
            } else {
                e.0 += n;
            }
        }
    }
    for (label, d) in &decaps {
        let (was, now) = (before[label], d.seen().unwrap());
        let (v4, v6) = (now.v4 - was.v4, now.v6 - was.v6);
        let (c4, c6) = served[label];
        eprintln!("{label}: served {c4} IPv4 and {c6} IPv6 connections; decapsulated {v4} / {v6}");
        // A connection's SYN, its ACK, its line and its FIN at least reach the server
        // through the director.
        assert!(
            v4 >= 3 * c4,
            "{label}: {v4} IPv4-in-IPv4 packets for {c4} connections"
        );
        assert!(
            v6 >= 3 * c6,
            "{label}: {v6} IPv6-in-IPv6 packets for {c6} connections"
        );
    }
    // The balancer publishes its counters once a second.
    wait_every_server(
        &v1,
        2,
        "every server's forwarded packets counted",
        Duration::from_secs(5),
        |r| r["packets"].as_u64() > Some(0),
    );
    let st = v1.status().unwrap();
    eprintln!("{}", v1.status_text().unwrap());
    // What the director forwarded to each server is what that server took out of the
    // tunnel: nothing lost or left encapsulated on the way, through r4 or not.
    let label_of: HashMap<String, &str> = [s2, s3, bh]
        .iter()
        .flat_map(|n| {
            [
                (n.ipv4.to_string(), &*n.label),
                (n.ipv6.to_string(), &*n.label),
            ]
        })
        .collect();
    for (name, servers) in [("tun", 3), ("tun6", 2)] {
        let svc = st["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap();
        let reals = svc["servers"].as_array().unwrap();
        assert_eq!(reals.len(), servers);
        for r in reals {
            let label = label_of[r["address"].as_str().unwrap()];
            let (was, now) = (
                before[label],
                decaps
                    .iter()
                    .find(|(l, _)| l == label)
                    .unwrap()
                    .1
                    .seen()
                    .unwrap(),
            );
            let took = if name == "tun" {
                now.v4 - was.v4
            } else {
                now.v6 - was.v6
            };
            assert_eq!(
                r["packets"].as_u64(),
                Some(took),
                "{name}: {label} decapsulated {took}: {r}"
            );
        }
    }
    for counter in ["lb_drop_unreachable", "lb_drop_too_big"] {
        assert_eq!(st["xdp"][counter], 0, "{counter}: {}", st["xdp"]);
    }
}
