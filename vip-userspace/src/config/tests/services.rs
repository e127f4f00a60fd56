//! `[[service]]`: what it accepts (keepalived's defaults where it has them), what it
//! refuses (each at its file, line and field), and its printed form.

use std::time::Duration;

use super::{gw, parse, problem, problems, round_trip};
use crate::config::service::Active;
use crate::lb::service::{CheckKind, Method, Protocol};

/// `gw` (lines 3-7, plus `allowed_peers` on line 8) and a service from line 9.
fn svc(body: &str) -> String {
    gw(&format!(
        "allowed_peers = [\"192.0.2.12\"]\n[[service]]\n{body}"
    ))
}

const WEB: &str = "name = \"web\"\nvip = \"192.0.2.1\"\nport = 80\nfollow = \"gw\"\n";

#[test]
fn a_service_with_defaults_follows_its_instance() {
    let c = parse(&svc(&format!(
        "{WEB}real = [{{ address = \"192.0.2.21\" }}, {{ address = \"192.0.2.22\", weight = 3, \
         check = {{ type = \"tcp\" }} }}]\n"
    )))
    .unwrap();
    let s = &c.services[0];
    assert_eq!(s.active, Active::Follow("gw".into()));
    assert_eq!(
        (s.protocol, s.method),
        (Protocol::Tcp, Method::DirectRouting)
    );
    assert_eq!(
        s.reals[0].port, 80,
        "a real's port defaults to the service's"
    );
    assert_eq!((s.reals[0].weight, s.reals[1].weight), (1, 3));
    assert!(s.reals[0].check.is_none());
    let check = s.reals[1].check.as_ref().unwrap();
    assert_eq!(check.kind, CheckKind::Tcp { port: None });
    assert_eq!(
        (
            check.interval,
            check.timeout,
            check.retry,
            check.delay_before_retry
        ),
        (
            Duration::from_secs(5),
            Duration::from_secs(3),
            1,
            Duration::from_secs(1)
        )
    );
}

#[test]
fn the_service_check_applies_to_every_real_without_its_own() {
    let c = parse(&svc(&format!(
        "{WEB}check = {{ type = \"http\", path = \"/health\", status = [200], interval = \"1s\" }}\n\
         real = [{{ address = \"192.0.2.21\" }}, {{ address = \"192.0.2.22\", check = {{ type = \"tcp\", port = 81 }} }}]\n"
    )))
    .unwrap();
    let s = &c.services[0];
    assert!(matches!(
        &s.reals[0].check.as_ref().unwrap().kind,
        CheckKind::Http { path, status, .. } if path == "/health" && status == &[200]
    ));
    assert_eq!(
        s.reals[1].check.as_ref().unwrap().kind,
        CheckKind::Tcp { port: Some(81) }
    );
}

#[test]
fn bad_services_are_refused_at_their_place() {
    let reals = "real = [{ address = \"192.0.2.21\" }]\n";
    assert_eq!(
        problem(&svc(&format!(
            "name = \"web\"\nvip = \"192.0.2.1\"\nport = 80\nfollow = \"nope\"\n{reals}"
        ))),
        "vipd.toml:13:10: service[0].follow: no [[vrrp]] instance is named \"nope\""
    );
    assert_eq!(
        problem(&svc(&format!("{WEB}method = \"nat\"\n{reals}"))),
        "vipd.toml:14:10: service[0].method: \"nat\" is not carried: the servers' replies would have to come back through the director, whose XDP program only sees what arrives; use \"dr\" or \"tunnel\""
    );
    assert_eq!(
        problem(&svc(
            "name = \"web\"\nvip = \"192.0.2.1\"\nport = 80\nreal = [{ address = \"192.0.2.21\" }]\n"
        )),
        "vipd.toml:9:1: service[0].follow: missing required field \"follow\" (the [[vrrp]] instance whose master forwards) or active = \"ecmp\""
    );
    let all = problems(&svc(&format!(
        "{WEB}real = [{{ address = \"2001:db8::21\" }}]\n"
    )));
    assert!(
        all.iter()
            .any(|p| p.contains("service[0].real[0].address: 2001:db8::21 and the VIP 192.0.2.1 are of different families")),
        "{all:?}"
    );
    let all = problems(&svc(&format!(
        "{WEB}real = [{{ address = \"192.0.2.21\", weight = 70000 }}]\n"
    )));
    assert!(
        all.iter()
            .any(|p| p.contains("weight: 70000 is out of range")),
        "{all:?}"
    );
    let all = problems(&svc(&format!(
        "{WEB}real = [{{ address = \"192.0.2.21\", check = {{ type = \"tcp\", path = \"/\" }} }}]\n"
    )));
    assert!(
        all.iter()
            .any(|p| p.contains("path is not a key of a \"tcp\" check")),
        "{all:?}"
    );
    let all = problems(&svc(&format!(
        "{WEB}real = [{{ address = \"192.0.2.21\" }}, {{ address = \"192.0.2.21\" }}]\n"
    )));
    assert!(
        all.iter()
            .any(|p| p.contains("192.0.2.21:80 is listed twice")),
        "{all:?}"
    );
    let all = problems(&svc(&format!(
        "{WEB}{reals}[[service]]\nname = \"web2\"\nvip = \"192.0.2.1\"\nport = 80\nactive = \"ecmp\"\n{reals}"
    )));
    assert!(
        all.iter()
            .any(|p| p.contains("service[0] already balances 192.0.2.1 port 80")),
        "{all:?}"
    );
    let all = problems(&svc(&format!("{WEB}{reals}colour = \"blue\"\n")));
    assert!(
        all.iter().any(|p| p.contains("service[0].colour")),
        "{all:?}"
    );
}

#[test]
fn printed_form_reads_back_the_same() {
    let c = round_trip(&svc(&format!(
        "{WEB}protocol = \"tcp\"\nmethod = \"tunnel\"\nhash = \"source\"\nhash_seed = 7\nquorum = 2\n\
         hysteresis = 1\nalpha = true\nquorum_up = [\"/bin/true\", \"up\"]\n\
         sorry_server = {{ address = \"192.0.2.99\", port = 8080 }}\n\
         check = {{ type = \"https\", path = \"/\", digest = \"0123456789abcdef0123456789abcdef\", \
         host = \"www.example\", timeout = \"2s\", retry = 3, delay_before_retry = \"500ms\" }}\n\
         real = [{{ address = \"192.0.2.21\", weight = 2, inhibit_on_failure = true, \
         notify_down = [\"/bin/true\", \"down\"] }}, {{ address = \"192.0.2.22\", port = 81, \
         check = {{ type = \"script\", script = \"/bin/true\" }} }}]\n\
         [[service]]\nname = \"dns\"\nvip = \"192.0.2.1\"\nport = 0\nprotocol = \"udp\"\n\
         active = \"ecmp\"\nreal = [{{ address = \"192.0.2.23\" }}]\n"
    )));
    assert_eq!(c.services.len(), 2);
    assert_eq!(c.services[1].active, Active::Ecmp);
}
