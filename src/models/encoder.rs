//! Sentence encoder (BERT or XLM-R base model): mean pooling over the attention
//! mask, then L2 normalisation, as multilingual-e5 is used. It can also hand
//! out one layer's token states from the same pass, for NER heads
//! ([`super::tuned_head`]).

use super::{Arch, DType, ModelDir};
use crate::batch::Padded;
use crate::error::{Error, Result};
use rust_bert::bert::{BertConfig, BertEmbedding, BertModel};
use rust_bert::roberta::RobertaEmbeddings;
use rust_bert::RustBertError;
use std::borrow::Borrow;
use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};

enum Net {
    Bert(BertModel<Embeddings>),
    Roberta(BertModel<RobertaEmbeddings>),
}

/// BERT's input embeddings (word + position + token type, layer norm), as
/// rust-bert's `BertEmbeddings` computes them, but created as zeros: the
/// weights are read over them at once, and drawing 96M random numbers for
/// multilingual-e5-small's vocabulary took about half a second of every
/// start-up, and a second copy of the table in memory.
pub struct Embeddings {
    word: nn::Embedding,
    position: nn::Embedding,
    token_type: nn::Embedding,
    layer_norm: nn::LayerNorm,
}

impl BertEmbedding for Embeddings {
    fn new<'p, P>(p: P, config: &BertConfig) -> Self
    where
        P: Borrow<nn::Path<'p>>,
    {
        let p = p.borrow();
        let table = |name: &str, n: i64, padding_idx: i64| {
            let c = nn::EmbeddingConfig {
                padding_idx,
                ws_init: nn::Init::Const(0.),
                ..Default::default()
            };
            nn::embedding(p / name, n, config.hidden_size, c)
        };
        let ln = nn::LayerNormConfig {
            eps: 1e-12,
            ..Default::default()
        };
        Embeddings {
            word: table("word_embeddings", config.vocab_size, 0),
            position: table("position_embeddings", config.max_position_embeddings, -1),
            token_type: table("token_type_embeddings", config.type_vocab_size, -1),
            layer_norm: nn::layer_norm(p / "LayerNorm", vec![config.hidden_size], ln),
        }
    }

    /// Inference only (no dropout), from token ids.
    fn forward_t(
        &self,
        input_ids: Option<&Tensor>,
        token_type_ids: Option<&Tensor>,
        position_ids: Option<&Tensor>,
        input_embeds: Option<&Tensor>,
        _train: bool,
    ) -> std::result::Result<Tensor, RustBertError> {
        let (Some(ids), None) = (input_ids, input_embeds) else {
            return Err(RustBertError::ValueError(
                "the encoder embeds token ids only".into(),
            ));
        };
        let shape = ids.size();
        let positions = match position_ids {
            Some(p) => p.shallow_clone(),
            None => Tensor::arange(shape[1], (Kind::Int64, ids.device()))
                .unsqueeze(0)
                .expand(&shape, true),
        };
        let types = match token_type_ids {
            Some(t) => t.shallow_clone(),
            None => Tensor::zeros(&shape, (Kind::Int64, ids.device())),
        };
        let x = self.word.forward(ids)
            + self.position.forward(&positions)
            + self.token_type.forward(&types);
        Ok(x.apply(&self.layer_norm))
    }
}

pub struct Encoder {
    net: Net,
    _vs: VarStore,
    pub dir: ModelDir,
    /// Text prefix the model was trained with ("query: " for e5).
    pub prefix: String,
    /// Variable-name prefix of the base model in the weights ("bert." or none).
    base: String,
    pub config: BertConfig,
}

impl Encoder {
    /// `layers`: keep every layer's output, for [`Encoder::forward_layer`].
    pub fn load(dir: &ModelDir, device: Device, dtype: DType, layers: bool) -> Result<Encoder> {
        let mut vs = VarStore::new(device);
        let base = match dir.arch {
            Arch::Bert => "bert",
            Arch::Roberta => "roberta",
            Arch::DebertaV2 => {
                return Err(Error::model(
                    &dir.path,
                    "deberta-v2 is not supported as a sentence encoder",
                ))
            }
        };
        let prefix = dir.base_prefix(base)?;
        let root = vs.root();
        let p = match &prefix {
            Some(b) => root.sub(b),
            None => root.clone(),
        };
        let mut cfg: BertConfig = dir.parse_config()?;
        cfg.output_hidden_states = Some(layers);
        let net = match dir.arch {
            Arch::Roberta => Net::Roberta(BertModel::new_with_optional_pooler(&p, &cfg, false)),
            _ => Net::Bert(BertModel::new_with_optional_pooler(&p, &cfg, false)),
        };
        dir.load_weights(&mut vs, dtype)?;
        let base = prefix.map(|b| format!("{b}.")).unwrap_or_default();
        let prefix = dir.text_prefix();
        Ok(Encoder {
            net,
            _vs: vs,
            dir: dir.clone(),
            prefix,
            base,
            config: cfg,
        })
    }

    /// The weights of encoder layer `i` (0-based), named below `layer.{i}.`
    /// stripped, e.g. `attention.self.query.weight`.
    pub fn layer_weights(&self, i: usize) -> Vec<(String, Tensor)> {
        let stem = format!("{}encoder.layer.{i}.", self.base);
        let mut out: Vec<(String, Tensor)> = self
            ._vs
            .variables()
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix(&stem).map(|r| (r.to_string(), v)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The encoder's variables by name (shallow copies: they share storage).
    pub fn variables(&self) -> std::collections::HashMap<String, Tensor> {
        self._vs.variables()
    }

    /// The full variable name of `rest` (e.g. `output.dense.weight`) in
    /// encoder layer `i` (0-based).
    pub fn layer_var(&self, i: usize, rest: &str) -> String {
        format!("{}encoder.layer.{i}.{rest}", self.base)
    }

    /// The name stem of the input embeddings' variables.
    pub fn embeddings_stem(&self) -> String {
        format!("{}embeddings", self.base)
    }

    /// No gradients for the encoder's own weights (adapter training).
    pub fn freeze(&mut self) {
        self._vs.freeze();
    }

    pub fn num_layers(&self) -> usize {
        self.config.num_hidden_layers as usize
    }

    /// Unit-length embeddings `[batch, hidden]`.
    pub fn forward(&self, p: &Padded) -> Result<Tensor> {
        Ok(self.forward_layers(p, &[])?.0)
    }

    /// Unit-length embeddings, and the token states `[batch, seq, hidden]`
    /// that each of encoder layers `layers` (1-based) outputs, from one pass.
    /// Needs an encoder loaded with `layers` unless `layers` is empty.
    pub fn forward_layers(&self, p: &Padded, layers: &[usize]) -> Result<(Tensor, Vec<Tensor>)> {
        let types = (self.dir.type_vocab_size > 1).then_some(&p.type_ids);
        tch::no_grad(|| {
            let out = match &self.net {
                Net::Bert(m) => m.forward_t(
                    Some(&p.ids),
                    Some(&p.mask),
                    types,
                    None,
                    None,
                    None,
                    None,
                    false,
                )?,
                Net::Roberta(m) => m.forward_t(
                    Some(&p.ids),
                    Some(&p.mask),
                    types,
                    None,
                    None,
                    None,
                    None,
                    false,
                )?,
            };
            let mut states = Vec::with_capacity(layers.len());
            for &l in layers {
                let all = out.all_hidden_states.as_ref().ok_or_else(|| {
                    Error::model(&self.dir.path, "encoder was loaded without layer outputs")
                })?;
                let h = all.get(l.wrapping_sub(1)).ok_or_else(|| {
                    Error::model(
                        &self.dir.path,
                        format!("has {} layers; layer {l} does not exist", all.len()),
                    )
                })?;
                states.push(h.to_kind(Kind::Float));
            }
            let h = out.hidden_state.to_kind(Kind::Float);
            let m = p.mask.to_kind(Kind::Float).unsqueeze(-1);
            let summed = (&h * &m).sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
            let count = m
                .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
                .clamp_min(1e-9);
            let mean = summed / count;
            let norm = mean
                .norm_scalaropt_dim(2, [1i64].as_slice(), true)
                .clamp_min(1e-12);
            Ok((mean / norm, states))
        })
    }
}

pub fn _assert_send() {
    fn s<T: Send>() {}
    s::<Encoder>();
    s::<super::classifier::SeqClassifier>();
    s::<super::token::TokenClassifier>();
}
