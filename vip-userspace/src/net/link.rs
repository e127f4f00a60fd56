//! rtnetlink: interface state, the VIP addresses the kernel must accept traffic for, the
//! unicast filter entries a real NIC needs for the virtual MAC, and link events.

use std::net::IpAddr;

use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope},
    link::{LinkAttribute, LinkFlags, LinkMessage},
    neighbour::{NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState},
};
use rtnetlink::{Handle, MulticastGroup};

use super::{NetError, Result, io_err, nl_err};

/// What vipd needs to know about an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub ifindex: u32,
    pub name: String,
    pub mac: [u8; 6],
    /// Administratively up and with carrier: frames can flow.
    pub up: bool,
}

/// A change seen on the link multicast group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    Changed(LinkState),
    Removed { ifindex: u32, name: String },
}

#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

fn link_state(msg: &LinkMessage) -> LinkState {
    let mut name = String::new();
    let mut mac = [0u8; 6];
    for a in &msg.attributes {
        match a {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Address(m) if m.len() == 6 => mac.copy_from_slice(m),
            _ => {}
        }
    }
    let f = msg.header.flags;
    LinkState {
        ifindex: msg.header.index,
        name,
        mac,
        up: f.contains(LinkFlags::Up) && f.contains(LinkFlags::LowerUp),
    }
}

impl Netlink {
    /// Opens a route netlink connection in the current network namespace. Must be called
    /// inside a tokio runtime (the connection runs as a task).
    pub fn connect() -> Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(io_err("opening rtnetlink"))?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    pub async fn link(&self, name: &str) -> Result<LinkState> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(link_state(&msg)),
            Ok(None) => Err(NetError::NoSuchInterface(name.to_owned())),
            Err(e) if errno(&e) == Some(libc::ENODEV) => {
                Err(NetError::NoSuchInterface(name.to_owned()))
            }
            Err(e) => Err(nl_err(format!("reading link {name}"))(e)),
        }
    }

    /// Addresses on `ifindex` with their prefix lengths.
    pub async fn addresses(&self, ifindex: u32) -> Result<Vec<(IpAddr, u8, AddressScope)>> {
        let msgs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute()
            .try_collect()
            .await
            .map_err(nl_err(format!("listing addresses of ifindex {ifindex}")))?;
        Ok(msgs
            .iter()
            .filter_map(|m| {
                // IFA_LOCAL is the interface's own address on point-to-point links; IFA_ADDRESS
                // elsewhere. Prefer LOCAL when present.
                let mut addr = None;
                for a in &m.attributes {
                    match a {
                        AddressAttribute::Local(ip) => addr = Some(*ip),
                        AddressAttribute::Address(ip) if addr.is_none() => addr = Some(*ip),
                        _ => {}
                    }
                }
                addr.map(|a| (a, m.header.prefix_len, m.header.scope))
            })
            .collect())
    }

    /// Adds a VIP with its options (label, scope, broadcast, `noprefixroute`, a zero
    /// preferred lifetime so the kernel never picks it as a source); `Ok(false)` if it
    /// was already there.
    pub async fn add_vip(&self, ifindex: u32, vip: &crate::config::Vip) -> Result<bool> {
        use crate::config::{Broadcast, PreferredLifetime};
        let addr = vip.net.addr();
        let mut req = self
            .handle
            .address()
            .add(ifindex, addr, vip.net.prefix_len());
        let m = req.message_mut();
        m.header.scope = AddressScope::from(vip.scope.number());
        let mut flags = AddressFlags::empty();
        if addr.is_ipv6() {
            m.header.flags |= AddressHeaderFlags::Nodad;
            flags |= AddressFlags::Nodad;
        }
        if vip.noprefixroute {
            flags |= AddressFlags::Noprefixroute;
        }
        if !flags.is_empty() {
            m.attributes.push(AddressAttribute::Flags(flags));
        }
        if let Some(label) = &vip.label {
            m.attributes.push(AddressAttribute::Label(label.clone()));
        }
        if let Some(Broadcast::Addr(b)) = vip.broadcast {
            m.attributes
                .retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
            m.attributes.push(AddressAttribute::Broadcast(b));
        }
        if vip.preferred_lft == PreferredLifetime::Zero {
            let mut lifetimes = netlink_packet_route::address::CacheInfo::default();
            lifetimes.ifa_preferred = 0;
            // INFINITY_LIFE_TIME: valid forever, preferred never.
            lifetimes.ifa_valid = u32::MAX;
            m.attributes.push(AddressAttribute::CacheInfo(lifetimes));
        }
        match req.execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(nl_err(format!("adding {} to ifindex {ifindex}", vip.net))(
                e,
            )),
        }
    }

    /// Removes `addr/prefix`; `Ok(false)` if it was not there.
    pub async fn del_address(&self, ifindex: u32, addr: IpAddr, prefix: u8) -> Result<bool> {
        let mut msg = AddressMessage::default();
        msg.header.family = if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        msg.header.prefix_len = prefix;
        msg.header.index = ifindex;
        msg.attributes.push(AddressAttribute::Local(addr));
        if addr.is_ipv6() {
            msg.attributes.clear();
            msg.attributes.push(AddressAttribute::Address(addr));
        }
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(true),
            Err(e)
                if matches!(
                    errno(&e),
                    Some(libc::EADDRNOTAVAIL | libc::ENOENT | libc::ENODEV)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(nl_err(format!(
                "removing {addr}/{prefix} from ifindex {ifindex}"
            ))(e)),
        }
    }

    /// Puts `mac` in the device's own unicast filter (`bridge fdb add MAC dev IF self
    /// permanent`): a real NIC drops frames to a MAC outside that filter before XDP runs.
    pub async fn fdb_add(&self, ifindex: u32, mac: [u8; 6]) -> Result<()> {
        let req = self
            .handle
            .neighbours()
            .add_bridge(ifindex, &mac)
            .flags(NeighbourFlags::Own)
            .state(NeighbourState::Permanent);
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(nl_err(format!(
                "adding {} to the unicast filter",
                fmt_mac(&mac)
            ))(e)),
        }
    }

    pub async fn fdb_del(&self, ifindex: u32, mac: [u8; 6]) -> Result<()> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Bridge;
        msg.header.ifindex = ifindex;
        msg.header.flags = NeighbourFlags::Own;
        msg.header.state = NeighbourState::Permanent;
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        match self.handle.neighbours().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::ENOENT | libc::ENODEV)) => Ok(()),
            Err(e) => Err(nl_err(format!(
                "removing {} from the unicast filter",
                fmt_mac(&mac)
            ))(e)),
        }
    }

    /// Link changes in this namespace, as a stream (its own netlink connection).
    pub fn link_events() -> Result<impl Stream<Item = LinkEvent>> {
        let (conn, _handle, messages) =
            rtnetlink::new_multicast_connection(&[MulticastGroup::Link])
                .map_err(io_err("subscribing to link events"))?;
        tokio::spawn(conn);
        Ok(messages.filter_map(|(msg, _)| async move {
            match msg.payload {
                netlink_packet_core::NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::NewLink(l),
                ) => Some(LinkEvent::Changed(link_state(&l))),
                netlink_packet_core::NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::DelLink(l),
                ) => {
                    let s = link_state(&l);
                    Some(LinkEvent::Removed {
                        ifindex: s.ifindex,
                        name: s.name,
                    })
                }
                _ => None,
            }
        }))
    }
}

pub fn fmt_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
