//! The records every stage passes around, in one low module that depends on
//! nothing but the codebook: a tagged paragraph as the pipeline makes it
//! ([`Row`]), and as `sample`, `eval` and `calibrate` read it back from a
//! table ([`Pred`]).

use crate::codebook::Codebook;
use crate::error::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// One predicted entity, offsets in code points of the paragraph.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub text: String,
    pub label: String,
    pub start: u32,
    pub end: u32,
    pub score: f32,
}

/// One stance decision. All fields are null where the target was not scored
/// (gated out by `only_topics`, or `--no-stance`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stance {
    pub label: Option<&'static str>,
    pub score: Option<f32>,
    /// P(favor) and P(against), kept so `calibrate` can move the threshold.
    pub favor: Option<f32>,
    pub against: Option<f32>,
    /// Whose position a favor/against label is (`author`, `reported`),
    /// from a holder head; null for `none` and without one.
    pub holder: Option<&'static str>,
    /// P(reported) from the holder head, kept whatever the label.
    pub reported: Option<f32>,
}

/// One tagged paragraph: one output row.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Index of its article in the window it was tagged in.
    pub article: usize,
    pub paragraph: u32,
    pub start: u32,
    pub end: u32,
    pub text: String,
    pub lang: String,
    pub lang_score: f32,
    pub topic: Option<String>,
    pub topic_score: Option<f32>,
    pub topic_scores: Option<Vec<(String, f32)>>,
    /// Per stance target, in codebook order.
    pub stances: Vec<Stance>,
    pub entities: Option<Vec<Entity>>,
    pub truncated_windows: u16,
    /// The encoder feature heads read, when the job keeps embeddings (training).
    pub embedding: Option<Vec<f32>>,
    /// The article id and paragraph of the job's first paragraph with the
    /// same text ([`crate::dedupe`]), whose labels this row carries.
    pub dup_of: Option<(std::sync::Arc<str>, u32)>,
}

/// A labeled span, offsets in code points.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub start: u32,
    pub end: u32,
    pub label: String,
}

/// One predicted entity read back from a table.
#[derive(Debug, Clone, PartialEq)]
pub struct PredEntity {
    pub span: Span,
    pub score: f32,
}

/// One stance target's prediction; all null where it was not scored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PredStance {
    pub label: Option<String>,
    pub score: Option<f32>,
    pub favor: Option<f32>,
    pub against: Option<f32>,
    pub holder: Option<String>,
    pub reported: Option<f32>,
}

impl PredStance {
    /// P(favor), P(against), P(none) from the two stored probabilities
    /// (clipped and renormalised); `None` when the row was not scored.
    pub fn posterior(&self) -> Option<[f64; 3]> {
        let (f, a) = (f64::from(self.favor?), f64::from(self.against?));
        let v = [f.max(0.0), a.max(0.0), (1.0 - f - a).max(0.0)];
        let z = v.iter().sum::<f64>().max(1e-12);
        Some(v.map(|x| x / z))
    }
}

/// One row of a paratag output table, as `sample`, `eval` and `calibrate` see it.
#[derive(Debug, Clone, Default)]
pub struct Pred {
    pub article_id: String,
    pub paragraph: u32,
    pub text: String,
    pub topic: Option<String>,
    pub topic_score: Option<f32>,
    pub topic_scores: Option<Vec<(String, f32)>>,
    pub stances: BTreeMap<String, PredStance>,
    pub entities: Option<Vec<PredEntity>>,
    /// `lang` and the pass-through columns, as text (for strata and `--by`).
    pub fields: BTreeMap<String, String>,
}

/// A paratag output table read back.
#[derive(Debug, Clone, Default)]
pub struct Predictions {
    pub rows: Vec<Pred>,
    /// Key-value metadata (`paratag.*`).
    pub meta: BTreeMap<String, String>,
    /// Stance target ids, in column order.
    pub targets: Vec<String>,
    /// Columns copied into `fields`.
    pub field_names: Vec<String>,
}

impl Predictions {
    pub fn has_topic(&self) -> bool {
        self.rows.iter().any(|r| r.topic_scores.is_some())
    }
    pub fn has_entities(&self) -> bool {
        self.rows.iter().any(|r| r.entities.is_some())
    }
    /// The codebook the table was tagged with, from its metadata.
    pub fn codebook(&self) -> Result<Option<Codebook>> {
        match self.meta.get("paratag.codebook") {
            Some(text) => Ok(Some(Codebook::parse(
                Path::new("(codebook in the predictions' metadata)"),
                text.clone(),
            )?)),
            None => Ok(None),
        }
    }
    /// Entity types the NER model predicts, from the metadata.
    pub fn entity_types(&self) -> Vec<String> {
        self.meta
            .get("paratag.entity_types")
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }
}
