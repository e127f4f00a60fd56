//! Reading keepalived's values (integers, decimal seconds, booleans, names) and making
//! vipd names of them (durations are written by `config/print.rs`).

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
