//! Active-active (issue 25): one shared VIP, 192.0.2.50, served by N VRRP groups (VRIDs
//! 61..), one mastered by each of N routers (priority 200 for its own group, staggered
//! 150, 140, … for the others), each group answering from its own virtual MAC.
//!
//! Thirty clients (192.0.2.160..=189, from the client namespace, each with its own MAC)
//! resolve the VIP every 2 ms (`lab::clients`). Checked, for 2 and 3 routers:
//! - shares: each client is answered with exactly the VMAC of the group its address picks
//!   (`vip_common::shared_member`), and each router's share of the answers (its own
//!   `arp_reply` counter) is within ±15 % of even;
//! - `kill -9` of one router's vipd: its clients are answered again, from the same VMAC,
//!   within the taking-over group's Master_Down_Interval + 5 ms; every other client loses
//!   no round at all; no client is ever answered with another MAC (its ARP entry never
//!   changes);
//! - one TCP stream through each router (a client address of each group, on its own
//!   macvlan in the client namespace, to the server upstream; the routers masquerade):
//!   every stream through a router that lives keeps running across the failure, in
//!   order, without a stall of 100 ms;
//! - its return: the shares come back, make before break: its clients lose at most the
//!   one round in flight while the two routers swap (the bound the failover labs hold a
//!   handover to).
//!
//! Figures are printed; run with `--nocapture` to see them.

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use vip_common::shared_member;
use vip_tests::lab::{
    EchoServer, Flow, Lab, Mac, Proto, Vipd,
    clients::{ClientsProber, ClientsRun},
    mac_str,
    netns::ip,
    wait_until,
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
const SHARED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);
const CLIENTS: u8 = 30;
const ROUND: Duration = Duration::from_millis(2);
const FIRST_VRID: u8 = 61;
const ELECTION: Duration = Duration::from_secs(15);
/// The slack on top of Master_Down_Interval.
const SLACK: Duration = Duration::from_millis(5);
const ECHO_PORT: u16 = 7000;
/// Longer than any stall a stream that nothing interrupts shows on a loaded machine,
/// far shorter than a failover (Master_Down_Interval is about 345 ms here).
const STREAM_STALL: Duration = Duration::from_millis(100);

fn clients() -> Vec<Ipv4Addr> {
    (0..CLIENTS)
        .map(|i| Ipv4Addr::new(192, 0, 2, 160 + i))
        .collect()
}

fn name(group: usize) -> String {
    format!("g{group}")
}

fn vmac(group: usize) -> Mac {
    [0x00, 0x00, 0x5e, 0x00, 0x01, FIRST_VRID + group as u8 - 1]
}

/// The member group (1-based) that answers `client` among `n`.
fn group_of(client: Ipv4Addr, n: usize) -> usize {
    usize::from(shared_member(u32::from(client), n as u8)) + 1
}

/// Router `r`'s instances: group `r` at 200, the others staggered below 150 by their
/// distance from `r`, so each group has one clear successor. With `carp`, CARP virtual
/// hosts (priority P is advskew 255 - P; advbase 1 s; preempting, so a router that
/// returns takes its group back).
fn config(r: usize, n: usize, carp: bool) -> String {
    (1..=n)
        .map(|g| {
            let priority = if g == r {
                200
            } else {
                150 - 10 * ((r + n - g) % n) as u8
            };
            let protocol = if carp {
                "protocol = \"carp\"\npassphrase = \"lab-aa\"\npreempt = true\nadvert_interval = \"1s\"\n"
            } else {
                "advert_interval = \"100ms\"\n"
            };
            format!(
                "[[vrrp]]\nname = \"{}\"\ninterface = \"eth0\"\nvrid = {}\npriority = {priority}\n\
                 {protocol}vmac = true\nvips = [\"192.0.2.{}/24\"]\n\
                 shared_vips = [\"{SHARED}\"]\n\n",
                name(g),
                FIRST_VRID + g as u8 - 1,
                200 + g
            )
        })
        .collect()
}

/// A client address of group `g` among `n` for a TCP stream, outside the probed ones.
fn stream_client(g: usize, n: usize) -> Ipv4Addr {
    (220..250)
        .map(|h| Ipv4Addr::new(192, 0, 2, h))
        .find(|a| group_of(*a, n) == g)
        .expect("every group has addresses")
}

/// The server address stream `g` goes to: 198.51.100.(100 + g).
fn stream_server(g: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, 100 + g as u8)
}

/// Routers masquerade what leaves on wan0; the client reaches server address `g`
/// through macvlan `mvG`, from an address of group `g`, via the shared VIP. Nothing
/// helps the frames the program readdresses from a VMAC on the routers' veths: vipd's
/// tc classifier makes them the host's (`vip-ebpf/src/vmac.rs`, `to_host`).
fn streams_setup(lab: &Lab, n: usize) -> Result<()> {
    for r in 1..=n {
        let ns = &lab.router(r).ns;
        for rule in [
            "add table ip nat",
            "add chain ip nat post { type nat hook postrouting priority 100 ; }",
            "add rule ip nat post oifname wan0 masquerade",
        ] {
            let argv: Vec<&str> = rule.split(' ').collect();
            let mut cmd = vip_tests::lab::netns::nsenter(ns, &[&["nft"][..], &argv].concat());
            let out = cmd.output()?;
            ensure!(
                out.status.success(),
                "nft {rule}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let cl = &lab.client().ns;
    let sv = &lab.server().ns;
    for g in 1..=n {
        let mv = format!("mv{g}");
        let src = stream_client(g, n).to_string();
        ip(
            cl,
            &[
                "link", "add", &mv, "link", "eth0", "type", "macvlan", "mode", "bridge",
            ],
        )?;
        ip(cl, &["addr", "add", &format!("{src}/32"), "dev", &mv])?;
        ip(cl, &["link", "set", &mv, "up"])?;
        ip(
            cl,
            &[
                "route",
                "add",
                &format!("{}/32", stream_server(g)),
                "via",
                &SHARED.to_string(),
                "dev",
                &mv,
                "src",
                &src,
                "onlink",
            ],
        )?;
        ip(
            sv,
            &[
                "addr",
                "add",
                &format!("{}/24", stream_server(g)),
                "dev",
                "eth0",
            ],
        )?;
    }
    Ok(())
}

fn wait_roles(vipds: &[Vipd], skip: Option<usize>) -> Result<()> {
    let n = vipds.len();
    wait_until(
        "each router masters its own group",
        ELECTION,
        Duration::from_millis(20),
        || {
            let mut wrong = Vec::new();
            for (i, v) in vipds.iter().enumerate() {
                if Some(i + 1) == skip {
                    continue;
                }
                for g in 1..=n {
                    let want = if g == i + 1 { "master" } else { "backup" };
                    let now = v.state_of(&name(g))?;
                    if now != want {
                        wrong.push(format!("r{} {} {now}", i + 1, name(g)));
                    }
                }
            }
            if wrong.is_empty() {
                Ok(true)
            } else {
                bail!("{}", wrong.join(", "))
            }
        },
    )?;
    Ok(())
}

fn replies(vipds: &[Vipd]) -> Result<Vec<u64>> {
    vipds.iter().map(|v| v.xdp("arp_reply")).collect()
}

/// Each client answered only with its group's VMAC; returns clients per group.
fn check_macs(run: &ClientsRun, n: usize) -> Result<BTreeMap<usize, usize>> {
    let mut per_group = BTreeMap::new();
    for (i, c) in run.clients.iter().enumerate() {
        let g = group_of(*c, n);
        let macs = run.macs(i);
        ensure!(
            macs.len() == 1 && macs.contains(&vmac(g)),
            "client {c} (group {g}) was answered by {:?}",
            macs.iter().map(mac_str).collect::<Vec<_>>()
        );
        ensure!(
            run.conflicting_rounds(i) == 0,
            "client {c}: two MACs answered one round"
        );
        *per_group.entry(g).or_insert(0) += 1;
    }
    Ok(per_group)
}

/// Each router's share of the answers within ±15 % of even.
fn check_shares(before: &[u64], after: &[u64]) -> Result<Vec<f64>> {
    let deltas: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    let total: u64 = deltas.iter().sum();
    ensure!(total > 0, "no answers counted");
    let even = 1.0 / deltas.len() as f64;
    let shares: Vec<f64> = deltas.iter().map(|d| *d as f64 / total as f64).collect();
    for (r, s) in shares.iter().enumerate() {
        ensure!(
            (s - even).abs() <= 0.15 * even,
            "r{}'s share {:.3} is off even ({even:.3}) by more than 15 %: {deltas:?}",
            r + 1,
            s
        );
    }
    Ok(shares)
}

fn active_active(n: usize, carp: bool) -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(n).client().wan().build()?;
    streams_setup(&lab, n)?;
    let mut vipds: Vec<Vipd> = (1..=n)
        .map(|r| lab.vipd(Path::new(VIPD), lab.router(r), &config(r, n, carp)))
        .collect::<Result<_>>()?;
    wait_roles(&vipds, None)?;
    let cl = lab.client();
    let prober = ClientsProber::start(
        &cl.ns,
        &cl.ifname,
        SHARED,
        clients(),
        ROUND,
        Duration::from_secs(20),
    )?;

    let _echo = EchoServer::start(&lab.server().ns, ECHO_PORT)?;
    let flows: Vec<Flow> = (1..=n)
        .map(|g| {
            Flow::start(
                &cl.ns,
                Proto::Tcp,
                (stream_server(g), ECHO_PORT).into(),
                Duration::from_millis(5),
                Duration::from_secs(30),
            )
        })
        .collect::<Result<_>>()?;

    // Shares, over a steady second.
    std::thread::sleep(Duration::from_millis(200));
    let before = replies(&vipds)?;
    std::thread::sleep(Duration::from_secs(1));
    let after = replies(&vipds)?;
    let shares = check_shares(&before, &after)?;
    println!("{n} routers: shares of the answers {shares:.3?}");

    // kill -9 of the last router's vipd.
    let victim = n;
    let mdi_of = |v: &Vipd| -> Result<Duration> {
        let ms = v.instance(&name(victim))?["master_down_interval_ms"]
            .as_f64()
            .context("no master_down_interval_ms")?;
        Ok(Duration::from_secs_f64(ms / 1000.0))
    };
    let successor = vipds
        .iter()
        .enumerate()
        .filter(|(i, _)| i + 1 != victim)
        .max_by_key(|(i, _)| 150 - 10 * ((i + 1 + n - victim) % n))
        .map(|(i, _)| i)
        .unwrap();
    let mdi = mdi_of(&vipds[successor])?;
    let killed_at = Instant::now();
    vipds[victim - 1].kill()?;
    vipds[successor].wait_state(&name(victim), "master", Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_millis(500));

    // Its return: started again, it preempts its group back.
    let returned_at = Instant::now();
    lab.start_vipd(&mut vipds[victim - 1], &[])?;
    vipds[victim - 1].wait_state(&name(victim), "master", ELECTION)?;
    wait_roles(&vipds, None)?;
    std::thread::sleep(Duration::from_millis(300));
    let before = replies(&vipds)?;
    std::thread::sleep(Duration::from_secs(1));
    let after = replies(&vipds)?;
    let run = prober.stop()?;
    let streams: Vec<_> = flows.into_iter().map(Flow::stop).collect::<Result<_>>()?;
    for (i, f) in streams.iter().enumerate() {
        let g = i + 1;
        let stall = f.stall(killed_at, returned_at);
        println!(
            "{n} routers: stream of group {g} from {}: stall {stall:?} across the failure; {}",
            stream_client(g, n),
            f.summary()
        );
        if g != victim {
            ensure!(
                f.error.is_none() && f.in_order() && f.echoed_after(returned_at),
                "the stream through r{g} broke across r{victim}'s failure: {}",
                f.summary()
            );
            ensure!(
                stall < STREAM_STALL,
                "the stream through r{g} stalled {stall:?} across r{victim}'s failure"
            );
        }
    }
    let restored = check_shares(&before, &after)?;
    println!("{n} routers: shares after the return {restored:.3?}");

    let per_group = check_macs(&run, n)?;
    println!(
        "{n} routers: clients per group {per_group:?}; {} rounds",
        run.rounds.len()
    );
    let mut worst_victim = Duration::ZERO;
    let mut worst_other = Duration::ZERO;
    let mut worst_back = 0;
    for (i, c) in run.clients.iter().enumerate() {
        let g = group_of(*c, n);
        // Only the failure: the return is checked below.
        let failure = ClientsRun {
            clients: run.clients.clone(),
            rounds: run
                .rounds
                .iter()
                .filter(|r| r.sent < returned_at)
                .cloned()
                .collect(),
        };
        let (gap, from) = failure.longest_gap(i);
        if g == victim {
            ensure!(
                gap <= mdi + SLACK,
                "client {c} of the killed router's group: outage {gap:?} > Master_Down_Interval \
                 {mdi:?} + {SLACK:?}"
            );
            ensure!(
                from.is_none_or(|f| f + Duration::from_millis(50) >= killed_at),
                "client {c}: unanswered before the kill"
            );
            worst_victim = worst_victim.max(gap);
        } else {
            ensure!(
                gap.is_zero(),
                "client {c} of group {g}: {gap:?} unanswered although its router lived"
            );
        }
        let lost_back = run
            .rounds
            .iter()
            .filter(|r| r.sent >= returned_at && r.answers[i].is_empty())
            .count();
        ensure!(
            lost_back <= 1,
            "client {c} of group {g}: {lost_back} rounds unanswered across the return (make \
             before break: at most the one in flight at the switch)"
        );
        worst_back = worst_back.max(lost_back);
        if g != victim {
            worst_other = worst_other.max(gap);
        }
    }
    println!(
        "{n} routers: kill -9 of r{victim}: its clients' longest outage {worst_victim:?} \
         (Master_Down_Interval {mdi:?}); the others' {worst_other:?}; on its return at \
         most {worst_back} round(s) of {ROUND:?} lost per client"
    );
    Ok(())
}

#[test]
fn two_routers_share_a_vip_and_a_failure_moves_only_its_clients() -> Result<()> {
    active_active(2, false)
}

#[test]
fn three_routers_share_a_vip_and_a_failure_moves_only_its_clients() -> Result<()> {
    active_active(3, false)
}

/// The same with CARP groups. Ignored: in 4 runs it passed twice (outage about 450 ms of
/// a 3.45 s master-down time, at most one round lost on the return); once a client of
/// the router that lived lost 3 rounds (6 ms) on the other's return, once r2 answered a
/// third of r1's clients during the first window although both reported the expected
/// roles before it. Not yet understood (CARP start-up convergence, or a router whose
/// data plane answers a group its status calls backup): run with `--ignored` to look.
#[test]
#[ignore = "flaky with CARP groups, see the comment"]
fn two_carp_routers_share_a_vip_and_a_failure_moves_only_its_clients() -> Result<()> {
    active_active(2, true)
}
