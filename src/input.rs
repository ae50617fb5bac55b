//! Reading articles: JSONL, CSV, Parquet, folders of .txt/.md/.html, and JSONL
//! on stdin. Every column other than id and text passes through to the output.
//!
//! Bad rows are errors naming `file:line`; with `skip_bad_rows` they are
//! skipped and listed in the run summary instead, never dropped silently.

use crate::error::{Error, Result};
use crate::hash::{sha256_bytes, sha256_file};
use polars::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
    /// Tab-separated, no quoting (as SIB-200 and many corpora ship).
    Tsv,
    Parquet,
    Txt,
    Html,
}

#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub id_col: String,
    pub text_col: String,
    pub format: Option<Format>,
    pub skip_bad_rows: bool,
    pub dedupe: bool,
    pub limit: Option<usize>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            id_col: "id".into(),
            text_col: "text".into(),
            format: None,
            skip_bad_rows: false,
            dedupe: false,
            limit: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Article {
    pub id: String,
    pub text: String,
    /// `file:line` (or `file`), for error messages.
    pub origin: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct InputFile {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug)]
pub struct Corpus {
    pub articles: Vec<Article>,
    /// One row per article, aligned with `articles`.
    pub passthrough: DataFrame,
    pub inputs: Vec<InputFile>,
    /// `file:line: reason` for every row skipped under `--skip-bad-rows`.
    pub skipped_rows: Vec<String>,
    /// Articles dropped by `--dedupe`.
    pub deduped: usize,
}

/// The output table's fixed columns (besides `stance_*`), which a
/// pass-through column may not take.
pub const RESERVED: &[&str] = &[
    "article_id",
    "paragraph",
    "start",
    "end",
    "text",
    "lang",
    "lang_score",
    "topic",
    "topic_score",
    "topic_scores",
    "entities",
    "truncated_windows",
];

/// One file's rows: articles plus pass-through columns of the same length.
struct Rows {
    articles: Vec<Article>,
    columns: Vec<Series>,
}

pub fn read_inputs(inputs: &[PathBuf], opts: &ReadOptions) -> Result<Corpus> {
    let mut parts = Vec::new();
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for input in inputs {
        if input.as_os_str() == "-" {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Error::io("<stdin>", e))?;
            files.push(InputFile {
                path: "-".into(),
                sha256: sha256_bytes(&buf),
            });
            parts.push(read_jsonl(&buf[..], "<stdin>", opts, &mut skipped)?);
            continue;
        }
        let meta = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
        if meta.is_dir() {
            let (rows, mut fs) = read_folder(input)?;
            files.append(&mut fs);
            parts.push(rows);
            continue;
        }
        files.push(InputFile {
            path: input.display().to_string(),
            sha256: sha256_file(input)?,
        });
        let format = match opts.format {
            Some(f) => f,
            None => format_of(input)?,
        };
        let name = input.display().to_string();
        let rows = match format {
            Format::Jsonl => {
                let f = std::fs::File::open(input).map_err(|e| Error::io(input, e))?;
                read_jsonl(BufReader::new(f), &name, opts, &mut skipped)?
            }
            Format::Csv => read_csv(input, b',', opts, &mut skipped)?,
            Format::Tsv => read_csv(input, b'\t', opts, &mut skipped)?,
            Format::Parquet => read_parquet(input, opts, &mut skipped)?,
            Format::Txt | Format::Html => {
                let id = input
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| name.clone());
                Rows {
                    articles: vec![read_document(input, id, format == Format::Html)?],
                    columns: vec![],
                }
            }
        };
        parts.push(rows);
    }
    merge(parts, files, skipped, opts)
}

fn format_of(path: &Path) -> Result<Format> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    Ok(match ext.as_str() {
        "jsonl" | "ndjson" | "json" => Format::Jsonl,
        "csv" => Format::Csv,
        "tsv" | "tab" => Format::Tsv,
        "parquet" | "pq" => Format::Parquet,
        "txt" | "md" => Format::Txt,
        "html" | "htm" => Format::Html,
        _ => {
            return Err(Error::input(
                path.display().to_string(),
                format!(
                "unknown input extension `.{ext}`: use --input-format jsonl|csv|parquet|txt|html"
            ),
            ))
        }
    })
}

fn read_jsonl<R: BufRead>(
    mut r: R,
    name: &str,
    opts: &ReadOptions,
    skipped: &mut Vec<String>,
) -> Result<Rows> {
    let mut articles = Vec::new();
    let mut extra: Vec<(String, Vec<Option<Value>>)> = Vec::new();
    let mut extra_idx: HashMap<String, usize> = HashMap::new();
    let mut buf = Vec::new();
    let mut line = 0usize;
    loop {
        buf.clear();
        let n = r
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(name, e))?;
        if n == 0 {
            break;
        }
        line += 1;
        let loc = format!("{name}:{line}");
        let parsed = parse_json_row(&buf, opts);
        let (article, rest) = match parsed {
            Ok(None) => continue, // blank line
            Ok(Some(x)) => x,
            Err(msg) if opts.skip_bad_rows => {
                skipped.push(format!("{loc}: {msg}"));
                continue;
            }
            Err(msg) => return Err(Error::input(loc, msg)),
        };
        let row = articles.len();
        for (k, v) in rest {
            let i = *extra_idx.entry(k.clone()).or_insert_with(|| {
                extra.push((k.clone(), vec![None; row]));
                extra.len() - 1
            });
            extra[i].1.push(Some(v));
        }
        for col in extra.iter_mut() {
            col.1.resize(row + 1, None);
        }
        articles.push(Article {
            id: article.0,
            text: article.1,
            origin: loc,
        });
    }
    let columns = extra
        .into_iter()
        .map(|(name, vals)| json_series(&name, vals))
        .collect();
    Ok(Rows { articles, columns })
}

type JsonRow = ((String, String), serde_json::Map<String, Value>);

fn parse_json_row(buf: &[u8], opts: &ReadOptions) -> std::result::Result<Option<JsonRow>, String> {
    let s = std::str::from_utf8(buf)
        .map_err(|e| format!("invalid UTF-8 at byte {} of the line", e.valid_up_to()))?;
    let s = s.trim_start_matches('\u{feff}');
    if s.trim().is_empty() {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(s).map_err(|e| format!("malformed JSON: {e}"))?;
    let Value::Object(mut map) = v else {
        return Err("a JSONL row must be a JSON object".into());
    };
    let id = match map.shift_remove(&opts.id_col) {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(format!(
                "id column `{}` must be a string or number, got {other}",
                opts.id_col
            ))
        }
        None => return Err(format!("missing id column `{}`", opts.id_col)),
    };
    let text = match map.shift_remove(&opts.text_col) {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => return Err(format!("missing text column `{}`", opts.text_col)),
        Some(other) => {
            return Err(format!(
                "text column `{}` must be a string, got {}",
                opts.text_col,
                type_name(&other)
            ))
        }
    };
    Ok(Some(((id, text), map)))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Typed column from JSON values: bool, i64, f64 or string; anything mixed or
/// nested becomes its JSON text.
fn json_series(name: &str, vals: Vec<Option<Value>>) -> Series {
    let present = || vals.iter().flatten().filter(|v| !v.is_null());
    let name: PlSmallStr = name.into();
    if present().all(|v| v.is_boolean()) {
        let v: Vec<Option<bool>> = vals
            .iter()
            .map(|v| v.as_ref().and_then(|v| v.as_bool()))
            .collect();
        return Series::new(name, v);
    }
    if present().all(|v| v.is_i64()) {
        let v: Vec<Option<i64>> = vals
            .iter()
            .map(|v| v.as_ref().and_then(|v| v.as_i64()))
            .collect();
        return Series::new(name, v);
    }
    if present().all(|v| v.is_number()) {
        let v: Vec<Option<f64>> = vals
            .iter()
            .map(|v| v.as_ref().and_then(|v| v.as_f64()))
            .collect();
        return Series::new(name, v);
    }
    let v: Vec<Option<String>> = vals
        .iter()
        .map(|v| match v {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        })
        .collect();
    Series::new(name, v)
}

fn read_csv(
    path: &Path,
    delimiter: u8,
    opts: &ReadOptions,
    skipped: &mut Vec<String>,
) -> Result<Rows> {
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .delimiter(delimiter)
        .quoting(delimiter == b',')
        .from_reader(BufReader::new(f));
    let headers = rdr
        .byte_headers()
        .map_err(|e| Error::input(format!("{name}:1"), format!("malformed CSV header: {e}")))?
        .clone();
    let headers: Vec<String> = headers
        .iter()
        .map(|h| {
            std::str::from_utf8(h)
                .map(|s| s.trim_start_matches('\u{feff}').to_string())
                .map_err(|_| Error::input(format!("{name}:1"), "invalid UTF-8 in the header"))
        })
        .collect::<Result<_>>()?;
    let find = |col: &str| {
        headers.iter().position(|h| h == col).ok_or_else(|| {
            Error::input(
                name.clone(),
                format!("missing column `{col}` (columns: {})", headers.join(", ")),
            )
        })
    };
    let id_i = find(&opts.id_col)?;
    let text_i = find(&opts.text_col)?;
    let mut articles = Vec::new();
    let mut extra: Vec<Vec<Option<String>>> = vec![Vec::new(); headers.len()];
    let mut rec = csv::ByteRecord::new();
    loop {
        let line = rdr.position().line();
        let res = rdr.read_byte_record(&mut rec);
        let loc = format!(
            "{name}:{}",
            rec.position().map(|p| p.line()).unwrap_or(line)
        );
        let fields: std::result::Result<Vec<String>, String> = match res {
            Ok(false) => break,
            Ok(true) => rec
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    String::from_utf8(f.to_vec())
                        .map_err(|_| format!("invalid UTF-8 in column `{}`", headers[i]))
                })
                .collect(),
            Err(e) => Err(format!("malformed CSV row: {e}")),
        };
        let fields = match fields {
            Ok(f) => f,
            Err(msg) if opts.skip_bad_rows => {
                skipped.push(format!("{loc}: {msg}"));
                continue;
            }
            Err(msg) => return Err(Error::input(loc, msg)),
        };
        for (i, f) in fields.iter().enumerate() {
            if i != id_i && i != text_i {
                extra[i].push(Some(f.clone()));
            }
        }
        articles.push(Article {
            id: fields[id_i].clone(),
            text: fields[text_i].clone(),
            origin: loc,
        });
    }
    let columns = headers
        .iter()
        .zip(extra)
        .enumerate()
        .filter(|(i, _)| *i != id_i && *i != text_i)
        .map(|(_, (h, v))| Series::new(h.as_str().into(), v))
        .collect();
    Ok(Rows { articles, columns })
}

fn read_parquet(path: &Path, opts: &ReadOptions, skipped: &mut Vec<String>) -> Result<Rows> {
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let df = ParquetReader::new(f)
        .finish()
        .map_err(|e| Error::input(name.clone(), format!("cannot read Parquet: {e}")))?;
    let col = |c: &str| {
        df.column(c).map_err(|_| {
            let cols: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|s| s.to_string())
                .collect();
            Error::input(
                name.clone(),
                format!("missing column `{c}` (columns: {})", cols.join(", ")),
            )
        })
    };
    let ids = col(&opts.id_col)?.cast(&DataType::String)?;
    let texts = col(&opts.text_col)?;
    if texts.dtype() != &DataType::String {
        return Err(Error::input(
            name,
            format!(
                "text column `{}` has type {}, expected string",
                opts.text_col,
                texts.dtype()
            ),
        ));
    }
    let ids = ids.str()?.clone();
    let texts = texts.str()?.clone();
    let mut keep: Vec<IdxSize> = Vec::new();
    let mut articles = Vec::new();
    for (row, (id, text)) in ids.iter().zip(texts.iter()).enumerate() {
        let loc = format!("{name}: row {}", row + 1);
        let r = match (id, text) {
            (None, _) => Err(format!("null id in column `{}`", opts.id_col)),
            (_, None) => Err(format!("null text in column `{}`", opts.text_col)),
            (Some(i), Some(t)) => Ok((i.to_string(), t.to_string())),
        };
        match r {
            Ok((id, text)) => {
                keep.push(row as IdxSize);
                articles.push(Article {
                    id,
                    text,
                    origin: loc,
                });
            }
            Err(msg) if opts.skip_bad_rows => skipped.push(format!("{loc}: {msg}")),
            Err(msg) => return Err(Error::input(loc, msg)),
        }
    }
    let rest = df.drop_many([opts.id_col.as_str(), opts.text_col.as_str()]);
    let rest = rest.take(&IdxCa::from_vec("idx".into(), keep))?;
    let columns = rest
        .columns()
        .iter()
        .map(|c| c.as_materialized_series().clone())
        .collect();
    Ok(Rows { articles, columns })
}

fn read_folder(dir: &Path) -> Result<(Rows, Vec<InputFile>)> {
    let mut articles = Vec::new();
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = Vec::new();
    for e in walkdir::WalkDir::new(dir).follow_links(true) {
        let e = e.map_err(|e| {
            let p = e
                .path()
                .map(|p| p.to_path_buf())
                .unwrap_or_else(|| dir.into());
            Error::io(p, e.into())
        })?;
        if e.file_type().is_file() {
            entries.push(e.into_path());
        }
    }
    entries.sort();
    for path in entries {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let html = match ext.as_str() {
            "txt" | "md" => false,
            "html" | "htm" => true,
            _ => continue,
        };
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        files.push(InputFile {
            path: path.display().to_string(),
            sha256: sha256_file(&path)?,
        });
        articles.push(read_document(&path, rel, html)?);
    }
    Ok((
        Rows {
            articles,
            columns: vec![],
        },
        files,
    ))
}

fn read_document(path: &Path, id: String, html: bool) -> Result<Article> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let name = path.display().to_string();
    let text = match std::str::from_utf8(&bytes) {
        Ok(s) => s.to_string(),
        Err(e) => {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            return Err(Error::input(format!("{name}:{line}"), "invalid UTF-8"));
        }
    };
    let text = if html { html_to_text(&text) } else { text };
    Ok(Article {
        id,
        text,
        origin: name,
    })
}

/// Reduces HTML to text, one block element per line; scripts and styles go.
pub fn html_to_text(html: &str) -> String {
    let config = html2text::config::plain_no_decorate();
    config
        .string_from_read(html.as_bytes(), usize::MAX / 4)
        .unwrap_or_default()
}

fn merge(
    parts: Vec<Rows>,
    inputs: Vec<InputFile>,
    skipped_rows: Vec<String>,
    opts: &ReadOptions,
) -> Result<Corpus> {
    // Union of pass-through columns, first-seen order; types that differ across
    // files fall back to string.
    let mut order: Vec<String> = Vec::new();
    let mut dtypes: HashMap<String, DataType> = HashMap::new();
    for p in &parts {
        for s in &p.columns {
            let n = s.name().to_string();
            match dtypes.get(&n) {
                None => {
                    order.push(n.clone());
                    dtypes.insert(n, s.dtype().clone());
                }
                Some(d) if d != s.dtype() => {
                    dtypes.insert(n, DataType::String);
                }
                _ => {}
            }
        }
    }
    let total: usize = parts.iter().map(|p| p.articles.len()).sum();
    let mut columns: Vec<Series> = order
        .iter()
        .map(|n| Series::new_empty(n.as_str().into(), &dtypes[n]))
        .collect();
    let mut articles = Vec::with_capacity(total);
    for p in parts {
        let len = p.articles.len();
        for (i, name) in order.iter().enumerate() {
            let dt = &dtypes[name];
            let s = match p.columns.iter().find(|s| s.name().as_str() == name) {
                Some(s) => s.cast(dt)?,
                None => Series::full_null(name.as_str().into(), len, dt),
            };
            columns[i].append(&s)?;
        }
        articles.extend(p.articles);
    }

    // Duplicates and --limit, then the pass-through rows that remain.
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut keep: Vec<IdxSize> = Vec::new();
    let mut kept = Vec::new();
    let mut deduped = 0;
    for (i, a) in articles.into_iter().enumerate() {
        if opts.limit.is_some_and(|l| kept.len() >= l) {
            break;
        }
        if let Some(first) = seen.get(&a.id) {
            if opts.dedupe {
                deduped += 1;
                continue;
            }
            return Err(Error::input(
                a.origin.clone(),
                format!("duplicate article id `{}` (first seen at {first}); use --dedupe to keep the first", a.id),
            ));
        }
        seen.insert(a.id.clone(), a.origin.clone());
        keep.push(i as IdxSize);
        kept.push(a);
    }
    // A pass-through column named like an output column gets an `input_`
    // prefix (repeated until the name is free) rather than being lost.
    let mut taken: std::collections::HashSet<String> = order.iter().cloned().collect();
    let cols: Vec<Column> = columns
        .into_iter()
        .map(|s| {
            let mut name = s.name().to_string();
            if RESERVED.contains(&name.as_str()) || name.starts_with("stance_") {
                taken.remove(&name);
                while taken.contains(&name)
                    || RESERVED.contains(&name.as_str())
                    || name.starts_with("stance_")
                {
                    name = format!("input_{name}");
                }
                taken.insert(name.clone());
            }
            s.with_name(name.into()).into_column()
        })
        .collect();
    let df = DataFrame::new(total, cols)?;
    let passthrough = df.take(&IdxCa::from_vec("idx".into(), keep))?;
    Ok(Corpus {
        articles: kept,
        passthrough,
        inputs,
        skipped_rows,
        deduped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_typed_passthrough_and_errors() {
        let data = b"{\"id\": 1, \"text\": \"a\", \"n\": 3, \"src\": \"x\"}\n\n{\"id\": \"b\", \"text\": \"b\", \"n\": 4}\n";
        let mut sk = vec![];
        let rows = read_jsonl(&data[..], "f.jsonl", &ReadOptions::default(), &mut sk).unwrap();
        assert_eq!(rows.articles.len(), 2);
        assert_eq!(rows.articles[0].id, "1");
        assert_eq!(rows.articles[1].origin, "f.jsonl:3");
        assert_eq!(rows.columns[0].dtype(), &DataType::Int64);
        assert_eq!(rows.columns[1].null_count(), 1);

        let bad = b"{\"id\": 1, \"text\": \"a\"}\n{\"id\": 2\n";
        let e = read_jsonl(&bad[..], "f.jsonl", &ReadOptions::default(), &mut sk)
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("f.jsonl:2: malformed JSON"), "{e}");
        let opts = ReadOptions {
            skip_bad_rows: true,
            ..Default::default()
        };
        let rows = read_jsonl(&bad[..], "f.jsonl", &opts, &mut sk).unwrap();
        assert_eq!(rows.articles.len(), 1);
        assert_eq!(sk.len(), 1);
    }
}
