-- Failed sign-ins for usernames that have no account, counted and locked exactly as an
-- account's are, so the answers (and their timing) do not tell whether an account exists.
-- Keep in step with migrations/postgres/0010_hardening.sql.
CREATE TABLE sign_in_failures (
    username      TEXT PRIMARY KEY,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  TEXT,
    updated_at    TEXT NOT NULL
);
CREATE INDEX sign_in_failures_age ON sign_in_failures (updated_at);

-- Per-run events (EVENT_RETENTION_DAYS removes the old ones in small batches), by age.
CREATE INDEX events_per_run_age ON events (created_at)
    WHERE event_type IN ('run.started', 'run.completed', 'run.cached', 'run.failed', 'stage.completed');
