-- scalepilot store, SQLite. Times are Unix milliseconds (sortable integers).

-- The last valid config of each group, as JSON.
CREATE TABLE groups (
    name        TEXT PRIMARY KEY,
    config      TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL
);

-- The decision core's state per group (stabilization history, events, cooldowns…), the last
-- decision and the engine's count of evaluations that failed in a row.
CREATE TABLE group_state (
    grp                 TEXT PRIMARY KEY,
    state               TEXT NOT NULL,
    last_decision       TEXT,
    consecutive_errors  INTEGER NOT NULL DEFAULT 0,
    updated_ms          INTEGER NOT NULL
);

-- Scaling actions. The key (group + desired + time bucket) is unique: an intent is written
-- before the target is called, so a restart never repeats it.
CREATE TABLE activities (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    key            TEXT NOT NULL UNIQUE,
    grp            TEXT NOT NULL,
    started_ms     INTEGER NOT NULL,
    finished_ms    INTEGER,
    from_replicas  INTEGER NOT NULL,
    to_replicas    INTEGER NOT NULL,
    status         TEXT NOT NULL,   -- pending | succeeded | failed | interrupted | dry_run
    error          TEXT,
    decision       TEXT NOT NULL    -- the full decision: metrics, strategies, reasons, limits
);
CREATE INDEX activities_by_group ON activities (grp, id);

CREATE TABLE errors (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    grp        TEXT,
    component  TEXT NOT NULL,       -- source | target | store | config | alert
    message    TEXT NOT NULL,
    at_ms      INTEGER NOT NULL
);
CREATE INDEX errors_by_group ON errors (grp, id);

-- Observed metric values, kept for a bounded time.
CREATE TABLE metric_samples (
    grp     TEXT NOT NULL,
    metric  TEXT NOT NULL,
    at_ms   INTEGER NOT NULL,
    value   REAL NOT NULL
);
CREATE INDEX metric_samples_by_time ON metric_samples (at_ms);
CREATE INDEX metric_samples_by_group ON metric_samples (grp, metric, at_ms);

-- Process-pool instances, so a restarted daemon adopts what the previous run started.
CREATE TABLE instances (
    grp         TEXT NOT NULL,
    host        TEXT NOT NULL,
    port        INTEGER NOT NULL,
    pid         INTEGER NOT NULL,
    started_ms  INTEGER NOT NULL,
    PRIMARY KEY (grp, host, port)
);
