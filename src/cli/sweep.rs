//! `simulate --sweep`: the cost/unserved frontier of forecasting policies beside the HPA at
//! several targets, and what each costs at the unserved level of the HPA's default (70 %).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use scalepilot_core::sim::PolicyResult;
use serde::Serialize;

use crate::chart::Family;

#[derive(Serialize)]
struct Comparison {
    policy: String,
    hpa_unserved_pct: f64,
    hpa_cost_ratio: f64,
    /// Interpolated on the policy's frontier; None when the HPA's level is outside it.
    cost_ratio_at_hpa_unserved: Option<f64>,
    saving_pct: Option<f64>,
}

#[derive(Serialize)]
struct Output<'a> {
    trace: &'a str,
    results: &'a [PolicyResult],
    at_hpa_unserved: Vec<Comparison>,
}

/// One policy of a sweep: its family and its knob value. (Results carry the display name
/// only; the family is never parsed back out of it.)
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Point {
    /// The HPA at a target utilization, percent.
    Hpa { target_pct: u32 },
    /// A forecasting policy (by name) with its knob multiplied by `x`.
    Forecasting { policy: String, x: f64 },
}

impl Point {
    /// The family: "hpa", or the forecasting policy's name.
    pub(crate) fn family(&self) -> &str {
        match self {
            Point::Hpa { .. } => "hpa",
            Point::Forecasting { policy, .. } => policy,
        }
    }

    /// The knob as shown: "70%", "x0.5".
    pub(crate) fn knob(&self) -> String {
        match self {
            Point::Hpa { target_pct } => format!("{target_pct}%"),
            Point::Forecasting { x, .. } => format!("x{x}"),
        }
    }

    /// The policy's name in results: family@knob ("hpa@70%", "recommended@x0.5").
    pub(crate) fn name(&self) -> String {
        format!("{}@{}", self.family(), self.knob())
    }
}

/// The HPA's default target: the other families are compared at its unserved level.
const HPA_DEFAULT: Point = Point::Hpa { target_pct: 70 };

fn families(results: &[PolicyResult], points: &[Point]) -> Vec<Family> {
    let mut out: Vec<Family> = Vec::new();
    for (r, p) in results.iter().zip(points) {
        let name = p.family();
        let point = (p.knob(), r.unserved_pct, r.cost_ratio);
        match out.iter_mut().find(|f| f.name == name) {
            Some(f) => f.points.push(point),
            None => out.push(Family {
                name: name.to_string(),
                points: vec![point],
            }),
        }
    }
    out
}

/// The cost of the family's Pareto frontier at `unserved`, interpolated linearly between the
/// two frontier points around it.
fn cost_at(f: &Family, unserved: f64) -> Option<f64> {
    let mut pts: Vec<(f64, f64)> = f.points.iter().map(|p| (p.1, p.2)).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    // Keep the non-dominated points: cost must fall as unserved rises.
    let mut frontier: Vec<(f64, f64)> = Vec::new();
    for p in pts {
        if frontier.last().is_none_or(|l| p.1 < l.1) {
            frontier.push(p);
        }
    }
    if let Some(p) = frontier.iter().find(|p| p.0 == unserved) {
        return Some(p.1);
    }
    let between = frontier.windows(2).find_map(|w| {
        let ((u0, c0), (u1, c1)) = (w[0], w[1]);
        (u0 <= unserved && unserved <= u1).then(|| c0 + (c1 - c0) * (unserved - u0) / (u1 - u0))
    });
    // Beyond the swept range on the loose side, the cheapest point that serves at least as
    // well is an upper bound of the frontier's cost there.
    between.or_else(|| frontier.last().filter(|l| l.0 <= unserved).map(|l| l.1))
}

/// Print (and chart) a sweep: `points[i]` is what `results[i]` ran.
pub(crate) fn report(
    trace: &str,
    results: &[PolicyResult],
    points: &[Point],
    chart: Option<&Path>,
    json: bool,
) -> Result<ExitCode> {
    let fams = families(results, points);
    let hpa = results
        .iter()
        .zip(points)
        .find(|(_, p)| **p == HPA_DEFAULT)
        .map(|(r, _)| r);
    let comparisons: Vec<Comparison> = match hpa {
        Some(h) => fams
            .iter()
            .filter(|f| f.name != "hpa")
            .map(|f| {
                let c = cost_at(f, h.unserved_pct);
                Comparison {
                    policy: f.name.clone(),
                    hpa_unserved_pct: h.unserved_pct,
                    hpa_cost_ratio: h.cost_ratio,
                    cost_ratio_at_hpa_unserved: c,
                    saving_pct: c.map(|c| 100.0 * (1.0 - c / h.cost_ratio)),
                }
            })
            .collect(),
        None => Vec::new(),
    };
    if let Some(path) = chart {
        crate::chart::frontier(path, trace, &fams)
            .with_context(|| format!("cannot write chart {}", path.display()))?;
    }
    if json {
        let out = Output {
            trace,
            results,
            at_hpa_unserved: comparisons,
        };
        super::emit(&serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    super::emit(&format!(
        "frontier on {trace} (knob: max_unserved_pct for forecasting policies, target utilization for hpa)"
    ));
    super::emit(&format!(
        "{:<14} {:>8} {:>11} {:>11} {:>8}",
        "policy", "knob", "cost_ratio", "unserved_%", "actions"
    ));
    for (r, p) in results.iter().zip(points) {
        let (name, knob) = (p.family(), p.knob());
        super::emit(&format!(
            "{name:<14} {knob:>8} {:>11.3} {:>11.3} {:>8}",
            r.cost_ratio, r.unserved_pct, r.actions
        ));
    }
    for c in &comparisons {
        let line = match (c.cost_ratio_at_hpa_unserved, c.saving_pct) {
            (Some(cost), Some(s)) => format!(
                "at {}'s unserved {:.3} %: {} costs {cost:.3} against {:.3} ({:.1} % {})",
                HPA_DEFAULT.name(),
                c.hpa_unserved_pct,
                c.policy,
                c.hpa_cost_ratio,
                s.abs(),
                if s >= 0.0 { "less" } else { "more" }
            ),
            _ => format!(
                "at {}'s unserved {:.3} %: outside {}'s swept range",
                HPA_DEFAULT.name(),
                c.hpa_unserved_pct,
                c.policy
            ),
        };
        super::emit(&line);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_name_their_family_and_knob() {
        let hpa = Point::Hpa { target_pct: 70 };
        assert_eq!(hpa.name(), "hpa@70%");
        assert_eq!(hpa, HPA_DEFAULT);
        // A policy whose own name holds an '@' stays one family.
        let p = Point::Forecasting {
            policy: "a@b".into(),
            x: 0.5,
        };
        assert_eq!((p.family(), p.knob().as_str()), ("a@b", "x0.5"));
    }

    #[test]
    fn interpolates_on_the_frontier_only() {
        let f = Family {
            name: "p".into(),
            points: vec![
                ("a".into(), 0.1, 2.0),
                ("b".into(), 1.0, 1.5),
                ("c".into(), 0.5, 2.5), // dominated by b: ignored
                ("d".into(), 3.0, 1.0),
            ],
        };
        assert_eq!(cost_at(&f, 0.1), Some(2.0));
        assert!((cost_at(&f, 0.55).unwrap() - 1.75).abs() < 1e-9);
        assert!((cost_at(&f, 2.0).unwrap() - 1.25).abs() < 1e-9);
        assert_eq!(cost_at(&f, 5.0), Some(1.0)); // d serves better and costs 1.0
        assert_eq!(cost_at(&f, 0.01), None);
    }
}
