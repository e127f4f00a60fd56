//! A received BFD Control packet's arrival details, as the Control socket reads them:
//! the sender's address and the ancillary data (TTL / hop limit, packet info) become the
//! interface, source and TTL (`net::bfd_socket::arrival`), then the payload is decoded
//! (`Control::decode`), as the daemon does before handing both to the node.
//!
//! The input chooses the socket's family, a sender address of either family or none,
//! up to eight control messages of any kind in any order (repeats, missing ones, a TTL
//! outside 0..=255), and the payload. Beyond "never panics": the result is what a model
//! of the rule says (every part present and of the socket's family; the last of each
//! message wins; the TTL clamped into a byte).

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use nix::sys::socket::{ControlMessageOwned, SockaddrStorage};
use vipd::net::bfd_socket::arrival;
use vipd::vrrp::bfd::packet::Control;

struct Input {
    v6: bool,
    address: Option<SocketAddr>,
    cmsgs: Vec<ControlMessageOwned>,
    payload: Vec<u8>,
}

fn cmsg(u: &mut Unstructured<'_>) -> Result<ControlMessageOwned> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => ControlMessageOwned::Ipv4Ttl(u.arbitrary()?),
        1 => ControlMessageOwned::Ipv6HopLimit(u.arbitrary()?),
        2 => ControlMessageOwned::Ipv4PacketInfo(libc::in_pktinfo {
            ipi_ifindex: u.arbitrary()?,
            ipi_spec_dst: libc::in_addr {
                s_addr: u.arbitrary()?,
            },
            ipi_addr: libc::in_addr {
                s_addr: u.arbitrary()?,
            },
        }),
        3 => ControlMessageOwned::Ipv6PacketInfo(libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: u.arbitrary()?,
            },
            ipi6_ifindex: u.arbitrary()?,
        }),
        4 => ControlMessageOwned::Ipv4Tos(u.arbitrary()?),
        _ => ControlMessageOwned::Ipv6TClass(u.arbitrary()?),
    })
}

fn input(bytes: &[u8]) -> Result<Input> {
    let mut u = Unstructured::new(bytes);
    let v6 = u.arbitrary()?;
    let address = match u.int_in_range(0..=2u8)? {
        0 => None,
        1 => Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::from(u.arbitrary::<[u8; 4]>()?)),
            u.arbitrary()?,
        )),
        _ => Some(SocketAddr::new(
            IpAddr::V6(Ipv6Addr::from(u.arbitrary::<[u8; 16]>()?)),
            u.arbitrary()?,
        )),
    };
    let n = u.int_in_range(0..=8u8)?;
    let cmsgs = (0..n).map(|_| cmsg(&mut u)).collect::<Result<_>>()?;
    Ok(Input {
        v6,
        address,
        cmsgs,
        payload: u.take_rest().to_vec(),
    })
}

/// The rule, written out plainly.
fn model(i: &Input) -> Option<(u32, IpAddr, u8)> {
    let src = i.address.map(|a| a.ip()).filter(|a| a.is_ipv6() == i.v6)?;
    let ttl = i.cmsgs.iter().rev().find_map(|c| match c {
        ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => Some(*t),
        _ => None,
    })?;
    let ifindex = i.cmsgs.iter().rev().find_map(|c| match c {
        ControlMessageOwned::Ipv4PacketInfo(p) => Some(p.ipi_ifindex as u32),
        ControlMessageOwned::Ipv6PacketInfo(p) => Some(p.ipi6_ifindex),
        _ => None,
    })?;
    Some((ifindex, src, ttl.clamp(0, 255) as u8))
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(i) = input(bytes) else {
        return;
    };
    let address = i.address.map(SockaddrStorage::from);
    let got = arrival(i.v6, address.as_ref(), i.cmsgs.iter().cloned());
    assert_eq!(got, model(&i));
    if got.is_some() {
        // What the daemon does next with the payload; its own target checks the rest.
        let _ = Control::decode(&i.payload);
    }
});
