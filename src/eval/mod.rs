//! `paratag eval`: the model against coders' gold labels.
//!
//! Gold items are joined to predictions on `article_id` + `paragraph` (the
//! texts must then agree), else on the exact text. For topic and each stance
//! target, the gold label is the coders' majority (ties are left out and
//! counted); a null prediction counts as "none". The figures, their bootstrap
//! intervals (resampling articles) and the breakdowns make up a [`Report`],
//! written as JSON ([`Report`] is the documented schema), Markdown
//! ([`markdown`]) and PNG plots ([`plots`]).

pub mod markdown;
pub mod metrics;
pub mod plots;

use crate::error::{Error, Result};
use crate::formats::{GoldItem, NONE};
use crate::record::{Pred, Predictions};
use crate::task::Task;
use metrics::{ClassStats, Confusion, Prf};
use rand::SeedableRng;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Version of the JSON report layout; bumped on any incompatible change.
pub const REPORT_SCHEMA: u32 = 1;

#[derive(Debug, Clone)]
pub struct Options {
    pub bootstrap: usize,
    pub seed: u64,
    pub by: Vec<String>,
    /// Score only entities of these types, gold and predicted (`None`: all).
    pub entity_types: Option<BTreeSet<String>>,
}

/// A gold item and its prediction.
#[derive(Debug, Clone, Copy)]
pub struct Pair<'a> {
    pub gold: &'a GoldItem,
    pub pred: &'a Pred,
}

impl Pair<'_> {
    pub fn article(&self) -> &str {
        &self.pred.article_id
    }
}

/// Joins gold to predictions. Returns the pairs and the locations of gold
/// items with no prediction.
pub fn join<'a>(
    gold: &'a [GoldItem],
    preds: &'a Predictions,
) -> Result<(Vec<Pair<'a>>, Vec<String>)> {
    let mut by_key: HashMap<(&str, u32), &Pred> = HashMap::new();
    let mut by_text: HashMap<&str, &Pred> = HashMap::new();
    for p in &preds.rows {
        by_key.insert((p.article_id.as_str(), p.paragraph), p);
        by_text.entry(p.text.as_str()).or_insert(p);
    }
    let mut pairs = Vec::new();
    let mut unmatched = Vec::new();
    for g in gold {
        let keyed = match (&g.article_id, g.paragraph) {
            (Some(a), Some(p)) => by_key.get(&(a.as_str(), p)).copied(),
            _ => None,
        };
        let pred = match keyed {
            Some(p) if p.text == g.text => Some(p),
            Some(p) if !by_text.contains_key(g.text.as_str()) => {
                return Err(Error::input(
                    g.location.clone(),
                    format!(
                        "article {:?} paragraph {} has a different text in the predictions ({:?}…); were they tagged from another version of the corpus?",
                        p.article_id,
                        p.paragraph,
                        p.text.chars().take(40).collect::<String>()
                    ),
                ))
            }
            _ => by_text.get(g.text.as_str()).copied(),
        };
        match pred {
            Some(p) => pairs.push(Pair { gold: g, pred: p }),
            None => unmatched.push(g.location.clone()),
        }
    }
    Ok((pairs, unmatched))
}

/// The JSON report. Field meanings are documented in docs/commands.md (`paratag eval`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: u32,
    pub paratag_version: String,
    pub gold: GoldSummary,
    pub predictions: String,
    pub bootstrap: BootstrapInfo,
    pub tasks: Vec<TaskReport>,
    pub ner: Option<NerReport>,
    pub by: Vec<Breakdown>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GoldSummary {
    pub path: String,
    pub format: String,
    pub items: usize,
    pub matched: usize,
    /// `file:line` of gold items that match no prediction.
    pub unmatched: Vec<String>,
    /// Matched items with no usable label (blank, rejected or ignored).
    pub unlabeled: usize,
    pub coders: Vec<String>,
    /// What reading the file merged, skipped or decoded.
    pub read: crate::formats::ReadReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct BootstrapInfo {
    pub replicates: usize,
    pub seed: u64,
    pub level: f64,
    pub unit: &'static str,
}

/// A figure with its 95 % bootstrap interval (null where undefined).
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    /// The task's name, or [`POOLED_STANCE`].
    pub task: String,
    /// The task; `None` for the pooled stance figure.
    #[serde(skip)]
    pub of: Option<Task>,
    /// Items with a majority gold label.
    pub n: usize,
    pub articles: usize,
    /// Items left out because the coders tied.
    pub ties: usize,
    pub accuracy: Estimate,
    pub macro_f1: Estimate,
    /// Mean F1 of favor and against (stance only; SemEval-2016's F_avg).
    pub f_avg: Option<f64>,
    pub kappa: Option<f64>,
    /// Krippendorff's alpha (nominal) with the model as one more coder.
    pub alpha_with_model: Estimate,
    /// Krippendorff's alpha among the coders alone (null with one coder).
    pub alpha_coders: Estimate,
    pub per_class: Vec<ClassStats>,
    pub confusion: Confusion,
    /// Score vs accuracy in ten equal-width bins of the model's confidence.
    pub reliability: Vec<Bin>,
    /// Confidence histograms (ten bins over [0, 1]) of correct and wrong predictions.
    pub score_histogram: ScoreHistogram,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bin {
    pub low: f64,
    pub high: f64,
    pub n: usize,
    pub mean_score: Option<f64>,
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScoreHistogram {
    pub correct: Vec<usize>,
    pub wrong: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NerReport {
    pub n: usize,
    /// The types scored (`--entity-types`); `None`: every type.
    pub types: Option<Vec<String>>,
    pub exact: NerScores,
    pub partial: NerScores,
}

#[derive(Debug, Clone, Serialize)]
pub struct NerScores {
    pub micro: Prf,
    pub macro_f1: f64,
    pub per_type: Vec<TypeScores>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TypeScores {
    pub label: String,
    #[serde(flatten)]
    pub prf: Prf,
}

#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    pub column: String,
    pub value: String,
    pub tasks: Vec<BreakdownTask>,
    pub ner_micro_f1: Option<f64>,
    pub ner_n: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BreakdownTask {
    pub task: String,
    pub n: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
}

/// One classification decision: article, coders' labels, model label, confidence.
struct Decision<'a> {
    article: &'a str,
    coders: Vec<Option<&'a str>>,
    gold: Option<&'a str>,
    pred: &'a str,
    score: Option<f64>,
}

/// The tasks the gold labels: the topic, then each stance target, then
/// each target's holder.
pub fn gold_tasks(pairs: &[Pair]) -> Vec<Task> {
    let mut topic = false;
    let mut targets = BTreeSet::new();
    let mut holders = BTreeSet::new();
    for p in pairs {
        for a in &p.gold.annotations {
            topic |= a.topic.is_some();
            targets.extend(a.stances.keys().cloned());
            holders.extend(a.holders.keys().cloned());
        }
    }
    let topic = topic.then_some(Task::Topic);
    topic
        .into_iter()
        .chain(targets.into_iter().map(Task::Stance))
        .chain(holders.into_iter().map(Task::Holder))
        .collect()
}

/// The model's label and confidence for `task` (null counts as "none").
/// A holder is read from P(reported) whatever the stance label, so holder
/// accuracy measures the holder head on every paragraph the gold gives a
/// holder, not only those the stance head also found.
pub fn pred_label<'a>(p: &'a Pred, task: &Task) -> (&'a str, Option<f64>) {
    let t = match task {
        Task::Holder(t) => {
            return match p.stances.get(t) {
                Some(crate::record::PredStance {
                    reported: Some(r), ..
                }) => {
                    let r = f64::from(*r);
                    if r >= 0.5 {
                        ("reported", Some(r))
                    } else {
                        ("author", Some(1.0 - r))
                    }
                }
                Some(s) => (s.holder.as_deref().unwrap_or(NONE), None),
                None => (NONE, None),
            }
        }
        Task::Topic => None,
        Task::Stance(t) => Some(t),
        // Entities are spans, scored by `ner_report`.
        Task::Entities => return (NONE, None),
    };
    match t {
        None => {
            let top = p
                .topic_scores
                .iter()
                .flatten()
                .map(|s| s.1 as f64)
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
            match &p.topic {
                Some(t) => (t.as_str(), p.topic_score.map(f64::from).or(top)),
                None => (NONE, top.map(|t| 1.0 - t)),
            }
        }
        Some(t) => match p.stances.get(t) {
            Some(s) => (s.label.as_deref().unwrap_or(NONE), s.score.map(f64::from)),
            None => (NONE, None),
        },
    }
}

/// Each coder's label for `task` on one gold item (`None`: not labeled).
pub fn coder_labels<'a>(g: &'a GoldItem, coders: &[&str], task: &Task) -> Vec<Option<&'a str>> {
    coders
        .iter()
        .map(|c| {
            g.annotations
                .iter()
                .find(|a| a.coder == *c)
                .and_then(|a| a.label(task))
        })
        .collect()
}

/// The majority of the coders' labels; `None` on a tie or no label.
pub fn majority<'a>(labels: &[Option<&'a str>]) -> Option<&'a str> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in labels.iter().flatten() {
        *counts.entry(l).or_default() += 1;
    }
    let best = counts.values().copied().max()?;
    let mut top = counts.iter().filter(|(_, &c)| c == best);
    let first = top.next().map(|(l, _)| *l);
    if top.next().is_some() {
        None
    } else {
        first
    }
}

/// The task name of the figure pooled over all stance targets (no target
/// id can start with `_`, so it never clashes with one).
pub const POOLED_STANCE: &str = "stance__pooled";

pub fn evaluate(
    pairs: &[Pair],
    preds: &Predictions,
    gold: GoldSummary,
    predictions: String,
    label_order: &BTreeMap<Task, Vec<String>>,
    opts: &Options,
) -> Result<Report> {
    let coders: Vec<&str> = gold.coders.iter().map(String::as_str).collect();
    let mut tasks = Vec::new();
    let mut pooled: Vec<Decision> = Vec::new();
    let mut stance_tasks = 0;
    for task in gold_tasks(pairs) {
        check_predicted(&task, preds, &predictions)?;
        let decisions = decisions(pairs, &coders, &task);
        let order = label_order.get(&task).cloned().unwrap_or_default();
        tasks.push(task_report(Some(&task), &decisions, &order, opts));
        if task.is_stance() {
            stance_tasks += 1;
            pooled.extend(decisions);
        }
    }
    // Beside the per-target tables, one figure over every target's
    // decisions (micro-averaged; articles resampled as a whole).
    if stance_tasks >= 2 {
        let order = ["favor", "against", crate::formats::NONE].map(String::from);
        tasks.push(task_report(None, &pooled, &order, opts));
    }
    check_entity_types(pairs, opts.entity_types.as_ref())?;
    let ner = ner_report(pairs, preds, opts.entity_types.as_ref())?;
    let mut by = Vec::new();
    for col in &opts.by {
        by.extend(breakdown(pairs, preds, &coders, &tasks, col, opts)?);
    }
    Ok(Report {
        schema: REPORT_SCHEMA,
        paratag_version: env!("CARGO_PKG_VERSION").into(),
        gold,
        predictions,
        bootstrap: BootstrapInfo {
            replicates: opts.bootstrap,
            seed: opts.seed,
            level: 0.95,
            unit: "article",
        },
        tasks,
        ner,
        by,
    })
}

/// Each task's figures per value of column `col` (of the predictions, or
/// else the gold).
fn breakdown(
    pairs: &[Pair],
    preds: &Predictions,
    coders: &[&str],
    tasks: &[TaskReport],
    col: &str,
    opts: &Options,
) -> Result<Vec<Breakdown>> {
    let mut out = Vec::new();
    let value_of = |p: &Pair| -> Option<String> {
        p.pred
            .fields
            .get(col)
            .or_else(|| p.gold.fields.get(col))
            .cloned()
    };
    if !pairs.iter().any(|p| value_of(p).is_some()) {
        return Err(Error::Config(format!(
            "--by {col}: no such column in the predictions or the gold"
        )));
    }
    let values: BTreeSet<String> = pairs.iter().filter_map(value_of).collect();
    for v in values {
        let sub: Vec<Pair> = pairs
            .iter()
            .filter(|p| value_of(p).as_deref() == Some(v.as_str()))
            .copied()
            .collect();
        let mut bt = Vec::new();
        for t in tasks {
            // The pooled figure has no breakdown.
            let Some(task) = &t.of else { continue };
            let pairs_t: Vec<(&str, &str)> = sub
                .iter()
                .filter_map(|p| {
                    let labels = coder_labels(p.gold, coders, task);
                    Some((majority(&labels)?, pred_label(p.pred, task).0))
                })
                .collect();
            if pairs_t.is_empty() {
                continue;
            }
            let c = Confusion::new(&pairs_t, &t.confusion.labels);
            bt.push(BreakdownTask {
                task: t.task.clone(),
                n: pairs_t.len(),
                accuracy: c.accuracy(),
                macro_f1: c.macro_f1(),
            });
        }
        let sub_ner = ner_report(&sub, preds, opts.entity_types.as_ref())?;
        out.push(Breakdown {
            column: col.to_string(),
            value: v,
            tasks: bt,
            ner_n: sub_ner.as_ref().map_or(0, |r| r.n),
            ner_micro_f1: sub_ner.map(|r| r.exact.micro.f1),
        });
    }
    Ok(out)
}

/// The predictions must carry what the gold labels.
fn check_predicted(task: &Task, preds: &Predictions, predictions: &str) -> Result<()> {
    if *task == Task::Topic && !preds.has_topic() {
        return Err(Error::Config(format!(
            "the gold labels topics but the predictions ({predictions}) have none: tag with a codebook that has topics"
        )));
    }
    if let Some(t) = task.target() {
        if !preds.targets.iter().any(|x| x == t) {
            return Err(Error::Config(format!(
                "the gold labels stance target {t:?} but the predictions ({predictions}) have no {} column",
                Task::Stance(t.into())
            )));
        }
    }
    Ok(())
}

/// A decision per pair some coder labeled for `task`.
fn decisions<'a>(pairs: &'a [Pair<'a>], coders: &[&str], task: &Task) -> Vec<Decision<'a>> {
    pairs
        .iter()
        .filter_map(|p| {
            let by_coder = coder_labels(p.gold, coders, task);
            if by_coder.iter().all(Option::is_none) {
                return None;
            }
            let (pred, score) = pred_label(p.pred, task);
            Some(Decision {
                article: p.article(),
                gold: majority(&by_coder),
                coders: by_coder,
                pred,
                score,
            })
        })
        .collect()
}

fn alpha(ds: &[&Decision], with_model: bool) -> Option<f64> {
    let units: Vec<Vec<Option<&str>>> = ds
        .iter()
        .map(|d| {
            let mut u = d.coders.clone();
            if with_model {
                u.push(Some(d.pred));
            }
            u
        })
        .collect();
    metrics::krippendorff_alpha_nominal(&units)
}

fn gold_pred<'a>(sel: &[&Decision<'a>]) -> Vec<(&'a str, &'a str)> {
    sel.iter().filter_map(|d| Some((d.gold?, d.pred))).collect()
}

/// Calibration bins of the decided items' scores (tenths), and the
/// histogram of correct and wrong decisions' scores.
fn reliability(decided: &[&Decision]) -> (Vec<Bin>, ScoreHistogram) {
    let mut reliability: Vec<Bin> = (0..10)
        .map(|i| Bin {
            low: i as f64 / 10.0,
            high: (i + 1) as f64 / 10.0,
            n: 0,
            mean_score: None,
            accuracy: None,
        })
        .collect();
    let mut hist = ScoreHistogram {
        correct: vec![0; 10],
        wrong: vec![0; 10],
    };
    let mut sums = vec![(0.0, 0usize); 10];
    for d in decided {
        let Some(s) = d.score else { continue };
        let b = ((s * 10.0).floor() as usize).min(9);
        let ok = d.gold == Some(d.pred);
        reliability[b].n += 1;
        sums[b].0 += s;
        sums[b].1 += usize::from(ok);
        if ok {
            hist.correct[b] += 1;
        } else {
            hist.wrong[b] += 1;
        }
    }
    for (b, (s, ok)) in reliability.iter_mut().zip(sums) {
        if b.n > 0 {
            b.mean_score = Some(s / b.n as f64);
            b.accuracy = Some(ok as f64 / b.n as f64);
        }
    }
    (reliability, hist)
}

/// The figures of one task, or of all stance targets pooled (`None`).
fn task_report(
    task: Option<&Task>,
    ds: &[Decision],
    order: &[String],
    opts: &Options,
) -> TaskReport {
    let decided: Vec<&Decision> = ds.iter().filter(|d| d.gold.is_some()).collect();
    let conf = Confusion::new(&gold_pred(&decided), order);
    let labels = conf.labels.clone();
    let multi_coder = ds.iter().any(|d| d.coders.iter().flatten().count() >= 2);
    let all: Vec<&Decision> = ds.iter().collect();

    // Bootstrap over articles.
    let mut by_article: BTreeMap<&str, Vec<&Decision>> = BTreeMap::new();
    for d in ds {
        by_article.entry(d.article).or_default().push(d);
    }
    let groups: Vec<Vec<&Decision>> = by_article.into_values().collect();
    let mut reps: [Vec<f64>; 4] = Default::default();
    metrics::for_each_resample(&groups, opts.bootstrap, opts.seed, |sample| {
        let dec: Vec<&Decision> = sample
            .iter()
            .copied()
            .filter(|d| d.gold.is_some())
            .collect();
        let c = Confusion::new(&gold_pred(&dec), &labels);
        reps[0].push(c.accuracy());
        reps[1].push(c.macro_f1());
        reps[2].push(alpha(sample, true).unwrap_or(f64::NAN));
        if multi_coder {
            reps[3].push(alpha(sample, false).unwrap_or(f64::NAN));
        }
    });
    let [r_acc, r_f1, r_am, r_ac] = reps;
    let est = |v: Option<f64>, r: Vec<f64>| {
        let ci = v.and(metrics::percentile_ci(r, 0.95));
        Estimate {
            value: v,
            ci_low: ci.map(|c| c.0),
            ci_high: ci.map(|c| c.1),
        }
    };
    let has = !decided.is_empty();
    let (reliability, hist) = reliability(&decided);
    TaskReport {
        task: task.map_or(POOLED_STANCE.into(), Task::name),
        of: task.cloned(),
        n: decided.len(),
        articles: groups.len(),
        ties: ds.len() - decided.len(),
        accuracy: est(has.then(|| conf.accuracy()), r_acc),
        macro_f1: est(has.then(|| conf.macro_f1()), r_f1),
        f_avg: (task.is_none_or(Task::is_stance) && has)
            .then(|| conf.mean_f1_of(&["favor", "against"])),
        kappa: conf.kappa(),
        alpha_with_model: est(alpha(&all, true), r_am),
        alpha_coders: est(
            if multi_coder {
                alpha(&all, false)
            } else {
                None
            },
            r_ac,
        ),
        // Classes neither in the gold nor predicted say nothing.
        per_class: conf
            .per_class()
            .into_iter()
            .filter(|c| c.support > 0 || c.predicted > 0)
            .collect(),
        confusion: conf,
        reliability,
        score_histogram: hist,
    }
}

/// The entity spans more than half of an item's coders marked, as
/// `(start, end, type)`; `None` when no coder labeled its entities.
pub fn majority_spans(item: &crate::formats::GoldItem) -> Option<Vec<metrics::TypedSpan<'_>>> {
    let coded: Vec<&Vec<crate::formats::Span>> = item
        .annotations
        .iter()
        .filter_map(|a| a.entities.as_ref())
        .collect();
    if coded.is_empty() {
        return None;
    }
    let mut votes: BTreeMap<(u32, u32, &str), usize> = BTreeMap::new();
    for spans in &coded {
        for s in spans.iter() {
            *votes.entry((s.start, s.end, s.label.as_str())).or_default() += 1;
        }
    }
    Some(
        votes
            .into_iter()
            .filter(|(_, v)| 2 * v > coded.len())
            .map(|(k, _)| k)
            .collect(),
    )
}

/// `--entity-types`: each type is some gold or predicted entity's (a
/// misspelt type would silently score nothing).
fn check_entity_types(pairs: &[Pair], types: Option<&BTreeSet<String>>) -> Result<()> {
    for t in types.into_iter().flatten() {
        let mut spans = pairs.iter().flat_map(|p| {
            let gold = p
                .gold
                .annotations
                .iter()
                .flat_map(|a| a.entities.iter().flatten());
            gold.chain(p.pred.entities.iter().flatten().map(|e| &e.span))
        });
        if !spans.any(|s| &s.label == t) {
            return Err(Error::Config(format!(
                "--entity-types {t}: no gold or predicted entity has this type"
            )));
        }
    }
    Ok(())
}

/// NER figures over the pairs whose gold labels entities (majority spans
/// with several coders: kept when more than half the coders marked them),
/// over the entities of `types` only when given.
fn ner_report(
    pairs: &[Pair],
    preds: &Predictions,
    types: Option<&BTreeSet<String>>,
) -> Result<Option<NerReport>> {
    let kept = |s: &metrics::TypedSpan| types.is_none_or(|t| t.contains(s.2));
    let items: Vec<(Vec<metrics::TypedSpan>, Vec<metrics::TypedSpan>)> = pairs
        .iter()
        .filter_map(|p| {
            let mut gold = majority_spans(p.gold)?;
            gold.retain(kept);
            let pred = p
                .pred
                .entities
                .iter()
                .flatten()
                .map(|e| (e.span.start, e.span.end, e.span.label.as_str()))
                .filter(kept)
                .collect();
            Some((gold, pred))
        })
        .collect();
    if items.is_empty() {
        return Ok(None);
    }
    if !preds.has_entities() {
        return Err(Error::Config(
            "the gold labels entities but the predictions have none: tag without --no-ner".into(),
        ));
    }
    let scores = |exact: bool| {
        let counts = metrics::span_counts(&items, exact);
        let (tp, fp, fn_) = counts
            .values()
            .fold((0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2));
        let per_type: Vec<TypeScores> = counts
            .iter()
            .map(|(l, c)| TypeScores {
                label: l.to_string(),
                prf: Prf::from_counts(c.0, c.1, c.2),
            })
            .collect();
        let macro_f1 =
            per_type.iter().map(|t| t.prf.f1).sum::<f64>() / per_type.len().max(1) as f64;
        NerScores {
            micro: Prf::from_counts(tp, fp, fn_),
            macro_f1,
            per_type,
        }
    };
    Ok(Some(NerReport {
        n: items.len(),
        types: types.map(|t| t.iter().cloned().collect()),
        exact: scores(true),
        partial: scores(false),
    }))
}

/// Splits article ids into a calibration part and a held-out part
/// (`holdout` is the held-out fraction), the same way in `calibrate` and
/// `eval --split`.
pub fn split_articles(articles: &BTreeSet<String>, holdout: f64, seed: u64) -> BTreeSet<String> {
    use rand::seq::SliceRandom;
    let mut ids: Vec<&String> = articles.iter().collect();
    ids.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let k = ((ids.len() as f64) * holdout).round() as usize;
    ids.into_iter().take(k).cloned().collect()
}
