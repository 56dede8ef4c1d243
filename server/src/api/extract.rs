//! Extractors whose rejections are our JSON errors: a JSON body that names the bad field, the
//! authenticated caller, and path ids.

use app::api::ssr::Caller;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use engine::Actor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use super::error::ApiError;

/// A JSON request body. Malformed JSON, wrong types, unknown or missing fields are a 400 that
/// names the field; a body over the limit is a 413.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Serialize> FromRequest<S> for JsonBody<T> {
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

/// Deserializes JSON, naming the path of the first offending field. The body reads as the
/// OpenAPI document (JSON Schema 2020-12) says:
///
/// - a whole number written with a fraction or an exponent (`2.0`, `1e3`) is the same integer as
///   `2` or `1000`, so an integer field takes it: a body refused only because of such a number
///   is read again with those numbers as integers;
/// - an object is an object: serde would also read a struct from an array of its fields
///   (`[null, null]` as a budget), which is refused.
pub fn parse_json<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let read = match serde_path_to_error::deserialize(de) {
        Ok(read) => read,
        Err(err) => {
            if err.inner().is_data()
                && let Ok(mut value) = serde_json::from_slice::<Value>(bytes)
                && whole_floats_to_integers(&mut value)
            {
                serde_path_to_error::deserialize(value).map_err(json_error)?
            } else {
                return Err(json_error(err));
            }
        }
    };
    refuse_arrays_for_objects(bytes, &read)?;
    Ok(read)
}

/// A 400 when the body has an array where what it was read as has an object (a struct read
/// from the array of its fields).
fn refuse_arrays_for_objects<T: Serialize>(bytes: &[u8], read: &T) -> Result<(), ApiError> {
    if !bytes.contains(&b'[') {
        return Ok(());
    }
    let (Ok(given), Ok(read)) = (
        serde_json::from_slice::<Value>(bytes),
        serde_json::to_value(read),
    ) else {
        return Ok(());
    };
    match array_for_object(&given, &read, String::new()) {
        None => Ok(()),
        Some(path) => {
            let field = if path.is_empty() { "body".into() } else { path };
            Err(ApiError::bad_request(
                Some(field.clone()),
                format!("{field}: invalid type: sequence, expected an object"),
            ))
        }
    }
}

/// The path of the first array in `given` where `read` has an object.
fn array_for_object(given: &Value, read: &Value, path: String) -> Option<String> {
    match (given, read) {
        (Value::Array(_), Value::Object(_)) => Some(path),
        (Value::Array(given), Value::Array(read)) => given
            .iter()
            .zip(read)
            .enumerate()
            .find_map(|(i, (g, r))| array_for_object(g, r, format!("{path}[{i}]"))),
        (Value::Object(given), Value::Object(read)) => given.iter().find_map(|(key, g)| {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            read.get(key).and_then(|r| array_for_object(g, r, at))
        }),
        _ => None,
    }
}

/// A JSON body that may be absent: no body, only whitespace, or `null` read as `T::default()`.
pub fn parse_optional_json<T: DeserializeOwned + Serialize + Default>(
    bytes: &[u8],
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    Ok(parse_json::<Option<T>>(bytes)?.unwrap_or_default())
}

/// Rewrites every whole-number float within ±2^53 (where each integer has one float) as an
/// integer; says whether there was one.
fn whole_floats_to_integers(value: &mut Value) -> bool {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            #[allow(clippy::cast_possible_truncation)]
            Some(f) if f.fract() == 0.0 && f.abs() <= EXACT => {
                *value = Value::from(f as i64);
                true
            }
            _ => false,
        },
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |any, v| whole_floats_to_integers(v) | any),
        Value::Object(map) => map
            .values_mut()
            .fold(false, |any, v| whole_floats_to_integers(v) | any),
        _ => false,
    }
}

/// A deserialization error as a 400 naming the field.
fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
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

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::{parse_json, parse_optional_json};

    #[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[serde(default)]
        a: Option<u32>,
        #[serde(default)]
        b: Option<String>,
    }

    #[derive(Debug, PartialEq, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        n: u32,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        list: Vec<Inner>,
    }

    fn field(body: &str) -> Option<String> {
        parse_json::<Outer>(body.as_bytes()).unwrap_err().field
    }

    #[test]
    fn whole_floats_are_integers() {
        let o: Outer = parse_json(br#"{"n": 3.0, "inner": {"a": 1e2, "b": "x"}}"#).unwrap();
        assert_eq!((o.n, o.inner.unwrap().a), (3, Some(100)));
        assert_eq!(field(r#"{"n": 3.5}"#).as_deref(), Some("n"));
        assert_eq!(field(r#"{"n": -1.0}"#).as_deref(), Some("n"));
        assert_eq!(field(r#"{"n": 2.0, "x": 1}"#).as_deref(), Some("x"));
    }

    #[test]
    fn arrays_are_not_objects() {
        assert_eq!(
            field(r#"{"n": 1, "inner": [null, null]}"#).as_deref(),
            Some("inner")
        );
        assert_eq!(
            field(r#"{"n": 1, "list": [{}, [7]]}"#).as_deref(),
            Some("list[1]")
        );
        assert_eq!(field("[1]").as_deref(), Some("body"));
        assert!(parse_json::<Outer>(br#"{"n": 1, "list": [{"a": 1}]}"#).is_ok());
        assert!(parse_json::<Vec<Inner>>(b"[{}, {\"b\": \"[\"}]").is_ok());
    }

    #[test]
    fn an_optional_body_may_be_empty_or_null() {
        for body in ["", "  \n", "null", " null "] {
            assert_eq!(
                parse_optional_json::<Inner>(body.as_bytes()).unwrap(),
                Inner::default()
            );
        }
        assert_eq!(
            parse_optional_json::<Inner>(br#"{"a": 2}"#).unwrap().a,
            Some(2)
        );
        assert!(parse_optional_json::<Inner>(b"[]").is_err());
        assert!(parse_optional_json::<Inner>(b"{\"c\": 1}").is_err());
    }
}
