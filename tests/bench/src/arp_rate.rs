//! Item 1: ARP answers per second over one veth pair.
//!
//! ```text
//!   namespace vt<pid>x<n>-arp
//!   gen0 (generator: count, re-send) ◄──── answers ────  dut0 (variant under test)
//!                                    ──── requests ───►
//! ```
//!
//! The generator is an XDP program on `gen0` (`vipd_bench_gen`): a few ARP requests are
//! sent in from userspace, and from then on every answer that comes back is counted and
//! turned into the next request with `XDP_TX`, so the frames circle between the two
//! veths as fast as the path takes them and userspace is never the bottleneck. (The
//! kernel's live-frames generator, `BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`,
//! is refused with EPERM on the machines this project runs on.) Both ends run in the same
//! softirq, so every variant's rate includes the generator's own (fixed, small) cost per
//! frame: the ratios between variants are what the goals judge. On `dut0` one of four
//! variants runs, alternating, the order rotated every repeat:
//! - `responder`: vipd's XDP program with the VIP owned (lease forever);
//! - `bare`: the same ARP answer (same checks, trim and reply bytes) with no map, no
//!   counter, no lease: what the responder's bookkeeping costs;
//! - `kernel`: an XDP_PASS program and the VIP configured on `dut0`, so Linux answers;
//! - `ceiling`: a MAC-swap XDP_TX program, the least work that returns a frame.
//!
//! The rate is answers counted over the run's wall time. Every run is bounded in time and
//! frames by the generator itself (a deadline and a cap in its `BENCH_LOOP` map), so the
//! loop stops even if this process dies mid-run.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, PerCpuArray},
    programs::{Xdp, XdpMode},
};
use serde_json::json;
use vip_common::{GroupState, LEASE_FOREVER, VipKey, VipValue};
use vipd::{dataplane::Dataplane, net::PacketSender, objects};

use crate::objects as bench_objects;

use super::{
    Goal, Options, Section,
    stats::{Summary, cell_opt, json_opt, paired_ratio},
};
use vip_tests::{frames, lab::netns};

const GEN_IF: &str = "gen0";
const DUT_IF: &str = "dut0";
const GEN_MAC: [u8; 6] = [0x02, 0x76, 0x74, 0, 0, 0x64];
const DUT_MAC: [u8; 6] = [0x02, 0x76, 0x74, 0, 0, 0x01];
const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const ASKER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// Requests put into the loop when a run starts: enough to keep both ends busy.
const SEED: usize = 64;
/// Requests added every [`TOPUP_EVERY`]: the kernel variant drops some under load, and a
/// loop that ran dry would measure nothing. A few hundred a second, against millions.
const TOPUP: usize = 4;
const TOPUP_EVERY: Duration = Duration::from_millis(10);
/// No run sends more than this per CPU, whatever the duration: bounds the flood.
const MAX_FRAMES_PER_SECOND: f64 = 20e6;
/// The generator stops re-sending this long after a run's planned end even if nobody
/// tells it to (this process died).
const DEADLINE_MARGIN: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Responder,
    Bare,
    Kernel,
    Ceiling,
}

const VARIANTS: [Variant; 4] = [
    Variant::Responder,
    Variant::Bare,
    Variant::Kernel,
    Variant::Ceiling,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Responder => "responder",
            Variant::Bare => "bare",
            Variant::Kernel => "kernel",
            Variant::Ceiling => "ceiling",
        }
    }
}

/// One timed run of one variant.
#[derive(Clone, Debug)]
struct Run {
    variant: Variant,
    repeat: usize,
    seconds: f64,
    sent: u64,
    /// Frames that came back as the variant's answer (ARP replies; for the ceiling,
    /// any returned frame).
    answers: u64,
}

impl Run {
    fn answers_per_s(&self) -> f64 {
        self.answers as f64 / self.seconds
    }

    fn sent_per_s(&self) -> f64 {
        self.sent as f64 / self.seconds
    }
}

/// The namespace and pin directory; removed on drop.
struct Rig {
    ns: String,
    pin: std::path::PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = Dataplane::unpin_maps(&self.pin);
        let _ = std::fs::remove_dir_all(&self.pin);
        if let Err(e) = netns::delete(&self.ns) {
            eprintln!("bench arp: {e:#}");
        }
    }
}

pub fn run(opts: &Options) -> Result<Section> {
    let repeats = opts.repeats(5, 1);
    let duration = if opts.quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(2)
    };
    vip_tests::lab::sweep_dead_labs();
    let prefix = super::scratch_prefix();
    let rig = Rig {
        ns: format!("{prefix}-arp"),
        pin: std::path::Path::new(vip_tests::lab::BPF_ROOT).join(&prefix),
    };
    netns::add(&rig.ns)?;
    let ns = rig.ns.as_str();
    // Nothing but the generated frames on the link: no router solicitations, no MLD.
    netns::sysctl(
        ns,
        &[
            ("net.ipv6.conf.all.disable_ipv6", "1"),
            ("net.ipv6.conf.default.disable_ipv6", "1"),
        ],
    )?;
    netns::ip(
        ns,
        &[
            "link", "add", GEN_IF, "type", "veth", "peer", "name", DUT_IF,
        ],
    )?;
    netns::ip(ns, &["link", "set", GEN_IF, "address", &mac(&GEN_MAC)])?;
    netns::ip(ns, &["link", "set", DUT_IF, "address", &mac(&DUT_MAC)])?;
    netns::ip(ns, &["link", "set", GEN_IF, "up"])?;
    netns::ip(ns, &["link", "set", DUT_IF, "up"])?;
    let (gen_ifindex, dut_ifindex) = netns::in_netns(ns, || (ifindex(GEN_IF), ifindex(DUT_IF)))?;
    let (gen_ifindex, dut_ifindex) = (gen_ifindex?, dut_ifindex?);

    let mut gen_obj = Ebpf::load(bench_objects::GENERATOR).context("load the generator")?;
    let request = template();
    {
        let mut t: Array<_, [u8; 64]> = Array::try_from(
            gen_obj
                .map_mut(bench_objects::TEMPLATE_MAP)
                .context("template map")?,
        )?;
        let mut bytes = [0u8; 64];
        bytes[..request.len()].copy_from_slice(&request);
        t.set(0, bytes, 0)?;
    }
    xdp(&mut gen_obj, bench_objects::GENERATOR_PROGRAM)?.load()?;
    netns::in_netns(ns, || -> Result<()> {
        xdp(&mut gen_obj, bench_objects::GENERATOR_PROGRAM)?
            .attach(GEN_IF, XdpMode::Driver)
            .context("attach the generator to gen0")?;
        Ok(())
    })??;
    let seeder = netns::in_netns(ns, move || PacketSender::open(gen_ifindex))?
        .context("an AF_PACKET socket on gen0")?;

    // The variants, loaded once and attached in turn.
    let mut dp = Dataplane::open(&rig.pin).context("load the responder")?;
    dp.maps_mut().add_vip(
        VipKey::v4(dut_ifindex, 0, VIP.octets()),
        VipValue {
            slot: 0,
            mac: DUT_MAC,
            flags: 0,
        },
    )?;
    dp.maps_mut()
        .set_group(0, GroupState::owned_until(LEASE_FOREVER))?;
    let mut pass = Ebpf::load(objects::PASS)?;
    xdp(&mut pass, vip_common::programs::PASS)?.load()?;
    let mac_words: [u16; 3] = [
        u16::from_ne_bytes([DUT_MAC[0], DUT_MAC[1]]),
        u16::from_ne_bytes([DUT_MAC[2], DUT_MAC[3]]),
        u16::from_ne_bytes([DUT_MAC[4], DUT_MAC[5]]),
    ];
    let mut bare = EbpfLoader::new()
        .override_global(
            bench_objects::BARE_VIP,
            &u32::from_ne_bytes(VIP.octets()),
            true,
        )
        .override_global(bench_objects::BARE_MAC, &mac_words, true)
        .load(bench_objects::BARE)
        .context("load the bare responder")?;
    xdp(&mut bare, bench_objects::BARE_PROGRAM)?.load()?;
    let mut swap = Ebpf::load(bench_objects::MAC_SWAP)?;
    xdp(&mut swap, bench_objects::MAC_SWAP_PROGRAM)?.load()?;

    let mut runs = Vec::new();
    let mut prog_ns: Vec<(Variant, f64)> = Vec::new();
    for repeat in 0..repeats {
        for k in 0..VARIANTS.len() {
            let variant = VARIANTS[(k + repeat) % VARIANTS.len()];
            let prog: &mut Xdp = match variant {
                Variant::Responder => dp.responder()?,
                Variant::Bare => xdp(&mut bare, bench_objects::BARE_PROGRAM)?,
                Variant::Kernel => xdp(&mut pass, vip_common::programs::PASS)?,
                Variant::Ceiling => xdp(&mut swap, bench_objects::MAC_SWAP_PROGRAM)?,
            };
            if variant == Variant::Kernel {
                netns::ip(ns, &["addr", "add", &format!("{VIP}/24"), "dev", DUT_IF])?;
            }
            let link = netns::in_netns(ns, || prog.attach(DUT_IF, XdpMode::Driver))?
                .with_context(|| format!("attach {} to {DUT_IF}", variant.name()))?;
            let measured = measure(&mut gen_obj, &seeder, &request, duration, variant);
            // The program's own time per frame, from the kernel's run-time statistics, in
            // a pass of its own: keeping them on adds two clock reads to every run of
            // every program, which would flatten the rates above.
            if variant != Variant::Kernel && measured.is_ok() {
                match program_ns(prog, || {
                    measure(&mut gen_obj, &seeder, &request, duration / 2, variant)
                }) {
                    Ok(ns) => prog_ns.push((variant, ns)),
                    Err(e) => eprintln!("bench arp: run-time statistics: {e:#}"),
                }
            }
            prog.detach(link)?;
            if variant == Variant::Kernel {
                netns::ip(ns, &["addr", "del", &format!("{VIP}/24"), "dev", DUT_IF])?;
            }
            let (seconds, sent, answers) = measured?;
            let r = Run {
                variant,
                repeat,
                seconds,
                sent,
                answers,
            };
            eprintln!(
                "bench arp: repeat {repeat} {:<9} {:>6.2} Mpps answered, {:>6.2} Mpps sent",
                variant.name(),
                r.answers_per_s() / 1e6,
                r.sent_per_s() / 1e6
            );
            runs.push(r);
        }
    }
    drop(dp);
    Ok(section(&runs, &prog_ns, duration, repeats))
}

/// Mean ns per run of `prog` while `load` runs, from `run_time_ns / run_cnt` with the
/// kernel's BPF run-time statistics switched on for the duration (`BPF_ENABLE_STATS`, off
/// again when its descriptor closes).
fn program_ns(prog: &Xdp, load: impl FnOnce() -> Result<(f64, u64, u64)>) -> Result<f64> {
    let stats = aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .context("BPF_ENABLE_STATS (kernel.bpf_stats_enabled)")?;
    let before = prog.info()?;
    load()?;
    let after = prog.info()?;
    drop(stats);
    let runs = after.run_count().saturating_sub(before.run_count());
    if runs == 0 {
        bail!("the program did not run");
    }
    Ok((after.run_time() - before.run_time()).as_nanos() as f64 / runs as f64)
}

/// Runs the loop for `duration`; returns (seconds, frames sent, answers counted).
fn measure(
    gen_obj: &mut Ebpf,
    seeder: &PacketSender,
    request: &[u8],
    duration: Duration,
    variant: Variant,
) -> Result<(f64, u64, u64)> {
    // The generator compares the cap with its per-CPU count of frames sent, which runs on
    // across runs: the run's allowance goes on top of the count it starts from (a cap of
    // the allowance alone stopped every run after the first few at 10 Mpps).
    let cap = most_sent_per_cpu(gen_obj)? + (duration.as_secs_f64() * MAX_FRAMES_PER_SECOND) as u64;
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)?;
    let now_ns = now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64;
    let deadline = now_ns + (duration + DEADLINE_MARGIN).as_nanos() as u64;
    set_loop(gen_obj, deadline, cap)?;
    let before = sink(gen_obj)?;
    let t0 = Instant::now();
    let mut seeded = 0u64;
    let mut seed = |n: usize| {
        for _ in 0..n {
            // A full transmit queue refuses a seed: the loop is busy enough.
            if seeder.send(request).is_ok() {
                seeded += 1;
            }
        }
    };
    seed(SEED);
    while let Some(left) = duration.checked_sub(t0.elapsed()) {
        std::thread::sleep(left.min(TOPUP_EVERY));
        if t0.elapsed() < duration {
            seed(TOPUP);
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    set_loop(gen_obj, 0, 0)?;
    // Frames still in the rings land within microseconds.
    std::thread::sleep(Duration::from_millis(20));
    let after = sink(gen_obj)?;
    let d = |i: usize| after[i] - before[i];
    let sent = d(bench_objects::SINK_SENT) + seeded;
    let answers = match variant {
        Variant::Responder | Variant::Bare | Variant::Kernel => d(bench_objects::SINK_ARP_REPLY),
        Variant::Ceiling => d(bench_objects::SINK_ARP_REPLY) + d(bench_objects::SINK_ARP_OTHER),
    };
    if answers == 0 {
        bail!("{} answered nothing ({sent} requests sent)", variant.name());
    }
    Ok((seconds, sent, answers))
}

/// Sets the generator's deadline (`CLOCK_MONOTONIC` ns) and per-CPU cap (a count of frames
/// sent, see `measure`); `(0, 0)` stops it.
fn set_loop(gen_obj: &mut Ebpf, deadline_ns: u64, cap: u64) -> Result<()> {
    let mut m: Array<_, u64> = Array::try_from(
        gen_obj
            .map_mut(bench_objects::LOOP_MAP)
            .context("loop map")?,
    )?;
    // The cap first when starting and the deadline first when stopping: never a moment
    // with a live deadline and a stale cap.
    if deadline_ns == 0 {
        m.set(0, 0, 0)?;
        m.set(1, 0, 0)?;
    } else {
        m.set(1, cap, 0)?;
        m.set(0, deadline_ns, 0)?;
    }
    Ok(())
}

/// The highest per-CPU count of requests the generator has sent so far.
fn most_sent_per_cpu(gen_obj: &Ebpf) -> Result<u64> {
    let m: PerCpuArray<_, [u64; 4]> =
        PerCpuArray::try_from(gen_obj.map(bench_objects::SINK_MAP).context("sink map")?)?;
    Ok(m.get(&0, 0)?
        .iter()
        .map(|c| c[bench_objects::SINK_SENT])
        .max()
        .unwrap_or(0))
}

/// Sink counters summed over CPUs.
fn sink(gen_obj: &Ebpf) -> Result<[u64; 4]> {
    let m: PerCpuArray<_, [u64; 4]> =
        PerCpuArray::try_from(gen_obj.map(bench_objects::SINK_MAP).context("sink map")?)?;
    let mut total = [0u64; 4];
    for cpu in m.get(&0, 0)?.iter() {
        for (t, v) in total.iter_mut().zip(cpu) {
            *t += v;
        }
    }
    Ok(total)
}

/// The ARP request the generator sends, padded to 60 bytes as on the wire.
fn template() -> Vec<u8> {
    let mut f = frames::arp_request(GEN_MAC, ASKER.octets(), VIP.octets());
    f.resize(bench_objects::FRAME_LEN, 0);
    f
}

fn xdp<'a>(obj: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    Ok(obj
        .program_mut(name)
        .with_context(|| format!("program {name}"))?
        .try_into()?)
}

fn ifindex(name: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(name).with_context(|| format!("no interface {name}"))
}

fn mac(m: &[u8; 6]) -> String {
    vip_tests::lab::mac_str(m)
}

fn section(
    runs: &[Run],
    prog_ns: &[(Variant, f64)],
    duration: Duration,
    repeats: usize,
) -> Section {
    let own_ns = |v: Variant| {
        Summary::of(
            &prog_ns
                .iter()
                .filter(|(w, _)| *w == v)
                .map(|(_, n)| *n)
                .collect::<Vec<_>>(),
        )
    };
    let rates = |v: Variant| -> Vec<f64> {
        runs.iter()
            .filter(|r| r.variant == v)
            .map(Run::answers_per_s)
            .collect()
    };
    let sent = |v: Variant| -> Vec<f64> {
        runs.iter()
            .filter(|r| r.variant == v)
            .map(Run::sent_per_s)
            .collect()
    };
    let (resp, bare, kern, ceil) = (
        rates(Variant::Responder),
        rates(Variant::Bare),
        rates(Variant::Kernel),
        rates(Variant::Ceiling),
    );
    let vs_kernel = paired_ratio(&resp, &kern);
    let vs_ceiling = paired_ratio(&resp, &ceil);
    let vs_bare = paired_ratio(&resp, &bare);
    let bare_vs_ceiling = paired_ratio(&bare, &ceil);
    let pct = |s: Option<Summary>| {
        s.map(|s| Summary {
            min: s.min * 100.0,
            median: s.median * 100.0,
            max: s.max * 100.0,
            n: s.n,
        })
    };
    let mpps = |v: &[f64]| Summary::of(&v.iter().map(|x| x / 1e6).collect::<Vec<_>>());

    let mut md = String::new();
    md.push_str(&format!(
        "ARP requests for the VIP circling between a veth pair: an XDP generator on one end \
         turns every answer into the next request, for {:.1} s per run, {repeats} repeat(s), variants alternating (order rotated each \
         repeat). Answers are counted by the generator as they come back; every rate includes \
         the generator's own cost per frame (same for all variants). Mpps, median \
         (min–max).\n\n",
        duration.as_secs_f64()
    ));
    md.push_str(
        "| variant on the answering veth | answers (Mpps) | offered (Mpps) | program ns/frame |\n\
         |---|---|---|---|\n",
    );
    for (v, label) in [
        (Variant::Responder, "vipd XDP responder (VIP owned)"),
        (
            Variant::Bare,
            "bare responder: same answer, no maps or counters",
        ),
        (Variant::Kernel, "kernel (XDP_PASS, VIP on the interface)"),
        (Variant::Ceiling, "ceiling: MAC-swap XDP_TX"),
    ] {
        md.push_str(&format!(
            "| {label} | {} | {} | {} |\n",
            cell_opt(mpps(&rates(v)), 2),
            cell_opt(mpps(&sent(v)), 2),
            if v == Variant::Kernel {
                "–".to_string()
            } else {
                cell_opt(own_ns(v), 1)
            }
        ));
    }
    md.push_str(
        "\n*program ns/frame*: the program's own run time per frame (`run_time_ns / run_cnt` \
         with BPF run-time statistics on, in a separate half-length pass per repeat: the \
         statistics add two clock reads per run, so the rates are taken without them).\n",
    );
    md.push_str(&format!(
        "\n| ratio (paired per repeat) | value |\n|---|---|\n\
         | responder / kernel | {}× |\n| responder / bare responder | {} % |\n\
         | responder / ceiling | {} % |\n| bare responder / ceiling | {} % |\n",
        cell_opt(vs_kernel, 2),
        cell_opt(pct(vs_bare), 1),
        cell_opt(pct(vs_ceiling), 1),
        cell_opt(pct(bare_vs_ceiling), 1),
    ));
    // The program's own time per reply against the bare responder's, both from the
    // run-time statistics of the same run (which add the same constant to each).
    let cost_vs_bare = match (own_ns(Variant::Responder), own_ns(Variant::Bare)) {
        (Some(r), Some(b)) if b.median > 0.0 => Some(r.median / b.median),
        _ => None,
    };
    let goals = vec![
        match cost_vs_bare {
            Some(x) => Goal::judged(
                "ARP: responder's program time per reply ≤ 1.3× the bare responder's",
                x <= 1.3,
                format!("{x:.2}× (medians of the run-time statistics passes)"),
            ),
            None => Goal::unjudged(
                "ARP: responder's program time per reply ≤ 1.3× the bare responder's",
                "no run-time statistics for both programs",
            ),
        },
        match vs_kernel {
            Some(r) => Goal::judged(
                "ARP: responder ≥ 6× the kernel",
                r.median >= 6.0,
                format!("median {:.2}×", r.median),
            ),
            None => Goal::unjudged("ARP: responder ≥ 6× the kernel", "no paired runs"),
        },
        match vs_ceiling {
            Some(r) => Goal::judged(
                "ARP: responder ≥ 90 % of the MAC-swap ceiling",
                r.median >= 0.9,
                format!("median {:.1} %", r.median * 100.0),
            ),
            None => Goal::unjudged("ARP: responder ≥ 90 % of the ceiling", "no paired runs"),
        },
        match vs_bare {
            Some(r) => Goal::judged(
                "ARP: responder ≥ 95 % of the bare responder",
                r.median >= 0.95,
                format!("median {:.1} %", r.median * 100.0),
            ),
            None => Goal::unjudged(
                "ARP: responder ≥ 95 % of the bare responder",
                "no paired runs",
            ),
        },
    ];
    let json = json!({
        "duration_s": duration.as_secs_f64(),
        "repeats": repeats,
        "frame_bytes": bench_objects::FRAME_LEN,
        "answers_per_s": {
            "responder": json_opt(Summary::of(&resp)),
            "bare": json_opt(Summary::of(&bare)),
            "kernel": json_opt(Summary::of(&kern)),
            "ceiling": json_opt(Summary::of(&ceil)),
        },
        "program_ns_per_frame": {
            "responder": json_opt(own_ns(Variant::Responder)),
            "bare": json_opt(own_ns(Variant::Bare)),
            "ceiling": json_opt(own_ns(Variant::Ceiling)),
        },
        "ratio": {
            "program_ns_responder_over_bare": cost_vs_bare,
            "responder_over_kernel": json_opt(vs_kernel),
            "responder_over_ceiling": json_opt(vs_ceiling),
            "responder_over_bare": json_opt(vs_bare),
            "bare_over_ceiling": json_opt(bare_vs_ceiling),
        },
        "runs": runs.iter().map(|r| json!({
            "variant": r.variant.name(), "repeat": r.repeat, "seconds": r.seconds,
            "sent": r.sent, "answers": r.answers,
            "answers_per_s": r.answers_per_s(), "sent_per_s": r.sent_per_s(),
        })).collect::<Vec<_>>(),
    });
    Section {
        id: "arp".into(),
        title: "1. ARP answer rate".into(),
        markdown: md,
        json,
        goals,
        ..Default::default()
    }
}
