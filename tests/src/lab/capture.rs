//! tcpdump captures in lab namespaces, read back as timestamped frames, and a classifier
//! for the frames VRRP tests care about.

use std::{
    io::{BufRead, BufReader},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    process::Stdio,
    sync::mpsc,
    time::{Duration, SystemTime},
};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use super::{netns, process::Proc};

pub type Mac = [u8; 6];

/// One captured frame with its kernel receive timestamp (wall clock).
#[derive(Clone, Debug)]
pub struct Frame {
    pub at: SystemTime,
    pub data: Vec<u8>,
}

impl Frame {
    pub fn kind(&self) -> Kind {
        classify(&self.data)
    }
}

/// A running tcpdump. Stop it with [`Capture::stop`]; if it is dropped instead, the lab
/// kills it with everything else.
pub struct Capture {
    proc: Proc,
    path: PathBuf,
    label: String,
}

pub(super) fn start(
    registry: &std::sync::Arc<super::process::Registry>,
    ns: &str,
    iface: &str,
    filter: &str,
    path: PathBuf,
) -> Result<Capture> {
    let path_s = path.to_string_lossy().into_owned();
    let mut argv = vec![
        "tcpdump",
        "-i",
        iface,
        "-n",
        "-U",
        "--immediate-mode",
        "-Z",
        "root",
        "-s",
        "512",
        "--time-stamp-precision",
        "nano",
        "-w",
        &path_s,
    ];
    if !filter.is_empty() {
        argv.push(filter);
    }
    let mut cmd = netns::nsenter(ns, &argv);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let label = format!("tcpdump {ns}/{iface}");
    let proc = registry.spawn(&label, cmd)?;
    let stderr = registry.take_stderr(proc.pid()).context("tcpdump stderr")?;
    // tcpdump says "listening on" once its socket is bound; frames after that are kept.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines();
        let mut said = Vec::new();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if line.contains("listening on") {
                let _ = tx.send(Ok(()));
                break;
            }
            said.push(line);
        }
        let _ = tx.send(Err(said.join("\n")));
        // Keep draining so tcpdump never blocks on a full pipe.
        for _ in lines {}
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(())) => Ok(Capture { proc, path, label }),
        Ok(Err(said)) => {
            let _ = proc.kill();
            bail!("{label} did not start: {said}")
        }
        Err(_) => {
            let _ = proc.kill();
            bail!("{label} not listening after 5 s")
        }
    }
}

impl Capture {
    /// Stops tcpdump cleanly (SIGINT flushes the file) and reads every frame back.
    pub fn stop(self) -> Result<Vec<Frame>> {
        let (_, clean) = self.proc.stop(Signal::SIGINT, Duration::from_secs(3))?;
        if !clean {
            eprintln!("lab: {} ignored SIGINT and was killed", self.label);
        }
        read_pcap(&self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads a classic pcap file (either byte order, micro- or nanosecond timestamps).
pub fn read_pcap(path: &Path) -> Result<Vec<Frame>> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    parse_pcap(&bytes).with_context(|| format!("parse {}", path.display()))
}

pub fn parse_pcap(bytes: &[u8]) -> Result<Vec<Frame>> {
    if bytes.len() < 24 {
        bail!("{} bytes: shorter than a pcap header", bytes.len());
    }
    let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let (le, nanos) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        m => bail!("not a pcap file (magic {m:#010x})"),
    };
    let u32_at = |b: &[u8], i: usize| {
        let a: [u8; 4] = b[i..i + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let linktype = u32_at(bytes, 20);
    if linktype != 1 {
        bail!("link type {linktype}, expected Ethernet (1)");
    }
    let mut frames = Vec::new();
    let mut i = 24;
    // A capture killed mid-write may end in a partial record: keep what is whole.
    while i + 16 <= bytes.len() {
        let secs = u32_at(bytes, i) as u64;
        let frac = u32_at(bytes, i + 4) as u64;
        let incl = u32_at(bytes, i + 8) as usize;
        if i + 16 + incl > bytes.len() {
            break;
        }
        let nanos = if nanos { frac } else { frac * 1000 };
        frames.push(Frame {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos),
            data: bytes[i + 16..i + 16 + incl].to_vec(),
        });
        i += 16 + incl;
    }
    Ok(frames)
}

/// What a frame is, as far as VRRP tests are concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    ArpRequest {
        sender_mac: Mac,
        sender_ip: Ipv4Addr,
        target_ip: Ipv4Addr,
    },
    ArpReply {
        sender_mac: Mac,
        sender_ip: Ipv4Addr,
        target_mac: Mac,
        target_ip: Ipv4Addr,
    },
    Vrrp {
        src_mac: Mac,
        src: IpAddr,
        ttl: u8,
        version: u8,
        vrid: u8,
        priority: u8,
        /// v3: centiseconds; v2: seconds.
        interval: u16,
        addrs: Vec<IpAddr>,
    },
    EchoRequest {
        src: IpAddr,
        dst: IpAddr,
        id: u16,
        seq: u16,
    },
    EchoReply {
        src_mac: Mac,
        dst_mac: Mac,
        src: IpAddr,
        dst: IpAddr,
        id: u16,
        seq: u16,
    },
    NeighborSolicit {
        src: Ipv6Addr,
        target: Ipv6Addr,
        source_mac: Option<Mac>,
    },
    NeighborAdvert {
        src_mac: Mac,
        dst_mac: Mac,
        src: Ipv6Addr,
        target: Ipv6Addr,
        target_mac: Option<Mac>,
    },
    Other,
}

fn mac_at(b: &[u8], i: usize) -> Option<Mac> {
    b.get(i..i + 6)?.try_into().ok()
}

fn v4_at(b: &[u8], i: usize) -> Option<Ipv4Addr> {
    let a: [u8; 4] = b.get(i..i + 4)?.try_into().ok()?;
    Some(a.into())
}

fn v6_at(b: &[u8], i: usize) -> Option<Ipv6Addr> {
    let a: [u8; 16] = b.get(i..i + 16)?.try_into().ok()?;
    Some(a.into())
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

/// Classifies an Ethernet frame (untagged). Anything malformed is `Other`.
pub fn classify(f: &[u8]) -> Kind {
    classify_opt(f).unwrap_or(Kind::Other)
}

fn classify_opt(f: &[u8]) -> Option<Kind> {
    let dst_mac = mac_at(f, 0)?;
    let src_mac = mac_at(f, 6)?;
    let l3 = f.get(14..)?;
    match u16_at(f, 12)? {
        0x0806 => {
            if u16_at(l3, 0)? != 1 || u16_at(l3, 2)? != 0x0800 || l3.get(4..6)? != [6, 4] {
                return None;
            }
            let sender_mac = mac_at(l3, 8)?;
            let sender_ip = v4_at(l3, 14)?;
            let target_mac = mac_at(l3, 18)?;
            let target_ip = v4_at(l3, 24)?;
            match u16_at(l3, 6)? {
                1 => Some(Kind::ArpRequest {
                    sender_mac,
                    sender_ip,
                    target_ip,
                }),
                2 => Some(Kind::ArpReply {
                    sender_mac,
                    sender_ip,
                    target_mac,
                    target_ip,
                }),
                _ => None,
            }
        }
        0x0800 => {
            if l3.first()? >> 4 != 4 {
                return None;
            }
            let ihl = (*l3.first()? & 0x0f) as usize * 4;
            let total = (u16_at(l3, 2)? as usize).min(l3.len());
            let ttl = *l3.get(8)?;
            let proto = *l3.get(9)?;
            let src = IpAddr::V4(v4_at(l3, 12)?);
            let dst = IpAddr::V4(v4_at(l3, 16)?);
            let l4 = l3.get(ihl..total)?;
            match proto {
                112 => vrrp(l4, src_mac, src, ttl, false),
                1 => {
                    let (id, seq) = (u16_at(l4, 4)?, u16_at(l4, 6)?);
                    match *l4.first()? {
                        0 => Some(Kind::EchoReply {
                            src_mac,
                            dst_mac,
                            src,
                            dst,
                            id,
                            seq,
                        }),
                        8 => Some(Kind::EchoRequest { src, dst, id, seq }),
                        _ => None,
                    }
                }
                _ => None,
            }
        }
        0x86dd => {
            let plen = u16_at(l3, 4)? as usize;
            let next = *l3.get(6)?;
            let hop = *l3.get(7)?;
            let src6 = v6_at(l3, 8)?;
            let dst6 = v6_at(l3, 24)?;
            let l4 = l3.get(40..(40 + plen).min(l3.len()))?;
            match next {
                112 => vrrp(l4, src_mac, IpAddr::V6(src6), hop, true),
                58 => icmpv6(l4, src_mac, dst_mac, src6, dst6),
                _ => None,
            }
        }
        _ => None,
    }
}

fn vrrp(p: &[u8], src_mac: Mac, src: IpAddr, ttl: u8, v6: bool) -> Option<Kind> {
    let version = p.first()? >> 4;
    let vrid = *p.get(1)?;
    let priority = *p.get(2)?;
    let count = *p.get(3)? as usize;
    let interval = match version {
        3 => u16_at(p, 4)? & 0x0fff,
        _ => *p.get(5)? as u16,
    };
    let step = if v6 { 16 } else { 4 };
    let addrs = (0..count)
        .map(|k| {
            let at = 8 + k * step;
            if v6 {
                v6_at(p, at).map(IpAddr::V6)
            } else {
                v4_at(p, at).map(IpAddr::V4)
            }
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Kind::Vrrp {
        src_mac,
        src,
        ttl,
        version,
        vrid,
        priority,
        interval,
        addrs,
    })
}

/// The link-layer address option of type `want` in an ND message's options.
fn nd_option(mut opts: &[u8], want: u8) -> Option<Mac> {
    while opts.len() >= 8 {
        let len = opts[1] as usize * 8;
        if len == 0 || len > opts.len() {
            return None;
        }
        if opts[0] == want {
            return mac_at(opts, 2);
        }
        opts = &opts[len..];
    }
    None
}

fn icmpv6(p: &[u8], src_mac: Mac, dst_mac: Mac, src: Ipv6Addr, dst: Ipv6Addr) -> Option<Kind> {
    match *p.first()? {
        129 => Some(Kind::EchoReply {
            src_mac,
            dst_mac,
            src: src.into(),
            dst: dst.into(),
            id: u16_at(p, 4)?,
            seq: u16_at(p, 6)?,
        }),
        128 => Some(Kind::EchoRequest {
            src: src.into(),
            dst: dst.into(),
            id: u16_at(p, 4)?,
            seq: u16_at(p, 6)?,
        }),
        135 => Some(Kind::NeighborSolicit {
            src,
            target: v6_at(p, 8)?,
            source_mac: nd_option(p.get(24..)?, 1),
        }),
        136 => Some(Kind::NeighborAdvert {
            src_mac,
            dst_mac,
            src,
            target: v6_at(p, 8)?,
            target_mac: nd_option(p.get(24..)?, 2),
        }),
        _ => None,
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_str(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames;

    #[test]
    fn classifies_an_arp_request() {
        let f = frames::arp_request([2, 0, 0, 0, 0, 1], [192, 0, 2, 100], [192, 0, 2, 1]);
        assert_eq!(
            classify(&f),
            Kind::ArpRequest {
                sender_mac: [2, 0, 0, 0, 0, 1],
                sender_ip: Ipv4Addr::new(192, 0, 2, 100),
                target_ip: Ipv4Addr::new(192, 0, 2, 1),
            }
        );
    }

    #[test]
    fn classifies_a_neighbor_solicitation_with_its_source_mac() {
        let target: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let src: Ipv6Addr = "2001:db8::101".parse().unwrap();
        let f = frames::neighbor_solicitation([2, 0, 0, 0, 0, 9], src.octets(), target.octets());
        assert_eq!(
            classify(&f),
            Kind::NeighborSolicit {
                src,
                target,
                source_mac: Some([2, 0, 0, 0, 0, 9]),
            }
        );
    }

    #[test]
    fn reads_a_nanosecond_pcap_and_keeps_whole_records_only() {
        let mut b = Vec::new();
        b.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        b.extend_from_slice(&[2, 0, 4, 0]);
        b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(&1u32.to_le_bytes());
        for (secs, nanos) in [(10u32, 5u32), (11, 6)] {
            b.extend_from_slice(&secs.to_le_bytes());
            b.extend_from_slice(&nanos.to_le_bytes());
            b.extend_from_slice(&3u32.to_le_bytes());
            b.extend_from_slice(&3u32.to_le_bytes());
            b.extend_from_slice(&[1, 2, 3]);
        }
        b.truncate(b.len() - 1);
        let frames = parse_pcap(&b).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].at, SystemTime::UNIX_EPOCH + Duration::new(10, 5));
        assert_eq!(frames[0].data, [1, 2, 3]);
    }
}
