//! The systemd notify protocol against a real socket the test listens on, as systemd
//! would: READY=1 only once the data plane is attached and the instances run, STATUS=
//! with the summary, WATCHDOG=1 from the event loop for as long as it runs (and not while
//! it is frozen), RELOADING=1 then READY=1 around a SIGHUP, STOPPING=1 on the way out.

use std::{
    os::unix::net::UnixDatagram,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use nix::sys::signal::Signal;
use vip_tests::{lab::Lab, require_root};

const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");

/// Datagrams received until `until`, each with when it arrived.
fn receive(sock: &UnixDatagram, until: Instant) -> Vec<(Instant, String)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if left.is_zero() {
            break;
        }
        let _ = sock.set_read_timeout(Some(left));
        match sock.recv(&mut buf) {
            Ok(n) => out.push((
                Instant::now(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            )),
            Err(_) => break,
        }
    }
    out
}

fn count(msgs: &[(Instant, String)], what: &str) -> usize {
    msgs.iter()
        .filter(|(_, m)| m.lines().any(|l| l == what))
        .count()
}

#[test]
fn notify_protocol_ready_after_attach_watchdog_from_the_loop_reload_and_stop() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(1).build()?;
    let path = lab.scratch("systemd")?.join("notify.sock");
    let sock = UnixDatagram::bind(&path)?;
    let mut v = lab.vipd_configured(
        Path::new(VIPD),
        lab.router(1),
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\npriority = 200\n\
         advert_interval = \"10ms\"\nvips = [\"192.0.2.1/24\"]\n",
    )?;
    let notify = path.to_string_lossy().into_owned();
    lab.start_vipd_with_env(
        &mut v,
        &[],
        &[
            ("NOTIFY_SOCKET", &notify),
            ("WATCHDOG_USEC", "200000"),
            ("WATCHDOG_PID", "$$"),
        ],
    )?;
    // READY=1 is the first message, and when it is sent the program is attached (its
    // link pinned) and the instance runs.
    let mut buf = [0u8; 4096];
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let n = sock.recv(&mut buf).context("a first notify message")?;
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    let linked = v.pin.join("link_eth0").exists();
    println!("  first message: {first:?}; link pinned {linked}");
    ensure!(first.lines().any(|l| l == "READY=1"), "{first}");
    ensure!(first.contains("STATUS="), "{first}");
    ensure!(linked, "READY only after the data plane is attached");
    ensure!(v.status().is_ok(), "and the daemon answers");

    // WATCHDOG=1 every half of WATCHDOG_USEC, from the loop.
    let msgs = receive(&sock, Instant::now() + Duration::from_secs(1));
    let pets = count(&msgs, "WATCHDOG=1");
    println!("  {pets} watchdog messages in 1 s");
    ensure!((8..=12).contains(&pets), "about 10 a second: {pets}");

    // A frozen daemon pets nothing: systemd would restart it.
    v.signal(Signal::SIGSTOP)?;
    let _ = receive(&sock, Instant::now() + Duration::from_millis(50));
    let frozen = receive(&sock, Instant::now() + Duration::from_millis(600));
    v.signal(Signal::SIGCONT)?;
    ensure!(count(&frozen, "WATCHDOG=1") == 0, "frozen: {frozen:?}");
    let resumed = receive(&sock, Instant::now() + Duration::from_millis(500));
    ensure!(count(&resumed, "WATCHDOG=1") >= 2, "resumed: {resumed:?}");

    // SIGHUP: RELOADING=1, then READY=1 when the reload is done.
    v.signal(Signal::SIGHUP)?;
    let msgs = receive(&sock, Instant::now() + Duration::from_secs(2));
    let reloading = msgs
        .iter()
        .position(|(_, m)| m.lines().any(|l| l == "RELOADING=1"))
        .context("RELOADING=1")?;
    ensure!(
        msgs[reloading].1.contains("MONOTONIC_USEC="),
        "{:?}",
        msgs[reloading]
    );
    ensure!(
        msgs[reloading..]
            .iter()
            .any(|(_, m)| m.lines().any(|l| l == "READY=1")),
        "READY=1 after the reload: {msgs:?}"
    );

    v.stop()?;
    let msgs = receive(&sock, Instant::now() + Duration::from_millis(300));
    let all: Vec<&str> = msgs.iter().map(|(_, m)| m.as_str()).collect();
    ensure!(
        all.iter().any(|m| m.contains("STOPPING=1")),
        "STOPPING=1 on the way out: {all:?}"
    );
    Ok(())
}
