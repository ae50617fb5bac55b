//! `paratag sample PRED.parquet -n N -o SHEET`: a stratified sample to label.

use anyhow::{Context, Result};
use paratag::formats::{self, Format, SheetSpec};
use paratag::sample::{self, Allocation};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A `paratag tag` output table.
    pub pred: PathBuf,
    /// Paragraphs to draw.
    #[arg(short)]
    pub n: usize,
    /// The sheet to write; its extension picks the format (.csv, .tsv, .json
    /// = Label Studio, .doccano.jsonl, .prodigy.jsonl, .gold.jsonl).
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(long, value_parser = crate::cmd::choice::<Format>())]
    pub format: Option<Format>,
    /// Comma-separated columns to stratify by: topic, lang, stance_<target>
    /// or any pass-through column.
    #[arg(long, value_delimiter = ',')]
    pub stratify: Vec<String>,
    #[arg(long, value_parser = crate::cmd::choice::<Allocation>(), default_value = "proportional")]
    pub allocation: Allocation,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Earlier sheets (any format) whose paragraphs must not be drawn again.
    #[arg(long)]
    pub exclude: Vec<PathBuf>,
    /// Leave the model's predictions out of the sheet.
    #[arg(long)]
    pub blind: bool,
    /// Extra columns to copy into the sheet (default: lang and the strata).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
}

pub fn run(a: Args) -> Result<()> {
    let fmt = match a.format {
        Some(f) => f,
        None => Format::from_path(&a.output).with_context(|| {
            format!(
                "{}: cannot tell the sheet format from the extension; pass --format",
                a.output.display()
            )
        })?,
    };
    if a.n == 0 {
        anyhow::bail!("-n must be > 0");
    }
    let preds = paratag::dataset::read_predictions(&a.pred)?;
    let mut exclude = Vec::new();
    for e in &a.exclude {
        exclude.extend(formats::read(e, &Default::default())?.1);
    }
    let drawn = sample::draw(
        &preds,
        &sample::Options {
            n: a.n,
            stratify: a.stratify.clone(),
            allocation: a.allocation,
            seed: a.seed,
        },
        &exclude,
    )?;
    let extra = extra_columns(&a, &preds)?;
    let codebook = preds.codebook()?;
    let topic_ids: Vec<String> = match (&codebook, preds.has_topic()) {
        (Some(cb), true) => cb.labels(&paratag::task::Task::Topic),
        _ => Vec::new(),
    };
    let entity_types = preds.entity_types();
    let rows: Vec<&paratag::record::Pred> = drawn.rows.iter().map(|&i| &preds.rows[i]).collect();
    let spec = SheetSpec {
        targets: &preds.targets,
        topic_ids: &topic_ids,
        entity_types: &entity_types,
        blind: a.blind,
        extra: &extra,
        model_version: model_version(&preds),
    };
    formats::write_sheet(&a.output, fmt, &rows, &spec)?;
    if fmt == Format::LabelStudio {
        let cfg = a.output.with_extension("label-config.xml");
        formats::atomic_write(&cfg, formats::label_studio::label_config(&spec).as_bytes())?;
        eprintln!(
            "paratag: Label Studio labeling interface -> {}",
            cfg.display()
        );
    }
    report(&a, &drawn, rows.len());
    Ok(())
}

/// The pass-through columns the sheet shows: `lang`, the strata and
/// `--columns` (which must exist).
fn extra_columns(a: &Args, preds: &paratag::record::Predictions) -> Result<Vec<String>> {
    let mut extra: Vec<String> = Vec::new();
    for c in ["lang".to_string()]
        .into_iter()
        .chain(a.stratify.iter().cloned())
        .chain(a.columns.iter().cloned())
    {
        let is_field = preds.field_names.contains(&c);
        if !is_field && a.columns.contains(&c) {
            anyhow::bail!(
                "--columns {c}: no such pass-through column in {}",
                a.pred.display()
            );
        }
        if is_field && !extra.contains(&c) {
            extra.push(c);
        }
    }
    Ok(extra)
}

/// The strata drawn from, and what was written.
fn report(a: &Args, drawn: &sample::Drawn, sampled: usize) {
    for s in &drawn.strata {
        eprintln!(
            "paratag: stratum [{}]: {} of {}",
            s.key.join(", "),
            s.drawn,
            s.population
        );
    }
    let eligible: usize = drawn.strata.iter().map(|s| s.population).sum();
    if sampled < a.n {
        eprintln!(
            "paratag: note: asked for {} but only {eligible} paragraphs were eligible",
            a.n
        );
    }
    eprintln!(
        "paratag: sampled {sampled} paragraphs ({} excluded as already sampled; offsets in code points) -> {}",
        drawn.excluded,
        a.output.display()
    );
}

/// `paratag <version>` plus the model ids and weight hashes from the metadata.
fn model_version(p: &paratag::record::Predictions) -> String {
    let mut v = format!(
        "paratag {}",
        p.meta.get("paratag.version").map_or("?", |s| s)
    );
    if let Some(models) = p
        .meta
        .get("paratag.models")
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
    {
        for m in models.as_array().into_iter().flatten() {
            let id = m.get("id").and_then(|x| x.as_str()).unwrap_or("?");
            let role = m.get("role").and_then(|x| x.as_str()).unwrap_or("?");
            v += &format!("; {role}={id}");
        }
    }
    v
}
