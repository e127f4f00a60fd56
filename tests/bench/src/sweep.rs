//! Resolving many VIPs at once from a lab namespace: which VIP was answered, when, and by
//! whom. The lab's own prober follows one address; takeover time vs number of VIPs needs
//! the first and the last of thousands.
//!
//! Requests are ARP (IPv4) or Neighbor Solicitations (IPv6) from [`PROBER_MAC`] and the
//! lab prober's source addresses, sent on an AF_PACKET socket; answers are matched by the
//! address they resolve and attributed by the MAC they give. With [`Spec::echo`] the
//! requests are ICMP / ICMPv6 echo requests sent straight to a router's MAC from the
//! client's own addresses instead: a reply comes from the router's IP stack, so it shows
//! the address is on the host and traffic to it reaches the host (not just that the
//! address resolves). Every run is bounded: a
//! round is one request per target, rounds are `every` apart, and the whole run stops at
//! `max`.

use std::{
    collections::HashMap,
    net::IpAddr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};

use vip_tests::{
    frames,
    lab::{
        Mac,
        capture::{Kind, classify},
        netns,
        probe::{PROBER_V4, PROBER_V6},
    },
};

/// Source MAC of every sweep request (locally administered, unlike any lab node's).
pub const PROBER_MAC: Mac = [0x02, 0x50, 0x53, 0, 0, 1];
/// Requests within a round are paced, and no sweep asks for more than this: a burst of
/// thousands would overflow the veth rings on the way and measure drops, not answers.
pub const MAX_RATE: f64 = 50_000.0;
/// Requests sent back to back before the pacer sleeps.
const CHUNK: usize = 32;

/// An answer: which target, when, from whom (index into the names given).
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    pub target: u32,
    pub at: Instant,
    pub who: u8,
}

/// Everything answered so far, shared with the prober thread.
#[derive(Default)]
pub struct Answers {
    pub list: Vec<Answer>,
}

pub struct Spec {
    pub ns: String,
    pub ifname: String,
    pub targets: Vec<IpAddr>,
    /// Pause between rounds.
    pub every: Duration,
    pub max: Duration,
    /// MAC → responder name; answers from other MACs are recorded under "other".
    pub names: Vec<(Mac, String)>,
    /// Requests per second within a round (at most [`MAX_RATE`]).
    pub rate: f64,
    /// Echo requests instead of resolution (see the module docs).
    pub echo: Option<Echo>,
}

/// Where echo requests go and come from: `dst_mac` is the router asked (the client skips
/// its own neighbour resolution), `src_mac` / `src` the client's own, so the router's
/// stack can resolve it and reply.
#[derive(Clone, Copy, Debug)]
pub struct Echo {
    pub src_mac: Mac,
    pub dst_mac: Mac,
    pub src: IpAddr,
}

/// The echo identifier of every sweep request (its sequence number is the target's index).
const ECHO_ID: u16 = 0x5157;

pub struct Sweeper {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Answers>>,
    names: Vec<String>,
    thread: Option<JoinHandle<Result<()>>>,
}

struct Socket {
    fd: OwnedFd,
    ifindex: i32,
}

fn open(ifname: &str) -> Result<Socket> {
    let name = std::ffi::CString::new(ifname)?;
    // SAFETY: plain libc calls on values we own; return codes are checked.
    unsafe {
        let ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
        if ifindex == 0 {
            bail!("no interface {ifname}");
        }
        let proto = (libc::ETH_P_ALL as u16).to_be();
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto as i32);
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
        let rcvbuf: libc::c_int = 8 << 20;
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &rcvbuf as *const _ as *const libc::c_void,
            4,
        );
        Ok(Socket { fd, ifindex })
    }
}

fn request(target: IpAddr, index: usize, echo: Option<Echo>) -> Result<Vec<u8>> {
    let seq = index as u16;
    Ok(match (target, echo) {
        (IpAddr::V4(t), None) => frames::arp_request(PROBER_MAC, PROBER_V4.octets(), t.octets()),
        (IpAddr::V6(t), None) => {
            frames::neighbor_solicitation(PROBER_MAC, PROBER_V6.octets(), t.octets())
        }
        (
            IpAddr::V4(t),
            Some(Echo {
                src_mac,
                dst_mac,
                src: IpAddr::V4(src),
            }),
        ) => {
            let m = frames::echo_request(false, ECHO_ID, seq, b"vip-bench");
            frames::ipv4(src_mac, dst_mac, src.octets(), t.octets(), 1, 64, &m)
        }
        (
            IpAddr::V6(t),
            Some(Echo {
                src_mac,
                dst_mac,
                src: IpAddr::V6(src),
            }),
        ) => {
            let mut m = frames::echo_request(true, ECHO_ID, seq, b"vip-bench");
            let sum = frames::icmpv6_checksum(&src.octets(), &t.octets(), &m);
            m[2..4].copy_from_slice(&sum.to_be_bytes());
            frames::ipv6(src_mac, dst_mac, src.octets(), t.octets(), 58, 64, &m)
        }
        (t, Some(e)) => bail!("echo to {t} from {}: families differ", e.src),
    })
}

fn send(s: &Socket, frame: &[u8]) {
    // SAFETY: the frame and address outlive the call.
    unsafe {
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = s.ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // A full queue drops this request; the next round asks again.
        libc::sendto(
            s.fd.as_raw_fd(),
            frame.as_ptr() as *const libc::c_void,
            frame.len(),
            0,
            &sll as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
    }
}

/// The address `frame` answers for and the MAC that answered, if it answers this sweep's
/// kind of request. Each sweep counts only its own: an echo sweep beside a resolving one
/// on the same interface sees the NAs that answer the other.
fn answer(frame: &[u8], echo: Option<Echo>) -> Option<(IpAddr, Mac)> {
    Some(match classify(frame) {
        Kind::ArpReply { .. } | Kind::NeighborAdvert { .. } if echo.is_some() => return None,
        Kind::ArpReply {
            sender_mac,
            sender_ip,
            target_mac,
            ..
        } if target_mac == PROBER_MAC => (IpAddr::V4(sender_ip), sender_mac),
        Kind::NeighborAdvert {
            src_mac,
            dst_mac,
            target,
            target_mac,
            ..
        } if dst_mac == PROBER_MAC => (IpAddr::V6(target), target_mac.unwrap_or(src_mac)),
        Kind::EchoReply {
            src_mac,
            dst_mac,
            src,
            id,
            ..
        } if echo.is_some_and(|e| e.src_mac == dst_mac) && id == ECHO_ID => (src, src_mac),
        _ => return None,
    })
}

/// Reads every pending frame, recording answers.
fn drain(
    s: &Socket,
    index: &HashMap<IpAddr, u32>,
    names: &[(Mac, String)],
    echo: Option<Echo>,
    out: &Mutex<Answers>,
    buf: &mut [u8],
) {
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe {
            libc::recv(
                s.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n <= 0 {
            return;
        }
        let at = Instant::now();
        let Some((addr, mac)) = answer(&buf[..n as usize], echo) else {
            continue;
        };
        let Some(&target) = index.get(&addr) else {
            continue;
        };
        let who = names
            .iter()
            .position(|(m, _)| *m == mac)
            .unwrap_or(names.len()) as u8;
        out.lock().unwrap().list.push(Answer { target, at, who });
    }
}

impl Sweeper {
    pub fn start(spec: Spec) -> Result<Sweeper> {
        if spec.targets.is_empty()
            || spec.rate > MAX_RATE
            || spec.targets.len() as f64 / spec.every.as_secs_f64() > spec.rate * 1.01
        {
            bail!(
                "sweep out of bounds: {} targets every {:?} (at most {MAX_RATE} requests/s)",
                spec.targets.len(),
                spec.every
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Answers::default()));
        let mut names: Vec<String> = spec.names.iter().map(|(_, n)| n.clone()).collect();
        names.push("other".into());
        let (ready_tx, ready_rx) = mpsc::channel();
        let (flag, out) = (Arc::clone(&stop), Arc::clone(&answers));
        let thread = std::thread::Builder::new()
            .name(format!("sweep-{}", spec.ns))
            .spawn(move || -> Result<()> {
                let socket = netns::enter_netns(&spec.ns).and_then(|_| open(&spec.ifname));
                let s = match socket {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        let _ = ready_tx.send(Err(e));
                        return Err(anyhow!(msg));
                    }
                };
                let index: HashMap<IpAddr, u32> = spec
                    .targets
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (*a, i as u32))
                    .collect();
                let requests = spec
                    .targets
                    .iter()
                    .enumerate()
                    .map(|(i, t)| request(*t, i, spec.echo))
                    .collect::<Result<Vec<Vec<u8>>>>()?;
                let mut buf = vec![0u8; 2048];
                let t0 = Instant::now();
                let mut next = t0;
                while !flag.load(Ordering::Relaxed) && t0.elapsed() < spec.max {
                    let now = Instant::now();
                    if now >= next {
                        for (i, chunk) in requests.chunks(CHUNK).enumerate() {
                            for r in chunk {
                                send(&s, r);
                            }
                            drain(&s, &index, &spec.names, spec.echo, &out, &mut buf);
                            let due =
                                now + Duration::from_secs_f64(((i + 1) * CHUNK) as f64 / spec.rate);
                            if chunk.len() == CHUNK {
                                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                            }
                        }
                        next += spec.every;
                        // After a stall, keep the cadence instead of bursting to catch up.
                        if next < Instant::now() {
                            next = Instant::now() + spec.every;
                        }
                    }
                    drain(&s, &index, &spec.names, spec.echo, &out, &mut buf);
                    let wait = next.saturating_duration_since(Instant::now());
                    let mut pfd = libc::pollfd {
                        fd: s.fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    let ms = wait.as_millis().min(50) as i32;
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut pfd, 1, ms) };
                }
                // Late answers to the last round.
                let linger = Instant::now() + Duration::from_millis(50);
                while Instant::now() < linger {
                    drain(&s, &index, &spec.names, spec.echo, &out, &mut buf);
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(())
            })?;
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(Sweeper {
                stop,
                answers,
                names,
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e.context("sweeper setup")),
            Err(_) => bail!("sweeper did not start within 5 s"),
        }
    }

    /// Index of responder `name` in [`Answer::who`].
    pub fn who(&self, name: &str) -> Option<u8> {
        self.names.iter().position(|n| n == name).map(|i| i as u8)
    }

    /// For each target, the first answer by `who` at or after `since`.
    pub fn first_by(&self, who: u8, since: Instant, targets: usize) -> Vec<Option<Instant>> {
        let mut first = vec![None; targets];
        for a in &self.answers.lock().unwrap().list {
            if a.who == who && a.at >= since {
                let slot: &mut Option<Instant> = &mut first[a.target as usize];
                if slot.is_none_or(|t| a.at < t) {
                    *slot = Some(a.at);
                }
            }
        }
        first
    }

    pub fn stop(mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("joined once")
            .join()
            .map_err(|_| anyhow!("sweeper thread panicked"))?
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `rounds` rounds over every target at `rate` requests/s (a request lost on the way is
/// asked again): which targets `who` answered.
pub fn answered(
    ns: &str,
    ifname: &str,
    targets: &[IpAddr],
    names: &[(Mac, String)],
    who: &str,
    rounds: u32,
    rate: f64,
) -> Result<Vec<bool>> {
    let every = Duration::from_secs_f64((targets.len() as f64 / rate).max(0.05));
    let t0 = Instant::now();
    let s = Sweeper::start(Spec {
        ns: ns.into(),
        ifname: ifname.into(),
        targets: targets.to_vec(),
        every,
        max: every * rounds,
        names: names.to_vec(),
        rate,
        echo: None,
    })?;
    std::thread::sleep(every * rounds + Duration::from_millis(100));
    let who = s.who(who).context("unknown responder")?;
    let got = s
        .first_by(who, t0, targets.len())
        .iter()
        .map(Option::is_some)
        .collect();
    s.stop()?;
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_request_goes_to_the_router_from_the_client_with_a_valid_checksum() {
        let echo = Echo {
            src_mac: [2, 0, 0, 0, 0, 0x21],
            dst_mac: [2, 0, 0, 0, 0, 0x11],
            src: "2001:db8::21".parse().unwrap(),
        };
        let vip: IpAddr = "2001:db8::1:7".parse().unwrap();
        let f = request(vip, 6, Some(echo)).unwrap();
        assert_eq!((&f[..6], &f[6..12]), (&echo.dst_mac[..], &echo.src_mac[..]));
        match classify(&f) {
            Kind::EchoRequest { src, dst, id, seq } => {
                assert_eq!((src, dst, id, seq), (echo.src, vip, ECHO_ID, 6));
            }
            other => panic!("not an echo request: {other:?}"),
        }
        // The ICMPv6 checksum over the pseudo-header and the message sums to zero.
        let (src, dst): ([u8; 16], [u8; 16]) =
            (f[22..38].try_into().unwrap(), f[38..54].try_into().unwrap());
        assert_eq!(frames::icmpv6_checksum(&src, &dst, &f[54..]), 0);
    }

    #[test]
    fn an_echo_sweep_counts_echo_replies_only_and_a_resolving_one_nas_only() {
        let (client, router) = ([2, 0, 0, 0, 0, 0x21], [2, 0, 0, 0, 0, 0x11]);
        let echo = Echo {
            src_mac: client,
            dst_mac: router,
            src: "2001:db8::21".parse().unwrap(),
        };
        let vip: IpAddr = "2001:db8::1:7".parse().unwrap();
        let IpAddr::V6(v6) = vip else { unreachable!() };
        // The router's NA to the resolving sweep's NS, seen on the same interface.
        let mut na = vec![0x88, 0, 0, 0, 0x60, 0, 0, 0];
        na.extend_from_slice(&v6.octets());
        na.extend_from_slice(&[2, 1]);
        na.extend_from_slice(&router);
        let src = v6.octets();
        let dst = PROBER_V6.octets();
        let sum = frames::icmpv6_checksum(&src, &dst, &na);
        na[2..4].copy_from_slice(&sum.to_be_bytes());
        let na = frames::ipv6(router, PROBER_MAC, src, dst, 58, 255, &na);
        assert!(matches!(classify(&na), Kind::NeighborAdvert { .. }));
        assert_eq!(answer(&na, None), Some((vip, router)));
        assert_eq!(answer(&na, Some(echo)), None);
        // The router's echo reply to the echo sweep.
        let mut m = frames::echo_request(true, ECHO_ID, 3, b"vip-bench");
        m[0] = 129;
        let reply = frames::ipv6(
            router,
            client,
            src,
            [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x21],
            58,
            64,
            &m,
        );
        assert_eq!(answer(&reply, Some(echo)), Some((vip, router)));
        assert_eq!(answer(&reply, None), None);
    }

    #[test]
    fn an_echo_of_the_other_family_is_refused() {
        let echo = Echo {
            src_mac: [2; 6],
            dst_mac: [4; 6],
            src: "192.0.2.21".parse().unwrap(),
        };
        assert!(request("2001:db8::1".parse().unwrap(), 0, Some(echo)).is_err());
        assert!(request("192.0.2.1".parse().unwrap(), 0, Some(echo)).is_ok());
    }
}
