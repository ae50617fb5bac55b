//! `paratag train topic|stance --train GOLD [--dev GOLD] -c CODEBOOK -o HEAD_DIR`.

use super::eval::GoldFormat;
use super::tag::{self, ModelArgs, Tasks};
use anyhow::{Context, Result};
use paratag::codebook::Codebook;
use paratag::eval::{coder_labels, majority};
use paratag::formats::{self, GoldItem, LabelSet, NONE};
use paratag::heads::Aggregation;
use paratag::models::head::{Head, HeadMeta, Hyper, FEATURES};
use paratag::models::{registry, DType, DeviceArg, ModelDir};
use paratag::train;
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Topic,
    Stance,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    pub kind: Kind,
    /// Training gold (any format `eval` reads); repeat for several files.
    #[arg(long, required = true)]
    pub train: Vec<PathBuf>,
    /// Dev gold: early stopping, weight decay and temperature are chosen on
    /// it; repeat for several files.
    #[arg(long)]
    pub dev: Vec<PathBuf>,
    #[command(flatten)]
    pub format: GoldFormat,
    /// Without --dev: hold out this share of the training items (seeded) as
    /// the dev set.
    #[arg(long)]
    pub holdout: Option<f64>,
    /// The codebook whose topic ids / stance target the head predicts.
    #[arg(short, long)]
    pub codebook: PathBuf,
    /// Stance target id (default: the codebook's only target).
    #[arg(long)]
    pub target: Option<String>,
    /// The head folder to write.
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(long, default_value = "multilingual-e5-small")]
    pub encoder: String,
    #[arg(long, default_value_t = 300)]
    pub epochs: usize,
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// Weight-decay candidates (chosen on dev; the first without dev).
    #[arg(long, value_delimiter = ',', default_value = "0.001,0.0001,0.01")]
    pub weight_decay: Vec<f64>,
    #[arg(long)]
    pub no_class_weights: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long)]
    pub threads: Option<usize>,
    #[arg(long, default_value_t = 2048)]
    pub batch_tokens: usize,
}

/// Texts and label indices of the items labeled for `task`.
fn examples(items: &[GoldItem], task: &str, names: &[String]) -> (Vec<String>, Vec<usize>, usize) {
    let coders = formats::coders(items);
    let (mut texts, mut labels, mut skipped) = (Vec::new(), Vec::new(), 0);
    for g in items {
        let given = coder_labels(g, &coders, task);
        match majority(&given) {
            Some(l) => match names.iter().position(|n| n == l) {
                Some(i) => {
                    texts.push(g.text.clone());
                    labels.push(i);
                }
                None => skipped += 1,
            },
            // Ties; items not labeled for this task are not counted.
            None => skipped += usize::from(given.iter().any(Option::is_some)),
        }
    }
    (texts, labels, skipped)
}

pub fn run(a: Args) -> Result<()> {
    let cb = Codebook::load(&a.codebook)?;
    let (task, names): (String, Vec<String>) = match a.kind {
        Kind::Topic => {
            if cb.topics.topics.is_empty() {
                anyhow::bail!("{}: the codebook has no topics", a.codebook.display());
            }
            (
                "topic".into(),
                cb.topics.topics.iter().map(|t| t.id.clone()).collect(),
            )
        }
        Kind::Stance => {
            let id = match (&a.target, cb.stances.as_slice()) {
                (Some(t), _) => cb
                    .stances
                    .iter()
                    .find(|s| &s.id == t)
                    .map(|s| s.id.clone())
                    .with_context(|| {
                        format!(
                            "--target {t}: not a stance target of {}",
                            a.codebook.display()
                        )
                    })?,
                (None, [one]) => one.id.clone(),
                (None, _) => anyhow::bail!(
                    "the codebook has several (or no) stance targets: pass --target ID"
                ),
            };
            (
                format!("stance_{id}"),
                ["favor", "against", NONE].map(String::from).to_vec(),
            )
        }
    };
    let labels = LabelSet::from_codebook(Some(&cb));
    let read = |ps: &[PathBuf]| -> Result<Vec<GoldItem>> {
        let mut all = Vec::new();
        for p in ps {
            let (_, mut items) = formats::read(p, &a.format.read_options())?;
            formats::validate(&mut items, &labels)?;
            all.extend(items);
        }
        Ok(all)
    };
    let names_of = |ps: &[PathBuf]| {
        ps.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let m = ModelArgs {
        encoder: a.encoder.clone(),
        nli: None,
        ner: None,
        aggregation: Aggregation::First,
        threads: a.threads,
        batch_tokens: a.batch_tokens,
        device: DeviceArg::Cpu,
        dtype: DType::F32,
        heads: vec![],
    };
    let features = |texts: &[String]| -> Result<Vec<Vec<f32>>> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let none = Tasks {
            topic: false,
            stance: false,
            ner: false,
        };
        let (tagged, _) = tag::tag_texts(&refs, None, &m, none, true)?;
        let mut out = vec![None; texts.len()];
        for r in tagged.rows {
            let i: usize = tagged.corpus.articles[r.article].id[1..].parse()?;
            out[i] = r.embedding;
        }
        out.into_iter()
            .enumerate()
            .map(|(i, e)| e.with_context(|| format!("gold text {} is empty", i + 1)))
            .collect()
    };
    let (mut texts, mut ys, skipped) = examples(&read(&a.train)?, &task, &names);
    let mut held: Option<(Vec<String>, Vec<usize>)> = None;
    if let Some(f) = a.holdout {
        if !(a.dev.is_empty() && f > 0.0 && f < 1.0) {
            anyhow::bail!("--holdout needs a share between 0 and 1, and no --dev");
        }
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let mut idx: Vec<usize> = (0..texts.len()).collect();
        idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(a.seed));
        let k = (texts.len() as f64 * f).round() as usize;
        let dev_idx: BTreeSet<usize> = idx[..k].iter().copied().collect();
        let (mut dt, mut dy, mut tt, mut ty) = (vec![], vec![], vec![], vec![]);
        for (i, (t, y)) in texts.into_iter().zip(ys).enumerate() {
            if dev_idx.contains(&i) {
                dt.push(t);
                dy.push(y);
            } else {
                tt.push(t);
                ty.push(y);
            }
        }
        (texts, ys) = (tt, ty);
        held = Some((dt, dy));
    }
    if texts.is_empty() {
        anyhow::bail!("{}: no items labeled for {task}", names_of(&a.train));
    }
    let classes: BTreeSet<usize> = ys.iter().copied().collect();
    if classes.len() < 2 {
        anyhow::bail!(
            "{}: the {task} labels have a single class; a head needs two",
            names_of(&a.train)
        );
    }
    eprintln!(
        "paratag: train {task}: {} items ({} left out: coder ties, or `none` for topics), {} classes; embedding",
        texts.len(),
        skipped,
        classes.len()
    );
    tch::manual_seed(a.seed as i64);
    let train_data = train::Data {
        features: features(&texts)?,
        labels: ys,
    };
    let dev_data = if let Some((t, y)) = held {
        Some(train::Data {
            features: features(&t)?,
            labels: y,
        })
    } else if a.dev.is_empty() {
        None
    } else {
        let (t, y, _) = examples(&read(&a.dev)?, &task, &names);
        if t.is_empty() {
            anyhow::bail!("{}: no items labeled for {task}", names_of(&a.dev));
        }
        Some(train::Data {
            features: features(&t)?,
            labels: y,
        })
    };
    let opts = train::Options {
        epochs: a.epochs,
        learning_rate: a.lr,
        weight_decays: a.weight_decay.clone(),
        class_weights: !a.no_class_weights,
        every: 10,
    };
    if opts.epochs == 0 || opts.weight_decays.is_empty() {
        anyhow::bail!("--epochs must be > 0 and --weight-decay non-empty");
    }
    let fitted = train::fit(&train_data, dev_data.as_ref(), &names, &opts)?;
    let enc = ModelDir::open(&registry::resolve(&a.encoder)?)?;
    let head = Head {
        dir: a.output.clone(),
        meta: HeadMeta {
            kind: match a.kind {
                Kind::Topic => "topic".into(),
                Kind::Stance => "stance".into(),
            },
            task: task.clone(),
            labels: names,
            encoder_id: enc.id.clone(),
            encoder_sha256: enc.weights_sha256()?,
            features: FEATURES.into(),
            temperature: fitted.temperature,
            // One file: its sha256; several: the sha256 of their sha256s in order.
            train_sha256: match a.train.as_slice() {
                [one] => paratag::hash::sha256_file(one)?,
                many => {
                    let hashes = many
                        .iter()
                        .map(|p| paratag::hash::sha256_file(p))
                        .collect::<paratag::Result<Vec<_>>>()?;
                    paratag::hash::sha256_bytes(hashes.join("\n").as_bytes())
                }
            },
            train_items: train_data.labels.len(),
            hyper: Hyper {
                epochs: fitted.epochs,
                learning_rate: a.lr,
                weight_decay: fitted.weight_decay,
                class_weights: !a.no_class_weights,
                seed: a.seed,
            },
            dev: fitted.dev.clone(),
        },
        weight: fitted.weight,
        bias: fitted.bias,
    };
    head.save(&a.output)?;
    match &fitted.dev {
        Some(d) => eprintln!(
            "paratag: dev ({} items): accuracy {:.3}, macro-F1 {:.3}; epoch {}, weight decay {}, temperature {:.3} -> {}",
            d.items, d.accuracy, d.macro_f1, fitted.epochs, fitted.weight_decay, fitted.temperature, a.output.display()
        ),
        None => eprintln!("paratag: head ({} epochs, no dev set) -> {}", fitted.epochs, a.output.display()),
    }
    Ok(())
}
