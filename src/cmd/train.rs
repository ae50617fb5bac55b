//! `paratag train topic|stance --train GOLD [--dev GOLD] -c CODEBOOK -o HEAD_DIR`
//! and `paratag train ner --train GOLD [--dev GOLD] -o HEAD_DIR`.

use super::eval::GoldFormat;
use super::tag::{self, ModelArgs, Tasks};
use anyhow::{Context, Result};
use paratag::codebook::Codebook;
use paratag::formats::{LabelSet, NONE};
use paratag::heads::{Aggregation, NerScheme};
use paratag::models::head::{Head, HeadMeta, Hyper, FEATURES};
use paratag::models::tuned_head;
use paratag::models::{registry, DType, DeviceArg, ModelDir};
use paratag::train::examples::{self, Gold, Items};
use paratag::train::{self, tuned};
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Topic,
    Stance,
    Ner,
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
    /// The codebook whose topic ids / stance target the head predicts
    /// (topic and stance heads).
    #[arg(short, long)]
    pub codebook: Option<PathBuf>,
    /// Stance target id (default: the codebook's only target).
    #[arg(long)]
    pub target: Option<String>,
    /// The head folder to write.
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(long, default_value = "multilingual-e5-small")]
    pub encoder: String,
    /// Default: 300 full-batch steps (topic, stance), 20 epochs (ner).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Default: 0.05 (topic, stance), 0.001 (ner classifier).
    #[arg(long)]
    pub lr: Option<f64>,
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
    /// Encoder layers above the branch layer to copy and fine-tune (default
    /// 2 for ner; 0 for topic and stance: a linear head on the embedding).
    #[arg(long)]
    pub tune_layers: Option<usize>,
    /// With tuned layers: the encoder layer the head branches from (1-based;
    /// default: the top layer minus --tune-layers).
    #[arg(long)]
    pub layer: Option<usize>,
    /// With tuned layers: their learning rate.
    #[arg(long, default_value_t = 5e-5)]
    pub layer_lr: f64,
    /// With tuned layers: texts (encoder windows) per step.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// With tuned layers: epochs without a dev improvement before stopping.
    #[arg(long, default_value_t = 3)]
    pub patience: usize,
    /// NER: GOLD=NEW entity-type renames, e.g. `PERS=PER` (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_parser = super::eval::parse_pair)]
    pub entity_map: Vec<(String, String)>,
}

pub fn run(mut a: Args) -> Result<()> {
    if a.kind == Kind::Ner {
        a.tune_layers.get_or_insert(2);
        return run_ner(a);
    }
    let cb_path = a
        .codebook
        .clone()
        .context("topic and stance heads need -c CODEBOOK")?;
    let cb = Codebook::load(&cb_path)?;
    let (task, names): (String, Vec<String>) = match a.kind {
        Kind::Topic => {
            if cb.topics.topics.is_empty() {
                anyhow::bail!("{}: the codebook has no topics", cb_path.display());
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
                        format!("--target {t}: not a stance target of {}", cb_path.display())
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
        Kind::Ner => unreachable!("handled by run_ner"),
    };
    let labels = LabelSet::from_codebook(Some(&cb));
    let read = |ps: &[PathBuf]| {
        examples::read_gold(ps, &a.format.read_options(), &labels, false, &|l| {
            eprintln!("paratag: gold {l}")
        })
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
        let tagged = tag::tag_texts(
            &refs,
            None,
            &m,
            none,
            true,
            None,
            paratag::progress::Mode::auto(false),
        )?;
        let mut out = vec![None; texts.len()];
        for (i, r) in tagged.rows {
            out[i] = r.embedding;
        }
        out.into_iter()
            .enumerate()
            .map(|(i, e)| e.with_context(|| format!("gold text {} is empty", i + 1)))
            .collect()
    };
    let (mut texts, mut ys, skipped) = examples::classes(&read(&a.train)?, &task, &names);
    let mut held: Option<(Vec<String>, Vec<usize>)> = None;
    if let Some(f) = a.holdout {
        let (keep, dev) = holdout(texts.into_iter().zip(ys).collect(), f, &a)?;
        (texts, ys) = keep.into_iter().unzip();
        held = Some(dev.into_iter().unzip());
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
    if a.tune_layers.unwrap_or(0) > 0 {
        let dev: Vec<(String, usize)> = match held {
            Some((t, y)) => t.into_iter().zip(y).collect(),
            None if a.dev.is_empty() => vec![],
            None => {
                let (t, y, _) = examples::classes(&read(&a.dev)?, &task, &names);
                t.into_iter().zip(y).collect()
            }
        };
        let gold = |xs: Vec<(String, usize)>| -> Items {
            xs.into_iter().map(|(t, y)| (t, Gold::Class(y))).collect()
        };
        let kind = if a.kind == Kind::Topic {
            "topic"
        } else {
            "stance"
        };
        let train_items = gold(texts.into_iter().zip(ys).collect());
        return train_tuned(&a, kind, &task, names, train_items, gold(dev));
    }
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
        let (t, y, _) = examples::classes(&read(&a.dev)?, &task, &names);
        if t.is_empty() {
            anyhow::bail!("{}: no items labeled for {task}", names_of(&a.dev));
        }
        Some(train::Data {
            features: features(&t)?,
            labels: y,
        })
    };
    let lr = a.lr.unwrap_or(0.05);
    let opts = train::Options {
        epochs: a.epochs.unwrap_or(300),
        learning_rate: lr,
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
                _ => "stance".into(),
            },
            task: task.clone(),
            labels: names,
            encoder_id: enc.id.clone(),
            encoder_sha256: enc.weights_sha256()?,
            features: FEATURES.into(),
            temperature: fitted.temperature,
            train_sha256: examples::data_sha256(&a.train)?,
            train_items: train_data.labels.len(),
            hyper: Hyper {
                epochs: fitted.epochs,
                learning_rate: lr,
                weight_decay: fitted.weight_decay,
                class_weights: !a.no_class_weights,
                seed: a.seed,
                layer_learning_rate: None,
                batch_size: None,
            },
            dev: fitted.dev.clone(),
            layer: None,
            tune_layers: None,
            dev_entity_f1: None,
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

fn run_ner(a: Args) -> Result<()> {
    let labels = LabelSet {
        entity_map: a.entity_map.iter().cloned().collect(),
        ..Default::default()
    };
    let read = |ps: &[PathBuf]| {
        examples::read_gold(ps, &a.format.read_options(), &labels, true, &|l| {
            eprintln!("paratag: gold {l}")
        })
    };
    let mut types = vec![];
    let mut train_items = examples::entities(&read(&a.train)?, &mut types);
    let mut dev_items = if let Some(f) = a.holdout {
        let (keep, dev) = holdout(train_items, f, &a)?;
        train_items = keep;
        dev
    } else {
        examples::entities(&read(&a.dev)?, &mut types)
    };
    if train_items.is_empty() {
        anyhow::bail!("{}: no items with entity labels", names_of(&a.train));
    }
    if types.is_empty() {
        anyhow::bail!("{}: the gold marks no entities", names_of(&a.train));
    }
    let sorted = examples::sort_types(&types, &mut [&mut train_items, &mut dev_items]);
    let names = NerScheme::iob2_labels(&sorted);
    eprintln!(
        "paratag: train ner: {} train / {} dev items, types {}",
        train_items.len(),
        dev_items.len(),
        sorted.join(", ")
    );
    train_tuned(
        &a,
        tuned_head::KIND,
        tuned_head::TASK,
        names,
        train_items,
        dev_items,
    )
}

fn names_of(ps: &[PathBuf]) -> String {
    ps.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--holdout F` (only without --dev).
fn holdout<T>(items: Vec<T>, f: f64, a: &Args) -> Result<(Vec<T>, Vec<T>)> {
    if !a.dev.is_empty() {
        anyhow::bail!("--holdout and --dev exclude each other");
    }
    Ok(examples::holdout(items, f, a.seed)?)
}

/// Trains a head with tuned encoder layers (`--tune-layers`) and writes it.
fn train_tuned(
    a: &Args,
    kind: &str,
    task: &str,
    names: Vec<String>,
    train_items: Items,
    dev_items: Items,
) -> Result<()> {
    if let Some(t) = a.threads {
        tch::set_num_threads(t as i32);
    }
    let dir = ModelDir::open(&registry::resolve(&a.encoder)?)?;
    let pooled = kind != tuned_head::KIND;
    let spec = tuned::Spec {
        encoder: &dir,
        kind,
        task,
        names,
        tune_layers: a.tune_layers.unwrap_or(0),
        layer: a.layer,
        options: tuned::Options {
            epochs: a.epochs.unwrap_or(20),
            learning_rate: a.lr.unwrap_or(1e-3),
            layer_learning_rate: a.layer_lr,
            weight_decay: a.weight_decay[0],
            batch_size: a.batch_size,
            patience: a.patience,
            seed: a.seed,
        },
        class_weights: !a.no_class_weights,
        batch_tokens: a.batch_tokens,
        train_sha256: examples::data_sha256(&a.train)?,
    };
    let (head, fitted) = tuned::train(&spec, &train_items, &dev_items, &|m| {
        eprintln!("paratag: {m}")
    })?;
    head.save(&a.output)?;
    let what = if pooled {
        "macro-F1"
    } else {
        "entity micro-F1"
    };
    match fitted.dev_f1 {
        Some(f) => eprintln!(
            "paratag: dev ({} items): {what} {f:.3}; epoch {} -> {}",
            dev_items.len(),
            fitted.epochs,
            a.output.display()
        ),
        None => eprintln!(
            "paratag: head ({} epochs, no dev set) -> {}",
            fitted.epochs,
            a.output.display()
        ),
    }
    Ok(())
}
