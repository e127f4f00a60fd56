//! Behaviour of the configuration reader, on in-memory files against a fake host: no root,
//! no devices, no users, no files.

mod carp;
mod example;
mod mutations;
mod processes;
mod proxy;
mod routes;
mod rules;
mod scripts;
mod services;
mod shared;
mod surface;
mod vips;
mod warnings;

pub(crate) use super::fake_host::{FakeHost, SCRIPT_GID, SCRIPT_UID};
use super::{Config, ConfigError};

pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "vipd.toml", &FakeHost::lab())
}

pub(super) fn parse_on(text: &str, host: &FakeHost) -> Result<Config, ConfigError> {
    Config::parse(text, "vipd.toml", host)
}

/// Every problem reported for `text`, rendered as operators see them.
pub(super) fn problems(text: &str) -> Vec<String> {
    problems_on(text, &FakeHost::lab())
}

pub(super) fn problems_on(text: &str, host: &FakeHost) -> Vec<String> {
    match parse_on(text, host) {
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

/// The warnings of a file that must load.
pub(super) fn warnings(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(config) => config.warnings.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("rejected:\n{e}\n---\n{text}"),
    }
}

/// A file that must load; its printed form must parse back to an equal configuration.
pub(super) fn round_trip(text: &str) -> Config {
    let config = parse(text).unwrap_or_else(|e| panic!("rejected:\n{e}\n---\n{text}"));
    let printed = config.to_toml_string();
    let again =
        parse(&printed).unwrap_or_else(|e| panic!("printed form rejected:\n{e}\n---\n{printed}"));
    assert_eq!(again, config, "printed:\n{printed}");
    assert_eq!(again.to_toml_string(), printed);
    config
}

/// `[global]` on lines 1-2, so an instance written after it starts on line 3.
pub(super) const GLOBAL: &str = "[global]\nrouter_id = \"r1\"\n";

pub(super) fn with_global(instances: &str) -> String {
    format!("{GLOBAL}{instances}")
}

/// A valid instance on lines 3-7; `extra` starts on line 8.
pub(super) fn gw(extra: &str) -> String {
    with_global(&format!(
        "[[vrrp]]\nname = \"gw\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"192.0.2.1/24\"]\n{extra}"
    ))
}

/// `gw` followed by a second instance whose `[[vrrp]]` header is on line 8.
pub(super) fn gw_and(second: &str) -> String {
    gw(&format!("[[vrrp]]\n{second}"))
}
