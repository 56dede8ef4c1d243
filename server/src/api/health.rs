//! `GET /health`: 200 when the database answers, 503 when it does not; with the job queue.

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
    /// The sweep queue (absent when the database is unreachable).
    pub queue: Option<QueueHealth>,
}

#[derive(Serialize, ToSchema)]
pub struct QueueHealth {
    /// Runs waiting to be claimed, and runs executing now (in any process).
    pub runs_pending: i64,
    pub runs_running: i64,
    /// Sweeps running and paused.
    pub sweeps_running: i64,
    pub sweeps_paused: i64,
    /// Lane jobs in the apalis queue by status (Pending, Queued, Running, Done, Failed, Killed).
    #[schema(value_type = Object)]
    pub lanes: std::collections::BTreeMap<String, i64>,
    /// Processes executing runs whose heartbeat is fresh, by role (serve, worker).
    #[schema(value_type = Object)]
    pub processes: std::collections::BTreeMap<String, i64>,
    /// This process's run slots in use, of `MAX_CONCURRENT_RUNS`.
    pub slots_in_use: usize,
    pub max_concurrent_runs: usize,
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
    let queue = if ok { queue(&state).await } else { None };
    let body = Health {
        status,
        version: engine::VERSION,
        uptime_seconds: state.core.started_at.elapsed().as_secs(),
        database: DatabaseHealth {
            status,
            backend: state.core.db.kind().as_str(),
            latency_ms: (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
        },
        queue,
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

async fn queue(state: &AppState) -> Option<QueueHealth> {
    let core = &state.core;
    let counts = engine::store::sweeps::health_counts(&core.db).await;
    let lanes = engine::jobs::queue_status(&core.db).await;
    let processes = engine::jobs::live_processes(&core.db).await;
    match (counts, lanes, processes) {
        (
            Ok((runs_pending, runs_running, sweeps_running, sweeps_paused)),
            Ok(lanes),
            Ok(processes),
        ) => Some(QueueHealth {
            runs_pending,
            runs_running,
            sweeps_running,
            sweeps_paused,
            lanes: lanes.into_iter().collect(),
            processes: processes.into_iter().collect(),
            slots_in_use: core.max_concurrent_runs - core.run_slots.available_permits(),
            max_concurrent_runs: core.max_concurrent_runs,
        }),
        (a, b, c) => {
            tracing::warn!(counts = ?a.err(), lanes = ?b.err(), processes = ?c.err(), "health: queue figures unavailable");
            None
        }
    }
}
