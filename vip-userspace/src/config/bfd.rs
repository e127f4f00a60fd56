//! The `bfd` inline table of a `[[vrrp]]` section: BFD sessions to the other routers so a
//! backup notices a dead master in milliseconds (see `crate::vrrp::bfd`).

use std::time::Duration;

use super::command::parse_command;
use super::locate::Sink;
use super::read::{Node, Table, parse_str};
use super::values::parse_peer;
use crate::vrrp::instance::BfdSettings;

pub(crate) const BFD_KEYS: &[&str] = &[
    "peers",
    "interval",
    "multiplier",
    "echo",
    "control_interval",
    "notify",
];
const DEFAULT_INTERVAL: Duration = Duration::from_millis(10);
const DEFAULT_MULTIPLIER: u8 = 3;
const DEFAULT_CONTROL_INTERVAL: Duration = Duration::from_secs(1);
const MIN_INTERVAL: Duration = Duration::from_millis(1);
const MAX_INTERVAL: Duration = Duration::from_secs(10);
const MIN_CONTROL_INTERVAL: Duration = Duration::from_millis(10);

pub(crate) fn bfd(node: &Node<'_>, path: String, sink: &mut Sink<'_>) -> Option<BfdSettings> {
    Table::read_inline(node, path, BFD_KEYS, sink, |t, s| {
        let peers = t.list("peers", s, |n, p, s| parse_str(n, &p, s, parse_peer));
        let interval = t
            .duration_in("interval", MIN_INTERVAL..=MAX_INTERVAL, s)
            .or(DEFAULT_INTERVAL);
        let multiplier = t.int("multiplier", 1..=255, s).or(DEFAULT_MULTIPLIER);
        let echo = t.boolean("echo", s).or(true);
        let control_interval = t
            .duration_in("control_interval", MIN_CONTROL_INTERVAL..=MAX_INTERVAL, s)
            .or(DEFAULT_CONTROL_INTERVAL);
        let notify = t
            .value("notify", s, parse_command)
            .valid()
            .map(|at| at.value.argv().to_vec());
        Some(BfdSettings {
            peers: peers
                .valid()
                .map(|v| v.value.iter().map(|a| a.value).collect())
                .unwrap_or_default(),
            interval: interval?,
            multiplier: multiplier?,
            echo: echo?,
            control_interval: control_interval?,
            notify,
        })
    })
}
