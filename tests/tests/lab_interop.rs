//! vipd on the same wire as keepalived 2.2.7 and FRR 8.4 vrrpd, one VRID shared.
//!
//! vipd always runs on r1 and the peer on r2; each scenario is run once with vipd as the
//! master and once with the peer as the master (priorities 200 and 100 swapped). In every
//! run the master is killed (`kill -9`), comes back and preempts, and is then stopped
//! cleanly (SIGTERM): three handovers, each watched by a client resolving the VIP every
//! 2 ms, which records who answered each request. With FRR both sides answer from the
//! VMAC (FRR through its macvlan, vipd with `vmac = true`), so replies are attributed to
//! a router by captures on the bridge ports.
//!
//! What is asserted for every handover: before it only the master answers; the other side
//! becomes master within the RFC bound and then answers every probe. Where vipd is the
//! one that goes away (killed or stopped) no probe may be answered by both routers and
//! the new master ends up alone: vipd's lease and make-before-break handover exist for
//! that (see `fail_over` for the one measured race, at a SIGTERM). A killed keepalived
//! or FRR leaves its VIP configured, so its kernel goes on answering: that overlap is
//! printed as a finding, not asserted away.

use std::{
    net::IpAddr,
    path::Path,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, bail, ensure};
use vip_tests::{
    lab::{
        Capture, Frame, Frr, FrrConfig, Keepalived, KeepalivedConfig, Kind, Lab, Mac, Method,
        ProbeRun, Vipd, mac_str, vipd::strip_ansi, wait_until,
    },
    require_root,
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
const VRID: u8 = 51;
/// Resolution probes this often: fine enough to see a handover's gap or overlap.
const PROBE_EVERY: Duration = Duration::from_millis(2);

/// One protocol setup shared by vipd and its peer.
#[derive(Clone, Debug)]
struct Proto {
    version: u8,
    interval: Duration,
    vip: IpAddr,
    auth: Option<&'static str>,
}

impl Proto {
    fn v3(interval_ms: u64) -> Self {
        Proto {
            version: 3,
            interval: Duration::from_millis(interval_ms),
            vip: "192.0.2.1".parse().unwrap(),
            auth: None,
        }
    }

    /// Master_Down_Interval of a backup at `priority` (RFC 5798 §6.1; v2: whole seconds).
    fn master_down(&self, priority: u8) -> Duration {
        self.interval * 3 + self.interval * (256 - u32::from(priority)) / 256
    }

    fn vipd_section(&self, priority: u8, vmac: bool) -> String {
        let prefix = if self.vip.is_ipv4() { 24 } else { 64 };
        let mut s = format!(
            "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = {VRID}\npriority = {priority}\n\
             version = {}\nadvert_interval = \"{}ms\"\nvips = [\"{}/{prefix}\"]\n",
            self.version,
            self.interval.as_millis(),
            self.vip
        );
        if let Some(p) = self.auth {
            s += &format!("auth_pass = \"{p}\"\n");
        }
        if vmac {
            s += "vmac = true\n";
        }
        s
    }

    fn keepalived(&self, priority: u8, auth: Option<&str>) -> KeepalivedConfig {
        KeepalivedConfig {
            vrid: VRID,
            priority,
            version: self.version,
            advert_interval: self.interval,
            vips: vec![self.vip],
            auth_pass: auth.map(str::to_string),
            ..Default::default()
        }
    }

    fn frr(&self, priority: u8) -> FrrConfig {
        let IpAddr::V4(v4) = self.vip else {
            panic!("the FRR scenarios are IPv4")
        };
        FrrConfig {
            vrid: VRID,
            priority,
            advert_interval: self.interval,
            v4: vec![v4],
            ..Default::default()
        }
    }
}

/// A router of the pair, whatever runs on it.
enum Router {
    Vipd(Vipd),
    Keepalived(Option<Keepalived>, KeepalivedConfig),
    Frr(Option<Frr>, FrrConfig),
}

impl Router {
    fn name(&self) -> &'static str {
        match self {
            Router::Vipd(_) => "vipd",
            Router::Keepalived(..) => "keepalived",
            Router::Frr(..) => "FRR",
        }
    }

    /// Waits for MASTER (`true`) or BACKUP in this router's own words.
    fn wait(&self, master: bool, timeout: Duration) -> Result<Duration> {
        match self {
            Router::Vipd(v) => {
                v.wait_state("gw", if master { "master" } else { "backup" }, timeout)
            }
            Router::Keepalived(Some(k), _) => {
                k.wait_state(if master { "MASTER" } else { "BACKUP" }, timeout)
            }
            Router::Frr(Some(f), _) => f.wait_v4(if master { "Master" } else { "Backup" }, timeout),
            _ => bail!("{} is not running", self.name()),
        }
    }

    /// Whether this router says it is MASTER (`true`) or BACKUP right now.
    fn is(&self, master: bool) -> Result<bool> {
        let want = |s: &str| s.eq_ignore_ascii_case(if master { "master" } else { "backup" });
        Ok(match self {
            Router::Vipd(v) => want(&v.state_of("gw")?),
            Router::Keepalived(Some(k), _) => k.state().is_some_and(|s| want(&s)),
            Router::Frr(Some(f), _) => want(&f.status()?.v4),
            _ => false,
        })
    }

    fn fail(&mut self, how: Failure) -> Result<()> {
        match (self, how) {
            (Router::Vipd(v), Failure::Kill9) => v.kill(),
            (Router::Vipd(v), Failure::Sigterm) => v.stop(),
            (Router::Keepalived(k, _), how) => {
                let k = k.take().context("keepalived not running")?;
                match how {
                    Failure::Kill9 => k.kill(),
                    Failure::Sigterm => k.stop(),
                }
            }
            (Router::Frr(f, _), how) => {
                let f = f.take().context("FRR not running")?;
                match how {
                    Failure::Kill9 => f.kill(),
                    Failure::Sigterm => f.stop(),
                }
            }
        }
    }

    fn restart(&mut self, lab: &Lab, label: &str) -> Result<()> {
        let node = lab.node(label);
        match self {
            Router::Vipd(v) => lab.start_vipd(v, &[]),
            Router::Keepalived(k, cfg) => {
                *k = Some(lab.keepalived(node, cfg)?);
                Ok(())
            }
            Router::Frr(f, cfg) => {
                *f = Some(lab.frr(node, cfg)?);
                Ok(())
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Failure {
    Kill9,
    Sigterm,
}

/// r1 (vipd) and r2 (the peer).
struct Pair {
    lab: Lab,
    proto: Proto,
    routers: Routers,
    /// The VMAC both answer from (FRR scenarios): replies are then attributed to a router
    /// by captures on the bridge ports.
    vmac: Option<Mac>,
    /// The last probed run's bridge-port captures (r1's, r2's; VMAC scenarios only) and
    /// the wall-clock time of its `t0`, to place a probe against an advert on the wire.
    last_frames: Option<[Vec<Frame>; 2]>,
    last_wall: SystemTime,
}

struct Routers {
    r1: Router,
    r2: Router,
}

impl Routers {
    fn get(&mut self, label: &str) -> &mut Router {
        if label == "r1" {
            &mut self.r1
        } else {
            &mut self.r2
        }
    }
}

impl Pair {
    fn router(&mut self, label: &str) -> &mut Router {
        self.routers.get(label)
    }

    fn captures(&self) -> Result<Option<[Capture; 2]>> {
        // The adverts too: the FRR allowance below is checked against them.
        let filter = if self.proto.vip.is_ipv4() {
            "arp or ip proto 112"
        } else {
            "icmp6 or ip6 proto 112"
        };
        match self.vmac {
            None => Ok(None),
            Some(_) => Ok(Some([
                self.lab.capture_port(self.lab.router(1), filter)?,
                self.lab.capture_port(self.lab.router(2), filter)?,
            ])),
        }
    }

    /// Probes the VIP while `act` runs and until `settle` after it; returns the run with
    /// every reply attributed to r1 or r2 and the instant `act` started.
    fn probed(
        &mut self,
        settle: Duration,
        act: impl FnOnce(&Lab, &mut Routers) -> Result<()>,
    ) -> Result<(vip_tests::lab::ProbeRun, Instant)> {
        let captures = self.captures()?;
        let names: Vec<(Mac, &str)> = self.vmac.iter().map(|m| (*m, "vmac")).collect();
        let probe = self.lab.probe(
            self.lab.client(),
            Method::Resolve,
            self.proto.vip,
            PROBE_EVERY,
            Duration::from_secs(30),
            &names,
        )?;
        // A baseline of the steady state before the event.
        std::thread::sleep(Duration::from_millis(200));
        let t0 = Instant::now();
        self.last_wall = SystemTime::now();
        let acted = act(&self.lab, &mut self.routers);
        if acted.is_ok() {
            std::thread::sleep(settle);
        }
        let mut run = probe.stop()?;
        acted?;
        if let Some([c1, c2]) = captures {
            let (f1, f2) = (c1.stop()?, c2.stop()?);
            let n = run.attribute(&[("r1", &f1), ("r2", &f2)]);
            ensure!(
                n as f64 >= run.answered() as f64 * 0.9,
                "captures saw {n} of {} replies",
                run.answered()
            );
            self.last_frames = Some([f1, f2]);
        } else {
            self.last_frames = None;
        }
        Ok((run, t0))
    }

    /// `from` fails `how`; `to` must take over.
    fn fail_over(&mut self, from: &str, to: &str, how: Failure) -> Result<()> {
        // Generous: under load a peer's notify script (how keepalived's state is read)
        // has lagged its transition by seconds. The client's view below is what counts.
        let bound = self.proto.master_down(100) + Duration::from_secs(5);
        let mut took = Duration::ZERO;
        let (run, t0) = self.probed(Duration::from_millis(400), |_, r| {
            let start = Instant::now();
            r.get(from).fail(how)?;
            r.get(to).wait(true, bound)?;
            took = start.elapsed();
            Ok(())
        })?;
        let (fname, tname) = (self.router(from).name(), self.router(to).name());
        let before: Vec<_> = run.between(run.started, t0).collect();
        // 100 probes when the prober gets its CPU; on two cores busy with other labs it
        // has been seen to manage a third of that, still a baseline.
        ensure!(
            before.len() >= 20,
            "baseline of {} probes only (prober starved): {}",
            before.len(),
            run.summary()
        );
        ensure!(
            before
                .iter()
                .all(|p| p.responders() == [from.into()].into()),
            "before the {how:?} only {from} answers: {}\n{}",
            run.summary(),
            timeline(&run, t0)
        );
        let first = run
            .first_answer_by(to, t0)
            .with_context(|| format!("{to} never answered: {}", run.summary()))?;
        let first_answer = first.sent - t0;
        let stale = run
            .last_answer_by(from, Instant::now())
            .map(|p| p.sent.saturating_duration_since(t0));
        println!(
            "  {how:?} of {from} ({fname}): {to} ({tname}) master after {:.1} ms (state poll), \
             first answer {:.1} ms; {from} last answered {:?} ms after; gap {:.1} ms; \
             overlap {:.1} ms\n    {}",
            took.as_secs_f64() * 1e3,
            first_answer.as_secs_f64() * 1e3,
            stale.map(|d| d.as_millis()),
            run.longest_gap().span.as_secs_f64() * 1e3,
            run.overlap_total().as_secs_f64() * 1e3,
            run.summary()
        );
        // A killed master is found dead after the backup's Master_Down_Interval; a clean
        // stop resigns and the backup waits only its skew time (under an interval). Twice
        // that plus half a second: a peer starved by other labs on these two cores has
        // taken 0.4 s from its first advert to answering at 100 ms.
        let limit = match how {
            Failure::Kill9 => self.proto.master_down(100),
            Failure::Sigterm => self.proto.interval,
        } * 2
            + Duration::from_millis(500);
        ensure!(
            first_answer <= limit,
            "{to} answered {first_answer:?} after the {how:?}, more than {limit:?}"
        );
        // Whoever failed, the new master answers every probe once settled.
        let tail: Vec<_> = run
            .probes
            .iter()
            .filter(|p| p.sent + Duration::from_millis(150) >= run.probes.last().unwrap().sent)
            .collect();
        ensure!(
            tail.iter().all(|p| p.responders().contains(to)),
            "{to} answers every probe once settled: {}\n{}",
            run.summary(),
            timeline(&run, t0)
        );
        if fname == "vipd" {
            // kill -9: vipd's lease lapses before any backup takes over, so no overlap.
            // SIGTERM: vipd resigns and answers until the new master's first advert, which
            // its XDP program acts on as it arrives (the slot is marked resigning): the
            // release does not wait for the daemon to be scheduled, so the peer's answers,
            // which follow its advert, never meet vipd's.
            // FRR's vrrpd answers from a macvlan, and a macvlan gets broadcasts (the ARP
            // probes) from a work queue, late: a probe vipd answered before FRR's advert
            // reached it can be answered by FRR too, once the queue runs after FRR took
            // the VIP. One such probe at the handover is that queue, not two owners; two
            // or more would be.
            let queued = if tname == "FRR" && how == Failure::Sigterm {
                1
            } else {
                0
            };
            let both: usize = run.overlaps().iter().map(|o| o.probes).sum();
            ensure!(
                both <= queued,
                "two routers answered while vipd went away: {}\n{}",
                run.summary(),
                timeline(&run, t0)
            );
            if both > 0 {
                // The allowance's cause, checked: the doubly answered probe left the
                // client before FRR's first advert as master (the first advert above
                // priority 0 after vipd's resignation on the new master's port), so
                // vipd answered it as owner and FRR's queue answered it late. Measured: 15
                // runs × 0 failures, none with a doubly answered probe, so this check has
                // not yet been exercised by a real overlap.
                let frames = self
                    .last_frames
                    .as_ref()
                    .context("a VMAC scenario has captures")?;
                let port = &frames[usize::from(to == "r2")];
                let vrrp = |f: &Frame| match f.kind() {
                    Kind::Vrrp { priority, .. } => Some((f.at, priority)),
                    _ => None,
                };
                let resigned = port
                    .iter()
                    .filter_map(vrrp)
                    .find(|(at, p)| *p == 0 && *at >= self.last_wall)
                    .map(|(at, _)| at)
                    .context("vipd's resignation (priority 0) not seen on the wire")?;
                let first_advert = port
                    .iter()
                    .filter_map(vrrp)
                    .find(|(at, p)| *p > 0 && *at > resigned)
                    .map(|(at, _)| at)
                    .context("FRR's first advert as master not seen on the wire")?;
                for p in run.probes.iter().filter(|p| p.responders().len() > 1) {
                    let sent = self.last_wall + p.sent.saturating_duration_since(t0);
                    ensure!(
                        p.sent >= t0 && sent < first_advert,
                        "probe {} answered by both was sent {:?} after FRR's first advert: \
                         not the macvlan queue\n{}",
                        p.seq,
                        sent.duration_since(first_advert).unwrap_or_default(),
                        timeline(&run, t0)
                    );
                }
            }
            ensure!(
                tail.iter().all(|p| p.responders() == [to.into()].into()),
                "only {to} answers once settled: {}",
                run.summary()
            );
        }
        Ok(())
    }

    /// `label` restarts with the higher priority and must take the VIP back.
    fn preempt_back(&mut self, label: &str, other: &str) -> Result<()> {
        let bound = self.proto.master_down(200) + Duration::from_secs(5);
        let mut took = Duration::ZERO;
        let (run, t0) = self.probed(Duration::from_millis(400), |lab, r| {
            let start = Instant::now();
            r.get(label).restart(lab, label)?;
            r.get(label).wait(true, bound)?;
            took = start.elapsed();
            r.get(other).wait(false, bound)?;
            Ok(())
        })?;
        let first = run
            .first_answer_by(label, t0)
            .with_context(|| format!("{label} never answered again: {}", run.summary()))?;
        let other_last = run
            .last_answer_by(other, Instant::now())
            .map(|p| p.sent.saturating_duration_since(t0).as_millis());
        println!(
            "  restart of {label} ({}): master again after {:.1} ms, first answer {:.1} ms; \
             {other} last answered {other_last:?} ms after; gap {:.1} ms; overlap {:.1} ms\n    {}",
            self.router(label).name(),
            took.as_secs_f64() * 1e3,
            (first.sent - t0).as_secs_f64() * 1e3,
            run.longest_gap().span.as_secs_f64() * 1e3,
            run.overlap_total().as_secs_f64() * 1e3,
            run.summary()
        );
        let last = run.probes.last().context("no probes")?;
        ensure!(
            last.responders() == [label.into()].into(),
            "after preempting only {label} answers: {}\n{}",
            run.summary(),
            timeline(&run, t0)
        );
        Ok(())
    }
}

/// Who answered, run-length encoded with times relative to `t0` (ms): enough to see
/// where a failing handover went wrong.
fn timeline(run: &ProbeRun, t0: Instant) -> String {
    let mut out: Vec<(String, f64, usize)> = Vec::new();
    for p in &run.probes {
        let who: Vec<String> = p.responders().into_iter().collect();
        let who = if who.is_empty() {
            "-".into()
        } else {
            who.join("+")
        };
        let at = if p.sent >= t0 {
            (p.sent - t0).as_secs_f64() * 1e3
        } else {
            -((t0 - p.sent).as_secs_f64() * 1e3)
        };
        match out.last_mut() {
            Some((w, _, n)) if *w == who => *n += 1,
            _ => out.push((who, at, 1)),
        }
    }
    out.iter()
        .map(|(w, at, n)| format!("{at:.0}:{w}x{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the routers said about their transitions, for a failure message.
fn transitions(pair: &Pair) -> String {
    let mut out = String::new();
    for r in [&pair.routers.r1, &pair.routers.r2] {
        match r {
            Router::Vipd(v) => {
                for l in strip_ansi(&v.log())
                    .lines()
                    .filter(|l| l.contains("transition"))
                {
                    out += &format!("  vipd: {l}\n");
                }
            }
            Router::Keepalived(Some(k), _) => {
                for (at, _, state) in k.transitions() {
                    out += &format!("  keepalived: {at:.3} {state}\n");
                }
            }
            _ => {}
        }
    }
    out
}

/// The whole sequence for one pair: kill -9 of the master, its return, SIGTERM.
fn run_pair(mut pair: Pair, vipd_master: bool) -> Result<()> {
    let result = run_sequence(&mut pair, vipd_master);
    if result.is_err() {
        println!("transitions:\n{}", transitions(&pair));
    }
    result
}

fn run_sequence(pair: &mut Pair, vipd_master: bool) -> Result<()> {
    let (master, backup) = if vipd_master {
        ("r1", "r2")
    } else {
        ("r2", "r1")
    };
    let t = pair.proto.master_down(100) + Duration::from_secs(5);
    pair.router(master).wait(true, t)?;
    pair.router(backup).wait(false, t)?;
    // Every router starts as backup: only one that stays backup for a whole
    // Master_Down_Interval has accepted the master's adverts.
    std::thread::sleep(pair.proto.master_down(100) + Duration::from_millis(100));
    ensure!(
        pair.router(backup).is(false)? && pair.router(master).is(true)?,
        "{backup} ({}) accepts {master} ({}) as master",
        pair.router(backup).name(),
        pair.router(master).name()
    );
    if let Router::Vipd(v) = &pair.routers.r1 {
        let gw = v.instance("gw")?;
        println!(
            "  vipd {} priority {}, master {}, adverts sent {} received {}",
            gw["state"], gw["priority"], gw["master"], gw["adverts_sent"], gw["adverts_received"]
        );
        if !vipd_master {
            ensure!(
                gw["adverts_received"].as_u64() > Some(0),
                "vipd hears the peer: {gw}"
            );
        }
    }
    pair.fail_over(master, backup, Failure::Kill9)?;
    pair.preempt_back(master, backup)?;
    pair.fail_over(master, backup, Failure::Sigterm)?;
    Ok(())
}

fn keepalived_pair(proto: Proto, vipd_master: bool) -> Result<()> {
    let lab = Lab::builder().routers(2).client().build()?;
    let (p1, p2) = if vipd_master { (200, 100) } else { (100, 200) };
    println!(
        "--- vipd (r1, {p1}) with keepalived (r2, {p2}): v{} {} every {:?}{} ---",
        proto.version,
        proto.vip,
        proto.interval,
        proto.auth.map(|_| ", auth").unwrap_or_default()
    );
    let v = lab.vipd(
        Path::new(VIPD),
        lab.router(1),
        &proto.vipd_section(p1, false),
    )?;
    let cfg = proto.keepalived(p2, proto.auth);
    let k = lab.keepalived(lab.router(2), &cfg)?;
    let pair = Pair {
        proto,
        routers: Routers {
            r1: Router::Vipd(v),
            r2: Router::Keepalived(Some(k), cfg),
        },
        vmac: None,
        last_frames: None,
        last_wall: SystemTime::now(),
        lab,
    };
    run_pair(pair, vipd_master)
}

fn frr_pair(vipd_master: bool) -> Result<()> {
    let lab = Lab::builder().routers(2).client().build()?;
    let proto = Proto::v3(100);
    let (p1, p2) = if vipd_master { (200, 100) } else { (100, 200) };
    println!("--- vipd (r1, {p1}, vmac) with FRR vrrpd (r2, {p2}): v3 every 100 ms ---");
    let v = lab.vipd(
        Path::new(VIPD),
        lab.router(1),
        &proto.vipd_section(p1, true),
    )?;
    let cfg = proto.frr(p2);
    let vmac = cfg.vmac4();
    let f = lab.frr(lab.router(2), &cfg)?;
    let pair = Pair {
        proto,
        routers: Routers {
            r1: Router::Vipd(v),
            r2: Router::Frr(Some(f), cfg),
        },
        vmac: Some(vmac),
        last_frames: None,
        last_wall: SystemTime::now(),
        lab,
    };
    run_pair(pair, vipd_master)
}

#[test]
fn keepalived_v3_100ms_backs_up_vipd_and_takes_over_on_kill_and_stop() -> Result<()> {
    require_root();
    keepalived_pair(Proto::v3(100), true)
}

#[test]
fn vipd_backs_up_keepalived_v3_100ms_and_takes_over_on_kill_and_stop() -> Result<()> {
    require_root();
    keepalived_pair(Proto::v3(100), false)
}

#[test]
fn keepalived_v3_10ms_backs_up_vipd_and_takes_over_on_kill_and_stop() -> Result<()> {
    require_root();
    keepalived_pair(Proto::v3(10), true)
}

#[test]
fn vipd_backs_up_keepalived_v3_10ms_and_takes_over_on_kill_and_stop() -> Result<()> {
    require_root();
    keepalived_pair(Proto::v3(10), false)
}

fn v2_auth() -> Proto {
    Proto {
        version: 2,
        interval: Duration::from_secs(1),
        auth: Some("secret1"),
        ..Proto::v3(100)
    }
}

#[test]
fn keepalived_v2_with_password_backs_up_vipd_and_takes_over() -> Result<()> {
    require_root();
    keepalived_pair(v2_auth(), true)
}

#[test]
fn vipd_backs_up_keepalived_v2_with_password_and_takes_over() -> Result<()> {
    require_root();
    keepalived_pair(v2_auth(), false)
}

fn v3_ipv6() -> Proto {
    Proto {
        vip: "2001:db8::1".parse().unwrap(),
        ..Proto::v3(100)
    }
}

#[test]
fn keepalived_v3_ipv6_backs_up_vipd_and_takes_over() -> Result<()> {
    require_root();
    keepalived_pair(v3_ipv6(), true)
}

#[test]
fn vipd_backs_up_keepalived_v3_ipv6_and_takes_over() -> Result<()> {
    require_root();
    keepalived_pair(v3_ipv6(), false)
}

#[test]
fn frr_vrrpd_backs_up_vipd_with_vmac_and_takes_over() -> Result<()> {
    require_root();
    frr_pair(true)
}

#[test]
fn vipd_with_vmac_backs_up_frr_vrrpd_and_takes_over() -> Result<()> {
    require_root();
    frr_pair(false)
}

/// A v2 password mismatch must keep the routers apart: each ignores the other, so both
/// are master (the split brain is the visible symptom an operator must be able to trace).
#[test]
fn v2_wrong_password_is_not_accepted_and_both_claim_master() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let proto = v2_auth();
    let v = lab.vipd(
        Path::new(VIPD),
        lab.router(1),
        &proto.vipd_section(200, false),
    )?;
    // Every advert keepalived ever sends, to compare with what vipd says it rejected.
    let adverts = lab.capture_port(lab.router(2), "vrrp")?;
    let k = lab.keepalived(lab.router(2), &proto.keepalived(100, Some("wrong99")))?;
    // keepalived at 100 becomes master only because it rejects vipd's 200.
    let took = k.wait_state("MASTER", proto.master_down(100) + Duration::from_secs(3))?;
    v.wait_state("gw", "master", Duration::from_secs(5))?;
    // keepalived advertises as it becomes master; vipd's XDP program must have refused
    // that one (the password is checked there, as in the daemon).
    wait_until(
        "vipd to reject keepalived's first advert as master",
        Duration::from_secs(3),
        Duration::from_millis(20),
        || Ok(v.xdp("vrrp_drop_auth")? >= 1),
    )?;
    // Three of vipd's intervals: three chances for each side to (wrongly) give in.
    let mark = v.instance("gw")?;
    std::thread::sleep(proto.interval * 3 + Duration::from_millis(200));
    let ka_sent = adverts
        .stop()?
        .iter()
        .filter(|f| matches!(f.kind(), Kind::Vrrp { src_mac, .. } if src_mac == lab.router(2).mac))
        .count() as u64;
    let gw = v.instance("gw")?;
    let status = v.status()?;
    println!("keepalived MASTER after {took:?}; it sent {ka_sent} adverts in all");
    println!("vipd xdp: {}", status["xdp"]);
    println!("{}", v.status_text()?);
    assert_eq!(gw["state"], "master", "vipd stays master: {gw}");
    assert_eq!(gw["transitions"], mark["transitions"], "no flapping: {gw}");
    assert_eq!(gw["adverts_received"], 0, "no advert accepted: {gw}");
    // The XDP program refuses every one of keepalived's adverts for the password (all it
    // saw of VRID 51 here are keepalived's): none reaches the daemon, none can release
    // vipd's slot, and the drop counter says why.
    let dropped = status["xdp"]["vrrp_drop_auth"].as_u64().unwrap_or(0);
    let passed = status["xdp"]["vrrp_pass"].as_u64().unwrap_or(0);
    assert!(
        dropped >= 1 && dropped <= ka_sent && passed == 0,
        "dropped {dropped} for the password, passed {passed}, keepalived sent {ka_sent}"
    );
    assert_eq!(gw["adverts_invalid"], 0, "none reached the daemon: {gw}");
    // keepalived's gratuitous ARPs for the VIP show up as a conflict in vipd's status.
    let r2_mac = mac_str(&lab.router(2).mac);
    assert!(
        status["conflicts"].as_array().is_some_and(|c| c
            .iter()
            .any(|c| c["vip"] == "192.0.2.1" && c["mac"] == r2_mac.as_str())),
        "vipd reports r2 claiming the VIP: {status}"
    );
    let ka_log = k.log();
    let refused = ka_log.matches("received an invalid passwd").count();
    println!("keepalived refused {refused} of vipd's adverts");
    assert!(
        refused >= 3,
        "keepalived refuses vipd's adverts too:\n{ka_log}"
    );
    assert_eq!(k.state().as_deref(), Some("MASTER"));
    let run = lab
        .probe(
            lab.client(),
            Method::Resolve,
            proto.vip,
            PROBE_EVERY,
            Duration::from_millis(200),
            &[],
        )?
        .finish()?;
    println!("{}", run.summary());
    assert_eq!(
        run.responders(),
        ["r1".to_string(), "r2".to_string()].into(),
        "both answer the VIP: {}",
        run.summary()
    );
    Ok(())
}
