//! The status board: what the handle answers without asking the control loop (group
//! statuses, pauses, the global switch, loop lag, metrics).
//!
//! Groups publish their status here after each evaluation or manual action; the control loop
//! lays out the table (config order, enabled, lease, bounds) whenever the set of groups or
//! their running state changes. Readers take a read lock and clone `Arc`s, so an API polled a
//! thousand times a second never waits for the loop, nor the loop for it.
//!
//! Each status is one `Arc<GroupStatus>`, replaced (never edited) on update; its decision
//! record is the `Arc` the group itself keeps, so a group's decision JSON is held once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use jiff::Timestamp;
use scalepilot_core::config::Group;

use crate::handle::{Cooldowns, GroupStatus, Pause};
use crate::metrics::Metrics;

/// The statuses in config order, with an index by name.
#[derive(Default)]
struct Table {
    order: Vec<Arc<GroupStatus>>,
    index: HashMap<String, usize>,
}

/// How many seconds of loop lag are remembered (the largest is what `loop_lag_seconds` tells).
const LAG_WINDOW: usize = 60;

pub(crate) struct Board {
    table: RwLock<Table>,
    /// Pauses by group: kept across reloads while the group exists, lost at restart.
    paused: RwLock<HashMap<String, Pause>>,
    /// The global switch (see `EngineHandle::set_all_enabled`).
    all_enabled: AtomicBool,
    /// Per second of the last minute: (unix second, the largest lag seen in it).
    lag: Mutex<[(i64, f64); LAG_WINDOW]>,
    pub(crate) metrics: Arc<Metrics>,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            table: RwLock::default(),
            paused: RwLock::default(),
            all_enabled: AtomicBool::new(true),
            lag: Mutex::new([(i64::MIN, 0.0); LAG_WINDOW]),
            metrics: Arc::new(Metrics::new()),
        }
    }
}

/// What the control loop knows of a group when it lays out the table.
pub(crate) struct Layout<'a> {
    pub group: &'a Group,
    pub enabled: bool,
    pub lease: Option<crate::handle::LeaseStatus>,
}

impl Board {
    pub(crate) fn statuses(&self) -> Vec<Arc<GroupStatus>> {
        self.table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .order
            .clone()
    }

    pub(crate) fn status(&self, name: &str) -> Option<Arc<GroupStatus>> {
        let t = self.table.read().unwrap_or_else(|p| p.into_inner());
        t.index.get(name).map(|&i| t.order[i].clone())
    }

    /// Lay the table out for the config's groups, in its order, keeping what the groups
    /// published for those that stay. Groups gone lose their pause and metric series.
    pub(crate) fn layout<'a>(&self, groups: impl Iterator<Item = Layout<'a>>) {
        let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
        let mut order = Vec::new();
        let mut index = HashMap::new();
        let paused = self
            .paused
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for l in groups {
            let name = l.group.name.to_string();
            let pause = paused.get(&name).copied().unwrap_or_default();
            let previous = t.index.get(&name).map(|&i| &t.order[i]);
            // Most groups are as they were: kept as is, their decision JSON not copied.
            let same = previous.is_some_and(|p| {
                p.enabled == l.enabled
                    && p.lease == l.lease
                    && (p.min, p.max, p.dry_run) == (l.group.min, l.group.max, l.group.dry_run)
                    && p.paused == pause
            });
            let s = match previous {
                Some(p) if same => p.clone(),
                _ => {
                    let mut s =
                        previous.map_or_else(|| GroupStatus::new(&name), |p| GroupStatus::clone(p));
                    s.enabled = l.enabled;
                    s.lease = l.lease;
                    s.min = l.group.min;
                    s.max = l.group.max;
                    s.dry_run = l.group.dry_run;
                    s.paused = pause;
                    Arc::new(s)
                }
            };
            index.insert(name, order.len());
            order.push(s);
        }
        let gone: Vec<String> = t
            .index
            .keys()
            .filter(|n| !index.contains_key(*n))
            .cloned()
            .collect();
        t.order = order;
        t.index = index;
        drop(t);
        self.metrics.set_groups(self.table_len());
        if !gone.is_empty() {
            let mut p = self.paused.write().unwrap_or_else(|p| p.into_inner());
            for g in &gone {
                p.remove(g);
                self.metrics.forget_group(g);
            }
        }
    }

    fn table_len(&self) -> usize {
        self.table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .order
            .len()
    }

    /// Change one group's status (a no-op for a group not in the table: one removed since).
    pub(crate) fn update(&self, name: &str, f: impl FnOnce(&mut GroupStatus)) {
        let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
        let Some(&i) = t.index.get(name) else {
            return;
        };
        // Usually no reader holds the old status: it is reused, not copied.
        let placeholder = Arc::new(GroupStatus::new(name));
        let old = std::mem::replace(&mut t.order[i], placeholder);
        let mut s = Arc::unwrap_or_clone(old);
        f(&mut s);
        t.order[i] = Arc::new(s);
    }

    pub(crate) fn paused(&self, name: &str) -> Pause {
        let p = self.paused.read().unwrap_or_else(|p| p.into_inner());
        // Nothing paused (the usual case): no lookup.
        if p.is_empty() {
            return Pause::default();
        }
        p.get(name).copied().unwrap_or_default()
    }

    pub(crate) fn set_paused(&self, name: &str, pause: Pause) {
        {
            let mut p = self.paused.write().unwrap_or_else(|p| p.into_inner());
            if pause == Pause::default() {
                p.remove(name);
            } else {
                p.insert(name.to_string(), pause);
            }
        }
        self.update(name, |s| s.paused = pause);
    }

    pub(crate) fn all_enabled(&self) -> bool {
        self.all_enabled.load(Ordering::Relaxed)
    }

    pub(crate) fn set_all_enabled(&self, enabled: bool) {
        self.all_enabled.store(enabled, Ordering::Relaxed);
        self.metrics.set_enabled(enabled);
    }

    /// An evaluation started `seconds` after it was due.
    pub(crate) fn record_lag(&self, seconds: f64) {
        self.metrics.lag(seconds);
        let now = Timestamp::now().as_second();
        let mut lag = self.lag.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut lag[now.rem_euclid(LAG_WINDOW as i64) as usize];
        if slot.0 != now {
            *slot = (now, 0.0);
        }
        slot.1 = slot.1.max(seconds);
    }

    /// The largest lag seen in the last minute.
    pub(crate) fn loop_lag_seconds(&self) -> f64 {
        let now = Timestamp::now().as_second();
        let lag = self.lag.lock().unwrap_or_else(|p| p.into_inner());
        lag.iter()
            .filter(|(at, _)| *at > now - LAG_WINDOW as i64)
            .map(|(_, l)| *l)
            .fold(0.0, f64::max)
    }
}

impl GroupStatus {
    pub(crate) fn new(name: &str) -> GroupStatus {
        GroupStatus {
            name: name.to_string(),
            enabled: false,
            running: false,
            last_evaluation: None,
            current: None,
            desired: None,
            consecutive_errors: 0,
            last_error: None,
            lease: None,
            ready: None,
            min: 0,
            max: 0,
            dry_run: false,
            paused: Pause::default(),
            last_decision: None,
            cooldowns: Cooldowns {
                scale_out_until: None,
                scale_in_until: None,
            },
        }
    }
}

/// A group's cooldowns as of `now`: a direction cools down until the later of its own
/// cooldown and the general one.
pub(crate) fn cooldowns(c: &scalepilot_core::state::Cooldowns, now: Timestamp) -> Cooldowns {
    let later = |a: Option<Timestamp>, b: Option<Timestamp>| {
        [a, b].into_iter().flatten().filter(|t| *t > now).max()
    };
    Cooldowns {
        scale_out_until: later(c.scale_up_until, c.any_until),
        scale_in_until: later(c.scale_down_until, c.any_until),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(names: &[&str]) -> Vec<Group> {
        let mut text = String::from("groups:\n");
        for n in names {
            text.push_str(&format!(
                "  - {{name: {n}, min: 1, max: 5, source: {{kind: static, values: {{r: 1}}}}, target: {{kind: command, command: 'true'}}, strategies: [{{kind: target_tracking, metric: r, target_per_replica: 1}}]}}\n"
            ));
        }
        scalepilot_core::config::parse(&text, "t.yaml")
            .unwrap()
            .groups
    }

    fn lay(board: &Board, groups: &[Group]) {
        board.layout(groups.iter().map(|g| Layout {
            group: g,
            enabled: true,
            lease: None,
        }));
    }

    /// A pause lasts while its group is in the config: a layout without the group drops it,
    /// so the group added back is not paused; the other groups keep theirs.
    #[test]
    fn a_pause_is_dropped_with_its_group() {
        let board = Board::default();
        lay(&board, &groups(&["a", "b"]));
        let out = Pause {
            scale_in: false,
            scale_out: true,
        };
        board.set_paused("a", out);
        board.set_paused("b", out);
        lay(&board, &groups(&["b"]));
        assert!(board.status("a").is_none());
        board.update("a", |s| s.running = true);
        lay(&board, &groups(&["a", "b"]));
        assert_eq!(board.paused("a"), Pause::default());
        assert_eq!(board.status("a").unwrap().paused, Pause::default());
        assert!(!board.status("a").unwrap().running);
        assert_eq!(board.paused("b"), out);
        assert_eq!(board.status("b").unwrap().paused, out);
    }

    /// A status unchanged by a layout is the same `Arc` (its decision JSON is not copied);
    /// one whose bounds changed is new and shows them.
    #[test]
    fn a_layout_reuses_unchanged_statuses() {
        let board = Board::default();
        let mut gs = groups(&["a", "b"]);
        lay(&board, &gs);
        board.update("a", |s| {
            s.last_decision = Some(serde_json::json!({"big": 1}))
        });
        let (a, b) = (board.status("a").unwrap(), board.status("b").unwrap());
        gs[1].max = 9;
        lay(&board, &gs);
        assert!(Arc::ptr_eq(&a, &board.status("a").unwrap()));
        let b2 = board.status("b").unwrap();
        assert!(!Arc::ptr_eq(&b, &b2));
        assert_eq!(b2.max, 9);
        let names: Vec<String> = board.statuses().iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn the_loop_lag_is_the_largest_of_the_last_minute() {
        let board = Board::default();
        assert_eq!(board.loop_lag_seconds(), 0.0);
        board.record_lag(0.5);
        board.record_lag(2.0);
        board.record_lag(1.0);
        assert_eq!(board.loop_lag_seconds(), 2.0);
    }
}
