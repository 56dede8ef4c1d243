//! REST errors: one JSON shape, `{"error": {"code", "message", "field"?}}`, and one `match`
//! from engine errors to status codes. Internal details are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<u64>,
    /// Bad lines of an import (the first 100) and how many in all.
    pub lines: Option<(Vec<engine::types::LineError>, usize)>,
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code, e.g. `invalid`, `not_found`, `conflict`.
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
    /// The request field at fault, when there is one (a JSON path such as `name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For an import: its bad lines (the first 100), each with its 1-based line number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<engine::types::LineError>>,
    /// For an import: how many lines are bad in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_count: Option<usize>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            lines: None,
        }
    }

    pub fn bad_request(field: Option<String>, message: impl Into<String>) -> Self {
        ApiError {
            field,
            ..ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
        }
    }

    pub fn unprocessable(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
        }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
}

impl From<engine::Error> for ApiError {
    fn from(e: engine::Error) -> Self {
        use engine::Error as E;
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::Invalid(f) => ApiError::unprocessable(f.field, f.message),
            E::BadLines {
                ref field,
                ref errors,
                count,
            } => ApiError {
                lines: Some((errors.clone(), count)),
                ..ApiError::unprocessable(field.clone(), e.to_string())
            },
            E::Conflict(f) => ApiError {
                field: Some(f.field),
                ..ApiError::new(StatusCode::CONFLICT, "conflict", f.message)
            },
            E::Unauthenticated => ApiError::unauthenticated("authentication required"),
            E::BadCredentials => ApiError::unauthenticated("invalid username or password"),
            E::Forbidden(why) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", why),
            E::Locked { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "locked",
                    E::Locked { retry_after_secs }.to_string(),
                )
            },
            E::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
            E::Database(err) => {
                tracing::error!(error = %err, "database error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database is unavailable",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
                error_count: self.lines.as_ref().map(|(_, n)| *n),
                lines: self.lines.map(|(l, _)| l),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
