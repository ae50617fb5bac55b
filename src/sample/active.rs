//! Active sampling: draw the paragraphs the model is least sure of, or on
//! which two runs disagree, and still know each one's inclusion probability,
//! so `estimate` can weight the labels back to the corpus.
//!
//! Each row gets a usefulness score in [0, 1] (mean over the chosen tasks):
//! - `uncertainty`: 1 - the top probability, scaled so a uniform guess is 1;
//! - `margin`: 1 - (top - second probability);
//! - `disagreement`: the share of tasks on which a second table (another
//!   head, window or threshold) gives another label.
//!
//! Rows are drawn with probability proportional to [`FLOOR`] + score
//! (systematic PPS over a seeded random order, which gives every row its
//! inclusion probability exactly), so confident rows are rarer but never
//! impossible: a sample that left them out could not be weighted back.
//! Diversity: near-duplicates ([`super::neardup`]) form one unit, drawn at
//! most once, with its measure the highest member score; a drawn unit gives
//! one member at random. A row's weight is 1 / its inclusion probability.

use super::neardup;
use crate::error::{Error, Result};
use crate::eval::pred_label;
use crate::record::{Pred, Predictions};
use crate::task::Task;
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::HashMap;

/// How rows are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Random,
    Stratified,
    Uncertainty,
    Margin,
    Disagreement,
}

impl crate::choice::Choice for Strategy {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (Strategy::Random, "random", "simple random sample"),
        (
            Strategy::Stratified,
            "stratified",
            "random within the --stratify strata",
        ),
        (
            Strategy::Uncertainty,
            "uncertainty",
            "favor rows whose top probability is low",
        ),
        (
            Strategy::Margin,
            "margin",
            "favor rows whose top two labels are close",
        ),
        (
            Strategy::Disagreement,
            "disagreement",
            "favor rows labeled otherwise in --compare",
        ),
    ];
}

impl Strategy {
    pub fn name(self) -> &'static str {
        <Self as crate::choice::Choice>::name(self)
    }

    /// Whether rows are drawn by score (not with equal chances).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Strategy::Uncertainty | Strategy::Margin | Strategy::Disagreement
        )
    }

    /// Whether `name` (a sheet's `sample_strategy`) is an active strategy.
    pub fn name_is_active(name: &str) -> bool {
        <Self as crate::choice::Choice>::from_name(name).is_some_and(Strategy::is_active)
    }
}

/// The exploration floor added to every score before drawing: a row with
/// score 1 is at most 11 times as likely to be drawn as one with score 0.
pub const FLOOR: f64 = 0.1;

/// The default tasks to score: topic (when tagged) and every stance target.
pub fn default_tasks(preds: &Predictions) -> Vec<Task> {
    let topic = preds.has_topic().then_some(Task::Topic);
    topic
        .into_iter()
        .chain(preds.targets.iter().map(|t| Task::Stance(t.clone())))
        .collect()
}

/// Each row's score for `strategy` (an active one) over `tasks`.
pub fn scores(
    preds: &Predictions,
    strategy: Strategy,
    tasks: &[Task],
    other: Option<&Predictions>,
) -> Result<Vec<f64>> {
    if tasks.is_empty() {
        return Err(Error::Config(
            "active sampling: the predictions have no topic or stance to score".into(),
        ));
    }
    let index: HashMap<(&str, u32), &Pred> = other
        .map(|o| {
            o.rows
                .iter()
                .map(|p| ((p.article_id.as_str(), p.paragraph), p))
                .collect()
        })
        .unwrap_or_default();
    preds
        .rows
        .iter()
        .map(|p| {
            let per_task = tasks.iter().map(|t| match strategy {
                Strategy::Disagreement => {
                    let q = index
                        .get(&(p.article_id.as_str(), p.paragraph))
                        .ok_or_else(|| {
                            Error::Config(format!(
                                "--compare: article {:?} paragraph {} is not in the second table",
                                p.article_id, p.paragraph
                            ))
                        })?;
                    Ok(f64::from(u8::from(
                        pred_label(p, t).0 != pred_label(q, t).0,
                    )))
                }
                Strategy::Margin => Ok(margin(&dist(p, t))),
                _ => Ok(uncertainty(&dist(p, t))),
            });
            let s = per_task.collect::<Result<Vec<f64>>>()?;
            Ok(s.iter().sum::<f64>() / s.len() as f64)
        })
        .collect()
}

/// The row's probability over `task`'s labels (stance: favor, against,
/// none; topic: each topic and none = 1 - the top score, normalised;
/// holder: reported, author). A label with no probability is certain.
fn dist(p: &Pred, task: &Task) -> Vec<f64> {
    let certain = vec![1.0];
    match task {
        Task::Stance(t) => p
            .stances
            .get(t)
            .and_then(|s| s.posterior())
            .map_or(certain, Vec::from),
        Task::Holder(t) => match p.stances.get(t).and_then(|s| s.reported) {
            Some(r) => vec![f64::from(r), 1.0 - f64::from(r)],
            None => certain,
        },
        Task::Topic => {
            let mut v: Vec<f64> = p
                .topic_scores
                .iter()
                .flatten()
                .map(|s| f64::from(s.1).max(0.0))
                .collect();
            if v.is_empty() {
                return certain;
            }
            v.push(1.0 - v.iter().cloned().fold(0.0, f64::max));
            let z = v.iter().sum::<f64>().max(1e-12);
            v.iter().map(|x| x / z).collect()
        }
        Task::Entities => certain,
    }
}

/// 1 - the top probability, scaled to [0, 1] (1: a uniform guess).
fn uncertainty(d: &[f64]) -> f64 {
    if d.len() < 2 {
        return 0.0;
    }
    let top = d.iter().cloned().fold(0.0, f64::max);
    let k = d.len() as f64;
    ((1.0 - top) / (1.0 - 1.0 / k)).clamp(0.0, 1.0)
}

/// 1 - (top - second probability).
fn margin(d: &[f64]) -> f64 {
    let mut v = d.to_vec();
    v.sort_by(|a, b| b.total_cmp(a));
    match v.as_slice() {
        [a, b, ..] => (1.0 - (a - b)).clamp(0.0, 1.0),
        _ => 0.0,
    }
}

/// A drawn row and its weight (1 / inclusion probability).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    pub row: usize,
    pub weight: f64,
}

/// Draws `n` of `members` (row indices) with probability proportional to
/// FLOOR + score, at most one per near-duplicate cluster.
pub fn draw_pps(
    members: &[usize],
    rows: &[Pred],
    scores: &[f64],
    n: usize,
    rng: &mut impl Rng,
) -> Vec<Pick> {
    let texts: Vec<&str> = members.iter().map(|&i| rows[i].text.as_str()).collect();
    let mut units: Vec<Vec<usize>> = Vec::new();
    for (k, c) in neardup::clusters(&texts).into_iter().enumerate() {
        if c == units.len() {
            units.push(Vec::new());
        }
        units[c].push(members[k]);
    }
    let measure: Vec<f64> = units
        .iter()
        .map(|u| FLOOR + u.iter().map(|&i| scores[i]).fold(0.0, f64::max))
        .collect();
    let pi = inclusion(&measure, n.min(units.len()));
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.shuffle(rng);
    let start: f64 = rng.gen();
    let (mut cum, mut next, mut out) = (0.0, start, Vec::new());
    for c in order {
        cum += pi[c];
        // Systematic: the unit is drawn when a point start + k falls in it.
        if next < cum {
            next += 1.0;
            let u = &units[c];
            out.push(Pick {
                row: u[rng.gen_range(0..u.len())],
                weight: u.len() as f64 / pi[c],
            });
        }
    }
    out
}

/// Inclusion probabilities proportional to `measure`, summing to `n`, none
/// above 1 (units that would exceed it are taken for certain and the rest
/// rescaled).
pub fn inclusion(measure: &[f64], n: usize) -> Vec<f64> {
    let mut pi = vec![0.0; measure.len()];
    let mut certain = vec![false; measure.len()];
    loop {
        let left = n as f64 - certain.iter().filter(|&&c| c).count() as f64;
        let total: f64 = (0..measure.len())
            .filter(|&i| !certain[i])
            .map(|i| measure[i])
            .sum();
        let mut capped = false;
        for i in 0..measure.len() {
            pi[i] = match certain[i] {
                true => 1.0,
                false if total > 0.0 => left * measure[i] / total,
                false => 0.0,
            };
            if pi[i] > 1.0 {
                certain[i] = true;
                capped = true;
            }
        }
        if !capped {
            return pi;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn inclusion_probabilities_sum_to_n_and_cap_at_one() {
        let pi = inclusion(&[1.0, 1.0, 1.0, 10.0], 2);
        assert!((pi.iter().sum::<f64>() - 2.0).abs() < 1e-12, "{pi:?}");
        assert_eq!(pi[3], 1.0);
        for p in &pi[..3] {
            assert!((p - 1.0 / 3.0).abs() < 1e-12, "{pi:?}");
        }
    }

    #[test]
    fn scores_follow_the_definitions() {
        assert!((uncertainty(&[1.0 / 3.0; 3]) - 1.0).abs() < 1e-12);
        assert_eq!(uncertainty(&[1.0, 0.0, 0.0]), 0.0);
        // Top 0.6 of three: (1 - 0.6) / (2/3) = 0.6.
        assert!((uncertainty(&[0.6, 0.3, 0.1]) - 0.6).abs() < 1e-12);
        assert!((margin(&[0.6, 0.3, 0.1]) - 0.7).abs() < 1e-12);
        assert_eq!(margin(&[1.0]), 0.0);
    }

    #[test]
    fn pps_draws_match_their_inclusion_probabilities() {
        // 30 distinct rows, scores 0..1; over many seeded draws each row's
        // drawn frequency approaches n (FLOOR + s) / sum, so the weights
        // (1 / that) make the weighted count of drawn rows unbiased for 30.
        let rows: Vec<Pred> = (0..30)
            .map(|i| Pred {
                text: format!("paragraph number {i} talks about topic {} at length", i * 7),
                ..Default::default()
            })
            .collect();
        let scores: Vec<f64> = (0..30).map(|i| i as f64 / 29.0).collect();
        let members: Vec<usize> = (0..30).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (reps, n) = (4000, 6);
        let mut hits = vec![0.0; 30];
        let mut total = 0.0;
        for _ in 0..reps {
            let picks = draw_pps(&members, &rows, &scores, n, &mut rng);
            assert_eq!(picks.len(), n);
            for p in &picks {
                hits[p.row] += 1.0;
                total += p.weight;
            }
        }
        let expect = inclusion(&scores.iter().map(|s| FLOOR + s).collect::<Vec<_>>(), n);
        for i in 0..30 {
            let f = hits[i] / reps as f64;
            assert!(
                (f - expect[i]).abs() < 0.035,
                "row {i}: {f} vs {}",
                expect[i]
            );
        }
        let mean_total = total / reps as f64;
        assert!((mean_total - 30.0).abs() < 0.6, "{mean_total}");
    }

    #[test]
    fn near_duplicates_are_drawn_once_and_stand_for_the_cluster() {
        let line =
            "The Kremlin did not immediately respond to a request for comment on the report.";
        let mut rows: Vec<Pred> = (0..10)
            .map(|_| Pred {
                text: line.into(),
                ..Default::default()
            })
            .collect();
        rows.push(Pred {
            text: "Another paragraph entirely, about grain exports through the Black Sea.".into(),
            ..Default::default()
        });
        let scores = vec![1.0; 11];
        let members: Vec<usize> = (0..11).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let picks = draw_pps(&members, &rows, &scores, 5, &mut rng);
        // Two units only: both drawn for certain; the stock line's copy
        // stands for its ten rows.
        assert_eq!(picks.len(), 2);
        let w: f64 = picks.iter().map(|p| p.weight).sum();
        assert!((w - 11.0).abs() < 1e-9, "{picks:?}");
    }
}
