//! The effective configuration, printed in the format it is read from, with every default
//! written out: what `vipd check` shows, and what an operator can copy back into a file.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::duration;
use super::model::{
    Broadcast, Command, Config, Instance, PreferredLifetime, RTPROT_BOOT, RTPROT_KERNEL,
    RTPROT_STATIC, RTPROT_VIPD, TABLE_LOCAL, TABLE_MAIN, TrackFile, TrackInterface, TrackScript,
    Vip, VirtualRoute, VirtualRule,
};
use crate::vrrp::Family;

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

/// A table key: bare when TOML allows, quoted otherwise (interface names may hold dots).
fn key(name: &str) -> String {
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !name.is_empty() && name.chars().all(bare) {
        name.to_owned()
    } else {
        quote(name)
    }
}

fn inline(fields: &[(&str, String)]) -> String {
    let shown: Vec<String> = fields.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    format!("{{ {} }}", shown.join(", "))
}

fn command(c: &Command) -> String {
    argv(c.argv())
}

/// A program alone as a string, with arguments as a list.
fn argv(argv: &[String]) -> String {
    match argv {
        [program] => quote(program),
        argv => list(argv, |a| quote(a)),
    }
}

fn track_interface(t: &TrackInterface) -> String {
    inline(&[
        ("name", quote(&t.name)),
        ("weight", t.weight.to_string()),
        ("reverse", t.reverse.to_string()),
    ])
}

fn track_script(t: &TrackScript) -> String {
    inline(&[
        ("command", command(&t.command)),
        ("interval", dur(t.interval)),
        ("timeout", dur(t.timeout)),
        ("weight", t.weight.to_string()),
        ("rise", t.rise.to_string()),
        ("fall", t.fall.to_string()),
        ("reverse", t.reverse.to_string()),
        ("init_fail", t.init_fail.to_string()),
    ])
}

fn track_file(t: &TrackFile) -> String {
    inline(&[
        ("path", path(&t.path)),
        ("weight", t.weight.to_string()),
        ("reverse", t.reverse.to_string()),
    ])
}

/// The plain string when every option is at its default, the full table otherwise.
fn vip(v: &Vip, interface: &str) -> String {
    if *v == Vip::plain(v.net, interface) {
        return quote(&v.net.to_string());
    }
    let mut fields = vec![
        ("address", quote(&v.net.to_string())),
        ("dev", quote(&v.dev)),
    ];
    if let Some(label) = &v.label {
        fields.push(("label", quote(label)));
    }
    fields.push(("scope", quote(v.scope.as_str())));
    match v.broadcast {
        Some(Broadcast::Subnet) => fields.push(("broadcast", quote("+"))),
        Some(Broadcast::Addr(a)) => fields.push(("broadcast", quote(&a.to_string()))),
        None => {}
    }
    fields.push(("noprefixroute", v.noprefixroute.to_string()));
    fields.push((
        "preferred_lft",
        match v.preferred_lft {
            PreferredLifetime::Forever => quote("forever"),
            PreferredLifetime::Zero => "0".to_owned(),
        },
    ));
    inline(&fields)
}

fn table(t: u32) -> String {
    match t {
        TABLE_MAIN => quote("main"),
        TABLE_LOCAL => quote("local"),
        n => n.to_string(),
    }
}

fn route(r: &VirtualRoute, family: Family) -> String {
    // "default" means the instance's family unless the route's addresses say otherwise.
    let to = if r.to.prefix_len() == 0 && (r.family() == family || r.via.or(r.src).is_some()) {
        quote("default")
    } else {
        quote(&r.to.to_string())
    };
    let mut fields = vec![("to", to)];
    if let Some(via) = r.via {
        fields.push(("via", quote(&via.to_string())));
    }
    if let Some(dev) = &r.dev {
        fields.push(("dev", quote(dev)));
    }
    if let Some(src) = r.src {
        fields.push(("src", quote(&src.to_string())));
    }
    fields.push(("table", table(r.table)));
    if let Some(metric) = r.metric {
        fields.push(("metric", metric.to_string()));
    }
    let protocol = match r.protocol {
        RTPROT_KERNEL => quote("kernel"),
        RTPROT_BOOT => quote("boot"),
        RTPROT_STATIC => quote("static"),
        RTPROT_VIPD => quote("vipd"),
        n => n.to_string(),
    };
    fields.push(("protocol", protocol));
    fields.push(("type", quote(r.kind.as_str())));
    if let Some(scope) = r.scope {
        fields.push(("scope", quote(scope.as_str())));
    }
    fields.push(("onlink", r.onlink.to_string()));
    inline(&fields)
}

fn rule(r: &VirtualRule) -> String {
    let mut fields = Vec::new();
    if let Some(from) = r.from {
        fields.push(("from", quote(&from.to_string())));
    }
    if let Some(to) = r.to {
        fields.push(("to", quote(&to.to_string())));
    }
    if let Some(iif) = &r.iif {
        fields.push(("iif", quote(iif)));
    }
    if let Some(oif) = &r.oif {
        fields.push(("oif", quote(oif)));
    }
    if let Some(mark) = r.fwmark {
        let shown = if mark.mask == u32::MAX {
            mark.value.to_string()
        } else {
            quote(&format!("{:#x}/{:#x}", mark.value, mark.mask))
        };
        fields.push(("fwmark", shown));
    }
    if let Some(t) = r.table {
        fields.push(("table", table(t)));
    }
    if let Some(priority) = r.priority {
        fields.push(("priority", priority.to_string()));
    }
    fields.push(("action", quote(r.action.as_str())));
    inline(&fields)
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
    line("vips", list(&i.vips, |v| vip(v, &i.interface)));
    line(
        "vips_excluded",
        list(&i.vips_excluded, |v| vip(v, &i.interface)),
    );
    line("proxy_arp", list(&i.proxy_arp, |a| quote(&a.to_string())));
    line("announce_host_routes", i.announce_host_routes.to_string());
    line(
        "virtual_routes",
        list(&i.virtual_routes, |r| route(r, i.family)),
    );
    line("virtual_rules", list(&i.virtual_rules, rule));
    if let Some(src) = i.unicast_src_ip {
        line("unicast_src_ip", quote(&src.to_string()));
    }
    if let Some(b) = &i.bfd {
        let mut fields = vec![
            ("peers", list(&b.peers, |p| quote(&p.to_string()))),
            ("interval", dur(b.interval)),
            ("multiplier", b.multiplier.to_string()),
            ("echo", b.echo.to_string()),
            ("control_interval", dur(b.control_interval)),
        ];
        if let Some(c) = &b.notify {
            fields.push(("notify", argv(c)));
        }
        line("bfd", inline(&fields));
    }
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
    line("dont_track_primary", i.dont_track_primary.to_string());
    line(
        "track_interfaces",
        list(&i.track_interfaces, track_interface),
    );
    line("track_scripts", list(&i.track_scripts, track_script));
    line("track_files", list(&i.track_files, track_file));
    for (k, c) in i.notify.hooks() {
        line(k, command(c));
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
    match &g.script_user {
        Some(user) => {
            let _ = writeln!(out, "script_user = {}", quote(&user.name));
        }
        None => out.push_str("# script_user: none (scripts run as root)\n"),
    }
    let _ = writeln!(out, "startup_delay = {}", dur(g.startup_delay));
    let _ = writeln!(out, "realtime_priority = {}", g.realtime_priority);
    for (name, o) in &config.interfaces {
        let _ = writeln!(out, "\n[interfaces.{}]", key(name));
        let _ = writeln!(out, "foreign_vrrp = {}", quote(o.foreign_vrrp.as_str()));
        let _ = writeln!(out, "up_delay = {}", dur(o.up_delay));
        let _ = writeln!(out, "down_delay = {}", dur(o.down_delay));
    }
    for (name, group) in &config.sync_groups {
        let _ = writeln!(out, "\n[sync_groups.{}]", key(name));
        for (k, c) in group.notify.hooks() {
            let _ = writeln!(out, "{k} = {}", command(c));
        }
    }
    for i in &config.instances {
        out.push_str("\n[[vrrp]]\n");
        instance(&mut out, i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{key, quote};

    #[test]
    fn quoted_strings_stay_on_one_line_and_escape_what_toml_requires() {
        assert_eq!(quote("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
        assert_eq!(quote("é"), "\"é\"");
    }

    #[test]
    fn table_keys_are_bare_only_where_toml_allows() {
        assert_eq!(key("eth0"), "eth0");
        assert_eq!(key("br-lan_2"), "br-lan_2");
        assert_eq!(key("eth0.100"), "\"eth0.100\"");
    }
}
