//! CSV / TSV sheets: one row per paragraph, or per paragraph and coder.
//!
//! `sample` writes `article_id, paragraph, <extra>, text`, one empty column per
//! task for the coders (`topic`, `stance_<target>`, `entities`), `coder`,
//! `notes`, `offset_unit`, then the model's `pred_*` columns (left out with
//! `--blind`). Entities are JSON `[[start, end, "LABEL"], ...]` in Unicode
//! code points; a fourth element, the entity text, is checked against the slice.
//!
//! As gold, any CSV/TSV with a `text` column is read: `--gold-col FIELD=COLUMN`
//! maps other column names (fields: `article_id`, `paragraph`, `text`,
//! `topic`, `stance_<target>`, `entities`, `coder`, and for long tables with
//! one target per row `target` plus `stance`). An empty cell is "not labeled".

use super::{
    loc, pred_spans, spans_json, Annotation, Format, GoldItem, ReadOptions, SheetSpec, NONE,
};
use crate::error::{Error, Result};
use crate::record::Pred;
use crate::task::{Col, Task};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

pub fn write(fmt: Format, rows: &[&Pred], spec: &SheetSpec) -> Result<Vec<u8>> {
    let has_entities = rows.iter().any(|p| p.entities.is_some());
    let has_topic = !spec.topic_ids.is_empty();
    let mut head: Vec<String> = vec!["article_id".into(), "paragraph".into()];
    head.extend(spec.extra.iter().cloned());
    head.push("text".into());
    if has_topic {
        head.push(Task::Topic.name());
    }
    for t in spec.targets {
        head.extend(Task::stance_pair(t).map(|t| t.name()));
    }
    if has_entities {
        head.push(Task::Entities.name());
    }
    head.extend(["coder", "notes", "offset_unit"].map(String::from));
    if !spec.blind {
        let pred = |c: String| format!("pred_{c}");
        if has_topic {
            head.extend([Task::Topic.name(), Task::Topic.col(Col::Score)].map(pred));
        }
        for t in spec.targets {
            let [stance, holder] = Task::stance_pair(t);
            head.extend([stance.name(), stance.col(Col::Score), holder.name()].map(pred));
        }
        if has_entities {
            head.push(pred(Task::Entities.name()));
        }
    }
    let mut w = csv::WriterBuilder::new()
        .delimiter(if fmt == Format::Tsv { b'\t' } else { b',' })
        .terminator(if fmt == Format::XlsxCsv {
            csv::Terminator::CRLF
        } else {
            csv::Terminator::Any(b'\n')
        })
        .from_writer(Vec::new());
    let werr = |e: csv::Error| Error::Config(format!("writing the sheet: {e}"));
    w.write_record(&head).map_err(werr)?;
    let num = |x: Option<f32>| x.map(|s| format!("{s:.6}")).unwrap_or_default();
    for p in rows {
        let mut r: Vec<String> = vec![p.article_id.clone(), p.paragraph.to_string()];
        r.extend(
            spec.extra
                .iter()
                .map(|f| p.fields.get(f).cloned().unwrap_or_default()),
        );
        r.push(p.text.clone());
        let blanks =
            usize::from(has_topic) + 2 * spec.targets.len() + usize::from(has_entities) + 2;
        r.extend(std::iter::repeat_n(String::new(), blanks));
        r.push("codepoint".into());
        if !spec.blind {
            if has_topic {
                r.push(p.topic.clone().unwrap_or_else(|| NONE.into()));
                r.push(num(p.topic_score));
            }
            for t in spec.targets {
                let s = p.stances.get(t).cloned().unwrap_or_default();
                r.push(s.label.unwrap_or_default());
                r.push(num(s.score));
                r.push(s.holder.unwrap_or_default());
            }
            if has_entities {
                r.push(spans_json(&p.text, &pred_spans(p), true).to_string());
            }
        }
        w.write_record(r.iter().map(|c| guard(c).into_owned()))
            .map_err(werr)?;
    }
    let mut out = w.into_inner().map_err(|e| Error::Config(e.to_string()))?;
    if fmt == Format::XlsxCsv {
        out.splice(0..0, *b"\xEF\xBB\xBF");
    }
    Ok(out)
}

/// First characters that make a spreadsheet run a cell as a formula.
const FORMULA: &[char] = &['=', '+', '-', '@', '\t', '\r'];

fn guarded(cell: &str) -> bool {
    let mut c = cell.chars();
    match c.next() {
        Some('\'') => c.next().is_some_and(|d| d == '\'' || FORMULA.contains(&d)),
        _ => false,
    }
}

/// A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return
/// would run as a formula in Excel, LibreOffice or Google Sheets: it is
/// written behind a `'`. So is a cell that already looks guarded, so that
/// [`unguard`] gives back exactly the text.
pub fn guard(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA) || guarded(cell) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// The text a [`guard`]ed cell holds.
pub fn unguard(cell: &str) -> &str {
    if guarded(cell) {
        &cell[1..]
    } else {
        cell
    }
}

/// The items, and the encoding note when the file was not plain UTF-8.
pub fn read(
    path: &Path,
    fmt: Format,
    opts: &ReadOptions,
) -> Result<(Vec<GoldItem>, Option<String>)> {
    let tsv = fmt == Format::Tsv;
    let table = crate::table::Table::open(path, &opts.table, tsv)?;
    let encoding = table.encoding_note();
    let cols = Columns::of(path, &table, opts)?;
    let mut out = Vec::new();
    let mut rdr = table.reader;
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            Error::input(loc(path, line), crate::table::csv_message(&e))
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let rec: csv::StringRecord = rec.iter().map(unguard).collect();
        out.push(
            cols.item(&rec, line)
                .map_err(|m| Error::input(loc(path, line), m))?,
        );
    }
    Ok((out, encoding))
}

/// Where a sheet's fields are: the header read once for all rows.
struct Columns {
    path: std::path::PathBuf,
    header: Vec<String>,
    /// field -> column index (`id` stands for a missing `article_id`;
    /// `--gold-col` mappings included).
    col: HashMap<String, usize>,
    text: usize,
    holder: Option<usize>,
    /// A long stance table's `target` and `stance` columns.
    long: Option<(usize, usize)>,
    /// Wide stance and holder columns (`stance_T`, `stance_T_holder`).
    stances: Vec<(Task, usize)>,
    /// Columns read into the annotation, not kept as fields.
    known: Vec<usize>,
    topic: String,
    entities: String,
}

impl Columns {
    fn of(path: &Path, table: &crate::table::Table, opts: &ReadOptions) -> Result<Columns> {
        let bad = |m: String| Error::input(loc(path, 1), m);
        let header = table.headers.clone();
        let mut col: HashMap<String, usize> = HashMap::new();
        for (i, h) in header.iter().enumerate() {
            col.entry(h.clone()).or_insert(i);
        }
        if !col.contains_key("article_id") {
            if let Some(&i) = col.get("id") {
                col.insert("article_id".into(), i);
            }
        }
        let mut mapped = Vec::new();
        for (field, column) in &opts.columns {
            let i = header.iter().position(|h| h == column).ok_or_else(|| {
                bad(format!(
                    "--gold-col {field}={column}: no column {column:?} (columns: {})",
                    crate::text::cut(&header.join(", "))
                ))
            })?;
            col.insert(field.clone(), i);
            mapped.push(i);
        }
        let text = match col.get("text") {
            Some(&i) => i,
            None => return Err(table.missing(path, "text", "map one with --gold-col text=COLUMN")),
        };
        let long = match (col.get("target"), col.get("stance")) {
            (Some(&t), Some(&s)) => Some((t, s)),
            (None, None) => None,
            _ => {
                return Err(bad(
                    "a long stance table needs both a \"target\" and a \"stance\" column".into(),
                ))
            }
        };
        let stances: Vec<(Task, usize)> = col
            .iter()
            .filter_map(|(f, &i)| match Task::of_column(f)? {
                (t @ (Task::Stance(_) | Task::Holder(_)), Col::Label) => Some((t, i)),
                _ => None,
            })
            .collect();
        let (topic, entities) = (Task::Topic.name(), Task::Entities.name());
        let fixed = [
            "article_id",
            "paragraph",
            "text",
            &topic,
            &entities,
            "coder",
            "target",
            "stance",
            "holder",
        ];
        let known = fixed
            .iter()
            .filter_map(|f| col.get(*f).copied())
            .chain(stances.iter().map(|s| s.1))
            .chain(mapped)
            .collect();
        Ok(Columns {
            path: path.to_path_buf(),
            holder: col.get("holder").copied(),
            header,
            col,
            text,
            long,
            stances,
            known,
            topic,
            entities,
        })
    }

    /// One row as a gold item; an error message for its line.
    fn item(&self, rec: &csv::StringRecord, line: usize) -> std::result::Result<GoldItem, String> {
        let get = |f: &str| {
            self.col
                .get(f)
                .and_then(|&i| rec.get(i))
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let text = rec.get(self.text).unwrap_or("").to_string();
        if text.trim().is_empty() {
            return Err("empty \"text\"".into());
        }
        let mut a = Annotation {
            coder: get("coder").unwrap_or("gold").to_string(),
            topic: get(&self.topic).map(str::to_string),
            ..Default::default()
        };
        for (t, i) in &self.stances {
            if let Some(v) = rec.get(*i).map(str::trim).filter(|s| !s.is_empty()) {
                a.put(t.clone(), v.to_string());
            }
        }
        let row_targets = self.long_stance(rec, &mut a)?;
        if let Some(e) = get(&self.entities) {
            a.entities = Some(entities_cell(e, &text)?);
        }
        let paragraph =
            match get("paragraph") {
                None => None,
                Some(p) => Some(p.parse::<u32>().map_err(|_| {
                    format!("\"paragraph\" must be a non-negative integer, not {p:?}")
                })?),
            };
        let fields = self
            .header
            .iter()
            .enumerate()
            .filter(|(i, h)| {
                !self.known.contains(i)
                    && !h.starts_with("pred_")
                    && *h != "notes"
                    && *h != "offset_unit"
            })
            .filter_map(|(i, h)| rec.get(i).map(|v| (h.clone(), v.to_string())))
            .collect();
        Ok(GoldItem {
            location: loc(&self.path, line),
            article_id: get("article_id").map(str::to_string),
            paragraph,
            text,
            annotations: vec![a],
            fields,
            row_targets,
        })
    }

    /// A long table's row: its target's stance and holder into `a`; the
    /// targets the row names.
    fn long_stance(
        &self,
        rec: &csv::StringRecord,
        a: &mut Annotation,
    ) -> std::result::Result<BTreeSet<String>, String> {
        let mut row_targets = BTreeSet::new();
        let Some((ti, si)) = self.long else {
            return Ok(row_targets);
        };
        let (t, s) = (
            rec.get(ti).unwrap_or("").trim(),
            rec.get(si).unwrap_or("").trim(),
        );
        if !s.is_empty() {
            if t.is_empty() {
                return Err("a stance without a target".into());
            }
            a.stances.insert(t.to_string(), s.to_string());
            row_targets.insert(t.to_string());
        }
        if let Some(h) = self.holder.and_then(|i| rec.get(i)).map(str::trim) {
            if !h.is_empty() {
                a.holders.insert(t.to_string(), h.to_string());
            }
        }
        Ok(row_targets)
    }
}

/// An `entities` cell: JSON `[[start, end, "LABEL"], ...]` over `text`.
fn entities_cell(cell: &str, text: &str) -> std::result::Result<Vec<super::Span>, String> {
    let v: serde_json::Value = serde_json::from_str(cell)
        .map_err(|err| format!("\"entities\" is not JSON [[start, end, \"LABEL\"], ...]: {err}"))?;
    let xs = v
        .as_array()
        .ok_or_else(|| "\"entities\" must be a JSON list".to_string())?;
    xs.iter().map(|x| super::span_from_json(x, text)).collect()
}

#[cfg(test)]
mod tests {
    use super::{guard, unguard};

    #[test]
    fn formula_cells_are_guarded_and_read_back_as_written() {
        for t in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-- a dialogue dash",
            "@SUM(A1)",
            "\tindent",
            "'=already quoted",
            "''",
            "'plain apostrophe",
            "plain",
            "",
            "كييف = Kyiv",
        ] {
            let g = guard(t);
            assert!(!g.starts_with(['=', '+', '-', '@', '\t', '\r']), "{g:?}");
            assert_eq!(unguard(&g), t, "{t:?}");
        }
        assert_eq!(guard("plain"), "plain");
        assert_eq!(guard("=1+1"), "'=1+1");
    }
}
