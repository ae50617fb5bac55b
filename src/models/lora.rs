//! Low-rank adapters (LoRA) on every linear map of every encoder layer:
//! `W' = W + (alpha / rank) · B · A`, with `A` `[rank, in]` and `B`
//! `[out, rank]`. Training runs the encoder with the adapters applied
//! beside the frozen weights ([`forward`]); tagging merges them into the
//! weights once at load ([`Adapter::merge_into`]), so an adapted encoder
//! costs exactly what the plain one does and every head still rides on one
//! encoder pass.
//!
//! An adapter folder is `adapter.toml` ([`AdapterMeta`]: rank, alpha, the
//! base encoder's id and weights sha256, training sources and figures) and
//! `adapter.safetensors` (`layer.{i}.{module}.lora_a` / `.lora_b`, f32: an
//! adapter for multilingual-e5-small at rank 16 is about 5 MB). Heads
//! trained with it sit beside it (`../adapter` from a head folder) and
//! record its weights' sha256, so a head never runs on an encoder other
//! than the one it was trained with.

use super::encoder::Encoder;
use crate::batch::Padded;
use crate::error::{Error, Result};
use rand::{Rng, SeedableRng};
use rust_bert::bert::BertConfig;
use safetensors::tensor::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

pub const DIR: &str = "adapter";
pub const META_FILE: &str = "adapter.toml";
pub const WEIGHTS_FILE: &str = "adapter.safetensors";

/// The linear maps of a BERT layer that carry an adapter, by their names
/// below `encoder.layer.{i}.`.
pub const MODULES: [&str; 6] = [
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterMeta {
    pub rank: usize,
    pub alpha: f64,
    pub layers: usize,
    pub encoder_id: String,
    pub encoder_sha256: String,
    /// What it was trained on, one entry per data source.
    #[serde(default)]
    pub sources: Vec<Source>,
    /// The training recipe as given, with defaults filled in.
    #[serde(default)]
    pub recipe: toml::Table,
    /// Optimiser steps kept (early stopping), of those run.
    #[serde(default)]
    pub steps: usize,
    #[serde(default)]
    pub steps_run: usize,
    #[serde(default)]
    pub wall_seconds: f64,
    /// The dev figure of each source at the kept step, and their mean.
    #[serde(default)]
    pub dev: BTreeMap<String, f64>,
    #[serde(default)]
    pub dev_mean: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub name: String,
    pub kind: crate::task::HeadKind,
    /// The head it trains.
    pub task: crate::task::Task,
    pub train: Vec<String>,
    pub train_sha256: String,
    pub train_items: usize,
    pub dev_items: usize,
    /// Where the recipe gave it: license and origin, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
}

pub struct Adapter {
    pub dir: PathBuf,
    pub meta: AdapterMeta,
    /// `layer.{i}.{module}.lora_a|lora_b`; layer i's in optimiser group i.
    pub vs: VarStore,
    /// `[layer][module]` → (A, B).
    pairs: Vec<Vec<(Tensor, Tensor)>>,
    /// Dropout on the adapter's input while training.
    pub dropout: f64,
}

/// `(out, in)` of each of [`MODULES`].
fn shapes(cfg: &BertConfig) -> [(i64, i64); 6] {
    let (h, f) = (cfg.hidden_size, cfg.intermediate_size);
    [(h, h), (h, h), (h, h), (h, h), (f, h), (h, f)]
}

impl Adapter {
    /// A fresh adapter: `A` uniform in ±1/√in from a ChaCha stream seeded by
    /// `seed` (so it does not depend on torch's generator), `B` zero, so the
    /// adapted encoder starts equal to the base.
    pub fn new(meta: AdapterMeta, cfg: &BertConfig, seed: u64, dropout: f64) -> Result<Adapter> {
        if meta.rank == 0 {
            return Err(Error::Config("LoRA rank must be > 0".into()));
        }
        let vs = VarStore::new(Device::Cpu);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let r = meta.rank as i64;
        let mut pairs = vec![];
        for i in 0..meta.layers {
            let p = vs.root().set_group(i).sub("layer").sub(i.to_string());
            let mut row = vec![];
            for (m, (out, inp)) in MODULES.iter().zip(shapes(cfg)) {
                let bound = 1.0 / (inp as f64).sqrt();
                let init: Vec<f32> = (0..r * inp)
                    .map(|_| rng.gen_range(-bound..bound) as f32)
                    .collect();
                // tch names nest by path, not by dots in one name.
                let q = m.split('.').fold(p.clone(), |q, part| q.sub(part));
                let a = q.var_copy("lora_a", &Tensor::from_slice(&init).view([r, inp]));
                let b = q.zeros("lora_b", &[out, r]);
                row.push((a, b));
            }
            pairs.push(row);
        }
        Ok(Adapter {
            dir: PathBuf::new(),
            meta,
            vs,
            pairs,
            dropout,
        })
    }

    pub fn scale(&self) -> f64 {
        self.meta.alpha / self.meta.rank as f64
    }

    /// Loads an adapter folder, checking every tensor against `cfg`.
    pub fn load(dir: &Path, cfg: &BertConfig) -> Result<Adapter> {
        let meta = read_meta(dir)?;
        let mut a =
            Adapter::new(meta, cfg, 0, 0.0).map_err(|e| Error::model(dir, e.to_string()))?;
        a.dir = dir.into();
        let wp = super::inside(dir, WEIGHTS_FILE)?
            .ok_or_else(|| Error::model(dir, format!("missing {WEIGHTS_FILE}")))?;
        let bytes = std::fs::read(&wp).map_err(|e| Error::io(&wp, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::model(&wp, format!("not a safetensors file: {e}")))?;
        let mut vars = a.vs.variables();
        for (name, t) in st.tensors() {
            let Some(mut var) = vars.remove(&name) else {
                return Err(Error::model(&wp, format!("unexpected tensor `{name}`")));
            };
            let want: Vec<usize> = var.size().iter().map(|&d| d as usize).collect();
            if t.dtype() != Dtype::F32 || t.shape() != want.as_slice() {
                return Err(Error::model(
                    &wp,
                    format!(
                        "tensor `{name}` is {:?} {:?}; the encoder implies F32 {want:?}",
                        t.dtype(),
                        t.shape()
                    ),
                ));
            }
            let v: Vec<f32> = t
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            tch::no_grad(|| var.copy_(&Tensor::from_slice(&v).view(var.size().as_slice())));
        }
        if let Some(missing) = vars.keys().min() {
            return Err(Error::model(&wp, format!("has no tensor `{missing}`")));
        }
        Ok(a)
    }

    /// Writes `adapter.safetensors` (f32) and `adapter.toml`, each atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tensors = super::named_vars(&self.vs)?;
        super::write_folder(dir, WEIGHTS_FILE, &tensors, false, META_FILE, &self.meta)
    }

    /// `(alpha / rank) · B · A` of layer `i`, module `m`: `[out, in]`.
    fn delta(&self, i: usize, m: usize) -> Tensor {
        let (a, b) = &self.pairs[i][m];
        b.matmul(a) * self.scale()
    }

    /// Refuses an encoder other than the one the adapter was trained on.
    pub fn check_encoder(&self, enc: &Encoder) -> Result<()> {
        let sha = enc.dir.weights_sha256()?;
        if sha != self.meta.encoder_sha256 {
            return Err(Error::model(
                &self.dir,
                format!(
                    "was trained on encoder {} with weights sha256 {}, but {} has {sha}; retrain on this encoder",
                    self.meta.encoder_id,
                    self.meta.encoder_sha256,
                    enc.dir.path.display()
                ),
            ));
        }
        Ok(())
    }

    /// Adds the adapter into the encoder's weights (in f32, then back to the
    /// weights' dtype), after checking it is the encoder it was trained on.
    pub fn merge_into(&self, enc: &mut Encoder) -> Result<()> {
        self.check_encoder(enc)?;
        if enc.num_layers() != self.meta.layers {
            return Err(Error::model(
                &self.dir,
                format!(
                    "has {} layers; the encoder has {}",
                    self.meta.layers,
                    enc.num_layers()
                ),
            ));
        }
        let vars = enc.variables();
        tch::no_grad(|| {
            for i in 0..self.meta.layers {
                for (m, name) in MODULES.iter().enumerate() {
                    let key = enc.layer_var(i, &format!("{name}.weight"));
                    let mut w = vars
                        .get(&key)
                        .ok_or_else(|| Error::model(&enc.dir.path, format!("no tensor `{key}`")))?
                        .shallow_clone();
                    let kind = w.kind();
                    let merged = (w.to_kind(Kind::Float) + self.delta(i, m)).to_kind(kind);
                    w.copy_(&merged);
                }
            }
            Ok::<(), Error>(())
        })?;
        enc.weights_changed();
        Ok(())
    }
}

/// An adapter folder's `adapter.toml`.
pub fn read_meta(dir: &Path) -> Result<AdapterMeta> {
    super::read_toml(dir, META_FILE, "an adapter folder")
}

/// Where the adapter of a head folder lives: `../adapter` beside it.
pub fn dir_of_head(head: &Path) -> PathBuf {
    head.parent().unwrap_or(Path::new(".")).join(DIR)
}

/// sha256 of an adapter folder's weights.
pub fn weights_sha256(dir: &Path) -> Result<String> {
    let wp = super::inside(dir, WEIGHTS_FILE)?
        .ok_or_else(|| Error::model(dir, format!("missing {WEIGHTS_FILE}")))?;
    crate::hash::sha256_file(&wp)
}

/// The encoder's top-layer token states `[batch, seq, hidden]` with the
/// adapter applied beside the weights (not merged), with dropout when
/// `train`: the training forward. Gradients reach the adapter only (the
/// encoder's own variables are frozen by [`Encoder::freeze`]).
pub fn forward(enc: &Encoder, ad: Option<&Adapter>, p: &Padded, train: bool) -> Result<Tensor> {
    let low = |i: usize, m: usize, x: &Tensor| -> Tensor {
        let ad = ad.expect("only called with an adapter");
        // f32 master weights; cast to the encoder's dtype (bf16 training),
        // and gradients flow back through the cast.
        let (a, b) = &ad.pairs[i][m];
        let (a, b) = (a.to_kind(x.kind()), b.to_kind(x.kind()));
        x.dropout(ad.dropout, train)
            .linear::<&Tensor>(&a, None)
            .linear::<&Tensor>(&b, None)
            * ad.scale()
    };
    let extra = ad.map(|_| &low as super::encoder::LayerExtra);
    Ok(enc.bert_states(p, &[], train, extra)?.0)
}
