//! Reading keepalived's values (integers, decimal seconds, booleans, names, addresses and
//! prefixes) and making vipd names of them (durations are written by `config/print.rs`).

use std::net::IpAddr;
use std::time::Duration;

/// keepalived's `<TIMER>`: seconds, with a fraction (resolution one microsecond).
pub(crate) fn seconds(text: &str) -> Option<Duration> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !all_digits(whole) || !all_digits(frac) {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut micros: u64 = 0;
    for (i, d) in frac.chars().take(6).enumerate() {
        micros += u64::from(d.to_digit(10)?) * 10u64.pow(5 - i as u32);
    }
    Some(Duration::from_secs(secs) + Duration::from_micros(micros))
}

/// A decimal integer in `range`.
pub(crate) fn int_in(text: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
    text.parse::<i64>().ok().filter(|v| range.contains(v))
}

/// keepalived's `<BOOL>`; a keyword written alone means true.
pub(crate) fn boolean(arg: Option<&str>) -> Option<bool> {
    match arg {
        None => Some(true),
        Some("true" | "on" | "yes") => Some(true),
        Some("false" | "off" | "no") => Some(false),
        Some(_) => None,
    }
}

/// Whether vipd takes `name` as an instance, group or router name.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `name` made into a vipd name: other characters become `_`, at most 32 of them.
pub(crate) fn sanitize_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    if out.is_empty() || out == "." || out == ".." {
        out = "unnamed".to_owned();
    }
    out
}

/// Whether the kernel takes `name` as a device name (`dev_valid_name`).
pub(crate) fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// `ADDR[/LEN]` as keepalived reads it: the family from a ':' in it, a missing length
/// meaning a host prefix. Also says whether a length was written.
pub(crate) fn address(text: &str) -> Result<(IpAddr, u8, bool), String> {
    let (addr_text, len_text) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len_text {
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("{text:?}: the prefix length must be 0..={max}"))?,
        None => max,
    };
    Ok((addr, len, len_text.is_some()))
}

/// Whether an address can be a VIP at all.
pub(crate) fn usable(addr: &IpAddr) -> Result<(), &'static str> {
    if addr.is_unspecified() {
        Err("is the unspecified address")
    } else if addr.is_multicast() {
        Err("is a multicast address")
    } else if addr.is_loopback() {
        Err("is a loopback address")
    } else {
        Ok(())
    }
}

/// A route's or rule's destination / selector: `None` for everything (`default`, `any`,
/// `all`, `default6`), with whether it is IPv6 (`family` when the word does not say).
pub(crate) fn prefix(text: &str, family: Option<bool>) -> Result<(Option<String>, bool), String> {
    if matches!(text, "default" | "any" | "all") {
        return Ok((None, family.unwrap_or(false)));
    }
    if text == "default6" {
        return Ok((None, true));
    }
    let (addr, len, _) = address(text)?;
    let v6 = addr.is_ipv6();
    let net: ipnet::IpNet = ipnet::IpNet::new(addr, len).map_err(|e| e.to_string())?;
    if net.trunc() != net {
        return Err(format!(
            "{text:?} has host bits set; write the prefix {}",
            net.trunc()
        ));
    }
    Ok((Some(text.to_owned()), v6))
}

/// A number read with C's `strtoul(.., 0)`: 0x hex, leading 0 octal.
pub(crate) fn c_number(text: &str) -> Option<u32> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if text.len() > 1 && text.starts_with('0') {
        u32::from_str_radix(&text[1..], 8).ok()
    } else {
        text.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_take_fractions() {
        assert_eq!(seconds("1"), Some(Duration::from_secs(1)));
        assert_eq!(seconds("0.25"), Some(Duration::from_millis(250)));
        assert_eq!(seconds("2.718281"), Some(Duration::from_micros(2_718_281)));
        assert_eq!(seconds(".5"), Some(Duration::from_millis(500)));
        assert_eq!(seconds("abc"), None);
        assert_eq!(seconds("-1"), None);
        assert_eq!(seconds(""), None);
    }

    #[test]
    fn names_are_made_valid() {
        assert!(valid_name("VI_1"));
        assert!(!valid_name("VI 1"));
        assert_eq!(sanitize_name("gw/inside"), "gw_inside");
        assert_eq!(sanitize_name(&"x".repeat(40)).len(), 32);
    }
}
