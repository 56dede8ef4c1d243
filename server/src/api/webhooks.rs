//! `/api/v1/webhooks`: where events are delivered, signed. Members and admins manage them;
//! the signing secret is shown once, header values never.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use engine::types::{
    CreatedWebhook, DeliveryPage, NewWebhook, Webhook, WebhookTest, WebhookUpdate,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiResult, ErrorBody};
use super::extract::{Authed, IdPath, JsonBody, QueryParams};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = [Webhook]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_webhooks(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<Vec<Webhook>>> {
    Ok(Json(engine::webhooks::list_webhooks(&s.core, &a).await?))
}

/// Adds a webhook. The answer's `secret` (`whsec_…`) is the only time it is shown.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn create_webhook(
    State(s): State<AppState>,
    Authed(a): Authed,
    JsonBody(w): JsonBody<NewWebhook>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    Ok((
        StatusCode::CREATED,
        Json(engine::webhooks::create_webhook(&s.core, &a, w).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Webhook), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_webhook(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(engine::webhooks::get_webhook(&s.core, &a, id).await?))
}

/// Changes a webhook; absent fields are kept. `enabled: true` turns it back on.
#[utoipa::path(put, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = uuid::Uuid, Path)),
    request_body = WebhookUpdate,
    responses((status = 200, body = Webhook), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_webhook(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(u): JsonBody<WebhookUpdate>,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(
        engine::webhooks::update_webhook(&s.core, &a, id, u).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_webhook(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    engine::webhooks::delete_webhook(&s.core, &a, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a signed `webhook.test` now and reports the receiver's answer.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = WebhookTest), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn test_webhook(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<Json<WebhookTest>> {
    Ok(Json(engine::webhooks::test_webhook(&s.core, &a, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// How many to return (1 to 500, default 100).
    #[serde(default = "super::extract::default_limit")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: i64,
    /// How many to skip (0 to 1,000,000,000).
    #[serde(default)]
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: i64,
}

/// A webhook's deliveries, newest first: status, attempts, the last answer and latency.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = uuid::Uuid, Path), DeliveryQuery),
    responses((status = 200, body = DeliveryPage), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn list_deliveries(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<DeliveryQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    Ok(Json(
        engine::webhooks::list_deliveries(&s.core, &a, id, q.limit, q.offset).await?,
    ))
}
