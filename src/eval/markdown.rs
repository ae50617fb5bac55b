//! The eval report as Markdown, for reading and for pasting into papers'
//! appendices.

use super::{Estimate, Report};
use std::fmt::Write;

fn f(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{v:.3}"))
}

fn est(e: &Estimate) -> String {
    match (e.value, e.ci_low, e.ci_high) {
        (Some(v), Some(lo), Some(hi)) => format!("{v:.3} [{lo:.3}, {hi:.3}]"),
        (v, _, _) => f(v),
    }
}

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    header(&mut s, r);
    if !r.tasks.is_empty() {
        classification(&mut s, r);
        for t in &r.tasks {
            task_tables(&mut s, t);
        }
    }
    if let Some(n) = &r.ner {
        entities(&mut s, n);
    }
    if !r.by.is_empty() {
        breakdowns(&mut s, r);
    }
    unmatched(&mut s, &r.gold);
    s
}

/// What was measured on what.
fn header(s: &mut String, r: &Report) {
    let g = &r.gold;
    let _ = writeln!(s, "# paratag eval\n");
    let _ = writeln!(
        s,
        "Gold: `{}` ({}), {} items, {} matched, {} unmatched, {} unlabeled; coders: {}.  ",
        g.path,
        g.format,
        g.items,
        g.matched,
        g.unmatched.len(),
        g.unlabeled,
        g.coders.join(", ")
    );
    let _ = writeln!(s, "Read: {}.  ", g.read.summary());
    let _ = writeln!(s, "Predictions: {}.  ", r.predictions);
    let _ = writeln!(
        s,
        "Intervals: 95 % percentile bootstrap, {} replicates resampling {}s, seed {}.\n",
        r.bootstrap.replicates, r.bootstrap.unit, r.bootstrap.seed
    );
}

/// One row per task.
fn classification(s: &mut String, r: &Report) {
    let _ = writeln!(s, "## Classification\n");
    let _ = writeln!(
        s,
        "| task | n | articles | accuracy | macro-F1 | F_avg (favor, against) | kappa | alpha (coders + model) | alpha (coders) | ties |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for t in &r.tasks {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            t.task,
            t.n,
            t.articles,
            est(&t.accuracy),
            est(&t.macro_f1),
            f(t.f_avg),
            f(t.kappa),
            est(&t.alpha_with_model),
            est(&t.alpha_coders),
            t.ties
        );
    }
}

/// A task's per-class figures and confusion matrix.
fn task_tables(s: &mut String, t: &super::TaskReport) {
    let _ = writeln!(s, "\n### {}\n", t.task);
    let _ = writeln!(
        s,
        "| class | precision | recall | F1 | support | predicted |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for c in &t.per_class {
        // For topics, `none` is the absence of a topic, not a class.
        let label = if t.of == Some(crate::task::Task::Topic) && c.label == crate::formats::NONE {
            "none (no topic)"
        } else {
            c.label.as_str()
        };
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.3} | {:.3} | {} | {} |",
            label, c.precision, c.recall, c.f1, c.support, c.predicted
        );
    }
    let _ = writeln!(s, "\nConfusion (rows gold, columns predicted):\n");
    let l = &t.confusion.labels;
    let _ = writeln!(s, "| gold \\ pred | {} |", l.join(" | "));
    let _ = writeln!(s, "|---|{}", "---|".repeat(l.len()));
    for (i, row) in t.confusion.matrix.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|c| c.to_string()).collect();
        let _ = writeln!(s, "| **{}** | {} |", l[i], cells.join(" | "));
    }
}

/// Exact and partial span figures per type.
fn entities(s: &mut String, n: &super::NerReport) {
    let _ = writeln!(s, "\n## Entities ({} paragraphs)\n", n.n);
    let _ = writeln!(
        s,
        "Exact: same start, end and type (conlleval/seqeval). Partial: overlapping span of the same type.\n"
    );
    if let Some(t) = &n.types {
        let _ = writeln!(
            s,
            "Only {} entities are scored (`--entity-types`): gold and predicted spans of other types are left out.\n",
            t.join(", ")
        );
    }
    let _ = writeln!(s, "| type | exact P | exact R | exact F1 | partial P | partial R | partial F1 | gold | predicted |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    let row = |s: &mut String, name: &str, e: &super::Prf, p: &super::Prf| {
        let _ = writeln!(
            s,
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} |",
            e.precision,
            e.recall,
            e.f1,
            p.precision,
            p.recall,
            p.f1,
            e.tp + e.fn_,
            e.tp + e.fp
        );
    };
    for (e, p) in n.exact.per_type.iter().zip(&n.partial.per_type) {
        row(s, &e.label, &e.prf, &p.prf);
    }
    row(s, "**micro**", &n.exact.micro, &n.partial.micro);
    let _ = writeln!(
        s,
        "\nMacro-F1: exact {:.3}, partial {:.3}.",
        n.exact.macro_f1, n.partial.macro_f1
    );
}

/// Figures per value of each `--by` column.
fn breakdowns(s: &mut String, r: &Report) {
    let _ = writeln!(s, "\n## Breakdowns\n");
    let _ = writeln!(s, "| column | value | task | n | accuracy | macro-F1 |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for b in &r.by {
        for t in &b.tasks {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.3} | {:.3} |",
                b.column, b.value, t.task, t.n, t.accuracy, t.macro_f1
            );
        }
        if let Some(f1) = b.ner_micro_f1 {
            let _ = writeln!(
                s,
                "| {} | {} | entities (micro-F1) | {} | | {:.3} |",
                b.column, b.value, b.ner_n, f1
            );
        }
    }
}

/// The gold items no prediction matched (the first 50).
fn unmatched(s: &mut String, g: &super::GoldSummary) {
    if g.unmatched.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Unmatched gold items\n");
    for u in g.unmatched.iter().take(50) {
        let _ = writeln!(s, "- {u}");
    }
    if g.unmatched.len() > 50 {
        let _ = writeln!(
            s,
            "- … and {} more (all in the JSON report)",
            g.unmatched.len() - 50
        );
    }
}
