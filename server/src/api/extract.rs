//! Extractors whose rejections are our JSON errors: a JSON body that names the bad field, the
//! authenticated caller, and path ids.

use app::api::ssr::Caller;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use engine::Actor;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ApiError;

/// A JSON request body. Malformed JSON, wrong types, unknown or missing fields are a 400 that
/// names the field; a body over the limit is a 413.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                ct.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is too large",
                )
            } else {
                ApiError::bad_request(None, rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Deserializes JSON, naming the path of the first offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = inner.to_string();
        // serde names a missing or unknown field in the message rather than the path.
        let field = if path == "." {
            quoted_field(&message)
                .or_else(|| (!inner.is_syntax() && !inner.is_eof()).then(|| "body".to_owned()))
        } else {
            Some(path)
        };
        let message = match &field {
            Some(f) if inner.is_data() => format!("{f}: {message}"),
            _ => format!("invalid JSON: {message}"),
        };
        ApiError::bad_request(field, message)
    })
}

/// The first `` `name` `` in a serde message ("missing field `name`", "unknown field `x`").
fn quoted_field(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

/// Requires an authenticated caller (a permitted guest counts).
pub struct Authed(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Caller>() {
            Some(Caller(Some(actor))) => Ok(Authed(actor.clone())),
            _ => Err(ApiError::unauthenticated(
                "authentication required: sign in or send Authorization: Bearer <token>",
            )),
        }
    }
}

/// A UUID path parameter; anything else is a 400 naming the parameter.
pub struct IdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request(Some("id".into()), e.body_text()))?;
        Uuid::parse_str(&raw).map(IdPath).map_err(|_| {
            ApiError::bad_request(Some("id".into()), format!("id: {raw:?} is not a UUID"))
        })
    }
}

/// Query-string parameters; a bad value is a 400 naming the parameter.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(QueryParams)
            .map_err(|err| {
                let path = err.path().to_string();
                let message = err.into_inner().to_string();
                let field = if path == "." {
                    quoted_field(&message)
                } else {
                    Some(path)
                };
                let shown = field
                    .as_deref()
                    .map(|f| format!("{f}: {message}"))
                    .unwrap_or(message);
                ApiError::bad_request(field, shown)
            })
    }
}

/// The page size of list queries when `limit` is absent.
pub fn default_limit() -> i64 {
    100
}

/// A UUID `{id}` and a second path segment (e.g. `/experiments/{id}/export/{format}`).
pub struct IdAndSegment(pub Uuid, pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdAndSegment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((raw, segment)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request(Some("id".into()), e.body_text()))?;
        let id = Uuid::parse_str(&raw).map_err(|_| {
            ApiError::bad_request(Some("id".into()), format!("id: {raw:?} is not a UUID"))
        })?;
        Ok(IdAndSegment(id, segment))
    }
}
