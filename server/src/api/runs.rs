//! `/api/v1/runs`: execute a configuration ad hoc, read a run, forget its cache.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use engine::types::{NewRun, RunBatch, RunComparison, RunDetail};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiResult, ErrorBody};
use super::experiments::Removed;
use super::extract::{Authed, IdPath, JsonBody, QueryParams};
use crate::state::AppState;

/// Executes one configuration over the experiment's sample items (× repeats), stage by stage,
/// answering identical calls from the cache. Returns when every run has ended.
#[utoipa::path(post, path = "/api/v1/runs", tag = "runs", request_body = NewRun,
    responses((status = 201, body = RunBatch), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_runs(
    State(s): State<AppState>,
    Authed(a): Authed,
    JsonBody(r): JsonBody<NewRun>,
) -> ApiResult<(StatusCode, Json<RunBatch>)> {
    Ok((
        StatusCode::CREATED,
        Json(engine::runs::run_configuration(&s.core, &a, r).await?),
    ))
}

/// A run with its stage results (rendered prompts, raw responses, tokens, latency, cache use).
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = RunDetail), (status = 404, body = ErrorBody)))]
pub async fn get_run(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<RunDetail>> {
    Ok(Json(engine::runs::get_run(&s.core, &a, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CompareQuery {
    /// The first run (before).
    pub a: uuid::Uuid,
    /// The second run (after), of the same experiment.
    pub b: uuid::Uuid,
}

/// Two runs of one experiment side by side: both whole, the final outputs and each stage's
/// prompt diffed word by word, the scores with their difference, the settings that differ.
#[utoipa::path(get, path = "/api/v1/runs/compare", tag = "runs", params(CompareQuery),
    responses((status = 200, body = RunComparison), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn compare_runs(
    State(s): State<AppState>,
    Authed(a): Authed,
    QueryParams(q): QueryParams<CompareQuery>,
) -> ApiResult<Json<RunComparison>> {
    Ok(Json(
        engine::runs::compare_runs(&s.core, &a, q.a, q.b).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConfigCompareQuery {
    /// The first configuration's `config_key` (64 hex digits).
    #[param(pattern = "^[0-9A-Fa-f]{64}$")]
    pub a: String,
    /// The second configuration's `config_key`, another one of the same experiment.
    #[param(pattern = "^[0-9A-Fa-f]{64}$")]
    pub b: String,
    /// Item pairs per page, 1 to 100 (default 20).
    #[serde(default = "twenty")]
    #[param(minimum = 1, maximum = 100)]
    pub limit: i64,
    /// How many to skip (0 to 1,000,000,000).
    #[serde(default)]
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: i64,
}

fn twenty() -> i64 {
    20
}

/// Two configurations of one experiment side by side: their summaries, the settings that
/// differ, each scorer's mean with the difference, the paired test over shared items (a − b),
/// and a page of items with both outputs diffed word by word.
#[utoipa::path(get, path = "/api/v1/experiments/{id}/configs/compare", tag = "runs",
    params(("id" = uuid::Uuid, Path), ConfigCompareQuery),
    responses((status = 200, body = engine::types::ConfigComparison), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn compare_configs(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<ConfigCompareQuery>,
) -> ApiResult<Json<engine::types::ConfigComparison>> {
    Ok(Json(
        engine::runs::compare_configs(&s.core, &a, id, &q.a, &q.b, q.limit, q.offset).await?,
    ))
}

/// Forgets the cached responses this run used.
#[utoipa::path(delete, path = "/api/v1/runs/{id}/cache", tag = "runs", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Removed), (status = 404, body = ErrorBody)))]
pub async fn invalidate_cache(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Removed>> {
    Ok(Json(Removed {
        removed: engine::runs::invalidate_run_cache(&s.core, &a, id).await?,
    }))
}
