//! The MCP server: the engine's operations as tools for AI agents. Streamable HTTP at `/mcp`
//! on the main port and on its own listener (`MCP_PORT`), and stdio (`promptlooper mcp`).
//! A thin transport, like REST: every tool calls the same `engine::` operation.
//!
//! Over HTTP the caller is a bearer credential (API key or JWT; none → 401) and a DNS-rebinding
//! guard runs first: a `Host` outside `MCP_ALLOWED_HOSTS` → 421, an `Origin` whose host is not
//! one of them → 403 (as the official Python SDK answers). Over stdio the caller is the user of
//! the API key in `PROMPTLOOPER_API_KEY`.

mod params;
mod progress;
mod tools;

use std::sync::Arc;
use std::time::Duration;

use app::api::ssr::Caller;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use engine::{Actor, AuthVia, Core};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

pub use tools::Tools;

use crate::api::error::ApiError;
use crate::state::AppState;

/// The caller of one MCP request over HTTP (a request extension the tools read).
#[derive(Clone, Debug)]
pub struct McpCaller(pub Actor);

/// Hosts the HTTP transport answers for (`MCP_ALLOWED_HOSTS`, plus loopback).
#[derive(Clone, Debug)]
pub struct AllowedHosts(Arc<Vec<String>>);

impl AllowedHosts {
    pub fn new(configured: &[String]) -> AllowedHosts {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        for h in configured {
            let h = h.trim().trim_start_matches('[').trim_end_matches(']');
            if !h.is_empty() && !hosts.iter().any(|x| x.eq_ignore_ascii_case(h)) {
                hosts.push(h.to_ascii_lowercase());
            }
        }
        AllowedHosts(Arc::new(hosts))
    }

    fn allows(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.0.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// The host part of a `Host` header or an origin's authority (`name`, `name:port`, `[v6]:port`).
fn host_of(authority: &str) -> Option<&str> {
    let authority = authority.trim();
    if authority.is_empty() || authority.contains(['/', '@', ' ']) {
        return None;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        return Some(&rest[..end]);
    }
    Some(authority.rsplit_once(':').map_or(authority, |(h, _)| h))
}

/// DNS-rebinding guard: a page on another site, or a name rebound to this machine, cannot
/// reach the tools from a browser.
async fn guard(State(allowed): State<AllowedHosts>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    if !host
        .as_deref()
        .and_then(host_of)
        .is_some_and(|h| allowed.allows(h))
    {
        tracing::warn!(host = ?host, "MCP request refused: Host is not allowed");
        return ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "the Host header names a host this server does not answer MCP for (MCP_ALLOWED_HOSTS)",
        )
        .into_response();
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
            .and_then(|(_, authority)| host_of(authority))
            .is_some_and(|h| allowed.allows(h));
        if !ok {
            tracing::warn!(origin = ?origin, "MCP request refused: foreign Origin");
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "requests from this Origin cannot use MCP",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Bearer authentication: an API key or a JWT, never the browser session.
async fn authenticate(State(core): State<Core>, mut req: Request, next: Next) -> Response {
    let unauthenticated = |message: &'static str| {
        let mut r = ApiError::unauthenticated(message).into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        r
    };
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return unauthenticated(
            "MCP needs `Authorization: Bearer <API key or token>` (create an API key on the Admin page)",
        );
    };
    // On the main port the caller is resolved already, from this same header.
    let resolved = req.extensions().get::<Caller>().and_then(|c| c.0.clone());
    let actor = match resolved {
        Some(actor) if !matches!(actor.via, AuthVia::Session | AuthVia::Guest) => actor,
        _ => {
            let Some(credential) = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|c| !c.is_empty())
            else {
                return unauthenticated("the Authorization header must be `Bearer <token>`");
            };
            match engine::auth::authenticate_bearer(&core, credential).await {
                Ok(actor) => actor,
                Err(engine::Error::Unauthenticated) => {
                    return unauthenticated("invalid, expired or revoked credential");
                }
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
    };
    req.extensions_mut().insert(McpCaller(actor));
    next.run(req).await
}

/// `/mcp` as an axum router: the guard, authentication, then rmcp's streamable HTTP service
/// (sessions for clients that open one with `initialize`; stateless otherwise). Streams end
/// when `stop` is cancelled.
pub fn router<S: Clone + Send + Sync + 'static>(
    core: Core,
    allowed: AllowedHosts,
    stop: CancellationToken,
) -> Router<S> {
    let tools = Tools::new(core.clone(), None);
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(Duration::from_secs(30 * 60));
    let config = StreamableHttpServerConfig::default()
        .with_sse_keep_alive(Some(Duration::from_secs(15)))
        // Our guard checks Host and Origin (with the status codes the official SDKs use).
        .disable_allowed_hosts()
        .with_cancellation_token(stop);
    let service = StreamableHttpService::new(move || Ok(tools.clone()), Arc::new(sessions), config);
    Router::new()
        .route_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(core, authenticate))
        .layer(axum::middleware::from_fn_with_state(allowed, guard))
}

/// The token that ends MCP streams when the server begins to stop.
pub fn stop_token(state: &AppState) -> CancellationToken {
    let token = CancellationToken::new();
    let mut stopping = state.stopping.subscribe();
    let cancel = token.clone();
    tokio::spawn(async move {
        let _ = stopping.wait_for(|s| *s).await;
        cancel.cancel();
    });
    token
}

/// `promptlooper mcp`: the tools over standard input and output, as the user whose API key
/// is in `PROMPTLOOPER_API_KEY`, until the client closes the stream. Sweeps started here run
/// in this process (and in any server or worker on the same database).
pub async fn serve_stdio(state: &AppState) -> Result<(), String> {
    use rmcp::ServiceExt;
    let key = std::env::var("PROMPTLOOPER_API_KEY").map_err(|_| {
        "PROMPTLOOPER_API_KEY must hold an API key (create one on the Admin page or with POST /api/v1/api-keys)"
            .to_owned()
    })?;
    let actor = engine::auth::authenticate_bearer(&state.core, key.trim())
        .await
        .map_err(|e| match e {
            engine::Error::Unauthenticated => {
                "PROMPTLOOPER_API_KEY is not a valid, unexpired, unrevoked API key".to_owned()
            }
            other => other.to_string(),
        })?;
    tracing::info!(user = ?actor.user.as_ref().map(|u| &u.username), role = ?actor.role, "MCP over stdio");
    let running = Tools::new(state.core.clone(), Some(actor))
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("MCP over stdio: {e}"))?;
    let reason = running
        .waiting()
        .await
        .map_err(|e| format!("MCP over stdio: {e}"))?;
    tracing::info!(reason = ?reason, "MCP client closed the connection");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_from_headers_and_origins() {
        assert_eq!(host_of("localhost:8400"), Some("localhost"));
        assert_eq!(host_of("[::1]:8401"), Some("::1"));
        assert_eq!(host_of("example.com"), Some("example.com"));
        assert_eq!(host_of("evil.com/x"), None);
        assert_eq!(host_of("user@evil.com"), None);
        let allowed = AllowedHosts::new(&["PromptLooper.example.com".into()]);
        assert!(allowed.allows("promptlooper.example.com"));
        assert!(allowed.allows("127.0.0.1"));
        assert!(!allowed.allows("evil.com"));
    }
}
