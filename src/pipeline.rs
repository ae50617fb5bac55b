//! The whole flow of `paratag tag` on one page.
//!
//! ```text
//! scan: pass 1 over the inputs (bad rows, duplicates, schema, repeat index)
//!
//! read ─► segment ─► lang ─► dedupe ─► tokenize ═══► infer ═══► label ═══► write
//! └────── prepare thread (rayon inside) ───────┘   this thread   label    writer
//!                                                + one thread   thread   thread
//!                                                  per model
//! ```
//!
//! Articles stream through in windows of `Job::window` articles, one thread
//! per stage, joined by bounded channels (═══): at most seven windows are in
//! memory whatever the corpus size, the models never wait for reading,
//! labeling or writing, and each window is written as soon as it is labeled.
//! A paragraph's labels depend only on its own text (batches are bucketed by
//! length, replies keyed), so the output is the same for any window size,
//! `--batch-tokens`, `--threads` or input order. That is also why a
//! paragraph whose text the job already tagged skips the models and takes
//! the first one's labels ([`crate::dedupe`]: marked in the read stage,
//! filled in the label stage).

use crate::error::{Error, Result};
use crate::infer::{Load, Models, Outputs, Tokenized, Tokenizers, Workers};
use crate::input::{Inputs, Record};
use crate::plan::{Input, Plan, Targets, TopicResult};
use crate::progress::Progress;
use crate::record::Row;
use crate::scan::Scan;
use crate::{dedupe, label, lang, segment};
use crossbeam_channel::bounded;
use polars::prelude::DataFrame;
use rayon::prelude::*;

pub use crate::infer::MODEL_THREAD;
pub use crate::plan::Job;

/// Articles per window by default. Each window ends its length buckets
/// with part-filled batches, so bigger windows batch better; 1024 measured
/// no higher peak memory than 256 (the models' loading peak dominates).
pub const WINDOW: usize = 1024;
/// A window also closes at this much text (about a million tokens), so
/// long articles keep it bounded.
const WINDOW_BYTES: usize = 4 << 20;

/// How often, at most, the writer hands freed memory back (after a window).
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// What a run (or one window, or one part) did.
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub articles: usize,
    pub paragraphs: usize,
    pub dropped_lines: usize,
    pub empty_texts: usize,
    /// Windows over all paragraphs (per paragraph, the most any model needed).
    pub windows: usize,
    pub long_paragraphs: usize,
    /// Paragraphs whose labels were copied from an earlier one with the
    /// same text ([`crate::dedupe`]) instead of computed.
    #[serde(default)]
    pub copied: usize,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.articles += o.articles;
        self.paragraphs += o.paragraphs;
        self.dropped_lines += o.dropped_lines;
        self.empty_texts += o.empty_texts;
        self.windows += o.windows;
        self.long_paragraphs += o.long_paragraphs;
        self.copied += o.copied;
    }
}

/// What [`run`] did, and how busy it kept the models.
pub struct Ran {
    pub counts: Counts,
    /// Share of the time from the models' start to the last batch that the
    /// model threads spent computing (summed over models, so it can pass 1
    /// with several). Well under 1 means the other stages kept them waiting.
    pub busy: f64,
}

/// One window of articles, tagged: what a [`Sink`] writes.
pub struct Labeled {
    pub ids: Vec<String>,
    /// Each article's ordinal among the job's (shard's) articles.
    pub ordinals: Vec<u64>,
    /// Paragraph rows in article order; `Row::article` indexes `ids`.
    pub rows: Vec<Row>,
    /// Pass-through columns, one row per article.
    pub passthrough: DataFrame,
    /// Per article (`counts.articles` is 1 each).
    pub counts: Vec<Counts>,
}

impl Labeled {
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for c in &self.counts {
            t.add(c);
        }
        t
    }
}

/// Where labeled windows go: a Parquet file, a dataset folder, memory.
pub trait Sink: Send {
    fn write(&mut self, window: Labeled) -> Result<()>;
}

/// A sink that keeps every window (tagging gold texts for eval and train).
#[derive(Default)]
pub struct Collect(pub Vec<Labeled>);

impl Sink for Collect {
    fn write(&mut self, w: Labeled) -> Result<()> {
        self.0.push(w);
        Ok(())
    }
}

type Topics = Vec<Option<TopicResult>>;

/// A window between preparation and inference.
struct Prepared {
    ids: Vec<String>,
    ordinals: Vec<u64>,
    rows: Vec<Row>,
    passthrough: DataFrame,
    counts: Vec<Counts>,
    tokenized: Tokenized,
    /// The rows the models run on (all but copies, [`crate::dedupe`]), in
    /// order; model outputs and `only` are indexed by position in it.
    computed: Vec<usize>,
    /// Each row's [`dedupe::key`] (empty when the job copies nothing).
    keys: Vec<dedupe::Key>,
    /// Per computed row, the stance targets it is scored for
    /// (`Job::stance_only`).
    only: Vec<Option<Targets>>,
}

impl Prepared {
    fn computed_texts(&self) -> Vec<&str> {
        self.computed
            .iter()
            .map(|&i| self.rows[i].text.as_str())
            .collect()
    }
}

/// What a resumed job finds done: the article ordinals it skips (sorted,
/// disjoint ranges `[a, b)`), and the first occurrences of paragraph texts
/// in the parts already written, oldest first ([`crate::dedupe`]).
#[derive(Debug, Default, Clone)]
pub struct Done {
    ranges: Vec<(u64, u64)>,
    firsts: Vec<(dedupe::Key, dedupe::First)>,
}

impl Done {
    pub fn new(mut ranges: Vec<(u64, u64)>) -> Done {
        ranges.sort_unstable();
        Done {
            ranges,
            firsts: vec![],
        }
    }

    /// With the first occurrences `(article id, paragraph, text)` of the
    /// parts written, in input order.
    pub fn with_firsts(mut self, firsts: Vec<(String, u32, String)>) -> Done {
        self.firsts = firsts
            .into_par_iter()
            .map(|(id, paragraph, text)| {
                let first = dedupe::First {
                    article_id: id.into(),
                    paragraph,
                    here: false,
                };
                (dedupe::key(&text), first)
            })
            .collect();
        self
    }

    pub fn contains(&self, ordinal: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.1 <= ordinal);
        self.ranges.get(i).is_some_and(|r| r.0 <= ordinal)
    }

    pub fn count(&self) -> u64 {
        self.ranges.iter().map(|r| r.1 - r.0).sum()
    }
}

/// Reads the inputs and scans them (pass 1).
pub fn scan(job: &Job, report: &(dyn Fn(&str) + Sync)) -> Result<(Inputs, Scan)> {
    let inputs = match &job.input {
        Input::Files { paths, read } => Inputs::open(paths, read)?,
        Input::Texts(texts) => Inputs::texts(texts.clone()),
    };
    let scan = crate::scan::scan(&inputs, &job.segment, job.shard, report)?;
    Ok((inputs, scan))
}

/// Tags every kept article whose ordinal is not `done`, and writes the
/// windows to `sink` in input order.
pub fn run(
    plan: &Plan,
    inputs: &Inputs,
    scan: &Scan,
    done: &Done,
    sink: &mut dyn Sink,
) -> Result<Ran> {
    let job = plan.job;
    let bar = &Progress::new(job.progress, "paragraphs", true);
    let load = Load {
        device: job.engine.device,
        dtype: job.engine.dtype,
        threads: job.engine.threads,
        tuned: &job.models.tuned,
        adapter: job.models.adapter.as_deref(),
    };
    let (models, toks) = load_models(plan, &load)?;
    let pool = &stage_pool()?;
    let ran = std::thread::scope(|s| -> Result<Ran> {
        let workers = Workers::spawn(s, models, &load)?;
        let started = std::time::Instant::now();
        let anchor_work = toks.tokenize(&plan.anchor_work())?;
        let anchors = workers
            .run(anchor_work, job.engine.batch_tokens, &|| {})?
            .anchors();
        let toks = &toks;

        // read → segment → lang → tokenize
        let (prep_tx, prep_rx) = bounded::<Result<Prepared>>(1);
        let read = Reading {
            plan,
            inputs,
            scan,
            done,
            pool,
            toks,
            bar,
        };
        s.spawn(move || read.run(prep_tx));

        // label ═══► write
        let (out_tx, out_rx) = bounded::<Labeled>(1);
        let writer = s.spawn(move || write_windows(out_rx, sink));
        let (lab_tx, lab_rx) = bounded::<(Prepared, Outputs, Option<Topics>)>(1);
        let own = anchors.clone(); // a few codebook vectors
        let labeler = s.spawn(move || label_windows(plan, pool, &own, lab_rx, out_tx));

        // infer, one window after the other; labeling happens beside it
        infer_windows(plan, &workers, toks, &anchors, bar, prep_rx, lab_tx)?;
        let busy = workers.busy().as_secs_f64() / started.elapsed().as_secs_f64().max(1e-9);
        let counts = labeler
            .join()
            .map_err(|_| Error::Config("the labeling thread panicked".into()))??;
        writer
            .join()
            .map_err(|_| Error::Config("the writer thread panicked".into()))??;
        bar.finish();
        Ok(Ran { counts, busy })
    });
    // Freeing a 250k-piece tokenizer takes a third of a second; nothing
    // waits for it (a process that exits first just drops the thread).
    std::thread::spawn(move || drop(toks));
    ran
}

/// Loads the models and, beside them, the tokenizers (a second of JSON for
/// a 250k vocabulary): reading weights needs no more than the model's own
/// size.
fn load_models(plan: &Plan, load: &Load) -> Result<(Models, Tokenizers)> {
    let (models, toks) = std::thread::scope(|s| {
        let toks = s.spawn(|| Tokenizers::load(&plan.models()));
        let models = Models::load(&plan.models(), load, plan.job.engine.cache);
        let toks = toks
            .join()
            .unwrap_or_else(|_| Err(Error::Tokenizer("the tokenizer loader panicked".into())));
        (models, toks)
    });
    Ok((models?, toks?))
}

/// The read stage: kept articles in windows, each prepared on the stage
/// pool and sent on.
struct Reading<'a> {
    plan: &'a Plan<'a>,
    inputs: &'a Inputs,
    scan: &'a Scan,
    done: &'a Done,
    pool: &'a rayon::ThreadPool,
    toks: &'a Tokenizers,
    bar: &'a Progress,
}

impl Reading<'_> {
    fn run(self, tx: crossbeam_channel::Sender<Result<Prepared>>) {
        yield_to_models();
        let job = self.plan.job;
        let todo = (self.scan.shard_articles as u64).saturating_sub(self.done.count()) as usize;
        let mut seen = (0usize, 0usize); // articles, paragraphs
        let mut firsts = dedupe::Fifo::new(dedupe::CAPACITY);
        for (k, f) in &self.done.firsts {
            if firsts.get(k).is_none() {
                firsts.insert(*k, f.clone());
            }
        }
        let mut send = |w: Vec<(u64, Record)>| {
            let p = self
                .pool
                .install(|| prepare(self.plan, self.scan, self.toks, w, &mut firsts));
            if let Ok(p) = &p {
                seen = (seen.0 + p.ids.len(), seen.1 + p.rows.len());
                // Paragraphs to come, extrapolated from those seen.
                let per = seen.1 as f64 / seen.0.max(1) as f64;
                self.bar
                    .set_length((seen.1 as f64 + todo.saturating_sub(seen.0) as f64 * per) as u64);
            }
            tx.send(p).is_ok()
        };
        let (mut window, mut bytes) = (Vec::new(), 0);
        for r in self.scan.kept(self.inputs, job.shard) {
            match r {
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
                Ok((ord, _)) if self.done.contains(ord) => {}
                Ok((ord, rec)) => {
                    bytes += rec.text.len();
                    window.push((ord, rec));
                    if window.len() >= job.window || bytes >= WINDOW_BYTES {
                        bytes = 0;
                        if !send(std::mem::take(&mut window)) {
                            return;
                        }
                    }
                }
            }
        }
        if !window.is_empty() {
            send(window);
        }
    }
}

/// The infer stage: each window through the models, then to labeling.
fn infer_windows(
    plan: &Plan,
    workers: &Workers,
    toks: &Tokenizers,
    anchors: &[Vec<f32>],
    bar: &Progress,
    rx: crossbeam_channel::Receiver<Result<Prepared>>,
    tx: crossbeam_channel::Sender<(Prepared, Outputs, Option<Topics>)>,
) -> Result<()> {
    let batch_tokens = plan.job.engine.batch_tokens;
    for p in rx {
        let mut p = p?;
        let tokenized = std::mem::take(&mut p.tokenized);
        let mut out = workers.run(tokenized, batch_tokens, &|| bar.inc(1))?;
        // Copies are done too.
        bar.inc((p.rows.len() - p.computed.len()) as u64);
        // Stance targets gated on topics need the topics first.
        let mut topics = None;
        if plan.gates_nli() {
            let t = label::topics(plan, &out, anchors, p.computed.len());
            let texts = p.computed_texts();
            let only: Vec<Option<&Targets>> = p.only.iter().map(Option::as_ref).collect();
            let gated = plan.gated_work(&texts, &t, &only);
            if !gated.is_empty() {
                out.merge(workers.run(toks.tokenize(&gated)?, batch_tokens, &|| {})?);
            }
            topics = Some(t);
        }
        if tx.send((p, out, topics)).is_err() {
            break; // the labeler stopped; its error is below
        }
    }
    Ok(())
}

/// The label stage: a window's model outputs made into rows' labels.
fn label_windows(
    plan: &Plan,
    pool: &rayon::ThreadPool,
    anchors: &[Vec<f32>],
    rx: crossbeam_channel::Receiver<(Prepared, Outputs, Option<Topics>)>,
    tx: crossbeam_channel::Sender<Labeled>,
) -> Result<Counts> {
    yield_to_models();
    let mut total = Counts::default();
    let mut firsts = dedupe::Fifo::new(dedupe::CAPACITY);
    for (mut p, out, topics) in rx {
        let mut rows: Vec<Row> = p
            .computed
            .iter()
            .map(|&i| std::mem::take(&mut p.rows[i]))
            .collect();
        pool.install(|| {
            let topics = topics.unwrap_or_else(|| label::topics(plan, &out, anchors, rows.len()));
            let only: Vec<Option<&Targets>> = p.only.iter().map(Option::as_ref).collect();
            label::rows(plan, &mut rows, &out, anchors, &topics, &only)
        })?;
        for (j, (r, &i)) in rows.into_iter().zip(&p.computed).enumerate() {
            let c = &mut p.counts[r.article];
            c.windows += out.windows_of.get(&(j as u32)).copied().unwrap_or(0) as usize;
            c.long_paragraphs += usize::from(r.truncated_windows > 0);
            p.rows[i] = r;
        }
        fill_copies(&mut p, &mut firsts)?;
        let labeled = Labeled {
            ids: p.ids,
            ordinals: p.ordinals,
            rows: p.rows,
            passthrough: p.passthrough,
            counts: p.counts,
        };
        total.add(&labeled.total());
        if tx.send(labeled).is_err() {
            break; // the writer failed; its error is below
        }
    }
    Ok(total)
}

/// The rows the models skipped take their first occurrence's labels; the
/// rows computed as first occurrences are remembered, in the order the read
/// stage remembered them (so both forget the same ones).
fn fill_copies(p: &mut Prepared, firsts: &mut dedupe::Fifo<std::sync::Arc<Row>>) -> Result<()> {
    if p.keys.is_empty() {
        return Ok(());
    }
    let mut computed = p.computed.iter().peekable();
    for (i, k) in p.keys.iter().enumerate() {
        let row = &mut p.rows[i];
        if computed.next_if(|&&c| c == i).is_some() {
            if row.dup_of.is_none() {
                firsts.insert(*k, std::sync::Arc::new(row.clone()));
            }
            continue;
        }
        let first = firsts.get(k).ok_or_else(|| {
            Error::Config(format!(
                "internal: no labels kept for the paragraph copied to article {:?} paragraph {}",
                p.ids[row.article], row.paragraph
            ))
        })?;
        dedupe::copy_labels(first, row);
        let c = &mut p.counts[row.article];
        c.copied += 1;
        c.long_paragraphs += usize::from(row.truncated_windows > 0);
    }
    Ok(())
}

/// The write stage.
fn write_windows(rx: crossbeam_channel::Receiver<Labeled>, sink: &mut dyn Sink) -> Result<()> {
    yield_to_models();
    let mut trimmed = std::time::Instant::now();
    for w in rx {
        sink.write(w)?;
        // Memory freed by the windows behind this one goes back to the
        // system, so RSS stays flat however long the corpus.
        if trimmed.elapsed() >= TRIM_EVERY {
            crate::models::release_free_memory();
            trimmed = std::time::Instant::now();
        }
    }
    Ok(())
}

/// The threads the stages around the models (prepare, label) run their
/// parallel loops on: one per core, at a lower priority than the models
/// (see [`yield_to_models`]), so the first window is prepared at full
/// speed and later ones in the models' gaps, without preempting the
/// matrix products.
fn stage_pool() -> Result<rayon::ThreadPool> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .thread_name(|i| format!("paratag-stage-{i}"))
        .start_handler(|_| yield_to_models())
        .build()
        .map_err(|e| Error::Config(format!("cannot start the stage threads: {e}")))
}

/// Lowers this thread's priority (Linux: nice 10), so that where the
/// stages and the models share cores, the models run first; the stages do
/// a small fraction of the work and catch up in the models' gaps.
fn yield_to_models() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's own id; failure only leaves the
    // priority as it was.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// Segments a window's articles, detects each paragraph's language, and
/// tokenizes the model work, in parallel.
fn prepare(
    plan: &Plan,
    scan: &Scan,
    toks: &Tokenizers,
    w: Vec<(u64, Record)>,
    firsts: &mut dedupe::Fifo<dedupe::First>,
) -> Result<Prepared> {
    let segs: Vec<segment::Segmented> = w
        .par_iter()
        .map(|(_, r)| segment::segment(r.segment_source(), &scan.repeats, &plan.job.segment))
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
                ..Default::default()
            })
        })
        .collect();
    let detector = lang::Detector::new(&plan.job.languages);
    let articles: Vec<_> = segs
        .par_iter()
        .map(|s| detector.article(s.paragraphs.iter().map(|p| p.text.as_str())))
        .collect();
    rows.par_iter_mut().for_each(|r| {
        (r.lang, r.lang_score) = detector.paragraph(&r.text, articles[r.article].as_ref())
    });
    let (keys, computed) = mark_copies(plan, &mut rows, &w, firsts);
    let texts: Vec<&str> = computed.iter().map(|&i| rows[i].text.as_str()).collect();
    let only: Vec<Option<Targets>> = match &plan.job.stance_only {
        None => vec![None; computed.len()],
        Some(m) => computed
            .iter()
            .map(|&i| m.get(&w[rows[i].article].1.id).cloned())
            .collect(),
    };
    let refs: Vec<Option<&Targets>> = only.iter().map(Option::as_ref).collect();
    let mut tokenized = toks.tokenize(&plan.work(&texts, &refs))?;
    tokenized.wants = std::sync::Arc::new(plan.head_wants(&refs));
    let records: Vec<&Record> = w.iter().map(|(_, r)| r).collect();
    let passthrough = crate::input::passthrough(&records, &scan.schema)?;
    let counts = segs
        .iter()
        .zip(&w)
        .map(|(s, (_, r))| Counts {
            articles: 1,
            paragraphs: s.paragraphs.len(),
            dropped_lines: s.dropped_lines,
            empty_texts: usize::from(r.text.trim().is_empty()),
            ..Default::default()
        })
        .collect();
    let (ordinals, ids) = w.into_iter().map(|(o, r)| (o, r.id)).unzip();
    Ok(Prepared {
        ids,
        ordinals,
        rows,
        passthrough,
        counts,
        tokenized,
        computed,
        keys,
        only,
    })
}

/// Which rows the models run on ([`crate::dedupe`]). With `Job::dedupe`, a
/// row whose text an earlier row of the job had is marked `dup_of` that
/// row, and is left out when this run computed it. Returns each row's key
/// (none without dedupe) and the rows to compute.
fn mark_copies(
    plan: &Plan,
    rows: &mut [Row],
    w: &[(u64, Record)],
    firsts: &mut dedupe::Fifo<dedupe::First>,
) -> (Vec<dedupe::Key>, Vec<usize>) {
    if !plan.job.dedupe {
        return (vec![], (0..rows.len()).collect());
    }
    let keys: Vec<dedupe::Key> = rows.par_iter().map(|r| dedupe::key(&r.text)).collect();
    let ids: Vec<std::sync::Arc<str>> = w.iter().map(|(_, r)| r.id.as_str().into()).collect();
    let mut computed = Vec::with_capacity(rows.len());
    for (i, (r, k)) in rows.iter_mut().zip(&keys).enumerate() {
        match firsts.get(k) {
            Some(f) => {
                r.dup_of = Some((f.article_id.clone(), f.paragraph));
                if !f.here {
                    computed.push(i);
                }
            }
            None => {
                let first = dedupe::First {
                    article_id: ids[r.article].clone(),
                    paragraph: r.paragraph,
                    here: true,
                };
                firsts.insert(*k, first);
                computed.push(i);
            }
        }
    }
    (keys, computed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn done_ranges_answer_membership_and_count() {
        let d = super::Done::new(vec![(10, 20), (0, 3), (25, 26)]);
        let inside: Vec<u64> = (0..30).filter(|&o| d.contains(o)).collect();
        let want: Vec<u64> = (0..3).chain(10..20).chain(25..26).collect();
        assert_eq!(inside, want);
        assert_eq!(d.count(), 14);
        assert!(!super::Done::default().contains(0));
    }
}
