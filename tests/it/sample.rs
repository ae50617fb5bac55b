//! `paratag sample` strategies and the weights they record, read back by
//! `estimate` (which weights them) and `eval` (which refuses active sheets).

use super::eval::setup;
use super::fixtures;
use super::{paratag, stderr};
use paratag::dataset::read_predictions;
use paratag::formats::{self, SAMPLE_STRATEGY, SAMPLE_WEIGHT};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ARTICLES: usize = 70;
/// Distinct rows plus the stock line's cluster.
const UNITS: f64 = (2 * ARTICLES + 1) as f64;
const STOCK: &str = "The Kremlin did not respond to a request for comment.";

/// Seventy articles in three scripts, twelve ending on the same stock line
/// (in under a fifth of them, so segmentation keeps it as text).
fn corpus(root: &Path) -> PathBuf {
    let dir = root.join("corpus");
    std::fs::create_dir_all(&dir).unwrap();
    // Numbers in several places, so no two bodies are near-duplicates.
    let bodies = [
        "Парламент {i} обсудил пакет {i} военной помощи {i} для Украины.",
        "ناقش البرلمان {i} حزمة المساعدات {i} لأوكرانيا {i} يوم الاثنين 🇺🇦.",
        "Ministers met {i} times in Brussels {i} for talks {i} on grain.",
    ];
    for i in 0..ARTICLES {
        let body = bodies[i % 3].replace("{i}", &(i * 17 + 3).to_string());
        let second = format!("Report {i}: the cafe\u{301} owner {i} said prices rose {i} percent.");
        std::fs::write(
            dir.join(format!("a{i:02}.txt")),
            match i < 12 {
                true => format!("{body}\n\n{second}\n\n{STOCK}"),
                false => format!("{body}\n\n{second}"),
            },
        )
        .unwrap();
    }
    dir
}

struct Tagged {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pred: PathBuf,
}

fn tagged() -> Tagged {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let input = corpus(&root);
    let enc = fixtures::encoder(&root.join("enc"));
    let codebook = format!(
        "{}/datasets/codebooks/ukraine.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let pred = root.join("pred.parquet");
    let o = paratag(&[
        "tag",
        input.to_str().unwrap(),
        "-o",
        pred.to_str().unwrap(),
        "-c",
        &codebook,
        "--encoder",
        enc.to_str().unwrap(),
        "--no-ner",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    Tagged {
        _dir: dir,
        root,
        pred,
    }
}

fn sample(pred: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut a = vec![
        "sample",
        pred.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    a.extend_from_slice(extra);
    paratag(&a)
}

/// The sheet's rows as column -> value maps.
fn rows(sheet: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(sheet).unwrap();
    let head = r.headers().unwrap().clone();
    r.records()
        .map(|x| {
            let x = x.unwrap();
            head.iter()
                .zip(x.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Writes the sheet back with each row's gold labels copied from the
/// model's (any labels do: these tests check the design, not the scores),
/// `edit` applied to every row.
fn filled(
    sheet: &Path,
    name: &str,
    edit: &dyn Fn(usize, &mut BTreeMap<String, String>),
) -> PathBuf {
    let mut rs = rows(sheet);
    let out = sheet.with_file_name(name);
    for (i, r) in rs.iter_mut().enumerate() {
        r.insert(
            "stance_ukraine_aid".into(),
            r["pred_stance_ukraine_aid"].clone(),
        );
        r.insert("topic".into(), r["pred_topic"].clone());
        edit(i, r);
    }
    let mut w = csv::Writer::from_path(&out).unwrap();
    w.write_record(rs[0].keys()).unwrap();
    for r in &rs {
        w.write_record(r.values()).unwrap();
    }
    w.flush().unwrap();
    out
}

fn weight(r: &BTreeMap<String, String>) -> f64 {
    r[SAMPLE_WEIGHT].parse().unwrap()
}

#[test]
fn stratified_weights_are_stratum_size_over_drawn_in_every_format() {
    let s = setup();
    let preds = read_predictions(&s.pred).unwrap().rows;
    let mut size: BTreeMap<String, f64> = BTreeMap::new();
    for p in &preds {
        *size.entry(p.fields["lang"].clone()).or_default() += 1.0;
    }
    assert!(size.len() >= 2, "{size:?}");
    for ext in [
        "csv",
        "json",
        "doccano.jsonl",
        "prodigy.jsonl",
        "gold.jsonl",
    ] {
        let sheet = s.root.join(format!("strata.{ext}"));
        let args = ["-n", "4", "--stratify", "lang", "--allocation", "equal"];
        let o = sample(&s.pred, &sheet, &args);
        assert!(o.status.success(), "{ext}: {}", stderr(&o));
        let (_, items) = formats::read(&sheet, &Default::default()).unwrap();
        let mut drawn: BTreeMap<String, f64> = BTreeMap::new();
        for g in &items {
            *drawn.entry(g.fields["lang"].clone()).or_default() += 1.0;
        }
        for g in &items {
            let lang = &g.fields["lang"];
            let w = g.sample_weight().unwrap().expect("a weight");
            assert!(
                (w - size[lang] / drawn[lang]).abs() < 1e-5,
                "{ext} {lang}: {w}"
            );
            assert_eq!(g.fields[SAMPLE_STRATEGY], "stratified", "{ext}");
        }
    }
}

#[test]
fn uncertainty_weights_are_inverse_to_the_drawing_chance_and_near_duplicates_come_once() {
    let t = tagged();
    let preds = read_predictions(&t.pred).unwrap().rows;
    assert_eq!(preds.len(), 2 * ARTICLES + 12);
    let sheet = t.root.join("hard.csv");
    let args = [
        "-n",
        "8",
        "--strategy",
        "uncertainty",
        "--for",
        "stance_ukraine_aid",
    ];
    let o = sample(&t.pred, &sheet, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("effective sample size"),
        "{}",
        stderr(&o)
    );
    let rs = rows(&sheet);
    assert_eq!(rs.len(), 8);
    assert!(rs.iter().all(|r| r[SAMPLE_STRATEGY] == "uncertainty"));
    let stock: Vec<_> = rs.iter().filter(|r| r["text"] == STOCK).collect();
    assert!(
        stock.len() <= 1,
        "the stock line drawn {} times",
        stock.len()
    );
    // Uncertainty by hand: 1 - the top of (favor, against, none), scaled by
    // 3/2. Each distinct row's chance is n (0.1 + u) / sum over the units,
    // so weight x (0.1 + u) is one constant (no row here is certain).
    let by_key: BTreeMap<(String, String), &paratag::record::Pred> = preds
        .iter()
        .map(|p| ((p.article_id.clone(), p.paragraph.to_string()), p))
        .collect();
    let u = |r: &BTreeMap<String, String>| {
        let p = by_key[&(r["article_id"].clone(), r["paragraph"].clone())];
        // A row the topic gate kept from the stance head is surely `none`.
        let s = &p.stances["ukraine_aid"];
        match (s.favor, s.against) {
            (Some(f), Some(a)) => {
                let (f, a) = (f as f64, a as f64);
                (1.0 - f.max(a).max(1.0 - f - a)) * 1.5
            }
            _ => 0.0,
        }
    };
    let products: Vec<f64> = rs
        .iter()
        .filter(|r| r["text"] != STOCK)
        .map(|r| weight(r) * (0.1 + u(r)))
        .collect();
    for x in &products {
        assert!((x - products[0]).abs() < 1e-3 * products[0], "{products:?}");
    }
    // The stock line's copy stands for all twelve.
    for r in stock {
        let alone = products[0] / (0.1 + u(r));
        assert!((weight(r) - 12.0 * alone).abs() < 1e-3 * weight(r), "{r:?}");
    }
}

#[test]
fn estimate_weights_an_active_sheet_and_eval_refuses_it() {
    let t = tagged();
    let sheet = t.root.join("hard.csv");
    let o = sample(&t.pred, &sheet, &["-n", "10", "--strategy", "margin"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let gold = filled(&sheet, "gold.csv", &|_, _| {});
    let (out, md) = (t.root.join("shares.csv"), t.root.join("shares.md"));
    let estimate = |g: &Path| {
        paratag(&[
            "estimate",
            t.pred.to_str().unwrap(),
            "--gold",
            g.to_str().unwrap(),
            "--bootstrap",
            "20",
            "-o",
            out.to_str().unwrap(),
            "--report",
            md.to_str().unwrap(),
            "--force",
        ])
    };
    let o = estimate(&gold);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = std::fs::read_to_string(&md).unwrap();
    assert!(report.contains("drawn by margin"), "{report}");
    assert!(
        report.contains("weighted by its `sample_weight`"),
        "{report}"
    );
    assert!(!stderr(&o).contains("almost alike"), "{}", stderr(&o));
    // Gold labels that have nothing to do with the predictions: the error
    // rates cannot separate the labels, and the run says so.
    let noise = filled(&sheet, "noise.csv", &|i, r| {
        let l = ["favor", "against", "none"][i % 3];
        r.insert("stance_ukraine_aid".into(), l.into());
    });
    let o = estimate(&noise);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no correction can tell their shares apart"),
        "{}",
        stderr(&o)
    );

    let o = paratag(&[
        "eval",
        "--gold",
        gold.to_str().unwrap(),
        "--pred",
        t.pred.to_str().unwrap(),
        "-q",
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("drawn by margin sampling"), "{e}");

    // Without its weights the sheet cannot be corrected: refused.
    let bare = filled(&sheet, "bare.csv", &|_, r| {
        r.remove(SAMPLE_WEIGHT);
    });
    let o = estimate(&bare);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot be weighted back"),
        "{}",
        stderr(&o)
    );
    // One row without a weight among weighted rows: named by its line.
    let holed = filled(&sheet, "holed.csv", &|i, r| {
        if i == 3 {
            r.insert(SAMPLE_WEIGHT.into(), String::new());
        }
    });
    let o = estimate(&holed);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("holed.csv:5") && e.contains("no sample_weight here"),
        "{e}"
    );
    let bad = filled(&sheet, "bad.csv", &|i, r| {
        if i == 0 {
            r.insert(SAMPLE_WEIGHT.into(), "-2".into());
        }
    });
    let o = estimate(&bad);
    assert!(stderr(&o).contains("bad.csv:2") && stderr(&o).contains("not a positive number"));
}

#[test]
fn disagreement_with_an_identical_table_draws_every_unit_alike() {
    let t = tagged();
    let sheet = t.root.join("dis.csv");
    let pred = t.pred.to_str().unwrap();
    let o = sample(
        &t.pred,
        &sheet,
        &["-n", "5", "--strategy", "disagreement", "--compare", pred],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // The 12 stock lines are one unit: each unit is drawn with chance
    // 5 / UNITS, and a unit's row stands for its members.
    for r in rows(&sheet) {
        let members = if r["text"] == STOCK { 12.0 } else { 1.0 };
        assert!((weight(&r) - members * UNITS / 5.0).abs() < 1e-4, "{r:?}");
    }
}

#[test]
fn strategy_options_are_checked() {
    let t = tagged();
    let sheet = t.root.join("x.csv");
    for (args, msg) in [
        (
            vec!["--strategy", "random", "--stratify", "lang"],
            "drop --stratify",
        ),
        (vec!["--strategy", "stratified"], "needs --stratify"),
        (vec!["--strategy", "disagreement"], "needs --compare"),
        (
            vec!["--strategy", "uncertainty", "--for", "stance_nope"],
            "--for stance_nope",
        ),
        (vec!["--for", "topic"], "only read by the active strategies"),
    ] {
        let mut a = vec!["-n", "3"];
        a.extend(args);
        let o = sample(&t.pred, &sheet, &a);
        assert!(!o.status.success(), "{a:?}");
        assert!(stderr(&o).contains(msg), "{a:?}: {}", stderr(&o));
        assert!(!sheet.exists(), "no sheet on error");
    }
}

/// A rerun never replaces a sheet someone may be labeling: it stops, names
/// the file and leaves it as it was; `--force` replaces it.
#[test]
fn an_existing_sheet_is_kept_unless_forced() {
    let t = tagged();
    let sheet = t.root.join("sheet.csv");
    let labeled = "paragraph_id,text,topic\nx,hand-labeled,war\n";
    std::fs::write(&sheet, labeled).unwrap();
    let o = sample(&t.pred, &sheet, &["-n", "3"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("sheet.csv: exists; pass --force"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(std::fs::read_to_string(&sheet).unwrap(), labeled);
    let o = sample(&t.pred, &sheet, &["-n", "3", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(rows(&sheet).len(), 3);
}
