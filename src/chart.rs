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
            &format!("scalepilot simulate: {trace} (grey: demand in replicas, blue: ready, orange: desired, red: shortfall)"),
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
