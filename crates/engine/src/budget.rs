//! The global budget across groups: a ledger of what each priced group spends, from which each
//! evaluation learns what the others leave it (`Observation.shared_budget`).
//!
//! Groups are evaluated concurrently and independently, so the split is first come, first
//! served: a group can only take what the others' current rates leave, and the sum of the
//! rates the groups scale to never exceeds the global per-hour budget (each caps itself at
//! what was left when it decided). The monthly budget is paced like a group's own.
//!
//! A single daemon keeps the ledger in memory: deciding under its mutex takes microseconds
//! and costs no query. With several daemons (`engine.ha: true`) the groups are spread over
//! processes, so the ledger is kept in the store instead (see `budget_store`): each priced
//! group reads it and writes its own entry with a compare-and-swap.

use std::collections::{HashMap, HashSet};

use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use scalepilot_core::config::{GlobalBudget, Group};
use scalepilot_core::cost::SharedBudget;
use scalepilot_core::decision::Rule;
use scalepilot_core::state::GroupState;
use scalepilot_core::{Decision, Observation};
use scalepilot_store::{Fence, Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Entry {
    /// Money per hour at the count the group last decided on.
    pub(crate) rate: f64,
    /// This month's spend, and which month it is.
    pub(crate) month: String,
    pub(crate) spent: f64,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) global: Option<GlobalBudget>,
    /// In memory: every group's entry. In the store: this daemon's groups' entries as last
    /// written, so a settle that changes nothing writes nothing.
    pub(crate) groups: HashMap<String, Entry>,
    /// The enabled priced groups of the current config, with what each costs at least. In
    /// the store, entries of any other group (removed, disabled or unpriced since, perhaps
    /// by a daemon still on an older config) are not counted.
    pub(crate) priced: HashMap<String, Floor>,
}

/// What a priced group costs before it recorded itself: it runs at least its `min`
/// replicas (scalepilot keeps them even over budget), so that much is reserved for it. A
/// group that has not evaluated yet (just started, or its daemon is still starting) would
/// otherwise count as free, and the first groups to decide could take money the others
/// already spend.
#[derive(Debug, Clone)]
pub(crate) struct Floor {
    min: u32,
    pricing: scalepilot_core::cost::Pricing,
}

impl Inner {
    /// The entries that count against `me`: the other groups' `entries`, plus the floor of
    /// every other priced group that has none yet. With `only_priced`, entries of groups
    /// that are not priced groups of the current config are left out (the store's ledger).
    pub(crate) fn others<'a>(
        &self,
        me: &str,
        entries: impl Iterator<Item = (&'a str, Entry)>,
        only_priced: bool,
        now: Timestamp,
    ) -> Vec<Entry> {
        let mut seen = HashSet::new();
        let mut out: Vec<Entry> = entries
            .filter(|(name, _)| *name != me && (!only_priced || self.priced.contains_key(*name)))
            .map(|(name, e)| {
                seen.insert(name);
                e
            })
            .collect();
        out.extend(
            self.priced
                .iter()
                .filter(|(name, _)| name.as_str() != me && !seen.contains(name.as_str()))
                .map(|(_, f)| Entry {
                    rate: f64::from(f.min) * f.pricing.price_at(now),
                    ..Default::default()
                }),
        );
        out
    }
}

/// Shared between the engine and every group runtime.
#[derive(Clone, Default)]
pub(crate) struct Ledger {
    pub(crate) inner: Arc<Mutex<Inner>>,
    /// `engine.ha: true`: the ledger is kept in this store, shared by every daemon.
    pub(crate) store: Option<Arc<dyn Store>>,
}

/// A decision through the ledger, and why the ledger failed when it did (the decision then
/// failed closed: no scale-up).
pub(crate) struct Decided {
    pub(crate) decision: Decision,
    pub(crate) error: Option<LedgerError>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LedgerError {
    #[error("budget ledger: {0}")]
    Store(#[from] StoreError),
    #[error(
        "budget ledger: {0} attempts in a row lost the race to other groups' writes: held at the current count"
    )]
    Contended(u32),
    #[error("budget ledger: unavailable (poisoned lock, reset at the next reload)")]
    Poisoned,
}

impl Ledger {
    /// A ledger kept in `store` (several daemons on one database).
    pub(crate) fn in_store(store: Arc<dyn Store>) -> Ledger {
        Ledger {
            inner: Default::default(),
            store: Some(store),
        }
    }

    /// Set the global budget and the groups that count (at start and on every reload).
    ///
    /// A ledger poisoned by a panic is reset here: its entries may be half-written, and each
    /// group records itself again at its next evaluation. Until then (between the panic and
    /// the next reload) every priced group fails closed, see [`Ledger::decide`].
    pub(crate) fn configure(&self, global: Option<GlobalBudget>, groups: &[Group]) {
        if self.inner.is_poisoned() {
            tracing::warn!("the budget ledger was poisoned by a panic: reset at this reload");
            self.inner.clear_poison();
            if let Ok(mut i) = self.inner.lock() {
                i.groups.clear();
            }
        }
        if let Ok(mut i) = self.inner.lock() {
            i.global = global;
            i.priced = groups
                .iter()
                .filter(|g| g.enabled)
                .filter_map(|g| {
                    let c = g.cost.as_ref()?;
                    let floor = Floor {
                        min: g.min,
                        pricing: c.pricing.clone(),
                    };
                    Some((g.name.to_string(), floor))
                })
                .collect();
        }
    }

    /// A group stopped running here (removed, disabled, restarted, or its lease went to
    /// another daemon). In memory its entry goes: its spend no longer counts this month (a
    /// restarted group records itself again at its first evaluation). In the store the entry
    /// stays while the group is in the config, enabled and priced: its instances still run
    /// and cost money, and whichever daemon evaluates it next updates it. It is deleted once
    /// the group left the config (or was disabled, or lost its price).
    pub(crate) async fn remove(&self, group: &str) {
        // Deleted only by a daemon that wrote the entry (it ran the group priced): unpriced
        // groups stopping (hand-overs of a whole fleet) cost no query.
        let stale = match self.inner.lock() {
            Ok(mut i) => i.groups.remove(group).is_some() && !i.priced.contains_key(group),
            Err(_) => false,
        };
        if let Some(store) = &self.store
            && stale
            && let Err(e) = store.delete_budget_entry(group).await
        {
            // Not counted by any daemon on the current config anyway; a later removal retries.
            tracing::warn!(group, "cannot delete the group's budget entry: {e}");
        }
    }

    /// Decide for `group` with what the global budget leaves it, and record the result, as
    /// one step: two groups never both take the same money. In memory under the ledger's
    /// lock (microseconds); in the store by compare-and-swap under `fence` (see
    /// `budget_store`). Groups without a price skip the ledger.
    pub(crate) async fn decide(
        &self,
        group: &Group,
        obs: &mut Observation,
        state: &mut GroupState,
        now: Timestamp,
        fence: Option<&Fence>,
    ) -> Decided {
        let Some(cost) = &group.cost else {
            let decision = scalepilot_core::decide(group, obs, state, now);
            return Decided {
                decision,
                error: None,
            };
        };
        if let Some(store) = &self.store {
            return self
                .decide_in_store(store.as_ref(), group, obs, state, now, fence)
                .await;
        }
        let Ok(mut i) = self.inner.lock() else {
            let decision = fail_closed(group, obs, state, now, FAIL_CLOSED);
            return Decided {
                decision,
                error: None,
            };
        };
        let entries = i.groups.iter().map(|(n, e)| (n.as_str(), e.clone()));
        let others = i.others(&group.name, entries, false, now);
        obs.shared_budget = i.global.map(|global| shared(others.iter(), &global, state));
        let d = scalepilot_core::decide(group, obs, state, now);
        let rate = f64::from(d.desired_replicas) * cost.pricing.price_at(now);
        i.groups.insert(group.name.to_string(), entry(rate, state));
        Decided {
            decision: d,
            error: None,
        }
    }
}

/// A group's entry at `rate`, with its spend from its state.
pub(crate) fn entry(rate: f64, state: &GroupState) -> Entry {
    let (month, spent) = state
        .spend
        .as_ref()
        .map_or((String::new(), 0.0), |s| (s.month.clone(), s.spent));
    Entry { rate, month, spent }
}

impl Ledger {
    /// Correct a group's entry to the count that actually runs after its evaluation: the
    /// entry [`Ledger::decide`] recorded assumed the desired count, but a dry run, a failed
    /// intent write, an action already attempted or a failed target call leave `replicas`
    /// running, and the other groups must not be capped against money nobody spends. In the
    /// store it is written through (under `fence`) when the rate changed; a failed write
    /// leaves the higher rate counted (safe: others are capped a little too much until the
    /// group's next evaluation).
    pub(crate) async fn settle(
        &self,
        group: &Group,
        replicas: u32,
        now: Timestamp,
        fence: Option<&Fence>,
    ) -> Result<(), LedgerError> {
        let Some(cost) = &group.cost else {
            return Ok(());
        };
        let rate = f64::from(replicas) * cost.pricing.price_at(now);
        let changed = {
            let Ok(mut i) = self.inner.lock() else {
                return Ok(());
            };
            let Some(e) = i.groups.get_mut(&*group.name) else {
                return Ok(());
            };
            if e.rate == rate {
                return Ok(());
            }
            e.rate = rate;
            e.clone()
        };
        match &self.store {
            Some(store) => {
                self.settle_in_store(store.as_ref(), group, changed, now, fence)
                    .await
            }
            None => Ok(()),
        }
    }
}

impl Ledger {
    /// What [`Ledger::decide`] would decide, without recording anything: for a dry run
    /// (`EngineHandle::evaluate_now`), which must not take budget from the other groups.
    pub(crate) async fn preview(
        &self,
        group: &Group,
        obs: &mut Observation,
        state: &mut GroupState,
        now: Timestamp,
    ) -> Decision {
        if group.cost.is_none() {
            return scalepilot_core::decide(group, obs, state, now);
        }
        if let Some(store) = &self.store {
            return self
                .preview_in_store(store.as_ref(), group, obs, state, now)
                .await;
        }
        let Ok(i) = self.inner.lock() else {
            return fail_closed(group, obs, state, now, FAIL_CLOSED);
        };
        let entries = i.groups.iter().map(|(n, e)| (n.as_str(), e.clone()));
        let others = i.others(&group.name, entries, false, now);
        obs.shared_budget = i.global.map(|global| shared(others.iter(), &global, state));
        drop(i);
        scalepilot_core::decide(group, obs, state, now)
    }
}

/// Decide without the ledger (its lock is poisoned: a panic happened while it was held, or
/// the store's copy cannot be read or written), so what the other groups spend is unknown.
/// Deciding without the global cap could overspend, so this fails closed: the budget is
/// treated as exhausted at the current count. The group may hold or scale down, never up,
/// and the decision says why (`why`).
pub(crate) fn fail_closed(
    group: &Group,
    obs: &mut Observation,
    state: &mut GroupState,
    now: Timestamp,
    why: &str,
) -> Decision {
    tracing::error!(group = %group.name, "{why}: holding at the current count or scaling down only");
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
        l.detail = format!("{why}: {}", l.detail);
    }
    d
}

/// The reason a decision gives when the in-memory ledger failed closed.
pub(crate) const FAIL_CLOSED: &str =
    "budget ledger unavailable (poisoned lock): treated as exhausted, no scale-up";

/// What `global` leaves a group, given the other groups' entries (`others`): their current
/// rates and this month's spend are taken.
pub(crate) fn shared<'a>(
    others: impl Iterator<Item = &'a Entry> + Clone,
    global: &GlobalBudget,
    state: &GroupState,
) -> SharedBudget {
    let month = state.spend.as_ref().map(|s| s.month.clone());
    let rate: f64 = others.clone().map(|e| e.rate).sum();
    let spent: f64 = others
        .filter(|e| Some(&e.month) == month.as_ref())
        .map(|e| e.spent)
        .sum();
    // This group's own spend from its state: fresher than the ledger's copy.
    let own = state.spend.as_ref().map_or(0.0, |s| s.spent);
    SharedBudget {
        per_hour_left: global.per_hour.map(|h| h - rate),
        per_month_left: global.per_month.map(|m| m - spent - own),
        others_per_hour: rate,
    }
}

impl crate::group::GroupRuntime {
    /// The ledger failed this evaluation's decision: a refused fence means the lease is gone
    /// (stop acting, as for any fenced write).
    pub(crate) fn budget_failed(&self, e: &LedgerError) {
        if let LedgerError::Store(e) = e {
            self.fenced(e);
        }
    }

    /// [`Ledger::settle`] for this group; a failure is logged (and a fence noted) and
    /// returned for the caller to count.
    pub(crate) async fn settle_budget(
        &self,
        replicas: u32,
        now: Timestamp,
        fence: Option<&Fence>,
    ) -> Result<(), String> {
        let r = self.budget.settle(&self.group, replicas, now, fence).await;
        r.map_err(|e| {
            tracing::warn!(group = %self.group.name, "{e}");
            self.budget_failed(&e);
            e.to_string()
        })
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

    #[tokio::test]
    async fn each_group_gets_what_the_others_leave() {
        let ledger = Ledger::default();
        let (a, b) = (group("a"), group("b"));
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        // Each wants 12 replicas (12 req/s at 1 per replica): 6/h at 0.5.
        let (mut sa, mut sb) = (GroupState::default(), GroupState::default());
        let d = ledger
            .decide(&a, &mut want(12), &mut sa, now, None)
            .await
            .decision;
        assert_eq!(d.desired_replicas, 12, "no global budget: no cap");
        ledger.configure(
            Some(GlobalBudget {
                per_hour: Some(10.0),
                per_month: None,
            }),
            &[],
        );
        let d = ledger
            .decide(&a, &mut want(12), &mut sa, now, None)
            .await
            .decision;
        assert_eq!(d.desired_replicas, 12, "{}", d.summary());
        // b gets what a leaves: (10 − 6) / 0.5 = 8.
        let d = ledger
            .decide(&b, &mut want(12), &mut sb, now, None)
            .await
            .decision;
        assert_eq!(d.desired_replicas, 8, "{}", d.summary());
        assert!(
            d.summary().contains("global budget leaves 4.00/h"),
            "{}",
            d.summary()
        );
        // Once a is removed (stopped), b may take it all.
        ledger.remove("a").await;
        let d = ledger
            .decide(&b, &mut want(8), &mut sb, now, None)
            .await
            .decision;
        assert!(d.desired_replicas > 8, "{}", d.summary());
    }

    /// An action that did not happen (dry run, failed call) takes no budget from the others:
    /// the entry is settled to the count that runs.
    #[tokio::test]
    async fn an_action_that_did_not_happen_leaves_the_budget_to_the_others() {
        let ledger = Ledger::default();
        ledger.configure(
            Some(GlobalBudget {
                per_hour: Some(7.5),
                per_month: None,
            }),
            &[],
        );
        let (a, b) = (group("a"), group("b"));
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let (mut sa, mut sb) = (GroupState::default(), GroupState::default());
        // a asks for 6 (3/h, the rate limit from 2) but its action fails: 2 (1/h) still run.
        let d = ledger
            .decide(&a, &mut want(2), &mut sa, now, None)
            .await
            .decision;
        assert_eq!(d.desired_replicas, 6, "{}", d.summary());
        ledger.settle(&a, 2, now, None).await.unwrap();
        // b gets 7.5 − 1 = 6.5/h: its 12 replicas (6/h) fit. Without the settle it would get
        // 7.5 − 3 = 4.5/h, 9 replicas.
        let d = ledger
            .decide(&b, &mut want(12), &mut sb, now, None)
            .await
            .decision;
        assert_eq!(d.desired_replicas, 12, "{}", d.summary());
    }

    /// A panic while the ledger's lock is held poisons it; deciding as if there were no
    /// global budget could then overspend, so priced groups fail closed: hold or scale down.
    #[tokio::test]
    async fn a_poisoned_ledger_fails_closed() {
        let ledger = Ledger::default();
        ledger.configure(
            Some(GlobalBudget {
                per_hour: Some(100.0),
                per_month: None,
            }),
            &[],
        );
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
        let d = ledger
            .decide(&a, &mut obs(4, 12.0), &mut s, now, None)
            .await
            .decision;
        assert_eq!(d.desired_replicas, 4, "{}", d.summary());
        assert!(d.summary().contains(FAIL_CLOSED), "{}", d.summary());
        // Scaling down stays allowed.
        let mut s = GroupState::default();
        let d = ledger
            .decide(&a, &mut obs(10, 2.0), &mut s, now, None)
            .await
            .decision;
        assert!(d.desired_replicas < 10, "{}", d.summary());
        // A reload resets the ledger: the global cap (100/h, far away) applies again.
        ledger.configure(
            Some(GlobalBudget {
                per_hour: Some(100.0),
                per_month: None,
            }),
            &[],
        );
        let mut s = GroupState::default();
        let d = ledger
            .decide(&a, &mut obs(4, 12.0), &mut s, now, None)
            .await
            .decision;
        assert!(d.desired_replicas > 4, "{}", d.summary());
    }

    fn per_hour(h: f64) -> Option<GlobalBudget> {
        Some(GlobalBudget {
            per_hour: Some(h),
            per_month: None,
        })
    }

    async fn sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = scalepilot_store::SqliteStore::open(&dir.path().join("s.db"))
            .await
            .unwrap();
        (dir, Arc::new(store))
    }

    /// Two daemons (two ledgers on one store): the second daemon's group gets what the
    /// first one's left, as within one daemon.
    #[tokio::test]
    async fn daemons_share_the_ledger_through_the_store() {
        let (_dir, store) = sqlite().await;
        let (a, b) = (group("a"), group("b"));
        let both = [a.clone(), b.clone()];
        let (one, two) = (
            Ledger::in_store(store.clone()),
            Ledger::in_store(store.clone()),
        );
        one.configure(per_hour(10.0), &both);
        two.configure(per_hour(10.0), &both);
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let (mut sa, mut sb) = (GroupState::default(), GroupState::default());
        let d = one.decide(&a, &mut want(12), &mut sa, now, None).await;
        assert!(d.error.is_none());
        assert_eq!(d.decision.desired_replicas, 12, "{}", d.decision.summary());
        let d = two.decide(&b, &mut want(12), &mut sb, now, None).await;
        assert_eq!(d.decision.desired_replicas, 8, "{}", d.decision.summary());
        // a's daemon settles to 2 running (its action failed): b may grow into it.
        one.settle(&a, 2, now, None).await.unwrap();
        let d = two.decide(&b, &mut want(8), &mut sb, now, None).await;
        assert_eq!(d.decision.desired_replicas, 12, "{}", d.decision.summary());
        let (_, entries) = store.budget_entries().await.unwrap();
        let rates: Vec<(String, f64)> = entries
            .into_iter()
            .map(|e| (e.group, e.rate_per_hour))
            .collect();
        assert_eq!(rates, [("a".to_string(), 1.0), ("b".to_string(), 6.0)]);
    }

    /// A hand-over keeps the entry (the instances still cost money); leaving the config
    /// deletes it, and entries of groups not in the config are not counted meanwhile.
    #[tokio::test]
    async fn entries_stay_until_the_group_leaves_the_config() {
        let (_dir, store) = sqlite().await;
        let (a, b) = (group("a"), group("b"));
        let (one, two) = (
            Ledger::in_store(store.clone()),
            Ledger::in_store(store.clone()),
        );
        for l in [&one, &two] {
            l.configure(per_hour(10.0), &[a.clone(), b.clone()]);
        }
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut sa = GroupState::default();
        let d = one.decide(&a, &mut want(12), &mut sa, now, None).await;
        assert_eq!(d.decision.desired_replicas, 12);
        // a's lease went to daemon two: stopped at one, still counted.
        one.remove("a").await;
        assert_eq!(store.budget_entries().await.unwrap().1.len(), 1);
        let mut sb = GroupState::default();
        let d = one.decide(&b, &mut want(12), &mut sb, now, None).await;
        assert_eq!(d.decision.desired_replicas, 8, "{}", d.decision.summary());
        // Two evaluates a (holding at 12: its entry overwritten).
        let d = two.decide(&a, &mut want(12), &mut sa, now, None).await;
        assert_eq!(d.decision.desired_replicas, 12, "{}", d.decision.summary());
        // a leaves the config: not counted at once (a daemon still on the old config may
        // still write it), deleted once the daemon that ran it stopped it.
        for l in [&one, &two] {
            l.configure(per_hour(10.0), std::slice::from_ref(&b));
        }
        let d = one.decide(&b, &mut want(8), &mut sb, now, None).await;
        assert_eq!(d.decision.desired_replicas, 12, "{}", d.decision.summary());
        one.remove("a").await;
        assert_eq!(
            store.budget_entries().await.unwrap().1.len(),
            2,
            "one never ran a since"
        );
        two.remove("a").await;
        let left: Vec<String> = store
            .budget_entries()
            .await
            .unwrap()
            .1
            .into_iter()
            .map(|e| e.group)
            .collect();
        assert_eq!(left, ["b"]);
    }

    /// A write under a lease the store no longer grants fails closed: no scale-up, the
    /// error says why, nothing written.
    #[tokio::test]
    async fn a_fenced_ledger_write_fails_closed() {
        let (_dir, store) = sqlite().await;
        let a = group("a");
        let ledger = Ledger::in_store(store.clone());
        ledger.configure(per_hour(100.0), std::slice::from_ref(&a));
        let stale = Fence {
            holder: "gone".into(),
            epoch: 7,
        };
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut s = GroupState::default();
        let d = ledger
            .decide(&a, &mut want(4), &mut s, now, Some(&stale))
            .await;
        assert!(
            matches!(d.error, Some(LedgerError::Store(StoreError::Fenced { .. }))),
            "{:?}",
            d.error
        );
        assert_eq!(d.decision.desired_replicas, 4, "{}", d.decision.summary());
        assert!(
            d.decision.summary().contains("no scale-up"),
            "{}",
            d.decision.summary()
        );
        assert!(store.budget_entries().await.unwrap().1.is_empty());
    }

    /// A priced group that has not decided yet runs at least its min: that much is kept
    /// for it, in memory as in the store.
    #[tokio::test]
    async fn a_group_not_yet_recorded_keeps_its_min() {
        let (a, b) = (group("a"), group("b"));
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let (_dir, store) = sqlite().await;
        for ledger in [Ledger::default(), Ledger::in_store(store)] {
            ledger.configure(per_hour(6.0), &[a.clone(), b.clone()]);
            let mut sa = GroupState::default();
            // 12 wanted (6/h) but b's 1 replica (0.5/h) is kept: (6 − 0.5) / 0.5 = 11.
            let d = ledger.decide(&a, &mut want(12), &mut sa, now, None).await;
            assert_eq!(d.decision.desired_replicas, 11, "{}", d.decision.summary());
        }
    }
}
