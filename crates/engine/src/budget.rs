//! The global budget across groups: a ledger of what each priced group spends, from which each
//! evaluation learns what the others leave it (`Observation.shared_budget`).
//!
//! Groups are evaluated concurrently and independently, so the split is first come, first
//! served: a group can only take what the others' current rates leave, and the sum of the
//! rates the groups scale to never exceeds the global per-hour budget (each caps itself at
//! what was left when it decided). The monthly budget is paced like a group's own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use scalepilot_core::config::{GlobalBudget, Group};
use scalepilot_core::cost::SharedBudget;
use scalepilot_core::decision::Rule;
use scalepilot_core::state::GroupState;
use scalepilot_core::{Decision, Observation};

#[derive(Debug, Clone, Default)]
struct Entry {
    /// Money per hour at the count the group last decided on.
    rate: f64,
    /// This month's spend, and which month it is.
    month: String,
    spent: f64,
}

#[derive(Debug, Default)]
struct Inner {
    global: Option<GlobalBudget>,
    groups: HashMap<String, Entry>,
}

/// Shared between the engine and every group runtime.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ledger {
    inner: Arc<Mutex<Inner>>,
}

impl Ledger {
    /// Set the global budget (at start and on every reload).
    ///
    /// A ledger poisoned by a panic is reset here: its entries may be half-written, and each
    /// group records itself again at its next evaluation. Until then (between the panic and
    /// the next reload) every priced group fails closed, see [`Ledger::decide`].
    pub(crate) fn configure(&self, global: Option<GlobalBudget>) {
        if self.inner.is_poisoned() {
            tracing::warn!("the budget ledger was poisoned by a panic: reset at this reload");
            self.inner.clear_poison();
            if let Ok(mut i) = self.inner.lock() {
                i.groups.clear();
            }
        }
        if let Ok(mut i) = self.inner.lock() {
            i.global = global;
        }
    }

    /// Forget a group that was removed (its spend no longer counts this month).
    pub(crate) fn remove(&self, group: &str) {
        if let Ok(mut i) = self.inner.lock() {
            i.groups.remove(group);
        }
    }

    /// Decide for `group` with what the global budget leaves it, and record the result, as
    /// one step under the ledger's lock: two groups never both take the same money.
    /// (`decide` takes microseconds; groups without a price skip the lock.)
    pub(crate) fn decide(
        &self,
        group: &Group,
        obs: &mut Observation,
        state: &mut GroupState,
        now: Timestamp,
    ) -> Decision {
        let Some(cost) = &group.cost else {
            return scalepilot_core::decide(group, obs, state, now);
        };
        let Ok(mut i) = self.inner.lock() else {
            return fail_closed(group, obs, state, now);
        };
        obs.shared_budget = i.global.map(|global| shared(&i, &global, group, state));
        let d = scalepilot_core::decide(group, obs, state, now);
        let rate = f64::from(d.desired_replicas) * cost.pricing.price_at(now);
        let (month, spent) = state
            .spend
            .as_ref()
            .map_or((String::new(), 0.0), |s| (s.month.clone(), s.spent));
        i.groups
            .insert(group.name.to_string(), Entry { rate, month, spent });
        d
    }
}

impl Ledger {
    /// Correct a group's entry to the count that actually runs after its evaluation: the
    /// entry [`Ledger::decide`] recorded assumed the desired count, but a dry run, a failed
    /// intent write, an action already attempted or a failed target call leave `replicas`
    /// running, and the other groups must not be capped against money nobody spends.
    pub(crate) fn settle(&self, group: &Group, replicas: u32, now: Timestamp) {
        let Some(cost) = &group.cost else { return };
        if let Ok(mut i) = self.inner.lock()
            && let Some(e) = i.groups.get_mut(&*group.name)
        {
            e.rate = f64::from(replicas) * cost.pricing.price_at(now);
        }
    }
}

impl Ledger {
    /// What [`Ledger::decide`] would decide, without recording anything: for a dry run
    /// (`EngineHandle::evaluate_now`), which must not take budget from the other groups.
    pub(crate) fn preview(
        &self,
        group: &Group,
        obs: &mut Observation,
        state: &mut GroupState,
        now: Timestamp,
    ) -> Decision {
        if group.cost.is_none() {
            return scalepilot_core::decide(group, obs, state, now);
        }
        let Ok(i) = self.inner.lock() else {
            return fail_closed(group, obs, state, now);
        };
        obs.shared_budget = i.global.map(|global| shared(&i, &global, group, state));
        drop(i);
        scalepilot_core::decide(group, obs, state, now)
    }
}

/// Decide without the ledger (its lock is poisoned: a panic happened while it was held, so
/// what the other groups spend is unknown). Deciding without the global cap could overspend,
/// so this fails closed: the budget is treated as exhausted at the current count. The group
/// may hold or scale down, never up, and the decision says why.
fn fail_closed(
    group: &Group,
    obs: &mut Observation,
    state: &mut GroupState,
    now: Timestamp,
) -> Decision {
    tracing::error!(group = %group.name, "the budget ledger is unavailable (poisoned by a panic): holding at the current count or scaling down only until the next reload");
    let current = obs.current_replicas;
    let price = group.cost.as_ref().map_or(0.0, |c| c.pricing.price_at(now));
    // What the current count costs: the core's cap then allows exactly the current count.
    obs.shared_budget = Some(SharedBudget {
        per_hour_left: Some(f64::from(current) * price),
        per_month_left: None,
        others_per_hour: 0.0,
    });
    let mut d = scalepilot_core::decide(group, obs, state, now);
    for l in d.limits.iter_mut().filter(|l| l.rule == Rule::Budget) {
        l.detail = format!("{FAIL_CLOSED}: {}", l.detail);
    }
    d
}

/// The reason a decision gives when the ledger failed closed.
pub(crate) const FAIL_CLOSED: &str =
    "budget ledger unavailable (poisoned lock): treated as exhausted, no scale-up";

/// What `global` leaves `group`: the others' current rates and this month's spend are taken.
fn shared(i: &Inner, global: &GlobalBudget, group: &Group, state: &GroupState) -> SharedBudget {
    let month = state.spend.as_ref().map(|s| s.month.clone());
    let others = i.groups.iter().filter(|(name, _)| **name != *group.name);
    let rate: f64 = others.clone().map(|(_, e)| e.rate).sum();
    let spent: f64 = others
        .filter(|(_, e)| Some(&e.month) == month.as_ref())
        .map(|(_, e)| e.spent)
        .sum();
    // This group's own spend from its state: fresher than the ledger's copy.
    let own = state.spend.as_ref().map_or(0.0, |s| s.spent);
    SharedBudget {
        per_hour_left: global.per_hour.map(|h| h - rate),
        per_month_left: global.per_month.map(|m| m - spent - own),
        others_per_hour: rate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 12 req/s at 1 per replica: 12 replicas wanted, from `current`.
    fn want(current: u32) -> Observation {
        let mut o = Observation {
            current_replicas: current,
            ..Default::default()
        };
        o.metrics.insert("request_rate".into(), 12.0);
        o
    }

    fn group(name: &str) -> Group {
        let yaml = format!(
            "groups:\n  - name: {name}\n    min: 1\n    max: 100\n    strategies:\n      - {{kind: target_tracking, metric: request_rate, target_per_replica: 1}}\n    cost: {{price_per_replica_hour: 0.5}}\n"
        );
        scalepilot_core::config::parse(&yaml, "t.yaml")
            .unwrap()
            .groups
            .remove(0)
    }

    #[test]
    fn each_group_gets_what_the_others_leave() {
        let ledger = Ledger::default();
        let (a, b) = (group("a"), group("b"));
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        // Each wants 12 replicas (12 req/s at 1 per replica): 6/h at 0.5.
        let (mut sa, mut sb) = (GroupState::default(), GroupState::default());
        let d = ledger.decide(&a, &mut want(12), &mut sa, now);
        assert_eq!(d.desired_replicas, 12, "no global budget: no cap");
        ledger.configure(Some(GlobalBudget {
            per_hour: Some(10.0),
            per_month: None,
        }));
        let d = ledger.decide(&a, &mut want(12), &mut sa, now);
        assert_eq!(d.desired_replicas, 12, "{}", d.summary());
        // b gets what a leaves: (10 − 6) / 0.5 = 8.
        let d = ledger.decide(&b, &mut want(12), &mut sb, now);
        assert_eq!(d.desired_replicas, 8, "{}", d.summary());
        assert!(
            d.summary().contains("global budget leaves 4.00/h"),
            "{}",
            d.summary()
        );
        // Once a is removed (stopped), b may take it all.
        ledger.remove("a");
        let d = ledger.decide(&b, &mut want(8), &mut sb, now);
        assert!(d.desired_replicas > 8, "{}", d.summary());
    }

    /// An action that did not happen (dry run, failed call) takes no budget from the others:
    /// the entry is settled to the count that runs.
    #[test]
    fn an_action_that_did_not_happen_leaves_the_budget_to_the_others() {
        let ledger = Ledger::default();
        ledger.configure(Some(GlobalBudget {
            per_hour: Some(7.5),
            per_month: None,
        }));
        let (a, b) = (group("a"), group("b"));
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let (mut sa, mut sb) = (GroupState::default(), GroupState::default());
        // a asks for 6 (3/h, the rate limit from 2) but its action fails: 2 (1/h) still run.
        let d = ledger.decide(&a, &mut want(2), &mut sa, now);
        assert_eq!(d.desired_replicas, 6, "{}", d.summary());
        ledger.settle(&a, 2, now);
        // b gets 7.5 − 1 = 6.5/h: its 12 replicas (6/h) fit. Without the settle it would get
        // 7.5 − 3 = 4.5/h, 9 replicas.
        let d = ledger.decide(&b, &mut want(12), &mut sb, now);
        assert_eq!(d.desired_replicas, 12, "{}", d.summary());
    }

    /// A panic while the ledger's lock is held poisons it; deciding as if there were no
    /// global budget could then overspend, so priced groups fail closed: hold or scale down.
    #[test]
    fn a_poisoned_ledger_fails_closed() {
        let ledger = Ledger::default();
        ledger.configure(Some(GlobalBudget {
            per_hour: Some(100.0),
            per_month: None,
        }));
        let inner = ledger.inner.clone();
        let _ = std::thread::spawn(move || {
            let _guard = inner.lock().unwrap();
            panic!("poison the ledger (expected in this test)");
        })
        .join();
        assert!(ledger.inner.is_poisoned());
        let a = group("a");
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let obs = |current: u32, rate: f64| {
            let mut o = Observation {
                current_replicas: current,
                ..Default::default()
            };
            o.metrics.insert("request_rate".into(), rate);
            o
        };
        let mut s = GroupState::default();
        // Wants 12 from 4: held at 4, with the reason.
        let d = ledger.decide(&a, &mut obs(4, 12.0), &mut s, now);
        assert_eq!(d.desired_replicas, 4, "{}", d.summary());
        assert!(d.summary().contains(FAIL_CLOSED), "{}", d.summary());
        // Scaling down stays allowed.
        let mut s = GroupState::default();
        let d = ledger.decide(&a, &mut obs(10, 2.0), &mut s, now);
        assert!(d.desired_replicas < 10, "{}", d.summary());
        // A reload resets the ledger: the global cap (100/h, far away) applies again.
        ledger.configure(Some(GlobalBudget {
            per_hour: Some(100.0),
            per_month: None,
        }));
        let mut s = GroupState::default();
        let d = ledger.decide(&a, &mut obs(4, 12.0), &mut s, now);
        assert!(d.desired_replicas > 4, "{}", d.summary());
    }
}
