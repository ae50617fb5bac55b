//! `paratag estimate PRED --gold SAMPLE -o SHARES`: the share of each topic
//! and stance label per group (outlet, month, ...), corrected for the
//! classifier's errors as the gold sample measures them, with intervals.
//! The method is in `paratag::estimate`.

use super::eval::{self as ev, GoldArgs};
use anyhow::{Context, Result};
use paratag::estimate::{self, Labeled, Method, Seen};
use paratag::eval::{coder_labels, majority, pred_label, Pair};
use paratag::formats::NONE;
use paratag::record::{Pred, Predictions};
use paratag::task::Task;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A `paratag tag` output (file or dataset folder).
    pub pred: PathBuf,
    #[command(flatten)]
    pub gold: GoldArgs,
    /// Group by these columns (lang or any pass-through column), e.g.
    /// `outlet,published`; every group also gets the whole corpus (`all`).
    #[arg(long, value_delimiter = ',')]
    pub by: Vec<String>,
    /// Bucket the --by columns that hold dates (YYYY-MM-DD...).
    #[arg(long, value_parser = crate::cmd::choice::<Period>())]
    pub every: Option<Period>,
    /// `acc` corrects counts with the error rates on the gold sample;
    /// `pacc` and `emq` read probabilities, which stance has and topic does
    /// not (its scores give no probability of `none`). Default: emq for
    /// stance (pacc where a label has no gold item), acc for topic (the
    /// simulation in docs/benchmarks.md).
    #[arg(long, value_parser = crate::cmd::choice::<Method>())]
    pub method: Option<Method>,
    /// The table to write: `.csv` or `.parquet`.
    #[arg(short, long)]
    pub output: PathBuf,
    /// A Markdown report of the same figures.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// PNG plots, one per task and label: shares per group (over the date
    /// buckets with --every), 95 % intervals shaded, raw shares dashed.
    #[arg(long)]
    pub plots: Option<PathBuf>,
    /// Bootstrap replicates for the 95 % intervals (0: none).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Codebook (default: the one stored in the predictions' metadata).
    #[arg(short, long)]
    pub codebook: Option<PathBuf>,
    /// Replace existing output files (never done silently).
    #[arg(long)]
    pub force: bool,
}

/// How a date column is bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
    Year,
}

impl paratag::choice::Choice for Period {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (Period::Day, "day", "YYYY-MM-DD"),
        (Period::Week, "week", "ISO week, YYYY-Www"),
        (Period::Month, "month", "YYYY-MM"),
        (Period::Year, "year", "YYYY"),
    ];
}

impl Period {
    /// The bucket of a value that starts with a date, else `None`.
    fn bucket(self, v: &str) -> Option<String> {
        use chrono::Datelike;
        let d = chrono::NaiveDate::parse_from_str(v.get(..10)?, "%Y-%m-%d").ok()?;
        Some(match self {
            Period::Day => d.format("%Y-%m-%d").to_string(),
            Period::Week => {
                let w = d.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            Period::Month => d.format("%Y-%m").to_string(),
            Period::Year => d.year().to_string(),
        })
    }
}

/// One output row.
struct Out {
    group: String,
    keys: Vec<String>,
    task: String,
    label: String,
    method: &'static str,
    share: estimate::Share,
    raw: f64,
    n: usize,
}

pub fn run(a: Args) -> Result<()> {
    crate::cmd::refuse_existing(&[Some(&a.output), a.report.as_deref()], a.force)?;
    let ext = a.output.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "csv" | "parquet") {
        anyhow::bail!(
            "-o {}: the table is written as .csv or .parquet",
            a.output.display()
        );
    }
    let l = ev::load(
        &a.gold,
        Some(&a.pred),
        a.codebook.as_deref(),
        None,
        false,
        true,
    )?;
    let (pairs, _) = ev::join(&l, &a.gold)?;
    let design = paratag::sample::design(&l.gold)?;
    let (groups, dated) = groups_of(&a, &l.preds)?;
    let tasks = tasks_of(&l);
    let coders = paratag::formats::coders(&l.gold);
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    for (task, labels) in &tasks {
        let method = method_for(a.method, task, &mut notes);
        let seen: Vec<Seen> = l
            .preds
            .rows
            .iter()
            .map(|p| seen_of(p, task, labels))
            .collect::<Result<_>>()?;
        let gold = gold_of(&pairs, &coders, task, labels)?;
        if gold.is_empty() {
            notes.push(format!(
                "{task}: the gold sample labels none of it: not estimated"
            ));
            continue;
        }
        let missing = missing_labels(labels.len(), &gold);
        let method = default_fallback(&a, task, labels, &missing, method, &mut notes);
        note_missing(task, labels, &missing, method, &mut notes);
        let task = Estimand {
            task,
            labels,
            method,
            gold: &gold,
            seen: &seen,
        };
        let first = out.len();
        for (key, rows) in &groups {
            out.extend(task.shares(&a, key, rows)?);
        }
        note_wide(&task, &out[first..], a.bootstrap, &mut notes);
    }
    if out.is_empty() {
        anyhow::bail!(
            "{}: no task to estimate (the gold labels no topic or stance target the predictions have)",
            a.gold.gold.display()
        );
    }
    for n in &notes {
        eprintln!("paratag: {n}");
    }
    write_table(&a, &out)?;
    if let Some(r) = &a.report {
        let md = report(&a, &out, &notes, pairs.len(), &design);
        paratag::atomic::atomic_write(r, md.as_bytes())?;
    }
    if let Some(dir) = &a.plots {
        plot(&a, &out, dir, &dated)?;
    }
    eprintln!(
        "paratag: {} shares ({} groups, {} tasks) -> {}",
        out.len(),
        groups.len(),
        tasks.len(),
        a.output.display()
    );
    Ok(())
}

/// The method for `task`: the one asked for, else emq for stance and acc
/// for topic. `pacc` and `emq` need a probability of every label, which
/// topic scores do not give for `none` (acc instead; noted when asked).
fn method_for(asked: Option<Method>, task: &Task, notes: &mut Vec<String>) -> Method {
    let Some(asked) = asked else {
        return match task {
            Task::Topic => Method::Acc,
            _ => Method::Emq,
        };
    };
    if asked.needs_posteriors() && *task == Task::Topic {
        notes.push(format!(
            "topic: {} needs a probability of every label and topic scores give none for `none`: acc instead",
            asked.name()
        ));
        return Method::Acc;
    }
    asked
}

/// The labels (indices under `k`) no gold item has.
fn missing_labels(k: usize, gold: &[Labeled]) -> Vec<usize> {
    (0..k)
        .filter(|&j| !gold.iter().any(|x| x.gold == j))
        .collect()
}

/// The default emq has no prior for a label no gold item has (`missing`):
/// pacc then (noted), where an explicit `--method emq` is an error.
fn default_fallback(
    a: &Args,
    task: &Task,
    labels: &[String],
    missing: &[usize],
    method: Method,
    notes: &mut Vec<String>,
) -> Method {
    match (a.method, method, missing.first()) {
        (None, Method::Emq, Some(&j)) => {
            notes.push(format!(
                "{task}: no gold item is labeled `{}`, so emq (the default) has no prior for it: pacc instead",
                labels[j]
            ));
            Method::Pacc
        }
        _ => method,
    }
}

/// Notes the labels no gold item has (`missing`): their shares are not
/// corrected.
fn note_missing(
    task: &Task,
    labels: &[String],
    missing: &[usize],
    method: Method,
    notes: &mut Vec<String>,
) {
    let missing: Vec<&str> = missing.iter().map(|&j| labels[j].as_str()).collect();
    if !missing.is_empty() && method != Method::Cc {
        notes.push(format!(
            "{task}: no gold item is labeled {}: taken as always predicted right, so those shares are not corrected",
            missing.join(", ")
        ));
    }
}

/// Notes what makes a task's corrected shares say little, however well
/// their intervals cover: true labels the classifier treats alike, and
/// intervals over the whole corpus wider than half the scale (a head near
/// chance, or few gold items).
fn note_wide(e: &Estimand, out: &[Out], reps: usize, notes: &mut Vec<String>) {
    let task = e.task;
    let g: Vec<&Labeled> = e.gold.iter().collect();
    for (x, y, tv) in estimate::confusable(e.labels.len(), &g, 0.1) {
        notes.push(format!(
            "{task}: the classifier treats true `{}` and `{}` almost alike on the gold sample (their predictions differ by {tv:.2} in total variation), so no correction can tell their shares apart",
            e.labels[x], e.labels[y]
        ));
    }
    let all: Vec<&Out> = out.iter().filter(|o| o.keys.is_empty()).collect();
    if reps == 0 || all.is_empty() {
        return;
    }
    let width = all
        .iter()
        .map(|o| o.share.ci_high - o.share.ci_low)
        .sum::<f64>()
        / all.len() as f64;
    if width > 0.5 {
        notes.push(format!(
            "{task}: the 95 % intervals over the whole corpus are {width:.2} wide on average: the gold sample barely tells the labels apart through this classifier (near chance, or too few gold items), so the corrected shares say little; label more or improve the head"
        ));
    }
}

/// The groups: the whole corpus (empty key), then each combination of
/// --by values (date columns bucketed by --every), with their row indices;
/// and which --by columns hold dates.
fn groups_of(a: &Args, preds: &Predictions) -> Result<(Groups, Vec<bool>)> {
    for col in &a.by {
        if !preds.field_names.iter().any(|f| f == col) {
            anyhow::bail!(
                "--by {col}: no such column in {}; it has: {}",
                a.pred.display(),
                preds.field_names.join(", ")
            );
        }
    }
    let dated = date_columns(&preds.rows, &a.by, a.every)?;
    let mut groups: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    if !a.by.is_empty() {
        for (i, r) in preds.rows.iter().enumerate() {
            let key =
                a.by.iter()
                    .zip(&dated)
                    .map(|(c, &d)| {
                        let v = r.fields.get(c).map(String::as_str).unwrap_or("");
                        match (d, a.every) {
                            (true, Some(p)) => p.bucket(v).unwrap_or_default(),
                            _ => v.to_string(),
                        }
                    })
                    .collect();
            groups.entry(key).or_default().push(i);
        }
    }
    let all = (Vec::new(), (0..preds.rows.len()).collect());
    Ok((std::iter::once(all).chain(groups).collect(), dated))
}

/// Each group's --by values (empty: the whole corpus) and row indices.
type Groups = Vec<(Vec<String>, Vec<usize>)>;

/// The tasks to estimate and their labels: topic (the codebook's ids and
/// `none`) and each stance target.
fn tasks_of(l: &ev::Loaded) -> Vec<(Task, Vec<String>)> {
    let mut tasks = Vec::new();
    let cb = l.codebook.as_ref();
    if let Some(cb) = cb.filter(|c| !c.topics.topics.is_empty() && l.preds.has_topic()) {
        let mut labels: Vec<String> = cb.topics.topics.iter().map(|t| t.id.clone()).collect();
        labels.push(NONE.into());
        tasks.push((Task::Topic, labels));
    }
    for t in &l.preds.targets {
        let labels = ["favor", "against", NONE].map(String::from).to_vec();
        tasks.push((Task::Stance(t.clone()), labels));
    }
    tasks
}

/// One task's labels, method, gold sample and predictions.
struct Estimand<'a> {
    task: &'a Task,
    labels: &'a [String],
    method: Method,
    gold: &'a [Labeled],
    seen: &'a [Seen],
}

impl Estimand<'_> {
    /// The output rows of one group.
    fn shares(&self, a: &Args, key: &[String], rows: &[usize]) -> Result<Vec<Out>> {
        let (task, labels) = (self.task, self.labels);
        let g: Vec<&Labeled> = self.gold.iter().collect();
        let r: Vec<&Seen> = rows.iter().map(|&i| &self.seen[i]).collect();
        let raw = estimate::raw(labels.len(), &r);
        let shares =
            estimate::with_intervals(self.method, labels.len(), &g, &r, a.bootstrap, a.seed)
                .map_err(|e| match e {
                    estimate::Problem::NoGold(j) => anyhow::anyhow!(
                        "{}: no gold item of {task} is labeled `{}`, so --method emq has no prior for it; label some, or use --method acc",
                        a.gold.gold.display(),
                        labels[j]
                    ),
                    estimate::Problem::NoPosterior => anyhow::anyhow!(
                        "{task}: --method {} needs probabilities the predictions lack; use --method acc",
                        self.method.name()
                    ),
                    estimate::Problem::Empty => anyhow::anyhow!("{task}: an empty group"),
                })?;
        let group = match key.is_empty() {
            true => "all".to_string(),
            false => {
                a.by.iter()
                    .zip(key)
                    .map(|(c, v)| format!("{c}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        Ok(shares
            .into_iter()
            .enumerate()
            .map(|(j, s)| Out {
                group: group.clone(),
                keys: key.to_vec(),
                task: task.to_string(),
                label: labels[j].clone(),
                method: self.method.name(),
                share: s,
                raw: raw[j],
                n: rows.len(),
            })
            .collect())
    }
}

/// Which --by columns hold dates (all their non-empty values), checked
/// against --every: it must find one.
fn date_columns(rows: &[Pred], by: &[String], every: Option<Period>) -> Result<Vec<bool>> {
    let dated: Vec<bool> = by
        .iter()
        .map(|c| {
            let vals: Vec<&String> = rows
                .iter()
                .filter_map(|r| r.fields.get(c))
                .filter(|v| !v.is_empty())
                .collect();
            !vals.is_empty() && vals.iter().all(|v| Period::Day.bucket(v).is_some())
        })
        .collect();
    if let Some(p) = every {
        if !dated.contains(&true) {
            anyhow::bail!(
                "--every {p:?}: none of the --by columns ({}) holds dates (YYYY-MM-DD...) in every row",
                by.join(", ")
            );
        }
    }
    Ok(dated)
}

/// What the classifier said about one paragraph for `task`.
fn seen_of(p: &Pred, task: &Task, labels: &[String]) -> Result<Seen> {
    let (l, _) = pred_label(p, task);
    let pred = labels.iter().position(|x| x == l).with_context(|| {
        format!(
            "{}:{}: predicted {task} `{l}` is not in the codebook",
            p.article_id, p.paragraph
        )
    })?;
    let post = match task {
        Task::Stance(t) => match p.stances.get(t) {
            Some(s) if s.posterior().is_some() => s.posterior().map(Vec::from),
            // Not scored (gated out by topic): `none` for sure.
            _ if l == NONE => Some(vec![0.0, 0.0, 1.0]),
            _ => None,
        },
        _ => None,
    };
    Ok(Seen { pred, post })
}

/// The gold sample for `task`: each labeled paragraph (majority label),
/// with what the classifier said about it.
fn gold_of(
    pairs: &[Pair],
    coders: &[&str],
    task: &Task,
    labels: &[String],
) -> Result<Vec<Labeled>> {
    let mut out = Vec::new();
    for p in pairs {
        let Some(g) = majority(&coder_labels(p.gold, coders, task)) else {
            continue;
        };
        let gold = labels.iter().position(|x| x == g).with_context(|| {
            format!(
                "{}: gold {task} `{g}` is not in the codebook",
                p.gold.location
            )
        })?;
        out.push(Labeled {
            seen: seen_of(p.pred, task, labels)?,
            gold,
            weight: p.gold.sample_weight()?.unwrap_or(1.0),
        });
    }
    Ok(out)
}

/// A column of the shares table.
enum Col {
    Text(Vec<String>),
    Num(Vec<f64>),
    Count(Vec<u64>),
}

/// The shares table's columns, in order (both formats write these).
fn columns(a: &Args, out: &[Out]) -> Vec<(String, Col)> {
    let text = |f: &dyn Fn(&Out) -> String| Col::Text(out.iter().map(f).collect());
    let num = |f: &dyn Fn(&Out) -> f64| Col::Num(out.iter().map(f).collect());
    let mut cols = vec![("group".to_string(), text(&|o| o.group.clone()))];
    for (k, c) in a.by.iter().enumerate() {
        cols.push((c.clone(), text(&|o| by_values(a, o)[k].clone())));
    }
    cols.extend([
        ("task".into(), text(&|o| o.task.clone())),
        ("label".into(), text(&|o| o.label.clone())),
        ("method".into(), text(&|o| o.method.to_string())),
        ("share".into(), num(&|o| o.share.share)),
        ("ci_low".into(), num(&|o| o.share.ci_low)),
        ("ci_high".into(), num(&|o| o.share.ci_high)),
        ("raw_share".into(), num(&|o| o.raw)),
        (
            "n".into(),
            Col::Count(out.iter().map(|o| o.n as u64).collect()),
        ),
    ]);
    cols
}

fn write_table(a: &Args, out: &[Out]) -> Result<()> {
    let path = &a.output;
    let cols = columns(a, out);
    let bytes = if path.extension().and_then(|e| e.to_str()) == Some("csv") {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(cols.iter().map(|(name, _)| name))?;
        for i in 0..out.len() {
            w.write_record(cols.iter().map(|(_, c)| match c {
                Col::Text(v) => v[i].clone(),
                Col::Num(v) => format!("{:.6}", v[i]),
                Col::Count(v) => v[i].to_string(),
            }))?;
        }
        w.into_inner().context("csv buffer")?
    } else {
        use polars::prelude::{Column, DataFrame, ParquetWriter};
        let cols: Vec<Column> = cols
            .into_iter()
            .map(|(name, c)| match c {
                Col::Text(v) => Column::new(name.into(), v),
                Col::Num(v) => Column::new(name.into(), v),
                Col::Count(v) => Column::new(name.into(), v),
            })
            .collect();
        let mut df = DataFrame::new(out.len(), cols)
            .map_err(|e| anyhow::anyhow!("the shares table: {e}"))?;
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes)
            .finish(&mut df)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        bytes
    };
    paratag::atomic::atomic_write(path, &bytes)?;
    Ok(())
}

/// The row's --by values (empty for the whole corpus).
fn by_values(a: &Args, o: &Out) -> Vec<String> {
    match o.keys.is_empty() {
        true => vec![String::new(); a.by.len()],
        false => o.keys.clone(),
    }
}

/// One PNG per task and label. With --every, x is the date bucket and
/// each other --by combination is a line; else x is the group.
fn plot(a: &Args, out: &[Out], dir: &std::path::Path, dated: &[bool]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("--plots {}", dir.display()))?;
    let mut by_plot: BTreeMap<(&str, &str), Vec<estimate::plots::Point>> = BTreeMap::new();
    for o in out.iter().filter(|o| !o.keys.is_empty() || a.by.is_empty()) {
        let (mut series, mut x) = (Vec::new(), Vec::new());
        for (k, v) in o.keys.iter().enumerate() {
            match dated[k] && a.every.is_some() {
                true => x.push(v.clone()),
                false => series.push(format!("{}={v}", a.by[k])),
            }
        }
        let (series, x) = match (x.is_empty(), series.is_empty()) {
            (true, _) => ("all".to_string(), o.group.clone()),
            (false, true) => ("all".to_string(), x.join(" ")),
            (false, false) => (series.join(", "), x.join(" ")),
        };
        by_plot
            .entry((o.task.as_str(), o.label.as_str()))
            .or_default()
            .push(estimate::plots::Point {
                series,
                x,
                share: o.share.share,
                ci_low: o.share.ci_low,
                ci_high: o.share.ci_high,
                raw: o.raw,
            });
    }
    for ((task, label), pts) in &by_plot {
        let name: String = format!("{task}_{label}")
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let title = format!("{task} = {label}: share ({})", out[0].method);
        estimate::plots::shares(&title, pts, &dir.join(format!("{name}.png")))?;
    }
    Ok(())
}

fn report(
    a: &Args,
    out: &[Out],
    notes: &[String],
    gold_n: usize,
    design: &paratag::sample::Design,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# paratag estimate\n");
    let _ = writeln!(
        s,
        "Predictions: `{}`. Gold sample: `{}` ({gold_n} paragraphs matched). Method: `{}`{}. Intervals: 95 % percentile bootstrap, {} replicates resampling the gold sample and each group's paragraphs, seed {}.\n",
        a.pred.display(),
        a.gold.gold.display(),
        a.method
            .map_or("emq for stance, acc for topic (the default)", Method::name),
        match a.every {
            Some(p) => format!(", dates by {p:?}").to_lowercase(),
            None => String::new(),
        },
        a.bootstrap,
        a.seed
    );
    let _ = writeln!(
        s,
        "The correction assumes the classifier errs alike in the gold sample and in every group (given the true label). {}\n",
        design_note(design)
    );
    for n in notes {
        let _ = writeln!(s, "- {n}");
    }
    let mut tasks: Vec<&str> = out.iter().map(|o| o.task.as_str()).collect();
    tasks.dedup();
    for t in tasks {
        let _ = writeln!(s, "\n## {t}\n");
        let _ = writeln!(s, "| group | n | label | share [95 % CI] | raw share |");
        let _ = writeln!(s, "|---|---|---|---|---|");
        for o in out.iter().filter(|o| o.task == t) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.3} [{:.3}, {:.3}] | {:.3} |",
                o.group, o.n, o.label, o.share.share, o.share.ci_low, o.share.ci_high, o.raw
            );
        }
    }
    s
}

/// How the report says the gold sample's design was handled.
fn design_note(d: &paratag::sample::Design) -> String {
    let drawn = match d.strategies.is_empty() {
        true => String::new(),
        false => format!(" (drawn by {})", d.strategies.join(", ")),
    };
    match d.is_weighted() {
        true => format!(
            "The gold sample{drawn} is weighted by its `sample_weight` column (1 / each paragraph's inclusion probability), so its error rates are those of the corpus it was drawn from, not of the over-sampled paragraphs."
        ),
        false => format!(
            "The gold sample{drawn} is taken as a simple random sample of the corpus (every paragraph counts the same)."
        ),
    }
}
