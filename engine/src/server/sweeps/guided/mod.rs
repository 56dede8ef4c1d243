//! Guided sweeps: results so far decide what runs next. The sweep advances in rounds; each
//! round is decided at a boundary (no run of the sweep pending or executing) by whichever
//! lane saw the last run end, and written with its runs and search state in one transaction
//! (`store::guided`), so it keeps what grid and random sweeps have: durable lanes, the cache,
//! budgets, steering, events and the leaderboard.
//!
//! A round: score standings from the leaderboard, prune configurations that can no longer
//! beat the leader, promote the best of each rung to more items (`racing`), maybe ask the
//! proposer for new prompt variants (`propose`), take new configurations from an agent's
//! suggestions and the search (`tpe`), fit them to the budget, and plan their runs.

use sha2::{Digest, Sha256};

use super::*;
use crate::types::{GuideState, GuidedSearch, ItemRef, Proposer, StageChoice};

mod cost;
mod propose;
mod racing;
mod round;
mod space;
mod suggest;
mod tpe;

pub use propose::HEADER as PROPOSER_HEADER;
pub use round::{Advance, advance};
pub use space::Space;
pub use suggest::suggest;

/// What a guided request asks for, with defaults applied.
#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    pub search: GuidedSearch,
    pub max_configurations: Option<u32>,
    pub patience: u32,
    pub batch: Option<u32>,
    pub first_items: Option<u32>,
    pub reduction: u32,
    pub proposer: Option<Proposer>,
}

/// Rounds without a better configuration before no new ones are tried. Generous: on a noisy
/// plateau improvements are small and rare (`bench/guided.py`: 8 rounds stopped at 5 % of the
/// grid's calls short of its best; 30 reached it), and a budget bounds the spend anyway.
pub const DEFAULT_PATIENCE: u32 = 30;

impl Options {
    pub fn of(req: &SweepRequest) -> Option<Options> {
        let Strategy::Guided {
            seed,
            search,
            max_configurations,
            patience,
            batch,
            first_items,
            reduction,
            proposer,
        } = &req.strategy
        else {
            return None;
        };
        Some(Options {
            seed: seed.unwrap_or_default(),
            search: search.unwrap_or_default(),
            max_configurations: *max_configurations,
            patience: patience.unwrap_or(DEFAULT_PATIENCE),
            batch: *batch,
            first_items: *first_items,
            reduction: reduction.unwrap_or(3),
            proposer: proposer.clone(),
        })
    }
}

fn in_range(field: &str, v: Option<u32>, lo: u32, hi: u32) -> Result<()> {
    match v {
        Some(v) if !(lo..=hi).contains(&v) => Err(Error::invalid(
            format!("strategy.{field}"),
            format!("must be between {lo} and {hi}"),
        )),
        _ => Ok(()),
    }
}

/// Checks a guided strategy's fields (before anything is stored).
pub(super) fn check(req: &SweepRequest) -> Result<()> {
    let Strategy::Guided {
        max_configurations,
        patience,
        batch,
        first_items,
        reduction,
        proposer,
        ..
    } = &req.strategy
    else {
        return Ok(());
    };
    in_range(
        "max_configurations",
        *max_configurations,
        1,
        planner::MAX_CONFIGURATIONS as u32,
    )?;
    in_range("patience", *patience, 1, 1000)?;
    in_range("batch", *batch, 1, 1000)?;
    in_range("first_items", *first_items, 1, MAX_SWEEP_RUNS as u32)?;
    in_range("reduction", *reduction, 2, 10)?;
    if let Some(p) = proposer {
        in_range("proposer.every", p.every, 1, 100)?;
        in_range("proposer.count", p.count, 1, 5)?;
        in_range("proposer.max_proposals", p.max_proposals, 1, 50)?;
        if p.model.trim().is_empty() {
            return Err(Error::invalid(
                "strategy.proposer.model",
                "must not be empty",
            ));
        }
    }
    Ok(())
}

/// Checks what a guided sweep needs of its experiment and proposer.
async fn check_experiment(ctx: &Context, opts: &Options) -> Result<Space> {
    if ctx.scoring.is_empty() {
        return Err(Error::invalid(
            "strategy",
            "a guided sweep ranks configurations by their weighted score: add a scorer first",
        ));
    }
    let space = Space::new(&ctx.experiment)?;
    if let Some(p) = &opts.proposer {
        let stage = p.stage.unwrap_or(0) as usize;
        if stage >= ctx.experiment.pipeline_stages.len() {
            return Err(Error::invalid(
                "strategy.proposer.stage",
                format!(
                    "the pipeline has {} stage(s)",
                    ctx.experiment.pipeline_stages.len()
                ),
            ));
        }
        if ctx.endpoint(p.endpoint_id).await?.is_none() {
            return Err(Error::invalid(
                "strategy.proposer.endpoint_id",
                format!("endpoint {} does not exist", p.endpoint_id),
            ));
        }
    }
    Ok(space)
}

/// The items a guided sweep races over, in its own order: shuffled by a hash of the seed and
/// each item's place, so every configuration meets the same items first and the same seed on
/// the same items gives the same order (in any experiment holding them).
pub(super) async fn ordered_items(
    ctx: &Context,
    req: &SweepRequest,
    seed: u64,
) -> Result<Vec<String>> {
    let ids: Vec<String> = match req.items.as_deref() {
        Some(refs) => ctx
            .pick(refs, true)
            .await?
            .into_iter()
            .map(|i| i.item.id.clone())
            .collect(),
        None => {
            let e = &ctx.experiment.items;
            crate::server::store::datasets::ids_in_order(&ctx.core.db, e.dataset_id, e.version)
                .await?
        }
    };
    let rank = |place: usize| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(seed.to_le_bytes());
        h.update((place as u64).to_le_bytes());
        h.finalize().into()
    };
    let mut ranked: Vec<([u8; 32], String)> = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| (rank(i), id))
        .collect();
    ranked.sort();
    Ok(ranked.into_iter().map(|(_, id)| id).collect())
}

/// The first state of a guided sweep.
async fn first_state(ctx: &Context, req: &SweepRequest, opts: &Options) -> Result<GuideState> {
    let items = ordered_items(ctx, req, opts.seed).await?.len() as u32;
    if items == 0 {
        return Err(Error::invalid(
            "experiment",
            "the experiment has no sample items; add or import some first",
        ));
    }
    let first = opts
        .first_items
        .map(|f| f.min(items))
        .unwrap_or_else(|| racing::default_first(items));
    Ok(GuideState {
        search: opts.search.name().into(),
        seed: opts.seed,
        items,
        rungs: racing::rungs(items, first, opts.reduction),
        ..GuideState::default()
    })
}

/// A guided sweep without a seed gets one now, so the sweep records how to reproduce it.
pub(super) fn with_seed(req: &mut SweepRequest) {
    if let Strategy::Guided {
        seed: seed @ None, ..
    } = &mut req.strategy
    {
        *seed = Some(rand::random::<u32>() as u64);
    }
}

/// Starts a guided sweep: stores it, then plans its first round.
pub(super) async fn start(
    core: &Core,
    actor: &Actor,
    ctx: Context,
    req: SweepRequest,
) -> Result<Sweep> {
    let opts = Options::of(&req).expect("a guided request");
    plan::check_request(&req)?;
    let space = check_experiment(&ctx, &opts).await?;
    let state = first_state(&ctx, &req, &opts).await?;
    let budget = req.budget.clone().unwrap_or_default();
    let e = &ctx.experiment;
    let row = SweepRow::new(
        Uuid::new_v4(),
        e.id,
        req.clone(),
        e.parameter_space.clone(),
        plan::max_tokens(core, &budget),
        Some(state),
    );
    let (pages_tx, pages) = tokio::sync::mpsc::channel(1);
    let _ = pages_tx.send(store::PlanPage::Done).await;
    let size = space.size();
    let created = store::create(&core.db, &row, actor.user_id(), pages, |row| {
        vec![sweep_event(
            "experiment.started",
            row,
            json!({
                "config": row.request.0,
                "space_configurations": size,
                "items": row.guide.as_ref().map(|g| g.0.items),
                "rungs": row.guide.as_ref().map(|g| g.0.rungs.clone()),
            }),
        )]
    })
    .await?;
    let Some((row, events, _)) = created else {
        return Err(Error::Internal("the sweep could not be stored".into()));
    };
    crate::server::events::publish(core, events).await;
    tracing::info!(sweep = %row.id, experiment = %e.id, "guided sweep started");
    advance(core, row.id, false).await?;
    let row = store::get(&core.db, row.id).await?.unwrap_or(row);
    read_sweep(core, &row).await
}

/// What a guided sweep expects to spend: at most its budget; without one, the configurations
/// it may try (its limit, or the space) raced as successive halving races them.
pub(super) async fn preview(ctx: &Context, req: &SweepRequest) -> Result<SweepPreview> {
    let mut req = req.clone();
    with_seed(&mut req);
    let opts = Options::of(&req).expect("a guided request");
    plan::check_request(&req)?;
    let space = check_experiment(ctx, &opts).await?;
    let state = first_state(ctx, &req, &opts).await?;
    let repeats = req.repeats.unwrap_or(1) as i64;
    let stages = ctx.experiment.pipeline_stages.len().max(1) as i64;
    let size = space.size().map(|s| s.min(i64::MAX as u64) as i64);
    // Runs per configuration tried, on average: its first rung plus the share promoted on.
    let mut per_config = 0.0;
    let mut share = 1.0;
    let mut previous = 0u32;
    for &r in &state.rungs {
        per_config += share * (r - previous) as f64;
        previous = r;
        share /= opts.reduction as f64;
    }
    let per_config = per_config * repeats as f64;
    let cap_configs = [
        opts.max_configurations.map(i64::from),
        size,
        Some(planner::MAX_CONFIGURATIONS as i64),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(1);
    let budget_calls = req.budget.as_ref().and_then(|b| b.max_calls);
    let mut runs = (cap_configs as f64 * per_config).ceil() as i64;
    if let Some(b) = budget_calls {
        runs = runs.min(b / stages);
    }
    let configurations = ((runs as f64 / per_config).floor() as i64).clamp(1, cap_configs);
    // Tokens and cost per run from a sample of the space's configurations.
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(state.seed);
    let mut sample_tokens = (0i64, 0i64);
    let mut sample_cost = Some(0.0);
    let averages = run_store::average_output_tokens(&ctx.core.db).await?;
    let mut unpriced = std::collections::BTreeSet::new();
    const SAMPLE: i64 = 8;
    for _ in 0..SAMPLE {
        let choice = space.choice(&tpe::random_point(&space, &mut rng));
        let config = resolve_config(&ctx.experiment, &choice)?;
        for stage in &config.stages {
            let tokens_in = ((stage.system.len() + stage.user.len()) as i64 / 4).max(1) + 50;
            let tokens_out = averages
                .get(&stage.model)
                .copied()
                .or(stage.params.max_tokens.map(|m| (m as i64).min(512)))
                .unwrap_or(256);
            sample_tokens.0 += tokens_in;
            sample_tokens.1 += tokens_out;
            match ctx.prices.cost(&stage.model, tokens_in, tokens_out) {
                Some(c) => sample_cost = sample_cost.map(|t| t + c),
                None => {
                    unpriced.insert(stage.model.clone());
                }
            }
        }
    }
    let scale = runs as f64 / SAMPLE as f64;
    let calls = runs * stages;
    Ok(SweepPreview {
        strategy: "guided".into(),
        seed: Some(state.seed),
        configurations,
        runs,
        calls,
        calls_to_make: calls,
        estimated_tokens_in: (sample_tokens.0 as f64 * scale) as i64,
        estimated_tokens_out: (sample_tokens.1 as f64 * scale) as i64,
        estimated_cost: if unpriced.is_empty() {
            sample_cost.map(|c| (c * scale * 1e6).round() / 1e6)
        } else {
            None
        },
        unpriced_models: unpriced.into_iter().collect(),
        estimate: true,
        budget_calls,
        space_configurations: size,
        note: Some(format!(
            "A guided sweep decides as it goes: about {configurations} configuration(s), each first tried on {} of {} item(s) and given more only while it can still beat the leader; it stops at {}. Cached calls cost nothing.",
            state.rungs[0],
            state.items,
            match (budget_calls, opts.max_configurations) {
                (Some(b), _) => format!("{b} LLM calls (its budget)"),
                (None, Some(m)) => format!("{m} configurations"),
                (None, None) => format!(
                    "{} rounds without a better configuration, or when the space is exhausted",
                    opts.patience
                ),
            }
        )),
        ..SweepPreview::default()
    })
}

/// Stage choices as an agent or a proposal gives them, checked against the space; returns
/// the resolved configuration and its key.
pub(super) fn resolve(
    e: &Experiment,
    choice: &[StageChoice],
    field: &str,
) -> Result<(String, crate::types::RunConfig)> {
    let config = resolve_config(e, choice).map_err(|err| match err {
        Error::Invalid(f) => Error::invalid(format!("{field}.{}", f.field), f.message),
        other => other,
    })?;
    Ok((config_key(&config), config))
}

/// Items by id (for planning runs).
pub(super) async fn items_by_id(
    ctx: &Context,
    ids: &[String],
) -> Result<HashMap<String, Arc<ContextItem>>> {
    let refs: Vec<ItemRef> = ids.iter().map(|i| ItemRef::Id(i.clone())).collect();
    if refs.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(ctx
        .pick(&refs, true)
        .await?
        .into_iter()
        .map(|i| (i.item.id.clone(), i))
        .collect())
}

/// A one-stage experiment over `space` (tests of the space and the search).
#[cfg(test)]
pub(super) fn test_experiment(space: crate::types::StageSpace) -> Experiment {
    use crate::types::{ParameterSpace, Params, Stage};
    Experiment {
        id: Uuid::nil(),
        project_id: Uuid::nil(),
        name: "e".into(),
        description: String::new(),
        items: Default::default(),
        pipeline_stages: vec![Stage {
            name: "s".into(),
            endpoint_id: Uuid::nil(),
            model: "m".into(),
            system: "base".into(),
            user: "{{ input.text }}".into(),
            params: Params::default(),
        }],
        parameter_space: ParameterSpace {
            stages: vec![space],
        },
        scoring_config: json!([]),
        status: "draft".into(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}
