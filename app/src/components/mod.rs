//! Pieces shared by several pages.

pub mod charts;
pub mod editor;
pub mod guide;
pub mod icons;
pub mod leaderboard;
pub mod progress;
pub mod run_list;
pub mod runs;
pub mod shell;
pub mod steering;
pub mod stream;
pub mod timeline;

use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};

use crate::error::AppError;

/// How a page's data travels in the server-rendered HTML: JSON, read back from bytes the way
/// server functions read their answers, so each type's deserializer is compiled into the WASM
/// once (Leptos' default codec reads the page's copy from a `&str`, a second reader type and a
/// second copy of every deserializer).
pub struct JsonBytes;

impl<T: serde::Serialize> Encoder<T> for JsonBytes {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(val)
    }
}

impl<T: serde::de::DeserializeOwned> Decoder<T> for JsonBytes {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(val.as_bytes())
    }
}

/// A page's data: loaded on the server, sent with the HTML, reloaded when `source` changes.
pub type PageResource<T> = Resource<Result<T, AppError>, JsonBytes>;

/// Creates a [`PageResource`] (as `Resource::new`, with the [`JsonBytes`] codec).
#[track_caller]
pub fn page_resource<S, T, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> PageResource<T>
where
    S: PartialEq + Clone + Send + Sync + 'static,
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, AppError>> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

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

/// What an async section shows when its server call failed.
pub fn error_view(error: AppError) -> AnyView {
    view! { <p class="error">{error.to_string()}</p> }.into_any()
}

/// The error of an action's last result, if it failed.
pub fn action_error<I, O>(action: ServerAction<I>) -> Signal<Option<AppError>>
where
    I: leptos::server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Signal::derive(move || action.value().get().and_then(|r| r.err()))
}

/// Clears `form` after each successful submission of `action` (ActionForm keeps its values).
pub fn reset_on_success<I, O>(action: ServerAction<I>, form: NodeRef<leptos::html::Form>)
where
    I: leptos::server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Effect::new(move |_| {
        if matches!(action.value().get(), Some(Ok(_)))
            && let Some(form) = form.get()
        {
            form.reset();
        }
    });
}

/// A button that asks before acting: the first click shows `question` with a confirm and a
/// cancel button; only the confirm runs `on_confirm`.
#[component]
pub fn ConfirmButton(
    #[prop(into)] label: String,
    #[prop(into)] question: String,
    on_confirm: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    let on_confirm = StoredValue::new(on_confirm);
    let (label2, question) = (label.clone(), question);
    view! {
        <Show
            when=move || asking.get()
            fallback=move || {
                let label = label.clone();
                view! { <button class="danger-outline" on:click=move |_| asking.set(true)>{label}</button> }
            }
        >
            <span class="confirm" role="alertdialog">
                <span>{question.clone()}</span>
                <button class="danger" on:click=move |_| {
                    asking.set(false);
                    on_confirm.with_value(|f| f());
                }>{label2.clone()}</button>
                <button on:click=move |_| asking.set(false)>"Cancel"</button>
            </span>
        </Show>
    }
}

/// The `:id` route parameter as a UUID (`None` when absent or malformed), reactively.
pub fn id_param() -> impl Fn() -> Option<uuid::Uuid> + Copy + Send + Sync + 'static {
    let params = leptos_router::hooks::use_params_map();
    move || {
        params
            .read()
            .get("id")
            .and_then(|s| uuid::Uuid::parse_str(&s).ok())
    }
}

/// Loads something in the browser only (nested parts of a page, suggestions, pickers): `None`
/// until it arrives, and always on the server, so it never takes part in the server's render
/// (resources created below a `Suspense` on the server are numbered anew each time it renders
/// again, and the browser could not match them). Fetched again whenever what `source` reads
/// changes; an answer older than the latest request is dropped.
pub fn load_in_browser<S, T, F>(
    source: impl Fn() -> S + 'static,
    fetch: impl Fn(S) -> F + 'static,
) -> ReadSignal<Option<T>>
where
    S: 'static,
    T: Send + Sync + 'static,
    F: std::future::Future<Output = Option<T>> + 'static,
{
    let (value, set) = signal(None);
    let latest = std::rc::Rc::new(std::cell::Cell::new(0u64));
    Effect::new(move |_| {
        let request = fetch(source());
        let n = latest.get() + 1;
        latest.set(n);
        let latest = latest.clone();
        leptos::task::spawn_local(async move {
            let answer = request.await;
            if latest.get() == n {
                set.set(answer);
            }
        });
    });
    value
}

/// A server function's answer loaded in the browser only (see [`load_in_browser`]).
pub fn client_resource<S, T, F>(
    source: impl Fn() -> S + 'static,
    fetch: impl Fn(S) -> F + 'static,
) -> ReadSignal<Option<Result<T, AppError>>>
where
    S: 'static,
    T: Send + Sync + 'static,
    F: std::future::Future<Output = Result<T, AppError>> + 'static,
{
    load_in_browser(source, move |s| {
        let answer = fetch(s);
        async move { Some(answer.await) }
    })
}

/// What a part loaded in the browser shows: "Loading…", its view, or its error.
pub fn loaded<T, V>(
    data: ReadSignal<Option<Result<T, AppError>>>,
    show: impl Fn(T) -> V + Send + Sync + 'static,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    move || match data.get() {
        None => view! { <p class="loading">"Loading…"</p> }.into_any(),
        Some(Ok(v)) => show(v).into_any(),
        Some(Err(e)) => error_view(e),
    }
}

/// The LLM endpoints, loaded once for pickers (empty until loaded or when loading failed).
pub fn endpoints_signal() -> Signal<Vec<crate::types::Endpoint>> {
    let list = load_in_browser(|| (), |_| async { crate::api::list_endpoints().await.ok() });
    Signal::derive(move || list.get().unwrap_or_default())
}
