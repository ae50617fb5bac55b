//! PNG pictures of estimated shares: for one task and label, a line per
//! series (e.g. outlet) over the x positions (e.g. months), with its 95 %
//! interval as a shaded band; the raw count share is drawn dashed.

use crate::error::Result;
use crate::eval::plots::{perr, register_font, FONT};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// One estimated share to draw.
#[derive(Debug, Clone)]
pub struct Point {
    /// The line it belongs to (`all`, or the non-date group values).
    pub series: String,
    /// Its position on the x axis (a date bucket, or the group).
    pub x: String,
    pub share: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub raw: f64,
}

/// Draws `points` (x positions in sorted order) into `path`.
pub fn shares(title: &str, points: &[Point], path: &Path) -> Result<()> {
    register_font();
    let e = perr(path);
    let xs: Vec<&str> = {
        let mut v: Vec<&str> = points.iter().map(|p| p.x.as_str()).collect();
        v.sort();
        v.dedup();
        v
    };
    let at = |x: &str| xs.iter().position(|v| *v == x).unwrap_or(0) as f64;
    let mut series: BTreeMap<&str, Vec<&Point>> = BTreeMap::new();
    for p in points {
        series.entry(p.series.as_str()).or_default().push(p);
    }
    let top = points
        .iter()
        .map(|p| p.ci_high.max(p.raw))
        .fold(0.05, f64::max);
    let root = BitMapBackend::new(path, (760, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(&e)?;
    let n = xs.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 16))
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(50)
        .build_cartesian_2d(-0.5f64..(n - 0.5), 0f64..(top * 1.1).min(1.0))
        .map_err(&e)?;
    chart
        .configure_mesh()
        .x_labels(xs.len().min(24))
        .x_label_formatter(&|v| {
            let i = v.round();
            match (i - v).abs() < 1e-6 && i >= 0.0 {
                true => xs
                    .get(i as usize)
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                false => String::new(),
            }
        })
        .y_desc("share (95 % interval shaded; raw count share dashed)")
        .label_style((FONT, 11))
        .draw()
        .map_err(&e)?;
    for (k, (name, pts)) in series.iter().enumerate() {
        let mut pts = pts.clone();
        pts.sort_by(|a, b| at(&a.x).total_cmp(&at(&b.x)));
        let xy: Vec<(f64, &Point)> = pts.iter().map(|p| (at(&p.x), *p)).collect();
        line(&mut chart, name, &xy, Palette99::pick(k).to_rgba(), path)?;
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 11))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(&e)?;
    root.present().map_err(&e)?;
    Ok(())
}

type Chart<'a> = ChartContext<
    'a,
    BitMapBackend<'a>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// One series: its interval band, raw shares dashed, shares as a line.
fn line(
    chart: &mut Chart,
    name: &str,
    xy: &[(f64, &Point)],
    color: RGBAColor,
    path: &Path,
) -> Result<()> {
    let e = perr(path);
    // The band: up along the high bounds, back along the low ones.
    let band: Vec<(f64, f64)> = xy
        .iter()
        .map(|(x, p)| (*x, p.ci_high))
        .chain(xy.iter().rev().map(|(x, p)| (*x, p.ci_low)))
        .collect();
    chart
        .draw_series(std::iter::once(Polygon::new(
            band,
            color.mix(0.18).filled(),
        )))
        .map_err(&e)?;
    chart
        .draw_series(DashedLineSeries::new(
            xy.iter().map(|(x, p)| (*x, p.raw)),
            4,
            4,
            color.mix(0.6).stroke_width(1),
        ))
        .map_err(&e)?;
    chart
        .draw_series(LineSeries::new(
            xy.iter().map(|(x, p)| (*x, p.share)),
            color.stroke_width(2),
        ))
        .map_err(&e)?
        .label(name)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
    chart
        .draw_series(
            xy.iter()
                .map(|(x, p)| Circle::new((*x, p.share), 3, color.filled())),
        )
        .map_err(&e)?;
    Ok(())
}
