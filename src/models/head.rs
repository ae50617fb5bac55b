//! A trained classification head: a linear layer (with its feature
//! standardisation and temperature folded in) over the sentence encoder's
//! paragraph embedding, the same mean-pooled, unit-length, window-averaged
//! vector the similarity zero-shot uses. So every head rides on the one
//! encoder pass the tagger already makes.
//!
//! A head folder holds `head.toml` ([`HeadMeta`]: kind, task, labels, the
//! encoder's id and weights sha256, training data sha256, hyper-parameters,
//! dev figures) and `head.safetensors` (`weight` `[labels, hidden]` and
//! `bias` `[labels]`, f16).

use crate::error::{Error, Result};
use crate::models::ModelDir;
use crate::task::{HeadKind, Task};
use half::f16;
use safetensors::tensor::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const META_FILE: &str = "head.toml";
pub const WEIGHTS_FILE: &str = "head.safetensors";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadMeta {
    /// What kind of head it is.
    pub kind: HeadKind,
    /// What it tags.
    pub task: Task,
    pub labels: Vec<String>,
    pub encoder_id: String,
    pub encoder_sha256: String,
    /// The feature the head reads.
    pub features: String,
    /// Softmax temperature fitted on dev (already folded into the weights).
    pub temperature: f32,
    pub train_sha256: String,
    pub train_items: usize,
    pub hyper: Hyper,
    /// Figures on the dev set, when one was given.
    pub dev: Option<DevFigures>,
    /// NER heads: the encoder layer whose output the head reads (1-based;
    /// the top layer is the encoder's `num_hidden_layers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    /// NER heads: how many encoder layers above `layer` the head carries,
    /// copied from the encoder and fine-tuned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune_layers: Option<usize>,
    /// NER heads: entity-level micro-F1 (exact spans) on the dev set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_entity_f1: Option<f64>,
    /// Heads trained with an adapter ([`super::lora`]): the sha256 of its
    /// `adapter.safetensors`, found in `../adapter` beside the head folder.
    /// The head reads the adapted encoder, so it is refused without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter_sha256: Option<String>,
    /// Heads for any stance target (`task = "stance_*"`): the target text
    /// this copy reads before each paragraph
    /// ([`crate::codebook::StanceTarget::conditioning_text`]). Set when a job
    /// gives the head a codebook target; never written to `head.toml`.
    #[serde(skip)]
    pub target_text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hyper {
    pub epochs: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub class_weights: bool,
    pub seed: u64,
    /// NER heads: learning rate of the tuned encoder layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_learning_rate: Option<f64>,
    /// NER heads: sentences (windows) per optimiser step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Multi-task training: the optimiser step early stopping kept (the
    /// steps of all tasks together; `epochs` is then 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevFigures {
    pub items: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub nll_before_temperature: f64,
    pub nll_after_temperature: f64,
    /// Stance heads: the threshold on max(P(favor), P(against)) that
    /// maximises macro-F1 on dev (after the temperature). `tag` uses it
    /// where the codebook sets no threshold: a fine-tuned head's
    /// probabilities are often too soft for 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Stance heads: macro-F1 on dev with that threshold (`macro_f1` takes
    /// the most probable label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macro_f1_at_threshold: Option<f64>,
}

pub const FEATURES: &str = "encoder mean-pooled, L2-normalised embedding, averaged over windows";

#[derive(Debug, Clone)]
pub struct Head {
    pub dir: PathBuf,
    pub meta: HeadMeta,
    /// `[labels][hidden]`.
    pub weight: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
}

impl Head {
    pub fn load(dir: &Path) -> Result<Head> {
        let bad = |m: String| Error::model(dir, m);
        let meta = read_meta(dir)?;
        let tensors = read_f16(dir)?;
        let find = |name: &str| {
            tensors
                .iter()
                .find(|t| t.0 == name)
                .map(|t| (t.1.clone(), t.2.clone()))
                .ok_or_else(|| bad(format!("{WEIGHTS_FILE} has no tensor `{name}`")))
        };
        let (ws, w) = find("weight")?;
        let (bs, b) = find("bias")?;
        let c = meta.labels.len();
        if ws.len() != 2 || ws[0] != c || bs != [c] {
            return Err(bad(format!(
                "weight {ws:?} / bias {bs:?} do not fit {c} labels"
            )));
        }
        Ok(Head {
            dir: dir.into(),
            weight: w.chunks(ws[1]).map(<[f32]>::to_vec).collect(),
            bias: b,
            meta,
        })
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let (c, d) = (self.weight.len(), self.weight.first().map_or(0, Vec::len));
        let tensors = vec![
            ("weight".to_string(), vec![c, d], self.weight.concat()),
            ("bias".to_string(), vec![c], self.bias.clone()),
        ];
        write(dir, &self.meta, &tensors)
    }

    /// Refuses an encoder other than the one the head was trained on.
    pub fn check_encoder(&self, encoder: &ModelDir, sha256: &str) -> Result<()> {
        check_encoder(&self.dir, &self.meta, encoder, sha256)
    }

    /// Label probabilities for one paragraph feature.
    pub fn probs(&self, x: &[f32]) -> Vec<f32> {
        let logits: Vec<f32> = self
            .weight
            .iter()
            .zip(&self.bias)
            .map(|(w, b)| crate::heads::dot(w, x) + b)
            .collect();
        crate::heads::softmax(&logits, 1.0)
    }
}

/// Refuses an encoder other than the one the head at `dir` was trained on.
pub fn check_encoder(dir: &Path, meta: &HeadMeta, encoder: &ModelDir, sha256: &str) -> Result<()> {
    if sha256 != meta.encoder_sha256 {
        return Err(Error::model(
            dir,
            format!(
                "was trained on encoder {} with weights sha256 {}, but {} has {sha256}; retrain the head on this encoder",
                meta.encoder_id,
                meta.encoder_sha256,
                encoder.path.display()
            ),
        ));
    }
    Ok(())
}

/// A head folder's `head.toml`.
pub fn read_meta(dir: &Path) -> Result<HeadMeta> {
    let meta: HeadMeta = super::read_toml(dir, META_FILE, "a head folder")?;
    if !meta.kind.answers(&meta.task) {
        return Err(Error::model(
            dir,
            format!(
                "{META_FILE}: key `task`: `{}` is not answered by a head of kind `{}`",
                meta.task, meta.kind
            ),
        ));
    }
    Ok(meta)
}

pub use super::Named;

/// Reads every tensor of a head folder's `head.safetensors` (all f16).
pub fn read_f16(dir: &Path) -> Result<Vec<Named>> {
    let bad = |m: String| Error::model(dir, m);
    let wp = super::inside(dir, WEIGHTS_FILE)?
        .ok_or_else(|| Error::model(dir, format!("missing {WEIGHTS_FILE}")))?;
    let bytes = std::fs::read(&wp).map_err(|e| Error::io(&wp, e))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("{WEIGHTS_FILE}: {e}")))?;
    let mut out = Vec::new();
    for (name, t) in st.tensors() {
        if t.dtype() != Dtype::F16 {
            return Err(bad(format!("`{name}` is {:?}, expected F16", t.dtype())));
        }
        let v = t
            .data()
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect();
        out.push((name, t.shape().to_vec(), v));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Writes a head folder: the tensors in f16 and `head.toml`, each atomically.
pub fn write(dir: &Path, meta: &HeadMeta, tensors: &[Named]) -> Result<()> {
    super::write_folder(dir, WEIGHTS_FILE, tensors, true, META_FILE, meta)
}

/// The probability of `label` among a head's `labels` (0 when it has none).
pub fn prob_of(labels: &[String], probs: &[f32], label: &str) -> f32 {
    labels
        .iter()
        .position(|l| l == label)
        .map_or(0.0, |i| probs[i])
}
