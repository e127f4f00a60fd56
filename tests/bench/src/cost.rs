//! Item 2: what one frame costs the responder, from `BPF_PROG_TEST_RUN`.
//!
//! Two ways to time, because `repeat` runs the program again and again on the *same*
//! buffer: a frame the program leaves untouched (every drop, VRRP pass) can be timed with
//! `repeat` (the kernel's mean over the whole loop); a frame the program rewrites into a
//! reply (ARP, NS) would be a reply from the second run on, so it can only be timed one
//! run per call: the median of many calls minus the same figure for an empty XDP_PASS
//! program (the timer and dispatch overhead a single run carries). Every frame gets the
//! single-run figure too, so the replies compare with the drops in one column.
//! Before timing, every frame is run once and must give its verdict and move exactly its
//! own counter, so each row measures the path it names.

use std::net::Ipv4Addr;

use anyhow::{Context, Result, bail};
use aya::{Ebpf, TestRun as _, TestRunOptions, programs::Xdp};
use serde_json::json;
use vip_common::{
    Counters, FAMILY_IPV4, GroupState, LEASE_FOREVER, POLICY_F_ALLOWLIST, Policy, PolicyKey,
    VipKey, VipValue,
};
use vipd::objects;

use super::{
    Options, Section,
    stats::{Summary, cell_opt, json_opt},
};
use vip_tests::{
    frames,
    wire::{VRRP_OFF, advert_v3, fix_ip_checksum},
    xdp::{Responder, TEST_IFINDEX, XDP_DROP, XDP_PASS, XDP_TX},
};

const CLIENT_MAC: [u8; 6] = [0x02, 0xc1, 0, 0, 0, 0x64];
const CLIENT_IP: [u8; 4] = [192, 0, 2, 100];
const CLIENT_IP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const ROUTER_MAC: [u8; 6] = [0x02, 0x76, 0x74, 0, 0, 0x0b];
/// Another station claiming the VIP.
const CLAIMANT_MAC: [u8; 6] = [0x02, 0x76, 0x74, 0, 0, 0x0c];
const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 12);
const VIP: [u8; 4] = [192, 0, 2, 1];
const VIP_NOT_OWNED: [u8; 4] = [192, 0, 2, 2];
const VIP_LAPSED: [u8; 4] = [192, 0, 2, 3];
const VIP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

struct Case {
    name: &'static str,
    frame: Vec<u8>,
    verdict: u32,
    /// The one counter this frame moves.
    counter: &'static str,
}

fn cases() -> Vec<Case> {
    let pad = |mut f: Vec<u8>| {
        f.resize(f.len().max(60), 0);
        f
    };
    let advert = |vrid: u8| advert_v3(ROUTER_MAC, PEER, vrid, 150, 100, &[Ipv4Addr::from(VIP)]);
    let tweak = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut a = advert(51);
        f(&mut a);
        a
    };
    let case = |name, frame, verdict, counter| Case {
        name,
        frame,
        verdict,
        counter,
    };
    vec![
        case(
            "ARP reply",
            pad(frames::arp_request(CLIENT_MAC, CLIENT_IP, VIP)),
            XDP_TX,
            "arp_reply",
        ),
        case(
            "NS reply",
            frames::neighbor_solicitation(CLIENT_MAC, CLIENT_IP6, VIP6),
            XDP_TX,
            "ns_reply",
        ),
        case("VRRP pass", pad(advert(51)), XDP_PASS, "vrrp_pass"),
        // Recorded in CONFLICTS on the first run, counted in place from then on (a flood of
        // claims costs no map lock).
        case(
            "pass: conflict_seen",
            pad(frames::garp(CLAIMANT_MAC, VIP)),
            XDP_PASS,
            "conflict_seen",
        ),
        case(
            "drop: vip_not_owned",
            pad(frames::arp_request(CLIENT_MAC, CLIENT_IP, VIP_NOT_OWNED)),
            XDP_DROP,
            "vip_not_owned",
        ),
        case(
            "drop: lease_expired",
            pad(frames::arp_request(CLIENT_MAC, CLIENT_IP, VIP_LAPSED)),
            XDP_DROP,
            "lease_expired",
        ),
        case(
            "drop: vrrp_drop_ttl",
            tweak(&|f| {
                f[22] = 254;
                fix_ip_checksum(f);
            }),
            XDP_DROP,
            "vrrp_drop_ttl",
        ),
        case(
            "drop: vrrp_drop_version",
            tweak(&|f| f[VRRP_OFF] = 0x41),
            XDP_DROP,
            "vrrp_drop_version",
        ),
        case(
            "drop: vrrp_drop_type",
            tweak(&|f| f[VRRP_OFF] = 0x32),
            XDP_DROP,
            "vrrp_drop_type",
        ),
        case(
            "drop: vrrp_drop_vrid",
            advert(99),
            XDP_DROP,
            "vrrp_drop_vrid",
        ),
        case(
            "drop: vrrp_drop_peer",
            advert(54),
            XDP_DROP,
            "vrrp_drop_peer",
        ),
        case(
            "drop: vrrp_drop_length",
            tweak(&|f| f[VRRP_OFF + 3] = 3),
            XDP_DROP,
            "vrrp_drop_length",
        ),
        case(
            "drop: vrrp_drop_checksum",
            tweak(&|f| {
                let last = f.len() - 1;
                f[last] ^= 0x40;
            }),
            XDP_DROP,
            "vrrp_drop_checksum",
        ),
    ]
}

fn configure(r: &mut Responder) -> Result<()> {
    let m = r.maps();
    let value = |slot| VipValue {
        slot,
        mac: ROUTER_MAC,
        flags: 0,
    };
    m.add_vip(VipKey::v4(TEST_IFINDEX, 0, VIP), value(1))?;
    m.add_vip(VipKey::v6(TEST_IFINDEX, 0, VIP6), value(1))?;
    m.add_vip(VipKey::v4(TEST_IFINDEX, 0, VIP_NOT_OWNED), value(2))?;
    m.add_vip(VipKey::v4(TEST_IFINDEX, 0, VIP_LAPSED), value(3))?;
    m.set_group(1, GroupState::owned_until(LEASE_FOREVER))?;
    // Owned, but the deadline (1 ns after boot) passed long ago.
    m.set_group(3, GroupState::owned_until(1))?;
    let policy = |vrid, flags| {
        (
            PolicyKey {
                ifindex: TEST_IFINDEX,
                vlan: 0,
                family: FAMILY_IPV4,
                vrid,
            },
            Policy {
                version: 3,
                flags,
                _pad: [0; 2],
                slot: 1,
                auth: [0; 8],
            },
        )
    };
    for (k, p) in [policy(51, 0), policy(54, POLICY_F_ALLOWLIST)] {
        m.set_policy(k, p)?;
    }
    // Unknown VRIDs pass to the kernel by default; the `vrrp_drop_vrid` case measures the
    // interface that asks for them to be dropped.
    m.set_interface_policy(TEST_IFINDEX, 0, FAMILY_IPV4, true)?;
    Ok(())
}

fn moved(c: &Counters) -> Vec<(&'static str, u64)> {
    Counters::NAMES
        .iter()
        .copied()
        .zip(c.values())
        .filter(|(_, v)| *v != 0)
        .collect()
}

/// Median of `calls` single-run durations (ns) that `one` reports.
fn single_runs(calls: usize, mut one: impl FnMut() -> Result<f64>) -> Result<f64> {
    let mut ns = Vec::with_capacity(calls);
    for _ in 0..calls {
        ns.push(one()?);
    }
    Ok(Summary::of(&ns).map_or(f64::NAN, |s| s.median))
}

pub fn run(opts: &Options) -> Result<Section> {
    let repeats = opts.repeats(5, 2);
    let (loop_runs, calls) = if opts.quick {
        (20_000, 300)
    } else {
        (200_000, 3_000)
    };
    let mut r = Responder::load();
    configure(&mut r)?;
    let info = r.info();
    let (verified, xlated, jited) = (
        info.verified_instruction_count(),
        info.size_translated(),
        info.size_jitted(),
    );
    let cases = cases();
    for c in &cases {
        r.maps().reset_counters()?;
        let (verdict, _) = r.run(&c.frame);
        let moved = moved(&r.counters());
        if verdict != c.verdict || moved != [(c.counter, 1)] {
            bail!(
                "{}: verdict {verdict}, counters {moved:?}; expected {} and {} alone",
                c.name,
                c.verdict,
                c.counter
            );
        }
    }
    let mut empty = Ebpf::load(objects::PASS)?;
    let empty: &mut Xdp = empty
        .program_mut(vip_common::programs::PASS)
        .context("pass program")?
        .try_into()?;
    empty.load()?;
    let probe = &cases[0].frame;

    // ns per frame, per case, per repeat: the repeat loop (frames left untouched only)
    // and single runs minus the empty program's single run (every frame).
    let mut looped: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut single: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut empty_loop = Vec::new();
    let mut empty_single = Vec::new();
    for _ in 0..repeats {
        let base = single_runs(calls, || {
            Ok(empty
                .test_run(TestRunOptions {
                    data_in: Some(probe),
                    repeat: 1,
                    ..Default::default()
                })
                .context("BPF_PROG_TEST_RUN")?
                .duration
                .as_nanos() as f64)
        })?;
        empty_single.push(base);
        let d = empty
            .test_run(TestRunOptions {
                data_in: Some(probe),
                repeat: loop_runs,
                ..Default::default()
            })?
            .duration;
        empty_loop.push(d.as_nanos() as f64);
        for (i, c) in cases.iter().enumerate() {
            let one = single_runs(calls, || {
                let (verdict, d) = r.time(&c.frame, 1);
                if verdict != c.verdict {
                    bail!("{}: verdict {verdict} in a timed run", c.name);
                }
                Ok(d.as_nanos() as f64)
            })?;
            single[i].push((one - base).max(0.0));
            if c.verdict != XDP_TX {
                let (verdict, d) = r.time(&c.frame, loop_runs);
                if verdict != c.verdict {
                    bail!("{}: verdict {verdict} in the timed loop", c.name);
                }
                looped[i].push(d.as_nanos() as f64);
            }
        }
    }

    let opt = |v: Option<u32>| v.map_or("?".to_string(), |v| v.to_string());
    let mut md = format!(
        "The responder as loaded: **{} verified instructions**, {} bytes translated, {} \
         bytes JIT-compiled (kernel figures; `tests/bench/cost-history.md` keeps them and the \
         ns below for each change to the program).\n\n",
        opt(verified),
        opt(xlated),
        jited
    );
    md.push_str(&format!(
        "The responder through `BPF_PROG_TEST_RUN`, {repeats} repeat(s); ns per frame, \
         median (min–max). *repeat loop*: the kernel's mean over {loop_runs} runs on one \
         buffer, valid only for frames the program leaves untouched (a reply would be a \
         reply from the second run on). *single run*: median of {calls} one-run calls minus \
         the same for an empty XDP_PASS program (the timer overhead a single run carries), \
         for every frame; it runs colder than the loop, so compare rows within a column.\n\n\
         | frame | verdict | repeat loop | single run − empty |\n|---|---|---|---|\n"
    ));
    let mut rows = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let verdict = match c.verdict {
            XDP_TX => "XDP_TX",
            XDP_PASS => "XDP_PASS",
            _ => "XDP_DROP",
        };
        let (l, s1) = (Summary::of(&looped[i]), Summary::of(&single[i]));
        md.push_str(&format!(
            "| {} | {verdict} | {} | {} |\n",
            c.name,
            cell_opt(l, 1),
            cell_opt(s1, 1)
        ));
        rows.push(json!({
            "frame": c.name, "verdict": verdict, "counter": c.counter,
            "repeat_loop_ns": json_opt(l), "single_minus_empty_ns": json_opt(s1),
        }));
    }
    md.push_str(&format!(
        "| empty XDP_PASS program (reference) | XDP_PASS | {} | {} (not subtracted) |\n",
        cell_opt(Summary::of(&empty_loop), 1),
        cell_opt(Summary::of(&empty_single), 1)
    ));
    Ok(Section {
        id: "cost".into(),
        title: "2. Program cost".into(),
        markdown: md,
        json: json!({
            "repeats": repeats, "loop_runs": loop_runs, "single_calls": calls,
            "verified_instructions": verified, "xlated_bytes": xlated, "jited_bytes": jited,
            "method": "repeat loop for untouched frames; single runs minus an empty program for all",
            "frames": rows,
            "empty_program_ns": {
                "repeat": json_opt(Summary::of(&empty_loop)),
                "single": json_opt(Summary::of(&empty_single)),
            },
        }),
        ..Default::default()
    })
}
