//! Money: replica prices (with an optional schedule of hourly prices) and budgets as hard caps.
//!
//! A budget caps the count a decision may reach: `per_hour` at floor(per_hour / price now);
//! `per_month` paced over the rest of the calendar month (in the pricing zone), at
//! floor(left this month / (hours left × price now)), so that spending at the cap until the
//! month ends lands exactly on the budget. The spend is tracked in the group's state from the
//! replicas that ran between evaluations. A cap never goes below the budget's `min_replicas`
//! (default: the group's min): some service is worth more than the budget.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::hours::HoursSpec;

/// Prices of one replica-hour.
#[derive(Debug, Clone)]
pub struct Pricing {
    pub base: f64,
    pub zone_name: String,
    pub timezone: TimeZone,
    /// First match wins; outside every spec the base price applies.
    pub schedule: Vec<(HoursSpec, f64)>,
}

impl Pricing {
    pub fn flat(price: f64) -> Pricing {
        Pricing {
            base: price,
            zone_name: "UTC".into(),
            timezone: TimeZone::UTC,
            schedule: Vec::new(),
        }
    }

    pub fn price_at(&self, t: Timestamp) -> f64 {
        self.schedule
            .iter()
            .find(|(spec, _)| spec.contains(t, &self.timezone))
            .map_or(self.base, |(_, p)| *p)
    }

    /// "2026-11" in the pricing zone: the budget month `t` falls in.
    pub fn month(&self, t: Timestamp) -> String {
        let z = t.to_zoned(self.timezone.clone());
        format!("{:04}-{:02}", z.year(), z.month())
    }

    /// Hours from `t` to the end of its month in the pricing zone (at least one second).
    pub fn hours_left_in_month(&self, t: Timestamp) -> f64 {
        let z = t.to_zoned(self.timezone.clone());
        let end = z
            .first_of_month()
            .ok()
            .and_then(|f| f.checked_add(1.month()).ok())
            .and_then(|f| f.start_of_day().ok())
            .map(|f| f.timestamp());
        let secs = end.map_or(3600, |e| (e - t).get_seconds()).max(1);
        secs as f64 / 3600.0
    }
}

/// Hard caps on spend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub per_hour: Option<f64>,
    pub per_month: Option<f64>,
    /// Kept even when over budget (None: the group's min).
    pub min_replicas: Option<u32>,
}

/// A group's money settings.
#[derive(Debug, Clone)]
pub struct Cost {
    pub pricing: Pricing,
    pub budget: Option<Budget>,
}

/// Money spent by a group in the current budget month (persisted in its state).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spend {
    /// "2026-11".
    pub month: String,
    pub spent: f64,
    /// When the spend was last brought up to date, and the replicas running since.
    #[schemars(with = "String")]
    pub at: Timestamp,
    pub replicas: u32,
}

/// Budget left for one group as the engine sees it across groups (global budgets), in money.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedBudget {
    /// $/hour the global budget leaves for this group (global per_hour − the other groups'
    /// current spend rate).
    #[serde(default)]
    pub per_hour_left: Option<f64>,
    /// Money the global monthly budget has left this month, and the other groups' current
    /// spend rate ($/hour): the group may use what pacing leaves after them.
    #[serde(default)]
    pub per_month_left: Option<f64>,
    #[serde(default)]
    pub others_per_hour: f64,
}

/// Bring the spend up to `now`: the replicas seen at the last evaluation ran until now.
pub fn account(spend: &mut Option<Spend>, pricing: &Pricing, now: Timestamp, replicas: u32) {
    let month = pricing.month(now);
    match spend {
        Some(s) if s.at < now => {
            let hours = now.duration_since(s.at).as_secs_f64() / 3600.0;
            // Priced at the start of the interval: evaluations are seconds to minutes apart.
            let cost = f64::from(s.replicas) * hours.min(24.0) * pricing.price_at(s.at);
            if s.month == month {
                s.spent += cost;
            } else {
                s.month = month;
                s.spent = 0.0;
            }
            s.at = now;
            s.replicas = replicas;
        }
        Some(s) => s.replicas = replicas,
        None => {
            *spend = Some(Spend {
                month,
                spent: 0.0,
                at: now,
                replicas,
            })
        }
    }
}

/// The largest count the budgets allow now, with why; None when no budget binds anything.
pub fn cap(
    cost: &Cost,
    spend: Option<&Spend>,
    shared: Option<&SharedBudget>,
    now: Timestamp,
    group_min: u32,
) -> Option<(u32, String)> {
    let price = cost.pricing.price_at(now);
    if price.is_nan() || price <= 0.0 {
        return None;
    }
    let mut best: Option<(f64, String)> = None;
    let mut consider = |money_per_hour: f64, why: String| {
        let n = (money_per_hour / price + 1e-9).floor().max(0.0);
        if best.as_ref().is_none_or(|(b, _)| n < *b) {
            best = Some((n, why));
        }
    };
    let hours_left = cost.pricing.hours_left_in_month(now);
    let spent = spend
        .filter(|s| s.month == cost.pricing.month(now))
        .map_or(0.0, |s| s.spent);
    if let Some(b) = cost.budget {
        if let Some(h) = b.per_hour {
            consider(h, format!("budget {h}/h at {price}/replica-hour"));
        }
        if let Some(m) = b.per_month {
            let left = (m - spent).max(0.0);
            consider(
                left / hours_left,
                format!(
                    "monthly budget {m}: {left:.2} left for {hours_left:.1} h at {price}/replica-hour"
                ),
            );
        }
    }
    if let Some(s) = shared {
        if let Some(h) = s.per_hour_left {
            consider(
                h.max(0.0),
                format!("global budget leaves {h:.2}/h at {price}/replica-hour"),
            );
        }
        if let Some(left) = s.per_month_left {
            let rate = (left.max(0.0) / hours_left - s.others_per_hour).max(0.0);
            consider(
                rate,
                format!(
                    "global monthly budget: {left:.2} left for {hours_left:.1} h, {rate:.2}/h for this group"
                ),
            );
        }
    }
    let (n, why) = best?;
    let floor = cost
        .budget
        .and_then(|b| b.min_replicas)
        .unwrap_or(group_min);
    let n = (n.min(f64::from(u32::MAX)) as u32).max(floor);
    Some((n, format!("{why} allows {n} (floor {floor})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn cost(per_hour: Option<f64>, per_month: Option<f64>) -> Cost {
        Cost {
            pricing: Pricing {
                base: 0.10,
                zone_name: "UTC".into(),
                timezone: TimeZone::UTC,
                schedule: vec![(HoursSpec::parse("Mon-Fri 08:00-20:00").unwrap(), 0.20)],
            },
            budget: Some(Budget {
                per_hour,
                per_month,
                min_replicas: Some(2),
            }),
        }
    }

    #[test]
    fn prices_follow_the_schedule() {
        let c = cost(None, None);
        // 2026-11-23 is a Monday.
        assert_eq!(c.pricing.price_at(at("2026-11-23T09:00:00Z")), 0.20);
        assert_eq!(c.pricing.price_at(at("2026-11-23T21:00:00Z")), 0.10);
        assert_eq!(c.pricing.price_at(at("2026-11-28T09:00:00Z")), 0.10);
    }

    #[test]
    fn hourly_budget_caps_by_the_price_now() {
        let c = cost(Some(1.0), None);
        let (n, why) = cap(&c, None, None, at("2026-11-23T09:00:00Z"), 1).unwrap();
        assert_eq!(n, 5, "{why}"); // 1.0 / 0.20
        let (n, _) = cap(&c, None, None, at("2026-11-23T22:00:00Z"), 1).unwrap();
        assert_eq!(n, 10);
        // Never below the floor.
        let c = cost(Some(0.05), None);
        let (n, why) = cap(&c, None, None, at("2026-11-23T09:00:00Z"), 1).unwrap();
        assert_eq!(n, 2, "{why}");
    }

    #[test]
    fn monthly_budget_is_paced_and_spend_is_accounted() {
        let c = cost(None, Some(720.0));
        let mut spend = None;
        // Saturday 2026-11-28 00:00 UTC: 72 h left in November; nothing spent → 10/h → 100.
        let t0 = at("2026-11-28T00:00:00Z");
        account(&mut spend, &c.pricing, t0, 50);
        let (n, _) = cap(&c, spend.as_ref(), None, t0, 1).unwrap();
        assert_eq!(n, 100);
        // 50 replicas for 24 h at 0.10 = 120 spent; 600 left for 48 h = 12.5/h → 125.
        let t1 = at("2026-11-29T00:00:00Z");
        account(&mut spend, &c.pricing, t1, 50);
        assert!((spend.as_ref().unwrap().spent - 120.0).abs() < 1e-6);
        let (n, _) = cap(&c, spend.as_ref(), None, t1, 1).unwrap();
        assert_eq!(n, 125);
        // A new month starts from zero.
        let t2 = at("2026-12-01T00:00:00Z");
        account(&mut spend, &c.pricing, t2, 50);
        assert_eq!(spend.as_ref().unwrap().month, "2026-12");
        assert_eq!(spend.as_ref().unwrap().spent, 0.0);
    }

    #[test]
    fn shared_budget_leaves_what_the_others_do_not_use() {
        let c = Cost {
            pricing: Pricing::flat(0.5),
            budget: None,
        };
        let shared = SharedBudget {
            per_hour_left: Some(2.2),
            per_month_left: None,
            others_per_hour: 0.0,
        };
        let (n, why) = cap(&c, None, Some(&shared), at("2026-11-23T09:00:00Z"), 1).unwrap();
        assert_eq!(n, 4, "{why}");
        assert!(cap(&c, None, None, at("2026-11-23T09:00:00Z"), 1).is_none());
    }
}
