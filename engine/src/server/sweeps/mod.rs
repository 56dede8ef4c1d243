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
use super::exec::{self, Context, ContextItem, Outcome, StageRecord};
use super::planner;
use super::runs::{MAX_REPEATS, config_hash, config_key, new_run, resolve_config};
use super::store::events::NewEvent;
use super::store::sweeps::{self as store, CachedRun, PlanPage, SweepRow};
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

mod guided;
mod lane;
mod plan;
mod steer;

pub use guided::{PROPOSER_HEADER, advance, suggest};

pub use lane::{drive, execute_or_fail, lanes_for, record};
use plan::{Planner, feed, max_tokens, sweep_experiment, with_seed};
pub use steer::{clear_mark, fork, list_marks, mark, pause, redirect, resume, stop};

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
    if matches!(req.strategy, Strategy::Guided { .. }) {
        return guided::preview(&ctx, &req).await;
    }
    let none = HashSet::new();
    let mut planner = Planner::new(&ctx, &req, Uuid::nil(), &none).await?;
    let averages = run_store::average_output_tokens(&core.db).await?;
    let mut p = SweepPreview {
        strategy: req.strategy.name().into(),
        seed: match req.strategy {
            Strategy::Random { seed, .. } | Strategy::Guided { seed, .. } => seed,
            Strategy::Grid => None,
        },
        configurations: planner.configurations as i64,
        estimated_cost: Some(0.0),
        ..SweepPreview::default()
    };
    let mut unpriced = std::collections::BTreeSet::new();
    while let Some(plan) = planner.next().await? {
        tally(&ctx, &averages, &plan, &mut p, &mut unpriced);
    }
    if !unpriced.is_empty() {
        p.estimated_cost = None;
    }
    p.estimated_cost = p.estimated_cost.map(|c| (c * 1e6).round() / 1e6);
    p.unpriced_models = unpriced.into_iter().collect();
    Ok(p)
}

/// Adds a page of the plan to a preview.
fn tally(
    ctx: &Context,
    averages: &HashMap<String, i64>,
    plan: &plan::Plan,
    p: &mut SweepPreview,
    unpriced: &mut std::collections::BTreeSet<String>,
) {
    p.runs += (plan.pending.len() + plan.cached.len()) as i64;
    p.cached_runs += plan.cached.len() as i64;
    p.cached_calls += plan.cache_hits;
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
    if matches!(req.strategy, Strategy::Guided { .. }) {
        return guided::start(core, actor, ctx, req).await;
    }
    let id = Uuid::new_v4();
    let none = HashSet::new();
    // The whole request is checked before anything is stored.
    let planner = Planner::new(&ctx, &req, id, &none).await?;
    let configurations = planner.configurations;
    let budget = req.budget.clone().unwrap_or_default();
    let max_tokens = max_tokens(core, &budget);
    let row = SweepRow::new(id, experiment_id, req.clone(), space, max_tokens, None);
    let (pages_tx, pages) = tokio::sync::mpsc::channel(1);
    let (failure, created) = tokio::join!(
        feed(planner, pages_tx),
        store::create(&core.db, &row, actor.user_id(), pages, |row| {
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
        })
    );
    if let Some(e) = failure {
        return Err(e);
    }
    let Some((row, events, planned)) = created? else {
        return Err(Error::Internal("planning stopped before its end".into()));
    };
    crate::server::events::publish(core, events).await;
    tracing::info!(sweep = %id, experiment = %experiment_id, runs = row.total, cached = row.cached, "sweep planned");
    // Runs the cache answered at planning are scored in the background (no LLM calls but
    // cached judge and embedding ones).
    if planned.cached > 0 {
        if ctx.scoring.is_empty() {
            core.leader_watch.notice(experiment_id, Some(id), "sweep");
        } else {
            // The sweep is planned either way; its runs are scored by the next job.
            if let Err(err) = crate::server::scoring::jobs::start(
                core,
                &ctx.experiment,
                None,
                false,
                actor.user_id(),
            )
            .await
            {
                tracing::warn!(sweep = %id, error = %err, "could not start scoring the runs cached at planning");
            }
        }
    }
    if planned.pending > 0 {
        crate::server::jobs::enqueue_lanes(core, id, planned.pending as usize).await?;
    }
    Ok(row.to_sweep())
}

pub async fn get_sweep(core: &Core, _actor: &Actor, id: Uuid) -> Result<Sweep> {
    let f = store::get_flying(&core.db, id)
        .await?
        .ok_or(Error::NotFound("sweep"))?;
    Ok(f.to_sweep())
}

/// The experiment's current sweep: the active one, else the newest.
pub async fn current_sweep(core: &Core, _actor: &Actor, experiment_id: Uuid) -> Result<Sweep> {
    match store::current_flying(&core.db, experiment_id).await? {
        Some(f) => Ok(f.to_sweep()),
        // An experiment's sweeps go with it, so only now does it matter which is missing.
        None if experiments::get(&core.db, experiment_id).await?.is_none() => {
            Err(Error::NotFound("experiment"))
        }
        None => Err(Error::NotFound("sweep")),
    }
}

/// A sweep as reads of one sweep show it: with the runs it is executing now.
pub(super) async fn read_sweep(core: &Core, row: &SweepRow) -> Result<Sweep> {
    let mut sweep = row.to_sweep();
    if matches!(row.status.as_str(), "running" | "paused") {
        sweep.in_flight = store::in_flight(&core.db, row.id).await?;
    }
    Ok(sweep)
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
