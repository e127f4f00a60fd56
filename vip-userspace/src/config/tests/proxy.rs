//! `proxy_arp` (addresses behind the router, answered while master) and
//! `announce_host_routes` (each VIP as a protocol-112 host route while master).

use super::{gw, gw_and, parse, problem, problems, round_trip};
use crate::config::{RTPROT_VIPD, RouteScope, RouteType, TABLE_MAIN};

#[test]
fn proxy_addresses_are_single_addresses_of_the_instance_family() {
    let config = round_trip(&gw(
        "proxy_arp = [\"192.0.2.50\", \"203.0.113.5/32\"]\nannounce_host_routes = true\n",
    ));
    let i = &config.instances[0];
    assert_eq!(
        i.proxy_arp,
        [
            "192.0.2.50".parse::<std::net::IpAddr>().unwrap(),
            "203.0.113.5".parse().unwrap()
        ]
    );
    // Answered with the VIPs, on the instance's interface; never a VIP themselves.
    let answered: Vec<String> = i.answered().map(|(d, a)| format!("{d} {a}")).collect();
    assert_eq!(
        answered,
        ["eth0 192.0.2.1", "eth0 192.0.2.50", "eth0 203.0.113.5"]
    );
    assert_eq!(i.all_vips().count(), 1);
    assert_eq!(i.advertised_vips().len(), 1);
    let v6 = parse(&gw("").replace(
        "vips = [\"192.0.2.1/24\"]",
        "vips = [\"fe80::1\", \"2001:db8::1/64\"]\nproxy_arp = [\"2001:db8:5::5/128\"]",
    ))
    .unwrap();
    assert_eq!(
        v6.instances[0].proxy_arp,
        ["2001:db8:5::5".parse::<std::net::IpAddr>().unwrap()]
    );
}

#[test]
fn proxy_addresses_off_by_default_and_printed_back() {
    let config = parse(&gw("")).unwrap();
    assert!(config.instances[0].proxy_arp.is_empty());
    assert!(!config.instances[0].announce_host_routes);
    let printed = config.to_toml_string();
    assert!(printed.contains("proxy_arp = []\n"), "{printed}");
    assert!(
        printed.contains("announce_host_routes = false\n"),
        "{printed}"
    );
}

#[test]
fn a_proxy_address_is_checked_with_its_line() {
    assert_eq!(
        problem(&gw("proxy_arp = [\"203.0.113.0/24\"]\n")),
        "vipd.toml:8:14: vrrp[0].proxy_arp[0]: \"203.0.113.0/24\": proxy answers are for single \
         addresses; write \"203.0.113.0\" or \"203.0.113.0/32\" (list each address of a larger block)"
    );
    assert_eq!(
        problem(&gw("proxy_arp = [\"198.51.100.7\", \"nonsense\"]\n")),
        "vipd.toml:8:30: vrrp[0].proxy_arp[1]: \"nonsense\" is not an IP address"
    );
    assert_eq!(
        problem(&gw("proxy_arp = [\"224.0.0.5\"]\n")),
        "vipd.toml:8:14: vrrp[0].proxy_arp[0]: \"224.0.0.5\" is a multicast address"
    );
    assert_eq!(
        problem(&gw("proxy_arp = [\"2001:db8::5\"]\n")),
        "vipd.toml:8:14: vrrp[0].proxy_arp[0]: 2001:db8::5 is IPv6 but this instance's VIPs are \
         IPv4: one instance serves one address family"
    );
    assert_eq!(
        problem(&gw("proxy_arp = [\"192.0.2.1\"]\n")),
        "vipd.toml:8:14: vrrp[0].proxy_arp[0]: 192.0.2.1 is already a VIP at vrrp[0].vips[0], \
         which is answered and installed; a proxy address is one that lives behind this router"
    );
    assert_eq!(
        problem(&gw("proxy_arp = [\"203.0.113.5\", \"203.0.113.5/32\"]\n")),
        "vipd.toml:8:29: vrrp[0].proxy_arp[1]: 203.0.113.5 is already listed at vrrp[0].proxy_arp[0]"
    );
    assert_eq!(
        problem(&gw("proxy_arp = \"203.0.113.5\"\n")),
        "vipd.toml:8:13: vrrp[0].proxy_arp: expected an array, found a string"
    );
}

#[test]
fn two_instances_cannot_answer_for_one_proxy_address_on_one_interface() {
    let text = gw_and(
        "name = \"gw2\"\ninterface = \"eth0\"\nvrid = 52\nvips = [\"192.0.2.9\"]\n\
         proxy_arp = [\"203.0.113.5\"]\n",
    )
    .replace(
        "vips = [\"192.0.2.1/24\"]\n",
        "vips = [\"192.0.2.1/24\"]\nproxy_arp = [\"203.0.113.5\"]\n",
    );
    assert_eq!(
        problem(&text),
        "vipd.toml:14:14: vrrp[1].proxy_arp[0]: 203.0.113.5 on eth0 is already answered for by \
         vrrp[0] \"gw\" (line 3)"
    );
}

#[test]
fn announced_host_routes_are_the_routable_vips_with_protocol_112() {
    let config = round_trip(&gw("").replace(
        "vips = [\"192.0.2.1/24\"]",
        "vips = [\"192.0.2.1/24\", \"169.254.1.1/16\"]\n\
         vips_excluded = [{ address = \"203.0.113.5/32\", dev = \"eth1\" }]\n\
         proxy_arp = [\"198.51.100.9\"]\nannounce_host_routes = true",
    ));
    let routes = config.instances[0].host_routes();
    let shown: Vec<String> = routes
        .iter()
        .map(|r| format!("{} dev {}", r.to, r.dev.as_deref().unwrap_or("-")))
        .collect();
    // Link-local and proxy addresses are not announced.
    assert_eq!(shown, ["192.0.2.1/32 dev eth0", "203.0.113.5/32 dev eth1"]);
    for r in &routes {
        assert_eq!(r.protocol, RTPROT_VIPD);
        assert_eq!(r.table, TABLE_MAIN);
        assert_eq!(r.kind, RouteType::Unicast);
        assert_eq!(r.scope, Some(RouteScope::Link));
        assert_eq!((r.via, r.metric, r.src), (None, None, None));
    }
    let v6 = parse(&gw("").replace(
        "vips = [\"192.0.2.1/24\"]",
        "vips = [\"fe80::1\", \"2001:db8::1/64\"]\nannounce_host_routes = true",
    ))
    .unwrap();
    let r6: Vec<String> = v6.instances[0]
        .host_routes()
        .iter()
        .map(|r| r.to.to_string())
        .collect();
    assert_eq!(r6, ["2001:db8::1/128"]);
    assert!(
        parse(&gw("")).unwrap().instances[0]
            .host_routes()
            .is_empty()
    );
}

#[test]
fn announce_host_routes_is_a_boolean_and_no_virtual_route_repeats_its_routes() {
    assert_eq!(
        problem(&gw("announce_host_routes = \"yes\"\n")),
        "vipd.toml:8:24: vrrp[0].announce_host_routes: expected true or false, found a string"
    );
    let clash = gw(
        "announce_host_routes = true\nvirtual_routes = [{ to = \"192.0.2.1\", dev = \"eth0\" }]\n",
    );
    assert_eq!(
        problems(&clash),
        [
            "vipd.toml:9:19: vrrp[0].virtual_routes[0]: announce_host_routes already installs a \
          route to 192.0.2.1/32 in table 254 for vrrp[0].vips[0]; remove this one or give it a metric"
        ]
    );
    // With a metric (or without the option) it is another route.
    parse(&clash.replace("dev = \"eth0\"", "dev = \"eth0\", metric = 5")).unwrap();
    parse(&clash.replace(
        "announce_host_routes = true",
        "announce_host_routes = false",
    ))
    .unwrap();
}
