//! The output table: one row per kept paragraph, written to Parquet through
//! polars with provenance in every file's key-value metadata, one row group
//! per window as the job goes.
//!
//! [`ParquetFile`] writes through a hidden temporary file beside the target
//! and renames it only once its footer is written and fsynced, so an
//! interrupted run never leaves a half-written table under the real name.
//! [`FileSink`] is `-o out.parquet`; `crate::dataset` writes folders of parts.

use crate::atomic::Pending;
use crate::codebook::Codebook;
use crate::error::{Error, Result};
use crate::pipeline::{Labeled, Sink};
use crate::record::{Pred, PredEntity, PredStance, Predictions, Row, Span, Stance};
use crate::task::{entity_item, label_score_item, Col, Task};
use polars::prelude::*;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// `list<struct>` from per-row optional lists, built from one flat struct column.
fn list_of_structs(
    name: &str,
    rows: &[Option<usize>],
    flat: StructChunked,
    item: DataType,
) -> Result<Series> {
    if rows.iter().all(|r| r.is_none()) {
        return Ok(Series::full_null(
            name.into(),
            rows.len(),
            &DataType::List(Box::new(item)),
        ));
    }
    let flat = flat.into_series();
    let mut off = 0i64;
    let mut out: ListChunked = rows
        .iter()
        .map(|r| {
            r.map(|n| {
                let s = flat.slice(off, n);
                off += n as i64;
                s
            })
        })
        .collect();
    out.rename(name.into());
    Ok(out.into_series())
}

/// One window's rows as a table (the output schema, docs/formats.md "Output schema").
pub fn frame(w: &Labeled, codebook: Option<&Codebook>) -> Result<DataFrame> {
    let rows = &w.rows;
    let n = rows.len();
    let mut cols: Vec<Column> = Vec::new();
    let mut push = |s: Series| cols.push(s.into_column());

    push(Series::new(
        "article_id".into(),
        rows.iter()
            .map(|r| w.ids[r.article].as_str())
            .collect::<Vec<_>>(),
    ));
    push(Series::new(
        "paragraph".into(),
        rows.iter().map(|r| r.paragraph).collect::<Vec<u32>>(),
    ));
    push(Series::new(
        "start".into(),
        rows.iter().map(|r| r.start).collect::<Vec<u32>>(),
    ));
    push(Series::new(
        "end".into(),
        rows.iter().map(|r| r.end).collect::<Vec<u32>>(),
    ));
    push(Series::new(
        "text".into(),
        rows.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(),
    ));
    push(Series::new(
        "lang".into(),
        rows.iter().map(|r| r.lang.as_str()).collect::<Vec<_>>(),
    ));
    push(Series::new(
        "lang_score".into(),
        rows.iter().map(|r| r.lang_score).collect::<Vec<f32>>(),
    ));
    topic_columns(rows, &mut push)?;
    if let Some(cb) = codebook {
        stance_columns(rows, cb, &mut push);
    }
    push(entity_column(rows)?);

    push(Series::new(
        "truncated_windows".into(),
        rows.iter()
            .map(|r| r.truncated_windows)
            .collect::<Vec<u16>>(),
    ));
    push(Series::new(
        "dup_of_article_id".into(),
        rows.iter()
            .map(|r| r.dup_of.as_ref().map(|d| &*d.0))
            .collect::<Vec<Option<&str>>>(),
    ));
    push(Series::new(
        "dup_of_paragraph".into(),
        rows.iter()
            .map(|r| r.dup_of.as_ref().map(|d| d.1))
            .collect::<Vec<Option<u32>>>(),
    ));

    let idx = IdxCa::from_vec(
        "idx".into(),
        rows.iter().map(|r| r.article as IdxSize).collect(),
    );
    let pass = w.passthrough.take(&idx)?;
    for c in pass.columns() {
        cols.push(c.clone());
    }
    Ok(DataFrame::new(n, cols)?)
}

/// `topic`, `topic_score`, `topic_scores`.
fn topic_columns(rows: &[Row], push: &mut dyn FnMut(Series)) -> Result<()> {
    let topic = Task::Topic;
    push(Series::new(
        topic.name().into(),
        rows.iter().map(|r| r.topic.as_deref()).collect::<Vec<_>>(),
    ));
    push(Series::new(
        topic.col(Col::Score).into(),
        rows.iter().map(|r| r.topic_score).collect::<Vec<_>>(),
    ));

    let flat: Vec<&(String, f32)> = rows
        .iter()
        .flat_map(|r| r.topic_scores.iter().flatten())
        .collect();
    let fields = [
        Series::new(
            "label".into(),
            flat.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
        ),
        Series::new(
            "score".into(),
            flat.iter().map(|x| x.1).collect::<Vec<f32>>(),
        ),
    ];
    let name = topic.col(Col::Scores);
    let st = StructChunked::from_series(name.as_str().into(), flat.len(), fields.iter())?;
    push(list_of_structs(
        &name,
        &rows
            .iter()
            .map(|r| r.topic_scores.as_ref().map(|v| v.len()))
            .collect::<Vec<_>>(),
        st,
        label_score_item(),
    )?);

    Ok(())
}

/// Per stance target: its label, scores, holder and P(reported).
fn stance_columns(rows: &[Row], cb: &Codebook, push: &mut dyn FnMut(Series)) {
    for (i, s) in cb.stances.iter().enumerate() {
        let get = |r: &Row| r.stances.get(i).copied().unwrap_or_default();
        let [stance, holder] = Task::stance_pair(&s.id);
        push(Series::new(
            stance.name().into(),
            rows.iter().map(|r| get(r).label).collect::<Vec<_>>(),
        ));
        for (c, f) in [
            (
                Col::Score,
                (|s: Stance| s.score) as fn(Stance) -> Option<f32>,
            ),
            (Col::Favor, |s: Stance| s.favor),
            (Col::Against, |s: Stance| s.against),
        ] {
            push(Series::new(
                stance.col(c).into(),
                rows.iter().map(|r| f(get(r))).collect::<Vec<_>>(),
            ));
        }
        push(Series::new(
            holder.name().into(),
            rows.iter().map(|r| get(r).holder).collect::<Vec<_>>(),
        ));
        push(Series::new(
            holder.col(Col::Reported).into(),
            rows.iter().map(|r| get(r).reported).collect::<Vec<_>>(),
        ));
    }
}

/// `entities`: a list of structs per row.
fn entity_column(rows: &[Row]) -> Result<Series> {
    let ents: Vec<&crate::record::Entity> = rows
        .iter()
        .flat_map(|r| r.entities.iter().flatten())
        .collect();
    let fields = [
        Series::new(
            "text".into(),
            ents.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
        ),
        Series::new(
            "label".into(),
            ents.iter().map(|e| e.label.as_str()).collect::<Vec<_>>(),
        ),
        Series::new(
            "start".into(),
            ents.iter().map(|e| e.start).collect::<Vec<u32>>(),
        ),
        Series::new(
            "end".into(),
            ents.iter().map(|e| e.end).collect::<Vec<u32>>(),
        ),
        Series::new(
            "score".into(),
            ents.iter().map(|e| e.score).collect::<Vec<f32>>(),
        ),
    ];
    let name = Task::Entities.name();
    let st = StructChunked::from_series(name.as_str().into(), ents.len(), fields.iter())?;
    list_of_structs(
        &name,
        &rows
            .iter()
            .map(|r| r.entities.as_ref().map(|v| v.len()))
            .collect::<Vec<_>>(),
        st,
        entity_item(),
    )
}

/// The output schema of a job: an empty window's.
pub fn schema(codebook: Option<&Codebook>, pass: &[crate::input::PassColumn]) -> Result<Schema> {
    let empty = Labeled {
        ids: vec![],
        ordinals: vec![],
        rows: vec![],
        passthrough: crate::input::passthrough(&[], pass)?,
        counts: vec![],
    };
    Ok(frame(&empty, codebook)?.schema().as_ref().clone())
}

// ------------------------------------------------------------ writing ------

/// The bytes a Parquet writer emits, buffered and hashed on the way to the file.
#[derive(Clone)]
struct Hashed(Arc<Mutex<(std::io::BufWriter<std::fs::File>, Sha256, u64)>>);

impl Write for Hashed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut g = self.0.lock().expect("writer lock");
        let n = g.0.write(buf)?;
        g.1.update(&buf[..n]);
        g.2 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().expect("writer lock").0.flush()
    }
}

/// A Parquet file written one row group at a time through a [`Pending`]
/// temporary, with its sha256 computed as it is written.
pub struct ParquetFile {
    writer: polars::io::parquet::write::BatchedWriter<Hashed>,
    out: Hashed,
    pending: Pending,
    schema: Schema,
    pub rows: usize,
}

/// What a finished file is.
#[derive(Debug, Clone)]
pub struct Written {
    pub sha256: String,
    pub bytes: u64,
}

impl ParquetFile {
    pub fn create(target: &Path, schema: &Schema) -> Result<ParquetFile> {
        let pending = Pending::create(target)?;
        let file = pending
            .file()
            .try_clone()
            .map_err(|e| Error::io(target, e))?;
        let out = Hashed(Arc::new(Mutex::new((
            std::io::BufWriter::with_capacity(1 << 20, file),
            Sha256::new(),
            0,
        ))));
        let writer = ParquetWriter::new(out.clone())
            .batched(schema)
            .map_err(|e| Error::Output {
                path: target.into(),
                message: e.to_string(),
            })?;
        Ok(ParquetFile {
            writer,
            out,
            pending,
            schema: schema.clone(),
            rows: 0,
        })
    }

    fn err(&self, m: impl std::fmt::Display) -> Error {
        Error::Output {
            path: self.pending.target().into(),
            message: m.to_string(),
        }
    }

    /// Writes `df` as one row group.
    pub fn write(&mut self, df: &DataFrame) -> Result<()> {
        if df.height() == 0 {
            return Ok(());
        }
        if df.schema().as_ref() != &self.schema {
            return Err(self.err(format!(
                "internal error: a window's columns {:?} differ from the table's {:?}",
                df.schema(),
                self.schema
            )));
        }
        let mut df = df.clone();
        df.rechunk_mut();
        self.writer.write_batch(&df).map_err(|e| self.err(e))?;
        self.rows += df.height();
        Ok(())
    }

    /// Writes the footer with `meta`, flushes to disk, renames into place.
    pub fn finish(self, meta: Vec<(String, String)>) -> Result<Written> {
        use polars_parquet::write::{schema_to_metadata_key, KeyValue};
        {
            let mut w = self.writer.get_writer().lock().expect("writer lock");
            let mut kv = vec![schema_to_metadata_key(w.schema())];
            kv.extend(meta.into_iter().map(|(key, value)| KeyValue {
                key,
                value: Some(value),
            }));
            w.end(Some(kv)).map_err(|e| self.err(e))?;
        }
        let (sha256, bytes) = {
            let mut g = self.out.0.lock().expect("writer lock");
            g.0.flush().map_err(|e| self.err(e))?;
            (hex::encode(g.1.clone().finalize()), g.2)
        };
        self.pending.commit()?;
        Ok(Written { sha256, bytes })
    }
}

/// `-o out.parquet`: every window into one file, renamed at the end.
pub struct FileSink {
    file: ParquetFile,
    codebook: Option<Codebook>,
}

impl FileSink {
    pub fn create(target: &Path, codebook: Option<Codebook>, schema: &Schema) -> Result<FileSink> {
        if target.is_dir() {
            return Err(Error::Output {
                path: target.into(),
                message: "is a folder; give a file name such as out.parquet".into(),
            });
        }
        Ok(FileSink {
            file: ParquetFile::create(target, schema)?,
            codebook,
        })
    }

    pub fn finish(self, meta: Vec<(String, String)>) -> Result<Written> {
        self.file.finish(meta)
    }
}

impl Sink for FileSink {
    fn write(&mut self, w: Labeled) -> Result<()> {
        let df = frame(&w, self.codebook.as_ref())?;
        self.file.write(&df)
    }
}

// ------------------------------------------------------------ reading ------

use std::collections::BTreeMap;

/// Columns of the output table read into `Pred`'s own fields (`lang` and
/// pass-through columns go to `fields`).
fn is_core(name: &str) -> bool {
    name != "lang"
        && (crate::input::RESERVED.contains(&name)
            || Task::untargeted_columns().iter().any(|c| c == name))
}

/// A Parquet file's key-value metadata (where paratag keeps provenance).
pub fn key_values(r: &mut ParquetReader<std::fs::File>) -> PolarsResult<BTreeMap<String, String>> {
    Ok(r.get_metadata()?
        .key_value_metadata
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|k| (k.key, k.value.unwrap_or_default()))
        .collect())
}

/// Reads paratag output files (one table, or a dataset's parts in order)
/// as one table with the first file's metadata; `name` is what errors call it.
pub fn read_predictions_from(files: &[std::path::PathBuf], name: &Path) -> Result<Predictions> {
    let bad = |m: String| Error::input(name.display().to_string(), m);
    let mut all: Option<(DataFrame, BTreeMap<String, String>)> = None;
    for f in files {
        let file = std::fs::File::open(f).map_err(|e| Error::io(f, e))?;
        let bad = |m: String| Error::input(f.display().to_string(), m);
        let mut r = ParquetReader::new(file);
        let meta = key_values(&mut r).map_err(|e| bad(format!("not a Parquet file: {e}")))?;
        let df = r.finish().map_err(|e| bad(e.to_string()))?;
        match &mut all {
            None => all = Some((df, meta)),
            Some((acc, _)) => {
                acc.vstack_mut(&df).map_err(|e| bad(e.to_string()))?;
            }
        }
    }
    let (df, meta) = all.ok_or_else(|| bad("the dataset has no parts".into()))?;
    predictions_from(&df, meta).map_err(|e| match e {
        Error::Config(m) => bad(m),
        e => e,
    })
}

/// The rows of a paratag output table (also used on a table just tagged).
pub fn predictions_from(df: &DataFrame, meta: BTreeMap<String, String>) -> Result<Predictions> {
    let ids = strs(df, "article_id")?;
    let paras: Vec<Option<u32>> = need(df, "paragraph")?
        .cast(&DataType::UInt32)?
        .u32()?
        .iter()
        .collect();
    let texts = strs(df, "text")?;
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let has = |c: &str| names.iter().any(|n| n == c);
    let targets: Vec<String> = names
        .iter()
        .filter_map(|c| match Task::of_column(c)? {
            (t @ Task::Stance(_), Col::Label) if has(&t.col(Col::Score)) => {
                t.target().map(String::from)
            }
            _ => None,
        })
        .collect();
    let mut rows: Vec<Pred> = (0..df.height())
        .map(|i| Pred {
            article_id: ids[i].clone().unwrap_or_default(),
            paragraph: paras[i].unwrap_or(0),
            text: texts[i].clone().unwrap_or_default(),
            ..Default::default()
        })
        .collect();
    if has(&Task::Topic.name()) {
        read_topics(df, &mut rows)?;
    }
    for t in &targets {
        read_stance(df, t, &mut rows)?;
    }
    if let Ok(c) = df.column(&Task::Entities.name()) {
        for (i, ents) in entity_lists(c)?.into_iter().enumerate() {
            rows[i].entities = ents;
        }
    }
    let stance_cols: Vec<String> = targets
        .iter()
        .flat_map(|t| Task::stance_pair(t).into_iter().flat_map(|t| t.columns()))
        .map(|c| c.0)
        .collect();
    let field_names: Vec<String> = names
        .iter()
        .filter(|c| !is_core(c) && !stance_cols.contains(c))
        .cloned()
        .collect();
    for f in &field_names {
        // Nested pass-through columns have no text form; they stay out of `fields`.
        let Ok(vals) = strs(df, f) else { continue };
        for (i, v) in vals.into_iter().enumerate() {
            if let Some(v) = v {
                rows[i].fields.insert(f.clone(), v);
            }
        }
    }
    Ok(Predictions {
        rows,
        meta,
        targets,
        field_names,
    })
}

fn need<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Column> {
    df.column(name).map_err(|_| {
        Error::Config(format!(
            "column {name:?} is missing: is this a `paratag tag` output?"
        ))
    })
}

fn strs(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    let c = need(df, name)?.cast(&DataType::String)?;
    Ok(c.str()?.iter().map(|s| s.map(str::to_string)).collect())
}

fn f32s(c: &Column) -> Result<Vec<Option<f32>>> {
    Ok(c.cast(&DataType::Float32)?.f32()?.iter().collect())
}

/// The topic, its score and every topic's score, into each row.
fn read_topics(df: &DataFrame, rows: &mut [Pred]) -> Result<()> {
    let topic = Task::Topic;
    let score = f32s(need(df, &topic.col(Col::Score))?)?;
    let scores = label_scores(need(df, &topic.col(Col::Scores))?)?;
    let topic = strs(df, &topic.name())?;
    for (i, r) in rows.iter_mut().enumerate() {
        r.topic = topic[i].clone();
        r.topic_score = score[i];
        r.topic_scores = scores[i].clone();
    }
    Ok(())
}

/// Stance target `t`'s label, scores and holder, into each row.
fn read_stance(df: &DataFrame, t: &str, rows: &mut [Pred]) -> Result<()> {
    let n = df.height();
    let [stance, holder] = Task::stance_pair(t);
    let label = strs(df, &stance.name())?;
    let col = |name: String| -> Result<Vec<Option<f32>>> {
        match df.column(&name) {
            Ok(c) => f32s(c),
            Err(_) => Ok(vec![None; n]),
        }
    };
    let score = col(stance.col(Col::Score))?;
    let (favor, against) = (col(stance.col(Col::Favor))?, col(stance.col(Col::Against))?);
    let reported = col(holder.col(Col::Reported))?;
    // Tables from before holders have no holder column.
    let holder = match df.column(&holder.name()) {
        Ok(_) => strs(df, &holder.name())?,
        Err(_) => vec![None; n],
    };
    for (i, r) in rows.iter_mut().enumerate() {
        r.stances.insert(
            t.to_string(),
            PredStance {
                label: label[i].clone(),
                score: score[i],
                favor: favor[i],
                against: against[i],
                holder: holder[i].clone(),
                reported: reported[i],
            },
        );
    }
    Ok(())
}

/// `list<struct{label, score}>` per row.
/// A `list<struct>` column read row by row: `None` for a null list, else
/// `item` applied to the row's struct array.
fn struct_lists<T>(
    c: &Column,
    item: impl Fn(&StructChunked) -> Result<Vec<T>>,
) -> Result<Vec<Option<Vec<T>>>> {
    let list = c.list()?;
    (0..list.len())
        .map(|i| match list.get_as_series(i) {
            None => Ok(None),
            Some(s) => Ok(Some(item(s.struct_()?)?)),
        })
        .collect()
}

/// A struct field as text, u32 or f32 values (nulls as empty / 0).
fn field_str(st: &StructChunked, n: &str) -> Result<Vec<String>> {
    Ok(st
        .field_by_name(n)?
        .str()?
        .iter()
        .map(|x| x.unwrap_or_default().to_string())
        .collect())
}
fn field_u32(st: &StructChunked, n: &str) -> Result<Vec<u32>> {
    let s = st.field_by_name(n)?.cast(&DataType::UInt32)?;
    Ok(s.u32()?.iter().map(|x| x.unwrap_or(0)).collect())
}
fn field_f32(st: &StructChunked, n: &str) -> Result<Vec<f32>> {
    let s = st.field_by_name(n)?.cast(&DataType::Float32)?;
    Ok(s.f32()?.iter().map(|x| x.unwrap_or(0.0)).collect())
}

/// Per-row `(label, score)` lists.
type LabelScores = Vec<Option<Vec<(String, f32)>>>;

fn label_scores(c: &Column) -> Result<LabelScores> {
    struct_lists(c, |st| {
        Ok(field_str(st, "label")?
            .into_iter()
            .zip(field_f32(st, "score")?)
            .collect())
    })
}

/// `list<struct{text, label, start, end, score}>` per row.
fn entity_lists(c: &Column) -> Result<Vec<Option<Vec<PredEntity>>>> {
    struct_lists(c, |st| {
        let (start, end) = (field_u32(st, "start")?, field_u32(st, "end")?);
        Ok(field_str(st, "label")?
            .into_iter()
            .zip(field_f32(st, "score")?)
            .enumerate()
            .map(|(k, (label, score))| PredEntity {
                span: Span {
                    start: start[k],
                    end: end[k],
                    label,
                },
                score,
            })
            .collect())
    })
}
