//! The field's scenarios end to end (`vip_tests::scenarios`, built from the recipes in
//! `docs/recipes.md`): a stateful NAT gateway pair whose TCP and UDP flows survive a link
//! cut, a kill -9 and a SIGTERM of the master, with vipd and with keepalived as the
//! baseline; and a /32 announced over BGP that follows the master. `cargo xtask bench`
//! (item 9) reports the same figures side by side.

use std::path::Path;

use anyhow::Result;
use vip_tests::{
    require_root,
    scenarios::{self, Daemon},
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");

fn nat_gateway(daemon: Daemon) -> Result<()> {
    require_root();
    let figures = scenarios::nat_gateway(
        Path::new(VIPD),
        daemon,
        &scenarios::NAT_FAILURES,
        scenarios::WATCH,
    )?;
    println!("{daemon:?} NAT gateway, stall per failure (10 ms echoes, 100 ms adverts):");
    println!(
        "  {:<26} {:>10} {:>10} {:>12}",
        "event", "TCP stall", "UDP stall", "new master"
    );
    for f in &figures {
        println!(
            "  {:<26} {:>8.0}ms {:>8.0}ms {:>10.0}ms",
            f.what,
            f.tcp.as_secs_f64() * 1e3,
            f.udp.as_secs_f64() * 1e3,
            f.takeover.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

#[test]
fn nat_gateway_connections_survive_failover_vipd() -> Result<()> {
    nat_gateway(Daemon::Vipd)
}

#[test]
fn nat_gateway_connections_survive_failover_keepalived_baseline() -> Result<()> {
    nat_gateway(Daemon::Keepalived)
}

#[test]
fn a_32_announced_over_bgp_follows_the_master() -> Result<()> {
    require_root();
    let events = scenarios::route32(Path::new(VIPD))?;
    println!("/32 over BGP (100 ms adverts, BGP keepalive 1 s / hold 3 s):");
    println!(
        "  {:<22} {:>14} {:>16}",
        "event", "r3 re-routed", "service stall"
    );
    for e in &events {
        println!(
            "  {:<22} {:>12.0}ms {:>14.0}ms",
            e.what,
            e.rerouted.as_secs_f64() * 1e3,
            e.stall.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
