//! The `sweeps` table, and configuration marks.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{Db, on_db};
use crate::server::error::Result;
use crate::types::{
    ConfigMark, GuideState, ParameterSpace, Progress, RunConfig, Sweep, SweepRequest,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SweepRow {
    pub id: Uuid,
    pub experiment_id: Uuid,
    pub request: Json<SweepRequest>,
    pub space: Json<ParameterSpace>,
    pub status: String,
    pub pause_reason: Option<String>,
    pub total: i64,
    pub done: i64,
    pub completed: i64,
    pub cached: i64,
    pub failed: i64,
    pub skipped: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost: f64,
    pub calls: i64,
    pub cache_hits: i64,
    pub max_tokens: Option<i64>,
    pub max_cost: Option<f64>,
    pub max_calls: Option<i64>,
    /// A guided sweep's round counter and search state (`None` for grid and random).
    pub guide_round: i64,
    pub guide: Option<Json<GuideState>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

macro_rules! sweep_columns {
    () => {
        concat!(
            "id, experiment_id, request, space, status, pause_reason, total, done, completed, cached, failed, ",
            "skipped, tokens_in, tokens_out, cost, calls, cache_hits, max_tokens, max_cost, max_calls, guide_round, guide, ",
            "created_at, updated_at, finished_at"
        )
    };
}

pub const COLUMNS: &str = sweep_columns!();

macro_rules! select_sweeps {
    ($($tail:literal),+) => {
        concat!("SELECT ", sweep_columns!(), " FROM sweeps ", $($tail),+)
    };
}

impl SweepRow {
    /// A sweep about to be stored: running, nothing done, its budget from the request.
    pub fn new(
        id: Uuid,
        experiment_id: Uuid,
        request: SweepRequest,
        space: ParameterSpace,
        max_tokens: Option<i64>,
        guide: Option<GuideState>,
    ) -> SweepRow {
        let now = Utc::now();
        let budget = request.budget.clone().unwrap_or_default();
        SweepRow {
            id,
            experiment_id,
            request: Json(request),
            space: Json(space),
            status: "running".into(),
            pause_reason: None,
            total: 0,
            done: 0,
            completed: 0,
            cached: 0,
            failed: 0,
            skipped: 0,
            tokens_in: 0,
            tokens_out: 0,
            cost: 0.0,
            calls: 0,
            cache_hits: 0,
            max_tokens,
            max_cost: budget.max_cost,
            max_calls: budget.max_calls,
            guide_round: 0,
            guide: guide.map(Json),
            created_at: now,
            updated_at: now,
            finished_at: None,
        }
    }

    pub fn progress(&self) -> Progress {
        let lookups = self.calls + self.cache_hits;
        // Pace: runs that ended by executing (not planned from the cache), since the start.
        let executed = self.completed + self.failed;
        let remaining = (self.total - self.done).max(0);
        let elapsed = (self.updated_at - self.created_at).num_milliseconds() as f64 / 1000.0;
        let eta_seconds = if remaining == 0 {
            Some(0.0)
        } else if executed > 0 && elapsed > 0.0 && self.status == "running" {
            Some((remaining as f64 * elapsed / executed as f64 * 10.0).round() / 10.0)
        } else {
            None
        };
        Progress {
            done: self.done,
            total: self.total,
            completed: self.completed,
            cached: self.cached,
            failed: self.failed,
            skipped: self.skipped,
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            cost: (self.cost * 1e6).round() / 1e6,
            calls: self.calls,
            cache_hits: self.cache_hits,
            cache_hit_rate: (lookups > 0).then(|| self.cache_hits as f64 / lookups as f64),
            eta_seconds,
        }
    }

    /// Whether a budget is spent.
    pub fn budget_spent(&self) -> bool {
        self.max_tokens
            .is_some_and(|m| self.tokens_in + self.tokens_out >= m)
            || self.max_cost.is_some_and(|m| self.cost >= m)
            || self.max_calls.is_some_and(|m| self.calls >= m)
    }

    /// Whether the recorder pauses the sweep for its budget: a guided sweep fits each round
    /// to its calls budget and ends there itself, so only tokens and cost pause it.
    pub fn pauses_for_budget(&self) -> bool {
        if self.is_guided() {
            self.max_tokens
                .is_some_and(|m| self.tokens_in + self.tokens_out >= m)
                || self.max_cost.is_some_and(|m| self.cost >= m)
        } else {
            self.budget_spent()
        }
    }

    pub fn is_guided(&self) -> bool {
        self.guide.is_some()
    }

    pub fn to_sweep(&self) -> Sweep {
        Sweep {
            id: self.id,
            experiment_id: self.experiment_id,
            request: self.request.0.clone(),
            parameter_space: self.space.0.clone(),
            status: self.status.clone(),
            pause_reason: self.pause_reason.clone(),
            progress: self.progress(),
            max_tokens: self.max_tokens,
            max_cost: self.max_cost,
            max_calls: self.max_calls,
            guide: self.guide.as_ref().map(|g| g.0.clone()),
            in_flight: 0,
            created_at: self.created_at,
            updated_at: self.updated_at,
            finished_at: self.finished_at,
        }
    }
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<SweepRow>> {
    Ok(
        on_db!(db, p => sqlx::query_as::<_, SweepRow>(select_sweeps!("WHERE id = $1"))
        .bind(id).fetch_optional(p).await)?,
    )
}

/// A running or paused sweep's count of runs executing now (0 for a sweep that ended).
macro_rules! with_in_flight {
    ($($tail:literal),+) => {
        concat!(
            "SELECT ", sweep_columns!(), ", CASE WHEN sweeps.status IN ('running', 'paused') THEN ",
            "(SELECT COUNT(*) FROM runs WHERE runs.sweep_id = sweeps.id AND runs.status = 'running') ",
            "ELSE 0 END AS in_flight FROM sweeps ",
            $($tail),+
        )
    };
}

/// A sweep row with the count of its runs executing now.
#[derive(sqlx::FromRow)]
pub struct Flying {
    #[sqlx(flatten)]
    pub row: SweepRow,
    pub in_flight: i64,
}

impl Flying {
    pub fn to_sweep(&self) -> Sweep {
        Sweep {
            in_flight: self.in_flight,
            ..self.row.to_sweep()
        }
    }
}

/// A sweep and its runs executing now, in one statement (the dashboard and clients poll it).
pub async fn get_flying(db: &Db, id: Uuid) -> Result<Option<Flying>> {
    Ok(
        on_db!(db, p => sqlx::query_as::<_, Flying>(with_in_flight!("WHERE id = $1"))
        .bind(id).fetch_optional(p).await)?,
    )
}

/// The experiment's current sweep (the running or paused one, else the newest) and its runs
/// executing now, in one statement.
pub async fn current_flying(db: &Db, experiment_id: Uuid) -> Result<Option<Flying>> {
    Ok(on_db!(db, p => sqlx::query_as::<_, Flying>(with_in_flight!(
        "WHERE experiment_id = $1 ",
        "ORDER BY CASE WHEN status IN ('running', 'paused') THEN 0 ELSE 1 END, created_at DESC LIMIT 1"))
        .bind(experiment_id).fetch_optional(p).await)?)
}

/// The experiment's sweep that is running or paused, if any.
pub async fn active(db: &Db, experiment_id: Uuid) -> Result<Option<SweepRow>> {
    Ok(
        on_db!(db, p => sqlx::query_as::<_, SweepRow>(select_sweeps!(
        "WHERE experiment_id = $1 AND status IN ('running', 'paused') ORDER BY created_at DESC LIMIT 1"))
        .bind(experiment_id).fetch_optional(p).await)?,
    )
}

/// Sweeps running or paused across every experiment, newest first, with the names of their
/// experiment and project: (sweep, experiment name, project id, project name).
pub async fn list_active(db: &Db, limit: i64) -> Result<Vec<(SweepRow, String, Uuid, String)>> {
    let rows = on_db!(db, p => sqlx::query_as::<_, SweepRow>(select_sweeps!(
        "WHERE status IN ('running', 'paused') ORDER BY created_at DESC, id LIMIT $1"))
        .bind(limit).fetch_all(p).await)?;
    let names: Vec<(Uuid, String, Uuid, String)> = on_db!(db, p => sqlx::query_as(
        "SELECT s.id, e.name, p.id, p.name FROM sweeps s JOIN experiments e ON e.id = s.experiment_id \
         JOIN projects p ON p.id = e.project_id WHERE s.status IN ('running', 'paused') \
         ORDER BY s.created_at DESC, s.id LIMIT $1")
        .bind(limit).fetch_all(p).await)?;
    let mut names: std::collections::HashMap<Uuid, (String, Uuid, String)> = names
        .into_iter()
        .map(|(id, e, p, pn)| (id, (e, p, pn)))
        .collect();
    // A sweep whose experiment went between the two reads is left out.
    Ok(rows
        .into_iter()
        .filter_map(|r| names.remove(&r.id).map(|(e, p, pn)| (r, e, p, pn)))
        .collect())
}

/// Runs of a sweep executing right now.
pub async fn in_flight(db: &Db, id: Uuid) -> Result<i64> {
    Ok(on_db!(db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM runs WHERE sweep_id = $1 AND status = 'running'")
        .bind(id).fetch_one(p).await)?)
}

/// The experiment's newest sweep.
pub async fn latest(db: &Db, experiment_id: Uuid) -> Result<Option<SweepRow>> {
    Ok(
        on_db!(db, p => sqlx::query_as::<_, SweepRow>(select_sweeps!(
        "WHERE experiment_id = $1 ORDER BY created_at DESC LIMIT 1"))
        .bind(experiment_id).fetch_optional(p).await)?,
    )
}

pub async fn list(
    db: &Db,
    experiment_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<(Vec<SweepRow>, i64)> {
    let rows = on_db!(db, p => sqlx::query_as::<_, SweepRow>(select_sweeps!(
        "WHERE experiment_id = $1 ORDER BY created_at DESC LIMIT $2 OFFSET $3"))
        .bind(experiment_id).bind(limit).bind(offset).fetch_all(p).await)?;
    let total: i64 = on_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM sweeps WHERE experiment_id = $1")
        .bind(experiment_id).fetch_one(p).await)?;
    Ok((rows, total))
}

/// Running sweeps with unclaimed runs (or guided ones between rounds) that no process has
/// driven since `stale_before`; each is claimed for re-driving (so only one process
/// re-enqueues it).
pub async fn claim_stale(
    db: &Db,
    stale_before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    Ok(on_db!(db, p => sqlx::query_scalar(
        "UPDATE sweeps SET driven_at = $2 WHERE status = 'running' \
         AND (driven_at IS NULL OR driven_at < $1) \
         AND (EXISTS (SELECT 1 FROM runs WHERE runs.sweep_id = sweeps.id AND runs.status = 'pending') \
              OR (guide IS NOT NULL AND done >= total)) \
         RETURNING id")
        .bind(stale_before).bind(now).fetch_all(p).await)?)
}

/// Marks sweeps as driven now (a process holds lanes for them).
pub async fn touch_driven(db: &Db, ids: &[Uuid], now: DateTime<Utc>) -> Result<()> {
    for id in ids {
        on_db!(db, p => sqlx::query("UPDATE sweeps SET driven_at = $2 WHERE id = $1")
            .bind(id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
struct MarkRow {
    experiment_id: Uuid,
    config_key: String,
    mark: String,
    note: String,
    marked_by: Option<Uuid>,
    marked_at: DateTime<Utc>,
    config: Option<Json<RunConfig>>,
}

pub async fn set_mark(db: &Db, m: &ConfigMark) -> Result<()> {
    on_db!(db, p => sqlx::query(
        "INSERT INTO config_marks (experiment_id, config_key, mark, note, marked_by, marked_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (experiment_id, config_key) DO UPDATE SET \
         mark = excluded.mark, note = excluded.note, marked_by = excluded.marked_by, marked_at = excluded.marked_at")
        .bind(m.experiment_id).bind(&m.config_key).bind(&m.mark).bind(&m.note).bind(m.marked_by).bind(m.marked_at)
        .execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn clear_mark(db: &Db, experiment_id: Uuid, config_key: &str) -> Result<bool> {
    let n = on_db!(db, p => sqlx::query("DELETE FROM config_marks WHERE experiment_id = $1 AND config_key = $2")
        .bind(experiment_id).bind(config_key).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

pub async fn marks(db: &Db, experiment_id: Uuid) -> Result<Vec<ConfigMark>> {
    let rows = on_db!(db, p => sqlx::query_as::<_, MarkRow>(
        "SELECT m.experiment_id, m.config_key, m.mark, m.note, m.marked_by, m.marked_at, \
         (SELECT r.config FROM runs r WHERE r.experiment_id = m.experiment_id AND r.config_key = m.config_key LIMIT 1) AS config \
         FROM config_marks m WHERE m.experiment_id = $1 ORDER BY m.marked_at DESC")
        .bind(experiment_id).fetch_all(p).await)?;
    Ok(rows
        .into_iter()
        .map(|r| ConfigMark {
            experiment_id: r.experiment_id,
            config_key: r.config_key,
            mark: r.mark,
            note: r.note,
            marked_by: r.marked_by,
            marked_at: r.marked_at,
            config: r.config.map(|c| c.0),
        })
        .collect())
}

/// A planned run that the cache already answers: the run (status `cached`) and its stages.
pub type CachedRun = (crate::types::Run, Vec<crate::server::exec::StageRecord>);

/// A page of a plan, handed from the planner to the transaction that stores it.
pub enum PlanPage {
    Runs {
        pending: Vec<crate::types::Run>,
        cached: Vec<CachedRun>,
        cache_hits: i64,
    },
    /// Every page was sent.
    Done,
    /// Planning failed: nothing is stored.
    Failed,
}

pub type PlanPages = tokio::sync::mpsc::Receiver<PlanPage>;

/// What the stored pages added up to.
#[derive(Debug, Default, Clone, Copy)]
pub struct Planned {
    pub pending: i64,
    pub cached: i64,
    pub cache_hits: i64,
}

/// Stores pages until `Done` inside `$tx`, numbering runs from `$seq`; `None` when planning
/// failed (the caller rolls back).
macro_rules! store_pages {
    ($tx:expr, $pages:expr, $seq:expr, $now:expr) => {{
        let mut seq: i64 = $seq;
        let mut planned = Planned::default();
        let mut finished = false;
        while let Some(page) = $pages.recv().await {
            match page {
                PlanPage::Runs {
                    pending,
                    cached,
                    cache_hits,
                } => {
                    super::bulk::insert_planned(&mut *$tx, &pending, &cached, seq, $now).await?;
                    seq += (pending.len() + cached.len()) as i64;
                    planned.pending += pending.len() as i64;
                    planned.cached += cached.len() as i64;
                    planned.cache_hits += cache_hits;
                }
                PlanPage::Done => {
                    finished = true;
                    break;
                }
                PlanPage::Failed => break,
            }
        }
        finished.then_some(planned)
    }};
}

/// Creates a sweep with every run of its plan, received page by page, in one transaction
/// (nothing is stored if planning fails). Returns the sweep as stored, its events, and what
/// was planned; `None` when planning failed.
pub async fn create(
    db: &Db,
    row: &SweepRow,
    created_by: Option<Uuid>,
    mut pages: PlanPages,
    events: impl FnOnce(&SweepRow) -> Vec<super::events::NewEvent>,
) -> Result<Option<(SweepRow, Vec<crate::types::Event>, Planned)>> {
    let now = row.created_at;
    let mut row = row.clone();
    Ok(on_db!(db, p => async {
        let mut tx = p.begin().await?;
        sqlx::query(
            "INSERT INTO sweeps (id, experiment_id, request, space, status, total, done, cached, cache_hits, \
             max_tokens, max_cost, driven_at, created_by, created_at, updated_at, finished_at, max_calls, guide) \
             VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 0, $6, $7, $8, $9, $8, $8, NULL, $10, $11)")
            .bind(row.id).bind(row.experiment_id).bind(&row.request).bind(&row.space).bind(&row.status)
            .bind(row.max_tokens).bind(row.max_cost).bind(now).bind(created_by).bind(row.max_calls).bind(&row.guide)
            .execute(&mut *tx).await?;
        let Some(planned) = store_pages!(tx, pages, 0, now) else {
            return Ok(None);
        };
        row.total = planned.pending + planned.cached;
        row.done = planned.cached;
        row.cached = planned.cached;
        row.cache_hits = planned.cache_hits;
        // A guided sweep plans its first round once it exists.
        if planned.pending == 0 && row.guide.is_none() {
            row.status = "completed".into();
            row.finished_at = Some(now);
        }
        sqlx::query(
            "UPDATE sweeps SET status = $2, total = $3, done = $4, cached = $5, cache_hits = $6, finished_at = $7 \
             WHERE id = $1")
            .bind(row.id).bind(&row.status).bind(row.total).bind(row.done).bind(row.cached)
            .bind(row.cache_hits).bind(row.finished_at)
            .execute(&mut *tx).await?;
        let status = if row.status == "completed" { "completed" } else { "running" };
        sqlx::query("UPDATE experiments SET status = $2, updated_at = $3 WHERE id = $1")
            .bind(row.experiment_id).bind(status).bind(now).execute(&mut *tx).await?;
        let events = events(&row);
        let stored: Vec<crate::types::Event> = super::bulk::insert_events(&mut *tx, &events).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Some((row, stored, planned)))
    }.await)?)
}

/// Replaces a sweep's unstarted runs with a new plan (redirect), received page by page, in one
/// transaction. Returns the sweep's new state, how many runs were dropped and what was
/// planned; `None` when planning failed (nothing changed).
pub async fn replan(
    db: &Db,
    id: Uuid,
    space: &ParameterSpace,
    request: &SweepRequest,
    mut pages: PlanPages,
) -> Result<Option<(SweepRow, i64, Planned)>> {
    let now = Utc::now();
    Ok(on_db!(db, p => async {
        let mut tx = p.begin().await?;
        let dropped = sqlx::query("DELETE FROM runs WHERE sweep_id = $1 AND status = 'pending'")
            .bind(id).execute(&mut *tx).await?.rows_affected() as i64;
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM runs WHERE sweep_id = $1")
            .bind(id).fetch_one(&mut *tx).await?;
        let Some(planned) = store_pages!(tx, pages, seq.unwrap_or(0) + 1, now) else {
            return Ok(None);
        };
        let added = planned.pending + planned.cached;
        let sql = format!(
            "UPDATE sweeps SET space = $2, request = $3, total = total - $4 + $5, skipped = skipped + $4, guide_round = guide_round + 1, \
             done = done + $6, cached = cached + $6, cache_hits = cache_hits + $7, updated_at = $8 WHERE id = $1 RETURNING {COLUMNS}");
        let row = sqlx::query_as::<_, SweepRow>(sqlx::AssertSqlSafe(sql))
            .bind(id).bind(Json(space)).bind(Json(request)).bind(dropped).bind(added).bind(planned.cached)
            .bind(planned.cache_hits).bind(now)
            .fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Some((row, dropped, planned)))
    }.await)?)
}

/// Sets a sweep's status when it is in one of `from`; returns the new state if it changed.
/// The experiment's status follows (stopped sweeps leave it `completed`).
pub async fn transition(
    db: &Db,
    id: Uuid,
    from: &[&str],
    to: &str,
    pause_reason: Option<&str>,
    budget: Option<(Option<i64>, Option<f64>, Option<i64>)>,
) -> Result<Option<SweepRow>> {
    let now = Utc::now();
    let from = from.join(",");
    let finished = matches!(to, "completed" | "stopped").then_some(now);
    let experiment_status = match to {
        "running" => "running",
        "paused" => "paused",
        _ => "completed",
    };
    let (set_budget, max_tokens, max_cost, max_calls) = match budget {
        Some((t, c, n)) => (true, t, c, n),
        None => (false, None, None, None),
    };
    Ok(on_db!(db, p => {
        let mut tx = p.begin().await?;
        let sql = format!(
            "UPDATE sweeps SET status = $2, pause_reason = $3, finished_at = COALESCE($4, finished_at), updated_at = $5, \
             driven_at = $5, max_tokens = CASE WHEN $7 THEN $8 ELSE max_tokens END, \
             max_cost = CASE WHEN $7 THEN $9 ELSE max_cost END, \
             max_calls = CASE WHEN $7 THEN $10 ELSE max_calls END \
             WHERE id = $1 AND ',' || CAST($6 AS TEXT) || ',' LIKE '%,' || status || ',%' RETURNING {COLUMNS}");
        let row = sqlx::query_as::<_, SweepRow>(sqlx::AssertSqlSafe(sql))
            .bind(id).bind(to).bind(pause_reason).bind(finished).bind(now).bind(&from)
            .bind(set_budget).bind(max_tokens).bind(max_cost).bind(max_calls)
            .fetch_optional(&mut *tx).await?;
        if let Some(row) = &row {
            sqlx::query("UPDATE experiments SET status = $2, updated_at = $3 WHERE id = $1")
                .bind(row.experiment_id).bind(experiment_status).bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(row)
    })?)
}

/// Drops a stopped sweep's unstarted runs; returns the sweep's new state.
pub async fn drop_pending(db: &Db, id: Uuid) -> Result<Option<SweepRow>> {
    let now = Utc::now();
    Ok(on_db!(db, p => {
        let mut tx = p.begin().await?;
        let dropped = sqlx::query("DELETE FROM runs WHERE sweep_id = $1 AND status = 'pending'")
            .bind(id).execute(&mut *tx).await?.rows_affected() as i64;
        let sql = format!(
            "UPDATE sweeps SET total = total - $2, skipped = skipped + $2, updated_at = $3 WHERE id = $1 RETURNING {COLUMNS}");
        let row = sqlx::query_as::<_, SweepRow>(sqlx::AssertSqlSafe(sql))
            .bind(id).bind(dropped).bind(now).fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(row)
    })?)
}

/// Config hashes of a sweep's runs that started or ended (kept by a redirect).
pub async fn started_hashes(db: &Db, id: Uuid) -> Result<Vec<String>> {
    Ok(on_db!(db, p => sqlx::query_scalar(
        "SELECT config_hash FROM runs WHERE sweep_id = $1 AND status <> 'pending'")
        .bind(id).fetch_all(p).await)?)
}

/// Runs pending and running, sweeps running and paused (for `/health`).
pub async fn health_counts(db: &Db) -> Result<(i64, i64, i64, i64)> {
    Ok(on_db!(db, p => sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM runs WHERE status = 'pending'), \
                (SELECT COUNT(*) FROM runs WHERE status = 'running'), \
                (SELECT COUNT(*) FROM sweeps WHERE status = 'running'), \
                (SELECT COUNT(*) FROM sweeps WHERE status = 'paused')").fetch_one(p).await)?)
}
