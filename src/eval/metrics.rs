//! Agreement and accuracy statistics, written from their definitions and
//! checked against published worked examples in the tests below.

use serde::Serialize;
use std::collections::BTreeMap;

/// A confusion matrix: rows are gold labels, columns predicted labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confusion {
    pub labels: Vec<String>,
    pub matrix: Vec<Vec<u64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassStats {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Gold items of this class.
    pub support: u64,
    /// Items predicted as this class.
    pub predicted: u64,
}

impl Confusion {
    /// From `(gold, predicted)` pairs; `labels` fixes the order (others are
    /// appended sorted).
    pub fn new(pairs: &[(&str, &str)], labels: &[String]) -> Confusion {
        let mut labels: Vec<String> = labels.to_vec();
        let mut extra: Vec<String> = pairs
            .iter()
            .flat_map(|(g, p)| [*g, *p])
            .filter(|l| !labels.iter().any(|x| x == l))
            .map(str::to_string)
            .collect();
        extra.sort();
        extra.dedup();
        labels.extend(extra);
        let idx: BTreeMap<&str, usize> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i))
            .collect();
        let mut matrix = vec![vec![0u64; labels.len()]; labels.len()];
        for (g, p) in pairs {
            matrix[idx[g]][idx[p]] += 1;
        }
        Confusion { labels, matrix }
    }

    pub fn total(&self) -> u64 {
        self.matrix.iter().flatten().sum()
    }

    pub fn accuracy(&self) -> f64 {
        let n = self.total();
        if n == 0 {
            return 0.0;
        }
        (0..self.labels.len())
            .map(|i| self.matrix[i][i])
            .sum::<u64>() as f64
            / n as f64
    }

    pub fn per_class(&self) -> Vec<ClassStats> {
        let k = self.labels.len();
        (0..k)
            .map(|i| {
                let tp = self.matrix[i][i];
                let support: u64 = self.matrix[i].iter().sum();
                let predicted: u64 = (0..k).map(|r| self.matrix[r][i]).sum();
                let (p, r) = (ratio(tp, predicted), ratio(tp, support));
                ClassStats {
                    label: self.labels[i].clone(),
                    precision: p,
                    recall: r,
                    f1: f1(p, r),
                    support,
                    predicted,
                }
            })
            .collect()
    }

    /// Mean F1 over the classes that occur in gold or predictions (as
    /// scikit-learn's `f1_score(average="macro")`).
    pub fn macro_f1(&self) -> f64 {
        mean(
            self.per_class()
                .iter()
                .filter(|c| c.support + c.predicted > 0)
                .map(|c| c.f1),
        )
    }

    /// Mean F1 over the named classes only (e.g. favor and against, the
    /// usual stance score F_avg).
    pub fn mean_f1_of(&self, classes: &[&str]) -> f64 {
        let pc = self.per_class();
        mean(
            classes
                .iter()
                .map(|c| pc.iter().find(|s| s.label == *c).map_or(0.0, |s| s.f1)),
        )
    }

    /// Cohen's kappa between the gold rows and the predicted columns; `None`
    /// when chance agreement is 1 (a single label everywhere).
    pub fn kappa(&self) -> Option<f64> {
        let n = self.total() as f64;
        if n == 0.0 {
            return None;
        }
        let k = self.labels.len();
        let po = (0..k).map(|i| self.matrix[i][i]).sum::<u64>() as f64 / n;
        let pe: f64 = (0..k)
            .map(|i| {
                let row: u64 = self.matrix[i].iter().sum();
                let col: u64 = (0..k).map(|r| self.matrix[r][i]).sum();
                row as f64 * col as f64 / (n * n)
            })
            .sum();
        (pe < 1.0).then(|| (po - pe) / (1.0 - pe))
    }
}

pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

pub fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

/// Krippendorff's alpha for nominal data. `units[u][c]` is coder `c`'s value
/// for unit `u`, `None` where missing. Units with fewer than two values are
/// not pairable and drop out. `None` when there is no pairable unit or no
/// variation at all (expected disagreement 0).
pub fn krippendorff_alpha_nominal(units: &[Vec<Option<&str>>]) -> Option<f64> {
    // Coincidence counts o[c][k], via value indices.
    let mut values: Vec<&str> = units.iter().flatten().flatten().copied().collect();
    values.sort();
    values.dedup();
    let v = values.len();
    let pos = |x: &str| values.binary_search(&x).expect("value present");
    let mut o = vec![vec![0f64; v]; v];
    for u in units {
        let vals: Vec<usize> = u.iter().flatten().map(|x| pos(x)).collect();
        let m = vals.len();
        if m < 2 {
            continue;
        }
        for (i, &a) in vals.iter().enumerate() {
            for (j, &b) in vals.iter().enumerate() {
                if i != j {
                    o[a][b] += 1.0 / (m as f64 - 1.0);
                }
            }
        }
    }
    let nc: Vec<f64> = o.iter().map(|r| r.iter().sum()).collect();
    let n: f64 = nc.iter().sum();
    if n <= 1.0 {
        return None;
    }
    let mut d_o = 0.0;
    let mut d_e = 0.0;
    for c in 0..v {
        for k in 0..v {
            if c != k {
                d_o += o[c][k];
                d_e += nc[c] * nc[k];
            }
        }
    }
    if d_e == 0.0 {
        return None;
    }
    Some(1.0 - (n - 1.0) * d_o / d_e)
}

/// Entity-level precision, recall and F1.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl Prf {
    pub fn from_counts(tp: u64, fp: u64, fn_: u64) -> Prf {
        let (p, r) = (ratio(tp, tp + fp), ratio(tp, tp + fn_));
        Prf {
            precision: p,
            recall: r,
            f1: f1(p, r),
            tp,
            fp,
            fn_,
        }
    }
}

/// A span `(start, end, type)`, end exclusive.
pub type TypedSpan<'a> = (u32, u32, &'a str);

/// Per-type `(tp, fp, fn)` over paragraphs. `exact`: same start, end and type
/// (conlleval/seqeval). Otherwise a predicted span matches a gold span of the
/// same type that it overlaps, each gold span at most once.
pub fn span_counts<'a>(
    items: &[(Vec<TypedSpan<'a>>, Vec<TypedSpan<'a>>)],
    exact: bool,
) -> BTreeMap<&'a str, (u64, u64, u64)> {
    let mut out: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    for (gold, pred) in items {
        let mut used = vec![false; gold.len()];
        for p in pred {
            let hit = gold.iter().enumerate().position(|(i, g)| {
                !used[i]
                    && g.2 == p.2
                    && if exact {
                        g.0 == p.0 && g.1 == p.1
                    } else {
                        g.0 < p.1 && p.0 < g.1
                    }
            });
            let e = out.entry(p.2).or_default();
            match hit {
                Some(i) => {
                    used[i] = true;
                    e.0 += 1;
                }
                None => e.1 += 1,
            }
        }
        for (i, g) in gold.iter().enumerate() {
            if !used[i] {
                out.entry(g.2).or_default().2 += 1;
            }
        }
    }
    out
}

/// The cluster bootstrap paratag's intervals use: `replicates` times, draw
/// as many articles as there are, with replacement (each article's items
/// come along together, since paragraphs of one article are not
/// independent), and hand `f` the items drawn. Seeded, so the same input
/// gives the same intervals.
pub fn for_each_resample<'a, T>(
    articles: &[Vec<&'a T>],
    replicates: usize,
    seed: u64,
    mut f: impl FnMut(&[&'a T]),
) {
    use rand::{Rng, SeedableRng};
    if articles.is_empty() {
        return;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..replicates {
        let sample: Vec<&T> = (0..articles.len())
            .flat_map(|_| articles[rng.gen_range(0..articles.len())].iter().copied())
            .collect();
        f(&sample);
    }
}

/// Percentile interval of bootstrap replicates (linear interpolation).
pub fn percentile_ci(mut reps: Vec<f64>, level: f64) -> Option<(f64, f64)> {
    reps.retain(|x| x.is_finite());
    if reps.is_empty() {
        return None;
    }
    reps.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let q = |p: f64| {
        let x = p * (reps.len() - 1) as f64;
        let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
        reps[lo] + (reps[hi] - reps[lo]) * (x - lo as f64)
    };
    let a = (1.0 - level) / 2.0;
    Some((q(a), q(1.0 - a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() < tol, "{a} vs {b}");
    }

    #[test]
    fn hand_computed_confusion_matrix() {
        // gold a a a b b c ; pred a a b b c c
        let pairs = [
            ("a", "a"),
            ("a", "a"),
            ("a", "b"),
            ("b", "b"),
            ("b", "c"),
            ("c", "c"),
        ];
        let c = Confusion::new(&pairs, &[]);
        assert_eq!(c.labels, ["a", "b", "c"]);
        assert_eq!(c.matrix, vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]);
        close(c.accuracy(), 4.0 / 6.0, 1e-12);
        let pc = c.per_class();
        // a: P 2/2, R 2/3; b: P 1/2, R 1/2; c: P 1/2, R 1/1.
        close(pc[0].precision, 1.0, 1e-12);
        close(pc[0].recall, 2.0 / 3.0, 1e-12);
        close(pc[0].f1, 0.8, 1e-12);
        close(pc[1].f1, 0.5, 1e-12);
        close(pc[2].f1, 2.0 / 3.0, 1e-12);
        close(c.macro_f1(), (0.8 + 0.5 + 2.0 / 3.0) / 3.0, 1e-12);
        assert_eq!((pc[2].support, pc[2].predicted), (1, 2));
        close(c.mean_f1_of(&["a", "c"]), (0.8 + 2.0 / 3.0) / 2.0, 1e-12);
        // A label that occurs nowhere is left out of macro-F1.
        let c2 = Confusion::new(&pairs, &["z".into()]);
        close(c2.macro_f1(), c.macro_f1(), 1e-12);
    }

    #[test]
    fn cohen_kappa_textbook_example() {
        // Two raters, 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15:
        // p_o = 0.7, p_e = 0.5·0.6 + 0.5·0.4 = 0.5, kappa = 0.4.
        let mut pairs = Vec::new();
        pairs.extend(std::iter::repeat_n(("yes", "yes"), 20));
        pairs.extend(std::iter::repeat_n(("yes", "no"), 5));
        pairs.extend(std::iter::repeat_n(("no", "yes"), 10));
        pairs.extend(std::iter::repeat_n(("no", "no"), 15));
        close(Confusion::new(&pairs, &[]).kappa().unwrap(), 0.4, 1e-12);
        assert_eq!(Confusion::new(&[("a", "a")], &[]).kappa(), None);
    }

    fn units<'a>(rows: &[&[Option<&'a str>]]) -> Vec<Vec<Option<&'a str>>> {
        // rows are coders; transpose to units.
        (0..rows[0].len())
            .map(|u| rows.iter().map(|r| r[u]).collect())
            .collect()
    }

    #[test]
    fn krippendorff_binary_two_coders() {
        // Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability",
        // example A: two observers, ten units, binary data: alpha = 0.095.
        let a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0];
        let b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0];
        let s = |v: i32| Some(if v == 1 { "1" } else { "0" });
        let ra: Vec<_> = a.iter().map(|&v| s(v)).collect();
        let rb: Vec<_> = b.iter().map(|&v| s(v)).collect();
        close(
            krippendorff_alpha_nominal(&units(&[&ra, &rb])).unwrap(),
            0.095,
            5e-4,
        );
    }

    #[test]
    fn krippendorff_nominal_with_missing_data() {
        // Krippendorff (2011), example C: four observers, twelve units, values
        // 1-5 with missing data: nominal alpha = 0.743.
        let n = None;
        let v = |x: &'static str| Some(x);
        let a = [
            v("1"),
            v("2"),
            v("3"),
            v("3"),
            v("2"),
            v("1"),
            v("4"),
            v("1"),
            v("2"),
            n,
            n,
            n,
        ];
        let b = [
            v("1"),
            v("2"),
            v("3"),
            v("3"),
            v("2"),
            v("2"),
            v("4"),
            v("1"),
            v("2"),
            v("5"),
            n,
            v("3"),
        ];
        let c = [
            n,
            v("3"),
            v("3"),
            v("3"),
            v("2"),
            v("3"),
            v("4"),
            v("2"),
            v("2"),
            v("5"),
            v("1"),
            n,
        ];
        let d = [
            v("1"),
            v("2"),
            v("3"),
            v("3"),
            v("2"),
            v("4"),
            v("4"),
            v("1"),
            v("2"),
            v("5"),
            v("1"),
            n,
        ];
        close(
            krippendorff_alpha_nominal(&units(&[&a, &b, &c, &d])).unwrap(),
            0.743,
            5e-4,
        );
        // Perfect agreement is 1; no pairable unit is undefined.
        assert_eq!(
            krippendorff_alpha_nominal(&units(&[&[v("x"), v("y")], &[v("x"), v("y")]])),
            Some(1.0)
        );
        assert_eq!(krippendorff_alpha_nominal(&units(&[&[v("x")], &[n]])), None);
    }

    #[test]
    fn seqeval_style_span_cases() {
        // Gold: PER [0,2), LOC [5,7). Predictions: PER split in two ([0,1) and
        // [1,2)), LOC predicted as ORG (wrong type).
        let gold = vec![(0, 2, "PER"), (5, 7, "LOC")];
        let pred = vec![(0, 1, "PER"), (1, 2, "PER"), (5, 7, "ORG")];
        let items = vec![(gold, pred)];
        let exact = span_counts(&items, true);
        assert_eq!(exact["PER"], (0, 2, 1));
        assert_eq!(exact["LOC"], (0, 0, 1));
        assert_eq!(exact["ORG"], (0, 1, 0));
        // Partial overlap: one PER piece matches the gold PER once; the other
        // is a false positive; the type error still counts against both.
        let partial = span_counts(&items, false);
        assert_eq!(partial["PER"], (1, 1, 0));
        assert_eq!(partial["LOC"], (0, 0, 1));
        let p = Prf::from_counts(2, 1, 1);
        close(p.precision, 2.0 / 3.0, 1e-12);
        close(p.f1, 2.0 / 3.0, 1e-12);
    }

    #[test]
    fn percentile_interval() {
        let reps: Vec<f64> = (0..=100).map(|i| i as f64).collect();
        let (lo, hi) = percentile_ci(reps, 0.95).unwrap();
        close(lo, 2.5, 1e-9);
        close(hi, 97.5, 1e-9);
    }
}
