//! `paratag estimate`: corrected shares per group from predictions and a
//! gold sample (the arithmetic is unit-tested in `paratag::estimate`).

use super::eval::setup;
use super::{paratag, stderr};
use paratag::dataset::read_predictions;
use serde_json::json;

fn cell(r: &csv::StringRecord, head: &csv::StringRecord, name: &str) -> String {
    let i = head.iter().position(|h| h == name).unwrap();
    r[i].to_string()
}

/// A classifier that the gold sample finds always right has nothing to
/// correct: every ACC share equals the raw share, in every group.
#[test]
fn a_perfect_classifier_keeps_its_raw_shares_in_every_group() {
    let s = setup();
    let preds = read_predictions(&s.pred).unwrap().rows;
    let gold = s.root.join("perfect.gold.jsonl");
    let lines: Vec<String> = preds
        .iter()
        .map(|p| {
            let st = p.stances["ukraine_aid"]
                .label
                .clone()
                .unwrap_or("none".into());
            json!({"article_id": p.article_id, "paragraph": p.paragraph, "text": p.text,
                   "topic": p.topic.clone().unwrap_or("none".into()),
                   "stance": {"ukraine_aid": st}})
            .to_string()
        })
        .collect();
    std::fs::write(&gold, lines.join("\n")).unwrap();
    let (out, md, plots) = (
        s.root.join("shares.csv"),
        s.root.join("r.md"),
        s.root.join("plots"),
    );
    // `estimate PRED --gold GOLD` and `extra`.
    let bare = |extra: &[&str]| {
        let mut args = vec![
            "estimate",
            s.pred.to_str().unwrap(),
            "--gold",
            gold.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        paratag(&args)
    };
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--by",
            "lang",
            "--bootstrap",
            "50",
            "--method",
            "acc",
            "-o",
            out.to_str().unwrap(),
            "--report",
            md.to_str().unwrap(),
            "--plots",
            plots.to_str().unwrap(),
            "--force",
        ];
        args.extend_from_slice(extra);
        bare(&args)
    };
    let o = run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut r = csv::Reader::from_path(&out).unwrap();
    let head = r.headers().unwrap().clone();
    for col in [
        "group",
        "lang",
        "task",
        "label",
        "method",
        "share",
        "ci_low",
        "ci_high",
        "raw_share",
        "n",
    ] {
        assert!(head.iter().any(|h| h == col), "{col} in {head:?}");
    }
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let f = |r: &csv::StringRecord, c: &str| cell(r, &head, c).parse::<f64>().unwrap();
    let mut per_lang_n = std::collections::BTreeMap::new();
    for row in &rows {
        assert_eq!(cell(row, &head, "method"), "acc");
        assert!(
            (f(row, "share") - f(row, "raw_share")).abs() < 1e-6,
            "{row:?}"
        );
        assert!(
            f(row, "ci_low") <= f(row, "share") + 1e-9
                && f(row, "share") <= f(row, "ci_high") + 1e-9,
            "{row:?}"
        );
        let (g, task) = (cell(row, &head, "group"), cell(row, &head, "task"));
        if g == "all" {
            assert_eq!(f(row, "n") as usize, preds.len());
        } else if task == "topic" && cell(row, &head, "label") == "none" {
            per_lang_n.insert(g, f(row, "n") as usize);
        }
    }
    // Each paragraph is in one language group, and each group's shares sum to 1.
    assert_eq!(
        per_lang_n.values().sum::<usize>(),
        preds.len(),
        "{per_lang_n:?}"
    );
    assert!(per_lang_n.len() >= 2, "{per_lang_n:?}");
    let sum: f64 = rows
        .iter()
        .filter(|r| {
            cell(r, &head, "group") == "all" && cell(r, &head, "task") == "stance_ukraine_aid"
        })
        .map(|r| f(r, "share"))
        .sum();
    assert!((sum - 1.0).abs() < 1e-6, "{sum}");
    // One PNG per task and label.
    for name in ["topic_aid_to_ukraine.png", "stance_ukraine_aid_against.png"] {
        let png = std::fs::read(plots.join(name)).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}");
    }
    let report = std::fs::read_to_string(&md).unwrap();
    assert!(
        report.contains("## topic") && report.contains("## stance_ukraine_aid"),
        "{report}"
    );

    // Bad requests: one-line errors naming what is wrong, and no output.
    let refused = |o: std::process::Output, msg: &str| {
        assert!(
            !o.status.success() && stderr(&o).contains(msg),
            "{msg}: {}",
            stderr(&o)
        );
    };
    // An existing table or report is kept unless --force.
    let table = std::fs::read(&out).unwrap();
    for (o, m) in [
        (&out, &s.root.join("new.md")),
        (&s.root.join("new.csv"), &md),
    ] {
        let (o, m) = (o.to_str().unwrap(), m.to_str().unwrap());
        refused(bare(&["-o", o, "--report", m]), "exists; pass --force");
    }
    assert_eq!(std::fs::read(&out).unwrap(), table);
    refused(
        run(&["--every", "month"]),
        "none of the --by columns (lang) holds dates",
    );
    let bad = s.root.join("shares.txt");
    refused(bare(&["-o", bad.to_str().unwrap()]), ".csv or .parquet");
    assert!(!bad.exists());
    let args = ["--by", "outlet", "-o", out.to_str().unwrap(), "--force"];
    refused(bare(&args), "--by outlet: no such column");
}
