//! `owl bench` (being written).

use anyhow::{bail, Result};

#[derive(clap::Args)]
pub struct BenchArgs {}

pub fn run(_a: BenchArgs) -> Result<()> {
    bail!("owl bench is not implemented yet")
}
