//! The `scoring_jobs` table, and the reads a re-scoring pass makes (runs in planning order, their
//! stage outputs).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::bulk_scores::ScoreBulk;
use super::cache::CachedResponse;
use super::{Db, on_db};
use crate::server::error::Result;
use crate::server::scoring::ScoreRow;
use crate::types::ScoringJob;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub experiment_id: Uuid,
    pub status: String,
    pub scorers: Option<Json<Vec<String>>>,
    pub force: bool,
    pub cursor: Option<Uuid>,
    pub passes: i64,
    pub total: i64,
    pub done: i64,
    pub scored: i64,
    pub errors: i64,
    pub calls: i64,
    pub cache_hits: i64,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl JobRow {
    pub fn to_job(&self) -> ScoringJob {
        ScoringJob {
            id: self.id,
            experiment_id: self.experiment_id,
            status: self.status.clone(),
            scorers: self.scorers.as_ref().map(|s| s.0.clone()),
            force: self.force,
            total: self.total,
            done: self.done,
            scored: self.scored,
            errors: self.errors,
            calls: self.calls,
            cache_hits: self.cache_hits,
            error: self.error.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            finished_at: self.finished_at,
        }
    }
}

macro_rules! select_jobs {
    ($($tail:literal),+) => {
        concat!(
            "SELECT id, experiment_id, status, scorers, force, cursor, passes, total, done, scored, errors, calls, ",
            "cache_hits, error, created_at, updated_at, finished_at FROM scoring_jobs ",
            $($tail),+
        )
    };
}

pub async fn insert(db: &Db, job: &JobRow, created_by: Option<Uuid>) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "INSERT INTO scoring_jobs (id, experiment_id, status, scorers, force, passes, total, driven_at, created_by, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $7, $7)")
        .bind(job.id).bind(job.experiment_id).bind(&job.status).bind(&job.scorers).bind(job.force)
        .bind(job.total).bind(job.created_at).bind(created_by)
        .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<JobRow>> {
    Ok(
        on_db!(db, p => sqlx::query_as::<_, JobRow>(select_jobs!("WHERE id = $1"))
        .bind(id).fetch_optional(p).await)?,
    )
}

pub async fn list(
    db: &Db,
    experiment_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<(Vec<JobRow>, i64)> {
    let rows = on_db!(db, p => sqlx::query_as::<_, JobRow>(select_jobs!(
        "WHERE experiment_id = $1 ORDER BY created_at DESC LIMIT $2 OFFSET $3"))
        .bind(experiment_id).bind(limit).bind(offset).fetch_all(p).await)?;
    let total: i64 = on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM scoring_jobs WHERE experiment_id = $1")
        .bind(experiment_id).fetch_one(p).await)?;
    Ok((rows, total))
}

/// The experiment's running jobs, newest first.
pub async fn running(db: &Db, experiment_id: Uuid) -> Result<Vec<JobRow>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, JobRow>(select_jobs!(
        "WHERE experiment_id = $1 AND status = 'running' ORDER BY created_at DESC"))
        .bind(experiment_id).fetch_all(p).await)?)
}

/// Ends a job (completed, failed or superseded) if it is still running.
pub async fn finish(
    db: &Db,
    id: Uuid,
    status: &str,
    error: Option<&str>,
) -> Result<Option<JobRow>> {
    let now = Utc::now();
    let sql = select_jobs!("WHERE id = $1");
    Ok(on_db!(db, p => {
        let n = sqlx::query(
            "UPDATE scoring_jobs SET status = $2, error = $3, finished_at = $4, updated_at = $4 \
             WHERE id = $1 AND status = 'running'")
            .bind(id).bind(status).bind(error).bind(now).execute(p).await?.rows_affected();
        if n == 0 { None } else { sqlx::query_as::<_, JobRow>(sql).bind(id).fetch_optional(p).await? }
    }))
}

/// Starts another pass from the first run.
pub async fn next_pass(db: &Db, id: Uuid) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "UPDATE scoring_jobs SET cursor = NULL, passes = passes + 1, updated_at = $2 WHERE id = $1")
        .bind(id).bind(Utc::now()).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// What a re-scoring pass reads of a run (its configuration comes from its leaderboard entry).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BatchRun {
    pub id: Uuid,
    pub experiment_id: Uuid,
    pub config_key: String,
    pub config_hash: String,
    pub item_id: String,
    pub item_index: i32,
    pub repeat_index: i32,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub seq: i64,
}

/// Where a pass is in planning order: a run's (created_at, seq, id).
pub type Position = (DateTime<Utc>, i64, Uuid);

/// The planning position of a run (`None` when it no longer exists: pending runs are dropped
/// when a sweep stops or is redirected, so a job resuming from one starts its pass over).
pub async fn position(db: &Db, run_id: Uuid) -> Result<Option<Position>> {
    Ok(
        on_db!(db, p => sqlx::query_as("SELECT created_at, seq, id FROM runs WHERE id = $1")
        .bind(run_id).fetch_optional(p).await)?,
    )
}

/// Runs after `after` in planning order, whatever their status (the caller keeps the ones
/// with an output, [`scoreable`]); with `since`, only runs that ended since then.
pub async fn batch(
    db: &Db,
    experiment_id: Uuid,
    after: Option<Position>,
    since: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<BatchRun>> {
    // Planning order (created_at, seq, id), after the position. Only the conditions that
    // apply: `$2 IS NULL OR …` would keep PostgreSQL's generic plan from starting the index
    // scan at the position (every batch would walk from the start).
    // No status condition in SQL: right after a sweep, PostgreSQL's statistics may still
    // describe the runs as pending and lead the planner to the status index (then a sort of
    // every run). Runs without an output are dropped by the caller; the position passes them.
    let mut sql = String::from(
        "SELECT id, experiment_id, config_key, config_hash, item_id, item_index, repeat_index, status, created_at, seq FROM runs \
         WHERE experiment_id = $1",
    );
    let mut n = 1;
    if after.is_some() {
        sql.push_str(&format!(
            " AND (created_at, seq, id) > (${}, ${}, ${})",
            n + 1,
            n + 2,
            n + 3
        ));
        n += 3;
    }
    if since.is_some() {
        n += 1;
        sql.push_str(&format!(" AND completed_at >= ${n}"));
    }
    sql.push_str(&format!(" ORDER BY created_at, seq, id LIMIT ${}", n + 1));
    Ok(on_db!(db, p => {
        let mut q = sqlx::query_as::<_, BatchRun>(sqlx::AssertSqlSafe(sql)).bind(experiment_id);
        if let Some((at, seq, id)) = after {
            q = q.bind(at).bind(seq).bind(id);
        }
        if let Some(t) = since {
            q = q.bind(t);
        }
        q.bind(limit).fetch_all(p).await
    })?)
}

/// The runs of a batch that have an output to score.
pub fn scoreable(runs: &[BatchRun]) -> impl Iterator<Item = &BatchRun> {
    runs.iter()
        .filter(|r| matches!(r.status.as_str(), "completed" | "cached"))
}

/// How many runs have an output to score (ended since `since`, if given).
pub async fn count_scoreable(
    db: &Db,
    experiment_id: Uuid,
    since: Option<DateTime<Utc>>,
) -> Result<i64> {
    Ok(on_db!(db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM runs WHERE experiment_id = $1 AND status IN ('completed', 'cached') \
         AND ($2 IS NULL OR completed_at >= $2)")
        .bind(experiment_id).bind(since).fetch_one(p).await)?)
}

/// A stage's output, as scorers see it: (stage index, output, output tokens, estimated).
pub type StageOut = (i32, String, i64, bool);

/// Every stage output of these runs, in stage order.
pub async fn stage_outputs(db: &Db, run_ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<StageOut>>> {
    let mut out: HashMap<Uuid, Vec<StageOut>> = HashMap::new();
    for chunk in run_ids.chunks(500) {
        let rows: Vec<(Uuid, i32, String, i64, bool)> = match db {
            Db::Postgres(p) => sqlx::query_as(
                "SELECT run_id, stage_index, response_raw, tokens_out, usage_estimated FROM stage_results \
                 WHERE run_id = ANY($1)")
                .bind(chunk.to_vec()).fetch_all(p).await?,
            Db::Sqlite(p) => {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT run_id, stage_index, response_raw, tokens_out, usage_estimated FROM stage_results \
                     WHERE run_id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(")");
                q.build_query_as().fetch_all(p).await?
            }
        };
        for (run, k, text, tokens, estimated) in rows {
            out.entry(run)
                .or_default()
                .push((k, text, tokens, estimated));
        }
    }
    for stages in out.values_mut() {
        stages.sort_by_key(|s| s.0);
    }
    Ok(out)
}

/// Progress of one batch.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: i64,
    pub scored: i64,
    pub errors: i64,
    pub calls: i64,
    pub cache_hits: i64,
}

/// Commits one batch in one transaction: its scores, the cache entries their calls made and
/// the job's progress (cursor included). The leaderboard is bumped once the job is done.
/// Scores of the `humans` scorers are recomputed from the ratings as they are now (a rating
/// may have come in since the batch was read). `false`: the job is no longer running
/// (superseded, or ended elsewhere) and nothing was written.
pub async fn commit_batch(
    db: &Db,
    job_id: Uuid,
    rows: &[ScoreRow],
    puts: &[(String, CachedResponse)],
    progress: &Progress,
    cursor: Uuid,
    humans: &[String],
) -> Result<bool> {
    let now = Utc::now();
    let postgres = matches!(db, Db::Postgres(_));
    let (mut rated, plain): (Vec<&ScoreRow>, Vec<&ScoreRow>) =
        rows.iter().partition(|r| humans.contains(&r.scorer_name));
    rated.sort_by_key(|r| r.run_id);
    let mut seen = std::collections::HashSet::new();
    let puts: Vec<&(String, CachedResponse)> = puts
        .iter()
        .filter(|(k, _)| seen.insert(k.as_str()))
        .collect();
    Ok(on_db!(db, p => {
        let mut tx = p.begin().await?;
        let n = sqlx::query(
            "UPDATE scoring_jobs SET done = done + $2, scored = scored + $3, errors = errors + $4, calls = calls + $5, \
             cache_hits = cache_hits + $6, cursor = $7, driven_at = $8, updated_at = $8 WHERE id = $1 AND status = 'running'")
            .bind(job_id).bind(progress.done).bind(progress.scored).bind(progress.errors).bind(progress.calls)
            .bind(progress.cache_hits).bind(cursor).bind(now).execute(&mut *tx).await?.rows_affected();
        if n == 0 {
            tx.rollback().await?;
            false
        } else {
            use super::bulk::Bulk;
            let mut fresh: Vec<ScoreRow> = Vec::with_capacity(rated.len());
            for row in rated {
                // Rating holds the run while it recomputes; so does this (PostgreSQL).
                if postgres {
                    sqlx::query("SELECT id FROM runs WHERE id = $1 FOR UPDATE")
                        .bind(row.run_id).execute(&mut *tx).await?;
                }
                let values: Vec<f64> = sqlx::query_scalar(
                    "SELECT value FROM human_ratings WHERE run_id = $1 AND scorer_name = $2 ORDER BY updated_at")
                    .bind(row.run_id).bind(&row.scorer_name).fetch_all(&mut *tx).await?;
                if !values.is_empty() {
                    let mean = values.iter().sum::<f64>() / values.len() as f64;
                    let mut row = row.clone();
                    row.value = Some(mean.clamp(0.0, 1.0));
                    row.error = None;
                    row.metadata = serde_json::json!({"ratings": values.len()});
                    fresh.push(row);
                }
            }
            let refs: Vec<&ScoreRow> = plain.into_iter().chain(fresh.iter()).collect();
            tx.insert_cache(&puts, now).await?;
            tx.upsert_scores(&refs, now).await?;
            tx.commit().await?;
            true
        }
    }))
}

/// Running jobs nobody has driven since `stale_before`, claimed for driving now.
pub async fn claim_stale(
    db: &Db,
    stale_before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    Ok(on_db!(db, p => sqlx::query_scalar(
        "UPDATE scoring_jobs SET driven_at = $2 WHERE status = 'running' AND (driven_at IS NULL OR driven_at < $1) \
         RETURNING id")
        .bind(stale_before).bind(now).fetch_all(p).await)?)
}

pub async fn touch_driven(db: &Db, ids: &[Uuid], now: DateTime<Utc>) -> Result<()> {
    for id in ids {
        on_db!(db, p => sqlx::query("UPDATE scoring_jobs SET driven_at = $2 WHERE id = $1")
            .bind(id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}
