//! Reads the documented example configuration (`vip-userspace/examples/vipd.toml`) as a
//! reference: its comments are the documentation of every key, so `vipd.toml(5)` is made
//! from them rather than written twice.
//!
//! The example's layout, which `cargo test` keeps (see the tests below):
//!
//! - a comment block before the first table describes the file as a whole;
//! - a comment block directly above a table header describes that table;
//! - a comment block directly above `key = value` describes that key (the value, which
//!   may span lines, is its example); a key with no comment of its own right after
//!   another key is described with it (`up_delay` / `down_delay`);
//! - a comment block followed by a blank line is a note inside the current table;
//! - a comment line of its own (`#`) separates paragraphs; lines indented by two spaces
//!   or more after `# ` are kept as they are (lists, tables of values).
//!
//! A table that appears again (a second `[[vrrp]]`, another `[interfaces.NAME]`) adds
//! only the keys not documented before; its own remarks are about the example, not the
//! format.

/// The documented example, as shipped in the package.
pub const EXAMPLE: &str = include_str!("../../vip-userspace/examples/vipd.toml");

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Para {
    /// Running text, to be filled.
    Text(String),
    /// Lines kept as written (their common indentation removed).
    Verbatim(Vec<String>),
}

/// One entry: a key, or keys documented together (a key without a comment of its own
/// shares the entry above it, as `down_delay` shares `up_delay`'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub names: Vec<String>,
    /// `name = value` as written in the example (several lines for arrays).
    pub example: Vec<String>,
    pub doc: Vec<Para>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Key(Key),
    Note(Vec<Para>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// `[global]`, `[interfaces.NAME]`, `[sync_groups.NAME]`, `[[vrrp]]`, `[[service]]`.
    pub header: String,
    pub intro: Vec<Para>,
    pub items: Vec<Item>,
}

impl Table {
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.items.iter().filter_map(|i| match i {
            Item::Key(k) => Some(k),
            Item::Note(_) => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub intro: Vec<Para>,
    pub tables: Vec<Table>,
}

/// `[interfaces.eth0]` → `[interfaces.NAME]`: the table's kind, not the example's name.
fn table_kind(header: &str) -> String {
    let array = header.starts_with("[[");
    let inner = header.trim_matches(|c| c == '[' || c == ']');
    let kind = match inner.split_once('.') {
        Some((table, _)) => format!("{table}.NAME"),
        None => inner.to_owned(),
    };
    if array {
        format!("[[{kind}]]")
    } else {
        format!("[{kind}]")
    }
}

/// Comment lines (without `# `) into paragraphs.
fn paragraphs(lines: &[String]) -> Vec<Para> {
    let mut out = Vec::new();
    let mut text: Vec<&str> = Vec::new();
    let mut verbatim: Vec<&str> = Vec::new();
    let flush_text = |text: &mut Vec<&str>, out: &mut Vec<Para>| {
        if !text.is_empty() {
            out.push(Para::Text(text.join(" ")));
            text.clear();
        }
    };
    let flush_verbatim = |verbatim: &mut Vec<&str>, out: &mut Vec<Para>| {
        if !verbatim.is_empty() {
            let indent = verbatim
                .iter()
                .map(|l| l.len() - l.trim_start().len())
                .min()
                .unwrap_or(0);
            out.push(Para::Verbatim(
                verbatim.iter().map(|l| l[indent..].to_owned()).collect(),
            ));
            verbatim.clear();
        }
    };
    for line in lines {
        if line.trim().is_empty() {
            flush_text(&mut text, &mut out);
            flush_verbatim(&mut verbatim, &mut out);
        } else if line.starts_with("  ") {
            flush_text(&mut text, &mut out);
            verbatim.push(line);
        } else {
            flush_verbatim(&mut verbatim, &mut out);
            text.push(line.trim());
        }
    }
    flush_text(&mut text, &mut out);
    flush_verbatim(&mut verbatim, &mut out);
    out
}

/// Net bracket depth of a TOML value line, ignoring brackets inside strings.
fn depth_change(line: &str) -> i32 {
    let (mut depth, mut quote) = (0, None);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('"'), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => break,
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            _ => {}
        }
    }
    depth
}

fn key_name(line: &str) -> Option<&str> {
    let (name, _) = line.split_once('=')?;
    let name = name.trim();
    (!name.is_empty()
        && !line.starts_with(' ')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .then_some(name)
}

/// Reads the example into a reference of its tables and keys.
pub fn parse(text: &str) -> Reference {
    let mut reference = Reference {
        intro: Vec::new(),
        tables: Vec::new(),
    };
    // The table being filled (an index into `reference.tables`), and whether it is a
    // repeat whose remarks are skipped.
    let mut current: Option<(usize, bool)> = None;
    let mut pending: Vec<String> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(comment) = line.strip_prefix('#') {
            pending.push(comment.strip_prefix(' ').unwrap_or(comment).to_owned());
            continue;
        }
        if line.trim().is_empty() {
            if !pending.is_empty() {
                let paras = paragraphs(&pending);
                match current {
                    None => reference.intro.extend(paras),
                    Some((i, false)) => reference.tables[i].items.push(Item::Note(paras)),
                    Some((_, true)) => {}
                }
                pending.clear();
            }
            continue;
        }
        if line.starts_with('[') {
            let kind = table_kind(line.trim());
            let doc = paragraphs(&std::mem::take(&mut pending));
            current = match reference.tables.iter().position(|t| t.header == kind) {
                Some(i) => Some((i, true)),
                None => {
                    reference.tables.push(Table {
                        header: kind,
                        intro: doc,
                        items: Vec::new(),
                    });
                    Some((reference.tables.len() - 1, false))
                }
            };
            continue;
        }
        let Some(name) = key_name(line) else {
            continue;
        };
        let mut example = vec![line.to_owned()];
        let mut depth = depth_change(line);
        while depth > 0 {
            let Some(next) = lines.next() else { break };
            depth += depth_change(next);
            example.push(next.to_owned());
        }
        let doc = paragraphs(&std::mem::take(&mut pending));
        let Some((i, repeat)) = current else { continue };
        let table = &mut reference.tables[i];
        if table.keys().any(|k| k.names.iter().any(|n| n == name)) {
            continue;
        }
        match table.items.last_mut() {
            Some(Item::Key(previous)) if doc.is_empty() && !repeat => {
                previous.names.push(name.to_owned());
                previous.example.extend(example);
            }
            _ => table.items.push(Item::Key(Key {
                names: vec![name.to_owned()],
                example,
                doc,
            })),
        }
    }
    reference
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Reference {
        parse(EXAMPLE)
    }

    fn table<'a>(r: &'a Reference, header: &str) -> &'a Table {
        r.tables
            .iter()
            .find(|t| t.header == header)
            .unwrap_or_else(|| panic!("no {header} in {:?}", r.tables))
    }

    #[test]
    fn finds_every_table_of_the_format_once() {
        let r = reference();
        let headers: Vec<&str> = r.tables.iter().map(|t| t.header.as_str()).collect();
        assert_eq!(
            headers,
            [
                "[global]",
                "[interfaces.NAME]",
                "[sync_groups.NAME]",
                "[[vrrp]]",
                "[[service]]"
            ]
        );
        assert!(!r.intro.is_empty(), "the file's own description");
        for t in &r.tables[1..] {
            assert!(!t.intro.is_empty(), "{} has an introduction", t.header);
        }
    }

    /// Every key path the example sets (as TOML reads it; the configuration's own tests
    /// check that it sets every key vipd knows) has an entry in its table, and every
    /// option inside a key's tables (`vips = [{ dev = ... }]`) is named in that key's
    /// documentation. Only the sync-group hooks share one description, above their
    /// table.
    #[test]
    fn every_key_in_the_example_is_documented() {
        use toml::de::{DeTable, DeValue};
        fn walk(value: &DeValue<'_>, path: &[String], out: &mut Vec<Vec<String>>) {
            match value {
                DeValue::Table(t) => {
                    for (k, v) in t.iter() {
                        let mut p = path.to_vec();
                        p.push(k.get_ref().to_string());
                        out.push(p.clone());
                        walk(v.get_ref(), &p, out);
                    }
                }
                DeValue::Array(items) => items.iter().for_each(|i| walk(i.get_ref(), path, out)),
                _ => {}
            }
        }
        let doc = DeTable::parse(EXAMPLE).expect("the example is TOML");
        let mut paths = Vec::new();
        walk(&DeValue::Table(doc.get_ref().clone()), &[], &mut paths);
        let r = reference();
        let text = |paras: &[Para]| -> String {
            paras
                .iter()
                .map(|p| match p {
                    Para::Text(t) => t.clone(),
                    Para::Verbatim(l) => l.join("\n"),
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mut checked = 0;
        for p in paths {
            let (header, rest) = match p[0].as_str() {
                "global" | "vrrp" if p.len() >= 2 => {
                    let h = if p[0] == "vrrp" {
                        "[[vrrp]]"
                    } else {
                        "[global]"
                    };
                    (h, &p[1..])
                }
                "interfaces" if p.len() >= 3 => ("[interfaces.NAME]", &p[2..]),
                "sync_groups" if p.len() >= 3 => ("[sync_groups.NAME]", &p[2..]),
                _ => continue,
            };
            let t = table(&r, header);
            let entry = t
                .keys()
                .find(|e| e.names.contains(&rest[0]))
                .unwrap_or_else(|| panic!("{header} {} has no entry", rest[0]));
            match rest {
                [_] if header == "[sync_groups.NAME]" => assert!(!t.intro.is_empty()),
                [_] => assert!(
                    !entry.doc.is_empty(),
                    "{header} {} is undocumented",
                    rest[0]
                ),
                // Described with the key, or with the key it refers to ("Same element
                // forms" as `vips`).
                [_, option, ..] => assert!(
                    text(&entry.doc).contains(option.as_str())
                        || t.keys().any(|k| text(&k.doc).contains(option.as_str())),
                    "{header} {}: option {option} is not described",
                    rest[0]
                ),
                [] => unreachable!(),
            }
            checked += 1;
        }
        assert!(checked > 60, "only {checked} keys checked");
    }

    #[test]
    fn multi_line_values_and_verbatim_lists_are_kept() {
        let r = reference();
        let vrrp = table(&r, "[[vrrp]]");
        let vips = vrrp.keys().find(|k| k.names == ["vips"]).unwrap();
        assert_eq!(vips.example.first().unwrap(), "vips = [");
        assert_eq!(vips.example.last().unwrap(), "]");
        assert!(
            vips.doc.iter().any(|p| matches!(p, Para::Verbatim(l)
                if l.iter().any(|l| l.starts_with("\"ADDR/LEN\"")))),
            "{:?}",
            vips.doc
        );
        // auth_pass is documented only in the example's third [[vrrp]] section.
        assert!(
            vrrp.keys()
                .any(|k| k.names == ["auth_pass"] && !k.doc.is_empty())
        );
        // Keys described together share an entry.
        let interfaces = table(&r, "[interfaces.NAME]");
        assert!(
            interfaces
                .keys()
                .any(|k| k.names == ["up_delay", "down_delay"])
        );
        // Notes stand between keys.
        assert!(vrrp.items.iter().any(|i| matches!(i, Item::Note(p)
            if matches!(&p[0], Para::Text(t) if t.starts_with("Tracking, with keepalived's meaning")))));
    }

    #[test]
    fn brackets_inside_strings_do_not_end_a_value() {
        assert_eq!(depth_change(r#"x = ["a]", { b = "[" }"#), 1);
        assert_eq!(depth_change(r#"  "c", # ] not counted"#), 0);
    }
}
