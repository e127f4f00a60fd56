//! Reloads that change a running master in place, and the operator's maintenance
//! commands, on a real 10 ms pair: r1 (priority 150, the master) and r2 (100, its backup),
//! a client resolving the VIPs every 5 ms, and r1's adverts captured on its bridge port.
//!
//! For every change kind the issue lists, made on the master while it stays the best
//! (`every_change_kind_is_taken_on_in_place_by_a_master_that_stays_the_best`): every
//! probe answered, the backup never answers, zero transitions on both routers, the worst
//! gap between r1's adverts under two intervals, and the dry run's report equal to what
//! the reload then did. A sync group whose one member changes moves no member; an
//! instance joining a sync group keeps its state. BFD settings change with the session
//! staying Up (`bfd_settings_change_with_the_session_up`). A priority lowered below the
//! backup's, a demotion, a promotion and a handover each move the VIPs once,
//! make-before-break, with at most one lost probe; the demotion survives a reload and,
//! with a state file, a restart; an unprivileged user's commands are refused and change
//! nothing (`maintenance_hands_over_make_before_break_and_only_for_the_admin`).
//! Each step prints its figures (lost probes, worst advert gap, transitions).

use std::{
    net::{IpAddr, Ipv4Addr},
    path::Path,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;
use vip_tests::{
    lab::{Capture, Kind, Lab, Method, ProbeRun, Prober, Vipd},
    require_root,
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
const R1: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
const R2: &str = "192.0.2.12";
const VIP: &str = "192.0.2.1";
/// The ARP probes' period.
const PROBE: Duration = Duration::from_millis(5);

/// One `[[vrrp]]` section: `name`, VRID, priority, VIP, and extra lines.
fn section(name: &str, vrid: u8, priority: u8, vips: &[&str], extra: &str) -> String {
    let vips: Vec<String> = vips.iter().map(|v| format!("\"{v}/24\"")).collect();
    format!(
        "[[vrrp]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {vrid}\npriority = {priority}\n\
         advert_interval = \"10ms\"\nvips = [{}]\n{extra}\n",
        vips.join(", ")
    )
}

fn probe(lab: &Lab, vip: &str) -> Result<Prober> {
    lab.probe(
        lab.client(),
        Method::Resolve,
        vip.parse()?,
        PROBE,
        Duration::from_secs(20),
        &[],
    )
}

fn transitions(v: &Vipd, name: &str) -> Result<u64> {
    v.instance(name)?["transitions"]
        .as_u64()
        .context("transitions")
}

/// The instances' outcomes of a reload answer, as (instance, outcome, detail).
fn outcomes(reply: &Value) -> Vec<(String, String, String)> {
    reply["instances"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    let s = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
                    (s("instance"), s("outcome"), s("detail"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// r1's adverts for `vrid` captured between `from` and `to`, and the worst gap between
/// two of them.
fn advert_gap(
    frames: &[vip_tests::lab::Frame],
    vrid: u8,
    from: SystemTime,
    to: SystemTime,
) -> (usize, Duration) {
    let times: Vec<SystemTime> = frames
        .iter()
        .filter(|f| f.at >= from && f.at <= to)
        .filter(|f| matches!(f.kind(), Kind::Vrrp { vrid: v, src, .. } if v == vrid && src == R1))
        .map(|f| f.at)
        .collect();
    let worst = times
        .windows(2)
        .filter_map(|w| w[1].duration_since(w[0]).ok())
        .max()
        .unwrap_or(Duration::MAX);
    (times.len(), worst)
}

/// Gratuitous ARPs r1 sent for `vip` (sender and target address both the VIP).
fn garps(frames: &[vip_tests::lab::Frame], vip: Ipv4Addr) -> usize {
    frames
        .iter()
        .filter(|f| {
            matches!(f.kind(), Kind::ArpRequest { sender_ip, target_ip, .. }
                if sender_ip == vip && target_ip == vip)
        })
        .count()
}

/// What one reload step measured.
struct Step {
    name: &'static str,
    reply: Value,
    runs: Vec<ProbeRun>,
    frames: Vec<vip_tests::lab::Frame>,
    adverts: usize,
    worst_gap: Duration,
    transitions: (u64, u64),
    /// r1's worst loop lag since it started, before and after the step (µs): a lag that
    /// grew during the step is a stall of r1's loop, which a late advert then shows.
    lag_us: (u64, u64),
}

/// The pair a step runs on.
struct Pair<'a> {
    lab: &'a Lab,
    r1: &'a Vipd,
    r2: &'a Vipd,
}

impl Pair<'_> {
    /// Rewrites r1's instances to `config`, asks for a dry run, reloads with `vipd
    /// reload`, and measures: probes of `vips` from before the reload to 300 ms after,
    /// r1's adverts for `vrid` in that window, and the transitions of `watched` on both
    /// routers. Checks the dry run's report is the reload's.
    fn reload(
        &self,
        name: &'static str,
        config: &str,
        vips: &[&str],
        vrid: u8,
        watched: &[&str],
    ) -> Result<Step> {
        let count = |v: &Vipd| -> Result<u64> { watched.iter().map(|w| transitions(v, w)).sum() };
        let before = (count(self.r1)?, count(self.r2)?);
        let lag = |v: &Vipd| -> Result<u64> {
            v.status()?["loop_lag"]["worst_us"]
                .as_u64()
                .context("loop_lag")
        };
        let lag_before = lag(self.r1)?;
        self.r1.rewrite(config)?;
        let dry = self.r1.reload_json(true)?;
        ensure!(dry["ok"] == true, "{name}: the dry run refused: {dry}");
        let capture: Capture = self
            .lab
            .capture_port(self.lab.router(1), "ip proto 112 or arp")?;
        let probers: Vec<Prober> = vips
            .iter()
            .map(|v| probe(self.lab, v))
            .collect::<Result<_>>()?;
        std::thread::sleep(Duration::from_millis(100));
        let from = SystemTime::now();
        let reply = self.r1.reload_json(false)?;
        std::thread::sleep(Duration::from_millis(300));
        let to = SystemTime::now();
        let runs: Vec<ProbeRun> = probers
            .into_iter()
            .map(Prober::stop)
            .collect::<Result<_>>()?;
        let frames = capture.stop()?;
        ensure!(reply["ok"] == true, "{name}: the reload refused: {reply}");
        ensure!(
            outcomes(&dry) == outcomes(&reply),
            "{name}: the dry run said {dry}, the reload did {reply}"
        );
        let (adverts, worst_gap) = advert_gap(&frames, vrid, from - Duration::from_millis(50), to);
        let after = (count(self.r1)?, count(self.r2)?);
        let step = Step {
            name,
            reply,
            runs,
            frames,
            adverts,
            worst_gap,
            transitions: (after.0 - before.0, after.1 - before.1),
            lag_us: (lag_before, lag(self.r1)?),
        };
        step.print();
        Ok(step)
    }
}

impl Step {
    fn print(&self) {
        let changed: Vec<String> = outcomes(&self.reply)
            .into_iter()
            .filter(|(_, o, _)| o != "unchanged")
            .map(|(i, o, d)| format!("{i} {o} ({d})"))
            .collect();
        println!(
            "  {}: {}; adverts {} worst gap {:.2} ms; transitions r1 {} r2 {}; r1 loop lag worst {:.2} ms ({:.2} ms before)",
            self.name,
            changed.join(", "),
            self.adverts,
            self.worst_gap.as_secs_f64() * 1000.0,
            self.transitions.0,
            self.transitions.1,
            self.lag_us.1 as f64 / 1000.0,
            self.lag_us.0 as f64 / 1000.0
        );
        for r in &self.runs {
            println!("    {}", r.summary());
        }
    }

    /// The instance `name`'s outcome and detail.
    fn outcome(&self, name: &str) -> (String, String) {
        outcomes(&self.reply)
            .into_iter()
            .find(|(i, _, _)| i == name)
            .map(|(_, o, d)| (o, d))
            .unwrap_or_default()
    }

    /// The master stayed the best: every probe answered by r1 alone, zero transitions,
    /// adverts never more than two intervals (`interval`) apart.
    fn undisturbed(&self, interval: Duration) -> Result<&Self> {
        for r in &self.runs {
            ensure!(r.sent() >= 60, "{}: {}", self.name, r.summary());
            ensure!(
                r.lost() == 0 && r.responders() == ["r1".into()].into(),
                "{}: r1 answers every probe alone: {}",
                self.name,
                r.summary()
            );
        }
        ensure!(
            self.transitions == (0, 0),
            "{}: transitions {:?}",
            self.name,
            self.transitions
        );
        ensure!(
            self.adverts >= 20 && self.worst_gap < interval * 2,
            "{}: {} adverts, worst gap {:?} (two intervals: {:?}); r1's worst loop lag {} µs, {} µs before the step",
            self.name,
            self.adverts,
            self.worst_gap,
            interval * 2,
            self.lag_us.1,
            self.lag_us.0
        );
        Ok(self)
    }

    fn changed(&self, name: &str, fields: &str) -> Result<&Self> {
        let got = self.outcome(name);
        ensure!(
            got == ("changed".into(), fields.into()),
            "{}: {name} should be changed in place ({fields}): {got:?}",
            self.name
        );
        Ok(self)
    }
}

/// r1 and r2 run `gw` (10 ms, VIP 192.0.2.1, `priority`) and the sync group `edge`
/// (`sa` at `sa_priority`, `sb` at `sb_priority`).
fn pair_config(
    priority: u8,
    gw_extra: &str,
    gw_vips: &[&str],
    sa_priority: u8,
    sb_priority: u8,
) -> String {
    section("gw", 51, priority, gw_vips, gw_extra)
        + &section(
            "sa",
            52,
            sa_priority,
            &["192.0.2.2"],
            "sync_group = \"edge\"",
        )
        + &section(
            "sb",
            53,
            sb_priority,
            &["192.0.2.3"],
            "sync_group = \"edge\"",
        )
}

#[test]
fn every_change_kind_is_taken_on_in_place_by_a_master_that_stays_the_best() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let bin = Path::new(VIPD);
    let r1 = lab.vipd(bin, lab.router(1), &pair_config(150, "", &[VIP], 150, 150))?;
    let r2 = lab.vipd(bin, lab.router(2), &pair_config(100, "", &[VIP], 100, 100))?;
    for name in ["gw", "sa", "sb"] {
        r1.wait_state(name, "master", Duration::from_secs(5))?;
        r2.wait_state(name, "backup", Duration::from_secs(5))?;
    }
    let p = Pair {
        lab: &lab,
        r1: &r1,
        r2: &r2,
    };
    let ten = Duration::from_millis(10);
    let gw = |extra: &str| pair_config(150, extra, &[VIP], 150, 150);
    let watched = ["gw"];

    // VIPs: one added is answered and announced alone; removed, it is no longer answered.
    let s = p.reload(
        "a VIP added",
        &pair_config(150, "", &[VIP, "192.0.2.5"], 150, 150),
        &[VIP],
        51,
        &watched,
    )?;
    s.undisturbed(ten)?.changed("gw", "vips")?;
    let (new, old) = (
        garps(&s.frames, Ipv4Addr::new(192, 0, 2, 5)),
        garps(&s.frames, Ipv4Addr::new(192, 0, 2, 1)),
    );
    println!("    gratuitous ARPs: 192.0.2.5 {new}, 192.0.2.1 {old}");
    ensure!(
        new >= 1 && old == 0,
        "only the new VIP is announced: {new} / {old}"
    );
    let added = probe(&lab, "192.0.2.5")?;
    std::thread::sleep(Duration::from_millis(100));
    let added = added.stop()?;
    ensure!(
        added.lost() == 0 && added.responders() == ["r1".into()].into(),
        "the new VIP is answered by r1: {}",
        added.summary()
    );
    let s = p.reload("the VIP removed", &gw(""), &[VIP], 51, &watched)?;
    s.undisturbed(ten)?.changed("gw", "vips")?;
    let gone = probe(&lab, "192.0.2.5")?;
    std::thread::sleep(Duration::from_millis(100));
    let gone = gone.stop()?;
    ensure!(
        gone.answered() == 0,
        "the removed VIP is not answered: {}",
        gone.summary()
    );

    // Priority and weights: still the best.
    p.reload(
        "priority 150 -> 140",
        &pair_config(140, "", &[VIP], 150, 150),
        &[VIP],
        51,
        &watched,
    )?
    .undisturbed(ten)?
    .changed("gw", "priority")?;
    let track = lab.scratch("track")?.join("gw.weight");
    std::fs::write(&track, "1\n")?;
    let tracked = |weight: i32| {
        format!(
            "track_files = [{{ path = \"{}\", weight = {weight} }}]\n\
             track_interfaces = [{{ name = \"eth0\", weight = -10 }}]",
            track.display()
        )
    };
    p.reload("track items added", &gw(&tracked(5)), &[VIP], 51, &watched)?
        .undisturbed(ten)?
        .changed("gw", "priority, track_interfaces, track_files")?;
    ensure!(
        r1.instance("gw")?["priority"] == 155,
        "the file's weight counts at once: {}",
        r1.instance("gw")?
    );
    p.reload("a weight changed", &gw(&tracked(-20)), &[VIP], 51, &watched)?
        .undisturbed(ten)?
        .changed("gw", "track_files")?;
    p.reload("track items removed", &gw(""), &[VIP], 51, &watched)?
        .undisturbed(ten)?
        .changed("gw", "track_interfaces, track_files")?;

    // The interval, both ways.
    let slower = gw("").replacen(
        "advert_interval = \"10ms\"",
        "advert_interval = \"20ms\"",
        1,
    );
    p.reload("interval 10 -> 20 ms", &slower, &[VIP], 51, &watched)?
        .undisturbed(Duration::from_millis(20))?
        .changed("gw", "advert_interval")?;
    p.reload("interval 20 -> 10 ms", &gw(""), &[VIP], 51, &watched)?
        .undisturbed(Duration::from_millis(20))?
        .changed("gw", "advert_interval")?;

    // Admission and where adverts go.
    let allow = "allowed_peers = [\"192.0.2.12\"]";
    p.reload("allowed_peers", &gw(allow), &[VIP], 51, &watched)?
        .undisturbed(ten)?
        .changed("gw", "allowed_peers")?;
    let unicast = format!("{allow}\nunicast_peers = [\"192.0.2.12\"]");
    p.reload("unicast_peers", &gw(&unicast), &[VIP], 51, &watched)?
        .undisturbed(ten)?
        .changed("gw", "unicast_peers")?;
    p.reload("back to multicast", &gw(allow), &[VIP], 51, &watched)?
        .undisturbed(ten)?
        .changed("gw", "unicast_peers")?;

    // Accept_Mode off takes the VIP address out of r1's kernel; preemption settings.
    let policy = format!("{allow}\naccept = false\npreempt = false\npreempt_delay = \"1s\"");
    p.reload("accept, preempt, delay", &gw(&policy), &[VIP], 51, &watched)?
        .undisturbed(ten)?
        .changed("gw", "preempt, preempt_delay, accept")?;
    let addrs = lab.exec(
        lab.router(1),
        &["ip", "-4", "-br", "addr", "show", "dev", "eth0"],
    )?;
    ensure!(
        !addrs.contains("192.0.2.1/24"),
        "accept = false: no VIP address: {addrs}"
    );

    // Announcements, hooks, routes and rules: only the difference touched.
    let garp =
        format!("{policy}\ngarp_repeat = 3\ngarp_interval = \"20ms\"\ngarp_refresh = \"5s\"");
    p.reload("garp settings", &gw(&garp), &[VIP], 51, &watched)?
        .undisturbed(ten)?
        .changed("gw", "garp_repeat, garp_interval, garp_refresh")?;
    let hooked = format!("{garp}\nnotify = \"/bin/true\"");
    p.reload("a hook", &gw(&hooked), &[VIP], 51, &watched)?
        .undisturbed(ten)?
        .changed("gw", "notify")?;
    let routed = format!(
        "{hooked}\nvirtual_routes = [{{ to = \"203.0.113.0/24\", via = \"192.0.2.254\" }}]\n\
         virtual_rules = [{{ from = \"198.51.100.0/24\", table = 100, priority = 100 }}]"
    );
    p.reload("a route and a rule", &gw(&routed), &[VIP], 51, &watched)?
        .undisturbed(ten)?
        .changed("gw", "virtual_routes, virtual_rules")?;
    let wait_for = |argv: &[&str], want: bool| -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let out = lab.exec(lab.router(1), argv)?;
            if out.trim().is_empty() != want || Instant::now() > deadline {
                return Ok(out);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let route = wait_for(&["ip", "route", "show", "203.0.113.0/24"], true)?;
    let rule = wait_for(&["ip", "rule", "show", "pref", "100"], true)?;
    ensure!(
        route.contains("via 192.0.2.254"),
        "the route is installed: {route:?}"
    );
    ensure!(
        rule.contains("198.51.100.0/24"),
        "the rule is installed: {rule:?}"
    );
    let moved = routed.replace("192.0.2.254", "192.0.2.253");
    p.reload("the route changed", &gw(&moved), &[VIP], 51, &watched)?
        .undisturbed(ten)?
        .changed("gw", "virtual_routes")?;
    let route = wait_for(
        &[
            "ip",
            "route",
            "show",
            "203.0.113.0/24",
            "via",
            "192.0.2.254",
        ],
        false,
    )?;
    ensure!(route.trim().is_empty(), "the old route is gone: {route:?}");
    let route = lab.exec(lab.router(1), &["ip", "route", "show", "203.0.113.0/24"])?;
    let rule = lab.exec(lab.router(1), &["ip", "rule", "show", "pref", "100"])?;
    ensure!(
        route.contains("via 192.0.2.253") && rule.contains("198.51.100.0/24"),
        "the new route, the rule untouched: {route:?} {rule:?}"
    );

    // A sync group whose one member changes: no member moves.
    let sync_changed = pair_config(150, &moved, &[VIP], 140, 150);
    let s = p.reload(
        "one sync-group member changed",
        &sync_changed,
        &["192.0.2.2", "192.0.2.3"],
        52,
        &["sa", "sb"],
    )?;
    s.undisturbed(ten)?.changed("sa", "priority")?;
    ensure!(
        s.outcome("sb").0 == "unchanged",
        "sb untouched: {:?}",
        s.outcome("sb")
    );

    // An instance joining a sync group carries its state into it.
    let joined = sync_changed.replacen(
        "vips = [\"192.0.2.1/24\"]\n",
        "vips = [\"192.0.2.1/24\"]\nsync_group = \"edge\"\n",
        1,
    );
    p.reload(
        "gw joins the sync group",
        &joined,
        &[VIP, "192.0.2.2", "192.0.2.3"],
        51,
        &["gw", "sa", "sb"],
    )?
    .undisturbed(ten)?
    .changed("gw", "sync_group")?;
    ensure!(
        r1.instance("gw")?["sync_group"] == "edge",
        "{}",
        r1.instance("gw")?
    );
    let status = r1.status_text()?;
    println!("  r1 after the reloads:\n{status}");
    ensure!(
        status.contains("last reload"),
        "status shows the last reload: {status}"
    );
    Ok(())
}

/// Both routers run BFD (echoes every 10 ms) with the VRRP pair. A reload changes r1's
/// BFD settings (20 ms, multiplier 4): the session on both sides stays Up (no down
/// counted), r2 learns the new multiplier from r1's Poll (its detection time of r1 goes
/// from 3 s to 4 s), r1 stays master, and every probe is answered by r1.
#[test]
fn bfd_settings_change_with_the_session_up() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let bin = Path::new(VIPD);
    // Each names the other in `allowed_peers`: a master answers BFD only from routers
    // it has a reason to talk to (docs/operations.md).
    let bfd = |ms: u32, mult: u8, other: &str| {
        format!(
            "allowed_peers = [\"{other}\"]\nbfd = {{ interval = \"{ms}ms\", multiplier = {mult} }}"
        )
    };
    let r1 = lab.vipd(
        bin,
        lab.router(1),
        &section("gw", 51, 150, &[VIP], &bfd(10, 3, R2)),
    )?;
    let r2 = lab.vipd(
        bin,
        lab.router(2),
        &section("gw", 51, 100, &[VIP], &bfd(10, 3, &R1.to_string())),
    )?;
    r1.wait_state("gw", "master", Duration::from_secs(5))?;
    r2.wait_state("gw", "backup", Duration::from_secs(5))?;
    // The master follows nobody: its session for r2 is kept for r2's sake, shown in the
    // summary only.
    let up = |v: &Vipd| -> Result<bool> {
        let s = v.status()?;
        Ok(s["bfd"]
            .as_array()
            .is_some_and(|a| a.iter().any(|b| b["state"] == "up"))
            || s["bfd_summary"]["passive_up"].as_u64().unwrap_or(0) > 0)
    };
    vip_tests::lab::wait_until(
        "BFD up on both",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || Ok(up(&r1)? && up(&r2)?),
    )?;
    let downs = |v: &Vipd| -> Result<u64> {
        let s = v.status()?;
        let count = |o: &Value| -> u64 {
            o.as_object()
                .map(|o| o.values().map(|n| n.as_u64().unwrap_or(0)).sum())
                .unwrap_or(0)
        };
        let followed: u64 = s["bfd"]
            .as_array()
            .map(|a| a.iter().map(|b| count(&b["downs"])).sum())
            .unwrap_or(0);
        Ok(followed + count(&s["bfd_summary"]["passive_downs"]))
    };
    let before = (downs(&r1)?, downs(&r2)?);
    let p = Pair {
        lab: &lab,
        r1: &r1,
        r2: &r2,
    };
    let s = p.reload(
        "BFD settings",
        &section("gw", 51, 150, &[VIP], &bfd(20, 4, R2)),
        &[VIP],
        51,
        &["gw"],
    )?;
    s.undisturbed(Duration::from_millis(10))?
        .changed("gw", "bfd")?;
    std::thread::sleep(Duration::from_millis(500));
    let after = (downs(&r1)?, downs(&r2)?);
    let sessions = r1.status()?["bfd_summary"].clone();
    println!("  r1's BFD summary after the reload: {sessions}");
    ensure!(
        after == before && up(&r1)? && up(&r2)?,
        "the sessions stayed Up: downs {before:?} -> {after:?}"
    );
    // r1's Poll carried its new multiplier: r2's detection time of r1 is now 4 × r1's
    // Control interval (1 s) instead of 3 ×.
    let theirs = r2.status()?["bfd"][0].clone();
    println!("  r2's session: {theirs}");
    ensure!(
        theirs["detection_ms"] == 4000.0 && theirs["state"] == "up",
        "r2 sees r1's new settings: {theirs}"
    );
    Ok(())
}

/// `vipd` as another user: `setpriv` options.
const NOBODY: &[&str] = &["--reuid=nobody", "--regid=nogroup", "--clear-groups"];
const NOBODY_ADMIN: &[&str] = &["--reuid=nobody", "--regid=nogroup", "--groups=adm"];

/// A move of the VIP from `old` to `new` as the client saw it: at most one lost probe,
/// never two answering, the new router answering at the end.
fn one_move(run: &ProbeRun, old: &str, new: &str, what: &str) -> Result<()> {
    println!("    {what}: {}", run.summary());
    let t = run
        .takeover(old, new, run.started)
        .with_context(|| format!("{what}: no move from {old} to {new}: {}", run.summary()))?;
    println!(
        "    {what}: last {old} answer to first {new} answer {:.2} ms",
        t.gap.as_secs_f64() * 1000.0
    );
    ensure!(
        run.overlaps().is_empty(),
        "{what}: two answered: {}",
        run.summary()
    );
    ensure!(
        run.lost() <= 1,
        "{what}: at most one lost probe: {}",
        run.summary()
    );
    ensure!(
        run.probes
            .last()
            .is_some_and(|p| p.responders() == [new.to_owned()].into()),
        "{what}: {new} answers at the end: {}",
        run.summary()
    );
    Ok(())
}

/// Runs `act` while probing the VIP, until `settled` holds (bounded), then 200 ms more.
fn probed(
    lab: &Lab,
    act: impl FnOnce() -> Result<()>,
    settled: impl Fn() -> Result<bool>,
) -> Result<ProbeRun> {
    let p = probe(lab, VIP)?;
    std::thread::sleep(Duration::from_millis(100));
    act()?;
    vip_tests::lab::wait_until(
        "the move to settle",
        Duration::from_secs(5),
        Duration::from_millis(10),
        settled,
    )?;
    std::thread::sleep(Duration::from_millis(200));
    p.stop()
}

fn ctl_ok(v: &Vipd, as_user: &[&str], args: &[&str]) -> Result<String> {
    let out = v.ctl(as_user, args)?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "vipd {args:?} failed: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(text)
}

#[test]
fn maintenance_hands_over_make_before_break_and_only_for_the_admin() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let bin = Path::new(VIPD);
    let state = lab.scratch("state")?.join("r1.state");
    let mut r1 = lab.vipd_configured(bin, lab.router(1), &section("gw", 51, 150, &[VIP], ""))?;
    r1.set_global(&format!(
        "control_group = \"nogroup\"\nadmin_group = \"adm\"\nstate_file = \"{}\"\n",
        state.display()
    ))?;
    lab.start_vipd(&mut r1, &[])?;
    let r2 = lab.vipd(bin, lab.router(2), &section("gw", 51, 100, &[VIP], ""))?;
    r1.wait_state("gw", "master", Duration::from_secs(5))?;
    r2.wait_state("gw", "backup", Duration::from_secs(5))?;
    let state_of = |v: &Vipd| v.state_of("gw");
    let is = |v: &Vipd, s: &str| -> Result<bool> { Ok(state_of(v)? == s) };

    // An unprivileged user may read but not change anything.
    let before = r1.instance("gw")?;
    let status = r1.ctl(NOBODY, &["status", "--json"])?;
    ensure!(
        status.status.success(),
        "nobody (in control_group) reads status: {status:?}"
    );
    for args in [
        &["demote", "gw", "--by", "100"][..],
        &["handover", "gw"],
        &["reload"],
    ] {
        let out = r1.ctl(NOBODY, args)?;
        let said = String::from_utf8_lossy(&out.stderr);
        println!("  nobody: vipd {args:?}: {}", said.trim());
        ensure!(
            !out.status.success() && said.contains("refused"),
            "nobody's {args:?} is refused: {out:?}"
        );
    }
    let dry = r1.ctl(NOBODY, &["reload", "--dry-run"])?;
    ensure!(dry.status.success(), "a dry run only reads: {dry:?}");
    std::thread::sleep(Duration::from_millis(200));
    let after = r1.instance("gw")?;
    ensure!(
        after["state"] == "master"
            && after["priority"] == before["priority"]
            && after["demotion"] == 0
            && after["transitions"] == before["transitions"],
        "nothing changed: {before} -> {after}"
    );
    let log = vip_tests::lab::vipd::strip_ansi(&r1.log());
    ensure!(
        log.contains("control command refused") && log.contains("uid=65534"),
        "refusals are logged with the peer: {log}"
    );

    // A priority lowered below the backup's: one move, make-before-break; and back.
    let run = probed(
        &lab,
        || {
            r1.rewrite(&section("gw", 51, 90, &[VIP], ""))?;
            let reply = r1.reload_json(false)?;
            ensure!(reply["ok"] == true, "{reply}");
            Ok(())
        },
        || Ok(is(&r2, "master")? && is(&r1, "backup")?),
    )?;
    one_move(&run, "r1", "r2", "priority 150 -> 90 (r2 has 100)")?;
    let run = probed(
        &lab,
        || {
            r1.rewrite(&section("gw", 51, 150, &[VIP], ""))?;
            r1.reload_json(false).map(drop)
        },
        || Ok(is(&r1, "master")? && is(&r2, "backup")?),
    )?;
    one_move(&run, "r2", "r1", "priority 90 -> 150: r1 preempts back")?;

    // Demote below the backup (as a member of admin_group), a reload keeps it, promote.
    let run = probed(
        &lab,
        || ctl_ok(&r1, NOBODY_ADMIN, &["demote", "gw", "--by", "60"]).map(drop),
        || Ok(is(&r2, "master")? && is(&r1, "backup")?),
    )?;
    one_move(&run, "r1", "r2", "demote gw by 60")?;
    let text = r1.status_text()?;
    ensure!(text.contains("demoted by 60"), "{text}");
    r1.rewrite(&section("gw", 51, 150, &[VIP], "garp_repeat = 2"))?;
    let reply = r1.reload_json(false)?;
    ensure!(reply["ok"] == true, "{reply}");
    std::thread::sleep(Duration::from_millis(200));
    let gw = r1.instance("gw")?;
    ensure!(
        gw["demotion"] == 60 && gw["priority"] == 90 && gw["state"] == "backup",
        "the demotion survives a reload: {gw}"
    );
    let run = probed(
        &lab,
        || ctl_ok(&r1, &[], &["promote", "gw"]).map(drop),
        || Ok(is(&r1, "master")? && is(&r2, "backup")?),
    )?;
    one_move(&run, "r2", "r1", "promote gw")?;

    // Hand over now; r1 does not preempt back until promoted.
    let run = probed(
        &lab,
        || ctl_ok(&r1, &[], &["handover", "gw"]).map(drop),
        || Ok(is(&r2, "master")? && is(&r1, "backup")?),
    )?;
    one_move(&run, "r1", "r2", "handover gw")?;
    std::thread::sleep(Duration::from_millis(300));
    let gw = r1.instance("gw")?;
    ensure!(
        gw["state"] == "backup" && gw["yielding"] == true,
        "r1 holds back after the handover: {gw}"
    );
    let run = probed(
        &lab,
        || ctl_ok(&r1, &[], &["promote", "gw"]).map(drop),
        || Ok(is(&r1, "master")? && is(&r2, "backup")?),
    )?;
    one_move(&run, "r2", "r1", "promote after the handover")?;

    // With a state file, the demotion survives a restart too.
    ctl_ok(&r1, &[], &["demote", "--node", "--by", "70"])?;
    r2.wait_state("gw", "master", Duration::from_secs(3))?;
    let saved = std::fs::read_to_string(&state)?;
    println!("  state file: {}", saved.trim());
    r1.stop()?;
    lab.start_vipd(&mut r1, &[])?;
    r1.wait_state("gw", "backup", Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_millis(300));
    let s = r1.status()?;
    ensure!(
        s["demotions"]["node"] == 70
            && s["instances"][0]["priority"] == 80
            && state_of(&r2)? == "master",
        "restarted with the demotion: {s}"
    );
    ctl_ok(&r1, &[], &["promote", "--node"])?;
    r1.wait_state("gw", "master", Duration::from_secs(3))?;
    Ok(())
}
