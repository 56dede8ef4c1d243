//! `GET /metrics`: Prometheus metrics (see `engine::telemetry`), for admins and for a scraper
//! holding `METRICS_TOKEN`; 404 when `METRICS_ENABLED=false`. Every request is counted and
//! timed here too, by its matched route.

use app::api::ssr::Caller;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use engine::types::Role;

use super::error::ApiError;
use crate::state::AppState;

/// Set on a `/metrics` request whose bearer credential is `METRICS_TOKEN`.
#[derive(Clone, Copy, Debug)]
pub struct MetricsToken;

/// Whether `credential`, sent to `path`, is the metrics token.
pub fn is_metrics_token(state: &AppState, path: &str, credential: &str) -> bool {
    path == "/metrics"
        && state
            .config
            .metrics_token
            .as_ref()
            .is_some_and(|t| engine::auth::same_secret(credential, t.expose()))
}

pub async fn metrics(State(state): State<AppState>, req: Request) -> Response {
    if !state.config.metrics_enabled {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "metrics are turned off (METRICS_ENABLED=false)",
        )
        .into_response();
    }
    if req.extensions().get::<MetricsToken>().is_none() {
        match req.extensions().get::<Caller>() {
            Some(Caller(Some(actor))) if actor.role == Role::Admin => {}
            Some(Caller(Some(_))) => {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "metrics are for admins and METRICS_TOKEN",
                )
                .into_response();
            }
            _ => {
                return ApiError::unauthenticated(
                    "authentication required: an admin, or Authorization: Bearer <METRICS_TOKEN>",
                )
                .into_response();
            }
        }
    }
    match engine::telemetry::render(&state.core).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Counts and times every request by method, matched route (never the raw path, so ids do
/// not multiply the series) and status.
pub async fn record(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let res = next.run(req).await;
    engine::telemetry::http_request(&method, &route, res.status().as_u16(), started.elapsed());
    res
}
