//! Token classification (BERT, XLM-R) returning per-token logits, for NER.

use super::{Arch, DType, ModelDir};
use crate::batch::Padded;
use crate::error::{Error, Result};
use rust_bert::bert::{BertConfig, BertForTokenClassification};
use rust_bert::roberta::RobertaForTokenClassification;
use tch::nn::VarStore;
use tch::{Device, Tensor};

enum Net {
    Bert(BertForTokenClassification),
    Roberta(RobertaForTokenClassification),
}

pub struct TokenClassifier {
    net: Net,
    _vs: VarStore,
    pub dir: ModelDir,
}

impl TokenClassifier {
    pub fn load(dir: &ModelDir, device: Device, dtype: DType) -> Result<TokenClassifier> {
        if dir.labels.is_empty() {
            return Err(Error::model(
                &dir.path,
                "config.json: an NER model needs `id2label`",
            ));
        }
        let mut vs = VarStore::new(device);
        let root = vs.root();
        let cfg: BertConfig = dir.parse_config()?;
        let net = match dir.arch {
            Arch::Bert => Net::Bert(BertForTokenClassification::new(&root, &cfg)?),
            Arch::Roberta => Net::Roberta(RobertaForTokenClassification::new(&root, &cfg)?),
            Arch::DebertaV2 => return Err(Error::model(
                &dir.path,
                "deberta-v2 token classification is not supported; use a BERT or XLM-R NER model",
            )),
        };
        dir.load_weights(&mut vs, dtype)?;
        Ok(TokenClassifier {
            net,
            _vs: vs,
            dir: dir.clone(),
        })
    }

    /// Logits `[batch, tokens, labels]`.
    pub fn forward(&self, p: &Padded) -> Result<Tensor> {
        let types = (self.dir.type_vocab_size > 1).then_some(&p.type_ids);
        Ok(tch::no_grad(|| match &self.net {
            Net::Bert(m) => {
                m.forward_t(Some(&p.ids), Some(&p.mask), types, None, None, false)
                    .logits
            }
            Net::Roberta(m) => {
                m.forward_t(Some(&p.ids), Some(&p.mask), types, None, None, false)
                    .logits
            }
        }))
    }
}
