//! Inference: the model threads and the work they are sent.
//!
//! Each model lives on its own thread (tch tensors are `Send`, not `Sync`)
//! and is fed length-sorted batches through a bounded channel. Every item is
//! keyed ([`Key`]), and replies carry their keys, so outputs never depend on
//! how items were batched. Heads with tuned layers ride on the encoder's one
//! pass: they read a layer's token states from the same forward.

use crate::batch;
use crate::cache::FeatureCache;
use crate::error::{Error, Result};
use crate::models::classifier::SeqClassifier;
use crate::models::encoder::Encoder;
use crate::models::head::HeadMeta;
use crate::models::token::TokenClassifier;
use crate::models::tuned_head::TunedHead;
use crate::models::{DType, ModelDir};
use crate::tokenize::{Encoded, Tok};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tch::Device;

/// What a model output belongs to. `para` indexes the window's paragraphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// Paragraph window embedding.
    Emb { para: u32, win: u16 },
    /// Embedding of codebook text `i` (topic labels, stance anchors).
    Anchor(u32),
    /// NLI logits of paragraph window × hypothesis.
    Nli { para: u32, hyp: u32, win: u16 },
    /// NER probabilities of paragraph window.
    Ner { para: u32, win: u16 },
    /// NER-head probabilities of paragraph window, from the encoder pass.
    HeadNer { para: u32, win: u16 },
    /// Logits of tuned topic/stance head `head` (index in the job's tuned heads).
    Tuned { head: u16, para: u32, win: u16 },
}

impl Key {
    fn with_window(self, win: u16) -> Key {
        match self {
            Key::Emb { para, .. } => Key::Emb { para, win },
            Key::Nli { para, hyp, .. } => Key::Nli { para, hyp, win },
            Key::Ner { para, .. } => Key::Ner { para, win },
            Key::HeadNer { para, .. } => Key::HeadNer { para, win },
            Key::Tuned { head, para, .. } => Key::Tuned { head, para, win },
            a @ Key::Anchor(_) => a,
        }
    }

    fn para(self) -> Option<u32> {
        match self {
            Key::Emb { para, .. }
            | Key::Nli { para, .. }
            | Key::Ner { para, .. }
            | Key::HeadNer { para, .. }
            | Key::Tuned { para, .. } => Some(para),
            Key::Anchor(_) => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Target {
    Encoder,
    Nli,
    Ner,
}

/// A unit of work before tokenizing: the text, an optional hypothesis, and the
/// key of its first window.
pub struct Work<'a> {
    pub target: Target,
    pub key: Key,
    pub text: std::borrow::Cow<'a, str>,
    pub hypothesis: Option<&'a str>,
}

/// Per paragraph, whether the encoder runs each tuned head on it: a head
/// for one stance target runs only where the paragraph is scored for that
/// target (eval scores each gold row on its own targets). Empty: every
/// head on every paragraph.
pub type Wants = Vec<Vec<bool>>;

/// Work tokenized into model windows, grouped per model.
#[derive(Default)]
pub struct Tokenized {
    items: Vec<(Target, Vec<(Key, Encoded)>)>,
    /// Which tuned heads each paragraph needs.
    pub wants: Arc<Wants>,
    /// Most windows any model needed for a paragraph.
    windows_of: HashMap<u32, u16>,
    /// Windows per paragraph, to tell when a paragraph is done.
    pending: HashMap<u32, usize>,
}

impl Tokenized {
    pub fn is_empty(&self) -> bool {
        self.items.iter().all(|(_, v)| v.is_empty())
    }
}

/// The tokenizer of each model the job runs.
pub struct Tokenizers(HashMap<Target, Tok>);

impl Tokenizers {
    pub fn load(models: &[(Target, &ModelDir)]) -> Result<Tokenizers> {
        let mut m = HashMap::new();
        for (t, d) in models {
            m.insert(*t, d.tokenizer()?);
        }
        Ok(Tokenizers(m))
    }

    /// Tokenizes `work` in parallel into windows (a long text gets several,
    /// overlapping by an eighth; an NLI hypothesis is never cut).
    pub fn tokenize(&self, work: &[Work]) -> Result<Tokenized> {
        let encoded: Vec<Vec<(Key, Encoded)>> = work
            .par_iter()
            .map(|w| {
                let tok = &self.0[&w.target];
                let overlap = tok.max_len / 8;
                let wins = match w.hypothesis {
                    Some(h) => tok.pair_windows(&w.text, h, overlap)?,
                    None => tok.windows(&w.text, overlap)?,
                };
                Ok(wins
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| (w.key.with_window(i as u16), e))
                    .collect())
            })
            .collect::<Result<_>>()?;
        let mut t = Tokenized::default();
        let mut per: HashMap<Target, Vec<(Key, Encoded)>> = HashMap::new();
        for (w, encs) in work.iter().zip(encoded) {
            if let Some(p) = w.key.para() {
                *t.pending.entry(p).or_default() += encs.len();
                let e = t.windows_of.entry(p).or_default();
                *e = (*e).max(encs.len() as u16);
            }
            per.entry(w.target).or_default().extend(encs);
        }
        let mut items: Vec<_> = per.into_iter().collect();
        items.sort_by_key(|(t, _)| *t);
        t.items = items;
        Ok(t)
    }
}

enum Model {
    /// The encoder, with the tuned heads that read its layers.
    Encoder(Box<Encoder>, Heads),
    Nli(Box<SeqClassifier>),
    Ner(Box<TokenClassifier>),
}

/// The job's tuned heads: each folder loaded once, and the job's uses of
/// them in order. A head for any target has one use per codebook target it
/// answers, with that target text's states (computed once, at load).
struct Heads {
    loaded: Vec<TunedHead>,
    uses: Vec<(usize, Option<tch::Tensor>)>,
}

impl Heads {
    fn load(l: &LoadOwned, d: &ModelDir, enc: &Encoder) -> Result<Heads> {
        let (mut loaded, mut uses): (Vec<TunedHead>, Vec<_>) = (vec![], vec![]);
        let mut dirs: Vec<&PathBuf> = vec![];
        for (dir, meta) in &l.tuned {
            let i = match dirs.iter().position(|x| *x == dir) {
                Some(i) => i,
                None => {
                    loaded.push(TunedHead::load(dir, d, l.device)?);
                    dirs.push(dir);
                    loaded.len() - 1
                }
            };
            let prefix = match &meta.target_text {
                Some(t) => Some(enc.text_states(t, loaded[i].layer())?),
                None => None,
            };
            uses.push((i, prefix));
        }
        Ok(Heads { loaded, uses })
    }
}

type BatchMsg = (Vec<(Key, Encoded)>, Arc<Wants>);
type Entry = (Key, Vec<f32>, Option<Encoded>);

/// One output per batch item, plus outputs that ride along on the same pass
/// (the tuned heads', from the encoder's layer states).
struct Reply {
    items: Vec<Entry>,
    extra: Vec<Entry>,
}
type ReplyMsg = Result<Reply>;

/// Model threads are named with this prefix; their panics become errors.
pub const MODEL_THREAD: &str = "paratag-model-";

/// The models of a job, each on its thread.
pub struct Workers {
    senders: HashMap<Target, Sender<BatchMsg>>,
    replies: Receiver<ReplyMsg>,
    /// Nanoseconds the model threads spent computing, all together.
    busy: Arc<AtomicU64>,
}

/// What a model thread needs to load its model.
pub struct Load<'a> {
    pub device: Device,
    pub dtype: DType,
    pub threads: usize,
    /// Heads with tuned layers, run by the encoder thread.
    pub tuned: &'a [(PathBuf, HeadMeta)],
    /// Merged into the encoder's weights at load.
    pub adapter: Option<&'a std::path::Path>,
}

/// A model ready for its thread: loaded, or (with a cache) loaded on the
/// first input the cache does not hold, so a run the cache answers whole
/// never reads the weights.
enum Slot {
    Ready(Model),
    Lazy(Option<Box<dyn FnOnce() -> Result<Model> + Send>>),
}

/// What one model thread serves.
struct Served {
    slot: Slot,
    dir: ModelDir,
    /// Per tuned head (encoder only): whether it is pooled (else NER).
    pooled: Vec<bool>,
    /// The cache and the kind of each output: the model's, then each head's.
    cache: Option<(FeatureCache, Vec<String>)>,
}

/// The job's models, before their threads start.
pub struct Models(Vec<(Target, Served)>);

fn load_model(t: Target, d: &ModelDir, l: &LoadOwned) -> Result<Model> {
    Ok(match t {
        Target::Encoder => {
            let mut enc = Encoder::load(d, l.device, l.dtype, !l.tuned.is_empty())?;
            if let Some(a) = &l.adapter {
                crate::models::lora::Adapter::load(a, &enc.config)?.merge_into(&mut enc)?;
            }
            let heads = Heads::load(l, d, &enc)?;
            Model::Encoder(Box::new(enc), heads)
        }
        Target::Nli => Model::Nli(Box::new(SeqClassifier::load(d, l.device, l.dtype)?)),
        Target::Ner => Model::Ner(Box::new(TokenClassifier::load(d, l.device, l.dtype)?)),
    })
}

/// [`Load`] with owned parts, for a loader that runs later on the thread.
#[derive(Clone)]
struct LoadOwned {
    device: Device,
    dtype: DType,
    tuned: Vec<(PathBuf, HeadMeta)>,
    adapter: Option<PathBuf>,
}

impl Models {
    /// Loads each model now (fails before any thread runs), or with `cache`
    /// prepares each to load when the cache first misses.
    pub fn load(models: &[(Target, &ModelDir)], l: &Load, cache: bool) -> Result<Models> {
        // Loading runs beside the tokenizer loader on small machines: with
        // libtorch's OpenMP team of `threads`, every fill and copy waited for
        // the core the tokenizer held (10-paragraph job on 2 cores: 1.85 s
        // median, 1.6 s loading on one thread). The model threads set their
        // own count.
        let threads = tch::get_num_threads();
        tch::set_num_threads(1);
        let out = Self::load_each(models, l, cache);
        tch::set_num_threads(threads);
        out
    }

    fn load_each(models: &[(Target, &ModelDir)], l: &Load, cache: bool) -> Result<Models> {
        let owned = LoadOwned {
            device: l.device,
            dtype: l.dtype,
            tuned: l.tuned.to_vec(),
            adapter: l.adapter.map(PathBuf::from),
        };
        let mut out = vec![];
        for &(t, d) in models {
            let tuned: &[(PathBuf, HeadMeta)] = if t == Target::Encoder { l.tuned } else { &[] };
            let pooled = tuned
                .iter()
                .map(|(_, m)| m.kind != crate::task::HeadKind::Ner)
                .collect();
            let cache = if cache {
                let sha = d.weights_sha256()?;
                let tag = format!(
                    "{:?}/{:?}/{}",
                    l.dtype,
                    l.device,
                    crate::models::encoder::FORWARD_VERSION
                )
                .to_lowercase();
                let mut kinds = vec![format!("{t:?}/{tag}")];
                // An adapted encoder's outputs are its own.
                if let (Target::Encoder, Some(a)) = (t, l.adapter) {
                    kinds[0] = format!("{t:?}+{}/{tag}", crate::models::lora::weights_sha256(a)?);
                }
                for (dir, meta) in tuned {
                    let w =
                        crate::cache::file_sha256(&dir.join(crate::models::head::WEIGHTS_FILE))?;
                    let m = crate::cache::file_sha256(&dir.join(crate::models::head::META_FILE))?;
                    // A head for any target gives each target its own outputs.
                    let t = meta.target_text.as_ref().map_or(String::new(), |t| {
                        format!(":{}", crate::hash::sha256_bytes(t.as_bytes()))
                    });
                    kinds.push(format!("head:{w}:{m}{t}/{tag}"));
                }
                FeatureCache::open(&sha)?.enabled().map(|c| (c, kinds))
            } else {
                None
            };
            let slot = if cache.is_some() {
                let (d2, o2) = (d.clone(), owned.clone());
                Slot::Lazy(Some(Box::new(move || load_model(t, &d2, &o2))))
            } else {
                Slot::Ready(load_model(t, d, &owned)?)
            };
            out.push((
                t,
                Served {
                    slot,
                    dir: d.clone(),
                    pooled,
                    cache,
                },
            ));
        }
        Ok(Models(out))
    }
}

impl Workers {
    /// Starts one thread per model.
    pub fn spawn<'s, 'e>(
        s: &'s std::thread::Scope<'s, 'e>,
        models: Models,
        l: &Load,
    ) -> Result<Workers> {
        let (reply_tx, replies) = unbounded();
        let mut senders = HashMap::new();
        let busy = Arc::new(AtomicU64::new(0));
        for (t, served) in models.0 {
            let (tx, rx) = bounded::<BatchMsg>(4);
            senders.insert(t, tx);
            let reply_tx = reply_tx.clone();
            let (threads, device, busy) = (l.threads, l.device, busy.clone());
            std::thread::Builder::new()
                .name(format!("{MODEL_THREAD}{t:?}"))
                .spawn_scoped(s, move || {
                    serve(served, rx, reply_tx, threads, device, &busy)
                })
                .map_err(|e| Error::Config(format!("cannot start a model thread: {e}")))?;
        }
        Ok(Workers {
            senders,
            replies,
            busy,
        })
    }

    /// Time the models have spent computing so far (loading and cache hits
    /// left out), summed over the model threads.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy.load(Ordering::Relaxed))
    }

    /// Batches `t` per model under `budget` padded tokens, sends the batches
    /// and collects every reply; `done` is told each time a paragraph's last
    /// window comes back.
    pub fn run(&self, t: Tokenized, budget: usize, done: &dyn Fn()) -> Result<Outputs> {
        let mut out = Outputs {
            windows_of: t.windows_of,
            ..Default::default()
        };
        let mut pending = t.pending;
        let total: usize = t.items.iter().map(|(_, v)| v.len()).sum();
        let wants = t.wants;
        std::thread::scope(|s| -> Result<()> {
            let producer = s.spawn(move || {
                for (target, items) in t.items {
                    let lens: Vec<usize> = items.iter().map(|(_, e)| e.len()).collect();
                    let mut slots: Vec<Option<(Key, Encoded)>> =
                        items.into_iter().map(Some).collect();
                    for b in batch::plan(&lens, budget) {
                        let items = b
                            .iter()
                            .map(|&i| slots[i].take().expect("each item once"))
                            .collect();
                        let msg: BatchMsg = (items, wants.clone());
                        if self.senders[&target].send(msg).is_err() {
                            return; // the worker failed; its error arrives as a reply
                        }
                    }
                }
            });
            let mut got = 0;
            while got < total {
                let reply = self
                    .replies
                    .recv()
                    .map_err(|_| Error::Config("a model thread stopped".into()))??;
                got += reply.items.len();
                out.values
                    .extend(reply.extra.into_iter().map(|(k, v, e)| (k, (v, e))));
                for (key, values, enc) in reply.items {
                    if let Some(p) = key.para() {
                        let left = pending.get_mut(&p).expect("pending paragraph");
                        *left -= 1;
                        if *left == 0 {
                            done();
                        }
                    }
                    out.values.insert(key, (values, enc));
                }
            }
            producer.join().expect("producer thread");
            Ok(())
        })?;
        Ok(out)
    }
}

/// Per item of a batch: the model's output, then each tuned head's (`None`
/// where the item does not want the head).
type ItemOutputs = Vec<Option<Vec<f32>>>;

/// Per item, which outputs it wants: the model's always; a tuned head's
/// where [`Wants`] asks for it (paragraph windows only, never anchors).
fn wanted(batch: &[(Key, Encoded)], wants: &Wants, heads: usize) -> Vec<Vec<bool>> {
    batch
        .iter()
        .map(|(k, _)| {
            let para = match k {
                Key::Emb { para, .. } => Some(*para as usize),
                _ => None,
            };
            let head = |h: usize| {
                para.is_some_and(|p| {
                    wants
                        .get(p)
                        .is_none_or(|w| w.get(h).copied().unwrap_or(true))
                })
            };
            std::iter::once(true).chain((0..heads).map(head)).collect()
        })
        .collect()
}

/// Runs `model` on `items` (one padded batch); `want[i]` as [`wanted`].
fn compute(
    model: &Model,
    dir: &ModelDir,
    items: &[&Encoded],
    want: &[&[bool]],
    device: Device,
) -> Result<Vec<ItemOutputs>> {
    let padded = batch::pad(items, dir.pad_id, dir.max_len, device);
    let lens: Vec<usize> = items.iter().map(|e| e.len()).collect();
    let main = match model {
        Model::Encoder(m, heads) => {
            // One pass; each tuned head reads the layer it branches from.
            let layers: Vec<usize> = heads.loaded.iter().map(TunedHead::layer).collect();
            let (pooled, states) = m.forward_layers(&padded, &layers)?;
            let mut out: Vec<ItemOutputs> = crate::models::rows(&pooled, &[])?
                .into_iter()
                .map(|r| {
                    std::iter::once(Some(r))
                        .chain(heads.uses.iter().map(|_| None))
                        .collect()
                })
                .collect();
            for (h, (i, prefix)) in heads.uses.iter().enumerate() {
                let rows: Vec<usize> = (0..items.len()).filter(|&r| want[r][1 + h]).collect();
                let run = HeadRun {
                    head: &heads.loaded[*i],
                    prefix: prefix.as_ref(),
                };
                for (r, v) in run.rows(&states[*i], &padded.mask, &rows, &lens)? {
                    out[r][1 + h] = Some(v);
                }
            }
            return Ok(out);
        }
        Model::Nli(m) => crate::models::rows(&m.forward(&padded)?, &[])?,
        Model::Ner(m) => {
            crate::models::rows(&m.forward(&padded)?.softmax(-1, tch::Kind::Float), &lens)?
        }
    };
    Ok(main.into_iter().map(|row| vec![Some(row)]).collect())
}

/// One use of a tuned head.
struct HeadRun<'a> {
    head: &'a TunedHead,
    prefix: Option<&'a tch::Tensor>,
}

impl HeadRun<'_> {
    /// Outputs for batch rows `rows` (states `[batch, seq, hidden]`): per
    /// row, its logits (pooled) or token probabilities (NER).
    fn rows(
        &self,
        states: &tch::Tensor,
        mask: &tch::Tensor,
        rows: &[usize],
        lens: &[usize],
    ) -> Result<Vec<(usize, Vec<f32>)>> {
        if rows.is_empty() {
            return Ok(vec![]);
        }
        // Every row (tagging): the states as they are, no copy.
        let (st, m) = if rows.len() as i64 == states.size()[0] {
            (states.shallow_clone(), mask.shallow_clone())
        } else {
            let idx: Vec<i64> = rows.iter().map(|&i| i as i64).collect();
            let idx = tch::Tensor::from_slice(&idx).to_device(states.device());
            (states.index_select(0, &idx), mask.index_select(0, &idx))
        };
        let head = self.head;
        let t = tch::no_grad(|| head.forward_prefixed(self.prefix, &st, &m));
        let values = if head.pooled {
            crate::models::rows(&t, &[])?
        } else {
            let lens: Vec<usize> = rows.iter().map(|&i| lens[i]).collect();
            crate::models::rows(&t.softmax(-1, tch::Kind::Float), &lens)?
        };
        Ok(rows.iter().copied().zip(values).collect())
    }
}

/// One batch's outputs: from the feature cache where it has them, else
/// computed (the model loads on the first miss); tuned heads' outputs ride
/// along as extra entries.
fn answer(
    served: &mut Served,
    (batch, wants): &BatchMsg,
    device: Device,
    busy: &AtomicU64,
    ner_model: bool,
) -> ReplyMsg {
    let dir = served.dir.clone();
    let want = wanted(batch, wants, served.pooled.len());
    let keys: Vec<Vec<String>> = match &served.cache {
        Some((_, kinds)) => batch
            .iter()
            .map(|(_, e)| kinds.iter().map(|k| FeatureCache::key(k, e)).collect())
            .collect(),
        None => vec![],
    };
    // An item is answered from the cache when it holds every output wanted.
    let mut outs: Vec<Option<ItemOutputs>> = (0..batch.len())
        .map(|i| {
            let (c, _) = served.cache.as_ref()?;
            keys[i]
                .iter()
                .zip(&want[i])
                .map(|(k, &w)| if w { c.get(k).map(Some) } else { Some(None) })
                .collect()
        })
        .collect();
    let miss: Vec<usize> = (0..batch.len()).filter(|&i| outs[i].is_none()).collect();
    if !miss.is_empty() {
        if let Slot::Lazy(f) = &mut served.slot {
            let load = f.take().expect("a model loads once");
            served.slot = Slot::Ready(load()?);
        }
        let Slot::Ready(model) = &served.slot else {
            unreachable!("loaded above")
        };
        let items: Vec<&Encoded> = miss.iter().map(|&i| &batch[i].1).collect();
        let w: Vec<&[bool]> = miss.iter().map(|&i| want[i].as_slice()).collect();
        let started = Instant::now();
        let computed = compute(model, &dir, &items, &w, device)?;
        busy.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        for (&i, o) in miss.iter().zip(computed) {
            if let Some((c, _)) = &served.cache {
                for (k, v) in keys[i].iter().zip(&o) {
                    if let Some(v) = v {
                        c.put(k, v);
                    }
                }
            }
            outs[i] = Some(o);
        }
    }
    Ok(reply(batch, outs, &served.pooled, ner_model))
}

/// The reply: each item's model output, and its tuned heads' as extras.
fn reply(
    batch: &[(Key, Encoded)],
    outs: Vec<Option<ItemOutputs>>,
    pooled: &[bool],
    ner_model: bool,
) -> Reply {
    let mut items = Vec::with_capacity(batch.len());
    let mut extra = vec![];
    for ((k, e), o) in batch.iter().zip(outs) {
        let mut o = o.expect("computed or cached").into_iter();
        let main = o.next().flatten().expect("the model's output");
        items.push((*k, main, ner_model.then(|| e.clone())));
        for (h, v) in o.enumerate() {
            let (Key::Emb { para, win }, Some(v)) = (*k, v) else {
                continue;
            };
            extra.push(if pooled[h] {
                let head = h as u16;
                (Key::Tuned { head, para, win }, v, None)
            } else {
                (Key::HeadNer { para, win }, v, Some(e.clone()))
            });
        }
    }
    Reply { items, extra }
}

fn serve(
    mut served: Served,
    rx: Receiver<BatchMsg>,
    tx: Sender<ReplyMsg>,
    threads: usize,
    device: Device,
    busy: &AtomicU64,
) {
    tch::set_num_threads(threads as i32);
    let dir = served.dir.clone();
    let ner_model = matches!(&served.slot, Slot::Ready(Model::Ner(_)))
        || (served
            .cache
            .as_ref()
            .is_some_and(|c| c.1[0].starts_with("Ner/")));
    for batch in rx {
        // rust-bert panics on torch errors; catch them so the job ends with an
        // error naming the model instead of hanging or aborting.
        let run =
            std::panic::AssertUnwindSafe(|| answer(&mut served, &batch, device, busy, ner_model));
        let reply = std::panic::catch_unwind(run).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown failure".into());
            Err(Error::model(
                &dir.path,
                format!("inference failed: {}", msg.lines().next().unwrap_or("")),
            ))
        });
        let failed = reply.is_err();
        if tx.send(reply).is_err() || failed {
            return;
        }
    }
    if let Some((c, _)) = &served.cache {
        c.trim();
    }
}

// -------------------------------------------------------------- outputs ----

/// Every model output of one window, by key.
#[derive(Default)]
pub struct Outputs {
    values: HashMap<Key, (Vec<f32>, Option<Encoded>)>,
    /// Most windows any model needed for a paragraph.
    pub windows_of: HashMap<u32, u16>,
}

impl Outputs {
    pub fn merge(&mut self, other: Outputs) {
        self.values.extend(other.values);
        for (p, w) in other.windows_of {
            let e = self.windows_of.entry(p).or_default();
            *e = (*e).max(w);
        }
    }

    /// The codebook texts' embeddings, computed once per job.
    pub fn anchors(&self) -> Vec<Vec<f32>> {
        (0u32..)
            .map_while(|i| self.values.get(&Key::Anchor(i)).map(|v| v.0.clone()))
            .collect()
    }

    fn windows_while(&self, f: impl Fn(u16) -> Key) -> Vec<&(Vec<f32>, Option<Encoded>)> {
        (0u16..).map_while(|w| self.values.get(&f(w))).collect()
    }

    fn vectors(&self, f: impl Fn(u16) -> Key) -> Vec<Vec<f32>> {
        self.windows_while(f)
            .into_iter()
            .map(|v| v.0.clone())
            .collect()
    }

    /// The feature trained heads read: the mean of the window embeddings.
    pub fn feature(&self, para: u32) -> Vec<f32> {
        crate::heads::mean_rows(&self.emb_windows(para))
    }

    pub fn emb_windows(&self, para: u32) -> Vec<Vec<f32>> {
        self.vectors(|win| Key::Emb { para, win })
    }

    pub fn tuned_windows(&self, head: u16, para: u32) -> Vec<Vec<f32>> {
        self.vectors(|win| Key::Tuned { head, para, win })
    }

    pub fn nli_windows(&self, para: u32, hyp: u32) -> Vec<Vec<f32>> {
        self.vectors(|win| Key::Nli { para, hyp, win })
    }

    /// The paragraph's NER tokens (from the NER model, or the NER head when
    /// `head`), each taken from the window where it sits most centrally, so
    /// overlapping windows merge without duplicates. `shift` code points of
    /// text prefix are dropped and offsets moved back by it.
    pub fn ner_tokens(&self, para: u32, head: bool, shift: usize) -> Vec<crate::heads::TokenProbs> {
        let wins = if head {
            self.windows_while(|win| Key::HeadNer { para, win })
        } else {
            self.windows_while(|win| Key::Ner { para, win })
        };
        let mut best: std::collections::BTreeMap<usize, (usize, crate::heads::TokenProbs)> =
            Default::default();
        for (probs, enc) in wins {
            let enc = enc.as_ref().expect("NER replies keep their encoding");
            let n_labels = probs.len() / enc.len().max(1);
            let content: Vec<usize> = (0..enc.len()).filter(|&i| enc.content[i]).collect();
            for (j, &i) in content.iter().enumerate() {
                let (start, end) = enc.offsets[i];
                if end <= shift {
                    continue;
                }
                let global = enc.first + j;
                let centrality = j.min(content.len() - 1 - j);
                let tp = crate::heads::TokenProbs {
                    start: start.max(shift) - shift,
                    end: end - shift,
                    word: enc.word_ids[i],
                    probs: probs[i * n_labels..(i + 1) * n_labels].to_vec(),
                };
                match best.get(&global) {
                    Some((c, _)) if *c >= centrality => {}
                    _ => {
                        best.insert(global, (centrality, tp));
                    }
                }
            }
        }
        best.into_values().map(|v| v.1).collect()
    }
}
