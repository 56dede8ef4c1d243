//! Pieces shared by several pages.

pub mod shell;

use leptos::prelude::*;

use crate::error::AppError;

/// An error from a server function, shown beside the form that caused it.
#[component]
pub fn ErrorNote(#[prop(into)] error: Signal<Option<AppError>>) -> impl IntoView {
    move || {
        error.get().map(|e| {
            let field = e.field().map(|f| format!("{f}: ")).unwrap_or_default();
            view! { <p class="error" role="alert">{field}{e.to_string()}</p> }
        })
    }
}

/// The error of an action's last result, if it failed.
pub fn action_error<I, O>(action: ServerAction<I>) -> Signal<Option<AppError>>
where
    I: leptos::server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Signal::derive(move || action.value().get().and_then(|r| r.err()))
}
