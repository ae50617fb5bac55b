//! Doccano JSONL: `{"text": …, "label": [[start, end, "LOC"], …]}`, offsets
//! in code points (Python string indices).
//!
//! Topic and stance travel as category labels, in `label` (text
//! classification projects) or `cats`: `"topic:economy"`,
//! `"stance_ukraine_aid:favor"`, or a bare topic id. `sample` puts the model's
//! spans in `label` as pre-annotations (empty with `--blind`) and its
//! categories in `cats`, with `article_id`, `paragraph` and
//! `offset_unit: "codepoint"` as extra fields, which Doccano keeps as metadata.

use super::{loc, parse_jsonl, pred_spans, spans_json, Annotation, GoldItem, SheetSpec, NONE};
use crate::error::{Error, Result};
use crate::record::Pred;
use crate::task::Task;
use serde_json::{json, Value};
use std::path::Path;

pub fn write(rows: &[&Pred], spec: &SheetSpec) -> Vec<u8> {
    super::jsonl(rows.iter().map(|p| {
        let mut o = Value::Object(super::key_record(p, spec));
        o["text"] = json!(p.text);
        o["label"] = json!([]);
        if !spec.blind {
            o["label"] = spans_json(&p.text, &pred_spans(p), false);
            o["cats"] = json!(categories(p, spec));
        }
        o
    }))
}

/// The model's topic and stances as `task:label` categories.
pub fn categories(p: &Pred, spec: &SheetSpec) -> Vec<String> {
    let mut c = Vec::new();
    if !spec.topic_ids.is_empty() {
        c.push(format!(
            "{}:{}",
            Task::Topic,
            p.topic.as_deref().unwrap_or(NONE)
        ));
    }
    for t in spec.targets {
        let l = p.stances.get(t).and_then(|s| s.label.clone());
        let [stance, holder] = Task::stance_pair(t);
        c.push(format!("{stance}:{}", l.as_deref().unwrap_or(NONE)));
        if let Some(h) = p.stances.get(t).and_then(|s| s.holder.as_deref()) {
            c.push(format!("{holder}:{h}"));
        }
    }
    c
}

/// Puts a `task:label` (or bare topic) category into an annotation.
pub fn add_category(a: &mut Annotation, cat: &str) {
    match cat.split_once(':') {
        // A bare target names its stance.
        Some((t, v)) => a.put(
            Task::parse(t).unwrap_or_else(|| Task::Stance(t.into())),
            v.to_string(),
        ),
        None => a.topic = Some(cat.to_string()),
    }
}

pub fn read(path: &Path) -> Result<Vec<GoldItem>> {
    let mut out = Vec::new();
    for (line, v) in parse_jsonl(path)? {
        let at = |m: String| Error::input(loc(path, line), m);
        let text = super::record_text(&v, &loc(path, line))?;
        let coder = super::coder_of(&v, &["annotator", "user", "annotation_approver"]);
        let mut a = Annotation {
            coder,
            ..Default::default()
        };
        for key in ["label", "entities", "cats"] {
            let Some(xs) = v.get(key) else { continue };
            let xs = xs
                .as_array()
                .ok_or_else(|| at(format!("\"{key}\" must be a list")))?;
            for x in xs {
                match x {
                    Value::String(c) => add_category(&mut a, c),
                    Value::Array(_) => {
                        let s = super::span_from_json(x, &text).map_err(&at)?;
                        a.entities.get_or_insert_with(Vec::new).push(s);
                    }
                    _ => {
                        return Err(at(format!(
                            "\"{key}\" entry {x} is neither a span nor a category"
                        )))
                    }
                }
            }
        }
        // An empty `label` list with no categories anywhere is "no entities"
        // (a sequence-labeling export); in a classification export it is absent.
        let empty_label = v
            .get("label")
            .and_then(Value::as_array)
            .is_some_and(|l| l.is_empty());
        if empty_label && a.is_empty() {
            a.entities = Some(Vec::new());
        }
        out.push(super::json_item(
            loc(path, line),
            v.as_object().expect("object"),
            text,
            vec![a],
            &[
                "label",
                "entities",
                "cats",
                "id",
                "annotator",
                "user",
                "annotation_approver",
            ],
        )?);
    }
    Ok(out)
}
