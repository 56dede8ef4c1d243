//! `/api/v1/endpoints`: LLM endpoints. API keys are write-only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use engine::types::{Endpoint, EndpointTest, EndpointUpdate, NewEndpoint};

use super::error::{ApiResult, ErrorBody};
use super::extract::{Authed, IdPath, JsonBody};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/endpoints", tag = "endpoints",
    responses((status = 200, body = [Endpoint]), (status = 401, body = ErrorBody)))]
pub async fn list_endpoints(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<Vec<Endpoint>>> {
    Ok(Json(engine::endpoints::list_endpoints(&s.core, &a).await?))
}

/// Adds an endpoint (admins). The key is stored encrypted and only a masked hint is returned.
#[utoipa::path(post, path = "/api/v1/endpoints", tag = "endpoints", request_body = NewEndpoint,
    responses((status = 201, body = Endpoint), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn create_endpoint(
    State(s): State<AppState>,
    Authed(a): Authed,
    JsonBody(e): JsonBody<NewEndpoint>,
) -> ApiResult<(StatusCode, Json<Endpoint>)> {
    Ok((
        StatusCode::CREATED,
        Json(engine::endpoints::create_endpoint(&s.core, &a, e).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/endpoints/{id}", tag = "endpoints", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Endpoint), (status = 404, body = ErrorBody)))]
pub async fn get_endpoint(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Endpoint>> {
    Ok(Json(
        engine::endpoints::get_endpoint(&s.core, &a, id).await?,
    ))
}

/// Changes an endpoint; absent fields are kept, `api_key: null` removes the key.
#[utoipa::path(put, path = "/api/v1/endpoints/{id}", tag = "endpoints", params(("id" = uuid::Uuid, Path)),
    request_body = EndpointUpdate,
    responses((status = 200, body = Endpoint), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_endpoint(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(u): JsonBody<EndpointUpdate>,
) -> ApiResult<Json<Endpoint>> {
    Ok(Json(
        engine::endpoints::update_endpoint(&s.core, &a, id, u).await?,
    ))
}

/// Removes an endpoint no experiment uses (409 otherwise).
#[utoipa::path(delete, path = "/api/v1/endpoints/{id}", tag = "endpoints", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_endpoint(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    engine::endpoints::delete_endpoint(&s.core, &a, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Connects and lists the endpoint's models; a failure is reported in the body (`ok: false`).
#[utoipa::path(post, path = "/api/v1/endpoints/{id}/test", tag = "endpoints", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = EndpointTest), (status = 404, body = ErrorBody)))]
pub async fn test_endpoint(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<EndpointTest>> {
    Ok(Json(
        engine::endpoints::test_endpoint(&s.core, &a, id).await?,
    ))
}

/// The models the endpoint offers (anyone who may read; for model pickers). Failing to reach
/// the endpoint is reported in the answer (`ok: false`), not as an error.
#[utoipa::path(get, path = "/api/v1/endpoints/{id}/models", tag = "endpoints", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = EndpointTest), (status = 404, body = ErrorBody)))]
pub async fn list_models(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<EndpointTest>> {
    Ok(Json(engine::endpoints::list_models(&s.core, &a, id).await?))
}
