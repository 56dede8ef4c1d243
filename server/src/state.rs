//! The one `Clone` state of cheap handles the router and server functions share.

use std::sync::Arc;

use axum::extract::FromRef;
use engine::Core;
use leptos::config::LeptosOptions;

use crate::config::Config;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub core: Core,
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    /// The OpenAPI document, built once at start.
    pub openapi: Arc<serde_json::Value>,
    /// The sweep workers, heartbeat and event relay (taken on shutdown).
    pub background: Arc<tokio::sync::Mutex<Option<engine::jobs::Background>>>,
}
