//! Sentence encoder (BERT or XLM-R base model): mean pooling over the attention
//! mask, then L2 normalisation, as multilingual-e5 is used. It can also hand
//! out one layer's token states from the same pass, for NER heads
//! ([`super::tuned_head`]).

use super::{Arch, DType, ModelDir};
use crate::batch::Padded;
use crate::error::{Error, Result};
use rust_bert::bert::{BertConfig, BertEmbeddings, BertModel};
use rust_bert::roberta::RobertaEmbeddings;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

enum Net {
    Bert(BertModel<BertEmbeddings>),
    Roberta(BertModel<RobertaEmbeddings>),
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
