//! Labeling-tool file formats: the sheets `paratag sample` writes and the gold
//! files `paratag eval` and `paratag calibrate` read.
//!
//! One file per format. Each reader returns raw [`GoldItem`]s (labels exactly
//! as the coders wrote them, offsets already in code points); [`validate`]
//! then checks them against the codebook in one place, so every format gets
//! the same errors. Offsets are Unicode code points everywhere in paratag;
//! where a tool counts otherwise (old Label Studio exports count UTF-16 code
//! units) its reader converts.

pub mod conll;
pub mod doccano;
pub mod gold_jsonl;
pub mod label_studio;
pub mod prodigy;
pub mod sheet;

use crate::codebook::Codebook;
use crate::error::{Error, Result};
use crate::record::Pred;
use crate::task::Task;
use crate::text::slug;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The label for "no topic" / "no stance" in gold files and metrics.
pub const NONE: &str = "none";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV sheet: one row per paragraph (per coder), label columns.
    Csv,
    /// CSV with a UTF-8 byte-order mark and CRLF line ends, so Excel opens it
    /// as UTF-8.
    XlsxCsv,
    /// Tab-separated sheet.
    Tsv,
    /// Label Studio tasks JSON (sample) / export JSON (gold).
    LabelStudio,
    Doccano,
    Prodigy,
    /// paratag's own gold JSONL.
    Gold,
    /// CoNLL / IOB2 token files (gold only).
    Conll,
}

impl crate::choice::Choice for Format {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (
            Format::Csv,
            "csv",
            "CSV sheet: one row per paragraph (per coder), label columns",
        ),
        (
            Format::XlsxCsv,
            "xlsx-csv",
            "CSV with a UTF-8 byte-order mark and CRLF line ends, so Excel opens it as UTF-8",
        ),
        (Format::Tsv, "tsv", "Tab-separated sheet"),
        (
            Format::LabelStudio,
            "label-studio",
            "Label Studio tasks JSON (sample) / export JSON (gold)",
        ),
        (Format::Doccano, "doccano", ""),
        (Format::Prodigy, "prodigy", ""),
        (Format::Gold, "gold", "paratag's own gold JSONL"),
        (
            Format::Conll,
            "conll",
            "CoNLL / IOB2 token files (gold only)",
        ),
    ];
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::XlsxCsv => "xlsx-csv",
            Format::Tsv => "tsv",
            Format::LabelStudio => "label-studio",
            Format::Doccano => "doccano",
            Format::Prodigy => "prodigy",
            Format::Gold => "gold",
            Format::Conll => "conll",
        }
    }

    /// The format a file name implies. Plain `.jsonl` is ambiguous; for reading
    /// it is sniffed from the first record, see [`sniff_jsonl`].
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_lowercase();
        let ends = |s: &str| name.ends_with(s);
        Some(if ends(".doccano.jsonl") {
            Format::Doccano
        } else if ends(".prodigy.jsonl") {
            Format::Prodigy
        } else if ends(".gold.jsonl") {
            Format::Gold
        } else if ends(".json") {
            Format::LabelStudio
        } else if ends(".csv") {
            Format::Csv
        } else if ends(".tsv") {
            Format::Tsv
        } else if ends(".conll") || ends(".conllu") || ends(".iob2") || ends(".iob") || ends(".bio")
        {
            Format::Conll
        } else {
            return None;
        })
    }
}

/// A span in code points, `[start, end)`.
pub use crate::record::Span;

/// What one coder said about one paragraph. `None` means "not labeled" (the
/// item is left out of that task); an explicit no-topic is `Some("none")`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Annotation {
    pub coder: String,
    pub topic: Option<String>,
    /// Stance target id (or raw target name before validation) -> label.
    pub stances: BTreeMap<String, String>,
    /// Stance target -> whose position it is (`author`, `reported`).
    pub holders: BTreeMap<String, String>,
    pub entities: Option<Vec<Span>>,
}

impl Annotation {
    pub fn is_empty(&self) -> bool {
        self.topic.is_none()
            && self.stances.is_empty()
            && self.holders.is_empty()
            && self.entities.is_none()
    }

    /// Puts a coder's label for `task` (entities are spans: see `entities`).
    pub fn put(&mut self, task: Task, value: String) {
        match task {
            Task::Topic => self.topic = Some(value),
            Task::Stance(t) => _ = self.stances.insert(t, value),
            Task::Holder(t) => _ = self.holders.insert(t, value),
            Task::Entities => {}
        }
    }

    /// The coder's label for `task` (`None`: not labeled).
    pub fn label(&self, task: &Task) -> Option<&str> {
        match task {
            Task::Topic => self.topic.as_deref(),
            Task::Stance(t) => self.stances.get(t).map(String::as_str),
            Task::Holder(t) => self.holders.get(t).map(String::as_str),
            Task::Entities => None,
        }
    }
}

/// One gold paragraph with its annotations (one per coder).
#[derive(Debug, Clone, Default)]
pub struct GoldItem {
    /// `file:line` of the record, for errors.
    pub location: String,
    pub article_id: Option<String>,
    pub paragraph: Option<u32>,
    pub text: String,
    pub annotations: Vec<Annotation>,
    /// Other columns/fields, for `--by`.
    pub fields: BTreeMap<String, String>,
    /// Stance targets named in a long table's `target` column, as written:
    /// `eval` scores ones the codebook lacks as new targets.
    pub row_targets: BTreeSet<String>,
}

/// The sheet columns `sample` writes: each row's weight (1 / its inclusion
/// probability) and the strategy that drew it.
pub const SAMPLE_WEIGHT: &str = "sample_weight";
pub const SAMPLE_STRATEGY: &str = "sample_strategy";

impl GoldItem {
    /// The row's `sample_weight`, if the sheet has one; an error names the
    /// row when it is not a positive number.
    pub fn sample_weight(&self) -> Result<Option<f64>> {
        let Some(v) = self
            .fields
            .get(SAMPLE_WEIGHT)
            .filter(|v| !v.trim().is_empty())
        else {
            return Ok(None);
        };
        match v.trim().parse::<f64>() {
            Ok(w) if w.is_finite() && w > 0.0 => Ok(Some(w)),
            _ => Err(Error::input(
                self.location.clone(),
                format!("{SAMPLE_WEIGHT} {v:?} is not a positive number"),
            )),
        }
    }
}

/// The coders named in `items`, sorted, each once.
pub fn coders<'a>(items: impl IntoIterator<Item = &'a GoldItem>) -> Vec<&'a str> {
    let set: BTreeSet<&str> = items
        .into_iter()
        .flat_map(|g| g.annotations.iter().map(|a| a.coder.as_str()))
        .collect();
    set.into_iter().collect()
}

/// Options for reading gold files.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub format: Option<Format>,
    /// `field=column` renames for CSV/TSV gold (see [`sheet`]).
    pub columns: Vec<(String, String)>,
    /// Delimiter, quoting, header and encoding of CSV/TSV gold.
    pub table: crate::table::TableOptions,
}

/// What reading a gold file did besides giving its items, for the summary
/// line and the JSON report.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ReadReport {
    /// Records read: rows, lines, tasks or sentences.
    pub records: usize,
    /// Items after records of one paragraph were merged.
    pub items: usize,
    /// Records merged into an earlier one as another coder's annotation of
    /// the same paragraph: by `article_id` + `paragraph`, or (without them)
    /// by identical text.
    pub merged_by_id: usize,
    pub merged_by_text: usize,
    /// The first few merges, `file:line -> file:line`.
    pub merged_examples: Vec<String>,
    /// Lines or records skipped, by reason (e.g. `-DOCSTART-`).
    pub skipped: BTreeMap<String, usize>,
    /// The text encoding, where the file was not plain UTF-8.
    pub encoding: Option<String>,
}

impl ReadReport {
    /// One line for stderr: the file, then [`ReadReport::summary`].
    pub fn line(&self, path: &Path) -> String {
        format!("{}: {}", path.display(), self.summary())
    }

    /// Records, items, and what was merged, skipped or decoded.
    pub fn summary(&self) -> String {
        let mut s = format!("{} records -> {} items", self.records, self.items);
        let mut notes = vec![];
        if self.merged_by_id > 0 {
            notes.push(format!(
                "{} merged with an earlier record of the same article_id and paragraph, as another coder",
                self.merged_by_id
            ));
        }
        if self.merged_by_text > 0 {
            notes.push(format!(
                "{} merged with an earlier record of the same text (no article_id/paragraph), as another coder",
                self.merged_by_text
            ));
        }
        if !self.merged_examples.is_empty() {
            notes.push(format!("e.g. {}", self.merged_examples.join(", ")));
        }
        for (why, n) in &self.skipped {
            notes.push(format!("{n} {why} skipped"));
        }
        if let Some(e) = &self.encoding {
            notes.push(e.clone());
        }
        if !notes.is_empty() {
            s += &format!(" ({})", notes.join("; "));
        }
        s
    }
}

/// Reads a gold (or previously written sample) file in any supported format.
pub fn read(path: &Path, opts: &ReadOptions) -> Result<(Format, Vec<GoldItem>)> {
    let (fmt, items, _) = read_reported(path, opts)?;
    Ok((fmt, items))
}

/// [`read`], with what was merged, skipped or decoded.
pub fn read_reported(
    path: &Path,
    opts: &ReadOptions,
) -> Result<(Format, Vec<GoldItem>, ReadReport)> {
    let fmt = match opts.format {
        Some(f) => f,
        None => match Format::from_path(path) {
            Some(f) => f,
            None if has_ext(path, "jsonl") => sniff_jsonl(path)?,
            None if has_ext(path, "txt") && looks_like_conll(path)? => Format::Conll,
            None => {
                return Err(Error::input(
                    path.display().to_string(),
                    "cannot tell the gold format from the file name; pass --gold-format",
                ))
            }
        },
    };
    let mut report = ReadReport::default();
    let items = match fmt {
        Format::Csv | Format::XlsxCsv | Format::Tsv => {
            let (items, encoding) = sheet::read(path, fmt, opts)?;
            report.encoding = encoding;
            items
        }
        Format::LabelStudio => label_studio::read(path)?,
        Format::Doccano => doccano::read(path)?,
        Format::Prodigy => prodigy::read(path)?,
        Format::Gold => gold_jsonl::read(path)?,
        Format::Conll => {
            let (items, docstarts) = conll::read(path)?;
            if docstarts > 0 {
                report.skipped.insert("-DOCSTART- lines".into(), docstarts);
            }
            items
        }
    };
    report.records = items.len();
    let items = merge_reported(items, &mut report)?;
    report.items = items.len();
    Ok((fmt, items, report))
}

/// One item per paragraph: records sharing `article_id` + `paragraph` (or,
/// without an `article_id`, the text) are one paragraph's annotations by
/// several coders.
pub fn merge(items: Vec<GoldItem>) -> Result<Vec<GoldItem>> {
    merge_reported(items, &mut ReadReport::default())
}

fn merge_reported(items: Vec<GoldItem>, report: &mut ReadReport) -> Result<Vec<GoldItem>> {
    let mut out: Vec<GoldItem> = Vec::new();
    #[derive(PartialEq, Eq, Hash)]
    enum Key {
        Id(String, u32),
        Text(String),
    }
    let mut index: std::collections::HashMap<Key, usize> = Default::default();
    for it in items {
        // A record with its own id is its own paragraph; only records
        // without ids are told apart by their text.
        let key = match (&it.article_id, it.paragraph) {
            (Some(a), p) => Key::Id(a.clone(), p.unwrap_or(0)),
            (None, _) => Key::Text(it.text.clone()),
        };
        match index.get(&key) {
            Some(&i) => {
                let first = &mut out[i];
                if first.text != it.text {
                    return Err(Error::input(
                        it.location,
                        format!(
                            "same article_id and paragraph as {} but a different text",
                            first.location
                        ),
                    ));
                }
                match key {
                    Key::Id(..) => report.merged_by_id += 1,
                    Key::Text(_) => report.merged_by_text += 1,
                }
                if report.merged_examples.len() < 3 {
                    report
                        .merged_examples
                        .push(format!("{} -> {}", it.location, first.location));
                }
                first.annotations.extend(it.annotations);
                first.row_targets.extend(it.row_targets);
                for (k, v) in it.fields {
                    first.fields.entry(k).or_insert(v);
                }
            }
            None => {
                index.insert(key, out.len());
                out.push(it);
            }
        }
    }
    Ok(out)
}

fn has_ext(path: &Path, ext: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.to_string_lossy().eq_ignore_ascii_case(ext))
}

/// Tells Doccano, Prodigy and paratag gold JSONL apart by the first record's keys.
/// A `.txt` file whose first token line reads `TOKEN ... TAG` with an
/// IOB-style tag (ANERCorp ships as `.txt`).
fn looks_like_conll(path: &Path) -> Result<bool> {
    let text = read_text(path)?;
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    let fields: Vec<&str> = first.split_whitespace().collect();
    let tag = fields.last().copied().unwrap_or("");
    Ok(fields.len() >= 2
        && (tag == "O" || (tag.len() > 2 && matches!(&tag[..2], "B-" | "I-" | "E-" | "S-"))))
}

pub fn sniff_jsonl(path: &Path) -> Result<Format> {
    let text = read_text(path)?;
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(first)
        .map_err(|e| Error::input(format!("{}:1", path.display()), format!("not JSON: {e}")))?;
    let has = |k: &str| v.get(k).is_some();
    Ok(
        if has("spans") || has("answer") || has("_input_hash") || has("meta") {
            Format::Prodigy
        } else if has("label") || has("cats") {
            Format::Doccano
        } else {
            Format::Gold
        },
    )
}

/// Reads a UTF-8 file (BOM dropped), naming the first bad byte's line.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let line = bytes[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        Error::input(
            format!("{}:{line}", path.display()),
            "invalid UTF-8 (for CSV/TSV gold pass e.g. --gold-encoding cp1252)",
        )
    })
}

/// `file:line` for a 1-based line.
pub fn loc(path: &Path, line: usize) -> String {
    format!("{}:{line}", path.display())
}

/// Code-point length.
pub fn cp_len(s: &str) -> usize {
    s.chars().count()
}

/// The code-point slice `[start, end)` of `text`, if in range.
pub fn cp_slice(text: &str, start: usize, end: usize) -> Option<&str> {
    if start > end {
        return None;
    }
    let mut idx = text.char_indices().map(|(b, _)| b).chain([text.len()]);
    let b0 = idx.nth(start)?;
    let b1 = if end == start {
        b0
    } else {
        idx.nth(end - start - 1)?
    };
    Some(&text[b0..b1])
}

/// Converts UTF-16 code-unit offsets to code points; `None` if an offset is
/// past the end or splits a surrogate pair.
pub fn utf16_to_cp(text: &str, unit: usize) -> Option<usize> {
    let mut u = 0;
    for (i, c) in text.chars().enumerate() {
        if u == unit {
            return Some(i);
        }
        u += c.len_utf16();
        if u > unit {
            return None;
        }
    }
    (u == unit).then(|| text.chars().count())
}

/// Code points to UTF-16 units.
pub fn cp_to_utf16(text: &str, cp: usize) -> usize {
    text.chars().take(cp).map(char::len_utf16).sum()
}

/// The labels gold is checked against.
#[derive(Debug, Clone, Default)]
pub struct LabelSet {
    /// Topic ids with their human labels (from the codebook).
    pub topics: Vec<(String, String)>,
    /// Stance target ids with their target text.
    pub stances: Vec<(String, String)>,
    /// Entity types the NER model can predict (empty: not checked).
    pub entity_types: BTreeSet<String>,
    /// `gold=model` entity-type renames (e.g. `PERS=PER`), applied first.
    pub entity_map: BTreeMap<String, String>,
}

impl LabelSet {
    pub fn from_codebook(cb: Option<&Codebook>) -> LabelSet {
        let mut l = LabelSet::default();
        if let Some(cb) = cb {
            l.topics = cb
                .topics
                .topics
                .iter()
                .map(|t| (t.id.clone(), t.label.clone()))
                .collect();
            l.stances = cb
                .stances
                .iter()
                .map(|s| (s.id.clone(), s.target.clone()))
                .collect();
        }
        l
    }

    /// A topic written as its id, its label, or either slugged; or "none".
    fn topic(&self, raw: &str) -> Option<String> {
        let s = slug(raw);
        if s == NONE || s.is_empty() {
            return Some(NONE.into());
        }
        self.topics
            .iter()
            .find(|(id, label)| id == raw || label == raw || slug(id) == s || slug(label) == s)
            .map(|(id, _)| id.clone())
    }

    /// A stance target written as `stance_<id>`, its id, or its target text.
    pub fn target(&self, raw: &str) -> Option<String> {
        let raw = match Task::parse(raw) {
            Some(Task::Stance(t)) => t,
            _ => raw.to_string(),
        };
        let raw = raw.as_str();
        let s = slug(raw);
        self.stances
            .iter()
            .find(|(id, t)| id == raw || slug(id) == s || slug(t) == s)
            .map(|(id, _)| id.clone())
    }
}

/// A stance label, case-insensitive: favor/favour/pro, against/con, none/neutral.
fn stance_label(raw: &str) -> Option<&'static str> {
    match slug(raw).as_str() {
        "favor" | "favour" | "pro" | "for" | "support" => Some("favor"),
        "against" | "con" | "oppose" => Some("against"),
        "none" | "neutral" | "neither" | "" => Some(NONE),
        _ => None,
    }
}

/// Checks and normalises every annotation: labels known to the codebook (and
/// model), spans in range, not overlapping, with a non-empty text.
pub fn validate(items: &mut [GoldItem], labels: &LabelSet) -> Result<()> {
    for item in items.iter_mut() {
        let n = cp_len(&item.text) as u32;
        for a in &mut item.annotations {
            labels
                .normalise(a, n)
                .map_err(|m| Error::input(item.location.clone(), m))?;
        }
        item.annotations.retain(|a| !a.is_empty());
        trim_item(item);
    }
    Ok(())
}

impl LabelSet {
    /// One annotation's labels as the codebook's ids, and its entities
    /// checked against a text of `n` code points; an error message.
    fn normalise(&self, a: &mut Annotation, n: u32) -> std::result::Result<(), String> {
        if let Some(t) = &a.topic {
            if self.topics.is_empty() {
                return Err(format!(
                    "gold has a topic ({t:?}) but the codebook has no topics (pass --codebook)"
                ));
            }
            let topic_list = || {
                self.topics
                    .iter()
                    .map(|t| t.0.as_str())
                    .chain([NONE])
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            a.topic = Some(self.topic(t).ok_or_else(|| {
                format!(
                    "unknown topic label {t:?}; the codebook has: {}",
                    topic_list()
                )
            })?);
        }
        let mut stances = BTreeMap::new();
        for (target, value) in &a.stances {
            let id = self.target(target).ok_or_else(|| {
                let known: Vec<_> = self.stances.iter().map(|s| s.0.as_str()).collect();
                format!(
                    "unknown stance target {target:?}; the codebook has: {}",
                    if known.is_empty() {
                        "no stance targets (pass --codebook)".to_string()
                    } else {
                        known.join(", ")
                    }
                )
            })?;
            let label = stance_label(value).ok_or_else(|| {
                format!("unknown stance label {value:?} for {id}; use favor, against or none")
            })?;
            stances.insert(id, label.to_string());
        }
        a.stances = stances;
        let mut holders = BTreeMap::new();
        for (target, value) in &a.holders {
            let id = self
                .target(target)
                .ok_or_else(|| format!("holder for unknown stance target {target:?}"))?;
            let v = value.trim().to_lowercase();
            if !crate::task::HOLDER_LABELS.contains(&v.as_str()) {
                return Err(format!(
                    "unknown holder {value:?} for {id}; use author or reported"
                ));
            }
            holders.insert(id, v);
        }
        a.holders = holders;
        if let Some(ents) = &mut a.entities {
            self.check_entities(ents, n)?;
        }
        Ok(())
    }

    /// Entity labels mapped (`--entity-map`) and known to the model, spans
    /// in `[0, n)` and not overlapping; sorted, duplicates dropped.
    fn check_entities(&self, ents: &mut Vec<Span>, n: u32) -> std::result::Result<(), String> {
        for e in ents.iter_mut() {
            if let Some(m) = self.entity_map.get(&e.label) {
                e.label = m.clone();
            }
            if e.label.trim().is_empty() {
                return Err(format!("entity [{}, {}) has no label", e.start, e.end));
            }
            if !self.entity_types.is_empty() && !self.entity_types.contains(&e.label) {
                return Err(format!(
                    "unknown entity label {:?}; the NER model has: {} (map with --entity-map GOLD=MODEL)",
                    e.label,
                    self.entity_types.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            if e.start >= e.end || e.end > n {
                return Err(format!(
                    "entity [{}, {}) {:?} is out of range: the text has {n} code points",
                    e.start, e.end, e.label
                ));
            }
        }
        ents.sort();
        ents.dedup();
        for w in ents.windows(2) {
            if w[1].start < w[0].end {
                return Err(format!(
                    "entities [{}, {}) {:?} and [{}, {}) {:?} overlap",
                    w[0].start, w[0].end, w[0].label, w[1].start, w[1].end, w[1].label
                ));
            }
        }
        Ok(())
    }
}

/// paratag's paragraphs never start or end with whitespace (the tagger trims
/// them), so gold texts are trimmed the same way, with entity offsets moved
/// along; otherwise a tweet with a trailing space would match no prediction.
fn trim_item(item: &mut GoldItem) {
    let t = item.text.trim();
    if t.len() == item.text.len() {
        return;
    }
    let lead = (cp_len(&item.text) - cp_len(item.text.trim_start())) as u32;
    let n = cp_len(t) as u32;
    item.text = t.to_string();
    for a in &mut item.annotations {
        for e in a.entities.iter_mut().flatten() {
            e.start = e.start.saturating_sub(lead).min(n);
            e.end = e.end.saturating_sub(lead).min(n);
        }
        if let Some(es) = &mut a.entities {
            es.retain(|e| e.start < e.end);
        }
    }
}

/// An entity given as `[start, end, label]` or `[start, end, label, text]`
/// (the text, when present, must equal the slice: it catches unit mix-ups).
pub fn span_from_json(v: &serde_json::Value, text: &str) -> std::result::Result<Span, String> {
    let a = v
        .as_array()
        .filter(|a| a.len() == 3 || a.len() == 4)
        .ok_or_else(|| format!("entity {v} is not [start, end, label]"))?;
    let num = |x: &serde_json::Value| {
        x.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("entity {v}: offsets must be non-negative integers"))
    };
    let label = a[2]
        .as_str()
        .ok_or_else(|| format!("entity {v}: label must be a string"))?;
    let span = Span {
        start: num(&a[0])?,
        end: num(&a[1])?,
        label: label.to_string(),
    };
    if let Some(t) = a.get(3) {
        check_span_text(text, &span, t.as_str())?;
    }
    Ok(span)
}

/// When a file also gives the entity's text, it must be the code-point slice.
pub fn check_span_text(
    text: &str,
    s: &Span,
    given: Option<&str>,
) -> std::result::Result<(), String> {
    let Some(given) = given else { return Ok(()) };
    match cp_slice(text, s.start as usize, s.end as usize) {
        Some(slice) if slice == given => Ok(()),
        Some(slice) => Err(format!(
            "entity [{}, {}) says {given:?} but the text there is {slice:?} (offsets must be code points)",
            s.start, s.end
        )),
        None => Err(format!(
            "entity [{}, {}) {:?} is out of range: the text has {} code points",
            s.start,
            s.end,
            s.label,
            cp_len(text)
        )),
    }
}

/// `[[start, end, label, text], ...]` for sheets and Doccano, in code points.
pub fn spans_json(text: &str, spans: &[Span], with_text: bool) -> serde_json::Value {
    serde_json::Value::Array(
        spans
            .iter()
            .map(|s| {
                let mut v = vec![
                    serde_json::json!(s.start),
                    serde_json::json!(s.end),
                    serde_json::json!(s.label),
                ];
                if with_text {
                    let t = cp_slice(text, s.start as usize, s.end as usize).unwrap_or("");
                    v.push(serde_json::json!(t));
                }
                serde_json::Value::Array(v)
            })
            .collect(),
    )
}

/// What a sample sheet carries besides the paragraphs.
pub struct SheetSpec<'a> {
    pub targets: &'a [String],
    pub topic_ids: &'a [String],
    /// Entity types offered to coders (Label Studio config, Prodigy).
    pub entity_types: &'a [String],
    /// Leave the model's predictions out.
    pub blind: bool,
    /// Pass-through columns copied into the sheet (strata, `lang`, sources).
    pub extra: &'a [String],
    pub model_version: String,
}

/// Writes a sample in `fmt` to `out` (atomically).
pub fn write_sheet(out: &Path, fmt: Format, rows: &[&Pred], spec: &SheetSpec) -> Result<()> {
    let bytes = match fmt {
        Format::Csv | Format::XlsxCsv | Format::Tsv => sheet::write(fmt, rows, spec)?,
        Format::LabelStudio => label_studio::write(rows, spec),
        Format::Doccano => doccano::write(rows, spec),
        Format::Prodigy => prodigy::write(rows, spec),
        Format::Gold => gold_jsonl::write(rows, spec),
        Format::Conll => return Err(Error::Config(
            "CoNLL is a gold-only format; sample to csv, label-studio, doccano, prodigy or gold"
                .into(),
        )),
    };
    atomic_write(out, &bytes)
}

pub use crate::atomic::atomic_write;

/// JSONL records, one per line, in order.
pub fn jsonl(records: impl IntoIterator<Item = serde_json::Value>) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(r.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// Parses JSONL into `(line, value)`, naming the line of a bad record.
pub fn parse_jsonl(path: &Path) -> Result<Vec<(usize, serde_json::Value)>> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::input(loc(path, i + 1), format!("not JSON: {e}")))?;
        if !v.is_object() {
            return Err(Error::input(loc(path, i + 1), "expected a JSON object"));
        }
        out.push((i + 1, v));
    }
    Ok(out)
}

/// A JSON object.
pub type Json = serde_json::Map<String, serde_json::Value>;

/// A gold item from a JSON record: `article_id` and `paragraph` from `obj`
/// (the record itself, or its `data`/`meta`), and its other text or number
/// keys but `skip`, `text`, `offset_unit` and `pred_*` as fields.
pub fn json_item(
    location: String,
    obj: &Json,
    text: String,
    annotations: Vec<Annotation>,
    skip: &[&str],
) -> Result<GoldItem> {
    let paragraph = match obj.get("paragraph") {
        None | Some(serde_json::Value::Null) => None,
        Some(p) => Some(
            p.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    Error::input(
                        location.clone(),
                        format!("\"paragraph\" must be a non-negative integer, not {p}"),
                    )
                })?,
        ),
    };
    let own = ["article_id", "paragraph", "text", "offset_unit"];
    let fields = obj
        .iter()
        .filter(|(k, _)| {
            !own.contains(&k.as_str()) && !skip.contains(&k.as_str()) && !k.starts_with("pred_")
        })
        .filter_map(|(k, x)| json_str(x).map(|s| (k.clone(), s)))
        .collect();
    Ok(GoldItem {
        location,
        article_id: obj.get("article_id").and_then(json_str),
        paragraph,
        text,
        annotations,
        fields,
        row_targets: Default::default(),
    })
}

/// An entity given as `{"start", "end", "label"}` (and optionally `"text"`,
/// checked against the slice).
pub fn span_object(x: &serde_json::Value, text: &str) -> std::result::Result<Span, String> {
    let num = |k: &str| {
        x.get(k)
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("entity {x}: \"{k}\" must be a non-negative integer"))
    };
    let span = Span {
        start: num("start")?,
        end: num("end")?,
        label: x
            .get("label")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("entity {x}: missing \"label\""))?
            .to_string(),
    };
    check_span_text(
        text,
        &span,
        x.get("text").and_then(serde_json::Value::as_str),
    )?;
    Ok(span)
}

/// The keys every written record carries: `article_id`, `paragraph`,
/// `offset_unit` and the sheet's extra columns.
pub fn key_record(p: &Pred, spec: &SheetSpec) -> Json {
    let mut o = Json::new();
    o.insert("article_id".into(), p.article_id.clone().into());
    o.insert("paragraph".into(), p.paragraph.into());
    o.insert("offset_unit".into(), "codepoint".into());
    for f in spec.extra {
        if let Some(v) = p.fields.get(f) {
            o.insert(f.clone(), v.clone().into());
        }
    }
    o
}

/// A record's `"text"`, or an error naming its line.
pub fn record_text(v: &serde_json::Value, location: &str) -> Result<String> {
    v.get("text")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::input(location, "missing \"text\""))
}

/// The coder named by the first of `keys` the record has, else "gold".
pub fn coder_of(v: &serde_json::Value, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(json_str))
        .unwrap_or_else(|| "gold".into())
}

/// A JSON field as a string (numbers allowed, for ids).
pub fn json_str(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The predicted entities of a row as spans.
pub fn pred_spans(p: &Pred) -> Vec<Span> {
    p.entities
        .iter()
        .flatten()
        .map(|e| e.span.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_point_and_utf16_offsets() {
        let t = "👍🏽 كييف Київ e\u{301}";
        assert_eq!(cp_slice(t, 0, 2), Some("👍🏽"));
        assert_eq!(cp_slice(t, 3, 7), Some("كييف"));
        assert_eq!(cp_slice(t, 8, 12), Some("Київ"));
        assert_eq!(cp_slice(t, 13, 15), Some("e\u{301}"));
        assert_eq!(cp_slice(t, 13, 16), None);
        // Each emoji code point is 2 UTF-16 units.
        assert_eq!(cp_to_utf16(t, 3), 5);
        assert_eq!(utf16_to_cp(t, 5), Some(3));
        assert_eq!(utf16_to_cp(t, 1), None, "inside a surrogate pair");
        assert_eq!(utf16_to_cp(t, cp_to_utf16(t, 15)), Some(15));
    }

    #[test]
    fn gold_texts_are_trimmed_with_their_spans() {
        let mut items = vec![GoldItem {
            location: "g:1".into(),
            text: "  Київ 👍🏽 sent aid. \n".into(),
            annotations: vec![Annotation {
                coder: "a".into(),
                entities: Some(vec![Span {
                    start: 2,
                    end: 6,
                    label: "LOC".into(),
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }];
        validate(&mut items, &LabelSet::default()).unwrap();
        assert_eq!(items[0].text, "Київ 👍🏽 sent aid.");
        let e = &items[0].annotations[0].entities.as_ref().unwrap()[0];
        assert_eq!((e.start, e.end), (0, 4));
        assert_eq!(cp_slice(&items[0].text, 0, 4), Some("Київ"));
    }

    #[test]
    fn labels_match_by_id_label_or_slug() {
        let l = LabelSet {
            topics: vec![("science_technology".into(), "science/technology".into())],
            stances: vec![("covid_vaccine".into(), "the COVID-19 vaccine".into())],
            ..Default::default()
        };
        assert_eq!(
            l.topic("science/technology").as_deref(),
            Some("science_technology")
        );
        assert_eq!(
            l.topic("Science_Technology").as_deref(),
            Some("science_technology")
        );
        assert_eq!(l.topic("").as_deref(), Some(NONE));
        assert_eq!(l.topic("sports"), None);
        assert_eq!(l.target("Covid Vaccine").as_deref(), Some("covid_vaccine"));
        assert_eq!(
            l.target("stance_covid_vaccine").as_deref(),
            Some("covid_vaccine")
        );
        assert_eq!(stance_label("FAVOR"), Some("favor"));
        assert_eq!(stance_label("maybe"), None);
    }
}
