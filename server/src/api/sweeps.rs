//! Sweeps and steering: start, preview, pause, resume, stop, redirect, fork, approve, reject,
//! and the activity timeline.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use engine::types::{
    Budget, ConfigMark, EventPage, Experiment, ForkRequest, MarkRequest, Redirect,
    SuggestionRequest, SuggestionResult, Sweep, SweepPreview, SweepRequest,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiResult, ErrorBody};
use super::extract::{Authed, IdPath, JsonBody, QueryParams, parse_optional_json};
use crate::state::AppState;

/// Plans a sweep and starts it. Grid and random: every run is persisted before any call; runs
/// the cache answers are `cached` at once. Guided: planned round by round from the results so
/// far. Progress arrives as events.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/sweep", tag = "sweeps", params(("id" = uuid::Uuid, Path)),
    request_body = SweepRequest,
    responses((status = 201, body = Sweep), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn start_sweep(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(r): JsonBody<SweepRequest>,
) -> ApiResult<(StatusCode, Json<Sweep>)> {
    Ok((
        StatusCode::CREATED,
        Json(engine::sweeps::start(&s.core, &a, id, r).await?),
    ))
}

/// What a sweep would do before spending anything: runs, calls, how many are already cached,
/// estimated tokens and cost.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/sweep/preview", tag = "sweeps", params(("id" = uuid::Uuid, Path)),
    request_body = SweepRequest,
    responses((status = 200, body = SweepPreview), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn preview_sweep(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(r): JsonBody<SweepRequest>,
) -> ApiResult<Json<SweepPreview>> {
    Ok(Json(engine::sweeps::preview(&s.core, &a, id, r).await?))
}

/// Ask/tell for a running guided sweep: configurations to try next (before its own search;
/// with `search: agent` they are all it tries). Each is raced like any other; read results
/// on the leaderboard and suggest more.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/sweep/suggestions", tag = "sweeps", params(("id" = uuid::Uuid, Path)),
    request_body = SuggestionRequest,
    responses((status = 202, body = SuggestionResult), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn suggest(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(r): JsonBody<SuggestionRequest>,
) -> ApiResult<(StatusCode, Json<SuggestionResult>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(engine::sweeps::suggest(&s.core, &a, id, r).await?),
    ))
}

/// The experiment's current sweep: the running or paused one, else the newest.
#[utoipa::path(get, path = "/api/v1/experiments/{id}/sweep", tag = "sweeps", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Sweep), (status = 404, body = ErrorBody)))]
pub async fn current_sweep(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Sweep>> {
    Ok(Json(engine::sweeps::current_sweep(&s.core, &a, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many to return (1 to 1000, default 100).
    #[serde(default = "super::extract::default_limit")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: i64,
    /// How many to skip (0 to 1,000,000,000).
    #[serde(default)]
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SweepPage {
    pub sweeps: Vec<Sweep>,
    pub total: i64,
}

/// The experiment's sweeps, newest first.
#[utoipa::path(get, path = "/api/v1/experiments/{id}/sweeps", tag = "sweeps", params(("id" = uuid::Uuid, Path), PageQuery),
    responses((status = 200, body = SweepPage), (status = 404, body = ErrorBody)))]
pub async fn list_sweeps(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<SweepPage>> {
    let (sweeps, total) = engine::sweeps::list_sweeps(&s.core, &a, id, q.limit, q.offset).await?;
    Ok(Json(SweepPage { sweeps, total }))
}

#[utoipa::path(get, path = "/api/v1/sweeps/{id}", tag = "sweeps", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Sweep), (status = 404, body = ErrorBody)))]
pub async fn get_sweep(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Sweep>> {
    Ok(Json(engine::sweeps::get_sweep(&s.core, &a, id).await?))
}

/// Pauses the running sweep: nothing new starts; calls in flight finish and are recorded.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/pause", tag = "sweeps", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Sweep), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn pause(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Sweep>> {
    Ok(Json(engine::sweeps::pause(&s.core, &a, id).await?))
}

#[derive(Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    /// A new budget (for a sweep paused because its budget was spent).
    #[serde(default)]
    pub budget: Option<Budget>,
}

/// Resumes a paused sweep (optionally with a larger budget). The body may be empty or `null`.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/resume", tag = "sweeps", params(("id" = uuid::Uuid, Path)),
    request_body(content = Option<ResumeRequest>),
    responses((status = 200, body = Sweep), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn resume(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    body: Bytes,
) -> ApiResult<Json<Sweep>> {
    let r: ResumeRequest = parse_optional_json(&body)?;
    Ok(Json(
        engine::sweeps::resume(&s.core, &a, id, r.budget).await?,
    ))
}

/// Stops the sweep: unstarted runs are dropped; calls in flight finish and are recorded.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/stop", tag = "sweeps", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Sweep), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn stop(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Sweep>> {
    Ok(Json(engine::sweeps::stop(&s.core, &a, id).await?))
}

/// Replaces what remains of the running (or paused) sweep with a new parameter space; runs
/// already started or ended are kept.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/redirect", tag = "sweeps", params(("id" = uuid::Uuid, Path)),
    request_body = Redirect,
    responses((status = 200, body = Sweep), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn redirect(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(r): JsonBody<Redirect>,
) -> ApiResult<Json<Sweep>> {
    Ok(Json(engine::sweeps::redirect(&s.core, &a, id, r).await?))
}

/// A new experiment from one run's configuration, with modifications.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/fork", tag = "sweeps", params(("id" = uuid::Uuid, Path)),
    request_body = ForkRequest,
    responses((status = 201, body = Experiment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn fork(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(r): JsonBody<ForkRequest>,
) -> ApiResult<(StatusCode, Json<Experiment>)> {
    Ok((
        StatusCode::CREATED,
        Json(engine::sweeps::fork(&s.core, &a, id, r).await?),
    ))
}

fn mark_body(body: &Bytes) -> Result<MarkRequest, super::error::ApiError> {
    parse_optional_json(body)
}

/// Approves the run's configuration as good enough. The body (`{"note": …}`) may be empty or
/// `null`.
#[utoipa::path(post, path = "/api/v1/runs/{id}/approve", tag = "sweeps", params(("id" = uuid::Uuid, Path)),
    request_body(content = Option<MarkRequest>),
    responses((status = 200, body = ConfigMark), (status = 404, body = ErrorBody)))]
pub async fn approve(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    body: Bytes,
) -> ApiResult<Json<ConfigMark>> {
    let m = mark_body(&body)?;
    Ok(Json(
        engine::sweeps::mark(&s.core, &a, id, "approved", m).await?,
    ))
}

/// Rejects the run's configuration: it is excluded from rankings.
#[utoipa::path(post, path = "/api/v1/runs/{id}/reject", tag = "sweeps", params(("id" = uuid::Uuid, Path)),
    request_body(content = Option<MarkRequest>),
    responses((status = 200, body = ConfigMark), (status = 404, body = ErrorBody)))]
pub async fn reject(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    body: Bytes,
) -> ApiResult<Json<ConfigMark>> {
    let m = mark_body(&body)?;
    Ok(Json(
        engine::sweeps::mark(&s.core, &a, id, "rejected", m).await?,
    ))
}

/// Clears the approval or rejection of the run's configuration.
#[utoipa::path(delete, path = "/api/v1/runs/{id}/mark", tag = "sweeps", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn clear_mark(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    engine::sweeps::clear_mark(&s.core, &a, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Approved and rejected configurations of the experiment.
#[utoipa::path(get, path = "/api/v1/experiments/{id}/marks", tag = "sweeps", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<ConfigMark>), (status = 404, body = ErrorBody)))]
pub async fn list_marks(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Vec<ConfigMark>>> {
    Ok(Json(engine::sweeps::list_marks(&s.core, &a, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Comma-separated event types (e.g. `run.failed,budget.exhausted`).
    #[serde(default, rename = "type")]
    #[param(
        pattern = "^[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*(?:experiment\\.started|experiment\\.paused|experiment\\.resumed|experiment\\.redirected|experiment\\.stopped|experiment\\.completed|experiment\\.forked|run\\.started|run\\.completed|run\\.cached|run\\.failed|stage\\.completed|budget\\.exhausted|configuration\\.approved|configuration\\.rejected|new_best_found|sweep\\.round|configuration\\.promoted|configuration\\.pruned|prompt\\.proposed|prompt\\.proposal_failed|scoring\\.started|scoring\\.completed|scoring\\.failed|human_needed)?[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*(?:,[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*(?:experiment\\.started|experiment\\.paused|experiment\\.resumed|experiment\\.redirected|experiment\\.stopped|experiment\\.completed|experiment\\.forked|run\\.started|run\\.completed|run\\.cached|run\\.failed|stage\\.completed|budget\\.exhausted|configuration\\.approved|configuration\\.rejected|new_best_found|sweep\\.round|configuration\\.promoted|configuration\\.pruned|prompt\\.proposed|prompt\\.proposal_failed|scoring\\.started|scoring\\.completed|scoring\\.failed|human_needed)?[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*)*$"
    )]
    pub event_type: Option<String>,
    /// Only events after this id, oldest first; otherwise newest first.
    #[serde(default)]
    pub after: Option<i64>,
    /// How many to return (1 to 1000, default 100).
    #[serde(default = "super::extract::default_limit")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: i64,
    /// How many to skip (0 to 1,000,000,000).
    #[serde(default)]
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: i64,
}

/// The experiment's activity timeline.
#[utoipa::path(get, path = "/api/v1/experiments/{id}/events", tag = "events", params(("id" = uuid::Uuid, Path), EventQuery),
    responses((status = 200, body = EventPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn experiment_events(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    Ok(Json(
        engine::events::list_events(
            &s.core,
            &a,
            Some(id),
            q.event_type.as_deref(),
            q.after,
            q.limit,
            q.offset,
        )
        .await?,
    ))
}

/// Asks a person to look: a `human_needed` event (reason, context) on the experiment's
/// timeline, its live views and webhooks. MCP's `request_human` does the same.
#[utoipa::path(post, path = "/api/v1/experiments/{id}/human-needed", tag = "events", params(("id" = uuid::Uuid, Path)),
    request_body = engine::types::HumanNeeded,
    responses((status = 201, body = engine::types::Event), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn human_needed(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(r): JsonBody<engine::types::HumanNeeded>,
) -> ApiResult<(axum::http::StatusCode, Json<engine::types::Event>)> {
    Ok((
        axum::http::StatusCode::CREATED,
        Json(engine::events::request_human(&s.core, &a, id, r).await?),
    ))
}

/// The activity timeline across all experiments.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventQuery),
    responses((status = 200, body = EventPage), (status = 422, body = ErrorBody)))]
pub async fn all_events(
    State(s): State<AppState>,
    Authed(a): Authed,
    QueryParams(q): QueryParams<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    Ok(Json(
        engine::events::list_events(
            &s.core,
            &a,
            None,
            q.event_type.as_deref(),
            q.after,
            q.limit,
            q.offset,
        )
        .await?,
    ))
}

/// The dashboard's home in one read: totals over every run (runs, tokens, cost, cache hit
/// rate), the sweeps running or paused with their progress, the latest new bests and the
/// experiments changed most recently.
#[utoipa::path(get, path = "/api/v1/overview", tag = "events",
    responses((status = 200, body = engine::types::Overview), (status = 401, body = ErrorBody)))]
pub async fn overview(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<engine::types::Overview>> {
    Ok(Json(engine::overview::get_overview(&s.core, &a).await?))
}
