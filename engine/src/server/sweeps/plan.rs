//! Planning a sweep: expanding its strategy into runs and resolving, before any call, which
//! runs the cache already answers.

use super::*;
use crate::types::RunConfig;

/// What planning produced.
pub(super) struct Plan {
    pub(super) pending: Vec<Run>,
    pub(super) cached: Vec<CachedRun>,
    /// Per pending run: how many of its leading stages the cache answers.
    pub(super) pending_cached_stages: Vec<usize>,
    pub(super) cache_hits: i64,
    /// Rendered size (bytes) of each pending run's first uncached stage prompt, if known.
    pub(super) prompt_bytes: Vec<Option<usize>>,
}

/// Checks a request's repeats, samples and budget; returns the repeats.
pub(super) fn check_request(req: &SweepRequest) -> Result<u32> {
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
    if let Some(b) = &req.budget {
        check_budget(b)?;
    }
    super::guided::check(req)?;
    Ok(repeats)
}

/// A sweep's token limit: its own budget's, capped by `MAX_TOKENS_PER_SWEEP`.
pub(super) fn max_tokens(core: &Core, b: &Budget) -> Option<i64> {
    match (b.max_tokens, core.max_tokens_per_sweep) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
}

pub(super) fn check_budget(b: &Budget) -> Result<()> {
    if b.max_tokens.is_some_and(|t| t <= 0) {
        return Err(Error::invalid("budget.max_tokens", "must be positive"));
    }
    if b.max_cost.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
        return Err(Error::invalid(
            "budget.max_cost",
            "must be a positive number",
        ));
    }
    if b.max_calls.is_some_and(|n| n <= 0) {
        return Err(Error::invalid("budget.max_calls", "must be positive"));
    }
    Ok(())
}

/// Runs planned per page (all configurations × a page of items × repeats).
const PAGE_RUNS: usize = 2000;

/// Where a plan's items come from: a list the request named, or the whole dataset version,
/// read page by page.
enum Items {
    Listed(std::vec::IntoIter<Arc<ContextItem>>),
    Paged { after: Option<i64>, done: bool },
}

/// Expands a sweep's strategy into runs, a page of items at a time (memory stays bounded
/// whatever the item count), resolving before any call which runs the cache answers.
pub(super) struct Planner<'c> {
    ctx: &'c Context,
    configs: Vec<(String, RunConfig)>,
    repeats: u32,
    items: Items,
    per_page: usize,
    sweep_id: Uuid,
    exclude: &'c HashSet<String>,
    pub(super) configurations: usize,
}

impl<'c> Planner<'c> {
    /// Checks the request whole (nothing is planned if it is refused).
    pub(super) async fn new(
        ctx: &'c Context,
        req: &SweepRequest,
        sweep_id: Uuid,
        exclude: &'c HashSet<String>,
    ) -> Result<Planner<'c>> {
        let e = &ctx.experiment;
        let repeats = check_request(req)?;
        if e.items.count == 0 {
            return Err(Error::invalid(
                "experiment",
                "the experiment has no sample items; add or import some first",
            ));
        }
        let (items, item_count) = match req.items.as_deref() {
            Some(refs) => {
                let listed = ctx.pick(refs, true).await?;
                let n = listed.len();
                (Items::Listed(listed.into_iter()), n)
            }
            None => (
                Items::Paged {
                    after: None,
                    done: false,
                },
                e.items.count as usize,
            ),
        };
        let configs = configurations(e, req)?;
        let total = configs.len() * item_count * repeats as usize;
        if total > MAX_SWEEP_RUNS {
            return Err(Error::invalid(
                "strategy",
                format!(
                    "{} configurations × {item_count} items × {repeats} repeats is {total} runs; at most {MAX_SWEEP_RUNS} per sweep",
                    configs.len(),
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
        let per_page = (PAGE_RUNS / (configs.len() * repeats as usize).max(1)).clamp(1, 1000);
        Ok(Planner {
            ctx,
            configurations: configs.len(),
            configs,
            repeats,
            items,
            per_page,
            sweep_id,
            exclude,
        })
    }

    /// The next page of the plan (`None`: all planned).
    pub(super) async fn next(&mut self) -> Result<Option<Plan>> {
        let page: Vec<Arc<ContextItem>> = match &mut self.items {
            Items::Listed(rest) => rest.by_ref().take(self.per_page).collect(),
            Items::Paged { done: true, .. } => Vec::new(),
            Items::Paged { after, done } => {
                let e = &self.ctx.experiment.items;
                let page = crate::server::store::datasets::after(
                    &self.ctx.core.db,
                    e.dataset_id,
                    e.version,
                    *after,
                    self.per_page as i64,
                )
                .await?;
                *after = page.last().map(|i| i.position);
                *done = page.len() < self.per_page;
                page.into_iter().map(ContextItem::new).collect()
            }
        };
        if page.is_empty() {
            return Ok(None);
        }
        let e = &self.ctx.experiment;
        let now = Utc::now();
        let mut runs = Vec::with_capacity(page.len() * self.configs.len());
        for (key, config) in &self.configs {
            for item in &page {
                for r in 0..self.repeats {
                    let hash = config_hash(key, &item.input, r);
                    if self.exclude.contains(&hash) {
                        continue;
                    }
                    let mut run = new_run(e, Some(self.sweep_id), key, config, &item.item, r, now);
                    run.config_hash = hash;
                    runs.push(run);
                }
            }
        }
        let items: HashMap<&str, &ContextItem> =
            page.iter().map(|i| (i.item.id.as_str(), &**i)).collect();
        resolve_cached(self.ctx, runs, &items).await.map(Some)
    }
}

/// The strategy's configurations, without duplicates (a random draw may repeat one).
fn configurations(e: &Experiment, req: &SweepRequest) -> Result<Vec<(String, RunConfig)>> {
    let choices = match &req.strategy {
        Strategy::Grid => planner::grid(e)?,
        // Draws extra so that `samples` distinct configurations remain after duplicates are
        // dropped (fewer only when the space has fewer).
        Strategy::Guided { .. } => {
            return Err(Error::invalid(
                "strategy",
                "a guided sweep plans round by round, not up front",
            ));
        }
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
    Ok(configs)
}

/// Walks the pipeline stage by stage over all runs at once: a run whose every stage is in the
/// cache is answered now; the others stay pending.
pub(super) async fn resolve_cached(
    ctx: &Context,
    runs: Vec<Run>,
    items: &HashMap<&str, &ContextItem>,
) -> Result<Plan> {
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
    type Rendered = std::result::Result<Arc<Vec<crate::server::providers::Message>>, String>;
    let mut first_render: HashMap<(&str, i32), Rendered> = HashMap::new();
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
            let Some(item) = items.get(run.item_id.as_str()).copied() else {
                alive[idx] = false;
                continue;
            };
            let messages = if k == 0 {
                first_render
                    .entry((run.config_key.as_str(), run.item_index))
                    .or_insert_with(|| exec::render(ctx, &env, run, item, 0, &[]).map(Arc::new))
                    .clone()
            } else {
                exec::render(ctx, &env, run, item, k, &outputs[idx]).map(Arc::new)
            };
            let Ok(messages) = messages else {
                // A template error: the run will fail when it executes, with the message.
                alive[idx] = false;
                continue;
            };
            let input = &item.input;
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
pub(super) async fn sweep_experiment(
    core: &Core,
    experiment_id: Uuid,
    space: Option<&ParameterSpace>,
) -> Result<Experiment> {
    let mut e = experiments::get(&core.db, experiment_id)
        .await?
        .ok_or(Error::NotFound("experiment"))?;
    if let Some(space) = space {
        e.parameter_space = space.clone();
        crate::server::experiments::check_pipeline(core, &e).await?;
    }
    Ok(e)
}

/// A random or guided sweep without a seed gets one now, so the sweep records how to
/// reproduce it.
pub(super) fn with_seed(mut req: SweepRequest) -> SweepRequest {
    if let Strategy::Random {
        seed: seed @ None, ..
    } = &mut req.strategy
    {
        *seed = Some(rand::random::<u32>() as u64);
    }
    super::guided::with_seed(&mut req);
    req
}

/// Hands a plan's pages to the transaction storing them (`tx`) as they are made; returns why
/// planning failed, if it did (the transaction then stores nothing).
pub(super) async fn feed(
    mut planner: Planner<'_>,
    tx: tokio::sync::mpsc::Sender<PlanPage>,
) -> Option<Error> {
    loop {
        match planner.next().await {
            Ok(Some(plan)) => {
                let page = PlanPage::Runs {
                    pending: plan.pending,
                    cached: plan.cached,
                    cache_hits: plan.cache_hits,
                };
                if tx.send(page).await.is_err() {
                    // The transaction ended (its error is the caller's).
                    return None;
                }
            }
            Ok(None) => {
                let _ = tx.send(PlanPage::Done).await;
                return None;
            }
            Err(e) => {
                let _ = tx.send(PlanPage::Failed).await;
                return Some(e);
            }
        }
    }
}
