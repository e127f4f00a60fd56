use super::{Options, Section, routers::VipdBinary};
use anyhow::Result;
pub fn run(_o: &Options, _v: &VipdBinary) -> Result<Section> {
    anyhow::bail!("todo")
}
