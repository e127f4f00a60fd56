//! Input the importer refuses: every error names the file and line, and nothing is
//! written.

use super::{import, import_one, report_lines};
use crate::import::EXIT_ERROR;

/// The errors of an import that must fail.
fn errors(files: &[(&str, &str)]) -> Vec<String> {
    let outcome = import(files);
    assert!(outcome.toml.is_none(), "a file was produced");
    assert_eq!(outcome.status(), EXIT_ERROR);
    outcome.errors.iter().map(ToString::to_string).collect()
}

fn error(text: &str) -> String {
    let mut all = errors(&[("keepalived.conf", text)]);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.remove(0)
}

#[test]
fn an_unclosed_brace_is_reported_where_it_opens() {
    let text = "global_defs {\n    router_id r1\n}\nvrrp_instance gw {\n    interface eth0\n    virtual_ipaddress {\n        192.0.2.1/24\n}\n";
    assert_eq!(error(text), "keepalived.conf:4: unclosed '{' opened here");
}

#[test]
fn nested_unclosed_braces_are_each_reported() {
    let all = errors(&[(
        "keepalived.conf",
        "vrrp_instance gw {\n  virtual_ipaddress {\n",
    )]);
    assert_eq!(
        all,
        [
            "keepalived.conf:1: unclosed '{' opened here",
            "keepalived.conf:2: unclosed '{' opened here"
        ]
    );
}

#[test]
fn an_unexpected_closing_brace_is_an_error() {
    assert_eq!(
        error("global_defs {\n    router_id r1\n}\n}\n"),
        "keepalived.conf:4: unexpected '}': no block is open"
    );
}

#[test]
fn a_brace_without_a_keyword_is_an_error() {
    assert_eq!(
        error("global_defs {\n}\n{\n}\n"),
        "keepalived.conf:3: unexpected '{': no keyword before it"
    );
}

#[test]
fn an_include_loop_is_reported_at_the_include_that_closes_it() {
    let all = errors(&[
        (
            "keepalived.conf",
            "global_defs {\n}\ninclude conf.d/a.conf\n",
        ),
        ("conf.d/a.conf", "# a\ninclude b.conf\n"),
        ("conf.d/b.conf", "\n\ninclude ../keepalived.conf\n"),
    ]);
    assert_eq!(
        all,
        [
            "conf.d/b.conf:3: include: include loop: keepalived.conf is already being read \
          (keepalived.conf -> conf.d/a.conf -> conf.d/b.conf -> keepalived.conf)"
        ]
    );
}

#[test]
fn a_missing_included_file_is_an_error() {
    let e = error("global_defs {\n}\n\ninclude missing.conf\n");
    assert!(
        e.starts_with("keepalived.conf:4: include: cannot read missing.conf: "),
        "{e}"
    );
}

#[test]
fn a_pattern_that_must_match_and_does_not_is_an_error_but_includer_is_optional() {
    assert_eq!(
        error("includem conf.d/*.conf\n"),
        "keepalived.conf:1: includem: conf.d/*.conf matches no file"
    );
    let outcome = import_one("global_defs {\n router_id r1\n}\nincluder conf.d/*.conf\n");
    assert!(outcome.toml.is_some());
    assert!(
        report_lines(&outcome).contains(
            &"keepalived.conf:4: includer: note: conf.d/*.conf matches no file".to_owned()
        )
    );
}

/// A directory name past NAME_MAX names nothing, as glob() has it: before, a wildcard
/// after one failed as a directory the importer could not read (found by fuzzing).
#[test]
fn a_directory_name_too_long_to_exist_matches_no_file() {
    let long = "d".repeat(300);
    assert_eq!(
        error(&format!("includem {long}/*.conf\n")),
        format!("keepalived.conf:1: includem: {long}/*.conf matches no file")
    );
}

#[test]
fn a_value_of_the_wrong_shape_is_an_error_with_its_line() {
    let text = "vrrp_instance gw {\n    interface eth0\n    virtual_router_id 51\n    priority abc\n    virtual_ipaddress {\n        192.0.2.1/24\n    }\n}\n";
    assert_eq!(
        error(text),
        "keepalived.conf:4: priority: expected a number in 1..=255, found \"abc\""
    );
    assert_eq!(
        error("vrrp_instance gw {\n  virtual_router_id 256\n}\n"),
        "keepalived.conf:2: virtual_router_id: expected a number in 1..=255, found \"256\""
    );
    assert_eq!(
        error("vrrp_instance gw {\n  virtual_ipaddress {\n    192.0.2.300/24\n  }\n}\n"),
        "keepalived.conf:3: virtual address: \"192.0.2.300/24\" is not an IP address"
    );
    assert_eq!(
        error("vrrp_instance gw {\n  advert_int fast\n}\n"),
        "keepalived.conf:2: advert_int: expected seconds in 0.01..=255, found \"fast\""
    );
}

#[test]
fn errors_in_included_files_name_those_files() {
    let all = errors(&[
        ("keepalived.conf", "include conf.d/*.conf\n"),
        (
            "conf.d/gw.conf",
            "vrrp_instance gw {\n  interface eth0\n  priority 0\n}\n",
        ),
    ]);
    assert_eq!(
        all,
        ["conf.d/gw.conf:3: priority: expected a number in 1..=255, found \"0\""]
    );
}

#[test]
fn an_unterminated_quote_is_an_error() {
    assert_eq!(
        error("vrrp_script chk {\n  script \"/bin/check\n}\n"),
        "keepalived.conf:2: unterminated quote: a '\"' is not closed on its line"
    );
}

#[test]
fn unsupported_parameter_forms_are_refused_with_their_line() {
    assert_eq!(
        error("$BLOCK= \\\n  priority 100\n"),
        "keepalived.conf:1: $BLOCK: multi-line parameter definitions are not supported by the importer; expand it by hand"
    );
    assert_eq!(
        error("~SEQ(N, 1, 3)\n"),
        "keepalived.conf:1: ~SEQ: sequence blocks are not supported by the importer; expand it by hand"
    );
    assert_eq!(
        error("$A=${B}\n$B=${A}\nrouter_id ${A}\n"),
        "keepalived.conf:3: parameter substitution does not end (a definition refers to itself)"
    );
}

#[test]
fn unknown_top_level_keywords_are_reported_not_fatal() {
    let outcome = import_one(
        "global_defs {\n  router_id r1\n}\nvrrp_instanse gw {\n  interface eth0\n}\nvrrp_instance gw {\n  interface eth0\n  virtual_router_id 51\n  virtual_ipaddress {\n    192.0.2.1/24\n  }\n}\n",
    );
    assert!(outcome.toml.is_some());
    assert_eq!(outcome.status(), crate::import::EXIT_LEFT_OUT);
    assert!(
        report_lines(&outcome)
            .contains(&"keepalived.conf:4: vrrp_instanse: unknown keepalived keyword".to_owned())
    );
}

/// `""` is a keyword that is empty, not a missing one: its block stays in the tree and is
/// reported like any unknown keyword's, with what is inside it (found by fuzzing: the
/// parser used to take the empty keyword for a brace error already reported and dropped
/// the block without a word).
#[test]
fn a_block_whose_keyword_is_an_empty_string_is_reported_not_lost() {
    let outcome = import_one("\"\" \"\" @^r1 broken {\n    priority 100\n}\n");
    let lines = report_lines(&outcome);
    assert!(
        lines
            .iter()
            .any(|l| l == "keepalived.conf:1: \"\": unknown keepalived keyword"),
        "line 1 not reported: {lines:#?}"
    );
}
