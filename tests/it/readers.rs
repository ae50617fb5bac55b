//! The files researchers bring, read as they are, with clear messages: the
//! eight cases of issue 10, each from a small file of its shape.

use super::fixtures::{self, NER_LABELS};
use super::*;

/// `eval --check-gold --gold FILE ARGS`: (stdout, stderr, success).
fn check(gold: &Path, args: &[&str]) -> (String, String, bool) {
    let mut a = vec!["eval", "--check-gold", "--gold", gold.to_str().unwrap()];
    a.extend_from_slice(args);
    let o = paratag(&a);
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr(&o),
        o.status.success(),
    )
}

/// `tag INPUT -o OUT --no-ner --no-segment -q EXTRA...`: reading only.
fn plain(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut a = vec![
        "tag",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--no-ner",
        "--no-segment",
        "-q",
    ];
    a.extend_from_slice(extra);
    paratag(&a)
}

fn topic_codebook(dir: &Path, ids: &[&str]) -> PathBuf {
    let mut t = "[codebook]\nname = \"t\"\n".to_string();
    for id in ids {
        t += &format!("\n[[topic]]\nid = \"{id}\"\nlabel = \"{id}\"\n");
    }
    write(dir, "topics.toml", &t)
}

/// Case 1: CoNLL-2003's `-DOCSTART-` lines are document separators, not sentences.
#[test]
fn conll_docstart_lines_are_skipped_and_counted() {
    let d = tempfile::tempdir().unwrap();
    let f = write(
        d.path(),
        "eng.testb",
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\ncall NN I-NP O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\n-DOCSTART- -X- -X- O\n\nBRUSSELS NNP B-NP B-LOC\n",
    );
    let (out, err, ok) = check(&f, &["--gold-format", "conll"]);
    assert!(ok, "{err}");
    assert!(out.contains("3 gold items"), "{out}");
    assert!(
        out.contains("entity=ORG: 1") && out.contains("entity=LOC: 1"),
        "{out}"
    );
    assert!(
        err.contains("3 records -> 3 items (2 -DOCSTART- lines skipped)"),
        "{err}"
    );
}

/// Case 2: TSV is read with RFC quoting (multi-line cells, doubled quotes, tabs
/// inside quotes); `--no-quote` reads bare quotes as text.
#[test]
fn quoted_tsv_reads_and_no_quote_keeps_bare_quotes() {
    let d = tempfile::tempdir().unwrap();
    let f = write(
        d.path(),
        "news.tsv",
        "id\tcategory\ttext\n1\tpolitics\t\"The minister said:\nwe will send \"\"more\"\" aid\tsoon.\"\n2\tsports\tThe club won 2:1 on Sunday.\n",
    );
    let out = d.path().join("o.parquet");
    let o = plain(&f, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let df = read(&out);
    let texts: Vec<&str> = df
        .column("text")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(
        texts,
        [
            "The minister said:\nwe will send \"more\" aid\tsoon.",
            "The club won 2:1 on Sunday."
        ]
    );
    // The same file as gold.
    let cb = topic_codebook(d.path(), &["politics", "sports"]);
    let (out, err, ok) = check(
        &f,
        &["-c", cb.to_str().unwrap(), "--gold-col", "topic=category"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("2 gold items") && out.contains("topic=politics: 1"),
        "{out}"
    );
    // Bare quotes at the start of a cell: --no-quote keeps them.
    let bare = write(
        d.path(),
        "bare.tsv",
        "id\ttext\n1\t\"Hello,\" he said, \"again.\"\n",
    );
    let out = d.path().join("b.parquet");
    let o = plain(&bare, &out, &["--no-quote"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let df = read(&out);
    assert_eq!(
        df.column("text").unwrap().str().unwrap().get(0),
        Some("\"Hello,\" he said, \"again.\"")
    );
}

/// Case 3: A `;`-separated, `'`-quoted file without a header: a short error that
/// says which delimiter it looks like, then read with the options.
#[test]
fn delimiter_quote_and_no_header_options() {
    let d = tempfile::tempdir().unwrap();
    let long = "Die Gewerkschaft fordert mehr Lohn; die Arbeitgeber lehnen ab. ".repeat(40);
    let f = write(
        d.path(),
        "de.csv",
        &format!("wirtschaft;'{long}'\nsport;'Der Verein gewann 2:1.'\n"),
    );
    let cb = topic_codebook(d.path(), &["wirtschaft", "sport"]);
    let (_, err, ok) = check(&f, &["-c", cb.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("missing column `text`")
            && err.contains("the header looks semicolon-separated: pass --delimiter ';'"),
        "{err}"
    );
    assert!(
        err.len() < 300,
        "the error quotes the whole article: {} chars",
        err.len()
    );
    let (out, err, ok) = check(
        &f,
        &[
            "-c",
            cb.to_str().unwrap(),
            "--delimiter",
            ";",
            "--quote",
            "'",
            "--no-header",
            "--columns",
            "topic,text",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("2 gold items") && out.contains("topic=wirtschaft: 1"),
        "{out}"
    );
    // The same options read it as a corpus.
    let corpus = write(
        d.path(),
        "c.csv",
        "a1;wirtschaft;'Text eins; mit Semikolon.'\na2;sport;'Text zwei.'\n",
    );
    let out = d.path().join("o.parquet");
    let o = plain(
        &corpus,
        &out,
        &[
            "--delimiter",
            "semicolon",
            "--quote",
            "'",
            "--no-header",
            "--columns",
            "id,desk,text",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let df = read(&out);
    assert_eq!(
        df.column("text").unwrap().str().unwrap().get(0),
        Some("Text eins; mit Semikolon.")
    );
    assert_eq!(
        df.column("desk").unwrap().str().unwrap().get(1),
        Some("sport")
    );
}

/// Case 4: A `.csv` that is really tab-separated.
#[test]
fn a_tab_separated_csv_gets_a_hint() {
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), "x.csv", "id\ttext\n1\tSome text.\n");
    let out = d.path().join("o.parquet");
    let o = paratag(&[
        "tag",
        f.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--no-ner",
        "-q",
    ]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("missing column `id`")
            && err.contains("looks tab-separated: pass --delimiter tab"),
        "{err}"
    );
    let o = paratag(&[
        "tag",
        f.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--no-ner",
        "-q",
        "--delimiter",
        "tab",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Case 5: What was merged is said: rows without ids that share a text are one
/// item with two annotations; rows with their own ids never merge.
#[test]
fn merged_rows_are_reported() {
    let d = tempfile::tempdir().unwrap();
    let cb = topic_codebook(d.path(), &["economy", "sports"]);
    let f = write(
        d.path(),
        "g.csv",
        "row,text,topic\n1,Prices rose again.,economy\n2,The team won.,sports\n3,Prices rose again.,economy\n",
    );
    let (out, err, ok) = check(&f, &["-c", cb.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("2 gold items"), "{out}");
    assert!(
        err.contains("3 records -> 2 items (1 merged with an earlier record of the same text")
            && err.contains("g.csv:4 -> "),
        "{err}"
    );
    let (out, err, ok) = check(
        &f,
        &["-c", cb.to_str().unwrap(), "--gold-col", "article_id=row"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("3 gold items") && err.contains("3 records -> 3 items"),
        "{out}{err}"
    );
    assert!(!err.contains("merged"), "{err}");
}

/// Case 6: One stance target per row: a bounded `--check-gold`, each target
/// scored on its own items only, and a pooled figure beside the targets.
#[test]
fn one_target_per_row_is_summarised_scored_and_pooled() {
    let d = tempfile::tempdir().unwrap();
    let mut rows = "id,text,target,stance\n".to_string();
    for t in 0..14 {
        for k in 0..=(t % 3) {
            let label = ["favor", "against", "none"][(t + k) % 3];
            rows += &format!(
                "r{t}_{k},Comment {k} on proposal number {t}.,Proposal {t} on housing,{label}\n"
            );
        }
    }
    let f = write(d.path(), "policy.csv", &rows);
    let items = rows.lines().count() - 1;
    let cols = [
        "--gold-col",
        "article_id=id",
        "--gold-col",
        "target=target",
        "--gold-col",
        "stance=stance",
    ];
    let (out, err, ok) = check(&f, &cols);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() <= 13, "bounded: {out}");
    assert!(
        out.contains("... and 4 more stance targets") && out.contains("14 targets in all"),
        "{out}"
    );
    // eval tags the gold itself: NLI scores each row's target.
    let nli = fixtures::nli(
        &d.path().join("nli"),
        &["entailment", "neutral", "contradiction"],
        &[2.0, 0.0, -2.0],
    );
    let (json, md) = (d.path().join("r.json"), d.path().join("r.md"));
    let mut a = vec![
        "eval",
        "--gold",
        f.to_str().unwrap(),
        "--nli",
        nli.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--report",
        md.to_str().unwrap(),
        "--bootstrap",
        "20",
    ];
    a.extend_from_slice(&cols);
    let o = paratag(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("14 stance targets from the gold's target column"),
        "{}",
        stderr(&o)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let tasks = r["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 15, "14 targets and the pooled figure");
    let pooled = tasks
        .iter()
        .find(|t| t["task"] == "stance__pooled")
        .unwrap();
    assert_eq!(pooled["n"].as_u64().unwrap() as usize, items);
    let per: u64 = tasks
        .iter()
        .filter(|t| t["task"] != "stance__pooled")
        .map(|t| t["n"].as_u64().unwrap())
        .sum();
    assert_eq!(per as usize, items);
}

/// Case 7: A class absent from gold and predictions is not a row of the report,
/// and a topic report names `none` as no topic.
#[test]
fn absent_classes_are_left_out_and_none_is_no_topic() {
    let d = tempfile::tempdir().unwrap();
    let enc = fixtures::encoder(&d.path().join("enc"));
    let cb = write(d.path(), "cb.toml", &single_label_codebook());
    let gold = write(
        d.path(),
        "g.jsonl",
        &[
            (
                "a",
                "Parliament approved new aid to Ukraine.",
                "aid_to_ukraine",
            ),
            (
                "b",
                "Talks on a ceasefire continue in Geneva.",
                "peace_talks",
            ),
            ("c", "The weather was mild.", "none"),
        ]
        .iter()
        .map(|(id, t, topic)| {
            serde_json::json!({"article_id": id, "paragraph": 0, "text": t, "topic": topic})
                .to_string()
                + "\n"
        })
        .collect::<String>(),
    );
    let (json, md) = (d.path().join("r.json"), d.path().join("r.md"));
    let o = paratag(&[
        "eval",
        "--gold",
        gold.to_str().unwrap(),
        "-c",
        cb.to_str().unwrap(),
        "--encoder",
        enc.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--report",
        md.to_str().unwrap(),
        "--bootstrap",
        "10",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for c in r["tasks"][0]["per_class"].as_array().unwrap() {
        assert!(
            c["support"].as_u64().unwrap() > 0 || c["predicted"].as_u64().unwrap() > 0,
            "{c}"
        );
    }
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("| none (no topic) |"), "{md}");
    let _ = NER_LABELS;
}

/// Case 8a: A batch log (stderr not a terminal) gets plain progress lines; `-q`
/// stays silent.
#[test]
fn progress_lines_in_batch_logs_and_quiet_is_silent() {
    let d = tempfile::tempdir().unwrap();
    let enc = fixtures::encoder(&d.path().join("enc"));
    let cb = write(d.path(), "cb.toml", &single_label_codebook());
    let body: String = (0..30)
        .map(|i| serde_json::json!({"id": i, "text": format!("Paragraph {i} says the parliament approved aid, officials said.")}).to_string() + "\n")
        .collect();
    let input = write(d.path(), "in.jsonl", &body);
    let run = |quiet: bool| {
        let out = d.path().join(format!("o-{quiet}.parquet"));
        let mut c = crate::command();
        c.args([
            "tag",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-c",
            cb.to_str().unwrap(),
            "--encoder",
            enc.to_str().unwrap(),
            "--no-ner",
            "--no-segment",
            "--batch-tokens",
            "64",
        ])
        .env("PARATAG_HOME", home())
        .env("PARATAG_PROGRESS_SECONDS", "0");
        if quiet {
            c.arg("-q");
        }
        c.output().unwrap()
    };
    let o = run(false);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let progress: Vec<&str> = err.lines().filter(|l| l.contains("/~")).collect();
    assert!(!progress.is_empty(), "{err}");
    for l in &progress {
        assert!(
            l.starts_with("paratag: ") && l.contains(" paragraphs, ") && l.contains("/s"),
            "{l}"
        );
    }
    let o = run(true);
    assert!(o.status.success());
    assert_eq!(stderr(&o), "", "quiet");
}

/// Case 8b: The feature cache: a second eval reads the model outputs from disk,
/// and the report is the same with the cache, from it, and without it.
#[test]
fn feature_cache_gives_identical_reports() {
    let d = tempfile::tempdir().unwrap();
    let enc = fixtures::encoder(&d.path().join("enc"));
    let ner = fixtures::ner(&d.path().join("ner"), NER_LABELS, 3);
    let cb = write(d.path(), "cb.toml", &single_label_codebook());
    let gold = write(
        d.path(),
        "g.jsonl",
        &fixtures::CORPUS
            .lines()
            .enumerate()
            .map(|(i, t)| {
                serde_json::json!({"article_id": format!("a{i}"), "paragraph": 0, "text": t,
                    "topic": if i % 2 == 0 { "aid_to_ukraine" } else { "peace_talks" },
                    "entities": [{"start": 0, "end": 2, "label": "LOC"}]})
                .to_string()
                    + "\n"
            })
            .collect::<String>(),
    );
    let cache_home = d.path().join("home");
    let eval = |name: &str, mb: &str| -> String {
        let json = d.path().join(name);
        let o = crate::command()
            .args([
                "eval",
                "--gold",
                gold.to_str().unwrap(),
                "-c",
                cb.to_str().unwrap(),
                "--encoder",
                enc.to_str().unwrap(),
                "--ner",
                ner.to_str().unwrap(),
                "--json",
                json.to_str().unwrap(),
                "--report",
                d.path().join("r.md").to_str().unwrap(),
                "--force",
                "--bootstrap",
                "50",
                "-q",
            ])
            .env("PARATAG_HOME", &cache_home)
            .env("PARATAG_FEATURE_CACHE_MB", mb)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read_to_string(json).unwrap()
    };
    let off = eval("off.json", "0");
    let features = cache_home.join("cache/features");
    let entries = |p: &Path| {
        walkdir::WalkDir::new(p)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .count()
    };
    assert_eq!(entries(&features), 0, "no cache when it is off");
    let first = eval("first.json", "64");
    let filled = entries(&features);
    let texts = fixtures::CORPUS.lines().count();
    assert!(
        filled >= 2 * texts,
        "encoder and NER outputs of {texts} texts: {filled}"
    );
    let second = eval("second.json", "64");
    assert_eq!(entries(&features), filled, "the second run only reads");
    assert_eq!(first, off);
    assert_eq!(second, off);
}
