//! `paratag inspect FILE|DIR [--json]`: provenance, completeness, counts and
//! label distribution of one output.

use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A Parquet file or a dataset folder written by `paratag tag`.
    pub path: PathBuf,
    /// The same report as JSON, for scripts.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let r = paratag::inspect::inspect(&a.path)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", paratag::inspect::render(&r));
    }
    Ok(())
}
