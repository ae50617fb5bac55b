//! Sequence classification (BERT, XLM-R, DeBERTa-v2) returning logits, used
//! for NLI zero-shot. rust-bert provides the modules; paratag feeds them its
//! own tokens and reads the label order from `id2label`, never assuming it.

use super::{Arch, DType, ModelDir};
use crate::batch::Padded;
use crate::error::{Error, Result};
use rust_bert::bert::{BertConfig, BertForSequenceClassification};
use rust_bert::deberta_v2::{DebertaV2Config, DebertaV2ForSequenceClassification};
use rust_bert::roberta::RobertaForSequenceClassification;
use tch::nn::VarStore;
use tch::{Device, Tensor};

enum Net {
    Bert(Box<BertForSequenceClassification>),
    Roberta(Box<RobertaForSequenceClassification>),
    Deberta(Box<DebertaV2ForSequenceClassification>),
}

pub struct SeqClassifier {
    net: Net,
    _vs: VarStore,
    pub dir: ModelDir,
}

impl SeqClassifier {
    pub fn load(dir: &ModelDir, device: Device, dtype: DType) -> Result<SeqClassifier> {
        if dir.labels.len() < 2 {
            return Err(Error::model(
                &dir.path,
                "config.json: a classifier needs `id2label` with 2 or more labels",
            ));
        }
        let mut vs = VarStore::new(device);
        let root = vs.root();
        let net = match dir.arch {
            Arch::Bert => {
                let cfg: BertConfig = dir.parse_config()?;
                Net::Bert(Box::new(BertForSequenceClassification::new(&root, &cfg)?))
            }
            Arch::Roberta => {
                let cfg: BertConfig = dir.parse_config()?;
                Net::Roberta(Box::new(RobertaForSequenceClassification::new(
                    &root, &cfg,
                )?))
            }
            Arch::DebertaV2 => {
                let cfg: DebertaV2Config = dir.parse_config()?;
                Net::Deberta(Box::new(DebertaV2ForSequenceClassification::new(
                    &root, &cfg,
                )?))
            }
        };
        dir.load_weights(&mut vs, dtype)?;
        Ok(SeqClassifier {
            net,
            _vs: vs,
            dir: dir.clone(),
        })
    }

    /// Logits `[batch, labels]`.
    pub fn forward(&self, p: &Padded) -> Result<Tensor> {
        let types = (self.dir.type_vocab_size > 1).then_some(&p.type_ids);
        tch::no_grad(|| {
            Ok(match &self.net {
                Net::Bert(m) => {
                    m.forward_t(Some(&p.ids), Some(&p.mask), types, None, None, false)
                        .logits
                }
                Net::Roberta(m) => {
                    m.forward_t(Some(&p.ids), Some(&p.mask), types, None, None, false)
                        .logits
                }
                Net::Deberta(m) => {
                    m.forward_t(Some(&p.ids), Some(&p.mask), types, None, None, false)?
                        .logits
                }
            })
        })
    }
}
