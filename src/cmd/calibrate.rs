//! `paratag calibrate --gold GOLD [--pred PRED] [-c C.toml] -o C2.toml
//! [--install-profile NAME]`.

use super::eval::{self as ev, GoldArgs};
use super::tag::ModelArgs;
use anyhow::{Context, Result};
use paratag::calibrate::{self, Objective};
use paratag::eval;
use paratag::formats;
use paratag::models::profile;
use paratag::provenance;
use paratag::task::Task;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub gold: GoldArgs,
    /// Predictions from `paratag tag` with this codebook. Without it, the
    /// gold texts are tagged here (one paragraph each) with the model options
    /// (by default the profile `default`).
    #[arg(long)]
    pub pred: Option<PathBuf>,
    /// The codebook whose thresholds are calibrated (default: the
    /// profile's, else the one stored in the predictions).
    #[arg(short, long)]
    pub codebook: Option<PathBuf>,
    /// The new codebook (never the input one).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace existing output files (never done silently).
    #[arg(long)]
    pub force: bool,
    /// Also install the new codebook with the heads (the profile's, the
    /// --heads given, or those recorded in the predictions) as profile
    /// NAME, so `paratag tag --profile NAME` uses it.
    #[arg(long)]
    pub install_profile: Option<String>,
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
    /// Bootstrap replicates for the 95 % interval of each threshold's effect.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    #[command(flatten)]
    pub models: ModelArgs,
}

pub fn run(mut a: Args) -> Result<()> {
    if a.folds < 2 {
        anyhow::bail!("--folds must be at least 2");
    }
    crate::cmd::refuse_existing(&[Some(&a.output)], a.force)?;
    // Tagging the gold needs a model (the default profile unless named);
    // with --pred a named profile gives the codebook and the heads.
    let profile = match (&a.pred, &a.models.profile) {
        (None, _) => a.models.apply_profile(a.codebook.is_some(), true)?,
        (Some(_), Some(_)) => a.models.apply_profile(a.codebook.is_some(), false)?,
        (Some(_), None) => None,
    };
    let codebook_path = a
        .codebook
        .clone()
        .or_else(|| profile.as_ref().map(|p| p.codebook()));
    ev::check_design(
        &a.gold,
        "thresholds fitted on it would not suit the model",
        false,
    )?;
    let l = ev::load(
        &a.gold,
        a.pred.as_deref(),
        codebook_path.as_deref(),
        Some(&a.models),
        false,
        false,
    )?;
    let codebook = l.codebook.clone().context(
        "no codebook: pass -c CODEBOOK (or --profile NAME, or predictions that record theirs)",
    )?;
    let same = |x: &Path, y: &Path| match (x.canonicalize(), y.canonicalize()) {
        (Ok(p), Ok(q)) => p == q,
        _ => x == y,
    };
    if same(&a.output, &codebook.path) {
        anyhow::bail!(
            "{}: -o is the input codebook; calibrate never overwrites it, give a new file name",
            a.output.display()
        );
    }
    if let Some(sha) = l.preds.meta.get("paratag.codebook_sha256") {
        if *sha != paratag::hash::sha256_bytes(codebook.text.as_bytes()) {
            eprintln!(
                "paratag: warning: {} differs from the codebook {} was tagged with; thresholds are set on the scores in the predictions",
                codebook.path.display(),
                l.pred_name
            );
        }
    }
    // The heads a new profile gets, checked before any work is written.
    let heads = match &a.install_profile {
        Some(_) => Some(profile_heads(&a, &l)?),
        None => None,
    };
    let changes = changes(&a, &l, &codebook)?;
    write_codebook(&a, &codebook, &changes)?;
    eprintln!(
        "paratag: codebook with calibrated thresholds -> {}",
        a.output.display()
    );
    if let (Some(name), Some(heads)) = (&a.install_profile, heads) {
        let dir = profile::install(name, &a.output, &heads)?;
        eprintln!(
            "paratag: installed as profile `{name}` ({} heads) in {}: tag with `paratag tag ... --profile {name}`",
            heads.len(),
            dir.display()
        );
    }
    Ok(())
}

/// The calibrated thresholds: fitted on the gold (less the `--split`
/// held-out articles, which are only scored).
fn changes(
    a: &Args,
    l: &ev::Loaded,
    codebook: &paratag::codebook::Codebook,
) -> Result<Vec<calibrate::Change>> {
    let (pairs, _) = ev::join(l, &a.gold)?;
    eprintln!("paratag: gold {}", l.read.line(&a.gold.gold));
    let (fit, held): (Vec<_>, Vec<_>) = match a.split {
        Some(f) => {
            let h = ev::held_out(&pairs, f, a.seed)?;
            pairs.iter().partition(|p| !h.contains(p.article()))
        }
        None => (pairs.clone(), Vec::new()),
    };
    // A holder head decides at 0.5: nothing to calibrate (eval measures it).
    let tasks: Vec<Task> = eval::gold_tasks(&pairs)
        .into_iter()
        .filter(|t| !matches!(t, Task::Holder(_)))
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
        codebook,
        &calibrate::Options {
            objective: a.objective.clone(),
            folds: a.folds,
            seed: a.seed,
            bootstrap: a.bootstrap,
        },
    )?;
    Ok(changes)
}

/// Writes the codebook with the new thresholds (checked to load) and says
/// what changed, warning where a class has few gold items.
fn write_codebook(
    a: &Args,
    codebook: &paratag::codebook::Codebook,
    changes: &[calibrate::Change],
) -> Result<()> {
    let stamp = format!(
        "paratag calibrate {} on {}",
        chrono::Utc::now().format("%Y-%m-%d"),
        a.gold.gold.display()
    );
    let text = calibrate::rewrite(codebook, changes, &a.objective, &stamp)?;
    // The result must still be a valid codebook.
    paratag::codebook::Codebook::parse(&a.output, text.clone())?;
    formats::atomic_write(&a.output, text.as_bytes())?;
    for c in changes {
        eprintln!("paratag: {}", calibrate::describe(c, &a.objective));
        let thin = c.thin_classes();
        if !thin.is_empty() && c.threshold_after != c.threshold_before {
            let list: Vec<String> = thin.iter().map(|(k, n)| format!("`{k}` {n}")).collect();
            eprintln!(
                "paratag: warning: {}: the new threshold rests on fewer than {} gold items of {} ({}); its effect is uncertain (see the interval), label more before relying on it",
                c.task,
                calibrate::MIN_CLASS,
                if thin.len() == 1 { "a class" } else { "some classes" },
                list.join(", ")
            );
        }
    }
    Ok(())
}

/// The heads `--install-profile` installs beside the new codebook: those
/// this run used (a profile's or `--heads`), else the ones the predictions
/// record, found where they were and checked by sha256. With predictions,
/// the heads must be the ones that made them: thresholds set on one model's
/// scores mean nothing for another's.
fn profile_heads(a: &Args, l: &ev::Loaded) -> Result<Vec<PathBuf>> {
    let recorded: Vec<(String, String, PathBuf)> = match l.preds.meta.get("paratag.heads") {
        Some(text) if a.pred.is_some() => {
            let v: Vec<serde_json::Value> = serde_json::from_str(text)
                .with_context(|| format!("{}: paratag.heads", l.pred_name))?;
            v.iter()
                .map(|h| {
                    let s = |k: &str| h[k].as_str().unwrap_or_default().to_string();
                    (s("task"), s("sha256"), PathBuf::from(s("path")))
                })
                .collect()
        }
        _ => vec![],
    };
    if !a.models.heads.is_empty() {
        for d in &a.models.heads {
            let task = paratag::models::head::read_meta(d)?.task.name();
            let sha = provenance::head_sha(d)?;
            if let Some((_, want, _)) = recorded.iter().find(|r| r.0 == task) {
                if *want != sha {
                    anyhow::bail!(
                        "{}: the head for `{task}` is not the one that made {} (sha256 {} vs {}); calibrate with the profile or heads that tagged it",
                        d.display(),
                        l.pred_name,
                        &sha[..12],
                        &want[..want.len().min(12)]
                    );
                }
            }
        }
        return Ok(a.models.heads.clone());
    }
    if recorded.is_empty() {
        anyhow::bail!(
            "--install-profile needs heads: name them (--profile NAME or --heads DIR...), or calibrate predictions made with heads"
        );
    }
    recorded
        .into_iter()
        .map(|(task, sha, dir)| {
            let got = provenance::head_sha(&dir).with_context(|| {
                format!("the `{task}` head that made {} is no longer at {}: pass --profile NAME or --heads DIR...", l.pred_name, dir.display())
            })?;
            if got != sha {
                anyhow::bail!(
                    "{}: the `{task}` head there changed since it made {}; pass --profile NAME or --heads DIR...",
                    dir.display(),
                    l.pred_name
                );
            }
            Ok(dir)
        })
        .collect::<Result<Vec<PathBuf>>>()
        .map(|mut dirs| {
            // A head for any target is recorded once per target it answered.
            let mut seen = std::collections::HashSet::new();
            dirs.retain(|d| seen.insert(d.clone()));
            dirs
        })
}
