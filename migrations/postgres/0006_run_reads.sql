-- Run listings at size: sorting or filtering by one scorer walks this index in score order
-- (covering: the run id is in it), and listing by item walks the second.
CREATE INDEX scores_by_value ON scores (experiment_id, scorer_name, fingerprint, value, run_id);
CREATE INDEX runs_experiment_item ON runs (experiment_id, item_index, repeat_index, created_at, id);
