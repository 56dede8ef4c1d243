//! Editing an experiment in the browser: the drafts the forms hold (all text until saved),
//! the parameter-space and scorer editors shared by the builder and the live view's redirect,
//! and how a save's error reaches the control its field names.
//!
//! Every control carries `data-field="<the engine's field path>"` (e.g.
//! `pipeline_stages[1].user`). When a save fails with a field, the message is shown under the
//! control with that path, or, when there is none, under the nearest enclosing group that has
//! one (`scoring_config[2]`), and that control is scrolled to and focused.

pub mod draft;
pub mod scorers;
pub mod space;

use leptos::prelude::*;

use crate::error::AppError;

/// The error a save returned, and where it is shown.
#[derive(Clone, Copy)]
pub struct FieldErrors {
    /// (field, message) as the server named them.
    error: RwSignal<Option<(String, String)>>,
    /// The `data-field` path that shows it (`None`: no control has it; shown at the form).
    at: RwSignal<Option<String>>,
}

impl Default for FieldErrors {
    fn default() -> Self {
        Self::new()
    }
}

impl FieldErrors {
    pub fn new() -> Self {
        FieldErrors {
            error: RwSignal::new(None),
            at: RwSignal::new(None),
        }
    }

    /// Shows a failure: a field error under its control; any other error at the form.
    pub fn show(&self, error: &AppError) {
        match error {
            AppError::Field { field, message } => self.show_field(field, message),
            other => {
                self.at.set(None);
                self.error.set(Some((String::new(), other.to_string())));
            }
        }
    }

    pub fn show_field(&self, field: &str, message: &str) {
        self.error.set(Some((field.to_owned(), message.to_owned())));
        let at = locate(field);
        self.at.set(at.clone());
        if let Some(path) = at {
            focus(&path);
        }
    }

    pub fn clear(&self) {
        self.error.set(None);
        self.at.set(None);
    }

    /// The message to show at `path`, if the error is shown there.
    pub fn message_at(&self, path: &str) -> Option<String> {
        if self.at.with(|a| a.as_deref() == Some(path)) {
            self.error.with(|e| e.as_ref().map(|(_, m)| m.clone()))
        } else {
            None
        }
    }

    /// The error as the form's summary shows it: "field: message".
    pub fn summary(&self) -> Option<(bool, String)> {
        let placed = self.at.with(Option::is_some);
        self.error.with(|e| {
            e.as_ref().map(|(f, m)| {
                let text = if f.is_empty() {
                    m.clone()
                } else {
                    format!("{f}: {m}")
                };
                (placed, text)
            })
        })
    }
}

/// The error message under the control at `path` (nothing when the error is elsewhere).
#[component]
pub fn FieldMsg(#[prop(into)] path: Signal<String>) -> impl IntoView {
    let errors = use_context::<FieldErrors>();
    move || {
        let message = errors.and_then(|e| path.with(|p| e.message_at(p)))?;
        Some(view! { <span class="error field-error" role="alert">{message}</span> })
    }
}

/// `aria-invalid` for the control at `path`.
pub fn invalid(path: Signal<String>) -> impl Fn() -> Option<&'static str> + Send + Sync + Copy {
    let errors = use_context::<FieldErrors>();
    move || {
        errors
            .and_then(|e| path.with(|p| e.message_at(p)))
            .map(|_| "true")
    }
}

/// The summary of a failure beside its button: the whole message when no control shows it,
/// else which field needs attention.
#[component]
pub fn SaveError(
    errors: FieldErrors,
    #[prop(default = "Not saved")] prefix: &'static str,
) -> impl IntoView {
    move || {
        let placed = errors.at.get();
        errors.error.get().map(|(field, message)| {
            let text = match placed {
                Some(_) => format!(
                    "{prefix}: {} needs attention (highlighted above).",
                    readable(&field)
                ),
                None if field.is_empty() => format!("{prefix}: {message}"),
                None => format!("{prefix}: {}: {message}", readable(&field)),
            };
            view! { <p class="error" role="alert" data-testid="save-error">{text}</p> }
        })
    }
}

/// A field path in words: `pipeline_stages[1].user` → `stage 2 › user`.
pub fn readable(field: &str) -> String {
    let mut out = Vec::new();
    for part in field.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let word = match name {
            "pipeline_stages" | "stages" => "stage",
            "parameter_space" => continue,
            "scoring_config" => "scorer",
            "prompts" => "variant",
            "models" => "model",
            "params" => "parameters",
            "sample_data" => "item",
            other => other,
        };
        out.push(match index {
            Some(i) => format!("{word} {}", i + 1),
            None => word.replace('_', " "),
        });
    }
    out.join(" › ")
}

/// A fresh key for a list entry (stable across reorders).
pub fn next_key() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The `data-field` path of a control that exists on the page: `field` itself, else the
/// nearest enclosing path (`a.b[2].c` → `a.b[2]` → `a.b` → `a`).
#[cfg(feature = "hydrate")]
fn locate(field: &str) -> Option<String> {
    let doc = document();
    let mut path = field.to_owned();
    loop {
        let quoted = path.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(Some(_)) = doc.query_selector(&format!("[data-field=\"{quoted}\"]")) {
            return Some(path);
        }
        let cut = path.rfind(['.', '['])?;
        path.truncate(cut);
    }
}

#[cfg(not(feature = "hydrate"))]
fn locate(_field: &str) -> Option<String> {
    None
}

/// Scrolls to the control at `path` and focuses it (after the message has been drawn).
#[cfg(feature = "hydrate")]
fn focus(path: &str) {
    use wasm_bindgen::JsCast;
    let quoted = path.replace('\\', "\\\\").replace('"', "\\\"");
    request_animation_frame(move || {
        let Ok(Some(el)) = document().query_selector(&format!("[data-field=\"{quoted}\"]")) else {
            return;
        };
        let options = web_sys::ScrollIntoViewOptions::new();
        options.set_block(web_sys::ScrollLogicalPosition::Center);
        el.scroll_into_view_with_scroll_into_view_options(&options);
        if let Some(el) = el.dyn_ref::<web_sys::HtmlElement>() {
            let _ = el.focus();
        }
    });
}

#[cfg(not(feature = "hydrate"))]
fn focus(_path: &str) {}
