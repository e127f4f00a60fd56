//! Whatever the file says, reading it never panics, and problems point inside the file.

use proptest::prelude::*;

use super::{FakeHost, parse};
use crate::config::Config;

const EXAMPLE: &str = include_str!("../../../examples/vipd.toml");

/// Reads `text`; a rejection must place every problem inside it, an acceptance must print
/// back to an equal configuration.
fn check(text: &str) {
    match Config::parse(text, "m.toml", &FakeHost::lab()) {
        Ok(config) => {
            let printed = config.to_toml_string();
            assert_eq!(parse(&printed).as_ref(), Ok(&config), "printed:\n{printed}");
        }
        Err(e) => {
            assert!(!e.problems.is_empty());
            let lines = text.split('\n').count();
            for p in &e.problems {
                assert!(p.line >= 1 && p.line <= lines, "{p} outside {lines} lines");
                assert!(p.col >= 1, "{p}");
            }
        }
    }
}

#[test]
fn dropping_any_one_line_of_the_example_never_panics() {
    let lines: Vec<&str> = EXAMPLE.lines().collect();
    for skip in 0..lines.len() {
        let text: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect();
        check(&text.join("\n"));
    }
}

#[test]
fn replacing_any_value_with_values_of_other_types_never_panics() {
    let replacements = [
        "0",
        "-1",
        "256",
        "9999999999999999999999",
        "1.5",
        "true",
        "\"\"",
        "\"x\"",
        "[]",
        "[1, \"a\"]",
        "{}",
        "{ name = 1 }",
        "1979-05-27",
        "\"1s\"",
        "\"::\"",
        "\"0.0.0.0/0\"",
    ];
    let lines: Vec<&str> = EXAMPLE.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        if key.starts_with('#') {
            continue;
        }
        for value in replacements {
            let mut edited = lines.clone();
            let replaced = format!("{key} = {value}");
            edited[i] = &replaced;
            check(&edited.join("\n"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_of_the_example_never_panic(
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), 0usize..3, prop::sample::select(vec![
                "\"", "[", "]", "{", "}", "=", ",", "\n", "#", ".", "/", "-", "0", "9", "a", " ",
                "é", "\\", "'", "\t", "[[vrrp]]\n", "[global]\n",
            ])),
            1..6,
        )
    ) {
        let mut text = EXAMPLE.to_owned();
        for (at, op, piece) in edits {
            let boundaries: Vec<usize> =
                text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
            let pos = boundaries[at.index(boundaries.len())];
            match op {
                0 => text.insert_str(pos, piece),
                1 => {
                    let end = text[pos..].chars().next().map_or(pos, |c| pos + c.len_utf8());
                    text.replace_range(pos..end, "");
                }
                _ => {
                    let end = text[pos..].chars().next().map_or(pos, |c| pos + c.len_utf8());
                    text.replace_range(pos..end, piece);
                }
            }
        }
        check(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }
}
