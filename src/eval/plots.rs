//! PNG pictures of a [`Report`] through plotters: per task a confusion heat
//! map, per-class F1 bars, a reliability diagram and confidence histograms of
//! correct vs wrong predictions; F1 bars per entity type.
//!
//! Text is drawn with DejaVu Sans, compiled in, so the plots look the same on
//! machines without system fonts.

use super::{Report, TaskReport};
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

pub(crate) const FONT: &str = "sans-serif";

pub(crate) fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TTF compiled in; failure would be a build bug.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

pub(crate) fn perr<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> Error + '_ {
    move |e| Error::Output {
        path: path.into(),
        message: e.to_string(),
    }
}

/// Writes every plot into `dir` (created if needed); returns the files.
pub fn write_all(r: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    register_font();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    for t in &r.tasks {
        let name = |kind: &str| dir.join(format!("{kind}_{}.png", t.task));
        let p = name("confusion");
        confusion(t, &p)?;
        out.push(p);
        let p = name("f1");
        let bars: Vec<(String, f64, u64)> = t
            .per_class
            .iter()
            // A class neither in gold nor predicted has no F1 to show.
            .filter(|c| c.support + c.predicted > 0)
            .map(|c| (c.label.clone(), c.f1, c.support))
            .collect();
        f1_bars(
            &format!("{}: F1 per class (n = {})", t.task, t.n),
            &bars,
            &p,
        )?;
        out.push(p);
        let p = name("reliability");
        reliability(t, &p)?;
        out.push(p);
        let p = name("scores");
        histogram(t, &p)?;
        out.push(p);
    }
    if let Some(n) = &r.ner {
        let p = dir.join("f1_entities.png");
        let bars: Vec<(String, f64, u64)> = n
            .exact
            .per_type
            .iter()
            .map(|t| (t.label.clone(), t.prf.f1, t.prf.tp + t.prf.fn_))
            .collect();
        f1_bars(
            &format!(
                "entities: exact-match F1 per type (micro {:.3})",
                n.exact.micro.f1
            ),
            &bars,
            &p,
        )?;
        out.push(p);
    }
    Ok(out)
}

/// Row-normalised heat map (share of each gold class), with counts in cells.
fn confusion(t: &TaskReport, path: &Path) -> Result<()> {
    let l = &t.confusion.labels;
    let k = l.len().max(1);
    let cell = (560 / k).clamp(28, 90) as i32;
    let left = 190;
    let top = 60;
    let w = (left + cell * k as i32 + 30) as u32;
    let h = (top + cell * k as i32 + 170) as u32;
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    let e = perr(path);
    root.fill(&WHITE).map_err(&e)?;
    root.draw(&Text::new(
        format!(
            "{}: confusion (rows gold, columns predicted; n = {})",
            t.task, t.n
        ),
        (10, 15),
        (FONT, 16).into_font(),
    ))
    .map_err(&e)?;
    for (i, row) in t.confusion.matrix.iter().enumerate() {
        let total: u64 = row.iter().sum();
        for (j, &c) in row.iter().enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            };
            let (x0, y0) = (left + j as i32 * cell, top + i as i32 * cell);
            let shade = 255 - (share * 200.0) as u8;
            let color = if i == j {
                RGBColor(shade, 255 - ((255 - shade) / 3), shade)
            } else {
                RGBColor(255, shade, shade)
            };
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell, y0 + cell)],
                color.filled(),
            ))
            .map_err(&e)?;
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell, y0 + cell)],
                BLACK.mix(0.2),
            ))
            .map_err(&e)?;
            root.draw(&Text::new(
                c.to_string(),
                (x0 + cell / 2 - 8, y0 + cell / 2 - 7),
                (FONT, 13).into_font(),
            ))
            .map_err(&e)?;
        }
        root.draw(&Text::new(
            short(&l[i], 24),
            (8, top + i as i32 * cell + cell / 2 - 7),
            (FONT, 13).into_font(),
        ))
        .map_err(&e)?;
    }
    for (j, name) in l.iter().enumerate() {
        let style = (FONT, 13)
            .into_font()
            .transform(FontTransform::Rotate90)
            .color(&BLACK);
        root.draw(&Text::new(
            short(name, 22),
            (
                left + j as i32 * cell + cell / 2 + 6,
                top + k as i32 * cell + 6,
            ),
            style,
        ))
        .map_err(&e)?;
    }
    root.present().map_err(&e)?;
    Ok(())
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

/// Horizontal F1 bars with the support beside each.
fn f1_bars(title: &str, bars: &[(String, f64, u64)], path: &Path) -> Result<()> {
    let h = (90 + 30 * bars.len().max(1)) as u32;
    let root = BitMapBackend::new(path, (760, h)).into_drawing_area();
    let e = perr(path);
    root.fill(&WHITE).map_err(&e)?;
    let n = bars.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(200)
        .build_cartesian_2d(0f64..1f64, 0f64..n)
        .map_err(&e)?;
    let names: Vec<String> = bars.iter().map(|b| short(&b.0, 26)).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len().max(1) * 2 + 1)
        .y_label_formatter(&|y| {
            let i = y.floor() as usize;
            if (y - i as f64 - 0.5).abs() < 0.01 && i < names.len() {
                names[names.len() - 1 - i].clone()
            } else {
                String::new()
            }
        })
        .x_desc("F1")
        .label_style((FONT, 12))
        .draw()
        .map_err(&e)?;
    let m = bars.len();
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            let y = (m - 1 - i) as f64;
            Rectangle::new([(0.0, y + 0.15), (b.1, y + 0.85)], BLUE.mix(0.6).filled())
        }))
        .map_err(&e)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, b)| {
            let y = (m - 1 - i) as f64;
            Text::new(
                format!("{:.2} (n={})", b.1, b.2),
                ((b.1 + 0.01).min(0.82), y + 0.65),
                (FONT, 12).into_font(),
            )
        }))
        .map_err(&e)?;
    root.present().map_err(&e)?;
    Ok(())
}

/// Accuracy per confidence bin against the diagonal of perfect calibration.
fn reliability(t: &TaskReport, path: &Path) -> Result<()> {
    let root = BitMapBackend::new(path, (560, 520)).into_drawing_area();
    let e = perr(path);
    root.fill(&WHITE).map_err(&e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{}: reliability", t.task), (FONT, 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(&e)?;
    chart
        .configure_mesh()
        .x_desc("model confidence")
        .y_desc("accuracy")
        .label_style((FONT, 12))
        .draw()
        .map_err(&e)?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.4)))
        .map_err(&e)?;
    let pts: Vec<(f64, f64, usize)> = t
        .reliability
        .iter()
        .filter_map(|b| Some((b.mean_score?, b.accuracy?, b.n)))
        .collect();
    chart
        .draw_series(LineSeries::new(
            pts.iter().map(|p| (p.0, p.1)),
            RED.stroke_width(2),
        ))
        .map_err(&e)?;
    chart
        .draw_series(pts.iter().map(|p| {
            let r = (3.0 + (p.2 as f64).sqrt()).min(14.0) as i32;
            Circle::new((p.0, p.1), r, RED.mix(0.5).filled())
        }))
        .map_err(&e)?;
    root.present().map_err(&e)?;
    Ok(())
}

/// Confidence histograms of correct (green) and wrong (red) predictions.
fn histogram(t: &TaskReport, path: &Path) -> Result<()> {
    let root = BitMapBackend::new(path, (640, 420)).into_drawing_area();
    let e = perr(path);
    root.fill(&WHITE).map_err(&e)?;
    let h = &t.score_histogram;
    let top = h
        .correct
        .iter()
        .chain(&h.wrong)
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: confidence of correct (green) and wrong (red)", t.task),
            (FONT, 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1f64, 0f64..top * 1.1)
        .map_err(&e)?;
    chart
        .configure_mesh()
        .x_desc("model confidence")
        .y_desc("paragraphs")
        .label_style((FONT, 12))
        .draw()
        .map_err(&e)?;
    for (counts, color, off) in [(&h.correct, GREEN, 0.0), (&h.wrong, RED, 0.05)] {
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x = i as f64 / 10.0 + off;
                Rectangle::new(
                    [(x + 0.003, 0.0), (x + 0.047, c as f64)],
                    color.mix(0.6).filled(),
                )
            }))
            .map_err(&e)?;
    }
    root.present().map_err(&e)?;
    Ok(())
}
