//! Running one configuration of an experiment over its sample items: stage by stage, rendering
//! templates, answering from the response cache when the identical call was made before,
//! calling the provider (with retries) otherwise, and recording every stage result.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use super::auth::Actor;
use super::cache;
use super::core::Core;
use super::error::{Error, Result};
use super::exec::Context;
use super::experiments::{check_params, set_param};
use super::scoring;
use super::store::runs as store;
use super::store::{cache as cache_store, endpoints, experiments, scores as score_store};
use crate::types::{
    Experiment, NewRun, Run, RunBatch, RunConfig, RunDetail, StageChoice, StageConfig,
};

pub const MAX_REPEATS: u32 = 100;
/// The most runs one ad-hoc request may create (larger plans are sweeps).
pub const MAX_BATCH: usize = 10_000;
pub const PAGE_MAX: i64 = 1000;

mod compare;
mod list;
pub use compare::{compare_configs, compare_runs, config_deltas};
pub(crate) use list::current_scorers;
pub use list::{RunFilter, list_run_summaries, list_runs, with_scores};

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

/// A new pending run of configuration `key` over `item` (its `config_hash` left for the caller,
/// who has the item's input as JSON).
pub(crate) fn new_run(
    e: &crate::types::Experiment,
    sweep_id: Option<Uuid>,
    key: &str,
    config: &RunConfig,
    item: &crate::types::Item,
    repeat: u32,
    now: chrono::DateTime<Utc>,
) -> Run {
    Run {
        // Time-ordered: runs, their stage results and scores are written and walked in
        // planning order, so index pages keyed by run id fill in order instead of at random.
        id: Uuid::now_v7(),
        experiment_id: e.id,
        sweep_id,
        config_hash: String::new(),
        config_key: key.to_owned(),
        config: config.clone(),
        item_id: item.id.clone(),
        item_index: item.position as i32,
        item_version: e.items.version,
        repeat_index: repeat as i32,
        status: "pending".into(),
        error: None,
        started_at: None,
        completed_at: None,
        duration_ms: None,
        tokens_in: 0,
        tokens_out: 0,
        cost_estimate: None,
        created_at: now,
    }
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
    if experiment.items.count == 0 {
        return Err(Error::invalid(
            "experiment_id",
            "the experiment has no sample items; add or import some first",
        ));
    }
    let named = new
        .items
        .as_ref()
        .map_or(experiment.items.count as usize, Vec::len);
    if named * repeats as usize > MAX_BATCH {
        return Err(Error::invalid(
            "repeats",
            format!(
                "{named} items × {repeats} repeats is more than {MAX_BATCH} runs; run fewer at once"
            ),
        ));
    }
    // Everything that can fail is loaded before the runs exist.
    let ctx = Arc::new(Context::new(core, experiment).await?);
    let items = match new.items.as_deref() {
        Some(refs) => ctx.pick(refs, false).await?,
        None => {
            let e = &ctx.experiment.items;
            crate::server::store::datasets::all(&core.db, e.dataset_id, e.version)
                .await?
                .into_iter()
                .map(crate::server::exec::ContextItem::new)
                .collect()
        }
    };
    ctx.keep(&items);
    if items.len() * repeats as usize > MAX_BATCH {
        return Err(Error::invalid(
            "repeats",
            format!(
                "{} items × {repeats} repeats is more than {MAX_BATCH} runs; run fewer at once",
                items.len()
            ),
        ));
    }
    for (k, stage) in config.stages.iter().enumerate() {
        let row = endpoints::get(&core.db, stage.endpoint_id)
            .await?
            .ok_or_else(|| {
                Error::invalid(format!("stages[{k}].endpoint_id"), "no such endpoint")
            })?;
        core.providers.get(core, &row)?;
    }

    let key = config_key(&config);
    let now = Utc::now();
    let mut runs = Vec::with_capacity(items.len() * repeats as usize);
    for item in &items {
        for r in 0..repeats {
            let mut run = new_run(&ctx.experiment, None, &key, &config, &item.item, r, now);
            run.config_hash = config_hash(&key, &item.input, r);
            run.status = "running".into();
            run.started_at = Some(now);
            runs.push(run);
        }
    }
    let lease_until =
        now + chrono::Duration::from_std(crate::server::sweeps::LEASE).unwrap_or_default();
    store::insert_leased(&core.db, &runs, &core.node, lease_until).await?;

    // Detached: a client that disconnects does not abandon half-finished runs.
    let work = tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for run in runs {
            let ctx = ctx.clone();
            tasks.spawn(async move {
                let _slot = ctx.core.run_slots.clone().acquire_owned().await;
                let id = run.id;
                let outcome = crate::server::sweeps::execute_or_fail(&ctx, run).await;
                let ended = outcome.run.clone();
                match ctx
                    .core
                    .recorder
                    .record(outcome, Some(ctx.core.node.clone()))
                    .await
                {
                    Ok(_) => Ok(ended),
                    Err(e) => {
                        tracing::error!(run = %id, error = %e, "a run could not be recorded");
                        Err(e)
                    }
                }
            });
        }
        let mut done = Vec::new();
        while let Some(result) = tasks.join_next().await {
            match result {
                Ok(Ok(run)) => done.push(run),
                Ok(Err(_)) => {}
                Err(e) => tracing::error!(error = %e, "a run task panicked"),
            }
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

pub async fn get_run(core: &Core, _actor: &Actor, id: Uuid) -> Result<RunDetail> {
    let run = store::get(&core.db, id)
        .await?
        .ok_or(Error::NotFound("run"))?;
    let stages = store::stage_results(&core.db, id).await?;
    let current = current_scorers(core, run.experiment_id).await?;
    let scores: Vec<crate::types::Score> = score_store::for_run(&core.db, id)
        .await?
        .iter()
        .filter(|s| {
            current
                .get(&s.scorer_name)
                .is_some_and(|(fp, _)| *fp == s.fingerprint)
        })
        .map(|s| s.to_score())
        .collect();
    let weighted_score = scoring::weighted(scores.iter().filter_map(|s| {
        s.value
            .map(|v| (current.get(&s.scorer).map_or(0.0, |(_, w)| *w), v))
    }));
    Ok(RunDetail {
        run,
        stages,
        scores,
        weighted_score,
        ratings: named(core, score_store::ratings_for_run(&core.db, id).await?).await?,
    })
}

/// Ratings with their raters' usernames (raters that are users; API keys stay unnamed).
async fn named(
    core: &Core,
    mut ratings: Vec<crate::types::Rating>,
) -> Result<Vec<crate::types::Rating>> {
    let mut names = std::collections::HashMap::new();
    for r in &mut ratings {
        let Ok(id) = Uuid::parse_str(&r.rater) else {
            continue;
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(id) {
            let user = super::store::users::get(&core.db, id).await?;
            slot.insert(user.map(|u| u.username));
        }
        r.rater_name = names.get(&id).cloned().flatten();
    }
    Ok(ratings)
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
