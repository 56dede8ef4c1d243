//! The subcommands: `serve` (default), `migrate`, `admin reset-password`.

use std::net::SocketAddr;

use crate::config::{AdminCommand, Cli, Command, Config, MockLlmArgs};
use crate::{StartError, connect, prepare, router, serve, shutdown_signal};

/// Runs the parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => run_serve(cli.config).await,
        Command::Migrate => run_migrate(cli.config).await,
        Command::Admin(AdminCommand::ResetPassword { username }) => {
            reset_password(cli.config, &username).await
        }
        Command::MockLlm(args) => run_mock_llm(args).await,
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
    serve(listener, router(state), shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
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
    });
    crate::mock_llm::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}
