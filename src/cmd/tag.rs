//! `paratag tag INPUT... -o OUT.parquet`: the labeling job.

use anyhow::{Context, Result};
use paratag::codebook::Codebook;
use paratag::dataset::{self, Dataset};
use paratag::heads::{Aggregation, EntitySpans};
use paratag::input::{Format, ReadOptions};
use paratag::job::{self, summary, ModelChoice};
use paratag::models::{DTypeArg, DeviceArg};
use paratag::output::{self, FileSink};
use paratag::pipeline;
use paratag::plan::{Input, Plan, Tasks};
use paratag::provenance;
use paratag::scan::Scan;
use paratag::segment::SegmentConfig;
use paratag::shard::Shard;
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
    /// Run the models on every paragraph, also on those whose text (after
    /// NFC and whitespace folding) an earlier paragraph of the job had;
    /// by default those get the earlier one's labels and name it in
    /// `dup_of_article_id` / `dup_of_paragraph`.
    #[arg(long)]
    pub recompute_duplicates: bool,
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
    /// Entity span convention for clitics written onto a name (Arabic و،
    /// ب، ل، ك، ف): `name` keeps them outside the span, `word` spans whole
    /// words as ANERCorp and AQMAR do. docs/entities.md says why.
    #[arg(long, value_parser = crate::cmd::choice::<EntitySpans>(), default_value = "name")]
    pub entity_spans: EntitySpans,
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
    /// The model choice the library takes.
    pub fn choice(&self) -> ModelChoice {
        ModelChoice {
            profile: self.profile.clone(),
            encoder: self.encoder.clone(),
            nli: self.nli.clone(),
            ner: self.ner.clone(),
            aggregation: self.aggregation,
            entity_spans: self.entity_spans,
            threads: self.threads,
            batch_tokens: self.batch_tokens,
            device: self.device,
            dtype: self.dtype,
            heads: self.heads.clone(),
        }
    }

    /// [`ModelChoice::apply_profile`], the profile's heads put into `self`.
    pub fn apply_profile(
        &mut self,
        codebook_given: bool,
        needed: bool,
    ) -> Result<Option<paratag::models::profile::Profile>> {
        let mut c = self.choice();
        let p = c.apply_profile(codebook_given, needed)?;
        self.heads = c.heads;
        Ok(p)
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
                crate::cmd::refuse_existing(&[Some(p)], force)?;
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
    let mut models = args.models.choice();
    let profile = models.apply_profile(args.codebook.is_some(), !args.no_ner)?;
    if let Some(p) = &profile {
        args.codebook.get_or_insert_with(|| p.codebook());
    }
    let job = open_job(&args, &models)?;
    // Codebook/model mismatches fail before any input is read.
    let plan = Plan::new(&job)?;
    let quiet = args.quiet;
    let report = move |line: &str| {
        if !quiet {
            eprintln!("paratag: {line}");
        }
    };
    let (inputs, scan) = pipeline::scan(&job, &report)?;
    check_not_empty(&args, &scan, &report)?;
    let models = job.models(&plan)?;
    let profile = profile.as_ref().map(|p| p.name.as_str());
    let (meta, settings) = provenance::metadata(&job, &plan, &models, &scan, profile, started)?;
    let schema = output::schema(job.codebook.as_ref(), &scan.schema)?;
    let run = Run {
        plan: &plan,
        inputs: &inputs,
        scan: &scan,
        meta,
        schema,
        t0,
    };
    let (ran, resumed, dest) = match &out {
        Out::File(p) => run.write_file(p)?,
        Out::Folder(root) => run.write_dataset(root, &args, settings)?,
    };
    if !args.quiet {
        print_summary(&ran, &scan, resumed, t0, &dest);
    }
    Ok(())
}

/// The job the arguments ask for.
fn open_job(args: &Args, models: &ModelChoice) -> Result<paratag::plan::Job> {
    let codebook = match &args.codebook {
        Some(p) => Some(Codebook::load(p)?),
        None => None,
    };
    let shard = match &args.shard {
        Some(s) => Some(Shard::parse(s, args.shards)?),
        None if args.shards.is_some() => anyhow::bail!("--shards N goes with --shard auto"),
        None => None,
    };
    if args.window == 0 {
        anyhow::bail!("--window must be > 0");
    }
    let read = ReadOptions {
        id_col: args.id_col.clone(),
        text_col: args.text_col.clone(),
        format: args.input_format,
        skip_bad_rows: args.skip_bad_rows,
        dedupe: args.dedupe,
        limit: args.limit,
        table: args.table.options(),
    };
    let input = Input::Files {
        paths: args.inputs.clone(),
        read,
    };
    let tasks = Tasks {
        topic: !args.no_topic,
        stance: !args.no_stance,
        ner: !args.no_ner,
    };
    let segment = SegmentConfig {
        split: !args.no_segment,
        ..Default::default()
    };
    let progress = paratag::progress::Mode::auto(args.quiet);
    let mut job = job::open(input, codebook, models, tasks, segment, progress)?;
    job.window = args.window;
    job.dedupe = !args.recompute_duplicates;
    job.shard = shard;
    job.languages = paratag::lang::Languages::parse(&args.languages)?;
    Ok(job)
}

/// An input with no articles is an error unless `--allow-empty`.
fn check_not_empty(args: &Args, scan: &Scan, report: &dyn Fn(&str)) -> Result<()> {
    if scan.articles > 0 {
        return Ok(());
    }
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
    Ok(())
}

/// A scanned job, ready to write.
struct Run<'a> {
    plan: &'a Plan<'a>,
    inputs: &'a paratag::input::Inputs,
    scan: &'a Scan,
    meta: Vec<(String, String)>,
    schema: polars::prelude::Schema,
    t0: std::time::Instant,
}

/// What a run did, how many articles it found done, and where it wrote.
type Written = (pipeline::Ran, usize, String);

impl Run<'_> {
    /// One Parquet file, written whole and renamed in at the end.
    fn write_file(self, p: &std::path::Path) -> Result<Written> {
        paratag::atomic::on_interrupt(format!("nothing was written to {}", p.display()));
        let codebook = self.plan.job.codebook.clone();
        let mut sink = FileSink::create(p, codebook, &self.schema)?;
        let ran = pipeline::run(
            self.plan,
            self.inputs,
            self.scan,
            &Default::default(),
            &mut sink,
        )?;
        let summary = summary(&ran.counts, self.scan, self.t0.elapsed().as_secs_f64());
        let mut meta = self.meta;
        meta.push(("paratag.summary".into(), serde_json::to_string(&summary)?));
        meta.push((
            "paratag.finished_at".into(),
            chrono::Utc::now().to_rfc3339(),
        ));
        sink.finish(meta)?;
        Ok((ran, 0, p.display().to_string()))
    }

    /// A dataset folder of parts, which `--resume` continues.
    fn write_dataset(
        self,
        root: &std::path::Path,
        args: &Args,
        settings: serde_json::Value,
    ) -> Result<Written> {
        let quiet = args.quiet;
        let announce = move |line: &str| {
            if !quiet {
                eprintln!("paratag: {line}");
            }
        };
        let job = self.plan.job;
        let mut ds = Dataset::open(
            root,
            dataset::Options {
                resume: args.resume,
                force: args.force,
                chunk_rows: args.chunk_rows.unwrap_or(dataset::CHUNK_ROWS),
                shard: job.shard,
                settings,
                articles: self.scan.shard_articles,
                skipped_rows: self.scan.skipped,
                deduped: self.scan.deduped,
                metadata: self.meta,
                codebook: job.codebook.clone(),
                schema: self.schema,
                report: &announce,
            },
        )?;
        let resumed = ds.done_articles();
        let dir = ds.dir.display().to_string();
        paratag::atomic::on_interrupt(format!(
            "{dir}: the parts written so far are kept (not yet visible to readers); run the same command with --resume"
        ));
        // The ranges the good parts held when the job started (the sink
        // appends parts as it goes).
        let mut done = pipeline::Done::new(ds.done_ranges());
        if job.dedupe {
            done = done.with_firsts(ds.firsts(paratag::dedupe::CAPACITY)?);
        }
        let keep = || {
            format!("{dir}: stopped; the parts written so far are kept: fix the cause, then run the same command with --resume")
        };
        let ran =
            pipeline::run(self.plan, self.inputs, self.scan, &done, &mut ds).with_context(keep)?;
        let m = ds.finish().with_context(keep)?;
        if !m.complete {
            anyhow::bail!(
                "{dir}: {} of {} articles written; run again with --resume",
                m.parts.iter().map(|p| p.articles).sum::<usize>(),
                m.articles
            );
        }
        Ok((ran, resumed, dir))
    }
}

/// The one-line summary on stderr.
fn print_summary(
    ran: &pipeline::Ran,
    scan: &Scan,
    resumed: usize,
    t0: std::time::Instant,
    dest: &str,
) {
    let s = summary(&ran.counts, scan, t0.elapsed().as_secs_f64());
    let rate = s.counts.paragraphs as f64 / s.seconds.max(1e-9);
    let resumed = if resumed > 0 {
        format!(" ({resumed} articles already done)")
    } else {
        String::new()
    };
    let c = &s.counts;
    eprintln!(
        "paratag: {} articles{resumed}, {} paragraphs ({} copied from an earlier one with the same text), {} boilerplate lines dropped, {} empty texts, {} windows ({} long paragraphs), {} skipped rows, {} duplicates dropped, {:.1} s, {:.1} paragraphs/s, models busy {:.1} % -> {dest}",
        c.articles, c.paragraphs, c.copied, c.dropped_lines, c.empty_texts, c.windows, c.long_paragraphs,
        s.skipped, s.deduped, s.seconds, rate, 100.0 * ran.busy
    );
}
