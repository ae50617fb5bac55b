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
use half::f16;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const META_FILE: &str = "head.toml";
pub const WEIGHTS_FILE: &str = "head.safetensors";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadMeta {
    /// `topic` or `stance`.
    pub kind: String,
    /// What it tags: `topic`, or `stance_<target id>`.
    pub task: String,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hyper {
    pub epochs: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub class_weights: bool,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevFigures {
    pub items: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub nll_before_temperature: f64,
    pub nll_after_temperature: f64,
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
        let mp = dir.join(META_FILE);
        let text = std::fs::read_to_string(&mp).map_err(|e| Error::io(&mp, e))?;
        let meta: HeadMeta = toml::from_str(&text).map_err(|e| Error::toml(&mp, &text, &e))?;
        let wp = dir.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&wp).map_err(|e| Error::io(&wp, e))?;
        let st =
            SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("{WEIGHTS_FILE}: {e}")))?;
        let read = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
            let t = st
                .tensor(name)
                .map_err(|_| bad(format!("{WEIGHTS_FILE} has no tensor `{name}`")))?;
            if t.dtype() != Dtype::F16 {
                return Err(bad(format!("`{name}` is {:?}, expected F16", t.dtype())));
            }
            let v = t
                .data()
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect();
            Ok((t.shape().to_vec(), v))
        };
        let (ws, w) = read("weight")?;
        let (bs, b) = read("bias")?;
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
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let half = |xs: &[f32]| -> Vec<u8> {
            xs.iter()
                .flat_map(|x| f16::from_f32(*x).to_le_bytes())
                .collect()
        };
        let (c, d) = (self.weight.len(), self.weight.first().map_or(0, Vec::len));
        let w = half(&self.weight.concat());
        let b = half(&self.bias);
        let views = vec![
            (
                "weight",
                TensorView::new(Dtype::F16, vec![c, d], &w).expect("shape fits"),
            ),
            (
                "bias",
                TensorView::new(Dtype::F16, vec![c], &b).expect("shape fits"),
            ),
        ];
        let bytes = safetensors::tensor::serialize(views, &None)
            .map_err(|e| Error::model(dir, format!("writing {WEIGHTS_FILE}: {e}")))?;
        crate::formats::atomic_write(&dir.join(WEIGHTS_FILE), &bytes)?;
        let meta = toml::to_string(&self.meta).map_err(|e| Error::Config(e.to_string()))?;
        crate::formats::atomic_write(&dir.join(META_FILE), meta.as_bytes())
    }

    /// Refuses an encoder other than the one the head was trained on.
    pub fn check_encoder(&self, encoder: &ModelDir, sha256: &str) -> Result<()> {
        if sha256 != self.meta.encoder_sha256 {
            return Err(Error::model(
                &self.dir,
                format!(
                    "was trained on encoder {} with weights sha256 {}, but {} has {sha256}; retrain the head on this encoder",
                    self.meta.encoder_id,
                    self.meta.encoder_sha256,
                    encoder.path.display()
                ),
            ));
        }
        Ok(())
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

    /// The probability of `label` (0 when the head does not have it).
    pub fn prob_of(&self, probs: &[f32], label: &str) -> f32 {
        self.meta
            .labels
            .iter()
            .position(|l| l == label)
            .map_or(0.0, |i| probs[i])
    }
}
