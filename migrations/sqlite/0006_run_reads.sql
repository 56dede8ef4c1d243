-- Run listings at size: sorting or filtering by one scorer walks this index in score order
-- (covering: the run id is in it), listing by item walks the second, and one item's runs
-- (the run page's other configurations, comparisons item by item) come from the third.
CREATE INDEX scores_by_value ON scores (experiment_id, scorer_name, fingerprint, value, run_id);
CREATE INDEX runs_experiment_item ON runs (experiment_id, item_index, repeat_index, created_at, id);
CREATE INDEX runs_experiment_item_id ON runs (experiment_id, item_id, config_key);
