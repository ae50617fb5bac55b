//! `paratag calibrate --gold GOLD [--pred PRED] --codebook C -o C2.toml`.

use super::eval::{self as ev, GoldArgs};
use super::tag::ModelArgs;
use anyhow::{Context, Result};
use paratag::calibrate::{self, Objective};
use paratag::eval;
use paratag::formats;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub gold: GoldArgs,
    /// Predictions from `paratag tag` with this codebook. Without it, the
    /// gold texts are tagged here (one paragraph each) with the model options.
    #[arg(long)]
    pub pred: Option<PathBuf>,
    #[arg(short, long)]
    pub codebook: PathBuf,
    /// The new codebook (never the input one).
    #[arg(short, long)]
    pub output: PathBuf,
    /// macro-f1, accuracy, or f1:<label>.
    #[arg(long, default_value = "macro-f1")]
    pub objective: Objective,
    /// Cross-validation folds over articles.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Hold out this share of articles: calibrate on the rest, report on them
    /// (and evaluate them later with `eval --split F --seed S`).
    #[arg(long)]
    pub split: Option<f64>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub models: ModelArgs,
}

pub fn run(a: Args) -> Result<()> {
    let same = |x: &std::path::Path, y: &std::path::Path| match (x.canonicalize(), y.canonicalize())
    {
        (Ok(p), Ok(q)) => p == q,
        _ => x == y,
    };
    if same(&a.output, &a.codebook) {
        anyhow::bail!(
            "{}: -o is the input codebook; calibrate never overwrites it, give a new file name",
            a.output.display()
        );
    }
    if a.folds < 2 {
        anyhow::bail!("--folds must be at least 2");
    }
    let l = ev::load(
        &a.gold,
        a.pred.as_deref(),
        Some(&a.codebook),
        Some(&a.models),
        false,
        false,
    )?;
    let codebook = l.codebook.clone().context("codebook")?;
    if let Some(sha) = l.preds.meta.get("paratag.codebook_sha256") {
        if *sha != paratag::hash::sha256_bytes(codebook.text.as_bytes()) {
            eprintln!(
                "paratag: warning: {} differs from the codebook {} was tagged with; thresholds are set on the scores in the predictions",
                a.codebook.display(),
                l.pred_name
            );
        }
    }
    let (pairs, _) = ev::join(&l, &a.gold)?;
    eprintln!("paratag: gold {}", l.read.line(&a.gold.gold));
    let (fit, held): (Vec<_>, Vec<_>) = match a.split {
        Some(f) => {
            let h = ev::held_out(&pairs, f, a.seed)?;
            pairs.iter().partition(|p| !h.contains(p.article()))
        }
        None => (pairs.clone(), Vec::new()),
    };
    // A holder head decides at 0.5: nothing to calibrate (eval measures it).
    let tasks: Vec<String> = eval::gold_tasks(&pairs)
        .into_iter()
        .filter(|t| !matches!(eval::task_kind(t), eval::TaskKind::Holder(_)))
        .collect();
    if tasks.is_empty() {
        anyhow::bail!(
            "{}: no topic or stance labels to calibrate on",
            a.gold.gold.display()
        );
    }
    let changes = calibrate::calibrate(
        &fit,
        &held,
        &tasks,
        &codebook,
        &calibrate::Options {
            objective: a.objective.clone(),
            folds: a.folds,
            seed: a.seed,
        },
    )?;
    let stamp = format!(
        "paratag calibrate {} on {}",
        chrono::Utc::now().format("%Y-%m-%d"),
        a.gold.gold.display()
    );
    let text = calibrate::rewrite(&codebook, &changes, &a.objective, &stamp)?;
    // The result must still be a valid codebook.
    paratag::codebook::Codebook::parse(&a.output, text.clone())?;
    formats::atomic_write(&a.output, text.as_bytes())?;
    for c in &changes {
        eprintln!("paratag: {}", calibrate::describe(c, &a.objective));
    }
    eprintln!(
        "paratag: codebook with calibrated thresholds -> {}",
        a.output.display()
    );
    Ok(())
}
