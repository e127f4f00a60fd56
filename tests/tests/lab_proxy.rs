//! `proxy_arp` end to end with the real XDP program: addresses that live behind r1/r2
//! (198.51.100.50, 2001:db8:5::50), which the client resolves to the master (its MAC, or
//! the VMAC) and which the backup never answers; a failover moves the client's neighbour
//! entry to the new master by its gratuitous ARP / unsolicited NA alone; no router's kernel
//! ever holds the address, and no advertisement lists it.
//!
//! The client reaches the proxy addresses through an on-link host route (`ip route add
//! 198.51.100.50/32 dev eth0`), as a host on a proxied segment would: its own stack then
//! resolves them on the link. Figures are printed; run with `--nocapture` to see them.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::Path,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Result, bail, ensure};
use vip_tests::{
    frames,
    lab::{
        Frame, Kind, Lab, Mac, Method, Node, ProbeRun, Vipd, capture::read_pcap, mac_str,
        wait_until,
    },
    require_root,
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
const INSTANCE: &str = "gw";
const VIP4: &str = "192.0.2.1";
const PROXY4: &str = "198.51.100.50";
const VIP6: &str = "2001:db8::1";
const PROXY6: &str = "2001:db8:5::50";
/// The RFC 5798 virtual MAC of VRID 51 over IPv4.
const VMAC: Mac = [0x00, 0x00, 0x5e, 0x00, 0x01, 51];
/// Generous: startup includes loading the XDP program on a shared, busy machine.
const ELECTION: Duration = Duration::from_secs(10);
/// How long a client's neighbour entry may take to follow an announcement.
const FOLLOW: Duration = Duration::from_secs(3);

/// Instance "gw", VRID 51, adverts every 50 ms (a stall of the shared host must not pass
/// for a dead master while the backup is being watched), one VIP and one proxy address.
fn section(priority: u8, vip: &str, proxy: &str, extra: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"{INSTANCE}\"\ninterface = \"eth0\"\nvrid = 51\n\
         priority = {priority}\nadvert_interval = \"50ms\"\nvips = [\"{vip}\"]\n\
         proxy_arp = [\"{proxy}\"]\n{extra}"
    )
}

/// r1 (200) master and r2 (100) backup with `vip` and `proxy`, configured alike.
fn pair(lab: &Lab, vip: &str, proxy: &str, extra: &str) -> Result<(Vipd, Vipd)> {
    let bin = Path::new(VIPD);
    let r1 = lab.vipd(bin, lab.router(1), &section(200, vip, proxy, extra))?;
    let r2 = lab.vipd(bin, lab.router(2), &section(100, vip, proxy, extra))?;
    wait_until(
        "r1 master and r2 backup",
        ELECTION,
        Duration::from_millis(5),
        || {
            let (s1, s2) = (r1.state_of(INSTANCE)?, r2.state_of(INSTANCE)?);
            if s1 == "master" && s2 == "backup" {
                Ok(true)
            } else {
                bail!("r1 {s1}, r2 {s2}")
            }
        },
    )?;
    Ok((r1, r2))
}

/// Makes `proxy` on-link for the client: its stack resolves it on eth0.
fn client_route(lab: &Lab, proxy: IpAddr) -> Result<()> {
    let (family, len) = if proxy.is_ipv6() {
        ("-6", 128)
    } else {
        ("-4", 32)
    };
    lab.exec(
        lab.client(),
        &[
            "ip",
            family,
            "route",
            "add",
            &format!("{proxy}/{len}"),
            "dev",
            "eth0",
        ],
    )
    .map(drop)
}

/// The client's neighbour entry for `addr` on eth0, as `ip neigh` prints it.
fn neighbour(lab: &Lab, addr: IpAddr) -> Result<String> {
    let a = addr.to_string();
    lab.exec(lab.client(), &["ip", "neigh", "show", &a, "dev", "eth0"])
        .map(|s| s.trim().to_owned())
}

/// Waits until the client's entry for `addr` names `mac`; returns how long that took.
fn wait_neighbour(lab: &Lab, addr: IpAddr, mac: Mac, who: &str) -> Result<Duration> {
    let want = format!("lladdr {}", mac_str(&mac));
    wait_until(
        &format!("the client to resolve {addr} to {who} ({})", mac_str(&mac)),
        FOLLOW,
        Duration::from_millis(2),
        || {
            let now = neighbour(lab, addr)?;
            if now.contains(&want) {
                Ok(true)
            } else {
                bail!("entry {now:?}")
            }
        },
    )
}

/// The client's own stack resolves `addr`: a few pings through its kernel leave a
/// neighbour entry, which must name `mac`. (Nothing forwards the pings; only the
/// resolution matters.)
fn resolve_by_stack(lab: &Lab, addr: IpAddr, mac: Mac, who: &str) -> Result<()> {
    lab.probe(
        lab.client(),
        Method::Ping,
        addr,
        Duration::from_millis(10),
        Duration::from_millis(100),
        &[],
    )?
    .finish()?;
    wait_neighbour(lab, addr, mac, who).map(drop)
}

/// Resolves `addr` from the client `for_` long, one ARP request / NS every 5 ms.
fn resolve_run(lab: &Lab, addr: IpAddr, for_: Duration, names: &[(Mac, &str)]) -> Result<ProbeRun> {
    lab.probe(
        lab.client(),
        Method::Resolve,
        addr,
        Duration::from_millis(5),
        for_,
        names,
    )?
    .finish()
}

/// Every probe answered (99 %, for a dropped frame on a busy host) by `who` alone, from
/// `mac`, and by nobody else.
fn answered_only_by(run: &ProbeRun, who: &str, mac: Mac) -> Result<()> {
    println!("{}", run.summary());
    ensure!(
        run.sent() > 0 && run.answered() * 100 >= run.sent() * 99,
        "answers missing: {}",
        run.summary()
    );
    ensure!(
        run.responders().into_iter().eq([who.to_string()]),
        "responders other than {who}: {}",
        run.summary()
    );
    for p in &run.probes {
        for r in &p.replies {
            ensure!(
                r.mac == mac,
                "probe {} answered with {} (not {who}'s {})",
                p.seq,
                mac_str(&r.mac),
                mac_str(&mac)
            );
        }
    }
    Ok(())
}

/// Whether any interface of `node` holds `addr` (`ip -o addr show`).
fn kernel_holds(lab: &Lab, node: &Node, addr: IpAddr) -> Result<bool> {
    let out = lab.exec(node, &["ip", "-o", "addr", "show"])?;
    let want = addr.to_string();
    Ok(out
        .split_whitespace()
        .any(|w| w.split('/').next() == Some(want.as_str())))
}

/// `node`'s kernel holds the VIP exactly when `master`, and the proxy address never.
fn check_kernel(lab: &Lab, node: &Node, vip: IpAddr, proxy: IpAddr, master: bool) -> Result<()> {
    let all = lab.exec(node, &["ip", "-o", "addr", "show"])?;
    ensure!(
        kernel_holds(lab, node, vip)? == master,
        "{} (master: {master}) and the VIP {vip}:\n{all}",
        node.label
    );
    ensure!(
        !kernel_holds(lab, node, proxy)?,
        "{}'s kernel holds the proxy address {proxy}:\n{all}",
        node.label
    );
    Ok(())
}

/// The XDP counters that tell who answered: (arp_reply or ns_reply, vip_not_owned).
fn answers(v: &Vipd, v6: bool) -> Result<(u64, u64)> {
    let reply = if v6 { "ns_reply" } else { "arp_reply" };
    Ok((v.xdp(reply)?, v.xdp("vip_not_owned")?))
}

/// The counters moved by the run as they must: the master's replies rose by at least the
/// answers the client got, the backup replied to nothing and dropped (nearly) every
/// request.
fn check_counters(
    run: &ProbeRun,
    master: (u64, u64),
    backup: (u64, u64),
    label: &str,
) -> Result<()> {
    let (m_replies, _) = master;
    let (b_replies, b_dropped) = backup;
    println!(
        "{label}: XDP counters over the run: master replies +{m_replies}; backup replies \
         +{b_replies}, vip_not_owned +{b_dropped} ({} requests sent)",
        run.sent()
    );
    ensure!(
        m_replies >= run.answered() as u64,
        "{label}: the master's program counted {m_replies} replies for {} answers",
        run.answered()
    );
    ensure!(b_replies == 0, "{label}: the backup answered {b_replies}");
    ensure!(
        b_dropped * 100 >= run.sent() as u64 * 99,
        "{label}: the backup dropped only {b_dropped} of {} requests",
        run.sent()
    );
    Ok(())
}

/// Runs a resolution of `proxy` from the client and checks, by the replies and by both
/// programs' counters, that `master` alone answered, from `mac`.
fn only_master_answers(
    lab: &Lab,
    proxy: IpAddr,
    (master, who): (&Vipd, &str),
    backup: &Vipd,
    mac: Mac,
) -> Result<ProbeRun> {
    let v6 = proxy.is_ipv6();
    let (m0, b0) = (answers(master, v6)?, answers(backup, v6)?);
    let run = resolve_run(lab, proxy, Duration::from_secs(1), &[])?;
    let (m1, b1) = (answers(master, v6)?, answers(backup, v6)?);
    answered_only_by(&run, who, mac)?;
    check_counters(
        &run,
        (m1.0 - m0.0, m1.1 - m0.1),
        (b1.0 - b0.0, b1.1 - b0.1),
        &format!("{proxy} from {who}"),
    )?;
    Ok(run)
}

/// `arping` from the client's own address, broadcasting every request (one a second,
/// waiting at most 5 s for `count` replies): the MAC of every reply it printed.
fn arping(lab: &Lab, target: &str, count: u32) -> Result<Vec<String>> {
    let c = count.to_string();
    let (_, out, err) = lab.exec_status(
        lab.client(),
        &["arping", "-b", "-c", &c, "-w", "5", "-I", "eth0", target],
    )?;
    let macs: Vec<String> = out
        .lines()
        .filter(|l| l.contains("reply from"))
        .filter_map(|l| {
            let open = l.find('[')?;
            let close = l[open..].find(']')? + open;
            Some(l[open + 1..close].to_ascii_lowercase())
        })
        .collect();
    if macs.is_empty() {
        bail!("arping {target}: no reply\n{out}{err}");
    }
    Ok(macs)
}

/// Gratuitous ARPs for `addr` in `frames` sent from `mac`, with their times.
fn garps(frames: &[Frame], addr: Ipv4Addr, mac: Mac) -> Vec<SystemTime> {
    frames
        .iter()
        .filter(|f| {
            matches!(f.kind(), Kind::ArpRequest { sender_mac, sender_ip, target_ip }
                if sender_mac == mac && sender_ip == addr && target_ip == addr)
        })
        .map(|f| f.at)
        .collect()
}

/// ARP requests for `addr` the client's own stack sent (the prober's carry other MACs).
fn client_asked_v4(lab: &Lab, frames: &[Frame], addr: Ipv4Addr) -> usize {
    let me = lab.client().mac;
    frames
        .iter()
        .filter(|f| {
            matches!(f.kind(), Kind::ArpRequest { sender_mac, target_ip, .. }
                if sender_mac == me && target_ip == addr)
        })
        .count()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---- IPv4 ----

/// The master's program answers every request for the proxy address with the master's
/// MAC; the backup's drops them all; arping from the client's own address sees one
/// responder; neither kernel holds the address and the adverts list only the VIP.
#[test]
fn ipv4_proxy_address_is_answered_by_the_masters_xdp_program_alone() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let (vip, proxy): (IpAddr, IpAddr) = (VIP4.parse()?, PROXY4.parse()?);
    let (r1, r2) = pair(&lab, &format!("{VIP4}/24"), PROXY4, "")?;
    let (m1, m2) = (lab.router(1).mac, lab.router(2).mac);
    client_route(&lab, proxy)?;
    let adverts = lab.capture_port(lab.router(1), "ip proto 112")?;

    only_master_answers(&lab, proxy, (&r1, "r1"), &r2, m1)?;

    let macs = arping(&lab, PROXY4, 3)?;
    println!(
        "arping {PROXY4} from the client: {} replies from {macs:?}",
        macs.len()
    );
    ensure!(
        macs.len() == 3 && macs.iter().all(|m| *m == mac_str(&m1)),
        "arping saw {macs:?}; only r1 ({}) may answer, r2 is {}",
        mac_str(&m1),
        mac_str(&m2)
    );

    check_kernel(&lab, lab.router(1), vip, proxy, true)?;
    check_kernel(&lab, lab.router(2), vip, proxy, false)?;

    let frames = adverts.stop()?;
    let lists: Vec<Vec<IpAddr>> = frames
        .iter()
        .filter_map(|f| match f.kind() {
            Kind::Vrrp { src_mac, addrs, .. } if src_mac == m1 => Some(addrs),
            _ => None,
        })
        .collect();
    println!(
        "r1 sent {} adverts over the checks, listing {:?}",
        lists.len(),
        lists.first()
    );
    ensure!(
        !lists.is_empty() && lists.iter().all(|a| *a == [vip]),
        "r1's adverts list {lists:?}, want only the VIP"
    );
    // Still one master: nothing above was a failover in disguise.
    ensure!(r1.state_of(INSTANCE)? == "master" && r2.state_of(INSTANCE)? == "backup");
    Ok(())
}

/// The master is killed; the new master's gratuitous ARP moves the client's entry for the
/// proxy address without the client asking, and from then on r2 alone answers for it.
#[test]
fn ipv4_proxy_address_moves_to_the_new_master_by_its_gratuitous_arp_on_kill() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let (vip, proxy): (IpAddr, IpAddr) = (VIP4.parse()?, PROXY4.parse()?);
    let IpAddr::V4(proxy4) = proxy else {
        unreachable!()
    };
    let (r1, r2) = pair(&lab, &format!("{VIP4}/24"), PROXY4, "")?;
    let (m1, m2) = (lab.router(1).mac, lab.router(2).mac);
    client_route(&lab, proxy)?;
    resolve_by_stack(&lab, proxy, m1, "r1")?;
    println!("before: {}", neighbour(&lab, proxy)?);

    let cap = lab.capture_port(lab.client(), "arp")?;
    let failed_at = Instant::now();
    let wall_failed = SystemTime::now();
    r1.kill()?;
    let took = r2.wait_state(INSTANCE, "master", Duration::from_secs(5))?;
    let moved = wait_neighbour(&lab, proxy, m2, "r2")?;
    let moved_after = failed_at.elapsed();
    let after = neighbour(&lab, proxy)?;
    let frames = cap.stop()?;
    let announced = garps(&frames, proxy4, m2);
    let asked = client_asked_v4(&lab, &frames, proxy4);
    println!(
        "r1 killed: r2 master after {:.0} ms; the client's entry on r2 {:.0} ms after the \
         kill ({:.0} ms of polling after the takeover): {after}; r2 sent {} gratuitous ARPs \
         for {PROXY4}, the client asked {asked} times",
        ms(took),
        ms(moved_after),
        ms(moved),
        announced.len()
    );
    ensure!(
        announced.iter().any(|t| *t >= wall_failed),
        "no gratuitous ARP from r2 for {PROXY4} reached the client"
    );
    ensure!(
        asked == 0,
        "the client's stack asked for {PROXY4} {asked} times: the move was not the \
         announcement's doing"
    );
    ensure!(
        garps(&frames, proxy4, m1).is_empty(),
        "dead r1 announced {PROXY4}"
    );

    // r2 answers now; r1's program, left behind by kill -9, drops requests once its lease
    // lapsed (it is no daemon's any more, so only the replies tell).
    let run = resolve_run(&lab, proxy, Duration::from_millis(500), &[])?;
    answered_only_by(&run, "r2", m2)?;
    check_kernel(&lab, lab.router(2), vip, proxy, true)?;
    ensure!(
        !kernel_holds(&lab, lab.router(1), proxy)?,
        "r1's kernel holds {PROXY4}"
    );
    Ok(())
}

/// `vmac = true`: the proxy address resolves to the VMAC, from the master alone (told
/// apart by what each router's bridge port carried), before and after a failover, and the
/// new master's gratuitous ARP names the VMAC too.
#[test]
fn vmac_proxy_address_resolves_to_the_virtual_mac_from_the_master_alone() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let proxy: IpAddr = PROXY4.parse()?;
    let IpAddr::V4(proxy4) = proxy else {
        unreachable!()
    };
    let (r1, r2) = pair(&lab, &format!("{VIP4}/24"), PROXY4, "vmac = true\n")?;
    client_route(&lab, proxy)?;
    resolve_by_stack(&lab, proxy, VMAC, "the VMAC")?;

    let attributed = |who: &str| -> Result<()> {
        let c1 = lab.capture_port(lab.router(1), "arp")?;
        let c2 = lab.capture_port(lab.router(2), "arp")?;
        let run = resolve_run(&lab, proxy, Duration::from_millis(500), &[(VMAC, "vmac")])?;
        let (f1, f2) = (c1.stop()?, c2.stop()?);
        let mut run = run;
        let matched = run.attribute(&[("r1", &f1), ("r2", &f2)]);
        println!("VMAC, {who} master: {matched} replies attributed by port");
        answered_only_by(&run, who, VMAC)
    };
    attributed("r1")?;

    let cap = lab.capture_port(lab.router(2), "arp")?;
    r1.kill()?;
    r2.wait_state(INSTANCE, "master", Duration::from_secs(5))?;
    // The entry must still name the VMAC once r2 has announced.
    wait_until(
        "r2's gratuitous ARP for the proxy address",
        FOLLOW,
        Duration::from_millis(10),
        || Ok(!garps(&read_pcap(cap.path())?, proxy4, VMAC).is_empty()),
    )?;
    let frames = cap.stop()?;
    ensure!(
        garps(&frames, proxy4, lab.router(2).mac).is_empty(),
        "r2 announced {PROXY4} with its own MAC in VMAC mode"
    );
    let after = neighbour(&lab, proxy)?;
    println!("VMAC after the failover: {after}");
    ensure!(
        after.contains(&format!("lladdr {}", mac_str(&VMAC))),
        "the client's entry left the VMAC: {after}"
    );
    attributed("r2")
}

/// Another station claims the proxy address with a gratuitous ARP (a stale router, a
/// misconfigured host): the master sees the conflict and announces the address again, so
/// the client is back on the master without asking, as it would be for a VIP.
#[test]
fn a_station_claiming_a_proxy_address_is_answered_by_a_fresh_announcement() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().attacker().build()?;
    let proxy: IpAddr = PROXY4.parse()?;
    let IpAddr::V4(proxy4) = proxy else {
        unreachable!()
    };
    let (r1, _r2) = pair(&lab, &format!("{VIP4}/24"), PROXY4, "")?;
    let m1 = lab.router(1).mac;
    client_route(&lab, proxy)?;
    resolve_by_stack(&lab, proxy, m1, "r1")?;
    // The takeover burst (5 rounds 10 ms apart) is long over: any later announcement is
    // the conflict's.
    std::thread::sleep(Duration::from_millis(200));

    let cap = lab.capture_port(lab.client(), "arp")?;
    let mark = r1.log_mark();
    let at = lab.attacker();
    let injector = lab.injector(at)?;
    let claimed = Instant::now();
    injector.send(&frames::garp(at.mac, proxy4.octets()))?;
    r1.wait_log(mark, "another station claims a VIP", Duration::from_secs(2))?;
    let back = wait_neighbour(&lab, proxy, m1, "r1 again");
    let frames = cap.stop()?;
    let theirs = garps(&frames, proxy4, at.mac);
    let ours = garps(&frames, proxy4, m1);
    println!(
        "{} gratuitous ARP(s) from the attacker, {} from r1 in the capture; client: {}",
        theirs.len(),
        ours.len(),
        neighbour(&lab, proxy)?
    );
    let Some(first_claim) = theirs.first() else {
        bail!("the attacker's gratuitous ARP never reached the client");
    };
    ensure!(
        ours.iter().any(|t| t > first_claim),
        "r1 did not announce {PROXY4} after the attacker claimed it\nr1 log:\n{}",
        r1.log()
    );
    back?;
    println!(
        "client back on r1 {:.0} ms after the claim",
        ms(claimed.elapsed())
    );
    Ok(())
}

// ---- IPv6 ----

/// The IPv6 equivalent: NS for the proxy address answered by the master's program alone,
/// no kernel holding it, and on a graceful stop the new master's unsolicited NA moves the
/// client's entry without the client asking.
#[test]
fn ipv6_proxy_address_is_answered_by_the_master_alone_and_moves_by_unsolicited_na() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let (vip, proxy): (IpAddr, IpAddr) = (VIP6.parse()?, PROXY6.parse()?);
    let IpAddr::V6(proxy6) = proxy else {
        unreachable!()
    };
    let (r1, r2) = pair(&lab, &format!("{VIP6}/64"), PROXY6, "")?;
    let (m1, m2) = (lab.router(1).mac, lab.router(2).mac);
    client_route(&lab, proxy)?;

    only_master_answers(&lab, proxy, (&r1, "r1"), &r2, m1)?;
    check_kernel(&lab, lab.router(1), vip, proxy, true)?;
    check_kernel(&lab, lab.router(2), vip, proxy, false)?;

    resolve_by_stack(&lab, proxy, m1, "r1")?;
    println!("before: {}", neighbour(&lab, proxy)?);
    let cap = lab.capture_port(lab.client(), "icmp6")?;
    let stopped = Instant::now();
    let wall_stopped = SystemTime::now();
    r1.stop()?;
    r2.wait_state(INSTANCE, "master", Duration::from_secs(5))?;
    wait_neighbour(&lab, proxy, m2, "r2")?;
    let moved = stopped.elapsed();
    let after = neighbour(&lab, proxy)?;
    let frames = cap.stop()?;
    let me = lab.client().mac;
    let unsolicited: Vec<&Frame> = frames
        .iter()
        .filter(|f| {
            f.at >= wall_stopped
                && matches!(f.kind(), Kind::NeighborAdvert { src_mac, dst_mac, target, target_mac, .. }
                    if src_mac == m2 && dst_mac == [0x33, 0x33, 0, 0, 0, 1]
                        && target == proxy6 && target_mac == Some(m2))
        })
        .collect();
    let asked = frames
        .iter()
        .filter(|f| {
            f.data.get(6..12) == Some(&me[..])
                && matches!(f.kind(), Kind::NeighborSolicit { target, .. } if target == proxy6)
        })
        .count();
    println!(
        "r1 stopped: the client's entry on r2 {:.0} ms later: {after}; r2 sent {} \
         unsolicited NAs for {PROXY6}, the client solicited {asked} times",
        ms(moved),
        unsolicited.len()
    );
    let Some(na) = unsolicited.first() else {
        bail!("no unsolicited NA from r2 for {PROXY6} reached the client");
    };
    // ICMPv6 right after a bare IPv6 header: the flags byte is the 5th of the message.
    let flags = na.data.get(14 + 40 + 4).copied().unwrap_or_default();
    ensure!(
        flags & 0x20 != 0 && flags & 0x40 == 0,
        "r2's unsolicited NA carries flags {flags:#04x}: want Override, not Solicited"
    );
    ensure!(
        asked == 0,
        "the client's stack solicited {PROXY6} {asked} times"
    );

    let run = resolve_run(&lab, proxy, Duration::from_millis(500), &[])?;
    answered_only_by(&run, "r2", m2)?;
    check_kernel(&lab, lab.router(2), vip, proxy, true)?;
    ensure!(
        !kernel_holds(&lab, lab.router(1), proxy)? && !kernel_holds(&lab, lab.router(1), vip)?,
        "stopped r1 left an address behind"
    );
    Ok(())
}
