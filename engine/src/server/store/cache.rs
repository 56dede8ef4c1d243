//! The `response_cache` table (one row per distinct LLM call) and its hit/miss counters.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::Result;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CachedResponse {
    pub response: String,
    pub model: String,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub latency_ms: i64,
    pub finish_reason: Option<String>,
    pub usage_estimated: bool,
}

pub async fn get(db: &Db, key: &str) -> Result<Option<CachedResponse>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, CachedResponse>(
        "SELECT response, model, tokens_in, tokens_out, latency_ms, finish_reason, usage_estimated \
         FROM response_cache WHERE config_hash = $1")
        .bind(key).fetch_optional(p).await)?)
}

/// Looks up many keys at once (in chunks); returns the ones present.
pub async fn get_many(
    db: &Db,
    keys: &[&str],
) -> Result<std::collections::HashMap<String, CachedResponse>> {
    #[derive(sqlx::FromRow)]
    struct Hit {
        config_hash: String,
        #[sqlx(flatten)]
        answer: CachedResponse,
    }
    let mut out = std::collections::HashMap::new();
    match db {
        // One statement text, prepared once. Chunks of 100 keys keep each request within one
        // small write: sqlx 0.9.0 leaves Nagle's algorithm on, and a mid-sized request (tens of
        // KiB) can wait 40 ms for the server's delayed ACK before its last bytes go out.
        Db::Postgres(p) => {
            for chunk in keys.chunks(100) {
                let rows: Vec<Hit> = sqlx::query_as(
                    "SELECT config_hash, response, model, tokens_in, tokens_out, latency_ms, finish_reason, \
                     usage_estimated FROM response_cache WHERE config_hash = ANY($1)",
                )
                .bind(chunk.to_vec())
                .fetch_all(p)
                .await?;
                out.extend(rows.into_iter().map(|h| (h.config_hash, h.answer)));
            }
        }
        Db::Sqlite(p) => {
            for chunk in keys.chunks(500) {
                let placeholders: Vec<String> =
                    (1..=chunk.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT config_hash, response, model, tokens_in, tokens_out, latency_ms, finish_reason, \
                     usage_estimated FROM response_cache WHERE config_hash IN ({})",
                    placeholders.join(", ")
                );
                let mut q = sqlx::query_as::<_, Hit>(sqlx::AssertSqlSafe(sql));
                for k in chunk {
                    q = q.bind(*k);
                }
                out.extend(
                    q.fetch_all(p)
                        .await?
                        .into_iter()
                        .map(|h| (h.config_hash, h.answer)),
                );
            }
        }
    }
    Ok(out)
}

/// Stores a successful response; an existing entry for the key wins (same request).
pub async fn put(db: &Db, key: &str, r: &CachedResponse) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "INSERT INTO response_cache (config_hash, response, model, tokens_in, tokens_out, latency_ms, \
         finish_reason, usage_estimated, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (config_hash) DO NOTHING")
        .bind(key).bind(&r.response).bind(&r.model).bind(r.tokens_in).bind(r.tokens_out).bind(r.latency_ms)
        .bind(&r.finish_reason).bind(r.usage_estimated).bind(Utc::now())
        .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Forgets the entries a run's stages used; returns how many.
pub async fn delete_for_run(db: &Db, run_id: Uuid) -> Result<u64> {
    Ok(on_db!(db, p => sqlx::query(
        "DELETE FROM response_cache WHERE config_hash IN (SELECT cache_key FROM stage_results WHERE run_id = $1)")
        .bind(run_id).execute(p).await.map(|r| r.rows_affected()))?)
}

/// Forgets the entries any run of an experiment used; returns how many.
pub async fn delete_for_experiment(db: &Db, experiment_id: Uuid) -> Result<u64> {
    Ok(on_db!(db, p => sqlx::query(
        "DELETE FROM response_cache WHERE config_hash IN (SELECT s.cache_key FROM stage_results s \
         JOIN runs r ON r.id = s.run_id WHERE r.experiment_id = $1)")
        .bind(experiment_id).execute(p).await.map(|r| r.rows_affected()))?)
}

pub async fn delete_all(db: &Db) -> Result<u64> {
    Ok(
        on_db!(db, p => sqlx::query("DELETE FROM response_cache").execute(p).await.map(|r| r.rows_affected()))?,
    )
}

/// Adds to the hit and miss counters.
pub async fn count(db: &Db, hits: i64, misses: i64) -> Result<()> {
    if hits == 0 && misses == 0 {
        return Ok(());
    }
    on_db!(db, p => sqlx::query(
        "UPDATE cache_counters SET value = value + CASE name WHEN 'hits' THEN $1 WHEN 'misses' THEN $2 ELSE 0 END")
        .bind(hits).bind(misses).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// (hits, misses) since the database was created.
pub async fn counters(db: &Db) -> Result<(i64, i64)> {
    let rows: Vec<(String, i64)> = on_db!(db, p => sqlx::query_as("SELECT name, value FROM cache_counters").fetch_all(p).await)?;
    let get = |n: &str| {
        rows.iter()
            .find(|(name, _)| name == n)
            .map_or(0, |(_, v)| *v)
    };
    Ok((get("hits"), get("misses")))
}

/// (entries, bytes, tokens, oldest, newest) of the whole cache, and entries per model.
pub async fn summary(db: &Db) -> Result<crate::types::CacheStats> {
    type Totals = (
        i64,
        Option<i64>,
        Option<i64>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    // Bytes, not characters, on both backends.
    let length = match db {
        Db::Sqlite(_) => "LENGTH(CAST(response AS BLOB))",
        Db::Postgres(_) => "OCTET_LENGTH(response)",
    };
    let sql = format!(
        "SELECT COUNT(*), CAST(SUM({length}) AS BIGINT), CAST(SUM(tokens_in + tokens_out) AS BIGINT), \
         MIN(created_at), MAX(created_at) FROM response_cache"
    );
    let (entries, bytes, tokens, oldest, newest): Totals = on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .fetch_one(p).await)?;
    let by_model: Vec<(String, i64)> = on_db!(db, p => sqlx::query_as(
        "SELECT model, COUNT(*) FROM response_cache GROUP BY model ORDER BY COUNT(*) DESC, model LIMIT 50")
        .fetch_all(p).await)?;
    Ok(crate::types::CacheStats {
        entries,
        bytes: bytes.unwrap_or(0),
        tokens: tokens.unwrap_or(0),
        oldest,
        newest,
        by_model: by_model
            .into_iter()
            .map(|(model, entries)| crate::types::ModelEntries { model, entries })
            .collect(),
        ..Default::default()
    })
}
