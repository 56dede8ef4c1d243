//! The subcommands: `serve` (default), `worker`, `migrate`, `admin reset-password`, `mock-llm`,
//! `mcp`, `run` and `import promptfoo` (the last two in `headless`).

use std::net::SocketAddr;

use crate::config::{AdminCommand, Cli, Command, Config, ImportCommand, MockLlmArgs};
use crate::{StartError, connect, prepare, router, serve, shutdown_signal};

/// Runs the parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => run_serve(cli.config).await,
        Command::Worker => run_worker(cli.config).await,
        Command::Migrate => run_migrate(cli.config).await,
        Command::Admin(AdminCommand::ResetPassword { username }) => {
            reset_password(cli.config, &username).await
        }
        Command::MockLlm(args) => run_mock_llm(args).await,
        Command::Mcp => run_mcp(cli.config).await,
        Command::Run(args) => return crate::headless::run(args, cli.config).await,
        Command::Import(ImportCommand::Promptfoo { config, output }) => {
            return crate::headless::promptfoo::command(&config, output.as_deref());
        }
    };
    match result {
        Ok(()) => 0,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("promptlooper: {message}");
            1
        }
    }
}

async fn run_serve(config: Config) -> Result<(), String> {
    let addr = SocketAddr::new(config.host, config.port);
    tracing::info!(config = ?config, "starting PromptLooper {}", engine::VERSION);
    if config.redis_url.is_some() {
        tracing::info!(
            "REDIS_URL is set; PromptLooper keeps its queue and events in the database and does not need it"
        );
    }
    let pkg = config
        .site_root
        .join("pkg")
        .join(format!("{}.js", app::OUTPUT_NAME));
    if !pkg.exists() {
        tracing::warn!(site_root = %config.site_root.display(),
            "dashboard assets not found: pages render but do not hydrate; build them with `make build` or set LEPTOS_SITE_ROOT");
    }
    let state = prepare(config).await.map_err(|e| e.to_string())?;
    crate::session_store::DbSessionStore::new(state.core.db.clone()).spawn_cleanup();
    let db = state.core.db.clone();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source }.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(address = %local, database = db.kind().as_str(), "listening on http://{local}");
    let streams = state.clone();
    let shutdown = async move {
        shutdown_signal().await;
        streams.stop_streams();
    };
    let mcp = if state.config.mcp_enabled {
        let addr = SocketAddr::new(state.config.host, state.config.mcp_port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source }.to_string())?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(address = %local, "MCP (streamable HTTP) on http://{local}/mcp, and at /mcp on the main port");
        let app = crate::mcp::router(
            state.core.clone(),
            crate::mcp::AllowedHosts::new(&state.config.mcp_allowed_hosts),
            crate::mcp::stop_token(&state),
        );
        let mut stopping = state.stopping.subscribe();
        Some(tokio::spawn(async move {
            let stopped = async move {
                let _ = stopping.wait_for(|s| *s).await;
            };
            if let Err(e) = serve(listener, app, stopped).await {
                tracing::error!(error = %e, "the MCP listener failed");
            }
        }))
    } else {
        tracing::info!("MCP is off (MCP_ENABLED=false)");
        None
    };
    serve(listener, router(state.clone()), shutdown)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(mcp) = mcp {
        let _ = mcp.await;
    }
    tracing::info!("finishing runs in flight");
    crate::stop_background(&state).await;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `worker`: drives sweeps (claims runs, calls endpoints, records results) until SIGTERM,
/// then finishes the runs in flight.
async fn run_worker(config: Config) -> Result<(), String> {
    let url = config.effective_database_url();
    if engine::DbKind::from_url(&url) != Some(engine::DbKind::Postgres) {
        return Err(
            "`worker` needs DATABASE_URL=postgres://…: on SQLite, `serve` runs the sweeps itself"
                .into(),
        );
    }
    tracing::info!("starting PromptLooper {} worker", engine::VERSION);
    let db = connect(&config).await.map_err(|e| e.to_string())?;
    let secrets = crate::load_secrets(&config).map_err(|e| e.to_string())?;
    let mut core =
        engine::Core::with_limits(db.clone(), secrets, config.max_concurrent_runs as usize);
    crate::apply_limits(&mut core, &config);
    let background = engine::jobs::start(&core, "worker", crate::SWEEP_LANES)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(node = %core.node, max_concurrent_runs = config.max_concurrent_runs, "worker ready");
    shutdown_signal().await;
    tracing::info!("finishing runs in flight");
    background.shutdown().await;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `mcp`: the MCP tools over stdio; sweeps started here run in this process too.
async fn run_mcp(config: Config) -> Result<(), String> {
    let state = prepare(config).await.map_err(|e| e.to_string())?;
    let db = state.core.db.clone();
    let served = crate::mcp::serve_stdio(&state).await;
    state.stop_streams();
    tracing::info!("finishing runs in flight");
    crate::stop_background(&state).await;
    db.close().await;
    served
}

async fn run_migrate(config: Config) -> Result<(), String> {
    let db = connect(&config).await.map_err(|e| e.to_string())?;
    tracing::info!(database = db.kind().as_str(), "migrations applied");
    println!("migrations applied ({})", db.kind().as_str());
    db.close().await;
    Ok(())
}

/// The new password comes from PROMPTLOOPER_PASSWORD or standard input, never the command
/// line (where other users could read it in the process list).
async fn reset_password(config: Config, username: &str) -> Result<(), String> {
    let password = match std::env::var("PROMPTLOOPER_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprintln!(
                "New password for {username}, then Enter (it is read from standard input and echoed; set PROMPTLOOPER_PASSWORD to avoid that):"
            );
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let db = connect(&config).await.map_err(|e| e.to_string())?;
    let core = engine::Core::new(
        db.clone(),
        engine::Secrets::new(b"unused-for-password-reset-only", None, b"unused"),
    );
    let user = engine::admin::reset_password(&core, username, &password)
        .await
        .map_err(|e| match e {
            engine::Error::NotFound(_) => format!("no user named {username:?}"),
            other => other.to_string(),
        })?;
    println!(
        "password reset for {} (signed out everywhere)",
        user.username
    );
    db.close().await;
    Ok(())
}

async fn run_mock_llm(args: MockLlmArgs) -> Result<(), String> {
    if !(0.0..=1.0).contains(&args.fail_rate) {
        return Err("--fail-rate must be between 0 and 1".into());
    }
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| format!("cannot bind {}: {e}", args.bind))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        latency_ms = args.latency_ms,
        fail_rate = args.fail_rate,
        "mock LLM listening on http://{local}/v1"
    );
    let state = crate::mock_llm::MockState::new(crate::mock_llm::MockConfig {
        latency_ms: args.latency_ms,
        fail_rate: args.fail_rate,
        api_key: args.require_key,
        omit_usage: false,
        rate_limit: args.rate_limit,
        rate_window_ms: args.rate_window_ms,
    });
    crate::mock_llm::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}
