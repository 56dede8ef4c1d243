-- Keeps the version numbers in step with migrations/postgres/0012_hot_updates.sql, which
-- leaves free space on pages of rows rewritten during a sweep. SQLite rewrites a row in place
-- already; nothing to change here.
SELECT 1;
