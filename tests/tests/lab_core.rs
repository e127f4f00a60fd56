//! The daemon core's promises on a real pair (docs/architecture.md): the event loop never
//! waits, so a reload that brings slow things (a track script that takes seconds, a track
//! file that is a FIFO nobody writes, a changed instance) never disturbs an instance that
//! did not change; and the XDP program and the daemon agree on ownership, so adverts the
//! daemon refuses (a wrong VRRPv2 password, a zero interval) never make the master stop
//! answering.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::Path,
    time::{Duration, SystemTime},
};

use anyhow::{Context as _, Result, ensure};
use nix::sys::signal::Signal;
use vip_tests::{
    lab::{Kind, Lab, Method, Vipd, advert_v4, attack},
    require_root,
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
const VIP1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const ATTACKER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);

fn section(name: &str, vrid: u8, priority: u8, vip: &str, extra: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {vrid}\npriority = {priority}\n\
         advert_interval = \"10ms\"\nvips = [\"{vip}/24\"]\n{extra}\n"
    )
}

fn transitions(v: &Vipd, name: &str) -> Result<u64> {
    v.instance(name)?["transitions"]
        .as_u64()
        .context("transitions")
}

/// r1 (200) and r2 (100) run gw (VRID 51, 10 ms) and gw2 (VRID 52, 10 ms). r1 reloads
/// with gw unchanged, gw2's priority changed (in place), and a new gw3 whose track script sleeps
/// 3 s (≈ 90 of its Master_Down_Intervals) and whose track file is a FIFO nobody writes.
/// gw must not notice: no transition on either router, every probe of its VIP answered
/// by r1 alone, and r1's adverts for it never more than two intervals apart on the wire.
#[test]
fn a_reload_with_slow_tracking_and_a_changed_instance_never_stalls_an_unchanged_master()
-> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let bin = Path::new(VIPD);
    let gw = |p| section("gw", 51, p, "192.0.2.1", "");
    let gw2 = |p| section("gw2", 52, p, "192.0.2.2", "");
    let r1 = lab.vipd(bin, lab.router(1), &(gw(200) + &gw2(200)))?;
    let r2 = lab.vipd(bin, lab.router(2), &(gw(100) + &gw2(100)))?;
    for name in ["gw", "gw2"] {
        r1.wait_state(name, "master", Duration::from_secs(5))?;
        r2.wait_state(name, "backup", Duration::from_secs(5))?;
    }
    let before = (transitions(&r1, "gw")?, transitions(&r2, "gw")?);

    let fifo = lab.scratch("track")?.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
    let gw3 = section(
        "gw3",
        53,
        200,
        "192.0.2.3",
        &format!(
            "track_scripts = [{{ command = [\"/bin/sleep\", \"3\"], interval = \"5s\", \
             timeout = \"4s\", weight = -10 }}]\n\
             track_files = [{{ path = \"{}\", weight = 0 }}]",
            fifo.display()
        ),
    );
    let capture = lab.capture_port(lab.router(1), "ip proto 112")?;
    let probe = lab.probe(
        lab.client(),
        Method::Resolve,
        VIP1.into(),
        Duration::from_millis(2),
        Duration::from_secs(10),
        &[],
    )?;
    std::thread::sleep(Duration::from_millis(200));
    let lag_before = r1.status()?["loop_lag"]["worst_us"].clone();
    r1.rewrite(&(gw(200) + &gw2(150) + &gw3))?;
    let mark = r1.log_mark();
    let reloaded_at = SystemTime::now();
    r1.signal(Signal::SIGHUP)?;
    let log = r1.wait_log(mark, "configuration reloaded", Duration::from_secs(5))?;
    ensure!(
        log.contains("unchanged=1 changed=1 restarted=0 added=1 removed=0"),
        "{log}"
    );
    let commit = log
        .lines()
        .find(|l| l.contains("configuration reloaded"))
        .unwrap_or_default()
        .to_owned();
    r1.wait_state("gw3", "master", Duration::from_secs(3))?;
    r1.wait_state("gw2", "master", Duration::from_secs(3))?;
    // Long enough for the slow script's first run to end while gw keeps advertising.
    std::thread::sleep(Duration::from_millis(3500));
    let run = probe.stop()?;
    let frames = capture.stop()?;

    println!("  VIP1 through the reload: {}", run.summary());
    ensure!(
        run.lost() == 0 && run.responders() == ["r1".into()].into(),
        "r1 answers every probe alone: {}",
        run.summary()
    );
    let after = (transitions(&r1, "gw")?, transitions(&r2, "gw")?);
    ensure!(after == before, "gw transitions {before:?} -> {after:?}");
    let adverts: Vec<SystemTime> = frames
        .iter()
        .filter(|f| {
            matches!(f.kind(), Kind::Vrrp { vrid: 51, src, .. } if src == IpAddr::from([192, 0, 2, 11]))
        })
        .map(|f| f.at)
        .filter(|at| *at >= reloaded_at - Duration::from_millis(100))
        .collect();
    let worst = adverts
        .windows(2)
        .filter_map(|w| w[1].duration_since(w[0]).ok())
        .max()
        .context("no adverts captured")?;
    let status = r1.status()?;
    let lag = &status["loop_lag"];
    println!(
        "  gw adverts after the SIGHUP: {} captured, worst gap {:.2} ms; r1 loop lag worst \
         {} us before the reload, {} us after; {commit}",
        adverts.len(),
        worst.as_secs_f64() * 1000.0,
        lag_before,
        lag["worst_us"],
    );
    ensure!(
        worst < Duration::from_millis(20),
        "gw's adverts stayed under two intervals apart: worst {worst:?}"
    );
    ensure!(adverts.len() >= 300, "{} adverts in 3.5 s", adverts.len());
    let gw3 = r1.instance("gw3")?;
    println!("  gw3 tracking: {}", gw3["tracking"]);
    Ok(())
}

/// A VRRPv2 pair with a password. r1's slot must never be released by adverts the daemon
/// refuses: a third host floods priority-254 adverts with a wrong password for seconds
/// and r1 answers every probe, stays master, and the XDP program counts each drop by
/// reason.
#[test]
fn wrong_password_adverts_never_silence_a_v2_master() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().attacker().build()?;
    let bin = Path::new(VIPD);
    let v2 = |p| {
        format!(
            "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\npriority = {p}\n\
             version = 2\nadvert_interval = \"1s\"\nauth_pass = \"secret\"\nvips = [\"192.0.2.1/24\"]\n"
        )
    };
    let r1 = lab.vipd(bin, lab.router(1), &v2(200))?;
    let r2 = lab.vipd(bin, lab.router(2), &v2(100))?;
    r1.wait_state("gw", "master", Duration::from_secs(8))?;
    r2.wait_state("gw", "backup", Duration::from_secs(8))?;
    flood_changes_nothing(&lab, &r1, &r2, "vrrp_drop_auth", |mac| {
        attack::advert_v2(mac, ATTACKER, 51, 254, 1, &[VIP1], b"guess")
    })
}

/// The same for a VRRPv3 pair and adverts with a zero Max Adver Int.
#[test]
fn zero_interval_adverts_never_silence_a_v3_master() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).client().attacker().build()?;
    let bin = Path::new(VIPD);
    let r1 = lab.vipd(bin, lab.router(1), &section("gw", 51, 200, "192.0.2.1", ""))?;
    let r2 = lab.vipd(bin, lab.router(2), &section("gw", 51, 100, "192.0.2.1", ""))?;
    r1.wait_state("gw", "master", Duration::from_secs(5))?;
    r2.wait_state("gw", "backup", Duration::from_secs(5))?;
    flood_changes_nothing(&lab, &r1, &r2, "vrrp_drop_interval", |mac| {
        attack::with_zero_interval(advert_v4(mac, ATTACKER, 51, 254, 10, &[VIP1]))
    })
}

fn flood_changes_nothing(
    lab: &Lab,
    r1: &Vipd,
    r2: &Vipd,
    counter: &str,
    make: impl Fn([u8; 6]) -> Vec<u8>,
) -> Result<()> {
    let before = (transitions(r1, "gw")?, transitions(r2, "gw")?);
    let dropped = r1.xdp(counter)?;
    let attacker = lab.injector(lab.attacker())?;
    let frame = make(attacker.mac);
    let probe = lab.probe(
        lab.client(),
        Method::Resolve,
        VIP1.into(),
        Duration::from_millis(5),
        Duration::from_secs(10),
        &[],
    )?;
    let sent = attacker.flood(600, 200, Duration::from_secs(4), |_| frame.clone());
    std::thread::sleep(Duration::from_millis(200));
    let run = probe.stop()?;
    let counted = r1.xdp(counter)? - dropped;
    println!(
        "  {sent} adverts sent; r1 {counter} +{counted}; {}",
        run.summary()
    );
    ensure!(r1.state_of("gw")? == "master" && r2.state_of("gw")? == "backup");
    ensure!(
        (transitions(r1, "gw")?, transitions(r2, "gw")?) == before,
        "no transition"
    );
    ensure!(
        run.lost() == 0 && run.responders() == ["r1".into()].into(),
        "r1 answers every probe: {}",
        run.summary()
    );
    ensure!(
        counted >= sent as u64 * 9 / 10,
        "r1's program dropped them as {counter}: {counted} of {sent}"
    );
    Ok(())
}
