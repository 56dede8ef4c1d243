-- Scoring: scores per run, human ratings, the leaderboard's per-configuration summaries,
-- re-scoring jobs, exports, and the secret headers of webhook scorers.
-- Keep in step with migrations/postgres/0004_scoring.sql.

-- Nothing wrote the first version of this table; this shape is what scoring needs.
DROP TABLE scores;
CREATE TABLE scores (
    run_id        BLOB NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    scorer_name   TEXT NOT NULL,
    experiment_id BLOB NOT NULL,
    config_key    TEXT NOT NULL,
    -- The scorer settings that produced it: a score whose scorer has changed since is outdated.
    fingerprint   TEXT NOT NULL,
    -- NULL when the scorer could not score the run (error says why).
    value         REAL CHECK (value IS NULL OR (value >= 0.0 AND value <= 1.0)),
    error         TEXT,
    metadata      TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    PRIMARY KEY (run_id, scorer_name)
);
CREATE INDEX scores_experiment_config ON scores (experiment_id, config_key);
-- Re-scoring walks an experiment's runs in the order they were planned (the order their
-- rows, stage results and scores were written in, so reads stay close together).
CREATE INDEX runs_experiment_order ON runs (experiment_id, created_at, seq, id);

-- One person's (or key's) rating of a run, for a human_rating scorer.
CREATE TABLE human_ratings (
    run_id      BLOB NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    scorer_name TEXT NOT NULL,
    rater       TEXT NOT NULL,
    raw         TEXT NOT NULL,
    value       REAL NOT NULL CHECK (value >= 0.0 AND value <= 1.0),
    comment     TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (run_id, scorer_name, rater)
);

-- A configuration's standing, narrow so that bumping it is cheap. Writers bump `version`
-- whenever one of its runs, scores or ratings changes; readers recompute the summary when
-- computed_version < version.
CREATE TABLE leaderboard_entries (
    experiment_id    BLOB NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    config_key       TEXT NOT NULL,
    version          INTEGER NOT NULL DEFAULT 1,
    computed_version INTEGER NOT NULL DEFAULT 0,
    score            REAL,
    std              REAL,
    ci_low           REAL,
    ci_high          REAL,
    items            INTEGER NOT NULL DEFAULT 0,
    samples          INTEGER NOT NULL DEFAULT 0,
    runs             INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0,
    tokens_in        INTEGER NOT NULL DEFAULT 0,
    tokens_out       INTEGER NOT NULL DEFAULT 0,
    cost             REAL,
    latency_ms       REAL,
    best_run_id      BLOB,
    -- Per scorer: mean, n, errors.
    scorers          TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (experiment_id, config_key)
);

-- What an entry needs besides its numbers: the configuration, and per item the weighted and
-- per-scorer means (for paired comparisons).
CREATE TABLE leaderboard_details (
    experiment_id BLOB NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    config_key    TEXT NOT NULL,
    config        TEXT NOT NULL,
    item_scores   TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (experiment_id, config_key)
);
INSERT INTO leaderboard_entries (experiment_id, config_key)
    SELECT experiment_id, config_key FROM runs GROUP BY experiment_id, config_key;
INSERT INTO leaderboard_details (experiment_id, config_key, config)
    SELECT experiment_id, config_key, MIN(config) FROM runs GROUP BY experiment_id, config_key;

-- The configuration leading the leaderboard, so a change of leader is noticed once.
ALTER TABLE experiments ADD COLUMN leader_config_key TEXT;

CREATE TABLE scoring_jobs (
    id            BLOB PRIMARY KEY NOT NULL,
    experiment_id BLOB NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    status        TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'superseded')),
    -- JSON list of scorer names, or NULL for every configured scorer.
    scorers       TEXT,
    force         INTEGER NOT NULL DEFAULT 0,
    -- The last run handled (in planning order): a job resumes after it.
    cursor        BLOB,
    passes        INTEGER NOT NULL DEFAULT 0,
    total         INTEGER NOT NULL DEFAULT 0,
    done          INTEGER NOT NULL DEFAULT 0,
    scored        INTEGER NOT NULL DEFAULT 0,
    errors        INTEGER NOT NULL DEFAULT 0,
    calls         INTEGER NOT NULL DEFAULT 0,
    cache_hits    INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    driven_at     TEXT,
    created_by    BLOB,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    finished_at   TEXT
);
CREATE INDEX scoring_jobs_experiment ON scoring_jobs (experiment_id, created_at);
CREATE INDEX scoring_jobs_status ON scoring_jobs (status);

-- What was exported, when, by whom: kept with the project even if the experiment goes.
CREATE TABLE exports (
    id              BLOB PRIMARY KEY NOT NULL,
    project_id      BLOB NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    experiment_id   BLOB REFERENCES experiments (id) ON DELETE SET NULL,
    experiment_name TEXT NOT NULL,
    format          TEXT NOT NULL,
    config_key      TEXT NOT NULL,
    score           REAL,
    content         TEXT NOT NULL,
    exported_by     BLOB,
    created_at      TEXT NOT NULL
);
CREATE INDEX exports_experiment ON exports (experiment_id, created_at);
CREATE INDEX exports_project ON exports (project_id, created_at);

-- Header values of webhook scorers, encrypted like endpoint keys; never in scoring_config.
CREATE TABLE scorer_secrets (
    experiment_id BLOB NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    scorer_name   TEXT NOT NULL,
    header        TEXT NOT NULL,
    sealed        TEXT NOT NULL,
    PRIMARY KEY (experiment_id, scorer_name, header)
);
