//! Warnings: what loads but is probably not what was meant, each at its place.

use super::{gw, gw_and, warnings};

/// The warnings but the one about a missing allowlist, which most files here would get.
fn others(text: &str) -> Vec<String> {
    warnings(text)
        .into_iter()
        .filter(|w| !w.contains("sets no allowed_peers"))
        .collect()
}

#[test]
fn a_clean_file_has_no_warnings() {
    assert_eq!(
        warnings(&gw("allowed_peers = [\"192.0.2.12\"]\n")),
        Vec::<String>::new()
    );
}

#[test]
fn a_unicast_peer_the_allowlist_drops_is_warned_about() {
    assert_eq!(
        others(&gw(
            "unicast_peers = [\"192.0.2.12\", \"192.0.2.13\"]\nallowed_peers = [\"192.0.2.12\"]\n"
        )),
        [
            "vipd.toml:8:32: vrrp[0].unicast_peers[1]: 192.0.2.13 is not in allowed_peers, so the XDP program drops its advertisements; add it to allowed_peers"
        ]
    );
    // No allowlist: every source is admitted.
    assert!(others(&gw("unicast_peers = [\"192.0.2.13\"]\n")).is_empty());
}

#[test]
fn a_vip_on_its_subnets_network_or_broadcast_address_is_warned_about() {
    let text = gw("vips_excluded = [\"192.0.2.255/24\"]\n").replace("192.0.2.1/24", "192.0.2.0/24");
    assert_eq!(
        others(&text),
        [
            "vipd.toml:7:9: vrrp[0].vips[0]: 192.0.2.0 is the network address of 192.0.2.0/24, which hosts on that subnet do not take for a host; use another address or a longer prefix",
            "vipd.toml:8:18: vrrp[0].vips_excluded[0]: 192.0.2.255 is the broadcast address of 192.0.2.0/24, which hosts on that subnet do not take for a host; use another address or a longer prefix",
        ]
    );
    // /31 and /32 have no network or broadcast address.
    assert!(others(&gw("").replace("192.0.2.1/24", "192.0.2.0/31")).is_empty());
    assert!(others(&gw("").replace("192.0.2.1/24", "192.0.2.0/32")).is_empty());
}

#[test]
fn the_same_vip_in_two_instances_on_different_links_is_warned_about() {
    let text = gw_and(
        "name = \"gw2\"\ninterface = \"eth1\"\nvrid = 52\nvips = [{ address = \"192.0.2.1/24\", dev = \"eth0\" }]\n",
    );
    assert_eq!(
        others(&text),
        [
            "vipd.toml:12:21: vrrp[1].vips[0].address: 192.0.2.1 is also a VIP of vrrp[0] \"gw\" (line 3) on eth0; both instances add it while master, so make sure they are never master at the same time"
        ]
    );
}

#[test]
fn an_ipv6_instance_should_list_a_link_local_vip_first() {
    let text = gw("").replace("\"192.0.2.1/24\"", "\"2001:db8::1/64\", \"fe80::1\"");
    assert_eq!(
        others(&text),
        [
            "vipd.toml:7:9: vrrp[0].vips[0]: 2001:db8::1 is not link-local: RFC 5798 §5.2.9 says the first address of an IPv6 virtual router SHOULD be its link-local address; list one (e.g. \"fe80::1\") first"
        ]
    );
    let text = gw("").replace("\"192.0.2.1/24\"", "\"fe80::1\", \"2001:db8::1/64\"");
    assert!(others(&text).is_empty());
}

#[test]
fn more_vips_than_an_advertisement_carries_are_warned_about() {
    let v4: Vec<String> = (0..300)
        .map(|n| format!("\"10.0.{}.{}\"", n / 200, n % 200 + 1))
        .collect();
    let text = gw("").replace("\"192.0.2.1/24\"", &v4.join(", "));
    let all = others(&text);
    assert_eq!(all.len(), 1, "{all:#?}");
    let col = 9 + v4[..255].iter().map(|v| v.len() + 2).sum::<usize>();
    assert_eq!(
        all[0],
        format!(
            "vipd.toml:7:{col}: vrrp[0].vips[255]: 300 addresses in vips, but one IPv4 advertisement carries at most 255: the last 45 are left out of advertisements; move them to vips_excluded"
        )
    );
    // The same addresses as excluded VIPs are fine.
    let text = gw(&format!("vips_excluded = [{}]\n", v4.join(", ")));
    assert!(others(&text).is_empty());

    let v6: Vec<String> = std::iter::once("\"fe80::1\"".to_owned())
        .chain((1..=90).map(|n| format!("\"2001:db8::{n:x}\"")))
        .collect();
    let text = gw("").replace("\"192.0.2.1/24\"", &v6.join(", "));
    let all = others(&text);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(
        all[0].ends_with("vrrp[0].vips[90]: 91 addresses in vips, but one IPv6 advertisement carries at most 90: the last 1 are left out of advertisements; move them to vips_excluded"),
        "{}",
        all[0]
    );
}

#[test]
fn a_v3_instance_without_allowed_peers_is_warned_about_at_its_table() {
    let text = gw("").replace("vrid = 51\n", "vrid = 51\nversion = 3\n");
    assert_eq!(
        warnings(&text),
        [
            "vipd.toml:3:1: vrrp[0]: instance \"gw\" runs VRRPv3, which has no authentication (RFC 9568 §9), and sets no allowed_peers: anyone on the link can send advertisements that take the VIPs or make the master step down; list the other routers' addresses in allowed_peers"
        ]
    );
    // 3 is the default, and an empty list allows everyone just the same.
    assert_eq!(warnings(&gw("")).len(), 1);
    assert_eq!(warnings(&gw("allowed_peers = []\n")).len(), 1);
    // With unicast peers, those are the likely list.
    let all = warnings(&gw("unicast_peers = [\"192.0.2.12\"]\n"));
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(
        all[0].ends_with(
            "list the other routers' addresses (the unicast_peers, probably) in allowed_peers"
        ),
        "{}",
        all[0]
    );
    // Each instance is named at its own table.
    let two =
        gw_and("name = \"gw2\"\ninterface = \"eth1\"\nvrid = 52\nvips = [\"198.51.100.1/24\"]\n");
    let all = warnings(&two);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(
        all[1].starts_with("vipd.toml:8:1: vrrp[1]: instance \"gw2\" runs VRRPv3"),
        "{}",
        all[1]
    );
}

#[test]
fn an_allowlist_or_vrrpv2_silences_the_allowed_peers_warning() {
    assert!(warnings(&gw("allowed_peers = [\"192.0.2.12\"]\n")).is_empty());
    // VRRPv2 has its own (weak) authentication and is the user's deliberate choice.
    assert!(warnings(&gw("version = 2\nadvert_interval = \"1s\"\n")).is_empty());
}

#[test]
fn bfd_naming_no_neighbour_is_warned_about() {
    assert_eq!(
        others(&gw("bfd = { interval = \"1ms\" }\n")),
        [
            "vipd.toml:8:7: vrrp[0].bfd: no neighbour named: as master this router answers BFD only from routers it has heard advertise, which a backup that was never master has not done; name the other routers in allowed_peers (or bfd.peers)"
        ]
    );
    // Any of the three names the other routers.
    for named in [
        "bfd = { interval = \"1ms\", peers = [\"192.0.2.12\"] }\n",
        "bfd = { interval = \"1ms\" }\nallowed_peers = [\"192.0.2.12\"]\n",
        "bfd = { interval = \"1ms\" }\nunicast_peers = [\"192.0.2.12\"]\n",
    ] {
        assert!(others(&gw(named)).is_empty(), "{named}");
    }
}
