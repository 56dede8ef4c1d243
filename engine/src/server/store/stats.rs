//! System-wide counts for `GET /api/v1/admin/stats`.

use super::{Db, on_db};
use crate::server::error::Result;
use crate::types::RunCounts;

#[derive(Debug, sqlx::FromRow)]
pub struct Totals {
    pub users: i64,
    pub projects: i64,
    pub experiments: i64,
    pub cache_entries: i64,
    pub active_api_keys: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_estimate: f64,
}

pub async fn totals(db: &Db) -> Result<Totals> {
    let sql = "SELECT \
        (SELECT COUNT(*) FROM users) AS users, \
        (SELECT COUNT(*) FROM projects) AS projects, \
        (SELECT COUNT(*) FROM experiments) AS experiments, \
        (SELECT COUNT(*) FROM response_cache) AS cache_entries, \
        (SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL) AS active_api_keys, \
        (SELECT CAST(COALESCE(SUM(tokens_in), 0) AS BIGINT) FROM runs) AS tokens_in, \
        (SELECT CAST(COALESCE(SUM(tokens_out), 0) AS BIGINT) FROM runs) AS tokens_out, \
        (SELECT CAST(COALESCE(SUM(cost_estimate), 0) AS DOUBLE PRECISION) FROM runs) AS cost_estimate";
    Ok(on_db!(db, p => sqlx::query_as::<_, Totals>(sql).fetch_one(p).await)?)
}

pub async fn run_counts(db: &Db) -> Result<RunCounts> {
    let rows: Vec<(String, i64)> = on_db!(db, p => sqlx::query_as("SELECT status, COUNT(*) FROM runs GROUP BY status").fetch_all(p).await)?;
    let mut c = RunCounts::default();
    for (status, n) in rows {
        c.total += n;
        match status.as_str() {
            "pending" => c.pending = n,
            "running" => c.running = n,
            "completed" => c.completed = n,
            "failed" => c.failed = n,
            "cached" => c.cached = n,
            _ => {}
        }
    }
    Ok(c)
}

/// Tables whose planner statistics a large read over an experiment's runs depends on.
pub const RUN_TABLES: [&str; 3] = ["runs", "stage_results", "scores"];

/// PostgreSQL: analyzes those of `tables` that changed by more than autovacuum's own threshold
/// (50 rows + 10 %) since they were last analyzed, and returns their names. Right after a large
/// sweep autovacuum has not reached them yet, and plans made from the old statistics (a table
/// thought nearly empty) read a re-scoring job's batches several times slower. SQLite: nothing.
pub async fn analyze_stale(db: &Db, tables: &[&'static str]) -> Result<Vec<&'static str>> {
    let Db::Postgres(p) = db else {
        return Ok(Vec::new());
    };
    let stale: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_stat_user_tables \
         WHERE relid IN (SELECT to_regclass(t)::oid FROM UNNEST($1::text[]) t) \
         AND n_mod_since_analyze > 50 + 0.1 * n_live_tup",
    )
    .bind(tables)
    .fetch_all(p)
    .await?;
    let stale: Vec<&'static str> = tables
        .iter()
        .copied()
        .filter(|t| stale.iter().any(|s| s == t))
        .collect();
    for table in &stale {
        // A name from the caller's fixed list, never from input.
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
            .execute(p)
            .await?;
    }
    Ok(stale)
}
