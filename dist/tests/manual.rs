//! The generated manual pages render with groff and man-db without a single warning, and
//! the generated completions work in bash and fish and parse in zsh.

mod common;

use std::process::Command;

use common::{run, scratch, text};

#[test]
fn every_page_renders_without_warnings() {
    let dir = scratch("manual");
    vip_dist::generate(&dir).unwrap();
    let pages: Vec<_> = std::fs::read_dir(dir.join("man"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(pages.len() >= 10, "{pages:?}");
    for page in pages {
        // groff with every warning on; -z: no output, only the diagnostics.
        let out = run(Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&page));
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff on {}:\n{}",
            page.display(),
            text(&out)
        );
        // man-db as an operator would see it; --warnings passes groff's to stderr.
        let out = run(Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .env("PAGER", "cat"));
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "man -l {}:\n{}",
            page.display(),
            text(&out)
        );
        assert!(
            out.stdout.len() > 500,
            "{} renders almost nothing",
            page.display()
        );
    }
}

#[test]
fn the_configuration_page_shows_every_table_and_a_few_keys() {
    let dir = scratch("manual-config");
    vip_dist::generate(&dir).unwrap();
    let out = run(Command::new("man")
        .args(["-l"])
        .arg(dir.join("man/vipd.toml.5"))
        .env("MANWIDTH", "200")
        .env("PAGER", "cat"));
    let page = String::from_utf8_lossy(&out.stdout);
    for want in [
        "TABLE [global]",
        "TABLE [interfaces.NAME]",
        "TABLE [sync_groups.NAME]",
        "TABLE [[vrrp]]",
        "realtime_priority",
        "up_delay, down_delay",
        "advert_interval = \"1s\"",
        "notify, notify_master, notify_backup, notify_fault, notify_stop",
    ] {
        assert!(page.contains(want), "{want:?} not in\n{page}");
    }
}

fn completion(name: &str) -> std::path::PathBuf {
    let dir = scratch(&format!("completions-{name}"));
    vip_dist::generate(&dir).unwrap();
    dir.join("completions").join(name)
}

/// Asks bash's completion function what follows `words` (the last one being typed).
fn bash_complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let cword = words.len() - 1;
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source {}; COMP_WORDS=({}); COMP_CWORD={cword}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
         _vipd vipd '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.join(" "),
        words[cword],
        words.get(cword.wrapping_sub(1)).unwrap_or(&"vipd"),
    );
    let out = run(Command::new("bash").args(["--norc", "-c", &program]));
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .collect()
}

#[test]
fn bash_completes_subcommands_and_options() {
    let script = completion("vipd.bash");
    let subcommands = bash_complete(&script, &["vipd", ""]);
    for want in ["run", "check", "status", "xdp", "import"] {
        assert!(
            subcommands.iter().any(|s| s == want),
            "{want} in {subcommands:?}"
        );
    }
    let options = bash_complete(&script, &["vipd", "run", "--"]);
    for want in ["--config", "--log-format", "--keep-on-exit", "--xdp-mode"] {
        assert!(options.iter().any(|s| s == want), "{want} in {options:?}");
    }
    let formats = bash_complete(&script, &["vipd", "run", "--log-format", ""]);
    assert_eq!(formats, ["text", "json"]);
}

#[test]
fn fish_completes_subcommands() {
    let script = completion("vipd.fish");
    let out = run(Command::new("fish").args([
        "--no-config",
        "-c",
        &format!("source {}; complete -C 'vipd '", script.display()),
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    for want in ["run\t", "check\t", "status\t", "import\t"] {
        assert!(said.contains(want), "{want:?} in {said}");
    }
}

#[test]
fn zsh_parses_its_completion() {
    let script = completion("_vipd");
    let out = run(Command::new("zsh").arg("-n").arg(&script));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        text(&out)
    );
    let body = std::fs::read_to_string(&script).unwrap();
    assert!(body.starts_with("#compdef vipd"), "{}", &body[..40]);
}
