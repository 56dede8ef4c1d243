//! The `runs` and `stage_results` tables.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::Result;
use crate::types::{Run, RunConfig, StageResult};

#[derive(Debug, sqlx::FromRow)]
struct RunRow {
    id: Uuid,
    experiment_id: Uuid,
    config_hash: String,
    config_key: String,
    config: Json<RunConfig>,
    item_index: i32,
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
            config_hash: r.config_hash,
            config_key: r.config_key,
            config: r.config.0,
            item_index: r.item_index,
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
            "SELECT id, experiment_id, config_hash, config_key, config, item_index, repeat_index, status, error, ",
            "started_at, completed_at, duration_ms, tokens_in, tokens_out, cost_estimate, created_at FROM runs ",
            $($tail),+
        )
    };
}

/// Persists pending runs in one transaction (before any call is made).
pub async fn insert_pending(db: &Db, runs: &[Run]) -> Result<()> {
    on_db!(db, p => {
        let mut tx = p.begin().await?;
        for r in runs {
            sqlx::query(
                "INSERT INTO runs (id, experiment_id, config_hash, config_key, config, item_index, repeat_index, \
                 status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8)")
                .bind(r.id).bind(r.experiment_id).bind(&r.config_hash).bind(&r.config_key).bind(Json(&r.config))
                .bind(r.item_index).bind(r.repeat_index).bind(r.created_at)
                .execute(&mut *tx).await?;
        }
        tx.commit().await
    })?;
    Ok(())
}

pub async fn mark_running(db: &Db, id: Uuid, at: DateTime<Utc>) -> Result<()> {
    on_db!(db, p => sqlx::query("UPDATE runs SET status = 'running', started_at = $2 WHERE id = $1")
        .bind(id).bind(at).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
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

/// Runs that were pending or running when the process stopped: marked failed, so none stays
/// stuck. Returns how many.
pub async fn fail_interrupted(db: &Db, message: &str) -> Result<u64> {
    Ok(on_db!(db, p => sqlx::query(
        "UPDATE runs SET status = 'failed', error = $1, completed_at = $2 WHERE status IN ('pending', 'running')")
        .bind(message).bind(Utc::now()).execute(p).await.map(|r| r.rows_affected()))?)
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

/// Sort orders for run listings (whitelisted: the SQL is chosen, never built from input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunSort {
    CreatedDesc,
    CreatedAsc,
    DurationDesc,
    DurationAsc,
    TokensDesc,
    CostDesc,
}

pub async fn list(
    db: &Db,
    experiment_id: Uuid,
    status: Option<&str>,
    sort: RunSort,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Run>, i64)> {
    macro_rules! page {
        ($order:literal) => {{
            let sql = select_runs!(
                "WHERE experiment_id = $1 AND ($2 IS NULL OR status = $2) ORDER BY ", $order,
                ", item_index, repeat_index, id LIMIT $3 OFFSET $4"
            );
            on_db!(db, p => sqlx::query_as::<_, RunRow>(sql).bind(experiment_id).bind(status).bind(limit).bind(offset).fetch_all(p).await)?
        }};
    }
    let rows = match sort {
        RunSort::CreatedDesc => page!("created_at DESC"),
        RunSort::CreatedAsc => page!("created_at ASC"),
        RunSort::DurationDesc => page!("duration_ms DESC NULLS LAST"),
        RunSort::DurationAsc => page!("duration_ms ASC NULLS LAST"),
        RunSort::TokensDesc => page!("tokens_in + tokens_out DESC"),
        RunSort::CostDesc => page!("cost_estimate DESC NULLS LAST"),
    };
    let total: i64 = on_db!(db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM runs WHERE experiment_id = $1 AND ($2 IS NULL OR status = $2)")
        .bind(experiment_id).bind(status).fetch_one(p).await)?;
    Ok((rows.into_iter().map(Run::from).collect(), total))
}

/// The last stage's response of each of an experiment's `limit` newest runs (the same order as
/// `list` with `RunSort::CreatedDesc`), in one query.
pub async fn final_outputs(
    db: &Db,
    experiment_id: Uuid,
    limit: i64,
) -> Result<std::collections::HashMap<Uuid, String>> {
    let rows: Vec<(Uuid, String)> = on_db!(db, p => sqlx::query_as(
        "SELECT s.run_id, s.response_raw FROM stage_results s \
         WHERE s.run_id IN (SELECT id FROM runs WHERE experiment_id = $1 \
                            ORDER BY created_at DESC, item_index, repeat_index, id LIMIT $2) \
         AND s.stage_index = (SELECT MAX(t.stage_index) FROM stage_results t WHERE t.run_id = s.run_id)")
        .bind(experiment_id).bind(limit).fetch_all(p).await)?;
    Ok(rows.into_iter().collect())
}
