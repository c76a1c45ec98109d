//! Several daemons on one database (`engine.ha: true`): each group is evaluated by one
//! live daemon at a time, under a lease with a fencing epoch.
//!
//! Leases are session-based (the etcd/Chubby model): a daemon's heartbeat row in the store
//! is its session, and each of its leases lives while that session does and it was not
//! released. A coordinator task, every third of the session's length, sends one heartbeat
//! (which alone renews every lease this daemon holds: O(1) writes per round, whatever the
//! number of groups), computes the share of the groups that rendezvous hashing gives this
//! daemon, takes the leases of that share it does not hold yet (in chunks, within a budget,
//! so a big start never delays the next heartbeat), and releases the leases it holds but no
//! longer runs. It tells the engine which groups it holds; the engine runs those and stops
//! the others. Each group's writes that lead to an action (the intent with its state, the
//! state) carry the lease's [`Fence`], checked by the store in the same transaction, and a
//! group acts only before the session's local deadline: counted from an instant taken
//! *before* the request that renewed the session, so no clock needs to agree with the
//! database's.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use scalepilot_store::{Fence, StoreError, StoredState};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::group::GroupRuntime;
use crate::handle::HaStatus;
use scalepilot_store::Store;

/// Groups per `acquire_leases` call: one call is one transaction; with a timeout each, a
/// slow database costs the round only the chunk in flight, not the leases already held.
const ACQUIRE_CHUNK: usize = 2000;
/// Groups per `release_leases` call.
const RELEASE_CHUNK: usize = 5000;

#[derive(Debug, Default)]
struct Inner {
    /// The leases held, by group.
    held: HashMap<String, Fence>,
    /// Past this instant the session may have lapsed on the store's clock: nothing acts.
    deadline: Option<Instant>,
    /// Groups whose lease the store may hold for this daemon (granted, or asked for when the
    /// answer was lost) and that were not released since: what is taken but no longer held
    /// is released once its group task ended. With sessions, an unreleased lease of a live
    /// daemon never lapses, so a failed release is retried every round.
    taken: HashSet<String>,
    /// Group tasks still running, by group (a count: a restarted group's old task may still
    /// be finishing while its new one starts).
    busy: HashMap<String, usize>,
}

/// The leases this daemon holds, shared by the coordinator (writes), the engine and the
/// group tasks (read before acting).
#[derive(Debug, Clone, Default)]
pub(crate) struct Leases {
    inner: Arc<Mutex<Inner>>,
    /// Wakes the coordinator when group tasks ended and their leases are due for release:
    /// it releases them in one statement, soon, rather than one transaction per group.
    due: Arc<tokio::sync::Notify>,
}

/// A group task running: while it lives, its group's lease is not released by the sweep.
pub(crate) struct Busy {
    leases: Leases,
    group: String,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut i = self.leases.lock();
        if let Some(n) = i.busy.get_mut(&self.group) {
            *n -= 1;
            if *n == 0 {
                i.busy.remove(&self.group);
            }
        }
    }
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fence of `group` while its lease is held and the session's local deadline not
    /// passed.
    pub(crate) fn fence(&self, group: &str) -> Option<Fence> {
        let i = self.lock();
        let live = i.deadline.is_some_and(|d| Instant::now() < d);
        i.held.get(group).filter(|_| live).cloned()
    }

    /// Whether `fence` is still the lease held on `group` (before the deadline).
    pub(crate) fn still(&self, group: &str, fence: &Fence) -> bool {
        self.fence(group).as_ref() == Some(fence)
    }

    /// The store refused a write under `group`'s lease: it is not ours any more (the
    /// coordinator asks for it again at its next round).
    pub(crate) fn lost(&self, group: &str) {
        self.lock().held.remove(group);
    }

    /// The held lease of `group`, for status (even past the deadline).
    pub(crate) fn status(&self, group: &str) -> Option<Fence> {
        self.lock().held.get(group).cloned()
    }

    /// Mark `group`'s task as running until the guard is dropped (the task ended).
    pub(crate) fn busy(&self, group: &str) -> Busy {
        *self.lock().busy.entry(group.to_string()).or_insert(0) += 1;
        Busy {
            leases: self.clone(),
            group: group.to_string(),
        }
    }

    /// Hold `fence` on `group` with the session's deadline `ttl` from now (tests).
    #[cfg(test)]
    pub(crate) fn hold(&self, group: &str, fence: Fence, ttl: Duration) {
        let mut i = self.lock();
        i.held.insert(group.to_string(), fence);
        i.taken.insert(group.to_string());
        i.deadline = Some(Instant::now() + ttl);
    }

    fn clear(&self) {
        let mut i = self.lock();
        i.held.clear();
        i.deadline = None;
    }

    /// The session was renewed by a request sent at `sent` (answered at `answered`): every
    /// held lease may act until `sent + ttl - margin`. When the deadline had passed before
    /// the answer came, the store may have seen the session lapse and released every lease
    /// (see [`Store::heartbeat`]): they are dropped, to be taken again (at new epochs).
    fn renewed(&self, sent: Instant, answered: Instant, ttl: Duration) {
        let mut i = self.lock();
        if i.deadline.is_none_or(|d| d <= answered) {
            i.held.clear();
        }
        let fresh = sent + ttl.saturating_sub(margin(ttl));
        i.deadline = Some(i.deadline.map_or(fresh, |d| d.max(fresh)));
    }

    /// Whether the session's local deadline passed (or there is none yet).
    fn expired(&self) -> bool {
        self.lock().deadline.is_none_or(|d| d <= Instant::now())
    }

    /// Keep only the leases of `mine`: the others stop acting at once (their tasks stop,
    /// then the leases are released).
    fn keep_only(&self, mine: &HashSet<&str>) {
        self.lock().held.retain(|g, _| mine.contains(g.as_str()));
    }

    /// The groups of `mine` not held, in order.
    fn wanted(&self, mine: &[String]) -> Vec<String> {
        let i = self.lock();
        mine.iter()
            .filter(|g| !i.held.contains_key(*g))
            .cloned()
            .collect()
    }

    fn asking(&self, groups: &[String]) {
        self.lock().taken.extend(groups.iter().cloned());
    }

    /// `granted` came from asking for `asked` in a request sent at `sent`, which renewed
    /// the session too.
    fn granted(&self, asked: &[String], granted: &[scalepilot_store::Lease], deadline: Instant) {
        let mut i = self.lock();
        let got: HashSet<&str> = granted.iter().map(|l| l.group.as_str()).collect();
        for g in asked {
            if !got.contains(g.as_str()) {
                // Another live daemon holds it: nothing of ours to release.
                i.taken.remove(g);
            }
        }
        for l in granted {
            i.held.insert(l.group.clone(), l.fence());
        }
        i.deadline = Some(i.deadline.map_or(deadline, |d| d.max(deadline)));
    }

    /// Taken, no longer held, and its group task ended: to release (sorted).
    fn releasable(&self) -> Vec<String> {
        let i = self.lock();
        let mut out: Vec<String> = i
            .taken
            .iter()
            .filter(|g| !i.held.contains_key(*g) && !i.busy.contains_key(*g))
            .cloned()
            .collect();
        out.sort_unstable();
        out
    }

    fn released(&self, groups: &[String]) {
        let mut i = self.lock();
        for g in groups {
            if !i.held.contains_key(g) {
                i.taken.remove(g);
            }
        }
    }

    fn held_groups(&self) -> BTreeSet<String> {
        self.lock().held.keys().cloned().collect()
    }
}

/// This daemon's identity among the others: host name, PID and the process's start time.
pub(crate) fn daemon_id() -> String {
    format!("{}:{}", crate::machine::name(), crate::group::owner_id())
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

/// What the coordinator starts with: the store, the session's length, where holdings go.
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
    /// What the coordinator reports (for [`crate::EngineHandle::ha_status`]).
    pub status: watch::Sender<HaStatus>,
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
        let id = daemon_id();
        let (status, _) = watch::channel(HaStatus::starting(&id));
        Ha {
            id,
            leases: Leases::default(),
            groups,
            holdings,
            held: BTreeSet::new(),
            status,
            task: None,
            pending: Some((store, ttl, tx)),
            ttl,
        }
    }

    pub(crate) fn spawn(&mut self) {
        let Some((store, ttl, tx)) = self.pending.take() else {
            return;
        };
        tracing::info!(
            daemon = %self.id,
            "ha: session-based leases: a session of {ttl:?}, one heartbeat every {:?}",
            ttl / 3
        );
        self.task = Some(tokio::spawn(coordinate(
            store,
            self.id.clone(),
            ttl,
            self.groups.subscribe(),
            self.leases.clone(),
            tx,
            self.status.clone(),
        )));
    }

    /// Stop renewing (the engine is stopping); [`leave`] ends the leases once the groups
    /// stopped.
    pub(crate) fn stop(&self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }

    /// `once`: take `group`'s lease for one evaluation (this also starts or renews the
    /// session). False when another daemon holds it.
    pub(crate) async fn take_once(
        &self,
        store: &dyn Store,
        group: &str,
    ) -> Result<bool, StoreError> {
        let sent = Instant::now();
        let asked = [group.to_string()];
        self.leases.asking(&asked);
        let granted = store.acquire_leases(&self.id, &asked, self.ttl).await?;
        let deadline = sent + self.ttl.saturating_sub(margin(self.ttl));
        self.leases.granted(&asked, &granted, deadline);
        Ok(!granted.is_empty())
    }

    /// `once`: the evaluation is over; others may take the group at once.
    pub(crate) async fn release_once(&self, store: &dyn Store, group: &str) {
        self.leases.lost(group);
        release_now(store, &self.id, &self.leases, group).await;
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

/// The engine stopped: this daemon's session and leases end now, so the others take its
/// groups at their next round instead of waiting for the session to lapse.
pub(crate) async fn leave(store: &dyn Store, id: &str, leases: &Leases) {
    leases.clear();
    match store.leave(id).await {
        Ok(()) => tracing::info!("ha: left; the other daemons take over the groups"),
        Err(e) => {
            tracing::warn!(
                "ha: cannot leave ({e}): the other daemons take over once the session lapses"
            )
        }
    }
}

/// Safety margin cut from the session's local deadline (timer and scheduling delays, and a
/// store clock running up to this much faster than ours).
fn margin(ttl: Duration) -> Duration {
    ttl / 5
}

/// How a round went, for the log and the status.
struct Round {
    live: usize,
    error: Option<String>,
}

/// The coordinator: one round every third of the session, until aborted.
async fn coordinate(
    store: Arc<dyn Store>,
    id: String,
    ttl: Duration,
    groups: watch::Receiver<Vec<String>>,
    leases: Leases,
    holdings: mpsc::UnboundedSender<BTreeSet<String>>,
    status: watch::Sender<HaStatus>,
) {
    let every = ttl / 3;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut held: BTreeSet<String> = BTreeSet::new();
    // The heartbeat failing (logged once per outage) and whether the daemon may act.
    let mut failing = false;
    let mut acting = false;
    let mut acted = false;
    // Whether the last acquire or release failed (logged once per streak).
    let mut taking_fails = false;
    let mut daemons = 0usize;
    let mut first = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = leases.due.notified() => {
                tokio::time::sleep(RELEASE_BATCH_WAIT).await;
                let budget = Instant::now() + every / 2;
                if let Some(e) = release_due(store.as_ref(), &id, &leases, budget).await {
                    tracing::debug!("ha: {e}: the next round tries again");
                }
                continue;
            }
        }
        let all = groups.borrow().clone();
        // The first round only announces this daemon: daemons started together see each
        // other before taking leases, instead of the first taking every group and handing
        // most of them over a round later.
        let share = if first { &[][..] } else { &all[..] };
        first = false;
        let round = round(store.as_ref(), &id, ttl, share, &leases).await;
        match &round {
            Ok(r) => {
                if failing {
                    tracing::info!("ha: the database answers again: session renewed");
                    failing = false;
                }
                match (&r.error, taking_fails) {
                    (Some(e), false) => {
                        tracing::warn!(
                            "ha: cannot take or release some leases ({e}): keeping those held, trying again next round"
                        );
                        taking_fails = true;
                    }
                    (None, true) => {
                        tracing::info!("ha: taking and releasing leases works again");
                        taking_fails = false;
                    }
                    _ => {}
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(
                        "ha: cannot renew the session ({e}): acting until it runs out, then stopping"
                    );
                    failing = true;
                }
            }
        }
        let now_acting = !leases.expired();
        if now_acting != acting {
            if !now_acting {
                tracing::error!(
                    "ha: leases expired: not acting until the database is back (the session ran out)"
                );
                leases.clear();
            } else if acted {
                tracing::info!("ha: leases renewed: acting again");
            } else {
                tracing::info!("ha: session started: acting");
                acted = true;
            }
            acting = now_acting;
            status.send_modify(|s| {
                s.acting = now_acting;
                s.since = Timestamp::now();
            });
        }
        let now = leases.held_groups();
        let live = round.as_ref().map_or(daemons, |r| r.live);
        if now != held || live != daemons {
            let gained = now.difference(&held).count();
            let lost = held.difference(&now).count();
            tracing::info!(
                "ha: {live} live daemon(s); leases +{gained} gained, -{lost} lost; holding {} of {} group(s)",
                now.len(),
                all.len()
            );
            daemons = live;
        }
        status.send_modify(|s| {
            s.live_daemons = live;
            s.leases_held = now.len();
            s.last_error = match &round {
                Ok(r) => r.error.clone(),
                Err(e) => Some(e.clone()),
            };
        });
        if now != held {
            held = now;
            let _ = holdings.send(held.clone());
        }
    }
}

/// One round: the heartbeat (the round fails only when it does), then, within what is left
/// of the round, the leases of this daemon's share not held yet, then the releases due.
async fn round(
    store: &dyn Store,
    id: &str,
    ttl: Duration,
    all: &[String],
    leases: &Leases,
) -> Result<Round, String> {
    let every = ttl / 3;
    let sent = Instant::now();
    // A database that hangs is down too: the heartbeat may not outlast the round.
    let live = match tokio::time::timeout(every, store.heartbeat(id, ttl)).await {
        Ok(Ok(live)) => live,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err(format!("no answer within {every:?}")),
    };
    leases.renewed(sent, Instant::now(), ttl);
    let mine: Vec<String> = all
        .iter()
        .filter(|g| owner(g, &live) == Some(id))
        .cloned()
        .collect();
    leases.keep_only(&mine.iter().map(String::as_str).collect());
    // Taking and releasing stop in time for the next heartbeat; what is left waits for the
    // next round.
    let budget = sent + every - every / 4;
    let mut error = None;
    for chunk in leases.wanted(&mine).chunks(ACQUIRE_CHUNK) {
        let sent = Instant::now();
        if sent >= budget {
            break;
        }
        leases.asking(chunk);
        match tokio::time::timeout(budget - sent, store.acquire_leases(id, chunk, ttl)).await {
            Ok(Ok(granted)) => {
                // The acquire renewed the session from its own start.
                leases.granted(chunk, &granted, sent + ttl.saturating_sub(margin(ttl)));
            }
            Ok(Err(e)) => {
                error = Some(format!("acquire: {e}"));
                break;
            }
            Err(_) => {
                error = Some(format!("acquire: no answer within the round's {every:?}"));
                break;
            }
        }
    }
    if let Some(e) = release_due(store, id, leases, budget).await {
        error.get_or_insert(e);
    }
    Ok(Round {
        live: live.len(),
        error,
    })
}

/// A group this daemon no longer runs (its task ended): have the coordinator release its
/// lease soon (unless it was taken again meanwhile), batched with the others ending about
/// now, so its new owner need not wait for the next round. A release that fails is tried
/// again each round.
pub(crate) fn release(leases: &Leases) {
    leases.due.notify_one();
}

/// `once`: release `group`'s lease now (there is no coordinator).
async fn release_now(store: &dyn Store, id: &str, leases: &Leases, group: &str) {
    let groups = [group.to_string()];
    match store.release_leases(id, &groups).await {
        Ok(()) => leases.released(&groups),
        Err(e) => tracing::debug!(
            group,
            "ha: cannot release the lease ({e}): it ends with the session"
        ),
    }
}

/// How long the coordinator waits, once woken by a task that ended, for more to end: a
/// handover stops many groups at once, released in one statement.
const RELEASE_BATCH_WAIT: Duration = Duration::from_millis(50);

/// Release the leases due (taken, no longer held, task ended), before `budget`; the error.
async fn release_due(
    store: &dyn Store,
    id: &str,
    leases: &Leases,
    budget: Instant,
) -> Option<String> {
    for chunk in leases.releasable().chunks(RELEASE_CHUNK) {
        let now = Instant::now();
        if now >= budget {
            break;
        }
        match tokio::time::timeout(budget - now, store.release_leases(id, chunk)).await {
            Ok(Ok(())) => leases.released(chunk),
            Ok(Err(e)) => return Some(format!("release: {e}")),
            Err(_) => return Some("release: no answer in time".to_string()),
        }
    }
    None
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
    /// keeps its leases until the session's local deadline, then stops every group and says
    /// so in its status; once the database answers again, it takes them again, at new epochs
    /// (its session lapsed meanwhile, so the store released them).
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
        let (status_tx, status) = watch::channel(HaStatus::starting("d1"));
        let ttl = Duration::from_secs(1);
        let task = tokio::spawn(coordinate(
            store.clone(),
            "d1".into(),
            ttl,
            groups,
            leases.clone(),
            tx,
            status_tx,
        ));
        let both: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        assert_eq!(next_holdings(&mut rx).await, both);
        let before = leases.fence("a").expect("held");
        let up = status.borrow().clone();
        assert_eq!(
            (
                up.daemon.as_str(),
                up.live_daemons,
                up.leases_held,
                up.acting
            ),
            ("d1", 1, 2, true)
        );
        assert_eq!(up.last_error, None);
        // The database stops answering writes.
        let url = format!("sqlite://{}", file.display());
        let mut lock = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut lock)
            .await
            .unwrap();
        let stopped = std::time::Instant::now();
        assert!(next_holdings(&mut rx).await.is_empty());
        // Not before the session's local deadline could have passed, and nothing may act.
        assert!(
            stopped.elapsed() >= ttl - margin(ttl) - ttl / 3,
            "{:?}",
            stopped.elapsed()
        );
        assert!(leases.fence("a").is_none());
        let down = status.borrow().clone();
        assert!(!down.acting && down.since > up.since, "{down:?}");
        assert_eq!(down.leases_held, 0);
        assert!(down.last_error.is_some(), "{down:?}");
        // Past the session's expiry on the store's clock too.
        tokio::time::sleep(ttl).await;
        // Back: the groups are taken again, at a new epoch.
        sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
        assert_eq!(next_holdings(&mut rx).await, both);
        let after = leases.fence("a").expect("held again");
        assert!(after.epoch > before.epoch, "{before:?} → {after:?}");
        let back = status.borrow().clone();
        assert!(back.acting && back.since > down.since, "{back:?}");
        assert_eq!(back.leases_held, 2);
        task.abort();
        drop(groups_tx);
    }

    /// A lease this daemon no longer holds is released once its group's task ended, not
    /// before (the round releases it; also when the release at the task's end failed).
    #[tokio::test]
    async fn leases_no_longer_held_are_released_after_their_task_ended() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            scalepilot_store::SqliteStore::open(&dir.path().join("s.db"))
                .await
                .unwrap(),
        );
        let leases = Leases::default();
        let ttl = Duration::from_secs(30);
        let all = vec!["a".to_string(), "b".to_string()];
        round(store.as_ref(), "d1", ttl, &all, &leases)
            .await
            .unwrap();
        assert_eq!(leases.held_groups().len(), 2);
        // "b" is disabled here while its task still runs: not held, not released yet.
        let busy = leases.busy("b");
        let one = vec!["a".to_string()];
        round(store.as_ref(), "d1", ttl, &one, &leases)
            .await
            .unwrap();
        assert_eq!(leases.held_groups(), ["a".to_string()].into());
        let live = |g: &str| {
            let store = store.clone();
            let g = g.to_string();
            async move {
                let l = store.leases().await.unwrap();
                l.iter().any(|l| l.group == g && l.expires_ms > 0)
            }
        };
        assert!(live("b").await, "released while its task ran");
        // The task ended: the next round releases it; another daemon takes it at once.
        drop(busy);
        round(store.as_ref(), "d1", ttl, &one, &leases)
            .await
            .unwrap();
        assert!(!live("b").await, "not released");
        let taken = store
            .acquire_leases("d2", &["b".to_string()], ttl)
            .await
            .unwrap();
        assert_eq!(taken[0].epoch, 2);
        assert!(leases.releasable().is_empty());
    }

    #[test]
    fn the_weight_is_stable() {
        // Fixed across builds and versions: daemons of different releases agree.
        assert_eq!(weight("web", "a"), weight("web", "a"));
        assert_ne!(weight("web", "a"), weight("web", "b"));
        assert_eq!(owner("x", &[]), None);
    }
}
