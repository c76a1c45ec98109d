-- Who carries out a pending activity: a later run settles a pending intent only once its
-- owner (an identity of the process that wrote it, "pid:start time") is gone, so concurrent
-- `once` runs never mark each other's actions as interrupted. NULL for older rows.
ALTER TABLE activities ADD COLUMN owner TEXT;

-- The value of SCALEPILOT_INSTANCE set in each pool instance's environment, so a restarted
-- daemon finds its instances whatever their command line shows. A row with pid 0 is an
-- intent written before the spawn ("starting"); the spawn settles it with the pid.
ALTER TABLE instances ADD COLUMN marker TEXT;
