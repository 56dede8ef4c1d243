//! `/api/v1/experiments`: experiments, sample import, their runs and cache.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use engine::types::{
    Experiment, ExperimentUpdate, NewExperiment, ParsedSamples, SampleFormat, SampleImport,
    SampleParse, ScoredRun,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Authed, IdPath, JsonBody, QueryParams, parse_json};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExperimentQuery {
    /// Only this project's experiments.
    pub project_id: Option<Uuid>,
    /// 1 to 500 (default 100).
    #[serde(default = "super::extract::default_limit")]
    pub limit: i64,
    #[serde(default)]
    pub offset: i64,
}

#[utoipa::path(get, path = "/api/v1/experiments", tag = "experiments", params(ExperimentQuery),
    responses((status = 200, body = [Experiment]), (status = 400, body = ErrorBody)))]
pub async fn list_experiments(
    State(s): State<AppState>,
    Authed(a): Authed,
    QueryParams(q): QueryParams<ExperimentQuery>,
) -> ApiResult<Json<Vec<Experiment>>> {
    Ok(Json(
        engine::experiments::list_experiments(&s.core, &a, q.project_id, q.limit, q.offset).await?,
    ))
}

/// Creates an experiment. Templates, endpoints, models and parameters are validated now;
/// errors name the stage and field (e.g. `pipeline_stages[1].user`).
#[utoipa::path(post, path = "/api/v1/experiments", tag = "experiments", request_body = NewExperiment,
    responses((status = 201, body = Experiment), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_experiment(
    State(s): State<AppState>,
    Authed(a): Authed,
    JsonBody(e): JsonBody<NewExperiment>,
) -> ApiResult<(StatusCode, Json<Experiment>)> {
    Ok((
        StatusCode::CREATED,
        Json(engine::experiments::create_experiment(&s.core, &a, e).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/experiments/{id}", tag = "experiments", params(("id" = Uuid, Path)),
    responses((status = 200, body = Experiment), (status = 404, body = ErrorBody)))]
pub async fn get_experiment(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Experiment>> {
    Ok(Json(
        engine::experiments::get_experiment(&s.core, &a, id).await?,
    ))
}

/// Changes an experiment; absent fields are kept and the result is validated as a whole.
#[utoipa::path(put, path = "/api/v1/experiments/{id}", tag = "experiments", params(("id" = Uuid, Path)),
    request_body = ExperimentUpdate,
    responses((status = 200, body = Experiment), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_experiment(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(u): JsonBody<ExperimentUpdate>,
) -> ApiResult<Json<Experiment>> {
    Ok(Json(
        engine::experiments::update_experiment(&s.core, &a, id, u).await?,
    ))
}

/// Deletes an experiment with its runs.
#[utoipa::path(delete, path = "/api/v1/experiments/{id}", tag = "experiments", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_experiment(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    engine::experiments::delete_experiment(&s.core, &a, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// For raw CSV / NDJSON bodies: append to the current items instead of replacing them.
    #[serde(default)]
    pub append: bool,
}

/// Imports sample data, replacing the items (or appending). Send either JSON
/// (`{"format": "csv"|"jsonl", "content": "…", "append": false}`), or the file itself as
/// `text/csv` or `application/x-ndjson` (`curl --data-binary @items.csv`, `?append=true`).
/// A bad row is a 422 naming its line.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/samples", tag = "experiments",
    params(("id" = Uuid, Path), ImportQuery),
    request_body(content(
        (SampleImport = "application/json"),
        (String = "text/csv"),
        (String = "application/x-ndjson"),
    )),
    responses((status = 200, body = Experiment), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn import_samples(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<ImportQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<Experiment>> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let raw = |format| -> ApiResult<SampleImport> {
        let content = String::from_utf8(body.to_vec()).map_err(|_| {
            ApiError::bad_request(Some("body".into()), "the file must be UTF-8 text")
        })?;
        Ok(SampleImport {
            format,
            content,
            append: q.append,
        })
    };
    let import = match content_type.as_str() {
        "application/json" => parse_json::<SampleImport>(&body)?,
        "text/csv" => raw(SampleFormat::Csv)?,
        "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines" => {
            raw(SampleFormat::Jsonl)?
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send application/json, text/csv or application/x-ndjson",
            ));
        }
    };
    Ok(Json(
        engine::experiments::import_samples(&s.core, &a, id, import).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    /// pending, running, completed, failed or cached.
    pub status: Option<String>,
    /// Only this configuration's runs (its `config_key`).
    pub config_key: Option<String>,
    /// created_at, -created_at (default), duration_ms, -duration_ms, -tokens, -cost, item.
    #[serde(default)]
    pub sort: String,
    /// 1 to 1000 (default 100).
    #[serde(default = "super::extract::default_limit")]
    pub limit: i64,
    #[serde(default)]
    pub offset: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RunPage {
    /// Each run with its current scores and weighted score.
    pub runs: Vec<ScoredRun>,
    /// All runs matching the filter.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[utoipa::path(get, path = "/api/v1/experiments/{id}/runs", tag = "runs", params(("id" = Uuid, Path), RunQuery),
    responses((status = 200, body = RunPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_runs(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<RunQuery>,
) -> ApiResult<Json<RunPage>> {
    let (runs, total) = engine::runs::list_runs(
        &s.core,
        &a,
        id,
        engine::runs::RunFilter {
            status: q.status.as_deref(),
            config_key: q.config_key.as_deref(),
        },
        &q.sort,
        q.limit,
        q.offset,
    )
    .await?;
    let runs = engine::runs::with_scores(&s.core, id, runs).await?;
    Ok(Json(RunPage {
        runs,
        total,
        limit: q.limit,
        offset: q.offset,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Removed {
    /// How many cache entries were removed.
    pub removed: u64,
}

/// Forgets every cached response the experiment's runs used.
#[utoipa::path(delete, path = "/api/v1/experiments/{id}/cache", tag = "runs", params(("id" = Uuid, Path)),
    responses((status = 200, body = Removed), (status = 404, body = ErrorBody)))]
pub async fn invalidate_cache(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Removed>> {
    Ok(Json(Removed {
        removed: engine::runs::invalidate_experiment_cache(&s.core, &a, id).await?,
    }))
}

/// Reads text as sample items without storing anything: CSV, JSON lines or a JSON array
/// (`format` detected when absent). Every bad line is reported with its line number (the
/// first 100, with the total), and the good lines are returned as items.
#[utoipa::path(post, path = "/api/v1/samples/parse", tag = "experiments", request_body = SampleParse,
    responses((status = 200, body = ParsedSamples), (status = 401, body = ErrorBody)))]
pub async fn parse_samples(
    Authed(_a): Authed,
    JsonBody(p): JsonBody<SampleParse>,
) -> ApiResult<Json<ParsedSamples>> {
    Ok(Json(engine::samples::parse_samples(p.format, &p.content)))
}
