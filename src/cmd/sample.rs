//! `paratag sample PRED.parquet -n N -o SHEET`: a sample to label (random,
//! stratified or active), each row with its inclusion weight.

use anyhow::{Context, Result};
use paratag::formats::{self, Format, SheetSpec};
use paratag::record::Predictions;
use paratag::sample::{self, active, Allocation, Strategy};
use paratag::task::Task;
use std::path::PathBuf;

/// The sheet columns that record how each row was drawn.
pub const WEIGHT: &str = paratag::formats::SAMPLE_WEIGHT;
pub const STRATEGY: &str = paratag::formats::SAMPLE_STRATEGY;

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
    /// How rows are chosen (default: stratified with --stratify, else
    /// random). The active ones draw with probability proportional to 0.1 +
    /// a score in [0, 1], near-duplicates at most once, within the strata.
    #[arg(long, value_parser = crate::cmd::choice::<Strategy>())]
    pub strategy: Option<Strategy>,
    /// Tasks an active strategy scores (topic, stance_<target>,
    /// holder_<target>; default: topic and every stance target).
    #[arg(long = "for", value_delimiter = ',')]
    pub for_tasks: Vec<String>,
    /// The second table for --strategy disagreement (the same paragraphs
    /// tagged by another head, window or threshold).
    #[arg(long)]
    pub compare: Option<PathBuf>,
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
    /// Replace existing output files (never done silently).
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: Args) -> Result<()> {
    crate::cmd::refuse_existing(&[Some(&a.output)], a.force)?;
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
    let strategy = strategy(&a)?;
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
            scores: scores(&a, strategy, &preds)?,
        },
        &exclude,
    )?;
    let mut extra = extra_columns(&a, &preds)?;
    extra.extend([WEIGHT, STRATEGY].map(String::from));
    let codebook = preds.codebook()?;
    let topic_ids: Vec<String> = match (&codebook, preds.has_topic()) {
        (Some(cb), true) => cb.labels(&paratag::task::Task::Topic),
        _ => Vec::new(),
    };
    let entity_types = preds.entity_types();
    // The drawn rows carry how they were drawn as two more columns.
    let rows: Vec<paratag::record::Pred> = drawn
        .rows
        .iter()
        .zip(&drawn.weights)
        .map(|(&i, w)| {
            let mut p = preds.rows[i].clone();
            p.fields.insert(WEIGHT.into(), format!("{w:.6}"));
            p.fields.insert(STRATEGY.into(), strategy.name().into());
            p
        })
        .collect();
    let rows: Vec<&paratag::record::Pred> = rows.iter().collect();
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
    report(&a, strategy, &drawn, rows.len());
    Ok(())
}

/// The strategy asked for (or implied by --stratify), checked against the
/// options that go with it.
fn strategy(a: &Args) -> Result<Strategy> {
    let s = a.strategy.unwrap_or(match a.stratify.is_empty() {
        true => Strategy::Random,
        false => Strategy::Stratified,
    });
    match s {
        Strategy::Random if !a.stratify.is_empty() => {
            anyhow::bail!("--strategy random draws from the whole table; drop --stratify or use --strategy stratified")
        }
        Strategy::Stratified if a.stratify.is_empty() => {
            anyhow::bail!("--strategy stratified needs --stratify COLUMNS")
        }
        Strategy::Disagreement if a.compare.is_none() => {
            anyhow::bail!("--strategy disagreement needs --compare OTHER_PREDICTIONS")
        }
        _ if a.compare.is_some() && s != Strategy::Disagreement => {
            anyhow::bail!("--compare is only read by --strategy disagreement")
        }
        _ if !a.for_tasks.is_empty() && !s.is_active() => {
            anyhow::bail!(
                "--for is only read by the active strategies (uncertainty, margin, disagreement)"
            )
        }
        _ => Ok(s),
    }
}

/// Per-row scores for an active strategy over the --for tasks.
fn scores(a: &Args, strategy: Strategy, preds: &Predictions) -> Result<Option<Vec<f64>>> {
    if !strategy.is_active() {
        return Ok(None);
    }
    let mut tasks = Vec::new();
    for name in &a.for_tasks {
        let t = Task::parse(name)
            .filter(|t| match t {
                Task::Topic => preds.has_topic(),
                Task::Stance(x) | Task::Holder(x) => preds.targets.contains(x),
                Task::Entities => false,
            })
            .with_context(|| {
                let mut have: Vec<String> = active::default_tasks(preds)
                    .iter()
                    .map(Task::name)
                    .collect();
                have.extend(preds.targets.iter().map(|t| Task::Holder(t.clone()).name()));
                format!(
                    "--for {name}: not a scored task of {}; choose from {}",
                    a.pred.display(),
                    have.join(", ")
                )
            })?;
        tasks.push(t);
    }
    if tasks.is_empty() {
        tasks = active::default_tasks(preds);
    }
    let other = match &a.compare {
        Some(p) => Some(paratag::dataset::read_predictions(p)?),
        None => None,
    };
    let s = active::scores(preds, strategy, &tasks, other.as_ref())
        .with_context(|| format!("--strategy {}", strategy.name()))?;
    Ok(Some(s))
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
fn report(a: &Args, strategy: Strategy, drawn: &sample::Drawn, sampled: usize) {
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
    // Kish's effective sample size: what unequal weights cost in precision.
    let (sw, sw2) = drawn
        .weights
        .iter()
        .fold((0.0, 0.0), |(s, q), w| (s + w, q + w * w));
    eprintln!(
        "paratag: sampled {sampled} paragraphs by {} (weights {:.2}-{:.2}, effective sample size {:.0}; {} excluded as already sampled; offsets in code points) -> {}",
        strategy.name(),
        drawn.weights.iter().cloned().fold(f64::INFINITY, f64::min),
        drawn.weights.iter().cloned().fold(0.0, f64::max),
        sw * sw / sw2.max(1e-12),
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
