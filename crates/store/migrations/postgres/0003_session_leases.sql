-- Session-based leases: a lease is live while its holder's heartbeat (`daemons.expires_ms`)
-- is and it was not released, so one heartbeat write renews every lease of a daemon instead
-- of one write per lease per round. The per-lease expiry goes; `released` takes its place.
ALTER TABLE leases ADD COLUMN released BOOLEAN NOT NULL DEFAULT FALSE;
-- Leases of the release before are ended: they are taken again at the next epoch, which is
-- safe whatever daemons were running (all stop for this upgrade).
UPDATE leases SET released = TRUE;
ALTER TABLE leases DROP COLUMN expires_ms;
-- Only running daemons (their heartbeat) share the groups; a session started by taking a
-- lease alone (`scalepilot once`) is not given a share.
ALTER TABLE daemons ADD COLUMN member BOOLEAN NOT NULL DEFAULT TRUE;
