//! One ucarp command line's settings as a CARP `[[vrrp]]` table, and every difference
//! reported (see `import::ucarp`).

use std::net::Ipv4Addr;

use super::options::{OPTIONS, Secret, Settings};
use crate::config::print::{Table, Value};
use crate::import::report::{Loc, Log};

/// The longest password ucarp accepts (its key field is 20 bytes, NUL included).
const PASS_MAX: usize = 19;
/// ucarp's and the BSDs' default ratio of master-down time to advbase.
const DEFAULT_DEAD_RATIO: u64 = 3;

/// The `[[vrrp]]` table of one command line, or `None` after ucarp's own refusals.
pub(super) fn instance(
    loc: &Loc,
    words: &[String],
    s: &Settings,
    names: &mut Vec<String>,
    log: &mut Log,
) -> Option<Table> {
    let errors_before = log.errors.len();
    let missing = |log: &mut Log, what: &str, why: &str| {
        log.error(loc, format!("no {what}: {why}"));
    };
    if s.interface.as_deref().is_none_or(str::is_empty) {
        missing(
            log,
            "--interface",
            "ucarp would take the first device pcap finds; name the interface",
        );
    }
    if s.vhid.is_none() {
        missing(log, "--vhid", "ucarp refuses to start without one");
    }
    match &s.pass {
        None => missing(
            log,
            "--pass or --passfile",
            "ucarp refuses to start without one",
        ),
        Some(Secret::Pass(p)) if p.is_empty() => {
            log.error(loc, "--pass: empty (ucarp refuses to start)");
        }
        Some(Secret::Pass(p)) if p.len() > PASS_MAX => log.error(
            loc,
            format!("--pass: {} bytes, ucarp takes at most {PASS_MAX}", p.len()),
        ),
        Some(_) => {}
    }
    if s.srcip.is_none() {
        missing(log, "--srcip", "ucarp refuses to start without one");
    }
    if s.addr.is_none() {
        missing(log, "--addr", "ucarp refuses to start without one");
    }
    let advbase = s.advbase.unwrap_or(1);
    let advskew = s.advskew.unwrap_or(0);
    if advbase == 0 && advskew == 0 {
        log.error(loc, "--advbase 0 with --advskew 0: ucarp refuses to start");
    }
    if s.dead_ratio == Some(0) {
        log.error(loc, "--deadratio 0: ucarp refuses to start");
    }
    if log.errors.len() != errors_before {
        return None;
    }
    let (interface, vhid, addr) = (s.interface.clone()?, s.vhid?, s.addr?);

    let mut name = sanitize(&format!("carp-{interface}-{vhid}"));
    if names.contains(&name) {
        log.error(
            loc,
            format!("a second command line for VHID {vhid} on {interface}"),
        );
        return None;
    }
    names.push(name.clone());
    let mut t = Table::new("[[vrrp]]");
    t.comments.push(format!("from {loc}: {}", masked(words)));
    t.key("name", Value::str(std::mem::take(&mut name)));
    t.key("protocol", Value::str("carp"));
    t.key("interface", Value::str(&interface));
    t.key("vrid", Value::Int(i64::from(vhid)));
    let skew = if advskew == 255 {
        log.left_out(
            loc,
            "--advskew",
            "255 is the skew of a master bowing out in vipd (and the BSDs): written as 254",
        );
        254
    } else {
        advskew
    };
    t.comment(format!(
        "advskew {skew} is vipd priority {}",
        255 - u16::from(skew)
    ));
    t.key("advskew", Value::Int(i64::from(skew)));
    let base = if advbase == 0 {
        log.left_out(
            loc,
            "--advbase",
            "0 (advertising every advskew/256 s) is not supported by vipd: written as 1 s, \
             which changes the timing; set the same on every peer",
        );
        1
    } else {
        advbase
    };
    t.key("advert_interval", Value::str(format!("{base}s")));
    match s.pass.clone()? {
        Secret::Pass(p) => t.key("passphrase", Value::str(p)),
        Secret::File(path) => {
            t.comment("ucarp reads the password from the file's first line; so does vipd");
            t.key("passphrase_file", Value::str(path));
        }
    }
    t.key("preempt", Value::Bool(s.preempt));
    if let Some(r) = s.dead_ratio
        && r != DEFAULT_DEAD_RATIO
    {
        if r > 255 {
            log.left_out(
                loc,
                "--deadratio",
                format!("{r}: vipd takes 1 to 255; written as 255"),
            );
        }
        t.key("dead_ratio", Value::Int(r.min(255) as i64));
    }
    t.key("unicast_src_ip", Value::str(s.srcip?.to_string()));
    log.note(
        loc,
        "--addr",
        "written as a /32: ucarp leaves the prefix to its up script; give the VIP the \
         prefix your script adds",
    );
    t.key("vips", Value::strs(&[format!("{addr}/32")]));
    if let Some(m) = s.mcastip
        && m != Ipv4Addr::new(224, 0, 0, 18)
    {
        log.left_out(
            loc,
            "--mcastip",
            format!("{m}: vipd advertises to 224.0.0.18 only"),
        );
    }
    if s.nomcast {
        log.left_out(
            loc,
            "--nomcast",
            "ucarp sends its advertisements to the Ethernet broadcast address and joins no \
             group; vipd sends to 224.0.0.18's group address, which a --nomcast peer's NIC \
             may filter out",
        );
    }
    if s.ignoreifstate {
        log.note(
            loc,
            "--ignoreifstate",
            "written as dont_track_primary = true: the interface's link state does not \
             move the instance",
        );
        t.key("dont_track_primary", Value::Bool(true));
    }
    // ucarp runs a script as SCRIPT INTERFACE ADDRESS [XPARAM]: the hooks get the same
    // arguments, so the scripts run unchanged.
    let hook = |script: &str| {
        let mut argv = vec![script.to_owned(), interface.clone(), addr.to_string()];
        argv.extend(s.xparam.clone());
        Value::strs(&argv)
    };
    if let Some(up) = &s.upscript {
        log.note(
            loc,
            "--upscript",
            "run as notify_master with ucarp's arguments; vipd adds and announces the \
             address itself, so the script's own `ip addr add` and arping are no longer \
             needed (they fail or repeat harmlessly)",
        );
        t.key("notify_master", hook(up));
    }
    if let Some(down) = &s.downscript {
        t.key("notify_backup", hook(down));
        // ucarp runs its down script when the link goes too (it becomes backup then);
        // vipd's instance goes FAULT.
        t.key("notify_fault", hook(down));
        if s.neutral {
            log.left_out(
                loc,
                "--neutral",
                "vipd runs notify_backup when an instance starts as backup; ucarp --neutral \
                 does not run the down script then",
            );
        }
        if s.shutdown {
            log.note(
                loc,
                "--shutdown",
                "written as notify_stop: vipd runs it whenever it stops the instance, ucarp \
                 only when it was master",
            );
            t.key("notify_stop", hook(down));
        }
    } else if s.shutdown {
        log.note(loc, "--shutdown", "no --downscript to run at exit");
    }
    if s.xparam.is_some() && s.upscript.is_none() && s.downscript.is_none() {
        log.note(loc, "--xparam", "no script to pass it to");
    }
    Some(t)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect()
}

/// The command line as a comment, its password replaced.
fn masked(words: &[String]) -> String {
    let mut out = Vec::with_capacity(words.len());
    let mut hide_next = false;
    for w in words {
        if hide_next {
            out.push("***".to_owned());
            hide_next = false;
            continue;
        }
        if let Some(body) = w.strip_prefix("--") {
            let (name, has_value) = match body.split_once('=') {
                Some((n, _)) => (n, true),
                None => (body, false),
            };
            // Only `--pass` itself: its abbreviations are ambiguous with `--passfile`.
            if name == "pass" {
                if has_value {
                    out.push(format!("--{name}=***"));
                } else {
                    out.push(w.clone());
                    hide_next = true;
                }
                continue;
            }
        } else if let Some(letters) = w.strip_prefix('-')
            && let Some(at) = letters.find('p')
            && letters[..at]
                .chars()
                .all(|c| OPTIONS.iter().any(|o| o.short == Some(c) && !o.value))
        {
            if at + 1 < letters.len() {
                out.push(format!("-{}***", &letters[..=at]));
            } else {
                out.push(w.clone());
                hide_next = true;
            }
            continue;
        }
        out.push(shell_word(w));
    }
    out.join(" ")
}

/// `w` as a shell would need it written: as it is when it holds nothing a shell acts on,
/// in single quotes otherwise.
fn shell_word(w: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "=,:/._-@+%^".contains(c);
    if !w.is_empty() && w.chars().all(plain) {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}
