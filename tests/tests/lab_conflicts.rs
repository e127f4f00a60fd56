//! Another station claiming a VIP the master answers for (a stale router, a misconfigured
//! host, an attacker): the XDP program records it in `CONFLICTS` (per CPU, in place), the
//! daemon learns of it within its check period (250 ms) and re-announces, and `vipd status`
//! names the claimant and counts every claim, however fast they come.

use std::{
    net::Ipv4Addr,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use serde_json::Value;
use vip_tests::{
    frames,
    lab::{Lab, Vipd, mac_str},
    require_root,
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// How often the daemon reads the conflict records (`daemon::CONFLICT_CHECK`).
const CHECK: Duration = Duration::from_millis(250);
/// A second claimant: any unicast MAC the bridge has not seen.
const OTHER: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x99];

fn conflict(v: &Vipd) -> Result<Option<Value>> {
    Ok(v.status()?["conflicts"]
        .as_array()
        .context("no conflicts in the status")?
        .iter()
        .find(|c| c["vip"] == VIP.to_string())
        .cloned())
}

fn xdp(v: &Vipd, name: &str) -> Result<u64> {
    Ok(v.status()?["xdp"][name].as_u64().unwrap_or(0))
}

#[test]
fn a_claimed_vip_is_seen_within_a_check_period_and_a_flood_is_counted_claim_by_claim() -> Result<()>
{
    require_root();
    let lab = Lab::builder().routers(1).attacker().build()?;
    let r1 = lab.vipd(
        Path::new(VIPD),
        lab.router(1),
        &format!(
            "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\npriority = 200\n\
             advert_interval = \"100ms\"\nvips = [\"{VIP}/24\"]\nallowed_peers = [\"192.0.2.12\"]\n"
        ),
    )?;
    r1.wait_state("gw", "master", Duration::from_secs(5))?;
    // The takeover's announcements are over: any later one is the conflict's.
    std::thread::sleep(Duration::from_millis(300));
    let transitions = r1.instance("gw")?["transitions"].clone();
    let attacker = lab.injector(lab.attacker())?;
    let claimant = mac_str(&attacker.mac);

    // One claim: the daemon hears of it at its next check.
    let mark = r1.log_mark();
    let sent = Instant::now();
    attacker.send(&frames::garp(attacker.mac, VIP.octets()))?;
    r1.wait_log(mark, "another station claims a VIP", Duration::from_secs(2))?;
    let noticed = sent.elapsed();
    let c = conflict(&r1)?.context("no conflict in the status")?;
    println!(
        "one claim noticed after {:.0} ms: {c}",
        noticed.as_secs_f64() * 1e3
    );
    ensure!(c["mac"] == claimant.as_str() && c["count"] == 1, "{c}");
    ensure!(
        noticed < CHECK + Duration::from_millis(150),
        "noticed after {noticed:?}, the check period is {CHECK:?}"
    );

    // A flood of claims: every one counted in the entry, none lost, nothing unrecorded.
    let before = xdp(&r1, "conflict_seen")?;
    let garp = frames::garp(attacker.mac, VIP.octets());
    let flooded = attacker.flood(50_000, 0, Duration::from_secs(3), |_| garp.clone());
    // The last frames may still be on their way through the bridge.
    std::thread::sleep(Duration::from_millis(200));
    let seen = xdp(&r1, "conflict_seen")? - before;
    let c = conflict(&r1)?.context("the conflict is gone")?;
    println!(
        "flooded {flooded} claims; the program saw {seen}; status: {c}; conflict_unrecorded {}",
        xdp(&r1, "conflict_unrecorded")?
    );
    ensure!(
        seen > 0 && seen <= flooded as u64,
        "saw {seen} of {flooded}"
    );
    ensure!(
        c["count"].as_u64() == Some(1 + seen),
        "the entry counts {} claims, the program saw {}",
        c["count"],
        1 + seen
    );
    ensure!(xdp(&r1, "conflict_unrecorded")? == 0);
    ensure!(
        r1.instance("gw")?["transitions"] == transitions && r1.state_of("gw")? == "master",
        "the flood moved the master"
    );

    // Another claimant afterwards: the status names it by the next check.
    let mark = r1.log_mark();
    attacker.send(&frames::garp(OTHER, VIP.octets()))?;
    r1.wait_log(mark, "another station claims a VIP", Duration::from_secs(2))?;
    let c = conflict(&r1)?.context("the conflict is gone")?;
    ensure!(
        c["mac"] == mac_str(&OTHER).as_str() && c["count"].as_u64() == Some(2 + seen),
        "{c}"
    );
    r1.stop()?;
    Ok(())
}
