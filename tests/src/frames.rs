//! Building test frames byte by byte.

/// Decodes a hex string (whitespace ignored) into bytes.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// An Ethernet header: destination, source, ethertype.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// Inserts one 802.1Q tag with `vid` after the MAC addresses.
pub fn vlan_tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&0x8100u16.to_be_bytes());
    f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// An ARP request (Ethernet broadcast) asking who has `target`.
pub fn arp_request(sender_mac: [u8; 6], sender_ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = ethernet([0xff; 6], sender_mac, 0x0806);
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
    f.extend_from_slice(&sender_mac);
    f.extend_from_slice(&sender_ip);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f
}

/// RFC 1071 checksum of `data` (the value to store in a checksum field).
pub fn inet_checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in chunks {
        let mut it = chunk.chunks(2);
        for w in &mut it {
            let v = if w.len() == 2 {
                u16::from_be_bytes([w[0], w[1]])
            } else {
                u16::from_be_bytes([w[0], 0])
            };
            sum += v as u32;
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ARP reply from `sender` to `target`.
pub fn arp_reply(
    sender_mac: [u8; 6],
    sender_ip: [u8; 4],
    target_mac: [u8; 6],
    target_ip: [u8; 4],
) -> Vec<u8> {
    let mut f = ethernet(target_mac, sender_mac, 0x0806);
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02]);
    f.extend_from_slice(&sender_mac);
    f.extend_from_slice(&sender_ip);
    f.extend_from_slice(&target_mac);
    f.extend_from_slice(&target_ip);
    f
}

/// A gratuitous ARP request announcing `ip` at `mac`.
pub fn garp(mac: [u8; 6], ip: [u8; 4]) -> Vec<u8> {
    let mut f = arp_request(mac, ip, ip);
    f[32..38].copy_from_slice(&[0xff; 6]);
    f
}

/// The solicited-node multicast address of `target` (RFC 4291 §2.7.1).
pub fn solicited_node(target: [u8; 16]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xff;
    a[1] = 0x02;
    a[11] = 0x01;
    a[12] = 0xff;
    a[13..].copy_from_slice(&target[13..]);
    a
}

/// An IPv6 packet in an Ethernet frame, hop limit given.
pub fn ipv6(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 16],
    dst: [u8; 16],
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = ethernet(dst_mac, src_mac, 0x86dd);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.push(next_header);
    f.push(hop_limit);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(payload);
    f
}

/// Upper-layer checksum over the IPv6 pseudo-header (RFC 8200 §8.1) and `body`
/// (checksum field zeroed).
pub fn ipv6_checksum(src: &[u8; 16], dst: &[u8; 16], next_header: u8, body: &[u8]) -> u16 {
    let len = (body.len() as u32).to_be_bytes();
    inet_checksum(&[src, dst, &len, &[0, 0, 0, next_header], body])
}

/// ICMPv6 checksum over the IPv6 pseudo-header and `body` (checksum field zeroed).
pub fn icmpv6_checksum(src: &[u8; 16], dst: &[u8; 16], body: &[u8]) -> u16 {
    ipv6_checksum(src, dst, 58, body)
}

/// A Neighbor Solicitation for `target` from `src` (`::` makes it a DAD probe, which
/// carries no source link-layer option and goes to the solicited-node group).
pub fn neighbor_solicitation(src_mac: [u8; 6], src: [u8; 16], target: [u8; 16]) -> Vec<u8> {
    let sllao = (src != [0; 16]).then_some(src_mac);
    neighbor_solicitation_with(src_mac, src, target, sllao)
}

/// A Neighbor Solicitation sent from Ethernet address `src_mac`, carrying `sllao` as its
/// source link-layer address option if given.
pub fn neighbor_solicitation_with(
    src_mac: [u8; 6],
    src: [u8; 16],
    target: [u8; 16],
    sllao: Option<[u8; 6]>,
) -> Vec<u8> {
    let dst = solicited_node(target);
    let mut body = vec![135, 0, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&target);
    if let Some(mac) = sllao {
        body.extend_from_slice(&[1, 1]);
        body.extend_from_slice(&mac);
    }
    let c = icmpv6_checksum(&src, &dst, &body);
    body[2..4].copy_from_slice(&c.to_be_bytes());
    let dst_mac = [0x33, 0x33, dst[12], dst[13], dst[14], dst[15]];
    ipv6(src_mac, dst_mac, src, dst, 58, 255, &body)
}

/// An IPv6 extension header, as [`with_ipv6_ext`] inserts it (8 bytes each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ext {
    /// Hop-by-hop options: one PadN option.
    HopByHop,
    /// Destination options: one PadN option.
    DestOptions,
    /// A type 0 routing header with no addresses.
    Routing { segments_left: u8 },
    /// `offset` in 8-octet units; `more` is the M flag. Offset 0 without M is an atomic
    /// fragment.
    Fragment { offset: u16, more: bool },
}

impl Ext {
    pub fn number(self) -> u8 {
        match self {
            Ext::HopByHop => 0,
            Ext::Routing { .. } => 43,
            Ext::Fragment { .. } => 44,
            Ext::DestOptions => 60,
        }
    }

    fn bytes(self, next: u8) -> [u8; 8] {
        match self {
            Ext::HopByHop | Ext::DestOptions => [next, 0, 1, 4, 0, 0, 0, 0],
            Ext::Routing { segments_left } => [next, 0, 0, segments_left, 0, 0, 0, 0],
            Ext::Fragment { offset, more } => {
                let v = (offset << 3) | more as u16;
                let [hi, lo] = v.to_be_bytes();
                [next, 0, hi, lo, 0x12, 0x34, 0x56, 0x78]
            }
        }
    }
}

/// `frame` (IPv6, untagged or with one VLAN tag) with `exts` inserted between the IPv6
/// header and the upper layer, in order: Next Header fields chained and the payload
/// length grown. The upper layer is unchanged, and so is its checksum, which covers only
/// the upper-layer length and the addresses (no routing header here has segments left
/// that would change the final destination).
pub fn with_ipv6_ext(frame: &[u8], exts: &[Ext]) -> Vec<u8> {
    let l3 = if frame[12..14] == [0x81, 0x00] {
        18
    } else {
        14
    };
    let upper = frame[l3 + 6];
    let mut chain = Vec::new();
    for (i, e) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map_or(upper, |n| n.number());
        chain.extend_from_slice(&e.bytes(next));
    }
    let mut f = frame[..l3 + 40].to_vec();
    f.extend_from_slice(&chain);
    f.extend_from_slice(&frame[l3 + 40..]);
    if let Some(first) = exts.first() {
        f[l3 + 6] = first.number();
    }
    let payload = u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]) + chain.len() as u16;
    f[l3 + 4..l3 + 6].copy_from_slice(&payload.to_be_bytes());
    f
}

/// Parses a `.hex` vector file: `NAME HEX` per line, `#` comments.
pub fn vectors(text: &str) -> Vec<(String, Vec<u8>)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, h) = l.split_once(' ').expect("NAME HEX");
            (name.to_owned(), hex(h))
        })
        .collect()
}

/// The keepalived 2.2.7 captures (`tests/vectors`, copied from the project's shared
/// vectors so a clone anywhere has them).
pub fn keepalived_vectors() -> Vec<(String, Vec<u8>)> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/keepalived-2.2.7.hex");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    vectors(&text)
}

/// The ucarp 1.5.2 captures (`tests/vectors/ucarp-1.5.2.hex`, written by the
/// `lab_carp` test).
pub fn ucarp_vectors() -> Vec<(String, Vec<u8>)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/ucarp-1.5.2.hex");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    vectors(&text)
}

/// An ICMP (or ICMPv6, `v6`) echo request message without IP header; the ICMPv4 checksum
/// is filled in, the ICMPv6 one is left to the kernel (raw ICMPv6 sockets compute it).
pub fn echo_request(v6: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    if !v6 {
        let sum = inet_checksum(&[&m]);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    m
}

/// An IPv4 packet without options in an Ethernet frame, header checksum filled in.
pub fn ipv4(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    protocol: u8,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0x12, 0x34, 0, 0, ttl, protocol, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = inet_checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = ethernet(dst_mac, src_mac, 0x0800);
    f.extend_from_slice(&ip);
    f.extend_from_slice(payload);
    f
}

/// A UDP datagram (header and payload) from `src` to `dst`, both IPv4 (4 bytes) or both
/// IPv6 (16 bytes), its checksum computed over the pseudo-header.
pub fn udp(src: &[u8], dst: &[u8], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut d = Vec::with_capacity(len as usize);
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let c = if src.len() == 4 {
        inet_checksum(&[src, dst, &[0, 17], &len.to_be_bytes(), &d])
    } else {
        inet_checksum(&[src, dst, &(len as u32).to_be_bytes(), &[0, 0, 0, 17], &d])
    };
    // RFC 768: a computed zero is sent as all ones (zero means "no checksum").
    let c = if c == 0 { 0xffff } else { c };
    d[6..8].copy_from_slice(&c.to_be_bytes());
    d
}

/// TCP flag bits for [`tcp`].
pub const TCP_SYN: u8 = 0x02;
pub const TCP_ACK: u8 = 0x10;

/// A TCP segment (20-byte header, no options, and payload) from `src` to `dst`, both IPv4
/// (4 bytes) or both IPv6 (16 bytes), its checksum computed over the pseudo-header.
pub fn tcp(src: &[u8], dst: &[u8], sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(20 + payload.len());
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    d.extend_from_slice(&(if flags & TCP_ACK != 0 { 1u32 } else { 0 }).to_be_bytes());
    d.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    d.extend_from_slice(payload);
    let len = d.len() as u16;
    let c = if src.len() == 4 {
        inet_checksum(&[src, dst, &[0, 6], &len.to_be_bytes(), &d])
    } else {
        inet_checksum(&[src, dst, &(len as u32).to_be_bytes(), &[0, 0, 0, 6], &d])
    };
    d[16..18].copy_from_slice(&c.to_be_bytes());
    d
}
