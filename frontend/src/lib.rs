//! The browser entry point: hydrates the server-rendered page.
#![forbid(unsafe_code)]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Lazily loaded routes fetch their WASM chunk before they hydrate, so hydration is async
    // (`hydrate_body` panics on a lazy route).
    wasm_bindgen_futures::spawn_local(async {
        let Some(body) = leptos::prelude::document().body() else {
            return;
        };
        leptos::mount::hydrate_from_async(body.clone(), app::App)
            .await
            .forget();
        // Lets tests (and curious users) see that the page is interactive.
        let _ = body.set_attribute("data-hydrated", "true");
    });
}
