//! vipd end to end in namespace labs.

use std::{net::IpAddr, path::Path, time::Duration};

use vip_tests::lab::{Lab, Method};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");

fn vipd_bin() -> &'static Path {
    Path::new(VIPD)
}

fn instance(name: &str, vrid: u8, priority: u8, interval: &str, vip: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {vrid}\npriority = {priority}\n\
         advert_interval = \"{interval}\"\nvips = [\"{vip}\"]\n"
    )
}

#[test]
fn two_routers_elect_the_higher_priority_and_fail_over_on_kill() -> anyhow::Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let vip: IpAddr = "192.0.2.1".parse()?;
    let r1 = lab.vipd(
        vipd_bin(),
        lab.router(1),
        &instance("gw", 51, 200, "100ms", "192.0.2.1/24"),
    )?;
    let r2 = lab.vipd(
        vipd_bin(),
        lab.router(2),
        &instance("gw", 51, 100, "100ms", "192.0.2.1/24"),
    )?;
    r1.wait_state("gw", "master", Duration::from_secs(5))?;
    r2.wait_state("gw", "backup", Duration::from_secs(5))?;
    println!("{}", r1.status_text()?);
    let names = lab.mac_names();
    let probe = lab.probe(
        lab.client(),
        Method::Resolve,
        vip,
        Duration::from_millis(2),
        Duration::from_secs(3),
        &[],
    )?;
    std::thread::sleep(Duration::from_millis(300));
    r1.kill()?;
    r2.wait_state("gw", "master", Duration::from_secs(3))?;
    std::thread::sleep(Duration::from_millis(500));
    let run = probe.stop()?;
    println!("{}", run.summary());
    println!("{}", r2.status_text()?);
    let _ = names;
    assert!(
        run.overlaps().is_empty(),
        "two routers answered: {}",
        run.summary()
    );
    Ok(())
}

#[test]
fn graceful_stop_hands_over_at_10ms() -> anyhow::Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let vip: IpAddr = "192.0.2.1".parse()?;
    let r1 = lab.vipd(
        vipd_bin(),
        lab.router(1),
        &instance("gw", 51, 200, "10ms", "192.0.2.1/24"),
    )?;
    let r2 = lab.vipd(
        vipd_bin(),
        lab.router(2),
        &instance("gw", 51, 100, "10ms", "192.0.2.1/24"),
    )?;
    r1.wait_state("gw", "master", Duration::from_secs(5))?;
    r2.wait_state("gw", "backup", Duration::from_secs(5))?;
    let probe = lab.probe(
        lab.client(),
        Method::Resolve,
        vip,
        Duration::from_millis(2),
        Duration::from_secs(3),
        &[],
    )?;
    std::thread::sleep(Duration::from_millis(300));
    r1.stop()?;
    r2.wait_state("gw", "master", Duration::from_secs(3))?;
    std::thread::sleep(Duration::from_millis(300));
    let run = probe.stop()?;
    println!("{}", run.summary());
    println!("{}", r1.log());
    assert!(
        run.overlaps().is_empty(),
        "two routers answered: {}",
        run.summary()
    );
    Ok(())
}

#[test]
fn ipv6_vip_fails_over_on_link_down() -> anyhow::Result<()> {
    vip_tests::require_root();
    let lab = Lab::builder().routers(2).client().build()?;
    let vip: IpAddr = "2001:db8::1".parse()?;
    let r1 = lab.vipd(
        vipd_bin(),
        lab.router(1),
        &instance("gw6", 52, 200, "10ms", "2001:db8::1/64"),
    )?;
    let r2 = lab.vipd(
        vipd_bin(),
        lab.router(2),
        &instance("gw6", 52, 100, "10ms", "2001:db8::1/64"),
    )?;
    r1.wait_state("gw6", "master", Duration::from_secs(5))?;
    r2.wait_state("gw6", "backup", Duration::from_secs(5))?;
    let probe = lab.probe(
        lab.client(),
        Method::Resolve,
        vip,
        Duration::from_millis(2),
        Duration::from_secs(3),
        &[],
    )?;
    std::thread::sleep(Duration::from_millis(300));
    lab.set_port(lab.router(1), false)?;
    r2.wait_state("gw6", "master", Duration::from_secs(3))?;
    std::thread::sleep(Duration::from_millis(300));
    let run = probe.stop()?;
    println!("{}", run.summary());
    println!("{}", r1.status_text()?);
    println!("{}", r2.status_text()?);
    assert!(
        run.overlaps().is_empty(),
        "two routers answered: {}",
        run.summary()
    );
    Ok(())
}
