//! Keyword tables, as keepalived's own parser has them (`install_keyword()`): each block and
//! each kind of option line is a table of keywords with the handler that reads one, so a
//! keyword is found by name, handled in one small function, and listed in one place.
//!
//! Blocks (`vrrp_instance`, ...) map a line's keyword to a [`Keyword`]; option lines (a
//! `virtual_ipaddress` address, a `virtual_routes` route, ...) are walked word by word by
//! [`read_options`], each option's handler taking the words it needs from [`Words`].

use super::Ctx;
use crate::import::parse::Node;

/// What a keyword of a block does: handled by `F`, or reported with the reason vipd has
/// no equivalent (left out), or with a note (the file does the same thing said
/// differently).
pub(crate) enum Does<F> {
    Handle(F),
    LeftOut(&'static str),
    Note(&'static str),
}

/// One keyword of a block's table: its names (aliases share a handler) and what it does.
pub(crate) struct Keyword<F> {
    pub(crate) names: &'static [&'static str],
    pub(crate) does: Does<F>,
}

/// A table entry for keywords vipd has no equivalent for, with why.
pub(crate) const fn left_out<F>(names: &'static [&'static str], why: &'static str) -> Keyword<F> {
    Keyword {
        names,
        does: Does::LeftOut(why),
    }
}

/// A table entry for keywords reported with a note.
pub(crate) const fn note<F>(names: &'static [&'static str], text: &'static str) -> Keyword<F> {
    Keyword {
        names,
        does: Does::Note(text),
    }
}

/// The entry for `keyword` in `table`.
pub(crate) fn find<'t, F>(table: &'t [Keyword<F>], keyword: &str) -> Option<&'t Does<F>> {
    table
        .iter()
        .find(|k| k.names.contains(&keyword))
        .map(|k| &k.does)
}

/// Reports `node` as the table says when it is not handled: left out with its reason, a
/// note, or an unknown keyword. Returns the handler when there is one.
pub(crate) fn dispatch<'t, F>(
    table: &'t [Keyword<F>],
    node: &Node,
    ctx: &mut Ctx<'_>,
) -> Option<&'t F> {
    let keyword = node.keyword.as_str();
    match find(table, keyword) {
        Some(Does::Handle(f)) => Some(f),
        Some(Does::LeftOut(reason)) => {
            ctx.log.left_out(&node.loc, keyword, *reason);
            None
        }
        Some(Does::Note(text)) => {
            ctx.log.note(&node.loc, keyword, *text);
            None
        }
        None => {
            ctx.log
                .left_out(&node.loc, keyword, "unknown keepalived keyword");
            None
        }
    }
}

/// The words of an option line, read front to back.
pub(crate) struct Words<'a> {
    words: &'a [&'a str],
    next: usize,
}

impl<'a> Words<'a> {
    pub(crate) fn new(words: &'a [&'a str]) -> Words<'a> {
        Words { words, next: 0 }
    }

    /// The next word, taken.
    pub(crate) fn take(&mut self) -> Option<&'a str> {
        let w = self.words.get(self.next).copied();
        self.next += usize::from(w.is_some());
        w
    }

    /// The next word, left in place.
    pub(crate) fn peek(&self) -> Option<&'a str> {
        self.words.get(self.next).copied()
    }
}

/// What the walker needs from the line being read.
pub(crate) trait OptionLine {
    /// Reports that `option` has no value after it (the line is dropped).
    fn missing_value(&self, option: &str, ctx: &mut Ctx<'_>);

    /// A word no option of the table names (a route's destination, or an error);
    /// `None` drops the line.
    fn other(&mut self, word: &str, words: &mut Words<'_>, ctx: &mut Ctx<'_>) -> Option<()>;
}

/// Takes the value of `option`, reporting a line that ends without one.
pub(crate) fn value<'a, L: OptionLine + ?Sized>(
    line: &L,
    option: &str,
    words: &mut Words<'a>,
    ctx: &mut Ctx<'_>,
) -> Option<&'a str> {
    let v = words.take();
    if v.is_none() {
        line.missing_value(option, ctx);
    }
    v
}

/// Reads one option (its name already taken) into the line; `None` drops the line (the
/// handler reported why).
pub(crate) type OptionFn<L> = fn(&mut L, &str, &mut Words<'_>, &mut Ctx<'_>) -> Option<()>;

/// One option of a line's table.
pub(crate) struct Opt<L> {
    pub(crate) names: &'static [&'static str],
    pub(crate) read: OptionFn<L>,
}

/// A table entry: option `names` read by `read`.
pub(crate) const fn opt<L>(names: &'static [&'static str], read: OptionFn<L>) -> Opt<L> {
    Opt { names, read }
}

/// Walks `words` through `table`; `None` when the line is dropped.
pub(crate) fn read_options<L: OptionLine>(
    table: &[Opt<L>],
    line: &mut L,
    words: &[&str],
    ctx: &mut Ctx<'_>,
) -> Option<()> {
    let mut words = Words::new(words);
    while let Some(word) = words.take() {
        match table.iter().find(|o| o.names.contains(&word)) {
            Some(o) => (o.read)(line, word, &mut words, ctx)?,
            None => line.other(word, &mut words, ctx)?,
        }
    }
    Some(())
}
