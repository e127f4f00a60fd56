//! Every keyword the importer maps is used by some fixture, so the expected files show
//! what it becomes.

use std::collections::BTreeSet;

use super::{fixtures_dir, options};
use crate::import::convert::HANDLED;
use crate::import::lexer::{self, Item};
use crate::import::report::Log;

/// Every word of every fixture (includes followed), plus `include` when one is used.
fn fixture_words() -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let main = entry.unwrap().path().join("keepalived.conf");
        if !main.exists() {
            continue;
        }
        let mut log = Log::default();
        let source = lexer::read(&main, options().config_id.as_deref(), &mut log).unwrap();
        if source.files.len() > 1 {
            words.insert("include".to_owned());
        }
        for item in source.items {
            if let Item::Line(line) = item {
                words.extend(line.words.into_iter().map(|w| w.text));
            }
        }
    }
    words
}

#[test]
fn every_handled_keyword_is_used_by_a_fixture() {
    let words = fixture_words();
    let missing: Vec<&str> = HANDLED
        .iter()
        .copied()
        .filter(|k| !words.contains(*k))
        .collect();
    assert!(missing.is_empty(), "no fixture uses {missing:?}");
}

#[test]
fn handled_keywords_are_listed_once() {
    let set: BTreeSet<&str> = HANDLED.iter().copied().collect();
    assert_eq!(set.len(), HANDLED.len());
}
