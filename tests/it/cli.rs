//! Every bad input gets a one-line error naming the file, line or key, a
//! non-zero exit, no panic, and no output file.

use super::fixtures::{self, NER_LABELS};
use super::*;

/// Runs `tag` expecting failure; returns the error line.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = dir.join("out.parquet");
    let mut a = vec!["tag", "-o", out.to_str().unwrap(), "-q"];
    a.extend_from_slice(args);
    let o = paratag(&a);
    let err = stderr(&o);
    assert!(!o.status.success(), "expected failure for {args:?}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("paratag: error: "), "{err}");
    assert!(!out.exists(), "no output on failure");
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary file left behind");
    err
}

fn ok(dir: &Path, args: &[&str]) -> (DataFrame, String) {
    let out = dir.join("ok.parquet");
    let mut a = vec!["tag", "-o", out.to_str().unwrap()];
    a.extend_from_slice(args);
    let o = paratag(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    (read(&out), stderr(&o))
}

const GOOD: &str = "{\"id\": \"a\", \"text\": \"The parliament approved new military aid to Ukraine on Tuesday, officials said.\"}\n";

#[test]
fn missing_input_file() {
    let d = tempfile::tempdir().unwrap();
    let e = fails(d.path(), &["nope.jsonl", "--no-ner"]);
    assert!(
        e.contains("nope.jsonl") && e.contains("No such file"),
        "{e}"
    );
}

#[test]
fn missing_id_or_text_column() {
    let d = tempfile::tempdir().unwrap();
    let csv = write(d.path(), "a.csv", "key,text\n1,hello there.\n");
    let e = fails(d.path(), &[csv.to_str().unwrap(), "--no-ner"]);
    assert!(
        e.contains("a.csv") && e.contains("missing column `id`"),
        "{e}"
    );
    let j = write(d.path(), "a.jsonl", "{\"id\": \"x\", \"body\": \"hi\"}\n");
    let e = fails(d.path(), &[j.to_str().unwrap(), "--no-ner"]);
    assert!(
        e.contains("a.jsonl:1") && e.contains("missing text column `text`"),
        "{e}"
    );
    // --text-col names another column.
    let (df, _) = ok(
        d.path(),
        &[j.to_str().unwrap(), "--no-ner", "--text-col", "body", "-q"],
    );
    assert_eq!(df.height(), 0, "'hi' is too short to be a paragraph");
}

#[test]
fn invalid_utf8_and_malformed_rows() {
    let d = tempfile::tempdir().unwrap();
    let mut bytes = GOOD.as_bytes().to_vec();
    bytes.extend_from_slice(b"{\"id\": \"b\", \"text\": \"caf\xe9\"}\n");
    let p = d.path().join("bad.jsonl");
    std::fs::write(&p, &bytes).unwrap();
    let e = fails(d.path(), &[p.to_str().unwrap(), "--no-ner"]);
    assert!(
        e.contains("bad.jsonl:2") && e.contains("invalid UTF-8"),
        "{e}"
    );

    let m = write(
        d.path(),
        "m.jsonl",
        &format!("{GOOD}{{\"id\": \"c\", \"text\": \n"),
    );
    let e = fails(d.path(), &[m.to_str().unwrap(), "--no-ner"]);
    assert!(
        e.contains("m.jsonl:2") && e.contains("malformed JSON"),
        "{e}"
    );

    let c = write(
        d.path(),
        "m.csv",
        "id,text\n1,\"ok, fine.\"\n2,too,many,fields\n",
    );
    let e = fails(d.path(), &[c.to_str().unwrap(), "--no-ner"]);
    assert!(
        e.contains("m.csv:3") && e.contains("malformed CSV row"),
        "{e}"
    );

    // --skip-bad-rows keeps going and reports each skipped row.
    let (df, err) = ok(
        d.path(),
        &[
            p.to_str().unwrap(),
            m.to_str().unwrap(),
            "--no-ner",
            "--skip-bad-rows",
            "--dedupe",
        ],
    );
    assert_eq!(df.height(), 1);
    assert!(err.contains("2 skipped rows"), "{err}");
    assert!(
        err.contains("skipped ") && err.contains("bad.jsonl:2") && err.contains("m.jsonl:2"),
        "{err}"
    );
}

#[test]
fn empty_text_is_zero_paragraphs_and_counted() {
    let d = tempfile::tempdir().unwrap();
    let j = write(
        d.path(),
        "e.jsonl",
        &format!("{GOOD}{{\"id\": \"b\", \"text\": \"   \\n \"}}\n"),
    );
    let (df, err) = ok(d.path(), &[j.to_str().unwrap(), "--no-ner"]);
    assert_eq!(df.height(), 1);
    assert!(
        err.contains("2 articles") && err.contains("1 empty texts"),
        "{err}"
    );
    // No task needs a model here (no codebook, --no-ner), so none was busy.
    assert!(err.contains("0 windows"), "{err}");
    assert_eq!(crate::models_busy(&err), 0.0, "{err}");
}

#[test]
fn duplicate_ids() {
    let d = tempfile::tempdir().unwrap();
    let j = write(d.path(), "d.jsonl", &format!("{GOOD}{GOOD}"));
    let e = fails(d.path(), &[j.to_str().unwrap(), "--no-ner"]);
    assert!(
        e.contains("d.jsonl:2")
            && e.contains("duplicate article id `a`")
            && e.contains("d.jsonl:1"),
        "{e}"
    );
    let (df, err) = ok(d.path(), &[j.to_str().unwrap(), "--no-ner", "--dedupe"]);
    assert_eq!(df.height(), 1);
    assert!(err.contains("1 duplicates dropped"), "{err}");
}

#[test]
fn broken_model_folders() {
    let d = tempfile::tempdir().unwrap();
    let j = write(d.path(), "in.jsonl", GOOD);
    let input = j.to_str().unwrap();
    for (missing, msg) in [
        ("config.json", "missing config.json"),
        ("tokenizer.json", "missing tokenizer.json"),
        ("model.safetensors", "missing weights"),
    ] {
        let m = fixtures::ner(&d.path().join(format!("no-{missing}")), NER_LABELS, 0);
        std::fs::remove_file(m.join(missing)).unwrap();
        let e = fails(d.path(), &[input, "--ner", m.to_str().unwrap()]);
        assert!(
            e.contains(&format!("no-{missing}")) && e.contains(msg),
            "{e}"
        );
    }
    // Weights that do not match the config: a bigger hidden size.
    let m = fixtures::ner(&d.path().join("mismatch"), NER_LABELS, 0);
    let cfg = std::fs::read_to_string(m.join("config.json"))
        .unwrap()
        .replace("\"hidden_size\": 32", "\"hidden_size\": 48");
    std::fs::write(m.join("config.json"), cfg).unwrap();
    let e = fails(d.path(), &[input, "--ner", m.to_str().unwrap()]);
    assert!(
        e.contains("weights do not match config.json") && e.contains("tensor `"),
        "{e}"
    );
    // Unknown NER label scheme.
    let m = fixtures::ner(&d.path().join("scheme"), &["O", "X-PER", "Y-PER"], 0);
    let e = fails(d.path(), &[input, "--ner", m.to_str().unwrap()]);
    assert!(e.contains("unknown NER label `X-PER`"), "{e}");
    // A model argument that is neither a folder nor installed.
    let e = fails(d.path(), &[input, "--ner", "no-such-model"]);
    assert!(
        e.contains("no-such-model") && e.contains("not installed"),
        "{e}"
    );
}

#[test]
fn codebook_errors_name_file_line_and_key() {
    let d = tempfile::tempdir().unwrap();
    let j = write(d.path(), "in.jsonl", GOOD);
    let enc = fixtures::encoder(&d.path().join("enc"));
    let bad = CODEBOOK.replace("id = \"peace_talks\"", "id = \"Peace Talks\"");
    let cb = write(d.path(), "bad.toml", &bad);
    let e = fails(
        d.path(),
        &[
            j.to_str().unwrap(),
            "--no-ner",
            "-c",
            cb.to_str().unwrap(),
            "--encoder",
            enc.to_str().unwrap(),
        ],
    );
    assert!(
        e.contains("bad.toml:13:") && e.contains("topic[1].id"),
        "{e}"
    );
    let cb = write(d.path(), "syntax.toml", "[codebook\nname = 1\n");
    let e = fails(
        d.path(),
        &[
            j.to_str().unwrap(),
            "--no-ner",
            "-c",
            cb.to_str().unwrap(),
            "--encoder",
            enc.to_str().unwrap(),
        ],
    );
    assert!(e.contains("syntax.toml:1:"), "{e}");
}

#[test]
fn unwritable_output_path() {
    let d = tempfile::tempdir().unwrap();
    let j = write(d.path(), "in.jsonl", GOOD);
    let o = paratag(&[
        "tag",
        j.to_str().unwrap(),
        "-o",
        d.path().join("no/such/dir/o.parquet").to_str().unwrap(),
        "--no-ner",
        "-q",
    ]);
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.starts_with("paratag: error: output") && e.contains("o.parquet"),
        "{e}"
    );
    assert!(!e.contains("panicked"));
}

#[test]
fn passthrough_columns_and_formats_roundtrip() {
    let d = tempfile::tempdir().unwrap();
    let j = write(d.path(), "p.jsonl", "{\"id\": 7, \"text\": \"Officials said the aid package was approved, after a long debate.\", \"source\": \"wire\", \"n\": 3, \"lang\": \"en\"}\n");
    let (df, _) = ok(d.path(), &[j.to_str().unwrap(), "--no-ner", "-q"]);
    assert_eq!(
        df.column("article_id").unwrap().str().unwrap().get(0),
        Some("7")
    );
    assert_eq!(
        df.column("source").unwrap().str().unwrap().get(0),
        Some("wire")
    );
    assert_eq!(df.column("n").unwrap().i64().unwrap().get(0), Some(3));
    // A pass-through column named like an output column is renamed, not lost.
    assert_eq!(
        df.column("input_lang").unwrap().str().unwrap().get(0),
        Some("en")
    );
    // That output reads back in as Parquet input.
    let out2 = d.path().join("again.parquet");
    std::fs::copy(d.path().join("ok.parquet"), &out2).unwrap();
    let o = paratag(&[
        "tag",
        out2.to_str().unwrap(),
        "--id-col",
        "article_id",
        "-o",
        d.path().join("x.parquet").to_str().unwrap(),
        "--no-ner",
        "-q",
        "--dedupe",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // JSONL on stdin.
    let mut child = crate::command()
        .args([
            "tag",
            "-",
            "-o",
            d.path().join("stdin.parquet").to_str().unwrap(),
            "--no-ner",
            "-q",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(GOOD.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(read(&d.path().join("stdin.parquet")).height(), 1);
}

/// Models are data, never code: a pickled checkpoint is refused with the way
/// to convert it, and no link in a model or head folder leads outside it
/// (the Hugging Face cache's snapshots → blobs links excepted).
#[test]
fn model_and_head_folders_are_data_inside_their_folder() {
    use std::os::unix::fs::symlink;
    let d = tempfile::tempdir().unwrap();
    let j = write(d.path(), "in.jsonl", GOOD);
    let input = j.to_str().unwrap();
    let src = fixtures::ner(&d.path().join("src"), NER_LABELS, 0);

    let pickled = d.path().join("pickled");
    std::fs::create_dir_all(&pickled).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), pickled.join(f)).unwrap();
    }
    std::fs::write(pickled.join("pytorch_model.bin"), b"\x80\x02}q\x00.").unwrap();
    let e = fails(d.path(), &[input, "--ner", pickled.to_str().unwrap()]);
    assert!(
        e.contains("pytorch_model.bin is a pickled PyTorch checkpoint")
            && e.contains("safe_serialization=True"),
        "{e}"
    );

    // A link to weights (or a tokenizer) elsewhere, absolute or through `..`.
    let secret = d.path().join("elsewhere");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::copy(src.join("model.safetensors"), secret.join("w.safetensors")).unwrap();
    for (name, target) in [
        (
            "model.safetensors",
            PathBuf::from("../elsewhere/w.safetensors"),
        ),
        ("tokenizer.json", PathBuf::from("/etc/hostname")),
    ] {
        let m = d.path().join(format!("linked-{name}"));
        std::fs::create_dir_all(&m).unwrap();
        for f in ["config.json", "tokenizer.json", "model.safetensors"] {
            if f != name {
                std::fs::copy(src.join(f), m.join(f)).unwrap();
            }
        }
        symlink(&target, m.join(name)).unwrap();
        let e = fails(d.path(), &[input, "--ner", m.to_str().unwrap()]);
        assert!(
            e.contains(&format!("`{name}` resolves to")) && e.contains("outside the folder"),
            "{e}"
        );
    }

    // The Hugging Face cache layout is a model folder like any other.
    let repo = d.path().join("hub/models--test--ner");
    let snap = repo.join("snapshots/abc123");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    for (i, f) in ["config.json", "tokenizer.json", "model.safetensors"]
        .iter()
        .enumerate()
    {
        std::fs::copy(src.join(f), repo.join(format!("blobs/{i}"))).unwrap();
        symlink(format!("../../blobs/{i}"), snap.join(f)).unwrap();
    }
    let out = d.path().join("hf.parquet");
    let o = paratag(&[
        "tag",
        input,
        "-o",
        out.to_str().unwrap(),
        "--ner",
        snap.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A head folder whose weights link outside it.
    let head = d.path().join("head");
    std::fs::create_dir_all(&head).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/heads/ukraine-topic");
    std::fs::copy(shipped.join("head.toml"), head.join("head.toml")).unwrap();
    std::fs::copy(
        shipped.join("head.safetensors"),
        secret.join("h.safetensors"),
    )
    .unwrap();
    symlink("../elsewhere/h.safetensors", head.join("head.safetensors")).unwrap();
    let e = fails(
        d.path(),
        &[input, "--no-ner", "--heads", head.to_str().unwrap()],
    );
    assert!(
        e.contains("`head.safetensors` resolves to") && e.contains("outside the folder"),
        "{e}"
    );
}

/// A paragraph that starts like a formula is written so spreadsheets show
/// it as text, and reads back from the sheet as exactly the same text.
#[test]
fn sheet_cells_never_run_as_formulas() {
    let d = tempfile::tempdir().unwrap();
    let texts = [
        "=HYPERLINK(\"http://evil.example\",\"aid\") is what the post said, officials noted.",
        "-- Will the aid arrive? -- It will, the minister answered on Tuesday.",
        "@Kyiv: the parliament approved new military aid on Tuesday, officials said.",
        "+30% more aid to Ukraine was approved on Tuesday, officials said.",
    ];
    let body: String = texts
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": format!("={i}"), "text": t}).to_string() + "\n")
        .collect();
    let j = write(d.path(), "f.jsonl", &body);
    let (_, _) = ok(d.path(), &[j.to_str().unwrap(), "--no-ner", "-q"]);
    let pred = d.path().join("ok.parquet");
    for (name, fmt) in [
        ("s.csv", "csv"),
        ("s.xlsx.csv", "xlsx-csv"),
        ("s.tsv", "tsv"),
    ] {
        let sheet = d.path().join(name);
        let o = paratag(&[
            "sample",
            pred.to_str().unwrap(),
            "-n",
            "10",
            "--format",
            fmt,
            "-o",
            sheet.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        // What a spreadsheet sees: no cell starts like a formula.
        let raw = std::fs::read(&sheet).unwrap();
        let delimiter = if fmt == "tsv" { b'\t' } else { b',' };
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .from_reader(&raw[..]);
        let mut cells = 0;
        for rec in rdr.records() {
            for cell in rec.unwrap().iter() {
                let cell = cell.trim_start_matches('\u{feff}');
                assert!(!cell.starts_with(['=', '+', '-', '@']), "{name}: {cell:?}");
                cells += 1;
            }
        }
        assert!(cells > 8, "{name}");
        let opts = paratag::formats::ReadOptions::default();
        let fmt =
            paratag::formats::Format::from_path(&sheet).unwrap_or(paratag::formats::Format::Csv);
        let (_, items) = paratag::formats::read(
            &sheet,
            &paratag::formats::ReadOptions {
                format: Some(fmt),
                ..opts
            },
        )
        .unwrap();
        let mut got: Vec<(String, String)> = items
            .iter()
            .map(|g| (g.article_id.clone().unwrap(), g.text.clone()))
            .collect();
        got.sort();
        let want: Vec<(String, String)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("={i}"), t.to_string()))
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

/// A reader that stops early (`paratag models list | head`) ends the
/// command quietly, not with a reported panic.
#[test]
fn closed_stdout_is_not_an_internal_error() {
    let mut c = crate::command()
        .args(["models", "list"])
        .env("PARATAG_HOME", home())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(c.stdout.take());
    let o = c.wait_with_output().unwrap();
    let e = stderr(&o);
    assert!(
        !e.contains("internal error") && !e.contains("panicked"),
        "{e}"
    );
}

/// Every setting picked by name names each variant once, and its names
/// round-trip (the CLI's choices come from these lists).
#[test]
fn choices_have_unique_names_that_round_trip() {
    use paratag::choice::Choice;
    fn check<T: Choice + std::fmt::Debug>() {
        let names: Vec<&str> = T::CHOICES.iter().map(|c| c.1).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for (v, n, _) in T::CHOICES {
            assert_eq!(T::from_name(n), Some(*v));
            assert_eq!(v.name(), *n);
        }
    }
    check::<paratag::input::Format>();
    check::<paratag::formats::Format>();
    check::<paratag::sample::Allocation>();
    check::<paratag::heads::Aggregation>();
    check::<paratag::models::DTypeArg>();
    check::<paratag::models::DeviceArg>();
    check::<paratag::models::DType>();
}
