-- A price change re-prices the stages and runs of one model: find them by an index, not by
-- reading every stage result while the re-pricing transaction holds its locks.
CREATE INDEX stage_results_model ON stage_results (model_used, run_id);
