//! `paratag eval --gold GOLD [--pred PRED.parquet]`: the model against coders.

use super::tag::ModelArgs;
use anyhow::{Context, Result};
use paratag::codebook::Codebook;
use paratag::eval::{self, GoldSummary};
use paratag::formats::{self, Format, GoldItem, LabelSet};
use paratag::job::{self, Embeddings, TextJob};
use paratag::output;
use paratag::plan::Tasks;
use paratag::record::Predictions;
use paratag::task::Task;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// How gold files are read, shared by `eval`, `calibrate` and `train`.
#[derive(Debug, clap::Args)]
pub struct GoldFormat {
    #[arg(long, value_parser = crate::cmd::choice::<Format>())]
    pub gold_format: Option<Format>,
    /// For CSV/TSV gold: FIELD=COLUMN, e.g. `text=Tweet`, `stance_ukraine=Stance 2`,
    /// `target=target` plus `stance=stance` for one target per row.
    #[arg(long = "gold-col", value_parser = parse_pair)]
    pub gold_cols: Vec<(String, String)>,
    /// Same as --encoding, for CSV/TSV gold (kept for older scripts).
    #[arg(long)]
    pub gold_encoding: Option<String>,
    #[command(flatten)]
    pub table: super::tag::TableArgs,
}

impl GoldFormat {
    pub fn read_options(&self) -> formats::ReadOptions {
        let mut table = self.table.options();
        if table.encoding.is_none() {
            table.encoding = self.gold_encoding.clone();
        }
        formats::ReadOptions {
            format: self.gold_format,
            columns: self.gold_cols.clone(),
            table,
        }
    }
}

/// The gold file and how to match it, shared with `calibrate`.
#[derive(Debug, clap::Args)]
pub struct GoldArgs {
    /// Gold labels: a filled-in sheet (.csv/.tsv), Label Studio export (.json),
    /// Doccano/Prodigy/paratag gold JSONL, or CoNLL/IOB2 tokens.
    #[arg(long)]
    pub gold: PathBuf,
    #[command(flatten)]
    pub format: GoldFormat,
    /// GOLD=MODEL entity-type renames, e.g. `PERS=PER` (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_parser = parse_pair)]
    pub entity_map: Vec<(String, String)>,
    /// Report gold items that match no prediction instead of stopping.
    #[arg(long)]
    pub allow_unmatched: bool,
}

pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => {
            Ok((a.trim().to_string(), b.trim().to_string()))
        }
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub gold: GoldArgs,
    /// Score only entities of these types, gold and predicted, e.g.
    /// `PER,ORG,LOC` where the gold has no MISC (after --entity-map).
    #[arg(long, value_delimiter = ',')]
    pub entity_types: Vec<String>,
    /// Predictions from `paratag tag`. Without it the gold texts are tagged
    /// here, each as one paragraph, with the codebook and models below (by
    /// default the profile `default`).
    #[arg(long)]
    pub pred: Option<PathBuf>,
    /// Codebook (default: the profile's, or with --pred the one stored in
    /// the predictions' metadata).
    #[arg(short, long)]
    pub codebook: Option<PathBuf>,
    #[command(flatten)]
    pub models: ModelArgs,
    /// Bootstrap replicates for the 95 % intervals (resampling articles).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Breakdowns by these columns (comma-separated): lang, or any
    /// pass-through or gold column.
    #[arg(long, value_delimiter = ',')]
    pub by: Vec<String>,
    /// Evaluate only the held-out part of a `calibrate --split F --seed S` run.
    #[arg(long)]
    pub split: Option<f64>,
    /// Markdown report (default: stdout).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The same figures as JSON (schema in docs/commands.md).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Folder for PNG plots.
    #[arg(long)]
    pub plots: Option<PathBuf>,
    /// Replace existing output files (never done silently).
    #[arg(long)]
    pub force: bool,
    /// Only read and check the gold (labels against the codebook), print
    /// what it holds, and stop.
    #[arg(long)]
    pub check_gold: bool,
    #[arg(short, long)]
    pub quiet: bool,
}

/// Gold, predictions and codebook, loaded, validated and joined.
pub struct Loaded {
    pub gold: Vec<GoldItem>,
    pub format: Format,
    pub read: formats::ReadReport,
    pub preds: Predictions,
    pub pred_name: String,
    pub codebook: Option<Codebook>,
}

pub fn load(
    g: &GoldArgs,
    pred: Option<&Path>,
    codebook: Option<&Path>,
    models: Option<&ModelArgs>,
    entities: bool,
    quiet: bool,
) -> Result<Loaded> {
    let mut codebook_arg = match codebook {
        Some(p) => Some(Codebook::load(p)?),
        None => None,
    };
    let (format, mut gold, read) = formats::read_reported(&g.gold, &g.format.read_options())?;
    if gold.is_empty() {
        anyhow::bail!("{}: no gold items", g.gold.display());
    }
    let (preds, pred_name) = match pred {
        Some(p) => (
            paratag::dataset::read_predictions(p)?,
            p.display().to_string(),
        ),
        None => {
            let m = models.context("--pred is required here")?;
            codebook_arg = with_row_targets(codebook_arg, &gold, quiet)?;
            // Labels first (entity types are known only once the NER model
            // has run), so a typo does not wait for a whole tagging run.
            let mut early = LabelSet::from_codebook(codebook_arg.as_ref());
            early.entity_map = g.entity_map.iter().cloned().collect();
            formats::validate(&mut gold, &early)?;
            (
                tag_gold(
                    &gold,
                    codebook_arg.clone(),
                    m,
                    entities,
                    paratag::progress::Mode::auto(quiet),
                )?,
                "tagged by this eval run".to_string(),
            )
        }
    };
    let mut codebook = match codebook_arg {
        Some(c) => Some(c),
        None => preds.codebook()?,
    };
    // The thresholds the heads were tagged with (tag_gold applied them to
    // its own copy); calibrate starts from them.
    if let (Some(cb), Some(m)) = (codebook.as_mut(), models) {
        paratag::job::head_thresholds(cb, &m.heads)?;
    }
    let mut labels = LabelSet::from_codebook(codebook.as_ref());
    labels.entity_types = preds.entity_types().into_iter().collect();
    labels.entity_map = g.entity_map.iter().cloned().collect();
    formats::validate(&mut gold, &labels)?;
    Ok(Loaded {
        gold,
        format,
        read,
        preds,
        pred_name,
        codebook,
    })
}

/// Stance targets named in the gold's `target` column that the codebook
/// lacks become codebook targets (their text is the target; favor and
/// against are the default sentences), so NLI or similarity scores them.
pub(super) fn with_row_targets(
    codebook: Option<Codebook>,
    gold: &[GoldItem],
    quiet: bool,
) -> Result<Option<Codebook>> {
    let row: BTreeSet<&str> = gold
        .iter()
        .flat_map(|g| g.row_targets.iter().map(String::as_str))
        .collect();
    if row.is_empty() {
        return Ok(codebook);
    }
    let base = codebook.unwrap_or_else(|| Codebook::empty("targets from the gold"));
    let known = LabelSet::from_codebook(Some(&base));
    let new: Vec<&str> = row
        .iter()
        .copied()
        .filter(|t| known.target(t).is_none())
        .collect();
    if new.is_empty() {
        return Ok(Some(base));
    }
    let (cb, added) = base.with_targets(new)?;
    if !quiet {
        eprintln!(
            "paratag: {} stance targets from the gold's target column are not in the codebook; each is scored as a target of its own (\"The author supports/opposes <target>.\"), only on the items labeled for it",
            added.len()
        );
    }
    Ok(Some(cb))
}

/// Tags the gold texts, each as one paragraph, and keys the rows like the gold.
/// `entities`: run NER where the gold labels entities.
fn tag_gold(
    gold: &[GoldItem],
    codebook: Option<Codebook>,
    m: &ModelArgs,
    entities: bool,
    progress: paratag::progress::Mode,
) -> Result<Predictions> {
    let any =
        |f: &dyn Fn(&formats::Annotation) -> bool| gold.iter().any(|g| g.annotations.iter().any(f));
    let stance = any(&|a| !a.stances.is_empty());
    // A stance target gated on topics needs the topics run, even where the
    // gold labels none (a profile's codebook with a gated target).
    let gated = stance
        && codebook
            .as_ref()
            .is_some_and(|c| c.stances.iter().any(|s| s.only_topics.is_some()));
    let tasks = Tasks {
        topic: gated || any(&|a| a.topic.is_some()),
        stance,
        ner: entities && any(&|a| a.entities.is_some()),
    };
    if (tasks.topic || tasks.stance) && codebook.is_none() {
        anyhow::bail!("the gold has topic or stance labels: pass --codebook (or --pred)");
    }
    let texts: Vec<String> = gold.iter().map(|g| g.text.clone()).collect();
    // With a target per row, each item is scored for its own targets only.
    let only = match &codebook {
        Some(cb) if gold.iter().any(|g| !g.row_targets.is_empty()) => Some(
            gold.iter()
                .map(|g| {
                    g.annotations
                        .iter()
                        .flat_map(|a| a.stances.keys())
                        .filter_map(|t| cb.stances.iter().position(|s| &s.id == t))
                        .collect()
                })
                .collect(),
        ),
        _ => None,
    };
    let tagged = job::tag_texts(
        texts,
        TextJob {
            codebook,
            models: &m.choice(),
            tasks,
            embeddings: Embeddings::Off,
            only,
            progress,
        },
    )?;
    let meta = tagged.metadata.into_iter().collect();
    let mut preds = output::predictions_from(&tagged.frame, meta)?;
    for p in &mut preds.rows {
        let i = paratag::input::text_index(&p.article_id)
            .with_context(|| format!("article id {:?} is not a gold text's", p.article_id))?;
        let g = &gold[i];
        // Gold texts were trimmed by `validate`, as the tagger trims paragraphs.
        p.text = g.text.clone();
        p.article_id = g
            .article_id
            .clone()
            .unwrap_or_else(|| format!("item{}", i + 1));
        p.paragraph = g.paragraph.unwrap_or(0);
    }
    Ok(preds)
}

/// Joins, failing on unmatched items unless allowed.
pub fn join<'a>(l: &'a Loaded, g: &GoldArgs) -> Result<(Vec<eval::Pair<'a>>, Vec<String>)> {
    let (pairs, unmatched) = eval::join(&l.gold, &l.preds)?;
    if !unmatched.is_empty() && !g.allow_unmatched {
        anyhow::bail!(
            "{}: gold item matches no prediction (by article_id + paragraph or by exact text); {} of {} unmatched; pass --allow-unmatched to report them and go on",
            unmatched[0],
            unmatched.len(),
            l.gold.len()
        );
    }
    Ok((pairs, unmatched))
}

/// The held-out articles of `--split F --seed S` (same as `calibrate`).
pub fn held_out(pairs: &[eval::Pair], split: f64, seed: u64) -> Result<BTreeSet<String>> {
    if !(split > 0.0 && split < 1.0) {
        anyhow::bail!("--split must be between 0 and 1 (the held-out share), got {split}");
    }
    let articles: BTreeSet<String> = pairs.iter().map(|p| p.article().to_string()).collect();
    Ok(eval::split_articles(&articles, split, seed))
}

pub fn run(mut a: Args) -> Result<()> {
    crate::cmd::refuse_existing(&[a.report.as_deref(), a.json.as_deref()], a.force)?;
    // The model that tags the gold: the default profile unless named.
    let needed = a.pred.is_none() && !a.check_gold;
    if a.pred.is_some() && a.models.profile.is_some() {
        anyhow::bail!(
            "--profile picks the model that tags the gold texts; with --pred they are tagged already (drop --profile: the predictions' own codebook is used)"
        );
    }
    let profile = if a.pred.is_none() {
        a.models.apply_profile(a.codebook.is_some(), needed)?
    } else {
        None
    };
    if let Some(p) = &profile {
        a.codebook.get_or_insert_with(|| p.codebook());
    }
    if a.check_gold {
        return check_gold(&a);
    }
    check_design(
        &a.gold,
        "accuracy and F1 on it would understate the model",
        a.quiet,
    )?;
    let l = load(
        &a.gold,
        a.pred.as_deref(),
        a.codebook.as_deref(),
        Some(&a.models),
        true,
        a.quiet,
    )?;
    let (mut pairs, unmatched) = join(&l, &a.gold)?;
    // After the checks, so a bad file still gets a one-line error.
    if !a.quiet {
        eprintln!("paratag: gold {}", l.read.line(&a.gold.gold));
    }
    if let Some(f) = a.split {
        let held = held_out(&pairs, f, a.seed)?;
        pairs.retain(|p| held.contains(p.article()));
    }
    let coders: Vec<String> = formats::coders(&l.gold)
        .into_iter()
        .map(String::from)
        .collect();
    let order = label_order(l.codebook.as_ref());
    let summary = GoldSummary {
        path: a.gold.gold.display().to_string(),
        format: l.format.name().into(),
        items: l.gold.len(),
        matched: pairs.len(),
        unmatched,
        unlabeled: pairs
            .iter()
            .filter(|p| p.gold.annotations.is_empty())
            .count(),
        coders,
        read: l.read.clone(),
    };
    let report = eval::evaluate(
        &pairs,
        &l.preds,
        summary,
        l.pred_name.clone(),
        &order,
        &eval::Options {
            bootstrap: a.bootstrap,
            seed: a.seed,
            by: a.by.clone(),
            entity_types: (!a.entity_types.is_empty())
                .then(|| a.entity_types.iter().cloned().collect()),
        },
    )?;
    if report.tasks.is_empty() && report.ner.is_none() {
        anyhow::bail!("{}: no labeled items to evaluate", a.gold.gold.display());
    }
    write_report(&a, &report)
}

/// Refuses a sheet drawn by an active strategy (before any tagging): it
/// over-represents the hard cases, so `harm` (what goes wrong). Notes a
/// stratified sheet with unequal weights.
pub fn check_design(g: &GoldArgs, harm: &str, quiet: bool) -> Result<()> {
    let (_, gold) = formats::read(&g.gold, &g.format.read_options())?;
    let d = paratag::sample::design(&gold)?;
    if d.is_active() {
        anyhow::bail!(
            "{}: drawn by {} sampling, which over-represents the paragraphs the model finds hard, so {harm} on the corpus; use a random or stratified sheet (paratag sample --strategy random --exclude {0}); paratag estimate weights this sheet by its {}",
            g.gold.display(),
            d.strategies.join("/"),
            formats::SAMPLE_WEIGHT
        );
    }
    if d.is_weighted() && !quiet {
        eprintln!(
            "paratag: note: {}: the strata were drawn at different rates ({} varies), so the figures describe this sample, not the corpus; --by STRATUM gives each stratum's own",
            g.gold.display(),
            formats::SAMPLE_WEIGHT
        );
    }
    Ok(())
}

/// Each task's classes in the codebook's order (topics, then `none`).
fn label_order(codebook: Option<&Codebook>) -> BTreeMap<Task, Vec<String>> {
    let mut order = BTreeMap::new();
    if let Some(cb) = codebook {
        let mut topics = cb.labels(&Task::Topic);
        topics.push(formats::NONE.into());
        order.insert(Task::Topic, topics);
        for task in cb.stances.iter().flat_map(|s| Task::stance_pair(&s.id)) {
            order.insert(task.clone(), cb.labels(&task));
        }
    }
    order
}

/// The Markdown report (to stdout without --report), JSON and plots.
fn write_report(a: &Args, report: &eval::Report) -> Result<()> {
    let md = eval::markdown::render(report);
    match &a.report {
        Some(p) => formats::atomic_write(p, md.as_bytes())?,
        None => print!("{md}"),
    }
    if let Some(p) = &a.json {
        let mut js = serde_json::to_vec_pretty(report)?;
        js.push(b'\n');
        formats::atomic_write(p, &js)?;
    }
    if let Some(dir) = &a.plots {
        let files = eval::plots::write_all(report, dir)?;
        if !a.quiet {
            eprintln!("paratag: {} plots -> {}", files.len(), dir.display());
        }
    }
    Ok(())
}

/// `--check-gold`: read, validate and summarise the gold without predictions.
fn check_gold(a: &Args) -> Result<()> {
    let g = &a.gold;
    let (format, mut gold, read) = formats::read_reported(&g.gold, &g.format.read_options())?;
    let codebook = match &a.codebook {
        Some(p) => Some(Codebook::load(p)?),
        None => None,
    };
    // Targets named per row are targets of their own, as eval scores them.
    let codebook = with_row_targets(codebook, &gold, true)?;
    let mut labels = LabelSet::from_codebook(codebook.as_ref());
    labels.entity_map = g.entity_map.iter().cloned().collect();
    formats::validate(&mut gold, &labels)?;
    eprintln!("paratag: gold {}", read.line(&g.gold));
    let mut topics: BTreeMap<String, usize> = BTreeMap::new();
    let mut stances: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut entities: BTreeMap<String, usize> = BTreeMap::new();
    let mut coders = BTreeSet::new();
    for item in &gold {
        for an in &item.annotations {
            coders.insert(an.coder.clone());
            if let Some(t) = &an.topic {
                *topics.entry(t.clone()).or_default() += 1;
            }
            for (t, l) in &an.stances {
                *stances
                    .entry(t.clone())
                    .or_default()
                    .entry(l.clone())
                    .or_default() += 1;
            }
            for e in an.entities.iter().flatten() {
                *entities.entry(e.label.clone()).or_default() += 1;
            }
        }
    }
    println!(
        "{}: {} gold items ({}), coders: {}",
        g.gold.display(),
        gold.len(),
        format.name(),
        coders.into_iter().collect::<Vec<_>>().join(", ")
    );
    let list = |prefix: &str, m: &BTreeMap<String, usize>| -> String {
        m.iter()
            .map(|(k, v)| format!("{prefix}{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !topics.is_empty() {
        println!("  {}", list(&format!("{}=", Task::Topic), &topics));
    }
    // Many targets (one per row) are summarised: the most labeled first.
    const SHOWN: usize = 10;
    let mut targets: Vec<(&String, &BTreeMap<String, usize>)> = stances.iter().collect();
    targets.sort_by_key(|(t, c)| (std::cmp::Reverse(c.values().sum::<usize>()), t.as_str()));
    for (t, c) in targets.iter().take(SHOWN) {
        println!(
            "  {}",
            list(&format!("{}=", Task::Stance(t.to_string())), c)
        );
    }
    if targets.len() > SHOWN {
        let rest: usize = targets[SHOWN..]
            .iter()
            .map(|(_, c)| c.values().sum::<usize>())
            .sum();
        println!(
            "  ... and {} more stance targets ({rest} labels); {} targets in all",
            targets.len() - SHOWN,
            targets.len()
        );
    }
    if !entities.is_empty() {
        println!("  {}", list("entity=", &entities));
    }
    Ok(())
}
