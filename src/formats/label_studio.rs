//! Label Studio: tasks JSON for import (`sample`), export JSON for gold.
//!
//! Tasks carry the paragraph in `data.text` (with `article_id`, `paragraph`
//! and `offset_unit: "codepoint"`) and, unless `--blind`, the model's output
//! as `predictions[0].result[]`: `choices` for `topic` and each
//! `stance_<target>`, `labels` spans for `entities`, each with its `score`.
//! [`label_config`] gives the matching labeling interface.
//!
//! Current Label Studio counts span offsets in code points; exports from old
//! versions count UTF-16 code units. Each span's `value.text` tells which:
//! the reader takes offsets as code points when the slice matches, converts
//! from UTF-16 when only that matches, and stops with an error otherwise.

use super::{cp_slice, json_str, loc, utf16_to_cp, Annotation, GoldItem, SheetSpec, Span, NONE};
use crate::error::{Error, Result};
use crate::record::Pred;
use crate::task::Task;
use serde_json::{json, Value};
use std::path::Path;

pub fn write(rows: &[&Pred], spec: &SheetSpec) -> Vec<u8> {
    let tasks: Vec<Value> = rows
        .iter()
        .map(|p| {
            let mut data = Value::Object(super::key_record(p, spec));
            data["text"] = json!(p.text);
            let mut task = json!({ "data": data });
            if !spec.blind {
                let mut result = Vec::new();
                if !spec.topic_ids.is_empty() {
                    result.push(json!({
                        "id": Task::Topic.name(), "from_name": Task::Topic.name(), "to_name": "text", "type": "choices",
                        "value": {"choices": [p.topic.as_deref().unwrap_or(NONE)]},
                        "score": p.topic_score,
                    }));
                }
                for t in spec.targets {
                    let s = p.stances.get(t).cloned().unwrap_or_default();
                    let [name, holder] = Task::stance_pair(t).map(|t| t.name());
                    result.push(json!({
                        "id": name, "from_name": name, "to_name": "text", "type": "choices",
                        "value": {"choices": [s.label.as_deref().unwrap_or(NONE)]},
                        "score": s.score,
                    }));
                    if let Some(h) = &s.holder {
                        result.push(json!({
                            "id": holder, "from_name": holder, "to_name": "text", "type": "choices",
                            "value": {"choices": [h]},
                            "score": s.reported,
                        }));
                    }
                }
                for (i, e) in p.entities.iter().flatten().enumerate() {
                    let s = &e.span;
                    result.push(json!({
                        "id": format!("e{i}"), "from_name": Task::Entities.name(), "to_name": "text",
                        "type": "labels",
                        "value": {
                            "start": s.start, "end": s.end,
                            "text": cp_slice(&p.text, s.start as usize, s.end as usize).unwrap_or(""),
                            "labels": [s.label],
                        },
                        "score": e.score,
                    }));
                }
                task["predictions"] = json!([{
                    "model_version": spec.model_version,
                    "score": p.topic_score,
                    "result": result,
                }]);
            }
            task
        })
        .collect();
    let mut out = serde_json::to_vec_pretty(&Value::Array(tasks)).expect("JSON");
    out.push(b'\n');
    out
}

/// The labeling interface XML for these tasks.
pub fn label_config(spec: &SheetSpec) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
    };
    let mut x = String::from("<View>\n");
    if !spec.entity_types.is_empty() {
        x += "  <Labels name=\"entities\" toName=\"text\">\n";
        for t in spec.entity_types {
            x += &format!("    <Label value=\"{}\"/>\n", esc(t));
        }
        x += "  </Labels>\n";
    }
    x += "  <Text name=\"text\" value=\"$text\"/>\n";
    if !spec.topic_ids.is_empty() {
        x += &format!(
            "  <Header value=\"Topic\"/>\n  <Choices name=\"{}\" toName=\"text\" choice=\"single\">\n",
            Task::Topic
        );
        for t in spec.topic_ids.iter().map(String::as_str).chain([NONE]) {
            x += &format!("    <Choice value=\"{}\"/>\n", esc(t));
        }
        x += "  </Choices>\n";
    }
    for t in spec.targets {
        let [stance, holder] = Task::stance_pair(t);
        let choices = |task: &Task| -> String {
            let labels = task.fixed_labels().unwrap_or_default();
            labels
                .iter()
                .map(|l| format!("    <Choice value=\"{l}\"/>\n"))
                .collect()
        };
        x += &format!(
            "  <Header value=\"Stance: {}\"/>\n  <Choices name=\"{}\" toName=\"text\" choice=\"single\">\n{}  </Choices>\n  <Header value=\"Whose position (favor or against only)\"/>\n  <Choices name=\"{}\" toName=\"text\" choice=\"single\">\n{}  </Choices>\n",
            esc(t),
            esc(&stance.name()),
            choices(&stance),
            esc(&holder.name()),
            choices(&holder),
        );
    }
    x + "</View>\n"
}

pub fn read(path: &Path) -> Result<Vec<GoldItem>> {
    let text = super::read_text(path)?;
    let tasks: Vec<&serde_json::value::RawValue> = serde_json::from_str(&text).map_err(|e| {
        Error::input(
            loc(path, e.line()),
            format!("not a Label Studio export (a JSON list of tasks): {e}"),
        )
    })?;
    let mut out = Vec::new();
    for raw in tasks {
        // The task's line, from where its text sits in the file.
        let byte = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        let line = text.as_bytes()[..byte]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        let at = |m: String| Error::input(loc(path, line), m);
        let task: Value = serde_json::from_str(raw.get()).map_err(|e| at(e.to_string()))?;
        let data = task
            .get("data")
            .and_then(Value::as_object)
            .ok_or_else(|| at("task has no \"data\" object".into()))?;
        let ptext = data
            .get("text")
            .and_then(Value::as_str)
            .ok_or_else(|| at("task has no \"data.text\"".into()))?
            .to_string();
        let mut annotations = Vec::new();
        for (k, ann) in task
            .get("annotations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if ann.get("was_cancelled").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            annotations.push(annotation(ann, k, &ptext).map_err(&at)?);
        }
        out.push(super::json_item(
            loc(path, line),
            data,
            ptext,
            annotations,
            &[],
        )?);
    }
    Ok(out)
}

/// One coder's annotation of a task's text: choices and labeled spans.
fn annotation(ann: &Value, k: usize, text: &str) -> std::result::Result<Annotation, String> {
    let coder = match ann.get("completed_by") {
        Some(Value::Object(o)) => o
            .get("email")
            .and_then(json_str)
            .or_else(|| o.get("id").and_then(json_str)),
        Some(v) => json_str(v),
        None => None,
    }
    .unwrap_or_else(|| format!("annotation{k}"));
    let mut a = Annotation {
        coder,
        ..Default::default()
    };
    for r in ann
        .get("result")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let from = r.get("from_name").and_then(Value::as_str).unwrap_or("");
        let value = r.get("value").cloned().unwrap_or(Value::Null);
        match r.get("type").and_then(Value::as_str).unwrap_or("") {
            "choices" => {
                let c = value
                    .get("choices")
                    .and_then(Value::as_array)
                    .and_then(|c| c.first())
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("result {from:?} has no choice"))?
                    .to_string();
                if let Some(task) = Task::parse(from) {
                    a.put(task, c);
                }
            }
            "labels" => {
                let span = ls_span(text, &value)?;
                a.entities.get_or_insert_with(Vec::new).push(span);
            }
            _ => {}
        }
    }
    Ok(a)
}

/// One `labels` span, in code points (see the module note on units).
fn ls_span(text: &str, value: &Value) -> std::result::Result<Span, String> {
    let num = |k: &str| {
        value
            .get(k)
            .and_then(Value::as_u64)
            .map(|n| n as usize)
            .ok_or_else(|| format!("span {value}: \"{k}\" must be a non-negative integer"))
    };
    let (start, end) = (num("start")?, num("end")?);
    let label = value
        .get("labels")
        .and_then(Value::as_array)
        .and_then(|l| l.first())
        .and_then(Value::as_str)
        .ok_or_else(|| format!("span {value} has no label"))?
        .to_string();
    let mk = |s: usize, e: usize| Span {
        start: s as u32,
        end: e as u32,
        label: label.clone(),
    };
    let Some(given) = value.get("text").and_then(Value::as_str) else {
        return Ok(mk(start, end));
    };
    if cp_slice(text, start, end) == Some(given) {
        return Ok(mk(start, end));
    }
    if let (Some(s), Some(e)) = (utf16_to_cp(text, start), utf16_to_cp(text, end)) {
        if cp_slice(text, s, e) == Some(given) {
            return Ok(mk(s, e));
        }
    }
    Err(format!(
        "span [{start}, {end}) says {given:?}, which is not the text there in code points or in UTF-16 units"
    ))
}
