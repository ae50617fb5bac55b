//! Multi-task fine-tuning of the whole encoder: one low-rank adapter on every
//! layer ([`crate::models::lora`]) trained jointly for every head a recipe
//! names (NER, topic, any stance targets), so tagging still makes one
//! encoder pass for all of them.
//!
//! A recipe (`paratag train multi RECIPE.toml`) lists data sources; sources
//! of one task (all NER sources, or every source for `stance_aid`) train
//! one head. Each step draws one source (probability ∝ weight · √items,
//! from a seeded ChaCha stream) and one mini-batch from it. Mini-batches
//! come from a stream over the gold texts: a shuffled pool of
//! `batch_size × 32` texts is tokenized, length-sorted and cut into
//! batches, so neither token ids nor encoder states of the whole training
//! set are ever held. The learning rate warms up linearly, then decays
//! linearly to zero; layer i's adapter learns at `lr · layer_decay^(top−i)`.
//! With `preserve` > 0, each step also runs the plain encoder (no
//! gradient) on the batch and adds `preserve · (1 − cos)` between the two
//! mean-pooled embeddings, which keeps the pre-trained sentence geometry.
//! Every `eval_every` steps each source's dev figure (entity micro-F1 for
//! NER, macro-F1 otherwise) is taken; early stopping keeps the step with
//! the best mean over sources. Pooled heads then get a softmax temperature
//! fitted on dev. Dropout draws from torch's generator, seeded, so a run is
//! a function of recipe, data and thread count.
//!
//! An NER source that does not annotate some entity type (WikiANN has no
//! MISC) has those types' logits masked out of its loss, so it neither
//! teaches the type nor teaches that such spans are `O`.

use crate::batch;
use crate::error::{Error, Result};
use crate::heads::NerScheme;
use crate::models::encoder::{mean_pool, Encoder};
use crate::models::head::{HeadMeta, Hyper};
use crate::models::lora::{self, Adapter, AdapterMeta};
use crate::models::tuned_head::TunedHead;
use crate::models::{DType, ModelDir};
use crate::task::{HeadKind, Task};
use crate::tokenize::{Encoded, Tok};
use crate::train::examples::{Gold, Items};
use crate::train::tuned::{self, token_labels, Snapshot, SpanCounts, IGNORE};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tch::nn::OptimizerConfig;
use tch::{Kind, Tensor};

/// `RECIPE.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Registry name or folder of the base encoder.
    pub encoder: Option<String>,
    /// Codebook for topic and stance sources (relative to the recipe).
    pub codebook: Option<PathBuf>,
    #[serde(default)]
    pub lora: LoraOptions,
    #[serde(default)]
    pub train: Options,
    #[serde(rename = "source", default)]
    pub sources: Vec<SourceSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraOptions {
    pub rank: usize,
    pub alpha: f64,
    pub dropout: f64,
}

impl Default for LoraOptions {
    fn default() -> Self {
        LoraOptions {
            rank: 16,
            alpha: 32.0,
            dropout: 0.05,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Optimiser steps, all sources together.
    pub steps: usize,
    /// Texts (encoder windows) per step.
    pub batch_size: usize,
    /// Training windows are at most this many tokens (longer texts are
    /// split into overlapping windows).
    pub max_tokens: usize,
    /// Peak learning rate of the top layer's adapter.
    pub lr: f64,
    /// Peak learning rate of the heads' classifiers.
    pub head_lr: f64,
    /// Each layer down learns at this factor of the one above.
    pub layer_decay: f64,
    /// Share of the steps spent warming up.
    pub warmup: f64,
    pub weight_decay: f64,
    pub eval_every: usize,
    /// Evaluations without a dev improvement before stopping.
    pub patience: usize,
    /// Dev items per source at most (a seeded sample), so an evaluation
    /// stays cheap.
    pub dev_max: usize,
    pub class_weights: bool,
    pub seed: u64,
    /// Run the frozen encoder weights in bf16 (the adapter and heads stay
    /// f32).
    pub bf16: bool,
    /// Weight of a loss that keeps each batch's mean-pooled embedding near
    /// the plain encoder's (1 − cosine), so the pooled heads (topic,
    /// stance) keep the geometry the encoder was pre-trained for while NER
    /// moves the token states. 0: off.
    pub preserve: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            steps: 2000,
            batch_size: 16,
            max_tokens: 128,
            lr: 5e-4,
            head_lr: 2e-3,
            layer_decay: 0.9,
            warmup: 0.06,
            weight_decay: 0.01,
            eval_every: 200,
            patience: 5,
            dev_max: 500,
            class_weights: true,
            seed: 1,
            bf16: false,
            preserve: 0.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub name: String,
    /// `ner`, `topic`, `stance`, or `holder` (whose a stance target's
    /// position is: `author` or `reported`, from the gold's holder labels).
    pub kind: HeadKind,
    /// Stance and holder: the codebook's target id (default: its only one).
    pub target: Option<String>,
    pub train: Vec<PathBuf>,
    #[serde(default)]
    pub dev: Vec<PathBuf>,
    /// Without dev files: hold out this share of the training items.
    pub holdout: Option<f64>,
    /// How to read the gold files: the options `paratag eval` takes, e.g.
    /// `["--gold-col", "text=Tweet", "--delimiter", "tab"]`.
    #[serde(default)]
    pub options: Vec<String>,
    /// NER: gold type renames, e.g. `{ PERS = "PER" }`.
    #[serde(default)]
    pub entity_map: BTreeMap<String, String>,
    /// Topic and stance: a codebook of this source's own (relative to the
    /// recipe), for a head beside the main ones (e.g. SIB-200 topics as an
    /// extra task); its folder is `CODEBOOK-STEM-task`.
    pub codebook: Option<PathBuf>,
    /// Sampling weight (× √items).
    #[serde(default = "one")]
    pub weight: f64,
    /// License and origin, recorded in the adapter.
    pub license: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// One source, read.
pub struct Source {
    pub spec: SourceSpec,
    /// The head it trains.
    pub task: Task,
    /// That head's [`HeadPlan::folder`].
    pub head: String,
    pub train: Items,
    pub dev: Items,
    /// NER: the indices of the types (into the head's sorted types) this
    /// source annotates; the others are masked out of its loss.
    pub types: BTreeSet<usize>,
    pub train_sha256: String,
}

/// One head to train: its folder name, task, kind and label names.
pub struct HeadPlan {
    /// The task, or `CODEBOOK-task` for sources with their own codebook.
    pub folder: String,
    pub kind: HeadKind,
    pub task: Task,
    pub labels: Vec<String>,
}

impl Recipe {
    pub fn load(path: &Path) -> Result<Recipe> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut r: Recipe = toml::from_str(&text).map_err(|e| Error::toml(path, &text, &e))?;
        let bad = |m: String| Error::Config(format!("{}: {m}", path.display()));
        if r.sources.is_empty() {
            return Err(bad("no [[source]]: name at least one data source".into()));
        }
        let o = &r.train;
        if o.steps == 0 || o.batch_size == 0 || o.eval_every == 0 || o.max_tokens < 16 {
            return Err(bad(
                "[train] steps, batch_size and eval_every must be > 0, max_tokens >= 16".into(),
            ));
        }
        if !((0.0..1.0).contains(&o.warmup) && o.layer_decay > 0.0 && o.layer_decay <= 1.0) {
            return Err(bad(
                "[train] warmup must be in [0, 1) and layer_decay in (0, 1]".into(),
            ));
        }
        if !(o.preserve.is_finite() && o.preserve >= 0.0) {
            return Err(bad("[train] preserve must be a number >= 0".into()));
        }
        let mut names = BTreeSet::new();
        for s in &r.sources {
            if !names.insert(s.name.clone()) {
                return Err(bad(format!("two sources named `{}`", s.name)));
            }
            if s.train.is_empty() || s.weight.is_nan() || s.weight <= 0.0 {
                return Err(bad(format!(
                    "source `{}`: needs train files and a weight > 0",
                    s.name
                )));
            }
        }
        // Paths are relative to the recipe.
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(c) = r.codebook.as_mut() {
            rel(c);
        }
        for s in &mut r.sources {
            if let Some(c) = s.codebook.as_mut() {
                rel(c);
            }
            s.train.iter_mut().for_each(rel);
            s.dev.iter_mut().for_each(rel);
        }
        Ok(r)
    }
}

/// What training a recipe made.
pub struct Trained {
    pub adapter: Adapter,
    pub heads: Vec<TunedHead>,
}

/// One encoder window of a text, with its token labels (NER) or its one
/// class label.
type Window = (Encoded, Vec<i64>);

/// Per-source training state: its texts' stream of mini-batches.
struct Stream {
    order: Vec<usize>,
    pos: usize,
    pending: Vec<Vec<Window>>,
}

impl Stream {
    /// `n` items in a seeded random order.
    fn shuffled(n: usize, rng: &mut impl Rng) -> Stream {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(rng);
        Stream {
            order,
            pos: 0,
            pending: vec![],
        }
    }
}

/// Windows of one text with their token or class labels.
fn windows(tok: &Tok, prefix: &str, text: &str, gold: &Gold) -> Result<Vec<Window>> {
    let shift = prefix.chars().count();
    Ok(tok
        .windows(&format!("{prefix}{text}"), tok.max_len / 8)?
        .into_iter()
        .map(|w| {
            let labels = match gold {
                Gold::Spans { spans, .. } => token_labels(&w, spans, shift),
                Gold::Class(y) => vec![*y as i64],
            };
            (w, labels)
        })
        .collect())
}

impl Stream {
    fn next(
        &mut self,
        items: &Items,
        tok: &Tok,
        prefix: &str,
        size: usize,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> Result<Vec<Window>> {
        while self.pending.is_empty() {
            if self.pos >= self.order.len() {
                self.order.shuffle(rng);
                self.pos = 0;
            }
            let end = (self.pos + size * 32).min(self.order.len());
            let mut pool = vec![];
            for &i in &self.order[self.pos..end] {
                pool.extend(windows(tok, prefix, &items[i].0, &items[i].1)?);
            }
            self.pos = end;
            pool.sort_by_key(|w| w.0.len());
            let mut chunks: Vec<Vec<_>> = vec![];
            let mut it = pool.into_iter().peekable();
            while it.peek().is_some() {
                chunks.push(it.by_ref().take(size).collect());
            }
            chunks.shuffle(rng);
            // Popped from the back.
            self.pending = chunks;
        }
        Ok(self.pending.pop().expect("a batch"))
    }
}

/// A padded batch: inputs, and labels `[b]` (pooled) or `[b, len]`.
fn to_tensors(b: &[Window], dir: &ModelDir, pooled: bool) -> (batch::Padded, Tensor) {
    let encs: Vec<&Encoded> = b.iter().map(|w| &w.0).collect();
    let p = batch::pad(&encs, dir.pad_id, dir.max_len, tch::Device::Cpu);
    let labels = if pooled {
        Tensor::from_slice(&b.iter().map(|w| w.1[0]).collect::<Vec<_>>())
    } else {
        let l = p.ids.size()[1] as usize;
        let mut y = vec![IGNORE; b.len() * l];
        for (r, w) in b.iter().enumerate() {
            y[r * l..r * l + w.1.len()].copy_from_slice(&w.1);
        }
        Tensor::from_slice(&y).view([b.len() as i64, l as i64])
    };
    (p, labels)
}

/// `[labels]`: 0 for the labels of types the source annotates (and `O`),
/// -1e4 for the others.
fn type_mask(labels: &[String], types: &[String], seen: &BTreeSet<usize>) -> Tensor {
    let v: Vec<f32> = tuned::label_types(labels, types)
        .into_iter()
        .map(|t| match t {
            Some(k) if !seen.contains(&k) => -1e4,
            _ => 0.0,
        })
        .collect();
    Tensor::from_slice(&v)
}

/// Each source's dev figure, by source name.
type Figures = BTreeMap<String, f64>;

fn snapshot(stores: &[&tch::nn::VarStore]) -> Vec<Snapshot> {
    stores.iter().map(|vs| tuned::snapshot(vs)).collect()
}

fn restore(stores: &[&tch::nn::VarStore], snap: &[Snapshot]) {
    for (vs, saved) in stores.iter().zip(snap) {
        tuned::restore(vs, saved);
    }
}

/// Trains the adapter and heads of `plans` on `sources`.
pub fn train(
    dir: &ModelDir,
    recipe: &Recipe,
    sources: &[Source],
    plans: &[HeadPlan],
    ner_types: &[String],
    bar: &crate::progress::Progress,
    report: &dyn Fn(&str),
) -> Result<Trained> {
    let o = &recipe.train;
    let started = std::time::Instant::now();
    tch::manual_seed(o.seed as i64);
    let dtype = if o.bf16 { DType::Bf16 } else { DType::F32 };
    let mut enc = Encoder::load(dir, tch::Device::Cpu, dtype, false)?;
    enc.freeze();
    let sha = dir.weights_sha256()?;
    let adapter = new_adapter(dir, recipe, &enc, &sha)?;
    let heads = new_heads(dir, recipe, plans, &enc, &sha);
    let head_of: Vec<usize> = sources
        .iter()
        .map(|s| {
            plans
                .iter()
                .position(|p| p.folder == s.head)
                .expect("planned")
        })
        .collect();
    let schemes: Vec<Option<NerScheme>> = plans
        .iter()
        .map(|p| {
            (p.kind == HeadKind::Ner)
                .then(|| NerScheme::from_labels(&p.labels, &dir.path))
                .transpose()
        })
        .collect::<Result<_>>()?;
    let (class_w, masks) = loss_weights(sources, &head_of, &heads, plans, ner_types, o);
    let tok = dir.tokenizer_with_window(o.max_tokens)?;
    let prefix = enc.prefix.clone();
    // Tokenized once: every evaluation reads the same dev windows.
    let devs: Vec<Vec<Vec<Window>>> = sources
        .iter()
        .map(|s| dev_batches(&s.dev, &tok, &prefix))
        .collect::<Result<_>>()?;
    let mut t = Trainer {
        dir,
        recipe,
        sources,
        enc,
        adapter,
        heads,
        head_of,
        schemes,
        class_w,
        masks,
        tok,
        prefix,
        devs,
    };
    let best = t.run(bar, report)?;
    t.finish(best, started)
}

/// A fresh adapter on the encoder's layers, recording the recipe.
fn new_adapter(dir: &ModelDir, recipe: &Recipe, enc: &Encoder, sha: &str) -> Result<Adapter> {
    let meta = AdapterMeta {
        rank: recipe.lora.rank,
        alpha: recipe.lora.alpha,
        layers: enc.num_layers(),
        encoder_id: dir.id.clone(),
        encoder_sha256: sha.to_string(),
        sources: vec![],
        recipe: toml::Table::try_from(recipe).map_err(|e| Error::Config(e.to_string()))?,
        steps: 0,
        steps_run: 0,
        wall_seconds: 0.0,
        dev: BTreeMap::new(),
        dev_mean: None,
    };
    Adapter::new(meta, &enc.config, recipe.train.seed, recipe.lora.dropout)
}

/// A fresh head per plan, on the adapted encoder's top layer.
fn new_heads(
    dir: &ModelDir,
    recipe: &Recipe,
    plans: &[HeadPlan],
    enc: &Encoder,
    sha: &str,
) -> Vec<TunedHead> {
    let o = &recipe.train;
    plans
        .iter()
        .map(|p| {
            let pooled = p.kind != HeadKind::Ner;
            let meta = HeadMeta {
                kind: p.kind,
                task: p.task.clone(),
                labels: p.labels.clone(),
                encoder_id: dir.id.clone(),
                encoder_sha256: sha.to_string(),
                features: format!(
                    "token states of the adapted encoder's top layer (LoRA rank {}){}",
                    recipe.lora.rank,
                    if pooled { ", mean-pooled" } else { "" }
                ),
                temperature: 1.0,
                train_sha256: String::new(),
                train_items: 0,
                hyper: Hyper {
                    epochs: 0,
                    learning_rate: o.head_lr,
                    weight_decay: o.weight_decay,
                    class_weights: pooled && o.class_weights,
                    seed: o.seed,
                    layer_learning_rate: Some(o.lr),
                    batch_size: Some(o.batch_size),
                    steps: None,
                },
                dev: None,
                layer: Some(enc.num_layers()),
                tune_layers: Some(0),
                dev_entity_f1: None,
                adapter_sha256: None,
                target_text: None,
            };
            TunedHead::new(meta, &enc.config, tch::Device::Cpu)
        })
        .collect()
}

/// Per source: the loss's class weights (pooled heads) and type mask (NER).
type LossWeights = (Vec<Option<Tensor>>, Vec<Option<Tensor>>);

fn loss_weights(
    sources: &[Source],
    head_of: &[usize],
    heads: &[TunedHead],
    plans: &[HeadPlan],
    ner_types: &[String],
    o: &Options,
) -> LossWeights {
    let class_w = sources
        .iter()
        .zip(head_of)
        .map(|(s, &h)| {
            let ys: Vec<usize> = s
                .train
                .iter()
                .filter_map(|(_, g)| match g {
                    Gold::Class(y) => Some(*y),
                    Gold::Spans { .. } => None,
                })
                .collect();
            (heads[h].pooled && o.class_weights).then(|| {
                Tensor::from_slice(&crate::train::class_weights(
                    &ys,
                    plans[h].labels.len(),
                    true,
                ))
            })
        })
        .collect();
    let masks = sources
        .iter()
        .zip(head_of)
        .map(|(s, &h)| (!heads[h].pooled).then(|| type_mask(&plans[h].labels, ner_types, &s.types)))
        .collect();
    (class_w, masks)
}

/// A multi-task run's state: the encoder, adapter and heads, and what each
/// source's loss and evaluation need.
struct Trainer<'a> {
    dir: &'a ModelDir,
    recipe: &'a Recipe,
    sources: &'a [Source],
    enc: Encoder,
    adapter: Adapter,
    heads: Vec<TunedHead>,
    /// Per source, the index of its head.
    head_of: Vec<usize>,
    schemes: Vec<Option<NerScheme>>,
    class_w: Vec<Option<Tensor>>,
    masks: Vec<Option<Tensor>>,
    tok: Tok,
    prefix: String,
    devs: Vec<Vec<Vec<Window>>>,
}

/// The kept state: dev mean, its step, the weights of adapter and heads,
/// and the per-source figures; plus the steps run.
struct Best {
    score: f64,
    step: usize,
    snap: Vec<Snapshot>,
    figures: Figures,
    steps_run: usize,
}

impl Trainer<'_> {
    fn stores(&self) -> Vec<&tch::nn::VarStore> {
        std::iter::once(&self.adapter.vs)
            .chain(self.heads.iter().map(|h| &h.vs))
            .collect()
    }

    /// The optimisation loop: steps sampled across sources, evaluated every
    /// `eval_every` steps, stopped early on no dev improvement; the best
    /// weights are restored.
    fn run(&mut self, bar: &crate::progress::Progress, report: &dyn Fn(&str)) -> Result<Best> {
        let o = &self.recipe.train;
        let n = self.enc.num_layers();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(o.seed ^ 0x5eed);
        let mut streams: Vec<Stream> = self
            .sources
            .iter()
            .map(|s| Stream::shuffled(s.train.len(), &mut rng))
            .collect();
        let probs: Vec<f64> = self
            .sources
            .iter()
            .map(|s| s.spec.weight * (s.train.len() as f64).sqrt())
            .collect();
        let total: f64 = probs.iter().sum();
        let adamw = |vs: &tch::nn::VarStore, lr: f64| {
            tch::nn::AdamW::default().wd(o.weight_decay).build(vs, lr)
        };
        let mut opt_a = adamw(&self.adapter.vs, o.lr)?;
        let mut opt_h = self
            .heads
            .iter()
            .map(|h| adamw(&h.vs, o.head_lr))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let schedule = |step: usize| schedule(o, step);
        let mut best: Option<Best> = None;
        let (mut since_best, mut steps_run) = (0usize, 0usize);
        let (mut loss_sum, mut loss_n) = (0.0, 0usize);
        bar.set_length(o.steps as u64);
        for step in 1..=o.steps {
            let si = pick(&probs, total, &mut rng);
            let h = self.head_of[si];
            let b = streams[si].next(
                &self.sources[si].train,
                &self.tok,
                &self.prefix,
                o.batch_size,
                &mut rng,
            )?;
            let loss = self.loss(si, &b)?;
            let f = schedule(step);
            descend(&mut opt_a, &mut opt_h[h], &loss, o, n, f);
            let l = loss.double_value(&[]);
            if !l.is_finite() {
                return Err(Error::Config(format!(
                    "training diverged at step {step} (loss {l}); lower [train] lr"
                )));
            }
            loss_sum += l;
            loss_n += 1;
            steps_run = step;
            bar.inc(1);
            if step % o.eval_every != 0 && step != o.steps {
                continue;
            }
            let loss = loss_sum / loss_n.max(1) as f64;
            (loss_sum, loss_n) = (0.0, 0);
            let improved = self.checkpoint(step, loss, &mut best, bar, report)?;
            since_best = if improved { 0 } else { since_best + 1 };
            if !improved && since_best >= o.patience {
                report(&format!(
                    "no dev improvement in {} evaluations: stopping",
                    o.patience
                ));
                break;
            }
        }
        let mut best = best.expect("at least one evaluation");
        restore(&self.stores(), &best.snap);
        best.steps_run = steps_run;
        Ok(best)
    }

    /// Evaluates on dev at `step` and keeps the weights when the dev mean
    /// improved (without dev sets, the latest step counts as best);
    /// whether it improved.
    fn checkpoint(
        &self,
        step: usize,
        loss: f64,
        best: &mut Option<Best>,
        bar: &crate::progress::Progress,
        report: &dyn Fn(&str),
    ) -> Result<bool> {
        let figures = self.evaluate()?;
        let mean =
            (!figures.is_empty()).then(|| figures.values().sum::<f64>() / figures.len() as f64);
        let msg = progress_line(step, loss, mean, &figures);
        bar.set_message(msg.clone());
        report(&msg);
        let score = mean.unwrap_or(step as f64);
        if best.as_ref().is_some_and(|b| score <= b.score + 1e-12) {
            return Ok(false);
        }
        *best = Some(Best {
            score,
            step,
            snap: snapshot(&self.stores()),
            figures,
            steps_run: 0,
        });
        Ok(true)
    }

    /// One batch's loss for source `si`: cross-entropy (class-weighted, or
    /// with the source's unlabeled entity types masked), plus the pull
    /// toward the plain encoder's embeddings (`preserve`).
    fn loss(&self, si: usize, batch: &[Window]) -> Result<Tensor> {
        let o = &self.recipe.train;
        let head = &self.heads[self.head_of[si]];
        let (padded, labels) = to_tensors(batch, self.dir, head.pooled);
        let states =
            lora::forward(&self.enc, Some(&self.adapter), &padded, true)?.to_kind(Kind::Float);
        let logits = head.forward_t(&states, &padded.mask, true);
        let c = *logits.size().last().expect("label axis");
        let logits = match &self.masks[si] {
            Some(m) => logits + m,
            None => logits,
        };
        let loss = logits.view([-1, c]).cross_entropy_loss::<&Tensor>(
            &labels.view([-1]),
            self.class_w[si].as_ref(),
            tch::Reduction::Mean,
            IGNORE,
            0.0,
        );
        if o.preserve <= 0.0 {
            return Ok(loss);
        }
        let plain = tch::no_grad(|| lora::forward(&self.enc, None, &padded, false))?;
        let pool = |s: &Tensor| mean_pool(&s.to_kind(Kind::Float), &padded.mask);
        let cos = Tensor::cosine_similarity(&pool(&states), &pool(&plain), 1, 1e-8);
        Ok(loss + (cos.neg() + 1.0).mean(Kind::Float) * o.preserve)
    }

    fn evaluate(&self) -> Result<Figures> {
        evaluate(
            &self.enc,
            &self.adapter,
            &self.heads,
            self.sources,
            &self.head_of,
            &self.schemes,
            &self.devs,
            self.dir,
        )
    }

    /// The record of the run in the adapter, and per head its calibration
    /// on its pooled dev sets, figures and training record.
    fn finish(mut self, best: Best, started: std::time::Instant) -> Result<Trained> {
        let m = &mut self.adapter.meta;
        m.steps = best.step;
        m.steps_run = best.steps_run;
        m.dev_mean = (!best.figures.is_empty()).then_some(best.score);
        m.dev = best.figures;
        m.sources = self.sources.iter().map(source_record).collect();
        for h in 0..self.heads.len() {
            self.finish_head(h, best.step)?;
        }
        self.adapter.meta.wall_seconds = started.elapsed().as_secs_f64();
        Ok(Trained {
            adapter: self.adapter,
            heads: self.heads,
        })
    }

    fn finish_head(&mut self, h: usize, kept: usize) -> Result<()> {
        let mine: Vec<&Source> = self
            .sources
            .iter()
            .zip(&self.head_of)
            .filter(|(_, &k)| k == h)
            .map(|(s, _)| s)
            .collect();
        let dev: Vec<Window> = self
            .head_of
            .iter()
            .zip(&self.devs)
            .filter(|(&k, _)| k == h)
            .flat_map(|(_, b)| b.iter().flatten().cloned())
            .collect();
        let head = &mut self.heads[h];
        head.meta.train_items = mine.iter().map(|s| s.train.len()).sum();
        head.meta.train_sha256 = crate::hash::sha256_bytes(
            mine.iter()
                .map(|s| s.train_sha256.as_str())
                .collect::<Vec<_>>()
                .join("\n")
                .as_bytes(),
        );
        head.meta.hyper.steps = Some(kept);
        if dev.is_empty() {
            return Ok(());
        }
        let dev = rebatch(dev);
        if head.pooled {
            let (logits, gold) = pooled_logits(&self.enc, &self.adapter, head, &dev, self.dir)?;
            let (t, figures) = crate::train::dev_figures(&logits, &gold, &head.meta.labels);
            head.fold_temperature(t);
            head.meta.temperature = t as f32;
            head.meta.dev = Some(figures);
        } else if let Some(scheme) = &self.schemes[h] {
            let counts = ner_counts(&self.enc, &self.adapter, head, &dev, scheme, self.dir)?;
            head.meta.dev_entity_f1 = Some(counts.f1());
        }
        Ok(())
    }
}

/// The source a step learns from, drawn with probability `probs / total`.
fn pick(probs: &[f64], total: f64, rng: &mut impl Rng) -> usize {
    let mut x = rng.gen::<f64>() * total;
    for (i, p) in probs.iter().enumerate() {
        if x < *p {
            return i;
        }
        x -= p;
    }
    probs.len() - 1
}

/// The learning-rate factor at `step`: linear warm-up, then linear decay.
fn schedule(o: &Options, step: usize) -> f64 {
    let warm = ((o.steps as f64) * o.warmup).ceil().max(1.0);
    let s = step as f64;
    if s < warm {
        s / warm
    } else {
        ((o.steps as f64 - s) / (o.steps as f64 - warm).max(1.0)).max(0.0)
    }
}

/// One optimiser step of the adapter (its `n` layers' rates decayed from
/// the top) and of one head, at learning-rate factor `f`.
fn descend(
    adapter: &mut tch::nn::Optimizer,
    head: &mut tch::nn::Optimizer,
    loss: &Tensor,
    o: &Options,
    n: usize,
    f: f64,
) {
    adapter.zero_grad();
    head.zero_grad();
    loss.backward();
    for i in 0..n {
        adapter.set_lr_group(i, o.lr * f * o.layer_decay.powi((n - 1 - i) as i32));
    }
    head.set_lr(o.head_lr * f);
    adapter.clip_grad_norm(1.0);
    head.clip_grad_norm(1.0);
    adapter.step();
    head.step();
}

/// A source as the adapter records it.
fn source_record(s: &Source) -> lora::Source {
    lora::Source {
        name: s.spec.name.clone(),
        kind: s.spec.kind,
        task: s.task.clone(),
        train: s
            .spec
            .train
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        train_sha256: s.train_sha256.clone(),
        train_items: s.train.len(),
        dev_items: s.dev.len(),
        license: s.spec.license.clone(),
    }
}

/// The line shown at an evaluation.
fn progress_line(step: usize, loss: f64, mean: Option<f64>, figures: &Figures) -> String {
    let dev = match mean {
        Some(m) => format!(
            ", dev mean {m:.3} ({})",
            figures
                .iter()
                .map(|(k, v)| format!("{k} {v:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    };
    format!("step {step}: loss {loss:.4}{dev}")
}

/// Dev windows in length-sorted batches of at most 4,096 padded tokens.
fn dev_batches(items: &Items, tok: &Tok, prefix: &str) -> Result<Vec<Vec<Window>>> {
    let mut wins = vec![];
    for (t, g) in items {
        wins.extend(windows(tok, prefix, t, g)?);
    }
    Ok(rebatch(wins))
}

/// Windows in length-sorted batches of at most 4,096 padded tokens.
fn rebatch(wins: Vec<Window>) -> Vec<Vec<Window>> {
    let lens: Vec<usize> = wins.iter().map(|w| w.0.len()).collect();
    let plan = batch::plan(&lens, 4096);
    let mut slots: Vec<Option<Window>> = wins.into_iter().map(Some).collect();
    plan.into_iter()
        .map(|b| {
            b.into_iter()
                .map(|i| slots[i].take().expect("once"))
                .collect()
        })
        .collect()
}

/// Logits of one head over dev batches, no dropout, no gradients.
fn head_logits(
    enc: &Encoder,
    adapter: &Adapter,
    head: &TunedHead,
    b: &[Window],
    dir: &ModelDir,
) -> Result<(Tensor, Tensor)> {
    let (padded, labels) = to_tensors(b, dir, head.pooled);
    let logits = tch::no_grad(|| -> Result<Tensor> {
        let states = lora::forward(enc, Some(adapter), &padded, false)?.to_kind(Kind::Float);
        Ok(head.forward_t(&states, &padded.mask, false))
    })?;
    Ok((logits, labels))
}

fn pooled_logits(
    enc: &Encoder,
    adapter: &Adapter,
    head: &TunedHead,
    dev: &[Vec<Window>],
    dir: &ModelDir,
) -> Result<(Tensor, Vec<usize>)> {
    let (mut all, mut gold) = (vec![], vec![]);
    for b in dev {
        let (logits, labels) = head_logits(enc, adapter, head, b, dir)?;
        gold.extend(
            Vec::<i64>::try_from(&labels)?
                .into_iter()
                .map(|y| y as usize),
        );
        all.push(logits);
    }
    Ok((Tensor::cat(&all, 0), gold))
}

fn ner_counts(
    enc: &Encoder,
    adapter: &Adapter,
    head: &TunedHead,
    dev: &[Vec<Window>],
    scheme: &NerScheme,
    dir: &ModelDir,
) -> Result<SpanCounts> {
    let mut c = SpanCounts::default();
    for b in dev {
        let (logits, labels) = head_logits(enc, adapter, head, b, dir)?;
        c.add(&logits, &labels, scheme);
    }
    Ok(c)
}

/// Each source's dev figure: entity micro-F1 or macro-F1.
#[allow(clippy::too_many_arguments)]
fn evaluate(
    enc: &Encoder,
    adapter: &Adapter,
    heads: &[TunedHead],
    sources: &[Source],
    head_of: &[usize],
    schemes: &[Option<NerScheme>],
    devs: &[Vec<Vec<Window>>],
    dir: &ModelDir,
) -> Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for ((s, &h), dev) in sources.iter().zip(head_of).zip(devs) {
        if s.dev.is_empty() {
            continue;
        }
        let head = &heads[h];
        let f = match &schemes[h] {
            Some(scheme) => ner_counts(enc, adapter, head, dev, scheme, dir)?.f1(),
            None => {
                let (logits, gold) = pooled_logits(enc, adapter, head, dev, dir)?;
                crate::train::macro_f1(&logits.argmax(1, false), &gold, &head.meta.labels).0
            }
        };
        out.insert(s.spec.name.clone(), f);
    }
    Ok(out)
}

/// A seeded sample of at most `max` items (order kept).
pub fn cap(items: Items, max: usize, seed: u64) -> Items {
    if items.len() <= max {
        return items;
    }
    let mut idx: Vec<usize> = (0..items.len()).collect();
    idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let keep: BTreeSet<usize> = idx[..max].iter().copied().collect();
    items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, x)| x)
        .collect()
}

/// Writes the adapter and its heads into `out` (`adapter/`, then one
/// folder per head, [`HeadPlan::folder`]), building them aside and renaming
/// into place, so `out` is whole or untouched. An existing `out` is
/// replaced only when it holds an earlier training's output.
pub fn save(trained: &mut Trained, plans: &[HeadPlan], out: &Path) -> Result<Vec<PathBuf>> {
    if out.exists() && lora::read_meta(&out.join(lora::DIR)).is_err() {
        let empty = std::fs::read_dir(out)
            .map_err(|e| Error::io(out, e))?
            .next()
            .is_none();
        if !empty {
            return Err(Error::Config(format!(
                "{}: exists and is not a `paratag train multi` output; pick a new folder",
                out.display()
            )));
        }
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".train-")
        .tempdir_in(&parent)
        .map_err(|e| Error::io(&parent, e))?;
    let ad = tmp.path().join(lora::DIR);
    trained.adapter.save(&ad)?;
    let sha = lora::weights_sha256(&ad)?;
    let mut folders = vec![];
    for (h, plan) in trained.heads.iter_mut().zip(plans) {
        h.meta.adapter_sha256 = Some(sha.clone());
        h.save(&tmp.path().join(&plan.folder))?;
        folders.push(out.join(&plan.folder));
    }
    if out.exists() {
        let old = parent.join(format!(
            ".old-{}",
            out.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(out, &old).map_err(|e| Error::io(out, e))?;
        std::fs::rename(tmp.keep(), out).map_err(|e| Error::io(out, e))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(tmp.keep(), out).map_err(|e| Error::io(out, e))?;
    }
    Ok(folders)
}
