//! A load-balanced service as the core sees it, and the data-plane entries it becomes.
//!
//! These are the core's own input types: the configuration (`config/`) produces them,
//! the daemon writes what [`entries`] and [`real_entry`] return.

use std::{net::IpAddr, time::Duration};

use vip_common::{
    FAMILY_IPV4, FAMILY_IPV6, LB_F_ACTIVE_ACTIVE, LB_F_PORTS, LB_F_SERVICE, LB_F_SOURCE_HASH,
    LB_METHOD_DR, LB_METHOD_TUN, LB_REAL_F_UP, LbReal, LbService, LbServiceKey,
    wire::{IPPROTO_TCP, IPPROTO_UDP},
};

use vip_common::MaglevTable;

use super::{
    health::Entry,
    maglev::{self, ServerId, Weighted},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub const fn number(self) -> u8 {
        match self {
            Protocol::Tcp => IPPROTO_TCP,
            Protocol::Udp => IPPROTO_UDP,
        }
    }
}

/// How packets reach a real server (LVS's `lb_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The Ethernet destination becomes the server's MAC; the server holds the VIP on
    /// its loopback (with `arp_ignore`) and answers the client directly.
    DirectRouting,
    /// IP-in-IP to the server's address; the server decapsulates and answers directly.
    Tunnel,
}

/// A health check (keepalived's checkers and their timing keywords).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub kind: CheckKind,
    /// Between checks of a server whose last check settled it (`delay_loop`).
    pub interval: Duration,
    /// For one attempt: connect, and for HTTP the whole exchange (`connect_timeout`).
    pub timeout: Duration,
    /// Failed checks of a server that is up retried before it is declared down
    /// (`retry`; keepalived's default is 1).
    pub retry: u32,
    /// Between a failed check and its retry (`delay_before_retry`).
    pub delay_before_retry: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// A TCP connection is accepted (`TCP_CHECK`); `port` defaults to the server's.
    Tcp { port: Option<u16> },
    /// `GET path` over HTTP/1.0 answers with an accepted status and, with `digest`, a
    /// body whose MD5 is that (`HTTP_GET`, and `SSL_GET` with `tls`).
    Http {
        port: Option<u16>,
        tls: bool,
        path: String,
        /// Host header (`virtualhost`); the server's address when `None`.
        host: Option<String>,
        /// Accepted status codes; any 2xx when empty.
        status: Vec<u16>,
        digest: Option<[u8; 16]>,
    },
    /// A program that exits 0 (`MISC_CHECK`).
    Script { argv: Vec<String> },
}

/// A real server of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Real {
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
    pub method: Method,
    /// On failure keep the server with weight 0 (established flows stay, new ones go
    /// elsewhere) instead of removing it (its flows move) (`inhibit_on_failure`).
    pub inhibit_on_failure: bool,
    pub check: Option<Check>,
}

impl Real {
    pub fn id(&self) -> ServerId {
        ServerId {
            addr: self.addr,
            port: self.port,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub vip: IpAddr,
    /// 0: every port.
    pub port: u16,
    pub protocol: Protocol,
    /// The data-plane slot of the VRRP instance whose mastership the service follows.
    pub slot: u32,
    /// Forward whatever the slot says (several directors behind ECMP).
    pub active_active: bool,
    /// Hash the client address alone (keepalived's `sh`, persistence).
    pub source_hash: bool,
    /// Mixed into the flow hash; must be the same on every director of the service.
    pub hash_seed: u32,
    pub reals: Vec<Real>,
    /// Put in the table alone while the quorum is lost (`sorry_server`).
    pub sorry: Option<Real>,
    /// Least total weight of servers up for the quorum (`quorum`, default 1).
    pub quorum: u32,
    /// Quorum is gained at `quorum + hysteresis` and lost below `quorum - hysteresis`.
    pub hysteresis: u32,
    /// Servers start down and come up on their first good check (`alpha`).
    pub alpha: bool,
}

fn family(addr: &IpAddr) -> (u8, [u8; 16]) {
    match addr {
        IpAddr::V4(a) => (FAMILY_IPV4, vip_common::v4_in_16(a.octets())),
        IpAddr::V6(a) => (FAMILY_IPV6, a.octets()),
    }
}

impl Service {
    pub fn key(&self) -> LbServiceKey {
        let (fam, addr) = family(&self.vip);
        LbServiceKey::new(fam, addr, self.protocol.number(), self.port)
    }

    fn flags(&self) -> u32 {
        let mut f = LB_F_SERVICE;
        if self.active_active {
            f |= LB_F_ACTIVE_ACTIVE;
        }
        if self.source_hash {
            f |= LB_F_SOURCE_HASH;
        }
        f
    }
}

/// The `LB_SERVICES` entries for `services`, service `i` with data-plane id `ids[i]`
/// and table half `halves[i]`: one per service, plus for each (VIP, protocol) with a
/// per-port service a port-0 entry flagged [`LB_F_PORTS`] (merged into that VIP's
/// all-ports service when there is one).
pub fn entries(
    services: &[Service],
    ids: &[u32],
    halves: &[u32],
) -> Vec<(LbServiceKey, LbService)> {
    let mut out: Vec<(LbServiceKey, LbService)> = Vec::new();
    for (i, s) in services.iter().enumerate() {
        let value = LbService {
            id: ids[i],
            slot: s.slot,
            flags: s.flags(),
            seed: s.hash_seed,
            table: halves[i] & 1,
            _pad: 0,
        };
        upsert(&mut out, s.key(), |old| {
            // A marker written first keeps its flag under the service.
            let ports = old.map_or(0, |o| o.flags & LB_F_PORTS);
            LbService {
                flags: value.flags | ports,
                ..value
            }
        });
        if s.port != 0 {
            let vip = LbServiceKey { port: 0, ..s.key() };
            upsert(&mut out, vip, |old| match old {
                Some(o) => LbService {
                    flags: o.flags | LB_F_PORTS,
                    ..*o
                },
                None => LbService {
                    flags: LB_F_PORTS,
                    ..LbService::default()
                },
            });
        }
    }
    out
}

fn upsert(
    out: &mut Vec<(LbServiceKey, LbService)>,
    key: LbServiceKey,
    f: impl FnOnce(Option<&LbService>) -> LbService,
) {
    match out.iter_mut().find(|(k, _)| *k == key) {
        Some((_, v)) => *v = f(Some(v)),
        None => out.push((key, f(None))),
    }
}

/// Where the daemon found a real server to be: the way out and the next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    pub ifindex: u32,
    pub vlan: u16,
    /// The server's MAC (direct routing) or the gateway's (tunnel).
    pub mac: [u8; 6],
    /// This director's MAC on `ifindex`.
    pub src_mac: [u8; 6],
    /// This director's address towards the server (the tunnel's source).
    pub src: IpAddr,
    pub mtu: u16,
}

/// The `LB_REALS` entry of `real` in service `service` (its data-plane id).
pub fn real_entry(service: u32, real: &Real, hop: &NextHop, generation: u32, up: bool) -> LbReal {
    let (fam, addr) = family(&real.addr);
    LbReal {
        addr,
        src: family(&hop.src).1,
        mac: hop.mac,
        src_mac: hop.src_mac,
        ifindex: hop.ifindex,
        vlan: hop.vlan,
        mtu: hop.mtu,
        service,
        generation,
        method: match real.method {
            Method::DirectRouting => LB_METHOD_DR,
            Method::Tunnel => LB_METHOD_TUN,
        },
        family: fam,
        flags: if up { LB_REAL_F_UP } else { 0 },
        _pad: 0,
    }
}

/// The table for `service` holding `set` (from `health::Pool::set`): its real `i` has
/// data-plane id `ids[i]`, its sorry server `sorry_id`. One [`MaglevTable`] to install
/// in one flip (`dataplane::lb::LbMaps::install_table`).
pub fn table(
    service: &Service,
    set: &[(Entry, u32)],
    ids: &[u16],
    sorry_id: Option<u16>,
) -> Box<MaglevTable> {
    let mut weighted = Vec::with_capacity(set.len());
    let mut table_ids = Vec::with_capacity(set.len());
    for &(entry, weight) in set {
        let (real, id) = match entry {
            Entry::Member(i) => (&service.reals[i], ids[i]),
            Entry::Sorry => match (&service.sorry, sorry_id) {
                (Some(r), Some(id)) => (r, id),
                _ => continue,
            },
        };
        weighted.push(Weighted {
            id: real.id(),
            weight,
        });
        table_ids.push(id);
    }
    maglev::to_map(&maglev::build(&weighted), &table_ids)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use vip_common::LB_NO_REAL;

    use super::*;

    #[test]
    fn the_table_holds_the_set_by_data_plane_id_and_zero_weights_get_no_entry() {
        let mut s = service(80, Protocol::Tcp);
        for i in 1..=3 {
            s.reals.push(Real {
                addr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)),
                port: 80,
                weight: 1,
                method: Method::DirectRouting,
                inhibit_on_failure: false,
                check: None,
            });
        }
        s.sorry = Some(s.reals[0].clone());
        let ids = [10, 11, 12];
        let t = table(
            &s,
            &[(Entry::Member(0), 1), (Entry::Member(2), 0)],
            &ids,
            Some(99),
        );
        assert!(t.reals.iter().all(|&r| r == 10));
        let t = table(
            &s,
            &[(Entry::Member(1), 1), (Entry::Member(2), 1)],
            &ids,
            None,
        );
        let n11 = t.reals.iter().filter(|&&r| r == 11).count();
        assert!(n11.abs_diff(maglev::SIZE / 2) <= 1, "{n11}");
        let t = table(&s, &[(Entry::Sorry, 1)], &ids, Some(99));
        assert!(t.reals.iter().all(|&r| r == 99));
        let t = table(&s, &[], &ids, Some(99));
        assert!(t.reals.iter().all(|&r| r == LB_NO_REAL));
    }

    fn service(port: u16, protocol: Protocol) -> Service {
        Service {
            vip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            port,
            protocol,
            slot: 3,
            active_active: false,
            source_hash: false,
            hash_seed: 7,
            reals: vec![],
            sorry: None,
            quorum: 1,
            hysteresis: 0,
            alpha: false,
        }
    }

    #[test]
    fn a_port_service_brings_a_vip_entry_and_an_all_ports_service_carries_its_flag() {
        let only_ports = entries(&[service(80, Protocol::Tcp)], &[5], &[1]);
        assert_eq!(only_ports.len(), 2);
        let (k, v) = only_ports[0];
        assert_eq!(
            (k.port, v.id, v.flags, v.table, v.seed),
            (80, 5, LB_F_SERVICE, 1, 7)
        );
        let (vip, marker) = only_ports[1];
        assert_eq!((vip.port, marker.flags), (0, LB_F_PORTS));

        // Either order: the all-ports service ends up with both flags.
        for svcs in [
            vec![service(0, Protocol::Tcp), service(443, Protocol::Tcp)],
            vec![service(443, Protocol::Tcp), service(0, Protocol::Tcp)],
        ] {
            let ids: Vec<u32> = (0..svcs.len() as u32).collect();
            let e = entries(&svcs, &ids, &[0, 0]);
            assert_eq!(e.len(), 2, "{e:?}");
            let all = e.iter().find(|(k, _)| k.port == 0).unwrap().1;
            assert_eq!(all.flags, LB_F_SERVICE | LB_F_PORTS);
            assert_eq!(all.id, ids[svcs.iter().position(|s| s.port == 0).unwrap()]);
        }
        // UDP is another key.
        let e = entries(
            &[service(53, Protocol::Udp), service(53, Protocol::Tcp)],
            &[0, 1],
            &[0, 0],
        );
        assert_eq!(e.len(), 4);
    }

    #[test]
    fn a_real_entry_carries_the_way_out_and_its_state() {
        let real = Real {
            addr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            port: 80,
            weight: 1,
            method: Method::Tunnel,
            inhibit_on_failure: false,
            check: None,
        };
        let hop = NextHop {
            ifindex: 4,
            vlan: 0,
            mac: [2, 0, 0, 0, 0, 7],
            src_mac: [2, 0, 0, 0, 0, 1],
            src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            mtu: 1500,
        };
        let e = real_entry(9, &real, &hop, 3, true);
        assert_eq!(&e.addr[..4], &[198, 51, 100, 7]);
        assert_eq!(&e.src[..4], &[198, 51, 100, 1]);
        assert_eq!(
            (e.method, e.family, e.flags),
            (LB_METHOD_TUN, FAMILY_IPV4, LB_REAL_F_UP)
        );
        assert_eq!((e.service, e.generation, e.ifindex, e.mtu), (9, 3, 4, 1500));
        assert_eq!(real_entry(9, &real, &hop, 3, false).flags, 0);
    }
}
