//! PromptLooper's dashboard: Leptos pages rendered on the server and hydrated in the browser.
//! Server functions (`api`) are thin adapters over the engine.
#![forbid(unsafe_code)]
#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod error;
pub mod lazy;
pub mod pages;

pub use engine::types;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};

use crate::lazy::{
    AdminRoute, CompareRoute, EditExperimentRoute, ExperimentRoute, HomeRoute, LiveRoute,
    NewExperimentRoute, ProjectRoute, RunRoute,
};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{Lazy, SsrMode, path};

/// The name the build gives the hydration bundle and stylesheet (`/pkg/<name>.js|.wasm|.css`).
pub const OUTPUT_NAME: &str = "promptlooper";

/// The HTML document around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Pages that may redirect (to setup or login) render fully before responding, so the
    // redirect is a real HTTP redirect on first load.
    view! {
        <Stylesheet id="leptos" href="/pkg/promptlooper.css"/>
        <Title text="PromptLooper"/>
        <Router>
            <Routes fallback=pages::not_found::NotFound>
                <Route path=path!("/") view={Lazy::<HomeRoute>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/setup") view=pages::setup::SetupPage ssr=SsrMode::Async/>
                <Route path=path!("/login") view=pages::login::LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/projects") view=pages::projects::ProjectsPage ssr=SsrMode::Async/>
                <Route path=path!("/projects/:id") view={Lazy::<ProjectRoute>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/projects/:id/experiments/new") view={Lazy::<NewExperimentRoute>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/experiments/:id") view={Lazy::<ExperimentRoute>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/experiments/:id/edit") view={Lazy::<EditExperimentRoute>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/experiments/:id/live") view={Lazy::<LiveRoute>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/experiments/:id/compare") view={Lazy::<CompareRoute>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/runs/:id") view={Lazy::<RunRoute>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/admin") view={Lazy::<AdminRoute>::new()} ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
