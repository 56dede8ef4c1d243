//! Configuration: one struct, environment first. Every field's doc comment is its `--help`
//! text; `.env.example` lists the same variables. Secrets are redacted in `Debug`.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "promptlooper",
    version,
    about = "PromptLooper: a self-hosted LLM prompt tuning workbench"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

impl Cli {
    /// Parses a command line given as arguments, panicking with clap's message on error
    /// (for tests and tools that build one).
    pub fn try_parse_from_args<I, T>(args: I) -> Cli
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{e}"))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard, the REST API and health checks (the default).
    Serve,
    /// Execute sweeps without serving HTTP: several `worker` processes and one `serve` share
    /// one PostgreSQL database (DATABASE_URL) and split the runs between them.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Administrative tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Serve a mock LLM API (OpenAI-compatible and Anthropic shapes) for tests and benchmarks.
    MockLlm(MockLlmArgs),
    /// Serve MCP over standard input and output for a desktop agent, as the user whose API key
    /// is in PROMPTLOOPER_API_KEY, on the same database (DATA_DIR / DATABASE_URL).
    Mcp,
    /// Run an experiment file headless (for CI): make its endpoints and experiment, sweep,
    /// print the leaderboard, write the exports. Exit 0 when the best score reaches
    /// --fail-under, 1 below it, 2 on a mistake in the file, 3 when it could not run.
    Run(RunArgs),
    /// Turn another tool's configuration into an experiment file.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The experiment file (YAML; see README "CLI for CI").
    pub file: PathBuf,
    /// Fail (exit 1) when the best weighted score is below this (0 to 1); overrides the
    /// file's `fail_under`.
    #[arg(long)]
    pub fail_under: Option<f64>,
    /// Write the leaderboard and the exports (best JSON, .env, YAML, markdown report) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the result as JSON on standard output (progress stays on standard error).
    #[arg(long)]
    pub json: bool,
    /// Run on this PromptLooper server instead of in this process, with the API key in
    /// PROMPTLOOPER_API_KEY.
    #[arg(long, env = "PROMPTLOOPER_SERVER")]
    pub server: Option<String>,
    /// How many configurations the table shows.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Write an experiment file from a promptfoo config (promptfooconfig.yaml): prompts →
    /// variants, providers → models and parameters, tests → items, assertions → scorers. What
    /// cannot be mapped is listed on standard error.
    Promptfoo {
        /// The promptfoo config.
        config: PathBuf,
        /// Where to write the experiment file (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct MockLlmArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub bind: std::net::SocketAddr,
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of requests that fail (0 to 1): 429 with Retry-After, 500, malformed body, hang.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Require this API key (Bearer or x-api-key).
    #[arg(long, env = "MOCK_LLM_API_KEY", hide_env_values = true)]
    pub require_key: Option<String>,
    /// Answer 429 past this many requests in any window (a provider's rate limit).
    #[arg(long)]
    pub rate_limit: Option<u64>,
    /// The rate limit's window in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    pub rate_window_ms: u64,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Set a user's password (read from the PROMPTLOOPER_PASSWORD variable or standard input),
    /// sign them out everywhere and lift any sign-in lock.
    ResetPassword {
        /// The username.
        username: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Args)]
pub struct Config {
    /// PostgreSQL connection string (postgres://user:pass@host/db). Unset: SQLite at
    /// $DATA_DIR/promptlooper.db. A sqlite:// URL is accepted too.
    #[arg(long, env = "DATABASE_URL", global = true, value_parser = parse_database_url, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Redis connection string. Optional: PromptLooper keeps its queue and events in the
    /// database, so Redis is never required; the value is checked and otherwise unused.
    #[arg(long, env = "REDIS_URL", global = true, value_parser = parse_redis_url, hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Address to bind.
    #[arg(long, env = "HOST", global = true, default_value = "0.0.0.0", value_parser = parse_host)]
    pub host: IpAddr,

    /// HTTP port (0 picks a free port and logs it).
    #[arg(long, env = "PORT", global = true, default_value_t = 8400, value_parser = parse_port)]
    pub port: u16,

    /// Key that signs API tokens. Unset: generated once and kept in $DATA_DIR/jwt_secret, so
    /// tokens and sessions survive restarts. At least 32 characters when set.
    #[arg(long, env = "JWT_SECRET", global = true, value_parser = parse_secret, hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// Key material that encrypts endpoint API keys at rest (at least 32 characters). Unset:
    /// generated once and kept in $DATA_DIR/encryption_key. Keep it with your backups: stored
    /// endpoint keys cannot be read without it.
    #[arg(long, env = "ENCRYPTION_KEY", global = true, value_parser = parse_secret, hide_env_values = true)]
    pub encryption_key: Option<Secret>,

    /// A static API key with admin rights, sent as `Authorization: Bearer <key>` (for CI and
    /// agents). Keys created in the dashboard are usually the better choice.
    #[arg(long, env = "API_KEY", global = true, value_parser = parse_secret, hide_env_values = true)]
    pub api_key: Option<Secret>,

    /// A pre-configured LLM endpoint (OpenAI-compatible base URL), added once as "Default".
    #[arg(long, env = "DEFAULT_ENDPOINT_URL", global = true, value_parser = parse_http_url)]
    pub default_endpoint_url: Option<String>,

    /// API key for DEFAULT_ENDPOINT_URL (stored encrypted; never logged or shown).
    #[arg(long, env = "DEFAULT_ENDPOINT_KEY", global = true, value_parser = parse_any_secret, hide_env_values = true)]
    pub default_endpoint_key: Option<Secret>,

    /// How many runs execute at once across the process (1 to 1024).
    #[arg(long, env = "MAX_CONCURRENT_RUNS", global = true, default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_concurrent_runs: u32,

    /// Token budget per sweep (input + output tokens of calls made); 0 means unlimited. A sweep's
    /// own budget can only lower it.
    #[arg(long, env = "MAX_TOKENS_PER_SWEEP", global = true, default_value_t = 0)]
    pub max_tokens_per_sweep: u64,

    /// Serve Prometheus metrics at `/metrics` (to admins, and to `METRICS_TOKEN`); `false`
    /// answers 404 there.
    #[arg(long, env = "METRICS_ENABLED", global = true, default_value_t = true, action = ArgAction::Set,
          value_parser = parse_bool)]
    pub metrics_enabled: bool,

    /// A bearer token a Prometheus scraper sends to read `/metrics` (at least 32 characters);
    /// without it only admins can.
    #[arg(long, env = "METRICS_TOKEN", global = true, value_parser = parse_metrics_token, hide_env_values = true)]
    pub metrics_token: Option<Secret>,

    /// Per-run events (`run.*`, `stage.completed`) older than this many days are removed in the
    /// background; experiment-level events are kept. 0 keeps everything (0 to 36500).
    #[arg(long, env = "EVENT_RETENTION_DAYS", global = true, default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(0..=36500))]
    pub event_retention_days: u32,

    /// Largest file the upload routes (sample import) take, in MB (1 to 10240); every other
    /// request body is capped at 2 MiB.
    #[arg(long, env = "MAX_UPLOAD_MB", global = true, default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=10240))]
    pub max_upload_mb: u64,

    /// Where the SQLite database and generated secrets live (created if missing).
    #[arg(long, env = "DATA_DIR", global = true, default_value = "./data")]
    pub data_dir: PathBuf,

    /// Serve MCP for AI agents: streamable HTTP at `/mcp` on PORT and on MCP_PORT. `false`
    /// turns both off (`promptlooper mcp`, over stdio, works either way).
    #[arg(long, env = "MCP_ENABLED", global = true, default_value_t = true, action = ArgAction::Set,
          value_parser = parse_bool)]
    pub mcp_enabled: bool,

    /// Port of the standalone MCP listener (`0` picks a free one, logged at start).
    #[arg(long, env = "MCP_PORT", global = true, default_value_t = 8401, value_parser = parse_port)]
    pub mcp_port: u16,

    /// Host names MCP answers for besides localhost, 127.0.0.1 and ::1 (comma-separated, e.g.
    /// `promptlooper.example.com`): another `Host` gets 421 and an `Origin` on another host 403,
    /// so a web page cannot reach the tools through DNS rebinding.
    #[arg(long, env = "MCP_ALLOWED_HOSTS", global = true, value_delimiter = ',')]
    pub mcp_allowed_hosts: Vec<String>,

    /// Folder with the built dashboard assets (pkg/promptlooper.js, .wasm, .css).
    #[arg(long, env = "LEPTOS_SITE_ROOT", global = true, default_value = "site")]
    pub site_root: PathBuf,

    /// Seed the demo project (simulated endpoint, no API key) on first boot.
    #[arg(long, env = "SEED_DEMO", global = true, default_value_t = true, action = ArgAction::Set,
          value_parser = parse_bool)]
    pub seed_demo: bool,

    /// Mark the session cookie `Secure` (set this when serving over HTTPS).
    #[arg(long, env = "COOKIE_SECURE", global = true, default_value_t = false, action = ArgAction::Set,
          value_parser = parse_bool)]
    pub cookie_secure: bool,

    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// DATA_DIR was given (flag or environment) rather than defaulted: `run` keeps its
    /// database there instead of in a temporary folder.
    #[arg(skip)]
    pub data_dir_given: bool,
}

impl Config {
    /// The database URL in force: DATABASE_URL, or SQLite under DATA_DIR.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}",
                self.data_dir.join("promptlooper.db").display()
            ),
        }
    }

    /// A configuration with every default (for tests and tools).
    pub fn defaults() -> Config {
        Cli::parse_from(["promptlooper"]).config
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field(
                "database",
                &self
                    .database_url
                    .as_deref()
                    .map(redact_url)
                    .unwrap_or_else(|| "sqlite (DATA_DIR)".into()),
            )
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("jwt_secret", &self.jwt_secret)
            .field("api_key", &self.api_key)
            .field("encryption_key", &self.encryption_key)
            .field(
                "default_endpoint_url",
                &self.default_endpoint_url.as_deref().map(redact_url),
            )
            .field("default_endpoint_key", &self.default_endpoint_key)
            .field("max_concurrent_runs", &self.max_concurrent_runs)
            .field("max_tokens_per_sweep", &self.max_tokens_per_sweep)
            .field("metrics_enabled", &self.metrics_enabled)
            .field("metrics_token", &self.metrics_token)
            .field("event_retention_days", &self.event_retention_days)
            .field("max_upload_mb", &self.max_upload_mb)
            .field("data_dir", &self.data_dir)
            .field("mcp_enabled", &self.mcp_enabled)
            .field("mcp_port", &self.mcp_port)
            .field("mcp_allowed_hosts", &self.mcp_allowed_hosts)
            .field("site_root", &self.site_root)
            .finish()
    }
}

/// A secret value: shown as `<redacted>` in every `Debug` output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A URL with any password replaced, fit for logs.
/// Masks the user-info password and any query parameter that looks like a credential
/// (`password`, `sslpassword`, `token`, `key`, `secret`, …).
pub fn redact_url(raw: &str) -> String {
    let Ok(mut u) = url::Url::parse(raw) else {
        return "<unparseable>".into();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let secret = ["pass", "token", "key", "secret", "auth"]
                    .iter()
                    .any(|s| lower.contains(s));
                (
                    k.into_owned(),
                    if secret {
                        "***".to_owned()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

fn parse_database_url(s: &str) -> Result<String, String> {
    let scheme = s.split(':').next().unwrap_or_default();
    match engine::DbKind::from_url(s) {
        Some(engine::DbKind::Postgres) => url::Url::parse(s)
            .map(|_| s.to_owned())
            .map_err(|e| format!("DATABASE_URL is not a valid URL ({e})")),
        Some(engine::DbKind::Sqlite) => Ok(s.to_owned()),
        None => Err(format!(
            "DATABASE_URL must start with postgres://, postgresql:// or sqlite:// (got scheme {scheme:?})"
        )),
    }
}

fn parse_redis_url(s: &str) -> Result<String, String> {
    let u = url::Url::parse(s).map_err(|e| format!("REDIS_URL is not a valid URL ({e})"))?;
    match u.scheme() {
        "redis" | "rediss" | "unix" => Ok(s.to_owned()),
        other => Err(format!(
            "REDIS_URL must use redis://, rediss:// or unix:// (got {other}://)"
        )),
    }
}

fn parse_http_url(s: &str) -> Result<String, String> {
    let u =
        url::Url::parse(s).map_err(|e| format!("DEFAULT_ENDPOINT_URL is not a valid URL ({e})"))?;
    match u.scheme() {
        "http" | "https" => Ok(s.to_owned()),
        other => Err(format!(
            "DEFAULT_ENDPOINT_URL must use http:// or https:// (got {other}://)"
        )),
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    s.trim()
        .parse::<u16>()
        .map_err(|_| format!("must be a port number from 0 to 65535 (PORT/MCP_PORT), got {s:?}"))
}

fn parse_host(s: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse::<IpAddr>()
        .map_err(|_| format!("HOST must be an IP address such as 0.0.0.0 or 127.0.0.1, got {s:?}"))
}

fn parse_secret(s: &str) -> Result<Secret, String> {
    if s.len() < 32 {
        return Err(
            "JWT_SECRET, API_KEY and ENCRYPTION_KEY must be at least 32 characters long".into(),
        );
    }
    Ok(Secret(s.to_owned()))
}

fn parse_metrics_token(s: &str) -> Result<Secret, String> {
    if s.len() < 32 {
        return Err("METRICS_TOKEN must be at least 32 characters long".into());
    }
    Ok(Secret(s.to_owned()))
}

fn parse_any_secret(s: &str) -> Result<Secret, String> {
    Ok(Secret(s.to_owned()))
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("must be true or false, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let c = Config::defaults();
        assert_eq!(c.port, 8400);
        assert_eq!(c.mcp_port, 8401);
        assert_eq!(c.max_concurrent_runs, 4);
        assert_eq!(c.max_upload_mb, 200);
        assert_eq!(c.max_tokens_per_sweep, 0);
        assert!(c.mcp_enabled);
        assert!(c.effective_database_url().starts_with("sqlite://"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Cli::try_parse_from(["promptlooper", "--port", "99999"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("PORT"), "{err}");
        let err = Cli::try_parse_from(["promptlooper", "--database-url", "mysql://x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("DATABASE_URL"), "{err}");
        let err = Cli::try_parse_from(["promptlooper", "--host", "nowhere"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("HOST"), "{err}");
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        let r = redact_url("postgres://h/db?sslmode=require&password=pw&api_key=k");
        assert!(
            r.contains("sslmode=require") && !r.contains("=pw") && !r.contains("=k"),
            "{r}"
        );
    }

    #[test]
    fn secrets_never_print() {
        let c = Cli::try_parse_from([
            "promptlooper",
            "--api-key",
            "k3y-0123456789abcdef0123456789abcdef",
            "--database-url",
            "postgres://u:hunter2@db/x",
        ])
        .unwrap()
        .config;
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("k3y-0123456789") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
