//! The importer's lexer on any text (`vipd import keepalived`'s first step: comments,
//! `@` conditions, `$` parameters, quotes and braces), read as the main file with
//! includes reported rather than followed.
//!
//! Beyond "never panics": every token and every error carries the main file and a line
//! inside the text, tokens come in line order, a line's words are never none, and its
//! raw text has no blanks at either end. The text is read as keepalived started with
//! `-i r1` would read it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::import::Loc;
use vipd::import::fuzzing::{MAIN, Token, lex};

fn inside(loc: &Loc, lines: usize) {
    assert_eq!(&*loc.file, MAIN);
    assert!(
        loc.line >= 1 && loc.line <= lines,
        "{loc}: outside {lines} lines"
    );
}

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let lines = text.split('\n').count();
    let (tokens, errors) = lex(&text, Some("r1"));
    let mut last = 1;
    for t in &tokens {
        let loc = match t {
            Token::Line { loc, words, raw } => {
                assert!(!words.is_empty());
                assert_eq!(raw.trim(), raw);
                loc
            }
            Token::Open(loc) | Token::Close(loc) => loc,
        };
        inside(loc, lines);
        assert!(loc.line >= last, "{loc} after line {last}");
        last = loc.line;
    }
    for e in &errors {
        inside(e.loc.as_ref().expect("a lexer error has a line"), lines);
    }
});
