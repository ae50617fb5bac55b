//! `paratag train multi`: one adapter on every encoder layer, trained for
//! NER, topic and stance at once, merged into the encoder at load.

use super::fixtures;
use super::{paratag, read, stderr, write, CODEBOOK};
use paratag::batch;
use paratag::models::encoder::Encoder;
use paratag::models::lora::{self, Adapter};
use paratag::models::{DType, ModelDir};
use std::path::{Path, PathBuf};

/// Texts with topic, stance and the places they name (LOC).
const TEXTS: &[(&str, &str, &str, &[&str])] = &[
    (
        "Parliament approved new aid for Ukraine.",
        "aid_to_ukraine",
        "favor",
        &["Ukraine"],
    ),
    (
        "The minister said Kyiv needs more weapons 🚀.",
        "aid_to_ukraine",
        "favor",
        &["Kyiv"],
    ),
    (
        "Critics said money for Ukraine is a waste.",
        "aid_to_ukraine",
        "against",
        &["Ukraine"],
    ),
    (
        "Lawmakers in Berlin refused further aid.",
        "aid_to_ukraine",
        "against",
        &["Berlin"],
    ),
    (
        "Diplomats met in Geneva to discuss a ceasefire.",
        "peace_talks",
        "none",
        &["Geneva"],
    ),
    (
        "Negotiators in Vienna reported progress.",
        "peace_talks",
        "none",
        &["Vienna"],
    ),
    (
        "البرلمان وافق على مساعدات جديدة لأوكرانيا.",
        "aid_to_ukraine",
        "favor",
        &["أوكرانيا"],
    ),
    (
        "Переговоры о перемирии продолжатся в Женеве.",
        "peace_talks",
        "none",
        &["Женеве"],
    ),
    (
        "Café talks in Pariś ended without a truce.",
        "peace_talks",
        "none",
        &["Pariś"],
    ),
];

/// Gold JSONL; entity offsets in code points.
fn gold(dir: &Path, name: &str, rows: &[(&str, &str, &str, &[&str])]) -> PathBuf {
    let lines: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, (t, topic, stance, places))| {
            let ents: Vec<serde_json::Value> = places
                .iter()
                .map(|p| {
                    let byte = t.find(p).expect("place in text");
                    let start = t[..byte].chars().count();
                    let end = start + p.chars().count();
                    serde_json::json!({"start": start, "end": end, "label": "LOC"})
                })
                .collect();
            serde_json::json!({"article_id": format!("{name}{i}"), "paragraph": 0, "text": t,
                "topic": topic, "stance": {"ukraine_aid": stance}, "entities": ents})
            .to_string()
        })
        .collect();
    write(dir, &format!("{name}.jsonl"), &(lines.join("\n") + "\n"))
}

fn recipe(root: &Path, seed: u64) -> PathBuf {
    let tr = gold(root, "train", &TEXTS[..7]);
    let dv = gold(root, "dev", &TEXTS[5..]);
    write(root, "cb.toml", CODEBOOK);
    let mut text = format!(
        "codebook = \"cb.toml\"\n[lora]\nrank = 4\nalpha = 8.0\n[train]\nsteps = 12\neval_every = 4\nbatch_size = 4\nmax_tokens = 32\nlr = 0.01\nhead_lr = 0.05\nseed = {seed}\n"
    );
    for kind in ["ner", "topic", "stance"] {
        text += &format!(
            "[[source]]\nname = \"{kind}\"\nkind = \"{kind}\"\ntrain = [\"{}\"]\ndev = [\"{}\"]\n",
            tr.display(),
            dv.display()
        );
    }
    write(root, &format!("recipe-{seed}.toml"), &text)
}

fn train(recipe: &Path, enc: &Path, out: &Path) {
    let o = paratag(&[
        "train",
        "multi",
        "--recipe",
        recipe.to_str().unwrap(),
        "--encoder",
        enc.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

const HEADS: [&str; 3] = ["entities", "topic", "stance_ukraine_aid"];

fn files(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = vec![(
        "adapter".to_string(),
        std::fs::read(out.join("adapter").join(lora::WEIGHTS_FILE)).unwrap(),
    )];
    for h in HEADS {
        v.push((
            h.into(),
            std::fs::read(out.join(h).join("head.safetensors")).unwrap(),
        ));
    }
    v
}

#[test]
fn multi_task_training_is_deterministic_merges_exactly_and_checks_its_encoder() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let enc = fixtures::encoder(&root.join("enc"));
    let r1 = recipe(root, 1);
    let (o1, o2, o3) = (root.join("o1"), root.join("o2"), root.join("o3"));
    train(&r1, &enc, &o1);
    train(&r1, &enc, &o2);
    assert_eq!(files(&o1), files(&o2), "same recipe and seed, same weights");
    train(&recipe(root, 2), &enc, &o3);
    assert_ne!(
        files(&o1)[0],
        files(&o3)[0],
        "another seed, another adapter"
    );
    let meta = std::fs::read_to_string(o1.join("adapter").join(lora::META_FILE)).unwrap();
    assert!(
        meta.contains("rank = 4") && meta.contains("encoder_sha256"),
        "{meta}"
    );
    let head = std::fs::read_to_string(o1.join("entities").join("head.toml")).unwrap();
    assert!(
        head.contains("adapter_sha256") && head.contains("tune_layers = 0"),
        "{head}"
    );

    // Merged at load equals applied beside the weights, and the adapter
    // does change the encoder (so the comparison is not vacuous).
    let dir = ModelDir::open(&enc).unwrap();
    let mut e = Encoder::load(&dir, tch::Device::Cpu, DType::F32, true).unwrap();
    let ad = Adapter::load(&o1.join("adapter"), &e.config).unwrap();
    let tok = dir.tokenizer().unwrap();
    let wins: Vec<_> = TEXTS
        .iter()
        .flat_map(|t| tok.windows(&format!("query: {}", t.0), 8).unwrap())
        .collect();
    let refs: Vec<_> = wins.iter().collect();
    let p = batch::pad(&refs, dir.pad_id, dir.max_len, tch::Device::Cpu);
    let m = p.mask.to_kind(tch::Kind::Float).unsqueeze(-1);
    let n = e.num_layers();
    let plain = tch::no_grad(|| e.forward_layers(&p, &[n]).unwrap().1.remove(0)) * &m;
    let functional = tch::no_grad(|| lora::forward(&e, None, &p, false).unwrap()) * &m;
    let unmerged = tch::no_grad(|| lora::forward(&e, Some(&ad), &p, false).unwrap()) * &m;
    let diff = |a: &tch::Tensor, b: &tch::Tensor| (a - b).abs().max().double_value(&[]);
    assert!(
        diff(&plain, &functional) < 1e-4,
        "training forward = tagging forward"
    );
    assert!(
        diff(&plain, &unmerged) > 1e-3,
        "the adapter changes the encoder"
    );
    ad.merge_into(&mut e).unwrap();
    let merged = tch::no_grad(|| e.forward_layers(&p, &[n]).unwrap().1.remove(0)) * &m;
    assert!(
        diff(&merged, &unmerged) < 1e-4,
        "merged = unmerged: {}",
        diff(&merged, &unmerged)
    );

    // Tagging: all three heads from one pass of the adapted encoder.
    let lines: Vec<String> = TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": format!("a{i}"), "text": t.0}).to_string())
        .collect();
    let corpus = write(root, "c.jsonl", &lines.join("\n"));
    let cb = root.join("cb.toml");
    let tag = |enc: &Path, heads: &[PathBuf], out: &Path| {
        let mut a: Vec<String> = ["tag", corpus.to_str().unwrap(), "-o", out.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["-c".into(), cb.display().to_string()]);
        a.extend([
            "--encoder".into(),
            enc.display().to_string(),
            "--heads".into(),
        ]);
        a.extend(heads.iter().map(|h| h.display().to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        paratag(&a)
    };
    let heads: Vec<PathBuf> = HEADS.iter().map(|h| o1.join(h)).collect();
    let out = root.join("t.parquet");
    let o = tag(&enc, &heads, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let df = read(&out);
    assert_eq!(df.height(), TEXTS.len());
    for c in ["topic", "stance_ukraine_aid", "entities"] {
        assert!(
            df.column(c).is_ok(),
            "column {c}: {:?}",
            df.get_column_names()
        );
    }
    // Reversed head order: same table.
    let rev: Vec<PathBuf> = heads.iter().rev().cloned().collect();
    let out2 = root.join("t2.parquet");
    assert!(tag(&enc, &rev, &out2).status.success());
    assert!(read(&out2).equals_missing(&df));

    // A profile carries the adapter along with its heads.
    let home = root.join("home");
    let o = super::profile::install(&home, "adapted", &cb, &heads);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(home
        .join("profiles/adapted/heads/adapter")
        .join(lora::WEIGHTS_FILE)
        .exists());
    let out_p = root.join("tp.parquet");
    let o = super::profile::run_in(
        &home,
        root,
        &[
            "tag",
            corpus.to_str().unwrap(),
            "-o",
            out_p.to_str().unwrap(),
            "--profile",
            "adapted",
            "--encoder",
            enc.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(read(&out_p).equals_missing(&df));

    // A base encoder with one bit flipped is refused, by the adapter and
    // by the heads, before anything is tagged.
    let other = root.join("enc2");
    fixtures::encoder(&other);
    let st = other.join("model.safetensors");
    let mut w = std::fs::read(&st).unwrap();
    let last = w.len() - 1;
    w[last] ^= 1;
    std::fs::write(&st, w).unwrap();
    let odir = ModelDir::open(&other).unwrap();
    let mut oe = Encoder::load(&odir, tch::Device::Cpu, DType::F32, false).unwrap();
    let err = ad.merge_into(&mut oe).unwrap_err().to_string();
    assert!(
        err.contains("was trained on encoder") && err.contains("retrain"),
        "{err}"
    );
    let out3 = root.join("t3.parquet");
    let o = tag(&other, &heads, &out3);
    assert!(
        !o.status.success() && stderr(&o).contains("was trained on encoder"),
        "{}",
        stderr(&o)
    );
    assert!(!out3.exists());

    // A changed adapter no longer matches its heads.
    let aw = o1.join("adapter").join(lora::WEIGHTS_FILE);
    let mut w = std::fs::read(&aw).unwrap();
    let last = w.len() - 1;
    w[last] ^= 1;
    std::fs::write(&aw, w).unwrap();
    let o = tag(&enc, &heads, &out3);
    assert!(
        !o.status.success() && stderr(&o).contains("one `paratag train multi` run"),
        "{}",
        stderr(&o)
    );

    // A head of the plain encoder cannot share the run.
    let lin = root.join("lin");
    let o = paratag(&[
        "train",
        "topic",
        "--train",
        root.join("train.jsonl").to_str().unwrap(),
        "-c",
        cb.to_str().unwrap(),
        "--encoder",
        enc.to_str().unwrap(),
        "-o",
        lin.to_str().unwrap(),
        "--epochs",
        "5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tag(&enc, &[o2.join("entities"), lin], &out3);
    assert!(
        !o.status.success() && stderr(&o).contains("reads the plain encoder"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_recipes_get_one_line_errors() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let enc = fixtures::encoder(&root.join("enc"));
    gold(root, "train", TEXTS);
    let cases = [
        (
            "[train]\nsteps = 0\n[[source]]\nname='a'\nkind='ner'\ntrain=['train.jsonl']\n",
            "steps",
        ),
        (
            "[[source]]\nname='a'\nkind='pos'\ntrain=['train.jsonl']\n",
            "kind `pos`",
        ),
        (
            "[[source]]\nname='a'\nkind='topic'\ntrain=['train.jsonl']\n",
            "need `codebook`",
        ),
        (
            "[[source]]\nname='a'\nkind='ner'\ntrain=['train.jsonl']\noptions=['--bogus']\n",
            "source `a`: options",
        ),
        (
            "[[source]]\nname='a'\nkind='ner'\ntrain=['missing.jsonl']\n",
            "missing.jsonl",
        ),
        ("colour = 1\n", "colour"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let r = write(root, &format!("r{i}.toml"), text);
        let out = root.join(format!("o{i}"));
        let o = paratag(&[
            "train",
            "multi",
            "--recipe",
            r.to_str().unwrap(),
            "--encoder",
            enc.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        let err = stderr(&o);
        assert!(!o.status.success(), "case {i} succeeded");
        assert!(err.contains(want), "case {i}: want {want:?} in {err}");
        assert_eq!(
            err.trim().lines().filter(|l| l.contains("error")).count(),
            1,
            "{err}"
        );
        assert!(!out.exists(), "case {i} left {}", out.display());
    }
}
