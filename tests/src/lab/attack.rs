//! Sending crafted frames from a lab node (the attacker, usually): spoofed or malformed
//! VRRP, ARP floods. Every flood is bounded in count and in time.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use vipd::{
    net::{PacketSender, frames},
    vrrp::{Advert, Interval},
};

use super::{Lab, Node, Proc, in_netns};

pub struct Injector {
    sender: PacketSender,
    pub mac: [u8; 6],
}

impl Lab {
    /// An AF_PACKET sender on `node`'s eth0.
    pub fn injector(&self, node: &Node) -> Result<Injector> {
        let ifname = node.ifname.clone();
        let sender = in_netns(&node.ns, move || -> Result<PacketSender> {
            let ifindex = nix::net::if_::if_nametoindex(ifname.as_str())
                .with_context(|| format!("no {ifname}"))?;
            Ok(PacketSender::open(ifindex)?)
        })??;
        Ok(Injector {
            sender,
            mac: node.mac,
        })
    }
}

impl Lab {
    /// Every core of each of `nodes` busy for `run_for`: `per_node` shell spinners each,
    /// bounded by `timeout` (and killed when the lab drops).
    pub fn spin_cpus(
        &self,
        nodes: &[&Node],
        per_node: usize,
        run_for: Duration,
    ) -> Result<Vec<Proc>> {
        let secs = run_for.as_secs().max(1).to_string();
        let mut spinners = Vec::new();
        for node in nodes {
            for _ in 0..per_node {
                spinners.push(
                    self.spawn(node, &["timeout", &secs, "sh", "-c", "while :; do :; done"])?,
                );
            }
        }
        Ok(spinners)
    }
}

/// The most frames any [`Lab::trafgen`] flood sends, whatever the caller asks.
pub const TRAFGEN_MAX_FRAMES: u64 = 200_000_000;
/// The longest any [`Lab::trafgen`] flood runs.
pub const TRAFGEN_MAX_TIME: Duration = Duration::from_secs(120);
/// How often a [`Lab::trafgen`] flood starts trafgen again after it gave up.
pub const TRAFGEN_RESTARTS: u32 = 50;
/// The CPU a [`Lab::trafgen`] flood runs on.
///
/// trafgen stands in for another host, but here it shares the machine: its `sendto()`
/// flushes its whole TX ring without a preemption point on this kernel
/// (`CONFIG_PREEMPT_NONE`), and a veth delivers in the sender's context, so the receive
/// path of every frame runs on its CPU too. A real-time daemon woken there waits for the
/// flush: one r1 on that CPU showed a 46.6 ms loop lag, twice its 10 ms pair's
/// Master_Down_Interval, and was charged 5-8 % of a core in softirq ticks, where on the
/// other CPU it used 0.7-0.9 % with a worst lag of 2.6 ms. A test measuring a daemon
/// under a flood keeps it off this CPU ([`super::process::keep_off_cpu`]).
pub const TRAFGEN_CPU: usize = 0;

impl Lab {
    /// Floods `frames` (in turn) out of `node`'s eth0 with trafgen (netsniff-ng) as fast
    /// as it sends, from one CPU ([`TRAFGEN_CPU`]), for at most `count` frames and
    /// `run_for`; returns the running flood (wait on it; it is killed when the lab
    /// drops). trafgen is told to leave the host's socket memory and IRQ affinity alone.
    ///
    /// Without its socket memory raised, trafgen gives up when the interface's queue
    /// refuses a burst ("Flushing TX_RING failed: Resource temporarily unavailable", exit
    /// status 1), which a fast flood into a veth does at random, after 0.4 s in one run: a
    /// failed trafgen is started again, at most `TRAFGEN_RESTARTS` times, all within
    /// `run_for`. One that ends well (its `count` sent, or the time up) is not.
    pub fn trafgen(
        &self,
        node: &Node,
        frames: &[Vec<u8>],
        count: u64,
        run_for: Duration,
    ) -> Result<Proc> {
        anyhow::ensure!(
            !frames.is_empty() && count <= TRAFGEN_MAX_FRAMES && run_for <= TRAFGEN_MAX_TIME,
            "trafgen flood out of bounds: {count} frames, {run_for:?}"
        );
        let cfg = self.scratch("trafgen")?.join(format!("{}.cfg", node.label));
        let text: String = frames
            .iter()
            .map(|f| {
                let bytes: Vec<String> = f.iter().map(|b| format!("0x{b:02x}")).collect();
                format!("{{ {} }}\n", bytes.join(", "))
            })
            .collect();
        std::fs::write(&cfg, text)?;
        let secs = format!("{}", run_for.as_secs_f64());
        let script = format!(
            "i=0; until taskset -c {TRAFGEN_CPU} trafgen -o {} -i {} -n {count} -P 1 \
             --no-sock-mem --notouch-irq; do \
             i=$((i+1)); [ $i -ge {TRAFGEN_RESTARTS} ] && exit 1; done",
            node.ifname,
            cfg.to_string_lossy()
        );
        // timeout signals its whole process group: trafgen stops and prints its counts,
        // and the shell around it ends.
        self.spawn(node, &["timeout", "-s", "INT", &secs, "sh", "-c", &script])
    }
}

impl Injector {
    /// Garbage aimed at a BFD pair for `run_for` at `pps`: random Control packets to
    /// `target` claiming to come from `claimed` (its session peer), Echo packets claiming
    /// either, and frames of random bytes, all to `target_mac`. Returns how many went out.
    pub fn bfd_garbage(
        &self,
        target_mac: [u8; 6],
        claimed: IpAddr,
        target: IpAddr,
        pps: u32,
        run_for: Duration,
    ) -> usize {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        self.flood(usize::MAX, pps, run_for, |i| {
            let r = rnd();
            let payload: Vec<u8> = (0..24 + (r % 40) as usize).map(|_| rnd() as u8).collect();
            let udp = |src, dst, port| {
                frames::udp(self.mac, target_mac, src, dst, (49200, port), &payload)
                    .unwrap_or_default()
            };
            match i % 4 {
                0 => udp(claimed, target, 3784),
                1 => udp(claimed, claimed, 3785),
                2 => udp(target, target, 3785),
                _ => {
                    let mut f = vec![0u8; 60 + (r % 200) as usize];
                    f.iter_mut().for_each(|b| *b = rnd() as u8);
                    f[..6].copy_from_slice(&target_mac);
                    f
                }
            }
        })
    }

    pub fn send(&self, frame: &[u8]) -> Result<()> {
        Ok(self.sender.send(frame)?)
    }

    /// Sends `make(i)` for `i` in `0..count`, at most `pps` per second (0: as fast as the
    /// socket takes them), giving up at `max`. Returns how many went out.
    pub fn flood(
        &self,
        count: usize,
        pps: u32,
        max: Duration,
        mut make: impl FnMut(usize) -> Vec<u8>,
    ) -> usize {
        let start = Instant::now();
        let mut sent = 0;
        while sent < count && start.elapsed() < max {
            if pps > 0 {
                let due = start + Duration::from_secs_f64(sent as f64 / pps as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            let frame = make(sent);
            match self.sender.send(&frame) {
                Ok(()) => sent += 1,
                // A full transmit queue: give it a moment rather than spin.
                Err(_) => std::thread::sleep(Duration::from_micros(50)),
            }
        }
        sent
    }
}

/// A VRRPv3 advertisement over IPv4 to 224.0.0.18, checksummed correctly, from any source
/// the attacker likes.
pub fn advert_v4(
    src_mac: [u8; 6],
    src: Ipv4Addr,
    vrid: u8,
    priority: u8,
    interval_centis: u16,
    vips: &[Ipv4Addr],
) -> Vec<u8> {
    let group = Ipv4Addr::new(224, 0, 0, 18);
    let advert = Advert::v3(
        vrid,
        priority,
        Interval::from_centis(interval_centis).expect("non-zero interval"),
        vips.iter().map(|a| (*a).into()).collect(),
    );
    let vrrp = advert
        .encode(src.into(), group.into())
        .expect("encodable advert");
    frames::vrrp_v4(
        src_mac,
        frames::ipv4_multicast_mac(group),
        src,
        group,
        1,
        &vrrp,
    )
}

/// A VRRPv2 advertisement over IPv4 with simple-text authentication `password` (empty:
/// auth type 0), checksummed correctly.
pub fn advert_v2(
    src_mac: [u8; 6],
    src: Ipv4Addr,
    vrid: u8,
    priority: u8,
    interval_secs: u8,
    vips: &[Ipv4Addr],
    password: &[u8],
) -> Vec<u8> {
    let group = Ipv4Addr::new(224, 0, 0, 18);
    let auth = if password.is_empty() {
        vipd::vrrp::packet::Auth::NONE
    } else {
        vipd::vrrp::packet::Auth::simple_text(password).expect("at most 8 bytes")
    };
    let advert = Advert::v2(
        vrid,
        priority,
        Interval::from_secs(interval_secs).expect("non-zero interval"),
        vips.iter().map(|a| (*a).into()).collect(),
        auth,
    );
    let vrrp = advert
        .encode(src.into(), group.into())
        .expect("encodable advert");
    frames::vrrp_v4(
        src_mac,
        frames::ipv4_multicast_mac(group),
        src,
        group,
        1,
        &vrrp,
    )
}

/// `frame` (an untagged IPv4 VRRPv3 advert from [`advert_v4`]) with its Max Adver Int
/// set to 0 and the checksum made right again, so only the zero interval is wrong (RFC
/// 5798 errata 8299 / 8301 say to discard it).
pub fn with_zero_interval(mut frame: Vec<u8>) -> Vec<u8> {
    const VRRP: usize = 14 + 20;
    frame[VRRP + 4] &= 0xf0;
    frame[VRRP + 5] = 0;
    frame[VRRP + 6] = 0;
    frame[VRRP + 7] = 0;
    let (src, dst) = (&frame[26..30], &frame[30..34]);
    let len = (frame.len() - VRRP) as u16;
    let pseudo = [src, dst, &[0, 112], &len.to_be_bytes()].concat();
    let sum = vipd::checksum::inet_checksum(&[&pseudo, &frame[VRRP..]]);
    frame[VRRP + 6..VRRP + 8].copy_from_slice(&sum.to_be_bytes());
    frame
}
