//! Long-lived flows through a lab: an echo server (TCP and UDP on one port) in one
//! namespace, and clients in another that send a numbered message every `interval` and
//! record when each echo comes back. A failover shows as a stall (the longest time without
//! an echo around the event); a TCP connection that does not survive shows as an error
//! (reset, broken pipe) or echoes out of order.
//!
//! Every thread is bounded: clients stop at `max` or on [`Flow::stop`], the server stops
//! when dropped, and every socket wait is at most 50 ms.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};

use super::netns::enter_netns;

const POLL: Duration = Duration::from_millis(50);
/// The server serves this many TCP connections at most.
const MAX_CONNECTIONS: usize = 16;

/// TCP and UDP echo on one port, in a namespace, until dropped.
pub struct EchoServer {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl EchoServer {
    /// Listens on `0.0.0.0:port` (TCP and UDP) in namespace `ns`.
    pub fn start(ns: &str, port: u16) -> Result<EchoServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let ns = ns.to_owned();
        let flag = stop.clone();
        let main = std::thread::Builder::new()
            .name(format!("echo-{ns}"))
            .spawn(move || {
                let bound = enter_netns(&ns).and_then(|_| {
                    let tcp = TcpListener::bind(("0.0.0.0", port)).context("bind TCP")?;
                    tcp.set_nonblocking(true)?;
                    let udp = UdpSocket::bind(("0.0.0.0", port)).context("bind UDP")?;
                    udp.set_read_timeout(Some(POLL))?;
                    Ok((tcp, udp))
                });
                let (tcp, udp) = match bound {
                    Ok(s) => {
                        let _ = tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let udp_flag = flag.clone();
                let udp_thread = std::thread::spawn(move || {
                    let mut buf = [0u8; 2048];
                    while !udp_flag.load(Ordering::Relaxed) {
                        if let Ok((n, from)) = udp.recv_from(&mut buf) {
                            let _ = udp.send_to(&buf[..n], from);
                        }
                    }
                });
                let mut conns = Vec::new();
                while !flag.load(Ordering::Relaxed) {
                    match tcp.accept() {
                        Ok((s, _)) if conns.len() < MAX_CONNECTIONS => {
                            let f = flag.clone();
                            conns.push(std::thread::spawn(move || echo_tcp(s, &f)));
                        }
                        Ok(_) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
                let _ = udp_thread.join();
                for c in conns {
                    let _ = c.join();
                }
            })?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| anyhow!("echo server did not start"))??;
        Ok(EchoServer {
            stop,
            threads: vec![main],
        })
    }
}

fn echo_tcp(mut s: TcpStream, stop: &AtomicBool) {
    let _ = s.set_read_timeout(Some(POLL));
    let _ = s.set_nodelay(true);
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// A client flow running on its own thread.
pub struct Flow {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<FlowRun>>>,
}

/// What a flow saw.
#[derive(Clone, Debug)]
pub struct FlowRun {
    pub proto: Proto,
    pub interval: Duration,
    pub started: Instant,
    pub sent: u64,
    /// Every echo: its sequence number and when it came back.
    pub echoes: Vec<(u64, Instant)>,
    /// Why the flow ended early (a reset, a broken pipe), if it did.
    pub error: Option<String>,
}

impl Flow {
    /// Connects (TCP) or aims (UDP) at `server` from namespace `ns` and sends a numbered
    /// message every `interval` for at most `max`.
    pub fn start(
        ns: &str,
        proto: Proto,
        server: SocketAddr,
        interval: Duration,
        max: Duration,
    ) -> Result<Flow> {
        if interval < Duration::from_millis(1) || max > Duration::from_secs(600) {
            bail!("flow out of bounds: every {interval:?} for {max:?}");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let ns = ns.to_owned();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("flow-{ns}"))
            .spawn(move || -> Result<FlowRun> {
                let socket = enter_netns(&ns).and_then(|_| Socket::open(proto, server));
                let mut socket = match socket {
                    Ok(s) => {
                        let _ = tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        let _ = tx.send(Err(e));
                        bail!(msg);
                    }
                };
                Ok(run(&mut socket, proto, interval, max, &flag))
            })?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| anyhow!("flow did not start"))??;
        Ok(Flow {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops sending, collects echoes for a moment longer and returns what was seen.
    pub fn stop(mut self) -> Result<FlowRun> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("joined once")
            .join()
            .map_err(|_| anyhow!("flow thread panicked"))?
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Socket {
    Tcp(TcpStream, Vec<u8>),
    Udp(UdpSocket),
}

impl Socket {
    fn open(proto: Proto, server: SocketAddr) -> Result<Socket> {
        Ok(match proto {
            Proto::Tcp => {
                let s = TcpStream::connect_timeout(&server, Duration::from_secs(5))
                    .with_context(|| format!("connect to {server}"))?;
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(Duration::from_secs(1)))?;
                Socket::Tcp(s, Vec::new())
            }
            Proto::Udp => {
                let s = UdpSocket::bind(("0.0.0.0", 0))?;
                s.connect(server)?;
                Socket::Udp(s)
            }
        })
    }

    fn send(&mut self, seq: u64) -> std::io::Result<()> {
        match self {
            Socket::Tcp(s, _) => s.write_all(&seq.to_be_bytes()),
            // A UDP send that fails (no route for a moment) is a lost datagram.
            Socket::Udp(s) => s.send(&seq.to_be_bytes()).map(drop).or(Ok(())),
        }
    }

    /// Waits up to `wait` for echoes; appends them.
    fn recv(&mut self, wait: Duration, out: &mut Vec<(u64, Instant)>) -> std::io::Result<()> {
        let wait = wait.max(Duration::from_micros(200));
        let mut buf = [0u8; 4096];
        match self {
            Socket::Tcp(s, pending) => {
                s.set_read_timeout(Some(wait))?;
                match s.read(&mut buf) {
                    Ok(0) => Err(std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "connection closed by the server",
                    )),
                    Ok(n) => {
                        let at = Instant::now();
                        pending.extend_from_slice(&buf[..n]);
                        while pending.len() >= 8 {
                            let seq = u64::from_be_bytes(pending[..8].try_into().unwrap());
                            out.push((seq, at));
                            pending.drain(..8);
                        }
                        Ok(())
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Socket::Udp(s) => {
                s.set_read_timeout(Some(wait))?;
                match s.recv(&mut buf) {
                    Ok(8) => {
                        out.push((
                            u64::from_be_bytes(buf[..8].try_into().unwrap()),
                            Instant::now(),
                        ));
                        Ok(())
                    }
                    // ICMP errors (port or host unreachable) while the path moves.
                    Ok(_) | Err(_) => Ok(()),
                }
            }
        }
    }
}

fn run(
    s: &mut Socket,
    proto: Proto,
    interval: Duration,
    max: Duration,
    stop: &AtomicBool,
) -> FlowRun {
    let started = Instant::now();
    let mut run = FlowRun {
        proto,
        interval,
        started,
        sent: 0,
        echoes: Vec::new(),
        error: None,
    };
    let deadline = started + max;
    let mut next = started;
    loop {
        let now = Instant::now();
        if stop.load(Ordering::Relaxed) || now >= deadline {
            break;
        }
        if now >= next {
            if let Err(e) = s.send(run.sent) {
                run.error = Some(format!("send {}: {e}", run.sent));
                return run;
            }
            run.sent += 1;
            next += interval;
            if next < now {
                next = now + interval;
            }
        }
        if let Err(e) = s.recv(
            next.saturating_duration_since(Instant::now()),
            &mut run.echoes,
        ) {
            run.error = Some(format!("receive: {e}"));
            return run;
        }
    }
    // Late echoes (TCP retransmissions in flight).
    let linger = Instant::now() + Duration::from_millis(300);
    while Instant::now() < linger {
        if s.recv(Duration::from_millis(20), &mut run.echoes).is_err() {
            break;
        }
    }
    run
}

impl FlowRun {
    /// The longest time without an echo in the echoes that arrived in `[from, to]`, counting
    /// from the last echo before `from`: the stall a failover at `from` caused.
    pub fn stall(&self, from: Instant, to: Instant) -> Duration {
        let mut last = self
            .echoes
            .iter()
            .rev()
            .find(|(_, at)| *at < from)
            .map_or(from, |(_, at)| *at);
        let mut worst = Duration::ZERO;
        for (_, at) in self
            .echoes
            .iter()
            .filter(|(_, at)| *at >= from && *at <= to)
        {
            worst = worst.max(at.saturating_duration_since(last));
            last = *at;
        }
        // A stall still running at `to`.
        worst.max(to.saturating_duration_since(last))
    }

    /// Whether the echoes are exactly 0, 1, 2, … (what a surviving TCP stream delivers).
    pub fn in_order(&self) -> bool {
        self.echoes
            .iter()
            .enumerate()
            .all(|(i, (seq, _))| *seq == i as u64)
    }

    /// Messages sent that never came back.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.echoes.len() as u64)
    }

    /// Whether an echo arrived after `t`.
    pub fn echoed_after(&self, t: Instant) -> bool {
        self.echoes.iter().any(|(_, at)| *at > t)
    }

    pub fn summary(&self) -> String {
        format!(
            "{:?} every {:?}: {} sent, {} echoed, {} lost{}",
            self.proto,
            self.interval,
            self.sent,
            self.echoes.len(),
            self.lost(),
            self.error
                .as_ref()
                .map(|e| format!("; ended by error: {e}"))
                .unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(at_ms: &[u64]) -> (FlowRun, Instant) {
        let t0 = Instant::now();
        let echoes = at_ms
            .iter()
            .enumerate()
            .map(|(i, ms)| (i as u64, t0 + Duration::from_millis(*ms)))
            .collect();
        (
            FlowRun {
                proto: Proto::Udp,
                interval: Duration::from_millis(10),
                started: t0,
                sent: at_ms.len() as u64 + 1,
                echoes,
                error: None,
            },
            t0,
        )
    }

    #[test]
    fn the_stall_counts_from_the_last_echo_before_the_event() {
        let (r, t0) = run_of(&[0, 10, 20, 300, 310, 320]);
        let ms = |m| t0 + Duration::from_millis(m);
        assert_eq!(r.stall(ms(25), ms(400)), Duration::from_millis(280));
        assert_eq!(r.stall(ms(305), ms(320)), Duration::from_millis(10));
        // Nothing after the event: stalled until the end of the window.
        assert_eq!(r.stall(ms(330), ms(400)), Duration::from_millis(80));
        assert!(r.in_order());
        assert_eq!(r.lost(), 1);
    }
}
