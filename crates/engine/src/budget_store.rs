//! The global budget's ledger kept in the store (`engine.ha: true`): the groups are spread
//! over several daemons, so no process sees every group's rate and an in-memory ledger per
//! daemon would let each daemon spend the whole budget.
//!
//! One entry per priced group (its rate at its current count, its spend this month) and one
//! version counter. A priced group's evaluation reads every entry and the version, decides
//! with what the others leave it, then writes its own entry only if the version did not
//! move (compare-and-swap), under its lease's fence in the same transaction. When another
//! group wrote in between, what that group took may change this one's share: it reads and
//! decides again, at most [`ATTEMPTS`] times, then fails closed (holds, may scale down).
//! A decision that does not raise the group's rate (a hold, a scale-down) takes no money
//! from anyone, so it is written without the version check and never races.
//! Entries of groups not in this daemon's config (removed, disabled, unpriced) are not
//! counted. An entry outlives a lease hand-over: the group's instances still cost money,
//! and the new holder overwrites it at its first evaluation.

use std::time::Duration;

use jiff::Timestamp;
use scalepilot_core::config::Group;
use scalepilot_core::state::GroupState;
use scalepilot_core::{Decision, Observation};
use scalepilot_store::{BudgetEntry, Fence, Store, ms};

use crate::budget::{Decided, Entry, Ledger, LedgerError, entry, fail_closed, shared};

/// Reads and compare-and-swaps tried before a contended group fails closed. Each lost race
/// means another group's write landed between this one's read and write (a few
/// milliseconds): several in a row only happen with many priced groups deciding at once.
pub(crate) const ATTEMPTS: u32 = 5;

/// Longest random pause before trying again, so groups that collided do not collide again.
const BACKOFF_MAX_MS: u64 = 50;

impl Ledger {
    pub(crate) async fn decide_in_store(
        &self,
        store: &dyn Store,
        group: &Group,
        obs: &mut Observation,
        state: &mut GroupState,
        now: Timestamp,
        fence: Option<&Fence>,
    ) -> Decided {
        let price = group.cost.as_ref().map_or(0.0, |c| c.pricing.price_at(now));
        let global = match self.inner.lock() {
            Ok(i) => i.global,
            Err(_) => return closed(group, obs, state, now, LedgerError::Poisoned),
        };
        let Some(global) = global else {
            // No global budget: nothing to cap, so nothing to read. The entry is kept up to
            // date (written when the rate or month changed) so a reload that adds a budget
            // finds every group's rate at once.
            let d = scalepilot_core::decide(group, obs, state, now);
            let e = entry(f64::from(d.desired_replicas) * price, state);
            let error = self
                .write_if_changed(store, group, e, now, fence)
                .await
                .err();
            return Decided { decision: d, error };
        };
        for attempt in 1..=ATTEMPTS {
            let (version, entries) = match store.budget_entries().await {
                Ok(read) => read,
                Err(e) => return closed(group, obs, state, now, e.into()),
            };
            let others = match self.counted(&group.name, &entries, now) {
                Some(o) => o,
                None => return closed(group, obs, state, now, LedgerError::Poisoned),
            };
            // Decided on a copy: only the attempt that wins keeps its scale events.
            let mut trial = state.clone();
            obs.shared_budget = Some(shared(others.iter(), &global, &trial));
            let d = scalepilot_core::decide(group, obs, &mut trial, now);
            let mine = entry(f64::from(d.desired_replicas) * price, &trial);
            let row = row(&group.name, &mine, now);
            // Holding or shrinking takes no money from anyone (the others decided against
            // at least this much): written whatever the version, so steady groups never
            // race. Only a growing rate needs the compare-and-swap.
            let recorded = entries
                .iter()
                .find(|e| e.group == *group.name)
                .map(|e| e.rate_per_hour);
            let written = match recorded {
                Some(r) if mine.rate <= r => {
                    store.settle_budget_entry(&row, fence).await.map(|()| true)
                }
                _ => store.put_budget_entry(&row, version, fence).await,
            };
            match written {
                Ok(true) => {
                    *state = trial;
                    self.remember(&group.name, mine);
                    return Decided {
                        decision: d,
                        error: None,
                    };
                }
                Ok(false) => {
                    tracing::debug!(group = %group.name, attempt, "budget ledger: lost the race, deciding again");
                    let pause = rand::random::<u64>() % (BACKOFF_MAX_MS * u64::from(attempt));
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(e) => return closed(group, obs, state, now, e.into()),
            }
        }
        closed(group, obs, state, now, LedgerError::Contended(ATTEMPTS))
    }

    /// Write the settled entry through, unconditionally (a lower rate than decided never
    /// lets anyone overspend).
    pub(crate) async fn settle_in_store(
        &self,
        store: &dyn Store,
        group: &Group,
        settled: Entry,
        now: Timestamp,
        fence: Option<&Fence>,
    ) -> Result<(), LedgerError> {
        let r = store
            .settle_budget_entry(&row(&group.name, &settled, now), fence)
            .await;
        if r.is_err() {
            // Not written: the next evaluation writes again.
            if let Ok(mut i) = self.inner.lock() {
                i.groups.remove(&*group.name);
            }
        }
        Ok(r?)
    }

    /// What [`Ledger::decide`] would decide, reading the store's entries, writing nothing.
    pub(crate) async fn preview_in_store(
        &self,
        store: &dyn Store,
        group: &Group,
        obs: &mut Observation,
        state: &mut GroupState,
        now: Timestamp,
    ) -> Decision {
        let global = match self.inner.lock() {
            Ok(i) => i.global,
            Err(_) => return closed(group, obs, state, now, LedgerError::Poisoned).decision,
        };
        let Some(global) = global else {
            return scalepilot_core::decide(group, obs, state, now);
        };
        let others = match store.budget_entries().await {
            Ok((_, entries)) => self.counted(&group.name, &entries, now),
            Err(e) => return closed(group, obs, state, now, e.into()).decision,
        };
        let Some(others) = others else {
            return closed(group, obs, state, now, LedgerError::Poisoned).decision;
        };
        obs.shared_budget = Some(shared(others.iter(), &global, state));
        scalepilot_core::decide(group, obs, state, now)
    }

    /// The entries that count against `group`: those of the other enabled priced groups of
    /// the current config, and the floor of those that have none yet. `None` when the
    /// ledger's lock is poisoned.
    fn counted(&self, group: &str, entries: &[BudgetEntry], now: Timestamp) -> Option<Vec<Entry>> {
        let i = self.inner.lock().ok()?;
        let entries = entries.iter().map(|e| {
            let entry = Entry {
                rate: e.rate_per_hour,
                month: e.month.clone(),
                spent: e.spent,
            };
            (e.group.as_str(), entry)
        });
        Some(i.others(group, entries, true, now))
    }

    fn remember(&self, group: &str, e: Entry) {
        if let Ok(mut i) = self.inner.lock() {
            i.groups.insert(group.to_string(), e);
        }
    }

    /// Without a global budget: write the entry when its rate or month changed since this
    /// daemon last wrote it (one write per change, none per evaluation).
    async fn write_if_changed(
        &self,
        store: &dyn Store,
        group: &Group,
        e: Entry,
        now: Timestamp,
        fence: Option<&Fence>,
    ) -> Result<(), LedgerError> {
        let same = self.inner.lock().is_ok_and(|i| {
            i.groups
                .get(&*group.name)
                .is_some_and(|old| old.rate == e.rate && old.month == e.month)
        });
        if same {
            return Ok(());
        }
        store
            .settle_budget_entry(&row(&group.name, &e, now), fence)
            .await?;
        self.remember(&group.name, e);
        Ok(())
    }
}

fn row(group: &str, e: &Entry, now: Timestamp) -> BudgetEntry {
    BudgetEntry {
        group: group.to_string(),
        rate_per_hour: e.rate,
        month: e.month.clone(),
        spent: e.spent,
        updated_ms: ms(now),
    }
}

/// Fail closed (see [`fail_closed`]), saying why.
fn closed(
    group: &Group,
    obs: &mut Observation,
    state: &mut GroupState,
    now: Timestamp,
    error: LedgerError,
) -> Decided {
    let why = format!("{error}: treated as exhausted, no scale-up");
    Decided {
        decision: fail_closed(group, obs, state, now, &why),
        error: Some(error),
    }
}
