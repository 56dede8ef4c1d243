-- Scoring: scores per run, human ratings, the leaderboard's per-configuration summaries,
-- re-scoring jobs, exports, and the secret headers of webhook scorers.
-- Keep in step with migrations/sqlite/0004_scoring.sql.

-- Nothing wrote the first version of this table; this shape is what scoring needs.
DROP TABLE scores;
CREATE TABLE scores (
    run_id        UUID NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    scorer_name   TEXT NOT NULL,
    experiment_id UUID NOT NULL,
    config_key    TEXT NOT NULL,
    -- The scorer settings that produced it: a score whose scorer has changed since is outdated.
    fingerprint   TEXT NOT NULL,
    -- NULL when the scorer could not score the run (error says why).
    value         DOUBLE PRECISION CHECK (value IS NULL OR (value >= 0.0 AND value <= 1.0)),
    error         TEXT,
    metadata      JSONB NOT NULL DEFAULT '{}',
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, scorer_name)
);
CREATE INDEX scores_experiment_config ON scores (experiment_id, config_key);
-- Re-scoring walks an experiment's runs in the order they were planned (the order their
-- rows, stage results and scores were written in, so reads stay close together).
CREATE INDEX runs_experiment_order ON runs (experiment_id, created_at, seq, id);

-- One person's (or key's) rating of a run, for a human_rating scorer.
CREATE TABLE human_ratings (
    run_id      UUID NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    scorer_name TEXT NOT NULL,
    rater       TEXT NOT NULL,
    raw         TEXT NOT NULL,
    value       DOUBLE PRECISION NOT NULL CHECK (value >= 0.0 AND value <= 1.0),
    comment     TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, scorer_name, rater)
);

-- A configuration's standing, narrow so that bumping it is cheap. Writers bump `version`
-- whenever one of its runs, scores or ratings changes; readers recompute the summary when
-- computed_version < version.
CREATE TABLE leaderboard_entries (
    experiment_id    UUID NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    config_key       TEXT NOT NULL,
    version          BIGINT NOT NULL DEFAULT 1,
    computed_version BIGINT NOT NULL DEFAULT 0,
    score            DOUBLE PRECISION,
    std              DOUBLE PRECISION,
    ci_low           DOUBLE PRECISION,
    ci_high          DOUBLE PRECISION,
    items            BIGINT NOT NULL DEFAULT 0,
    samples          BIGINT NOT NULL DEFAULT 0,
    runs             BIGINT NOT NULL DEFAULT 0,
    failed           BIGINT NOT NULL DEFAULT 0,
    tokens_in        BIGINT NOT NULL DEFAULT 0,
    tokens_out       BIGINT NOT NULL DEFAULT 0,
    cost             DOUBLE PRECISION,
    latency_ms       DOUBLE PRECISION,
    best_run_id      UUID,
    -- Per scorer: mean, n, errors.
    scorers          JSONB NOT NULL DEFAULT '{}',
    PRIMARY KEY (experiment_id, config_key)
);

-- What an entry needs besides its numbers: the configuration, and per item the weighted and
-- per-scorer means (for paired comparisons).
CREATE TABLE leaderboard_details (
    experiment_id UUID NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    config_key    TEXT NOT NULL,
    config        JSONB NOT NULL,
    item_scores   JSONB NOT NULL DEFAULT '{}',
    PRIMARY KEY (experiment_id, config_key)
);
INSERT INTO leaderboard_entries (experiment_id, config_key)
    SELECT experiment_id, config_key FROM runs GROUP BY experiment_id, config_key;
INSERT INTO leaderboard_details (experiment_id, config_key, config)
    SELECT experiment_id, config_key, (array_agg(config))[1] FROM runs GROUP BY experiment_id, config_key;

-- The configuration leading the leaderboard, so a change of leader is noticed once.
ALTER TABLE experiments ADD COLUMN leader_config_key TEXT;

CREATE TABLE scoring_jobs (
    id            UUID PRIMARY KEY,
    experiment_id UUID NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    status        TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'superseded')),
    -- JSON list of scorer names, or NULL for every configured scorer.
    scorers       JSONB,
    force         BOOLEAN NOT NULL DEFAULT FALSE,
    -- The last run handled (in planning order): a job resumes after it.
    cursor        UUID,
    passes        BIGINT NOT NULL DEFAULT 0,
    total         BIGINT NOT NULL DEFAULT 0,
    done          BIGINT NOT NULL DEFAULT 0,
    scored        BIGINT NOT NULL DEFAULT 0,
    errors        BIGINT NOT NULL DEFAULT 0,
    calls         BIGINT NOT NULL DEFAULT 0,
    cache_hits    BIGINT NOT NULL DEFAULT 0,
    error         TEXT,
    driven_at     TIMESTAMPTZ,
    created_by    UUID,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ
);
CREATE INDEX scoring_jobs_experiment ON scoring_jobs (experiment_id, created_at);
CREATE INDEX scoring_jobs_status ON scoring_jobs (status);

-- What was exported, when, by whom: kept with the project even if the experiment goes.
CREATE TABLE exports (
    id              UUID PRIMARY KEY,
    project_id      UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    experiment_id   UUID REFERENCES experiments (id) ON DELETE SET NULL,
    experiment_name TEXT NOT NULL,
    format          TEXT NOT NULL,
    config_key      TEXT NOT NULL,
    score           DOUBLE PRECISION,
    content         TEXT NOT NULL,
    exported_by     UUID,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX exports_experiment ON exports (experiment_id, created_at);
CREATE INDEX exports_project ON exports (project_id, created_at);

-- Header values of webhook scorers, encrypted like endpoint keys; never in scoring_config.
CREATE TABLE scorer_secrets (
    experiment_id UUID NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    scorer_name   TEXT NOT NULL,
    header        TEXT NOT NULL,
    sealed        TEXT NOT NULL,
    PRIMARY KEY (experiment_id, scorer_name, header)
);
