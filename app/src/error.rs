//! The error server functions return to the dashboard: a message safe to show, and the form
//! field it is about when there is one.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Input that broke a rule; `field` names the form field.
    #[error("{message}")]
    Field { field: String, message: String },
    #[error("please sign in")]
    Unauthenticated,
    #[error("{0}")]
    Message(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Message(value.to_string())
    }
}

impl AppError {
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}

#[cfg(feature = "ssr")]
impl From<engine::Error> for AppError {
    fn from(e: engine::Error) -> Self {
        use axum::http::StatusCode;
        use engine::Error as E;
        // The HTTP status of the server-function response says what kind of failure it was.
        let status = match &e {
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Invalid(_) | E::BadLines { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            E::Conflict(_) => StatusCode::CONFLICT,
            E::Unauthenticated | E::BadCredentials => StatusCode::UNAUTHORIZED,
            E::Forbidden(_) => StatusCode::FORBIDDEN,
            E::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
            E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            E::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            // A page that redirects (to login or setup) keeps its redirect, whatever its data
            // calls answer meanwhile.
            if let Ok(mut parts) = response.0.write()
                && !parts.status.is_some_and(|s| s.is_redirection())
            {
                parts.status = Some(status);
            }
        }
        match e {
            E::Invalid(f) | E::Conflict(f) => AppError::Field {
                field: f.field,
                message: f.message,
            },
            E::BadLines { ref field, .. } => AppError::Field {
                field: field.clone(),
                message: e.to_string(),
            },
            E::Unauthenticated => AppError::Unauthenticated,
            E::Internal(detail) => {
                tracing_log(&detail);
                AppError::Message("something went wrong on the server".into())
            }
            E::Database(err) => {
                tracing_log(&err.to_string());
                AppError::Message("the database is unavailable; try again".into())
            }
            other => AppError::Message(other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
fn tracing_log(detail: &str) {
    tracing::error!(%detail, "server function failed");
}
