//! The plan of a job: which model answers each task (NLI, similarity or a
//! trained head, per topic set and stance target), and the model work each
//! paragraph needs. Everything that can be wrong between the codebook and
//! the models fails here, before any input is read.

use crate::codebook::{Codebook, Method};
use crate::error::{Error, Result};
use crate::heads::{self, Aggregation, EntitySpans, NerScheme, NliLabels};
use crate::infer::{Key, Target, Work};
use crate::input::ReadOptions;
use crate::models::head::{Head, HeadMeta};
use crate::models::{DType, ModelDir, ModelInfo};
use crate::segment::SegmentConfig;
use crate::shard::Shard;
use crate::task::{HeadKind, Task};
use std::path::PathBuf;
use tch::Device;

/// What a job reads.
pub enum Input {
    /// Files and folders, read with these options.
    Files {
        paths: Vec<PathBuf>,
        read: ReadOptions,
    },
    /// Texts in memory, one article each ([`crate::input::Inputs::texts`]).
    Texts(std::sync::Arc<Vec<String>>),
}

impl Input {
    /// How tables are read (the defaults for texts in memory).
    pub fn read_options(&self) -> ReadOptions {
        match self {
            Input::Files { read, .. } => read.clone(),
            Input::Texts(_) => ReadOptions::default(),
        }
    }
}

/// Which tasks run (each also needs its codebook entries or model).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tasks {
    pub topic: bool,
    pub stance: bool,
    pub ner: bool,
}

impl Tasks {
    /// No task: only the encoder's embeddings (`train`).
    pub const NONE: Tasks = Tasks {
        topic: false,
        stance: false,
        ner: false,
    };
}

/// The models a job opened.
#[derive(Default)]
pub struct ModelSet {
    pub encoder: Option<ModelDir>,
    pub nli: Option<ModelDir>,
    pub ner: Option<ModelDir>,
    /// Trained linear heads (`--heads`), each for `topic` or a stance task.
    pub heads: Vec<Head>,
    /// Trained heads with tuned encoder layers (`--heads`): topic, stance
    /// or the entities. The encoder thread loads them.
    pub tuned: Vec<(PathBuf, HeadMeta)>,
    /// The adapter the heads were trained with ([`crate::models::lora`]),
    /// merged into the encoder at load.
    pub adapter: Option<PathBuf>,
}

/// How the models run.
#[derive(Clone, Debug)]
pub struct Engine {
    pub threads: usize,
    /// Padded tokens per batch.
    pub batch_tokens: usize,
    pub device: Device,
    pub dtype: DType,
    /// `--dtype` as given (`auto`, `f32`, `bf16`), for the provenance.
    pub dtype_requested: &'static str,
    pub aggregation: Aggregation,
    pub entity_spans: EntitySpans,
    /// Keep each paragraph's encoder embedding in `Row::embedding` (training).
    pub embeddings: bool,
    /// Keep model outputs in the feature cache ([`crate::cache`]) and load
    /// models only when it misses (`eval`, `calibrate`, `train`).
    pub cache: bool,
}

impl Default for Engine {
    fn default() -> Engine {
        Engine {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            batch_tokens: 2048,
            device: Device::Cpu,
            dtype: DType::F32,
            dtype_requested: "auto",
            aggregation: Aggregation::First,
            entity_spans: EntitySpans::Name,
            embeddings: false,
            cache: false,
        }
    }
}

/// What the user asked for: the input, the codebook and tasks, the models
/// opened and how they run.
pub struct Job {
    pub input: Input,
    pub codebook: Option<Codebook>,
    pub tasks: Tasks,
    pub models: ModelSet,
    pub engine: Engine,
    pub segment: SegmentConfig,
    /// Candidate languages for the `lang` column (`--languages`).
    pub languages: crate::lang::Languages,
    pub progress: crate::progress::Mode,
    /// Articles per window.
    pub window: usize,
    /// Tag only this shard's articles.
    pub shard: Option<Shard>,
    /// Score only these stance targets (codebook indices) for these article
    /// ids, and none for the others; all targets for all when `None`
    /// (`eval` of gold with a target per row).
    pub stance_only: Option<std::collections::HashMap<String, Targets>>,
    /// Tag each distinct paragraph text once and copy its labels to the
    /// others ([`crate::dedupe`]); `tag` sets it, in-memory jobs do not.
    pub dedupe: bool,
}

/// A set of stance target indices.
pub type Targets = std::collections::BTreeSet<usize>;

impl Job {
    /// Whether a head (linear or tuned) is for `task`.
    pub fn has_head(&self, task: &Task) -> bool {
        self.models.heads.iter().any(|h| h.meta.task == *task)
            || self.models.tuned.iter().any(|t| t.1.task == *task)
    }

    /// The NER head among the tuned heads.
    pub fn ner_head(&self) -> Option<&(PathBuf, HeadMeta)> {
        self.models.tuned.iter().find(|t| t.1.kind == HeadKind::Ner)
    }

    /// Provenance of the models a plan runs.
    pub fn models(&self, plan: &Plan) -> Result<Vec<ModelInfo>> {
        let roles = [
            ("encoder", &plan.encoder),
            ("nli", &plan.nli),
            ("ner", &plan.ner),
        ];
        roles
            .into_iter()
            .filter_map(|(role, d)| d.as_ref().map(|d| d.info(role)))
            .collect()
    }
}

/// How topics and each stance target are scored in this run.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Via {
    Nli,
    Embedding,
    Head,
}

pub struct Plan<'j> {
    pub job: &'j Job,
    pub cb: Option<&'j Codebook>,
    pub encoder: Option<ModelDir>,
    pub nli: Option<ModelDir>,
    pub ner: Option<ModelDir>,
    pub topic_via: Option<Via>,
    pub stance_via: Vec<Via>,
    pub nli_labels: Option<NliLabels>,
    pub scheme: Option<NerScheme>,
    /// NLI hypotheses: topics first, then favor/against of each NLI target.
    hypotheses: Vec<String>,
    /// Encoder anchor texts: topic texts first, then favor/against/neutral of each embedding target.
    anchors: Vec<String>,
    /// Put before every text the encoder embeds ("query: " for e5).
    pub prefix: String,
}

/// The topics of one paragraph: a score per codebook topic, and the best
/// one if it reaches the threshold.
#[derive(Debug, Clone)]
pub struct TopicResult {
    pub scores: Vec<f32>,
    pub best: Option<String>,
}

/// How a task with codebook method `m` is scored in `job`: by its trained
/// head, NLI or similarity to the codebook's texts; `what` names it in
/// errors.
fn choose(job: &Job, m: Method, what: &str, task: &Task) -> Result<Via> {
    let head = job.has_head(task);
    match (m, head) {
        (Method::Head, true) | (Method::Auto, true) => return Ok(Via::Head),
        (Method::Head, false) => {
            return Err(Error::Config(format!(
                "{what} uses method \"head\" but no --heads folder is for `{task}`"
            )))
        }
        _ => {}
    }
    if job.models.encoder.is_none() && head {
        return Err(Error::Config(format!("{what}: heads need --encoder")));
    }
    match (m, &job.models.nli, &job.models.encoder) {
        (Method::Nli, Some(_), _) | (Method::Auto, Some(_), _) => Ok(Via::Nli),
        (Method::Embedding, _, Some(_)) | (Method::Auto, None, Some(_))
            if job.models.adapter.is_some() =>
        {
            // Similarity anchors need the plain e5 geometry.
            Err(Error::Config(format!(
                    "{what} has no head, and its embedding zero-shot needs the plain encoder, but this run's heads adapt it; train a head for `{task}` with the others, or tag it in a separate run"
                )))
        }
        (Method::Embedding, _, Some(_)) | (Method::Auto, None, Some(_)) => Ok(Via::Embedding),
        (Method::Nli, None, _) => Err(Error::Config(format!(
            "{what} uses method \"nli\" but no --nli model was given"
        ))),
        _ => Err(Error::Config(format!(
            "{what} needs a model: pass --encoder DIR or --nli DIR"
        ))),
    }
}

/// How the topics and each stance target are scored (`None`: no topics).
fn scoring(job: &Job, cb: &Codebook) -> Result<(Option<Via>, Vec<Via>)> {
    let mut topic_via = None;
    let mut stance_via = vec![];
    if job.tasks.topic && !cb.topics.topics.is_empty() {
        topic_via = Some(choose(job, cb.topics.method, "[topics]", &Task::Topic)?);
    }
    if !job.tasks.stance {
        return Ok((topic_via, stance_via));
    }
    for s in &cb.stances {
        if s.only_topics.is_some() && topic_via.is_none() {
            return Err(Error::Config(format!(
                "stance `{}` is gated by only_topics, which needs topics (drop --no-topic or the gate)",
                s.id
            )));
        }
        let [stance, holder_task] = Task::stance_pair(&s.id);
        let via = choose(job, s.method, &format!("stance `{}`", s.id), &stance)?;
        // A head trained on expressed stance needs the holder head to give
        // the author-only reading.
        if via == Via::Head
            && s.holder == crate::codebook::Holder::Author
            && !job.has_head(&holder_task)
        {
            return Err(Error::Config(format!(
                "stance `{}` has holder = \"author\", which with a head needs a holder head (`{holder_task}`, from `paratag train multi`)",
                s.id
            )));
        }
        stance_via.push(via);
    }
    Ok((topic_via, stance_via))
}

/// The NLI hypotheses (topics first, then favor/against of each NLI target)
/// and the encoder's anchor texts (topic texts first, then
/// favor/against/neutral of each embedding target).
fn texts_to_score(
    cb: &Codebook,
    topic_via: Option<Via>,
    stance_via: &[Via],
) -> (Vec<String>, Vec<String>) {
    let mut hypotheses = vec![];
    let mut anchors = vec![];
    match topic_via {
        Some(Via::Nli) => hypotheses.extend(cb.topics.topics.iter().map(|t| t.hypothesis.clone())),
        Some(Via::Embedding) => {
            anchors.extend(cb.topics.topics.iter().map(|t| t.embedding_text.clone()))
        }
        Some(Via::Head) | None => {}
    }
    for (s, via) in cb.stances.iter().zip(stance_via) {
        match via {
            Via::Nli => hypotheses.extend([s.favor.clone(), s.against.clone()]),
            Via::Embedding => {
                anchors.extend([s.favor.clone(), s.against.clone(), s.neutral.clone()])
            }
            Via::Head => {}
        }
    }
    (hypotheses, anchors)
}

impl<'j> Plan<'j> {
    pub fn new(job: &'j Job) -> Result<Plan<'j>> {
        let cb = job.codebook.as_ref();
        let (topic_via, stance_via) = match cb {
            Some(cb) => scoring(job, cb)?,
            None => (None, vec![]),
        };
        let uses = |v: Via| topic_via == Some(v) || stance_via.contains(&v);
        let nli = if uses(Via::Nli) {
            job.models.nli.clone()
        } else {
            None
        };
        if job.models.ner.is_some() && job.ner_head().is_some() {
            return Err(Error::Config(
                "both --ner and an NER head were given; pass one".into(),
            ));
        }
        if job.ner_head().is_some() && job.models.encoder.is_none() {
            return Err(Error::Config("the NER head needs --encoder".into()));
        }
        let encoder = if uses(Via::Embedding)
            || uses(Via::Head)
            || job.engine.embeddings
            || job.ner_head().is_some()
        {
            job.models.encoder.clone()
        } else {
            None
        };
        let nli_labels = match &nli {
            Some(d) => Some(heads::nli_labels(&d.labels, &d.path)?),
            None => None,
        };
        let scheme = match (&job.models.ner, job.ner_head()) {
            (Some(d), _) => Some(NerScheme::from_labels(&d.labels, &d.path)?),
            (None, Some((dir, meta))) => Some(NerScheme::from_labels(&meta.labels, dir)?),
            (None, None) => None,
        };
        let (hypotheses, anchors) = match cb {
            Some(cb) => texts_to_score(cb, topic_via, &stance_via),
            None => (vec![], vec![]),
        };
        let prefix = encoder
            .as_ref()
            .map(ModelDir::text_prefix)
            .unwrap_or_default();
        Ok(Plan {
            job,
            cb,
            encoder,
            nli,
            ner: job.models.ner.clone(),
            topic_via,
            stance_via,
            nli_labels,
            scheme,
            hypotheses,
            anchors,
            prefix,
        })
    }

    /// The models this plan runs.
    pub fn models(&self) -> Vec<(Target, &ModelDir)> {
        [
            (Target::Encoder, &self.encoder),
            (Target::Nli, &self.nli),
            (Target::Ner, &self.ner),
        ]
        .into_iter()
        .filter_map(|(t, d)| d.as_ref().map(|d| (t, d)))
        .collect()
    }

    /// Entity types the NER model predicts (empty without NER).
    pub fn entity_types(&self) -> Vec<String> {
        self.scheme
            .as_ref()
            .map(|s| s.types.clone())
            .unwrap_or_default()
    }

    pub fn n_topics(&self) -> usize {
        self.cb.map_or(0, |c| c.topics.topics.len())
    }

    /// Index of stance target `i`'s first hypothesis (NLI) or anchor (embedding).
    pub fn stance_slot(&self, i: usize) -> u32 {
        let via = self.stance_via[i];
        let base = if self.topic_via == Some(via) {
            self.n_topics()
        } else {
            0
        };
        let before = self.stance_via[..i].iter().filter(|v| **v == via).count();
        (base + before * if via == Via::Nli { 2 } else { 3 }) as u32
    }

    /// Whether some NLI stance target waits for topics (a second pass).
    pub fn gates_nli(&self) -> bool {
        (0..self.stance_via.len()).any(|i| self.stance_via[i] == Via::Nli && self.gated(i))
    }

    pub fn gated(&self, i: usize) -> bool {
        self.cb.is_some_and(|c| c.stances[i].only_topics.is_some())
    }

    /// The codebook texts the encoder embeds once per job.
    pub fn anchor_work(&self) -> Vec<Work<'_>> {
        if self.encoder.is_none() {
            return vec![];
        }
        self.anchors
            .iter()
            .enumerate()
            .map(|(i, a)| Work {
                target: Target::Encoder,
                key: Key::Anchor(i as u32),
                text: format!("{}{a}", self.prefix).into(),
                hypothesis: None,
            })
            .collect()
    }

    /// Whether stance target `i` is scored for a paragraph whose article
    /// allows `only` (see [`Job::stance_only`]).
    pub fn scores(&self, i: usize, only: Option<&Targets>) -> bool {
        self.job.stance_only.is_none() || only.is_some_and(|o| o.contains(&i))
    }

    /// Per paragraph, which tuned heads the encoder runs on it: a stance or
    /// holder head only where the paragraph is scored for its target.
    pub fn head_wants(&self, only: &[Option<&Targets>]) -> crate::infer::Wants {
        let (Some(cb), Some(_)) = (self.cb, &self.job.stance_only) else {
            return vec![];
        };
        let target_of: Vec<Option<usize>> = self
            .job
            .models
            .tuned
            .iter()
            .map(|(_, m)| {
                let t = m.task.target()?;
                cb.stances.iter().position(|s| s.id == t)
            })
            .collect();
        only.iter()
            .map(|o| {
                target_of
                    .iter()
                    .map(|t| t.is_none_or(|i| self.scores(i, *o)))
                    .collect()
            })
            .collect()
    }

    /// Per paragraph: its embedding, topic NLI, ungated NLI stance, NER;
    /// `only[p]` restricts paragraph `p`'s stance targets.
    pub fn work<'a>(&'a self, texts: &[&'a str], only: &[Option<&Targets>]) -> Vec<Work<'a>> {
        let mut w = Vec::new();
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
                if self.stance_via[i] == Via::Nli
                    && !self.gated(i)
                    && self.scores(i, only[p as usize])
                {
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
    pub fn gated_work<'a>(
        &'a self,
        texts: &[&'a str],
        topics: &[Option<TopicResult>],
        only: &[Option<&Targets>],
    ) -> Vec<Work<'a>> {
        let mut w = Vec::new();
        for (p, t) in texts.iter().enumerate() {
            for i in 0..self.stance_via.len() {
                if self.stance_via[i] == Via::Nli
                    && self.gated(i)
                    && self.scores(i, only[p])
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

    /// Whether stance target `i` is scored on a paragraph with `topic`.
    pub fn passes_gate(&self, i: usize, topic: Option<&TopicResult>) -> bool {
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
}
