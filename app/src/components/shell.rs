//! The signed-in frame: header with navigation, and the gate that sends visitors to setup or
//! login when they need to go there.

use leptos::prelude::*;
use leptos_router::components::{A, Redirect};

use crate::api::{Logout, get_session_info};
use crate::types::{Me, Role, SessionInfo};

/// Renders `children` inside the app frame once the caller is known to be signed in (or a
/// permitted guest); otherwise redirects to `/setup` or `/login`. Children can read the caller
/// with `use_context::<Me>()`.
#[component]
pub fn AppShell(children: ChildrenFn) -> impl IntoView {
    let info = crate::components::page_resource(|| (), |_| get_session_info());
    let children = StoredValue::new(children);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match info.await {
                    Ok(SessionInfo { needs_setup: true, .. }) => view! { <Redirect path="/setup"/> }.into_any(),
                    Ok(SessionInfo { me: None, .. }) => view! { <Redirect path="/login"/> }.into_any(),
                    Ok(SessionInfo { me: Some(me), instance_name, .. }) => {
                        provide_context(me.clone());
                        view! {
                            <Header me instance_name/>
                            <main class="page">{untrack(|| children.read_value()())}</main>
                        }
                        .into_any()
                    }
                    Err(e) => view! { <main class="page"><p class="error">{e.to_string()}</p></main> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Header(me: Me, instance_name: String) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    let is_admin = me.role == Role::Admin;
    let who = me
        .user
        .as_ref()
        .map(|u| u.username.clone())
        .unwrap_or_else(|| me.via.replace('_', " "));
    let signed_in = me.user.is_some();
    view! {
        <header class="topbar">
            <A href="/" attr:class="brand">{instance_name}</A>
            <nav aria-label="Main">
                <A href="/" exact=true>"Overview"</A>
                <A href="/projects">"Projects"</A>
                {is_admin.then(|| view! { <A href="/admin">"Admin"</A> })}
            </nav>
            <div class="who">
                <span class="user" data-testid="current-user">{who}</span>
                <span class="role">{me.role.to_string()}</span>
                {if signed_in {
                    view! {
                        <ActionForm action=logout attr:class="inline">
                            <button type="submit" class="link">"Sign out"</button>
                        </ActionForm>
                    }
                    .into_any()
                } else {
                    view! { <A href="/login">"Sign in"</A> }.into_any()
                }}
            </div>
        </header>
    }
}

/// Whether the current caller may change things.
pub fn can_write() -> bool {
    use_context::<Me>().is_some_and(|me| me.role.can_write())
}
