//! vipd's file as text, the one printer for it: tables of keys and values with comments
//! ([`Table`], [`Value`], [`render`]), each value on one line. The effective
//! configuration goes through it with every default written out (what `vipd check`
//! shows, and what an operator can copy back into a file), and so does what
//! `vipd import keepalived` makes of a keepalived configuration.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::duration as durations;
use super::model::{
    Broadcast, CarpSecret, Command, Config, Instance, PreferredLifetime, RTPROT_BOOT,
    RTPROT_KERNEL, RTPROT_STATIC, RTPROT_VIPD, TABLE_LOCAL, TABLE_MAIN, TrackFile, TrackInterface,
    TrackProcess, TrackScript, Vip, VirtualRoute, VirtualRule,
};
use crate::vrrp::Family;

/// A TOML value, as far as vipd's file format needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Array(Vec<Value>),
    /// An inline table, keys in order.
    Inline(Vec<(String, Value)>),
}

impl Value {
    pub(crate) fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub(crate) fn strs<S: AsRef<str>>(items: &[S]) -> Value {
        Value::Array(items.iter().map(|s| Value::str(s.as_ref())).collect())
    }

    /// A duration as the file reads it, in one unit where one fits (`3s`, `250ms`).
    pub(crate) fn duration(d: Duration) -> Value {
        Value::Str(duration(d))
    }

    fn int(n: impl Into<i64>) -> Value {
        Value::Int(n.into())
    }

    fn inline(fields: Vec<(&str, Value)>) -> Value {
        Value::Inline(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

/// A duration as the file reads it (see [`Value::duration`]), for messages too.
pub(crate) fn duration(d: Duration) -> String {
    durations::format(d)
}

/// A line of a table: a key and its value, or a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    Key(String, Value),
    Comment(String),
}

/// `[header]` or `[[header]]` with its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    /// Comment lines written above the header.
    pub(crate) comments: Vec<String>,
    /// `[global]`, `[[vrrp]]`, ...
    pub(crate) header: String,
    pub(crate) entries: Vec<Entry>,
}

impl Table {
    pub(crate) fn new(header: impl Into<String>) -> Table {
        Table {
            comments: Vec::new(),
            header: header.into(),
            entries: Vec::new(),
        }
    }

    /// `[prefix.NAME]`, the name quoted where TOML needs it (interface names may hold
    /// dots).
    pub(crate) fn named(prefix: &str, name: &str) -> Table {
        Table::new(format!("[{prefix}.{}]", bare_or_quoted(name)))
    }

    pub(crate) fn key(&mut self, key: &str, value: Value) {
        self.entries.push(Entry::Key(key.to_owned(), value));
    }

    pub(crate) fn comment(&mut self, text: impl Into<String>) {
        self.entries.push(Entry::Comment(text.into()));
    }
}

/// The whole file: header comment lines, then the tables, a blank line before each (but
/// the first line of the file).
pub(crate) fn render(header: &[String], tables: &[Table]) -> String {
    let mut out = String::new();
    for line in header {
        comment_line(&mut out, line);
    }
    for table in tables {
        if !out.is_empty() {
            out.push('\n');
        }
        for line in &table.comments {
            comment_line(&mut out, line);
        }
        out.push_str(&table.header);
        out.push('\n');
        for entry in &table.entries {
            match entry {
                Entry::Key(key, value) => {
                    let _ = writeln!(out, "{} = {}", bare_or_quoted(key), inline(value));
                }
                Entry::Comment(text) => comment_line(&mut out, text),
            }
        }
    }
    out
}

fn comment_line(out: &mut String, text: &str) {
    // A comment never spans lines: a newline in a reason would end it.
    for part in text.split('\n') {
        if part.is_empty() {
            out.push_str("#\n");
            continue;
        }
        out.push_str("# ");
        // TOML allows no control character but tab in a comment, and an importer's reason
        // quotes the source's words as they were written.
        for c in part.chars() {
            if c.is_control() && c != '\t' {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            } else {
                out.push(c);
            }
        }
        out.push('\n');
    }
}

/// A key or table-name segment: bare when TOML allows, quoted otherwise.
pub(crate) fn bare_or_quoted(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { key.to_owned() } else { quote(key) }
}

/// A value on one line: arrays and tables inline, so the listing stays greppable.
fn inline(value: &Value) -> String {
    match value {
        Value::Str(s) => quote(s),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Inline(pairs) => {
            let pairs: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{} = {}", bare_or_quoted(k), inline(v)))
                .collect();
            format!("{{ {} }}", pairs.join(", "))
        }
    }
}

/// A TOML basic string. Written by hand rather than through `toml`'s printer so the output
/// is always one line, which keeps inline tables valid and the listing greppable.
pub(crate) fn quote(text: &str) -> String {
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

fn path(p: &Path) -> Value {
    Value::str(p.to_string_lossy())
}

fn list<T>(items: &[T], show: impl Fn(&T) -> Value) -> Value {
    Value::Array(items.iter().map(show).collect())
}

fn addr(a: &impl ToString) -> Value {
    Value::str(a.to_string())
}

fn command(c: &Command) -> Value {
    argv(c.argv())
}

/// A program alone as a string, with arguments as a list.
fn argv(argv: &[String]) -> Value {
    match argv {
        [program] => Value::str(program),
        argv => Value::strs(argv),
    }
}

fn track_interface(t: &TrackInterface) -> Value {
    Value::inline(vec![
        ("name", Value::str(&t.name)),
        ("weight", Value::int(t.weight)),
        ("reverse", Value::Bool(t.reverse)),
    ])
}

fn track_script(t: &TrackScript) -> Value {
    Value::inline(vec![
        ("command", command(&t.command)),
        ("interval", Value::duration(t.interval)),
        ("timeout", Value::duration(t.timeout)),
        ("weight", Value::int(t.weight)),
        ("rise", Value::int(t.rise)),
        ("fall", Value::int(t.fall)),
        ("reverse", Value::Bool(t.reverse)),
        ("init_fail", Value::Bool(t.init_fail)),
    ])
}

fn track_file(t: &TrackFile) -> Value {
    Value::inline(vec![
        ("path", path(&t.path)),
        ("weight", Value::int(t.weight)),
        ("reverse", Value::Bool(t.reverse)),
    ])
}

fn track_process(t: &TrackProcess) -> Value {
    let p = &t.pattern;
    let mut entries = vec![("name", Value::str(&p.name))];
    if let Some(m) = &p.argv {
        entries.push(("full_command", Value::Bool(true)));
        if !m.args.is_empty() {
            entries.push(("args", Value::strs(&m.args)));
        }
        if let Some(how) = m.param_match {
            entries.push(("param_match", Value::str(how.word())));
        }
    }
    // quorum_max 0 sets the quorum to 0, which quorum itself cannot be.
    if t.quorum_max != Some(0) {
        entries.push(("quorum", Value::int(t.quorum)));
    }
    if let Some(max) = t.quorum_max {
        entries.push(("quorum_max", Value::int(max)));
    }
    entries.extend([
        ("weight", Value::int(t.weight)),
        ("reverse", Value::Bool(t.reverse)),
        ("fork_delay", Value::duration(t.fork_delay)),
        ("terminate_delay", Value::duration(t.terminate_delay)),
    ]);
    Value::inline(entries)
}

/// The plain string when every option is at its default, the full table otherwise.
fn vip(v: &Vip, interface: &str) -> Value {
    if *v == Vip::plain(v.net, interface) {
        return addr(&v.net);
    }
    let mut fields = vec![("address", addr(&v.net)), ("dev", Value::str(&v.dev))];
    if let Some(label) = &v.label {
        fields.push(("label", Value::str(label)));
    }
    fields.push(("scope", Value::str(v.scope.as_str())));
    match v.broadcast {
        Some(Broadcast::Subnet) => fields.push(("broadcast", Value::str("+"))),
        Some(Broadcast::Addr(a)) => fields.push(("broadcast", addr(&a))),
        None => {}
    }
    fields.push(("noprefixroute", Value::Bool(v.noprefixroute)));
    fields.push((
        "preferred_lft",
        match v.preferred_lft {
            PreferredLifetime::Forever => Value::str("forever"),
            PreferredLifetime::Zero => Value::Int(0),
        },
    ));
    Value::inline(fields)
}

fn table(t: u32) -> Value {
    match t {
        TABLE_MAIN => Value::str("main"),
        TABLE_LOCAL => Value::str("local"),
        n => Value::int(n),
    }
}

fn route(r: &VirtualRoute, family: Family) -> Value {
    // "default" means the instance's family unless the route's addresses say otherwise.
    let to = if r.to.prefix_len() == 0 && (r.family() == family || r.via.or(r.src).is_some()) {
        Value::str("default")
    } else {
        addr(&r.to)
    };
    let mut fields = vec![("to", to)];
    if let Some(via) = r.via {
        fields.push(("via", addr(&via)));
    }
    if let Some(dev) = &r.dev {
        fields.push(("dev", Value::str(dev)));
    }
    if let Some(src) = r.src {
        fields.push(("src", addr(&src)));
    }
    fields.push(("table", table(r.table)));
    if let Some(metric) = r.metric {
        fields.push(("metric", Value::int(metric)));
    }
    let protocol = match r.protocol {
        RTPROT_KERNEL => Value::str("kernel"),
        RTPROT_BOOT => Value::str("boot"),
        RTPROT_STATIC => Value::str("static"),
        RTPROT_VIPD => Value::str("vipd"),
        n => Value::int(n),
    };
    fields.push(("protocol", protocol));
    fields.push(("type", Value::str(r.kind.as_str())));
    if let Some(scope) = r.scope {
        fields.push(("scope", Value::str(scope.as_str())));
    }
    fields.push(("onlink", Value::Bool(r.onlink)));
    Value::inline(fields)
}

fn rule(r: &VirtualRule) -> Value {
    let mut fields = Vec::new();
    if let Some(from) = r.from {
        fields.push(("from", addr(&from)));
    }
    if let Some(to) = r.to {
        fields.push(("to", addr(&to)));
    }
    if let Some(iif) = &r.iif {
        fields.push(("iif", Value::str(iif)));
    }
    if let Some(oif) = &r.oif {
        fields.push(("oif", Value::str(oif)));
    }
    if let Some(mark) = r.fwmark {
        let shown = if mark.mask == u32::MAX {
            Value::int(mark.value)
        } else {
            Value::str(format!("{:#x}/{:#x}", mark.value, mark.mask))
        };
        fields.push(("fwmark", shown));
    }
    if let Some(t) = r.table {
        fields.push(("table", table(t)));
    }
    if let Some(priority) = r.priority {
        fields.push(("priority", Value::int(priority)));
    }
    fields.push(("action", Value::str(r.action.as_str())));
    Value::inline(fields)
}

fn instance(i: &Instance) -> Table {
    let mut t = Table::new("[[vrrp]]");
    t.key("name", Value::str(&i.name));
    if let Some(c) = &i.carp {
        t.key("protocol", Value::str("carp"));
        t.key("interface", Value::str(&i.interface));
        t.key("vrid", Value::int(i.vrid));
        t.comment(format!(
            "priority {} is advskew {}",
            i.priority,
            crate::vrrp::carp::advskew_for_priority(i.priority)
        ));
        t.key("priority", Value::int(i.priority));
        match &c.secret {
            CarpSecret::Inline(p) => t.key("passphrase", Value::str(p)),
            CarpSecret::File(path) => {
                t.key("passphrase_file", Value::str(path.display().to_string()))
            }
        }
        t.key("dead_ratio", Value::int(c.settings.dead_ratio));
        t.key(
            "replay",
            Value::str(match c.settings.replay {
                crate::vrrp::carp::ReplayMode::Strict => "strict",
                crate::vrrp::carp::ReplayMode::OpenBsd => "openbsd",
            }),
        );
        t.key("hmac_link_local", Value::Bool(c.settings.hmac_link_local));
    } else {
        t.key("interface", Value::str(&i.interface));
        t.key("vrid", Value::int(i.vrid));
        t.key("priority", Value::int(i.priority));
        t.key("version", Value::int(i.version.number()));
    }
    t.key("advert_interval", Value::duration(i.advert_interval));
    t.key("preempt", Value::Bool(i.preempt));
    t.key("preempt_delay", Value::duration(i.preempt_delay));
    t.key("accept", Value::Bool(i.accept));
    t.key("vmac", Value::Bool(i.vmac));
    t.key("vips", list(&i.vips, |v| vip(v, &i.interface)));
    t.key(
        "vips_excluded",
        list(&i.vips_excluded, |v| vip(v, &i.interface)),
    );
    t.key("proxy_arp", list(&i.proxy_arp, addr));
    t.key("shared_vips", list(&i.shared_vips, |s| addr(&s.addr)));
    t.key("announce_host_routes", Value::Bool(i.announce_host_routes));
    t.key(
        "virtual_routes",
        list(&i.virtual_routes, |r| route(r, i.family)),
    );
    t.key("virtual_rules", list(&i.virtual_rules, rule));
    if let Some(src) = i.unicast_src_ip {
        t.key("unicast_src_ip", addr(&src));
    }
    if let Some(b) = &i.bfd {
        let mut fields = vec![
            ("peers", list(&b.peers, addr)),
            ("interval", Value::duration(b.interval)),
            ("multiplier", Value::int(b.multiplier)),
            ("echo", Value::Bool(b.echo)),
            ("control_interval", Value::duration(b.control_interval)),
        ];
        if let Some(c) = &b.notify {
            fields.push(("notify", argv(c)));
        }
        t.key("bfd", Value::inline(fields));
    }
    t.key("unicast_peers", list(&i.unicast_peers, addr));
    t.key("allowed_peers", list(&i.allowed_peers, addr));
    if let Some(pass) = &i.auth_pass {
        let used = pass.iter().position(|b| *b == 0).unwrap_or(pass.len());
        t.key(
            "auth_pass",
            Value::str(String::from_utf8_lossy(&pass[..used])),
        );
    }
    t.key("dont_track_primary", Value::Bool(i.dont_track_primary));
    t.key(
        "track_interfaces",
        list(&i.track_interfaces, track_interface),
    );
    t.key("track_scripts", list(&i.track_scripts, track_script));
    t.key("track_files", list(&i.track_files, track_file));
    t.key("track_processes", list(&i.track_processes, track_process));
    for (k, c) in i.notify.hooks() {
        t.key(k, command(c));
    }
    if let Some(group) = &i.sync_group {
        t.key("sync_group", Value::str(group));
    }
    t.key("garp_repeat", Value::int(i.garp_repeat));
    t.key("garp_interval", Value::duration(i.garp_interval));
    t.key(
        "garp_refresh",
        Value::duration(i.garp_refresh.unwrap_or(Duration::ZERO)),
    );
    t
}

pub(crate) fn to_toml(config: &Config) -> String {
    let g = &config.global;
    let mut global = Table::new("[global]");
    global.key("router_id", Value::str(&g.router_id));
    global.key("pin_path", path(&g.pin_path));
    global.key("control_socket", path(&g.control_socket));
    match g.metrics {
        Some(a) => global.key("metrics", addr(&a)),
        None => global.comment("metrics: off"),
    }
    match &g.script_user {
        Some(user) => global.key("script_user", Value::str(&user.name)),
        None => global.comment("script_user: none (scripts run as root)"),
    }
    global.key("startup_delay", Value::duration(g.startup_delay));
    global.key("realtime_priority", Value::int(g.realtime_priority));
    match &g.control_group {
        Some(group) => global.key("control_group", Value::str(&group.name)),
        None => global.comment("control_group: none (the control socket is root's alone)"),
    }
    match &g.admin_group {
        Some(group) => global.key("admin_group", Value::str(&group.name)),
        None => global.comment("admin_group: none (only root runs reload and maintenance)"),
    }
    match &g.state_file {
        Some(p) => global.key("state_file", path(p)),
        None => global.comment("state_file: none (a restart forgets demotions)"),
    }
    let mut tables = vec![global];
    for (name, o) in &config.interfaces {
        let mut t = Table::named("interfaces", name);
        t.key("foreign_vrrp", Value::str(o.foreign_vrrp.as_str()));
        t.key("up_delay", Value::duration(o.up_delay));
        t.key("down_delay", Value::duration(o.down_delay));
        tables.push(t);
    }
    for (name, group) in &config.sync_groups {
        let mut t = Table::named("sync_groups", name);
        for (k, c) in group.notify.hooks() {
            t.key(k, command(c));
        }
        tables.push(t);
    }
    tables.extend(config.instances.iter().map(instance));
    tables.extend(config.services.iter().map(service));
    render(&[], &tables)
}

fn check(c: &crate::lb::service::Check) -> Value {
    use crate::lb::service::CheckKind;
    let mut f: Vec<(&str, Value)> = Vec::new();
    match &c.kind {
        CheckKind::Tcp { port } => {
            f.push(("type", Value::str("tcp")));
            if let Some(p) = port {
                f.push(("port", Value::int(*p)));
            }
        }
        CheckKind::Http {
            port,
            tls,
            path,
            host,
            status,
            digest,
        } => {
            f.push(("type", Value::str(if *tls { "https" } else { "http" })));
            if let Some(p) = port {
                f.push(("port", Value::int(*p)));
            }
            f.push(("path", Value::str(path)));
            if let Some(h) = host {
                f.push(("host", Value::str(h)));
            }
            if !status.is_empty() {
                f.push(("status", list(status, |s| Value::int(*s))));
            }
            if let Some(d) = digest {
                let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
                f.push(("digest", Value::str(hex)));
            }
        }
        CheckKind::Script { argv: a } => {
            f.push(("type", Value::str("script")));
            f.push(("script", argv(a)));
        }
    }
    f.push(("interval", Value::duration(c.interval)));
    f.push(("timeout", Value::duration(c.timeout)));
    f.push(("retry", Value::int(c.retry)));
    f.push(("delay_before_retry", Value::duration(c.delay_before_retry)));
    Value::inline(f)
}

fn service(s: &super::service::ServiceConfig) -> Table {
    use crate::lb::service::{Method, Protocol};
    let mut t = Table::new("[[service]]");
    t.key("name", Value::str(&s.name));
    t.key("vip", addr(&s.vip));
    t.key("port", Value::int(s.port));
    if s.port == 0 {
        t.comment("port 0: every port");
    }
    t.key(
        "protocol",
        Value::str(match s.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }),
    );
    t.key(
        "method",
        Value::str(match s.method {
            Method::DirectRouting => "dr",
            Method::Tunnel => "tunnel",
        }),
    );
    match &s.active {
        super::service::Active::Follow(name) => t.key("follow", Value::str(name)),
        super::service::Active::Ecmp => t.key("active", Value::str("ecmp")),
    }
    t.key(
        "hash",
        Value::str(if s.source_hash { "source" } else { "flow" }),
    );
    t.key("hash_seed", Value::int(s.hash_seed));
    t.key("quorum", Value::int(s.quorum));
    t.key("hysteresis", Value::int(s.hysteresis));
    t.key("alpha", Value::Bool(s.alpha));
    for (k, c) in [("quorum_up", &s.quorum_up), ("quorum_down", &s.quorum_down)] {
        match c {
            Some(c) => t.key(k, command(c)),
            None => t.comment(format!("{k}: none")),
        }
    }
    match s.sorry {
        Some((a, p)) => t.key(
            "sorry_server",
            Value::inline(vec![("address", addr(&a)), ("port", Value::int(p))]),
        ),
        None => t.comment("sorry_server: none"),
    }
    let reals = s
        .reals
        .iter()
        .map(|r| {
            let mut f = vec![("address", addr(&r.address))];
            // The service's port is the default (and an all-ports service's 0 is not a
            // port one can write for a server).
            if r.port != s.port {
                f.push(("port", Value::int(r.port)));
            }
            f.extend([
                ("weight", Value::int(r.weight)),
                ("inhibit_on_failure", Value::Bool(r.inhibit_on_failure)),
            ]);
            if let Some(c) = &r.notify_up {
                f.push(("notify_up", command(c)));
            }
            if let Some(c) = &r.notify_down {
                f.push(("notify_down", command(c)));
            }
            if let Some(c) = &r.check {
                f.push(("check", check(c)));
            }
            Value::inline(f)
        })
        .collect();
    t.key("real", Value::Array(reals));
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_stay_on_one_line_and_escape_what_toml_requires() {
        assert_eq!(quote("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
        assert_eq!(quote("é"), "\"é\"");
    }

    #[test]
    fn table_keys_are_bare_only_where_toml_allows() {
        assert_eq!(bare_or_quoted("eth0"), "eth0");
        assert_eq!(bare_or_quoted("br-lan_2"), "br-lan_2");
        assert_eq!(bare_or_quoted("eth0.100"), "\"eth0.100\"");
        assert_eq!(
            Table::named("interfaces", "eth0.100").header,
            "[interfaces.\"eth0.100\"]"
        );
    }

    #[test]
    fn values_and_comments_render_as_valid_toml() {
        let mut t = Table::new("[[vrrp]]");
        t.key("name", Value::str("a \"b\" \\ c\u{1}"));
        t.key(
            "vips",
            Value::Array(vec![
                Value::str("192.0.2.1/24"),
                Value::Inline(vec![
                    ("address".into(), Value::str("192.0.2.2/24")),
                    ("noprefixroute".into(), Value::Bool(true)),
                ]),
            ]),
        );
        t.comment("two\nlines");
        t.key("vrid", Value::Int(51));
        t.key(
            "advert_interval",
            Value::duration(Duration::from_millis(250)),
        );
        let text = render(&["header".into()], &[t]);
        assert!(text.starts_with("# header\n\n[[vrrp]]\n"), "{text}");
        assert!(text.contains("# two\n# lines\n"), "{text}");
        let (doc, errors) = toml::de::DeTable::parse_recoverable(&text);
        assert!(errors.is_empty(), "{errors:?}\n{text}");
        assert!(doc.get_ref().get("vrrp").is_some());
        assert!(text.contains(r#"name = "a \"b\" \\ c\u0001""#), "{text}");
        assert!(text.contains("advert_interval = \"250ms\"\n"), "{text}");
        // Without a header the file starts with its first table.
        assert!(render(&[], &[Table::new("[global]")]).starts_with("[global]\n"));
    }

    #[test]
    fn comments_carry_control_characters_escaped() {
        let mut t = Table::new("[global]");
        t.comment("from keepalived.conf:4 \u{4}bad\rkeyword\u{7f}\tend");
        t.key("router_id", Value::str("r1"));
        let text = render(
            &["keepalived.conf:64: \u{4}: unknown keepalived keyword".into()],
            &[t],
        );
        let (_, errors) = toml::de::DeTable::parse_recoverable(&text);
        assert!(errors.is_empty(), "{errors:?}\n{text}");
        assert!(
            text.contains("# keepalived.conf:64: \\u0004: unknown"),
            "{text}"
        );
        assert!(
            text.contains("\\u0004bad\\u000Dkeyword\\u007F\tend"),
            "{text}"
        );
    }
}
