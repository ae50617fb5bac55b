//! The hand-labeling loop end to end: tag, `sample` to each labeling format,
//! fill the labels in as coders would, `eval` each back, `calibrate`.

use super::fixtures::{self, NER_LABELS};
use super::{paratag, stderr};
use paratag::dataset::read_predictions;
use paratag::formats::{cp_slice, cp_to_utf16, Span};
use paratag::record::Pred;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Arabic (with a shadda), Cyrillic, emoji with a skin-tone modifier, a flag,
/// and a decomposed "é" (e + U+0301).
const ARTICLES: &[(&str, &str)] = &[
    (
        "ar-news.txt",
        "أعلنت الحكومة عن حزمة مساعدات جديدة لأوكرانيا، وقال الوزير إنّ الدعم سيستمر.\n\nوصل الوفد إلى كييف 👍🏽 صباح الاثنين لبحث المساعدات.",
    ),
    (
        "uk-news.txt",
        "Київ отримав нову партію допомоги 🇺🇦 від партнерів.\n\nУряд обговорив бюджет на наступний рік.",
    ),
    (
        "en-news.txt",
        "Congress debated the aid package for Ukraine on Monday.\n\nThe cafe\u{301} in Zurich served tea to the delegates.",
    ),
];

const TOPICS: &[&str] = &[
    "aid_to_ukraine",
    "peace_talks",
    "battlefield",
    "domestic_politics",
    "none",
];
const STANCES: &[&str] = &["favor", "against", "none"];

pub(crate) struct Setup {
    _dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) pred: PathBuf,
    codebook: PathBuf,
}

/// A corpus tagged with tiny random models and the ukraine codebook.
pub(crate) fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let corpus = root.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    for (name, text) in ARTICLES {
        std::fs::write(corpus.join(name), text).unwrap();
    }
    let enc = fixtures::encoder(&root.join("enc"));
    let ner = fixtures::ner(&root.join("ner"), NER_LABELS, 3);
    let codebook = PathBuf::from(format!(
        "{}/datasets/codebooks/ukraine.toml",
        env!("CARGO_MANIFEST_DIR")
    ));
    let pred = root.join("pred.parquet");
    let o = paratag(&[
        "tag",
        corpus.to_str().unwrap(),
        "-o",
        pred.to_str().unwrap(),
        "-c",
        codebook.to_str().unwrap(),
        "--encoder",
        enc.to_str().unwrap(),
        "--ner",
        ner.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    Setup {
        _dir: dir,
        root,
        pred,
        codebook,
    }
}

/// What coder `c` (0 or 1) says about item `i`.
struct Labels {
    topic: &'static str,
    stance: &'static str,
    entities: Vec<Span>,
}

fn special(p: &Pred, s: &Span) -> bool {
    !cp_slice(&p.text, s.start as usize, s.end as usize)
        .unwrap()
        .is_ascii()
}

fn truth(p: &Pred, i: usize, coder: usize) -> Labels {
    let spans: Vec<Span> = p
        .entities
        .iter()
        .flatten()
        .map(|e| e.span.clone())
        .collect();
    // Coder 1 keeps every span but each third; coder 2 also drops each fifth.
    // Spans with non-ASCII text are always kept, so they reach the metrics.
    let entities = spans
        .iter()
        .enumerate()
        .filter(|(k, s)| special(p, s) || (k % 3 != 1 && (coder == 0 || k % 5 != 2)))
        .map(|(_, s)| s.clone())
        .collect();
    let topic = if coder == 1 && i % 4 == 1 {
        TOPICS[(i + 1) % TOPICS.len()]
    } else {
        TOPICS[i % TOPICS.len()]
    };
    Labels {
        topic,
        stance: STANCES[i % 3],
        entities,
    }
}

const CODERS: [&str; 2] = ["ann1", "ann2"];

fn key(v: &Value) -> (String, u32) {
    (
        v["article_id"].as_str().unwrap().to_string(),
        v["paragraph"].as_u64().unwrap() as u32,
    )
}

fn find<'a>(preds: &'a [Pred], k: &(String, u32)) -> (usize, &'a Pred) {
    preds
        .iter()
        .enumerate()
        .find(|(_, p)| p.article_id == k.0 && p.paragraph == k.1)
        .expect("sampled row is in the predictions")
}

fn spans_json(spans: &[Span]) -> Value {
    Value::Array(
        spans
            .iter()
            .map(|s| json!([s.start, s.end, s.label]))
            .collect(),
    )
}

/// Fills a blind sheet in each format; returns the filled file.
fn fill(fmt: &str, sheet: &Path, preds: &[Pred], utf16: bool) -> PathBuf {
    let text = std::fs::read_to_string(sheet).unwrap();
    let out = sheet.with_file_name(format!(
        "filled{}-{}",
        if utf16 { "-utf16" } else { "" },
        sheet.file_name().unwrap().to_str().unwrap()
    ));
    match fmt {
        "csv" => {
            let mut r = csv::Reader::from_reader(text.as_bytes());
            let head: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
            let col = |n: &str| head.iter().position(|h| h == n).unwrap();
            let mut w = csv::Writer::from_path(&out).unwrap();
            w.write_record(&head).unwrap();
            for rec in r.records() {
                let rec = rec.unwrap();
                let k = (
                    rec[col("article_id")].to_string(),
                    rec[col("paragraph")].parse().unwrap(),
                );
                let (i, p) = find(preds, &k);
                for (c, name) in CODERS.iter().enumerate() {
                    let l = truth(p, i, c);
                    let mut row: Vec<String> = rec.iter().map(String::from).collect();
                    row[col("topic")] = l.topic.into();
                    row[col("stance_ukraine_aid")] = l.stance.into();
                    row[col("entities")] = spans_json(&l.entities).to_string();
                    row[col("coder")] = name.to_string();
                    w.write_record(&row).unwrap();
                }
            }
            w.flush().unwrap();
        }
        "json" => {
            let mut tasks: Vec<Value> = serde_json::from_str(&text).unwrap();
            for t in &mut tasks {
                let (i, p) = find(preds, &key(&t["data"]));
                let anns: Vec<Value> = CODERS
                    .iter()
                    .enumerate()
                    .map(|(c, name)| {
                        let l = truth(p, i, c);
                        let mut result = vec![
                            json!({"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [l.topic]}}),
                            json!({"from_name": "stance_ukraine_aid", "to_name": "text", "type": "choices", "value": {"choices": [l.stance]}}),
                        ];
                        for s in &l.entities {
                            let slice = cp_slice(&p.text, s.start as usize, s.end as usize).unwrap();
                            let (a, b) = if utf16 {
                                (cp_to_utf16(&p.text, s.start as usize), cp_to_utf16(&p.text, s.end as usize))
                            } else {
                                (s.start as usize, s.end as usize)
                            };
                            result.push(json!({"from_name": "entities", "to_name": "text", "type": "labels",
                                "value": {"start": a, "end": b, "text": slice, "labels": [s.label]}}));
                        }
                        json!({"completed_by": {"email": name}, "was_cancelled": false, "result": result})
                    })
                    .collect();
                t["annotations"] = Value::Array(anns);
            }
            std::fs::write(&out, serde_json::to_string_pretty(&tasks).unwrap()).unwrap();
        }
        "doccano" | "prodigy" => {
            let mut lines = Vec::new();
            for line in text.lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                let k = if fmt == "doccano" {
                    key(&v)
                } else {
                    key(&v["meta"])
                };
                let (i, p) = find(preds, &k);
                for (c, name) in CODERS.iter().enumerate() {
                    let l = truth(p, i, c);
                    let mut o = v.clone();
                    let cats = json!([
                        format!("topic:{}", l.topic),
                        format!("stance_ukraine_aid:{}", l.stance)
                    ]);
                    if fmt == "doccano" {
                        o["label"] = spans_json(&l.entities);
                        o["cats"] = cats;
                        o["annotator"] = json!(name);
                    } else {
                        o["spans"] = Value::Array(
                            l.entities
                                .iter()
                                .map(|s| json!({"start": s.start, "end": s.end, "label": s.label}))
                                .collect(),
                        );
                        o["accept"] = cats;
                        o["answer"] = json!("accept");
                        o["_annotator_id"] = json!(name);
                    }
                    lines.push(o.to_string());
                }
            }
            std::fs::write(&out, lines.join("\n") + "\n").unwrap();
        }
        _ => unreachable!(),
    }
    out
}

fn sample(s: &Setup, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut a = vec![
        "sample",
        s.pred.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    a.extend_from_slice(extra);
    paratag(&a)
}

fn eval_json(s: &Setup, gold: &Path, extra: &[&str]) -> Value {
    let js = gold.with_extension("report.json");
    let mut args = vec![
        "eval",
        "--gold",
        gold.to_str().unwrap(),
        "--pred",
        s.pred.to_str().unwrap(),
        "--json",
        js.to_str().unwrap(),
        "--force",
        "--bootstrap",
        "200",
        "--by",
        "lang",
    ];
    args.extend_from_slice(extra);
    let o = paratag(&args);
    assert!(o.status.success(), "{}: {}", gold.display(), stderr(&o));
    serde_json::from_str(&std::fs::read_to_string(js).unwrap()).unwrap()
}

#[test]
fn round_trip_through_every_labeling_format() {
    let s = setup();
    let preds = read_predictions(&s.pred).unwrap().rows;
    assert!(preds.len() >= 6);
    let mut reports = Vec::new();
    for (fmt, ext) in [
        ("csv", "csv"),
        ("json", "json"),
        ("doccano", "doccano.jsonl"),
        ("prodigy", "prodigy.jsonl"),
    ] {
        let sheet = s.root.join(format!("sample.{ext}"));
        let o = sample(&s, &sheet, &["-n", "100", "--stratify", "lang", "--blind"]);
        assert!(o.status.success(), "{fmt}: {}", stderr(&o));
        let blind = std::fs::read_to_string(&sheet).unwrap();
        assert!(
            !blind.contains("pred_"),
            "{fmt}: --blind leaves predictions out"
        );
        assert!(
            blind.contains("codepoint"),
            "{fmt}: the offset unit is stated"
        );
        let filled = fill(fmt, &sheet, &preds, false);
        reports.push((fmt, eval_json(&s, &filled, &[])));
        if fmt == "json" {
            // An old Label Studio export counting UTF-16 units reads the same.
            let filled16 = fill(fmt, &sheet, &preds, true);
            assert_ne!(
                std::fs::read_to_string(&filled16).unwrap(),
                std::fs::read_to_string(&filled).unwrap(),
                "emoji make UTF-16 offsets differ"
            );
            reports.push(("json-utf16", eval_json(&s, &filled16, &[])));
        }
    }

    // The same figures from every format.
    let (_, first) = &reports[0];
    for (fmt, r) in &reports[1..] {
        for part in ["tasks", "ner", "by"] {
            assert_eq!(r[part], first[part], "{fmt} vs csv: {part}");
        }
    }

    // Expected figures, computed here from the truth and the predictions.
    let (mut agree, mut correct, mut ties) = (0, 0, 0);
    let (mut gold_spans, mut pred_spans) = (0u64, 0u64);
    let mut texts = Vec::new();
    for (i, p) in preds.iter().enumerate() {
        let (a, b) = (truth(p, i, 0), truth(p, i, 1));
        if a.topic == b.topic {
            agree += 1;
            correct += usize::from(Some(a.topic) == Some(p.topic.as_deref().unwrap_or("none")));
        } else {
            ties += 1;
        }
        // Majority spans of two coders: those both marked.
        for sp in b.entities.iter().filter(|x| a.entities.contains(x)) {
            gold_spans += 1;
            texts.push(
                cp_slice(&p.text, sp.start as usize, sp.end as usize)
                    .unwrap()
                    .to_string(),
            );
        }
        pred_spans += p.entities.as_ref().map_or(0, |e| e.len() as u64);
    }
    let topic = &first["tasks"][0];
    assert_eq!(topic["task"], "topic");
    assert_eq!(topic["n"], agree);
    assert_eq!(topic["ties"], ties);
    let acc = topic["accuracy"]["value"].as_f64().unwrap();
    assert!((acc - correct as f64 / agree as f64).abs() < 1e-12, "{acc}");
    let lo = topic["accuracy"]["ci_low"].as_f64().unwrap();
    let hi = topic["accuracy"]["ci_high"].as_f64().unwrap();
    assert!(lo <= acc && acc <= hi, "{lo} {acc} {hi}");
    assert!(
        topic["alpha_coders"]["value"].is_number(),
        "two coders give coder alpha"
    );
    let exact = &first["ner"]["exact"]["micro"];
    assert_eq!(
        exact["tp"], gold_spans,
        "every gold span is found at its exact offsets"
    );
    assert_eq!(exact["fn"], 0);
    assert_eq!(exact["fp"], pred_spans - gold_spans);
    // The hard scripts were in the gold and survived every format.
    for want in ["👍🏽", "Київ", "كييف"] {
        assert!(texts.iter().any(|t| t == want), "{want} not in {texts:?}");
    }
    assert!(texts.iter().any(|t| t.contains('\u{301}')), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("🇺🇦")), "{texts:?}");
}

#[test]
fn sample_is_stratified_seeded_and_excludes_earlier_sheets() {
    let s = setup();
    let run = |out: &Path, extra: &[&str]| {
        let o = sample(&s, out, extra);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read_to_string(out).unwrap()
    };
    let a = s.root.join("a.gold.jsonl");
    let b = s.root.join("b.gold.jsonl");
    let one = run(
        &a,
        &[
            "-n",
            "3",
            "--stratify",
            "lang",
            "--allocation",
            "equal",
            "--seed",
            "7",
        ],
    );
    let again = run(
        &b,
        &[
            "-n",
            "3",
            "--stratify",
            "lang",
            "--allocation",
            "equal",
            "--seed",
            "7",
        ],
    );
    assert_eq!(one, again, "same seed, same sample");
    let langs: std::collections::BTreeSet<String> = one
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["lang"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        langs.len(),
        3,
        "one per language with equal allocation: {langs:?}"
    );
    // Excluding the first sheet leaves only the other paragraphs.
    let c = s.root.join("c.gold.jsonl");
    let rest = run(&c, &["-n", "100", "--exclude", a.to_str().unwrap()]);
    let total = read_predictions(&s.pred).unwrap().rows.len();
    assert_eq!(rest.lines().count(), total - 3);
    for l in one.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(
            !rest.contains(&format!("{}", v["text"])),
            "sampled twice: {l}"
        );
    }
}

/// Runs `eval` on bad gold; it must fail. Returns stderr.
fn refused(s: &Setup, gold: &Path) -> String {
    let o = paratag(&[
        "eval",
        "--gold",
        gold.to_str().unwrap(),
        "--pred",
        s.pred.to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "{}: accepted", gold.display());
    stderr(&o)
}

/// One-line errors naming file and line, no panic, for bad gold.
#[test]
fn bad_gold_is_named_by_file_and_line() {
    let s = setup();
    let preds = read_predictions(&s.pred).unwrap().rows;
    let (p, good) = (&preds[0], &preds[1]);
    let t = serde_json::to_string(&p.text).unwrap();
    let n = p.text.chars().count();
    let line = |extra: &str| {
        format!(
            r#"{{"article_id": "{}", "paragraph": {}, "text": {t}{extra}}}"#,
            p.article_id, p.paragraph
        )
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown topic",
            line(r#", "topic": "sports""#),
            "unknown topic label \"sports\"",
        ),
        (
            "unknown stance",
            line(r#", "stance": {"ukraine_aid": "maybe"}"#),
            "unknown stance label",
        ),
        (
            "unknown target",
            line(r#", "stance": {"nato": "favor"}"#),
            "unknown stance target",
        ),
        (
            "unknown entity",
            line(r#", "entities": [{"start": 0, "end": 1, "label": "ORG"}]"#),
            "unknown entity label \"ORG\"",
        ),
        (
            "overlap",
            line(
                r#", "entities": [{"start": 0, "end": 3, "label": "LOC"}, {"start": 2, "end": 4, "label": "PER"}]"#,
            ),
            "overlap",
        ),
        (
            "out of range",
            line(&format!(
                r#", "entities": [{{"start": 0, "end": {}, "label": "LOC"}}]"#,
                n + 1
            )),
            "out of range",
        ),
        (
            "no match",
            r#"{"text": "A paragraph nobody tagged.", "topic": "economy"}"#.to_string(),
            "matches no prediction",
        ),
        ("not json", "{oops".to_string(), "not JSON"),
        (
            "no text",
            r#"{"topic": "economy"}"#.to_string(),
            "missing \"text\"",
        ),
    ];
    for (name, bad, want) in cases {
        let gold = s
            .root
            .join(format!("bad-{}.gold.jsonl", name.replace(' ', "-")));
        // The bad record is on line 2, after a good one.
        let first = json!({"article_id": good.article_id, "paragraph": good.paragraph, "text": good.text, "topic": "economy"});
        std::fs::write(&gold, format!("{first}\n{bad}\n")).unwrap();
        let err = refused(&s, &gold);
        assert!(err.contains(want), "{name}: {err}");
        assert!(
            err.contains(&format!("{}:2", gold.display())),
            "{name}: no file:line in {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    // A CSV without a text column names the file, line 1 and the column.
    let csv = s.root.join("bad.csv");
    std::fs::write(&csv, "id,topic\na,economy\n").unwrap();
    let err = refused(&s, &csv);
    assert!(
        err.contains(&format!("{}:1", csv.display())) && err.contains("missing column `text`"),
        "{err}"
    );
    // A span whose text disagrees with its offsets (a unit mix-up) is refused.
    let ls = s.root.join("bad.json");
    std::fs::write(
        &ls,
        format!(
            r#"[{{"data": {{"text": {t}}}, "annotations": [{{"result": [{{"type": "labels", "from_name": "entities", "value": {{"start": 0, "end": 2, "text": "zz", "labels": ["LOC"]}}}}]}}]}}]"#
        ),
    )
    .unwrap();
    let err = refused(&s, &ls);
    assert!(
        err.contains(&format!("{}:1", ls.display())) && err.contains("\"zz\""),
        "{err}"
    );
}

#[test]
fn report_files_and_plots_are_written() {
    let s = setup();
    let preds = read_predictions(&s.pred).unwrap().rows;
    let gold = s.root.join("g.gold.jsonl");
    let lines: Vec<String> = preds
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({"article_id": p.article_id, "paragraph": p.paragraph, "text": p.text,
                   "topic": TOPICS[i % TOPICS.len()], "stance": {"ukraine_aid": STANCES[i % 3]},
                   "entities": p.entities.iter().flatten().take(1).map(|e| json!({"start": e.span.start, "end": e.span.end, "label": e.span.label})).collect::<Vec<_>>()})
            .to_string()
        })
        .collect();
    std::fs::write(&gold, lines.join("\n")).unwrap();
    let (md, js, plots) = (
        s.root.join("r.md"),
        s.root.join("r.json"),
        s.root.join("plots"),
    );
    let o = paratag(&[
        "eval",
        "--gold",
        gold.to_str().unwrap(),
        "--pred",
        s.pred.to_str().unwrap(),
        "--report",
        md.to_str().unwrap(),
        "--json",
        js.to_str().unwrap(),
        "--plots",
        plots.to_str().unwrap(),
        "--by",
        "lang",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(md).unwrap();
    for want in [
        "## Classification",
        "### topic",
        "Confusion",
        "## Entities",
        "## Breakdowns",
    ] {
        assert!(md.contains(want), "{want} missing:\n{md}");
    }
    let r: Value = serde_json::from_str(&std::fs::read_to_string(js).unwrap()).unwrap();
    assert_eq!(r["schema"], 1);
    assert_eq!(r["bootstrap"]["unit"], "article");
    for t in ["topic", "stance_ukraine_aid"] {
        for kind in ["confusion", "f1", "reliability", "scores"] {
            let png = plots.join(format!("{kind}_{t}.png"));
            let bytes = std::fs::read(&png).unwrap_or_else(|_| panic!("{} missing", png.display()));
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", png.display());
            assert!(bytes.len() > 2000, "{} is nearly empty", png.display());
        }
    }
    assert!(plots.join("f1_entities.png").exists());
}

#[test]
fn calibrate_writes_a_new_codebook_and_never_the_input() {
    let s = setup();
    let preds = read_predictions(&s.pred).unwrap().rows;
    // Gold that agrees with the model's argmax topic everywhere: any threshold
    // that keeps every topic is best, so the new threshold is at most the
    // lowest top score.
    let gold = s.root.join("g.gold.jsonl");
    let lines: Vec<String> = preds
        .iter()
        .map(|p| {
            let best = p
                .topic_scores
                .as_ref()
                .unwrap()
                .iter()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap();
            json!({"article_id": p.article_id, "paragraph": p.paragraph, "text": p.text, "topic": best.0}).to_string()
        })
        .collect();
    std::fs::write(&gold, lines.join("\n")).unwrap();
    let min_top = preds
        .iter()
        .map(|p| {
            p.topic_scores
                .as_ref()
                .unwrap()
                .iter()
                .map(|x| x.1)
                .fold(0.0f32, f32::max)
        })
        .fold(1.0f32, f32::min);
    let out = s.root.join("calibrated.toml");
    let cb_before = std::fs::read_to_string(&s.codebook).unwrap();
    let calibrate = |out: &Path, extra: &[&str]| {
        let mut a = vec![
            "calibrate",
            "--gold",
            gold.to_str().unwrap(),
            "--pred",
            s.pred.to_str().unwrap(),
            "-c",
            s.codebook.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        paratag(&a)
    };
    let o = calibrate(&out, &["--folds", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let new = std::fs::read_to_string(&out).unwrap();
    let cb = paratag::codebook::Codebook::parse(&out, new.clone()).unwrap();
    assert!(
        cb.topics.threshold <= min_top,
        "{} > {min_top}",
        cb.topics.threshold
    );
    // A handful of gold items: the moved threshold is flagged, naming each
    // class under 30 items with its count, and its effect gets an interval.
    let before = paratag::codebook::Codebook::load(&s.codebook).unwrap();
    assert!(
        cb.topics.threshold < before.topics.threshold,
        "the threshold moved"
    );
    let err = stderr(&o);
    let warning = err
        .lines()
        .find(|l| l.contains("warning: topic: the new threshold rests on fewer than 30 gold items"))
        .unwrap_or_else(|| panic!("{err}"));
    let mut classes: std::collections::BTreeMap<String, usize> = Default::default();
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap();
        *classes
            .entry(v["topic"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for (class, n) in &classes {
        assert!(
            warning.contains(&format!("`{class}` {n}")),
            "{class} {n}: {warning}"
        );
    }
    assert!(err.contains("effect ") && err.contains("95 % CI"), "{err}");
    assert!(
        new.contains("# paratag calibrate") && new.contains("macro-F1"),
        "{new}"
    );
    assert!(new.contains("after by 3-fold CV"), "{new}");
    // Comments of the input survive, inline ones too.
    assert!(new.contains("# {} <- each topic's `label`"), "{new}");
    assert!(new.contains("# below it: topic = null"), "{new}");
    assert!(new.ends_with('\n'), "{new}");
    assert_eq!(std::fs::read_to_string(&s.codebook).unwrap(), cb_before);
    // An existing -o is refused before any work, and the input codebook
    // even with --force.
    let o = calibrate(&out, &["--folds", "3"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("exists; pass --force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), new);
    let o = calibrate(&s.codebook, &["--force"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("never overwrites"), "{}", stderr(&o));
    // --split reports on held-out articles.
    let o = calibrate(&s.root.join("c2.toml"), &["--split", "0.5", "--folds", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("held out"), "{}", stderr(&o));
}

/// The gold shapes of the shared datasets, in excerpts written for this test:
/// CoNLL with `# text =` and token ids, bare `TOKEN TAG` lines, a long stance
/// table in cp1252, and a TSV with mapped columns.
#[test]
fn shared_dataset_shapes_import() {
    let d = tempfile::tempdir().unwrap();
    let check = |gold: &Path, extra: &[&str]| {
        let mut a = vec!["eval", "--check-gold", "--gold", gold.to_str().unwrap()];
        a.extend_from_slice(extra);
        let o = paratag(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let uner = d.path().join("x.iob2");
    std::fs::write(
        &uner,
        "# sent_id = s1\n# text = “Hi,” said Anna Schmidt in Köln.\n1\t“\tO\t-\t-\n2\tHi\tO\t-\t-\n3\t,\tO\t-\t-\n4\t”\tO\t-\t-\n5\tsaid\tO\t-\t-\n6\tAnna\tB-PER\t-\t-\n7\tSchmidt\tI-PER\t-\t-\n8\tin\tO\t-\t-\n9\tKöln\tB-LOC\t-\t-\n10\t.\tO\t-\t-\n",
    )
    .unwrap();
    let out = check(&uner, &[]);
    assert!(
        out.contains("1 gold items (conll)")
            && out.contains("entity=PER: 1")
            && out.contains("entity=LOC: 1"),
        "{out}"
    );
    let (_, items) = paratag::formats::read(&uner, &Default::default()).unwrap();
    let e = items[0].annotations[0].entities.as_ref().unwrap();
    let slice = |s: &Span| {
        cp_slice(&items[0].text, s.start as usize, s.end as usize)
            .unwrap()
            .to_string()
    };
    assert_eq!(slice(&e[0]), "Anna Schmidt");
    assert_eq!(slice(&e[1]), "Köln");
    assert_eq!(items[0].article_id.as_deref(), Some("s1"));

    let aner = d.path().join("aner.txt");
    std::fs::write(
        &aner,
        "عبدالله B-PERS\nالثاني I-PERS\nفي O\nعمان B-LOC\n\n- O\nغيث B-PERS\n",
    )
    .unwrap();
    let out = check(
        &aner,
        &["--gold-format", "conll", "--entity-map", "PERS=PER"],
    );
    assert!(
        out.contains("2 gold items")
            && out.contains("entity=PER: 2")
            && out.contains("entity=LOC: 1"),
        "{out}"
    );

    // One target per row, Windows-1252 bytes (0x92 is a right single quote).
    let cb = d.path().join("cb.toml");
    std::fs::write(
        &cb,
        "[codebook]\nname = \"t\"\n\n[[stance]]\nid = \"covid_vaccine\"\ntarget = \"vaccine\"\nfavor = \"f\"\nagainst = \"a\"\n\n[[stance]]\nid = \"ukraine\"\ntarget = \"Ukraine\"\nfavor = \"f\"\nagainst = \"a\"\n",
    )
    .unwrap();
    let long = d.path().join("long.csv");
    std::fs::write(&long, b"ID,Tweet,target,stance\n1,It\x92s fine,Covid Vaccine,Favor\n2,No way,Ukraine,AGAINST\n3,Hmm,Ukraine,\n".as_slice()).unwrap();
    let args = [
        "-c",
        cb.to_str().unwrap(),
        "--gold-encoding",
        "cp1252",
        "--gold-col",
        "text=Tweet",
        "--gold-col",
        "article_id=ID",
        "--gold-col",
        "target=target",
        "--gold-col",
        "stance=stance",
    ];
    let out = check(&long, &args);
    assert!(
        out.contains("3 gold items")
            && out.contains("stance_covid_vaccine=favor: 1")
            && out.contains("stance_ukraine=against: 1"),
        "{out}"
    );
    let (_, items) = paratag::formats::read(
        &long,
        &paratag::formats::ReadOptions {
            table: paratag::table::TableOptions {
                encoding: Some("cp1252".into()),
                ..Default::default()
            },
            columns: vec![("text".into(), "Tweet".into())],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(items[0].text, "It\u{2019}s fine");
    // Without the encoding it is detected, and the summary says so.
    let o = paratag(&[
        "eval",
        "--check-gold",
        "--gold",
        long.to_str().unwrap(),
        "-c",
        cb.to_str().unwrap(),
        "--gold-col",
        "text=Tweet",
        "--gold-col",
        "target=target",
        "--gold-col",
        "stance=stance",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("decoded as windows-1252 (detected"),
        "{}",
        stderr(&o)
    );

    let tsv = d.path().join("sib.tsv");
    std::fs::write(
        &tsv,
        "index_id\tcategory\ttext\n7\tscience/technology\tA \"quoted\" line\n",
    )
    .unwrap();
    let sib = format!(
        "{}/datasets/codebooks/sib200.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = check(
        &tsv,
        &[
            "-c",
            &sib,
            "--gold-col",
            "article_id=index_id",
            "--gold-col",
            "topic=category",
        ],
    );
    assert!(out.contains("topic=science_technology: 1"), "{out}");
}

/// `eval` tagging the gold itself with the setup's codebook and encoder;
/// its JSON report.
fn eval_tagging(s: &Setup, gold: &Path, extra: &[&str]) -> Value {
    let js = gold.with_extension("report.json");
    let mut args = vec![
        "eval",
        "--gold",
        gold.to_str().unwrap(),
        "-c",
        s.codebook.to_str().unwrap(),
        "--json",
        js.to_str().unwrap(),
        "--force",
    ];
    let enc = s.root.join("enc");
    args.extend(["--encoder", enc.to_str().unwrap()]);
    args.extend(extra);
    let o = paratag(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&std::fs::read_to_string(js).unwrap()).unwrap()
}

/// `eval` without `--pred` tags the gold texts itself; on paragraphs of the
/// corpus it must give the figures `eval --pred` gives on the tagged table.
#[test]
fn eval_tags_gold_itself_like_tag_does() {
    let s = setup();
    let preds = read_predictions(&s.pred).unwrap().rows;
    let gold = s.root.join("g.gold.jsonl");
    let lines: Vec<String> =
        preds
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let first: Vec<Value> = p.entities.iter().flatten().take(2)
                .map(|e| json!({"start": e.span.start, "end": e.span.end, "label": e.span.label}))
                .collect();
                json!({"article_id": p.article_id, "paragraph": p.paragraph, "text": p.text,
                   "topic": TOPICS[i % TOPICS.len()], "stance": {"ukraine_aid": STANCES[i % 3]},
                   "entities": first})
                .to_string()
            })
            .collect();
    std::fs::write(&gold, lines.join("\n")).unwrap();
    let with_pred = eval_json(&s, &gold, &[]);
    let ner = s.root.join("ner");
    let own = eval_tagging(
        &s,
        &gold,
        &[
            "--ner",
            ner.to_str().unwrap(),
            "--bootstrap",
            "200",
            "--by",
            "lang",
        ],
    );
    assert_eq!(own["tasks"], with_pred["tasks"]);
    assert_eq!(own["by"], with_pred["by"]);
    assert_eq!(own["ner"], with_pred["ner"]);
    assert_eq!(own["ner"]["exact"]["micro"]["fn"], 0);
    assert_eq!(own["predictions"], "tagged by this eval run");
}

#[test]
fn unmatched_gold_is_listed_when_allowed() {
    let s = setup();
    let preds = read_predictions(&s.pred).unwrap().rows;
    let gold = s.root.join("u.gold.jsonl");
    let p = &preds[0];
    std::fs::write(
        &gold,
        format!(
            "{}\n{}\n",
            json!({"article_id": p.article_id, "paragraph": p.paragraph, "text": p.text, "topic": "economy"}),
            json!({"text": "Nobody tagged this paragraph.", "topic": "economy"})
        ),
    )
    .unwrap();
    let r = eval_json(&s, &gold, &["--allow-unmatched"]);
    assert_eq!(r["gold"]["matched"], 1);
    assert_eq!(
        r["gold"]["unmatched"],
        json!([format!("{}:2", gold.display())])
    );
    assert_eq!(r["tasks"][0]["n"], 1);
    // An Excel-friendly sheet: BOM and CRLF, read back like any CSV.
    let x = s.root.join("x.csv");
    let o = sample(&s, &x, &["-n", "2", "--format", "xlsx-csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&x).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBFarticle_id,"));
    assert!(bytes.windows(2).any(|w| w == b"\r\n"));
    let o = paratag(&["eval", "--check-gold", "--gold", x.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("2 gold items (csv)"),
        "{}",
        stderr(&o)
    );
}

/// Gold with stance labels only, tagged by `eval` itself with a codebook
/// whose target is gated on topics (`only_topics`): the topics run for the
/// gate although the gold labels none (this was refused as if `--no-topic`
/// had been given).
#[test]
fn stance_only_gold_runs_the_topics_a_gated_target_needs() {
    let s = setup();
    let gold = s.root.join("stance-only.gold.jsonl");
    let texts = [
        "Germany will send more air defence systems to Ukraine this winter.",
        "Шахтар переміг Барселону з рахунком 1:0 у Гамбурзі.",
        "لا يجوز إرسال مزيد من الأسلحة إلى أوكرانيا.",
    ];
    let lines: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"article_id": format!("s{i}"), "paragraph": 0, "text": t,
                   "stance": {"ukraine_aid": STANCES[i % 3]}})
            .to_string()
        })
        .collect();
    std::fs::write(&gold, lines.join("\n")).unwrap();
    let cb = std::fs::read_to_string(&s.codebook).unwrap();
    assert!(cb.contains("only_topics"), "the test needs a gated target");
    let r = eval_tagging(&s, &gold, &["--bootstrap", "50"]);
    let tasks: Vec<&str> = r["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task"].as_str().unwrap())
        .collect();
    assert_eq!(tasks, ["stance_ukraine_aid"]);
    assert_eq!(r["tasks"][0]["n"], 3);
}

/// `--entity-types` scores only the listed types, gold and predicted alike.
#[test]
fn entity_types_score_only_the_listed_types() {
    let s = setup();
    let preds = read_predictions(&s.pred).unwrap().rows;
    // The gold is the predictions with every second entity renamed PER, a
    // type the tiny model knows but does not predict here.
    let (mut n, mut renamed) = (0usize, 0usize);
    let gold = s.root.join("types.gold.jsonl");
    let lines: Vec<String> = preds
        .iter()
        .map(|p| {
            let ents: Vec<Value> = p
                .entities
                .iter()
                .flatten()
                .map(|e| {
                    assert_ne!(e.span.label, "PER");
                    n += 1;
                    let label = if n % 2 == 0 {
                        renamed += 1;
                        "PER"
                    } else {
                        e.span.label.as_str()
                    };
                    json!({"start": e.span.start, "end": e.span.end, "label": label})
                })
                .collect();
            json!({"article_id": p.article_id, "paragraph": p.paragraph, "text": p.text, "entities": ents})
                .to_string()
        })
        .collect();
    assert!(renamed > 0, "the tiny model predicts entities");
    std::fs::write(&gold, lines.join("\n")).unwrap();
    let figures = |extra: &[&str]| {
        let r = eval_json(&s, &gold, extra);
        let m = &r["ner"]["exact"]["micro"];
        let n = |k: &str| m[k].as_u64().unwrap() as usize;
        ((n("tp"), n("fp"), n("fn")), r["ner"]["types"].clone())
    };
    assert_eq!(figures(&[]), ((n - renamed, renamed, renamed), Value::Null));
    // Only PER: the renamed gold spans are missed, nothing else counts.
    assert_eq!(
        figures(&["--entity-types", "PER"]),
        ((0, 0, renamed), json!(["PER"]))
    );
    // The predicted types: the renamed spans' predictions are false positives.
    let mut types: Vec<String> = preds
        .iter()
        .flat_map(|p| p.entities.iter().flatten().map(|e| e.span.label.clone()))
        .collect();
    types.sort();
    types.dedup();
    let list = types.join(",");
    assert_eq!(
        figures(&["--entity-types", &list]),
        ((n - renamed, renamed, 0), json!(types))
    );
    // A misspelt type is an error, not an empty score.
    let js = gold.with_extension("x.json");
    let o = paratag(&[
        "eval",
        "--gold",
        gold.to_str().unwrap(),
        "--pred",
        s.pred.to_str().unwrap(),
        "--json",
        js.to_str().unwrap(),
        "--entity-types",
        "PERSON",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--entity-types PERSON: no gold or predicted entity has this type"),
        "{err}"
    );
}
