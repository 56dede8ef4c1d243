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
use super::store::runs::{self as store, RunSort};
use super::store::{cache as cache_store, endpoints, experiments, scores as score_store};
use crate::types::{
    Experiment, NewRun, Run, RunBatch, RunConfig, RunDetail, RunSummary, RunSummaryPage, ScoredRun,
    StageChoice, StageConfig,
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
        id: Uuid::new_v4(),
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
        ratings: score_store::ratings_for_run(&core.db, id).await?,
    })
}

/// The experiment's scorers now: name → (fingerprint, weight).
async fn current_scorers(
    core: &Core,
    experiment_id: Uuid,
) -> Result<std::collections::HashMap<String, (String, f64)>> {
    let Some(e) = experiments::get(&core.db, experiment_id).await? else {
        return Ok(Default::default());
    };
    let (configs, _) = scoring::parse_lenient(&e.scoring_config);
    Ok(configs
        .into_iter()
        .map(|c| (c.name, (scoring::fingerprint(&c.spec), c.weight)))
        .collect())
}

/// Runs with their current scores (one query for all of them).
pub async fn with_scores(
    core: &Core,
    experiment_id: Uuid,
    runs: Vec<Run>,
) -> Result<Vec<ScoredRun>> {
    let current = current_scorers(core, experiment_id).await?;
    let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
    let mut briefs = score_store::brief_for_runs(&core.db, &ids).await?;
    Ok(runs
        .into_iter()
        .map(|run| {
            let scores: std::collections::BTreeMap<String, f64> = briefs
                .remove(&run.id)
                .unwrap_or_default()
                .into_iter()
                .filter(|(n, fp, _, _)| current.get(n).is_some_and(|(f, _)| f == fp))
                .filter_map(|(n, _, v, _)| v.map(|v| (n, v)))
                .collect();
            let weighted_score = scoring::weighted(
                scores
                    .iter()
                    .map(|(n, v)| (current.get(n).map_or(0.0, |(_, w)| *w), *v)),
            );
            ScoredRun {
                run,
                scores,
                weighted_score,
            }
        })
        .collect())
}

/// Which of an experiment's runs a listing shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunFilter<'a> {
    /// pending, running, completed, failed or cached.
    pub status: Option<&'a str>,
    /// One configuration's runs.
    pub config_key: Option<&'a str>,
}

/// A page of an experiment's runs, and the total matching.
pub async fn list_runs(
    core: &Core,
    _actor: &Actor,
    experiment_id: Uuid,
    filter: RunFilter<'_>,
    sort: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Run>, i64)> {
    if experiments::get(&core.db, experiment_id).await?.is_none() {
        return Err(Error::NotFound("experiment"));
    }
    if let Some(s) = filter.status
        && !["pending", "running", "completed", "failed", "cached"].contains(&s)
    {
        return Err(Error::invalid(
            "status",
            "must be pending, running, completed, failed or cached",
        ));
    }
    if let Some(k) = filter.config_key
        && (k.len() != 64 || !k.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(Error::invalid(
            "config_key",
            "must be a configuration's key (64 hex digits)",
        ));
    }
    let sort = match sort {
        "-created_at" | "" => RunSort::CreatedDesc,
        "created_at" => RunSort::CreatedAsc,
        "-duration_ms" => RunSort::DurationDesc,
        "duration_ms" => RunSort::DurationAsc,
        "-tokens" => RunSort::TokensDesc,
        "-cost" => RunSort::CostDesc,
        "item" => RunSort::Item,
        _ => {
            return Err(Error::invalid(
                "sort",
                "must be one of created_at, -created_at, duration_ms, -duration_ms, -tokens, -cost, item",
            ));
        }
    };
    validate::page(limit, offset, PAGE_MAX)?;
    store::list(
        &core.db,
        experiment_id,
        filter.status,
        filter.config_key,
        sort,
        limit,
        offset,
    )
    .await
}

/// A page of runs as the dashboard lists them: each with its configuration's label, current
/// scores and final output.
pub async fn list_run_summaries(
    core: &Core,
    actor: &Actor,
    experiment_id: Uuid,
    filter: RunFilter<'_>,
    sort: &str,
    limit: i64,
    offset: i64,
) -> Result<RunSummaryPage> {
    let (runs, total) = list_runs(core, actor, experiment_id, filter, sort, limit, offset).await?;
    let Some(e) = experiments::get(&core.db, experiment_id).await? else {
        return Err(Error::NotFound("experiment"));
    };
    let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
    let mut outputs = store::outputs_of(&core.db, &ids).await?;
    let runs = with_scores(core, experiment_id, runs)
        .await?
        .into_iter()
        .map(|s| RunSummary {
            label: super::leaderboard::label(&s.run.config, &e),
            output: outputs.remove(&s.run.id),
            scores: s.scores,
            weighted_score: s.weighted_score,
            run: s.run,
        })
        .collect();
    Ok(RunSummaryPage { runs, total })
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

/// `GET /api/v1/runs/compare?a=…&b=…`: two runs of one experiment side by side.
pub async fn compare_runs(
    core: &Core,
    actor: &Actor,
    a: Uuid,
    b: Uuid,
) -> Result<crate::types::RunComparison> {
    use crate::types::{ConfigDelta, RunComparison, ScoreDelta};
    let first = get_run(core, actor, a).await.map_err(|e| match e {
        Error::NotFound(_) => Error::invalid("a", "no such run"),
        other => other,
    })?;
    let second = get_run(core, actor, b).await.map_err(|e| match e {
        Error::NotFound(_) => Error::invalid("b", "no such run"),
        other => other,
    })?;
    if first.run.experiment_id != second.run.experiment_id {
        return Err(Error::invalid(
            "b",
            "the two runs belong to different experiments",
        ));
    }
    let last = |d: &RunDetail| {
        d.stages
            .iter()
            .max_by_key(|s| s.stage_index)
            .map(|s| s.response_raw.clone())
            .unwrap_or_default()
    };
    let output = super::diff::words(&last(&first), &last(&second));
    let prompts = first
        .stages
        .iter()
        .filter_map(|s| {
            second
                .stages
                .iter()
                .find(|t| t.stage_index == s.stage_index)
                .map(|t| super::diff::words(&s.prompt_sent, &t.prompt_sent))
        })
        .collect();
    let mut names: Vec<&str> = first
        .scores
        .iter()
        .chain(&second.scores)
        .map(|s| s.scorer.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let value = |d: &RunDetail, name: &str| {
        d.scores
            .iter()
            .find(|s| s.scorer == name)
            .and_then(|s| s.value)
    };
    let scores = names
        .into_iter()
        .map(|name| {
            let (x, y) = (value(&first, name), value(&second, name));
            ScoreDelta {
                scorer: name.to_owned(),
                a: x,
                b: y,
                difference: x.zip(y).map(|(x, y)| ((y - x) * 1e9).round() / 1e9),
            }
        })
        .collect();
    let mut differences = Vec::new();
    let stages = first
        .run
        .config
        .stages
        .len()
        .max(second.run.config.stages.len());
    for k in 0..stages {
        let as_map = |d: &RunDetail| -> std::collections::BTreeMap<String, Value> {
            let Some(s) = d.run.config.stages.get(k) else {
                return Default::default();
            };
            let mut m = match serde_json::to_value(&s.params) {
                Ok(Value::Object(o)) => o.into_iter().collect(),
                _ => std::collections::BTreeMap::new(),
            };
            m.insert("model".into(), json!(s.model));
            m.insert("endpoint_id".into(), json!(s.endpoint_id));
            if let Some(v) = &s.variant {
                m.insert("variant".into(), json!(v));
            }
            m
        };
        let (x, y) = (as_map(&first), as_map(&second));
        let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            if x.get(key) != y.get(key) {
                differences.push(ConfigDelta {
                    stage: k,
                    name: key.clone(),
                    a: x.get(key).cloned(),
                    b: y.get(key).cloned(),
                });
            }
        }
    }
    Ok(RunComparison {
        a: first,
        b: second,
        output,
        prompts,
        scores,
        differences,
    })
}
