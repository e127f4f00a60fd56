//! keepalived's configuration as a tree: each line is a keyword with its arguments, and a
//! `{ ... }` following it (on the same line or the next) is its block.
//!
//! The tree knows no keywords; `convert` gives them their meaning. Braces are checked
//! here: a `}` with no open block, a `{` with no keyword before it, and a `{` never closed
//! are errors at their line.

use super::lexer::{Item, Line, Word};
use super::report::{Loc, Log};

/// One keyword line, with its block if it has one.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) keyword: String,
    pub(crate) args: Vec<Word>,
    /// The line's text after comments and substitution (for script strings).
    pub(crate) raw: String,
    pub(crate) loc: Loc,
    pub(crate) block: Option<Vec<Node>>,
}

impl Node {
    fn from_line(line: Line) -> Node {
        let mut words = line.words.into_iter();
        let keyword = words.next().map(|w| w.text).unwrap_or_default();
        Node {
            keyword,
            args: words.collect(),
            raw: line.raw,
            loc: line.loc,
            block: None,
        }
    }

    /// The argument at `i`, if written.
    pub(crate) fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(|w| w.text.as_str())
    }

    /// The block's children (none when there is no block).
    pub(crate) fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or_default()
    }

    /// Every word of every line of the block, in order (keepalived's `read_value_block`,
    /// used for lists such as a sync group's `group { A B }`).
    pub(crate) fn block_words(&self) -> Vec<Word> {
        let mut out = Vec::new();
        for child in self.children() {
            out.push(Word {
                text: child.keyword.clone(),
                loc: child.loc.clone(),
            });
            out.extend(child.args.iter().cloned());
        }
        out
    }
}

struct Frame {
    node: Node,
    open: Loc,
    children: Vec<Node>,
    /// A block opened with no keyword before it: already reported, dropped when it
    /// closes. A flag rather than an empty keyword, because `"" {` is a keyword line
    /// whose keyword is empty, and it must stay in the tree for `convert` to report.
    anonymous: bool,
}

/// Builds the tree; brace errors go to `log`.
pub(crate) fn parse(items: Vec<Item>, log: &mut Log) -> Vec<Node> {
    let mut top: Vec<Node> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // Whether the last node of the current level may still take a block.
    let mut open_allowed = false;
    for item in items {
        let current = match stack.last_mut() {
            Some(frame) => &mut frame.children,
            None => &mut top,
        };
        match item {
            Item::Line(line) => {
                current.push(Node::from_line(line));
                open_allowed = true;
            }
            Item::Open(loc) => match current.pop() {
                Some(node) if open_allowed => {
                    stack.push(Frame {
                        node,
                        open: loc,
                        children: Vec::new(),
                        anonymous: false,
                    });
                    open_allowed = false;
                }
                other => {
                    current.extend(other);
                    log.error(&loc, "unexpected '{': no keyword before it");
                    // An anonymous block, so its '}' is not a second error; dropped
                    // when it closes.
                    stack.push(Frame {
                        node: Node {
                            keyword: String::new(),
                            args: Vec::new(),
                            raw: String::new(),
                            loc: loc.clone(),
                            block: None,
                        },
                        open: loc,
                        children: Vec::new(),
                        anonymous: true,
                    });
                    open_allowed = false;
                }
            },
            Item::Close(loc) => match stack.pop() {
                Some(mut frame) => {
                    frame.node.block = Some(frame.children);
                    if !frame.anonymous {
                        match stack.last_mut() {
                            Some(parent) => parent.children.push(frame.node),
                            None => top.push(frame.node),
                        }
                    }
                    open_allowed = false;
                }
                None => log.error(&loc, "unexpected '}': no block is open"),
            },
        }
    }
    // Unclosed blocks, innermost last; keep what they hold so later steps can go on.
    let mut unclosed = Vec::new();
    while let Some(mut frame) = stack.pop() {
        if frame.anonymous {
            continue; // already reported as unexpected
        }
        unclosed.push(frame.open.clone());
        frame.node.block = Some(frame.children);
        match stack.last_mut() {
            Some(parent) => parent.children.push(frame.node),
            None => top.push(frame.node),
        }
    }
    for loc in unclosed.iter().rev() {
        log.error(loc, "unclosed '{' opened here");
    }
    top
}
