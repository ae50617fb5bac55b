//! `paratag train topic|stance --train GOLD [--dev GOLD] -c CODEBOOK -o HEAD_DIR`
//! and `paratag train ner --train GOLD [--dev GOLD] -o HEAD_DIR`.

use super::eval::GoldFormat;
use super::tag::{self, ModelArgs, Tasks};
use anyhow::{Context, Result};
use paratag::batch;
use paratag::codebook::Codebook;
use paratag::eval::{coder_labels, majority, majority_spans};
use paratag::formats::{self, GoldItem, LabelSet, NONE};
use paratag::heads::{Aggregation, NerScheme};
use paratag::models::encoder::Encoder;
use paratag::models::head::{Head, HeadMeta, Hyper, FEATURES};
use paratag::models::tuned_head::{self, TunedHead};
use paratag::models::{registry, DType, DeviceArg, ModelDir};
use paratag::tokenize::Encoded;
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
    let read = |ps: &[PathBuf]| read_gold(ps, &a, &labels);
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
        let tagged = tag::tag_texts(&refs, None, &m, none, true)?;
        let mut out = vec![None; texts.len()];
        for (i, r) in tagged.rows {
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
                let (t, y, _) = examples(&read(&a.dev)?, &task, &names);
                t.into_iter().zip(y).collect()
            }
        };
        let gold = |xs: Vec<(String, usize)>| -> TunedItems {
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
        let (t, y, _) = examples(&read(&a.dev)?, &task, &names);
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
            train_sha256: train_sha256(&a.train)?,
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

fn names_of(ps: &[PathBuf]) -> String {
    ps.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_gold(ps: &[PathBuf], a: &Args, labels: &LabelSet) -> Result<Vec<GoldItem>> {
    let mut all = Vec::new();
    for p in ps {
        let (_, mut items) = formats::read(p, &a.format.read_options())?;
        if a.kind == Kind::Ner {
            // An NER head reads only the entities; other labels need no codebook.
            for an in items.iter_mut().flat_map(|g| g.annotations.iter_mut()) {
                an.topic = None;
                an.stances.clear();
            }
        }
        formats::validate(&mut items, labels)?;
        all.extend(items);
    }
    Ok(all)
}

/// `--holdout F`: a seeded share of the training examples becomes dev.
fn holdout<T>(items: Vec<T>, f: f64, a: &Args) -> Result<(Vec<T>, Vec<T>)> {
    if !(a.dev.is_empty() && f > 0.0 && f < 1.0) {
        anyhow::bail!("--holdout needs a share between 0 and 1, and no --dev");
    }
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut idx: Vec<usize> = (0..items.len()).collect();
    idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(a.seed));
    let k = (items.len() as f64 * f).round() as usize;
    let dev_idx: BTreeSet<usize> = idx[..k].iter().copied().collect();
    let (mut keep, mut dev) = (vec![], vec![]);
    for (i, x) in items.into_iter().enumerate() {
        if dev_idx.contains(&i) {
            dev.push(x);
        } else {
            keep.push(x);
        }
    }
    Ok((keep, dev))
}

/// One file: its sha256; several: the sha256 of their sha256s in order.
fn train_sha256(files: &[PathBuf]) -> Result<String> {
    Ok(match files {
        [one] => paratag::hash::sha256_file(one)?,
        many => {
            let hashes = many
                .iter()
                .map(|p| paratag::hash::sha256_file(p))
                .collect::<paratag::Result<Vec<_>>>()?;
            paratag::hash::sha256_bytes(hashes.join("\n").as_bytes())
        }
    })
}

/// What a training text is labeled with.
enum Gold {
    /// Entity spans `(start, end, type index)`, code points.
    Spans(Vec<(usize, usize, usize)>),
    Class(usize),
}

type TunedItems = Vec<(String, Gold)>;

/// Texts with their majority entity spans.
fn ner_items(items: &[GoldItem], types: &mut Vec<String>) -> TunedItems {
    items
        .iter()
        .filter_map(|g| {
            let spans = majority_spans(g)?;
            let spans = spans
                .into_iter()
                .map(|(s, e, t)| {
                    let k = match types.iter().position(|x| x == t) {
                        Some(k) => k,
                        None => {
                            types.push(t.to_string());
                            types.len() - 1
                        }
                    };
                    (s as usize, e as usize, k)
                })
                .collect();
            Some((g.text.clone(), Gold::Spans(spans)))
        })
        .collect()
}

/// Encodes texts and caches the branch layer's token states per window.
fn layer_examples(
    items: &TunedItems,
    enc: &Encoder,
    layer: usize,
    batch_tokens: usize,
) -> Result<Vec<tuned::Example>> {
    let tok = enc.dir.tokenizer()?;
    let shift = enc.prefix.chars().count();
    let mut wins: Vec<(Encoded, Vec<i64>)> = Vec::new();
    for (text, gold) in items {
        for w in tok.windows(&format!("{}{text}", enc.prefix), tok.max_len / 8)? {
            let labels = match gold {
                Gold::Spans(spans) => tuned::token_labels(&w, spans, shift),
                Gold::Class(y) => vec![*y as i64],
            };
            wins.push((w, labels));
        }
    }
    let lens: Vec<usize> = wins.iter().map(|w| w.0.len()).collect();
    let mut states: Vec<Option<tch::Tensor>> = (0..wins.len()).map(|_| None).collect();
    for b in batch::plan(&lens, batch_tokens) {
        let items: Vec<&Encoded> = b.iter().map(|&i| &wins[i].0).collect();
        let padded = batch::pad(&items, enc.dir.pad_id, enc.dir.max_len, tch::Device::Cpu);
        let (_, h) = enc.forward_layers(&padded, &[layer])?;
        for (r, &i) in b.iter().enumerate() {
            states[i] = Some(h[0].get(r as i64).narrow(0, 0, lens[i] as i64).copy());
        }
    }
    Ok(wins
        .into_iter()
        .zip(states)
        .map(|((_, labels), s)| tuned::Example {
            states: s.expect("every window encoded"),
            labels,
        })
        .collect())
}

fn run_ner(a: Args) -> Result<()> {
    let labels = LabelSet {
        entity_map: a.entity_map.iter().cloned().collect(),
        ..Default::default()
    };
    let mut types = vec![];
    let mut train_items = ner_items(&read_gold(&a.train, &a, &labels)?, &mut types);
    let mut dev_items = if let Some(f) = a.holdout {
        let (keep, dev) = holdout(train_items, f, &a)?;
        train_items = keep;
        dev
    } else {
        ner_items(&read_gold(&a.dev, &a, &labels)?, &mut types)
    };
    if train_items.is_empty() {
        anyhow::bail!("{}: no items with entity labels", names_of(&a.train));
    }
    if types.is_empty() {
        anyhow::bail!("{}: the gold marks no entities", names_of(&a.train));
    }
    // Types in a fixed order, so the head does not depend on file order.
    let mut sorted = types.clone();
    sorted.sort();
    let remap: Vec<usize> = types
        .iter()
        .map(|t| sorted.iter().position(|s| s == t).expect("same set"))
        .collect();
    for (_, gold) in train_items.iter_mut().chain(dev_items.iter_mut()) {
        if let Gold::Spans(spans) = gold {
            for sp in spans.iter_mut() {
                sp.2 = remap[sp.2];
            }
        }
    }
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

/// Trains a head with tuned encoder layers (`--tune-layers`) and writes it.
fn train_tuned(
    a: &Args,
    kind: &str,
    task: &str,
    names: Vec<String>,
    train_items: TunedItems,
    dev_items: TunedItems,
) -> Result<()> {
    if let Some(t) = a.threads {
        tch::set_num_threads(t as i32);
    }
    let dir = ModelDir::open(&registry::resolve(&a.encoder)?)?;
    let enc = Encoder::load(&dir, tch::Device::Cpu, DType::F32, true)?;
    let n = enc.num_layers();
    let k = a.tune_layers.unwrap_or(0);
    let layer = a.layer.unwrap_or(n.saturating_sub(k));
    if layer == 0 || layer + k > n {
        anyhow::bail!(
            "--layer {layer} with --tune-layers {k}: the encoder has layers 1..={n}, and the head needs layer + tune-layers <= {n}"
        );
    }
    eprintln!("paratag: branch at encoder layer {layer} of {n}, tuning {k} layers; encoding");
    let train_x = layer_examples(&train_items, &enc, layer, a.batch_tokens)?;
    let dev_x = layer_examples(&dev_items, &enc, layer, a.batch_tokens)?;
    let pooled = kind != tuned_head::KIND;
    let lr = a.lr.unwrap_or(1e-3);
    let class_weights = pooled && !a.no_class_weights;
    let meta = HeadMeta {
        kind: kind.into(),
        task: task.into(),
        labels: names.clone(),
        encoder_id: dir.id.clone(),
        encoder_sha256: dir.weights_sha256()?,
        features: format!(
            "token states of encoder layer {layer}, then {k} tuned layers{}",
            if pooled { ", mean-pooled" } else { "" }
        ),
        temperature: 1.0,
        train_sha256: train_sha256(&a.train)?,
        train_items: train_items.len(),
        hyper: Hyper {
            epochs: 0,
            learning_rate: lr,
            weight_decay: a.weight_decay[0],
            class_weights,
            seed: a.seed,
            layer_learning_rate: Some(a.layer_lr),
            batch_size: Some(a.batch_size),
        },
        dev: None,
        layer: Some(layer),
        tune_layers: Some(k),
        dev_entity_f1: None,
    };
    tch::manual_seed(a.seed as i64);
    let mut head = TunedHead::new(meta, &enc.config, tch::Device::Cpu);
    let init: Vec<_> = (layer..layer + k).map(|i| enc.layer_weights(i)).collect();
    head.init_layers(&init)?;
    drop(enc);
    let scheme = if pooled {
        None
    } else {
        Some(NerScheme::from_labels(&names, &a.output)?)
    };
    let target = if pooled {
        let ys: Vec<usize> = train_x.iter().map(|e| e.labels[0] as usize).collect();
        tuned::Target::Classes(
            &names,
            train::class_weights(&ys, names.len(), class_weights),
        )
    } else {
        tuned::Target::Entities(scheme.as_ref().expect("NER scheme"))
    };
    let opts = tuned::Options {
        epochs: a.epochs.unwrap_or(20),
        learning_rate: lr,
        layer_learning_rate: a.layer_lr,
        weight_decay: a.weight_decay[0],
        batch_size: a.batch_size,
        patience: a.patience,
        seed: a.seed,
    };
    if opts.epochs == 0 || opts.batch_size == 0 {
        anyhow::bail!("--epochs and --batch-size must be > 0");
    }
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  ETA {eta}")
            .expect("static template"),
    );
    let fitted = tuned::fit(&mut head, &train_x, &dev_x, &target, &opts, &bar)?;
    bar.finish_and_clear();
    head.meta.hyper.epochs = fitted.epochs;
    if pooled {
        if let Some((t, figures)) = fitted.temperature {
            head.meta.temperature = t as f32;
            head.meta.dev = Some(figures);
        }
    } else {
        head.meta.dev_entity_f1 = fitted.dev_f1;
    }
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
