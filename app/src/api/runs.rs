//! Server functions for reading runs and comparing them: a run's page, two runs or two
//! configurations side by side, the pairwise judge, forgetting a run's cache entries.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "ssr")]
use super::ssr;
use crate::error::AppError;
use engine::types::{
    ConfigComparison, Experiment, PairwiseRequest, PairwiseResult, RunComparison, RunDetail,
};

/// What the run page shows: the run whole, its experiment and its configuration's label.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunPage {
    pub detail: RunDetail,
    pub experiment: Experiment,
    pub label: String,
}

#[server(prefix = "/sfn")]
pub async fn get_run_page(id: Uuid) -> Result<RunPage, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let detail = engine::runs::get_run(&core, &actor, id).await?;
    let experiment =
        engine::experiments::get_experiment(&core, &actor, detail.run.experiment_id).await?;
    let label = engine::leaderboard::label(&detail.run.config, &experiment);
    Ok(RunPage {
        detail,
        experiment,
        label,
    })
}

/// Forgets the cached responses the run used; answers how many entries went.
#[server(prefix = "/sfn")]
pub async fn forget_run_cache(run_id: Uuid) -> Result<u64, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::runs::invalidate_run_cache(&core, &actor, run_id).await?)
}

#[server(prefix = "/sfn")]
pub async fn compare_runs(a: Uuid, b: Uuid) -> Result<RunComparison, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::runs::compare_runs(&core, &actor, a, b).await?)
}

#[server(prefix = "/sfn")]
pub async fn compare_configs(
    experiment_id: Uuid,
    a: String,
    b: String,
    limit: i64,
    offset: i64,
) -> Result<ConfigComparison, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::runs::compare_configs(&core, &actor, experiment_id, &a, &b, limit, offset).await?)
}

/// The pairwise judge over two configurations (`POST …/compare`).
#[server(prefix = "/sfn", input = leptos::server_fn::codec::Json)]
pub async fn judge_pair(
    experiment_id: Uuid,
    request: PairwiseRequest,
) -> Result<PairwiseResult, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::scoring::pairwise::compare(&core, &actor, experiment_id, request).await?)
}
