//! Steering a sweep: pause, resume, stop, redirect; fork a run into a new experiment;
//! approve or reject a configuration.

use super::plan::{Planner, check_budget, feed, max_tokens, sweep_experiment, with_seed};
use super::*;

pub(super) async fn active_or_conflict(core: &Core, experiment_id: Uuid) -> Result<SweepRow> {
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
    read_sweep(core, &row).await
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
        // A limit left out stays as it was.
        Some(b) => {
            check_budget(b)?;
            Some((
                b.max_tokens
                    .map(|_| max_tokens(core, b))
                    .unwrap_or(sweep.max_tokens),
                b.max_cost.or(sweep.max_cost),
                b.max_calls.or(sweep.max_calls),
            ))
        }
        None => None,
    };
    let mut check = sweep.clone();
    if let Some((t, c, n)) = new_budget {
        check.max_tokens = t;
        check.max_cost = c;
        check.max_calls = n;
    }
    if check.budget_spent() {
        return Err(Error::conflict(
            "budget",
            format!(
                "the sweep's budget is spent ({} tokens, ${:.4}, {} calls); resume with a larger budget",
                sweep.tokens_in + sweep.tokens_out,
                sweep.cost,
                sweep.calls
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
        crate::server::jobs::enqueue_lanes(core, row.id, pending).await?;
    }
    complete_if_done(core, row.id).await?;
    let row = store::get(&core.db, row.id).await?.unwrap_or(row);
    read_sweep(core, &row).await
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
    read_sweep(core, &row).await
}

/// Completes a sweep whose every run has ended (after a redirect or resume changed the plan).
pub(super) async fn complete_if_done(core: &Core, id: Uuid) -> Result<()> {
    let Some(row) = store::get(&core.db, id).await? else {
        return Ok(());
    };
    if row.is_guided() {
        // Between rounds a lane decides the next one (or ends the sweep).
        if row.status == "running" && row.done >= row.total {
            crate::server::jobs::push_lanes(core, id, 1).await?;
        }
        return Ok(());
    }
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
        let guided = |s: &Strategy| matches!(s, Strategy::Guided { .. });
        if guided(&s) != guided(&req.strategy) {
            return Err(Error::invalid(
                "strategy",
                "a sweep cannot switch to or from guided; stop it and start a new sweep",
            ));
        }
        req.strategy = s;
    }
    let guided = matches!(req.strategy, Strategy::Guided { .. });
    req.parameter_space = Some(r.parameter_space.clone());
    let req = with_seed(req);
    let ctx = Context::new(core, e).await?;
    let keep: HashSet<String> = store::started_hashes(&core.db, sweep.id)
        .await?
        .into_iter()
        .collect();
    let (pages_tx, pages) = tokio::sync::mpsc::channel(1);
    let planning = async {
        if guided {
            // The next round plans in the new space; the search state carries over.
            super::guided::check(&req)?;
            super::guided::Space::new(&ctx.experiment)?;
            let _ = pages_tx.send(store::PlanPage::Done).await;
            Ok(None)
        } else {
            let planner = Planner::new(&ctx, &req, sweep.id, &keep).await?;
            Ok::<_, Error>(feed(planner, pages_tx).await)
        }
    };
    let (failure, replanned) = tokio::join!(
        async { planning.await.unwrap_or_else(Some) },
        store::replan(&core.db, sweep.id, &r.parameter_space, &req, pages)
    );
    if let Some(e) = failure {
        return Err(e);
    }
    let Some((row, dropped, planned)) = replanned? else {
        return Err(Error::Internal("planning stopped before its end".into()));
    };
    emit_logged(core, vec![sweep_event(
        "experiment.redirected",
        &row,
        json!({"dropped": dropped, "added": planned.pending + planned.cached, "cached_at_planning": planned.cached}),
    )]).await;
    if row.status == "running" && planned.pending > 0 {
        crate::server::jobs::enqueue_lanes(core, row.id, planned.pending as usize).await?;
    }
    if planned.cached > 0
        && !ctx.scoring.is_empty()
        && let Err(err) =
            crate::server::scoring::jobs::start(core, &ctx.experiment, None, false, actor.user_id())
                .await
    {
        tracing::warn!(sweep = %row.id, error = %err, "could not start scoring the runs cached at redirection");
    }
    complete_if_done(core, row.id).await?;
    let row = store::get(&core.db, row.id).await?.unwrap_or(row);
    read_sweep(core, &row).await
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
    for (stage, c) in stages.iter_mut().zip(&run.config.stages) {
        stage.endpoint_id = c.endpoint_id;
        stage.model = c.model.clone();
        stage.system = c.system.clone();
        stage.user = c.user.clone();
        stage.params = c.params.clone();
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
        // The same items: the fork uses the source's dataset version.
        items: source.items.clone(),
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
    let checked =
        crate::server::experiments::check_experiment_with(core, &forked, source.id).await?;
    forked.scoring_config = checked.config;
    experiments::insert(&core.db, &forked, &checked.secrets, false).await?;
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
    core.leader_watch.notice(run.experiment_id, None, "mark");
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
        core.leader_watch.notice(run.experiment_id, None, "mark");
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
