-- PromptLooper's data model (the spec's tables plus what auth needs).
-- Keep in step with migrations/postgres/0001_initial.sql: same version, same names.
-- Ids are UUIDs (stored as 16-byte blobs), times are RFC 3339 text, JSON is text.

CREATE TABLE users (
    id              BLOB PRIMARY KEY NOT NULL,
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'member', 'guest')),
    session_version INTEGER NOT NULL DEFAULT 0,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    locked_until    TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE projects (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    notes       TEXT NOT NULL DEFAULT '',
    owner_id    BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE experiments (
    id              BLOB PRIMARY KEY NOT NULL,
    project_id      BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    sample_data     TEXT NOT NULL DEFAULT '[]',
    pipeline_stages TEXT NOT NULL DEFAULT '[]',
    scoring_config  TEXT NOT NULL DEFAULT '[]',
    parameter_space TEXT NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'running', 'paused', 'completed')),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX experiments_project_id ON experiments (project_id);

CREATE TABLE runs (
    id            BLOB PRIMARY KEY NOT NULL,
    experiment_id BLOB NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    config_hash   TEXT NOT NULL,
    config        TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cached')),
    error         TEXT,
    started_at    TEXT,
    completed_at  TEXT,
    duration_ms   INTEGER,
    tokens_in     INTEGER NOT NULL DEFAULT 0,
    tokens_out    INTEGER NOT NULL DEFAULT 0,
    cost_estimate REAL,
    created_at    TEXT NOT NULL
);
CREATE INDEX runs_experiment_status ON runs (experiment_id, status);
CREATE INDEX runs_config_hash ON runs (config_hash);

CREATE TABLE stage_results (
    id            BLOB PRIMARY KEY NOT NULL,
    run_id        BLOB NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    stage_index   INTEGER NOT NULL,
    prompt_sent   TEXT NOT NULL,
    response_raw  TEXT NOT NULL,
    model_used    TEXT NOT NULL,
    parameters    TEXT NOT NULL DEFAULT '{}',
    tokens_in     INTEGER NOT NULL DEFAULT 0,
    tokens_out    INTEGER NOT NULL DEFAULT 0,
    latency_ms    INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    UNIQUE (run_id, stage_index)
);

CREATE TABLE scores (
    id          BLOB PRIMARY KEY NOT NULL,
    run_id      BLOB NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    scorer_name TEXT NOT NULL,
    value       REAL NOT NULL CHECK (value >= 0.0 AND value <= 1.0),
    metadata    TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
);
CREATE INDEX scores_run_id ON scores (run_id);

CREATE TABLE response_cache (
    config_hash TEXT PRIMARY KEY NOT NULL,
    response    TEXT NOT NULL,
    model       TEXT NOT NULL,
    tokens_in   INTEGER NOT NULL DEFAULT 0,
    tokens_out  INTEGER NOT NULL DEFAULT 0,
    latency_ms  INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

CREATE TABLE webhook_configs (
    id         BLOB PRIMARY KEY NOT NULL,
    event_type TEXT NOT NULL,
    url        TEXT NOT NULL,
    headers    TEXT NOT NULL DEFAULT '{}',
    is_active  INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    id           BLOB PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'member', 'guest')),
    created_by   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);

CREATE TABLE settings (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY NOT NULL,
    data       TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
