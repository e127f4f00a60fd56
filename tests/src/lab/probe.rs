//! Probing a VIP from a lab namespace at a fixed rate for a bounded time, recording who
//! answered each probe.
//!
//! Two ways to ask:
//! - [`Method::Resolve`]: broadcast ARP request (IPv4) or multicast Neighbor Solicitation
//!   (IPv6) for the VIP on every tick, from an AF_PACKET socket. Every probe carries its own
//!   sender MAC (`02:50:52:` + 24-bit sequence), so every reply names the probe it answers
//!   (ARP replies go back to the requester's hardware address, NAs to the solicitor's
//!   link-layer option) and carries the MAC its sender wants the client to use. Two
//!   different MACs answering one probe is an overlap. The prober speaks from its own
//!   address (`PROBER_V4` / `PROBER_V6`), so the routers' neighbour entries for the client's
//!   real address are never disturbed.
//! - [`Method::Ping`]: ICMP echo to the VIP through the namespace's own stack, so what
//!   answers is whatever the client's neighbour cache points at (failover then depends on
//!   gratuitous ARP / unsolicited NA). Replies are read on an AF_PACKET socket to see their
//!   Ethernet source.

use std::{
    collections::{BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, Result, anyhow, bail};

use super::capture::{Frame, Kind, Mac, classify, mac_str};
use crate::frames;

/// Source address of resolution probes (never configured on any interface).
pub const PROBER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 101);
pub const PROBER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x101);
/// Late replies are still collected this long after the last probe.
const LINGER: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// ARP request (IPv4 target) or Neighbor Solicitation (IPv6 target).
    Resolve,
    /// ICMP / ICMPv6 echo through the kernel's stack.
    Ping,
}

/// What to probe, from where, how often and for how long at most.
#[derive(Clone, Debug)]
pub struct Spec {
    pub ns: String,
    pub ifname: String,
    pub method: Method,
    pub target: IpAddr,
    pub interval: Duration,
    pub max: Duration,
    /// Known MACs and their owners' names (routers' eth0, VMACs…).
    pub names: HashMap<Mac, String>,
}

/// One reply as seen by the prober.
#[derive(Clone, Debug)]
pub struct Reply {
    pub at: Instant,
    /// The MAC the answer tells the client to use (ARP sender / NA target link-layer
    /// address / Ethernet source of an echo reply).
    pub mac: Mac,
    /// `names[mac]`, or the MAC itself.
    pub who: String,
}

#[derive(Clone, Debug)]
pub struct Probe {
    pub seq: u32,
    pub sent: Instant,
    pub replies: Vec<Reply>,
    /// Routers whose bridge-port capture carried a reply to this probe (see
    /// [`ProbeRun::attribute`]); when not empty it overrides the replies' MAC names, which
    /// cannot tell routers apart in VMAC mode.
    pub attributed: BTreeSet<String>,
}

impl Probe {
    pub fn answered(&self) -> bool {
        !self.replies.is_empty() || !self.attributed.is_empty()
    }

    /// Who answered this probe.
    pub fn responders(&self) -> BTreeSet<String> {
        if !self.attributed.is_empty() {
            return self.attributed.clone();
        }
        self.replies.iter().map(|r| r.who.clone()).collect()
    }
}

/// A run of consecutive unanswered probes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gap {
    pub probes: usize,
    /// Send time of the first unanswered probe.
    pub from: Option<Instant>,
    /// From the first unanswered probe to the next answered one (or the end of the run).
    pub span: Duration,
}

/// Consecutive probes answered by more than one responder.
#[derive(Clone, Debug)]
pub struct Overlap {
    pub from: Instant,
    pub to: Instant,
    pub probes: usize,
    pub who: BTreeSet<String>,
}

impl Overlap {
    pub fn span(&self) -> Duration {
        self.to - self.from
    }
}

/// See [`ProbeRun::takeover`].
#[derive(Clone, Copy, Debug)]
pub struct Takeover {
    pub last_old: Instant,
    pub first_new: Instant,
    /// From the old master's last answer to the new master's first.
    pub gap: Duration,
    /// Probes the old master still answered once the new one had started.
    pub old_answers_after_new: usize,
}

#[derive(Clone, Debug)]
pub struct ProbeRun {
    pub method: Method,
    pub target: IpAddr,
    pub interval: Duration,
    pub started: Instant,
    /// Wall clock at `started`, to line probes up with capture timestamps.
    pub wall_started: SystemTime,
    pub probes: Vec<Probe>,
    ping_id: u16,
}

/// A prober running on its own thread inside the namespace.
pub struct Prober {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<ProbeRun>>>,
}

impl Prober {
    /// Starts probing; returns once the sockets are open.
    pub fn start(spec: Spec) -> Result<Prober> {
        let max_probes = spec.max.as_nanos() / spec.interval.as_nanos().max(1);
        if spec.interval < Duration::from_micros(500) || max_probes > 60_000 {
            bail!(
                "probe run out of bounds: every {:?} for {:?} (at most 60000 probes, 0.5 ms apart)",
                spec.interval,
                spec.max
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(format!("probe-{}", spec.ns))
            .spawn(move || {
                let sockets = super::netns::enter_netns(&spec.ns).and_then(|_| open(&spec));
                match sockets {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        run(&spec, &s, &flag)
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        let _ = ready_tx.send(Err(e));
                        Err(anyhow!(msg))
                    }
                }
            })?;
        // Binding the packet socket takes rtnl_lock, which namespace teardown elsewhere on
        // the host can hold for seconds.
        match ready_rx.recv_timeout(Duration::from_secs(15)) {
            Ok(Ok(())) => Ok(Prober {
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e.context("prober setup")),
            Err(_) => bail!("prober did not start within 15 s"),
        }
    }

    /// Stops sending now and returns the results (after a short linger for late replies).
    pub fn stop(mut self) -> Result<ProbeRun> {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    /// Waits for the run to reach its maximum duration.
    pub fn finish(mut self) -> Result<ProbeRun> {
        self.join()
    }

    fn join(&mut self) -> Result<ProbeRun> {
        self.thread
            .take()
            .expect("joined once")
            .join()
            .map_err(|_| anyhow!("prober thread panicked"))?
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Sockets {
    packet: OwnedFd,
    /// Raw ICMP socket for pings (sending only).
    icmp: Option<OwnedFd>,
    ifindex: i32,
}

fn cvt(r: libc::c_int, what: &str) -> Result<libc::c_int> {
    if r < 0 {
        Err(std::io::Error::last_os_error()).context(what.to_string())
    } else {
        Ok(r)
    }
}

fn open(spec: &Spec) -> Result<Sockets> {
    let name = std::ffi::CString::new(spec.ifname.as_str())?;
    // SAFETY: plain libc calls on values we own; return codes are checked.
    unsafe {
        let ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
        if ifindex == 0 {
            bail!("no interface {} in {}", spec.ifname, spec.ns);
        }
        let proto = (libc::ETH_P_ALL as u16).to_be();
        let fd = cvt(
            libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto as i32),
            "AF_PACKET socket",
        )?;
        let packet = OwnedFd::from_raw_fd(fd);
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex;
        cvt(
            libc::bind(
                fd,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            ),
            "bind AF_PACKET",
        )?;
        let rcvbuf: libc::c_int = 4 << 20;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &rcvbuf as *const _ as *const libc::c_void,
            4,
        );
        let icmp = if spec.method == Method::Ping {
            let (domain, proto) = match spec.target {
                IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP),
                IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6),
            };
            let fd = cvt(
                libc::socket(domain, libc::SOCK_RAW, proto),
                "raw ICMP socket",
            )?;
            let sock = OwnedFd::from_raw_fd(fd);
            // Replies are read on the packet socket; block them here so this one never fills.
            let all = [u32::MAX; 8];
            let (level, opt, len) = match spec.target {
                IpAddr::V4(_) => (libc::SOL_RAW, 1, 4),
                IpAddr::V6(_) => (libc::IPPROTO_ICMPV6, 1, 32),
            };
            cvt(
                libc::setsockopt(fd, level, opt, all.as_ptr() as *const libc::c_void, len),
                "ICMP_FILTER",
            )?;
            Some(sock)
        } else {
            None
        };
        Ok(Sockets {
            packet,
            icmp,
            ifindex,
        })
    }
}

fn probe_mac(seq: u32) -> Mac {
    [
        0x02,
        0x50,
        0x52,
        (seq >> 16) as u8,
        (seq >> 8) as u8,
        seq as u8,
    ]
}

fn seq_of_probe_mac(m: &Mac) -> Option<u32> {
    (m[..3] == [0x02, 0x50, 0x52]).then(|| u32::from_be_bytes([0, m[3], m[4], m[5]]))
}

fn send_probe(spec: &Spec, s: &Sockets, seq: u32, ping_id: u16) -> Result<()> {
    // SAFETY: sends from buffers that outlive the call; errors are checked.
    unsafe {
        match (spec.method, spec.target) {
            (Method::Resolve, target) => {
                let mac = probe_mac(seq);
                let frame = match target {
                    IpAddr::V4(t) => frames::arp_request(mac, PROBER_V4.octets(), t.octets()),
                    IpAddr::V6(t) => {
                        frames::neighbor_solicitation(mac, PROBER_V6.octets(), t.octets())
                    }
                };
                let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                sll.sll_family = libc::AF_PACKET as u16;
                sll.sll_ifindex = s.ifindex;
                sll.sll_halen = 6;
                sll.sll_addr[..6].copy_from_slice(&frame[..6]);
                cvt(
                    libc::sendto(
                        s.packet.as_raw_fd(),
                        frame.as_ptr() as *const libc::c_void,
                        frame.len(),
                        0,
                        &sll as *const _ as *const libc::sockaddr,
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    ) as i32,
                    "send probe",
                )?;
            }
            (Method::Ping, target) => {
                let fd = s.icmp.as_ref().expect("icmp socket").as_raw_fd();
                let msg = frames::echo_request(target.is_ipv6(), ping_id, seq as u16, b"vipdlab!");
                let r = match target {
                    IpAddr::V4(t) => {
                        let mut sin: libc::sockaddr_in = std::mem::zeroed();
                        sin.sin_family = libc::AF_INET as u16;
                        sin.sin_addr.s_addr = u32::from_ne_bytes(t.octets());
                        libc::sendto(
                            fd,
                            msg.as_ptr() as *const libc::c_void,
                            msg.len(),
                            0,
                            &sin as *const _ as *const libc::sockaddr,
                            std::mem::size_of::<libc::sockaddr_in>() as u32,
                        )
                    }
                    IpAddr::V6(t) => {
                        let mut sin6: libc::sockaddr_in6 = std::mem::zeroed();
                        sin6.sin6_family = libc::AF_INET6 as u16;
                        sin6.sin6_addr.s6_addr = t.octets();
                        libc::sendto(
                            fd,
                            msg.as_ptr() as *const libc::c_void,
                            msg.len(),
                            0,
                            &sin6 as *const _ as *const libc::sockaddr,
                            std::mem::size_of::<libc::sockaddr_in6>() as u32,
                        )
                    }
                };
                // While the client has no neighbour entry the kernel may refuse for a moment:
                // that probe simply goes unanswered.
                if r < 0 {
                    let e = std::io::Error::last_os_error();
                    if !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS)) {
                        return Err(e).context("send ping");
                    }
                }
            }
        }
    }
    Ok(())
}

/// The probe a frame answers and the MAC it tells the client to use.
fn match_reply(method: Method, target: IpAddr, ping_id: u16, frame: &[u8]) -> Option<(u32, Mac)> {
    match (method, classify(frame)) {
        (
            Method::Resolve,
            Kind::ArpReply {
                sender_mac,
                sender_ip,
                target_mac,
                ..
            },
        ) if IpAddr::V4(sender_ip) == target => Some((seq_of_probe_mac(&target_mac)?, sender_mac)),
        (
            Method::Resolve,
            Kind::NeighborAdvert {
                src_mac,
                dst_mac,
                target: t,
                target_mac,
                ..
            },
        ) if IpAddr::V6(t) == target => {
            Some((seq_of_probe_mac(&dst_mac)?, target_mac.unwrap_or(src_mac)))
        }
        (
            Method::Ping,
            Kind::EchoReply {
                src_mac,
                src,
                id,
                seq,
                ..
            },
        ) if src == target && id == ping_id => Some((seq as u32, src_mac)),
        _ => None,
    }
}

fn run(spec: &Spec, s: &Sockets, stop: &AtomicBool) -> Result<ProbeRun> {
    let ping_id = (std::process::id() as u16) ^ (s.ifindex as u16).rotate_left(8) ^ 0x5650;
    let started = Instant::now();
    let mut out = ProbeRun {
        method: spec.method,
        target: spec.target,
        interval: spec.interval,
        started,
        wall_started: SystemTime::now(),
        probes: Vec::new(),
        ping_id,
    };
    let deadline = started + spec.max;
    let mut next = started;
    let mut buf = vec![0u8; 2048];
    let mut sending = true;
    let mut linger_until = None;
    loop {
        let now = Instant::now();
        if sending && (stop.load(Ordering::Relaxed) || now >= deadline) {
            sending = false;
            linger_until = Some(now + LINGER);
        }
        if let Some(end) = linger_until
            && now >= end
        {
            break;
        }
        if sending && now >= next {
            let seq = out.probes.len() as u32;
            out.probes.push(Probe {
                seq,
                sent: Instant::now(),
                replies: Vec::new(),
                attributed: BTreeSet::new(),
            });
            send_probe(spec, s, seq, ping_id)?;
            next += spec.interval;
            // After a stall, resume the cadence instead of bursting to catch up.
            if next < now {
                next = now + spec.interval;
            }
        }
        let wake = if sending { next } else { linger_until.unwrap() };
        let wait = wake.saturating_duration_since(Instant::now());
        let ts = libc::timespec {
            tv_sec: wait.as_secs() as i64,
            tv_nsec: wait.subsec_nanos() as i64,
        };
        let mut pfd = libc::pollfd {
            fd: s.packet.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, a timespec on the stack, no signal mask.
        let n = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        if n <= 0 {
            continue;
        }
        loop {
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: buf and from are valid for the lengths given.
            let r = unsafe {
                libc::recvfrom(
                    s.packet.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    &mut from as *mut _ as *mut libc::sockaddr,
                    &mut len,
                )
            };
            if r <= 0 {
                break;
            }
            let at = Instant::now();
            if from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            if let Some((seq, mac)) =
                match_reply(spec.method, spec.target, ping_id, &buf[..r as usize])
                && let Some(p) = out.probes.get_mut(seq as usize)
            {
                let who = spec
                    .names
                    .get(&mac)
                    .cloned()
                    .unwrap_or_else(|| mac_str(&mac));
                p.replies.push(Reply { at, mac, who });
            }
        }
    }
    Ok(out)
}

impl ProbeRun {
    pub fn sent(&self) -> usize {
        self.probes.len()
    }

    pub fn answered(&self) -> usize {
        self.probes.iter().filter(|p| p.answered()).count()
    }

    pub fn lost(&self) -> usize {
        self.sent() - self.answered()
    }

    /// Milliseconds from the start of the run to `t` (for printing).
    pub fn ms(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.started).as_secs_f64() * 1e3
    }

    /// The probes sent in `[from, to)`.
    pub fn between(&self, from: Instant, to: Instant) -> impl Iterator<Item = &Probe> {
        self.probes
            .iter()
            .filter(move |p| p.sent >= from && p.sent < to)
    }

    /// Everyone who answered any probe.
    pub fn responders(&self) -> BTreeSet<String> {
        self.probes.iter().flat_map(|p| p.responders()).collect()
    }

    /// The longest run of consecutive unanswered probes.
    pub fn longest_gap(&self) -> Gap {
        let mut best = Gap::default();
        let mut i = 0;
        while i < self.probes.len() {
            if self.probes[i].answered() {
                i += 1;
                continue;
            }
            let start = i;
            while i < self.probes.len() && !self.probes[i].answered() {
                i += 1;
            }
            let end = match self.probes.get(i) {
                Some(p) => p.sent,
                None => self.probes[i - 1].sent + self.interval,
            };
            if i - start > best.probes {
                best = Gap {
                    probes: i - start,
                    from: Some(self.probes[start].sent),
                    span: end - self.probes[start].sent,
                };
            }
        }
        best
    }

    /// Windows of consecutive probes that more than one responder answered.
    pub fn overlaps(&self) -> Vec<Overlap> {
        let mut out: Vec<Overlap> = Vec::new();
        let mut open = false;
        for p in &self.probes {
            let who = p.responders();
            if who.len() < 2 {
                open = false;
                continue;
            }
            match out.last_mut() {
                Some(o) if open => {
                    o.to = p.sent + self.interval;
                    o.probes += 1;
                    o.who.extend(who);
                }
                _ => out.push(Overlap {
                    from: p.sent,
                    to: p.sent + self.interval,
                    probes: 1,
                    who,
                }),
            }
            open = true;
        }
        out
    }

    /// Total time covered by overlap windows.
    pub fn overlap_total(&self) -> Duration {
        self.overlaps().iter().map(Overlap::span).sum()
    }

    /// The first probe sent at or after `t` that got an answer.
    pub fn first_answer_after(&self, t: Instant) -> Option<&Probe> {
        self.probes.iter().find(|p| p.sent >= t && p.answered())
    }

    /// The first probe sent at or after `t` that `who` answered.
    pub fn first_answer_by(&self, who: &str, t: Instant) -> Option<&Probe> {
        self.probes
            .iter()
            .find(|p| p.sent >= t && p.responders().contains(who))
    }

    /// The last probe sent before `t` that `who` answered.
    pub fn last_answer_by(&self, who: &str, t: Instant) -> Option<&Probe> {
        self.probes
            .iter()
            .rev()
            .find(|p| p.sent < t && p.responders().contains(who))
    }

    /// When `who` answered probe `p`: its reply's arrival, or the probe's send time when
    /// the answer is known only from a port capture (VMAC attribution).
    pub fn answer_at(p: &Probe, who: &str) -> Instant {
        p.replies
            .iter()
            .find(|r| r.who == who)
            .map(|r| r.at)
            .unwrap_or(p.sent)
    }

    /// A failover as the client saw it: the last answer from `old` and the first answer
    /// from `new` to a probe sent at or after `after` (the moment the old master was
    /// failed). `None` if either never answered.
    pub fn takeover(&self, old: &str, new: &str, after: Instant) -> Option<Takeover> {
        let first = self.first_answer_by(new, after)?;
        let last = self
            .probes
            .iter()
            .rev()
            .find(|p| p.responders().contains(old))?;
        let last_old = Self::answer_at(last, old);
        let first_new = Self::answer_at(first, new);
        Some(Takeover {
            last_old,
            first_new,
            gap: first_new.saturating_duration_since(last_old),
            old_answers_after_new: self
                .probes
                .iter()
                .filter(|p| p.sent >= first.sent && p.responders().contains(old))
                .count(),
        })
    }

    /// Attributes replies to routers from captures taken on their bridge ports (frames the
    /// router sent): needed when routers share a VMAC. Returns how many replies matched.
    pub fn attribute(&mut self, captures: &[(&str, &[Frame])]) -> usize {
        let mut n = 0;
        for (router, frames) in captures {
            for f in frames.iter() {
                if let Some((seq, _)) = match_reply(self.method, self.target, self.ping_id, &f.data)
                    && let Some(p) = self.probes.get_mut(seq as usize)
                {
                    p.attributed.insert(router.to_string());
                    n += 1;
                }
            }
        }
        n
    }

    /// One line: counts, longest gap, overlaps, responders.
    pub fn summary(&self) -> String {
        let gap = self.longest_gap();
        let overlaps = self.overlaps();
        format!(
            "{:?} {} every {:?}: {} sent, {} answered, {} lost; longest gap {:.1} ms ({} probes); \
             overlap {:.1} ms in {} window(s); responders {:?}",
            self.method,
            self.target,
            self.interval,
            self.sent(),
            self.answered(),
            self.lost(),
            gap.span.as_secs_f64() * 1e3,
            gap.probes,
            self.overlap_total().as_secs_f64() * 1e3,
            overlaps.len(),
            self.responders(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(answers: &[&[&str]]) -> ProbeRun {
        let t0 = Instant::now();
        let step = Duration::from_millis(2);
        ProbeRun {
            method: Method::Resolve,
            target: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            interval: step,
            started: t0,
            wall_started: SystemTime::now(),
            ping_id: 0,
            probes: answers
                .iter()
                .enumerate()
                .map(|(i, who)| Probe {
                    seq: i as u32,
                    sent: t0 + step * i as u32,
                    replies: who
                        .iter()
                        .map(|w| Reply {
                            at: t0 + step * i as u32,
                            mac: [0; 6],
                            who: w.to_string(),
                        })
                        .collect(),
                    attributed: BTreeSet::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn longest_gap_counts_consecutive_unanswered_probes() {
        let r = run_of(&[&["r1"], &[], &[], &["r2"], &[], &["r2"]]);
        let g = r.longest_gap();
        assert_eq!(g.probes, 2);
        assert_eq!(g.span, Duration::from_millis(4));
        assert_eq!(r.lost(), 3);
    }

    #[test]
    fn two_responders_on_consecutive_probes_form_one_overlap_window() {
        let r = run_of(&[
            &["r1"],
            &["r1", "r2"],
            &["r2", "r1"],
            &["r2"],
            &["r1", "r2"],
        ]);
        let o = r.overlaps();
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].probes, 2);
        assert_eq!(o[0].span(), Duration::from_millis(4));
        assert_eq!(r.overlap_total(), Duration::from_millis(6));
    }

    #[test]
    fn takeover_runs_from_the_old_masters_last_answer_to_the_new_ones_first() {
        let r = run_of(&[&["r1"], &["r1"], &[], &[], &["r2"], &["r1"], &["r2"]]);
        let t = r.takeover("r1", "r2", r.started).unwrap();
        // r1's last answer is probe 5 (10 ms), after r2's first (probe 4, 8 ms).
        assert_eq!(t.gap, Duration::ZERO);
        assert_eq!(t.old_answers_after_new, 1);
        let clean = run_of(&[&["r1"], &["r1"], &[], &[], &["r2"], &["r2"]]);
        let t = clean.takeover("r1", "r2", clean.started).unwrap();
        assert_eq!(t.gap, Duration::from_millis(6));
        assert_eq!(t.old_answers_after_new, 0);
        assert!(clean.takeover("r1", "r3", clean.started).is_none());
    }

    #[test]
    fn per_probe_mac_round_trips_its_sequence() {
        for seq in [0, 1, 0x1234, 0xff_ffff] {
            assert_eq!(seq_of_probe_mac(&probe_mac(seq)), Some(seq));
        }
    }
}
