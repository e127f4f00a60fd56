//! The Internet checksum (RFC 1071), for everything vipd builds or checks itself: VRRP
//! messages (with or without a pseudo-header), IPv4 headers, Neighbor Advertisements.

/// Internet checksum (RFC 1071) over the concatenation of `parts`; the value to store.
pub fn inet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u16::from_be_bytes([hi, b]) as u64,
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u16::from_be_bytes([hi, 0]) as u64;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_odd_length_pads_with_zero() {
        assert_eq!(inet_checksum(&[&[0x01]]), !0x0100);
        assert_eq!(inet_checksum(&[&[0x01], &[0x02]]), !0x0102);
    }
}
