//! `GET /health`: 200 when the database answers, 503 when it does not.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub database: DatabaseHealth,
}

#[derive(Serialize, ToSchema)]
pub struct DatabaseHealth {
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    pub latency_ms: f64,
}

#[utoipa::path(get, path = "/health", tag = "health", security(()),
    responses((status = 200, body = Health, description = "Healthy"),
              (status = 503, body = Health, description = "The database is unreachable")))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let started = Instant::now();
    let probe = tokio::time::timeout(std::time::Duration::from_secs(3), state.core.db.ping()).await;
    let ok = matches!(probe, Ok(Ok(())));
    if !ok {
        tracing::warn!(?probe, "health check: database unreachable");
    }
    let status = if ok { "ok" } else { "unavailable" };
    let body = Health {
        status,
        version: engine::VERSION,
        uptime_seconds: state.core.started_at.elapsed().as_secs(),
        database: DatabaseHealth {
            status,
            backend: state.core.db.kind().as_str(),
            latency_ms: (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
        },
    };
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}
