//! The output table: one row per kept paragraph, written to Parquet through
//! polars with provenance in the file's key-value metadata.
//!
//! The file is written to a temporary name in the target folder and renamed on
//! success, so a failed run never leaves a half-written table behind.

use crate::codebook::Codebook;
use crate::error::{Error, Result};
use crate::pipeline::Tagged;
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
        self.tmp
            .persist(&self.target)
            .map_err(|e| err(e.error.to_string()))?;
        Ok(())
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
            let get = |r: &crate::pipeline::Row| r.stances.get(i).copied().unwrap_or((None, None));
            push(Series::new(
                format!("stance_{}", s.id).into(),
                rows.iter().map(|r| get(r).0).collect::<Vec<_>>(),
            ));
            push(Series::new(
                format!("stance_{}_score", s.id).into(),
                rows.iter().map(|r| get(r).1).collect::<Vec<_>>(),
            ));
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
