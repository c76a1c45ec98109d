-- The REST API (docs/api.md): its tokens and its audit log (see the SQLite migration 0007).
-- The JSON before and after a change is TEXT, as everywhere in this schema: kept byte for
-- byte, and a string holding \u0000 (which jsonb refuses) is still recorded.

CREATE TABLE api_tokens (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,      -- viewer | operator | admin
    hash        TEXT NOT NULL,      -- hex SHA-256 of the secret
    created_ms  BIGINT NOT NULL,
    revoked_ms  BIGINT              -- NULL while the token is live
);
CREATE INDEX api_tokens_by_hash ON api_tokens (hash);

-- One row: bumped by every token created or revoked, so the API re-reads its cached tokens
-- only when this moved (one read per request).
CREATE TABLE api_tokens_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO api_tokens_version (id, version) VALUES (1, 0);

-- Every API call, allowed or denied, with the state before and after a change. Never pruned.
CREATE TABLE audit_log (
    id           BIGSERIAL PRIMARY KEY,
    actor        TEXT NOT NULL,     -- the token's name, or "anonymous"
    role         TEXT,              -- the token's role; NULL without a valid token
    at_ms        BIGINT NOT NULL,
    method       TEXT NOT NULL,
    route        TEXT NOT NULL,     -- the path as requested, query string included
    status       INTEGER NOT NULL,  -- the HTTP status answered
    allowed      BOOLEAN NOT NULL,  -- false: denied (401/403)
    before_json  TEXT,
    after_json   TEXT,
    detail       TEXT
);
-- `GET /audit?actor=…`, newest first (the unfiltered pages walk the primary key).
CREATE INDEX audit_log_by_actor ON audit_log (actor, id);
