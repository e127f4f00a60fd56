//! vipd as a service: what `cargo xtask package` puts in the Debian package beside the
//! binary, generated from the sources that define it so it cannot drift:
//!
//! - [`manual`]: `vipd(8)` and a page per subcommand from the clap definitions, and
//!   `vipd.toml(5)` from the documented example configuration ([`example`]);
//! - [`completions`]: bash, zsh and fish completions from the clap definitions.
//!
//! The rest of `dist/` is written by hand and checked by this crate's tests: the systemd
//! unit (`vipd.service`), the packaged starting configuration (`vipd.toml`), the Grafana
//! dashboard (`grafana/vipd.json`) and the Prometheus alerting rules with their unit
//! tests (`prometheus/`). The package itself is described in `Cargo.toml`
//! (`[package.metadata.deb]`, built with cargo-deb).

pub mod completions;
pub mod example;
pub mod manual;

use std::path::Path;

use anyhow::{Context as _, Result};

/// Writes every generated file under `out`: `man/` (pages, not compressed) and
/// `completions/`.
pub fn generate(out: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    let mut write = |dir: &str, name: &str, text: &str| -> Result<()> {
        let d = out.join(dir);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        let p = d.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        written.push(p);
        Ok(())
    };
    for (name, page) in manual::pages() {
        write("man", &name, &page)?;
    }
    for (name, script, _) in completions::scripts() {
        write("completions", name, &script)?;
    }
    Ok(written)
}
