-- The global budget's ledger when several daemons share the database (`engine.ha: true`):
-- one row per priced group, and one version counter bumped by every write, so a group
-- decides against what it read and writes only if nobody wrote since (compare-and-swap).
CREATE TABLE budget_ledger (
    grp            TEXT PRIMARY KEY,
    rate_per_hour  DOUBLE PRECISION NOT NULL,  -- money per hour at the group's current count
    month          TEXT NOT NULL,              -- the month `spent` belongs to
    spent          DOUBLE PRECISION NOT NULL,
    updated_ms     BIGINT NOT NULL
);
CREATE TABLE budget_ledger_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO budget_ledger_version (id, version) VALUES (1, 0);
