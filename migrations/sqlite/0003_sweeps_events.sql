-- Sweeps (durable, steerable), run leases, the event timeline, configuration marks.
-- Keep in step with migrations/postgres/0003_sweeps_events.sql.

CREATE TABLE sweeps (
    id            BLOB PRIMARY KEY NOT NULL,
    experiment_id BLOB NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    -- The request as given (strategy, repeats, items, budget) and the parameter space planned.
    request       TEXT NOT NULL,
    space         TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'paused', 'completed', 'stopped')),
    pause_reason  TEXT,
    total         INTEGER NOT NULL DEFAULT 0,
    done          INTEGER NOT NULL DEFAULT 0,
    completed     INTEGER NOT NULL DEFAULT 0,
    cached        INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    skipped       INTEGER NOT NULL DEFAULT 0,
    -- Spent on calls actually made (cache hits are free).
    tokens_in     INTEGER NOT NULL DEFAULT 0,
    tokens_out    INTEGER NOT NULL DEFAULT 0,
    cost          REAL NOT NULL DEFAULT 0,
    calls         INTEGER NOT NULL DEFAULT 0,
    cache_hits    INTEGER NOT NULL DEFAULT 0,
    max_tokens    INTEGER,
    max_cost      REAL,
    -- When a process last drove this sweep (lanes are re-enqueued when it goes stale).
    driven_at     TEXT,
    created_by    BLOB,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    finished_at   TEXT
);
CREATE INDEX sweeps_experiment ON sweeps (experiment_id, created_at);
CREATE INDEX sweeps_status ON sweeps (status);

ALTER TABLE runs ADD COLUMN sweep_id BLOB REFERENCES sweeps (id) ON DELETE SET NULL;
ALTER TABLE runs ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN lease_owner TEXT;
ALTER TABLE runs ADD COLUMN lease_until TEXT;
ALTER TABLE runs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_sweep_status ON runs (sweep_id, status, seq);
CREATE INDEX runs_status_lease ON runs (status, lease_until);

CREATE TABLE events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id BLOB,
    sweep_id      BLOB,
    run_id        BLOB,
    event_type    TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX events_experiment ON events (experiment_id, id);
CREATE INDEX events_type ON events (event_type, id);

-- A configuration (experiment × config_key) approved as good enough or rejected from rankings.
CREATE TABLE config_marks (
    experiment_id BLOB NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    config_key    TEXT NOT NULL,
    mark          TEXT NOT NULL CHECK (mark IN ('approved', 'rejected')),
    note          TEXT NOT NULL DEFAULT '',
    marked_by     BLOB,
    marked_at     TEXT NOT NULL,
    PRIMARY KEY (experiment_id, config_key)
);

-- Processes that execute runs (serve and worker), with a heartbeat. (Not `workers`: the job
-- queue's `Workers` table has that name, and SQLite table names ignore case.)
CREATE TABLE processes (
    id           TEXT PRIMARY KEY NOT NULL,
    role         TEXT NOT NULL,
    hostname     TEXT NOT NULL DEFAULT '',
    pid          INTEGER NOT NULL DEFAULT 0,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);
