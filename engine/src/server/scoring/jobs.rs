//! Re-scoring: a background job that brings every ended run's scores up to date with the
//! experiment's scoring config — after a scorer is added or changed, for runs the cache
//! answered at planning, or on request. It makes no LLM calls but the scorers' own (judges,
//! embeddings), and those go through the cache.
//!
//! The `scoring_jobs` table is the truth: a job walks the runs in planning order in batches, each
//! committed with its progress (a cursor), so a job cut off by a crash resumes where it was.
//! The process that creates a job drives it; a job no process has driven for a while is
//! claimed by the next heartbeat (any process), as sweeps are. A pass ends with a check for
//! runs that ended meanwhile; they get another pass.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use serde_json::json;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Pass, RunRef, ScoreRow, Subject, Usage};
use crate::server::auth::Actor;
use crate::server::core::Core;
use crate::server::error::{Error, Result};
use crate::server::events::emit_logged;
use crate::server::store::events::NewEvent;
use crate::server::store::scoring_jobs::{self as store, BatchRun, JobRow, Progress};
use crate::server::store::{experiments, scores};
use crate::server::templates::StageOutput;
use crate::types::{Experiment, Item, RescoreRequest, RunConfig, ScoringJob};
use crate::validate;

/// Runs per batch, runs scored at once, passes per job.
const BATCH: i64 = 1000;
const CONCURRENCY: usize = 16;
const MAX_PASSES: i64 = 3;

/// `POST /api/v1/experiments/{id}/rescore`.
pub async fn request(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    req: RescoreRequest,
) -> Result<ScoringJob> {
    actor.require_write()?;
    let e = experiments::get(&core.db, experiment_id)
        .await?
        .ok_or(Error::NotFound("experiment"))?;
    let (configs, _) = super::parse_lenient(&e.scoring_config);
    if configs.is_empty() {
        return Err(Error::conflict(
            "scoring_config",
            "the experiment has no scorers; add some to its scoring_config first",
        ));
    }
    if let Some(names) = &req.scorers {
        if names.is_empty() {
            return Err(Error::invalid(
                "scorers",
                "name at least one scorer, or leave it out for all",
            ));
        }
        for (i, name) in names.iter().enumerate() {
            if !configs.iter().any(|c| &c.name == name) {
                let known: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
                return Err(Error::invalid(
                    format!("scorers[{i}]"),
                    format!(
                        "no scorer named {name:?} (the experiment has: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    start(core, &e, req.scorers, req.force, actor.user_id()).await
}

/// Creates a job and drives it in the background. A running job this one covers (every
/// scorer, and forced if it was) is superseded.
pub async fn start(
    core: &Core,
    e: &Experiment,
    scorers: Option<Vec<String>>,
    force: bool,
    created_by: Option<Uuid>,
) -> Result<ScoringJob> {
    let now = Utc::now();
    let row = JobRow {
        id: Uuid::new_v4(),
        experiment_id: e.id,
        status: "running".into(),
        scorers: scorers.clone().map(Json),
        force,
        cursor: None,
        passes: 0,
        total: store::count_scoreable(&core.db, e.id, None).await?,
        done: 0,
        scored: 0,
        errors: 0,
        calls: 0,
        cache_hits: 0,
        error: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    for old in store::running(&core.db, e.id).await? {
        if scorers.is_none() && (force || !old.force) {
            store::finish(&core.db, old.id, "superseded", None).await?;
        }
    }
    store::insert(&core.db, &row, created_by).await?;
    emit_logged(
        core,
        vec![event("scoring.started", &row, json!({"total": row.total}))],
    )
    .await;
    spawn(core, row.id);
    Ok(row.to_job())
}

fn event(event_type: &'static str, job: &JobRow, extra: serde_json::Value) -> NewEvent {
    let mut payload = json!({
        "job_id": job.id,
        "scorers": job.scorers.as_ref().map(|s| &s.0),
        "force": job.force,
    });
    if let (Some(p), serde_json::Value::Object(extra)) = (payload.as_object_mut(), extra) {
        p.extend(extra);
    }
    NewEvent {
        event_type,
        experiment_id: Some(job.experiment_id),
        sweep_id: None,
        run_id: None,
        payload,
    }
}

/// Drives a job on a background task of this process.
pub fn spawn(core: &Core, id: Uuid) {
    let task_core = core.clone();
    core.tasks.spawn(async move {
        let core = task_core;
        let _driving = core.scoring_driving.hold(id);
        if let Err(e) = drive(&core, id).await {
            tracing::error!(job = %id, error = ?e, "a scoring job failed");
            if let Ok(Some(row)) = store::finish(&core.db, id, "failed", Some(&e.to_string())).await
            {
                // What it did write shows on the leaderboard.
                let _ =
                    crate::server::store::leaderboard::bump_all(&core.db, row.experiment_id).await;
                emit_logged(
                    &core,
                    vec![event(
                        "scoring.failed",
                        &row,
                        json!({"error": e.to_string()}),
                    )],
                )
                .await;
            }
        }
    });
}

/// Claims and drives running jobs nobody has driven since `stale_before`.
pub async fn redrive(core: &Core, stale_before: chrono::DateTime<Utc>) -> Result<()> {
    for id in store::claim_stale(&core.db, stale_before, Utc::now()).await? {
        tracing::info!(job = %id, "resuming a scoring job nobody was driving");
        spawn(core, id);
    }
    Ok(())
}

pub async fn get_job(core: &Core, _actor: &Actor, id: Uuid) -> Result<ScoringJob> {
    Ok(store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("scoring job"))?
        .to_job())
}

pub async fn list_jobs(
    core: &Core,
    _actor: &Actor,
    experiment_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ScoringJob>, i64)> {
    if experiments::get(&core.db, experiment_id).await?.is_none() {
        return Err(Error::NotFound("experiment"));
    }
    validate::page(limit, offset, 1000)?;
    let (rows, total) = store::list(&core.db, experiment_id, limit, offset).await?;
    Ok((rows.iter().map(JobRow::to_job).collect(), total))
}

/// The experiment's newest running job, if any.
pub async fn running(core: &Core, experiment_id: Uuid) -> Result<Option<ScoringJob>> {
    Ok(store::running(&core.db, experiment_id)
        .await?
        .first()
        .map(JobRow::to_job))
}

/// Jobs over at least this many runs refresh stale planner statistics first (PostgreSQL).
const ANALYZE_FROM: i64 = 1000;

async fn drive(core: &Core, id: Uuid) -> Result<()> {
    let started = std::time::Instant::now();
    let Some(job) = store::get(&core.db, id).await? else {
        return Ok(());
    };
    // The stored cursor is the last run of the last committed batch; if it is gone (a pending
    // run dropped since), the pass starts over (scores already current are skipped).
    let mut after = match job.cursor {
        Some(run_id) => store::position(&core.db, run_id).await?,
        None => None,
    };
    let mut passes = job.passes;
    let mut pass_started = Utc::now();
    let mut since = None;
    let mut context: Option<(serde_json::Value, Arc<Pass>, Arc<Experiment>)> = None;
    let mut ahead: Option<Fetched> = None;
    if job.total >= ANALYZE_FROM {
        let t = std::time::Instant::now();
        let tables = crate::server::store::stats::analyze_stale(
            &core.db,
            &crate::server::store::stats::RUN_TABLES,
        )
        .await?;
        if !tables.is_empty() {
            tracing::debug!(job = %id, ?tables, took_ms = t.elapsed().as_millis() as u64, "statistics refreshed before re-scoring");
        }
    }
    crate::server::store::leaderboard::ensure_entries(&core.db, job.experiment_id).await?;
    // Every configuration at once (a thousand, typically): batches then need none.
    let mut configs: HashMap<String, RunConfig> =
        crate::server::store::leaderboard::all_configs(&core.db, job.experiment_id).await?;
    loop {
        if core.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            // Left running: the next process (or this one, restarted) resumes it.
            return Ok(());
        }
        let Some(e) = experiments::get(&core.db, job.experiment_id).await? else {
            return Ok(());
        };
        let pin = (e.items.dataset_id, e.items.version);
        // A scoring config changed mid-job is scored with as it is now.
        let rebuild = context
            .as_ref()
            .is_none_or(|(config, _, _)| *config != e.scoring_config);
        if rebuild {
            let pass = Pass::new(core, &e).await?;
            context = Some((e.scoring_config.clone(), Arc::new(pass), Arc::new(e)));
        }
        let (_, pass, experiment) = context.as_ref().expect("built above");
        let human_names: Vec<String> = pass
            .scoring
            .scorers
            .iter()
            .filter(|b| b.kind == "human_rating")
            .map(|b| b.name.clone())
            .collect();
        let humans = !human_names.is_empty();
        let mut batch = match ahead.take() {
            Some(f) if f.after == after && f.since == since && f.humans == humans => f,
            _ => fetch(core, job.experiment_id, pin, after, since, humans, &configs).await?,
        };
        configs.extend(std::mem::take(&mut batch.configs));
        let Some(last) = batch.runs.last().map(|r| (r.created_at, r.seq, r.id)) else {
            // A pass is over. Runs that ended during it may have been scored with older
            // settings: they get another pass (only those).
            let late =
                store::count_scoreable(&core.db, job.experiment_id, Some(pass_started)).await?;
            if late > 0 && passes + 1 < MAX_PASSES {
                passes += 1;
                store::next_pass(&core.db, id).await?;
                after = None;
                since = Some(pass_started);
                pass_started = Utc::now();
                continue;
            }
            break;
        };
        let started_batch = std::time::Instant::now();
        let (rows, usage, done) = score_batch(core, pass, experiment, &job, &batch, &configs).await;
        let scored_in = started_batch.elapsed();
        let progress = Progress {
            done,
            scored: rows.iter().filter(|r| r.value.is_some()).count() as i64,
            errors: rows.iter().filter(|r| r.value.is_none()).count() as i64,
            calls: usage.calls,
            cache_hits: usage.cache_hits,
        };
        // The next batch is read while this one is written.
        let ((committed, commit_took), (next, fetch_took)) = tokio::join!(
            async {
                let t = std::time::Instant::now();
                let out = store::commit_batch(
                    &core.db,
                    id,
                    &rows,
                    &usage.cache_puts,
                    &progress,
                    last.2,
                    &human_names,
                )
                .await;
                (out, t.elapsed())
            },
            async {
                let t = std::time::Instant::now();
                let out = fetch(
                    core,
                    job.experiment_id,
                    pin,
                    Some(last),
                    since,
                    humans,
                    &configs,
                )
                .await;
                (out, t.elapsed())
            },
        );
        tracing::debug!(
            commit_ms = commit_took.as_millis() as u64,
            fetch_ms = fetch_took.as_millis() as u64,
            "wrote a batch and read the next"
        );
        if !committed? {
            tracing::info!(job = %id, "scoring job superseded or ended elsewhere; stopping");
            return Ok(());
        }
        tracing::debug!(job = %id, runs = batch.runs.len(), scores = rows.len(), score_ms = scored_in.as_millis() as u64,
            commit_and_read_ms = (started_batch.elapsed() - scored_in).as_millis() as u64, "scored a batch");
        ahead = next.ok();
        after = Some(last);
    }
    // The leaderboard moves once, when every score is in (not batch by batch: each batch
    // touches most configurations, and recomputing them all each time would be waste).
    crate::server::store::leaderboard::bump_all(&core.db, job.experiment_id).await?;
    core.leader_watch.notice(job.experiment_id, None, "rescore");
    if let Some(row) = store::finish(&core.db, id, "completed", None).await? {
        tracing::info!(job = %id, scored = row.scored, errors = row.errors, calls = row.calls, "scoring job completed");
        emit_logged(core, vec![event("scoring.completed", &row, json!({
            "total": row.total, "done": row.done, "scored": row.scored, "errors": row.errors,
            "calls": row.calls, "cache_hits": row.cache_hits,
            "seconds": (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        }))]).await;
        // Leave the leaderboard ready for the first look.
        let _ = crate::server::leaderboard::refresh_experiment(core, row.experiment_id).await;
    }
    Ok(())
}

type Batch = (Vec<ScoreRow>, Usage, i64);

/// A run's stage outputs as scorers see them, named after the experiment's stages.
pub(super) fn named_stages(e: &Experiment, stages: &[store::StageOut]) -> Vec<StageOutput> {
    stages
        .iter()
        .map(|(k, text, _, _)| StageOutput {
            name: e
                .pipeline_stages
                .get(*k as usize)
                .map_or_else(|| format!("stage {k}"), |s| s.name.clone()),
            output: text.clone(),
        })
        .collect()
}

/// One batch of runs and everything scoring it needs, read ahead of its turn.
struct Fetched {
    after: Option<store::Position>,
    since: Option<chrono::DateTime<Utc>>,
    humans: bool,
    runs: Vec<BatchRun>,
    existing: HashMap<Uuid, Vec<scores::Brief>>,
    ratings: HashMap<Uuid, HashMap<String, Vec<f64>>>,
    outputs: HashMap<Uuid, Vec<store::StageOut>>,
    /// Configurations of these runs not among `known` yet.
    configs: HashMap<String, RunConfig>,
    /// The runs' items, as the experiment's dataset version has them.
    items: HashMap<String, Item>,
}

async fn fetch(
    core: &Core,
    experiment_id: Uuid,
    (dataset, version): (Uuid, i64),
    after: Option<store::Position>,
    since: Option<chrono::DateTime<Utc>>,
    humans: bool,
    known: &HashMap<String, RunConfig>,
) -> Result<Fetched> {
    let runs = store::batch(&core.db, experiment_id, after, since, BATCH).await?;
    let missing: Vec<String> = store::scoreable(&runs)
        .filter(|r| !known.contains_key(&r.config_key))
        .map(|r| r.config_key.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let (existing, ratings, outputs, configs, items) = match runs.last() {
        None => Default::default(),
        Some(_) => {
            let ids: Vec<Uuid> = store::scoreable(&runs).map(|r| r.id).collect();
            let item_ids: Vec<String> = store::scoreable(&runs)
                .map(|r| r.item_id.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            // Independent reads, on as many connections at once (PostgreSQL runs them in
            // parallel; right after a sweep, before autovacuum has been through, each is slow).
            let (existing, ratings, outputs, configs, items) = tokio::try_join!(
                scores::brief_for_runs(&core.db, &ids),
                async {
                    if humans {
                        scores::ratings_for_runs(&core.db, &ids).await
                    } else {
                        Ok(HashMap::new())
                    }
                },
                store::stage_outputs(&core.db, &ids),
                crate::server::store::leaderboard::configs(&core.db, experiment_id, &missing),
                crate::server::store::datasets::by_ids(&core.db, dataset, version, &item_ids),
            )?;
            let items = items.into_iter().map(|i| (i.id.clone(), i)).collect();
            (existing, ratings, outputs, configs, items)
        }
    };
    Ok(Fetched {
        after,
        since,
        humans,
        runs,
        existing,
        ratings,
        outputs,
        configs,
        items,
    })
}

/// Scores what needs scoring in one batch of runs: missing, outdated and (in a first pass)
/// failed scores (all, when forced), for the job's scorers. Returns the rows, what scorers
/// spent and how many runs were looked at.
async fn score_batch(
    core: &Core,
    pass: &Pass,
    e: &Experiment,
    job: &JobRow,
    batch: &Fetched,
    configs: &HashMap<String, RunConfig>,
) -> Batch {
    let runs: Vec<&BatchRun> = store::scoreable(&batch.runs).collect();
    let (existing, ratings, outputs) = (&batch.existing, &batch.ratings, &batch.outputs);
    let late = batch.since.is_some();
    let wanted = |name: &str| {
        job.scorers
            .as_ref()
            .is_none_or(|s| s.0.iter().any(|n| n == name))
    };
    let no_ratings = HashMap::new();
    let work: Vec<_> = runs
        .iter()
        .map(|run| {
            let existing = existing.get(&run.id);
            let ratings = ratings.get(&run.id).unwrap_or(&no_ratings);
            let stages = outputs.get(&run.id);
            let config = configs.get(&run.config_key);
            async move {
                let (Some(stages), Some(config)) = (stages.filter(|s| !s.is_empty()), config)
                else {
                    return (Vec::new(), Usage::default());
                };
                let needs = |b: &super::Built| {
                    if !wanted(&b.name) {
                        return false;
                    }
                    let current = existing.and_then(|list| {
                        list.iter()
                            .find(|(n, fp, _, _)| *n == b.name && *fp == b.fingerprint)
                    });
                    match current {
                        _ if job.force => true,
                        None => true,
                        // A failed score is tried again (a judge reply already paid for is
                        // cached), but not in a pass over runs that ended during the job: those
                        // were scored as they were recorded, with these very settings.
                        Some((_, _, value, failed)) => !late && value.is_none() && *failed,
                    }
                };
                if !pass.scoring.scorers.iter().any(&needs) {
                    return (Vec::new(), Usage::default());
                }
                // Only runs of the item as it is now (an edited item's old runs are left).
                let Some(item) = batch.items.get(&run.item_id).filter(|item| {
                    let input = serde_json::to_value(&item.input).unwrap_or_default();
                    crate::server::runs::config_hash(
                        &run.config_key,
                        &input,
                        run.repeat_index as u32,
                    ) == run.config_hash
                }) else {
                    return (Vec::new(), Usage::default());
                };
                let named = named_stages(e, stages);
                let (_, output, tokens, estimated) = stages.last().expect("not empty");
                let subject = Subject {
                    run: RunRef {
                        id: run.id,
                        experiment_id: run.experiment_id,
                        config_key: &run.config_key,
                        config,
                        item_index: run.item_index,
                        repeat_index: run.repeat_index,
                    },
                    input: &item.input,
                    item_id: Some(item.id.as_str()),
                    reference: item.reference.as_deref(),
                    output,
                    stages: &named,
                    output_tokens: *tokens,
                    output_tokens_estimated: *estimated,
                    ratings,
                };
                pass.scoring
                    .score(core, &pass.prices, &subject, Some(&needs))
                    .await
            }
        })
        .collect();
    let results: Vec<(Vec<ScoreRow>, Usage)> = futures::stream::iter(work)
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut rows = Vec::new();
    let mut usage = Usage::default();
    for (r, u) in results {
        rows.extend(r);
        usage.add(u);
    }
    (rows, usage, runs.len() as i64)
}

/// How long a job nobody drives waits before another process takes it over.
pub const STALE: Duration = Duration::from_secs(30);
