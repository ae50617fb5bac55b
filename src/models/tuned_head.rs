//! A head with tuned encoder layers: `tune_layers` encoder layers, copied from
//! the encoder and fine-tuned, stacked on the output of encoder layer `layer`,
//! then a linear classifier: per token over IOB2 labels (NER heads), or over
//! the mean of the token states (topic and stance heads). The encoder below
//! `layer` stays frozen and shared, so at tag time the head rides on the same
//! encoder pass as every other head: the encoder thread hands it layer
//! `layer`'s token states.
//!
//! A head for any stance target (`task = "stance_*"`) is a cross-encoder
//! over its top layers: the target's text, run through the same encoder
//! once per job up to `layer`, is put before each paragraph's
//! layer-`layer` states ([`TunedHead::forward_prefixed`]), and the tuned
//! layers attend over both (the lower layers see each text alone, as in
//! DeFormer, Cao et al. 2020). So one encoder pass still serves every head;
//! each target costs only the tuned layers.
//!
//! The head folder is the one [`super::head`] describes, with `layer` and
//! `tune_layers` in `head.toml`; `head.safetensors` holds only the tuned
//! layers (`layer.{j}.…`, BERT names) and `classifier.weight` /
//! `classifier.bias`, in f16.

use super::encoder::{attention_mask, bert_layer, mean_pool, LayerRun, LayerWeights};
use super::head::{self, HeadMeta, Named};
use super::ModelDir;
use crate::error::{Error, Result};
use crate::task::HeadKind;
use rust_bert::bert::{BertConfig, BertLayer};
use std::path::{Path, PathBuf};
use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};

pub struct TunedHead {
    pub dir: PathBuf,
    pub meta: HeadMeta,
    pub vs: VarStore,
    layers: Vec<BertLayer>,
    classifier: nn::Linear,
    dropout: f64,
    /// Classifies the mean of the token states (topic, stance) instead of
    /// each token (NER).
    pub pooled: bool,
    cfg: BertConfig,
    /// A loaded head's layers, gathered once. A head being trained gathers
    /// them on every pass (its weights move, and gradients must reach them).
    frozen: Option<std::cell::OnceCell<Vec<LayerWeights>>>,
}

/// Whether head metadata describes a [`TunedHead`] rather than a linear
/// [`super::head::Head`] over the pooled embedding.
pub fn is_tuned(meta: &HeadMeta) -> bool {
    meta.kind == HeadKind::Ner || meta.layer.is_some()
}

impl TunedHead {
    /// A fresh head on `device`: tuned layers (to be filled by the caller) and
    /// a zero classifier, so training starts from the same point every time.
    pub fn new(meta: HeadMeta, cfg: &BertConfig, device: Device) -> TunedHead {
        let vs = VarStore::new(device);
        let tune = meta.tune_layers.unwrap_or(0);
        let layers = (0..tune)
            // Group 1: the tuned layers get their own learning rate.
            .map(|j| BertLayer::new(vs.root().set_group(1).sub("layer").sub(j.to_string()), cfg))
            .collect();
        let zeros = nn::LinearConfig {
            ws_init: nn::Init::Const(0.0),
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        let classifier = nn::linear(
            vs.root().sub("classifier"),
            cfg.hidden_size,
            meta.labels.len() as i64,
            zeros,
        );
        TunedHead {
            dir: PathBuf::new(),
            pooled: meta.kind != HeadKind::Ner,
            meta,
            vs,
            layers,
            classifier,
            dropout: cfg.hidden_dropout_prob,
            cfg: cfg.clone(),
            frozen: None,
        }
    }

    /// The tuned layers' weights, named as [`LayerWeights::gather`] reads them.
    fn gather(&self) -> Result<Vec<LayerWeights>> {
        let vars = self.vs.variables();
        let get = |name: &str| -> Result<Tensor> {
            vars.get(name)
                .map(Tensor::shallow_clone)
                .ok_or_else(|| Error::model(&self.dir, format!("no tensor `{name}`")))
        };
        (0..self.layers.len())
            .map(|j| LayerWeights::gather(&get, &format!("layer.{j}."), Kind::Float))
            .collect()
    }

    /// Loads a head folder for `encoder` (its config shapes the tuned layers).
    pub fn load(dir: &Path, encoder: &ModelDir, device: Device) -> Result<TunedHead> {
        let meta = head::read_meta(dir)?;
        if meta.layer.is_none() {
            return Err(Error::model(dir, "head.toml has no `layer`"));
        }
        let cfg: BertConfig = encoder.parse_config()?;
        let mut h = TunedHead::new(meta, &cfg, device);
        h.dir = dir.into();
        let tensors = head::read_f16(dir)?;
        let mut vars = h.vs.variables();
        for (name, shape, values) in tensors {
            let Some(var) = vars.remove(&name) else {
                return Err(Error::model(dir, format!("unexpected tensor `{name}`")));
            };
            let want: Vec<usize> = var.size().iter().map(|&d| d as usize).collect();
            if want != shape {
                return Err(Error::model(
                    dir,
                    format!("tensor `{name}` has shape {shape:?}, the encoder implies {want:?}"),
                ));
            }
            let t = Tensor::from_slice(&values).view(var.size().as_slice());
            let mut var = var;
            tch::no_grad(|| var.copy_(&t));
        }
        if let Some(missing) = vars.keys().min() {
            return Err(Error::model(
                dir,
                format!("{} has no tensor `{missing}`", head::WEIGHTS_FILE),
            ));
        }
        h.frozen = Some(Default::default());
        Ok(h)
    }

    /// Copies encoder layer weights into the tuned layers (`from[j]` holds
    /// layer j's weights named below `layer.{j}.`).
    pub fn init_layers(&mut self, from: &[Vec<(String, Tensor)>]) -> Result<()> {
        let vars = self.vs.variables();
        for (j, weights) in from.iter().enumerate() {
            for (rest, t) in weights {
                let name = format!("layer.{j}.{rest}");
                let mut v = vars
                    .get(&name)
                    .ok_or_else(|| Error::Config(format!("tuned layer has no `{name}`")))?
                    .shallow_clone();
                tch::no_grad(|| v.copy_(&t.to_kind(Kind::Float).to_device(v.device())));
            }
        }
        Ok(())
    }

    /// Tagging: [`Self::forward_t`], where a head for any target reads
    /// `prefix`, its target text's layer-`layer` states `[tokens, hidden]`,
    /// before each row's.
    pub fn forward_prefixed(
        &self,
        prefix: Option<&Tensor>,
        states: &Tensor,
        mask: &Tensor,
    ) -> Tensor {
        match prefix {
            Some(p) => {
                let (states, mask) = with_prefix(p, states, mask);
                self.forward_t(&states, &mask, false)
            }
            None => self.forward_t(states, mask, false),
        }
    }

    /// Label logits from layer `layer`'s states `[batch, seq, hidden]` (a
    /// head for any target: the target's states first): `[batch, seq,
    /// labels]` per token, or `[batch, labels]` when pooled.
    pub fn forward_t(&self, states: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let m = mask.to_kind(Kind::Float);
        let ext = attention_mask(mask, Kind::Float);
        let fresh;
        let weights = match &self.frozen {
            Some(cell) if !train => {
                cell.get_or_init(|| self.gather().expect("the head's layers are complete"))
            }
            _ => {
                fresh = self.gather().expect("the head's layers are complete");
                &fresh
            }
        };
        let run = LayerRun {
            cfg: &self.cfg,
            train,
            extra: None,
        };
        let mut h = states.to_kind(Kind::Float);
        for w in weights {
            h = bert_layer(&h, w, &ext, &run);
        }
        if !self.pooled {
            return self.classifier.forward(&h.dropout(self.dropout, train));
        }
        let h = mean_pool(&h, &m).dropout(self.dropout, train);
        if train || h.size()[0] < 2 {
            return self.classifier.forward(&h);
        }
        // One pooled row at a time: MKL multiplies a matrix of a few rows
        // with other kernels than a tall one, even in strict CBWR mode (AMD
        // EPYC, 7 labels: rows 1-6 differ in the last bit), so a paragraph's
        // scores changed with how many windows shared its batch.
        let rows: Vec<Tensor> = (0..h.size()[0])
            .map(|i| self.classifier.forward(&h.narrow(0, i, 1)))
            .collect();
        Tensor::cat(&rows, 0)
    }

    /// Divides the classifier by a fitted softmax temperature.
    pub fn fold_temperature(&mut self, t: f64) {
        if self.frozen.is_some() {
            self.frozen = Some(Default::default());
        }
        tch::no_grad(|| {
            let _ = self.classifier.ws.g_div_scalar_(t);
            if let Some(b) = self.classifier.bs.as_mut() {
                let _ = b.g_div_scalar_(t);
            }
        });
    }

    /// The tensors to save, sorted by name, in f32 (written as f16).
    pub fn tensors(&self) -> Result<Vec<Named>> {
        super::named_vars(&self.vs)
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        head::write(dir, &self.meta, &self.tensors()?)
    }

    /// The layer whose output the head reads.
    pub fn layer(&self) -> usize {
        self.meta.layer.unwrap_or(0)
    }
}

/// `prefix` `[t, hidden]` put before each row of `states` `[batch, seq,
/// hidden]`, with the mask grown to match.
pub fn with_prefix(prefix: &Tensor, states: &Tensor, mask: &Tensor) -> (Tensor, Tensor) {
    let b = states.size()[0];
    let t = prefix.size()[0];
    let p = prefix
        .to_kind(states.kind())
        .unsqueeze(0)
        .expand([b, t, prefix.size()[1]], false);
    let ones = Tensor::ones([b, t], (mask.kind(), mask.device()));
    (
        Tensor::cat(&[p, states.shallow_clone()], 1),
        Tensor::cat(&[ones, mask.shallow_clone()], 1),
    )
}
