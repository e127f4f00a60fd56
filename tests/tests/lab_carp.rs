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
    let mut guard = ReplayGuard::new(ReplayMode::Strict, 1);
    for (_, n) in &vhid7 {
        guard
            .admit(*n)
            .map_err(|e| anyhow::anyhow!("fresh counter refused: {e}"))?;
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
