//! One round of a guided sweep: standings → prune → promote → propose → new configurations →
//! fit to the budget → plan, written in one transaction.

use std::collections::{BTreeMap, HashSet};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::propose;
use super::racing::{self, Bounds};
use super::tpe::{self, Observation};
use super::*;
use crate::server::leaderboard;
use crate::server::store::guided::{self as guided_store, Round, Spend};
use crate::server::store::leaderboard::{self as lb_store, item_key};
use crate::types::{GuideBest, GuidedConfig, PromptVariant, ProposedVariant, RunConfig};

/// Most configurations the first round takes from the cache (free to score).
const FREE_MAX: usize = 64;

/// What [`advance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// Planned this many runs.
    Planned(usize),
    /// Nothing to do now: runs are still executing, another process planned, or an agent has
    /// not suggested anything yet.
    Waiting,
    /// The sweep is not running (or it just completed).
    Ended,
}

/// The experiment's per-item weighted scores, in the sweep's item order.
struct Standings {
    order: Vec<i64>,
    scores: BTreeMap<String, BTreeMap<i64, f64>>,
}

impl Standings {
    /// Scores on the first `n` items of the order (those it has).
    fn prefix(&self, key: &str, n: u32) -> Vec<f64> {
        let Some(s) = self.scores.get(key) else {
            return Vec::new();
        };
        self.order
            .iter()
            .take(n as usize)
            .filter_map(|k| s.get(k).copied())
            .collect()
    }

    fn all(&self, key: &str) -> Vec<f64> {
        self.scores
            .get(key)
            .map(|s| s.values().copied().collect())
            .unwrap_or_default()
    }
}

fn round2(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A unit of work a round may plan: a configuration over items `from..to` of the order.
struct Unit {
    key: String,
    config: RunConfig,
    from: u32,
    to: u32,
    /// Index into the state's configurations (promotion) or a new one.
    promote: Option<usize>,
    new: Option<GuidedConfig>,
}

/// Decides and plans the next round of a guided sweep if it is at a boundary. Safe to call
/// from anywhere at any time: only one caller per round writes.
pub async fn advance(core: &Core, sweep_id: Uuid, from_lane: bool) -> Result<Advance> {
    let Some(row) = store::get(&core.db, sweep_id).await? else {
        return Ok(Advance::Ended);
    };
    let Some(Json(before)) = row.guide.clone() else {
        return Ok(Advance::Ended);
    };
    if row.status != "running" {
        return Ok(Advance::Ended);
    }
    if row.done < row.total {
        return Ok(Advance::Waiting);
    }
    let req = row.request.0.clone();
    let Some(opts) = Options::of(&req) else {
        return Ok(Advance::Ended);
    };
    let Some(mut e) = experiments::get(&core.db, row.experiment_id).await? else {
        return Ok(Advance::Ended);
    };
    e.parameter_space = row.space.0.clone();
    let ctx = Context::new(core, e).await?;
    let e = ctx.experiment.clone();
    leaderboard::refresh(core, &e).await?;
    let mut state = before.clone();
    let order = ordered_items(&ctx, &req, state.seed).await?;
    let n_items = order.len() as u32;
    let (light, _) = lb_store::light(&core.db, e.id, false).await?;
    let ranked: Vec<String> = light.iter().map(|l| l.config_key.clone()).collect();
    let rejected: HashSet<String> = store::marks(&core.db, e.id)
        .await?
        .into_iter()
        .filter(|m| m.mark == "rejected")
        .map(|m| m.config_key)
        .collect();
    let standings = Standings {
        order: order.iter().map(|id| item_key(id)).collect(),
        scores: lb_store::item_scores(&core.db, e.id, &ranked)
            .await?
            .into_iter()
            .map(|(k, s)| (k, s.w))
            .collect(),
    };
    let mut notes: Vec<(&'static str, Value)> = Vec::new();
    let label = |c: &RunConfig| leaderboard::label(c, &e);
    // Each configuration tried, as it ran (a redirect may have taken it out of the space),
    // and whether the space still holds it.
    let space_now = Space::new(&e)?;
    let mine: Vec<String> = state
        .configurations
        .iter()
        .map(|c| c.config_key.clone())
        .collect();
    let ran: HashMap<String, RunConfig> = lb_store::full(&core.db, e.id, &mine)
        .await?
        .into_iter()
        .map(|f| (f.config_key, f.config.0))
        .collect();
    let mut configs: Vec<RunConfig> = Vec::with_capacity(mine.len());
    let mut in_space: Vec<bool> = Vec::with_capacity(mine.len());
    for c in &state.configurations {
        let resolved = resolve_config(&e, &c.choice).ok();
        let config = ran
            .get(&c.config_key)
            .cloned()
            .or_else(|| resolved.clone())
            .unwrap_or(RunConfig { stages: Vec::new() });
        in_space.push(
            resolved.is_some()
                && space_now
                    .locate(&config)
                    .and_then(|p| resolve(&e, &space_now.choice(&p), "space").ok())
                    .is_some_and(|(k, _)| k == c.config_key),
        );
        configs.push(config);
    }

    // The leader: the highest lower bound over all its items.
    let leader: Option<(String, Bounds)> = ranked
        .iter()
        .filter_map(|k| racing::bounds(&standings.all(k)).map(|b| (k.clone(), b)))
        .max_by(|a, b| a.1.lcb.total_cmp(&b.1.lcb).then(b.0.cmp(&a.0)));

    // Prune what can no longer win; mark what has every item.
    for (i, c) in state.configurations.iter_mut().enumerate() {
        let xs = standings.prefix(&c.config_key, c.items);
        c.mean = racing::bounds(&xs).map(|b| round2(b.mean));
        if c.state != "racing" {
            continue;
        }
        let why = if rejected.contains(&c.config_key) {
            Some(("rejected by a person".to_owned(), Value::Null))
        } else if !in_space[i] {
            Some((
                "outside the sweep's space since a redirect".to_owned(),
                Value::Null,
            ))
        } else if xs.is_empty() {
            Some((
                format!("no scores on its {} item(s): its runs failed", c.items),
                Value::Null,
            ))
        } else if c.items >= n_items {
            c.state = "finished".into();
            None
        } else {
            match (&leader, racing::bounds(&xs)) {
                (Some((lk, lb)), Some(b)) if *lk != c.config_key => {
                    let same = standings.prefix(lk, c.items);
                    let l = if same.len() * 2 >= xs.len() {
                        racing::bounds(&same).unwrap_or(*lb)
                    } else {
                        *lb
                    };
                    (b.ucb < l.lcb).then(|| {
                        (
                            format!(
                                "UCB {:.2} < leader LCB {:.2} after {}/{} items",
                                b.ucb, l.lcb, c.items, n_items
                            ),
                            json!({"ucb": round2(b.ucb), "leader_lcb": round2(l.lcb), "leader": lk, "mean": round2(b.mean)}),
                        )
                    })
                }
                _ => None,
            }
        };
        if let Some((message, numbers)) = why {
            c.state = "pruned".into();
            let mut payload = json!({
                "config_key": c.config_key,
                "label": label(&configs[i]),
                "items": c.items,
                "of": n_items,
                "message": message,
            });
            if let (Some(p), Value::Object(extra)) = (payload.as_object_mut(), numbers) {
                p.extend(extra);
            }
            notes.push(("configuration.pruned", payload));
        }
    }

    // The best configuration evaluated on every item (this sweep's, or an earlier one's).
    let full_best = ranked
        .iter()
        .filter(|k| !rejected.contains(*k))
        .filter_map(|k| {
            let xs = standings.prefix(k, n_items);
            (xs.len() as u32 == n_items && n_items > 0)
                .then(|| (k.clone(), xs.iter().sum::<f64>() / xs.len() as f64))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    match (&full_best, &state.best) {
        (Some((k, s)), best) if best.as_ref().is_none_or(|b| *s > b.score + 1e-9) => {
            state.best = Some(GuideBest {
                config_key: k.clone(),
                score: round2(*s),
                round: state.round,
            });
            state.stale_rounds = 0;
        }
        (_, Some(_)) => state.stale_rounds += 1,
        _ => {}
    }

    // Promotions: the best share of each rung goes on to the next.
    let rungs = state.rungs.clone();
    let repeats = req.repeats.unwrap_or(1);
    let mut units: Vec<Unit> = Vec::new();
    for r in 0..rungs.len().saturating_sub(1) {
        let population: Vec<(usize, f64)> = state
            .configurations
            .iter()
            .enumerate()
            .filter(|(_, c)| c.items >= rungs[r])
            .filter_map(|(i, c)| {
                racing::bounds(&standings.prefix(&c.config_key, rungs[r])).map(|b| (i, b.mean))
            })
            .collect();
        for i in racing::promoted(&population, opts.reduction) {
            let c = &state.configurations[i];
            if c.state == "racing" && c.items == rungs[r] {
                units.push(Unit {
                    key: c.config_key.clone(),
                    config: configs[i].clone(),
                    from: c.items,
                    to: rungs[r + 1],
                    promote: Some(i),
                    new: None,
                });
            }
        }
    }
    let mean_of = |u: &Unit| {
        u.promote
            .and_then(|i| state.configurations[i].mean)
            .unwrap_or(0.0)
    };
    units.sort_by(|a, b| mean_of(b).total_cmp(&mean_of(a)).then(a.key.cmp(&b.key)));

    // When to stop trying new configurations.
    let tried = state.configurations.len() as u32;
    if state.finishing.is_none() {
        if opts.max_configurations.is_some_and(|m| tried >= m) {
            state.finishing = Some(format!(
                "tried {tried} configurations (its max_configurations)"
            ));
        } else if opts.search != GuidedSearch::Agent
            && state.best.is_some()
            && state.stale_rounds >= opts.patience
        {
            state.finishing = Some(format!(
                "no better configuration for {} rounds (its patience)",
                state.stale_rounds
            ));
        }
    }

    let round_no = state.round + 1;
    // Maybe new prompt variants, each tried first with the best configuration so far.
    let mut spend = Spend::default();
    let mut new_space: Option<ParameterSpace> = None;
    let mut forced: Vec<(Vec<StageChoice>, &'static str)> = Vec::new();
    if let Some(p) = &opts.proposer
        && proposal_due(&state, p, round_no)
        && runs_left_before(&row, &e) != Some(0)
    {
        let keys: Vec<String> = state
            .configurations
            .iter()
            .filter(|c| c.mean.is_some())
            .map(|c| c.config_key.clone())
            .collect();
        let best_runs: HashMap<String, Uuid> = lb_store::full(&core.db, e.id, &keys)
            .await?
            .into_iter()
            .filter_map(|f| f.best_run_id.map(|r| (f.config_key, r)))
            .collect();
        let mut prop = propose::propose(&ctx, p, &state, &configs, &best_runs, round_no).await?;
        spend = prop.spend;
        if prop.error.is_none() {
            // A prompt the space already has (under any name) is no proposal.
            let before = prop.variants.len();
            prop.variants = propose::only_new(&e, prop.variants);
            if prop.variants.is_empty() {
                prop.error = Some((
                    format!("all {before} proposed prompt(s) repeat prompts the space already has"),
                    String::new(),
                ));
            }
        }
        match prop.error {
            Some((error, reply)) => {
                state.proposal_failures += 1;
                notes.push((
                    "prompt.proposal_failed",
                    json!({"model": p.model, "error": error, "reply": reply,
                           "message": format!("The proposer's reply was not usable ({error}); the search goes on without it.")}),
                ));
            }
            None => {
                let (space, choices) = with_proposals(&e, &state, &configs, &prop.variants);
                notes.push((
                    "prompt.proposed",
                    json!({
                        "model": p.model,
                        "variants": prop.variants,
                        "message": format!("{} proposed {} new prompt variant(s): {}.", p.model, prop.variants.len(),
                            prop.variants.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")),
                    }),
                ));
                state.proposals.extend(prop.variants);
                forced = choices.into_iter().map(|c| (c, "proposal")).collect();
                new_space = Some(space);
            }
        }
    }
    let e = match &new_space {
        Some(space) => Arc::new(Experiment {
            parameter_space: space.clone(),
            ..(*e).clone()
        }),
        None => e.clone(),
    };

    // New configurations: an agent's suggestions first, then proposals, then the search.
    let space = Space::new(&e)?;
    let per_new = rungs[0] as i64 * repeats as i64;
    let target = opts.batch.unwrap_or(core.max_concurrent_runs as u32) as i64;
    let promo_runs: i64 = units
        .iter()
        .map(|u| (u.to - u.from) as i64 * repeats as i64)
        .sum();
    let mut want = ((target - promo_runs).max(0) + per_new - 1) / per_new;
    if want == 0 && units.is_empty() {
        want = 1;
    }
    if let Some(m) = opts.max_configurations {
        want = want.min(m.saturating_sub(tried) as i64);
    }
    if state.finishing.is_some() {
        want = 0;
    }
    let mut known: HashSet<String> = state
        .configurations
        .iter()
        .map(|c| c.config_key.clone())
        .chain(ranked.iter().cloned())
        .collect();
    let mut fresh: Vec<(Vec<StageChoice>, &'static str)> = Vec::new();
    while (fresh.len() as i64) < want && !state.suggestions.is_empty() {
        fresh.push((state.suggestions.remove(0), "agent"));
    }
    // Proposals are tried even past the round's share (they were paid for).
    fresh.extend(forced);
    let searching = opts.search != GuidedSearch::Agent;
    // The first round also takes what the cache already answers on the first rung (free).
    let mut free: Vec<(Vec<StageChoice>, &'static str)> = Vec::new();
    if searching && state.configurations.is_empty() && state.finishing.is_none() {
        let first: Vec<String> = order[..rungs[0].min(n_items) as usize].to_vec();
        let items = items_by_id(&ctx, &first).await?;
        let cap = opts
            .max_configurations
            .map_or(FREE_MAX, |m| (m as usize).min(FREE_MAX));
        for p in cost::cached_points(&ctx, &space, &first, &items, repeats, cap).await? {
            let choice = space.choice(&p);
            if let Ok((key, _)) = resolve(&e, &choice, "space") {
                // Known to the search (it suggests others); planned below, on top of its share.
                if known.insert(key) {
                    free.push((choice, "cache"));
                }
            }
        }
    }
    if searching && (fresh.len() as i64) < want {
        let observations =
            observe(&core.db, &e, &space, &state, &configs, &standings, &ranked).await?;
        let mut rng = StdRng::seed_from_u64(
            state.seed ^ (round_no as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let random = opts.search == GuidedSearch::Random;
        let obs: &[Observation] = if random { &[] } else { &observations };
        let mut is_new = |p: &space::Point| {
            resolve(&e, &space.choice(p), "strategy")
                .map(|(k, _)| !known.contains(&k))
                .unwrap_or(false)
        };
        let asked = (want as usize) - fresh.len();
        let got = tpe::suggest(&space, obs, asked, &mut rng, &mut is_new);
        let exhausted = got.len() < asked;
        for (p, origin) in got {
            fresh.push((space.choice(&p), if random { "random" } else { origin }));
        }
        if exhausted && state.finishing.is_none() {
            state.finishing = Some("every configuration in the space was tried".into());
        }
    }
    let mut taken: HashSet<String> = HashSet::new();
    for (choice, origin) in fresh.into_iter().chain(free) {
        let Ok((key, config)) = resolve(&e, &choice, "suggestions") else {
            continue;
        };
        // Once per round; not again if tried (free ones were marked known on purpose).
        if !taken.insert(key.clone()) || (origin != "cache" && !known.insert(key.clone())) {
            continue;
        }
        units.push(Unit {
            key: key.clone(),
            config,
            from: 0,
            to: rungs[0],
            promote: None,
            new: Some(GuidedConfig {
                config_key: key,
                choice,
                origin: origin.into(),
                round: round_no,
                items: rungs[0],
                state: if rungs[0] >= n_items {
                    "finished"
                } else {
                    "racing"
                }
                .into(),
                mean: None,
            }),
        });
    }

    // What each unit costs: its runs, and the calls the cache does not answer.
    let now = Utc::now();
    let span = |u: &Unit| &order[u.from as usize..u.to.min(n_items) as usize];
    let mut needed: Vec<String> = units.iter().flat_map(|u| span(u).iter().cloned()).collect();
    needed.sort();
    needed.dedup();
    let items = items_by_id(&ctx, &needed).await?;
    let unit_runs: Vec<Vec<Run>> = units
        .iter()
        .map(|u| {
            cost::runs_of(
                &e,
                sweep_id,
                &u.key,
                &u.config,
                span(u),
                &items,
                repeats,
                now,
            )
        })
        .collect();
    let calls =
        cost::calls_needed(&ctx, unit_runs.iter().flatten().cloned().collect(), &items).await?;

    // Fit the budget: promotions first, then new configurations, while calls remain.
    let mut calls_left = row.max_calls.map(|m| (m - row.calls - spend.calls).max(0));
    let mut budget_binds = false;
    let mut planned: Vec<(Unit, Vec<Run>)> = Vec::new();
    for (u, runs) in units.into_iter().zip(unit_runs) {
        let cost = calls.get(&u.key).copied().unwrap_or(0);
        match &mut calls_left {
            Some(left) if cost > *left => budget_binds = true,
            Some(left) => {
                *left -= cost;
                planned.push((u, runs));
            }
            None => planned.push((u, runs)),
        }
    }

    // Nothing to run: wait for an agent, or end.
    let waiting = planned.is_empty()
        && opts.search == GuidedSearch::Agent
        && state.finishing.is_none()
        && !budget_binds;
    let complete = planned.is_empty() && !waiting;
    if complete {
        state.stop_reason = Some(if budget_binds {
            format!(
                "its budget: {} of {} LLM calls spent, too few left for the next step",
                row.calls,
                row.max_calls.unwrap_or_default()
            )
        } else if let Some(f) = &state.finishing {
            f.clone()
        } else {
            "nothing left to race".into()
        });
    }
    if waiting && state == before {
        return Ok(Advance::Waiting);
    }

    // Plan the runs.
    let mut runs: Vec<Run> = Vec::new();
    let mut new_labels = Vec::new();
    let mut promoted = 0;
    for (u, unit_runs) in &planned {
        runs.extend(unit_runs.iter().cloned());
        if let Some(i) = u.promote {
            let c = &mut state.configurations[i];
            notes.push((
                "configuration.promoted",
                json!({
                    "config_key": c.config_key,
                    "label": label(&u.config),
                    "from": u.from,
                    "to": u.to,
                    "of": n_items,
                    "mean": c.mean,
                    "message": format!(
                        "mean {:.2} on {} items ranks in the best 1/{} of its rung: {} more items",
                        c.mean.unwrap_or_default(), u.from, opts.reduction, u.to - u.from
                    ),
                }),
            ));
            c.items = u.to;
            if u.to >= n_items {
                c.state = "finished".into();
            }
            promoted += 1;
        }
        if let Some(c) = &u.new {
            new_labels.push(
                json!({"config_key": c.config_key, "label": label(&u.config), "origin": c.origin}),
            );
            state.configurations.push(c.clone());
        }
    }
    state.round = round_no;
    let pruned = notes
        .iter()
        .filter(|(t, _)| *t == "configuration.pruned")
        .count();
    let message = if complete {
        format!(
            "Ended: {}.",
            state.stop_reason.as_deref().unwrap_or_default()
        )
    } else if waiting {
        "Waiting for suggestions from an agent.".to_owned()
    } else {
        format!(
            "Round {round_no}: {} new configuration(s), {promoted} promoted, {pruned} pruned; {} run(s).",
            new_labels.len(),
            runs.len()
        )
    };
    let summary = json!({
        "round": round_no,
        "new": new_labels,
        "promoted": promoted,
        "pruned": pruned,
        "runs": runs.len(),
        "tried": state.configurations.len(),
        "best": state.best,
        "finishing": state.finishing,
        "message": message,
    });
    let committed = guided_store::commit(
        &core.db,
        sweep_id,
        Round {
            after: row.guide_round,
            state: &state,
            runs: &runs,
            space: new_space.as_ref(),
            spend,
            complete,
        },
        |row| {
            let mut out: Vec<NewEvent> = notes
                .iter()
                .map(|(t, p)| sweep_event(t, row, p.clone()))
                .collect();
            out.push(sweep_event("sweep.round", row, summary.clone()));
            if complete {
                out.push(sweep_event(
                    "experiment.completed",
                    row,
                    json!({"reason": state.stop_reason, "best": state.best, "configurations": state.configurations.len()}),
                ));
            }
            out
        },
    )
    .await?;
    let Some((row, events)) = committed else {
        return Ok(Advance::Waiting);
    };
    crate::server::events::publish(core, events).await;
    if complete {
        core.leader_watch
            .notice(row.experiment_id, Some(row.id), "sweep");
        return Ok(Advance::Ended);
    }
    if !runs.is_empty() {
        let lanes = lanes_for(runs.len());
        if from_lane {
            if lanes > 1 {
                crate::server::jobs::push_lanes(core, sweep_id, lanes - 1).await?;
            }
        } else {
            crate::server::jobs::push_lanes(core, sweep_id, lanes).await?;
        }
    }
    Ok(if runs.is_empty() {
        Advance::Waiting
    } else {
        Advance::Planned(runs.len())
    })
}

/// What the search learns from: every configuration of the experiment it can place in the
/// space, scored on the sweep's first rung of items (configurations of earlier sweeps on the
/// items they have).
async fn observe(
    db: &crate::server::store::Db,
    e: &Experiment,
    space: &Space,
    state: &GuideState,
    configs: &[RunConfig],
    standings: &Standings,
    ranked: &[String],
) -> Result<Vec<Observation>> {
    let first = state.rungs.first().copied().unwrap_or(1);
    let mut out = Vec::new();
    let mut mine = HashSet::new();
    for (c, config) in state.configurations.iter().zip(configs) {
        mine.insert(c.config_key.as_str());
        let xs = standings.prefix(&c.config_key, first);
        if let (Some(b), Some(point)) = (racing::bounds(&xs), space.locate(config)) {
            out.push(Observation {
                point,
                score: b.mean,
            });
        }
    }
    let others: Vec<String> = ranked
        .iter()
        .filter(|k| !mine.contains(k.as_str()))
        .cloned()
        .collect();
    if !others.is_empty() {
        for f in lb_store::full(db, e.id, &others).await? {
            let xs = standings.all(&f.config_key);
            if let (Some(b), Some(point)) = (racing::bounds(&xs), space.locate(&f.config.0)) {
                out.push(Observation {
                    point,
                    score: b.mean,
                });
            }
        }
    }
    Ok(out)
}

/// Whether this round asks the proposer (every `every` rounds after the first, while
/// proposals remain and at least two configurations have scores).
fn proposal_due(state: &GuideState, p: &Proposer, round: u32) -> bool {
    let every = p.every.unwrap_or(3);
    let mut rounds: Vec<u32> = state.proposals.iter().map(|v| v.round).collect();
    rounds.dedup();
    let attempts = rounds.len() as u32 + state.proposal_failures;
    state.finishing.is_none()
        && round > 1
        && (round - 1).is_multiple_of(every)
        && attempts < p.max_proposals.unwrap_or(5)
        && state
            .configurations
            .iter()
            .filter(|c| c.mean.is_some())
            .count()
            >= 2
}

/// Calls the budget still allows before this round (`None`: no calls budget).
fn runs_left_before(row: &SweepRow, e: &Experiment) -> Option<i64> {
    let stages = e.pipeline_stages.len().max(1) as i64;
    row.max_calls.map(|m| ((m - row.calls) / stages).max(0))
}

/// The space with the proposed variants added (a stage without variants first gets its own
/// prompt as `original`, so it stays in the race), and for each variant the best
/// configuration so far with that variant.
fn with_proposals(
    e: &Experiment,
    state: &GuideState,
    configs: &[RunConfig],
    variants: &[ProposedVariant],
) -> (ParameterSpace, Vec<Vec<StageChoice>>) {
    let mut space = e.parameter_space.clone();
    let mut choices = Vec::new();
    let best = state
        .configurations
        .iter()
        .enumerate()
        .filter(|(_, c)| c.mean.is_some())
        .max_by(|a, b| {
            (a.1.mean.unwrap_or_default(), a.1.items)
                .partial_cmp(&(b.1.mean.unwrap_or_default(), b.1.items))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|(i, c)| (c.choice.clone(), &configs[i]));
    for v in variants {
        let k = v.stage as usize;
        while space.stages.len() <= k {
            space.stages.push(Default::default());
        }
        let stage = &mut space.stages[k];
        if stage.prompts.is_empty()
            && let Some(s) = e.pipeline_stages.get(k)
        {
            stage.prompts.push(PromptVariant {
                name: "original".into(),
                system: Some(s.system.clone()),
                user: Some(s.user.clone()),
            });
        }
        stage.prompts.push(PromptVariant {
            name: v.name.clone(),
            system: v.system.clone(),
            user: v.user.clone(),
        });
        if let Some((choice, _)) = &best {
            let mut c = choice.clone();
            while c.len() <= k {
                c.push(StageChoice::default());
            }
            c[k].variant = Some(v.name.clone());
            choices.push(c);
        }
    }
    (space, choices)
}
