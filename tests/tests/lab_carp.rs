//! Real ucarp (the Debian package) on the wire, read with vipd's CARP codec.
//!
//! Three ucarp routers in a lab: r1 (VHID 7, skew 10) alone until r2 (VHID 7, skew 0,
//! `--preempt`) joins and takes over; r3 (VHID 200, a 19-byte passphrase, advbase 2)
//! alone throughout. Every advertisement captured on their bridge ports must be
//! classified as CARP, decode, carry the HMAC vipd computes for its virtual host (and
//! not the one of a wrong passphrase), re-encode to the same bytes, and pass vipd's
//! replay check once and only once. The counters must behave as ucarp's source says
//! (and `vrrp::carp::replay` relies on): random in every advertisement while a router
//! has heard no one, then the last counter heard plus one; two routers settle on one
//! rising sequence.
//!
//! `vipd import ucarp` of the same command lines must give back their settings.
//!
//! A second test attaches vipd's XDP program, without a daemon, to the backup's link
//! while ucarp runs there: CARP of a VHID it has no policy for passes untouched (the
//! ucarp beside it keeps hearing its master), with a policy it still passes (the daemon
//! would judge the HMAC), and what the policy's allowlist refuses is dropped on the live
//! path (the ucarp, no longer hearing its master, takes over).
//!
//! `VIPD_BLESS=1` also writes the frames to `tests/vectors/ucarp-1.5.2.hex`, the vectors
//! the unit tests (`vip-userspace/src/vrrp/carp/tests.rs`) and the program tests
//! (`tests/tests/program/carp.rs`) use without root.

use std::{fmt::Write as _, net::IpAddr, time::Duration};

use anyhow::{Context as _, Result, ensure};
use vip_common::{FAMILY_IPV4, POLICY_F_ALLOWLIST, Policy, PolicyKey};
use vip_tests::{
    lab::{Frame, Lab, Node, UcarpConfig},
    require_root,
};
use vipd::dataplane::{Dataplane, Maps, ModePreference};
use vipd::vrrp::carp::{
    Authenticator, Key, LinkLocal, Proto112, ReplayGuard, ReplayMode, VirtualHost,
    classify_proto112, decode_ipv4,
};

/// The lab's ucarp settings, which the vector file's header repeats.
fn r1_cfg() -> UcarpConfig {
    UcarpConfig {
        vhid: 7,
        pass: "lab-carp-pass".into(),
        addr: "192.0.2.70".parse().unwrap(),
        advbase: 1,
        advskew: 10,
        ..Default::default()
    }
}

fn r2_cfg() -> UcarpConfig {
    UcarpConfig {
        advskew: 0,
        preempt: true,
        ..r1_cfg()
    }
}

fn r3_cfg() -> UcarpConfig {
    UcarpConfig {
        vhid: 200,
        pass: "nineteen-bytes-long".into(),
        addr: "192.0.2.71".parse().unwrap(),
        advbase: 2,
        advskew: 0,
        ..Default::default()
    }
}

/// A CARP advertisement a router sent, as captured on its bridge port.
struct Captured {
    router: String,
    frame: Frame,
}

fn carp_frames(router: &Node, frames: Vec<Frame>) -> Vec<Captured> {
    frames
        .into_iter()
        // What the router sent: ucarp's advertisements leave from 00:00:5e:00:00:VHID.
        .filter(|f| f.data.len() >= 14 + 20 && f.data[12..14] == [0x08, 0x00])
        .filter(|f| f.data[14 + 9] == 112 && f.data[14 + 12..14 + 16] == router.ipv4.octets())
        .map(|frame| Captured {
            router: router.label.clone(),
            frame,
        })
        .collect()
}

/// Checks one captured advertisement against `cfg` and returns its counter.
fn check(c: &Captured, cfg: &UcarpConfig) -> Result<u64> {
    let f = &c.frame.data;
    ensure!(
        f[0..6] == [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12],
        "{}: not to 224.0.0.18's MAC",
        c.router
    );
    ensure!(
        f[6..12] == [0x00, 0x00, 0x5e, 0x00, 0x00, cfg.vhid],
        "{}: ucarp's advertisement source MAC is 00:00:5e:00:00:{:02x}, got {:02x?}",
        c.router,
        cfg.vhid,
        &f[6..12]
    );
    let ip = &f[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let msg = &ip[ihl..total];
    ensure!(
        classify_proto112(msg[0], msg[3], msg.len(), false) == Proto112::Carp,
        "{}: not classified as CARP",
        c.router
    );
    let got = decode_ipv4(&ip[..total]).with_context(|| format!("{}: decoding", c.router))?;
    ensure!(got.dst == IpAddr::from([224, 0, 0, 18]) && got.ttl == 255);
    let a = got.advert;
    ensure!(
        (a.vhid, a.advbase, a.advskew, a.demote) == (cfg.vhid, cfg.advbase, cfg.advskew, 0),
        "{}: fields {a:?}",
        c.router
    );
    ensure!(a.encode()[..] == *msg, "{}: re-encoding differs", c.router);
    let host = VirtualHost::new(cfg.vhid, [IpAddr::V4(cfg.addr)]);
    let auth = Authenticator::new(&Key::new(cfg.pass.as_bytes())?, &host, LinkLocal::Without);
    ensure!(
        auth.verify(a.counter, &a.digest)? == LinkLocal::Without,
        "{}: HMAC form",
        c.router
    );
    ensure!(
        auth.sign(a.counter) == a.digest,
        "{}: vipd's HMAC differs",
        c.router
    );
    let wrong = Authenticator::new(&Key::new(b"lab-carp-pasS")?, &host, LinkLocal::Without);
    ensure!(
        wrong.verify(a.counter, &a.digest).is_err(),
        "{}: a wrong passphrase verified",
        c.router
    );
    Ok(a.counter)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn ucarp_advertisements_decode_verify_and_count_as_its_source_says() -> Result<()> {
    require_root();
    let lab = Lab::builder().routers(3).build()?;
    let (r1, r2, r3) = (lab.router(1), lab.router(2), lab.router(3));
    let caps = [
        lab.capture_port(r1, "ip proto 112 or arp")?,
        lab.capture_port(r2, "ip proto 112 or arp")?,
        lab.capture_port(r3, "ip proto 112 or arp")?,
    ];
    let u1 = lab.ucarp(r1, &r1_cfg())?;
    let u3 = lab.ucarp(r3, &r3_cfg())?;
    // ucarp becomes master after deadratio × advbase + skew of silence.
    u1.wait_state("MASTER", Duration::from_secs(10))?;
    u3.wait_state("MASTER", Duration::from_secs(15))?;
    // A few advertisements of a lone master.
    std::thread::sleep(Duration::from_millis(3300));
    let u2 = lab.ucarp(r2, &r2_cfg())?;
    // r2 hears r1's next advertisement, adopts its counter and preempts; r1, hearing a
    // more frequent master, steps down.
    u2.wait_state("MASTER", Duration::from_secs(5))?;
    u1.wait_state("BACKUP", Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_millis(3300));
    let [c1, c2, c3] = caps;
    let f1 = c1.stop()?;
    let f2 = c2.stop()?;
    let f3 = c3.stop()?;
    let garp = f1
        .iter()
        .find(|f| f.data.len() >= 42 && f.data[12..14] == [0x08, 0x06])
        .cloned();
    let a1 = carp_frames(r1, f1);
    let a2 = carp_frames(r2, f2);
    let a3 = carp_frames(r3, f3);
    ensure!(a1.len() >= 3, "r1 sent {} advertisements", a1.len());
    ensure!(a2.len() >= 3, "r2 sent {} advertisements", a2.len());
    ensure!(a3.len() >= 2, "r3 sent {} advertisements", a3.len());

    let n3: Vec<u64> = a3
        .iter()
        .map(|c| check(c, &r3_cfg()))
        .collect::<Result<_>>()?;
    // VHID 7 from both routers in the order they were sent (one clock, two captures).
    let mut vhid7: Vec<(&Captured, u64)> = Vec::new();
    for c in &a1 {
        vhid7.push((c, check(c, &r1_cfg())?));
    }
    for c in &a2 {
        vhid7.push((c, check(c, &r2_cfg())?));
    }
    vhid7.sort_by_key(|(c, _)| c.frame.at);
    let joined = vhid7
        .iter()
        .position(|(c, _)| c.router == "r2")
        .context("no advertisement from r2")?;
    ensure!(joined >= 2, "r1 sent {joined} advertisements alone");
    let n1: Vec<u64> = vhid7[..joined].iter().map(|(_, n)| *n).collect();
    let all: Vec<u64> = vhid7.iter().map(|(_, n)| *n).collect();
    let continues = |i: usize| all[..i].iter().any(|e| all[i] == e.wrapping_add(1));

    // Alone, a fresh random counter in every advertisement (never the last one + 1).
    for alone in [&n1, &n3] {
        for w in alone.windows(2) {
            ensure!(
                w[1] != w[0].wrapping_add(1),
                "a lone ucarp counted on: {alone:x?}"
            );
        }
    }
    // r2 preempted on hearing r1: its every counter continues one it heard. r1 may send
    // one more random one before it reads r2's (ucarp reads through pcap with a 1 s
    // timeout), then continues what it heard too; the two settle on r2's sequence.
    for (i, (c, n)) in vhid7.iter().enumerate().skip(joined) {
        ensure!(
            c.router == "r1" || continues(i),
            "r2's {n:#x} continues nothing sent before: {all:x?}"
        );
    }
    ensure!(
        vhid7[joined].1 == n1.last().unwrap().wrapping_add(1),
        "r2 did not continue r1's last: {all:x?}"
    );
    let tail = &all[all.len() - 2..];
    ensure!(
        vhid7[vhid7.len() - 2..]
            .iter()
            .all(|(c, _)| c.router == "r2")
            && tail[1] == tail[0].wrapping_add(1),
        "not settled on r2's sequence: {all:x?}"
    );

    // In the order they were sent, every advertisement is fresh once and a replay after.
    // One exception, ucarp's own: while the two sequences interleave after r2 joined,
    // both routers may continue the same counter they heard, so one value goes out
    // twice, once from each (vipd in strict mode refuses the second, which changes
    // nothing: it carries the same news).
    let mut guard = ReplayGuard::new(ReplayMode::Strict, 1);
    let mut twice = Vec::new();
    for (i, (c, n)) in vhid7.iter().enumerate() {
        if let Err(e) = guard.admit(*n) {
            let other_sent_it = vhid7[..i]
                .iter()
                .any(|(o, m)| m == n && o.router != c.router);
            ensure!(
                i >= joined && other_sent_it,
                "fresh counter refused: {e}: {all:x?}"
            );
            twice.push(*n);
        }
    }
    if !twice.is_empty() {
        println!("counters sent by both routers while their sequences interleaved: {twice:x?}");
    }
    for (_, n) in &vhid7 {
        ensure!(guard.admit(*n).is_err(), "replayed counter {n:#x} admitted");
    }
    // Every random counter starts a range; every counter that continues one extends it.
    let random = (0..all.len()).filter(|&i| !continues(i)).count();
    ensure!(
        guard.ranges() == random,
        "{} ranges for {random} random counters: {all:x?}",
        guard.ranges()
    );

    // The importer turns the very command lines these routers ran into the settings
    // their advertisements were checked against.
    for (u, cfg, skew, preempt) in [(&u1, r1_cfg(), 10, false), (&u2, r2_cfg(), 0, true)] {
        let argv: Vec<String> = std::fs::read_to_string(u.dir.join("argv"))?
            .lines()
            .map(str::to_owned)
            .collect();
        let loc = vipd::import::Loc {
            file: "argv".into(),
            line: 1,
        };
        let out = vipd::import::ucarp::ucarp(&[(loc, argv)], "lab");
        let toml = out.toml.as_deref().context("import wrote nothing")?;
        for want in [
            "protocol = \"carp\"\n".to_owned(),
            format!("vrid = {}\n", cfg.vhid),
            format!("advskew = {skew}\n"),
            format!("passphrase = \"{}\"\n", cfg.pass),
            format!("preempt = {preempt}\n"),
            format!("vips = [\"{}/32\"]\n", cfg.addr),
        ] {
            ensure!(
                toml.contains(&want),
                "import of {}: no {want:?} in\n{toml}",
                u.router
            );
        }
    }

    if std::env::var_os("VIPD_BLESS").is_some() {
        let mut text = String::new();
        writeln!(
            text,
            "# CARP advertisements of ucarp 1.5.2 (Debian 12 package) in a vipd lab, captured\n\
             # by `VIPD_BLESS=1 cargo test -p vip-tests --test lab_carp` on the routers' bridge\n\
             # ports. One frame a line: NAME HEX. Settings, which the tests repeat:\n\
             #   r1: --vhid=7 --pass=lab-carp-pass --addr=192.0.2.70 --advbase=1 --advskew=10\n\
             #       from 192.0.2.11; alone, then preempted by r2\n\
             #   r2: as r1 but --advskew=0 --preempt, from 192.0.2.12\n\
             #   r3: --vhid=200 --pass=nineteen-bytes-long --addr=192.0.2.71 --advbase=2\n\
             #       --advskew=0 from 192.0.2.13; alone\n\
             # `alone`: random counters, a new one per advertisement. `after`: sent once r2\n\
             # had joined; each continues a counter its sender had heard (r1 may send one more\n\
             # random one before it reads r2's). The garp is what ucarp sends as master."
        )?;
        // The last three alone, and what followed, in the order sent.
        let from = joined.saturating_sub(3);
        for (i, (c, _)) in vhid7[from..].iter().take(8).enumerate() {
            let phase = if from + i < joined { "alone" } else { "after" };
            writeln!(
                text,
                "ucarp-1.5.2_vhid7_{}_{phase}_{} {}",
                c.router,
                i + 1,
                hex(&c.frame.data)
            )?;
        }
        for (i, c) in a3.iter().take(3).enumerate() {
            writeln!(
                text,
                "ucarp-1.5.2_vhid200_r3_alone_{} {}",
                i + 1,
                hex(&c.frame.data)
            )?;
        }
        if let Some(g) = garp {
            writeln!(text, "ucarp-1.5.2_garp_192.0.2.70 {}", hex(&g.data))?;
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/ucarp-1.5.2.hex");
        std::fs::write(&path, text)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The responder's counters on the link it is attached to, by name.
fn counter(maps: &Maps, name: &str) -> Result<u64> {
    let c = maps.counters()?;
    let i = vip_common::Counters::NAMES
        .iter()
        .position(|n| *n == name)
        .context("no such counter")?;
    Ok(c.values()[i])
}

#[test]
fn the_xdp_program_passes_live_carp_to_a_ucarp_beside_it_and_drops_what_its_policy_refuses()
-> Result<()> {
    require_root();
    let lab = Lab::builder().routers(2).build()?;
    let (r1, r2) = (lab.router(1), lab.router(2));
    let master = lab.ucarp(r1, &r1_cfg())?;
    let backup_cfg = UcarpConfig {
        advskew: 100,
        ..r1_cfg()
    };
    let backup = lab.ucarp(r2, &backup_cfg)?;
    master.wait_state("MASTER", Duration::from_secs(10))?;
    backup.wait_state("BACKUP", Duration::from_secs(1))?;
    let pin = lab.pin_dir()?;
    let pin_in = pin.clone();
    lab.in_node(r2, move || -> Result<()> {
        let mut dp = Dataplane::open(&pin_in)?;
        dp.attach("eth0", ModePreference::Native)?;
        Ok(())
    })??;
    let mut maps = Maps::open_pinned(&pin)?;
    // Longer than ucarp's master-down time (3 x 1 s + 100/256 s) each time.
    let settle = Duration::from_millis(4500);

    // No policy: another speaker's CARP, passed untouched.
    std::thread::sleep(settle);
    ensure!(
        backup.state().as_deref() == Some("BACKUP"),
        "the ucarp beside the program stopped hearing its master:\n{}",
        backup.log()
    );
    let foreign = counter(&maps, "carp_foreign")?;
    ensure!(foreign >= 3, "{foreign} adverts counted as foreign");
    ensure!(counter(&maps, "carp_pass")? == 0);

    // A CARP policy for VHID 7: passed for the daemon, and so to ucarp as well.
    let key = PolicyKey::carp(r2_ifindex(&lab, r2)?, 0, FAMILY_IPV4, 7);
    maps.set_policy(key, Policy::carp(0))?;
    std::thread::sleep(settle);
    ensure!(backup.state().as_deref() == Some("BACKUP"));
    let passed = counter(&maps, "carp_pass")?;
    ensure!(passed >= 3, "{passed} adverts passed");

    // Its allowlist without r1: dropped in XDP, so the ucarp beside it hears no master.
    maps.set_policy(
        key,
        Policy {
            flags: Policy::carp(0).flags | POLICY_F_ALLOWLIST,
            ..Policy::carp(0)
        },
    )?;
    backup.wait_state("MASTER", Duration::from_secs(6))?;
    let refused = counter(&maps, "carp_drop_peer")?;
    ensure!(refused >= 3, "{refused} adverts dropped");
    ensure!(counter(&maps, "carp_pass")? <= passed + 1);
    Dataplane::detach(&pin, "eth0")?;
    Ok(())
}

fn r2_ifindex(lab: &Lab, node: &Node) -> Result<u32> {
    let name = node.ifname.clone();
    lab.in_node(node, move || -> Result<u32> {
        let c = std::ffi::CString::new(name)?;
        // SAFETY: a NUL-terminated name.
        let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
        ensure!(i != 0, "no such interface");
        Ok(i)
    })?
}

mod daemon {
    //! vipd's CARP (`protocol = "carp"`) against real ucarp (the Debian package), the
    //! daemon end to end: sockets, the raw socket filter, the CARP speaker's checks and the
    //! XDP program answering ARP for the master.
    //!
    //! `vipd_masters_ucarp_and_refuses_wrong_passphrases_replays_and_forgeries` (one lab:
    //! r1 vipd, r2 ucarp, r3 a second ucarp with a wrong passphrase, an attacker, a client
    //! resolving the VIP every 2 ms):
    //! - vipd (advskew 10, preempt) and ucarp (advskew 100) elect one master: vipd; only
    //!   r1 answers ARP.
    //! - `kill -9` of vipd: ucarp takes over within its master-down time (3 × 1 s +
    //!   100/256 s) plus ucarp's own reaction latency (it reads through pcap with a 1 s
    //!   timeout: up to about 1 s more); vipd restarted preempts and ucarp steps down: one
    //!   master, only r1 answers.
    //! - ucarp with a wrong passphrase at advskew 0 with `--preempt`: vipd stays master,
    //!   every one of its adverts is refused and counted (`refused.hmac`).
    //! - The attacker replays ucarp's last advertisement with the best rank there is (the
    //!   HMAC covers the counter, not the rank) and forges fresh ones without the key: vipd
    //!   stays master, answers every ARP probe, and counts each as a replay or a bad HMAC.
    //! - VRRP VRID 7 and CARP VHID 7 on one link: keepalived (VRRP, priority 200) masters
    //!   VRRP 7 over vipd's VRRP 7 (priority 100) while vipd masters CARP 7 over ucarp; each
    //!   protocol elects its own master, nothing is refused across them.
    //!
    //! `ucarp_masters_vipd_fails_over_on_link_cut_and_hands_back`: the reverse roles, ucarp
    //! (advskew 0, preempt) master and vipd (advskew 100) backup; ucarp's port cut off the
    //! bridge: vipd takes over within its master-down time; rejoined, vipd hears the better
    //! master and steps down; only r2 answers again.

    use std::{
        net::{IpAddr, Ipv4Addr},
        time::{Duration, Instant},
    };

    use anyhow::{Context as _, Result, ensure};
    use vip_tests::{
        lab::{KeepalivedConfig, Lab, Method, Node, ProbeRun, UcarpConfig, Vipd},
        require_root,
    };
    use vipd::net::frames;
    use vipd::vrrp::carp::{self, Rank, decode_ipv4};

    const VIPD: &str = env!("CARGO_BIN_EXE_vipd-under-test");
    const VHID: u8 = 7;
    const PASS: &str = "lab-carp-pass";
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 70);
    const PROBE_EVERY: Duration = Duration::from_millis(2);
    /// ucarp reads through pcap with a 1 s timeout (docs/carp.md): its reactions lag.
    const UCARP_LAG: Duration = Duration::from_millis(2000);

    fn vipd_carp(advskew: u8, preempt: bool, pass: &str) -> String {
        format!(
            "[[vrrp]]\nname = \"fw\"\nprotocol = \"carp\"\ninterface = \"eth0\"\nvrid = {VHID}\n\
             advskew = {advskew}\npreempt = {preempt}\npassphrase = \"{pass}\"\n\
             advert_interval = \"1s\"\nvips = [\"{VIP}/24\"]\n"
        )
    }

    fn ucarp(advskew: u8, preempt: bool, pass: &str) -> UcarpConfig {
        UcarpConfig {
            vhid: VHID,
            pass: pass.into(),
            addr: VIP,
            prefix_len: 24,
            advbase: 1,
            advskew,
            preempt,
            ..Default::default()
        }
    }

    /// CARP's master-down time for a backup of `advskew` (advbase 1 s, dead ratio 3).
    fn master_down(advskew: u8) -> Duration {
        carp::master_down(Rank::new(1, advskew), carp::DEAD_RATIO)
    }

    fn carp_status(v: &Vipd, name: &str) -> Result<serde_json::Value> {
        let i = v.instance(name)?;
        ensure!(i["protocol"] == "carp", "protocol {}", i["protocol"]);
        Ok(i["carp"].clone())
    }

    fn refused(v: &Vipd, what: &str) -> Result<u64> {
        carp_status(v, "fw")?[what]
            .as_u64()
            .with_context(|| format!("carp.{what}"))
    }

    /// Probes the VIP from the client while `act` runs and `settle` after.
    fn probed(
        lab: &Lab,
        settle: Duration,
        act: impl FnOnce() -> Result<()>,
    ) -> Result<(ProbeRun, Instant)> {
        let p = lab.probe(
            lab.client(),
            Method::Resolve,
            IpAddr::V4(VIP),
            PROBE_EVERY,
            Duration::from_secs(60),
            &[],
        )?;
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        let acted = act();
        if acted.is_ok() {
            std::thread::sleep(settle);
        }
        let run = p.stop()?;
        acted?;
        Ok((run, t0))
    }

    /// Every probe from `from` on answered, by `who` alone.
    fn only(run: &ProbeRun, from: Instant, who: &str) -> Result<usize> {
        let probes: Vec<_> = run.between(from, Instant::now()).collect();
        ensure!(
            probes.len() >= 20,
            "{} probes only: {}",
            probes.len(),
            run.summary()
        );
        let bad: Vec<_> = probes
            .iter()
            .filter(|p| p.responders() != [who.to_owned()].into())
            .map(|p| (p.seq, p.responders()))
            .collect();
        ensure!(
            bad.is_empty(),
            "{} of {} probes not answered by {who} alone (first: {:?}): {}",
            bad.len(),
            probes.len(),
            bad.first(),
            run.summary()
        );
        Ok(probes.len())
    }

    /// The last CARP advertisement `router` sent in `frames` (IPv4 header onwards).
    fn last_advert_of(router: &Node, captured: &[vip_tests::lab::Frame]) -> Option<Vec<u8>> {
        captured
            .iter()
            .filter(|f| f.data.len() >= 14 + 20 + 36 && f.data[12..14] == [0x08, 0x00])
            .filter(|f| f.data[14 + 9] == 112 && f.data[14 + 12..14 + 16] == router.ipv4.octets())
            .map(|f| f.data[14..].to_vec())
            .next_back()
    }

    #[test]
    fn vipd_masters_ucarp_and_refuses_wrong_passphrases_replays_and_forgeries() -> Result<()> {
        require_root();
        let lab = Lab::builder().routers(3).client().attacker().build()?;
        let (r1, r2, r3) = (lab.router(1), lab.router(2), lab.router(3));

        // One master: vipd, the better skew, whoever starts first.
        let u2 = lab.ucarp(r2, &ucarp(100, false, PASS))?;
        let mut v1 = lab.vipd(std::path::Path::new(VIPD), r1, &vipd_carp(10, true, PASS))?;
        v1.wait_state("fw", "master", master_down(10) + Duration::from_secs(2))?;
        u2.wait_state("BACKUP", UCARP_LAG)?;
        let status = v1.status_text()?;
        ensure!(
            status.contains("vhid 7 ipv4 carp") && status.contains("advbase 1 s advskew 10"),
            "{status}"
        );
        let (run, t0) = probed(&lab, Duration::from_millis(500), || Ok(()))?;
        let n = only(&run, t0, "r1")?;
        println!("steady: {n} probes, all answered by r1 (vipd)");

        // kill -9 of vipd: ucarp takes over; the capture keeps its adverts for the replay.
        let cap = lab.capture_port(r2, "ip proto 112")?;
        let bound = master_down(100) + UCARP_LAG;
        let mut took = Duration::ZERO;
        let (run, t0) = probed(&lab, Duration::from_millis(500), || {
            let start = Instant::now();
            v1.kill()?;
            u2.wait_state("MASTER", bound + Duration::from_secs(1))?;
            took = start.elapsed();
            Ok(())
        })?;
        println!(
            "ucarp took over {took:?} after vipd's kill -9 (master down {:?}): {}",
            master_down(100),
            run.summary()
        );
        ensure!(took <= bound, "ucarp took over after {took:?} > {bound:?}");
        let after = run.first_answer_by("r2", t0).context("r2 never answered")?;
        only(&run, after.sent + Duration::from_millis(100), "r2")?;

        // vipd back: it hears ucarp's advertisement, preempts; ucarp steps down.
        // Both answer until ucarp, a second or so later (its pcap lag), runs its down
        // script and removes the address; then vipd alone.
        let mut stepped_down = Instant::now();
        let (run, t0) = probed(&lab, Duration::from_millis(800), || {
            lab.start_vipd(&mut v1, &[])?;
            v1.wait_state("fw", "master", Duration::from_secs(5))?;
            u2.wait_state("BACKUP", UCARP_LAG + Duration::from_secs(1))?;
            stepped_down = Instant::now();
            Ok(())
        })?;
        println!(
            "hand-back: ucarp down {:?} after vipd's restart: {}",
            stepped_down - t0,
            run.summary()
        );
        only(&run, stepped_down + Duration::from_millis(20), "r1")?;
        let frames = cap.stop()?;
        let genuine = last_advert_of(r2, &frames).context("no ucarp advertisement captured")?;
        ensure!(refused(&v1, "refused_auth")? == 0 && refused(&v1, "refused_replay")? == 0);

        // A wrong passphrase, at the best skew, preempting: it moves nothing on vipd's side.
        let u3 = lab.ucarp(r3, &ucarp(0, true, "not-the-passphrase"))?;
        // It hears no valid advertisement, so it makes itself master after its master-down
        // time and advertises every second from then on.
        vip_tests::lab::wait_until(
            "three adverts of the wrong passphrase refused",
            master_down(0) + UCARP_LAG + Duration::from_secs(5),
            Duration::from_millis(50),
            || {
                ensure!(v1.state_of("fw")? == "master", "vipd left master");
                Ok(refused(&v1, "refused_auth")? >= 3)
            },
        )?;
        let wrong = refused(&v1, "refused_auth")?;
        ensure!(v1.state_of("fw")? == "master", "vipd left master");
        println!(
            "wrong passphrase: vipd master, {wrong} adverts refused (ucarp r3 says {:?})",
            u3.state()
        );
        u3.stop()?;

        // Replayed and forged adverts at the best rank: the master keeps answering.
        let inj = lab.injector(lab.attacker())?;
        let at = lab.attacker();
        let replay_frame = |ip_packet: &[u8], rank: Rank| -> Result<Vec<u8>> {
            let got = decode_ipv4(ip_packet)?;
            let mut a = got.advert;
            a.advbase = rank.advbase;
            a.advskew = rank.advskew;
            let src = match got.src {
                IpAddr::V4(s) => s,
                IpAddr::V6(_) => anyhow::bail!("IPv6"),
            };
            let dst = Ipv4Addr::new(224, 0, 0, 18);
            Ok(frames::vrrp_v4(
                at.mac,
                frames::ipv4_multicast_mac(dst),
                src,
                dst,
                1,
                &a.encode(),
            ))
        };
        let best = Rank::new(0, 1);
        let replayed = replay_frame(&genuine, best)?;
        let mut forged_adverts = Vec::new();
        for i in 0..10u64 {
            let mut a = decode_ipv4(&genuine)?.advert;
            a.counter = a.counter.wrapping_add(1_000_000 + i);
            a.digest = [0x5a; 20];
            a.advbase = best.advbase;
            a.advskew = best.advskew;
            let dst = Ipv4Addr::new(224, 0, 0, 18);
            forged_adverts.push(frames::vrrp_v4(
                at.mac,
                frames::ipv4_multicast_mac(dst),
                r2.ipv4,
                dst,
                2,
                &a.encode(),
            ));
        }
        let (auth0, replay0) = (
            refused(&v1, "refused_auth")?,
            refused(&v1, "refused_replay")?,
        );
        let (run, t0) = probed(&lab, Duration::from_millis(1500), || {
            for forged in &forged_adverts {
                inj.send(&replayed)?;
                inj.send(forged)?;
                std::thread::sleep(Duration::from_millis(200));
            }
            Ok(())
        })?;
        let n = only(&run, t0 - Duration::from_millis(250), "r1")?;
        let (auth, replay) = (
            refused(&v1, "refused_auth")? - auth0,
            refused(&v1, "refused_replay")? - replay0,
        );
        println!(
            "attack: {n} probes all answered by r1; refused {replay} replays, {auth} forgeries"
        );
        ensure!(v1.state_of("fw")? == "master");
        ensure!(
            replay == 10 && auth == 10,
            "replays {replay}, forgeries {auth}"
        );
        let transitions = v1.instance("fw")?["transitions"].as_u64().unwrap_or(0);

        // VRRP VRID 7 beside CARP VHID 7: keepalived masters the VRRP one.
        let k3 = lab.keepalived(
            r3,
            &KeepalivedConfig {
                vrid: VHID,
                priority: 200,
                version: 3,
                advert_interval: Duration::from_millis(100),
                vips: vec!["192.0.2.80".parse()?],
                ..Default::default()
            },
        )?;
        v1.rewrite(&format!(
            "{}\n[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = {VHID}\npriority = 100\n\
             advert_interval = \"100ms\"\nvips = [\"192.0.2.80/24\"]\n",
            vipd_carp(10, true, PASS)
        ))?;
        let mark = v1.log_mark();
        v1.signal(nix::sys::signal::Signal::SIGHUP)?;
        v1.wait_log(mark, "configuration reloaded", Duration::from_secs(5))?;
        k3.wait_state("MASTER", Duration::from_secs(5))?;
        v1.wait_state("gw", "backup", Duration::from_secs(5))?;
        std::thread::sleep(Duration::from_secs(3));
        ensure!(v1.state_of("fw")? == "master" && v1.state_of("gw")? == "backup");
        ensure!(u2.state().as_deref() == Some("BACKUP"));
        let gw = v1.instance("gw")?;
        ensure!(
            gw["adverts_invalid"] == 0 && gw["adverts_received"].as_u64().unwrap_or(0) >= 20,
            "VRRP 7 saw {gw}"
        );
        ensure!(
            refused(&v1, "refused_auth")? == auth0 + auth,
            "keepalived's VRRP counted as CARP"
        );
        ensure!(v1.instance("fw")?["transitions"].as_u64().unwrap_or(0) == transitions);
        println!("VRRP 7: keepalived master, vipd backup; CARP 7: vipd master, ucarp backup");
        Ok(())
    }

    #[test]
    fn ucarp_masters_vipd_fails_over_on_link_cut_and_hands_back() -> Result<()> {
        require_root();
        let lab = Lab::builder().routers(2).client().build()?;
        let (r1, r2) = (lab.router(1), lab.router(2));
        let u2 = lab.ucarp(r2, &ucarp(0, true, PASS))?;
        u2.wait_state("MASTER", master_down(0) + UCARP_LAG)?;
        let v1 = lab.vipd(std::path::Path::new(VIPD), r1, &vipd_carp(100, false, PASS))?;
        v1.wait_state("fw", "backup", Duration::from_secs(5))?;
        std::thread::sleep(Duration::from_secs(2));
        ensure!(
            v1.state_of("fw")? == "backup",
            "vipd preempted a better master"
        );
        let (run, t0) = probed(&lab, Duration::from_millis(500), || Ok(()))?;
        only(&run, t0, "r2")?;

        // ucarp's port off the bridge: vipd hears nothing and takes over.
        let bound = master_down(100) + Duration::from_millis(1100);
        let mut took = Duration::ZERO;
        let (run, t0) = probed(&lab, Duration::from_millis(500), || {
            let start = Instant::now();
            lab.cut(r2)?;
            v1.wait_state("fw", "master", bound + Duration::from_secs(1))?;
            took = start.elapsed();
            Ok(())
        })?;
        println!(
            "vipd took over {took:?} after the cut (master down {:?}): {}",
            master_down(100),
            run.summary()
        );
        // From the cut, the last advert vipd heard is at most one interval older.
        ensure!(took <= bound, "vipd took over after {took:?} > {bound:?}");
        let first = run.first_answer_by("r1", t0).context("r1 never answered")?;
        only(&run, first.sent, "r1")?;

        // Rejoined: ucarp, master all along on its side, is the better one; vipd yields.
        let (run, t0) = probed(&lab, Duration::from_millis(800), || {
            lab.rejoin(r2)?;
            v1.wait_state("fw", "backup", Duration::from_secs(3))?;
            Ok(())
        })?;
        println!("hand-back: {}", run.summary());
        ensure!(u2.state().as_deref() == Some("MASTER"));
        // Until ucarp's next advertisement reaches vipd (at most one advbase + skew after
        // the rejoin) both are masters of a healed split brain and both answer; then r2
        // alone.
        let last = run.last_answer_by("r1", Instant::now());
        let overlap = last.map_or(Duration::ZERO, |p| p.sent.saturating_duration_since(t0));
        println!("r1 answered for {overlap:?} after the rejoin");
        ensure!(
            overlap <= Duration::from_millis(1300),
            "vipd answered {overlap:?} after the rejoin"
        );
        only(
            &run,
            last.map_or(t0, |p| p.sent) + Duration::from_millis(20),
            "r2",
        )?;
        ensure!(refused(&v1, "refused_auth")? == 0);
        Ok(())
    }

    /// Two vipds, one CARP virtual host over IPv6 (ucarp speaks IPv4 only): one master,
    /// failover on `kill -9` within the backup's master-down time, the NS answers follow.
    #[test]
    fn two_vipds_elect_one_carp_master_over_ipv6_and_fail_over() -> Result<()> {
        require_root();
        let lab = Lab::builder().routers(2).client().build()?;
        let (r1, r2) = (lab.router(1), lab.router(2));
        let vip: IpAddr = "2001:db8::70".parse()?;
        let section = |advskew: u8| {
            format!(
                "[[vrrp]]\nname = \"fw6\"\nprotocol = \"carp\"\ninterface = \"eth0\"\n\
                 vrid = {VHID}\nadvskew = {advskew}\npassphrase = \"{PASS}\"\n\
                 vips = [\"{vip}/64\"]\n"
            )
        };
        let v1 = lab.vipd(std::path::Path::new(VIPD), r1, &section(10))?;
        let v2 = lab.vipd(std::path::Path::new(VIPD), r2, &section(100))?;
        v1.wait_state("fw6", "master", master_down(10) + Duration::from_secs(2))?;
        v2.wait_state("fw6", "backup", Duration::from_secs(2))?;
        std::thread::sleep(Duration::from_secs(3));
        ensure!(v1.state_of("fw6")? == "master" && v2.state_of("fw6")? == "backup");
        let received = v2.instance("fw6")?["adverts_received"]
            .as_u64()
            .unwrap_or(0);
        ensure!(received >= 2, "the backup heard {received} adverts");
        ensure!(refused_of(&v2, "fw6", "refused_auth")? == 0);
        let probe = |act: &dyn Fn() -> Result<()>| -> Result<(ProbeRun, Instant)> {
            let p = lab.probe(
                lab.client(),
                Method::Resolve,
                vip,
                PROBE_EVERY,
                Duration::from_secs(30),
                &[],
            )?;
            std::thread::sleep(Duration::from_millis(300));
            let t0 = Instant::now();
            act()?;
            std::thread::sleep(Duration::from_millis(500));
            Ok((p.stop()?, t0))
        };
        let (run, t0) = probe(&|| Ok(()))?;
        only(&run, t0, "r1")?;
        let bound = master_down(100) + Duration::from_millis(100);
        let (run, t0) = probe(&|| {
            v1.kill()?;
            v2.wait_state("fw6", "master", bound + Duration::from_secs(2))?;
            Ok(())
        })?;
        let first = run.first_answer_by("r2", t0).context("r2 never answered")?;
        let gap = first.sent - t0;
        println!(
            "IPv6: r2 answered {gap:?} after r1's kill -9: {}",
            run.summary()
        );
        // From the kill: the last advert was at most one interval (1.04 s) earlier.
        ensure!(gap <= bound, "r2 answered after {gap:?}");
        only(&run, first.sent, "r2")?;
        Ok(())
    }

    fn refused_of(v: &Vipd, name: &str, what: &str) -> Result<u64> {
        carp_status(v, name)?[what]
            .as_u64()
            .with_context(|| format!("carp.{what}"))
    }
}
