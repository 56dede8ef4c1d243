//! Lanes: the apalis jobs that claim a sweep's pending runs under a lease, execute them and
//! hand the outcomes to the recorder.

use super::*;

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

/// How many lanes a sweep with `pending` runs gets.
pub fn lanes_for(pending: usize) -> usize {
    pending.div_ceil(RUNS_PER_LANE).clamp(1, LANES_MAX)
}

/// How often a lane looks for price changes.
const PRICE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

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
    let mut ctx = Arc::new(Context::new(core, experiment).await?);
    let _driving = core.driving.hold(sweep_id);
    let mut tasks = tokio::task::JoinSet::new();
    let mut claimed_total = 0;
    let mut prices_checked = std::time::Instant::now();
    loop {
        if claimed_total >= LANE_QUANTUM {
            // Fair turns: other sweeps' lanes waiting in the queue get a slot now.
            crate::server::jobs::push_lanes(core, sweep_id, 1).await?;
            break;
        }
        if core.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        // Saved since (a scorer added, say): the runs claimed from now on see it as it is.
        match experiments::updated_at(&core.db, sweep.experiment_id).await? {
            None => break,
            Some(at) if at != ctx.experiment.updated_at => {
                if let Some(e) = experiments::get(&core.db, sweep.experiment_id).await? {
                    ctx = Arc::new(Context::new(core, e).await?);
                }
            }
            Some(_) => {}
        }
        // A price changed (here or in another process): the runs claimed from now on are
        // priced at it (a change re-prices the runs already recorded).
        if prices_checked.elapsed() >= PRICE_CHECK {
            prices_checked = std::time::Instant::now();
            let prices = crate::server::pricing::PriceBook::load(core).await?;
            if prices != ctx.prices
                && let Some(e) = experiments::get(&core.db, sweep.experiment_id).await?
            {
                ctx = Arc::new(Context::new(core, e).await?);
            }
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
            if sweep.is_guided() {
                // Its runs recorded, a guided sweep may be at a round boundary: plan the next
                // round and go on with it.
                drop(permits);
                while tasks.join_next().await.is_some() {}
                if let guided::Advance::Planned(_) = super::advance(core, sweep_id, true).await? {
                    continue;
                }
            }
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
                    "item_id": r.item_id,
                    "item_index": r.item_index,
                    "repeat_index": r.repeat_index,
                    "attempt": attempts,
                }),
            })
            .collect();
        core.recorder.events(started).await;
        // The claimed runs' items, in one read.
        let runs: Vec<&Run> = claimed.iter().map(|(r, _)| r).collect();
        ctx.load(&runs).await?;
        let mut misses = first_call_misses(&ctx, &claimed).await?;
        for ((run, attempts), permit) in claimed.into_iter().zip(permits) {
            let first_call_missed = misses.remove(&run.id);
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

/// Renders the first calls of claimed runs and looks them up in the cache in one query;
/// returns, per run that missed, its rendered first call (so executing it neither renders it
/// again nor looks it up again).
async fn first_call_misses(
    ctx: &Context,
    claimed: &[(Run, i32)],
) -> Result<HashMap<Uuid, exec::PreparedCall>> {
    let env = templates::environment();
    let mut calls = Vec::with_capacity(claimed.len());
    for (run, _) in claimed {
        let Some(stage) = run.config.stages.first() else {
            continue;
        };
        let Some((row, _)) = ctx.endpoint(stage.endpoint_id).await? else {
            continue;
        };
        let Some(item) = ctx.loaded(run) else {
            continue;
        };
        if let Ok(call) = exec::prepare(ctx, &env, run, &item, 0, &[], &row) {
            calls.push((run.id, call));
        }
    }
    let refs: Vec<&str> = calls.iter().map(|(_, c)| c.key.as_str()).collect();
    let hits = cache_store::get_many(&ctx.core.db, &refs).await?;
    Ok(calls
        .into_iter()
        .filter(|(_, c)| !hits.contains_key(&c.key))
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
    first_call_missed: Option<exec::PreparedCall>,
) -> Outcome {
    let fallback = run.clone();
    match exec::execute_known(ctx, run, first_call_missed).await {
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
