//! Item 10: new flows per second through a load-balancing director, vipd's XDP
//! director against the kernel doing the same spread with nftables.
//!
//! ```text
//!   cl (trafgen: TCP SYNs to VIP:port, random source address and port)
//!    │  bridge
//!   r1 director ──► r2, r3, r4 (real servers; their eth0 rx counters are the figure)
//! ```
//!
//! Every frame is a SYN from a fresh (source address, source port), so every frame is a
//! new flow: the SYN rate the servers receive is the director's new-flow rate. Two
//! variants on the same lab with the same traffic, alternating, the order rotated every
//! repeat:
//! - `vipd`: vipd's XDP program on r1's eth0 with one DR service of three equal-weight
//!   servers (Maglev table, flow LRU), its maps written through `vipd::dataplane` from the
//!   same pure code the daemon uses (`vipd::lb::service`);
//! - `nftables`: no XDP on r1; the kernel forwards with
//!   `dnat to jhash ip saddr . tcp sport mod 3 map { … }` in prerouting (conntrack creates
//!   an entry per SYN, as it would for every new connection through such a director).
//!
//! The generator is trafgen in the client's namespace, bounded by a frame count and a
//! `timeout`; it shares the machine's CPUs with the path it measures, equally for both
//! variants. What reaches the servers is read from their eth0 counters over a window
//! that starts after a warm-up.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::json;
use vip_common::{GroupState, LEASE_FOREVER, VipKey, VipValue};
use vip_tests::lab::{Lab, Node};
use vipd::{
    dataplane::{Dataplane, ModePreference},
    lb::{
        health::Entry,
        service::{Method, NextHop, Protocol, Real, Service, entries, real_entry, table},
    },
};

use super::{
    Goal, Options, Section, retry_once,
    stats::{Summary, cell_opt, json_opt, paired_ratio},
};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
const PORT: u16 = 8080;
const SLOT: u32 = 7;
/// The SYNs' sources: 198.51.100.x, x random, with random ports.
const SRC_NET: [u8; 3] = [198, 51, 100];
/// No run sends more frames than this (trafgen's `-n`), and none runs longer than its
/// window and 2 s (`timeout -s KILL`), even if this process dies.
const MAX_FRAMES: u64 = 20_000_000;
const WARMUP: Duration = Duration::from_millis(500);
/// The goal's tolerance: vipd's median paired ratio must be at least this.
const GOAL_RATIO: f64 = 0.95;
/// A variant's spread is "even" when every server's share is within this of a third.
const SPREAD_TOLERANCE: f64 = 0.10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Vipd,
    Nftables,
}

const VARIANTS: [Variant; 2] = [Variant::Vipd, Variant::Nftables];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Vipd => "vipd",
            Variant::Nftables => "nftables",
        }
    }
}

#[derive(Clone, Debug)]
struct Run {
    variant: Variant,
    seconds: f64,
    sent: u64,
    /// Frames received by r2, r3, r4 in the window.
    per_server: [u64; 3],
}

impl Run {
    fn delivered(&self) -> u64 {
        self.per_server.iter().sum()
    }

    fn rate(&self) -> f64 {
        self.delivered() as f64 / self.seconds
    }

    fn sent_rate(&self) -> f64 {
        self.sent as f64 / self.seconds
    }

    /// The largest distance of a server's share from an equal third, as a fraction of
    /// all delivered frames.
    fn spread_error(&self) -> f64 {
        let all = self.delivered().max(1) as f64;
        self.per_server
            .iter()
            .map(|&n| (n as f64 / all - 1.0 / 3.0).abs())
            .fold(0.0, f64::max)
    }
}

pub fn run(opts: &Options) -> Result<Section> {
    let repeats = opts.repeats(5, 1);
    let duration = if opts.quick {
        Duration::from_millis(800)
    } else {
        Duration::from_secs(3)
    };
    let lab = Lab::builder().routers(4).client().build()?;
    let director = lab.router(1);
    let servers: Vec<&Node> = (2..=4).map(|i| lab.router(i)).collect();
    for s in &servers {
        for k in [
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
        ] {
            lab.exec(s, &["sysctl", "-qw", k])?;
        }
        lab.exec(s, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"])?;
    }
    // The kernel variant forwards out of the interface it received on: no redirects, and
    // the sources are not routable from r1 (nor from the servers: their answers die there).
    for k in [
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.eth0.rp_filter=0",
        "net.ipv4.conf.all.send_redirects=0",
        "net.ipv4.conf.eth0.send_redirects=0",
    ] {
        lab.exec(director, &["sysctl", "-qw", k])?;
    }
    // The servers' MACs are known to both variants before the first frame: the kernel
    // resolves them once, and vipd's table names them.
    for s in &servers {
        lab.exec(
            director,
            &["ping", "-c", "1", "-W", "1", &s.ipv4.to_string()],
        )?;
    }
    // trafgen's socket may hold this much in flight: with the default (~200 kB, a few
    // hundred frames) a busy path fills it and trafgen gives up with EAGAIN; past it,
    // full queues drop (ENOBUFS), which trafgen rides out.
    for k in ["net.core.wmem_default=4194304", "net.core.wmem_max=4194304"] {
        if let Err(e) = lab.exec(lab.client(), &["sysctl", "-qw", k]) {
            eprintln!("bench lb: {k}: {e:#}");
        }
    }
    let conf = lab.scratch("lb-rate")?.join("syn.trafgen");
    std::fs::write(&conf, trafgen_config(director.mac, lab.client().mac))?;

    let pin = lab.pin_dir()?;
    let eth0 = lab.in_node(director, || nix::net::if_::if_nametoindex("eth0"))??;
    let mut dp = lab.in_node(director, || Dataplane::open(&pin))??;
    program_service(&mut dp, director, &servers, eth0)?;

    let mut runs = Vec::new();
    let mut errors = Vec::new();
    // (retried, failed) runs, listed with the errors in the section.
    let mut tally = (0, 0);
    for repeat in 0..repeats {
        for k in 0..VARIANTS.len() {
            let variant = VARIANTS[(k + repeat) % VARIANTS.len()];
            match variant {
                Variant::Vipd => {
                    lab.in_node(director, || dp.attach("eth0", ModePreference::Native))??;
                }
                Variant::Nftables => nft_on(&lab, director, &servers)?,
            }
            let measured = retry_once(
                "lb",
                &format!("repeat {repeat} {}", variant.name()),
                &mut errors,
                &mut tally,
                || measure(&lab, &servers, &conf, duration),
            );
            match variant {
                Variant::Vipd => {
                    Dataplane::detach(&pin, "eth0")?;
                }
                Variant::Nftables => nft_off(&lab, director)?,
            }
            let Ok((seconds, sent, per_server)) = measured else {
                continue;
            };
            let r = Run {
                variant,
                seconds,
                sent,
                per_server,
            };
            eprintln!(
                "bench lb: repeat {repeat} {:<8} {:>7.0} kSYN/s delivered of {:>7.0} k sent, \
                 servers {:?}",
                variant.name(),
                r.rate() / 1e3,
                r.sent_rate() / 1e3,
                r.per_server
            );
            runs.push(r);
        }
    }
    let counters = dp.maps().counters()?;
    drop(dp);
    let _ = Dataplane::unpin_maps(&pin);
    Ok(section(
        &runs,
        duration,
        repeats,
        counters.lb_forward_dr,
        &errors,
    ))
}

/// The director's service: three DR servers of equal weight on r1's segment, the group
/// owned for good, as `lab_lb`'s data-plane test writes it.
fn program_service(
    dp: &mut Dataplane,
    director: &Node,
    servers: &[&Node],
    eth0: u32,
) -> Result<()> {
    let reals: Vec<Real> = servers
        .iter()
        .map(|s| Real {
            addr: IpAddr::V4(s.ipv4),
            port: PORT,
            weight: 1,
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
    let m = dp.maps_mut();
    m.add_vip(
        VipKey::v4(eth0, 0, VIP.octets()),
        VipValue {
            slot: SLOT,
            mac: director.mac,
            flags: 0,
        },
    )?;
    m.set_group(SLOT, GroupState::owned_until(LEASE_FOREVER))?;
    let ids: Vec<u16> = (0..reals.len() as u16).collect();
    for (i, (r, s)) in reals.iter().zip(servers).enumerate() {
        let hop = NextHop {
            ifindex: eth0,
            vlan: 0,
            mac: s.mac,
            src_mac: director.mac,
            src: IpAddr::V4(director.ipv4),
            mtu: 1500,
        };
        m.lb()
            .context("the load balancer's maps")?
            .set_real(i as u32, real_entry(0, r, &hop, 1, true))?;
    }
    let all: Vec<(Entry, u32)> = (0..reals.len()).map(|i| (Entry::Member(i), 1)).collect();
    let lb = m.lb().context("the load balancer's maps")?;
    lb.write_table(0, 0, &table(&svc, &all, &ids, None))?;
    for (k, v) in entries(std::slice::from_ref(&svc), &[0], &[0]) {
        lb.set_service(k, v)?;
    }
    Ok(())
}

const NFT_TABLE: &str = "vipd_bench_lb";

fn nft_on(lab: &Lab, director: &Node, servers: &[&Node]) -> Result<()> {
    let map = servers
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{i} : {}", s.ipv4))
        .collect::<Vec<_>>()
        .join(", ");
    let rules = format!(
        "table ip {NFT_TABLE} {{\n  chain pre {{\n    type nat hook prerouting priority dstnat; \
         policy accept;\n    ip daddr {VIP} tcp dport {PORT} dnat to jhash ip saddr . tcp sport \
         mod 3 map {{ {map} }}\n  }}\n}}\n"
    );
    let file = lab.scratch("lb-rate")?.join("nft.conf");
    std::fs::write(&file, rules)?;
    lab.exec(director, &["nft", "-f", file.to_str().context("path")?])?;
    Ok(())
}

fn nft_off(lab: &Lab, director: &Node) -> Result<()> {
    lab.exec(director, &["nft", "delete", "table", "ip", NFT_TABLE])?;
    // Each variant starts without the other's flows: the kernel's conntrack entries of
    // the previous run would otherwise count against the next one.
    let _ = lab.exec(director, &["conntrack", "-F"]);
    Ok(())
}

/// A SYN from 198.51.100.<random>:<random> to VIP:PORT, checksums filled per frame.
fn trafgen_config(dst: [u8; 6], src: [u8; 6]) -> String {
    let hex = |b: &[u8]| {
        b.iter()
            .map(|x| format!("0x{x:02x}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let [p0, p1] = PORT.to_be_bytes();
    format!(
        "{{\n  {}, {}, 0x08, 0x00,\n  \
         0x45, 0x00, 0x00, 0x28, drnd(2), 0x40, 0x00, 0x40, 0x06, csumip(14, 33),\n  \
         {}, drnd(1), {},\n  \
         drnd(2), 0x{p0:02x}, 0x{p1:02x}, drnd(4), 0x00, 0x00, 0x00, 0x00,\n  \
         0x50, 0x02, 0xfa, 0xf0, csumtcp(14, 34), 0x00, 0x00,\n}}\n",
        hex(&dst),
        hex(&src),
        hex(&SRC_NET),
        hex(&VIP.octets()),
    )
}

fn rx_packets(lab: &Lab, node: &Node, tx: bool) -> Result<u64> {
    let out = lab.exec(node, &["ip", "-s", "-j", "link", "show", "dev", "eth0"])?;
    let v: serde_json::Value = serde_json::from_str(&out).context("ip -s -j link")?;
    let dir = if tx { "tx" } else { "rx" };
    v[0]["stats64"][dir]["packets"]
        .as_u64()
        .with_context(|| format!("no {dir} packets in {out}"))
}

/// One run: trafgen for warm-up + `duration` (+ a margin it is killed at), counters read
/// at the window's ends. Returns (window seconds, frames sent in it, frames per server).
fn measure(
    lab: &Lab,
    servers: &[&Node],
    conf: &std::path::Path,
    duration: Duration,
) -> Result<(f64, u64, [u64; 3])> {
    let limit = (WARMUP + duration + Duration::from_secs(2))
        .as_secs()
        .max(1);
    let mut gen_proc = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.client().ns, "timeout", "-s", "KILL"])
        .arg(limit.to_string())
        .args(["trafgen", "-o", "eth0", "-q", "-P", "1", "-n"])
        .arg(MAX_FRAMES.to_string())
        .arg("-i")
        .arg(conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("start trafgen")?;
    let result = (|| {
        std::thread::sleep(WARMUP);
        let read = || -> Result<(u64, Vec<u64>)> {
            let sent = rx_packets(lab, lab.client(), true)?;
            let got = servers
                .iter()
                .map(|s| rx_packets(lab, s, false))
                .collect::<Result<Vec<_>>>()?;
            Ok((sent, got))
        };
        let (s0, r0) = read()?;
        let t0 = Instant::now();
        std::thread::sleep(duration);
        let (s1, r1) = read()?;
        let seconds = t0.elapsed().as_secs_f64();
        if let Ok(Some(status)) = gen_proc.try_wait() {
            bail!("trafgen ended early ({status})");
        }
        let mut per = [0u64; 3];
        for i in 0..3 {
            per[i] = r1[i].saturating_sub(r0[i]);
        }
        Ok((seconds, s1.saturating_sub(s0), per))
    })();
    // `timeout` leads a process group of its own (it and trafgen's processes): kill the
    // group, or trafgen would outlive it and hold stderr open.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(gen_proc.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let out = gen_proc.wait_with_output()?;
    if result.is_err() {
        eprintln!(
            "bench lb: trafgen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    result
}

fn section(
    runs: &[Run],
    duration: Duration,
    repeats: usize,
    forwarded: u64,
    errors: &[String],
) -> Section {
    let of = |v: Variant, f: &dyn Fn(&Run) -> f64| -> Vec<f64> {
        runs.iter().filter(|r| r.variant == v).map(f).collect()
    };
    let rate = |v| of(v, &|r| r.rate());
    let ratio = paired_ratio(&rate(Variant::Vipd), &rate(Variant::Nftables));
    let goal_text = format!(
        "director: vipd forwards new flows (TCP SYNs) at ≥ {GOAL_RATIO:.2}× the kernel's \
         nftables jhash DNAT rate (median of paired runs, same lab and generator)"
    );
    let mut goals = vec![match ratio {
        Some(r) => Goal::judged(
            goal_text,
            r.median >= GOAL_RATIO,
            format!("vipd / nftables {}", r.cell(2)),
        ),
        None => Goal::unjudged(goal_text, "a variant delivered nothing or did not run"),
    }];
    let spread_text = format!(
        "director: vipd spreads new flows over 3 equal servers within ±{:.0} % of all flows",
        SPREAD_TOLERANCE * 100.0
    );
    let spread = Summary::of(&of(Variant::Vipd, &|r| r.spread_error()));
    goals.push(match spread {
        Some(s) => Goal::judged(
            spread_text,
            s.max <= SPREAD_TOLERANCE,
            format!("worst share off a third by {:.1} %", s.max * 100.0),
        ),
        None => Goal::unjudged(spread_text, "vipd did not run"),
    });

    let mut md = format!(
        "trafgen in the client sends TCP SYNs to {VIP}:{PORT} from 198.51.100.x with random \
         source addresses and ports, as fast as it can on one CPU, for {:.1} s after a \
         {} ms warm-up; every SYN is a new flow, so SYNs/s at the servers is the \
         director's new-flow rate (and its packet rate). r1 directs to r2–r4: vipd's XDP \
         director (DR, Maglev, flow LRU) or the kernel with nftables `dnat to jhash ip \
         saddr . tcp sport mod 3 map {{…}}` (conntrack on). Counted at the servers' eth0; \
         {repeats} repeat(s), alternating. Generator and director share the machine's CPUs \
         alike in both variants.\n\n\
         | variant | delivered kSYN/s | sent kSYN/s | delivered / sent | worst share off ⅓ |\n\
         |---|---|---|---|---|\n",
        duration.as_secs_f64(),
        WARMUP.as_millis()
    );
    let mut json_variants = serde_json::Map::new();
    for v in VARIANTS {
        let d = Summary::of(&of(v, &|r| r.rate() / 1e3));
        let s = Summary::of(&of(v, &|r| r.sent_rate() / 1e3));
        let frac = Summary::of(&of(v, &|r| r.delivered() as f64 / r.sent.max(1) as f64));
        let sp = Summary::of(&of(v, &|r| r.spread_error() * 100.0));
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} % |\n",
            v.name(),
            cell_opt(d, 0),
            cell_opt(s, 0),
            cell_opt(frac, 2),
            cell_opt(sp, 1)
        ));
        json_variants.insert(
            v.name().into(),
            json!({
                "delivered_ksyn_per_s": json_opt(d),
                "sent_ksyn_per_s": json_opt(s),
                "delivered_fraction": json_opt(frac),
                "spread_error_percent": json_opt(sp),
                "per_server": runs.iter().filter(|r| r.variant == v)
                    .map(|r| r.per_server.to_vec()).collect::<Vec<_>>(),
            }),
        );
    }
    md.push_str(&format!(
        "\nvipd / nftables (paired): {}\n",
        cell_opt(ratio, 2)
    ));
    // Which bound the rate: when both variants delivered (nearly) all that was sent,
    // the generator was the limit, and the rate difference is the CPU each path's
    // per-frame cost left it on the shared CPUs, not frames the director dropped.
    let kept_up = |v: Variant| {
        runs.iter()
            .filter(|r| r.variant == v)
            .all(|r| r.delivered() as f64 >= 0.98 * r.sent as f64)
    };
    if !runs.is_empty() && kept_up(Variant::Vipd) && kept_up(Variant::Nftables) {
        md.push_str(
            "\nBoth directors delivered ≥ 98 % of what was sent in every run: the \
             generator, sharing the CPUs with the path, was the limit, and the rates differ \
             by the CPU each path's per-frame cost left it.\n",
        );
    }
    if !errors.is_empty() {
        md.push_str("\nRuns that failed (a failed run is retried once):\n\n");
        for e in errors {
            md.push_str(&format!("- {e}\n"));
        }
    }
    Section {
        id: "lb".into(),
        title: "10. Load-balancing director: new flows per second".into(),
        markdown: md,
        json: json!({
            "seconds_per_run": duration.as_secs_f64(),
            "repeats": repeats,
            "variants": json_variants,
            "ratio_vipd_over_nftables": json_opt(ratio),
            "lb_forward_dr": forwarded,
            "errors": errors,
        }),
        goals,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(variant: Variant, sent: u64, per_server: [u64; 3]) -> Run {
        Run {
            variant,
            seconds: 1.0,
            sent,
            per_server,
        }
    }

    #[test]
    fn spread_error_is_the_worst_share_off_a_third() {
        assert_eq!(run(Variant::Vipd, 300, [100, 100, 100]).spread_error(), 0.0);
        let r = run(Variant::Vipd, 300, [150, 75, 75]);
        assert!((r.spread_error() - (0.5 - 1.0 / 3.0)).abs() < 1e-9);
    }

    #[test]
    fn the_rate_goal_needs_the_baseline_and_states_its_tolerance() {
        let vipd_only = [run(Variant::Vipd, 300, [100, 100, 100])];
        let s = section(&vipd_only, Duration::from_secs(1), 1, 0, &[]);
        assert_eq!(s.goals[0].met, None, "no nftables run: not judged");
        assert!(s.goals[0].text.contains("0.95×"));
        let both = [
            run(Variant::Vipd, 300, [100, 100, 100]),
            run(Variant::Nftables, 400, [100, 100, 100]),
            run(Variant::Vipd, 300, [90, 100, 100]),
            run(Variant::Nftables, 300, [100, 100, 100]),
        ];
        let s = section(&both, Duration::from_secs(1), 2, 0, &[]);
        // Paired ratios 1.0 and 0.97: median 0.983 ≥ 0.95.
        assert_eq!(s.goals[0].met, Some(true), "{}", s.goals[0].detail);
        let slower = [
            run(Variant::Vipd, 300, [90, 90, 90]),
            run(Variant::Nftables, 300, [100, 100, 100]),
        ];
        let s = section(&slower, Duration::from_secs(1), 1, 0, &[]);
        assert_eq!(s.goals[0].met, Some(false), "0.90 < 0.95");
        assert_eq!(s.goals[1].met, Some(true), "even spread");
    }

    #[test]
    fn the_generator_config_is_a_syn_to_the_vip() {
        let c = trafgen_config([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        assert!(c.contains("0xc0, 0x00, 0x02, 0x50"), "{c}"); // 192.0.2.80
        assert!(c.contains("0x1f, 0x90"), "{c}"); // port 8080
        assert!(c.contains("0x50, 0x02"), "{c}"); // data offset 5, SYN
        assert!(c.contains("csumip(14, 33)") && c.contains("csumtcp(14, 34)"));
    }
}
