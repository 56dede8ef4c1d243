//! `/api/v1/projects`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use engine::types::{NewProject, Project, ProjectDetail, ProjectUpdate};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiResult, ErrorBody};
use super::extract::{Authed, IdPath, JsonBody, QueryParams};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// How many to return (1 to 500, default 100).
    #[serde(default = "super::extract::default_limit")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: i64,
    /// How many to skip (0 to 1,000,000,000).
    #[serde(default)]
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: i64,
}

/// Projects, most recently updated first.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", params(Page),
    responses((status = 200, body = [Project]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_projects(
    State(s): State<AppState>,
    Authed(a): Authed,
    QueryParams(p): QueryParams<Page>,
) -> ApiResult<Json<Vec<Project>>> {
    Ok(Json(
        engine::projects::list_projects(&s.core, &a, p.limit, p.offset).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = NewProject,
    responses((status = 201, body = Project), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "Name taken"), (status = 422, body = ErrorBody)))]
pub async fn create_project(
    State(s): State<AppState>,
    Authed(a): Authed,
    JsonBody(new): JsonBody<NewProject>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    Ok((
        StatusCode::CREATED,
        Json(engine::projects::create_project(&s.core, &a, new).await?),
    ))
}

/// A project with summaries of its experiments.
#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ProjectDetail), (status = 404, body = ErrorBody)))]
pub async fn get_project(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<ProjectDetail>> {
    Ok(Json(engine::projects::get_project(&s.core, &a, id).await?))
}

/// Renames a project or changes its description or notes; absent fields are kept.
#[utoipa::path(put, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = uuid::Uuid, Path)), request_body = ProjectUpdate,
    responses((status = 200, body = Project), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_project(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(u): JsonBody<ProjectUpdate>,
) -> ApiResult<Json<Project>> {
    Ok(Json(
        engine::projects::update_project(&s.core, &a, id, u).await?,
    ))
}

/// Deletes a project with all its experiments and runs.
#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn delete_project(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    engine::projects::delete_project(&s.core, &a, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
