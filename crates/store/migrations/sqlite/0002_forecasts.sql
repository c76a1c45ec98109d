-- Forecasts of the predictive and cost strategies, one per strategy and evaluation, so that
-- `scalepilot history --forecasts` can set each against what then happened (the largest
-- stored metric sample between serves_from_ms and due_ms). Pruned with the metric samples.
CREATE TABLE forecasts (
    grp             TEXT NOT NULL,
    metric          TEXT NOT NULL,
    made_ms         INTEGER NOT NULL,
    serves_from_ms  INTEGER NOT NULL,   -- made + startup: replicas asked for now serve from here
    due_ms          INTEGER NOT NULL,   -- made + horizon (startup + evaluation interval)
    estimate        REAL NOT NULL,      -- the largest value expected over the horizon
    provision       REAL NOT NULL,      -- estimate + headroom, in the metric's unit
    seasonal        INTEGER NOT NULL,   -- 1: a seasonal forecast; 0: cold start or cost
    forecast_only   INTEGER NOT NULL    -- 1: recorded only, the reactive count was recommended
);
CREATE INDEX forecasts_by_group ON forecasts (grp, made_ms);
CREATE INDEX forecasts_by_time ON forecasts (made_ms);
