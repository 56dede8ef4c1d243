//! `/api/v1/auth`: first-boot setup, login (JWT), and who am I.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use engine::types::{Credentials, Me, TokenResponse};

use super::error::{ApiResult, ErrorBody};
use super::extract::{Authed, JsonBody};
use crate::state::AppState;

/// Creates the first admin (only while no user exists) and returns a token for them.
#[utoipa::path(post, path = "/api/v1/auth/setup", tag = "auth", security(()), request_body = Credentials,
    responses((status = 201, body = TokenResponse), (status = 409, body = ErrorBody, description = "Setup already done"),
              (status = 422, body = ErrorBody)))]
pub async fn setup(
    State(state): State<AppState>,
    JsonBody(c): JsonBody<Credentials>,
) -> ApiResult<(StatusCode, Json<TokenResponse>)> {
    let user = engine::auth::setup_admin(&state.core, &c.username, &c.password).await?;
    let row = engine::store::users::get(&state.core.db, user.id)
        .await?
        .ok_or(engine::Error::NotFound("user"))?;
    Ok((
        StatusCode::CREATED,
        Json(engine::auth::issue_token(&state.core, &row).await?),
    ))
}

/// Exchanges a username and password for a bearer token. Repeated failures lock the account
/// for a growing time (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(()), request_body = Credentials,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "Too many failed attempts")))]
pub async fn login(
    State(state): State<AppState>,
    JsonBody(c): JsonBody<Credentials>,
) -> ApiResult<Json<TokenResponse>> {
    let user = engine::auth::login(&state.core, &c.username, &c.password).await?;
    Ok(Json(engine::auth::issue_token(&state.core, &user).await?))
}

/// The current principal.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(Authed(actor): Authed) -> Json<Me> {
    Json(actor.me())
}
