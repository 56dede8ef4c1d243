//! What a round's work costs before it runs: the runs a configuration needs over a range of
//! the item order, and how many LLM calls of those the cache does not already answer (cached
//! calls are free, so the budget counts only the rest). Also finds configurations whose first
//! rung the cache answers whole: free observations a search starts from.

use super::space::{Point, Space};
use super::*;

/// Runs of configuration `key` over `order[from..to]` × repeats (items must hold them).
#[allow(clippy::too_many_arguments)]
pub(super) fn runs_of(
    e: &Experiment,
    sweep_id: Uuid,
    key: &str,
    config: &crate::types::RunConfig,
    ids: &[String],
    items: &HashMap<String, Arc<ContextItem>>,
    repeats: u32,
    now: chrono::DateTime<Utc>,
) -> Vec<Run> {
    let mut runs = Vec::with_capacity(ids.len() * repeats as usize);
    for id in ids {
        let Some(item) = items.get(id) else { continue };
        for r in 0..repeats {
            let mut run = new_run(e, Some(sweep_id), key, config, &item.item, r, now);
            run.config_hash = config_hash(key, &item.input, r);
            runs.push(run);
        }
    }
    runs
}

/// LLM calls each configuration's runs still need (by config key): every stage of a run the
/// cache does not answer, from its first uncached stage on.
pub(super) async fn calls_needed(
    ctx: &Context,
    runs: Vec<Run>,
    items: &HashMap<String, Arc<ContextItem>>,
) -> Result<HashMap<String, i64>> {
    let by_id: HashMap<&str, &ContextItem> =
        items.iter().map(|(k, v)| (k.as_str(), &**v)).collect();
    let mut out: HashMap<String, i64> = HashMap::new();
    for r in &runs {
        out.entry(r.config_key.clone()).or_default();
    }
    let plan = super::super::plan::resolve_cached(ctx, runs, &by_id).await?;
    for (i, run) in plan.pending.iter().enumerate() {
        let missing = run.config.stages.len() - plan.pending_cached_stages[i];
        *out.entry(run.config_key.clone()).or_default() += missing as i64;
    }
    Ok(out)
}

/// Configurations of a finite space (at most `limit`) whose runs on `ids` the cache answers
/// whole, as points: what earlier work (in any experiment) already tells the search for free.
pub(super) async fn cached_points(
    ctx: &Context,
    space: &Space,
    ids: &[String],
    items: &HashMap<String, Arc<ContextItem>>,
    repeats: u32,
    limit: usize,
) -> Result<Vec<Point>> {
    let Some(points) = space.all_points(2_000) else {
        return Ok(Vec::new());
    };
    let e = &ctx.experiment;
    let now = Utc::now();
    let mut runs = Vec::new();
    let mut keyed: Vec<(String, Point)> = Vec::new();
    for p in points {
        let Ok((key, config)) = resolve(e, &space.choice(&p), "space") else {
            continue;
        };
        runs.extend(runs_of(
            e,
            Uuid::nil(),
            &key,
            &config,
            ids,
            items,
            repeats,
            now,
        ));
        keyed.push((key, p));
    }
    let calls = calls_needed(ctx, runs, items).await?;
    Ok(keyed
        .into_iter()
        .filter(|(k, _)| calls.get(k) == Some(&0))
        .map(|(_, p)| p)
        .take(limit)
        .collect())
}
