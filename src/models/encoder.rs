//! Sentence encoder (BERT or XLM-R base model): mean pooling over the attention
//! mask, then L2 normalisation, as multilingual-e5 is used. It can also hand
//! out one layer's token states from the same pass, for NER heads
//! ([`super::tuned_head`]).

use super::{Arch, DType, ModelDir};
use crate::batch::Padded;
use crate::error::{Error, Result};
use rust_bert::bert::{BertConfig, BertModel};
use rust_bert::roberta::RobertaEmbeddings;
use rust_bert::Activation;
use tch::nn::{self, VarStore};
use tch::{Device, Kind, Tensor};

enum Net {
    /// BERT runs through [`bert_layer`] over the variables [`lay_out_bert`]
    /// lays out.
    Bert,
    Roberta(Box<BertModel<RobertaEmbeddings>>),
}

/// Lays out BERT's variables as rust-bert's `BertModel` (no pooler) names
/// them, all zeros: the weights are read over them at once. Building
/// rust-bert's modules instead drew random initial values for every layer
/// (and, before, for the 96M-entry e5 vocabulary: half a second and a
/// second copy of the table), about 0.2 s of CPU of every start-up.
fn lay_out_bert(p: &nn::Path, cfg: &BertConfig) {
    let h = cfg.hidden_size;
    // The VarStore keeps each tensor; the handle returned is not needed.
    let zeros = |p: &nn::Path, name: &str, dims: &[i64]| drop(p.zeros(name, dims));
    let linear = |p: nn::Path, inputs: i64, outputs: i64| {
        zeros(&p, "weight", &[outputs, inputs]);
        zeros(&p, "bias", &[outputs]);
    };
    let norm = |p: nn::Path| {
        zeros(&p, "weight", &[h]);
        zeros(&p, "bias", &[h]);
    };
    let e = p / "embeddings";
    for (name, rows) in [
        ("word_embeddings", cfg.vocab_size),
        ("position_embeddings", cfg.max_position_embeddings),
        ("token_type_embeddings", cfg.type_vocab_size),
    ] {
        zeros(&(&e / name), "weight", &[rows, h]);
    }
    norm(&e / "LayerNorm");
    for i in 0..cfg.num_hidden_layers {
        let l = p / "encoder" / "layer" / i;
        for name in ["query", "key", "value"] {
            linear(&l / "attention" / "self" / name, h, h);
        }
        linear(&l / "attention" / "output" / "dense", h, h);
        norm(&l / "attention" / "output" / "LayerNorm");
        linear(&l / "intermediate" / "dense", h, cfg.intermediate_size);
        linear(&l / "output" / "dense", cfg.intermediate_size, h);
        norm(&l / "output" / "LayerNorm");
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
    /// The weights as the functional forward reads them, gathered at the
    /// first pass (after any adapter is merged).
    prepared: std::cell::OnceCell<Prepared>,
    /// The dtype the functional forward's linear maps and attention run in.
    /// BERT's weights are held in f32 whatever the dtype (embedding tables,
    /// norms and adapter merges stay exact; only the maps are cast, as
    /// autocast does).
    linear: Kind,
}

/// Bumped when the forward's arithmetic changes, so feature caches made by
/// an older one are not served.
pub const FORWARD_VERSION: &str = "f3";

/// Adds to linear map `module`'s output (index into [`super::lora::MODULES`])
/// given its input.
pub type ModuleExtra<'a> = &'a dyn Fn(usize, &Tensor) -> Tensor;

/// [`ModuleExtra`] for every layer: `(layer, module, input)`.
pub type LayerExtra<'a> = &'a dyn Fn(usize, usize, &Tensor) -> Tensor;

/// A linear map's weight and bias.
pub type Linear = (Tensor, Tensor);

/// One BERT layer's weights, query, key and value stacked into one map so
/// the layer makes one GEMM for all three.
pub struct LayerWeights {
    qkv: Linear,
    attn_out: Linear,
    attn_ln: Linear,
    inter: Linear,
    out: Linear,
    out_ln: Linear,
}

impl LayerWeights {
    /// From the variables named `{stem}attention.self.query.weight` etc.,
    /// in `kind` (the weights stay shared when they already are).
    pub fn gather(
        get: &dyn Fn(&str) -> Result<Tensor>,
        stem: &str,
        kind: Kind,
    ) -> Result<LayerWeights> {
        let lin = |name: &str| -> Result<Linear> {
            Ok((
                get(&format!("{stem}{name}.weight"))?.to_kind(kind),
                get(&format!("{stem}{name}.bias"))?.to_kind(kind),
            ))
        };
        // Layer norms run in f32 whatever the dtype (as autocast does).
        let norm = |name: &str| -> Result<Linear> {
            Ok((
                get(&format!("{stem}{name}.LayerNorm.weight"))?.to_kind(Kind::Float),
                get(&format!("{stem}{name}.LayerNorm.bias"))?.to_kind(Kind::Float),
            ))
        };
        let (q, k, v) = (
            lin("attention.self.query")?,
            lin("attention.self.key")?,
            lin("attention.self.value")?,
        );
        Ok(LayerWeights {
            qkv: (
                Tensor::cat(&[q.0, k.0, v.0], 0),
                Tensor::cat(&[q.1, k.1, v.1], 0),
            ),
            attn_out: lin("attention.output.dense")?,
            attn_ln: norm("attention.output")?,
            inter: lin("intermediate.dense")?,
            out: lin("output.dense")?,
            out_ln: norm("output")?,
        })
    }
}

/// What varies between the plain forward and the adapter-training one:
/// `extra(module, x)` adds to linear map `module`'s output (index into
/// [`super::lora::MODULES`]), and dropout applies when `train`.
pub struct LayerRun<'a> {
    pub cfg: &'a BertConfig,
    pub train: bool,
    pub extra: Option<ModuleExtra<'a>>,
}

/// One BERT layer over the f32 residual stream `x` `[batch, seq, hidden]`
/// with the additive attention `mask` `[batch, 1, 1, seq]`. The linear maps
/// and attention run in the weights' dtype (bf16 or f32), residuals and
/// layer norms in f32, as autocast does; attention is libtorch's fused SDPA.
pub fn bert_layer(x: &Tensor, w: &LayerWeights, mask: &Tensor, run: &LayerRun) -> Tensor {
    let cfg = run.cfg;
    let kind = w.qkv.0.kind();
    let (h, heads) = (cfg.hidden_size, cfg.num_attention_heads);
    let drop = |t: Tensor| t.dropout(cfg.hidden_dropout_prob, run.train);
    let lin = |x: &Tensor, l: &Linear| x.linear(&l.0, Some(&l.1));
    let ln = |x: &Tensor, l: &Linear| x.layer_norm([h], Some(&l.0), Some(&l.1), 1e-12, false);
    let add = |m: usize, x: &Tensor, y: Tensor| match run.extra {
        Some(f) => y + f(m, x),
        None => y,
    };
    let xc = x.to_kind(kind);
    let bs = x.size()[0];
    let split = |t: Tensor| t.view([bs, -1, heads, h / heads]).transpose(1, 2);
    let qkv = lin(&xc, &w.qkv);
    let mut parts = qkv.split(h, -1).into_iter();
    let mut next = |m: usize| split(add(m, &xc, parts.next().expect("q, k, v")));
    let (q, k, v) = (next(0), next(1), next(2));
    let p_drop = if run.train {
        cfg.attention_probs_dropout_prob
    } else {
        0.0
    };
    let ctx = Tensor::scaled_dot_product_attention(&q, &k, &v, Some(mask), p_drop, false, None)
        .transpose(1, 2)
        .contiguous()
        .view([bs, -1, h]);
    let a = drop(add(3, &ctx, lin(&ctx, &w.attn_out)));
    let x = ln(&(a.to_kind(Kind::Float) + x), &w.attn_ln);
    let xc = x.to_kind(kind);
    let inter = activation(cfg, &add(4, &xc, lin(&xc, &w.inter)));
    let o = drop(add(5, &inter, lin(&inter, &w.out)));
    ln(&(o.to_kind(Kind::Float) + x), &w.out_ln)
}

/// The feed-forward activation. GELU (exact or tanh) at inference is
/// libtorch's one fused op: rust-bert composes it of five element-wise ops,
/// each a pass over and an allocation of the `[tokens, intermediate]`
/// tensor (per 2,048-token batch and layer: 9.6 ms against 1.9 ms).
/// Training keeps rust-bert's form, which the adapters were trained with.
fn activation(cfg: &BertConfig, x: &Tensor) -> Tensor {
    match cfg.hidden_act {
        Activation::gelu if !x.requires_grad() => x.gelu("none"),
        Activation::gelu_new if !x.requires_grad() => x.gelu("tanh"),
        ref other => (other.get_function().get_fn())(x),
    }
}

/// The additive attention mask `[batch, 1, 1, seq]` of a 0/1 mask, in `kind`.
pub fn attention_mask(mask: &Tensor, kind: Kind) -> Tensor {
    ((mask.to_kind(Kind::Float).neg() + 1.0)
        .unsqueeze(1)
        .unsqueeze(1)
        * -10000.0)
        .to_kind(kind)
}

/// The encoder's weights gathered for [`bert_layer`].
struct Prepared {
    layers: Vec<LayerWeights>,
    /// Word, position and token-type tables, and the embedding layer norm.
    tables: [Tensor; 3],
    emb_ln: Linear,
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
            Arch::Roberta => Net::Roberta(Box::new(BertModel::new_with_optional_pooler(
                &p, &cfg, false,
            ))),
            _ => {
                lay_out_bert(&p, &cfg);
                Net::Bert
            }
        };
        let linear = match dtype {
            DType::F32 => Kind::Float,
            DType::Bf16 => Kind::BFloat16,
        };
        // rust-bert's RoBERTa forward runs in the weights' own dtype.
        let held = match dir.arch {
            Arch::Roberta => dtype,
            _ => DType::F32,
        };
        dir.load_weights(&mut vs, held)?;
        let base = prefix.map(|b| format!("{b}.")).unwrap_or_default();
        let prefix = dir.text_prefix();
        Ok(Encoder {
            net,
            _vs: vs,
            dir: dir.clone(),
            prefix,
            base,
            config: cfg,
            prepared: Default::default(),
            linear,
        })
    }

    /// The dtype the encoder's linear maps run in.
    pub fn kind(&self) -> Kind {
        self.linear
    }

    fn prepared(&self) -> &Prepared {
        self.prepared.get_or_init(|| {
            let v = self._vs.variables();
            let get = |name: &str| -> Result<Tensor> {
                v.get(name)
                    .map(Tensor::shallow_clone)
                    .ok_or_else(|| Error::model(&self.dir.path, format!("no tensor `{name}`")))
            };
            let emb = self.embeddings_stem();
            let gather = || -> Result<Prepared> {
                let layers = (0..self.num_layers())
                    .map(|i| LayerWeights::gather(&get, &self.layer_var(i, ""), self.linear))
                    .collect::<Result<Vec<_>>>()?;
                let table = |n: &str| get(&format!("{emb}.{n}.weight"));
                Ok(Prepared {
                    layers,
                    tables: [
                        table("word_embeddings")?,
                        table("position_embeddings")?,
                        table("token_type_embeddings")?,
                    ],
                    emb_ln: (
                        get(&format!("{emb}.LayerNorm.weight"))?.to_kind(Kind::Float),
                        get(&format!("{emb}.LayerNorm.bias"))?.to_kind(Kind::Float),
                    ),
                })
            };
            // The names were checked when the weights were read.
            gather().expect("encoder variables are complete")
        })
    }

    /// BERT's token states through the functional layers: the top layer's
    /// `[batch, seq, hidden]` (f32), and the outputs of layers `keep`
    /// (1-based). `extra(layer, module, x)` adds to a linear map's output
    /// (adapter training).
    pub fn bert_states(
        &self,
        p: &Padded,
        keep: &[usize],
        train: bool,
        extra: Option<LayerExtra>,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        if self.dir.arch != Arch::Bert {
            return Err(Error::model(
                &self.dir.path,
                "the functional forward is for BERT encoders",
            ));
        }
        let w = self.prepared();
        let shape = p.ids.size();
        let positions = Tensor::arange(shape[1], (Kind::Int64, p.ids.device()))
            .unsqueeze(0)
            .expand(&shape, true);
        let types = if self.dir.type_vocab_size > 1 {
            p.type_ids.shallow_clone()
        } else {
            Tensor::zeros(&shape, (Kind::Int64, p.ids.device()))
        };
        let look = |t: &Tensor, ids: &Tensor| {
            Tensor::embedding(t, ids, -1, false, false).to_kind(Kind::Float)
        };
        let x = look(&w.tables[0], &p.ids)
            + look(&w.tables[1], &positions)
            + look(&w.tables[2], &types);
        let h = self.config.hidden_size;
        let mut x = x
            .layer_norm([h], Some(&w.emb_ln.0), Some(&w.emb_ln.1), 1e-12, false)
            .dropout(self.config.hidden_dropout_prob, train);
        let mask = attention_mask(&p.mask, w.layers[0].qkv.0.kind());
        let mut states: Vec<Option<Tensor>> = keep.iter().map(|_| None).collect();
        for (i, lw) in w.layers.iter().enumerate() {
            let f;
            let run = LayerRun {
                cfg: &self.config,
                train,
                extra: match extra {
                    Some(e) => {
                        f = move |m: usize, t: &Tensor| e(i, m, t);
                        Some(&f as ModuleExtra)
                    }
                    None => None,
                },
            };
            x = bert_layer(&x, lw, &mask, &run);
            for (slot, &l) in states.iter_mut().zip(keep) {
                if l == i + 1 {
                    *slot = Some(x.shallow_clone());
                }
            }
        }
        let states = states
            .into_iter()
            .zip(keep)
            .map(|(s, &l)| {
                s.ok_or_else(|| {
                    Error::model(
                        &self.dir.path,
                        format!("has {} layers; layer {l} does not exist", self.num_layers()),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((x, states))
    }

    /// Forgets the gathered weights (after they were changed in place).
    pub fn weights_changed(&mut self) {
        self.prepared = Default::default();
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

    /// The token states `[tokens, hidden]` that encoder layer `layer`
    /// outputs for one text (its first window, with the text prefix), as a
    /// paragraph's would be: what a head for any target reads first.
    pub fn text_states(&self, text: &str, layer: usize) -> Result<Tensor> {
        let tok = self.dir.tokenizer()?;
        let wins = tok.windows(&format!("{}{text}", self.prefix), 0)?;
        let first = wins
            .first()
            .ok_or_else(|| Error::Config(format!("target text `{text}` has no tokens")))?;
        let device = self._vs.device();
        let padded = crate::batch::pad(&[first], self.dir.pad_id, self.dir.max_len, device);
        let (_, states) = self.forward_layers(&padded, &[layer])?;
        Ok(states[0].get(0).narrow(0, 0, first.len() as i64).copy())
    }

    /// Unit-length embeddings `[batch, hidden]`.
    pub fn forward(&self, p: &Padded) -> Result<Tensor> {
        Ok(self.forward_layers(p, &[])?.0)
    }

    /// Unit-length embeddings, and the token states `[batch, seq, hidden]`
    /// that each of encoder layers `layers` (1-based) outputs, from one pass.
    /// Needs an encoder loaded with `layers` unless `layers` is empty.
    pub fn forward_layers(&self, p: &Padded, layers: &[usize]) -> Result<(Tensor, Vec<Tensor>)> {
        tch::no_grad(|| {
            let (h, states) = match &self.net {
                Net::Bert => self.bert_states(p, layers, false, None)?,
                Net::Roberta(m) => {
                    let types = (self.dir.type_vocab_size > 1).then_some(&p.type_ids);
                    let out = m.forward_t(
                        Some(&p.ids),
                        Some(&p.mask),
                        types,
                        None,
                        None,
                        None,
                        None,
                        false,
                    )?;
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
                    (out.hidden_state.to_kind(Kind::Float), states)
                }
            };
            let mean = mean_pool(&h, &p.mask);
            let norm = mean
                .norm_scalaropt_dim(2, [1i64].as_slice(), true)
                .clamp_min(1e-12);
            Ok((mean / norm, states))
        })
    }
}

/// The mean of token states `[batch, seq, hidden]` over the unmasked tokens
/// (`mask` `[batch, seq]`, 1 = token): `[batch, hidden]`.
pub fn mean_pool(h: &Tensor, mask: &Tensor) -> Tensor {
    let m = mask.to_kind(Kind::Float).unsqueeze(-1);
    let count = m
        .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
        .clamp_min(1e-9);
    (h * &m).sum_dim_intlist([1i64].as_slice(), false, Kind::Float) / count
}

pub fn _assert_send() {
    fn s<T: Send>() {}
    s::<Encoder>();
    s::<super::classifier::SeqClassifier>();
    s::<super::token::TokenClassifier>();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout names and shapes every variable as rust-bert's
    /// `BertModel` does, all trainable, so weights and adapters written for
    /// one load into the other.
    #[test]
    fn bert_layout_matches_rust_berts_model() {
        let cfg = BertConfig {
            hidden_size: 32,
            intermediate_size: 48,
            num_hidden_layers: 3,
            num_attention_heads: 4,
            vocab_size: 101,
            max_position_embeddings: 40,
            type_vocab_size: 2,
            ..BertConfig::default()
        };
        let layout = |vs: &VarStore| -> std::collections::BTreeMap<String, Vec<i64>> {
            vs.variables()
                .into_iter()
                .map(|(k, v)| (k, v.size()))
                .collect()
        };
        let theirs = VarStore::new(Device::Cpu);
        let _: BertModel<rust_bert::bert::BertEmbeddings> =
            BertModel::new_with_optional_pooler(theirs.root() / "bert", &cfg, false);
        let ours = VarStore::new(Device::Cpu);
        lay_out_bert(&(ours.root() / "bert"), &cfg);
        assert_eq!(layout(&ours), layout(&theirs));
        assert_eq!(
            ours.trainable_variables().len(),
            theirs.trainable_variables().len()
        );
        assert!(ours
            .variables()
            .values()
            .all(|t| t.abs().sum(Kind::Float).double_value(&[]) == 0.0));
    }

    /// The fused GELU at inference computes rust-bert's composed one (exact
    /// and tanh forms) to float rounding, from -12 to 12 and in both test
    /// dtypes; with gradients on, it is rust-bert's form exactly.
    #[test]
    fn fused_gelu_matches_rust_berts_composed_form() {
        let x = Tensor::linspace(-12.0, 12.0, 4801, (Kind::Float, Device::Cpu));
        for act in [Activation::gelu, Activation::gelu_new] {
            let cfg = BertConfig {
                hidden_act: act,
                ..BertConfig::default()
            };
            let function = cfg.hidden_act.get_function();
            let composed = function.get_fn();
            for (kind, tol) in [(Kind::Float, 1e-6), (Kind::BFloat16, 2e-2)] {
                let x = x.to_kind(kind);
                let fused = activation(&cfg, &x).to_kind(Kind::Float);
                let reference = composed(&x).to_kind(Kind::Float);
                // Relative to |value| + 1: absolute near 0, relative beyond.
                let diff = ((&fused - &reference).abs() / (reference.abs() + 1.0))
                    .max()
                    .double_value(&[]);
                assert!(diff <= tol, "{kind:?}: max difference {diff}");
            }
            let g = x.set_requires_grad(true);
            assert!(activation(&cfg, &g).equal(&composed(&g)));
        }
    }
}
