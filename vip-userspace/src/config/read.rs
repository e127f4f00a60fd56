//! A typed view of the parsed TOML tree that keeps every value's span.
//!
//! serde's derived `Deserialize` stops at the first wrong key or type; reading the spanned
//! tree by hand lets one run report every unknown key, wrong type and out-of-range value,
//! each at its own place.

use std::ops::RangeInclusive;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::duration;
use super::locate::{Sink, Span};

pub(crate) type Node<'i> = Spanned<DeValue<'i>>;

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct At<T> {
    pub(crate) span: Span,
    pub(crate) value: T,
}

/// One field of a table after reading it.
///
/// `Invalid` is kept apart from `Absent` so rules that depend on a field (the interval
/// rules depend on `version`) stay quiet when the field itself was already reported,
/// instead of judging against a default the operator never chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field<T> {
    Absent,
    Invalid,
    Valid(At<T>),
}

impl<T: Clone> Field<T> {
    /// The value, the default when absent, `None` when it was wrong.
    pub(crate) fn or(&self, default: T) -> Option<T> {
        match self {
            Field::Absent => Some(default),
            Field::Invalid => None,
            Field::Valid(at) => Some(at.value.clone()),
        }
    }

    pub(crate) fn valid(&self) -> Option<&At<T>> {
        match self {
            Field::Valid(at) => Some(at),
            _ => None,
        }
    }
}

fn article(kind: &str) -> &'static str {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn wrong_type(node: &Node<'_>, path: &str, expected: &str, sink: &mut Sink<'_>) {
    let found = node.get_ref().type_str();
    sink.push(
        node.span(),
        path,
        format!("expected {expected}, found {} {found}", article(found)),
    );
}

pub(crate) fn as_str<'a>(node: &'a Node<'_>, path: &str, sink: &mut Sink<'_>) -> Option<&'a str> {
    let text = node.get_ref().as_str();
    if text.is_none() {
        wrong_type(node, path, "a string", sink);
    }
    text
}

/// A string turned into a typed value by `parse`, whose error becomes the message.
pub(crate) fn parse_str<T>(
    node: &Node<'_>,
    path: &str,
    sink: &mut Sink<'_>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let text = as_str(node, path, sink)?;
    parse(text)
        .map_err(|m| sink.push(node.span(), path, m))
        .ok()
}

pub(crate) fn as_bool(node: &Node<'_>, path: &str, sink: &mut Sink<'_>) -> Option<bool> {
    let value = node.get_ref().as_bool();
    if value.is_none() {
        wrong_type(node, path, "true or false", sink);
    }
    value
}

/// An integer within `range`, converted to the field's type.
pub(crate) fn as_int<T: TryFrom<i64>>(
    node: &Node<'_>,
    path: &str,
    range: RangeInclusive<i64>,
    sink: &mut Sink<'_>,
) -> Option<T> {
    let Some(int) = node.get_ref().as_integer() else {
        wrong_type(node, path, "an integer", sink);
        return None;
    };
    let parsed = i64::from_str_radix(int.as_str(), int.radix()).ok();
    let shown = || format!("{int}");
    match parsed {
        Some(v) if range.contains(&v) => {
            let converted = T::try_from(v).ok();
            if converted.is_none() {
                sink.push(node.span(), path, format!("{v} does not fit this field"));
            }
            converted
        }
        _ => {
            let v = parsed.map_or_else(shown, |v| v.to_string());
            sink.push(
                node.span(),
                path,
                format!("{v} is out of range {}..={}", range.start(), range.end()),
            );
            None
        }
    }
}

pub(crate) fn as_duration(node: &Node<'_>, path: &str, sink: &mut Sink<'_>) -> Option<Duration> {
    let Some(text) = node.get_ref().as_str() else {
        wrong_type(node, path, "a duration string such as \"1s\"", sink);
        return None;
    };
    match duration::parse(text) {
        Ok(d) => Some(d),
        Err(message) => {
            sink.push(node.span(), path, message);
            None
        }
    }
}

pub(crate) fn as_array<'a, 'i>(
    node: &'a Node<'i>,
    path: &str,
    sink: &mut Sink<'_>,
) -> Option<&'a [Node<'i>]> {
    let items = node.get_ref().as_array().map(|a| &a[..]);
    if items.is_none() {
        wrong_type(node, path, "an array", sink);
    }
    items
}

/// A table being read: its entries, where it starts (its `[header]` or `{`), and its path.
pub(crate) struct Table<'a, 'i> {
    entries: &'a DeTable<'i>,
    pub(crate) span: Span,
    pub(crate) path: String,
}

impl<'a, 'i> Table<'a, 'i> {
    pub(crate) fn root(doc: &'a Spanned<DeTable<'i>>) -> Self {
        Self {
            entries: doc.get_ref(),
            span: doc.span(),
            path: String::new(),
        }
    }

    pub(crate) fn of(node: &'a Node<'i>, path: String, sink: &mut Sink<'_>) -> Option<Self> {
        match node.get_ref().as_table() {
            Some(entries) => Some(Self {
                entries,
                span: node.span(),
                path,
            }),
            None => {
                wrong_type(node, &path, "a table", sink);
                None
            }
        }
    }

    /// Reads the inline table `node` (an element of a list, or a key's value) with
    /// `read`, after reporting any key not in `keys`. `None` if it, or anything in it,
    /// was wrong: a half-read element is never used.
    pub(crate) fn read_inline<T>(
        node: &'a Node<'i>,
        path: String,
        keys: &[&str],
        sink: &mut Sink<'_>,
        read: impl FnOnce(&Table<'a, 'i>, &mut Sink<'_>) -> Option<T>,
    ) -> Option<T> {
        let before = sink.len();
        let table = Table::of(node, path, sink)?;
        table.reject_unknown(keys, sink);
        let value = read(&table, sink);
        if sink.len() == before { value } else { None }
    }

    pub(crate) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(crate) fn node(&self, key: &str) -> Option<&'a Node<'i>> {
        self.entries.get(key)
    }

    /// Every entry: the key, where it was written, and its value.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'a str, Span, &'a Node<'i>)> {
        self.entries
            .iter()
            .map(|(key, node)| (key.get_ref().as_ref(), key.span(), node))
    }

    /// Reports every key not in `known`, suggesting the closest known one.
    pub(crate) fn reject_unknown(&self, known: &[&str], sink: &mut Sink<'_>) {
        for (key, _) in self.entries.iter() {
            let name: &str = key.get_ref();
            if known.contains(&name) {
                continue;
            }
            let mut message = format!("unknown key {name:?}");
            if let Some(near) = closest(name, known) {
                message.push_str(&format!("; did you mean {near:?}?"));
            } else {
                message.push_str(&format!("; expected one of: {}", known.join(", ")));
            }
            sink.push(key.span(), self.path_of(name), message);
        }
    }

    /// Reports a missing required key at the table's header. `true` when present.
    pub(crate) fn require(&self, key: &str, sink: &mut Sink<'_>) -> bool {
        let present = self.entries.contains_key(key);
        if !present {
            sink.push(
                self.span.clone(),
                self.path_of(key),
                format!("missing required field {key:?}"),
            );
        }
        present
    }

    /// A field read by `read`, which reports its own problems.
    pub(crate) fn value<T>(
        &self,
        key: &str,
        sink: &mut Sink<'_>,
        read: impl FnOnce(&Node<'i>, &str, &mut Sink<'_>) -> Option<T>,
    ) -> Field<T> {
        let Some(node) = self.node(key) else {
            return Field::Absent;
        };
        match read(node, &self.path_of(key), sink) {
            Some(value) => Field::Valid(At {
                span: node.span(),
                value,
            }),
            None => Field::Invalid,
        }
    }

    pub(crate) fn boolean(&self, key: &str, sink: &mut Sink<'_>) -> Field<bool> {
        self.value(key, sink, as_bool)
    }

    pub(crate) fn int<T: TryFrom<i64>>(
        &self,
        key: &str,
        range: RangeInclusive<i64>,
        sink: &mut Sink<'_>,
    ) -> Field<T> {
        self.value(key, sink, |n, p, s| as_int(n, p, range, s))
    }

    pub(crate) fn duration(&self, key: &str, sink: &mut Sink<'_>) -> Field<Duration> {
        self.value(key, sink, as_duration)
    }

    /// A string turned into a typed value by `parse`, whose error becomes the message.
    pub(crate) fn parsed<T>(
        &self,
        key: &str,
        sink: &mut Sink<'_>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Field<T> {
        self.value(key, sink, |n, p, s| parse_str(n, p, s, parse))
    }

    /// An integer turned into a typed value by `check`, whose error becomes the message.
    pub(crate) fn parsed_int<T>(
        &self,
        key: &str,
        sink: &mut Sink<'_>,
        check: impl FnOnce(i64) -> Result<T, String>,
    ) -> Field<T> {
        self.value(key, sink, |n, p, s| {
            let v = as_int::<i64>(n, p, i64::MIN..=i64::MAX, s)?;
            check(v).map_err(|m| s.push(n.span(), p, m)).ok()
        })
    }

    /// A duration accepted by `check`, whose error becomes the message.
    pub(crate) fn parsed_duration(
        &self,
        key: &str,
        sink: &mut Sink<'_>,
        check: impl FnOnce(Duration) -> Result<Duration, String>,
    ) -> Field<Duration> {
        self.value(key, sink, |n, p, s| {
            let d = as_duration(n, p, s)?;
            check(d).map_err(|m| s.push(n.span(), p, m)).ok()
        })
    }

    /// A duration within `range`.
    pub(crate) fn duration_in(
        &self,
        key: &str,
        range: RangeInclusive<Duration>,
        sink: &mut Sink<'_>,
    ) -> Field<Duration> {
        self.value(key, sink, |n, p, s| {
            let d = as_duration(n, p, s)?;
            if range.contains(&d) {
                Some(d)
            } else {
                s.push(
                    n.span(),
                    p,
                    format!(
                        "{} is out of range {}..={}",
                        duration::format(d),
                        duration::format(*range.start()),
                        duration::format(*range.end())
                    ),
                );
                None
            }
        })
    }

    /// Each element of an array field, read by `item` with its own path (`key[i]`).
    /// Elements that fail are left out; the array is `Invalid` only when it is not an array.
    pub(crate) fn list<T>(
        &self,
        key: &str,
        sink: &mut Sink<'_>,
        mut item: impl FnMut(&Node<'i>, String, &mut Sink<'_>) -> Option<T>,
    ) -> Field<Vec<At<T>>> {
        self.value(key, sink, |n, p, s| {
            let items = as_array(n, p, s)?;
            Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, node)| {
                        item(node, format!("{p}[{i}]"), s).map(|value| At {
                            span: node.span(),
                            value,
                        })
                    })
                    .collect(),
            )
        })
    }
}

/// The known key within edit distance 2 of a misspelt one, if any.
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::{closest, edit_distance};

    #[test]
    fn misspelt_keys_find_their_nearest_known_key() {
        assert_eq!(edit_distance("advert_intervl", "advert_interval"), 1);
        assert_eq!(
            closest("prioity", &["priority", "preempt"]),
            Some("priority")
        );
        assert_eq!(closest("colour", &["priority", "preempt"]), None);
    }
}
