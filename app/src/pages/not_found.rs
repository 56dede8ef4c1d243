//! The page for unknown paths.

use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <main class="page narrow">
            <h1>"Not found"</h1>
            <p>"There is nothing at this address."</p>
            <p><A href="/projects">"Back to projects"</A></p>
        </main>
    }
}
