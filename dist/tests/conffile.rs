//! The configuration the package installs as /etc/vipd/vipd.toml: a starting point that
//! loads on any host with the package installed (the interface is `lo`, the script user
//! is the package's) without a warning, whose every key is one the documented example
//! explains, installed readable by root alone, with scripts run as the user the
//! package's scripts create and remove.

mod common;

use common::{PackagedHost, SCRIPT_USER, dist};
use vipd::config::Config;

const PACKAGED: &str = include_str!("../vipd.toml");

#[test]
fn the_packaged_configuration_loads_here_without_warnings() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vipd.toml");
    let config = Config::load(&path, &PackagedHost).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.warnings, []);
    assert_eq!(config.instances.len(), 1);
    assert_eq!(config.instances[0].interface, "lo");
    assert!(!config.instances[0].allowed_peers.is_empty());
    assert_eq!(
        config.global.script_user.as_ref().map(|u| u.name.as_str()),
        Some(SCRIPT_USER)
    );
}

#[test]
fn every_key_it_sets_is_documented_in_the_example() {
    let reference = vip_dist::example::parse(vip_dist::example::EXAMPLE);
    let documented: Vec<&str> = reference
        .tables
        .iter()
        .flat_map(|t| t.keys().flat_map(|k| k.names.iter().map(String::as_str)))
        .collect();
    for line in PACKAGED.lines() {
        let line = line.trim_start_matches("# ");
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            assert!(documented.contains(&key), "{key} is not in the example");
        }
    }
}

/// The package installs the file 0640 (it may hold a VRRPv2 password); its postinst
/// creates the script user the file names and its postrm removes that one on purge
/// (`cargo xtask package --test` runs them).
#[test]
fn the_package_installs_it_0640_and_manages_its_script_user() {
    let manifest = std::fs::read_to_string(dist().join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(r#"["vipd.toml", "etc/vipd/vipd.toml", "640"]"#),
        "{manifest}"
    );
    assert!(manifest.contains(r#"maintainer-scripts = "debian/""#));
    for script in ["postinst", "postrm"] {
        let text = std::fs::read_to_string(dist().join("debian").join(script)).unwrap();
        assert!(
            text.contains(&format!("SCRIPT_USER={SCRIPT_USER}\n")),
            "debian/{script} manages another user"
        );
        assert!(
            text.contains("#DEBHELPER#"),
            "debian/{script}: no DEBHELPER line"
        );
    }
    assert!(PACKAGED.contains(&format!("script_user = \"{SCRIPT_USER}\"\n")));
}

/// Both maintainer scripts parse as POSIX shell (`sh -n`).
#[test]
fn the_maintainer_scripts_are_valid_shell() {
    for script in ["postinst", "postrm"] {
        let out = common::run(
            std::process::Command::new("sh")
                .arg("-n")
                .arg(dist().join("debian").join(script)),
        );
        assert!(out.status.success(), "{script}: {}", common::text(&out));
    }
}
