//! The output table: one row per kept paragraph, written to Parquet through
//! polars with provenance in the file's key-value metadata.
//!
//! The file is written to a temporary name in the target folder and renamed on
//! success, so a failed run never leaves a half-written table behind.

use crate::codebook::Codebook;
use crate::error::{Error, Result};
use crate::pipeline::{Stance, Tagged};
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// A temporary file next to the output, created before any work so an
/// unwritable path fails fast.
pub struct PendingOutput {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl PendingOutput {
    pub fn create(target: &Path) -> Result<PendingOutput> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if target.is_dir() {
            return Err(Error::Output {
                path: target.into(),
                message: "is a folder; give a file name such as out.parquet".into(),
            });
        }
        let tmp = tempfile::Builder::new()
            .prefix(".paratag-")
            .suffix(".parquet.tmp")
            .tempfile_in(&dir)
            .map_err(|e| Error::Output {
                path: target.into(),
                message: format!("cannot write in {}: {e}", dir.display()),
            })?;
        Ok(PendingOutput {
            tmp,
            target: target.into(),
        })
    }

    pub fn commit(self, mut df: DataFrame, metadata: Vec<(String, String)>) -> Result<()> {
        let err = |m: String| Error::Output {
            path: self.target.clone(),
            message: m,
        };
        ParquetWriter::new(self.tmp.as_file())
            .with_key_value_metadata(Some(KeyValueMetadata::from_static(metadata)))
            .finish(&mut df)
            .map_err(|e| err(e.to_string()))?;
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| err(e.to_string()))?;
        ordinary_permissions(self.tmp.as_file());
        self.tmp
            .persist(&self.target)
            .map_err(|e| err(e.error.to_string()))?;
        Ok(())
    }
}

/// Temporary files are created private (0600); a finished output is an
/// ordinary file (0644), readable by the team that shares the results.
pub fn ordinary_permissions(f: &std::fs::File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Best effort: a file system without modes keeps its own.
        let _ = f.set_permissions(std::fs::Permissions::from_mode(0o644));
    }
}

fn entity_dtype() -> DataType {
    DataType::Struct(vec![
        Field::new("text".into(), DataType::String),
        Field::new("label".into(), DataType::String),
        Field::new("start".into(), DataType::UInt32),
        Field::new("end".into(), DataType::UInt32),
        Field::new("score".into(), DataType::Float32),
    ])
}

fn score_dtype() -> DataType {
    DataType::Struct(vec![
        Field::new("label".into(), DataType::String),
        Field::new("score".into(), DataType::Float32),
    ])
}

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

pub fn to_dataframe(t: &Tagged, codebook: Option<&Codebook>) -> Result<DataFrame> {
    let rows = &t.rows;
    let n = rows.len();
    let mut cols: Vec<Column> = Vec::new();
    let mut push = |s: Series| cols.push(s.into_column());

    push(Series::new(
        "article_id".into(),
        rows.iter()
            .map(|r| t.corpus.articles[r.article].id.as_str())
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
    push(Series::new(
        "topic".into(),
        rows.iter().map(|r| r.topic.as_deref()).collect::<Vec<_>>(),
    ));
    push(Series::new(
        "topic_score".into(),
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
    let st = StructChunked::from_series("topic_scores".into(), flat.len(), fields.iter())?;
    push(list_of_structs(
        "topic_scores",
        &rows
            .iter()
            .map(|r| r.topic_scores.as_ref().map(|v| v.len()))
            .collect::<Vec<_>>(),
        st,
        score_dtype(),
    )?);

    if let Some(cb) = codebook {
        for (i, s) in cb.stances.iter().enumerate() {
            let get = |r: &crate::pipeline::Row| r.stances.get(i).copied().unwrap_or_default();
            push(Series::new(
                format!("stance_{}", s.id).into(),
                rows.iter().map(|r| get(r).label).collect::<Vec<_>>(),
            ));
            for (suffix, f) in [
                ("score", (|s: Stance| s.score) as fn(Stance) -> Option<f32>),
                ("favor", |s: Stance| s.favor),
                ("against", |s: Stance| s.against),
            ] {
                push(Series::new(
                    format!("stance_{}_{suffix}", s.id).into(),
                    rows.iter().map(|r| f(get(r))).collect::<Vec<_>>(),
                ));
            }
        }
    }

    let ents: Vec<&crate::heads::Entity> = rows
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
    let st = StructChunked::from_series("entities".into(), ents.len(), fields.iter())?;
    push(list_of_structs(
        "entities",
        &rows
            .iter()
            .map(|r| r.entities.as_ref().map(|v| v.len()))
            .collect::<Vec<_>>(),
        st,
        entity_dtype(),
    )?);

    push(Series::new(
        "truncated_windows".into(),
        rows.iter()
            .map(|r| r.truncated_windows)
            .collect::<Vec<u16>>(),
    ));

    let idx = IdxCa::from_vec(
        "idx".into(),
        rows.iter().map(|r| r.article as IdxSize).collect(),
    );
    let pass = t.corpus.passthrough.take(&idx)?;
    for c in pass.columns() {
        cols.push(c.clone());
    }
    Ok(DataFrame::new(n, cols)?)
}

// ------------------------------------------------------------ reading ------

/// One predicted entity.
#[derive(Debug, Clone, PartialEq)]
pub struct PredEntity {
    pub span: crate::formats::Span,
    pub score: f32,
}

/// One stance target's prediction; all null where it was not scored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PredStance {
    pub label: Option<String>,
    pub score: Option<f32>,
    pub favor: Option<f32>,
    pub against: Option<f32>,
}

/// One row of a paratag output table, as `sample`, `eval` and `calibrate` see it.
#[derive(Debug, Clone, Default)]
pub struct Pred {
    pub article_id: String,
    pub paragraph: u32,
    pub text: String,
    pub topic: Option<String>,
    pub topic_score: Option<f32>,
    pub topic_scores: Option<Vec<(String, f32)>>,
    pub stances: BTreeMap<String, PredStance>,
    pub entities: Option<Vec<PredEntity>>,
    /// `lang` and the pass-through columns, as text (for strata and `--by`).
    pub fields: BTreeMap<String, String>,
}

/// A paratag output table read back.
#[derive(Debug, Clone, Default)]
pub struct Predictions {
    pub rows: Vec<Pred>,
    /// Key-value metadata (`paratag.*`).
    pub meta: BTreeMap<String, String>,
    /// Stance target ids, in column order.
    pub targets: Vec<String>,
    /// Columns copied into `fields`.
    pub field_names: Vec<String>,
}

impl Predictions {
    pub fn has_topic(&self) -> bool {
        self.rows.iter().any(|r| r.topic_scores.is_some())
    }
    pub fn has_entities(&self) -> bool {
        self.rows.iter().any(|r| r.entities.is_some())
    }
    /// The codebook the table was tagged with, from its metadata.
    pub fn codebook(&self) -> Result<Option<Codebook>> {
        match self.meta.get("paratag.codebook") {
            Some(text) => Ok(Some(Codebook::parse(
                Path::new("(codebook in the predictions' metadata)"),
                text.clone(),
            )?)),
            None => Ok(None),
        }
    }
    /// Entity types the NER model predicts, from the metadata.
    pub fn entity_types(&self) -> Vec<String> {
        self.meta
            .get("paratag.entity_types")
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }
}

use std::collections::BTreeMap;

/// Columns of the output table read into `Pred`'s own fields (`lang` and
/// pass-through columns go to `fields`).
fn is_core(name: &str) -> bool {
    name != "lang" && crate::input::RESERVED.contains(&name)
}

/// Reads a paratag output table.
pub fn read_predictions(path: &Path) -> Result<Predictions> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let bad = |m: String| Error::input(path.display().to_string(), m);
    let mut r = ParquetReader::new(file);
    let meta = r
        .get_metadata()
        .map_err(|e| bad(format!("not a Parquet file: {e}")))?
        .key_value_metadata
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|k| (k.key, k.value.unwrap_or_default()))
        .collect();
    let df = r.finish().map_err(|e| bad(e.to_string()))?;
    predictions_from(&df, meta).map_err(|e| match e {
        Error::Config(m) => bad(m),
        e => e,
    })
}

/// The rows of a paratag output table (also used on a table just tagged).
pub fn predictions_from(df: &DataFrame, meta: BTreeMap<String, String>) -> Result<Predictions> {
    let need = |name: &str| {
        df.column(name).map_err(|_| {
            Error::Config(format!(
                "column {name:?} is missing: is this a `paratag tag` output?"
            ))
        })
    };
    let strs = |name: &str| -> Result<Vec<Option<String>>> {
        let c = need(name)?.cast(&DataType::String)?;
        Ok(c.str()?.iter().map(|s| s.map(str::to_string)).collect())
    };
    let f32s = |c: &Column| -> Result<Vec<Option<f32>>> {
        Ok(c.cast(&DataType::Float32)?.f32()?.iter().collect())
    };
    let n = df.height();
    let ids = strs("article_id")?;
    let paras: Vec<Option<u32>> = need("paragraph")?
        .cast(&DataType::UInt32)?
        .u32()?
        .iter()
        .collect();
    let texts = strs("text")?;
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let targets: Vec<String> = names
        .iter()
        .filter_map(|c| c.strip_prefix("stance_"))
        .filter(|t| names.iter().any(|c| *c == format!("stance_{t}_score")))
        .map(str::to_string)
        .collect();
    let mut rows: Vec<Pred> = (0..n)
        .map(|i| Pred {
            article_id: ids[i].clone().unwrap_or_default(),
            paragraph: paras[i].unwrap_or(0),
            text: texts[i].clone().unwrap_or_default(),
            ..Default::default()
        })
        .collect();
    if names.iter().any(|c| c == "topic") {
        let topic = strs("topic")?;
        let score = f32s(need("topic_score")?)?;
        let scores = label_scores(need("topic_scores")?)?;
        for (i, r) in rows.iter_mut().enumerate() {
            r.topic = topic[i].clone();
            r.topic_score = score[i];
            r.topic_scores = scores[i].clone();
        }
    }
    for t in &targets {
        let label = strs(&format!("stance_{t}"))?;
        let col = |s: &str| -> Result<Vec<Option<f32>>> {
            match df.column(&format!("stance_{t}_{s}")) {
                Ok(c) => f32s(c),
                Err(_) => Ok(vec![None; n]),
            }
        };
        let (score, favor, against) = (col("score")?, col("favor")?, col("against")?);
        for (i, r) in rows.iter_mut().enumerate() {
            r.stances.insert(
                t.clone(),
                PredStance {
                    label: label[i].clone(),
                    score: score[i],
                    favor: favor[i],
                    against: against[i],
                },
            );
        }
    }
    if let Ok(c) = df.column("entities") {
        for (i, ents) in entity_lists(c)?.into_iter().enumerate() {
            rows[i].entities = ents;
        }
    }
    let stance_cols: Vec<String> = targets
        .iter()
        .flat_map(|t| ["", "_score", "_favor", "_against"].map(|s| format!("stance_{t}{s}")))
        .collect();
    let field_names: Vec<String> = names
        .iter()
        .filter(|c| !is_core(c) && !stance_cols.contains(c))
        .cloned()
        .collect();
    for f in &field_names {
        // Nested pass-through columns have no text form; they stay out of `fields`.
        let Ok(vals) = strs(f) else { continue };
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
                span: crate::formats::Span {
                    start: start[k],
                    end: end[k],
                    label,
                },
                score,
            })
            .collect())
    })
}
