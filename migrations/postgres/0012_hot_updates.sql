-- Rows rewritten many times a second during a sweep leave room on their page, so PostgreSQL
-- can update them in place (a HOT update: no new index entry, and the old version is pruned
-- on the next visit instead of waiting for autovacuum). Without it a leaderboard entry bumped
-- a hundred times leaves a hundred dead versions and index entries that every read walks past.
-- Applies to pages written from now on. migrations/sqlite/0012_hot_updates.sql is its no-op twin.
ALTER TABLE leaderboard_entries SET (fillfactor = 30);
ALTER TABLE sweeps SET (fillfactor = 50);
