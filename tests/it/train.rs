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

/// A fixture encoder of the same shape with one weight bit flipped.
fn other_encoder(root: &Path) -> PathBuf {
    let other = root.join("enc2");
    fixtures::encoder(&other);
    let st = other.join("model.safetensors");
    let mut w = std::fs::read(&st).unwrap();
    let n = w.len();
    w[n - 1] ^= 1;
    std::fs::write(&st, w).unwrap();
    other
}

fn corpus(root: &Path, texts: &[&str]) -> PathBuf {
    let lines: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": format!("a{i}"), "text": t}).to_string())
        .collect();
    write(root, "c.jsonl", &lines.join("\n"))
}

/// `paratag tag CORPUS -c CB --encoder ENC -o OUT --heads HEADS... EXTRA...`.
fn tag_heads(
    corpus: &Path,
    cb: &Path,
    enc: &Path,
    out: &Path,
    heads: &[&Path],
    extra: &[&str],
) -> std::process::Output {
    let mut a = vec![
        "tag",
        corpus.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-c",
        cb.to_str().unwrap(),
        "--encoder",
        enc.to_str().unwrap(),
        "--heads",
    ];
    a.extend(heads.iter().map(|h| h.to_str().unwrap()));
    a.extend_from_slice(extra);
    paratag(&a)
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
    let texts: Vec<&str> = TEXTS.iter().map(|t| t.0).collect();
    let corpus = corpus(root, &texts);
    let tag_with = |enc: &Path, out: &Path, heads: &[&Path], extra: &[&str]| {
        let mut extra = extra.to_vec();
        extra.push("--no-ner");
        tag_heads(&corpus, &cb, enc, out, heads, &extra)
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

    // The stance head carries the threshold fitted on dev (`train` fits it;
    // unit tests check the fit). A codebook that sets a threshold keeps
    // it; one that sets none takes the head's: here a copy of the head
    // whose threshold is moved so that some rows change sides.
    let meta = std::fs::read_to_string(hs.join("head.toml")).unwrap();
    let fitted = meta
        .lines()
        .find(|l| l.starts_with("threshold = "))
        .unwrap_or_else(|| panic!("no dev threshold in {meta}"));
    assert!(meta.contains("macro_f1_at_threshold = "), "{meta}");
    let (head, tail) = CODEBOOK.split_at(CODEBOOK.find("[[stance]]").unwrap());
    let unset = write(
        root,
        "unset.toml",
        &format!("{head}{}", tail.replacen("threshold = 0.5\n", "", 1)),
    );
    let stances = |cb_path: &Path, h: &Path, name: &str| {
        let out = root.join(name);
        let o = tag_heads(
            &corpus,
            cb_path,
            &enc,
            &out,
            &[h],
            &["--no-ner", "--no-topic"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let df = read(&out);
        let col = |c: &str| -> Vec<f32> {
            let s = df.column(c).unwrap();
            let s = s.cast(&polars::prelude::DataType::Float32).unwrap();
            s.f32().unwrap().iter().map(Option::unwrap).collect()
        };
        let labels = df
            .column("stance_ukraine_aid")
            .unwrap()
            .str()
            .unwrap()
            .clone();
        let labels: Vec<String> = labels.iter().map(|l| l.unwrap().to_string()).collect();
        let fa: Vec<(f32, f32)> = col("stance_ukraine_aid_favor")
            .into_iter()
            .zip(col("stance_ukraine_aid_against"))
            .collect();
        (fa, labels)
    };
    let follows = |fa: &[(f32, f32)], labels: &[String], t: f32| {
        for (&(f, a), l) in fa.iter().zip(labels) {
            let want = match f.max(a) {
                p if p < t => "none",
                _ if f >= a => "favor",
                _ => "against",
            };
            assert_eq!(l, want, "favor {f} against {a} at threshold {t}");
        }
    };
    let (fa, at_half) = stances(&cb, &hs, "half.parquet");
    follows(&fa, &at_half, 0.5);
    let mut tops: Vec<f32> = fa.iter().map(|p| p.0.max(p.1)).collect();
    tops.sort_by(f32::total_cmp);
    let above = |t: f32| tops.iter().filter(|&&p| p >= t).count();
    let moved = tops
        .windows(2)
        .map(|w| (w[0] + w[1]) / 2.0)
        .find(|&t| above(t) != above(0.5))
        .expect("two rows with different scores");
    let moved_head = root.join("hs-moved");
    std::fs::create_dir_all(&moved_head).unwrap();
    std::fs::copy(
        hs.join("head.safetensors"),
        moved_head.join("head.safetensors"),
    )
    .unwrap();
    let moved_meta = meta.replace(fitted, &format!("threshold = {moved}"));
    std::fs::write(moved_head.join("head.toml"), moved_meta).unwrap();
    let (fa2, at_moved) = stances(&unset, &moved_head, "moved.parquet");
    assert_eq!(fa, fa2);
    follows(&fa2, &at_moved, moved);
    assert_ne!(at_half, at_moved);
    // The codebook's own threshold wins over the head's.
    let (_, kept) = stances(&cb, &moved_head, "kept.parquet");
    assert_eq!(kept, at_half);

    // Another encoder (same shape, other weights) is refused, naming both hashes.
    let other = other_encoder(root);
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

/// NER gold in paratag JSONL: Arabic, Cyrillic, an emoji, a combining mark.
const NER_TEXTS: &[(&str, &[(&str, &str)])] = &[
    (
        "Zelensky met Scholz in Kyiv.",
        &[("Zelensky", "PER"), ("Scholz", "PER"), ("Kyiv", "LOC")],
    ),
    ("Parliament in Kyiv approved aid.", &[("Kyiv", "LOC")]),
    (
        "Scholz flew to Geneva 🇺🇦 today.",
        &[("Scholz", "PER"), ("Geneva", "LOC")],
    ),
    (
        "زيلينسكي زار كييف أمس.",
        &[("زيلينسكي", "PER"), ("كييف", "LOC")],
    ),
    (
        "Зеленський приїхав до Києва.",
        &[("Зеленський", "PER"), ("Києва", "LOC")],
    ),
    (
        "Cafe\u{301} owners in Geneva protested.",
        &[("Geneva", "LOC")],
    ),
    ("Talks will resume next week.", &[]),
    ("Shelling hit the city again.", &[]),
];

fn ner_gold(dir: &Path, name: &str) -> PathBuf {
    let lines: Vec<String> = NER_TEXTS
        .iter()
        .enumerate()
        .map(|(i, (t, ents))| {
            let spans: Vec<serde_json::Value> = ents
                .iter()
                .map(|(e, label)| {
                    let at = t.find(e).unwrap();
                    let start = t[..at].chars().count();
                    serde_json::json!({"start": start, "end": start + e.chars().count(), "label": label})
                })
                .collect();
            serde_json::json!({"article_id": format!("{name}{i}"), "paragraph": 0, "text": t,
                "entities": spans})
            .to_string()
        })
        .collect();
    write(
        dir,
        &format!("{name}.ner.jsonl"),
        &(lines.join("\n") + "\n"),
    )
}

#[test]
fn ner_head_trains_deterministically_and_shares_the_encoder_pass() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let enc = fixtures::encoder(&root.join("enc"));
    let cb = write(root, "cb.toml", CODEBOOK);
    let ng = ner_gold(root, "g");
    let train_ner = |out: &Path| {
        let o = paratag(&[
            "train",
            "ner",
            "--train",
            ng.to_str().unwrap(),
            "--dev",
            ng.to_str().unwrap(),
            "--encoder",
            enc.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--tune-layers",
            "1",
            "--epochs",
            "100",
            "--patience",
            "100",
            "--lr",
            "0.05",
            "--layer-lr",
            "0.005",
            "--batch-size",
            "4",
            "--threads",
            "1",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    let (n1, n2) = (root.join("n1"), root.join("n2"));
    train_ner(&n1);
    train_ner(&n2);
    let bytes = |h: &Path| std::fs::read(h.join("head.safetensors")).unwrap();
    assert_eq!(
        bytes(&n1),
        bytes(&n2),
        "same data and seed, same head bytes"
    );
    let meta = std::fs::read_to_string(n1.join("head.toml")).unwrap();
    for want in [
        "kind = \"ner\"",
        "layer = 1",
        "tune_layers = 1",
        "\"B-LOC\"",
        "dev_entity_f1",
    ] {
        assert!(meta.contains(want), "{want} in {meta}");
    }
    // Only the tuned layer and the classifier are stored, in f16.
    let st = bytes(&n1);
    let header = String::from_utf8_lossy(
        &st[8..8 + u64::from_le_bytes(st[..8].try_into().unwrap()) as usize],
    )
    .into_owned();
    assert!(
        header.contains("layer.0.attention") && header.contains("classifier.weight"),
        "{header}"
    );
    assert!(
        !header.contains("layer.1.") && !header.contains("embeddings") && !header.contains("F32"),
        "{header}"
    );

    // A topic head too, then all heads in one encoder pass vs the NER head alone.
    let tr = gold(root, "train", &TEXTS[..8]);
    let dv = gold(root, "dev", &TEXTS[4..]);
    let th = root.join("th");
    train("topic", &tr, &dv, &cb, &enc, &th);
    // A stance head with a tuned layer: it also branches from the encoder's pass.
    let sh = root.join("sh");
    let o = paratag(&[
        "train",
        "stance",
        "--train",
        tr.to_str().unwrap(),
        "--dev",
        dv.to_str().unwrap(),
        "-c",
        cb.to_str().unwrap(),
        "--encoder",
        enc.to_str().unwrap(),
        "-o",
        sh.to_str().unwrap(),
        "--tune-layers",
        "1",
        "--epochs",
        "5",
        "--threads",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let meta = std::fs::read_to_string(sh.join("head.toml")).unwrap();
    assert!(
        meta.contains("kind = \"stance\"")
            && meta.contains("tune_layers = 1")
            && meta.contains("[dev]"),
        "{meta}"
    );
    let texts: Vec<&str> = NER_TEXTS.iter().map(|t| t.0).collect();
    let corpus = corpus(root, &texts);
    let tag = |enc: &Path, out: &Path, heads: &[&Path], extra: &[&str]| {
        tag_heads(&corpus, &cb, enc, out, heads, extra)
    };
    let (all, alone) = (root.join("all.parquet"), root.join("alone.parquet"));
    let o = tag(&enc, &all, &[&th, &sh, &n1], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tag(&enc, &alone, &[&n1], &["--no-topic", "--no-stance"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (read(&all), read(&alone));
    assert!(a
        .column("entities")
        .unwrap()
        .equals_missing(b.column("entities").unwrap()));
    let single = root.join("single.parquet");
    let o = tag(&enc, &single, &[&th], &["--no-stance", "--no-ner"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stance = root.join("stance.parquet");
    let o = tag(&enc, &stance, &[&sh], &["--no-topic", "--no-ner"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let st = read(&stance);
    for c in [
        "stance_ukraine_aid",
        "stance_ukraine_aid_favor",
        "stance_ukraine_aid_against",
    ] {
        assert!(
            a.column(c).unwrap().equals_missing(st.column(c).unwrap()),
            "{c}"
        );
    }
    assert!(a
        .column("topic_scores")
        .unwrap()
        .equals_missing(read(&single).column("topic_scores").unwrap()));

    // Entities are exact code-point slices, and the head learned its data.
    let mut found = 0;
    for (row, (text, want)) in NER_TEXTS.iter().enumerate() {
        let chars: Vec<char> = text.chars().collect();
        for (t, label, s, e) in super::tagging::entities(&a, row) {
            let slice: String = chars[s as usize..e as usize].iter().collect();
            assert_eq!(slice, t, "{text}");
            found += usize::from(want.contains(&(t.as_str(), label.as_str())));
        }
    }
    let total: usize = NER_TEXTS.iter().map(|t| t.1.len()).sum();
    assert!(
        found * 10 >= total * 7,
        "{found} of {total} gold entities tagged"
    );

    // An NER head refuses another encoder.
    let other = other_encoder(root);
    let out = root.join("x.parquet");
    let o = tag(&other, &out, &[&n1], &["--no-topic", "--no-stance"]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("was trained on encoder"),
        "{err}"
    );
    assert!(!out.exists());
}

/// A long stance sheet: every text labeled for two targets given as text.
fn pair_sheet(dir: &Path) -> PathBuf {
    let mut csv = String::from("article_id,paragraph,text,target,stance\n");
    for (i, (text, topic, stance)) in TEXTS.iter().enumerate() {
        let truce = if *topic == "peace_talks" {
            "favor"
        } else {
            "none"
        };
        // One row per paragraph: rows sharing one are read as coders.
        for (k, (target, label)) in [("further aid to Ukraine", *stance), ("a truce now", truce)]
            .iter()
            .enumerate()
        {
            csv += &format!("p{i},{k},\"{text}\",{target},{label}\n");
        }
    }
    write(dir, "pairs.csv", &csv)
}

#[test]
fn any_target_head_reads_each_codebook_target_and_yields_to_a_target_head() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let enc = fixtures::encoder(&root.join("enc"));
    let sheet = pair_sheet(root);
    let head = root.join("any");
    let train_any = |out: &Path, extra: &[&str]| {
        let mut a = vec![
            "train",
            "stance",
            "--any-target",
            "--train",
            sheet.to_str().unwrap(),
            "--dev",
            sheet.to_str().unwrap(),
            "--encoder",
            enc.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--threads",
            "1",
        ];
        a.extend_from_slice(extra);
        paratag(&a)
    };
    let o = train_any(
        &head,
        &["--tune-layers", "1", "--epochs", "5", "--lr", "0.05"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("20 pairs over 2 targets"),
        "{}",
        stderr(&o)
    );
    let meta = std::fs::read_to_string(head.join("head.toml")).unwrap();
    assert!(
        meta.contains("task = \"stance_*\"") && meta.contains("the target text's before"),
        "{meta}"
    );
    // Tagged with a codebook of two targets, one new to the head's data.
    let cb = write(
        root,
        "two.toml",
        &format!("{CODEBOOK}\n[[stance]]\nid = \"truce\"\ntarget = \"a truce now\"\nfavor = \"The author wants a truce.\"\nagainst = \"The author rejects a truce.\"\n"),
    );
    let texts: Vec<&str> = TEXTS.iter().map(|t| t.0).collect();
    let corpus = corpus(root, &texts);
    let run = |out: &Path, batch: &str, dtype: &str| {
        let o = tag_heads(
            &corpus,
            &cb,
            &enc,
            out,
            &[&head],
            &[
                "--no-topic",
                "--no-ner",
                "--batch-tokens",
                batch,
                "--dtype",
                dtype,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        read(out)
    };
    let col = |df: &polars::prelude::DataFrame, c: &str| -> Vec<Option<f32>> {
        df.column(c).unwrap().f32().unwrap().iter().collect()
    };
    let a = run(&root.join("a.parquet"), "4096", "f32");
    for dtype in ["f32", "bf16"] {
        let (x, y) = (
            run(&root.join(format!("x-{dtype}.parquet")), "4096", dtype),
            run(&root.join(format!("y-{dtype}.parquet")), "16", dtype),
        );
        for c in [
            "stance_ukraine_aid_favor",
            "stance_truce_favor",
            "stance_truce_against",
        ] {
            assert_eq!(
                col(&x, c),
                col(&y, c),
                "{dtype}: {c} does not depend on batching"
            );
            assert!(
                col(&x, c).iter().all(Option::is_some),
                "{dtype}: {c} scored everywhere"
            );
        }
    }
    // The head reads the target: the two targets get different scores.
    let differ = col(&a, "stance_ukraine_aid_favor")
        .iter()
        .zip(col(&a, "stance_truce_favor"))
        .filter(|(x, y)| **x != *y)
        .count();
    assert!(differ == texts.len(), "{differ} of {} differ", texts.len());
    // --init fine-tunes it (same shape), and refuses another shape.
    let h = head.to_str().unwrap();
    let o = train_any(
        &root.join("again"),
        &[
            "--init",
            h,
            "--epochs",
            "1",
            "--tune-layers",
            "1",
            "--layer",
            "1",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = train_any(
        &root.join("wrong"),
        &[
            "--init",
            h,
            "--epochs",
            "1",
            "--tune-layers",
            "0",
            "--layer",
            "2",
        ],
    );
    assert!(
        !o.status.success() && stderr(&o).contains("--init") && !root.join("wrong").exists(),
        "{}",
        stderr(&o)
    );
    // calibrate installs the head once, though it answered two targets.
    let lines: Vec<String> = TEXTS
        .iter()
        .enumerate()
        .map(|(i, (text, topic, stance))| {
            let truce = if *topic == "peace_talks" {
                "favor"
            } else {
                "none"
            };
            serde_json::json!({"article_id": format!("a{i}"), "paragraph": 0, "text": text,
                "stance": {"ukraine_aid": stance, "truce": truce}})
            .to_string()
        })
        .collect();
    let g2 = write(root, "g2.jsonl", &(lines.join("\n") + "\n"));
    let o = paratag(&[
        "calibrate",
        "--gold",
        g2.to_str().unwrap(),
        "--pred",
        root.join("a.parquet").to_str().unwrap(),
        "-o",
        root.join("c2.toml").to_str().unwrap(),
        "--install-profile",
        "any-calibrated",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let installed = super::home().join("profiles/any-calibrated/profile.toml");
    let p = std::fs::read_to_string(&installed).unwrap();
    assert_eq!(p.matches("heads/").count(), 1, "{p}");
    // A target with a head of its own keeps it; the any-target head takes the rest.
    let tr = gold(root, "train", &TEXTS[..8]);
    let own = root.join("own");
    train("stance", &tr, &tr, &cb_one(root), &enc, &own);
    let mixed = root.join("mixed.parquet");
    let o = tag_heads(
        &corpus,
        &cb,
        &enc,
        &mixed,
        &[&head, &own],
        &["--no-topic", "--no-ner"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let m = read(&mixed);
    assert_ne!(
        col(&m, "stance_ukraine_aid_favor"),
        col(&a, "stance_ukraine_aid_favor")
    );
    assert_eq!(col(&m, "stance_truce_favor"), col(&a, "stance_truce_favor"));
}

fn cb_one(root: &Path) -> PathBuf {
    write(root, "one.toml", CODEBOOK)
}
