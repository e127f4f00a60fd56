//! Where the responder runs for an interface. An upper device (a bridge, a bond, a team,
//! a VLAN sub-interface, a macvlan, macvtap or ipvlan) has no native XDP: its frames
//! arrive on the devices below it. The responder runs there instead, natively, and its
//! map entries for the upper device's VIPs and VRRP are keyed by each lower device's
//! index and the VLAN ID its frames carry on that device.
//!
//! Bridge, bond and team members are found by their master; VLAN, macvlan, macvtap and
//! ipvlan devices by their parent link. Only one VLAN tag is seen by the program
//! (`vip-ebpf/src/frame.rs`): a VLAN over a VLAN is refused. A parent in another network
//! namespace cannot carry our program: such a device keeps it itself (generic XDP).

use std::io;

use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVlan, LinkAttribute, LinkInfo, LinkMessage,
};

use super::hook;

/// A device the responder runs on, and the VLAN ID of the upper device's frames there.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lower {
    pub ifindex: u32,
    pub name: String,
    pub vlan: u16,
}

/// How deep upper devices may stack (a VLAN on a bond on its slaves is two).
const MAX_DEPTH: usize = 4;

/// The devices the responder runs on for interface `ifindex`: itself when it is no upper
/// device, else the devices below it (recursively), each with its VLAN ID.
pub fn lowers(ifindex: u32) -> io::Result<Vec<Lower>> {
    let links = hook::links()?;
    let mut out = Vec::new();
    resolve(&links, ifindex, 0, 0, &mut out)?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn resolve(
    links: &[LinkMessage],
    ifindex: u32,
    vlan: u16,
    depth: usize,
    out: &mut Vec<Lower>,
) -> io::Result<()> {
    let link = links
        .iter()
        .find(|l| l.header.index == ifindex)
        .ok_or_else(|| io::Error::other(format!("interface index {ifindex} is gone")))?;
    let name = attr(link, |a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
    .unwrap_or_default();
    let itself = Lower {
        ifindex,
        name: name.clone(),
        vlan,
    };
    if depth >= MAX_DEPTH {
        return Err(io::Error::other(format!(
            "{name}: upper devices stacked deeper than {MAX_DEPTH}"
        )));
    }
    let kind = attr(link, |a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k.clone()),
            _ => None,
        }),
        _ => None,
    });
    let parent = attr(link, |a| match a {
        LinkAttribute::Link(p) => Some(*p),
        _ => None,
    });
    let foreign_parent = attr(link, |a| match a {
        LinkAttribute::LinkNetNsId(_) => Some(()),
        _ => None,
    })
    .is_some();
    match kind {
        Some(InfoKind::Bridge | InfoKind::Bond | InfoKind::Team) => {
            let members: Vec<u32> = links
                .iter()
                .filter(|l| {
                    attr(l, |a| match a {
                        LinkAttribute::Controller(m) => Some(*m),
                        _ => None,
                    }) == Some(ifindex)
                })
                .map(|l| l.header.index)
                .collect();
            for m in members {
                resolve(links, m, vlan, depth + 1, out)?;
            }
            // A bridge without ports still has a hook of its own; nothing arrives there
            // until a port joins, when the responder follows it.
            Ok(())
        }
        Some(InfoKind::Vlan) => {
            let id = attr(link, |a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                    LinkInfo::Data(InfoData::Vlan(v)) => v.iter().find_map(|x| match x {
                        InfoVlan::Id(id) => Some(*id),
                        _ => None,
                    }),
                    _ => None,
                }),
                _ => None,
            })
            .unwrap_or(0);
            if vlan != 0 {
                return Err(io::Error::other(format!(
                    "{name}: a VLAN over a VLAN (the program reads one tag)"
                )));
            }
            match parent {
                Some(p) if !foreign_parent => resolve(links, p, id, depth + 1, out),
                _ => {
                    out.push(itself);
                    Ok(())
                }
            }
        }
        Some(InfoKind::MacVlan | InfoKind::MacVtap | InfoKind::IpVlan) => match parent {
            Some(p) if !foreign_parent => resolve(links, p, vlan, depth + 1, out),
            _ => {
                out.push(itself);
                Ok(())
            }
        },
        _ => {
            out.push(itself);
            Ok(())
        }
    }
}

fn attr<T>(link: &LinkMessage, f: impl Fn(&LinkAttribute) -> Option<T>) -> Option<T> {
    link.attributes.iter().find_map(f)
}

#[cfg(test)]
mod tests {
    use netlink_packet_route::link::{InfoData, InfoKind, InfoVlan, LinkAttribute, LinkInfo};

    use super::*;

    /// A link as the kernel would report it: index, name, kind, parent link, master,
    /// VLAN ID.
    fn link(
        index: u32,
        name: &str,
        kind: Option<InfoKind>,
        parent: Option<u32>,
        master: Option<u32>,
        vlan: Option<u16>,
    ) -> LinkMessage {
        let mut l = LinkMessage::default();
        l.header.index = index;
        l.attributes.push(LinkAttribute::IfName(name.into()));
        let mut info = Vec::new();
        if let Some(k) = kind {
            info.push(LinkInfo::Kind(k));
        }
        if let Some(id) = vlan {
            info.push(LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(id)])));
        }
        if !info.is_empty() {
            l.attributes.push(LinkAttribute::LinkInfo(info));
        }
        if let Some(p) = parent {
            l.attributes.push(LinkAttribute::Link(p));
        }
        if let Some(m) = master {
            l.attributes.push(LinkAttribute::Controller(m));
        }
        l
    }

    fn of(links: &[LinkMessage], ifindex: u32) -> io::Result<Vec<(String, u16)>> {
        let mut out = Vec::new();
        resolve(links, ifindex, 0, 0, &mut out)?;
        out.sort();
        Ok(out.into_iter().map(|l| (l.name, l.vlan)).collect())
    }

    /// eth0, eth1 enslaved to bond0; bond0.100 a VLAN on it; br0 bridging eth2 and
    /// bond0.100; mv0 a macvlan on eth2; eth2.7.8 a VLAN on the VLAN eth2.7.
    fn host() -> Vec<LinkMessage> {
        vec![
            link(2, "eth0", None, None, Some(10), None),
            link(3, "eth1", None, None, Some(10), None),
            link(4, "eth2", None, None, Some(20), None),
            link(10, "bond0", Some(InfoKind::Bond), None, None, None),
            link(
                11,
                "bond0.100",
                Some(InfoKind::Vlan),
                Some(10),
                Some(20),
                Some(100),
            ),
            link(20, "br0", Some(InfoKind::Bridge), None, None, None),
            link(30, "mv0", Some(InfoKind::MacVlan), Some(4), None, None),
            link(40, "eth2.7", Some(InfoKind::Vlan), Some(4), None, Some(7)),
            link(
                41,
                "eth2.7.8",
                Some(InfoKind::Vlan),
                Some(40),
                None,
                Some(8),
            ),
            link(50, "br1", Some(InfoKind::Bridge), None, None, None),
        ]
    }

    #[test]
    fn a_device_that_is_no_upper_device_carries_the_program_itself() {
        assert_eq!(of(&host(), 4).unwrap(), [("eth2".into(), 0)]);
    }

    #[test]
    fn a_vlan_runs_on_its_parent_with_its_id_and_a_bond_on_its_slaves() {
        assert_eq!(
            of(&host(), 11).unwrap(),
            [("eth0".into(), 100), ("eth1".into(), 100)]
        );
        assert_eq!(
            of(&host(), 10).unwrap(),
            [("eth0".into(), 0), ("eth1".into(), 0)]
        );
    }

    #[test]
    fn a_bridge_runs_on_its_ports_and_through_them_on_whatever_is_below() {
        assert_eq!(
            of(&host(), 20).unwrap(),
            [
                ("eth0".into(), 100),
                ("eth1".into(), 100),
                ("eth2".into(), 0)
            ]
        );
    }

    #[test]
    fn a_macvlan_runs_on_its_lower_device() {
        assert_eq!(of(&host(), 30).unwrap(), [("eth2".into(), 0)]);
    }

    #[test]
    fn a_bridge_without_ports_has_nowhere_to_run_yet() {
        assert_eq!(of(&host(), 50).unwrap(), []);
    }

    #[test]
    fn a_vlan_over_a_vlan_is_refused_the_program_reads_one_tag() {
        assert!(of(&host(), 41).is_err());
    }

    #[test]
    fn a_parent_in_another_namespace_leaves_the_program_on_the_device() {
        let mut links = host();
        links[6].attributes.push(LinkAttribute::LinkNetNsId(1));
        assert_eq!(of(&links, 30).unwrap(), [("mv0".into(), 0)]);
    }
}
