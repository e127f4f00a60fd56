//! The health checkers (`vipd::check`) against real servers in a lab: r1 checks, the
//! client namespace `cl` (192.0.2.100) plays the real server with Python's HTTP server
//! (plain and TLS), and scripts. Then `lb::health` driven by real check results: a
//! server stopped is declared down within interval + retry × delay_before_retry, and
//! comes back on its first good check.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use md5::{Digest as _, Md5};
use vip_tests::lab::{Lab, wait_until};
use vipd::{
    check::runner::{Checker, Job, Report},
    exec::RunAs,
    lb::{
        health::{MemberSpec, Output, Pool, PoolSpec, Timing},
        service::CheckKind,
    },
    vrrp::timing::Time,
};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const NOBODY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
const BODY: &str = "healthy\n";

fn addr(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

/// Runs `jobs` on a checker started inside r1 and returns their reports in job order.
fn run_checks(lab: &Lab, jobs: Vec<Job>) -> Vec<Report> {
    lab.in_node(lab.router(1), move || {
        let (checker, mut reports) = Checker::start(RunAs::default()).unwrap();
        let n = jobs.len();
        for j in jobs {
            checker.submit(j);
        }
        let mut got: Vec<Report> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.len() < n && Instant::now() < deadline {
            match reports.try_recv() {
                Ok(r) => got.push(r),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        assert_eq!(got.len(), n, "every check reports");
        got.sort_by_key(|r| r.key);
        got
    })
    .unwrap()
}

fn job(i: usize, kind: CheckKind, target: SocketAddr, timeout: Duration) -> Job {
    Job {
        key: (0, i),
        kind,
        target,
        timeout,
    }
}

fn http(path: &str, tls: bool, status: Vec<u16>, digest: Option<[u8; 16]>) -> CheckKind {
    CheckKind::Http {
        port: None,
        tls,
        path: path.into(),
        host: None,
        status,
        digest,
    }
}

/// A lab with a web root holding `health` (BODY) served on SERVER:8080, and over TLS
/// (a fresh self-signed certificate) on SERVER:8443.
fn web_lab() -> Lab {
    let lab = Lab::builder().routers(1).client().build().unwrap();
    let root = lab.scratch("www").unwrap();
    std::fs::write(root.join("health"), BODY).unwrap();
    let (key, cert) = (root.join("key.pem"), root.join("cert.pem"));
    let ok = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=real.example", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let dir = root.to_str().unwrap();
    lab.spawn(
        lab.client(),
        &[
            "/usr/bin/python3",
            "-m",
            "http.server",
            "8080",
            "--bind",
            "192.0.2.100",
            "--directory",
            dir,
        ],
    )
    .unwrap();
    let tls = format!(
        "import functools, http.server, ssl\n\
         h = functools.partial(http.server.SimpleHTTPRequestHandler, directory='{dir}')\n\
         s = http.server.HTTPServer(('192.0.2.100', 8443), h)\n\
         c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         c.load_cert_chain('{}', '{}')\n\
         s.socket = c.wrap_socket(s.socket, server_side=True)\n\
         s.serve_forever()\n",
        cert.display(),
        key.display()
    );
    lab.spawn(lab.client(), &["/usr/bin/python3", "-c", &tls])
        .unwrap();
    for port in [8080, 8443] {
        wait_until(
            "the test web server",
            Duration::from_secs(10),
            Duration::from_millis(50),
            || {
                lab.in_node(lab.router(1), move || {
                    std::net::TcpStream::connect_timeout(
                        &addr(SERVER, port),
                        Duration::from_millis(200),
                    )
                    .is_ok()
                })
            },
        )
        .unwrap();
    }
    lab
}

#[test]
fn tcp_checks_see_a_listener_a_refusal_and_silence() {
    let lab = web_lab();
    let t = Duration::from_millis(300);
    let r = run_checks(
        &lab,
        vec![
            job(0, CheckKind::Tcp { port: None }, addr(SERVER, 8080), t),
            job(1, CheckKind::Tcp { port: Some(8080) }, addr(SERVER, 80), t),
            job(2, CheckKind::Tcp { port: None }, addr(SERVER, 8081), t),
            job(3, CheckKind::Tcp { port: None }, addr(NOBODY, 8080), t),
        ],
    );
    assert!(r[0].error.is_none(), "{:?}", r[0]);
    assert!(r[1].error.is_none(), "connect_port overrides: {:?}", r[1]);
    let refused = r[2].error.as_deref().unwrap();
    assert!(refused.contains("refused"), "{refused}");
    assert!(r[2].took < t, "a refusal is known at once: {:?}", r[2].took);
    let silent = r[3].error.as_deref().unwrap();
    assert!(silent.contains("no answer within"), "{silent}");
    assert!(r[3].took >= t && r[3].took < t * 3, "{:?}", r[3].took);
}

#[test]
fn http_checks_judge_status_and_body_digest_over_tcp_and_tls() {
    let lab = web_lab();
    let good: [u8; 16] = Md5::digest(BODY.as_bytes()).into();
    let bad: [u8; 16] = Md5::digest(b"something else").into();
    let t = Duration::from_secs(3);
    let (plain, tls) = (addr(SERVER, 8080), addr(SERVER, 8443));
    let r = run_checks(
        &lab,
        vec![
            job(0, http("/health", false, vec![], Some(good)), plain, t),
            job(1, http("/health", false, vec![], Some(bad)), plain, t),
            job(2, http("/missing", false, vec![], None), plain, t),
            job(3, http("/missing", false, vec![404], None), plain, t),
            job(4, http("/health", true, vec![200], Some(good)), tls, t),
            job(5, http("/health", true, vec![], Some(bad)), tls, t),
            // TLS spoken to a plain HTTP server: the handshake fails.
            job(6, http("/health", true, vec![], None), plain, t),
        ],
    );
    assert!(r[0].error.is_none(), "{:?}", r[0]);
    assert!(
        r[1].error.as_deref().unwrap().contains("digest"),
        "{:?}",
        r[1]
    );
    assert!(
        r[2].error.as_deref().unwrap().contains("status 404"),
        "{:?}",
        r[2]
    );
    assert!(r[3].error.is_none(), "{:?}", r[3]);
    assert!(r[4].error.is_none(), "TLS without verification: {:?}", r[4]);
    assert!(
        r[5].error.as_deref().unwrap().contains("digest"),
        "{:?}",
        r[5]
    );
    assert!(r[6].error.as_deref().unwrap().contains("TLS"), "{:?}", r[6]);
}

#[test]
fn script_checks_pass_on_exit_0_and_fail_on_anything_else_or_a_timeout() {
    let lab = Lab::builder().routers(1).build().unwrap();
    let sh = |s: &str| CheckKind::Script {
        argv: vec!["/bin/sh".into(), "-c".into(), s.into()],
    };
    let target = addr(SERVER, 80);
    let t = Duration::from_millis(500);
    let r = run_checks(
        &lab,
        vec![
            job(
                0,
                sh("test \"$VIPD_REAL_ADDRESS:$VIPD_REAL_PORT\" = 192.0.2.100:80"),
                target,
                t,
            ),
            job(1, sh("exit 3"), target, t),
            job(2, sh("sleep 5"), target, t),
        ],
    );
    assert!(r[0].error.is_none(), "{:?}", r[0]);
    assert!(r[1].error.as_deref().unwrap().contains('3'), "{:?}", r[1]);
    assert!(r[2].error.is_some());
    assert!(
        r[2].took < Duration::from_secs(2),
        "killed at its timeout: {:?}",
        r[2].took
    );
}

#[test]
fn a_stopped_server_leaves_within_interval_plus_retries_and_comes_back() {
    let lab = Lab::builder().routers(1).client().build().unwrap();
    let serve = || {
        lab.spawn(
            lab.client(),
            &[
                "/usr/bin/python3",
                "-m",
                "http.server",
                "8080",
                "--bind",
                "192.0.2.100",
            ],
        )
        .unwrap()
    };
    let mut server = serve();
    let timing = Timing {
        interval: Duration::from_millis(300),
        retry: 2,
        delay_before_retry: Duration::from_millis(100),
    };
    let timeout = Duration::from_millis(200);
    // The daemon's loop, in small: due checks go to the checker, reports come back
    // as results, outputs are recorded with the time they happened.
    let drive = |pool: &mut Pool,
                 checker: &Checker,
                 reports: &mut tokio_rx::Rx,
                 origin: Instant,
                 until: &Until| {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && !until(&seen) {
            let now = Time::from_duration(origin.elapsed());
            for o in pool.poll(now) {
                if let Output::Check(i) = o {
                    checker.submit(Job {
                        key: (0, i),
                        kind: CheckKind::Tcp { port: None },
                        target: addr(SERVER, 8080),
                        timeout,
                    });
                }
            }
            while let Ok(r) = reports.try_recv() {
                let now = Time::from_duration(origin.elapsed());
                for o in pool.result(now, r.key.1, r.error.is_none()) {
                    seen.push((origin.elapsed(), o));
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        seen
    };
    let (down_after, up_after) = lab
        .in_node(lab.router(1), || {
            let (checker, mut reports) = Checker::start(RunAs::default()).unwrap();
            let origin = Instant::now();
            let spec = PoolSpec {
                members: vec![MemberSpec {
                    weight: 1,
                    inhibit_on_failure: false,
                    timing: Some(timing),
                }],
                has_sorry: false,
                quorum: 1,
                hysteresis: 0,
                alpha: true,
            };
            let mut pool = Pool::new(&spec, Time::ZERO);
            // alpha: down until the first good check.
            let seen = drive(&mut pool, &checker, &mut reports, origin, &|s| {
                s.iter().any(|(_, o)| *o == Output::Up(0))
            });
            assert!(pool.is_up(0), "{seen:?}");
            server.kill().unwrap();
            let stopped = origin.elapsed();
            let seen = drive(&mut pool, &checker, &mut reports, origin, &|s| {
                s.iter().any(|(_, o)| *o == Output::Down(0))
            });
            let down = seen.iter().find(|(_, o)| *o == Output::Down(0)).unwrap().0 - stopped;
            assert!(seen.iter().any(|(_, o)| *o == Output::SetChanged));
            assert!(pool.set().is_empty());
            server = serve();
            let restarted = origin.elapsed();
            let seen = drive(&mut pool, &checker, &mut reports, origin, &|s| {
                s.iter().any(|(_, o)| *o == Output::Up(0))
            });
            let up = seen.iter().find(|(_, o)| *o == Output::Up(0)).unwrap().0 - restarted;
            (down, up)
        })
        .unwrap();
    eprintln!("server stopped: down after {down_after:?}; restarted: up after {up_after:?}");
    // The last good check was at most one interval before the stop; then three failed
    // checks (the first and two retries) 100 ms apart, each refused at once.
    let bound =
        timing.interval + timing.delay_before_retry * timing.retry + Duration::from_millis(150);
    assert!(
        down_after <= bound,
        "down after {down_after:?}, bound {bound:?}"
    );
    // Back within an interval of listening again (python takes a moment to start).
    assert!(up_after <= Duration::from_secs(3), "{up_after:?}");
}

/// Whether what happened so far (outputs and when) is what the drive waits for.
type Until = dyn Fn(&[(Duration, Output)]) -> bool;

/// The report channel's type, named for the test's closure.
mod tokio_rx {
    pub type Rx = tokio::sync::mpsc::UnboundedReceiver<vipd::check::runner::Report>;
}
