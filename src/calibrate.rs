//! `paratag calibrate`: decision thresholds chosen on hand-labeled gold.
//!
//! For topics and each stance target, the threshold that maximises the
//! objective (macro-F1 by default) on the gold sample is found by search
//! over the midpoints between observed scores. Its expected effect is
//! estimated by k-fold cross-validation over articles: for each fold the
//! threshold is chosen on the other folds and scored on this one, so the
//! "after" figure is not the optimistic in-sample one. The effect (after by
//! cross-validation minus before) gets a 95 % interval from a bootstrap over
//! articles, and every class with fewer than [`MIN_CLASS`] gold items is
//! named: a threshold moved on a handful of items is mostly noise. The new
//! codebook is
//! the input with the thresholds replaced (formatting and comments kept, via
//! `toml_edit`) and a comment giving the figures before and after.

use crate::codebook::Codebook;
use crate::error::{Error, Result};
use crate::eval::metrics::Confusion;
use crate::eval::{coder_labels, majority, Pair};
use crate::formats::NONE;
use crate::heads;
use crate::task::{Col, Task};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Objective {
    MacroF1,
    Accuracy,
    /// F1 of one class.
    F1(String),
}

impl std::str::FromStr for Objective {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "macro-f1" | "macro_f1" => Ok(Objective::MacroF1),
            "accuracy" => Ok(Objective::Accuracy),
            _ => match s.strip_prefix("f1:") {
                Some(l) if !l.is_empty() => Ok(Objective::F1(l.to_string())),
                _ => Err(format!(
                    "unknown objective {s:?}: use macro-f1, accuracy or f1:<label>"
                )),
            },
        }
    }
}

impl Objective {
    pub fn name(&self) -> String {
        match self {
            Objective::MacroF1 => "macro-F1".into(),
            Objective::Accuracy => "accuracy".into(),
            Objective::F1(l) => format!("F1({l})"),
        }
    }
    fn score(&self, pairs: &[(&str, &str)]) -> f64 {
        let c = Confusion::new(pairs, &[]);
        match self {
            Objective::MacroF1 => c.macro_f1(),
            Objective::Accuracy => c.accuracy(),
            Objective::F1(l) => c.mean_f1_of(&[l.as_str()]),
        }
    }
}

/// Fewer gold items of a class than this, and `calibrate` warns.
pub const MIN_CLASS: usize = 30;

/// One item for one task: its article, gold label and the model's scores.
#[derive(Debug, Clone)]
struct Item {
    article: String,
    gold: String,
    scores: Scores,
}

#[derive(Debug, Clone)]
enum Scores {
    /// Topic ids with their scores.
    Topic(Vec<(String, f32)>),
    /// P(favor), P(against); `None` where the target was not scored (gated).
    /// P(favor), P(against), and with a holder head P(reported) and the
    /// codebook's reading.
    Stance(Option<(f32, f32, Option<f32>, crate::codebook::Holder)>),
}

impl Item {
    /// The label at threshold `t`, as `paratag tag` decides it.
    fn decide(&self, t: f32) -> &str {
        match &self.scores {
            Scores::Topic(s) => match s
                .iter()
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            {
                Some((id, p)) if *p >= t => id,
                _ => NONE,
            },
            Scores::Stance(None) => NONE,
            Scores::Stance(Some((f, a, r, reading))) => {
                let (l, s) = heads::stance_decision(*f, *a, t);
                heads::holder_decision(l, s, *r, *reading).0
            }
        }
    }
    fn confidence(&self) -> Option<f32> {
        match &self.scores {
            Scores::Topic(s) => s.iter().map(|x| x.1).reduce(f32::max),
            Scores::Stance(s) => s.map(|(f, a, _, _)| f.max(a)),
        }
    }
}

/// The result for one task.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Change {
    pub task: Task,
    pub n: usize,
    pub articles: usize,
    pub threshold_before: f32,
    pub threshold_after: f32,
    /// Objective with the old threshold, on the calibration items.
    pub before: f64,
    /// Objective with the new threshold, in-sample (optimistic).
    pub after_in_sample: f64,
    /// Cross-validated objective of the procedure (`None` with < 2 articles).
    pub after_cv: Option<f64>,
    pub folds: usize,
    /// `(n, before, after)` on the held-out part with `--split`.
    pub held_out: Option<(usize, f64, f64)>,
    /// Gold items per class (majority label; `none` included).
    pub classes: std::collections::BTreeMap<String, usize>,
    /// After (cross-validated where there are folds, else in-sample)
    /// minus before.
    pub effect: f64,
    /// 95 % percentile interval of the effect, resampling articles.
    pub effect_ci: Option<(f64, f64)>,
}

impl Change {
    /// Classes with fewer than [`MIN_CLASS`] gold items, as `(class, n)`.
    pub fn thin_classes(&self) -> Vec<(&str, usize)> {
        self.classes
            .iter()
            .filter(|(_, &n)| n < MIN_CLASS)
            .map(|(c, &n)| (c.as_str(), n))
            .collect()
    }
}

pub struct Options {
    pub objective: Objective,
    pub folds: usize,
    pub seed: u64,
    /// Bootstrap replicates for the effect's interval.
    pub bootstrap: usize,
}

fn items(pairs: &[Pair], task: &Task, codebook: &Codebook) -> Result<Vec<Item>> {
    let coders = crate::formats::coders(pairs.iter().map(|p| p.gold));
    let mut out = Vec::new();
    for p in pairs {
        let labels = coder_labels(p.gold, &coders, task);
        let Some(gold) = majority(&labels) else {
            continue;
        };
        let scores = match task {
            Task::Holder(_) | Task::Entities => return Err(not_calibrated(task)),
            Task::Topic => Scores::Topic(p.pred.topic_scores.clone().ok_or_else(|| {
                Error::Config(format!(
                    "article {:?} paragraph {}: no topic_scores in the predictions",
                    p.pred.article_id, p.pred.paragraph
                ))
            })?),
            Task::Stance(t) => {
                let s = p.pred.stances.get(t).cloned().unwrap_or_default();
                let reading = codebook
                    .stances
                    .iter()
                    .find(|x| x.id == *t)
                    .map(|x| x.holder)
                    .unwrap_or_default();
                match (s.label.is_some(), s.favor, s.against) {
                    (false, _, _) => Scores::Stance(None),
                    (true, Some(f), Some(a)) => Scores::Stance(Some((f, a, s.reported, reading))),
                    _ => {
                        return Err(Error::Config(format!(
                            "the predictions have no {}/{} scores: tag again with this version of paratag",
                            task.col(Col::Favor),
                            task.col(Col::Against)
                        )))
                    }
                }
            }
        };
        out.push(Item {
            article: p.article().to_string(),
            gold: gold.to_string(),
            scores,
        });
    }
    Ok(out)
}

fn objective_at(items: &[&Item], t: f32, obj: &Objective) -> f64 {
    let pairs: Vec<(&str, &str)> = items
        .iter()
        .map(|i| (i.gold.as_str(), i.decide(t)))
        .collect();
    obj.score(&pairs)
}

/// The best threshold on `items`; ties go to the one nearest `current`.
fn best_threshold(items: &[&Item], current: f32, obj: &Objective) -> f32 {
    let mut conf: Vec<f32> = items.iter().filter_map(|i| i.confidence()).collect();
    conf.sort_by(f32::total_cmp);
    conf.dedup();
    let mut cands = vec![0.0f32, current];
    cands.extend(conf.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    if let Some(&top) = conf.last() {
        cands.push((top + 1e-4).min(1.0));
    }
    let mut best = (f64::MIN, f32::MAX, current);
    for t in cands {
        let s = objective_at(items, t, obj);
        let dist = (t - current).abs();
        if s > best.0 + 1e-12 || ((s - best.0).abs() <= 1e-12 && dist < best.1) {
            best = (s, dist, t);
        }
    }
    // Thresholds are written with 4 decimals.
    (best.2 * 1e4).round() / 1e4
}

/// The stance threshold that maximises macro-F1 on labeled items, given
/// each item's gold label and (P(favor), P(against)); ties go to the one
/// nearest 0.5. Returns it with the macro-F1 it gives. `train` fits a
/// head's threshold on its dev set with it.
pub fn stance_threshold(gold: &[&str], scores: &[(f32, f32)]) -> (f32, f64) {
    let items: Vec<Item> = gold
        .iter()
        .zip(scores)
        .map(|(g, &(f, a))| Item {
            article: String::new(),
            gold: g.to_string(),
            scores: Scores::Stance(Some((f, a, None, crate::codebook::Holder::Any))),
        })
        .collect();
    let refs: Vec<&Item> = items.iter().collect();
    let t = best_threshold(&refs, 0.5, &Objective::MacroF1);
    (t, objective_at(&refs, t, &Objective::MacroF1))
}

/// Each item's label after calibration: from the threshold chosen on the
/// other `k` folds of articles (cross-validation), or with `after`
/// in-sample when there are fewer than 2 folds.
fn cross_validated<'a>(
    all: &'a [Item],
    articles: &BTreeSet<&str>,
    k: usize,
    current: f32,
    after: f32,
    opts: &Options,
) -> Vec<&'a str> {
    if k < 2 {
        return all.iter().map(|i| i.decide(after)).collect();
    }
    let mut ids: Vec<&str> = articles.iter().copied().collect();
    ids.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed));
    let fold: std::collections::HashMap<&str, usize> =
        ids.iter().enumerate().map(|(i, a)| (*a, i % k)).collect();
    let fold_of = |a: &str| fold[a];
    let per_fold: Vec<f32> = (0..k)
        .map(|f| {
            let train: Vec<&Item> = all.iter().filter(|i| fold_of(&i.article) != f).collect();
            best_threshold(&train, current, &opts.objective)
        })
        .collect();
    all.iter()
        .map(|i| i.decide(per_fold[fold_of(&i.article)]))
        .collect()
}

/// The threshold the codebook gives `task` now.
fn current_threshold(task: &Task, codebook: &Codebook) -> Result<f32> {
    Ok(match task {
        Task::Holder(_) | Task::Entities => return Err(not_calibrated(task)),
        Task::Topic => codebook.topics.threshold,
        Task::Stance(t) => {
            codebook
                .stances
                .iter()
                .find(|s| s.id == *t)
                .ok_or_else(|| Error::Config(format!("the codebook has no stance target {t:?}")))?
                .threshold
        }
    })
}

/// Calibrates `tasks` on `pairs`; `held_out` pairs, if any, are only scored.
pub fn calibrate(
    pairs: &[Pair],
    held_out: &[Pair],
    tasks: &[Task],
    codebook: &Codebook,
    opts: &Options,
) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    for task in tasks {
        let current = current_threshold(task, codebook)?;
        let all = items(pairs, task, codebook)?;
        if all.is_empty() {
            continue;
        }
        let refs: Vec<&Item> = all.iter().collect();
        let after = best_threshold(&refs, current, &opts.objective);
        let articles: BTreeSet<&str> = all.iter().map(|i| i.article.as_str()).collect();
        let k = opts.folds.min(articles.len());
        // Each item's label after calibration: from the threshold chosen on
        // the other folds (cross-validation), or in-sample without folds.
        let decided_after = cross_validated(&all, &articles, k, current, after, opts);
        let decided_before: Vec<&str> = all.iter().map(|i| i.decide(current)).collect();
        let score = |idx: &[&usize], decided: &[&str]| {
            let pairs: Vec<(&str, &str)> = idx
                .iter()
                .map(|&&i| (all[i].gold.as_str(), decided[i]))
                .collect();
            opts.objective.score(&pairs)
        };
        let every: Vec<usize> = (0..all.len()).collect();
        let every_ref: Vec<&usize> = every.iter().collect();
        let before = score(&every_ref, &decided_before);
        let after_cv = (k >= 2).then(|| score(&every_ref, &decided_after));
        let effect = score(&every_ref, &decided_after) - before;
        let mut by_article: std::collections::BTreeMap<&str, Vec<&usize>> = Default::default();
        for (i, item) in every.iter().zip(&all) {
            by_article.entry(item.article.as_str()).or_default().push(i);
        }
        let groups: Vec<Vec<&usize>> = by_article.into_values().collect();
        let mut reps = vec![];
        crate::eval::metrics::for_each_resample(&groups, opts.bootstrap, opts.seed, |sample| {
            reps.push(score(sample, &decided_after) - score(sample, &decided_before));
        });
        let mut classes = std::collections::BTreeMap::new();
        for i in &all {
            *classes.entry(i.gold.clone()).or_insert(0) += 1;
        }
        let held = if held_out.is_empty() {
            None
        } else {
            let h = items(held_out, task, codebook)?;
            let hr: Vec<&Item> = h.iter().collect();
            Some((
                h.len(),
                objective_at(&hr, current, &opts.objective),
                objective_at(&hr, after, &opts.objective),
            ))
        };
        out.push(Change {
            task: task.clone(),
            n: all.len(),
            articles: articles.len(),
            threshold_before: current,
            threshold_after: after,
            before,
            after_in_sample: objective_at(&refs, after, &opts.objective),
            after_cv,
            folds: k,
            held_out: held,
            classes,
            effect,
            effect_ci: crate::eval::metrics::percentile_ci(reps, 0.95),
        });
    }
    Ok(out)
}

/// Only topic and stance thresholds are calibrated.
fn not_calibrated(task: &Task) -> Error {
    Error::Config(format!(
        "{task}: only topic and stance thresholds are calibrated"
    ))
}

/// A one-line summary of a change, used in the codebook comment and on stderr.
pub fn describe(c: &Change, obj: &Objective) -> String {
    let mut s = format!(
        "{}: threshold {} -> {}; {} on {} gold items ({} articles): {:.3} before, {:.3} after in-sample",
        c.task,
        c.threshold_before,
        c.threshold_after,
        obj.name(),
        c.n,
        c.articles,
        c.before,
        c.after_in_sample
    );
    if let Some(cv) = c.after_cv {
        s += &format!(", {cv:.3} after by {}-fold CV over articles", c.folds);
    }
    if let Some((n, b, a)) = c.held_out {
        s += &format!("; held out ({n} items): {b:.3} -> {a:.3}");
    }
    if let Some((lo, hi)) = c.effect_ci {
        s += &format!(
            "; effect {:+.3} (95 % CI {lo:+.3} to {hi:+.3}, bootstrap over articles)",
            c.effect
        );
    }
    s
}

/// The codebook text with the new thresholds and a comment on each.
pub fn rewrite(
    codebook: &Codebook,
    changes: &[Change],
    obj: &Objective,
    stamp: &str,
) -> Result<String> {
    let mut doc: toml_edit::DocumentMut =
        codebook.text.parse().map_err(|e: toml_edit::TomlError| {
            Error::Config(format!("{}: {e}", codebook.path.display()))
        })?;
    let note = |c: &Change| format!("# {stamp}: {}\n", describe(c, obj));
    for c in changes {
        let table: &mut toml_edit::Table = match c.task.target() {
            None => {
                if !doc.contains_key("topics") {
                    doc["topics"] = toml_edit::table();
                }
                doc["topics"].as_table_mut().ok_or_else(|| {
                    Error::Config(format!(
                        "{}: [topics] is not a table",
                        codebook.path.display()
                    ))
                })?
            }
            Some(t) => doc["stance"]
                .as_array_of_tables_mut()
                .and_then(|a| {
                    a.iter_mut()
                        .find(|s| s.get("id").and_then(|v| v.as_str()) == Some(t))
                })
                .ok_or_else(|| {
                    Error::Config(format!(
                        "{}: no [[stance]] with id {t:?}",
                        codebook.path.display()
                    ))
                })?,
        };
        // Keep the old value's inline comment and spacing.
        let decor = table
            .get("threshold")
            .and_then(|i| i.as_value())
            .map(|v| v.decor().clone());
        table["threshold"] = toml_edit::value((c.threshold_after as f64 * 1e4).round() / 1e4);
        if let (Some(d), Some(v)) = (decor, table["threshold"].as_value_mut()) {
            *v.decor_mut() = d;
        }
        let decor = table.decor_mut();
        let prefix = decor
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or("")
            .to_string();
        decor.set_prefix(format!("{prefix}{}", note(c)));
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn classes_under_thirty_gold_items_are_thin() {
        let c = super::Change {
            task: crate::task::Task::Topic,
            n: 59,
            articles: 10,
            threshold_before: 0.5,
            threshold_after: 0.4,
            before: 0.5,
            after_in_sample: 0.6,
            after_cv: None,
            folds: 0,
            held_out: None,
            classes: [
                ("a".to_string(), 29),
                ("b".to_string(), 30),
                ("none".to_string(), 0),
            ]
            .into_iter()
            .collect(),
            effect: 0.1,
            effect_ci: None,
        };
        assert_eq!(c.thin_classes(), vec![("a", 29), ("none", 0)]);
    }
}
