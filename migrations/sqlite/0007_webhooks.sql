-- Webhooks: URLs that receive the spec's events, signed the Standard Webhooks way. Deliveries
-- are an outbox: a row per (webhook, event) written in the transaction that records the event,
-- claimed under a lease and retried with backoff, so a restart loses none and none goes twice.
-- Keep in step with migrations/postgres/0007_webhooks.sql.

CREATE TABLE webhooks (
    id              BLOB PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    url             TEXT NOT NULL,
    -- The signing secret and the custom headers (a JSON object), encrypted; never returned.
    secret          TEXT NOT NULL,
    headers         TEXT,
    -- The custom headers' names (shown), a JSON array.
    header_names    TEXT NOT NULL DEFAULT '[]',
    -- ',type,type,' for the events subscribed to, or '*' for all of them.
    events          TEXT NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1,
    -- Why it was turned off (e.g. failing for a day); cleared when turned back on.
    disabled_reason TEXT,
    -- The first failure of the current run of failures (NULL after a success).
    failing_since   TEXT,
    created_by      BLOB,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              BLOB PRIMARY KEY NOT NULL,
    webhook_id      BLOB NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    -- pending (due at next_attempt_at), delivered, or failed (gave up after a day).
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    -- The body as first sent (every retry sends the same bytes).
    body            TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    last_latency_ms REAL,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);

-- Every attempt, for the delivery log.
CREATE TABLE webhook_attempts (
    delivery_id     BLOB NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    status_code     INTEGER,
    error           TEXT,
    latency_ms      REAL NOT NULL,
    at              TEXT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
