//! The importer's parser (keywords and `{ }` blocks into a tree) on the lexer's output
//! for any text, then the whole import of that text (conversion and the vipd file).
//!
//! Beyond "never panics":
//! - a tree built without a brace error holds every line of the text once, in order
//!   (its keywords and arguments, depth first, are the lexer's lines), and the braces
//!   were balanced;
//! - every parser error names the main file and a line inside the text;
//! - an import that succeeds reports no error and writes a vipd file that is TOML, that
//!   the configuration reader never panics on, and whose problems (checked against the
//!   importer tests' host) point inside it.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vipd::config::{Config, FakeHost};
use vipd::import::Options;
use vipd::import::fuzzing::{MAIN, Token, Tree, import_text, parse};

/// The host of the importer's tests: the configuration tests' lab, a shell, and the
/// programs keepalived configurations name by path search.
fn host() -> &'static FakeHost {
    static HOST: OnceLock<FakeHost> = OnceLock::new();
    HOST.get_or_init(|| {
        FakeHost::lab()
            .dir("/usr/bin", 0o755, 0, 0)
            .file("/bin/sh", 0o755, 0, 0)
            .file("/usr/bin/pidof", 0o755, 0, 0)
            .file("/usr/bin/killall", 0o755, 0, 0)
    })
}

fn preorder(trees: &[Tree], out: &mut Vec<Vec<String>>) {
    for t in trees {
        let mut line = vec![t.keyword.clone()];
        line.extend(t.args.iter().cloned());
        out.push(line);
        if let Some(block) = &t.block {
            preorder(block, out);
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let lines = text.split('\n').count();
    let parsed = parse(&text, Some("r1"));
    for e in &parsed.parser_errors {
        let loc = e.loc.as_ref().expect("a parser error has a line");
        assert_eq!(&*loc.file, MAIN);
        assert!(loc.line >= 1 && loc.line <= lines, "{e}");
    }
    if parsed.parser_errors.is_empty() {
        let mut depth = 0i64;
        let mut words = Vec::new();
        for t in &parsed.tokens {
            match t {
                Token::Line { words: w, .. } => words.push(w.clone()),
                Token::Open(_) => depth += 1,
                Token::Close(_) => {
                    depth -= 1;
                    assert!(depth >= 0, "a '}}' closed nothing, unreported");
                }
            }
        }
        assert_eq!(depth, 0, "an unclosed '{{', unreported");
        let mut tree = Vec::new();
        preorder(&parsed.tree, &mut tree);
        assert_eq!(tree, words, "the tree lost or reordered lines");
    }

    let options = Options {
        config_id: Some("r1".to_owned()),
        router_id: "fallback-host".to_owned(),
    };
    let outcome = import_text(&text, &options, host());
    if let Some(toml) = &outcome.toml {
        assert!(outcome.errors.is_empty());
        let toml_lines = toml.split('\n').count();
        if let Err(e) = Config::parse(toml, "vipd.toml", host()) {
            for p in &e.problems {
                assert!(
                    p.line >= 1 && p.line <= toml_lines,
                    "{p}: outside the imported file\n{toml}"
                );
                assert!(
                    !p.message.starts_with("TOML syntax"),
                    "the importer wrote a file that is not TOML: {p}\n{toml}"
                );
            }
        }
    } else {
        assert!(!outcome.errors.is_empty(), "no file and no error");
    }
});
