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
        "codebook = \"cb.toml\"\n[lora]\nrank = 4\nalpha = 8.0\n[train]\nsteps = 12\neval_every = 4\nbatch_size = 4\nmax_tokens = 32\nlr = 0.01\nhead_lr = 0.05\npreserve = 0.5\nseed = {seed}\n"
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
    // Building models draws from libtorch's global generator.
    let rng = crate::fixtures::seeded(0);
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
    // paratag's own BERT layers (fused QKV, SDPA) compute what rust-bert's
    // BertModel does on the same weights.
    let reference = {
        let mut vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let root = vs.root();
        let path = match dir.base_prefix("bert").unwrap() {
            Some(b) => root.sub(b),
            None => root.clone(),
        };
        let cfg: rust_bert::bert::BertConfig = dir.parse_config().unwrap();
        let model =
            rust_bert::bert::BertModel::<rust_bert::bert::BertEmbeddings>::new_with_optional_pooler(
                &path, &cfg, false,
            );
        dir.load_weights(&mut vs, DType::F32).unwrap();
        let out = tch::no_grad(|| {
            model
                .forward_t(
                    Some(&p.ids),
                    Some(&p.mask),
                    None,
                    None,
                    None,
                    None,
                    None,
                    false,
                )
                .unwrap()
        });
        out.hidden_state * &m
    };
    drop(rng);
    assert!(
        diff(&plain, &reference) < 1e-4,
        "paratag's BERT = rust-bert's: {}",
        diff(&plain, &reference)
    );
    // bf16 (linear maps and attention in bf16, residuals and norms in f32)
    // stays close to f32 on the same weights.
    let e16 = Encoder::load(&dir, tch::Device::Cpu, DType::Bf16, false).unwrap();
    assert_eq!(e16.kind(), tch::Kind::BFloat16);
    let (emb32, _) = tch::no_grad(|| e.forward_layers(&p, &[]).unwrap());
    let (emb16, _) = tch::no_grad(|| e16.forward_layers(&p, &[]).unwrap());
    let cos = (&emb32 * &emb16).sum_dim_intlist([1i64].as_slice(), false, tch::Kind::Float);
    let worst = cos.min().double_value(&[]);
    assert!(
        worst > 0.99 && worst < 1.0 - 1e-7,
        "bf16 against f32 cosine {worst}"
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

    // Linear heads (`train topic`): of the plain encoder, or with
    // `--adapter` of the adapted one.
    let train_gold = root.join("train.jsonl");
    let train_lin = |out: &Path, extra: &[&str]| {
        let mut a = vec![
            "train",
            "topic",
            "--train",
            train_gold.to_str().unwrap(),
            "-c",
            cb.to_str().unwrap(),
            "--encoder",
            enc.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--epochs",
            "5",
        ];
        a.extend_from_slice(extra);
        paratag(&a)
    };

    // A head of the plain encoder cannot share the run.
    let lin = root.join("lin");
    let o = train_lin(&lin, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tag(&enc, &[o2.join("entities"), lin.clone()], &out3);
    assert!(
        !o.status.success() && stderr(&o).contains("reads the plain encoder"),
        "{}",
        stderr(&o)
    );

    // A linear head trained on the adapted encoder (`--adapter`) joins the
    // run's heads in one pass; it reads other features than the plain one.
    let ad2 = o2.join("adapter");
    let lin2 = o2.join("topic-linear");
    let o = train_lin(&lin2, &["--adapter", ad2.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let meta = std::fs::read_to_string(lin2.join("head.toml")).unwrap();
    assert!(
        meta.contains("adapter_sha256") && meta.contains("adapter merged"),
        "{meta}"
    );
    assert_ne!(
        std::fs::read(lin2.join("head.safetensors")).unwrap(),
        std::fs::read(lin.join("head.safetensors")).unwrap(),
        "the adapted encoder's features are not the plain encoder's"
    );
    let o = tag(
        &enc,
        &[o2.join("entities"), o2.join("stance_ukraine_aid"), lin2],
        &out3,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&out3).height(), TEXTS.len());
    // Elsewhere than beside its adapter, tagging could not find it.
    let away = root.join("away");
    let o = train_lin(&away, &["--adapter", ad2.to_str().unwrap()]);
    assert!(
        !o.status.success() && stderr(&o).contains("must sit beside it"),
        "{}",
        stderr(&o)
    );
    assert!(!away.exists());
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
            "r1.toml:3: unknown variant `pos`",
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
        (
            "[train]\npreserve = -1.0\n[[source]]\nname='a'\nkind='ner'\ntrain=['train.jsonl']\n",
            "preserve",
        ),
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

/// [`TEXTS`] as gold with a holder for each favor/against paragraph.
fn gold_with_holders(dir: &Path, name: &str) -> PathBuf {
    let plain = gold(dir, name, TEXTS);
    let lines: Vec<String> = std::fs::read_to_string(&plain)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let text = v["text"].as_str().unwrap().to_string();
            let o = v.as_object_mut().unwrap();
            o.remove("topic");
            o.remove("entities");
            if v["stance"]["ukraine_aid"] != "none" {
                let who = if text.contains("said") {
                    "reported"
                } else {
                    "author"
                };
                v["holder"] = serde_json::json!({"ukraine_aid": who});
            }
            v.to_string()
        })
        .collect();
    write(dir, &format!("{name}.jsonl"), &(lines.join("\n") + "\n"))
}

#[test]
fn holders_train_tag_sample_read_back_and_evaluate() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let enc = fixtures::encoder(&root.join("enc"));
    let g = gold_with_holders(root, "g");
    // A low stance threshold, so the random fixture model takes positions.
    let low = CODEBOOK.replace(
        "opposes further aid to Ukraine.\"\nthreshold = 0.5",
        "opposes further aid to Ukraine.\"\nthreshold = 0.01",
    );
    assert_ne!(low, CODEBOOK);
    let cb = write(root, "cb.toml", &low);
    let mut text = "codebook = \"cb.toml\"\n[lora]\nrank = 2\n[train]\nsteps = 40\neval_every = 20\nbatch_size = 4\nmax_tokens = 32\nlr = 0.01\nhead_lr = 0.1\n".to_string();
    for kind in ["stance", "holder"] {
        text += &format!("[[source]]\nname = \"{kind}\"\nkind = \"{kind}\"\ntrain = [\"g.jsonl\"]\ndev = [\"g.jsonl\"]\n");
    }
    let r = write(root, "r.toml", &text);
    let out = root.join("m");
    train(&r, &enc, &out);
    let hmeta = std::fs::read_to_string(out.join("stance_ukraine_aid_holder/head.toml")).unwrap();
    assert!(
        hmeta.contains("labels = [\"author\", \"reported\"]"),
        "{hmeta}"
    );

    let lines: Vec<String> = TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": format!("g{i}"), "text": t.0}).to_string())
        .collect();
    let corpus = write(root, "c.jsonl", &lines.join("\n"));
    let heads = [
        out.join("stance_ukraine_aid"),
        out.join("stance_ukraine_aid_holder"),
    ];
    let tag = |cb: &Path, heads: &[PathBuf], pred: &Path| {
        let mut a: Vec<String> = vec!["tag".into(), corpus.display().to_string(), "-o".into()];
        a.extend([
            pred.display().to_string(),
            "-c".into(),
            cb.display().to_string(),
        ]);
        a.extend([
            "--encoder".into(),
            enc.display().to_string(),
            "--no-ner".into(),
            "--no-topic".into(),
        ]);
        a.push("--heads".into());
        a.extend(heads.iter().map(|h| h.display().to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        paratag(&a)
    };
    let pred = root.join("p.parquet");
    let o = tag(&cb, &heads, &pred);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = paratag::dataset::read_predictions(&pred).unwrap();
    let mut with_holder = 0;
    for row in &p.rows {
        let s = &row.stances["ukraine_aid"];
        let r = s.reported.expect("P(reported) on every scored paragraph");
        assert!((0.0..=1.0).contains(&r));
        // A holder exactly where there is a position.
        assert_eq!(
            s.holder.is_some(),
            s.label.as_deref() != Some("none"),
            "{s:?}"
        );
        if let Some(h) = &s.holder {
            assert_eq!(h == "reported", r >= 0.5);
            with_holder += 1;
        }
    }

    // The author-only reading: reported positions become none; it needs
    // the holder head.
    let author = write(
        root,
        "author.toml",
        &low.replace(
            "target = \"further aid to Ukraine\"",
            "target = \"further aid to Ukraine\"\nholder = \"author\"",
        ),
    );
    let pred_a = root.join("pa.parquet");
    let o = tag(&author, &heads, &pred_a);
    assert!(o.status.success(), "{}", stderr(&o));
    let pa = paratag::dataset::read_predictions(&pred_a).unwrap();
    let mut reported = 0;
    for (x, y) in p.rows.iter().zip(&pa.rows) {
        let (s, t) = (&x.stances["ukraine_aid"], &y.stances["ukraine_aid"]);
        match s.holder.as_deref() {
            Some("reported") => {
                assert_eq!(t.label.as_deref(), Some("none"));
                reported += 1;
            }
            _ => assert_eq!(t.label, s.label),
        }
        assert_eq!(
            (s.favor, s.against, &s.holder),
            (t.favor, t.against, &t.holder)
        );
    }
    assert!(
        reported > 0 && reported < with_holder,
        "both readings occur: {reported} of {with_holder}"
    );
    let o = tag(&author, &heads[..1], &root.join("pb.parquet"));
    assert!(
        !o.status.success() && stderr(&o).contains("needs a holder head"),
        "{}",
        stderr(&o)
    );

    // eval measures the holder as a task of its own.
    let js = root.join("e.json");
    let o = paratag(&[
        "eval",
        "--gold",
        g.to_str().unwrap(),
        "--pred",
        pred.to_str().unwrap(),
        "-c",
        cb.to_str().unwrap(),
        "--json",
        js.to_str().unwrap(),
        "--bootstrap",
        "50",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&js).unwrap()).unwrap();
    let holder = rep["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == "stance_ukraine_aid_holder")
        .expect("a holder task");
    let gold_holders = TEXTS.iter().filter(|t| t.2 != "none").count();
    assert_eq!(holder["n"].as_u64().unwrap() as usize, gold_holders);

    // A sheet offers the holder column; filled in, it reads back as gold.
    let sheet = root.join("s.csv");
    let o = paratag(&[
        "sample",
        pred.to_str().unwrap(),
        "-n",
        "9",
        "-o",
        sheet.to_str().unwrap(),
        "--seed",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&sheet).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.contains(",stance_ukraine_aid_holder,")
            && header.contains("pred_stance_ukraine_aid_holder"),
        "{header}"
    );
    let mut rd = csv::Reader::from_path(&sheet).unwrap();
    let cols: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    let ci = |n: &str| cols.iter().position(|c| c == n).unwrap();
    let mut w = csv::Writer::from_writer(vec![]);
    w.write_record(&cols).unwrap();
    for rec in rd.records() {
        let mut r: Vec<String> = rec.unwrap().iter().map(String::from).collect();
        r[ci("stance_ukraine_aid")] = "favor".into();
        r[ci("stance_ukraine_aid_holder")] = "reported".into();
        w.write_record(&r).unwrap();
    }
    let filled = write(
        root,
        "filled.csv",
        &String::from_utf8(w.into_inner().unwrap()).unwrap(),
    );
    let items = paratag::formats::read(&filled, &Default::default())
        .unwrap()
        .1;
    assert_eq!(items.len(), 9);
    assert!(items
        .iter()
        .all(|g| g.annotations[0].holders["ukraine_aid"] == "reported"));

    // A bad holder names the file and line.
    let bad = write(root, "bad.jsonl", "{\"text\": \"x\", \"stance\": {\"ukraine_aid\": \"favor\"}, \"holder\": {\"ukraine_aid\": \"editor\"}}\n");
    let o = paratag(&[
        "eval",
        "--gold",
        bad.to_str().unwrap(),
        "--pred",
        pred.to_str().unwrap(),
        "-c",
        cb.to_str().unwrap(),
        "--allow-unmatched",
    ]);
    assert!(
        !o.status.success()
            && stderr(&o).contains("bad.jsonl:1")
            && stderr(&o).contains("author or reported"),
        "{}",
        stderr(&o)
    );

    // calibrate takes holder gold, and moves only stance thresholds.
    let c2 = root.join("c2.toml");
    let o = paratag(&[
        "calibrate",
        "--gold",
        g.to_str().unwrap(),
        "--pred",
        pred.to_str().unwrap(),
        "-c",
        cb.to_str().unwrap(),
        "-o",
        c2.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        with_holder > 0,
        "some paragraph got a position, so the holder checks bite"
    );
}
