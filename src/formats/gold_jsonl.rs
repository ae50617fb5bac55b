//! paratag's own gold JSONL, one paragraph per line:
//!
//! ```json
//! {"article_id": "a1", "paragraph": 0, "text": "…", "topic": "economy",
//!  "stance": {"ukraine_aid": "favor"}, "entities": [{"start": 0, "end": 4, "label": "LOC"}],
//!  "coder": "ann1"}
//! ```
//!
//! Offsets are code points. Every key but `text` is optional; a missing key
//! means "not labeled". Other keys are kept as fields for `--by`.

use super::{loc, parse_jsonl, pred_spans, Annotation, GoldItem, SheetSpec};
use crate::error::{Error, Result};
use crate::record::Pred;
use serde_json::{json, Value};
use std::path::Path;

const KEYS: &[&str] = &[
    "article_id",
    "paragraph",
    "text",
    "topic",
    "stance",
    "entities",
    "holder",
    "coder",
];

pub fn read(path: &Path) -> Result<Vec<GoldItem>> {
    let mut out = Vec::new();
    for (line, v) in parse_jsonl(path)? {
        let at = |m: String| Error::input(loc(path, line), m);
        let text = super::record_text(&v, &loc(path, line))?;
        let mut a = Annotation {
            coder: super::coder_of(&v, &["coder"]),
            ..Default::default()
        };
        match v.get("topic") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => a.topic = Some(s.clone()),
            Some(x) => return Err(at(format!("\"topic\" must be a string, not {x}"))),
        }
        a.stances = target_map(&v, "stance").map_err(at)?;
        a.holders = target_map(&v, "holder").map_err(at)?;
        match v.get("entities") {
            None | Some(Value::Null) => {}
            Some(Value::Array(xs)) => {
                let spans = xs
                    .iter()
                    .map(|x| super::span_object(x, &text))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(at)?;
                a.entities = Some(spans);
            }
            Some(x) => return Err(at(format!("\"entities\" must be a list, not {x}"))),
        }
        out.push(super::json_item(
            loc(path, line),
            v.as_object().expect("object"),
            text,
            vec![a],
            KEYS,
        )?);
    }
    Ok(out)
}

/// A `{"<target>": "<label>", ...}` object (`stance`, `holder`); null
/// values and a missing key mean "not labeled".
fn target_map(
    v: &Value,
    key: &str,
) -> std::result::Result<std::collections::BTreeMap<String, String>, String> {
    let mut out = std::collections::BTreeMap::new();
    match v.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, x) in m {
                match x {
                    Value::Null => {}
                    Value::String(s) => {
                        out.insert(k.clone(), s.clone());
                    }
                    _ => return Err(format!("{key} {k:?} must be a string, not {x}")),
                }
            }
        }
        Some(x) => return Err(format!("\"{key}\" must be an object, not {x}")),
    }
    Ok(out)
}

/// A gold skeleton: the paragraphs with empty labels, or with the model's
/// labels filled in (to be corrected) unless `blind`.
pub fn write(rows: &[&Pred], spec: &SheetSpec) -> Vec<u8> {
    super::jsonl(rows.iter().map(|p| {
        let mut o = Value::Object(super::key_record(p, spec));
        o["text"] = json!(p.text);
        if !spec.blind {
            o["topic"] = json!(p.topic.as_deref().unwrap_or(super::NONE));
            let st: serde_json::Map<String, Value> = spec
                .targets
                .iter()
                .map(|t| {
                    let l = p.stances.get(t).and_then(|s| s.label.clone());
                    (t.clone(), json!(l.unwrap_or_else(|| super::NONE.into())))
                })
                .collect();
            o["stance"] = Value::Object(st);
            let holders: serde_json::Map<String, Value> = spec
                .targets
                .iter()
                .filter_map(|t| {
                    let h = p.stances.get(t)?.holder.clone()?;
                    Some((t.clone(), json!(h)))
                })
                .collect();
            if !holders.is_empty() {
                o["holder"] = Value::Object(holders);
            }
            if p.entities.is_some() {
                o["entities"] = Value::Array(
                    pred_spans(p)
                        .iter()
                        .map(|s| json!({"start": s.start, "end": s.end, "label": s.label}))
                        .collect(),
                );
            }
        }
        o
    }))
}
