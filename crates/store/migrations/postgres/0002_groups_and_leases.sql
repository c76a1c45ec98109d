-- Scaling groups kept in the database (`groups_from: database|both`): the group as JSON, as it
-- would be written in a config file, validated by scalepilot before it is stored and again
-- when loaded. `enabled` is authoritative over the spec's own field.
CREATE TABLE scaling_groups (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    version     BIGINT NOT NULL,    -- the change counter when the row last changed
    updated_ms  BIGINT NOT NULL
);
CREATE INDEX scaling_groups_enabled ON scaling_groups (name) WHERE enabled;

-- One row: bumped by every change to scaling_groups, so daemons poll one value.
CREATE TABLE scaling_groups_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO scaling_groups_version (id, version) VALUES (1, 0);

-- Several daemons on one database: who is alive, and who evaluates which group. Times are
-- on the server's clock, so daemons need no synchronized clocks.
CREATE TABLE daemons (
    id            TEXT PRIMARY KEY,
    heartbeat_ms  BIGINT NOT NULL,
    expires_ms    BIGINT NOT NULL
);
CREATE TABLE leases (
    grp         TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    epoch       BIGINT NOT NULL,    -- bumped whenever the lease changes hands or lapses
    expires_ms  BIGINT NOT NULL
);
CREATE INDEX leases_by_holder ON leases (holder);

-- `progress_since` (bench --engine, readiness) counts recent state writes.
CREATE INDEX group_state_by_time ON group_state (updated_ms);
CREATE INDEX activities_by_time ON activities (started_ms);
