//! The daemon never reads VRRP it does not manage (issue 20): the classic BPF filter on
//! each raw VRRP socket, proven with the real kernel, and a 10 ms pair under a minute of
//! the fastest unknown-VRID flood the lab sends.

use std::{
    collections::BTreeSet,
    net::{Ipv4Addr, Ipv6Addr},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use socket2::{Domain, Protocol, Socket, Type};
use vip_tests::{
    frames::{Ext, with_ipv6_ext},
    lab::{
        Lab, Node, TRAFGEN_CPU, Vipd, advert_v4,
        process::{cpu_seconds, keep_off_cpu, user_cpu_seconds, wakeups},
        release_vipd,
    },
};
use vipd::{
    net::{VrrpSocket, frames, vrrp_filter, vrrp_socket::parse_ipv4},
    vrrp::{
        Family,
        listen::{Listen, Versions},
    },
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// A VRRP message whose priority byte carries `case`, so each receiver can say which of
/// the frames it got. Checksum and length are left wrong on purpose: the filter must not
/// care, and with no XDP program on the receiver nothing else checks them.
fn vrrp(ver_type: u8, vrid: u8, case: u8) -> Vec<u8> {
    vec![ver_type, vrid, case, 1, 0, 100, 0, 0, 192, 0, 2, 1]
}

/// A CARP-shaped message (version 2, type 1, 36 bytes) for `vhid`, `case` in the skew
/// byte.
fn carp(vhid: u8, case: u8) -> Vec<u8> {
    let mut m = vec![0x21, vhid, case, 0, 1, 1];
    m.resize(36, 0);
    m
}

/// An IPv4 frame to 224.0.0.18 with `options` (a multiple of 4 bytes) and the fragment
/// field `frag`, header checksum right.
fn ipv4(at: &Node, options: &[u8], frag: u16, ident: u16, payload: &[u8]) -> Vec<u8> {
    let ihl = 20 + options.len();
    let mut ip = vec![0x40 | (ihl / 4) as u8, 0xc0];
    ip.extend_from_slice(&((ihl + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&ident.to_be_bytes());
    ip.extend_from_slice(&frag.to_be_bytes());
    ip.extend_from_slice(&[255, 112, 0, 0]);
    ip.extend_from_slice(&at.ipv4.octets());
    ip.extend_from_slice(&GROUP_V4.octets());
    ip.extend_from_slice(options);
    let c = vipd::checksum::inet_checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = frames::ipv4_multicast_mac(GROUP_V4).to_vec();
    f.extend_from_slice(&at.mac);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(payload);
    f
}

/// The case number in a VRRP message as sent by [`vrrp`] (a 1-byte message is case 11).
fn case_of(msg: &[u8]) -> Option<u8> {
    match msg.len() {
        1 => Some(11),
        n if n >= 3 => Some(msg[2]),
        _ => None,
    }
}

/// Router Alert, the IPv4 option keepalived never sends but any router may add.
const ROUTER_ALERT: [u8; 4] = [0x94, 0x04, 0, 0];
const MF: u16 = 0x2000;

fn listen_v4() -> Listen {
    Listen {
        family: Family::Ipv4,
        vrids: [
            (
                51,
                Versions {
                    v2: false,
                    v3: true,
                    carp: false,
                },
            ),
            (
                52,
                Versions {
                    v2: true,
                    v3: false,
                    carp: false,
                },
            ),
            (
                200,
                Versions {
                    v2: true,
                    v3: true,
                    carp: false,
                },
            ),
        ]
        .into(),
    }
}

/// Reads what `socket` delivers until it stays quiet for 300 ms (at most 3 s).
fn drain_vrrp(rt: &tokio::runtime::Runtime, socket: &VrrpSocket) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        let got = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(300), socket.recv_batch(&mut buf, 64)).await
        });
        match got {
            Ok(Ok(batch)) => out.extend(batch.into_iter().map(|r| r.vrrp)),
            _ => break,
        }
    }
    out
}

/// Reads datagrams from a blocking socket with a read timeout until it stays quiet.
fn drain_plain(s: &Socket) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        match s.recv(&mut buf) {
            // SAFETY: recv initialised the first n bytes.
            Ok(n) => {
                out.push(unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), n) }.to_vec())
            }
            Err(_) => break,
        }
    }
    out
}

fn plain(domain: Domain, ty: Type, proto: i32) -> Result<Socket> {
    let s = Socket::new(domain, ty, Some(Protocol::from(proto)))?;
    s.set_read_timeout(Some(Duration::from_millis(300)))?;
    Ok(s)
}

#[test]
fn ipv4_socket_filter_admits_exactly_the_listened_vrids_and_versions_in_the_kernel() -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(1).attacker().build()?;
    let (r1, at) = (lab.router(1), lab.attacker());
    let attacker = lab.injector(at)?;
    let v3 = |vrid, case| vrrp(0x31, vrid, case);
    let v2 = |vrid, case| vrrp(0x21, vrid, case);
    let whole = |payload: &[u8], ident| ipv4(at, &[], 0, ident, payload);
    let mut sent = vec![
        whole(&v3(51, 1), 1),
        whole(&v2(51, 2), 2),
        whole(&v2(52, 3), 3),
        whole(&v3(52, 4), 4),
        whole(&v3(200, 5), 5),
        whole(&v2(200, 6), 6),
        whole(&v3(77, 7), 7),
        // Options: the VRRP header is where the IHL says, not at byte 20.
        ipv4(at, &ROUTER_ALERT, 0, 8, &v3(51, 8)),
        ipv4(at, &ROUTER_ALERT, 0, 9, &v3(77, 9)),
        // An advertisement is type 1; type 2 is not one.
        whole(&vrrp(0x32, 51, 10), 10),
        // Too short to hold a VRID.
        whole(&[0x31], 11),
    ];
    // Fragmented in two (8 bytes, then the rest at offset 1): the kernel reassembles
    // before raw delivery, then the filter judges the whole datagram by its VRID.
    for (vrid, case) in [(51, 12), (77, 13)] {
        let m = v3(vrid, case);
        sent.push(ipv4(at, &[], MF, 100 + case as u16, &m[..8]));
        sent.push(ipv4(at, &[], 1, 100 + case as u16, &m[8..]));
    }
    // Seen whole, or as lone fragments (never reassembled: only a packet socket sees
    // them, and there the filter refuses them).
    sent.push(whole(&v3(51, 21), 21));
    sent.push(ipv4(at, &[], MF, 22, &v3(51, 22)));
    sent.push(ipv4(at, &[], 1, 23, &v3(51, 23)));
    sent.push(whole(&v3(77, 24), 24));

    let ifname = r1.ifname.clone();
    let (filtered, control, packet) = lab.in_node(r1, || -> Result<_> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let ifindex = nix::net::if_::if_nametoindex(ifname.as_str())?;
        let socket = rt.block_on(async { VrrpSocket::open(&ifname, ifindex, false) })?;
        socket.listen(&listen_v4())?;
        let control = plain(Domain::IPV4, Type::RAW, 112)?;
        control.bind_device(Some(ifname.as_bytes()))?;
        // A packet socket sees the IPv4 header too, and fragments as they arrive.
        let packet = plain(
            Domain::PACKET,
            Type::DGRAM,
            (libc::ETH_P_IP as u16).to_be() as i32,
        )?;
        let program: Vec<_> = vrrp_filter::program(&listen_v4())?
            .into_iter()
            .map(|i| i.to_sock_filter())
            .collect();
        packet.attach_filter(&program)?;
        for f in &sent {
            attacker.send(f)?;
        }
        std::thread::sleep(Duration::from_millis(200));
        Ok((
            drain_vrrp(&rt, &socket),
            drain_plain(&control),
            drain_plain(&packet),
        ))
    })??;
    let cases =
        |msgs: Vec<Vec<u8>>| -> BTreeSet<u8> { msgs.iter().filter_map(|m| case_of(m)).collect() };
    let ip_cases = |pkts: Vec<Vec<u8>>| -> BTreeSet<u8> {
        pkts.iter()
            .filter(|p| p.len() > 9 && p[9] == 112 && p[12..16] == at.ipv4.octets())
            .filter_map(|p| parse_ipv4(p))
            .filter_map(|r| case_of(&r.vrrp))
            .collect()
    };
    let (filtered, control, packet) = (cases(filtered), ip_cases(control), ip_cases(packet));
    println!(
        "filtered raw socket: {filtered:?}\nunfiltered raw socket: {control:?}\npacket socket: {packet:?}"
    );
    // Everything reached the interface's raw sockets (lone fragments excepted), so what
    // the filtered socket misses, its filter refused.
    let all: BTreeSet<u8> = (1..=13).chain([21, 24]).collect();
    assert_eq!(control, all, "the unfiltered socket gets every datagram");
    assert_eq!(filtered, BTreeSet::from([1, 3, 5, 6, 8, 12, 21]));
    assert_eq!(
        packet,
        BTreeSet::from([1, 3, 5, 6, 8, 21]),
        "a fragment (More Fragments, or an offset) is refused"
    );
    Ok(())
}

#[test]
fn ipv6_socket_filter_reads_the_vrrp_message_after_any_extension_header() -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(1).attacker().build()?;
    let (r1, at) = (lab.router(1), lab.attacker());
    let attacker = lab.injector(at)?;
    let frame = |msg: &[u8]| {
        frames::vrrp_v6(
            at.mac,
            frames::ipv6_multicast_mac(GROUP_V6),
            at.ipv6,
            GROUP_V6,
            msg,
        )
    };
    let sent = [
        frame(&vrrp(0x31, 51, 1)),
        frame(&vrrp(0x31, 77, 2)),
        // VRRPv2 does not exist over IPv6.
        frame(&vrrp(0x21, 51, 3)),
        with_ipv6_ext(&frame(&vrrp(0x31, 51, 4)), &[Ext::HopByHop]),
        with_ipv6_ext(&frame(&vrrp(0x31, 77, 5)), &[Ext::DestOptions]),
        frame(&[0x31]),
        // A CARP advertisement (VRRPv2's first byte, 36 bytes) for CARP VHID 9 is read,
        // over IPv6 too.
        frame(&carp(9, 7)),
    ];
    let listen = Listen {
        family: Family::Ipv6,
        vrids: [
            (
                51,
                Versions {
                    v2: false,
                    v3: true,
                    carp: false,
                },
            ),
            (
                9,
                Versions {
                    v2: false,
                    v3: false,
                    carp: true,
                },
            ),
        ]
        .into(),
    };
    let ifname = r1.ifname.clone();
    let (filtered, control) = lab.in_node(r1, || -> Result<_> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let ifindex = nix::net::if_::if_nametoindex(ifname.as_str())?;
        let socket = rt.block_on(async { VrrpSocket::open(&ifname, ifindex, true) })?;
        socket.listen(&listen)?;
        let control = plain(Domain::IPV6, Type::RAW, 112)?;
        control.bind_device(Some(ifname.as_bytes()))?;
        for f in &sent {
            attacker.send(f)?;
        }
        std::thread::sleep(Duration::from_millis(200));
        Ok((drain_vrrp(&rt, &socket), drain_plain(&control)))
    })??;
    let cases = |msgs: Vec<Vec<u8>>| -> BTreeSet<u8> {
        msgs.iter()
            .filter_map(|m| match m.len() {
                1 => Some(6),
                n if n >= 3 => Some(m[2]),
                _ => None,
            })
            .collect()
    };
    let (filtered, control) = (cases(filtered), cases(control));
    println!("filtered: {filtered:?}; unfiltered: {control:?}");
    assert_eq!(control, BTreeSet::from([1, 2, 3, 4, 5, 6, 7]));
    assert_eq!(filtered, BTreeSet::from([1, 4, 7]));
    Ok(())
}

fn instance(priority: u8, interval: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\n\
         advert_interval = \"{interval}\"\nvips = [\"192.0.2.1/24\"]\n"
    )
}

fn transitions(v: &Vipd) -> Result<u64> {
    v.instance("gw")?["transitions"]
        .as_u64()
        .context("transitions")
}

/// The status entry of `v`'s IPv4 VRRP socket on eth0.
fn socket_status(v: &Vipd) -> Result<serde_json::Value> {
    let s = v.status()?;
    s["vrrp_sockets"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|x| x["interface"] == "eth0" && x["family"] == "ipv4")
                .cloned()
        })
        .context("no eth0 ipv4 socket in vipd status")
}

/// How long the flood runs, and the CPU the master's daemon may use over it.
const FLOOD: Duration = Duration::from_secs(60);
const CPU_LIMIT_PERCENT: f64 = 5.0;
/// How long the master's daemon is measured without the flood first.
const QUIET: Duration = Duration::from_secs(10);

#[test]
fn a_minute_of_the_fastest_unknown_vrid_flood_moves_nothing_and_is_never_read() -> Result<()> {
    vip_tests::require_root();
    // The optimised build: the limit is about the daemon operators run (the debug build
    // spends several times the CPU on its own 100 adverts a second).
    let vipd = release_vipd(Path::new(VIPD))?;
    let lab = Lab::builder().routers(2).client().attacker().build()?;
    let r1 = lab.vipd(&vipd, lab.router(1), &instance(200, "10ms"))?;
    let r2 = lab.vipd(&vipd, lab.router(2), &instance(100, "10ms"))?;
    r1.wait_state("gw", "master", Duration::from_secs(5))?;
    r2.wait_state("gw", "backup", Duration::from_secs(5))?;
    // Off the flood generator's CPU, as a router is off the attacker's (`TRAFGEN_CPU`).
    for v in [&r1, &r2] {
        keep_off_cpu(v.pid().context("a daemon's pid")?, TRAFGEN_CPU)?;
    }
    std::thread::sleep(Duration::from_millis(500));
    let at = lab.attacker();
    let before = (transitions(&r1)?, transitions(&r2)?);
    let pid = r1.pid().context("r1's pid")?;
    // What the master's daemon costs without the flood, for comparison.
    let (quiet0, quiet_user0, quiet_wake0, q0) = (
        cpu_seconds(pid),
        user_cpu_seconds(pid),
        wakeups(pid),
        Instant::now(),
    );
    std::thread::sleep(QUIET);
    let q = q0.elapsed().as_secs_f64();
    let quiet_wakeups = (wakeups(pid) - quiet_wake0) as f64 / q;
    let quiet_percent = (cpu_seconds(pid) - quiet0) / q * 100.0;
    let quiet_user_percent = (user_cpu_seconds(pid) - quiet_user0) / q * 100.0;
    let read_before = (
        socket_status(&r1)?["read"].as_u64().unwrap_or(0),
        socket_status(&r2)?["read"].as_u64().unwrap_or(0),
    );
    let foreign_before = (r1.xdp("vrrp_foreign")?, r2.xdp("vrrp_foreign")?);
    // Adverts for VRID 99, which nobody runs, as fast as trafgen sends from one CPU.
    let flood = advert_v4(at.mac, at.ipv4, 99, 254, 1, &[Ipv4Addr::new(192, 0, 2, 1)]);
    let (cpu0, user0, wake0, t0) = (
        cpu_seconds(pid),
        user_cpu_seconds(pid),
        wakeups(pid),
        Instant::now(),
    );
    let trafgen = lab.trafgen(at, &[flood], 150_000_000, FLOOD)?;
    trafgen.wait(FLOOD + Duration::from_secs(10))?;
    let (cpu, wall) = (cpu_seconds(pid) - cpu0, t0.elapsed().as_secs_f64());
    let cpu_percent = cpu / wall * 100.0;
    let user_percent = (user_cpu_seconds(pid) - user0) / wall * 100.0;
    let flood_wakeups = (wakeups(pid) - wake0) as f64 / wall;
    let after = (transitions(&r1)?, transitions(&r2)?);
    let foreign = (
        r1.xdp("vrrp_foreign")? - foreign_before.0,
        r2.xdp("vrrp_foreign")? - foreign_before.1,
    );
    let (s1, s2) = (socket_status(&r1)?, socket_status(&r2)?);
    let read = (
        s1["read"].as_u64().unwrap_or(0) - read_before.0,
        s2["read"].as_u64().unwrap_or(0) - read_before.1,
    );
    let text = r1.status_text()?;
    println!(
        "{wall:.1} s of unknown-VRID flood: r1 received {} ({:.0}/s), r2 {} ({:.0}/s); \
         r1's daemon used {cpu:.2} s CPU ({cpu_percent:.2} %; {quiet_percent:.2} % in the \
         {:.0} s before the flood); sockets read r1 {} r2 {} \
         (r2 reads r1's {:.0} adverts a second); transitions {before:?} -> {after:?}",
        foreign.0,
        foreign.0 as f64 / wall,
        foreign.1,
        foreign.1 as f64 / wall,
        QUIET.as_secs_f64(),
        read.0,
        read.1,
        read.1 as f64 / wall
    );
    println!(
        "r1's daemon in user space (its own code): {user_percent:.2} % of a core during the \
         flood, {quiet_user_percent:.2} % before it; woken {flood_wakeups:.0} times a second \
         during the flood, {quiet_wakeups:.0} before it"
    );
    println!("r1's vipd status:\n{text}");
    ensure!(
        after == before,
        "false transitions: {before:?} -> {after:?}"
    );
    ensure!(r1.state_of("gw")? == "master" && r2.state_of("gw")? == "backup");
    // The flood never wakes the daemon: it wakes as often as it did before (its own
    // timers and r2's adverts), within a margin for the scheduler. A daemon woken by the
    // flood would wake hundreds of thousands of times a second.
    ensure!(
        flood_wakeups <= quiet_wakeups * 1.25 + 20.0,
        "r1's daemon woke {flood_wakeups:.0} times a second during the flood, \
         {quiet_wakeups:.0} before it"
    );
    // What the daemon may spend while the flood runs, user and system time, with the
    // release build: 0.65-0.93 % at 283,000-311,000 frames a second. This kernel charges
    // a tick that lands in a softirq to the task it interrupted (no
    // CONFIG_IRQ_TIME_ACCOUNTING): on trafgen's own CPU, where the lab's sender also runs
    // the receive path, the same daemon was charged 4.95-8.06 %, hence `keep_off_cpu`
    // above. A daemon that read the flood used 35 % (before the socket filter), and the
    // debug build 5.33-5.80 % at 170,000: hence the release build.
    ensure!(
        cpu_percent < CPU_LIMIT_PERCENT,
        "r1's daemon used {cpu_percent:.2} % of a core ({user_percent:.2} % in user space; \
         {quiet_percent:.2} % and {quiet_user_percent:.2} % before the flood)"
    );
    // The whole minute was flooded (trafgen stops early if its socket refuses a frame).
    ensure!(
        wall >= FLOOD.as_secs_f64() * 0.95,
        "the flood lasted {wall:.1} s of {FLOOD:?}"
    );
    // Hundreds of thousands a second reached both routers, and neither daemon read one:
    // r1 (master) reads nothing, r2 only r1's adverts (100 a second, plus margin).
    ensure!(foreign.0 as f64 / wall > 50_000.0, "the flood reached r1");
    ensure!(read.0 < 50, "r1 read {} packets", read.0);
    ensure!(
        (read.1 as f64) < wall * 100.0 * 1.2,
        "r2 read {} packets",
        read.1
    );
    // What `vipd status` says about it.
    ensure!(
        text.contains("vrrp socket eth0 ipv4: reads vrids 51 (v2, v3)"),
        "{text}"
    );
    let shown: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "foreign vrrp (other VRIDs, refused by the socket filters, never read): ",
            )
        })
        .and_then(|n| n.trim().parse().ok())
        .context("the foreign VRRP line in vipd status")?;
    ensure!(
        shown >= foreign.0,
        "status shows {shown} foreign VRRP packets"
    );
    Ok(())
}

fn named(name: &str, interface: &str, vrid: u8, priority: u8, interval: &str, vip: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"{name}\"\ninterface = \"{interface}\"\nvrid = {vrid}\n\
         priority = {priority}\nadvert_interval = \"{interval}\"\nvips = [\"{vip}\"]\n\n"
    )
}

/// What `v`'s socket on `interface` (IPv4) reads, as `vipd status --json` says.
fn reads(v: &Vipd, interface: &str) -> Result<String> {
    let s = v.status()?;
    s["vrrp_sockets"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|x| x["interface"] == interface && x["family"] == "ipv4")
        })
        .and_then(|x| x["reads"].as_str().map(str::to_owned))
        .with_context(|| format!("no {interface} ipv4 socket in vipd status"))
}

#[test]
fn a_reload_changes_what_the_socket_reads() -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).build()?;
    let gw = |p| named("gw", "eth0", 51, p, "100ms", "192.0.2.1/24");
    let other = |p| named("other", "eth0", 52, p, "100ms", "192.0.2.2/24");
    let r1 = lab.vipd(Path::new(VIPD), lab.router(1), &gw(200))?;
    let r2 = lab.vipd(
        Path::new(VIPD),
        lab.router(2),
        &format!("{}{}", gw(100), other(200)),
    )?;
    r1.wait_state("gw", "master", Duration::from_secs(5))?;
    r2.wait_state("other", "master", Duration::from_secs(5))?;
    ensure!(reads(&r1, "eth0")? == "51 (v2, v3)");
    // VRID 52 joins r1: it hears r2 (200) only if its socket now reads 52, and stays
    // backup; a socket still refusing 52 would make it master after 360 ms of silence.
    r1.rewrite(&format!("{}{}", gw(200), other(100)))?;
    r1.signal(nix::sys::signal::Signal::SIGHUP)?;
    vip_tests::lab::wait_until(
        "r1 reads 51 and 52",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || Ok(reads(&r1, "eth0")? == "51 (v2, v3), 52 (v2, v3)"),
    )?;
    r1.wait_state("other", "backup", Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_secs(1));
    let i = r1.instance("other")?;
    ensure!(
        i["state"] == "backup" && i["transitions"].as_u64() == Some(1),
        "r1's instance for VRID 52 hears r2: {i}"
    );
    ensure!(i["adverts_received"].as_u64() >= Some(5), "{i}");
    // And VRID 51 leaves: the socket reads 52 alone.
    r1.rewrite(&other(100))?;
    r1.signal(nix::sys::signal::Signal::SIGHUP)?;
    vip_tests::lab::wait_until(
        "r1 reads 52 alone",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || Ok(reads(&r1, "eth0")? == "52 (v2, v3)"),
    )?;
    ensure!(r1.state_of("other")? == "backup");
    Ok(())
}

#[test]
fn a_flood_on_one_interface_never_drops_another_interfaces_adverts() -> Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).attacker().sync_link().build()?;
    let config = |p| {
        format!(
            "{}{}",
            named("lan", "eth0", 51, p, "10ms", "192.0.2.1/24"),
            named("link", "sync0", 52, p, "10ms", "203.0.113.6/29")
        )
    };
    let r1 = lab.vipd(Path::new(VIPD), lab.router(1), &config(200))?;
    let r2 = lab.vipd(Path::new(VIPD), lab.router(2), &config(100))?;
    for name in ["lan", "link"] {
        r1.wait_state(name, "master", Duration::from_secs(5))?;
        r2.wait_state(name, "backup", Duration::from_secs(5))?;
    }
    // Both CPUs stay the daemons' here, unlike in the unknown-VRID flood: they read every
    // one of these adverts, and kept on one CPU they hit its real-time limit (150-214 ms
    // loop lags, 90-100 moves of r2 in two runs, against 37 with both CPUs).
    std::thread::sleep(Duration::from_millis(500));
    let moves = |v: &Vipd, name: &str| -> Result<u64> {
        v.instance(name)?["transitions"]
            .as_u64()
            .context("transitions")
    };
    let socket = |v: &Vipd, interface: &str| -> Result<(u64, u64)> {
        let s = v.status()?;
        let x = s["vrrp_sockets"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["interface"] == interface).cloned())
            .with_context(|| format!("no {interface} socket"))?;
        Ok((
            x["read"].as_u64().unwrap_or(0),
            x["dropped"].as_u64().unwrap_or(0),
        ))
    };
    let before = (moves(&r1, "link")?, moves(&r2, "link")?);
    let lan_before = (moves(&r1, "lan")?, moves(&r2, "lan")?);
    let sent = || -> Result<u64> {
        r1.instance("link")?["adverts_sent"]
            .as_u64()
            .context("adverts_sent")
    };
    // r2's counts are read before r1's and after them: every advert r1 sent in between
    // had time to arrive.
    let (eth0_0, sync0_0) = (socket(&r2, "eth0")?, socket(&r2, "sync0")?);
    let sent_before = sent()?;
    // Valid adverts for the LAN's own VRID, priority 1, from the attacker: every router
    // must read and judge each one (no allowlist), as fast as trafgen sends them.
    let at = lab.attacker();
    let flood = advert_v4(at.mac, at.ipv4, 51, 1, 1, &[Ipv4Addr::new(192, 0, 2, 1)]);
    let t0 = Instant::now();
    lab.trafgen(at, &[flood], 20_000_000, Duration::from_secs(20))?
        .wait(Duration::from_secs(30))?;
    let wall = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let after = (moves(&r1, "link")?, moves(&r2, "link")?);
    let lan_after = (moves(&r1, "lan")?, moves(&r2, "lan")?);
    let sent_on_sync0 = sent()? - sent_before;
    let (eth0_1, sync0_1) = (socket(&r2, "eth0")?, socket(&r2, "sync0")?);
    let (eth0_read, eth0_dropped) = (eth0_1.0 - eth0_0.0, eth0_1.1 - eth0_0.1);
    let (sync0_read, sync0_dropped) = (sync0_1.0 - sync0_0.0, sync0_1.1 - sync0_0.1);
    println!(
        "{wall:.1} s of VRID 51 adverts on eth0: r2 read {eth0_read} ({:.0}/s) and the kernel \
         dropped {eth0_dropped} for a full queue there; on sync0 r1 sent {sent_on_sync0}, \
         r2 read {sync0_read} ({:.0}/s), dropped {sync0_dropped}; link transitions \
         {before:?} -> {after:?}, lan {lan_before:?} -> {lan_after:?}; worst loop lag r1 \
         {:.1} ms, r2 {:.1} ms",
        eth0_read as f64 / wall,
        sync0_read as f64 / wall,
        r1.status()?["loop_lag"]["worst_us"].as_f64().unwrap_or(0.0) / 1000.0,
        r2.status()?["loop_lag"]["worst_us"].as_f64().unwrap_or(0.0) / 1000.0
    );
    // The flood overflowed eth0's queue (else this proves nothing) ...
    ensure!(
        eth0_read as f64 / wall > 10_000.0 && eth0_dropped > 0,
        "the flood overflowed r2's eth0 queue"
    );
    // ... and r2 read every advert r1 sent on sync0 (one may be on the wire).
    ensure!(sync0_dropped == 0, "sync0's queue dropped {sync0_dropped}");
    ensure!(
        sync0_read + 1 >= sent_on_sync0,
        "r1 sent {sent_on_sync0} adverts on sync0, r2 read {sync0_read}"
    );
    // Transitions are printed, not judged. Both debug daemons read this flood at a full
    // core each, at SCHED_RR, on this 2-core machine, which trips the kernel's real-time
    // throttling (95 % of each second): when r2's instances moved, r1's loop had stalled
    // for about 50 ms (its worst loop lag), so r2 rightly heard its master go silent on
    // both links at once. That is CPU on the master, not r2's queues. A flood for a VRID
    // nobody runs is never read (see above) and does not get there.
    if eth0_dropped > 0 {
        ensure!(
            r2.log().contains("VRRP socket queue full"),
            "r2 logs the drops on eth0"
        );
    }
    Ok(())
}
