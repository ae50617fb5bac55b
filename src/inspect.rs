//! `paratag inspect`: what an output is, what made it, and whether it is
//! whole. For a Parquet file or a dataset folder (single, a shard, or a
//! sharded job's root): its provenance (from the metadata every file
//! carries, see [`crate::provenance`]), its completeness (for a folder:
//! every part, committed, pending or missing, every shard, and the article
//! ordinals no part holds), row and article counts, and the distribution of
//! every label column. Only the label columns are read, one file at a time.

use crate::dataset::{self, Manifest};
use crate::error::{Error, Result};
use crate::task::{Col, Task};
use polars::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One part of a dataset folder (as its manifest records it) and where it
/// stands.
#[derive(Debug, Clone, Serialize)]
pub struct PartState {
    #[serde(flatten)]
    pub part: dataset::Part,
    /// `committed` (at its final name), `pending` (written, not yet
    /// visible to readers), `missing`, or `changed` (size differs from the
    /// manifest's record).
    pub state: String,
}

/// A shard of a sharded job.
#[derive(Debug, Clone, Serialize)]
pub struct ShardState {
    pub shard: String,
    pub complete: bool,
    pub committed: bool,
    pub articles_held: usize,
    pub articles: usize,
}

/// Everything `inspect` says, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub path: String,
    /// `file`, `dataset`, `shard` or `sharded dataset`.
    pub kind: String,
    /// Every article is present (a file is written whole or not at all).
    pub complete: bool,
    /// Readers that glob `*.parquet` see the parts (`_SUCCESS` written).
    pub visible: bool,
    /// One line: complete, or what is missing and what to do.
    pub status: String,
    /// Articles the job will hold when complete (folders).
    pub articles_expected: Option<usize>,
    pub articles: usize,
    pub rows: usize,
    pub parts: Vec<PartState>,
    /// Ordinal ranges `[first, end)` of the articles no part holds.
    pub missing_ordinals: Vec<(u64, u64)>,
    pub shards: Vec<ShardState>,
    /// Metadata keys of the first file; JSON values parsed.
    pub provenance: BTreeMap<String, Value>,
    /// Files whose `paratag.settings` differ from the first file's.
    pub inconsistent: Vec<String>,
    /// Per label column: label (or `null`) → rows; `entities`: type → spans.
    pub labels: BTreeMap<String, BTreeMap<String, usize>>,
}

/// Inspects a Parquet file or a dataset folder.
pub fn inspect(path: &Path) -> Result<Report> {
    if path.is_dir() {
        folder(path)
    } else if path.is_file() {
        let mut r = empty(path, "file");
        let (rows, articles) = read_files(&[path.to_path_buf()], &mut r)?;
        r.rows = rows;
        r.articles = articles;
        r.complete = true;
        r.visible = true;
        r.status = format!("complete: {articles} articles, {rows} rows");
        Ok(r)
    } else {
        Err(Error::input(
            path.display().to_string(),
            "no such file or folder",
        ))
    }
}

fn empty(path: &Path, kind: &str) -> Report {
    Report {
        path: path.display().to_string(),
        kind: kind.into(),
        complete: false,
        visible: false,
        status: String::new(),
        articles_expected: None,
        articles: 0,
        rows: 0,
        parts: vec![],
        missing_ordinals: vec![],
        shards: vec![],
        provenance: BTreeMap::new(),
        inconsistent: vec![],
        labels: BTreeMap::new(),
    }
}

/// The parts a manifest lists, as they stand in `dir`.
fn part_states(dir: &Path, m: &Manifest) -> Vec<(PartState, Option<PathBuf>)> {
    m.parts
        .iter()
        .map(|p| {
            let at = dataset::locate(dir, &p.file);
            let state = match &at {
                None => "missing",
                Some(f) if std::fs::metadata(f).map(|m| m.len()).ok() != Some(p.bytes) => "changed",
                Some(f) if *f == dir.join(&p.file) => "committed",
                Some(_) => "pending",
            };
            let s = PartState {
                part: p.clone(),
                state: state.into(),
            };
            let usable = matches!(state, "committed" | "pending");
            (s, at.filter(|_| usable))
        })
        .collect()
}

/// Ordinal ranges in `[0, total)` that no range in `held` covers.
fn gaps(held: &[(u64, u64)], total: u64) -> Vec<(u64, u64)> {
    let mut held = held.to_vec();
    held.sort();
    let mut out = vec![];
    let mut next = 0;
    for (a, b) in held {
        if a > next {
            out.push((next, a));
        }
        next = next.max(b);
    }
    if next < total {
        out.push((next, total));
    }
    out
}

/// A dataset folder, its manifest, and its shard's name (when sharded).
type Folder = (PathBuf, Manifest, Option<String>);

/// What kind of folder it is, and its manifests (one, or one per shard
/// with the shard's name).
fn manifests(
    dir: &Path,
    manifest: Option<Manifest>,
    shards: &[(crate::shard::Shard, std::path::PathBuf)],
) -> Result<(&'static str, Vec<Folder>)> {
    Ok(match manifest {
        // A single job, a shard, or a merged sharded job.
        Some(m) if m.shards.is_none() => {
            let kind = if m.shard.is_some() {
                "shard"
            } else {
                "dataset"
            };
            (kind, vec![(dir.to_path_buf(), m, None)])
        }
        _ if !shards.is_empty() => {
            let mut v = vec![];
            for (s, d) in shards {
                match Manifest::read(d)? {
                    Some(m) => v.push((d.clone(), m, Some(s.dir_name()))),
                    None => {
                        return Err(Error::input(
                            d.display().to_string(),
                            format!("has no {}: not a paratag shard", dataset::MANIFEST),
                        ))
                    }
                }
            }
            ("sharded dataset", v)
        }
        _ => {
            return Err(Error::input(
                dir.display().to_string(),
                format!(
                    "has no {} and no shard-K-of-N folders: not a paratag dataset",
                    dataset::MANIFEST
                ),
            ))
        }
    })
}

fn folder(dir: &Path) -> Result<Report> {
    let shards = dataset::shard_dirs(dir)?;
    let manifest = Manifest::read(dir)?;
    let (kind, manifests) = manifests(dir, manifest, &shards)?;
    let mut r = empty(dir, kind);
    let mut files = vec![];
    let mut all_held = true;
    let mut committed = true;
    let mut success_needed = true;
    let mut expected = 0;
    for (d, m, shard) in &manifests {
        let prefix = shard.as_ref().map(|s| format!("{s}/")).unwrap_or_default();
        let states = part_states(d, m);
        let held: Vec<(u64, u64)> = states
            .iter()
            .filter(|(_, f)| f.is_some())
            .map(|(p, _)| (p.part.first_ordinal, p.part.end_ordinal))
            .collect();
        let held_articles: usize = states
            .iter()
            .filter(|(_, f)| f.is_some())
            .map(|(p, _)| p.part.articles)
            .sum();
        let shard_complete = m.complete && held_articles == m.articles;
        all_held &= shard_complete;
        // Format 1 wrote parts visible at once, and no `_SUCCESS`.
        let old = m.version == 1;
        committed &= m.committed || old;
        success_needed &= !old;
        expected += m.articles;
        if let Some(s) = shard {
            r.shards.push(ShardState {
                shard: s.clone(),
                complete: shard_complete,
                committed: m.committed,
                articles_held: held_articles,
                articles: m.articles,
            });
        }
        if shard.is_none() || manifests.len() == 1 {
            r.missing_ordinals = gaps(&held, m.articles as u64);
        }
        for (mut p, f) in states {
            p.part.file = format!("{prefix}{}", p.part.file);
            files.extend(f);
            r.parts.push(p);
        }
    }
    if let Some(count) = manifests.first().and_then(|m| m.1.shard).map(|s| s.count) {
        if kind == "sharded dataset" {
            let have: BTreeSet<u32> = shards.iter().map(|s| s.0.index).collect();
            for k in (0..count).filter(|k| !have.contains(k)) {
                all_held = false;
                r.shards.push(ShardState {
                    shard: format!("shard-{k}-of-{count}"),
                    complete: false,
                    committed: false,
                    articles_held: 0,
                    articles: 0,
                });
            }
        }
    }
    let (rows, articles) = read_files(&files, &mut r)?;
    r.rows = rows;
    r.articles = articles;
    r.articles_expected = Some(expected);
    r.complete = all_held;
    r.visible = all_held && committed && (!success_needed || dir.join(dataset::SUCCESS).is_file());
    r.status = status(&r, kind);
    Ok(r)
}

fn status(r: &Report, kind: &str) -> String {
    let expected = r.articles_expected.unwrap_or(0);
    let held = format!("{} of {expected} articles, {} rows", r.articles, r.rows);
    let broken = r
        .parts
        .iter()
        .filter(|p| matches!(p.state.as_str(), "missing" | "changed"))
        .count();
    if r.visible {
        format!("complete: {held}, committed (_SUCCESS)")
    } else if r.complete && kind == "shard" {
        format!(
            "shard complete ({held}); its parts stay pending until `paratag merge` commits the job"
        )
    } else if r.complete && kind == "sharded dataset" {
        format!(
            "every shard complete ({held}); not yet merged: run `paratag merge {}`",
            r.path
        )
    } else if r.complete {
        format!(
            "complete ({held}) but not committed: run the same `paratag tag` command with --resume"
        )
    } else {
        let missing_shards = r.shards.iter().filter(|s| !s.complete).count();
        let shards = if missing_shards > 0 {
            format!(", {missing_shards} shards incomplete or missing")
        } else {
            String::new()
        };
        let broken = if broken > 0 {
            format!(", {broken} parts missing or changed")
        } else {
            String::new()
        };
        format!(
            "INCOMPLETE: {held}{shards}{broken}; readers see no table until it is complete; run the same `paratag tag` command with --resume"
        )
    }
}

/// Reads the label columns of `files`, one at a time, into `r.labels` and
/// the provenance; returns rows and distinct articles.
fn read_files(files: &[PathBuf], r: &mut Report) -> Result<(usize, usize)> {
    let mut rows = 0;
    // Parts hold whole articles, so distinct ids add up across files.
    let mut articles = 0;
    let mut first_settings: Option<String> = None;
    for f in files {
        let bad = |m: String| Error::input(f.display().to_string(), m);
        let file = std::fs::File::open(f).map_err(|e| Error::io(f, e))?;
        let mut reader = ParquetReader::new(file);
        let meta = crate::output::key_values(&mut reader)
            .map_err(|e| bad(format!("not a Parquet file: {e}")))?;
        let settings = meta.get("paratag.settings").cloned().unwrap_or_default();
        match &first_settings {
            None => {
                first_settings = Some(settings);
                r.provenance = meta
                    .iter()
                    .filter(|(k, _)| k.starts_with("paratag.") && k.as_str() != "paratag.part")
                    .map(|(k, v)| {
                        let v = serde_json::from_str(v).unwrap_or_else(|_| json!(v));
                        (k.clone(), v)
                    })
                    .collect();
            }
            Some(s) if *s != settings => r.inconsistent.push(f.display().to_string()),
            Some(_) => {}
        }
        let schema = reader.schema().map_err(|e| bad(e.to_string()))?;
        let wanted: Vec<String> = schema
            .iter_names()
            .map(|n| n.to_string())
            .filter(|n| is_label(n) || n == "article_id")
            .collect();
        let df = reader
            .with_columns(Some(wanted))
            .finish()
            .map_err(|e| bad(e.to_string()))?;
        rows += df.height();
        count_labels(&df, &mut r.labels).map_err(|e| bad(e.to_string()))?;
        if let Ok(ids) = df.column("article_id").and_then(|c| c.str().cloned()) {
            articles += ids
                .iter()
                .flatten()
                .collect::<std::collections::HashSet<_>>()
                .len();
        }
    }
    Ok((rows, articles))
}

/// Label columns: `topic`, `stance_T`, `stance_T_holder`, `entities`.
fn is_label(name: &str) -> bool {
    matches!(Task::of_column(name), Some((_, Col::Label)))
}

fn count_labels(
    df: &DataFrame,
    out: &mut BTreeMap<String, BTreeMap<String, usize>>,
) -> PolarsResult<()> {
    for c in df.columns() {
        let name = c.name().to_string();
        if name == "article_id" {
            continue;
        }
        let counts = out.entry(name.clone()).or_default();
        if Task::parse(&name) == Some(Task::Entities) {
            // Every span of every row, as one struct column.
            let spans = c.list()?.get_inner();
            let labels = spans.struct_()?.field_by_name("label")?;
            for v in labels.str()?.iter().flatten() {
                *counts.entry(v.to_string()).or_default() += 1;
            }
        } else if let Ok(s) = c.str() {
            for v in s.iter() {
                *counts.entry(v.unwrap_or("null").to_string()).or_default() += 1;
            }
        }
    }
    Ok(())
}

/// The report as text: status, parts and shards, provenance, labels.
pub fn render(r: &Report) -> String {
    let mut s = format!("{} ({})\nstatus: {}\n", r.path, r.kind, r.status);
    if !r.missing_ordinals.is_empty() {
        let ranges: Vec<String> = r
            .missing_ordinals
            .iter()
            .take(10)
            .map(|(a, b)| format!("{a}..{b}"))
            .collect();
        let n: u64 = r.missing_ordinals.iter().map(|(a, b)| b - a).sum();
        s += &format!(
            "missing: {n} articles, by ordinal (position among the job's articles) {}{}\n",
            ranges.join(", "),
            if r.missing_ordinals.len() > 10 {
                ", ..."
            } else {
                ""
            }
        );
    }
    if !r.shards.is_empty() {
        s += "shards:\n";
        for sh in &r.shards {
            s += &format!(
                "  {:<16} {:<10} {} of {} articles{}\n",
                sh.shard,
                if sh.complete {
                    "complete"
                } else {
                    "INCOMPLETE"
                },
                sh.articles_held,
                sh.articles,
                if sh.committed { ", committed" } else { "" }
            );
        }
    }
    if !r.parts.is_empty() {
        s += "parts:\n";
        for PartState { part: p, state } in &r.parts {
            s += &format!(
                "  {:<34} {:<9} {:>7} rows {:>6} articles  ordinals {}..{}  {} .. {}\n",
                p.file,
                state,
                p.rows,
                p.articles,
                p.first_ordinal,
                p.end_ordinal,
                p.first_article_id,
                p.last_article_id
            );
        }
    }
    if !r.inconsistent.is_empty() {
        s += &format!(
            "WARNING: {} files were made with other settings than the first: {}\n",
            r.inconsistent.len(),
            r.inconsistent.join(", ")
        );
    }
    s += &provenance_lines(&r.provenance);
    if !r.labels.is_empty() {
        s += "labels:\n";
        for (col, counts) in &r.labels {
            let mut v: Vec<(&String, &usize)> = counts.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let items: Vec<String> = v.iter().map(|(l, n)| format!("{l} {n}")).collect();
            s += &format!("  {col}: {}\n", items.join(", "));
        }
    }
    s
}

fn provenance_lines(p: &BTreeMap<String, Value>) -> String {
    if p.is_empty() {
        return "provenance: none (no parts to read)\n".into();
    }
    let str_of = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let get = |k: &str| p.get(k).map(str_of).unwrap_or_else(|| "-".into());
    let run = p.get("paratag.run").cloned().unwrap_or(Value::Null);
    let r = |k: &str| run.get(k).map(str_of).unwrap_or_else(|| "-".into());
    let short = |s: &str| s.chars().take(12).collect::<String>();
    let mut s = String::from("provenance:\n");
    s += &format!(
        "  paratag {} (commit {}), libtorch {}\n",
        get("paratag.version"),
        r("commit"),
        r("libtorch")
    );
    if let Some(Value::Array(cmd)) = p.get("paratag.command_line") {
        let words: Vec<String> = cmd.iter().map(str_of).collect();
        s += &format!("  command: {}\n", words.join(" "));
    }
    s += &format!("  profile: {}\n", get("paratag.profile"));
    if let Some(Value::Array(models)) = p.get("paratag.models") {
        for m in models {
            s += &format!(
                "  model {}: {} (weights sha256 {})\n",
                m.get("role").map(str_of).unwrap_or_default(),
                m.get("id").map(str_of).unwrap_or_default(),
                short(&m.get("weights_sha256").map(str_of).unwrap_or_default())
            );
        }
    }
    if let Some(Value::Array(heads)) = p.get("paratag.heads") {
        for h in heads {
            s += &format!(
                "  head {}: sha256 {} ({})\n",
                h.get("task").map(str_of).unwrap_or_default(),
                short(&h.get("sha256").map(str_of).unwrap_or_default()),
                h.get("path").map(str_of).unwrap_or_default()
            );
        }
    }
    if let Some(a) = p.get("paratag.adapter").filter(|a| !a.is_null()) {
        s += &format!(
            "  adapter: sha256 {} ({})\n",
            short(&a.get("sha256").map(str_of).unwrap_or_default()),
            a.get("path").map(str_of).unwrap_or_default()
        );
    }
    s += &format!(
        "  codebook: sha256 {} ({})\n",
        short(&get("paratag.codebook_sha256")),
        get("paratag.codebook_path")
    );
    let cpu = run.get("cpu").cloned().unwrap_or(Value::Null);
    s += &format!(
        "  dtype {} (asked: {}), device {}, threads {}, batch-tokens {}, window {}\n",
        r("dtype"),
        r("dtype_requested"),
        r("device"),
        r("threads"),
        r("batch_tokens"),
        r("window")
    );
    s += &format!(
        "  cpu: {} (avx512_bf16 {}, amx_bf16 {})\n",
        cpu.get("model").map(str_of).unwrap_or_default(),
        cpu.get("avx512_bf16").map(str_of).unwrap_or_default(),
        cpu.get("amx_bf16").map(str_of).unwrap_or_default()
    );
    s += &format!(
        "  started {}, finished {}\n",
        get("paratag.started_at"),
        get("paratag.finished_at")
    );
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn gaps_are_the_ranges_no_part_holds() {
        assert_eq!(super::gaps(&[], 5), vec![(0, 5)]);
        assert_eq!(super::gaps(&[(0, 5)], 5), vec![]);
        assert_eq!(super::gaps(&[(3, 5), (0, 2)], 7), vec![(2, 3), (5, 7)]);
        assert_eq!(super::gaps(&[(0, 4), (2, 6)], 6), vec![]);
    }

    #[test]
    fn label_columns_are_told_from_scores() {
        for n in ["topic", "entities", "stance_aid", "stance_aid_holder"] {
            assert!(super::is_label(n), "{n}");
        }
        for n in [
            "topic_score",
            "stance_aid_score",
            "stance_aid_favor",
            "stance_aid_reported",
            "text",
        ] {
            assert!(!super::is_label(n), "{n}");
        }
    }
}
