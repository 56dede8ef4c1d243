//! LLM providers behind one trait over normalized requests and responses. Wire formats stay
//! private to each provider module; `retry` wraps any provider with the retry policy.

pub mod anthropic;
pub mod openai;
pub mod retry;
pub mod simulated;

use std::sync::Arc;
use std::time::Duration;

use crate::types::{EndpointKind, Params};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
}

/// A chat request in provider-neutral form.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub params: Params,
}

/// A chat response in provider-neutral form.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatResponse {
    pub content: String,
    pub tokens_in: i64,
    pub tokens_out: i64,
    /// True when the provider did not report usage and the counts are estimates.
    pub usage_estimated: bool,
    pub finish_reason: Option<String>,
}

/// Why a call failed, and whether trying again may help.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub retryable: bool,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// How long the provider asked us to wait (`Retry-After`, `retry-after-ms`).
    pub retry_after: Option<Duration>,
    pub message: String,
}

impl ProviderError {
    pub fn fatal(status: Option<u16>, message: impl Into<String>) -> Self {
        ProviderError {
            retryable: false,
            status,
            retry_after: None,
            message: message.into(),
        }
    }

    pub fn retryable(
        status: Option<u16>,
        retry_after: Option<Duration>,
        message: impl Into<String>,
    ) -> Self {
        ProviderError {
            retryable: true,
            status,
            retry_after,
            message: message.into(),
        }
    }
}

#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError>;

    /// The models this endpoint offers.
    async fn list_models(&self) -> Result<Vec<String>, ProviderError>;

    /// Embeddings for each input, when the endpoint offers them.
    async fn embed(&self, model: &str, inputs: &[String]) -> Result<Vec<Vec<f32>>, ProviderError>;
}

/// What a provider needs to reach its endpoint. The API key is decrypted only into this.
#[derive(Clone)]
pub struct EndpointAccess {
    pub kind: EndpointKind,
    pub base_url: String,
    pub api_key: Option<String>,
    pub options: serde_json::Value,
    pub timeout: Duration,
}

impl EndpointAccess {
    /// Removes the API key from text that came back from the endpoint (some providers echo
    /// the key, or part of it, in their errors).
    pub fn scrub(&self, mut error: ProviderError) -> ProviderError {
        if let Some(key) = self.api_key.as_deref().filter(|k| k.len() >= 8) {
            error.message = error.message.replace(key, "***");
            // Also a long tail of the key, as in "sk-…1234abcd" style echoes.
            let tail: String = key
                .chars()
                .rev()
                .take(key.chars().count() / 2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if tail.len() >= 8 {
                error.message = error.message.replace(&tail, "***");
            }
        }
        error
    }
}

impl std::fmt::Debug for EndpointAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointAccess")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Builds the provider for an endpoint (the one factory).
pub fn build(
    access: EndpointAccess,
    http: reqwest::Client,
) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(match access.kind {
        EndpointKind::Openai => Arc::new(openai::OpenAi::new(access, http)),
        EndpointKind::Anthropic => Arc::new(anthropic::Anthropic::new(access, http)),
        EndpointKind::Simulated => Arc::new(
            simulated::Simulated::from_options(&access.options, access.timeout)
                .map_err(|e| ProviderError::fatal(None, format!("simulated options: {e}")))?,
        ),
    })
}

/// A rough token count (≈ 4 characters per token) for providers that report no usage.
pub fn estimate_tokens(text: &str) -> i64 {
    ((text.chars().count() as i64 + 3) / 4).max(1)
}

/// Classifies an HTTP error response. Auth and quota errors fail fast; 408, 409, 429, 5xx and
/// 529 are worth retrying.
pub fn classify_status(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) -> ProviderError {
    let snippet: String = body.chars().take(300).collect();
    let lower = body.to_ascii_lowercase();
    let quota = [
        "insufficient_quota",
        "quota",
        "billing",
        "credit balance",
        "spend limit",
        "spending limit",
    ]
    .iter()
    .any(|needle| lower.contains(needle));
    let message = format!("HTTP {status}: {snippet}");
    match status {
        401 | 403 => {
            ProviderError::fatal(Some(status), format!("authentication failed ({message})"))
        }
        429 if quota => ProviderError::fatal(
            Some(status),
            format!("quota or spend limit reached ({message})"),
        ),
        408 | 409 | 429 | 500..=599 => {
            ProviderError::retryable(Some(status), retry_after(headers), message)
        }
        _ => ProviderError::fatal(Some(status), message),
    }
}

/// `retry-after-ms` (milliseconds) or `Retry-After` (seconds or an HTTP date).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64((ms / 1000.0).max(0.0)));
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return Some(Duration::from_secs_f64(secs.max(0.0)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Sends a request (authentication already attached) with the endpoint's timeout and
/// returns the JSON body. Error statuses are classified, with the API key scrubbed from them;
/// an unreadable body is a retryable error.
pub async fn send_json(
    access: &EndpointAccess,
    request: reqwest::RequestBuilder,
) -> Result<serde_json::Value, ProviderError> {
    let response = request
        .timeout(access.timeout)
        .send()
        .await
        .map_err(transport_error)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.map_err(transport_error)?;
    if !(200..300).contains(&status) {
        return Err(access.scrub(classify_status(status, &headers, &body)));
    }
    serde_json::from_str(&body).map_err(|e| {
        ProviderError::retryable(Some(status), None, format!("malformed response body ({e})"))
    })
}

/// The sorted model ids of a `{"data": [{"id": …}]}` listing (both APIs use this shape).
pub fn model_ids(listing: &serde_json::Value) -> Result<Vec<String>, ProviderError> {
    let mut models: Vec<String> = listing["data"]
        .as_array()
        .ok_or_else(|| ProviderError::fatal(Some(200), "the model list has no `data` array"))?
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect();
    models.sort();
    Ok(models)
}

/// Maps a transport error (connect, timeout, body) to a retryable provider error. The URL is
/// left out: it may carry credentials.
pub fn transport_error(e: reqwest::Error) -> ProviderError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    ProviderError::retryable(None, None, format!("{what}: {}", e.without_url()))
}
