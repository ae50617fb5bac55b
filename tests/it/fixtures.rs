//! Tiny random models generated at test time through rust-bert's own config
//! and model types: hidden 32, 2 layers, a BPE tokenizer of a few hundred
//! pieces trained with the `tokenizers` crate on multilingual text.
//!
//! Classifier weights are zeroed and their bias set, so a head's output is a
//! known function of its labels whatever the input: that is what lets the
//! tests check label order, spans and windowing without a real checkpoint.

use rust_bert::bert::{BertConfig, BertEmbeddings, BertModel};
use rust_bert::deberta_v2::{DebertaV2Config, DebertaV2ForSequenceClassification};
use rust_bert::roberta::{RobertaForSequenceClassification, RobertaForTokenClassification};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tch::nn::VarStore;
use tch::{Device, Tensor};
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{
    AddedToken, DecoderWrapper, ModelWrapper, NormalizerWrapper, PostProcessorWrapper,
    PreTokenizerWrapper, TokenizerBuilder, TokenizerImpl,
};

pub const CORPUS: &str = "\
The parliament approved new military aid to Ukraine on Tuesday, officials said.
Talks on a ceasefire will continue next week in Geneva.
قال وزير الخارجية إن بلاده ستواصل تقديم المساعدات إلى أوكرانيا.
الرئيس بوتين التقى زيلينسكي في إسطنبول؟
Министр заявил, что переговоры продолжатся в Женеве.
Уряд України повідомив про нову допомогу з Києва.
Le gouvernement français a annoncé une aide humanitaire à Kiev.
Die Bundesregierung liefert weitere Waffen an die Ukraine.
El gobierno español envió ayuda a Ucrania.
Café naïve résumé — José Müller 👍🏽 🇺🇦 e\u{301}te\u{301}
";

fn tokenizer_json() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("corpus.txt");
        std::fs::write(&corpus, CORPUS.repeat(3)).unwrap();
        let specials: Vec<AddedToken> = ["<s>", "<pad>", "</s>", "<unk>"]
            .iter()
            .map(|s| AddedToken::from(s.to_string(), true))
            .collect();
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .show_progress(false)
            .vocab_size(400)
            .min_frequency(1)
            .special_tokens(specials)
            .build()
            .into();
        let model = BPE::builder().unk_token("<unk>".into()).build().unwrap();
        let post = TemplateProcessing::builder()
            .try_single("<s> $A </s>")
            .unwrap()
            .try_pair("<s> $A </s> </s> $B </s>")
            .unwrap()
            .special_tokens(vec![("<s>", 0), ("</s>", 2)])
            .build()
            .unwrap();
        let mut tok: TokenizerImpl<
            ModelWrapper,
            NormalizerWrapper,
            PreTokenizerWrapper,
            PostProcessorWrapper,
            DecoderWrapper,
        > = TokenizerBuilder::new()
            .with_model(model.into())
            .with_normalizer(Some(NFC.into()))
            .with_pre_tokenizer(Some(
                Metaspace::new('▁', PrependScheme::Always, true).into(),
            ))
            .with_post_processor(Some(post.into()))
            .with_decoder(None)
            .build()
            .unwrap();
        tok.train_from_files(&mut trainer, vec![corpus.display().to_string()])
            .unwrap();
        let out = dir.path().join("tokenizer.json");
        tok.save(&out, false).unwrap();
        std::fs::read_to_string(out).unwrap()
    })
}

fn vocab_size() -> i64 {
    let v: serde_json::Value = serde_json::from_str(tokenizer_json()).unwrap();
    let n = v["model"]["vocab"].as_object().unwrap().len();
    n as i64 + 4
}

fn config(model_type: &str, labels: &[&str]) -> serde_json::Value {
    let mut c = json!({
        "model_type": model_type,
        "hidden_act": "gelu",
        "attention_probs_dropout_prob": 0.1,
        "hidden_dropout_prob": 0.1,
        "hidden_size": 32,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "max_position_embeddings": 66,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "type_vocab_size": if model_type == "bert" { 2 } else { 1 },
        "vocab_size": vocab_size(),
        "pad_token_id": 1,
        "layer_norm_eps": 1e-5,
    });
    if !labels.is_empty() {
        let id2label: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), json!(l)))
            .collect();
        let label2id: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.to_string(), json!(i)))
            .collect();
        c["id2label"] = id2label.into();
        c["label2id"] = label2id.into();
    }
    c
}

fn write_common(dir: &Path, cfg: &serde_json::Value) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(cfg).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json()).unwrap();
}

fn set(vs: &VarStore, name: &str, values: &[f32]) {
    let vars = vs.variables();
    let t = vars
        .get(name)
        .unwrap_or_else(|| panic!("no variable {name}"));
    let src = Tensor::from_slice(values).view(t.size().as_slice());
    tch::no_grad(|| {
        let mut t = t.shallow_clone();
        t.copy_(&src);
    });
}

fn zero(vs: &VarStore, name: &str) {
    let vars = vs.variables();
    let t = &vars[name];
    tch::no_grad(|| {
        let _ = t.shallow_clone().zero_();
    });
}

/// libtorch's random generator is global: tests run on parallel threads, so
/// a model is generated under this lock, or two generated at once would
/// draw from each other's stream and get weights that depend on timing.
static SEED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the generator, seeded, until the guard is dropped. Tests that
/// build models in-process (random init, then loaded weights) hold it too.
pub fn seeded(seed: i64) -> std::sync::MutexGuard<'static, ()> {
    let guard = SEED.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed);
    guard
}

/// XLM-R NLI head whose logits are `bias` for every input.
pub fn nli(dir: &Path, labels: &[&str], bias: &[f32]) -> PathBuf {
    let _seeded = seeded(1);
    let cfg = config("xlm-roberta", labels);
    write_common(dir, &cfg);
    let vs = VarStore::new(Device::Cpu);
    let bc: BertConfig = serde_json::from_value(cfg).unwrap();
    let _m = RobertaForSequenceClassification::new(vs.root(), &bc).unwrap();
    zero(&vs, "classifier.out_proj.weight");
    set(&vs, "classifier.out_proj.bias", bias);
    vs.save(dir.join("model.safetensors")).unwrap();
    dir.to_path_buf()
}

/// DeBERTa-v2 NLI head (the mDeBERTa layout: relative attention, no token
/// types) whose logits are `bias` for every input.
pub fn nli_deberta(dir: &Path, labels: &[&str], bias: &[f32]) -> PathBuf {
    let _seeded = seeded(4);
    let mut cfg = config("deberta-v2", labels);
    for (k, v) in [
        ("type_vocab_size", json!(0)),
        ("relative_attention", json!(true)),
        ("max_relative_positions", json!(-1)),
        ("position_buckets", json!(16)),
        ("norm_rel_ebd", json!("layer_norm")),
        ("share_att_key", json!(true)),
        ("pos_att_type", json!(["p2c", "c2p"])),
        ("layer_norm_eps", json!(1e-7)),
        ("position_biased_input", json!(false)),
        ("pooler_hidden_size", json!(32)),
        ("pooler_dropout", json!(0)),
        ("pooler_hidden_act", json!("gelu")),
        ("pad_token_id", json!(1)),
    ] {
        cfg[k] = v;
    }
    write_common(dir, &cfg);
    let vs = VarStore::new(Device::Cpu);
    let dc: DebertaV2Config = serde_json::from_value(cfg).unwrap();
    let _m = DebertaV2ForSequenceClassification::new(vs.root(), &dc).unwrap();
    zero(&vs, "classifier.weight");
    set(&vs, "classifier.bias", bias);
    vs.save(dir.join("model.safetensors")).unwrap();
    dir.to_path_buf()
}

/// XLM-R NER head predicting label `force` on every token.
pub fn ner(dir: &Path, labels: &[&str], force: usize) -> PathBuf {
    let _seeded = seeded(2);
    let cfg = config("xlm-roberta", labels);
    write_common(dir, &cfg);
    let vs = VarStore::new(Device::Cpu);
    let bc: BertConfig = serde_json::from_value(cfg).unwrap();
    let _m = RobertaForTokenClassification::new(vs.root(), &bc).unwrap();
    zero(&vs, "classifier.weight");
    let mut bias = vec![0.0; labels.len()];
    bias[force] = 8.0;
    set(&vs, "classifier.bias", &bias);
    vs.save(dir.join("model.safetensors")).unwrap();
    dir.to_path_buf()
}

/// Random BERT sentence encoder (no pooler, HF BertModel names).
pub fn encoder(dir: &Path) -> PathBuf {
    let _seeded = seeded(3);
    let cfg = config("bert", &[]);
    write_common(dir, &cfg);
    let vs = VarStore::new(Device::Cpu);
    let bc: BertConfig = serde_json::from_value(cfg).unwrap();
    let _m: BertModel<BertEmbeddings> = BertModel::new_with_optional_pooler(vs.root(), &bc, false);
    vs.save(dir.join("model.safetensors")).unwrap();
    dir.to_path_buf()
}

pub const NER_LABELS: &[&str] = &["O", "B-PER", "I-PER", "B-LOC", "I-LOC"];
