//! `cargo xtask lab`: builds vipd and the lab driver, then runs the demo (see
//! `tests/src/bin/vip-lab.rs`): election, a failover with the client-measured outage, the
//! recovery, and each router's `vipd status`.

use anyhow::Result;

use crate::cmd::{cargo, run, workspace_root};

pub fn lab() -> Result<()> {
    run(cargo().args(["build", "--package", "vip-tests", "--bins"]))?;
    let bin = workspace_root().join("target/debug/vip-lab");
    run(&mut std::process::Command::new(bin))
}
