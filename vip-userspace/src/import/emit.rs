//! The vipd file as text: tables of keys in the order `examples/vipd.toml` documents
//! them, with comments saying where each section came from.

use std::fmt::Write as _;

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

    pub(crate) fn key(&mut self, key: &str, value: Value) {
        self.entries.push(Entry::Key(key.to_owned(), value));
    }

    pub(crate) fn comment(&mut self, text: impl Into<String>) {
        self.entries.push(Entry::Comment(text.into()));
    }
}

/// The whole file: header comment lines, then the tables.
pub(crate) fn render(header: &[String], tables: &[Table]) -> String {
    let mut out = String::new();
    for line in header {
        comment_line(&mut out, line);
    }
    for table in tables {
        out.push('\n');
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
        // TOML allows no control character but tab in a comment, and a reason quotes
        // keepalived's words as they were written.
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

/// A TOML basic string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_valid_toml() {
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
        t.key("vrid", Value::Int(51));
        let text = render(&["header".into()], &[t]);
        assert!(text.starts_with("# header\n"), "{text}");
        let (doc, errors) = toml::de::DeTable::parse_recoverable(&text);
        assert!(errors.is_empty(), "{errors:?}\n{text}");
        assert!(doc.get_ref().get("vrrp").is_some());
        assert!(text.contains(r#"name = "a \"b\" \\ c\u0001""#), "{text}");
        assert_eq!(bare_or_quoted("eth0.100"), "\"eth0.100\"");
    }

    /// Found by the `import_parse` fuzz target: a keyword with a control character in it
    /// was quoted as it was in the report above the tables, and TOML refused the file.
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
