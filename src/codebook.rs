//! The codebook: a TOML file saying what to tag (topics and stance targets).
//!
//! Every error names the file, the line and the key, since researchers edit
//! codebooks by hand and iterate on them. Spans come from `toml::Spanned`.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// How a topic set or stance target is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// A trained head if one is given for it, else NLI zero-shot if an NLI
    /// model is given, else embedding similarity.
    Auto,
    Nli,
    Embedding,
    /// A trained head (`tag --heads DIR`) for this topic set or target.
    Head,
}

#[derive(Debug, Clone)]
pub struct Codebook {
    pub path: PathBuf,
    /// The full file text, stored in the output metadata.
    pub text: String,
    pub name: String,
    pub hypothesis_language: String,
    pub topics: TopicSet,
    pub stances: Vec<StanceTarget>,
}

#[derive(Debug, Clone)]
pub struct TopicSet {
    pub template: String,
    pub multi_label: bool,
    pub threshold: f32,
    pub method: Method,
    /// Softmax temperature for embedding similarity.
    pub temperature: f32,
    pub topics: Vec<Topic>,
}

#[derive(Debug, Clone)]
pub struct Topic {
    pub id: String,
    pub label: String,
    /// NLI hypothesis: the `hypothesis` key, else the template filled with the label.
    pub hypothesis: String,
    /// Text embedded for similarity zero-shot: `description`, else `label`.
    pub embedding_text: String,
}

/// Which reading of a stance target the main `stance_<id>` column gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Holder {
    /// The position the paragraph expresses or reports, whoever holds it
    /// (`stance_<id>_holder` says whose).
    #[default]
    Any,
    /// Only the author's own position: a reported one is `none`.
    Author,
}

#[derive(Debug, Clone)]
pub struct StanceTarget {
    pub id: String,
    pub target: String,
    pub favor: String,
    pub against: String,
    /// Neutral anchor for embedding similarity.
    pub neutral: String,
    pub threshold: f32,
    /// Whether the codebook sets `threshold`; where it does not, a trained
    /// head's own (fitted on its dev set) takes the place of 0.5
    /// ([`crate::job::head_thresholds`]).
    pub threshold_given: bool,
    pub only_topics: Option<Vec<String>>,
    pub method: Method,
    pub temperature: f32,
    pub holder: Holder,
}

impl StanceTarget {
    /// What a head that answers any target reads before the paragraph: the
    /// target and both of its sentences, so a codebook's wording (which
    /// side is "favor") reaches the model. Training builds the same text.
    pub fn conditioning_text(&self) -> String {
        conditioning_text(&self.target, &self.favor, &self.against)
    }
}

/// [`StanceTarget::conditioning_text`] from its parts.
pub fn conditioning_text(target: &str, favor: &str, against: &str) -> String {
    format!("{target}. {favor} {against}")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    codebook: Spanned<RawMeta>,
    topics: Option<Spanned<RawTopics>>,
    #[serde(default)]
    topic: Vec<Spanned<RawTopic>>,
    #[serde(default)]
    stance: Vec<Spanned<RawStance>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    name: Spanned<String>,
    hypothesis_language: Option<String>,
    #[allow(dead_code)]
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopics {
    template: Option<Spanned<String>>,
    multi_label: Option<bool>,
    threshold: Option<Spanned<f64>>,
    method: Option<Method>,
    temperature: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    id: Spanned<String>,
    label: Spanned<String>,
    hypothesis: Option<Spanned<String>>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStance {
    id: Spanned<String>,
    target: Spanned<String>,
    favor: Spanned<String>,
    against: Spanned<String>,
    neutral: Option<String>,
    threshold: Option<Spanned<f64>>,
    only_topics: Option<Spanned<Vec<String>>>,
    method: Option<Method>,
    temperature: Option<Spanned<f64>>,
    holder: Option<Holder>,
}

pub const DEFAULT_TEMPLATE: &str = "This text is about {}.";
pub const DEFAULT_TEMPERATURE: f32 = 0.02;

impl Codebook {
    /// The class labels of a head for `task`: the topic ids (no `none`),
    /// or the fixed stance and holder labels. Entities have none.
    pub fn labels(&self, task: &crate::task::Task) -> Vec<String> {
        match task.fixed_labels() {
            Some(l) => l.iter().map(|s| s.to_string()).collect(),
            None if *task == crate::task::Task::Topic => {
                self.topics.topics.iter().map(|t| t.id.clone()).collect()
            }
            None => vec![],
        }
    }

    pub fn load(path: &Path) -> Result<Codebook> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            Error::toml_at(path, &lossy, e.utf8_error().valid_up_to(), "invalid UTF-8")
        })?;
        Self::parse(path, text)
    }

    /// A codebook with no topics and no stance targets, named `name`.
    pub fn empty(name: &str) -> Codebook {
        let text = format!("[codebook]\nname = {}\n", toml::Value::String(name.into()));
        Self::parse(Path::new("(no codebook)"), text).expect("a minimal codebook parses")
    }

    /// This codebook plus a stance target for each of `targets` (stance
    /// target texts, e.g. from a gold file's `target` column), with the
    /// default favor/against sentences, appended to its text so the
    /// output metadata holds them. Returns the new codebook and each
    /// target's id (a slug of its text, made unique).
    pub fn with_targets<'a>(
        &self,
        targets: impl IntoIterator<Item = &'a str>,
    ) -> Result<(Codebook, Vec<(String, String)>)> {
        let mut text = self.text.clone();
        let mut ids: std::collections::HashSet<String> =
            self.stances.iter().map(|s| s.id.clone()).collect();
        let mut added = vec![];
        for t in targets {
            // Ids are ASCII snake_case; other scripts' targets get `t`, `t_2`...
            let ascii: String = crate::text::slug(t)
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let mut base = String::new();
            for c in ascii.chars().take(40) {
                if !(c == '_' && (base.is_empty() || base.ends_with('_'))) {
                    base.push(c);
                }
            }
            let mut base = base.trim_end_matches('_').to_string();
            if !base.starts_with(|c: char| c.is_ascii_lowercase()) {
                base = format!("t_{base}").trim_end_matches('_').to_string();
            }
            // `…_holder` would name another target's holder column.
            if !crate::task::is_valid_target(&base) {
                base.push_str("_t");
            }
            let mut id = base.clone();
            let mut k = 2;
            while !ids.insert(id.clone()) {
                id = format!("{base}_{k}");
                k += 1;
            }
            let q = |v: String| toml::Value::String(v).to_string();
            text += &format!(
                "\n[[stance]]  # a target from the gold's target column\nid = {}\ntarget = {}\nfavor = {}\nagainst = {}\n",
                q(id.clone()),
                q(t.to_string()),
                q(format!("The author supports {t}.")),
                q(format!("The author opposes {t}.")),
            );
            added.push((t.to_string(), id));
        }
        Ok((Self::parse(&self.path, text)?, added))
    }

    pub fn parse(path: &Path, text: String) -> Result<Codebook> {
        let err = |(span, message): SpanErr| Error::toml_at(path, &text, span.start, message);
        let raw: Raw = toml::from_str(&text).map_err(|e| Error::toml(path, &text, &e))?;

        let meta = raw.codebook.get_ref();
        let name = meta.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(err((
                meta.name.span(),
                "key `codebook.name` is empty".into(),
            )));
        }
        let mut set = topic_set(raw.topics.as_ref().map(Spanned::get_ref)).map_err(err)?;
        let mut seen = HashSet::new();
        for (i, t) in raw.topic.iter().enumerate() {
            let t = topic(i, t.get_ref(), &set.template, &mut seen).map_err(err)?;
            set.topics.push(t);
        }
        let mut stances = Vec::new();
        let mut seen_stance = HashSet::new();
        for (i, s) in raw.stance.iter().enumerate() {
            stances.push(stance(i, s.get_ref(), &seen, &mut seen_stance).map_err(err)?);
        }
        Ok(Codebook {
            path: path.into(),
            name,
            hypothesis_language: meta
                .hypothesis_language
                .clone()
                .unwrap_or_else(|| "en".into()),
            topics: set,
            stances,
            text,
        })
    }
}

/// The `[topics]` table's settings, with no topics yet.
fn topic_set(t: Option<&RawTopics>) -> Result<TopicSet, SpanErr> {
    let Some(t) = t else {
        return Ok(TopicSet {
            template: DEFAULT_TEMPLATE.to_string(),
            multi_label: false,
            threshold: 0.30,
            method: Method::Auto,
            temperature: DEFAULT_TEMPERATURE,
            topics: vec![],
        });
    };
    let template = match &t.template {
        Some(s) if !s.get_ref().contains("{}") => {
            return Err((
                s.span(),
                "key `topics.template` must contain `{}` (the topic label)".into(),
            ))
        }
        Some(s) => s.get_ref().clone(),
        None => DEFAULT_TEMPLATE.to_string(),
    };
    Ok(TopicSet {
        template,
        multi_label: t.multi_label.unwrap_or(false),
        threshold: unit(&t.threshold, "topics.threshold", 0.30)?,
        method: t.method.unwrap_or(Method::Auto),
        temperature: positive(&t.temperature, "topics.temperature")?,
        topics: vec![],
    })
}

/// `[[topic]]` number `i`; `seen` collects the ids.
fn topic(
    i: usize,
    t: &RawTopic,
    template: &str,
    seen: &mut HashSet<String>,
) -> Result<Topic, SpanErr> {
    let key = format!("topic[{i}].id");
    check_id(&t.id, &key)?;
    if !seen.insert(t.id.get_ref().clone()) {
        return Err((
            t.id.span(),
            format!("key `{key}`: duplicate topic id `{}`", t.id.get_ref()),
        ));
    }
    let label = t.label.get_ref().trim().to_string();
    if label.is_empty() {
        return Err((t.label.span(), format!("key `topic[{i}].label` is empty")));
    }
    let hypothesis = match &t.hypothesis {
        Some(h) if h.get_ref().trim().is_empty() => {
            return Err((h.span(), format!("key `topic[{i}].hypothesis` is empty")))
        }
        Some(h) => h.get_ref().clone(),
        None => template.replace("{}", &label),
    };
    Ok(Topic {
        id: t.id.get_ref().clone(),
        embedding_text: t.description.clone().unwrap_or_else(|| label.clone()),
        label,
        hypothesis,
    })
}

/// `[[stance]]` number `i`, whose `only_topics` must be in `topics`;
/// `seen` collects the ids.
fn stance(
    i: usize,
    s: &RawStance,
    topics: &HashSet<String>,
    seen: &mut HashSet<String>,
) -> Result<StanceTarget, SpanErr> {
    let key = format!("stance[{i}].id");
    check_id(&s.id, &key)?;
    if !crate::task::is_valid_target(s.id.get_ref()) {
        return Err((
            s.id.span(),
            format!(
                "key `{key}`: a stance id may not end in `_holder` (its holder column would clash)"
            ),
        ));
    }
    if !seen.insert(s.id.get_ref().clone()) {
        return Err((
            s.id.span(),
            format!("key `{key}`: duplicate stance id `{}`", s.id.get_ref()),
        ));
    }
    for (field, v) in [
        ("target", &s.target),
        ("favor", &s.favor),
        ("against", &s.against),
    ] {
        if v.get_ref().trim().is_empty() {
            return Err((v.span(), format!("key `stance[{i}].{field}` is empty")));
        }
    }
    if let Some(list) = &s.only_topics {
        if let Some(t) = list.get_ref().iter().find(|t| !topics.contains(*t)) {
            return Err((
                list.span(),
                format!("key `stance[{i}].only_topics`: unknown topic id `{t}`"),
            ));
        }
    }
    let target = s.target.get_ref().trim().to_string();
    Ok(StanceTarget {
        id: s.id.get_ref().clone(),
        neutral: s
            .neutral
            .clone()
            .unwrap_or_else(|| format!("The text does not take a position on {target}.")),
        target,
        favor: s.favor.get_ref().clone(),
        against: s.against.get_ref().clone(),
        threshold: unit(&s.threshold, &format!("stance[{i}].threshold"), 0.5)?,
        threshold_given: s.threshold.is_some(),
        only_topics: s.only_topics.as_ref().map(|l| l.get_ref().clone()),
        method: s.method.unwrap_or(Method::Auto),
        holder: s.holder.unwrap_or_default(),
        temperature: positive(&s.temperature, &format!("stance[{i}].temperature"))?,
    })
}

type SpanErr = (Range<usize>, String);

fn check_id(id: &Spanned<String>, key: &str) -> Result<(), SpanErr> {
    let s = id.get_ref();
    let ok = !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err((
            id.span(),
            format!("key `{key}`: `{s}` is not a snake_case id (a-z, 0-9, _)"),
        ))
    }
}

fn unit(v: &Option<Spanned<f64>>, key: &str, default: f32) -> Result<f32, SpanErr> {
    match v {
        None => Ok(default),
        Some(x) if (0.0..=1.0).contains(x.get_ref()) => Ok(*x.get_ref() as f32),
        Some(x) => Err((
            x.span(),
            format!("key `{key}` must be between 0 and 1, got {}", x.get_ref()),
        )),
    }
}

fn positive(v: &Option<Spanned<f64>>, key: &str) -> Result<f32, SpanErr> {
    match v {
        None => Ok(DEFAULT_TEMPERATURE),
        Some(x) if *x.get_ref() > 0.0 => Ok(*x.get_ref() as f32),
        Some(x) => Err((
            x.span(),
            format!("key `{key}` must be > 0, got {}", x.get_ref()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Codebook> {
        Codebook::parse(Path::new("cb.toml"), s.to_string())
    }

    const OK: &str = r#"[codebook]
name = "t"

[[topic]]
id = "aid"
label = "aid to Ukraine"

[[stance]]
id = "ukraine_aid"
target = "further aid to Ukraine"
favor = "For."
against = "Against."
only_topics = ["aid"]
"#;

    #[test]
    fn targets_from_gold_get_ids_that_name_no_holder_column() {
        let base = parse(OK).unwrap();
        let (cb, added) = base
            .with_targets(["Card holder", "Card holder!", "Кредит"])
            .unwrap();
        let ids: Vec<&str> = added.iter().map(|a| a.1.as_str()).collect();
        assert_eq!(ids, ["card_holder_t", "card_holder_t_2", "t"]);
        assert_eq!(cb.stances.len(), 4);
        assert_eq!(cb.stances[1].target, "Card holder");
    }

    #[test]
    fn parses_defaults() {
        let cb = parse(OK).unwrap();
        assert_eq!(
            cb.topics.topics[0].hypothesis,
            "This text is about aid to Ukraine."
        );
        assert_eq!(cb.topics.threshold, 0.30);
        assert_eq!(cb.stances[0].threshold, 0.5);
        assert_eq!(
            cb.stances[0].only_topics.as_deref(),
            Some(&["aid".to_string()][..])
        );
    }

    #[test]
    fn errors_name_line_and_key() {
        let bad = OK.replace("id = \"aid\"", "id = \"Aid-1\"");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.starts_with("cb.toml:5:"), "{e}");
        assert!(e.contains("topic[0].id"), "{e}");

        let bad = OK.replace("only_topics = [\"aid\"]", "only_topics = [\"nope\"]");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(
            e.starts_with("cb.toml:13:") && e.contains("unknown topic id `nope`"),
            "{e}"
        );

        let bad = OK.replace("label = \"aid to Ukraine\"", "lable = \"x\"");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains("cb.toml:") && e.contains("lable"), "{e}");

        let bad = format!("{OK}\n[topics]\nthreshold = 1.5\n");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(
            e.starts_with("cb.toml:16:") && e.contains("topics.threshold"),
            "{e}"
        );
    }
}
