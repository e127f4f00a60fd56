//! The recipes in `docs/recipes.md`, read by the lab tests that run them: a fenced block
//! that follows a `<!-- recipe: NAME -->` line is recipe NAME.

use anyhow::{Context, Result};

/// The text of `docs/recipes.md`.
pub fn document() -> Result<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/recipes.md");
    std::fs::read_to_string(path).with_context(|| format!("read {path}"))
}

/// The body of the block named `name` (without its fences).
pub fn block(name: &str) -> Result<String> {
    find(&document()?, name).with_context(|| format!("no recipe {name:?} in docs/recipes.md"))
}

fn find(doc: &str, name: &str) -> Option<String> {
    let marker = format!("<!-- recipe: {name} -->");
    let mut lines = doc.lines().skip_while(|l| l.trim() != marker).skip(1);
    let fence = lines.next()?;
    if !fence.starts_with("```") {
        return None;
    }
    let body: Vec<&str> = lines.take_while(|l| !l.starts_with("```")).collect();
    Some(body.join("\n") + "\n")
}

/// The commands of a shell recipe, one per non-empty, non-comment line.
pub fn commands(name: &str) -> Result<Vec<String>> {
    Ok(block(name)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_the_fenced_text_after_its_marker() {
        let doc = "intro\n<!-- recipe: a -->\n```sh\none\ntwo\n```\n<!-- recipe: b -->\n```\nthree\n```\n";
        assert_eq!(find(doc, "a").as_deref(), Some("one\ntwo\n"));
        assert_eq!(find(doc, "b").as_deref(), Some("three\n"));
        assert_eq!(find(doc, "c"), None);
    }

    #[test]
    fn every_marked_block_of_the_shipped_recipes_is_found() {
        let doc = document().unwrap();
        let names: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.trim().strip_prefix("<!-- recipe: ")?.strip_suffix(" -->"))
            .collect();
        assert!(names.len() >= 6, "{names:?}");
        for n in names {
            assert!(find(&doc, n).is_some(), "recipe {n} has no block");
        }
    }
}
