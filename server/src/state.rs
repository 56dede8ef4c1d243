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
    /// Turns true when the server begins to shut down: live streams end then, so a graceful
    /// shutdown does not wait forever on a browser's open event stream.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppState {
    /// Ends every live stream (SSE and WebSocket); new ones end at once.
    pub fn stop_streams(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves when the server begins to shut down.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.subscribe();
        async move {
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }
}
