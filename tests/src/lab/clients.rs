//! Many clients resolving one VIP: a shared (active-active) VIP answers each requester by
//! its address, so one prober with one source address cannot see the split. This one
//! sends, every round, one ARP request (IPv4) or Neighbor Solicitation (IPv6) per client
//! address, each from its own MAC (`02:50:53:RR:00:NN`, client NN, round RR), and records
//! per client and round which MACs answered (an ARP reply's sender hardware address, an
//! NA's target link-layer address).
//!
//! Bounded: it stops after `max` or when stopped; the rounds are paced by `interval`.

use std::{
    collections::BTreeSet,
    net::IpAddr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};

use super::capture::{Kind, Mac, classify};
use super::netns::enter_netns;
use crate::frames;

/// Client MACs number clients in one byte.
const MAX_CLIENTS: usize = 250;

/// The MAC client `i` asks from in round `round`: replies go back to it, so each names
/// the client and (modulo 256) the round it answers, however late it arrives. The bridge
/// learns at most 256 of them per client.
pub fn client_mac(i: usize, round: usize) -> Mac {
    [0x02, 0x50, 0x53, round as u8, 0, i as u8]
}

/// One round: when it was sent and, per client, the MACs that answered it.
#[derive(Clone, Debug)]
pub struct Round {
    pub sent: Instant,
    pub answers: Vec<BTreeSet<Mac>>,
}

#[derive(Clone, Debug)]
pub struct ClientsRun {
    pub clients: Vec<IpAddr>,
    pub rounds: Vec<Round>,
}

impl ClientsRun {
    /// Client `i`'s longest run of unanswered rounds, as the time from the first
    /// unanswered round's send to the next answered one's (zero when never unanswered);
    /// and when that gap began.
    pub fn longest_gap(&self, i: usize) -> (Duration, Option<Instant>) {
        let mut best = (Duration::ZERO, None);
        let mut open: Option<Instant> = None;
        for r in &self.rounds {
            match (r.answers[i].is_empty(), open) {
                (true, None) => open = Some(r.sent),
                (false, Some(from)) => {
                    if r.sent - from > best.0 {
                        best = (r.sent - from, Some(from));
                    }
                    open = None;
                }
                _ => {}
            }
        }
        if let (Some(from), Some(last)) = (open, self.rounds.last())
            && last.sent - from > best.0
        {
            best = (last.sent - from, Some(from));
        }
        best
    }

    /// Every MAC that answered client `i`.
    pub fn macs(&self, i: usize) -> BTreeSet<Mac> {
        self.rounds
            .iter()
            .flat_map(|r| r.answers[i].iter().copied())
            .collect()
    }

    /// Rounds in which client `i` got two different MACs.
    pub fn conflicting_rounds(&self, i: usize) -> usize {
        self.rounds
            .iter()
            .filter(|r| r.answers[i].len() > 1)
            .count()
    }

    /// Rounds client `i` got an answer in, after `from`.
    pub fn answered_after(&self, i: usize, from: Instant) -> usize {
        self.rounds
            .iter()
            .filter(|r| r.sent >= from && !r.answers[i].is_empty())
            .count()
    }
}

/// A running prober; [`ClientsProber::stop`] returns what it saw.
pub struct ClientsProber {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<ClientsRun>>>,
}

impl ClientsProber {
    /// Starts asking for `vip` from every address of `clients` (of `vip`'s family) on
    /// `ifname` in namespace `ns`, a round every `interval`, for at most `max`.
    pub fn start(
        ns: &str,
        ifname: &str,
        vip: IpAddr,
        clients: Vec<IpAddr>,
        interval: Duration,
        max: Duration,
    ) -> Result<ClientsProber> {
        if clients.len() > MAX_CLIENTS {
            bail!("at most {MAX_CLIENTS} clients");
        }
        if clients.iter().any(|c| c.is_ipv4() != vip.is_ipv4()) {
            bail!("clients of another family than {vip}");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (ns, ifname, flag) = (ns.to_owned(), ifname.to_owned(), stop.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || -> Result<ClientsRun> {
            let started = (|| {
                enter_netns(&ns)?;
                open(&ifname, vip.is_ipv4())
            })();
            let (fd, ifindex) = match started {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow!("{e:#}")));
                    return Err(e);
                }
            };
            run(&fd, ifindex, vip, clients, interval, max, &flag)
        });
        ready_rx
            .recv()
            .map_err(|_| anyhow!("clients prober died starting"))??;
        Ok(ClientsProber {
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) -> Result<ClientsRun> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("joined once")
            .join()
            .map_err(|_| anyhow!("clients prober panicked"))?
    }
}

impl Drop for ClientsProber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An AF_PACKET socket on `ifname` for ARP (`v4`) or IPv6 frames.
fn open(ifname: &str, v4: bool) -> Result<(OwnedFd, i32)> {
    let name = std::ffi::CString::new(ifname)?;
    // SAFETY: plain libc calls on values we own; return codes are checked.
    unsafe {
        let ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
        if ifindex == 0 {
            bail!("no interface {ifname}");
        }
        let proto = if v4 {
            libc::ETH_P_ARP
        } else {
            libc::ETH_P_IPV6
        } as u16;
        let proto = proto.to_be();
        let fd = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK,
            proto as i32,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("AF_PACKET socket");
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex;
        if libc::bind(
            fd.as_raw_fd(),
            &sll as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        ) < 0
        {
            return Err(std::io::Error::last_os_error()).context("bind AF_PACKET");
        }
        let rcvbuf: libc::c_int = 4 << 20;
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &rcvbuf as *const _ as *const libc::c_void,
            4,
        );
        Ok((fd, ifindex))
    }
}

/// The request client `i` sends in round `round`.
fn request(i: usize, round: usize, client: IpAddr, vip: IpAddr) -> Vec<u8> {
    let mac = client_mac(i, round);
    match (client, vip) {
        (IpAddr::V4(c), IpAddr::V4(v)) => frames::arp_request(mac, c.octets(), v.octets()),
        (IpAddr::V6(c), IpAddr::V6(v)) => {
            frames::neighbor_solicitation(mac, c.octets(), v.octets())
        }
        // `start` refuses mixed families.
        _ => Vec::new(),
    }
}

/// An answer for `vip` to a client MAC: (the MAC it was sent to, the MAC it resolves to).
fn answer(frame: &[u8], vip: IpAddr) -> Option<(Mac, Mac)> {
    match classify(frame) {
        Kind::ArpReply {
            sender_mac,
            sender_ip,
            target_mac,
            ..
        } if IpAddr::V4(sender_ip) == vip => Some((target_mac, sender_mac)),
        Kind::NeighborAdvert {
            dst_mac,
            target,
            target_mac: Some(resolved),
            ..
        } if IpAddr::V6(target) == vip => Some((dst_mac, resolved)),
        _ => None,
    }
}

fn run(
    fd: &OwnedFd,
    ifindex: i32,
    vip: IpAddr,
    clients: Vec<IpAddr>,
    interval: Duration,
    max: Duration,
    stop: &AtomicBool,
) -> Result<ClientsRun> {
    let begin = Instant::now();
    let mut rounds: Vec<Round> = Vec::new();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) && begin.elapsed() < max {
        let sent = Instant::now();
        let round = rounds.len();
        for (i, c) in clients.iter().enumerate() {
            let frame = request(i, round, *c, vip);
            // SAFETY: sends from a buffer that outlives the call.
            unsafe {
                let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                sll.sll_family = libc::AF_PACKET as u16;
                sll.sll_ifindex = ifindex;
                sll.sll_halen = 6;
                sll.sll_addr[..6].copy_from_slice(&frame[..6]);
                libc::sendto(
                    fd.as_raw_fd(),
                    frame.as_ptr() as *const libc::c_void,
                    frame.len(),
                    0,
                    &sll as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                );
            }
        }
        rounds.push(Round {
            sent,
            answers: vec![BTreeSet::new(); clients.len()],
        });
        // Collect until the next round is due.
        while sent.elapsed() < interval {
            // SAFETY: reads into a buffer we own.
            let n = unsafe {
                libc::recv(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                )
            };
            if n <= 0 {
                std::thread::sleep(Duration::from_micros(100));
                continue;
            }
            if let Some((to, resolved)) = answer(&buf[..n as usize], vip)
                && to[..3] == [0x02, 0x50, 0x53]
            {
                let i = usize::from(to[5]);
                // The latest round whose number ends in the reply's byte.
                let back = usize::from((round as u8).wrapping_sub(to[3]));
                if i < clients.len()
                    && let Some(r) = round.checked_sub(back).and_then(|r| rounds.get_mut(r))
                {
                    r.answers[i].insert(resolved);
                }
            }
        }
    }
    Ok(ClientsRun { clients, rounds })
}
