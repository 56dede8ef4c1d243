-- Endpoint limits that hold across every process: requests and tokens per minute, and the
-- shared state that paces them. migrations/sqlite/0011_endpoint_pace.sql adds the same columns;
-- SQLite runs one process, which keeps the pace in memory.
ALTER TABLE llm_endpoints ADD COLUMN rpm BIGINT;
ALTER TABLE llm_endpoints ADD COLUMN tpm BIGINT;

-- One row per endpoint that has been paced: the two token buckets (levels may go below zero:
-- calls admitted ahead wait their turn), the rate learned from 429s (AIMD), and the calls that
-- succeeded in the current minute and the one before. Times are Unix milliseconds.
CREATE TABLE endpoint_pace (
    endpoint_id     UUID PRIMARY KEY REFERENCES llm_endpoints (id) ON DELETE CASCADE,
    requests        DOUBLE PRECISION NOT NULL,
    tokens          DOUBLE PRECISION NOT NULL,
    at_ms           BIGINT NOT NULL,
    learned_rpm     DOUBLE PRECISION,
    cut_at_ms       BIGINT NOT NULL DEFAULT 0,
    cut_to_rpm      DOUBLE PRECISION NOT NULL DEFAULT 0,
    window_start_ms BIGINT NOT NULL,
    window_calls    BIGINT NOT NULL DEFAULT 0,
    prev_calls      BIGINT NOT NULL DEFAULT 0,
    -- When counting began: a rate is what got through per minute of the time since.
    since_ms        BIGINT NOT NULL
);

-- Calls in flight to an endpoint with a max_concurrency, one row each, by the process (node)
-- making it. A dead process's rows go when it is noticed dead (see presence.rs); a row older
-- than its call could last is not counted.
CREATE TABLE endpoint_flights (
    id          UUID PRIMARY KEY,
    endpoint_id UUID NOT NULL REFERENCES llm_endpoints (id) ON DELETE CASCADE,
    node        TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX endpoint_flights_endpoint ON endpoint_flights (endpoint_id);
CREATE INDEX endpoint_flights_node ON endpoint_flights (node);
