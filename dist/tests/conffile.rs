//! The configuration the package installs as /etc/vipd/vipd.toml: a starting point that
//! loads on any host (the interface is `lo`) without a warning, and whose every key is
//! one the documented example explains.

use vipd::config::{Config, LocalHost};

const PACKAGED: &str = include_str!("../vipd.toml");

#[test]
fn the_packaged_configuration_loads_here_without_warnings() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vipd.toml");
    let config = Config::load(&path, &LocalHost).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.warnings, []);
    assert_eq!(config.instances.len(), 1);
    assert_eq!(config.instances[0].interface, "lo");
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
