//! `paratag train`: fits a classification head on encoder features with tch
//! autograd.
//!
//! The head is multinomial logistic regression on standardised features,
//! trained full-batch with Adam from zeros (so a run is a pure function of
//! the data and options), with optional class weights. With a dev set the
//! weight decay is chosen from a grid and the epoch by early stopping on dev
//! macro-F1, and a softmax temperature is fitted on dev by grid search on the
//! negative log-likelihood, so the scores are calibrated probabilities. The
//! standardisation and temperature are folded into the saved weights.

pub mod examples;
pub mod multi;
pub mod tuned;

use crate::error::{Error, Result};
use crate::eval::metrics::Confusion;
use crate::models::head::DevFigures;
use crate::task::{HeadKind, Task};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

#[derive(Debug, Clone)]
pub struct Data {
    pub features: Vec<Vec<f32>>,
    pub labels: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub epochs: usize,
    pub learning_rate: f64,
    /// Candidates; the first is used without a dev set.
    pub weight_decays: Vec<f64>,
    pub class_weights: bool,
    /// Dev evaluation interval for early stopping.
    pub every: usize,
}

#[derive(Debug, Clone)]
pub struct Fitted {
    /// `[labels][hidden]`, standardisation and temperature folded in.
    pub weight: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
    pub temperature: f32,
    pub epochs: usize,
    pub weight_decay: f64,
    pub dev: Option<DevFigures>,
}

fn matrix(rows: &[Vec<f32>]) -> Tensor {
    let d = rows.first().map_or(0, Vec::len);
    Tensor::from_slice(&rows.concat()).view([rows.len() as i64, d as i64])
}

pub fn macro_f1(pred: &Tensor, gold: &[usize], names: &[String]) -> (f64, f64) {
    let p: Vec<i64> = Vec::try_from(pred).expect("i64 predictions");
    let pairs: Vec<(&str, &str)> = gold
        .iter()
        .zip(&p)
        .map(|(g, p)| (names[*g].as_str(), names[*p as usize].as_str()))
        .collect();
    let c = Confusion::new(&pairs, names);
    (c.macro_f1(), c.accuracy())
}

/// Fits a softmax temperature on dev logits `[n, labels]` by grid search on
/// the negative log-likelihood; returns it with the dev figures.
pub fn dev_figures(logits: &Tensor, gold: &[usize], names: &[String]) -> (f64, DevFigures) {
    let yd = Tensor::from_slice(&gold.iter().map(|&l| l as i64).collect::<Vec<_>>());
    let nll = |t: f64| -> f64 { (logits / t).cross_entropy_for_logits(&yd).double_value(&[]) };
    let before = nll(1.0);
    let mut best_t = (before, 1.0);
    for i in 0..=80 {
        let t = (0.05f64.ln() + (20f64.ln() - 0.05f64.ln()) * i as f64 / 80.0).exp();
        let v = nll(t);
        if v < best_t.0 - 1e-12 {
            best_t = (v, t);
        }
    }
    let (f1, acc) = macro_f1(&logits.argmax(1, false), gold, names);
    let threshold = stance_threshold(&(logits / best_t.1), gold, names);
    let figures = DevFigures {
        items: gold.len(),
        accuracy: acc,
        macro_f1: f1,
        nll_before_temperature: before,
        nll_after_temperature: best_t.0,
        threshold: threshold.map(|t| t.0 as f64),
        macro_f1_at_threshold: threshold.map(|t| t.1),
    };
    (best_t.1, figures)
}

/// A stance head's decision threshold fitted on dev (temperature-scaled
/// logits `[n, labels]`): `tag` calls favor/against only where the larger
/// of the two reaches it, so the argmax figure alone would overstate a
/// head whose probabilities are soft. `None` for other heads.
fn stance_threshold(logits: &Tensor, gold: &[usize], names: &[String]) -> Option<(f32, f64)> {
    let at = |l: &str| names.iter().position(|n| n == l);
    let (f, a) = (at("favor")?, at("against")?);
    at(crate::formats::NONE)?;
    if gold.is_empty() {
        return None;
    }
    let probs = logits.softmax(-1, Kind::Float).contiguous().view([-1]);
    let probs = Vec::<f32>::try_from(&probs).ok()?;
    let scores: Vec<(f32, f32)> = probs.chunks(names.len()).map(|p| (p[f], p[a])).collect();
    let labels: Vec<&str> = gold.iter().map(|&g| names[g].as_str()).collect();
    Some(crate::calibrate::stance_threshold(&labels, &scores))
}

/// Class weights `n / (classes * count)` (1 where off or a class is absent).
pub fn class_weights(labels: &[usize], classes: usize, on: bool) -> Vec<f32> {
    let mut counts = vec![0f64; classes];
    for &l in labels {
        counts[l] += 1.0;
    }
    let n = labels.len() as f64;
    counts
        .iter()
        .map(|&k| {
            if on && k > 0.0 {
                (n / (classes as f64 * k)) as f32
            } else {
                1.0
            }
        })
        .collect()
}

/// Fits a head; `names` are the label names (for dev macro-F1).
pub fn fit(train: &Data, dev: Option<&Data>, names: &[String], o: &Options) -> Result<Fitted> {
    let c = names.len() as i64;
    let x = matrix(&train.features);
    let d = x.size()[1];
    let mu = x.mean_dim([0i64].as_slice(), true, Kind::Float);
    let sd = x.std_dim([0i64].as_slice(), false, true).clamp_min(1e-6);
    let z = (&x - &mu) / &sd;
    let y = Tensor::from_slice(&train.labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
    let cw = class_weights(&train.labels, names.len(), o.class_weights);
    let cw = Tensor::from_slice(&cw);
    let zdev = dev.map(|dv| (matrix(&dv.features) - &mu) / &sd);

    let grid: Vec<f64> = if dev.is_some() {
        o.weight_decays.clone()
    } else {
        o.weight_decays[..1].to_vec()
    };
    // (dev macro-F1, -wd) best; weights, epochs.
    let mut best: Option<(f64, f64, Tensor, Tensor, usize)> = None;
    for &wd in &grid {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let w = root.zeros("w", &[d, c]);
        let b = root.zeros("b", &[c]);
        let mut opt = nn::Adam::default().build(&vs, o.learning_rate)?;
        let mut local: Option<(f64, Tensor, Tensor, usize)> = None;
        for epoch in 1..=o.epochs {
            let logits = z.matmul(&w) + &b;
            let loss = logits.cross_entropy_loss::<&Tensor>(
                &y,
                Some(&cw),
                tch::Reduction::Mean,
                -100,
                0.0,
            ) + (&w * &w).sum(Kind::Float) * wd;
            opt.backward_step(&loss);
            let last = epoch == o.epochs;
            if let (Some(zd), Some(dv)) = (&zdev, dev) {
                if epoch % o.every == 0 || last {
                    let pred = tch::no_grad(|| (zd.matmul(&w) + &b).argmax(1, false));
                    let (f1, _) = macro_f1(&pred, &dv.labels, names);
                    if local.as_ref().is_none_or(|l| f1 > l.0 + 1e-12) {
                        local = Some((f1, w.detach().copy(), b.detach().copy(), epoch));
                    }
                }
            } else if last {
                local = Some((0.0, w.detach().copy(), b.detach().copy(), epoch));
            }
        }
        let (f1, lw, lb, ep) = local.expect("at least one epoch");
        if best.as_ref().is_none_or(|bst| f1 > bst.0 + 1e-12) {
            best = Some((f1, wd, lw, lb, ep));
        }
    }
    let (_, wd, w, b, epochs) = best.expect("a weight decay");

    // Temperature on dev.
    let mut temperature = 1.0f64;
    let mut figures = None;
    if let (Some(zd), Some(dv)) = (&zdev, dev) {
        let logits = tch::no_grad(|| zd.matmul(&w) + &b);
        let (t, figs) = dev_figures(&logits, &dv.labels, names);
        temperature = t;
        figures = Some(figs);
    }
    // Fold standardisation and temperature into one linear layer.
    let w_eff = (&w / sd.transpose(0, 1)) / temperature; // [d, c]
    let b_eff = (&b - mu.matmul(&(&w / sd.transpose(0, 1))).squeeze_dim(0)) / temperature;
    let wt: Vec<f32> = Vec::try_from(w_eff.transpose(0, 1).contiguous().view([-1]))?;
    let bias: Vec<f32> = Vec::try_from(b_eff.contiguous())?;
    Ok(Fitted {
        weight: wt.chunks(d as usize).map(<[f32]>::to_vec).collect(),
        bias,
        temperature: temperature as f32,
        epochs,
        weight_decay: wd,
        dev: figures,
    })
}

/// The task and label names a topic, stance or holder head of `cb`
/// predicts; stance and holder heads take `target`, or the codebook's only
/// target.
pub fn class_task(
    cb: &crate::codebook::Codebook,
    kind: HeadKind,
    target: Option<&str>,
) -> Result<(Task, Vec<String>)> {
    let bad = |m: String| Error::Config(format!("{}: {m}", cb.path.display()));
    if kind == HeadKind::Topic {
        if cb.topics.topics.is_empty() {
            return Err(bad("the codebook has no topics".into()));
        }
        return Ok((Task::Topic, cb.labels(&Task::Topic)));
    }
    let id = match (target, cb.stances.as_slice()) {
        (Some(t), _) => cb
            .stances
            .iter()
            .find(|s| s.id == t)
            .map(|s| s.id.clone())
            .ok_or_else(|| {
                bad(format!(
                    "target `{t}` is not a stance target of the codebook"
                ))
            })?,
        (None, [one]) => one.id.clone(),
        (None, _) => {
            return Err(bad(
                "the codebook has several (or no) stance targets: give `target`".into(),
            ))
        }
    };
    let task = Task::of_kind(kind, Some(&id))
        .filter(|t| t.target().is_some())
        .ok_or_else(|| bad(format!("a {kind} head is not a class head")))?;
    let names = cb.labels(&task);
    Ok((task, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(probs: &[[f32; 3]]) -> Tensor {
        let flat: Vec<f32> = probs.iter().flatten().map(|p| p.ln()).collect();
        Tensor::from_slice(&flat).view([probs.len() as i64, 3])
    }

    #[test]
    fn a_soft_stance_head_gets_the_threshold_its_dev_set_favours() {
        let names: Vec<String> = ["favor", "against", "none"].map(String::from).into();
        // Right by argmax, but no favor/against reaches 0.5.
        let probs = [
            [0.45, 0.20, 0.35],
            [0.44, 0.21, 0.35],
            [0.20, 0.45, 0.35],
            [0.22, 0.43, 0.35],
            [0.30, 0.25, 0.45],
            [0.25, 0.30, 0.45],
        ];
        let gold = [0, 0, 1, 1, 2, 2];
        let (t, f1) = stance_threshold(&logits(&probs), &gold, &names).unwrap();
        assert!(t > 0.30 && t <= 0.43, "{t}");
        assert_eq!(f1, 1.0);
        let at_half: Vec<(&str, &str)> = gold
            .iter()
            .zip(&probs)
            .map(|(&g, p)| (names[g].as_str(), heads_label(p, 0.5)))
            .collect();
        assert!(Confusion::new(&at_half, &[]).macro_f1() < 0.5);
        // Heads that are not stance heads get none.
        let holder: Vec<String> = ["author", "reported", "x"].map(String::from).into();
        assert!(stance_threshold(&logits(&probs), &gold, &holder).is_none());
    }

    fn heads_label(p: &[f32; 3], t: f32) -> &'static str {
        crate::heads::stance_decision(p[0], p[1], t).0
    }
}
