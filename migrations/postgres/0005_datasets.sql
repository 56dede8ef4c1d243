-- Sample items move out of `experiments.sample_data` into datasets of their own: a dataset is
-- private to one experiment (name NULL) or named and shared in its project; every change makes
-- a new version, and an item's revisions are kept, so any version can be read back whole.
-- Keep in step with migrations/sqlite/0005_datasets.sql.

CREATE TABLE datasets (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- NULL: the private dataset of one experiment (it goes with the experiment).
    name        TEXT,
    description TEXT NOT NULL DEFAULT '',
    -- The newest version.
    version     BIGINT NOT NULL DEFAULT 1,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (project_id, name)
);

-- What each version holds, counted when it was made (fields NULL: not counted yet, counted on
-- the first read).
CREATE TABLE dataset_versions (
    dataset_id    UUID NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    version       BIGINT NOT NULL,
    item_count    BIGINT NOT NULL DEFAULT 0,
    fields        JSONB,
    common_fields JSONB,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (dataset_id, version)
);

-- One revision of one item: it belongs to the versions since_version <= v < until_version.
-- `position` orders the items and stays with the item (never renumbered; gaps after deletions).
CREATE TABLE dataset_items (
    dataset_id    UUID NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    item_id       TEXT NOT NULL,
    since_version BIGINT NOT NULL,
    until_version BIGINT,
    position      BIGINT NOT NULL,
    -- The input's names, sorted, as a JSON array: versions count their fields from it alone.
    keys          TEXT NOT NULL,
    split         TEXT,
    tags          JSONB NOT NULL DEFAULT '[]',
    reference     TEXT,
    -- Last: long inputs stay out of the way of the columns above.
    input         JSONB NOT NULL,
    PRIMARY KEY (dataset_id, item_id, since_version)
);
CREATE INDEX dataset_items_order ON dataset_items (dataset_id, position);

ALTER TABLE experiments ADD COLUMN dataset_id UUID REFERENCES datasets (id);
ALTER TABLE experiments ADD COLUMN dataset_version BIGINT NOT NULL DEFAULT 1;
CREATE INDEX experiments_dataset ON experiments (dataset_id);

-- Each experiment's items become version 1 of its private dataset (same id as the experiment).
INSERT INTO datasets (id, project_id, name, description, version, created_at, updated_at)
SELECT id, project_id, NULL, '', 1, created_at, updated_at FROM experiments;

-- An item keeps the id it was given when that id is unique in its experiment; others get one.
WITH src AS (
    SELECT e.id AS dataset_id, j.ord - 1 AS position, j.v, j.v ->> 'id' AS given
    FROM experiments e, jsonb_array_elements(e.sample_data) WITH ORDINALITY AS j (v, ord)
), counted AS (
    SELECT src.*, COUNT(*) OVER (PARTITION BY dataset_id, given) AS uses FROM src
)
INSERT INTO dataset_items (dataset_id, item_id, since_version, until_version, position, keys,
                           split, tags, reference, input)
SELECT dataset_id,
       CASE WHEN given IS NOT NULL AND given <> '' AND uses = 1 THEN given
            ELSE replace(gen_random_uuid()::text, '-', '') END,
       1, NULL, position,
       (SELECT '[' || COALESCE(string_agg(to_json(k)::text, ',' ORDER BY k COLLATE "C"), '') || ']'
          FROM jsonb_object_keys(COALESCE(v -> 'input', '{}'::jsonb)) AS k),
       NULL, '[]'::jsonb, v ->> 'reference', COALESCE(v -> 'input', '{}'::jsonb)
FROM counted;

INSERT INTO dataset_versions (dataset_id, version, item_count, fields, common_fields, created_at)
SELECT id, 1, jsonb_array_length(sample_data), NULL, NULL, updated_at FROM experiments;

UPDATE experiments SET dataset_id = id, dataset_version = 1;
ALTER TABLE experiments DROP COLUMN sample_data;

-- Runs name their item by id (and the dataset version they were planned on); `item_index` is
-- now the item's position.
ALTER TABLE runs ADD COLUMN item_id TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN item_version BIGINT NOT NULL DEFAULT 1;
UPDATE runs SET item_id = d.item_id FROM dataset_items d
    WHERE d.dataset_id = runs.experiment_id AND d.position = runs.item_index;

-- The leaderboard now pairs configurations by item id: every summary is recomputed.
UPDATE leaderboard_entries SET version = version + 1;
