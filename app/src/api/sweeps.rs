//! Server functions for sweeps: preview, start, steer (pause, resume, stop, redirect, fork),
//! the activity timeline and the home page's overview. Each calls one engine operation.

use leptos::prelude::*;
use uuid::Uuid;

#[cfg(feature = "ssr")]
use super::ssr;
use crate::error::AppError;
use engine::types::{
    Budget, EventPage, Experiment, ForkRequest, Overview, Redirect, Sweep, SweepPreview,
    SweepRequest,
};

#[server(prefix = "/sfn")]
pub async fn get_overview() -> Result<Overview, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::overview::get_overview(&core, &actor).await?)
}

/// The newest events (of one experiment, or all), filtered by comma-separated `types`.
#[server(prefix = "/sfn")]
pub async fn list_events(
    experiment_id: Option<Uuid>,
    types: String,
    limit: i64,
) -> Result<EventPage, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let types = (!types.is_empty()).then_some(types.as_str());
    Ok(engine::events::list_events(&core, &actor, experiment_id, types, None, limit, 0).await?)
}

/// The experiment's current sweep (the active one, else the newest), if it ever had one.
#[server(prefix = "/sfn")]
pub async fn current_sweep(experiment_id: Uuid) -> Result<Option<Sweep>, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    match engine::sweeps::current_sweep(&core, &actor, experiment_id).await {
        Ok(s) => Ok(Some(s)),
        Err(engine::Error::NotFound("sweep")) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[server(prefix = "/sfn", input = leptos::server_fn::codec::Json)]
pub async fn preview_sweep(
    experiment_id: Uuid,
    request: SweepRequest,
) -> Result<SweepPreview, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::sweeps::preview(&core, &actor, experiment_id, request).await?)
}

#[server(prefix = "/sfn", input = leptos::server_fn::codec::Json)]
pub async fn start_sweep(experiment_id: Uuid, request: SweepRequest) -> Result<Sweep, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::sweeps::start(&core, &actor, experiment_id, request).await?)
}

/// Pauses (`pause`) or stops (`stop`) the experiment's sweep.
#[server(prefix = "/sfn")]
pub async fn steer_sweep(experiment_id: Uuid, action: String) -> Result<Sweep, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(match action.as_str() {
        "pause" => engine::sweeps::pause(&core, &actor, experiment_id).await?,
        "stop" => engine::sweeps::stop(&core, &actor, experiment_id).await?,
        _ => return Err(engine::Error::invalid("action", "must be pause or stop").into()),
    })
}

/// Resumes a paused sweep, optionally with a new budget.
#[server(prefix = "/sfn", input = leptos::server_fn::codec::Json)]
pub async fn resume_sweep(experiment_id: Uuid, budget: Option<Budget>) -> Result<Sweep, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::sweeps::resume(&core, &actor, experiment_id, budget).await?)
}

/// Replaces what remains of the running sweep's parameter space.
#[server(prefix = "/sfn", input = leptos::server_fn::codec::Json)]
pub async fn redirect_sweep(experiment_id: Uuid, redirect: Redirect) -> Result<Sweep, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::sweeps::redirect(&core, &actor, experiment_id, redirect).await?)
}

/// A new experiment from one run's configuration, with changes.
#[server(prefix = "/sfn", input = leptos::server_fn::codec::Json)]
pub async fn fork_run(experiment_id: Uuid, fork: ForkRequest) -> Result<Experiment, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::sweeps::fork(&core, &actor, experiment_id, fork).await?)
}
