//! The dashboard's routes: Leptos pages (server-rendered, hydrated) and their server functions,
//! with the engine handle in context; static assets from the site folder.

use app::{App, shell};
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, file_and_error_handler, generate_route_list};

use crate::state::AppState;

pub fn routes(state: &AppState) -> Router<AppState> {
    let routes = generate_route_list(App);
    let core = state.core.clone();
    let options = state.leptos_options.clone();
    Router::new()
        .leptos_routes_with_context(
            state,
            routes,
            move || provide_context(core.clone()),
            move || shell(options.clone()),
        )
        .fallback(file_and_error_handler::<AppState, _>(shell))
}
