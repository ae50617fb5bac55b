//! Sentence encoder (BERT or XLM-R base model): mean pooling over the attention
//! mask, then L2 normalisation, as multilingual-e5 is used.

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
}

impl Encoder {
    pub fn load(dir: &ModelDir, device: Device, dtype: DType) -> Result<Encoder> {
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
        let cfg: BertConfig = dir.parse_config()?;
        let net = match dir.arch {
            Arch::Roberta => Net::Roberta(BertModel::new_with_optional_pooler(&p, &cfg, false)),
            _ => Net::Bert(BertModel::new_with_optional_pooler(&p, &cfg, false)),
        };
        dir.load_weights(&mut vs, dtype)?;
        let prefix = dir.text_prefix();
        Ok(Encoder {
            net,
            _vs: vs,
            dir: dir.clone(),
            prefix,
        })
    }

    /// Unit-length embeddings `[batch, hidden]`.
    pub fn forward(&self, p: &Padded) -> Result<Tensor> {
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
            Ok(mean / norm)
        })
    }
}

pub fn _assert_send() {
    fn s<T: Send>() {}
    s::<Encoder>();
    s::<super::classifier::SeqClassifier>();
    s::<super::token::TokenClassifier>();
}
