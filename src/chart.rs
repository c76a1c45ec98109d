//! SVG chart of a simulation: one panel per policy with demand (in replicas' worth),
//! ready and desired replicas over time, so a reader sees at a glance where a policy lagged.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use scalepilot_core::sim::PolicyResult;

const DEMAND: RGBColor = RGBColor(120, 120, 120);
const READY: RGBColor = RGBColor(31, 119, 180);
const DESIRED: RGBColor = RGBColor(255, 127, 14);
const SHORT: RGBColor = RGBColor(214, 39, 40);
const FORECAST: RGBColor = RGBColor(44, 160, 44);
/// Colours of frontier families after the HPA's (black).
const FAMILIES: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

pub(crate) fn write(path: &Path, trace: &str, _tick: i64, results: &[PolicyResult]) -> Result<()> {
    let panels: Vec<&PolicyResult> = results.iter().filter(|r| r.series.is_some()).collect();
    if panels.is_empty() {
        return Err(anyhow!("no series to draw"));
    }
    let height = 60 + 260 * panels.len() as u32;
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (title, body) = root.split_vertically(50);
    title
        .titled(
            &format!("scalepilot simulate: {trace} (grey: demand in replicas, blue: ready, orange: desired, green: forecast, red: shortfall)"),
            ("sans-serif", 20),
        )
        .map_err(|e| anyhow!("{e}"))?;
    let areas = body.split_evenly((panels.len(), 1));
    let y_max = panels
        .iter()
        .filter_map(|r| r.series.as_ref())
        .flat_map(|s| s.demand.iter().chain(&s.desired))
        .fold(1.0f64, |a, b| a.max(*b))
        * 1.05;
    for (area, r) in areas.iter().zip(&panels) {
        let Some(s) = r.series.as_ref() else { continue };
        let hours: Vec<f64> = s.t.iter().map(|t| t / 3600.0).collect();
        let x_max = hours.last().copied().unwrap_or(1.0).max(1e-6);
        let caption = format!(
            "{}: cost_ratio {:.3}, unserved {:.3} %, {} actions",
            r.policy, r.cost_ratio, r.unserved_pct, r.actions
        );
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("hours")
            .y_desc("replicas")
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        // Shortfall first, as a filled area under the lines: where red shows, load went unserved.
        chart
            .draw_series(AreaSeries::new(
                hours.iter().copied().zip(s.shortfall.iter().copied()),
                0.0,
                SHORT.mix(0.6),
            ))
            .map_err(|e| anyhow!("{e}"))?;
        // Ready last and thicker: where it hides under desired, nothing was starting.
        let series = [
            (&s.demand, DEMAND, 1),
            (&s.desired, DESIRED, 1),
            (&s.ready, READY, 2),
        ];
        // The forecast only where one was made (cold start and other policies have none).
        let forecast = hours
            .iter()
            .copied()
            .zip(s.forecast.iter().copied())
            .filter(|(_, f)| f.is_finite());
        chart
            .draw_series(forecast.map(|(x, y)| Circle::new((x, y), 1, FORECAST.filled())))
            .map_err(|e| anyhow!("{e}"))?;
        for (values, color, width) in series {
            chart
                .draw_series(LineSeries::new(
                    hours.iter().copied().zip(values.iter().copied()),
                    color.stroke_width(width),
                ))
                .map_err(|e| anyhow!("{e}"))?;
        }
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// One policy family's points, in sweep order.
pub(crate) struct Family {
    pub(crate) name: String,
    /// (knob label, unserved %, cost ratio).
    pub(crate) points: Vec<(String, f64, f64)>,
}

/// The cost/unserved frontier: one line per policy family, unserved on a log axis.
pub(crate) fn frontier(path: &Path, trace: &str, families: &[Family]) -> Result<()> {
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let pts = || families.iter().flat_map(|f| f.points.iter());
    // Log axis: zero unserved is drawn at the axis' left end.
    let x_min = pts()
        .map(|p| p.1)
        .filter(|u| *u > 0.0)
        .fold(f64::INFINITY, f64::min);
    let x_min = if x_min.is_finite() { x_min / 2.0 } else { 1e-4 };
    let x_max = pts().map(|p| p.1).fold(x_min * 10.0, f64::max) * 2.0;
    let y_max = pts()
        .map(|p| p.2)
        .filter(|c| c.is_finite())
        .fold(1.0, f64::max)
        * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{trace}: cost vs unserved (lower left is better)"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((x_min..x_max).log_scale(), 0.9f64..y_max)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("unserved demand, % (log)")
        .y_desc("cost ratio (1 = oracle)")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    let mut others = FAMILIES.iter().cycle();
    for f in families {
        let color = if f.name == "hpa" {
            BLACK
        } else {
            *others.next().unwrap_or(&BLACK)
        };
        let xy: Vec<(f64, f64)> = f
            .points
            .iter()
            .filter(|p| p.2.is_finite())
            .map(|p| (p.1.max(x_min), p.2))
            .collect();
        chart
            .draw_series(LineSeries::new(xy.iter().copied(), color.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?
            .label(f.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        chart
            .draw_series(xy.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(f.points.iter().zip(&xy).map(|(p, xy)| {
                Text::new(p.0.clone(), (xy.0, xy.1), ("sans-serif", 11).into_font())
            }))
            .map_err(|e| anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
