//! The effective configuration, printed in the format it is read from, with every default
//! written out: what `vipd check` shows, and what an operator can copy back into a file.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::duration;
use super::model::{Config, Instance, TrackFile, TrackInterface, TrackScript};

/// A TOML basic string. Written by hand rather than through `toml`'s printer so the output
/// is always one line, which keeps inline tables valid and the listing greppable.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn path(p: &Path) -> String {
    quote(&p.to_string_lossy())
}

fn dur(d: Duration) -> String {
    quote(&duration::format(d))
}

fn list<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    let shown: Vec<String> = items.iter().map(show).collect();
    format!("[{}]", shown.join(", "))
}

fn track_interface(t: &TrackInterface) -> String {
    format!("{{ name = {}, weight = {} }}", quote(&t.name), t.weight)
}

fn track_script(t: &TrackScript) -> String {
    let command = match t.command.as_slice() {
        [program] => quote(program),
        argv => list(argv, |a| quote(a)),
    };
    format!(
        "{{ command = {command}, interval = {}, timeout = {}, weight = {}, rise = {}, fall = {} }}",
        dur(t.interval),
        dur(t.timeout),
        t.weight,
        t.rise,
        t.fall
    )
}

fn track_file(t: &TrackFile) -> String {
    format!("{{ path = {}, weight = {} }}", path(&t.path), t.weight)
}

fn instance(out: &mut String, i: &Instance) {
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "{key} = {value}");
    };
    line("name", quote(&i.name));
    line("interface", quote(&i.interface));
    line("vrid", i.vrid.to_string());
    line("priority", i.priority.to_string());
    line("version", i.version.number().to_string());
    line("advert_interval", dur(i.advert_interval));
    line("preempt", i.preempt.to_string());
    line("preempt_delay", dur(i.preempt_delay));
    line("accept", i.accept.to_string());
    line("vmac", i.vmac.to_string());
    line("vips", list(&i.vips, |v| quote(&v.to_string())));
    line(
        "unicast_peers",
        list(&i.unicast_peers, |p| quote(&p.to_string())),
    );
    line(
        "allowed_peers",
        list(&i.allowed_peers, |p| quote(&p.to_string())),
    );
    if let Some(pass) = &i.auth_pass {
        let used = pass.iter().position(|b| *b == 0).unwrap_or(pass.len());
        line("auth_pass", quote(&String::from_utf8_lossy(&pass[..used])));
    }
    line(
        "track_interfaces",
        list(&i.track_interfaces, track_interface),
    );
    line("track_scripts", list(&i.track_scripts, track_script));
    line("track_files", list(&i.track_files, track_file));
    if let Some(notify) = &i.notify {
        line("notify", path(notify));
    }
    if let Some(group) = &i.sync_group {
        line("sync_group", quote(group));
    }
    line("garp_repeat", i.garp_repeat.to_string());
    line("garp_interval", dur(i.garp_interval));
    line(
        "garp_refresh",
        dur(i.garp_refresh.unwrap_or(Duration::ZERO)),
    );
}

pub(crate) fn to_toml(config: &Config) -> String {
    let mut out = String::new();
    let g = &config.global;
    out.push_str("[global]\n");
    let _ = writeln!(out, "router_id = {}", quote(&g.router_id));
    let _ = writeln!(out, "pin_path = {}", path(&g.pin_path));
    let _ = writeln!(out, "control_socket = {}", path(&g.control_socket));
    match g.metrics {
        Some(addr) => {
            let _ = writeln!(out, "metrics = {}", quote(&addr.to_string()));
        }
        None => out.push_str("# metrics: off\n"),
    }
    for i in &config.instances {
        out.push_str("\n[[vrrp]]\n");
        instance(&mut out, i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoted_strings_stay_on_one_line_and_escape_what_toml_requires() {
        assert_eq!(quote("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
        assert_eq!(quote("é"), "\"é\"");
    }
}
