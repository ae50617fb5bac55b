//! `paratag merge OUT/`: joins the shards of a `tag --shard` job.

use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job's output folder, holding shard-K-of-N/ folders.
    pub folder: PathBuf,
    /// Re-hash every part (default: check each part's size).
    #[arg(long)]
    pub verify: bool,
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(a: Args) -> Result<()> {
    let m = paratag::dataset::merge(&a.folder, a.verify)?;
    if !a.quiet {
        eprintln!(
            "paratag: merged {} shards: {} parts, {} articles, {} rows -> {}",
            m.manifest.shards.unwrap_or(0),
            m.manifest.parts.len(),
            m.manifest.articles,
            m.rows,
            a.folder.join(paratag::dataset::MANIFEST).display()
        );
    }
    Ok(())
}
