-- LLM endpoints, model pricing, cache counters, and what runs need to execute.
-- Keep in step with migrations/sqlite/0002_endpoints_runs.sql.

CREATE TABLE llm_endpoints (
    id             UUID PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    kind           TEXT NOT NULL CHECK (kind IN ('openai', 'anthropic', 'simulated')),
    base_url       TEXT NOT NULL DEFAULT '',
    -- The API key, encrypted (XChaCha20-Poly1305, key kept outside the database); never sent back.
    api_key_enc    TEXT,
    -- What the key looks like, masked (sk-…abcd), for humans.
    api_key_hint   TEXT,
    options        JSONB NOT NULL DEFAULT '{}',
    max_concurrency BIGINT,
    timeout_ms     BIGINT NOT NULL DEFAULT 60000,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE model_pricing (
    model                  TEXT PRIMARY KEY NOT NULL,
    input_per_million      DOUBLE PRECISION NOT NULL CHECK (input_per_million >= 0),
    output_per_million     DOUBLE PRECISION NOT NULL CHECK (output_per_million >= 0),
    updated_at             TIMESTAMPTZ NOT NULL
);

CREATE TABLE cache_counters (
    name  TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL DEFAULT 0
);
INSERT INTO cache_counters (name, value) VALUES ('hits', 0), ('misses', 0);

ALTER TABLE runs ADD COLUMN item_index INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN repeat_index INTEGER NOT NULL DEFAULT 0;
-- Hash of the configuration without the item and repeat: runs of one configuration share it.
ALTER TABLE runs ADD COLUMN config_key TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_experiment_config_key ON runs (experiment_id, config_key);

ALTER TABLE stage_results ADD COLUMN cached BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE stage_results ADD COLUMN finish_reason TEXT;
-- The response_cache key this stage read or wrote (for per-run and per-experiment invalidation).
ALTER TABLE stage_results ADD COLUMN cache_key TEXT NOT NULL DEFAULT '';
CREATE INDEX stage_results_cache_key ON stage_results (cache_key);
ALTER TABLE stage_results ADD COLUMN usage_estimated BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE stage_results ADD COLUMN cost_estimate DOUBLE PRECISION;

ALTER TABLE response_cache ADD COLUMN finish_reason TEXT;
ALTER TABLE response_cache ADD COLUMN usage_estimated BOOLEAN NOT NULL DEFAULT FALSE;
