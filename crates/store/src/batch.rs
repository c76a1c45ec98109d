//! Group commit for the writes every evaluation makes (its state and its metric samples) and
//! for the config snapshot each group writes as it starts:
//! callers queue them and wait; one writer task takes everything queued and commits it in one
//! transaction. A caller's write is durable when its call returns, as before, but 100,000
//! groups cost a few hundred transactions a second instead of tens of thousands.
//!
//! A batch that fails as a whole is retried one write at a time, so each caller gets its own
//! error (a database that went away is then reported as such, which the outage spool needs).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use super::{Result, StoreError, StoredState};

/// Writes per transaction, at most.
pub(crate) const MAX_BATCH: usize = 512;

/// A group's state as the `group_state` row holds it: serialized by the caller (on its own
/// task, in parallel) rather than by the single writer task, which every evaluation waits on.
pub(crate) struct StateRow {
    pub text: String,
    /// `None` keeps the stored decision.
    pub decision: Option<String>,
    pub consecutive_errors: i64,
}

impl StateRow {
    pub(crate) fn of(
        group: &str,
        state: &StoredState,
        decision: Option<&serde_json::Value>,
    ) -> Result<StateRow> {
        let text = serde_json::to_string(&state.state).map_err(|e| StoreError::Corrupt {
            what: "state",
            group: group.to_string(),
            message: e.to_string(),
        })?;
        Ok(StateRow {
            text,
            decision: decision.map(|d| d.to_string()),
            consecutive_errors: i64::from(state.consecutive_errors),
        })
    }
}

/// A write that may share a transaction with others.
pub(crate) enum Write {
    State {
        group: String,
        row: StateRow,
        at: Timestamp,
    },
    Samples {
        group: String,
        at: Timestamp,
        metrics: BTreeMap<String, f64>,
    },
    /// A group's config snapshot, written as each group starts: alone, each was a commit
    /// (a WAL flush on PostgreSQL) of its own, which bound how fast 100,000 groups started.
    Config {
        group: String,
        config: String,
        at: Timestamp,
    },
}

/// A queued write with the pool to write it with and where to answer.
pub(crate) struct Job<P> {
    pub pool: P,
    pub write: Write,
    pub reply: oneshot::Sender<Result<()>>,
}

pub(crate) type Flush<P> =
    Box<dyn FnMut(Vec<Job<P>>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

pub(crate) struct Batcher<P> {
    tx: mpsc::UnboundedSender<Job<P>>,
}

impl<P: Send + 'static> Batcher<P> {
    /// Start the writer task (it ends when the store is dropped).
    pub(crate) fn spawn(mut flush: Flush<P>) -> Batcher<P> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job<P>>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                flush(jobs).await;
            }
        });
        Batcher { tx }
    }

    /// Queue `write` and wait until it is committed (or failed).
    pub(crate) async fn submit(&self, pool: P, write: Write) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Db {
            what: "queue a write",
            source: sqlx::Error::PoolClosed,
        };
        self.tx
            .send(Job { pool, write, reply })
            .map_err(|_| gone())?;
        answer.await.unwrap_or_else(|_| Err(gone()))
    }
}

/// The error for the other writes of a batch that failed because the database is away: the
/// same kind (an I/O error, which the outage spool classifies as unavailable) with the first
/// write's message. Retrying them one by one would wait out a connect timeout each.
pub(crate) fn unavailable_too(e: &StoreError) -> StoreError {
    StoreError::Db {
        what: "write a batch",
        source: sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            e.to_string(),
        )),
    }
}

/// A backend's `flush`: the batch in one transaction on the newest job's pool; when that
/// fails because the database is away, the same answer to every write; when it fails
/// otherwise, each write alone, so a bad one fails by itself. Expects `apply(conn, &Write)`,
/// `apply_all(conn, &[Job])` (the whole batch, in the transaction) and `db(what)` in scope.
macro_rules! flush_fn {
    ($pool:ty) => {
        fn flush(
            jobs: Vec<$crate::batch::Job<$pool>>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
            Box::pin(async move {
                // The newest pool: after a reopen (a SQLite file replaced), the new file.
                let Some(pool) = jobs.last().map(|j| j.pool.clone()) else {
                    return;
                };
                let together = async {
                    let mut tx = pool.begin().await.map_err(db("write a batch"))?;
                    apply_all(&mut tx, &jobs).await?;
                    tx.commit().await.map_err(db("write a batch"))
                }
                .await;
                let e = match together {
                    Ok(()) => {
                        for j in jobs {
                            let _ = j.reply.send(Ok(()));
                        }
                        return;
                    }
                    Err(e) => e,
                };
                if $crate::is_unavailable(&e) {
                    // The first write gets the driver's own error, the others its copy.
                    let mut jobs = jobs.into_iter();
                    let first = jobs.next();
                    for j in jobs {
                        let _ = j.reply.send(Err($crate::batch::unavailable_too(&e)));
                    }
                    if let Some(j) = first {
                        let _ = j.reply.send(Err(e));
                    }
                    return;
                }
                for j in jobs {
                    let alone = async {
                        let mut conn = j.pool.acquire().await.map_err(db("write"))?;
                        apply(&mut conn, &j.write).await
                    }
                    .await;
                    let _ = j.reply.send(alone);
                }
            })
        }
    };
}
pub(crate) use flush_fn;
