//! Several daemons on one database (`engine.ha: true`): each group is evaluated by one live
//! daemon at a time, under a lease with a fencing epoch.
//!
//! A coordinator task renews, every third of the lease's length: a heartbeat (the live
//! daemons), the share of the groups that rendezvous hashing gives this daemon, the leases
//! on that share (one batch). It tells the engine which groups it holds; the engine runs
//! those and stops the others. Each group's writes that lead to an action (the intent with
//! its state, the state) carry the lease's [`Fence`], checked by the store in the same
//! transaction, and a group acts only before its local deadline: counted from an instant
//! taken *before* the acquire request, so no clock needs to agree with the database's.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use scalepilot_store::{Fence, StoreError, StoredState};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::group::GroupRuntime;
use scalepilot_store::Store;

/// One lease as this daemon holds it.
#[derive(Debug, Clone)]
struct Held {
    fence: Fence,
    /// Past this instant the lease may have lapsed on the store's clock: do not act.
    deadline: Instant,
}

/// The leases this daemon holds, shared by the coordinator (writes) and the group tasks
/// (read before acting).
#[derive(Debug, Clone, Default)]
pub(crate) struct Leases {
    held: Arc<Mutex<HashMap<String, Held>>>,
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fence of `group` while its lease is held and its local deadline not passed.
    pub(crate) fn fence(&self, group: &str) -> Option<Fence> {
        let held = self.lock();
        let h = held.get(group)?;
        (Instant::now() < h.deadline).then(|| h.fence.clone())
    }

    /// Whether `fence` is still the lease held on `group` (before its deadline).
    pub(crate) fn still(&self, group: &str, fence: &Fence) -> bool {
        self.fence(group).as_ref() == Some(fence)
    }

    /// The store refused a write under `group`'s lease: it is not ours any more.
    pub(crate) fn lost(&self, group: &str) {
        self.lock().remove(group);
    }

    /// The held lease of `group`, for status (even past its deadline).
    pub(crate) fn status(&self, group: &str) -> Option<Fence> {
        self.lock().get(group).map(|h| h.fence.clone())
    }

    /// Hold `fence` on `group` for `ttl` from now, as a renewal would (tests).
    #[cfg(test)]
    pub(crate) fn hold(&self, group: &str, fence: Fence, ttl: Duration) {
        let deadline = Instant::now() + ttl;
        self.lock()
            .insert(group.to_string(), Held { fence, deadline });
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

/// This daemon's identity among the others: host name, PID and the process's start time.
pub(crate) fn daemon_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let host = if host.is_empty() {
        "localhost".to_string()
    } else {
        host
    };
    format!("{host}:{}", crate::group::owner_id())
}

/// A stable 64-bit hash (FNV-1a, then a finalizer so names that differ in one byte spread):
/// every daemon, of any build, computes the same assignment.
fn weight(group: &str, daemon: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in group.bytes().chain([0xff]).chain(daemon.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64's finalizer.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The live daemon a group belongs to: the one with the highest weight (rendezvous hashing:
/// an even spread, and a join or leave moves only the groups that go to or come from it).
pub(crate) fn owner<'a>(group: &str, live: &'a [String]) -> Option<&'a str> {
    live.iter()
        .max_by_key(|d| (weight(group, d), d.as_str()))
        .map(String::as_str)
}

/// What the coordinator starts with: the store, the lease's length, where holdings go.
type Start = (
    Arc<dyn Store>,
    Duration,
    mpsc::UnboundedSender<BTreeSet<String>>,
);

/// The coordinator as the engine holds it.
pub(crate) struct Ha {
    pub id: String,
    pub leases: Leases,
    /// The groups this daemon may run (enabled ones), for the coordinator to divide.
    pub groups: watch::Sender<Vec<String>>,
    /// Which groups are held, each time it changes.
    pub holdings: mpsc::UnboundedReceiver<BTreeSet<String>>,
    /// The last holdings received.
    pub held: BTreeSet<String>,
    task: Option<JoinHandle<()>>,
    /// What [`Ha::spawn`] starts the coordinator with.
    pending: Option<Start>,
    ttl: Duration,
}

impl Ha {
    /// The coordinator's state; it starts renewing at [`Ha::spawn`] (`run` only: `once`
    /// takes one lease per group itself).
    pub(crate) fn new(store: Arc<dyn Store>, ttl: Duration) -> Ha {
        let (groups, _) = watch::channel(Vec::new());
        let (tx, holdings) = mpsc::unbounded_channel();
        Ha {
            id: daemon_id(),
            leases: Leases::default(),
            groups,
            holdings,
            held: BTreeSet::new(),
            task: None,
            pending: Some((store, ttl, tx)),
            ttl,
        }
    }

    pub(crate) fn spawn(&mut self) {
        let Some((store, ttl, tx)) = self.pending.take() else {
            return;
        };
        tracing::info!(daemon = %self.id, "ha: leases of {ttl:?}, renewed every {:?}", ttl / 3);
        self.task = Some(tokio::spawn(coordinate(
            store,
            self.id.clone(),
            ttl,
            self.groups.subscribe(),
            self.leases.clone(),
            tx,
        )));
    }

    /// Stop renewing (the engine is stopping); [`leave`] ends the leases once the groups
    /// stopped.
    pub(crate) fn stop(&self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }

    /// `once`: take `group`'s lease for one evaluation. False when another daemon holds it.
    pub(crate) async fn take_once(
        &self,
        store: &dyn Store,
        group: &str,
    ) -> Result<bool, StoreError> {
        let sent = Instant::now();
        let granted = store
            .acquire_leases(&self.id, &[group.to_string()], self.ttl)
            .await?;
        let Some(l) = granted.into_iter().next() else {
            return Ok(false);
        };
        self.leases.lock().insert(
            group.to_string(),
            Held {
                fence: l.fence(),
                deadline: sent + self.ttl.saturating_sub(margin(self.ttl)),
            },
        );
        Ok(true)
    }

    /// `once`: the evaluation is over; others may take the group at once.
    pub(crate) async fn release_once(&self, store: &dyn Store, group: &str) {
        self.leases.lock().remove(group);
        release(store, &self.id, &self.leases, group).await;
    }

    pub(crate) fn publish(&self, groups: Vec<String>) {
        self.groups.send_if_modified(|g| {
            let changed = *g != groups;
            *g = groups;
            changed
        });
    }
}

/// The next change of holdings (never, without HA).
pub(crate) async fn next(ha: &mut Option<Ha>) -> Option<BTreeSet<String>> {
    match ha {
        // A coordinator that ended (stopping) sends nothing more: never a busy loop.
        Some(h) => match h.holdings.recv().await {
            Some(held) => Some(held),
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// The engine stopped: this daemon's heartbeat and leases end now, so the others take its
/// groups at their next renewal instead of waiting for the leases to lapse.
pub(crate) async fn leave(store: &dyn Store, id: &str, leases: &Leases) {
    leases.clear();
    match store.leave(id).await {
        Ok(()) => tracing::info!("ha: left; the other daemons take over the groups"),
        Err(e) => {
            tracing::warn!(
                "ha: cannot leave ({e}): the other daemons take over once the leases lapse"
            )
        }
    }
}

/// Safety margin cut from each lease's local deadline (timer and scheduling delays).
fn margin(ttl: Duration) -> Duration {
    ttl / 5
}

/// The coordinator: renew every third of the lease, until aborted.
async fn coordinate(
    store: Arc<dyn Store>,
    id: String,
    ttl: Duration,
    groups: watch::Receiver<Vec<String>>,
    leases: Leases,
    holdings: mpsc::UnboundedSender<BTreeSet<String>>,
) {
    let every = ttl / 3;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut held: BTreeSet<String> = BTreeSet::new();
    // Whether the last round failed and the leases ran out (logged once per outage).
    let mut expired = false;
    let mut failing = false;
    let mut daemons = 0usize;
    loop {
        tick.tick().await;
        let all = groups.borrow().clone();
        let sent = Instant::now();
        // A database that hangs is down too: the round may not outlast the renewal period.
        let round = match tokio::time::timeout(every, renew(store.as_ref(), &id, ttl, &all)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {every:?}")),
        };
        match round {
            Ok((live, granted)) => {
                if failing {
                    tracing::info!("ha: the database answers again: renewing leases");
                    failing = false;
                }
                if expired {
                    tracing::info!("ha: leases renewed: acting again");
                    expired = false;
                }
                let deadline = sent + ttl.saturating_sub(margin(ttl));
                let now: BTreeSet<String> = granted.iter().map(|l| l.group.clone()).collect();
                {
                    let mut map = leases.lock();
                    map.retain(|g, _| now.contains(g));
                    for l in &granted {
                        map.insert(
                            l.group.clone(),
                            Held {
                                fence: l.fence(),
                                deadline,
                            },
                        );
                    }
                }
                if now != held || live != daemons {
                    let gained = now.difference(&held).count();
                    let lost = held.difference(&now).count();
                    if gained > 0 || lost > 0 || live != daemons {
                        tracing::info!(
                            "ha: {live} live daemon(s); leases +{gained} gained, -{lost} lost; holding {} of {} group(s)",
                            now.len(),
                            all.len()
                        );
                    }
                    daemons = live;
                }
                if now != held {
                    held = now;
                    let _ = holdings.send(held.clone());
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(
                        "ha: cannot renew leases ({e}): acting until they run out, then stopping"
                    );
                    failing = true;
                }
                // Past every local deadline: nothing may act any more.
                let all_expired = leases.lock().values().all(|h| h.deadline <= Instant::now());
                if all_expired && !expired {
                    expired = true;
                    tracing::error!("ha: leases expired: not acting until the database is back");
                    leases.clear();
                    if !held.is_empty() {
                        held.clear();
                        let _ = holdings.send(held.clone());
                    }
                }
            }
        }
    }
}

/// One round: heartbeat, this daemon's share, acquire it, release what it should no longer
/// hold. Returns the number of live daemons and the leases granted.
async fn renew(
    store: &dyn Store,
    id: &str,
    ttl: Duration,
    all: &[String],
) -> Result<(usize, Vec<scalepilot_store::Lease>), StoreError> {
    let live = store.heartbeat(id, ttl).await?;
    let mine: Vec<String> = all
        .iter()
        .filter(|g| owner(g, &live) == Some(id))
        .cloned()
        .collect();
    let granted = if mine.is_empty() {
        Vec::new()
    } else {
        store.acquire_leases(id, &mine, ttl).await?
    };
    // Groups no longer ours are not renewed: the engine stops them, then releases each
    // lease once its task ended (see [`release`]), so a group never runs on two daemons.
    Ok((live.len(), granted))
}

/// A group this daemon no longer runs: release its lease (unless it was taken again
/// meanwhile) so its new owner need not wait for the lease to lapse.
pub(crate) async fn release(store: &dyn Store, id: &str, leases: &Leases, group: &str) {
    if leases.status(group).is_some() {
        return;
    }
    if let Err(e) = store.release_leases(id, &[group.to_string()]).await {
        tracing::debug!(
            group,
            "ha: cannot release the lease ({e}): it lapses instead"
        );
    }
}

impl GroupRuntime {
    /// The fence to write under, or why this group must not evaluate now. `Ok(None)` when
    /// not in HA mode.
    pub(crate) fn lease(&self) -> Result<Option<Fence>, String> {
        match &self.ha {
            None => Ok(None),
            Some(l) => l
                .fence(&self.group.name)
                .map(Some)
                .ok_or_else(|| "this daemon does not hold the group's lease: not acting".into()),
        }
    }

    /// Whether the lease written under is still held (before calling the target).
    pub(crate) fn lease_holds(&self, fence: Option<&Fence>) -> bool {
        match (&self.ha, fence) {
            (Some(l), Some(f)) => l.still(&self.group.name, f),
            _ => true,
        }
    }

    /// Note a write the store refused under the lease: stop acting until it is held again.
    pub(crate) fn fenced(&self, e: &StoreError) {
        if let (Some(l), StoreError::Fenced { .. }) = (&self.ha, e) {
            tracing::warn!(group = %self.group.name, "ha: {e}");
            l.lost(&self.group.name);
        }
    }

    /// Save the group's state: fenced in HA mode.
    pub(crate) async fn put_state(
        &self,
        state: &StoredState,
        decision: Option<&serde_json::Value>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let name = &self.group.name;
        let r = match self.lease() {
            Ok(None) => self.store.save_state(name, state, decision, at).await,
            Ok(Some(f)) => {
                self.store
                    .save_state_fenced(name, state, decision, at, &f)
                    .await
            }
            Err(_) => match self.ha.as_ref().and_then(|l| l.status(name)) {
                // Past the local deadline the store decides: the lease may still hold.
                Some(f) => {
                    self.store
                        .save_state_fenced(name, state, decision, at, &f)
                        .await
                }
                None => Err(StoreError::Fenced {
                    group: name.to_string(),
                    holder: String::new(),
                    epoch: 0,
                }),
            },
        };
        if let Err(e) = &r {
            self.fenced(e);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemons(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("host{i}:1{i}:99")).collect()
    }

    #[test]
    fn groups_spread_evenly_and_move_little() {
        let groups: Vec<String> = (0..3000).map(|i| format!("g{i}")).collect();
        let three = daemons(3);
        let mut counts = HashMap::new();
        for g in &groups {
            *counts.entry(owner(g, &three).unwrap()).or_insert(0) += 1;
        }
        for c in counts.values() {
            assert!((800..=1200).contains(c), "{counts:?}");
        }
        // A fourth joins: only groups that go to it move.
        let four = daemons(4);
        for g in &groups {
            let (a, b) = (owner(g, &three).unwrap(), owner(g, &four).unwrap());
            assert!(a == b || b == four[3], "{g} moved from {a} to {b}");
        }
        // One leaves: only its groups move.
        let two: Vec<String> = vec![three[0].clone(), three[2].clone()];
        for g in &groups {
            let (a, b) = (owner(g, &three).unwrap(), owner(g, &two).unwrap());
            assert!(a == b || a == three[1], "{g} moved from {a} to {b}");
        }
    }

    async fn next_holdings(rx: &mut mpsc::UnboundedReceiver<BTreeSet<String>>) -> BTreeSet<String> {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no change of holdings within 10 s")
            .expect("the coordinator ended")
    }

    /// The database down (locked by another connection, so every write waits): the daemon
    /// keeps its leases until their local deadline, then stops every group; it takes them
    /// again, at new epochs, once the database answers.
    #[tokio::test]
    async fn leases_run_out_while_the_database_is_down_and_come_back_with_it() {
        use sqlx::Connection as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.db");
        let store: Arc<dyn Store> =
            Arc::new(scalepilot_store::SqliteStore::open(&file).await.unwrap());
        let leases = Leases::default();
        let (groups_tx, groups) = watch::channel(vec!["a".to_string(), "b".to_string()]);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let ttl = Duration::from_secs(1);
        let task = tokio::spawn(coordinate(
            store.clone(),
            "d1".into(),
            ttl,
            groups,
            leases.clone(),
            tx,
        ));
        let both: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        assert_eq!(next_holdings(&mut rx).await, both);
        let before = leases.fence("a").expect("held");
        // The database stops answering writes.
        let url = format!("sqlite://{}", file.display());
        let mut lock = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut lock)
            .await
            .unwrap();
        let stopped = std::time::Instant::now();
        assert!(next_holdings(&mut rx).await.is_empty());
        // Not before the lease's local deadline could have passed, and nothing may act.
        assert!(
            stopped.elapsed() >= ttl - margin(ttl) - ttl / 3,
            "{:?}",
            stopped.elapsed()
        );
        assert!(leases.fence("a").is_none());
        // Back: the groups are taken again, at a new epoch.
        sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
        assert_eq!(next_holdings(&mut rx).await, both);
        let after = leases.fence("a").expect("held again");
        assert!(after.epoch > before.epoch, "{before:?} → {after:?}");
        task.abort();
        drop(groups_tx);
    }

    #[test]
    fn the_weight_is_stable() {
        // Fixed across builds and versions: daemons of different releases agree.
        assert_eq!(weight("web", "a"), weight("web", "a"));
        assert_ne!(weight("web", "a"), weight("web", "b"));
        assert_eq!(owner("x", &[]), None);
    }
}
