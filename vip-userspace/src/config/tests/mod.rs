//! Behaviour of the configuration reader, on in-memory files: no root, no devices.

mod example;
mod mutations;
mod rules;

use super::{Config, ConfigError};

/// Interfaces the tests pretend exist; the host's own are never consulted.
pub(super) fn lab_interfaces(name: &str) -> bool {
    matches!(name, "eth0" | "eth1" | "uplink0")
}

pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "vipd.toml", &lab_interfaces)
}

/// Every problem reported for `text`, rendered as operators see them.
pub(super) fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(config) => panic!("accepted a bad file:\n{text}\nas {config:#?}"),
        Err(e) => e.problems.iter().map(ToString::to_string).collect(),
    }
}

/// The one problem reported for `text`.
pub(super) fn problem(text: &str) -> String {
    let mut all = problems(text);
    assert_eq!(all.len(), 1, "expected one problem, got {all:#?}");
    all.remove(0)
}

/// `[global]` on lines 1-2, so an instance written after it starts on line 3.
pub(super) const GLOBAL: &str = "[global]\nrouter_id = \"r1\"\n";

pub(super) fn with_global(instances: &str) -> String {
    format!("{GLOBAL}{instances}")
}
