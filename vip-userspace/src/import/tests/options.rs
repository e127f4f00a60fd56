//! Option words read as keepalived reads them, through the keyword tables
//! (`import/convert/options.rs`): what an option takes after it, what a missing value or
//! an unknown word says, and which words end a line.

use super::{import_one, instance, report_lines};

/// The report lines of an instance with one VIP and `body`.
fn report(body: &str) -> (Option<String>, Vec<String>) {
    let text = instance(&format!(
        "    virtual_ipaddress {{\n        192.0.2.1/24\n    }}\n{body}"
    ));
    let outcome = import_one(&text);
    let lines = report_lines(&outcome);
    (outcome.toml, lines)
}

fn has(lines: &[String], expected: &str) {
    assert!(
        lines.iter().any(|l| l.contains(expected)),
        "{expected}\n{lines:#?}"
    );
}

#[test]
fn a_value_missing_at_the_end_of_a_line_names_its_option() {
    for (body, expected) in [
        (
            "    virtual_ipaddress_excluded {\n        192.0.2.2/24 dev\n    }",
            "error: keepalived.conf:11: 192.0.2.2/24: dev needs a value",
        ),
        (
            "    virtual_routes {\n        198.51.100.0/24 via inet6\n    }",
            "virtual route \"198.51.100.0/24 via inet6\": inet6 needs a value",
        ),
        (
            "    virtual_routes {\n        to\n    }",
            "virtual route \"to\": to needs a value",
        ),
        // An unknown rule option is read with its value, as keepalived reads it.
        (
            "    virtual_rules {\n        from 192.0.2.0/24 wibble\n    }",
            "virtual rule \"from 192.0.2.0/24 wibble\": wibble needs a value",
        ),
        (
            "    virtual_rules {\n        from 192.0.2.0/24 goto\n    }",
            "virtual rule \"from 192.0.2.0/24 goto\": goto needs a value",
        ),
    ] {
        let (toml, lines) = report(body);
        assert!(toml.is_none(), "an error writes nothing");
        has(&lines, expected);
    }
}

#[test]
fn unknown_words_are_errors_except_a_routes_destination() {
    let (_, lines) =
        report("    virtual_ipaddress_excluded {\n        192.0.2.3/24 frobnicate\n    }");
    has(
        &lines,
        "192.0.2.3/24: unknown address option \"frobnicate\"",
    );
    let (_, lines) = report("    virtual_rules {\n        from 192.0.2.0/24 wibble 3\n    }");
    has(&lines, "unknown rule option \"wibble\"");
    let (_, lines) = report("    virtual_rules {\n        from 192.0.2.0/24 type weird\n    }");
    has(&lines, "unknown rule type \"weird\"");
    // `via inet6 ADDR` takes two words; the address decides the family.
    let (_, lines) =
        report("    virtual_routes {\n        198.51.100.0/24 via inet6 2001:db8::1\n    }");
    has(&lines, "mixes IPv4 and IPv6");
}

#[test]
fn options_take_the_words_they_need_and_the_route_keeps_the_rest() {
    let (toml, lines) = report(
        "    virtual_routes {\n        to 203.0.113.0/24 dev eth0\n        blackhole 203.0.113.64/26\n        203.0.113.128/25 via 192.0.2.254 mtu lock 1400 onlink\n    }\n    virtual_rules {\n        from 192.0.2.0/24 blackhole priority 2\n    }",
    );
    let toml = toml.expect("written");
    assert!(
        toml.contains("{ to = \"203.0.113.0/24\", dev = \"eth0\", protocol = 18 }"),
        "{toml}"
    );
    assert!(
        toml.contains("{ to = \"203.0.113.64/26\", protocol = 18, type = \"blackhole\" }"),
        "{toml}"
    );
    assert!(
        toml.contains(
            "{ to = \"203.0.113.128/25\", via = \"192.0.2.254\", protocol = 18, onlink = true }"
        ),
        "mtu and its lock and value taken, onlink read after them\n{toml}"
    );
    assert!(
        toml.contains("{ from = \"192.0.2.0/24\", priority = 2, action = \"blackhole\" }"),
        "{toml}"
    );
    has(&lines, "mtu 1400: no vipd equivalent");
}
