//! `owl quantize` (being written).

use anyhow::{bail, Result};

#[derive(clap::Args)]
pub struct QuantizeArgs {}

pub fn run(_a: QuantizeArgs) -> Result<()> {
    bail!("owl quantize is not implemented yet")
}
