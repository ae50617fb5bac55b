//! `paratag sample`: a sample of tagged paragraphs for hand-labeling:
//! random, stratified, or active ([`active`]: by the model's uncertainty or
//! by disagreement), always with each row's inclusion weight, so that
//! `estimate` can weight the labels back to the corpus.
//!
//! Rows are put in `(article_id, paragraph)` order before drawing, so the
//! sample depends only on the table's content, `--seed` and the options, not
//! on row order. Each stratum is shuffled with its own stream of one seeded
//! ChaCha8 generator; allocation is proportional (largest remainder) or
//! equal (strata smaller than their share give the rest to the others). The
//! drawn rows are shuffled once more so coders do not see them grouped by
//! stratum.

use crate::error::{Error, Result};
use crate::formats::{GoldItem, NONE};
use crate::record::{Pred, Predictions};
use crate::task::Task;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::{BTreeMap, HashSet};

pub mod active;
pub mod neardup;

pub use active::Strategy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Each stratum in proportion to its size.
    Proportional,
    /// The same number from each stratum (as far as each has rows).
    Equal,
}

impl crate::choice::Choice for Allocation {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (
            Allocation::Proportional,
            "proportional",
            "Each stratum in proportion to its size",
        ),
        (
            Allocation::Equal,
            "equal",
            "The same number from each stratum (as far as each has rows)",
        ),
    ];
}

#[derive(Debug, Clone)]
pub struct Options {
    pub n: usize,
    pub stratify: Vec<String>,
    pub allocation: Allocation,
    pub seed: u64,
    /// Per-row scores for an active strategy (`None`: equal chances).
    pub scores: Option<Vec<f64>>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Stratum {
    pub key: Vec<String>,
    pub population: usize,
    pub drawn: usize,
}

#[derive(Debug, Clone)]
pub struct Drawn {
    /// Indices into `Predictions::rows`, in the order to present them.
    pub rows: Vec<usize>,
    /// Each drawn row's weight: 1 / its inclusion probability (how many
    /// eligible paragraphs it stands for).
    pub weights: Vec<f64>,
    pub strata: Vec<Stratum>,
    pub excluded: usize,
}

/// A row's value for a stratification column.
fn value(p: &Pred, col: &str) -> Option<String> {
    let or_none = |l: &Option<String>| Some(l.clone().unwrap_or_else(|| NONE.into()));
    match Task::parse(col) {
        Some(Task::Topic) => or_none(&p.topic),
        Some(Task::Stance(t)) if p.stances.contains_key(&t) => or_none(&p.stances[&t].label),
        Some(Task::Holder(t)) if p.stances.contains_key(&t) => or_none(&p.stances[&t].holder),
        _ => p.fields.get(col).cloned(),
    }
}

pub fn draw(preds: &Predictions, opts: &Options, exclude: &[GoldItem]) -> Result<Drawn> {
    for c in &opts.stratify {
        let known = match Task::parse(c) {
            Some(Task::Topic) => true,
            Some(Task::Stance(t) | Task::Holder(t)) => preds.targets.contains(&t),
            Some(Task::Entities) | None => false,
        } || preds.field_names.iter().any(|f| f == c);
        if !known {
            let mut cols = vec![Task::Topic.name()];
            cols.extend(preds.targets.iter().map(|t| Task::Stance(t.clone()).name()));
            cols.extend(preds.field_names.iter().cloned());
            return Err(Error::Config(format!(
                "--stratify {c}: no such column; choose from {}",
                cols.join(", ")
            )));
        }
    }
    let keys: HashSet<(&str, u32)> = exclude
        .iter()
        .filter_map(|g| Some((g.article_id.as_deref()?, g.paragraph?)))
        .collect();
    let texts: HashSet<&str> = exclude.iter().map(|g| g.text.as_str()).collect();
    let mut order: Vec<usize> = (0..preds.rows.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&preds.rows[a], &preds.rows[b]);
        (&x.article_id, x.paragraph).cmp(&(&y.article_id, y.paragraph))
    });
    let mut excluded = 0;
    let mut strata: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    for i in order {
        let p = &preds.rows[i];
        if keys.contains(&(p.article_id.as_str(), p.paragraph)) || texts.contains(p.text.as_str()) {
            excluded += 1;
            continue;
        }
        let key = opts
            .stratify
            .iter()
            .map(|c| value(p, c).unwrap_or_else(|| "(null)".into()))
            .collect();
        strata.entry(key).or_default().push(i);
    }
    let sizes: Vec<usize> = strata.values().map(Vec::len).collect();
    let quota = allocate(&sizes, opts.n, opts.allocation);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let mut picks = Vec::new();
    let mut info = Vec::new();
    for ((key, mut members), q) in strata.into_iter().zip(quota) {
        let drawn = match &opts.scores {
            Some(s) => active::draw_pps(&members, &preds.rows, s, q, &mut rng),
            None => {
                members.shuffle(&mut rng);
                let w = members.len() as f64 / q.max(1) as f64;
                members[..q]
                    .iter()
                    .map(|&row| active::Pick { row, weight: w })
                    .collect()
            }
        };
        info.push(Stratum {
            key,
            population: members.len(),
            drawn: drawn.len(),
        });
        picks.extend(drawn);
    }
    picks.shuffle(&mut rng);
    Ok(Drawn {
        rows: picks.iter().map(|p| p.row).collect(),
        weights: picks.iter().map(|p| p.weight).collect(),
        strata: info,
        excluded,
    })
}

/// How many to draw from each stratum (never more than it has).
pub fn allocate(sizes: &[usize], n: usize, how: Allocation) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    let n = n.min(total);
    match how {
        Allocation::Proportional => {
            // Largest remainder; ties go to the earlier stratum.
            let exact: Vec<f64> = sizes
                .iter()
                .map(|&s| n as f64 * s as f64 / total.max(1) as f64)
                .collect();
            let mut q: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
            let mut rest: Vec<usize> = (0..sizes.len()).collect();
            rest.sort_by(|&a, &b| {
                let (ra, rb) = (exact[a] - q[a] as f64, exact[b] - q[b] as f64);
                rb.partial_cmp(&ra).expect("finite").then(a.cmp(&b))
            });
            let mut left = n - q.iter().sum::<usize>();
            for i in rest {
                if left == 0 {
                    break;
                }
                if q[i] < sizes[i] {
                    q[i] += 1;
                    left -= 1;
                }
            }
            q
        }
        Allocation::Equal => {
            let mut q = vec![0; sizes.len()];
            let mut left = n;
            // Fill the smallest strata first, spreading what they cannot take.
            let mut idx: Vec<usize> = (0..sizes.len()).collect();
            idx.sort_by_key(|&i| (sizes[i], i));
            for (k, &i) in idx.iter().enumerate() {
                let share = left / (idx.len() - k);
                q[i] = share.min(sizes[i]);
                left -= q[i];
            }
            // Remainders from integer division, one each, in stratum order.
            for i in 0..sizes.len() {
                if left == 0 {
                    break;
                }
                if q[i] < sizes[i] {
                    q[i] += 1;
                    left -= 1;
                }
            }
            q
        }
    }
}

/// How a gold sheet was drawn, as its `sample_weight` and
/// `sample_strategy` columns say.
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    /// The strategies named, sorted (empty: the sheet does not say).
    pub strategies: Vec<String>,
    /// Each item's weight, in order; `None` when the sheet has none (every
    /// row then counts the same).
    pub weights: Option<Vec<f64>>,
}

impl Design {
    /// Whether an active strategy drew some rows: a sample that
    /// over-represents the model's hard cases.
    pub fn is_active(&self) -> bool {
        self.strategies.iter().any(|s| Strategy::name_is_active(s))
    }

    /// Whether the weights differ between rows (beyond rounding).
    pub fn is_weighted(&self) -> bool {
        self.weights.as_ref().is_some_and(|w| {
            let (lo, hi) = w
                .iter()
                .fold((f64::INFINITY, 0.0_f64), |(l, h), x| (l.min(*x), h.max(*x)));
            hi > lo * (1.0 + 1e-4)
        })
    }
}

/// Reads the design of `items`: every row has a weight or none has, and an
/// active strategy without weights cannot be corrected, so it is an error.
pub fn design(items: &[GoldItem]) -> Result<Design> {
    let weights: Vec<Option<f64>> = items
        .iter()
        .map(GoldItem::sample_weight)
        .collect::<Result<_>>()?;
    let mut strategies: Vec<String> = items
        .iter()
        .filter_map(|g| g.fields.get(crate::formats::SAMPLE_STRATEGY))
        .filter(|s| !s.is_empty())
        .cloned()
        .collect();
    strategies.sort();
    strategies.dedup();
    let with = weights.iter().filter(|w| w.is_some()).count();
    if with > 0 && with < items.len() {
        let g = &items[weights.iter().position(Option::is_none).expect("one lacks")];
        return Err(Error::input(
            g.location.clone(),
            format!(
                "no {} here, but {with} other rows have one: merge sheets from one draw, or drop the column from all",
                crate::formats::SAMPLE_WEIGHT
            ),
        ));
    }
    let d = Design {
        strategies,
        weights: (with > 0).then(|| weights.into_iter().flatten().collect()),
    };
    if d.is_active() && d.weights.is_none() {
        return Err(Error::Config(format!(
            "the gold sheet was drawn by {} sampling but has no {} column, so it cannot be weighted back to the corpus",
            d.strategies.join("/"),
            crate::formats::SAMPLE_WEIGHT
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation() {
        assert_eq!(
            allocate(&[50, 30, 20], 10, Allocation::Proportional),
            vec![5, 3, 2]
        );
        assert_eq!(
            allocate(&[5, 3, 2], 4, Allocation::Proportional),
            vec![2, 1, 1]
        );
        assert_eq!(
            allocate(&[100, 100, 2], 12, Allocation::Equal),
            vec![5, 5, 2]
        );
        assert_eq!(
            allocate(&[100, 100, 100], 10, Allocation::Equal),
            vec![3, 3, 4]
        );
        assert_eq!(allocate(&[3, 1], 10, Allocation::Equal), vec![3, 1]);
        assert_eq!(allocate(&[3, 1], 10, Allocation::Proportional), vec![3, 1]);
    }
}
