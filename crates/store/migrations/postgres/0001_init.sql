-- scalepilot store, PostgreSQL: the same tables and columns as SQLite's migrations 0001-0003
-- together. Times are Unix milliseconds (BIGINT) as in SQLite, so both backends read alike;
-- JSON is kept as TEXT, byte for byte as written.

-- The last valid config of each group, as JSON.
CREATE TABLE groups (
    name        TEXT PRIMARY KEY,
    config      TEXT NOT NULL,
    updated_ms  BIGINT NOT NULL
);

-- The decision core's state per group, the last decision and the engine's count of
-- evaluations that failed in a row. Read by its primary key at every evaluation.
CREATE TABLE group_state (
    grp                 TEXT PRIMARY KEY,
    state               TEXT NOT NULL,
    last_decision       TEXT,
    consecutive_errors  BIGINT NOT NULL DEFAULT 0,
    updated_ms          BIGINT NOT NULL
);

-- Scaling actions. The key (group + desired + time bucket) is unique: an intent is written
-- before the target is called, so a restart never repeats it.
CREATE TABLE activities (
    id             BIGSERIAL PRIMARY KEY,
    key            TEXT NOT NULL UNIQUE,
    grp            TEXT NOT NULL,
    started_ms     BIGINT NOT NULL,
    finished_ms    BIGINT,
    from_replicas  BIGINT NOT NULL,
    to_replicas    BIGINT NOT NULL,
    status         TEXT NOT NULL,   -- pending | succeeded | failed | interrupted | dry_run
    error          TEXT,
    decision       TEXT NOT NULL,   -- the full decision: metrics, strategies, reasons, limits
    owner          TEXT             -- the run carrying out a pending intent ("pid:start time")
);
-- `history` per group, newest first.
CREATE INDEX activities_by_group ON activities (grp, id);
-- By group and start time (time-bounded reads of a group's activities).
CREATE INDEX activities_by_group_time ON activities (grp, started_ms, id);
-- The pending intents of a group (read when a group starts and after each action).
CREATE INDEX activities_pending ON activities (grp, id) WHERE status = 'pending';
-- History pruning: old dry-run records.
CREATE INDEX activities_dry_run_by_time ON activities (started_ms) WHERE status = 'dry_run';

CREATE TABLE errors (
    id         BIGSERIAL PRIMARY KEY,
    grp        TEXT,
    component  TEXT NOT NULL,       -- source | target | store | config | alert
    message    TEXT NOT NULL,
    at_ms      BIGINT NOT NULL
);
CREATE INDEX errors_by_group ON errors (grp, id);
CREATE INDEX errors_by_time ON errors (at_ms);

-- Observed metric values, kept for a bounded time.
CREATE TABLE metric_samples (
    grp     TEXT NOT NULL,
    metric  TEXT NOT NULL,
    at_ms   BIGINT NOT NULL,
    value   DOUBLE PRECISION NOT NULL
);
CREATE INDEX metric_samples_by_time ON metric_samples (at_ms);
CREATE INDEX metric_samples_by_group ON metric_samples (grp, metric, at_ms);

-- Process-pool instances, so a restarted daemon adopts what the previous run started.
-- pid 0: an intent written before the spawn ("starting").
CREATE TABLE instances (
    grp         TEXT NOT NULL,
    host        TEXT NOT NULL,
    port        BIGINT NOT NULL,
    pid         BIGINT NOT NULL,
    started_ms  BIGINT NOT NULL,
    marker      TEXT,
    PRIMARY KEY (grp, host, port)
);

-- Forecasts of the predictive and cost strategies (see the SQLite migration 0002). The id
-- orders forecasts made at the same millisecond, as SQLite's rowid does.
CREATE TABLE forecasts (
    id              BIGSERIAL PRIMARY KEY,
    grp             TEXT NOT NULL,
    metric          TEXT NOT NULL,
    made_ms         BIGINT NOT NULL,
    serves_from_ms  BIGINT NOT NULL,
    due_ms          BIGINT NOT NULL,
    estimate        DOUBLE PRECISION NOT NULL,
    provision       DOUBLE PRECISION NOT NULL,
    seasonal        BOOLEAN NOT NULL,
    forecast_only   BOOLEAN NOT NULL
);
CREATE INDEX forecasts_by_group ON forecasts (grp, made_ms, id);
CREATE INDEX forecasts_by_time ON forecasts (made_ms);
