//! Prodigy JSONL: `{"text", "spans": [{"start", "end", "label"}], "meta": {…},
//! "answer"}`, offsets in code points (Python string indices).
//!
//! `sample` writes the paragraph with `meta` (`article_id`, `paragraph`,
//! `offset_unit`, the model's topic and stances unless `--blind`), the model's
//! spans, and the topic and stance choices as `options` with the model's
//! picks in `accept`. As gold, only `"answer": "accept"` records carry labels:
//! their `spans`, and `accept` choices (`topic:<id>` or a bare topic id,
//! `stance_<target>:<label>`). Rejected and ignored records, and records with
//! no answer yet, count as unlabeled.

use super::{json_str, loc, parse_jsonl, Annotation, GoldItem, SheetSpec, NONE};
use crate::error::{Error, Result};
use crate::record::Pred;
use crate::task::Task;
use serde_json::{json, Value};
use std::path::Path;

pub fn write(rows: &[&Pred], spec: &SheetSpec) -> Vec<u8> {
    let mut options: Vec<Value> = Vec::new();
    for t in spec
        .topic_ids
        .iter()
        .map(String::as_str)
        .chain((!spec.topic_ids.is_empty()).then_some(NONE))
    {
        options.push(json!({"id": format!("{}:{t}", Task::Topic), "text": format!("topic: {t}")}));
    }
    for t in spec.targets {
        let stance = Task::Stance(t.clone());
        for l in crate::task::STANCE_LABELS {
            options.push(json!({"id": format!("{stance}:{l}"), "text": format!("{t}: {l}")}));
        }
    }
    super::jsonl(rows.iter().map(|p| {
        let meta = Value::Object(super::key_record(p, spec));
        let mut o = json!({"text": p.text, "meta": meta});
        if !options.is_empty() {
            o["options"] = json!(options);
        }
        if !spec.blind {
            o["spans"] = Value::Array(
                p.entities
                    .iter()
                    .flatten()
                    .map(|e| json!({"start": e.span.start, "end": e.span.end, "label": e.span.label, "score": e.score}))
                    .collect(),
            );
            let cats = super::doccano::categories(p, spec);
            for c in &cats {
                let (task, label) = c.split_once(':').expect("task:label");
                o["meta"][format!("pred_{task}")] = json!(label);
            }
            o["accept"] = json!(cats);
        }
        o
    }))
}

pub fn read(path: &Path) -> Result<Vec<GoldItem>> {
    let mut out = Vec::new();
    for (line, v) in parse_jsonl(path)? {
        let at = |m: String| Error::input(loc(path, line), m);
        let text = super::record_text(&v, &loc(path, line))?;
        let meta = v
            .get("meta")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut annotations = Vec::new();
        match v.get("answer").and_then(Value::as_str) {
            Some("accept") => {
                let coder = super::coder_of(&v, &["_annotator_id", "_session_id"]);
                let mut a = Annotation {
                    coder,
                    ..Default::default()
                };
                if let Some(spans) = v.get("spans") {
                    let es = spans
                        .as_array()
                        .ok_or_else(|| at("\"spans\" must be a list".into()))?
                        .iter()
                        .map(|x| super::span_object(x, &text))
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(&at)?;
                    a.entities = Some(es);
                }
                for c in v
                    .get("accept")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let c = json_str(c)
                        .ok_or_else(|| at(format!("accept entry {c} is not a string")))?;
                    super::doccano::add_category(&mut a, &c);
                }
                annotations.push(a);
            }
            Some("reject") | Some("ignore") | None => {}
            Some(x) => {
                return Err(at(format!(
                    "unknown answer {x:?}; expected accept, reject or ignore"
                )))
            }
        }
        out.push(super::json_item(
            loc(path, line),
            &meta,
            text,
            annotations,
            &[],
        )?);
    }
    Ok(out)
}
