//! `paratag tag INPUT... -o OUT.parquet`: the labeling job.

use anyhow::{Context, Result};
use paratag::choice::Choice;
use paratag::codebook::Codebook;
use paratag::dataset::{self, Dataset};
use paratag::heads::Aggregation;
use paratag::input::{Format, ReadOptions};
use paratag::models::head::{self, Head};
use paratag::models::profile;
use paratag::models::registry;
use paratag::models::{DTypeArg, DeviceArg, ModelDir};
use paratag::output::{self, FileSink};
use paratag::pipeline::{self, Counts, Job};
use paratag::plan::Plan;
use paratag::provenance;
use paratag::record::Row;
use paratag::scan::Scan;
use paratag::segment::SegmentConfig;
use paratag::shard::Shard;
use paratag::task::HeadKind;
use polars::prelude::DataFrame;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input files or folders: .jsonl/.csv/.parquet tables, folders of
    /// .txt/.md/.html (read recursively), or `-` for JSONL on stdin.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output: a Parquet file (written whole, renamed at the end), or a
    /// dataset folder (`out/`, or with --chunk-rows / --shard) of parts
    /// plus `_manifest.json`, which --resume continues.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Write a dataset folder with parts of about N rows (default 10000).
    #[arg(long)]
    pub chunk_rows: Option<usize>,
    /// Continue the dataset folder a killed or failed run left: skip the
    /// articles its good parts hold, redo the rest.
    #[arg(long)]
    pub resume: bool,
    /// Replace an existing -o file (never done silently); with --resume,
    /// continue even though the settings differ.
    #[arg(long)]
    pub force: bool,
    /// An input with no articles writes an empty table (with a warning)
    /// instead of stopping with an error.
    #[arg(long)]
    pub allow_empty: bool,
    /// Tag one shard: K/N (0-based), or `auto` from SLURM_ARRAY_TASK_ID /
    /// SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX with --shards N.
    /// Writes OUT/shard-K-of-N/; `paratag merge OUT` joins the shards.
    #[arg(long)]
    pub shard: Option<String>,
    /// The number of shards, for --shard auto under Kubernetes.
    #[arg(long)]
    pub shards: Option<u32>,
    /// Articles per window: the unit that is read, tagged and written
    /// before the next (memory, not the output, depends on it).
    #[arg(long, default_value_t = pipeline::WINDOW)]
    pub window: usize,
    /// Codebook TOML with the topics and stance targets.
    #[arg(short, long)]
    pub codebook: Option<PathBuf>,
    #[command(flatten)]
    pub models: ModelArgs,
    #[arg(long, default_value = "id")]
    pub id_col: String,
    #[arg(long, default_value = "text")]
    pub text_col: String,
    /// Override the format the extension implies.
    #[arg(long, value_parser = crate::cmd::choice::<Format>())]
    pub input_format: Option<Format>,
    #[command(flatten)]
    pub table: TableArgs,
    /// Skip malformed rows (listed in the summary) instead of stopping.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Keep the first of rows sharing an id instead of stopping.
    #[arg(long)]
    pub dedupe: bool,
    /// Tag only the first N articles.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long)]
    pub no_topic: bool,
    #[arg(long)]
    pub no_stance: bool,
    #[arg(long)]
    pub no_ner: bool,
    /// Take each text as one paragraph: no splitting, no boilerplate removal
    /// (for inputs that are already paragraphs or sentences).
    #[arg(long)]
    pub no_segment: bool,
    /// Detect paragraph languages among these only (ISO 639-1 codes,
    /// comma-separated, e.g. `ar,en,ru,uk`); default: all whatlang knows.
    #[arg(long, value_delimiter = ',')]
    pub languages: Vec<String>,
    /// No progress bar and no summary line.
    #[arg(short, long)]
    pub quiet: bool,
}

/// How CSV/TSV files are read: inputs for `tag`, gold for `eval`,
/// `calibrate` and `train` (one reader, `paratag::table`).
#[derive(Debug, Clone, clap::Args)]
pub struct TableArgs {
    /// CSV/TSV field delimiter: one character, or tab, comma, semicolon,
    /// pipe (default: `,`; tab for .tsv).
    #[arg(long, value_parser = paratag::table::parse_delimiter)]
    pub delimiter: Option<u8>,
    /// CSV/TSV quote character (default `"`).
    #[arg(long, value_parser = paratag::table::parse_delimiter)]
    pub quote: Option<u8>,
    /// Read CSV/TSV quotes as ordinary characters (files with bare `"` in
    /// unquoted cells).
    #[arg(long)]
    pub no_quote: bool,
    /// The CSV/TSV file has no header row: name its columns with --columns.
    #[arg(long, requires = "columns")]
    pub no_header: bool,
    /// Column names in order, for --no-header (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// CSV/TSV text encoding (cp1252, latin1, utf-16, ...); default UTF-8, and
    /// detected when the file is not UTF-8.
    #[arg(long)]
    pub encoding: Option<String>,
}

impl TableArgs {
    pub fn options(&self) -> paratag::table::TableOptions {
        paratag::table::TableOptions {
            delimiter: self.delimiter,
            quote: self.quote,
            no_quote: self.no_quote,
            no_header: self.no_header,
            columns: self.columns.clone(),
            encoding: self.encoding.clone(),
        }
    }
}

/// Model options shared by `tag`, `eval` and `calibrate` (which tag gold
/// texts themselves when no predictions are given).
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// An installed profile's codebook and heads (`paratag models list`).
    /// Without -c, --heads, --ner or --nli the profile `default` (which
    /// scripts/setup.sh installs) is used; -c with a profile replaces its
    /// codebook and keeps its heads.
    #[arg(long, conflicts_with = "heads")]
    pub profile: Option<String>,
    /// Sentence encoder (folder or installed name) for similarity zero-shot.
    #[arg(long, default_value = "multilingual-e5-small")]
    pub encoder: String,
    /// NLI model (folder or installed name); when given, topics and stance use NLI
    /// unless the codebook says `method = "embedding"`.
    #[arg(long)]
    pub nli: Option<String>,
    /// NER model (folder or installed name). Required unless --no-ner.
    #[arg(long)]
    pub ner: Option<String>,
    /// Sub-token aggregation for NER words.
    #[arg(long, value_parser = crate::cmd::choice::<Aggregation>(), default_value = "first")]
    pub aggregation: Aggregation,
    /// libtorch intra-op threads per model (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Padded tokens per batch. 512-2048 measured fastest on 2 CPU cores
    /// (4096 was 1.4x slower); raise it on a GPU.
    #[arg(long, default_value_t = 2048)]
    pub batch_tokens: usize,
    #[arg(long, value_parser = crate::cmd::choice::<DeviceArg>(), default_value = "cpu")]
    pub device: DeviceArg,
    /// `auto` is f32 on every CPU (bf16 is faster on some, but its labels
    /// depend on the batching under AMX; docs/architecture.md says why).
    #[arg(long, value_parser = crate::cmd::choice::<DTypeArg>(), env = "PARATAG_DTYPE", default_value = "auto")]
    pub dtype: DTypeArg,
    /// Trained head folders (`paratag train`), each for the topics, one
    /// stance target or the entities; they read the encoder's one pass.
    #[arg(long, num_args = 1..)]
    pub heads: Vec<PathBuf>,
}

impl ModelArgs {
    /// Whether the command names a model or heads of its own.
    fn names_models(&self) -> bool {
        !self.heads.is_empty() || self.ner.is_some() || self.nli.is_some()
    }

    /// The profile the command runs with, its heads put into `self.heads`
    /// (its codebook is the caller's where no `-c` is given): the one named
    /// by `--profile`, else `default` when the command names no codebook,
    /// heads or models. Without `default` installed that is an error when
    /// a model is `needed`, else no profile.
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
                Err(e) => anyhow::bail!(
                    "nothing to tag with: no --profile, -c CODEBOOK, --heads, --ner or --nli, and {e}"
                ),
            },
        };
        self.heads = p.head_dirs();
        Ok(Some(p))
    }
}

/// Where the output goes.
enum Out {
    File(PathBuf),
    Folder(PathBuf),
}

impl Out {
    fn of(a: &Args) -> Result<Out> {
        let o = &a.output;
        let folder = a.chunk_rows.is_some()
            || a.shard.is_some()
            || o.is_dir()
            || o.as_os_str().to_string_lossy().ends_with('/');
        if folder {
            return Ok(Out::Folder(o.clone()));
        }
        if a.resume {
            anyhow::bail!(
                "--resume continues a dataset folder: give -o DIR/ (or --chunk-rows N); a single .parquet file is written whole or not at all"
            );
        }
        Ok(Out::File(o.clone()))
    }

    /// Fails on an unwritable output, or a file that exists without
    /// `--force`, before any work.
    fn check(&self, force: bool) -> Result<()> {
        match self {
            Out::File(p) => {
                if p.is_file() && !force {
                    anyhow::bail!(
                        "{}: exists; pass --force to replace it (an output is never overwritten silently)",
                        p.display()
                    );
                }
                drop(paratag::atomic::Pending::create(p)?)
            }
            Out::Folder(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("{}", d.display()))?;
                drop(paratag::atomic::Pending::create(&d.join("_check"))?);
            }
        }
        Ok(())
    }
}

pub fn run(mut args: Args) -> Result<()> {
    let started = chrono::Utc::now();
    let t0 = std::time::Instant::now();
    let out = Out::of(&args)?;
    out.check(args.force)?;
    let profile = args
        .models
        .apply_profile(args.codebook.is_some(), !args.no_ner)?;
    if let Some(p) = &profile {
        args.codebook.get_or_insert_with(|| p.codebook());
    }
    let codebook = match &args.codebook {
        Some(p) => Some(Codebook::load(p)?),
        None => None,
    };
    let shard = match &args.shard {
        Some(s) => Some(Shard::parse(s, args.shards)?),
        None if args.shards.is_some() => anyhow::bail!("--shards N goes with --shard auto"),
        None => None,
    };
    let mut job = job(
        args.inputs.clone(),
        ReadOptions {
            id_col: args.id_col.clone(),
            text_col: args.text_col.clone(),
            format: args.input_format,
            skip_bad_rows: args.skip_bad_rows,
            dedupe: args.dedupe,
            limit: args.limit,
            table: args.table.options(),
        },
        codebook,
        &args.models,
        Tasks {
            topic: !args.no_topic,
            stance: !args.no_stance,
            ner: !args.no_ner,
        },
        SegmentConfig {
            split: !args.no_segment,
            ..Default::default()
        },
        paratag::progress::Mode::auto(args.quiet),
    )?;
    if args.window == 0 {
        anyhow::bail!("--window must be > 0");
    }
    job.window = args.window;
    job.shard = shard;
    job.languages = paratag::lang::Languages::parse(&args.languages)?;
    // Codebook/model mismatches fail before any input is read.
    let plan = Plan::new(&job)?;
    let quiet = args.quiet;
    let report = move |line: &str| {
        if !quiet {
            eprintln!("paratag: {line}");
        }
    };
    let (inputs, scan) = pipeline::scan(&job, &report)?;
    if scan.articles == 0 {
        let names: Vec<String> = args
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let skipped = if scan.skipped > 0 {
            format!(" ({} bad rows skipped)", scan.skipped)
        } else {
            String::new()
        };
        let what = format!("{}: no articles{skipped}", names.join(", "));
        if !args.allow_empty {
            anyhow::bail!("{what}; pass --allow-empty to write an empty table");
        }
        report(&format!(
            "warning: {what}; the table is empty (--allow-empty)"
        ));
    }
    let models = job.models(&plan)?;
    let (mut meta, settings) = provenance::metadata(
        &job,
        &plan,
        &models,
        &scan,
        profile.as_ref().map(|p| p.name.as_str()),
        started,
    )?;
    let schema = output::schema(job.codebook.as_ref(), &scan.schema)?;
    let (ran, resumed, dest) = match &out {
        Out::File(p) => {
            paratag::atomic::on_interrupt(format!("nothing was written to {}", p.display()));
            let mut sink = FileSink::create(p, job.codebook.clone(), &schema)?;
            let ran = pipeline::run(&plan, &inputs, &scan, &Default::default(), &mut sink)?;
            let summary = summary(&ran.counts, &scan, t0.elapsed().as_secs_f64());
            meta.push(("paratag.summary".into(), json(&summary)));
            meta.push((
                "paratag.finished_at".into(),
                chrono::Utc::now().to_rfc3339(),
            ));
            sink.finish(meta)?;
            (ran, 0, p.display().to_string())
        }
        Out::Folder(root) => {
            let announce = move |line: &str| {
                if !quiet {
                    eprintln!("paratag: {line}");
                }
            };
            let ds = Dataset::open(
                root,
                dataset::Options {
                    resume: args.resume,
                    force: args.force,
                    chunk_rows: args.chunk_rows.unwrap_or(dataset::CHUNK_ROWS),
                    shard: job.shard,
                    settings,
                    articles: scan.shard_articles,
                    skipped_rows: scan.skipped,
                    deduped: scan.deduped,
                    metadata: meta,
                    codebook: job.codebook.clone(),
                    schema,
                    report: &announce,
                },
            )?;
            let resumed = ds.done_articles();
            let dir = ds.dir.display().to_string();
            paratag::atomic::on_interrupt(format!(
                "{dir}: the parts written so far are kept (not yet visible to readers); run the same command with --resume"
            ));
            let mut ds = ds;
            // The ranges the good parts held when the job started (the sink
            // appends parts as it goes).
            let done = pipeline::Done::new(ds.done_ranges());

            let keep = || {
                format!("{dir}: stopped; the parts written so far are kept: fix the cause, then run the same command with --resume")
            };
            let ran = pipeline::run(&plan, &inputs, &scan, &done, &mut ds).with_context(keep)?;
            let m = ds.finish().with_context(keep)?;
            if !m.complete {
                anyhow::bail!(
                    "{dir}: {} of {} articles written; run again with --resume",
                    m.parts.iter().map(|p| p.articles).sum::<usize>(),
                    m.articles
                );
            }
            (ran, resumed, dir)
        }
    };
    if !args.quiet {
        let s = summary(&ran.counts, &scan, t0.elapsed().as_secs_f64());
        let rate = s.counts.paragraphs as f64 / s.seconds.max(1e-9);
        let resumed = if resumed > 0 {
            format!(" ({resumed} articles already done)")
        } else {
            String::new()
        };
        let c = &s.counts;
        eprintln!(
            "paratag: {} articles{resumed}, {} paragraphs, {} boilerplate lines dropped, {} empty texts, {} windows ({} long paragraphs), {} skipped rows, {} duplicates dropped, {:.1} s, {:.1} paragraphs/s, models busy {:.1} % -> {dest}",
            c.articles, c.paragraphs, c.dropped_lines, c.empty_texts, c.windows, c.long_paragraphs,
            s.skipped, s.deduped, s.seconds, rate, 100.0 * ran.busy
        );
    }
    Ok(())
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

/// A metadata value as JSON text.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("metadata serialises")
}

/// Which heads to run.
pub struct Tasks {
    pub topic: bool,
    pub stance: bool,
    pub ner: bool,
}

/// A tagging job: resolves and opens the models the codebook and tasks need.
pub fn job(
    inputs: Vec<PathBuf>,
    read: ReadOptions,
    codebook: Option<Codebook>,
    m: &ModelArgs,
    tasks: Tasks,
    segment: SegmentConfig,
    progress: paratag::progress::Mode,
) -> Result<Job> {
    let needs_classes = codebook.as_ref().is_some_and(|c| {
        (tasks.topic && !c.topics.topics.is_empty()) || (tasks.stance && !c.stances.is_empty())
    });
    let open = |arg: &str| -> Result<ModelDir> { Ok(ModelDir::open(&registry::resolve(arg)?)?) };
    let nli = match &m.nli {
        Some(n) if needs_classes => Some(open(n)?),
        _ => None,
    };
    // Linear heads are plain vectors; heads with tuned encoder layers (all NER
    // heads) are loaded by the encoder thread. Heads for tasks not run are
    // left out, so they cost nothing.
    let (mut heads, mut tuned) = (vec![], vec![]);
    for d in &m.heads {
        let meta = head::read_meta(d)?;
        let wanted = match meta.kind {
            HeadKind::Ner => tasks.ner,
            HeadKind::Topic => tasks.topic,
            HeadKind::Stance | HeadKind::Holder => tasks.stance,
        };
        if !wanted {
            continue;
        }
        let seen = tuned
            .iter()
            .any(|t: &(PathBuf, head::HeadMeta)| t.1.task == meta.task)
            || heads.iter().any(|h: &Head| h.meta.task == meta.task);
        if seen {
            anyhow::bail!(
                "{}: a second head for `{}`; pass one",
                d.display(),
                meta.task
            );
        }
        if paratag::models::tuned_head::is_tuned(&meta) {
            tuned.push((d.clone(), meta));
        } else {
            heads.push(Head::load(d)?);
        }
    }
    let adapter = heads_adapter(&heads, &tuned)?;
    let ner_head = tuned.iter().any(|t| t.1.kind == HeadKind::Ner);
    let uses_encoder = needs_classes
        && codebook.as_ref().is_some_and(|c| {
            use paratag::codebook::Method;
            nli.is_none()
                || !heads.is_empty()
                || c.topics.method == Method::Embedding
                || c.stances.iter().any(|s| s.method == Method::Embedding)
        });
    let encoder = if uses_encoder {
        Some(open(&m.encoder).with_context(|| {
            "sentence encoder (run scripts/setup.sh, or pass --encoder DIR / --nli DIR)"
        })?)
    } else {
        None
    };
    let ner = match (&m.ner, tasks.ner) {
        (_, false) => None,
        (None, true) if ner_head => None,
        (Some(n), true) => Some(open(n)?),
        (None, true) => match registry::resolve("ner") {
            Ok(p) => Some(ModelDir::open(&p)?),
            Err(_) => anyhow::bail!(
                "no NER model: pass --ner DIR, run `paratag models fetch ner`, or use --no-ner"
            ),
        },
    };
    let encoder = match encoder {
        None if !tuned.is_empty() => {
            Some(open(&m.encoder).context("sentence encoder for the heads")?)
        }
        e => e,
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
    if m.batch_tokens == 0 {
        anyhow::bail!("--batch-tokens must be > 0");
    }
    let threads = m.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if threads == 0 {
        anyhow::bail!("--threads must be > 0");
    }
    Ok(Job {
        inputs,
        read,
        codebook,
        encoder,
        nli,
        ner,
        topic: tasks.topic,
        stance: tasks.stance,
        threads,
        batch_tokens: m.batch_tokens,
        device: m.device.resolve()?,
        dtype: m.dtype.resolve(),
        dtype_requested: m.dtype.name(),
        aggregation: m.aggregation,
        segment,
        languages: Default::default(),
        progress,
        heads,
        tuned,
        adapter,
        embeddings: false,
        window: pipeline::WINDOW,
        shard: None,
        stance_only: None,
        cache: false,
    })
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
    Adapted(&'a std::path::Path),
}

/// Tags `texts`, each as one paragraph (article ids `g0`, `g1`, ...), for
/// `eval` and `train`.
pub fn tag_texts(
    texts: &[&str],
    codebook: Option<Codebook>,
    m: &ModelArgs,
    tasks: Tasks,
    embeddings: Embeddings,
    only: Option<Vec<paratag::plan::Targets>>,
    progress: paratag::progress::Mode,
) -> Result<Tagged> {
    let started = chrono::Utc::now();
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("texts.jsonl");
    let lines: Vec<serde_json::Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": format!("g{i}"), "text": t}))
        .collect();
    std::fs::write(&input, paratag::formats::jsonl(lines))?;
    let mut job = job(
        vec![input],
        Default::default(),
        codebook,
        m,
        tasks,
        SegmentConfig {
            split: false,
            ..Default::default()
        },
        progress,
    )?;
    job.cache = true;
    if let Embeddings::Adapted(a) = embeddings {
        job.adapter = Some(a.to_path_buf());
    }
    job.stance_only = only.map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, t)| (format!("g{i}"), t))
            .collect()
    });
    if !matches!(embeddings, Embeddings::Off) {
        job.embeddings = true;
        if job.encoder.is_none() {
            job.encoder = Some(ModelDir::open(&registry::resolve(&m.encoder)?)?);
        }
    }
    let plan = Plan::new(&job)?;
    let (inputs, scan) = pipeline::scan(&job, &|_| {})?;
    let mut sink = pipeline::Collect::default();
    let counts = pipeline::run(&plan, &inputs, &scan, &Default::default(), &mut sink)?.counts;
    let models = job.models(&plan)?;
    let (mut metadata, _) = provenance::metadata(&job, &plan, &models, &scan, None, started)?;
    metadata.push((
        "paratag.summary".into(),
        json(&summary(&counts, &scan, 0.0)),
    ));
    let mut frame = output::frame(&empty_window(&scan)?, job.codebook.as_ref())?;
    let mut rows = vec![];
    for w in sink.0 {
        frame.vstack_mut(&output::frame(&w, job.codebook.as_ref())?)?;
        for r in w.rows {
            let i: usize = w.ids[r.article][1..].parse()?;
            rows.push((i, r));
        }
    }
    Ok(Tagged {
        frame,
        metadata,
        rows,
    })
}

fn empty_window(scan: &Scan) -> Result<pipeline::Labeled> {
    Ok(pipeline::Labeled {
        ids: vec![],
        ordinals: vec![],
        rows: vec![],
        passthrough: paratag::input::passthrough(&[], &scan.schema)?,
        counts: vec![],
    })
}

/// The adapter the heads share, if they were trained with one: every head
/// of a job rides on one encoder pass, so they must all read the same
/// (adapted or plain) encoder. Its weights must be the ones the heads
/// recorded.
fn heads_adapter(heads: &[Head], tuned: &[(PathBuf, head::HeadMeta)]) -> Result<Option<PathBuf>> {
    use paratag::models::lora;
    let all: Vec<(&std::path::Path, Option<&String>)> = heads
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
            Some(_) => anyhow::bail!(
                "{} and {} were trained with different adapters; heads in one run share one encoder pass, so train them together (`paratag train multi`)",
                first.display(),
                d.display()
            ),
            None => anyhow::bail!(
                "{} reads the plain encoder, but {} needs the encoder with its adapter; heads in one run share one encoder pass, so tag them in separate runs",
                d.display(),
                first.display()
            ),
        }
    }
    let dir = lora::dir_of_head(first);
    let got = lora::weights_sha256(&dir).with_context(|| {
        format!(
            "{}: the head's adapter (expected beside it, in ../{})",
            first.display(),
            lora::DIR
        )
    })?;
    if &got != sha {
        anyhow::bail!(
            "{}: {} has sha256 {got}, but {} was trained with {sha}; the adapter and its heads must come from one `paratag train multi` run (or the head from `train topic|stance --adapter` on it)",
            dir.display(),
            lora::WEIGHTS_FILE,
            first.display()
        );
    }
    Ok(Some(dir))
}
