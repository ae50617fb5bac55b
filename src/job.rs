//! Jobs built in one place: the model choice of a command (a profile, or
//! an encoder, NLI and NER model and trained heads), resolved and opened
//! into a [`Job`] for the tasks asked; and tagging texts held in memory,
//! which `eval`, `calibrate` and `train` use on their gold texts.
//!
//! `cmd/*` turn arguments into a [`ModelChoice`] and call [`open`] (then
//! [`crate::pipeline`]) or [`tag_texts`]; nothing here knows the CLI.

use crate::choice::Choice;
use crate::codebook::{Codebook, Method};
use crate::error::{Error, Result};
use crate::heads::{Aggregation, EntitySpans};
use crate::models::head::{self, Head, HeadMeta};
use crate::models::{lora, profile, registry, DTypeArg, DeviceArg, ModelDir};
use crate::pipeline::{self, Counts};
use crate::plan::{Engine, Input, Job, ModelSet, Plan, Targets, Tasks};
use crate::record::Row;
use crate::scan::Scan;
use crate::segment::SegmentConfig;
use crate::task::{HeadKind, Task};
use polars::prelude::DataFrame;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The models a command asks for, as names and folders, before any is
/// opened.
#[derive(Debug, Clone)]
pub struct ModelChoice {
    /// An installed profile's codebook and heads.
    pub profile: Option<String>,
    /// Sentence encoder (folder or installed name).
    pub encoder: String,
    pub nli: Option<String>,
    pub ner: Option<String>,
    pub aggregation: Aggregation,
    pub entity_spans: EntitySpans,
    /// libtorch intra-op threads per model (`None`: all cores).
    pub threads: Option<usize>,
    pub batch_tokens: usize,
    pub device: DeviceArg,
    pub dtype: DTypeArg,
    /// Trained head folders.
    pub heads: Vec<PathBuf>,
}

impl Default for ModelChoice {
    fn default() -> ModelChoice {
        ModelChoice {
            profile: None,
            encoder: registry::ENCODER.into(),
            nli: None,
            ner: None,
            aggregation: Aggregation::First,
            entity_spans: EntitySpans::Name,
            threads: None,
            batch_tokens: 2048,
            device: DeviceArg::Cpu,
            dtype: DTypeArg::Auto,
            heads: vec![],
        }
    }
}

impl ModelChoice {
    /// Whether it names a model or heads of its own.
    fn names_models(&self) -> bool {
        !self.heads.is_empty() || self.ner.is_some() || self.nli.is_some()
    }

    /// The profile the command runs with, its heads put into `self.heads`
    /// (its codebook is the caller's where no `-c` is given): the one named,
    /// else `default` when the command names no codebook, heads or models.
    /// Without `default` installed that is an error when a model is
    /// `needed`, else no profile.
    pub fn apply_profile(
        &mut self,
        codebook_given: bool,
        needed: bool,
    ) -> Result<Option<profile::Profile>> {
        let p = match &self.profile {
            Some(n) => profile::load(n)?,
            None if codebook_given || self.names_models() => return Ok(None),
            None => match profile::load(profile::DEFAULT) {
                Ok(p) => p,
                Err(_) if !needed => return Ok(None),
                Err(e) => {
                    return Err(Error::Config(format!(
                        "nothing to tag with: no --profile, -c CODEBOOK, --heads, --ner or --nli, and {e}"
                    )))
                }
            },
        };
        self.heads = p.head_dirs();
        Ok(Some(p))
    }

    /// How the models run.
    fn engine(&self) -> Result<Engine> {
        if self.batch_tokens == 0 {
            return Err(Error::Config("--batch-tokens must be > 0".into()));
        }
        let threads = self.threads.unwrap_or(Engine::default().threads);
        if threads == 0 {
            return Err(Error::Config("--threads must be > 0".into()));
        }
        Ok(Engine {
            threads,
            batch_tokens: self.batch_tokens,
            device: self.device.resolve()?,
            dtype: self.dtype.resolve(),
            dtype_requested: self.dtype.name(),
            aggregation: self.aggregation,
            entity_spans: self.entity_spans,
            ..Engine::default()
        })
    }
}

fn open_model(name: &str) -> Result<ModelDir> {
    ModelDir::open(&registry::resolve(name)?)
}

/// A tagging job: opens the models the codebook and tasks need.
pub fn open(
    input: Input,
    codebook: Option<Codebook>,
    m: &ModelChoice,
    tasks: Tasks,
    segment: SegmentConfig,
    progress: crate::progress::Mode,
) -> Result<Job> {
    let engine = m.engine()?;
    let mut codebook = codebook;
    if let Some(cb) = codebook.as_mut() {
        head_thresholds(cb, &m.heads)?;
    }
    let models = open_models(codebook.as_ref(), m, tasks)?;
    Ok(Job {
        input,
        codebook,
        tasks,
        models,
        engine,
        segment,
        languages: Default::default(),
        progress,
        window: pipeline::WINDOW,
        shard: None,
        stance_only: None,
        dedupe: false,
    })
}

/// Each stance target whose codebook sets no threshold takes the one its
/// head was fitted with on dev at training (`[dev] threshold` in
/// `head.toml`): its own head's, else the head for any target's. Targets
/// with neither, or with a head trained before heads carried a threshold,
/// keep 0.5. A threshold in the codebook (e.g. from `calibrate`) wins.
pub fn head_thresholds(cb: &mut Codebook, heads: &[PathBuf]) -> Result<()> {
    let mut own = std::collections::HashMap::new();
    let mut any = None;
    for d in heads {
        let meta = head::read_meta(d)?;
        let t = meta.dev.as_ref().and_then(|d| d.threshold);
        match meta.task {
            x if x == Task::any_stance() => any = t,
            Task::Stance(id) => {
                own.insert(id, t);
            }
            _ => {}
        }
    }
    for s in cb.stances.iter_mut().filter(|s| !s.threshold_given) {
        if let Some(t) = own.get(&s.id).copied().unwrap_or(any) {
            s.threshold = t as f32;
        }
    }
    Ok(())
}

/// The models the codebook's tasks need: NLI, the encoder, NER, and the
/// heads for the tasks run (heads for other tasks cost nothing).
fn open_models(codebook: Option<&Codebook>, m: &ModelChoice, tasks: Tasks) -> Result<ModelSet> {
    let needs_classes = codebook.is_some_and(|c| {
        (tasks.topic && !c.topics.topics.is_empty()) || (tasks.stance && !c.stances.is_empty())
    });
    let nli = match &m.nli {
        Some(n) if needs_classes => Some(open_model(n)?),
        _ => None,
    };
    let (heads, tuned) = load_heads(&m.heads, tasks)?;
    let adapter = heads_adapter(&heads, &tuned)?;
    let tuned = per_target(tuned, &heads, codebook);
    let uses_encoder = needs_classes
        && codebook.is_some_and(|c| {
            nli.is_none()
                || !heads.is_empty()
                || c.topics.method == Method::Embedding
                || c.stances.iter().any(|s| s.method == Method::Embedding)
        });
    let encoder = if uses_encoder || !tuned.is_empty() {
        Some(open_model(&m.encoder).map_err(|e| {
            Error::Config(format!(
                "sentence encoder (run scripts/setup.sh, or pass --encoder DIR / --nli DIR): {e}"
            ))
        })?)
    } else {
        None
    };
    let ner_head = tuned.iter().any(|t| t.1.kind == HeadKind::Ner);
    let ner =
        match (&m.ner, tasks.ner) {
            (_, false) => None,
            (None, true) if ner_head => None,
            (Some(n), true) => Some(open_model(n)?),
            (None, true) => match registry::resolve("ner") {
                Ok(p) => Some(ModelDir::open(&p)?),
                Err(_) => return Err(Error::Config(
                    "no NER model: pass --ner DIR, run `paratag models fetch ner`, or use --no-ner"
                        .into(),
                )),
            },
        };
    if let (Some(enc), false) = (&encoder, heads.is_empty() && tuned.is_empty()) {
        let sha = enc.weights_sha256()?;
        for h in &heads {
            h.check_encoder(enc, &sha)?;
        }
        for (dir, meta) in &tuned {
            head::check_encoder(dir, meta, enc, &sha)?;
        }
    }
    Ok(ModelSet {
        encoder,
        nli,
        ner,
        heads,
        tuned,
        adapter,
    })
}

/// Linear heads are loaded as plain vectors; heads with tuned encoder
/// layers (all NER heads) are left to the encoder thread. One head per task.
type Loaded = (Vec<Head>, Vec<(PathBuf, HeadMeta)>);

fn load_heads(dirs: &[PathBuf], tasks: Tasks) -> Result<Loaded> {
    let (mut heads, mut tuned): Loaded = (vec![], vec![]);
    for d in dirs {
        let meta = head::read_meta(d)?;
        let wanted = match meta.kind {
            HeadKind::Ner => tasks.ner,
            HeadKind::Topic => tasks.topic,
            HeadKind::Stance | HeadKind::Holder => tasks.stance,
        };
        if !wanted {
            continue;
        }
        let seen = tuned.iter().any(|t| t.1.task == meta.task)
            || heads.iter().any(|h| h.meta.task == meta.task);
        if seen {
            return Err(Error::model(
                d,
                format!("a second head for `{}`; pass one", meta.task),
            ));
        }
        if crate::models::tuned_head::is_tuned(&meta) {
            tuned.push((d.clone(), meta));
        } else {
            heads.push(Head::load(d)?);
        }
    }
    Ok((heads, tuned))
}

/// A head for any stance target answers each codebook target that has no
/// head of its own: one copy per target, reading that target's text.
fn per_target(
    tuned: Vec<(PathBuf, HeadMeta)>,
    heads: &[Head],
    codebook: Option<&Codebook>,
) -> Vec<(PathBuf, HeadMeta)> {
    let any = Task::any_stance();
    let (anys, mut out): (Vec<_>, Vec<_>) = tuned.into_iter().partition(|t| t.1.task == any);
    let (Some((dir, meta)), Some(cb)) = (anys.into_iter().next(), codebook) else {
        return out;
    };
    let own: Vec<Task> = heads
        .iter()
        .map(|h| h.meta.task.clone())
        .chain(out.iter().map(|t| t.1.task.clone()))
        .collect();
    for st in &cb.stances {
        let task = Task::Stance(st.id.clone());
        if !own.contains(&task) {
            let meta = HeadMeta {
                task,
                target_text: Some(st.conditioning_text()),
                ..meta.clone()
            };
            out.push((dir.clone(), meta));
        }
    }
    out
}

/// The adapter the heads share, if they were trained with one: every head
/// of a job rides on one encoder pass, so they must all read the same
/// (adapted or plain) encoder. Its weights must be the ones the heads
/// recorded.
fn heads_adapter(heads: &[Head], tuned: &[(PathBuf, HeadMeta)]) -> Result<Option<PathBuf>> {
    let all: Vec<(&Path, Option<&String>)> = heads
        .iter()
        .map(|h| (h.dir.as_path(), h.meta.adapter_sha256.as_ref()))
        .chain(
            tuned
                .iter()
                .map(|(d, m)| (d.as_path(), m.adapter_sha256.as_ref())),
        )
        .collect();
    let Some(&(first, Some(sha))) = all.iter().find(|h| h.1.is_some()) else {
        return Ok(None);
    };
    for &(d, s) in &all {
        match s {
            Some(s) if s == sha => {}
            Some(_) => return Err(Error::Config(format!(
                "{} and {} were trained with different adapters; heads in one run share one encoder pass, so train them together (`paratag train multi`)",
                first.display(),
                d.display()
            ))),
            None => return Err(Error::Config(format!(
                "{} reads the plain encoder, but {} needs the encoder with its adapter; heads in one run share one encoder pass, so tag them in separate runs",
                d.display(),
                first.display()
            ))),
        }
    }
    let dir = lora::dir_of_head(first);
    let got = lora::weights_sha256(&dir).map_err(|e| {
        Error::Config(format!(
            "{}: the head's adapter (expected beside it, in ../{}): {e}",
            first.display(),
            lora::DIR
        ))
    })?;
    if &got != sha {
        return Err(Error::Config(format!(
            "{}: {} has sha256 {got}, but {} was trained with {sha}; the adapter and its heads must come from one `paratag train multi` run (or the head from `train topic|stance --adapter` on it)",
            dir.display(),
            lora::WEIGHTS_FILE,
            first.display()
        )));
    }
    Ok(Some(dir))
}

/// The run summary in the metadata and on stderr.
#[derive(serde::Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub counts: Counts,
    pub skipped: usize,
    /// The first skipped rows (all were printed as they were found).
    pub skipped_rows: Vec<String>,
    pub deduped: usize,
    pub seconds: f64,
}

pub fn summary(counts: &Counts, scan: &Scan, seconds: f64) -> Summary {
    Summary {
        counts: *counts,
        skipped: scan.skipped,
        skipped_rows: scan.skipped_rows.clone(),
        deduped: scan.deduped,
        seconds,
    }
}

/// Texts tagged by [`tag_texts`], each as one paragraph.
pub struct Tagged {
    pub frame: DataFrame,
    pub metadata: Vec<(String, String)>,
    /// Per text: its rows (index into the texts, then the row).
    pub rows: Vec<(usize, Row)>,
}

/// Whether [`tag_texts`] keeps each paragraph's embedding, and of which
/// encoder.
pub enum Embeddings<'a> {
    Off,
    Plain,
    /// The encoder with this adapter folder merged (`train --adapter`).
    Adapted(&'a Path),
}

/// What [`tag_texts`] runs on the texts.
pub struct TextJob<'a> {
    pub codebook: Option<Codebook>,
    pub models: &'a ModelChoice,
    pub tasks: Tasks,
    pub embeddings: Embeddings<'a>,
    /// Per text, the stance targets to score (all for all when `None`).
    pub only: Option<Vec<Targets>>,
    pub progress: crate::progress::Mode,
}

/// Tags `texts` in memory, each as one paragraph (not segmented), for
/// `eval`, `calibrate` and `train`. Model outputs go through the feature
/// cache.
pub fn tag_texts(texts: Vec<String>, t: TextJob) -> Result<Tagged> {
    let started = chrono::Utc::now();
    let segment = SegmentConfig {
        split: false,
        ..Default::default()
    };
    let input = Input::Texts(Arc::new(texts));
    let mut job = open(input, t.codebook, t.models, t.tasks, segment, t.progress)?;
    job.engine.cache = true;
    if let Embeddings::Adapted(a) = t.embeddings {
        job.models.adapter = Some(a.to_path_buf());
    }
    job.stance_only = t.only.map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, t)| (crate::input::text_id(i), t))
            .collect()
    });
    if !matches!(t.embeddings, Embeddings::Off) {
        job.engine.embeddings = true;
        if job.models.encoder.is_none() {
            job.models.encoder = Some(open_model(&t.models.encoder)?);
        }
    }
    let plan = Plan::new(&job)?;
    let (inputs, scan) = pipeline::scan(&job, &|_| {})?;
    let mut sink = pipeline::Collect::default();
    let counts = pipeline::run(&plan, &inputs, &scan, &Default::default(), &mut sink)?.counts;
    let models = job.models(&plan)?;
    let (mut metadata, _) =
        crate::provenance::metadata(&job, &plan, &models, &scan, None, started)?;
    let summary = serde_json::to_string(&summary(&counts, &scan, 0.0))
        .map_err(|e| Error::Config(format!("run summary: {e}")))?;
    metadata.push(("paratag.summary".into(), summary));
    collect(sink, &scan, job.codebook.as_ref(), metadata)
}

/// The collected windows as one table and as rows by text index.
fn collect(
    sink: pipeline::Collect,
    scan: &Scan,
    codebook: Option<&Codebook>,
    metadata: Vec<(String, String)>,
) -> Result<Tagged> {
    let empty = pipeline::Labeled {
        ids: vec![],
        ordinals: vec![],
        rows: vec![],
        passthrough: crate::input::passthrough(&[], &scan.schema)?,
        counts: vec![],
    };
    let mut frame = crate::output::frame(&empty, codebook)?;
    let mut rows = vec![];
    for w in sink.0 {
        frame.vstack_mut(&crate::output::frame(&w, codebook)?)?;
        for r in w.rows {
            let id = &w.ids[r.article];
            let i = crate::input::text_index(id)
                .ok_or_else(|| Error::Config(format!("article id {id:?} is not a text's")))?;
            rows.push((i, r));
        }
    }
    Ok(Tagged {
        frame,
        metadata,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(dir: &Path, task: &str, threshold: Option<f64>) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let t = threshold.map_or(String::new(), |t| format!("threshold = {t}\n"));
        let meta = format!(
            "kind = \"stance\"\ntask = \"{task}\"\nlabels = [\"favor\", \"against\", \"none\"]\nencoder_id = \"e\"\nencoder_sha256 = \"0\"\nfeatures = \"f\"\ntemperature = 1.0\ntrain_sha256 = \"0\"\ntrain_items = 1\n[hyper]\nepochs = 1\nlearning_rate = 0.1\nweight_decay = 0.0\nclass_weights = true\nseed = 1\n[dev]\nitems = 1\naccuracy = 1.0\nmacro_f1 = 1.0\nnll_before_temperature = 1.0\nnll_after_temperature = 1.0\n{t}"
        );
        std::fs::write(dir.join(head::META_FILE), meta).unwrap();
        dir.to_path_buf()
    }

    #[test]
    fn stance_targets_without_a_threshold_take_their_heads() {
        let text = r#"[codebook]
name = "t"

[[stance]]
id = "a"
target = "A"
favor = "For A."
against = "Against A."

[[stance]]
id = "b"
target = "B"
favor = "For B."
against = "Against B."

[[stance]]
id = "c"
target = "C"
favor = "For C."
against = "Against C."
threshold = 0.7

[[stance]]
id = "d"
target = "D"
favor = "For D."
against = "Against D."
"#;
        let mut cb = Codebook::parse(Path::new("cb.toml"), text.into()).unwrap();
        let t = tempfile::tempdir().unwrap();
        let heads = [
            head(&t.path().join("a"), "stance_a", Some(0.35)),
            // Trained before heads carried a threshold: 0.5 stays, and the
            // head for any target does not step in for a target's own head.
            head(&t.path().join("d"), "stance_d", None),
            head(&t.path().join("any"), "stance_*", Some(0.42)),
        ];
        head_thresholds(&mut cb, &heads).unwrap();
        let th: Vec<f32> = cb.stances.iter().map(|s| s.threshold).collect();
        assert_eq!(th, [0.35, 0.42, 0.7, 0.5]);
    }
}
