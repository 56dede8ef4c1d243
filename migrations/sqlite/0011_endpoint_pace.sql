-- Endpoint limits: requests and tokens per minute. Keep in step with
-- migrations/postgres/0011_endpoint_pace.sql, whose pace and flight tables share these limits
-- between processes; SQLite runs one process, which keeps the pace in memory.
ALTER TABLE llm_endpoints ADD COLUMN rpm INTEGER;
ALTER TABLE llm_endpoints ADD COLUMN tpm INTEGER;
