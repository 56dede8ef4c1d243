-- PromptLooper's data model (the spec's tables plus what auth needs).
-- Keep in step with migrations/sqlite/0001_initial.sql: same version, same names.
-- Ids are UUIDs, times TIMESTAMPTZ, JSON is JSONB.

CREATE TABLE users (
    id              UUID PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'member', 'guest')),
    session_version BIGINT NOT NULL DEFAULT 0,
    failed_logins   BIGINT NOT NULL DEFAULT 0,
    locked_until    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE projects (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    notes       TEXT NOT NULL DEFAULT '',
    owner_id    UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE experiments (
    id              UUID PRIMARY KEY,
    project_id      UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    sample_data     JSONB NOT NULL DEFAULT '[]',
    pipeline_stages JSONB NOT NULL DEFAULT '[]',
    scoring_config  JSONB NOT NULL DEFAULT '[]',
    parameter_space JSONB NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'running', 'paused', 'completed')),
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX experiments_project_id ON experiments (project_id);

CREATE TABLE runs (
    id            UUID PRIMARY KEY,
    experiment_id UUID NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    config_hash   TEXT NOT NULL,
    config        JSONB NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cached')),
    error         TEXT,
    started_at    TIMESTAMPTZ,
    completed_at  TIMESTAMPTZ,
    duration_ms   BIGINT,
    tokens_in     BIGINT NOT NULL DEFAULT 0,
    tokens_out    BIGINT NOT NULL DEFAULT 0,
    cost_estimate DOUBLE PRECISION,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX runs_experiment_status ON runs (experiment_id, status);
CREATE INDEX runs_config_hash ON runs (config_hash);

CREATE TABLE stage_results (
    id            UUID PRIMARY KEY,
    run_id        UUID NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    stage_index   INTEGER NOT NULL,
    prompt_sent   TEXT NOT NULL,
    response_raw  TEXT NOT NULL,
    model_used    TEXT NOT NULL,
    parameters    JSONB NOT NULL DEFAULT '{}',
    tokens_in     BIGINT NOT NULL DEFAULT 0,
    tokens_out    BIGINT NOT NULL DEFAULT 0,
    latency_ms    BIGINT NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (run_id, stage_index)
);

CREATE TABLE scores (
    id          UUID PRIMARY KEY,
    run_id      UUID NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    scorer_name TEXT NOT NULL,
    value       DOUBLE PRECISION NOT NULL CHECK (value >= 0.0 AND value <= 1.0),
    metadata    JSONB NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX scores_run_id ON scores (run_id);

CREATE TABLE response_cache (
    config_hash TEXT PRIMARY KEY NOT NULL,
    response    TEXT NOT NULL,
    model       TEXT NOT NULL,
    tokens_in   BIGINT NOT NULL DEFAULT 0,
    tokens_out  BIGINT NOT NULL DEFAULT 0,
    latency_ms  BIGINT NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE webhook_configs (
    id         UUID PRIMARY KEY,
    event_type TEXT NOT NULL,
    url        TEXT NOT NULL,
    headers    JSONB NOT NULL DEFAULT '{}',
    is_active  BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'member', 'guest')),
    created_by   UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

CREATE TABLE settings (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY NOT NULL,
    data       TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
