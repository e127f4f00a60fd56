//! What a gateway pair coming from keepalived relies on, on a real pair: unicast peers on
//! global and link-local addresses of both families (multicast VRRP blocked on the
//! bridge, so only unicast can elect), and routes and policy rules that follow
//! mastership and come back when someone removes them from the master.

use std::{path::Path, time::Duration};

use anyhow::{Context as _, Result, ensure};
use vip_tests::{
    lab::{Lab, Node, Vipd, wait_until},
    require_root,
};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");

fn section(priority: u8, vip: &str, extra: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\n\
         advert_interval = \"20ms\"\nvips = [{vip}]\n{extra}\n"
    )
}

/// The node's link-local address on eth0.
fn link_local(lab: &Lab, node: &Node) -> Result<String> {
    let out = lab.exec(
        node,
        &[
            "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
        ],
    )?;
    let addr = out
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .context("a link-local address on eth0")?;
    Ok(addr.split('/').next().unwrap_or(addr).to_owned())
}

/// Starts r1 (200) and r2 (100) peering by unicast with multicast VRRP blocked, checks r2
/// follows r1, kills r1, and checks r2 takes over.
fn unicast_pair(lab: &Lab, vip: &str, peer_of: [&str; 2], allowed: bool) -> Result<()> {
    lab.block_vrrp_all()?;
    let bin = Path::new(VIPD);
    let extra = |peer: &str| {
        let mut e = format!("unicast_peers = [\"{peer}\"]\n");
        if allowed {
            e += &format!("allowed_peers = [\"{peer}\"]\n");
        }
        e
    };
    let r1 = lab.vipd(bin, lab.router(1), &section(200, vip, &extra(peer_of[0])))?;
    let r2 = lab.vipd(bin, lab.router(2), &section(100, vip, &extra(peer_of[1])))?;
    r1.wait_state("gw", "master", Duration::from_secs(5))?;
    r2.wait_state("gw", "backup", Duration::from_secs(5))?;
    // r2 keeps hearing r1 (a backup that hears nothing would take over within 80 ms).
    std::thread::sleep(Duration::from_millis(300));
    let i2 = r2.instance("gw")?;
    println!(
        "  {vip}: r2 backup following {} after {} adverts",
        i2["master"], i2["adverts_received"]
    );
    ensure!(r2.state_of("gw")? == "backup", "one master: {i2}");
    ensure!(i2["adverts_received"].as_u64() > Some(5), "{i2}");
    ensure!(r1.state_of("gw")? == "master");
    r1.kill()?;
    let took = r2.wait_state("gw", "master", Duration::from_secs(2))?;
    println!("  r2 master {took:?} after r1 was killed");
    Ok(())
}

#[test]
fn ipv4_unicast_peers_elect_one_master_and_fail_over() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).build()?;
    unicast_pair(&lab, "\"192.0.2.1/24\"", ["192.0.2.12", "192.0.2.11"], true)
}

#[test]
fn ipv6_unicast_peers_on_global_addresses_elect_one_master_and_fail_over() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).build()?;
    unicast_pair(
        &lab,
        "\"fe80::1/64\", \"2001:db8::1/64\"",
        ["2001:db8::12", "2001:db8::11"],
        true,
    )
}

#[test]
fn ipv6_unicast_peers_on_link_local_addresses_elect_one_master_and_fail_over() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).build()?;
    let (l1, l2) = (
        link_local(&lab, lab.router(1))?,
        link_local(&lab, lab.router(2))?,
    );
    unicast_pair(
        &lab,
        "\"fe80::1/64\", \"2001:db8::1/64\"",
        [l2.as_str(), l1.as_str()],
        true,
    )
}

const ROUTES: &str = "virtual_routes = [\n\
    { to = \"203.0.113.0/24\", via = \"192.0.2.254\" },\n\
    { to = \"198.51.100.128/25\", type = \"blackhole\" },\n\
    { to = \"default\", via = \"192.0.2.254\", table = 100 },\n]\n\
    virtual_rules = [{ from = \"192.0.2.0/24\", table = 100, priority = 1000 }]\n";

/// What the node's kernel holds of the instance's routes and rules.
fn installed(lab: &Lab, node: &Node) -> Result<[bool; 4]> {
    // `ip route show table 100` fails while the table does not exist: nothing installed.
    let has = |argv: &[&str], needle: &str| -> Result<bool> {
        let (_, out, _) = lab.exec_status(node, argv)?;
        Ok(out.contains(needle))
    };
    Ok([
        has(
            &["ip", "route", "show", "203.0.113.0/24"],
            "via 192.0.2.254",
        )?,
        has(
            &["ip", "route", "show", "type", "blackhole"],
            "198.51.100.128/25",
        )?,
        has(
            &["ip", "route", "show", "table", "100"],
            "default via 192.0.2.254",
        )?,
        has(
            &["ip", "rule", "show"],
            "1000:\tfrom 192.0.2.0/24 lookup 100",
        )?,
    ])
}

fn wait_installed(lab: &Lab, node: &Node, want: bool, what: &str) -> Result<Duration> {
    wait_until(
        what,
        Duration::from_secs(5),
        Duration::from_millis(20),
        || {
            let now = installed(lab, node)?;
            if now == [want; 4] {
                Ok(true)
            } else {
                anyhow::bail!("{} holds {now:?}", node.label)
            }
        },
    )
}

fn state(v: &Vipd) -> String {
    v.state_of("gw").unwrap_or_default()
}

/// Routes and rules appear on the master and vanish on the backup at each failover, and
/// one deleted by hand on the master comes back.
#[test]
fn routes_and_rules_follow_mastership_and_come_back_when_removed() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).build()?;
    let bin = Path::new(VIPD);
    let r1 = lab.vipd(
        bin,
        lab.router(1),
        &section(200, "\"192.0.2.1/24\"", ROUTES),
    )?;
    let r2 = lab.vipd(
        bin,
        lab.router(2),
        &section(100, "\"192.0.2.1/24\"", ROUTES),
    )?;
    r1.wait_state("gw", "master", Duration::from_secs(5))?;
    r2.wait_state("gw", "backup", Duration::from_secs(5))?;
    wait_installed(
        &lab,
        lab.router(1),
        true,
        "routes and rules on the master r1",
    )?;
    ensure!(
        installed(&lab, lab.router(2))? == [false; 4],
        "none on the backup"
    );

    lab.exec(lab.router(1), &["ip", "route", "del", "203.0.113.0/24"])?;
    lab.exec(lab.router(1), &["ip", "rule", "del", "priority", "1000"])?;
    let back = wait_installed(
        &lab,
        lab.router(1),
        true,
        "removed routes and rules back on r1",
    )?;
    println!("  deleted by hand on the master: back after {back:?}");
    ensure!(
        r1.log().contains("put back"),
        "the master says it put them back"
    );

    // r1's link goes: r2 takes over with everything, r1 (in FAULT) holds nothing.
    lab.set_port(lab.router(1), false)?;
    r2.wait_state("gw", "master", Duration::from_secs(3))?;
    let t = wait_installed(
        &lab,
        lab.router(2),
        true,
        "routes and rules on the new master r2",
    )?;
    wait_installed(&lab, lab.router(1), false, "nothing left on r1")?;
    println!(
        "  failover: on r2 {t:?} after it became master; r1 {}",
        state(&r1)
    );
    // And back.
    lab.set_port(lab.router(1), true)?;
    r1.wait_state("gw", "master", Duration::from_secs(3))?;
    wait_installed(&lab, lab.router(1), true, "routes and rules back on r1")?;
    wait_installed(&lab, lab.router(2), false, "nothing left on r2")?;
    Ok(())
}

/// keepalived defaults to VRRPv2, vipd to v3: a peer left at the other version is loud.
/// vipd counts its adverts per instance, logs them and shows them in `vipd status`, and
/// never acts on them. (The peer here is a vipd told `version = 2`, which advertises
/// steadily; a keepalived master that hears v3 for its VRID does not.)
#[test]
fn a_peer_of_the_other_vrrp_version_is_counted_logged_and_shown() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).build()?;
    let bin = Path::new(VIPD);
    let r1 = lab.vipd(bin, lab.router(1), &section(100, "\"192.0.2.1/24\"", ""))?;
    let v2 = "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\npriority = 200\n\
              version = 2\nadvert_interval = \"1s\"\nvips = [\"192.0.2.1/24\"]\n";
    let r2 = lab.vipd(bin, lab.router(2), v2)?;
    r2.wait_state("gw", "master", Duration::from_secs(8))?;
    wait_until(
        "vipd to count the v2 adverts",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || Ok(r1.instance("gw")?["adverts_rejected"]["version_mismatch"].as_u64() >= Some(2)),
    )?;
    let text = r1.status_text()?;
    println!("{text}");
    ensure!(text.contains("VERSION MISMATCH"), "vipd status shows it");
    ensure!(
        r1.log().contains("advertisement of the other VRRP version"),
        "the log says it"
    );
    // Never acted on: the priority-200 v2 adverts do not make r1 yield.
    ensure!(r1.state_of("gw")? == "master");
    ensure!(r1.xdp("vrrp_version_mismatch")? >= 2);
    ensure!(
        r1.xdp("vrrp_yield")? == 0,
        "the program never released the slot for them"
    );
    Ok(())
}
