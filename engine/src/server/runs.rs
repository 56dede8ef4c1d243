//! Running one configuration of an experiment over its sample items: stage by stage, rendering
//! templates, answering from the response cache when the identical call was made before,
//! calling the provider (with retries) otherwise, and recording every stage result.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use super::auth::Actor;
use super::cache::{self, CallKey};
use super::core::Core;
use super::endpoints::Ready;
use super::error::{Error, Result};
use super::experiments::{check_params, set_param};
use super::pricing::PriceBook;
use super::providers::retry::RetryPolicy;
use super::providers::{ChatRequest, Message, Role};
use super::store::cache::CachedResponse;
use super::store::endpoints::EndpointRow;
use super::store::runs::{self as store, NewStageResult, RunSort};
use super::store::{cache as cache_store, endpoints, experiments};
use super::templates::{self, ItemInfo, RenderContext, StageOutput};
use crate::types::{
    Experiment, NewRun, Run, RunBatch, RunConfig, RunDetail, StageChoice, StageConfig,
};
use crate::validate;

pub const MAX_REPEATS: u32 = 100;
/// The most runs one ad-hoc request may create (larger plans are sweeps).
pub const MAX_BATCH: usize = 10_000;
pub const PAGE_MAX: i64 = 1000;

/// Resolves per-stage choices (prompt variant, model, parameters) against the experiment into
/// the exact configuration to run. Errors name `stages[k].<field>`.
pub fn resolve_config(e: &Experiment, choices: &[StageChoice]) -> Result<RunConfig> {
    if choices.len() > e.pipeline_stages.len() {
        return Err(Error::invalid(
            "stages",
            format!("the pipeline has {} stage(s)", e.pipeline_stages.len()),
        ));
    }
    let mut stages = Vec::with_capacity(e.pipeline_stages.len());
    for (k, stage) in e.pipeline_stages.iter().enumerate() {
        let choice = choices.get(k).cloned().unwrap_or_default();
        let (mut system, mut user) = (stage.system.clone(), stage.user.clone());
        if let Some(name) = &choice.variant {
            let variants = e
                .parameter_space
                .stages
                .get(k)
                .map(|s| s.prompts.as_slice())
                .unwrap_or_default();
            let Some(v) = variants.iter().find(|v| &v.name == name) else {
                let known: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
                return Err(Error::invalid(
                    format!("stages[{k}].variant"),
                    format!(
                        "no prompt variant named {name:?} (this stage has: {})",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            };
            if let Some(s) = &v.system {
                system = s.clone();
            }
            if let Some(u) = &v.user {
                user = u.clone();
            }
        }
        let mut params = stage.params.clone();
        for (name, value) in choice.params.iter().flatten() {
            set_param(&mut params, name, value, &format!("stages[{k}].params"))?;
        }
        check_params(&params, &format!("stages[{k}].params"))?;
        stages.push(StageConfig {
            endpoint_id: choice.endpoint_id.unwrap_or(stage.endpoint_id),
            model: choice.model.unwrap_or_else(|| stage.model.clone()),
            variant: choice.variant,
            system,
            user,
            params,
        });
    }
    Ok(RunConfig { stages })
}

/// `config_key`: the identity of a configuration, shared by all its runs.
pub fn config_key(config: &RunConfig) -> String {
    cache::sha256_hex(&cache::canonical_json(
        &serde_json::to_value(config).unwrap_or_default(),
    ))
}

/// `config_hash`: the identity of one run (configuration, item input, repeat).
pub fn config_hash(config_key: &str, input: &Value, repeat: u32) -> String {
    cache::sha256_hex(&cache::canonical_json(
        &json!({"config": config_key, "input": input, "repeat": repeat}),
    ))
}

/// Everything the runs of one batch share.
struct Batch {
    core: Core,
    experiment: Arc<Experiment>,
    endpoints: HashMap<Uuid, (EndpointRow, Ready)>,
    prices: PriceBook,
    policy: RetryPolicy,
    /// Cache hits and misses of the batch's calls, counted in memory.
    hits: AtomicI64,
    misses: AtomicI64,
}

/// `POST /api/v1/runs`: executes one configuration over the chosen items (× repeats) and
/// returns when every run has ended. The work continues even if the caller goes away.
pub async fn run_configuration(core: &Core, actor: &Actor, new: NewRun) -> Result<RunBatch> {
    actor.require_write()?;
    let experiment = experiments::get(&core.db, new.experiment_id)
        .await?
        .ok_or_else(|| Error::invalid("experiment_id", "no such experiment"))?;
    let config = resolve_config(&experiment, &new.stages)?;
    let repeats = new.repeats.unwrap_or(1);
    if !(1..=MAX_REPEATS).contains(&repeats) {
        return Err(Error::invalid(
            "repeats",
            format!("must be between 1 and {MAX_REPEATS}"),
        ));
    }
    if experiment.sample_data.is_empty() {
        return Err(Error::invalid(
            "experiment_id",
            "the experiment has no sample items; add or import some first",
        ));
    }
    let items: Vec<usize> = match new.items {
        Some(items) => {
            if items.is_empty() {
                return Err(Error::invalid("items", "must name at least one item"));
            }
            if let Some(bad) = items.iter().find(|i| **i >= experiment.sample_data.len()) {
                return Err(Error::invalid(
                    "items",
                    format!(
                        "item {bad} does not exist (the experiment has {})",
                        experiment.sample_data.len()
                    ),
                ));
            }
            items
        }
        None => (0..experiment.sample_data.len()).collect(),
    };
    if items.len() * repeats as usize > MAX_BATCH {
        return Err(Error::invalid(
            "repeats",
            format!(
                "{} items × {repeats} repeats is more than {MAX_BATCH} runs; run fewer at once",
                items.len()
            ),
        ));
    }
    let mut endpoint_map = HashMap::new();
    for (k, stage) in config.stages.iter().enumerate() {
        if endpoint_map.contains_key(&stage.endpoint_id) {
            continue;
        }
        let row = endpoints::get(&core.db, stage.endpoint_id)
            .await?
            .ok_or_else(|| {
                Error::invalid(format!("stages[{k}].endpoint_id"), "no such endpoint")
            })?;
        let ready = core.providers.get(core, &row)?;
        endpoint_map.insert(row.id, (row, ready));
    }

    let key = config_key(&config);
    let now = Utc::now();
    let mut runs = Vec::with_capacity(items.len() * repeats as usize);
    for &i in &items {
        let input = serde_json::to_value(&experiment.sample_data[i].input).unwrap_or_default();
        for r in 0..repeats {
            runs.push(Run {
                id: Uuid::new_v4(),
                experiment_id: experiment.id,
                config_hash: config_hash(&key, &input, r),
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
    // Everything that can fail is loaded before the runs exist.
    let prices = PriceBook::load(core).await?;
    store::insert_pending(&core.db, &runs).await?;

    let batch = Arc::new(Batch {
        core: core.clone(),
        experiment: Arc::new(experiment),
        endpoints: endpoint_map,
        prices,
        policy: RetryPolicy::default(),
        hits: AtomicI64::new(0),
        misses: AtomicI64::new(0),
    });
    // Detached: a client that disconnects does not abandon half-finished runs.
    let work = tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for run in runs {
            let batch = batch.clone();
            tasks.spawn(async move {
                let _slot = batch.core.run_slots.clone().acquire_owned().await;
                execute_or_fail(&batch, run).await
            });
        }
        let mut done = Vec::new();
        while let Some(result) = tasks.join_next().await {
            match result {
                Ok(Ok(run)) => done.push(run),
                Ok(Err(e)) => tracing::error!(error = %e, "a run could not be recorded"),
                Err(e) => tracing::error!(error = %e, "a run task panicked"),
            }
        }
        // The hit/miss counters are written once per batch, not once per run.
        let (hits, misses) = (
            batch.hits.load(Ordering::Relaxed),
            batch.misses.load(Ordering::Relaxed),
        );
        if let Err(e) = cache_store::count(&batch.core.db, hits, misses).await {
            tracing::warn!(error = %e, "could not update the cache counters");
        }
        done
    });
    let mut done = work.await.map_err(|e| Error::Internal(e.to_string()))?;
    done.sort_by_key(|r| (r.item_index, r.repeat_index));
    Ok(summarise(key, done))
}

fn summarise(config_key: String, runs: Vec<Run>) -> RunBatch {
    let count = |s: &str| runs.iter().filter(|r| r.status == s).count();
    let cost = runs
        .iter()
        .filter(|r| r.status != "failed")
        .map(|r| r.cost_estimate)
        .sum::<Option<f64>>();
    RunBatch {
        config_key,
        completed: count("completed"),
        cached: count("cached"),
        failed: count("failed"),
        tokens_in: runs.iter().map(|r| r.tokens_in).sum(),
        tokens_out: runs.iter().map(|r| r.tokens_out).sum(),
        cost_estimate: cost,
        runs,
    }
}

/// Executes a run; if recording it fails midway (the database went away), it is marked failed
/// rather than left running.
async fn execute_or_fail(batch: &Batch, run: Run) -> Result<Run> {
    let fallback = run.clone();
    match execute(batch, run).await {
        Ok(run) => Ok(run),
        Err(e) => {
            tracing::error!(run = %fallback.id, error = %e, "a run could not be recorded");
            let failed = Run {
                status: "failed".into(),
                error: Some(format!("internal error while recording the run: {e}")),
                completed_at: Some(Utc::now()),
                ..fallback
            };
            store::finish(&batch.core.db, &failed).await?;
            Ok(failed)
        }
    }
}

/// Executes one run to its end; the returned run is what was recorded.
async fn execute(batch: &Batch, mut run: Run) -> Result<Run> {
    let core = &batch.core;
    let started = Instant::now();
    run.started_at = Some(Utc::now());
    store::mark_running(&core.db, run.id, run.started_at.unwrap_or_else(Utc::now)).await?;
    let item = &batch.experiment.sample_data[run.item_index as usize];
    let input_value = serde_json::to_value(&item.input).unwrap_or_default();
    let env = templates::environment();
    let mut outputs: Vec<StageOutput> = Vec::new();
    let (mut hits, mut misses) = (0i64, 0i64);
    let mut cost = Some(0.0);
    let mut failure = None;

    for (k, stage) in run.config.stages.iter().enumerate() {
        let stage_name = batch
            .experiment
            .pipeline_stages
            .get(k)
            .map_or("?", |s| s.name.as_str());
        let ctx = RenderContext {
            input: &item.input,
            stages: &outputs,
            item: ItemInfo {
                index: run.item_index as usize,
                id: item.id.as_deref(),
            },
        };
        let rendered = templates::render(&env, &stage.system, &ctx).and_then(|system| {
            templates::render(&env, &stage.user, &ctx).map(|user| (system, user))
        });
        let (system, user) = match rendered {
            Ok(pair) => pair,
            Err(e) => {
                failure = Some(format!("stage {k} ({stage_name}): template error: {e}"));
                break;
            }
        };
        let mut messages = Vec::with_capacity(2);
        if !system.trim().is_empty() {
            messages.push(Message {
                role: Role::System,
                content: system,
            });
        }
        messages.push(Message {
            role: Role::User,
            content: user,
        });
        let Some((row, ready)) = batch.endpoints.get(&stage.endpoint_id) else {
            failure = Some(format!(
                "stage {k} ({stage_name}): the endpoint no longer exists"
            ));
            break;
        };
        let key = cache::call_key(&CallKey {
            kind: row.kind,
            base_url: &row.base_url,
            model: &stage.model,
            messages: &messages,
            params: &stage.params,
            input: &input_value,
            stage_index: k,
            repeat_index: run.repeat_index as u32,
        });
        // Single flight: a concurrent identical call waits here and then reads the cache.
        let _in_flight = core.in_flight.lock(&key).await;
        let (answer, cached) = match cache_store::get(&core.db, &key).await? {
            Some(hit) => {
                hits += 1;
                (hit, true)
            }
            None => {
                misses += 1;
                let request = ChatRequest {
                    model: stage.model.clone(),
                    messages: messages.clone(),
                    params: stage.params.clone(),
                };
                let _endpoint_slot = match &ready.slots {
                    Some(slots) => Some(
                        slots
                            .clone()
                            .acquire_owned()
                            .await
                            .map_err(|e| Error::Internal(e.to_string()))?,
                    ),
                    None => None,
                };
                let call_started = Instant::now();
                let (result, _attempts) = batch.policy.run(|| ready.provider.chat(&request)).await;
                match result {
                    Ok(response) => {
                        let answer = CachedResponse {
                            response: response.content,
                            model: stage.model.clone(),
                            tokens_in: response.tokens_in,
                            tokens_out: response.tokens_out,
                            latency_ms: call_started.elapsed().as_millis() as i64,
                            finish_reason: response.finish_reason,
                            usage_estimated: response.usage_estimated,
                        };
                        // Errors are never cached; successes are, for every later identical call.
                        // A failed cache write costs a future call, not this paid-for answer.
                        if let Err(e) = cache_store::put(&core.db, &key, &answer).await {
                            tracing::warn!(error = %e, "could not store a response in the cache");
                        }
                        (answer, false)
                    }
                    Err(e) => {
                        failure = Some(format!("stage {k} ({stage_name}): {}", e.message));
                        break;
                    }
                }
            }
        };
        let stage_cost = batch
            .prices
            .cost(&stage.model, answer.tokens_in, answer.tokens_out);
        cost = cost.zip(stage_cost).map(|(a, b)| a + b);
        run.tokens_in += answer.tokens_in;
        run.tokens_out += answer.tokens_out;
        let prompt_sent = serde_json::to_string(&messages).unwrap_or_default();
        store::insert_stage_result(
            &core.db,
            &NewStageResult {
                run_id: run.id,
                stage_index: k as i32,
                prompt_sent: &prompt_sent,
                response_raw: &answer.response,
                model_used: &answer.model,
                parameters: &serde_json::to_value(&stage.params).unwrap_or_default(),
                tokens_in: answer.tokens_in,
                tokens_out: answer.tokens_out,
                latency_ms: answer.latency_ms,
                cached,
                finish_reason: answer.finish_reason.as_deref(),
                usage_estimated: answer.usage_estimated,
                cost_estimate: stage_cost,
                cache_key: &key,
            },
        )
        .await?;
        outputs.push(StageOutput {
            name: stage_name.to_owned(),
            output: answer.response,
        });
    }

    run.completed_at = Some(Utc::now());
    run.duration_ms = Some(started.elapsed().as_millis() as i64);
    run.cost_estimate = cost;
    match failure {
        Some(error) => {
            tracing::warn!(run = %run.id, %error, "run failed");
            run.status = "failed".into();
            run.error = Some(error);
        }
        None => {
            run.status = if misses == 0 {
                "cached".into()
            } else {
                "completed".into()
            }
        }
    }
    store::finish(&core.db, &run).await?;
    batch.hits.fetch_add(hits, Ordering::Relaxed);
    batch.misses.fetch_add(misses, Ordering::Relaxed);
    Ok(run)
}

pub async fn get_run(core: &Core, _actor: &Actor, id: Uuid) -> Result<RunDetail> {
    let run = store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("run"))?;
    let stages = store::stage_results(&core.db, id).await?;
    Ok(RunDetail { run, stages })
}

/// A page of an experiment's runs, and the total matching.
pub async fn list_runs(
    core: &Core,
    _actor: &Actor,
    experiment_id: Uuid,
    status: Option<&str>,
    sort: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Run>, i64)> {
    if experiments::get(&core.db, experiment_id).await?.is_none() {
        return Err(Error::NotFound("experiment"));
    }
    if let Some(s) = status
        && !["pending", "running", "completed", "failed", "cached"].contains(&s)
    {
        return Err(Error::invalid(
            "status",
            "must be pending, running, completed, failed or cached",
        ));
    }
    let sort = match sort {
        "-created_at" | "" => RunSort::CreatedDesc,
        "created_at" => RunSort::CreatedAsc,
        "-duration_ms" => RunSort::DurationDesc,
        "duration_ms" => RunSort::DurationAsc,
        "-tokens" => RunSort::TokensDesc,
        "-cost" => RunSort::CostDesc,
        _ => {
            return Err(Error::invalid(
                "sort",
                "must be one of created_at, -created_at, duration_ms, -duration_ms, -tokens, -cost",
            ));
        }
    };
    validate::page(limit, offset, PAGE_MAX)?;
    store::list(&core.db, experiment_id, status, sort, limit, offset).await
}

/// An experiment's newest runs with the final stage's output of each (two queries in all).
pub async fn recent_runs(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    limit: i64,
) -> Result<Vec<(Run, Option<String>)>> {
    let (runs, _) = list_runs(core, actor, experiment_id, None, "-created_at", limit, 0).await?;
    let mut outputs = store::final_outputs(&core.db, experiment_id, limit).await?;
    Ok(runs
        .into_iter()
        .map(|r| {
            let out = outputs.remove(&r.id);
            (r, out)
        })
        .collect())
}

/// Forgets the cached responses a run used, so the next identical call goes to the provider.
pub async fn invalidate_run_cache(core: &Core, actor: &Actor, run_id: Uuid) -> Result<u64> {
    actor.require_write()?;
    store::get(&core.db, run_id)
        .await?
        .ok_or(Error::NotFound("run"))?;
    cache_store::delete_for_run(&core.db, run_id).await
}

pub async fn invalidate_experiment_cache(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
) -> Result<u64> {
    actor.require_write()?;
    experiments::get(&core.db, experiment_id)
        .await?
        .ok_or(Error::NotFound("experiment"))?;
    cache_store::delete_for_experiment(&core.db, experiment_id).await
}

pub async fn invalidate_all_cache(core: &Core, actor: &Actor) -> Result<u64> {
    actor.require_admin()?;
    cache_store::delete_all(&core.db).await
}

/// At start: runs a previous process left pending or running are marked failed, so nothing
/// stays stuck. (Completed runs are never touched.)
pub async fn recover_interrupted(core: &Core) -> Result<u64> {
    let n = store::fail_interrupted(
        &core.db,
        "interrupted: the server stopped before this run finished",
    )
    .await?;
    if n > 0 {
        tracing::warn!(
            runs = n,
            "marked runs interrupted by the last shutdown as failed"
        );
    }
    Ok(n)
}
