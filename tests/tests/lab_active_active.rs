//! Active-active (issue 25): one shared VIP, 192.0.2.50 (2001:db8::50 with IPv6), served
//! by N groups (VRIDs 61..; VRRP, or CARP virtual hosts), one mastered by each of N
//! routers (priority 200 for its own group, staggered 150, 140, … for the others), each
//! group answering from its own virtual MAC.
//!
//! Thirty clients (192.0.2.160..=189, or 2001:db8::1:a0.., from the client namespace,
//! each with its own MAC) resolve the VIP every 2 ms (`lab::clients`: ARP, or Neighbor
//! Solicitations). Checked, for 2 and 3 VRRP routers, 2 CARP routers and 2 VRRP routers
//! with IPv6:
//! - shares: each client is answered with exactly the VMAC of the group its address picks
//!   (`vip_common::shared_member`), and each router's share of the answers (the part of
//!   the requests its data plane saw that it answered: `arp_reply` / `ns_reply` against
//!   those, `vip_not_owned` and `lease_expired`) is within ±15 % of even, the shares
//!   adding up to one (no request answered twice or by nobody);
//! - `vipd status --json` on every router lists the shared VIP with all groups, the one
//!   it masters and answers for, and that group's answers (agreeing with the counters);
//! - `kill -9` of one router's vipd: its clients are answered again, from the same VMAC,
//!   within the taking-over group's Master_Down_Interval + 5 ms; every other client loses
//!   no round at all; no client is ever answered with another MAC (its ARP or neighbour
//!   entry never changes);
//! - IPv4 only: one TCP stream through each router (a client address of each group, on
//!   its own macvlan in the client namespace, to the server upstream; the routers
//!   masquerade): every stream through a router that lives keeps running across the
//!   failure, in order, without a stall of 100 ms;
//! - its return: the shares come back, make before break: its clients lose at most the
//!   one round in flight while the two routers swap (the bound the failover labs hold a
//!   handover to).
//!
//! Figures are printed; run with `--nocapture` to see them.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;
use vip_common::shared_member;
use vip_tests::lab::{
    EchoServer, Flow, FlowRun, Lab, Mac, Proto, Vipd,
    clients::{ClientsProber, ClientsRun},
    mac_str,
    netns::ip,
    wait_until,
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
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

/// The address family a run uses: its shared VIP, client addresses, each group's own VIP
/// and the counter its answers are counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fam {
    V4,
    V6,
}

impl Fam {
    fn shared(self) -> IpAddr {
        match self {
            Fam::V4 => Ipv4Addr::new(192, 0, 2, 50).into(),
            Fam::V6 => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50).into(),
        }
    }

    /// Consecutive addresses: 192.0.2.160.., 2001:db8::1:a0..
    fn clients(self) -> Vec<IpAddr> {
        (0..CLIENTS)
            .map(|i| match self {
                Fam::V4 => Ipv4Addr::new(192, 0, 2, 160 + i).into(),
                Fam::V6 => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, 0xa0 + u16::from(i)).into(),
            })
            .collect()
    }

    /// Group `g`'s own VIP (every group needs one).
    fn group_vip(self, g: usize) -> String {
        match self {
            Fam::V4 => format!("192.0.2.{}/24", 200 + g),
            Fam::V6 => format!("2001:db8::{:x}/64", 0x200 + g),
        }
    }

    /// The counter of the program's answers.
    fn reply_counter(self) -> &'static str {
        match self {
            Fam::V4 => "arp_reply",
            Fam::V6 => "ns_reply",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Fam::V4 => "IPv4",
            Fam::V6 => "IPv6",
        }
    }
}

fn name(group: usize) -> String {
    format!("g{group}")
}

/// Group `group`'s virtual MAC for addresses of `vip`'s family.
fn vmac(group: usize, vip: IpAddr) -> Mac {
    let family = if vip.is_ipv4() { 0x01 } else { 0x02 };
    [0x00, 0x00, 0x5e, 0x00, family, FIRST_VRID + group as u8 - 1]
}

/// The last four bytes of an address as a number (what `shared_member` takes).
fn low32(a: IpAddr) -> u32 {
    match a {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = a.octets();
            u32::from_be_bytes([o[12], o[13], o[14], o[15]])
        }
    }
}

/// The member group (1-based) that answers `client` among `n`.
fn group_of(client: IpAddr, n: usize) -> usize {
    usize::from(shared_member(low32(client), n as u8)) + 1
}

/// Router `r`'s instances: group `r` at 200, the others staggered below 150 by their
/// distance from `r`, so each group has one clear successor. With `carp`, CARP virtual
/// hosts (priority P is advskew 255 - P; advbase 1 s; preempting, so a router that
/// returns takes its group back).
fn config(r: usize, n: usize, carp: bool, fam: Fam) -> String {
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
                 {protocol}vmac = true\nvips = [\"{}\"]\n\
                 shared_vips = [\"{}\"]\n\n",
                name(g),
                FIRST_VRID + g as u8 - 1,
                fam.group_vip(g),
                fam.shared(),
            )
        })
        .collect()
}

/// A client address of group `g` among `n` for a TCP stream, outside the probed ones.
fn stream_client(g: usize, n: usize) -> Ipv4Addr {
    (220..250)
        .map(|h| Ipv4Addr::new(192, 0, 2, h))
        .find(|a| group_of(IpAddr::V4(*a), n) == g)
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
                &Fam::V4.shared().to_string(),
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

/// What one router's data plane did with the requests for the VIPs it saw (every
/// router sees every request: they are broadcast).
#[derive(Clone, Copy, Debug)]
struct Seen {
    answered: u64,
    /// Answered, or dropped because another group (or a lapsed lease) has the client.
    total: u64,
}

/// Each router's `vipd status --json`.
fn statuses(vipds: &[Vipd]) -> Result<Vec<Value>> {
    vipds.iter().map(Vipd::status).collect()
}

/// What router status `s` counted (reply counter `reply`: `arp_reply` or `ns_reply`).
fn seen(s: &Value, reply: &str) -> Result<Seen> {
    let c = |name: &str| {
        s["xdp"][name]
            .as_u64()
            .with_context(|| format!("no counter {name}"))
    };
    let answered = c(reply)?;
    Ok(Seen {
        answered,
        total: answered + c("vip_not_owned")? + c("lease_expired")?,
    })
}

/// `vipd status --json` shows the shared VIP on every router with all `n` groups, which
/// of them this router masters (its own, `r`), that its data plane answers for exactly
/// that one, and per group the answers given between `before` and `after`: all of this
/// router's (its `reply` counter) for its own group, none for the others.
fn check_shared_status(vip: IpAddr, reply: &str, before: &[Value], after: &[Value]) -> Result<()> {
    let n = after.len();
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        let r = i + 1;
        let shared = |s: &Value| -> Result<Value> {
            s["shared_vips"]
                .as_array()
                .and_then(|l| l.iter().find(|v| v["address"] == vip.to_string()))
                .cloned()
                .with_context(|| format!("r{r}: no shared VIP {vip} in the status: {s}"))
        };
        let (sb, sa) = (shared(b)?, shared(a)?);
        ensure!(
            sa["interface"] == "eth0" && sa["members"] == n,
            "r{r}: shared VIP {sa}"
        );
        let groups = sa["groups"].as_array().context("no groups")?;
        ensure!(groups.len() == n, "r{r}: {} groups listed", groups.len());
        let replies = seen(a, reply)?.answered - seen(b, reply)?.answered;
        for (m, g) in groups.iter().enumerate() {
            let own = m + 1 == r;
            ensure!(
                g["member"] == m
                    && g["instance"] == name(m + 1).as_str()
                    && g["vmac"] == mac_str(&vmac(m + 1, vip)).as_str()
                    && g["master"] == own
                    && g["answering"] == own,
                "r{r}: member {m} is {g}"
            );
            let answers = |s: &Value| s["groups"][m]["answers"].as_u64().context("no answers");
            let given = answers(&sa)? - answers(&sb)?;
            if own {
                // Both from one status answer each, read one after the other: a few
                // answers may fall between the two reads.
                ensure!(
                    given > 0 && given.abs_diff(replies) * 100 <= replies,
                    "r{r}: {given} answers for its group, {replies} {reply} counted"
                );
            } else {
                ensure!(given == 0, "r{r}: {given} answers for group {}", m + 1);
            }
        }
    }
    Ok(())
}

/// Each client answered only with its group's VMAC; returns clients per group.
fn check_macs(run: &ClientsRun, n: usize, vip: IpAddr) -> Result<BTreeMap<usize, usize>> {
    let mut per_group = BTreeMap::new();
    for (i, c) in run.clients.iter().enumerate() {
        let g = group_of(*c, n);
        let macs = run.macs(i);
        ensure!(
            macs.len() == 1 && macs.contains(&vmac(g, vip)),
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

/// Each router's share of the answers within ±15 % of even, and the shares add up to
/// one: every request answered once, by one router.
///
/// A router's share is the part of the requests it saw (all of them: they are broadcast)
/// that it answered, each router's own counters read from one status answer. Comparing
/// the routers' answer counts instead depends on when each router's counters were read:
/// `vipd status` answers through the daemon's event loop, and on a loaded machine one
/// answer can come hundreds of milliseconds after the other while the data plane keeps
/// counting (a daemon stopped for 400 ms at the second read gave [7035, 9644], "r2
/// answering a third more", with both data planes answering exactly their own group).
fn check_shares(before: &[Seen], after: &[Seen]) -> Result<Vec<f64>> {
    let mut shares = Vec::new();
    for (r, (a, b)) in after.iter().zip(before).enumerate() {
        let seen = a.total - b.total;
        ensure!(seen > 0, "r{} saw no requests", r + 1);
        shares.push((a.answered - b.answered) as f64 / seen as f64);
    }
    let even = 1.0 / shares.len() as f64;
    for (r, s) in shares.iter().enumerate() {
        ensure!(
            (s - even).abs() <= 0.15 * even,
            "r{}'s share {s:.3} is off even ({even:.3}) by more than 15 %: {shares:.3?}",
            r + 1
        );
    }
    let sum: f64 = shares.iter().sum();
    ensure!(
        (sum - 1.0).abs() <= 0.02,
        "the shares add up to {sum:.3}, not 1 (requests answered twice or not at all): \
         {shares:.3?}"
    );
    Ok(shares)
}

/// When the longest gap between echoes of `f` around `[from, to]` began, in seconds
/// after `from` (what to compare with the routers' logs when a stall shows).
fn stall_start(f: &FlowRun, from: Instant, to: Instant) -> f64 {
    let secs = |t: Instant| match t.checked_duration_since(from) {
        Some(d) => d.as_secs_f64(),
        None => -(from - t).as_secs_f64(),
    };
    f.echoes
        .windows(2)
        .filter(|w| w[1].1 >= from && w[0].1 <= to)
        .max_by_key(|w| w[1].1 - w[0].1)
        .map_or(0.0, |w| secs(w[0].1))
}

/// `n` routers, VRRP or CARP groups, one family. TCP streams run through the routers
/// with IPv4 only (the routers masquerade them; what a stream shows does not depend on
/// how its gateway was resolved).
fn active_active(n: usize, carp: bool, fam: Fam) -> Result<()> {
    vip_tests::require_root();
    let streams = fam == Fam::V4;
    let lab = if streams {
        Lab::builder().routers(n).client().wan().build()?
    } else {
        Lab::builder().routers(n).client().build()?
    };
    if streams {
        streams_setup(&lab, n)?;
    }
    let shared = fam.shared();
    let reply = fam.reply_counter();
    let tag = format!("{n} routers, {}", fam.label());
    let mut vipds: Vec<Vipd> = (1..=n)
        .map(|r| lab.vipd(Path::new(VIPD), lab.router(r), &config(r, n, carp, fam)))
        .collect::<Result<_>>()?;
    wait_roles(&vipds, None)?;
    let cl = lab.client();
    let prober = ClientsProber::start(
        &cl.ns,
        &cl.ifname,
        shared,
        fam.clients(),
        ROUND,
        Duration::from_secs(20),
    )?;

    let _echo = streams
        .then(|| EchoServer::start(&lab.server().ns, ECHO_PORT))
        .transpose()?;
    let flows: Vec<Flow> = (1..=n)
        .filter(|_| streams)
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
    let before = statuses(&vipds)?;
    std::thread::sleep(Duration::from_secs(1));
    let after = statuses(&vipds)?;
    let seen_in = |l: &[Value]| l.iter().map(|s| seen(s, reply)).collect::<Result<Vec<_>>>();
    let shares = check_shares(&seen_in(&before)?, &seen_in(&after)?)?;
    check_shared_status(shared, reply, &before, &after)?;
    println!("{tag}: shares of the answers {shares:.3?}; `vipd status` shows each router's group");

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
    let before = statuses(&vipds)?;
    std::thread::sleep(Duration::from_secs(1));
    let after = statuses(&vipds)?;
    let run = prober.stop()?;
    let ended: Vec<_> = flows.into_iter().map(Flow::stop).collect::<Result<_>>()?;
    for (i, f) in ended.iter().enumerate() {
        let g = i + 1;
        let stall = f.stall(killed_at, returned_at);
        println!(
            "{tag}: stream of group {g} from {}: stall {stall:?} across the failure; {}",
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
                "the stream through r{g} stalled {stall:?} across r{victim}'s failure, from \
                 {:+.3} s after the kill (its return at {:+.3} s)",
                stall_start(f, killed_at, returned_at),
                (returned_at - killed_at).as_secs_f64()
            );
        }
    }
    let restored = check_shares(&seen_in(&before)?, &seen_in(&after)?)?;
    println!("{tag}: shares after the return {restored:.3?}");

    let per_group = check_macs(&run, n, shared)?;
    println!(
        "{tag}: clients per group {per_group:?}; {} rounds",
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
        let unanswered: Vec<f64> = run
            .rounds
            .iter()
            .filter(|r| r.sent >= returned_at && r.answers[i].is_empty())
            .map(|r| (r.sent - returned_at).as_secs_f64() * 1000.0)
            .collect();
        let lost_back = unanswered.len();
        ensure!(
            lost_back <= 1,
            "client {c} of group {g}: {lost_back} rounds unanswered across the return (make \
             before break: at most the one in flight at the switch), sent {unanswered:.1?} ms \
             after the restart"
        );
        worst_back = worst_back.max(lost_back);
        if g != victim {
            worst_other = worst_other.max(gap);
        }
    }
    println!(
        "{tag}: kill -9 of r{victim}: its clients' longest outage {worst_victim:?} \
         (Master_Down_Interval {mdi:?}); the others' {worst_other:?}; on its return at \
         most {worst_back} round(s) of {ROUND:?} lost per client"
    );
    Ok(())
}

#[test]
fn two_routers_share_a_vip_and_a_failure_moves_only_its_clients() -> Result<()> {
    active_active(2, false, Fam::V4)
}

#[test]
fn three_routers_share_a_vip_and_a_failure_moves_only_its_clients() -> Result<()> {
    active_active(3, false, Fam::V4)
}

/// IPv6: the Neighbor Solicitations of 30 clients answered by the group their address
/// picks (the low 32 bits of the interface identifier), from its IPv6 virtual MAC.
#[test]
fn two_routers_share_an_ipv6_vip_and_a_failure_moves_only_its_clients() -> Result<()> {
    active_active(2, false, Fam::V6)
}

/// The same with CARP groups (advbase 1 s: the election at start takes about 3.5 s).
#[test]
fn two_carp_routers_share_a_vip_and_a_failure_moves_only_its_clients() -> Result<()> {
    active_active(2, true, Fam::V4)
}
