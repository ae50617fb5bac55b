//! The whole flow of `paratag tag` on one page:
//!
//! ```text
//! read ─► segment (rayon) ─► lang (rayon) ─► tokenize (rayon) ─► batch ─┬─► [encoder thread] ─┐
//!                                                                      ├─► [NLI thread]     ─┼─► collect ─► heads ─► output
//!                                                                      └─► [NER thread]     ─┘
//! ```
//!
//! Trained heads ride on the encoder thread's one pass: linear heads read the
//! pooled embedding, heads with tuned layers (and the NER head) read one
//! layer's token states from the same forward.
//!
//! Each model lives on its own thread (tch tensors are `Send`, not `Sync`),
//! fed through a bounded channel so tokenizing never runs far ahead of
//! inference. Replies carry their key, so the result never depends on batch
//! order, `--batch-tokens` or `--threads`. Stance targets gated by
//! `only_topics` run in a second pass over the paragraphs whose topic matched.

use crate::batch;
use crate::codebook::{Codebook, Method};
use crate::error::{Error, Result};
use crate::heads::{self, Aggregation, Entity, NerScheme, NliLabels, TokenProbs};
use crate::input::{self, Corpus, ReadOptions};
use crate::models::classifier::SeqClassifier;
use crate::models::encoder::Encoder;
use crate::models::head::{self as head_file, Head, HeadMeta};
use crate::models::token::TokenClassifier;
use crate::models::tuned_head::{self, TunedHead};
use crate::models::{DType, ModelDir, ModelInfo};
use crate::segment::{self, RepeatIndex, SegmentConfig};
use crate::tokenize::{Encoded, Tok};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;
use tch::Device;

pub struct Job {
    pub inputs: Vec<PathBuf>,
    pub read: ReadOptions,
    pub codebook: Option<Codebook>,
    pub encoder: Option<ModelDir>,
    pub nli: Option<ModelDir>,
    pub ner: Option<ModelDir>,
    pub topic: bool,
    pub stance: bool,
    pub threads: usize,
    pub batch_tokens: usize,
    pub device: Device,
    pub dtype: DType,
    pub aggregation: Aggregation,
    pub segment: SegmentConfig,
    pub progress: bool,
    /// Trained heads (`--heads`), each for `topic` or `stance_<id>`.
    pub heads: Vec<Head>,
    /// Trained heads with tuned encoder layers (`--heads`): topic,
    /// `stance_<id>` or the entities. The encoder thread loads them.
    pub tuned: Vec<(PathBuf, HeadMeta)>,
    /// Keep each paragraph's encoder embedding in `Row::embedding` (training).
    pub embeddings: bool,
}

impl Job {
    /// The NER head among the tuned heads.
    pub fn ner_head(&self) -> Option<&(PathBuf, HeadMeta)> {
        self.tuned.iter().find(|t| t.1.kind == tuned_head::KIND)
    }
}

/// One stance decision. All fields are null where the target was not scored
/// (gated out by `only_topics`, or `--no-stance`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stance {
    pub label: Option<&'static str>,
    pub score: Option<f32>,
    /// P(favor) and P(against), kept so `calibrate` can move the threshold.
    pub favor: Option<f32>,
    pub against: Option<f32>,
}

/// One output row.
#[derive(Debug, Clone)]
pub struct Row {
    pub article: usize,
    pub paragraph: u32,
    pub start: u32,
    pub end: u32,
    pub text: String,
    pub lang: String,
    pub lang_score: f32,
    pub topic: Option<String>,
    pub topic_score: Option<f32>,
    pub topic_scores: Option<Vec<(String, f32)>>,
    /// Per stance target, in codebook order.
    pub stances: Vec<Stance>,
    pub entities: Option<Vec<Entity>>,
    pub truncated_windows: u16,
    /// The encoder feature heads read, when `Job::embeddings`.
    pub embedding: Option<Vec<f32>>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub articles: usize,
    pub paragraphs: usize,
    pub dropped_lines: usize,
    pub empty_texts: usize,
    /// Windows over all paragraphs (per paragraph, the most any model needed).
    pub windows: usize,
    pub long_paragraphs: usize,
    pub skipped_rows: Vec<String>,
    pub deduped: usize,
    pub seconds: f64,
}

pub struct Tagged {
    pub corpus: Corpus,
    pub rows: Vec<Row>,
    pub summary: Summary,
    pub models: Vec<ModelInfo>,
    /// Entity types the NER model predicts (empty without NER).
    pub entity_types: Vec<String>,
}

/// How topics and each stance target are scored in this run.
#[derive(Clone, Copy, PartialEq)]
enum Via {
    Nli,
    Embedding,
    Head,
}

pub fn run(job: &Job) -> Result<Tagged> {
    let t0 = Instant::now();
    // Codebook/model mismatches fail before any input is read.
    let plan = Plan::new(job)?;

    // read
    let corpus = input::read_inputs(&job.inputs, &job.read)?;

    // segment + lang, in parallel over articles
    let repeats = RepeatIndex::build(corpus.articles.iter().map(|a| a.text.as_str()));
    let segs: Vec<segment::Segmented> = corpus
        .articles
        .par_iter()
        .map(|a| segment::segment(&a.text, &repeats, &job.segment))
        .collect();
    let mut rows: Vec<Row> = segs
        .iter()
        .enumerate()
        .flat_map(|(a, s)| {
            s.paragraphs.iter().enumerate().map(move |(i, p)| Row {
                article: a,
                paragraph: i as u32,
                start: p.start as u32,
                end: p.end as u32,
                text: p.text.clone(),
                lang: String::new(),
                lang_score: 0.0,
                topic: None,
                topic_score: None,
                topic_scores: None,
                stances: vec![],
                entities: None,
                truncated_windows: 0,
                embedding: None,
            })
        })
        .collect();
    rows.par_iter_mut()
        .for_each(|r| (r.lang, r.lang_score) = crate::lang::detect(&r.text));

    let mut models = Vec::new();
    for (role, dir) in [
        ("encoder", &plan.encoder),
        ("nli", &plan.nli),
        ("ner", &plan.ner),
    ] {
        if let Some(d) = dir {
            models.push(d.info(role)?);
        }
    }

    // tokenize ─► batch ─► infer, one thread per model
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let out = std::thread::scope(|s| -> Result<Outputs> {
        let workers = Workers::spawn(s, job, &plan)?;
        let bar = progress_bar(job.progress, texts.len());
        let mut out = workers.infer(&plan.stage_a(&texts), job.batch_tokens, &bar)?;
        // Second pass: stance targets gated on topics.
        let topics = plan.topic_results(&out, texts.len());
        bar.finish_and_clear();
        let gated = plan.stage_b(&texts, &topics);
        if !gated.is_empty() {
            let paras: std::collections::HashSet<_> =
                gated.iter().filter_map(|w| para_of(w.key)).collect();
            let bar = progress_bar(job.progress, paras.len());
            let more = workers.infer(&gated, job.batch_tokens, &bar)?;
            bar.finish_and_clear();
            out.merge(more);
        }
        out.topics = Some(topics);
        Ok(out)
    })?;

    // heads: labels from the raw outputs, per paragraph
    plan.apply(&mut rows, &out)?;

    let summary = Summary {
        articles: corpus.articles.len(),
        paragraphs: rows.len(),
        dropped_lines: segs.iter().map(|s| s.dropped_lines).sum(),
        empty_texts: corpus
            .articles
            .iter()
            .filter(|a| a.text.trim().is_empty())
            .count(),
        windows: out.windows_of.values().map(|&w| w as usize).sum(),
        long_paragraphs: rows.iter().filter(|r| r.truncated_windows > 0).count(),
        skipped_rows: corpus.skipped_rows.clone(),
        deduped: corpus.deduped,
        seconds: t0.elapsed().as_secs_f64(),
    };
    Ok(Tagged {
        corpus,
        rows,
        summary,
        models,
        entity_types: plan
            .scheme
            .as_ref()
            .map(|s| s.types.clone())
            .unwrap_or_default(),
    })
}

fn progress_bar(show: bool, n: usize) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let bar = ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr());
    if !show {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} paragraphs  {per_sec}  ETA {eta}")
            .expect("static template"),
    );
    bar
}

// ------------------------------------------------------------ requests -----

/// What a model output belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
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
    /// Logits of tuned topic/stance head `head` (index in `Job::tuned`).
    Tuned { head: u16, para: u32, win: u16 },
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Target {
    Encoder,
    Nli,
    Ner,
}

/// A unit of work before tokenizing: the text, an optional hypothesis, and the
/// key of its first window.
struct Work<'a> {
    target: Target,
    key: Key,
    text: std::borrow::Cow<'a, str>,
    hypothesis: Option<&'a str>,
}

struct Plan<'j> {
    job: &'j Job,
    cb: Option<&'j Codebook>,
    encoder: Option<ModelDir>,
    nli: Option<ModelDir>,
    ner: Option<ModelDir>,
    topic_via: Option<Via>,
    stance_via: Vec<Via>,
    nli_labels: Option<NliLabels>,
    scheme: Option<NerScheme>,
    /// NLI hypotheses: topics first, then favor/against of each NLI target.
    hypotheses: Vec<String>,
    /// Encoder anchor texts: topic texts first, then favor/against/neutral of each embedding target.
    anchors: Vec<String>,
    prefix: String,
}

impl<'j> Plan<'j> {
    fn new(job: &'j Job) -> Result<Plan<'j>> {
        let cb = job.codebook.as_ref();
        let choose = |m: Method, what: &str, task: &str| -> Result<Via> {
            let head = job.heads.iter().any(|h| h.meta.task == task)
                || job.tuned.iter().any(|t| t.1.task == task);
            match (m, head) {
                (Method::Head, true) | (Method::Auto, true) => return Ok(Via::Head),
                (Method::Head, false) => {
                    return Err(Error::Config(format!(
                        "{what} uses method \"head\" but no --heads folder is for `{task}`"
                    )))
                }
                _ => {}
            }
            if job.encoder.is_none() && head {
                return Err(Error::Config(format!("{what}: heads need --encoder")));
            }
            match (m, &job.nli, &job.encoder) {
                (Method::Nli, Some(_), _) | (Method::Auto, Some(_), _) => Ok(Via::Nli),
                (Method::Embedding, _, Some(_)) | (Method::Auto, None, Some(_)) => {
                    Ok(Via::Embedding)
                }
                (Method::Nli, None, _) => Err(Error::Config(format!(
                    "{what} uses method \"nli\" but no --nli model was given"
                ))),
                _ => Err(Error::Config(format!(
                    "{what} needs a model: pass --encoder DIR or --nli DIR"
                ))),
            }
        };
        let mut topic_via = None;
        let mut stance_via = vec![];
        if let Some(cb) = cb {
            if job.topic && !cb.topics.topics.is_empty() {
                topic_via = Some(choose(cb.topics.method, "[topics]", "topic")?);
            }
            if job.stance {
                for s in &cb.stances {
                    if s.only_topics.is_some() && topic_via.is_none() {
                        return Err(Error::Config(format!(
                            "stance `{}` is gated by only_topics, which needs topics (drop --no-topic or the gate)",
                            s.id
                        )));
                    }
                    stance_via.push(choose(
                        s.method,
                        &format!("stance `{}`", s.id),
                        &format!("stance_{}", s.id),
                    )?);
                }
            }
        }
        let uses = |v: Via| topic_via == Some(v) || stance_via.contains(&v);
        let nli = if uses(Via::Nli) {
            job.nli.clone()
        } else {
            None
        };
        if job.ner.is_some() && job.ner_head().is_some() {
            return Err(Error::Config(
                "both --ner and an NER head were given; pass one".into(),
            ));
        }
        if job.ner_head().is_some() && job.encoder.is_none() {
            return Err(Error::Config("the NER head needs --encoder".into()));
        }
        let encoder = if uses(Via::Embedding)
            || uses(Via::Head)
            || job.embeddings
            || job.ner_head().is_some()
        {
            job.encoder.clone()
        } else {
            None
        };
        let nli_labels = match &nli {
            Some(d) => Some(heads::nli_labels(&d.labels, &d.path)?),
            None => None,
        };
        let scheme = match (&job.ner, job.ner_head()) {
            (Some(d), _) => Some(NerScheme::from_labels(&d.labels, &d.path)?),
            (None, Some((dir, meta))) => Some(NerScheme::from_labels(&meta.labels, dir)?),
            (None, None) => None,
        };
        let mut hypotheses = vec![];
        let mut anchors = vec![];
        if let Some(cb) = cb {
            match topic_via {
                Some(Via::Nli) => {
                    hypotheses.extend(cb.topics.topics.iter().map(|t| t.hypothesis.clone()))
                }
                Some(Via::Embedding) => {
                    anchors.extend(cb.topics.topics.iter().map(|t| t.embedding_text.clone()))
                }
                Some(Via::Head) | None => {}
            }
            for (s, via) in cb.stances.iter().zip(&stance_via) {
                match via {
                    Via::Nli => hypotheses.extend([s.favor.clone(), s.against.clone()]),
                    Via::Embedding => {
                        anchors.extend([s.favor.clone(), s.against.clone(), s.neutral.clone()])
                    }
                    Via::Head => {}
                }
            }
        }
        let prefix = encoder
            .as_ref()
            .map(ModelDir::text_prefix)
            .unwrap_or_default();
        Ok(Plan {
            job,
            cb,
            encoder,
            nli,
            ner: job.ner.clone(),
            topic_via,
            stance_via,
            nli_labels,
            scheme,
            hypotheses,
            anchors,
            prefix,
        })
    }

    /// The labels and probabilities of the head for `task` on a paragraph.
    fn head_probs(&self, task: &str, out: &Outputs, para: u32) -> (&[String], Vec<f32>) {
        if let Some(h) = self.job.heads.iter().find(|h| h.meta.task == task) {
            return (&h.meta.labels, h.probs(&out.feature(para)));
        }
        let (i, (_, meta)) = self
            .job
            .tuned
            .iter()
            .enumerate()
            .find(|(_, t)| t.1.task == task)
            .expect("Via::Head is chosen only with a head for the task");
        // Window logits are averaged, then the softmax (temperature folded in).
        let logits = heads::mean_rows(&out.tuned_windows(i as u16, para));
        (&meta.labels, heads::softmax(&logits, 1.0))
    }

    fn n_topics(&self) -> usize {
        self.cb.map_or(0, |c| c.topics.topics.len())
    }

    /// Index of stance target `i`'s first hypothesis (NLI) or anchor (embedding).
    fn stance_slot(&self, i: usize) -> u32 {
        let via = self.stance_via[i];
        let base = if self.topic_via == Some(via) {
            self.n_topics()
        } else {
            0
        };
        let before = self.stance_via[..i].iter().filter(|v| **v == via).count();
        (base + before * if via == Via::Nli { 2 } else { 3 }) as u32
    }

    fn gated(&self, i: usize) -> bool {
        self.cb.is_some_and(|c| c.stances[i].only_topics.is_some())
    }

    /// Topics for every paragraph, NER, embeddings, and ungated NLI stance.
    fn stage_a<'a>(&'a self, texts: &[&'a str]) -> Vec<Work<'a>> {
        let mut w = Vec::new();
        if self.encoder.is_some() {
            for (i, a) in self.anchors.iter().enumerate() {
                w.push(Work {
                    target: Target::Encoder,
                    key: Key::Anchor(i as u32),
                    text: format!("{}{a}", self.prefix).into(),
                    hypothesis: None,
                });
            }
        }
        for (p, t) in texts.iter().enumerate() {
            let p = p as u32;
            if self.encoder.is_some() {
                let text = if self.prefix.is_empty() {
                    (*t).into()
                } else {
                    format!("{}{t}", self.prefix).into()
                };
                w.push(Work {
                    target: Target::Encoder,
                    key: Key::Emb { para: p, win: 0 },
                    text,
                    hypothesis: None,
                });
            }
            if self.topic_via == Some(Via::Nli) {
                for h in 0..self.n_topics() {
                    w.push(self.nli_work(p, h as u32, t));
                }
            }
            for i in 0..self.stance_via.len() {
                if self.stance_via[i] == Via::Nli && !self.gated(i) {
                    let h = self.stance_slot(i);
                    w.push(self.nli_work(p, h, t));
                    w.push(self.nli_work(p, h + 1, t));
                }
            }
            if self.ner.is_some() {
                w.push(Work {
                    target: Target::Ner,
                    key: Key::Ner { para: p, win: 0 },
                    text: (*t).into(),
                    hypothesis: None,
                });
            }
        }
        w
    }

    /// Gated NLI stance targets, for the paragraphs whose topic matched.
    fn stage_b<'a>(&'a self, texts: &[&'a str], topics: &[Option<TopicResult>]) -> Vec<Work<'a>> {
        let mut w = Vec::new();
        for (p, t) in texts.iter().enumerate() {
            for i in 0..self.stance_via.len() {
                if self.stance_via[i] == Via::Nli
                    && self.gated(i)
                    && self.passes_gate(i, topics[p].as_ref())
                {
                    let h = self.stance_slot(i);
                    w.push(self.nli_work(p as u32, h, t));
                    w.push(self.nli_work(p as u32, h + 1, t));
                }
            }
        }
        w
    }

    fn nli_work<'a>(&'a self, para: u32, hyp: u32, text: &'a str) -> Work<'a> {
        Work {
            target: Target::Nli,
            key: Key::Nli { para, hyp, win: 0 },
            text: text.into(),
            hypothesis: Some(&self.hypotheses[hyp as usize]),
        }
    }

    fn passes_gate(&self, i: usize, topic: Option<&TopicResult>) -> bool {
        let (Some(cb), Some(t)) = (self.cb, topic) else {
            return false;
        };
        let Some(only) = &cb.stances[i].only_topics else {
            return true;
        };
        let th = cb.topics.threshold;
        cb.topics
            .topics
            .iter()
            .zip(&t.scores)
            .any(|(tp, s)| *s >= th && only.contains(&tp.id))
            && (cb.topics.multi_label || t.best.as_ref().is_some_and(|b| only.contains(b)))
    }

    fn topic_results(&self, out: &Outputs, n: usize) -> Vec<Option<TopicResult>> {
        let Some(cb) = self.cb else {
            return vec![None; n];
        };
        let Some(via) = self.topic_via else {
            return vec![None; n];
        };
        let ts = &cb.topics;
        (0..n)
            .into_par_iter()
            .map(|p| {
                let scores: Vec<f32> = match via {
                    Via::Nli => {
                        let logits: Vec<Vec<Vec<f32>>> = (0..ts.topics.len())
                            .map(|h| out.nli_windows(p as u32, h as u32))
                            .collect();
                        heads::nli_topic_scores(
                            &logits,
                            self.nli_labels.expect("nli labels"),
                            ts.multi_label,
                        )
                    }
                    Via::Embedding => {
                        let anchors: Vec<Vec<f32>> =
                            (0..ts.topics.len()).map(|i| out.anchor(i as u32)).collect();
                        heads::embedding_topic_scores(
                            &out.emb_windows(p as u32),
                            &anchors,
                            ts.temperature,
                            ts.multi_label,
                        )
                    }
                    Via::Head => {
                        let (labels, probs) = self.head_probs("topic", out, p as u32);
                        ts.topics
                            .iter()
                            .map(|t| head_file::prob_of(labels, &probs, &t.id))
                            .collect()
                    }
                };
                let scores: Vec<f32> = scores.into_iter().map(heads::round).collect();
                let mut best = 0;

                for (i, s) in scores.iter().enumerate() {
                    if *s > scores[best] {
                        best = i;
                    }
                }
                let best = (scores[best] >= ts.threshold).then(|| ts.topics[best].id.clone());
                Some(TopicResult { scores, best })
            })
            .collect()
    }

    fn apply(&self, rows: &mut [Row], out: &Outputs) -> Result<()> {
        let topics = out.topics.as_ref().expect("topics computed");
        rows.par_iter_mut()
            .enumerate()
            .try_for_each(|(p, row)| -> Result<()> {
                let pid = p as u32;
                row.truncated_windows = out
                    .windows_of
                    .get(&pid)
                    .copied()
                    .filter(|&w| w > 1)
                    .unwrap_or(0);
                if self.job.embeddings {
                    row.embedding = Some(out.feature(pid));
                }
                if let (Some(cb), Some(t)) = (self.cb, &topics[p]) {
                    let best_i = t
                        .best
                        .as_ref()
                        .and_then(|b| cb.topics.topics.iter().position(|x| &x.id == b));
                    row.topic = t.best.clone();
                    row.topic_score = Some(match best_i {
                        Some(i) => t.scores[i],
                        None => t.scores.iter().cloned().fold(0.0, f32::max),
                    });
                    row.topic_scores = Some(
                        cb.topics
                            .topics
                            .iter()
                            .zip(&t.scores)
                            .map(|(tp, s)| (tp.id.clone(), *s))
                            .collect(),
                    );
                }
                if let Some(cb) = self.cb {
                    for (i, st) in cb.stances.iter().enumerate() {
                        let Some(&via) = self.stance_via.get(i) else {
                            row.stances.push(Stance::default());
                            continue;
                        };
                        if self.gated(i) && !self.passes_gate(i, topics[p].as_ref()) {
                            row.stances.push(Stance::default());
                            continue;
                        }
                        let slot = self.stance_slot(i);
                        let (f, a) = match via {
                            Via::Nli => {
                                let l = self.nli_labels.expect("nli labels");
                                let side = |h: u32| {
                                    let ws = out.nli_windows(pid, h);
                                    ws.iter().map(|w| heads::entail_prob(w, l)).sum::<f32>()
                                        / ws.len().max(1) as f32
                                };
                                (side(slot), side(slot + 1))
                            }
                            Via::Embedding => {
                                let anchors =
                                    [out.anchor(slot), out.anchor(slot + 1), out.anchor(slot + 2)];
                                heads::embedding_stance(
                                    &out.emb_windows(pid),
                                    &anchors,
                                    st.temperature,
                                )
                            }
                            Via::Head => {
                                let task = format!("stance_{}", st.id);
                                let (labels, probs) = self.head_probs(&task, out, pid);
                                (
                                    head_file::prob_of(labels, &probs, "favor"),
                                    head_file::prob_of(labels, &probs, "against"),
                                )
                            }
                        };
                        let (f, a) = (heads::round(f), heads::round(a));
                        let (label, score) = heads::stance_decision(f, a, st.threshold);
                        row.stances.push(Stance {
                            label: Some(label),
                            score: Some(heads::round(score)),
                            favor: Some(f),
                            against: Some(a),
                        });
                    }
                }
                if let Some(scheme) = &self.scheme {
                    let head = self.job.ner_head().is_some();
                    let tokens = if head {
                        // The head read the encoder's input, text prefix included.
                        let shift = self.prefix.chars().count();
                        out.ner_tokens(|win| Key::HeadNer { para: pid, win }, shift)
                    } else {
                        out.ner_tokens(|win| Key::Ner { para: pid, win }, 0)
                    };
                    row.entities = Some(heads::decode_entities(
                        &row.text,
                        &tokens,
                        scheme,
                        self.job.aggregation,
                        head,
                    ));
                }
                Ok(())
            })
    }
}

#[derive(Debug, Clone)]
struct TopicResult {
    scores: Vec<f32>,
    best: Option<String>,
}

// -------------------------------------------------------------- workers ----

enum Model {
    /// The encoder, with the tuned heads that read its layers.
    Encoder(Box<Encoder>, Vec<TunedHead>),
    Nli(Box<SeqClassifier>),
    Ner(Box<TokenClassifier>),
}

type BatchMsg = Vec<(Key, Encoded)>;
type Entry = (Key, Vec<f32>, Option<Encoded>);

/// One output per batch item, plus outputs that ride along on the same pass
/// (the tuned heads', from the encoder's layer states).
struct Reply {
    items: Vec<Entry>,
    extra: Vec<Entry>,
}
type ReplyMsg = Result<Reply>;

struct Workers {
    senders: HashMap<Target, Sender<BatchMsg>>,
    replies: Receiver<ReplyMsg>,
    toks: HashMap<Target, Tok>,
}

impl Workers {
    fn spawn<'s, 'e>(s: &'s std::thread::Scope<'s, 'e>, job: &Job, plan: &Plan) -> Result<Workers> {
        let (reply_tx, replies) = unbounded();
        let mut senders = HashMap::new();
        let mut toks = HashMap::new();
        let load = |t: Target, d: &ModelDir| -> Result<Model> {
            Ok(match t {
                Target::Encoder => {
                    let heads = job
                        .tuned
                        .iter()
                        .map(|(dir, _)| TunedHead::load(dir, d, job.device))
                        .collect::<Result<Vec<_>>>()?;
                    let enc = Encoder::load(d, job.device, job.dtype, !heads.is_empty())?;
                    Model::Encoder(Box::new(enc), heads)
                }
                Target::Nli => Model::Nli(Box::new(SeqClassifier::load(d, job.device, job.dtype)?)),
                Target::Ner => {
                    Model::Ner(Box::new(TokenClassifier::load(d, job.device, job.dtype)?))
                }
            })
        };
        for (t, d) in [
            (Target::Encoder, &plan.encoder),
            (Target::Nli, &plan.nli),
            (Target::Ner, &plan.ner),
        ] {
            let Some(d) = d else { continue };
            let model = load(t, d)?;
            toks.insert(t, d.tokenizer()?);
            let (tx, rx) = bounded::<BatchMsg>(4);
            senders.insert(t, tx);
            let reply_tx = reply_tx.clone();
            let (threads, device) = (job.threads, job.device);
            std::thread::Builder::new()
                .name(format!("{MODEL_THREAD}{t:?}"))
                .spawn_scoped(s, move || serve(model, rx, reply_tx, threads, device))
                .map_err(|e| Error::Config(format!("cannot start a model thread: {e}")))?;
        }
        Ok(Workers {
            senders,
            replies,
            toks,
        })
    }

    /// Tokenizes `work` (rayon), batches it per model and collects every reply.
    fn infer(&self, work: &[Work], budget: usize, bar: &indicatif::ProgressBar) -> Result<Outputs> {
        let encoded: Vec<Vec<(Key, Encoded)>> = work
            .par_iter()
            .map(|w| {
                let tok = &self.toks[&w.target];
                let overlap = tok.max_len / 8;
                let wins = match w.hypothesis {
                    Some(h) => tok.pair_windows(&w.text, h, overlap)?,
                    None => tok.windows(&w.text, overlap)?,
                };
                Ok(wins
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| (with_window(w.key, i as u16), e))
                    .collect())
            })
            .collect::<Result<_>>()?;
        let mut out = Outputs::default();
        // Expected replies per paragraph, to advance the bar when one completes.
        let mut pending: HashMap<u32, usize> = HashMap::new();
        let mut per_target: HashMap<Target, Vec<(Key, Encoded)>> = HashMap::new();
        for (w, encs) in work.iter().zip(encoded) {
            if let Some(p) = para_of(w.key) {
                *pending.entry(p).or_default() += encs.len();
                let n = encs.len() as u16;
                let e = out.windows_of.entry(p).or_default();
                *e = (*e).max(n);
            }
            per_target.entry(w.target).or_default().extend(encs);
        }
        let total: usize = per_target.values().map(|v| v.len()).sum();
        std::thread::scope(|s| -> Result<()> {
            let producer = s.spawn(|| -> Result<()> {
                for (t, items) in per_target {
                    let lens: Vec<usize> = items.iter().map(|(_, e)| e.len()).collect();
                    let mut slots: Vec<Option<(Key, Encoded)>> =
                        items.into_iter().map(Some).collect();
                    for b in batch::plan(&lens, budget) {
                        let msg: BatchMsg = b
                            .iter()
                            .map(|&i| slots[i].take().expect("each item once"))
                            .collect();
                        if self.senders[&t].send(msg).is_err() {
                            return Ok(()); // the worker failed; its error arrives as a reply
                        }
                    }
                }
                Ok(())
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
                    if let Some(p) = para_of(key) {
                        let left = pending.get_mut(&p).expect("pending paragraph");
                        *left -= 1;
                        if *left == 0 {
                            bar.inc(1);
                        }
                    }
                    out.values.insert(key, (values, enc));
                }
            }
            producer.join().expect("producer thread")?;
            Ok(())
        })?;
        Ok(out)
    }
}

fn serve(
    model: Model,
    rx: Receiver<BatchMsg>,
    tx: Sender<ReplyMsg>,
    threads: usize,
    device: Device,
) {
    tch::set_num_threads(threads as i32);
    let dir = match &model {
        Model::Encoder(m, _) => m.dir.clone(),
        Model::Nli(m) => m.dir.clone(),
        Model::Ner(m) => m.dir.clone(),
    };
    for batch in rx {
        // rust-bert panics on torch errors; catch them so the job ends with an
        // error naming the model instead of hanging or aborting.
        let run = std::panic::AssertUnwindSafe(|| -> ReplyMsg {
            let items: Vec<&Encoded> = batch.iter().map(|(_, e)| e).collect();
            let padded = batch::pad(&items, dir.pad_id, dir.max_len, device);
            let lens: Vec<usize> = items.iter().map(|e| e.len()).collect();
            let mut extra = vec![];
            let t = match &model {
                Model::Encoder(m, tuned) => {
                    // One pass; each tuned head reads the layer it branches from.
                    let layers: Vec<usize> = tuned.iter().map(TunedHead::layer).collect();
                    let (pooled, states) = m.forward_layers(&padded, &layers)?;
                    for (h, (head, st)) in tuned.iter().zip(&states).enumerate() {
                        let t = tch::no_grad(|| head.forward_t(st, &padded.mask, false));
                        let rows = if head.pooled {
                            crate::models::rows(&t, &[])?
                        } else {
                            crate::models::rows(&t.softmax(-1, tch::Kind::Float), &lens)?
                        };
                        for ((k, e), v) in batch.iter().zip(rows) {
                            let Key::Emb { para, win } = *k else { continue };
                            extra.push(if head.pooled {
                                (
                                    Key::Tuned {
                                        head: h as u16,
                                        para,
                                        win,
                                    },
                                    v,
                                    None,
                                )
                            } else {
                                (Key::HeadNer { para, win }, v, Some(e.clone()))
                            });
                        }
                    }
                    pooled
                }
                Model::Nli(m) => m.forward(&padded)?,
                Model::Ner(m) => m.forward(&padded)?.softmax(-1, tch::Kind::Float),
            };
            let keep_enc = matches!(model, Model::Ner(_));
            let rows = crate::models::rows(&t, if keep_enc { &lens } else { &[] })?;
            Ok(Reply {
                items: batch
                    .iter()
                    .zip(rows)
                    .map(|((k, e), v)| (*k, v, keep_enc.then(|| e.clone())))
                    .collect(),
                extra,
            })
        });
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
}

/// Model threads are named with this prefix; their panics become errors.
pub const MODEL_THREAD: &str = "paratag-model-";

fn with_window(k: Key, win: u16) -> Key {
    match k {
        Key::Emb { para, .. } => Key::Emb { para, win },
        Key::Nli { para, hyp, .. } => Key::Nli { para, hyp, win },
        Key::Ner { para, .. } => Key::Ner { para, win },
        Key::HeadNer { para, .. } => Key::HeadNer { para, win },
        Key::Tuned { head, para, .. } => Key::Tuned { head, para, win },
        a @ Key::Anchor(_) => a,
    }
}

fn para_of(k: Key) -> Option<u32> {
    match k {
        Key::Emb { para, .. }
        | Key::Nli { para, .. }
        | Key::Ner { para, .. }
        | Key::HeadNer { para, .. }
        | Key::Tuned { para, .. } => Some(para),
        Key::Anchor(_) => None,
    }
}

// -------------------------------------------------------------- outputs ----

#[derive(Default)]
struct Outputs {
    values: HashMap<Key, (Vec<f32>, Option<Encoded>)>,
    /// Most windows any model needed for a paragraph.
    windows_of: HashMap<u32, u16>,
    topics: Option<Vec<Option<TopicResult>>>,
}

impl Outputs {
    fn merge(&mut self, other: Outputs) {
        self.values.extend(other.values);
        for (p, w) in other.windows_of {
            let e = self.windows_of.entry(p).or_default();
            *e = (*e).max(w);
        }
    }

    fn windows_while(&self, f: impl Fn(u16) -> Key) -> Vec<&(Vec<f32>, Option<Encoded>)> {
        (0u16..).map_while(|w| self.values.get(&f(w))).collect()
    }

    /// The feature trained heads read: the mean of the window embeddings.
    fn feature(&self, para: u32) -> Vec<f32> {
        heads::mean_rows(&self.emb_windows(para))
    }

    fn emb_windows(&self, para: u32) -> Vec<Vec<f32>> {
        self.windows_while(|win| Key::Emb { para, win })
            .into_iter()
            .map(|v| v.0.clone())
            .collect()
    }

    fn tuned_windows(&self, head: u16, para: u32) -> Vec<Vec<f32>> {
        self.windows_while(|win| Key::Tuned { head, para, win })
            .into_iter()
            .map(|v| v.0.clone())
            .collect()
    }

    fn nli_windows(&self, para: u32, hyp: u32) -> Vec<Vec<f32>> {
        self.windows_while(|win| Key::Nli { para, hyp, win })
            .into_iter()
            .map(|v| v.0.clone())
            .collect()
    }

    fn anchor(&self, i: u32) -> Vec<f32> {
        self.values[&Key::Anchor(i)].0.clone()
    }

    /// The paragraph's tokens, each taken from the window where it sits most
    /// centrally, so overlapping windows merge without duplicates. `shift`
    /// code points of text prefix are dropped and offsets moved back by it.
    fn ner_tokens(&self, key: impl Fn(u16) -> Key, shift: usize) -> Vec<TokenProbs> {
        let wins = self.windows_while(key);
        let mut best: std::collections::BTreeMap<usize, (usize, TokenProbs)> = Default::default();
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
                let tp = TokenProbs {
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
