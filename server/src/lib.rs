//! The PromptLooper server as a library: `prepare` builds the state from configuration,
//! `router` assembles the HTTP app (dashboard, REST, health), `serve` runs it until shutdown.
//! `main.rs` only parses the command line; tests boot the same app on port 0.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth_layer;
pub mod cli;
pub mod config;
pub mod headless;
pub mod mcp;
pub mod mock_llm;
pub mod session_store;
pub mod state;
pub mod ui;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue};
use engine::{Core, Db, Secrets};
use leptos::config::LeptosOptions;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::config::Config;
use crate::session_store::DbSessionStore;
use crate::state::AppState;

/// Why the server could not start. Each message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("DATA_DIR {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to the database ({url}): {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{what} failed: {detail}")]
    Startup { what: &'static str, detail: String },
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Connects to the database chosen by the configuration and brings its schema up to date.
pub async fn connect(config: &Config) -> Result<Db, StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let url = config.effective_database_url();
    let db = Db::connect(&url)
        .await
        .map_err(|source| StartError::Connect {
            url: config::redact_url(&url),
            source,
        })?;
    db.migrate().await?;
    Ok(db)
}

/// The limits from configuration that `serve`, `worker` and `run` share.
pub fn apply_limits(core: &mut Core, config: &Config) {
    core.max_tokens_per_sweep = (config.max_tokens_per_sweep > 0)
        .then(|| i64::try_from(config.max_tokens_per_sweep).unwrap_or(i64::MAX));
    core.event_retention_days =
        (config.event_retention_days > 0).then_some(config.event_retention_days);
}

/// Everything `serve` needs, built from configuration.
pub async fn prepare(config: Config) -> Result<AppState, StartError> {
    let db = connect(&config).await?;
    let secrets = load_secrets(&config)?;
    engine::telemetry::install();
    let mut core = Core::with_limits(db, secrets, config.max_concurrent_runs as usize);
    crate::apply_limits(&mut core, &config);
    startup(&core, &config).await?;
    let background = engine::jobs::start(&core, "serve", SWEEP_LANES)
        .await
        .map_err(|e| StartError::Startup {
            what: "starting the sweep workers",
            detail: e.to_string(),
        })?;
    let leptos_options = LeptosOptions::builder()
        .output_name(app::OUTPUT_NAME)
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(SocketAddr::new(config.host, config.port))
        .build();
    let (_, openapi) = api::router();
    let openapi = serde_json::to_value(&openapi).unwrap_or_default();
    Ok(AppState {
        core,
        leptos_options,
        config: Arc::new(config),
        openapi: Arc::new(openapi),
        background: Arc::new(tokio::sync::Mutex::new(Some(background))),
        stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
    })
}

/// Sweep lanes one process drives at once (runs are bounded by `MAX_CONCURRENT_RUNS`).
pub const SWEEP_LANES: usize = 4;

/// Stops the background work of `prepare` (lanes finish their runs in flight).
pub async fn stop_background(state: &AppState) {
    if let Some(background) = state.background.lock().await.take() {
        background.shutdown().await;
    }
}

/// The server's secrets: from the environment, else generated once under DATA_DIR.
pub fn load_secrets(config: &Config) -> Result<Secrets, StartError> {
    let jwt_secret = match &config.jwt_secret {
        Some(s) => s.expose().as_bytes().to_vec(),
        None => load_or_create_secret(&config.data_dir.join("jwt_secret")).map_err(|source| {
            StartError::DataDir {
                path: config.data_dir.display().to_string(),
                source,
            }
        })?,
    };
    let encryption_secret =
        match &config.encryption_key {
            Some(s) => s.expose().as_bytes().to_vec(),
            None => load_or_create_secret(&config.data_dir.join("encryption_key")).map_err(
                |source| StartError::DataDir {
                    path: config.data_dir.display().to_string(),
                    source,
                },
            )?,
        };
    Ok(Secrets::new(
        &jwt_secret,
        config.api_key.as_ref().map(|k| k.expose()),
        &encryption_secret,
    ))
}

/// One-time and every-time start-up work on the database.
async fn startup(core: &Core, config: &Config) -> Result<(), StartError> {
    let step = |what: &'static str| {
        move |e: engine::Error| StartError::Startup {
            what,
            detail: e.to_string(),
        }
    };
    engine::pricing::seed_defaults(core)
        .await
        .map_err(step("seeding model prices"))?;
    if let Some(url) = &config.default_endpoint_url {
        let key = config.default_endpoint_key.as_ref().map(|k| k.expose());
        engine::endpoints::seed_default_endpoint(core, url, key)
            .await
            .map_err(step("adding DEFAULT_ENDPOINT_URL"))?;
    }
    if config.seed_demo {
        engine::demo::seed_once(core)
            .await
            .map_err(step("seeding the demo project"))?;
    }
    engine::demo::upgrade(core)
        .await
        .map_err(step("updating the demo project"))?;
    Ok(())
}

/// The whole HTTP app: REST under /api/v1, /health, the dashboard and its assets.
pub fn router(state: AppState) -> Router {
    let (api_routes, _) = api::router();
    let store = DbSessionStore::new(state.core.db.clone());
    let sessions = SessionManagerLayer::new(store)
        .with_name("promptlooper_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.cookie_secure)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(7)));
    let header = |name: &'static str, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    let mcp = if state.config.mcp_enabled {
        mcp::router(
            state.core.clone(),
            mcp::AllowedHosts::new(&state.config.mcp_allowed_hosts),
            mcp::stop_token(&state),
        )
    } else {
        Router::new()
    };
    Router::new()
        .merge(api_routes)
        .merge(mcp)
        .route("/api/{*rest}", axum::routing::any(api::unknown_route))
        .route(
            "/ws/experiments/{id}",
            axum::routing::get(api::live::experiment_ws),
        )
        .route("/ws/dashboard", axum::routing::get(api::live::dashboard_ws))
        .route("/metrics", axum::routing::get(api::metrics::metrics))
        .merge(ui::routes(&state))
        .layer(axum::middleware::from_fn(api::metrics::record))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth_layer::resolve_caller,
        ))
        .layer(sessions)
        // Every body, REST or server function, is capped (upload routes at MAX_UPLOAD_MB,
        // streamed; the rest at 2 MiB); REST answers over-size with JSON 413.
        .layer(axum::middleware::from_fn_with_state(
            state.config.max_upload_mb.saturating_mul(1024 * 1024),
            api::body_limit,
        ))
        .layer(axum::middleware::from_fn(api::json_payload_too_large))
        .layer(header("x-content-type-options", "nosniff"))
        .layer(header("x-frame-options", "DENY"))
        .layer(header("referrer-policy", "same-origin"))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Reads a secret kept under DATA_DIR, creating it (64 random bytes, hex, mode 0600) if absent.
pub fn load_or_create_secret(path: &Path) -> std::io::Result<Vec<u8>> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let trimmed = existing.trim();
        if trimmed.len() >= 32 {
            return Ok(trimmed.as_bytes().to_vec());
        }
    }
    let secret = format!(
        "{}{}",
        hex::encode(rand::random::<[u8; 32]>()),
        hex::encode(rand::random::<[u8; 32]>())
    );
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(secret.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(secret.into_bytes())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
