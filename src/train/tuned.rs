//! Fits a head with tuned encoder layers ([`crate::models::tuned_head`]) on
//! cached encoder states: NER heads per token, topic and stance heads on the
//! pooled states.
//!
//! The frozen encoder runs once over the training texts up to the branch
//! layer; its token states are cached, so each epoch costs only the tuned
//! layers and the classifier. NER trains every sub-token (B- on a span's
//! first sub-token, I- on the rest, O outside). Mini-batches are
//! length-sorted and their order shuffled with a seeded ChaCha RNG; dropout
//! draws from torch's generator, seeded by the caller, so a run is a function
//! of data, options and seed. Early stopping keeps the epoch with the best dev
//! figure: entity micro-F1 (exact spans, IOB2-constrained Viterbi, as tagging
//! decodes) for NER, macro-F1 otherwise; pooled heads then get a softmax
//! temperature fitted on dev, folded into the classifier.

use crate::batch;
use crate::cache::FeatureCache;
use crate::error::Result;
use crate::heads::NerScheme;
use crate::models::head::DevFigures;
use crate::models::tuned_head::TunedHead;
use crate::task::{HeadKind, Task};
use crate::tokenize::Encoded;
use crate::train::examples::{Gold, Items};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeSet;
use tch::nn::OptimizerConfig;
use tch::{Kind, Tensor};

/// Label index of `O`, `B-T`, `I-T` in [`NerScheme::iob2_labels`] order.
pub const IGNORE: i64 = -100;
fn b_of(t: usize) -> i64 {
    1 + 2 * t as i64
}
fn i_of(t: usize) -> i64 {
    2 + 2 * t as i64
}

/// One encoder window of a training text.
pub struct Example {
    /// Branch-layer token states `[len, hidden]`.
    pub states: Tensor,
    /// NER: per token, its label index, or -100 for special and prefix
    /// tokens. Pooled heads: the one label of the text.
    pub labels: Vec<i64>,
    /// The training item the window belongs to.
    pub item: usize,
    /// NER: the entity types its source does not annotate, masked out of
    /// the loss and the dev score.
    pub unannotated: Vec<usize>,
}

/// What the head predicts.
pub enum Target<'a> {
    Entities(&'a NerScheme),
    /// Label names, and class weights for the loss.
    Classes(&'a [String], Vec<f32>),
}

/// Token labels of one window from gold spans `(start, end, type index)` in
/// code points of the text; the window's offsets count `shift` code points
/// of text prefix first.
pub fn token_labels(enc: &Encoded, spans: &[(usize, usize, usize)], shift: usize) -> Vec<i64> {
    let mut seen: BTreeSet<usize> = BTreeSet::new();
    (0..enc.len())
        .map(|i| {
            let (s, e) = enc.offsets[i];
            if !enc.content[i] || e <= shift {
                return IGNORE;
            }
            let (s, e) = (s.max(shift) - shift, e - shift);
            match spans.iter().position(|sp| s < sp.1 && e > sp.0) {
                Some(k) if seen.insert(k) => b_of(spans[k].2),
                Some(k) => i_of(spans[k].2),
                None => 0,
            }
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct Options {
    pub epochs: usize,
    /// Learning rate of the classifier.
    pub learning_rate: f64,
    /// Learning rate of the tuned encoder layers.
    pub layer_learning_rate: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    /// Epochs without a dev improvement before stopping.
    pub patience: usize,
    pub seed: u64,
}

#[derive(Debug, Clone)]
pub struct Fitted {
    pub epochs: usize,
    /// The dev figure early stopping chose on (entity micro-F1 or macro-F1).
    pub dev_f1: Option<f64>,
    /// Pooled heads with dev: the fitted temperature and dev figures.
    pub temperature: Option<(f64, DevFigures)>,
}

struct Batch {
    states: Tensor,
    mask: Tensor,
    labels: Tensor,
    /// NER: `[rows, 1, labels]`, -1e4 on the labels of types a row's source
    /// does not annotate; `None` when every row annotates every type.
    types: Option<Tensor>,
}

impl Batch {
    fn logits(&self, head: &TunedHead, train: bool) -> Tensor {
        let logits = head.forward_t(&self.states, &self.mask, train);
        match &self.types {
            Some(m) => logits + m,
            None => logits,
        }
    }
}

/// For each label, its entity type's index (`None` for `O` and class labels).
pub(crate) fn label_types(labels: &[String], types: &[String]) -> Vec<Option<usize>> {
    labels
        .iter()
        .map(|l| {
            let (_, t) = l.split_once('-')?;
            types.iter().position(|x| x == t)
        })
        .collect()
}

fn batches(
    examples: &[Example],
    size: usize,
    label_types: &[Option<usize>],
    pooled: bool,
) -> Vec<Batch> {
    let len = |e: &Example| e.states.size()[0] as usize;
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| (len(&examples[i]), i));
    order
        .chunks(size.max(1))
        .map(|idx| {
            let states: Vec<&Tensor> = idx.iter().map(|&i| &examples[i].states).collect();
            let l = idx.iter().map(|&i| len(&examples[i])).max().unwrap_or(0);
            let shape = [idx.len() as i64, l as i64];
            let mut mask = vec![0i64; idx.len() * l];
            for (r, &i) in idx.iter().enumerate() {
                mask[r * l..r * l + len(&examples[i])].fill(1);
            }
            // Pooled: one label per text; NER: one per token, padded with IGNORE.
            let labels = if pooled {
                let y: Vec<i64> = idx.iter().map(|&i| examples[i].labels[0]).collect();
                Tensor::from_slice(&y)
            } else {
                let mut y = vec![IGNORE; idx.len() * l];
                for (r, &i) in idx.iter().enumerate() {
                    let t = &examples[i].labels;
                    y[r * l..r * l + t.len()].copy_from_slice(t);
                }
                Tensor::from_slice(&y).view(shape)
            };
            let types = idx
                .iter()
                .any(|&i| !examples[i].unannotated.is_empty())
                .then(|| {
                    let c = label_types.len();
                    let mut m = vec![0f32; idx.len() * c];
                    for (r, &i) in idx.iter().enumerate() {
                        for (j, t) in label_types.iter().enumerate() {
                            if t.is_some_and(|t| examples[i].unannotated.contains(&t)) {
                                m[r * c + j] = -1e4;
                            }
                        }
                    }
                    Tensor::from_slice(&m).view([idx.len() as i64, 1, c as i64])
                });
            Batch {
                states: Tensor::pad_sequence(&states, true, 0.0),
                mask: Tensor::from_slice(&mask).view(shape),
                labels,
                types,
            }
        })
        .collect()
}

/// Trains `head` in place; returns the kept epoch and its dev figures.
pub fn fit(
    head: &mut TunedHead,
    train: &[Example],
    dev: &[Example],
    target: &Target,
    o: &Options,
    bar: &crate::progress::Progress,
) -> Result<Fitted> {
    let pooled = head.pooled;
    let lt = match target {
        Target::Entities(scheme) => label_types(&head.meta.labels, &scheme.types),
        Target::Classes(..) => vec![],
    };
    let train_b = batches(train, o.batch_size, &lt, pooled);
    let dev_b = batches(dev, 64, &lt, pooled);
    let class_weights = match target {
        Target::Classes(_, w) => Some(Tensor::from_slice(w)),
        Target::Entities(_) => None,
    };
    let mut opt = tch::nn::AdamW::default()
        .wd(o.weight_decay)
        .build(&head.vs, o.learning_rate)?;
    if head.meta.tune_layers.unwrap_or(0) > 0 {
        opt.set_lr_group(1, o.layer_learning_rate);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(o.seed);
    // (dev F1, epoch, weights) of the kept epoch.
    let mut best: Option<(f64, usize, Snapshot)> = None;
    let mut order: Vec<usize> = (0..train_b.len()).collect();
    bar.set_length((o.epochs * train_b.len()) as u64);
    for epoch in 1..=o.epochs {
        order.shuffle(&mut rng);
        let batches = order.iter().map(|&bi| &train_b[bi]);
        let loss = epoch_loss(head, batches, class_weights.as_ref(), &mut opt, bar);
        let f1 = (!dev.is_empty()).then(|| dev_score(head, &dev_b, target));
        bar.set_message(match f1 {
            Some(f) => format!("epoch {epoch}: loss {loss:.4}, dev F1 {f:.3}"),
            None => format!("epoch {epoch}: loss {loss:.4}"),
        });
        let score = f1.unwrap_or(0.0);
        if best
            .as_ref()
            .is_none_or(|b| score > b.0 + 1e-12 || f1.is_none())
        {
            best = Some((score, epoch, snapshot(&head.vs)));
        } else if best.as_ref().is_some_and(|b| epoch - b.1 >= o.patience) {
            break;
        }
    }
    let (f1, epochs, weights) = best.expect("at least one epoch");
    restore(&head.vs, &weights);
    let mut temperature = None;
    if let (Target::Classes(names, _), false) = (target, dev.is_empty()) {
        let (logits, gold) = dev_logits(head, &dev_b);
        let (t, figures) = crate::train::dev_figures(&logits, &gold, names);
        head.fold_temperature(t);
        temperature = Some((t, figures));
    }
    Ok(Fitted {
        epochs,
        dev_f1: (!dev.is_empty()).then_some(f1),
        temperature,
    })
}

/// One pass over the batches, an optimiser step each; the mean loss.
fn epoch_loss<'b>(
    head: &TunedHead,
    batches: impl ExactSizeIterator<Item = &'b Batch>,
    class_weights: Option<&Tensor>,
    opt: &mut tch::nn::Optimizer,
    bar: &crate::progress::Progress,
) -> f64 {
    let n = batches.len();
    let mut total = 0.0;
    for b in batches {
        let logits = b.logits(head, true);
        let c = *logits.size().last().expect("logits have a label axis");
        let loss = logits.view([-1, c]).cross_entropy_loss::<&Tensor>(
            &b.labels.view([-1]),
            class_weights,
            tch::Reduction::Mean,
            IGNORE,
            0.0,
        );
        opt.zero_grad();
        loss.backward();
        opt.clip_grad_norm(1.0);
        opt.step();
        total += loss.double_value(&[]);
        bar.inc(1);
    }
    total / n.max(1) as f64
}

/// The dev figure early stopping reads: entity micro-F1, or macro-F1.
fn dev_score(head: &TunedHead, dev: &[Batch], target: &Target) -> f64 {
    match target {
        Target::Entities(scheme) => dev_f1(head, dev, scheme),
        Target::Classes(names, _) => {
            let (logits, gold) = dev_logits(head, dev);
            crate::train::macro_f1(&logits.argmax(1, false), &gold, names).0
        }
    }
}

/// Dev logits `[n, labels]` of a pooled head, with the gold labels.
fn dev_logits(head: &TunedHead, dev: &[Batch]) -> (Tensor, Vec<usize>) {
    let logits: Vec<Tensor> = dev
        .iter()
        .map(|b| tch::no_grad(|| head.forward_t(&b.states, &b.mask, false)))
        .collect();
    let gold: Vec<usize> = dev
        .iter()
        .flat_map(|b| Vec::<i64>::try_from(&b.labels).expect("i64 labels"))
        .map(|y| y as usize)
        .collect();
    (Tensor::cat(&logits, 0), gold)
}

/// A copy of every variable of `vs`, by name (the kept epoch or step).
pub type Snapshot = Vec<(String, Tensor)>;

pub fn snapshot(vs: &tch::nn::VarStore) -> Snapshot {
    let mut v: Snapshot = vs
        .variables()
        .into_iter()
        .map(|(k, t)| (k, t.detach().copy()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

pub fn restore(vs: &tch::nn::VarStore, weights: &[(String, Tensor)]) {
    let vars = vs.variables();
    for (k, w) in weights {
        let mut v = vars[k].shallow_clone();
        tch::no_grad(|| v.copy_(w));
    }
}

/// Entity micro-F1 on dev, exact spans over sub-tokens (every sub-token is
/// labeled, so these match word spans), IOB2-constrained Viterbi decoding.
fn dev_f1(head: &TunedHead, dev: &[Batch], scheme: &NerScheme) -> f64 {
    let mut counts = SpanCounts::default();
    for b in dev {
        let logits = tch::no_grad(|| b.logits(head, false));
        counts.add(&logits, &b.labels, scheme);
    }
    counts.f1()
}

/// Exact-span counts for entity micro-F1: true positives, predicted, gold.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpanCounts {
    pub tp: usize,
    pub predicted: usize,
    pub gold: usize,
}

impl SpanCounts {
    /// Adds one batch: logits `[rows, len, labels]` and token labels
    /// `[rows, len]` (-100 where a token is not scored), decoded with
    /// IOB2-constrained Viterbi over the scored tokens, as tagging decodes.
    pub fn add(&mut self, logits: &Tensor, labels: &Tensor, scheme: &NerScheme) {
        let probs = logits.softmax(-1, Kind::Float);
        let (rows, len, c) = (probs.size()[0], probs.size()[1], probs.size()[2]);
        let (len, c) = (len as usize, c as usize);
        let flat = Vec::<f32>::try_from(probs.contiguous().view([-1])).expect("f32 probs");
        let labels = Vec::<i64>::try_from(labels.contiguous().view([-1])).expect("i64 labels");
        for r in 0..rows as usize {
            let (mut gold, mut pred) = (vec![], vec![]);
            for t in 0..len {
                let y = labels[r * len + t];
                if y == IGNORE {
                    continue;
                }
                gold.push(y as usize);
                let at = (r * len + t) * c;
                pred.push(flat[at..at + c].to_vec());
            }
            let g: BTreeSet<_> = scheme.spans(&gold).into_iter().collect();
            let p: BTreeSet<_> = scheme.spans(&scheme.viterbi(&pred)).into_iter().collect();
            self.tp += g.intersection(&p).count();
            self.predicted += p.len();
            self.gold += g.len();
        }
    }

    pub fn f1(&self) -> f64 {
        let prec = self.tp as f64 / self.predicted.max(1) as f64;
        let rec = self.tp as f64 / self.gold.max(1) as f64;
        if prec + rec == 0.0 {
            0.0
        } else {
            2.0 * prec * rec / (prec + rec)
        }
    }
}

/// A head with tuned layers to train: what `paratag train` was asked for.
pub struct Spec<'a> {
    pub encoder: &'a crate::models::ModelDir,
    pub kind: HeadKind,
    pub task: &'a Task,
    pub names: Vec<String>,
    pub tune_layers: usize,
    /// The branch layer (1-based); default: the top layer minus `tune_layers`.
    pub layer: Option<usize>,
    pub options: Options,
    pub class_weights: bool,
    pub batch_tokens: usize,
    pub train_sha256: String,
    /// Read the encoder with this adapter merged (its folder and sha256), so
    /// the head joins that adapter's heads in one encoder pass.
    pub adapter: Option<(std::path::PathBuf, String)>,
    /// Fine-tune this head (same layer, tuned layers and labels) instead of
    /// starting from the encoder's layers and a zero classifier.
    pub init: Option<std::path::PathBuf>,
    /// A head for any stance target: each train and dev item's target text
    /// ([`crate::codebook::conditioning_text`]), read before the item.
    pub targets: Option<(Vec<String>, Vec<String>)>,
}

/// Where a head branches: the encoder layer, and `+<adapter sha256>` when
/// the encoder has an adapter merged (its states are its own in the cache).
struct Branch {
    layer: usize,
    adapter_tag: String,
}

/// Puts each example's target-text states before its own (heads for any
/// target): the target texts are encoded once each.
fn with_targets(
    examples: Vec<Example>,
    targets: &[String],
    enc: &crate::models::encoder::Encoder,
    at: &Branch,
    batch_tokens: usize,
) -> Result<Vec<Example>> {
    let distinct: Vec<&String> = targets
        .iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let items: Items = distinct
        .iter()
        .map(|t| (t.to_string(), Gold::Class(0)))
        .collect();
    let mut first: Vec<Option<Tensor>> = (0..items.len()).map(|_| None).collect();
    for x in layer_examples(&items, enc, at, batch_tokens)? {
        // A target text longer than one window keeps its first.
        first[x.item].get_or_insert(x.states);
    }
    Ok(examples
        .into_iter()
        .map(|x| {
            let k = distinct
                .binary_search(&&targets[x.item])
                .expect("every target encoded");
            let t = first[k].as_ref().expect("every target encoded");
            Example {
                states: Tensor::cat(&[t.shallow_clone(), x.states], 0),
                ..x
            }
        })
        .collect())
}

/// Encodes texts and caches the branch layer's token states per window.
fn layer_examples(
    items: &Items,
    enc: &crate::models::encoder::Encoder,
    at: &Branch,
    batch_tokens: usize,
) -> Result<Vec<Example>> {
    let layer = at.layer;
    let tok = enc.dir.tokenizer()?;
    let shift = enc.prefix.chars().count();
    let mut wins: Vec<(Encoded, Vec<i64>, usize)> = Vec::new();
    for (item, (text, gold)) in items.iter().enumerate() {
        for w in tok.windows(&format!("{}{text}", enc.prefix), tok.max_len / 8)? {
            let labels = match gold {
                Gold::Spans { spans, .. } => token_labels(&w, spans, shift),
                Gold::Class(y) => vec![*y as i64],
            };
            wins.push((w, labels, item));
        }
    }
    let lens: Vec<usize> = wins.iter().map(|w| w.0.len()).collect();
    let mut states: Vec<Option<tch::Tensor>> = (0..wins.len()).map(|_| None).collect();
    // A sweep over heads and options encodes each text once.
    let cache = FeatureCache::open(&enc.dir.weights_sha256()?)?.enabled();
    let kind = format!("layer{layer}{}/f32/cpu", at.adapter_tag);
    let keys: Vec<String> = wins
        .iter()
        .map(|w| FeatureCache::key(&kind, &w.0))
        .collect();
    let hidden = enc.config.hidden_size;
    let mut todo = vec![];
    for (i, k) in keys.iter().enumerate() {
        match cache.as_ref().and_then(|c| c.get(k)) {
            Some(v) if v.len() as i64 == lens[i] as i64 * hidden => {
                states[i] = Some(tch::Tensor::from_slice(&v).view([lens[i] as i64, hidden]));
            }
            _ => todo.push(i),
        }
    }
    let todo_lens: Vec<usize> = todo.iter().map(|&i| lens[i]).collect();
    for b in batch::plan(&todo_lens, batch_tokens) {
        let items: Vec<&Encoded> = b.iter().map(|&j| &wins[todo[j]].0).collect();
        let padded = batch::pad(&items, enc.dir.pad_id, enc.dir.max_len, tch::Device::Cpu);
        let (_, h) = enc.forward_layers(&padded, &[layer])?;
        for (r, &j) in b.iter().enumerate() {
            let i = todo[j];
            let t = h[0].get(r as i64).narrow(0, 0, lens[i] as i64).copy();
            if let Some(c) = &cache {
                let v = Vec::<f32>::try_from(t.flatten(0, -1))?;
                c.put(&keys[i], &v);
            }
            states[i] = Some(t);
        }
    }
    if let Some(c) = &cache {
        c.trim();
    }
    Ok(wins
        .into_iter()
        .zip(states)
        .map(|((_, labels, item), s)| Example {
            states: s.expect("every window encoded"),
            labels,
            item,
            unannotated: match &items[item].1 {
                Gold::Spans { unannotated, .. } => unannotated.clone(),
                Gold::Class(_) => vec![],
            },
        })
        .collect())
}

/// A fresh head's record: what it reads and how it is trained.
fn new_meta(
    spec: &Spec,
    layer: usize,
    k: usize,
    items: usize,
) -> Result<crate::models::head::HeadMeta> {
    use crate::models::head::{HeadMeta, Hyper};
    let o = &spec.options;
    let pooled = spec.kind != HeadKind::Ner;
    let class_weights = pooled && spec.class_weights;
    let dir = spec.encoder;
    Ok(HeadMeta {
        kind: spec.kind,
        task: spec.task.clone(),
        labels: spec.names.clone(),
        encoder_id: dir.id.clone(),
        encoder_sha256: dir.weights_sha256()?,
        features: format!(
            "token states of encoder layer {layer}{}{}, then {k} tuned layers{}",
            if spec.adapter.is_some() {
                " (adapter merged)"
            } else {
                ""
            },
            if spec.targets.is_some() {
                ", the target text's before the paragraph's"
            } else {
                ""
            },
            if pooled { ", mean-pooled" } else { "" }
        ),
        temperature: 1.0,
        train_sha256: spec.train_sha256.clone(),
        train_items: items,
        hyper: Hyper {
            epochs: 0,
            learning_rate: o.learning_rate,
            weight_decay: o.weight_decay,
            class_weights,
            seed: o.seed,
            layer_learning_rate: Some(o.layer_learning_rate),
            batch_size: Some(o.batch_size),
            steps: None,
        },
        dev: None,
        layer: Some(layer),
        tune_layers: Some(k),
        dev_entity_f1: None,
        adapter_sha256: spec.adapter.as_ref().map(|a| a.1.clone()),
        target_text: None,
    })
}

/// Copies a trained head's weights into `head`, which must have its shape.
fn start_from(
    head: &mut TunedHead,
    from: &std::path::Path,
    enc: &crate::models::ModelDir,
) -> Result<()> {
    let old = TunedHead::load(from, enc, tch::Device::Cpu)?;
    let (a, b) = (&old.meta, &head.meta);
    if (a.layer, a.tune_layers, &a.labels) != (b.layer, b.tune_layers, &b.labels) {
        return Err(crate::error::Error::model(
            from,
            format!(
                "--init: layer {:?}, {:?} tuned layers, labels {:?}; this run trains layer {:?}, {:?}, {:?}",
                a.layer, a.tune_layers, a.labels, b.layer, b.tune_layers, b.labels
            ),
        ));
    }
    restore(&head.vs, &snapshot(&old.vs));
    Ok(())
}

/// The f32 encoder on the CPU, with the spec's adapter merged.
fn encoder(spec: &Spec) -> Result<crate::models::encoder::Encoder> {
    let mut enc = crate::models::encoder::Encoder::load(
        spec.encoder,
        tch::Device::Cpu,
        crate::models::DType::F32,
        true,
    )?;
    if let Some((dir, _)) = &spec.adapter {
        crate::models::lora::Adapter::load(dir, &enc.config)?.merge_into(&mut enc)?;
    }
    Ok(enc)
}

/// Copies the encoder's layers above the branch layer, fits them and the
/// classifier on cached branch-layer states, and returns the head (its
/// `meta` holds the figures early stopping chose) with the fit.
pub fn train(
    spec: &Spec,
    train_items: &Items,
    dev_items: &Items,
    report: &dyn Fn(&str),
) -> Result<(TunedHead, Fitted)> {
    use crate::error::Error;
    let o = &spec.options;
    if o.epochs == 0 || o.batch_size == 0 {
        return Err(Error::Config(
            "--epochs and --batch-size must be > 0".into(),
        ));
    }
    let dir = spec.encoder;
    let enc = encoder(spec)?;
    let n = enc.num_layers();
    let k = spec.tune_layers;
    let layer = spec.layer.unwrap_or(n.saturating_sub(k));
    if layer == 0 || layer + k > n {
        return Err(Error::Config(format!(
            "--layer {layer} with --tune-layers {k}: the encoder has layers 1..={n}, and the head needs layer + tune-layers <= {n}"
        )));
    }
    report(&format!(
        "branch at encoder layer {layer} of {n}, tuning {k} layers; encoding"
    ));
    let at = Branch {
        layer,
        adapter_tag: spec
            .adapter
            .as_ref()
            .map_or(String::new(), |a| format!("+{}", a.1)),
    };
    let mut train_x = layer_examples(train_items, &enc, &at, spec.batch_tokens)?;
    let mut dev_x = layer_examples(dev_items, &enc, &at, spec.batch_tokens)?;
    if let Some((t, d)) = &spec.targets {
        train_x = with_targets(train_x, t, &enc, &at, spec.batch_tokens)?;
        dev_x = with_targets(dev_x, d, &enc, &at, spec.batch_tokens)?;
    }
    let pooled = spec.kind != HeadKind::Ner;
    let class_weights = pooled && spec.class_weights;
    let meta = new_meta(spec, layer, k, train_items.len())?;
    tch::manual_seed(o.seed as i64);
    let mut head = TunedHead::new(meta, &enc.config, tch::Device::Cpu);
    match &spec.init {
        Some(from) => start_from(&mut head, from, dir)?,
        None => {
            let init: Vec<_> = (layer..layer + k).map(|i| enc.layer_weights(i)).collect();
            head.init_layers(&init)?;
        }
    }
    drop(enc);
    let scheme = if pooled {
        None
    } else {
        Some(NerScheme::from_labels(&spec.names, &dir.path)?)
    };
    let target = if pooled {
        let ys: Vec<usize> = train_x.iter().map(|e| e.labels[0] as usize).collect();
        Target::Classes(
            &spec.names,
            crate::train::class_weights(&ys, spec.names.len(), class_weights),
        )
    } else {
        Target::Entities(scheme.as_ref().expect("NER scheme"))
    };
    let bar = crate::progress::Progress::new(crate::progress::Mode::auto(false), "steps", false);
    let fitted = fit(&mut head, &train_x, &dev_x, &target, o, &bar)?;
    bar.finish();
    head.meta.hyper.epochs = fitted.epochs;
    if pooled {
        if let Some((t, figures)) = &fitted.temperature {
            head.meta.temperature = *t as f32;
            head.meta.dev = Some(figures.clone());
        }
    } else {
        head.meta.dev_entity_f1 = fitted.dev_f1;
    }
    Ok((head, fitted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(len: i64, unannotated: Vec<usize>) -> Example {
        Example {
            states: Tensor::zeros([len, 4], (Kind::Float, tch::Device::Cpu)),
            labels: vec![0; len as usize],
            item: 0,
            unannotated,
        }
    }

    #[test]
    fn a_source_without_a_type_has_only_that_types_labels_masked() {
        let labels: Vec<String> = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
            .map(String::from)
            .into();
        let types = ["LOC".to_string(), "MISC".to_string()];
        let lt = label_types(&labels, &types);
        assert_eq!(lt, [None, Some(0), Some(0), Some(1), Some(1)]);
        // Row 0 annotates everything, row 1 has no MISC.
        let ex = [example(3, vec![]), example(3, vec![1])];
        let b = batches(&ex, 8, &lt, false);
        assert_eq!(b.len(), 1);
        let m = b[0].types.as_ref().expect("a row lacks a type");
        assert_eq!(m.size(), [2, 1, 5]);
        let m = Vec::<f32>::try_from(m.view([-1])).unwrap();
        assert_eq!(&m[..5], &[0.0; 5]);
        assert_eq!(&m[5..], &[0.0, 0.0, 0.0, -1e4, -1e4]);
        // Nothing to mask: no mask tensor at all.
        let b = batches(&[example(2, vec![]), example(3, vec![])], 8, &lt, false);
        assert!(b[0].types.is_none());
    }
}
