//! ucarp's command line read as its `getopt_long` reads it (see `import::ucarp`).

use std::net::Ipv4Addr;

use crate::import::report::{Loc, Log};

/// One of ucarp's options: its long name, short letter (`None`: long only, like
/// `--mcastip`, whose `m` ucarp 1.5.2 leaves out of its short options) and whether it
/// takes a value.
pub(super) struct Opt {
    pub(super) long: &'static str,
    pub(super) short: Option<char>,
    pub(super) value: bool,
}

/// ucarp 1.5.2's options (`src/ucarp_p.h`).
pub(super) const OPTIONS: &[Opt] = &[
    opt("interface", Some('i'), true),
    opt("srcip", Some('s'), true),
    opt("mcastip", None, true),
    opt("vhid", Some('v'), true),
    opt("pass", Some('p'), true),
    opt("preempt", Some('P'), false),
    opt("neutral", Some('n'), false),
    opt("addr", Some('a'), true),
    opt("help", Some('h'), false),
    opt("advbase", Some('b'), true),
    opt("advskew", Some('k'), true),
    opt("upscript", Some('u'), true),
    opt("downscript", Some('d'), true),
    opt("deadratio", Some('r'), true),
    opt("debug", Some('D'), false),
    opt("shutdown", Some('z'), false),
    opt("facility", Some('f'), true),
    opt("daemonize", Some('B'), false),
    opt("ignoreifstate", Some('S'), false),
    opt("nomcast", Some('M'), false),
    opt("passfile", Some('o'), true),
    opt("xparam", Some('x'), true),
];

const fn opt(long: &'static str, short: Option<char>, value: bool) -> Opt {
    Opt { long, short, value }
}

/// What one command line sets, after the last-wins rule.
#[derive(Debug, Default)]
pub(super) struct Settings {
    pub(super) interface: Option<String>,
    pub(super) srcip: Option<Ipv4Addr>,
    pub(super) mcastip: Option<Ipv4Addr>,
    pub(super) vhid: Option<u8>,
    pub(super) pass: Option<Secret>,
    pub(super) preempt: bool,
    pub(super) neutral: bool,
    pub(super) addr: Option<Ipv4Addr>,
    pub(super) advbase: Option<u8>,
    pub(super) advskew: Option<u8>,
    pub(super) upscript: Option<String>,
    pub(super) downscript: Option<String>,
    pub(super) dead_ratio: Option<u64>,
    pub(super) shutdown: bool,
    pub(super) ignoreifstate: bool,
    pub(super) nomcast: bool,
    pub(super) xparam: Option<String>,
}

/// Where the password comes from: `--pass` (its text) or `--passfile` (a path ucarp
/// reads the first line of).
#[derive(Debug, Clone)]
pub(super) enum Secret {
    Pass(String),
    File(String),
}

/// Applies getopt_long's reading of `words` (the first being the program name when it
/// is not an option). `None` after an error.
pub(super) fn read(loc: &Loc, words: &[String], log: &mut Log) -> Option<Settings> {
    let mut s = Settings::default();
    let mut ignored = Vec::new();
    let mut i = usize::from(words.first().is_some_and(|w| !w.starts_with('-')));
    let errors_before = log.errors.len();
    while i < words.len() {
        let w = &words[i];
        i += 1;
        if w == "--" {
            ignored.extend(words[i..].iter().cloned());
            break;
        }
        if let Some(body) = w.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (body, None),
            };
            let Some(o) = long_option(loc, name, log) else {
                continue;
            };
            let value = match (o.value, inline) {
                (false, Some(_)) => {
                    log.error(
                        loc,
                        format!("--{}: takes no value (ucarp would refuse it)", o.long),
                    );
                    continue;
                }
                (false, None) => None,
                (true, Some(v)) => Some(v),
                (true, None) => match words.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(v.clone())
                    }
                    None => {
                        log.error(loc, format!("--{}: needs a value", o.long));
                        continue;
                    }
                },
            };
            apply(loc, o, value, &mut s, log);
        } else if w.len() > 1 && w.starts_with('-') {
            let letters: Vec<char> = w[1..].chars().collect();
            let mut j = 0;
            while j < letters.len() {
                let c = letters[j];
                j += 1;
                let Some(o) = OPTIONS.iter().find(|o| o.short == Some(c)) else {
                    log.error(
                        loc,
                        format!(
                            "-{c}: not an option of ucarp 1.5.2 (it would print its usage and exit)"
                        ),
                    );
                    continue;
                };
                let value = if !o.value {
                    None
                } else if j < letters.len() {
                    let v: String = letters[j..].iter().collect();
                    j = letters.len();
                    Some(v)
                } else if let Some(v) = words.get(i) {
                    i += 1;
                    Some(v.clone())
                } else {
                    log.error(loc, format!("-{c}: needs a value"));
                    continue;
                };
                apply(loc, o, value, &mut s, log);
            }
        } else {
            ignored.push(w.clone());
        }
    }
    if !ignored.is_empty() {
        log.note(
            loc,
            &ignored.join(" "),
            "not an option: ucarp ignores it, and so does the import",
        );
    }
    (log.errors.len() == errors_before).then_some(s)
}

/// The option `--name` stands for: the exact one, or the only one it abbreviates.
fn long_option(loc: &Loc, name: &str, log: &mut Log) -> Option<&'static Opt> {
    if let Some(o) = OPTIONS.iter().find(|o| o.long == name) {
        return Some(o);
    }
    let candidates: Vec<&Opt> = OPTIONS
        .iter()
        .filter(|o| !name.is_empty() && o.long.starts_with(name))
        .collect();
    match candidates.as_slice() {
        [o] => Some(o),
        [] => {
            log.error(
                loc,
                format!(
                    "--{name}: not an option of ucarp 1.5.2 (it would print its usage and exit)"
                ),
            );
            None
        }
        many => {
            let names: Vec<String> = many.iter().map(|o| format!("--{}", o.long)).collect();
            log.error(
                loc,
                format!("--{name}: ambiguous, could be {}", names.join(" or ")),
            );
            None
        }
    }
}

fn apply(loc: &Loc, o: &Opt, value: Option<String>, s: &mut Settings, log: &mut Log) {
    let key = format!("--{}", o.long);
    let v = value.unwrap_or_default();
    match o.long {
        "interface" => s.interface = Some(v),
        "srcip" => s.srcip = address(loc, &key, &v, log),
        "mcastip" => s.mcastip = address(loc, &key, &v, log),
        "addr" => s.addr = address(loc, &key, &v, log),
        "vhid" => {
            let n = strtoul(&v);
            // ucarp checks the value before keeping its low byte.
            if n.value > 255 || n.signed < 1 {
                log.error(loc, format!("{key} {v}: ucarp takes 1 to 255"));
            } else {
                number_note(loc, &key, &v, &n, log);
                s.vhid = Some(n.value as u8);
            }
        }
        "pass" => s.pass = Some(Secret::Pass(v)),
        "passfile" => s.pass = Some(Secret::File(v)),
        "preempt" => s.preempt = true,
        "neutral" => s.neutral = true,
        "advbase" => s.advbase = Some(low_byte(loc, &key, &v, log)),
        "advskew" => s.advskew = Some(low_byte(loc, &key, &v, log)),
        "upscript" => s.upscript = Some(v),
        "downscript" => s.downscript = Some(v),
        "deadratio" => {
            let n = strtoul(&v);
            number_note(loc, &key, &v, &n, log);
            // An unsigned int in ucarp.
            s.dead_ratio = Some(n.value & u64::from(u32::MAX));
        }
        "shutdown" => s.shutdown = true,
        "ignoreifstate" => s.ignoreifstate = true,
        "nomcast" => s.nomcast = true,
        "xparam" => s.xparam = Some(v),
        "help" => log.error(
            loc,
            format!("{key}: ucarp would print its usage and exit, managing nothing"),
        ),
        "debug" | "daemonize" | "facility" => log.note(
            loc,
            &key,
            "how ucarp runs and logs: vipd runs under systemd and logs to the journal \
             (`vipd run --log-format`)",
        ),
        other => unreachable!("option --{other} has no handler"),
    }
}

/// What C's `strtoul(s, NULL, 0)` returns, and whether it read all of `s`.
struct Number {
    value: u64,
    /// As `strtol` reads it (ucarp checks the VHID with both).
    signed: i64,
    whole: bool,
}

fn strtoul(s: &str) -> Number {
    let t = s.trim_start();
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.starts_with('0') {
        (8, t)
    } else {
        (10, t)
    };
    let len = digits.chars().take_while(|c| c.is_digit(radix)).count();
    // Saturates like strtoul on overflow (ERANGE, ULONG_MAX).
    let magnitude =
        u64::from_str_radix(&digits[..len], radix).unwrap_or(if len == 0 { 0 } else { u64::MAX });
    let value = if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    let signed = i64::try_from(magnitude).map_or(if negative { i64::MIN } else { i64::MAX }, |m| {
        if negative { -m } else { m }
    });
    Number {
        value,
        signed,
        whole: len > 0 && len == digits.len(),
    }
}

fn number_note(loc: &Loc, key: &str, raw: &str, n: &Number, log: &mut Log) {
    if !n.whole {
        log.note(
            loc,
            key,
            format!("ucarp reads {raw:?} as {} and so does the import", n.value),
        );
    }
}

/// An option ucarp stores in a byte: `strtoul` then the low 8 bits.
fn low_byte(loc: &Loc, key: &str, raw: &str, log: &mut Log) -> u8 {
    let n = strtoul(raw);
    number_note(loc, key, raw, &n, log);
    let byte = (n.value & 0xff) as u8;
    if n.value > 0xff {
        log.note(
            loc,
            key,
            format!("ucarp keeps the low byte of {}: {byte}", n.value),
        );
    }
    byte
}

fn address(loc: &Loc, key: &str, raw: &str, log: &mut Log) -> Option<Ipv4Addr> {
    // inet_pton(AF_INET): four decimal parts, nothing else.
    match raw.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            log.error(
                loc,
                format!("{key} {raw:?}: not an IPv4 address (ucarp refuses it)"),
            );
            None
        }
    }
}
