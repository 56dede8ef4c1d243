-- Sweeps (durable, steerable), run leases, the event timeline, configuration marks.
-- Keep in step with migrations/sqlite/0003_sweeps_events.sql.

CREATE TABLE sweeps (
    id            UUID PRIMARY KEY,
    experiment_id UUID NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    -- The request as given (strategy, repeats, items, budget) and the parameter space planned.
    request       JSONB NOT NULL,
    space         JSONB NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'paused', 'completed', 'stopped')),
    pause_reason  TEXT,
    total         BIGINT NOT NULL DEFAULT 0,
    done          BIGINT NOT NULL DEFAULT 0,
    completed     BIGINT NOT NULL DEFAULT 0,
    cached        BIGINT NOT NULL DEFAULT 0,
    failed        BIGINT NOT NULL DEFAULT 0,
    skipped       BIGINT NOT NULL DEFAULT 0,
    -- Spent on calls actually made (cache hits are free).
    tokens_in     BIGINT NOT NULL DEFAULT 0,
    tokens_out    BIGINT NOT NULL DEFAULT 0,
    cost          DOUBLE PRECISION NOT NULL DEFAULT 0,
    calls         BIGINT NOT NULL DEFAULT 0,
    cache_hits    BIGINT NOT NULL DEFAULT 0,
    max_tokens    BIGINT,
    max_cost      DOUBLE PRECISION,
    -- When a process last drove this sweep (lanes are re-enqueued when it goes stale).
    driven_at     TIMESTAMPTZ,
    created_by    UUID,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ
);
CREATE INDEX sweeps_experiment ON sweeps (experiment_id, created_at);
CREATE INDEX sweeps_status ON sweeps (status);

ALTER TABLE runs ADD COLUMN sweep_id UUID REFERENCES sweeps (id) ON DELETE SET NULL;
ALTER TABLE runs ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN lease_owner TEXT;
ALTER TABLE runs ADD COLUMN lease_until TIMESTAMPTZ;
ALTER TABLE runs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_sweep_status ON runs (sweep_id, status, seq);
CREATE INDEX runs_status_lease ON runs (status, lease_until);

CREATE TABLE events (
    id            BIGSERIAL PRIMARY KEY,
    experiment_id UUID,
    sweep_id      UUID,
    run_id        UUID,
    event_type    TEXT NOT NULL,
    payload       JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_experiment ON events (experiment_id, id);
CREATE INDEX events_type ON events (event_type, id);

-- A configuration (experiment × config_key) approved as good enough or rejected from rankings.
CREATE TABLE config_marks (
    experiment_id UUID NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    config_key    TEXT NOT NULL,
    mark          TEXT NOT NULL CHECK (mark IN ('approved', 'rejected')),
    note          TEXT NOT NULL DEFAULT '',
    marked_by     UUID,
    marked_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (experiment_id, config_key)
);

-- Processes that execute runs (serve and worker), with a heartbeat. (Not `workers`: the job
-- queue's `Workers` table has that name, and SQLite table names ignore case.)
CREATE TABLE processes (
    id           TEXT PRIMARY KEY NOT NULL,
    role         TEXT NOT NULL,
    hostname     TEXT NOT NULL DEFAULT '',
    pid          INTEGER NOT NULL DEFAULT 0,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);
