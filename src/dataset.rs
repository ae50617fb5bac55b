//! A job's output as a dataset folder that survives a crash, and that no
//! reader mistakes for complete before it is.
//!
//! ```text
//! out/                     (or out/shard-K-of-N/ with --shard)
//!   _manifest.json         the settings fingerprint and every completed part
//!   _temporary/            while the job runs: its parts, not yet visible
//!     part-00000.parquet.pending
//!   INCOMPLETE             while the job runs: says so, and how to finish
//!   part-00000.parquet     once the job is complete: whole articles, in
//!   part-00001.parquet     input order, ~--chunk-rows rows each
//!   _SUCCESS               written last: the dataset is complete
//! ```
//!
//! A part is written under a hidden temporary name, fsynced, renamed to its
//! pending name, and only then recorded in the manifest, which is itself
//! replaced atomically. So after `kill -9` the manifest lists exactly the
//! parts that are whole; `--resume` removes anything else, re-checks every
//! listed part's sha256, and tags only the articles no good part holds.
//! Parts cover contiguous runs of article ordinals (positions among the
//! job's kept articles), so "already done" is a short list of ranges, never
//! a set of ids.
//!
//! Pending parts end in `.pending` under `_temporary/`, so no `*.parquet`
//! glob (not even `**/*.parquet`) and no `pyarrow.dataset` (which skips `_`
//! and `.` names) reads them; and `INCOMPLETE`, which is not Parquet, makes
//! `pyarrow.dataset("out/")` fail instead of returning no rows. An
//! unfinished job's folder reads as an error, never as a complete table
//! with articles missing.
//!
//! When the last article is written the job commits, as Spark's output
//! committer does: every part is renamed to its final name, the manifest
//! says `committed`, `_SUCCESS` appears and `INCOMPLETE` goes. A crash
//! during the commit leaves parts in both places; the manifest finds each,
//! and `--resume` finishes the commit.
//! Shards commit together: `paratag merge out/` checks them, renames every
//! shard's parts, and writes `out/_manifest.json` and `out/_SUCCESS`.
//!
//! Readers then see one table: `pl.scan_parquet("out/*.parquet")`,
//! `read_parquet('out/*.parquet')` in DuckDB, `pyarrow.dataset.dataset("out/")`;
//! for shards, `out/*/*.parquet`.

use crate::atomic::atomic_write;
use crate::codebook::Codebook;
use crate::error::{Error, Result};
use crate::output::{frame, ParquetFile};
use crate::pipeline::{Counts, Labeled, Sink};
use crate::shard::Shard;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "_manifest.json";
/// Written last, when the dataset is complete and its parts visible.
pub const SUCCESS: &str = "_SUCCESS";
/// Present until the commit: readers that take every file of the folder
/// (pyarrow) fail on it rather than read a partial table.
pub const INCOMPLETE: &str = "INCOMPLETE";
/// Where parts wait until the job commits.
pub const PENDING_DIR: &str = "_temporary";
const PENDING_SUFFIX: &str = ".pending";
const FORMAT: &str = "paratag-dataset";
/// 2: parts pending under `_temporary/` until the commit (1: parts visible
/// as soon as written).
const VERSION: u32 = 2;
/// Rows per part by default.
pub const CHUNK_ROWS: usize = 10_000;

/// One completed part.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Part {
    /// Relative to the manifest's folder.
    pub file: String,
    pub rows: usize,
    pub articles: usize,
    /// Article ordinals `[first, end)`.
    pub first_ordinal: u64,
    pub end_ordinal: u64,
    pub first_article_id: String,
    pub last_article_id: String,
    pub sha256: String,
    pub bytes: u64,
    pub counts: Counts,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// What decides the labels: the resume check compares it key by key.
    pub settings: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Shards a merged manifest covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
    /// Articles the dataset holds when complete.
    pub articles: usize,
    /// Every article is held.
    pub complete: bool,
    /// Every part is at its final name (a shard waits for `merge`).
    #[serde(default)]
    pub committed: bool,
    pub parts: Vec<Part>,
    /// Totals over the parts, and the scan's skipped rows and duplicates.
    pub counts: Counts,
    pub skipped_rows: usize,
    pub deduped: usize,
    pub updated_at: String,
}

/// Makes a complete dataset visible: parts renamed to their final names,
/// the manifest marked committed, then `_SUCCESS`.
fn commit(dir: &Path, m: &mut Manifest) -> Result<()> {
    commit_parts(dir, &m.parts)?;
    m.committed = true;
    m.write(dir)?;
    write_success(dir, m)?;
    remove_marker(dir)
}

/// Removes `INCOMPLETE` once the parts are visible.
fn remove_marker(dir: &Path) -> Result<()> {
    let p = dir.join(INCOMPLETE);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&p, e)),
        _ => Ok(()),
    }
}

impl Manifest {
    /// Articles the listed parts hold.
    pub fn held(&self) -> usize {
        self.parts.iter().map(|p| p.articles).sum()
    }

    pub fn read(dir: &Path) -> Result<Option<Manifest>> {
        let p = dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&p, e)),
        };
        let m: Manifest = serde_json::from_str(&text).map_err(|e| {
            Error::input(
                p.display().to_string(),
                format!("not a paratag manifest ({e}); remove the folder to start over"),
            )
        })?;
        if m.format != FORMAT || !(1..=VERSION).contains(&m.version) {
            return Err(Error::input(
                p.display().to_string(),
                format!("unknown manifest format {} v{}", m.format, m.version),
            ));
        }
        Ok(Some(m))
    }

    fn write(&mut self, dir: &Path) -> Result<()> {
        self.updated_at = chrono::Utc::now().to_rfc3339();
        let text = serde_json::to_string_pretty(self).expect("manifest serialises");
        atomic_write(&dir.join(MANIFEST), format!("{text}\n").as_bytes())
    }
}

/// Names the settings keys that differ, for the resume and merge checks.
pub fn differences(old: &Value, new: &Value) -> Vec<String> {
    let short = |v: Option<&Value>| {
        let s = v.map_or("(none)".to_string(), |v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        crate::text::cut(&s).chars().take(24).collect::<String>()
    };
    let (Some(a), Some(b)) = (old.as_object(), new.as_object()) else {
        return vec!["settings".into()];
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k} (was {}, now {})", short(a.get(k)), short(b.get(k))))
        .collect()
}

/// How a job opens its dataset folder.
pub struct Options<'a> {
    pub resume: bool,
    pub force: bool,
    pub chunk_rows: usize,
    pub shard: Option<Shard>,
    pub settings: Value,
    /// Articles this dataset will hold.
    pub articles: usize,
    pub skipped_rows: usize,
    pub deduped: usize,
    /// Provenance written into every part.
    pub metadata: Vec<(String, String)>,
    pub codebook: Option<Codebook>,
    pub schema: Schema,
    /// Told of every part dropped on resume.
    pub report: &'a (dyn Fn(&str) + Sync),
}

/// The part being written.
struct Open {
    file: ParquetFile,
    name: String,
    first: u64,
    next: u64,
    articles: usize,
    first_id: String,
    last_id: String,
    counts: Counts,
}

/// A dataset folder being written: the [`Sink`] for `-o DIR`.
pub struct Dataset {
    pub dir: PathBuf,
    manifest: Manifest,
    next_index: usize,
    open: Option<Open>,
    chunk_rows: usize,
    metadata: Vec<(String, String)>,
    codebook: Option<Codebook>,
    schema: Schema,
    /// Held for the life of the job, so two jobs never write one folder.
    _lock: std::fs::File,
}

fn part_index(name: &str) -> Option<usize> {
    name.strip_prefix("part-")?
        .strip_suffix(".parquet")?
        .parse()
        .ok()
}

/// The names in a folder.
fn names(dir: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// Where part `file` (relative to `dir`, e.g. `part-00000.parquet` or
/// `shard-0-of-3/part-00000.parquet`) waits until the job commits.
pub fn pending_path(dir: &Path, file: &str) -> PathBuf {
    let f = Path::new(file);
    let name = f
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    dir.join(f.parent().unwrap_or(Path::new("")))
        .join(PENDING_DIR)
        .join(format!("{name}{PENDING_SUFFIX}"))
}

/// Where a listed part is now: at its final name once committed, else
/// pending; `None` when it is in neither place.
pub fn locate(dir: &Path, file: &str) -> Option<PathBuf> {
    [dir.join(file), pending_path(dir, file)]
        .into_iter()
        .find(|p| p.is_file())
}

/// Renames `parts` of the dataset in `dir` to their final names (those not
/// there yet), then syncs the folders.
fn commit_parts(dir: &Path, parts: &[Part]) -> Result<()> {
    let mut folders = std::collections::BTreeSet::new();
    for p in parts {
        let (pending, done) = (pending_path(dir, &p.file), dir.join(&p.file));
        if !done.is_file() {
            std::fs::rename(&pending, &done).map_err(|e| Error::io(&pending, e))?;
        }
        folders.insert(crate::atomic::parent_of(&done));
    }
    for f in folders {
        crate::atomic::sync_dir(&f)?;
        // Empty once every part is out (a temporary of a crashed run was
        // removed at open).
        let _ = std::fs::remove_dir(f.join(PENDING_DIR));
    }
    Ok(())
}

/// `_SUCCESS`: written last, so its presence says the dataset is complete.
fn write_success(dir: &Path, m: &Manifest) -> Result<()> {
    let rows: usize = m.parts.iter().map(|p| p.rows).sum();
    let text = serde_json::json!({
        "articles": m.articles,
        "rows": rows,
        "parts": m.parts.len(),
        "committed_at": chrono::Utc::now().to_rfc3339(),
    });
    crate::atomic::atomic_write(&dir.join(SUCCESS), format!("{text}\n").as_bytes())
}

fn refuse(dir: &Path, message: String) -> Error {
    Error::Output {
        path: dir.to_path_buf(),
        message,
    }
}

/// The folder's lock: one job writes a dataset at a time.
fn lock(dir: &Path) -> Result<std::fs::File> {
    let lock_path = dir.join("_lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io(&lock_path, e))?;
    if lock.try_lock().is_err() {
        return Err(refuse(
            dir,
            "another paratag job is writing this folder".into(),
        ));
    }
    Ok(lock)
}

/// The parts of the dataset there that `--resume` keeps: it must be asked
/// to resume, with the same settings (or `--force`) and shard; parts whose
/// file is gone or changed are dropped (their articles are tagged again).
fn resumable_parts(dir: &Path, m: &Manifest, o: &Options) -> Result<Vec<Part>> {
    if !o.resume {
        return Err(refuse(dir, format!(
            "holds a paratag dataset already ({} parts{}); pass --resume to continue it, or choose another -o",
            m.parts.len(),
            if m.complete { ", complete" } else { "" }
        )));
    }
    if m.version < VERSION && !m.complete {
        return Err(refuse(dir, format!(
            "was written by an older paratag (dataset format {}); finish it with that version, or start a new folder",
            m.version
        )));
    }
    let diff = differences(&m.settings, &o.settings);
    if !diff.is_empty() && !o.force {
        return Err(refuse(dir, format!(
            "cannot resume: settings differ from the run that wrote it: {}; pass --force to resume anyway",
            diff.join(", ")
        )));
    }
    if m.shard != o.shard {
        return Err(refuse(
            dir,
            "cannot resume: it was written for another shard".into(),
        ));
    }
    let mut parts = vec![];
    for p in &m.parts {
        let ok = locate(dir, &p.file)
            .is_some_and(|path| crate::hash::sha256_file(&path).is_ok_and(|h| h == p.sha256));
        if ok {
            parts.push(p.clone());
        } else {
            (o.report)(&format!(
                "{}: missing or its sha256 changed; its articles are tagged again",
                dir.join(&p.file).display()
            ));
            let _ = std::fs::remove_file(dir.join(&p.file));
            let _ = std::fs::remove_file(pending_path(dir, &p.file));
        }
    }
    Ok(parts)
}

/// A folder with no manifest may hold only what a paratag job leaves.
fn check_only_ours(dir: &Path, listed: &[String], resume: bool) -> Result<()> {
    let ours = |n: &String| {
        matches!(n.as_str(), "_lock" | PENDING_DIR | SUCCESS | INCOMPLETE)
            || n.starts_with(".paratag-")
            || (resume && part_index(n).is_some())
    };
    let foreign: Vec<&str> = listed
        .iter()
        .filter(|n| !ours(n))
        .map(String::as_str)
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(refuse(
        dir,
        format!(
            "is not empty ({}) and holds no paratag dataset; choose an empty or new folder",
            crate::text::cut(&foreign.join(", "))
        ),
    ))
}

/// Half-written parts, and parts written but never recorded, go; so does a
/// `_SUCCESS` the dataset no longer earns.
fn clean(dir: &Path, listed: &[String], parts: &[Part]) -> Result<()> {
    let recorded = |n: &str| parts.iter().any(|p| p.file == n);
    for n in listed {
        if n.starts_with(".paratag-") || (part_index(n).is_some() && !recorded(n)) {
            let _ = std::fs::remove_file(dir.join(n));
        }
    }
    let pending = dir.join(PENDING_DIR);
    for n in names(&pending)? {
        let part = n.strip_suffix(PENDING_SUFFIX);
        if !part.is_some_and(|p| part_index(p).is_some() && recorded(p)) {
            let _ = std::fs::remove_file(pending.join(&n));
        }
    }
    let _ = std::fs::remove_file(dir.join(SUCCESS));
    Ok(())
}

impl Dataset {
    /// Opens `dir` (the shard's folder when sharded): a new dataset, or with
    /// `--resume` the one there, after checking its settings and parts.
    pub fn open(root: &Path, o: Options) -> Result<Dataset> {
        let dir = match o.shard {
            Some(s) => root.join(s.dir_name()),
            None => root.to_path_buf(),
        };
        if dir.exists() && !dir.is_dir() {
            return Err(refuse(&dir, "exists and is not a folder".into()));
        }
        let pending = dir.join(PENDING_DIR);
        std::fs::create_dir_all(&pending).map_err(|e| Error::io(&pending, e))?;
        let lock = lock(&dir)?;
        let listed = names(&dir)?;
        let parts = match Manifest::read(&dir)? {
            Some(m) => resumable_parts(&dir, &m, &o)?,
            None => {
                check_only_ours(&dir, &listed, o.resume)?;
                vec![]
            }
        };
        clean(&dir, &listed, &parts)?;
        crate::atomic::atomic_write(
            &dir.join(INCOMPLETE),
            format!(
                "This paratag dataset is not complete: its parts wait in {PENDING_DIR}/ until every article is written.\n\
                 `paratag inspect {}` says what is missing; the same `paratag tag` command with --resume finishes it\n\
                 (for shards, then `paratag merge` on their parent folder).\n",
                dir.display()
            )
            .as_bytes(),
        )?;
        let next_index = parts
            .iter()
            .filter_map(|p| part_index(&p.file))
            .max()
            .map_or(0, |i| i + 1);
        let mut manifest = Manifest {
            format: FORMAT.into(),
            version: VERSION,
            settings: o.settings,
            shard: o.shard,
            shards: None,
            articles: o.articles,
            complete: false,
            committed: false,
            parts,
            counts: Counts::default(),
            skipped_rows: o.skipped_rows,
            deduped: o.deduped,
            updated_at: String::new(),
        };
        manifest.write(&dir)?;
        Ok(Dataset {
            dir,
            manifest,
            next_index,
            open: None,
            chunk_rows: o.chunk_rows.max(1),
            metadata: o.metadata,
            codebook: o.codebook,
            schema: o.schema,
            _lock: lock,
        })
    }

    /// The ordinal ranges `[first, end)` good parts already hold.
    pub fn done_ranges(&self) -> Vec<(u64, u64)> {
        self.manifest
            .parts
            .iter()
            .map(|p| (p.first_ordinal, p.end_ordinal))
            .collect()
    }

    /// The first occurrences of paragraph texts in the parts already held,
    /// in input order, at most the last `cap` ([`crate::dedupe`]): the rows
    /// with no `dup_of_article_id`, as (article id, paragraph, text).
    pub fn firsts(&self, cap: usize) -> Result<Vec<(String, u32, String)>> {
        let mut parts: Vec<&Part> = self.manifest.parts.iter().collect();
        parts.sort_by_key(|p| p.first_ordinal);
        let mut out = std::collections::VecDeque::new();
        for p in parts {
            let path = locate(&self.dir, &p.file).ok_or_else(|| Error::Output {
                path: self.dir.join(&p.file),
                message: "is listed in the manifest but missing".into(),
            })?;
            let bad = |e: PolarsError| Error::Output {
                path: path.clone(),
                message: format!("cannot read the part back: {e}"),
            };
            let file = std::fs::File::open(&path).map_err(|e| Error::Output {
                path: path.clone(),
                message: e.to_string(),
            })?;
            // Only the columns needed, not the labels and entities.
            let mut reader = ParquetReader::new(file);
            let schema = reader.schema().map_err(bad)?;
            let columns = ["article_id", "paragraph", "text", "dup_of_article_id"]
                .into_iter()
                .filter(|c| schema.contains(c))
                .map(String::from)
                .collect();
            let df = reader.with_columns(Some(columns)).finish().map_err(bad)?;
            let ids = df
                .column("article_id")
                .and_then(|c| c.str().cloned())
                .map_err(bad)?;
            let paras = df
                .column("paragraph")
                .and_then(|c| c.u32().cloned())
                .map_err(bad)?;
            let texts = df
                .column("text")
                .and_then(|c| c.str().cloned())
                .map_err(bad)?;
            // Parts written before copies were marked (a `--force`d
            // resume) hold only first occurrences.
            let dup = df.column("dup_of_article_id").ok();
            for i in 0..df.height() {
                if let Some(d) = dup {
                    if !d.get(i).map_err(bad)?.is_null() {
                        continue;
                    }
                }
                if let (Some(id), Some(p), Some(t)) = (ids.get(i), paras.get(i), texts.get(i)) {
                    out.push_back((id.to_string(), p, t.to_string()));
                    if out.len() > cap {
                        out.pop_front();
                    }
                }
            }
        }
        Ok(out.into())
    }

    /// Articles already held when the job started.
    pub fn done_articles(&self) -> usize {
        self.manifest.parts.iter().map(|p| p.articles).sum()
    }

    fn close(&mut self) -> Result<()> {
        let Some(o) = self.open.take() else {
            return Ok(());
        };
        let part = serde_json::json!({
            "file": o.name,
            "first_ordinal": o.first,
            "end_ordinal": o.next,
            "shard": self.manifest.shard,
        });
        let mut meta = self.metadata.clone();
        meta.push(("paratag.part".into(), part.to_string()));
        meta.push((
            "paratag.summary".into(),
            serde_json::to_string(&o.counts).expect("counts"),
        ));
        meta.push((
            "paratag.finished_at".into(),
            chrono::Utc::now().to_rfc3339(),
        ));
        let rows = o.file.rows;
        let w = o.file.finish(meta)?;
        self.manifest.parts.push(Part {
            file: o.name,
            rows,
            articles: o.articles,
            first_ordinal: o.first,
            end_ordinal: o.next,
            first_article_id: o.first_id,
            last_article_id: o.last_id,
            sha256: w.sha256,
            bytes: w.bytes,
            counts: o.counts,
        });
        self.manifest.parts.sort_by_key(|p| p.first_ordinal);
        self.manifest.write(&self.dir)
    }

    /// Closes the last part, marks the dataset complete when every article
    /// is held, and then commits it (a shard waits for `merge`).
    pub fn finish(mut self) -> Result<Manifest> {
        self.close()?;
        let m = &mut self.manifest;
        m.complete = m.held() == m.articles;
        m.counts = Counts::default();
        for p in &m.parts {
            m.counts.add(&p.counts);
        }
        m.write(&self.dir)?;
        if m.complete && m.shard.is_none() {
            commit(&self.dir, m)?;
        }
        Ok(self.manifest)
    }
}

impl Sink for Dataset {
    fn write(&mut self, w: Labeled) -> Result<()> {
        let df = frame(&w, self.codebook.as_ref())?;
        // Rows of article `a` are contiguous, in article order.
        let mut row_of = vec![0usize; w.ids.len() + 1];
        for r in &w.rows {
            row_of[r.article + 1] += 1;
        }
        for a in 0..w.ids.len() {
            row_of[a + 1] += row_of[a];
        }
        let mut start_row = 0;
        for (a, (&ord, id)) in w.ordinals.iter().zip(&w.ids).enumerate() {
            if self.open.as_ref().is_some_and(|o| o.next != ord) {
                self.flush(&df, &mut start_row, row_of[a])?;
                self.close()?;
            }
            if self.open.is_none() {
                let name = format!("part-{:05}.parquet", self.next_index);
                self.next_index += 1;
                let file = ParquetFile::create(&pending_path(&self.dir, &name), &self.schema)?;
                self.open = Some(Open {
                    file,
                    name,
                    first: ord,
                    next: ord,
                    articles: 0,
                    first_id: id.clone(),
                    last_id: id.clone(),
                    counts: Counts::default(),
                });
                start_row = row_of[a];
            }
            let o = self.open.as_mut().expect("open part");
            o.next = ord + 1;
            o.articles += 1;
            o.last_id = id.clone();
            o.counts.add(&w.counts[a]);
            let (rows_before, pending) = (o.file.rows, row_of[a + 1] - start_row);
            if rows_before + pending >= self.chunk_rows {
                self.flush(&df, &mut start_row, row_of[a + 1])?;
                self.close()?;
            }
        }
        self.flush(&df, &mut start_row, row_of[w.ids.len()])
    }
}

impl Dataset {
    /// Writes rows `[*start, end)` of `df` to the open part.
    fn flush(&mut self, df: &DataFrame, start: &mut usize, end: usize) -> Result<()> {
        if let Some(o) = self.open.as_mut() {
            if end > *start {
                o.file.write(&df.slice(*start as i64, end - *start))?;
            }
        }
        *start = end;
        Ok(())
    }
}

// ---------------------------------------------------------------- merge ----

/// What `paratag merge` found.
pub struct Merged {
    pub manifest: Manifest,
    pub rows: usize,
}

/// The `shard-K-of-N/` folders in `root`, by K.
pub fn shard_dirs(root: &Path) -> Result<Vec<(Shard, PathBuf)>> {
    let mut shards: Vec<(Shard, PathBuf)> = vec![];
    for e in std::fs::read_dir(root).map_err(|e| Error::io(root, e))? {
        let e = e.map_err(|e| Error::io(root, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let parsed = name
            .strip_prefix("shard-")
            .and_then(|r| r.split_once("-of-"))
            .and_then(|(k, n)| Some((k.parse::<u32>().ok()?, n.parse::<u32>().ok()?)));
        if let (Some((index, count)), true) = (parsed, e.path().is_dir()) {
            shards.push((Shard { index, count }, e.path()));
        }
    }
    shards.sort_by_key(|s| (s.0.count, s.0.index));
    Ok(shards)
}

/// The N of a folder's shards, all of which must be there.
fn shard_count(shards: &[(Shard, PathBuf)]) -> std::result::Result<u32, String> {
    if shards.is_empty() {
        return Err("holds no shard-K-of-N folders (written by tag --shard)".into());
    }
    let counts: std::collections::BTreeSet<u32> = shards.iter().map(|s| s.0.count).collect();
    if counts.len() > 1 {
        return Err(format!(
            "holds shards of different jobs (N = {}); keep one job per folder",
            counts
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let n = *counts.iter().next().expect("one count");
    let missing: Vec<String> = (0..n)
        .filter(|k| !shards.iter().any(|s| s.0.index == *k))
        .map(|k| format!("shard-{k}-of-{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing {}", missing.join(", ")));
    }
    Ok(n)
}

/// Every part of shard `name` is there and unchanged (by size, or by
/// sha256 with `verify`); the rows they hold.
fn check_parts(root: &Path, dir: &Path, name: &str, m: &Manifest, verify: bool) -> Result<usize> {
    let mut rows = 0;
    for p in &m.parts {
        let ok = match locate(dir, &p.file) {
            Some(path) if !verify => std::fs::metadata(&path).is_ok_and(|md| md.len() == p.bytes),
            Some(path) => crate::hash::sha256_file(&path)? == p.sha256,
            None => false,
        };
        if !ok {
            return Err(Error::Output {
                path: root.into(),
                message: format!(
                    "{name}/{}: missing or changed since it was written; resume {name} with --resume",
                    p.file
                ),
            });
        }
        rows += p.rows;
    }
    Ok(rows)
}

/// Checks that `root` holds all N shards of one job, each complete and made
/// with the same settings, and writes `root/_manifest.json` listing every
/// part (paths relative to `root`). The data is not copied. `verify`
/// re-hashes every part; otherwise each part's size is checked.
pub fn merge(root: &Path, verify: bool) -> Result<Merged> {
    let bad = |m: String| Error::Output {
        path: root.into(),
        message: m,
    };
    let shards = shard_dirs(root)?;
    let n = shard_count(&shards).map_err(bad)?;
    let mut merged: Option<Manifest> = None;
    let mut checked: Vec<(PathBuf, Manifest)> = vec![];
    let mut rows = 0;
    let mut first_name = String::new();
    for (shard, dir) in &shards {
        let name = shard.dir_name();
        let m = Manifest::read(dir)?.ok_or_else(|| bad(format!("{name} has no {MANIFEST}")))?;
        if !m.complete {
            let held: usize = m.parts.iter().map(|p| p.articles).sum();
            return Err(bad(format!(
                "{name} is not complete ({held} of {} articles); resume it with the same command and --resume",
                m.articles
            )));
        }
        rows += check_parts(root, dir, &name, &m, verify)?;
        checked.push((dir.clone(), m.clone()));
        match &mut merged {
            None => {
                first_name = name.clone();
                let mut m = m.clone();
                m.shard = None;
                m.shards = Some(n);
                for p in &mut m.parts {
                    p.file = format!("{name}/{}", p.file);
                }
                merged = Some(m);
            }
            Some(all) => {
                let diff = differences(&all.settings, &m.settings);
                if !diff.is_empty() {
                    return Err(bad(format!(
                        "{name} was made with other settings than {first_name}: {}",
                        diff.join(", ")
                    )));
                }
                all.articles += m.articles;
                all.counts.add(&m.counts);
                all.parts.extend(m.parts.iter().map(|p| Part {
                    file: format!("{name}/{}", p.file),
                    ..p.clone()
                }));
            }
        }
    }
    // All shards checked: commit them, then the job.
    for (dir, m) in &mut checked {
        if !m.committed {
            commit_parts(dir, &m.parts)?;
            m.committed = true;
            m.write(dir)?;
        }
    }
    let mut manifest = merged.expect("at least one shard");
    manifest.complete = true;
    manifest.committed = true;
    manifest.write(root)?;
    write_success(root, &manifest)?;
    for (dir, _) in &checked {
        remove_marker(dir)?;
    }
    Ok(Merged { manifest, rows })
}

/// Reads a paratag output as one table: a Parquet file, or a complete
/// dataset folder (merged, for shards).
pub fn read_predictions(path: &Path) -> Result<crate::record::Predictions> {
    let files = if path.is_dir() {
        part_files(path)?
    } else {
        vec![path.to_path_buf()]
    };
    crate::output::read_predictions_from(&files, path)
}

/// The Parquet files of a dataset folder (single, sharded-and-merged), in
/// order, refusing an incomplete one.
pub fn part_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let m = Manifest::read(dir)?.ok_or_else(|| Error::Output {
        path: dir.into(),
        message: format!(
            "has no {MANIFEST}: not a paratag dataset (for shards, run `paratag merge` first)"
        ),
    })?;
    if !m.complete {
        return Err(Error::Output {
            path: dir.into(),
            message: format!(
                "is not complete ({} of {} articles): finish it with `paratag tag ... --resume`",
                m.held(),
                m.articles
            ),
        });
    }
    m.parts
        .iter()
        .map(|p| {
            locate(dir, &p.file).ok_or_else(|| Error::Output {
                path: dir.join(&p.file),
                message: "is listed in the manifest but missing".into(),
            })
        })
        .collect()
}
