//! `paratag tag INPUT... -o OUT.parquet`: the labeling job.

use anyhow::{Context, Result};
use paratag::codebook::Codebook;
use paratag::heads::Aggregation;
use paratag::input::{Format, ReadOptions};
use paratag::models::head::{self, Head};
use paratag::models::registry;
use paratag::models::tuned_head;
use paratag::models::{DType, DeviceArg, ModelDir};
use paratag::output::{self, PendingOutput};
use paratag::pipeline::{self, Job};
use paratag::segment::SegmentConfig;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input files or folders: .jsonl/.csv/.parquet tables, folders of
    /// .txt/.md/.html (read recursively), or `-` for JSONL on stdin.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output Parquet file (written atomically).
    #[arg(short, long)]
    pub output: PathBuf,
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
    #[arg(long, value_enum)]
    pub input_format: Option<Format>,
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
    /// No progress bar and no summary line.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Model options shared by `tag` and `eval` (which tags gold texts itself
/// when no predictions are given).
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
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
    #[arg(long, value_enum, default_value = "first")]
    pub aggregation: Aggregation,
    /// libtorch intra-op threads per model (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Padded tokens per batch. 512-2048 measured fastest on 2 CPU cores
    /// (4096 was 1.4x slower); raise it on a GPU.
    #[arg(long, default_value_t = 2048)]
    pub batch_tokens: usize,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: DType,
    /// Trained head folders (`paratag train`), each for the topics, one
    /// stance target or the entities; they read the encoder's one pass.
    #[arg(long, num_args = 1..)]
    pub heads: Vec<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let started = chrono::Utc::now();
    // Fail on an unwritable output before any work.
    let pending = PendingOutput::create(&args.output)?;
    let codebook = match &args.codebook {
        Some(p) => Some(Codebook::load(p)?),
        None => None,
    };
    let job = job(
        args.inputs.clone(),
        ReadOptions {
            id_col: args.id_col.clone(),
            text_col: args.text_col.clone(),
            format: args.input_format,
            skip_bad_rows: args.skip_bad_rows,
            dedupe: args.dedupe,
            limit: args.limit,
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
        !args.quiet && std::io::stderr().is_terminal(),
    )?;
    let tagged = pipeline::run(&job)?;
    let df = output::to_dataframe(&tagged, job.codebook.as_ref())?;
    let finished = chrono::Utc::now();

    let meta = metadata(&tagged, &job, started, finished);
    pending.commit(df, meta)?;

    if !args.quiet {
        let s = &tagged.summary;
        let rate = s.paragraphs as f64 / s.seconds.max(1e-9);
        eprintln!(
            "paratag: {} articles, {} paragraphs, {} boilerplate lines dropped, {} empty texts, {} windows ({} long paragraphs), {} skipped rows, {} duplicates dropped, {:.1} s, {:.1} paragraphs/s -> {}",
            s.articles, s.paragraphs, s.dropped_lines, s.empty_texts, s.windows, s.long_paragraphs,
            s.skipped_rows.len(), s.deduped, s.seconds, rate, args.output.display()
        );
        for r in &s.skipped_rows {
            eprintln!("paratag: skipped {r}");
        }
    }
    Ok(())
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
    progress: bool,
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
        let wanted = match meta.kind.as_str() {
            tuned_head::KIND => tasks.ner,
            "topic" => tasks.topic,
            _ => tasks.stance,
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
        if tuned_head::is_tuned(&meta) {
            tuned.push((d.clone(), meta));
        } else {
            heads.push(Head::load(d)?);
        }
    }
    let ner_head = tuned.iter().any(|t| t.1.kind == tuned_head::KIND);
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
        dtype: m.dtype,
        aggregation: m.aggregation,
        segment,
        progress,
        heads,
        tuned,
        embeddings: false,
    })
}

/// The output file's key-value metadata (provenance).
pub fn metadata(
    tagged: &pipeline::Tagged,
    job: &Job,
    started: chrono::DateTime<chrono::Utc>,
    finished: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, String)> {
    let mut meta = vec![
        (
            "paratag.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (
            "paratag.command_line".to_string(),
            json(&std::env::args().collect::<Vec<_>>()),
        ),
        ("paratag.models".to_string(), json(&tagged.models)),
        ("paratag.inputs".to_string(), json(&tagged.corpus.inputs)),
        ("paratag.started_at".to_string(), started.to_rfc3339()),
        ("paratag.finished_at".to_string(), finished.to_rfc3339()),
        ("paratag.summary".to_string(), json(&tagged.summary)),
        (
            "paratag.entity_types".to_string(),
            json(&tagged.entity_types),
        ),
    ];
    if let Some(cb) = &job.codebook {
        meta.push(("paratag.codebook".into(), cb.text.clone()));
        meta.push((
            "paratag.codebook_sha256".into(),
            paratag::hash::sha256_bytes(cb.text.as_bytes()),
        ));
        meta.push((
            "paratag.codebook_path".into(),
            cb.path.display().to_string(),
        ));
    }
    meta
}

/// Tags `texts`, each as one paragraph (article ids `g0`, `g1`, ...), for
/// `eval` and `train`; `embeddings` keeps each paragraph's encoder feature.
pub fn tag_texts(
    texts: &[&str],
    codebook: Option<Codebook>,
    m: &ModelArgs,
    tasks: Tasks,
    embeddings: bool,
) -> Result<(pipeline::Tagged, Job)> {
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
        false,
    )?;
    if embeddings {
        job.embeddings = true;
        if job.encoder.is_none() {
            job.encoder = Some(ModelDir::open(&registry::resolve(&m.encoder)?)?);
        }
    }
    let tagged = pipeline::run(&job)?;
    Ok((tagged, job))
}
