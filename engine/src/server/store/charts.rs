//! What charts read: per-item scores from the leaderboard summaries (only the part a chart
//! needs, extracted in SQL), completed runs bucketed over time, and `new_best_found` events.
//! Never every run.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::leaderboard::by_keys;
use super::{Db, on_db};
use crate::server::error::Result;
use crate::types::RunConfig;

/// Time buckets of the progress chart.
pub const BUCKETS: i64 = 60;

/// A configuration's per-item scores: the weighted score, or one scorer's.
#[derive(Debug, Clone)]
pub struct ItemValues {
    pub config_key: String,
    pub config: Option<RunConfig>,
    /// Per item (the mean over its repeats), in item-key order.
    pub values: Vec<f64>,
}

#[derive(sqlx::FromRow)]
struct Row {
    config_key: String,
    config: Option<Json<RunConfig>>,
    items: Option<String>,
}

/// The per-item part of `item_scores` as JSON text: `w` (weighted) or `s` (every scorer).
fn extract(db: &Db, scorer: bool) -> &'static str {
    match (db, scorer) {
        (Db::Sqlite(_), false) => "json_extract(item_scores, '$.w')",
        (Db::Sqlite(_), true) => "json_extract(item_scores, '$.s')",
        (Db::Postgres(_), false) => "CAST(item_scores -> 'w' AS TEXT)",
        (Db::Postgres(_), true) => "CAST(item_scores -> 's' AS TEXT)",
    }
}

fn values(text: Option<&str>, scorer: Option<&str>) -> Vec<f64> {
    let Some(text) = text else {
        return Vec::new();
    };
    match scorer {
        None => serde_json::from_str::<BTreeMap<i64, f64>>(text)
            .map(|m| m.into_values().collect())
            .unwrap_or_default(),
        Some(name) => serde_json::from_str::<BTreeMap<String, BTreeMap<i64, f64>>>(text)
            .ok()
            .and_then(|mut m| m.remove(name))
            .map(|m| m.into_values().collect())
            .unwrap_or_default(),
    }
}

/// Per-item values of every configuration of the experiment (`keys: None`) or of these, with
/// their configurations when `with_config`.
pub async fn item_values(
    db: &Db,
    experiment_id: Uuid,
    keys: Option<&[String]>,
    scorer: Option<&str>,
    with_config: bool,
) -> Result<Vec<ItemValues>> {
    let config = if with_config { "config" } else { "NULL" };
    let select = format!(
        "SELECT config_key, {config} AS config, {} AS items FROM leaderboard_details WHERE experiment_id = ",
        extract(db, scorer.is_some())
    );
    let rows: Vec<Row> = match keys {
        Some(keys) => by_keys(db, &select, "config_key", experiment_id, keys).await?,
        None => {
            let sql = format!("{select}$1");
            on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(experiment_id).fetch_all(p).await)?
        }
    };
    Ok(rows
        .into_iter()
        .map(|r| ItemValues {
            values: values(r.items.as_deref(), scorer),
            config_key: r.config_key,
            config: r.config.map(|c| c.0),
        })
        .collect())
}

/// Completed (and cached) runs of the experiment in [`BUCKETS`] equal spans of time between
/// the first and the last: (bucket, runs) for non-empty buckets, and the span (Unix seconds).
pub struct Buckets {
    pub counts: Vec<(i64, i64)>,
    pub first: f64,
    pub last: f64,
}

pub async fn completed_buckets(db: &Db, experiment_id: Uuid) -> Result<Option<Buckets>> {
    const WHERE: &str = "FROM runs WHERE experiment_id = $1 AND status IN ('completed', 'cached') \
         AND completed_at IS NOT NULL";
    let sql = match db {
        Db::Sqlite(_) => format!(
            "WITH t AS MATERIALIZED (SELECT (julianday(completed_at) - 2440587.5) * 86400.0 AS s {WHERE}), \
             r AS (SELECT MIN(s) AS lo, MAX(s) AS hi FROM t) \
             SELECT CAST(MIN({last}, (t.s - r.lo) * {BUCKETS} / MAX(r.hi - r.lo, 0.000001)) AS INTEGER) AS b, \
             COUNT(*) AS n, MIN(r.lo) AS lo, MIN(r.hi) AS hi FROM t, r GROUP BY b ORDER BY b",
            last = BUCKETS - 1
        ),
        Db::Postgres(_) => format!(
            "WITH t AS MATERIALIZED (SELECT CAST(EXTRACT(EPOCH FROM completed_at) AS FLOAT8) AS s {WHERE}), \
             r AS (SELECT MIN(s) AS lo, MAX(s) AS hi FROM t) \
             SELECT CAST(LEAST({last}, FLOOR((t.s - r.lo) * {BUCKETS} / GREATEST(r.hi - r.lo, 0.000001))) AS BIGINT) AS b, \
             COUNT(*) AS n, MIN(r.lo) AS lo, MIN(r.hi) AS hi FROM t CROSS JOIN r GROUP BY 1 ORDER BY 1",
            last = BUCKETS - 1
        ),
    };
    let rows: Vec<(i64, i64, f64, f64)> = on_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(experiment_id).fetch_all(p).await)?;
    let Some(&(_, _, first, last)) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(Buckets {
        counts: rows.into_iter().map(|(b, n, _, _)| (b, n)).collect(),
        first,
        last,
    }))
}

/// The experiment's `new_best_found` events, oldest first: when, and their payload.
pub async fn bests(db: &Db, experiment_id: Uuid) -> Result<Vec<(DateTime<Utc>, Value)>> {
    let rows: Vec<(DateTime<Utc>, Json<Value>)> = on_db!(db, p => sqlx::query_as(
        "SELECT created_at, payload FROM events WHERE experiment_id = $1 AND event_type = 'new_best_found' \
         ORDER BY id")
        .bind(experiment_id).fetch_all(p).await)?;
    Ok(rows.into_iter().map(|(t, p)| (t, p.0)).collect())
}
