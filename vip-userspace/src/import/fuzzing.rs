//! The importer's steps driven from text, for the fuzz targets in `tests/fuzz/`
//! (docs/fuzzing.md). Thin wrappers that hand the crate's own lexer, parser and glob to
//! code outside it in plain types; nothing here reads a file except [`expand`].
//! Compiled for tests and with the `fuzzing` feature only.

use std::path::{Path, PathBuf};

use super::lexer::{self, Item};
use super::report::Log;
use super::{ImportError, Loc, Options, Outcome, glob, parse};
use crate::config::Host;

/// The name the text is read under (as if it were `/keepalived.conf`).
pub const MAIN: &str = "keepalived.conf";

/// One item of the lexer's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// The words of a line (or of the part of it between braces), quotes removed, and
    /// its text after comments and substitution.
    Line {
        loc: Loc,
        words: Vec<String>,
        raw: String,
    },
    Open(Loc),
    Close(Loc),
}

/// One keyword with its arguments and block, as the parser builds the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub keyword: String,
    pub args: Vec<String>,
    pub loc: Loc,
    pub block: Option<Vec<Tree>>,
}

/// What reading a text gave: its tokens, its tree, and the errors of each step.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub tokens: Vec<Token>,
    pub lexer_errors: Vec<ImportError>,
    pub tree: Vec<Tree>,
    pub parser_errors: Vec<ImportError>,
}

fn token(item: &Item) -> Token {
    match item {
        Item::Line(line) => Token::Line {
            loc: line.loc.clone(),
            words: line.words.iter().map(|w| w.text.clone()).collect(),
            raw: line.raw.clone(),
        },
        Item::Open(loc) => Token::Open(loc.clone()),
        Item::Close(loc) => Token::Close(loc.clone()),
    }
}

fn tree(node: &parse::Node) -> Tree {
    Tree {
        keyword: node.keyword.clone(),
        args: node.args.iter().map(|w| w.text.clone()).collect(),
        loc: node.loc.clone(),
        block: node.block.as_ref().map(|b| b.iter().map(tree).collect()),
    }
}

/// The lexer on `text` as the main file [`MAIN`]; an `include` is an error, not read.
pub fn lex(text: &str, config_id: Option<&str>) -> (Vec<Token>, Vec<ImportError>) {
    let mut log = Log::default();
    let source = lexer::read_text(text, MAIN, config_id, &mut log);
    (source.items.iter().map(token).collect(), log.errors)
}

/// The lexer, then the parser, on `text`.
pub fn parse(text: &str, config_id: Option<&str>) -> Parsed {
    let mut lexer_log = Log::default();
    let source = lexer::read_text(text, MAIN, config_id, &mut lexer_log);
    let tokens = source.items.iter().map(token).collect();
    let mut parser_log = Log::default();
    let nodes = parse::parse(source.items, &mut parser_log);
    Parsed {
        tokens,
        lexer_errors: lexer_log.errors,
        tree: nodes.iter().map(tree).collect(),
        parser_errors: parser_log.errors,
    }
}

/// The whole import of `text` as the main file, as `vipd import keepalived` does it
/// (includes are errors: nothing is read).
pub fn import_text(text: &str, options: &Options, host: &dyn Host) -> Outcome {
    let mut log = Log::default();
    let source = lexer::read_text(text, MAIN, options.config_id.as_deref(), &mut log);
    super::from_source(source, PathBuf::from("/"), log, options, host)
}

pub use super::glob::GlobError;

/// An include pattern's brace alternatives, in order, within the importer's limits.
pub fn braces(pattern: &str) -> Result<Vec<String>, GlobError> {
    glob::braces(pattern)
}

/// Whether a file name matches one pattern component (fnmatch(3) without flags).
pub fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    glob::fnmatch(pattern, name)
}

/// Whether `include` treats the pattern as a glob.
pub fn has_wildcard(pattern: &str) -> bool {
    glob::has_wildcard(pattern)
}

/// The paths an include pattern names on this machine, in glob's order, within the
/// importer's limits.
pub fn expand(pattern: &Path) -> Result<Vec<PathBuf>, GlobError> {
    glob::expand(pattern)
}
