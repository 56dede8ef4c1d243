-- Guided sweeps plan round by round: the round counter orders concurrent planners (only the
-- one that read round N may plan N + 1) and the search state travels with the sweep.
-- Keep in step with migrations/sqlite/0009_guided_sweeps.sql.
ALTER TABLE sweeps ADD COLUMN guide_round BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sweeps ADD COLUMN guide JSONB;
-- A budget of LLM calls (next to tokens and cost).
ALTER TABLE sweeps ADD COLUMN max_calls BIGINT;
