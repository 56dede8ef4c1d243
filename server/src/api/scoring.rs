//! Scoring: the leaderboard, human ratings, re-scoring jobs, and exports with their history.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::types::{
    ExportRecord, HumanScore, Leaderboard, RatingResult, RescoreRequest, ScoringJob,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiResult, ErrorBody};
use super::extract::{Authed, IdAndSegment, IdPath, JsonBody, QueryParams, parse_optional_json};
use super::sweeps::PageQuery;
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LeaderboardQuery {
    /// `score` (default), `scorer:<name>` (one of the experiment's scorers), `cost`,
    /// `latency` or `runs`; surrounding whitespace is ignored.
    #[serde(default)]
    #[param(
        pattern = "^[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*(?:score|cost|latency|runs|scorer:[\\s\\S]*)?[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$"
    )]
    pub sort: Option<String>,
    /// How many to return (1 to 500, default 50).
    #[serde(default = "default_board_limit")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: i64,
    /// How many to skip (0 to 1,000,000,000).
    #[serde(default)]
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: i64,
}

fn default_board_limit() -> i64 {
    50
}

/// Configurations ranked by weighted score (mean over items and repeats) with standard
/// deviation, a 95% bootstrap interval over items, run counts, tokens, cost and latency;
/// rejected configurations excluded. `comparison` says whether #1 really beats #2.
#[utoipa::path(get, path = "/api/v1/experiments/{id}/leaderboard", tag = "scoring",
    params(("id" = uuid::Uuid, Path), LeaderboardQuery),
    responses((status = 200, body = Leaderboard), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn leaderboard(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<LeaderboardQuery>,
) -> ApiResult<Json<Leaderboard>> {
    let query = engine::leaderboard::Query {
        sort: q.sort.as_deref(),
        limit: q.limit,
        offset: q.offset,
    };
    Ok(Json(
        engine::leaderboard::get_leaderboard(&s.core, &a, id, query).await?,
    ))
}

/// Rates a run: `{"thumbs": "up"}` or `{"stars": 4}` (optionally `scorer`, `comment`). Rating
/// again replaces your rating; the run's score is the mean over raters.
#[utoipa::path(post, path = "/api/v1/runs/{id}/score", tag = "scoring", params(("id" = uuid::Uuid, Path)),
    request_body = HumanScore,
    responses((status = 201, body = RatingResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rate_run(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(r): JsonBody<HumanScore>,
) -> ApiResult<(StatusCode, Json<RatingResult>)> {
    Ok((
        StatusCode::CREATED,
        Json(engine::scoring::human::rate_run(&s.core, &a, id, r).await?),
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScorerQuery {
    /// The human_rating scorer (needed only when the experiment has several).
    #[serde(default)]
    pub scorer: Option<String>,
}

/// Withdraws your rating of a run.
#[utoipa::path(delete, path = "/api/v1/runs/{id}/score", tag = "scoring", params(("id" = uuid::Uuid, Path), ScorerQuery),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn withdraw_rating(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<ScorerQuery>,
) -> ApiResult<StatusCode> {
    engine::scoring::human::withdraw_rating(&s.core, &a, id, q.scorer.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Re-scores the experiment's runs in the background: missing, outdated and failed scores
/// (all with `force`), for every scorer or the ones named. No LLM calls but the scorers' own
/// (judges, embeddings), which go through the cache. The body may be empty or `null`.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/rescore", tag = "scoring", params(("id" = uuid::Uuid, Path)),
    request_body(content = Option<RescoreRequest>),
    responses((status = 202, body = ScoringJob), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn rescore(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ScoringJob>)> {
    let r: RescoreRequest = parse_optional_json(&body)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(engine::scoring::jobs::request(&s.core, &a, id, r).await?),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct ScoringJobPage {
    pub jobs: Vec<ScoringJob>,
    pub total: i64,
}

/// The experiment's re-scoring jobs, newest first.
#[utoipa::path(get, path = "/api/v1/experiments/{id}/scoring-jobs", tag = "scoring",
    params(("id" = uuid::Uuid, Path), PageQuery),
    responses((status = 200, body = ScoringJobPage), (status = 404, body = ErrorBody)))]
pub async fn list_scoring_jobs(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<ScoringJobPage>> {
    let (jobs, total) =
        engine::scoring::jobs::list_jobs(&s.core, &a, id, q.limit, q.offset).await?;
    Ok(Json(ScoringJobPage { jobs, total }))
}

#[utoipa::path(get, path = "/api/v1/scoring-jobs/{id}", tag = "scoring", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ScoringJob), (status = 404, body = ErrorBody)))]
pub async fn get_scoring_job(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<ScoringJob>> {
    Ok(Json(engine::scoring::jobs::get_job(&s.core, &a, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Export this configuration instead of the best one: the `config_key` of one with runs in
    /// the experiment.
    #[serde(default)]
    pub config_key: Option<String>,
}

/// What an export is: `best` (JSON), `env` (a .env snippet), `yaml`, or `report` (markdown).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Only documents the values the `{format}` segment takes.
pub enum ExportFormat {
    Best,
    Env,
    Yaml,
    Report,
}

fn download(export: engine::exports::Export) -> Response {
    let mut response = export.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(export.content_type),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{}\"", export.filename)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(Ok(v)) = export.id.map(|id| HeaderValue::from_str(&id.to_string())) {
        headers.insert("x-export-id", v);
    }
    response
}

/// The best configuration (or `config_key`'s) as `best` (JSON), `env` (a .env snippet),
/// `yaml`, or `report` (markdown: summary, leaderboard with intervals, parameter effects,
/// cost and tokens, the winning prompts). The best is the highest-scoring approved
/// configuration, else the leader. Recorded in the export history; never contains secrets.
#[utoipa::path(get, path = "/api/v1/experiments/{id}/export/{format}", tag = "scoring",
    params(("id" = uuid::Uuid, Path), ("format" = inline(ExportFormat), Path), ExportQuery),
    responses((status = 200, description = "The export (JSON, text, YAML or markdown)", content_type = "text/plain"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn export(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdAndSegment(id, format): IdAndSegment,
    QueryParams(q): QueryParams<ExportQuery>,
) -> ApiResult<Response> {
    Ok(download(
        engine::exports::export(&s.core, &a, id, &format, q.config_key.as_deref()).await?,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct ExportPage {
    pub exports: Vec<ExportRecord>,
    pub total: i64,
}

/// The experiment's export history, newest first.
#[utoipa::path(get, path = "/api/v1/experiments/{id}/exports", tag = "scoring",
    params(("id" = uuid::Uuid, Path), PageQuery),
    responses((status = 200, body = ExportPage), (status = 404, body = ErrorBody)))]
pub async fn experiment_exports(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<ExportPage>> {
    let (exports, total) =
        engine::exports::list_exports(&s.core, &a, id, false, q.limit, q.offset).await?;
    Ok(Json(ExportPage { exports, total }))
}

/// The project's export history (kept when an experiment is deleted), newest first.
#[utoipa::path(get, path = "/api/v1/projects/{id}/exports", tag = "scoring",
    params(("id" = uuid::Uuid, Path), PageQuery),
    responses((status = 200, body = ExportPage), (status = 404, body = ErrorBody)))]
pub async fn project_exports(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<ExportPage>> {
    let (exports, total) =
        engine::exports::list_exports(&s.core, &a, id, true, q.limit, q.offset).await?;
    Ok(Json(ExportPage { exports, total }))
}

/// A past export, exactly as it was exported.
#[utoipa::path(get, path = "/api/v1/exports/{id}", tag = "scoring", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "The export as it was", content_type = "text/plain"),
              (status = 404, body = ErrorBody)))]
pub async fn get_export(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    Ok(download(
        engine::exports::get_export(&s.core, &a, id).await?,
    ))
}

/// A judge compares two configurations' outputs item by item (A vs B, in a random order per
/// item): win rate with a 95% Wilson interval and an exact sign test. Judge calls are cached.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/compare", tag = "scoring", params(("id" = uuid::Uuid, Path)),
    request_body = engine::types::PairwiseRequest,
    responses((status = 200, body = engine::types::PairwiseResult), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn compare(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(r): JsonBody<engine::types::PairwiseRequest>,
) -> ApiResult<Json<engine::types::PairwiseResult>> {
    Ok(Json(
        engine::scoring::pairwise::compare(&s.core, &a, id, r).await?,
    ))
}

/// Tries a scorer config on one run before saving it: checked as a save would be, scored,
/// nothing stored (but the cache entries of the calls it made).
#[utoipa::path(post, path = "/api/v1/experiments/{id}/scorers/test", tag = "scoring", params(("id" = uuid::Uuid, Path)),
    request_body = engine::types::ScorerTest,
    responses((status = 200, body = engine::types::Score), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn try_scorer(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(r): JsonBody<engine::types::ScorerTest>,
) -> ApiResult<Json<engine::types::Score>> {
    Ok(Json(
        engine::scoring::trial::try_scorer(&s.core, &a, id, r).await?,
    ))
}
