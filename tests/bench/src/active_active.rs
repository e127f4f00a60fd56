//! Item 12: what each client sees when one of two routers fails, with the VIP shared
//! (active-active, issue 25) and with one master (vipd and keepalived).
//!
//! Lab: r1 and r2 on one bridge, VRRPv3 every 100 ms, one IPv4 address, 192.0.2.50, that
//! 30 clients (192.0.2.160..=189, from the client namespace) resolve by ARP every 2 ms,
//! each request from its own MAC (`vip_tests::lab::clients`). Variants, each on a fresh lab:
//! - `vipd active-active`: the address in `shared_vips` of two groups (VRIDs 61 and 62,
//!   `vmac = true`, each with its own VIP 192.0.2.201 / .202), r1 masters 61 (200, r2 at
//!   140), r2 masters 62: each client is answered by the router that masters the group its
//!   address picks (docs/operations.md, "Active-active");
//! - `vipd one master`: the address as the VIP of one group (VRID 51, `vmac = true`), r1
//!   at 200, r2 at 140;
//! - `keepalived one master`: keepalived 2.2.7 with the same VRID, priorities and interval
//!   (started as every item starts it, `routers::keepalived_config`).
//!
//! Captures on both routers' bridge ports say which router sent each answer (in
//! active-active both routers answer from the same virtual MAC of a group once one has
//! taken the other's over, so the MAC alone cannot). Per client, over a steady second:
//! the router that answers it (the routers' shares). Then r1 is killed (`kill -9`, its
//! processes frozen first) and the probing goes on until r2 masters everything, plus
//! 500 ms. A client is **served** in a round when it got an answer and, after the kill,
//! r2 sent one: an answer from the dead daemon's router (a data plane answering until its
//! lease lapses, or, after keepalived's `kill -9`, the kernel answering for the VIP that
//! is still on r1's interface) is a stale VIP, reported apart, not service. A client's
//! **outage** is its longest run of rounds not served, from the first one's send to the
//! next served one's; it is **interrupted** when that is longer than [`INTERRUPTED_MS`]
//! (a few lost probes on a loaded machine are not a failover).
//!
//! ARP requests are answered by the XDP program (vipd) or the kernel (keepalived) on the
//! router itself, so nothing here depends on frames to a virtual MAC reaching a veth's IP
//! stack (docs/architecture.md, "Kernel facts"): no nftables `pkttype` rule is used.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use vip_tests::lab::{
    Frame, Kind, Lab, Node,
    clients::{ClientsProber, ClientsRun},
    wait_until,
};

use super::{
    Goal, Options, Section, master_down, ms, retry_once,
    routers::{
        Impl, Instance, Router, RouterSpec, State, VipdBinary, VipdRouter, start, wait_state,
    },
    stats::{Summary, cell_opt, json_opt},
    verdict::{self, MIN_DECISION_REPEATS, Side, Tolerance, harness},
};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);
const CLIENTS: u8 = 30;
const FIRST_CLIENT: u8 = 160;
const ROUND: Duration = Duration::from_millis(2);
/// Every variant's advert interval (the active-active lab's).
const ADVERT: Duration = Duration::from_millis(100);
const MASTER_PRIORITY: u8 = 200;
/// The successor's priority, as in `tests/tests/lab_active_active.rs` with 2 routers.
const BACKUP_PRIORITY: u8 = 140;
const AA_VRIDS: [u8; 2] = [61, 62];
const ONE_VRID: u8 = 51;
/// Probing before the steady window starts (the first answers, neighbour entries).
const WARMUP: Duration = Duration::from_millis(300);
/// After r2 masters everything: a stale VIP shows, and every client is served again.
const POST: Duration = Duration::from_millis(500);
const ELECTION: Duration = Duration::from_secs(15);
const TAKEOVER: Duration = Duration::from_secs(5);
/// A longer outage than this is an interruption: five 2 ms rounds.
pub const INTERRUPTED_MS: f64 = 10.0;
/// The slack on top of Master_Down_Interval (issue 25's).
const SLACK_MS: f64 = 5.0;
/// Each router's share of the clients, off even by at most this (issue 25's).
const SHARE_TOLERANCE: f64 = 0.15;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variant {
    ActiveActive,
    OneMaster,
    KeepalivedOneMaster,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::ActiveActive => "vipd active-active",
            Variant::OneMaster => "vipd one master",
            Variant::KeepalivedOneMaster => "keepalived one master",
        }
    }

    fn is_vipd(self) -> bool {
        self != Variant::KeepalivedOneMaster
    }
}

/// One client over one run.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientFigures {
    /// The router (0 = r1, 1 = r2) that answered it most in the steady window.
    pub own: usize,
    /// Longest run of rounds not served by a live router (ms).
    pub outage_ms: f64,
    /// Longest run of rounds with no answer at all, a stale VIP's included (ms): what a
    /// client that only counts answers sees (the lab's figure).
    pub any_gap_ms: f64,
    /// Rounds sent after the kill that r1 answered.
    pub stale_rounds: usize,
    /// Rounds sent after the kill that both routers answered.
    pub both_rounds: usize,
}

/// One run of one variant.
#[derive(Clone, Debug)]
pub struct Run {
    pub variant: Variant,
    pub clients: Vec<ClientFigures>,
    /// The last round sent after the kill that r1 answered, from the kill (ms).
    pub stale_last_ms: Option<f64>,
    /// From r1's last advertisement to the kill (ms): r2's timer started then, so an
    /// outage is shorter than Master_Down_Interval by about this much.
    pub phase_ms: Option<f64>,
}

impl Run {
    pub fn share(&self, router: usize) -> f64 {
        self.clients.iter().filter(|c| c.own == router).count() as f64 / self.clients.len() as f64
    }

    /// Clients whose outage exceeds [`INTERRUPTED_MS`].
    pub fn interrupted(&self) -> usize {
        self.clients
            .iter()
            .filter(|c| c.outage_ms > INTERRUPTED_MS)
            .count()
    }

    /// Clients with any round not served.
    pub fn any_outage(&self) -> usize {
        self.clients.iter().filter(|c| c.outage_ms > 0.0).count()
    }

    /// The outages of the clients that saw one.
    fn outages(&self) -> Vec<f64> {
        self.clients
            .iter()
            .map(|c| c.outage_ms)
            .filter(|o| *o > 0.0)
            .collect()
    }

    /// The worst outage of r1's clients, or of r2's (`NaN` when it had none).
    pub fn worst_of(&self, router: usize, f: impl Fn(&ClientFigures) -> f64) -> f64 {
        self.clients
            .iter()
            .filter(|c| c.own == router)
            .map(f)
            .fold(f64::NAN, f64::max)
    }

    /// Clients r1 answered after the kill, and the most rounds a client had from both.
    pub fn stale_clients(&self) -> usize {
        self.clients.iter().filter(|c| c.stale_rounds > 0).count()
    }

    pub fn overlap_ms(&self) -> f64 {
        self.clients
            .iter()
            .map(|c| c.both_rounds)
            .max()
            .unwrap_or(0) as f64
            * ms(ROUND)
    }
}

fn clients() -> Vec<Ipv4Addr> {
    (0..CLIENTS)
        .map(|i| Ipv4Addr::new(192, 0, 2, FIRST_CLIENT + i))
        .collect()
}

/// Master_Down_Interval of r2 for r1's group, in every variant.
fn mdi_ms() -> f64 {
    ms(master_down(ADVERT, BACKUP_PRIORITY))
}

pub fn run(opts: &Options, vipd: &VipdBinary) -> Result<Section> {
    let repeats = opts.repeats(MIN_DECISION_REPEATS, 1);
    let steady = if opts.quick {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(1)
    };
    let mut variants = Vec::new();
    if vipd.ready {
        variants.extend([Variant::ActiveActive, Variant::OneMaster]);
    }
    // The smoke run checks vipd's machinery; keepalived only matters to the comparison,
    // which one repeat cannot decide.
    if !opts.quick {
        variants.push(Variant::KeepalivedOneMaster);
    }
    let mut errors = Vec::new();
    let mut runs = Vec::new();
    let mut sides: BTreeMap<Variant, Side> = BTreeMap::new();
    let mut tally = (0, 0);
    for repeat in 0..repeats {
        for k in 0..variants.len() {
            let v = variants[(k + repeat) % variants.len()];
            let what = format!("repeat {repeat} {}", v.name());
            match retry_once("active-active", &what, &mut errors, &mut tally, || {
                measure(v, vipd, steady)
            }) {
                Ok(r) => {
                    eprintln!(
                        "bench active-active: {what}: shares {:.2}/{:.2}, {} of {} clients \
                         interrupted (any outage: {}), worst outage {:.1} ms, others' worst \
                         {:.1} ms, stale answers to {} client(s)",
                        r.share(0),
                        r.share(1),
                        r.interrupted(),
                        r.clients.len(),
                        r.any_outage(),
                        r.worst_of(0, |c| c.outage_ms),
                        r.worst_of(1, |c| c.outage_ms),
                        r.stale_clients()
                    );
                    runs.push(r);
                }
                Err(e) => sides.entry(v).or_default().record_error(&e),
            }
        }
    }
    Ok(section(&runs, &sides, &errors, vipd, repeats))
}

/// One run of `variant` on a fresh lab.
fn measure(variant: Variant, vipd: &VipdBinary, steady: Duration) -> Result<Run> {
    let lab = Lab::builder()
        .routers(2)
        .client()
        .build()
        .map_err(harness)?;
    let (n1, n2) = (lab.router(1), lab.router(2));
    let routers = Routers::start(variant, &lab, [n1, n2], vipd)?;
    routers.wait_roles()?;
    // r1's port also carries its adverts: a crash must not resign (priority 0).
    let caps = [
        lab.capture_port(n1, "arp or ip proto 112")
            .map_err(harness)?,
        lab.capture_port(n2, "arp").map_err(harness)?,
    ];
    let anchor = (Instant::now(), SystemTime::now());
    let cl = lab.client();
    let max = WARMUP + steady + TAKEOVER + POST + Duration::from_secs(5);
    let prober = ClientsProber::start(
        &cl.ns,
        &cl.ifname,
        VIP.into(),
        clients().into_iter().map(IpAddr::V4).collect(),
        ROUND,
        max,
    )
    .map_err(harness)?;
    std::thread::sleep(WARMUP);
    let from = Instant::now();
    std::thread::sleep(steady);
    let kill = Instant::now();
    let wall_kill = SystemTime::now();
    routers.kill_r1().map_err(harness)?;
    let took = routers.wait_takeover();
    std::thread::sleep(POST);
    let run = prober.stop().map_err(harness)?;
    let mut frames = Vec::new();
    for c in caps {
        frames.push(c.stop().map_err(harness)?);
    }
    took.context("r2 never mastered r1's group")?;
    // keepalived's VRRP child resigns when its parent dies before it is frozen: that is
    // a clean stop, not the crash measured here (the failover item's rule).
    if frames[0].iter().any(|f| {
        f.at >= wall_kill
            && matches!(f.kind(), Kind::Vrrp { src, priority: 0, .. } if src == IpAddr::V4(n1.ipv4))
    }) {
        return Err(harness(
            "r1 sent a priority-0 advert after the kill -9: not a crash",
        ));
    }
    let by = [
        attribute(&run, anchor, &frames[0]),
        attribute(&run, anchor, &frames[1]),
    ];
    let mut r = analyse(variant, &run, &by, from, kill)?;
    r.phase_ms = frames[0]
        .iter()
        .filter(|f| {
            f.at < wall_kill
                && matches!(f.kind(), Kind::Vrrp { src, .. } if src == IpAddr::V4(n1.ipv4))
        })
        .map(|f| f.at)
        .max()
        .and_then(|at| wall_kill.duration_since(at).ok())
        .map(ms);
    if variant == Variant::ActiveActive {
        // Each client on the router that masters the group its address picks.
        for (i, c) in r.clients.iter().enumerate() {
            let member = vip_common::shared_member(
                match run.clients[i] {
                    IpAddr::V4(a) => u32::from(a),
                    IpAddr::V6(a) => (u128::from(a) & 0xffff_ffff) as u32,
                },
                2,
            );
            if c.own != usize::from(member) {
                bail!(
                    "client {} (member {member}) was answered by r{} before the failure",
                    run.clients[i],
                    c.own + 1
                );
            }
        }
    } else if let Some(c) = r.clients.iter().position(|c| c.own != 0) {
        bail!(
            "client {} was answered by r2 while r1 was master",
            run.clients[c]
        );
    }
    Ok(r)
}

/// Which clients' rounds a router answered, from the capture on its bridge port:
/// `[round][client]`. A reply names its client and its round modulo 256 in the target
/// MAC (`clients::client_mac`); it belongs to the latest round with that number sent
/// before it was captured. `anchor` maps the capture's wall clock onto the rounds'
/// monotonic one.
pub fn attribute(
    run: &ClientsRun,
    anchor: (Instant, SystemTime),
    frames: &[Frame],
) -> Vec<Vec<bool>> {
    let mut by = vec![vec![false; run.clients.len()]; run.rounds.len()];
    for f in frames {
        let Kind::ArpReply {
            sender_ip,
            target_mac,
            ..
        } = f.kind()
        else {
            continue;
        };
        if sender_ip != VIP || target_mac[..3] != [0x02, 0x50, 0x53] {
            continue;
        }
        let Ok(since) = f.at.duration_since(anchor.1) else {
            continue;
        };
        let at = anchor.0 + since;
        let Some(last) = run.rounds.partition_point(|r| r.sent <= at).checked_sub(1) else {
            continue;
        };
        let back = usize::from((last as u8).wrapping_sub(target_mac[3]));
        let i = usize::from(target_mac[5]);
        if let Some(r) = last.checked_sub(back)
            && i < run.clients.len()
        {
            by[r][i] = true;
        }
    }
    by
}

/// The figures of a run from what the clients got and who sent it (`by[router]`, r1 the
/// one killed at `kill`), over the rounds sent from `from` on.
pub fn analyse(
    variant: Variant,
    run: &ClientsRun,
    by: &[Vec<Vec<bool>>; 2],
    from: Instant,
    kill: Instant,
) -> Result<Run> {
    let first = run.rounds.partition_point(|r| r.sent < from);
    let rounds = &run.rounds[first..];
    if rounds.is_empty() {
        bail!("no probe round in the window");
    }
    let mut clients = Vec::new();
    let mut stale_last: Option<Duration> = None;
    for (i, addr) in run.clients.iter().enumerate() {
        let mut answered = [0usize; 2];
        let mut served = Vec::with_capacity(rounds.len());
        let mut any = Vec::with_capacity(rounds.len());
        let (mut stale_rounds, mut both_rounds) = (0, 0);
        for (k, r) in rounds.iter().enumerate() {
            let k = first + k;
            let got = !r.answers[i].is_empty();
            let (a1, a2) = (by[0][k][i], by[1][k][i]);
            if r.sent < kill {
                answered[0] += usize::from(a1);
                answered[1] += usize::from(a2);
                served.push(got && (a1 || a2));
            } else {
                served.push(got && a2);
                if a1 {
                    stale_rounds += 1;
                    stale_last = stale_last.max(Some(r.sent - kill));
                }
                both_rounds += usize::from(a1 && a2);
            }
            any.push(got);
        }
        if answered == [0, 0] {
            bail!("client {addr} was never answered before the failure");
        }
        clients.push(ClientFigures {
            own: usize::from(answered[1] > answered[0]),
            outage_ms: ms(longest_gap(rounds.iter().map(|r| r.sent), &served)),
            any_gap_ms: ms(longest_gap(rounds.iter().map(|r| r.sent), &any)),
            stale_rounds,
            both_rounds,
        });
    }
    Ok(Run {
        variant,
        clients,
        stale_last_ms: stale_last.map(ms),
        phase_ms: None,
    })
}

/// The longest run of `false` in `ok`, from its first round's send to the next `true`
/// one's (or the last round's, when it runs to the end).
fn longest_gap(sent: impl Iterator<Item = Instant>, ok: &[bool]) -> Duration {
    let mut best = Duration::ZERO;
    let mut open: Option<Instant> = None;
    let mut last = None;
    for (t, ok) in sent.zip(ok) {
        match (ok, open) {
            (false, None) => open = Some(t),
            (true, Some(o)) => {
                best = best.max(t - o);
                open = None;
            }
            _ => {}
        }
        last = Some(t);
    }
    if let (Some(o), Some(l)) = (open, last) {
        best = best.max(l - o);
    }
    best
}

/// The two routers of a run, whatever the variant.
enum Routers {
    /// Boxed: two vipd handles against two pointers.
    Shared(Box<[VipdRouter; 2]>),
    One([Box<dyn Router>; 2]),
}

impl Routers {
    fn start(variant: Variant, lab: &Lab, nodes: [&Node; 2], vipd: &VipdBinary) -> Result<Routers> {
        let spec = |vrid: u8, priority: u8, vip: Ipv4Addr| {
            let mut s = RouterSpec::new(priority, ADVERT, vec![IpAddr::V4(vip)]);
            s.vrid = vrid;
            s.vmac = variant.is_vipd();
            s
        };
        let prio = |router: usize, group: usize| {
            if router == group {
                MASTER_PRIORITY
            } else {
                BACKUP_PRIORITY
            }
        };
        Ok(match variant {
            Variant::ActiveActive => {
                let on = |r: usize| -> Result<VipdRouter> {
                    let instances: Vec<Instance> = (0..2)
                        .map(|g| {
                            let mut s = spec(
                                AA_VRIDS[g],
                                prio(r, g),
                                Ipv4Addr::new(192, 0, 2, 201 + g as u8),
                            );
                            s.shared_vips = vec![IpAddr::V4(VIP)];
                            Instance::from_spec(&format!("g{}", g + 1), &s)
                        })
                        .collect();
                    VipdRouter::start(lab, nodes[r], &instances, vipd)
                };
                Routers::Shared(Box::new([on(0)?, on(1)?]))
            }
            Variant::OneMaster | Variant::KeepalivedOneMaster => {
                let imp = if variant.is_vipd() {
                    Impl::Vipd
                } else {
                    Impl::Keepalived
                };
                let on =
                    |r: usize| start(imp, lab, nodes[r], &spec(ONE_VRID, prio(r, 0), VIP), vipd);
                Routers::One([on(0)?, on(1)?])
            }
        })
    }

    /// r1 masters its group(s), r2 backs them up (and masters its own).
    fn wait_roles(&self) -> Result<()> {
        match self {
            Routers::Shared(r) => wait_until(
                "each router masters its own group",
                ELECTION,
                Duration::from_millis(50),
                || {
                    let s = [r[0].states()?, r[1].states()?];
                    let want = [
                        [State::Master, State::Backup],
                        [State::Backup, State::Master],
                    ];
                    if s[0] == want[0] && s[1] == want[1] {
                        Ok(true)
                    } else {
                        bail!("r1 {:?}, r2 {:?}", s[0], s[1])
                    }
                },
            )
            .map(drop),
            Routers::One(r) => {
                wait_state(r[0].as_ref(), State::Master, ELECTION)?;
                wait_state(r[1].as_ref(), State::Backup, ELECTION).map(drop)
            }
        }
    }

    fn kill_r1(&self) -> Result<()> {
        match self {
            Routers::Shared(r) => r[0].kill9(),
            Routers::One(r) => r[0].kill9(),
        }
    }

    /// Until r2 masters r1's group.
    fn wait_takeover(&self) -> Result<()> {
        match self {
            Routers::Shared(r) => wait_until(
                "r2 masters r1's group",
                TAKEOVER,
                Duration::from_millis(20),
                || Ok(r[1].states()?.first() == Some(&State::Master)),
            )
            .map(drop),
            Routers::One(r) => wait_state(r[1].as_ref(), State::Master, TAKEOVER).map(drop),
        }
    }
}

/// Samples of one figure per run of `v`, with the variant's failed runs.
fn side(
    runs: &[Run],
    sides: &BTreeMap<Variant, Side>,
    v: Variant,
    f: impl Fn(&Run) -> f64,
) -> Side {
    let mut s = sides.get(&v).cloned().unwrap_or_default();
    s.samples = runs.iter().filter(|r| r.variant == v).map(f).collect();
    s
}

fn section(
    runs: &[Run],
    sides: &BTreeMap<Variant, Side>,
    errors: &[String],
    vipd: &VipdBinary,
    repeats: usize,
) -> Section {
    let mdi = mdi_ms();
    let of = |v: Variant, f: &dyn Fn(&Run) -> f64| -> Option<Summary> {
        Summary::of(
            &runs
                .iter()
                .filter(|r| r.variant == v)
                .map(f)
                .collect::<Vec<_>>(),
        )
    };
    let mut md = format!(
        "Two routers, VRRPv3 every {} ms, one address (192.0.2.50) resolved by {CLIENTS} \
         clients, an ARP request from each every {} ms; `kill -9` of r1 (r2's \
         Master_Down_Interval {mdi:.1} ms). vipd active-active: the address shared by two \
         groups, r1 masters one, r2 the other; one master: the address is one group's VIP, \
         r1 master (vipd, and keepalived 2.2.7). Captures on the routers' bridge ports say \
         who answered. A client is served by a live router's answer (after the kill: r2's); \
         outage: its longest run of rounds not served; interrupted: outage > \
         {INTERRUPTED_MS} ms. Stale: r1 answering after the kill (vipd's data plane until \
         its lease lapses; keepalived's kernel for the VIP left on r1); \"any-answer gap\" \
         counts a stale answer as one (what a client sees that only counts answers). \
         {repeats} repeat(s), median (min–max) over runs.\n\n\
         | variant | runs | r1's share of the clients | interrupted clients | any outage | \
         outage of the interrupted, worst (ms) | the same, median client (ms) | the other \
         router's clients' longest gap (ms) | any-answer gap, worst (ms) | clients answered \
         stale | last stale answer after the kill (ms) | both routers answered a client (ms) | r1's \
         last advert before the kill (ms) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        ADVERT.as_millis(),
        ROUND.as_millis()
    );
    let mut json_variants = serde_json::Map::new();
    for v in [
        Variant::ActiveActive,
        Variant::OneMaster,
        Variant::KeepalivedOneMaster,
    ] {
        let n = runs.iter().filter(|r| r.variant == v).count();
        let share = of(v, &|r| r.share(0));
        let interrupted = of(v, &|r| r.interrupted() as f64);
        let any = of(v, &|r| r.any_outage() as f64);
        let worst = of(v, &|r| r.outages().iter().copied().fold(0.0, f64::max));
        let median = of(v, &|r| Summary::of(&r.outages()).map_or(0.0, |s| s.median));
        let others = of(v, &|r| r.worst_of(1, |c| c.outage_ms));
        let any_gap = of(v, &|r| r.worst_of(0, |c| c.any_gap_ms));
        let stale = of(v, &|r| r.stale_clients() as f64);
        let stale_last = of(v, &|r| r.stale_last_ms.unwrap_or(f64::NAN));
        let overlap = of(v, &|r| r.overlap_ms());
        let phase = of(v, &|r| r.phase_ms.unwrap_or(f64::NAN));
        md.push_str(&format!(
            "| {} | {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            v.name(),
            cell_opt(share, 2),
            cell_opt(interrupted, 0),
            cell_opt(any, 0),
            cell_opt(worst, 1),
            cell_opt(median, 1),
            cell_opt(others, 1),
            cell_opt(any_gap, 1),
            cell_opt(stale, 0),
            cell_opt(stale_last, 0),
            cell_opt(overlap, 0),
            cell_opt(phase, 1),
        ));
        json_variants.insert(
            v.name().into(),
            json!({
                "runs": n,
                "r1_share": json_opt(share),
                "interrupted": json_opt(interrupted),
                "any_outage": json_opt(any),
                "worst_outage_ms": json_opt(worst),
                "median_outage_ms": json_opt(median),
                "others_longest_gap_ms": json_opt(others),
                "any_answer_gap_ms": json_opt(any_gap),
                "stale_clients": json_opt(stale),
                "stale_last_ms": json_opt(stale_last),
                "overlap_ms": json_opt(overlap),
                "phase_ms": json_opt(phase),
            }),
        );
    }
    if !errors.is_empty() {
        md.push_str("\nRuns that failed (a run the harness failed is retried once):\n\n");
        for e in errors {
            md.push_str(&format!("- {e}\n"));
        }
    }
    let goals = goals(runs, sides, vipd, mdi);
    Section {
        id: "active-active".into(),
        title: "12. Active-active: each client's outage when a router fails".into(),
        markdown: md,
        json: json!({
            "clients": CLIENTS,
            "round_ms": ms(ROUND),
            "advert_ms": ms(ADVERT),
            "master_down_interval_ms": mdi,
            "interrupted_ms": INTERRUPTED_MS,
            "variants": json_variants,
            "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
            "errors": errors,
        }),
        goals,
        ..Default::default()
    }
}

fn run_json(r: &Run) -> Value {
    json!({
        "variant": r.variant.name(),
        "r1_share": r.share(0),
        "interrupted": r.interrupted(),
        "any_outage": r.any_outage(),
        "stale_last_ms": r.stale_last_ms,
        "phase_ms": r.phase_ms,
        "clients": r.clients.iter().map(|c| json!({
            "own": c.own + 1,
            "outage_ms": c.outage_ms,
            "any_gap_ms": c.any_gap_ms,
            "stale_rounds": c.stale_rounds,
            "both_rounds": c.both_rounds,
        })).collect::<Vec<_>>(),
    })
}

fn goals(runs: &[Run], sides: &BTreeMap<Variant, Side>, vipd: &VipdBinary, mdi: f64) -> Vec<Goal> {
    let aa = Variant::ActiveActive;
    let not_run = |s: Side| {
        if !vipd.ready && s.samples.is_empty() && s.failed.is_empty() && s.faults.is_empty() {
            Side::not_run(vipd.why.clone())
        } else {
            s
        }
    };
    let mut goals = Vec::new();
    goals.push(verdict::at_most(
        &format!(
            "active-active: a router's failure (kill -9) interrupts only its own clients (the \
             other router's clients' longest gap ≤ {INTERRUPTED_MS} ms, probes every {} ms)",
            ROUND.as_millis()
        ),
        &not_run(side(runs, sides, aa, |r| {
            // No client of r2's at all would be no measurement of this.
            let w = r.worst_of(1, |c| c.outage_ms);
            if w.is_nan() { f64::INFINITY } else { w }
        })),
        INTERRUPTED_MS,
        "ms",
    ));
    // A run in which r1 kept answering after r2 took over is a split brain: not done.
    let mut back = not_run(side(runs, sides, aa, |r| r.worst_of(0, |c| c.outage_ms)));
    let overlapped: Vec<&Run> = runs
        .iter()
        .filter(|r| r.variant == aa && r.overlap_ms() > 0.0)
        .collect();
    if !overlapped.is_empty() {
        back.samples.clear();
        for r in overlapped {
            back.failed.push(format!(
                "r1 and r2 both answered a client for {:.0} ms",
                r.overlap_ms()
            ));
        }
    }
    goals.push(verdict::at_most(
        &format!(
            "active-active: the failed router's clients are served again by its group's \
             successor within Master_Down_Interval + {SLACK_MS} ms ({:.1} ms), never by both \
             routers at once",
            mdi + SLACK_MS
        ),
        &back,
        mdi + SLACK_MS,
        "ms",
    ));
    goals.push(verdict::at_most(
        &format!(
            "active-active: each router's share of the clients within ±{:.0} % of even \
             ({CLIENTS} clients, 2 routers)",
            SHARE_TOLERANCE * 100.0
        ),
        &not_run(side(runs, sides, aa, |r| {
            (r.share(0) - 0.5).abs() / 0.5 * 100.0
        })),
        SHARE_TOLERANCE * 100.0,
        "% off even",
    ));
    let interrupted = not_run(side(runs, sides, aa, |r| r.interrupted() as f64));
    for (base, name) in [
        (Variant::OneMaster, "half of vipd one master's"),
        (
            Variant::KeepalivedOneMaster,
            "half of keepalived one master's",
        ),
    ] {
        let mut b = side(runs, sides, base, |r| r.interrupted() as f64 / 2.0);
        if base.is_vipd() {
            b = not_run(b);
        }
        goals.push(verdict::never_worse(
            &format!(
                "active-active: clients interrupted (> {INTERRUPTED_MS} ms) by a router's \
                 failure"
            ),
            name,
            &interrupted,
            &b,
            Tolerance::abs(0.0, "clients"),
            MIN_DECISION_REPEATS,
        ));
    }
    goals
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use vip_tests::lab::clients::{Round, client_mac};

    use super::*;

    const R1: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
    const VMAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 61];

    /// `n` rounds of 2 ms for 2 clients; `got(round, client)` says who got an answer.
    fn rounds(t0: Instant, n: usize, got: impl Fn(usize, usize) -> bool) -> ClientsRun {
        ClientsRun {
            clients: vec![
                Ipv4Addr::new(192, 0, 2, 160).into(),
                Ipv4Addr::new(192, 0, 2, 161).into(),
            ],
            rounds: (0..n)
                .map(|k| Round {
                    sent: t0 + ROUND * k as u32,
                    answers: (0..2)
                        .map(|i| {
                            if got(k, i) {
                                BTreeSet::from([VMAC])
                            } else {
                                BTreeSet::new()
                            }
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn reply(at: SystemTime, client: usize, round: usize) -> Frame {
        let mut data = vip_tests::frames::arp_reply(
            R1,
            VIP.octets(),
            client_mac(client, round),
            [192, 0, 2, 160 + client as u8],
        );
        data.truncate(42);
        Frame { at, data }
    }

    #[test]
    fn a_reply_belongs_to_the_latest_round_of_its_number() {
        let t0 = Instant::now();
        let w0 = SystemTime::now();
        let run = rounds(t0, 600, |_, _| true);
        // Round 300 (byte 44) answered 1 ms after its send; round 44 shares the byte.
        let frames = [
            reply(w0 + ROUND * 300 + Duration::from_millis(1), 1, 300),
            reply(w0 + ROUND * 44 + Duration::from_micros(500), 0, 44),
        ];
        let by = attribute(&run, (t0, w0), &frames);
        assert!(by[300][1] && !by[44][1]);
        assert!(by[44][0] && !by[300][0]);
        assert_eq!(by.iter().flatten().filter(|b| **b).count(), 2);
    }

    fn all(n: usize, f: impl Fn(usize, usize) -> bool) -> Vec<Vec<bool>> {
        (0..n).map(|k| (0..2).map(|i| f(k, i)).collect()).collect()
    }

    #[test]
    fn outage_counts_a_dead_routers_answers_as_stale_not_service() {
        let t0 = Instant::now();
        // 200 rounds; the kill at round 100. Client 0 is r1's: r1 answers it until round
        // 110 (stale), r2 from round 150 on. Client 1 is r2's throughout.
        let run = rounds(t0, 200, |k, i| i == 1 || !(110..150).contains(&k));
        let by = [
            all(200, |k, i| i == 0 && k < 110),
            all(200, |k, i| i == 1 || k >= 150),
        ];
        let r = analyse(Variant::ActiveActive, &run, &by, t0, t0 + ROUND * 100).unwrap();
        let c = &r.clients;
        assert_eq!((c[0].own, c[1].own), (0, 1));
        assert_eq!(c[0].outage_ms, 100.0, "rounds 100..150 not served");
        assert_eq!(c[0].any_gap_ms, 80.0, "rounds 110..150 unanswered");
        assert_eq!((c[0].stale_rounds, c[0].both_rounds), (10, 0));
        assert_eq!(c[1].outage_ms, 0.0);
        assert_eq!(
            (r.interrupted(), r.any_outage(), r.stale_clients()),
            (1, 1, 1)
        );
        assert_eq!(r.share(0), 0.5);
        assert_eq!(r.stale_last_ms, Some(18.0));
        assert_eq!(r.worst_of(1, |c| c.outage_ms), 0.0);
    }

    #[test]
    fn an_outage_open_at_the_end_runs_to_the_last_round() {
        let t0 = Instant::now();
        let run = rounds(t0, 50, |_, _| true);
        let by = [all(50, |_, _| true), all(50, |_, _| false)];
        let r = analyse(Variant::OneMaster, &run, &by, t0, t0 + ROUND * 20).unwrap();
        assert_eq!(r.clients[0].outage_ms, 58.0, "rounds 20..=49");
        assert_eq!(r.clients[0].any_gap_ms, 0.0);
        assert_eq!(r.overlap_ms(), 0.0);
        // A client nobody answered before the failure is no measurement.
        let by = [all(50, |_, i| i == 0), all(50, |_, _| false)];
        assert!(analyse(Variant::OneMaster, &run, &by, t0, t0 + ROUND * 20).is_err());
    }

    fn run_of(variant: Variant, outages: [f64; 4], own: [usize; 4], both: usize) -> Run {
        Run {
            variant,
            clients: (0..4)
                .map(|i| ClientFigures {
                    own: own[i],
                    outage_ms: outages[i],
                    any_gap_ms: 0.0,
                    stale_rounds: both,
                    both_rounds: both,
                })
                .collect(),
            stale_last_ms: None,
            phase_ms: None,
        }
    }

    fn ready() -> VipdBinary {
        VipdBinary {
            path: Some("vipd".into()),
            ready: true,
            why: String::new(),
        }
    }

    #[test]
    fn the_goals_judge_each_figure_and_compare_with_half_of_one_master() {
        let mut runs = Vec::new();
        for _ in 0..5 {
            runs.push(run_of(
                Variant::ActiveActive,
                [330.0, 0.0, 340.0, 2.0],
                [0, 1, 0, 1],
                0,
            ));
            runs.push(run_of(Variant::OneMaster, [330.0; 4], [0; 4], 0));
            runs.push(run_of(Variant::KeepalivedOneMaster, [340.0; 4], [0; 4], 0));
        }
        let s = section(&runs, &BTreeMap::new(), &[], &ready(), 5);
        let marks: Vec<&str> = s.goals.iter().map(Goal::mark).collect();
        assert_eq!(marks, ["pass"; 5], "{:#?}", s.goals);
        assert!(s.goals.iter().all(|g| g.text.starts_with("active-active:")));
        // An interruption of the other router's client, a split brain, uneven shares.
        runs[0] = run_of(
            Variant::ActiveActive,
            [330.0, 50.0, 340.0, 0.0],
            [0, 1, 0, 0],
            1,
        );
        let s = section(&runs, &BTreeMap::new(), &[], &ready(), 5);
        let marks: Vec<&str> = s.goals.iter().map(Goal::mark).collect();
        assert_eq!(marks[..3], ["miss"; 3], "{:#?}", s.goals);
        // One repeat decides the limits, not the comparisons.
        let one: Vec<Run> = runs[1..4].to_vec();
        let s = section(&one, &BTreeMap::new(), &[], &ready(), 1);
        let marks: Vec<&str> = s.goals.iter().map(Goal::mark).collect();
        assert_eq!(
            marks,
            ["pass", "pass", "pass", "n/a", "n/a"],
            "{:#?}",
            s.goals
        );
        // Without a vipd that runs, nothing is judged.
        let no = VipdBinary {
            path: None,
            ready: false,
            why: "no vipd binary given".into(),
        };
        let s = section(&[], &BTreeMap::new(), &[], &no, 1);
        assert!(s.goals.iter().all(|g| g.mark() == "n/a"));
        assert!(s.goals[0].detail.contains("no vipd binary"));
    }
}
