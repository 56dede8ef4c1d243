//! Many scores and leaderboard bumps in few statements, per backend (like `bulk`): multi-row
//! statements on SQLite, one `UNNEST` statement on PostgreSQL.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, SqliteConnection};
use uuid::Uuid;

use crate::server::scoring::ScoreRow;

/// A configuration whose leaderboard entry must be recomputed (created if new).
pub(crate) struct Bump<'a> {
    pub experiment_id: Uuid,
    pub config_key: &'a str,
    /// The configuration as JSON text (stored when the entry is new).
    pub config: String,
}

/// Rows per multi-row statement on SQLite.
const CHUNK: usize = 300;
/// Bytes of parameters per statement on PostgreSQL. sqlx 0.9.0 leaves Nagle's algorithm on:
/// a request larger than the socket accepts in one write (its send buffer starts at 16 KiB)
/// goes out in two, and the second waits for the server's delayed ACK — 40 ms. Requests under
/// this size never wait.
pub(crate) const PG_BYTES: usize = 12 * 1024;

/// Splits `items` into runs of about `PG_BYTES` (at least one item each).
pub(crate) fn pg_chunks<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    super::bulk::chunks_within(items, size, usize::MAX, PG_BYTES)
}

fn score_bytes(r: &&ScoreRow) -> usize {
    r.scorer_name.len()
        + r.config_key.len()
        + r.fingerprint.len()
        + 48
        + r.error.as_ref().map_or(0, String::len)
        + r.metadata.to_string().len()
}

pub(crate) trait ScoreBulk {
    /// Inserts or replaces scores (one per run and scorer; later duplicates win).
    async fn upsert_scores(&mut self, rows: &[&ScoreRow], now: DateTime<Utc>) -> sqlx::Result<()>;
    /// Bumps the version of each configuration's leaderboard entry (in key order, so
    /// concurrent writers lock rows in the same order).
    async fn bump_entries(&mut self, bumps: &mut Vec<Bump<'_>>) -> sqlx::Result<()>;
}

/// One row per (run, scorer): the last one given wins.
fn dedupe<'a>(rows: &[&'a ScoreRow]) -> Vec<&'a ScoreRow> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<&ScoreRow> = rows
        .iter()
        .rev()
        .filter(|r| seen.insert((r.run_id, r.scorer_name.as_str())))
        .copied()
        .collect();
    out.sort_by(|a, b| (a.run_id, &a.scorer_name).cmp(&(b.run_id, &b.scorer_name)));
    out
}

fn prepare_bumps(bumps: &mut Vec<Bump<'_>>) {
    bumps.sort_by(|a, b| (a.experiment_id, a.config_key).cmp(&(b.experiment_id, b.config_key)));
    bumps.dedup_by(|a, b| a.experiment_id == b.experiment_id && a.config_key == b.config_key);
}

impl ScoreBulk for SqliteConnection {
    async fn upsert_scores(&mut self, rows: &[&ScoreRow], now: DateTime<Utc>) -> sqlx::Result<()> {
        let rows = dedupe(rows);
        for chunk in rows.chunks(CHUNK) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO scores (run_id, scorer_name, experiment_id, config_key, fingerprint, value, error, \
                 metadata, created_at) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.run_id)
                    .push_bind(r.scorer_name.clone())
                    .push_bind(r.experiment_id)
                    .push_bind(r.config_key.clone())
                    .push_bind(r.fingerprint.clone())
                    .push_bind(r.value)
                    .push_bind(r.error.clone())
                    .push_bind(Json(r.metadata.clone()))
                    .push_bind(now);
            });
            q.push(
                " ON CONFLICT (run_id, scorer_name) DO UPDATE SET fingerprint = excluded.fingerprint, \
                 value = excluded.value, error = excluded.error, metadata = excluded.metadata, \
                 created_at = excluded.created_at",
            );
            q.build().execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn bump_entries(&mut self, bumps: &mut Vec<Bump<'_>>) -> sqlx::Result<()> {
        prepare_bumps(bumps);
        for chunk in bumps.chunks(CHUNK) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO leaderboard_entries (experiment_id, config_key) ",
            );
            q.push_values(chunk, |mut b, e| {
                b.push_bind(e.experiment_id)
                    .push_bind(e.config_key.to_owned());
            });
            q.push(
                " ON CONFLICT (experiment_id, config_key) DO UPDATE SET version = leaderboard_entries.version + 1",
            );
            q.build().execute(&mut *self).await?;
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO leaderboard_details (experiment_id, config_key, config) ",
            );
            q.push_values(chunk, |mut b, e| {
                b.push_bind(e.experiment_id)
                    .push_bind(e.config_key.to_owned())
                    .push_bind(e.config.clone());
            });
            q.push(" ON CONFLICT (experiment_id, config_key) DO NOTHING");
            q.build().execute(&mut *self).await?;
        }
        Ok(())
    }
}

impl ScoreBulk for PgConnection {
    async fn upsert_scores(&mut self, rows: &[&ScoreRow], now: DateTime<Utc>) -> sqlx::Result<()> {
        let rows = dedupe(rows);
        for rows in pg_chunks(&rows, score_bytes) {
            macro_rules! col {
                ($f:expr) => {
                    rows.iter().map($f).collect::<Vec<_>>()
                };
            }
            sqlx::query(
                "INSERT INTO scores (run_id, scorer_name, experiment_id, config_key, fingerprint, value, error, \
                 metadata, created_at) \
                 SELECT run_id, scorer_name, experiment_id, config_key, fingerprint, value, error, metadata::jsonb, $9 \
                 FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::float8[], $7::text[], \
                             $8::text[]) \
                   AS t (run_id, scorer_name, experiment_id, config_key, fingerprint, value, error, metadata) \
                 ON CONFLICT (run_id, scorer_name) DO UPDATE SET fingerprint = excluded.fingerprint, \
                 value = excluded.value, error = excluded.error, metadata = excluded.metadata, \
                 created_at = excluded.created_at",
            )
            .bind(col!(|r| r.run_id))
            .bind(col!(|r| r.scorer_name.clone()))
            .bind(col!(|r| r.experiment_id))
            .bind(col!(|r| r.config_key.clone()))
            .bind(col!(|r| r.fingerprint.clone()))
            .bind(col!(|r| r.value))
            .bind(col!(|r| r.error.clone()))
            .bind(col!(|r| r.metadata.to_string()))
            .bind(now)
            .execute(&mut *self)
            .await?;
        }
        Ok(())
    }

    async fn bump_entries(&mut self, bumps: &mut Vec<Bump<'_>>) -> sqlx::Result<()> {
        prepare_bumps(bumps);
        for chunk in pg_chunks(bumps, |b| b.config_key.len() + 16) {
            sqlx::query(
                "INSERT INTO leaderboard_entries (experiment_id, config_key) \
                 SELECT * FROM UNNEST($1::uuid[], $2::text[]) \
                 ON CONFLICT (experiment_id, config_key) DO UPDATE SET version = leaderboard_entries.version + 1",
            )
            .bind(chunk.iter().map(|b| b.experiment_id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|b| b.config_key.to_owned()).collect::<Vec<_>>())
            .execute(&mut *self)
            .await?;
        }
        for chunk in pg_chunks(bumps, |b| b.config_key.len() + b.config.len() + 16) {
            sqlx::query(
                "INSERT INTO leaderboard_details (experiment_id, config_key, config) \
                 SELECT experiment_id, config_key, config::jsonb \
                 FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS t (experiment_id, config_key, config) \
                 ON CONFLICT (experiment_id, config_key) DO NOTHING",
            )
            .bind(chunk.iter().map(|b| b.experiment_id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|b| b.config_key.to_owned()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|b| b.config.clone()).collect::<Vec<_>>())
            .execute(&mut *self)
            .await?;
        }
        Ok(())
    }
}
