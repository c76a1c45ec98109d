-- Scaling groups kept in the database (`groups_from: database|both`): the group as JSON, as it
-- would be written in a config file, validated by scalepilot before it is stored and again
-- when loaded. `enabled` is authoritative over the spec's own field.
CREATE TABLE scaling_groups (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    version     INTEGER NOT NULL,   -- the change counter when the row last changed
    updated_ms  INTEGER NOT NULL
);
CREATE INDEX scaling_groups_enabled ON scaling_groups (enabled, name);

-- One row: bumped by every change to scaling_groups, so daemons poll one value.
CREATE TABLE scaling_groups_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
INSERT INTO scaling_groups_version (id, version) VALUES (1, 0);

-- Several daemons on one database: who is alive, and who evaluates which group.
CREATE TABLE daemons (
    id            TEXT PRIMARY KEY,
    heartbeat_ms  INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL
);
CREATE TABLE leases (
    grp         TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    epoch       INTEGER NOT NULL,   -- bumped whenever the lease changes hands or lapses
    expires_ms  INTEGER NOT NULL
);
CREATE INDEX leases_by_holder ON leases (holder);
