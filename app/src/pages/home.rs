//! `/`: sends the visitor where they belong (setup, login, or their projects).

use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::api::get_session_info;
use crate::types::SessionInfo;

#[component]
pub fn Home() -> impl IntoView {
    let info = Resource::new(|| (), |_| get_session_info());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let path = match info.await {
                    Ok(SessionInfo { needs_setup: true, .. }) => "/setup",
                    Ok(SessionInfo { me: Some(_), .. }) => "/projects",
                    _ => "/login",
                };
                view! { <Redirect path/> }
            })}
        </Suspense>
    }
}
