//! `/setup`: first boot. Creates the admin account; afterwards it only redirects.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;

use crate::api::{Setup, get_session_info};
use crate::components::{ErrorNote, action_error};
use crate::types::SessionInfo;

#[component]
pub fn SetupPage() -> impl IntoView {
    let info = crate::components::page_resource(|| (), |_| get_session_info());
    let setup = ServerAction::<Setup>::new();
    let error = action_error(setup);
    view! {
        <Title text="Set up PromptLooper"/>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match info.await {
                    Ok(SessionInfo { needs_setup: false, .. }) => view! { <Redirect path="/login"/> }.into_any(),
                    _ => view! {
                        <main class="page narrow auth">
                            <h1>"Welcome to PromptLooper"</h1>
                            <p class="lead">"Create the admin account. You can add more users later."</p>
                            <ActionForm action=setup attr:class="stack" attr:data-testid="setup-form">
                                <label>"Username"
                                    <input name="username" autocomplete="username" required maxlength="64" value="admin"/>
                                </label>
                                <label>"Password"
                                    <input type="password" name="password" autocomplete="new-password" required minlength="8"/>
                                </label>
                                <label>"Repeat password"
                                    <input type="password" name="confirm" autocomplete="new-password" required minlength="8"/>
                                </label>
                                <button type="submit" class="primary" disabled=move || setup.pending().get()>"Create admin"</button>
                                <ErrorNote error/>
                            </ActionForm>
                        </main>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
