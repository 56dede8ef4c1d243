//! The `runs` and `stage_results` tables.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::Result;
use crate::types::{Run, RunConfig, StageResult};

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RunRow {
    id: Uuid,
    experiment_id: Uuid,
    sweep_id: Option<Uuid>,
    config_hash: String,
    config_key: String,
    config: Json<RunConfig>,
    item_id: String,
    item_index: i32,
    item_version: i64,
    repeat_index: i32,
    status: String,
    error: Option<String>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    duration_ms: Option<i64>,
    tokens_in: i64,
    tokens_out: i64,
    cost_estimate: Option<f64>,
    created_at: DateTime<Utc>,
}

impl From<RunRow> for Run {
    fn from(r: RunRow) -> Self {
        Run {
            id: r.id,
            experiment_id: r.experiment_id,
            sweep_id: r.sweep_id,
            config_hash: r.config_hash,
            config_key: r.config_key,
            config: r.config.0,
            item_id: r.item_id,
            item_index: r.item_index,
            item_version: r.item_version,
            repeat_index: r.repeat_index,
            status: r.status,
            error: r.error,
            started_at: r.started_at,
            completed_at: r.completed_at,
            duration_ms: r.duration_ms,
            tokens_in: r.tokens_in,
            tokens_out: r.tokens_out,
            cost_estimate: r.cost_estimate,
            created_at: r.created_at,
        }
    }
}

macro_rules! select_runs {
    ($($tail:literal),+) => {
        concat!(
            "SELECT id, experiment_id, sweep_id, config_hash, config_key, config, item_id, item_index, item_version, repeat_index, status, error, ",
            "started_at, completed_at, duration_ms, tokens_in, tokens_out, cost_estimate, created_at FROM runs ",
            $($tail),+
        )
    };
}

/// Persists an ad-hoc batch's runs, already running under `lease_owner`'s lease, in one
/// transaction (before any call is made).
pub async fn insert_leased(
    db: &Db,
    runs: &[Run],
    lease_owner: &str,
    lease_until: DateTime<Utc>,
) -> Result<()> {
    on_db!(db, p => {
        let mut tx = p.begin().await?;
        for r in runs {
            sqlx::query(
                "INSERT INTO runs (id, experiment_id, config_hash, config_key, config, item_index, repeat_index, \
                 status, created_at, started_at, lease_owner, lease_until, attempts, item_id, item_version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $8, $9, $10, 1, $11, $12)")
                .bind(r.id).bind(r.experiment_id).bind(&r.config_hash).bind(&r.config_key).bind(Json(&r.config))
                .bind(r.item_index).bind(r.repeat_index).bind(r.created_at).bind(lease_owner).bind(lease_until)
                .bind(&r.item_id).bind(r.item_version)
                .execute(&mut *tx).await?;
        }
        tx.commit().await
    })?;
    Ok(())
}

/// Claims up to `limit` of a running sweep's pending runs for `owner` (in plan order): they
/// become `running` under a lease. Safe with many processes: each run goes to one claimer.
pub async fn claim(
    db: &Db,
    sweep_id: Uuid,
    owner: &str,
    limit: i64,
    lease_until: DateTime<Utc>,
) -> Result<Vec<(Run, i32)>> {
    #[derive(sqlx::FromRow)]
    struct Claimed {
        #[sqlx(flatten)]
        run: RunRow,
        attempts: i32,
    }
    let now = Utc::now();
    // SQLite: `+status` keeps the planner on the primary key (the status index would walk
    // every pending run of every sweep).
    let rows: Vec<Claimed> = match db {
        Db::Sqlite(p) => sqlx::query_as(concat!(
            "UPDATE runs SET status = 'running', lease_owner = $1, lease_until = $2, started_at = $3, \
             attempts = attempts + 1 WHERE id IN (SELECT id FROM runs WHERE sweep_id = $4 AND status = 'pending' \
             ORDER BY seq LIMIT $5) AND +status = 'pending' \
             AND (SELECT status FROM sweeps WHERE id = $4) = 'running' RETURNING ",
            "id, experiment_id, sweep_id, config_hash, config_key, config, item_id, item_index, item_version, repeat_index, status, error, ",
            "started_at, completed_at, duration_ms, tokens_in, tokens_out, cost_estimate, created_at, attempts"))
            .bind(owner).bind(lease_until).bind(now).bind(sweep_id).bind(limit)
            .fetch_all(p).await?,
        // A locking CTE runs once; `IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` may be
        // re-evaluated and claim more than n.
        Db::Postgres(p) => sqlx::query_as(concat!(
            "WITH picked AS (SELECT id FROM runs WHERE sweep_id = $4 AND status = 'pending' \
             AND (SELECT status FROM sweeps WHERE id = $4) = 'running' \
             ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED) \
             UPDATE runs SET status = 'running', lease_owner = $1, lease_until = $2, started_at = $3, \
             attempts = runs.attempts + 1 FROM picked WHERE runs.id = picked.id RETURNING ",
            "runs.id, runs.experiment_id, runs.sweep_id, runs.config_hash, runs.config_key, runs.config, ",
            "runs.item_id, runs.item_index, runs.item_version, runs.repeat_index, runs.status, runs.error, runs.started_at, runs.completed_at, ",
            "runs.duration_ms, runs.tokens_in, runs.tokens_out, runs.cost_estimate, runs.created_at, runs.attempts"))
            .bind(owner).bind(lease_until).bind(now).bind(sweep_id).bind(limit)
            .fetch_all(p).await?,
    };
    let mut out: Vec<(Run, i32)> = rows
        .into_iter()
        .map(|c| (Run::from(c.run), c.attempts))
        .collect();
    out.sort_by_key(|(r, _)| (r.item_index, r.repeat_index));
    Ok(out)
}

/// Extends the leases `owner` holds.
pub async fn renew_leases(db: &Db, owner: &str, until: DateTime<Utc>) -> Result<u64> {
    Ok(match db {
        Db::Sqlite(p) => sqlx::query(
            "UPDATE runs SET lease_until = $2 WHERE lease_owner = $1 AND status = 'running'")
            .bind(owner).bind(until).execute(p).await?.rows_affected(),
        // Rows the recorder is finishing right now are skipped (their lease is about to go):
        // waiting for them while holding others deadlocks with the recorder's transaction.
        Db::Postgres(p) => sqlx::query(
            "UPDATE runs SET lease_until = $2 WHERE id IN (SELECT id FROM runs WHERE lease_owner = $1 \
             AND status = 'running' FOR UPDATE SKIP LOCKED)")
            .bind(owner).bind(until).execute(p).await?.rows_affected(),
    })
}

/// Runs whose lease ran out (their process died): sweep runs go back to pending (to be
/// claimed again), ad-hoc runs (whose caller is gone) end failed. `None`: every lease, for a
/// process that knows it is alone. Returns (requeued, failed).
pub async fn reclaim_expired(db: &Db, before: Option<DateTime<Utc>>) -> Result<(u64, u64)> {
    let now = Utc::now();
    let requeued = on_db!(db, p => sqlx::query(
        "UPDATE runs SET status = 'pending', lease_owner = NULL, lease_until = NULL \
         WHERE status = 'running' AND sweep_id IS NOT NULL AND ($1 IS NULL OR lease_until < $1)")
        .bind(before).execute(p).await.map(|r| r.rows_affected()))?;
    let failed = on_db!(db, p => sqlx::query(
        "UPDATE runs SET status = 'failed', error = 'interrupted: the process running it stopped before it finished', \
         completed_at = $2, lease_owner = NULL, lease_until = NULL \
         WHERE status IN ('pending', 'running') AND sweep_id IS NULL AND ($1 IS NULL OR lease_until IS NULL OR lease_until < $1)")
        .bind(before).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
    Ok((requeued, failed))
}

/// Records how a run ended (completed, cached or failed).
pub async fn finish(db: &Db, run: &Run) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "UPDATE runs SET status = $2, error = $3, completed_at = $4, duration_ms = $5, tokens_in = $6, \
         tokens_out = $7, cost_estimate = $8 WHERE id = $1")
        .bind(run.id).bind(&run.status).bind(&run.error).bind(run.completed_at).bind(run.duration_ms)
        .bind(run.tokens_in).bind(run.tokens_out).bind(run.cost_estimate)
        .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub struct NewStageResult<'a> {
    pub run_id: Uuid,
    pub stage_index: i32,
    pub prompt_sent: &'a str,
    pub response_raw: &'a str,
    pub model_used: &'a str,
    pub parameters: &'a Value,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub latency_ms: i64,
    pub cached: bool,
    pub finish_reason: Option<&'a str>,
    pub usage_estimated: bool,
    pub cost_estimate: Option<f64>,
    pub cache_key: &'a str,
}

/// Stores a stage result; a second write for the same run and stage is ignored (idempotent).
pub async fn insert_stage_result(db: &Db, s: &NewStageResult<'_>) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "INSERT INTO stage_results (id, run_id, stage_index, prompt_sent, response_raw, model_used, parameters, \
         tokens_in, tokens_out, latency_ms, cached, finish_reason, usage_estimated, cost_estimate, cache_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (run_id, stage_index) DO NOTHING")
        .bind(Uuid::new_v4()).bind(s.run_id).bind(s.stage_index).bind(s.prompt_sent).bind(s.response_raw)
        .bind(s.model_used).bind(Json(s.parameters)).bind(s.tokens_in).bind(s.tokens_out).bind(s.latency_ms)
        .bind(s.cached).bind(s.finish_reason).bind(s.usage_estimated).bind(s.cost_estimate).bind(s.cache_key)
        .bind(Utc::now())
        .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Run>> {
    let sql = select_runs!("WHERE id = $1");
    Ok(
        on_db!(db, p => sqlx::query_as::<_, RunRow>(sql).bind(id).fetch_optional(p).await)?
            .map(Run::from),
    )
}

#[derive(Debug, sqlx::FromRow)]
struct StageRow {
    stage_index: i32,
    prompt_sent: String,
    response_raw: String,
    model_used: String,
    parameters: Json<Value>,
    tokens_in: i64,
    tokens_out: i64,
    usage_estimated: bool,
    latency_ms: i64,
    cached: bool,
    finish_reason: Option<String>,
    cost_estimate: Option<f64>,
}

pub async fn stage_results(db: &Db, run_id: Uuid) -> Result<Vec<StageResult>> {
    let rows = on_db!(db, p => sqlx::query_as::<_, StageRow>(
        "SELECT stage_index, prompt_sent, response_raw, model_used, parameters, tokens_in, tokens_out, \
         usage_estimated, latency_ms, cached, finish_reason, cost_estimate FROM stage_results \
         WHERE run_id = $1 ORDER BY stage_index")
        .bind(run_id).fetch_all(p).await)?;
    Ok(rows
        .into_iter()
        .map(|r| StageResult {
            stage_index: r.stage_index,
            prompt_sent: r.prompt_sent,
            response_raw: r.response_raw,
            model_used: r.model_used,
            parameters: r.parameters.0,
            tokens_in: r.tokens_in,
            tokens_out: r.tokens_out,
            usage_estimated: r.usage_estimated,
            latency_ms: r.latency_ms,
            cached: r.cached,
            finish_reason: r.finish_reason,
            cost_estimate: r.cost_estimate,
        })
        .collect())
}

/// One configuration's runs of one item, by repeat (an index lookup: no sort to tempt the
/// planner onto another index).
pub async fn of_item(
    db: &Db,
    experiment_id: Uuid,
    config_key: &str,
    item_id: &str,
) -> Result<Vec<Run>> {
    let sql = select_runs!("WHERE experiment_id = $1 AND item_id = $2 AND config_key = $3");
    let mut runs: Vec<Run> =
        on_db!(db, p => sqlx::query_as::<_, RunRow>(sql).bind(experiment_id).bind(item_id)
        .bind(config_key).fetch_all(p).await)?
        .into_iter()
        .map(Run::from)
        .collect();
    runs.sort_by_key(|r| (r.repeat_index, r.created_at));
    Ok(runs)
}

/// The last stage's response of each of these runs (runs without one are absent).
pub async fn outputs_of(
    db: &Db,
    run_ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>> {
    let mut out = std::collections::HashMap::new();
    const LAST: &str = "AND s.stage_index = (SELECT MAX(t.stage_index) FROM stage_results t WHERE t.run_id = s.run_id)";
    for chunk in run_ids.chunks(500) {
        let rows: Vec<(Uuid, String)> = match db {
            Db::Postgres(p) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT s.run_id, s.response_raw FROM stage_results s WHERE s.run_id = ANY($1) {LAST}")))
                .bind(chunk.to_vec()).fetch_all(p).await?,
            Db::Sqlite(p) => {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT s.run_id, s.response_raw FROM stage_results s WHERE s.run_id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(") ");
                q.push(LAST);
                q.build_query_as().fetch_all(p).await?
            }
        };
        out.extend(rows);
    }
    Ok(out)
}

/// Average output tokens per model over recorded stages (for estimates).
pub async fn average_output_tokens(db: &Db) -> Result<std::collections::HashMap<String, i64>> {
    let rows: Vec<(String, f64)> = on_db!(db, p => sqlx::query_as(
        "SELECT model_used, CAST(AVG(tokens_out) AS DOUBLE PRECISION) FROM stage_results GROUP BY model_used")
        .fetch_all(p).await)?;
    Ok(rows
        .into_iter()
        .map(|(m, a)| (m, a.round() as i64))
        .collect())
}

/// Per item, the final output of one configuration's first sample (the lowest repeat that
/// ended with an output).
pub async fn first_outputs(
    db: &Db,
    experiment_id: Uuid,
    config_key: &str,
) -> Result<std::collections::BTreeMap<i32, String>> {
    let rows: Vec<(i32, i32, String)> = on_db!(db, p => sqlx::query_as(
        "SELECT r.item_index, r.repeat_index, s.response_raw FROM runs r JOIN stage_results s ON s.run_id = r.id \
         WHERE r.experiment_id = $1 AND r.config_key = $2 AND r.status IN ('completed', 'cached') \
         AND s.stage_index = (SELECT MAX(t.stage_index) FROM stage_results t WHERE t.run_id = r.id) \
         ORDER BY r.item_index, r.repeat_index, r.created_at")
        .bind(experiment_id).bind(config_key).fetch_all(p).await)?;
    let mut out = std::collections::BTreeMap::new();
    for (item, _, output) in rows {
        out.entry(item).or_insert(output);
    }
    Ok(out)
}
