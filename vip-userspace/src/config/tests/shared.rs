//! `shared_vips`: active-active addresses, their members and the rules `vipd check`
//! enforces with the line and field of each problem.

use super::{problem, problems, round_trip, with_global};
use crate::vrrp::instance::SharedVip;

/// A member group on lines from `first_line`: VRID `vrid`, its own VIP `.20x`.
fn member(vrid: u8, extra: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"g{vrid}\"\ninterface = \"eth0\"\nvrid = {vrid}\nvmac = true\n\
         vips = [\"192.0.2.{vrid}/24\"]\n{extra}"
    )
}

const SHARE: &str = "shared_vips = [\"192.0.2.50\"]\n";

#[test]
fn the_members_are_numbered_by_id_on_every_instance() {
    let text = with_global(&format!(
        "{}{}{}",
        member(63, SHARE),
        member(61, SHARE),
        member(62, SHARE)
    ));
    let config = round_trip(&text);
    let places: Vec<(u8, SharedVip)> = config
        .instances
        .iter()
        .map(|i| (i.vrid, i.shared_vips[0]))
        .collect();
    let addr = "192.0.2.50".parse().unwrap();
    let at = |member| SharedVip {
        addr,
        member,
        members: 3,
    };
    assert_eq!(places, [(63, at(2)), (61, at(0)), (62, at(1))]);
    // The core gets the same.
    assert_eq!(config.instances[1].core().shared_vips, [at(0)]);
    // Not a VIP: never installed, never advertised.
    assert_eq!(config.instances[0].all_vips().count(), 1);
}

#[test]
fn a_shared_vip_needs_vmac_and_a_second_group() {
    let no_vmac = member(61, SHARE).replace("vmac = true\n", "");
    assert_eq!(
        problems(&with_global(&format!("{no_vmac}{}", member(62, SHARE)))),
        [
            "vipd.toml:8:15: vrrp[0].shared_vips: a shared VIP is answered from each member \
          group's own virtual MAC: set `vmac = true` in this instance"
        ]
    );
    assert_eq!(
        problem(&with_global(&member(61, SHARE))),
        "vipd.toml:9:16: vrrp[0].shared_vips[0]: 192.0.2.50 on eth0 is shared by this instance \
         alone: list it in the shared_vips of every group that serves it (at least two), or \
         make it a VIP"
    );
}

#[test]
fn a_shared_vip_is_no_vip_of_anyone_and_of_the_instance_family() {
    let taken = format!(
        "{}{}",
        member(61, "shared_vips = [\"192.0.2.62\"]\n"),
        member(62, "")
    );
    assert_eq!(
        problems(&with_global(&taken)),
        [
            "vipd.toml:9:16: vrrp[0].shared_vips[0]: 192.0.2.62 is also vrrp[1].vips[0]: an \
          address is either one group's or shared by several"
        ]
    );
    let v6 = format!(
        "{}{}",
        member(61, "shared_vips = [\"2001:db8::50\"]\n"),
        member(62, "shared_vips = [\"2001:db8::50\"]\n")
    );
    let p = problems(&with_global(&v6));
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].ends_with(
            "2001:db8::50 is IPv6 but this instance's VIPs are IPv4: one instance \
                        serves one address family"
        ),
        "{p:?}"
    );
    assert_eq!(
        problem(&with_global(&format!(
            "{}{}",
            member(61, "shared_vips = [\"192.0.2.50\", \"192.0.2.50/32\"]\n"),
            member(62, SHARE)
        ))),
        "vipd.toml:9:30: vrrp[0].shared_vips[1]: 192.0.2.50 is listed twice (first at \
         shared_vips[0])"
    );
}
