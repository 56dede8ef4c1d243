//! Resolves the caller of every request once, before routing: a bearer credential (JWT, API
//! key, static key), else the browser session, else an anonymous guest if the admin allows it.
//! The result is a request extension that REST handlers and server functions read.

use app::api::ssr::{Caller, SESSION_USER, SessionUser};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use engine::AuthVia;
use tower_sessions::Session;

use crate::api::error::ApiError;
use crate::state::AppState;

/// Static assets need no caller.
fn is_asset(path: &str) -> bool {
    path.starts_with("/pkg/")
        || path == "/favicon.svg"
        || path == "/favicon.ico"
        || path == "/health"
}

pub async fn resolve_caller(
    State(state): State<AppState>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    if is_asset(req.uri().path()) {
        return next.run(req).await;
    }
    let core = &state.core;
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let actor = match bearer {
        Some(value) => {
            let Some(credential) = value
                .strip_prefix("Bearer ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
            else {
                return ApiError::unauthenticated(
                    "the Authorization header must be `Bearer <token>`",
                )
                .into_response();
            };
            if crate::api::metrics::is_metrics_token(&state, req.uri().path(), credential) {
                req.extensions_mut()
                    .insert(crate::api::metrics::MetricsToken);
                return next.run(req).await;
            }
            match engine::auth::authenticate_bearer(core, credential).await {
                Ok(actor) => Some(actor),
                Err(engine::Error::Unauthenticated) => {
                    return ApiError::unauthenticated("invalid, expired or revoked credential")
                        .into_response();
                }
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
        None => match session.get::<SessionUser>(SESSION_USER).await {
            Ok(Some(user)) => {
                if let Some(refused) = cross_site_write(&req) {
                    return refused;
                }
                match engine::auth::session_actor(core, user.id, user.version, AuthVia::Session)
                    .await
                {
                    Ok(Some(actor)) => {
                        keep_alive(&session).await;
                        Some(actor)
                    }
                    Ok(None) => {
                        // The user is gone or signed out everywhere: end this session.
                        let _ = session.flush().await;
                        anonymous(core).await
                    }
                    Err(e) => return ApiError::from(e).into_response(),
                }
            }
            _ => anonymous(core).await,
        },
    };
    req.extensions_mut().insert(Caller(actor));
    next.run(req).await
}

async fn anonymous(core: &engine::Core) -> Option<engine::Actor> {
    engine::auth::anonymous_actor(core)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read guest-access setting");
            None
        })
}

/// Refuses a state-changing request that a browser made on behalf of another site, using the
/// `Sec-Fetch-Site` header (all current browsers) or, failing that, `Origin` versus `Host`.
/// Only cookie-authenticated requests need this: a bearer token is never sent automatically.
fn cross_site_write(req: &Request) -> Option<Response> {
    use axum::http::Method;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let headers = req.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let cross = match text("sec-fetch-site") {
        Some(site) => !matches!(site, "same-origin" | "none"),
        None => match (text("origin"), text("host")) {
            (Some(origin), Some(host)) => origin.split("://").nth(1) != Some(host),
            _ => false,
        },
    };
    cross.then(|| {
        tracing::warn!(path = %req.uri().path(), "refused a cross-site request carrying a session cookie");
        ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "cross_site",
            "cross-site requests cannot use the session cookie",
        )
        .into_response()
    })
}

/// Sessions expire after 7 days of inactivity: touching the session once a day renews it
/// without writing to the database on every request.
async fn keep_alive(session: &Session) {
    const SEEN: &str = "seen";
    let today = chrono::Utc::now().date_naive().to_string();
    if session.get::<String>(SEEN).await.ok().flatten().as_deref() != Some(today.as_str()) {
        let _ = session.insert(SEEN, today).await;
    }
}
