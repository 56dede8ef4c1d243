//! `/api/v1/admin`: settings, stats, users and API keys. Admins only (the engine checks).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use engine::types::{
    ApiKey, CreatedApiKey, NewApiKey, NewUser, Settings, SettingsUpdate, Stats, User, UserUpdate,
};

use super::error::{ApiResult, ErrorBody};
use super::extract::{Authed, IdPath, JsonBody};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/admin/settings", tag = "admin",
    responses((status = 200, body = Settings), (status = 403, body = ErrorBody)))]
pub async fn get_settings(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<Settings>> {
    Ok(Json(engine::admin::get_settings(&s.core, &a).await?))
}

/// Changes settings; absent fields are kept. Nothing is written unless every field is valid.
#[utoipa::path(put, path = "/api/v1/admin/settings", tag = "admin", request_body = SettingsUpdate,
    responses((status = 200, body = Settings), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_settings(
    State(s): State<AppState>,
    Authed(a): Authed,
    JsonBody(u): JsonBody<SettingsUpdate>,
) -> ApiResult<Json<Settings>> {
    Ok(Json(engine::admin::update_settings(&s.core, &a, u).await?))
}

/// System-wide counts: users, projects, runs by status, cache hit rate, tokens and cost.
#[utoipa::path(get, path = "/api/v1/admin/stats", tag = "admin",
    responses((status = 200, body = Stats), (status = 403, body = ErrorBody)))]
pub async fn stats(State(s): State<AppState>, Authed(a): Authed) -> ApiResult<Json<Stats>> {
    Ok(Json(engine::admin::get_stats(&s.core, &a).await?))
}

#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin",
    responses((status = 200, body = [User]), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(engine::admin::list_users(&s.core, &a).await?))
}

/// Adds a user (role `member` unless given).
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = NewUser,
    responses((status = 201, body = User), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    State(s): State<AppState>,
    Authed(a): Authed,
    JsonBody(u): JsonBody<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((
        StatusCode::CREATED,
        Json(engine::admin::create_user(&s.core, &a, u).await?),
    ))
}

/// Sets a user's password or role; either signs the user out everywhere.
#[utoipa::path(put, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = uuid::Uuid, Path)), request_body = UserUpdate,
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_user(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
    JsonBody(u): JsonBody<UserUpdate>,
) -> ApiResult<Json<User>> {
    Ok(Json(engine::admin::update_user(&s.core, &a, id, u).await?))
}

#[utoipa::path(delete, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn delete_user(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    engine::admin::delete_user(&s.core, &a, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// API keys, newest first (never the secret).
#[utoipa::path(get, path = "/api/v1/admin/api-keys", tag = "admin",
    responses((status = 200, body = [ApiKey]), (status = 403, body = ErrorBody)))]
pub async fn list_api_keys(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<Vec<ApiKey>>> {
    Ok(Json(engine::admin::list_api_keys(&s.core, &a).await?))
}

/// Creates a key. The answer's `key` is the only time the secret is shown.
#[utoipa::path(post, path = "/api/v1/admin/api-keys", tag = "admin", request_body = NewApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_api_key(
    State(s): State<AppState>,
    Authed(a): Authed,
    JsonBody(k): JsonBody<NewApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    Ok((
        StatusCode::CREATED,
        Json(engine::admin::create_api_key(&s.core, &a, k).await?),
    ))
}

/// Revokes a key at once.
#[utoipa::path(delete, path = "/api/v1/admin/api-keys/{id}", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_api_key(
    State(s): State<AppState>,
    Authed(a): Authed,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    engine::admin::revoke_api_key(&s.core, &a, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Model prices (USD per million tokens) used for cost estimates.
#[utoipa::path(get, path = "/api/v1/admin/pricing", tag = "admin",
    responses((status = 200, body = [engine::types::ModelPrice])))]
pub async fn list_prices(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<Vec<engine::types::ModelPrice>>> {
    Ok(Json(engine::pricing::list_prices(&s.core, &a).await?))
}

/// Sets prices for the given models (others are kept); returns the whole table.
#[utoipa::path(put, path = "/api/v1/admin/pricing", tag = "admin", request_body = [engine::types::ModelPrice],
    responses((status = 200, body = [engine::types::ModelPrice]), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_prices(
    State(s): State<AppState>,
    Authed(a): Authed,
    JsonBody(p): JsonBody<Vec<engine::types::ModelPrice>>,
) -> ApiResult<Json<Vec<engine::types::ModelPrice>>> {
    Ok(Json(engine::pricing::set_prices(&s.core, &a, p).await?))
}

/// Removes a model's price (its runs then show no cost).
#[utoipa::path(delete, path = "/api/v1/admin/pricing/{model}", tag = "admin", params(("model" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_price(
    State(s): State<AppState>,
    Authed(a): Authed,
    axum::extract::Path(model): axum::extract::Path<String>,
) -> ApiResult<StatusCode> {
    engine::pricing::delete_price(&s.core, &a, &model).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The response cache: entries, size, tokens held, hit rate, and entries per model.
#[utoipa::path(get, path = "/api/v1/admin/cache", tag = "admin",
    responses((status = 200, body = engine::types::CacheStats), (status = 403, body = ErrorBody)))]
pub async fn cache_stats(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<engine::types::CacheStats>> {
    Ok(Json(engine::admin::cache_stats(&s.core, &a).await?))
}

/// Empties the whole response cache.
#[utoipa::path(delete, path = "/api/v1/admin/cache", tag = "admin",
    responses((status = 200, body = super::experiments::Removed), (status = 403, body = ErrorBody)))]
pub async fn clear_cache(
    State(s): State<AppState>,
    Authed(a): Authed,
) -> ApiResult<Json<super::experiments::Removed>> {
    Ok(Json(super::experiments::Removed {
        removed: engine::runs::invalidate_all_cache(&s.core, &a).await?,
    }))
}
