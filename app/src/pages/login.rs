//! `/login`: sign in with username and password.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;

use crate::api::{Login, get_session_info};
use crate::components::{ErrorNote, action_error};
use crate::types::SessionInfo;

#[component]
pub fn LoginPage() -> impl IntoView {
    let info = crate::components::page_resource(|| (), |_| get_session_info());
    let login = ServerAction::<Login>::new();
    let error = action_error(login);
    view! {
        <Title text="Sign in · PromptLooper"/>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match info.await {
                    Ok(SessionInfo { needs_setup: true, .. }) => view! { <Redirect path="/setup"/> }.into_any(),
                    Ok(SessionInfo { me: Some(me), .. }) if me.user.is_some() => {
                        view! { <Redirect path="/projects"/> }.into_any()
                    }
                    _ => view! {
                        <main class="page narrow auth">
                            <h1>"Sign in"</h1>
                            <ActionForm action=login attr:class="stack" attr:data-testid="login-form">
                                <label>"Username"
                                    <input name="username" autocomplete="username" required maxlength="64"/>
                                </label>
                                <label>"Password"
                                    <input type="password" name="password" autocomplete="current-password" required/>
                                </label>
                                <button type="submit" class="primary" disabled=move || login.pending().get()>"Sign in"</button>
                                <ErrorNote error/>
                            </ActionForm>
                        </main>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
