//! Provenance: what made an output. Every Parquet file paratag writes (a
//! table, or each part of a dataset folder) carries it in its key-value
//! metadata, so one file sent on its own still says which model, settings
//! and code labeled it (docs/formats.md "Output schema"):
//!
//! - `paratag.settings`: everything that can change a label (inputs, models,
//!   heads, adapter, codebook, read options, tasks, dtype, device); a
//!   dataset's `--resume` and `merge` compare it key by key;
//! - `paratag.run`: how it ran (the dtype asked for and used, threads,
//!   batch and window sizes, libtorch, the CPU, the git commit);
//! - `paratag.heads`, `paratag.adapter`, `paratag.profile`: the trained
//!   heads by path and sha256, the adapter they share, the profile named;
//! - the older keys: `paratag.version`, `paratag.command_line`,
//!   `paratag.models`, `paratag.inputs`, `paratag.codebook*`,
//!   `paratag.entity_types`, `paratag.started_at`.

use crate::choice::Choice;
use crate::error::Result;
use crate::hash::{sha256_bytes, sha256_file};
use crate::models::head;
use crate::models::ModelInfo;
use crate::plan::{Job, Plan};
use crate::scan::Scan;
use serde_json::{json, Value};
use std::path::Path;

/// The paratag version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit the binary was built from (`-modified` when tracked
/// files differed from it; `unknown` outside a checkout).
pub const COMMIT: &str = env!("PARATAG_COMMIT");
/// The libtorch version the binary was built against.
pub const LIBTORCH: &str = env!("PARATAG_LIBTORCH");

/// sha256 of a head: its weights and its `head.toml` together.
pub fn head_sha(dir: &Path) -> Result<String> {
    let a = sha256_file(&dir.join(head::WEIGHTS_FILE))?;
    let b = sha256_file(&dir.join(head::META_FILE))?;
    Ok(combined(&a, &b))
}

fn combined(weights: &str, meta: &str) -> String {
    sha256_bytes(format!("{weights}{meta}").as_bytes())
}

/// The job's trained heads: task, folder, and sha256 (of the weights, of
/// `head.toml`, and of both, as `paratag.settings` records it).
pub fn heads(job: &Job) -> Result<Vec<Value>> {
    let dirs = job
        .models
        .heads
        .iter()
        .map(|h| (h.dir.as_path(), &h.meta))
        .chain(job.models.tuned.iter().map(|(d, m)| (d.as_path(), m)));
    dirs.map(|(dir, meta)| {
        let weights = sha256_file(&dir.join(head::WEIGHTS_FILE))?;
        let meta_sha = sha256_file(&dir.join(head::META_FILE))?;
        Ok(json!({
            "task": meta.task,
            "kind": meta.kind,
            "path": dir.display().to_string(),
            "sha256": combined(&weights, &meta_sha),
            "weights_sha256": weights,
            "meta_sha256": meta_sha,
        }))
    })
    .collect()
}

/// The adapter merged into the encoder (path and weights sha256), if any.
pub fn adapter(job: &Job) -> Result<Option<Value>> {
    job.models
        .adapter
        .as_ref()
        .map(|d| {
            Ok(json!({
                "path": d.display().to_string(),
                "sha256": crate::models::lora::weights_sha256(d)?,
            }))
        })
        .transpose()
}

/// What decides the labels, compared key by key by `--resume` and `merge`,
/// from the job's [`heads`] and [`adapter`]. Paths, threads, batch and
/// window sizes are left out: they change nothing.
fn settings(
    job: &Job,
    plan: &Plan,
    models: &[ModelInfo],
    scan: &Scan,
    heads: &[Value],
    adapter: Option<&Value>,
) -> Value {
    let heads: Vec<Value> = heads
        .iter()
        .map(|h| json!({"task": h["task"], "sha256": h["sha256"]}))
        .collect();
    json!({
        "paratag": VERSION,
        "inputs": scan.inputs.iter().map(|i| i.sha256.clone()).collect::<Vec<_>>(),
        "models": models.iter().map(|m| json!({"role": m.role, "id": m.id, "weights_sha256": m.weights_sha256})).collect::<Vec<_>>(),
        "heads": heads,
        "adapter_sha256": adapter.map(|a| a["sha256"].clone()),
        "codebook_sha256": job.codebook.as_ref().map(|c| sha256_bytes(c.text.as_bytes())),
        "read": job.input.read_options(),
        "tasks": {"topic": job.tasks.topic, "stance": job.tasks.stance, "ner": plan.scheme.is_some()},
        "segment": job.segment.split,
        "languages": job.languages.codes(),
        "aggregation": format!("{:?}", job.engine.aggregation).to_lowercase(),
        "entity_spans": format!("{:?}", job.engine.entity_spans).to_lowercase(),
        "dtype": job.engine.dtype.name(),
        "device": format!("{:?}", job.engine.device).to_lowercase(),
        "copy_duplicates": job.dedupe,
    })
}

/// The CPU's model name and the flags that decide which kernels run.
pub fn cpu() -> Value {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string());
    let flag = |f: &str| crate::models::cpu_flag(&info, f);
    json!({
        "model": model,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "avx512_bf16": flag("avx512_bf16"),
        "amx_bf16": flag("amx_bf16"),
    })
}

/// How the job ran: the dtype asked for and the one used, the device,
/// threads, batch and window sizes, libtorch, the CPU, and the code.
pub fn run(job: &Job) -> Value {
    let env = |k: &str| std::env::var(k).ok();
    json!({
        "paratag": VERSION,
        "commit": COMMIT,
        "dtype": job.engine.dtype.name(),
        "dtype_requested": job.engine.dtype_requested,
        "device": format!("{:?}", job.engine.device).to_lowercase(),
        "threads": job.engine.threads,
        "batch_tokens": job.engine.batch_tokens,
        "window": job.window,
        "libtorch": LIBTORCH,
        "cpu": cpu(),
        "mkl_cbwr": env("MKL_CBWR"),
        "onednn_max_cpu_isa": env("ONEDNN_MAX_CPU_ISA"),
    })
}

fn text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("metadata serialises")
}

/// The provenance every output file carries (the summary and finish time
/// are added when a file is finished), and its `paratag.settings` (what a
/// dataset's manifest fingerprints). Every head and adapter is hashed once.
pub fn metadata(
    job: &Job,
    plan: &Plan,
    models: &[ModelInfo],
    scan: &Scan,
    profile: Option<&str>,
    started: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<(String, String)>, Value)> {
    let (heads, adapter) = (heads(job)?, adapter(job)?);
    let settings = settings(job, plan, models, scan, &heads, adapter.as_ref());
    let mut meta = vec![
        ("paratag.version".to_string(), VERSION.to_string()),
        (
            "paratag.command_line".to_string(),
            text(&std::env::args().collect::<Vec<_>>()),
        ),
        ("paratag.models".to_string(), text(&models)),
        ("paratag.heads".to_string(), text(&heads)),
        ("paratag.adapter".to_string(), text(&adapter)),
        ("paratag.inputs".to_string(), text(&scan.inputs)),
        ("paratag.settings".to_string(), text(&settings)),
        ("paratag.run".to_string(), text(&run(job))),
        ("paratag.started_at".to_string(), started.to_rfc3339()),
        (
            "paratag.entity_types".to_string(),
            text(&plan.entity_types()),
        ),
    ];
    if let Some(p) = profile {
        meta.push(("paratag.profile".into(), p.to_string()));
    }
    if let Some(cb) = &job.codebook {
        meta.push(("paratag.codebook".into(), cb.text.clone()));
        meta.push((
            "paratag.codebook_sha256".into(),
            sha256_bytes(cb.text.as_bytes()),
        ));
        meta.push((
            "paratag.codebook_path".into(),
            cb.path.display().to_string(),
        ));
    }
    Ok((meta, settings))
}
