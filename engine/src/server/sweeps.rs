//! Sweeps: planning (grid or random), preview, durable execution by lanes, and steering
//! (pause, resume, stop, redirect, fork, approve, reject).
//!
//! The runs table is the truth. Planning persists every run before any call: runs the cache
//! already answers are recorded `cached` at once, the rest `pending`. Lanes (apalis jobs, see
//! `jobs`) claim pending runs under a lease, execute them and hand the outcomes to the
//! recorder, which commits them with the sweep's progress. A process that dies leaves leased
//! runs behind; their leases run out and they are claimed again — nothing completed is redone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use sqlx::types::Json;
use uuid::Uuid;

use super::auth::Actor;
use super::core::Core;
use super::error::{Error, Result};
use super::events::emit_logged;
use super::exec::{self, Context, Outcome, StageRecord};
use super::experiments::check_experiment;
use super::planner;
use super::runs::{MAX_REPEATS, config_hash, config_key, resolve_config};
use super::store::events::NewEvent;
use super::store::sweeps::{self as store, CachedRun, SweepRow};
use super::store::{cache as cache_store, experiments, runs as run_store};
use super::templates::{self, StageOutput};
use crate::types::{
    Budget, ConfigMark, Experiment, ForkRequest, MarkRequest, ParameterSpace, Redirect, Run,
    Strategy, Sweep, SweepPreview, SweepRequest,
};
use crate::validate;

/// The most runs one sweep may plan.
pub const MAX_SWEEP_RUNS: usize = 100_000;
/// How long a claimed run stays leased without a heartbeat.
pub const LEASE: Duration = Duration::from_secs(20);
/// Most runs one lane claims at a time.
const CLAIM_MAX: usize = 64;
/// Lanes per sweep: how many processes (and apalis slots) may drive it at once.
const LANES_MAX: usize = 16;
/// Pending runs per lane when deciding how many lanes to enqueue.
const RUNS_PER_LANE: usize = 32;
/// Runs a lane claims before it makes way for other sweeps' lanes (it enqueues a successor).
const LANE_QUANTUM: usize = 256;
/// A run interrupted this many times (its process died each time) fails instead of retrying.
const MAX_ATTEMPTS: i32 = 3;

/// A sweep event carrying the sweep's state.
pub fn sweep_event(event_type: &'static str, row: &SweepRow, extra: Value) -> NewEvent {
    let mut payload = json!({
        "sweep_id": row.id,
        "strategy": row.request.0.strategy.name(),
        "status": row.status,
        "progress": row.progress(),
    });
    if let (Some(obj), Value::Object(extra)) = (payload.as_object_mut(), extra) {
        obj.extend(extra);
    }
    NewEvent {
        event_type,
        experiment_id: Some(row.experiment_id),
        sweep_id: Some(row.id),
        run_id: None,
        payload,
    }
}

/// What planning produced.
struct Plan {
    configurations: usize,
    pending: Vec<Run>,
    cached: Vec<CachedRun>,
    /// Per pending run: how many of its leading stages the cache answers.
    pending_cached_stages: Vec<usize>,
    cache_hits: i64,
    /// Rendered size (bytes) of each pending run's first uncached stage prompt, if known.
    prompt_bytes: Vec<Option<usize>>,
}

fn check_request(e: &Experiment, req: &SweepRequest) -> Result<(u32, Vec<usize>)> {
    let repeats = req.repeats.unwrap_or(1);
    if !(1..=MAX_REPEATS).contains(&repeats) {
        return Err(Error::invalid(
            "repeats",
            format!("must be between 1 and {MAX_REPEATS}"),
        ));
    }
    if let Strategy::Random { samples, .. } = req.strategy
        && (samples == 0 || samples as usize > planner::MAX_CONFIGURATIONS)
    {
        return Err(Error::invalid(
            "strategy.samples",
            format!("must be between 1 and {}", planner::MAX_CONFIGURATIONS),
        ));
    }
    if e.sample_data.is_empty() {
        return Err(Error::invalid(
            "experiment",
            "the experiment has no sample items; add or import some first",
        ));
    }
    let mut seen = HashSet::new();
    let items: Vec<usize> = super::runs::check_items(e, req.items.as_deref())?
        .into_iter()
        .filter(|i| seen.insert(*i))
        .collect();
    if let Some(b) = &req.budget {
        check_budget(b)?;
    }
    Ok((repeats, items))
}

/// A sweep's token limit: its own budget's, capped by `MAX_TOKENS_PER_SWEEP`.
fn max_tokens(core: &Core, b: &Budget) -> Option<i64> {
    match (b.max_tokens, core.max_tokens_per_sweep) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
}

fn check_budget(b: &Budget) -> Result<()> {
    if b.max_tokens.is_some_and(|t| t <= 0) {
        return Err(Error::invalid("budget.max_tokens", "must be positive"));
    }
    if b.max_cost.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
        return Err(Error::invalid(
            "budget.max_cost",
            "must be a positive number",
        ));
    }
    Ok(())
}

/// Expands the strategy into runs and resolves what the cache already answers.
async fn plan(
    ctx: &Context,
    req: &SweepRequest,
    sweep_id: Uuid,
    exclude: &HashSet<String>,
) -> Result<Plan> {
    let e = &ctx.experiment;
    let (repeats, items) = check_request(e, req)?;
    let choices = match &req.strategy {
        Strategy::Grid => planner::grid(e)?,
        // Draws extra so that `samples` distinct configurations remain after duplicates are
        // dropped (fewer only when the space has fewer).
        Strategy::Random { samples, seed } => {
            let draws = (*samples as usize)
                .saturating_mul(4)
                .min(planner::MAX_CONFIGURATIONS)
                .max(*samples as usize);
            planner::sample(e, draws, seed.unwrap_or_default()).map_err(|err| match err {
                Error::Invalid(f) if f.field == "samples" => {
                    Error::invalid("strategy.samples", f.message)
                }
                other => other,
            })?
        }
    };
    // Configurations, without duplicates (a random draw may repeat one).
    let mut configs = Vec::new();
    let mut keys = HashSet::new();
    for c in &choices {
        let config = resolve_config(e, c).map_err(|err| match err {
            Error::Invalid(f) => Error::invalid(format!("parameter_space.{}", f.field), f.message),
            other => other,
        })?;
        let key = config_key(&config);
        if keys.insert(key.clone()) {
            configs.push((key, config));
        }
        if let Strategy::Random { samples, .. } = req.strategy
            && configs.len() == samples as usize
        {
            break;
        }
    }
    let total = configs.len() * items.len() * repeats as usize;
    if total > MAX_SWEEP_RUNS {
        return Err(Error::invalid(
            "strategy",
            format!(
                "{} configurations × {} items × {repeats} repeats is {total} runs; at most {MAX_SWEEP_RUNS} per sweep",
                configs.len(),
                items.len()
            ),
        ));
    }
    // Every endpoint must exist before anything is persisted.
    for (_, config) in &configs {
        for (k, stage) in config.stages.iter().enumerate() {
            if ctx.endpoint(stage.endpoint_id).await?.is_none() {
                return Err(Error::invalid(
                    format!("parameter_space.stages[{k}].models"),
                    format!("endpoint {} does not exist", stage.endpoint_id),
                ));
            }
        }
    }
    let now = Utc::now();
    let mut runs = Vec::with_capacity(total);
    let inputs: Vec<Value> = e
        .sample_data
        .iter()
        .map(|i| serde_json::to_value(&i.input).unwrap_or_default())
        .collect();
    for (key, config) in &configs {
        for &i in &items {
            for r in 0..repeats {
                let hash = config_hash(key, &inputs[i], r);
                if exclude.contains(&hash) {
                    continue;
                }
                runs.push(Run {
                    id: Uuid::new_v4(),
                    experiment_id: e.id,
                    sweep_id: Some(sweep_id),
                    config_hash: hash,
                    config_key: key.clone(),
                    config: config.clone(),
                    item_index: i as i32,
                    repeat_index: r as i32,
                    status: "pending".into(),
                    error: None,
                    started_at: None,
                    completed_at: None,
                    duration_ms: None,
                    tokens_in: 0,
                    tokens_out: 0,
                    cost_estimate: None,
                    created_at: now,
                });
            }
        }
    }
    resolve_cached(ctx, runs, configs.len()).await
}

/// Walks the pipeline stage by stage over all runs at once: a run whose every stage is in the
/// cache is answered now; the others stay pending.
async fn resolve_cached(ctx: &Context, runs: Vec<Run>, configurations: usize) -> Result<Plan> {
    let env = templates::environment();
    let n = runs.len();
    let mut outputs: Vec<Vec<StageOutput>> = vec![Vec::new(); n];
    let mut stages: Vec<Vec<StageRecord>> = vec![Vec::new(); n];
    let mut alive: Vec<bool> = vec![true; n];
    let mut prompt_bytes: Vec<Option<usize>> = vec![None; n];
    let mut cache_hits = 0i64;
    let depth = runs
        .iter()
        .map(|r| r.config.stages.len())
        .max()
        .unwrap_or(0);
    // Stage 0 renders the same for every repeat: render once per (configuration, item).
    type Rendered = std::result::Result<Arc<Vec<super::providers::Message>>, String>;
    let mut first_render: HashMap<(&str, i32), Rendered> = HashMap::new();
    let inputs: Vec<Value> = ctx
        .experiment
        .sample_data
        .iter()
        .map(|i| serde_json::to_value(&i.input).unwrap_or_default())
        .collect();
    for k in 0..depth {
        if k == 1 {
            // Only the first stage renders alike across runs; free the memo.
            first_render = HashMap::new();
        }
        let mut calls = Vec::new();
        for (idx, run) in runs.iter().enumerate() {
            if !alive[idx] || k >= run.config.stages.len() {
                continue;
            }
            let stage = &run.config.stages[k];
            let Some((row, _)) = ctx.endpoint(stage.endpoint_id).await? else {
                alive[idx] = false;
                continue;
            };
            let messages = if k == 0 {
                first_render
                    .entry((run.config_key.as_str(), run.item_index))
                    .or_insert_with(|| exec::render(ctx, &env, run, 0, &[]).map(Arc::new))
                    .clone()
            } else {
                exec::render(ctx, &env, run, k, &outputs[idx]).map(Arc::new)
            };
            let Ok(messages) = messages else {
                // A template error: the run will fail when it executes, with the message.
                alive[idx] = false;
                continue;
            };
            let Some(input) = inputs.get(run.item_index as usize) else {
                alive[idx] = false;
                continue;
            };
            let key = exec::key_for(&row, stage, &messages, input, k, run.repeat_index as u32);
            prompt_bytes[idx] = Some(messages.iter().map(|m| m.content.len()).sum());
            calls.push((idx, key, messages));
        }
        if calls.is_empty() {
            break;
        }
        let keys: Vec<&str> = calls.iter().map(|(_, k, _)| k.as_str()).collect();
        let hits = cache_store::get_many(&ctx.core.db, &keys).await?;
        for (idx, key, messages) in calls {
            let Some(answer) = hits.get(&key) else {
                alive[idx] = false;
                continue;
            };
            cache_hits += 1;
            let run = &runs[idx];
            let stage = &run.config.stages[k];
            let name = ctx
                .experiment
                .pipeline_stages
                .get(k)
                .map_or_else(|| "?".to_owned(), |s| s.name.clone());
            let cost = ctx
                .prices
                .cost(&stage.model, answer.tokens_in, answer.tokens_out);
            stages[idx].push(StageRecord::new(
                k, stage, &messages, answer, true, cost, key,
            ));
            // Later stages render with this output; the last stage's is not needed.
            if k + 1 < run.config.stages.len() {
                outputs[idx].push(StageOutput {
                    name,
                    output: answer.response.clone(),
                });
            }
        }
    }
    let mut plan = Plan {
        configurations,
        pending: Vec::new(),
        cached: Vec::new(),
        pending_cached_stages: Vec::new(),
        cache_hits,
        prompt_bytes: Vec::new(),
    };
    for (idx, mut run) in runs.into_iter().enumerate() {
        let records = std::mem::take(&mut stages[idx]);
        if records.len() == run.config.stages.len() {
            run.status = "cached".into();
            run.tokens_in = records.iter().map(|s| s.tokens_in).sum();
            run.tokens_out = records.iter().map(|s| s.tokens_out).sum();
            run.cost_estimate = records.iter().map(|s| s.cost_estimate).sum();
            run.duration_ms = Some(0);
            plan.cached.push((run, records));
        } else {
            plan.pending_cached_stages.push(records.len());
            plan.prompt_bytes.push(prompt_bytes[idx]);
            plan.pending.push(run);
        }
    }
    Ok(plan)
}

/// The experiment as a sweep sees it: with the request's parameter space, checked.
async fn sweep_experiment(
    core: &Core,
    experiment_id: Uuid,
    space: Option<&ParameterSpace>,
) -> Result<Experiment> {
    let mut e = experiments::get(&core.db, experiment_id)
        .await?
        .ok_or(Error::NotFound("experiment"))?;
    if let Some(space) = space {
        e.parameter_space = space.clone();
        check_experiment(core, &e).await?;
    }
    Ok(e)
}

/// A random sweep without a seed gets one now, so the sweep records how to reproduce it.
fn with_seed(mut req: SweepRequest) -> SweepRequest {
    if let Strategy::Random {
        seed: seed @ None, ..
    } = &mut req.strategy
    {
        *seed = Some(rand::random::<u32>() as u64);
    }
    req
}

/// `POST /api/v1/experiments/{id}/sweep/preview`: what a sweep would run and cost; nothing is
/// written.
pub async fn preview(
    core: &Core,
    _actor: &Actor,
    experiment_id: Uuid,
    req: SweepRequest,
) -> Result<SweepPreview> {
    let req = with_seed(req);
    let e = sweep_experiment(core, experiment_id, req.parameter_space.as_ref()).await?;
    let ctx = Context::new(core, e).await?;
    let plan = plan(&ctx, &req, Uuid::nil(), &HashSet::new()).await?;
    let averages = run_store::average_output_tokens(&core.db).await?;
    let mut p = SweepPreview {
        strategy: req.strategy.name().into(),
        seed: match req.strategy {
            Strategy::Random { seed, .. } => seed,
            Strategy::Grid => None,
        },
        configurations: plan.configurations as i64,
        runs: (plan.pending.len() + plan.cached.len()) as i64,
        cached_runs: plan.cached.len() as i64,
        cached_calls: plan.cache_hits,
        estimated_cost: Some(0.0),
        ..SweepPreview::default()
    };
    let mut unpriced = std::collections::BTreeSet::new();
    for (r, _) in &plan.cached {
        p.calls += r.config.stages.len() as i64;
    }
    for (i, run) in plan.pending.iter().enumerate() {
        let stages = run.config.stages.len();
        p.calls += stages as i64;
        let from = plan.pending_cached_stages[i];
        let mut previous_out = 0i64;
        for (k, stage) in run.config.stages.iter().enumerate().skip(from) {
            p.calls_to_make += 1;
            let prompt = if k == from {
                plan.prompt_bytes[i].unwrap_or(stage.system.len() + stage.user.len())
            } else {
                stage.system.len() + stage.user.len()
            };
            let tokens_in = (prompt as i64 / 4).max(1) + previous_out;
            let tokens_out = averages
                .get(&stage.model)
                .copied()
                .or(stage.params.max_tokens.map(|m| (m as i64).min(512)))
                .unwrap_or(256);
            previous_out = tokens_out;
            p.estimated_tokens_in += tokens_in;
            p.estimated_tokens_out += tokens_out;
            match ctx.prices.cost(&stage.model, tokens_in, tokens_out) {
                Some(c) => p.estimated_cost = p.estimated_cost.map(|t| t + c),
                None => {
                    unpriced.insert(stage.model.clone());
                }
            }
        }
    }
    if !unpriced.is_empty() {
        p.estimated_cost = None;
    }
    p.estimated_cost = p.estimated_cost.map(|c| (c * 1e6).round() / 1e6);
    p.unpriced_models = unpriced.into_iter().collect();
    Ok(p)
}

/// `POST /api/v1/experiments/{id}/sweep`: plans the sweep, persists every run, and starts
/// the lanes. Returns the sweep as planned.
pub async fn start(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    req: SweepRequest,
) -> Result<Sweep> {
    actor.require_write()?;
    let req = with_seed(req);
    let e = sweep_experiment(core, experiment_id, req.parameter_space.as_ref()).await?;
    if let Some(active) = store::active(&core.db, experiment_id).await? {
        return Err(Error::conflict(
            "experiment",
            format!(
                "sweep {} is {} on this experiment; stop it first",
                active.id, active.status
            ),
        ));
    }
    let space = e.parameter_space.clone();
    let ctx = Context::new(core, e).await?;
    let id = Uuid::new_v4();
    let plan = plan(&ctx, &req, id, &HashSet::new()).await?;
    let now = Utc::now();
    let budget = req.budget.clone().unwrap_or_default();
    let max_tokens = max_tokens(core, &budget);
    let row = SweepRow {
        id,
        experiment_id,
        request: Json(req.clone()),
        space: Json(space),
        status: "running".into(),
        pause_reason: None,
        total: (plan.pending.len() + plan.cached.len()) as i64,
        done: plan.cached.len() as i64,
        completed: 0,
        cached: plan.cached.len() as i64,
        failed: 0,
        skipped: 0,
        tokens_in: 0,
        tokens_out: 0,
        cost: 0.0,
        calls: 0,
        cache_hits: plan.cache_hits,
        max_tokens,
        max_cost: budget.max_cost,
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    let configurations = plan.configurations;
    let pending = plan.pending.len();
    let (row, events) = store::create(
        &core.db,
        &row,
        actor.user_id(),
        &plan.pending,
        &plan.cached,
        |row| {
            let mut ev = vec![sweep_event(
                "experiment.started",
                row,
                json!({
                    "config": row.request.0,
                    "configurations": configurations,
                    "runs": row.total,
                    "cached_at_planning": row.cached,
                }),
            )];
            if row.status == "completed" {
                ev.push(sweep_event("experiment.completed", row, json!({})));
            }
            ev
        },
    )
    .await?;
    super::events::notify(&core.db, &core.node, &events).await;
    core.hub.publish(events);
    tracing::info!(sweep = %id, experiment = %experiment_id, runs = row.total, cached = row.cached, "sweep planned");
    if pending > 0 {
        super::jobs::enqueue_lanes(core, id, pending).await?;
    }
    Ok(row.to_sweep())
}

/// How many lanes a sweep with `pending` runs gets.
pub fn lanes_for(pending: usize) -> usize {
    pending.div_ceil(RUNS_PER_LANE).clamp(1, LANES_MAX)
}

/// A lane: claims the sweep's pending runs (as many as this process has free run slots),
/// executes them and records them, until none is left to claim or the sweep is no longer
/// running. Idempotent: a lane for a finished, paused or stopped sweep does nothing.
pub async fn drive(core: &Core, sweep_id: Uuid) -> Result<()> {
    let Some(sweep) = store::get(&core.db, sweep_id).await? else {
        return Ok(());
    };
    if sweep.status != "running" {
        return Ok(());
    }
    let Some(experiment) = experiments::get(&core.db, sweep.experiment_id).await? else {
        return Ok(());
    };
    let ctx = Arc::new(Context::new(core, experiment).await?);
    let _driving = core.driving.hold(sweep_id);
    let mut tasks = tokio::task::JoinSet::new();
    let mut claimed_total = 0;
    loop {
        if claimed_total >= LANE_QUANTUM {
            // Fair turns: other sweeps' lanes waiting in the queue get a slot now.
            super::jobs::push_lanes(core, sweep_id, 1).await?;
            break;
        }
        if core.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let claiming = core.claim_lock.lock().await;
        let Ok(first) = core.run_slots.clone().acquire_owned().await else {
            break;
        };
        let mut permits = vec![first];
        // Runs finish in groups (one commit releases many slots): let the rest of the group
        // release theirs, so one claim takes them all.
        tokio::task::yield_now().await;
        while permits.len() < CLAIM_MAX {
            match core.run_slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let lease_until = Utc::now() + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let claimed = run_store::claim(
            &core.db,
            sweep_id,
            &core.node,
            permits.len() as i64,
            lease_until,
        )
        .await?;
        drop(claiming);
        if claimed.is_empty() {
            break;
        }
        claimed_total += claimed.len();
        permits.truncate(claimed.len());
        let mut permits: Vec<Option<_>> = permits.into_iter().map(Some).collect();
        // (Never more than asked for; should it happen, the extra runs wait for a slot.)
        permits.resize_with(claimed.len(), || None);
        let started: Vec<NewEvent> = claimed
            .iter()
            .filter(|(_, attempts)| *attempts <= MAX_ATTEMPTS)
            .map(|(r, attempts)| NewEvent {
                event_type: "run.started",
                experiment_id: Some(r.experiment_id),
                sweep_id: r.sweep_id,
                run_id: Some(r.id),
                payload: json!({
                    "config_key": r.config_key,
                    "item_index": r.item_index,
                    "repeat_index": r.repeat_index,
                    "attempt": attempts,
                }),
            })
            .collect();
        core.recorder.events(started).await;
        let misses = first_call_misses(&ctx, &claimed).await?;
        for ((run, attempts), permit) in claimed.into_iter().zip(permits) {
            let first_call_missed = misses.get(&run.id).cloned();
            let ctx = ctx.clone();
            tasks.spawn(async move {
                let _permit = match permit {
                    Some(p) => Some(p),
                    None => ctx.core.run_slots.clone().acquire_owned().await.ok(),
                };
                let outcome = if attempts > MAX_ATTEMPTS {
                    Outcome::failed(
                        run,
                        format!("abandoned: interrupted {} times (the process executing it stopped each time)", attempts - 1),
                    )
                } else {
                    execute_known_or_fail(&ctx, run, first_call_missed).await
                };
                record(&ctx.core, outcome).await;
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Looks up the first calls of claimed runs in the cache in one query; returns, per run that
/// missed, its first call's key (so executing it skips one lookup per run).
async fn first_call_misses(ctx: &Context, claimed: &[(Run, i32)]) -> Result<HashMap<Uuid, String>> {
    let env = templates::environment();
    let mut keys = Vec::with_capacity(claimed.len());
    for (run, _) in claimed {
        let Some(stage) = run.config.stages.first() else {
            continue;
        };
        let Some((row, _)) = ctx.endpoint(stage.endpoint_id).await? else {
            continue;
        };
        if let Ok(call) = exec::prepare(ctx, &env, run, 0, &[], &row) {
            keys.push((run.id, call.key));
        }
    }
    let refs: Vec<&str> = keys.iter().map(|(_, k)| k.as_str()).collect();
    let hits = cache_store::get_many(&ctx.core.db, &refs).await?;
    Ok(keys
        .into_iter()
        .filter(|(_, k)| !hits.contains_key(k))
        .collect())
}

/// Executes a run; a database failure while executing ends it failed rather than unrecorded.
pub async fn execute_or_fail(ctx: &Context, run: Run) -> Outcome {
    execute_known_or_fail(ctx, run, None).await
}

/// [`execute_or_fail`] for a run whose first call is known to miss the cache (see
/// `exec::execute_known`).
async fn execute_known_or_fail(
    ctx: &Context,
    run: Run,
    first_call_missed: Option<String>,
) -> Outcome {
    let fallback = run.clone();
    match exec::execute_known(ctx, run, first_call_missed.as_deref()).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(run = %fallback.id, error = %e, "a run failed while executing");
            Outcome::failed(
                fallback,
                format!("internal error while executing the run: {e}"),
            )
        }
    }
}

/// Hands an outcome to the recorder under this process's lease. If it cannot be recorded the
/// run keeps its lease, which runs out, and the run is claimed again.
pub async fn record(core: &Core, outcome: Outcome) {
    let id = outcome.run.id;
    match core.recorder.record(outcome, Some(core.node.clone())).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(run = %id, "run was already recorded elsewhere (lease taken over)")
        }
        Err(e) => {
            tracing::error!(run = %id, error = %e, "could not record a run; it will be retried")
        }
    }
}

async fn active_or_conflict(core: &Core, experiment_id: Uuid) -> Result<SweepRow> {
    if experiments::get(&core.db, experiment_id).await?.is_none() {
        return Err(Error::NotFound("experiment"));
    }
    store::active(&core.db, experiment_id)
        .await?
        .ok_or_else(|| {
            Error::conflict(
                "experiment",
                "no sweep is running or paused on this experiment",
            )
        })
}

/// `POST /api/v1/experiments/{id}/pause`: nothing new starts; calls in flight finish.
pub async fn pause(core: &Core, actor: &Actor, experiment_id: Uuid) -> Result<Sweep> {
    actor.require_write()?;
    let sweep = active_or_conflict(core, experiment_id).await?;
    let Some(row) = store::transition(
        &core.db,
        sweep.id,
        &["running"],
        "paused",
        Some("manual"),
        None,
    )
    .await?
    else {
        return Err(Error::conflict(
            "experiment",
            format!("the sweep is {}, not running", sweep.status),
        ));
    };
    emit_logged(
        core,
        vec![sweep_event(
            "experiment.paused",
            &row,
            json!({"reason": "manual"}),
        )],
    )
    .await;
    Ok(row.to_sweep())
}

/// `POST /api/v1/experiments/{id}/resume`, optionally raising the budget that paused it.
pub async fn resume(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    budget: Option<Budget>,
) -> Result<Sweep> {
    actor.require_write()?;
    let sweep = active_or_conflict(core, experiment_id).await?;
    if sweep.status != "paused" {
        return Err(Error::conflict(
            "experiment",
            format!("the sweep is {}, not paused", sweep.status),
        ));
    }
    let new_budget = match &budget {
        Some(b) => {
            check_budget(b)?;
            Some((max_tokens(core, b), b.max_cost))
        }
        None => None,
    };
    let mut check = sweep.clone();
    if let Some((t, c)) = new_budget {
        check.max_tokens = t;
        check.max_cost = c;
    }
    if check.budget_spent() {
        return Err(Error::conflict(
            "budget",
            format!(
                "the sweep's budget is spent ({} tokens, ${:.4}); resume with a larger budget",
                sweep.tokens_in + sweep.tokens_out,
                sweep.cost
            ),
        ));
    }
    let Some(row) =
        store::transition(&core.db, sweep.id, &["paused"], "running", None, new_budget).await?
    else {
        return Err(Error::conflict(
            "experiment",
            "the sweep changed meanwhile; try again",
        ));
    };
    emit_logged(
        core,
        vec![sweep_event("experiment.resumed", &row, json!({}))],
    )
    .await;
    let pending = (row.total - row.done).max(0) as usize;
    if pending > 0 {
        super::jobs::enqueue_lanes(core, row.id, pending).await?;
    }
    complete_if_done(core, row.id).await?;
    Ok(store::get(&core.db, row.id)
        .await?
        .map_or_else(|| row.to_sweep(), |r| r.to_sweep()))
}

/// `POST /api/v1/experiments/{id}/stop`: unstarted runs are dropped; calls in flight finish
/// and are recorded.
pub async fn stop(core: &Core, actor: &Actor, experiment_id: Uuid) -> Result<Sweep> {
    actor.require_write()?;
    let sweep = active_or_conflict(core, experiment_id).await?;
    let Some(_) = store::transition(
        &core.db,
        sweep.id,
        &["running", "paused"],
        "stopped",
        None,
        None,
    )
    .await?
    else {
        return Err(Error::conflict(
            "experiment",
            "the sweep changed meanwhile; try again",
        ));
    };
    let row = store::drop_pending(&core.db, sweep.id)
        .await?
        .ok_or(Error::NotFound("sweep"))?;
    emit_logged(
        core,
        vec![sweep_event(
            "experiment.stopped",
            &row,
            json!({"dropped": row.skipped}),
        )],
    )
    .await;
    Ok(row.to_sweep())
}

/// Completes a sweep whose every run has ended (after a redirect or resume changed the plan).
async fn complete_if_done(core: &Core, id: Uuid) -> Result<()> {
    let Some(row) = store::get(&core.db, id).await? else {
        return Ok(());
    };
    if row.done >= row.total
        && let Some(done) = store::transition(
            &core.db,
            id,
            &["running", "paused"],
            "completed",
            None,
            None,
        )
        .await?
    {
        emit_logged(
            core,
            vec![sweep_event("experiment.completed", &done, json!({}))],
        )
        .await;
    }
    Ok(())
}

/// `POST /api/v1/experiments/{id}/redirect`: replaces what remains of the running (or paused)
/// sweep with a new parameter space. Runs that started or ended are kept; unstarted ones are
/// re-planned (configurations already run are not run again).
pub async fn redirect(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    r: Redirect,
) -> Result<Sweep> {
    actor.require_write()?;
    let sweep = active_or_conflict(core, experiment_id).await?;
    let e = sweep_experiment(core, experiment_id, Some(&r.parameter_space)).await?;
    let mut req = sweep.request.0.clone();
    if let Some(s) = r.strategy {
        req.strategy = s;
    }
    req.parameter_space = Some(r.parameter_space.clone());
    let req = with_seed(req);
    let ctx = Context::new(core, e).await?;
    let keep: HashSet<String> = store::started_hashes(&core.db, sweep.id)
        .await?
        .into_iter()
        .collect();
    let plan = plan(&ctx, &req, sweep.id, &keep).await?;
    let (row, dropped) = store::replan(
        &core.db,
        sweep.id,
        &r.parameter_space,
        &req,
        &plan.pending,
        &plan.cached,
        plan.cache_hits,
    )
    .await?;
    emit_logged(core, vec![sweep_event(
        "experiment.redirected",
        &row,
        json!({"dropped": dropped, "added": plan.pending.len() + plan.cached.len(), "cached_at_planning": plan.cached.len()}),
    )]).await;
    if row.status == "running" && !plan.pending.is_empty() {
        super::jobs::enqueue_lanes(core, row.id, plan.pending.len()).await?;
    }
    complete_if_done(core, row.id).await?;
    Ok(store::get(&core.db, row.id)
        .await?
        .map_or_else(|| row.to_sweep(), |r| r.to_sweep()))
}

/// `POST /api/v1/experiments/{id}/fork`: a new experiment whose pipeline is a run's
/// configuration (with modifications), with the same items and scoring.
pub async fn fork(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    f: ForkRequest,
) -> Result<Experiment> {
    actor.require_write()?;
    let source = experiments::get(&core.db, experiment_id)
        .await?
        .ok_or(Error::NotFound("experiment"))?;
    let run = run_store::get(&core.db, f.run_id)
        .await?
        .filter(|r| r.experiment_id == experiment_id)
        .ok_or_else(|| Error::invalid("run_id", "no such run in this experiment"))?;
    let mut stages = source.pipeline_stages.clone();
    for (k, (stage, c)) in stages.iter_mut().zip(&run.config.stages).enumerate() {
        stage.endpoint_id = c.endpoint_id;
        stage.model = c.model.clone();
        stage.system = c.system.clone();
        stage.user = c.user.clone();
        stage.params = c.params.clone();
        let _ = k;
    }
    let name = match f.name {
        Some(n) => validate::name("name", &n)?,
        None => {
            let base: String = source.name.chars().take(80).collect();
            format!(
                "{base} (fork {})",
                &Uuid::new_v4().simple().to_string()[..6]
            )
        }
    };
    let now = Utc::now();
    let mut forked = Experiment {
        id: Uuid::new_v4(),
        project_id: source.project_id,
        name,
        description: format!("Forked from \"{}\", run {}.", source.name, run.id),
        sample_data: source.sample_data.clone(),
        pipeline_stages: stages,
        parameter_space: ParameterSpace::default(),
        scoring_config: source.scoring_config.clone(),
        status: "draft".into(),
        created_at: now,
        updated_at: now,
    };
    // Modifications apply on top of the run's configuration (variants from the source's space).
    if !f.stages.is_empty() {
        let with_space = Experiment {
            parameter_space: source.parameter_space.clone(),
            ..forked.clone()
        };
        let config = resolve_config(&with_space, &f.stages)?;
        for (stage, c) in forked.pipeline_stages.iter_mut().zip(config.stages) {
            stage.endpoint_id = c.endpoint_id;
            stage.model = c.model;
            stage.system = c.system;
            stage.user = c.user;
            stage.params = c.params;
        }
    }
    if let Some(space) = f.parameter_space {
        forked.parameter_space = space;
    }
    check_experiment(core, &forked).await?;
    experiments::insert(&core.db, &forked).await?;
    emit_logged(core, vec![NewEvent {
        event_type: "experiment.forked",
        experiment_id: Some(experiment_id),
        sweep_id: None,
        run_id: Some(run.id),
        payload: json!({"fork_id": forked.id, "fork_name": forked.name, "config_key": run.config_key}),
    }]).await;
    Ok(forked)
}

/// `POST /api/v1/runs/{id}/approve` or `/reject`: marks the run's configuration.
pub async fn mark(
    core: &Core,
    actor: &Actor,
    run_id: Uuid,
    mark: &str,
    m: MarkRequest,
) -> Result<ConfigMark> {
    actor.require_write()?;
    let run = run_store::get(&core.db, run_id)
        .await?
        .ok_or(Error::NotFound("run"))?;
    let note = m.note.unwrap_or_default();
    validate::text("note", &note, 2000)?;
    let cm = ConfigMark {
        experiment_id: run.experiment_id,
        config_key: run.config_key.clone(),
        mark: mark.to_owned(),
        note,
        marked_by: actor.user_id(),
        marked_at: Utc::now(),
        config: Some(run.config.clone()),
    };
    store::set_mark(&core.db, &cm).await?;
    emit_logged(
        core,
        vec![NewEvent {
            event_type: if mark == "approved" {
                "configuration.approved"
            } else {
                "configuration.rejected"
            },
            experiment_id: Some(run.experiment_id),
            sweep_id: run.sweep_id,
            run_id: Some(run.id),
            payload: json!({"config_key": run.config_key, "note": cm.note}),
        }],
    )
    .await;
    Ok(cm)
}

/// `DELETE /api/v1/runs/{id}/mark`: clears the mark on the run's configuration.
pub async fn clear_mark(core: &Core, actor: &Actor, run_id: Uuid) -> Result<()> {
    actor.require_write()?;
    let run = run_store::get(&core.db, run_id)
        .await?
        .ok_or(Error::NotFound("run"))?;
    if store::clear_mark(&core.db, run.experiment_id, &run.config_key).await? {
        Ok(())
    } else {
        Err(Error::NotFound("mark"))
    }
}

pub async fn list_marks(
    core: &Core,
    _actor: &Actor,
    experiment_id: Uuid,
) -> Result<Vec<ConfigMark>> {
    if experiments::get(&core.db, experiment_id).await?.is_none() {
        return Err(Error::NotFound("experiment"));
    }
    store::marks(&core.db, experiment_id).await
}

pub async fn get_sweep(core: &Core, _actor: &Actor, id: Uuid) -> Result<Sweep> {
    Ok(store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("sweep"))?
        .to_sweep())
}

/// The experiment's current sweep: the active one, else the newest.
pub async fn current_sweep(core: &Core, _actor: &Actor, experiment_id: Uuid) -> Result<Sweep> {
    if experiments::get(&core.db, experiment_id).await?.is_none() {
        return Err(Error::NotFound("experiment"));
    }
    match store::active(&core.db, experiment_id).await? {
        Some(s) => Ok(s.to_sweep()),
        None => Ok(store::latest(&core.db, experiment_id)
            .await?
            .ok_or(Error::NotFound("sweep"))?
            .to_sweep()),
    }
}

pub async fn list_sweeps(
    core: &Core,
    _actor: &Actor,
    experiment_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Sweep>, i64)> {
    if experiments::get(&core.db, experiment_id).await?.is_none() {
        return Err(Error::NotFound("experiment"));
    }
    validate::page(limit, offset, 1000)?;
    let (rows, total) = store::list(&core.db, experiment_id, limit, offset).await?;
    Ok((rows.iter().map(SweepRow::to_sweep).collect(), total))
}
