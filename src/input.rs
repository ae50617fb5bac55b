//! Reading articles, as a stream: JSONL and CSV/TSV line by line, Parquet by
//! row group, folders of .txt/.md/.html file by file (in name order), and
//! JSONL on stdin (spooled to a temporary file, because a job reads its input
//! twice: once to scan it, once to tag it). Nothing here holds more than one
//! row group or one document at a time.
//!
//! Every column other than id and text passes through to the output, typed
//! per file as before (JSONL: bool, integer, float, else text), and unified
//! across files by [`PassSchema`] (types that differ become text).
//!
//! A bad row is yielded as [`Item::Bad`] naming `file:line`; the scan either
//! stops on it or, with `--skip-bad-rows`, lists it. Rows are never dropped
//! silently.

use crate::error::{Error, Result};
use crate::extract::host;
use crate::hash::sha256_file;
use crate::text::cut;
use polars::prelude::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jsonl,
    Csv,
    /// Tab-separated, quoted like CSV (`--no-quote` for files with bare `"`).
    Tsv,
    Parquet,
    Txt,
    Html,
}

impl crate::choice::Choice for Format {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (Format::Jsonl, "jsonl", ""),
        (Format::Csv, "csv", ""),
        (
            Format::Tsv,
            "tsv",
            "Tab-separated, quoted like CSV (`--no-quote` for files with bare `\"`)",
        ),
        (Format::Parquet, "parquet", ""),
        (Format::Txt, "txt", ""),
        (Format::Html, "html", ""),
    ];
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReadOptions {
    pub id_col: String,
    pub text_col: String,
    pub format: Option<Format>,
    pub skip_bad_rows: bool,
    pub dedupe: bool,
    pub limit: Option<usize>,
    /// Delimiter, quoting, header and encoding of CSV/TSV inputs.
    pub table: crate::table::TableOptions,
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
            table: Default::default(),
        }
    }
}

/// The output table's fixed columns besides the tasks' (see
/// [`crate::task::Task::columns`]), which a pass-through column may not take.
pub const RESERVED: &[&str] = &[
    "article_id",
    "paragraph",
    "start",
    "end",
    "text",
    "lang",
    "lang_score",
    "truncated_windows",
    "dup_of_article_id",
    "dup_of_paragraph",
];

/// One input file or folder, its provenance in the output metadata.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InputFile {
    pub path: String,
    /// A file's sha256; for a folder, the sha256 of its `relative-path
    /// sha256` lines in reading order.
    pub sha256: String,
    /// Documents read from a folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<usize>,
}

#[derive(Debug, Clone)]
enum Kind {
    Table(Format),
    Document {
        html: bool,
    },
    Folder,
    /// Texts held in memory ([`Inputs::texts`]).
    Texts(Arc<Vec<String>>),
}

/// The article id [`Inputs::texts`] gives the text at `index`.
pub fn text_id(index: usize) -> String {
    format!("g{index}")
}

/// The text index of an article id [`Inputs::texts`] gave.
pub fn text_index(id: &str) -> Option<usize> {
    id.strip_prefix('g')?.parse().ok()
}

#[derive(Debug, Clone)]
struct Source {
    path: PathBuf,
    /// What error messages and the metadata call it (`<stdin>` for `-`).
    name: String,
    kind: Kind,
}

/// What error messages and the metadata call texts tagged from memory.
const TEXTS: &str = "<texts>";

/// The job's inputs, resolved: formats known, stdin spooled.
pub struct Inputs {
    sources: Vec<Source>,
    opts: ReadOptions,
    _spool: Option<(tempfile::NamedTempFile, crate::atomic::Tracked)>,
    pages: Arc<PageCache>,
}

/// Extracted HTML pages kept between the passes over the inputs (the scan,
/// then the tagging), so that each page is parsed once: up to
/// [`PAGE_CACHE_BYTES`] of extracted text; pages past that are extracted
/// again on the next pass.
#[derive(Debug, Default)]
struct PageCache {
    pages: std::sync::Mutex<std::collections::HashMap<PathBuf, Record>>,
    bytes: std::sync::atomic::AtomicUsize,
}

/// The bound on the extracted text [`PageCache`] holds.
pub const PAGE_CACHE_BYTES: usize = 256 << 20;

impl PageCache {
    fn get(&self, path: &Path) -> Option<Record> {
        self.pages.lock().ok()?.get(path).cloned()
    }
    fn put(&self, path: &Path, r: &Record) {
        use std::sync::atomic::Ordering;
        let size = r.text.len() + r.id.len() + r.origin.len() + 256;
        if self.bytes.fetch_add(size, Ordering::Relaxed) + size > PAGE_CACHE_BYTES {
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            return;
        }
        if let Ok(mut m) = self.pages.lock() {
            m.insert(path.to_path_buf(), r.clone());
        }
    }
}

/// Pass-through values of one row, as its reader has them.
#[derive(Debug, Clone)]
pub enum Extra {
    None,
    Json(serde_json::Map<String, Value>),
    /// CSV cells, aligned with the column names.
    Cells(Arc<Vec<String>>, Vec<String>),
    /// Row `usize` of a Parquet row group (id and text columns dropped).
    Frame(Arc<DataFrame>, usize),
    /// An HTML page's metadata.
    Page(Box<PageInfo>),
}

/// One row read from an input.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub text: String,
    /// `file:line` (or `file: row N`, or a document's path).
    pub origin: String,
    /// Index of the input it came from.
    pub source: usize,
    pub extra: Extra,
    /// An HTML page's extracted article: paragraphs separated by blank
    /// lines, to be split there only, not segmented line by line.
    pub extracted: bool,
}

impl Record {
    /// The record as segmentation sees it.
    pub fn segment_source(&self) -> crate::segment::Source<'_> {
        crate::segment::Source {
            text: &self.text,
            site: self.site(),
            extracted: self.extracted,
        }
    }

    /// The site the record comes from, for site-level boilerplate: a page's
    /// canonical URL host, else its folder; a row's `url` field host.
    pub fn site(&self) -> Option<String> {
        match &self.extra {
            Extra::Page(p) => p.site_key.clone(),
            Extra::Json(m) => m.get("url").and_then(Value::as_str).and_then(host),
            Extra::Cells(names, cells) => names
                .iter()
                .position(|n| n == "url")
                .and_then(|i| host(&cells[i])),
            Extra::Frame(df, row) => df
                .column("url")
                .ok()
                .and_then(|c| c.str().ok()?.get(*row).and_then(host)),
            Extra::None => None,
        }
    }
}

/// The pass-through columns an HTML page gives, all text.
pub const PAGE_COLUMNS: [&str; 6] = ["title", "published", "author", "site", "url", "encoding"];

/// What an HTML page says about itself, and where it comes from.
#[derive(Debug, Clone, Default)]
pub struct PageInfo {
    /// In [`PAGE_COLUMNS`] order.
    pub values: [Option<String>; 6],
    /// Canonical URL host, else the page's folder.
    pub site_key: Option<String>,
}

/// What a reader yields: a record, or a row it could not read.
#[derive(Debug, Clone)]
pub enum Item {
    Record(Record),
    Bad { location: String, message: String },
}

impl Inputs {
    pub fn open(inputs: &[PathBuf], opts: &ReadOptions) -> Result<Inputs> {
        let mut sources = Vec::new();
        let mut spool = None;
        for input in inputs {
            if input.as_os_str() == "-" {
                if spool.is_some() {
                    return Err(Error::Config("`-` (stdin) given twice".into()));
                }
                // Removed on Ctrl-C too: it holds a copy of the input.
                let (mut tmp, tracked) =
                    crate::atomic::tracked(tempfile::NamedTempFile::new, |t| {
                        t.path().to_path_buf()
                    })
                    .map_err(|e| Error::io("<stdin>", e))?;
                std::io::copy(&mut std::io::stdin().lock(), tmp.as_file_mut())
                    .map_err(|e| Error::io("<stdin>", e))?;
                sources.push(Source {
                    path: tmp.path().to_path_buf(),
                    name: "<stdin>".into(),
                    kind: Kind::Table(Format::Jsonl),
                });
                spool = Some((tmp, tracked));
                continue;
            }
            let meta = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
            let name = input.display().to_string();
            let kind = if meta.is_dir() {
                Kind::Folder
            } else {
                match opts.format.map_or_else(|| format_of(input), Ok)? {
                    Format::Txt => Kind::Document { html: false },
                    Format::Html => Kind::Document { html: true },
                    f => Kind::Table(f),
                }
            };
            sources.push(Source {
                path: input.clone(),
                name,
                kind,
            });
        }
        Ok(Inputs {
            sources,
            opts: opts.clone(),
            _spool: spool,
            pages: Arc::default(),
        })
    }

    /// Texts held in memory, each one article (ids from [`text_id`]), as
    /// `eval`, `calibrate` and `train` tag gold texts: nothing is written.
    pub fn texts(texts: Arc<Vec<String>>) -> Inputs {
        Inputs {
            sources: vec![Source {
                path: PathBuf::new(),
                name: TEXTS.into(),
                kind: Kind::Texts(texts),
            }],
            opts: ReadOptions::default(),
            _spool: None,
            pages: Arc::default(),
        }
    }

    pub fn options(&self) -> &ReadOptions {
        &self.opts
    }

    /// A note per CSV/TSV input that is not plain UTF-8 (its encoding).
    pub fn notes(&self) -> Result<Vec<String>> {
        let mut out = vec![];
        for s in &self.sources {
            if let Kind::Table(f @ (Format::Csv | Format::Tsv)) = s.kind {
                let t = crate::table::Table::open(&s.path, &self.opts.table, f == Format::Tsv)?;
                if let Some(n) = t.encoding_note() {
                    out.push(format!("{}: {n}", s.name));
                }
            }
        }
        Ok(out)
    }

    /// Every row of every input, in order.
    pub fn records(&self) -> impl Iterator<Item = Result<Item>> + '_ {
        self.sources.iter().enumerate().flat_map(
            move |(i, s)| -> Box<dyn Iterator<Item = Result<Item>>> {
                match open_source(i, s, &self.opts, &self.pages) {
                    Ok(it) => it,
                    Err(e) => Box::new(std::iter::once(Err(e))),
                }
            },
        )
    }

    /// The sha256 of every input, for the metadata and the resume check.
    pub fn fingerprints(&self) -> Result<Vec<InputFile>> {
        use rayon::prelude::*;
        self.sources
            .par_iter()
            .map(|s| match &s.kind {
                Kind::Texts(texts) => Ok(InputFile {
                    path: s.name.clone(),
                    // Length-prefixed, so no two lists of texts hash alike.
                    sha256: crate::hash::sha256_bytes(
                        texts
                            .iter()
                            .map(|t| format!("{}:{t}", t.len()))
                            .collect::<String>()
                            .as_bytes(),
                    ),
                    files: None,
                }),
                Kind::Folder => {
                    let mut lines = String::new();
                    let mut files = 0;
                    for (path, rel) in folder_documents(s.path.clone()) {
                        let path = path?;
                        lines.push_str(&format!("{rel} {}\n", sha256_file(&path)?));
                        files += 1;
                    }
                    Ok(InputFile {
                        path: s.name.clone(),
                        sha256: crate::hash::sha256_bytes(lines.as_bytes()),
                        files: Some(files),
                    })
                }
                _ => Ok(InputFile {
                    path: if s.name == "<stdin>" {
                        "-".into()
                    } else {
                        s.name.clone()
                    },
                    sha256: sha256_file(&s.path)?,
                    files: None,
                }),
            })
            .collect()
    }
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

fn open_source(
    i: usize,
    s: &Source,
    opts: &ReadOptions,
    pages: &Arc<PageCache>,
) -> Result<Box<dyn Iterator<Item = Result<Item>>>> {
    let open = || std::fs::File::open(&s.path).map_err(|e| Error::io(&s.name, e));
    Ok(match &s.kind {
        Kind::Texts(texts) => {
            let texts = texts.clone();
            Box::new((0..texts.len()).map(move |n| {
                Ok(Item::Record(Record {
                    id: text_id(n),
                    text: texts[n].clone(),
                    origin: format!("{TEXTS}: text {}", n + 1),
                    source: i,
                    extra: Extra::None,
                    extracted: false,
                }))
            }))
        }
        Kind::Table(Format::Jsonl) => Box::new(Jsonl {
            reader: BufReader::new(open()?),
            name: s.name.clone(),
            source: i,
            line: 0,
            opts: opts.clone(),
            buf: Vec::new(),
        }),
        Kind::Table(f @ (Format::Csv | Format::Tsv)) => {
            Box::new(csv_rows(i, s, *f == Format::Tsv, opts)?)
        }
        Kind::Table(Format::Parquet) => Box::new(ParquetRows::open(i, s, opts)?),
        Kind::Table(_) => unreachable!("documents are not tables"),
        Kind::Document { html } => {
            let id = s
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| s.name.clone());
            let folder = s
                .path
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned());
            let item = read_document(&s.path, id, *html, i, folder, pages).map(Item::Record);
            Box::new(std::iter::once(item))
        }
        Kind::Folder => {
            let top = s.path.file_name().map(|n| n.to_string_lossy().into_owned());
            let pages = pages.clone();
            let read = move |(path, rel): (Result<PathBuf>, String)| {
                let path = path?;
                let html = matches!(ext_of(&path).as_str(), "html" | "htm");
                let folder = match rel.rsplit_once('/') {
                    Some((dir, _)) => Some(dir.to_string()),
                    None => top.clone(),
                };
                read_document(&path, rel, html, i, folder, &pages).map(Item::Record)
            };
            // Pages are parsed as they are read; a chunk at a time in
            // parallel, in order.
            let mut docs = folder_documents(s.path.clone());
            Box::new(
                std::iter::from_fn(move || {
                    let chunk: Vec<_> = docs.by_ref().take(DOCUMENT_CHUNK).collect();
                    (!chunk.is_empty()).then(|| {
                        use rayon::prelude::*;
                        chunk.into_par_iter().map(&read).collect::<Vec<_>>()
                    })
                })
                .flatten(),
            )
        }
    })
}

// ---------------------------------------------------------------- JSONL ----

struct Jsonl {
    reader: BufReader<std::fs::File>,
    name: String,
    source: usize,
    line: usize,
    opts: ReadOptions,
    buf: Vec<u8>,
}

impl Iterator for Jsonl {
    type Item = Result<Item>;
    fn next(&mut self) -> Option<Result<Item>> {
        loop {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Err(e) => return Some(Err(Error::io(&self.name, e))),
                Ok(0) => return None,
                Ok(_) => {}
            }
            self.line += 1;
            let location = format!("{}:{}", self.name, self.line);
            return Some(Ok(match parse_json_row(&self.buf, &self.opts) {
                Ok(None) => continue, // blank line
                Ok(Some(((id, text), rest))) => Item::Record(Record {
                    id,
                    text,
                    origin: location,
                    source: self.source,
                    extra: Extra::Json(rest),
                    extracted: false,
                }),
                Err(message) => Item::Bad { location, message },
            }));
        }
    }
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
                "id column `{}` must be a string or number, got {}",
                opts.id_col,
                cut(&other.to_string())
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

// ------------------------------------------------------------------ CSV ----

fn csv_rows(
    source: usize,
    s: &Source,
    tsv: bool,
    opts: &ReadOptions,
) -> Result<impl Iterator<Item = Result<Item>>> {
    let name = s.name.clone();
    let table = crate::table::Table::open(&s.path, &opts.table, tsv)?;
    let headers = table.headers.clone();
    let find = |col: &str, flag: &str| {
        table
            .position(col)
            .ok_or_else(|| table.missing(Path::new(&name), col, &format!("name it with {flag}")))
    };
    let id_i = find(&opts.id_col, "--id-col")?;
    let text_i = find(&opts.text_col, "--text-col")?;
    let mut rdr = table.reader;
    let extra_names: Arc<Vec<String>> = Arc::new(
        headers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != id_i && *i != text_i)
            .map(|(_, h)| h.clone())
            .collect(),
    );
    let mut rec = csv::ByteRecord::new();
    Ok(std::iter::from_fn(move || {
        let line = rdr.position().line();
        let res = rdr.read_byte_record(&mut rec);
        let location = format!(
            "{name}:{}",
            rec.position().map(|p| p.line()).unwrap_or(line)
        );
        let fields: std::result::Result<Vec<String>, String> = match res {
            Ok(false) => return None,
            Ok(true) => rec
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    String::from_utf8(f.to_vec())
                        .map_err(|_| format!("invalid UTF-8 in column `{}`", headers[i]))
                })
                .collect(),
            Err(e) => Err(format!(
                "malformed CSV row: {}",
                crate::table::csv_message(&e)
            )),
        };
        Some(Ok(match fields {
            Err(message) => Item::Bad { location, message },
            Ok(mut fields) => {
                let text = std::mem::take(&mut fields[text_i]);
                let id = std::mem::take(&mut fields[id_i]);
                let cells = fields
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| *i != id_i && *i != text_i)
                    .map(|(_, f)| f)
                    .collect();
                Item::Record(Record {
                    id,
                    text,
                    origin: location,
                    source,
                    extra: Extra::Cells(extra_names.clone(), cells),
                    extracted: false,
                })
            }
        }))
    }))
}

// -------------------------------------------------------------- Parquet ----

/// A Parquet file read one row group at a time.
struct ParquetRows {
    path: PathBuf,
    name: String,
    source: usize,
    opts: ReadOptions,
    meta: Arc<polars_parquet::parquet::metadata::FileMetadata>,
    /// Rows per row group, and the next group to read.
    groups: Vec<usize>,
    next_group: usize,
    offset: usize,
    current: Option<(Arc<DataFrame>, StringChunked, StringChunked)>,
    row: usize,
}

impl ParquetRows {
    fn open(source: usize, s: &Source, opts: &ReadOptions) -> Result<ParquetRows> {
        let f = std::fs::File::open(&s.path).map_err(|e| Error::io(&s.path, e))?;
        let mut r = ParquetReader::new(f);
        let meta = r
            .get_metadata()
            .map_err(|e| Error::input(s.name.clone(), format!("cannot read Parquet: {e}")))?
            .clone();
        let groups = meta.row_groups.iter().map(|g| g.num_rows()).collect();
        Ok(ParquetRows {
            path: s.path.clone(),
            name: s.name.clone(),
            source,
            opts: opts.clone(),
            meta,
            groups,
            next_group: 0,
            offset: 0,
            current: None,
            row: 0,
        })
    }

    /// Reads the next row group: its pass-through columns, ids and texts.
    fn load(&mut self) -> Result<bool> {
        let Some(&n) = self.groups.get(self.next_group) else {
            return Ok(false);
        };
        let bad = |m: String| Error::input(self.name.clone(), m);
        let f = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let mut r = ParquetReader::new(f).with_slice(Some((self.offset, n)));
        r.set_metadata(self.meta.clone());
        let df = r
            .finish()
            .map_err(|e| bad(format!("cannot read Parquet: {e}")))?;
        let col = |c: &str| {
            df.column(c).map_err(|_| {
                let cols: Vec<String> = df
                    .get_column_names()
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                bad(format!(
                    "missing column `{c}` (columns: {})",
                    cut(&cols.join(", "))
                ))
            })
        };
        let ids = col(&self.opts.id_col)?.cast(&DataType::String)?;
        let texts = col(&self.opts.text_col)?;
        if texts.dtype() != &DataType::String {
            return Err(bad(format!(
                "text column `{}` has type {}, expected string",
                self.opts.text_col,
                texts.dtype()
            )));
        }
        let (ids, texts) = (ids.str()?.clone(), texts.str()?.clone());
        let rest = df.drop_many([self.opts.id_col.as_str(), self.opts.text_col.as_str()]);
        self.current = Some((Arc::new(rest), ids, texts));
        self.next_group += 1;
        self.row = 0;
        Ok(true)
    }
}

impl Iterator for ParquetRows {
    type Item = Result<Item>;
    fn next(&mut self) -> Option<Result<Item>> {
        loop {
            if let Some((df, ids, texts)) = &self.current {
                if self.row < df.height() {
                    let (r, global) = (self.row, self.offset + self.row);
                    self.row += 1;
                    let location = format!("{}: row {}", self.name, global + 1);
                    return Some(Ok(match (ids.get(r), texts.get(r)) {
                        (None, _) => Item::Bad {
                            location,
                            message: format!("null id in column `{}`", self.opts.id_col),
                        },
                        (_, None) => Item::Bad {
                            location,
                            message: format!("null text in column `{}`", self.opts.text_col),
                        },
                        (Some(i), Some(t)) => Item::Record(Record {
                            id: i.to_string(),
                            text: t.to_string(),
                            origin: location,
                            source: self.source,
                            extra: Extra::Frame(df.clone(), r),
                            extracted: false,
                        }),
                    }));
                }
                self.offset += df.height();
                self.current = None;
            }
            match self.load() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.next_group = self.groups.len();
                    return Some(Err(e));
                }
            }
        }
    }
}

// ------------------------------------------------------------ documents ----

fn ext_of(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

/// The documents of a folder, recursively, in file-name order (each folder's
/// entries sorted, so the walk never lists the whole tree at once), with
/// their `/`-separated paths relative to the folder (their article ids).
fn folder_documents(dir: PathBuf) -> impl Iterator<Item = (Result<PathBuf>, String)> {
    walkdir::WalkDir::new(dir.clone())
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_map(move |e| {
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    let p = err
                        .path()
                        .map(|p| p.to_path_buf())
                        .unwrap_or_else(|| dir.clone());
                    return Some((Err(Error::io(&p, err.into())), String::new()));
                }
            };
            if !e.file_type().is_file()
                || !matches!(ext_of(e.path()).as_str(), "txt" | "md" | "html" | "htm")
            {
                return None;
            }
            let rel = e
                .path()
                .strip_prefix(&dir)
                .unwrap_or(e.path())
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            Some((Ok(e.into_path()), rel))
        })
}

/// Documents of a folder read in parallel at a time.
const DOCUMENT_CHUNK: usize = 64;

fn read_document(
    path: &Path,
    id: String,
    html: bool,
    source: usize,
    folder: Option<String>,
    pages: &PageCache,
) -> Result<Record> {
    if html {
        if let Some(r) = pages.get(path) {
            return Ok(r);
        }
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::io(path, e))?;
    let name = path.display().to_string();
    if html {
        let r = page_record(&bytes, id, name, source, folder);
        pages.put(path, &r);
        return Ok(r);
    }
    let text = {
        match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => {
                let bytes = e.as_bytes();
                let valid = e.utf8_error().valid_up_to();
                let line = bytes[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
                return Err(Error::input(format!("{name}:{line}"), "invalid UTF-8"));
            }
        }
    };
    Ok(Record {
        id,
        text,
        origin: name,
        source,
        extra: Extra::None,
        extracted: false,
    })
}

/// An HTML page as a record: its article's paragraphs (see
/// [`crate::extract`]) and its metadata and encoding as pass-through
/// columns. The site is the canonical URL's host, else the page's folder.
pub fn page_record(
    bytes: &[u8],
    id: String,
    origin: String,
    source: usize,
    folder: Option<String>,
) -> Record {
    let (html, encoding) = decode_html(bytes);
    let page = crate::extract::extract(&html);
    let m = page.meta;
    let site_key = m.url.as_deref().and_then(host).or(folder);
    Record {
        id,
        text: page.paragraphs.join("\n\n"),
        origin,
        source,
        extra: Extra::Page(Box::new(PageInfo {
            values: [
                m.title,
                m.published,
                m.author,
                m.site,
                m.url,
                Some(encoding.name().to_lowercase()),
            ],
            site_key,
        })),
        extracted: true,
    }
}

/// An HTML page's text, decoded: by its byte-order mark; else as UTF-8 when
/// the bytes are valid UTF-8 (text in a legacy encoding almost never is, and
/// pages re-saved as UTF-8 often keep their old declaration); else by the
/// charset its `<meta>` declares in the first 1,024 bytes (HTML's prescan);
/// else by what chardetng detects (a declaration of UTF-8 that the bytes
/// break is detected too). Scraped pages are full of windows-1251,
/// windows-1256 and ISO-8859 pages, often undeclared or misdeclared. Never
/// fails; returns the encoding used.
pub fn decode_html(bytes: &[u8]) -> (String, &'static encoding_rs::Encoding) {
    use encoding_rs::{Encoding, UTF_8};
    let encoding = match Encoding::for_bom(bytes) {
        Some((e, _)) => e,
        None if std::str::from_utf8(bytes).is_ok() => UTF_8,
        None => match meta_charset(&bytes[..bytes.len().min(1024)]) {
            Some(e) if e != UTF_8 => e,
            _ => {
                let mut d = chardetng::EncodingDetector::new();
                d.feed(bytes, true);
                d.guess(None, true)
            }
        },
    };
    let (text, used, _) = encoding.decode(bytes);
    (text.into_owned(), used)
}

/// The encoding a `<meta charset=...>` or `<meta http-equiv content="...;
/// charset=...">` in `head` names (a simplified form of HTML's prescan).
fn meta_charset(head: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let lower = head.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = find(&lower[from..], b"<meta").map(|p| from + p) {
        let end = find(&lower[at..], b">").map_or(lower.len(), |p| at + p);
        let tag = &lower[at..end];
        if let Some(p) = find(tag, b"charset") {
            let rest = &tag[p + b"charset".len()..];
            let rest = rest
                .trim_ascii_start()
                .strip_prefix(b"=")?
                .trim_ascii_start();
            let rest = rest
                .strip_prefix(b"\"")
                .or(rest.strip_prefix(b"'"))
                .unwrap_or(rest);
            let len = rest
                .iter()
                .position(|c| matches!(c, b'"' | b'\'' | b';' | b' ' | b'/' | b'>'))
                .unwrap_or(rest.len());
            // A page saved as UTF-16 cannot say so in ASCII: read as UTF-8.
            return encoding_rs::Encoding::for_label(&rest[..len]).map(|e| e.output_encoding());
        }
        from = end;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// An HTML page's article text: its extracted paragraphs, separated by
/// blank lines.
pub fn html_to_text(html: &str) -> String {
    crate::extract::extract(html).paragraphs.join("\n\n")
}

// --------------------------------------------------- pass-through schema ----

/// What one file's values of a JSON key have been so far.
#[derive(Debug, Clone, Copy)]
struct JsonKind {
    all_bool: bool,
    all_int: bool,
    all_number: bool,
}

impl JsonKind {
    fn new() -> Self {
        JsonKind {
            all_bool: true,
            all_int: true,
            all_number: true,
        }
    }
    fn see(&mut self, v: &Value) {
        if v.is_null() {
            return;
        }
        self.all_bool &= v.is_boolean();
        self.all_int &= v.is_i64();
        self.all_number &= v.is_number();
    }
    fn dtype(self) -> DataType {
        if self.all_bool {
            DataType::Boolean
        } else if self.all_int {
            DataType::Int64
        } else if self.all_number {
            DataType::Float64
        } else {
            DataType::String
        }
    }
}

/// One pass-through column of the output.
#[derive(Debug, Clone)]
pub struct PassColumn {
    /// Its name in the output (`input_`-prefixed when it clashes).
    pub name: String,
    /// Its name in the inputs.
    pub source: String,
    pub dtype: DataType,
}

/// A column as one input has it: its name, what its JSON values were, or
/// the type its format fixes.
type SeenColumn = (String, Option<JsonKind>, Option<DataType>);

/// The pass-through columns, learned from every row in the scan so that
/// every window of the job writes the same schema.
#[derive(Debug, Default)]
pub struct PassSchema {
    /// Per input: column names in first-seen order, with their kinds.
    per_source: Vec<Vec<SeenColumn>>,
    seen: Vec<std::collections::HashMap<String, usize>>,
    last_frame: Option<(usize, usize)>,
}

impl PassSchema {
    fn column(&mut self, source: usize, name: &str) -> usize {
        if self.per_source.len() <= source {
            self.per_source.resize_with(source + 1, Vec::new);
            self.seen.resize_with(source + 1, Default::default);
        }
        if let Some(&i) = self.seen[source].get(name) {
            return i;
        }
        self.per_source[source].push((name.to_string(), None, None));
        let i = self.per_source[source].len() - 1;
        self.seen[source].insert(name.to_string(), i);
        i
    }

    /// Notes a record's pass-through values.
    pub fn see(&mut self, r: &Record) {
        match &r.extra {
            Extra::None => {}
            Extra::Json(map) => {
                for (k, v) in map {
                    let i = self.column(r.source, k);
                    self.per_source[r.source][i]
                        .1
                        .get_or_insert_with(JsonKind::new)
                        .see(v);
                }
            }
            Extra::Cells(names, _) => {
                for n in names.iter() {
                    let i = self.column(r.source, n);
                    self.per_source[r.source][i].2 = Some(DataType::String);
                }
            }
            Extra::Page(_) => {
                for n in PAGE_COLUMNS {
                    let i = self.column(r.source, n);
                    self.per_source[r.source][i].2 = Some(DataType::String);
                }
            }
            Extra::Frame(df, _) => {
                let key = (r.source, Arc::as_ptr(df) as usize);
                if self.last_frame != Some(key) {
                    self.last_frame = Some(key);
                    for c in df.columns() {
                        let i = self.column(r.source, c.name());
                        self.per_source[r.source][i].2 = Some(c.dtype().clone());
                    }
                }
            }
        }
    }

    /// The unified columns: first-seen order across inputs, types that
    /// differ become text, and names clashing with output columns get an
    /// `input_` prefix (repeated until free).
    pub fn columns(&self) -> Vec<PassColumn> {
        let mut order: Vec<(String, DataType)> = Vec::new();
        for cols in &self.per_source {
            for (name, json, fixed) in cols {
                let t = fixed
                    .clone()
                    .or_else(|| json.map(JsonKind::dtype))
                    .unwrap_or(DataType::String);
                match order.iter_mut().find(|(n, _)| n == name) {
                    None => order.push((name.clone(), t)),
                    Some((_, d)) if *d != t => *d = DataType::String,
                    _ => {}
                }
            }
        }
        let clashes = |n: &str| RESERVED.contains(&n) || crate::task::Task::is_task_column(n);
        let mut taken: std::collections::HashSet<String> =
            order.iter().map(|(n, _)| n.clone()).collect();
        order
            .into_iter()
            .map(|(source, dtype)| {
                let mut name = source.clone();
                if clashes(&name) {
                    taken.remove(&name);
                    while taken.contains(&name) || clashes(&name) {
                        name = format!("input_{name}");
                    }
                    taken.insert(name.clone());
                }
                PassColumn {
                    name,
                    source,
                    dtype,
                }
            })
            .collect()
    }
}

/// The pass-through columns of `records`, one row each, typed by `schema`.
pub fn passthrough(records: &[&Record], schema: &[PassColumn]) -> Result<DataFrame> {
    let n = records.len();
    let mut cols = Vec::with_capacity(schema.len());
    for c in schema {
        let name: PlSmallStr = c.name.as_str().into();
        // Runs of rows from one Parquet row group are sliced and cast whole.
        let mut out = Series::new_empty(name.clone(), &c.dtype);
        let mut i = 0;
        while i < n {
            let piece = match &records[i].extra {
                Extra::Frame(df, row) => {
                    let mut j = i + 1;
                    while j < n
                        && matches!(&records[j].extra, Extra::Frame(d2, r2)
                            if Arc::ptr_eq(df, d2) && *r2 == row + (j - i))
                    {
                        j += 1;
                    }
                    let len = j - i;
                    i = j;
                    match df.column(&c.source) {
                        Ok(col) => col
                            .as_materialized_series()
                            .slice(*row as i64, len)
                            .cast(&c.dtype)?,
                        Err(_) => Series::full_null(name.clone(), len, &c.dtype),
                    }
                }
                _ => {
                    let mut j = i;
                    while j < n && !matches!(records[j].extra, Extra::Frame(..)) {
                        j += 1;
                    }
                    let s = scalar_series(&name, &records[i..j], &c.source, &c.dtype)?;
                    i = j;
                    s
                }
            };
            out.append(&piece.with_name(name.clone()))?;
        }
        cols.push(out.into_column());
    }
    Ok(DataFrame::new(n, cols)?)
}

/// A column of JSON / CSV values in `dtype`; JSON values that are not
/// scalars become their JSON text.
fn scalar_series(name: &PlSmallStr, rs: &[&Record], key: &str, dtype: &DataType) -> Result<Series> {
    let get = |r: &Record| -> Option<Value> {
        match &r.extra {
            Extra::Json(m) => m.get(key).cloned(),
            Extra::Cells(names, cells) => names
                .iter()
                .position(|n| n == key)
                .map(|i| Value::String(cells[i].clone())),
            Extra::Page(p) => PAGE_COLUMNS
                .iter()
                .position(|n| *n == key)
                .and_then(|i| p.values[i].clone())
                .map(Value::String),
            _ => None,
        }
    };
    let vals: Vec<Option<Value>> = rs.iter().map(|r| get(r)).collect();
    let name = name.clone();
    Ok(match dtype {
        DataType::Boolean => Series::new(
            name,
            vals.iter()
                .map(|v| v.as_ref().and_then(Value::as_bool))
                .collect::<Vec<_>>(),
        ),
        DataType::Int64 => Series::new(
            name,
            vals.iter()
                .map(|v| v.as_ref().and_then(Value::as_i64))
                .collect::<Vec<_>>(),
        ),
        DataType::Float64 => Series::new(
            name,
            vals.iter()
                .map(|v| v.as_ref().and_then(Value::as_f64))
                .collect::<Vec<_>>(),
        ),
        _ => Series::new(
            name,
            vals.iter()
                .map(|v| match v {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) => Some(other.to_string()),
                })
                .collect::<Vec<_>>(),
        )
        .cast(dtype)?,
    })
}

#[cfg(test)]
mod tests {
    /// Pages in the encodings scrapes are full of decode to the same text,
    /// declared or not; a false UTF-8 declaration is seen through.
    #[test]
    fn html_pages_decode_from_bom_meta_or_detection() {
        let ru = "Министр обороны заявил, что переговоры о поставках продолжатся на следующей неделе в Женеве, сообщили в ведомстве. Эксперты считают, что решение будет принято до конца месяца.";
        let ar = "قال وزير الخارجية إن بلاده ستواصل تقديم المساعدات إلى أوكرانيا، وفق بيان رسمي صدر اليوم عن الوزارة في العاصمة.";
        let page = |head: &str, body: &str| {
            format!("<html><head>{head}</head><body><p>{body}</p></body></html>")
        };
        let enc = |name: &[u8], text: &str| {
            let e = encoding_rs::Encoding::for_label(name).unwrap();
            let (b, _, bad) = e.encode(text);
            assert!(!bad);
            b.into_owned()
        };
        let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
            ("meta charset", enc(b"windows-1251", &page("<meta charset=\"windows-1251\">", ru)), ru, "windows-1251"),
            (
                "http-equiv",
                enc(b"windows-1256", &page("<META HTTP-EQUIV='Content-Type' CONTENT='text/html; charset=windows-1256'>", ar)),
                ar,
                "windows-1256",
            ),
            ("undeclared", enc(b"windows-1251", &page("", ru)), ru, "windows-1251"),
            ("false utf-8", enc(b"windows-1251", &page("<meta charset=utf-8>", ru)), ru, "windows-1251"),
            ("utf-8", page("", ar).into_bytes(), ar, "UTF-8"),
            (
                "utf-8 with an old declaration",
                page("<meta charset=windows-1256>", ar).into_bytes(),
                ar,
                "UTF-8",
            ),
            (
                "bom",
                [b"\xEF\xBB\xBF".as_slice(), page("<meta charset=windows-1251>", ru).as_bytes()].concat(),
                ru,
                "UTF-8",
            ),
        ];
        for (what, bytes, want, encoding) in cases {
            let (html, used) = super::decode_html(&bytes);
            assert_eq!(used.name(), encoding, "{what}");
            assert_eq!(super::html_to_text(&html).trim(), want, "{what}");
        }
    }

    use super::*;

    fn read_all(text: &str, name: &str, opts: &ReadOptions) -> Vec<Item> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        let inputs = Inputs::open(&[p], opts).unwrap();
        inputs.records().collect::<Result<Vec<_>>>().unwrap()
    }

    #[test]
    fn jsonl_rows_and_bad_rows_name_their_line() {
        let data = "{\"id\": 1, \"text\": \"a\", \"n\": 3, \"src\": \"x\"}\n\n{\"id\": \"b\", \"text\": \"b\", \"n\": 4}\n{\"id\": 2\n";
        let items = read_all(data, "f.jsonl", &ReadOptions::default());
        assert_eq!(items.len(), 3);
        let Item::Record(r) = &items[1] else {
            panic!("{items:?}")
        };
        assert_eq!(r.id, "b");
        assert!(r.origin.ends_with("f.jsonl:3"), "{}", r.origin);
        let Item::Bad { location, message } = &items[2] else {
            panic!("{items:?}")
        };
        assert!(location.ends_with("f.jsonl:4") && message.starts_with("malformed JSON"));
    }

    #[test]
    fn schema_types_per_file_and_unifies() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.jsonl");
        let b = d.path().join("b.csv");
        std::fs::write(&a, "{\"id\": 1, \"text\": \"a\", \"n\": 3, \"lang\": \"en\"}\n{\"id\": 2, \"text\": \"b\", \"f\": 1.5}\n").unwrap();
        std::fs::write(&b, "id,text,n\n3,c,x\n").unwrap();
        let inputs = Inputs::open(&[a, b], &ReadOptions::default()).unwrap();
        let mut s = PassSchema::default();
        let recs: Vec<Record> = inputs
            .records()
            .map(|i| match i.unwrap() {
                Item::Record(r) => r,
                Item::Bad { .. } => panic!(),
            })
            .collect();
        for r in &recs {
            s.see(r);
        }
        let cols = s.columns();
        let got: Vec<(&str, &DataType)> =
            cols.iter().map(|c| (c.name.as_str(), &c.dtype)).collect();
        // `n` is an integer in one file and text in the other: text.
        assert_eq!(
            got,
            [
                ("n", &DataType::String),
                ("input_lang", &DataType::String),
                ("f", &DataType::Float64)
            ]
        );
        let refs: Vec<&Record> = recs.iter().collect();
        let df = passthrough(&refs, &cols).unwrap();
        assert_eq!(df.height(), 3);
        let n: Vec<Option<&str>> = df.column("n").unwrap().str().unwrap().iter().collect();
        assert_eq!(n, [Some("3"), None, Some("x")]);
    }
}
