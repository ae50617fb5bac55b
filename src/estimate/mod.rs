//! Corrected label shares (quantification): how common each label is in a
//! group of paragraphs, corrected for the classifier's errors as measured
//! on a hand-labeled sample, with percentile-bootstrap intervals.
//!
//! - `cc`: classify and count, the raw share of predicted labels.
//! - `acc`: adjusted classify and count. The gold sample estimates
//!   `M[i][j] = P(predicted i | true j)`; the group's predicted shares `q`
//!   satisfy `q = M p` for its true shares `p`, solved by least squares on
//!   the probability simplex (the binary case is the familiar
//!   `(q - fpr) / (tpr - fpr)`, clipped to [0, 1]).
//! - `pacc`: the same with expected posteriors instead of counts.
//! - `emq`: EM prior adjustment (Saerens, Latinne and Decaestecker 2002):
//!   posteriors are rescaled by the ratio of the group's prior to the gold
//!   sample's until the prior is stable. The posteriors are first
//!   recalibrated on the gold sample (bias-corrected temperature scaling,
//!   Alexandari et al. 2020): EM assumes them calibrated to the gold prior,
//!   and a head's are calibrated, at best, to its training data.
//!
//! Gold items are weighted by their `weight` (1 / inclusion probability),
//! so a stratified or actively drawn sample still estimates the corpus's
//! error rates (Horvitz-Thompson ratio estimates).
//!
//! The correction assumes prior shift: the classifier's errors given the
//! true label (`P(predicted | true)`) are the same in the gold sample as in
//! every group. Intervals resample the gold sample (so `M` varies) and the
//! group's paragraphs, seeded, so a run is reproducible.

use rand::{Rng, SeedableRng};

pub mod plots;

/// How shares are estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Cc,
    Acc,
    Pacc,
    Emq,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Cc => "cc",
            Method::Acc => "acc",
            Method::Pacc => "pacc",
            Method::Emq => "emq",
        }
    }

    /// Whether it reads posteriors (not only predicted labels).
    pub fn needs_posteriors(self) -> bool {
        matches!(self, Method::Pacc | Method::Emq)
    }
}

impl crate::choice::Choice for Method {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (Method::Cc, "cc", "raw share of predicted labels"),
        (Method::Acc, "acc", "adjusted classify and count"),
        (
            Method::Pacc,
            "pacc",
            "probabilistic adjusted classify and count",
        ),
        (Method::Emq, "emq", "EM prior adjustment (SLD)"),
    ];
}

/// One paragraph as the classifier saw it: its predicted label and, where
/// the method needs them, its posterior over the labels.
#[derive(Debug, Clone)]
pub struct Seen {
    pub pred: usize,
    pub post: Option<Vec<f64>>,
}

/// A gold-sample paragraph: what the classifier said, the truth, and how
/// many corpus paragraphs it stands for (1 / its inclusion probability; any
/// constant for a simple random sample).
#[derive(Debug, Clone)]
pub struct Labeled {
    pub seen: Seen,
    pub gold: usize,
    pub weight: f64,
}

/// Why shares cannot be estimated.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// A label no gold item has (EMQ: the gold prior would be 0).
    NoGold(usize),
    /// The method needs posteriors a paragraph lacks.
    NoPosterior,
    Empty,
}

/// The shares of `k` labels in `rows` by `method`, corrected with `gold`.
pub fn shares(
    method: Method,
    k: usize,
    gold: &[&Labeled],
    rows: &[&Seen],
) -> Result<Vec<f64>, Problem> {
    Ok(shares_at(method, k, gold, rows, None)?.0)
}

/// [`shares`], with EMQ's calibration temperature fixed (`Some`) or fitted
/// (`None`); also the temperature used. Bootstrap replicates reuse the
/// point estimate's: refitting the offsets, which carry most of the
/// calibration, costs a twentieth of the search.
fn shares_at(
    method: Method,
    k: usize,
    gold: &[&Labeled],
    rows: &[&Seen],
    temperature: Option<f64>,
) -> Result<(Vec<f64>, Option<f64>), Problem> {
    if rows.is_empty() {
        return Err(Problem::Empty);
    }
    let counts = raw(k, rows);
    match method {
        Method::Cc => Ok((counts, None)),
        Method::Acc | Method::Pacc => {
            let probabilistic = method == Method::Pacc;
            let q = if probabilistic {
                mean_post(k, rows)?
            } else {
                counts
            };
            let m = rates(k, gold, probabilistic)?;
            Ok((simplex_lsq(&m, &q), None))
        }
        Method::Emq => {
            let prior = gold_prior(k, gold)?;
            let cal = Calibration::fit(k, gold, &prior, temperature)?;
            // Flat, k values a row: EM passes over them many times.
            let mut posts = Vec::with_capacity(rows.len() * k);
            for r in rows {
                posts.extend(cal.apply(r.post.as_ref().ok_or(Problem::NoPosterior)?));
            }
            Ok((sld(&prior, &posts), Some(cal.temperature)))
        }
    }
}

/// Classify and count: the share of each predicted label.
pub fn raw(k: usize, rows: &[&Seen]) -> Vec<f64> {
    let mut c = vec![0.0; k];
    for r in rows {
        c[r.pred] += 1.0;
    }
    let n = rows.len().max(1) as f64;
    c.iter().map(|x| x / n).collect()
}

fn mean_post(k: usize, rows: &[&Seen]) -> Result<Vec<f64>, Problem> {
    let mut s = vec![0.0; k];
    for r in rows {
        let p = r.post.as_ref().ok_or(Problem::NoPosterior)?;
        for (a, b) in s.iter_mut().zip(p) {
            *a += b;
        }
    }
    let n = rows.len() as f64;
    Ok(s.iter().map(|x| x / n).collect())
}

/// `M[i][j]`: P(predicted i | true j) (or the mean posterior of i over the
/// gold items of true label j); the identity column for a label without
/// gold items.
fn rates(k: usize, gold: &[&Labeled], probabilistic: bool) -> Result<Vec<Vec<f64>>, Problem> {
    let mut m = vec![vec![0.0; k]; k];
    let mut n = vec![0.0; k];
    for g in gold {
        n[g.gold] += g.weight;
        if probabilistic {
            let p = g.seen.post.as_ref().ok_or(Problem::NoPosterior)?;
            for (i, v) in p.iter().enumerate() {
                m[i][g.gold] += g.weight * v;
            }
        } else {
            m[g.seen.pred][g.gold] += g.weight;
        }
    }
    for (i, row) in m.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            // A label no gold item has: taken as always predicted right
            // (its share passes through uncorrected; callers say so).
            *v = if n[j] > 0.0 {
                *v / n[j]
            } else {
                f64::from(u8::from(i == j))
            };
        }
    }
    Ok(m)
}

/// Pairs of true labels the classifier treats almost alike: the total
/// variation distance between their columns of `M` (what it predicts for
/// each, on the gold sample) is below `within`. Their shares cannot be
/// told apart by any correction. Labels without gold items are skipped.
pub fn confusable(k: usize, gold: &[&Labeled], within: f64) -> Vec<(usize, usize, f64)> {
    let Ok(m) = rates(k, gold, false) else {
        return vec![];
    };
    let has: Vec<bool> = (0..k).map(|j| gold.iter().any(|g| g.gold == j)).collect();
    let mut out = Vec::new();
    for a in 0..k {
        for b in a + 1..k {
            let tv = 0.5 * (0..k).map(|i| (m[i][a] - m[i][b]).abs()).sum::<f64>();
            if has[a] && has[b] && tv < within {
                out.push((a, b, tv));
            }
        }
    }
    out
}

fn gold_prior(k: usize, gold: &[&Labeled]) -> Result<Vec<f64>, Problem> {
    let mut p = vec![0.0; k];
    for g in gold {
        p[g.gold] += g.weight;
    }
    if let Some(j) = (0..k).find(|&j| p[j] == 0.0) {
        return Err(Problem::NoGold(j));
    }
    let n: f64 = p.iter().sum();
    Ok(p.iter().map(|x| x / n).collect())
}

/// `argmin ||M p - q||²` over the probability simplex. Up to
/// [`EXACT_LABELS`] labels exactly: the minimum lies in the relative
/// interior of some face, so solve the equality-constrained problem on
/// every support and keep the best feasible one. (Projected gradient
/// stalls where M is nearly singular, which weak heads make common: the
/// objective is flat there, but the shares are not.) More labels: projected
/// gradient.
pub fn simplex_lsq(m: &[Vec<f64>], q: &[f64]) -> Vec<f64> {
    if q.len() <= EXACT_LABELS {
        if let Some(p) = simplex_lsq_exact(m, q) {
            return p;
        }
    }
    simplex_lsq_pg(m, q)
}

/// The most labels solved by enumerating supports (2^k - 1 small systems).
pub const EXACT_LABELS: usize = 12;

/// A ridge so small it moves no well-posed answer, but makes the problem
/// strictly convex: where M cannot tell labels apart (a flat valley of
/// equally good shares) it picks the one nearest the uniform split rather
/// than an arbitrary corner.
const RIDGE: f64 = 1e-9;

fn simplex_lsq_exact(m: &[Vec<f64>], q: &[f64]) -> Option<Vec<f64>> {
    let k = q.len();
    let objective = |p: &[f64]| -> f64 {
        (0..k)
            .map(|i| ((0..k).map(|j| m[i][j] * p[j]).sum::<f64>() - q[i]).powi(2))
            .sum::<f64>()
            + RIDGE * p.iter().map(|x| x * x).sum::<f64>()
    };
    let mut best: Option<(f64, Vec<f64>)> = None;
    for mask in 1u32..(1 << k) {
        let s: Vec<usize> = (0..k).filter(|j| mask >> j & 1 == 1).collect();
        let Some(ps) = face_lsq(m, q, &s) else {
            continue;
        };
        if ps.iter().any(|&x| x < -1e-12) {
            continue;
        }
        let mut p = vec![0.0; k];
        for (&j, &x) in s.iter().zip(&ps) {
            p[j] = x.max(0.0);
        }
        let f = objective(&p);
        if best.as_ref().is_none_or(|(b, _)| f < b - 1e-15) {
            best = Some((f, p));
        }
    }
    best.map(|(_, p)| {
        let z: f64 = p.iter().sum();
        p.iter().map(|x| x / z).collect()
    })
}

/// `argmin ||M_S x - q||² + RIDGE ||x||²` subject to `sum x = 1` over the
/// columns `s`, by its KKT system; `None` when that system is singular.
fn face_lsq(m: &[Vec<f64>], q: &[f64], s: &[usize]) -> Option<Vec<f64>> {
    let (k, n) = (q.len(), s.len());
    // [2 MᵀM 1; 1ᵀ 0] [x; λ] = [2 Mᵀq; 1]
    let mut a = vec![vec![0.0; n + 2]; n + 1];
    for (r, &jr) in s.iter().enumerate() {
        for (c, &jc) in s.iter().enumerate() {
            let ridge = if r == c { RIDGE } else { 0.0 };
            a[r][c] = 2.0 * ((0..k).map(|i| m[i][jr] * m[i][jc]).sum::<f64>() + ridge);
        }
        a[r][n] = 1.0;
        a[r][n + 1] = 2.0 * (0..k).map(|i| m[i][jr] * q[i]).sum::<f64>();
    }
    a[n][..n].iter_mut().for_each(|v| *v = 1.0);
    a[n][n + 1] = 1.0;
    solve(a).map(|x| x[..n].to_vec())
}

/// Gaussian elimination with partial pivoting on an augmented matrix.
fn solve(mut a: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let n = a.len();
    for c in 0..n {
        let piv = (c..n).max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()))?;
        if a[piv][c].abs() < 1e-12 {
            return None;
        }
        a.swap(c, piv);
        let pivot = a[c].clone();
        for row in a.iter_mut().skip(c + 1) {
            let f = row[c] / pivot[c];
            for (x, p) in row.iter_mut().zip(&pivot).skip(c) {
                *x -= f * p;
            }
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let tail: f64 = (r + 1..n).map(|j| a[r][j] * x[j]).sum();
        x[r] = (a[r][n] - tail) / a[r][r];
    }
    Some(x)
}

/// Projected gradient descent for [`simplex_lsq`] with many labels.
fn simplex_lsq_pg(m: &[Vec<f64>], q: &[f64]) -> Vec<f64> {
    let k = q.len();
    // Step 1/L with L = 2 ||M||_F² >= the gradient's Lipschitz constant.
    let l = 2.0 * m.iter().flatten().map(|v| v * v).sum::<f64>();
    let step = if l > 0.0 { 1.0 / l } else { 1.0 };
    let mut p = vec![1.0 / k as f64; k];
    for _ in 0..20_000 {
        let r: Vec<f64> = (0..k)
            .map(|i| (0..k).map(|j| m[i][j] * p[j]).sum::<f64>() - q[i])
            .collect();
        let g: Vec<f64> = (0..k)
            .map(|j| 2.0 * (0..k).map(|i| m[i][j] * r[i]).sum::<f64>())
            .collect();
        let next = project(
            &p.iter()
                .zip(&g)
                .map(|(a, b)| a - step * b)
                .collect::<Vec<_>>(),
        );
        let moved = max_diff(&next, &p);
        p = next;
        if moved < 1e-13 {
            break;
        }
    }
    p
}

/// The largest absolute difference between two vectors (convergence).
fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Euclidean projection onto the simplex (Duchi et al. 2008).
fn project(v: &[f64]) -> Vec<f64> {
    let mut u = v.to_vec();
    u.sort_by(|a, b| b.total_cmp(a));
    let (mut cum, mut theta) = (0.0, 0.0);
    for (i, x) in u.iter().enumerate() {
        cum += x;
        let t = (cum - 1.0) / (i + 1) as f64;
        if x - t > 0.0 {
            theta = t;
        }
    }
    v.iter().map(|x| (x - theta).max(0.0)).collect()
}

/// Bias-corrected temperature scaling (BCTS, Alexandari et al. 2020) on
/// the gold sample: `q ∝ exp(log p / T + b)`, with the temperature and the
/// per-label offsets that maximise the gold labels' (weighted) likelihood.
/// A head's posteriors are calibrated to its training data, not to this
/// corpus; EM on uncalibrated posteriors drifts even where nothing shifted.
#[derive(Debug, Clone)]
struct Calibration {
    temperature: f64,
    bias: Vec<f64>,
}

impl Calibration {
    /// Fits the offsets, and the temperature unless `fixed`.
    fn fit(
        k: usize,
        gold: &[&Labeled],
        prior: &[f64],
        fixed: Option<f64>,
    ) -> Result<Calibration, Problem> {
        // Flat log posteriors, k a row; weights and labels beside them.
        let mut logp = Vec::with_capacity(gold.len() * k);
        for g in gold {
            let p = g.seen.post.as_ref().ok_or(Problem::NoPosterior)?;
            logp.extend(p.iter().map(|x| x.max(1e-12).ln()));
        }
        let total: f64 = gold.iter().map(|g| g.weight).sum();
        let mut c = Calibration {
            temperature: 1.0,
            bias: vec![0.0; k],
        };
        // The log likelihood of the gold labels at temperature t (the
        // offsets refitted, warm-started from the last ones).
        let ll = |t: f64, c: &mut Calibration| {
            c.temperature = t;
            c.fit_offsets(&logp, gold, total, prior);
            let mut q = vec![0.0; k];
            gold.iter()
                .zip(logp.chunks_exact(k))
                .map(|(g, lp)| {
                    c.softmax(lp, &mut q);
                    g.weight * q[g.gold].max(1e-300).ln()
                })
                .sum::<f64>()
        };
        if let Some(t) = fixed {
            ll(t, &mut c);
            return Ok(c);
        }
        // Golden-section search on log T in [1/5, 5] (the likelihood is
        // unimodal in T); 15 steps narrow it to 1e-3 of that range.
        let phi = (5f64.sqrt() - 1.0) / 2.0;
        let (mut lo, mut hi) = (-(5f64.ln()), 5f64.ln());
        let (mut a, mut b) = (hi - phi * (hi - lo), lo + phi * (hi - lo));
        let (mut fa, mut fb) = (ll(a.exp(), &mut c), ll(b.exp(), &mut c));
        for _ in 0..15 {
            if fa >= fb {
                (hi, b, fb) = (b, a, fa);
                a = hi - phi * (hi - lo);
                fa = ll(a.exp(), &mut c);
            } else {
                (lo, a, fa) = (a, b, fb);
                b = lo + phi * (hi - lo);
                fb = ll(b.exp(), &mut c);
            }
        }
        ll(((lo + hi) / 2.0).exp(), &mut c);
        Ok(c)
    }

    /// The offsets at the current temperature: the intercept-only maximum
    /// likelihood point, where the mean calibrated posterior equals the
    /// gold label shares (reached by raising each offset by log(share /
    /// mean)).
    fn fit_offsets(&mut self, logp: &[f64], gold: &[&Labeled], total: f64, prior: &[f64]) {
        let k = prior.len();
        let mut q = vec![0.0; k];
        for _ in 0..200 {
            let mut mean = vec![0.0; k];
            for (g, lp) in gold.iter().zip(logp.chunks_exact(k)) {
                self.softmax(lp, &mut q);
                for (m, x) in mean.iter_mut().zip(&q) {
                    *m += g.weight * x / total;
                }
            }
            let mut worst: f64 = 0.0;
            for j in 0..k {
                let step = (prior[j] / mean[j].max(1e-300)).ln();
                self.bias[j] += step;
                worst = worst.max(step.abs());
            }
            if worst < 1e-6 {
                break;
            }
        }
    }

    /// `softmax(log p / T + b)` into `out` (no allocation: EM's inner loop).
    fn softmax(&self, logp: &[f64], out: &mut [f64]) {
        let mut top = f64::NEG_INFINITY;
        for ((o, l), b) in out.iter_mut().zip(logp).zip(&self.bias) {
            *o = l / self.temperature + b;
            top = top.max(*o);
        }
        let mut sum = 0.0;
        for o in out.iter_mut() {
            *o = (*o - top).exp();
            sum += *o;
        }
        out.iter_mut().for_each(|o| *o /= sum);
    }

    fn apply(&self, p: &[f64]) -> Vec<f64> {
        let lp: Vec<f64> = p.iter().map(|x| x.max(1e-12).ln()).collect();
        let mut q = vec![0.0; p.len()];
        self.softmax(&lp, &mut q);
        q
    }
}

/// Saerens-Latinne-Decaestecker EM: the group prior at convergence
/// (`posts`: each row's `k` posteriors, one row after another).
fn sld(train: &[f64], posts: &[f64]) -> Vec<f64> {
    let k = train.len();
    let n = (posts.len() / k).max(1) as f64;
    let mut prior = train.to_vec();
    let mut ratio = vec![1.0; k];
    for _ in 0..1000 {
        ratio
            .iter_mut()
            .enumerate()
            .for_each(|(i, r)| *r = prior[i] / train[i]);
        let mut next = vec![0.0; k];
        for p in posts.chunks_exact(k) {
            let z: f64 = p.iter().zip(&ratio).map(|(x, r)| x * r).sum();
            if z > 0.0 {
                for i in 0..k {
                    next[i] += ratio[i] * p[i] / z;
                }
            }
        }
        next.iter_mut().for_each(|x| *x /= n);
        let moved = max_diff(&next, &prior);
        prior = next;
        if moved < 1e-9 {
            break;
        }
    }
    prior
}

/// A share with its 95 % percentile-bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    pub share: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// The shares, and their intervals from `reps` replicates that resample the
/// gold sample and the rows (seeded; `reps` 0: no interval, bounds = share).
pub fn with_intervals(
    method: Method,
    k: usize,
    gold: &[&Labeled],
    rows: &[&Seen],
    reps: usize,
    seed: u64,
) -> Result<Vec<Share>, Problem> {
    let (point, temperature) = shares_at(method, k, gold, rows, None)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut draws: Vec<Vec<f64>> = vec![Vec::with_capacity(reps); k];
    for _ in 0..reps {
        let g: Vec<&Labeled> = (0..gold.len())
            .map(|_| gold[rng.gen_range(0..gold.len())])
            .collect();
        let r: Vec<&Seen> = (0..rows.len())
            .map(|_| rows[rng.gen_range(0..rows.len())])
            .collect();
        // A replicate that lost every gold item of a label is skipped: its
        // error rates are undefined (rare unless a label has few gold items).
        if let Ok((s, _)) = shares_at(method, k, &g, &r, temperature) {
            for (d, v) in draws.iter_mut().zip(s) {
                d.push(v);
            }
        }
    }
    Ok(point
        .iter()
        .zip(draws)
        .map(|(&share, d)| {
            let (ci_low, ci_high) =
                crate::eval::metrics::percentile_ci(d, 0.95).unwrap_or((share, share));
            Share {
                share,
                ci_low,
                ci_high,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(pred: usize) -> Seen {
        Seen { pred, post: None }
    }

    /// `n` gold items of true label `gold` predicted as `pred`.
    fn labeled(n: usize, gold: usize, pred: usize, post: Option<Vec<f64>>) -> Vec<Labeled> {
        (0..n)
            .map(|_| Labeled {
                seen: Seen {
                    pred,
                    post: post.clone(),
                },
                gold,
                weight: 1.0,
            })
            .collect()
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn acc_inverts_a_binary_confusion_by_hand() {
        // Gold: 100 positives, 80 called positive (tpr 0.8); 100 negatives,
        // 10 called positive (fpr 0.1). A group where 45 % are called
        // positive holds (0.45 - 0.1) / (0.8 - 0.1) = 0.5 positives.
        let mut gold = labeled(80, 0, 0, None);
        gold.extend(labeled(20, 0, 1, None));
        gold.extend(labeled(10, 1, 0, None));
        gold.extend(labeled(90, 1, 1, None));
        let g: Vec<&Labeled> = gold.iter().collect();
        let rows: Vec<Seen> = (0..100).map(|i| seen(usize::from(i >= 45))).collect();
        let r: Vec<&Seen> = rows.iter().collect();
        assert!(close(
            &shares(Method::Cc, 2, &g, &r).unwrap(),
            &[0.45, 0.55]
        ));
        assert!(close(&shares(Method::Acc, 2, &g, &r).unwrap(), &[0.5, 0.5]));
        // Fewer positives called than the false-positive rate alone gives:
        // the estimate is clipped to 0, not negative.
        let few: Vec<Seen> = (0..100).map(|i| seen(usize::from(i >= 5))).collect();
        let f: Vec<&Seen> = few.iter().collect();
        assert!(close(&shares(Method::Acc, 2, &g, &f).unwrap(), &[0.0, 1.0]));
    }

    #[test]
    fn acc_recovers_three_shares_through_a_known_confusion() {
        // M (columns: true favor, against, none; rows: predicted), and true
        // shares p = (0.2, 0.3, 0.5): the group is called q = M p.
        let m = [[0.7, 0.1, 0.1], [0.1, 0.6, 0.2], [0.2, 0.3, 0.7]];
        let p = [0.2, 0.3, 0.5];
        let q: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| m[i][j] * p[j]).sum())
            .collect();
        let mut gold = vec![];
        for (j, col) in (0..3).map(|j| (j, [m[0][j], m[1][j], m[2][j]])) {
            for (i, rate) in col.iter().enumerate() {
                gold.extend(labeled((rate * 100.0).round() as usize, j, i, None));
            }
        }
        let g: Vec<&Labeled> = gold.iter().collect();
        // 1000 rows called in the shares q = (0.22, 0.30, 0.48).
        let mut rows = vec![];
        for (i, s) in q.iter().enumerate() {
            rows.extend((0..(s * 1000.0).round() as usize).map(|_| seen(i)));
        }
        let r: Vec<&Seen> = rows.iter().collect();
        assert!(close(&raw(3, &r), &[0.22, 0.30, 0.48]), "{:?}", raw(3, &r));
        let est = shares(Method::Acc, 3, &g, &r).unwrap();
        assert!(close(&est, &p), "{est:?}");
    }

    #[test]
    fn weights_give_the_corpus_error_rates_from_an_over_sampled_gold_sheet() {
        // The corpus holds 100 positives, 80 called positive and 20 called
        // negative, and 100 negatives, 10 called positive. The sheet
        // over-samples the errors: 10 of the 80 (weight 8), all 20 (weight
        // 1), all 10 false positives (weight 1), 10 of the 90 (weight 9).
        let mut gold = labeled(10, 0, 0, None);
        gold.iter_mut().for_each(|g| g.weight = 8.0);
        gold.extend(labeled(20, 0, 1, None));
        gold.extend(labeled(10, 1, 0, None));
        let mut right_neg = labeled(10, 1, 1, None);
        right_neg.iter_mut().for_each(|g| g.weight = 9.0);
        gold.extend(right_neg);
        let g: Vec<&Labeled> = gold.iter().collect();
        // Weighted: tpr 80/100, fpr 10/100, so a group called 45 % positive
        // holds (0.45 - 0.1) / 0.7 = 0.5, as with a simple random sample.
        let rows: Vec<Seen> = (0..100).map(|i| seen(usize::from(i >= 45))).collect();
        let r: Vec<&Seen> = rows.iter().collect();
        assert!(close(&shares(Method::Acc, 2, &g, &r).unwrap(), &[0.5, 0.5]));
        // Unweighted, the sheet's own rates (tpr 10/30, fpr 10/20) would
        // solve 0.5 - p / 6 = 0.45: p = 0.3, wrong by 0.2.
        let flat: Vec<Labeled> = gold
            .iter()
            .map(|x| Labeled {
                weight: 1.0,
                ..x.clone()
            })
            .collect();
        let f: Vec<&Labeled> = flat.iter().collect();
        let wrong = shares(Method::Acc, 2, &f, &r).unwrap();
        assert!(close(&wrong, &[0.3, 0.7]), "{wrong:?}");
        // EMQ's gold prior is weighted too: 100 of 200 positive, not 30 of 50.
        assert!(close(&gold_prior(2, &g).unwrap(), &[0.5, 0.5]));
    }

    #[test]
    fn the_exact_solver_matches_projected_gradient_and_finds_the_corner() {
        // Interior: M p = q solvable on the simplex.
        let m = vec![
            vec![0.7, 0.1, 0.1],
            vec![0.1, 0.6, 0.2],
            vec![0.2, 0.3, 0.7],
        ];
        let q = [0.22, 0.30, 0.48];
        assert!(close(&simplex_lsq(&m, &q), &[0.2, 0.3, 0.5]));
        assert!(close(&simplex_lsq_pg(&m, &q), &[0.2, 0.3, 0.5]));
        // Outside: the best point is on an edge; both solvers agree on it,
        // and no other point of the simplex does better (grid check).
        let q = [0.05, 0.60, 0.35];
        let (e, g) = (simplex_lsq(&m, &q), simplex_lsq_pg(&m, &q));
        assert!(close(&e, &g), "{e:?} vs {g:?}");
        assert!(e.contains(&0.0), "{e:?}");
        let f = |p: &[f64]| -> f64 {
            (0..3)
                .map(|i| ((0..3).map(|j| m[i][j] * p[j]).sum::<f64>() - q[i]).powi(2))
                .sum()
        };
        for a in 0..=50 {
            for b in 0..=(50 - a) {
                let p = [a as f64 / 50.0, b as f64 / 50.0, (50 - a - b) as f64 / 50.0];
                assert!(f(&e) <= f(&p) + 1e-12, "{p:?} beats {e:?}");
            }
        }
    }

    #[test]
    fn pacc_uses_mean_posteriors_by_hand() {
        // Positives average posterior 0.7 for positive, negatives 0.2: a
        // group whose mean posterior is 0.45 holds (0.45 - 0.2) / 0.5 = 0.5.
        let mut gold = labeled(10, 0, 0, Some(vec![0.7, 0.3]));
        gold.extend(labeled(10, 1, 1, Some(vec![0.2, 0.8])));
        let g: Vec<&Labeled> = gold.iter().collect();
        let rows: Vec<Seen> = [0.6, 0.3]
            .iter()
            .map(|&x| Seen {
                pred: usize::from(x < 0.5),
                post: Some(vec![x, 1.0 - x]),
            })
            .collect();
        let r: Vec<&Seen> = rows.iter().collect();
        assert!(close(
            &shares(Method::Pacc, 2, &g, &r).unwrap(),
            &[0.5, 0.5]
        ));
        // Without posteriors PACC refuses rather than guessing.
        let bare = [seen(0)];
        let b: Vec<&Seen> = bare.iter().collect();
        assert_eq!(shares(Method::Pacc, 2, &g, &b), Err(Problem::NoPosterior));
    }

    #[test]
    fn emq_moves_the_prior_toward_the_groups_posteriors() {
        // Calibrated posteriors under a 50/50 gold prior; a group whose
        // paragraphs all lean positive gets a prior above its mean posterior
        // (EM sharpens it) and below 1.
        let mut gold = labeled(50, 0, 0, Some(vec![0.8, 0.2]));
        gold.extend(labeled(50, 1, 1, Some(vec![0.2, 0.8])));
        let g: Vec<&Labeled> = gold.iter().collect();
        let rows: Vec<Seen> = (0..10)
            .map(|_| Seen {
                pred: 0,
                post: Some(vec![0.8, 0.2]),
            })
            .collect();
        let r: Vec<&Seen> = rows.iter().collect();
        let est = shares(Method::Emq, 2, &g, &r).unwrap();
        assert!(est[0] > 0.8 && est[0] <= 1.0, "{est:?}");
        assert!((est[0] + est[1] - 1.0).abs() < 1e-9);
        // A group like the gold sample keeps the gold prior.
        let mixed: Vec<&Seen> = gold.iter().map(|l| &l.seen).collect();
        assert!(close(
            &shares(Method::Emq, 2, &g, &mixed).unwrap(),
            &[0.5, 0.5]
        ));
    }

    #[test]
    fn a_label_without_gold_items_passes_through_and_intervals_cover_the_share() {
        // Label 1 has no gold item: ACC takes it as always right (so label
        // 0's perfect record leaves the raw shares as they are); EMQ, whose
        // gold prior for it would be 0, refuses.
        let gold = labeled(10, 0, 0, Some(vec![1.0, 0.0]));
        let g: Vec<&Labeled> = gold.iter().collect();
        let rows = [seen(0), seen(1), seen(1)];
        let r: Vec<&Seen> = rows.iter().collect();
        let third = [1.0 / 3.0, 2.0 / 3.0];
        assert!(close(&shares(Method::Acc, 2, &g, &r).unwrap(), &third));
        assert_eq!(shares(Method::Emq, 2, &g, &r), Err(Problem::NoGold(1)));
        let mut gold = labeled(40, 0, 0, None);
        gold.extend(labeled(10, 0, 1, None));
        gold.extend(labeled(45, 1, 1, None));
        gold.extend(labeled(5, 1, 0, None));
        let g: Vec<&Labeled> = gold.iter().collect();
        let rows: Vec<Seen> = (0..200).map(|i| seen(usize::from(i % 3 == 0))).collect();
        let r: Vec<&Seen> = rows.iter().collect();
        let a = with_intervals(Method::Acc, 2, &g, &r, 300, 7).unwrap();
        let b = with_intervals(Method::Acc, 2, &g, &r, 300, 7).unwrap();
        assert_eq!(a, b, "seeded");
        for s in &a {
            assert!(s.ci_low <= s.share && s.share <= s.ci_high, "{s:?}");
            assert!(
                s.ci_high - s.ci_low > 0.01,
                "an interval, not a point: {s:?}"
            );
        }
    }

    /// One simulated classifier: a 1-D feature, Gaussian around 0, 1.5 and
    /// 3 for the three labels (sd 1), so neighbouring labels overlap; its
    /// posteriors are exact under the gold sample's prior (calibrated).
    struct World {
        prior: Vec<f64>,
        /// Posteriors raised to this power and renormalised: above 1 an
        /// over-confident head, as trained heads often are.
        sharpen: f64,
    }

    impl World {
        fn draw(&self, truth: usize, rng: &mut impl Rng) -> Labeled {
            // Box-Muller: one standard normal from two uniforms.
            let (u, v): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
            let x = 1.5 * truth as f64
                + (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
            let like: Vec<f64> = (0..3)
                .map(|j| self.prior[j] * (-(x - 1.5 * j as f64).powi(2) / 2.0).exp())
                .collect();
            let like: Vec<f64> = like.iter().map(|l| l.powf(self.sharpen)).collect();
            let z: f64 = like.iter().sum();
            let post: Vec<f64> = like.iter().map(|l| l / z).collect();
            let pred = (0..3).max_by(|&a, &b| post[a].total_cmp(&post[b])).unwrap();
            Labeled {
                seen: Seen {
                    pred,
                    post: Some(post),
                },
                gold: truth,
                weight: 1.0,
            }
        }

        /// `n` items at `shares` (each item's label drawn independently).
        fn sample(&self, shares: &[f64], n: usize, rng: &mut impl Rng) -> Vec<Labeled> {
            (0..n)
                .map(|_| {
                    let (u, mut acc) = (rng.gen::<f64>(), 0.0);
                    let j = (0..3)
                        .find(|&j| {
                            acc += shares[j];
                            u < acc
                        })
                        .unwrap_or(2);
                    self.draw(j, rng)
                })
                .collect()
        }
    }

    /// The simulation in miniature (scripts/quant-sim.sh runs it on real
    /// heads): 200 corpora whose share of label 1 runs from 10 % to 40 %,
    /// each estimated from its own gold sample of 300, half with calibrated
    /// posteriors and half with over-confident ones. The corrected methods
    /// must cover the realised shares about 95 % of the time and raw
    /// counts must not (their intervals ignore the classifier's bias);
    /// EMQ must also beat raw counts on error. (ACC and PACC, unbiased
    /// but noisier with 300 gold items, do not here: 0.055 and 0.042
    /// against 0.043.)
    #[test]
    fn simulated_corpora_are_covered_by_their_intervals() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let methods = [Method::Cc, Method::Acc, Method::Pacc, Method::Emq];
        let (mut err, mut covered, mut cells) = ([0.0; 4], [0.0; 4], 0.0);
        for c in 0..200 {
            let world = World {
                prior: vec![0.3, 0.3, 0.4],
                sharpen: if c % 2 == 0 { 1.0 } else { 3.0 },
            };
            let against = 0.1 + 0.3 * (c % 10) as f64 / 9.0;
            let favor = 0.1 + 0.3 * ((c * 7) % 10) as f64 / 9.0;
            let shares = [favor, against, 1.0 - favor - against];
            let gold = world.sample(&world.prior, 300, &mut rng);
            let corpus = world.sample(&shares, 1000, &mut rng);
            let truth = {
                let mut t = [0.0; 3];
                corpus.iter().for_each(|l| t[l.gold] += 1e-3);
                t
            };
            let g: Vec<&Labeled> = gold.iter().collect();
            let r: Vec<&Seen> = corpus.iter().map(|l| &l.seen).collect();
            for (m, method) in methods.iter().enumerate() {
                let est = with_intervals(*method, 3, &g, &r, 100, c as u64).unwrap();
                for (s, t) in est.iter().zip(truth) {
                    err[m] += (s.share - t).abs();
                    covered[m] += f64::from(u8::from(s.ci_low <= t && t <= s.ci_high));
                }
            }
            cells += 3.0;
        }
        let mae: Vec<f64> = err.iter().map(|e| e / cells).collect();
        let cov: Vec<f64> = covered.iter().map(|c| c / cells).collect();
        let seen = format!("MAE cc/acc/pacc/emq {mae:.4?}, coverage {cov:.3?}");
        eprintln!("{seen}");
        assert!(cov[0] < 0.7, "raw counts are biased: {seen}");
        for c in &cov[1..] {
            assert!((0.90..=0.99).contains(c), "{seen}");
        }
        assert!(mae[3] < mae[0] * 0.9, "{seen}");
    }
}
