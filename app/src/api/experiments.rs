//! Server functions for experiments: read, create, edit, sample data, runs, scorers and the
//! leaderboard. Each calls one engine operation.

use leptos::prelude::*;
use uuid::Uuid;

#[cfg(feature = "ssr")]
use super::ssr;
use crate::error::AppError;
use engine::types::{
    EndpointTest, Experiment, ExperimentUpdate, ItemPage, Leaderboard, NewExperiment, NewRun,
    ParsedSamples, RunBatch, RunSummaryPage, SampleFormat, Score, ScorerTest,
};

#[server(prefix = "/sfn")]
pub async fn get_experiment(id: Uuid) -> Result<Experiment, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::experiments::get_experiment(&core, &actor, id).await?)
}

#[server(prefix = "/sfn", input = leptos::server_fn::codec::Json)]
pub async fn create_experiment(new: NewExperiment) -> Result<Experiment, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::experiments::create_experiment(&core, &actor, new).await?)
}

#[server(prefix = "/sfn", input = leptos::server_fn::codec::Json)]
pub async fn update_experiment(id: Uuid, update: ExperimentUpdate) -> Result<Experiment, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::experiments::update_experiment(&core, &actor, id, update).await?)
}

/// A page of the experiment's items (optionally only those with a tag or in a split).
#[server(prefix = "/sfn")]
pub async fn list_items(
    id: Uuid,
    limit: i64,
    offset: i64,
    tag: Option<String>,
    split: Option<String>,
) -> Result<ItemPage, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let q = engine::datasets::ItemQuery {
        limit,
        offset,
        tag,
        split,
    };
    Ok(engine::datasets::list_items(&core, &actor, id, q).await?)
}

/// Reads pasted or uploaded text as sample items (nothing is stored).
#[server(prefix = "/sfn", input = leptos::server_fn::codec::Json)]
pub async fn parse_samples(
    format: Option<SampleFormat>,
    content: String,
) -> Result<ParsedSamples, AppError> {
    ssr::actor().await?;
    Ok(engine::samples::parse_samples(format, &content))
}

/// The models an endpoint offers (failures are in the answer).
#[server(prefix = "/sfn")]
pub async fn list_models(endpoint_id: Uuid) -> Result<EndpointTest, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::endpoints::list_models(&core, &actor, endpoint_id).await?)
}

/// Runs one configuration over the experiment's items (JSON body: per-stage choices).
#[server(prefix = "/sfn", input = leptos::server_fn::codec::Json)]
pub async fn run_experiment(run: NewRun) -> Result<RunBatch, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::runs::run_configuration(&core, &actor, run).await?)
}

/// A page of the experiment's runs with labels, scores and outputs, filtered and sorted as
/// `query` says (see `RunListQuery`).
#[server(prefix = "/sfn", input = leptos::server_fn::codec::Json)]
pub async fn list_runs(
    experiment_id: Uuid,
    query: crate::types::RunListQuery,
) -> Result<RunSummaryPage, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    fn some(s: &str) -> Option<&str> {
        (!s.is_empty()).then_some(s)
    }
    let filter = engine::runs::RunFilter {
        status: some(&query.status),
        config_key: some(&query.config_key),
        item_id: some(&query.item_id),
        score_by: some(&query.score_by),
        min_score: query.min_score,
        max_score: query.max_score,
    };
    Ok(engine::runs::list_run_summaries(
        &core,
        &actor,
        experiment_id,
        filter,
        &query.sort,
        query.limit,
        query.offset,
    )
    .await?)
}

/// The experiment's leaderboard (top 20), ordered by `sort` (empty: the weighted score).
#[server(prefix = "/sfn")]
pub async fn get_leaderboard(experiment_id: Uuid, sort: String) -> Result<Leaderboard, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let query = engine::leaderboard::Query {
        sort: (!sort.is_empty()).then_some(sort.as_str()),
        limit: 20,
        offset: 0,
    };
    Ok(engine::leaderboard::get_leaderboard(&core, &actor, experiment_id, query).await?)
}

/// Every ranked configuration of the experiment as (config_key, label), best first (for pickers).
#[server(prefix = "/sfn")]
pub async fn config_choices(experiment_id: Uuid) -> Result<Vec<(String, String)>, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let query = engine::leaderboard::Query {
        sort: None,
        limit: engine::leaderboard::PAGE_MAX,
        offset: 0,
    };
    let board = engine::leaderboard::get_leaderboard(&core, &actor, experiment_id, query).await?;
    Ok(board
        .entries
        .into_iter()
        .map(|e| (e.config_key, e.label))
        .collect())
}

/// Tries a scorer config on one run before it is saved (nothing is stored).
#[server(prefix = "/sfn", input = leptos::server_fn::codec::Json)]
pub async fn try_scorer(experiment_id: Uuid, test: ScorerTest) -> Result<Score, AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    Ok(engine::scoring::trial::try_scorer(&core, &actor, experiment_id, test).await?)
}

/// Rates a run for a human_rating scorer: `thumbs` ("up"/"down") or `stars` (1–5).
#[server(prefix = "/sfn")]
pub async fn rate_run(
    run_id: Uuid,
    scorer: String,
    thumbs: Option<String>,
    stars: Option<i64>,
    comment: Option<String>,
) -> Result<engine::types::RatingResult, AppError> {
    use engine::types::Thumb;
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    let thumbs = match thumbs.as_deref() {
        None => None,
        Some("up") => Some(Thumb::Up),
        Some("down") => Some(Thumb::Down),
        Some(_) => return Err(engine::Error::invalid("thumbs", "must be up or down").into()),
    };
    let rating = engine::types::HumanScore {
        thumbs,
        stars,
        scorer: (!scorer.is_empty()).then_some(scorer),
        comment: comment.filter(|c| !c.trim().is_empty()),
    };
    Ok(engine::scoring::human::rate_run(&core, &actor, run_id, rating).await?)
}

/// Approves (`approved`) or rejects (`rejected`) the configuration of a run.
#[server(prefix = "/sfn")]
pub async fn mark_configuration(run_id: Uuid, mark: String) -> Result<(), AppError> {
    let (core, actor) = (ssr::core()?, ssr::actor().await?);
    if !matches!(mark.as_str(), "approved" | "rejected") {
        return Err(engine::Error::invalid("mark", "must be approved or rejected").into());
    }
    let note = engine::types::MarkRequest::default();
    engine::sweeps::mark(&core, &actor, run_id, &mark, note).await?;
    Ok(())
}
