//! `cargo xtask lab`: vipd at work in a namespace lab. Two routers and a client on a
//! bridge; vipd on both routers; the client asks for the VIP every 2 ms while the master's
//! link is cut and restored. Prints a timeline, the client-measured outage, and each
//! router's `vipd status`. Everything is removed at the end, and on Ctrl-C.

use std::{
    net::IpAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use vip_tests::lab::{Lab, Method, Vipd};

const VIP: &str = "192.0.2.1";
const INTERVAL: &str = "50ms";

fn instance(priority: u8) -> String {
    format!(
        "[[vrrp]]\nname = \"gateway\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\n\
         advert_interval = \"{INTERVAL}\"\nvips = [\"{VIP}/24\"]\n"
    )
}

struct Timeline {
    start: Instant,
}

impl Timeline {
    fn say(&self, what: impl AsRef<str>) {
        println!(
            "  {:>8.1} ms  {}",
            self.start.elapsed().as_secs_f64() * 1e3,
            what.as_ref()
        );
    }
}

fn main() -> Result<()> {
    vip_tests::require_root();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // The lab is torn down by Drop: turn Ctrl-C into an orderly early return.
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))?;
    }
    let vipd: PathBuf = std::env::current_exe()?.with_file_name("vipd-under-test");
    if !vipd.exists() {
        bail!(
            "{} is missing: build the vip-tests binaries first",
            vipd.display()
        );
    }
    let check = |stage: &str| -> Result<()> {
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted during {stage}; lab removed");
        }
        Ok(())
    };

    println!("vipd lab: r1 (priority 200) and r2 (priority 100) on one bridge, client cl");
    println!("VIP {VIP}, VRID 51, advertisements every {INTERVAL}\n");
    let lab = Lab::builder().routers(2).client().build()?;
    let t = Timeline {
        start: Instant::now(),
    };
    t.say("lab up: namespaces, bridge, veths (XDP pass program on every bridge port)");
    let started = Instant::now();
    let r1 = lab.vipd(&vipd, lab.router(1), &instance(200))?;
    let r2 = lab.vipd(&vipd, lab.router(2), &instance(100))?;
    t.say("vipd started on r1 and r2");
    check("start")?;
    r1.wait_state("gateway", "master", Duration::from_secs(5))?;
    r2.wait_state("gateway", "backup", Duration::from_secs(5))?;
    t.say(format!(
        "election: r1 MASTER, r2 BACKUP ({:.0} ms after r1 started)",
        started.elapsed().as_secs_f64() * 1e3
    ));
    check("election")?;

    let vip: IpAddr = VIP.parse()?;
    let probe = lab.probe(
        lab.client(),
        Method::Resolve,
        vip,
        Duration::from_millis(2),
        Duration::from_secs(10),
        &[],
    )?;
    t.say("client asks who-has 192.0.2.1 every 2 ms");
    std::thread::sleep(Duration::from_millis(500));
    check("probing")?;

    let cut = Instant::now();
    lab.set_port(lab.router(1), false)?;
    t.say("r1's link cut (its bridge port set down)");
    let took = r2.wait_state("gateway", "master", Duration::from_secs(5))?;
    t.say(format!(
        "r2 MASTER ({:.1} ms after the cut; Master_Down_Interval {:.1} ms)",
        took.as_secs_f64() * 1e3,
        r2.instance("gateway")?["master_down_interval_ms"]
            .as_f64()
            .unwrap_or_default()
    ));
    std::thread::sleep(Duration::from_millis(800));
    check("failover")?;

    let restore = Instant::now();
    lab.set_port(lab.router(1), true)?;
    t.say("r1's link restored");
    let took = r1.wait_state("gateway", "master", Duration::from_secs(5))?;
    r2.wait_state("gateway", "backup", Duration::from_secs(5))?;
    t.say(format!(
        "r1 MASTER again (preempted {:.1} ms after the restore), r2 BACKUP",
        took.as_secs_f64() * 1e3
    ));
    std::thread::sleep(Duration::from_millis(500));
    let run = probe.stop()?;
    t.say("probing stopped");

    println!("\nWhat the client saw:");
    let last_r1 = run.last_answer_by("r1", restore).map(|p| run.ms(p.sent));
    let first_r2 = run.first_answer_by("r2", cut).map(|p| run.ms(p.sent));
    println!("  {}", run.summary());
    if let (Some(a), Some(b)) = (last_r1, first_r2) {
        println!(
            "  failover outage: last answer from r1 at {a:.1} ms, first from r2 at {b:.1} ms: {:.1} ms",
            b - a
        );
    }
    println!(
        "  two routers answering at once: {:.1} ms in total",
        run.overlap_total().as_secs_f64() * 1e3
    );
    for r in [&r1, &r2] {
        show(r)?;
    }
    println!("Cleaning up: vipd stopped, namespaces and pinned maps removed.");
    Ok(())
}

fn show(v: &Vipd) -> Result<()> {
    println!("\n$ vipd status   # on {}", v.router);
    print!("{}", v.status_text().context("vipd status")?);
    Ok(())
}
