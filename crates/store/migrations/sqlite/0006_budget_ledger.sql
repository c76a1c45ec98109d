-- The global budget's ledger when several daemons share the store (`engine.ha: true`): one
-- row per priced group, and one version counter bumped by every write, so a group decides
-- against what it read and writes only if nobody wrote since (compare-and-swap).
CREATE TABLE budget_ledger (
    grp            TEXT PRIMARY KEY,
    rate_per_hour  REAL NOT NULL,       -- money per hour at the group's current count
    month          TEXT NOT NULL,       -- the month `spent` belongs to
    spent          REAL NOT NULL,
    updated_ms     INTEGER NOT NULL
);
CREATE TABLE budget_ledger_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
INSERT INTO budget_ledger_version (id, version) VALUES (1, 0);
