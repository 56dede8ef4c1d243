//! Anthropic Messages (`/v1/messages`): system prompt top-level, `max_tokens` required,
//! `x-api-key` + `anthropic-version` headers, usage as `input_tokens`/`output_tokens`.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    ChatRequest, ChatResponse, EndpointAccess, Provider, ProviderError, Role, clamp_tokens,
    model_ids, send_json,
};

pub const API_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; this is sent when the stage sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

pub struct Anthropic {
    access: EndpointAccess,
    http: reqwest::Client,
}

impl Anthropic {
    pub fn new(access: EndpointAccess, http: reqwest::Client) -> Self {
        Anthropic { access, http }
    }

    /// `base_url` may or may not end in `/v1`.
    fn url(&self, path: &str) -> String {
        let base = self.access.base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        format!("{base}/v1/{path}")
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ProviderError> {
        let mut request = request.header("anthropic-version", API_VERSION);
        if let Some(key) = &self.access.api_key {
            request = request.header("x-api-key", key);
        }
        send_json(&self.access, request).await
    }
}

pub fn messages_body(request: &ChatRequest) -> Value {
    let system: Vec<&str> = request
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    let messages: Vec<Value> = request
        .messages
        .iter()
        .filter(|m| m.role != Role::System)
        .map(|m| json!({"role": "user", "content": m.content}))
        .collect();
    let mut body = Map::new();
    let p = &request.params;
    for (key, value) in &p.extra {
        body.insert(key.clone(), value.clone());
    }
    body.insert("model".into(), json!(request.model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert(
        "max_tokens".into(),
        json!(p.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    if !system.is_empty() {
        body.insert("system".into(), json!(system.join("\n\n")));
    }
    if let Some(v) = p.temperature {
        body.insert("temperature".into(), json!(v));
    }
    if let Some(v) = p.top_p {
        body.insert("top_p".into(), json!(v));
    }
    if let Some(v) = &p.stop {
        body.insert("stop_sequences".into(), json!(v));
    }
    Value::Object(body)
}

#[derive(Deserialize)]
struct MessageResponse {
    content: Vec<ContentBlock>,
    stop_reason: Option<String>,
    usage: MessageUsage,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
}

#[derive(Deserialize)]
struct MessageUsage {
    input_tokens: i64,
    output_tokens: i64,
}

#[async_trait::async_trait]
impl Provider for Anthropic {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let raw = self
            .send(
                self.http
                    .post(self.url("messages"))
                    .json(&messages_body(request)),
            )
            .await?;
        let message: MessageResponse = serde_json::from_value(raw).map_err(|e| {
            ProviderError::fatal(
                Some(200),
                self.access
                    .scrub_text(&format!("unexpected message format ({e})")),
            )
        })?;
        let content = message
            .content
            .iter()
            .filter(|b| b.kind == "text")
            .map(|b| b.text.as_str())
            .collect::<Vec<_>>()
            .join("");
        Ok(ChatResponse {
            content,
            tokens_in: clamp_tokens(message.usage.input_tokens),
            tokens_out: clamp_tokens(message.usage.output_tokens),
            usage_estimated: false,
            finish_reason: message.stop_reason,
        })
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        model_ids(&self.send(self.http.get(self.url("models"))).await?)
    }

    async fn embed(
        &self,
        _model: &str,
        _inputs: &[String],
    ) -> Result<Vec<Vec<f32>>, ProviderError> {
        Err(ProviderError::fatal(
            None,
            "Anthropic endpoints offer no embeddings; use an OpenAI-compatible endpoint",
        ))
    }
}
