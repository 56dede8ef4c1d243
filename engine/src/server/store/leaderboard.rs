//! The `leaderboard_entries` table (one narrow summary per configuration, recomputed when
//! its version moves), `leaderboard_details` (its configuration and per-item scores), and the
//! reads that recompute them.

use std::collections::HashMap;

use sqlx::types::Json;
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::Result;
use crate::types::{RunConfig, ScorerSummary};

/// What the leaderboard needs of one ended run.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunFact {
    pub id: Uuid,
    pub config_key: String,
    pub config_hash: String,
    pub item_id: String,
    pub item_index: i32,
    pub status: String,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_estimate: Option<f64>,
    /// The sum of its stages' call latencies.
    pub latency_ms: Option<i64>,
}

/// A stored score, as the leaderboard reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScoreFact {
    pub run_id: Uuid,
    pub scorer_name: String,
    pub fingerprint: String,
    pub value: Option<f64>,
}

/// Per item (keyed by [`item_key`]): the weighted mean (`w`) and each scorer's mean (`s`), for
/// paired comparisons.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ItemScores {
    pub w: std::collections::BTreeMap<i64, f64>,
    pub s: std::collections::BTreeMap<String, std::collections::BTreeMap<i64, f64>>,
}

/// A number standing for an item id, the same in every configuration's summary (the first
/// 8 bytes of its SHA-256): configurations are paired by item, whatever its position.
pub fn item_key(item_id: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(item_id.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// A configuration's recomputed standing.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub config_key: String,
    pub version: i64,
    pub score: Option<f64>,
    pub std: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub items: i64,
    pub samples: i64,
    pub runs: i64,
    pub failed: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost: Option<f64>,
    pub latency_ms: Option<f64>,
    pub best_run_id: Option<Uuid>,
    pub scorers: std::collections::BTreeMap<String, ScorerSummary>,
    pub item_scores: ItemScores,
}

/// Entries whose summary is older than their version: (config_key, version).
pub async fn stale(db: &Db, experiment_id: Uuid) -> Result<Vec<(String, i64)>> {
    Ok(on_db!(db, p => sqlx::query_as(
        "SELECT config_key, version FROM leaderboard_entries WHERE experiment_id = $1 AND computed_version < version \
         ORDER BY config_key")
        .bind(experiment_id).fetch_all(p).await)?)
}

/// Marks every entry of an experiment for recomputing (weights or scorers changed).
pub async fn bump_all(db: &Db, experiment_id: Uuid) -> Result<()> {
    on_db!(db, p => bump_all_on(&mut *p.acquire().await?, experiment_id).await)?;
    Ok(())
}

/// [`bump_all`] on a connection (or in a transaction). On PostgreSQL rows are locked in key
/// order, as every other writer locks them, so concurrent writers cannot deadlock.
pub(crate) async fn bump_all_on<C: BumpAll>(conn: &mut C, experiment_id: Uuid) -> sqlx::Result<()> {
    conn.bump_all(experiment_id).await
}

pub(crate) trait BumpAll {
    async fn bump_all(&mut self, experiment_id: Uuid) -> sqlx::Result<()>;
}

impl BumpAll for sqlx::SqliteConnection {
    async fn bump_all(&mut self, experiment_id: Uuid) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE leaderboard_entries SET version = version + 1 WHERE experiment_id = $1",
        )
        .bind(experiment_id)
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}

impl BumpAll for sqlx::PgConnection {
    async fn bump_all(&mut self, experiment_id: Uuid) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE leaderboard_entries SET version = version + 1 WHERE experiment_id = $1 AND config_key IN \
             (SELECT config_key FROM leaderboard_entries WHERE experiment_id = $1 ORDER BY config_key FOR UPDATE)",
        )
        .bind(experiment_id)
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}

/// Makes sure every configuration with runs has an entry (runs recorded before scoring
/// existed, or by an interrupted writer).
pub async fn ensure_entries(db: &Db, experiment_id: Uuid) -> Result<()> {
    let first = match db {
        Db::Sqlite(_) => "MIN(config)",
        Db::Postgres(_) => "(array_agg(config))[1]",
    };
    let entries = "INSERT INTO leaderboard_entries (experiment_id, config_key) \
        SELECT experiment_id, config_key FROM runs WHERE experiment_id = $1 GROUP BY experiment_id, config_key \
        ORDER BY config_key ON CONFLICT (experiment_id, config_key) DO NOTHING";
    let details = format!(
        "INSERT INTO leaderboard_details (experiment_id, config_key, config) \
         SELECT experiment_id, config_key, {first} FROM runs WHERE experiment_id = $1 GROUP BY experiment_id, config_key \
         ORDER BY config_key ON CONFLICT (experiment_id, config_key) DO NOTHING"
    );
    on_db!(db, p => {
        sqlx::query(entries).bind(experiment_id).execute(p).await?;
        sqlx::query(sqlx::AssertSqlSafe(details)).bind(experiment_id).execute(p).await?;
    });
    Ok(())
}

/// Every configuration of an experiment's entries.
pub async fn all_configs(db: &Db, experiment_id: Uuid) -> Result<HashMap<String, RunConfig>> {
    let rows: Vec<(String, Json<RunConfig>)> = on_db!(db, p => sqlx::query_as(
        "SELECT config_key, config FROM leaderboard_details WHERE experiment_id = $1")
        .bind(experiment_id).fetch_all(p).await)?;
    Ok(rows.into_iter().map(|(k, c)| (k, c.0)).collect())
}

/// The configurations of these entries.
pub async fn configs(
    db: &Db,
    experiment_id: Uuid,
    keys: &[String],
) -> Result<HashMap<String, RunConfig>> {
    let rows: Vec<(String, Json<RunConfig>)> = by_keys(
        db,
        "SELECT config_key, config FROM leaderboard_details WHERE experiment_id = ",
        "config_key",
        experiment_id,
        keys,
    )
    .await?;
    Ok(rows.into_iter().map(|(k, c)| (k, c.0)).collect())
}

/// Rows of `select` (which ends in `WHERE … experiment_id = `) for these configuration keys
/// in `column`: `= ANY($2)` on PostgreSQL (in small statements), an IN list on SQLite.
pub(crate) async fn by_keys<T>(
    db: &Db,
    select: &str,
    column: &str,
    experiment_id: Uuid,
    keys: &[String],
) -> Result<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + Send
        + Unpin,
{
    let mut out = Vec::new();
    match db {
        Db::Postgres(p) => {
            let sql = format!("{select} $1 AND {column} = ANY($2)");
            for chunk in super::bulk_scores::pg_chunks(keys, |k| k.len() + 4) {
                out.extend(
                    sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql.clone()))
                        .bind(experiment_id)
                        .bind(chunk.to_vec())
                        .fetch_all(p)
                        .await?,
                );
            }
        }
        Db::Sqlite(p) => {
            for chunk in keys.chunks(500) {
                let mut q = sqlx::QueryBuilder::new(select);
                q.push_bind(experiment_id);
                q.push(format!(" AND {column} IN ("));
                let mut list = q.separated(", ");
                for k in chunk {
                    list.push_bind(k.clone());
                }
                q.push(")");
                out.extend(q.build_query_as::<T>().fetch_all(p).await?);
            }
        }
    }
    Ok(out)
}

/// The ended runs of these configurations. (Pending and running ones are dropped here, not in
/// SQL: a status condition can lead the planner to the status index, past every run.)
pub async fn runs(db: &Db, experiment_id: Uuid, keys: &[String]) -> Result<Vec<RunFact>> {
    let mut rows: Vec<RunFact> = by_keys(
        db,
        "SELECT r.id, r.config_key, r.config_hash, r.item_id, r.item_index, r.status, r.tokens_in, r.tokens_out, \
         r.cost_estimate, CAST((SELECT SUM(s.latency_ms) FROM stage_results s WHERE s.run_id = r.id) AS BIGINT) \
         AS latency_ms FROM runs r WHERE r.experiment_id = ",
        "r.config_key",
        experiment_id,
        keys,
    )
    .await?;
    rows.retain(|r| matches!(r.status.as_str(), "completed" | "cached" | "failed"));
    Ok(rows)
}

/// The scores (values and failures) of these configurations' runs.
pub async fn scores(db: &Db, experiment_id: Uuid, keys: &[String]) -> Result<Vec<ScoreFact>> {
    by_keys(
        db,
        "SELECT run_id, scorer_name, fingerprint, value FROM scores WHERE experiment_id = ",
        "config_key",
        experiment_id,
        keys,
    )
    .await
}

/// Stores recomputed summaries; one computed from an older version never overwrites a newer.
/// What a summary write does with an entry another transaction holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// Leaves it (the holder is bumping it, or writing it too): a refresh never waits on a
    /// writer in its first pass.
    Skip,
    /// Waits for the holder, then writes it if it is still behind.
    Wait,
}

/// Of the entries a refresh set out to compute (key, version seen), those still computed for
/// an older version, with their version now. None on SQLite, where a write never skips.
pub async fn behind(
    db: &Db,
    experiment_id: Uuid,
    seen: &[(String, i64)],
) -> Result<Vec<(String, i64)>> {
    let Db::Postgres(p) = db else {
        return Ok(Vec::new());
    };
    let keys: Vec<String> = seen.iter().map(|(k, _)| k.clone()).collect();
    let mut now: HashMap<String, (i64, i64)> = HashMap::new();
    for chunk in keys.chunks(1000) {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT config_key, version, computed_version FROM leaderboard_entries \
             WHERE experiment_id = $1 AND config_key = ANY($2)",
        )
        .bind(experiment_id)
        .bind(chunk)
        .fetch_all(p)
        .await?;
        now.extend(rows.into_iter().map(|(k, v, c)| (k, (v, c))));
    }
    Ok(seen
        .iter()
        .filter_map(|(k, v)| {
            let (version, computed) = now.get(k)?;
            (computed < v).then(|| (k.clone(), *version))
        })
        .collect())
}

pub async fn write(db: &Db, experiment_id: Uuid, rows: &[Summary], locked: Locked) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    match db {
        Db::Sqlite(p) => {
            let mut tx = p.begin().await?;
            for chunk in rows.chunks(200) {
                let mut q = sqlx::QueryBuilder::new(
                    "WITH v (config_key, version, score, std, ci_low, ci_high, items, samples, runs, failed, tokens_in, \
                     tokens_out, cost, latency_ms, best_run_id, scorers) AS (",
                );
                q.push_values(chunk, |mut b, s| {
                    b.push_bind(s.config_key.clone())
                        .push_bind(s.version)
                        .push_bind(s.score)
                        .push_bind(s.std)
                        .push_bind(s.ci_low)
                        .push_bind(s.ci_high)
                        .push_bind(s.items)
                        .push_bind(s.samples)
                        .push_bind(s.runs)
                        .push_bind(s.failed)
                        .push_bind(s.tokens_in)
                        .push_bind(s.tokens_out)
                        .push_bind(s.cost)
                        .push_bind(s.latency_ms)
                        .push_bind(s.best_run_id)
                        .push_bind(json_text(&s.scorers));
                });
                q.push(
                    ") UPDATE leaderboard_entries SET computed_version = v.version, score = v.score, std = v.std, \
                     ci_low = v.ci_low, ci_high = v.ci_high, items = v.items, samples = v.samples, runs = v.runs, \
                     failed = v.failed, tokens_in = v.tokens_in, tokens_out = v.tokens_out, cost = v.cost, \
                     latency_ms = v.latency_ms, best_run_id = v.best_run_id, scorers = v.scorers \
                     FROM v WHERE leaderboard_entries.experiment_id = ",
                );
                q.push_bind(experiment_id);
                q.push(
                    " AND leaderboard_entries.config_key = v.config_key \
                     AND leaderboard_entries.computed_version < v.version RETURNING leaderboard_entries.config_key",
                );
                let updated: std::collections::HashSet<String> = q
                    .build_query_scalar()
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .collect();
                let chunk: Vec<&Summary> = chunk
                    .iter()
                    .filter(|s| updated.contains(&s.config_key))
                    .collect();
                if chunk.is_empty() {
                    continue;
                }
                let mut q = sqlx::QueryBuilder::new("WITH v (config_key, item_scores) AS (");
                q.push_values(chunk, |mut b, s| {
                    b.push_bind(s.config_key.clone())
                        .push_bind(json_text(&s.item_scores));
                });
                q.push(
                    ") UPDATE leaderboard_details SET item_scores = v.item_scores FROM v \
                     WHERE leaderboard_details.experiment_id = ",
                );
                q.push_bind(experiment_id);
                q.push(" AND leaderboard_details.config_key = v.config_key");
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        Db::Postgres(p) => {
            let mut tx = p.begin().await?;
            let texts: Vec<(String, String)> = rows
                .iter()
                .map(|s| (json_text(&s.scorers), json_text(&s.item_scores)))
                .collect();
            let indexed: Vec<(usize, &Summary)> = rows.iter().enumerate().collect();
            let mut updated = std::collections::HashSet::new();
            for chunk in super::bulk_scores::pg_chunks(&indexed, |(i, _)| texts[*i].0.len() + 200) {
                macro_rules! col {
                    ($f:expr) => {
                        chunk.iter().map(|(_, s)| s).map($f).collect::<Vec<_>>()
                    };
                }
                // A cache fill: in the first pass rows a writer holds are skipped (they are
                // being bumped and will be recomputed), so a refresh does not wait on a writer;
                // rows are locked in key order, as every writer locks them, so none deadlock.
                let skip = if locked == Locked::Skip {
                    " SKIP LOCKED"
                } else {
                    ""
                };
                let keys: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "WITH v AS (SELECT * FROM UNNEST($2::text[], $3::bigint[], $4::float8[], $5::float8[], \
                         $6::float8[], $7::float8[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], \
                         $12::bigint[], $13::bigint[], $14::float8[], $15::float8[], $16::uuid[], $17::text[]) \
                       AS v (config_key, version, score, std, ci_low, ci_high, items, samples, runs, failed, \
                             tokens_in, tokens_out, cost, latency_ms, best_run_id, scorers)), \
                     locked AS (SELECT l.config_key FROM leaderboard_entries l JOIN v ON v.config_key = l.config_key \
                       WHERE l.experiment_id = $1 AND l.computed_version < v.version \
                       ORDER BY l.config_key FOR UPDATE OF l{skip}) \
                     UPDATE leaderboard_entries l SET computed_version = v.version, score = v.score, std = v.std, \
                     ci_low = v.ci_low, ci_high = v.ci_high, items = v.items, samples = v.samples, runs = v.runs, \
                     failed = v.failed, tokens_in = v.tokens_in, tokens_out = v.tokens_out, cost = v.cost, \
                     latency_ms = v.latency_ms, best_run_id = v.best_run_id, scorers = v.scorers::jsonb \
                     FROM v, locked WHERE l.experiment_id = $1 AND l.config_key = v.config_key \
                     AND locked.config_key = v.config_key AND l.computed_version < v.version \
                     RETURNING l.config_key"
                )))
                .bind(experiment_id)
                .bind(col!(|s| s.config_key.clone()))
                .bind(col!(|s| s.version))
                .bind(col!(|s| s.score))
                .bind(col!(|s| s.std))
                .bind(col!(|s| s.ci_low))
                .bind(col!(|s| s.ci_high))
                .bind(col!(|s| s.items))
                .bind(col!(|s| s.samples))
                .bind(col!(|s| s.runs))
                .bind(col!(|s| s.failed))
                .bind(col!(|s| s.tokens_in))
                .bind(col!(|s| s.tokens_out))
                .bind(col!(|s| s.cost))
                .bind(col!(|s| s.latency_ms))
                .bind(col!(|s| s.best_run_id))
                .bind(chunk.iter().map(|(i, _)| texts[*i].0.clone()).collect::<Vec<_>>())
                .fetch_all(&mut *tx)
                .await?;
                updated.extend(keys);
            }
            let details: Vec<(usize, &Summary)> = indexed
                .into_iter()
                .filter(|(_, s)| updated.contains(&s.config_key))
                .collect();
            for chunk in super::bulk_scores::pg_chunks(&details, |(i, _)| texts[*i].1.len() + 80) {
                sqlx::query(
                    "UPDATE leaderboard_details d SET item_scores = v.item_scores::jsonb \
                     FROM UNNEST($2::text[], $3::text[]) AS v (config_key, item_scores) \
                     WHERE d.experiment_id = $1 AND d.config_key = v.config_key",
                )
                .bind(experiment_id)
                .bind(
                    chunk
                        .iter()
                        .map(|(_, s)| s.config_key.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    chunk
                        .iter()
                        .map(|(i, _)| texts[*i].1.clone())
                        .collect::<Vec<_>>(),
                )
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
    }
    Ok(())
}

/// A summary part as JSON text.
fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

/// What ranking needs of an entry (without its configuration or per-item data).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Light {
    pub config_key: String,
    pub score: Option<f64>,
    pub samples: i64,
    pub runs: i64,
    pub cost: Option<f64>,
    pub latency_ms: Option<f64>,
    pub mark: Option<String>,
}

/// Every ranked entry (with runs, not rejected), light; and each one's per-scorer summary
/// when `with_scorers`.
pub async fn light(
    db: &Db,
    experiment_id: Uuid,
    with_scorers: bool,
) -> Result<(
    Vec<Light>,
    HashMap<String, std::collections::BTreeMap<String, ScorerSummary>>,
)> {
    let rows: Vec<Light> = on_db!(db, p => sqlx::query_as(
        "SELECT l.config_key, l.score, l.samples, l.runs, l.cost, l.latency_ms, m.mark FROM leaderboard_entries l \
         LEFT JOIN config_marks m ON m.experiment_id = l.experiment_id AND m.config_key = l.config_key \
         WHERE l.experiment_id = $1 AND l.runs > 0 AND (m.mark IS NULL OR m.mark <> 'rejected')")
        .bind(experiment_id).fetch_all(p).await)?;
    let mut scorers = HashMap::new();
    if with_scorers {
        type Row = (
            String,
            Json<std::collections::BTreeMap<String, ScorerSummary>>,
        );
        let all: Vec<Row> = on_db!(db, p => sqlx::query_as(
            "SELECT config_key, scorers FROM leaderboard_entries WHERE experiment_id = $1 AND runs > 0")
            .bind(experiment_id).fetch_all(p).await)?;
        scorers = all.into_iter().map(|(k, s)| (k, s.0)).collect();
    }
    Ok((rows, scorers))
}

/// A full entry, as the leaderboard shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Full {
    pub config_key: String,
    pub config: Json<RunConfig>,
    pub score: Option<f64>,
    pub std: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub items: i64,
    pub samples: i64,
    pub runs: i64,
    pub failed: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost: Option<f64>,
    pub latency_ms: Option<f64>,
    pub best_run_id: Option<Uuid>,
    pub scorers: Json<std::collections::BTreeMap<String, ScorerSummary>>,
}

pub async fn full(db: &Db, experiment_id: Uuid, keys: &[String]) -> Result<Vec<Full>> {
    by_keys(
        db,
        "SELECT l.config_key, d.config, l.score, l.std, l.ci_low, l.ci_high, l.items, l.samples, l.runs, l.failed, \
         l.tokens_in, l.tokens_out, l.cost, l.latency_ms, l.best_run_id, l.scorers FROM leaderboard_entries l \
         JOIN leaderboard_details d ON d.experiment_id = l.experiment_id AND d.config_key = l.config_key \
         WHERE l.experiment_id = ",
        "l.config_key",
        experiment_id,
        keys,
    )
    .await
}

/// Per-item scores of two entries.
pub async fn item_scores(
    db: &Db,
    experiment_id: Uuid,
    keys: &[String],
) -> Result<HashMap<String, ItemScores>> {
    let rows: Vec<(String, Json<ItemScores>)> = by_keys(
        db,
        "SELECT config_key, item_scores FROM leaderboard_details WHERE experiment_id = ",
        "config_key",
        experiment_id,
        keys,
    )
    .await?;
    Ok(rows.into_iter().map(|(k, s)| (k, s.0)).collect())
}

/// Records the leader; `true` when it changed (so exactly one caller announces it).
pub async fn set_leader(
    db: &Db,
    experiment_id: Uuid,
    key: Option<&str>,
) -> Result<(bool, Option<String>)> {
    let previous: Option<Option<String>> = on_db!(db, p => sqlx::query_scalar(
        "SELECT leader_config_key FROM experiments WHERE id = $1").bind(experiment_id).fetch_optional(p).await)?;
    let previous = previous.flatten();
    let n = on_db!(db, p => sqlx::query(
        "UPDATE experiments SET leader_config_key = $2 WHERE id = $1 \
         AND (leader_config_key IS NULL OR $2 IS NULL OR leader_config_key <> $2) \
         AND NOT (leader_config_key IS NULL AND $2 IS NULL)")
        .bind(experiment_id).bind(key).execute(p).await.map(|r| r.rows_affected()))?;
    Ok((n == 1, previous))
}
