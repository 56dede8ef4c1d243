//! Pages loaded on demand. In the browser each `view` below (with all code only it reaches) is
//! cut out of the main WASM into a chunk fetched when the route first shows
//! (`scripts/build-site.sh` runs the splitter); on the server they render like any route.
//!
//! The pattern: a unit struct per route, `data()` (runs at once, in the main bundle; create
//! resources here to load data while the chunk downloads) and `view()` (lazily loaded).

use leptos::prelude::*;
use leptos_router::{LazyRoute, lazy_route};

use crate::pages;

/// A page loaded on demand: `$route` is its lazy route, `$split` the name `#[lazy_route]` gives
/// its view (`__` + the route's name in snake case + `_view`).
macro_rules! lazy_page {
    ($(#[$doc:meta])* $route:ident, $split:literal, $page:path) => {
        $(#[$doc])*
        pub struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                preload_chunks($split);
                $route
            }

            fn view(_this: Self) -> AnyView {
                $page().into_any()
            }
        }
    };
}

lazy_page!(
    /// `/`.
    HomeRoute, "__home_route_view", pages::home::Home
);
lazy_page!(
    /// `/projects/:id`.
    ProjectRoute, "__project_route_view", pages::project::ProjectPage
);
lazy_page!(
    /// `/projects/:id/experiments/new`.
    NewExperimentRoute, "__new_experiment_route_view", pages::builder::NewExperimentPage
);
lazy_page!(
    /// `/experiments/:id`.
    ExperimentRoute, "__experiment_route_view", pages::experiment::ExperimentPage
);
lazy_page!(
    /// `/experiments/:id/edit`.
    EditExperimentRoute, "__edit_experiment_route_view", pages::builder::EditExperimentPage
);
lazy_page!(
    /// `/experiments/:id/live`.
    LiveRoute, "__live_route_view", pages::live::LivePage
);
lazy_page!(
    /// `/runs/:id`.
    RunRoute, "__run_route_view", pages::run::RunPage
);
lazy_page!(
    /// `/experiments/:id/compare`.
    CompareRoute, "__compare_route_view", pages::compare::ComparePage
);
lazy_page!(
    /// `/admin`.
    AdminRoute, "__admin_route_view", pages::admin::AdminPage
);

/// On the server: adds `<link rel="preload">` tags to the page's `<head>` for the WASM chunks of
/// the lazy route whose view function `#[lazy_route]` names `<split>_<hash>` (`__` + the
/// route type in snake case + `_view`), and a modulepreload for the chunk loader, so the browser
/// fetches them alongside the main bundle instead of after it has started.
///
/// leptos_integration_utils 0.8.9 means to do this itself from `__wasm_split_manifest.json`,
/// but it looks the manifest up after the response's futures have awaited, outside the
/// response's reactive owner (a thread-local), so it finds it only when the task happens to
/// resume on the thread it started on: mostly never, sometimes (then the tags are doubled,
/// which is harmless). Remove this when it does so reliably.
/// A no-op in the browser and when the site has no manifest.
#[allow(unused_variables)]
fn preload_chunks(split: &str) {
    #[cfg(feature = "ssr")]
    {
        use leptos_meta::Link;
        let Some(manifest) = use_context::<leptos::WasmSplitManifest>() else {
            return;
        };
        let Some(manifest) = manifest.0.try_read_value() else {
            return;
        };
        let (pkg, chunks, loader) = &*manifest;
        let prefix = format!("{split}_");
        let modules = chunks
            .iter()
            .filter(|(name, _)| name.starts_with(&prefix))
            .flat_map(|(_, modules)| modules);
        let nonce = leptos::nonce::use_nonce().map(|n| n.to_string());
        for module in modules {
            // Rendering a leptos_meta tag registers it for the <head>.
            _ = view! {
                <Link rel="preload" href=format!("{pkg}/{module}.wasm") as_="fetch"
                    type_="application/wasm" crossorigin=nonce.clone().unwrap_or_default()/>
            }
            .to_html();
        }
        _ = view! {
            <Link rel="modulepreload" href=format!("{pkg}/{loader}")
                crossorigin=nonce.unwrap_or_default()/>
        }
        .to_html();
    }
}
