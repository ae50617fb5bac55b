//! End-to-end tagging with fixture models: NLI label order, entity offsets
//! across scripts, long-paragraph windows, and batch/thread/order invariance.

use super::fixtures::{self, NER_LABELS};
use super::*;
use unicode_normalization::UnicodeNormalization;

fn jsonl<S: AsRef<str>>(dir: &Path, rows: &[(S, S)]) -> PathBuf {
    let body: String = rows
        .iter()
        .map(|(id, t)| {
            let (id, t) = (id.as_ref(), t.as_ref());
            serde_json::json!({"id": id, "text": t, "source": "test"}).to_string() + "\n"
        })
        .collect();
    write(dir, "in.jsonl", &body)
}

/// [`SCRIPTS`] as rows a test can add to.
fn script_rows() -> Vec<(String, String)> {
    SCRIPTS
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const PARA: &str =
    "The parliament approved new military aid to Ukraine on Tuesday, officials said.";

/// `tag INPUT -o OUT -c CODEBOOK --nli MODEL --no-ner -q`.
fn run_nli(input: &Path, out: &Path, cb: &Path, model: &Path) -> std::process::Output {
    let arg = |p: &Path| p.to_str().unwrap().to_string();
    let args = [
        "tag".into(),
        arg(input),
        "-o".into(),
        arg(out),
        "-c".into(),
        arg(cb),
        "--nli".into(),
        arg(model),
    ];
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend(["--no-ner", "-q"]);
    paratag(&args)
}

/// [`run_nli`], which must succeed.
fn tag_nli(input: &Path, out: &Path, cb: &Path, model: &Path) -> DataFrame {
    let o = run_nli(input, out, cb, model);
    assert!(o.status.success(), "{}: {}", model.display(), stderr(&o));
    read(out)
}

fn col_f32(df: &DataFrame, c: &str) -> Vec<Option<f32>> {
    df.column(c).unwrap().f32().unwrap().iter().collect()
}

fn col_str(df: &DataFrame, c: &str) -> Vec<Option<String>> {
    df.column(c)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

fn topic_scores(df: &DataFrame, row: usize) -> Vec<f32> {
    let l = df
        .column("topic_scores")
        .unwrap()
        .list()
        .unwrap()
        .get_as_series(row)
        .unwrap();
    l.struct_()
        .unwrap()
        .field_by_name("score")
        .unwrap()
        .f32()
        .unwrap()
        .iter()
        .map(|x| x.unwrap())
        .collect()
}

/// The three NLI label layouts, with a bias forcing entailment, then one
/// forcing the opposite: the scores must follow the labels, not the index.
#[test]
fn nli_label_order_is_read_from_id2label() {
    let d = tempfile::tempdir().unwrap();
    let input = jsonl(d.path(), &[("a", PARA)]);
    let cb = write(d.path(), "cb.toml", CODEBOOK);
    type Head<'a> = (&'a str, &'a [&'a str], [f32; 3], [f32; 3]);
    let heads: [Head; 3] = [
        (
            "ent0",
            &["entailment", "neutral", "contradiction"],
            [6.0, 0.0, -6.0],
            [-6.0, 0.0, 6.0],
        ),
        (
            "ent2",
            &["contradiction", "neutral", "entailment"],
            [-6.0, 0.0, 6.0],
            [6.0, 0.0, -6.0],
        ),
        (
            "twoway",
            &["entailment", "not_entailment"],
            [6.0, -6.0, 0.0],
            [-6.0, 6.0, 0.0],
        ),
    ];
    let deberta: Head = (
        "mdeberta",
        &["entailment", "neutral", "contradiction"],
        [6.0, 0.0, -6.0],
        [-6.0, 0.0, 6.0],
    );
    for (name, labels, yes, no) in heads.into_iter().chain([deberta]) {
        for (bias, entailed) in [(yes, true), (no, false)] {
            let dir = d.path().join(format!("{name}-{entailed}"));
            let bias = &bias[..labels.len()];
            let m = if name == "mdeberta" {
                fixtures::nli_deberta(&dir, labels, bias)
            } else {
                fixtures::nli(&dir, labels, bias)
            };
            let out = d.path().join(format!("{name}-{entailed}.parquet"));
            let df = tag_nli(&input, &out, &cb, &m);
            let scores = topic_scores(&df, 0);
            let stance = col_str(&df, "stance_ukraine_aid")[0].clone();
            if entailed {
                assert!(scores.iter().all(|&s| s > 0.99), "{name}: {scores:?}");
                assert_eq!(
                    col_str(&df, "topic")[0].as_deref(),
                    Some("aid_to_ukraine"),
                    "{name}"
                );
                assert_eq!(stance.as_deref(), Some("favor"), "{name}");
            } else {
                assert!(scores.iter().all(|&s| s < 0.01), "{name}: {scores:?}");
                assert_eq!(col_str(&df, "topic")[0], None, "{name}");
                assert_eq!(stance.as_deref(), Some("none"), "{name}");
            }
        }
    }
    // A head whose labels cannot be read is refused.
    let m = fixtures::nli(
        &d.path().join("anon"),
        &["LABEL_0", "LABEL_1", "LABEL_2"],
        &[0.0, 0.0, 0.0],
    );
    let out = d.path().join("anon.parquet");
    let o = run_nli(&input, &out, &cb, &m);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot read NLI labels"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

pub fn entities(df: &DataFrame, row: usize) -> Vec<(String, String, u32, u32)> {
    let s = df
        .column("entities")
        .unwrap()
        .list()
        .unwrap()
        .get_as_series(row)
        .unwrap();
    let st = s.struct_().unwrap();
    let f = |n: &str| st.field_by_name(n).unwrap();
    let text = f("text");
    let label = f("label");
    let start = f("start");
    let end = f("end");
    (0..s.len())
        .map(|i| {
            (
                text.str().unwrap().get(i).unwrap().to_string(),
                label.str().unwrap().get(i).unwrap().to_string(),
                start.u32().unwrap().get(i).unwrap(),
                end.u32().unwrap().get(i).unwrap(),
            )
        })
        .collect()
}

const SCRIPTS: &[(&str, &str)] = &[
    (
        "ar",
        "قال وزير الخارجية إن بلاده ستواصل تقديم المساعدات إلى أوكرانيا، وفق بيان رسمي.",
    ),
    (
        "ru",
        "Министр заявил, что переговоры продолжатся в Женеве на следующей неделе.",
    ),
    (
        "emoji",
        "José Müller 👍🏽 met officials in Kyiv 🇺🇦 on Tuesday, a spokesman said.",
    ),
    (
        "combining",
        "Le ministre e\u{301}tait a\u{300} Kiev; il a annoncé une aide, selon l'AFP.",
    ),
];

#[test]
fn entity_text_is_the_exact_code_point_slice() {
    let d = tempfile::tempdir().unwrap();
    let input = jsonl(d.path(), SCRIPTS);
    // B-PER on every token: every word is an entity, so every word boundary is checked.
    let m = fixtures::ner(&d.path().join("ner"), NER_LABELS, 1);
    let out = d.path().join("o.parquet");
    let o = paratag(&[
        "tag",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--ner",
        m.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let df = read(&out);
    assert_eq!(df.height(), SCRIPTS.len());
    let texts = col_str(&df, "text");
    for (row, text) in texts.iter().enumerate() {
        let text = text.as_ref().unwrap();
        let para: Vec<char> = text.chars().collect();
        let ents = entities(&df, row);
        let words: Vec<&str> = text.split_whitespace().collect();
        assert!(ents.len() >= words.len() - 1, "row {row}: {ents:?}");
        for (text, label, s, e) in &ents {
            assert_eq!(label, "PER");
            let slice: String = para[*s as usize..*e as usize].iter().collect();
            assert_eq!(&slice, text, "row {row}");
            assert!(!text.starts_with(char::is_whitespace) && !text.ends_with(char::is_whitespace));
        }
        // Combining marks stay with their base letter.
        for (text, ..) in &ents {
            assert!(
                !text.starts_with(|c: char| ('\u{300}'..='\u{36f}').contains(&c)),
                "{text:?}"
            );
        }
    }
    // Arabic: the word before the comma loses only the comma.
    let ar = entities(&df, 0);
    assert!(ar.iter().any(|e| e.0 == "أوكرانيا"), "{ar:?}");
    let emoji = entities(&df, 2);
    assert!(emoji.iter().any(|e| e.0 == "👍🏽"), "{emoji:?}");
}

#[test]
fn long_paragraphs_are_windowed_not_truncated() {
    let d = tempfile::tempdir().unwrap();
    let words: Vec<String> = (0..150)
        .map(|i| format!("Kyiv{}", ["", "a", "b"][i % 3]))
        .collect();
    let long = format!("{}.", words.join(" "));
    let input = jsonl(d.path(), &[("long", &long), ("short", PARA)]);
    let ner = fixtures::ner(&d.path().join("ner"), NER_LABELS, 3); // B-LOC everywhere
    let enc = fixtures::encoder(&d.path().join("enc"));
    let cb = write(d.path(), "cb.toml", CODEBOOK);
    let models = [
        "--encoder",
        enc.to_str().unwrap(),
        "-c",
        cb.to_str().unwrap(),
    ];
    let df = tag_ner(&input, &d.path().join("o.parquet"), &ner, &models);
    let tw: Vec<u16> = df
        .column("truncated_windows")
        .unwrap()
        .u16()
        .unwrap()
        .iter()
        .map(|x| x.unwrap())
        .collect();
    assert!(
        tw[0] >= 3,
        "the long paragraph needs several 64-token windows: {tw:?}"
    );
    assert_eq!(tw[1], 0);
    // Every word is found exactly once, in order, across the overlapping windows.
    let ents = entities(&df, 0);
    let got: Vec<&str> = ents.iter().map(|e| e.0.as_str()).collect();
    let want: Vec<&str> = words.iter().map(|s| s.as_str()).collect();
    assert_eq!(got, want);
    let starts: Vec<u32> = ents.iter().map(|e| e.2).collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]));
    // Classification scored all windows: scores are still a distribution.
    let s = topic_scores(&df, 0);
    assert_eq!(s.len(), 2);
    assert!(s.iter().all(|x| (0.0..=1.0).contains(x)));
}

/// `paratag tag INPUT -o OUT --ner NER -q EXTRA...`, read back.
fn tag_ner(input: &Path, out: &Path, ner: &Path, extra: &[&str]) -> DataFrame {
    let mut args = vec![
        "tag",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--ner",
        ner.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    let o = paratag(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    read(out)
}

/// Paragraphs that repeat an earlier one up to whitespace and Unicode
/// composition take its labels without a model pass, name it in
/// `dup_of_*`, and get its entities re-placed on their own text: the same
/// spans computing them gives (the fixture NER tags every word), as exact
/// code-point slices, in every script and for any window.
#[test]
fn repeated_paragraphs_get_entities_on_their_own_text() {
    let d = tempfile::tempdir().unwrap();
    let mut rows = script_rows();
    for (id, text) in SCRIPTS {
        // Spaces doubled, a tab, and the combining marks composed (NFC).
        let variant = format!("  {}\t", text.replace(' ', "  ").nfc().collect::<String>());
        assert_ne!(&variant, text);
        rows.push((format!("again-{id}"), variant));
    }
    let input = jsonl(d.path(), &rows);
    let m = fixtures::ner(&d.path().join("ner"), NER_LABELS, 1);
    for dtype in super::DTYPES {
        let run = |name: &str, extra: &[&str]| {
            let out = d.path().join(format!("{dtype}-{name}"));
            tag_ner(&input, &out, &m, &[&["--dtype", dtype][..], extra].concat())
        };
        let copied = run("copied.parquet", &[]);
        let one = run("window1.parquet", &["--window", "1"]);
        let computed = run("computed.parquet", &["--recompute-duplicates"]);
        let n = SCRIPTS.len();
        assert_eq!(copied.height(), 2 * n);
        let ids = col_str(&copied, "article_id");
        let dup_of = col_str(&copied, "dup_of_article_id");
        for row in 0..2 * n {
            let want = (row >= n).then(|| SCRIPTS[row - n].0.to_string());
            assert_eq!(dup_of[row], want, "{dtype} row {row}: {:?}", ids[row]);
            assert_eq!(
                entities(&copied, row),
                entities(&one, row),
                "{dtype} row {row}"
            );
            assert_eq!(
                entities(&copied, row),
                entities(&computed, row),
                "{dtype} row {row}"
            );
            let text: Vec<char> = col_str(&copied, "text")[row]
                .clone()
                .unwrap()
                .chars()
                .collect();
            for (t, _, s, e) in entities(&copied, row) {
                assert_eq!(t, text[s as usize..e as usize].iter().collect::<String>());
            }
        }
        assert_eq!(col_str(&one, "dup_of_article_id"), dup_of);
        assert_eq!(col_str(&computed, "dup_of_article_id"), vec![None; 2 * n]);
    }
}

/// The same corpus under different --threads, --batch-tokens and input order
/// gives identical tables.
#[test]
fn output_is_invariant_to_threads_batches_and_order() {
    let d = tempfile::tempdir().unwrap();
    let mut rows = script_rows();
    for i in 0..12 {
        rows.push((
            format!("n{i}"),
            format!(
                "{PARA} {}",
                "Talks on a ceasefire will continue next week in Geneva. ".repeat(i % 4 + 1)
            ),
        ));
    }
    let ner = fixtures::ner(&d.path().join("ner"), NER_LABELS, 1);
    let enc = fixtures::encoder(&d.path().join("enc"));
    let cb = write(d.path(), "cb.toml", &single_label_codebook());
    let run = |name: &str, rows: &[(String, String)], extra: &[&str]| -> DataFrame {
        let sub = d.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let input = jsonl(&sub, rows);
        let models = [
            "--encoder",
            enc.to_str().unwrap(),
            "-c",
            cb.to_str().unwrap(),
        ];
        let df = tag_ner(
            &input,
            &sub.join("o.parquet"),
            &ner,
            &[&models[..], extra].concat(),
        );
        df.sort(["article_id", "paragraph"], Default::default())
            .unwrap()
    };
    let base = run("base", &rows, &["--threads", "1", "--batch-tokens", "64"]);
    let wide = run(
        "wide",
        &rows,
        &["--threads", "2", "--batch-tokens", "100000"],
    );
    let mut rev = rows.clone();
    rev.reverse();
    let reversed = run("rev", &rev, &["--threads", "2", "--batch-tokens", "300"]);
    for (what, other) in [("threads/batch", &wide), ("order", &reversed)] {
        for c in base.get_column_names() {
            // The first of repeated paragraphs is the first in input order.
            if what == "order" && c.starts_with("dup_of_") {
                continue;
            }
            let (a, b) = (base.column(c).unwrap(), other.column(c).unwrap());
            assert!(
                a.as_materialized_series()
                    .equals_missing(b.as_materialized_series()),
                "{what}: column {c} differs:\n{:?}\n{:?}",
                a.as_materialized_series(),
                b.as_materialized_series()
            );
        }
    }
    // The encoder really ran: topic scores vary across paragraphs.
    let ts = col_f32(&base, "topic_score");
    assert!(
        ts.iter()
            .flatten()
            .any(|&x| (x - ts[0].unwrap()).abs() > 1e-6),
        "{ts:?}"
    );
}

/// `only_topics`: stance is computed where the topic matches, null elsewhere.
#[test]
fn stance_gate_follows_topic() {
    let d = tempfile::tempdir().unwrap();
    let input = jsonl(d.path(), &[("a", PARA)]);
    // CODEBOOK ends inside its [[stance]] table.
    let gated = format!("{CODEBOOK}only_topics = [\"aid_to_ukraine\"]\n");
    let cb = write(d.path(), "cb.toml", &gated);
    let labels = ["entailment", "neutral", "contradiction"];
    for (bias, want) in [([6.0, 0.0, -6.0], Some("favor")), ([-6.0, 0.0, 6.0], None)] {
        let m = fixtures::nli(
            &d.path().join(format!("m{}", want.is_some())),
            &labels,
            &bias,
        );
        let out = d.path().join(format!("o-{}.parquet", want.is_some()));
        let df = tag_nli(&input, &out, &cb, &m);
        assert_eq!(col_str(&df, "stance_ukraine_aid")[0].as_deref(), want);
        assert_eq!(
            col_f32(&df, "stance_ukraine_aid_score")[0].is_some(),
            want.is_some()
        );
    }
}

/// The shipped example corpus and codebook end to end: the output schema and
/// the provenance metadata.
#[test]
fn example_corpus_schema_and_metadata() {
    let d = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let enc = fixtures::encoder(&d.path().join("enc"));
    let ner = fixtures::ner(&d.path().join("ner"), NER_LABELS, 3);
    let out = d.path().join("o.parquet");
    let cb = format!("{root}/datasets/codebooks/ukraine.toml");
    let o = paratag(&[
        "tag",
        &format!("{root}/datasets/example"),
        "-o",
        out.to_str().unwrap(),
        "-c",
        &cb,
        "--encoder",
        enc.to_str().unwrap(),
        "--ner",
        ner.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("7 articles"), "{}", stderr(&o));
    // Two models computed, and the summary says for how long.
    assert!(crate::models_busy(&stderr(&o)) > 0.0, "{}", stderr(&o));
    let df = read(&out);
    let entity = DataType::Struct(vec![
        Field::new("text".into(), DataType::String),
        Field::new("label".into(), DataType::String),
        Field::new("start".into(), DataType::UInt32),
        Field::new("end".into(), DataType::UInt32),
        Field::new("score".into(), DataType::Float32),
    ]);
    let score = DataType::Struct(vec![
        Field::new("label".into(), DataType::String),
        Field::new("score".into(), DataType::Float32),
    ]);
    let want: Vec<(&str, DataType)> = vec![
        ("article_id", DataType::String),
        ("paragraph", DataType::UInt32),
        ("start", DataType::UInt32),
        ("end", DataType::UInt32),
        ("text", DataType::String),
        ("lang", DataType::String),
        ("lang_score", DataType::Float32),
        ("topic", DataType::String),
        ("topic_score", DataType::Float32),
        ("topic_scores", DataType::List(Box::new(score))),
        ("stance_ukraine_aid", DataType::String),
        ("stance_ukraine_aid_score", DataType::Float32),
        ("stance_ukraine_aid_favor", DataType::Float32),
        ("stance_ukraine_aid_against", DataType::Float32),
        ("stance_ukraine_aid_holder", DataType::String),
        ("stance_ukraine_aid_reported", DataType::Float32),
        ("entities", DataType::List(Box::new(entity))),
        ("truncated_windows", DataType::UInt16),
        ("dup_of_article_id", DataType::String),
        ("dup_of_paragraph", DataType::UInt32),
        // The example has an HTML page: its metadata and encoding.
        ("title", DataType::String),
        ("published", DataType::String),
        ("author", DataType::String),
        ("site", DataType::String),
        ("url", DataType::String),
        ("encoding", DataType::String),
    ];
    let got: Vec<(String, DataType)> = df
        .schema()
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    let want: Vec<(String, DataType)> = want.into_iter().map(|(n, t)| (n.to_string(), t)).collect();
    assert_eq!(got, want);
    let langs: std::collections::HashSet<String> =
        col_str(&df, "lang").into_iter().flatten().collect();
    for l in ["ar", "en", "ru", "fr", "de", "es", "uk"] {
        assert!(langs.contains(l), "{l} missing from {langs:?}");
    }

    let kv = crate::metadata(&out);
    let text = std::fs::read_to_string(&cb).unwrap();
    assert_eq!(kv["paratag.codebook"], text);
    assert_eq!(
        kv["paratag.codebook_sha256"],
        paratag::hash::sha256_bytes(text.as_bytes())
    );
    assert_eq!(kv["paratag.version"], env!("CARGO_PKG_VERSION"));
    let models: serde_json::Value = serde_json::from_str(&kv["paratag.models"]).unwrap();
    let roles: Vec<&str> = models
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["encoder", "ner"]);
    let w = paratag::hash::sha256_file(&enc.join("model.safetensors")).unwrap();
    assert_eq!(models[0]["weights_sha256"], w.as_str());
    // The folder is one input: its documents' count, and the sha256 of
    // their `relative-path sha256` lines in name order.
    let inputs: serde_json::Value = serde_json::from_str(&kv["paratag.inputs"]).unwrap();
    let inputs = inputs.as_array().unwrap();
    assert_eq!(inputs.len(), 1);
    let folder = Path::new(root).join("datasets/example");
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let lines: String = names
        .iter()
        .map(|n| {
            let sha = paratag::hash::sha256_file(&folder.join(n)).unwrap();
            format!("{n} {sha}\n")
        })
        .collect();
    assert_eq!(inputs[0]["files"], 7);
    assert_eq!(
        inputs[0]["sha256"],
        paratag::hash::sha256_bytes(lines.as_bytes()).as_str()
    );
    let cmd: Vec<String> = serde_json::from_str(&kv["paratag.command_line"]).unwrap();
    assert!(cmd.contains(&"tag".to_string()));
    // The NER fixture's types, for checking gold labels in `eval`.
    let types: Vec<String> = serde_json::from_str(&kv["paratag.entity_types"]).unwrap();
    assert_eq!(types, ["PER", "LOC"]);
    for k in [
        "paratag.started_at",
        "paratag.finished_at",
        "paratag.summary",
    ] {
        assert!(!kv[k].is_empty(), "{k}");
    }
}

/// Weights are read straight into the model's tensors: an f16 file gives
/// the f32 file's embeddings to f16 precision, and a file whose byte ranges
/// do not fit is refused with its name, not read out of bounds.
#[test]
fn weights_load_from_any_float_dtype_and_bad_ranges_are_refused() {
    use paratag::models::encoder::Encoder;
    use paratag::models::{DType, ModelDir};
    let d = tempfile::tempdir().unwrap();
    let f32_dir = fixtures::encoder(&d.path().join("f32"));
    let f16_dir = d.path().join("f16");
    std::fs::create_dir_all(&f16_dir).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(f32_dir.join(f), f16_dir.join(f)).unwrap();
    }
    let tensors = tch::Tensor::read_safetensors(f32_dir.join("model.safetensors")).unwrap();
    let half: Vec<(String, tch::Tensor)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.to_kind(tch::Kind::Half)))
        .collect();
    tch::Tensor::write_safetensors(&half, f16_dir.join("model.safetensors")).unwrap();

    let embed = |dir: &Path| {
        let m = ModelDir::open(dir).unwrap();
        let enc = Encoder::load(&m, tch::Device::Cpu, DType::F32, false).unwrap();
        let tok = m.tokenizer().unwrap();
        let e = tok.windows(PARA, 0).unwrap().remove(0);
        let p = paratag::batch::pad(&[&e], m.pad_id, m.max_len, tch::Device::Cpu);
        paratag::models::rows(&enc.forward(&p).unwrap(), &[0])
            .unwrap()
            .remove(0)
    };
    let (a, b) = (embed(&f32_dir), embed(&f16_dir));
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(diff > 0.0 && diff < 5e-3, "max difference {diff}");
    // Loading twice gives the same numbers.
    assert_eq!(a, embed(&f32_dir));

    // A header that claims more bytes than the file holds.
    let w = f32_dir.join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() - 64]).unwrap();
    let m = ModelDir::open(&f32_dir).unwrap();
    let e = match Encoder::load(&m, tch::Device::Cpu, DType::F32, false) {
        Ok(_) => panic!("a truncated weight file loaded"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("model.safetensors") && e.contains("does not fit its shape or the file"),
        "{e}"
    );
}
