//! `paratag train` and tagging with trained heads.

use super::fixtures;
use super::{paratag, read, stderr, write, CODEBOOK};
use std::path::{Path, PathBuf};

const TEXTS: &[(&str, &str, &str)] = &[
    (
        "Parliament approved a new aid package for Ukraine.",
        "aid_to_ukraine",
        "favor",
    ),
    (
        "The minister said more weapons for Kyiv are needed.",
        "aid_to_ukraine",
        "favor",
    ),
    (
        "Critics said sending more money to Ukraine is a waste.",
        "aid_to_ukraine",
        "against",
    ),
    (
        "Lawmakers refused to fund further military aid.",
        "aid_to_ukraine",
        "against",
    ),
    (
        "Diplomats met in Geneva to discuss a ceasefire.",
        "peace_talks",
        "none",
    ),
    (
        "Negotiators reported progress in the peace talks.",
        "peace_talks",
        "none",
    ),
    (
        "Talks on a truce will resume next week.",
        "peace_talks",
        "none",
    ),
    (
        "البرلمان وافق على حزمة مساعدات جديدة لأوكرانيا.",
        "aid_to_ukraine",
        "favor",
    ),
    (
        "Переговоры о перемирии продолжатся в Женеве.",
        "peace_talks",
        "none",
    ),
    (
        "Дипломати обговорили мирні переговори.",
        "peace_talks",
        "none",
    ),
];

fn gold(dir: &Path, name: &str, rows: &[(&str, &str, &str)]) -> PathBuf {
    let lines: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, (t, topic, stance))| {
            serde_json::json!({"article_id": format!("{name}{i}"), "paragraph": 0, "text": t,
                "topic": topic, "stance": {"ukraine_aid": stance}})
            .to_string()
        })
        .collect();
    write(
        dir,
        &format!("{name}.gold.jsonl"),
        &(lines.join("\n") + "\n"),
    )
}

fn train(kind: &str, train: &Path, dev: &Path, cb: &Path, enc: &Path, out: &Path) {
    let o = paratag(&[
        "train",
        kind,
        "--train",
        train.to_str().unwrap(),
        "--dev",
        dev.to_str().unwrap(),
        "-c",
        cb.to_str().unwrap(),
        "--encoder",
        enc.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--epochs",
        "60",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn heads_train_deterministically_check_their_encoder_and_tag() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let enc = fixtures::encoder(&root.join("enc"));
    let cb = write(root, "cb.toml", CODEBOOK);
    let tr = gold(root, "train", &TEXTS[..8]);
    let dv = gold(root, "dev", &TEXTS[4..]);
    let (h1, h2, hs) = (root.join("h1"), root.join("h2"), root.join("hs"));
    train("topic", &tr, &dv, &cb, &enc, &h1);
    train("topic", &tr, &dv, &cb, &enc, &h2);
    let bytes = |h: &Path| std::fs::read(h.join("head.safetensors")).unwrap();
    assert_eq!(
        bytes(&h1),
        bytes(&h2),
        "same data and seed, same head bytes"
    );
    let meta = std::fs::read_to_string(h1.join("head.toml")).unwrap();
    assert!(
        meta.contains("task = \"topic\"") && meta.contains("[dev]"),
        "{meta}"
    );
    train("stance", &tr, &dv, &cb, &enc, &hs);

    // Tag with both heads in one run, and with each head alone.
    let corpus = write(
        root,
        "c.jsonl",
        &TEXTS
            .iter()
            .enumerate()
            .map(|(i, t)| serde_json::json!({"id": format!("a{i}"), "text": t.0}).to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let tag_with = |enc: &Path, out: &Path, heads: &[&Path], extra: &[&str]| {
        let mut a = vec![
            "tag",
            corpus.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-c",
            cb.to_str().unwrap(),
            "--encoder",
            enc.to_str().unwrap(),
            "--no-ner",
            "--heads",
        ];
        a.extend(heads.iter().map(|h| h.to_str().unwrap()));
        a.extend_from_slice(extra);
        paratag(&a)
    };
    let tag = |out: &Path, heads: &[&Path], extra: &[&str]| tag_with(&enc, out, heads, extra);
    let both = root.join("both.parquet");
    let o = tag(&both, &[&h1, &hs], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let topic_only = root.join("t.parquet");
    assert!(tag(&topic_only, &[&h1], &["--no-stance"]).status.success());
    let stance_only = root.join("s.parquet");
    // The stance head alone: topics by similarity would gate differently, so
    // compare on a codebook without the gate (CODEBOOK has none).
    assert!(tag(&stance_only, &[&hs], &["--no-topic"]).status.success());
    let (b, t, s) = (read(&both), read(&topic_only), read(&stance_only));
    assert!(b
        .column("topic_scores")
        .unwrap()
        .equals_missing(t.column("topic_scores").unwrap()));
    assert!(b
        .column("topic")
        .unwrap()
        .equals_missing(t.column("topic").unwrap()));
    for c in [
        "stance_ukraine_aid",
        "stance_ukraine_aid_favor",
        "stance_ukraine_aid_against",
    ] {
        assert!(
            b.column(c).unwrap().equals_missing(s.column(c).unwrap()),
            "{c}"
        );
    }
    // The head learned its training set: most training topics come back.
    let topics: Vec<Option<String>> = b
        .column("topic")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|x| x.map(String::from))
        .collect();
    let right = TEXTS
        .iter()
        .zip(&topics)
        .filter(|(t, p)| p.as_deref() == Some(t.1))
        .count();
    assert!(
        right >= 8,
        "{right} of {} topics right: {topics:?}",
        TEXTS.len()
    );

    // Another encoder (same shape, other weights) is refused, naming both hashes.
    let other = root.join("enc2");
    fixtures::encoder(&other);
    let st = other.join("model.safetensors");
    let mut w = std::fs::read(&st).unwrap();
    let n = w.len();
    w[n - 1] ^= 1;
    std::fs::write(&st, w).unwrap();
    let out = root.join("x.parquet");
    let o = tag_with(&other, &out, &[&h1], &[]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("was trained on encoder") && err.contains("retrain"),
        "{err}"
    );
    assert!(!out.exists());
}
