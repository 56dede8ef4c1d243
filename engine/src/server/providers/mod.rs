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

/// Token counts as reported, kept within sane bounds (a hostile or broken endpoint must not
/// overflow totals or produce negative costs).
pub fn clamp_tokens(n: i64) -> i64 {
    n.clamp(0, 1_000_000_000)
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
        error.message = self.scrub_text(&error.message);
        error
    }

    /// Replaces the key, and any run of 8 or more of its characters, with `***`.
    pub fn scrub_text(&self, text: &str) -> String {
        let Some(key) = self.api_key.as_deref().filter(|k| !k.is_empty()) else {
            return text.to_owned();
        };
        let mut out = text.replace(key, "***");
        // Echoes of part of the key ("sk-…1234abcd", or a key cut by truncation).
        let chars: Vec<char> = key.chars().collect();
        if chars.len() > 8 {
            for start in 0..=chars.len() - 8 {
                let piece: String = chars[start..start + 8].iter().collect();
                if out.contains(&piece) {
                    out = out.replace(&piece, "***");
                }
            }
        }
        out
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
    // Only errors that waiting cannot fix; a plain "rate limit, check quota" stays retryable.
    let quota = [
        "insufficient_quota",
        "exceeded your current quota",
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
    // Any number is clamped to 0–86,400 s; "inf", "NaN" and the like are ignored.
    let seconds = |s: f64| {
        s.is_finite()
            .then(|| Duration::from_secs_f64(s.clamp(0.0, 86_400.0)))
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return seconds(ms / 1000.0);
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return seconds(secs);
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
        // Scrub the whole body first: truncation could otherwise cut a key in half.
        return Err(classify_status(status, &headers, &access.scrub_text(&body)));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn access(key: &str) -> EndpointAccess {
        EndpointAccess {
            kind: EndpointKind::Openai,
            base_url: String::new(),
            api_key: Some(key.into()),
            options: serde_json::Value::Null,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn scrubbing_removes_whole_and_partial_keys() {
        let a = access("sk-proj-abcdefghijklmnop1234");
        assert_eq!(
            a.scrub_text("bad key sk-proj-abcdefghijklmnop1234!"),
            "bad key ***!"
        );
        assert!(
            !a.scrub_text("key ends ...ijklmnop1234")
                .contains("ijklmnop")
        );
        assert_eq!(access("sk-1234").scrub_text("got sk-1234"), "got ***");
    }

    #[test]
    fn retry_after_parses_safely() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "inf".parse().unwrap());
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "1e30".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(86_400)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        h.insert("retry-after-ms", "NaN".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
